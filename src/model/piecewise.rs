//! Piecewise-linear trend plus Fourier seasonality, fitted as one ridge regression: Prophet's
//! model without its sampler. Changepoints sit evenly over the first 80 % of the history
//! (so the extrapolated last segment has seen at least a fifth of it); their slope changes
//! carry a ridge penalty, so the trend only bends where the data insist. The forecast
//! continues the last segment's slope and repeats the Fourier seasons.

use linfa_linalg::cholesky::SolveC;
use ndarray::{Array1, Array2};

use super::{Fitted, Forecast, Model, ModelError, check_len};
use crate::stats::central_z;

/// Changepoints at most, and steps per changepoint at least (two of the longest season, or
/// two days of hourly data without one).
const MAX_CHANGEPOINTS: usize = 20;
/// Share of the history the changepoints spread over (Prophet's default).
const CHANGEPOINT_RANGE: f64 = 0.8;
/// Fourier harmonics per seasonal period, at most (fewer for short periods: p/2 - 1).
const MAX_HARMONICS: usize = 8;
/// Prior scale of a slope change, in series standard deviations per history length: the
/// ridge penalty on a changepoint is residual variance / this squared.
const CHANGE_SCALE: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct PiecewiseFourier {
    /// Seasonal periods in steps (may be empty: trend only).
    pub periods: Vec<usize>,
}

impl Model for PiecewiseFourier {
    fn name(&self) -> String {
        let p: Vec<String> = self.periods.iter().map(|p| p.to_string()).collect();
        format!("piecewise({})", p.join(","))
    }

    fn min_len(&self) -> usize {
        (2 * self.periods.iter().copied().max().unwrap_or(1)).max(12)
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        check_len(self, values)?;
        let n = values.len();
        let rows: Vec<usize> = (0..n).filter(|&i| values[i].is_finite()).collect();
        let m = rows.len();
        let (mu, sd) = {
            let mean = rows.iter().map(|&i| values[i]).sum::<f64>() / m as f64;
            let var = rows.iter().map(|&i| (values[i] - mean).powi(2)).sum::<f64>() / m as f64;
            (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
        };
        let spacing = (2 * self.periods.iter().copied().max().unwrap_or(24)).max(2);
        let count = ((CHANGEPOINT_RANGE * n as f64) as usize / spacing).min(MAX_CHANGEPOINTS);
        let changepoints: Vec<f64> = (1..=count).map(|j| CHANGEPOINT_RANGE * j as f64 / (count + 1) as f64).collect();
        let basis = Basis { n, changepoints, seasons: self.seasons() };
        let q = basis.width();
        let observed: Vec<(usize, f64)> = rows.iter().map(|&i| (i, (values[i] - mu) / sd)).collect();
        let normal = basis.normal_equations(&observed);
        // Pass 1 holds the trend almost straight to measure the noise; pass 2 lets the
        // changepoints bend it as far as that noise allows.
        let beta = solve(&normal, &basis, 1e3 * m as f64)?;
        let resid_var = normal.rss(&beta) / m as f64;
        let beta = solve(&normal, &basis, resid_var.max(1e-12) / (CHANGE_SCALE * CHANGE_SCALE))?;
        let dof = (m as f64 - q as f64).max(1.0);
        let sigma = sd * (normal.rss(&beta) / dof).sqrt();
        Ok(Box::new(FittedPiecewise { basis, beta, mu, sd, sigma }))
    }
}

impl PiecewiseFourier {
    fn seasons(&self) -> Vec<(usize, Vec<Vec<f64>>)> {
        self.periods
            .iter()
            .map(|&p| {
                let k = (p / 2).saturating_sub(1).clamp(1, MAX_HARMONICS);
                let table = (0..p)
                    .map(|phase| {
                        let angle = phase as f64 / p as f64 * std::f64::consts::TAU;
                        (1..=k)
                            .flat_map(|h| {
                                let (s, c) = (h as f64 * angle).sin_cos();
                                [s, c]
                            })
                            .collect()
                    })
                    .collect();
                (p, table)
            })
            .collect()
    }
}

/// Columns: intercept, slope, one hinge per changepoint, then sin/cos pairs per season.
#[derive(Debug, Clone)]
struct Basis {
    /// Steps in the fitted history (time is scaled so the history spans [0, 1)).
    n: usize,
    changepoints: Vec<f64>,
    /// Per season: its period and, per phase, the sin/cos pairs of every harmonic (computed
    /// once: trigonometry per row would cost more than the regression itself).
    seasons: Vec<(usize, Vec<Vec<f64>>)>,
}

impl Basis {
    fn width(&self) -> usize {
        2 + self.changepoints.len() + self.seasons.iter().map(|(_, t)| t[0].len()).sum::<usize>()
    }

    fn trend_width(&self) -> usize {
        2 + self.changepoints.len()
    }

    /// Fills `out` (length `width()`) with the regressors of step `i` (any step, future too).
    fn row(&self, i: usize, out: &mut [f64]) {
        let (trend, season) = out.split_at_mut(self.trend_width());
        self.trend_row(i, trend);
        self.season_row(i, season);
    }

    /// Intercept, time and the hinges.
    fn trend_row(&self, i: usize, out: &mut [f64]) {
        let t = i as f64 / self.n as f64;
        out[0] = 1.0;
        out[1] = t;
        for (o, cp) in out[2..].iter_mut().zip(&self.changepoints) {
            *o = (t - cp).max(0.0);
        }
    }

    /// The Fourier pairs of every season (a function of the phase only).
    fn season_row(&self, i: usize, out: &mut [f64]) {
        let mut c = 0;
        for (p, table) in &self.seasons {
            let pairs = &table[i % p];
            out[c..c + pairs.len()].copy_from_slice(pairs);
            c += pairs.len();
        }
    }

    /// X'X, X'y and y'y over the observed `(step, value)` pairs, without building X, in one
    /// pass over the rows. Every trend column is `alpha + beta t` where it is active (after
    /// its changepoint), so a product of two of them needs only the sums of 1, t, t², y and
    /// y t over the rows after both changepoints: summed per segment between changepoints,
    /// then accumulated from the end. The Fourier columns depend only on the phase within
    /// the longest cycle, so their products are summed per phase (counts, value sums, and
    /// per segment the counts and time sums the trend columns need).
    fn normal_equations(&self, observed: &[(usize, f64)]) -> Normal {
        let (q, nt) = (self.width(), self.trend_width());
        let nf = q - nt;
        let segments = self.changepoints.len() + 1;
        let cycle = self.seasons.iter().fold(1, |a, (p, _)| lcm(a, *p));
        let mut count = vec![0.0; cycle];
        let mut ysum = vec![0.0; cycle];
        // Per phase and segment: rows and their time sum.
        let mut seg_count = vec![0.0; cycle * segments];
        let mut seg_time = vec![0.0; cycle * segments];
        // Per segment: sums of 1, t, t², y, y t.
        let mut moments = vec![[0.0; 5]; segments];
        let mut yty = 0.0;
        for &(i, y) in observed {
            let t = i as f64 / self.n as f64;
            let s = self.changepoints.partition_point(|cp| *cp < t);
            let ph = i % cycle;
            count[ph] += 1.0;
            ysum[ph] += y;
            yty += y * y;
            seg_count[ph * segments + s] += 1.0;
            seg_time[ph * segments + s] += t;
            let m = &mut moments[s];
            m[0] += 1.0;
            m[1] += t;
            m[2] += t * t;
            m[3] += y;
            m[4] += y * t;
        }
        // Sums over the segments from each one to the end.
        for s in (0..segments - 1).rev() {
            let next = moments[s + 1];
            for (m, n) in moments[s].iter_mut().zip(next) {
                *m += n;
            }
            for ph in 0..cycle {
                seg_count[ph * segments + s] += seg_count[ph * segments + s + 1];
                seg_time[ph * segments + s] += seg_time[ph * segments + s + 1];
            }
        }
        // Column a is alpha + beta t from segment `from` on.
        let column = |a: usize| -> (f64, f64, usize) {
            match a {
                0 => (1.0, 0.0, 0),
                1 => (0.0, 1.0, 0),
                _ => (-self.changepoints[a - 2], 1.0, a - 1),
            }
        };
        let mut xtx = Array2::<f64>::zeros((q, q));
        let mut xty = Array1::<f64>::zeros(q);
        for a in 0..nt {
            let (aa, ba, fa) = column(a);
            let m = &moments[fa];
            xty[a] = aa * m[3] + ba * m[4];
            for b in a..nt {
                let (ab, bb, fb) = column(b);
                let m = &moments[fa.max(fb)];
                xtx[[a, b]] = aa * ab * m[0] + (aa * bb + ab * ba) * m[1] + ba * bb * m[2];
            }
        }
        let mut frow = vec![0.0; nf];
        let mut ts = vec![0.0; nt];
        for ph in (0..cycle).filter(|&ph| count[ph] > 0.0) {
            self.season_row(ph, &mut frow);
            for (a, t) in ts.iter_mut().enumerate() {
                let (al, be, from) = column(a);
                *t = al * seg_count[ph * segments + from] + be * seg_time[ph * segments + from];
            }
            for j in 0..nf {
                xty[nt + j] += ysum[ph] * frow[j];
                for (a, t) in ts.iter().enumerate() {
                    xtx[[a, nt + j]] += t * frow[j];
                }
                for k in j..nf {
                    xtx[[nt + j, nt + k]] += count[ph] * frow[j] * frow[k];
                }
            }
        }
        for a in 0..q {
            for b in 0..a {
                xtx[[a, b]] = xtx[[b, a]];
            }
        }
        Normal { xtx, xty, yty }
    }

    fn hinges(&self) -> std::ops::Range<usize> {
        2..2 + self.changepoints.len()
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut x: usize, mut y: usize| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    a / gcd(a, b).max(1) * b
}

/// The least-squares problem in normal form.
struct Normal {
    xtx: Array2<f64>,
    xty: Array1<f64>,
    yty: f64,
}

impl Normal {
    /// Residual sum of squares of coefficients `beta`: y'y - 2 b'X'y + b'X'X b.
    fn rss(&self, beta: &Array1<f64>) -> f64 {
        (self.yty - 2.0 * beta.dot(&self.xty) + beta.dot(&self.xtx.dot(beta))).max(0.0)
    }
}

/// Ridge solution with `penalty` on the hinges and a small one elsewhere (keeps the system
/// positive definite when a season has few cycles).
fn solve(normal: &Normal, basis: &Basis, penalty: f64) -> Result<Array1<f64>, ModelError> {
    let mut a = normal.xtx.clone();
    let q = a.nrows();
    let ridge = 1e-6 * (0..q).map(|j| a[[j, j]]).fold(0.0, f64::max).max(1e-12);
    for j in 0..q {
        a[[j, j]] += if basis.hinges().contains(&j) { penalty } else { ridge };
    }
    let b = normal.xty.clone().insert_axis(ndarray::Axis(1));
    let sol = a.solvec(&b).map_err(|_| ModelError::Singular("piecewise".into()))?;
    Ok(sol.column(0).to_owned())
}

struct FittedPiecewise {
    basis: Basis,
    beta: Array1<f64>,
    mu: f64,
    sd: f64,
    sigma: f64,
}

impl FittedPiecewise {
    fn at(&self, i: usize, row: &mut [f64]) -> f64 {
        self.basis.row(i, row);
        self.mu + self.sd * row.iter().zip(self.beta.iter()).map(|(a, b)| a * b).sum::<f64>()
    }
}

impl Fitted for FittedPiecewise {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let z = central_z(level);
        let n = self.basis.n as f64;
        let mut row = vec![0.0; self.basis.width()];
        let mut f = Forecast::with_capacity(horizon);
        for h in 0..horizon {
            let mean = self.at(self.basis.n + h, &mut row);
            // Noise plus the trend's own uncertainty, growing with the lead time.
            let half = z * self.sigma * (1.0 + (h + 1) as f64 / n).sqrt();
            f.mean.push(mean);
            f.lower.push(mean - half);
            f.upper.push(mean + half);
        }
        f
    }

    fn fitted(&self) -> Vec<f64> {
        let mut row = vec![0.0; self.basis.width()];
        (0..self.basis.n).map(|i| self.at(i, &mut row)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_noise as noise;

    #[test]
    fn a_bent_trend_is_followed_and_the_season_kept() {
        // Flat for 40 days, then rising 0.01 a day, with a daily cycle.
        let y: Vec<f64> = (0..24 * 60)
            .map(|i| {
                let day = i as f64 / 24.0;
                0.3 + 0.01 * (day - 40.0).max(0.0)
                    + 0.05 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
                    + 0.002 * noise(i)
            })
            .collect();
        let f = PiecewiseFourier { periods: vec![24] }.fit(&y).unwrap().predict(24 * 7, 0.8);
        for h in [0, 6, 24 * 7 - 1] {
            let i = 24 * 60 + h;
            let want =
                0.3 + 0.01 * (i as f64 / 24.0 - 40.0) + 0.05 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            assert!((f.mean[h] - want).abs() < 0.02, "step {h}: {} vs {want}", f.mean[h]);
        }
    }

    #[test]
    fn a_pure_ramp_recovers_its_slope() {
        let y: Vec<f64> = (0..500).map(|i| 2.0 + 0.01 * i as f64).collect();
        let f = PiecewiseFourier { periods: vec![] }.fit(&y).unwrap().predict(100, 0.8);
        assert!((f.mean[99] - (2.0 + 0.01 * 599.0)).abs() < 1e-3, "{}", f.mean[99]);
        assert!((f.mean[1] - f.mean[0] - 0.01).abs() < 1e-6);
    }

    #[test]
    fn phase_sums_give_the_same_normal_equations_as_the_design_matrix() {
        let basis = Basis {
            n: 500,
            changepoints: vec![0.2, 0.5],
            seasons: PiecewiseFourier { periods: vec![4, 12] }.seasons(),
        };
        let observed: Vec<(usize, f64)> =
            (0..500).filter(|i| i % 7 != 3).map(|i| (i, (i as f64 * 0.37).sin() + noise(i))).collect();
        let fast = basis.normal_equations(&observed);
        let q = basis.width();
        let mut x = Array2::<f64>::zeros((observed.len(), q));
        for (r, &(i, _)) in observed.iter().enumerate() {
            basis.row(i, x.row_mut(r).as_slice_mut().unwrap());
        }
        let y = Array1::from_iter(observed.iter().map(|o| o.1));
        let (xtx, xty) = (x.t().dot(&x), x.t().dot(&y));
        for a in 0..q {
            assert!((fast.xty[a] - xty[a]).abs() < 1e-9, "X'y[{a}]");
            for b in 0..q {
                assert!((fast.xtx[[a, b]] - xtx[[a, b]]).abs() < 1e-9, "X'X[{a},{b}]");
            }
        }
        let beta = Array1::from_iter((0..q).map(|j| 0.1 * j as f64 - 0.3));
        let rss = (&y - &x.dot(&beta)).mapv(|r| r * r).sum();
        assert!((fast.rss(&beta) - rss).abs() < 1e-8 * rss.max(1.0));
    }

    #[test]
    fn gaps_and_short_series() {
        let mut y: Vec<f64> = (0..200).map(|i| (i % 24) as f64).collect();
        y[50] = f64::NAN;
        let fit = PiecewiseFourier { periods: vec![24] }.fit(&y).unwrap();
        assert!(fit.predict(10, 0.8).mean.iter().all(|v| v.is_finite()));
        assert!(PiecewiseFourier { periods: vec![24] }.fit(&y[..30]).is_err());
    }
}
