//! `index.html` in headless Chromium driven by ChromeDriver (W3C WebDriver over HTTP): the
//! search box, the status, group and threshold filters and the `#status=...` URL they keep,
//! on the sample report and on a 1,000-resource one; hovering an interactive plot and
//! reading its tooltip. Screenshots go to `$HEADROOM_SCREENSHOTS` when set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};

mod common;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Option<Driver> {
        let driver = common::tool("chromedriver")?;
        let chromium = common::tool("chromium")?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Process::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium.to_str().unwrap(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }}}});
        let r: Value = serde_json::from_str(
            &http.post(format!("{base}/session")).body(caps.to_string()).send().unwrap().text().unwrap(),
        )
        .unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Some(Driver { child, base, session, http })
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        let v: Value = serde_json::from_str(&req.send().unwrap().text().unwrap()).unwrap();
        assert!(v["value"]["error"].is_null(), "{method} {path}: {v}");
        v["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", json!({"using": "css selector", "value": css}));
        v[ELEMENT].as_str().unwrap().to_string()
    }

    fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": js, "args": []}))
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/clear"), json!({}));
        self.call("POST", &format!("/element/{e}/value"), json!({ "text": text }));
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    /// Moves the real pointer to `dx` pixels right of the element's centre.
    fn hover(&self, css: &str, dx: i64) {
        let e = self.find(css);
        let origin = json!({ ELEMENT: e });
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "origin": origin, "x": dx, "y": 0}]}]}),
        );
    }

    fn visible_rows(&self) -> BTreeSet<String> {
        let v = self.script(
            "return Array.from(document.querySelectorAll('#ranking tbody tr')).filter(function (r) { return !r.hidden; })\
             .map(function (r) { return r.cells[1].textContent; });",
        );
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("HEADROOM_SCREENSHOTS") else { return };
        let b64 = self.call("GET", "/screenshot", json!({}));
        let bytes = decode_base64(b64.as_str().unwrap());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), bytes).unwrap();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = vec![];
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, c)| acc | (u32::from(val(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A resource as `forecasts.json` has it: (name, status, group, thresholds it crosses).
type Row = (String, String, String, Vec<String>);

fn resources(dir: &Path) -> Vec<Row> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("forecasts.json")).unwrap()).unwrap();
    v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap().to_string();
            let group = name.split('/').next().unwrap().to_string();
            let crosses = r["breaches"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| !b["earliest"].is_null())
                .map(|b| b["name"].as_str().unwrap().to_string())
                .collect();
            (name, r["status"].as_str().unwrap().to_string(), group, crosses)
        })
        .collect()
}

fn url(dir: &Path, hash: &str) -> String {
    format!("file://{}{hash}", dir.join("index.html").display())
}

/// Search, a status filter, a group filter, a threshold filter, then the same view from a URL.
fn filters_work(d: &Driver, dir: &Path, search: &str) {
    let all = resources(dir);
    let names =
        |f: &dyn Fn(&Row) -> bool| -> BTreeSet<String> { all.iter().filter(|r| f(r)).map(|r| r.0.clone()).collect() };
    d.open(&url(dir, ""));
    assert_eq!(d.visible_rows().len(), all.len());
    d.type_into("#f-q", search);
    let want = names(&|r| r.0.to_lowercase().contains(search));
    assert!(!want.is_empty() && want.len() < all.len(), "a search that narrows: {search}");
    assert_eq!(d.visible_rows(), want, "search {search:?}");
    d.type_into("#f-q", "");
    for status in ["hard", "soft", "ok"] {
        d.click(&format!("#f-status option[value='{status}']"));
        assert_eq!(d.visible_rows(), names(&|r| r.1 == status), "status {status}");
    }
    d.click("#f-status option[value='']");
    // The group with most at risk, and a threshold on top.
    let group = all.iter().find(|r| r.1 != "ok").map(|r| r.2.clone()).unwrap();
    d.click(&format!("#f-group option[value='{group}']"));
    assert_eq!(d.visible_rows(), names(&|r| r.2 == group), "group {group}");
    d.click("#f-threshold option[value='hard']");
    assert_eq!(d.visible_rows(), names(&|r| r.2 == group && r.3.contains(&"hard".to_string())));
    let hash = d.script("return location.hash;");
    assert_eq!(hash.as_str().unwrap(), format!("#group={}&threshold=hard", group.replace('/', "%2F")));
    // A link with a filter opens that view.
    d.open(&url(dir, "#status=hard"));
    d.script("location.reload(); return 1;");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.script("return document.getElementById('f-status').value;"), "hard");
    assert_eq!(d.visible_rows(), names(&|r| r.1 == "hard"));
    let shown = d.script("return document.getElementById('f-shown').textContent;");
    assert_eq!(shown.as_str().unwrap(), format!("{} of {} resources", names(&|r| r.1 == "hard").len(), all.len()));
}

fn run(args: &[&str]) {
    let o = Command::cargo_bin("headroom").unwrap().args(args).output().unwrap();
    assert!(o.status.code().unwrap_or(9) <= 1, "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_sample_report_filters_keeps_its_view_in_the_url_and_plots_answer_hovering() {
    let Some(d) = Driver::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    run(&[
        "run",
        "--quiet",
        "--no-ledger",
        "--config",
        repo.join("headroom.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    filters_work(&d, &out, "patroni");
    d.open(&url(&out, ""));
    d.screenshot("overview.png");
    // Open the first resource's interactive plot, hover it, read the tooltip.
    d.click("details.explore summary");
    d.script("document.querySelector('details.explore').scrollIntoView(); return 1;");
    d.hover("details.explore .xp svg", -200);
    let tip = d.script("return document.querySelector('details.explore .tip').textContent;");
    let tip = tip.as_str().unwrap();
    assert!(tip.contains("UTC") && tip.contains("observed") && tip.contains("soft"), "history side: {tip}");
    d.hover("details.explore .xp svg", 300);
    let tip = d.script("return document.querySelector('details.explore .tip').textContent;");
    let tip = tip.as_str().unwrap();
    assert!(tip.contains("forecast") && tip.contains("% band") && tip.contains("hard"), "forecast side: {tip}");
    d.screenshot("explore.png");
    // Zoom out to the whole history: the first point is a year back.
    d.click("details.explore button[data-zoom='all']");
    d.hover("details.explore .xp svg", -440);
    let tip = d.script("return document.querySelector('details.explore .tip').textContent;");
    assert!(tip.as_str().unwrap().starts_with("2025-11"), "{tip}");
}

#[test]
fn a_thousand_resource_report_filters_in_the_browser() {
    let Some(d) = Driver::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    run(&[
        "bench",
        "--resources",
        "1000",
        "--days",
        "30",
        "--horizon",
        "14d",
        "--plots",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]);
    filters_work(&d, &out, "svc1/");
    d.screenshot("fleet-1000.png");
}
