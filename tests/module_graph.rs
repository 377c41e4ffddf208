//! Data flows one way through the pipeline (source -> series -> model -> breach/scenario ->
//! report): no module of `src/` imports, through `crate::` or `super::` paths, a module that
//! imports it back. Test modules are left out. `cargo test --test module_graph -- --nocapture`
//! prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `source/prometheus.rs` -> `source::prometheus`, `source/mod.rs` -> `source`.
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    let parts: Vec<&str> = rel.split('/').filter(|p| *p != "mod").collect();
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `prefix` path in `text`, as the words after it (`crate::source::prometheus::X`).
fn paths<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    text.match_indices(prefix)
        .filter(|(i, _)| *i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            rest[..end].split("::").filter(|w| !w.is_empty()).collect()
        })
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = vec![];
    files(&src, &mut all);
    let rels: Vec<String> =
        all.iter().map(|p| p.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/")).collect();
    let modules: BTreeSet<String> = rels.iter().map(|r| module_of(r)).collect();
    // The longest module path that a use path starts with.
    let resolve = |words: &[&str]| -> Option<String> {
        (1..=words.len()).rev().map(|k| words[..k].join("::")).find(|m| modules.contains(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, rel) in all.iter().zip(&rels) {
        let me = module_of(rel);
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        // `super` of `a/b.rs` is `a`; of `a/mod.rs` it is the parent of `a`.
        let mut parent: Vec<&str> = me.split("::").collect();
        parent.pop();
        let mut targets: Vec<String> = paths(text, "crate::").iter().filter_map(|w| resolve(w)).collect();
        for w in paths(text, "super::") {
            let full: Vec<&str> = parent.iter().copied().chain(w.iter().copied()).collect();
            targets.extend(resolve(&full).or_else(|| (!parent.is_empty()).then(|| parent.join("::"))));
        }
        let entry = edges.entry(me.clone()).or_default();
        entry.extend(targets.into_iter().filter(|t| *t != me && t != "lib" && t != "main"));
    }
    edges
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let edges = graph();
    for (m, to) in &edges {
        println!("{m} -> {}", to.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if n == to {
                    return true;
                }
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        false
    };
    let circles: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(a, to)| to.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| reaches(b, a))
        .collect();
    assert!(circles.is_empty(), "import circles (a imports b, and b reaches a): {circles:?}");
    // The graph is read: the pipeline's stages are there.
    assert!(edges.get("report").is_some_and(|t| t.contains("outcome")), "{edges:?}");
}
