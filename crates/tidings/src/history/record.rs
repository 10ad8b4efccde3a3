//! The stored form of an event, shared by every store: the durable file
//! and the log engines keep the same bytes, so an event reads back the same
//! from any of them.

use crate::event::Event;
use bytes::Bytes;

/// Version of the record layout, first byte of every record.
const RECORD_FORMAT: u8 = 1;
const PRIVATE: u8 = 1;

/// Record layout, little-endian: format (1 byte), append time in Unix
/// milliseconds (8), flags (1), id length (4) and id, topic count (4) and
/// each topic as length (4) and bytes, then the frame to the end.
pub(crate) fn encode(event: &Event, appended_ms: u64) -> Vec<u8> {
    let topics: usize = event.topics.iter().map(|t| 4 + t.len()).sum();
    let mut out = Vec::with_capacity(18 + event.id.len() + topics + event.frame.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&appended_ms.to_le_bytes());
    out.push(if event.private { PRIVATE } else { 0 });
    put_str(&mut out, &event.id);
    out.extend_from_slice(&(event.topics.len() as u32).to_le_bytes());
    for topic in event.topics.iter() {
        put_str(&mut out, topic);
    }
    out.extend_from_slice(&event.frame);
    out
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The front of a record: what trimming needs without decoding the rest.
pub(crate) struct RecordHead {
    pub appended_ms: u64,
    pub id: Box<str>,
    pub len: u64,
}

impl RecordHead {
    pub fn read(record: &[u8]) -> Option<RecordHead> {
        let mut reader = Reader(record);
        let (appended_ms, _, id) = reader.head()?;
        Some(RecordHead {
            appended_ms,
            id: id.into(),
            len: record.len() as u64,
        })
    }
}

pub(crate) fn decode(seq: u64, record: &[u8]) -> Option<Event> {
    let mut reader = Reader(record);
    let (_, flags, id) = reader.head()?;
    let count = reader.u32()?;
    let topics = (0..count)
        .map(|_| reader.str().map(Box::from))
        .collect::<Option<Box<[Box<str>]>>>()?;
    Some(Event {
        seq,
        id: id.into(),
        topics,
        private: flags & PRIVATE != 0,
        frame: Bytes::copy_from_slice(reader.0),
    })
}

/// Reads a record front to back; `None` on anything malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// Format, append time, flags and id.
    fn head(&mut self) -> Option<(u64, u8, &'a str)> {
        if self.take(1)? != [RECORD_FORMAT] {
            return None;
        }
        let appended_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let flags = self.take(1)?[0];
        Some((appended_ms, flags, self.str()?))
    }
}
