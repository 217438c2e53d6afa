// The admin's autocomplete fields (Select2 4.0, as Django ships it) named after their field's
// <label>, which Select2 does not do (axe: label, aria-input-field-name): the search box of a
// multiple choice (inline, in the container Select2 puts right after its <select>), the closed
// single choice (its combobox, read with the choice made), and the search box of its dropdown,
// named when it opens. An open combobox also says which list it controls (aria-required-attr).
// No dependency: the observer catches what Select2 builds, whenever it builds it.
(function () {
  "use strict";

  function labelOf(select) {
    if (!select || select.tagName !== "SELECT" || !select.id) return null;
    return document.querySelector('label[for="' + select.id + '"]');
  }

  function fieldName(select) {
    var label = labelOf(select);
    var text = label ? label.textContent : (select && select.getAttribute("aria-label")) || "";
    return text.replace(/\s+/g, " ").replace(/\s*:\s*$/, "").trim();
  }

  function nameFields() {
    var containers = document.querySelectorAll("select + .select2-container");
    Array.prototype.forEach.call(containers, function (container) {
      var select = container.previousElementSibling;
      var name = fieldName(select);
      if (!name) return;
      var box = container.querySelector(".select2-search--inline .select2-search__field");
      if (box && box.getAttribute("aria-label") !== name) box.setAttribute("aria-label", name);
      var single = container.querySelector(".select2-selection--single");
      var label = labelOf(select);
      if (single && label && !single.hasAttribute("data-a11y-named")) {
        if (!label.id) label.id = select.id + "-label";
        var rendered = single.querySelector(".select2-selection__rendered");
        // "Customer, Dupont household": the field, then the choice Select2 shows.
        single.setAttribute("aria-labelledby", label.id + (rendered && rendered.id ? " " + rendered.id : ""));
        if (rendered) rendered.setAttribute("aria-labelledby", label.id);
        single.setAttribute("data-a11y-named", "");
      }
    });
  }

  new MutationObserver(nameFields).observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener("DOMContentLoaded", function () {
    nameFields();
    // Select2 says it opened and closed through jQuery's events only (django.jQuery).
    if (!(window.django && window.django.jQuery)) return;
    var $ = window.django.jQuery;
    $(document).on("select2:open", function (event) {
      var container = event.target.nextElementSibling;
      var combobox = container && container.querySelector('.select2-selection[role="combobox"]');
      if (combobox && combobox.getAttribute("aria-owns")) {
        combobox.setAttribute("aria-controls", combobox.getAttribute("aria-owns"));
      }
      var name = fieldName(event.target);
      var box = document.querySelector(".select2-container--open .select2-search--dropdown .select2-search__field");
      if (name && box) box.setAttribute("aria-label", name);
    });
    $(document).on("select2:close", function (event) {
      var container = event.target.nextElementSibling;
      var combobox = container && container.querySelector('.select2-selection[role="combobox"]');
      if (combobox) combobox.removeAttribute("aria-controls");
    });
  });
})();
