//! Capacity issues end to end: the real binary and its GitLab client against a local server
//! that implements the parts of GitLab's REST API v4 used (`tests/gitlab/mock_gitlab.py`,
//! checking method, path, query and body shapes). One fleet run after run: create, an
//! unchanged rerun, a moved crossing, three related resources in one issue, rate limiting
//! and a 5xx, close after clean runs, reopen, keep-open respected, pagination, and a dry run
//! whose plan is exactly what the real run then sends. Then the failures: no server, a wrong
//! token echoed back, a missing token variable, a Retry-After too long to wait.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use assert_cmd::Command;
use serde_json::{Value, json};

mod common;

const DAY: i64 = 86_400;
/// 2026-06-01T00:00:00Z: the first run's as-of.
const D0: i64 = 1_780_272_000;
const TOKEN: &str = "glpat-TestSecret0123456789abcdef";
const PROJECT: &str = "infra/capacity";

struct Mock {
    child: Child,
    url: String,
    http: reqwest::blocking::Client,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    fn start() -> Option<Mock> {
        let python = common::tool("python3")?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::new();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gitlab/mock_gitlab.py");
        let mut child = Process::new(python)
            .args([script.to_str().unwrap(), PROJECT, "42", TOKEN])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mock GitLab");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().expect("the mock prints its port");
        Some(Mock { child, url: format!("http://127.0.0.1:{port}"), http })
    }

    fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}/_mock/{path}", self.url)).body(body.to_string()).send().unwrap();
        serde_json::from_str(&r.text().unwrap()).unwrap()
    }

    fn requests(&self) -> Vec<Value> {
        let r = self.http.get(format!("{}/_mock/requests", self.url)).send().unwrap();
        serde_json::from_str(&r.text().unwrap()).unwrap()
    }

    fn state(&self) -> Value {
        let r = self.http.get(format!("{}/_mock/issues", self.url)).send().unwrap();
        serde_json::from_str(&r.text().unwrap()).unwrap()
    }

    /// Our issues (those with a marker), by iid.
    fn ours(&self) -> Vec<Value> {
        let s = self.state();
        let mut v: Vec<Value> = s["issues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["description"].as_str().unwrap_or("").contains("<!-- headroom-issue "))
            .cloned()
            .collect();
        v.sort_by_key(|i| i["iid"].as_u64());
        v
    }

    fn notes(&self) -> Vec<String> {
        self.state()["notes"].as_array().unwrap().iter().map(|n| n["body"].as_str().unwrap().to_string()).collect()
    }
}

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How the `web` service's three resources look in a run.
#[derive(Clone, Copy)]
enum Web {
    /// Rising `slope` per day to 0.70 at the as-of: the hard threshold (0.90) in 0.2/slope days.
    Rising(f64),
    Flat,
}

/// Thirty days hourly up to `end` for web/{cpu,shard_cpu,single_node_cpu} and db/disk, in a
/// long CSV whose label columns (service, component) name the resources.
fn write_fleet(dir: &Path, end: i64, web: Web) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("timestamp,service,component,value\n");
    let members =
        [("web", "cpu", 0.0), ("web", "shard_cpu", -0.02), ("web", "single_node_cpu", -0.04), ("db", "disk", 0.0)];
    for (service, component, offset) in members {
        for h in 0..(30 * 24) {
            let t = end - (30 * 24 - 1 - h) * 3600;
            let days_before = (end - t) as f64 / DAY as f64;
            let wiggle = 0.01 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            let v = match (service, web) {
                ("web", Web::Rising(slope)) => 0.70 + offset - slope * days_before,
                _ => 0.30 + offset,
            } + wiggle;
            csv.push_str(&format!("{},{service},{component},{v:.5}\n", rfc(t)));
        }
    }
    std::fs::write(data.join("fleet.csv"), csv).unwrap();
}

fn config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"[defaults]
history = "30d"
step = "1h"
horizon = "60d"
model = "linear"
bounded = true
thresholds = {{ soft = 0.85, hard = 0.90 }}
alert_within = "30d"

[sources.f]
kind = "files"
path = "data/*.csv"

[[resources]]
source = "f"

[issues]
kind = "gitlab"
url = "{url}"
project = "{PROJECT}"
token_env = "TEST_GITLAB_TOKEN"
group_by = "{{service}}"
close_after = 2
report_url = "https://infra.example.com/capacity"
{extra}
"#
    );
    let path = dir.join("headroom.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, as_of: i64, flag: &str, token: Option<&str>) -> Run {
    let mut cmd = Command::cargo_bin("headroom").unwrap();
    cmd.current_dir(dir).env_remove("TEST_GITLAB_TOKEN").args([
        "run",
        "--no-ledger",
        "--as-of",
        &rfc(as_of),
        "--config",
        "headroom.toml",
        "--out",
        "reports",
        flag,
    ]);
    if let Some(t) = token {
        cmd.env("TEST_GITLAB_TOKEN", t);
    }
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The requests after the first `from` that change something: (method, path).
fn changes(reqs: &[Value], from: usize) -> Vec<(String, String)> {
    reqs[from..]
        .iter()
        .filter(|r| r["method"] != "GET")
        .map(|r| (r["method"].as_str().unwrap().to_string(), r["path"].as_str().unwrap().to_string()))
        .collect()
}

/// A dry run's planned calls as (method, path), in order.
fn planned_calls(plan: &Value) -> Vec<(String, String)> {
    let base = format!("/api/v4/projects/{}", PROJECT.replace('/', "%2F"));
    let mut out = vec![];
    for p in plan["planned"].as_array().unwrap() {
        for c in p["calls"].as_array().unwrap() {
            let (m, path) = match c["call"].as_str().unwrap() {
                "upload" => ("POST", "/uploads".to_string()),
                "create" => ("POST", "/issues".to_string()),
                "edit" => ("PUT", format!("/issues/{}", c["iid"])),
                "note" => ("POST", format!("/issues/{}/notes", c["iid"])),
                other => panic!("unknown call {other}"),
            };
            out.push((m.to_string(), format!("{base}{path}")));
        }
    }
    out
}

/// A dry run (JSON) then the real run at the same as-of: the real run sends exactly the
/// planned calls. Returns the plan and the real run.
fn planned_then_run(mock: &Mock, dir: &Path, as_of: i64) -> (Value, Run) {
    mock.control("clock", json!({ "now": rfc(as_of) }));
    let before = mock.requests().len();
    let dry = run(dir, as_of, "--issues-dry-run=json", Some(TOKEN));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(changes(&mock.requests(), before).is_empty(), "a dry run changes nothing");
    let plan: Value = serde_json::from_str(&dry.stdout).unwrap();
    let before = mock.requests().len();
    let real = run(dir, as_of, "--issues", Some(TOKEN));
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert!(!real.stderr.contains(TOKEN) && !dry.stdout.contains(TOKEN));
    let sent: Vec<(String, String)> = changes(&mock.requests(), before);
    // Retried calls (429, 5xx) appear once per attempt; compare the calls that succeeded.
    let succeeded: Vec<(String, String)> = mock.requests()[before..]
        .iter()
        .filter(|r| r["method"] != "GET" && r["status"].as_u64().is_some_and(|s| s < 300))
        .map(|r| (r["method"].as_str().unwrap().to_string(), r["path"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(succeeded, planned_calls(&plan), "the dry run's plan is what the real run sent (all sent: {sent:?})");
    (plan, real)
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["action"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn issues_follow_the_forecasts_run_after_run() {
    let Some(mock) = Mock::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    config(dir, &mock.url, "");
    // 230 other issues under the label: the list takes three pages.
    let others: Vec<Value> =
        (0..230).map(|k| json!({"title": format!("other {k}"), "labels": ["capacity-planning"]})).collect();
    mock.control("seed", json!({ "issues": others }));

    // 1. Three related resources cross: one issue for their group, with the plot uploaded.
    write_fleet(dir, D0, Web::Rising(0.01));
    let (plan, _) = planned_then_run(&mock, dir, D0);
    assert_eq!(actions(&plan), [("web".to_string(), "create".to_string())]);
    let pages: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET")
        .map(|r| r["query"]["page"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(pages.contains(&"3".to_string()) && !pages.contains(&"4".to_string()), "{pages:?}");
    let get = mock.requests().into_iter().find(|r| r["method"] == "GET").unwrap();
    assert_eq!(get["query"]["labels"], "capacity-planning");
    assert_eq!(get["query"]["state"], "all");
    assert_eq!(get["query"]["per_page"], "100");
    let upload = mock.requests().into_iter().find(|r| r["path"].as_str().unwrap().ends_with("/uploads")).unwrap();
    assert!(upload["content_type"].as_str().unwrap().starts_with("multipart/form-data"));
    assert_eq!(upload["upload"]["png"], true, "the plot travels as a PNG file: {upload}");
    let ours = mock.ours();
    assert_eq!(ours.len(), 1);
    let issue = &ours[0];
    let labels: Vec<&str> = issue["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(labels, ["capacity-planning", "capacity::hard"]);
    assert_eq!(issue["title"], "Capacity: web forecast to cross its hard threshold");
    let d = issue["description"].as_str().unwrap();
    for want in [
        "web/cpu",
        "web/shard_cpu",
        "web/single_node_cpu",
        "![",
        "/uploads/",
        "Last date to act",
        "https://infra.example.com/capacity/index.html",
        "Probability",
    ] {
        assert!(d.contains(want), "description lacks {want:?}:\n{d}");
    }
    assert!(!d.contains("db/disk"), "db is another group");
    assert!(!d.contains("headroom-plot"), "the plot slot is filled");
    let iid = issue["iid"].as_u64().unwrap();

    // 2. The same run again: nothing is sent that changes anything.
    let before = mock.requests().len();
    let again = run(dir, D0, "--issues", Some(TOKEN));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(changes(&mock.requests(), before).is_empty(), "{:?}", changes(&mock.requests(), before));

    // 3. A day later, the same trend: the description is updated, no comment.
    write_fleet(dir, D0 + DAY, Web::Rising(0.01));
    let (plan, _) = planned_then_run(&mock, dir, D0 + DAY);
    assert_eq!(actions(&plan), [("web".to_string(), "update".to_string())]);
    assert!(mock.notes().is_empty());

    // 4. Faster growth: the crossing comes ~10 days earlier: one comment, through a 429.
    write_fleet(dir, D0 + 2 * DAY, Web::Rising(0.025));
    mock.control("faults", json!([{"method": "POST", "path": "/notes", "status": 429, "retry_after": 1}]));
    let (plan, _) = planned_then_run(&mock, dir, D0 + 2 * DAY);
    assert_eq!(actions(&plan), [("web".to_string(), "comment".to_string())]);
    let notes = mock.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    println!("the comment on a moved crossing:\n{}", notes[0]);
    assert!(notes[0].contains("moved") && notes[0].contains("earlier"), "{}", notes[0]);
    let limited = mock.requests().iter().filter(|r| r["status"] == 429).count();
    assert_eq!(limited, 1, "the 429 was waited out and the note sent once");

    // 5. Flat: the level drops (one comment), through a 502 on the edit.
    write_fleet(dir, D0 + 3 * DAY, Web::Flat);
    mock.control("faults", json!([{"method": "PUT", "path": "/issues/", "status": 502}]));
    let (plan, _) = planned_then_run(&mock, dir, D0 + 3 * DAY);
    assert_eq!(actions(&plan), [("web".to_string(), "comment".to_string())]);
    assert!(mock.notes()[1].contains("no crossing"), "{}", mock.notes()[1]);
    assert_eq!(mock.ours()[0]["state"], "opened", "one clean run does not close (close_after = 2)");

    // 6. The second clean run closes it, with a comment.
    write_fleet(dir, D0 + 4 * DAY, Web::Flat);
    let (plan, _) = planned_then_run(&mock, dir, D0 + 4 * DAY);
    assert_eq!(actions(&plan), [("web".to_string(), "close".to_string())]);
    let ours = mock.ours();
    assert_eq!(ours[0]["state"], "closed");
    assert!(!ours[0]["labels"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().starts_with("capacity::")));
    assert!(mock.notes()[2].contains("Closing"));

    // 7. Still flat: a closed issue without a crossing gets nothing.
    write_fleet(dir, D0 + 5 * DAY, Web::Flat);
    let (plan, _) = planned_then_run(&mock, dir, D0 + 5 * DAY);
    assert!(actions(&plan).is_empty(), "{plan}");

    // 8. The breach returns two days after closing: the same issue is reopened.
    write_fleet(dir, D0 + 6 * DAY, Web::Rising(0.01));
    let (plan, _) = planned_then_run(&mock, dir, D0 + 6 * DAY);
    assert_eq!(actions(&plan), [("web".to_string(), "reopen".to_string())]);
    let ours = mock.ours();
    assert_eq!(ours.len(), 1, "no second issue");
    assert_eq!(ours[0]["state"], "opened");
    assert_eq!(ours[0]["iid"].as_u64(), Some(iid));
    assert!(mock.notes()[3].contains("Reopened"));

    // 9. A person labels it keep-open: a moved forecast then leaves it alone.
    mock.control("person", json!({"iid": iid, "add_labels": "keep-open"}));
    write_fleet(dir, D0 + 7 * DAY, Web::Rising(0.02));
    mock.control("clock", json!({ "now": rfc(D0 + 7 * DAY) }));
    let before = mock.requests().len();
    let kept = run(dir, D0 + 7 * DAY, "--issues", Some(TOKEN));
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert!(changes(&mock.requests(), before).is_empty(), "keep-open: nothing edited or closed");
    assert!(kept.stderr.contains("1 left alone"), "{}", kept.stderr);

    // The Markdown dry run names the action and the reason.
    let md = run(dir, D0 + 7 * DAY, "--issues-dry-run", Some(TOKEN));
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(md.stdout.contains("## leave #") && md.stdout.contains("keep-open"), "{}", md.stdout);
}

#[test]
fn a_failing_tracker_costs_one_line_and_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_fleet(dir, D0, Web::Rising(0.01));
    // No server on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config(dir, &format!("http://127.0.0.1:{port}"), "retries = 1\ntimeout = \"2s\"");
    let r = run(dir, D0, "--issues", Some(TOKEN));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("[issues] GitLab") && errors[0].contains("cannot connect"), "{}", errors[0]);
    assert!(dir.join("reports/index.html").is_file() && dir.join("reports/forecasts.json").is_file());

    // The token variable unset: named, nothing sent.
    let r = run(dir, D0, "--issues", None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("TEST_GITLAB_TOKEN (token_env) is not set"), "{}", r.stderr);

    let Some(mock) = Mock::start() else { return };
    config(dir, &mock.url, "retries = 1");
    // A wrong token that the server echoes back: masked.
    let wrong = "glpat-WrongSecretXYZ9876543210";
    let r = run(dir, D0, "--issues", Some(wrong));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong), "the token leaked: {}", r.stderr);
    // A dry run that could not read the tracker prints no plan (it would be an empty one).
    let r = run(dir, D0, "--issues-dry-run=json", Some(wrong));
    assert_eq!(r.code, 2);
    assert!(r.stdout.trim().is_empty(), "{}", r.stdout);
    for f in ["index.html", "summary.md", "forecasts.json", "headroom.prom"] {
        let text = std::fs::read_to_string(dir.join("reports").join(f)).unwrap();
        assert!(!text.contains(wrong), "{f} holds the token");
    }

    // A Retry-After longer than headroom waits: one line, the run still reported.
    mock.control("faults", json!([{"method": "GET", "path": "/issues", "status": 429, "retry_after": 3600}]));
    let r = run(dir, D0, "--issues", Some(TOKEN));
    assert_eq!(r.code, 2);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains("429") && errors[0].contains("gave up"), "{}", errors[0]);

    // A project that is not there: 404 named, once.
    let other = config(dir, &mock.url, "");
    let text = std::fs::read_to_string(&other).unwrap().replace(PROJECT, "infra/nope");
    std::fs::write(&other, text).unwrap();
    let r = run(dir, D0, "--issues", Some(TOKEN));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("HTTP 404") && r.stderr.contains("Project Not Found"), "{}", r.stderr);
}
