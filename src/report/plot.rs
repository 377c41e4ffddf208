//! Forecast plots, `plots/<slug>.png` and `.svg`: history, fit window, forecast with its
//! interval band, thresholds, breach markers, events. PNG text uses DejaVu Sans embedded in
//! the binary; SVG text names the generic `sans-serif` family.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};

use super::{ReportError, percent, threshold};
use crate::config::EventKind;
use crate::outcome::{Detail, ResourceForecast};
use crate::time::day;

const SIZE: (u32, u32) = (1000, 500);
const FONT: &str = "sans-serif";
/// Above this many points per series, plots show per-bin ranges instead of every step.
const MAX_POINTS: usize = 1200;

/// Registers the embedded font for plotters' text layout and builds the rasteriser's font
/// database, once per process. Both use DejaVu Sans compiled into the binary.
fn raster_options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        // Only fails on a malformed font, and the font is compiled in.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let mut opt = usvg::Options::default();
        let db = opt.fontdb_mut();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        opt.font_family = "DejaVu Sans".into();
        opt
    })
}

/// Draws a resource's plot as SVG text.
pub fn render_svg(r: &ResourceForecast, as_of: i64) -> Result<String, ReportError> {
    raster_options();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let d = r.detail.as_ref().ok_or(plot_error("no history and forecast left to draw (detail shed)"))?;
        draw(&root, r, d, as_of).map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Rasterises an SVG plot to PNG bytes with the embedded font.
pub fn rasterise(svg: &str) -> Result<Vec<u8>, ReportError> {
    let tree = usvg::Tree::from_str(svg, raster_options()).map_err(plot_error)?;
    let mut pixmap = tiny_skia::Pixmap::new(SIZE.0, SIZE.1).ok_or(plot_error("cannot allocate the PNG canvas"))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    // The plot is painted on opaque white, so premultiplied RGBA is plain RGB plus alpha.
    let rgb: Vec<u8> = pixmap.data().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(plot_error)?;
    writer.write_image_data(&rgb).map_err(plot_error)?;
    writer.finish().map_err(plot_error)?;
    Ok(png)
}

/// Drawing libraries' errors, as the text they give.
fn plot_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// Writes `<slug>.svg` and `<slug>.png` into `dir` (atomically) and returns the SVG.
pub fn write(r: &ResourceForecast, as_of: i64, dir: &Path, slug: &str) -> Result<String, ReportError> {
    let svg = render_svg(r, as_of).map_err(|e| ReportError::Plot(format!("{slug}: {}", crate::error::line(&e))))?;
    let png = rasterise(&svg).map_err(|e| ReportError::Plot(format!("{slug}.png: {}", crate::error::line(&e))))?;
    super::write_atomic(&dir.join(format!("{slug}.svg")), svg.as_bytes())?;
    super::write_atomic(&dir.join(format!("{slug}.png")), &png)?;
    Ok(svg)
}

/// One x position of a (possibly binned) path: the range of values in the bin and their mean.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bin {
    t: i64,
    lo: f64,
    hi: f64,
    mean: f64,
    count: usize,
}

/// Groups points into bins `width` seconds wide, or keeps one bin per point when `width` is
/// None. Missing values end a run, so the result is split at gaps.
fn bins(times: impl Fn(usize) -> i64, lo: &[f64], hi: &[f64], mid: &[f64], width: Option<i64>) -> Vec<Vec<Bin>> {
    let mut runs: Vec<Vec<Bin>> = vec![];
    let mut run: Vec<Bin> = vec![];
    for i in 0..mid.len() {
        if !(lo[i].is_finite() && hi[i].is_finite() && mid[i].is_finite()) {
            if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
            continue;
        }
        let t = match width {
            Some(w) => times(i).div_euclid(w) * w + w / 2,
            None => times(i),
        };
        match run.last_mut() {
            Some(b) if b.t == t => {
                b.lo = b.lo.min(lo[i]);
                b.hi = b.hi.max(hi[i]);
                b.count += 1;
                b.mean += (mid[i] - b.mean) / b.count as f64;
            }
            _ => run.push(Bin { t, lo: lo[i], hi: hi[i], mean: mid[i], count: 1 }),
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    // A partial bin at either end of a run (the horizon rarely ends on a bin edge) would draw
    // a spike from a handful of points: fold it into its neighbour.
    for run in &mut runs {
        let n = run.len();
        if n >= 2 && run[n - 1].count * 2 < run[n - 2].count {
            let last = run.pop().unwrap_or(run[n - 2]);
            merge(&mut run[n - 2], &last);
        }
        if run.len() >= 2 && run[0].count * 2 < run[1].count {
            let first = run.remove(0);
            merge(&mut run[0], &first);
        }
    }
    runs
}

fn merge(into: &mut Bin, other: &Bin) {
    into.lo = into.lo.min(other.lo);
    into.hi = into.hi.max(other.hi);
    let n = (into.count + other.count) as f64;
    into.mean = (into.mean * into.count as f64 + other.mean * other.count as f64) / n;
    into.count += other.count;
}

/// The outline of a band over bins: highs forward, lows back.
fn outline(run: &[Bin]) -> Vec<(i64, f64)> {
    run.iter().map(|b| (b.t, b.hi)).chain(run.iter().rev().map(|b| (b.t, b.lo))).collect()
}

/// Month starts (every 1, 2 or 3 months) for long ranges, else whole days: tick positions
/// a reader recognises.
fn key_points(x0: i64, x1: i64) -> Vec<i64> {
    let days = (x1 - x0) / 86_400;
    let mut out = vec![];
    if days > 60 {
        let every = if days > 540 {
            3
        } else if days > 240 {
            2
        } else {
            1
        };
        let Some(start) = DateTime::from_timestamp(x0, 0) else { return out };
        let (mut y, mut m) = (start.year(), start.month());
        loop {
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
            let Some(t) = NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.and_hms_opt(0, 0, 0)) else { break };
            let t = t.and_utc().timestamp();
            if t > x1 {
                break;
            }
            if (m - 1) % every == 0 {
                out.push(t);
            }
        }
    } else {
        let every = (days / 8).max(1) * 86_400;
        let mut t = (x0 / 86_400 + 1) * 86_400;
        while t <= x1 {
            out.push(t);
            t += every;
        }
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &ResourceForecast,
    d: &Detail,
    as_of: i64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (chart_area, footer_area) = root.split_vertically(SIZE.1 - 26);
    let h = &d.history;
    let f = &d.forecast;
    let n = f.mean.len();
    let x0 = h.start;
    let x1 = r.forecast_time(n.saturating_sub(1)).max(x0 + 1);
    let (y0, y1, pad) = value_range(r, d);

    // Control characters cannot appear in SVG (XML) text.
    let name: String = r.name.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect();
    let title = format!("{name} — {}, as of {}", short_model(&r.model), day(as_of));
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(if r.settings.unit.is_some() { 84 } else { 64 })
        .build_cartesian_2d((x0..x1).with_key_points(key_points(x0, x1)), y0..y1)?;
    chart
        .configure_mesh()
        .y_labels(8)
        .x_label_formatter(&|x| day(*x))
        .y_label_formatter(&|y| match (&r.settings.unit, r.settings.capacity) {
            // Real units on the axis; thresholds in the legend show the fraction too.
            (Some(u), c) => crate::units::format_quantity(y * c.unwrap_or(1.0), u),
            _ if r.settings.bounded => format!("{:.0} %", y * 100.0),
            _ => format!("{y:.3}"),
        })
        .label_style((FONT, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;

    // Long series are drawn as per-bin ranges (peaks stay visible) with the bin mean.
    let raw_width = (x1 - x0) / (MAX_POINTS as i64 / 2);
    let width = [3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800]
        .into_iter()
        .find(|w| *w >= raw_width)
        .unwrap_or(raw_width);
    let width = (h.len() + n > MAX_POINTS && width > h.step).then_some(width);
    let blue = RGBColor(31, 119, 180);
    let grey = RGBColor(120, 120, 120);
    let dark = RGBColor(40, 40, 40);

    let band = bins(|i| r.forecast_time(i), &f.lower, &f.upper, &f.mean, width);
    for (k, run) in band.iter().enumerate() {
        let s = chart.draw_series(std::iter::once(Polygon::new(outline(run), blue.mix(0.2).filled())))?;
        if k == 0 {
            s.label(format!("{:.0} % interval", r.settings.level * 100.0))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], blue.mix(0.2).filled()));
        }
    }
    let hist = bins(|i| h.time(i), &h.values, &h.values, &h.values, width);
    let mut labelled = false;
    for run in &hist {
        if width.is_some() {
            chart.draw_series(std::iter::once(Polygon::new(outline(run), grey.mix(0.35).filled())))?;
        }
        // The stretch before a level shift (not fitted) in grey.
        let (old, new): (Vec<&Bin>, Vec<&Bin>) = run.iter().partition(|b| b.t < r.fit_start);
        if old.len() > 1 {
            chart.draw_series(LineSeries::new(old.iter().map(|b| (b.t, b.mean)), grey.stroke_width(1)))?;
        }
        if new.len() > 1 {
            let s = chart.draw_series(LineSeries::new(new.iter().map(|b| (b.t, b.mean)), dark.stroke_width(1)))?;
            if !labelled {
                let label = match width {
                    Some(w) => format!("history (mean and range per {})", crate::time::format_duration(w)),
                    None => "history".to_string(),
                };
                s.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], dark));
                labelled = true;
            }
        }
    }
    // Earlier runs' bands (with a ledger), faint, over the history they forecast.
    let orange = RGBColor(255, 127, 14);
    for (k, p) in d.past.iter().enumerate() {
        let seen: Vec<&crate::track::Mark> = p.outline.iter().filter(|m| m.t <= as_of && m.t >= x0).collect();
        if seen.len() < 2 {
            continue;
        }
        let shape: Vec<(i64, f64)> =
            seen.iter().map(|m| (m.t, m.upper)).chain(seen.iter().rev().map(|m| (m.t, m.lower))).collect();
        let s = chart.draw_series(std::iter::once(Polygon::new(shape, orange.mix(0.15).filled())))?;
        if k == 0 {
            s.label(format!("earlier forecasts' bands, each day at the as-of hour (last {})", d.past.len()))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], orange.mix(0.25).filled()));
        }
    }
    // In-sample fit of the chosen model, over the fitted window.
    let fit_offset = ((r.fit_start - h.start) / h.step).max(0) as usize;
    let fit_time = |i: usize| h.time(fit_offset + i);
    let light = RGBColor(110, 170, 220);
    let fitted = d.fitted_values();
    for (k, run) in bins(fit_time, &fitted, &fitted, &fitted, width).iter().enumerate() {
        let s = chart.draw_series(LineSeries::new(run.iter().map(|b| (b.t, b.mean)), light.stroke_width(1)))?;
        if k == 0 {
            s.label("fitted").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], light));
        }
    }
    let mean = bins(|i| r.forecast_time(i), &f.mean, &f.mean, &f.mean, width);
    for (k, run) in mean.iter().enumerate() {
        if width.is_some() {
            chart.draw_series(std::iter::once(Polygon::new(outline(run), blue.mix(0.45).filled())))?;
        }
        let s = chart.draw_series(LineSeries::new(run.iter().map(|b| (b.t, b.mean)), blue.stroke_width(2)))?;
        if k == 0 {
            s.label("forecast").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
        }
    }

    // What-if scenarios: their bands, faint, and mean paths, dashed.
    let palette = [RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194)];
    for ((name, _), sf) in r.scenarios.iter().zip(&d.scenario_paths) {
        // Colour by name, so a scenario looks the same in every resource's plot.
        let color =
            palette[name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % palette.len()];
        for run in bins(|i| r.forecast_time(i), &sf.lower, &sf.upper, &sf.mean, width) {
            chart.draw_series(std::iter::once(Polygon::new(outline(&run), color.mix(0.12).filled())))?;
        }
        for (j, run) in bins(|i| r.forecast_time(i), &sf.mean, &sf.mean, &sf.mean, width).iter().enumerate() {
            let s = chart.draw_series(DashedLineSeries::new(
                run.iter().map(|b| (b.t, b.mean)).collect::<Vec<_>>(),
                6,
                3,
                color.stroke_width(2),
            ))?;
            if j == 0 {
                s.label(format!("what if: {name}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
        }
    }

    // Thresholds; a triangle where the upper bound crosses (earliest), a dot where the mean does.
    for b in &r.breaches {
        let color = if b.name == "hard" { RGBColor(214, 39, 40) } else { RGBColor(255, 127, 14) };
        chart
            .draw_series(DashedLineSeries::new([(x0, b.threshold), (x1, b.threshold)], 8, 5, color.stroke_width(1)))?
            .label(format!("{} {}", b.name, threshold(r, b.threshold)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        if let Some(t) = r.earliest_at(b) {
            chart.draw_series(std::iter::once(TriangleMarker::new((t, b.threshold), 7, color.filled())))?;
        }
        if let Some(t) = r.expected_at(b) {
            chart.draw_series(std::iter::once(Circle::new((t, b.threshold), 5, color.filled())))?;
        }
    }

    // The as-of date and events as labelled vertical lines; labels of lines close together
    // (within a sixth of the width) step down a row each.
    let mut row = 0.0;
    let mut previous: Option<i64> = None;
    for (t, text, color) in verticals(r, as_of, x0, x1) {
        chart.draw_series(DashedLineSeries::new([(t, y0), (t, y1)], 4, 4, color.stroke_width(1)))?;
        row = if previous.is_some_and(|p| (t - p) * 6 < x1 - x0) { row + 1.0 } else { 0.0 };
        previous = Some(t);
        let style = (FONT, 12).into_font().color(&color);
        chart.draw_series(std::iter::once(Text::new(format!(" {text}"), (t, y1 - pad * (0.2 + 0.45 * row)), style)))?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;

    // Breach dates in a footer, so the plot reads without the report.
    footer_area.draw(&Text::new(footer(r, x1), (78, 4), (FONT, 13)))?;
    Ok(())
}

/// The value axis: from the lowest to the highest of the history, the bands (the scenarios'
/// too) and the thresholds, within [0, 1] for a bounded resource, padded by 6 % each side.
/// Returns the axis' ends and the pad.
fn value_range(r: &ResourceForecast, d: &Detail) -> (f64, f64, f64) {
    let (h, f) = (&d.history, &d.forecast);
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let scenarios = d.scenario_paths.iter().flat_map(|sf| sf.lower.iter().chain(&sf.upper));
    for v in h.values.iter().chain(&f.lower).chain(&f.upper).chain(scenarios).filter(|v| v.is_finite()) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    for b in &r.breaches {
        lo = lo.min(b.threshold);
        hi = hi.max(b.threshold);
    }
    if r.settings.bounded {
        lo = lo.max(0.0);
        hi = hi.min(1.0);
    }
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad, pad)
}

/// The vertical lines, in time order: the as-of date, a level shift found in the data, and
/// the configured events within the plot.
fn verticals(r: &ResourceForecast, as_of: i64, x0: i64, x1: i64) -> Vec<(i64, String, RGBColor)> {
    let mut lines = vec![(as_of, format!("as of {}", day(as_of)), RGBColor(90, 90, 90))];
    if let Some(t) = r.level_shift {
        lines.push((t, "level shift found".to_string(), RGBColor(148, 103, 189)));
    }
    for (t, kind, note) in &r.settings.events {
        if *t >= x0 && *t <= x1 {
            let what = if *kind == EventKind::LevelShift { "level shift" } else { "event" };
            let text = if note.is_empty() { what.to_string() } else { format!("{what}: {note}") };
            lines.push((*t, text, RGBColor(148, 103, 189)));
        }
    }
    lines.sort_by_key(|v| v.0);
    lines
}

/// Each threshold's crossing dates, on one line.
fn footer(r: &ResourceForecast, x1: i64) -> String {
    let parts: Vec<String> = r
        .breaches
        .iter()
        .map(|b| match (r.expected_at(b), r.earliest_at(b)) {
            _ if b.already_breached => format!("{} {}: already breached", b.name, threshold(r, b.threshold)),
            (e, Some(l)) => format!(
                "{} {}: earliest {}, expected {}, p = {}",
                b.name,
                threshold(r, b.threshold),
                day(l),
                e.map_or("none".into(), day),
                percent(b.probability)
            ),
            _ => format!("{} {}: no crossing by {}", b.name, threshold(r, b.threshold), day(x1)),
        })
        .collect();
    parts.join("    ·    ")
}

/// A model name that fits a plot title: a combination of several models by its kind and
/// size (`median of 4 models`); the reports' tables carry the full name.
fn short_model(model: &str) -> String {
    const LONGEST: usize = 40;
    let Some((kind, rest)) = model.split_once('(').filter(|_| model.len() > LONGEST) else { return model.to_string() };
    let mut depth = 0;
    let parts = 1 + rest
        .chars()
        .filter(|c| {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ => {}
            }
            *c == ',' && depth == 0
        })
        .count();
    if matches!(kind, "mean" | "median") && parts > 1 { format!("{kind} of {parts} models") } else { model.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_combination_names_shorten_in_titles() {
        let m = "median(linear+season(24), linear+season(24)[last 2160], piecewise(24,168), mstl(24)+theta)";
        assert_eq!(short_model(m), "median of 4 models");
        assert_eq!(short_model("mean(naive, theta)"), "mean(naive, theta)");
        assert_eq!(short_model("piecewise(24,168)"), "piecewise(24,168)");
    }
}
