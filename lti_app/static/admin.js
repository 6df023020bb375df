// Administration: show the disclosure fields only when the copy leaves the school. The form works without it
// (the fields are then always shown, and the server checks them only for a copy that leaves the school).
(function () {
  "use strict";
  var form = document.getElementById("export-form");
  if (!form) return;
  var box = document.getElementById("disclosure-fields");
  function sync() {
    var leaves = form.querySelector("input[name=leaves_school]:checked");
    var on = leaves && leaves.value === "yes";
    box.hidden = !on;
    ["recipient", "purpose", "legal_basis"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.required = on; }
    });
  }
  form.addEventListener("change", sync);
  sync();
})();
