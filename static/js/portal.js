// The portal's live status: htmx polls the status fragment; this keeps it calm for screen readers.
// An unchanged answer (the browser revalidated it: 304, same ETag) is not swapped in again, so
// nothing is re-read aloud; a changed one is swapped and its summary is announced once.
(function () {
  "use strict";

  // No poll from a tab nobody looks at. (Not an hx-trigger filter: htmx runs those with eval,
  // which the Content-Security-Policy refuses.) The poll goes on; this one request is skipped.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute("data-poll-when-visible") && document.visibilityState !== "visible") {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute("data-live-etag")) return;
    var etag = event.detail.xhr.getResponseHeader("ETag");
    if (etag && etag === target.getAttribute("data-live-etag")) {
      event.detail.shouldSwap = false;
      return;
    }
    if (etag) target.setAttribute("data-live-etag", etag);
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.hasAttribute("data-live-etag")) {
      var summary = target.querySelector("[data-live-summary]");
      var announcer = document.getElementById("live-announcer");
      if (summary && announcer) announcer.textContent = summary.textContent.replace(/\s+/g, " ").trim();
    }
    // A question was sent: move focus to the acknowledgement so it is read out.
    var ack = document.getElementById("question-ack");
    if (ack && event.detail.target && event.detail.target.id === "question") ack.focus();
  });
})();
