//! Exponential smoothing on the deseasonalised series: ETS with an additive, damped trend
//! (parameters chosen by least squares of one-step errors, i.e. Gaussian likelihood, over a
//! small grid), the Theta method (simple smoothing plus half the linear drift), or an ARIMA
//! (`arima`). With seasonal periods this is MSTL: profiles from `decompose`, the rest
//! extrapolated, added back.

use super::arima::{self, Arima};
use super::{Fitted, Forecast, Model, ModelError, Shared, check_len};
use crate::stats::central_z;

/// Parameters are searched on at most this many recent steps (states then run over all).
const MAX_SEARCH: usize = 2_000;
const ALPHAS: [f64; 9] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.98];
const BETAS: [f64; 4] = [0.005, 0.02, 0.05, 0.15];
const PHIS: [f64; 3] = [0.9, 0.97, 0.995];

/// How the deseasonalised series is extrapolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// ETS(A, Ad, N) or ETS(A, N, N), whichever fits one-step errors better.
    Ets,
    /// Theta: simple exponential smoothing plus half the series' linear slope.
    Theta,
    /// ARIMA(p, d, q), p, q ≤ 2, order by AICc (ETS where it cannot be fitted).
    Arima,
}

#[derive(Debug, Clone)]
pub struct Smoothing {
    /// Seasonal periods removed first (empty: none).
    pub periods: Vec<usize>,
    pub trend: Trend,
}

impl Smoothing {
    /// `trend`, after the seasons removed first: `ets`, `mstl(24,168)+ets`.
    fn label(&self, trend: &str) -> String {
        if self.periods.is_empty() {
            trend.to_string()
        } else {
            let p: Vec<String> = self.periods.iter().map(|p| p.to_string()).collect();
            format!("mstl({})+{trend}", p.join(","))
        }
    }
}

impl Model for Smoothing {
    fn name(&self) -> String {
        self.label(match self.trend {
            Trend::Ets => "ets",
            Trend::Theta => "theta",
            Trend::Arima => "arima",
        })
    }

    fn min_len(&self) -> usize {
        let least = if self.trend == Trend::Arima { arima::MIN_LEN } else { 6 };
        self.periods.iter().max().map_or(least, |p| (2 * p + 2).max(least))
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        self.fit_shared(values, &Shared::default())
    }

    fn fit_shared(&self, values: &[f64], shared: &Shared) -> Result<Box<dyn Fitted>, ModelError> {
        check_len(self, values)?;
        let dec = shared.decomposition(values, &self.periods);
        let x = &dec.deseasonalised;
        // With seasons removed, the last state is averaged over the longest season (each
        // state carried to the end by its trend): what the profiles missed at the last hours
        // must not set the level for the whole horizon.
        let season = self.periods.iter().max().copied().unwrap_or(1);
        let clip = error_clip(x);
        // An ARIMA is fitted to the recent part its parameters are searched on: its forecasts
        // need only the last values and innovations.
        let arima = if self.trend == Trend::Arima { arima::fit(tail(x), clip) } else { None };
        // What an ARIMA fit chose, or that it fell back to ETS, shows in the name.
        let name = (self.trend == Trend::Arima).then(|| {
            self.label(&arima.as_ref().map_or("ets".to_string(), |a| format!("arima({},{},{})", a.p, a.d, a.q)))
        });
        let (path, sigma, alpha, fitted_x) = match (self.trend, arima) {
            (Trend::Arima, Some(a)) => {
                let from = x.len() - a.fitted.len();
                let fitted = x[..from].iter().chain(&a.fitted).copied().collect();
                let sigma = a.sigma;
                (TrendPath::Arima(Box::new(a)), sigma, 0.0, fitted)
            }
            (Trend::Ets | Trend::Arima, _) => {
                let p = search(x, clip);
                let s = run(x, p, season, 0.0, clip);
                (TrendPath::Damped { level: s.level, trend: s.trend, phi: p.phi }, s.sigma, p.alpha, s.fitted)
            }
            (Trend::Theta, _) => {
                let (p, _) = search_ses(x, clip);
                let slope = ols_slope(x);
                let s = run(x, p, season, slope / 2.0, clip);
                let n = x.len() as f64;
                let drift0 = 1.0 / p.alpha - (1.0 - p.alpha).powf(n) / p.alpha;
                (TrendPath::Theta { level: s.level, half_slope: slope / 2.0, drift0 }, s.sigma, p.alpha, s.fitted)
            }
        };
        let n = x.len();
        let fitted = (0..n).map(|t| fitted_x[t] + dec.seasonal(t)).collect();
        Ok(Box::new(FittedSmoothing { path, sigma, alpha, n, dec_seasonals: dec.seasonals.clone(), fitted, name }))
    }
}

#[derive(Debug, Clone)]
enum TrendPath {
    Damped { level: f64, trend: f64, phi: f64 },
    Theta { level: f64, half_slope: f64, drift0: f64 },
    Arima(Box<Arima>),
}

struct FittedSmoothing {
    path: TrendPath,
    sigma: f64,
    alpha: f64,
    n: usize,
    dec_seasonals: Vec<(usize, Vec<f64>)>,
    fitted: Vec<f64>,
    name: Option<String>,
}

impl Fitted for FittedSmoothing {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let z = central_z(level);
        let mut f = Forecast::with_capacity(horizon);
        let mut damp_sum = 0.0;
        let mut phi_h = 1.0;
        let arima = match &self.path {
            TrendPath::Arima(a) => a.forecast(horizon),
            _ => (vec![], vec![]),
        };
        for h in 1..=horizon {
            let base = match self.path {
                TrendPath::Damped { level, trend, phi } => {
                    phi_h *= phi;
                    damp_sum += phi_h;
                    level + damp_sum * trend
                }
                TrendPath::Theta { level, half_slope, drift0 } => level + half_slope * ((h - 1) as f64 + drift0),
                TrendPath::Arima(_) => arima.0[h - 1],
            };
            let t = self.n + h - 1;
            let m = base + self.dec_seasonals.iter().map(|(p, s)| s[t % p]).sum::<f64>();
            // Variance of simple smoothing h steps ahead: sigma² (1 + (h-1) alpha²); an
            // ARIMA's from its ψ weights.
            let w = match self.path {
                TrendPath::Arima(_) => z * arima.1[h - 1],
                _ => z * self.sigma * (1.0 + (h - 1) as f64 * self.alpha * self.alpha).sqrt(),
            };
            f.mean.push(m);
            f.lower.push(m - w);
            f.upper.push(m + w);
        }
        f
    }

    fn fitted(&self) -> Vec<f64> {
        self.fitted.clone()
    }

    fn name(&self) -> Option<String> {
        self.name.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    alpha: f64,
    /// 0: no trend.
    beta: f64,
    phi: f64,
}

struct State {
    level: f64,
    trend: f64,
    sigma: f64,
    fitted: Vec<f64>,
}

fn init(x: &[f64], p: Params) -> (f64, f64) {
    let m = (x.len() - 1).min(24);
    let b = if p.beta > 0.0 && m > 0 { (x[m] - x[0]) / m as f64 } else { 0.0 };
    (x[0], b)
}

/// Runs the smoothing over `x`. The final level and trend are the means of the states over
/// the last `season` steps, each level carried to the end by its trend (or by `drift` per
/// step where the trend is not a state); `season` 1 keeps the last state.
fn run(x: &[f64], p: Params, season: usize, drift: f64, clip: f64) -> State {
    let (mut l, mut b) = init(x, p);
    let mut fitted = Vec::with_capacity(x.len());
    fitted.push(x[0]);
    let mut total = 0.0;
    let n = x.len();
    let from = n.saturating_sub(season.max(1)).max(1);
    let (mut level_sum, mut trend_sum, mut count) = (0.0, 0.0, 0.0);
    for (t, &v) in x.iter().enumerate().skip(1) {
        let pred = l + p.phi * b;
        fitted.push(pred);
        let e = (v - pred).clamp(-clip, clip);
        total += e * e;
        l = pred + p.alpha * e;
        b = p.phi * b + p.beta * e;
        if t >= from {
            let ahead = (n - 1 - t) as f64;
            level_sum += l + ahead * (b + drift);
            trend_sum += b;
            count += 1.0;
        }
    }
    let sigma = (total / (x.len().saturating_sub(1)).max(1) as f64).sqrt();
    if count > 0.0 {
        (l, b) = (level_sum / count, trend_sum / count);
    }
    State { level: l, trend: b, sigma, fitted }
}

fn tail(x: &[f64]) -> &[f64] {
    &x[x.len().saturating_sub(MAX_SEARCH)..]
}

/// Sums of squared one-step errors for many parameter sets in one pass over `x`: the states
/// advance side by side, so the loop over parameter sets vectorises. Each sum is exactly the
/// one [`run`] accumulates for that set (the same operations in the same order).
fn sse_many(x: &[f64], ps: &[Params], clip: f64) -> Vec<f64> {
    let (mut level, mut trend): (Vec<f64>, Vec<f64>) = ps.iter().map(|p| init(x, *p)).unzip();
    let alpha: Vec<f64> = ps.iter().map(|p| p.alpha).collect();
    let beta: Vec<f64> = ps.iter().map(|p| p.beta).collect();
    let phi: Vec<f64> = ps.iter().map(|p| p.phi).collect();
    let mut total = vec![0.0; ps.len()];
    for &v in &x[1..] {
        for ((((l, b), t), a), (be, ph)) in
            level.iter_mut().zip(trend.iter_mut()).zip(total.iter_mut()).zip(&alpha).zip(beta.iter().zip(&phi))
        {
            let pred = *l + ph * *b;
            let e = (v - pred).clamp(-clip, clip);
            *t += e * e;
            *l = pred + a * e;
            *b = ph * *b + be * e;
        }
    }
    total
}

/// Best simple-smoothing parameters (no trend), with their sum of squared errors.
fn search_ses(x: &[f64], clip: f64) -> (Params, f64) {
    let t = tail(x);
    let ps: Vec<Params> = ALPHAS.iter().map(|&alpha| Params { alpha, beta: 0.0, phi: 1.0 }).collect();
    let sses = sse_many(t, &ps, clip);
    // The first of equals wins, as a scan in grid order would have it.
    let best = (0..ps.len()).fold(0, |best, i| if sses[i] < sses[best] { i } else { best });
    (ps[best], sses[best])
}

/// Best parameters over no-trend and damped-trend models: each fitted by its one-step
/// errors (AIC-like), then the damped trend kept only if it also forecasts [`AHEAD`] steps
/// ahead better (one-step errors favour trends that do not last).
fn search(x: &[f64], clip: f64) -> Params {
    let t = tail(x);
    let n = t.len().max(2) as f64;
    let aic = |sse: f64, k: f64| n * (sse / n).max(1e-300).ln() + 2.0 * k;
    let (ses, ses_sse) = search_ses(x, clip);
    let grid: Vec<Params> = ALPHAS
        .iter()
        .flat_map(|&alpha| {
            BETAS
                .iter()
                .filter(move |b| **b <= alpha)
                .flat_map(move |&beta| PHIS.iter().map(move |&phi| Params { alpha, beta, phi }))
        })
        .collect();
    let mut best = (ses, aic(ses_sse, 1.0));
    for (p, sse) in grid.iter().zip(sse_many(t, &grid, clip)) {
        let score = aic(sse, 3.0);
        if score < best.1 {
            best = (*p, score);
        }
    }
    if best.0.beta > 0.0 && sse_ahead(t, best.0, AHEAD, clip) >= TREND_GAIN * sse_ahead(t, ses, AHEAD, clip) {
        return ses;
    }
    best.0
}

/// Steps ahead the parameters are judged on.
const AHEAD: usize = 24;
/// A damped trend must cut the no-trend error to this share.
const TREND_GAIN: f64 = 0.95;

/// Sum of squared errors of the `h`-step-ahead forecasts from every point.
fn sse_ahead(x: &[f64], p: Params, h: usize, clip: f64) -> f64 {
    let damp: f64 = (1..=h as i32).map(|k| p.phi.powi(k)).sum();
    let (mut l, mut b) = init(x, p);
    let mut total = 0.0;
    for i in 1..x.len() {
        let pred = l + p.phi * b;
        let e = (x[i] - pred).clamp(-clip, clip);
        l = pred + p.alpha * e;
        b = p.phi * b + p.beta * e;
        if let Some(v) = x.get(i + h) {
            let f = l + damp * b;
            let e = (v - f).clamp(-clip, clip);
            total += e * e;
        }
    }
    total
}

/// One-step errors are clipped at this many robust standard deviations of the series'
/// step-to-step moves before they update the states or count in a fit: an incident's spike
/// must not reset the level or start a trend.
const ERROR_CLIP_SIGMAS: f64 = 6.0;

/// The clip for one-step errors on `x` (infinite where the moves have no spread).
fn error_clip(x: &[f64]) -> f64 {
    let clip = ERROR_CLIP_SIGMAS * 1.4826 * crate::stats::middle_move(x);
    if clip.is_finite() && clip > 0.0 { clip } else { f64::INFINITY }
}

fn ols_slope(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let tbar = (n - 1.0) / 2.0;
    let ybar = x.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, v) in x.iter().enumerate() {
        let dt = t as f64 - tbar;
        sxy += dt * (v - ybar);
        sxx += dt * dt;
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_sharing_decompositions_forecast_as_fits_alone() {
        // MSTL's ETS and Theta at several prefixes of one series, sharing one cache (as a
        // selection does), forecast exactly what each fitted on its own forecasts.
        let y: Vec<f64> = (0..24 * 40)
            .map(|i| {
                let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                2.0 + 0.001 * i as f64 + day.sin() + 0.1 * crate::stats::test_noise(i)
            })
            .collect();
        let shared = Shared::default();
        for trend in [Trend::Ets, Trend::Theta, Trend::Ets] {
            let model = Smoothing { periods: vec![24], trend };
            for end in [24 * 20, 24 * 30, 24 * 40] {
                let alone = model.fit(&y[..end]).unwrap();
                let with = model.fit_shared(&y[..end], &shared).unwrap();
                assert_eq!(alone.predict(48, 0.8), with.predict(48, 0.8));
                assert_eq!(alone.fitted(), with.fitted());
            }
        }
    }

    #[test]
    fn ets_follows_a_ramp_and_a_level() {
        let ramp: Vec<f64> = (0..300).map(|i| 1.0 + 0.01 * i as f64).collect();
        let f = Smoothing { periods: vec![], trend: Trend::Ets }.fit(&ramp).unwrap().predict(10, 0.8);
        // Damped, so a little under the line, but clearly trending.
        assert!(f.mean[9] > 3.99 + 0.05 && f.mean[9] < 4.1, "{:?}", f.mean);
        let flat: Vec<f64> = (0..300).map(|i| if i < 200 { 1.0 } else { 2.0 }).collect();
        let f = Smoothing { periods: vec![], trend: Trend::Ets }.fit(&flat).unwrap().predict(5, 0.8);
        assert!((f.mean[4] - 2.0).abs() < 0.01, "adapts to the new level: {:?}", f.mean);
    }

    #[test]
    fn the_side_by_side_grid_matches_one_pass_per_parameter_set() {
        let x: Vec<f64> = (0..500).map(|i| (i as f64 * 0.1).sin() + 0.01 * i as f64).collect();
        let ps = [
            Params { alpha: 0.3, beta: 0.0, phi: 1.0 },
            Params { alpha: 0.6, beta: 0.05, phi: 0.97 },
            Params { alpha: 0.02, beta: 0.02, phi: 0.9 },
            // A few more, some with no trend.
            Params { alpha: 0.8, beta: 0.15, phi: 0.995 },
            Params { alpha: 0.1, beta: 0.0, phi: 1.0 },
            Params { alpha: 0.45, beta: 0.005, phi: 0.97 },
        ];
        let sses = sse_many(&x, &ps, 0.5);
        assert_eq!(sses.len(), ps.len());
        for (p, sse) in ps.iter().zip(sses) {
            let s = run(&x, *p, 1, 0.0, 0.5);
            let want = s.sigma * s.sigma * (x.len() - 1) as f64;
            assert!((sse - want).abs() <= 1e-9 * want, "{p:?}: {sse} vs {want}");
        }
    }

    #[test]
    fn theta_and_mstl_keep_the_season() {
        let y: Vec<f64> = (0..24 * 21)
            .map(|i| 0.5 + 0.0001 * i as f64 + 0.2 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect();
        for trend in [Trend::Ets, Trend::Theta, Trend::Arima] {
            let m = Smoothing { periods: vec![24], trend };
            let f = m.fit(&y).unwrap().predict(48, 0.8);
            for h in 0..48 {
                let i = 24 * 21 + h;
                let want = 0.5 + 0.0001 * i as f64 + 0.2 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                assert!((f.mean[h] - want).abs() < 0.03, "{}: step {h}: {} vs {want}", m.name(), f.mean[h]);
            }
        }
        assert_eq!(Smoothing { periods: vec![24, 168], trend: Trend::Ets }.name(), "mstl(24,168)+ets");
    }

    #[test]
    fn an_arima_fit_is_named_by_the_order_it_chose() {
        // An AR(2) around 3 (x_t = 0.5 x_{t-1} + 0.3 x_{t-2} + e_t).
        let e: Vec<f64> = (0..3100).map(crate::stats::test_noise).collect();
        let mut x = vec![0.0; 3100];
        for t in 2..3100 {
            x[t] = 0.5 * x[t - 1] + 0.3 * x[t - 2] + e[t];
        }
        let y: Vec<f64> = x[100..].iter().map(|v| v + 3.0).collect();
        let m = Smoothing { periods: vec![], trend: Trend::Arima };
        assert_eq!(m.name(), "arima");
        assert_eq!(m.fit(&y).unwrap().name().as_deref(), Some("arima(2,0,0)"));
        // Other trends keep the model's name.
        assert_eq!(Smoothing { periods: vec![], trend: Trend::Ets }.fit(&y).unwrap().name(), None);
    }

    #[test]
    fn a_spike_does_not_reset_the_level_or_start_a_trend() {
        // Noise around 5 with an incident of +500 ten steps before the end.
        let mut y: Vec<f64> = (0..400).map(|i| 5.0 + 0.1 * crate::stats::test_noise(i)).collect();
        y[390] += 500.0;
        for trend in [Trend::Ets, Trend::Theta, Trend::Arima] {
            let f = Smoothing { periods: vec![], trend }.fit(&y).unwrap().predict(48, 0.8);
            assert!(f.mean.iter().all(|m| (m - 5.0).abs() < 1.0), "{trend:?}: {:?}", &f.mean[..5]);
        }
    }

    #[test]
    fn the_last_hours_do_not_set_the_level_of_a_seasonal_series() {
        // A daily cycle around 1.0 with noise, and the last three hours well off the profile
        // (an incident, a holiday evening): the next days stay near 1.0 (following the last
        // hour would put them near 1.6).
        let mut y: Vec<f64> = (0..24 * 28)
            .map(|i| {
                1.0 + 0.5 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + 0.05 * crate::stats::test_noise(i)
            })
            .collect();
        let n = y.len();
        y[n - 3..].iter_mut().for_each(|v| *v += 0.6);
        for trend in [Trend::Ets, Trend::Theta, Trend::Arima] {
            let m = Smoothing { periods: vec![24], trend };
            let f = m.fit(&y).unwrap().predict(24 * 7, 0.8);
            let level = f.mean.iter().sum::<f64>() / f.mean.len() as f64;
            assert!((level - 1.0).abs() < 0.15, "{}: level {level}", m.name());
        }
    }
}
