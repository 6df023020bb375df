// LTI Client Side postMessages: keep the OIDC state in the LMS's storage (lti.put_data at login) and read it
// back at launch (lti.get_data) when the browser dropped the tool's cookie.
(function () {
  "use strict";
  var el = document.getElementById("lti-storage");
  if (!el) return;
  var mode = el.getAttribute("data-mode"), key = el.getAttribute("data-key"), value = el.getAttribute("data-value");
  var origin = el.getAttribute("data-origin") || "*", targetName = el.getAttribute("data-target");
  var target = window.parent;
  if (targetName && targetName !== "_parent") {
    try { target = window.parent.frames[targetName] || window.parent; } catch (e) { target = window.parent; }
  }
  var id = "caseload-" + Math.random().toString(36).slice(2);
  var done = false;
  function finish(ok, got) {
    if (done) return; done = true;
    if (mode === "put") { window.location.href = el.getAttribute("data-next"); return; }
    if (ok && got === value) { document.getElementById("lti-storage-form").submit(); return; }
    document.getElementById("lti-storage-status").hidden = true;
    document.getElementById("lti-storage-failed").hidden = false;
  }
  window.addEventListener("message", function (ev) {
    var d = ev.data || {};
    if (d.message_id !== id || (origin !== "*" && ev.origin !== origin)) return;
    if (d.subject === "lti.put_data.response") finish(!d.error);
    if (d.subject === "lti.get_data.response") finish(!d.error, d.value);
  });
  var msg = { subject: mode === "put" ? "lti.put_data" : "lti.get_data", message_id: id, key: key };
  if (mode === "put") msg.value = value;
  try { target.postMessage(msg, origin); } catch (e) { finish(false); }
  setTimeout(function () { finish(false); }, 3000);
})();
