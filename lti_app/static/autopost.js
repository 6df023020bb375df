// Practice LMS: post the signed id_token to the tool, as an LMS does after its OIDC authorization step.
document.getElementById("autopost").submit();
