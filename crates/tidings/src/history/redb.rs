//! Durable history in an embedded redb file, `history.redb` in the data
//! directory.
//!
//! Three tables make every lookup a seek:
//!
//! - `events`: sequence → record (append time, private flag, id, topics,
//!   frame). Replay is a range read starting at the cursor's sequence.
//! - `ids`: (id, sequence) → (). Locating a `Last-Event-ID` is one seek, and
//!   a reused id resolves to its earliest retained occurrence.
//! - `meta`: the running byte total, and the newest (sequence, id) once
//!   retention has emptied `events`, so sequences are never reused.
//!
//! Each `append` is one write transaction. The hub's committer calls it once
//! per batch, so one fsync covers every publisher in the batch: that is the
//! group commit. Retention runs in `trim`, off the committer thread, in small
//! transactions so the committer never waits long for redb's single writer.
//!
//! A failed write (disk full, read-only file system, I/O errors) leaves redb
//! unable to write until the file is reopened. The store then answers
//! `Unavailable`, keeps serving reads from the old handle, and reopens the
//! file once a write beside it succeeds.

use super::record::{decode, encode, RecordHead};
use super::{History, HistoryError, HistoryStats, Retention};
use crate::event::SharedEvent;
use crate::log_throttle::LogThrottle;
use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};
use redb::{
    Database, DatabaseError, ReadableTable, ReadableTableMetadata, StorageError, TableDefinition,
    WriteTransaction,
};
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The store's file inside the data directory.
pub const FILE_NAME: &str = "history.redb";

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const IDS: TableDefinition<(&str, u64), ()> = TableDefinition::new("ids");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_BYTES: &str = "bytes";
const META_LAST: &str = "last";

/// Events removed per trim transaction: small enough that the committer
/// waits a few milliseconds at most for the write lock.
const TRIM_CHUNK: usize = 2048;
/// With `Durability::Eventual`, the longest stretch without an fsync.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// After a failed write, how long publications are refused before the
/// store tries the file again.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Free space below which a write is refused before it starts: a write that
/// fails half-way costs a reopen of the file.
const MIN_FREE: u64 = 1 << 20;
/// redb's page cache; replay of recent history is served from it.
const CACHE_BYTES: usize = 64 << 20;

/// When an append is acknowledged relative to the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged after fsync: a crash or power cut loses nothing that was
    /// acknowledged.
    #[default]
    Immediate,
    /// Acknowledged once written to the store; fsynced at least every
    /// [`FLUSH_EVERY`]. A crash of the hub or of the machine loses up to that
    /// much acknowledged history.
    Eventual,
}

pub struct RedbHistory {
    path: PathBuf,
    durability: Durability,
    retention: Retention,
    /// `None` only between a failed reopen and the next successful one.
    db: RwLock<Option<Database>>,
    /// Why writes are refused, after one failed.
    fault: Mutex<Option<Fault>>,
    events: AtomicU64,
    bytes: AtomicU64,
    /// When the last fsynced commit finished.
    synced: Mutex<Instant>,
    /// Whether some commits since then skipped the fsync.
    unsynced: AtomicBool,
    /// Held by the running trim, so a slow one is never run twice at once.
    trimming: Mutex<()>,
    /// Damaged records met by reads and trims; see [`RedbHistory::damaged`].
    damaged: AtomicU64,
    damaged_log: LogThrottle,
}

struct Fault {
    reason: String,
    retry_at: Instant,
}

impl RedbHistory {
    /// Opens (or creates) the store in `dir`. redb repairs a file that was
    /// not closed cleanly; a file it cannot repair is reported with the way
    /// out, and a file held by another hub is refused.
    pub fn open(
        dir: impl AsRef<Path>,
        durability: Durability,
        retention: Retention,
    ) -> Result<RedbHistory, HistoryError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| {
            HistoryError::Failed(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(FILE_NAME);
        let db = open_file(&path)?;
        RedbHistory::with_database(path, db, durability, retention)
    }

    fn with_database(
        path: PathBuf,
        db: Database,
        durability: Durability,
        retention: Retention,
    ) -> Result<RedbHistory, HistoryError> {
        let (events, bytes) = prepare(&db).map_err(|e| failure(&path, e))?;
        Ok(RedbHistory {
            path,
            durability,
            retention,
            db: RwLock::new(Some(db)),
            fault: Mutex::new(None),
            events: AtomicU64::new(events),
            bytes: AtomicU64::new(bytes),
            synced: Mutex::new(Instant::now()),
            unsynced: AtomicBool::new(false),
            trimming: Mutex::new(()),
            damaged: AtomicU64::new(0),
            damaged_log: LogThrottle::default(),
        })
    }

    /// Closes the file cleanly once the hub has stopped: the next open then
    /// needs no repair, and with `Durability::Eventual` nothing unsynced is
    /// lost. Reads and writes after it answer `Unavailable`.
    pub fn close(&self) {
        *self.db.write() = None;
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database for a read.
    fn readable(&self) -> Result<MappedRwLockReadGuard<'_, Database>, HistoryError> {
        RwLockReadGuard::try_map(self.db.read(), Option::as_ref).map_err(|_| self.unavailable())
    }

    /// The open database for a write; after a failed write, reopens the file
    /// first, once the retry delay is over and the disk looks writable.
    fn writable(&self, needed: u64) -> Result<MappedRwLockReadGuard<'_, Database>, HistoryError> {
        let mut fault = self.fault.lock();
        if let Some(current) = fault.as_mut() {
            if Instant::now() < current.retry_at {
                return Err(HistoryError::Unavailable(current.reason.clone()));
            }
            match self.reopen(needed) {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), "history store writable again");
                    *fault = None;
                }
                Err(reason) => {
                    current.reason = reason.clone();
                    current.retry_at = Instant::now() + RETRY_AFTER;
                    return Err(HistoryError::Unavailable(reason));
                }
            }
        } else if let Err(reason) = room(&self.path, needed) {
            // Refusing up front keeps redb from a half-done write, which
            // would need a reopen to clear.
            return Err(HistoryError::Unavailable(reason));
        }
        drop(fault);
        self.readable()
    }

    /// Replaces the handle that saw a failed write with a fresh one.
    fn reopen(&self, needed: u64) -> Result<(), String> {
        writable_file(&self.path)?;
        room(&self.path, needed)?;
        // Readers lose the old handle below even when the new one then fails
        // to open, so the disk must first show that it takes a write: one
        // that returns I/O errors still opens files and reports free space.
        probe(&self.path)?;
        let mut slot = self.db.write();
        // The file lock belongs to the old handle: it must go first.
        *slot = None;
        let db = open_file(&self.path).map_err(|e| e.to_string())?;
        let (events, bytes) = prepare(&db).map_err(|e| failure(&self.path, e).to_string())?;
        self.events.store(events, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        *slot = Some(db);
        Ok(())
    }

    /// Records a failed write; publications are refused until a reopen.
    fn fail(&self, error: StoreError) -> HistoryError {
        let reason = match failure(&self.path, error) {
            HistoryError::Unavailable(reason) | HistoryError::Failed(reason) => reason,
        };
        tracing::warn!(%reason, "history write failed; refusing publications until it can write again");
        *self.fault.lock() = Some(Fault {
            reason: reason.clone(),
            retry_at: Instant::now() + RETRY_AFTER,
        });
        HistoryError::Unavailable(reason)
    }

    fn unavailable(&self) -> HistoryError {
        let reason = match self.fault.lock().as_ref() {
            Some(fault) => fault.reason.clone(),
            None => format!("{} is closed", self.path.display()),
        };
        HistoryError::Unavailable(reason)
    }

    /// How the next commit reaches the disk: always fsynced when durable;
    /// otherwise fsynced once per [`FLUSH_EVERY`].
    fn commit_durability(&self) -> redb::Durability {
        match self.durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::Eventual if self.synced.lock().elapsed() >= FLUSH_EVERY => {
                redb::Durability::Immediate
            }
            Durability::Eventual => redb::Durability::None,
        }
    }

    fn committed(&self, durability: redb::Durability) {
        if matches!(durability, redb::Durability::None) {
            self.unsynced.store(true, Ordering::Relaxed);
        } else {
            *self.synced.lock() = Instant::now();
            self.unsynced.store(false, Ordering::Relaxed);
        }
    }

    fn write_batch(
        &self,
        db: &Database,
        events: &[SharedEvent],
        records: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut txn = db.begin_write()?;
        let durability = self.commit_durability();
        txn.set_durability(durability);
        {
            let mut table = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            for (event, record) in events.iter().zip(records) {
                table.insert(event.seq, record.as_slice())?;
                ids.insert((&*event.id, event.seq), ())?;
            }
            let added: u64 = records.iter().map(|r| r.len() as u64).sum();
            let mut meta = txn.open_table(META)?;
            let bytes = read_u64(&meta, META_BYTES)? + added;
            meta.insert(META_BYTES, bytes.to_le_bytes().as_slice())?;
        }
        txn.commit()?;
        self.committed(durability);
        Ok(())
    }

    /// Removes up to [`TRIM_CHUNK`] of the oldest events that retention no
    /// longer covers; returns how many went.
    fn trim_chunk(&self, db: &Database, cutoff_ms: Option<u64>) -> Result<usize, StoreError> {
        let txn = db.begin_write()?;
        let (removed, bytes) = self.remove_expired(&txn, cutoff_ms)?;
        if removed == 0 {
            txn.abort()?;
            return Ok(0);
        }
        txn.commit()?;
        self.committed(redb::Durability::Immediate);
        self.events.fetch_sub(removed as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        Ok(removed)
    }

    /// A record whose checksum does not match: changed on disk after redb
    /// wrote it (redb checks its pages when it opens a file, not on every
    /// read). It is skipped, never sent changed, and said loudly.
    fn damaged(&self, seq: u64) {
        self.damaged.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.damaged_log.refused() {
            tracing::error!(
                path = %self.path.display(),
                seq,
                count,
                "a history record is damaged (its checksum does not match): skipped"
            );
        }
    }

    fn remove_expired(
        &self,
        txn: &WriteTransaction,
        cutoff_ms: Option<u64>,
    ) -> Result<(usize, u64), StoreError> {
        let mut events = txn.open_table(EVENTS)?;
        let mut ids = txn.open_table(IDS)?;
        let mut meta = txn.open_table(META)?;
        let mut count = events.len()?;
        let mut bytes = read_u64(&meta, META_BYTES)?;
        let (mut removed, mut freed) = (0, 0);
        while removed < TRIM_CHUNK {
            let Some((seq, len, head)) = events.first()?.map(|(k, v)| {
                let record = v.value();
                (k.value(), record.len() as u64, RecordHead::read(record))
            }) else {
                break;
            };
            // A damaged record goes when reached, whatever the retention:
            // it cannot be read. The newest stays, whose sequence sequencing
            // resumes after.
            let expired = head.as_ref().is_none_or(|head| {
                self.retention.events.is_some_and(|max| count > max)
                    || self.retention.bytes.is_some_and(|max| bytes > max)
                    || cutoff_ms.is_some_and(|cutoff| head.appended_ms < cutoff)
            });
            if !expired || (head.is_none() && count == 1) {
                break;
            }
            events.remove(seq)?;
            match &head {
                Some(head) => {
                    ids.remove((&*head.id, seq))?;
                }
                // Its id is unreadable too: the id's entry stays, and a
                // resume from that id replays what follows, as it should.
                None => self.damaged(seq),
            }
            if let (Some(head), 1) = (&head, count) {
                // Keep the newest sequence and id once nothing else does.
                meta.insert(META_LAST, encode_last(seq, &head.id).as_slice())?;
            }
            count -= 1;
            bytes = bytes.saturating_sub(len);
            freed += len;
            removed += 1;
        }
        meta.insert(META_BYTES, bytes.to_le_bytes().as_slice())?;
        Ok((removed, freed))
    }

    /// An fsync for commits that skipped theirs, under `Durability::Eventual`;
    /// runs with retention, about once a second.
    fn flush(&self, db: &Database) -> Result<(), StoreError> {
        if !self.unsynced.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate);
        txn.commit()?;
        self.committed(redb::Durability::Immediate);
        Ok(())
    }
}

impl History for RedbHistory {
    fn append(&self, events: &[SharedEvent]) -> Result<(), HistoryError> {
        let appended_ms = unix_ms();
        let records: Vec<Vec<u8>> = events
            .iter()
            .map(|event| encode(event, appended_ms))
            .collect();
        let added: u64 = records.iter().map(|r| r.len() as u64).sum();
        let db = self.writable(added)?;
        if let Err(error) = self.write_batch(&db, events, &records) {
            drop(db);
            return Err(self.fail(error));
        }
        self.events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<SharedEvent>, HistoryError> {
        let db = self.readable()?;
        let read = || -> Result<Vec<SharedEvent>, StoreError> {
            let txn = db.begin_read()?;
            let table = txn.open_table(EVENTS)?;
            let mut out = Vec::with_capacity(limit.min(1024));
            for entry in table
                .range::<u64>((Bound::Excluded(after), Bound::Unbounded))?
                .take(limit)
            {
                let (seq, record) = entry?;
                match decode(seq.value(), record.value()) {
                    Some(event) => out.push(Arc::new(event)),
                    None => self.damaged(seq.value()),
                }
            }
            Ok(out)
        };
        read().map_err(|e| failure(&self.path, e))
    }

    fn locate(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        let db = self.readable()?;
        let find = || -> Result<Option<u64>, StoreError> {
            let txn = db.begin_read()?;
            let ids = txn.open_table(IDS)?;
            let mut found = ids.range((id, 0)..=(id, u64::MAX))?;
            Ok(found.next().transpose()?.map(|(key, _)| key.value().1))
        };
        find().map_err(|e| failure(&self.path, e))
    }

    fn last(&self) -> Result<Option<(u64, Box<str>)>, HistoryError> {
        let db = self.readable()?;
        let find = || -> Result<Option<(u64, Box<str>)>, StoreError> {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            if let Some((seq, record)) = events.last()? {
                let head = RecordHead::read(record.value()).ok_or_else(|| corrupt(seq.value()))?;
                return Ok(Some((seq.value(), head.id)));
            }
            let meta = txn.open_table(META)?;
            let last = meta.get(META_LAST)?;
            Ok(last.and_then(|value| decode_last(value.value())))
        };
        find().map_err(|e| failure(&self.path, e))
    }

    fn trim(&self) -> Result<(), HistoryError> {
        let Some(_running) = self.trimming.try_lock() else {
            return Ok(());
        };
        if self.fault.lock().is_some() {
            // The next publication retries the file; nothing to trim until then.
            return Ok(());
        }
        let db = self.readable()?;
        let cutoff_ms = self
            .retention
            .age
            .map(|age| unix_ms().saturating_sub(age.as_millis() as u64));
        let run = || -> Result<(), StoreError> {
            while self.trim_chunk(&db, cutoff_ms)? == TRIM_CHUNK {}
            self.flush(&db)
        };
        run().map_err(|e| failure(&self.path, e))
    }

    fn stats(&self) -> HistoryStats {
        HistoryStats {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            damaged: self.damaged.load(Ordering::Relaxed),
        }
    }
}

/// Opens the file, letting redb repair it after a crash. A file that was
/// closed cleanly is checked in full instead: damage from outside (a disk
/// fault, a stray write) is reported now rather than found by a reader.
fn open_file(path: &Path) -> Result<Database, HistoryError> {
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = repaired.clone();
    let mut builder = Database::builder();
    builder
        .set_cache_size(CACHE_BYTES)
        .set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
    // redb asserts, rather than returning an error, on a file cut short;
    // the report below says it better than the panic message would.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| builder.create(path)));
    std::panic::set_hook(hook);
    let mut db = match opened {
        Ok(result) => result.map_err(|e| open_error(path, e))?,
        Err(_) => {
            let why = "the file is shorter than its header says";
            return Err(HistoryError::Failed(corrupt_file(path, why)));
        }
    };
    if repaired.load(Ordering::Relaxed) {
        // The repair checked every page on its way.
        tracing::warn!(path = %path.display(), "history was not closed cleanly; repaired");
        return Ok(db);
    }
    match db.check_integrity() {
        Ok(true) => Ok(db),
        Ok(false) => {
            tracing::error!(
                path = %path.display(),
                "history was damaged; redb restored its last intact state, so the newest events may be missing"
            );
            Ok(db)
        }
        Err(error) => Err(open_error(path, error)),
    }
}

/// Creates the tables on first use (and checks the file takes a write);
/// returns the event count and byte total.
fn prepare(db: &Database) -> Result<(u64, u64), StoreError> {
    let txn = db.begin_write()?;
    let totals = {
        let events = txn.open_table(EVENTS)?;
        txn.open_table(IDS)?;
        let meta = txn.open_table(META)?;
        (events.len()?, read_u64(&meta, META_BYTES)?)
    };
    txn.commit()?;
    Ok(totals)
}

fn open_error(path: &Path, error: DatabaseError) -> HistoryError {
    let file = path.display();
    HistoryError::Failed(match error {
        DatabaseError::DatabaseAlreadyOpen => format!(
            "{file} is in use by another tidings hub; each hub needs its own data directory"
        ),
        DatabaseError::Storage(StorageError::Corrupted(why)) => corrupt_file(path, &why),
        // redb reports an unrecognizable header as invalid data.
        DatabaseError::Storage(StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::InvalidData =>
        {
            corrupt_file(path, &error.to_string())
        }
        DatabaseError::UpgradeRequired(version) => {
            format!(
                "{file} uses redb file format {version}, which this version of tidings cannot read"
            )
        }
        other => format!("cannot open {file}: {other}"),
    })
}

/// The message for a file redb cannot repair: what happened and the way out.
fn corrupt_file(path: &Path, why: &str) -> String {
    let file = path.display();
    format!(
        "{file} is corrupt and could not be repaired ({why}). Move it aside \
             (`mv {file} {file}.corrupt`) and start again: the hub starts with an empty history, \
             and the moved file is kept for inspection"
    )
}

/// Sorts a redb error: I/O trouble makes the store unavailable for now;
/// anything else is a failure of the file itself.
fn failure(path: &Path, error: impl Into<StoreError>) -> HistoryError {
    let file = path.display();
    match *error.into().0 {
        redb::Error::Io(error) => {
            HistoryError::Unavailable(format!("cannot write {file}: {error}"))
        }
        redb::Error::PreviousIo => {
            HistoryError::Unavailable(format!("an earlier write to {file} failed"))
        }
        redb::Error::Corrupted(why) => HistoryError::Failed(format!("{file} is corrupt: {why}")),
        other => HistoryError::Failed(format!("{file}: {other}")),
    }
}

fn corrupt(seq: u64) -> StoreError {
    redb::Error::Corrupted(format!("unreadable record at sequence {seq}")).into()
}

/// A redb error, boxed: redb's own is large to pass around.
struct StoreError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(error: E) -> StoreError {
        StoreError(Box::new(error.into()))
    }
}

/// Whether the file can be opened for writing now.
fn writable_file(path: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether a small file written and synced beside `path` reaches the disk.
fn probe(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let probe = path.with_extension("redb.probe");
    let written = std::fs::File::create(&probe).and_then(|mut file| {
        file.write_all(&[0; 4096])?;
        file.sync_all()
    });
    // Left behind only when the disk fails; the next probe reuses it.
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| format!("cannot write {}: {e}", probe.display()))
}

/// Whether the file system holding `path` has room for `needed` more bytes,
/// with headroom for redb's copy-on-write pages.
fn room(path: &Path, needed: u64) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    match free_bytes(dir) {
        Ok(free) if free < MIN_FREE + 2 * needed => Err(format!(
            "no space left for history: {free} bytes free on the file system of {}",
            dir.display()
        )),
        // A file system that cannot say how full it is still gets to try.
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `dir` is NUL-terminated and `stat` is valid for writes.
    if unsafe { libc::statvfs(dir.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs filled it in.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> std::io::Result<u64> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn read_u64(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, StoreError> {
    Ok(table
        .get(key)?
        .and_then(|value| value.value().try_into().ok())
        .map_or(0, u64::from_le_bytes))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn encode_last(seq: u64, id: &str) -> Vec<u8> {
    let mut out = seq.to_le_bytes().to_vec();
    out.extend_from_slice(id.as_bytes());
    out
}

fn decode_last(value: &[u8]) -> Option<(u64, Box<str>)> {
    let (seq, id) = value.split_at_checked(8)?;
    Some((
        u64::from_le_bytes(seq.try_into().ok()?),
        std::str::from_utf8(id).ok()?.into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Update};
    use redb::backends::FileBackend;

    fn event(seq: u64, id: &str, topic: &str) -> SharedEvent {
        Arc::new(Event::from_update(
            seq,
            id.into(),
            &Update::new(topic, format!("data {seq}")),
        ))
    }

    fn events(seqs: std::ops::RangeInclusive<u64>) -> Vec<SharedEvent> {
        seqs.map(|n| event(n, &format!("e{n}"), "t")).collect()
    }

    fn open(dir: &Path, retention: Retention) -> RedbHistory {
        RedbHistory::open(dir, Durability::Immediate, retention).unwrap()
    }

    fn seqs(events: &[SharedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn every_field_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let update = Update {
            topics: vec!["https://example.com/a".into(), "urn:b".into()],
            data: "line one\nline two".into(),
            private: true,
            id: None,
            kind: Some("book".into()),
            retry: Some(1500),
        };
        let original = Arc::new(Event::from_update(7, "urn:uuid:x".into(), &update));
        open(dir.path(), Retention::default())
            .append(std::slice::from_ref(&original))
            .unwrap();

        let history = open(dir.path(), Retention::default());
        let read = history.read_after(0, 10).unwrap();
        assert_eq!(read.len(), 1);
        let event = &read[0];
        assert_eq!(event.seq, 7);
        assert_eq!(event.id, original.id);
        assert_eq!(event.topics, original.topics);
        assert!(event.private);
        assert_eq!(event.frame, original.frame);
        assert_eq!(history.last().unwrap(), Some((7, "urn:uuid:x".into())));
        assert_eq!(history.locate("urn:uuid:x").unwrap(), Some(7));
        assert_eq!(history.stats().events, 1);
    }

    /// A record changed on disk under a running hub, where redb's page
    /// checksums are not looked at.
    fn damage(history: &RedbHistory, seq: u64) {
        let guard = history.db.read();
        let db = guard.as_ref().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(EVENTS).unwrap();
            let mut record = table.get(seq).unwrap().unwrap().value().to_vec();
            let last = record.len() - 6;
            record[last] ^= 0x04;
            table.insert(seq, record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn a_damaged_record_is_skipped_and_counted_never_sent_changed() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            events: Some(2),
            ..Retention::default()
        };
        let history = open(dir.path(), retention);
        history.append(&events(1..=3)).unwrap();
        damage(&history, 2);
        let read = history.read_after(0, 10).unwrap();
        assert_eq!(seqs(&read), vec![1, 3]);
        assert_eq!(read[1].frame, events(3..=3)[0].frame);
        assert_eq!(history.stats().damaged, 1);

        // Trimming goes past it (retention keeps 2: only 1 is due, but the
        // damaged 2 goes too), and keeps the newest even when damaged.
        history.trim().unwrap();
        assert_eq!(seqs(&history.read_after(0, 10).unwrap()), vec![3]);
        assert_eq!(history.stats().damaged, 2);
        assert_eq!(history.stats().events, 1);
        damage(&history, 3);
        history.trim().unwrap();
        assert!(history.read_after(0, 10).unwrap().is_empty());
        assert_eq!(history.stats().events, 1);
    }

    #[test]
    fn reads_after_a_cursor_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let history = open(dir.path(), Retention::default());
        history.append(&events(1..=5)).unwrap();
        history.append(&events(6..=9)).unwrap();
        assert_eq!(seqs(&history.read_after(3, 4).unwrap()), vec![4, 5, 6, 7]);
        assert_eq!(seqs(&history.read_after(9, 4).unwrap()), Vec::<u64>::new());
        assert_eq!(history.locate("e6").unwrap(), Some(6));
        assert_eq!(history.locate("nope").unwrap(), None);
    }

    #[test]
    fn a_reused_id_resolves_to_its_earliest_retained_occurrence() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            events: Some(2),
            ..Retention::default()
        };
        let history = open(dir.path(), retention);
        history
            .append(&[
                event(1, "dup", "t"),
                event(2, "dup", "t"),
                event(3, "x", "t"),
            ])
            .unwrap();
        assert_eq!(history.locate("dup").unwrap(), Some(1));
        history.trim().unwrap();
        assert_eq!(history.locate("dup").unwrap(), Some(2));
    }

    #[test]
    fn retention_bounds_count_bytes_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let by_count = open(
            &dir.path().join("count"),
            Retention {
                events: Some(3),
                ..Retention::default()
            },
        );
        by_count.append(&events(1..=10)).unwrap();
        by_count.trim().unwrap();
        assert_eq!(seqs(&by_count.read_after(0, 100).unwrap()), vec![8, 9, 10]);
        assert_eq!(by_count.locate("e7").unwrap(), None);
        assert_eq!(by_count.stats().events, 3);

        let one = encode(&events(1..=1)[0], 0).len() as u64;
        let by_bytes = open(
            &dir.path().join("bytes"),
            Retention {
                bytes: Some(one * 4),
                ..Retention::default()
            },
        );
        by_bytes.append(&events(1..=9)).unwrap();
        by_bytes.trim().unwrap();
        assert_eq!(
            seqs(&by_bytes.read_after(0, 100).unwrap()),
            vec![6, 7, 8, 9]
        );
        assert_eq!(by_bytes.stats().bytes, one * 4);

        let by_age = open(
            &dir.path().join("age"),
            Retention {
                age: Some(Duration::from_millis(200)),
                ..Retention::default()
            },
        );
        by_age.append(&events(1..=3)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        by_age.append(&events(4..=5)).unwrap();
        by_age.trim().unwrap();
        assert_eq!(seqs(&by_age.read_after(0, 100).unwrap()), vec![4, 5]);
    }

    #[test]
    fn trimming_in_chunks_keeps_going_until_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let history = open(
            dir.path(),
            Retention {
                events: Some(10),
                ..Retention::default()
            },
        );
        let total = 3 * TRIM_CHUNK as u64 + 17;
        history.append(&events(1..=total)).unwrap();
        history.trim().unwrap();
        assert_eq!(
            seqs(&history.read_after(0, 100).unwrap()),
            (total - 9..=total).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_last_sequence_outlives_retention() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            events: Some(0),
            ..Retention::default()
        };
        let history = open(dir.path(), retention);
        history.append(&events(1..=4)).unwrap();
        history.trim().unwrap();
        assert!(history.read_after(0, 10).unwrap().is_empty());
        drop(history);
        assert_eq!(
            open(dir.path(), retention).last().unwrap(),
            Some((4, "e4".into()))
        );
    }

    #[test]
    fn eventual_durability_still_reads_back_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let history =
            RedbHistory::open(dir.path(), Durability::Eventual, Retention::default()).unwrap();
        history.append(&events(1..=3)).unwrap();
        assert_eq!(seqs(&history.read_after(0, 10).unwrap()), vec![1, 2, 3]);
        assert!(history.unsynced.load(Ordering::Relaxed));
        history.trim().unwrap();
        assert!(!history.unsynced.load(Ordering::Relaxed));
        drop(history);
        let reopened =
            RedbHistory::open(dir.path(), Durability::Eventual, Retention::default()).unwrap();
        assert_eq!(reopened.stats().events, 3);
    }

    #[test]
    fn eventual_durability_keeps_everything_over_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let history =
            RedbHistory::open(dir.path(), Durability::Eventual, Retention::default()).unwrap();
        history.append(&events(1..=3)).unwrap();
        history.append(&events(4..=5)).unwrap();
        drop(history);
        let reopened = open(dir.path(), Retention::default());
        assert_eq!(
            seqs(&reopened.read_after(0, 10).unwrap()),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), Retention::default());
        let Err(error) = RedbHistory::open(dir.path(), Durability::Immediate, Retention::default())
        else {
            panic!("a second open succeeded");
        };
        let message = error.to_string();
        assert!(
            message.contains("in use by another tidings hub"),
            "{message}"
        );
        assert!(message.contains(FILE_NAME), "{message}");
    }

    #[test]
    fn a_corrupt_file_names_itself_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), Retention::default())
            .append(&events(1..=3))
            .unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..64].fill(0xAB);
        std::fs::write(&path, bytes).unwrap();
        let Err(error) = RedbHistory::open(dir.path(), Durability::Immediate, Retention::default())
        else {
            panic!("a corrupt file opened");
        };
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("Move it aside"), "{message}");
    }

    /// Counts the bytes redb reads from the file.
    #[derive(Debug)]
    struct Counting {
        file: FileBackend,
        read: Arc<AtomicU64>,
    }

    impl redb::StorageBackend for Counting {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.read.fetch_add(len as u64, Ordering::Relaxed);
            self.file.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.file.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.file.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.file.write(offset, data)
        }
    }

    fn open_rw(path: &Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn open_counting(path: &Path) -> (RedbHistory, Arc<AtomicU64>) {
        let file = open_rw(path);
        let read = Arc::new(AtomicU64::new(0));
        let backend = Counting {
            file: FileBackend::new(file).unwrap(),
            read: read.clone(),
        };
        let db = Database::builder().create_with_backend(backend).unwrap();
        let history = RedbHistory::with_database(
            path.into(),
            db,
            Durability::Immediate,
            Retention::default(),
        );
        (history.unwrap(), read)
    }

    /// Fails every write while `failing` is set, like a full disk.
    #[derive(Debug)]
    struct Flaky {
        file: FileBackend,
        failing: Arc<AtomicBool>,
    }

    impl Flaky {
        fn check(&self) -> std::io::Result<()> {
            if self.failing.load(Ordering::Relaxed) {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            Ok(())
        }
    }

    impl redb::StorageBackend for Flaky {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.file.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.file.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.check()?;
            self.file.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.file.write(offset, data)
        }
    }

    #[test]
    fn a_failed_write_refuses_appends_keeps_reads_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let failing = Arc::new(AtomicBool::new(false));
        let backend = Flaky {
            file: FileBackend::new(open_rw(&path)).unwrap(),
            failing: failing.clone(),
        };
        let db = Database::builder().create_with_backend(backend).unwrap();
        let history =
            RedbHistory::with_database(path, db, Durability::Immediate, Retention::default())
                .unwrap();
        history.append(&events(1..=3)).unwrap();

        failing.store(true, Ordering::Relaxed);
        let Err(HistoryError::Unavailable(reason)) = history.append(&events(4..=5)) else {
            panic!("a failed write was acknowledged");
        };
        assert!(reason.contains("No space left"), "{reason}");
        assert_eq!(seqs(&history.read_after(0, 10).unwrap()), vec![1, 2, 3]);

        // Still failing: refused without touching the file until the retry
        // delay is over, then the reopen fails too.
        failing.store(false, Ordering::Relaxed);
        assert!(matches!(
            history.append(&events(4..=5)),
            Err(HistoryError::Unavailable(_))
        ));
        std::thread::sleep(RETRY_AFTER);
        history.append(&events(4..=5)).unwrap();
        assert_eq!(
            seqs(&history.read_after(0, 10).unwrap()),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(history.stats().events, 5);
    }

    /// Resuming deep inside a million events touches a few pages, not the
    /// table: the cursor is found by a seek on the id index and replay is a
    /// range read on the sequence.
    #[test]
    fn resuming_deep_in_a_million_events_reads_a_few_pages() {
        const TOTAL: u64 = 1_000_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        {
            let (history, _) = open_counting(&path);
            for start in (1..=TOTAL).step_by(50_000) {
                history.append(&events(start..=start + 49_999)).unwrap();
            }
        }
        let file_len = std::fs::metadata(&path).unwrap().len();
        let (history, read) = open_counting(&path);
        read.store(0, Ordering::Relaxed);
        let cursor = history.locate("e900000").unwrap().unwrap();
        let replay = history.read_after(cursor, 100).unwrap();
        assert_eq!(seqs(&replay), (900_001..=900_100).collect::<Vec<_>>());
        let touched = read.load(Ordering::Relaxed);
        assert!(
            touched < 256 << 10,
            "read {touched} of {file_len} bytes to resume from a deep cursor"
        );
    }
}
