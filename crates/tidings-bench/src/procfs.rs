//! Reading memory and CPU use of processes from /proc.
//!
//! The servers under test are separate processes (nginx is a master plus
//! workers, Pushpin a runner plus several daemons), so every figure is a sum
//! over a set of PIDs, optionally widened to their descendants at sampling
//! time.

use std::fs;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// A set of processes measured together.
#[derive(Debug, Clone)]
pub struct ProcSet {
    roots: Vec<u32>,
    with_children: bool,
}

/// One reading of a [`ProcSet`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Resident set size in bytes, summed.
    pub rss: u64,
    /// User plus system CPU time, summed.
    pub cpu: Duration,
    /// The user-space part of `cpu`.
    pub user: Duration,
}

impl ProcSet {
    pub fn new(roots: Vec<u32>, with_children: bool) -> ProcSet {
        ProcSet {
            roots,
            with_children,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Reads every process of the set now. A process that has exited is
    /// skipped rather than failing the run: its CPU time is lost from the
    /// sum, which only matters if a server forks per request (none does).
    pub fn sample(&self) -> Sample {
        let mut total = Sample::default();
        for pid in self.pids() {
            if let (Ok(rss), Ok(cpu)) = (rss_of(pid), cpu_of(pid)) {
                total.rss += rss;
                total.cpu += cpu.user + cpu.system;
                total.user += cpu.user;
            }
        }
        total
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids = self.roots.clone();
        if self.with_children {
            let parents = parent_map();
            // Breadth-first over the process tree, bounded by its size.
            let mut i = 0;
            while i < pids.len() {
                let parent = pids[i];
                pids.extend(
                    parents
                        .iter()
                        .filter(|&&(_, ppid)| ppid == parent)
                        .map(|&(pid, _)| pid),
                );
                i += 1;
            }
        }
        pids
    }
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Threads of a process.
pub fn threads(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Threads"))
}

/// Resident set size of this process, in bytes.
pub fn self_rss() -> u64 {
    rss_of_path("/proc/self/status").unwrap_or(0)
}

/// CPU time used by this process so far.
pub fn self_cpu() -> Duration {
    cpu_of_path("/proc/self/stat").map_or(Duration::ZERO, |cpu| cpu.user + cpu.system)
}

/// CPU time of one process, split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: Duration,
    system: Duration,
}

fn rss_of(pid: u32) -> io::Result<u64> {
    rss_of_path(&format!("/proc/{pid}/status"))
}

fn rss_of_path(path: &str) -> io::Result<u64> {
    let status = fs::read_to_string(path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

fn cpu_of(pid: u32) -> io::Result<Cpu> {
    cpu_of_path(&format!("/proc/{pid}/stat"))
}

fn cpu_of_path(path: &str) -> io::Result<Cpu> {
    let stat = fs::read_to_string(path)?;
    let fields = fields_after_comm(&stat)?;
    // utime and stime are fields 14 and 15 of stat(5); `fields` starts at 3.
    let time = |i: usize| {
        let ticks = fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks())
    };
    Ok(Cpu {
        user: time(11),
        system: time(12),
    })
}

/// The fields after `comm`, which may itself hold spaces and parentheses.
fn fields_after_comm(stat: &str) -> io::Result<Vec<&str>> {
    let close = stat
        .rfind(')')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed stat"))?;
    Ok(stat[close + 1..].split_whitespace().collect())
}

fn parent_map() -> Vec<(u32, u32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = fields_after_comm(&stat).ok()?.get(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            ticks as u64
        } else {
            100
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_parens_is_skipped() {
        let stat = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0";
        let fields = fields_after_comm(stat).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "1");
        assert_eq!(fields[11], "7");
        assert_eq!(fields[12], "3");
    }

    #[test]
    fn own_process_is_readable() {
        let me = ProcSet::new(vec![std::process::id()], false);
        assert!(me.sample().rss > 0);
        assert!(open_fds(std::process::id()).unwrap() >= 3);
        assert!(threads(std::process::id()).unwrap() >= 1);
    }
}
