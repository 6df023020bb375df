// LTI Client Side postMessages (platform storage, 1EdTech LTI Client Side postMessages 1.0): Caseload keeps values in
// the LMS's storage when the browser drops its cookies inside the LMS frame.
//   put    - lti.put_data, then go on (login: the OIDC state; launch: the page token's binding secret)
//   check  - lti.get_data and compare with the expected value, then submit (launch: the OIDC state came back)
//   unlock - lti.get_data of the binding secret, then repeat the page request with it in the POST body
// Messages go only to the origins the server names (data-origins, space separated: the LMS origins Caseload knows
// for this platform) and answers are accepted only from them.
(function () {
  "use strict";
  var el = document.getElementById("lti-storage");
  if (!el) return;
  var mode = el.getAttribute("data-mode"), key = el.getAttribute("data-key"), value = el.getAttribute("data-value");
  var origins = (el.getAttribute("data-origins") || "").split(" ").filter(Boolean);
  var targetName = el.getAttribute("data-target");
  var form = document.getElementById("lti-storage-form");
  var target = window.parent;
  if (targetName && targetName !== "_parent") {
    try { target = window.parent.frames[targetName] || window.parent; } catch (e) { target = window.parent; }
  }
  var id = "caseload-" + Math.random().toString(36).slice(2);
  var done = false;
  function failed() {
    var status = document.getElementById("lti-storage-status");
    if (status) status.hidden = true;
    document.getElementById("lti-storage-failed").hidden = false;
  }
  function finish(ok, got) {
    if (done) return; done = true;
    if (mode === "put") {
      // Login: go on to the LMS either way (the state cookie may be enough). Launch: without the secret in the LMS's
      // storage no later page could be opened, so say so now.
      if (!form) { window.location.href = el.getAttribute("data-next"); } else if (ok) { form.submit(); } else { failed(); }
      return;
    }
    if (mode === "check") { if (ok && got === value) { form.submit(); } else { failed(); } return; }
    if (mode === "unlock") {
      if (ok && typeof got === "string" && got) {
        form.querySelector("input[name='" + el.getAttribute("data-field") + "']").value = got;
        form.submit();
      } else { failed(); }
    }
  }
  window.addEventListener("message", function (ev) {
    var d = ev.data || {};
    if (d.message_id !== id || origins.indexOf(ev.origin) < 0) return;
    if (d.subject === "lti.put_data.response") finish(!d.error);
    if (d.subject === "lti.get_data.response") finish(!d.error, d.value);
  });
  if (window.parent === window || !origins.length) { finish(false); return; }
  var msg = { subject: mode === "put" ? "lti.put_data" : "lti.get_data", message_id: id, key: key };
  if (mode === "put") msg.value = value;
  origins.forEach(function (origin) {
    try { target.postMessage(msg, origin); } catch (e) { /* another origin may answer */ }
  });
  setTimeout(function () { finish(false); }, 3000);
})();
