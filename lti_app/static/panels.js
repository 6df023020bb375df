// Teacher panel: autosave the note draft (server-side, encrypted) so it survives a reload of the LMS frame.
(function () {
  "use strict";
  var form = document.getElementById("note-form");
  if (!form || !window.fetch) return;
  var body = form.querySelector("textarea[name=body]");
  var status = document.getElementById("draft-status");
  var timer = null;
  function save() {
    var data = new FormData();
    data.append("t", form.querySelector("input[name=t]").value);
    data.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    data.append("body", body.value);
    fetch(form.getAttribute("data-draft-url"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { if (status) status.textContent = r.ok ? "Draft saved." : "Draft not saved."; })
      .catch(function () { if (status) status.textContent = "Draft not saved (offline?)."; });
  }
  body.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(save, 800); });
})();
