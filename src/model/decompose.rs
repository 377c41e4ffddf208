//! Seasonal decomposition with several periods (MSTL-like, made fast): each period's
//! profile is estimated in turn from the series detrended by a centred moving average, with
//! recent cycles weighted more, and the pass is repeated once so the periods do not absorb
//! each other. Also detects which candidate periods carry real seasonality.

use crate::series::fill_gaps;
use crate::stats::middle;

/// Recent cycles count more: a cycle's weight is this to the power of its age in cycles.
const CYCLE_DECAY: f64 = 0.85;
/// Deviations from the trend beyond this many robust standard deviations are clipped before
/// they enter a profile.
const OUTLIER_SIGMAS: f64 = 5.0;
/// A period is kept when its seasonal strength (1 - Var(remainder) / Var(season + remainder))
/// reaches this.
const MIN_STRENGTH: f64 = 0.15;

/// Seasonal profiles (one value per phase, summing to zero) and the series without them.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    /// (period, profile indexed by `t % period`).
    pub seasonals: Vec<(usize, Vec<f64>)>,
    pub deseasonalised: Vec<f64>,
}

impl Decomposition {
    /// The summed seasonal component at step `t` (any t, past or future).
    pub fn seasonal(&self, t: usize) -> f64 {
        self.seasonals.iter().map(|(p, prof)| prof[t % p]).sum()
    }
}

/// Decomposes gap-filled `values` with the given periods (ascending; those with fewer than
/// two full cycles are skipped).
pub fn decompose(values: &[f64], periods: &[usize]) -> Decomposition {
    let n = values.len();
    let periods: Vec<usize> = periods.iter().copied().filter(|&p| p >= 2 && n >= 2 * p).collect();
    let mut seasonals: Vec<(usize, Vec<f64>)> = periods.iter().map(|&p| (p, vec![0.0; p])).collect();
    for _ in 0..2 {
        for k in 0..seasonals.len() {
            let p = seasonals[k].0;
            let x: Vec<f64> = (0..n)
                .map(|t| {
                    values[t]
                        - seasonals.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, (q, s))| s[t % q]).sum::<f64>()
                })
                .collect();
            let trend = moving_average(&x, p);
            seasonals[k].1 = profile(&x, &trend, p);
        }
    }
    let deseasonalised = (0..n).map(|t| values[t] - seasonals.iter().map(|(p, s)| s[t % p]).sum::<f64>()).collect();
    Decomposition { seasonals, deseasonalised }
}

/// Which of the candidate periods (ascending) show real seasonality in `values` (NaN gaps
/// allowed). Each is tested on what the shorter kept periods leave: its per-phase means over
/// every cycle are compared with the noise around them, and the period is kept when the
/// seasonal strength, corrected for the noise the phase means would show anyway, reaches
/// [`MIN_STRENGTH`].
pub fn detect_periods(values: &[f64], candidates: &[usize]) -> Vec<usize> {
    let shortest = candidates.first().copied().unwrap_or(1);
    let y = fill_gaps(values, shortest);
    let mut kept: Vec<usize> = vec![];
    for &p in candidates {
        if y.len() < 3 * p {
            continue;
        }
        let x = decompose(&y, &kept).deseasonalised;
        let trend = moving_average(&x, p);
        let d: Vec<f64> = x.iter().zip(&trend).map(|(a, b)| a - b).collect();
        let mut sum = vec![0.0; p];
        let mut cnt = vec![0.0; p];
        for (t, v) in d.iter().enumerate() {
            sum[t % p] += v;
            cnt[t % p] += 1.0;
        }
        let prof: Vec<f64> = sum.iter().zip(&cnt).map(|(s, c)| s / c).collect();
        let resid: Vec<f64> = d.iter().enumerate().map(|(t, v)| v - prof[t % p]).collect();
        let cycles = cnt.iter().sum::<f64>() / p as f64;
        let r = variance(&resid);
        let s_raw = variance(&prof);
        let s = (s_raw - r / cycles).max(0.0);
        // A profile lost in rounding error is no season.
        let material = s > 1e-9 * variance(&y);
        if material && s / (s + r) >= MIN_STRENGTH {
            kept.push(p);
        }
    }
    kept
}

/// Centred moving average over one period (2×p for even p), edges held at the nearest value.
pub fn moving_average(x: &[f64], p: usize) -> Vec<f64> {
    let n = x.len();
    if n < p + 1 || p < 2 {
        return x.to_vec();
    }
    let mut cs = vec![0.0; n + 1];
    for i in 0..n {
        cs[i + 1] = cs[i] + x[i];
    }
    let mut out = vec![f64::NAN; n];
    let half = p / 2;
    for (t, o) in out.iter_mut().enumerate().take(n - half).skip(half) {
        *o = if p % 2 == 1 {
            (cs[t + half + 1] - cs[t - half]) / p as f64
        } else {
            // 2×p MA: the two end points count half.
            (cs[t + half] - cs[t + 1 - half] + 0.5 * (x[t - half] + x[t + half])) / p as f64
        };
    }
    let first = out.iter().position(|v| v.is_finite()).unwrap_or(0);
    let last = out.iter().rposition(|v| v.is_finite()).unwrap_or(n - 1);
    for t in 0..first {
        out[t] = out[first];
    }
    for t in last + 1..n {
        out[t] = out[last];
    }
    out
}

/// Weighted per-phase mean of `x - trend`, recent cycles first, centred to sum to zero.
fn profile(x: &[f64], trend: &[f64], p: usize) -> Vec<f64> {
    let n = x.len();
    // Within each phase, deviations beyond OUTLIER_SIGMAS robust sd of that phase's
    // deviations (an incident's spike) are clipped, so one spike cannot bend its phase and,
    // through the centring, every other; a spike that recurs every cycle is the season.
    // Weight by age in cycles; cycles weighing under 1e-4 are left out.
    let weights: Vec<f64> =
        std::iter::successors(Some(1.0), |w| Some(w * CYCLE_DECAY)).take_while(|w| *w >= 1e-4).collect();
    let first = n.saturating_sub(weights.len() * p);
    // One buffer for every phase's deviations (a filtered collect would grow by reallocation).
    let mut dev: Vec<f64> = Vec::with_capacity(n.div_ceil(p));
    let bounds: Vec<(f64, f64)> = (0..p)
        .map(|ph| {
            dev.clear();
            dev.extend((ph..n).step_by(p).filter(|t| *t >= first).map(|t| x[t] - trend[t]).filter(|d| d.is_finite()));
            let mid = middle(&mut dev);
            dev.iter_mut().for_each(|d| *d = (*d - mid).abs());
            let reach = OUTLIER_SIGMAS * 1.4826 * middle(&mut dev);
            if mid.is_finite() && reach.is_finite() {
                (mid - reach, mid + reach)
            } else {
                (f64::NEG_INFINITY, f64::INFINITY)
            }
        })
        .collect();
    let mut sum = vec![0.0; p];
    let mut w = vec![0.0; p];
    for t in first..n {
        let wt = weights[(n - 1 - t) / p];
        let (lo, hi) = bounds[t % p];
        sum[t % p] += wt * (x[t] - trend[t]).clamp(lo, hi);
        w[t % p] += wt;
    }
    let mut prof: Vec<f64> = sum.iter().zip(&w).map(|(s, w)| if *w > 0.0 { s / w } else { 0.0 }).collect();
    let centre = prof.iter().sum::<f64>() / p as f64;
    prof.iter_mut().for_each(|v| *v -= centre);
    prof
}

fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stats::test_noise as noise;

    #[test]
    fn a_pure_sine_recovers_its_period() {
        let y: Vec<f64> =
            (0..24 * 60).map(|i| (i as f64 * std::f64::consts::TAU / 24.0).sin() + 0.1 * noise(i)).collect();
        assert_eq!(detect_periods(&y, &[24, 168]), vec![24]);
        let weekly: Vec<f64> =
            (0..24 * 70).map(|i| (i as f64 * std::f64::consts::TAU / 168.0).sin() + 0.1 * noise(i)).collect();
        assert_eq!(detect_periods(&weekly, &[24, 168]), vec![168]);
        let flat: Vec<f64> = (0..24 * 60).map(noise).collect();
        assert!(detect_periods(&flat, &[24, 168]).is_empty());
        let clean: Vec<f64> = (0..24 * 60).map(|i| (i as f64 * std::f64::consts::TAU / 24.0).sin()).collect();
        assert_eq!(detect_periods(&clean, &[24, 168]), vec![24]);
    }

    #[test]
    fn two_seasons_are_separated() {
        let d: Vec<f64> = (0..24 * 7).map(|i| ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()).collect();
        let w: Vec<f64> = (0..24 * 7).map(|i| if i / 24 >= 5 { -1.0 } else { 0.4 }).collect();
        let y: Vec<f64> = (0..24 * 7 * 8).map(|i| 2.0 + 0.001 * i as f64 + d[i % 24] + w[i % 168]).collect();
        let dec = decompose(&y, &[24, 168]);
        // The deseasonalised series is close to the trend.
        for (t, v) in dec.deseasonalised.iter().enumerate().skip(168).take(24 * 7 * 6) {
            assert!((v - (2.0 + 0.001 * t as f64)).abs() < 0.08, "t={t}: {v}");
        }
    }

    #[test]
    fn one_spike_does_not_bend_the_profile_but_a_daily_batch_is_the_season() {
        // A daily cycle with noise, and one incident a hundred times the cycle's size.
        let cycle = |i: usize| ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let mut y: Vec<f64> = (0..24 * 20).map(|i| 5.0 + cycle(i) + 0.05 * noise(i)).collect();
        y[24 * 18 + 7] += 100.0;
        let dec = decompose(&y, &[24]);
        let prof = &dec.seasonals[0].1;
        for (ph, v) in prof.iter().enumerate() {
            assert!((v - cycle(ph)).abs() < 0.15, "phase {ph}: {v} vs {}", cycle(ph));
        }
        // A batch job at 02:00 every day is not an outlier: the profile keeps it.
        let batch: Vec<f64> = (0..24 * 20).map(|i| if i % 24 == 2 { 9.0 } else { 1.0 } + 0.01 * noise(i)).collect();
        let prof = &decompose(&batch, &[24]).seasonals[0].1;
        assert!(prof[2] > 7.0 && prof[5].abs() < 0.5, "{prof:?}");
    }
}
