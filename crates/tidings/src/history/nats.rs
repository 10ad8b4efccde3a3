//! The shared log on NATS JetStream.
//!
//! This module owns one JetStream stream, `NAME` (the URL's `stream`
//! parameter, `tidings` by default), and every message in it. An event is one
//! message: its record (see `record`) as the payload, on the subject
//! `NAME.<h>`, where `<h>` is the first 16 bytes of the SHA-256 of the event's
//! id in hex. The stream sequence is the event's position; JetStream enforces
//! the retention limits itself, trimming the front.
//!
//! **One message per id.** Each event is published with
//! `Nats-Expected-Last-Subject-Sequence: 0`: the server stores it only if no
//! message is retained on its subject, and it checks that in the order it
//! stores messages (on the stream leader, in a cluster), so of two nodes
//! publishing the same id at once exactly one is stored. A refusal is
//! answered by looking up the retained message on the subject and checking
//! its id, so a hash collision is reported rather than taken for a
//! duplicate. `Nats-Msg-Id` (the same hash) is set too: within the stream's
//! duplicate window the server answers a retry with the original's position
//! even after retention removed the original.
//!
//! **The stream's configuration belongs to the log.** The first node to
//! connect creates the stream with its bounds (`--retain-*`) as the
//! stream's limits and the URL's `replicas`; a node that finds the stream
//! leaves its configuration alone and, if it asked for other limits or
//! replicas, says so in a warning. Updating it to each node's own would let
//! nodes started with different flags undo each other, and one with
//! smaller bounds or fewer replicas silently shrink a stream others made
//! larger. Change the limits on the stream itself (`nats stream edit`);
//! JetStream applies them, and measures age against its own clock, not the
//! nodes'.
//!
//! **Reading.** `read_after` reads through the stream leader (see there):
//! a replica's direct answer may lag behind what was acknowledged.
//!
//! **Credentials and TLS** are the URL's: `nats://TOKEN@host:port` for a
//! token, `nats://USER:PASSWORD@…` (percent-encoded), and `creds=PATH` for a
//! credentials file (a user JWT and its nkey seed, for operator/account
//! setups). `tls://` requires TLS; `nats://` uses it when the server asks.
//! The servers' certificates are checked against the system's CAs, or only
//! against those in the PEM file that `ca=PATH` names (a private CA). Wrong
//! credentials are refused at connect as a failure, not as an engine still
//! starting; no error or description holds the secret.
//!
//! **Following.** A node tails the log with an ordered pull consumer, an
//! ephemeral single-replica consumer kept between `follow` calls while the
//! caller asks for the continuation, and recreated when it does not or the
//! connection was re-established.

mod address;

use self::address::{Address, Auth};
use super::record::{self, RecordHead};
use super::{Appended, HistoryError, HistoryStats, Pending, Retention, SharedLog};
use crate::event::{Event, SharedEvent};
use async_nats::connection::State;
use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig, OrderedError};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, PublishAckFuture, PublishError, PublishErrorKind,
};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{
    self, DiscardPolicy, LastRawMessageErrorKind, RawMessageErrorKind, StorageType, Stream,
};
use async_nats::jetstream::{self, Context, ErrorCode};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, HeaderMap};
use futures_util::{FutureExt, StreamExt};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type OrderedItem = Result<jetstream::Message, OrderedError>;

/// How long any request, publish acknowledgement included, may take: calls
/// fail rather than hang while the servers are unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The server's default; shortened to `max_age` when that is shorter, as the
/// server requires.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Publishes in flight per append: each holds one of the context's
/// acknowledgement permits until awaited.
const PIPELINE: usize = 256;

/// Most events a replay reads with one get each; more take an ordered
/// consumer.
const SMALL_READ: u64 = 64;

/// Attempts to settle a refused publication (see `Engine::resolve`).
const RESOLVE_ATTEMPTS: u32 = 5;

/// Connects to the stream a `nats://` (or `tls://`) URL names, creating it
/// with `retention` when it does not exist yet.
pub async fn connect(url: &str, retention: Retention) -> Result<Arc<dyn SharedLog>, HistoryError> {
    let address = Address::parse(url)?;
    let client = connect_client(&address).await?;
    let context = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .ack_timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    let stream = open_stream(&context, stream_config(&address, retention)).await?;
    let info = stream.cached_info().clone();
    let stats = Arc::new(Stats::default());
    stats.store(&info.state);
    Ok(Arc::new(Engine {
        describe: format!(
            "NATS JetStream {} stream {}",
            address.public, address.stream
        ),
        name: address.stream,
        client,
        context,
        stream,
        tail: tokio::sync::Mutex::new(None),
        stats,
    }))
}

/// The stream `wanted` names: as it is when it exists, else created as
/// `wanted`. An existing stream's limits and replicas are the log's and
/// stay as they are (see the module doc); a node that asks for others says
/// so in a warning.
async fn open_stream(context: &Context, wanted: stream::Config) -> Result<Stream, HistoryError> {
    let name = wanted.name.clone();
    let setting_up = |err: &dyn Display| {
        HistoryError::Failed(format!(
            "NATS JetStream: cannot set up the stream `{name}`: {err}"
        ))
    };
    let stream = match context.get_stream(&name).await {
        Ok(stream) => stream,
        Err(err)
            if matches!(err.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            match context.create_stream(wanted.clone()).await {
                Ok(stream) => return Ok(stream),
                // Another node created it meanwhile.
                Err(err)
                    if matches!(err.kind(), CreateStreamErrorKind::JetStream(ref e)
                        if e.error_code() == ErrorCode::STREAM_NAME_EXIST) =>
                {
                    context
                        .get_stream(&name)
                        .await
                        .map_err(|err| unavailable("opening the stream", err))?
                }
                Err(err) => {
                    return Err(match err.kind() {
                        CreateStreamErrorKind::TimedOut
                        | CreateStreamErrorKind::JetStreamUnavailable => {
                            unavailable("setting up the stream", err)
                        }
                        _ => setting_up(&err),
                    })
                }
            }
        }
        Err(err) => return Err(unavailable("opening the stream", err)),
    };
    let config = &stream.cached_info().config;
    if !config.subjects.contains(&wanted.subjects[0]) {
        return Err(setting_up(&format!(
            "it exists without the subjects `{}`",
            wanted.subjects[0]
        )));
    }
    let limits = |c: &stream::Config| (c.max_messages, c.max_bytes, c.max_age, c.num_replicas);
    if limits(config) != limits(&wanted) {
        tracing::warn!(
            stream = %name,
            log = ?limits(config),
            node = ?limits(&wanted),
            "the stream keeps its own limits and replicas (max messages, bytes, age, replicas), \
             not this node's; change them on the stream"
        );
    }
    Ok(stream)
}

async fn connect_client(address: &Address) -> Result<Client, HistoryError> {
    let mut options = ConnectOptions::new()
        .name("tidings")
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .require_tls(address.tls);
    if let Some(path) = &address.creds {
        options = options.credentials_file(path).await.map_err(|err| {
            HistoryError::Failed(format!(
                "cannot read the NATS credentials file {}: {err}",
                path.display()
            ))
        })?;
    }
    if let Some(path) = &address.ca {
        // async-nats reads the file only once connected, and then says
        // neither which file nor that it was the CA file.
        let pem = std::fs::read(path).map_err(|err| {
            HistoryError::Failed(format!(
                "cannot read the NATS URL's `ca` file {}: {err}",
                path.display()
            ))
        })?;
        let begin = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(begin.len()).any(|w| w == begin) {
            return Err(HistoryError::Failed(format!(
                "the NATS URL's `ca` file {} holds no PEM certificate",
                path.display()
            )));
        }
        options = options.add_root_certificates(path.clone());
    }
    options = match &address.auth {
        Auth::None => options,
        Auth::Token(token) => options.token(token.clone()),
        Auth::UserPassword(user, password) => {
            options.user_and_password(user.clone(), password.clone())
        }
    };
    options
        .connect(address.servers.clone())
        .await
        .map_err(|err| {
            let why = format!("cannot connect to {}: {err}", address.public);
            match err.kind() {
                // Waiting will not make the credentials right.
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    HistoryError::Failed(why)
                }
                _ => HistoryError::Unavailable(why),
            }
        })
}

fn stream_config(address: &Address, retention: Retention) -> stream::Config {
    let limit = |bound: Option<u64>| bound.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let max_age = retention.age.unwrap_or_default();
    stream::Config {
        name: address.stream.clone(),
        subjects: vec![format!("{}.>", address.stream)],
        max_messages: limit(retention.events),
        max_bytes: limit(retention.bytes),
        max_age,
        discard: DiscardPolicy::Old,
        storage: if address.memory {
            StorageType::Memory
        } else {
            StorageType::File
        },
        num_replicas: address.replicas,
        duplicate_window: if max_age.is_zero() {
            DUPLICATE_WINDOW
        } else {
            DUPLICATE_WINDOW.min(max_age)
        },
        allow_direct: true,
        ..stream::Config::default()
    }
}

struct Engine {
    describe: String,
    name: String,
    client: Client,
    context: Context,
    stream: Stream,
    tail: tokio::sync::Mutex<Option<Tail>>,
    stats: Arc<Stats>,
}

/// The consumer `follow` reads from, and where it stands.
struct Tail {
    messages: Ordered,
    /// The position of the last event handed out.
    after: u64,
    /// The client's connection count when it was made: a consumer does not
    /// outlive the server that held it.
    connects: u64,
}

impl Engine {
    fn subject(&self, id: &str) -> String {
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.name)
    }

    async fn append(&self, events: &[Event]) -> Result<Vec<Appended>, HistoryError> {
        let now = now_ms();
        let mut landed = Vec::with_capacity(events.len());
        // Sent in order on one connection, so the stream stores them in order;
        // acknowledgements are awaited only once the window is sent.
        for window in events.chunks(PIPELINE) {
            let mut acks = Vec::with_capacity(window.len());
            for event in window {
                acks.push(self.publish(event, now).await?);
            }
            for (event, ack) in window.iter().zip(acks) {
                landed.push(self.settle(event, ack.await, now).await?);
            }
        }
        self.refresh_stats();
        Ok(landed)
    }

    async fn publish(&self, event: &Event, now: u64) -> Result<PublishAckFuture, HistoryError> {
        // The client keeps what it is given while disconnected and sends it
        // once it reconnects: a publication refused now would be stored
        // later, after what was published since.
        if self.client.connection_state() != State::Connected {
            return Err(HistoryError::Unavailable(
                "NATS JetStream: disconnected from the servers".into(),
            ));
        }
        let subject = self.subject(&event.id);
        let mut headers = HeaderMap::new();
        // The hash rather than the id: ids are the publishers', and a header
        // value must not hold a line break.
        headers.insert(NATS_MESSAGE_ID, &subject[self.name.len() + 1..]);
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        let payload = record::encode(event, now).into();
        self.context
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(publish_error)
    }

    async fn settle(
        &self,
        event: &Event,
        ack: Result<PublishAck, PublishError>,
        now: u64,
    ) -> Result<Appended, HistoryError> {
        match ack {
            Ok(ack) if !ack.duplicate => Ok(Appended::New(ack.sequence)),
            // A clustered stream answers a duplicate of a message not yet
            // applied with position 0.
            Ok(ack) => {
                self.resolve(event, Some(ack.sequence).filter(|&seq| seq > 0), now)
                    .await
            }
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                self.resolve(event, None, now).await
            }
            Err(err) => Err(publish_error(err)),
        }
    }

    /// Where the event the server refused is: the message retained on its
    /// subject, else the position the server gave, else, if the retained
    /// message went in the meantime (retention) or is not applied yet (a
    /// cluster), wherever publishing it again lands.
    async fn resolve(
        &self,
        event: &Event,
        mut known: Option<u64>,
        now: u64,
    ) -> Result<Appended, HistoryError> {
        for _ in 0..RESOLVE_ATTEMPTS {
            match self.retained(&event.id).await? {
                Some((seq, id)) if id == event.id => return Ok(Appended::Duplicate(seq)),
                Some((seq, id)) => {
                    return Err(HistoryError::Failed(format!(
                        "event ids `{id}` (position {seq}) and `{}` have the same hash: \
                         the second cannot be stored",
                        event.id
                    )))
                }
                None => {}
            }
            if let Some(seq) = known {
                return Ok(Appended::Duplicate(seq));
            }
            match self.publish(event, now).await?.await {
                Ok(ack) if !ack.duplicate => return Ok(Appended::New(ack.sequence)),
                Ok(ack) => known = Some(ack.sequence).filter(|&seq| seq > 0),
                Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {}
                Err(err) => return Err(publish_error(err)),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(HistoryError::Unavailable(format!(
            "NATS JetStream refuses event `{}` as a duplicate but holds no message for it",
            event.id
        )))
    }

    /// The position and id of the message on the subject of `id`, asked of
    /// the stream leader: a replica's direct answer may lag behind what the
    /// leader just refused.
    async fn retained(&self, id: &str) -> Result<Option<(u64, Box<str>)>, HistoryError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject(id))
            .await
        {
            Ok(message) => {
                let head = RecordHead::read(&message.payload)
                    .ok_or_else(|| undecodable(message.sequence))?;
                Ok(Some((message.sequence, head.id)))
            }
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(unavailable("looking up an id", err)),
        }
    }

    async fn locate(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        // A message with another id is a hash collision: not this event.
        Ok(self
            .retained(id)
            .await?
            .and_then(|(seq, found)| (*found == *id).then_some(seq)))
    }

    /// Reads through the stream leader, never a replica's direct answer: a
    /// replica that lags would answer short, and a short (above all an
    /// empty) answer ends a subscriber's replay, skipping what the replica
    /// did not have yet. The leader's state bounds the read: it has stored
    /// every event it acknowledged, and a sequence it reports is in the
    /// stream on every replica that catches up. A small read then asks the
    /// leader for each message, all at once; a large one takes an ordered
    /// consumer, which streams the messages in batches (about 2.5 times as
    /// fast as gets for thousands of events) and, wherever it is placed,
    /// delivers everything up to the bound in order.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<SharedEvent>, HistoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let state = self.state().await?;
        let (first, last) = (state.first_sequence, state.last_sequence);
        let start = after.saturating_add(1).max(first);
        if state.messages == 0 || start > last {
            return Ok(Vec::new());
        }
        let count = (last - start + 1).min(limit as u64);
        if count <= SMALL_READ {
            self.get_each(start, count).await
        } else {
            self.consume(start, count, last).await
        }
    }

    /// The `count` events from `start`, one leader get each, sent at once.
    async fn get_each(&self, start: u64, count: u64) -> Result<Vec<SharedEvent>, HistoryError> {
        let gets = (start..start + count).map(|seq| self.stream.get_raw_message(seq));
        let mut events = Vec::with_capacity(count as usize);
        for result in futures_util::future::join_all(gets).await {
            match result {
                Ok(message) => events.push(decode(message.sequence, &message.payload)?),
                // Retention removed the front since the state was read: the
                // positions skipped tell the reader so.
                Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => {
                    if !events.is_empty() {
                        // Not the front: trimming takes no message from the
                        // middle, so stop here rather than leave a hole.
                        break;
                    }
                }
                Err(err) => return Err(unavailable("reading the stream", err)),
            }
        }
        Ok(events)
    }

    /// Up to `count` events from `start` through an ordered consumer,
    /// stopping at `last`, the leader's newest sequence when the read began.
    async fn consume(
        &self,
        start: u64,
        count: u64,
        last: u64,
    ) -> Result<Vec<SharedEvent>, HistoryError> {
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..OrderedConfig::default()
            })
            .await
            .map_err(|err| unavailable("creating a consumer", err))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|err| unavailable("creating a consumer", err))?;
        let mut events = Vec::with_capacity(count as usize);
        while (events.len() as u64) < count {
            let message = match tokio::time::timeout(REQUEST_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(err))) => return Err(unavailable("reading the stream", err)),
                Ok(None) => return Err(unavailable("reading the stream", "the consumer ended")),
                Err(_) => {
                    return Err(unavailable(
                        "reading the stream",
                        format!("no message within {} ms", REQUEST_TIMEOUT.as_millis()),
                    ))
                }
            };
            let seq = message
                .info()
                .map_err(|err| unavailable("reading the stream", err))?
                .stream_sequence;
            events.push(decode(seq, &message.payload)?);
            if seq >= last {
                break;
            }
        }
        Ok(events)
    }

    async fn follow(
        &self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<SharedEvent>, HistoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tail = self.tail.lock().await;
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        let current = match tail.take() {
            Some(kept) if kept.after == after && kept.connects == connects => tail.insert(kept),
            _ => tail.insert(self.open_tail(after, connects).await?),
        };
        let pulled = self.pull(current, limit, wait).await;
        match &pulled {
            Err(_) => *tail = None,
            // Nothing came although the log holds more: the consumer died with
            // the server that held it (the stream's leader failed over), which
            // the client would notice only after two missed 15 s heartbeats.
            // The next call starts a new one (so it does when the stream
            // cannot say, which the follower learns from its own check).
            Ok(events) if events.is_empty() => {
                if !matches!(self.last().await, Ok(last) if last <= after) {
                    *tail = None;
                }
            }
            Ok(_) => {}
        }
        pulled
    }

    async fn open_tail(&self, after: u64, connects: u64) -> Result<Tail, HistoryError> {
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..OrderedConfig::default()
            })
            .await
            .map_err(|err| unavailable("creating a consumer", err))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| unavailable("creating a consumer", err))?;
        Ok(Tail {
            messages,
            after,
            connects,
        })
    }

    /// Waits for the first event, then takes what else has arrived.
    async fn pull(
        &self,
        tail: &mut Tail,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<SharedEvent>, HistoryError> {
        let mut events = Vec::new();
        let Ok(mut next) = tokio::time::timeout(wait, tail.messages.next()).await else {
            // Nothing came: an idle log, or no server to say otherwise.
            if self.client.connection_state() != State::Connected {
                return Err(HistoryError::Unavailable(
                    "NATS JetStream: disconnected from the servers".into(),
                ));
            }
            return Ok(events);
        };
        loop {
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(unavailable("following the stream", err)),
                None => return Err(unavailable("following the stream", "the consumer ended")),
            };
            let seq = message
                .info()
                .map_err(|err| unavailable("following the stream", err))?
                .stream_sequence;
            events.push(decode(seq, &message.payload)?);
            tail.after = seq;
            if events.len() == limit {
                break;
            }
            match self.arrived(&mut tail.messages).await {
                Some(arrived) => next = arrived,
                None => break,
            }
        }
        Ok(events)
    }

    /// The next message if it has arrived. The rest of a pull's batch is
    /// often still being read off the socket, so the connection's task gets
    /// one turn before the answer is no.
    async fn arrived(&self, messages: &mut Ordered) -> Option<Option<OrderedItem>> {
        if let Some(arrived) = messages.next().now_or_never() {
            return Some(arrived);
        }
        tokio::task::yield_now().await;
        messages.next().now_or_never()
    }

    async fn last(&self) -> Result<u64, HistoryError> {
        Ok(self.state().await?.last_sequence)
    }

    /// The stream's state as its leader has it now; the figures are kept
    /// for `stats`.
    async fn state(&self) -> Result<stream::State, HistoryError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|err| unavailable("reading the stream's state", err))?;
        self.stats.store(&info.state);
        Ok(info.state)
    }

    /// Refreshes the figures `stats` gives in the background, at most once a
    /// second.
    fn refresh_stats(&self) {
        if !self.stats.due() {
            return;
        }
        let stream = self.stream.clone();
        let stats = Arc::clone(&self.stats);
        tokio::spawn(async move {
            if let Ok(info) = stream.get_info().await {
                stats.store(&info.state);
            }
        });
    }
}

impl SharedLog for Engine {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn append<'a>(&'a self, events: &'a [Event]) -> Pending<'a, Vec<Appended>> {
        Box::pin(self.append(events))
    }

    fn read_after(&self, after: u64, limit: usize) -> Pending<'_, Vec<SharedEvent>> {
        Box::pin(self.read_after(after, limit))
    }

    fn follow(&self, after: u64, limit: usize, wait: Duration) -> Pending<'_, Vec<SharedEvent>> {
        Box::pin(self.follow(after, limit, wait))
    }

    fn locate<'a>(&'a self, id: &'a str) -> Pending<'a, Option<u64>> {
        Box::pin(self.locate(id))
    }

    fn last(&self) -> Pending<'_, u64> {
        Box::pin(self.last())
    }

    /// JetStream applies the limits itself.
    fn trim(&self) -> Pending<'_, ()> {
        Box::pin(async move {
            self.refresh_stats();
            Ok(())
        })
    }

    fn stats(&self) -> HistoryStats {
        HistoryStats {
            events: self.stats.events.load(Ordering::Relaxed),
            bytes: self.stats.bytes.load(Ordering::Relaxed),
            damaged: 0,
        }
    }
}

/// The stream's size as last seen.
#[derive(Default)]
struct Stats {
    events: AtomicU64,
    bytes: AtomicU64,
    refreshed: Mutex<Option<Instant>>,
}

impl Stats {
    fn store(&self, state: &stream::State) {
        self.events.store(state.messages, Ordering::Relaxed);
        self.bytes.store(state.bytes, Ordering::Relaxed);
    }

    /// Whether a second has passed since the last refresh; if so, starts the
    /// next second.
    fn due(&self) -> bool {
        let mut refreshed = self.refreshed.lock();
        let now = Instant::now();
        if refreshed.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return false;
        }
        *refreshed = Some(now);
        true
    }
}

fn decode(seq: u64, payload: &[u8]) -> Result<SharedEvent, HistoryError> {
    record::decode(seq, payload)
        .map(Arc::new)
        .ok_or_else(|| undecodable(seq))
}

fn undecodable(seq: u64) -> HistoryError {
    HistoryError::Failed(format!(
        "NATS JetStream: the message at position {seq} is not an event record"
    ))
}

fn publish_error(err: PublishError) -> HistoryError {
    match err.kind() {
        PublishErrorKind::MaxPayloadExceeded => HistoryError::Failed(format!(
            "NATS JetStream: the event is larger than the server takes: {err}"
        )),
        _ => unavailable("publishing", err),
    }
}

fn unavailable(doing: &str, err: impl Display) -> HistoryError {
    HistoryError::Unavailable(format!("NATS JetStream, {doing}: {err}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
