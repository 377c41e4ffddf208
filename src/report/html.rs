//! `index.html`: one self-contained page (inline CSS, inline SVG plots, a few lines of JS to
//! sort the table; nothing loaded from the network). Resources ranked by days of headroom,
//! each with its plot, model, backtest score, thresholds and crossings; failed resources with
//! their reasons; the run's settings. Every name from a file or server is escaped.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::overview;
use super::track::{self, Table, TrackTables};
use super::{Exporter, Report, ReportError, escape_xml as esc, fmt_value, level, opt_day, percent, threshold};
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
        let mut h = String::new();
        let alerting = run.resources.iter().filter(|r| r.alert(as_of).is_some()).count();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>headroom: capacity forecast as of {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            day(as_of)
        );
        let _ = writeln!(
            h,
            "<h1>Capacity forecast</h1>\n<p class=\"sub\">As of {} · {} resources · {} alerting within their alert window · {} errors</p>",
            rfc3339(as_of),
            run.resources.len(),
            alerting,
            run.errors.len()
        );

        overview_section(&mut h, run, &report.meta.group_by);

        // Ranking, with the filters above it. A large fleet's page has sections for its
        // plotted resources only; the rest are rows.
        let every = super::stream::Streamer::everything_for(run.total, report.meta.full);
        let ledger = run.ledger.is_some();
        filters_bar(&mut h, run, &report.meta.group_by);
        let _ = write!(
            h,
            "<div class=\"scroll\"><table class=\"sortable\" id=\"ranking\">\n<thead><tr><th>#</th><th>Resource</th><th>Status</th><th>Last</th><th>Headroom (days)</th><th>Soft: expected / earliest</th><th>Hard: expected / earliest</th><th>P(hard)</th><th>Model</th><th>MASE</th>{}</tr></thead>\n<tbody>\n",
            if ledger { "<th>Moved since last run</th>" } else { "" }
        );
        for (i, r) in run.resources.iter().enumerate() {
            let slug = report.slugs.get(&r.name).cloned().unwrap_or_default();
            let v = r.view(as_of);
            let headroom = v.headroom_days;
            let cross = |name: &str| match v.crossings.iter().find(|c| c.breach.name == name) {
                None => "–".to_string(),
                Some(c) if c.breach.already_breached => "already breached".into(),
                Some(c) => format!("{} / {}", opt_day(c.expected), opt_day(c.earliest)),
            };
            let p_hard = v.p_hard;
            let mase = r.backtest.as_ref().and_then(|b| b.mase);
            let moved = if ledger { format!("<td>{}</td>", esc(&track::moved_cell(r))) } else { String::new() };
            let name_cell = if every || report.plots.contains_key(&r.name) {
                format!("<a href=\"#r-{}\">{}</a>", esc(&slug), esc(&r.name))
            } else {
                esc(&r.name)
            };
            let crosses: Vec<&str> =
                v.crossings.iter().filter(|c| c.earliest.is_some()).map(|c| c.breach.name.as_str()).collect();
            let search: Vec<String> = std::iter::once(r.name.to_lowercase())
                .chain(r.labels.iter().map(|(k, v)| format!("{k}={v}").to_lowercase()))
                .collect();
            let _ = write!(
                h,
                "<tr data-slug=\"{}\" data-status=\"{}\" data-group=\"{}\" data-crosses=\"{}\" data-search=\"{}\">",
                esc(&slug),
                esc(v.status),
                esc(&overview::group_of(r, &report.meta.group_by)),
                esc(&crosses.join(" ")),
                esc(&search.join(" ")),
            );
            let _ = writeln!(
                h,
                "<td class=\"num\">{}</td><td>{}</td><td data-v=\"{}\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\" data-v=\"{}\">{}</td><td>{}</td><td>{}</td><td class=\"num\" data-v=\"{}\">{}</td><td>{}</td><td class=\"num\" data-v=\"{}\">{}</td>{}</tr>",
                i + 1,
                name_cell,
                status_rank(&v),
                status_badge(&v),
                level(r, r.last_value),
                headroom.map_or("Infinity".into(), |d| format!("{d:.3}")),
                headroom.map_or("&gt; horizon".into(), |d| format!("{d:.1}")),
                cross("soft"),
                cross("hard"),
                p_hard.unwrap_or(-1.0),
                p_hard.map_or("–".into(), percent),
                esc(&r.model),
                mase.unwrap_or(f64::MAX),
                mase.map_or("–".into(), |m| format!("{m:.2}")),
                moved,
            );
        }
        h.push_str("</tbody>\n</table></div>\n");
        h.push_str("<p class=\"sub\">Headroom: days from the as-of date to the first upper-bound crossing of any threshold. Expected: the mean forecast reaches the threshold; earliest: the upper bound of the prediction interval does. Click a column to sort.</p>\n");

        if !run.errors.is_empty() {
            h.push_str("<section id=\"errors\">\n<h2>Could not be forecast</h2>\n<ul class=\"errors\">\n");
            for e in &run.errors {
                let _ = writeln!(
                    h,
                    "<li><span class=\"status status-error\">error</span> {}{}</li>",
                    e.resource.as_deref().map_or(String::new(), |r| format!("<strong>{}</strong>: ", esc(r))),
                    esc(&e.message)
                );
            }
            h.push_str("</ul>\n</section>\n");
        }

        if let Some(t) = track::tables(run) {
            track_section(&mut h, &t, run);
        }
        for r in run.resources.iter().filter(|r| every || report.plots.contains_key(&r.name)) {
            resource_section(&mut h, report, r);
        }
        settings_section(&mut h, report);
        let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
        Ok(h.into_bytes())
    }
}

/// The fleet at a glance: counts by status, the weeks the first crossings fall in, the spread
/// of headroom and the groups most at risk.
fn overview_section(h: &mut String, run: &RunResult, group_by: &str) {
    let o = overview::overview(run, group_by);
    let _ = writeln!(
        h,
        "<section id=\"overview\">\n<p class=\"counts\"><span class=\"status status-hard\">{} hard</span> \
         <span class=\"status status-soft\">{} soft</span> <span class=\"status status-ok\">{} ok</span> \
         <span class=\"status status-error\">{} failed</span> · {} already at a threshold</p>",
        o.hard, o.soft, o.ok, o.failed, o.already
    );
    h.push_str("<div class=\"charts\">");
    h.push_str(&calendar_chart(&o.calendar));
    h.push_str(&headroom_chart(&o.headroom));
    h.push_str("</div>\n");
    let shown: Vec<&overview::Group> = o.groups.iter().take(GROUPS_SHOWN).collect();
    if o.groups.len() > 1 {
        let more = o.groups.len().saturating_sub(GROUPS_SHOWN);
        let _ = writeln!(
            h,
            "<h3>By group <code>{}</code>{}</h3>",
            esc(group_by),
            if more > 0 { format!(" (the {GROUPS_SHOWN} most at risk of {})", o.groups.len()) } else { String::new() }
        );
        h.push_str(r#"<div class="scroll"><table class="sortable" id="groups">
<thead><tr><th>group</th><th>resources</th><th>at risk</th><th>earliest crossing</th><th>capacity needed (largest)</th></tr></thead>
<tbody>
"#);
        for g in &shown {
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#group={}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&url_component(&g.name)),
                esc(&g.name),
                g.resources,
                g.at_risk,
                g.earliest.map_or("–".into(), day),
                g.capacity_needed.map_or("–".into(), |k| format!("×{k:.2}")),
            );
        }
        h.push_str("</tbody>\n</table></div>\n");
    }
    h.push_str("</section>\n");
}

/// Search box and filters over the ranking (and the resource sections below it); the page's
/// URL keeps them (`#status=hard&group=patroni`), so a link opens the same view.
fn filters_bar(h: &mut String, run: &RunResult, group_by: &str) {
    let groups: BTreeSet<String> = run.resources.iter().map(|r| overview::group_of(r, group_by)).collect();
    let thresholds: BTreeSet<&str> =
        run.resources.iter().flat_map(|r| r.breaches.iter().map(|b| b.name.as_str())).collect();
    h.push_str("<div id=\"filters\" class=\"filters\"><input type=\"search\" id=\"f-q\" placeholder=\"Search names and labels\" aria-label=\"Search names and labels\">");
    h.push_str("<select id=\"f-status\" aria-label=\"Status\"><option value=\"\">any status</option>");
    for s in ["hard", "soft", "ok"] {
        let _ = write!(h, "<option value=\"{s}\">{s}</option>");
    }
    h.push_str("</select><select id=\"f-group\" aria-label=\"Group\"><option value=\"\">any group</option>");
    for g in &groups {
        let _ = write!(h, "<option value=\"{0}\">{0}</option>", esc(g));
    }
    h.push_str(
        "</select><select id=\"f-threshold\" aria-label=\"Threshold\"><option value=\"\">any threshold</option>",
    );
    for t in &thresholds {
        let _ = write!(h, "<option value=\"{0}\">crosses {0} within the horizon</option>", esc(t));
    }
    h.push_str("</select> <span id=\"f-shown\" class=\"sub\"></span></div>\n");
}

/// Percent-encodes a value for the page's `#key=value` links (as `encodeURIComponent`).
fn url_component(s: &str) -> String {
    crate::source::redact::percent_encode(s)
}

/// Groups listed in the overview.
const GROUPS_SHOWN: usize = 20;

/// First crossings per week over the horizon: soft and hard bars side by side.
fn calendar_chart(weeks: &[overview::Week]) -> String {
    let (w, hgt, left, bottom) = (460.0, 180.0, 30.0, 28.0);
    let plot_h = hgt - bottom - 16.0;
    let most = weeks.iter().map(|k| k.soft.max(k.hard)).max().unwrap_or(0).max(1) as f64;
    let bw = (w - left - 8.0) / weeks.len().max(1) as f64;
    let y = |v: f64| 16.0 + plot_h * (1.0 - v / most);
    let mut s = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\" aria-label=\"First crossings per week\">\
         <text x=\"{left}\" y=\"11\" font-size=\"10\">first crossings per week (earliest: upper bound)</text>"
    );
    for (i, k) in weeks.iter().enumerate() {
        let x = left + i as f64 * bw;
        for (j, (n, color, what)) in [(k.soft, "#ff7f0e", "soft"), (k.hard, "#d62728", "hard")].into_iter().enumerate()
        {
            if n == 0 {
                continue;
            }
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>week of {}: {n} first {what} crossing{}</title></rect>",
                x + 1.0 + j as f64 * (bw - 2.0) / 2.0,
                y(n as f64),
                ((bw - 2.0) / 2.0).max(1.0),
                y(0.0) - y(n as f64),
                day(k.start),
                if n == 1 { "" } else { "s" }
            );
        }
        if i % 4 == 0 {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"9\">{}</text>",
                hgt - bottom + 12.0,
                &day(k.start)[5..]
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\">{most}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\">0</text></svg>",
        left - 3.0,
        y(most) + 8.0,
        left - 3.0,
        y(0.0)
    );
    s
}

/// Resources per headroom bucket, as horizontal bars.
fn headroom_chart(counts: &[usize]) -> String {
    let (w, row) = (300.0, 22.0);
    let hgt = 18.0 + row * counts.len() as f64;
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\" aria-label=\"Headroom\">\
         <text x=\"6\" y=\"11\" font-size=\"10\">resources by headroom</text>"
    );
    for (i, (&n, (label, _))) in counts.iter().zip(overview::HEADROOM_BUCKETS.iter()).enumerate() {
        let y = 18.0 + i as f64 * row;
        let len = (w - 130.0) * n as f64 / most;
        let _ = write!(
            s,
            "<text x=\"6\" y=\"{:.1}\" font-size=\"10\">{label}</text><rect x=\"80\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{n}</text>",
            y + 14.0,
            y + 3.0,
            row - 6.0,
            84.0 + len,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

/// The track record: how earlier forecasts did, charted and tabled.
fn track_section(h: &mut String, t: &TrackTables, run: &RunResult) {
    let f = run.fleet_track();
    let level = run.resources.first().map_or(0.8, |r| r.settings.level);
    let _ = writeln!(h, "<section id=\"track\">\n<h2>Track record</h2>\n<p>{}</p>", esc(&t.intro));
    if !f.leads.is_empty() {
        h.push_str("<div class=\"charts\">");
        h.push_str(&coverage_chart(&f.leads, level));
        if !f.reliability.is_empty() {
            h.push_str(&reliability_chart(&f.reliability));
        }
        h.push_str("</div>\n");
    }
    h.push_str(&table(&t.leads, "track-leads"));
    let _ = writeln!(h, "<p>{}</p>", esc(&t.odds));
    if !t.reliability.rows.is_empty() {
        h.push_str(&table(&t.reliability, "track-reliability"));
    }
    let _ = writeln!(h, "<p>{}</p>", esc(&t.dates));
    if !t.moved.rows.is_empty() {
        h.push_str("<h3>Moved since the last run</h3>\n");
        h.push_str(&table(&t.moved, "track-moved"));
    }
    h.push_str("</section>\n");
}

/// An HTML table, every cell escaped.
fn table(t: &Table, id: &str) -> String {
    let mut s = format!("<div class=\"scroll\"><table class=\"sortable\" id=\"{id}\">\n<thead><tr>");
    for c in &t.head {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

/// Band coverage by lead time as bars, against a line at the nominal level.
fn coverage_chart(leads: &[FleetLead], level: f64) -> String {
    let (w, hgt, left, bottom) = (360.0, 200.0, 40.0, 30.0);
    let plot_h = hgt - bottom - 10.0;
    let bw = (w - left - 10.0) / leads.len().max(1) as f64;
    let y = |v: f64| 10.0 + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut s = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" role=\"img\" aria-label=\"Band coverage by lead time\">\
         <text x=\"{left}\" y=\"9\" font-size=\"10\">coverage of the band by lead time</text>"
    );
    for (i, l) in leads.iter().enumerate() {
        let x = left + i as f64 * bw + 4.0;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"><title>{}: {:.0} % of {} points</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            y(l.coverage),
            bw - 8.0,
            y(0.0) - y(l.coverage),
            esc(&l.lead),
            100.0 * l.coverage,
            l.points,
            x + (bw - 8.0) / 2.0,
            hgt - bottom + 14.0,
            esc(&l.lead)
        );
    }
    for v in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{:.0} %</text>",
            left - 4.0,
            y(v) + 3.0,
            100.0 * v
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"><title>nominal {:.0} %</title></line></svg>",
        w - 10.0,
        y(level),
        y(level),
        100.0 * level
    );
    s
}

/// Predicted against observed frequency of past breach odds, with the diagonal.
fn reliability_chart(bins: &[Bin]) -> String {
    let (size, pad) = (200.0, 30.0);
    let span = size - 2.0 * pad;
    let px = |v: f64| pad + span * v;
    let py = |v: f64| size - pad - span * v;
    let mut s = format!(
        "<svg class=\"chart\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"Reliability of breach odds\">\
         <text x=\"{pad}\" y=\"12\" font-size=\"10\">observed vs predicted odds</text>\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{span}\" height=\"{span}\" fill=\"none\" stroke=\"#ccc\"/>\
         <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let most = bins.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    for b in bins {
        let r = 2.0 + 5.0 * (b.count as f64 / most).sqrt();
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"#1f77b4\"><title>predicted {:.0} %, observed {:.0} % ({} forecasts)</title></circle>",
            px(b.mean_probability),
            py(b.observed),
            100.0 * b.mean_probability,
            100.0 * b.observed,
            b.count
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">predicted</text>\
         <text x=\"10\" y=\"{}\" font-size=\"10\" transform=\"rotate(-90 10 {})\" text-anchor=\"middle\">observed</text></svg>",
        px(0.5),
        size - 8.0,
        py(0.5),
        py(0.5)
    );
    s
}

fn resource_section(h: &mut String, report: &Report, r: &ResourceForecast) {
    let as_of = report.run.as_of;
    let s = &r.settings;
    let slug = report.slugs.get(&r.name).cloned().unwrap_or_default();
    let v = r.view(as_of);
    let _ = writeln!(h, "<article id=\"r-{}\">\n<h2>{} {}</h2>", esc(&slug), esc(&r.name), status_badge(&v));
    let drawn = report.plots.get(&r.name);
    match drawn {
        Some(d) if !d.svg.is_empty() => {
            let _ = writeln!(h, "<div class=\"plot\">{}</div>", d.svg);
        }
        // A large fleet links its plots (the page would be too heavy with them inline).
        Some(_) => {
            let src = format!("plots/{}.svg", esc(&slug));
            let _ = writeln!(
                h,
                "<div class=\"plot\"><a href=\"{src}\"><img src=\"{src}\" loading=\"lazy\" alt=\"forecast plot of {}\"></a></div>",
                esc(&r.name)
            );
        }
        None => h.push_str("<p class=\"sub\">Not plotted in this run (<code>--plots</code>).</p>\n"),
    }
    if let Some(d) = drawn.filter(|d| !d.explore.is_empty()) {
        // JSON in a script element: `<` escaped so no value can close it.
        let _ = writeln!(
            h,
            "<details class=\"explore\"><summary>Explore: hover for values, zoom into the weeks around the as-of date</summary>\
             <div class=\"zoom\"><button type=\"button\" data-zoom=\"all\">whole history</button><button type=\"button\" data-zoom=\"close\">last 2 weeks and first 2 weeks of the forecast</button><button type=\"button\" data-zoom=\"forecast\">forecast</button></div>\
             <div class=\"xp\"></div><div class=\"tip\"></div><script type=\"application/json\">{}</script></details>",
            d.explore.replace('<', "\\u003c")
        );
    }
    h.push_str("<table>\n<thead><tr><th>Threshold</th><th>Value</th><th>Expected (mean)</th><th>Earliest (upper bound)</th><th>Act by</th><th>Probability</th></tr></thead>\n<tbody>\n");
    for c in &v.crossings {
        let b = c.breach;
        let days = |t: Option<i64>, d: Option<f64>| match (t, d) {
            (Some(t), Some(d)) => format!("{} ({d:.1} d)", day(t)),
            _ => "–".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&b.name),
            threshold(r, b.threshold),
            if b.already_breached { "already breached".into() } else { days(c.expected, c.expected_days) },
            if b.already_breached { "already breached".into() } else { days(c.earliest, c.earliest_days) },
            c.act_by.map_or("–".into(), day),
            percent(b.probability)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    if !v.scenarios.is_empty() {
        h.push_str("<table>\n<thead><tr><th>What if</th><th>Threshold</th><th>Expected</th><th>Earliest</th><th>Days gained: expected / earliest</th><th>Probability</th></tr></thead>\n<tbody>\n");
        for (name, moved) in &v.scenarios {
            for m in moved {
                let c = &m.crossing;
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td></tr>",
                    esc(name),
                    esc(&c.breach.name),
                    threshold(r, c.breach.threshold),
                    opt_day(c.expected),
                    opt_day(c.earliest),
                    m.expected_moved,
                    m.earliest_moved,
                    percent(c.breach.probability)
                );
            }
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("<dl class=\"facts\">\n");
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(h, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact("Source", esc(&r.source));
    if let Some(k) = r.capacity_needed {
        let by = v.act_by.map_or(String::new(), |t| format!(", act by {}", day(t)));
        fact(
            "Capacity needed",
            format!(
                "×{k:.2} to keep the upper bound below {}{by}",
                r.breaches.last().map_or(String::new(), |b| threshold(r, b.threshold))
            ),
        );
    }
    fact("Last value", format!("{} at {}", level(r, r.last_value), rfc3339(r.last_observed)));
    if let Some(c) = r.settings.capacity {
        let u = r.settings.unit.as_deref();
        fact("Capacity", u.map_or(fmt_value(c), |u| format!("{} ({c:e} {})", format_quantity(c, u), esc(u))));
    }
    fact("Model", esc(&r.model));
    if let Some(t) = &r.track {
        let leads: Vec<String> = t
            .leads
            .iter()
            .map(|l| {
                format!(
                    "{}: {:.0} % in band, MAE {} × naive",
                    esc(&l.lead),
                    100.0 * l.coverage,
                    l.relative_mae().map_or("–".into(), |x| format!("{x:.2}"))
                )
            })
            .collect();
        fact(
            "Track record",
            format!(
                "{} earlier forecast{} ({} scored){}",
                t.forecasts,
                if t.forecasts == 1 { "" } else { "s" },
                t.scored,
                if leads.is_empty() { String::new() } else { format!("<br>{}", leads.join(" · ")) }
            ),
        );
        if let Some(d) = &t.drift {
            fact("Since the last run", format!("{}: {}", esc(&track::moved_cell(r)), esc(&d.reason)));
        }
    }
    fact(
        "Backtest",
        match &r.backtest {
            Some(b) => {
                let runners: Vec<String> = b
                    .candidates
                    .iter()
                    .skip(1)
                    .take(4)
                    .map(|(m, _, mase)| format!("{} {}", esc(m), mase.map_or("–".into(), |x| format!("{x:.2}"))))
                    .collect();
                format!(
                    "MASE {} · MAE {:.4} · {} origins × {} steps{}",
                    b.mase.map_or("–".into(), |m| format!("{m:.2}")),
                    b.mae,
                    b.origins,
                    b.horizon,
                    if runners.is_empty() {
                        String::new()
                    } else {
                        format!("<br>runners-up (MASE): {}", runners.join(" · "))
                    }
                )
            }
            None => "none (history too short to hold out)".into(),
        },
    );
    fact(
        "Series",
        format!(
            "{} step, {} per step, from {}{}",
            format_duration(r.step()),
            s.aggregate.name(),
            day(r.history_start),
            if r.fit_start > r.history_start { format!(", fitted from {}", day(r.fit_start)) } else { String::new() }
        ),
    );
    fact(
        "Forecast",
        format!(
            "{} ahead at {:.0} % intervals{}; alert within {}, lead time {}",
            format_duration(s.horizon),
            s.level * 100.0,
            if s.bounded { ", bounded to [0, 1]" } else { "" },
            format_duration(s.alert_within),
            format_duration(s.lead_time)
        ),
    );
    if !s.events.is_empty() {
        let list: Vec<String> = s
            .events
            .iter()
            .map(|(t, k, n)| {
                format!("{} {:?}{}", day(*t), k, if n.is_empty() { String::new() } else { format!(": {}", esc(n)) })
            })
            .collect();
        fact("Events", list.join("<br>"));
    }
    if !s.ignore.is_empty() {
        let list: Vec<String> = s.ignore.iter().map(|(a, b)| format!("{} to {}", rfc3339(*a), rfc3339(*b))).collect();
        fact("Ignored windows", list.join("<br>"));
    }
    if !r.notes.is_empty() {
        fact("Notes", r.notes.iter().map(|n| esc(n)).collect::<Vec<_>>().join("<br>"));
    }
    h.push_str("</dl>\n</article>\n");
}

fn settings_section(h: &mut String, report: &Report) {
    let run = report.run;
    let m = report.meta;
    let set = |f: &dyn Fn(&ResourceForecast) -> String| -> String {
        let v: BTreeSet<String> = run.resources.iter().map(f).collect();
        if v.is_empty() { "–".into() } else { v.into_iter().collect::<Vec<_>>().join(", ") }
    };
    h.push_str("<section id=\"settings\">\n<h2>Run settings</h2>\n<dl class=\"facts\">\n");
    let rows = [
        ("As of", rfc3339(run.as_of)),
        ("Generated", esc(&m.generated_at)),
        ("headroom version", esc(&m.version)),
        ("Config", format!("<code>{}</code>", esc(&m.config))),
        ("Config SHA-256", format!("<code>{}</code>", esc(&m.config_sha256))),
        ("Fail on", format!("{:?}", run.fail_on).to_lowercase()),
        ("Horizons", set(&|r| format_duration(r.settings.horizon))),
        ("Interval levels", set(&|r| format!("{:.0} %", r.settings.level * 100.0))),
        ("Steps", set(&|r| format_duration(r.step()))),
    ];
    for (k, v) in rows {
        let _ = writeln!(h, "<dt>{k}</dt><dd>{v}</dd>");
    }
    h.push_str("</dl>\n</section>\n");
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
fn status_badge(v: &View) -> String {
    match &v.alert {
        Some(c) => {
            let class = if c.breach.name == "hard" { "status-hard" } else { "status-soft" };
            let when = match c.earliest_days {
                _ if c.breach.already_breached => "already breached".to_string(),
                Some(d) => format!("in {d:.1} d"),
                None => String::new(),
            };
            format!("<span class=\"status {class}\">{} {when}</span>", esc(&c.breach.name.to_uppercase()))
        }
        None => "<span class=\"status status-ok\">OK</span>".into(),
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
