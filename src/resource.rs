//! One resource from its raw series to its forecast: prepare the series, apply the level-shift
//! policy, fit and forecast with the chosen model family, analyse the thresholds.

use crate::config::{EventKind, Invalid, ResourceSettings};
use crate::model::seasonal_periods;
use crate::model::select;
use crate::model::{ModelError, changepoint};
use crate::outcome::{Detail, ResourceForecast, Shed, analyse_thresholds, outline};
use crate::series::{self, PrepareOptions, Series, SeriesError};
use crate::source::{RawSeries, SourceError};
use crate::time::{format_duration, rfc3339};

/// Why one resource has no forecast; the run goes on with the others.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResourceError {
    /// Its settings, once values from the server are applied.
    #[error(transparent)]
    Settings(#[from] Invalid),
    /// Its points, read from their file when the run reached it.
    #[error(transparent)]
    Read(#[from] SourceError),
    #[error("fewer than two timestamps: cannot tell the step")]
    NoStep,
    /// The series as read cannot be forecast; `origin` names where it came from.
    #[error("{problem} ({origin})")]
    Series { problem: SeriesError, origin: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Shed(#[from] Shed),
    /// `headroom backtest`: too little history to hold the horizon out.
    #[error("{0} steps of history: too short to hold any out")]
    HoldOut(usize),
}

/// Prepares, fits and forecasts one series, and analyses its thresholds. The forecast runs
/// from the last observed step to `as_of + horizon`.
pub fn forecast_resource(
    raw: &RawSeries,
    source: &str,
    settings: &ResourceSettings,
    as_of: Option<i64>,
) -> Result<ResourceForecast, ResourceError> {
    let (history, prep) = prepare(raw, settings, as_of)?;
    let step = history.step;
    let mut notes = vec![];
    if prep.duplicates_dropped > 0 {
        notes.push(format!("{} duplicate timestamps dropped (the last value read was kept)", prep.duplicates_dropped));
    }
    if prep.unsorted {
        notes.push("rows were not in time order; sorted".into());
    }
    if prep.ignored_points > 0 {
        notes.push(format!("{} points inside ignore windows dropped", prep.ignored_points));
    }
    if prep.interpolated_steps > 0 {
        notes.push(format!("{} missing steps interpolated (gaps of at most 3 steps)", prep.interpolated_steps));
    }
    let end = history.end();
    let as_of = as_of.unwrap_or(end);
    if as_of - end > 2 * step {
        notes.push(format!(
            "stale: last sample {} is {} before the as-of date",
            rfc3339(end),
            format_duration(as_of - end)
        ));
    }
    // The last level shift, configured or else found in the data (a recent jump first, then
    // one with weeks on both sides). With enough data after it the fit starts there; with
    // less, the history before it is moved by the shift's size so the fit starts from the
    // new level without losing the cycles learnt before it.
    let mut fit = history.clone();
    let mut moved = None;
    let mut level_shift = None;
    let min_after = seasonal_periods(step).last().map_or(24, |p| 2 * p + 2);
    let block = seasonal_periods(step).first().copied().unwrap_or(1);
    let configured =
        settings.events.iter().filter(|(t, k, _)| *k == EventKind::LevelShift && *t <= end).max_by_key(|e| e.0);
    let shift = match configured {
        Some(&(at, _, _)) => Some((history.index_at(at), true)),
        None => changepoint::detect_recent_shift(&history.values, block)
            .or_else(|| changepoint::detect_level_shift(&history.values, block))
            .map(|i| (i, false)),
    };
    // A shift at or before the first step changes nothing.
    if let Some((at, configured)) = shift.filter(|s| s.0 > 0) {
        let day = crate::time::day(history.time(at));
        let what = if configured { format!("level shift on {day}") } else { format!("level shift found on {day}") };
        let after = history.values[at..].iter().filter(|v| v.is_finite()).count();
        if after >= min_after {
            if !configured {
                notes.push(format!("{what}: fitted on the data after it"));
            }
            fit = history.since(history.time(at));
            level_shift = (!configured).then_some(fit.start);
        } else if let Some(regime) = changepoint::regime_change(&history.values, at, block) {
            let swings = if (regime.scale - 1.0).abs() > 0.05 {
                format!(" and its swings scaled by {:.2}", regime.scale)
            } else {
                String::new()
            };
            notes.push(format!(
                "{what}: only {after} observed steps after it (need {min_after} to fit on them alone), so the \
                 history before it was moved {} by {}{swings} to the new level",
                if regime.size < 0.0 { "down" } else { "up" },
                crate::units::fmt_value(regime.size.abs())
            ));
            fit.values[..at].iter_mut().for_each(|v| *v = regime.map(*v));
            moved = Some((at, regime));
            level_shift = (!configured).then(|| history.time(at));
        } else {
            notes.push(format!("{what} ignored: only {after} observed steps after it (need {min_after})"));
        }
    }
    let steps = ((as_of + settings.horizon - end) as f64 / step as f64).ceil().max(1.0) as usize;
    let sel = select::forecast(&fit.values, step, steps, settings.level, settings.bounded, settings.model)?;
    let last_value = history.last_value().unwrap_or(f64::NAN);
    let breaches = analyse_thresholds(settings, &[], &sel.forecast, &fit.values, &sel.errors);
    let capacity_needed =
        breaches.last().map(|b| crate::scenario::capacity_needed(&sel.forecast, b.threshold)).filter(|k| *k > 1.0);
    Ok(ResourceForecast {
        index: 0,
        name: raw.name.clone(),
        source: source.to_string(),
        labels: raw.labels.clone(),
        settings: settings.clone(),
        step,
        history_start: history.start,
        last_observed: end,
        fit_start: fit.start,
        level_shift,
        model: sel.model,
        backtest: sel.backtest,
        forecast_start: end + step,
        breaches,
        scenarios: vec![],
        last_value,
        capacity_needed,
        outline: outline(&sel.forecast, end + step, step),
        notes,
        track: None,
        detail: Some(Detail {
            history,
            fitted: sel.fitted,
            forecast: sel.forecast,
            errors: sel.errors,
            moved,
            scenario_paths: vec![],
            past: vec![],
        }),
    })
}

/// A resource's history on its step grid up to `as_of`, on the forecast's scale (a fraction
/// of capacity where the resource has one).
pub fn prepare(
    raw: &RawSeries,
    settings: &ResourceSettings,
    as_of: Option<i64>,
) -> Result<(Series, series::Preparation), ResourceError> {
    let step = match settings.step {
        Some(s) => s,
        None => series::median_spacing(raw).ok_or(ResourceError::NoStep)?,
    };
    let opts = PrepareOptions {
        step,
        aggregate: settings.aggregate,
        as_of,
        history: Some(settings.history),
        ignore: settings.ignore.clone(),
    };
    let (mut history, prep) =
        series::prepare(raw, &opts).map_err(|problem| ResourceError::Series { problem, origin: raw.origin.clone() })?;
    if let Some(c) = settings.capacity {
        // Forecast as a fraction of capacity: thresholds and capacity changes are on that scale.
        history.values.iter_mut().for_each(|v| *v /= c);
    }
    Ok((history, prep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Shift;
    use crate::scenario::Scenario;

    /// Sixty days hourly around 0.5 with a daily cycle, jumping by `jump` `after` hours
    /// before the end.
    fn series(after: usize, jump: f64) -> RawSeries {
        let n = 60 * 24;
        let start = 1_780_000_000 / 3600 * 3600;
        let ts = (0..n).map(|i| start + i as i64 * 3600).collect();
        let vs = (0..n)
            .map(|i| {
                let wiggle = 0.01 * ((i * 7919 % 101) as f64 / 101.0 - 0.5);
                let v = 0.5 + 0.05 * (i as f64 / 24.0 * std::f64::consts::TAU).sin() + wiggle;
                if i + after >= n { v + jump } else { v }
            })
            .collect();
        RawSeries::new("r".into(), "test".into(), ts, vs)
    }

    /// A scenario that changes at most the growth, for every resource.
    fn growth(name: &str, growth: Option<f64>) -> Scenario {
        Scenario {
            name: name.into(),
            growth,
            growth_from: None,
            add: None,
            capacity: None,
            seasonal_amplitude: None,
            thresholds: vec![],
            resources: vec![],
        }
    }

    #[test]
    fn a_scenario_that_changes_nothing_reproduces_the_baseline() {
        let settings = ResourceSettings {
            horizon: 14 * 86_400,
            thresholds: vec![("soft".into(), 0.84), ("hard".into(), 0.95)],
            ..Default::default()
        };
        let noop = growth("same", None);
        // No shift; a shift 2 days before the end (the history is moved onto the new level);
        // one 20 days before (the fit starts there).
        for (after, jump) in [(0, 0.0), (48, 0.3), (480, 0.3)] {
            let r = forecast_resource(&series(after, jump), "s", &settings, None).unwrap();
            let d = r.detail.as_ref().unwrap();
            match after {
                48 => assert!(d.moved.is_some(), "history moved to the new regime: {:?}", r.notes),
                480 => assert!(r.fit_start > r.history_start, "fit after the shift: {:?}", r.notes),
                _ => assert!(d.moved.is_none() && r.fit_start == r.history_start),
            }
            let (path, breaches) = r.scenario(&noop).unwrap();
            assert_eq!(path, d.forecast, "shift {after}");
            assert_eq!(breaches, r.breaches, "shift {after}");
        }
    }

    #[test]
    fn the_view_moves_both_crossings_and_agrees_with_itself() {
        // A ramp of 0.05 a day from 0.2: soft (0.9) is crossed in about two weeks.
        let n = 60 * 24;
        let start = 1_780_000_000 / 3600 * 3600;
        let ts: Vec<i64> = (0..n).map(|i| start + i as i64 * 3600).collect();
        let vs: Vec<f64> =
            (0..n).map(|i| 0.2 + 0.05 * i as f64 / 24.0 / 10.0 + 0.002 * ((i * 31 % 17) as f64)).collect();
        let settings = ResourceSettings {
            horizon: 60 * 86_400,
            thresholds: vec![("soft".into(), 0.6), ("hard".into(), 0.9)],
            ..Default::default()
        };
        let mut r = forecast_resource(&RawSeries::new("r".into(), "t".into(), ts, vs), "s", &settings, None).unwrap();
        let faster = growth("faster", Some(3.0));
        r.add_scenario(&faster).unwrap();
        let as_of = r.last_observed;
        let v = r.view(as_of);
        let soft = &v.crossings[0];
        assert!(soft.expected.is_some() && soft.earliest < soft.expected, "{soft:?}");
        assert_eq!(v.headroom_days, soft.earliest_days, "headroom is the first upper-bound crossing");
        let moved = &v.scenarios[0].1[0];
        let (Shift::Days(e), Shift::Days(l)) = (moved.expected_moved, moved.earliest_moved) else {
            panic!("both crossings move: {moved:?}")
        };
        assert!(e < 0.0 && l < 0.0, "faster growth crosses earlier: {e} {l}");
        assert!((e - l).abs() > 0.1, "the expected crossing moves more than the earliest: {e} {l}");
    }
}
