//! Command-line flags (clap). Names are fixed by DESIGN.md and CONTRACT.md; they are turned
//! into validated settings once, in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::FailOn;
use crate::report::PlotMode;
use crate::series::Aggregate;
use crate::time::{parse_date, parse_duration};

#[derive(Debug, Parser)]
#[command(
    name = "headroom",
    version,
    about = "When does each resource run out, how sure are we, and what would change it?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Forecast every resource in the config and write reports.
    Run(RunArgs),
    /// Forecast one series file and print JSON (the stable contract for scripts).
    Forecast(ForecastArgs),
    /// What if growth, load or capacity change: baseline and scenario side by side (JSON).
    Whatif(WhatifArgs),
    /// How each model family would have done on each resource's latest history (held out):
    /// MASE, interval coverage and crossing-date error, as a table (or JSON).
    Backtest(BacktestArgs),
    /// Freeze every resource's history into one Parquet file (resource, timestamp, value)
    /// that a `files` source can read, for reproducible or offline runs.
    Pull(PullArgs),
    /// Validate the config and reach every source: what each finds, or why not.
    Check(CheckArgs),
    /// Regenerate the bundled sample fleet.
    Sample(SampleArgs),
    /// Join the output folders of a sharded run (`run --shard I/N`) into one report.
    Merge(MergeArgs),
    /// Time a whole run on a synthetic fleet (or a given file): resources per second, total
    /// time and peak memory.
    Bench(BenchArgs),
    /// The forecasts kept by earlier runs (`[ledger]`): list them, score them against the
    /// history now, show one, or backfill a track record over the history a source holds.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// The runs kept: as-of, file, size and resources.
    List(LedgerArgs),
    /// Every earlier forecast scored against the history the sources hold now (Markdown, or JSON).
    Score(LedgerScoreArgs),
    /// The forecasts one earlier run made (JSON).
    Show(LedgerShowArgs),
    /// Replays earlier as-of dates over the history the sources hold (each forecast made as a
    /// run on that date would have made it: only data up to then) and keeps each in the ledger.
    Backfill(LedgerBackfillArgs),
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct LedgerScoreArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// Score as of this date (default: the last sample).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<i64>,
    /// Only this resource.
    #[arg(long)]
    pub resource: Option<String>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct LedgerShowArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// The run's as-of date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_date)]
    pub as_of: i64,
    /// Only this resource.
    #[arg(long)]
    pub resource: Option<String>,
}

#[derive(Debug, Args)]
pub struct LedgerBackfillArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// The first as-of date to replay.
    #[arg(long, value_parser = parse_date)]
    pub from: i64,
    /// The last one (default: the last sample, excluded: a plain run forecasts from there).
    #[arg(long, value_parser = parse_date)]
    pub to: Option<i64>,
    /// Spacing of the replayed dates.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub every: i64,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// The Parquet file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// End of the pulled history (default: now for servers, everything for files).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<i64>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// End of the hour each server query is tried on (default: now).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<i64>,
}

#[derive(Debug, Args)]
pub struct WhatifArgs {
    #[command(flatten)]
    pub series: ForecastArgs,
    /// Multiply the trend's slope by this from the last input timestamp.
    #[arg(long, allow_negative_numbers = true)]
    pub growth: Option<f64>,
    /// Add load from a date: `2027-03-01:0.1`, or `2027-03-01:10%` of the level then.
    #[arg(long, value_parser = crate::scenario::parse_add)]
    pub add: Option<(i64, crate::scenario::Amount)>,
    /// Multiply capacity from a date (a ratio is divided): `2027-01-15:2`.
    #[arg(long, value_parser = crate::scenario::parse_capacity)]
    pub capacity: Option<(i64, f64)>,
    /// Scale peaks (deviations from the level) by this factor.
    #[arg(long)]
    pub seasonal_amplitude: Option<f64>,
    /// Instead of one file: every resource of a config, with its `[scenarios]`.
    #[arg(long, conflicts_with = "input")]
    pub config: Option<PathBuf>,
    /// With --config: only this scenario.
    #[arg(long, requires = "config")]
    pub scenario: Option<String>,
    /// With --config: forecast as of this date (default: the last sample).
    #[arg(long, requires = "config", value_parser = parse_date)]
    pub as_of: Option<i64>,
    /// With --config: only this resource (its exact name).
    #[arg(long, requires = "config")]
    pub resource: Option<String>,
    /// With --config: also write each resource's overlay plot (baseline and scenarios, each
    /// with its band) into DIR/plots/<slug>.png and .svg.
    #[arg(long, requires = "config")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// One series file and the forecast flags (`--model` is ignored: every family is scored).
    #[command(flatten)]
    pub series: ForecastArgs,
    /// Instead of one file: every resource of a config.
    #[arg(long, conflicts_with = "input")]
    pub config: Option<PathBuf>,
    /// With --config: only this resource (its exact name).
    #[arg(long, requires = "config")]
    pub resource: Option<String>,
    /// Hold out the stretch before this date (default: the last sample).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<i64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, default_value = "headroom.toml")]
    pub config: PathBuf,
    /// Output directory; nothing is written outside it.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Forecast as of this date (YYYY-MM-DD or RFC 3339); default: the last sample.
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<i64>,
    /// Exit 1 when a resource's earliest crossing of this threshold lies within alert_within.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Which resources get plots.
    #[arg(long, value_enum, default_value = "auto")]
    pub plots: PlotMode,
    /// Forecast only part I of N of the resources (1-based, e.g. 2/4; a stable hash of each
    /// name decides); join the parts with `headroom merge`.
    #[arg(long, value_parser = crate::shard::Shard::parse)]
    pub shard: Option<crate::shard::Shard>,
    /// Every output for every resource, whatever the fleet's size: all plots (`--plots auto`),
    /// every forecast path, the daily outline in pretty JSON. Past 200 resources a run
    /// otherwise plots and writes the paths of its 100 most urgent only, so a fleet's
    /// reports fit a CI artefact.
    #[arg(long)]
    pub full: bool,
    /// Roll the overview up and filter the page by this name template over each resource's
    /// labels and name parts (`{1}`: the name up to its first `/`; `{type}`: a label).
    /// Default: `[report] group_by`, else `{1}`.
    #[arg(long)]
    pub group_by: Option<String>,
    /// Neither read nor write the config's `[ledger]` (no track record this run).
    #[arg(long)]
    pub no_ledger: bool,
    /// Open, update and close the capacity issues of the config's `[issues]` tracker.
    #[arg(long, conflicts_with = "issues_dry_run")]
    pub issues: bool,
    /// Print the issue changes `--issues` would make (Markdown, or `=json`), reading the
    /// tracker's issues but changing nothing.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "markdown", require_equals = true)]
    pub issues_dry_run: Option<PlanFormat>,
    /// Only errors on stderr.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// CSV or Parquet file with `timestamp,value` columns (required, except for
    /// `whatif --config`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Value column to forecast (default `value`).
    #[arg(long)]
    pub column: Option<String>,
    /// How far ahead: `48h`, `90d`, `172800s`.
    #[arg(long, default_value = "90d", allow_hyphen_values = true, value_parser = parse_duration)]
    pub horizon: i64,
    /// Step to resample to and forecast at (default: the series' median spacing).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_duration)]
    pub step: Option<i64>,
    /// Central prediction-interval level in (0, 1).
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub level: f64,
    /// Threshold to analyse; may repeat.
    #[arg(long = "threshold", allow_negative_numbers = true)]
    pub thresholds: Vec<f64>,
    /// The series is a ratio: forecasts and bands stay within [0, 1].
    #[arg(long)]
    pub bounded: bool,
    /// How points inside one step are combined.
    #[arg(long, value_enum, default_value = "mean")]
    pub aggregate: AggregateArg,
    /// Model family: auto, naive, seasonal_naive, linear, ets, theta, mstl, piecewise, arima.
    #[arg(long, default_value = "auto", value_parser = crate::model::select::Family::parse)]
    pub model: crate::model::select::Family,
    /// Output format: JSON (`forecast` and `whatif` print nothing else; `backtest` prints a
    /// Markdown table without it).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Resources in the synthetic fleet.
    #[arg(long, default_value_t = 1000)]
    pub resources: usize,
    /// Days of hourly history per resource.
    #[arg(long, default_value_t = 365)]
    pub days: usize,
    /// Time the run on this long-format file (resource,timestamp,value; e.g. written by
    /// ../shared/bench/fleet.py) instead of generating one.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Reports folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which resources get plots.
    #[arg(long, value_enum, default_value = "auto")]
    pub plots: PlotMode,
    /// Forecast horizon.
    #[arg(long, default_value = "90d")]
    pub horizon: String,
    /// Keep a ledger and backfill this many weekly runs into it first (untimed): the timed
    /// run then reads, scores and writes the ledger. Compare with the same bench without it.
    #[arg(long, default_value_t = 0)]
    pub ledger_runs: usize,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' output folders (every shard of the run).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output directory for the merged reports.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Exit 1 when a resource's earliest crossing of this threshold lies within alert_within
    /// (default: the shards' `fail_on`).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Only errors on stderr.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Folder for the sample files.
    #[arg(long, default_value = "data/sample")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
}

/// How `--issues-dry-run` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AggregateArg {
    Mean,
    Max,
    P95,
    P99,
    Last,
}

impl From<AggregateArg> for Aggregate {
    fn from(a: AggregateArg) -> Self {
        match a {
            AggregateArg::Mean => Aggregate::Mean,
            AggregateArg::Max => Aggregate::Max,
            AggregateArg::P95 => Aggregate::P95,
            AggregateArg::P99 => Aggregate::P99,
            AggregateArg::Last => Aggregate::Last,
        }
    }
}
