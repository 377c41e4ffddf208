//! The run, stage by stage: read every source, prepare each resource's series, fit and
//! forecast it, analyse its thresholds. One resource's failure is recorded and the rest go on.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::breach::{self, Breach};
use crate::config::{CAPACITY, Config, EventKind, FailOn, ResourceEntry, ResourceSettings, SourceConfig};
use crate::model::changepoint;
use crate::model::select::{self, Backtest};
use crate::model::{ErrorPaths, Forecast, seasonal_periods};
use crate::scenario::Scenario;
use crate::series::{self, PrepareOptions, Series};
use crate::source::file::{self, FileOptions};
use crate::source::prometheus::{self, Prometheus};
use crate::source::{Pulled, RawSeries, SourceError};
use crate::time::{format_duration, rfc3339};

/// One resource, forecast: a small summary kept for the whole run (ranking and reports), and
/// the full detail (history, paths, backtest errors) that lives only while the resource
/// streams through plots and path files, then is shed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceForecast {
    /// Position in the run's list of resources (all shards counted): path files follow it.
    pub index: usize,
    pub name: String,
    pub source: String,
    pub settings: ResourceSettings,
    pub step: i64,
    /// First and last timestamps of the prepared history.
    pub history_start: i64,
    pub last_observed: i64,
    /// First timestamp the model was fitted on (later than the history's start after a level shift).
    pub fit_start: i64,
    /// A level shift found in the data that the forecast starts from (configured ones are
    /// events), if any.
    #[serde(default)]
    pub level_shift: Option<i64>,
    pub model: String,
    pub backtest: Option<Backtest>,
    /// Timestamp of the first forecast step (last history step + one step).
    pub forecast_start: i64,
    pub breaches: Vec<Breach>,
    /// Configured scenarios that apply to this resource: (name, breaches); paths in `detail`.
    pub scenarios: Vec<(String, Vec<Breach>)>,
    #[serde(with = "crate::stats::nan_null")]
    pub last_value: f64,
    /// The capacity factor that keeps the upper bound below the highest threshold (> 1).
    pub capacity_needed: Option<f64>,
    /// The forecast as reports carry it: every step up to [`OUTLINE_STEPS`], else one point
    /// per UTC day (mean of the means, lowest lower, highest upper).
    pub outline: Vec<Point>,
    /// Things worth knowing that did not stop the forecast.
    pub notes: Vec<String>,
    #[serde(skip)]
    pub detail: Option<Detail>,
}

/// What a resource carries only while it streams through the run.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The prepared history (regular steps, gaps as NaN).
    pub history: Series,
    /// In-sample fitted values from `fit_start`, one per history step.
    pub fitted: Vec<f64>,
    pub forecast: Forecast,
    /// The chosen forecast's backtest errors (breach odds for scenarios reuse them).
    pub errors: ErrorPaths,
    /// Where the fit moved the history before a level shift onto the new regime.
    pub moved: Option<(usize, changepoint::Regime)>,
    /// The scenarios' paths, in the order of `scenarios`.
    pub scenario_paths: Vec<Forecast>,
}

/// One point of a forecast outline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: i64,
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Forecasts up to this many steps are outlined step by step; longer ones by day.
pub const OUTLINE_STEPS: usize = 400;

/// Every step of a short forecast, or one point per UTC day of a long one.
pub fn outline(f: &Forecast, start: i64, step: i64) -> Vec<Point> {
    let t = |i: usize| start + i as i64 * step;
    if f.mean.len() <= OUTLINE_STEPS {
        return (0..f.mean.len())
            .map(|i| Point { t: t(i), mean: f.mean[i], lower: f.lower[i], upper: f.upper[i] })
            .collect();
    }
    let mut out: Vec<(Point, usize)> = vec![];
    for i in 0..f.mean.len() {
        let day = t(i).div_euclid(86_400);
        match out.last_mut() {
            Some((p, n)) if p.t.div_euclid(86_400) == day => {
                p.mean += f.mean[i];
                p.lower = p.lower.min(f.lower[i]);
                p.upper = p.upper.max(f.upper[i]);
                *n += 1;
            }
            _ => out.push((Point { t: t(i), mean: f.mean[i], lower: f.lower[i], upper: f.upper[i] }, 1)),
        }
    }
    out.into_iter().map(|(p, n)| Point { mean: p.mean / n as f64, ..p }).collect()
}

impl ResourceForecast {
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Drops the detail, keeping the summary.
    pub fn shed(&mut self) {
        self.detail = None;
    }

    fn detail(&self) -> Result<&Detail, String> {
        self.detail.as_ref().ok_or_else(|| format!("resource {}: detail already shed", self.name))
    }

    pub fn forecast_time(&self, i: usize) -> i64 {
        self.forecast_start + i as i64 * self.step()
    }

    pub fn expected_at(&self, b: &Breach) -> Option<i64> {
        Breach::at(b.expected_step, self.forecast_start, self.step())
    }

    pub fn earliest_at(&self, b: &Breach) -> Option<i64> {
        Breach::at(b.earliest_step, self.forecast_start, self.step())
    }

    pub fn breach(&self, name: &str) -> Option<&Breach> {
        self.breaches.iter().find(|b| b.name == name)
    }

    /// Days from `as_of` until the earliest (upper-bound) crossing of the lowest threshold:
    /// the conservative headroom. None: no crossing within the horizon.
    pub fn headroom_days(&self, as_of: i64) -> Option<f64> {
        self.breaches.iter().filter_map(|b| self.earliest_at(b)).min().map(|t| breach::days_between(as_of, t))
    }

    /// The highest threshold whose earliest crossing lies within `alert_within` of `as_of`.
    pub fn alert(&self, as_of: i64) -> Option<&Breach> {
        let limit = as_of + self.settings.alert_within;
        self.breaches.iter().rev().find(|b| self.earliest_at(b).is_some_and(|t| t <= limit))
    }

    /// `hard`, `soft` (or another threshold's name) when alerting, else `ok`.
    pub fn status(&self, as_of: i64) -> &str {
        self.alert(as_of).map_or("ok", |b| b.name.as_str())
    }

    /// Applies a scenario to this forecast: its path and its own breach analysis (thresholds
    /// overridden where the scenario says so), on the same basis as the baseline's. Needs the
    /// detail.
    pub fn scenario(&self, s: &Scenario) -> Result<(Forecast, Vec<Breach>), String> {
        let d = self.detail()?;
        let season = seasonal_periods(self.step()).last().copied().unwrap_or(24);
        let basis = fit_basis(&d.history, self.fit_start, d.moved);
        let range = select::Range::of(&basis.values, self.settings.bounded);
        let f = range.tidy(s.apply(&d.forecast, d.history.end(), self.step(), season, range.bounds()));
        let breaches = analyse_thresholds(&self.settings, &s.thresholds, &f, &basis.values, &d.errors);
        Ok((f, breaches))
    }

    /// Adds a scenario's outcome (breaches to the summary, the path to the detail).
    pub fn add_scenario(&mut self, s: &Scenario) -> Result<(), String> {
        let (path, breaches) = self.scenario(s)?;
        self.scenarios.push((s.name.clone(), breaches));
        if let Some(d) = self.detail.as_mut() {
            d.scenario_paths.push(path);
        }
        Ok(())
    }

    /// How a scenario moves a threshold's earliest crossing against the baseline.
    pub fn shift(&self, scenario_breach: &Breach) -> Shift {
        let base = self.breach(&scenario_breach.name).and_then(|b| self.earliest_at(b));
        match (Breach::at(scenario_breach.earliest_step, self.forecast_start, self.step()), base) {
            (Some(s), Some(t)) => Shift::Days((s - t) as f64 / 86_400.0),
            (None, Some(_)) => Shift::BeyondHorizon,
            _ => Shift::Unknown,
        }
    }

    /// The last date to act: earliest crossing minus the lead time.
    pub fn act_by(&self, b: &Breach) -> Option<i64> {
        self.earliest_at(b).map(|t| t - self.settings.lead_time)
    }
}

/// A scenario's earliest crossing against the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// Days later (positive) or earlier (negative).
    Days(f64),
    /// The baseline crosses; the scenario does not within the horizon.
    BeyondHorizon,
    /// The baseline does not cross (nothing to compare with).
    Unknown,
}

impl std::fmt::Display for Shift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shift::Days(d) => write!(f, "{d:+.1}"),
            Shift::BeyondHorizon => write!(f, "beyond the horizon"),
            Shift::Unknown => write!(f, "–"),
        }
    }
}

/// A resource (or a whole source) that could not be forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    pub resource: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.resource {
            Some(r) => write!(f, "resource {r}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Everything a run produced, ranked: least headroom first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub as_of: i64,
    /// Resources in the whole run, all shards counted (errors aside).
    pub total: usize,
    pub shard: Option<Shard>,
    pub resources: Vec<ResourceForecast>,
    pub errors: Vec<RunError>,
    pub notes: Vec<String>,
    pub fail_on: FailOn,
}

impl RunResult {
    /// Resources whose earliest crossing of the `fail_on` threshold lies within `alert_within`.
    pub fn failing(&self) -> Vec<&ResourceForecast> {
        let wanted = match self.fail_on {
            FailOn::Never => return vec![],
            FailOn::Soft => "soft",
            FailOn::Hard => "hard",
        };
        self.resources
            .iter()
            .filter(|r| {
                let limit = self.as_of + r.settings.alert_within;
                r.breach(wanted).and_then(|b| r.earliest_at(b)).is_some_and(|t| t <= limit)
            })
            .collect()
    }
}

/// Progress events of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Sources read; this many resources to forecast.
    Start(usize),
    /// One more resource forecast (or failed).
    Done,
}

/// Which part of the fleet a run forecasts (`--shard I/N`, 1-based): the resources whose
/// name hashes (FNV-1a, stable across machines and versions) to `I - 1` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard `{text}`: expected I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, name: &str) -> bool {
        (crate::stats::fnv1a(name) % self.count as u64) as usize == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Sees each resource while it still has its detail: plots and path files are written from
/// here, so a run holds only summaries however large the fleet.
pub trait Sink: Sync {
    /// Before any resource: every resource name of the run (all shards), and the as-of time.
    fn start(&mut self, names: &[&str], as_of: i64);
    /// Each resource with its detail, from any thread, in no particular order.
    fn each(&self, r: &ResourceForecast);
    /// Resources with their detail, in run order, a chunk at a time (after `each`).
    fn chunk(&mut self, resources: &[ResourceForecast]);
}

/// A sink that keeps nothing.
pub struct NoSink;

impl Sink for NoSink {
    fn start(&mut self, _: &[&str], _: i64) {}
    fn each(&self, _: &ResourceForecast) {}
    fn chunk(&mut self, _: &[ResourceForecast]) {}
}

/// Resources fitted in parallel per chunk; a chunk's details are shed once the sink saw them.
const CHUNK: usize = 256;

/// Reads every source the config names and forecasts every resource (of `shard`, when
/// given). `progress` is told how many resources there are, then called once per resource
/// done (from any thread); `sink` sees each resource before its detail is shed.
pub fn run(
    config: &Config,
    as_of: Option<i64>,
    shard: Option<Shard>,
    progress: &(dyn Fn(Progress) + Sync),
    sink: &mut dyn Sink,
) -> RunResult {
    let (pulled, mut errors, notes) = read(config, as_of, None, true);
    let work = assign(config, &pulled, &mut errors);
    if let Some(sh) = shard {
        errors.retain(|e| e.resource.as_deref().is_none_or(|r| sh.owns(r)));
    }
    let from_server = server_values(&pulled);
    let as_of = as_of.unwrap_or_else(|| work.iter().filter_map(|(raw, _)| raw.last_timestamp()).max().unwrap_or(0));
    let names: Vec<&str> = work.iter().map(|(raw, _)| raw.name.as_str()).collect();
    sink.start(&names, as_of);
    let total = work.len();
    let mine: Vec<(usize, &RawSeries, &ResourceEntry)> = work
        .iter()
        .enumerate()
        .filter(|(_, (raw, _))| shard.is_none_or(|sh| sh.owns(&raw.name)))
        .map(|(i, (raw, entry))| (i, *raw, *entry))
        .collect();
    progress(Progress::Start(mine.len()));
    let mut resources = vec![];
    for chunk in mine.chunks(CHUNK) {
        // Points still in their file are read now, a chunk at a time.
        let deferred: Vec<&file::Deferred> = chunk.iter().filter_map(|(_, raw, _)| raw.deferred.as_deref()).collect();
        let mut loaded: HashMap<&str, Result<RawSeries, String>> =
            deferred.iter().map(|d| d.name.as_str()).zip(file::load(&deferred)).collect();
        let inputs: Vec<Input> = chunk
            .iter()
            .map(|&(index, raw, entry)| Input { index, entry, raw, loaded: loaded.remove(raw.name.as_str()) })
            .collect();
        let results: Vec<Result<ResourceForecast, RunError>> = inputs
            .par_iter()
            .map(|input| {
                let (index, entry, name) = (input.index, input.entry, &input.raw.name);
                let settings = with_server_values(&entry.settings, entry, from_server.get(name.as_str()).copied());
                let r = settings
                    .and_then(|s| input.series().and_then(|raw| forecast_resource(raw, &entry.source, &s, Some(as_of))))
                    .and_then(|mut f| {
                        f.index = index;
                        for s in config.scenarios.iter().filter(|s| s.applies_to(name)) {
                            f.add_scenario(s)?;
                        }
                        sink.each(&f);
                        Ok(f)
                    })
                    .map_err(|message| RunError { resource: Some(name.clone()), message });
                progress(Progress::Done);
                r
            })
            .collect();
        let done = successes(results, &mut errors);
        sink.chunk(&done);
        for mut f in done {
            f.shed();
            resources.push(f);
        }
    }
    rank(&mut resources, as_of);
    order_errors(&mut errors);
    RunResult { as_of, resources, errors, notes, fail_on: config.fail_on, total, shard }
}

/// One resource of a chunk: its series as read, or as loaded now from its file.
struct Input<'a> {
    index: usize,
    entry: &'a ResourceEntry,
    raw: &'a RawSeries,
    loaded: Option<Result<RawSeries, String>>,
}

impl Input<'_> {
    fn series(&self) -> Result<&RawSeries, String> {
        match &self.loaded {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(self.raw),
        }
    }
}

/// Errors in a fixed order, however the run was split: errors of whole sources as they were
/// met, then resources' errors by name.
pub fn order_errors(errors: &mut [RunError]) {
    errors.sort_by(|a, b| match (&a.resource, &b.resource) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.message.cmp(&b.message)),
    });
}

/// The entry's settings with values read from the server applied: the capacity, and
/// thresholds except those the entry sets itself; checked again (a bounded resource's
/// thresholds must lie in (0, 1]).
fn with_server_values(
    settings: &ResourceSettings,
    entry: &ResourceEntry,
    found: Option<&Vec<(String, f64)>>,
) -> Result<ResourceSettings, String> {
    let found = found.map_or(&[][..], |f| f.as_slice());
    let mut s = settings.clone();
    if entry.server_queries.iter().any(|(n, _)| n == CAPACITY) {
        match found.iter().find(|(n, _)| n == CAPACITY) {
            Some((_, c)) if *c > 0.0 && c.is_finite() => s.capacity = Some(*c),
            Some((_, c)) => return Err(format!("capacity_query returned {c}; a capacity must be positive")),
            None => return Err("capacity_query: no series whose labels match this resource's".into()),
        }
        s.resolve_quantities()?;
    }
    if found.is_empty() {
        return Ok(s);
    }
    for (name, v) in found.iter().filter(|(n, _)| n != CAPACITY && !entry.explicit_thresholds.contains(n)) {
        s.set_threshold(name, *v);
    }
    s.validate().map_err(|e| format!("thresholds_query: {e}"))?;
    Ok(s)
}

/// Reads every source as `run` would and calls `f` on each resource's series with its
/// settings (in parallel; `headroom backtest`). Results come in the config's order.
pub fn each_resource<T: Send>(
    config: &Config,
    as_of: Option<i64>,
    f: &(dyn Fn(&RawSeries, &str, &ResourceSettings) -> Result<T, String> + Sync),
) -> (Vec<(String, T)>, Vec<RunError>) {
    let (pulled, mut errors, _) = read(config, as_of, None, false);
    let work = assign(config, &pulled, &mut errors);
    let from_server = server_values(&pulled);
    let results: Vec<Result<(String, T), RunError>> = work
        .par_iter()
        .map(|(raw, entry)| {
            with_server_values(&entry.settings, entry, from_server.get(raw.name.as_str()).copied())
                .and_then(|s| f(raw, &entry.source, &s))
                .map(|t| (raw.name.clone(), t))
                .map_err(|message| RunError { resource: Some(raw.name.clone()), message })
        })
        .collect();
    let done = successes(results, &mut errors);
    order_errors(&mut errors);
    (done, errors)
}

/// Reads every source as `run` would and returns each resource's raw series (for `pull`),
/// with the errors and notes of reading. With `since`, servers are asked only for steps after
/// it (to extend a snapshot); files are read whole.
pub fn snapshot(
    config: &Config,
    as_of: Option<i64>,
    since: Option<i64>,
) -> (Vec<RawSeries>, Vec<RunError>, Vec<String>) {
    let (pulled, mut errors, notes) = read(config, as_of, since, false);
    // Which series, by position, then moved out of what was read (no copy of the points).
    let chosen: Vec<(PullKey, usize)> = {
        let work = assign(config, &pulled, &mut errors);
        let mut at: HashMap<*const RawSeries, (PullKey, usize)> = HashMap::new();
        for (key, p) in &pulled {
            for (i, s) in p.series.iter().enumerate() {
                at.insert(s as *const RawSeries, (key.clone(), i));
            }
        }
        work.iter().filter_map(|(s, _)| at.get(&(*s as *const RawSeries)).cloned()).collect()
    };
    let mut pulled = pulled;
    let series = chosen
        .into_iter()
        .filter_map(|(key, i)| pulled.get_mut(&key).map(|p| std::mem::replace(&mut p.series[i], RawSeries::empty())))
        .collect();
    (series, errors, notes)
}

/// Reads every source ([`pull_all`]), with the errors and notes of reading.
fn read(
    config: &Config,
    as_of: Option<i64>,
    since: Option<i64>,
    defer: bool,
) -> (BTreeMap<PullKey, Pulled>, Vec<RunError>, Vec<String>) {
    let pulled = pull_all(config, as_of, since, defer);
    let mut errors = vec![];
    let mut notes = vec![];
    for p in pulled.values() {
        errors.extend(p.errors.iter().map(|e| RunError { resource: e.resource.clone(), message: e.message.clone() }));
        notes.extend(p.notes.iter().cloned());
    }
    (pulled, errors, notes)
}

/// Thresholds and capacities read from servers, by resource name.
fn server_values(pulled: &BTreeMap<PullKey, Pulled>) -> HashMap<&str, &Vec<(String, f64)>> {
    pulled.values().flat_map(|p| p.thresholds.iter().map(|(k, v)| (k.as_str(), v))).collect()
}

/// What a `[[resources]]` entry reads: files are read once per (source, name template) and
/// shared by the entries over them; each Prometheus entry runs its own query.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PullKey {
    Files { source: String, template: Option<String> },
    Query { entry: usize },
}

fn pull_key(i: usize, config: &Config, entry: &ResourceEntry) -> PullKey {
    match config.sources.get(&entry.source) {
        Some(SourceConfig::Prometheus(_)) => PullKey::Query { entry: i },
        _ => PullKey::Files { source: entry.source.clone(), template: entry.template().map(str::to_string) },
    }
}

/// Reads every source. Prometheus queries cover `history` up to `as_of` (or now), on the
/// step grid.
fn pull_all(config: &Config, as_of: Option<i64>, since: Option<i64>, defer: bool) -> BTreeMap<PullKey, Pulled> {
    let mut clients: BTreeMap<&str, Result<Prometheus, SourceError>> = BTreeMap::new();
    let mut pulled = BTreeMap::new();
    // Entries not run because their source went down: (source, entry names or queries).
    let mut skipped: BTreeMap<&str, (PullKey, Vec<String>)> = BTreeMap::new();
    for (i, entry) in config.resources.iter().enumerate() {
        let key = pull_key(i, config, entry);
        if pulled.contains_key(&key) {
            continue;
        }
        let p = match config.sources.get(&entry.source) {
            None => Pulled::default(),
            Some(SourceConfig::Files { path, column }) => match file::expand(path, &config.base) {
                Ok(files) => {
                    let name_template = entry.template().map(str::to_string);
                    // HEADROOM_DEFER_ROWS lowers the size from which files are deferred (tests).
                    let rows = std::env::var("HEADROOM_DEFER_ROWS").ok().and_then(|v| v.parse().ok());
                    let defer_above = defer.then_some(rows.unwrap_or(file::DEFER_ROWS));
                    let opts = FileOptions { column: column.clone(), name_template, defer_above };
                    file::read_files(&files, &opts)
                }
                Err(e) => Pulled {
                    errors: vec![SourceError::file(format!("source {}: {e}", entry.source))],
                    ..Default::default()
                },
            },
            Some(SourceConfig::Prometheus(cfg)) => {
                let client = clients
                    .entry(entry.source.as_str())
                    .or_insert_with(|| Prometheus::connect(&entry.source, cfg, &config.base));
                match client {
                    Ok(c) if c.is_down() => {
                        let what = entry
                            .name
                            .clone()
                            .unwrap_or_else(|| format!("`{}`", entry.query.as_deref().unwrap_or_default()));
                        skipped.entry(entry.source.as_str()).or_insert_with(|| (key.clone(), vec![])).1.push(what);
                        Pulled::default()
                    }
                    Ok(c) => {
                        let step = entry.settings.step.unwrap_or(3600);
                        let now = as_of.unwrap_or_else(|| chrono::Utc::now().timestamp());
                        let end = now.div_euclid(step) * step;
                        let mut start = end - (entry.settings.history / step) * step;
                        if let Some(t) = since {
                            // Only the tail after `since`, on the same step grid.
                            start = start.max(start + (t - start).div_euclid(step) * step + step);
                        }
                        let query = entry.query.as_deref().unwrap_or_default();
                        let window = (start, end, step);
                        if start > end {
                            // A snapshot already up to date: nothing to fetch.
                            Pulled::default()
                        } else {
                            let (agg, tq) = (entry.settings.aggregate, &entry.server_queries);
                            prometheus::pull(c, query, entry.name.as_deref(), window, agg, tq)
                        }
                    }
                    Err(e) => Pulled {
                        errors: vec![SourceError { resource: entry.name.clone(), ..e.clone() }],
                        ..Default::default()
                    },
                }
            }
        };
        pulled.insert(key, p);
    }
    for (source, (key, entries)) in skipped {
        let Some(Ok(c)) = clients.get(source) else { continue };
        let mut named = entries.clone();
        named.truncate(5);
        let more = if entries.len() > named.len() {
            format!(" and {} more", entries.len() - named.len())
        } else {
            String::new()
        };
        let message = format!(
            "source {source}: {} queries not run ({}{more}): treated as down after {}",
            entries.len(),
            named.join(", "),
            c.down_reason()
        );
        if let Some(p) = pulled.get_mut(&key) {
            p.errors.push(SourceError::file(c.redact(&message)));
        }
    }
    pulled
}

/// Pairs each series with the `[[resources]]` entry that owns it: an exact name wins over a
/// catch-all entry of the same file source; each series is forecast once.
fn assign<'a>(
    config: &'a Config,
    pulled: &'a BTreeMap<PullKey, Pulled>,
    errors: &mut Vec<RunError>,
) -> Vec<(&'a RawSeries, &'a ResourceEntry)> {
    let named: HashSet<(&str, &str)> =
        config.resources.iter().filter_map(|e| e.exact_name().map(|n| (e.source.as_str(), n))).collect();
    let failed: HashSet<&str> = errors.iter().filter_map(|e| e.resource.as_deref()).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut work = vec![];
    let mut missing = vec![];
    for (i, entry) in config.resources.iter().enumerate() {
        let key = pull_key(i, config, entry);
        let Some(p) = pulled.get(&key) else { continue };
        if matches!(key, PullKey::Query { .. }) {
            // The query's series are this entry's, already named.
            for s in &p.series {
                if seen.insert(s.name.as_str()) {
                    work.push((s, entry));
                } else {
                    missing.push(RunError {
                        resource: Some(s.name.clone()),
                        message: "two resources have this name; the second was skipped (make the names unique)".into(),
                    });
                }
            }
            continue;
        }
        match entry.exact_name() {
            Some(name) => match p.series.iter().find(|s| s.name == name) {
                Some(s) if seen.insert(s.name.as_str()) => work.push((s, entry)),
                Some(_) => {}
                None if failed.contains(name) => {}
                None if p.series.is_empty() && !p.errors.is_empty() => {}
                None => {
                    let mut found: Vec<&str> = p.series.iter().map(|s| s.name.as_str()).collect();
                    found.truncate(10);
                    missing.push(RunError {
                        resource: Some(name.to_string()),
                        message: format!(
                            "no series named `{name}` in source {} (found: {})",
                            entry.source,
                            if found.is_empty() { "none".into() } else { found.join(", ") }
                        ),
                    });
                }
            },
            None => {
                for s in &p.series {
                    if !named.contains(&(entry.source.as_str(), s.name.as_str())) && seen.insert(s.name.as_str()) {
                        work.push((s, entry));
                    }
                }
            }
        }
    }
    errors.extend(missing);
    work
}

/// Prepares, fits and forecasts one series, and analyses its thresholds. The forecast runs
/// from the last observed step to `as_of + horizon`.
pub fn forecast_resource(
    raw: &RawSeries,
    source: &str,
    settings: &ResourceSettings,
    as_of: Option<i64>,
) -> Result<ResourceForecast, String> {
    let (history, prep) = prepare(raw, settings, as_of)?;
    let step = history.step;
    let mut notes = vec![];
    if prep.duplicates_dropped > 0 {
        notes.push(format!("{} duplicate timestamps dropped (the last value read was kept)", prep.duplicates_dropped));
    }
    if prep.unsorted {
        notes.push("rows were not in time order; sorted".into());
    }
    if prep.ignored_points > 0 {
        notes.push(format!("{} points inside ignore windows dropped", prep.ignored_points));
    }
    if prep.interpolated_steps > 0 {
        notes.push(format!("{} missing steps interpolated (gaps of at most 3 steps)", prep.interpolated_steps));
    }
    let end = history.end();
    let as_of = as_of.unwrap_or(end);
    if as_of - end > 2 * step {
        notes.push(format!(
            "stale: last sample {} is {} before the as-of date",
            rfc3339(end),
            format_duration(as_of - end)
        ));
    }
    // The last level shift, configured or else found in the data (a recent jump first, then
    // one with weeks on both sides). With enough data after it the fit starts there; with
    // less, the history before it is moved by the shift's size so the fit starts from the
    // new level without losing the cycles learnt before it.
    let mut fit = history.clone();
    let mut moved = None;
    let mut level_shift = None;
    let min_after = seasonal_periods(step).last().map_or(24, |p| 2 * p + 2);
    let block = seasonal_periods(step).first().copied().unwrap_or(1);
    let configured =
        settings.events.iter().filter(|(t, k, _)| *k == EventKind::LevelShift && *t <= end).max_by_key(|e| e.0);
    let shift = match configured {
        Some(&(at, _, _)) => Some((history.index_at(at), true)),
        None => changepoint::detect_recent_shift(&history.values, block)
            .or_else(|| changepoint::detect_level_shift(&history.values, block))
            .map(|i| (i, false)),
    };
    // A shift at or before the first step changes nothing.
    if let Some((at, configured)) = shift.filter(|s| s.0 > 0) {
        let day = crate::time::day(history.time(at));
        let what = if configured { format!("level shift on {day}") } else { format!("level shift found on {day}") };
        let after = history.values[at..].iter().filter(|v| v.is_finite()).count();
        if after >= min_after {
            if !configured {
                notes.push(format!("{what}: fitted on the data after it"));
            }
            fit = history.since(history.time(at));
            level_shift = (!configured).then_some(fit.start);
        } else if let Some(regime) = changepoint::regime_change(&history.values, at, block) {
            let swings = if (regime.scale - 1.0).abs() > 0.05 {
                format!(" and its swings scaled by {:.2}", regime.scale)
            } else {
                String::new()
            };
            notes.push(format!(
                "{what}: only {after} observed steps after it (need {min_after} to fit on them alone), so the \
                 history before it was moved {} by {}{swings} to the new level",
                if regime.size < 0.0 { "down" } else { "up" },
                crate::units::fmt_value(regime.size.abs())
            ));
            fit.values[..at].iter_mut().for_each(|v| *v = regime.map(*v));
            moved = Some((at, regime));
            level_shift = (!configured).then(|| history.time(at));
        } else {
            notes.push(format!("{what} ignored: only {after} observed steps after it (need {min_after})"));
        }
    }
    let steps = ((as_of + settings.horizon - end) as f64 / step as f64).ceil().max(1.0) as usize;
    let mut sel = select::forecast(&fit.values, step, steps, settings.level, settings.bounded, &settings.model)
        .map_err(|e| e.to_string())?;
    // Fitted values are drawn over the history as it was.
    if let Some((at, regime)) = moved {
        sel.fitted.iter_mut().take(at).for_each(|v| *v = regime.unmap(*v));
    }
    let last_value = history.last_value().unwrap_or(f64::NAN);
    let breaches = analyse_thresholds(settings, &[], &sel.forecast, &fit.values, &sel.errors);
    let capacity_needed =
        breaches.last().map(|b| crate::scenario::capacity_needed(&sel.forecast, b.threshold)).filter(|k| *k > 1.0);
    Ok(ResourceForecast {
        index: 0,
        name: raw.name.clone(),
        source: source.to_string(),
        settings: settings.clone(),
        step,
        history_start: history.start,
        last_observed: end,
        fit_start: fit.start,
        level_shift,
        model: sel.model,
        backtest: sel.backtest,
        forecast_start: end + step,
        breaches,
        scenarios: vec![],
        last_value,
        capacity_needed,
        outline: outline(&sel.forecast, end + step, step),
        notes,
        detail: Some(Detail {
            history,
            fitted: sel.fitted,
            forecast: sel.forecast,
            errors: sel.errors,
            moved,
            scenario_paths: vec![],
        }),
    })
}

/// Every threshold of a resource against one path (the baseline's or a scenario's, with the
/// scenario's threshold overrides), read against the history as the fit saw it: one
/// analysis for both, so a scenario that changes nothing reproduces the baseline.
fn analyse_thresholds(
    settings: &ResourceSettings,
    overrides: &[(String, f64)],
    forecast: &Forecast,
    basis: &[f64],
    errors: &ErrorPaths,
) -> Vec<Breach> {
    settings
        .thresholds
        .iter()
        .map(|(name, t)| {
            let t = overrides.iter().find(|(n, _)| n == name).map_or(*t, |o| o.1);
            breach::analyse(name, t, forecast, settings.level, basis, errors)
        })
        .collect()
}

/// The history the model was fitted on: from `fit_start`, with the steps before a level
/// shift moved onto the new regime where the fit did so.
fn fit_basis(history: &Series, fit_start: i64, moved: Option<(usize, changepoint::Regime)>) -> Series {
    let mut fit = history.since(fit_start);
    if let Some((at, regime)) = moved {
        fit.values.iter_mut().take(at).for_each(|v| *v = regime.map(*v));
    }
    fit
}

/// A resource's history on its step grid up to `as_of`, on the forecast's scale (a fraction
/// of capacity where the resource has one).
pub fn prepare(
    raw: &RawSeries,
    settings: &ResourceSettings,
    as_of: Option<i64>,
) -> Result<(Series, series::Preparation), String> {
    let step = match settings.step {
        Some(s) => s,
        None => {
            series::median_spacing(raw).ok_or_else(|| "fewer than two timestamps: cannot tell the step".to_string())?
        }
    };
    let opts = PrepareOptions {
        step,
        aggregate: settings.aggregate,
        as_of,
        history: Some(settings.history),
        ignore: settings.ignore.clone(),
    };
    let (mut history, prep) = series::prepare(raw, &opts).map_err(|e| format!("{} ({})", e, raw.origin))?;
    if let Some(c) = settings.capacity {
        // Forecast as a fraction of capacity: thresholds and capacity changes are on that scale.
        history.values.iter_mut().for_each(|v| *v /= c);
    }
    Ok((history, prep))
}

/// Least headroom first: already breached, then soonest earliest crossing, then the highest
/// breach probability, then by name (so the order is deterministic).
pub fn rank(resources: &mut [ResourceForecast], as_of: i64) {
    resources.sort_by(|a, b| rank_order(a, b, as_of));
}

/// The ranking's order of two resources.
pub fn rank_order(a: &ResourceForecast, b: &ResourceForecast, as_of: i64) -> std::cmp::Ordering {
    let key = |r: &ResourceForecast| {
        let breached = r.breaches.iter().filter(|b| b.already_breached).count();
        let days = r.headroom_days(as_of).unwrap_or(f64::INFINITY);
        let p = r.breaches.iter().map(|b| b.probability).fold(0.0, f64::max);
        (std::cmp::Reverse(breached), days, -p)
    };
    let (ka, kb) = (key(a), key(b));
    ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.total_cmp(&kb.2)).then_with(|| a.name.cmp(&b.name))
}

/// The successful results, in order; failures are appended to `errors`.
fn successes<T>(results: Vec<Result<T, RunError>>, errors: &mut Vec<RunError>) -> Vec<T> {
    let mut done = vec![];
    for r in results {
        match r {
            Ok(x) => done.push(x),
            Err(e) => errors.push(e),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sixty days hourly around 0.5 with a daily cycle, jumping by `jump` `after` hours
    /// before the end.
    fn series(after: usize, jump: f64) -> RawSeries {
        let n = 60 * 24;
        let start = 1_780_000_000 / 3600 * 3600;
        let ts = (0..n).map(|i| start + i as i64 * 3600).collect();
        let vs = (0..n)
            .map(|i| {
                let wiggle = 0.01 * ((i * 7919 % 101) as f64 / 101.0 - 0.5);
                let v = 0.5 + 0.05 * (i as f64 / 24.0 * std::f64::consts::TAU).sin() + wiggle;
                if i + after >= n { v + jump } else { v }
            })
            .collect();
        RawSeries::new("r".into(), "test".into(), ts, vs)
    }

    #[test]
    fn a_scenario_that_changes_nothing_reproduces_the_baseline() {
        let settings = ResourceSettings {
            horizon: 14 * 86_400,
            thresholds: vec![("soft".into(), 0.84), ("hard".into(), 0.95)],
            ..Default::default()
        };
        let noop = Scenario {
            name: "same".into(),
            growth: None,
            growth_from: None,
            add: None,
            capacity: None,
            seasonal_amplitude: None,
            thresholds: vec![],
            resources: vec![],
        };
        // No shift; a shift 2 days before the end (the history is moved onto the new level);
        // one 20 days before (the fit starts there).
        for (after, jump) in [(0, 0.0), (48, 0.3), (480, 0.3)] {
            let r = forecast_resource(&series(after, jump), "s", &settings, None).unwrap();
            let d = r.detail.as_ref().unwrap();
            match after {
                48 => assert!(d.moved.is_some(), "history moved to the new regime: {:?}", r.notes),
                480 => assert!(r.fit_start > r.history_start, "fit after the shift: {:?}", r.notes),
                _ => assert!(d.moved.is_none() && r.fit_start == r.history_start),
            }
            let (path, breaches) = r.scenario(&noop).unwrap();
            assert_eq!(path, d.forecast, "shift {after}");
            assert_eq!(breaches, r.breaches, "shift {after}");
        }
    }
}
