// The jobs list's "move selected jobs": "select all on this page" ticks every row, a row unticked
// unticks it, and the count of ticked jobs is shown. Without JavaScript the form still works: the
// server reads "select all on this page" as every row the page listed. Listeners sit on the
// document, so rows swapped in by the htmx filters are handled too.
(function () {
  "use strict";

  function update(form) {
    var rows = form.querySelectorAll("[data-select-row]");
    var all = form.querySelector("[data-select-all]");
    var ticked = 0;
    rows.forEach(function (row) { if (row.checked) ticked += 1; });
    if (all) {
      all.checked = rows.length > 0 && ticked === rows.length;
      all.indeterminate = ticked > 0 && ticked < rows.length;
    }
    var count = form.querySelector("[data-selected-count]");
    if (count) count.textContent = ticked ? (form.getAttribute("data-selected-text") || "") + " " + ticked : "";
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    var form = box.closest && box.closest("[data-job-selection]");
    if (!form) return;
    if (box.hasAttribute("data-select-all")) {
      form.querySelectorAll("[data-select-row]").forEach(function (row) { row.checked = box.checked; });
    }
    if (box.hasAttribute("data-select-all") || box.hasAttribute("data-select-row")) update(form);
  });
})();
