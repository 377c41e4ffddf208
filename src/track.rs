//! The track record: earlier runs' forecasts of a resource (read from the ledger) scored
//! against the history the run has now, and how far the crossings moved since the last run.
//! Plain data in, plain data out: the ledger reads and writes these, `outcome` carries them.

use serde::{Deserialize, Serialize};

use crate::series::Series;

/// One day.
const DAY: i64 = 86_400;
/// The seasonal naive a forecast is compared with repeats the last week before its as-of.
const WEEK: i64 = 7 * DAY;

/// Lead-time groups the scores are kept by: (label, last day of the group). The last one
/// runs to the horizon.
pub const LEADS: [(&str, i64); 5] = [("1 d", 1), ("2-7 d", 7), ("8-30 d", 30), ("31-90 d", 90), ("91+ d", i64::MAX)];

/// Reliability bins of breach probabilities: [0, 0.1), [0.1, 0.2), ... [0.9, 1].
pub const BINS: usize = 10;

/// What one run forecast for one resource, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastForecast {
    pub resource: String,
    pub as_of: i64,
    pub model: String,
    /// SHA-256 of the config the run read (empty where unknown).
    pub config_sha256: String,
    /// Central interval level of `lower` / `upper`.
    pub level: f64,
    /// A level shift the forecast started from.
    pub level_shift: Option<i64>,
    /// Days of conservative headroom (None: no crossing within the horizon).
    pub headroom_days: Option<f64>,
    /// The forecast at whole days after `as_of` (the step at or after each), and its last step.
    pub outline: Vec<Mark>,
    pub thresholds: Vec<PastThreshold>,
}

/// The forecast at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub t: i64,
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
}

/// One threshold as a run saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastThreshold {
    pub name: String,
    pub value: f64,
    pub expected_at: Option<i64>,
    pub earliest_at: Option<i64>,
    pub probability: f64,
    /// The last observed value had reached it already (nothing to forecast).
    pub already_breached: bool,
}

/// Marks at whole days after `as_of` (the first step at or after each) and the last step of
/// a forecast whose first step is at `start`.
pub fn marks(as_of: i64, start: i64, step: i64, mean: &[f64], lower: &[f64], upper: &[f64]) -> Vec<Mark> {
    let n = mean.len();
    if n == 0 || step <= 0 {
        return vec![];
    }
    let mark = |i: usize| Mark { t: start + i as i64 * step, mean: mean[i], lower: lower[i], upper: upper[i] };
    let mut out: Vec<Mark> = vec![];
    for day in 1.. {
        let at = as_of + day * DAY;
        let i = usize::try_from((at - start + step - 1).div_euclid(step)).unwrap_or(0);
        if i >= n {
            break;
        }
        if out.last().is_none_or(|m| m.t < start + i as i64 * step) {
            out.push(mark(i));
        }
    }
    if out.last().is_none_or(|m| m.t < start + (n - 1) as i64 * step) {
        out.push(mark(n - 1));
    }
    out
}

/// Scores of one lead-time group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadScore {
    pub lead: String,
    /// Forecast instants that have been observed since.
    pub points: usize,
    /// Mean absolute error of the mean forecast, and of the seasonal naive issued the same day.
    pub mae: f64,
    pub naive_mae: f64,
    /// Share of observed values inside the band.
    pub coverage: f64,
    /// Mean of forecast minus actual: above 0, the forecasts ran high.
    pub bias: f64,
}

impl LeadScore {
    /// MAE relative to the seasonal naive issued the same day (below 1: better than it).
    pub fn relative_mae(&self) -> Option<f64> {
        (self.points > 0 && self.naive_mae > 0.0).then(|| self.mae / self.naive_mae)
    }
}

/// A crossing that happened after a forecast that expected one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateError {
    pub as_of: i64,
    pub threshold: String,
    /// Expected minus actual crossing, in days (above 0: it came sooner than forecast).
    pub days: f64,
}

/// A breach probability whose outcome is known now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub as_of: i64,
    pub threshold: String,
    pub probability: f64,
    pub happened: bool,
}

/// How far one threshold's crossings moved since the last run, in days (later is positive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    pub threshold: String,
    pub expected_days: Option<f64>,
    pub earliest_days: Option<f64>,
    /// `new crossing`, `no longer crosses`, or empty when both runs had one (or neither).
    pub change: String,
}

/// What changed since the last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub since: i64,
    pub moved: Vec<Moved>,
    /// The main reason, named: config changed, thresholds changed, level shift found, model changed (from X to
    /// Y), new data outside the last band, or new data within the band.
    pub reason: String,
    /// New observations at the last run's marks, and how many fell outside its band.
    pub seen: usize,
    pub outside: usize,
}

impl Drift {
    /// The largest move of any crossing (absolute days), for ranking and gauges.
    pub fn largest(&self) -> Option<f64> {
        self.moved
            .iter()
            .flat_map(|m| [m.expected_days, m.earliest_days])
            .flatten()
            .map(f64::abs)
            .max_by(f64::total_cmp)
    }
}

/// One resource's track record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    /// Earlier forecasts of this resource in the ledger, and how many had an observed instant.
    pub forecasts: usize,
    pub scored: usize,
    pub leads: Vec<LeadScore>,
    pub dates: Vec<DateError>,
    pub outcomes: Vec<Outcome>,
    pub drift: Option<Drift>,
}

/// Scores `past` forecasts (any order; those not before `as_of` are left out) against
/// `history`, and compares `now` with the latest of them.
pub fn score(history: &Series, past: &[PastForecast], now: &PastForecast, as_of: i64) -> TrackRecord {
    let earlier: Vec<&PastForecast> = past.iter().filter(|p| p.as_of < as_of).collect();
    let value_at = |t: i64| -> f64 {
        if history.step <= 0 || t < history.start || (t - history.start) % history.step != 0 {
            return f64::NAN;
        }
        history.values.get(((t - history.start) / history.step) as usize).copied().unwrap_or(f64::NAN)
    };
    let mut acc: Vec<(usize, f64, f64, usize, f64)> = vec![(0, 0.0, 0.0, 0, 0.0); LEADS.len()];
    let mut scored = 0;
    let mut dates = vec![];
    let mut outcomes = vec![];
    for p in &earlier {
        let mut any = false;
        for m in &p.outline {
            let actual = value_at(m.t);
            // The seasonal naive issued at the same as-of: the last week before it, repeated.
            let weeks = (m.t - p.as_of + WEEK - 1).div_euclid(WEEK).max(1);
            let naive = value_at(m.t - weeks * WEEK);
            if !actual.is_finite() || !naive.is_finite() || !m.mean.is_finite() {
                continue;
            }
            any = true;
            let lead_days = (m.t - p.as_of + DAY - 1).div_euclid(DAY);
            let g = LEADS.iter().position(|(_, last)| lead_days <= *last).unwrap_or(LEADS.len() - 1);
            let a = &mut acc[g];
            a.0 += 1;
            a.1 += (m.mean - actual).abs();
            a.2 += (naive - actual).abs();
            a.3 += usize::from(actual >= m.lower && actual <= m.upper);
            a.4 += m.mean - actual;
        }
        scored += usize::from(any);
        // Odds and dates are scored once the whole horizon has been seen: counting crossings
        // as soon as they happen would count the early ones only (every bin "observed 100 %").
        let end = p.outline.last().map_or(p.as_of, |m| m.t);
        if as_of < end {
            continue;
        }
        for th in p.thresholds.iter().filter(|t| !t.already_breached) {
            let crossed = first_at_or_above(history, th.value, p.as_of, end);
            if let (Some(e), Some(c)) = (th.expected_at, crossed) {
                dates.push(DateError { as_of: p.as_of, threshold: th.name.clone(), days: (e - c) as f64 / DAY as f64 });
            }
            outcomes.push(Outcome {
                as_of: p.as_of,
                threshold: th.name.clone(),
                probability: th.probability,
                happened: crossed.is_some(),
            });
        }
    }
    let leads = LEADS
        .iter()
        .zip(acc)
        .filter(|(_, a)| a.0 > 0)
        .map(|((label, _), (n, e, ne, inside, bias))| LeadScore {
            lead: label.to_string(),
            points: n,
            mae: e / n as f64,
            naive_mae: ne / n as f64,
            coverage: inside as f64 / n as f64,
            bias: bias / n as f64,
        })
        .collect();
    let last = earlier.iter().max_by_key(|p| p.as_of).copied();
    let drift = last.map(|l| drift(l, now, &value_at));
    TrackRecord { forecasts: earlier.len(), scored, leads, dates, outcomes, drift }
}

/// The first step after `from` up to `to` whose value reaches `threshold`.
fn first_at_or_above(history: &Series, threshold: f64, from: i64, to: i64) -> Option<i64> {
    let after = if history.step > 0 && from >= history.start {
        usize::try_from((from - history.start) / history.step).unwrap_or(0)
    } else {
        0
    };
    (after..history.len())
        .map(|i| (history.time(i), history.values[i]))
        .take_while(|(t, _)| *t <= to)
        .find(|(t, v)| *t > from && *v >= threshold)
        .map(|(t, _)| t)
}

fn drift(last: &PastForecast, now: &PastForecast, value_at: &dyn Fn(i64) -> f64) -> Drift {
    let days = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some((b - a) as f64 / DAY as f64),
        _ => None,
    };
    let moved = now
        .thresholds
        .iter()
        .map(|th| {
            let old = last.thresholds.iter().find(|o| o.name == th.name);
            let (oe, oa) = old.map_or((None, None), |o| (o.expected_at, o.earliest_at));
            let was = old.is_some_and(|o| o.already_breached);
            // A threshold already reached has no crossing date to move.
            let change = match (was, th.already_breached, oa.is_some(), th.earliest_at.is_some()) {
                (true, true, ..) => "",
                (false, true, ..) => "now breached",
                (true, false, ..) => "no longer breached",
                (_, _, false, true) => "new crossing",
                (_, _, true, false) => "no longer crosses",
                _ => "",
            };
            let both = !was && !th.already_breached;
            Moved {
                threshold: th.name.clone(),
                expected_days: days(oe, th.expected_at).filter(|_| both),
                earliest_days: days(oa, th.earliest_at).filter(|_| both),
                change: change.to_string(),
            }
        })
        .collect();
    let (mut seen, mut outside) = (0, 0);
    for m in last.outline.iter().filter(|m| m.t <= now.as_of) {
        let v = value_at(m.t);
        if v.is_finite() {
            seen += 1;
            outside += usize::from(v < m.lower || v > m.upper);
        }
    }
    // Thresholds can change without the config (read from the server: `thresholds_query`).
    let changed: Vec<String> = now
        .thresholds
        .iter()
        .filter_map(|th| {
            let old = last.thresholds.iter().find(|o| o.name == th.name)?;
            (old.value != th.value).then(|| format!("{} {} -> {}", th.name, old.value, th.value))
        })
        .collect();
    let reason =
        if !last.config_sha256.is_empty() && !now.config_sha256.is_empty() && last.config_sha256 != now.config_sha256 {
            "config changed".to_string()
        } else if !changed.is_empty() {
            format!("thresholds changed ({})", changed.join(", "))
        } else if now.level_shift.is_some() && now.level_shift != last.level_shift {
            let at = now.level_shift.map(crate::time::rfc3339).unwrap_or_default();
            format!("level shift found at {}", &at[..at.len().min(10)])
        } else if !same_model(&last.model, &now.model) {
            format!("model changed from {} to {}", last.model, now.model)
        } else if outside * 2 > seen {
            "new data outside the last band".to_string()
        } else {
            "new data within the band".to_string()
        };
    Drift { since: last.as_of, moved, reason, seen, outside }
}

/// Whether two model names are the same model: a combination's members count as a set (the
/// name lists them best first, an order that changes from run to run).
fn same_model(a: &str, b: &str) -> bool {
    fn parts(name: &str) -> (String, Vec<String>) {
        let Some(open) = name.find('(') else { return (name.to_string(), vec![]) };
        let head = &name[..open];
        if !(head == "median" || head == "mean") || !name.ends_with(')') {
            return (name.to_string(), vec![]);
        }
        let inner = &name[open + 1..name.len() - 1];
        let (mut out, mut depth, mut cur) = (vec![], 0i32, String::new());
        for c in inner.chars() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                out.push(cur.trim().to_string());
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        out.push(cur.trim().to_string());
        out.sort();
        (head.to_string(), out)
    }
    parts(a) == parts(b)
}

/// The fleet's track record: every resource's scores pooled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetTrack {
    /// Distinct earlier as-of dates with a scored forecast, and resources with a record.
    pub runs: usize,
    pub resources: usize,
    /// Per lead group: points, coverage (pooled), bias (pooled mean), and the geometric mean
    /// over resources of the MAE relative to the seasonal naive.
    pub leads: Vec<FleetLead>,
    /// Brier score of the known outcomes and the reliability table.
    pub brier: Option<f64>,
    pub outcomes: usize,
    pub reliability: Vec<Bin>,
    /// Mean and mean absolute crossing-date error (days), over crossings that happened.
    pub date_errors: usize,
    pub date_bias_days: Option<f64>,
    pub date_abs_days: Option<f64>,
    /// Resources whose crossings moved more than a day since the last run.
    pub moved: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetLead {
    pub lead: String,
    pub points: usize,
    pub coverage: f64,
    pub bias: f64,
    pub relative_mae: Option<f64>,
}

/// One reliability bin: forecasts with probabilities in [from, from + 0.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub from: f64,
    pub count: usize,
    pub mean_probability: f64,
    pub observed: f64,
}

/// Pools resources' track records.
pub fn fleet<'a>(records: impl IntoIterator<Item = &'a TrackRecord>, runs: usize) -> FleetTrack {
    let records: Vec<&TrackRecord> = records.into_iter().filter(|r| r.forecasts > 0).collect();
    let leads = LEADS
        .iter()
        .filter_map(|(label, _)| {
            let ls: Vec<&LeadScore> =
                records.iter().flat_map(|r| r.leads.iter().filter(|l| l.lead == *label)).collect();
            let points: usize = ls.iter().map(|l| l.points).sum();
            if points == 0 {
                return None;
            }
            let w =
                |f: &dyn Fn(&LeadScore) -> f64| ls.iter().map(|l| f(l) * l.points as f64).sum::<f64>() / points as f64;
            let logs: Vec<f64> = ls.iter().filter_map(|l| l.relative_mae()).filter(|r| *r > 0.0).map(f64::ln).collect();
            Some(FleetLead {
                lead: label.to_string(),
                points,
                coverage: w(&|l| l.coverage),
                bias: w(&|l| l.bias),
                relative_mae: (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp()),
            })
        })
        .collect();
    let outcomes: Vec<&Outcome> = records.iter().flat_map(|r| &r.outcomes).collect();
    let brier = (!outcomes.is_empty()).then(|| {
        outcomes.iter().map(|o| (o.probability - f64::from(u8::from(o.happened))).powi(2)).sum::<f64>()
            / outcomes.len() as f64
    });
    let reliability = (0..BINS)
        .filter_map(|b| {
            let from = b as f64 / BINS as f64;
            let inside: Vec<&&Outcome> = outcomes
                .iter()
                .filter(|o| ((o.probability * BINS as f64).floor() as usize).min(BINS - 1) == b)
                .collect();
            (!inside.is_empty()).then(|| Bin {
                from,
                count: inside.len(),
                mean_probability: inside.iter().map(|o| o.probability).sum::<f64>() / inside.len() as f64,
                observed: inside.iter().filter(|o| o.happened).count() as f64 / inside.len() as f64,
            })
        })
        .collect();
    let dates: Vec<f64> = records.iter().flat_map(|r| r.dates.iter().map(|d| d.days)).collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    FleetTrack {
        runs,
        resources: records.len(),
        leads,
        brier,
        outcomes: outcomes.len(),
        reliability,
        date_errors: dates.len(),
        date_bias_days: mean(&dates),
        date_abs_days: mean(&dates.iter().map(|d| d.abs()).collect::<Vec<_>>()),
        moved: records.iter().filter(|r| r.drift.as_ref().and_then(Drift::largest).is_some_and(|d| d > 1.0)).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn past(as_of: i64, outline: Vec<Mark>, thresholds: Vec<PastThreshold>) -> PastForecast {
        PastForecast {
            resource: "r".into(),
            as_of,
            model: "ets".into(),
            config_sha256: "c".into(),
            level: 0.8,
            level_shift: None,
            headroom_days: None,
            outline,
            thresholds,
        }
    }

    #[test]
    fn marks_fall_on_whole_days_and_the_last_step() {
        // Hourly from as_of + 1 h, 50 steps: days 1 and 2, then the last step (as_of + 50 h).
        let v = vec![0.0; 50];
        let m = marks(0, 3600, 3600, &v, &v, &v);
        let ts: Vec<i64> = m.iter().map(|m| m.t).collect();
        assert_eq!(ts, vec![86_400, 2 * 86_400, 50 * 3600]);
    }

    #[test]
    fn scores_by_hand() {
        // Daily history 0..30 of value = day index; a forecast at day 10 said 12 for day 11
        // (band 11.5-12.5) and 20 for day 17 (band 16-18).
        let history = Series { start: 0, step: DAY, values: (0..30).map(|d| d as f64).collect() };
        let p = past(
            10 * DAY,
            vec![
                Mark { t: 11 * DAY, mean: 12.0, lower: 11.5, upper: 12.5 },
                Mark { t: 17 * DAY, mean: 20.0, lower: 16.0, upper: 18.0 },
            ],
            vec![PastThreshold {
                name: "hard".into(),
                value: 15.0,
                expected_at: Some(13 * DAY),
                earliest_at: Some(12 * DAY),
                probability: 0.7,
                already_breached: false,
            }],
        );
        let reached = PastThreshold {
            name: "hard".into(),
            value: 15.0,
            expected_at: None,
            earliest_at: None,
            probability: 0.2,
            already_breached: false,
        };
        let now = past(29 * DAY, vec![], vec![reached]);
        let r = score(&history, std::slice::from_ref(&p), &now, 29 * DAY);
        assert_eq!((r.forecasts, r.scored), (1, 1));
        // Day 11: actual 11, error 1, naive (day 4) error 7, outside the band.
        let one = &r.leads[0];
        assert_eq!((one.lead.as_str(), one.points), ("1 d", 1));
        assert_eq!((one.mae, one.naive_mae, one.coverage, one.bias), (1.0, 7.0, 0.0, 1.0));
        // Day 17: actual 17, error 3, naive (day 10, the as-of itself) 7, inside.
        let week = &r.leads[1];
        assert_eq!((week.points, week.mae, week.naive_mae, week.coverage, week.bias), (1, 3.0, 7.0, 1.0, 3.0));
        // Crossed 15 at day 15, expected day 13: 2 days early.
        assert_eq!(r.dates[0].days, -2.0);
        assert!(r.outcomes[0].happened);
        let d = r.drift.unwrap();
        assert_eq!(d.moved[0].change, "no longer crosses");
        assert_eq!((d.seen, d.outside), (2, 1));
        assert_eq!(d.reason, "new data within the band");
        // The same run with a threshold read anew from the server.
        let mut changed = now.clone();
        changed.thresholds[0].value = 16.0;
        let r = score(&history, &[p], &changed, 29 * DAY);
        assert_eq!(r.drift.unwrap().reason, "thresholds changed (hard 15 -> 16)");
    }

    #[test]
    fn a_combination_is_the_same_model_whatever_the_order() {
        assert!(same_model("median(a(24), b, c[last 5])", "median(b, c[last 5], a(24))"));
        assert!(!same_model("median(a, b)", "mean(a, b)"));
        assert!(!same_model("ets", "theta"));
        assert!(same_model("mstl(24,168)+ets", "mstl(24,168)+ets"));
    }

    #[test]
    fn an_unfinished_horizon_without_a_crossing_is_not_an_outcome_yet() {
        let history = Series { start: 0, step: DAY, values: vec![1.0; 20] };
        let th = PastThreshold {
            name: "soft".into(),
            value: 5.0,
            expected_at: None,
            earliest_at: None,
            probability: 0.2,
            already_breached: false,
        };
        let p = past(10 * DAY, vec![Mark { t: 30 * DAY, mean: 1.0, lower: 0.0, upper: 2.0 }], vec![th]);
        let r = score(&history, std::slice::from_ref(&p), &p, 19 * DAY);
        assert!(r.outcomes.is_empty());
        let r = score(&history, std::slice::from_ref(&p), &p, 30 * DAY);
        assert_eq!(r.outcomes.len(), 1);
        assert!(!r.outcomes[0].happened);
        let f = fleet([&r], 1);
        assert_eq!(f.brier, Some(0.2f64.powi(2)));
        assert_eq!(f.reliability[0].from, 0.2);
    }
}
