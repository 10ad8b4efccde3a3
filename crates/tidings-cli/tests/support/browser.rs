//! Headless Chromium driven by Node scripts in `tests/browser/`: finding
//! the programs, and installing playwright-core there when it is missing.

use super::programs::require_program;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The scripts' directory, with its `package.json`.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

pub struct Tools {
    pub node: PathBuf,
    pub chromium: PathBuf,
}

/// The programs the browser tests need, or `None` when a test should skip.
pub fn tools() -> Option<Tools> {
    let chromium = require_program("chromium")?;
    let node = require_program("node")?;
    // Tests in one binary run in parallel: one npm install at a time.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !Path::new(DIR).join("node_modules/playwright-core").is_dir() {
        let npm = require_program("npm")?;
        let status = Command::new(npm)
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(DIR)
            .stdout(Stdio::null())
            .status()
            .expect("run npm");
        assert!(status.success(), "npm install in {DIR} failed: {status}");
    }
    Some(Tools { node, chromium })
}

/// Runs `script` in `tests/browser/` with `spec` as its argument, the
/// script's stderr on the test's; returns its exit status and stdout.
pub fn run_script(
    tools: &Tools,
    script: &str,
    spec: &serde_json::Value,
) -> (std::process::ExitStatus, String) {
    let output = Command::new(&tools.node)
        .arg(script)
        .arg(spec.to_string())
        .current_dir(DIR)
        .stderr(Stdio::inherit())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status, stdout)
}
