// Marks the top bar's link to the current area (aria-current), so screen readers and eyes both
// know where they are. No framework: the pages work without it.
document.addEventListener("DOMContentLoaded", function () {
  var links = document.querySelectorAll(".mainnav a");
  var best = null;
  links.forEach(function (link) {
    var path = link.pathname;
    var here = path === "/" ? location.pathname === "/" : location.pathname.indexOf(path) === 0;
    if (here && (best === null || path.length > best.pathname.length)) {
      best = link;
    }
  });
  if (best !== null) {
    best.setAttribute("aria-current", "page");
  }
});

// The filing form suggests the next window each environment allows (UTC instants from the
// server) and shows it in the browser's own time zone, until the person types their own.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-suggest-window]");
  var data = document.getElementById("suggested-windows");
  if (form === null || data === null) {
    return;
  }
  var windows = JSON.parse(data.textContent);
  var zone = form.querySelector("[name=time_zone]");
  var start = form.querySelector("[name=window_start]");
  var end = form.querySelector("[name=window_end]");
  var environment = form.querySelector("[name=environment]");
  var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone || !start || !end || !environment) {
    return;
  }
  if (browserZone && zone.querySelector('option[value="' + browserZone + '"]')) {
    zone.value = browserZone;
  }
  function local(iso) {
    var moment = new Date(iso);
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      "T" + pad(moment.getHours()) + ":" + pad(moment.getMinutes());
  }
  var suggested = { start: null, end: null };
  function suggest() {
    var window = windows[environment.value];
    var untouched = (start.value === "" || start.value === suggested.start) &&
      (end.value === "" || end.value === suggested.end);
    if (!window || !untouched || zone.value !== browserZone) {
      return;
    }
    suggested = { start: local(window.start), end: local(window.end) };
    start.value = suggested.start;
    end.value = suggested.end;
  }
  suggested = { start: start.value, end: end.value };
  suggest();
  environment.addEventListener("change", suggest);
});

// A button marked data-print prints the page (the CAB's agenda has its own print styles).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
});
