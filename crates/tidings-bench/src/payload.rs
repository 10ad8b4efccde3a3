//! The data carried by every benchmark event: `<stream> <seq> <unix-nanos>`.
//!
//! `stream` names the sequence a subscriber follows (one topic, or the set
//! of topics one pattern matches), `seq` numbers the events of that stream
//! from zero so the receiver can count losses and duplicates, and the send
//! time gives publish-to-receive latency. Sender and receiver share this
//! machine's clock.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub stream: u32,
    pub seq: u64,
    pub sent_nanos: u64,
}

impl Payload {
    /// A payload stamped with the current time.
    pub fn now(stream: u32, seq: u64) -> Payload {
        Payload {
            stream,
            seq,
            sent_nanos: unix_nanos(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{} {} {}", self.stream, self.seq, self.sent_nanos)
    }

    pub fn decode(data: &[u8]) -> Option<Payload> {
        let text = std::str::from_utf8(data).ok()?;
        let mut parts = text.split(' ');
        let payload = Payload {
            stream: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
            sent_nanos: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(payload)
    }
}

pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = Payload::now(7, 42);
        assert_eq!(Payload::decode(p.encode().as_bytes()), Some(p));
    }

    #[test]
    fn rejects_foreign_data() {
        assert_eq!(Payload::decode(b"hello"), None);
        assert_eq!(Payload::decode(b"1 2 3 4"), None);
    }
}
