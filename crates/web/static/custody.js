// Custody console: the one script, served by Custody itself (the Content-Security-Policy runs no
// inline script). Every page works without it; it only saves a click.

// The agency switcher of central users submits itself when its choice changes.
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("view-agency");
  if (select && select.form) {
    select.addEventListener("change", () => select.form.submit());
  }
});
