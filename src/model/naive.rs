//! Seasonal naive: tomorrow looks like the same hour one season ago (period 1 is plain naive).
//! The baseline every benchmark compares against, and often hard to beat on spiky series.
//! Seasonal median: each step the median of the same step over the last seven seasons.
//! Year ago: the same hour 52 weeks earlier, moved by how far the level has moved since, for
//! histories long enough to show (and backtest) a yearly cycle.

use super::{Fitted, Forecast, Model, ModelError, check_len};
use crate::series::fill_gaps;
use crate::stats::{central_z, finite_mean, finite_rms, small_median};

#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    pub period: usize,
}

impl Model for SeasonalNaive {
    fn name(&self) -> String {
        if self.period == 1 { "naive".into() } else { format!("seasonal_naive({})", self.period) }
    }

    fn min_len(&self) -> usize {
        self.period + 2
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        check_len(self, values)?;
        let p = self.period;
        let filled = fill_gaps(values, p);
        let last_season = filled[filled.len() - p..].to_vec();
        let values = values.to_vec();
        let in_sample = move || {
            let fitted: Vec<f64> = (0..filled.len()).map(|i| if i >= p { filled[i - p] } else { f64::NAN }).collect();
            // One-season-ahead errors on observed pairs give the scale of the interval.
            let sigma = finite_rms((p..values.len()).map(|i| values[i] - values[i - p])).unwrap_or(0.0);
            (fitted, sigma)
        };
        Ok(Box::new(FittedNaive { last_season, shift: 0.0, in_sample: Box::new(in_sample) }))
    }
}

/// In-sample fitted values and the error scale of the interval, computed when asked: a
/// backtest needs only the mean path.
type InSampleFn = Box<dyn Fn() -> (Vec<f64>, f64) + Send + Sync>;

/// The last season repeated, moved by `shift` more for each season ahead.
struct FittedNaive {
    last_season: Vec<f64>,
    shift: f64,
    in_sample: InSampleFn,
}

impl FittedNaive {
    /// The mean `h` steps ahead and how many seasons ahead that is.
    fn at(&self, h: usize) -> (f64, f64) {
        let p = self.last_season.len();
        let k = (h / p + 1) as f64;
        (self.last_season[h % p] + k * self.shift, k)
    }
}

impl Fitted for FittedNaive {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let z = central_z(level);
        let sigma = (self.in_sample)().1;
        let mut f = Forecast::with_capacity(horizon);
        for h in 0..horizon {
            // k seasons ahead: errors of k independent season-steps add up.
            let (m, k) = self.at(h);
            let w = z * sigma * k.sqrt();
            f.mean.push(m);
            f.lower.push(m - w);
            f.upper.push(m + w);
        }
        f
    }

    fn predict_mean(&self, horizon: usize, _level: f64) -> Vec<f64> {
        (0..horizon).map(|h| self.at(h).0).collect()
    }

    fn fitted(&self) -> Vec<f64> {
        (self.in_sample)().0
    }
}

/// Each step of the season as the median of the same step over the last seven seasons: the point that minimises absolute error where spikes come and go (VM CPU).
#[derive(Debug, Clone, Copy)]
pub struct SeasonalMedian {
    pub period: usize,
}

/// Seasons the seasonal median looks back over.
const MEDIAN_CYCLES: usize = 7;

impl Model for SeasonalMedian {
    fn name(&self) -> String {
        format!("seasonal_median({})", self.period)
    }

    fn min_len(&self) -> usize {
        3 * self.period
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        check_len(self, values)?;
        let p = self.period;
        let filled = fill_gaps(values, p);
        let n = filled.len();
        // The median of the same step in up to MEDIAN_CYCLES seasons before `end`.
        let at = move |end: usize, j: usize| -> f64 {
            let mut v = [0.0; MEDIAN_CYCLES];
            let m = MEDIAN_CYCLES.min(end / p);
            for k in 1..=m {
                v[k - 1] = filled[end - k * p + j];
            }
            small_median(&mut v[..m])
        };
        let last_season: Vec<f64> = (0..p).map(|j| at(n, j)).collect();
        let values = values.to_vec();
        let in_sample = move || {
            let fitted: Vec<f64> = (0..n).map(|i| if i >= p { at(i - i % p, i % p) } else { f64::NAN }).collect();
            let sigma = finite_rms((p..n).map(|i| values[i] - fitted[i])).unwrap_or(0.0);
            (fitted, sigma)
        };
        Ok(Box::new(FittedNaive { last_season, shift: 0.0, in_sample: Box::new(in_sample) }))
    }
}

/// The same step 52 weeks earlier (weekdays line up), shifted by the change in level: the
/// mean of the last `window` steps minus the mean of the same steps a year before. Beyond a
/// year ahead the shift repeats once per year.
#[derive(Debug, Clone, Copy)]
pub struct YearAgo {
    /// Steps in 52 weeks.
    pub year: usize,
    /// Steps the level is averaged over (four weeks).
    pub window: usize,
    /// Gaps are filled from this many steps earlier (a week).
    pub fill: usize,
}

impl YearAgo {
    pub const NAME: &'static str = "year_ago";
}

impl Model for YearAgo {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn min_len(&self) -> usize {
        self.year + self.window
    }

    fn fit(&self, values: &[f64]) -> Result<Box<dyn Fitted>, ModelError> {
        check_len(self, values)?;
        let (n, l, w) = (values.len(), self.year, self.window);
        let y = fill_gaps(values, self.fill);
        let mean = |s: &[f64]| finite_mean(s.iter().copied()).unwrap_or(0.0);
        let shift = mean(&y[n - w..]) - mean(&y[n - l - w..n - l]);
        let last_season = y[n - l..].to_vec();
        let in_sample = move || {
            // Year-over-year changes around their mean give the interval's scale.
            let changes: Vec<f64> = (l..n).map(|i| y[i] - y[i - l]).collect();
            let centre = mean(&changes);
            let sigma = finite_rms(changes.iter().map(|c| c - centre)).unwrap_or(0.0);
            let fitted = (0..n).map(|i| if i >= l { y[i - l] + centre } else { f64::NAN }).collect();
            (fitted, sigma)
        };
        Ok(Box::new(FittedNaive { last_season, shift, in_sample: Box::new(in_sample) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_last_season() {
        let y: Vec<f64> = (0..12).map(|i| (i % 4) as f64).collect();
        let f = SeasonalNaive { period: 4 }.fit(&y).unwrap().predict(6, 0.8);
        assert_eq!(f.mean, vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0]);
        assert_eq!(f.lower, f.mean, "a perfectly periodic series has no error");
        let y = [1.0, 2.0, 4.0];
        let f = SeasonalNaive { period: 1 }.fit(&y).unwrap().predict(2, 0.8);
        assert_eq!(f.mean, vec![4.0, 4.0]);
        assert!(f.upper[1] - f.mean[1] > f.upper[0] - f.mean[0]);
        assert!(SeasonalNaive { period: 24 }.fit(&y).is_err());
    }

    #[test]
    fn the_seasonal_median_ignores_spikes_that_come_and_go() {
        // A profile 0, 1, 2, 3 over ten seasons, with a spike in a different step of each of
        // the last three seasons: the median of the last seven seasons is the profile itself,
        // where the seasonal naive repeats the last spike.
        let mut y: Vec<f64> = (0..40).map(|i| (i % 4) as f64).collect();
        y[29] += 50.0;
        y[34] += 50.0;
        y[39] += 50.0;
        let f = SeasonalMedian { period: 4 }.fit(&y).unwrap().predict(8, 0.8);
        assert_eq!(f.mean, vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(SeasonalNaive { period: 4 }.fit(&y).unwrap().predict(4, 0.8).mean[3], 53.0);
        // Fitted values use the seasons before each step only: the first season has none,
        // the spikes are not fitted (their steps keep the profile), the rest is the profile.
        let fitted = SeasonalMedian { period: 4 }.fit(&y).unwrap().fitted();
        assert!(fitted[..4].iter().all(|v| v.is_nan()));
        assert!((4..40).all(|i| fitted[i] == (i % 4) as f64), "{fitted:?}");
        assert!(SeasonalMedian { period: 4 }.fit(&y[..11]).is_err(), "three seasons at least");
    }

    #[test]
    fn a_year_ago_moved_by_the_growth_since() {
        // Weekly "years" of 8 steps, levels averaged over 2: a cycle plus 1.0 growth per year.
        let y: Vec<f64> = (0..20).map(|i| [0.0, 5.0, 1.0, 3.0, 0.0, 5.0, 1.0, 3.0][i % 8] + i as f64 / 8.0).collect();
        let m = YearAgo { year: 8, window: 2, fill: 1 };
        let f = m.fit(&y).unwrap().predict(10, 0.8);
        for (h, v) in f.mean.iter().enumerate() {
            let want = [0.0, 5.0, 1.0, 3.0, 0.0, 5.0, 1.0, 3.0][(20 + h) % 8] + (20 + h) as f64 / 8.0;
            assert!((v - want).abs() < 1e-9, "step {h}: {v} vs {want}");
        }
        assert!(m.fit(&y[..9]).is_err());
    }

    #[test]
    fn the_mean_path_alone_is_the_forecasts_mean() {
        let y: Vec<f64> =
            (0..60).map(|i| (i % 4) as f64 + 0.1 * crate::stats::test_noise(i) + i as f64 / 30.0).collect();
        let models: [Box<dyn Model>; 3] = [
            Box::new(SeasonalNaive { period: 4 }),
            Box::new(SeasonalMedian { period: 4 }),
            Box::new(YearAgo { year: 8, window: 2, fill: 1 }),
        ];
        for m in models {
            let fit = m.fit(&y).unwrap();
            let f = fit.predict(13, 0.8);
            assert_eq!(fit.predict_mean(13, 0.8), f.mean, "{}", m.name());
            assert!(f.upper.iter().zip(&f.mean).all(|(u, v)| u > v), "{}: noise gives an interval", m.name());
        }
    }
}
