//! Updates as publishers send them, and events as the hub stores and sends them.

use crate::frame::Encoding;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// What a publisher asks the hub to dispatch, once validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The canonical topic first, then the alternate ones.
    pub topics: Vec<String>,
    pub data: String,
    pub private: bool,
    /// The publisher's id; the hub generates a `urn:uuid:` one when absent.
    pub id: Option<String>,
    /// The SSE `event` field.
    pub kind: Option<String>,
    /// The SSE `retry` field, in milliseconds.
    pub retry: Option<u64>,
}

impl Update {
    pub fn new(topic: impl Into<String>, data: impl Into<String>) -> Update {
        Update {
            topics: vec![topic.into()],
            data: data.into(),
            ..Update::default()
        }
    }
}

/// An update after sequencing: its place in the hub's order and its SSE
/// frame, serialized once and shared by every subscriber that receives it.
#[derive(Debug)]
pub struct Event {
    /// The hub's own order; cursors resolve to it. Never reused.
    pub seq: u64,
    pub id: Box<str>,
    pub topics: Box<[Box<str>]>,
    pub private: bool,
    /// The complete `text/event-stream` frame, blank line included.
    pub frame: Bytes,
    /// For the events of active subscriptions, what they tell the list: it
    /// travels with the event, so every node that dispatches the event keeps
    /// the same list.
    pub(crate) presence: Option<PresenceNote>,
    /// The WebSocket encoding, made from `frame` the first time a WebSocket
    /// subscriber needs it, then shared like the frame.
    pub(crate) websocket: OnceLock<Bytes>,
}

/// What an event tells the list of active subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PresenceNote {
    /// The subscription that is the event's first topic started on `node`,
    /// described by `document`.
    Started { document: Arc<str>, node: Arc<str> },
    /// The subscription that is the event's first topic ended.
    Ended,
    /// `node` is alive and so are its subscriptions: a lease renewal in a
    /// cluster, with no topic, so it is dispatched to nobody. `figures` is
    /// the node's own statistics as JSON (`nodes.rs`), absent from notes of
    /// older versions.
    Alive {
        node: Arc<str>,
        figures: Option<Arc<str>>,
    },
}

pub type SharedEvent = Arc<Event>;

impl Event {
    pub fn from_update(seq: u64, id: String, update: &Update) -> Event {
        let frame = crate::frame::encode(&id, update);
        Event {
            seq,
            id: id.into(),
            topics: update.topics.iter().map(|t| t.as_str().into()).collect(),
            private: update.private,
            frame,
            presence: None,
            websocket: OnceLock::new(),
        }
    }

    /// The event encoded for a subscriber that takes `encoding`.
    pub(crate) fn frame_for(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::EventStream => self.frame.clone(),
            Encoding::WebSocket => self
                .websocket
                .get_or_init(|| crate::websocket::message::event_body(self))
                .clone(),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|t| &**t)
    }
}
