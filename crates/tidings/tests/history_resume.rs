//! Property: on each local history store, for any interleaving of appends,
//! trims, restarts and resumes, a resume from any retained id yields
//! exactly the events after it, and what is retained is always the newest
//! part of what was appended, in order, without gaps.

use proptest::prelude::*;
use std::sync::Arc;
use tidings::event::{Event, SharedEvent, Update};
use tidings::history::{Durability, History, MemoryHistory, RedbHistory, Retention};

/// Events each store keeps (the memory store on append, redb on trim).
const KEEP: usize = 6;

#[derive(Debug, Clone)]
enum Step {
    /// New events; each reuses the id of an earlier one (any, by position)
    /// or gets a fresh id.
    Append(Vec<Option<usize>>),
    Trim,
    /// Close and reopen the store (redb; the memory store starts empty).
    Restart,
    /// Resume from the retained event at this position, reading pages of
    /// this many events.
    Resume {
        at: usize,
        page: usize,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => prop::collection::vec(prop::option::weighted(0.2, any::<usize>()), 1..5)
            .prop_map(Step::Append),
        1 => Just(Step::Trim),
        1 => Just(Step::Restart),
        3 => (any::<usize>(), 1..5usize).prop_map(|(at, page)| Step::Resume { at, page }),
    ];
    prop::collection::vec(step, 1..30)
}

/// What was appended, in order, and how much the store must keep.
struct Model {
    appended: Vec<SharedEvent>,
    /// The store must hold at most this many of the newest events.
    bound: Option<usize>,
}

impl Model {
    fn append(&mut self, store: &dyn History, reuse: &[Option<usize>]) {
        let mut batch = Vec::new();
        for choice in reuse {
            let seq = self.appended.len() as u64 + 1;
            let id = match choice {
                Some(n) if !self.appended.is_empty() => {
                    self.appended[n % self.appended.len()].id.to_string()
                }
                _ => format!("urn:uuid:{seq}"),
            };
            let update = Update::new("https://example.com/t", format!("event {seq}"));
            let event = Arc::new(Event::from_update(seq, id, &update));
            self.appended.push(event.clone());
            batch.push(event);
        }
        store.append(&batch).unwrap();
    }

    /// Checks the store holds a gapless suffix of what was appended, within
    /// the bound when one applies, and returns it.
    fn retained(&self, store: &dyn History) -> Result<Vec<SharedEvent>, TestCaseError> {
        let held = read_after(store, 0, 1000)?;
        let from = self.appended.len() - held.len();
        prop_assert_eq!(
            seqs(&held),
            seqs(&self.appended[from..]),
            "not the newest events"
        );
        prop_assert_eq!(ids(&held), ids(&self.appended[from..]));
        if let Some(bound) = self.bound {
            prop_assert_eq!(held.len(), self.appended.len().min(bound));
        }
        Ok(held)
    }

    fn resume(&self, store: &dyn History, at: usize, page: usize) -> Result<(), TestCaseError> {
        let held = self.retained(store)?;
        if held.is_empty() {
            return Ok(());
        }
        let id = &held[at % held.len()].id;
        // An id published twice resumes after its earliest retained event.
        let earliest = held.iter().find(|e| e.id == *id).unwrap().seq;
        prop_assert_eq!(store.locate(id).unwrap(), Some(earliest));
        let later = read_after(store, earliest, page)?;
        let expected: Vec<u64> = self
            .appended
            .iter()
            .map(|e| e.seq)
            .filter(|s| *s > earliest)
            .collect();
        prop_assert_eq!(seqs(&later), expected);
        // Ids no longer retained resolve to nothing.
        for gone in &self.appended[..self.appended.len() - held.len()] {
            if !held.iter().any(|e| e.id == gone.id) {
                prop_assert_eq!(
                    store.locate(&gone.id).unwrap(),
                    None,
                    "{} was trimmed",
                    gone.id
                );
            }
        }
        Ok(())
    }
}

/// Everything after `after`, read the way a replay reads: page by page.
fn read_after(
    store: &dyn History,
    mut after: u64,
    page: usize,
) -> Result<Vec<SharedEvent>, TestCaseError> {
    let mut all = Vec::new();
    loop {
        let batch = store.read_after(after, page).unwrap();
        prop_assert!(batch.len() <= page, "a page longer than asked");
        prop_assert!(
            batch.iter().all(|e| e.seq > after),
            "an event at or before {after}"
        );
        let Some(last) = batch.last() else {
            return Ok(all);
        };
        after = last.seq;
        all.extend(batch);
    }
}

fn seqs(events: &[SharedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn ids(events: &[SharedEvent]) -> Vec<&str> {
    events.iter().map(|e| &*e.id).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn memory_resumes_from_any_retained_id(steps in steps()) {
        let store = MemoryHistory::new(KEEP, usize::MAX);
        let mut model = Model { appended: Vec::new(), bound: Some(KEEP) };
        for step in steps {
            match step {
                Step::Append(reuse) => model.append(&store, &reuse),
                Step::Trim => store.trim().unwrap(),
                // Memory is lost on restart by design: nothing to resume from.
                Step::Restart => {}
                Step::Resume { at, page } => model.resume(&store, at, page)?,
            }
            model.retained(&store)?;
        }
    }
}

proptest! {
    // Each case opens a store file and reopens it on every restart.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn redb_resumes_from_any_retained_id_across_restarts(steps in steps()) {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention { events: Some(KEEP as u64), ..Retention::default() };
        let open = || RedbHistory::open(dir.path(), Durability::Eventual, retention).unwrap();
        let mut store = open();
        // Between trims redb may hold more than the bound.
        let mut model = Model { appended: Vec::new(), bound: None };
        for step in steps {
            match step {
                Step::Append(reuse) => model.append(&store, &reuse),
                Step::Trim => {
                    store.trim().unwrap();
                    model.bound = Some(KEEP);
                    model.retained(&store)?;
                    model.bound = None;
                }
                Step::Restart => {
                    store.close();
                    drop(store);
                    store = open();
                    let last = store.last().unwrap().map(|(seq, id)| (seq, id.to_string()));
                    let newest = model.appended.last().map(|e| (e.seq, e.id.to_string()));
                    prop_assert_eq!(last, newest, "the newest event survives a restart");
                }
                Step::Resume { at, page } => model.resume(&store, at, page)?,
            }
            model.retained(&store)?;
        }
    }
}
