//! Automatic level-shift detection: a migration, a new cluster, a config change moves a
//! resource's level for good, and the old level should not drag the trend. The series is
//! reduced to one mean per season block (a day for hourly data: cycles average out); a step
//! is accepted where a line plus a step explains the block means much better than a line
//! or a parabola (so accelerating growth is not taken for a step), and the step is large
//! against the block-to-block noise.

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
    let mut best: Option<(f64, usize, f64)> = None;
    for k in MIN_BLOCKS..=nb - MIN_BLOCKS {
        let at = means[k].0;
        let (r, step) = fit(&means, Third::Step(at));
        if best.is_none_or(|b| r < b.0) {
            best = Some((r, at, step));
        }
    }
    let (r, at, step) = best?;
    let gain = if smooth > 0.0 { 1.0 - r / smooth } else { 0.0 };
    (gain >= MIN_GAIN && step.abs() >= MIN_STEP_SIGMAS * noise).then_some(at * block)
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
    let mut d: Vec<f64> = means.windows(2).map(|w| (w[1].1 - w[0].1).abs()).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let mad = d[d.len() / 2];
    Some((mad / 0.6745 / std::f64::consts::SQRT_2).max(1e-12))
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
    fn trends_cycles_and_noise_are_not_shifts() {
        assert_eq!(detect_level_shift(&series(90, |i| 0.2 + 0.0004 * i as f64), 24), None);
        assert_eq!(detect_level_shift(&series(90, |_| 0.5), 24), None);
        // Growth that bends is not a step either.
        assert_eq!(detect_level_shift(&series(90, |i| 0.2 + 0.3 * (i as f64 / 2160.0).powi(2)), 24), None);
        // Too short to tell.
        assert_eq!(detect_level_shift(&series(10, |i| if i > 120 { 0.9 } else { 0.1 }), 24), None);
    }
}
