//! `headroom run` against real Prometheus (backfilled with promtool) and VictoriaMetrics (fed
//! by its import API): the same forecasts as from the same data in a file, chunked requests,
//! and every way a server fails. `.ci/test` installs both servers (Debian packages); set
//! HEADROOM_SKIP_TOOLS=1 to skip on a machine without them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use assert_cmd::Command;
use common::tool;
use proxy::Fault;
use serde_json::Value;

/// The fixture ends here: 2026-11-01T00:00:00Z; a year of hourly samples before it.
const END: i64 = 1_793_491_200;
const HOURS: i64 = 365 * 24;
const SERIES: [(&str, &str); 4] = [("web", "cpu"), ("web", "memory"), ("db", "disk"), ("api", "cpu")];

/// Value of series `k` at hour `i`; None = no sample (a gap), NaN = a NaN sample.
fn value(k: usize, i: i64) -> Option<f64> {
    if k == 2 && (4000..4100).contains(&i) {
        return None;
    }
    if k == 3 && i % 1000 == 7 {
        return Some(f64::NAN);
    }
    let d = i as f64 / 24.0;
    let v = 0.3 + 0.1 * k as f64 + 0.0007 * d + 0.08 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
    // Rounded so every store keeps the value exactly.
    Some((v * 1e6).round() / 1e6)
}

/// An HTTP client for the fixtures (rustls needs its crypto provider installed first).
fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(url: &str, path: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = http().get(format!("{url}{path}")).send() {
            if r.status().is_success() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{url} not ready after 60 s");
}

/// Shared servers live in statics, which are never dropped: their processes are killed when
/// the test binary exits, so no run leaves servers behind.
static SHARED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

extern "C" fn kill_shared() {
    if let Ok(pids) = SHARED.lock() {
        for pid in pids.iter() {
            // SAFETY: kill(2) on a process this binary started; no memory is touched.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn kill_at_exit(child: &Child) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    // SAFETY: atexit(3) with a function that only reads a static and calls kill(2).
    REGISTER.call_once(|| unsafe {
        libc::atexit(kill_shared);
    });
    if let Ok(mut pids) = SHARED.lock() {
        pids.push(child.id());
    }
}

fn prometheus() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let prom = tool("prometheus")?;
            let promtool = tool("promtool")?;
            let dir = tempfile::tempdir().unwrap();
            let mut om = String::new();
            for (k, (t, c)) in SERIES.iter().enumerate() {
                for i in 0..HOURS {
                    if let Some(v) = value(k, i) {
                        let ts = END - (HOURS - 1 - i) * 3600;
                        om.push_str(&format!("saturation_ratio{{type=\"{t}\",component=\"{c}\"}} {v} {ts}\n"));
                    }
                }
            }
            // Thresholds published as metrics (as GitLab's slo:max:*), for the last two days.
            for (metric, labels, v) in [
                ("slo_max_hard", "component=\"cpu\"", 0.95),
                ("slo_max_hard", "type=\"db\",component=\"disk\"", 0.8),
                ("slo_max_soft", "component=\"cpu\"", 0.7),
                ("capacity_units", "type=\"db\",component=\"disk\"", 2.0),
                ("capacity_units", "component=\"cpu\"", 4.0),
            ] {
                for i in HOURS - 48..HOURS {
                    om.push_str(&format!("{metric}{{{labels}}} {v} {}\n", END - (HOURS - 1 - i) * 3600));
                }
            }
            om.push_str("# EOF\n");
            let file = dir.path().join("data.om");
            std::fs::write(&file, om).unwrap();
            let data = dir.path().join("tsdb");
            let out = Proc::new(promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=8760h"])
                .arg(&file)
                .arg(&data)
                .output()
                .unwrap();
            assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
            let cfg = dir.path().join("prometheus.yml");
            std::fs::write(&cfg, "scrape_configs: []\n").unwrap();
            let port = free_port();
            let child = Proc::new(prom)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .args(["--storage.tsdb.retention.time=5y", &format!("--web.listen-address=127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            kill_at_exit(&child);
            let url = format!("http://127.0.0.1:{port}");
            let server = Server { child, url, _dir: dir };
            wait_ready(&server.url, "/-/ready");
            Some(server)
        })
        .as_ref()
}

fn victoria() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let vm = tool("victoria-metrics")?;
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let child = Proc::new(vm)
                .arg(format!("-storageDataPath={}", dir.path().join("vm").display()))
                .args(["-retentionPeriod=5y", &format!("-httpListenAddr=127.0.0.1:{port}")])
                // Without this VictoriaMetrics fills a missing hourly sample with the one
                // before it (its staleness window is derived from the scrape interval); the
                // file has a gap there.
                .arg("-search.maxStalenessInterval=1m")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            kill_at_exit(&child);
            let url = format!("http://127.0.0.1:{port}");
            let server = Server { child, url, _dir: dir };
            wait_ready(&server.url, "/health");
            let mut lines = String::new();
            for (k, (t, c)) in SERIES.iter().enumerate() {
                let (mut ts, mut vs) = (vec![], vec![]);
                for i in 0..HOURS {
                    if let Some(v) = value(k, i).filter(|v| v.is_finite()) {
                        ts.push((END - (HOURS - 1 - i) * 3600) * 1000);
                        vs.push(v);
                    }
                }
                let line = serde_json::json!({"metric": {"__name__": "saturation_ratio", "type": t, "component": c}, "values": vs, "timestamps": ts});
                lines.push_str(&format!("{line}\n"));
            }
            let client = http();
            let r = client.post(format!("{}/api/v1/import", server.url)).body(lines).send().unwrap();
            assert!(r.status().is_success(), "import: {}", r.status());
            client.get(format!("{}/internal/force_flush", server.url)).send().unwrap();
            Some(server)
        })
        .as_ref()
}

/// The fixture's data as a long CSV file, named as the template names the series.
fn csv_fixture(dir: &Path) {
    let mut s = String::from("resource,timestamp,value\n");
    for (k, (t, c)) in SERIES.iter().enumerate() {
        for i in 0..HOURS {
            if let Some(v) = value(k, i) {
                let v = if v.is_nan() { "NaN".to_string() } else { v.to_string() };
                s.push_str(&format!("{t}/{c},{},{v}\n", END - (HOURS - 1 - i) * 3600));
            }
        }
    }
    std::fs::write(dir.join("fleet.csv"), s).unwrap();
}

const DEFAULTS: &str = "[defaults]\nbounded = true\nhorizon = \"30d\"\naggregate = \"last\"\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    json: Value,
    summary: String,
    /// Every file written under `--out`, read as text, with its path.
    files: Vec<(String, String)>,
}

/// The files under `dir`, recursively, as (path, lossy text).
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.display().to_string(), String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()));
        }
    }
    out
}

fn run(dir: &Path, config: &str, envs: &[(&str, &str)]) -> Run {
    let cfg = dir.join("h.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = dir.join("out");
    let o = Command::cargo_bin("headroom")
        .unwrap()
        .args(["run", "--quiet", "--plots", "none", "--as-of", "2026-11-01T00:00:00Z", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let json = std::fs::read(out.join("forecasts.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        json,
        summary: std::fs::read_to_string(out.join("summary.md")).unwrap_or_default(),
        files: files_under(&out),
    }
}

fn forecasts(v: &Value) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let means = r["forecast"].as_array().unwrap().iter().map(|p| p["mean"].as_f64().unwrap()).collect();
            (r["name"].as_str().unwrap().to_string(), means)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn same_forecasts(a: &Value, b: &Value) {
    let (fa, fb) = (forecasts(a), forecasts(b));
    assert_eq!(fa.len(), SERIES.len());
    assert_eq!(fa.iter().map(|f| &f.0).collect::<Vec<_>>(), fb.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert_eq!(x.len(), y.len(), "{name}");
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1e-12), "{name}: {p} vs {q}");
        }
    }
}

fn server_config(url: &str, extra: &str) -> String {
    format!(
        "{DEFAULTS}[sources.prom]\nkind = \"prometheus\"\nurl = \"{url}\"\nmax_points_per_request = 1000\nconcurrency = 3\n{extra}\
         [[resources]]\nsource = \"prom\"\nquery = 'saturation_ratio'\nname = \"{{type}}/{{component}}\"\n"
    )
}

#[test]
fn prometheus_and_victoria_metrics_match_the_file() {
    let Some(prom) = prometheus() else { return };
    let Some(vm) = victoria() else { return };
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    let from_file = run(
        dir.path(),
        &format!("{DEFAULTS}[sources.f]\nkind = \"files\"\npath = \"fleet.csv\"\n[[resources]]\nsource = \"f\"\n"),
        &[],
    );
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    // 8761 grid points in chunks of 1000: nine chunk borders crossed, three requests at once.
    let from_prom = run(dir.path(), &server_config(&prom.url, ""), &[]);
    assert_eq!(from_prom.code, 0, "{}", from_prom.stderr);
    same_forecasts(&from_file.json, &from_prom.json);
    let from_vm = run(dir.path(), &server_config(&vm.url, ""), &[]);
    assert_eq!(from_vm.code, 0, "{}", from_vm.stderr);
    same_forecasts(&from_file.json, &from_vm.json);
}

#[test]
fn server_side_step_aggregation_runs() {
    let Some(prom) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_config(&prom.url, "").replace("aggregate = \"last\"", "aggregate = \"p95\"");
    let r = run(dir.path(), &cfg, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["resources"].as_array().unwrap().len(), 4);
}

#[test]
fn query_errors_fail_their_resources_only() {
    let Some(prom) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = server_config(&prom.url, "");
    cfg.push_str("[[resources]]\nsource = \"prom\"\nname = \"broken\"\nquery = 'sum(saturation_ratio'\n");
    cfg.push_str(
        "[[resources]]\nsource = \"prom\"\nname = \"m2m\"\nquery = 'saturation_ratio + on(type) saturation_ratio'\n",
    );
    cfg.push_str("[[resources]]\nsource = \"prom\"\nname = \"nothing\"\nquery = 'no_such_metric'\n");
    cfg.push_str("[[resources]]\nsource = \"prom\"\nname = \"{component}\"\nquery = 'saturation_ratio{type=\"db\"}'\n");
    let r = run(dir.path(), &cfg, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 3, "{}", r.stderr);
    assert!(
        errors.iter().any(|e| e.contains("resource broken") && e.contains("HTTP 400") && e.contains("bad_data")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("resource m2m") && e.contains("HTTP 422") && e.contains("execution")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("resource nothing") && e.contains("returned no series")), "{errors:?}");
    let mut names: Vec<&str> =
        r.json["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["api/cpu", "db/disk", "disk", "web/cpu", "web/memory"], "the good queries' series");
}

/// A stub HTTP server: answers every request with `status` and `body`, counting requests;
/// `hang` accepts and never answers.
fn stub(status: u16, body: &'static str, hang: bool) -> (String, Arc<AtomicUsize>) {
    let (url, count, _) = recording_stub(status, body, hang);
    (url, count)
}

/// Like `stub`, also keeping the request head (request line and headers) of each request.
fn recording_stub(
    status: u16,
    body: &'static str,
    hang: bool,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let heads = Arc::new(std::sync::Mutex::new(String::new()));
    let record = heads.clone();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = vec![];
        for conn in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            if hang {
                held.push(conn);
                continue;
            }
            let mut conn = conn;
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Ok(mut h) = record.lock() {
                    h.push_str(&line);
                }
                line.clear();
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.flush();
            let mut rest = vec![];
            let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = conn.read_to_end(&mut rest);
        }
    });
    (url, count, heads)
}

fn fault_run(url: &str, extra: &str, envs: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    // One healthy file resource beside the failing server: it must still be forecast.
    let cfg = format!(
        "{}[sources.f]\nkind = \"files\"\npath = \"fleet.csv\"\n[[resources]]\nsource = \"f\"\nname = \"db/disk\"\n",
        server_config(url, extra)
            .replace("name = \"{type}/{component}\"", "name = \"remote\"")
            .replace("query = 'saturation_ratio'", "query = 'max(saturation_ratio)'")
            // One request per attempt, so attempts can be counted.
            .replace("max_points_per_request = 1000", "max_points_per_request = 11000")
    );
    run(dir.path(), &cfg, envs)
}

fn one_error_naming(r: &Run, want: &str) {
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("resource remote") && errors[0].contains(want), "{} lacks {want}", errors[0]);
    let names: Vec<&str> =
        r.json["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db/disk"], "the other resource is still forecast");
    assert!(r.summary.contains("db/disk"), "the other resource is in summary.md");
}

/// No secret in any form on the terminal or in any file the run wrote.
fn no_secret_anywhere(r: &Run, secrets: &[&str]) {
    assert!(!r.files.is_empty(), "the run wrote its reports");
    for secret in secrets {
        assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret), "{secret} leaked to the terminal");
        for (path, text) in &r.files {
            assert!(!text.contains(secret), "{secret} leaked into {path}");
        }
    }
}

#[test]
fn echoed_secrets_are_masked_in_every_output() {
    let Some(prom) = prometheus() else { return };
    // A gateway's 401 echoing the request's headers: a bearer token and an API key header.
    let echo = proxy::start(&prom.url, Fault::EchoHeaders401);
    let extra = "bearer_token_env = \"HR_TOKEN\"\nheaders_env = { \"X-Api-Key\" = \"HR_KEY\" }\n";
    let envs = [("HR_TOKEN", "tok-3f9a8b7c6d5e4f"), ("HR_KEY", "key/0a1b+2c3d=")];
    let r = fault_run(&echo.url, extra, &envs);
    one_error_naming(&r, "HTTP 401");
    assert!(r.stderr.contains("[redacted]"), "the echo reached the message, masked: {}", r.stderr);
    no_secret_anywhere(&r, &["tok-3f9a8b7c6d5e4f", "key/0a1b+2c3d=", "key%2F0a1b"]);
    assert_eq!(echo.requests(), 1, "4xx is not retried");

    // URL userinfo: the client sends it as Basic credentials, which the gateway echoes.
    let url = echo.url.replace("http://", "http://planner:pw%40url-s3cret@");
    let r = fault_run(&url, "", &[]);
    one_error_naming(&r, "HTTP 401 from http://127.0.0.1");
    no_secret_anywhere(&r, &["pw%40url-s3cret", "pw@url-s3cret", "cGxhbm5lcjpwd0B1cmwtczNjcmV0"]);

    // A hostile server puts the Authorization header into a label the resource is named by.
    let hostile = proxy::start(&prom.url, Fault::EchoIntoLabels);
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_config(&hostile.url, "basic_auth = { user = \"planner\", password_env = \"HR_PW\" }\n")
        .replace("name = \"{type}/{component}\"", "name = \"{type}/{component}/{echo}\"");
    let r = run(dir.path(), &cfg, &[("HR_PW", "hunter2-pw-9")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["resources"].as_array().unwrap().len(), 4, "every series still forecast");
    assert!(r.summary.contains("web/cpu/Basic [redacted]"), "{}", r.summary);
    no_secret_anywhere(&r, &["hunter2-pw-9", "cGxhbm5lcjpodW50ZXIyLXB3LTk="]);
}

#[test]
fn a_stalled_body_is_bounded_by_the_timeout() {
    let Some(prom) = prometheus() else { return };
    let stall = proxy::start(&prom.url, Fault::StallBody);
    let started = Instant::now();
    let r = fault_run(&stall.url, "timeout = \"2s\"\nretries = 1\n", &[]);
    let took = started.elapsed();
    one_error_naming(&r, "timed out after 2s: no complete answer from");
    assert!(r.stderr.contains("(after 2 attempts)"), "{}", r.stderr);
    assert_eq!(stall.requests(), 2);
    // Two attempts of 2 s and a 0.25 s backoff, plus the file resource's fit; an unbounded
    // body read would wait out the proxy's 30 s hold.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn cut_and_broken_answers() {
    let Some(prom) = prometheus() else { return };
    // Cut without Content-Length, once: retried, and the resource is forecast.
    let once = proxy::start(&prom.url, Fault::Truncate(1));
    let r = fault_run(&once.url, "retries = 2\n", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(once.requests(), 2, "the cut answer was retried");
    assert_eq!(r.json["resources"].as_array().unwrap().len(), 2);
    // Cut every time: one line saying so, after every attempt.
    let always = proxy::start(&prom.url, Fault::Truncate(usize::MAX));
    let r = fault_run(&always.url, "retries = 2\n", &[]);
    one_error_naming(&r, "was cut off (the JSON ends early, after ");
    assert!(r.stderr.contains("(after 3 attempts)"), "{}", r.stderr);
    assert_eq!(always.requests(), 3);
    // Complete but not JSON: where it broke, not retried.
    let broken = proxy::start(&prom.url, Fault::Malformed);
    let r = fault_run(&broken.url, "retries = 2\n", &[]);
    one_error_naming(&r, "not valid JSON at line 1 column ");
    assert_eq!(broken.requests(), 1);
    // An instant vector from a rewritten path: one line that says what came back.
    let instant = proxy::start(&prom.url, Fault::Instant);
    let r = fault_run(&instant.url, "", &[]);
    one_error_naming(&r, "the server answered with an instant vector (resultType `vector`) where a range matrix");
    assert_eq!(instant.requests(), 1);
}

/// Twelve resource entries on `url`, a healthy Prometheus source and a file beside it.
fn fleet_on(url: &str, live: &str) -> String {
    let mut cfg = format!(
        "{DEFAULTS}[sources.f]\nkind = \"files\"\npath = \"fleet.csv\"\n[[resources]]\nsource = \"f\"\nname = \"db/disk\"\n\
         [sources.dead]\nkind = \"prometheus\"\nurl = \"{url}\"\ntimeout = \"1s\"\n\
         [sources.live]\nkind = \"prometheus\"\nurl = \"{live}\"\n\
         [[resources]]\nsource = \"live\"\nquery = 'saturation_ratio'\nname = \"live/{{type}}/{{component}}\"\n"
    );
    for i in 0..12 {
        cfg.push_str(&format!(
            "[[resources]]\nsource = \"dead\"\nname = \"remote{i}\"\nquery = 'max(saturation_ratio)'\n"
        ));
    }
    cfg
}

#[test]
fn a_dead_source_trips_its_breaker_and_the_others_go_on() {
    let Some(prom) = prometheus() else { return };
    let hung = proxy::start(&prom.url, Fault::Hang);
    let refused = format!("http://127.0.0.1:{}", free_port());
    for (url, why) in [(hung.url.as_str(), "timed out after 1s"), (refused.as_str(), "cannot connect to")] {
        let dir = tempfile::tempdir().unwrap();
        csv_fixture(dir.path());
        let started = Instant::now();
        let r = run(dir.path(), &fleet_on(url, &prom.url), &[]);
        let took = started.elapsed();
        assert_eq!(r.code, 2, "{}", r.stderr);
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 2, "{}", r.stderr);
        let (first, breaker) = match errors[0].contains("queries not run") {
            true => (errors[1], errors[0]),
            false => (errors[0], errors[1]),
        };
        assert!(
            first.contains("resource remote0: source dead")
                && first.contains(why)
                && first.contains("(after 4 attempts); the source's remaining queries are not run"),
            "{first}"
        );
        assert!(
            breaker.contains("source dead: 11 queries not run (remote1, remote2, remote3, remote4, remote5 and 6 more): treated as down after 4 attempts in a row timed out or found no server"),
            "{breaker}"
        );
        // Four attempts of at most 1 s and 1.75 s of backoff, not 12 x 4 timeouts.
        assert!(took < Duration::from_secs(20), "took {took:?}");
        let mut names: Vec<&str> =
            r.json["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["db/disk", "live/api/cpu", "live/db/disk", "live/web/cpu", "live/web/memory"]);
        assert!(r.summary.contains("live/web/cpu") && r.summary.contains("db/disk"));
    }
    assert_eq!(hung.requests(), 4, "no query after the breaker opened");
}

#[test]
fn messages_point_at_what_the_user_wrote() {
    let Some(prom) = prometheus() else { return };
    // The server parses `quantile_over_time(0.95, (sum(saturation_ratio)[1h:1m])`; the
    // position names the end of what the user wrote.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = server_config(&prom.url, "").replace("aggregate = \"last\"", "aggregate = \"p95\"");
    cfg.push_str("[[resources]]\nsource = \"prom\"\nname = \"broken\"\nquery = 'sum(saturation_ratio'\n");
    cfg.push_str("[[resources]]\nsource = \"prom\"\nname = \"regex\"\nquery = 'max(saturation_ratio{type=~\"(\"})'\n");
    let r = run(dir.path(), &cfg, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("query `sum(saturation_ratio`: HTTP 400 from"), "{}", r.stderr);
    assert!(r.stderr.contains("bad_data: 1:21: parse error: unclosed left parenthesis"), "{}", r.stderr);
    assert!(r.stderr.contains("bad_data: 1:22: parse error: error parsing regexp"), "{}", r.stderr);
    assert_eq!(r.json["resources"].as_array().unwrap().len(), 4);

    // A gateway's HTML page: its title, on one short line, retried as a 5xx.
    let page = proxy::start(&prom.url, Fault::HtmlPage(502));
    let r = fault_run(&page.url, "retries = 1\n", &[]);
    one_error_naming(&r, ": HTTP 502 from http://127.0.0.1");
    let line = r.stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.ends_with(": 502 Bad Gateway (after 2 attempts)") && line.len() < 300, "{line}");

    // More series than max_series: an error naming the query and the count.
    let pass = proxy::start(&prom.url, Fault::Pass);
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    let cfg = format!(
        "{}[sources.f]\nkind = \"files\"\npath = \"fleet.csv\"\n[[resources]]\nsource = \"f\"\nname = \"db/disk\"\n",
        server_config(&pass.url, "max_series = 3\n")
    );
    let r = run(dir.path(), &cfg, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].contains("query `saturation_ratio`: returned 4 series, more than max_series = 3"),
        "{}",
        errors[0]
    );
    let names: Vec<&str> =
        r.json["resources"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db/disk"], "the file's resource is still forecast");
    assert!(r.summary.contains("db/disk"));
}

#[test]
fn server_down_timeout_and_error_statuses() {
    // Nothing listening: connection refused, retried, then one line.
    let port = free_port();
    let r = fault_run(&format!("http://127.0.0.1:{port}"), "retries = 1\n", &[]);
    one_error_naming(&r, "cannot connect to http://127.0.0.1");
    assert!(r.stderr.contains("after 2 attempts"), "{}", r.stderr);

    // Accepts and never answers: the client-side timeout ends it.
    let (url, _) = stub(200, "", true);
    let started = Instant::now();
    let r = fault_run(&url, "timeout = \"1s\"\nretries = 0\n", &[]);
    one_error_naming(&r, "timed out after 1s: no complete answer from");
    assert!(started.elapsed() < Duration::from_secs(30));

    // 503 with the server's own error: retried with backoff, then reported.
    let (url, count) = stub(
        503,
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        false,
    );
    let r = fault_run(&url, "retries = 2\n", &[]);
    one_error_naming(&r, "HTTP 503 from");
    assert!(r.stderr.contains("timeout: query timed out"), "{}", r.stderr);
    assert_eq!(count.load(Ordering::SeqCst), 3, "503 is retried");

    // A wrong token: 401, not retried, and the token never shown; the token and the tenant
    // header did reach the server.
    let (url, count, heads) =
        recording_stub(401, r#"{"status":"error","errorType":"unauthorized","error":"bad token"}"#, false);
    let extra = "retries = 3\nbearer_token_env = \"HR_TEST_TOKEN\"\nheaders = { \"X-Scope-OrgID\" = \"ops\" }\n";
    let r = fault_run(&url, extra, &[("HR_TEST_TOKEN", "s3cr3t-token-value")]);
    one_error_naming(&r, "HTTP 401");
    assert_eq!(count.load(Ordering::SeqCst), 1, "4xx is not retried");
    let head = heads.lock().unwrap().to_ascii_lowercase();
    assert!(head.contains("authorization: bearer s3cr3t-token-value") && head.contains("x-scope-orgid: ops"), "{head}");
    assert!(head.contains("get /api/v1/query_range?query=max%28saturation_ratio%29"), "{head}");
    assert!(!format!("{}{}", r.stderr, r.json).contains("s3cr3t"), "a secret leaked");
    // Basic auth reaches the server as the standard header, and stays out of every output.
    let (url, _, heads) = recording_stub(401, r#"{"status":"error","errorType":"unauthorized","error":"no"}"#, false);
    let r = fault_run(
        &url,
        "basic_auth = { user = \"planner\", password_env = \"HR_TEST_PW\" }\n",
        &[("HR_TEST_PW", "hunter2-pw")],
    );
    assert!(heads.lock().unwrap().contains("Basic cGxhbm5lcjpodW50ZXIyLXB3"), "basic auth header");
    assert!(!format!("{}{}", r.stderr, r.json).contains("hunter2"), "a secret leaked");

    // A token variable that is not set is a clear error, naming the variable only.
    let r = fault_run(&url, "bearer_token_env = \"HR_TEST_UNSET_TOKEN\"\n", &[]);
    one_error_naming(&r, "environment variable HR_TEST_UNSET_TOKEN (bearer_token_env) is not set");
}

#[test]
fn pull_freezes_a_snapshot_that_runs_offline_and_check_reaches_sources() {
    let Some(prom) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pull.toml");
    std::fs::write(&cfg, server_config(&prom.url, "")).unwrap();
    let snap = dir.path().join("snap/fleet.parquet");
    let o = Command::cargo_bin("headroom")
        .unwrap()
        .args(["pull", "--as-of", "2026-11-01T00:00:00Z", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&snap)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pulled 4 resources"));

    // A snapshot pulled a month earlier, then extended: the same file as one pull, with only
    // the missing month fetched the second time.
    let pull = |as_of: &str, out: &Path| {
        let o = Command::cargo_bin("headroom")
            .unwrap()
            .args(["pull", "--as-of", as_of, "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let grown = dir.path().join("grown.parquet");
    pull("2026-10-01T00:00:00Z", &grown);
    let second = pull("2026-11-01T00:00:00Z", &grown);
    let fetched: usize = second.split(" points fetched").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    // October has 31 days: at most 4 series x 744 hours are new.
    assert!(fetched > 0 && fetched <= 4 * 31 * 24, "only the tail is fetched: {second}");
    let third = pull("2026-11-01T00:00:00Z", &grown);
    assert!(third.contains(" 0 points fetched"), "up to date: nothing to fetch: {third}");
    let grown_config =
        format!("{DEFAULTS}[sources.s]\nkind = \"files\"\npath = \"grown.parquet\"\n[[resources]]\nsource = \"s\"\n");
    let grown_run = run(dir.path(), &grown_config, &[]);
    let once_run = run(dir.path(), &server_config(&prom.url, ""), &[]);
    same_forecasts(&once_run.json, &grown_run.json);
    let offline = run(
        dir.path(),
        &format!("{DEFAULTS}[sources.s]\nkind = \"files\"\npath = \"snap/*.parquet\"\n[[resources]]\nsource = \"s\"\n"),
        &[],
    );
    let online = run(dir.path(), &server_config(&prom.url, ""), &[]);
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    same_forecasts(&online.json, &offline.json);

    let mut text = server_config(&prom.url, "");
    text.push_str("[[resources]]\nsource = \"prom\"\nname = \"broken\"\nquery = 'sum('\n");
    std::fs::write(&cfg, text).unwrap();
    let o = Command::cargo_bin("headroom")
        .unwrap()
        .args(["check", "--as-of", "2026-11-01T00:00:00Z", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("query `saturation_ratio`): 4 series"), "{stdout}");
    assert!(stderr.lines().filter(|l| l.starts_with("error:")).count() == 1 && stderr.contains("bad_data"), "{stderr}");
}

#[test]
fn thresholds_from_the_server_matched_by_labels() {
    let Some(prom) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_config(&prom.url, "")
        + "thresholds_query = { soft = 'slo_max_soft', hard = 'slo_max_hard' }\nthresholds = { soft = 0.6 }\n";
    let r = run(dir.path(), &cfg, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let thresholds = |name: &str| -> Vec<(String, f64)> {
        let res = r.json["resources"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap().clone();
        res["breaches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["name"].as_str().unwrap().to_string(), b["threshold"].as_f64().unwrap()))
            .collect()
    };
    let t = |pairs: &[(&str, f64)]| pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>();
    // The entry's own soft threshold wins; hard comes from the matching series.
    assert_eq!(thresholds("web/cpu"), t(&[("soft", 0.6), ("hard", 0.95)]));
    assert_eq!(thresholds("api/cpu"), t(&[("soft", 0.6), ("hard", 0.95)]));
    assert_eq!(thresholds("db/disk"), t(&[("soft", 0.6), ("hard", 0.8)]));
    // No threshold series for memory: the defaults stay.
    assert_eq!(thresholds("web/memory"), t(&[("soft", 0.6), ("hard", 0.9)]));
}

#[test]
fn capacity_from_the_server_puts_resources_in_real_units() {
    let Some(prom) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain = run(dir.path(), &server_config(&prom.url, ""), &[]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let cfg = server_config(&prom.url, "")
        + "unit = \"cores\"\ncapacity_query = 'capacity_units'\nthresholds = { soft = \"0.9 cores\", hard = \"90%\" }\n";
    let r = run(dir.path(), &cfg, &[]);
    // web/memory has no capacity series: that resource fails, the others are forecast.
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("web/memory") && errors[0].contains("capacity_query: no series"), "{}", r.stderr);
    let res = |v: &Value, name: &str| v["resources"].as_array().unwrap().iter().find(|x| x["name"] == name).cloned();
    assert!(res(&r.json, "web/memory").is_none());
    for (name, capacity) in [("db/disk", 2.0), ("web/cpu", 4.0), ("api/cpu", 4.0)] {
        let (a, b) = (res(&r.json, name).unwrap(), res(&plain.json, name).unwrap());
        assert_eq!(a["settings"]["capacity"], capacity, "{name}");
        assert_eq!(a["settings"]["unit"], "cores", "{name}");
        // Forecast as a fraction of capacity: the plain forecast divided by it.
        let (x, y) = (a["last_value"].as_f64().unwrap(), b["last_value"].as_f64().unwrap());
        assert!((x * capacity - y).abs() < 1e-9, "{name}: {x} vs {y}");
        let means = |v: &Value| -> Vec<f64> {
            v["forecast"].as_array().unwrap().iter().map(|p| p["mean"].as_f64().unwrap()).collect()
        };
        for (p, q) in means(&a).iter().zip(means(&b)) {
            assert!((p * capacity - q).abs() <= 1e-6 * q.abs().max(1e-3), "{name}: {p} x {capacity} vs {q}");
        }
        // "0.9 cores" is 0.9 / capacity; "90%" is 0.9 of capacity.
        let t: Vec<f64> = a["breaches"].as_array().unwrap().iter().map(|b| b["threshold"].as_f64().unwrap()).collect();
        let mut want = vec![0.9 / capacity, 0.9];
        want.sort_by(f64::total_cmp);
        assert_eq!(t, want, "{name}");
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn certificates(dir: &Path) -> Option<()> {
    let openssl = tool("openssl")?;
    let run = |args: &[&str]| {
        let o = Proc::new(&openssl).current_dir(dir).args(args).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=headroom test CA",
    ]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(
        dir.join("srv.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "srv.ext",
    ]);
    Some(())
}

#[test]
fn tls_with_a_custom_ca_and_without_verification() {
    let dir = tempfile::tempdir().unwrap();
    if certificates(dir.path()).is_none() {
        return;
    }
    let Some(openssl) = tool("openssl") else { return };
    let port = free_port();
    // An HTTPS server that answers any request with an HTML status page (not the API).
    let mut server = Server {
        child: Proc::new(openssl)
            .current_dir(dir.path())
            .args(["s_server", "-quiet", "-www", "-cert", "srv.pem", "-key", "srv.key", "-accept", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        url: format!("https://127.0.0.1:{port}"),
        _dir: tempfile::tempdir().unwrap(),
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca = dir.path().join("ca.pem").display().to_string();
    // Trusted through ca_file: TLS works, and the non-API answer is reported as such.
    let r = fault_run(&server.url, &format!("retries = 0\nca_file = \"{ca}\"\n"), &[]);
    one_error_naming(&r, "not a Prometheus API answer");
    // Unknown CA: refused at the TLS layer.
    let r = fault_run(&server.url, "retries = 0\n", &[]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("not a Prometheus API answer"), "an untrusted certificate was accepted: {}", r.stderr);
    // Verification off only when asked.
    let r = fault_run(&server.url, "retries = 0\ninsecure_skip_verify = true\n", &[]);
    one_error_naming(&r, "not a Prometheus API answer");
    let _ = server.child.kill();
}

#[test]
fn a_server_that_dies_mid_answer() {
    // Promises a long body, sends a few bytes, then closes: one clear line, no panic.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"status\":\"succ"
            );
            let _ = conn.flush();
        }
    });
    let r = fault_run(&url, "retries = 1\n", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].contains("resource remote")
            && errors[0].contains("was cut off")
            && errors[0].contains("after 2 attempts"),
        "{}",
        errors[0]
    );
    assert!(!r.stderr.contains("panicked"));
}
