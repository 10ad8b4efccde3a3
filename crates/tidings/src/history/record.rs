//! The stored form of an event, shared by every store: the durable file
//! and the log engines keep the same bytes, so an event reads back the same
//! from any of them.

use crate::event::{Event, PresenceNote};
use bytes::Bytes;

/// Version of the record layout, first byte of every record. Format 2 is
/// format 1 followed by a CRC-32 of everything before it: redb does not
/// check its pages on a normal read, so a flipped bit on disk would
/// otherwise reach subscribers as a changed event. Format 1 records (files
/// written before it) are still read.
const RECORD_FORMAT: u8 = 2;
const UNCHECKED_FORMAT: u8 = 1;
const CHECKSUM: usize = 4;
const PRIVATE: u8 = 1;
/// Presence notes: a started subscription's document and node, or an alive
/// node, follow the topics.
const STARTED: u8 = 2;
const ENDED: u8 = 4;
const ALIVE: u8 = 8;
/// With `ALIVE`: the node's figures follow its id. A reader that does not
/// know this bit (versions before it) reads the figures as the start of the
/// frame, which an alive note never sends anyone: the note stays a plain
/// alive note to it, so the layout needs no new format.
const FIGURES: u8 = 16;

/// Record layout, little-endian: format (1 byte), append time in Unix
/// milliseconds (8), flags (1), id length (4) and id, topic count (4) and
/// each topic as length (4) and bytes, then for a presence note its strings
/// (a started subscription's document and node, an alive node and, with
/// `FIGURES`, its figures) each as length (4) and bytes, then the frame to
/// the end.
pub(crate) fn encode(event: &Event, appended_ms: u64) -> Vec<u8> {
    let topics: usize = event.topics.iter().map(|t| 4 + t.len()).sum();
    let mut out = Vec::with_capacity(18 + event.id.len() + topics + event.frame.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&appended_ms.to_le_bytes());
    let note = match &event.presence {
        None => 0,
        Some(PresenceNote::Started { .. }) => STARTED,
        Some(PresenceNote::Ended) => ENDED,
        Some(PresenceNote::Alive { figures: None, .. }) => ALIVE,
        Some(PresenceNote::Alive {
            figures: Some(_), ..
        }) => ALIVE | FIGURES,
    };
    out.push(if event.private { PRIVATE } else { 0 } | note);
    put_str(&mut out, &event.id);
    out.extend_from_slice(&(event.topics.len() as u32).to_le_bytes());
    for topic in event.topics.iter() {
        put_str(&mut out, topic);
    }
    match &event.presence {
        Some(PresenceNote::Started { document, node }) => {
            put_str(&mut out, document);
            put_str(&mut out, node);
        }
        Some(PresenceNote::Alive { node, figures }) => {
            put_str(&mut out, node);
            if let Some(figures) = figures {
                put_str(&mut out, figures);
            }
        }
        Some(PresenceNote::Ended) | None => {}
    }
    out.extend_from_slice(&event.frame);
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// A record's layout without its checksum, once the checksum holds;
/// `None` for a damaged record or an unknown format.
fn verified(record: &[u8]) -> Option<&[u8]> {
    match *record.first()? {
        RECORD_FORMAT => {
            let (body, checksum) = record.split_at_checked(record.len().checked_sub(CHECKSUM)?)?;
            (crc32fast::hash(body).to_le_bytes() == checksum).then_some(body)
        }
        UNCHECKED_FORMAT => Some(record),
        _ => None,
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The front of a record: what trimming needs without decoding the rest.
pub(crate) struct RecordHead {
    pub appended_ms: u64,
    pub id: Box<str>,
}

impl RecordHead {
    pub fn read(record: &[u8]) -> Option<RecordHead> {
        let mut reader = Reader(verified(record)?);
        let (appended_ms, _, id) = reader.head()?;
        Some(RecordHead {
            appended_ms,
            id: id.into(),
        })
    }
}

/// The event a record holds; `None` if it is damaged.
pub(crate) fn decode(seq: u64, record: &[u8]) -> Option<Event> {
    let mut reader = Reader(verified(record)?);
    let (_, flags, id) = reader.head()?;
    let count = reader.u32()?;
    let topics = (0..count)
        .map(|_| reader.str().map(Box::from))
        .collect::<Option<Box<[Box<str>]>>>()?;
    let presence = if flags & STARTED != 0 {
        let document = reader.str()?.into();
        let node = reader.str()?.into();
        Some(PresenceNote::Started { document, node })
    } else if flags & ENDED != 0 {
        Some(PresenceNote::Ended)
    } else if flags & ALIVE != 0 {
        let node = reader.str()?.into();
        let figures = match flags & FIGURES {
            0 => None,
            _ => Some(reader.str()?.into()),
        };
        Some(PresenceNote::Alive { node, figures })
    } else {
        None
    };
    Some(Event {
        seq,
        id: id.into(),
        topics,
        private: flags & PRIVATE != 0,
        frame: Bytes::copy_from_slice(reader.0),
        presence,
        websocket: std::sync::OnceLock::new(),
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
        // The format was checked by `verified`.
        self.take(1)?;
        let appended_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let flags = self.take(1)?[0];
        Some((appended_ms, flags, self.str()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Update;
    use std::sync::Arc;

    fn round_trip(event: &Event) -> Event {
        decode(event.seq, &encode(event, 42)).expect("decodes")
    }

    #[test]
    fn every_field_reads_back() {
        let mut update = Update::new("https://example.com/a", "line 1\nline 2");
        update.topics.push("urn:b".into());
        update.private = true;
        update.kind = Some("note".into());
        for presence in [
            None,
            Some(PresenceNote::Started {
                document: Arc::from("{\"active\":true}"),
                node: Arc::from("n1"),
            }),
            Some(PresenceNote::Ended),
            Some(PresenceNote::Alive {
                node: Arc::from("n2"),
                figures: None,
            }),
            Some(PresenceNote::Alive {
                node: Arc::from("n3"),
                figures: Some(Arc::from("{\"subscribers\":3}")),
            }),
        ] {
            let mut event = Event::from_update(7, "urn:uuid:x".into(), &update);
            event.presence = presence;
            let back = round_trip(&event);
            assert_eq!(back.seq, 7);
            assert_eq!(back.id, event.id);
            assert_eq!(back.topics, event.topics);
            assert!(back.private);
            assert_eq!(back.frame, event.frame);
            assert_eq!(back.presence, event.presence);
            assert_eq!(
                RecordHead::read(&encode(&event, 42)).unwrap().appended_ms,
                42
            );
        }
    }

    #[test]
    fn a_truncated_record_is_refused_not_misread() {
        let mut event = Event::from_update(1, "i".into(), &Update::new("t", "x"));
        event.presence = Some(PresenceNote::Alive {
            node: Arc::from("node"),
            figures: Some(Arc::from("{}")),
        });
        let record = encode(&event, 0);
        let topics_end = record.len() - event.frame.len() - "node{}".len() - 8;
        for cut in 0..topics_end + 2 {
            assert!(decode(1, &record[..cut]).is_none(), "cut at {cut}");
        }
    }

    /// An alive note as versions before figures wrote it: the same bytes as
    /// one encoded now without figures.
    #[test]
    fn an_alive_note_of_an_older_version_reads_back_without_figures() {
        let old: Vec<u8> = [
            &[UNCHECKED_FORMAT][..],
            &42u64.to_le_bytes(),
            &[PRIVATE | ALIVE],
            &1u32.to_le_bytes(),
            b"i",
            &0u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            b"n1",
            b"id: i\n\n",
        ]
        .concat();
        let event = decode(1, &old).expect("decodes");
        let note = Some(PresenceNote::Alive {
            node: Arc::from("n1"),
            figures: None,
        });
        assert_eq!(event.presence, note);
        assert_eq!(&event.frame[..], b"id: i\n\n");
        let mut again = Event::from_update(1, "i".into(), &Update::default());
        again.frame = event.frame.clone();
        again.presence = note;
        again.private = true;
        assert_eq!(as_format_1(encode(&again, 42)), old);
    }

    /// A node of an older version knows no `FIGURES` bit: what it reads of a
    /// note with figures is what this decoder reads with the bit cleared, a
    /// plain alive note from the same node whose frame, never sent to
    /// anyone, starts with the figures.
    #[test]
    fn an_older_version_reads_a_note_with_figures_as_an_alive_note() {
        let mut event = Event::from_update(3, "i".into(), &Update::default());
        event.private = true;
        event.presence = Some(PresenceNote::Alive {
            node: Arc::from("n1"),
            figures: Some(Arc::from("{\"lag\":0}")),
        });
        let mut record = as_format_1(encode(&event, 42));
        record[9] &= !FIGURES;
        let old_view = decode(3, &record).expect("decodes");
        assert_eq!(
            old_view.presence,
            Some(PresenceNote::Alive {
                node: Arc::from("n1"),
                figures: None,
            })
        );
        assert!(old_view.topics.is_empty() && old_view.private);
    }

    /// A record as versions before checksums wrote it.
    fn as_format_1(mut record: Vec<u8>) -> Vec<u8> {
        record.truncate(record.len() - CHECKSUM);
        record[0] = UNCHECKED_FORMAT;
        record
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut event = Event::from_update(5, "urn:uuid:5".into(), &Update::new("t", "data"));
        event.presence = Some(PresenceNote::Started {
            document: Arc::from("{}"),
            node: Arc::from("n"),
        });
        let record = encode(&event, 42);
        for bit in 0..record.len() * 8 {
            let mut damaged = record.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(5, &damaged).is_none(), "bit {bit}");
            assert!(RecordHead::read(&damaged).is_none(), "bit {bit}");
        }
        assert!(decode(5, &as_format_1(record)).is_some());
    }
}
