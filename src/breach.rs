//! Threshold crossings of a forecast: when the mean path reaches a threshold (expected), when
//! the upper bound does (earliest), the chance of crossing within the horizon, and the days of
//! headroom left from the as-of date.

use serde::Serialize;

use crate::model::{ErrorPaths, Forecast};
use crate::stats::{SplitMix64, central_z, normal_cdf};

/// One threshold's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

/// Paths drawn per threshold when there is no backtest to resample.
const PATHS: usize = 1000;
/// Shifts per backtest error path when resampling (more only costs time).
const SHIFTS: usize = 200;
/// Error correlation from step to step assumed when there is no backtest.
const FALLBACK_CORRELATION: f64 = 0.9;
/// Weight of the resampled backtest paths against the exchangeability prior (Brier on the
/// public, long and earlier-cut sets: 0.197 / 0.340 / 0.180 / 0.231 at 0.5, 0.192 / 0.308 /
/// 0.180 / 0.214 at 0.3; 0 is worse on the public cuts).
const SHARE_WEIGHT: f64 = 0.3;
/// The same weight where the share is read off a band that follows the season: a yearly
/// cycle's values are not exchangeable, and last year's course is in the band (equal weights:
/// Brier on `bench-long2` -0.018, pooled over the four sets -0.0035, both beyond noise;
/// bench/ACCURACY.md, session 18).
const BAND_SHARE_WEIGHT: f64 = 0.5;

/// Analyses one threshold. `history` is the series before the forecast (NaN for gaps);
/// `errors` are the chosen model's backtest error paths.
///
/// Probability: the share of plausible future paths that reach the threshold somewhere in the
/// horizon. Paths are the mean forecast plus a backtest error path, each path circularly
/// shifted to every starting step (so a path keeps its spikes, its persistent offset and its
/// step-to-step correlation); beyond the backtest horizon errors grow with the square root
/// of the lead time. Where the band follows the season
/// ([`ErrorPaths::Band`]), the band itself is read instead, week by week. Without a
/// backtest, Gaussian AR(1) paths are drawn around the interval. Either way the share is
/// pooled with the exchangeability prior ([`SHARE_WEIGHT`], [`BAND_SHARE_WEIGHT`] for the band).
pub fn analyse(
    name: &str,
    threshold: f64,
    forecast: &Forecast,
    level: f64,
    history: &[f64],
    errors: &ErrorPaths,
) -> Breach {
    let last_observed = history.iter().rev().find(|v| v.is_finite()).copied().unwrap_or(f64::NAN);
    let already = last_observed >= threshold;
    let first_at = |v: &[f64]| v.iter().position(|x| *x >= threshold);
    let (expected_step, earliest_step) =
        if already { (Some(0), Some(0)) } else { (first_at(&forecast.mean), first_at(&forecast.upper)) };
    let probability = if already {
        1.0
    } else {
        // A few origins from one model, neighbours in time, are one view of the future: where
        // exchangeability says anything (a stationary series' chance of reaching a threshold
        // its history reaches), it weighs more. Backtested paths are overconfident both ways:
        // counting the prior as one more origin, or weighing both equally, scored worse on
        // every benchmark set and on the same series cut one or two horizons earlier.
        let prior = exchangeable(threshold, history, forecast.mean.len());
        // Where the band follows the season, the band says more than a few origins' paths
        // laid anywhere in the horizon (bench-long2: ranking 0.75 -> 0.96; bench/ACCURACY.md).
        let (share, weight) = match errors {
            ErrorPaths::Band { block } => (Some(band_share(threshold, forecast, level, *block)), BAND_SHARE_WEIGHT),
            ErrorPaths::Paths(paths) => (resampled_share(threshold, forecast, paths), SHARE_WEIGHT),
        };
        let p = share
            .map(|share| prior.map_or(share, |q| weight * share + (1.0 - weight) * q))
            .unwrap_or_else(|| gaussian_probability(threshold, forecast, level, FALLBACK_CORRELATION));
        // Agree with the band: a crossing upper bound (the (1+level)/2 quantile) means at least
        // (1-level)/2, a crossing mean at least a half.
        let floor = match (expected_step, earliest_step) {
            (Some(_), _) => 0.5,
            (None, Some(_)) => (1.0 - level) / 2.0,
            _ => 0.0,
        };
        p.max(floor)
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

/// The share of resampled paths (mean plus a circularly shifted backtest error path) that
/// reach the threshold; None without usable error paths.
fn resampled_share(threshold: f64, f: &Forecast, paths: &[Vec<f64>]) -> Option<f64> {
    let hb = paths.first()?.len();
    let usable: Vec<&Vec<f64>> =
        paths.iter().filter(|p| p.len() == hb && p.iter().filter(|e| e.is_finite()).count() * 2 >= hb).collect();
    if hb < 2 || usable.is_empty() {
        return None;
    }
    // Raw backtest errors: widening them by the interval's factor made the odds worse
    // calibrated on the benchmark (Brier 0.289 against 0.232).
    let max_err = usable.iter().flat_map(|p| p.iter()).filter(|e| e.is_finite()).fold(0.0f64, |a, e| a.max(*e));
    let growth = |i: usize| if i < hb { 1.0 } else { ((i + 1) as f64 / hb as f64).sqrt() };
    // Only steps some path could lift to the threshold matter.
    let steps: Vec<usize> =
        (0..f.mean.len()).filter(|&i| f.mean[i] + max_err.max(0.0) * growth(i) >= threshold).collect();
    if steps.is_empty() {
        return Some(0.0);
    }
    let stride = hb.div_ceil(SHIFTS).max(1);
    let (mut crossed, mut total) = (0usize, 0usize);
    for p in &usable {
        for shift in (0..hb).step_by(stride) {
            total += 1;
            let hit = steps.iter().any(|&i| {
                let e = p[(i + shift) % hb];
                e.is_finite() && f.mean[i] + e * growth(i) >= threshold
            });
            crossed += usize::from(hit);
        }
    }
    Some(crossed as f64 / total as f64)
}

/// The chance of a crossing read off the band: at each step a normal through the mean and
/// the upper bound; within a block of `block` steps errors move together (the block crosses
/// if its likeliest step does), blocks are independent.
fn band_share(threshold: f64, f: &Forecast, level: f64, block: usize) -> f64 {
    let z = central_z(level);
    let crosses = |i: usize| {
        let spread = (f.upper[i] - f.mean[i]) / z;
        if f.mean[i] >= threshold {
            1.0
        } else if spread > 0.0 {
            1.0 - normal_cdf((threshold - f.mean[i]) / spread)
        } else {
            0.0
        }
    };
    let steps: Vec<usize> = (0..f.mean.len()).collect();
    let none: f64 =
        steps.chunks(block.max(1)).map(|c| 1.0 - c.iter().map(|&i| crosses(i)).fold(0.0, f64::max)).product();
    1.0 - none
}

/// The chance that a stationary series reaches `threshold` within `horizon` more steps: with
/// r the share of history at or above it (out of n+1: the next value could be the new
/// maximum), 1 - (1 - r)^horizon. None for a threshold above all history: there
/// exchangeability says nothing.
fn exchangeable(threshold: f64, history: &[f64], horizon: usize) -> Option<f64> {
    let seen: Vec<&f64> = history.iter().filter(|v| v.is_finite()).collect();
    let n = seen.len() as f64;
    let above = seen.iter().filter(|v| ***v >= threshold).count() as f64;
    if above == 0.0 {
        return None;
    }
    let r = (above / (n + 1.0)).min(1.0);
    Some(1.0 - (1.0 - r).powf(horizon as f64))
}

/// Gaussian AR(1) paths around the interval (upper and lower sides read separately).
fn gaussian_probability(threshold: f64, f: &Forecast, level: f64, correlation: f64) -> f64 {
    let z = central_z(level);
    let spread = |i: usize| ((f.upper[i] - f.mean[i]) / z, (f.mean[i] - f.lower[i]) / z);
    // Steps where reaching the threshold is at all plausible (within 5 upper spreads).
    let steps: Vec<usize> = (0..f.mean.len())
        .filter(|&i| {
            let (up, _) = spread(i);
            f.mean[i] >= threshold || (up > 0.0 && f.mean[i] + 5.0 * up >= threshold)
        })
        .collect();
    if steps.is_empty() {
        return 0.0;
    }
    // The single most likely step is a floor for the path probability.
    let marginal = steps
        .iter()
        .map(|&i| {
            let (up, _) = spread(i);
            if f.mean[i] >= threshold { 1.0 } else { 1.0 - normal_cdf((threshold - f.mean[i]) / up) }
        })
        .fold(0.0, f64::max);
    let rho = correlation.clamp(0.0, 0.999);
    let mut rng = SplitMix64(0x05EE_D0FB_EAC4);
    let mut crossed = 0usize;
    for _ in 0..PATHS {
        let mut e = rng.normal();
        let mut at = steps[0];
        for (k, &i) in steps.iter().enumerate() {
            if k > 0 {
                // The AR(1) jump over several skipped steps has correlation rho^k.
                let r = rho.powi((i - at) as i32);
                e = r * e + (1.0 - r * r).sqrt() * rng.normal();
                at = i;
            }
            let (up, down) = spread(i);
            let v = f.mean[i] + if e >= 0.0 { e * up } else { e * down };
            if v >= threshold {
                crossed += 1;
                break;
            }
        }
    }
    (crossed as f64 / PATHS as f64).max(marginal)
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
    fn a_seasonal_band_is_read_block_by_block() {
        // Mean 0 and an 80 % band of +-z: a unit normal at every step. Threshold 2 is crossed
        // at a step with chance 1 - Phi(2); two independent weeks of seven steps cross with
        // 1 - Phi(2)^2.
        let z = central_z(0.8);
        let f = Forecast { mean: vec![0.0; 14], lower: vec![-z; 14], upper: vec![z; 14] };
        let one = 1.0 - normal_cdf(2.0);
        assert!((band_share(2.0, &f, 0.8, 7) - (1.0 - (1.0 - one).powi(2))).abs() < 1e-12);
        assert!((band_share(2.0, &f, 0.8, 14) - one).abs() < 1e-12);
        // In `analyse`, above all history (no prior), the band's share is the probability.
        let seasonal = ErrorPaths::Band { block: 7 };
        let p = analyse("x", 2.0, &f, 0.8, &[0.0; 50], &seasonal).probability;
        assert!((p - (1.0 - (1.0 - one).powi(2))).abs() < 1e-12, "{p}");
        // Where the history reaches the threshold, the band's share and the exchangeable prior
        // weigh equally.
        let mut reached = vec![0.0; 50];
        reached[10] = 2.0;
        let prior = 1.0 - (1.0 - 1.0 / 51.0f64).powi(14);
        let p = analyse("x", 2.0, &f, 0.8, &reached, &seasonal).probability;
        assert!((p - (0.5 * (1.0 - (1.0 - one).powi(2)) + 0.5 * prior)).abs() < 1e-12, "{p}");
        // The paths alone would have said certain.
        let paths = ErrorPaths::Paths(vec![vec![5.0; 14]]);
        assert_eq!(analyse("x", 2.0, &f, 0.8, &[0.0; 50], &paths).probability, 1.0);
        // With the prior, the paths' share weighs 0.3 against it.
        let p = analyse("x", 2.0, &f, 0.8, &reached, &paths).probability;
        assert!((p - (0.3 + 0.7 * prior)).abs() < 1e-12, "{p}");
    }

    #[test]
    fn expected_and_earliest_use_ge() {
        let b = analyse("hard", 0.7, &ramp(), 0.8, &[0.5], &ErrorPaths::default());
        assert_eq!(b.earliest_step, Some(2), "upper 0.5+0.1+0.1 = 0.7 at step 2");
        assert_eq!(b.expected_step, Some(4));
        assert!(b.probability > 0.99);
        assert!(!b.already_breached);
    }

    #[test]
    fn already_breached_is_the_first_step() {
        let b = analyse("soft", 0.4, &ramp(), 0.8, &[0.45], &ErrorPaths::default());
        assert!(b.already_breached);
        assert_eq!((b.expected_step, b.earliest_step, b.probability), (Some(0), Some(0), 1.0));
    }

    #[test]
    fn no_crossing_is_none_with_small_probability() {
        let b = analyse("hard", 2.0, &ramp(), 0.8, &[0.5], &ErrorPaths::default());
        assert_eq!((b.expected_step, b.earliest_step), (None, None));
        assert!(b.probability < 0.01);
        // The upper bound touches the threshold only at the last step: about 0.1 when errors
        // persist, more when they are independent from step to step (more chances).
        let f = ramp();
        let persistent = gaussian_probability(1.05, &f, 0.8, 0.999);
        assert_eq!(analyse("x", 1.05, &f, 0.8, &[0.5], &ErrorPaths::default()).earliest_step, Some(9));
        assert!((0.08..0.13).contains(&persistent), "{persistent}");
        // Independent steps: 1 - (1 - 0.1)(1 - 0.027)(1 - 0.007)... = 0.13.
        let independent = gaussian_probability(1.05, &f, 0.8, 0.0);
        assert!((0.11..0.16).contains(&independent), "{independent}");
        assert!(independent > persistent);
    }

    #[test]
    fn resampled_paths_count_crossings() {
        // Mean 0.5 everywhere; one error path of which a quarter lifts the value to 0.9.
        let f = Forecast { mean: vec![0.5; 8], lower: vec![0.4; 8], upper: vec![0.6; 8] };
        let path = vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.4];
        let errors = ErrorPaths::Paths(vec![path]);
        let history = [0.5; 99];
        // Every circular shift of the path puts the 0.4 somewhere in an 8-step horizon; 0.9
        // is above all history, so exchangeability adds nothing.
        let p = analyse("x", 0.9, &f, 0.8, &history, &errors).probability;
        assert!((p - 1.0).abs() < 1e-9, "{p}");
        // A 1-step horizon sees the spike in 2 of 8 shifts.
        let one = Forecast { mean: vec![0.5], lower: vec![0.4], upper: vec![0.6] };
        let p = analyse("x", 0.9, &one, 0.8, &history, &errors).probability;
        assert!((p - 0.25).abs() < 1e-9, "{p}");
        // A threshold one value in history reached (1 of 100 values, counting the next):
        // the share and that prior are weighed, also where no path gets there.
        let mut history = history.to_vec();
        history[40] = 0.9;
        let p = analyse("x", 0.9, &one, 0.8, &history, &errors).probability;
        assert!((p - (0.3 * 0.25 + 0.7 * 0.01)).abs() < 1e-9, "{p}");
        let calm = ErrorPaths::Paths(vec![vec![0.0; 8]]);
        let p = analyse("x", 0.9, &one, 0.8, &history, &calm).probability;
        assert!((p - 0.007).abs() < 1e-9, "{p}");
        let history = [0.5; 99];
        let p = analyse("x", 0.5, &one, 0.8, &history[..98], &errors).probability;
        assert_eq!(p, 1.0, "already breached");
        // Out of reach of every path: 0.
        assert_eq!(analyse("x", 0.95, &one, 0.8, &history, &errors).probability, 0.0);
        assert_eq!(days_between(0, 86_400 * 3), 3.0);
    }
}
