//! A bounded in-memory history: fast, and lost on restart.

use super::{History, HistoryError, HistoryStats};
use crate::event::SharedEvent;
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};

pub struct MemoryHistory {
    max_events: usize,
    max_bytes: usize,
    log: RwLock<Log>,
}

#[derive(Default)]
struct Log {
    events: VecDeque<SharedEvent>,
    bytes: usize,
    /// Id → sequence of its earliest retained occurrence.
    ids: HashMap<Box<str>, u64>,
}

impl MemoryHistory {
    /// Keeps at most `max_events` events and `max_bytes` of frames.
    pub fn new(max_events: usize, max_bytes: usize) -> MemoryHistory {
        MemoryHistory {
            max_events,
            max_bytes,
            log: RwLock::new(Log::default()),
        }
    }
}

impl History for MemoryHistory {
    fn append(&self, events: &[SharedEvent]) -> Result<(), HistoryError> {
        let mut log = self.log.write();
        for event in events {
            log.bytes += event.frame.len();
            log.ids.entry(event.id.clone()).or_insert(event.seq);
            log.events.push_back(event.clone());
        }
        while log.events.len() > self.max_events || log.bytes > self.max_bytes {
            let Some(oldest) = log.events.pop_front() else {
                break;
            };
            log.bytes -= oldest.frame.len();
            if log.ids.get(&oldest.id) == Some(&oldest.seq) {
                // A later event may reuse the id; point at it if so.
                let next = log.events.iter().find(|e| e.id == oldest.id).map(|e| e.seq);
                match next {
                    Some(seq) => log.ids.insert(oldest.id.clone(), seq),
                    None => log.ids.remove(&oldest.id),
                };
            }
        }
        Ok(())
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<SharedEvent>, HistoryError> {
        let log = self.log.read();
        let start = log.events.partition_point(|e| e.seq <= after);
        Ok(log.events.range(start..).take(limit).cloned().collect())
    }

    fn locate(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        Ok(self.log.read().ids.get(id).copied())
    }

    fn last(&self) -> Result<Option<(u64, Box<str>)>, HistoryError> {
        Ok(self.log.read().events.back().map(|e| (e.seq, e.id.clone())))
    }

    fn trim(&self) -> Result<(), HistoryError> {
        // Bounds are enforced on append.
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn stats(&self) -> HistoryStats {
        let log = self.log.read();
        HistoryStats {
            events: log.events.len() as u64,
            bytes: log.bytes as u64,
            damaged: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Update};
    use std::sync::Arc;

    fn event(seq: u64, id: &str) -> SharedEvent {
        Arc::new(Event::from_update(seq, id.into(), &Update::new("t", "x")))
    }

    #[test]
    fn reads_after_a_cursor_and_evicts_the_oldest() {
        let history = MemoryHistory::new(3, usize::MAX);
        let events: Vec<_> = (1..=5).map(|n| event(n, &format!("e{n}"))).collect();
        history.append(&events).unwrap();
        let seqs: Vec<u64> = history
            .read_after(3, 10)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(history.locate("e1").unwrap(), None);
        assert_eq!(history.locate("e3").unwrap(), Some(3));
        assert_eq!(history.read_after(0, 10).unwrap().len(), 3);
    }

    #[test]
    fn a_reused_id_resolves_to_its_earliest_occurrence() {
        let history = MemoryHistory::new(10, usize::MAX);
        history
            .append(&[event(1, "a"), event(2, "dup"), event(3, "dup")])
            .unwrap();
        assert_eq!(history.locate("dup").unwrap(), Some(2));
    }
}
