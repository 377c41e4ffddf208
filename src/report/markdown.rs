//! `summary.md`: the ranking as a Markdown table, ready to paste into an issue or MR.

use std::fmt::Write;

use super::track::{self, Table, TrackTables};
use super::{Exporter, Report, ReportError, level, opt_day, percent, threshold};
use crate::outcome::{RunResult, View};
use crate::time::{day, rfc3339};

pub struct Summary;

impl Exporter for Summary {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError> {
        let run = report.run;
        let mut s = String::new();
        let _ = writeln!(s, "# Capacity forecast as of {}\n", rfc3339(run.as_of));
        let alerting = run.resources.iter().filter(|r| r.alert(run.as_of).is_some()).count();
        let _ = writeln!(
            s,
            "{} resources forecast, {} alerting within their alert window, {} errors.\n",
            run.resources.len(),
            alerting,
            run.errors.len()
        );
        let ledger = run.ledger.is_some();
        let _ = writeln!(
            s,
            "| # | resource | status | last | headroom (days) | soft: expected / earliest | hard: expected / earliest | P(hard) | capacity needed | model | MASE |{}",
            if ledger { " moved since last run |" } else { "" }
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|{}", if ledger { "---|" } else { "" });
        for (i, r) in run.resources.iter().enumerate() {
            let v = r.view(run.as_of);
            let cross = |name: &str| match v.crossings.iter().find(|c| c.breach.name == name) {
                None => "–".to_string(),
                Some(c) if c.breach.already_breached => "**already breached**".to_string(),
                Some(c) => format!("{} / {}", opt_day(c.expected), opt_day(c.earliest)),
            };
            let p_hard = v.p_hard.map_or("–".into(), percent);
            let mase = r.backtest.as_ref().and_then(|b| b.mase).map_or("–".into(), |m| format!("{m:.2}"));
            let needed = match (r.capacity_needed, v.act_by) {
                (Some(k), Some(by)) => format!("×{k:.2} by {}", day(by)),
                (Some(k), None) => format!("×{k:.2}"),
                _ => "–".into(),
            };
            let moved = if ledger { format!(" {} |", escape(&track::moved_cell(r))) } else { String::new() };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{}",
                i + 1,
                escape(&r.name),
                status_cell(&v),
                level(r, r.last_value),
                days_cell(v.headroom_days),
                cross("soft"),
                cross("hard"),
                p_hard,
                needed,
                escape(&r.model),
                mase,
                moved
            );
        }
        if let Some(t) = track::tables(run) {
            let _ = write!(s, "\n{}", track_markdown(&t));
        }
        if run.resources.iter().any(|r| !r.scenarios.is_empty()) {
            let _ = writeln!(s, "\n## What if\n\n{}", whatif_table(run));
        }
        if !run.errors.is_empty() {
            let _ = writeln!(s, "\n## Errors\n");
            for e in &run.errors {
                let _ = writeln!(s, "- {}", escape(&e.to_string()));
            }
        }
        let _ = writeln!(
            s,
            "\nHeadroom: days from the as-of date to the first upper-bound crossing of any threshold. \
             Expected: the mean forecast reaches the threshold; earliest: the upper bound of the \
             interval does. Generated {} from `{}`.",
            report.meta.generated_at, report.meta.config
        );
        Ok(s.into_bytes())
    }
}

/// Baseline and every scenario per resource and threshold: crossing dates, days gained
/// (positive: later than the baseline) and probability.
pub fn whatif_table(run: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| resource | scenario | threshold | expected / earliest | days gained: expected / earliest | probability |"
    );
    let _ = write!(s, "|---|---|---|---|---|---|");
    for r in run.resources.iter().filter(|r| !r.scenarios.is_empty()) {
        let v = r.view(run.as_of);
        for c in &v.crossings {
            let _ = write!(
                s,
                "\n| {} | baseline | {} {} | {} / {} | | {} |",
                escape(&r.name),
                escape(&c.breach.name),
                threshold(r, c.breach.threshold),
                opt_day(c.expected),
                opt_day(c.earliest),
                percent(c.breach.probability)
            );
        }
        for (name, moved) in &v.scenarios {
            for m in moved {
                let c = &m.crossing;
                let _ = write!(
                    s,
                    "\n| {} | {} | {} {} | {} / {} | {} / {} | {} |",
                    escape(&r.name),
                    escape(name),
                    escape(&c.breach.name),
                    threshold(r, c.breach.threshold),
                    opt_day(c.expected),
                    opt_day(c.earliest),
                    m.expected_moved,
                    m.earliest_moved,
                    percent(c.breach.probability)
                );
            }
        }
    }
    s
}

/// The track record section (`summary.md`, `headroom ledger score`).
pub fn track_markdown(t: &TrackTables) -> String {
    let mut s = format!("## Track record\n\n{}\n\n{}\n{}\n\n", escape(&t.intro), table(&t.leads), escape(&t.odds));
    if !t.reliability.rows.is_empty() {
        let _ = writeln!(s, "{}", table(&t.reliability));
    }
    let _ = writeln!(s, "{}", escape(&t.dates));
    if !t.moved.rows.is_empty() {
        let _ = writeln!(s, "\n### Moved since the last run\n\n{}", table(&t.moved));
    }
    s
}

/// A Markdown table, every cell escaped.
fn table(t: &Table) -> String {
    let mut s = format!("| {} |\n|{}\n", t.head.join(" | "), "---|".repeat(t.head.len()));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

fn status_cell(v: &View) -> String {
    match &v.alert {
        Some(c) if c.breach.already_breached => format!("**{}** already breached", escape(&c.breach.name)),
        Some(c) => format!("**{}** in {} d", escape(&c.breach.name), days_cell(c.earliest_days)),
        None => "ok".into(),
    }
}

/// Days to a crossing, as the headroom column prints them.
fn days_cell(days: Option<f64>) -> String {
    days.map_or("> horizon".into(), |d| format!("{d:.1}"))
}

/// Keeps a name from breaking the table or turning into HTML where the Markdown is
/// rendered (GitLab issues and MRs).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
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
    fn snapshot() {
        insta::assert_snapshot!(testdata::render(&Summary, false));
    }
}
