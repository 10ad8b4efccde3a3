//! Finding an engine program, and running it as a child process that can be
//! killed, restarted, and whose log explains a failed start.

use std::env;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::wait;

/// Finds `program` on PATH.
///
/// When it is missing, prints `SKIPPED: <program> not found on PATH; install
/// <debian_package>` to stderr and returns None, so the test can return early;
/// but panics when `TIDINGS_TEST_REQUIRE_ALL=1`, so that CI cannot pass by
/// skipping.
pub fn require(program: &str, debian_package: &str) -> Option<PathBuf> {
    if let Some(path) = find(program) {
        return Some(path);
    }
    skip(&format!(
        "{program} not found on PATH; install {debian_package}"
    ));
    None
}

/// Says loudly on stderr that a test is skipped and why, `SKIPPED: <why>`;
/// panics instead when `TIDINGS_TEST_REQUIRE_ALL=1`.
pub(crate) fn skip(why: &str) {
    if env::var_os("TIDINGS_TEST_REQUIRE_ALL").is_some_and(|value| value == "1") {
        panic!("{why} (TIDINGS_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("SKIPPED: {why}");
}

fn find(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    // Debian installs nginx and nats-server in /usr/sbin, which is not on a
    // normal user's PATH.
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// One program run with fixed arguments, its output appended to a log file
/// that outlives restarts. Killed (SIGKILL) when dropped.
pub(crate) struct Process {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `program` and waits until `ready` says it serves; panics with
    /// the log when it exits or does not serve in time. `name` says which
    /// process it is in that message, e.g. "redis-server on port 6379".
    pub(crate) fn start<I, S>(
        name: String,
        program: &Path,
        args: I,
        log: PathBuf,
        ready: impl FnMut() -> bool,
    ) -> Process
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut process = Process {
            name,
            program: program.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            log,
            child: None,
        };
        process.spawn(ready);
        process
    }

    /// SIGKILL, then waits for the exit so that the port and files are released.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only when the child has already exited, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process if it runs, then starts it again as [`Process::start`] does.
    pub(crate) fn restart(&mut self, ready: impl FnMut() -> bool) {
        self.kill();
        self.spawn(ready);
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Panics saying `what` went wrong, followed by the process's log.
    pub(crate) fn fail(&self, what: &str) -> ! {
        panic!("{} {what}\n{}", self.name, self.log_text())
    }

    /// The log, headed by the process's name, for failure messages.
    pub(crate) fn log_text(&self) -> String {
        let log =
            fs::read_to_string(&self.log).unwrap_or_else(|error| format!("(unreadable: {error})"));
        format!(
            "--- log of {} ({}) ---\n{log}",
            self.name,
            self.log.display()
        )
    }

    fn spawn(&mut self, mut ready: impl FnMut() -> bool) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|error| panic!("open {}: {error}", self.log.display()));
        let stdout = log.try_clone().expect("duplicate the log file handle");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "{}: cannot run {}: {error}",
                    self.name,
                    self.program.display()
                )
            });
        self.child = Some(child);

        // A process that exits while starting fails at once, not at the timeout.
        let mut exited = None;
        let served = wait::until(wait::START_TIMEOUT, || {
            exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            exited.is_some() || ready()
        });
        if let Some(status) = exited {
            self.child = None;
            self.fail(&format!("exited ({status}) before serving"));
        }
        if !served {
            self.kill();
            self.fail(&format!("did not serve within {:?}", wait::START_TIMEOUT));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
