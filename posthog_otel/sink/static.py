"""The viewer's stylesheet and script, served from ``/static/`` (no external assets).

The script only refreshes the live event list: every two seconds it asks ``/_live`` (same
filters as the page) for the rendered rows and chart, and swaps them in when something changed.
Everything it inserts was escaped by the server; the page's Content-Security-Policy allows
scripts and styles from the sink itself only.

Usage::

    body, content_type = STATIC["/static/app.css"]
"""

from __future__ import annotations

__all__ = ["STATIC"]

_CSS = """
:root { --fg: #1d1f21; --muted: #6b7280; --line: #e5e7eb; --bg: #fafafa; --card: #fff;
  --accent: #1d4aff; --bad: #b42318; --bad-bg: #fef3f2; --app: #fff8e6; --app-line: #f5a524;
  --code: #f4f4f5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
header.top { display: flex; gap: 20px; align-items: center; padding: 10px 20px;
  background: #111827; color: #f9fafb; }
header.top a { color: #f9fafb; }
header.top .brand { font-weight: 700; }
header.top nav a { margin-right: 14px; opacity: .85; }
header.top nav a.active { opacity: 1; text-decoration: underline; }
header.top .db { margin-left: auto; color: #9ca3af; font-size: 12px; }
main { padding: 16px 20px 40px; max-width: 1500px; }
h1 { font-size: 20px; margin: 4px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 22px 0 8px; }
h1 .mono { font-size: inherit; }
ul.sessions { margin: 0; padding: 0; list-style: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; margin-bottom: 14px; }
.muted { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.filters input, form.filters select { font: inherit; padding: 5px 7px; min-width: 150px;
  border: 1px solid #d1d5db; border-radius: 6px; background: #fff; color: var(--fg); }
button, .button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid #d1d5db;
  background: #fff; cursor: pointer; color: var(--fg); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.statusline { display: flex; gap: 12px; align-items: center; margin: 6px 0 10px; }
table.events { width: 100%; border-collapse: collapse; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
table.events th, table.events td { text-align: left; padding: 6px 8px;
  border-bottom: 1px solid var(--line); vertical-align: top; }
table.events th { background: #f3f4f6; font-size: 12px; color: var(--muted); font-weight: 600; }
table.events td.when { white-space: nowrap; color: var(--muted); }
table.events td.ident { max-width: 220px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
table.events td.details { color: #374151; max-width: 520px; overflow-wrap: anywhere; }
table.events tr.rejected td { background: var(--bad-bg); }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 11px;
  border: 1px solid var(--line); background: #f3f4f6; color: #374151; margin-left: 4px;
  white-space: nowrap; }
.badge.bad { background: var(--bad); border-color: var(--bad); color: #fff; }
.badge.exc { background: #fff1f0; border-color: #fda29b; color: var(--bad); }
.badge.app { background: var(--app); border-color: var(--app-line); color: #92400e; }
.badge.warn { background: #fffaeb; border-color: #fec84b; color: #93370d; }
.badge.kind { background: #eef4ff; border-color: #c7d7fe; color: #3538cd; }
.reason { color: var(--bad); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre.json { background: var(--code); padding: 10px 12px; border-radius: 6px; overflow: auto;
  max-height: 70vh; white-space: pre-wrap; overflow-wrap: anywhere; }
ul.warnings { margin: 0; padding-left: 18px; color: #93370d; }
.chart-box { margin-bottom: 14px; }
svg.chart { width: 100%; height: 180px; display: block; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 11px; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 0;
  margin: 6px 0 0; font-size: 12px; }
ul.legend li { display: flex; gap: 5px; align-items: center; }
svg.swatch { width: 10px; height: 10px; }
.c0 { fill: #1d4aff; } .c1 { fill: #f54e00; } .c2 { fill: #12b76a; } .c3 { fill: #7a5af8; }
.c4 { fill: #f79009; } .c5 { fill: #06aed4; } .c6 { fill: #ee46bc; } .c7 { fill: #667085; }
.c8 { fill: #b2b5bd; }
.range a { margin-left: 6px; }
.range a.active { font-weight: 700; color: var(--fg); }
.exception { border-left: 4px solid var(--bad); }
.exc-head { font-size: 16px; margin: 0 0 4px; overflow-wrap: anywhere; }
.exc-type { color: var(--bad); font-weight: 700; }
.exc-relation { text-transform: uppercase; font-size: 11px; letter-spacing: .04em;
  color: var(--muted); margin: 16px 0 4px; }
.frames { margin-top: 10px; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
.frame { border-bottom: 1px solid var(--line); }
.frame:last-child { border-bottom: 0; }
.frame-head { padding: 6px 10px; display: flex; flex-wrap: wrap; gap: 6px; align-items: baseline; }
.frame-head .fn { font-weight: 600; }
.frame.in-app > .frame-head, .frame.in-app > summary { background: var(--app);
  box-shadow: inset 3px 0 0 var(--app-line); }
.frame.library { color: #4b5563; }
details.frame > summary { cursor: pointer; list-style: none; }
details.frame > summary::-webkit-details-marker { display: none; }
details.library-frames > summary { padding: 5px 10px; cursor: pointer; color: var(--muted);
  background: #f9fafb; border-bottom: 1px solid var(--line); font-size: 12px; }
ol.context { margin: 0; padding: 6px 0 6px 56px; background: #fcfcfd;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
ol.context li { white-space: pre; color: #4b5563; padding-right: 10px; }
ol.context li.current { background: #fee4e2; color: #1d1f21; font-weight: 600; }
ol.context li::marker { color: #9ca3af; }
.empty { padding: 24px; text-align: center; color: var(--muted); }
"""

_JS = """
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
"""

STATIC: dict[str, tuple[bytes, str]] = {
    "/static/app.css": (_CSS.encode(), "text/css; charset=utf-8"),
    "/static/app.js": (_JS.encode(), "text/javascript; charset=utf-8"),
}
