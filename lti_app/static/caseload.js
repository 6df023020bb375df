// Caseload: small progressive enhancement. Pages work without it.
(function () {
  "use strict";
  // Ask the LMS frame to fit our height (Canvas lti.frameResize; harmless elsewhere).
  function resize() {
    if (window.parent === window) return;
    var h = Math.ceil(document.documentElement.scrollHeight);
    try { window.parent.postMessage({ subject: "lti.frameResize", height: h }, "*"); } catch (e) { /* ignore */ }
  }
  window.addEventListener("load", resize);
  if (window.ResizeObserver) { new ResizeObserver(resize).observe(document.documentElement); }
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
