//! The run, stage by stage: read every source, prepare each resource's series, fit and
//! forecast it, analyse its thresholds. One resource's failure is recorded and the rest go on.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::config::{Config, ResourceEntry, ResourceSettings};
use crate::error;
use crate::outcome::{ResourceForecast, RunError, RunResult, order_errors, rank};
use crate::resource::{ResourceError, forecast_resource};
use crate::shard::Shard;
use crate::source::file;
use crate::source::fleet::{assign, read, server_values, with_server_values};
use crate::source::{RawSeries, SourceError};
use crate::track::PastForecast;

/// Progress events of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Sources read; this many resources to forecast.
    Start(usize),
    /// One more resource forecast (or failed).
    Done,
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

/// A run with a ledger: the earlier forecasts per resource, scored as each resource is
/// forecast, and the config's hash (drift names a config change).
pub struct Track<'a> {
    pub earlier: &'a HashMap<String, Vec<PastForecast>>,
    pub config_sha256: &'a str,
}

/// Resources fitted in parallel per chunk; a chunk's details are shed once the sink saw them.
const CHUNK: usize = 256;

/// Reads every source the config names and forecasts every resource (of `shard`, when
/// given). `progress` is told how many resources there are, then called once per resource
/// done (from any thread); `sink` sees each resource before its detail is shed. With `track`,
/// each resource's earlier forecasts are scored and the run's own are kept for the ledger.
pub fn run(
    config: &Config,
    as_of: Option<i64>,
    shard: Option<Shard>,
    track: Option<&Track>,
    progress: &(dyn Fn(Progress) + Sync),
    sink: &mut dyn Sink,
) -> RunResult {
    let (pulled, mut errors, notes) = read(config, as_of, None, true);
    let work = assign(config, &pulled, &mut errors);
    if let Some(sh) = shard {
        errors.retain(|e| e.resource.as_deref().is_none_or(|r| sh.owns(r)));
    }
    let from_server = server_values(&pulled);
    // Without --as-of: the latest sample read, or now when nothing was read.
    let as_of = as_of.unwrap_or_else(|| {
        work.iter().filter_map(|(raw, _)| raw.last_timestamp()).max().unwrap_or_else(|| chrono::Utc::now().timestamp())
    });
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
    let mut records = vec![];
    for chunk in mine.chunks(CHUNK) {
        // Points still in their file are read now, a chunk at a time.
        let deferred: Vec<&file::Deferred> = chunk.iter().filter_map(|(_, raw, _)| raw.deferred.as_deref()).collect();
        let mut loaded: HashMap<&str, Result<RawSeries, SourceError>> =
            deferred.iter().map(|d| d.name.as_str()).zip(file::load(&deferred)).collect();
        let inputs: Vec<Input> = chunk
            .iter()
            .map(|&(index, raw, entry)| Input { index, entry, raw, loaded: loaded.remove(raw.name.as_str()) })
            .collect();
        let results: Vec<Result<(ResourceForecast, Option<PastForecast>), RunError>> = inputs
            .par_iter()
            .map(|input| {
                let (index, entry, name) = (input.index, input.entry, &input.raw.name);
                let settings = with_server_values(&entry.settings, entry, from_server.get(name.as_str()).copied());
                let r = settings
                    .map_err(ResourceError::from)
                    .and_then(|s| input.series().and_then(|raw| forecast_resource(raw, &entry.source, &s, Some(as_of))))
                    .and_then(|mut f| {
                        f.index = index;
                        for s in config.scenarios.iter().filter(|s| s.applies_to(name)) {
                            f.add_scenario(s)?;
                        }
                        let record = match track {
                            Some(t) => {
                                let none = vec![];
                                let mut r = f.record(as_of)?;
                                r.config_sha256 = t.config_sha256.to_string();
                                f.score_past(t.earlier.get(name.as_str()).unwrap_or(&none), &r)?;
                                Some(r)
                            }
                            None => None,
                        };
                        sink.each(&f);
                        Ok((f, record))
                    })
                    .map_err(|e| RunError { resource: Some(name.clone()), message: error::line(&e) });
                progress(Progress::Done);
                r
            })
            .collect();
        let (done, kept): (Vec<ResourceForecast>, Vec<Option<PastForecast>>) =
            successes(results, &mut errors).into_iter().unzip();
        records.extend(kept.into_iter().flatten());
        sink.chunk(&done);
        for mut f in done {
            f.shed();
            resources.push(f);
        }
    }
    rank(&mut resources, as_of);
    order_errors(&mut errors);
    RunResult { as_of, resources, errors, notes, fail_on: config.fail_on, total, shard, records, ledger: None }
}

/// One resource of a chunk: its series as read, or as loaded now from its file.
struct Input<'a> {
    index: usize,
    entry: &'a ResourceEntry,
    raw: &'a RawSeries,
    loaded: Option<Result<RawSeries, SourceError>>,
}

impl Input<'_> {
    fn series(&self) -> Result<&RawSeries, ResourceError> {
        match &self.loaded {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone().into()),
            None => Ok(self.raw),
        }
    }
}

/// Reads every source as `run` would and calls `f` on each resource's series with its
/// settings (in parallel; `headroom backtest`). Results come in the config's order.
pub fn each_resource<T: Send>(
    config: &Config,
    as_of: Option<i64>,
    f: &(dyn Fn(&RawSeries, &str, &ResourceSettings) -> Result<T, ResourceError> + Sync),
) -> (Vec<(String, T)>, Vec<RunError>) {
    let (pulled, mut errors, _) = read(config, as_of, None, false);
    let work = assign(config, &pulled, &mut errors);
    let from_server = server_values(&pulled);
    let results: Vec<Result<(String, T), RunError>> = work
        .par_iter()
        .map(|(raw, entry)| {
            with_server_values(&entry.settings, entry, from_server.get(raw.name.as_str()).copied())
                .map_err(ResourceError::from)
                .and_then(|s| f(raw, &entry.source, &s))
                .map(|t| (raw.name.clone(), t))
                .map_err(|e| RunError { resource: Some(raw.name.clone()), message: error::line(&e) })
        })
        .collect();
    let done = successes(results, &mut errors);
    order_errors(&mut errors);
    (done, errors)
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
