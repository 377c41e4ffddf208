//! Linear trend plus a seasonal profile: what `predict_linear` users know, with the daily or
//! weekly shape added back. Fitted robustly (Huber weights, reweighted least squares) on the
//! whole window or a recent part of it.

use super::{Fitted, Forecast, Model, ModelError, check_len};
use crate::stats::central_z;

#[derive(Debug, Clone, Copy)]
pub struct LinearSeasonal {
    /// Seasonal period in steps; 1 means no seasonal profile.
    pub period: usize,
    /// Fit on only the last `window` steps (a recent trend); None uses everything.
    pub window: Option<usize>,
}

impl Model for LinearSeasonal {
    fn name(&self) -> String {
        let base = if self.period > 1 { format!("linear+season({})", self.period) } else { "linear".to_string() };
        match self.window {
            Some(w) => format!("{base}[last {w}]"),
            None => base,
        }
    }

    fn min_len(&self) -> usize {
        (2 * self.period).max(3)
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        let from = self.window.map_or(0, |w| values.len().saturating_sub(w));
        let y = &values[from..];
        check_len(self, y)?;
        let n = y.len();
        // Sized up front: a filtered collect would grow by reallocation.
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(n);
        pts.extend(y.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| (i as f64, *v)));
        let m = pts.len() as f64;
        // Trend plus one level per phase (seasonal dummies), solved exactly: the slope comes
        // from values and times centred within each phase, so the season cannot bias it.
        // Robust (Huber): points far from the fit (spikes, incidents) are down-weighted over a
        // few reweighted passes, so they do not tilt the trend.
        let p = self.period.max(1);
        let phases: Vec<usize> = pts.iter().map(|q| (q.0 as usize) % p).collect();
        let mut weight = vec![1.0; pts.len()];
        let mut fit = WeightedFit::solve(&pts, &phases, &weight, p);
        let mut abs: Vec<f64> = Vec::with_capacity(pts.len());
        for _ in 0..HUBER_PASSES {
            let resid: Vec<f64> = pts
                .iter()
                .zip(&phases)
                .map(|(&(t, v), &ph)| v - (fit.intercept + fit.slope * t + fit.profile[ph]))
                .collect();
            abs.clear();
            abs.extend(resid.iter().map(|r| r.abs()).filter(|r| r.is_finite()));
            if abs.is_empty() {
                break;
            }
            let scale = 1.4826 * crate::stats::middle(&mut abs);
            if scale <= 0.0 {
                break;
            }
            let k = HUBER_K * scale;
            for (w, r) in weight.iter_mut().zip(&resid) {
                *w = if r.abs() <= k { 1.0 } else { k / r.abs() };
            }
            fit = WeightedFit::solve(&pts, &phases, &weight, p);
        }
        let WeightedFit { intercept, slope, profile, tbar, sxx } = fit;
        let resid: Vec<f64> =
            pts.iter().zip(&phases).map(|(&(t, v), &ph)| v - (intercept + slope * t + profile[ph])).collect();
        let dof = (m - 2.0 - (p as f64 - 1.0)).max(1.0);
        let sigma = (resid.iter().map(|r| r * r).sum::<f64>() / dof).sqrt();
        Ok(Box::new(FittedLinear { intercept, slope, profile, sigma, n, m, tbar, sxx, from }))
    }
}

/// Huber's tuning constant (95 % efficiency under Gaussian noise) and the reweighting passes.
const HUBER_K: f64 = 1.345;
const HUBER_PASSES: usize = 3;

/// A weighted least-squares line plus one level per phase.
struct WeightedFit {
    intercept: f64,
    slope: f64,
    profile: Vec<f64>,
    tbar: f64,
    sxx: f64,
}

impl WeightedFit {
    /// Over points `(t, value)` with their phases (`t % p`) and weights.
    fn solve(pts: &[(f64, f64)], phases: &[usize], weight: &[f64], p: usize) -> WeightedFit {
        let mut t_sum = vec![0.0; p];
        let mut y_sum = vec![0.0; p];
        let mut w_sum = vec![0.0; p];
        for ((&(t, v), &w), &ph) in pts.iter().zip(weight).zip(phases) {
            t_sum[ph] += w * t;
            y_sum[ph] += w * v;
            w_sum[ph] += w;
        }
        let phase_mean = |sum: &[f64], ph: usize| if w_sum[ph] > 0.0 { sum[ph] / w_sum[ph] } else { 0.0 };
        let t_mean: Vec<f64> = (0..p).map(|ph| phase_mean(&t_sum, ph)).collect();
        let y_mean: Vec<f64> = (0..p).map(|ph| phase_mean(&y_sum, ph)).collect();
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for ((&(t, v), &w), &ph) in pts.iter().zip(weight).zip(phases) {
            let dt = t - t_mean[ph];
            sxx += w * dt * dt;
            sxy += w * dt * (v - y_mean[ph]);
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let total: f64 = weight.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let tbar = pts.iter().zip(weight).map(|(q, w)| w * q.0).sum::<f64>() / total;
        let ybar = pts.iter().zip(weight).map(|(q, w)| w * q.1).sum::<f64>() / total;
        let intercept = ybar - slope * tbar;
        // Phase levels relative to the overall line; a phase never observed gets none.
        let profile =
            (0..p).map(|ph| if w_sum[ph] > 0.0 { y_mean[ph] - slope * t_mean[ph] - intercept } else { 0.0 }).collect();
        WeightedFit { intercept, slope, profile, tbar, sxx }
    }
}

struct FittedLinear {
    intercept: f64,
    slope: f64,
    profile: Vec<f64>,
    sigma: f64,
    n: usize,
    m: f64,
    tbar: f64,
    sxx: f64,
    /// Offset of the fitted window in the series given to `fit`.
    from: usize,
}

impl Fitted for FittedLinear {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let z = central_z(level);
        let p = self.profile.len();
        let mut f = Forecast::with_capacity(horizon);
        for h in 0..horizon {
            let t = (self.n + h) as f64;
            let m = self.intercept + self.slope * t + self.profile[(self.n + h) % p];
            // OLS prediction interval: noise plus the uncertainty of the fitted line.
            let lever = if self.sxx > 0.0 { (t - self.tbar).powi(2) / self.sxx } else { 0.0 };
            let w = z * self.sigma * (1.0 + 1.0 / self.m + lever).sqrt();
            f.mean.push(m);
            f.lower.push(m - w);
            f.upper.push(m + w);
        }
        f
    }

    fn fitted(&self) -> Vec<f64> {
        let p = self.profile.len();
        let window = (0..self.n).map(|i| self.intercept + self.slope * i as f64 + self.profile[i % p]);
        std::iter::repeat_n(f64::NAN, self.from).chain(window).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_do_not_tilt_the_trend() {
        // A ramp of slope 0.001 with a daily cycle and small noise; a burst of large spikes
        // near the end (an incident) would pull a least-squares line up.
        let mut y: Vec<f64> = (0..24 * 30)
            .map(|i| {
                0.3 + 0.001 * i as f64
                    + 0.05 * (i as f64 / 24.0 * std::f64::consts::TAU).sin()
                    + 0.005 * crate::stats::test_noise(i)
            })
            .collect();
        for v in &mut y[24 * 27..24 * 28] {
            *v += 0.4;
        }
        let f = LinearSeasonal { period: 24, window: None }.fit(&y).unwrap().predict(48, 0.8);
        let slope = (f.mean[47] - f.mean[23]) / 24.0;
        assert!((slope - 0.001).abs() < 0.0001, "slope {slope}");
        let want = 0.3 + 0.001 * (24 * 30) as f64;
        assert!((f.mean[0] - want).abs() < 0.02, "{} vs {want}", f.mean[0]);
    }

    #[test]
    fn recovers_trend_and_season() {
        let y: Vec<f64> = (0..96).map(|i| 0.01 * i as f64 + if i % 4 == 0 { 1.0 } else { 0.0 }).collect();
        let f = LinearSeasonal { period: 4, window: None }.fit(&y).unwrap().predict(8, 0.8);
        for (h, m) in f.mean.iter().enumerate() {
            let i = 96 + h;
            let want = 0.01 * i as f64 + if i % 4 == 0 { 1.0 } else { 0.0 };
            assert!((m - want).abs() < 1e-9, "step {h}: {m} vs {want}");
        }
        let mut y2 = y.clone();
        y2[10] = f64::NAN;
        let f2 = LinearSeasonal { period: 4, window: Some(48) }.fit(&y2).unwrap().predict(8, 0.8);
        assert!((f2.mean[0] - f.mean[0]).abs() < 1e-9);
    }
}
