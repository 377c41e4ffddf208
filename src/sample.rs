//! The bundled sample fleet (`headroom sample`): twenty saturation ratios and one resource
//! in bytes, over one year at 1 h, generated deterministically (fixed seeds, no clock), covering the shapes a capacity
//! planner meets: cycles, linear and accelerating growth, a level shift, a leak sawtooth, a
//! disk that is cleaned periodically, flat noise, an already-breached pool, and gaps.

use std::f64::consts::PI;
use std::path::Path;

use crate::source::RawSeries;
use crate::source::file::{WriteError, write_long_parquet};
use crate::stats::SplitMix64;

/// The sample's last timestamp: 2026-11-01T00:00:00Z.
pub const END: i64 = 1_793_491_200;
const HOURS: i64 = 365 * 24;

/// Hour index -> shape helpers. `i` runs 0..HOURS; day = i / 24.
fn daily(i: i64, peak_hour: f64) -> f64 {
    (2.0 * PI * ((i % 24) as f64 - peak_hour) / 24.0).cos()
}

/// 1 on weekdays, lower at weekends (the sample starts on a Sunday, 2025-11-02 local week).
fn weekday(i: i64, weekend: f64) -> f64 {
    let t = END - (HOURS - 1 - i) * 3600;
    // 1970-01-01 was a Thursday: day 0 -> Thursday.
    let dow = ((t / 86_400) + 3) % 7; // 0 = Monday
    if dow >= 5 { weekend } else { 1.0 }
}

struct Spec {
    name: &'static str,
    seed: u64,
    shape: fn(i64, &mut SplitMix64) -> f64,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "web/cpu",
        seed: 1,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            0.38 + 0.0004 * d + 0.12 * daily(i, 15.0) * weekday(i, 0.6) + 0.02 * r.normal()
        },
    },
    Spec {
        name: "api/cpu",
        seed: 2,
        shape: |i, r| {
            // Accelerating growth: quadratic in time.
            let d = i as f64 / 24.0;
            0.30 + 0.35 * (d / 365.0).powi(2) + 0.10 * daily(i, 14.0) * weekday(i, 0.7) + 0.02 * r.normal()
        },
    },
    Spec {
        name: "checkout/memory",
        seed: 3,
        shape: |i, r| {
            // A leak: rises until the weekly deploy restarts the process; the base creeps up.
            let d = i as f64 / 24.0;
            let since_deploy = (i % (24 * 7)) as f64 / (24.0 * 7.0);
            0.40 + 0.0003 * d + 0.30 * since_deploy + 0.01 * r.normal()
        },
    },
    Spec {
        name: "logs/disk_space",
        seed: 4,
        shape: |i, r| {
            // Fills ~0.9 %/day, cleaned back every 60 days; each cleanup keeps a little more.
            let d = i as f64 / 24.0;
            let cycle = (d / 60.0).floor();
            0.25 + 0.02 * cycle + 0.009 * (d - 60.0 * cycle) + 0.003 * r.normal()
        },
    },
    Spec {
        name: "patroni/disk_space",
        seed: 5,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            0.38 + 0.0011 * d + 0.002 * daily(i, 3.0) + 0.002 * r.normal()
        },
    },
    Spec { name: "redis/memory", seed: 6, shape: |_, r| 0.31 + 0.015 * r.normal() },
    Spec {
        name: "pgbouncer/connection_pool",
        seed: 7,
        shape: |i, r| {
            // Already past its soft threshold at peak, for months.
            let d = i as f64 / 24.0;
            0.755 + 0.0002 * d + 0.06 * daily(i, 23.0) * weekday(i, 0.8) + 0.012 * r.normal()
        },
    },
    Spec {
        name: "sidekiq/queue_saturation",
        seed: 8,
        shape: |i, r| {
            // Mostly idle with bursts: spiky, heavy-tailed.
            let burst = if r.uniform() < 0.03 { 0.3 * r.uniform() } else { 0.0 };
            0.18 + 0.05 * daily(i, 10.0) + burst + 0.02 * r.normal().abs()
        },
    },
    Spec {
        name: "gitaly/cpu",
        seed: 9,
        shape: |i, r| {
            // Migration to bigger nodes on 2026-06-15 halves the level; growth continues after.
            let d = i as f64 / 24.0;
            let migrated = END - (HOURS - 1 - i) * 3600 >= 1_781_481_600;
            let level = if migrated { 0.36 + 0.0012 * (d - 226.0) } else { 0.55 + 0.0007 * d };
            level + 0.08 * daily(i, 16.0) + 0.02 * r.normal()
        },
    },
    Spec {
        name: "registry/cpu",
        seed: 10,
        shape: |i, r| {
            // Scrape outages: a two-week hole in spring and short holes every ~10 days.
            let d = i as f64 / 24.0;
            if (150.0..164.0).contains(&d) || i % 240 < 3 {
                return f64::NAN;
            }
            0.33 + 0.0003 * d + 0.10 * daily(i, 12.0) + 0.02 * r.normal()
        },
    },
    Spec {
        name: "ci-runners/cpu",
        seed: 11,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            (0.30 + 0.0008 * d) * weekday(i, 0.35) + 0.12 * daily(i, 11.0) * weekday(i, 0.3) + 0.03 * r.normal()
        },
    },
    Spec {
        name: "elasticsearch/disk_space",
        seed: 12,
        shape: |i, r| {
            // Stepwise: a new index tier every ~50 days.
            let d = i as f64 / 24.0;
            0.35 + 0.045 * (d / 50.0).floor() + 0.0004 * (d % 50.0) + 0.003 * r.normal()
        },
    },
    Spec {
        name: "nginx/connections",
        seed: 13,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            0.22 + 0.0002 * d + 0.09 * daily(i, 20.0) + 0.015 * r.normal()
        },
    },
    Spec {
        name: "kafka/disk_space",
        seed: 14,
        shape: |i, r| {
            // Retention deletes old segments daily: a flat daily sawtooth.
            let within = (i % 24) as f64 / 24.0;
            0.58 + 0.08 * within + 0.005 * r.normal()
        },
    },
    Spec {
        name: "postgres-replica/cpu",
        seed: 15,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            0.26 + 0.0003 * d + 0.08 * daily(i, 15.0) * weekday(i, 0.6) + 0.02 * r.normal()
        },
    },
    Spec {
        name: "mailroom/memory",
        seed: 16,
        shape: |i, r| {
            // A new feature lifts memory for good three weeks before the end.
            let step_up = if i > HOURS - 21 * 24 { 0.17 } else { 0.0 };
            0.45 + step_up + 0.02 * daily(i, 9.0) + 0.01 * r.normal()
        },
    },
    Spec { name: "consul/cpu", seed: 17, shape: |i, r| 0.06 + 0.01 * daily(i, 12.0) + 0.008 * r.normal() },
    Spec {
        name: "object-storage/capacity",
        seed: 18,
        shape: |i, r| {
            let d = i as f64 / 24.0;
            0.50 + 0.0006 * d + 0.001 * r.normal()
        },
    },
    Spec {
        name: "registry/object_storage",
        seed: 20,
        shape: |i, r| {
            // Object storage in bytes (a fraction of 500 TB here): uploads on weekdays, a
            // garbage collection each month frees a little.
            let d = i as f64 / 24.0;
            let gc = 0.004 * (d / 30.0).floor();
            0.52 + 0.0011 * d - gc + 0.0015 * weekday(i, 0.2) * daily(i, 13.0) + 0.001 * r.normal()
        },
    },
    Spec {
        name: "thanos-store/memory",
        seed: 19,
        shape: |i, r| {
            // An incident on 2026-08-10/11 spikes memory (the config ignores that window).
            let d = i as f64 / 24.0;
            let t = END - (HOURS - 1 - i) * 3600;
            let incident = if (1_786_320_000..1_786_492_800).contains(&t) { 0.35 } else { 0.0 };
            0.45 + 0.0005 * d + 0.06 * daily(i, 18.0) + incident + 0.015 * r.normal()
        },
    },
];

/// Resources written in real units: (name, capacity). Their shapes are fractions of the
/// capacity; the file holds bytes.
const IN_UNITS: &[(&str, f64)] = &[("registry/object_storage", 5.0e14)];

/// The single-series CSV file's resource (named by its file stem).
const CSV_NAME: &str = "billing-db_connections";

fn csv_shape(i: i64, r: &mut SplitMix64) -> f64 {
    let d = i as f64 / 24.0;
    0.35 + 0.0007 * d + 0.10 * daily(i, 10.0) * weekday(i, 0.5) + 0.02 * r.normal()
}

fn generate(seed: u64, shape: fn(i64, &mut SplitMix64) -> f64) -> (Vec<i64>, Vec<f64>) {
    let mut rng = SplitMix64(seed);
    let mut ts = vec![];
    let mut vs = vec![];
    for i in 0..HOURS {
        let v = shape(i, &mut rng);
        if v.is_nan() {
            continue;
        }
        ts.push(END - (HOURS - 1 - i) * 3600);
        // Rounded to 4 decimals: smaller files, same shapes.
        vs.push((v.clamp(0.0, 1.0) * 1e4).round() / 1e4);
    }
    (ts, vs)
}

/// Writes `fleet.parquet` (long format) and one single-series CSV into `dir`; returns
/// (file, number of series) per file written.
pub fn write(dir: &Path) -> Result<Vec<(String, usize)>, WriteError> {
    let series: Vec<RawSeries> = SPECS
        .iter()
        .map(|s| {
            let (timestamps, mut values) = generate(s.seed, s.shape);
            if let Some((_, capacity)) = IN_UNITS.iter().find(|(n, _)| *n == s.name) {
                values.iter_mut().for_each(|v| *v = (*v * capacity).round());
            }
            RawSeries::new(s.name.to_string(), String::new(), timestamps, values)
        })
        .collect();
    let parquet = dir.join("fleet.parquet");
    write_long_parquet(&parquet, &series)?;
    let (ts, vs) = generate(100, csv_shape);
    let mut csv = String::from("timestamp,value\n");
    for (t, v) in ts.iter().zip(&vs) {
        csv.push_str(&format!("{},{}\n", crate::time::rfc3339(*t), v));
    }
    let csv_path = dir.join(format!("{CSV_NAME}.csv"));
    std::fs::write(&csv_path, csv).map_err(|e| WriteError { path: csv_path.clone(), source: e.into() })?;
    Ok(vec![(parquet.display().to_string(), series.len()), (csv_path.display().to_string(), 1)])
}

/// A synthetic fleet for benchmarks (`headroom bench`): `n` saturation ratios, `days` of
/// hourly history ending at [`END`], each with its own level, growth, daily and weekly cycle
/// and noise; a fifth have a level shift somewhere in the middle (as `../shared/bench/fleet.py`).
pub fn synthetic_fleet(n: usize, days: usize, seed: u64) -> Vec<RawSeries> {
    let hours = days * 24;
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|k| {
            let mut u = || rng.uniform();
            let (base, slope) = (0.1 + 0.5 * u(), (-0.0002 + 0.0022 * u()) / 24.0);
            let (amp_d, amp_w, noise, phase) = (0.15 * u(), 0.05 * u(), 0.005 + 0.025 * u(), 6.3 * u());
            let shift =
                if u() < 0.2 { Some((((0.25 + 0.5 * u()) * hours as f64) as usize, -0.15 + 0.3 * u())) } else { None };
            let timestamps = (0..hours).map(|i| END - (hours - 1 - i) as i64 * 3600).collect();
            let values = (0..hours)
                .map(|i| {
                    let t = i as f64;
                    let mut v = base
                        + slope * t
                        + amp_d * (2.0 * PI * (i % 24) as f64 / 24.0 + phase).sin()
                        + amp_w * (2.0 * PI * (i % 168) as f64 / 168.0).sin()
                        + noise * rng.normal();
                    if let Some((at, by)) = shift {
                        if i >= at {
                            v += by;
                        }
                    }
                    (v.clamp(0.0, 1.0) * 1e4).round() / 1e4
                })
                .collect();
            RawSeries::new(format!("svc{}/res{k}", k / 20), String::new(), timestamps, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let a = generate(1, SPECS[0].shape);
        let b = generate(1, SPECS[0].shape);
        assert_eq!(a, b);
        assert_eq!(a.0.len(), HOURS as usize);
        assert_eq!(*a.0.last().unwrap(), END);
        assert!(a.1.iter().all(|v| (0.0..=1.0).contains(v)));
        let gaps = generate(10, SPECS[9].shape);
        assert!(gaps.0.len() < HOURS as usize - 14 * 24);
    }
}
