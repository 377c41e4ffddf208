//! What the tracker should say after a run: one issue per group of resources forecast to cross
//! a threshold, found again by a hidden marker in its description (not its title), updated when
//! its text changes, commented on only when something a person should know changed, closed
//! after `close_after` runs in a row without a crossing, reopened when the breach returns soon.
//! The plan is plain data (calls to make), so a dry run prints exactly what a real run sends.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::IssuesConfig;
use crate::outcome::{Crossing, ResourceForecast, RunResult, rank_order};
use crate::report::markdown::escape;
use crate::report::{opt_day, percent, threshold};
use crate::time::{day, format_duration};

/// Where an uploaded plot's Markdown goes in a description or comment.
pub const PLOT_SLOT: &str = "<!-- headroom-plot -->";
/// Opens the marker comment that ties an issue to its group.
const MARKER_OPEN: &str = "<!-- headroom-issue ";
/// Resources listed in one issue; the rest are counted and left to the report.
const MEMBERS_SHOWN: usize = 50;
/// The scoped label prefix of the level reached.
pub const LEVEL_SCOPE: &str = "capacity::";

/// An issue as the tracker holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub iid: u64,
    pub title: String,
    pub description: String,
    pub open: bool,
    pub labels: Vec<String>,
    pub closed_at: Option<i64>,
    pub web_url: String,
}

/// The state headroom keeps in an issue's description between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Marker {
    /// The group's name under `group_by`.
    pub key: String,
    /// The run that last wrote the issue.
    pub as_of: i64,
    /// The highest threshold crossed within the alert window at that run (None: none).
    pub level: Option<String>,
    /// Runs in a row without a crossing.
    pub clean: u32,
    /// Closed by headroom (a person's closing is told apart).
    #[serde(default)]
    pub closed: bool,
    /// What the issue last told people (at its creation or its last comment): later runs
    /// comment when the forecast has moved far enough from it.
    pub told: Told,
    /// SHA-256 (16 hex) of the description's text, so an unchanged forecast is not re-sent.
    pub digest: String,
}

/// The lead crossing of a group, as an issue states it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Told {
    pub level: Option<String>,
    pub expected: Option<i64>,
    pub earliest: Option<i64>,
    pub probability: f64,
}

impl Marker {
    /// The marker as it ends a description: JSON in an HTML comment (hidden where rendered),
    /// with `>` escaped so no value can end the comment.
    pub fn render(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default().replace('>', "\\u003e");
        format!("{MARKER_OPEN}{json} -->")
    }

    /// The marker of a description, if it has a readable one.
    pub fn find(description: &str) -> Option<Marker> {
        let start = description.rfind(MARKER_OPEN)? + MARKER_OPEN.len();
        let end = description[start..].find("-->")? + start;
        serde_json::from_str(description[start..end].trim()).ok()
    }
}

/// One call to the tracker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `POST /projects/:id/uploads`: its Markdown replaces [`PLOT_SLOT`] in the next create,
    /// edit or note of the same group.
    Upload { file: PathBuf },
    /// `POST /projects/:id/issues`.
    Create { title: String, description: String, labels: Vec<String> },
    /// `PUT /projects/:id/issues/:iid`.
    Edit {
        iid: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        add_labels: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        remove_labels: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        state_event: Option<&'static str>,
    },
    /// `POST /projects/:id/issues/:iid/notes`.
    Note { iid: u64, body: String },
}

/// What happens to one group's issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub key: String,
    /// `create`, `update`, `comment` (update with a comment), `close`, `reopen`, `leave`
    /// (something stops headroom from acting), `none` (nothing changed).
    pub action: &'static str,
    pub iid: Option<u64>,
    pub title: String,
    /// Why, in a few words.
    pub why: String,
    pub calls: Vec<Call>,
}

/// The plan for a run, and what stops part of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub planned: Vec<Planned>,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

/// One group of this run's resources.
struct Group<'a> {
    key: String,
    /// Ranked: most urgent first.
    members: Vec<&'a ResourceForecast>,
    /// The crossing that puts the group at risk: the highest level, then the earliest.
    lead: Option<(&'a ResourceForecast, Crossing<'a>)>,
}

/// The highest threshold whose earliest crossing lies within the resource's alert window
/// and whose probability reaches `min_probability`.
fn alerting<'a>(r: &'a ResourceForecast, as_of: i64, min_probability: f64) -> Option<Crossing<'a>> {
    r.alert_likely(as_of, min_probability).map(|b| r.crossing(b, as_of))
}

/// Ranks threshold names: hard above soft above any other.
fn level_rank(name: &str) -> u8 {
    match name {
        "hard" => 2,
        "soft" => 1,
        _ => 0,
    }
}

fn groups<'a>(run: &'a RunResult, cfg: &IssuesConfig, notes: &mut Vec<String>) -> Vec<Group<'a>> {
    let mut by_key: BTreeMap<String, Vec<&ResourceForecast>> = BTreeMap::new();
    let mut unnamed = vec![];
    for r in &run.resources {
        let key = r.group(&cfg.group_by).unwrap_or_else(|| {
            unnamed.push(r.name.clone());
            r.name.clone()
        });
        by_key.entry(key).or_default().push(r);
    }
    if !unnamed.is_empty() {
        notes.push(format!(
            "[issues] group_by = {:?} names a label {} resources lack ({}{}): each is its own group",
            cfg.group_by,
            unnamed.len(),
            unnamed.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
            if unnamed.len() > 3 { ", ..." } else { "" }
        ));
    }
    by_key
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by(|a, b| rank_order(a, b, run.as_of));
            let lead = members
                .iter()
                .filter_map(|r| alerting(r, run.as_of, cfg.min_probability).map(|c| (*r, c)))
                .min_by(|(_, a), (_, b)| {
                    level_rank(&b.breach.name).cmp(&level_rank(&a.breach.name)).then(a.earliest.cmp(&b.earliest))
                });
            Group { key, members, lead }
        })
        .collect()
}

/// Plans the calls that bring the tracker's issues in line with `run`. `issues` are the
/// tracker's issues carrying the first configured label; `plots` the PNG file of each
/// plotted resource.
pub fn plan(run: &RunResult, cfg: &IssuesConfig, issues: &[Issue], plots: &BTreeMap<String, PathBuf>) -> Plan {
    let mut out = Plan::default();
    let groups = groups(run, cfg, &mut out.notes);
    // The latest issue of each key (a person may have copied one).
    let mut ours: BTreeMap<String, (&Issue, Marker)> = BTreeMap::new();
    for i in issues {
        if let Some(m) = Marker::find(&i.description) {
            match ours.get(&m.key) {
                Some((had, _)) if had.iid > i.iid => {}
                _ => {
                    ours.insert(m.key.clone(), (i, m));
                }
            }
        }
    }
    let mut created = 0;
    for g in &groups {
        let existing = ours.remove(&g.key);
        let p = plan_group(run, cfg, g, existing, plots);
        if p.action == "create" {
            created += 1;
            if created > cfg.max_new {
                continue;
            }
        }
        if p.action != "none" {
            out.planned.push(p);
        }
    }
    if created > cfg.max_new {
        out.errors.push(format!(
            "[issues] {created} groups would open a new issue, more than max_new = {}: opened the first {} \
             (by group name); check the thresholds, or raise max_new",
            cfg.max_new, cfg.max_new
        ));
    }
    // Open issues of groups this run did not forecast (failed, removed, or another shard).
    for (key, (issue, _)) in ours {
        if issue.open {
            out.planned.push(Planned {
                key,
                action: "leave",
                iid: Some(issue.iid),
                title: issue.title.clone(),
                why: "no resource of this group was forecast in this run".into(),
                calls: vec![],
            });
        }
    }
    out
}

fn plan_group(
    run: &RunResult,
    cfg: &IssuesConfig,
    g: &Group,
    existing: Option<(&Issue, Marker)>,
    plots: &BTreeMap<String, PathBuf>,
) -> Planned {
    let told = g.lead.as_ref().map_or_else(Told::default, |(_, c)| Told {
        level: Some(c.breach.name.clone()),
        expected: c.expected,
        earliest: c.earliest,
        probability: c.breach.probability,
    });
    let title = match &told.level {
        Some(l) => format!("Capacity: {} forecast to cross its {l} threshold", g.key),
        None => format!("Capacity: {} no longer forecast to cross", g.key),
    };
    let plot = g.lead.as_ref().map_or(g.members.first().copied(), |(r, _)| Some(*r)).and_then(|r| plots.get(&r.name));
    let p = GroupPlan { run, cfg, g, as_of: run.as_of, told, title, plot };
    let Some((issue, old)) = existing else {
        if p.told.level.is_none() {
            return p.planned("none", None, p.title.clone(), "no crossing".into(), vec![]);
        }
        return p.planned("create", None, p.title.clone(), crossing_phrase(&p.told, p.as_of), p.create());
    };
    let iid = Some(issue.iid);
    if p.as_of < old.as_of {
        let why = format!("written by a later run (as of {})", day(old.as_of));
        let action = if issue.open && p.told.level.is_some() { "leave" } else { "none" };
        return p.planned(action, iid, issue.title.clone(), why, vec![]);
    }
    if issue.open && issue.labels.contains(&cfg.keep_open_label) {
        let why = format!("labelled {}: headroom neither edits nor closes it", cfg.keep_open_label);
        return p.planned("leave", iid, issue.title.clone(), why, vec![]);
    }
    if issue.open { p.open(issue, &old) } else { p.closed(issue, &old) }
}

/// What one group's issue is planned from: the run, the group, what its forecast tells and
/// the plot to upload.
struct GroupPlan<'a> {
    run: &'a RunResult,
    cfg: &'a IssuesConfig,
    g: &'a Group<'a>,
    as_of: i64,
    told: Told,
    /// The title the forecast gives the issue.
    title: String,
    plot: Option<&'a PathBuf>,
}

impl GroupPlan<'_> {
    fn planned(&self, action: &'static str, iid: Option<u64>, title: String, why: String, calls: Vec<Call>) -> Planned {
        Planned { key: self.g.key.clone(), action, iid, title, why, calls }
    }

    fn upload(&self, calls: &mut Vec<Call>) {
        if let Some(p) = self.plot {
            calls.push(Call::Upload { file: p.clone() });
        }
    }

    fn level_label(&self) -> Option<String> {
        self.told.level.as_ref().map(|l| format!("{LEVEL_SCOPE}{l}"))
    }

    /// A new breach's description: its marker tells what it found, no clean runs yet.
    fn fresh_description(&self) -> String {
        let fresh = Marker {
            key: self.g.key.clone(),
            as_of: self.as_of,
            level: self.told.level.clone(),
            told: self.told.clone(),
            ..Marker::default()
        };
        describe(self.run, self.cfg, self.g, fresh, self.plot.is_some())
    }

    /// The calls that open a new issue.
    fn create(&self) -> Vec<Call> {
        let mut labels = self.cfg.labels.clone();
        labels.extend(self.level_label());
        let mut calls = vec![];
        self.upload(&mut calls);
        calls.push(Call::Create { title: self.title.clone(), description: self.fresh_description(), labels });
        calls
    }

    /// A closed issue: left closed, reopened when the breach returns soon after headroom
    /// closed it, or a new issue when it was closed long ago.
    fn closed(&self, issue: &Issue, old: &Marker) -> Planned {
        let (as_of, cfg, iid) = (self.as_of, self.cfg, Some(issue.iid));
        let Some(level) = &self.told.level else {
            return self.planned("none", iid, issue.title.clone(), "closed, no crossing".into(), vec![]);
        };
        let since_closed = issue.closed_at.map(|t| as_of - t);
        if since_closed.is_none_or(|d| d > cfg.reopen_within) {
            // Long closed: a new breach is a new issue (the marker of the old one is left).
            let why = format!(
                "{}; #{} was closed more than {} ago",
                crossing_phrase(&self.told, as_of),
                issue.iid,
                format_duration(cfg.reopen_within)
            );
            return self.planned("create", None, self.title.clone(), why, self.create());
        }
        if !old.closed {
            let why = format!(
                "closed by a person {} ago: not reopened within reopen_within ({})",
                format_duration(since_closed.unwrap_or(0).max(0)),
                format_duration(cfg.reopen_within)
            );
            return self.planned("leave", iid, issue.title.clone(), why, vec![]);
        }
        let mut calls = vec![];
        self.upload(&mut calls);
        calls.push(Call::Edit {
            iid: issue.iid,
            title: (self.title != issue.title).then(|| self.title.clone()),
            description: Some(self.fresh_description()),
            add_labels: self.level_label().into_iter().filter(|l| !issue.labels.contains(l)).collect(),
            remove_labels: stale_levels(&issue.labels, level),
            state_event: Some("reopen"),
        });
        let body = format!(
            "**Reopened**: the forecast as of {} crosses again: {}.",
            day(as_of),
            crossing_phrase(&self.told, as_of)
        );
        calls.push(Call::Note { iid: issue.iid, body });
        self.planned("reopen", iid, self.title.clone(), crossing_phrase(&self.told, as_of), calls)
    }

    /// An open issue of ours: unchanged, updated, commented on when the forecast moved
    /// notably, or closed after enough clean runs.
    fn open(&self, issue: &Issue, old: &Marker) -> Planned {
        let (as_of, cfg, told, iid) = (self.as_of, self.cfg, &self.told, Some(issue.iid));
        let clean = match &told.level {
            Some(_) => 0,
            None if as_of == old.as_of && old.level.is_none() => old.clean,
            None => old.clean + 1,
        };
        let changes = notable(&old.told, told, cfg);
        let closing = told.level.is_none() && clean >= cfg.close_after;
        let marker = Marker {
            key: self.g.key.clone(),
            as_of,
            level: told.level.clone(),
            clean,
            closed: closing,
            told: if changes.is_empty() { old.told.clone() } else { told.clone() },
            digest: String::new(),
        };
        let description = describe(self.run, cfg, self.g, marker.clone(), self.plot.is_some());
        if Marker::find(&description).unwrap_or(marker) == *old {
            return self.planned("none", iid, issue.title.clone(), "unchanged".into(), vec![]);
        }
        let mut calls = vec![];
        // The plot changes with every as-of; it is uploaded only when the text changes anyway.
        if !closing {
            self.upload(&mut calls);
        }
        let remove_labels = match &told.level {
            Some(l) => stale_levels(&issue.labels, l),
            None => issue.labels.iter().filter(|l| l.starts_with(LEVEL_SCOPE)).cloned().collect(),
        };
        calls.push(Call::Edit {
            iid: issue.iid,
            title: (!closing && self.title != issue.title).then(|| self.title.clone()),
            description: Some(description),
            add_labels: self.level_label().into_iter().filter(|l| !issue.labels.contains(l)).collect(),
            remove_labels,
            state_event: closing.then_some("close"),
        });
        if closing {
            let body = format!(
                "**Closing**: no crossing within the alert window for {clean} runs in a row (as of {}). \
                 headroom reopens this issue if the breach returns within {}.",
                day(as_of),
                format_duration(cfg.reopen_within)
            );
            calls.push(Call::Note { iid: issue.iid, body });
            return self.planned("close", iid, issue.title.clone(), format!("{clean} runs without a crossing"), calls);
        }
        if !changes.is_empty() {
            let why_moved =
                self.g.lead.as_ref().and_then(|(r, _)| r.track.as_ref()?.drift.as_ref().map(|d| d.reason.clone()));
            let mut body = format!("**Forecast changed** (as of {}):\n", day(as_of));
            for c in &changes {
                let _ = writeln!(body, "- {c}");
            }
            if let Some(why) = why_moved.filter(|_| told.level.is_some()) {
                let _ = writeln!(body, "\nMain reason, from the track record: {why}.");
            }
            if told.level.is_none() {
                let _ = writeln!(
                    body,
                    "\nThe issue closes after {} runs in a row without a crossing ({clean} so far).",
                    cfg.close_after
                );
            }
            calls.push(Call::Note { iid: issue.iid, body });
            return self.planned("comment", iid, self.title.clone(), changes.join("; "), calls);
        }
        let why = match &told.level {
            Some(_) => crossing_phrase(told, as_of),
            None => format!("no crossing for {clean} of {} runs before closing", cfg.close_after),
        };
        self.planned("update", iid, self.title.clone(), why, calls)
    }
}

/// Level labels of other levels than `level`.
fn stale_levels(labels: &[String], level: &str) -> Vec<String> {
    let keep = format!("{LEVEL_SCOPE}{level}");
    labels.iter().filter(|l| l.starts_with(LEVEL_SCOPE) && **l != keep).cloned().collect()
}

/// What changed enough since the issue last told people to be worth a comment.
fn notable(was: &Told, now: &Told, cfg: &IssuesConfig) -> Vec<String> {
    let mut out = vec![];
    if was.level != now.level {
        let name = |l: &Option<String>| l.clone().unwrap_or_else(|| "no crossing".into());
        out.push(format!("level: {} → {}", name(&was.level), name(&now.level)));
        return out;
    }
    if now.level.is_none() {
        return out;
    }
    for (what, a, b) in
        [("earliest crossing", was.earliest, now.earliest), ("expected crossing", was.expected, now.expected)]
    {
        match (a, b) {
            (Some(a), Some(b)) if (b - a).abs() > cfg.notify_moved => {
                let days = (b - a) as f64 / 86_400.0;
                let dir = if days < 0.0 { "earlier" } else { "later" };
                out.push(format!("{what} moved {} → {} ({:.0} days {dir})", day(a), day(b), days.abs()));
            }
            (Some(a), None) => out.push(format!("{what} {} → beyond the horizon", day(a))),
            (None, Some(b)) => out.push(format!("{what} now {}", day(b))),
            _ => {}
        }
    }
    for bound in &cfg.probability_bounds {
        if (was.probability >= *bound) != (now.probability >= *bound) {
            out.push(format!(
                "probability {} → {} (crossed {})",
                percent(was.probability),
                percent(now.probability),
                percent(*bound)
            ));
        }
    }
    out
}

/// `hard: earliest 2026-11-13 (in 12 d), expected 2026-11-20, probability 93 %`.
fn crossing_phrase(t: &Told, as_of: i64) -> String {
    let Some(level) = &t.level else { return "no crossing".into() };
    let in_days = |x: Option<i64>| {
        x.map_or("beyond the horizon".into(), |x| {
            format!("{} (in {:.0} d)", day(x), ((x - as_of) as f64 / 86_400.0).max(0.0))
        })
    };
    format!(
        "{level}: earliest {}, expected {}, probability {}",
        in_days(t.earliest),
        t.expected.map_or("beyond the horizon".into(), day),
        percent(t.probability)
    )
}

/// The description: a summary of the lead crossing, the plot, every member resource, a
/// link to the report, and the marker (with the digest of everything before it).
fn describe(run: &RunResult, cfg: &IssuesConfig, g: &Group, mut marker: Marker, plot: bool) -> String {
    let as_of = run.as_of;
    let mut s = String::new();
    match &g.lead {
        Some((r, c)) => {
            let _ = writeln!(
                s,
                "**{}** is forecast to cross its **{}** threshold ({}) as early as **{}**, as of {}.\n",
                escape(&r.name),
                escape(&c.breach.name),
                escape(&threshold(r, c.breach.threshold)),
                opt_day(c.earliest),
                day(as_of)
            );
            let _ = writeln!(s, "| | |\n|---|---|");
            let when = if c.breach.already_breached { "already reached".to_string() } else { opt_day(c.earliest) };
            let _ =
                writeln!(s, "| Earliest crossing (upper bound of the {} band) | {when} |", percent(r.settings.level));
            let _ = writeln!(s, "| Expected crossing (mean path) | {} |", opt_day(c.expected));
            let _ = writeln!(s, "| Probability of crossing within the horizon | {} |", percent(c.breach.probability));
            if let Some(k) = r.capacity_needed {
                let _ = writeln!(s, "| Capacity needed to stay below the highest threshold | ×{k:.2} |");
            }
            let lead_time = match r.settings.lead_time {
                t if t > 0 => format!("lead time {}", format_duration(t)),
                _ => "no lead time set".into(),
            };
            let passed = if c.act_by.is_some_and(|t| t < as_of) { " (passed)" } else { "" };
            let _ = writeln!(s, "| Last date to act ({lead_time}) | {}{passed} |", opt_day(c.act_by));
            let score =
                r.backtest.as_ref().and_then(|b| b.mase).map_or(String::new(), |m| format!(" (backtest MASE {m:.2})"));
            let _ = writeln!(s, "| Model | {}{score} |", escape(&r.model));
            if let Some(t) = r.track.as_ref().filter(|t| t.forecasts > 0) {
                let leads: Vec<String> = t
                    .leads
                    .iter()
                    .filter(|l| l.points > 0)
                    .map(|l| format!("{} {}", l.lead, percent(l.coverage)))
                    .collect();
                let _ = writeln!(
                    s,
                    "| Track record | {} earlier forecasts; band held: {} |",
                    t.forecasts,
                    if leads.is_empty() { "not yet scored".into() } else { leads.join(", ") }
                );
            }
            s.push('\n');
        }
        None => {
            let _ = writeln!(
                s,
                "No resource of **{}** is forecast to cross a threshold within its alert window, as of {} \
                 ({} of {} runs in a row before this issue closes).\n",
                escape(&g.key),
                day(as_of),
                marker.clean,
                cfg.close_after
            );
        }
    }
    if plot {
        let _ = writeln!(s, "{PLOT_SLOT}\n");
    }
    let _ = writeln!(s, "| Resource | Status | Threshold | Earliest | Expected | Probability | Act by | Model |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in g.members.iter().take(MEMBERS_SHOWN) {
        let c = alerting(r, as_of, cfg.min_probability).or_else(|| r.breaches.last().map(|b| r.crossing(b, as_of)));
        let status = match &c {
            Some(c) if c.earliest.is_some_and(|t| t <= r.alert_until(as_of)) => c.breach.name.as_str(),
            _ => "ok",
        };
        let cells = match c {
            Some(c) => [
                threshold(r, c.breach.threshold),
                opt_day(c.earliest),
                opt_day(c.expected),
                percent(c.breach.probability),
                opt_day(c.act_by),
            ],
            None => ["–".into(), "–".into(), "–".into(), "–".into(), "–".into()],
        };
        let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
        let _ = writeln!(s, "| {} | {status} | {} | {} |", escape(&r.name), cells.join(" | "), escape(&r.model));
    }
    if g.members.len() > MEMBERS_SHOWN {
        let _ = writeln!(s, "\nand {} more in the report.", g.members.len() - MEMBERS_SHOWN);
    }
    let link = cfg.report_url.as_ref().map_or(String::new(), |u| format!("[Full report]({u}/index.html) · "));
    let _ = writeln!(s, "\n{link}Forecast by headroom as of {}; this issue is kept up to date by it.", day(as_of));
    let _ = writeln!(s, "Label it `{}` to stop headroom from editing or closing it.", escape(&cfg.keep_open_label));
    marker.digest = format!("{:x}", Sha256::digest(s.as_bytes()))[..16].to_string();
    s.push('\n');
    s.push_str(&marker.render());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    fn cfg() -> IssuesConfig {
        IssuesConfig {
            url: "http://gitlab.test".into(),
            project: "infra/capacity".into(),
            token_env: "T".into(),
            labels: vec!["capacity-planning".into()],
            group_by: "{1}".into(),
            min_probability: 0.0,
            notify_moved: 7 * 86_400,
            probability_bounds: vec![0.5, 0.9],
            close_after: 2,
            reopen_within: 30 * 86_400,
            keep_open_label: "keep-open".into(),
            report_url: None,
            max_new: 25,
            timeout: 30,
            retries: 3,
        }
    }

    /// The `pool` group's issue (its resource is already past hard), as `state` left it.
    fn pool_issue(open: bool, closed_by_headroom: bool, closed_days_ago: i64, labels: &[&str], as_of: i64) -> Issue {
        let m = Marker {
            key: "pool".into(),
            as_of: as_of - 7 * 86_400,
            level: None,
            clean: 2,
            closed: closed_by_headroom,
            ..Marker::default()
        };
        Issue {
            iid: 7,
            title: "Capacity: pool forecast to cross its hard threshold".into(),
            description: format!("text\n{}", m.render()),
            open,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            closed_at: (!open).then_some(as_of - closed_days_ago * 86_400),
            web_url: String::new(),
        }
    }

    fn action_of(p: &Plan, key: &str) -> Option<&'static str> {
        p.planned.iter().find(|x| x.key == key).map(|x| x.action)
    }

    #[test]
    fn closed_issues_are_reopened_left_or_replaced_by_who_closed_them_and_when() {
        let run = testdata::run();
        let plots = BTreeMap::new();
        let c = cfg();
        let fresh = plan(&run, &c, &[], &plots);
        assert_eq!(action_of(&fresh, "pool"), Some("create"));
        // headroom closed it 5 days ago: reopened, one edit and one note.
        let p = plan(&run, &c, &[pool_issue(false, true, 5, &["capacity-planning"], run.as_of)], &plots);
        let pool = p.planned.iter().find(|x| x.key == "pool").unwrap();
        assert_eq!(pool.action, "reopen");
        assert!(matches!(pool.calls[0], Call::Edit { state_event: Some("reopen"), .. }));
        assert!(matches!(pool.calls[1], Call::Note { .. }));
        // A person closed it 5 days ago: left closed until reopen_within has passed.
        let p = plan(&run, &c, &[pool_issue(false, false, 5, &["capacity-planning"], run.as_of)], &plots);
        assert_eq!(action_of(&p, "pool"), Some("leave"));
        assert!(p.planned.iter().all(|x| x.key != "pool" || x.calls.is_empty()));
        // Closed 40 days ago, by anyone: a new issue.
        for by_headroom in [true, false] {
            let p = plan(&run, &c, &[pool_issue(false, by_headroom, 40, &["capacity-planning"], run.as_of)], &plots);
            assert_eq!(action_of(&p, "pool"), Some("create"));
        }
        // Open and labelled keep-open: nothing sent.
        let p = plan(&run, &c, &[pool_issue(true, false, 0, &["capacity-planning", "keep-open"], run.as_of)], &plots);
        let pool = p.planned.iter().find(|x| x.key == "pool").unwrap();
        assert_eq!((pool.action, pool.calls.len()), ("leave", 0));
        // An issue written by a later run is not taken back.
        let mut later = pool_issue(true, false, 0, &["capacity-planning"], run.as_of);
        later.description =
            format!("x\n{}", Marker { key: "pool".into(), as_of: run.as_of + 86_400, ..Marker::default() }.render());
        let p = plan(&run, &c, &[later], &plots);
        assert!(p.planned.iter().all(|x| x.key != "pool" || x.calls.is_empty()));
    }

    #[test]
    fn new_issues_are_capped_by_max_new() {
        let run = testdata::run();
        let c = IssuesConfig { max_new: 0, ..cfg() };
        let p = plan(&run, &c, &[], &BTreeMap::new());
        assert!(p.planned.iter().all(|x| x.action != "create"));
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert!(p.errors[0].contains("max_new = 0"), "{}", p.errors[0]);
    }

    #[test]
    fn comments_need_a_move_a_level_or_a_probability_bound() {
        let c = cfg();
        let told = |level: &str, days: i64, p: f64| Told {
            level: Some(level.into()),
            expected: Some(days * 86_400),
            earliest: Some(days * 86_400),
            probability: p,
        };
        assert!(notable(&told("hard", 20, 0.95), &told("hard", 14, 0.95), &c).is_empty(), "6 days: no comment");
        let moved = notable(&told("hard", 20, 0.95), &told("hard", 12, 0.95), &c);
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert!(moved[0].contains("8 days earlier"), "{moved:?}");
        let level = notable(&told("soft", 20, 0.95), &told("hard", 20, 0.95), &c);
        assert_eq!(level, ["level: soft → hard"]);
        let odds = notable(&told("hard", 20, 0.45), &told("hard", 20, 0.55), &c);
        assert!(odds.len() == 1 && odds[0].contains("crossed 50 %"), "{odds:?}");
    }

    #[test]
    fn group_templates_read_labels_and_name_parts() {
        let mut r = testdata::run().resources.remove(0);
        r.name = "patroni/shard_cpu".into();
        r.labels.insert("type".into(), "patroni".into());
        assert_eq!(r.group("{type}").as_deref(), Some("patroni"));
        assert_eq!(r.group("{1}").as_deref(), Some("patroni"));
        assert_eq!(r.group("{2}@{type}").as_deref(), Some("shard_cpu@patroni"));
        assert_eq!(r.group("{name}").as_deref(), Some("patroni/shard_cpu"));
        assert_eq!(r.group("{region}"), None);
        assert_eq!(r.group("{3}"), None);
    }

    #[test]
    fn marker_round_trips_and_cannot_be_closed_by_a_value() {
        let m = Marker { key: "a-->b <x>".into(), as_of: 5, level: Some("hard".into()), clean: 2, ..Marker::default() };
        let text = format!("body\n\n{}", m.render());
        assert!(!text[..text.len() - 3].contains("-->"), "{text}");
        assert_eq!(Marker::find(&text), Some(m));
        assert_eq!(Marker::find("no marker"), None);
        assert_eq!(Marker::find("<!-- headroom-issue {not json} -->"), None);
    }
}
