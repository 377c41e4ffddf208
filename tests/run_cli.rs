//! `headroom run` end to end on the bundled sample and on small fleets built here: reports
//! written, exit status as DESIGN.md fixes it, bad resources reported while the rest go on.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use polars::prelude::{ParquetReader, SerReader};
use serde_json::Value;

fn headroom() -> Command {
    Command::cargo_bin("headroom").unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: i32,
    stderr: String,
}

fn run(config: &Path, out: &Path, extra: &[&str]) -> Run {
    let o = headroom().arg("run").arg("--config").arg(config).arg("--out").arg(out).args(extra).output().unwrap();
    Run { code: o.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&o.stderr).into_owned() }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn sample_fleet_run_writes_every_report() {
    let out = tempfile::tempdir().unwrap();
    // The README's first command, minus the ledger (a test writes nothing in the repository;
    // tests/ledger.rs runs the sample with one).
    let r = run(&repo().join("headroom.toml"), out.path(), &["--no-ledger"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = read_json(&out.path().join("forecasts.json"));
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["as_of"], "2026-11-01T00:00:00Z");
    let res = doc["resources"].as_array().unwrap();
    assert_eq!(res.len(), 21);
    assert!(doc["errors"].as_array().unwrap().is_empty());
    // Ranked by headroom: the first resource has no more headroom than any later one.
    let days: Vec<f64> = res.iter().map(|r| r["headroom_days"].as_f64().unwrap_or(f64::INFINITY)).collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "{days:?}");
    for r in res {
        let png = out.path().join(r["plot"]["png"].as_str().unwrap());
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
        let svg = std::fs::read_to_string(out.path().join(r["plot"]["svg"].as_str().unwrap())).unwrap();
        assert!(svg.contains("font-family=\"sans-serif\""));
        // The outline: one point per day of the (at least) 90-day horizon.
        assert!(r["forecast"].as_array().unwrap().len() >= 90);
    }
    // The level shift is honoured: gitaly is fitted only after 2026-06-15.
    let gitaly = res.iter().find(|r| r["name"] == "gitaly/cpu").unwrap();
    assert_eq!(gitaly["settings"]["fit_start"], "2026-06-15T00:00:00Z");
    // Per-resource overrides reach the forecast.
    let patroni = res.iter().find(|r| r["name"] == "patroni/disk_space").unwrap();
    assert_eq!(patroni["settings"]["horizon"], "180d");
    assert_eq!(patroni["breaches"][0]["threshold"], 0.8);
    // Real units: "450 TB" of a 5e14-byte capacity is 0.9 of it; "95%" is 0.95.
    let s3 = res.iter().find(|r| r["name"] == "registry/object_storage").unwrap();
    assert_eq!((s3["settings"]["unit"].as_str(), s3["settings"]["capacity"].as_f64()), (Some("bytes"), Some(5.0e14)));
    assert_eq!(s3["breaches"][0]["threshold"], 0.9);
    assert_eq!(s3["breaches"][1]["threshold"], 0.95);
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(summary.contains("| 1 | "), "{summary}");
    assert!(summary.contains("| soft 0.9 (409 TiB) |"), "{summary}");
    assert!(out.path().join("forecasts.parquet").metadata().unwrap().len() > 1000);
    // Every scenario path of every resource it applies to, step by step.
    let file = std::fs::File::open(out.path().join("scenarios.parquet")).unwrap();
    let df = ParquetReader::new(file).finish().unwrap();
    let names: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(names, ["scenario", "resource", "timestamp", "mean", "lower", "upper"]);
    // Hourly steps from the last sample (the as-of date) to the horizon ("90d", "180d").
    let hours =
        |r: &Value| r["settings"]["horizon"].as_str().unwrap().trim_end_matches('d').parse::<usize>().unwrap() * 24;
    let steps: usize = res.iter().map(|r| r["scenarios"].as_array().unwrap().len() * hours(r)).sum();
    assert_eq!(df.height(), steps);
}

#[test]
fn fail_on_hard_exits_1_and_as_of_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cfg = repo().join("headroom.toml");
    let args = ["--no-ledger", "--as-of", "2026-10-01", "--fail-on", "hard", "--plots", "none"];
    let r = run(&cfg, a.path(), &args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r2 = run(&cfg, b.path(), &args);
    assert_eq!(r2.code, 1);
    let strip = |p: &Path| {
        let mut v = read_json(&p.join("forecasts.json"));
        v["generated_at"] = Value::Null;
        v
    };
    assert_eq!(strip(a.path()), strip(b.path()), "same inputs and --as-of, same numbers");
    assert_eq!(strip(a.path())["as_of"], "2026-10-01T00:00:00Z");
    assert!(std::fs::read_dir(a.path().join("plots")).unwrap().next().is_none(), "--plots none");
}

/// A small fleet: two good single-series files, one broken file and one long file with a
/// bad row in one resource.
fn small_fleet(dir: &Path) -> PathBuf {
    let series = |slope: f64| {
        let mut s = String::from("timestamp,value\n");
        for i in 0..24 * 20 {
            s.push_str(&format!("{},{:.4}\n", 1_700_000_000 + 3600 * i, 0.3 + slope * i as f64));
        }
        s
    };
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/good.csv"), series(0.0)).unwrap();
    std::fs::write(dir.join("data/growing.csv"), series(0.001)).unwrap();
    std::fs::write(dir.join("data/broken.csv"), "timestamp,value\n1700000000,0.5\n1700003600,oops\n").unwrap();
    let mut long = String::from("resource,timestamp,value\n");
    for i in 0..24 * 20 {
        long.push_str(&format!(
            "x,{},0.2\ny,{},{}\n",
            1_700_000_000 + 3600 * i,
            1_700_000_000 + 3600 * i,
            if i == 5 { "inf" } else { "0.3" }
        ));
    }
    std::fs::write(dir.join("data/long.csv"), long).unwrap();
    let cfg = dir.join("fleet.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nbounded = true\nhorizon = \"30d\"\nthresholds = { soft = 0.6, hard = 0.8 }\n\
         [sources.files]\nkind = \"files\"\npath = \"data/*.csv\"\n[[resources]]\nsource = \"files\"\n",
    )
    .unwrap();
    cfg
}

#[test]
fn bad_resources_are_reported_and_the_rest_still_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_fleet(dir.path());
    let out = dir.path().join("out");
    let r = run(&cfg, &out, &["--fail-on", "hard"]);
    assert_eq!(r.code, 2, "an error wins over a breach: {}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{}", r.stderr);
    assert!(errors.iter().any(|e| e.contains("broken.csv") && e.contains("value `oops` at line 3")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("resource y") && e.contains("line 13") && e.contains("infinite")),
        "{errors:?}"
    );
    let doc = read_json(&out.join("forecasts.json"));
    let names: Vec<&str> = doc["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["growing", "good", "x"], "ranked: the growing one first");
    assert_eq!(doc["errors"].as_array().unwrap().len(), 2);
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("## Errors"));
}

#[test]
fn config_errors_exit_2_with_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_fleet(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let cases = [
        (text.replace("horizon = ", "horizn = "), "fleet.toml:3: unknown field `horizn`"),
        (text.replace("hard = 0.8", "hard = 1.5"), "threshold hard = 1.5 is outside (0, 1]"),
        (text.replace("\"30d\"", "\"0d\""), "horizon: duration `0d` must be greater than zero"),
        (text.replace("[defaults]\n", "[defaults]\nlevel = 1.5\n"), "level = 1.5 must be between 0 and 1"),
    ];
    for (body, want) in cases {
        std::fs::write(&cfg, body).unwrap();
        let r = run(&cfg, &dir.path().join("out"), &[]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{}", r.stderr);
        assert!(errors[0].contains(want), "{} lacks {want}", errors[0]);
    }
    let r = run(&dir.path().join("missing.toml"), &dir.path().join("out"), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.toml: cannot read config"), "{}", r.stderr);
}

#[test]
fn unwritable_output_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_fleet(dir.path());
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let r = run(&cfg, &blocker, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot create output directory"), "{}", r.stderr);
}

#[test]
fn exact_names_missing_series_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_fleet(dir.path());
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[[resources]]\nsource = \"files\"\nname = \"good\"\nthresholds = { soft = 0.25 }\n");
    text.push_str("[[resources]]\nsource = \"files\"\nname = \"nope\"\n");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("out");
    let r = run(&cfg, &out, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("resource nope: no series named `nope` in source files"), "{}", r.stderr);
    let doc = read_json(&out.join("forecasts.json"));
    let good = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "good").unwrap().clone();
    assert_eq!(good["breaches"][0]["already_breached"], true, "the named entry's soft threshold 0.25 applies");
    assert_eq!(good["status"], "soft");
}

/// forecasts.json and its schema agree on every object's keys (required and allowed).
#[test]
fn forecasts_json_matches_its_schema_keys() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_fleet(dir.path());
    run(&cfg, out.path(), &["--plots", "none"]);
    let doc = read_json(&out.path().join("forecasts.json"));
    let schema = read_json(&repo().join("schema/forecasts.schema.json"));
    fn check(v: &Value, s: &Value, schema: &Value, at: &str) {
        let s = match s.get("$ref").and_then(Value::as_str) {
            Some(r) => &schema["$defs"][r.trim_start_matches("#/$defs/")],
            None => s,
        };
        if let (Some(obj), Some(props)) = (v.as_object(), s.get("properties").and_then(Value::as_object)) {
            for k in obj.keys() {
                assert!(props.contains_key(k), "{at}.{k} is not in the schema");
            }
            for k in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                assert!(obj.contains_key(k.as_str().unwrap()), "{at}.{k} is required by the schema");
            }
            for (k, sub) in props {
                if let Some(child) = obj.get(k) {
                    check(child, sub, schema, &format!("{at}.{k}"));
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, child) in arr.iter().enumerate() {
                check(child, items, schema, &format!("{at}[{i}]"));
            }
        }
    }
    check(&doc, &schema, &schema, "$");
    assert!(!doc["resources"].as_array().unwrap().is_empty());
}

#[test]
fn whatif_over_the_sample_config() {
    let out = headroom()
        .args(["whatif", "--config"])
        .arg(repo().join("headroom.toml"))
        .args(["--scenario", "bigger_disk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    // The scenario applies to patroni/* and logs/* only; doubling the disk on 2026-12-15
    // takes patroni's hard crossing beyond the horizon.
    assert!(
        table.contains(
            "| patroni/disk_space | bigger_disk | hard 0.9 | – / – | beyond the horizon / beyond the horizon | 0 % |"
        ),
        "{table}"
    );
    assert!(!table.contains("web/cpu"), "{table}");
    let bad = headroom()
        .args(["whatif", "--config"])
        .arg(repo().join("headroom.toml"))
        .args(["--scenario", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("no scenario named `x` (defined: bigger_disk, fast_growth, new_customer)")
    );
}

#[test]
fn backtest_scores_every_family_on_held_out_history() {
    let out = headroom()
        .args(["backtest", "--config"])
        .arg(repo().join("headroom.toml"))
        .args(["--resource", "api/cpu", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &doc[0]["evaluation"];
    assert_eq!(doc[0]["resource"], "api/cpu");
    // The default 90-day horizon is held out: 2160 hourly steps from 2026-08-03.
    assert_eq!(e["holdout_steps"], 2160);
    assert_eq!(e["holdout_start"], "2026-08-03T01:00:00Z");
    let scores = e["scores"].as_array().unwrap();
    let families: Vec<&str> = scores.iter().map(|s| s["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["auto", "naive", "seasonal_naive", "linear", "ets", "theta", "mstl", "piecewise", "arima"]);
    for s in scores {
        let c = s["coverage"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c) && s["mase"].as_f64().unwrap() > 0.0, "{s}");
    }
    let table = headroom().args(["backtest", "--config"]).arg(repo().join("headroom.toml")).output().unwrap();
    assert_eq!(table.status.code(), Some(0));
    let text = String::from_utf8(table.stdout).unwrap();
    // 21 resources x 9 families, under a header of two lines, then the Brier score line.
    assert_eq!(text.lines().count(), 2 + 21 * families.len() + 2, "{text}");
    assert!(text.lines().last().unwrap().contains("Brier score"), "{text}");
    assert!(scores.iter().all(|s| s["probability"].is_null() || s["probability"].as_f64().unwrap() <= 1.0));
}

#[test]
fn whatif_for_one_resource_writes_its_overlay_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = headroom()
        .args(["whatif", "--config"])
        .arg(repo().join("headroom.toml"))
        .args(["--resource", "web/cpu", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().skip(2).collect();
    // Baseline and the two scenarios that apply to web/cpu (bigger_disk does not), two thresholds each.
    assert_eq!(rows.len(), 6, "{table}");
    assert!(rows.iter().all(|r| r.starts_with("| web/cpu |")), "{table}");
    assert!(!table.contains("bigger_disk"), "{table}");
    let png = std::fs::read(dir.path().join("plots/web_cpu.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.path().join("plots/web_cpu.svg")).unwrap();
    assert!(svg.contains("what if: fast_growth") && svg.contains("what if: new_customer"));
    // The PNG, the SVG and the data of its interactive view.
    assert_eq!(std::fs::read_dir(dir.path().join("plots")).unwrap().count(), 3);
    let bad = headroom()
        .args(["whatif", "--config"])
        .arg(repo().join("headroom.toml"))
        .args(["--resource", "nope/cpu"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("no resource named `nope/cpu`"), "{err}");
}

#[test]
fn a_closed_stdout_is_no_panic() {
    // `headroom check | head -1` closes the pipe early: a quiet exit, not a panic.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("headroom"))
        .args(["check", "--config"])
        .arg(repo().join("headroom.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
