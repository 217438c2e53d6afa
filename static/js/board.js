// The board's drag and drop (SortableJS, vendored): a card dropped in another column opens the
// move's page — its preview of what the customer will be told, and the confirmation — exactly
// as the stage chosen under the card and its "Move" button do without JavaScript. Nothing moves until it is confirmed.
(function () {
  "use strict";

  function moveUrl(card, column) {
    var form = card.querySelector("form.board-move");
    var url = new URL(card.dataset.moveUrl, window.location.href);
    new FormData(form).forEach(function (value, name) {
      url.searchParams.set(name, value);
    });
    url.searchParams.set("to", column.dataset.stage);
    url.searchParams.set("expected", card.dataset.stage);
    return url.toString();
  }

  function setUp() {
    if (typeof window.Sortable === "undefined") return;
    document.querySelectorAll(".board-cards").forEach(function (column) {
      window.Sortable.create(column, {
        group: "board",
        draggable: ".board-card",
        // Links, the menu and its button keep their clicks.
        filter: "a, select, button, input, label",
        preventOnFilter: false,
        forceFallback: true,
        animation: 0,
        onEnd: function (event) {
          if (event.from === event.to) return;
          window.location.assign(moveUrl(event.item, event.to));
        },
      });
    });
  }

  // Back from the move's page (the browser's page cache): the board as it is, not as dragged.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
