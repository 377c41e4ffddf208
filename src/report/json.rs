//! JSON: `forecasts.json` for a run (schema in `schema/forecasts.schema.json`), and the
//! single-series document `headroom forecast` prints (CONTRACT.md).

use serde_json::{Value, json};

use super::stream::Streamer;
use super::{Exporter, Report, ReportError, sig4};
use crate::breach::Breach;
use crate::model::Forecast;
use crate::outcome::{ResourceForecast, RunResult, Shift};
use crate::time::{format_duration, rfc3339};
use crate::track::{PastForecast, TrackRecord};

/// Bumped on any incompatible change to `forecasts.json`.
pub const SCHEMA_VERSION: u32 = 2;

pub struct ForecastsJson;

impl Exporter for ForecastsJson {
    fn file_name(&self) -> &'static str {
        "forecasts.json"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError> {
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
            track_record: Value,
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
            track_record: fleet_track_json(run),
            version: &report.meta.version,
        };
        if compact(report) {
            serde_json::to_vec(&doc).map_err(ReportError::Encode)
        } else {
            serde_json::to_vec_pretty(&doc).map_err(ReportError::Encode)
        }
    }
}

/// A large fleet's JSON (past `PLOT_ALL_UP_TO` resources, not `--full`): one line, each
/// outline by day over its first [`DAILY_DAYS`] days and by week after, its values and the
/// backtest's at four significant digits, the best [`CANDIDATES_KEPT`] candidates.
fn compact(report: &Report) -> bool {
    !Streamer::everything_for(report.run.total, report.meta.full)
}

const DAILY_DAYS: i64 = 14;
const CANDIDATES_KEPT: usize = 5;

/// The ranked resources of a report, serialised one by one.
struct Resources<'a>(&'a Report<'a>);

impl serde::Serialize for Resources<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let report = self.0;
        let mut seq = s.serialize_seq(Some(report.run.resources.len()))?;
        let compact = compact(report);
        for (i, r) in report.run.resources.iter().enumerate() {
            let mut v = resource_json(r, report.run.as_of, compact);
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

fn resource_json(r: &ResourceForecast, as_of: i64, compact: bool) -> Value {
    let s = &r.settings;
    let num = |x: f64| if compact { sig4(x) } else { x };
    // By day for DAILY_DAYS, then a point a week (the last one kept).
    let daily_until = r.forecast_start + DAILY_DAYS * 86_400;
    let mut last_kept = i64::MIN;
    let outline: Vec<&crate::outcome::Point> = r
        .outline
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let keep =
                !compact || p.t <= daily_until || p.t >= last_kept + 7 * 86_400 - 3_600 || *i + 1 == r.outline.len();
            if keep {
                last_kept = p.t;
            }
            keep
        })
        .map(|(_, p)| p)
        .collect();
    let kept = if compact { CANDIDATES_KEPT } else { usize::MAX };
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
            "mae": num(b.mae), "mase": b.mase.map(num), "origins": b.origins, "horizon_steps": b.horizon,
            "candidates": b.candidates.iter().take(kept).map(|(m, mae, mase)| json!({"model": m, "mae": num(*mae), "mase": mase.map(num)})).collect::<Vec<_>>(),
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
        "forecast": outline.iter().map(|p| json!({
            "timestamp": rfc3339(p.t), "mean": num(p.mean), "lower": num(p.lower), "upper": num(p.upper),
        })).collect::<Vec<_>>(),
        "notes": r.notes,
        "track": r.track.as_ref().map(track_json),
    })
}

/// One resource's track record (null without a ledger).
pub fn track_json(t: &TrackRecord) -> Value {
    json!({
        "forecasts": t.forecasts,
        "scored": t.scored,
        "by_lead": t.leads.iter().map(|l| json!({
            "lead": l.lead, "points": l.points, "mae": round(l.mae, 6), "naive_mae": round(l.naive_mae, 6),
            "relative_mae": l.relative_mae().map(|r| round(r, 4)), "coverage": round(l.coverage, 4), "bias": round(l.bias, 6),
        })).collect::<Vec<_>>(),
        "crossing_date_errors": t.dates.iter().map(|d| json!({
            "as_of": rfc3339(d.as_of), "threshold": d.threshold, "days": round(d.days, 2),
        })).collect::<Vec<_>>(),
        "outcomes": t.outcomes.iter().map(|o| json!({
            "as_of": rfc3339(o.as_of), "threshold": o.threshold, "probability": round(o.probability, 4), "happened": o.happened,
        })).collect::<Vec<_>>(),
        "drift": t.drift.as_ref().map(|d| json!({
            "since": rfc3339(d.since),
            "reason": d.reason,
            "seen": d.seen,
            "outside_band": d.outside,
            "moved": d.moved.iter().map(|m| json!({
                "threshold": m.threshold,
                "expected_days": m.expected_days.map(|x| round(x, 2)),
                "earliest_days": m.earliest_days.map(|x| round(x, 2)),
                "change": m.change,
            })).collect::<Vec<_>>(),
        })),
    })
}

/// The fleet's track record and what the run did with its ledger (null without a ledger).
pub fn fleet_track_json(run: &RunResult) -> Value {
    let Some(note) = &run.ledger else { return Value::Null };
    let f = run.fleet_track();
    let opt = |x: Option<f64>, d: i32| x.map(|x| round(x, d));
    json!({
        "ledger": {
            "place": note.place, "written": note.written, "backfilled": note.backfilled,
            "pruned": note.pruned, "unreadable": note.unreadable,
        },
        "earlier_runs": f.runs,
        "resources": f.resources,
        "by_lead": f.leads.iter().map(|l| json!({
            "lead": l.lead, "points": l.points, "coverage": round(l.coverage, 4), "bias": round(l.bias, 6),
            "relative_mae": opt(l.relative_mae, 4),
        })).collect::<Vec<_>>(),
        "brier": opt(f.brier, 4),
        "outcomes": f.outcomes,
        "reliability": f.reliability.iter().map(|b| json!({
            "from": b.from, "to": round(b.from + 0.1, 1), "count": b.count,
            "mean_probability": round(b.mean_probability, 4), "observed": round(b.observed, 4),
        })).collect::<Vec<_>>(),
        "crossing_dates": {"count": f.date_errors, "bias_days": opt(f.date_bias_days, 2), "abs_days": opt(f.date_abs_days, 2)},
        "moved": f.moved,
    })
}

/// One forecast the ledger kept (`headroom ledger show`).
pub fn past_forecast_json(f: &PastForecast) -> Value {
    json!({
        "resource": f.resource,
        "as_of": rfc3339(f.as_of),
        "model": f.model,
        "config_sha256": f.config_sha256,
        "level": f.level,
        "level_shift": f.level_shift.map(rfc3339),
        "headroom_days": f.headroom_days.map(|d| round(d, 2)),
        "forecast": f.outline.iter().map(|m| json!({
            "timestamp": rfc3339(m.t), "mean": m.mean, "lower": m.lower, "upper": m.upper,
        })).collect::<Vec<_>>(),
        "breaches": f.thresholds.iter().map(|t| json!({
            "name": t.name, "threshold": t.value, "expected": t.expected_at.map(rfc3339),
            "earliest": t.earliest_at.map(rfc3339), "probability": t.probability, "already_breached": t.already_breached,
        })).collect::<Vec<_>>(),
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
