//! Forecasting models. A model is `fit(values) -> Fitted`, and `Fitted::predict(horizon,
//! level) -> Forecast` (the augurs shape). Values are a regular series with NaN gaps; each
//! model copes with gaps itself. `select` picks a model per series by rolling-origin backtest.

pub mod arima;
pub mod changepoint;
pub mod decompose;
pub mod linear;
pub mod naive;
pub mod piecewise;
pub mod select;
pub mod smoothing;
pub mod yearly;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::series::fill_gaps;
use decompose::{Decomposition, decompose};

/// Point forecast and central prediction interval, one entry per future step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecast {
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl Forecast {
    /// An empty forecast with room for `horizon` steps.
    pub fn with_capacity(horizon: usize) -> Forecast {
        Forecast {
            mean: Vec::with_capacity(horizon),
            lower: Vec::with_capacity(horizon),
            upper: Vec::with_capacity(horizon),
        }
    }

    /// Enforces `lower <= mean <= upper`, finite values, and (for ratios) the [0, 1] range.
    pub fn tidy(mut self, bounded: bool) -> Forecast {
        let last_finite = self.mean.iter().rev().find(|v| v.is_finite()).copied().unwrap_or(0.0);
        for i in 0..self.mean.len() {
            let mut m = self.mean[i];
            if !m.is_finite() {
                m = last_finite;
            }
            let mut lo = if self.lower[i].is_finite() { self.lower[i].min(m) } else { m };
            let mut hi = if self.upper[i].is_finite() { self.upper[i].max(m) } else { m };
            if bounded {
                m = m.clamp(0.0, 1.0);
                lo = lo.clamp(0.0, 1.0);
                hi = hi.clamp(0.0, 1.0);
            }
            self.mean[i] = m;
            self.lower[i] = lo;
            self.upper[i] = hi;
        }
        self
    }
}

/// What breach odds learn the chosen forecast's uncertainty from.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorPaths {
    /// How it erred in backtest: one path of signed errors (actual minus forecast, NaN where
    /// the actual was missing) per rolling origin. Breach odds sample future paths from
    /// these, so spikes, persistent offsets and error growth come from the data.
    Paths(Vec<Vec<f64>>),
    /// The band follows the season (last year's course and volatility): breach odds read the
    /// band instead, errors moving together within blocks of this many steps (a week).
    Band { block: usize },
}

impl Default for ErrorPaths {
    /// No backtest.
    fn default() -> Self {
        ErrorPaths::Paths(vec![])
    }
}

/// A chosen model's in-sample fit, its values computed only when asked for: a fleet run draws
/// them for the few resources it plots.
#[derive(Clone)]
pub struct InSample(std::sync::Arc<dyn Fitted>);

impl InSample {
    pub fn new(fit: Box<dyn Fitted>) -> Self {
        InSample(fit.into())
    }

    /// Fitted values aligned with the series the model was fitted to.
    pub fn values(&self) -> Vec<f64> {
        self.0.fitted()
    }
}

impl std::fmt::Debug for InSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InSample")
    }
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("{model} needs at least {needed} observed steps, the series has {have}")]
    TooShort { model: String, needed: usize, have: usize },
    #[error("{0}: the regression has no unique solution for this series")]
    Singular(String),
    #[error("unknown model `{0}` (known: {1})")]
    Unknown(String, String),
}

/// A forecasting method with its settings, ready to fit.
pub trait Model: Send + Sync {
    /// Name as written in reports and the JSON `model` field, e.g. `seasonal_naive(24)`.
    fn name(&self) -> String;
    /// Fewest observed values this model can fit.
    fn min_len(&self) -> usize;
    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError>;
    /// [`Model::fit`] to a prefix of the series that `shared` belongs to, reusing what other
    /// models fitted to the same prefix already computed (a seasonal decomposition).
    fn fit_shared(&self, values: &[f64], _shared: &Shared) -> Result<Box<dyn Fitted>, ModelError> {
        self.fit(values)
    }
    /// For a combination of other models: its members and whether it takes their median
    /// (else their mean). Backtests combine the members' forecasts rather than refit them.
    fn members(&self) -> Option<(&[std::sync::Arc<dyn Model>], bool)> {
        None
    }
}

/// Work shared by the fits to prefixes of one series (a selection fits every candidate at
/// several origins): seasonal decompositions by prefix length and periods, so MSTL's ETS and
/// its Theta decompose each prefix once.
#[derive(Default)]
pub struct Shared {
    decompositions: RefCell<HashMap<DecompositionKey, Rc<Decomposition>>>,
}

/// A prefix of the series (its length) and the periods removed from it.
type DecompositionKey = (usize, Vec<usize>);

impl Shared {
    /// The decomposition of `values` (a prefix of this series) with `periods`, computed once.
    pub fn decomposition(&self, values: &[f64], periods: &[usize]) -> Rc<Decomposition> {
        let key = (values.len(), periods.to_vec());
        if let Some(d) = self.decompositions.borrow().get(&key) {
            return d.clone();
        }
        let y = fill_gaps(values, periods.first().copied().unwrap_or(0));
        let d = Rc::new(decompose(&y, periods));
        self.decompositions.borrow_mut().insert(key, d.clone());
        d
    }
}

/// A model fitted to one series (plain data: a chosen fit travels with its resource).
pub trait Fitted: Send + Sync {
    fn predict(&self, horizon: usize, level: f64) -> Forecast;
    /// The mean path alone, as `predict` gives it (a backtest needs no interval; models whose
    /// interval costs more than their mean skip it).
    fn predict_mean(&self, horizon: usize, level: f64) -> Vec<f64> {
        self.predict(horizon, level).mean
    }
    /// In-sample fitted values, aligned with the series given to `fit` (NaN where the model
    /// has none, e.g. the first season of a seasonal naive).
    fn fitted(&self) -> Vec<f64>;
    /// The name with what fitting chose (an ARIMA's order), where the model's own name cannot
    /// say it; None keeps [`Model::name`].
    fn name(&self) -> Option<String> {
        None
    }
}

/// The seasonal periods (in steps) that make sense for a step: a day and a week, when each is
/// a whole number of steps of at least 2.
pub fn seasonal_periods(step: i64) -> Vec<usize> {
    [86_400, 604_800]
        .iter()
        .filter(|&&p| step > 0 && p % step == 0 && p / step >= 2)
        .map(|&p| (p / step) as usize)
        .collect()
}

pub(crate) fn observed(values: &[f64]) -> usize {
    values.iter().filter(|v| v.is_finite()).count()
}

pub(crate) fn check_len(model: &dyn Model, values: &[f64]) -> Result<(), ModelError> {
    let have = observed(values);
    if have < model.min_len() || values.len() < model.min_len() {
        return Err(ModelError::TooShort { model: model.name(), needed: model.min_len(), have });
    }
    Ok(())
}
