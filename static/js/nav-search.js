// The navigation's search box: htmx brings the live results under it (hx-get on input); this
// adds the keyboard and the closing. Down arrow from the box goes to the first result, up and
// down move between results, Escape closes them and returns to the box; a click elsewhere closes
// them. Without JavaScript the box is a plain form and Enter opens the results page.
(function () {
  "use strict";

  function links(panel) {
    return Array.prototype.slice.call(panel.querySelectorAll("a[href]"));
  }

  function close(panel) {
    panel.replaceChildren();
  }

  function setUp() {
    var box = document.getElementById("nav-search");
    var panel = document.getElementById("nav-search-results");
    if (!box || !panel) return;
    var form = box.form;

    box.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        var found = links(panel);
        if (found.length) {
          event.preventDefault();
          found[0].focus();
        }
      } else if (event.key === "Escape" && panel.childElementCount) {
        event.preventDefault();
        close(panel);
      }
    });

    panel.addEventListener("keydown", function (event) {
      var found = links(panel);
      var at = found.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && at >= 0) {
        event.preventDefault();
        (found[at + 1] || found[at]).focus();
      } else if (event.key === "ArrowUp" && at >= 0) {
        event.preventDefault();
        if (at === 0) box.focus();
        else found[at - 1].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        close(panel);
        box.focus();
      }
    });

    document.addEventListener("click", function (event) {
      if (!form.contains(event.target)) close(panel);
    });
    form.addEventListener("focusout", function (event) {
      if (event.relatedTarget && !form.contains(event.relatedTarget)) close(panel);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
