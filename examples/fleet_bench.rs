//! Speed of `model = "auto"` (selection, backtest, intervals and breach odds included) on one
//! core: N synthetic saturation ratios (`headroom::sample::synthetic_fleet`: a year of hourly
//! history with daily and weekly cycles, growth, noise, some level shifts), 90 days ahead.
//!
//!     cargo run --release --example fleet_bench -- 200
//!
//! Prints milliseconds per resource (mean, median, p95, max). `headroom bench` times the whole
//! run instead (reading, plots and reports included, on every core).

use std::time::Instant;

use headroom::breach;
use headroom::model::select;
use headroom::sample::synthetic_fleet;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let horizon = 90 * 24;
    let fleet = synthetic_fleet(n, 365, 42);
    let mut times = Vec::with_capacity(n);
    for s in &fleet {
        let t = Instant::now();
        let sel = select::forecast(&s.values, 3600, horizon, 0.8, true, select::Family::Auto).expect("forecast");
        for threshold in [0.85, 0.9] {
            std::hint::black_box(breach::analyse("t", threshold, &sel.forecast, 0.8, &s.values, &sel.errors));
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / n as f64;
    println!(
        "{n} resources, {} hourly points each, {horizon}-step horizon, one core: mean {mean:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms per resource",
        365 * 24,
        times[n / 2],
        times[(n * 95 / 100).min(n - 1)],
        times[n - 1]
    );
}
