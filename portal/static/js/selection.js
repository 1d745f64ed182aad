// The selection screen's counter: "N selected of M" follows every tick (mouse or Space).
// The count is the selection carried from other pages (data-carried, counted by the
// server) plus the boxes ticked on the page shown. No inline code: CSP script-src 'self'.
(function () {
  "use strict";

  function recount() {
    var line = document.getElementById("selection-summary-line");
    var count = document.getElementById("selection-count");
    if (!line || !count) {
      return;
    }
    var carried = parseInt(line.getAttribute("data-carried") || "0", 10) || 0;
    var ticked = document.querySelectorAll(
      ".record-grid input[type=checkbox][name=record]:checked").length;
    count.textContent = String(carried + ticked);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.name === "record" && target.closest(".record-grid")) {
      recount();
    }
  });
  // A swapped grid, or boxes a browser restored after Back, are counted again.
  document.addEventListener("htmx:afterSettle", recount);
  document.addEventListener("DOMContentLoaded", recount);
  window.addEventListener("pageshow", recount);
})();
