//! Every source of a config read once, and each series paired with the `[[resources]]`
//! entry that owns it: files shared by the entries over them, one query per Prometheus entry
//! over the history window on its step grid, values read from servers applied to settings.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::file::{self, FileOptions};
use super::prometheus::{self, Prometheus};
use super::{CAPACITY, Pulled, RawSeries, SourceError};
use crate::config::{Config, ResourceEntry, ResourceSettings, SourceConfig};
use crate::error::Invalid;
use crate::outcome::RunError;

/// The entry's settings with values read from the server applied: the capacity, and
/// thresholds except those the entry sets itself; checked again (a bounded resource's
/// thresholds must lie in (0, 1]).
pub fn with_server_values(
    settings: &ResourceSettings,
    entry: &ResourceEntry,
    found: Option<&Vec<(String, f64)>>,
) -> Result<ResourceSettings, Invalid> {
    let found = found.map_or(&[][..], |f| f.as_slice());
    let mut s = settings.clone();
    if entry.server_queries.iter().any(|(n, _)| n == CAPACITY) {
        match found.iter().find(|(n, _)| n == CAPACITY) {
            Some((_, c)) if *c > 0.0 && c.is_finite() => s.capacity = Some(*c),
            Some((_, c)) => {
                return Err(Invalid::rule(format!("capacity_query returned {c}; a capacity must be positive")));
            }
            None => return Err(Invalid::rule("capacity_query: no series whose labels match this resource's")),
        }
        s.resolve_quantities()?;
    }
    if found.is_empty() {
        return Ok(s);
    }
    for (name, v) in found.iter().filter(|(n, _)| n != CAPACITY && !entry.explicit_thresholds.contains(n)) {
        s.set_threshold(name, *v);
    }
    s.validate().map_err(Invalid::within("thresholds_query"))?;
    Ok(s)
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
pub fn read(
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
pub fn server_values(pulled: &BTreeMap<PullKey, Pulled>) -> HashMap<&str, &Vec<(String, f64)>> {
    pulled.values().flat_map(|p| p.thresholds.iter().map(|(k, v)| (k.as_str(), v))).collect()
}

/// What a `[[resources]]` entry reads: files are read once per (source, name template) and
/// shared by the entries over them; each Prometheus entry runs its own query.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PullKey {
    Files { source: String, template: Option<String> },
    Query { entry: usize },
}

pub fn pull_key(i: usize, config: &Config, entry: &ResourceEntry) -> PullKey {
    match config.sources.get(&entry.source) {
        Some(SourceConfig::Prometheus(_)) => PullKey::Query { entry: i },
        _ => PullKey::Files { source: entry.source.clone(), template: entry.template().map(str::to_string) },
    }
}

/// Reads every source. Prometheus queries cover `history` up to `as_of` (or now), on the
/// step grid.
pub fn pull_all(config: &Config, as_of: Option<i64>, since: Option<i64>, defer: bool) -> BTreeMap<PullKey, Pulled> {
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
            "source {source}: {} not run ({}{more}): treated as down after {}",
            if entries.len() == 1 { "1 query".to_string() } else { format!("{} queries", entries.len()) },
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
pub fn assign<'a>(
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
