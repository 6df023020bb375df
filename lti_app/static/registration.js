// LTI Dynamic Registration 1.0 §3.7: tell the LMS the registration is finished so it can close the frame.
// When the page shows something to copy (the Moodle webhook secret, shown once), the frame closes only when the
// administrator presses Close; otherwise at once.
(function () {
  "use strict";
  function close() { (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*"); }
  var button = document.getElementById("close-registration");
  if (button) { button.addEventListener("click", close); }
  if (!button || !button.hasAttribute("data-keep-open")) { close(); }
})();
