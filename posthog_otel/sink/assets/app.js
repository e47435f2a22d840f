(function () {
  "use strict";
  var box = document.querySelector("[data-live-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-live-url");
  var version = box.getAttribute("data-version");
  var rows = document.getElementById("event-rows");
  var chart = document.getElementById("chart");
  var summary = document.getElementById("event-summary");
  var toggle = document.getElementById("live-toggle");
  var state = document.getElementById("live-state");
  var paused = false;

  function show(text) { if (state) { state.textContent = text; } }

  if (toggle) {
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = paused ? "Resume" : "Pause";
      show(paused ? "paused" : "live");
    });
  }

  function tick() {
    if (paused || document.hidden) { return later(); }
    fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        show("live");
        if (data.version === version) { return; }
        version = data.version;
        box.setAttribute("data-version", version);
        if (rows) { rows.innerHTML = data.rows; }
        if (chart) { chart.innerHTML = data.chart; }
        if (summary) { summary.textContent = data.summary; }
      })
      .catch(function () { show("sink unreachable, retrying"); })
      .then(later);
  }

  function later() { window.setTimeout(tick, 2000); }
  later();
})();
