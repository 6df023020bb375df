// Caseload: small progressive enhancement. Pages work without it.
(function () {
  "use strict";
  // Ask the LMS frame to fit our height (Canvas lti.frameResize; harmless elsewhere).
  function resize() {
    if (window.parent === window) return;
    var h = Math.ceil(document.documentElement.scrollHeight);
    try { window.parent.postMessage({ subject: "lti.frameResize", height: h }, "*"); } catch (e) { /* ignore */ }
  }
  // A table wider than the frame scrolls sideways inside its .table-wrap: make that region reachable and named for
  // keyboard users (WCAG 2.1.1), only while it actually scrolls, so narrow frames get the tab stop and wide ones don't.
  function scrollRegions() {
    document.querySelectorAll(".table-wrap").forEach(function (w) {
      if (w.scrollWidth > w.clientWidth + 1) {
        if (!w.hasAttribute("tabindex")) {
          var cap = w.querySelector("caption");
          var heading = w.previousElementSibling;
          var name = cap ? cap.textContent : (heading && /^H[2-4]$/.test(heading.tagName) ? heading.textContent : "Table");
          w.setAttribute("tabindex", "0");
          w.setAttribute("role", "region");
          w.setAttribute("aria-label", name.trim() + " (scrolls sideways)");
        }
      } else if (w.getAttribute("role") === "region") {
        w.removeAttribute("tabindex"); w.removeAttribute("role"); w.removeAttribute("aria-label");
      }
    });
  }
  function layout() { scrollRegions(); resize(); }
  window.addEventListener("load", layout);
  if (window.ResizeObserver) { new ResizeObserver(layout).observe(document.documentElement); }
  // The result of an action (a confirmation or the form's errors, rendered as .flash) is where the eyes are: it takes
  // focus (screen readers read it, WCAG 2.4.3) and is scrolled into view inside the LMS frame. Chromium and Firefox
  // scroll the LMS page too (scrollIntoView reaches the parent frames); Canvas is also asked to bring the top of the
  // frame into view (lti.scrollToTop) when the message sits near the top of the page. Moodle's frame needs nothing
  // more than the in-frame scroll.
  // A message rendered at the top of the page (data-result) moves beside the form it concerns: the form whose fields
  // carry the re-rendered form's name (data-form, on a 422), the element the server names (data-result-at), or the
  // element the redirect's #anchor names (a confirmation). After a heading it goes below it; into a form, first.
  function placeResults() {
    var boxes = document.querySelectorAll("main [data-result]");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i], target = null, form = box.getAttribute("data-form");
      var at = box.getAttribute("data-result-at") || (box.getAttribute("role") === "status" ? window.location.hash.slice(1) : "");
      if (form) {
        // the re-rendered form's fields are named "<form>-<field>" (field names have no hyphen)
        var fields = document.querySelectorAll("main form input[id], main form select[id], main form textarea[id]");
        for (var j = 0; j < fields.length && !target; j++) {
          var id = fields[j].id;
          if (id.indexOf(form + "-") === 0 && /^[a-z0-9_]+$/.test(id.slice(form.length + 1))) {
            target = fields[j].closest("form");
          }
        }
      }
      if (!target && at) {
        try { target = document.getElementById(decodeURIComponent(at)); } catch (e) { target = null; }
      }
      if (!target || !target.closest("main") || target.contains(box)) continue;
      if (/^H[1-6]$/.test(target.tagName)) {
        target.insertAdjacentElement("afterend", box);
      } else if (target.tagName === "FORM") {
        target.insertAdjacentElement("afterbegin", box);
      } else {
        var head = target.firstElementChild;
        if (head && /^H[1-6]$/.test(head.tagName)) { head.insertAdjacentElement("afterend", box); }
        else { target.insertAdjacentElement("afterbegin", box); }
      }
    }
  }
  function showResult() {
    placeResults();
    var acted = /[?&](done|notice|problem)=/.test(window.location.search);
    var box = document.querySelector(acted ? "main #form-errors, main .flash[role=alert], main .flash"
                                           : "main #form-errors, main .flash[role=alert]");
    if (!box) return;
    if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "-1");
    box.classList.add("result-focus");
    try { box.focus({ preventScroll: true }); } catch (e) { box.focus(); }
    var top = box.getBoundingClientRect().top + window.scrollY;
    if (window.parent !== window && top < 400) {
      try { window.parent.postMessage({ subject: "lti.scrollToTop" }, "*"); } catch (e) { /* ignore */ }
    }
    box.scrollIntoView({ block: "center" });
    // A redirect's #anchor makes the browser scroll to (and focus) the anchored element once the page has loaded,
    // which would take the focus away from the message: give it back after that.
    if (window.location.hash) {
      var again = function () {
        if (document.activeElement === box) return;
        try { box.focus({ preventScroll: true }); } catch (e) { box.focus(); }
        box.scrollIntoView({ block: "center" });
      };
      if (document.readyState === "complete") { setTimeout(again, 0); }
      else { window.addEventListener("load", function () { setTimeout(again, 0); }); }
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", showResult); } else { showResult(); }
  // Forms with data-confirm ask before submitting.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
  // Print buttons.
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest && ev.target.closest("[data-print]");
    if (t) { ev.preventDefault(); window.print(); }
  });
})();
