/** The operator page's stylesheet (served as /ui/app.css; the CSP allows no inline style). */
export const APP_CSS = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee8; --bar: #3567d6; --ok: #2f9e5b; --warn: #d99a1e; --bad: #cf3b3b; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f6f7fa; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .6rem 1.2rem; background: #1d2330; color: #fff; }
header h1 { font-size: 1.1rem; margin: 0; }
header input { width: 18rem; }
main { padding: 0 1.2rem 2rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem 1rem; margin: 1rem 0; }
h2 { font-size: 1.05rem; margin: .3rem 0 .6rem; }
h3 { font-size: .95rem; margin: .8rem 0 .3rem; color: var(--muted); }
form label { margin-right: .6rem; white-space: nowrap; }
input, button { font: inherit; padding: .15rem .4rem; }
#status { margin: .6rem 1.2rem 0; color: var(--muted); }
#status.error { color: var(--bad); font-weight: 600; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
.chart svg { display: block; max-width: 100%; height: auto; }
.chart .bar { fill: var(--bar); }
.chart text { font-size: 11px; fill: var(--muted); }
.chart .empty { font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin-top: .3rem; }
th, td { text-align: left; padding: .2rem .5rem; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { padding: 0 .4rem; border-radius: 3px; color: #fff; }
.closed { background: var(--ok); } .half-open { background: var(--warn); } .open { background: var(--bad); }
.meter .track { fill: #e7eaf1; } .meter .ok { fill: var(--ok); } .meter .warn { fill: var(--warn); } .meter .over { fill: var(--bad); }
#new-key { background: #fff8e1; border: 1px solid var(--warn); padding: .5rem; margin-top: .5rem; }
#new-key code { font-size: 1rem; user-select: all; }
.note { color: var(--muted); }
`;
