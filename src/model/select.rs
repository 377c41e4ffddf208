//! Automatic model choice: every candidate is fitted at up to three rolling origins inside the
//! history, each forecasting the real horizon (or a third of the history when that is shorter),
//! and the lowest mean absolute error wins. The winner is then refitted on all the data.

use super::linear::LinearSeasonal;
use super::naive::SeasonalNaive;
use super::{Forecast, Model, ModelError, observed, seasonal_periods};
use crate::stats::finite_mean;

/// Rolling origins per candidate (FORECASTING.md: 3 beat 1 and 2; 5 gained nothing).
const ORIGINS: usize = 3;

/// Model families a user can ask for (`model = "..."`, `--model`).
pub const FAMILIES: &[&str] = &["auto", "naive", "seasonal_naive", "linear"];

/// The chosen model, its forecast and how it scored in backtest.
#[derive(Debug, Clone)]
pub struct Selection {
    pub model: String,
    pub forecast: Forecast,
    /// In-sample fitted values of the chosen model, aligned with the input.
    pub fitted: Vec<f64>,
    pub backtest: Option<Backtest>,
}

/// Out-of-sample accuracy of the chosen model inside the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    /// Mean absolute error over the origins.
    pub mae: f64,
    /// MAE scaled by the in-sample one-season naive error (< 1 beats seasonal naive).
    pub mase: Option<f64>,
    pub origins: usize,
    /// Steps forecast at each origin.
    pub horizon: usize,
}

/// Checks a model family name.
pub fn check_family(name: &str) -> Result<(), ModelError> {
    if FAMILIES.contains(&name) { Ok(()) } else { Err(ModelError::Unknown(name.into(), FAMILIES.join(", "))) }
}

/// The candidate pool for a family, step and series length.
pub fn candidates(family: &str, step: i64, n: usize) -> Vec<Box<dyn Model>> {
    let periods: Vec<usize> = seasonal_periods(step).into_iter().filter(|p| n >= 2 * p + 2).collect();
    let mut pool: Vec<Box<dyn Model>> = vec![];
    let naive = matches!(family, "auto" | "naive");
    let snaive = matches!(family, "auto" | "seasonal_naive");
    let linear = matches!(family, "auto" | "linear");
    if naive || (snaive && periods.is_empty()) {
        pool.push(Box::new(SeasonalNaive { period: 1 }));
    }
    if snaive {
        pool.extend(periods.iter().map(|&p| Box::new(SeasonalNaive { period: p }) as Box<dyn Model>));
    }
    if linear {
        let season = periods.last().copied().unwrap_or(1);
        pool.push(Box::new(LinearSeasonal { period: season, window: None }));
        // A recent trend: the last four weeks (or a third of the data), for series whose
        // growth changed during the history.
        let recent = (28 * 86_400 / step.max(1)) as usize;
        let recent = recent.min(n / 3).max(2 * season + 2);
        if recent < n {
            pool.push(Box::new(LinearSeasonal { period: season, window: Some(recent) }));
        }
    }
    pool
}

/// Fits the family's best model to `values` and forecasts `horizon` steps.
pub fn forecast(
    values: &[f64],
    step: i64,
    horizon: usize,
    level: f64,
    bounded: bool,
    family: &str,
) -> Result<Selection, ModelError> {
    check_family(family)?;
    let n = values.len();
    let all = candidates(family, step, n);
    let needed = all.iter().map(|m| m.min_len()).min().unwrap_or(3);
    let pool: Vec<Box<dyn Model>> = all.into_iter().filter(|m| m.min_len() <= observed(values)).collect();
    if pool.is_empty() {
        return Err(ModelError::TooShort { model: family.to_string(), needed, have: observed(values) });
    }
    let hb = horizon.min(n / (ORIGINS + 1)).max(1);
    let scale = in_sample_scale(values, step);
    // (candidate, backtest MAE, origins used)
    let mut scores: Vec<(usize, f64, usize)> = vec![];
    if pool.len() > 1 {
        for (i, m) in pool.iter().enumerate() {
            let mut errs = vec![];
            for k in 1..=ORIGINS {
                let Some(origin) = n.checked_sub(k * hb) else { break };
                if origin < m.min_len() {
                    break;
                }
                let Ok(fitted) = m.fit(&values[..origin]) else { break };
                let f = fitted.predict(hb, 0.5);
                let f = f.tidy(bounded);
                if let Some(e) = finite_mean((0..hb).map(|h| (values[origin + h] - f.mean[h]).abs())) {
                    errs.push(e);
                }
            }
            if let Some(mae) = finite_mean(errs.iter().copied()) {
                scores.push((i, mae, errs.len()));
            }
        }
    }
    // Refit on everything, best backtest first; a candidate that cannot fit the full series
    // (a recent window with too many gaps) gives way to the next.
    scores.sort_by(|a, b| a.1.total_cmp(&b.1));
    let order = scores.iter().map(|s| s.0).chain(0..pool.len());
    let mut last_err = None;
    for i in order {
        let model = &pool[i];
        match model.fit(values) {
            Ok(fitted) => {
                let forecast = fitted.predict(horizon, level).tidy(bounded);
                let backtest = scores.iter().find(|s| s.0 == i).map(|&(_, mae, origins)| Backtest {
                    mae,
                    mase: scale.filter(|s| *s > 0.0).map(|s| mae / s),
                    origins,
                    horizon: hb,
                });
                return Ok(Selection { model: model.name(), forecast, fitted: fitted.fitted(), backtest });
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or(ModelError::TooShort { model: family.to_string(), needed, have: observed(values) }))
}

/// In-sample MAE of the one-season naive forecast (season = a day where possible): the MASE
/// denominator, as in the benchmark's scorer.
fn in_sample_scale(values: &[f64], step: i64) -> Option<f64> {
    let p = seasonal_periods(step).first().copied().filter(|p| values.len() > p + 1).unwrap_or(1);
    finite_mean((p..values.len()).map(|i| (values[i] - values[i - p]).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn picks_linear_for_a_clean_trend_and_naive_for_a_clean_season() {
        let trend: Vec<f64> = (0..24 * 30).map(|i| 0.1 + 0.0005 * i as f64 + 0.05 * ((i % 24) as f64 / 24.0)).collect();
        let s = forecast(&trend, 3600, 48, 0.8, true, "auto").unwrap();
        assert!(s.model.starts_with("linear"), "{}", s.model);
        assert!(s.backtest.as_ref().unwrap().mase.unwrap() < 0.1);

        let season: Vec<f64> = (0..24 * 30).map(|i| ((i % 24) as f64 * 0.7).sin()).collect();
        let s = forecast(&season, 3600, 48, 0.8, false, "auto").unwrap();
        assert!(s.model.starts_with("seasonal_naive"), "{}", s.model);
        assert_eq!(s.forecast.mean.len(), 48);
    }

    #[test]
    fn families_restrict_the_pool() {
        let y: Vec<f64> = (0..400).map(|i| i as f64).collect();
        let s = forecast(&y, 3600, 10, 0.8, false, "seasonal_naive").unwrap();
        assert!(s.model.starts_with("seasonal_naive"), "{}", s.model);
        assert!(forecast(&y, 3600, 10, 0.8, false, "prophet").is_err());
    }

    #[test]
    fn tiny_series_still_forecast() {
        let s = forecast(&[0.5, 0.5, 0.5], 3600, 5, 0.8, true, "auto").unwrap();
        assert_eq!(s.forecast.mean, vec![0.5; 5]);
        assert!(forecast(&[0.5], 3600, 5, 0.8, true, "auto").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn never_panics_and_keeps_bounds_ordered(
            values in prop::collection::vec(prop_oneof![9 => -1e6f64..1e6, 1 => Just(f64::NAN)], 3..400),
            horizon in 1usize..200,
            level in 0.05f64..0.99,
            bounded: bool,
        ) {
            prop_assume!(values.iter().filter(|v| v.is_finite()).count() >= 3);
            let s = forecast(&values, 3600, horizon, level, bounded, "auto").unwrap();
            let f = &s.forecast;
            prop_assert_eq!(f.mean.len(), horizon);
            for i in 0..horizon {
                prop_assert!(f.lower[i].is_finite() && f.mean[i].is_finite() && f.upper[i].is_finite());
                prop_assert!(f.lower[i] <= f.mean[i] && f.mean[i] <= f.upper[i]);
                if bounded {
                    prop_assert!(f.lower[i] >= 0.0 && f.upper[i] <= 1.0);
                }
            }
        }
    }
}
