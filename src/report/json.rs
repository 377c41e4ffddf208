//! JSON: `forecasts.json` for a run (schema in `schema/forecasts.schema.json`), and the
//! single-series document `headroom forecast` prints (CONTRACT.md).

use serde_json::{Value, json};

use super::{Exporter, Report};
use crate::breach::Breach;
use crate::model::Forecast;
use crate::outcome::{ResourceForecast, Shift};
use crate::time::{format_duration, rfc3339};

/// Bumped on any incompatible change to `forecasts.json`.
pub const SCHEMA_VERSION: u32 = 1;

pub struct ForecastsJson;

impl Exporter for ForecastsJson {
    fn file_name(&self) -> &'static str {
        "forecasts.json"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, String> {
        let run = report.run;
        // Keys in sorted order (as a JSON map prints them); resources are built one at a
        // time while writing, so a large fleet never has its whole document as values.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            as_of: String,
            config: &'a str,
            config_sha256: &'a str,
            errors: Vec<Value>,
            fail_on: String,
            generated_at: &'a str,
            notes: &'a [String],
            resources: Resources<'a>,
            schema_version: u32,
            version: &'a str,
        }
        let doc = Doc {
            as_of: rfc3339(run.as_of),
            config: &report.meta.config,
            config_sha256: &report.meta.config_sha256,
            errors: run.errors.iter().map(|e| json!({"resource": e.resource, "message": e.message})).collect(),
            fail_on: format!("{:?}", run.fail_on).to_lowercase(),
            generated_at: &report.meta.generated_at,
            notes: &run.notes,
            resources: Resources(report),
            schema_version: SCHEMA_VERSION,
            version: &report.meta.version,
        };
        serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())
    }
}

/// The ranked resources of a report, serialised one by one.
struct Resources<'a>(&'a Report<'a>);

impl serde::Serialize for Resources<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let report = self.0;
        let mut seq = s.serialize_seq(Some(report.run.resources.len()))?;
        for (i, r) in report.run.resources.iter().enumerate() {
            let mut v = resource_json(r, report.run.as_of);
            v["rank"] = json!(i + 1);
            v["plot"] = match (report.plot_path(&r.name, "png"), report.plot_path(&r.name, "svg")) {
                (Some(png), Some(svg)) => json!({"png": png, "svg": svg}),
                _ => Value::Null,
            };
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

fn resource_json(r: &ResourceForecast, as_of: i64) -> Value {
    let s = &r.settings;
    let v = r.view(as_of);
    let days = |d: Option<f64>| d.map(|d| round(d, 2));
    let moved = |m: Shift| match m {
        Shift::Days(d) => Some(round(d, 2)),
        _ => None,
    };
    json!({
        "name": r.name,
        "source": r.source,
        "status": v.status,
        "headroom_days": days(v.headroom_days),
        "last_value": finite(r.last_value),
        "last_observed_at": rfc3339(r.last_observed),
        "model": r.model,
        "backtest": r.backtest.as_ref().map(|b| json!({
            "mae": b.mae, "mase": b.mase, "origins": b.origins, "horizon_steps": b.horizon,
            "candidates": b.candidates.iter().map(|(m, mae, mase)| json!({"model": m, "mae": mae, "mase": mase})).collect::<Vec<_>>(),
        })),
        "settings": {
            "step_seconds": r.step(),
            "aggregate": s.aggregate.name(),
            "horizon": format_duration(s.horizon),
            "level": s.level,
            "bounded": s.bounded,
            "alert_within": format_duration(s.alert_within),
            "lead_time": format_duration(s.lead_time),
            "history_start": rfc3339(r.history_start),
            "fit_start": rfc3339(r.fit_start),
            "unit": s.unit,
            "capacity": s.capacity,
        },
        "capacity_needed": r.capacity_needed.map(|k| json!({
            "factor": round(k, 4),
            "act_by": v.act_by.map(rfc3339),
        })),
        "breaches": v.crossings.iter().map(|c| json!({
            "name": c.breach.name,
            "threshold": c.breach.threshold,
            "expected": c.expected.map(rfc3339),
            "earliest": c.earliest.map(rfc3339),
            "expected_days": days(c.expected_days),
            "earliest_days": days(c.earliest_days),
            "act_by": c.act_by.map(rfc3339),
            "probability": round(c.breach.probability, 4),
            "already_breached": c.breach.already_breached,
        })).collect::<Vec<_>>(),
        "scenarios": v.scenarios.iter().map(|(name, crossings)| json!({
            "name": name,
            "breaches": crossings.iter().map(|m| json!({
                "name": m.crossing.breach.name,
                "threshold": m.crossing.breach.threshold,
                "expected": m.crossing.expected.map(rfc3339),
                "earliest": m.crossing.earliest.map(rfc3339),
                "probability": round(m.crossing.breach.probability, 4),
                "days_gained": moved(m.earliest_moved),
                "expected_days_gained": moved(m.expected_moved),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "forecast": r.outline.iter().map(|p| json!({
            "timestamp": rfc3339(p.t), "mean": p.mean, "lower": p.lower, "upper": p.upper,
        })).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}

/// A forecast path as CONTRACT.md writes it; `start` is the first step's time.
fn points(f: &Forecast, start: i64, step: i64) -> Vec<Value> {
    (0..f.mean.len())
        .map(|i| {
            let t = start + i as i64 * step;
            json!({"timestamp": rfc3339(t), "mean": f.mean[i], "lower": f.lower[i], "upper": f.upper[i]})
        })
        .collect()
}

/// Breaches as CONTRACT.md writes them.
fn contract_breaches(breaches: &[Breach], start: i64, step: i64) -> Vec<Value> {
    breaches
        .iter()
        .map(|b| {
            json!({
                "threshold": b.threshold,
                "expected": Breach::at(b.expected_step, start, step).map(rfc3339),
                "earliest": Breach::at(b.earliest_step, start, step).map(rfc3339),
                "probability": b.probability,
                "already_breached": b.already_breached,
            })
        })
        .collect()
}

/// The `headroom whatif --format json` document (CONTRACT.md): the baseline and each
/// scenario's forecast and breaches.
pub fn whatif(r: &ResourceForecast, baseline: &Forecast, scenarios: &[(String, Forecast, Vec<Breach>)]) -> Value {
    let (start, step) = (r.forecast_start, r.step());
    json!({
        "series": r.name,
        "step_seconds": step,
        "level": r.settings.level,
        "baseline": {
            "model": r.model,
            "forecast": points(baseline, start, step),
            "breaches": contract_breaches(&r.breaches, start, step),
        },
        "scenarios": scenarios.iter().map(|(name, f, b)| json!({
            "name": name,
            "forecast": points(f, start, step),
            "breaches": contract_breaches(b, start, step),
        })).collect::<Vec<_>>(),
    })
}

/// The `headroom forecast --format json` document (CONTRACT.md), extended with the backtest
/// and `already_breached`.
pub fn contract(r: &ResourceForecast, f: &Forecast) -> Value {
    json!({
        "series": r.name,
        "step_seconds": r.step(),
        "model": r.model,
        "level": r.settings.level,
        "forecast": points(f, r.forecast_start, r.step()),
        "breaches": contract_breaches(&r.breaches, r.forecast_start, r.step()),
        "backtest": r.backtest.as_ref().map(|b| json!({"mae": b.mae, "mase": b.mase, "origins": b.origins})),
        "notes": r.notes,
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    /// Numbers to six significant digits, and below 1e-9 to zero: the snapshot pins the
    /// output, not floating-point noise that a reordered sum can change.
    fn rounded(v: Value) -> Value {
        match v {
            Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.abs() < 1e-9 {
                    return serde_json::json!(0.0);
                }
                let digits = 5 - x.abs().log10().floor().clamp(-300.0, 300.0) as i32;
                let scale = 10f64.powi(digits.clamp(-300, 300));
                serde_json::json!((x * scale).round() / scale)
            }
            Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
            other => other,
        }
    }

    #[test]
    fn snapshot() {
        let v: Value = serde_json::from_str(&testdata::render(&ForecastsJson, true)).unwrap();
        insta::assert_json_snapshot!(rounded(v));
    }
}
