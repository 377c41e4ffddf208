//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// An external tool the tests drive (chromium, promtool, prometheus, ...). `.ci/test`
/// installs them; HEADROOM_SKIP_TOOLS=1 skips (None) on a developer's machine without them,
/// never in CI (`CI` set): there a missing tool fails the test with a message saying how to
/// get it, so a test that drives nothing cannot pass.
pub fn tool(name: &str) -> Option<PathBuf> {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    if set("HEADROOM_SKIP_TOOLS") && !set("CI") {
        return None;
    }
    let found =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    assert!(found.is_some(), "{name} not found: run `bash .ci/test` (it installs it) or set HEADROOM_SKIP_TOOLS=1");
    found
}
