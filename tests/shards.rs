//! `run --shard I/N` on every shard, then `merge`: the same files, byte for byte, as one
//! unsharded single-threaded run (apart from the wall-clock `generated_at`), for a small
//! fleet (plots inline) and one past 200 resources (plots linked: crossing ones plus the 50
//! with least headroom).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs headroom in `cwd` (so `--out reports` names the same folder in every report).
fn headroom(cwd: &Path, args: &[&str]) -> (i32, String) {
    headroom_with(cwd, args, None)
}

fn headroom_with(cwd: &Path, args: &[&str], threads: Option<&str>) -> (i32, String) {
    let mut c = Command::cargo_bin("headroom").unwrap();
    if let Some(n) = threads {
        c.env("RAYON_NUM_THREADS", n);
    }
    let o = c.current_dir(cwd).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Every file under `dir`, with the run's wall-clock time replaced.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("forecasts.json")).unwrap()).unwrap();
    let stamp = json["generated_at"].as_str().unwrap().to_string();
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mut bytes = std::fs::read(&p).unwrap();
            if [".html", ".json", ".xml", ".md"].iter().any(|x| rel.ends_with(x)) {
                bytes = String::from_utf8(bytes).unwrap().replace(&stamp, "GENERATED").into_bytes();
            }
            out.insert(rel, bytes);
        }
    }
    out
}

fn shard_then_merge(config: &Path, n: usize, extra: &[&str]) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let cfg = config.to_str().unwrap();
    let whole = tempfile::tempdir().unwrap();
    let mut args = vec!["run", "--quiet", "--no-ledger", "--config", cfg, "--out", "reports"];
    args.extend(extra);
    // One thread here, all cores in the shards: the numbers must not depend on it.
    let (code, err) = headroom_with(whole.path(), &args, Some("1"));
    assert_eq!(code, 0, "{err}");
    let parts = tempfile::tempdir().unwrap();
    let mut dirs = vec![];
    for i in 1..=n {
        let (shard, out) = (format!("{i}/{n}"), format!("shard{i}"));
        let mut args = vec!["run", "--quiet", "--no-ledger", "--config", cfg, "--out", &out, "--shard", &shard];
        args.extend(extra);
        let (code, err) = headroom(parts.path(), &args);
        assert_eq!(code, 0, "{err}");
        assert!(parts.path().join(&out).join("shard.json").is_file());
        dirs.push(out);
    }
    let mut args = vec!["merge", "--quiet", "--out", "reports"];
    args.extend(dirs.iter().map(String::as_str));
    let (code, err) = headroom(parts.path(), &args);
    assert_eq!(code, 0, "{err}");
    (files(&whole.path().join("reports")), files(&parts.path().join("reports")))
}

fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in a {
        assert!(bytes == &b[name], "{name} differs between the unsharded run and the merged shards");
    }
}

#[test]
fn merged_shards_equal_one_run_on_the_sample() {
    let (whole, merged) = shard_then_merge(&repo().join("headroom.toml"), 3, &[]);
    // 21 resources: PNG, SVG and interactive-view data each.
    assert!(whole.keys().filter(|k| k.starts_with("plots/")).count() == 63, "{:?}", whole.keys());
    assert_same(&whole, &merged);
}

#[test]
fn merged_shards_equal_one_run_past_200_resources() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = headroom::sample::synthetic_fleet(230, 21, 7);
    headroom::source::file::write_long_parquet(&dir.path().join("fleet.parquet"), &fleet).unwrap();
    // One resource that cannot be forecast: its error is reported once, in its place.
    std::fs::write(dir.path().join("broken.csv"), "timestamp,value\n2026-01-01T00:00:00Z,oops\n").unwrap();
    let cfg = dir.path().join("h.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nbounded = true\nhorizon = \"3d\"\nhistory = \"21d\"\nthresholds = { soft = 0.8, hard = 0.9 }\n\
         [sources.f]\nkind = \"files\"\npath = \"*.parquet\"\n[[resources]]\nsource = \"f\"\n\
         [sources.b]\nkind = \"files\"\npath = \"broken.csv\"\n[[resources]]\nsource = \"b\"\n\
         [scenarios.fast]\ngrowth = 2.0\nresources = [\"svc1/*\"]\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    // The broken file makes every run exit 2; the rest must still agree.
    // The whole run reads the fleet file a chunk of resources at a time (as files of more
    // than two million rows are read); the shards read it at once.
    let whole = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("headroom").unwrap();
    let o = c
        .env("HEADROOM_DEFER_ROWS", "0")
        .current_dir(whole.path())
        .args(["run", "--quiet", "--config", cfg, "--out", "reports"])
        .output()
        .unwrap();
    let (code, err) = (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned());
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    assert!(err.contains("broken.csv") && err.contains("oops"), "{err}");
    let parts = tempfile::tempdir().unwrap();
    for i in 1..=2 {
        let (shard, out) = (format!("{i}/2"), format!("s{i}"));
        let (code, _) = headroom(parts.path(), &["run", "--quiet", "--config", cfg, "--out", &out, "--shard", &shard]);
        assert_eq!(code, 2);
    }
    let (code, err) = headroom(parts.path(), &["merge", "--quiet", "--out", "reports", "s1", "s2"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    assert!(err.contains("broken.csv") && err.contains("oops"), "{err}");
    let (a, b) = (files(&whole.path().join("reports")), files(&parts.path().join("reports")));
    // Linked plots: crossing resources plus the 50 with least headroom, fewer than all 230.
    let plots = a.keys().filter(|k| k.ends_with(".svg")).count();
    assert!((50..230).contains(&plots), "{plots}");
    let html = String::from_utf8_lossy(&a["index.html"]).into_owned();
    assert!(html.contains("<img src=\"plots/"), "plots are linked past 200 resources");
    assert_same(&a, &b);
    // A shard missing, or given twice, is refused.
    let (code, err) = headroom(parts.path(), &["merge", "--out", "r2", "s1"]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 2/2 is missing"), "{err}");
    let (code, err) = headroom(parts.path(), &["merge", "--out", "r2", "s1", "s1"]);
    assert_eq!(code, 2);
    assert!(err.contains("repeats"), "{err}");
}

#[test]
fn shard_flag_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0/3", "4/3", "x", "1/0"] {
        let (code, err) = headroom(dir.path(), &["run", "--shard", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(err.contains("expected I/N"), "{bad}: {err}");
    }
}
