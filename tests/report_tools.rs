//! The reports checked by the tools that consume them: the HTML page in headless Chromium
//! (no console errors, hostile names inert, a real screenshot), `headroom.prom` under
//! `promtool check metrics`, and `junit.xml` with hostile names. `.ci/test` installs
//! Chromium and promtool; set HEADROOM_SKIP_TOOLS=1 to skip these on a machine without them.

use std::path::{Path, PathBuf};
use std::process::Command as Proc;

mod common;

use assert_cmd::Command;
use common::tool;

const HOSTILE: [&str; 3] =
    ["<script>document.title='pwned'</script>", "<img src=x onerror=alert(1)>", "quote\"back\\slash & 'apos'"];

/// A fleet whose resource names try to break every output format; returns the output dir.
fn hostile_run(dir: &Path) -> PathBuf {
    let mut csv = String::from("resource,timestamp,value\n");
    for (k, name) in HOSTILE.iter().enumerate() {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        for i in 0..24 * 30 {
            let v = 0.5 + 0.001 * (k as f64 + 1.0) * i as f64 / 24.0 + 0.05 * ((i % 24) as f64 / 4.0).sin();
            csv.push_str(&format!("{quoted},{},{v:.4}\n", 1_767_225_600 + 3600 * i));
        }
    }
    std::fs::write(dir.join("fleet.csv"), csv).unwrap();
    let cfg = dir.join("h.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nbounded = true\nhorizon = \"30d\"\n[sources.f]\nkind = \"files\"\npath = \"fleet.csv\"\n[[resources]]\nsource = \"f\"\n",
    )
    .unwrap();
    let out = dir.join("reports");
    Command::cargo_bin("headroom")
        .unwrap()
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

#[test]
fn html_page_in_headless_chromium() {
    let Some(chromium) = tool("chromium") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = hostile_run(dir.path());
    let page = format!("file://{}", out.join("index.html").display());
    let profile = tempfile::tempdir().unwrap();
    let base = |c: &mut Proc| {
        c.arg(&chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut dump = Proc::new("env");
    base(&mut dump);
    let o = dump
        .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", &page])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let log = String::from_utf8_lossy(&o.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
    assert!(dom.contains("<h1>Capacity forecast</h1>"), "page did not load: {}", &dom[..dom.len().min(500)]);
    assert!(!dom.contains("<title>pwned"), "a resource name ran as script");
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(!dom.contains("<img src=\"x\""), "a resource name became an element");
    // The overview's two charts, then one inline plot per resource.
    let charts = dom.matches("<svg class=\"chart\"").count();
    assert_eq!(charts, 2, "the overview's calendar and headroom charts");
    assert_eq!(dom.matches("<svg").count() - charts, 3, "one inline plot per resource");
    assert!(dom.contains("<section id=\"overview\">"));

    let shot = dir.path().join("page.png");
    let mut cap = Proc::new("env");
    base(&mut cap);
    let status =
        cap.args(["--window-size=1200,900", &format!("--screenshot={}", shot.display()), &page]).output().unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&status.stderr));
    let pix = resvg::tiny_skia::Pixmap::load_png(&shot).unwrap();
    assert_eq!((pix.width(), pix.height()), (1200, 900));
    let mut colours: Vec<[u8; 4]> = pix.pixels().iter().map(|p| [p.red(), p.green(), p.blue(), p.alpha()]).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "screenshot looks blank ({} colours)", colours.len());
}

#[test]
fn prom_file_passes_promtool() {
    let Some(promtool) = tool("promtool") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = hostile_run(dir.path());
    let file = std::fs::File::open(out.join("headroom.prom")).unwrap();
    let o = Proc::new(promtool).args(["check", "metrics"]).stdin(file).output().unwrap();
    assert!(
        o.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("headroom.prom")).unwrap();
    assert!(text.contains("resource=\"quote\\\"back\\\\slash & 'apos'\""), "{text}");
}

#[test]
fn junit_and_markdown_carry_hostile_names_safely() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostile_run(dir.path());
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(!xml.contains("<script>") && !xml.contains("<img"));
    assert!(xml.contains("name=\"&lt;img src=x onerror=alert(1)&gt;\""));
    assert_eq!(xml.matches("<testcase ").count(), 3);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 4, "header + 3 rows: {md}");
}
