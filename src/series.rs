//! A regular time series: raw points sorted, de-duplicated, cut to `--as-of`, and resampled
//! to a fixed step with an aggregate (mean, max, p95, p99, last). Gaps stay gaps (NaN), except
//! runs of at most [`MAX_INTERPOLATED_STEPS`] missing steps, which are linearly interpolated.

use crate::source::RawSeries;

/// Gaps up to this many steps are interpolated linearly (a missed scrape or two); longer ones
/// stay missing: models work around them and plots show them.
pub const MAX_INTERPOLATED_STEPS: usize = 3;

pub use crate::stats::Aggregate;

/// A resource's series on a regular grid. `values[i]` summarises the step ending at
/// `start + i * step` (the Prometheus convention: a sample at t covers `(t - step, t]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub start: i64,
    pub step: i64,
    pub values: Vec<f64>,
}

impl Series {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        self.time(self.len().saturating_sub(1))
    }

    pub fn observed(&self) -> usize {
        self.values.iter().filter(|v| v.is_finite()).count()
    }

    /// The last observed value.
    pub fn last_value(&self) -> Option<f64> {
        self.values.iter().rev().find(|v| v.is_finite()).copied()
    }

    /// Index of the first step at or after `t` (the length when `t` is past the end).
    pub fn index_at(&self, t: i64) -> usize {
        let i = if t <= self.start { 0 } else { ((t - self.start + self.step - 1) / self.step) as usize };
        i.min(self.len())
    }

    /// Drops everything before `from` (used to fit only after a level shift).
    pub fn since(&self, from: i64) -> Series {
        let skip = self.index_at(from);
        Series { start: self.time(skip), step: self.step, values: self.values[skip..].to_vec() }
    }
}

/// What preparation did, for notes on stderr and in reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preparation {
    pub duplicates_dropped: usize,
    pub unsorted: bool,
    pub ignored_points: usize,
    pub interpolated_steps: usize,
}

/// Why a series cannot be prepared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("no data points")]
    Empty,
    #[error("no data at or before the as-of date {0}")]
    NothingBeforeAsOf(String),
    #[error("all values are missing (NaN or empty)")]
    AllMissing,
    #[error("only {0} observed step(s) after resampling to {1}; at least 3 are needed to forecast")]
    TooShort(usize, String),
}

/// Everything that shapes preparation.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub step: i64,
    pub aggregate: Aggregate,
    /// Points after this are dropped (`--as-of`); `None` keeps all.
    pub as_of: Option<i64>,
    /// How much history to keep before the last point.
    pub history: Option<i64>,
    /// `[from, to)` windows whose points are dropped (incidents, not demand).
    pub ignore: Vec<(i64, i64)>,
}

/// The median spacing between distinct sorted timestamps: the default step.
pub fn median_spacing(raw: &RawSeries) -> Option<i64> {
    let mut ts: Vec<i64> = raw.timestamps.clone();
    ts.sort_unstable();
    ts.dedup();
    let mut d: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    Some(d[d.len() / 2].max(1))
}

/// Sorts, de-duplicates (keeping the last value read for a timestamp), cuts to the as-of date
/// and history, drops ignored windows, and resamples onto a grid that ends at the last point.
pub fn prepare(raw: &RawSeries, opts: &PrepareOptions) -> Result<(Series, Preparation), SeriesError> {
    if raw.timestamps.is_empty() {
        return Err(SeriesError::Empty);
    }
    let mut info = Preparation { unsorted: raw.timestamps.windows(2).any(|w| w[1] < w[0]), ..Default::default() };
    let mut pts: Vec<(i64, f64)> = raw.timestamps.iter().copied().zip(raw.values.iter().copied()).collect();
    // Stable sort keeps read order among equal timestamps, so "last read wins" below.
    pts.sort_by_key(|p| p.0);
    let before = pts.len();
    let mut dedup: Vec<(i64, f64)> = Vec::with_capacity(pts.len());
    for p in pts {
        match dedup.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => dedup.push(p),
        }
    }
    info.duplicates_dropped = before - dedup.len();
    let mut pts = dedup;
    if let Some(a) = opts.as_of {
        pts.retain(|p| p.0 <= a);
        if pts.is_empty() {
            return Err(SeriesError::NothingBeforeAsOf(crate::time::rfc3339(a)));
        }
    }
    let n_before = pts.len();
    pts.retain(|p| !opts.ignore.iter().any(|(from, to)| p.0 >= *from && p.0 < *to));
    info.ignored_points = n_before - pts.len();
    // The grid ends at the last observed point, so a regular input keeps its timestamps.
    let Some(end) = pts.iter().rev().find(|p| p.1.is_finite()).map(|p| p.0) else {
        return Err(SeriesError::AllMissing);
    };
    pts.retain(|p| p.0 <= end && p.1.is_finite());
    let step = opts.step;
    let mut first = pts[0].0;
    if let Some(h) = opts.history {
        first = first.max(end - h + 1);
    }
    // Bucket k (0 = last) holds points in (end - (k+1) step, end - k step].
    let n_buckets = ((end - first) / step + 1) as usize;
    let start = end - (n_buckets as i64 - 1) * step;
    // Points are sorted, so each bucket's points are one run of them: aggregated in place.
    let (times, mut vals): (Vec<i64>, Vec<f64>) = pts.into_iter().filter(|p| p.0 >= first).unzip();
    // A point at exactly a grid time belongs to that time's step.
    let bucket = |t: i64| n_buckets - 1 - ((end - t) / step).min(n_buckets as i64 - 1) as usize;
    let mut values = vec![f64::NAN; n_buckets];
    let mut from = 0;
    while from < times.len() {
        let idx = bucket(times[from]);
        let to = from + times[from..].iter().take_while(|t| bucket(**t) == idx).count();
        values[idx] = opts.aggregate.apply(&mut vals[from..to]);
        from = to;
    }
    // Leading missing steps carry no information.
    let lead = values.iter().position(|v| v.is_finite()).unwrap_or(0);
    values.drain(..lead);
    let start = start + lead as i64 * step;
    info.interpolated_steps = interpolate_short_gaps(&mut values, MAX_INTERPOLATED_STEPS);
    let series = Series { start, step, values };
    if series.observed() < 3 {
        return Err(SeriesError::TooShort(series.observed(), crate::time::format_duration(step)));
    }
    Ok((series, info))
}

/// Linearly fills runs of at most `max_run` NaNs between two observed values; returns how
/// many steps were filled.
fn interpolate_short_gaps(values: &mut [f64], max_run: usize) -> usize {
    let mut filled = 0;
    let mut i = 0;
    while i < values.len() {
        if values[i].is_finite() {
            i += 1;
            continue;
        }
        let gap_start = i;
        while i < values.len() && !values[i].is_finite() {
            i += 1;
        }
        let run = i - gap_start;
        if gap_start == 0 || i == values.len() || run > max_run {
            continue;
        }
        let (a, b) = (values[gap_start - 1], values[i]);
        for k in 0..run {
            let f = (k + 1) as f64 / (run + 1) as f64;
            values[gap_start + k] = a + (b - a) * f;
        }
        filled += run;
    }
    filled
}

/// A gap-free copy for models that need one: each long gap is filled from one season
/// earlier where that is known, else with a straight line between its neighbours.
pub fn fill_gaps(values: &[f64], period: usize) -> Vec<f64> {
    let mut out = values.to_vec();
    let first = out.iter().position(|v| v.is_finite());
    let Some(first) = first else { return vec![0.0; out.len()] };
    for i in 0..first {
        out[i] = out[first];
    }
    for i in first..out.len() {
        if out[i].is_finite() {
            continue;
        }
        if period > 0 && i >= period && out[i - period].is_finite() && i - period >= first {
            // Same phase one season earlier (itself possibly filled): keeps the cycle going.
            out[i] = out[i - period];
            continue;
        }
        out[i] = out[i - 1];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ts: &[i64], vs: &[f64]) -> RawSeries {
        RawSeries::new("r".into(), "t".into(), ts.to_vec(), vs.to_vec())
    }

    fn opts(step: i64, aggregate: Aggregate) -> PrepareOptions {
        PrepareOptions { step, aggregate, as_of: None, history: None, ignore: vec![] }
    }

    #[test]
    fn regular_input_keeps_its_timestamps() {
        let r = raw(&[3600, 7200, 10800], &[1.0, 2.0, 3.0]);
        let (s, info) = prepare(&r, &opts(3600, Aggregate::Mean)).unwrap();
        assert_eq!((s.start, s.step, s.values.clone()), (3600, 3600, vec![1.0, 2.0, 3.0]));
        assert_eq!(info, Preparation::default());
    }

    #[test]
    fn unsorted_duplicates_are_sorted_and_last_wins() {
        let r = raw(&[7200, 3600, 10800, 7200], &[9.0, 1.0, 3.0, 2.0]);
        let (s, info) = prepare(&r, &opts(3600, Aggregate::Mean)).unwrap();
        assert_eq!(s.values, vec![1.0, 2.0, 3.0]);
        assert!(info.unsorted);
        assert_eq!(info.duplicates_dropped, 1);
    }

    #[test]
    fn aggregates_over_each_step() {
        // Minute data over three hours ending at 10800: buckets (0, 3600], (3600, 7200], ...
        let ts: Vec<i64> = (1..=180).map(|m| m * 60).collect();
        let vs: Vec<f64> = (1..=180).map(|m| m as f64).collect();
        let r = raw(&ts, &vs);
        let (s, _) = prepare(&r, &opts(3600, Aggregate::Max)).unwrap();
        assert_eq!(s.values, vec![60.0, 120.0, 180.0]);
        assert_eq!(s.start, 3600);
        let (s, _) = prepare(&r, &opts(3600, Aggregate::Mean)).unwrap();
        assert_eq!(s.values, vec![30.5, 90.5, 150.5]);
        let (s, _) = prepare(&r, &opts(3600, Aggregate::P95)).unwrap();
        assert!((s.values[1] - (61.0 + 0.95 * 59.0)).abs() < 1e-9);
        let (s, _) = prepare(&r, &opts(3600, Aggregate::Last)).unwrap();
        assert_eq!(s.values, vec![60.0, 120.0, 180.0]);
    }

    #[test]
    fn short_gaps_interpolated_long_gaps_kept() {
        let mut ts: Vec<i64> = (0..20).map(|h| h * 3600).collect();
        ts.retain(|t| ![2 * 3600, 3 * 3600].contains(t) && !(8 * 3600..=14 * 3600).contains(t));
        let vs: Vec<f64> = ts.iter().map(|t| (*t / 3600) as f64).collect();
        let (s, info) = prepare(&raw(&ts, &vs), &opts(3600, Aggregate::Mean)).unwrap();
        assert_eq!(s.len(), 20);
        assert_eq!(s.values[2], 2.0);
        assert_eq!(s.values[3], 3.0);
        assert!(s.values[8..15].iter().all(|v| v.is_nan()));
        assert_eq!(info.interpolated_steps, 2);
        let filled = fill_gaps(&s.values, 0);
        assert!(filled.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn as_of_history_and_ignore_windows() {
        let ts: Vec<i64> = (0..100).map(|h| h * 3600).collect();
        let vs: Vec<f64> = (0..100).map(|h| h as f64).collect();
        let mut o = opts(3600, Aggregate::Mean);
        o.as_of = Some(50 * 3600);
        o.history = Some(10 * 3600);
        o.ignore = vec![(45 * 3600, 47 * 3600)];
        let (s, info) = prepare(&raw(&ts, &vs), &o).unwrap();
        assert_eq!(s.end(), 50 * 3600);
        assert_eq!(s.start, 41 * 3600);
        assert_eq!(info.ignored_points, 2);
        assert_eq!(s.values[4], 45.0, "two ignored steps are a short gap, interpolated");
    }

    #[test]
    fn errors() {
        assert_eq!(prepare(&raw(&[], &[]), &opts(60, Aggregate::Mean)), Err(SeriesError::Empty));
        let r = raw(&[0, 60], &[f64::NAN, f64::NAN]);
        assert_eq!(prepare(&r, &opts(60, Aggregate::Mean)), Err(SeriesError::AllMissing));
        let r = raw(&[0], &[1.0]);
        assert!(matches!(prepare(&r, &opts(60, Aggregate::Mean)), Err(SeriesError::TooShort(1, _))));
    }

    #[test]
    fn since_cuts_the_front() {
        let s = Series { start: 0, step: 10, values: vec![1.0, 2.0, 3.0, 4.0] };
        assert_eq!(s.since(15).values, vec![3.0, 4.0]);
        assert_eq!(s.since(15).start, 20);
        assert_eq!(s.since(-5).len(), 4);
    }
}
