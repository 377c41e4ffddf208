//! `headroom backtest`: how each model family would have done on a resource's latest history.
//! The last stretch (the horizon, or a third of the history when that is shorter) is held
//! out; every family forecasts it from what came before, exactly as a run would, and is
//! scored against what happened: MASE, interval coverage, and the highest threshold's
//! crossing date (the mean path's, against the first observed crossing) with the breach
//! probability given for it. Over the resources whose held-out stretch spans the whole
//! horizon, the table ends with the Brier score of `auto`'s breach odds: how well the
//! probabilities have meant what they say on this fleet.

use serde::Serialize;

use crate::config::ResourceSettings;
use crate::model::select::{Family, in_sample_scale};
use crate::report::markdown::escape;
use crate::report::percent;
use crate::resource::{ResourceError, forecast_resource, prepare};
use crate::source::RawSeries;
use crate::time::rfc3339;

/// One family's held-out result.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// The family asked for (`auto` is the default selection).
    pub family: String,
    /// The model that family settled on (or why it could not forecast).
    pub model: String,
    pub mase: Option<f64>,
    /// Share of held-out points inside the interval.
    pub coverage: Option<f64>,
    /// The threshold checked (the highest) and where its crossing was predicted and seen.
    pub threshold: Option<f64>,
    pub predicted: Option<String>,
    pub actual: Option<String>,
    /// Predicted minus actual crossing, in days (both crossed).
    pub error_days: Option<f64>,
    /// The probability given for crossing that threshold within the horizon (None where
    /// it was already crossed when the forecast was made: no forecast needed).
    pub probability: Option<f64>,
}

/// A resource's held-out window and every family's score on it.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub holdout_start: String,
    pub holdout_steps: usize,
    /// Whether the held-out stretch spans the whole horizon (so a breach probability, which
    /// is for the horizon, can be checked against it).
    pub full_horizon: bool,
    pub level: f64,
    pub scores: Vec<Score>,
}

/// Holds out the end of `raw`'s history (up to `as_of`) and scores every family on it.
pub fn evaluate(
    raw: &RawSeries,
    source: &str,
    settings: &ResourceSettings,
    as_of: Option<i64>,
) -> Result<Evaluation, ResourceError> {
    let (full, _) = prepare(raw, settings, as_of)?;
    let step = full.step;
    let n = full.values.len();
    let held = ((settings.horizon / step) as usize).min(n / 3);
    if held < 2 {
        return Err(ResourceError::HoldOut(n));
    }
    let cut = full.time(n - held - 1);
    let actual = &full.values[n - held..];
    let train = &full.values[..n - held];
    let scale = in_sample_scale(train, step).filter(|s| *s > 0.0);
    let hard = settings.thresholds.last().map(|t| t.1);
    let seen = hard.and_then(|t| actual.iter().position(|v| *v >= t));
    let scores = Family::ALL
        .iter()
        .map(|&family| {
            let s = ResourceSettings { model: family, ..settings.clone() };
            let failed = |why: String| Score {
                family: family.to_string(),
                model: format!("failed: {why}"),
                mase: None,
                coverage: None,
                threshold: hard,
                predicted: None,
                actual: seen.map(|i| rfc3339(full.time(n - held + i))),
                error_days: None,
                probability: None,
            };
            let r = match forecast_resource(raw, source, &s, Some(cut)) {
                Ok(r) => r,
                Err(e) => return failed(crate::error::line(&e)),
            };
            let Some(d) = &r.detail else { return failed("no forecast path".into()) };
            // Forecast step k is at forecast_start + k * step; the held-out point j at cut + (j + 1) * step.
            let offset = ((cut + step - r.forecast_start) / step) as usize;
            let pairs: Vec<(usize, f64)> = (0..held)
                .filter(|j| offset + j < d.forecast.mean.len() && actual[*j].is_finite())
                .map(|j| (offset + j, actual[j]))
                .collect();
            let count = pairs.len().max(1) as f64;
            let mae = pairs.iter().map(|(k, a)| (d.forecast.mean[*k] - a).abs()).sum::<f64>() / count;
            let inside =
                pairs.iter().filter(|(k, a)| d.forecast.lower[*k] <= *a && *a <= d.forecast.upper[*k]).count() as f64;
            let predicted = r
                .breaches
                .last()
                .and_then(|b| b.expected_step)
                .filter(|k| *k >= offset && *k < offset + held)
                .map(|k| k - offset);
            let probability = r.breaches.last().filter(|b| !b.already_breached).map(|b| b.probability);
            let error_days = match (predicted, seen) {
                (Some(p), Some(a)) => Some((p as f64 - a as f64) * step as f64 / 86_400.0),
                _ => None,
            };
            Score {
                family: family.to_string(),
                model: r.model.clone(),
                mase: scale.filter(|_| !pairs.is_empty()).map(|s| mae / s),
                coverage: (!pairs.is_empty()).then(|| inside / count),
                threshold: hard,
                predicted: predicted.map(|k| rfc3339(full.time(n - held + k))),
                actual: seen.map(|i| rfc3339(full.time(n - held + i))),
                error_days,
                probability,
            }
        })
        .collect();
    Ok(Evaluation {
        holdout_start: rfc3339(cut + step),
        holdout_steps: held,
        full_horizon: held as i64 * step >= settings.horizon,
        level: settings.level,
        scores,
    })
}

/// The evaluations as a Markdown table: a row per resource and family, then the Brier
/// score of `auto`'s breach odds.
pub fn table(evaluations: &[(String, Evaluation)]) -> String {
    let mut s = String::from(
        "| resource | family | model | MASE | coverage | threshold | crossing predicted / seen | error (days) | P(cross) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let day = |t: &Option<String>| t.as_deref().and_then(|t| t.get(..10)).unwrap_or("–").to_string();
    for (name, e) in evaluations {
        for sc in &e.scores {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
                escape(name),
                sc.family,
                escape(&sc.model),
                sc.mase.map_or("–".into(), |m| format!("{m:.2}")),
                sc.coverage.map_or("–".into(), |c| format!("{:.0} % of {:.0} %", c * 100.0, e.level * 100.0)),
                sc.threshold.map_or("–".into(), |t| t.to_string()),
                day(&sc.predicted),
                day(&sc.actual),
                sc.error_days.map_or("–".into(), |d| format!("{d:+.1}")),
                sc.probability.map_or("–".into(), percent),
            ));
        }
    }
    s.push('\n');
    s.push_str(&match brier(evaluations) {
        Some(b) => format!(
            "Breach odds of `auto` on {} resources held out for the whole horizon: Brier score {:.3} \
             ({} crossed; always saying the base rate would score {:.3}, lower is better).\n",
            b.count, b.score, b.crossed, b.climatology
        ),
        None => "Breach odds: no resource was held out for its whole horizon with a threshold not yet crossed.\n"
            .to_string(),
    });
    s
}

/// Brier score of `auto`'s breach probabilities against what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Brier {
    pub count: usize,
    pub crossed: usize,
    pub score: f64,
    /// The score of always predicting the share that crossed.
    pub climatology: f64,
}

/// Over resources held out for their whole horizon whose threshold was not yet crossed.
pub fn brier(evaluations: &[(String, Evaluation)]) -> Option<Brier> {
    let pairs: Vec<(f64, f64)> = evaluations
        .iter()
        .filter(|(_, e)| e.full_horizon)
        .filter_map(|(_, e)| e.scores.iter().find(|s| s.family == "auto"))
        .filter_map(|s| Some((s.probability?, if s.actual.is_some() { 1.0 } else { 0.0 })))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let base = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    Some(Brier {
        count: pairs.len(),
        crossed: pairs.iter().filter(|p| p.1 > 0.0).count(),
        score: pairs.iter().map(|(p, a)| (p - a).powi(2)).sum::<f64>() / n,
        climatology: base * (1.0 - base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_is_scored_against_what_happened() {
        // 60 days hourly rising 0.0075 a day from 0.5 with a daily cycle: the hard threshold
        // 0.9 is first reached on day 53, inside the last 20 days held out.
        let hours = 60 * 24;
        let ts: Vec<i64> = (0..hours).map(|i| 1_767_225_600 + 3600 * i as i64).collect();
        let vs: Vec<f64> = (0..hours)
            .map(|i| 0.5 + 0.0075 * i as f64 / 24.0 + 0.01 * (i as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect();
        let raw = RawSeries::new("ramp".into(), "test".into(), ts, vs.clone());
        let settings = ResourceSettings {
            horizon: 20 * 86_400,
            thresholds: vec![("soft".into(), 0.7), ("hard".into(), 0.9)],
            ..ResourceSettings::default()
        };
        let e = evaluate(&raw, "test", &settings, None).unwrap();
        assert_eq!(e.holdout_steps, 20 * 24);
        assert_eq!(e.scores.len(), Family::ALL.len());
        let seen = vs.iter().position(|v| *v >= 0.9).unwrap();
        assert!(seen >= hours - 20 * 24, "the crossing lies in the held-out stretch");
        let linear = e.scores.iter().find(|s| s.family == "linear").unwrap();
        assert!(linear.mase.unwrap() < 0.5, "{linear:?}");
        assert!(linear.error_days.unwrap().abs() < 1.0, "{linear:?}");
        assert!(linear.actual.is_some() && linear.predicted.is_some());
        // The naive forecast stays flat: it never predicts the crossing that happened.
        let naive = e.scores.iter().find(|s| s.family == "naive").unwrap();
        assert!(naive.predicted.is_none() && naive.actual.is_some(), "{naive:?}");
        assert!(naive.mase.unwrap() > linear.mase.unwrap());
        // The trend makes the crossing likely, and it happened: a good Brier score.
        let auto = e.scores.iter().find(|s| s.family == "auto").unwrap();
        assert!(e.full_horizon && auto.probability.unwrap() > 0.5, "{auto:?}");
        let evaluations = vec![("ramp".to_string(), e.clone())];
        let b = brier(&evaluations).unwrap();
        assert_eq!((b.count, b.crossed, b.climatology), (1, 1, 0.0));
        assert!(b.score < 0.25, "{b:?}");
        assert!(table(&evaluations).contains("Brier score"));
        // Half the horizon held out: the odds (for the whole horizon) are not scored.
        let long = ResourceSettings { horizon: 40 * 86_400, ..settings.clone() };
        let e = evaluate(&raw, "test", &long, None).unwrap();
        assert!(!e.full_horizon);
        assert_eq!(brier(&[("ramp".to_string(), e)]), None);
        let short = RawSeries::new("short".into(), "t".into(), vec![0, 3600, 7200], vec![0.1, 0.2, 0.3]);
        assert!(evaluate(&short, "t", &settings, None).unwrap_err().to_string().contains("too short"));
    }
}
