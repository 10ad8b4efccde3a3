//! The topic index: which subscribers an event goes to.
//!
//! Exact topics are a hash-map lookup, so their cost does not grow with the
//! number of topics. Only patterns (URL patterns, URI templates) are
//! evaluated, each distinct pattern once per topic: the result is cached per
//! topic and shared by every subscriber using that pattern. For a new topic,
//! only the patterns whose literal start it shares are evaluated.

use crate::anchors::Anchors;
use crate::event::SharedEvent;
use crate::matcher::{MatchKind, Matcher};
use crate::members::{Keyed, Members};
use crate::outbox::Push;
use crate::subscriber::Subscriber;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use url::Url;

/// Past this many cached topics the cache starts over, which bounds its memory.
const CACHE_TOPICS: usize = 65_536;

pub struct Index {
    /// The hub URL, against which URL patterns resolve topics.
    base: Url,
    exact: HashMap<Arc<str>, Members>,
    wildcard: Members,
    patterns: HashMap<u64, Pattern>,
    anchors: Anchors,
    pattern_ids: HashMap<(MatchKind, Box<str>), u64>,
    next_pattern: u64,
    /// Topic → ids of the patterns that match it.
    cache: HashMap<Box<str>, Box<[u64]>>,
    all: HashSet<Keyed>,
    /// The sequence of the last event dispatched; a subscriber registered now
    /// gets every later event live, so replay stops here.
    last_dispatched: u64,
    /// That event, or its id when it was dispatched before a restart.
    last_event: Option<SharedEvent>,
    start_id: Option<Box<str>>,
}

struct Pattern {
    matcher: Arc<Matcher>,
    members: Members,
}

/// What one dispatch did, for metrics and logs.
#[derive(Default)]
pub struct Delivery {
    pub delivered: u64,
    pub overflowed: Vec<Arc<Subscriber>>,
}

impl Index {
    /// An empty index whose live events start after `last`, the newest
    /// event in the log (with its id while the log holds it).
    pub fn new(base: Url, last: Option<(u64, Option<Box<str>>)>) -> Index {
        let (last_dispatched, start_id) = last.unwrap_or((0, None));
        Index {
            base,
            exact: HashMap::new(),
            wildcard: Members::Empty,
            patterns: HashMap::new(),
            anchors: Anchors::default(),
            pattern_ids: HashMap::new(),
            next_pattern: 0,
            cache: HashMap::new(),
            all: HashSet::new(),
            last_dispatched,
            last_event: None,
            start_id,
        }
    }

    /// The id of the last event dispatched: a new live subscriber's cursor.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event
            .as_ref()
            .map(|event| &*event.id)
            .or(self.start_id.as_deref())
    }

    pub fn last_dispatched(&self) -> u64 {
        self.last_dispatched
    }

    /// Live events start after `seq` again: the shared log started over.
    pub fn restart_at(&mut self, seq: u64) {
        self.last_dispatched = seq;
        self.last_event = None;
        self.start_id = None;
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn subscribers(&self) -> impl Iterator<Item = &Arc<Subscriber>> {
        self.all.iter().map(|keyed| &keyed.0)
    }

    /// Shares an already registered matcher instead of compiling a copy.
    /// Exact topics share too: a fan-out topic's thousands of subscribers
    /// hold one matcher between them.
    pub fn shared_matcher(&self, kind: MatchKind, source: &str) -> Option<Arc<Matcher>> {
        if let Some(members) = self.exact.get(source) {
            let holder = members.first()?;
            return holder
                .matchers
                .iter()
                .find(|m| m.is_exact() && m.kind() == kind && m.source() == source)
                .cloned();
        }
        let id = self.pattern_ids.get(&(kind, source.into()))?;
        Some(self.patterns[id].matcher.clone())
    }

    /// Registers a subscriber; returns the sequence after which it receives
    /// events live.
    pub fn insert(&mut self, subscriber: Arc<Subscriber>) -> u64 {
        for matcher in subscriber.matchers.iter() {
            let members = if matcher.is_wildcard() {
                &mut self.wildcard
            } else if matcher.is_exact() {
                self.exact.entry(matcher.shared_source()).or_default()
            } else {
                self.pattern_members(matcher)
            };
            members.insert(subscriber.clone());
        }
        self.all.replace(Keyed(subscriber));
        self.last_dispatched
    }

    fn pattern_members(&mut self, matcher: &Arc<Matcher>) -> &mut Members {
        let slot = (matcher.kind(), Box::<str>::from(matcher.source()));
        let id = match self.pattern_ids.get(&slot) {
            Some(id) => *id,
            None => {
                self.next_pattern += 1;
                let id = self.next_pattern;
                self.pattern_ids.insert(slot, id);
                self.anchors.add(id, matcher.anchor());
                self.patterns.insert(
                    id,
                    Pattern {
                        matcher: matcher.clone(),
                        members: Members::Empty,
                    },
                );
                // A new pattern may match cached topics: start the cache over.
                self.cache.clear();
                id
            }
        };
        &mut self
            .patterns
            .get_mut(&id)
            .expect("registered above")
            .members
    }

    pub fn remove(&mut self, subscriber: &Subscriber) {
        let key = subscriber.key;
        if !self.all.remove(&key) {
            return;
        }
        for matcher in subscriber.matchers.iter() {
            if matcher.is_wildcard() {
                self.wildcard.remove(key);
            } else if matcher.is_exact() {
                if let Some(members) = self.exact.get_mut(matcher.source()) {
                    members.remove(key);
                    if members.is_empty() {
                        self.exact.remove(matcher.source());
                    }
                }
            } else {
                self.remove_from_pattern(matcher, key);
            }
        }
    }

    fn remove_from_pattern(&mut self, matcher: &Matcher, key: u64) {
        let slot = (matcher.kind(), Box::<str>::from(matcher.source()));
        let Some(&id) = self.pattern_ids.get(&slot) else {
            return;
        };
        let pattern = self.patterns.get_mut(&id).expect("ids and patterns agree");
        pattern.members.remove(key);
        if pattern.members.is_empty() {
            // Cached entries may still name this id; dispatch skips unknown ids.
            self.patterns.remove(&id);
            self.pattern_ids.remove(&slot);
            self.anchors.remove(id, matcher.anchor());
        }
    }

    /// Offers `event` to every matching subscriber allowed to read it.
    pub fn dispatch(
        &mut self,
        event: &SharedEvent,
        mut offer: impl FnMut(&Arc<Subscriber>) -> Push,
    ) -> Delivery {
        self.last_dispatched = event.seq;
        self.last_event = Some(event.clone());
        let Index {
            base,
            exact,
            wildcard,
            patterns,
            anchors,
            cache,
            ..
        } = self;
        let mut delivery = Delivery::default();
        let mut visit = |subscriber: &Arc<Subscriber>| {
            if !subscriber.first_offer(event.seq) || !subscriber.may_receive(event) {
                return;
            }
            match offer(subscriber) {
                Push::Queued | Push::Deferred => delivery.delivered += 1,
                Push::Overflowed => delivery.overflowed.push(subscriber.clone()),
                Push::Closed => {}
            }
        };
        wildcard.for_each(&mut visit);
        for topic in event.topics() {
            if let Some(members) = exact.get(topic) {
                members.for_each(&mut visit);
            }
            if patterns.is_empty() {
                continue;
            }
            for id in matching_patterns(cache, patterns, anchors, base, topic) {
                if let Some(pattern) = patterns.get(id) {
                    pattern.members.for_each(&mut visit);
                }
            }
        }
        delivery
    }
}

/// The ids of the patterns matching `topic`, evaluated once per topic.
fn matching_patterns<'c>(
    cache: &'c mut HashMap<Box<str>, Box<[u64]>>,
    patterns: &HashMap<u64, Pattern>,
    anchors: &Anchors,
    base: &Url,
    topic: &str,
) -> &'c [u64] {
    if !cache.contains_key(topic) {
        if cache.len() >= CACHE_TOPICS {
            cache.clear();
        }
        let mut candidates = Vec::new();
        anchors.candidates(topic, base, &mut candidates);
        let ids = candidates
            .into_iter()
            .filter(|id| {
                patterns
                    .get(id)
                    .is_some_and(|pattern| pattern.matcher.matches(topic))
            })
            .collect();
        cache.insert(topic.into(), ids);
    }
    &cache[topic]
}

#[cfg(test)]
mod properties {
    //! The index against a brute-force reference: every subscriber whose
    //! matchers match one of the event's topics, nobody else.

    use super::*;
    use crate::event::{Event, Update};
    use proptest::prelude::*;

    /// Starts and pieces that share literal prefixes, so that the anchors
    /// narrowing pattern evaluation are put to the test.
    const STARTS: &[&str] = &[
        "https://example.com/",
        "https://example.com/books/",
        "https://hub.example.com/.well-known/mercure/",
        "/books/",
        "books/",
        "urn:isbn:",
        "",
    ];
    const PIECES: &[&str] = &["1", "2", "a b", "é", "x/1", "%31", "Books", ""];
    const PATTERN_ENDS: &[&str] = &[":id", "*", ":id/*", "(\\d+)", "1", ":a/:b"];
    const TEMPLATE_ENDS: &[&str] = &["{id}", "{+rest}", "{/path*}", "{id}/2", "{?q}", "1"];

    fn topic() -> impl Strategy<Value = String> {
        (
            prop::sample::select(STARTS),
            prop::sample::select(PIECES),
            prop::option::of(prop::sample::select(PIECES)),
        )
            .prop_map(|(start, piece, more)| match more {
                Some(more) => format!("{start}{piece}/{more}"),
                None => format!("{start}{piece}"),
            })
    }

    fn matcher() -> impl Strategy<Value = (MatchKind, String)> {
        let ends = |ends: &'static [&'static str]| {
            (prop::sample::select(STARTS), prop::sample::select(ends))
                .prop_map(|(start, end)| format!("{start}{end}"))
        };
        prop_oneof![
            4 => topic().prop_map(|t| (MatchKind::Exact, t)),
            3 => ends(PATTERN_ENDS).prop_map(|p| (MatchKind::UrlPattern, p)),
            3 => ends(TEMPLATE_ENDS).prop_map(|t| (MatchKind::Selector, t)),
            1 => topic().prop_map(|t| (MatchKind::Selector, t)),
            1 => Just((MatchKind::Exact, "*".to_string())),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Subscribe(Vec<(MatchKind, String)>),
        /// Removes the live subscriber at this position, modulo their number.
        Leave(usize),
        Publish {
            topics: Vec<String>,
            private: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => prop::collection::vec(matcher(), 1..4).prop_map(Step::Subscribe),
            1 => any::<usize>().prop_map(Step::Leave),
            4 => (prop::collection::vec(topic(), 1..4), prop::bool::weighted(0.1))
                .prop_map(|(topics, private)| Step::Publish { topics, private }),
        ]
    }

    fn base() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn delivers_to_exactly_the_matching_subscribers(steps in prop::collection::vec(step(), 1..40)) {
            let mut index = Index::new(base(), None);
            let mut live: Vec<Arc<Subscriber>> = Vec::new();
            let mut keys = 0;
            let mut seq = 0;
            for step in steps {
                match step {
                    Step::Subscribe(sources) => {
                        let matchers: Box<[Arc<Matcher>]> = sources
                            .iter()
                            .filter_map(|(kind, source)| Matcher::parse(*kind, source, &base(), 1024).ok())
                            .map(Arc::new)
                            .collect();
                        if matchers.is_empty() {
                            continue;
                        }
                        keys += 1;
                        let subscriber = Arc::new(Subscriber::new(
                            keys, uuid::Uuid::nil(), matchers, None, None, seq, crate::frame::Encoding::EventStream,
                        ));
                        index.insert(subscriber.clone());
                        live.push(subscriber);
                    }
                    Step::Leave(at) if !live.is_empty() => {
                        let gone = live.remove(at % live.len());
                        index.remove(&gone);
                    }
                    Step::Leave(_) => {}
                    Step::Publish { topics, private } => {
                        seq += 1;
                        let update = Update { topics, private, ..Update::default() };
                        let event = Arc::new(Event::from_update(seq, format!("e{seq}"), &update));
                        let mut delivered = Vec::new();
                        index.dispatch(&event, |subscriber| {
                            delivered.push(subscriber.key);
                            Push::Queued
                        });
                        delivered.sort_unstable();
                        let expected: Vec<u64> = live
                            .iter()
                            .filter(|s| !private && s.listens_to(&event))
                            .map(|s| s.key)
                            .collect();
                        prop_assert_eq!(&delivered, &expected, "topics {:?}", update.topics);
                    }
                }
            }
        }
    }
}
