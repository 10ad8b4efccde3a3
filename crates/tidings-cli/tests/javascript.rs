//! The JavaScript side against the hub this crate builds: the client
//! package's tests (`clients/js/test`, node's test runner: publishing,
//! tokens of both generations, subscribing, and in Chromium the subscriber
//! cookie and the React hook) and the Next.js example's end-to-end test
//! (`examples/nextjs/e2e`: `next build`, `next start`, every page driven in
//! Chromium). Each runs as one `node --test` process, given the hub binary
//! in `TIDINGS_BIN`.
//!
//! Needs `node`, `npm` and `chromium` on PATH, and the npm workspaces
//! installed at the repository root (`npm ci` there; done here when
//! missing). Without them the tests skip loudly, or fail under
//! `TIDINGS_TEST_REQUIRE_ALL=1`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use support::programs::require_program;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Tools {
    node: PathBuf,
    chromium: PathBuf,
}

/// The programs the tests need, or `None` when a test should skip.
fn tools() -> Option<Tools> {
    let chromium = require_program("chromium")?;
    let node = require_program("node")?;
    // Both tests share one install: one `npm ci` at a time.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !Path::new(ROOT)
        .join("node_modules/.package-lock.json")
        .is_file()
    {
        let npm = require_program("npm")?;
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(ROOT)
            .status()
            .expect("run npm");
        assert!(status.success(), "npm ci in {ROOT} failed: {status}");
    }
    Some(Tools { node, chromium })
}

/// Runs `node --test` on the `*.test.js` files of `dir` (relative to the
/// repository root), from `cwd`; fails with its output unless every test
/// passed.
fn node_tests(tools: &Tools, cwd: &str, dir: &str) {
    let cwd = Path::new(ROOT).join(cwd);
    let mut files: Vec<PathBuf> = std::fs::read_dir(cwd.join(dir))
        .expect("the test directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".test.js"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no tests in {}", cwd.join(dir).display());
    let output = Command::new(&tools.node)
        .args(["--test", "--test-concurrency=1", "--test-reporter=tap"])
        .args(&files)
        .current_dir(&cwd)
        .env("TIDINGS_BIN", env!("CARGO_BIN_EXE_tidings"))
        .env("CHROMIUM", &tools.chromium)
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .output()
        .expect("run node --test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node --test in {} failed ({}):\n{stdout}\n{stderr}",
        cwd.display(),
        output.status
    );
    // A skipped test (no Chromium for node) would pass unnoticed.
    assert!(
        stdout.contains("\n# skipped 0\n"),
        "tests were skipped:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
}

#[test]
fn client_package() {
    let Some(tools) = tools() else { return };
    node_tests(&tools, "clients/js", "test");
}

#[test]
fn nextjs_example_end_to_end() {
    let Some(tools) = tools() else { return };
    node_tests(&tools, "examples/nextjs", "e2e");
}
