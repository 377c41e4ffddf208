//! `headroom forecast` end to end: the CONTRACT.md interface on real files, and one clear
//! error line (exit 2) for every kind of bad input.

use assert_cmd::Command;
use serde_json::Value;

fn headroom() -> Command {
    Command::cargo_bin("headroom").unwrap()
}

/// An hourly CSV with a daily cycle and slow growth, `n` points from 2024-01-01.
fn hourly_csv(n: usize) -> String {
    let mut s = String::from("timestamp,value\n");
    for i in 0..n {
        let v = 0.4 + 0.0005 * i as f64 + 0.1 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        s.push_str(&format!("{},{v:.5}\n", 1_704_067_200 + 3600 * i as i64));
    }
    s
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn forecast(body: &[u8], name: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let mut cmd = headroom();
    cmd.args(["forecast", "--input"]).arg(&path).args(["--format", "json"]);
    if !extra.contains(&"--horizon") {
        cmd.args(["--horizon", "48h"]);
    }
    let out = cmd.args(extra).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Exit 2, nothing on stdout, exactly one `error:` line containing `want`.
fn assert_error(r: &Run, want: &str) {
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(r.stdout.is_empty(), "stdout must stay empty on error: {}", r.stdout);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {}", r.stderr);
    assert!(errors[0].contains(want), "`{}` does not contain `{want}`", errors[0]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

fn json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

#[test]
fn contract_shape() {
    let r =
        forecast(hourly_csv(24 * 21).as_bytes(), "svc.csv", &["--threshold", "0.9", "--threshold", "0.5", "--bounded"]);
    let v = json(&r);
    assert_eq!(v["series"], "svc");
    assert_eq!(v["step_seconds"], 3600);
    assert_eq!(v["level"], 0.8);
    assert!(v["model"].as_str().is_some_and(|m| !m.is_empty()));
    let f = v["forecast"].as_array().unwrap();
    assert_eq!(f.len(), 48);
    let last = 1_704_067_200 + 3600 * (24 * 21 - 1);
    let first = chrono::DateTime::parse_from_rfc3339(f[0]["timestamp"].as_str().unwrap()).unwrap().timestamp();
    assert_eq!(first, last + 3600, "first forecast point is the last input plus one step");
    for p in f {
        let (lo, m, hi) = (p["lower"].as_f64().unwrap(), p["mean"].as_f64().unwrap(), p["upper"].as_f64().unwrap());
        assert!(0.0 <= lo && lo <= m && m <= hi && hi <= 1.0, "{p}");
    }
    let b = v["breaches"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["threshold"], 0.9, "breaches keep the order given");
    assert_eq!(b[1]["threshold"], 0.5);
    assert!(b[1]["already_breached"].as_bool().unwrap() || b[1]["expected"].is_string());
    // The series climbs 0.012 a day around 0.65 with a daily swing of 0.1: 0.5 is crossed
    // (the mean reaches it), 0.9 is not within two days (the mean stays below 0.8).
    let p = |i: usize| b[i]["probability"].as_f64().unwrap();
    assert!(b[0]["expected"].is_null(), "{}", b[0]);
    assert!(p(1) >= 0.5, "a crossing mean means at least even odds: {}", b[1]);
    assert!(p(0) < 0.1, "0.9 is out of reach in two days: {}", b[0]);
}

#[test]
fn horizon_not_a_whole_number_of_steps_rounds_up() {
    let r = forecast(hourly_csv(100).as_bytes(), "s.csv", &["--horizon", "90m"]);
    assert_eq!(json(&r)["forecast"].as_array().unwrap().len(), 2);
}

#[test]
fn parquet_input_works() {
    let dir = tempfile::tempdir().unwrap();
    // `headroom sample` writes Parquet through the same writer as the product.
    headroom().args(["sample", "--out"]).arg(dir.path()).assert().success();
    let out = headroom()
        .args(["forecast", "--input"])
        .arg(dir.path().join("fleet.parquet"))
        .args(["--horizon", "24h"])
        .output()
        .unwrap();
    // A long file with many series is refused for the single-series command, clearly.
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds 20 series"));
}

#[test]
fn bad_inputs_give_one_clear_error() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", vec![], "file is empty"),
        ("noheader.csv", b"2024-01-01T00:00:00Z,0.5\n2024-01-01T01:00:00Z,0.6\n".to_vec(), "no `timestamp` column"),
        ("text.csv", b"timestamp,value\n0,0.5\n3600,high\n".to_vec(), "value `high` at line 3 is not a number"),
        ("inf.csv", b"timestamp,value\n0,0.5\n3600,inf\n7200,0.1\n".to_vec(), "is infinite"),
        (
            "badts.csv",
            b"timestamp,value\n2024-13-45T00:00:00Z,0.5\n".to_vec(),
            "bad timestamp `2024-13-45T00:00:00Z` at line 2",
        ),
        ("ms.csv", b"timestamp,value\n1704067200000,0.5\n1704070800000,0.6\n".to_vec(), "looks like milliseconds"),
        ("one.csv", b"timestamp,value\n1704067200,0.5\n".to_vec(), "fewer than two timestamps"),
        ("nan.csv", b"timestamp,value\n0,NaN\n3600,\n7200,nan\n".to_vec(), "all values are missing"),
        ("garbage.csv", (0..2000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), "garbage.csv"),
    ];
    for (name, body, want) in cases {
        let r = forecast(&body, name, &[]);
        assert_error(&r, want);
        assert!(r.stderr.contains(name), "{name}: error must name the file: {}", r.stderr);
    }
}

#[test]
fn bad_flags_give_one_clear_error() {
    let csv = hourly_csv(100);
    assert_error(
        &forecast(csv.as_bytes(), "a.csv", &["--horizon", "0h"]),
        "'--horizon <HORIZON>': duration `0h` must be greater than zero",
    );
    assert_error(&forecast(csv.as_bytes(), "a.csv", &["--horizon", "-3h"]), "must not be negative");
    assert_error(&forecast(csv.as_bytes(), "a.csv", &["--level", "1.5"]), "level = 1.5 must be between 0 and 1");
    assert_error(&forecast(csv.as_bytes(), "a.csv", &["--level", "0"]), "must be between 0 and 1");
    assert_error(
        &forecast(csv.as_bytes(), "a.csv", &["--bounded", "--threshold", "1.5"]),
        "threshold 1.5 is outside (0, 1] for a bounded",
    );
    let r = forecast(csv.as_bytes(), "a.csv", &["--horizon", "soon"]);
    assert_error(&r, "invalid duration `soon`");
}

#[test]
fn messy_but_valid_inputs_work_with_notes() {
    // Gaps (NaN and empty), duplicates, unsorted rows and offsets, all at once and alone.
    let gaps = "timestamp,value\n0,0.1\n3600,NaN\n7200,\n10800,0.4\n14400,0.5\n";
    let r = forecast(gaps.as_bytes(), "gaps.csv", &[]);
    assert_eq!(json(&r)["forecast"].as_array().unwrap().len(), 48);
    assert!(r.stderr.contains("2 missing or NaN values read as gaps"), "{}", r.stderr);

    let constant: String = std::iter::once("timestamp,value\n".to_string())
        .chain((0..200).map(|i| format!("{},0.42\n", i * 3600)))
        .collect();
    let v = json(&forecast(constant.as_bytes(), "flat.csv", &["--threshold", "0.5"]));
    for p in v["forecast"].as_array().unwrap() {
        assert_eq!(p["mean"], 0.42);
    }
    assert_eq!(v["breaches"][0]["expected"], Value::Null);

    let dups = "timestamp,value\n0,0.1\n3600,0.2\n3600,0.25\n7200,0.3\n10800,0.4\n";
    let r = forecast(dups.as_bytes(), "dups.csv", &[]);
    json(&r);
    assert!(r.stderr.contains("1 duplicate timestamps dropped"), "{}", r.stderr);

    let unsorted = "timestamp,value\n7200,0.3\n0,0.1\n10800,0.4\n3600,0.2\n";
    let r = forecast(unsorted.as_bytes(), "unsorted.csv", &[]);
    let v = json(&r);
    assert!(r.stderr.contains("not in time order; sorted"), "{}", r.stderr);
    assert_eq!(v["forecast"][0]["timestamp"], "1970-01-01T04:00:00Z");

    let offsets = "timestamp,value\n2024-01-01T01:00:00+01:00,0.1\n2024-01-01T02:00:00+01:00,0.2\n2024-01-01T02:00:00Z,0.3\n2024-01-01T03:00:00Z,0.35\n";
    let v = json(&forecast(offsets.as_bytes(), "tz.csv", &[]));
    assert_eq!(v["forecast"][0]["timestamp"], "2024-01-01T04:00:00Z");
}

#[test]
fn a_jump_in_the_last_hours_moves_the_forecast_to_the_new_level() {
    // Thirty days near 0.3 with a daily cycle, then a deploy doubles the load 12 hours
    // before the end: the forecast starts from the new level, and a note says why.
    let mut csv = String::from("timestamp,value\n");
    for i in 0..24 * 30 {
        let cycle = 0.03 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let noise = 0.005 * (((i * 7919) % 101) as f64 / 50.0 - 1.0);
        let level = if i >= 24 * 30 - 12 { 0.6 } else { 0.3 };
        csv.push_str(&format!("{},{:.5}\n", 1_704_067_200 + 3600 * i as i64, level + cycle + noise));
    }
    let r = forecast(csv.as_bytes(), "jump.csv", &["--horizon", "24h"]);
    let v = json(&r);
    assert!(r.stderr.contains("level shift found on 2024-01-30") && r.stderr.contains("moved up by"), "{}", r.stderr);
    for p in v["forecast"].as_array().unwrap() {
        let mean = p["mean"].as_f64().unwrap();
        assert!((0.55..0.65).contains(&mean), "{p}");
    }
}

#[test]
fn same_input_same_numbers() {
    let csv = hourly_csv(24 * 30);
    let a = forecast(csv.as_bytes(), "d.csv", &["--threshold", "0.7"]);
    let b = forecast(csv.as_bytes(), "d.csv", &["--threshold", "0.7"]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn whatif_inline_contract() {
    // An hourly ramp, 0.3 + 0.001 per hour, a little noise-free seasonality-free: growth x2
    // must bring the expected crossing of 0.9 about twice as close.
    let mut csv = String::from("timestamp,value\n");
    for i in 0..24 * 20 {
        csv.push_str(&format!("{},{:.6}\n", 1_704_067_200 + 3600 * i, 0.3 + 0.001 * i as f64));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.csv");
    std::fs::write(&path, csv).unwrap();
    let out = headroom()
        .args(["whatif", "--input"])
        .arg(&path)
        .args(["--horizon", "30d", "--threshold", "0.9", "--bounded", "--growth", "2", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["series"], "ramp");
    assert_eq!(v["step_seconds"], 3600);
    assert_eq!(v["level"], 0.8);
    assert!(v["baseline"]["model"].is_string());
    assert_eq!(v["baseline"]["forecast"].as_array().unwrap().len(), 720);
    assert_eq!(v["scenarios"][0]["name"], "inline");
    assert_eq!(v["scenarios"][0]["forecast"].as_array().unwrap().len(), 720);
    let t = |s: &Value| chrono::DateTime::parse_from_rfc3339(s.as_str().unwrap()).unwrap().timestamp();
    let last = 1_704_067_200 + 3600 * (24 * 20 - 1);
    let base = (t(&v["baseline"]["breaches"][0]["expected"]) - last) as f64;
    let fast = (t(&v["scenarios"][0]["breaches"][0]["expected"]) - last) as f64;
    assert!((fast / base - 0.5).abs() < 0.02, "growth x2: {fast} vs {base}");
    // A bad scenario flag is one clear error.
    let bad = headroom().args(["whatif", "--input"]).arg(&path).args(["--capacity", "2027-01-15"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("'--capacity <CAPACITY>': `2027-01-15`: expected DATE:FACTOR")
    );
}
