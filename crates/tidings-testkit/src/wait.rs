//! Polling a condition until a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// How long a start or restart may take before the kit gives up and shows the logs.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls `condition` every 50 ms until it holds (true) or `timeout` passes (false).
pub(crate) fn until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
