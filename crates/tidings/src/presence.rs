//! Active subscriptions: the subscription events announcing every start and
//! end, and the list of active subscriptions behind the subscription API.
//!
//! Everything here exists only when the feature is on (`Core::presence` is
//! `None` otherwise), so a hub without it pays nothing per connection.
//!
//! Starts and ends are announced from where they happen (subscribe, stream
//! drop, slow-consumer overflow, deadline, shutdown), always under the index
//! lock, into one unbounded channel: sending never blocks a `Drop` and never
//! fails for lack of room, and one channel keeps every subscription's start
//! before its end. A task turns announcements into hub-generated updates and
//! submits them to the committer, so they are sequenced, stored and replayed
//! like any publication. Each subscription event carries what it does to the
//! list ([`Subscription`]), and dispatch applies it while it dispatches the
//! event, so the list and its cursor always describe the same point of the
//! event stream: a client can load the list, then follow the events from its
//! cursor with no gap. In a cluster the events come back from the shared log
//! to every node, so every node keeps the list of the whole cluster.

use crate::commit::Job;
use crate::event::{PresenceNote, SharedEvent, Update};
use crate::history::{HistoryError, SharedLog};
use crate::hub::Core;
use crate::matcher::{MatchKind, Matcher};
use crate::outbox::CloseReason;
use crate::subscriber::Subscriber;
use parking_lot::Mutex;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// RFC 6570 simple string expansion keeps only unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Events read per round trip when a node learns the list from the log.
const RECALL_BATCH: usize = 1024;

/// The draft-07 JSON-LD context.
const CONTEXT: &str = "https://mercure.rocks/";

pub(crate) struct Presence {
    announcements: mpsc::UnboundedSender<Announcement>,
    /// Written only by dispatch; the list and its
    /// cursor change together under this lock.
    registry: Mutex<Registry>,
    /// `{hub path}/subscriptions`, the root of every topic and API path.
    root: String,
    /// This process among the nodes of a cluster.
    node: Arc<str>,
    /// Cancelled once shutdown has announced every end and closed the streams.
    farewell_done: CancellationToken,
}

enum Announcement {
    Started(Arc<Subscriber>),
    Ended(Arc<Subscriber>),
    Farewell,
}

struct Registry {
    /// Active subscriptions by id (their topic path): sorted, so that a
    /// per-matcher collection is one range of keys.
    documents: BTreeMap<Box<str>, Arc<str>>,
    /// The node holding each active subscription.
    owners: HashMap<Box<str>, Arc<str>>,
    /// When a note from each node was last dispatched here (see `lease.rs`).
    seen: HashMap<Arc<str>, Instant>,
    /// The id of the last event dispatched, or `earliest`.
    cursor: Box<str>,
}

/// A node gone silent, and the subscriptions it held.
pub(crate) struct SilentNode {
    pub node: Arc<str>,
    /// Each subscription's id and document.
    pub subscriptions: Vec<(Box<str>, Arc<str>)>,
}

/// Active subscriptions as of one point of the event stream.
pub(crate) struct Snapshot {
    pub cursor: String,
    pub documents: Vec<Arc<str>>,
}

/// What an API request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Every subscription whose id is exactly one more segment below the path
    /// (or, at the root, every subscription).
    Collection,
    /// The subscription whose id is the path.
    One,
}

impl Presence {
    /// The feature's state, and the receiving end [`announce`] drains.
    /// `hub_path` is the path of the hub's URL; `cursor` the id of the last
    /// event in history, if any; `node` this process among the nodes of a
    /// cluster.
    pub(crate) fn new(
        hub_path: &str,
        cursor: Option<String>,
        node: Arc<str>,
    ) -> (Presence, Receiver) {
        let (announcements, receiver) = mpsc::unbounded_channel();
        let presence = Presence {
            announcements,
            registry: Mutex::new(Registry {
                documents: BTreeMap::new(),
                owners: HashMap::new(),
                seen: HashMap::new(),
                cursor: cursor.unwrap_or_else(|| "earliest".into()).into(),
            }),
            root: format!("{}/subscriptions", hub_path.trim_end_matches('/')),
            node,
            farewell_done: CancellationToken::new(),
        };
        (presence, Receiver(receiver))
    }

    /// `{hub path}/subscriptions`.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// Announces a new subscription. Called with the index lock held, right
    /// after it was registered.
    pub(crate) fn started(&self, subscriber: &Arc<Subscriber>) {
        let _ = self
            .announcements
            .send(Announcement::Started(subscriber.clone()));
    }

    /// Announces the end of a subscription, once whatever ended it: the
    /// first caller wins. Called with the index lock held.
    pub(crate) fn ended(&self, subscriber: &Arc<Subscriber>) {
        if subscriber.claim_end() {
            let _ = self
                .announcements
                .send(Announcement::Ended(subscriber.clone()));
        }
    }

    /// Starts shutdown: announces the end of every subscription, then closes
    /// the streams, so that watchers still connected hear every end. False
    /// when the task that would do it is gone: the caller closes the streams.
    pub(crate) fn farewell(&self) -> bool {
        let sent = self.announcements.send(Announcement::Farewell).is_ok();
        if !sent {
            self.farewell_done.cancel();
        }
        sent
    }

    /// Resolves once the farewell's events are committed and the streams closed.
    pub(crate) async fn farewell_done(&self) {
        self.farewell_done.cancelled().await
    }

    /// Applies a dispatched batch to the list. Called by dispatch with the
    /// index lock held, after dispatching `events`.
    pub(crate) fn dispatched(&self, events: &[SharedEvent]) {
        let Some(last) = events.last() else { return };
        let now = Instant::now();
        let mut registry = self.registry.lock();
        for event in events {
            let Some(note) = &event.presence else {
                continue;
            };
            match (note, event.topics.first()) {
                (PresenceNote::Started { document, node }, Some(id)) => {
                    registry.documents.insert(id.clone(), document.clone());
                    registry.owners.insert(id.clone(), node.clone());
                    registry.seen.insert(node.clone(), now);
                }
                (PresenceNote::Ended, Some(id)) => {
                    registry.documents.remove(id);
                    registry.owners.remove(id);
                }
                (PresenceNote::Alive { node, .. }, _) => {
                    registry.seen.insert(node.clone(), now);
                }
                _ => {}
            }
        }
        registry.cursor = last.id.clone();
    }

    /// Learns the subscriptions the other nodes of a cluster hold from the
    /// shared log, up to the position `through` where this node starts to
    /// dispatch. A subscription whose start has left the log's retention is
    /// not known to a node started after that.
    pub(crate) async fn recall(
        &self,
        log: &dyn SharedLog,
        through: u64,
    ) -> Result<(), HistoryError> {
        let mut after = 0;
        while after < through {
            let events = log.read_after(after, RECALL_BATCH).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            let known = events.partition_point(|event| event.seq <= through);
            self.dispatched(&events[..known]);
        }
        Ok(())
    }

    /// The other nodes not heard from for `lease`, counted from no earlier
    /// than `since` (when this node last started hearing the log), with the
    /// subscriptions they held. They are forgotten once returned.
    pub(crate) fn silent_nodes(&self, lease: Duration, since: Instant) -> Vec<SilentNode> {
        let now = Instant::now();
        let mut registry = self.registry.lock();
        let silent: Vec<Arc<str>> = registry
            .seen
            .iter()
            .filter(|(node, seen)| **node != self.node && now - (**seen).max(since) >= lease)
            .map(|(node, _)| node.clone())
            .collect();
        silent
            .into_iter()
            .map(|node| {
                registry.seen.remove(&node);
                let subscriptions = registry
                    .owners
                    .iter()
                    .filter(|(_, owner)| **owner == node)
                    .filter_map(|(id, _)| {
                        let document = registry.documents.get(id)?;
                        Some((id.clone(), document.clone()))
                    })
                    .collect();
                SilentNode {
                    node,
                    subscriptions,
                }
            })
            .collect()
    }

    /// The documents at `path` (a canonical API path, see [`canonical`]) and
    /// the cursor they are current as of, both read at once.
    pub(crate) fn read(&self, path: &str, selection: Selection) -> Snapshot {
        let registry = self.registry.lock();
        let documents = match selection {
            Selection::One => registry.documents.get(path).cloned().into_iter().collect(),
            Selection::Collection if path == self.root => {
                registry.documents.values().cloned().collect()
            }
            Selection::Collection => {
                let prefix = format!("{path}/");
                registry
                    .documents
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(|(id, _)| id.starts_with(&prefix))
                    .filter(|(id, _)| !id[prefix.len()..].contains('/'))
                    .map(|(_, document)| document.clone())
                    .collect()
            }
        };
        Snapshot {
            cursor: registry.cursor.to_string(),
            documents,
        }
    }

    /// The events announcing `subscriber`'s subscriptions, one per matcher.
    fn announcements(&self, subscriber: &Subscriber, active: bool) -> Vec<Job> {
        let identifier = format!("urn:uuid:{}", subscriber.identifier);
        subscriber
            .matchers
            .iter()
            .map(|matcher| {
                let payload = subscriber
                    .grants
                    .as_ref()
                    .and_then(|g| g.payload_for(matcher.source()));
                let (update, note) = self.event(matcher, &identifier, payload, active);
                Job::announcement(update, note)
            })
            .collect()
    }

    /// One subscription event: draft-08 for `match` subscriptions, draft-07
    /// for `topic` ones, each in its generation's topic and document form.
    fn event(
        &self,
        matcher: &Matcher,
        subscriber: &str,
        payload: Option<&Value>,
        active: bool,
    ) -> (Update, PresenceNote) {
        let (id, body, kind) = match matcher.kind() {
            MatchKind::Selector => {
                let id = format!(
                    "{}/{}/{}",
                    self.root,
                    encode(matcher.source()),
                    encode(subscriber)
                );
                let body = serde_json::to_string(&Draft07 {
                    context: CONTEXT,
                    id: &id,
                    kind: "Subscription",
                    topic: matcher.source(),
                    subscriber,
                    active,
                    payload,
                });
                // Draft-07 clients listen with `onmessage`, which only sees
                // events without a type, as deployed hubs send them.
                (id, body, None)
            }
            kind => {
                let name = kind.name();
                let id = format!(
                    "{}/{name}/{}/{}",
                    self.root,
                    encode(matcher.source()),
                    encode(subscriber)
                );
                let body = serde_json::to_string(&Draft08 {
                    id: &id,
                    kind: "subscription",
                    match_type: name,
                    source: matcher.source(),
                    subscriber,
                    active,
                    payload,
                });
                (id, body, Some("mercure".to_string()))
            }
        };
        let body = body.expect("documents of strings and JSON values serialize");
        let note = match active {
            true => PresenceNote::Started {
                document: Arc::from(body.as_str()),
                node: self.node.clone(),
            },
            false => PresenceNote::Ended,
        };
        let update = Update {
            topics: vec![id],
            data: body,
            private: true,
            kind,
            ..Update::default()
        };
        (update, note)
    }
}

#[derive(Serialize)]
struct Draft08<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    match_type: &'static str,
    #[serde(rename = "match")]
    source: &'a str,
    subscriber: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Value>,
}

#[derive(Serialize)]
struct Draft07<'a> {
    #[serde(rename = "@context")]
    context: &'static str,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    subscriber: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Value>,
}

/// Percent-encodes one template variable, as a whole and exactly once.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The canonical spelling of one path segment of the API: decoded, then
/// encoded as topics are. `None` when it does not decode to UTF-8.
pub(crate) fn canonical(segment: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    Some(encode(&decoded))
}

/// The receiving end of the announcements, for [`announce`].
pub(crate) struct Receiver(mpsc::UnboundedReceiver<Announcement>);

/// Turns announcements into updates for the committer, in order, until the
/// hub is gone. Holds the hub weakly so that dropping it ends the task.
pub(crate) async fn announce(
    core: Weak<Core>,
    jobs: mpsc::WeakSender<Job>,
    Receiver(mut receiver): Receiver,
) {
    while let Some(announcement) = receiver.recv().await {
        let (Some(core), Some(jobs)) = (core.upgrade(), jobs.upgrade()) else {
            return;
        };
        let Some(presence) = &core.presence else {
            return;
        };
        match announcement {
            Announcement::Started(subscriber) => {
                submit(&jobs, presence.announcements(&subscriber, true)).await
            }
            Announcement::Ended(subscriber) => {
                submit(&jobs, presence.announcements(&subscriber, false)).await
            }
            Announcement::Farewell => farewell(&core, presence, &jobs).await,
        }
    }
}

pub(crate) async fn submit(jobs: &mpsc::Sender<Job>, batch: Vec<Job>) {
    for job in batch {
        if jobs.send(job).await.is_err() {
            return;
        }
    }
}

/// Announces the end of every subscription still open, waits until those
/// events are stored and dispatched, then closes the
/// streams: queued events are still written before a stream ends.
async fn farewell(core: &Core, presence: &Presence, jobs: &mpsc::Sender<Job>) {
    let ending: Vec<Arc<Subscriber>> = core
        .index
        .lock()
        .subscribers()
        .filter(|subscriber| subscriber.claim_end())
        .cloned()
        .collect();
    let mut batch: Vec<Job> = ending
        .iter()
        .flat_map(|subscriber| presence.announcements(subscriber, false))
        .collect();
    let committed = batch.last_mut().map(|last| {
        let (done, committed) = oneshot::channel();
        last.notify(done);
        committed
    });
    submit(jobs, batch).await;
    if let Some(committed) = committed {
        // With a shared log the follower dispatches after the engine took
        // the events: wait for it, so local watchers hear the ends too.
        if let Ok(Ok(published)) = committed.await {
            core.dispatched_through(published.seq).await;
        }
    }
    core.close_streams(CloseReason::Shutdown);
    presence.farewell_done.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn presence() -> Presence {
        Presence::new("/.well-known/mercure", None, "urn:uuid:n".into()).0
    }

    fn matcher(kind: MatchKind, source: &str) -> Matcher {
        let base = Url::parse("https://example.com/.well-known/mercure").unwrap();
        Matcher::parse(kind, source, &base, 1024).unwrap()
    }

    const SUBSCRIBER: &str = "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6";

    #[test]
    fn draft08_topic_and_document_follow_the_spec_example() {
        let payload = serde_json::json!({"foo": "bar"});
        let m = matcher(MatchKind::UrlPattern, "https://example.com/:selector");
        let presence = presence();
        let (update, note) = presence.event(&m, SUBSCRIBER, Some(&payload), true);
        let id = "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6";
        assert_eq!(update.topics, [id]);
        assert!(update.private);
        assert_eq!(update.kind.as_deref(), Some("mercure"));
        let body: Value = serde_json::from_str(&update.data).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": id, "type": "subscription", "match_type": "urlpattern",
                "match": "https://example.com/:selector", "subscriber": SUBSCRIBER,
                "active": true, "payload": {"foo": "bar"}})
        );
        assert_eq!(
            note,
            PresenceNote::Started {
                document: Arc::from(update.data.as_str()),
                node: Arc::from("urn:uuid:n"),
            }
        );
    }

    #[test]
    fn draft07_topic_and_document_follow_the_spec_example() {
        let m = matcher(MatchKind::Selector, "https://example.com/{selector}");
        let (update, note) = presence().event(&m, SUBSCRIBER, None, false);
        let id = "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6";
        assert_eq!(update.topics, [id]);
        assert_eq!(update.kind, None);
        let body: Value = serde_json::from_str(&update.data).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"@context": "https://mercure.rocks/", "id": id, "type": "Subscription",
                "topic": "https://example.com/{selector}", "subscriber": SUBSCRIBER, "active": false})
        );
        assert_eq!(note, PresenceNote::Ended);
    }

    #[test]
    fn each_variable_is_encoded_once_as_a_whole() {
        assert_eq!(encode("a/b%2Fc d~é*"), "a%2Fb%252Fc%20d~%C3%A9%2A");
        assert_eq!(
            canonical("https%3a%2F%2Fexample.com").as_deref(),
            Some("https%3A%2F%2Fexample.com")
        );
        assert_eq!(canonical("urn:uuid:x").as_deref(), Some("urn%3Auuid%3Ax"));
        assert_eq!(canonical("%FF"), None);
    }

    #[test]
    fn collections_are_one_segment_below_their_path() {
        let presence = presence();
        let root = presence.root().to_string();
        let documents = [
            format!("{root}/exact/a/s1"),
            format!("{root}/exact/a/s2"),
            format!("{root}/exact/ab/s3"),
            format!("{root}/exact/s4"),
        ];
        let events: Vec<SharedEvent> = documents
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let mut event = crate::event::Event::from_update(
                    n as u64 + 1,
                    format!("e{}", n + 1),
                    &Update::new(id, ""),
                );
                event.presence = Some(PresenceNote::Started {
                    document: id.as_str().into(),
                    node: "n1".into(),
                });
                Arc::new(event)
            })
            .collect();
        presence.dispatched(&events);
        let read = |path: &str, selection| presence.read(path, selection).documents.len();
        assert_eq!(read(&root, Selection::Collection), 4);
        assert_eq!(read(&format!("{root}/exact/a"), Selection::Collection), 2);
        // Draft-07 topic `exact`: only subscriptions one segment below.
        assert_eq!(read(&format!("{root}/exact"), Selection::Collection), 1);
        assert_eq!(read(&documents[2], Selection::One), 1);
        assert_eq!(read(&format!("{root}/exact/a/s9"), Selection::One), 0);
        assert_eq!(presence.read(&root, Selection::One).cursor, "e4");
    }
}
