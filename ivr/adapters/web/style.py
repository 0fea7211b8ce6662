"""The dashboard's stylesheet.

Kept as a Python string, served from memory with the code that uses it.
Directions are logical (inline-start and -end, not left and right), so a
right-to-left page (Persian) mirrors without a second stylesheet. Dark, high
contrast, large figures: it is meant to be read across a room on a wall screen.
"""

from __future__ import annotations

STYLESHEET = """
:root {
  --bg: #0f1420; --panel: #171e2e; --panel-2: #1e2740; --line: #2a3553;
  --text: #e8ecf5; --muted: #93a0bd; --accent: #6ea8ff;
  --promoter: #2ecc71; --passive: #f1c40f; --detractor: #ff5c5c;
  --agent: #6ea8ff; --company: #c792ea;
}
* { box-sizing: border-box; }
html { font-size: 16px; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font-family: "Inter", "Segoe UI", "Noto Sans", "DejaVu Sans", system-ui, sans-serif;
  line-height: 1.4;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
/* Charts are time lines and diagrams, not text: they read left to right in every language. */
svg { direction: ltr; }
nav.languages { display: flex; flex-wrap: wrap; gap: 0.3rem 0.8rem; font-size: 0.85rem; }
nav.languages a { margin: 0; padding: 0.1rem 0; border-bottom-width: 2px; }
nav.languages a.calendar { color: var(--accent); }
.login nav.languages { margin-top: 1.2rem; }
header.top {
  display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: center;
  padding: 0.9rem 2rem; background: var(--panel); border-bottom: 1px solid var(--line);
}
.brand { font-weight: 700; font-size: 1.3rem; letter-spacing: 0.02em; }
.brand span { color: var(--promoter); }
nav a {
  margin-inline-end: 1.2rem; padding: 0.3rem 0; color: var(--muted); font-weight: 600;
  border-bottom: 3px solid transparent;
}
nav a.active { color: var(--text); border-bottom-color: var(--accent); }
form.period {
  display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; margin-inline-start: auto;
}
form.period label { color: var(--muted); font-size: 0.9rem; }
input, button {
  font: inherit; color: var(--text); background: var(--panel-2);
  border: 1px solid var(--line); border-radius: 6px; padding: 0.35rem 0.6rem;
}
button { cursor: pointer; background: #2b3a63; }
.user { color: var(--muted); font-size: 0.9rem; display: flex; gap: 0.6rem; align-items: center; }
.user form { margin: 0; }
main { padding: 1.5rem 2rem 3rem; max-width: 1700px; margin: 0 auto; }
h1 { font-size: 1.8rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 0 0 0.8rem; color: var(--muted); font-weight: 600; }
.grid { display: grid; gap: 1.2rem; }
.spaced { margin-top: 1.2rem; }
.cards {
  grid-template-columns: repeat(auto-fit, minmax(min(230px, 100%), 1fr)); margin-bottom: 1.2rem;
}
.two { grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr)); }
/* A grid item may shrink below its content, so a wide table scrolls in its panel. */
.grid > * { min-width: 0; }
.panel {
  background: var(--panel); border: 1px solid var(--line); border-radius: 12px;
  padding: 1.1rem 1.3rem; overflow-x: auto;
}
.card .label {
  color: var(--muted);
  font-size: 0.95rem;
  font-weight: 600;
  text-transform: uppercase;
  letter-spacing: 0.06em;
}
.card .big {
  font-size: 3.6rem;
  font-weight: 800;
  line-height: 1.1;
  font-variant-numeric: tabular-nums;
}
.card .sub { color: var(--muted); font-size: 1rem; }
.figure {
  font-size: 2.8rem;
  font-weight: 800;
  font-variant-numeric: tabular-nums;
}
.good { color: var(--promoter); }
.mid { color: var(--passive); }
.bad { color: var(--detractor); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td {
  padding: 0.55rem 0.7rem;
  border-bottom: 1px solid var(--line);
  text-align: end;
  white-space: nowrap;
}
th:first-child, td:first-child { text-align: start; }
th { color: var(--muted); font-weight: 600; font-size: 0.9rem; }
th a { color: var(--muted); }
th a.sorted { color: var(--text); }
tr.few td { opacity: 0.55; }
td.name { font-weight: 600; }
.badge {
  display: inline-block; padding: 0.05rem 0.45rem; border-radius: 999px; font-size: 0.75rem;
  font-weight: 700; margin-inline-start: 0.4rem; vertical-align: middle;
}
.badge.few { background: #3a3f52; color: var(--muted); }
.badge.outlier { background: #5a2330; color: #ffb3b3; }
.score {
  display: inline-block;
  min-width: 2.2rem;
  text-align: center;
  border-radius: 6px;
  padding: 0.1rem 0.3rem;
  font-weight: 700;
}
.score.promoter { background: rgba(46, 204, 113, 0.18); color: var(--promoter); }
.score.passive { background: rgba(241, 196, 15, 0.15); color: var(--passive); }
.score.detractor { background: rgba(255, 92, 92, 0.18); color: var(--detractor); }
.note, .muted { color: var(--muted); font-size: 0.9rem; }
ul.rank { list-style: none; margin: 0; padding: 0; }
ul.rank li {
  display: flex;
  justify-content: space-between;
  padding: 0.45rem 0;
  border-bottom: 1px solid var(--line);
  font-size: 1.1rem;
}
ul.rank li b { font-variant-numeric: tabular-nums; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .zero { stroke: var(--muted); stroke-width: 1.5; stroke-dasharray: 4 4; }
svg text { fill: var(--muted); font-size: 13px; font-family: inherit; }
svg text.legend { fill: var(--text); font-size: 14px; }
svg text.value { fill: var(--text); font-size: 15px; font-weight: 700; }
svg text.value.inside { fill: #fff; }
svg .series { fill: none; stroke-width: 3; stroke-linejoin: round; stroke-linecap: round; }
svg .series.agent, svg .point.agent, svg .swatch.agent { stroke: var(--agent); fill: var(--agent); }
svg .series.agent, svg .series.company { fill: none; }
svg .series.company, svg .point.company, svg .swatch.company {
  stroke: var(--company);
  fill: var(--company);
}
svg .series.company { fill: none; }
svg rect.bar { fill: var(--accent); }
svg rect.bar.positive { fill: var(--promoter); }
svg rect.bar.negative { fill: var(--detractor); }
svg rect.bar.step-0 { fill: #3d5a99; } svg rect.bar.step-1 { fill: #4b6fbf; }
svg rect.bar.step-2 { fill: #5a84e0; } svg rect.bar.step-3 { fill: #6ea8ff; }
svg rect.bar.step-4 { fill: var(--promoter); }
svg.split-bar { width: 160px; height: 14px; display: inline-block; vertical-align: middle; }
svg .promoter { fill: var(--promoter); } svg .passive { fill: var(--passive); }
svg .detractor { fill: var(--detractor); } svg .empty { fill: var(--line); }
.login { max-width: 380px; margin: 12vh auto; }
.login label { display: block; margin: 0.8rem 0 0.3rem; color: var(--muted); }
.login input { width: 100%; }
.login button { margin-top: 1.2rem; width: 100%; padding: 0.6rem; }
.error { color: var(--detractor); margin-top: 0.8rem; }
footer {
  color: var(--muted);
  font-size: 0.85rem;
  padding: 0 2rem 2rem;
  max-width: 1700px;
  margin: 0 auto;
}
@media (min-width: 2200px) { html { font-size: 20px; } }
/* Phones: nothing wider than the screen. Charts keep a width at which their
   text is at least 11 px (17 units of a 960-wide chart drawn 640 px wide) and
   scroll sideways inside their panel, as wide tables do. */
@media (max-width: 700px) {
  header.top { padding: 0.8rem 1rem; gap: 0.8rem 1rem; }
  form.period { margin-inline-start: 0; }
  form.period input { max-width: 9.5rem; }
  main { padding: 1rem 0.8rem 2rem; }
  footer { padding: 0 0.8rem 1.5rem; }
  .panel { padding: 0.9rem 0.8rem; }
  .card .big { font-size: 2.8rem; }
  svg.chart { min-width: 640px; }
  svg text { font-size: 17px; }
  svg text.legend, svg text.value { font-size: 18px; }
}
"""
