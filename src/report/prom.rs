//! `headroom.prom`: Prometheus text format for the node-exporter textfile collector, so
//! Prometheus can alert on predicted breaches between batch runs. Gauges only, base units
//! (seconds), HELP and TYPE for every family, no sample timestamps (node-exporter refuses
//! them). "No crossing within the horizon" is `+Inf`, so `... - time() < 30*86400` never fires.

use std::fmt::Write;

use super::{Exporter, Report, ReportError};
use crate::outcome::{ResourceForecast, RunResult};

pub struct Textfile;

/// One metric family: name, help, and how to read its samples off a resource.
struct Family {
    name: &'static str,
    help: &'static str,
    per_threshold: bool,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "headroom_breach_expected_timestamp_seconds",
        help: "When the mean forecast first reaches the threshold (Unix seconds); +Inf: not within the horizon.",
        per_threshold: true,
    },
    Family {
        name: "headroom_breach_earliest_timestamp_seconds",
        help: "When the upper bound of the prediction interval first reaches the threshold (Unix seconds); +Inf: not within the horizon.",
        per_threshold: true,
    },
    Family {
        name: "headroom_breach_probability",
        help: "Estimated probability that the resource reaches the threshold within the horizon.",
        per_threshold: true,
    },
    Family {
        name: "headroom_threshold",
        help: "The threshold value, in the resource's units (bytes, cores... where it has a capacity).",
        per_threshold: true,
    },
    Family {
        name: "headroom_breach_already",
        help: "1 when the last observed value is already at or above the threshold.",
        per_threshold: true,
    },
    Family {
        name: "headroom_last_value",
        help: "The last observed value of the resource, in its units (bytes, cores... where it has a capacity).",
        per_threshold: false,
    },
    Family {
        name: "headroom_capacity",
        help: "The resource's capacity in its units (only resources with a capacity).",
        per_threshold: false,
    },
    Family {
        name: "headroom_headroom_seconds",
        help: "Seconds from the as-of time to the earliest crossing of any threshold; +Inf: none within the horizon.",
        per_threshold: false,
    },
    Family {
        name: "headroom_backtest_mase",
        help: "Out-of-sample MASE of the chosen model (below 1 beats seasonal naive).",
        per_threshold: false,
    },
];

impl Exporter for Textfile {
    fn file_name(&self) -> &'static str {
        "headroom.prom"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError> {
        let run = report.run;
        let mut s = String::new();
        family(
            &mut s,
            "headroom_forecast_as_of_timestamp_seconds",
            "The as-of time of the forecast run (Unix seconds).",
        );
        let _ = writeln!(s, "headroom_forecast_as_of_timestamp_seconds {}", run.as_of);
        family(&mut s, "headroom_forecast_resources", "Resources forecast in this run.");
        let _ = writeln!(s, "headroom_forecast_resources {}", run.resources.len());
        family(&mut s, "headroom_forecast_errors", "Resources or sources that could not be forecast in this run.");
        let _ = writeln!(s, "headroom_forecast_errors {}", run.errors.len());
        for f in FAMILIES {
            if f.name == "headroom_capacity" && run.resources.iter().all(|r| r.settings.capacity.is_none()) {
                continue;
            }
            family(&mut s, f.name, f.help);
            for r in &run.resources {
                let res = label(&r.name);
                if f.per_threshold {
                    for b in &r.breaches {
                        let v = match f.name {
                            "headroom_breach_expected_timestamp_seconds" => time(r.expected_at(b)),
                            "headroom_breach_earliest_timestamp_seconds" => time(r.earliest_at(b)),
                            "headroom_breach_probability" => num(b.probability),
                            "headroom_threshold" => num(b.threshold * scale(r)),
                            _ => num(if b.already_breached { 1.0 } else { 0.0 }),
                        };
                        let _ = writeln!(s, "{}{{resource=\"{res}\",threshold=\"{}\"}} {v}", f.name, label(&b.name));
                    }
                } else if let Some(v) = resource_value(f.name, r, run.as_of) {
                    let _ = writeln!(s, "{}{{resource=\"{res}\"}} {v}", f.name);
                }
            }
        }
        if run.ledger.is_some() {
            track_families(&mut s, run);
        }
        Ok(s.into_bytes())
    }
}

/// The track record's gauges (runs with a ledger): the fleet's scores by lead time, the
/// Brier score of past odds, and how far each crossing moved since the last run.
fn track_families(s: &mut String, run: &RunResult) {
    let f = run.fleet_track();
    family(s, "headroom_track_earlier_runs", "Earlier runs in the ledger scored by this run.");
    let _ = writeln!(s, "headroom_track_earlier_runs {}", f.runs);
    family(
        s,
        "headroom_track_coverage",
        "Share of observed values inside earlier forecasts' bands, by lead time (compare with the band's level).",
    );
    for l in &f.leads {
        let _ = writeln!(s, "headroom_track_coverage{{lead=\"{}\"}} {}", label(&l.lead), num(l.coverage));
    }
    family(
        s,
        "headroom_track_relative_mae",
        "Earlier forecasts' MAE over that of the seasonal naive issued the same day, by lead time (geometric mean over resources; below 1 is better).",
    );
    for l in &f.leads {
        if let Some(r) = l.relative_mae {
            let _ = writeln!(s, "headroom_track_relative_mae{{lead=\"{}\"}} {}", label(&l.lead), num(r));
        }
    }
    if let Some(b) = f.brier {
        family(
            s,
            "headroom_track_brier_score",
            "Brier score of earlier breach probabilities whose horizon has passed (0 is perfect).",
        );
        let _ = writeln!(s, "headroom_track_brier_score {}", num(b));
    }
    family(
        s,
        "headroom_track_moved_seconds",
        "How far the earliest crossing of the threshold moved since the last run (later is positive).",
    );
    for r in &run.resources {
        let Some(d) = r.track.as_ref().and_then(|t| t.drift.as_ref()) else { continue };
        for m in &d.moved {
            if let Some(days) = m.earliest_days {
                let _ = writeln!(
                    s,
                    "headroom_track_moved_seconds{{resource=\"{}\",threshold=\"{}\"}} {}",
                    label(&r.name),
                    label(&m.threshold),
                    num((days * 86_400.0).round())
                );
            }
        }
    }
}

fn resource_value(family: &str, r: &ResourceForecast, as_of: i64) -> Option<String> {
    match family {
        "headroom_last_value" => r.last_value.is_finite().then(|| num(r.last_value * scale(r))),
        "headroom_capacity" => r.settings.capacity.map(num),
        "headroom_headroom_seconds" => {
            let first = r.view(as_of).crossings.iter().filter_map(|c| c.earliest).min();
            Some(time(first.map(|t| (t - as_of).max(0))))
        }
        _ => r.backtest.as_ref().and_then(|b| b.mase).map(num),
    }
}

/// From the forecast's scale to the resource's units.
fn scale(r: &ResourceForecast) -> f64 {
    r.settings.capacity.unwrap_or(1.0)
}

fn family(s: &mut String, name: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} gauge");
}

fn time(t: Option<i64>) -> String {
    t.map_or("+Inf".to_string(), |t| t.to_string())
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// A label value: `\`, `"` and newlines escaped as the text format requires; other control
/// characters (which the format has no escape for) become spaces.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn well_formed() {
        let text = testdata::render(&Textfile, false);
        assert!(text.ends_with('\n'));
        assert!(text.contains("resource=\"web <script>alert(1)</script> & \\\"cpu\\\"\""), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value == "+Inf" || value == "NaN" || value.parse::<f64>().is_ok(), "{line}");
            assert!(line.split('}').count() <= 2, "{line}");
        }
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(helps, types);
        assert_eq!(label("a\\b\"c\nd\u{1}"), "a\\\\b\\\"c\\nd ");
    }
}
