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

// A button marked data-print prints the page (the CAB's agenda has its own print styles).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
});
