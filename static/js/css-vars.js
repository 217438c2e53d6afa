// Values only the server knows (a visit's place on the schedule, how far a progress bar has gone),
// given to the stylesheet as CSS custom properties. The Content-Security-Policy (style-src 'self')
// refuses style="" attributes; a property set through the CSSOM is allowed. So a page writes
// data-style="--left:12.500%;--width:25.000%" and this sets each custom property it names (only
// custom properties: the stylesheet decides what they do). Fragments swapped in by htmx (the
// progress polls) are handled as they arrive.
(function () {
  "use strict";

  function apply(root) {
    if (!root || !root.querySelectorAll) return;
    var elements = Array.prototype.slice.call(root.querySelectorAll("[data-style]"));
    if (root.hasAttribute && root.hasAttribute("data-style")) elements.push(root);
    elements.forEach(function (element) {
      element.getAttribute("data-style").split(";").forEach(function (declaration) {
        var colon = declaration.indexOf(":");
        var name = declaration.slice(0, colon).trim();
        if (colon < 0 || name.indexOf("--") !== 0) return;
        element.style.setProperty(name, declaration.slice(colon + 1).trim());
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(document); });
  } else {
    apply(document);
  }
  document.addEventListener("htmx:load", function (event) { apply(event.detail.elt); });
})();
