//! Seasonal naive: tomorrow looks like the same hour one season ago (period 1 is plain naive).
//! The baseline every benchmark compares against, and often hard to beat on spiky series.

use super::{Fitted, Forecast, Model, ModelError, check_len};
use crate::series::fill_gaps;
use crate::stats::{central_z, finite_rms};

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
        // One-season-ahead errors on observed pairs give the scale of the interval.
        let sigma = finite_rms((p..values.len()).map(|i| values[i] - values[i - p])).unwrap_or(0.0);
        let filled = fill_gaps(values, p);
        let last_season = filled[filled.len() - p..].to_vec();
        let fitted = (0..filled.len()).map(|i| if i >= p { filled[i - p] } else { f64::NAN }).collect();
        Ok(Box::new(FittedNaive { last_season, sigma, fitted }))
    }
}

struct FittedNaive {
    last_season: Vec<f64>,
    sigma: f64,
    fitted: Vec<f64>,
}

impl Fitted for FittedNaive {
    fn predict(&self, horizon: usize, level: f64) -> Forecast {
        let p = self.last_season.len();
        let z = central_z(level);
        let mut f = Forecast::default();
        for h in 0..horizon {
            let m = self.last_season[h % p];
            // k seasons ahead: errors of k independent season-steps add up.
            let k = (h / p + 1) as f64;
            let w = z * self.sigma * k.sqrt();
            f.mean.push(m);
            f.lower.push(m - w);
            f.upper.push(m + w);
        }
        f
    }

    fn fitted(&self) -> Vec<f64> {
        self.fitted.clone()
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
}
