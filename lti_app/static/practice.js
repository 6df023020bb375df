// Practice LMS: honour the tool's lti.frameResize message and mark the active launch button.
(function () {
  "use strict";
  var frame = document.getElementById("tool");
  var toolOrigin = frame.getAttribute("data-tool-origin");
  var store = {};  // LTI platform storage for the tool (lti.put_data / lti.get_data), kept per page like an LMS
  window.addEventListener("message", function (ev) {
    var d = ev.data || {};
    if (ev.origin !== toolOrigin || !d.message_id) return;
    if (d.subject === "lti.put_data") {
      store[d.key] = d.value;
      ev.source.postMessage({ subject: "lti.put_data.response", message_id: d.message_id, key: d.key, value: d.value }, ev.origin);
    } else if (d.subject === "lti.get_data") {
      ev.source.postMessage({ subject: "lti.get_data.response", message_id: d.message_id, key: d.key, value: store[d.key] }, ev.origin);
    }
  });
  window.addEventListener("message", function (ev) {
    var d = ev.data || {};
    if (d.subject === "lti.frameResize" && d.height && ev.source === frame.contentWindow) {
      frame.style.height = Math.max(400, Math.min(5000, parseInt(d.height, 10))) + "px";
    } else if (d.subject === "lti.scrollToTop" && ev.source === frame.contentWindow) {
      frame.scrollIntoView({ block: "start" });  // as Canvas does: the top of the tool's frame into view
    }
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a.launch");
    if (!a) return;
    document.querySelectorAll("a.launch").forEach(function (x) { x.removeAttribute("aria-current"); });
    a.setAttribute("aria-current", "true");
  });
})();
