//! Outside programs that some tests need (a browser, node). Finding them, and
//! skipping loudly or failing under `TIDINGS_TEST_REQUIRE_ALL=1` when one is
//! missing, is the test kit's: see [`tidings_testkit::require`].

use std::path::PathBuf;

/// The program's path, or `None` after a loud skip message; panics instead
/// when `TIDINGS_TEST_REQUIRE_ALL=1`.
pub fn require_program(name: &str) -> Option<PathBuf> {
    tidings_testkit::require(name, debian_package(name))
}

/// The Debian package that installs `program`, for the skip message.
fn debian_package(program: &str) -> &str {
    match program {
        "node" => "nodejs",
        other => other,
    }
}
