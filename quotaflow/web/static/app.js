// Small progressive enhancements; every page works without them.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.submit();
  }
});

// The weights screen shows the running total as weights are typed.
function updateWeightTotal(form) {
  const output = form.querySelector("[data-weight-total]");
  if (!output) return;
  let total = 0;
  form.querySelectorAll("[data-weight]").forEach((input) => {
    const value = parseFloat(input.value.replace(",", ""));
    if (!Number.isNaN(value)) total += value;
  });
  output.value = Math.round(total * 100) / 100;
  output.classList.toggle("error", Math.abs(total - 100) > 1e-9);
}
document.addEventListener("input", (event) => {
  const form = event.target.closest && event.target.closest("form[data-weights]");
  if (form) updateWeightTotal(form);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-weights]").forEach(updateWeightTotal);
});

// One menu group open at a time; a click elsewhere or Escape closes it.
function closeMenus(except) {
  document.querySelectorAll("details[data-menu][open]").forEach((menu) => {
    if (menu !== except) menu.removeAttribute("open");
  });
}
document.addEventListener("click", (event) => {
  const menu = event.target.closest && event.target.closest("details[data-menu]");
  closeMenus(menu);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeMenus(null);
});
