//! The track record as tables (lead times, reliability, moved since the last run), built
//! once from the run and rendered by `summary.md` and `index.html` alike.

use crate::outcome::{ResourceForecast, RunResult};
use crate::time::day;
use crate::track::{Drift, Moved};

/// A table of plain text cells; each exporter escapes and lays it out.
pub struct Table {
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// Everything the reports say about the track record.
pub struct TrackTables {
    /// One paragraph: how many runs and resources, where the ledger is.
    pub intro: String,
    pub leads: Table,
    /// A sentence on the breach odds (Brier score) and the reliability table.
    pub odds: String,
    pub reliability: Table,
    /// A sentence on crossing dates.
    pub dates: String,
    pub moved: Table,
}

/// The tables, or None for a run without a ledger.
pub fn tables(run: &RunResult) -> Option<TrackTables> {
    let note = run.ledger.as_ref()?;
    let f = run.fleet_track();
    let level = run.resources.first().map_or(0.8, |r| r.settings.level);
    let mut intro = format!(
        "{} earlier run{} in the ledger {}; {} resource{} with a scored forecast.",
        f.runs,
        if f.runs == 1 { "" } else { "s" },
        note.place,
        f.resources,
        if f.resources == 1 { "" } else { "s" }
    );
    if note.backfilled > 0 {
        intro.push_str(&format!(" The empty ledger was backfilled with {} weekly runs.", note.backfilled));
    }
    if note.unreadable > 0 {
        intro.push_str(&format!(" {} ledger file(s) could not be read (see errors).", note.unreadable));
    }
    let leads = Table {
        head: vec!["lead time", "points", "coverage", "MAE vs seasonal naive", "bias"],
        rows: f
            .leads
            .iter()
            .map(|l| {
                vec![
                    l.lead.clone(),
                    l.points.to_string(),
                    format!("{:.0} % (nominal {:.0} %)", 100.0 * l.coverage, 100.0 * level),
                    l.relative_mae.map_or("–".into(), |r| format!("{r:.2}")),
                    format!("{:+.4}", l.bias),
                ]
            })
            .collect(),
    };
    let odds = match f.brier {
        Some(b) => format!(
            "Breach odds: Brier score {b:.3} over {} forecast{} whose horizon has passed (0 is perfect; always saying 50 % scores 0.25).",
            f.outcomes,
            if f.outcomes == 1 { "" } else { "s" }
        ),
        None => "Breach odds: no earlier forecast's horizon has passed yet (odds are scored once it has).".into(),
    };
    let reliability = Table {
        head: vec!["predicted", "forecasts", "mean predicted", "observed"],
        rows: f
            .reliability
            .iter()
            .map(|b| {
                vec![
                    format!("{:.0}-{:.0} %", 100.0 * b.from, 100.0 * (b.from + 0.1)),
                    b.count.to_string(),
                    format!("{:.0} %", 100.0 * b.mean_probability),
                    format!("{:.0} %", 100.0 * b.observed),
                ]
            })
            .collect(),
    };
    let dates = match (f.date_bias_days, f.date_abs_days) {
        (Some(bias), Some(abs)) => format!(
            "Crossing dates: {} expected crossing{} happened; on average {:.1} days {} than forecast (mean absolute error {abs:.1} days).",
            f.date_errors,
            if f.date_errors == 1 { "" } else { "s" },
            bias.abs(),
            if bias >= 0.0 { "sooner" } else { "later" }
        ),
        _ => "Crossing dates: no expected crossing has happened within a horizon that has passed.".into(),
    };
    let mut rows = vec![];
    for r in &run.resources {
        let Some(d) = r.track.as_ref().and_then(|t| t.drift.as_ref()) else { continue };
        for m in d.moved.iter().filter(|m| notable(m)) {
            rows.push(vec![
                r.name.clone(),
                m.threshold.clone(),
                signed_days(m.expected_days, &m.change),
                signed_days(m.earliest_days, &m.change),
                d.reason.clone(),
                day(d.since),
            ]);
        }
    }
    let moved =
        Table { head: vec!["resource", "threshold", "expected moved", "earliest moved", "main reason", "since"], rows };
    Some(TrackTables { intro, leads, odds, reliability, dates, moved })
}

/// A move worth a row: more than half a day, or a crossing that appeared or went.
fn notable(m: &Moved) -> bool {
    !m.change.is_empty() || [m.expected_days, m.earliest_days].iter().flatten().any(|d| d.abs() > 0.5)
}

fn signed_days(d: Option<f64>, change: &str) -> String {
    match d {
        Some(d) => format!("{d:+.1} d"),
        None if !change.is_empty() => change.to_string(),
        None => "–".into(),
    }
}

/// The ranking's "moved" cell: the largest move of any crossing since the last run (later is
/// positive), a crossing that appeared or went, or `–`.
pub fn moved_cell(r: &ResourceForecast) -> String {
    let Some(d) = r.track.as_ref().and_then(|t| t.drift.as_ref()) else { return "–".into() };
    largest(d).unwrap_or_else(|| "–".into())
}

fn largest(d: &Drift) -> Option<String> {
    if let Some(m) = d.moved.iter().find(|m| !m.change.is_empty()) {
        return Some(format!("{} ({})", m.change, m.threshold));
    }
    let (m, days) = d
        .moved
        .iter()
        .filter_map(|m| m.earliest_days.or(m.expected_days).map(|x| (m, x)))
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
    (days.abs() > 0.05).then(|| format!("{days:+.1} d ({})", m.threshold))
}
