//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// An external tool the tests drive (chromium, promtool, prometheus, ...). `.ci/test`
/// installs them; HEADROOM_SKIP_TOOLS=1 skips (None) on a machine without them. Otherwise a
/// missing tool fails the test with a message saying how to get it.
pub fn tool(name: &str) -> Option<PathBuf> {
    if std::env::var_os("HEADROOM_SKIP_TOOLS").is_some() {
        return None;
    }
    let found =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    assert!(found.is_some(), "{name} not found: run `bash .ci/test` (it installs it) or set HEADROOM_SKIP_TOOLS=1");
    found
}
