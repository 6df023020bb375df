// LTI Dynamic Registration 1.0 §3.7: tell the LMS the registration is finished so it can close the frame.
(function () {
  "use strict";
  function close() { (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*"); }
  var button = document.getElementById("close-registration");
  if (button) { button.addEventListener("click", close); }
  close();
})();
