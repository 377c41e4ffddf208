//! The commands: each turns flags into validated settings, runs the pipeline and decides the
//! exit status in one place.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use anyhow::{Context, bail};

use crate::cli::{
    BacktestArgs, BenchArgs, CheckArgs, Command, ForecastArgs, LedgerCommand, MergeArgs, PullArgs, RunArgs, SampleArgs,
    WhatifArgs,
};
use crate::config::{self, ResourceSettings};
use crate::config::{LedgerConfig, LedgerPlace};
use crate::ledger::{self, Ledger};
use crate::outcome::{LedgerNote, ResourceForecast, RunError, RunResult};
use crate::pipeline::{self, Progress};
use crate::report::merge::{self, ShardFile};
use crate::report::stream::Streamer;
use crate::report::{self, PlotMode, Report, RunMeta};
use crate::resource::forecast_resource;
use crate::scenario::Scenario;
use crate::shard::Shard;
use crate::source::RawSeries;
use crate::source::file::{self, FileOptions};
use crate::source::fleet::snapshot;
use crate::time::rfc3339;
use crate::track::PastForecast;
use std::collections::HashMap;

/// Prints a line on stdout. A reader that went away (`headroom check | head`) ends the
/// program quietly instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Exit status (DESIGN.md): error wins over breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    Breach = 1,
    Error = 2,
}

pub fn execute(cmd: Command) -> anyhow::Result<Status> {
    match cmd {
        Command::Run(a) => run(&a),
        Command::Forecast(a) => forecast(&a),
        Command::Whatif(a) => whatif(&a),
        Command::Pull(a) => pull(&a),
        Command::Check(a) => check(&a),
        Command::Sample(a) => sample(&a),
        Command::Bench(a) => bench(&a),
        Command::Merge(a) => merge(&a),
        Command::Backtest(a) => backtest(&a),
        Command::Ledger(c) => ledger_command(&c),
    }
}

/// The config and its opened ledger.
fn open_ledger(path: &Path) -> anyhow::Result<(config::Config, Ledger)> {
    let cfg = config::load(path)?;
    let Some(l) = &cfg.ledger else { bail!("{}: no [ledger] section: no forecasts are kept", path.display()) };
    let ledger = Ledger::open(l)?;
    Ok((cfg, ledger))
}

/// `headroom ledger list | score | show | backfill`.
fn ledger_command(c: &LedgerCommand) -> anyhow::Result<Status> {
    match c {
        LedgerCommand::List(a) => {
            let (_, l) = open_ledger(&a.config)?;
            let c = l.read();
            out!("| as of | file | bytes | resources |\n|---|---|---|---|");
            for r in &c.runs {
                out!("| {} | runs/{} | {} | {} |", rfc3339(r.as_of), r.name, r.bytes, r.resources);
            }
            Ok(ledger_errors(&c.errors))
        }
        LedgerCommand::Show(a) => {
            let (_, l) = open_ledger(&a.config)?;
            let at = a.as_of;
            let c = l.read();
            let shown: Vec<serde_json::Value> = c
                .forecasts
                .iter()
                .filter(|f| f.as_of == at && a.resource.as_ref().is_none_or(|r| *r == f.resource))
                .map(report::json::past_forecast_json)
                .collect();
            if shown.is_empty() && c.errors.is_empty() {
                bail!(
                    "ledger {}: no forecast as of {}{}",
                    l.shown,
                    rfc3339(at),
                    a.resource.as_ref().map_or(String::new(), |r| format!(" for `{r}`"))
                );
            }
            out!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(ledger_errors(&c.errors))
        }
        LedgerCommand::Score(a) => {
            let (cfg, l) = open_ledger(&a.config)?;
            let as_of = a.as_of;
            let c = l.read();
            let mut earlier: HashMap<String, Vec<PastForecast>> = HashMap::new();
            for f in c.forecasts {
                earlier.entry(f.resource.clone()).or_default().push(f);
            }
            let sha = format!("{:x}", Sha256::digest(std::fs::read(&a.config)?));
            let track = pipeline::Track { earlier: &earlier, config_sha256: &sha };
            let mut result = pipeline::run(&cfg, as_of, None, Some(&track), &|_| {}, &mut pipeline::NoSink);
            if let Some(name) = &a.resource {
                result.resources.retain(|r| &r.name == name);
                if result.resources.is_empty() {
                    bail!("{}: no resource named `{name}`", a.config.display());
                }
            }
            result.ledger = Some(LedgerNote {
                place: l.shown.clone(),
                earlier_runs: earlier_runs(&earlier, result.as_of),
                unreadable: c.errors.len(),
                ..LedgerNote::default()
            });
            if matches!(a.format, Some(crate::cli::Format::Json)) {
                let doc = serde_json::json!({
                    "as_of": rfc3339(result.as_of),
                    "track_record": report::json::fleet_track_json(&result),
                    "resources": result.resources.iter().map(|r| serde_json::json!({
                        "name": r.name, "track": r.track.as_ref().map(report::json::track_json),
                    })).collect::<Vec<_>>(),
                });
                out!("{}", serde_json::to_string_pretty(&doc)?);
            } else if let Some(t) = report::track::tables(&result) {
                out!("{}", report::markdown::track_markdown(&t));
            }
            for e in &result.errors {
                eprintln!("error: {e}");
            }
            Ok(if result.errors.is_empty() { ledger_errors(&c.errors) } else { Status::Error })
        }
        LedgerCommand::Backfill(a) => {
            let (cfg, l) = open_ledger(&a.config)?;
            let (from, every) = (a.from, a.every);
            let to = match a.to {
                Some(t) => t,
                None => pipeline::run(&cfg, None, None, None, &|_| {}, &mut pipeline::NoSink).as_of - 1,
            };
            let dates = ledger::dates(from, to, every);
            let sha = format!("{:x}", Sha256::digest(std::fs::read(&a.config)?));
            let n = ledger::backfill(&l, &cfg, &dates, None, &sha)?;
            eprintln!("headroom: {n} of {} runs backfilled into ledger {}", dates.len(), l.shown);
            Ok(Status::Ok)
        }
    }
}

/// Distinct as-of dates before `as_of` among the earlier forecasts.
fn earlier_runs(earlier: &HashMap<String, Vec<PastForecast>>, as_of: i64) -> usize {
    let dates: std::collections::BTreeSet<i64> =
        earlier.values().flatten().map(|f| f.as_of).filter(|t| *t < as_of).collect();
    dates.len()
}

/// Prints the ledger's read errors; the status they make.
fn ledger_errors(errors: &[String]) -> Status {
    for e in errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() { Status::Ok } else { Status::Error }
}

fn run(args: &RunArgs) -> anyhow::Result<Status> {
    let started = Instant::now();
    let mut cfg = config::load(&args.config)?;
    if let Some(f) = args.fail_on {
        cfg.fail_on = f;
    }
    let as_of = args.as_of;
    let plots_dir = args.out.join("plots");
    std::fs::create_dir_all(&plots_dir)
        .with_context(|| format!("cannot create output directory {}", plots_dir.display()))?;
    clear_old_plots(&plots_dir)?;
    let config_bytes = std::fs::read(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let config_sha256 = format!("{:x}", Sha256::digest(&config_bytes));

    let ledger = if args.no_ledger { None } else { cfg.ledger.as_ref() };
    let mut kept = ledger.map(|l| Kept::open(l, &cfg, as_of, args.shard, &config_sha256, args.quiet));
    let fitting = ProgressReport::new("forecast", args.quiet);
    let mut streamer = Streamer::new(&args.out, args.plots).full(args.full);
    let track = kept.as_ref().map(|k| pipeline::Track { earlier: &k.earlier, config_sha256: &config_sha256 });
    let mut result = pipeline::run(&cfg, as_of, args.shard, track.as_ref(), &|p| fitting.update(p), &mut streamer);
    fitting.finish();
    if let Some(k) = kept.as_mut() {
        k.finish(&mut result);
    }
    let slugs = streamer.slugs.clone();
    let (plots, plot_errors) = streamer.finish();
    let meta = RunMeta {
        generated_at: rfc3339(chrono::Utc::now().timestamp()),
        config: args.config.display().to_string(),
        config_sha256,
        version: env!("CARGO_PKG_VERSION").to_string(),
        out_dir: args.out.display().to_string(),
        group_by: args.group_by.clone().unwrap_or_else(|| cfg.group_by.clone()),
        full: args.full,
    };
    if args.shard.is_some() {
        let shard = ShardFile {
            version: meta.version.clone(),
            config: meta.config.clone(),
            config_sha256: meta.config_sha256.clone(),
            plots: args.plots,
            group_by: meta.group_by.clone(),
            full: args.full,
            slugs: slugs.clone(),
            run: result.clone(),
        };
        merge::write_shard_file(&args.out, &shard)?;
    }
    let rep = Report { run: &result, slugs: &slugs, plots: &plots, meta: &meta };
    report::write_all(&args.out, &rep)?;
    let mut errors = plot_errors;
    errors.extend(sync_issues(args, &cfg, &rep));
    Ok(conclude(&result, &errors, &args.out, args.quiet, started))
}

/// `run --issues` / `--issues-dry-run`, after the reports are written (a tracker that fails
/// costs no report): the plan printed or carried out; its error lines.
fn sync_issues(args: &RunArgs, cfg: &config::Config, rep: &Report) -> Vec<String> {
    let result = rep.run;
    let dry = args.issues_dry_run;
    if !args.issues && dry.is_none() {
        return vec![];
    }
    let Some(ic) = &cfg.issues else {
        return vec![format!("{}: no [issues] section: --issues has no tracker to act on", args.config.display())];
    };
    if args.shard.is_some() {
        return vec!["[issues] not with --shard: a part of the fleet would close the other parts' issues".into()];
    }
    // The PNG of every plotted resource, for the uploads.
    let plots: BTreeMap<String, std::path::PathBuf> =
        rep.plots.keys().filter_map(|name| Some((name.clone(), args.out.join(rep.plot_path(name, "png")?)))).collect();
    let synced = crate::issues::sync(result, ic, &plots, dry.is_some());
    match dry {
        _ if !synced.planned => {}
        Some(crate::cli::PlanFormat::Json) => {
            out!("{}", serde_json::to_string_pretty(&synced.plan).unwrap_or_default());
        }
        Some(crate::cli::PlanFormat::Markdown) => out!("{}", crate::issues::plan_markdown(&synced.plan, true)),
        None if !args.quiet => {
            let count = |a: &str| synced.plan.planned.iter().filter(|p| p.action == a).count();
            eprintln!(
                "headroom: issues in {}: {} created, {} updated, {} commented, {} closed, {} reopened, {} left alone ({} calls)",
                ic.url,
                count("create"),
                count("update"),
                count("comment"),
                count("close"),
                count("reopen"),
                count("leave"),
                synced.calls_made
            );
        }
        None => {}
    }
    if !args.quiet {
        for n in &synced.plan.notes {
            eprintln!("note: {n}");
        }
    }
    synced.errors
}

/// A run's ledger: opened and read before the run (backfilled when empty), written after.
/// Every failure is an error line of the run; the forecasts and reports go on without it.
struct Kept {
    ledger: Option<Ledger>,
    keep: i64,
    earlier: HashMap<String, Vec<PastForecast>>,
    errors: Vec<String>,
    note: LedgerNote,
}

impl Kept {
    fn open(
        cfg: &LedgerConfig,
        config: &config::Config,
        as_of: Option<i64>,
        shard: Option<Shard>,
        sha: &str,
        quiet: bool,
    ) -> Kept {
        let place = match &cfg.place {
            LedgerPlace::Path(p) => p.display().to_string(),
            LedgerPlace::Url(u) => u.clone(),
        };
        let note = LedgerNote { place, ..LedgerNote::default() };
        let mut k = Kept { ledger: None, keep: cfg.keep, earlier: HashMap::new(), errors: vec![], note };
        let ledger = match Ledger::open(cfg) {
            Ok(l) => l,
            Err(e) => {
                k.errors.push(e.to_string());
                return k;
            }
        };
        let mut contents = ledger.read();
        if !contents.reachable {
            // Nothing is written where nothing could be read: one line, no further attempts.
            k.errors.extend(contents.errors);
            return k;
        }
        // An empty ledger (and a readable one): replay `backfill` weekly, so the first run
        // already shows a track record.
        if contents.runs.is_empty() && contents.errors.is_empty() && cfg.backfill > 0 {
            let until =
                as_of.unwrap_or_else(|| pipeline::run(config, None, shard, None, &|_| {}, &mut pipeline::NoSink).as_of);
            let dates = ledger::backfill_dates(until, cfg.backfill);
            if !quiet {
                eprintln!("headroom: ledger {} is empty: backfilling {} weekly runs", ledger.shown, dates.len());
            }
            match ledger::backfill(&ledger, config, &dates, shard, sha) {
                Ok(n) => k.note.backfilled = n,
                Err(e) => k.errors.push(e.to_string()),
            }
            contents = ledger.read();
        }
        k.errors.extend(contents.errors.iter().cloned());
        k.note.unreadable = contents.errors.len();
        for f in contents.forecasts {
            k.earlier.entry(f.resource.clone()).or_default().push(f);
        }
        k.ledger = Some(ledger);
        k
    }

    /// Writes the run's forecasts and drops what is older than `keep`; errors join the run's.
    fn finish(&mut self, result: &mut RunResult) {
        let mut errors = std::mem::take(&mut self.errors);
        self.note.earlier_runs = earlier_runs(&self.earlier, result.as_of);
        // Forecasts of none of this run's resources: another config's ledger. Said once, and
        // nothing of this run is mixed into it.
        let foreign = !self.earlier.is_empty()
            && !result.resources.is_empty()
            && result.resources.iter().all(|r| !self.earlier.contains_key(&r.name));
        if foreign {
            let l = self.ledger.as_ref().map_or(String::new(), |l| l.shown.clone());
            errors.push(format!(
                "ledger {l}: its {} resources include none of this run's {}: another config's ledger? Nothing was written to it",
                self.earlier.len(),
                result.resources.len()
            ));
        }
        if let Some(l) = self.ledger.as_ref().filter(|_| !foreign) {
            match l.write(result.as_of, &result.records) {
                Ok(name) => self.note.written = name,
                Err(e) => errors.push(e.to_string()),
            }
            match l.prune(result.as_of, self.keep) {
                Ok(n) => self.note.pruned = n,
                Err(e) => errors.push(e.to_string()),
            }
        }
        result.errors.extend(errors.into_iter().map(|message| RunError { resource: None, message }));
        result.ledger = Some(self.note.clone());
    }
}

/// `headroom merge`: the shards' folders joined into the reports of one run.
fn merge(args: &MergeArgs) -> anyhow::Result<Status> {
    let started = Instant::now();
    let plots_dir = args.out.join("plots");
    std::fs::create_dir_all(&plots_dir)
        .with_context(|| format!("cannot create output directory {}", plots_dir.display()))?;
    clear_old_plots(&plots_dir)?;
    let mut m = merge::merge(&args.dirs, &args.out)?;
    if let Some(f) = args.fail_on {
        m.run.fail_on = f;
    }
    m.meta.generated_at = rfc3339(chrono::Utc::now().timestamp());
    let rep = Report { run: &m.run, slugs: &m.slugs, plots: &m.plots, meta: &m.meta };
    report::write_all(&args.out, &rep)?;
    Ok(conclude(&m.run, &m.plot_errors, &args.out, args.quiet, started))
}

/// Notes, errors and the one-line summary on stderr, and the exit status of a run.
fn conclude(result: &RunResult, plot_errors: &[String], out: &Path, quiet: bool, started: Instant) -> Status {
    if !quiet {
        for n in &result.notes {
            eprintln!("note: {n}");
        }
        for r in &result.resources {
            for n in &r.notes {
                eprintln!("note: resource {}: {n}", r.name);
            }
        }
    }
    for e in &result.errors {
        eprintln!("error: {e}");
    }
    for e in plot_errors {
        eprintln!("error: {e}");
    }
    let failing = result.failing();
    if !quiet {
        eprintln!(
            "headroom: {} resources forecast as of {}, {} errors, {} failing --fail-on {}; reports in {} ({:.1} s)",
            result.resources.len(),
            rfc3339(result.as_of),
            result.errors.len() + plot_errors.len(),
            failing.len(),
            format!("{:?}", result.fail_on).to_lowercase(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    if !result.errors.is_empty() || !plot_errors.is_empty() {
        Status::Error
    } else if !failing.is_empty() {
        Status::Breach
    } else {
        Status::Ok
    }
}

/// Progress on stderr: a bar on a terminal, a plain line every 10 % elsewhere (CI logs),
/// nothing with `--quiet`.
struct ProgressReport {
    what: &'static str,
    bar: Option<ProgressBar>,
    plain: bool,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl ProgressReport {
    fn new(what: &'static str, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({eta} left)")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what);
            bar
        });
        ProgressReport { what, bar, plain: !quiet && !terminal, total: AtomicUsize::new(0), done: AtomicUsize::new(0) }
    }

    fn update(&self, p: Progress) {
        match p {
            Progress::Start(n) => {
                self.total.store(n, Ordering::Relaxed);
                if let Some(b) = &self.bar {
                    b.set_length(n as u64);
                }
            }
            Progress::Done => {
                let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
                let total = self.total.load(Ordering::Relaxed);
                // Plain lines only for runs big enough to need them.
                if self.plain && total >= 100 && (done * 10 / total) > ((done - 1) * 10 / total) {
                    eprintln!("{}: {done}/{total}", self.what);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Removes plots of an earlier run, so `plots/` only holds this run's.
fn clear_old_plots(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "png" || e == "svg") {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove old plot {}", path.display()))?;
        }
    }
    Ok(())
}

/// `headroom forecast`: one series, JSON on stdout (CONTRACT.md).
fn forecast(args: &ForecastArgs) -> anyhow::Result<Status> {
    let r = forecast_one(args)?;
    let f = r.detail.as_ref().map(|d| &d.forecast).context("forecast path missing")?;
    out!("{}", serde_json::to_string(&report::json::contract(&r, f))?);
    Ok(Status::Ok)
}

/// `headroom whatif`: with `--config`, every resource's baseline next to each configured
/// scenario as a Markdown table on stdout; otherwise the inline form (CONTRACT.md): the
/// flags make one scenario named `inline` for one series, JSON on stdout.
fn whatif(args: &WhatifArgs) -> anyhow::Result<Status> {
    if let Some(path) = &args.config {
        return whatif_config(path, args);
    }
    let scenario = Scenario {
        name: "inline".into(),
        growth: args.growth,
        add: args.add,
        capacity: args.capacity,
        seasonal_amplitude: args.seasonal_amplitude,
        ..Scenario::default()
    };
    let r = forecast_one(&args.series)?;
    let (f, b) = r.scenario(&scenario)?;
    let base = r.detail.as_ref().map(|d| &d.forecast).context("forecast path missing")?;
    out!("{}", serde_json::to_string(&report::json::whatif(&r, base, &[(scenario.name.clone(), f, b)]))?);
    Ok(Status::Ok)
}

fn whatif_config(path: &Path, args: &WhatifArgs) -> anyhow::Result<Status> {
    let mut cfg = config::load(path)?;
    if let Some(name) = &args.scenario {
        let known: Vec<String> = cfg.scenarios.iter().map(|s| s.name.clone()).collect();
        cfg.scenarios.retain(|s| &s.name == name);
        if cfg.scenarios.is_empty() {
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            bail!("{}: no scenario named `{name}` (defined: {known})", path.display());
        }
    }
    if cfg.scenarios.is_empty() {
        bail!("{}: no [scenarios] defined; add one or use the inline flags with --input", path.display());
    }
    let as_of = args.as_of;
    if let Some(name) = &args.resource {
        // Only the scenarios that apply to it, and only to it.
        cfg.scenarios.retain(|s| s.applies_to(name));
        if cfg.scenarios.is_empty() {
            bail!("{}: no scenario applies to `{name}`", path.display());
        }
        for s in &mut cfg.scenarios {
            s.resources = vec![name.clone()];
        }
    }
    let mut overlays = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir.join("plots")).with_context(|| format!("cannot create {}", dir.display()))?;
            Some(Streamer::new(dir, PlotMode::All).only_with_scenarios())
        }
        None => None,
    };
    let sink: &mut dyn pipeline::Sink = match overlays.as_mut() {
        Some(s) => s,
        None => &mut pipeline::NoSink,
    };
    let mut result = pipeline::run(&cfg, as_of, None, None, &|_| {}, sink);
    if let Some(name) = &args.resource {
        result.resources.retain(|r| &r.name == name);
        result.errors.retain(|e| e.resource.as_ref().is_none_or(|r| r == name));
        if result.resources.is_empty() && result.errors.is_empty() {
            bail!("{}: no resource named `{name}`", path.display());
        }
    }
    out!("{}", report::markdown::whatif_table(&result));
    let mut errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    if let Some(s) = overlays {
        let (plots, plot_errors) = s.finish();
        errors.extend(plot_errors);
        if let Some(dir) = &args.out {
            eprintln!("wrote {} overlay plots into {}", plots.len(), dir.join("plots").display());
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() { Status::Ok } else { Status::Error })
}

/// Reads one series file and forecasts it with the flags' settings.
fn forecast_one(args: &ForecastArgs) -> anyhow::Result<ResourceForecast> {
    let (raw, settings) = one_series(args)?;
    let input = args.input.as_deref().unwrap_or(Path::new("-"));
    let r: ResourceForecast =
        forecast_resource(&raw, "file", &settings, None).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    Ok(r)
}

/// `headroom backtest`: every family scored on each resource's held-out latest history.
fn backtest(args: &BacktestArgs) -> anyhow::Result<Status> {
    let as_of = args.as_of;
    let (evaluations, errors) = match &args.config {
        Some(path) => {
            let cfg = config::load(path)?;
            let (mut done, mut errors) = pipeline::each_resource(&cfg, as_of, &|raw, source, s| {
                crate::backtest::evaluate(raw, source, s, as_of)
            });
            if let Some(name) = &args.resource {
                done.retain(|(n, _)| n == name);
                errors.retain(|e| e.resource.as_ref().is_none_or(|r| r == name));
                if done.is_empty() && errors.is_empty() {
                    bail!("{}: no resource named `{name}`", path.display());
                }
            }
            (done, errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())
        }
        None => {
            let (raw, settings) = one_series(&args.series)?;
            let e = crate::backtest::evaluate(&raw, "file", &settings, as_of)?;
            (vec![(raw.name.clone(), e)], vec![])
        }
    };
    match args.series.format {
        Some(_) => {
            let doc: Vec<serde_json::Value> =
                evaluations.iter().map(|(name, e)| serde_json::json!({"resource": name, "evaluation": e})).collect();
            out!("{}", serde_json::to_string_pretty(&doc)?);
        }
        None => out!("{}", crate::backtest::table(&evaluations).trim_end()),
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() { Status::Ok } else { Status::Error })
}

/// Reads one series file and turns the flags into its settings.
fn one_series(args: &ForecastArgs) -> anyhow::Result<(RawSeries, ResourceSettings)> {
    let Some(input) = &args.input else { bail!("--input FILE is required") };
    let (horizon, step) = (args.horizon, args.step);
    let mut settings = ResourceSettings {
        step,
        horizon,
        level: args.level,
        bounded: args.bounded,
        aggregate: args.aggregate.into(),
        model: args.model,
        thresholds: args.thresholds.iter().map(|t| (t.to_string(), *t)).collect(),
        history: i64::MAX / 4,
        ..ResourceSettings::default()
    };
    let order = settings.thresholds.clone();
    settings.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Breaches come out in the order the thresholds were given.
    settings.thresholds = order;
    let opts = FileOptions { column: args.column.clone(), ..FileOptions::default() };
    let pulled = file::read_file(input, &opts)?;
    if let Some(e) = pulled.errors.first() {
        bail!("{e}");
    }
    let raw = match pulled.series.as_slice() {
        [one] => one,
        [] => bail!("{}: no series found", input.display()),
        many => bail!(
            "{}: holds {} series ({}, ...); `forecast` takes one (use `headroom run` for a fleet)",
            input.display(),
            many.len(),
            many[0].name
        ),
    };
    for n in &pulled.notes {
        eprintln!("note: {n}");
    }
    Ok((raw.clone(), settings))
}

/// `headroom pull`: every resource's raw history into one long Parquet file.
fn pull(args: &PullArgs) -> anyhow::Result<Status> {
    let started = Instant::now();
    let cfg = config::load(&args.config)?;
    let as_of = args.as_of;
    // An existing snapshot is extended: only steps after its oldest series end are fetched.
    let existing = if args.out.exists() {
        let p = file::read_file(&args.out, &FileOptions::default())?;
        if let Some(e) = p.errors.first() {
            bail!("{e}");
        }
        p.series
    } else {
        vec![]
    };
    let since = existing.iter().filter_map(|s| s.timestamps.iter().max().copied()).min();
    let (fresh, errors, notes) = snapshot(&cfg, as_of, since);
    let fetch_secs = started.elapsed().as_secs_f64();
    let fetched: usize = fresh.iter().map(|s| s.timestamps.len()).sum();
    let series = merge_snapshot(existing, fresh);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = args.out.with_extension("parquet.tmp");
    file::write_long_parquet(&tmp, &series)?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("cannot write {}", args.out.display()))?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    let points: usize = series.iter().map(|s| s.timestamps.len()).sum();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "headroom: pulled {} resources, {fetched} points fetched in {fetch_secs:.2} s ({:.0} points/s), written in {:.2} s; {} holds {points} points",
        series.len(),
        fetched as f64 / fetch_secs.max(1e-9),
        secs - fetch_secs,
        args.out.display()
    );
    Ok(if errors.is_empty() { Status::Ok } else { Status::Error })
}

/// Appends freshly pulled points after each existing series' last timestamp; series only in
/// one of the two are kept as they are. Order: existing series first, then new ones.
fn merge_snapshot(existing: Vec<RawSeries>, fresh: Vec<RawSeries>) -> Vec<RawSeries> {
    let mut out = existing;
    let mut index: BTreeMap<String, usize> = out.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
    for s in fresh {
        match index.get(&s.name) {
            Some(&i) => {
                let last = out[i].timestamps.iter().max().copied().unwrap_or(i64::MIN);
                for (t, v) in s.timestamps.into_iter().zip(s.values) {
                    if t > last {
                        out[i].timestamps.push(t);
                        out[i].values.push(v);
                    }
                }
            }
            None => {
                index.insert(s.name.clone(), out.len());
                out.push(s);
            }
        }
    }
    out
}

/// `headroom check`: the config is valid, and each resource entry's source answers (files
/// are read; each Prometheus query runs over its last hour).
fn check(args: &CheckArgs) -> anyhow::Result<Status> {
    let cfg = config::load(&args.config)?;
    let as_of = args.as_of;
    out!(
        "config {}: {} sources, {} resource entries, {} scenarios",
        args.config.display(),
        cfg.sources.len(),
        cfg.resources.len(),
        cfg.scenarios.len()
    );
    let mut failed = 0;
    for (i, entry) in cfg.resources.iter().enumerate() {
        let what = match (&entry.name, &entry.query) {
            (_, Some(q)) => format!("[[resources]] #{} (source {}, query `{q}`)", i + 1, entry.source),
            (Some(n), None) => format!("[[resources]] #{} (source {}, name {n})", i + 1, entry.source),
            (None, None) => format!("[[resources]] #{} (source {})", i + 1, entry.source),
        };
        let mut one = cfg.clone();
        one.resources = vec![entry.clone()];
        // A server query only needs to answer for its last hour here.
        if entry.query.is_some() {
            one.resources[0].settings.history = entry.settings.step.unwrap_or(3600).max(3600);
        }
        let (mut series, errors, _) = snapshot(&one, as_of, None);
        if entry.exact_name().is_none() {
            // As in `run`: series named by another entry of the same source are that entry's.
            series.retain(|s| {
                !cfg.resources.iter().any(|e| e.source == entry.source && e.exact_name() == Some(s.name.as_str()))
            });
        }
        for e in &errors {
            eprintln!("error: {what}: {e}");
        }
        failed += errors.len();
        let mut names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        let shown = names.len();
        names.truncate(5);
        out!(
            "{what}: {shown} series{}{}",
            if shown > 0 { ": " } else { "" },
            names.join(", ") + if shown > 5 { ", ..." } else { "" }
        );
    }
    Ok(if failed == 0 { Status::Ok } else { Status::Error })
}

/// `headroom bench`: writes a synthetic fleet (unless `--input`), then times a whole
/// `headroom run` over it in a child process: wall time, CPU time and peak memory.
fn bench(args: &BenchArgs) -> anyhow::Result<Status> {
    let scratch = std::env::temp_dir().join(format!("headroom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let result = bench_in(args, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bench_in(args: &BenchArgs, scratch: &Path) -> anyhow::Result<Status> {
    let mut last_sample = None;
    let input = match &args.input {
        Some(p) => std::path::absolute(p).with_context(|| format!("{}", p.display()))?,
        None => {
            let started = Instant::now();
            let fleet = crate::sample::synthetic_fleet(args.resources, args.days, 1);
            last_sample = fleet.iter().filter_map(|s| s.timestamps.iter().max().copied()).max();
            let path = scratch.join("fleet.parquet");
            file::write_long_parquet(&path, &fleet)?;
            eprintln!(
                "bench: generated {} resources x {} hourly points in {:.1} s",
                args.resources,
                args.days * 24,
                started.elapsed().as_secs_f64()
            );
            path
        }
    };
    let out = args.out.clone().unwrap_or_else(|| scratch.join("reports"));
    let config = scratch.join("bench.toml");
    let text = format!(
        "[defaults]\nbounded = true\nhorizon = {}\n[sources.fleet]\nkind = \"files\"\npath = {}\n[[resources]]\nsource = \"fleet\"\n",
        toml::Value::String(args.horizon.clone()),
        toml::Value::String(input.display().to_string())
    );
    let text = if args.ledger_runs > 0 { format!("{text}[ledger]\npath = \"ledger\"\n") } else { text };
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    if args.ledger_runs > 0 {
        let started = Instant::now();
        let mut backfill = std::process::Command::new(std::env::current_exe()?);
        backfill.args(["ledger", "backfill", "--config"]).arg(&config);
        let Some(end) = last_sample else {
            bail!("--ledger-runs needs the synthetic fleet (its last sample dates the backfill)");
        };
        let weeks = args.ledger_runs as i64 * ledger::WEEK;
        backfill.args(["--from", &rfc3339(end - weeks), "--to", &rfc3339(end - 1)]);
        let status = backfill.status().context("cannot start the backfill")?;
        if !status.success() {
            bail!("the backfill failed ({status})");
        }
        eprintln!(
            "bench: backfilled {} weekly runs in {:.1} s (untimed)",
            args.ledger_runs,
            started.elapsed().as_secs_f64()
        );
    }
    let plots = format!("{:?}", args.plots).to_lowercase();
    let (_, cpu_before) = child_usage();
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["run", "--quiet", "--plots", &plots, "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .status()
        .context("cannot start the timed run")?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the timed run failed ({status})");
    }
    let (peak_kib, cpu_after) = child_usage();
    let cpu = cpu_after - cpu_before;
    let prom = std::fs::read_to_string(out.join("headroom.prom")).unwrap_or_default();
    let n: f64 = prom
        .lines()
        .find_map(|l| l.strip_prefix("headroom_forecast_resources "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let plotted = std::fs::read_dir(out.join("plots")).map_or(0, |d| d.count() / 2);
    out!(
        "{n} resources from {} ({} plotted), horizon {}, {} threads\n\
         total {wall:.1} s, {:.0} resources/s, {:.2} ms wall and {:.2} ms CPU per resource, peak RSS {:.0} MiB{}",
        input.display(),
        plotted,
        args.horizon,
        rayon::current_num_threads(),
        n / wall,
        1000.0 * wall / n.max(1.0),
        1000.0 * cpu / n.max(1.0),
        peak_kib as f64 / 1024.0,
        if args.ledger_runs > 0 {
            format!(" (of any child); ledger of {} earlier runs read, scored and written", args.ledger_runs)
        } else {
            String::new()
        }
    );
    if args.out.is_some() {
        out!("reports in {}", out.display());
    }
    Ok(Status::Ok)
}

/// Peak resident memory (KiB) and CPU seconds (user + system) of waited-for children.
fn child_usage() -> (i64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return (0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (u.ru_maxrss, secs(u.ru_utime) + secs(u.ru_stime))
}

fn sample(args: &SampleArgs) -> anyhow::Result<Status> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let written = crate::sample::write(&args.out)?;
    let mut by_file: BTreeMap<String, usize> = BTreeMap::new();
    for (f, n) in written {
        *by_file.entry(f).or_default() += n;
    }
    for (f, n) in by_file {
        eprintln!("wrote {f} ({n} series)");
    }
    Ok(Status::Ok)
}
