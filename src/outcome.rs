//! What a run produced: each resource's forecast, breaches, scenarios and notes, the run's
//! errors, and the ranking. Every exporter reads these; none of them refits anything.

use serde::{Deserialize, Serialize};

use crate::breach::{self, Breach};
use crate::config::{FailOn, ResourceSettings};
use crate::model::changepoint;
use crate::model::select::{self, SelectionScore};
use crate::model::{ErrorPaths, Forecast, InSample, seasonal_periods};
use crate::scenario::Scenario;
use crate::series::Series;
use crate::shard::Shard;
use crate::track::{self, PastForecast, PastThreshold, TrackRecord};

/// One resource, forecast: a small summary kept for the whole run (ranking and reports), and
/// the full detail (history, paths, backtest errors) that lives only while the resource
/// streams through plots and path files, then is shed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceForecast {
    /// Position in the run's list of resources (all shards counted): path files follow it.
    pub index: usize,
    pub name: String,
    pub source: String,
    /// The series' labels, where its source has them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
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
    pub backtest: Option<SelectionScore>,
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
    /// Earlier forecasts of this resource scored, and the drift since the last run (runs
    /// with a ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<TrackRecord>,
    #[serde(skip)]
    pub detail: Option<Detail>,
}

/// What a resource carries only while it streams through the run.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The prepared history (regular steps, gaps as NaN).
    pub history: Series,
    /// The chosen model's in-sample fit from `fit_start` (see [`Detail::fitted_values`]).
    pub fitted: InSample,
    pub forecast: Forecast,
    /// The chosen forecast's backtest errors (breach odds for scenarios reuse them).
    pub errors: ErrorPaths,
    /// Where the fit moved the history before a level shift onto the new regime.
    pub moved: Option<(usize, changepoint::Regime)>,
    /// The scenarios' paths, in the order of `scenarios`.
    pub scenario_paths: Vec<Forecast>,
    /// The latest earlier forecasts (runs with a ledger, at most [`PAST_BANDS`]), newest
    /// first: plots draw their bands over what happened.
    pub past: Vec<PastForecast>,
}

impl Detail {
    /// In-sample fitted values from `fit_start`, one per history step, over the history as it
    /// was (values before a level shift moved back off the new regime).
    pub fn fitted_values(&self) -> Vec<f64> {
        let mut values = self.fitted.values();
        if let Some((at, regime)) = self.moved {
            values.iter_mut().take(at).for_each(|v| *v = regime.unmap(*v));
        }
        values
    }
}

/// Earlier forecasts drawn on a resource's plot.
pub const PAST_BANDS: usize = 4;

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

/// A forecast whose detail (paths, history) was already dropped to save memory was asked
/// for it: a bug in the order of a run's steps, reported rather than a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("resource {0}: detail already shed")]
pub struct Shed(pub String);

impl ResourceForecast {
    pub fn step(&self) -> i64 {
        self.step
    }

    /// What the ledger keeps of this forecast: marks at whole days after `as_of`, each
    /// threshold's crossings and odds. Needs the detail; the config hash is the ledger's to add.
    pub fn record(&self, as_of: i64) -> Result<PastForecast, Shed> {
        let f = &self.detail()?.forecast;
        Ok(PastForecast {
            resource: self.name.clone(),
            as_of,
            model: self.model.clone(),
            config_sha256: String::new(),
            level: self.settings.level,
            level_shift: self.level_shift,
            headroom_days: self.headroom_days(as_of),
            outline: track::marks(as_of, self.forecast_start, self.step, &f.mean, &f.lower, &f.upper),
            thresholds: self
                .breaches
                .iter()
                .map(|b| PastThreshold {
                    name: b.name.clone(),
                    value: b.threshold,
                    expected_at: self.expected_at(b),
                    earliest_at: self.earliest_at(b),
                    probability: b.probability,
                    already_breached: b.already_breached,
                })
                .collect(),
        })
    }

    /// Scores the earlier forecasts of this resource against its history now, `now` being
    /// this run's [`record`](Self::record) of it. Needs the detail.
    pub fn score_past(&mut self, past: &[PastForecast], now: &PastForecast) -> Result<(), Shed> {
        let as_of = now.as_of;
        self.track = Some(track::score(&self.detail()?.history, past, now, as_of));
        let mut latest: Vec<&PastForecast> = past.iter().filter(|p| p.as_of < as_of).collect();
        latest.sort_by_key(|p| std::cmp::Reverse(p.as_of));
        if let Some(d) = self.detail.as_mut() {
            d.past = latest.into_iter().take(PAST_BANDS).cloned().collect();
        }
        Ok(())
    }

    /// The resource's group under a name template: `{label}` is one of its labels, `{name}`
    /// its name, `{1}`, `{2}`, ... the parts of its name split at `/`. None when the template
    /// names something the resource lacks.
    pub fn group(&self, template: &str) -> Option<String> {
        let parts: Vec<&str> = self.name.split('/').collect();
        let mut out = template.to_string();
        for key in crate::source::file::template_keys(template) {
            let value = match key.parse::<usize>() {
                Ok(i) if i >= 1 => parts.get(i - 1).copied(),
                _ if key == "name" => Some(self.name.as_str()),
                _ => self.labels.get(&key).map(String::as_str),
            }?;
            out = out.replace(&format!("{{{key}}}"), value);
        }
        Some(out)
    }

    /// Drops the detail, keeping the summary.
    pub fn shed(&mut self) {
        self.detail = None;
    }

    fn detail(&self) -> Result<&Detail, Shed> {
        self.detail.as_ref().ok_or_else(|| Shed(self.name.clone()))
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
        self.alert_likely(as_of, 0.0)
    }

    /// [`alert`](Self::alert) among the thresholds crossed with at least `min_probability`
    /// (or already breached).
    pub fn alert_likely(&self, as_of: i64, min_probability: f64) -> Option<&Breach> {
        let limit = self.alert_until(as_of);
        self.breaches
            .iter()
            .rev()
            .filter(|b| min_probability <= 0.0 || b.probability >= min_probability || b.already_breached)
            .find(|b| self.earliest_at(b).is_some_and(|t| t <= limit))
    }

    /// The end of the alert window: crossings up to here alert.
    pub fn alert_until(&self, as_of: i64) -> i64 {
        as_of + self.settings.alert_within
    }

    /// Applies a scenario to this forecast: its path and its own breach analysis (thresholds
    /// overridden where the scenario says so), on the same basis as the baseline's. Needs the
    /// detail.
    pub fn scenario(&self, s: &Scenario) -> Result<(Forecast, Vec<Breach>), Shed> {
        let d = self.detail()?;
        let season = seasonal_periods(self.step()).last().copied().unwrap_or(24);
        let basis = fit_basis(&d.history, self.fit_start, d.moved);
        let range = select::Range::of(&basis.values, self.settings.bounded);
        let f = range.tidy(s.apply(&d.forecast, d.history.end(), self.step(), season, range.bounds()));
        let breaches = analyse_thresholds(&self.settings, &s.thresholds, &f, &basis.values, &d.errors);
        Ok((f, breaches))
    }

    /// Adds a scenario's outcome (breaches to the summary, the path to the detail).
    pub fn add_scenario(&mut self, s: &Scenario) -> Result<(), Shed> {
        let (path, breaches) = self.scenario(s)?;
        self.scenarios.push((s.name.clone(), breaches));
        if let Some(d) = self.detail.as_mut() {
            d.scenario_paths.push(path);
        }
        Ok(())
    }

    /// The last date to act: earliest crossing minus the lead time.
    pub fn act_by(&self, b: &Breach) -> Option<i64> {
        self.earliest_at(b).map(|t| t - self.settings.lead_time)
    }

    /// One threshold's crossing (baseline or scenario) as instants and days from `as_of`.
    pub fn crossing<'a>(&self, b: &'a Breach, as_of: i64) -> Crossing<'a> {
        let (expected, earliest) = (self.expected_at(b), self.earliest_at(b));
        let days = |t: Option<i64>| t.map(|t| breach::days_between(as_of, t));
        Crossing {
            breach: b,
            expected,
            earliest,
            expected_days: days(expected),
            earliest_days: days(earliest),
            act_by: self.act_by(b),
        }
    }

    /// What every report says of this resource, worked out once: status, headroom, each
    /// threshold's crossings, and how far each scenario moves them.
    pub fn view(&self, as_of: i64) -> View<'_> {
        let crossings: Vec<Crossing> = self.breaches.iter().map(|b| self.crossing(b, as_of)).collect();
        let alert = self.alert(as_of).map(|b| self.crossing(b, as_of));
        let base = |name: &str| crossings.iter().find(|c| c.breach.name == name);
        let scenarios = self
            .scenarios
            .iter()
            .map(|(name, breaches)| {
                let moved = breaches
                    .iter()
                    .map(|b| {
                        let c = self.crossing(b, as_of);
                        let was = base(&b.name);
                        ScenarioCrossing {
                            expected_moved: Shift::between(was.and_then(|w| w.expected), c.expected),
                            earliest_moved: Shift::between(was.and_then(|w| w.earliest), c.earliest),
                            crossing: c,
                        }
                    })
                    .collect();
                (name.as_str(), moved)
            })
            .collect();
        View {
            alert_until: self.alert_until(as_of),
            status: alert.as_ref().map_or("ok", |c| c.breach.name.as_str()),
            headroom_days: self.headroom_days(as_of),
            p_hard: self.breach("hard").map(|b| b.probability),
            act_by: crossings.last().and_then(|c| c.act_by),
            alert,
            crossings,
            scenarios,
        }
    }
}

/// One threshold's crossing as every report shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing<'a> {
    pub breach: &'a Breach,
    /// When the mean path and the upper bound first reach the threshold (the first forecast
    /// step when it is already breached).
    pub expected: Option<i64>,
    pub earliest: Option<i64>,
    /// Days from the as-of date to them (0 for a crossing at or before it).
    pub expected_days: Option<f64>,
    pub earliest_days: Option<f64>,
    /// The earliest crossing minus the lead time.
    pub act_by: Option<i64>,
}

/// A scenario's crossing of one threshold and how far it moved from the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioCrossing<'a> {
    pub crossing: Crossing<'a>,
    pub expected_moved: Shift,
    pub earliest_moved: Shift,
}

/// What every report says of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct View<'a> {
    /// `hard`, `soft` (or another threshold's name) when alerting, else `ok`.
    pub status: &'a str,
    /// The highest threshold whose earliest crossing lies within the alert window.
    pub alert: Option<Crossing<'a>>,
    /// Days to the first upper-bound crossing of any threshold (None: none in the horizon).
    pub headroom_days: Option<f64>,
    pub crossings: Vec<Crossing<'a>>,
    pub p_hard: Option<f64>,
    /// When to act on the highest threshold.
    pub act_by: Option<i64>,
    pub scenarios: Vec<(&'a str, Vec<ScenarioCrossing<'a>>)>,
    /// The end of the alert window.
    pub alert_until: i64,
}

impl View<'_> {
    /// Whether a crossing's earliest date falls within the alert window.
    pub fn alerts(&self, c: &Crossing) -> bool {
        c.earliest.is_some_and(|t| t <= self.alert_until)
    }
}

/// A scenario's crossing against the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// Days later (positive) or earlier (negative).
    Days(f64),
    /// The baseline crosses; the scenario does not within the horizon.
    BeyondHorizon,
    /// The baseline does not cross (nothing to compare with).
    Unknown,
}

impl Shift {
    /// From the baseline's crossing to a scenario's.
    pub fn between(baseline: Option<i64>, scenario: Option<i64>) -> Shift {
        match (scenario, baseline) {
            (Some(s), Some(t)) => Shift::Days((s - t) as f64 / 86_400.0),
            (None, Some(_)) => Shift::BeyondHorizon,
            _ => Shift::Unknown,
        }
    }
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
    /// What the ledger keeps of this run (runs with a ledger), in run order.
    #[serde(skip)]
    pub records: Vec<PastForecast>,
    /// The ledger this run read and wrote (runs with one).
    #[serde(default)]
    pub ledger: Option<LedgerNote>,
}

/// What a run did with its ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerNote {
    /// The folder or URL (no credentials).
    pub place: String,
    /// Distinct earlier as-of dates read, and files that could not be read.
    pub earlier_runs: usize,
    pub unreadable: usize,
    /// The file this run wrote (None: the same forecasts were already there, or writing failed).
    pub written: Option<String>,
    /// Runs the first run backfilled, and runs dropped for being older than `keep`.
    pub backfilled: usize,
    pub pruned: usize,
}

impl RunResult {
    /// The fleet's track record: every resource's pooled (empty without a ledger).
    pub fn fleet_track(&self) -> track::FleetTrack {
        let runs = self.ledger.as_ref().map_or(0, |l| l.earlier_runs);
        track::fleet(self.resources.iter().filter_map(|r| r.track.as_ref()), runs)
    }

    /// Resources whose earliest crossing of the `fail_on` threshold lies within `alert_within`.
    pub fn failing(&self) -> Vec<&ResourceForecast> {
        let wanted = match self.fail_on {
            FailOn::Never => return vec![],
            FailOn::Soft => "soft",
            FailOn::Hard => "hard",
        };
        self.resources
            .iter()
            .filter(|r| r.breach(wanted).and_then(|b| r.earliest_at(b)).is_some_and(|t| t <= r.alert_until(self.as_of)))
            .collect()
    }
}

/// Every threshold of a resource against one path (the baseline's or a scenario's, with the
/// scenario's threshold overrides), read against the history as the fit saw it: one
/// analysis for both, so a scenario that changes nothing reproduces the baseline.
pub fn analyse_thresholds(
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
pub fn fit_basis(history: &Series, fit_start: i64, moved: Option<(usize, changepoint::Regime)>) -> Series {
    let mut fit = history.since(fit_start);
    if let Some((at, regime)) = moved {
        fit.values.iter_mut().take(at).for_each(|v| *v = regime.map(*v));
    }
    fit
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
