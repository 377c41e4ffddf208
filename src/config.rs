//! The TOML config (`headroom.toml`): defaults, sources and resources, as plain serde types
//! that reject unknown keys, then validated once into [`ResourceSettings`] per resource entry.
//! Errors name the file, and the line or the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::source::CAPACITY;
pub use crate::source::prometheus::{BasicAuth, PrometheusConfig};
use serde::{Deserialize, Serialize};

pub use crate::error::Invalid;
use crate::model::select::Family;
use crate::scenario::{Amount, Scenario};
use crate::series::Aggregate;
use crate::time::{parse_date, parse_duration, parse_duration_allow_zero};
use crate::units::{Quantity, parse_quantity};

/// A config that cannot be used, naming the file and, where known, the line or the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read config")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key or type the schema does not have.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax { file: String, line: Option<usize>, message: String },
    /// A value that reads but is wrong; `place` is the table or entry (`[defaults]`,
    /// `[[resources]] #2 (disk)`), empty for the file as a whole.
    #[error("{file}{}{place}", if place.is_empty() { "" } else { ": " })]
    Invalid {
        file: String,
        place: String,
        #[source]
        source: Box<Invalid>,
    },
}

/// Which threshold, if crossed within `alert_within`, makes `run` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Never,
    Soft,
    Hard,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdQueries {
    pub soft: Option<String>,
    pub hard: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub soft: Option<ThresholdValue>,
    pub hard: Option<ThresholdValue>,
}

impl Thresholds {
    fn named(&self) -> impl Iterator<Item = (&'static str, &ThresholdValue)> {
        [("soft", self.soft.as_ref()), ("hard", self.hard.as_ref())].into_iter().filter_map(|(n, v)| v.map(|v| (n, v)))
    }
}

/// A threshold: a number on the forecast's scale (a fraction of `capacity` when the resource
/// has one), or a quantity in the resource's unit (`"450 TB"`, `"420GiB"`, `"16 cores"`) or a
/// percentage of capacity (`"85%"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ThresholdValue {
    Number(f64),
    Quantity(String),
}

/// Declares a config table that carries the per-resource settings keys (shared by
/// `[defaults]` and `[[resources]]`) besides its own, so both reject unknown keys with the
/// line of the offending key (serde's `flatten` would lose it).
macro_rules! with_setting_keys {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            pub history: Option<String>,
            pub step: Option<String>,
            pub aggregate: Option<Aggregate>,
            pub horizon: Option<String>,
            pub level: Option<f64>,
            pub model: Option<Family>,
            pub bounded: Option<bool>,
            pub thresholds: Option<Thresholds>,
            pub alert_within: Option<String>,
            pub lead_time: Option<String>,
        }
        impl $name {
            fn keys(&self) -> SettingKeys<'_> {
                SettingKeys {
                    history: self.history.as_deref(),
                    step: self.step.as_deref(),
                    aggregate: self.aggregate,
                    horizon: self.horizon.as_deref(),
                    level: self.level,
                    model: self.model,
                    bounded: self.bounded,
                    thresholds: self.thresholds.as_ref(),
                    alert_within: self.alert_within.as_deref(),
                    lead_time: self.lead_time.as_deref(),
                }
            }
        }
    };
}

/// One layer of settings keys, borrowed from `[defaults]` or a `[[resources]]` entry.
struct SettingKeys<'a> {
    history: Option<&'a str>,
    step: Option<&'a str>,
    aggregate: Option<Aggregate>,
    horizon: Option<&'a str>,
    level: Option<f64>,
    model: Option<Family>,
    bounded: Option<bool>,
    thresholds: Option<&'a Thresholds>,
    alert_within: Option<&'a str>,
    lead_time: Option<&'a str>,
}

with_setting_keys! {
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Defaults {
        pub fail_on: Option<FailOn>,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// CSV or Parquet files; `path` may be a glob, relative to the config file.
    Files {
        path: String,
        /// Value column (default `value`).
        column: Option<String>,
    },
    /// A Prometheus-compatible HTTP API: Prometheus, Thanos, Mimir, VictoriaMetrics.
    Prometheus(Box<PrometheusConfig>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: String,
    pub kind: EventKind,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The level changed for good (migration, new hardware): fit only on data after it.
    LevelShift,
    /// Marked on plots only.
    Note,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: String,
    pub to: String,
    pub note: Option<String>,
}

with_setting_keys! {
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResourceConfig {
        pub source: String,
        /// An exact series name, or a template over label columns (`{type}/{component}`);
        /// absent: every series of the source not named by another entry.
        pub name: Option<String>,
        /// PromQL for a Prometheus source; one resource per series it returns.
        pub query: Option<String>,
        /// Thresholds read from the server: each query's series are matched to the
        /// resource's series by labels; `thresholds` set on the entry win.
        pub thresholds_query: Option<ThresholdQueries>,
        #[serde(default)]
        pub events: Vec<Event>,
        #[serde(default)]
        pub ignore: Vec<Window>,
        /// The series' unit (`bytes`, `cores`, `connections`): reports show values in it.
        pub unit: Option<String>,
        /// What the resource holds, in `unit`: thresholds are then fractions of it.
        pub capacity: Option<f64>,
        /// PromQL for the capacity (latest value, matched to each series by labels).
        pub capacity_query: Option<String>,
    }
}

/// `[scenarios.NAME]`: a what-if applied to all or some resources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    pub growth: Option<f64>,
    pub growth_from: Option<String>,
    pub add: Option<AddConfig>,
    pub capacity_change: Option<CapacityConfig>,
    pub seasonal_amplitude: Option<f64>,
    pub thresholds: Option<Thresholds>,
    #[serde(default)]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddConfig {
    pub at: String,
    /// A number, or a percentage of the level then (`"10%"`).
    pub value: AddValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AddValue {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    pub at: String,
    pub factor: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    scenarios: BTreeMap<String, ScenarioConfig>,
    #[serde(default)]
    sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
    ledger: Option<LedgerFile>,
    issues: Option<IssuesFile>,
    report: Option<ReportFile>,
}

/// `[report]`: how the reports arrange the fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    /// Name template the overview rolls up by and the page filters on (`{1}`, `{type}`).
    group_by: Option<String>,
}

/// The reports' group template unless the config says otherwise: the name up to its first `/`.
pub const GROUP_BY: &str = "{1}";

/// `[issues]`: one tracker issue per group of resources forecast to breach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuesFile {
    kind: String,
    url: String,
    project: toml::Value,
    token_env: String,
    labels: Option<Vec<String>>,
    group_by: Option<String>,
    min_probability: Option<f64>,
    notify_moved: Option<String>,
    probability_bounds: Option<Vec<f64>>,
    close_after: Option<u32>,
    reopen_within: Option<String>,
    keep_open_label: Option<String>,
    report_url: Option<String>,
    max_new: Option<usize>,
    timeout: Option<String>,
    retries: Option<u32>,
}

/// The validated `[issues]` section (`kind = "gitlab"`, the only tracker so far).
#[derive(Debug, Clone, PartialEq)]
pub struct IssuesConfig {
    /// Base URL of the GitLab instance, without a trailing slash or `/api/v4`.
    pub url: String,
    /// Project path (`group/project`) or numeric id.
    pub project: String,
    /// Environment variable holding the access token (never the token itself).
    pub token_env: String,
    /// Labels every issue carries; the first finds headroom's issues.
    pub labels: Vec<String>,
    /// Name template over the resource's labels and name parts: one issue per value.
    pub group_by: String,
    /// A crossing opens or keeps an issue only at this probability or more.
    pub min_probability: f64,
    /// A crossing that moved more than this (seconds) since the last comment gets a comment.
    pub notify_moved: i64,
    /// Probabilities whose crossing (either way) gets a comment.
    pub probability_bounds: Vec<f64>,
    /// Runs in a row without a crossing before an issue is closed.
    pub close_after: u32,
    /// A closed issue whose breach returns within this (seconds after closing) is reopened.
    pub reopen_within: i64,
    pub keep_open_label: String,
    /// Where the published report lives (linked from each issue).
    pub report_url: Option<String>,
    /// New issues one run may open; beyond, an error line (a misconfigured threshold should
    /// not open a thousand issues).
    pub max_new: usize,
    pub timeout: i64,
    pub retries: u32,
}

impl IssuesFile {
    fn validate(&self) -> Result<IssuesConfig, Invalid> {
        if self.kind != "gitlab" {
            return Err(Invalid::rule(format!("kind = {:?}: the only issue tracker is \"gitlab\"", self.kind)));
        }
        let url = self.url.trim_end_matches('/').trim_end_matches("/api/v4").to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Invalid::rule("url must start with http:// or https://"));
        }
        let project = match &self.project {
            toml::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            toml::Value::Integer(i) if *i > 0 => i.to_string(),
            _ => return Err(Invalid::rule("project: a path (\"group/project\") or a numeric id")),
        };
        if self.token_env.is_empty() {
            return Err(Invalid::rule("token_env: the name of the environment variable holding the token"));
        }
        let labels = self.labels.clone().unwrap_or_else(|| vec!["capacity-planning".into()]);
        if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty() || l.contains(',')) {
            return Err(Invalid::rule("labels: at least one, none empty or with a comma"));
        }
        let group_by = self.group_by.clone().unwrap_or_else(|| "{name}".into());
        if group_by.trim().is_empty() {
            return Err(Invalid::rule(
                "group_by: an empty template would put every resource in one issue; use \"{name}\" for one each",
            ));
        }
        let min_probability = self.min_probability.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_probability) {
            return Err(Invalid::rule(format!("min_probability = {min_probability}: must lie in [0, 1]")));
        }
        let probability_bounds = self.probability_bounds.clone().unwrap_or_else(|| vec![0.5, 0.9]);
        if probability_bounds.iter().any(|p| !(*p > 0.0 && *p < 1.0)) {
            return Err(Invalid::rule("probability_bounds: each in (0, 1)"));
        }
        let duration = |v: &Option<String>, key: &str, default: i64| {
            v.as_deref().map_or(Ok(default), |d| parse_duration_allow_zero(d).map_err(Invalid::time(key)))
        };
        let close_after = self.close_after.unwrap_or(3);
        if close_after == 0 {
            return Err(Invalid::rule("close_after: at least 1 run"));
        }
        let timeout = duration(&self.timeout, "timeout", 30)?;
        if timeout == 0 {
            return Err(Invalid::rule("timeout: at least 1s"));
        }
        if let Some(r) = &self.report_url {
            if !(r.starts_with("http://") || r.starts_with("https://")) {
                return Err(Invalid::rule("report_url must start with http:// or https://"));
            }
        }
        Ok(IssuesConfig {
            url,
            project,
            token_env: self.token_env.clone(),
            labels,
            group_by,
            min_probability,
            notify_moved: duration(&self.notify_moved, "notify_moved", 7 * 86_400)?,
            probability_bounds,
            close_after,
            reopen_within: duration(&self.reopen_within, "reopen_within", 30 * 86_400)?,
            keep_open_label: self.keep_open_label.clone().unwrap_or_else(|| "keep-open".into()),
            report_url: self.report_url.as_ref().map(|r| r.trim_end_matches('/').to_string()),
            max_new: self.max_new.unwrap_or(25),
            timeout,
            retries: self.retries.unwrap_or(3),
        })
    }
}

/// `[ledger]`: where every run's forecasts are kept and scored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    path: Option<String>,
    url: Option<String>,
    keep: Option<String>,
    backfill: Option<String>,
}

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerPlace {
    /// A folder (relative paths resolved against the config's folder).
    Path(PathBuf),
    /// `s3://bucket/prefix` or `gs://bucket/prefix`; credentials from the environment.
    Url(String),
}

/// The validated `[ledger]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerConfig {
    pub place: LedgerPlace,
    /// Runs older than this (seconds before the run's as-of) are dropped.
    pub keep: i64,
    /// When the ledger is empty, the first run replays this much history weekly (0: none).
    pub backfill: i64,
}

/// Kept runs by default: a year and a quarter, so a quarter's forecasts can be scored a year on.
const LEDGER_KEEP: i64 = 400 * 86_400;

impl LedgerFile {
    fn validate(&self, base: &Path) -> Result<LedgerConfig, Invalid> {
        let place = match (&self.path, &self.url) {
            (Some(_), Some(_)) => return Err(Invalid::rule("set `path` or `url`, not both")),
            (None, None) => {
                return Err(Invalid::rule("set `path` (a folder) or `url` (s3://bucket/prefix, gs://bucket/prefix)"));
            }
            (Some(p), None) => LedgerPlace::Path(base.join(p)),
            (None, Some(u)) => {
                if !(u.starts_with("s3://") || u.starts_with("gs://")) || u.len() <= 5 {
                    return Err(Invalid::rule(format!(
                        "url = {u:?}: expected s3://bucket/prefix or gs://bucket/prefix"
                    )));
                }
                LedgerPlace::Url(u.clone())
            }
        };
        let keep = self.keep.as_deref().map(|k| parse_duration(k).map_err(Invalid::time("keep"))).transpose()?;
        let backfill = self
            .backfill
            .as_deref()
            .map(|b| parse_duration_allow_zero(b).map_err(Invalid::time("backfill")))
            .transpose()?;
        Ok(LedgerConfig { place, keep: keep.unwrap_or(LEDGER_KEEP), backfill: backfill.unwrap_or(0) })
    }
}

/// A loaded, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Folder of the config file: relative paths inside it start here.
    pub base: PathBuf,
    pub sources: BTreeMap<String, SourceConfig>,
    pub resources: Vec<ResourceEntry>,
    pub scenarios: Vec<Scenario>,
    pub fail_on: FailOn,
    pub ledger: Option<LedgerConfig>,
    pub issues: Option<IssuesConfig>,
    /// The reports' group template (`[report] group_by`).
    pub group_by: String,
}

/// One `[[resources]]` entry with its settings resolved against `[defaults]`.
#[derive(Debug, Clone)]
pub struct ResourceEntry {
    pub source: String,
    pub name: Option<String>,
    pub query: Option<String>,
    /// Values read from the server: (threshold name or [`CAPACITY`], PromQL), the latest value
    /// of each matched to the resource's series by labels.
    pub server_queries: Vec<(String, String)>,
    /// Threshold names the entry sets itself (they win over `thresholds_query`).
    pub explicit_thresholds: Vec<String>,
    pub settings: ResourceSettings,
}

impl ResourceEntry {
    /// An exact name selects one series; a template or no name selects many.
    pub fn exact_name(&self) -> Option<&str> {
        self.name.as_deref().filter(|n| !n.contains('{'))
    }
    pub fn template(&self) -> Option<&str> {
        self.name.as_deref().filter(|n| n.contains('{'))
    }
}

/// Validated settings for forecasting one resource (durations in seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSettings {
    pub history: i64,
    /// None: the series' median spacing (only `forecast` leaves it open).
    pub step: Option<i64>,
    pub aggregate: Aggregate,
    pub horizon: i64,
    pub level: f64,
    pub model: Family,
    pub bounded: bool,
    /// (name, value), in ascending order of value.
    pub thresholds: Vec<(String, f64)>,
    pub alert_within: i64,
    pub lead_time: i64,
    pub events: Vec<(i64, EventKind, String)>,
    pub ignore: Vec<(i64, i64)>,
    /// The series' unit, for reports.
    pub unit: Option<String>,
    /// The resource's capacity in `unit`: the series is forecast as a fraction of it.
    pub capacity: Option<f64>,
    /// Thresholds given as quantities (`"450 TB"`), put on the forecast's scale by
    /// [`ResourceSettings::resolve_quantities`] once the capacity is known.
    pub quantities: Vec<(String, String)>,
}

impl Default for ResourceSettings {
    fn default() -> Self {
        ResourceSettings {
            history: 365 * 86_400,
            step: Some(3600),
            aggregate: Aggregate::P95,
            horizon: 90 * 86_400,
            level: 0.8,
            model: Family::Auto,
            bounded: false,
            thresholds: vec![("soft".into(), 0.85), ("hard".into(), 0.90)],
            alert_within: 30 * 86_400,
            lead_time: 0,
            events: vec![],
            ignore: vec![],
            unit: None,
            capacity: None,
            quantities: vec![],
        }
    }
}

impl ResourceSettings {
    /// Applies one layer of keys (defaults, then a resource's overrides) on top.
    fn apply(&mut self, d: SettingKeys<'_>) -> Result<(), Invalid> {
        let dur = |key: &str, v: &str| parse_duration(v).map_err(Invalid::time(key));
        if let Some(v) = d.history {
            self.history = dur("history", v)?;
        }
        if let Some(v) = d.step {
            self.step = Some(dur("step", v)?);
        }
        if let Some(v) = d.aggregate {
            self.aggregate = v;
        }
        if let Some(v) = d.horizon {
            self.horizon = dur("horizon", v)?;
        }
        if let Some(v) = d.level {
            self.level = v;
        }
        if let Some(v) = d.model {
            self.model = v;
        }
        if let Some(v) = d.bounded {
            self.bounded = v;
        }
        if let Some(t) = d.thresholds {
            for (name, value) in t.named() {
                self.quantities.retain(|(n, _)| n != name);
                match value {
                    ThresholdValue::Number(v) => self.set_threshold(name, *v),
                    ThresholdValue::Quantity(q) => {
                        self.thresholds.retain(|(n, _)| n != name);
                        self.quantities.push((name.to_string(), q.clone()));
                    }
                }
            }
        }
        if let Some(v) = d.alert_within {
            self.alert_within = dur("alert_within", v)?;
        }
        if let Some(v) = d.lead_time {
            self.lead_time = parse_duration_allow_zero(v).map_err(Invalid::time("lead_time"))?;
        }
        Ok(())
    }

    pub fn set_threshold(&mut self, name: &str, v: f64) {
        match self.thresholds.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.thresholds.push((name.into(), v)),
        }
    }

    /// Puts thresholds given as quantities on the forecast's scale (divided by the capacity,
    /// when there is one), then checks the result.
    pub fn resolve_quantities(&mut self) -> Result<(), Invalid> {
        for (name, text) in std::mem::take(&mut self.quantities) {
            let quantity = parse_quantity(&text, self.unit.as_deref())
                .map_err(|source| Invalid::Quantity { name: name.clone(), source })?;
            let v = match quantity {
                Quantity::Fraction(f) => f,
                Quantity::Units(u) => self.capacity.map_or(u, |c| u / c),
            };
            self.set_threshold(&name, v);
        }
        self.validate()
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Invalid::rule(format!("level = {} must be between 0 and 1 (exclusive), e.g. 0.8", self.level)));
        }
        for (name, v) in &self.thresholds {
            // Ad-hoc thresholds (`--threshold`) are named by their value.
            let label = if *name == v.to_string() { name.clone() } else { format!("{name} = {v}") };
            if !v.is_finite() {
                return Err(Invalid::rule(format!("threshold {label} is not a finite number")));
            }
            if self.bounded && !(*v > 0.0 && *v <= 1.0) {
                return Err(Invalid::rule(format!(
                    "threshold {label} is outside (0, 1] for a bounded (ratio) resource"
                )));
            }
        }
        let get = |n: &str| self.thresholds.iter().find(|(k, _)| k == n).map(|t| t.1);
        if let (Some(s), Some(h)) = (get("soft"), get("hard")) {
            if s > h {
                return Err(Invalid::rule(format!("threshold soft = {s} is above hard = {h}")));
            }
        }
        if let Some(step) = self.step {
            if step > self.horizon {
                return Err(Invalid::rule("step is longer than the horizon"));
            }
        }
        self.thresholds.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(())
    }
}

impl ScenarioConfig {
    fn build(&self, name: &str) -> Result<Scenario, Invalid> {
        let add = match &self.add {
            None => None,
            Some(a) => {
                let at = parse_date(&a.at).map_err(Invalid::time("add.at"))?;
                let amount = match &a.value {
                    AddValue::Number(v) => Amount::Absolute(*v),
                    AddValue::Text(t) => match t.trim().strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()) {
                        Some(p) => Amount::Percent(p / 100.0),
                        None => {
                            return Err(Invalid::rule(format!(
                                "add.value `{t}`: expected a number or a percentage like \"10%\""
                            )));
                        }
                    },
                };
                Some((at, amount))
            }
        };
        let capacity = match &self.capacity_change {
            None => None,
            Some(c) if c.factor > 0.0 && c.factor.is_finite() => {
                Some((parse_date(&c.at).map_err(Invalid::time("capacity_change.at"))?, c.factor))
            }
            Some(c) => return Err(Invalid::rule(format!("capacity_change.factor = {} must be positive", c.factor))),
        };
        let growth_from =
            self.growth_from.as_deref().map(parse_date).transpose().map_err(Invalid::time("growth_from"))?;
        let mut thresholds = vec![];
        for (n, v) in self.thresholds.iter().flat_map(Thresholds::named) {
            match v {
                ThresholdValue::Number(v) => thresholds.push((n.to_string(), *v)),
                ThresholdValue::Quantity(q) => {
                    return Err(Invalid::rule(format!(
                        "thresholds.{n} = \"{q}\": a scenario's thresholds are numbers on each resource's forecast scale (a fraction of capacity where one is set)"
                    )));
                }
            }
        }
        if self.growth.is_none()
            && add.is_none()
            && capacity.is_none()
            && self.seasonal_amplitude.is_none()
            && thresholds.is_empty()
        {
            return Err(Invalid::rule(
                "changes nothing: set growth, add, capacity_change, seasonal_amplitude or thresholds",
            ));
        }
        Ok(Scenario {
            name: name.to_string(),
            growth: self.growth,
            growth_from,
            add,
            capacity,
            seasonal_amplitude: self.seasonal_amplitude,
            thresholds,
            resources: self.resources.clone(),
        })
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: shown, source })?;
    parse(&text, path)
}

/// Parses config text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let file: ConfigFile = toml::from_str(text).map_err(|e| {
        let line =
            e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1);
        let message = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        ConfigError::Syntax { file: shown.clone(), line, message }
    })?;
    // `at(place)` turns a problem into the error naming the file and that place.
    let at = |place: &str| {
        let (file, place) = (shown.clone(), place.to_string());
        move |source: Invalid| ConfigError::Invalid { file, place, source: Box::new(source) }
    };
    let mut base_settings = ResourceSettings::default();
    base_settings.apply(file.defaults.keys()).map_err(at("[defaults]"))?;
    base_settings.validate().map_err(at("[defaults]"))?;
    for (name, src) in &file.sources {
        if let SourceConfig::Prometheus(p) = src {
            p.validate().map_err(at(&format!("[sources.{name}]")))?;
        }
    }
    if file.resources.is_empty() {
        return Err(at("")(Invalid::rule("no [[resources]] entries: nothing to forecast")));
    }
    let mut resources = vec![];
    for (i, r) in file.resources.iter().enumerate() {
        let place = match &r.name {
            Some(n) => format!("[[resources]] #{} ({n})", i + 1),
            None => format!("[[resources]] #{}", i + 1),
        };
        let fail = |text: String| at(&place)(Invalid::Rule(text));
        let Some(source) = file.sources.get(&r.source) else {
            let known: Vec<&str> = file.sources.keys().map(String::as_str).collect();
            return Err(fail(format!(
                "source `{}` is not defined (defined: {})",
                r.source,
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )));
        };
        match (source, &r.query) {
            (SourceConfig::Prometheus(_), None) => {
                return Err(fail(format!("source `{}` is a Prometheus source: set `query`", r.source)));
            }
            (SourceConfig::Files { .. }, Some(_)) => {
                return Err(fail(format!("`query` is for Prometheus sources; `{}` reads files", r.source)));
            }
            (SourceConfig::Files { .. }, None) if r.thresholds_query.is_some() => {
                return Err(fail(format!("`thresholds_query` is for Prometheus sources; `{}` reads files", r.source)));
            }
            _ => {}
        }
        let mut s = base_settings.clone();
        s.apply(r.keys()).map_err(at(&place))?;
        s.unit = r.unit.clone();
        s.capacity = r.capacity;
        match (r.capacity, &r.capacity_query, source) {
            (Some(_), Some(_), _) => {
                return Err(fail("set `capacity` or `capacity_query`, not both".into()));
            }
            (Some(c), _, _) if !(c > 0.0 && c.is_finite()) => {
                return Err(fail(format!("capacity = {c} must be a positive number (in `unit`)")));
            }
            (_, Some(_), SourceConfig::Files { .. }) => {
                return Err(fail(format!(
                    "`capacity_query` is for Prometheus sources; `{}` reads files (set `capacity`)",
                    r.source
                )));
            }
            _ => {}
        }
        for e in &r.events {
            let t = parse_date(&e.at).map_err(Invalid::time("events")).map_err(at(&place))?;
            s.events.push((t, e.kind, e.note.clone().unwrap_or_default()));
        }
        for w in &r.ignore {
            let from = parse_date(&w.from).map_err(Invalid::time("ignore")).map_err(at(&place))?;
            let to = parse_date(&w.to).map_err(Invalid::time("ignore")).map_err(at(&place))?;
            if to <= from {
                return Err(fail(format!("ignore window {} .. {} ends before it starts", w.from, w.to)));
            }
            s.ignore.push((from, to));
        }
        // Quantities are checked now, and resolved now unless the capacity comes from a server.
        for (name, q) in &s.quantities {
            parse_quantity(q, s.unit.as_deref())
                .map_err(|source| at(&place)(Invalid::Quantity { name: name.clone(), source }))?;
        }
        if r.capacity_query.is_none() {
            s.resolve_quantities().map_err(at(&place))?;
        }
        s.validate().map_err(at(&place))?;
        let tq = r.thresholds_query.clone().unwrap_or_default();
        let mut server_queries: Vec<(String, String)> = [("soft", tq.soft), ("hard", tq.hard)]
            .into_iter()
            .filter_map(|(n, q)| q.map(|q| (n.to_string(), q)))
            .collect();
        if let Some(q) = &r.capacity_query {
            server_queries.push((CAPACITY.to_string(), q.clone()));
        }
        let explicit_thresholds = r.thresholds.iter().flat_map(Thresholds::named).map(|(n, _)| n.to_string()).collect();
        resources.push(ResourceEntry {
            source: r.source.clone(),
            name: r.name.clone(),
            query: r.query.clone(),
            server_queries,
            explicit_thresholds,
            settings: s,
        });
    }
    let mut scenarios = vec![];
    for (name, sc) in &file.scenarios {
        scenarios.push(sc.build(name).map_err(at(&format!("[scenarios.{name}]")))?);
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    let ledger = file.ledger.as_ref().map(|l| l.validate(&base).map_err(at("[ledger]"))).transpose()?;
    let group_by = match file.report.as_ref().and_then(|r| r.group_by.clone()) {
        Some(g) if g.trim().is_empty() => return Err(at("[report]")(Invalid::rule("group_by: an empty template"))),
        Some(g) => g,
        None => GROUP_BY.to_string(),
    };
    let issues = file.issues.as_ref().map(|i| i.validate().map_err(at("[issues]"))).transpose()?;
    Ok(Config {
        path: path.to_path_buf(),
        base,
        sources: file.sources,
        resources,
        scenarios,
        fail_on: file.defaults.fail_on.unwrap_or(FailOn::Never),
        ledger,
        issues,
        group_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    /// The error as the user reads it: the whole chain on one line.
    trait Line {
        fn line(&self) -> String;
    }

    impl Line for ConfigError {
        fn line(&self) -> String {
            crate::error::line(self)
        }
    }

    fn parse_str(t: &str) -> Result<Config, ConfigError> {
        parse(t, Path::new("conf/h.toml"))
    }

    const MINIMAL: &str = "[sources.f]\nkind = \"files\"\npath = \"x/*.csv\"\n[[resources]]\nsource = \"f\"\n";

    #[test]
    fn defaults_and_overrides_layer() {
        let c = parse_str(&format!(
            "[defaults]\nhorizon = \"30d\"\nthresholds = {{ soft = 0.7 }}\nbounded = true\nfail_on = \"hard\"\n{MINIMAL}\
             [[resources]]\nsource = \"f\"\nname = \"db\"\nthresholds = {{ hard = 0.95 }}\nstep = \"5m\"\n\
             events = [{{ at = \"2026-03-01\", kind = \"level_shift\" }}]\n\
             ignore = [{{ from = \"2026-05-01\", to = \"2026-05-03\" }}]\n"
        ))
        .unwrap();
        assert_eq!(c.base, Path::new("conf"));
        assert_eq!(c.fail_on, FailOn::Hard);
        let a = &c.resources[0].settings;
        assert_eq!(a.horizon, 30 * 86_400);
        assert_eq!(a.thresholds, vec![("soft".to_string(), 0.7), ("hard".to_string(), 0.9)]);
        let b = &c.resources[1].settings;
        assert_eq!(b.thresholds, vec![("soft".to_string(), 0.7), ("hard".to_string(), 0.95)]);
        assert_eq!(b.step, Some(300));
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.ignore.len(), 1);
        assert_eq!(c.resources[1].exact_name(), Some("db"));
    }

    #[test]
    fn scenarios_parse() {
        let c = parse_str(&format!(
            "{MINIMAL}[scenarios.fast]\ngrowth = 1.5\n[scenarios.customer]\nadd = {{ at = \"2027-03-01\", value = \"10%\" }}\n\
             [scenarios.disk]\ncapacity_change = {{ at = \"2027-01-15\", factor = 2.0 }}\nresources = [\"patroni/*\"]\n"
        ))
        .unwrap();
        let names: Vec<&str> = c.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["customer", "disk", "fast"]);
        assert_eq!(c.scenarios[0].add, Some((1803859200, Amount::Percent(0.1))));
        assert_eq!(c.scenarios[1].capacity.unwrap().1, 2.0);
        let e = parse_str(&format!("{MINIMAL}[scenarios.x]\ngrowht = 2\n")).unwrap_err().line();
        assert!(e.contains("unknown field `growht`"), "{e}");
        let e = parse_str(&format!("{MINIMAL}[scenarios.x]\nadd = {{ at = \"2027-03-01\", value = \"lots\" }}\n"))
            .unwrap_err()
            .line();
        assert!(e.contains("[scenarios.x]: add.value `lots`"), "{e}");
        let e = parse_str(&format!("{MINIMAL}[scenarios.x]\nresources = [\"a\"]\n")).unwrap_err().line();
        assert!(e.contains("changes nothing"), "{e}");
    }

    #[test]
    fn real_units_put_thresholds_on_the_capacity_scale() {
        let c = parse_str(&format!(
            "[defaults]\nthresholds = {{ soft = 0.8, hard = \"95%\" }}\n{MINIMAL}name = \"s3\"\nunit = \"bytes\"\n\
             capacity = 5.0e14\n[[resources]]\nsource = \"f\"\nname = \"pool\"\nunit = \"connections\"\n\
             thresholds = {{ soft = \"400 connections\", hard = \"0.45k\" }}\n"
        ))
        .unwrap();
        let s3 = &c.resources[0].settings;
        assert_eq!((s3.capacity, s3.unit.as_deref()), (Some(5.0e14), Some("bytes")));
        assert_eq!(s3.thresholds, vec![("soft".to_string(), 0.8), ("hard".to_string(), 0.95)]);
        // No capacity: quantities are values of the series itself.
        let pool = &c.resources[1].settings;
        assert_eq!(pool.thresholds, vec![("soft".to_string(), 400.0), ("hard".to_string(), 450.0)]);
        let c =
            parse_str(&format!("{MINIMAL}unit = \"bytes\"\ncapacity = 1e12\nthresholds = {{ hard = \"900 GB\" }}\n"))
                .unwrap();
        assert_eq!(c.resources[0].settings.thresholds[1], ("hard".to_string(), 0.9));
        let cases = [
            ("capacity = 0.0\n", "capacity = 0 must be a positive number"),
            ("capacity = 1.0\ncapacity_query = 'x'\n", "set `capacity` or `capacity_query`, not both"),
            ("capacity_query = 'x'\n", "`capacity_query` is for Prometheus sources"),
            (
                "unit = \"cores\"\nthresholds = { hard = \"16 tasks\" }\n",
                "threshold hard: `16 tasks`: unknown unit `tasks`",
            ),
            ("bounded = true\ncapacity = 10.0\nthresholds = { hard = \"12\" }\n", "outside (0, 1]"),
        ];
        for (extra, want) in cases {
            let e = parse_str(&format!("{MINIMAL}{extra}")).unwrap_err().line();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = parse_str(&format!("{MINIMAL}[scenarios.x]\nthresholds = {{ hard = \"1 TB\" }}\n")).unwrap_err().line();
        assert!(e.contains("a scenario's thresholds are numbers"), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_key_file_and_line() {
        let e = parse_str(&format!("{MINIMAL}horizn = \"3d\"\n")).unwrap_err().line();
        assert!(e.starts_with("conf/h.toml:6:"), "{e}");
        assert!(e.contains("unknown field `horizn`"), "{e}");
        let e = parse_str(&format!("[defaults]\nthresholds = {{ critical = 0.9 }}\n{MINIMAL}")).unwrap_err().line();
        assert!(e.contains("unknown field `critical`"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let cases = [
            ("[defaults]\nbounded = true\nthresholds = { hard = 1.5 }\n", "outside (0, 1]"),
            ("[defaults]\nlevel = 1.2\n", "level = 1.2 must be between 0 and 1"),
            ("[defaults]\nhorizon = \"0d\"\n", "horizon: duration `0d` must be greater than zero"),
            ("[defaults]\nhorizon = \"-5d\"\n", "must not be negative"),
            ("[defaults]\nmodel = \"prophet\"\n", "unknown variant `prophet`"),
            ("[defaults]\naggregate = \"median\"\n", "unknown variant `median`"),
            ("[defaults]\nthresholds = { soft = 0.95, hard = 0.9 }\n", "soft = 0.95 is above hard = 0.9"),
        ];
        for (pre, want) in cases {
            let e = parse_str(&format!("{pre}{MINIMAL}")).unwrap_err().line();
            assert!(e.contains(want), "{pre}: {e}");
        }
        let e = parse_str("[sources.f]\nkind = \"files\"\npath = \"a\"\n[[resources]]\nsource = \"g\"\n")
            .unwrap_err()
            .line();
        assert!(e.contains("source `g` is not defined (defined: f)"), "{e}");
        let e = parse_str("[sources.f]\nkind = \"ftp\"\npath = \"a\"\n").unwrap_err().line();
        assert!(e.contains("unknown variant `ftp`"), "{e}");
        let prom =
            "[sources.p]\nkind = \"prometheus\"\nurl = \"http://localhost:9090\"\n[[resources]]\nsource = \"p\"\n";
        let e = parse_str(prom).unwrap_err().line();
        assert!(e.contains("is a Prometheus source: set `query`"), "{e}");
        let e = parse_str(&prom.replace("localhost", "x\"\ntoken = \"s3cret")).unwrap_err().line();
        assert!(e.contains("unknown field `token`") && !e.contains("s3cret"), "{e}");
        let e = parse_str(&prom.replace("http://", "ftp://")).unwrap_err().line();
        assert!(e.contains("url must start with http"), "{e}");
        let ok = parse_str(&format!("{prom}query = 'up'\n")).unwrap();
        assert_eq!(ok.resources[0].query.as_deref(), Some("up"));
    }

    /// Config text that must give a config or one error line naming the file, never a panic.
    fn survives(text: &str) -> Result<(), TestCaseError> {
        if let Err(e) = parse_str(text) {
            prop_assert!(e.line().starts_with("conf/h.toml"), "{}", e.line());
            prop_assert!(!e.line().contains('\n'), "one line: {}", e.line());
        }
        Ok(())
    }

    #[test]
    fn deeply_nested_toml_is_an_error_not_a_crash() {
        for (open, close) in [("[", "]"), ("{a=", "}")] {
            let text = format!("x = {}1{}\n", open.repeat(100_000), close.repeat(100_000));
            assert!(parse_str(&text).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_never_panics(text in "\\PC{0,300}") {
            survives(&text)?;
        }

        #[test]
        fn cut_and_mangled_configs_never_panic(
            cut in 0.0f64..1.0,
            at in 0.0f64..1.0,
            junk in proptest::sample::select(vec![
                "=", "[[", "]]", "\"", "'''", "\\u0000", "1e99999", "99999999999999999999999", "-0", "nan", "inf",
                "{", "}", "\u{feff}", "\u{1F600}", "\r\n", "#", "[sources.x]\nkind = \"prometheus\"\n",
                "history = \"999999999999d\"\n", "horizon = \"-1d\"\n", "step = \"0s\"\n", "timeout = \"1e9h\"\n",
                "max_series = 0\n", "url = \"http://u:p@h\"\n", "[[resources]]\nsource = \"nope\"\n",
            ]),
        ) {
            let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/headroom.toml")).unwrap();
            let mut cut_at = (text.len() as f64 * cut) as usize;
            while !text.is_char_boundary(cut_at) {
                cut_at -= 1;
            }
            let mut t = text[..cut_at].to_string();
            let mut at = (t.len() as f64 * at) as usize;
            while !t.is_char_boundary(at) {
                at -= 1;
            }
            t.insert_str(at, junk);
            survives(&t)?;
        }
    }
}
