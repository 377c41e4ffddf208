//! Automatic level-shift detection: a migration, a new cluster, a config change moves a
//! resource's level for good, and the old level should not drag the trend. The series is
//! reduced to one mean per season block (a day for hourly data: cycles average out); a step
//! is accepted where a line plus a step explains the block means much better than a line
//! or a parabola (so accelerating growth is not taken for a step), and the step is large
//! against the block-to-block noise.

use crate::stats::{middle_move, moves, quantile};

/// Blocks on each side of a shift, at least.
const MIN_BLOCKS: usize = 7;
/// The step must exceed this many block-noise standard deviations.
const MIN_STEP_SIGMAS: f64 = 6.0;
/// And the step must remove at least this share of the residual sum of squares left by a
/// line or a parabola, whichever fits better.
const MIN_GAIN: f64 = 0.5;

/// The index into `values` where the latest large level shift starts, if there is one.
/// `block` is the seasonal block length in steps (24 for hourly data).
pub fn detect_level_shift(values: &[f64], block: usize) -> Option<usize> {
    let block = block.max(1);
    let means: Vec<(usize, f64)> = values
        .chunks(block)
        .enumerate()
        .filter(|(_, c)| c.len() == block)
        .filter_map(|(j, c)| {
            let obs: Vec<f64> = c.iter().copied().filter(|v| v.is_finite()).collect();
            (obs.len() * 2 >= block).then(|| (j, obs.iter().sum::<f64>() / obs.len() as f64))
        })
        .collect();
    let nb = means.len();
    if nb < 2 * MIN_BLOCKS + 2 {
        return None;
    }
    let noise = block_noise(&means)?;
    let smooth = fit(&means, Third::None).0.min(fit(&means, Third::Square).0);
    let (r, at, step) = best_step(&means, step_candidates(&means))?;
    let gain = if smooth > 0.0 { 1.0 - r / smooth } else { 0.0 };
    (gain >= MIN_GAIN && step.abs() >= MIN_STEP_SIGMAS * noise).then_some(at * block)
}

/// A level shift too recent for [`detect_level_shift`] (under [`MIN_BLOCKS`] blocks ago, at
/// least a quarter block): every step since lies beyond everything in the blocks before it,
/// it was reached by a jump (one step covers half the shift or more, so a drift is not a
/// shift) that the series had not made twice before (so a sawtooth's clean-up is not a
/// shift), and the shift exceeds [`MIN_STEP_SIGMAS`] step-to-step noise. The index where
/// the latest such shift starts, if there is one.
pub fn detect_recent_shift(values: &[f64], block: usize) -> Option<usize> {
    let block = block.max(1);
    let n = values.len();
    let shortest = (block / 4).max(3);
    let mut found = None;
    for k in shortest..=(MIN_BLOCKS * block).min(n / 4) {
        let at = n - k;
        let before = &values[at.saturating_sub(MIN_BLOCKS * block)..at];
        if before.len() < 2 * block {
            break;
        }
        if recent_shift_at(values, at, before, block, shortest) {
            found = Some(at);
        }
    }
    found
}

fn recent_shift_at(values: &[f64], at: usize, before: &[f64], block: usize, shortest: usize) -> bool {
    let after = &values[at..];
    if !values[at].is_finite() || after.iter().filter(|v| v.is_finite()).count() < shortest {
        return false;
    }
    let (lo, hi) = before
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let beyond = |f: &dyn Fn(f64) -> bool| after.iter().filter(|v| v.is_finite()).all(|v| f(*v));
    if !(beyond(&|v| v > hi) || beyond(&|v| v < lo)) {
        return false;
    }
    let Some(step) = regime_change(values, at, block).map(|r| r.size) else { return false };
    let mut moves = moves(before);
    if moves.is_empty() {
        return false;
    }
    let noise = noise_sd(quantile(&mut moves, 0.5));
    let jump = (at.saturating_sub(3)..=at)
        .filter(|&j| j >= 1)
        .map(|j| (values[j] - values[j - 1]).abs())
        .filter(|d| d.is_finite())
        .fold(0.0, f64::max);
    // A jump the series has made twice or more before (a sawtooth's clean-ups, say) is part of
    // its behaviour, not a change of level.
    let earlier = (1..at.saturating_sub(4))
        .filter(|&j| {
            let d = values[j] - values[j - 1];
            d.is_finite() && d * step.signum() >= 0.5 * step.abs()
        })
        .count();
    step.abs() >= MIN_STEP_SIGMAS * noise && jump >= 0.5 * step.abs() && earlier < 2
}

/// Step-to-step moves needed on each side to compare the noise before and after a shift.
const MIN_NOISE_PAIRS: usize = 5;
/// Bounds of the noise ratio applied across a shift.
const MAX_NOISE_RATIO: f64 = 4.0;

/// How a series changed at a level shift, read from the steps after it (the first
/// [`MIN_BLOCKS`] blocks at most) against the same phases of the block(s) before it, so daily
/// cycles do not count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regime {
    /// The median change from before to after.
    pub size: f64,
    /// Step-to-step noise after over noise before (1 when too few steps tell it apart from 1).
    pub scale: f64,
    /// The median level before, around which the noise is scaled.
    pub anchor: f64,
}

impl Regime {
    /// A value from before the shift as it would read after it.
    pub fn map(&self, v: f64) -> f64 {
        self.anchor + self.size + self.scale * (v - self.anchor)
    }

    /// Back from the new regime to the old one.
    pub fn unmap(&self, v: f64) -> f64 {
        self.anchor + (v - self.anchor - self.size) / self.scale
    }
}

/// The [`Regime`] change of a shift starting at `at`. None without a whole block before it
/// or a step after it.
pub fn regime_change(values: &[f64], at: usize, block: usize) -> Option<Regime> {
    let block = block.max(1);
    let after = values.len().checked_sub(at)?.min(MIN_BLOCKS * block).min(block * (at / block));
    let back = block * after.div_ceil(block);
    let mut changes: Vec<f64> =
        (at..at + after).map(|j| values[j] - values[j - back]).filter(|d| d.is_finite()).collect();
    let mut before: Vec<f64> = (at..at + after).map(|j| values[j - back]).filter(|v| v.is_finite()).collect();
    if changes.is_empty() {
        return None;
    }
    let (size, anchor) = (quantile(&mut changes, 0.5), quantile(&mut before, 0.5));
    // Moves within the stretch after the shift, and the same moves a block (or more) before.
    let (mut new, mut old): (Vec<f64>, Vec<f64>) = (at + 1..at + after)
        .map(|j| ((values[j] - values[j - 1]).abs(), (values[j - back] - values[j - back - 1]).abs()))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .unzip();
    // A median-based noise estimate from m moves has a relative standard error of about
    // 1.17 / sqrt(m); the noise is taken to have changed only when the log ratio of the two
    // estimates exceeds twice its standard error.
    let ratio = quantile(&mut new, 0.5) / quantile(&mut old, 0.5);
    let m = new.len();
    let clear = ratio.ln().abs() > 2.0 * 1.17 * (2.0 / m.max(1) as f64).sqrt();
    let scale = if m >= MIN_NOISE_PAIRS && ratio.is_finite() && ratio > 0.0 && clear {
        ratio.clamp(1.0 / MAX_NOISE_RATIO, MAX_NOISE_RATIO)
    } else {
        1.0
    };
    Some(Regime { size, scale, anchor })
}

/// The regressor besides intercept and slope.
#[derive(Clone, Copy)]
enum Third {
    None,
    /// Curvature (x squared).
    Square,
    /// A step from this block on.
    Step(usize),
}

/// Robust standard deviation of one block mean around its neighbours (from first
/// differences, so trends and shifts barely count).
fn block_noise(means: &[(usize, f64)]) -> Option<f64> {
    let values: Vec<f64> = means.iter().map(|m| m.1).collect();
    let mad = middle_move(&values);
    mad.is_finite().then(|| noise_sd(mad))
}

/// The noise standard deviation of a series whose median absolute step-to-step move is
/// `median_move` (a move is the difference of two noisy values: sqrt(2) noise sd).
fn noise_sd(median_move: f64) -> f64 {
    (median_move / 0.6745 / std::f64::consts::SQRT_2).max(1e-12)
}

/// The split among `splits` (block indices) whose line plus step fits the block means best:
/// (residual sum of squares, the block where the step starts, the step).
fn best_step(means: &[(usize, f64)], splits: impl IntoIterator<Item = usize>) -> Option<(f64, usize, f64)> {
    let mut best: Option<(f64, usize, f64)> = None;
    for k in splits {
        let at = means[k].0;
        let (r, step) = fit(means, Third::Step(at));
        if best.is_none_or(|b| r < b.0) {
            best = Some((r, at, step));
        }
    }
    best
}

/// Where a step may start (block indices, ascending, at least [`MIN_BLOCKS`] from either
/// end): the splits whose line-plus-step residual sum of squares, from running sums over the
/// blocks (linear time, where fitting every split costs the square), is within rounding of
/// the least. Fitting just these directly chooses as fitting every split would.
fn step_candidates(means: &[(usize, f64)]) -> Vec<usize> {
    let nb = means.len();
    let all: Vec<usize> = (MIN_BLOCKS..=nb - MIN_BLOCKS).collect();
    let span = means.last().map_or(1.0, |m| m.0.max(1) as f64);
    let centre = means.iter().map(|m| m.1).sum::<f64>() / nb as f64;
    // Sums over every block (y centred, so the intercept's own sum is zero), then over the
    // blocks from k on, accumulated from the end.
    let (mut su, mut suu, mut suy, mut syy) = (0.0, 0.0, 0.0, 0.0);
    for &(x, y) in means {
        let (u, y) = (x as f64 / span, y - centre);
        (su, suu, suy, syy) = (su + u, suu + u * u, suy + u * y, syy + y * y);
    }
    let mut rss = vec![f64::INFINITY; nb];
    let (mut c, mut sus, mut ssy) = (0.0, 0.0, 0.0);
    for k in (MIN_BLOCKS..nb).rev() {
        let (x, y) = means[k];
        (c, sus, ssy) = (c + 1.0, sus + x as f64 / span, ssy + y - centre);
        if k + MIN_BLOCKS <= nb {
            let a = [[nb as f64, su, c], [su, suu, sus], [c, sus, c]];
            let b = [0.0, suy, ssy];
            if let Some(beta) = solve(a, b, 3) {
                rss[k] = syy - (beta[1] * b[1] + beta[2] * b[2]);
            }
        }
    }
    let least = all.iter().map(|&k| rss[k]).fold(f64::INFINITY, f64::min);
    if !least.is_finite() {
        return all;
    }
    let near = least + 1e-9 * syy + 1e-300;
    all.into_iter().filter(|&k| rss[k] <= near).collect()
}

/// Least squares of the block means on [1, x, third] via the normal equations (x scaled to
/// [0, 1]); (RSS, coefficient of the third regressor).
fn fit(means: &[(usize, f64)], third: Third) -> (f64, f64) {
    let cols = if matches!(third, Third::None) { 2 } else { 3 };
    let span = means.last().map_or(1.0, |m| m.0.max(1) as f64);
    let row = |x: usize| {
        let u = x as f64 / span;
        let t = match third {
            Third::None => 0.0,
            Third::Square => u * u,
            Third::Step(a) => f64::from(u8::from(x >= a)),
        };
        [1.0, u, t]
    };
    let mut a = [[0.0f64; 3]; 3];
    let mut b = [0.0f64; 3];
    for &(x, y) in means {
        let r = row(x);
        for i in 0..cols {
            b[i] += r[i] * y;
            for j in 0..cols {
                a[i][j] += r[i] * r[j];
            }
        }
    }
    let Some(beta) = solve(a, b, cols) else { return (f64::INFINITY, 0.0) };
    let rss = means
        .iter()
        .map(|&(x, y)| {
            let r = row(x);
            let fitted: f64 = (0..cols).map(|i| r[i] * beta[i]).sum();
            (y - fitted).powi(2)
        })
        .sum();
    (rss, if cols == 3 { beta[2] } else { 0.0 })
}

/// Gaussian elimination with partial pivoting on the leading `n` x `n` system.
fn solve(mut a: [[f64; 3]; 3], mut b: [f64; 3], n: usize) -> Option<[f64; 3]> {
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        let pivot = a[c];
        for r in c + 1..n {
            let f = a[r][c] / pivot[c];
            for (x, p) in a[r][c..n].iter_mut().zip(&pivot[c..n]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; 3];
    for c in (0..n).rev() {
        let s: f64 = (c + 1..n).map(|k| a[c][k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_noise;

    fn series(days: usize, f: impl Fn(usize) -> f64) -> Vec<f64> {
        (0..days * 24)
            .map(|i| f(i) + 0.05 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin() + 0.02 * test_noise(i))
            .collect()
    }

    #[test]
    fn a_level_shift_is_found_at_the_right_place() {
        let y = series(90, |i| 0.3 + 0.0001 * i as f64 + if i >= 60 * 24 { 0.2 } else { 0.0 });
        assert_eq!(detect_level_shift(&y, 24), Some(60 * 24));
        let down = series(90, |i| 0.6 - if i >= 25 * 24 { 0.15 } else { 0.0 });
        assert_eq!(detect_level_shift(&down, 24), Some(25 * 24));
    }

    #[test]
    fn a_shift_in_the_last_hours_is_found_and_sized() {
        // 60 days, then the level jumps by 0.3 twelve hours before the end.
        let y = series(60, |i| 0.2 + if i >= 60 * 24 - 12 { 0.3 } else { 0.0 });
        assert_eq!(detect_recent_shift(&y, 24), Some(60 * 24 - 12));
        let r = regime_change(&y, 60 * 24 - 12, 24).unwrap();
        assert!((r.size - 0.3).abs() < 0.03 && (r.anchor - 0.2).abs() < 0.06, "{r:?}");
        // A shift that triples the noise: the history before it is mapped onto the new regime.
        let y: Vec<f64> = (0..60 * 24)
            .map(|i| if i >= 60 * 24 - 24 { 0.6 + 0.03 * test_noise(i) } else { 0.2 + 0.01 * test_noise(i) })
            .collect();
        let r = regime_change(&y, 60 * 24 - 24, 24).unwrap();
        assert!((r.scale - 3.0).abs() < 0.9 && (r.size - 0.4).abs() < 0.03, "{r:?}");
        assert!((r.map(r.anchor + 0.01) - (0.6 + r.scale * 0.01)).abs() < 0.03);
        assert!((r.unmap(r.map(0.25)) - 0.25).abs() < 1e-12);
        // Down, three days before the end.
        let y = series(60, |i| 0.6 - if i >= 57 * 24 { 0.2 } else { 0.0 });
        assert_eq!(detect_recent_shift(&y, 24), Some(57 * 24));
    }

    #[test]
    fn recent_drifts_peaks_and_old_shifts_are_not_recent_shifts() {
        // A steady decline that ends below the last week's range is a drift, not a jump.
        let y = series(60, |i| 0.8 - if i >= 58 * 24 { 0.002 * (i - 58 * 24) as f64 } else { 0.0 });
        assert_eq!(detect_recent_shift(&y, 24), None);
        // Plain cycles and noise, a short spike, and a shift long ago.
        assert_eq!(detect_recent_shift(&series(60, |_| 0.5), 24), None);
        assert_eq!(detect_recent_shift(&series(60, |i| if i >= 60 * 24 - 2 { 0.9 } else { 0.3 }), 24), None);
        assert_eq!(detect_recent_shift(&series(60, |i| if i >= 30 * 24 { 0.9 } else { 0.3 }), 24), None);
        // A sawtooth (disk filling for ten days, then cleaned up) a day after a clean-up; with
        // only one clean-up before, the latest one still counts as a shift.
        let saw = series(61, |i| 0.1 + 0.8 * ((i % 240) as f64 / 240.0));
        assert_eq!(detect_recent_shift(&saw, 24), None);
        assert_eq!(detect_recent_shift(&saw[24 * 40..], 24), Some(24 * 20));
    }

    proptest::proptest! {
        #[test]
        fn detection_never_panics_and_stays_in_range(
            values in proptest::collection::vec(proptest::prop_oneof![9 => -1e6f64..1e6, 1 => proptest::strategy::Just(f64::NAN)], 0..600),
            block in 0usize..60,
        ) {
            for at in [detect_recent_shift(&values, block), detect_level_shift(&values, block)].into_iter().flatten() {
                proptest::prop_assert!(at < values.len());
                if let Some(r) = regime_change(&values, at, block) {
                    proptest::prop_assert!(r.size.is_finite() && r.anchor.is_finite());
                    proptest::prop_assert!((0.25..=4.0).contains(&r.scale));
                }
            }
            for at in 0..values.len().min(50) {
                let _ = regime_change(&values, at, block);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_running_sum_shortlist_chooses_as_fitting_every_split(
            values in proptest::collection::vec(-1e3f64..1e3, 16..80),
            step in -1e3f64..1e3,
            at in 0.0f64..1.0,
            gaps in proptest::collection::vec(0usize..3, 16..80),
        ) {
            // Block means at (mostly) consecutive blocks, some with a step, some exactly flat.
            let mut x = 0;
            let cut = (at * values.len() as f64) as usize;
            let means: Vec<(usize, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    x += 1 + gaps.get(i).copied().unwrap_or(0);
                    (x, if i >= cut { v + step } else { *v })
                })
                .collect();
            let flat: Vec<(usize, f64)> = means.iter().map(|&(x, _)| (x, if x >= cut { 2.0 } else { 1.0 })).collect();
            for m in [means, flat] {
                let every = best_step(&m, MIN_BLOCKS..=m.len() - MIN_BLOCKS);
                let listed = best_step(&m, step_candidates(&m));
                proptest::prop_assert_eq!(format!("{every:?}"), format!("{listed:?}"));
            }
        }
    }

    #[test]
    fn trends_cycles_and_noise_are_not_shifts() {
        assert_eq!(detect_level_shift(&series(90, |i| 0.2 + 0.0004 * i as f64), 24), None);
        assert_eq!(detect_level_shift(&series(90, |_| 0.5), 24), None);
        // Growth that bends is not a step either.
        assert_eq!(detect_level_shift(&series(90, |i| 0.2 + 0.3 * (i as f64 / 2160.0).powi(2)), 24), None);
        // Too short to tell.
        assert_eq!(detect_level_shift(&series(10, |i| if i > 120 { 0.9 } else { 0.1 }), 24), None);
    }
}
