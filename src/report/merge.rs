//! `headroom merge`: joins the folders of a sharded run (`run --shard I/N`, one folder per
//! shard) into the reports one unsharded run writes: the same ranking, plots and path files.
//! Each shard leaves its summaries in [`SHARD_FILE`]; plots and paths are copied across.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::stream::{Drawn, PathWriter, Plots, Rows, Streamer, plotted, with_paths};
use super::{Cause, PlotMode, ReportError, RunMeta};
use crate::outcome::{ResourceForecast, RunResult, rank};

/// The summaries a shard leaves for `merge`, beside its own reports.
pub const SHARD_FILE: &str = "shard.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub version: String,
    pub config: String,
    pub config_sha256: String,
    pub plots: PlotMode,
    /// The reports' group template (`[report] group_by` of the shards' config).
    #[serde(default = "default_group_by")]
    pub group_by: String,
    /// `run --full`.
    #[serde(default)]
    pub full: bool,
    /// Every resource name of the run (all shards) and its file-safe slug.
    pub slugs: BTreeMap<String, String>,
    pub run: RunResult,
}

fn default_group_by() -> String {
    crate::config::GROUP_BY.to_string()
}

/// A merged run, ready for the exporters.
pub struct Merged {
    pub run: RunResult,
    pub slugs: BTreeMap<String, String>,
    pub plots: Plots,
    pub meta: RunMeta,
    /// Plots a shard should have drawn but did not (its run reported why).
    pub plot_errors: Vec<String>,
}

pub fn write_shard_file(out: &Path, shard: &ShardFile) -> Result<(), ReportError> {
    let bytes = serde_json::to_vec(shard).map_err(ReportError::Encode)?;
    super::write_atomic(&out.join(SHARD_FILE), &bytes)
}

/// Reads every shard folder and writes the merged plots and path files into `out`; the
/// caller writes the other reports from the result.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged, ReportError> {
    const HINT: &str = " (is this the --out folder of a `headroom run --shard I/N`?)";
    let mut shards: Vec<(PathBuf, ShardFile)> = vec![];
    for d in dirs {
        let path = d.join(SHARD_FILE);
        let read = |source: Cause| ReportError::Read { path: path.clone(), hint: HINT, source };
        let bytes = std::fs::read(&path).map_err(|e| read(e.into()))?;
        let s: ShardFile = serde_json::from_slice(&bytes).map_err(|e| read(e.into()))?;
        shards.push((d.clone(), s));
    }
    let Some((_, first)) = shards.first() else { return Err(ReportError::Shards("no shard folders given".into())) };
    let count = first.run.shard.map_or(0, |s| s.count);
    let mut seen = vec![false; count];
    for (dir, s) in &shards {
        let at = dir.display();
        let same = s.version == first.version
            && s.config_sha256 == first.config_sha256
            && s.run.as_of == first.run.as_of
            && s.run.total == first.run.total
            && s.plots == first.plots
            && s.full == first.full;
        if !same {
            return Err(ReportError::Shards(format!(
                "{at}: a shard of a different run (version, config, as-of date, --plots or --full differ from {})",
                shards[0].0.display()
            )));
        }
        match s.run.shard {
            Some(sh) if sh.count == count && !seen[sh.index - 1] => seen[sh.index - 1] = true,
            Some(sh) => {
                return Err(ReportError::Shards(format!(
                    "{at}: shard {sh} repeats or does not belong with {count} shards"
                )));
            }
            None => return Err(ReportError::Shards(format!("{at}: not a sharded run"))),
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(ReportError::Shards(format!(
            "shard {}/{count} is missing: give every shard's folder",
            missing + 1
        )));
    }

    // Summaries: every resource once; source-level errors and notes are the same in every shard.
    let first = &shards[0].1;
    let mut run = RunResult {
        as_of: first.run.as_of,
        total: first.run.total,
        shard: None,
        resources: vec![],
        errors: first.run.errors.iter().filter(|e| e.resource.is_none()).cloned().collect(),
        notes: first.run.notes.clone(),
        fail_on: first.run.fail_on,
        records: vec![],
        ledger: first.run.ledger.clone(),
    };
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (k, (_, s)) in shards.iter().enumerate() {
        run.errors.extend(s.run.errors.iter().filter(|e| e.resource.is_some()).cloned());
        for r in &s.run.resources {
            owner.insert(r.name.clone(), k);
        }
        run.resources.extend(s.run.resources.iter().cloned());
    }
    crate::outcome::order_errors(&mut run.errors);
    rank(&mut run.resources, run.as_of);
    let slugs = first.slugs.clone();

    // Plots: the ones an unsharded run draws, copied from the shard that drew them.
    let plots_dir = out.join("plots");
    let inline = Streamer::inline_for(run.total);
    let mut plots = Plots::new();
    let mut plot_errors = vec![];
    for r in plotted(first.plots, run.total, first.full, &run.resources) {
        let copied = (|| -> Result<Drawn, ReportError> {
            let slug = slugs.get(&r.name).ok_or(ReportError::Plot("no file name for it in the shard files".into()))?;
            let from = shards[owner[&r.name]].0.join("plots");
            let mut drawn = Drawn::default();
            for ext in ["png", "svg", "json"] {
                let name = format!("{slug}.{ext}");
                let path = from.join(&name);
                let bytes = std::fs::read(&path).map_err(|e| ReportError::Read { path, hint: "", source: e.into() })?;
                super::write_atomic(&plots_dir.join(&name), &bytes)?;
                match ext {
                    "svg" if inline => drawn.svg = String::from_utf8_lossy(&bytes).into_owned(),
                    "json" => drawn.explore = String::from_utf8_lossy(&bytes).into_owned(),
                    _ => {}
                }
            }
            Ok(drawn)
        })();
        match copied {
            Ok(d) => {
                plots.insert(r.name.clone(), d);
            }
            Err(e) => plot_errors.push(format!("resource {}: plot: {}", r.name, crate::error::line(&e))),
        }
    }

    // Path files, in run order.
    let wanted = with_paths(run.total, first.full, &run.resources);
    let mut order: Vec<&ResourceForecast> = run.resources.iter().filter(|r| wanted.contains(r.name.as_str())).collect();
    order.sort_by_key(|r| r.index);
    for (file, with_scenario) in [("forecasts.parquet", false), ("scenarios.parquet", true)] {
        let parts: Vec<PathRows> =
            shards.iter().map(|(d, _)| PathRows::read(&d.join(file), with_scenario)).collect::<Result<_, _>>()?;
        let mut w = PathWriter::create(&out.join(file), with_scenario)?;
        for r in &order {
            if let Some(rows) = parts[owner[&r.name]].rows(&r.name)? {
                w.add_rows(rows);
            }
            w.end_resource();
        }
        w.finish()?;
    }
    let meta = RunMeta {
        generated_at: String::new(),
        config: first.config.clone(),
        config_sha256: first.config_sha256.clone(),
        version: first.version.clone(),
        out_dir: out.display().to_string(),
        group_by: first.group_by.clone(),
        full: first.full,
    };
    Ok(Merged { run, slugs, plots, meta, plot_errors })
}

/// One shard's path file: its rows, and where each resource's run of rows lies.
struct PathRows {
    df: DataFrame,
    at: HashMap<String, (usize, usize)>,
    with_scenario: bool,
}

impl PathRows {
    fn read(path: &Path, with_scenario: bool) -> Result<PathRows, ReportError> {
        let fail = |source: Cause| ReportError::Read { path: path.to_path_buf(), hint: "", source };
        let file = std::fs::File::open(path).map_err(|e| fail(e.into()))?;
        let df = ParquetReader::new(file).finish().map_err(|e| fail(e.into()))?;
        let mut at: HashMap<String, (usize, usize)> = HashMap::new();
        let names = df.column("resource").and_then(|c| c.str().cloned()).map_err(|e| fail(e.into()))?;
        let mut run: Option<(String, usize)> = None;
        for (i, name) in names.iter().enumerate() {
            let name = name.unwrap_or_default();
            if run.as_ref().is_some_and(|(n, _)| n != name) {
                if let Some((n, start)) = run.take() {
                    at.insert(n, (start, i - start));
                }
            }
            if run.is_none() {
                run = Some((name.to_string(), i));
            }
        }
        if let Some((n, start)) = run {
            at.insert(n, (start, names.len() - start));
        }
        Ok(PathRows { df, at, with_scenario })
    }

    fn rows(&self, name: &str) -> Result<Option<Rows>, ReportError> {
        let Some(&(start, len)) = self.at.get(name) else { return Ok(None) };
        let part = self.df.slice(start as i64, len);
        let text = |c: &str| -> Result<Vec<String>, PolarsError> {
            Ok(part.column(c)?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
        };
        let num = |c: &str| -> Result<Vec<f64>, PolarsError> {
            Ok(part.column(c)?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        };
        let rows = (|| -> Result<Rows, PolarsError> {
            let ts = part.column("timestamp")?.cast(&DataType::Int64)?;
            Ok(Rows {
                scenario: if self.with_scenario { text("scenario")? } else { vec![String::new(); len] },
                resource: text("resource")?,
                timestamp: ts.i64()?.iter().map(|v| v.unwrap_or_default()).collect(),
                mean: num("mean")?,
                lower: num("lower")?,
                upper: num("upper")?,
            })
        })();
        rows.map(Some).map_err(|source| ReportError::Rows { name: name.to_string(), source })
    }
}
