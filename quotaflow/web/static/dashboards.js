// Dashboards: draw each chart from its JSON data island with Chart.js (vendored), and
// make tables with data-sortable sortable by clicking a column header.
// Every chart has a table with the same numbers next to it, so nothing depends on this.
(function () {
  "use strict";

  const lang = document.documentElement.lang || "en";
  const zh = lang.toLowerCase().startsWith("zh");
  const full = new Intl.NumberFormat(zh ? "zh-CN" : "en", { maximumFractionDigits: 2 });

  // 2.50亿 / 1,115.8万 in Chinese; 249.5M / 12.3K in English.
  function compact(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "";
    const sign = value < 0 ? "-" : "";
    const a = Math.abs(value);
    const one = (n, d) => n.toLocaleString(zh ? "zh-CN" : "en", { maximumFractionDigits: d });
    if (zh) {
      if (a >= 1e8) return sign + one(a / 1e8, 2) + "亿";
      if (a >= 1e4) return sign + one(a / 1e4, 1) + "万";
      return sign + one(a, 0);
    }
    if (a >= 1e9) return sign + one(a / 1e9, 1) + "B";
    if (a >= 1e6) return sign + one(a / 1e6, 1) + "M";
    if (a >= 1e3) return sign + one(a / 1e3, 1) + "K";
    return sign + one(a, 0);
  }

  const COLORS = {
    actual: "#2457c5", red_line: "#b42318", target: "#667085", forecast: "#dc6803",
    forecast_low: "#f79009", forecast_high: "#f79009", cost: "#f79009", headcount: "#127a3f",
    delivered: "#127a3f", pending: "#98a2b3", failed: "#b42318",
  };
  const BAND = "rgba(247, 144, 9, 0.18)";

  function lineDataset(ds) {
    const color = COLORS[ds.key] || "#475467";
    const out = {
      label: ds.label, data: ds.data, borderColor: color, backgroundColor: color,
      pointRadius: 0, borderWidth: 2, spanGaps: false, fill: false, qfKey: ds.key,
    };
    if (ds.key === "actual") Object.assign(out, { borderWidth: 3, pointRadius: 2.5 });
    if (ds.key === "red_line") out.borderDash = [6, 4];
    if (ds.key === "target") out.borderDash = [2, 3];
    if (ds.key === "forecast") out.borderDash = [5, 3];
    if (ds.key === "forecast_low") Object.assign(out, { borderWidth: 1, borderColor: BAND });
    if (ds.key === "forecast_high") {
      Object.assign(out, { borderWidth: 1, borderColor: BAND, backgroundColor: BAND, fill: "-1" });
    }
    return out;
  }

  function barDataset(ds) {
    const color = COLORS[ds.key] || "#475467";
    if (ds.axis === "count") {
      return {
        type: "line", label: ds.label, data: ds.data, yAxisID: "y1", borderColor: color,
        backgroundColor: color, pointRadius: 4, showLine: false, qfKey: ds.key, order: 0,
      };
    }
    return { label: ds.label, data: ds.data, backgroundColor: color, qfKey: ds.key, order: 1 };
  }

  function config(data) {
    const money = data.money !== false;
    const tick = (v) => (money ? compact(v) : full.format(v));
    const tooltip = {
      callbacks: {
        label: (ctx) => {
          const v = ctx.parsed.y;
          return v === null || v === undefined ? null : ctx.dataset.label + ": " + full.format(v);
        },
      },
    };
    const scales = { y: { beginAtZero: true, stacked: !!data.stacked, ticks: { callback: tick } } };
    if (data.stacked) scales.x = { stacked: true };
    const counts = data.datasets.some((ds) => ds.axis === "count");
    if (counts) {
      scales.y1 = {
        position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
        ticks: { callback: (v) => full.format(v) },
      };
    }
    const line = data.type === "line";
    return {
      type: line ? "line" : "bar",
      data: { labels: data.labels, datasets: data.datasets.map(line ? lineDataset : barDataset) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { tooltip: tooltip, legend: { position: "bottom" } },
        scales: scales,
      },
    };
  }

  function drawCharts() {
    if (typeof window.Chart !== "function") return;
    window.QuotaFlowCharts = window.QuotaFlowCharts || {};
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const island = document.getElementById(canvas.dataset.chart);
      if (!island) return;
      let data;
      try {
        data = JSON.parse(island.textContent);
      } catch (err) {
        return;
      }
      const chart = new window.Chart(canvas, config(data));
      window.QuotaFlowCharts[data.id] = chart;
      canvas.dataset.drawn = "true";
    });
  }

  // ---- sortable tables -------------------------------------------------------------
  function cellValue(row, index) {
    const cell = row.cells[index];
    if (!cell) return { empty: true };
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (raw === "") return { empty: true };
    const n = Number(raw);
    return Number.isFinite(n) && cell.dataset.value !== undefined ? { num: n } : { text: raw };
  }

  function compare(a, b) {
    if (a.empty || b.empty) return a.empty === b.empty ? 0 : a.empty ? 1 : -1;
    if (a.num !== undefined && b.num !== undefined) return a.num - b.num;
    const x = a.num !== undefined ? String(a.num) : a.text;
    const y = b.num !== undefined ? String(b.num) : b.text;
    return x.localeCompare(y, lang);
  }

  function sortBy(table, th) {
    const index = th.cellIndex;
    const descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("thead th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.querySelectorAll("tbody").forEach((body) => {
      const rows = Array.from(body.rows);
      rows.sort((r1, r2) => {
        const a = cellValue(r1, index);
        const b = cellValue(r2, index);
        if (a.empty || b.empty) return compare(a, b); // empty cells last either way
        return descending ? compare(b, a) : compare(a, b);
      });
      rows.forEach((r) => body.appendChild(r));
    });
  }

  function sortableTables() {
    document.querySelectorAll("table[data-sortable]").forEach((table) => {
      table.querySelectorAll("thead th").forEach((th) => {
        if (th.querySelector("button.sort")) return;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        while (th.firstChild) button.appendChild(th.firstChild);
        th.appendChild(button);
        button.addEventListener("click", () => sortBy(table, th));
      });
    });
  }

  function start() {
    sortableTables();
    drawCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
