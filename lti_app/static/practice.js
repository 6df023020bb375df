// Practice LMS: honour the tool's lti.frameResize message and mark the active launch button.
(function () {
  "use strict";
  var frame = document.getElementById("tool");
  window.addEventListener("message", function (ev) {
    var d = ev.data || {};
    if (d.subject === "lti.frameResize" && d.height && ev.source === frame.contentWindow) {
      frame.style.height = Math.max(400, Math.min(5000, parseInt(d.height, 10))) + "px";
    }
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a.launch");
    if (!a) return;
    document.querySelectorAll("a.launch").forEach(function (x) { x.removeAttribute("aria-current"); });
    a.setAttribute("aria-current", "true");
  });
})();
