//! Raising this process's open-file limit.
//!
//! Every subscription holds one socket, so the soft RLIMIT_NOFILE (often
//! 1,024) is the first wall a load generator hits. The hard limit is as far
//! as an unprivileged process may go; anything beyond needs the system
//! changes described in docs/benchmarks.md.

use std::io;

/// Sets the soft open-file limit to the hard limit and returns the new value.
pub fn raise_nofile() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; the kernel only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}
