//! Outputs of a run. Every file format is a pure function from the run's results to bytes
//! behind [`Exporter`]; `write_all` writes them all. Plots are one file per resource.

pub mod json;
pub mod markdown;
pub mod parquet;
pub mod plot;

use std::collections::BTreeMap;
use std::path::Path;

use crate::pipeline::{ResourceForecast, RunResult};

/// What every report shows: the run's results and the context to read them by.
pub struct Report<'a> {
    pub run: &'a RunResult,
    /// Resource name -> plot file stem under `plots/` (only plotted resources).
    pub plots: &'a BTreeMap<String, String>,
    /// Wall-clock time of the run (the one field not derived from inputs and `--as-of`).
    pub generated_at: String,
    pub config: String,
}

/// One output file.
pub trait Exporter {
    fn file_name(&self) -> &'static str;
    fn render(&self, report: &Report) -> Result<Vec<u8>, String>;
}

pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![Box::new(json::ForecastsJson), Box::new(markdown::Summary), Box::new(parquet::ForecastPaths)]
}

/// Writes every exporter's file into `out`.
pub fn write_all(out: &Path, report: &Report) -> Result<(), String> {
    for e in exporters() {
        let bytes = e.render(report).map_err(|m| format!("{}: {m}", e.file_name()))?;
        let path = out.join(e.file_name());
        std::fs::write(&path, bytes).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(())
}

/// Which resources get plots: `all`, `none`, or `auto` (every resource of a fleet up to
/// 200; beyond that, those crossing a threshold within the horizon plus the 50 with least
/// headroom). Resources arrive ranked, least headroom first.
pub fn plotted(resources: &[ResourceForecast], mode: PlotMode) -> Vec<&ResourceForecast> {
    match mode {
        PlotMode::None => vec![],
        PlotMode::All => resources.iter().collect(),
        PlotMode::Auto if resources.len() <= 200 => resources.iter().collect(),
        PlotMode::Auto => resources
            .iter()
            .enumerate()
            .filter(|(i, r)| *i < 50 || r.breaches.iter().any(|b| b.earliest_step.is_some()))
            .map(|(_, r)| r)
            .collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotMode {
    Auto,
    All,
    None,
}

/// A file-safe name for a resource; a short hash keeps two names apart when their safe
/// forms collide.
pub fn slugs<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let names: Vec<&str> = names.into_iter().collect();
    let base = |n: &str| {
        let s: String = n
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c.to_ascii_lowercase() } else { '_' })
            .collect();
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
            let slug = if count[&b] > 1 { format!("{b}-{:08x}", fnv1a(n) as u32) } else { b };
            (n.to_string(), slug)
        })
        .collect()
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_distinct() {
        let s = slugs(["Web/CPU", "web_cpu", "../etc", "ok-1.x"]);
        assert_eq!(s["ok-1.x"], "ok-1.x");
        assert_eq!(s["../etc"], "etc");
        assert_ne!(s["Web/CPU"], s["web_cpu"]);
        assert!(s["Web/CPU"].starts_with("web_cpu-"));
    }
}
