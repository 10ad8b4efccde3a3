//! Outside programs that some tests need (a browser now; redis-server or
//! nats-server later). A developer without them still gets a passing run,
//! but a loud one; CI sets `TIDINGS_TEST_REQUIRE_ALL=1` so that a missing
//! program fails instead of quietly skipping the test.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const REQUIRE_ALL: &str = "TIDINGS_TEST_REQUIRE_ALL";

/// The program's path on `PATH`, or `None` after a loud skip message.
/// Panics instead when `TIDINGS_TEST_REQUIRE_ALL=1`.
pub fn require_program(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_on_path(name) {
        return Some(path);
    }
    if std::env::var(REQUIRE_ALL).as_deref() == Ok("1") {
        panic!("{name} not found on PATH, and {REQUIRE_ALL}=1 makes that a failure");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\nSKIPPED: {name} not found on PATH; this test did not run. \
         Install {name}, or set {REQUIRE_ALL}=1 to make this a failure.\n********\n"
    );
    None
}

/// The first executable file called `name` in a `PATH` directory.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
