//! The data behind a plot's interactive view in `index.html` (`plots/<slug>.json`): the
//! history and the forecast at every step over the last and first [`CLOSE`] of them (where a
//! person reads closely), by day elsewhere, values at four significant digits, and the
//! thresholds. The page's script draws it with hover and zoom; the PNG/SVG stay for
//! Markdown, issues and e-mail.

use std::fmt::Write as _;

use crate::outcome::ResourceForecast;

/// How long before and after the as-of date the view keeps every step.
pub const CLOSE: i64 = 14 * 86_400;
const DAY: i64 = 86_400;

/// A value at four significant digits, as JSON in its shorter form (`null` when not finite).
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "null".into();
    }
    let (plain, sci) = (format!("{}", super::sig4(v)), format!("{v:.3e}"));
    if plain.len() < sci.len() { plain } else { sci }
}

/// `(t, v)` pairs: every step from `close_from` on, the day's mean before it.
fn thinned(points: impl Iterator<Item = (i64, f64)>, close_from: i64) -> Vec<(i64, f64)> {
    let mut out = vec![];
    let mut bucket: Option<(i64, f64, usize)> = None;
    for (t, v) in points.filter(|(_, v)| v.is_finite()) {
        if t >= close_from {
            if let Some((d, sum, n)) = bucket.take() {
                out.push((d, sum / n as f64));
            }
            out.push((t, v));
            continue;
        }
        let d = t - t.rem_euclid(DAY);
        match &mut bucket {
            Some((bd, sum, n)) if *bd == d => {
                *sum += v;
                *n += 1;
            }
            _ => {
                if let Some((bd, sum, n)) = bucket.replace((d, v, 1)) {
                    out.push((bd, sum / n as f64));
                }
            }
        }
    }
    if let Some((d, sum, n)) = bucket {
        out.push((d, sum / n as f64));
    }
    out
}

/// The view's data as JSON; None without the detail (already shed).
pub fn data(r: &ResourceForecast, as_of: i64) -> Option<String> {
    let d = r.detail.as_ref()?;
    let h = &d.history;
    let history = thinned((0..h.len()).map(|i| (h.time(i), h.values[i])), as_of - CLOSE);
    let mut s = String::from("{\"history\":[");
    for (i, (t, v)) in history.iter().enumerate() {
        let _ = write!(s, "{}[{t},{}]", if i > 0 { "," } else { "" }, num(*v));
    }
    s.push_str("],\"forecast\":[");
    let f = &d.forecast;
    let mut first = true;
    for i in 0..f.mean.len() {
        let t = r.forecast_time(i);
        // Every step over the first days of the forecast, one a day (at the as-of hour) after.
        if t > as_of + CLOSE && (t - as_of).rem_euclid(DAY) >= r.step() {
            continue;
        }
        let _ = write!(
            s,
            "{}[{t},{},{},{}]",
            if first { "" } else { "," },
            num(f.mean[i]),
            num(f.lower[i]),
            num(f.upper[i])
        );
        first = false;
    }
    s.push_str("],\"thresholds\":[");
    for (i, b) in r.breaches.iter().enumerate() {
        let name = serde_json::to_string(&b.name).unwrap_or_default();
        let _ = write!(s, "{}[{name},{}]", if i > 0 { "," } else { "" }, num(b.threshold));
    }
    let _ = write!(s, "],\"as_of\":{as_of},\"level\":{}}}", num(r.settings.level));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_digits_and_days_thin_before_the_close_window() {
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(1234567.0), "1.235e6");
        assert_eq!(num(f64::NAN), "null");
        assert_eq!(num(0.5), "0.5");
        let pts: Vec<(i64, f64)> = (0..72).map(|h| (h * 3600, h as f64)).collect();
        let t = thinned(pts.into_iter(), 48 * 3600);
        assert_eq!(t.len(), 2 + 24, "two daily means, then every hour");
        assert_eq!(t[0], (0, 11.5));
        assert_eq!(t[1], (DAY, 35.5));
        assert_eq!(t[2], (48 * 3600, 48.0));
    }

    #[test]
    fn the_data_parses_and_keeps_every_step_near_the_as_of() {
        let run = crate::report::testdata::run();
        let r = &run.resources[0];
        let v: serde_json::Value = serde_json::from_str(&data(r, run.as_of).unwrap()).unwrap();
        assert!(!v["history"].as_array().unwrap().is_empty());
        assert_eq!(v["forecast"].as_array().unwrap().len(), r.detail.as_ref().unwrap().forecast.mean.len());
        assert_eq!(v["thresholds"].as_array().unwrap().len(), r.breaches.len());
    }
}
