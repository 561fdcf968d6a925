"""Deterministic generator of the QuotaFlow demo company (the case in MISSION.md).

Writes the CSV/JSON files described in quotaflow/seed_data/README.md. Regenerating gives byte-identical
files: every random draw comes from one numpy Generator with a fixed seed, in a fixed order.

    /work/venv/bin/python quotaflow/seed_data/generate.py [out_dir]
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np

SEED = 20261001
PAST = ("2025Q4", "2026Q1", "2026Q2", "2026Q3")
PLANNING = "2026Q4"
PERIODS = {
    "2025Q4": ("2025-10-01", "2025-12-31"),
    "2026Q1": ("2026-01-01", "2026-03-31"),
    "2026Q2": ("2026-04-01", "2026-06-30"),
    "2026Q3": ("2026-07-01", "2026-09-30"),
    "2026Q4": ("2026-10-01", "2026-12-31"),
}
MONTHS_BEFORE_PLANNING = {"2025Q4": 12, "2026Q1": 9, "2026Q2": 6, "2026Q3": 3}
SEASON = {"2025Q4": 1.12, "2026Q1": 0.84, "2026Q2": 0.95, "2026Q3": 1.0}  # Q4 strongest
WEEKS, ACTUAL_WEEKS = 13, 6
FULL_PRODUCTIVITY = 700_000  # quarterly output of a fully ramped (18+ months) sales person
TARGET_GROWTH = 1.35  # the case's "grow 40%": suggested target vs last year's same quarter
LAGGING, AHEAD = "NORTH-T4", "NORTH-T1"  # actuals: under the red line / ahead of pace
LAGGING_PACE = (0.75, 0.65, 0.55, 0.45, 0.40, 0.35)
AHEAD_PACE = (1.15, 1.20, 1.25, 1.30, 1.30, 1.35)

# Regions: tenure = mean months, output = full-ramp quarterly sales per head, potential =
# quarterly market potential per head, growth = quarter-on-quarter trend, fit/comp = 0..100
# bases, people = sales headcount; teams = (city_en, city_zh, opened or None = long established).
REGIONS = [
    dict(code="EAST", en="East", zh="华东", people=88,
         tenure=38, output=450_000, potential=1_050_000,
         growth=0.01, fit=78, comp=62, new_cities={"Hefei", "Ningbo"},
         teams=[("Shanghai", "上海", None), ("Shanghai", "上海", None), ("Hangzhou", "杭州", None),
                ("Nanjing", "南京", None), ("Hefei", "合肥", "2025Q4"), ("Ningbo", "宁波", "2026Q3")]),
    dict(code="SOUTH", en="South", zh="华南", people=100,
         tenure=36, output=445_000, potential=1_000_000,
         growth=0.01, fit=74, comp=66, new_cities=set(),
         teams=[("Guangzhou", "广州", None), ("Guangzhou", "广州", None), ("Shenzhen", "深圳", None),
                ("Shenzhen", "深圳", None), ("Foshan", "佛山", None), ("Xiamen", "厦门", None)]),
    dict(code="NORTH", en="North", zh="华北", people=96,
         tenure=38, output=435_000, potential=950_000,
         growth=0.01, fit=71, comp=58, new_cities=set(),
         teams=[("Beijing", "北京", None), ("Beijing", "北京", None), ("Tianjin", "天津", None),
                ("Jinan", "济南", None), ("Qingdao", "青岛", None), ("Shijiazhuang", "石家庄", None)]),
    dict(code="CENTRAL", en="Central", zh="华中", people=84,
         tenure=32, output=410_000, potential=1_050_000,
         growth=0.01, fit=66, comp=48, new_cities=set(),
         teams=[("Wuhan", "武汉", None), ("Wuhan", "武汉", None), ("Changsha", "长沙", None),
                ("Zhengzhou", "郑州", None), ("Nanchang", "南昌", None)]),
    dict(code="WEST", en="West", zh="西部", people=34,
         tenure=13, output=400_000, potential=2_400_000,
         growth=0.04, fit=60, comp=30, new_cities=set(),
         teams=[("Chengdu", "成都", None), ("Chongqing", "重庆", None), ("Xi'an", "西安", None),
                ("Kunming", "昆明", None)]),
    dict(code="NE", en="Northeast", zh="东北", people=78,
         tenure=58, output=420_000, potential=720_000,
         growth=0.0, fit=68, comp=72, new_cities=set(),
         teams=[("Shenyang", "沈阳", None), ("Shenyang", "沈阳", None), ("Dalian", "大连", None),
                ("Harbin", "哈尔滨", None), ("Changchun", "长春", None)]),
]
NEW_TEAM_SIZES = {"2025Q4": 9, "2026Q3": 7}  # young teams are small

SURNAMES_TEXT = (
    "王:Wang 李:Li 张:Zhang 刘:Liu 陈:Chen 杨:Yang 黄:Huang 赵:Zhao 吴:Wu 周:Zhou 徐:Xu 孙:Sun "
    "马:Ma 朱:Zhu 胡:Hu 郭:Guo 何:He 林:Lin 高:Gao 罗:Luo 郑:Zheng 梁:Liang 谢:Xie 宋:Song "
    "唐:Tang 韩:Han 冯:Feng 邓:Deng 曹:Cao 彭:Peng 田:Tian 董:Dong 潘:Pan 袁:Yuan 蔡:Cai "
    "蒋:Jiang 杜:Du 叶:Ye 程:Cheng 魏:Wei 苏:Su 丁:Ding 沈:Shen 任:Ren")
GIVEN_TEXT = (
    "伟:Wei 芳:Fang 娜:Na 敏:Min 静:Jing 丽:Li 强:Qiang 磊:Lei 军:Jun 洋:Yang 勇:Yong 艳:Yan "
    "杰:Jie 娟:Juan 涛:Tao 明:Ming 超:Chao 秀:Xiu 霞:Xia 平:Ping 刚:Gang 华:Hua 建:Jian 文:Wen "
    "辉:Hui 玲:Ling 宇:Yu 浩:Hao 鹏:Peng 婷:Ting 雪:Xue 琳:Lin 晨:Chen 欣:Xin 凯:Kai 博:Bo "
    "佳:Jia 思:Si 梦:Meng 志:Zhi 海:Hai 晓:Xiao 嘉:Jia 俊:Jun 颖:Ying 斌:Bin 丹:Dan 红:Hong")
SURNAMES = dict(pair.split(":") for pair in SURNAMES_TEXT.split())  # character -> pinyin
GIVEN = dict(pair.split(":") for pair in GIVEN_TEXT.split())

SUMMED = ("hist_sales", "prev_quarter_sales", "market_potential", "headcount", "cost")
ATTRIBUTES = ("hist_sales", "prev_quarter_sales", "market_potential", "new_city_share",
              "headcount", "avg_tenure_months", "ramped_productivity", "product_fit",
              "competitor_coverage", "cost")


def ramp(months: float) -> float:
    """Share of full productivity: 25% in the first 3 months, linear to 100% at 18 months."""
    return 0.25 if months < 3 else min(1.0, 0.25 + 0.75 * (months - 3) / 15)


def quarter_of(months_before: int) -> str:
    """Period code of the month that starts `months_before` months before 2026-10-01."""
    index = 2026 * 12 + 9 - months_before  # 0-based month index
    return f"{index // 12}Q{index % 12 // 3 + 1}"


def months_since(period: str) -> int:
    """Months from the start of `period` to the start of the planning period."""
    year, q = int(period[:4]), int(period[-1])
    return (2026 * 12 + 9) - (year * 12 + (q - 1) * 3)


def split_int(total: int, weights) -> list[int]:
    """Split an integer total by weights; largest remainder keeps the sum exact."""
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    parts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[: total - int(parts.sum())]] += 1
    return [int(p) for p in parts]


def num(x: float, decimals: int) -> str:
    """A plain number: rounded, without trailing zeros."""
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class Names:
    """Unique Chinese names with a romanisation ("Wang Wei")."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.used = rng, set()
        self.surnames, self.given = list(SURNAMES), list(GIVEN)

    def draw(self) -> tuple[str, str]:
        while True:
            surname = self.surnames[self.rng.integers(len(self.surnames))]
            chars = [self.given[i] for i in self.rng.integers(len(self.given), size=2)]
            chars = chars[:1] if self.rng.random() < 0.3 or chars[0] == chars[1] else chars
            zh = surname + "".join(chars)
            if zh not in self.used:
                self.used.add(zh)
                given_en = "".join(GIVEN[c] for c in chars).capitalize()
                return zh, f"{SURNAMES[surname]} {given_en}"


def build_units(rng: np.random.Generator, names: Names) -> list[dict]:
    """Org units in parent-before-child order; persons carry their own measures."""
    company = dict(code="HQ", parent="", level="company", name_en="QuotaFlow Demo Co.",
                   name_zh="演示科技有限公司", opened="2015Q1")
    regions, teams, persons = [], [], []
    for r in REGIONS:
        regions.append(dict(code=r["code"], parent="HQ", level="region", name_en=r["en"],
                            name_zh=r["zh"], opened="2021Q1" if r["code"] == "WEST" else "2015Q1"))
        fixed = [NEW_TEAM_SIZES[t[2]] for t in r["teams"] if t[2]]
        weights = rng.dirichlet(np.full(len(r["teams"]) - len(fixed), 10.0))
        sizes = iter(split_int(r["people"] - sum(fixed), weights))
        for t, (city_en, city_zh, opened) in enumerate(r["teams"], start=1):
            size = NEW_TEAM_SIZES[opened] if opened else next(sizes)
            new_city = int(city_en in r["new_cities"])
            if opened is None:
                age_range = (36, 66) if r["code"] == "WEST" else (60, 132)  # months
                opened = quarter_of(int(rng.integers(*age_range)))
            team = dict(code=f"{r['code']}-T{t}", parent=r["code"], level="team",
                        name_en=f"{city_en} Team {t}", name_zh=f"{city_zh}{t}组",
                        city_en=city_en, city_zh=city_zh, new_city=new_city, opened=opened)
            teams.append(team)
            age = months_since(opened)
            team_factor = rng.lognormal(0, 0.08) * (0.7 if new_city else 1.0)
            for _ in range(size):
                tenure = int(np.clip(round(1 + rng.gamma(4.0, r["tenure"] / 4)), 1, age))
                name_zh, name_en = names.draw()
                persons.append(dict(
                    parent=team["code"], level="person", name_en=name_en, name_zh=name_zh,
                    city_en=city_en, city_zh=city_zh, new_city=new_city,
                    opened=quarter_of(tenure), tenure=tenure, region=r,
                    output=r["output"] * team_factor * rng.lognormal(0, 0.18),
                    potential=round(r["potential"] * (1.6 if new_city else 1.0)
                                    * rng.lognormal(0, 0.25), -3),
                    fit=float(np.clip(r["fit"] + rng.normal(0, 6), 5, 98)),
                    comp=float(np.clip((25 if new_city else r["comp"]) + rng.normal(0, 7), 2, 95)),
                    cost=round(3 * (12_000 + 250 * min(tenure, 60))  # salary + expenses
                               + rng.normal(15_000, 3_000), -2),
                ))
    for i, p in enumerate(persons, start=1):
        p["code"] = f"P{i:04d}"
    return [company, *regions, *teams, *persons]


def employed_share(tenure: int, period: str) -> float:
    """Share of a past quarter in which a person hired `tenure` months ago was employed."""
    return min(1.0, (tenure - MONTHS_BEFORE_PLANNING[period] + 3) / 3)


def person_history(rng: np.random.Generator, p: dict) -> dict[str, int]:
    """Quarter sales of one person for the past periods in which they were employed."""
    sales = {}
    for k, period in enumerate(PAST):
        before = MONTHS_BEFORE_PLANNING[period]
        active = employed_share(p["tenure"], period)
        if active <= 0:
            continue
        trend = (1 + p["region"]["growth"]) ** (k - 3)
        value = (p["output"] * ramp(max(p["tenure"] - before + 1.5, 0)) * active
                 * SEASON[period] * trend * rng.lognormal(0, 0.1))
        sales[period] = round(value)
    return sales


def weekly_split(rng: np.random.Generator, total: int, active: float) -> list[int]:
    """13 weekly results summing to `total`: slow first week, end-of-quarter push."""
    k = np.arange(1, WEEKS + 1)
    weights = (1 + 0.6 * (k / WEEKS) ** 2) * rng.gamma(8, 1 / 8, WEEKS)
    weights[0] *= 0.8
    weights[-1] *= 1.3
    weights[: WEEKS - max(1, round(WEEKS * active))] = 0  # weeks before the hire date
    return split_int(total, weights)


def generate(out_dir: Path | str) -> list[Path]:
    """Generate every seed file into `out_dir`; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    names = Names(rng)
    units = build_units(rng, names)
    by_code = {u["code"]: u for u in units}
    persons = [u for u in units if u["level"] == "person"]

    # Person measures, then exact sums / weighted means up the tree.
    history: dict[str, dict[str, int]] = {u["code"]: {} for u in units}
    weekly = []
    for p in persons:
        p_hist = person_history(rng, p)
        history[p["code"]] = p_hist
        for period, sales in p_hist.items():
            split = weekly_split(rng, sales, employed_share(p["tenure"], period))
            for week, value in enumerate(split, start=1):
                weekly.append((p["code"], period, week, value))
        p.update(hist_sales=p_hist.get("2025Q4", 0), prev_quarter_sales=p_hist.get("2026Q3", 0),
                 market_potential=int(p.pop("potential")), headcount=1, cost=int(p.pop("cost")),
                 ramped_productivity=FULL_PRODUCTIVITY * ramp(p["tenure"]))
    members: dict[str, list[dict]] = {u["code"]: [] for u in units}  # persons under a unit
    for p in persons:
        code = p["code"]
        while code:
            members[code].append(p)
            if code != p["code"]:
                for period, sales in history[p["code"]].items():
                    history[code][period] = history[code].get(period, 0) + sales
            code = by_code[code]["parent"]
    rows = []
    for u in units:
        ps = members[u["code"]]
        pot = np.array([p["market_potential"] for p in ps], dtype=float)
        row = {col: sum(p[col] for p in ps) for col in SUMMED}
        row.update(
            new_city_share=num(float(np.average([p["new_city"] for p in ps], weights=pot)), 4),
            avg_tenure_months=num(float(np.mean([p["tenure"] for p in ps])), 1),
            ramped_productivity=round(float(np.mean([p["ramped_productivity"] for p in ps]))),
            product_fit=num(float(np.average([p["fit"] for p in ps], weights=pot)), 1),
            competitor_coverage=num(float(np.average([p["comp"] for p in ps], weights=pot)), 1),
        )
        rows.append(row)
    company_hist = rows[0]["hist_sales"]
    company_target = round(company_hist * TARGET_GROWTH, -5)

    # Actuals of the planning period: each team runs at a chosen pace against a reference
    # target (the company target split by share of 2026Q3 sales), split over its persons.
    actuals = []
    for team in (u for u in units if u["level"] == "team"):
        ps = members[team["code"]]
        run_rate = sum(p["prev_quarter_sales"] for p in ps) / rows[0]["prev_quarter_sales"]
        reference = company_target * run_rate
        pace = {LAGGING: LAGGING_PACE, AHEAD: AHEAD_PACE}.get(team["code"])
        if pace is None:
            pace = rng.uniform(0.88, 1.06) + rng.normal(0, 0.04, ACTUAL_WEEKS)
        shares = [p["ramped_productivity"] * p["output"] for p in ps]
        start = date.fromisoformat(PERIODS[PLANNING][0])
        for week in range(1, ACTUAL_WEEKS + 1):
            days = 7 - start.weekday() if week == 1 else 7  # the first week is clipped
            total = round(reference / WEEKS * pace[week - 1] * days / 7)
            weights = np.array(shares) * rng.gamma(10, 0.1, len(ps))
            # Dated on the Sunday that ends the planning period's week ``week`` (the
            # quarter starts on a Thursday: its first ISO week is clipped to four days).
            day = start + timedelta(days=7 * (week - 1) + 6 - start.weekday())
            for p, value in zip(ps, split_int(total, weights), strict=True):
                actuals.append((p["code"], week, day.isoformat(), value))

    company = {
        "company": {"code": "HQ", "name_en": units[0]["name_en"], "name_zh": units[0]["name_zh"]},
        "levels": [
            {"key": "company", "name_en": "Company", "name_zh": "公司", "alias_zh": "战略"},
            {"key": "region", "name_en": "Region", "name_zh": "区域", "alias_zh": "战区"},
            {"key": "team", "name_en": "Team", "name_zh": "团队", "alias_zh": "战队"},
            {"key": "person", "name_en": "Person", "name_zh": "个人", "alias_zh": "战士"},
        ],
        "periods": [{"code": c, "start": s, "end": e} for c, (s, e) in PERIODS.items()],
        "planning_period": PLANNING,
        "currency": "CNY",
        "company_target_2026Q4": int(company_target),
    }
    written = [out / "company.json"]
    written[0].write_text(json.dumps(company, ensure_ascii=False, indent=2) + "\n", "utf-8")

    def write(name: str, header: list[str], data) -> None:
        path = out / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(data)
        written.append(path)

    write("org_units.csv", ["code", "parent_code", "level", "name_en", "name_zh", "city_en",
                            "city_zh", "new_city", "opened"],
          [[u["code"], u["parent"], u["level"], u["name_en"], u["name_zh"], u.get("city_en", ""),
            u.get("city_zh", ""), u.get("new_city", ""), u["opened"]] for u in units])
    write("attributes.csv", ["period", "unit_code", *ATTRIBUTES],
          [[PLANNING, u["code"], *(r[c] for c in ATTRIBUTES)]
           for u, r in zip(units, rows, strict=True)])
    write("units.csv", ["id", "parent", "level", "name_en", "name_zh", *ATTRIBUTES],
          [[u["code"], u["parent"], u["level"], u["name_en"], u["name_zh"],
            *(r[c] for c in ATTRIBUTES)] for u, r in zip(units, rows, strict=True)])
    write("history.csv", ["unit_code", "period", "sales"],
          [[u["code"], period, history[u["code"]][period]]
           for u in units for period in PAST if period in history[u["code"]]])
    write("weekly_history.csv", ["unit_code", "period", "week", "sales"], weekly)
    write("actuals.csv", ["unit_code", "week", "date", "sales"], actuals)
    write("users.csv", ["username", "display_name_en", "display_name_zh", "role",
                        "scope_unit_code", "person_unit_code", "locale"], build_users(units, names))
    return written


def build_users(units: list[dict], names: Names) -> list[list[str]]:
    """Demo accounts: one per role, a head per region, some team leads and sales people."""
    users = [["admin", "IT Admin", "系统管理员", "admin", "HQ", "", "en"],
             ["hrbp", "HR Business Partner", "人力资源业务伙伴", "hrbp", "HQ", "", "zh"],
             ["ceo", "Chief Executive", "首席执行官", "executive", "HQ", "", "zh"],
             ["cfo", "Chief Financial Officer", "首席财务官", "executive", "HQ", "", "en"]]
    for region in (u for u in units if u["level"] == "region"):
        zh, en = names.draw()
        head = f"head.{region['code'].lower()}"
        users.append([head, en, zh, "region_head", region["code"], "", "zh"])
        teams = [u for u in units if u["parent"] == region["code"]]
        for team in teams:
            if team["code"][-3:] in ("-T1", "-T2") or team["code"] in (LAGGING, AHEAD) \
                    or team["opened"] == PAST[-1]:  # the brand-new team
                zh, en = names.draw()
                user = f"lead.{team['code'].lower().replace('-', '.')}"
                users.append([user, en, zh, "team_lead", team["code"], "", "zh"])
        sellers = [teams[0]["code"], teams[-1]["code"]]
        sellers += [t["code"] for t in teams if t["code"] == LAGGING]
        for team_code in sellers:  # the first person of these teams
            p = next(u for u in units if u["parent"] == team_code)
            locale = "en" if p["code"] == "P0001" else "zh"
            users.append([f"sales.{p['code'].lower()}", p["name_en"], p["name_zh"], "sales",
                          p["code"], p["code"], locale])
    return users


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for path in generate(target):
        print(path)
