// Live pages: one EventSource per page; on "change" re-read this page once and swap the
// element marked data-live-region. Forms outside that region keep what the user typed.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource || !window.fetch) { return; }
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Durable-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-region]");
        var current = document.querySelector("[data-live-region]");
        if (fresh && current) {
          // Keep open <details> open across the swap.
          var open = {};
          current.querySelectorAll("details[open]").forEach(function (d, i) { open[i] = true; });
          current.replaceWith(fresh);
          fresh.querySelectorAll("details").forEach(function (d, i) { if (open[i]) { d.open = true; } });
          document.body.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next change retries */ })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  var source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () { document.body.setAttribute("data-live-open", "1"); });
  window.addEventListener("pagehide", function () { source.close(); });
})();
