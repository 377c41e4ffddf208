//! ARIMA(p, d, q) for a deseasonalised series, after statsforecast's AutoARIMA (the
//! Hyndman–Khandakar procedure) made cheap enough for every resource and backtest origin:
//! `d` from a KPSS test, then every order with p, q ≤ 2 (with a mean when d = 0, with and
//! without a drift when d = 1) estimated by the Hannan–Rissanen regressions (a long
//! autoregression stands in for the innovations, then one least-squares fit) rather than by
//! iterated likelihood; the conditional sum of squares ranks the orders by AICc.

use linfa_linalg::cholesky::SolveC;
use ndarray::Array2;

/// Highest autoregressive and moving-average orders searched (the regression's columns and
/// the recursion in `css` are written out for two lags each).
const MAX_P: usize = 2;
const MAX_Q: usize = 2;
const _: () = assert!(MAX_P == 2 && MAX_Q == 2);
/// Lags of the long autoregression whose residuals estimate the innovations (fewer on short
/// series: a tenth of the length).
const LONG_AR: usize = 12;
/// KPSS critical value for level stationarity at 5 % (Kwiatkowski et al. 1992, table 1).
const KPSS_CRITICAL: f64 = 0.463;
/// Fewest values an ARIMA is fitted to.
pub const MIN_LEN: usize = 30;

/// A fitted ARIMA: coefficients and the state its forecasts start from.
#[derive(Debug, Clone, PartialEq)]
pub struct Arima {
    pub p: usize,
    pub d: usize,
    pub q: usize,
    /// Autoregressive coefficients φ₁..φₚ and moving-average θ₁..θ_q on the differenced series.
    pub phi: Vec<f64>,
    pub theta: Vec<f64>,
    /// The mean (d = 0) or drift per step (d = 1) of the differenced series' model.
    pub constant: f64,
    /// Standard deviation of the one-step errors.
    pub sigma: f64,
    /// The last MAX_P differenced values and MAX_Q innovations, newest last, and the last value.
    w_tail: Vec<f64>,
    e_tail: Vec<f64>,
    last: f64,
    /// One-step in-sample forecasts of the series (the first values: themselves).
    pub fitted: Vec<f64>,
}

/// One order's coefficients: φ, θ, and the model's mean (AR terms act on deviations from it).
struct Estimate {
    phi: Vec<f64>,
    theta: Vec<f64>,
    mean: f64,
}

/// One candidate order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Order {
    p: usize,
    q: usize,
    constant: bool,
}

/// The best ARIMA for `x` by AICc; None when `x` is shorter than [`MIN_LEN`] or nothing fits.
/// An incident's spike must not set the mean or drive the recursion: isolated values more
/// than `clip` from the median of their neighbours are taken as that median first, and
/// one-step errors are clipped at `clip`.
pub fn fit(x: &[f64], clip: f64) -> Option<Arima> {
    if x.len() < MIN_LEN || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let cleaned = despike(x, clip);
    let x = &cleaned[..];
    let d = usize::from(kpss(x) > KPSS_CRITICAL);
    let w: Vec<f64> = if d == 1 { x.windows(2).map(|p| p[1] - p[0]).collect() } else { x.to_vec() };
    let products = CrossProducts::new(&w, &long_ar_residuals(&w));
    let orders = (0..=MAX_P)
        .flat_map(|p| (0..=MAX_Q).map(move |q| (p, q)))
        .flat_map(|(p, q)| [true, false].map(|constant| Order { p, q, constant }))
        .filter(|o| o.constant || d == 1);
    let mut best: Option<(f64, Order, Estimate)> = None;
    for o in orders {
        let Some(est) = products.estimate(o) else { continue };
        if !stationary(&est.phi) || !stationary(&est.theta.iter().map(|t| -t).collect::<Vec<_>>()) {
            continue;
        }
        let (sse, n, _, _) = css(&w, &est, clip, false);
        let k = (o.p + o.q + usize::from(o.constant) + 1) as f64;
        let n = n as f64;
        if n <= k + 1.0 {
            continue;
        }
        let aicc = n * (sse / n).max(1e-300).ln() + 2.0 * k + 2.0 * k * (k + 1.0) / (n - k - 1.0);
        if best.as_ref().is_none_or(|b| aicc < b.0) {
            best = Some((aicc, o, est));
        }
    }
    let (_, o, est) = best?;
    let (sse, n, e, w_hat) = css(&w, &est, clip, true);
    let fitted = (0..x.len())
        .map(|t| {
            if t < d {
                x[t]
            } else if d == 1 {
                x[t - 1] + w_hat[t - 1]
            } else {
                w_hat[t]
            }
        })
        .collect();
    Some(Arima {
        p: o.p,
        d,
        q: o.q,
        phi: est.phi,
        theta: est.theta,
        constant: est.mean,
        sigma: (sse / n.max(1) as f64).sqrt(),
        w_tail: w[w.len().saturating_sub(MAX_P)..].to_vec(),
        e_tail: e[e.len().saturating_sub(MAX_Q)..].to_vec(),
        last: x[x.len() - 1],
        fitted,
    })
}

impl Arima {
    /// Mean forecasts 1..=h steps ahead and their standard deviations (from the ψ weights).
    pub fn forecast(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let mut w = self.w_tail.clone();
        let mut e = self.e_tail.clone();
        let mut level = self.last;
        let mut mean = Vec::with_capacity(h);
        for _ in 0..h {
            let next = self.predict_next(&w, &e);
            w.push(next);
            e.push(0.0);
            level = if self.d == 1 { level + next } else { next };
            mean.push(level);
        }
        // ψ weights of the ARMA, summed once per difference; Var(h) = σ² Σ_{j<h} ψ_j².
        let mut psi = vec![1.0];
        for j in 1..h {
            let ma = self.theta.get(j - 1).copied().unwrap_or(0.0);
            let ar: f64 = self.phi.iter().enumerate().filter(|(i, _)| *i < j).map(|(i, f)| f * psi[j - 1 - i]).sum();
            psi.push(ma + ar);
        }
        if self.d == 1 {
            let mut sum = 0.0;
            psi = psi
                .iter()
                .map(|v| {
                    sum += v;
                    sum
                })
                .collect();
        }
        let mut acc = 0.0;
        let sd = psi
            .iter()
            .map(|v| {
                acc += v * v;
                self.sigma * acc.sqrt()
            })
            .collect();
        (mean, sd)
    }

    /// The model's next differenced value given the recent values and innovations (newest last).
    fn predict_next(&self, w: &[f64], e: &[f64]) -> f64 {
        let ar: f64 = self.phi.iter().enumerate().map(|(i, f)| f * (w[w.len() - 1 - i] - self.constant)).sum();
        let ma: f64 = self.theta.iter().enumerate().map(|(j, t)| t * e[e.len() - 1 - j]).sum();
        self.constant + ar + ma
    }
}

/// Neighbours each side a value is compared with when looking for spikes.
const SPIKE_WINDOW: usize = 3;

/// `x` with each value further than `clip` from the median of the values within
/// [`SPIKE_WINDOW`] steps of it (itself included) replaced by that median: a spike goes, a
/// level the neighbours share stays.
fn despike(x: &[f64], clip: f64) -> Vec<f64> {
    let mut window = Vec::with_capacity(2 * SPIKE_WINDOW + 1);
    (0..x.len())
        .map(|t| {
            window.clear();
            window.extend_from_slice(&x[t.saturating_sub(SPIKE_WINDOW)..(t + SPIKE_WINDOW + 1).min(x.len())]);
            let m = crate::stats::middle(&mut window);
            if (x[t] - m).abs() > clip { m } else { x[t] }
        })
        .collect()
}

/// Lags of the long autoregression on `w` (a tenth of the length on short series).
fn long_lags(w: &[f64]) -> usize {
    LONG_AR.min(w.len() / 10).max(1)
}

/// Residuals of the long autoregression (Yule–Walker, by the Durbin–Levinson recursion):
/// the innovations the Hannan–Rissanen step regresses on (0 before the lags exist).
fn long_ar_residuals(w: &[f64]) -> Vec<f64> {
    let m = long_lags(w);
    let n = w.len() as f64;
    let mean = w.iter().sum::<f64>() / n;
    let dev: Vec<f64> = w.iter().map(|v| v - mean).collect();
    let acov: Vec<f64> = (0..=m).map(|k| dev[k..].iter().zip(&dev).map(|(a, b)| a * b).sum::<f64>() / n).collect();
    let mut e = vec![0.0; w.len()];
    if acov[0] <= 0.0 {
        return e;
    }
    let mut phi: Vec<f64> = vec![];
    let mut v = acov[0];
    for k in 1..=m {
        let a = (acov[k] - phi.iter().enumerate().map(|(j, f)| f * acov[k - 1 - j]).sum::<f64>()) / v;
        let prev = phi.clone();
        phi = prev.iter().enumerate().map(|(j, f)| f - a * prev[k - 2 - j]).collect();
        phi.push(a);
        v *= 1.0 - a * a;
        if v <= 0.0 {
            break;
        }
    }
    for t in phi.len()..w.len() {
        e[t] = dev[t] - phi.iter().enumerate().map(|(j, f)| f * dev[t - 1 - j]).sum::<f64>();
    }
    e
}

/// Columns of the Hannan–Rissanen regression: a constant, `w`'s lags 1..=MAX_P, the
/// innovations' lags 1..=MAX_Q.
const COLUMNS: usize = 1 + MAX_P + MAX_Q;

/// Cross-products of the Hannan–Rissanen regressors with each other and with `w[t]`, over
/// the rows every order shares: each order's normal equations are a part of them.
struct CrossProducts {
    xtx: [[f64; COLUMNS]; COLUMNS],
    xty: [f64; COLUMNS],
}

impl CrossProducts {
    fn new(w: &[f64], e: &[f64]) -> CrossProducts {
        let start = long_lags(w) + MAX_Q.max(MAX_P);
        let mut xtx = [[0.0; COLUMNS]; COLUMNS];
        let mut xty = [0.0; COLUMNS];
        for t in start..w.len() {
            let z = [1.0, w[t - 1], w[t - 2], e[t - 1], e[t - 2]];
            for i in 0..COLUMNS {
                xty[i] += z[i] * w[t];
                for j in 0..COLUMNS {
                    xtx[i][j] += z[i] * z[j];
                }
            }
        }
        CrossProducts { xtx, xty }
    }

    /// The Hannan–Rissanen estimate for one order.
    fn estimate(&self, o: Order) -> Option<Estimate> {
        let cols: Vec<usize> = (0..usize::from(o.constant)).chain(1..=o.p).chain(1 + MAX_P..1 + MAX_P + o.q).collect();
        let k = cols.len();
        if k == 0 {
            return Some(Estimate { phi: vec![], theta: vec![], mean: 0.0 });
        }
        let mut a = Array2::<f64>::from_shape_fn((k, k), |(i, j)| self.xtx[cols[i]][cols[j]]);
        let ridge = 1e-9 * (0..k).map(|j| a[[j, j]]).fold(0.0, f64::max).max(1e-12);
        (0..k).for_each(|j| a[[j, j]] += ridge);
        let b = Array2::from_shape_fn((k, 1), |(i, _)| self.xty[cols[i]]);
        let sol = a.solvec(&b).ok()?;
        let b: Vec<f64> = sol.column(0).to_vec();
        let c = usize::from(o.constant);
        let phi = b[c..c + o.p].to_vec();
        let theta = b[c + o.p..].to_vec();
        // w = c + Σφ w_{t-i} + ...  ⇔  (w - μ) = Σφ (w_{t-i} - μ) + ...  with μ = c / (1 - Σφ).
        let mean = if o.constant { b[0] / (1.0 - phi.iter().sum::<f64>()) } else { 0.0 };
        (mean.is_finite() && b.iter().all(|v| v.is_finite())).then_some(Estimate { phi, theta, mean })
    }
}

/// Whether 1 - c₁z - c₂z² has its roots outside the unit circle (orders up to 2): the AR
/// part is stationary, or with c = -θ the MA part invertible.
fn stationary(c: &[f64]) -> bool {
    match *c {
        [] => true,
        [a] => a.abs() < 1.0,
        [a, b] => b.abs() < 1.0 && a + b < 1.0 && b - a < 1.0,
        _ => false,
    }
}

/// Conditional sum of squares: the innovations by recursion from zeros, each clipped at
/// `clip`, summed from MAX_P on (the same span for every order). Returns the sum and the
/// count; with `record`, also the innovations and the one-step forecasts (before MAX_P: the
/// values themselves). Unused lags have coefficient 0, so one loop serves every order.
fn css(w: &[f64], est: &Estimate, clip: f64, record: bool) -> (f64, usize, Vec<f64>, Vec<f64>) {
    let lag = |c: &[f64], i: usize| c.get(i).copied().unwrap_or(0.0);
    let (f1, f2, t1, t2, mean) = (lag(&est.phi, 0), lag(&est.phi, 1), lag(&est.theta, 0), lag(&est.theta, 1), est.mean);
    let (mut e, mut pred) =
        if record { (vec![0.0; w.len()], w[..MAX_P.min(w.len())].to_vec()) } else { (vec![], vec![]) };
    // The last two innovations, newest first.
    let (mut e1, mut e2) = (0.0, 0.0);
    let mut sse = 0.0;
    for t in MAX_P..w.len() {
        let p = mean + f1 * (w[t - 1] - mean) + f2 * (w[t - 2] - mean) + t1 * e1 + t2 * e2;
        let err = (w[t] - p).clamp(-clip, clip);
        (e2, e1) = (e1, err);
        sse += err * err;
        if record {
            pred.push(p);
            e[t] = err;
        }
    }
    (sse, w.len().saturating_sub(MAX_P), e, pred)
}

/// The KPSS statistic for level stationarity, with Newey–West's long-run variance over
/// ⌊4 (n / 100)^¼⌋ lags (the short lag of R's `tseries::kpss.test`, as statsforecast uses).
fn kpss(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let e: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut s = 0.0;
    let eta = e
        .iter()
        .map(|v| {
            s += v;
            s * s
        })
        .sum::<f64>()
        / (n * n);
    let lags = (4.0 * (n / 100.0).powf(0.25)) as usize;
    let mut lrv = e.iter().map(|v| v * v).sum::<f64>() / n;
    for l in 1..=lags.min(e.len() - 1) {
        let cov = e[l..].iter().zip(&e).map(|(a, b)| a * b).sum::<f64>() / n;
        lrv += 2.0 * (1.0 - l as f64 / (lags as f64 + 1.0)) * cov;
    }
    if lrv > 0.0 { eta / lrv } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_noise;

    /// An ARMA series from given coefficients, driven by the deterministic test noise.
    fn simulate(n: usize, phi: &[f64], theta: &[f64], mean: f64) -> Vec<f64> {
        let e: Vec<f64> = (0..n + 100).map(test_noise).collect();
        let mut w = vec![0.0; n + 100];
        for t in 2..n + 100 {
            let ar: f64 = phi.iter().enumerate().map(|(i, f)| f * w[t - 1 - i]).sum();
            let ma: f64 = theta.iter().enumerate().map(|(j, th)| th * e[t - 1 - j]).sum();
            w[t] = ar + ma + e[t];
        }
        w[100..].iter().map(|v| v + mean).collect()
    }

    #[test]
    fn recovers_an_ar1_and_its_mean() {
        let x = simulate(2000, &[0.7], &[], 5.0);
        let a = fit(&x, f64::INFINITY).unwrap();
        assert_eq!(a.d, 0, "{:?}", (a.p, a.d, a.q));
        assert!((a.constant - 5.0).abs() < 0.2, "{a:?}");
        // An AR(1) at 0.7 (or an ARMA that behaves like one): the forecast decays to the mean.
        let (mean, sd) = a.forecast(200);
        assert!((mean[199] - 5.0).abs() < 0.2, "{:?}", &mean[190..]);
        let gap = x[x.len() - 1] - 5.0;
        assert!((mean[0] - 5.0 - 0.7 * gap).abs() < 0.35 * gap.abs().max(0.3), "{} {}", mean[0], x[x.len() - 1]);
        // The h-step spread grows to the AR(1)'s stationary sd, σ / sqrt(1 - φ²).
        let noise_sd = (x.iter().map(|v| (v - 5.0).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!((sd[199] - noise_sd).abs() < 0.15 * noise_sd, "{} vs {noise_sd}", sd[199]);
        assert!(sd[0] < sd[5] && sd[5] < sd[199]);
    }

    #[test]
    fn an_ar2_is_found_by_its_coefficients() {
        let x = simulate(3000, &[0.5, 0.3], &[], 0.0);
        let a = fit(&x, f64::INFINITY).unwrap();
        assert_eq!((a.p, a.d, a.q), (2, 0, 0), "{a:?}");
        assert!((a.phi[0] - 0.5).abs() < 0.06 && (a.phi[1] - 0.3).abs() < 0.06, "{:?}", a.phi);
    }

    #[test]
    fn an_ma1_is_found_by_its_coefficient() {
        let x = simulate(3000, &[], &[0.6], 1.0);
        let a = fit(&x, f64::INFINITY).unwrap();
        assert_eq!((a.p, a.d, a.q), (0, 0, 1), "{a:?}");
        assert!((a.theta[0] - 0.6).abs() < 0.08, "{:?}", a.theta);
    }

    #[test]
    fn a_random_walk_with_drift_is_differenced_and_keeps_its_drift() {
        let steps = simulate(2000, &[], &[], 0.05);
        let x: Vec<f64> = steps.iter().scan(10.0, |s, v| Some(*s + v).inspect(|t| *s = *t)).collect();
        let a = fit(&x, f64::INFINITY).unwrap();
        assert_eq!(a.d, 1, "{:?}", (a.p, a.d, a.q));
        let (mean, sd) = a.forecast(100);
        let last = x[x.len() - 1];
        let slope = (mean[99] - mean[49]) / 50.0;
        assert!((slope - 0.05).abs() < 0.03, "drift {slope}: {:?}", (a.p, a.d, a.q));
        assert!((mean[0] - last).abs() < 0.5);
        // A random walk's spread grows with the square root of the lead.
        let ratio = sd[99] / sd[24];
        assert!((ratio - 2.0).abs() < 0.3, "{ratio}");
    }

    #[test]
    fn a_trend_is_not_stationary_and_white_noise_is() {
        let noise: Vec<f64> = (0..500).map(test_noise).collect();
        assert!(kpss(&noise) < KPSS_CRITICAL, "{}", kpss(&noise));
        let ramp: Vec<f64> = (0..500).map(|i| 0.01 * i as f64 + 0.1 * test_noise(i)).collect();
        assert!(kpss(&ramp) > KPSS_CRITICAL, "{}", kpss(&ramp));
    }

    #[test]
    fn fitted_values_are_one_step_forecasts() {
        let x = simulate(500, &[0.8], &[], 2.0);
        let a = fit(&x, f64::INFINITY).unwrap();
        assert_eq!(a.fitted.len(), x.len());
        let mse =
            |f: &[f64]| f.iter().zip(&x).skip(5).map(|(f, v)| (f - v).powi(2)).sum::<f64>() / (x.len() - 5) as f64;
        let lag: Vec<f64> = std::iter::once(x[0]).chain(x.iter().copied()).take(x.len()).collect();
        assert!(mse(&a.fitted) < mse(&lag), "better than the last value");
        assert!((mse(&a.fitted).sqrt() - a.sigma).abs() < 0.1 * a.sigma);
    }

    #[test]
    fn a_spike_sets_neither_the_mean_nor_the_start() {
        let mut x = simulate(500, &[0.5], &[], 5.0);
        x[495] += 500.0;
        let a = fit(&x, 1.0).unwrap();
        assert!((a.constant - 5.0).abs() < 0.2, "{}", a.constant);
        let (mean, _) = a.forecast(20);
        assert!(mean.iter().all(|m| (m - 5.0).abs() < 0.5), "{mean:?}");
        // A level the neighbours share is not a spike.
        let step: Vec<f64> = (0..100).map(|i| if i < 50 { 0.0 } else { 10.0 }).collect();
        assert_eq!(despike(&step, 1.0), step);
    }

    #[test]
    fn short_or_gappy_series_are_refused() {
        assert!(fit(&[1.0; 10], 1.0).is_none());
        let mut x = simulate(100, &[0.5], &[], 0.0);
        x[50] = f64::NAN;
        assert!(fit(&x, 1.0).is_none());
    }
}
