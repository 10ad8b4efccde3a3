//! Loopback ports: finding a free one, and telling whether one accepts connections.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Ports handed out come from below Linux's ephemeral range (32768 and up),
/// where the kernel picks the source ports of outgoing connections and the
/// ports of listeners bound to 0: a port found free there could be taken by
/// any connection a test opens before the engine binds it.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this process handed out, so that tests running in parallel never
/// get the same one.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free TCP port on 127.0.0.1, never handed out before by this process.
///
/// The port is free when this returns, not reserved, but it lies outside the
/// range the kernel hands out by itself, so only another process choosing
/// ports the same way could take it first.
pub fn free_port() -> u16 {
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let span = u32::from(PORTS.end - PORTS.start);
    // Start at a place that differs between processes, then walk the range.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for step in 0..span {
        let port = PORTS.start + ((seed.wrapping_add(step.wrapping_mul(7919))) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {PORTS:?}")
}

/// Connects to 127.0.0.1:`port`, giving up quickly: the caller polls.
pub(crate) fn connect(port: u16) -> Option<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    Some(stream)
}
