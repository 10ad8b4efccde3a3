//! The nodes of a cluster as this node hears them: each one's latest
//! figures, shared through the log.
//!
//! Every node's alive note (`lease.rs`) carries a small summary of its own
//! statistics, [`Figures`], as JSON. The follower hands each batch it reads
//! to [`Nodes::heard`], which keeps the latest summary of each node and when
//! it came; the statistics stream shows them, so any node's console shows
//! every node. The notes have no topic, so no subscriber is ever sent one.
//!
//! The summary is read leniently (unknown fields ignored, missing ones
//! defaulted) so that nodes of different versions read each other's: a new
//! figure is added as a new field, and a field's meaning never changes.

use crate::event::{PresenceNote, SharedEvent};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node not heard from for this long is no longer listed.
const FORGET: Duration = Duration::from_secs(600);

/// What a node tells the others of itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Figures {
    /// `ready`, `behind`, `engine unreachable` or `shutting down`.
    pub state: String,
    /// Events of the shared log the node had not dispatched yet.
    pub lag: Option<u64>,
    pub subscribers: i64,
    pub subscriptions: i64,
    pub published_per_s: f64,
    pub delivered_per_s: f64,
    /// `None` when the node published nothing in the interval.
    pub publish_ms_mean: Option<f64>,
    pub slow_disconnects_total: u64,
    pub uptime_s: u64,
    pub version: String,
}

/// Another node: how long ago it was last heard, and what it said then.
pub(crate) struct Heard {
    pub node: Arc<str>,
    pub ago: Duration,
    /// `None` for a node of a version that sends no figures.
    pub figures: Option<Figures>,
}

/// The latest note of every node heard within [`FORGET`].
#[derive(Default)]
pub(crate) struct Nodes {
    latest: Mutex<HashMap<Arc<str>, Note>>,
}

/// A node's latest note: when it was read, and its figures.
struct Note {
    at: Instant,
    figures: Option<Figures>,
}

impl Nodes {
    /// Notes the alive notes among `events`, read from the log just now.
    pub(crate) fn heard(&self, events: &[SharedEvent]) {
        let now = Instant::now();
        let mut notes = events.iter().filter_map(|event| match &event.presence {
            Some(PresenceNote::Alive { node, figures }) => Some((node, figures)),
            _ => None,
        });
        let Some(first) = notes.next() else { return };
        let mut latest = self.latest.lock();
        for (node, figures) in std::iter::once(first).chain(notes) {
            let figures = figures
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok());
            latest.insert(node.clone(), Note { at: now, figures });
        }
    }

    /// The nodes other than `this`, most recently heard first; those not
    /// heard from for [`FORGET`] are forgotten.
    pub(crate) fn others(&self, this: &str) -> Vec<Heard> {
        let now = Instant::now();
        let mut latest = self.latest.lock();
        latest.retain(|_, note| now - note.at < FORGET);
        let mut others: Vec<Heard> = latest
            .iter()
            .filter(|(node, _)| ***node != *this)
            .map(|(node, note)| Heard {
                node: node.clone(),
                ago: now - note.at,
                figures: note.figures.clone(),
            })
            .collect();
        others.sort_by_key(|heard| heard.ago);
        others
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Update};

    fn note(node: &str, figures: Option<&str>) -> SharedEvent {
        let mut event = Event::from_update(1, "i".into(), &Update::default());
        event.presence = Some(PresenceNote::Alive {
            node: node.into(),
            figures: figures.map(Arc::from),
        });
        Arc::new(event)
    }

    #[test]
    fn the_latest_figures_of_each_other_node() {
        let nodes = Nodes::default();
        nodes.heard(&[
            note("a", Some(r#"{"state":"ready","subscribers":1}"#)),
            note("b", None),
            Arc::new(Event::from_update(2, "j".into(), &Update::new("t", "x"))),
            note("a", Some(r#"{"state":"behind","subscribers":2,"lag":9}"#)),
            note("this", Some("{}")),
        ]);
        let mut others = nodes.others("this");
        others.sort_by(|x, y| x.node.cmp(&y.node));
        assert_eq!(others.len(), 2);
        let a = others[0].figures.as_ref().expect("figures");
        assert_eq!(
            (a.state.as_str(), a.subscribers, a.lag),
            ("behind", 2, Some(9))
        );
        assert!(others[1].figures.is_none(), "an older node sends none");
    }

    #[test]
    fn figures_of_another_version_are_read_leniently() {
        let nodes = Nodes::default();
        nodes.heard(&[
            note(
                "new",
                Some(r#"{"state":"ready","a_later_figure":[1],"subscribers":4}"#),
            ),
            note("odd", Some("not json")),
        ]);
        let others = nodes.others("this");
        let new = others.iter().find(|h| &*h.node == "new").unwrap();
        let figures = new.figures.as_ref().unwrap();
        assert_eq!((figures.subscribers, figures.lag), (4, None));
        let odd = others.iter().find(|h| &*h.node == "odd").unwrap();
        assert!(odd.figures.is_none());
    }
}
