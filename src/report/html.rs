//! `index.html`: one self-contained page (inline CSS, inline SVG plots, a few lines of JS to
//! sort the table; nothing loaded from the network), built with maud. Resources ranked by days of headroom,
//! each with its plot, model, backtest score, thresholds and crossings; failed resources with
//! their reasons; the run's settings. Every spliced value is escaped by construction; only
//! our own plot SVG, CSS and JS and the escaped explore JSON go in as [`PreEscaped`].

use std::collections::BTreeSet;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::overview;
use super::track::{self, Table, TrackTables};
use super::{Exporter, Report, ReportError, fmt_value, level, opt_day, percent, threshold};
use crate::outcome::{ResourceForecast, RunResult, View};
use crate::time::{day, format_duration, rfc3339};
use crate::track::{Bin, FleetLead};
use crate::units::format_quantity;

pub struct Page;

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } table.sortable th { cursor: pointer; } table.sortable th:hover { background: #e8e8e8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { display: inline-block; padding: 0.1em 0.5em; border-radius: 0.3em; font-weight: bold; font-size: 0.9em; }
.status-hard { background: #d62728; color: #fff; } .status-soft { background: #ff7f0e; color: #fff; }
.status-ok { background: #2ca02c; color: #fff; } .status-error { background: #555; color: #fff; }
article { border-top: 2px solid #eee; margin-top: 1.5em; padding-top: 0.5em; }
article h2 { font-size: 1.2em; } .plot svg, .plot img { max-width: 100%; height: auto; border: 1px solid #eee; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; font-size: 0.92em; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; }
.errors li { color: #a00; } code { background: #f4f4f4; padding: 0 0.2em; }
a { color: #1f77b4; } .scroll { overflow-x: auto; }
.charts { display: flex; gap: 2em; flex-wrap: wrap; } svg.chart { border: 1px solid #eee; }
.filters { display: flex; gap: 0.6em; flex-wrap: wrap; align-items: center; margin: 1em 0 0.3em; }
.filters input { min-width: 16em; padding: 0.2em 0.4em; }
details.explore { margin: 0.4em 0; } details.explore summary { cursor: pointer; color: #1f77b4; }
.zoom button { margin: 0.3em 0.3em 0.3em 0; } .xp svg { border: 1px solid #eee; max-width: 100%; height: auto; }
.tip { font-size: 0.9em; min-height: 1.3em; font-variant-numeric: tabular-nums; }
"#;

const SCRIPT: &str = r#"
(function () {
  var NS = 'http://www.w3.org/2000/svg', W = 900, H = 300, L = 56, R = 12, T = 12, B = 28;
  function fmtT(t) { return new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' '); }
  function fmtV(v) { return v === null ? '–' : Number(v).toPrecision(4).replace(/\.?0+$/, ''); }
  function node(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function draw(box, zoom) {
    var d = box._data, host = box.querySelector('.xp'), tip = box.querySelector('.tip');
    var all = d.history.map(function (p) { return p[0]; }).concat(d.forecast.map(function (p) { return p[0]; }));
    var x0 = Math.min.apply(null, all), x1 = Math.max.apply(null, all), week = 7 * 86400;
    if (zoom === 'close') { x0 = Math.max(x0, d.as_of - 2 * week); x1 = Math.min(x1, d.as_of + 2 * week); }
    if (zoom === 'forecast') { x0 = d.as_of; }
    var hist = d.history.filter(function (p) { return p[0] >= x0 && p[0] <= x1; });
    var fc = d.forecast.filter(function (p) { return p[0] >= x0 && p[0] <= x1; });
    var ys = d.thresholds.map(function (t) { return t[1]; });
    hist.forEach(function (p) { ys.push(p[1]); });
    fc.forEach(function (p) { ys.push(p[2], p[3]); });
    ys = ys.filter(function (v) { return v !== null; });
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys), pad = (y1 - y0) * 0.05 || 0.05;
    y0 -= pad; y1 += pad;
    var sx = function (t) { return L + (t - x0) / Math.max(1, x1 - x0) * (W - L - R); };
    var sy = function (v) { return T + (y1 - v) / (y1 - y0) * (H - T - B); };
    host.textContent = '';
    var svg = node('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'interactive forecast plot' }, host);
    for (var k = 0; k <= 4; k++) {
      var v = y0 + (y1 - y0) * k / 4;
      node('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: '#eee' }, svg);
      node('text', { x: L - 4, y: sy(v) + 4, 'font-size': 10, 'text-anchor': 'end' }, svg).textContent = fmtV(v);
    }
    for (k = 0; k <= 4; k++) {
      var t = x0 + (x1 - x0) * k / 4;
      node('text', { x: sx(t), y: H - 8, 'font-size': 10, 'text-anchor': k === 0 ? 'start' : (k === 4 ? 'end' : 'middle') }, svg).textContent = fmtT(t).slice(0, 10);
    }
    if (fc.length) {
      var band = fc.map(function (p) { return sx(p[0]) + ',' + sy(p[3]); })
        .concat(fc.slice().reverse().map(function (p) { return sx(p[0]) + ',' + sy(p[2]); }));
      node('polygon', { points: band.join(' '), fill: '#1f77b4', 'fill-opacity': 0.18 }, svg);
      node('polyline', { points: fc.map(function (p) { return sx(p[0]) + ',' + sy(p[1]); }).join(' '), fill: 'none', stroke: '#1f77b4', 'stroke-width': 1.5 }, svg);
    }
    if (hist.length) {
      node('polyline', { points: hist.map(function (p) { return sx(p[0]) + ',' + sy(p[1]); }).join(' '), fill: 'none', stroke: '#333', 'stroke-width': 1 }, svg);
    }
    d.thresholds.forEach(function (th) {
      node('line', { x1: L, x2: W - R, y1: sy(th[1]), y2: sy(th[1]), stroke: th[0] === 'hard' ? '#d62728' : '#ff7f0e', 'stroke-dasharray': '5,4' }, svg);
      node('text', { x: W - R - 2, y: sy(th[1]) - 3, 'font-size': 10, 'text-anchor': 'end' }, svg).textContent = th[0] + ' ' + fmtV(th[1]);
    });
    if (d.as_of >= x0 && d.as_of <= x1) {
      node('line', { x1: sx(d.as_of), x2: sx(d.as_of), y1: T, y2: H - B, stroke: '#999' }, svg);
    }
    var cursor = node('line', { x1: 0, x2: 0, y1: T, y2: H - B, stroke: '#555', visibility: 'hidden' }, svg);
    var points = hist.map(function (p) { return { t: p[0], h: p }; }).concat(fc.map(function (p) { return { t: p[0], f: p }; }));
    svg.addEventListener('mousemove', function (ev) {
      var r = svg.getBoundingClientRect(), x = (ev.clientX - r.left) * W / r.width;
      var t = x0 + (x - L) / (W - L - R) * (x1 - x0), best = null;
      points.forEach(function (p) { if (!best || Math.abs(p.t - t) < Math.abs(best.t - t)) { best = p; } });
      if (!best) { return; }
      cursor.setAttribute('x1', sx(best.t)); cursor.setAttribute('x2', sx(best.t)); cursor.setAttribute('visibility', 'visible');
      var text = fmtT(best.t) + ' UTC · ';
      text += best.h ? 'observed ' + fmtV(best.h[1])
        : 'forecast ' + fmtV(best.f[1]) + ' · ' + Math.round(d.level * 100) + ' % band ' + fmtV(best.f[2]) + ' – ' + fmtV(best.f[3]);
      text += d.thresholds.map(function (th) { return ' · ' + th[0] + ' ' + fmtV(th[1]); }).join('');
      tip.textContent = text;
    });
    svg.addEventListener('mouseleave', function () { cursor.setAttribute('visibility', 'hidden'); });
  }
  document.querySelectorAll('details.explore').forEach(function (box) {
    box.addEventListener('toggle', function () {
      if (!box.open || box._data) { return; }
      box._data = JSON.parse(box.querySelector('script').textContent);
      draw(box, 'close');
    });
    box.querySelectorAll('.zoom button').forEach(function (b) {
      b.addEventListener('click', function () { if (box._data) { draw(box, b.dataset.zoom); } });
    });
  });
})();
(function () {
  var fields = { q: 'f-q', status: 'f-status', group: 'f-group', threshold: 'f-threshold' };
  var rows = Array.from(document.querySelectorAll('#ranking tbody tr'));
  function el(k) { return document.getElementById(fields[k]); }
  function apply() {
    var q = el('q').value.trim().toLowerCase(), st = el('status').value, gr = el('group').value, th = el('threshold').value;
    var shown = 0;
    rows.forEach(function (row) {
      var d = row.dataset;
      var ok = (!q || d.search.indexOf(q) >= 0) && (!st || d.status === st) && (!gr || d.group === gr) &&
        (!th || (' ' + d.crosses + ' ').indexOf(' ' + th + ' ') >= 0);
      row.hidden = !ok;
      var art = document.getElementById('r-' + d.slug);
      if (art) { art.hidden = !ok; }
      if (ok) { shown++; }
    });
    var filtered = q || st || gr || th;
    document.getElementById('f-shown').textContent = filtered ? shown + ' of ' + rows.length + ' resources' : rows.length + ' resources';
  }
  function save() {
    var p = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { var v = el(k).value.trim(); if (v) { p.set(k, v); } });
    var s = p.toString();
    history.replaceState(null, '', s ? '#' + s : location.pathname + location.search);
    apply();
  }
  function load() {
    var h = location.hash.slice(1);
    if (h.indexOf('=') < 0) { return; }  // #r-slug: a link to one resource, not a view
    var p = new URLSearchParams(h);
    Object.keys(fields).forEach(function (k) {
      var v = p.get(k) || '', e = el(k);
      if (e.tagName === 'SELECT' && v && !Array.from(e.options).some(function (o) { return o.value === v; })) {
        var o = document.createElement('option'); o.value = v; o.textContent = v; e.appendChild(o);
      }
      e.value = v;
    });
    apply();
  }
  if (!el('q')) { return; }
  Object.keys(fields).forEach(function (k) { el(k).addEventListener('input', save); el(k).addEventListener('change', save); });
  window.addEventListener('hashchange', load);
  load();
  apply();
})();
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var col = th.cellIndex;
    var body = th.closest('table').tBodies[0];
    var asc = th.dataset.dir !== 'asc';
    th.dataset.dir = asc ? 'asc' : 'desc';
    var key = function (row) { var c = row.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? (nx === ny ? 0 : (nx < ny ? -1 : 1)) : x.localeCompare(y);
      return asc ? c : -c;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"#;

impl Exporter for Page {
    fn file_name(&self) -> &'static str {
        "index.html"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError> {
        let run = report.run;
        let as_of = run.as_of;
        let alerting = run.resources.iter().filter(|r| r.alert(as_of).is_some()).count();
        // A large fleet's page has sections for its plotted resources only; the rest are rows.
        let every = super::stream::Streamer::everything_for(run.total, report.meta.full);
        let shown = |r: &ResourceForecast| every || report.plots.contains_key(&r.name);
        let page = html! {
            (DOCTYPE) "\n"
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "headroom: capacity forecast as of " (day(as_of)) }
                    style { (PreEscaped(STYLE)) }
                }
                "\n"
                body {
                    h1 { "Capacity forecast" }
                    p.sub {
                        "As of " (rfc3339(as_of)) " · " (run.resources.len()) " resources · " (alerting)
                        " alerting within their alert window · " (run.errors.len()) " errors"
                    }
                    "\n"
                    (overview_section(run, &report.meta.group_by))
                    (filters_bar(run, &report.meta.group_by))
                    (ranking(report, &shown))
                    @if !run.errors.is_empty() {
                        section #errors {
                            h2 { "Could not be forecast" }
                            ul.errors {
                                @for e in &run.errors {
                                    li {
                                        span.status.status-error { "error" } " "
                                        @if let Some(r) = &e.resource { strong { (r) } ": " }
                                        (e.message)
                                    }
                                    "\n"
                                }
                            }
                        }
                        "\n"
                    }
                    @if let Some(t) = track::tables(run) { (track_section(&t, run)) }
                    @for r in run.resources.iter().filter(|r| shown(r)) { (resource_section(report, r)) }
                    (settings_section(report))
                    script { (PreEscaped(SCRIPT)) }
                }
            }
            "\n"
        };
        Ok(page.into_string().into_bytes())
    }
}

/// Every resource ranked by headroom, one row each; its name links to its section where the
/// page has one.
fn ranking(report: &Report, shown: &dyn Fn(&ResourceForecast) -> bool) -> Markup {
    let run = report.run;
    let ledger = run.ledger.is_some();
    let mut columns = vec![
        "#",
        "Resource",
        "Status",
        "Last",
        "Headroom (days)",
        "Soft: expected / earliest",
        "Hard: expected / earliest",
        "P(hard)",
        "Model",
        "MASE",
    ];
    if ledger {
        columns.push("Moved since last run");
    }
    html! {
        div.scroll {
            table.sortable #ranking {
                (head(&columns))
                tbody {
                    @for (i, r) in run.resources.iter().enumerate() {
                        (ranking_row(report, i + 1, r, shown(r), ledger)) "\n"
                    }
                }
            }
        }
        p.sub {
            "Headroom: days from the as-of date to the first upper-bound crossing of any threshold. \
             Expected: the mean forecast reaches the threshold; earliest: the upper bound of the \
             prediction interval does. Click a column to sort."
        }
        "\n"
    }
}

fn ranking_row(report: &Report, rank: usize, r: &ResourceForecast, linked: bool, ledger: bool) -> Markup {
    let slug = report.slugs.get(&r.name).map_or("", String::as_str);
    let v = r.view(report.run.as_of);
    let cross = |name: &str| match v.crossings.iter().find(|c| c.breach.name == name) {
        None => "–".to_string(),
        Some(c) if c.breach.already_breached => "already breached".into(),
        Some(c) => format!("{} / {}", opt_day(c.expected), opt_day(c.earliest)),
    };
    let mase = r.backtest.as_ref().and_then(|b| b.mase);
    let crosses: Vec<&str> =
        v.crossings.iter().filter(|c| c.earliest.is_some()).map(|c| c.breach.name.as_str()).collect();
    let search: Vec<String> = std::iter::once(r.name.to_lowercase())
        .chain(r.labels.iter().map(|(k, v)| format!("{k}={v}").to_lowercase()))
        .collect();
    html! {
        tr data-slug=(slug) data-status=(v.status) data-group=(overview::group_of(r, &report.meta.group_by))
            data-crosses=(crosses.join(" ")) data-search=(search.join(" ")) {
            td.num { (rank) }
            td { @if linked { a href={ "#r-" (slug) } { (r.name) } } @else { (r.name) } }
            td data-v=(status_rank(&v)) { (status_badge(&v)) }
            td.num { (level(r, r.last_value)) }
            td.num data-v=(v.headroom_days.map_or("Infinity".into(), |d| format!("{d:.3}"))) {
                (v.headroom_days.map_or("> horizon".into(), |d| format!("{d:.1}")))
            }
            td { (cross("soft")) }
            td { (cross("hard")) }
            td.num data-v=(v.p_hard.unwrap_or(-1.0)) { (v.p_hard.map_or("–".into(), percent)) }
            td { (r.model) }
            td.num data-v=(mase.unwrap_or(f64::MAX)) { (mase.map_or("–".into(), |m| format!("{m:.2}"))) }
            @if ledger { td { (track::moved_cell(r)) } }
        }
    }
}

/// The fleet at a glance: counts by status, the weeks the first crossings fall in, the spread
/// of headroom and the groups most at risk.
fn overview_section(run: &RunResult, group_by: &str) -> Markup {
    let o = overview::overview(run, group_by);
    let more = o.groups.len().saturating_sub(GROUPS_SHOWN);
    html! {
        section #overview {
            p.counts {
                span.status.status-hard { (o.hard) " hard" } " "
                span.status.status-soft { (o.soft) " soft" } " "
                span.status.status-ok { (o.ok) " ok" } " "
                span.status.status-error { (o.failed) " failed" } " · " (o.already) " already at a threshold"
            }
            "\n"
            div.charts { (calendar_chart(&o.calendar)) (headroom_chart(&o.headroom)) }
            "\n"
            @if o.groups.len() > 1 {
                h3 {
                    "By group " code { (group_by) }
                    @if more > 0 { " (the " (GROUPS_SHOWN) " most at risk of " (o.groups.len()) ")" }
                }
                "\n"
                div.scroll {
                    table.sortable #groups {
                        (head(&["group", "resources", "at risk", "earliest crossing", "capacity needed (largest)"]))
                        tbody {
                            @for g in o.groups.iter().take(GROUPS_SHOWN) {
                                tr {
                                    td { a href={ "#group=" (url_component(&g.name)) } { (g.name) } }
                                    td.num { (g.resources) }
                                    td.num { (g.at_risk) }
                                    td { (g.earliest.map_or("–".into(), day)) }
                                    td { (g.capacity_needed.map_or("–".into(), |k| format!("×{k:.2}"))) }
                                }
                                "\n"
                            }
                        }
                    }
                }
                "\n"
            }
        }
        "\n"
    }
}

/// Search box and filters over the ranking (and the resource sections below it); the page's
/// URL keeps them (`#status=hard&group=patroni`), so a link opens the same view.
fn filters_bar(run: &RunResult, group_by: &str) -> Markup {
    let groups: BTreeSet<String> = run.resources.iter().map(|r| overview::group_of(r, group_by)).collect();
    let thresholds: BTreeSet<&str> =
        run.resources.iter().flat_map(|r| r.breaches.iter().map(|b| b.name.as_str())).collect();
    html! {
        div #filters .filters {
            input type="search" #f-q placeholder="Search names and labels" aria-label="Search names and labels";
            select #f-status aria-label="Status" {
                option value="" { "any status" }
                @for s in ["hard", "soft", "ok"] { option value=(s) { (s) } }
            }
            select #f-group aria-label="Group" {
                option value="" { "any group" }
                @for g in &groups { option value=(g) { (g) } }
            }
            select #f-threshold aria-label="Threshold" {
                option value="" { "any threshold" }
                @for t in &thresholds { option value=(t) { "crosses " (t) " within the horizon" } }
            }
            " "
            span #f-shown .sub {}
        }
        "\n"
    }
}

/// Percent-encodes a value for the page's `#key=value` links (as `encodeURIComponent`).
fn url_component(s: &str) -> String {
    crate::source::redact::percent_encode(s)
}

/// Groups listed in the overview.
const GROUPS_SHOWN: usize = 20;

/// A coordinate in an inline chart, to a tenth of a pixel.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// First crossings per week over the horizon: soft and hard bars side by side.
fn calendar_chart(weeks: &[overview::Week]) -> Markup {
    let (w, hgt, left, bottom) = (460.0, 180.0, 30.0, 28.0);
    let plot_h = hgt - bottom - 16.0;
    let most = weeks.iter().map(|k| k.soft.max(k.hard)).max().unwrap_or(0).max(1) as f64;
    let bw = (w - left - 8.0) / weeks.len().max(1) as f64;
    let y = |v: f64| 16.0 + plot_h * (1.0 - v / most);
    html! {
        svg.chart width=(w) height=(hgt) viewBox={ "0 0 " (w) " " (hgt) } role="img" aria-label="First crossings per week" {
            text x=(left) y="11" font-size="10" { "first crossings per week (earliest: upper bound)" }
            @for (i, k) in weeks.iter().enumerate() {
                @let x = left + i as f64 * bw;
                @for (j, (n, color, what)) in [(k.soft, "#ff7f0e", "soft"), (k.hard, "#d62728", "hard")].into_iter().enumerate() {
                    @if n > 0 {
                        rect x=(px(x + 1.0 + j as f64 * (bw - 2.0) / 2.0)) y=(px(y(n as f64)))
                            width=(px(((bw - 2.0) / 2.0).max(1.0))) height=(px(y(0.0) - y(n as f64))) fill=(color) {
                            title { "week of " (day(k.start)) ": " (n) " first " (what) " crossing" @if n != 1 { "s" } }
                        }
                    }
                }
                @if i % 4 == 0 {
                    text x=(px(x)) y=(px(hgt - bottom + 12.0)) font-size="9" { (day(k.start)[5..]) }
                }
            }
            text x=(px(left - 3.0)) y=(px(y(most) + 8.0)) font-size="9" text-anchor="end" { (most) }
            text x=(px(left - 3.0)) y=(px(y(0.0))) font-size="9" text-anchor="end" { "0" }
        }
    }
}

/// Resources per headroom bucket, as horizontal bars.
fn headroom_chart(counts: &[usize]) -> Markup {
    let (w, row) = (300.0, 22.0);
    let hgt = 18.0 + row * counts.len() as f64;
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    html! {
        svg.chart width=(w) height=(hgt) viewBox={ "0 0 " (w) " " (hgt) } role="img" aria-label="Headroom" {
            text x="6" y="11" font-size="10" { "resources by headroom" }
            @for (i, (&n, (label, _))) in counts.iter().zip(overview::HEADROOM_BUCKETS.iter()).enumerate() {
                @let y = 18.0 + i as f64 * row;
                @let len = (w - 130.0) * n as f64 / most;
                text x="6" y=(px(y + 14.0)) font-size="10" { (label) }
                rect x="80" y=(px(y + 3.0)) width=(px(len)) height=(px(row - 6.0)) fill="#1f77b4" {}
                text x=(px(84.0 + len)) y=(px(y + 14.0)) font-size="10" { (n) }
            }
        }
    }
}

/// The track record: how earlier forecasts did, charted and tabled.
fn track_section(t: &TrackTables, run: &RunResult) -> Markup {
    let f = run.fleet_track();
    let level = run.resources.first().map_or(0.8, |r| r.settings.level);
    html! {
        section #track {
            h2 { "Track record" }
            p { (t.intro) }
            "\n"
            @if !f.leads.is_empty() {
                div.charts {
                    (coverage_chart(&f.leads, level))
                    @if !f.reliability.is_empty() { (reliability_chart(&f.reliability)) }
                }
                "\n"
            }
            (table(&t.leads, "track-leads"))
            p { (t.odds) }
            "\n"
            @if !t.reliability.rows.is_empty() { (table(&t.reliability, "track-reliability")) }
            p { (t.dates) }
            "\n"
            @if !t.moved.rows.is_empty() {
                h3 { "Moved since the last run" }
                "\n"
                (table(&t.moved, "track-moved"))
            }
        }
        "\n"
    }
}

/// A table's header row.
fn head<T: AsRef<str>>(cells: &[T]) -> Markup {
    html! {
        thead { tr { @for c in cells { th { (c.as_ref()) } } } }
        "\n"
    }
}

/// A sortable HTML table of text cells.
fn table(t: &Table, id: &str) -> Markup {
    html! {
        div.scroll {
            table.sortable id=(id) {
                (head(&t.head))
                tbody {
                    @for row in &t.rows {
                        tr { @for c in row { td { (c) } } }
                        "\n"
                    }
                }
            }
        }
        "\n"
    }
}

/// Band coverage by lead time as bars, against a line at the nominal level.
fn coverage_chart(leads: &[FleetLead], level: f64) -> Markup {
    let (w, hgt, left, bottom) = (360.0, 200.0, 40.0, 30.0);
    let plot_h = hgt - bottom - 10.0;
    let bw = (w - left - 10.0) / leads.len().max(1) as f64;
    let y = |v: f64| 10.0 + plot_h * (1.0 - v.clamp(0.0, 1.0));
    html! {
        svg.chart width=(w) height=(hgt) viewBox={ "0 0 " (w) " " (hgt) } role="img" aria-label="Band coverage by lead time" {
            text x=(left) y="9" font-size="10" { "coverage of the band by lead time" }
            @for (i, l) in leads.iter().enumerate() {
                @let x = left + i as f64 * bw + 4.0;
                rect x=(px(x)) y=(px(y(l.coverage))) width=(px(bw - 8.0)) height=(px(y(0.0) - y(l.coverage))) fill="#1f77b4" {
                    title { (l.lead) ": " (format!("{:.0}", 100.0 * l.coverage)) " % of " (l.points) " points" }
                }
                text x=(px(x + (bw - 8.0) / 2.0)) y=(px(hgt - bottom + 14.0)) font-size="10" text-anchor="middle" { (l.lead) }
            }
            @for v in [0.0, 0.5, 1.0] {
                text x=(px(left - 4.0)) y=(px(y(v) + 3.0)) font-size="10" text-anchor="end" { (format!("{:.0}", 100.0 * v)) " %" }
            }
            line x1=(left) x2=(px(w - 10.0)) y1=(px(y(level))) y2=(px(y(level))) stroke="#d62728" stroke-dasharray="4 3" {
                title { "nominal " (format!("{:.0}", 100.0 * level)) " %" }
            }
        }
    }
}

/// Predicted against observed frequency of past breach odds, with the diagonal.
fn reliability_chart(bins: &[Bin]) -> Markup {
    let (size, pad) = (200.0, 30.0);
    let span = size - 2.0 * pad;
    let x = |v: f64| pad + span * v;
    let y = |v: f64| size - pad - span * v;
    let most = bins.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    html! {
        svg.chart width=(size) height=(size) viewBox={ "0 0 " (size) " " (size) } role="img" aria-label="Reliability of breach odds" {
            text x=(pad) y="12" font-size="10" { "observed vs predicted odds" }
            rect x=(pad) y=(pad) width=(span) height=(span) fill="none" stroke="#ccc" {}
            line x1=(x(0.0)) y1=(y(0.0)) x2=(x(1.0)) y2=(y(1.0)) stroke="#999" stroke-dasharray="4 3" {}
            @for b in bins {
                circle cx=(px(x(b.mean_probability))) cy=(px(y(b.observed)))
                    r=(px(2.0 + 5.0 * (b.count as f64 / most).sqrt())) fill="#1f77b4" {
                    title {
                        "predicted " (format!("{:.0}", 100.0 * b.mean_probability)) " %, observed "
                        (format!("{:.0}", 100.0 * b.observed)) " % (" (b.count) " forecasts)"
                    }
                }
            }
            text x=(x(0.5)) y=(size - 8.0) font-size="10" text-anchor="middle" { "predicted" }
            text x="10" y=(y(0.5)) font-size="10" transform={ "rotate(-90 10 " (y(0.5)) ")" } text-anchor="middle" { "observed" }
        }
    }
}

/// A date with the days to it, or a dash.
fn dated(t: Option<i64>, d: Option<f64>) -> String {
    match (t, d) {
        (Some(t), Some(d)) => format!("{} ({d:.1} d)", day(t)),
        _ => "–".into(),
    }
}

fn resource_section(report: &Report, r: &ResourceForecast) -> Markup {
    let slug = report.slugs.get(&r.name).map_or("", String::as_str);
    let v = r.view(report.run.as_of);
    let drawn = report.plots.get(&r.name);
    html! {
        article id={ "r-" (slug) } {
            h2 { (r.name) " " (status_badge(&v)) }
            "\n"
            @match drawn {
                Some(d) if !d.svg.is_empty() => div.plot { (PreEscaped(&d.svg)) },
                // A large fleet links its plots (the page would be too heavy with them inline).
                Some(_) => {
                    @let src = format!("plots/{slug}.svg");
                    div.plot { a href=(src) { img src=(src) loading="lazy" alt={ "forecast plot of " (r.name) }; } }
                }
                None => p.sub { "Not plotted in this run (" code { "--plots" } ")." },
            }
            "\n"
            @if let Some(d) = drawn.filter(|d| !d.explore.is_empty()) {
                details.explore {
                    summary { "Explore: hover for values, zoom into the weeks around the as-of date" }
                    div.zoom {
                        button type="button" data-zoom="all" { "whole history" }
                        button type="button" data-zoom="close" { "last 2 weeks and first 2 weeks of the forecast" }
                        button type="button" data-zoom="forecast" { "forecast" }
                    }
                    div.xp {}
                    div.tip {}
                    // JSON in a script element: `<` escaped so no value can close it.
                    script type="application/json" { (PreEscaped(d.explore.replace('<', "\\u003c"))) }
                }
                "\n"
            }
            table {
                (head(&["Threshold", "Value", "Expected (mean)", "Earliest (upper bound)", "Act by", "Probability"]))
                tbody {
                    @for c in &v.crossings {
                        @let b = c.breach;
                        tr {
                            td { (b.name) }
                            td.num { (threshold(r, b.threshold)) }
                            @if b.already_breached {
                                td { "already breached" } td { "already breached" }
                            } @else {
                                td { (dated(c.expected, c.expected_days)) } td { (dated(c.earliest, c.earliest_days)) }
                            }
                            td { (c.act_by.map_or("–".into(), day)) }
                            td.num { (percent(b.probability)) }
                        }
                        "\n"
                    }
                }
            }
            "\n"
            @if !v.scenarios.is_empty() {
                table {
                    (head(&["What if", "Threshold", "Expected", "Earliest", "Days gained: expected / earliest", "Probability"]))
                    tbody {
                        @for (name, moved) in &v.scenarios {
                            @for m in moved {
                                @let c = &m.crossing;
                                tr {
                                    td { (name) }
                                    td { (c.breach.name) " " (threshold(r, c.breach.threshold)) }
                                    td { (opt_day(c.expected)) }
                                    td { (opt_day(c.earliest)) }
                                    td.num { (m.expected_moved) " / " (m.earliest_moved) }
                                    td.num { (percent(c.breach.probability)) }
                                }
                                "\n"
                            }
                        }
                    }
                }
                "\n"
            }
            (facts(&resource_facts(r, &v)))
        }
        "\n"
    }
}

/// A definition list of (name, value) facts.
fn facts(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.facts {
            "\n"
            @for (k, v) in rows { dt { (k) } dd { (v) } "\n" }
        }
        "\n"
    }
}

/// Text items on lines of their own.
fn lines<T: maud::Render>(items: impl IntoIterator<Item = T>) -> Markup {
    html! { @for (i, x) in items.into_iter().enumerate() { @if i > 0 { br; } (x) } }
}

/// What a resource's section says about it below its tables.
fn resource_facts(r: &ResourceForecast, v: &View) -> Vec<(&'static str, Markup)> {
    let s = &r.settings;
    let mut rows = vec![("Source", html! { (r.source) })];
    if let Some(k) = r.capacity_needed {
        let below = r.breaches.last().map_or(String::new(), |b| threshold(r, b.threshold));
        rows.push((
            "Capacity needed",
            html! { "×" (format!("{k:.2}")) " to keep the upper bound below " (below) @if let Some(t) = v.act_by { ", act by " (day(t)) } },
        ));
    }
    rows.push(("Last value", html! { (level(r, r.last_value)) " at " (rfc3339(r.last_observed)) }));
    if let Some(c) = s.capacity {
        let text = s.unit.as_deref().map_or(fmt_value(c), |u| format!("{} ({c:e} {u})", format_quantity(c, u)));
        rows.push(("Capacity", html! { (text) }));
    }
    rows.push(("Model", html! { (r.model) }));
    if let Some(t) = &r.track {
        let leads: Vec<String> = t
            .leads
            .iter()
            .map(|l| {
                format!(
                    "{}: {:.0} % in band, MAE {} × naive",
                    l.lead,
                    100.0 * l.coverage,
                    l.relative_mae().map_or("–".into(), |x| format!("{x:.2}"))
                )
            })
            .collect();
        let head = format!(
            "{} earlier forecast{} ({} scored)",
            t.forecasts,
            if t.forecasts == 1 { "" } else { "s" },
            t.scored
        );
        rows.push(("Track record", html! { (head) @if !leads.is_empty() { br; (leads.join(" · ")) } }));
        if let Some(d) = &t.drift {
            rows.push(("Since the last run", html! { (track::moved_cell(r)) ": " (d.reason) }));
        }
    }
    let backtest = match &r.backtest {
        Some(b) => {
            let runners: Vec<String> = b
                .candidates
                .iter()
                .skip(1)
                .take(4)
                .map(|(m, _, mase)| format!("{m} {}", mase.map_or("–".into(), |x| format!("{x:.2}"))))
                .collect();
            html! {
                "MASE " (b.mase.map_or("–".into(), |m| format!("{m:.2}"))) " · MAE " (format!("{:.4}", b.mae))
                " · " (b.origins) " origins × " (b.horizon) " steps"
                @if !runners.is_empty() { br; "runners-up (MASE): " (runners.join(" · ")) }
            }
        }
        None => html! { "none (history too short to hold out)" },
    };
    rows.push(("Backtest", backtest));
    rows.push((
        "Series",
        html! {
            (format_duration(r.step())) " step, " (s.aggregate.name()) " per step, from " (day(r.history_start))
            @if r.fit_start > r.history_start { ", fitted from " (day(r.fit_start)) }
        },
    ));
    rows.push((
        "Forecast",
        html! {
            (format_duration(s.horizon)) " ahead at " (format!("{:.0}", s.level * 100.0)) " % intervals"
            @if s.bounded { ", bounded to [0, 1]" }
            "; alert within " (format_duration(s.alert_within)) ", lead time " (format_duration(s.lead_time))
        },
    ));
    if !s.events.is_empty() {
        let list = s.events.iter().map(|(t, k, n)| {
            format!("{} {:?}{}", day(*t), k, if n.is_empty() { String::new() } else { format!(": {n}") })
        });
        rows.push(("Events", lines(list)));
    }
    if !s.ignore.is_empty() {
        rows.push((
            "Ignored windows",
            lines(s.ignore.iter().map(|(a, b)| format!("{} to {}", rfc3339(*a), rfc3339(*b)))),
        ));
    }
    if !r.notes.is_empty() {
        rows.push(("Notes", lines(&r.notes)));
    }
    rows
}

fn settings_section(report: &Report) -> Markup {
    let run = report.run;
    let m = report.meta;
    let set = |f: &dyn Fn(&ResourceForecast) -> String| -> Markup {
        let v: BTreeSet<String> = run.resources.iter().map(f).collect();
        html! { @if v.is_empty() { "–" } @else { (v.into_iter().collect::<Vec<_>>().join(", ")) } }
    };
    let rows = [
        ("As of", html! { (rfc3339(run.as_of)) }),
        ("Generated", html! { (m.generated_at) }),
        ("headroom version", html! { (m.version) }),
        ("Config", html! { code { (m.config) } }),
        ("Config SHA-256", html! { code { (m.config_sha256) } }),
        ("Fail on", html! { (format!("{:?}", run.fail_on).to_lowercase()) }),
        ("Horizons", set(&|r| format_duration(r.settings.horizon))),
        ("Interval levels", set(&|r| format!("{:.0} %", r.settings.level * 100.0))),
        ("Steps", set(&|r| format_duration(r.step()))),
    ];
    html! {
        section #settings {
            h2 { "Run settings" }
            "\n"
            (facts(&rows))
        }
        "\n"
    }
}

/// Sort key for the status column: most urgent first when ascending.
fn status_rank(v: &View) -> u8 {
    match v.status {
        "hard" => 0,
        "ok" => 9,
        _ => 1,
    }
}

/// Colour and text, so the status reads without colour too.
fn status_badge(v: &View) -> Markup {
    match &v.alert {
        Some(c) => {
            let class = if c.breach.name == "hard" { "status-hard" } else { "status-soft" };
            let when = match c.earliest_days {
                _ if c.breach.already_breached => "already breached".to_string(),
                Some(d) => format!("in {d:.1} d"),
                None => String::new(),
            };
            html! { span class={ "status " (class) } { (c.breach.name.to_uppercase()) " " (when) } }
        }
        None => html! { span.status.status-ok { "OK" } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn hostile_names_are_escaped() {
        let page = testdata::render(&Page, false);
        assert!(!page.contains("<script>alert"), "raw script from a name");
        assert!(page.contains("web &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;cpu&quot;"));
        assert_eq!(page.matches("<script>").count(), 1, "only our own script");
        assert!(page.contains("Could not be forecast"));
        // The SVG namespace names, it does not load.
        let page = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!page.contains("http://") && !page.contains("https://"), "no network references");
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(testdata::render(&Page, true));
    }
}
