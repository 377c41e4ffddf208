//! What-if transforms applied to a forecast: faster or slower growth from a date, a load
//! step (absolute or a percentage of the level then), a capacity change (a ratio divides by
//! the factor), peaks scaled. The interval moves with the mean (a capacity change scales it),
//! so a scenario has its own band and, through breach analysis, its own probability.

use crate::model::Forecast;
use crate::model::decompose::moving_average;
use crate::time::{TimeError, parse_date};

/// An amount added by a load step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Absolute(f64),
    /// A fraction of the level at the step's date (`10%` is 0.1).
    Percent(f64),
}

/// One named scenario; every part is optional and they combine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    pub name: String,
    /// Trend slope multiplied by this from `growth_from` (default: the forecast origin).
    pub growth: Option<f64>,
    pub growth_from: Option<i64>,
    pub add: Option<(i64, Amount)>,
    /// Capacity multiplied by the factor from the date.
    pub capacity: Option<(i64, f64)>,
    /// Deviations from the level (daily and weekly peaks) multiplied by this.
    pub seasonal_amplitude: Option<f64>,
    /// Threshold overrides (name, value).
    pub thresholds: Vec<(String, f64)>,
    /// Resource name patterns (`*` wildcard) the scenario applies to; empty: all.
    pub resources: Vec<String>,
}

impl Scenario {
    pub fn applies_to(&self, resource: &str) -> bool {
        self.resources.is_empty() || self.resources.iter().any(|p| wildcard(p, resource))
    }

    /// Transforms a forecast. `origin` is the last observed timestamp (step 0 of the forecast
    /// is `origin + step`); `season` is the longest seasonal period in steps (for the level);
    /// `range` is what values may be (for a ratio [0, 1]): the trend is read only where the
    /// forecast is not held at a bound.
    pub fn apply(&self, f: &Forecast, origin: i64, step: i64, season: usize, range: (f64, f64)) -> Forecast {
        let n = f.mean.len();
        let at = |i: usize| origin + (i as i64 + 1) * step;
        let mut out = f.clone();
        let shift = |out: &mut Forecast, i: usize, d: f64| {
            out.mean[i] += d;
            out.lower[i] += d;
            out.upper[i] += d;
        };
        if let Some(a) = self.seasonal_amplitude {
            let level = moving_average(&f.mean, season.max(2).min(n.max(1)));
            for (i, l) in level.iter().enumerate() {
                shift(&mut out, i, (a - 1.0) * (f.mean[i] - l));
            }
        }
        if let Some(g) = self.growth {
            let slope = slope(&f.mean, range);
            let from = self.growth_from.unwrap_or(origin);
            for i in 0..n {
                let t = at(i);
                if t > from {
                    shift(&mut out, i, (g - 1.0) * slope * ((t - from) as f64 / step as f64));
                }
            }
        }
        if let Some((date, amount)) = self.add {
            let level = moving_average(&f.mean, season.max(2).min(n.max(1)));
            let k = (0..n).find(|&i| at(i) >= date);
            if let Some(k) = k {
                let d = match amount {
                    Amount::Absolute(v) => v,
                    Amount::Percent(p) => p * level[k],
                };
                for i in k..n {
                    shift(&mut out, i, d);
                }
            }
        }
        if let Some((date, factor)) = self.capacity {
            for i in (0..n).filter(|&i| at(i) >= date) {
                out.mean[i] /= factor;
                out.lower[i] /= factor;
                out.upper[i] /= factor;
            }
        }
        out
    }
}

/// The trend of a forecast path per step: least squares over the steps strictly inside
/// `range` (a path held at 1.0 says nothing of its slope); whole seasons average out.
fn slope(mean: &[f64], range: (f64, f64)) -> f64 {
    let pts: Vec<(f64, f64)> = mean
        .iter()
        .enumerate()
        .filter(|(_, y)| **y > range.0 && **y < range.1)
        .map(|(i, y)| ((i + 1) as f64, *y))
        .collect();
    let n = pts.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let tbar = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let ybar = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, y) in &pts {
        sxy += (t - tbar) * (y - ybar);
        sxx += (t - tbar) * (t - tbar);
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A `--add` or `--capacity` value that cannot be read. Each says all of itself: clap shows
/// the text after naming the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    #[error("`{text}`: expected {expected}")]
    Shape { text: String, expected: &'static str },
    #[error("`{text}`: {problem}")]
    Date { text: String, problem: TimeError },
    #[error("`{whole}`: `{part}` is not a number")]
    Number { whole: String, part: String },
    #[error("capacity factor in `{0}` must be positive")]
    Factor(String),
}

/// `DATE:AMOUNT` (`2027-03-01:0.1`, `2027-03-01:10%`, RFC 3339 dates too).
pub fn parse_add(text: &str) -> Result<(i64, Amount), FlagError> {
    let (date, amount) = split_date(text, "DATE:AMOUNT, e.g. 2027-03-01:0.1 or 2027-03-01:10%")?;
    let amount = match amount.strip_suffix('%') {
        Some(p) => Amount::Percent(number(p, text)? / 100.0),
        None => Amount::Absolute(number(amount, text)?),
    };
    Ok((date, amount))
}

/// `DATE:FACTOR` (`2027-01-15:2`).
pub fn parse_capacity(text: &str) -> Result<(i64, f64), FlagError> {
    let (date, factor) = split_date(text, "DATE:FACTOR, e.g. 2027-01-15:2")?;
    let f = number(factor, text)?;
    if f <= 0.0 {
        return Err(FlagError::Factor(text.to_string()));
    }
    Ok((date, f))
}

fn split_date<'a>(text: &'a str, expected: &'static str) -> Result<(i64, &'a str), FlagError> {
    let (date, value) = text.rsplit_once(':').ok_or_else(|| FlagError::Shape { text: text.into(), expected })?;
    let date = parse_date(date).map_err(|problem| FlagError::Date { text: text.into(), problem })?;
    Ok((date, value.trim()))
}

fn number(s: &str, whole: &str) -> Result<f64, FlagError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| FlagError::Number { whole: whole.into(), part: s.into() })
}

/// The capacity factor that keeps the upper bound at or below `hard` through the horizon
/// (1 when it already does): "needs ×1.35".
pub fn capacity_needed(f: &Forecast, hard: f64) -> f64 {
    let peak = f.upper.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hard > 0.0 && peak > hard { peak / hard } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breach::analyse;
    use crate::model::ErrorPaths;

    const ALL: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

    /// An exact ramp: 0.5 at the origin, +0.001 per step, band ±0.02.
    fn ramp(n: usize) -> Forecast {
        let mean: Vec<f64> = (1..=n).map(|h| 0.5 + 0.001 * h as f64).collect();
        Forecast {
            lower: mean.iter().map(|m| m - 0.02).collect(),
            upper: mean.iter().map(|m| m + 0.02).collect(),
            mean,
        }
    }

    fn expected(f: &Forecast, t: f64) -> usize {
        analyse("hard", t, f, 0.8, &[0.5], &ErrorPaths::default()).expected_step.unwrap()
    }

    #[test]
    fn growth_x2_halves_the_time_to_breach() {
        let f = ramp(1000);
        let base = expected(&f, 0.9); // step 399 (0-based): 0.5 + 0.001 * 400
        let s = Scenario { growth: Some(2.0), ..Default::default() }.apply(&f, 0, 3600, 24, ALL);
        assert_eq!(base + 1, 400);
        assert_eq!(expected(&s, 0.9) + 1, 200);
        // A ratio held at 1.0 late in the horizon still gives the ramp's slope.
        let mut held = f.clone();
        held.mean.iter_mut().for_each(|m| *m = m.min(1.0));
        let s = Scenario { growth: Some(2.0), ..Default::default() }.apply(&held, 0, 3600, 24, (0.0, 1.0));
        assert_eq!(expected(&s, 0.9) + 1, 200);
    }

    #[test]
    fn capacity_x2_moves_the_breach_to_where_the_doubled_ramp_crosses() {
        let f = ramp(2000);
        // Capacity doubles at step 100 (t = 101 h): the ratio halves, 0.5 + 0.001 h >= 1.8.
        let s = Scenario { capacity: Some((101 * 3600, 2.0)), ..Default::default() }.apply(&f, 0, 3600, 24, ALL);
        assert_eq!(expected(&s, 0.9) + 1, 1300);
        assert!((s.upper[150] - (f.upper[150] / 2.0)).abs() < 1e-12);
    }

    #[test]
    fn a_step_moves_the_breach_by_the_computed_amount() {
        let f = ramp(1000);
        // +0.1 from step 49 (t = 50 h): crossing 0.9 when 0.6 + 0.001 h >= 0.9, h = 300.
        let s = Scenario { add: Some((50 * 3600, Amount::Absolute(0.1))), ..Default::default() }
            .apply(&f, 0, 3600, 24, ALL);
        assert_eq!(expected(&s, 0.9) + 1, 300);
        // +10 % of the level then (0.55 at h = 50): +0.055, crossing at h = 345.
        let s =
            Scenario { add: Some((50 * 3600, Amount::Percent(0.1))), ..Default::default() }.apply(&f, 0, 3600, 2, ALL);
        assert_eq!(expected(&s, 0.9) + 1, 345);
    }

    #[test]
    fn sizing_makes_the_upper_bound_touch_the_threshold() {
        let f = ramp(1000); // upper peaks at 1.52
        let k = capacity_needed(&f, 0.9);
        assert!((k - 1.52 / 0.9).abs() < 1e-12);
        let sized = Scenario { capacity: Some((0, k)), ..Default::default() }.apply(&f, 0, 3600, 24, ALL);
        let peak = sized.upper.iter().copied().fold(f64::MIN, f64::max);
        assert!((peak - 0.9).abs() < 1e-12);
        assert_eq!(capacity_needed(&ramp(10), 0.9), 1.0);
    }

    #[test]
    fn amplitude_parsing_and_selection() {
        let f = Forecast {
            mean: (0..48).map(|i| if i % 24 < 12 { 0.6 } else { 0.4 }).collect(),
            lower: vec![0.0; 48],
            upper: vec![1.0; 48],
        };
        let s = Scenario { seasonal_amplitude: Some(1.5), ..Default::default() }.apply(&f, 0, 3600, 24, ALL);
        assert!((s.mean[40] - 0.35).abs() < 1e-9, "{}", s.mean[40]);
        assert!((s.mean[30] - 0.65).abs() < 1e-9, "{}", s.mean[30]);
        assert_eq!(parse_add("2027-03-01:10%").unwrap(), (1803859200, Amount::Percent(0.1)));
        assert_eq!(parse_add("2027-03-01T00:00:00Z:0.25").unwrap(), (1803859200, Amount::Absolute(0.25)));
        assert!(parse_add("soon:1").is_err());
        assert_eq!(parse_capacity("2027-01-15:2").unwrap().1, 2.0);
        assert!(parse_capacity("2027-01-15:-2").is_err());
        let sc = Scenario { resources: vec!["patroni/*".into()], ..Default::default() };
        assert!(sc.applies_to("patroni/disk") && !sc.applies_to("web/cpu"));
        assert!(Scenario::default().applies_to("anything"));
    }
}
