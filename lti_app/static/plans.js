// Plans editor, progressive only: show a catalogue entry's wording before it is added.
(function () {
  "use strict";
  var select = document.getElementById("code");
  var hint = document.getElementById("code-hint");
  if (!select || !hint) return;
  var initial = hint.textContent;
  select.addEventListener("change", function () {
    var opt = select.options[select.selectedIndex];
    var text = opt && opt.getAttribute("data-text");
    hint.textContent = text ? "Teachers will read: " + text : initial;
  });
})();
