// Flask-Admin asks "delete this record?" in inline onclick handlers, which the
// Content-Security-Policy blocks; this asks the same question from a static file.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !/\/delete\/?$/.test(new URL(form.action).pathname)) {
    return;
  }
  const button = form.querySelector("button[title]");
  const question = button ? `${button.title}?` : "Delete?";
  if (!window.confirm(question)) {
    event.preventDefault();
  }
});
