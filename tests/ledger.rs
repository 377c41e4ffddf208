//! The ledger end to end on the bundled sample: twelve weekly runs kept and scored, a
//! backfill that writes exactly what those runs wrote, one resource's track record checked
//! against a hand computation, a rerun that changes nothing, a damaged file that costs only
//! itself, and a first run that backfills an empty ledger.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;
use polars::prelude::*;
use serde_json::Value;

const DAY: i64 = 86_400;
/// 2026-11-01T00:00:00Z, the sample's last hour.
const END: i64 = 1_793_491_200;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%d").to_string()
}

/// The bundled config in `dir`, reading the repository's sample data, with its `[ledger]`
/// replaced (the same text in two folders: the same config hash, the same ledger files).
fn sample_config(dir: &Path, ledger: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(repo().join("headroom.toml")).unwrap();
    let data = repo().join("data/sample");
    let text = text.replace("path = \"data/sample/", &format!("path = \"{}/", data.display()));
    let cut = text.find("[ledger]").expect("the sample config keeps a ledger");
    let body = &text[..cut];
    let path = dir.join("headroom.toml");
    std::fs::write(&path, format!("{body}[ledger]\n{ledger}\n")).unwrap();
    path
}

fn headroom(args: &[&str]) -> (i32, String) {
    let o = Command::cargo_bin("headroom").unwrap().args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn run(cfg: &Path, out: &Path, as_of: i64) -> (i32, String) {
    headroom(&[
        "run",
        "--quiet",
        "--plots",
        "none",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        &day(as_of),
    ])
}

/// Every file under `dir/runs` by name: its length and a hash of its bytes.
fn files(dir: &Path) -> BTreeMap<String, (usize, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    raw_files(dir)
        .into_iter()
        .map(|(k, v)| {
            let mut h = DefaultHasher::new();
            v.hash(&mut h);
            (k, (v.len(), h.finish()))
        })
        .collect()
}

fn raw_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let runs = dir.join("runs");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&runs).unwrap() {
        let p = e.unwrap().path();
        out.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
    }
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Seconds since the epoch of a timestamp column however it is stored.
fn seconds(c: &Column) -> Vec<i64> {
    let per = match c.dtype() {
        DataType::Datetime(TimeUnit::Nanoseconds, _) => 1_000_000_000,
        DataType::Datetime(TimeUnit::Microseconds, _) => 1_000_000,
        DataType::Datetime(TimeUnit::Milliseconds, _) => 1_000,
        _ => 1,
    };
    c.cast(&DataType::Int64).unwrap().i64().unwrap().into_no_null_iter().map(|v| v / per).collect()
}

/// A resource's sample values by time.
fn sample_values(name: &str) -> BTreeMap<i64, f64> {
    let df =
        ParquetReader::new(std::fs::File::open(repo().join("data/sample/fleet.parquet")).unwrap()).finish().unwrap();
    let res: Vec<Option<&str>> = df.column("resource").unwrap().str().unwrap().iter().collect();
    let ts = seconds(df.column("timestamp").unwrap());
    let vals: Vec<Option<f64>> = df.column("value").unwrap().f64().unwrap().iter().collect();
    (0..df.height()).filter(|&i| res[i] == Some(name)).filter_map(|i| vals[i].map(|v| (ts[i], v))).collect()
}

/// The marks (as_of, t, mean, lower, upper) of one resource in the ledger's files.
fn marks(dir: &Path, name: &str) -> Vec<(i64, i64, f64, f64, f64)> {
    let mut out = vec![];
    for bytes in raw_files(dir).values() {
        let df = ParquetReader::new(std::io::Cursor::new(bytes.clone())).finish().unwrap();
        let kind: Vec<Option<&str>> = df.column("kind").unwrap().str().unwrap().iter().collect();
        let res: Vec<Option<&str>> = df.column("resource").unwrap().str().unwrap().iter().collect();
        let i64s = |c: &str| df.column(c).unwrap().i64().unwrap().iter().collect::<Vec<_>>();
        let f64s = |c: &str| df.column(c).unwrap().f64().unwrap().iter().collect::<Vec<_>>();
        let (as_of, t, mean, lower, upper) = (i64s("as_of"), i64s("t"), f64s("mean"), f64s("lower"), f64s("upper"));
        for i in 0..df.height() {
            if kind[i] == Some("mark") && res[i] == Some(name) {
                out.push((as_of[i].unwrap(), t[i].unwrap(), mean[i].unwrap(), lower[i].unwrap(), upper[i].unwrap()));
            }
        }
    }
    out
}

#[test]
fn twelve_weekly_runs_are_kept_scored_and_replayed_by_a_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let dates: Vec<i64> = (0..12).rev().map(|k| END - k * 7 * DAY).collect();

    // Plain runs, one a week.
    let plain = sample_config(&dir.path().join("plain"), "path = \"ledger\"");
    for &d in &dates {
        let (code, err) = run(&plain, &out, d);
        assert_eq!(code, 0, "{err}");
    }
    let kept = files(&dir.path().join("plain/ledger"));
    assert_eq!(kept.len(), 12, "{:?}", kept.keys());

    // The last run scored the eleven before it; web/cpu's figures by hand.
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["track_record"]["earlier_runs"], 11);
    assert_eq!(doc["track_record"]["resources"], 21);
    let web = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "web/cpu").unwrap();
    let track = &web["track"];
    assert_eq!(track["forecasts"], 11);
    let actual = sample_values("web/cpu");
    let groups = [("1 d", 1), ("2-7 d", 7), ("8-30 d", 30), ("31-90 d", 90)];
    let mut by: BTreeMap<&str, (usize, f64, f64, usize, f64)> = BTreeMap::new();
    for (as_of, t, mean, lower, upper) in marks(&dir.path().join("plain/ledger"), "web/cpu") {
        if as_of >= END || t > END {
            continue;
        }
        let a = actual[&t];
        // The seasonal naive issued at as_of repeats the week before it.
        let weeks = (t - as_of + 7 * DAY - 1) / (7 * DAY);
        let naive = actual[&(t - weeks * 7 * DAY)];
        let lead = (t - as_of + DAY - 1) / DAY;
        let g = groups.iter().find(|(_, last)| lead <= *last).unwrap().0;
        let e = by.entry(g).or_default();
        e.0 += 1;
        e.1 += (mean - a).abs();
        e.2 += (naive - a).abs();
        e.3 += usize::from(a >= lower && a <= upper);
        e.4 += mean - a;
    }
    let leads = track["by_lead"].as_array().unwrap();
    assert_eq!(leads.len(), by.len());
    for l in leads {
        let (n, e, ne, inside, bias) = by[l["lead"].as_str().unwrap()];
        let n_f = n as f64;
        assert_eq!(l["points"], n);
        // forecasts.json rounds errors to 6 decimals and shares to 4.
        let close = |k: &str, want: f64, within: f64| {
            let got = l[k].as_f64().unwrap();
            assert!((got - want).abs() <= within, "{} {k}: {got} against {want} by hand", l["lead"]);
        };
        close("mae", e / n_f, 1e-6);
        close("naive_mae", ne / n_f, 1e-6);
        close("coverage", inside as f64 / n_f, 5e-5);
        close("bias", bias / n_f, 1e-6);
    }
    // 1 d: one mark per earlier run, 11 in all.
    assert_eq!(by["1 d"].0, 11);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Track record"), "{summary}");
    assert!(summary.contains("11 earlier runs in the ledger"), "{summary}");
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("<section id=\"track\">") && page.contains("Moved since last run"));

    // A rerun of the last date forecasts the same: the ledger stays byte for byte.
    let (code, err) = run(&plain, &out, END);
    assert_eq!(code, 0, "{err}");
    assert_eq!(files(&dir.path().join("plain/ledger")), kept, "a no-op rerun changes nothing");
    assert_eq!(read_json(&out.join("forecasts.json"))["track_record"]["ledger"]["written"], Value::Null);

    // A backfill over the first eleven dates, then the twelfth run: the same files.
    let replay = sample_config(&dir.path().join("replay"), "path = \"ledger\"");
    let (code, err) = headroom(&[
        "ledger",
        "backfill",
        "--config",
        replay.to_str().unwrap(),
        "--from",
        &day(dates[0]),
        "--to",
        &day(dates[10]),
        "--every",
        "7d",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("11 of 11 runs backfilled"), "{err}");
    let (code, err) = run(&replay, &out, END);
    assert_eq!(code, 0, "{err}");
    assert_eq!(files(&dir.path().join("replay/ledger")), kept, "a backfill forecasts exactly as the runs did");

    // One damaged file: one line naming it, every resource still forecast and scored from the
    // rest, the file left as it was.
    let damaged = dir.path().join("plain/ledger/runs").join(kept.keys().nth(4).unwrap());
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = run(&plain, &out, END);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: ledger ") && lines[0].contains(kept.keys().nth(4).unwrap()), "{err}");
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["resources"].as_array().unwrap().len(), 21);
    assert_eq!(doc["track_record"]["ledger"]["unreadable"], 1);
    let web = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "web/cpu").unwrap();
    assert_eq!(web["track"]["forecasts"], 10);
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes[..bytes.len() / 2]);

    // `ledger score` and `ledger show` read the same ledger.
    let (code, err) = headroom(&[
        "ledger",
        "score",
        "--config",
        plain.to_str().unwrap(),
        "--as-of",
        &day(END),
        "--resource",
        "web/cpu",
        "--format",
        "json",
    ]);
    assert_eq!(code, 2, "the damaged file is still an error: {err}");
    let o = Command::cargo_bin("headroom")
        .unwrap()
        .args([
            "ledger",
            "show",
            "--config",
            plain.to_str().unwrap(),
            "--as-of",
            &day(dates[10]),
            "--resource",
            "web/cpu",
        ])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown[0]["resource"], "web/cpu");
    assert_eq!(shown[0]["as_of"], format!("{}T00:00:00Z", day(dates[10])));
    assert!(shown[0]["forecast"].as_array().unwrap().len() >= 90);

    // `ledger list` names the damaged file as an error and lists the rest.
    let o = Command::cargo_bin("headroom")
        .unwrap()
        .args(["ledger", "list", "--config", plain.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.contains("runs/")).count(), 11);
}

#[test]
fn a_first_run_backfills_an_empty_ledger_and_no_ledger_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = sample_config(dir.path(), "path = \"kept\"\nbackfill = \"28d\"\nkeep = \"20d\"");
    let (code, err) = run(&cfg, &out, END);
    assert_eq!(code, 0, "{err}");
    // Four weekly runs backfilled and scored, then this one written; the two older than
    // `keep` before this as-of are dropped afterwards.
    let kept = files(&dir.path().join("kept"));
    let days: Vec<&str> = kept.keys().map(|k| &k[..8]).collect();
    assert_eq!(days, ["20261018", "20261025", "20261101"], "{kept:?}");
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["track_record"]["earlier_runs"], 4);
    assert_eq!(doc["track_record"]["ledger"]["backfilled"], 4);
    assert_eq!(doc["track_record"]["ledger"]["pruned"], 2);
    let prom = std::fs::read_to_string(out.join("headroom.prom")).unwrap();
    assert!(prom.contains("headroom_track_earlier_runs 4"), "{prom}");
    assert!(prom.contains("headroom_track_coverage{lead=\"1 d\"}"), "{prom}");

    // --no-ledger: nothing read or written, no track record.
    let (code, err) = headroom(&[
        "run",
        "--quiet",
        "--no-ledger",
        "--plots",
        "none",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        &day(END + DAY),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(files(&dir.path().join("kept")), kept);
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["track_record"], Value::Null);
    assert!(doc["resources"].as_array().unwrap().iter().all(|r| r["track"].is_null()));

    // Another config pointed at this ledger (none of its resources in it): one line, the
    // reports still written, nothing added.
    let other = dir.path().join("other.toml");
    let csv = dir.path().join("queue.csv");
    let rows: String = (0..24 * 60)
        .map(|h| format!("{},{}\n", END - (24 * 60 - 1 - h) * 3600, 0.3 + 0.001 * (h % 24) as f64))
        .collect();
    std::fs::write(&csv, format!("timestamp,value\n{rows}")).unwrap();
    std::fs::write(
        &other,
        format!(
            "[sources.q]\nkind = \"files\"\npath = {:?}\n[[resources]]\nsource = \"q\"\n[ledger]\npath = {:?}\n",
            csv.display().to_string(),
            dir.path().join("kept").display().to_string()
        ),
    )
    .unwrap();
    let (code, err) = headroom(&[
        "run",
        "--quiet",
        "--plots",
        "none",
        "--config",
        other.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("another config's ledger?"), "{err}");
    assert_eq!(files(&dir.path().join("kept")), kept);
    assert_eq!(read_json(&out.join("forecasts.json"))["resources"][0]["name"], "queue");
}

/// A real S3-compatible server (moto's server mode, from PyPI; `.ci/test` installs it) on a
/// free port of 127.0.0.1, stopped when dropped.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start() -> Option<Moto> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let python = common::tool("python3")?;
        let has = std::process::Command::new(&python).args(["-c", "import moto.server, flask"]).output().ok()?;
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if !has.status.success() {
            assert!(!ci, "moto is not installed: run `bash .ci/test` (it pip-installs moto[server])");
            eprintln!("skipped: moto is not installed (bash .ci/test installs it)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let m = Moto { child, port };
        let client = reqwest::blocking::Client::new();
        for _ in 0..100 {
            if client.get(m.url("")).send().is_ok() {
                return Some(m);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("moto did not answer on port {port} within 20 s");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_bucket_keeps_the_ledger_and_an_unreachable_one_costs_one_line_without_secrets() {
    let Some(moto) = Moto::start() else { return };
    let client = reqwest::blocking::Client::new();
    assert!(client.put(moto.url("capacity")).send().unwrap().status().is_success(), "bucket created");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = sample_config(dir.path(), "url = \"s3://capacity/team/headroom\"\nbackfill = \"14d\"");
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzEXAMPLEKEY";
    let key_id = "AKIAHEADROOMTEST";
    let s3 = |endpoint: &str, args: &[&str]| {
        let o = Command::cargo_bin("headroom")
            .unwrap()
            .env("AWS_ENDPOINT", endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let endpoint = moto.url("");
    let endpoint = endpoint.trim_end_matches('/');
    let run_args = [
        "run",
        "--quiet",
        "--plots",
        "none",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--as-of",
        "2026-11-01",
    ];
    let (code, _, err) = s3(endpoint, &run_args);
    assert_eq!(code, 0, "{err}");
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["track_record"]["earlier_runs"], 2, "two weekly runs backfilled into the bucket");
    let written = doc["track_record"]["ledger"]["written"].as_str().unwrap().to_string();
    let (code, listed, err) = s3(endpoint, &["ledger", "list", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(listed.lines().filter(|l| l.contains("runs/2026")).count(), 3, "{listed}");
    assert!(listed.contains(&written), "{listed}");
    // The bucket holds the objects under the prefix (read back with a plain listing).
    let body = client.get(moto.url("capacity?list-type=2&prefix=team/headroom/runs/")).send().unwrap().text().unwrap();
    assert!(body.contains(&format!("team/headroom/runs/{written}")), "{body}");
    // A rerun forecasting the same writes nothing.
    let (code, _, err) = s3(endpoint, &run_args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read_json(&out.join("forecasts.json"))["track_record"]["ledger"]["written"], Value::Null);

    // Nothing listening: one line naming the bucket, every report still written, exit 2, and
    // no credential anywhere.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, stdout, err) = s3(&format!("http://127.0.0.1:{closed}"), &run_args);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: ledger s3://capacity/team/headroom: cannot list the runs"), "{err}");
    let doc = read_json(&out.join("forecasts.json"));
    assert_eq!(doc["resources"].as_array().unwrap().len(), 21);
    for text in [stdout, err] {
        assert!(!text.contains(secret) && !text.contains(key_id), "{text}");
    }
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(secret) && !text.contains(key_id), "{}", p.display());
        }
    }
}
