//! Small numeric helpers shared by models and breach analysis: the normal distribution and
//! robust summaries. Kept here so no stage reaches into another for arithmetic.

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 via erf; error < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let y = 1.0
        - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
            * t
            * (-x * x).exp();
    sign * y
}

/// Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// z such that a central interval `mean ± z sigma` holds `level` of a normal distribution.
pub fn central_z(level: f64) -> f64 {
    normal_quantile(0.5 + level / 2.0)
}

/// splitmix64 with Box–Muller normals: a tiny, well-known generator, so the sample data and
/// the breach odds are the same on every run and need no RNG crate.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Serde for a float that may be NaN or infinite: JSON has no such numbers, so they travel
/// as `null` and come back as NaN (shard files for `headroom merge`).
pub mod nan_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// FNV-1a, 64 bits: a stable hash of text (the same on every machine and version).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// How points inside one step are combined (Tamland: p95 over 1 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    Mean,
    Max,
    P95,
    P99,
    Last,
}

impl Aggregate {
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean",
            Aggregate::Max => "max",
            Aggregate::P95 => "p95",
            Aggregate::P99 => "p99",
            Aggregate::Last => "last",
        }
    }

    /// The statistic of the points in one step (at least one).
    pub fn apply(self, vals: &mut [f64]) -> f64 {
        match self {
            Aggregate::Mean => vals.iter().sum::<f64>() / vals.len() as f64,
            Aggregate::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Last => vals[vals.len() - 1],
            Aggregate::P95 => quantile(vals, 0.95),
            Aggregate::P99 => quantile(vals, 0.99),
        }
    }
}

/// Deterministic pseudo-noise in [-0.5, 0.5) indexed by `i`, for tests.
#[cfg(test)]
pub fn test_noise(i: usize) -> f64 {
    SplitMix64((i as u64).wrapping_mul(0x9E3779B97F4A7C15)).uniform() - 0.5
}

/// Linear-interpolated quantile (type 7, as numpy and PromQL's quantile_over_time; NaN when
/// empty), in linear time: the two order statistics around the position are selected, not
/// sorted for. Reorders `vals`.
pub fn quantile(vals: &mut [f64], q: f64) -> f64 {
    quantiles(vals, [q])[0]
}

/// Several quantiles of `vals`, each as [`quantile`] gives it. Ascending `qs` cost less: each
/// is selected among the values above the one before. Reorders `vals`.
pub fn quantiles<const N: usize>(vals: &mut [f64], qs: [f64; N]) -> [f64; N] {
    let mut out = [f64::NAN; N];
    if vals.is_empty() {
        return out;
    }
    // Selected on order keys (as in `middle`), turned back after.
    to_order_keys(vals);
    let value = |x: f64| f64::from_bits(total_order(x));
    // The index last put in its sorted place, with the smaller values before it and the
    // larger after.
    let mut placed: Option<usize> = None;
    for (o, q) in out.iter_mut().zip(qs) {
        let pos = q.clamp(0.0, 1.0) * (vals.len() - 1) as f64;
        let lo = pos.floor() as usize;
        if placed != Some(lo) {
            let from = placed.filter(|p| *p < lo).map_or(0, |p| p + 1);
            vals[from..].select_nth_unstable_by_key(lo - from, order_key);
            placed = Some(lo);
        }
        let low = value(vals[lo]);
        // The next order statistic is the smallest value above the selected one.
        let high = vals[lo + 1..].iter().copied().min_by_key(order_key).map_or(low, value);
        *o = if pos == lo as f64 { low } else { low + (high - low) * (pos - lo as f64) };
    }
    to_order_keys(vals);
    out
}

/// The middle value of `v` (the upper one of an even count; NaN when empty), in linear time;
/// reorders `v`.
pub fn middle(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = v.len() / 2;
    // Selected on order keys, each value's computed once rather than at every comparison,
    // then turned back.
    to_order_keys(v);
    v.select_nth_unstable_by_key(k, order_key);
    to_order_keys(v);
    v[k]
}

/// Rewrites each value as its order key (bits that, read by [`order_key`], sort as
/// `f64::total_cmp` sorts the values); a second call turns the keys back into the values.
fn to_order_keys(v: &mut [f64]) {
    v.iter_mut().for_each(|x| *x = f64::from_bits(total_order(*x)));
}

/// A value rewritten by [`to_order_keys`], read as the integer it sorts by.
fn order_key(x: &f64) -> i64 {
    x.to_bits() as i64
}

/// The bits of `x` rearranged so that, read as an `i64`, they sort as `f64::total_cmp` sorts
/// `x`. Its own inverse.
fn total_order(x: f64) -> u64 {
    let b = x.to_bits() as i64;
    (b ^ ((((b >> 63) as u64) >> 1) as i64)) as u64
}

/// The median of a few values (the mean of the middle two of an even count, as
/// `stats::quantile(v, 0.5)`; NaN when empty), by insertion sort: no allocation.
pub fn small_median(v: &mut [f64]) -> f64 {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1].total_cmp(&v[j]).is_gt() {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
    match v.len() {
        0 => f64::NAN,
        m if m % 2 == 1 => v[m / 2],
        m => v[m / 2 - 1] + (v[m / 2] - v[m / 2 - 1]) * 0.5,
    }
}

/// The middle absolute step-to-step move of `values` (gaps skipped; NaN with no move): the
/// robust scale behind outlier clips and noise estimates.
pub fn middle_move(values: &[f64]) -> f64 {
    middle(&mut moves(values))
}

/// The absolute step-to-step moves of `values`, gaps skipped.
pub fn moves(values: &[f64]) -> Vec<f64> {
    values.windows(2).map(|w| (w[1] - w[0]).abs()).filter(|d| d.is_finite()).collect()
}

/// Mean of the finite values, or None.
pub fn finite_mean(v: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.into_iter().filter(|x| x.is_finite()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Root mean square of the finite values, or None.
pub fn finite_rms(v: impl IntoIterator<Item = f64>) -> Option<f64> {
    finite_mean(v.into_iter().map(|x| x * x)).map(f64::sqrt)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn quantile_by_selection_equals_quantile_of_the_sorted_values(
            v in proptest::collection::vec(-1e6f64..1e6, 1..200),
            q in 0.0f64..=1.0,
        ) {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let pos = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
            proptest::prop_assert_eq!(quantile(&mut v.clone(), q).to_bits(), want.to_bits());
        }
    }

    proptest::proptest! {
        #[test]
        fn several_quantiles_at_once_equal_each_alone(
            v in proptest::collection::vec(-1e6f64..1e6, 0..60),
            qs in proptest::array::uniform3(0.0f64..1.0),
        ) {
            let together = quantiles(&mut v.clone(), qs);
            for (q, got) in qs.iter().zip(together) {
                proptest::prop_assert_eq!(got.to_bits(), quantile(&mut v.clone(), *q).to_bits());
            }
            let mut sorted = qs;
            sorted.sort_by(f64::total_cmp);
            let ascending = quantiles(&mut v.clone(), sorted);
            for (q, got) in sorted.iter().zip(ascending) {
                proptest::prop_assert_eq!(got.to_bits(), quantile(&mut v.clone(), *q).to_bits());
            }
        }
    }

    /// Any float, signed zeros, infinities and NaN among them.
    fn any_value() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![-1e6f64..1e6, Just(0.0), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN)]
    }

    proptest::proptest! {
        #[test]
        fn selection_follows_total_order_and_keeps_every_value(
            v in proptest::collection::vec(any_value(), 0..80),
            q in 0.0f64..=1.0,
        ) {
            let bits = |v: &[f64]| {
                let mut b: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
                b.sort_unstable();
                b
            };
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let mut m = v.clone();
            let mid = middle(&mut m);
            proptest::prop_assert_eq!(mid.to_bits(), sorted.get(v.len() / 2).map_or(f64::NAN, |x| *x).to_bits());
            proptest::prop_assert_eq!(bits(&m), bits(&v));
            let mut w = v.clone();
            let [low, high] = quantiles(&mut w, [q, q]);
            proptest::prop_assert_eq!(low.to_bits(), high.to_bits());
            proptest::prop_assert_eq!(bits(&w), bits(&v));
            if let (Some(first), Some(last)) = (sorted.first(), sorted.last()) {
                proptest::prop_assert_eq!(quantiles(&mut v.clone(), [0.0])[0].to_bits(), first.to_bits());
                proptest::prop_assert_eq!(quantiles(&mut v.clone(), [1.0])[0].to_bits(), last.to_bits());
            }
        }
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        assert_eq!(quantile(&mut [4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(quantile(&mut [4.0, 1.0, 3.0, 2.0], 1.0), 4.0);
        assert_eq!(quantile(&mut [5.0, 1.0, 3.0], 0.25), 2.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn normal_round_trip() {
        assert!((central_z(0.8) - 1.2815515655).abs() < 1e-6);
        assert!((central_z(0.95) - 1.959963985).abs() < 1e-6);
        for p in [0.001, 0.01, 0.1, 0.5, 0.9, 0.99] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-6, "{p}");
        }
        assert_eq!(finite_mean([1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(finite_rms([3.0, 4.0, f64::NAN]), Some((12.5f64).sqrt()));
        assert_eq!(finite_mean([f64::NAN]), None);
    }

    #[test]
    fn the_small_median_agrees_with_the_quantile() {
        let mut seed = 7u64;
        for len in 0..=7 {
            for _ in 0..50 {
                let v: Vec<f64> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((seed >> 40) % 9) as f64 - 4.0
                    })
                    .collect();
                let (a, b) = (small_median(&mut v.clone()), quantile(&mut v.clone(), 0.5));
                assert!(a == b || (a.is_nan() && b.is_nan()), "{v:?}: {a} vs {b}");
            }
        }
    }
}
