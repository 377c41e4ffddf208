//! Automatic model choice and calibrated intervals. Every candidate is fitted at up to three
//! rolling origins inside the history, each forecasting the real horizon (or a quarter of the
//! history when that is shorter); pairwise means and the median of the best few are scored
//! from the same backtest forecasts at no extra fitting cost; the lowest mean absolute error
//! wins if it beats the median combination clearly (else the median does) and is refitted on
//! all the data. The interval comes from the winner's errors at
//! [`CAL_ORIGINS`] origins (signed quantiles per horizon step, widened by a factor learned by
//! leaving one origin out), so an 80 % band covers about 80 % of what happened in backtest.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::decompose::detect_periods;
use super::linear::LinearSeasonal;
use super::naive::{SeasonalMedian, SeasonalNaive, YearAgo};
use super::piecewise::PiecewiseFourier;
use super::smoothing::{Smoothing, Trend};
use super::yearly::LastYear;
use super::{ErrorPaths, Fitted, Forecast, InSample, Model, ModelError, Shared, observed, seasonal_periods};
use crate::stats::{finite_mean, quantiles, small_median};

/// Rolling origins per candidate (FORECASTING.md: 3 beat 1 and 2; 5 gained nothing).
const ORIGINS: usize = 3;
/// Origins the chosen forecast's interval and breach odds are learnt from.
const CAL_ORIGINS: usize = 6;
/// Base models whose forecasts are combined.
const COMBINE_TOP: usize = 4;
/// How much lower a candidate's backtest error must be than the median combination's to be
/// chosen over it (pooled relMASE of the four public sets 0.87 -> 0.85 at 0.1; 0.05 and 0.2
/// gained less, see bench/ACCURACY.md).
const CLEAR_WIN: f64 = 0.1;

/// A model family a user can ask for (`model = "..."`, `--model`): each owns its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Every candidate below, and their combinations.
    Auto,
    Naive,
    SeasonalNaive,
    Linear,
    Ets,
    Theta,
    Mstl,
    Piecewise,
    Arima,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::Auto,
        Family::Naive,
        Family::SeasonalNaive,
        Family::Linear,
        Family::Ets,
        Family::Theta,
        Family::Mstl,
        Family::Piecewise,
        Family::Arima,
    ];

    /// The name as written in config, flags and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Auto => "auto",
            Family::Naive => "naive",
            Family::SeasonalNaive => "seasonal_naive",
            Family::Linear => "linear",
            Family::Ets => "ets",
            Family::Theta => "theta",
            Family::Mstl => "mstl",
            Family::Piecewise => "piecewise",
            Family::Arima => "arima",
        }
    }

    /// Reads a family name (`--model`).
    pub fn parse(name: &str) -> Result<Family, ModelError> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| ModelError::Unknown(name.into(), Family::ALL.map(Family::name).join(", ")))
    }

    /// Whether the family's models take the seasonal periods found in the series.
    fn detects_periods(self) -> bool {
        !matches!(self, Family::Naive | Family::SeasonalNaive)
    }

    /// The candidate pool for a step, series and horizon (in steps).
    pub fn candidates(self, step: i64, values: &[f64], horizon: usize) -> Vec<Box<dyn Model>> {
        let n = values.len();
        let periods: Vec<usize> = seasonal_periods(step).into_iter().filter(|p| n >= 2 * p + 2).collect();
        let detected = if self.detects_periods() { detect_periods(values, &periods) } else { vec![] };
        let mut pool: Vec<Box<dyn Model>> = vec![];
        let has = |f: Family| self == Family::Auto || self == f;
        if has(Family::Naive) || (self == Family::SeasonalNaive && periods.is_empty()) {
            pool.push(Box::new(SeasonalNaive { period: 1 }));
        }
        if has(Family::SeasonalNaive) {
            pool.extend(periods.iter().map(|&p| Box::new(SeasonalNaive { period: p }) as Box<dyn Model>));
            if let Some(&p) = periods.first() {
                pool.push(Box::new(SeasonalMedian { period: p }));
            }
            // A yearly cycle, once the history holds a year before the latest backtest origin.
            let steps = |seconds: i64| (step > 0 && seconds % step == 0).then(|| (seconds / step) as usize);
            if let (Some(year), Some(window), Some(fill)) = (steps(364 * 86_400), steps(28 * 86_400), steps(7 * 86_400))
            {
                if n >= year + window + Design::new(n, horizon, ORIGINS).h {
                    pool.push(Box::new(YearAgo { year, window, fill }));
                }
            }
        }
        if has(Family::Linear) {
            let season = detected.last().or(periods.last()).copied().unwrap_or(1);
            pool.push(Box::new(LinearSeasonal { period: season, window: None }));
            // A recent trend, for series whose growth changed during the history: the last four
            // weeks, but never a window shorter than the horizon (a trend is not extrapolated
            // further than it was observed) nor more than half the history.
            let recent = ((28 * 86_400 / step.max(1)) as usize).max(horizon).max(2 * season + 2);
            if recent <= n / 2 {
                pool.push(Box::new(LinearSeasonal { period: season, window: Some(recent) }));
            }
        }
        if has(Family::Ets) {
            pool.push(Box::new(Smoothing { periods: vec![], trend: Trend::Ets }));
        }
        if has(Family::Mstl) && !detected.is_empty() {
            pool.push(Box::new(Smoothing { periods: detected.clone(), trend: Trend::Ets }));
        }
        if self == Family::Mstl && detected.is_empty() {
            pool.push(Box::new(Smoothing { periods: periods.clone(), trend: Trend::Ets }));
        }
        if has(Family::Piecewise) {
            pool.push(Box::new(PiecewiseFourier { periods: detected.clone() }));
        }
        // Not in `auto`: alone the best family on the four sets, but no gain beyond noise in
        // the pool, beside Theta or in its place (bench/ACCURACY.md).
        if self == Family::Arima {
            pool.push(Box::new(Smoothing { periods: detected.clone(), trend: Trend::Arima }));
        }
        if has(Family::Theta) {
            pool.push(Box::new(Smoothing { periods: detected, trend: Trend::Theta }));
        }
        pool
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The chosen model, its forecast and how it scored in backtest.
#[derive(Debug, Clone)]
pub struct Selection {
    pub model: String,
    pub forecast: Forecast,
    /// The chosen model's in-sample fit, aligned with the input.
    pub fitted: InSample,
    pub backtest: Option<SelectionScore>,
    /// The chosen forecast's backtest errors (empty without a backtest).
    pub errors: ErrorPaths,
}

/// Out-of-sample accuracy of the chosen model inside the history, from the selection's
/// rolling origins (the `headroom backtest` command, `backtest.rs`, scores families on held-out
/// history instead).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SelectionScore {
    /// Mean absolute error over the origins (finite: no backtest otherwise).
    pub mae: f64,
    /// MAE scaled by the in-sample one-season naive error (< 1 beats seasonal naive).
    pub mase: Option<f64>,
    pub origins: usize,
    /// Steps forecast at each origin.
    pub horizon: usize,
    /// Every candidate's score, best first (the chosen model leads): (model, MAE, MASE).
    pub candidates: Vec<(String, f64, Option<f64>)>,
}

/// Rolling origins inside a history, latest first, each forecasting `h` steps.
#[derive(Clone)]
struct Design {
    origins: Vec<usize>,
    h: usize,
}

impl Design {
    /// [`CAL_ORIGINS`] origins half the selection's spacing apart, each forecasting half its
    /// horizon: every other one is a selection origin, whose forecast is reused (a prefix),
    /// so calibrating a median of four costs half the refits; and twice as many short
    /// windows steady the quantiles (MSISgm better on all four sets, see bench/ACCURACY.md).
    fn calibration(n: usize, selection: &Design) -> Self {
        let h = (selection.h / 2).max(1);
        let origins = (1..=CAL_ORIGINS).filter_map(|k| n.checked_sub(k * h)).filter(|o| *o >= 3).collect();
        Design { origins, h }
    }

    /// Up to `count` origins `h` steps apart, each with something to fit on; `h` is the
    /// horizon, or less where the history cannot hold `count` of them plus something to fit on.
    fn new(n: usize, horizon: usize, count: usize) -> Self {
        let h = horizon.min(n / (count + 1)).max(1);
        let origins = (1..=count).filter_map(|k| n.checked_sub(k * h)).filter(|o| *o >= 3).collect();
        Design { origins, h }
    }
}

/// The mean or the median of base models' forecasts, itself a model: fitted, it fits every
/// member and combines their paths step by step.
pub struct Combination {
    pub members: Vec<Arc<dyn Model>>,
    pub median: bool,
}

impl Model for Combination {
    fn name(&self) -> String {
        let names: Vec<String> = self.members.iter().map(|m| m.name()).collect();
        format!("{}({})", if self.median { "median" } else { "mean" }, names.join(", "))
    }

    fn min_len(&self) -> usize {
        self.members.iter().map(|m| m.min_len()).max().unwrap_or(1)
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        self.fit_shared(values, &Shared::default())
    }

    fn fit_shared(&self, values: &[f64], shared: &Shared) -> Result<Box<dyn Fitted>, ModelError> {
        let fits = self.members.iter().map(|m| m.fit_shared(values, shared)).collect::<Result<_, _>>()?;
        Ok(Box::new(Combined { fits, median: self.median }))
    }

    fn members(&self) -> Option<(&[Arc<dyn Model>], bool)> {
        Some((&self.members, self.median))
    }
}

struct Combined {
    fits: Vec<Box<dyn Fitted>>,
    median: bool,
}

impl Fitted for Combined {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let own: Vec<Forecast> = self.fits.iter().map(|f| f.predict(horizon, level)).collect();
        let part = |get: fn(&Forecast) -> &Vec<f64>| {
            combine(&own.iter().map(|f| get(f).clone()).collect::<Vec<_>>(), self.median)
        };
        Forecast { mean: part(|f| &f.mean), lower: part(|f| &f.lower), upper: part(|f| &f.upper) }
    }

    fn fitted(&self) -> Vec<f64> {
        combine(&self.fits.iter().map(|f| f.fitted()).collect::<Vec<_>>(), self.median)
    }
}

/// Rolling-origin forecasts inside one history, shared by every candidate: each base model's
/// mean path per (model, origin, steps) is fitted once and cached, and a combination's path is
/// combined from its members' cached paths, so combinations cost no fits of their own. (The
/// `headroom backtest` command, `backtest.rs`, scores families on held-out history instead.)
struct Rolling<'a> {
    values: &'a [f64],
    range: Range,
    level: f64,
    paths: RefCell<HashMap<PathKey, Option<Vec<f64>>>>,
    /// What fits to the same prefix share.
    shared: Shared,
}

/// A model's mean forecast from one origin (None where it could not be fitted there).
type Path = Option<Vec<f64>>;

/// A base model's path: (model name, origin, steps).
type PathKey = (String, usize, usize);

impl Rolling<'_> {
    /// A model's mean forecast of `h` steps from the first `o` values, kept within range; None
    /// where it (or a member) cannot be fitted there.
    fn path(&self, model: &dyn Model, o: usize, h: usize) -> Option<Vec<f64>> {
        if let Some((members, median)) = model.members() {
            let paths: Vec<Vec<f64>> = members.iter().map(|m| self.path(m.as_ref(), o, h)).collect::<Option<_>>()?;
            return Some(combine(&paths, median));
        }
        let key = (model.name(), o, h);
        if let Some(p) = self.paths.borrow().get(&key) {
            return p.clone();
        }
        let p = model
            .fit_shared(&self.values[..o], &self.shared)
            .ok()
            .map(|f| self.range.clamp_path(f.predict_mean(h, self.level)));
        self.paths.borrow_mut().insert(key, p.clone());
        p
    }

    /// The model's paths at every origin of `d`.
    fn paths(&self, model: &dyn Model, d: &Design) -> Vec<Option<Vec<f64>>> {
        d.origins.iter().map(|&o| self.path(model, o, d.h)).collect()
    }

    /// Mean absolute error over every origin with a forecast; infinite when there is none.
    fn score(&self, preds: &[Option<Vec<f64>>], d: &Design) -> f64 {
        let errors = self.errors(preds, d);
        finite_mean(errors.iter().filter_map(|e| finite_mean(e.iter().map(|x| x.abs())))).unwrap_or(f64::INFINITY)
    }

    /// Signed errors (actual - forecast) per origin and step; NaN where unknown.
    fn errors(&self, preds: &[Option<Vec<f64>>], d: &Design) -> Vec<Vec<f64>> {
        preds
            .iter()
            .zip(&d.origins)
            .filter_map(|(p, &o)| p.as_ref().map(|p| (0..d.h).map(|h| self.values[o + h] - p[h]).collect()))
            .collect()
    }
}

/// A candidate with its rolling-origin forecasts and their error.
struct Scored {
    model: Arc<dyn Model>,
    /// Mean forecasts per origin (None where it could not fit).
    preds: Vec<Option<Vec<f64>>>,
    mae: f64,
}

impl Scored {
    fn new(model: Arc<dyn Model>, rolling: &Rolling, d: &Design) -> Scored {
        let preds = rolling.paths(model.as_ref(), d);
        let mae = rolling.score(&preds, d);
        Scored { model, preds, mae }
    }

    fn is_median(&self) -> bool {
        self.model.members().is_some_and(|(_, median)| median)
    }
}

/// Fits the family's best model to `values` and forecasts `horizon` steps.
pub fn forecast(
    values: &[f64],
    step: i64,
    horizon: usize,
    level: f64,
    bounded: bool,
    family: Family,
) -> Result<Selection, ModelError> {
    let n = values.len();
    let have = observed(values);
    let all = family.candidates(step, values, horizon);
    let needed = all.iter().map(|m| m.min_len()).min().unwrap_or(3);
    let pool: Vec<Arc<dyn Model>> = all.into_iter().filter(|m| m.min_len() <= have).map(Arc::from).collect();
    if pool.is_empty() {
        return Err(ModelError::TooShort { model: family.to_string(), needed, have });
    }
    let range = Range::of(values, bounded);
    let rolling = Rolling { values, range, level, paths: RefCell::new(HashMap::new()), shared: Shared::default() };
    let design = Design::new(n, horizon, ORIGINS);

    // Every base model at every origin, then their combinations from the same forecasts.
    let mut scored: Vec<Scored> = pool.iter().map(|m| Scored::new(m.clone(), &rolling, &design)).collect();
    add_combinations(&mut scored, &rolling, &design);

    // Best first; ties keep pool order (simpler models come first).
    let mut order: Vec<usize> = (0..scored.len()).filter(|&i| scored[i].mae.is_finite()).collect();
    order.sort_by(|&a, &b| scored[a].mae.total_cmp(&scored[b].mae).then(a.cmp(&b)));
    order.extend((0..pool.len()).filter(|i| !scored[*i].mae.is_finite()));
    // Three origins make the ranking noisy: the median of the best base models stays the
    // choice unless another candidate beats it clearly.
    if let Some(pos) = order.iter().position(|&i| scored[i].is_median()) {
        if pos > 0 && scored[order[0]].mae > (1.0 - CLEAR_WIN) * scored[order[pos]].mae {
            let m = order.remove(pos);
            order.insert(0, m);
        }
    }
    // Last year's course, while no backtest can score a yearly model (`auto` only).
    let last_year = (family == Family::Auto && pool.iter().all(|m| m.name() != YearAgo::NAME))
        .then(|| LastYear::of(values, step, horizon))
        .flatten();
    let scale = in_sample_scale(values, step);
    let mase = |mae: f64| scale.filter(|s| *s > 0.0 && mae.is_finite()).map(|s| mae / s);

    let mut last_err = None;
    for &i in &order {
        let cand = &scored[i];
        let fit = match cand.model.fit_shared(values, &rolling.shared) {
            Ok(f) => f,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let own = fit.predict(horizon, level);
        let mean = range.clamp_path(match &last_year {
            Some(last) => last.blend(&own.mean),
            None => own.mean,
        });
        let (paths, cal) = calibration_paths(cand, &rolling, &design);
        // The bands learn the blend's errors, last year's course at each origin taken from
        // the yearly harmonics (the history holds no year before it), in multiples of the
        // season's volatility at their dates, and widen by last year's at the forecast's;
        // breach odds then read that band (`ErrorPaths::Band`), not resampled error paths.
        let (band, errors) = match &last_year {
            Some(last) => {
                let paths: Vec<Path> =
                    paths.iter().zip(&cal.origins).map(|(p, &o)| p.as_ref().map(|p| last.blend_course(o, p))).collect();
                let relative: Vec<Vec<f64>> = rolling
                    .errors(&paths, &cal)
                    .into_iter()
                    .zip(&cal.origins)
                    .map(|(e, &o)| e.iter().enumerate().map(|(i, x)| x / last.volatility_at(o + i)).collect())
                    .collect();
                // Last year's volatility carries how the errors change past the calibration
                // horizon; widening with the lead time as well double-counted it (bench-long2
                // coverage 0.854 against 0.840 without it; bench/ACCURACY.md, session 17).
                let band = calibrated(&mean, &relative, level, &|i| last.volatility_ahead(i), 0.0);
                (band, ErrorPaths::Band { block: last.week() })
            }
            None => {
                let errors = rolling.errors(&paths, &cal);
                (calibrated(&mean, &errors, level, &|_| 1.0, GROWTH_BEYOND), ErrorPaths::Paths(errors))
            }
        };
        let forecast = match band {
            Some((lower, upper)) => Forecast { mean, lower, upper },
            // No backtest: the model's own interval.
            None => Forecast { mean, lower: own.lower, upper: own.upper },
        };
        let forecast = range.tidy(forecast);
        let backtest = cand.mae.is_finite().then(|| SelectionScore {
            mae: cand.mae,
            mase: mase(cand.mae),
            origins: cand.preds.iter().filter(|p| p.is_some()).count(),
            horizon: design.h,
            candidates: std::iter::once(i)
                .chain(order.iter().copied().filter(|&j| j != i))
                .filter(|&j| scored[j].mae.is_finite())
                .map(|j| (scored[j].model.name(), scored[j].mae, mase(scored[j].mae)))
                .collect(),
        });
        return Ok(Selection {
            model: {
                let name = fit.name().unwrap_or_else(|| cand.model.name());
                if last_year.is_some() { format!("mean({name}, last_year)") } else { name }
            },
            forecast,
            fitted: InSample::new(fit),
            backtest,
            errors,
        });
    }
    Err(last_err.unwrap_or(ModelError::TooShort { model: family.to_string(), needed, have }))
}

/// The chosen forecast's paths at the [`Design::calibration`] origins, and those origins:
/// the interval and breach odds are learnt from more origins than selection needs (more
/// error paths steady the quantiles; on the benchmark sets the interval score improved up
/// to six). Forecasts at origins shared with the selection are reused (their first steps);
/// with no more origins than it had, its own paths are returned (borrowed).
fn calibration_paths<'a>(
    cand: &'a Scored,
    rolling: &Rolling,
    selection: &'a Design,
) -> (Cow<'a, [Path]>, Cow<'a, Design>) {
    let cal = Design::calibration(rolling.values.len(), selection);
    if cal.origins.len() <= selection.origins.len() {
        return (Cow::Borrowed(&cand.preds), Cow::Borrowed(selection));
    }
    let preds = cal
        .origins
        .iter()
        .map(|&o| {
            if cal.h <= selection.h {
                if let Some(k) = selection.origins.iter().position(|x| *x == o) {
                    return cand.preds[k].as_ref().map(|p| p[..cal.h].to_vec());
                }
            }
            rolling.path(cand.model.as_ref(), o, cal.h)
        })
        .collect();
    (Cow::Owned(preds), Cow::Owned(cal))
}

/// Adds pairwise means and the median of the best base models as candidates (scored from
/// their rolling forecasts; only models with forecasts at every origin take part).
fn add_combinations(scored: &mut Vec<Scored>, rolling: &Rolling, design: &Design) {
    let mut best: Vec<usize> = (0..scored.len())
        .filter(|&i| scored[i].mae.is_finite() && scored[i].preds.iter().all(Option::is_some))
        .collect();
    best.sort_by(|&a, &b| scored[a].mae.total_cmp(&scored[b].mae));
    best.truncate(COMBINE_TOP);
    let mut combos: Vec<(Vec<usize>, bool)> = vec![];
    for a in 0..best.len() {
        for b in a + 1..best.len() {
            combos.push((vec![best[a], best[b]], false));
        }
    }
    if best.len() >= 3 {
        combos.push((best.clone(), true));
    }
    for (members, median) in combos {
        let members = members.iter().map(|&m| scored[m].model.clone()).collect();
        let combination: Arc<dyn Model> = Arc::new(Combination { members, median });
        scored.push(Scored::new(combination, rolling, design));
    }
}

/// Step-wise mean or median of several paths of equal length.
fn combine(paths: &[Vec<f64>], median: bool) -> Vec<f64> {
    if paths.len() == 1 {
        return paths[0].clone();
    }
    let len = paths.iter().map(Vec::len).min().unwrap_or(0);
    // One buffer for every step's values (a combination's path is combined at every origin).
    let mut v = Vec::with_capacity(paths.len());
    (0..len)
        .map(|h| {
            v.clear();
            v.extend(paths.iter().map(|p| p[h]));
            if median { small_median(&mut v) } else { v.iter().sum::<f64>() / v.len() as f64 }
        })
        .collect()
}

/// Lead times the error quantiles are taken at, spread geometrically over the backtest
/// horizon (errors change slowly with lead time; long horizons stay cheap).
const KNOTS: usize = 40;
/// The interval widening factors searched: 0.6 to 4.6 in steps of 0.05 (bands from six
/// origins are as likely too narrow as too wide; 4.6 is kept when nothing comes near).
const WIDEN_FROM: f64 = 0.6;
const WIDEN_STEP: f64 = 0.05;
const WIDEN_STEPS: usize = 80;
const WIDEN_TO: f64 = 4.6;

/// Past the backtest horizon, bands widen with this power of the lead time's ratio to it:
/// backtest errors grow slower than a random walk's square root (0.5 kept the long sets'
/// 80 % bands at 0.89 coverage; 0.25 cut the interval score on all four sets, pooled 0.981
/// (0.977-0.985); 0 took `bench` below 0.77 coverage; see bench/ACCURACY.md).
const GROWTH_BEYOND: f64 = 0.25;

/// Signed error quantiles (low, median, high) per horizon step.
type Bands = Vec<(f64, f64, f64)>;

/// Interval bounds from backtest errors: at each step, the signed error quantiles of the
/// steps around it (all origins pooled), widened by the factor whose leave-one-origin-out
/// coverage comes nearest `level`. Steps beyond the backtest horizon widen with the lead
/// time to the power `growth_beyond` ([`GROWTH_BEYOND`] unless a scale carries the change);
/// `scale(step)` multiplies each step's offsets (errors given in units of a scale that varies
/// by date). None without backtest errors.
fn calibrated(
    mean: &[f64],
    errors: &[Vec<f64>],
    level: f64,
    scale: &dyn Fn(usize) -> f64,
    growth_beyond: f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let hb = errors.first()?.len();
    if hb == 0 || errors.iter().flatten().filter(|e| e.is_finite()).count() < 4 {
        return None;
    }
    let (qlo, qhi) = ((1.0 - level) / 2.0, (1.0 + level) / 2.0);
    // Quantiles at the knots, interpolated in between.
    let last = (KNOTS - 1) as f64;
    let mut knots: Vec<usize> =
        (0..KNOTS).map(|i| ((hb as f64).powf(i as f64 / last) - 1.0).round() as usize).collect();
    knots.push(hb - 1);
    knots.dedup();
    knots.retain(|k| *k < hb);
    let bands = |use_origin: &dyn Fn(usize) -> bool| -> Bands {
        // One buffer for every knot's pool (a filtered pool would grow by reallocation).
        let mut pool: Vec<f64> = Vec::with_capacity(errors.len() * hb);
        let at: Vec<(f64, f64, f64)> = knots
            .iter()
            .map(|&h| {
                let w = (h / 3).max(2);
                let (a, b) = (h.saturating_sub(w), (h + w).min(hb - 1));
                pool.clear();
                pool.extend(
                    errors
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| use_origin(*k))
                        .flat_map(|(_, e)| e[a..=b].iter().copied())
                        .filter(|e| e.is_finite()),
                );
                let [lo, mid, hi] = quantiles(&mut pool, [qlo, 0.5, qhi]);
                (lo, mid, hi)
            })
            .collect();
        interpolate(&knots, &at, hb)
    };
    let widen = |(lo, mid, hi): (f64, f64, f64), m: f64| (mid + m * (lo - mid), mid + m * (hi - mid));
    // Learn the widening factor: the m whose held-out coverage comes nearest the level (the
    // smallest of equals; "the smallest m reaching it" biased the bands wide).
    let factor = if errors.len() >= 2 {
        let held_out: Vec<(Bands, usize)> = (0..errors.len()).map(|k| (bands(&|j| j != k), k)).collect();
        let factors: Vec<f64> = (0..=WIDEN_STEPS).map(|i| WIDEN_FROM + WIDEN_STEP * i as f64).collect();
        // Held-out errors inside each factor's band. A band with its quantiles in order only
        // widens as the factor grows, so an error inside at one factor is inside at every
        // larger one: the first such factor is found by bisection (each factor is tried
        // where rounding left the quantiles out of order).
        let (mut first, mut direct, mut total) = (vec![0usize; factors.len() + 1], vec![0usize; factors.len()], 0);
        for (b, k) in &held_out {
            for (h, e) in errors[*k].iter().enumerate().filter(|(_, e)| e.is_finite()) {
                total += 1;
                let inside = |m: f64| {
                    let (lo, hi) = widen(b[h], m);
                    *e >= lo && *e <= hi
                };
                let (lo, mid, hi) = b[h];
                if lo <= mid && mid <= hi {
                    first[factors.partition_point(|&m| !inside(m))] += 1;
                } else {
                    factors.iter().zip(direct.iter_mut()).filter(|(m, _)| inside(**m)).for_each(|(_, d)| *d += 1);
                }
            }
        }
        // Errors held from each factor on: those first held at it or at a smaller one.
        let mut held = 0;
        factors
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                held += first[i];
                let coverage = if total == 0 { 1.0 } else { (held + direct[i]) as f64 / total as f64 };
                (m, (coverage - level).abs())
            })
            .fold((WIDEN_TO, f64::INFINITY), |best, (m, gap)| if gap < best.1 - 1e-12 { (m, gap) } else { best })
            .0
    } else {
        1.0
    };
    let full = bands(&|_| true);
    let mut lower = Vec::with_capacity(mean.len());
    let mut upper = Vec::with_capacity(mean.len());
    for (h, m) in mean.iter().enumerate() {
        let (k, grow) = if h < hb { (h, 1.0) } else { (hb - 1, ((h + 1) as f64 / hb as f64).powf(growth_beyond)) };
        let (lo, hi) = widen(full[k], factor);
        let s = grow * scale(h);
        lower.push(m + lo * s);
        upper.push(m + hi * s);
    }
    Some((lower, upper))
}

/// Linear interpolation of knot values (ascending knots, the first at 0) onto 0..len.
fn interpolate(knots: &[usize], at: &[(f64, f64, f64)], len: usize) -> Vec<(f64, f64, f64)> {
    (0..len)
        .map(|h| {
            let j = knots.partition_point(|k| *k <= h).max(1) - 1;
            match (knots.get(j), knots.get(j + 1)) {
                (Some(&a), Some(&b)) if b > a => {
                    let f = (h - a) as f64 / (b - a) as f64;
                    let (x, y) = (at[j], at[j + 1]);
                    (x.0 + f * (y.0 - x.0), x.1 + f * (y.1 - x.1), x.2 + f * (y.2 - x.2))
                }
                _ => at[j.min(at.len() - 1)],
            }
        })
        .collect()
}

/// The values a forecast may take: [0, 1] for ratios, [0, ∞) for series never negative.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    lo: f64,
    hi: f64,
}

impl Range {
    pub fn of(values: &[f64], bounded: bool) -> Range {
        let nonneg = values.iter().filter(|v| v.is_finite()).all(|v| *v >= 0.0);
        let lo = if bounded || nonneg { 0.0 } else { f64::NEG_INFINITY };
        Range { lo, hi: if bounded { 1.0 } else { f64::INFINITY } }
    }

    /// (lowest, highest) allowed value.
    pub fn bounds(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    fn clamp_path(&self, mut v: Vec<f64>) -> Vec<f64> {
        v.iter_mut().for_each(|x| *x = x.clamp(self.lo, self.hi));
        v
    }

    /// Finite values in range with `lower <= mean <= upper`.
    pub fn tidy(&self, f: Forecast) -> Forecast {
        let mut f = f.tidy(false);
        for i in 0..f.mean.len() {
            f.mean[i] = f.mean[i].clamp(self.lo, self.hi);
            f.lower[i] = f.lower[i].clamp(self.lo, self.hi).min(f.mean[i]);
            f.upper[i] = f.upper[i].clamp(self.lo, self.hi).max(f.mean[i]);
        }
        f
    }
}

/// In-sample MAE of the one-season naive forecast (season = a day where possible): the MASE
/// denominator, as in the benchmark's scorer.
pub fn in_sample_scale(values: &[f64], step: i64) -> Option<f64> {
    let p = seasonal_periods(step).first().copied().filter(|p| values.len() > p + 1).unwrap_or(1);
    finite_mean((p..values.len()).map(|i| (values[i] - values[i - p]).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::stats::test_noise as noise;

    #[test]
    fn a_clean_trend_is_forecast_well_and_a_season_kept() {
        let trend: Vec<f64> = (0..24 * 30).map(|i| 0.1 + 0.0005 * i as f64 + 0.05 * ((i % 24) as f64 / 24.0)).collect();
        let s = forecast(&trend, 3600, 48, 0.8, true, Family::Auto).unwrap();
        assert!(s.backtest.as_ref().unwrap().mase.unwrap() < 0.2, "{:?}", s.backtest);
        for h in 0..48 {
            let i = 24 * 30 + h;
            let want = 0.1 + 0.0005 * i as f64 + 0.05 * ((i % 24) as f64 / 24.0);
            assert!((s.forecast.mean[h] - want).abs() < 0.01, "{}: {h}", s.model);
        }
        let season: Vec<f64> = (0..24 * 30).map(|i| ((i % 24) as f64 * 0.7).sin()).collect();
        let s = forecast(&season, 3600, 48, 0.8, false, Family::Auto).unwrap();
        assert!(s.backtest.unwrap().mae < 1e-6, "{}", s.model);
    }

    #[test]
    fn a_yearly_cycle_is_used_once_the_history_can_backtest_it() {
        // Two and a half years hourly: a yearly swing (summer peak) plus a daily cycle and
        // growth; 90 days ahead from spring, where the last weeks say little about summer.
        let tau = std::f64::consts::TAU;
        let at = |i: usize| {
            let (day, year) = (i as f64 / 24.0, i as f64 / (364.0 * 24.0));
            0.4 + 0.2 * (tau * year).sin() + 0.05 * (tau * day).sin() + 0.02 * year + 0.01 * noise(i)
        };
        let n = 24 * 364 * 2 + 24 * 150;
        let (y, h): (Vec<f64>, usize) = ((0..n).map(at).collect(), 24 * 90);
        let s = forecast(&y, 3600, h, 0.8, true, Family::Auto).unwrap();
        assert!(s.model.contains(YearAgo::NAME), "{}", s.model);
        let mae = |f: &[f64]| (0..h).map(|k| (f[k] - at(n + k)).abs()).sum::<f64>() / h as f64;
        let weekly = SeasonalNaive { period: 168 }.fit(&y).unwrap().predict(h, 0.8).mean;
        assert!(mae(&s.forecast.mean) < 0.5 * mae(&weekly), "{} vs {}", mae(&s.forecast.mean), mae(&weekly));
        // A year of history (the long benchmark's shape) cannot backtest it: not a candidate.
        let pool = Family::Auto.candidates(3600, &y[..24 * 365], h);
        assert!(pool.iter().all(|m| m.name() != YearAgo::NAME));
        // There last year's course joins the chosen forecast unscored, and follows the swing.
        let one = &y[n - 24 * 366..];
        let s = forecast(one, 3600, h, 0.8, true, Family::Auto).unwrap();
        assert!(s.model.starts_with("mean(") && s.model.ends_with(", last_year)"), "{}", s.model);
        let weekly = SeasonalNaive { period: 168 }.fit(one).unwrap().predict(h, 0.8).mean;
        assert!(mae(&s.forecast.mean) < 0.7 * mae(&weekly), "{} vs {}", mae(&s.forecast.mean), mae(&weekly));
    }

    #[test]
    fn a_yearly_cycle_lends_each_season_its_own_volatility() {
        // A year and two days hourly: a yearly wave, a daily cycle, and noise six times as
        // large from day 60 to day 150 as elsewhere. 90 days ahead from day 366: last year at
        // those dates was quiet for two months, then loud.
        let tau = std::f64::consts::TAU;
        let at = |i: usize| {
            let day = i / 24;
            let amplitude = if (60..150).contains(&(day % 364)) { 0.3 } else { 0.05 };
            0.5 + 0.2 * (tau * i as f64 / (364.0 * 24.0)).sin()
                + 0.05 * (tau * i as f64 / 24.0).sin()
                + amplitude * noise(i)
        };
        let n = 24 * 366;
        let y: Vec<f64> = (0..n).map(at).collect();
        let s = forecast(&y, 3600, 24 * 90, 0.8, false, Family::Auto).unwrap();
        assert!(s.model.ends_with(", last_year)"), "{}", s.model);
        let width = |days: std::ops::Range<usize>| {
            let f = &s.forecast;
            let steps = 24 * days.start..24 * days.end;
            steps.clone().map(|i| f.upper[i] - f.lower[i]).sum::<f64>() / steps.len() as f64
        };
        // Forecast days 10-40 fall on last year's quiet days 12-42, days 65-85 on its loud
        // days 67-87.
        let (quiet, loud) = (width(10..40), width(65..85));
        assert!(loud > 2.0 * quiet, "quiet {quiet} against loud {loud}");
    }

    #[test]
    fn intervals_cover_about_the_level_on_noise() {
        // A noisy seasonal series: the 80 % band should hold roughly 80 % of new values.
        let y: Vec<f64> = (0..24 * 60)
            .map(|i| 5.0 + ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + noise(i) + noise(i * 7 + 3))
            .collect();
        let (train, test) = y.split_at(24 * 53);
        let s = forecast(train, 3600, test.len(), 0.8, false, Family::Auto).unwrap();
        let inside =
            test.iter().enumerate().filter(|(h, v)| **v >= s.forecast.lower[*h] && **v <= s.forecast.upper[*h]).count();
        let cov = inside as f64 / test.len() as f64;
        assert!((0.65..=0.95).contains(&cov), "coverage {cov} with {}", s.model);
        // Learnt from more origins than the selection's.
        let ErrorPaths::Paths(paths) = &s.errors else { panic!("no yearly cycle in 53 days: {:?}", s.errors) };
        assert_eq!((s.backtest.unwrap().origins, paths.len()), (ORIGINS, CAL_ORIGINS));
    }

    #[test]
    fn families_restrict_the_pool() {
        let y: Vec<f64> = (0..400).map(|i| i as f64).collect();
        let s = forecast(&y, 3600, 10, 0.8, false, Family::SeasonalNaive).unwrap();
        assert!(s.model.starts_with("seasonal_naive") || s.model.contains("seasonal_naive"), "{}", s.model);
        for fam in Family::ALL {
            assert!(forecast(&y, 3600, 10, 0.8, false, fam).is_ok(), "{fam}");
            assert_eq!(Family::parse(fam.name()), Ok(fam));
        }
        assert!(Family::parse("prophet").is_err());
    }

    #[test]
    fn tiny_series_still_forecast() {
        let s = forecast(&[0.5, 0.5, 0.5], 3600, 5, 0.8, true, Family::Auto).unwrap();
        assert_eq!(s.forecast.mean, vec![0.5; 5]);
        assert!(forecast(&[0.5], 3600, 5, 0.8, true, Family::Auto).is_err());
    }

    #[test]
    fn non_negative_series_stay_non_negative() {
        let y: Vec<f64> = (0..200).map(|i| (200 - i) as f64 * 0.01).collect();
        let s = forecast(&y, 3600, 500, 0.8, false, Family::Auto).unwrap();
        assert!(s.forecast.lower.iter().all(|v| *v >= 0.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn no_family_panics_and_bounds_stay_ordered(
            values in prop::collection::vec(prop_oneof![9 => -1e6f64..1e6, 1 => Just(f64::NAN)], 3..400),
            horizon in 1usize..200,
            level in 0.05f64..0.99,
            bounded: bool,
        ) {
            prop_assume!(values.iter().filter(|v| v.is_finite()).count() >= 3);
            // `auto` always forecasts; a family may find the series too short, nothing else.
            for family in Family::ALL {
                let s = match forecast(&values, 3600, horizon, level, bounded, family) {
                    Err(ModelError::TooShort { .. }) if family != Family::Auto => continue,
                    s => s.unwrap(),
                };
                let f = &s.forecast;
                prop_assert_eq!(f.mean.len(), horizon);
                for i in 0..horizon {
                    prop_assert!(f.lower[i].is_finite() && f.mean[i].is_finite() && f.upper[i].is_finite(), "{}", family);
                    prop_assert!(f.lower[i] <= f.mean[i] && f.mean[i] <= f.upper[i], "{}", family);
                    if bounded {
                        prop_assert!(f.lower[i] >= 0.0 && f.upper[i] <= 1.0);
                    }
                }
            }
        }
    }
}
