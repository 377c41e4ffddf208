//! Outputs of a run. Every file format is a pure function from the run's results to bytes
//! behind [`Exporter`]; `write_all` writes them all, each atomically. Plots are rendered once
//! (SVG) and reused: as files, and inline in the HTML page.

pub mod explore;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod overview;
pub mod plot;
pub mod prom;
pub mod stream;
pub mod track;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::outcome::{ResourceForecast, RunResult};
pub use crate::units::fmt_value;
use crate::units::format_quantity;

/// What every report shows: the run's results and the context to read them by.
pub struct Report<'a> {
    pub run: &'a RunResult,
    /// Resource name -> file-safe slug (every resource; plots and anchors use it).
    pub slugs: &'a BTreeMap<String, String>,
    /// Resource name -> its plot as drawn (only plotted resources).
    pub plots: &'a stream::Plots,
    pub meta: &'a RunMeta,
}

/// Facts about the run itself, shown in reports.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// Wall-clock time of the run (the one field not derived from inputs and `--as-of`).
    pub generated_at: String,
    pub config: String,
    /// SHA-256 of the config file's bytes.
    pub config_sha256: String,
    pub version: String,
    /// The output folder as given (`reports`), for links relative to the project.
    pub out_dir: String,
    /// The name template the overview rolls up by and the page filters on.
    pub group_by: String,
    /// `run --full`: every output of every resource, whatever the fleet's size.
    pub full: bool,
}

impl Report<'_> {
    /// `plots/<slug>.png` when the resource was plotted.
    pub fn plot_path(&self, name: &str, ext: &str) -> Option<String> {
        let slug = self.slugs.get(name).filter(|_| self.plots.contains_key(name))?;
        Some(format!("plots/{slug}.{ext}"))
    }
}

/// The cause of a report error: an I/O, Parquet or JSON error.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A report that could not be written, naming the file; the cause is the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    /// Reading back what a run wrote (merging shards); `hint` says what the file should be.
    #[error("cannot read {}{hint}", path.display())]
    Read {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: Cause,
    },
    #[error("cannot encode JSON")]
    Encode(#[source] serde_json::Error),
    /// Shard folders that do not make up one run.
    #[error("{0}")]
    Shards(String),
    /// A plot that cannot be drawn (plotters, usvg and png say why in text).
    #[error("{0}")]
    Plot(String),
    /// One resource's rows of a path file.
    #[error("resource {name}")]
    Rows {
        name: String,
        #[source]
        source: polars::error::PolarsError,
    },
}

impl ReportError {
    pub fn write(path: &Path) -> impl FnOnce(Cause) -> ReportError + '_ {
        move |source| ReportError::Write { path: path.to_path_buf(), source }
    }
}

/// One output file.
pub trait Exporter {
    fn file_name(&self) -> &'static str;
    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError>;
}

pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(html::Page),
        Box::new(markdown::Summary),
        Box::new(json::ForecastsJson),
        Box::new(junit::Junit),
        Box::new(prom::Textfile),
    ]
}

/// Writes every exporter's file into `out`.
pub fn write_all(out: &Path, report: &Report) -> Result<(), ReportError> {
    for e in exporters() {
        let path = out.join(e.file_name());
        let bytes = e.render(report).map_err(|m| ReportError::write(&path)(Box::new(m)))?;
        write_atomic(&out.join(e.file_name()), &bytes)?;
    }
    Ok(())
}

/// Writes a file so readers never see it half-written: a temporary file beside it, then a
/// rename over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::write(path)(Box::new(e))
    })
}

/// Which resources get plots: `all`, `none`, or `auto` (every resource of a fleet up to
/// 200; beyond that, those crossing a threshold within the horizon plus the 50 with least
/// headroom; see [`stream::Streamer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlotMode {
    Auto,
    All,
    None,
}

/// A file-safe name for each resource: ASCII letters, digits, `-`, `_` and inner `.` only
/// (so no `..`, `/` or control characters), at most 80 characters; a short hash of the full
/// name keeps two resources apart when their safe forms collide.
pub fn slugs<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let names: Vec<&str> = names.into_iter().collect();
    let base = |n: &str| {
        let s: String = n
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c.to_ascii_lowercase() } else { '_' })
            .collect();
        let s = s.replace("..", "_");
        let s = s.trim_matches(|c| c == '.' || c == '_').to_string();
        if s.is_empty() { "resource".to_string() } else { s.chars().take(80).collect() }
    };
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for n in &names {
        *count.entry(base(n)).or_default() += 1;
    }
    names
        .iter()
        .map(|n| {
            let b = base(n);
            let slug = if count[&b] > 1 { format!("{b}-{:08x}", crate::stats::fnv1a(n) as u32) } else { b };
            (n.to_string(), slug)
        })
        .collect()
}

/// A probability in whole percent, never rounded to a certainty it is not ("<1 %", ">99 %").
pub fn percent(p: f64) -> String {
    match format!("{:.0}", p * 100.0) {
        s if s == "0" && p > 0.0 => "<1 %".into(),
        s if s == "100" && p < 1.0 => ">99 %".into(),
        s => format!("{s} %"),
    }
}

/// A value on a resource's forecast scale (`fmt_value`), with real units beside it where the
/// resource has them: `0.820 (373 TiB)` for a fraction of capacity, `412 connections`.
pub fn level(r: &ResourceForecast, v: f64) -> String {
    with_units(r, v, fmt_value(v))
}

/// A threshold as configured (`0.9`), with real units beside it where the resource has them.
pub fn threshold(r: &ResourceForecast, t: f64) -> String {
    with_units(r, t, t.to_string())
}

fn with_units(r: &ResourceForecast, v: f64, plain: String) -> String {
    match (&r.settings.unit, r.settings.capacity) {
        (Some(u), Some(c)) => format!("{plain} ({})", format_quantity(v * c, u)),
        (None, Some(c)) => format!("{plain} ({})", fmt_value(v * c)),
        (Some(u), None) if v.is_finite() => format_quantity(v, u),
        _ => plain,
    }
}

/// `x` at four significant digits (the precision a large fleet's outputs keep).
pub fn sig4(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// A date for tables, or a dash.
pub fn opt_day(t: Option<i64>) -> String {
    t.map_or("–".into(), crate::time::day)
}

/// Escapes text for HTML and XML content and attribute values, and drops the control
/// characters XML 1.0 cannot carry (tab and newline are kept).
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testdata {
    //! A small deterministic run for snapshot tests of the exporters.
    use super::*;
    use crate::config::{EventKind, FailOn, ResourceSettings};
    use crate::outcome::{RunError, RunResult, rank};
    use crate::resource::forecast_resource;
    use crate::source::RawSeries;

    pub fn run() -> RunResult {
        let series = |name: &str, f: &dyn Fn(f64) -> f64| {
            RawSeries::new(
                name.into(),
                "test".into(),
                (0..24 * 14).map(|i| 1_767_225_600 + 3600 * i).collect(),
                (0..24 * 14).map(|i| f(i as f64)).collect(),
            )
        };
        let settings = ResourceSettings {
            horizon: 6 * 3600,
            bounded: true,
            alert_within: 3 * 3600,
            thresholds: vec![("soft".into(), 0.8), ("hard".into(), 0.9)],
            ..ResourceSettings::default()
        };
        // A pool in real units: 2000 connections, thresholds as fractions of them.
        let pool = ResourceSettings { unit: Some("connections".into()), capacity: Some(2000.0), ..settings.clone() };
        let mut shifted = settings.clone();
        shifted.events.push((1_767_225_600 + 3600 * 24 * 7, EventKind::LevelShift, "migration".into()));
        let raws = [
            (series("db/disk", &|i| 0.5 + 0.0012 * i), &settings),
            (
                series("web <script>alert(1)</script> & \"cpu\"", &|i| {
                    0.3 + 0.05 * ((i / 24.0) * std::f64::consts::TAU).sin()
                }),
                &shifted,
            ),
            (series("pool/connections", &|_| 1900.0), &pool),
        ];
        let mut resources: Vec<_> = raws
            .iter()
            .map(|(r, s)| forecast_resource(r, "files", s, Some(1_767_225_600 + 3600 * (24 * 14 - 1))).unwrap())
            .collect();
        let as_of = 1_767_225_600 + 3600 * (24 * 14 - 1);
        rank(&mut resources, as_of);
        RunResult {
            as_of,
            resources,
            errors: vec![RunError {
                resource: Some("bad\u{1}name".into()),
                message: "data/x.csv: value `oops` at line 3 is not a number".into(),
            }],
            notes: vec![],
            fail_on: FailOn::Hard,
            total: 3,
            shard: None,
            records: vec![],
            ledger: None,
        }
    }

    /// Renders one exporter's file for the test run; `plotted`: every resource has a plot.
    pub fn render(exporter: &dyn Exporter, plotted: bool) -> String {
        let run = run();
        let slugs = slugs(run.resources.iter().map(|r| r.name.as_str()));
        let plots: stream::Plots =
            run.resources.iter().filter(|_| plotted).map(|r| (r.name.clone(), stream::Drawn::default())).collect();
        let meta = meta();
        let report = Report { run: &run, slugs: &slugs, plots: &plots, meta: &meta };
        String::from_utf8(exporter.render(&report).unwrap()).unwrap()
    }

    pub fn meta() -> RunMeta {
        RunMeta {
            generated_at: "2026-01-15T00:00:00Z".into(),
            config: "headroom.toml".into(),
            config_sha256: "0".repeat(64),
            version: "0.0.0-test".into(),
            out_dir: "reports".into(),
            group_by: crate::config::GROUP_BY.into(),
            full: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_not_rounded_to_certainty() {
        // 0.005 rounds (half to even) to "0", 0.995 to "100": neither is a certainty.
        let shown: Vec<String> =
            [0.0, 0.003, 0.005, 0.006, 0.5, 0.994, 0.995, 0.996, 1.0].into_iter().map(percent).collect();
        assert_eq!(shown, ["0 %", "<1 %", "<1 %", "1 %", "50 %", "99 %", ">99 %", ">99 %", "100 %"]);
    }

    #[test]
    fn slugs_are_safe_and_distinct() {
        let s = slugs(["Web/CPU", "web_cpu", "../etc", "ok-1.x", "a..b", "\u{1}"]);
        assert_eq!(s["ok-1.x"], "ok-1.x");
        assert_eq!(s["../etc"], "etc");
        assert_eq!(s["a..b"], "a_b");
        assert_eq!(s["\u{1}"], "resource");
        assert_ne!(s["Web/CPU"], s["web_cpu"]);
        assert!(s["Web/CPU"].starts_with("web_cpu-"));
        assert!(s.values().all(|v| !v.contains("..") && !v.contains('/')));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_xml("<a href=\"x\">&'\u{1}\n"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}&#10;");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write_atomic(&d.path().join("no/such/dir"), b"x").is_err());
    }
}
