//! Speed of `model = "auto"` (selection, backtest, intervals and breach odds included) on one
//! core: N synthetic saturation ratios with a year of hourly history (daily and weekly cycles,
//! growth, noise, some level shifts), 90 days ahead.
//!
//!     cargo run --release --example fleet_bench -- 200
//!
//! Prints milliseconds per resource (mean, median, p95, max).

use std::time::Instant;

use headroom::breach;
use headroom::model::select;
use headroom::stats::SplitMix64;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let hours = 365 * 24;
    let horizon = 90 * 24;
    let mut times = Vec::with_capacity(n);
    let mut rng = SplitMix64(42);
    let mut uniform = move || rng.uniform();
    for _ in 0..n {
        let (base, growth, daily, weekly, noise) = (
            0.2 + 0.3 * uniform(),
            0.3 * uniform() / hours as f64,
            0.1 * uniform(),
            0.05 * uniform(),
            0.03 * uniform(),
        );
        let shift_at = if uniform() < 0.2 { (uniform() * hours as f64) as usize } else { usize::MAX };
        let y: Vec<f64> = (0..hours)
            .map(|i| {
                let d = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                let w = if (i / 24) % 7 >= 5 { -weekly } else { weekly / 2.5 };
                let shift = if i >= shift_at { 0.1 } else { 0.0 };
                (base + growth * i as f64 + daily * d.sin() + w + shift + noise * (uniform() - 0.5)).clamp(0.0, 1.0)
            })
            .collect();
        let t = Instant::now();
        let sel = select::forecast(&y, 3600, horizon, 0.8, true, "auto").expect("forecast");
        for threshold in [0.85, 0.9] {
            std::hint::black_box(breach::analyse("t", threshold, &sel.forecast, 0.8, &y, &sel.errors));
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / n as f64;
    println!(
        "{n} resources, {hours} hourly points each, {horizon}-step horizon, one core: mean {mean:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms per resource",
        times[n / 2],
        times[(n * 95 / 100).min(n - 1)],
        times[n - 1]
    );
}
