//! Threshold crossings of a forecast: when the mean path reaches a threshold (expected), when
//! the upper bound does (earliest), the chance of crossing within the horizon, and the days of
//! headroom left from the as-of date.

use serde::Serialize;

use crate::model::Forecast;
use crate::stats::{central_z, normal_cdf};

/// One threshold's analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    /// Threshold name (`soft`, `hard`, or the value for ad-hoc thresholds).
    pub name: String,
    pub threshold: f64,
    /// Index into the forecast of the first step whose mean is `>=` the threshold.
    pub expected_step: Option<usize>,
    /// Index of the first step whose upper bound is `>=` the threshold.
    pub earliest_step: Option<usize>,
    /// Estimated probability that the series reaches the threshold within the horizon.
    pub probability: f64,
    /// The last observed value is already at or above the threshold.
    pub already_breached: bool,
}

impl Breach {
    /// Unix seconds of a forecast step, given the first forecast timestamp and the step.
    pub fn at(step_index: Option<usize>, first: i64, step: i64) -> Option<i64> {
        step_index.map(|i| first + i as i64 * step)
    }
}

/// Analyses one threshold. `last_observed` is the last real value before the forecast.
///
/// Probability: each step's forecast is read as normal with the spread implied by the upper
/// bound (`(upper - mean) / z`); the chance of crossing within the horizon is taken as the
/// largest per-step chance. That is a lower bound for the path probability; calibrating it
/// against backtests is future work (see the forecasting issue).
pub fn analyse(name: &str, threshold: f64, forecast: &Forecast, level: f64, last_observed: f64) -> Breach {
    let already = last_observed >= threshold;
    let first_at = |v: &[f64]| v.iter().position(|x| *x >= threshold);
    let (expected_step, earliest_step) =
        if already { (Some(0), Some(0)) } else { (first_at(&forecast.mean), first_at(&forecast.upper)) };
    let z = central_z(level);
    let probability = if already {
        1.0
    } else {
        forecast
            .mean
            .iter()
            .zip(&forecast.upper)
            .map(|(m, u)| {
                let sigma = (u - m) / z;
                if sigma > 0.0 {
                    1.0 - normal_cdf((threshold - m) / sigma)
                } else if *m >= threshold {
                    1.0
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max)
    };
    Breach {
        name: name.to_string(),
        threshold,
        expected_step,
        earliest_step,
        probability: probability.clamp(0.0, 1.0),
        already_breached: already,
    }
}

/// Days from `as_of` to `at` (fractional; never negative).
pub fn days_between(as_of: i64, at: i64) -> f64 {
    ((at - as_of) as f64 / 86_400.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Forecast {
        let mean: Vec<f64> = (0..10).map(|i| 0.5 + 0.05 * i as f64).collect();
        Forecast { lower: mean.iter().map(|m| m - 0.1).collect(), upper: mean.iter().map(|m| m + 0.1).collect(), mean }
    }

    #[test]
    fn expected_and_earliest_use_ge() {
        let b = analyse("hard", 0.7, &ramp(), 0.8, 0.5);
        assert_eq!(b.earliest_step, Some(2), "upper 0.5+0.1+0.1 = 0.7 at step 2");
        assert_eq!(b.expected_step, Some(4));
        assert!(b.probability > 0.99);
        assert!(!b.already_breached);
    }

    #[test]
    fn already_breached_is_the_first_step() {
        let b = analyse("soft", 0.4, &ramp(), 0.8, 0.45);
        assert!(b.already_breached);
        assert_eq!((b.expected_step, b.earliest_step, b.probability), (Some(0), Some(0), 1.0));
    }

    #[test]
    fn no_crossing_is_none_with_small_probability() {
        let b = analyse("hard", 2.0, &ramp(), 0.8, 0.5);
        assert_eq!((b.expected_step, b.earliest_step), (None, None));
        assert!(b.probability < 0.01);
        // Upper reaches exactly the 90th percentile: probability about 0.1.
        let b = analyse("x", 1.05, &ramp(), 0.8, 0.5);
        assert_eq!(b.earliest_step, Some(9));
        assert!((b.probability - 0.1).abs() < 0.01, "{}", b.probability);
        assert_eq!(days_between(0, 86_400 * 3), 3.0);
    }
}
