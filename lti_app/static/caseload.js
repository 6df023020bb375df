// Caseload: small progressive enhancement. Pages work without it.
(function () {
  "use strict";
  // Ask the LMS frame to fit our height (Canvas lti.frameResize; harmless elsewhere).
  function resize() {
    if (window.parent === window) return;
    var h = Math.ceil(document.documentElement.scrollHeight);
    try { window.parent.postMessage({ subject: "lti.frameResize", height: h }, "*"); } catch (e) { /* ignore */ }
  }
  // A table wider than the frame scrolls sideways inside its .table-wrap: make that region reachable and named for
  // keyboard users (WCAG 2.1.1), only while it actually scrolls, so narrow frames get the tab stop and wide ones don't.
  function scrollRegions() {
    document.querySelectorAll(".table-wrap").forEach(function (w) {
      if (w.scrollWidth > w.clientWidth + 1) {
        if (!w.hasAttribute("tabindex")) {
          var cap = w.querySelector("caption");
          var heading = w.previousElementSibling;
          var name = cap ? cap.textContent : (heading && /^H[2-4]$/.test(heading.tagName) ? heading.textContent : "Table");
          w.setAttribute("tabindex", "0");
          w.setAttribute("role", "region");
          w.setAttribute("aria-label", name.trim() + " (scrolls sideways)");
        }
      } else if (w.getAttribute("role") === "region") {
        w.removeAttribute("tabindex"); w.removeAttribute("role"); w.removeAttribute("aria-label");
      }
    });
  }
  function layout() { scrollRegions(); resize(); }
  window.addEventListener("load", layout);
  if (window.ResizeObserver) { new ResizeObserver(layout).observe(document.documentElement); }
  // Forms with data-confirm ask before submitting.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
  // Print buttons.
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest && ev.target.closest("[data-print]");
    if (t) { ev.preventDefault(); window.print(); }
  });
})();
