//! Last year's path, for a history that holds a year but not a year before its backtest
//! origins, so no backtest can score a yearly model (`naive::YearAgo` is scored once it can).
//!
//! One year of history cannot tell a yearly cycle from a level that wandered and came back,
//! so the term is used only where the year looks like one turn of a cycle: its weekly means
//! end where they began (within half their range: a trend or a lasting shift is not a cycle)
//! and two yearly harmonics explain at least half of their variance (noise and spikes are
//! not). Then the chosen forecast is averaged with last year's path from the same date,
//! re-levelled to the forecast's first week, so growth since last year comes from the chosen
//! model and only last year's course over the horizon from the year before. Each step of
//! that path is the median of the same step in the three weeks around the date a year
//! before, so one-off spikes are not repeated. The bands learn the blend's errors at the
//! backtest origins with last year's course there read off the two harmonics (no origin has
//! a year before it), each error as a multiple of the season's volatility at its date, and
//! widen by the volatility last year at each forecast date (which also carries how errors
//! change past the calibration horizon): a year that swings hard in summer and little in
//! spring does not lend summer's errors to a spring forecast. Measured in
//! bench/ACCURACY.md (sessions 15 and 17).

use crate::series::fill_gaps;
use crate::stats::small_median;

/// Of the year's weekly-mean variance, the least share two yearly harmonics must explain.
const MIN_EXPLAINED: f64 = 0.5;
/// The most the last four weeks' mean may differ from the first four's, as a share of the
/// weekly means' range.
const MAX_RETURN: f64 = 0.5;
/// Weeks averaged at each end of the year for the return test.
const END_WEEKS: usize = 4;
/// Weeks either side of a date its volatility is averaged over: most of a quarter, long
/// enough to average out a few unusual weeks, short enough to follow the seasons (4 to 8
/// did about as well on the long sets; 1 and 26 worse: bench/ACCURACY.md, session 17).
const VOLATILITY_WEEKS: usize = 5;
/// The least volatility a date is given, as a share of the whole history's: no error is
/// divided by nothing.
const MIN_VOLATILITY: f64 = 0.1;

/// Last year's path over a horizon, where the history looks like a yearly cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct LastYear {
    path: Vec<f64>,
    week: usize,
    /// The two yearly harmonics of the weekly means: (cos, sin) coefficients.
    harmonics: [(f64, f64); 2],
    /// Where the year of weekly means starts, and how many weeks it holds.
    start: usize,
    weeks: usize,
    /// The season's volatility at each step of the history, and the year's steps.
    volatility: Vec<f64>,
    year: usize,
}

impl LastYear {
    /// The path over `horizon` steps for `values` (step `step` seconds), or None: the step
    /// does not divide a 52-week year, the history is shorter than that year, or the year
    /// does not look like one turn of a cycle.
    pub fn of(values: &[f64], step: i64, horizon: usize) -> Option<LastYear> {
        let steps = |seconds: i64| (step > 0 && seconds % step == 0).then(|| (seconds / step) as usize);
        let (year, week) = (steps(364 * 86_400)?, steps(7 * 86_400)?);
        let n = values.len();
        if n < year || horizon == 0 || week == 0 || values[n - year..].iter().all(|v| !v.is_finite()) {
            return None;
        }
        let y = fill_gaps(values, week);
        let weeks: Vec<f64> = y[n - year..].chunks_exact(week).map(|c| c.iter().sum::<f64>() / week as f64).collect();
        let harmonics = harmonics(&weeks);
        if !looks_cyclic(&weeks, &harmonics) {
            return None;
        }
        let path = (0..horizon)
            .map(|i| {
                let at = n - year + i % year;
                let (mut around, mut k) = ([0.0; 3], 0);
                for j in [at.checked_sub(week), Some(at), Some(at + week).filter(|j| *j < n)].into_iter().flatten() {
                    around[k] = y[j];
                    k += 1;
                }
                small_median(&mut around[..k])
            })
            .collect();
        let volatility = volatility(&y, week);
        Some(LastYear { path, week, harmonics, start: n - year, weeks: weeks.len(), volatility, year })
    }

    /// The mean of `forecast` and this path moved to the forecast's level over their first
    /// week.
    pub fn blend(&self, forecast: &[f64]) -> Vec<f64> {
        blend(forecast, &self.path, self.week)
    }

    /// What [`LastYear::blend`] would have made of `forecast`, made at `origin` inside the
    /// history, had last year's course there been the harmonics' (the year before `origin`
    /// is not in the history): how the bands learn the blend's errors.
    pub fn blend_course(&self, origin: usize, forecast: &[f64]) -> Vec<f64> {
        let course: Vec<f64> = (0..forecast.len()).map(|i| self.course(origin + i)).collect();
        blend(forecast, &course, self.week)
    }

    /// Steps in a week.
    pub fn week(&self) -> usize {
        self.week
    }

    /// The season's volatility at step `t` of the history (the last step's beyond it).
    pub fn volatility_at(&self, t: usize) -> f64 {
        self.volatility[t.min(self.volatility.len() - 1)]
    }

    /// The season's volatility at forecast step `i`: last year's at the same date.
    pub fn volatility_ahead(&self, i: usize) -> f64 {
        self.volatility[self.volatility.len() - self.year + i % self.year]
    }

    /// The harmonics' value at step `t` of the history (periodic in the year).
    fn course(&self, t: usize) -> f64 {
        let u = ((t as f64 - self.start as f64) / self.week as f64 - 0.5) / self.weeks as f64;
        self.harmonics
            .iter()
            .enumerate()
            .map(|(h, (c, s))| {
                let a = std::f64::consts::TAU * (h + 1) as f64 * u;
                c * a.cos() + s * a.sin()
            })
            .sum()
    }
}

/// At every step, the mean absolute change from a week before over the
/// [`VOLATILITY_WEEKS`] either side of it (floored at [`MIN_VOLATILITY`] of the whole
/// history's).
fn volatility(y: &[f64], week: usize) -> Vec<f64> {
    let n = y.len();
    let mut prefix = vec![0.0; n + 1];
    for t in 0..n {
        let change = if t >= week { (y[t] - y[t - week]).abs() } else { 0.0 };
        prefix[t + 1] = prefix[t] + change;
    }
    let all = if n > week { prefix[n] / (n - week) as f64 } else { 0.0 };
    let w = VOLATILITY_WEEKS * week;
    (0..n)
        .map(|t| {
            let (a, b) = (t.saturating_sub(w).max(week), (t + w).min(n.saturating_sub(1)));
            let v = if b >= a { (prefix[b + 1] - prefix[a]) / (b + 1 - a) as f64 } else { all };
            v.max(MIN_VOLATILITY * all)
        })
        .collect()
}

/// The mean of `forecast` and `path` moved to the forecast's level over their first `week`.
fn blend(forecast: &[f64], path: &[f64], week: usize) -> Vec<f64> {
    let w = week.min(forecast.len()).min(path.len());
    if w == 0 {
        return forecast.to_vec();
    }
    let shift = (forecast[..w].iter().sum::<f64>() - path[..w].iter().sum::<f64>()) / w as f64;
    forecast.iter().zip(path).map(|(f, p)| (f + p + shift) / 2.0).collect()
}

/// The first two yearly harmonics of the weekly means (over whole turns they are orthogonal,
/// so each coefficient is a projection).
fn harmonics(weeks: &[f64]) -> [(f64, f64); 2] {
    let k = weeks.len().max(1) as f64;
    let avg = weeks.iter().sum::<f64>() / k;
    [1, 2].map(|h| {
        let (c, s) = weeks.iter().enumerate().fold((0.0, 0.0), |(c, s), (j, w)| {
            let a = std::f64::consts::TAU * (h * j) as f64 / k;
            (c + (w - avg) * a.cos(), s + (w - avg) * a.sin())
        });
        (2.0 * c / k, 2.0 * s / k)
    })
}

/// A year's weekly means that end where they began and follow their two yearly harmonics.
fn looks_cyclic(weeks: &[f64], harmonics: &[(f64, f64); 2]) -> bool {
    let k = weeks.len();
    if k < 4 * END_WEEKS || weeks.iter().any(|w| !w.is_finite()) {
        return false;
    }
    let (lo, hi) = weeks.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), w| (a.min(*w), b.max(*w)));
    let end = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let returned = (end(&weeks[k - END_WEEKS..]) - end(&weeks[..END_WEEKS])).abs() <= MAX_RETURN * (hi - lo);
    let avg = weeks.iter().sum::<f64>() / k as f64;
    let total: f64 = weeks.iter().map(|w| (w - avg).powi(2)).sum();
    // Each orthogonal harmonic explains k/2 times its squared amplitude.
    let explained: f64 = harmonics.iter().map(|(c, s)| (c * c + s * s) * k as f64 / 2.0).sum();
    hi > lo && returned && explained >= MIN_EXPLAINED * total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_noise;

    const DAY: i64 = 86_400;

    /// Daily values over `days`: a yearly wave, a weekly cycle, noise, and `extra(day)`.
    fn daily(days: usize, wave: f64, extra: impl Fn(usize) -> f64) -> Vec<f64> {
        (0..days)
            .map(|d| {
                let yearly = wave * (std::f64::consts::TAU * d as f64 / 364.0).sin();
                10.0 + yearly + [0.0, 0.5, 0.8, 0.6, 0.4, -1.0, -1.3][d % 7] + 0.2 * test_noise(d) + extra(d)
            })
            .collect()
    }

    #[test]
    fn a_yearly_wave_is_followed_from_the_forecasts_level() {
        let y = daily(400, 3.0, |_| 0.0);
        let last = LastYear::of(&y, DAY, 90).expect("a clean yearly wave is a cycle");
        // The chosen model forecasts a flat 11 (one higher than the series' level): the blend
        // keeps that level over the first week and adds half of last year's course from that
        // date, weekly cycle included.
        let flat = vec![11.0; 90];
        let blend = last.blend(&flat);
        let course = |d: usize| {
            3.0 * (std::f64::consts::TAU * d as f64 / 364.0).sin() + [0.0, 0.5, 0.8, 0.6, 0.4, -1.0, -1.3][d % 7]
        };
        let start = (0..7).map(|i| course(400 + i)).sum::<f64>() / 7.0;
        for (i, got) in blend.iter().enumerate() {
            let want = 11.0 + (course(400 + i) - start) / 2.0;
            assert!((got - want).abs() < 0.3, "step {i}: {got} against {want}");
        }
        // Twelve weeks on, the wave has risen by 0.9: the blend follows half of it.
        assert!(blend[84] > blend[0] + 0.3, "{} then {}", blend[0], blend[84]);
    }

    #[test]
    fn inside_the_history_last_years_course_comes_from_the_harmonics() {
        // Day 100 has no year before it: the blend a forecast made there would have been is
        // read off the weekly means' two harmonics, here the wave itself.
        let y = daily(400, 3.0, |_| 0.0);
        let last = LastYear::of(&y, DAY, 30).unwrap();
        let wave = |d: usize| 3.0 * (std::f64::consts::TAU * d as f64 / 364.0).sin();
        let blend = last.blend_course(100, &[10.0; 60]);
        let start = (0..7).map(|i| wave(100 + i)).sum::<f64>() / 7.0;
        for (i, got) in blend.iter().enumerate() {
            let want = 10.0 + (wave(100 + i) - start) / 2.0;
            assert!((got - want).abs() < 0.1, "step {i}: {got} against {want}");
        }
    }

    #[test]
    fn the_volatility_ahead_is_last_years_at_the_same_date() {
        // Noise twenty times as large from day 100 to day 200 as elsewhere.
        let y = daily(400, 3.0, |d| if (100..200).contains(&d) { 4.0 * test_noise(d * 31 + 7) } else { 0.0 });
        let last = LastYear::of(&y, DAY, 30).unwrap();
        let (quiet, loud) = (last.volatility_at(30), last.volatility_at(150));
        assert!(loud > 3.0 * quiet, "{quiet} against {loud}");
        // Forecast step i is day 400 + i, a year (364 days) after day 36 + i.
        assert_eq!(last.volatility_ahead(114), last.volatility_at(150));
        assert_eq!(last.volatility_ahead(0), last.volatility_at(36));
    }

    #[test]
    fn one_off_spikes_last_year_are_not_repeated() {
        let y = daily(400, 3.0, |d| if d == 50 { 40.0 } else { 0.0 });
        let last = LastYear::of(&y, DAY, 30).unwrap();
        let blend = last.blend(&[10.0; 30]);
        // Day 400 + 14 is 364 days after the spike on day 50.
        assert!(blend.iter().all(|v| (v - 10.0).abs() < 2.0), "{blend:?}");
    }

    #[test]
    fn trends_noise_shifts_and_short_histories_are_not_cycles() {
        let growth = daily(400, 0.0, |d| 0.05 * d as f64);
        assert_eq!(LastYear::of(&growth, DAY, 90), None, "a trend does not end where it began");
        let noise = daily(400, 0.0, |_| 0.0);
        assert_eq!(LastYear::of(&noise, DAY, 90), None, "weekly noise follows no yearly harmonic");
        let shifted = daily(400, 1.0, |d| if d > 200 { 6.0 } else { 0.0 });
        assert_eq!(LastYear::of(&shifted, DAY, 90), None, "a lasting shift is not a cycle");
        assert_eq!(LastYear::of(&daily(363, 3.0, |_| 0.0), DAY, 90), None, "less than a year");
        assert_eq!(LastYear::of(&daily(400, 3.0, |_| 0.0), 5 * DAY, 9), None, "a week is not whole steps");
        assert_eq!(LastYear::of(&daily(400, 3.0, |_| 0.0), DAY, 0), None);
        assert_eq!(LastYear::of(&vec![f64::NAN; 400], DAY, 9), None);
    }
}
