//! Outputs written while resources stream through a run, so that a run of any size holds
//! only summaries: plots (drawn as each resource is forecast) and the forecast and scenario
//! paths (`forecasts.parquet`, `scenarios.parquet`, written in run order). A large fleet's
//! outputs are sized for CI artefacts: plots and paths for its [`PLOT_BUDGET`] most urgent
//! resources only (kept with their detail while the run streams), unless `full`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use polars::prelude::*;

use super::{Cause, PlotMode, ReportError, plot};
use crate::error;
use crate::model::Forecast;
use crate::outcome::{ResourceForecast, rank_order};
use crate::pipeline::Sink;

/// A fleet up to this size has every resource plotted (`--plots auto`), its plots inline in
/// `index.html` and every path in the path files; a larger one has plots and paths for its
/// [`PLOT_BUDGET`] most urgent resources (the ranking's first: least headroom), linked from
/// the page, unless the run is `--full`.
pub const PLOT_ALL_UP_TO: usize = 200;
pub const PLOT_BUDGET: usize = 100;

/// Resources per row group of the path files (row groups follow run order, so a merged
/// sharded run writes the same bytes).
const RESOURCES_PER_GROUP: usize = 64;

/// One drawn plot as the page uses it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawn {
    /// SVG text when inlined, empty when only linked.
    pub svg: String,
    /// The interactive view's data (`plots/<slug>.json`).
    pub explore: String,
}

/// Plots drawn, by resource name.
pub type Plots = BTreeMap<String, Drawn>;

pub struct Streamer {
    plots_dir: PathBuf,
    mode: PlotMode,
    /// [`PLOT_ALL_UP_TO`] and [`PLOT_BUDGET`] (smaller in tests).
    all_up_to: usize,
    budget: usize,
    /// Every plot (`--plots auto`) and every path, whatever the fleet's size.
    full: bool,
    scenarios_only: bool,
    pub slugs: BTreeMap<String, String>,
    as_of: i64,
    total: usize,
    drawn: Mutex<Plots>,
    plot_errors: Mutex<Vec<String>>,
    /// A large fleet's most urgent resources so far, with their detail: the best
    /// [`PLOT_BUDGET`] by rank, plotted and written at the end.
    kept: Vec<ResourceForecast>,
    paths: Result<PathWriter, ReportError>,
    scenarios: Result<PathWriter, ReportError>,
}

impl Streamer {
    pub fn new(out: &Path, mode: PlotMode) -> Streamer {
        Streamer {
            plots_dir: out.join("plots"),
            mode,
            all_up_to: PLOT_ALL_UP_TO,
            budget: PLOT_BUDGET,
            full: false,
            scenarios_only: false,
            slugs: BTreeMap::new(),
            as_of: 0,
            total: 0,
            drawn: Mutex::new(BTreeMap::new()),
            plot_errors: Mutex::new(vec![]),
            kept: vec![],
            paths: PathWriter::create(&out.join("forecasts.parquet"), false),
            scenarios: PathWriter::create(&out.join("scenarios.parquet"), true),
        }
    }

    /// Every plot and path of a fleet of any size (`run --full`).
    pub fn full(mut self, full: bool) -> Streamer {
        self.full = full;
        self
    }

    /// Whether every resource's paths are written (else the kept ones', at the end).
    fn every_path(&self) -> bool {
        self.inline() || self.full
    }

    /// Plots only resources that some scenario applies to (`whatif --config --out`).
    pub fn only_with_scenarios(mut self) -> Streamer {
        self.scenarios_only = true;
        self
    }

    /// Whether plots go inline into `index.html` (a small fleet) or are linked.
    pub fn inline(&self) -> bool {
        self.total <= self.all_up_to
    }

    pub fn inline_for(total: usize) -> bool {
        total <= PLOT_ALL_UP_TO
    }

    /// Whether a run writes every output of every resource (plots, page sections, paths, the
    /// full JSON): a fleet up to [`PLOT_ALL_UP_TO`], or `--full`.
    pub fn everything_for(total: usize, full: bool) -> bool {
        Self::inline_for(total) || full
    }

    fn plot_now(&self, r: &ResourceForecast) -> bool {
        if self.scenarios_only && r.scenarios.is_empty() {
            return false;
        }
        match self.mode {
            PlotMode::None => false,
            PlotMode::All => true,
            PlotMode::Auto => self.every_path(),
        }
    }

    fn draw(&self, r: &ResourceForecast) {
        let drawn = match self.slugs.get(&r.name) {
            Some(slug) => plot::write(r, self.as_of, &self.plots_dir, slug).and_then(|svg| {
                let explore = super::explore::data(r, self.as_of).unwrap_or_default();
                super::write_atomic(&self.plots_dir.join(format!("{slug}.json")), explore.as_bytes())?;
                Ok(Drawn { svg, explore })
            }),
            None => Err(ReportError::Plot("no file name for it (not among the run's resources)".into())),
        };
        match drawn {
            Ok(mut d) => {
                if !self.inline() {
                    d.svg = String::new();
                }
                lock(&self.drawn).insert(r.name.clone(), d);
            }
            Err(e) => lock(&self.plot_errors).push(format!("resource {}: plot: {}", r.name, error::line(&e))),
        }
    }

    /// Plots and writes the paths of a large fleet's kept resources, closes the path files,
    /// and returns the plots and any errors.
    pub fn finish(mut self) -> (Plots, Vec<String>) {
        let mut kept = std::mem::take(&mut self.kept);
        kept.sort_by_key(|r| r.index);
        if self.mode == PlotMode::Auto && !self.every_path() {
            use rayon::prelude::*;
            kept.par_iter().filter(|r| !self.scenarios_only || !r.scenarios.is_empty()).for_each(|r| self.draw(r));
        }
        self.write_paths(&kept);
        let mut errors = self.plot_errors.into_inner().unwrap_or_else(|e| e.into_inner());
        for w in [self.paths, self.scenarios] {
            if let Err(e) = w.and_then(PathWriter::finish) {
                errors.push(error::line(&e));
            }
        }
        (self.drawn.into_inner().unwrap_or_else(|e| e.into_inner()), errors)
    }
}

impl Sink for Streamer {
    fn start(&mut self, names: &[&str], as_of: i64) {
        self.slugs = super::slugs(names.iter().copied());
        self.as_of = as_of;
        self.total = names.len();
    }

    fn each(&self, r: &ResourceForecast) {
        if self.plot_now(r) {
            self.draw(r);
        }
    }

    fn chunk(&mut self, resources: &[ResourceForecast]) {
        if self.every_path() {
            self.write_paths(resources);
        } else {
            self.kept.extend(resources.iter().filter(|r| r.detail.is_some()).cloned());
            let as_of = self.as_of;
            self.kept.sort_by(|a, b| rank_order(a, b, as_of));
            self.kept.truncate(self.budget);
        }
    }
}

impl Streamer {
    /// Adds resources' forecast and scenario paths to the path files, in the order given.
    fn write_paths(&mut self, resources: &[ResourceForecast]) {
        for r in resources {
            let Some(d) = &r.detail else { continue };
            if let Ok(w) = &mut self.paths {
                w.add(None, r, &d.forecast);
            }
            if let Ok(w) = &mut self.scenarios {
                for ((name, _), f) in r.scenarios.iter().zip(&d.scenario_paths) {
                    w.add(Some(name), r, f);
                }
                w.end_resource();
            }
            if let Ok(w) = &mut self.paths {
                w.end_resource();
            }
        }
    }
}

/// The resources a whole run plots, from its ranking (least headroom first): what the
/// streamer ends up drawing, and what `merge` copies from the shards.
pub fn plotted(mode: PlotMode, total: usize, full: bool, ranked: &[ResourceForecast]) -> Vec<&ResourceForecast> {
    match mode {
        PlotMode::None => vec![],
        PlotMode::All => ranked.iter().collect(),
        PlotMode::Auto if Streamer::everything_for(total, full) => ranked.iter().collect(),
        PlotMode::Auto => ranked.iter().take(PLOT_BUDGET).collect(),
    }
}

/// The resources whose paths a whole run writes: every one, or a large fleet's most urgent.
pub fn with_paths(total: usize, full: bool, ranked: &[ResourceForecast]) -> HashSet<&str> {
    let n = if Streamer::everything_for(total, full) { ranked.len() } else { PLOT_BUDGET };
    ranked.iter().take(n).map(|r| r.name.as_str()).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes forecast paths to a Parquet file (through a temporary file renamed at the end),
/// a row group per [`RESOURCES_PER_GROUP`] resources.
pub struct PathWriter {
    target: PathBuf,
    tmp: PathBuf,
    writer: polars::io::parquet::write::BatchedWriter<File>,
    with_scenario: bool,
    rows: Rows,
    resources: usize,
    /// The first error writing a batch, reported by `finish`.
    error: Option<PolarsError>,
}

#[derive(Default)]
pub struct Rows {
    pub scenario: Vec<String>,
    pub resource: Vec<String>,
    /// Unix milliseconds.
    pub timestamp: Vec<i64>,
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl PathWriter {
    pub fn create(target: &Path, with_scenario: bool) -> Result<PathWriter, ReportError> {
        let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let fail = |e: Cause| ReportError::write(target)(e);
        let file = File::create(&tmp).map_err(|e| fail(e.into()))?;
        let schema = frame(Rows::default(), with_scenario).map_err(|e| fail(e.into()))?.schema().as_ref().clone();
        let writer = ParquetWriter::new(file).batched(&schema).map_err(|e| fail(e.into()))?;
        Ok(PathWriter {
            target: target.to_path_buf(),
            tmp,
            writer,
            with_scenario,
            rows: Rows::default(),
            resources: 0,
            error: None,
        })
    }

    /// Adds one path of a resource.
    pub fn add(&mut self, scenario: Option<&str>, r: &ResourceForecast, f: &Forecast) {
        for i in 0..f.mean.len() {
            self.rows.scenario.push(scenario.unwrap_or_default().to_string());
            self.rows.resource.push(r.name.clone());
            self.rows.timestamp.push(r.forecast_time(i) * 1000);
            self.rows.mean.push(f.mean[i]);
            self.rows.lower.push(f.lower[i]);
            self.rows.upper.push(f.upper[i]);
        }
    }

    /// Adds rows read back from another path file (merging shards).
    pub fn add_rows(&mut self, rows: Rows) {
        let r = &mut self.rows;
        r.scenario.extend(rows.scenario);
        r.resource.extend(rows.resource);
        r.timestamp.extend(rows.timestamp);
        r.mean.extend(rows.mean);
        r.lower.extend(rows.lower);
        r.upper.extend(rows.upper);
    }

    /// Ends one resource's rows; every [`RESOURCES_PER_GROUP`] resources become a row group.
    pub fn end_resource(&mut self) {
        self.resources += 1;
        if self.resources % RESOURCES_PER_GROUP == 0 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows.resource.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        let written = frame(rows, self.with_scenario).and_then(|df| self.writer.write_batch(&df));
        if let Err(e) = written {
            self.error.get_or_insert(e);
        }
    }

    pub fn finish(mut self) -> Result<(), ReportError> {
        self.flush();
        let target = self.target.clone();
        let fail = |e: Cause| ReportError::write(&target)(e);
        if let Some(e) = self.error.take() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(fail(e.into()));
        }
        self.writer.finish().map_err(|e| fail(e.into()))?;
        std::fs::rename(&self.tmp, &self.target).map_err(|e| fail(e.into()))
    }
}

fn frame(rows: Rows, with_scenario: bool) -> Result<DataFrame, PolarsError> {
    let timestamp =
        Column::new("timestamp".into(), rows.timestamp).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?;
    let mut columns = vec![];
    if with_scenario {
        columns.push(Column::new("scenario".into(), rows.scenario));
    }
    columns.extend([
        Column::new("resource".into(), rows.resource),
        timestamp,
        Column::new("mean".into(), rows.mean),
        Column::new("lower".into(), rows.lower),
        Column::new("upper".into(), rows.upper),
    ]);
    DataFrame::new_infer_height(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::rank;
    use crate::report::testdata;

    #[test]
    fn plot_selection_follows_the_design() {
        let run = testdata::run();
        let calm = run.resources.iter().find(|r| r.breaches.iter().all(|b| b.earliest_step.is_none())).unwrap();
        let crossing = run.resources.iter().find(|r| r.breaches.iter().any(|b| b.earliest_step.is_some())).unwrap();
        let fleet: Vec<ResourceForecast> = (0..25)
            .map(|i| ResourceForecast {
                index: i,
                name: format!("r{i:03}"),
                ..if i == 12 { crossing.clone() } else { calm.clone() }
            })
            .collect();
        // At a small scale: 25 resources, the 5 most urgent (the crossing one first), linked,
        // with paths for those 5 only; 20: all, inline, every path; --full: all 25.
        let cases = [(PlotMode::Auto, 25, false, 5), (PlotMode::None, 25, false, 0), (PlotMode::Auto, 20, false, 20)];
        for (mode, total, full, want) in cases.into_iter().chain([(PlotMode::Auto, 25, true, 25)]) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("plots")).unwrap();
            let mut s = Streamer { all_up_to: 20, budget: 5, ..Streamer::new(dir.path(), mode).full(full) };
            let names: Vec<&str> = fleet[..total].iter().map(|r| r.name.as_str()).collect();
            s.start(&names, run.as_of);
            for chunk in fleet[..total].chunks(64) {
                chunk.iter().for_each(|r| s.each(r));
                s.chunk(chunk);
            }
            let mut ranked = fleet[..total].to_vec();
            rank(&mut ranked, run.as_of);
            let (plots, errors) = s.finish();
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(plots.len(), want, "{mode:?} {total}");
            // PNG, SVG and the interactive view's data.
            assert_eq!(std::fs::read_dir(dir.path().join("plots")).unwrap().count(), 3 * want);
            assert!(plots.values().all(|d| d.svg.is_empty() != (total <= 20) && !d.explore.is_empty()));
            assert_eq!(plots.contains_key("r012"), mode == PlotMode::Auto);
            // Every forecast step of the resources with paths (all, or the 5 most urgent), in
            // run order.
            let file = File::open(dir.path().join("forecasts.parquet")).unwrap();
            let df = ParquetReader::new(file).finish().unwrap();
            let with: Vec<&ResourceForecast> =
                if total <= 20 || full { ranked.iter().collect() } else { ranked[..5].iter().collect() };
            let steps: usize = with.iter().map(|r| r.detail.as_ref().unwrap().forecast.mean.len()).sum();
            assert_eq!(df.height(), steps, "{mode:?} {total} {full}");
            let names: Vec<&str> = df.column("resource").unwrap().str().unwrap().iter().flatten().collect();
            let mut order: Vec<&ResourceForecast> = with.clone();
            order.sort_by_key(|r| r.index);
            assert_eq!(names.first().copied(), order.first().map(|r| r.name.as_str()));
        }
    }
}
