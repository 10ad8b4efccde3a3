//! The shared log on Redis Streams.
//!
//! This module owns the stream every node of a cluster appends to, the
//! connections to it, and the script that appends and applies retention.
//! A URL's `stream` parameter names the log; its keys share that name as a
//! hash tag, so a Redis Cluster keeps them in one slot:
//!
//! | key | holds |
//! |---|---|
//! | `{NAME}:log` | the stream: entry `0-N` is the event at position N, with fields `r` (the record), `t` (append time, Unix ms) and `i` (its id) |
//! | `{NAME}:ids` | hash: id → position of each retained event |
//! | `{NAME}:meta` | hash: `last`, the newest position ever given; `bytes`, the retained records' total size; `replicated`, the replicated mark (with `replicas`); `retain_events`, `retain_bytes`, `retain_age_ms`, the log's retention (`none`: unbounded) |
//!
//! Appending is one Lua script per batch (`redis/append.lua`): Redis runs a
//! script alone, so two nodes appending the same id at once store it once,
//! and the script trims the oldest entries past retention in the same step.
//!
//! **Retention belongs to the log.** The first script run on a log stores
//! the node's bounds (`--retain-*`) in `{NAME}:meta`; every run after that,
//! by any node, applies the stored ones. A node started with other bounds
//! logs a warning and applies the log's: two nodes trimming one log to
//! different bounds would each undo the other's, and the smaller would win
//! while the larger looked configured. Refusing to start was the other
//! choice; it would turn a forgotten flag into a node that does not come
//! up, and make any change of bounds a stop of every node at once. To
//! change the bounds, set the fields in `{NAME}:meta` (`HSET {NAME}:meta
//! retain_events 100000`); every node applies them at its next run, within
//! a second. Age is measured against the append time each node writes with
//! its own clock, and trimmed by whichever node runs the script with its
//! own: node clocks must agree to the second for `--retain-age` to mean
//! what it says.
//!
//! **What a failover may lose.** Redis replicates asynchronously. Without
//! `replicas` in the URL, a publication is acknowledged once the primary has
//! it, and nodes read and dispatch what the primary has: a failover to a
//! replica that had not received the last writes loses them, though
//! acknowledged and perhaps delivered, and the new primary gives their
//! positions to later events; nodes that dispatched the lost ones do not
//! dispatch those. With `replicas=N` a publication is acknowledged only
//! once `WAIT` says N replicas hold it, and readers stop at the same point:
//! after a successful `WAIT` the appender raises `replicated` in
//! `{NAME}:meta` to the newest position its script saw (replication is one
//! ordered stream, so every node's earlier writes are held too), and
//! `read_after`, `follow` and `last` answer nothing past it. `follow` holds
//! back what it read past the mark and looks again every few milliseconds
//! within its wait (the mark usually follows within one `WAIT`). `last`
//! answers the mark, not the newest position: a node starts following after
//! `last`, and one that started past positions a failover then gave to
//! other events would never dispatch those. Writes whose `WAIT` fell short
//! stay on the primary, unread, until a later `WAIT` (an append, or `trim`
//! about once a second) covers them; a retry of the publication is then a
//! duplicate. The mark is itself replicated asynchronously, so a new
//! primary may hold a lower one than its predecessor: each node keeps the
//! highest mark it has seen and reads up to it while the log still reaches
//! that far (those events were on the replicas, and the new primary was
//! one), so no node sees the log go back and takes it for a reset. This is
//! as strong as `WAIT`: with more replicas than N, Sentinel may promote one
//! that was not among the N.
//!
//! **Credentials and TLS** are the URL's, as Redis clients take them:
//! `redis://:PASSWORD@host:port` for `requirepass`, `redis://USER:PASSWORD@…`
//! for an ACL user (percent-encoded), and `rediss://` for TLS, which checks
//! the server's certificate against the system's CAs, or only against those
//! in the PEM file that `ca=PATH` names (a private CA; with
//! `rediss+sentinel://` the Sentinels' certificates too). The certificate
//! must name the host as the URL writes it. A wrong or missing password is
//! refused at connect (`WRONGPASS`, `NOAUTH`), as is a certificate the CAs
//! did not sign; no error or description holds the password.
//!
//! Three connections, each reopened on the next call after it fails (through
//! the Sentinels, when the URL names them, so a failover is followed): one
//! for writes, whose `WAIT` holds back what is queued behind it; one for
//! reads; and one for `XREAD BLOCK`, which holds its connection for as long
//! as it waits.

mod address;
mod link;

use self::address::Target;
use self::link::Link;
use super::{record, Appended, HistoryError, HistoryStats, Pending, Retention, SharedLog};
use crate::event::{Event, SharedEvent};
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most entries one script run removes: Redis serves nobody else while a
/// script runs, so a large backlog is trimmed over several runs.
const TRIM_CHUNK: u64 = 2048;

/// Connects to the stream a `redis://`, `rediss://` or `redis+sentinel://`
/// URL names.
pub async fn connect(url: &str, retention: Retention) -> Result<Arc<dyn SharedLog>, HistoryError> {
    let target = Target::parse(url)?;
    let connector = Arc::new(target.connector);
    let log = RedisLog {
        describe: format!("{} stream {}", target.address, target.options.stream),
        keys: Keys::new(&target.options.stream),
        replicas: target.options.replicas,
        retention,
        script: Script::new(include_str!("redis/append.lua")),
        mark: Script::new(MARK_SCRIPT),
        writes: Link::new(&connector),
        reads: Link::new(&connector),
        follows: Link::new(&connector),
        events: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        seen: AtomicU64::new(0),
        stored: parking_lot::Mutex::new(None),
    };
    // Tells at once whether the server answers, and with a password missing
    // says NOAUTH: unauthenticated, the script's long command would be
    // answered only "Protocol error: unauthenticated multibulk length".
    log.reads
        .run(&log.describe, Duration::ZERO, |mut conn| async move {
            redis::cmd("PING").query_async::<()>(&mut conn).await
        })
        .await?;
    // Learns the log's size.
    log.trim().await?;
    Ok(Arc::new(log))
}

struct RedisLog {
    describe: String,
    keys: Keys,
    replicas: Option<Replicas>,
    /// This node's bounds: stored with the log if it has none yet.
    retention: Retention,
    script: Script,
    mark: Script,
    writes: Link,
    reads: Link,
    follows: Link,
    events: AtomicU64,
    bytes: AtomicU64,
    /// With `replicas`: the highest bound this node has read or written,
    /// so that its reads never go back below it (see the module doc).
    seen: AtomicU64,
    /// The log's bounds as last read, to say once when they change.
    stored: parking_lot::Mutex<Option<Retention>>,
}

struct Keys {
    log: String,
    ids: String,
    meta: String,
}

impl Keys {
    fn new(stream: &str) -> Keys {
        Keys {
            log: format!("{{{stream}}}:log"),
            ids: format!("{{{stream}}}:ids"),
            meta: format!("{{{stream}}}:meta"),
        }
    }
}

/// How many replicas must hold an append before it is acknowledged.
#[derive(Clone, Copy)]
struct Replicas {
    count: u32,
    timeout: Duration,
}

/// What a script run answered.
struct Applied {
    removed: u64,
    /// The newest position ever given, and the replicated mark, after it.
    last: u64,
    replicated: u64,
    /// One per event: its position, negated for a duplicate.
    positions: Vec<i64>,
}

/// Raises `replicated` in the meta hash to ARGV[1], never lowers it;
/// answers the mark.
const MARK_SCRIPT: &str = "\
local current = tonumber(redis.call('HGET', KEYS[1], 'replicated') or '0') or 0
local through = tonumber(ARGV[1])
if through > current then
  redis.call('HSET', KEYS[1], 'replicated', through)
  return through
end
return current";

/// How often `follow` looks again at the replicated mark while it holds
/// back events the mark has not reached: a publisher's WAIT answers within
/// a few milliseconds while the replicas keep up.
const MARK_POLL: Duration = Duration::from_millis(5);
/// The least time `follow` gives the mark to reach events it read, however
/// short its own wait.
const MARK_GRACE: Duration = Duration::from_millis(50);

impl RedisLog {
    /// Runs the append script on `events` (none: only retention), then
    /// waits for replicas when `replicas` asks it, and once they hold
    /// everything, raises the replicated mark to the newest position.
    async fn apply(
        &self,
        events: &[Event],
        replicas: Option<Replicas>,
    ) -> Result<Applied, HistoryError> {
        let now = unix_ms();
        let none = || "none".to_string();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.keys.log)
            .key(&self.keys.ids)
            .key(&self.keys.meta)
            .arg(now)
            .arg(self.retention.events.map_or_else(none, |n| n.to_string()))
            .arg(self.retention.bytes.map_or_else(none, |n| n.to_string()))
            .arg(
                self.retention
                    .age
                    .map_or_else(none, |age| age.as_millis().to_string()),
            )
            .arg(TRIM_CHUNK);
        for event in events {
            invocation.arg(&*event.id).arg(record::encode(event, now));
        }
        let waited = replicas.map_or(Duration::ZERO, |r| r.timeout);
        let invocation = &invocation;
        let (answer, acknowledged) = self
            .writes
            .run(&self.describe, waited, |mut conn| async move {
                let answer: Vec<i64> = invocation.invoke_async(&mut conn).await?;
                let Some(replicas) = replicas else {
                    return Ok((answer, 0));
                };
                let acknowledged = self.replicate(&mut conn, replicas, &answer).await?;
                Ok((answer, acknowledged))
            })
            .await?;
        let [events_left, bytes_left, removed, last, replicated, r_events, r_bytes, r_age, ref positions @ ..] =
            answer[..]
        else {
            return Err(self.unexpected("the append script"));
        };
        if positions.len() != events.len() {
            return Err(self.unexpected("the append script"));
        }
        self.events
            .store(events_left.max(0) as u64, Ordering::Relaxed);
        self.bytes
            .store(bytes_left.max(0) as u64, Ordering::Relaxed);
        self.note_retention(r_events, r_bytes, r_age);
        if let Some(replicas) = replicas.filter(|r| acknowledged < r.count) {
            // Stored on the primary all the same: the publisher's retry is
            // answered as a duplicate once replicas catch up.
            return Err(HistoryError::Unavailable(format!(
                "{}: {acknowledged} of {} replicas acknowledged within {} ms",
                self.describe,
                replicas.count,
                replicas.timeout.as_millis()
            )));
        }
        let replicated = match replicas {
            // The mark was raised to `last` after the script answered.
            Some(_) => replicated.max(last),
            None => replicated,
        };
        Ok(Applied {
            removed: removed.max(0) as u64,
            last: last.max(0) as u64,
            replicated: replicated.max(0) as u64,
            positions: positions.to_vec(),
        })
    }

    /// WAITs for `replicas` on the connection that ran the script whose
    /// `answer` is given; once enough replicas hold everything it wrote
    /// (and so everything any node wrote before it: replication is one
    /// ordered stream), raises the mark to the newest position the script
    /// saw. Answers how many replicas acknowledged.
    async fn replicate(
        &self,
        conn: &mut MultiplexedConnection,
        replicas: Replicas,
        answer: &[i64],
    ) -> RedisResult<u32> {
        let acknowledged: u32 = redis::cmd("WAIT")
            .arg(replicas.count)
            .arg(replicas.timeout.as_millis().max(1) as u64)
            .query_async(conn)
            .await?;
        if acknowledged >= replicas.count {
            if let Some(&last) = answer.get(3) {
                let mark: u64 = self
                    .mark
                    .key(&self.keys.meta)
                    .arg(last.max(0))
                    .invoke_async(conn)
                    .await?;
                self.seen.fetch_max(mark, Ordering::Relaxed);
            }
        }
        Ok(acknowledged)
    }

    /// Says when the log's stored bounds differ from this node's, once per
    /// change.
    fn note_retention(&self, events: i64, bytes: i64, age_ms: i64) {
        let bound = |n: i64| u64::try_from(n).ok();
        let stored = Retention {
            events: bound(events),
            bytes: bound(bytes),
            age: bound(age_ms).map(Duration::from_millis),
        };
        let mut noted = self.stored.lock();
        if *noted == Some(stored) {
            return;
        }
        *noted = Some(stored);
        if stored != self.retention {
            tracing::warn!(
                engine = %self.describe,
                log = ?stored,
                node = ?self.retention,
                "the shared log keeps its own retention bounds, not this node's; \
                 change them in {} (retain_events, retain_bytes, retain_age_ms)",
                self.keys.meta
            );
        }
    }

    /// The newest position readers may see, given the log's `replicated`
    /// mark and newest position `last` as just read: with `replicas`, the
    /// mark, and never below what this node saw before while the log still
    /// reaches that far; without, no bound.
    fn readable(&self, replicated: u64, last: u64) -> u64 {
        if self.replicas.is_none() {
            return u64::MAX;
        }
        let seen = self.seen.load(Ordering::Relaxed);
        if last < seen {
            // Positions this node saw replicated are gone: the log was
            // emptied or recreated, and starts over.
            self.seen.store(replicated.min(last), Ordering::Relaxed);
            return replicated.min(last);
        }
        let readable = replicated.max(seen).min(last);
        self.seen.fetch_max(readable, Ordering::Relaxed);
        readable
    }

    /// The newest position readers may see, read now.
    async fn read_marks(&self) -> Result<u64, HistoryError> {
        let mut command = redis::cmd("HMGET");
        command.arg(&self.keys.meta).arg("replicated").arg("last");
        let (replicated, last): (Option<u64>, Option<u64>) = self
            .reads
            .run(&self.describe, Duration::ZERO, |mut conn| {
                let command = &command;
                async move { command.query_async(&mut conn).await }
            })
            .await?;
        Ok(self.readable(replicated.unwrap_or(0), last.unwrap_or(0)))
    }

    fn unexpected(&self, what: &str) -> HistoryError {
        HistoryError::Failed(format!("{}: unexpected answer from {what}", self.describe))
    }

    /// Decodes stream entries into events, their position taken from the
    /// entry id.
    fn decode(&self, entries: Vec<Entry>) -> Result<Vec<SharedEvent>, HistoryError> {
        entries
            .into_iter()
            .map(|(id, fields)| {
                let position = id
                    .strip_prefix("0-")
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| {
                        HistoryError::Failed(format!(
                            "{}: stream entry {id} is not a tidings position",
                            self.describe
                        ))
                    })?;
                fields
                    .chunks_exact(2)
                    .find(|pair| pair[0] == b"r")
                    .and_then(|pair| record::decode(position, &pair[1]))
                    .map(Arc::new)
                    .ok_or_else(|| {
                        HistoryError::Failed(format!(
                            "{}: the event at position {position} does not decode",
                            self.describe
                        ))
                    })
            })
            .collect()
    }
}

/// A stream entry as Redis answers it: id, then field names and values in
/// turn.
type Entry = (String, Vec<Vec<u8>>);

/// The position a stream entry id `0-N` stands for.
fn position(id: &str) -> Option<u64> {
    id.strip_prefix("0-").and_then(|n| n.parse().ok())
}

/// The entries at positions up to `readable`; entries come in order.
fn up_to(mut entries: Vec<Entry>, readable: u64) -> Vec<Entry> {
    let keep = entries.partition_point(|(id, _)| position(id).is_none_or(|p| p <= readable));
    entries.truncate(keep);
    entries
}

impl SharedLog for RedisLog {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn append<'a>(&'a self, events: &'a [Event]) -> Pending<'a, Vec<Appended>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let applied = self.apply(events, self.replicas).await?;
            Ok(applied
                .positions
                .into_iter()
                .map(|p| match p {
                    p if p < 0 => Appended::Duplicate(p.unsigned_abs()),
                    p => Appended::New(p as u64),
                })
                .collect())
        })
    }

    fn read_after(&self, after: u64, limit: usize) -> Pending<'_, Vec<SharedEvent>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            pipe.cmd("XRANGE")
                .arg(&self.keys.log)
                .arg(format!("0-{}", after.saturating_add(1)))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                // After the range: the mark covers what the range holds.
                .cmd("HMGET")
                .arg(&self.keys.meta)
                .arg("replicated")
                .arg("last");
            let (entries, (replicated, last)): (Vec<Entry>, (Option<u64>, Option<u64>)) = self
                .reads
                .run(&self.describe, Duration::ZERO, |mut conn| {
                    let pipe = &pipe;
                    async move { pipe.query_async(&mut conn).await }
                })
                .await?;
            let readable = self.readable(replicated.unwrap_or(0), last.unwrap_or(0));
            self.decode(up_to(entries, readable))
        })
    }

    fn follow(&self, after: u64, limit: usize, wait: Duration) -> Pending<'_, Vec<SharedEvent>> {
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let block = wait.as_millis();
            // BLOCK 0 would wait for ever.
            if block == 0 || limit == 0 {
                return self.read_after(after, limit).await;
            }
            let mut pipe = redis::pipe();
            pipe.cmd("XREAD")
                .arg("BLOCK")
                .arg(u64::try_from(block).unwrap_or(u64::MAX))
                .arg("COUNT")
                .arg(limit)
                .arg("STREAMS")
                .arg(&self.keys.log)
                .arg(format!("0-{after}"))
                .cmd("HMGET")
                .arg(&self.keys.meta)
                .arg("replicated")
                .arg("last");
            type Read = (
                Option<Vec<(String, Vec<Entry>)>>,
                (Option<u64>, Option<u64>),
            );
            let (streams, (replicated, last)): Read = self
                .follows
                .run(&self.describe, wait, |mut conn| {
                    let pipe = &pipe;
                    async move { pipe.query_async(&mut conn).await }
                })
                .await?;
            let entries = streams
                .and_then(|streams| streams.into_iter().next())
                .map_or_else(Vec::new, |(_, entries)| entries);
            let mut readable = self.readable(replicated.unwrap_or(0), last.unwrap_or(0));
            if self.replicas.is_some() {
                // Held back until the replicas hold them: the WAIT of the
                // append that wrote them usually answers within
                // milliseconds.
                let deadline = (started + wait).max(tokio::time::Instant::now() + MARK_GRACE);
                while entries
                    .first()
                    .and_then(|(id, _)| position(id))
                    .is_some_and(|first| first > readable)
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(MARK_POLL).await;
                    readable = self.read_marks().await?;
                }
            }
            self.decode(up_to(entries, readable))
        })
    }
    fn locate<'a>(&'a self, id: &'a str) -> Pending<'a, Option<u64>> {
        Box::pin(async move {
            let mut command = redis::cmd("HGET");
            command.arg(&self.keys.ids).arg(id);
            self.reads
                .run(&self.describe, Duration::ZERO, |mut conn| {
                    let command = &command;
                    async move { command.query_async(&mut conn).await }
                })
                .await
        })
    }

    /// With `replicas`, the replicated mark rather than the newest
    /// position: a node starts following after `last`, and one that
    /// started past positions a failover then gave to other events would
    /// never dispatch those.
    fn last(&self) -> Pending<'_, u64> {
        Box::pin(async move {
            if self.replicas.is_some() {
                return self.read_marks().await;
            }
            let mut command = redis::cmd("HGET");
            command.arg(&self.keys.meta).arg("last");
            let last: Option<u64> = self
                .reads
                .run(&self.describe, Duration::ZERO, |mut conn| {
                    let command = &command;
                    async move { command.query_async(&mut conn).await }
                })
                .await?;
            Ok(last.unwrap_or(0))
        })
    }

    /// Also raises the replicated mark past positions whose append did not
    /// see its replicas in time (or ran on an earlier primary), once the
    /// replicas hold them.
    fn trim(&self) -> Pending<'_, ()> {
        Box::pin(async move {
            let mut applied = self.apply(&[], None).await?;
            while applied.removed >= TRIM_CHUNK {
                applied = self.apply(&[], None).await?;
            }
            if let Some(replicas) = self.replicas {
                if applied.last > applied.replicated {
                    let last = applied.last as i64;
                    self.writes
                        .run(&self.describe, replicas.timeout, |mut conn| async move {
                            self.replicate(&mut conn, replicas, &[0, 0, 0, last]).await
                        })
                        .await?;
                }
            }
            Ok(())
        })
    }

    fn stats(&self) -> HistoryStats {
        HistoryStats {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            damaged: 0,
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
