//! Counting a server's system calls over a phase of a run, with
//! `perf stat` on the syscall tracepoints: how many writes and thread
//! wake-ups each delivery costs, which on loopback decide most of the CPU.
//!
//! Optional: without `perf`, or without permission to trace, the run goes
//! on and the figures are left out.

use std::io::Read;
use std::process::{Child, Command, Stdio};

/// The calls that put bytes on a socket.
const WRITES: [&str; 4] = ["write", "writev", "sendto", "sendmsg"];
/// The call threads sleep and wake each other with.
const WAKES: &str = "futex";

/// A `perf stat` attached to the server's processes.
pub struct Counter {
    perf: Child,
}

/// What was counted between [`Counter::start`] and [`Counter::finish`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub writes: u64,
    pub futexes: u64,
}

impl Counter {
    /// Attaches to every thread of `pids`; `None` if perf cannot.
    pub fn start(pids: &[u32]) -> Option<Counter> {
        if pids.is_empty() {
            return None;
        }
        let events: Vec<String> = WRITES
            .iter()
            .chain([&WAKES])
            .map(|call| format!("syscalls:sys_enter_{call}"))
            .collect();
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let perf = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &events.join(","), "-p"])
            .arg(pids.join(","))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // perf needs a moment to attach before the phase begins.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Some(Counter { perf })
    }

    /// Stops counting; `None` if perf failed or counted nothing.
    pub fn finish(mut self) -> Option<Counts> {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(self.perf.id() as i32, libc::SIGINT) };
        let mut output = String::new();
        self.perf.stderr.take()?.read_to_string(&mut output).ok()?;
        self.perf.wait().ok()?;
        parse(&output)
    }
}

/// Reads `perf stat -x,` lines: `count,unit,event,...`.
fn parse(output: &str) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut seen = false;
    for line in output.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(count), Some(call)) = (
            count.parse::<u64>(),
            event.strip_prefix("syscalls:sys_enter_"),
        ) else {
            continue;
        };
        seen = true;
        if WRITES.contains(&call) {
            counts.writes += count;
        } else if call == WAKES {
            counts.futexes += count;
        }
    }
    seen.then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_write_calls_and_counts_futexes() {
        let output = "\
12,,syscalls:sys_enter_write,100.00,,
30,,syscalls:sys_enter_writev,100.00,,
5,,syscalls:sys_enter_sendto,100.00,,
<not counted>,,syscalls:sys_enter_sendmsg,0.00,,
7,,syscalls:sys_enter_futex,100.00,,
";
        let counts = parse(output).unwrap();
        assert_eq!(counts.writes, 47);
        assert_eq!(counts.futexes, 7);
    }

    #[test]
    fn nothing_counted_is_no_figure() {
        assert!(parse("perf: permission denied\n").is_none());
    }
}
