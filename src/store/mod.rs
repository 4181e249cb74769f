//! The embedded store: the adapter for sled 0.34 (the only place that names it).
//!
//! Trees: `recordings` (key: start time in ms, then id, both big-endian so ranges scan in time
//! order; value: a version byte and the record as JSON), the indexes `by_id` (id → key),
//! `by_path` (path → key), `by_state` (state, key), `by_agent` and `by_queue` (name, 0, key);
//! `audit` (sequence number → entry, the hash chain of [`crate::audit`]) and its index
//! `audit_by_recording` (id, sequence number), `intents` (id → a purge
//! about to delete that recording's files), `holds` (hold id → hold), and `meta` (the schema
//! version and the audit chain's head); the call records `calls`, `calls_by_time` and
//! `calls_by_key` ([`calls`]); `recordings_by_call_key`, `call_times`, `call_key_versions`,
//! `day_generations` and `coverage_digests` ([`digests`]).
//!
//! Every change is one transaction with its audit entries: a record and its indexes, or a hold
//! and the records it covers, or purge intents, exist together with the entries that say who
//! did it, or not at all. Ingest records reach disk with sled's background flush (every 500 ms) or
//! [`Store::flush`]; one lost to a crash is re-ingested at the next start, because its file is
//! still there. What must never be lost (purge intents and tombstones, holds, consent changes) is
//! flushed before the call returns. One process at a time: sled locks the directory; a second
//! opener gets [`StoreError::Locked`].

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::audit::{AuditAction, Draft, Entry, Head};
use crate::recording_path::RecordingPath;
use crate::summary::Summary;

pub use calls::CallsStored;

/// The schema this build writes and reads. 2: consent, holds, purges and the audit log.
/// 3: the summaries and the score index (for lists, KPIs and reports). 4: the audit log's
/// index by recording (for `show` and the purge report). 5: the index by content (SHA-256), to
/// recognise a recording moved inside the roots. 6: the call records. 7: the days' coverage
/// digests and their generations (a build before 7 would change recordings without moving a
/// day's generation, and a later one would trust a stale digest: it must refuse the store).
/// 8: the outbox (a build before 8 would change records without appending their events, and
/// the central database would silently miss them).
pub const SCHEMA_VERSION: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open the store at {path}: it is in use by another process (a running daemon?)")]
    Locked { path: String },
    #[error("open the store at {path}: schema version {found} is newer than this build's {SCHEMA_VERSION}: upgrade callwarden")]
    NewerSchema { path: String, found: u32 },
    // The cause is part of the message, not a source of its own: printed once.
    #[error("store {what}: {cause}")]
    Sled {
        what: &'static str,
        cause: sled::Error,
    },
    #[error(
        "the store at {path} is damaged: its database cannot be read ({detail}). sled cannot \
         tell which of its files ({files}) holds the damage, and callwarden never repairs a \
         store in place: keep this directory as it is for the record, restore the store \
         directory together with its anchor from the last backup, and run `callwarden audit \
         verify` (docs/compliance.md, \"A damaged store\")"
    )]
    Damaged {
        path: String,
        detail: String,
        files: String,
    },
    #[error("store: record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{0}")]
    Refused(String),
    /// A write made against a record that another writer changed since it was read: nothing
    /// was written. The writer reads the record again and decides afresh.
    #[error("store: the record changed under this write (another writer came first); nothing was written")]
    Stale,
    #[error(
        "the store at {path} is behind its anchor {anchor}: its audit chain ends at entry \
         {store_seq}, but entry {anchored_seq} was written before: an older copy of the store \
         was restored, or its files are damaged (sled drops what follows a damaged byte of its \
         log). Changes made since (holds, consent, purges) would be lost without a word: see \
         docs/compliance.md, \"A store behind its anchor\""
    )]
    BehindAnchor {
        path: String,
        anchor: String,
        store_seq: u64,
        anchored_seq: u64,
    },
    #[error(
        "the store at {path} does not hold the audit entry {seq} that its anchor {anchor} \
         names: its history was rewritten or another store was put in its place; see \
         docs/compliance.md, \"A store behind its anchor\""
    )]
    AnchorMismatch {
        path: String,
        anchor: String,
        seq: u64,
    },
    #[error("the store's anchor {anchor}: {reason}")]
    Anchor { anchor: String, reason: String },
}

pub mod anchor;
mod calls;
mod digests;
mod keys;
pub mod outbox;

pub use crate::record::*;
use keys::{
    audit_index_key, decode, decode_summary, encode, json, key_range, named_key, score_key,
    state_key,
};
use outbox::abort;

// Positions of the trees in a transaction.
const RECORDINGS: usize = 0;
const BY_PATH: usize = 1;
const BY_STATE: usize = 2;
const BY_AGENT: usize = 3;
const BY_QUEUE: usize = 4;
const BY_ID: usize = 5;
const AUDIT: usize = 6;
const META: usize = 7;
const INTENTS: usize = 8;
const HOLDS: usize = 9;
const SUMMARIES: usize = 10;
const BY_SCORE: usize = 11;
const AUDIT_BY_RECORDING: usize = 12;
const BY_SHA: usize = 13;
const CALLS: usize = 14;
const CALLS_BY_TIME: usize = 15;
const CALLS_BY_KEY: usize = 16;
const DAY_GENERATIONS: usize = 17;
const BY_CALL_KEY: usize = 18;
const CALL_TIMES: usize = 19;
const CALL_KEY_VERSIONS: usize = 20;
const OUTBOX: usize = 21;
/// Console accounts by name (`accounts::Account`, JSON).
const USERS: usize = 22;
const TREES: [&str; 23] = [
    "recordings",
    "by_path",
    "by_state",
    "by_agent",
    "by_queue",
    "by_id",
    "audit",
    "meta",
    "intents",
    "holds",
    "summaries",
    "by_score",
    "audit_by_recording",
    "by_sha",
    "calls",
    "calls_by_time",
    "calls_by_key",
    "day_generations",
    "recordings_by_call_key",
    "call_times",
    "call_key_versions",
    "outbox",
    "users",
];

type TxResult<T> = Result<T, ConflictableTransactionError<String>>;

/// The abort of a write whose `previous` is no longer the record stored ([`StoreError::Stale`]).
const STALE: &str = "stale: the record changed since it was read";

/// The writes of one transaction. (It cannot read the trees themselves: sled holds every
/// other reader and writer back while a transaction runs, and would wait for itself.)
struct Tx<'a>(&'a [TransactionalTree]);

impl Tx<'_> {
    fn put(&self, record: &Record, previous: Option<&Record>) -> TxResult<()> {
        let t = self.0;
        let key = record.key();
        let summary = Summary::of(record);
        let keys = crate::calls::recording_keys(&summary);
        if let Some(old) = previous {
            let old_key = old.key();
            // Compare and swap: a write replaces the record its writer read, or nothing (the
            // daemon's workers, its event loop and the control socket write concurrently).
            let stored = t[RECORDINGS].get(old_key)?;
            let same = stored.as_deref().is_some_and(|v| {
                *v == encode(old)[..] || decode(&old_key, v).is_ok_and(|r| r == *old)
            });
            if !same {
                return Err(ConflictableTransactionError::Abort(STALE.to_string()));
            }
            let old_summary = Summary::of(old);
            let old_keys = crate::calls::recording_keys(&old_summary);
            self.touch(old.started_ms)?;
            if old_keys != keys || old_key != key {
                self.move_key_versions(&old_keys)?;
                self.move_key_versions(&keys)?;
            }
            self.unindex_call_keys(&old_keys, &old_key)?;
            t[RECORDINGS].remove(&old_key)?;
            t[BY_PATH].remove(old.path.as_bytes())?;
            if !old.sha256.is_empty() {
                t[BY_SHA].remove(named_key(&old.sha256, &old_key))?;
            }
            t[BY_STATE].remove(state_key(old.state, &old_key))?;
            t[SUMMARIES].remove(&old_key[..])?;
            if let Some(k) = score_key(&old_summary, &old_key) {
                t[BY_SCORE].remove(k)?;
            }
            if let Some(m) = &old.metadata {
                if let Some(agent) = &m.agent {
                    t[BY_AGENT].remove(named_key(agent, &old_key))?;
                }
                if let Some(queue) = &m.queue {
                    t[BY_QUEUE].remove(named_key(queue, &old_key))?;
                }
            }
        }
        if previous.is_none() {
            self.move_key_versions(&keys)?;
        }
        self.touch(record.started_ms)?;
        t[RECORDINGS].insert(&key[..], encode(record))?;
        t[BY_ID].insert(&record.id.0.to_be_bytes()[..], &key[..])?;
        t[BY_PATH].insert(record.path.as_bytes(), &key[..])?;
        if !record.sha256.is_empty() {
            t[BY_SHA].insert(named_key(&record.sha256, &key), &[][..])?;
        }
        t[BY_STATE].insert(state_key(record.state, &key), &[][..])?;
        self.index_call_keys(&keys, &key)?;
        if let Some(k) = score_key(&summary, &key) {
            t[BY_SCORE].insert(k, &[][..])?;
        }
        t[SUMMARIES].insert(&key[..], json(&summary))?;
        if let Some(m) = &record.metadata {
            if let Some(agent) = &m.agent {
                t[BY_AGENT].insert(named_key(agent, &key), &[][..])?;
            }
            if let Some(queue) = &m.queue {
                t[BY_QUEUE].insert(named_key(queue, &key), &[][..])?;
            }
        }
        let purged_now = previous.is_none_or(|p| p.tombstone.is_none());
        self.emit(outbox::Event::Recording {
            summary: Box::new(summary),
        })?;
        if let (Some(tombstone), true) = (&record.tombstone, purged_now) {
            self.emit(outbox::Event::Purge {
                id: record.id.0,
                tombstone: tombstone.clone(),
            })?;
        }
        Ok(())
    }

    fn get(&self, id: RecordingId) -> TxResult<Option<Record>> {
        let Some(key) = self.0[BY_ID].get(id.0.to_be_bytes())? else {
            return Ok(None);
        };
        match self.0[RECORDINGS].get(&key)? {
            Some(v) => decode(&key, &v)
                .map(Some)
                .map_err(|e| ConflictableTransactionError::Abort(e.to_string())),
            None => Ok(None),
        }
    }

    fn append(&self, drafts: Vec<Draft>, time_ms: i64) -> TxResult<Vec<Entry>> {
        let t = self.0;
        let mut head: Head = match t[META].get("audit_head")? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| {
                ConflictableTransactionError::Abort(format!("audit head unreadable: {e}"))
            })?,
            None => Head::default(),
        };
        let mut entries = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let entry = draft.seal(head.seq + 1, time_ms, &head.hash);
            t[AUDIT].insert(&entry.seq.to_be_bytes()[..], json(&entry))?;
            if let Some(id) = entry.recording {
                t[AUDIT_BY_RECORDING].insert(&audit_index_key(id, entry.seq)[..], &[][..])?;
            }
            head = Head {
                seq: entry.seq,
                hash: entry.hash.clone(),
            };
            entries.push(entry);
        }
        t[META].insert("audit_head", json(&head))?;
        Ok(entries)
    }
}

/// The name indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Agent,
    Queue,
}

/// Where [`set_aside_unfinished_snapshots`] moves them.
pub const UNFINISHED_SNAPSHOTS: &str = "unfinished-snapshots";

/// sled 0.34.7 writes a snapshot as `snap.<lsn>.generating`, fsyncs it and renames it to
/// `snap.<lsn>`; but at open it considers the `.generating` file too, and a process killed while
/// writing one leaves a store that no longer opens (`Corruption`, sled issues #1527, #1533).
/// Such a file is unfinished by construction (the rename comes after the last byte), and a
/// snapshot only speeds recovery up: the log is replayed from the previous snapshot instead.
/// Moves them into `UNFINISHED_SNAPSHOTS/` (nothing is deleted) and says whether any was.
fn set_aside_unfinished_snapshots(dir: &Path) -> Result<bool, StoreError> {
    let io = |e: std::io::Error| StoreError::Sled {
        what: "set an unfinished snapshot aside",
        cause: sled::Error::Io(e),
    };
    let mut moved = false;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(false);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("snap.") && name.ends_with(".generating")) {
            continue;
        }
        let aside = dir.join(UNFINISHED_SNAPSHOTS);
        std::fs::create_dir_all(&aside).map_err(io)?;
        std::fs::rename(entry.path(), aside.join(&name)).map_err(io)?;
        tracing::warn!(
            store = %dir.display(),
            file = %name,
            "an unfinished sled snapshot (a crash while writing it) was set aside; the store is \
             recovered from its log"
        );
        moved = true;
    }
    Ok(moved)
}

pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Coverage digests by day (derived, never in a transaction: see [`digests`]).
    digests: sled::Tree,
    /// The head anchored outside the store, when opened with one.
    anchor: Option<Anchored>,
}

struct Anchored {
    path: std::path::PathBuf,
    /// The head last written there (heads only move forward).
    written: std::sync::Mutex<Option<u64>>,
}

fn sled_err(what: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |cause| StoreError::Sled { what, cause }
}

/// The store's files with their sizes, for a message about damage (`db 524287 B, conf 62 B`).
fn store_files(dir: &Path) -> String {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match e.metadata() {
                Ok(m) if m.is_dir() => out.push(format!("{name}/")),
                Ok(m) => out.push(format!("{name} {} B", m.len())),
                Err(_) => out.push(name),
            }
        }
    }
    out.sort();
    out.join(", ")
}

impl StoreError {
    /// Whether the store itself failed (an I/O error such as a full disk, damage, the anchor):
    /// sled 0.34 keeps failing every write after an I/O error until the database is opened
    /// again, so a daemon must stop (and be restarted) rather than go on failing.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StoreError::Sled { .. } | StoreError::Damaged { .. } | StoreError::Anchor { .. }
        )
    }
}

/// Runs `step` (read records, decide, write) until its write is not refused as
/// [`StoreError::Stale`]: each run reads the records as another writer left them. A record
/// changed under every one of [`MAX_FRESH_TRIES`] runs ends in the error (logged by the
/// caller), never in a loop without end.
pub fn until_fresh<T>(mut step: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    for _ in 1..MAX_FRESH_TRIES {
        match step() {
            Err(StoreError::Stale) => continue,
            done => return done,
        }
    }
    step()
}

/// Runs of a read-decide-write refused as stale before the error is given up to the caller.
pub const MAX_FRESH_TRIES: usize = 16;

/// Creates `dir` (and its parents) with mode 0700, or narrows an existing one to 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store in `dir`, upgrading an older schema in place. A lock held
    /// by a process that is just exiting (sled releases it when its last thread lets go) is
    /// waited for up to a second; a lock held longer is [`StoreError::Locked`].
    ///
    /// The store holds who said what about whom: its directory is made 0700 whatever the umask
    /// (created so, or narrowed if an earlier version left it open to others).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.display().to_string();
        private_dir(dir).map_err(|e| StoreError::Sled {
            what: "make the store's directory private",
            cause: sled::Error::Io(e),
        })?;
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    attempts += 1;
                    if attempts > 20 {
                        return Err(StoreError::Locked { path });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(sled::Error::Corruption { .. }) if set_aside_unfinished_snapshots(dir)? => {
                    // Retried once the unfinished snapshot is out of sled's way.
                }
                Err(sled::Error::Corruption { .. }) => {
                    return Err(StoreError::Damaged {
                        path: path.clone(),
                        detail: "corrupted data".into(),
                        files: store_files(dir),
                    })
                }
                Err(e) => {
                    return Err(StoreError::Sled {
                        what: "open",
                        cause: e,
                    })
                }
            }
        };
        let trees = TREES
            .iter()
            .map(|name| db.open_tree(name).map_err(sled_err("open a tree")))
            .collect::<Result<Vec<_>, _>>()?;
        let digests = db
            .open_tree("coverage_digests")
            .map_err(sled_err("open a tree"))?;
        let store = Store {
            db,
            trees,
            digests,
            anchor: None,
        };
        let meta = &store.trees[META];
        let found = meta
            .get("schema_version")
            .map_err(sled_err("read the schema version"))?
            .map(|v| {
                v.as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX)
            });
        match found {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema { path, found })
            }
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                // Each step builds what a version lacked (again, if an upgrade was
                // interrupted: it is all derived from the records and the log).
                let upgrade = sled_err("upgrade the store");
                // Version 1 had no id index, version 2 no summaries, version 5 summaries no
                // error code, call id or tags.
                for kv in store.trees[RECORDINGS].iter().filter(|_| found < 6) {
                    let (k, v) = kv.map_err(&upgrade)?;
                    let r = decode(&k, &v)?;
                    store.trees[BY_ID]
                        .insert(r.id.0.to_be_bytes(), k.clone())
                        .map_err(&upgrade)?;
                    let key: [u8; 16] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                        key: hex::encode(&k),
                        reason: "a record key is not 16 bytes".into(),
                    })?;
                    let summary = Summary::of(&r);
                    if let Some(sk) = score_key(&summary, &key) {
                        store.trees[BY_SCORE]
                            .insert(sk, &[][..])
                            .map_err(&upgrade)?;
                    }
                    store.trees[SUMMARIES]
                        .insert(k, json(&summary))
                        .map_err(&upgrade)?;
                }
                // Version 3 had no audit index. An entry that does not decode is left out
                // (`audit verify` names it).
                for item in store.audit_entries().filter(|_| found < 4) {
                    if let (
                        seq,
                        Ok(Entry {
                            recording: Some(id),
                            ..
                        }),
                    ) = item?
                    {
                        store.trees[AUDIT_BY_RECORDING]
                            .insert(audit_index_key(id, seq), &[][..])
                            .map_err(&upgrade)?;
                    }
                }
                // Version 6 had no index by call key, nor the calls' first start and legs
                // (counted afresh: an interrupted upgrade must not count a leg twice).
                if found < 7 {
                    let mut calls: std::collections::HashMap<String, (i64, u64)> =
                        std::collections::HashMap::new();
                    for kv in store.trees[CALLS].iter() {
                        let (k, v) = kv.map_err(&upgrade)?;
                        let leg: crate::cdr::CallRecord =
                            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                                key: hex::encode(&k),
                                reason: format!("call record: {e}"),
                            })?;
                        let e = calls
                            .entry(leg.call_key().to_string())
                            .or_insert((leg.start_ms, 0));
                        e.0 = e.0.min(leg.start_ms);
                        e.1 += 1;
                    }
                    store.trees[CALL_TIMES].clear().map_err(&upgrade)?;
                    for (key, (start, n)) in calls {
                        store.trees[CALL_TIMES]
                            .insert(key.as_bytes(), digests::encode_call_time(start, n))
                            .map_err(&upgrade)?;
                    }
                }
                for kv in store.trees[SUMMARIES].iter().filter(|_| found < 7) {
                    let (k, v) = kv.map_err(&upgrade)?;
                    let summary = decode_summary(&k, &v)?;
                    for ck in crate::calls::recording_keys(&summary) {
                        if let Some(ik) = digests::call_key_index(&ck, &k) {
                            store.trees[BY_CALL_KEY]
                                .insert(ik, &[][..])
                                .map_err(&upgrade)?;
                        }
                    }
                }
                // Version 4 had no index by content.
                for kv in store.trees[RECORDINGS].iter().filter(|_| found < 5) {
                    let (k, v) = kv.map_err(&upgrade)?;
                    let r = decode(&k, &v)?;
                    if !r.sha256.is_empty() {
                        store.trees[BY_SHA]
                            .insert(named_key(&r.sha256, &r.key()), &[][..])
                            .map_err(&upgrade)?;
                    }
                }
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_err("write the schema version"))?;
                store.flush()?;
            }
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_err("write the schema version"))?;
            }
        }
        Ok(store)
    }

    /// Runs `f` as one transaction over every tree.
    fn transact<T>(
        &self,
        what: &'static str,
        f: impl Fn(&Tx) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        match trees.as_slice().transaction(|t| f(&Tx(t))) {
            Ok(v) => Ok(v),
            Err(TransactionError::Storage(e)) => Err(sled_err(what)(e)),
            Err(TransactionError::Abort(why)) if why == STALE => Err(StoreError::Stale),
            Err(TransactionError::Abort(why)) => Err(StoreError::Refused(why)),
        }
    }

    /// A new, never used id.
    /// A new recording id: one more than the last one given (ids do not jump at a restart).
    pub fn next_id(&self) -> Result<RecordingId, StoreError> {
        self.next_in("next_recording_id", BY_ID).map(RecordingId)
    }

    /// The next number of the counter `key` in `meta`; its first use starts past the largest
    /// key of `tree` (ids given by earlier versions, big-endian u64 keys). Persisted with the
    /// records that use it: sled's log keeps their order, so a record on disk implies its
    /// counter is too.
    fn next_in(&self, key: &str, tree: usize) -> Result<u64, StoreError> {
        let floor = self.trees[tree]
            .last()
            .map_err(sled_err("read the last id"))?
            .and_then(|(k, _)| k.as_ref().try_into().ok().map(u64::from_be_bytes))
            .map_or(1, |last| last.saturating_add(1));
        let next = self.trees[META]
            .update_and_fetch(key, |old| {
                let n = old
                    .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(floor)
                    .max(floor);
                Some(n.saturating_add(1).to_be_bytes().to_vec())
            })
            .map_err(sled_err("count ids"))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(floor + 1);
        Ok(next - 1)
    }

    fn record_at(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match self.trees[RECORDINGS]
            .get(key)
            .map_err(sled_err("read a record"))?
        {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The records whose content has this SHA-256 (a recording and its copies or earlier
    /// names), in time order.
    pub fn by_sha(&self, sha256: &str) -> Result<Vec<Record>, StoreError> {
        let mut prefix = sha256.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.trees[BY_SHA].scan_prefix(&prefix) {
            let (k, _) = kv.map_err(sled_err("read the content index"))?;
            if let Some(r) = self.record_at(&k[prefix.len()..])? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The record stored for `path`, if any.
    pub fn by_path(&self, path: &RecordingPath) -> Result<Option<Record>, StoreError> {
        match self.trees[BY_PATH]
            .get(path.as_bytes())
            .map_err(sled_err("read the path index"))?
        {
            Some(key) => self.record_at(&key),
            None => Ok(None),
        }
    }

    /// The record with this id, if any.
    pub fn get(&self, id: RecordingId) -> Result<Option<Record>, StoreError> {
        match self.trees[BY_ID]
            .get(id.0.to_be_bytes())
            .map_err(sled_err("read the id index"))?
        {
            Some(key) => self.record_at(&key),
            None => Ok(None),
        }
    }

    /// Writes `record` and its indexes (replacing `previous`, the version it was read as) with
    /// its audit entry, in one transaction. Visible at once; durable at the next flush.
    pub fn commit(
        &self,
        record: &Record,
        previous: Option<&Record>,
        event: Draft,
        time_ms: i64,
    ) -> Result<(), StoreError> {
        self.transact("write a record", |tx| {
            tx.put(record, previous)?;
            tx.append(vec![event.clone()], time_ms)?;
            Ok(())
        })
    }

    /// Writes new records, each with its audit entry, in one transaction: a bulk import (an
    /// archive migrated from another system, a benchmark's store). Durable at the next flush.
    pub fn commit_many(&self, items: &[(Record, Draft)], time_ms: i64) -> Result<(), StoreError> {
        self.transact("write records", |tx| {
            for (record, _) in items {
                tx.put(record, None)?;
            }
            tx.append(items.iter().map(|(_, d)| d.clone()).collect(), time_ms)?;
            Ok(())
        })
    }

    /// Appends audit entries that concern no record write (a configuration reload, the chain
    /// head), flushed.
    pub fn audit(&self, events: Vec<Draft>, time_ms: i64) -> Result<Vec<Entry>, StoreError> {
        let entries = self.transact("append to the audit log", |tx| {
            tx.append(events.clone(), time_ms)
        })?;
        self.flush()?;
        Ok(entries)
    }

    /// The console account `name`, if any.
    pub fn account(
        &self,
        name: &crate::accounts::UserName,
    ) -> Result<Option<crate::accounts::Account>, StoreError> {
        self.trees[USERS]
            .get(name.as_str())
            .map_err(sled_err("read an account"))?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Refused(format!("account {name} is unreadable: {e}")))
            })
            .transpose()
    }

    /// Every console account, by name.
    pub fn accounts(&self) -> Result<Vec<crate::accounts::Account>, StoreError> {
        self.trees[USERS]
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(sled_err("read the accounts"))?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Refused(format!("an account is unreadable: {e}")))
            })
            .collect()
    }

    /// Applies `change` to account `name` for `actor`, with its audit entry, in one
    /// transaction. Flushed before it returns.
    pub fn change_account(
        &self,
        name: &crate::accounts::UserName,
        change: &crate::accounts::AccountChange,
        actor: &str,
        time_ms: i64,
    ) -> Result<crate::accounts::Account, StoreError> {
        let account = self.transact("change an account", |tx| {
            let current = match tx.0[USERS].get(name.as_str())? {
                Some(v) => Some(
                    serde_json::from_slice::<crate::accounts::Account>(&v)
                        .map_err(|e| abort("the account is unreadable", e))?,
                ),
                None => None,
            };
            let account = change
                .apply(name, current.as_ref(), time_ms)
                .map_err(ConflictableTransactionError::Abort)?;
            let bytes = serde_json::to_vec(&account).map_err(|e| abort("an account", e))?;
            tx.0[USERS].insert(name.as_str(), bytes)?;
            tx.append(
                vec![Draft::new(
                    actor,
                    AuditAction::User,
                    serde_json::json!({"user": name, "change": change.as_str(),
                        "role": account.role.as_str()}),
                )],
                time_ms,
            )?;
            Ok(account)
        })?;
        self.flush()?;
        Ok(account)
    }

    /// Sets a recording's consent (the old one goes to its history) and audits who did it.
    /// Flushed before it returns.
    pub fn set_consent(
        &self,
        id: RecordingId,
        consent: ConsentRecord,
        law: ConsentLaw,
        time_ms: i64,
    ) -> Result<Record, StoreError> {
        let record = self.transact("change consent", |tx| {
            let Some(old) = tx.get(id)? else {
                return Err(ConflictableTransactionError::Abort(format!(
                    "no recording with id {}",
                    id.0
                )));
            };
            if old.state == RecordState::Purged {
                return Err(ConflictableTransactionError::Abort(format!(
                    "recording {} was purged: its consent can no longer change",
                    id.0
                )));
            }
            let mut record = old.clone();
            if let Some(previous) = record.consent.take() {
                record.consent_history.push(previous);
            }
            record.consent = Some(consent.clone());
            record.consent_law = Some(law);
            tx.put(&record, Some(&old))?;
            let event = Draft::new(
                &consent.actor,
                AuditAction::Consent,
                serde_json::json!({
                    "from": old.consent.as_ref().map(|c| c.state),
                    "to": consent.state,
                    "source": consent.source,
                    "note": consent.note,
                    "law": law,
                }),
            )
            .about(id.0);
            tx.append(vec![event], time_ms)?;
            Ok(record)
        })?;
        self.flush()?;
        Ok(record)
    }

    /// Places a legal hold on the recordings `selection` matches now (purged ones excepted),
    /// audited. Flushed before it returns.
    pub fn add_hold(
        &self,
        case: &str,
        reason: &str,
        actor: &str,
        selection: Selection,
        time_ms: i64,
    ) -> Result<Hold, StoreError> {
        if selection.is_empty() {
            return Err(StoreError::Refused(
                "a hold needs a selection: ids, agent, queue, call id or a time range".into(),
            ));
        }
        if case.trim().is_empty() {
            return Err(StoreError::Refused("a hold needs a case id".into()));
        }
        let matched: Vec<Record> = self
            .select(&selection)?
            .into_iter()
            .filter(|r| r.state != RecordState::Purged)
            .collect();
        let hold_id = self.next_in("next_hold_id", HOLDS)?;
        let hold = Hold {
            id: hold_id,
            case: case.into(),
            reason: reason.into(),
            actor: actor.into(),
            added_ms: time_ms,
            selection,
            recordings: matched.iter().map(|r| r.id).collect(),
            released: None,
        };
        self.transact("add a hold", |tx| {
            let mut events = Vec::new();
            for r in &matched {
                // Read again inside the transaction: a concurrent write wins a retry, not a loss.
                let Some(old) = tx.get(r.id)? else { continue };
                let mut record = old.clone();
                if !record.holds.contains(&hold_id) {
                    record.holds.push(hold_id);
                }
                tx.put(&record, Some(&old))?;
                events.push(
                    Draft::new(
                        actor,
                        AuditAction::HoldAdd,
                        serde_json::json!({"hold": hold_id, "case": case}),
                    )
                    .about(r.id.0),
                );
            }
            tx.put_hold(&hold)?;
            events.push(Draft::new(
                actor,
                AuditAction::HoldAdd,
                serde_json::json!({"hold": hold_id, "case": case, "reason": reason,
                    "selection": hold.selection, "recordings": hold.recordings.len()}),
            ));
            tx.append(events, time_ms)?;
            Ok(())
        })?;
        self.flush()?;
        Ok(hold)
    }

    /// Releases a hold: its recordings' original deadlines apply again. Audited, flushed.
    pub fn release_hold(
        &self,
        hold_id: u64,
        actor: &str,
        reason: &str,
        time_ms: i64,
    ) -> Result<Hold, StoreError> {
        let hold = self.transact("release a hold", |tx| {
            let Some(v) = tx.0[HOLDS].get(hold_id.to_be_bytes())? else {
                return Err(ConflictableTransactionError::Abort(format!(
                    "no hold with id {hold_id}"
                )));
            };
            let mut hold: Hold = serde_json::from_slice(&v)
                .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
            if hold.released.is_some() {
                return Err(ConflictableTransactionError::Abort(format!(
                    "hold {hold_id} (case {}) is already released",
                    hold.case
                )));
            }
            let mut events = Vec::new();
            for id in &hold.recordings {
                let Some(old) = tx.get(*id)? else { continue };
                let mut record = old.clone();
                record.holds.retain(|h| *h != hold_id);
                tx.put(&record, Some(&old))?;
                events.push(
                    Draft::new(
                        actor,
                        AuditAction::HoldRelease,
                        serde_json::json!({"hold": hold_id, "case": hold.case}),
                    )
                    .about(id.0),
                );
            }
            hold.released = Some(Release {
                at_ms: time_ms,
                actor: actor.into(),
                reason: reason.into(),
            });
            tx.put_hold(&hold)?;
            events.push(Draft::new(
                actor,
                AuditAction::HoldRelease,
                serde_json::json!({"hold": hold_id, "case": hold.case, "reason": reason}),
            ));
            tx.append(events, time_ms)?;
            Ok(hold)
        })?;
        self.flush()?;
        Ok(hold)
    }

    /// Every hold, released ones included.
    pub fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        self.trees[HOLDS]
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(sled_err("read the holds"))?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: hex::encode(k),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The records a selection matches, using the id, agent or queue index when it can.
    pub fn select(&self, selection: &Selection) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let mut keep = |r: Record| {
            if selection.matches(&r) {
                out.push(r);
            }
        };
        if !selection.ids.is_empty() {
            for id in &selection.ids {
                if let Some(r) = self.get(RecordingId(*id))? {
                    keep(r);
                }
            }
        } else if let Some((tree, name)) = selection
            .agent
            .as_ref()
            .map(|a| (BY_AGENT, a))
            .or(selection.queue.as_ref().map(|q| (BY_QUEUE, q)))
        {
            let mut prefix = name.as_bytes().to_vec();
            prefix.push(0);
            for kv in self.trees[tree].scan_prefix(&prefix) {
                let (k, _) = kv.map_err(sled_err("scan an index"))?;
                if let Some(r) = self.record_at(&k[prefix.len()..])? {
                    keep(r);
                }
            }
        } else {
            let (from, until) = key_range(selection.from_ms, selection.until_ms);
            for kv in self.trees[RECORDINGS].range(from..until) {
                let (k, v) = kv.map_err(sled_err("scan the records"))?;
                keep(decode(&k, &v)?);
            }
        }
        Ok(out)
    }

    /// Records purge intents (with a `purge_intent` audit entry each) and flushes them to disk:
    /// after this returns, the files may be deleted.
    pub fn write_intents(&self, intents: &[Intent], time_ms: i64) -> Result<(), StoreError> {
        self.transact("write purge intents", |tx| {
            let mut events = Vec::with_capacity(intents.len());
            for intent in intents {
                tx.0[INTENTS].insert(&intent.id.0.to_be_bytes()[..], json(intent))?;
                events.push(
                    Draft::new(
                        &intent.actor,
                        AuditAction::PurgeIntent,
                        serde_json::json!({"path": intent.path, "rule": intent.rule,
                            "reason": intent.reason, "scope": intent.scope}),
                    )
                    .about(intent.id.0),
                );
            }
            tx.append(events, time_ms)?;
            Ok(())
        })?;
        self.flush()
    }

    /// Whether a purge of this recording is under way (its intent written, no tombstone yet).
    pub fn purge_pending(&self, id: RecordingId) -> Result<bool, StoreError> {
        self.trees[INTENTS]
            .contains_key(id.0.to_be_bytes())
            .map_err(sled_err("read the purge intents"))
    }

    /// The purge intents not yet completed.
    /// Reads everything the store holds besides the audit log (which `audit verify` walks on
    /// its own) and says what cannot be read: a record, summary, hold or intent that does not
    /// decode, an index entry that leads nowhere, a tree sled cannot iterate. Empty: readable.
    pub fn unreadable(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (tree, name) in TREES.iter().enumerate() {
            if tree == AUDIT {
                continue;
            }
            for kv in self.trees[tree].iter() {
                let (k, v) = match kv {
                    Ok(kv) => kv,
                    Err(e) => {
                        problems.push(format!("the {name} tree cannot be read: {e}"));
                        break;
                    }
                };
                let why = match tree {
                    RECORDINGS => decode(&k, &v).err().map(|e| e.to_string()),
                    SUMMARIES => decode_summary(&k, &v).err().map(|e| e.to_string()),
                    HOLDS => serde_json::from_slice::<Hold>(&v)
                        .err()
                        .map(|e| format!("a hold does not decode: {e}")),
                    INTENTS => serde_json::from_slice::<Intent>(&v)
                        .err()
                        .map(|e| format!("a purge intent does not decode: {e}")),
                    BY_ID | BY_PATH => match self.trees[RECORDINGS].get(&v) {
                        Ok(Some(_)) => None,
                        Ok(None) => Some("an index entry names no record".into()),
                        Err(e) => Some(e.to_string()),
                    },
                    _ => None,
                };
                if let Some(why) = why {
                    problems.push(format!("{name} {}: {why}", hex::encode(&k)));
                }
            }
        }
        problems
    }

    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        self.trees[INTENTS]
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(sled_err("read the purge intents"))?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: hex::encode(k),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Completes purges whose files are gone: each record becomes a tombstone, its intent is
    /// removed and a `purge` audit entry written, in one transaction; flushed.
    pub fn finish_purges(
        &self,
        done: &[(Intent, Tombstone)],
        time_ms: i64,
    ) -> Result<(), StoreError> {
        self.transact("record purges", |tx| {
            let mut events = Vec::with_capacity(done.len());
            for (intent, tombstone) in done {
                let id_key = intent.id.0.to_be_bytes();
                if tx.0[INTENTS].get(id_key)?.is_none() {
                    // Completed already (by an earlier attempt of this very run).
                    continue;
                }
                tx.0[INTENTS].remove(&id_key[..])?;
                let Some(old) = tx.get(intent.id)? else {
                    continue;
                };
                let mut record = old.clone();
                record.duration_s = old.duration();
                record.state = RecordState::Purged;
                record.tombstone = Some(tombstone.clone());
                if tombstone.scope == Scope::AudioAndMetadata {
                    record.metadata = None;
                    record.report = None;
                    record.metadata_error = None;
                }
                tx.put(&record, Some(&old))?;
                events.push(
                    Draft::new(
                        &tombstone.actor,
                        AuditAction::Purge,
                        serde_json::json!({"path": old.path, "sha256": old.sha256,
                            "size": old.size, "rule": tombstone.rule, "reason": tombstone.reason,
                            "scope": tombstone.scope, "sidecar_deleted": tombstone.sidecar_deleted,
                            "rolled_forward": tombstone.rolled_forward}),
                    )
                    .about(intent.id.0),
                );
            }
            tx.append(events, time_ms)?;
            Ok(())
        })?;
        self.flush()
    }

    /// Abandons a purge whose file is not the one recorded (or not reachable safely): the
    /// record keeps its file, gets `purge_refused` and the reason, and is left to a human.
    pub fn refuse_purge(&self, intent: &Intent, why: &str, time_ms: i64) -> Result<(), StoreError> {
        self.transact("record a refused purge", |tx| {
            tx.0[INTENTS].remove(&intent.id.0.to_be_bytes()[..])?;
            if let Some(old) = tx.get(intent.id)? {
                let mut record = old.clone();
                record.flag(RecordFlag::PurgeRefused);
                record.purge_note = Some(why.to_string());
                tx.put(&record, Some(&old))?;
            }
            let event = Draft::new(
                &intent.actor,
                AuditAction::PurgeRefused,
                serde_json::json!({"path": intent.path, "rule": intent.rule, "why": why}),
            )
            .about(intent.id.0);
            tx.append(vec![event], time_ms)?;
            Ok(())
        })?;
        self.flush()
    }

    /// Abandons a planned purge that must not happen any more (a hold placed since the plan):
    /// the intent goes, with a `purge_cancelled` audit entry; the record is untouched.
    pub fn cancel_purge(&self, intent: &Intent, why: &str, time_ms: i64) -> Result<(), StoreError> {
        self.transact("cancel a purge", |tx| {
            tx.0[INTENTS].remove(&intent.id.0.to_be_bytes()[..])?;
            let event = Draft::new(
                &intent.actor,
                AuditAction::PurgeCancelled,
                serde_json::json!({"path": intent.path, "rule": intent.rule, "why": why}),
            )
            .about(intent.id.0);
            tx.append(vec![event], time_ms)?;
            Ok(())
        })?;
        self.flush()
    }

    /// Every record, in time order.
    pub fn all(&self) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.trees[RECORDINGS].iter().map(|kv| {
            let (k, v) = kv.map_err(sled_err("scan the records"))?;
            decode(&k, &v)
        })
    }

    /// The records of the calls that started in `[from_ms, until_ms)`, in time order.
    pub fn records_between(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        let (from, until) = key_range(from_ms, until_ms);
        self.trees[RECORDINGS].range(from..until).map(|kv| {
            let (k, v) = kv.map_err(sled_err("scan the records"))?;
            decode(&k, &v)
        })
    }

    /// When the newest audit entry with this action was written, looking back at most
    /// `10_000` entries (a status line, not an audit).
    pub fn last_audit_time(&self, action: AuditAction) -> Result<Option<i64>, StoreError> {
        for kv in self.trees[AUDIT].iter().rev().take(10_000) {
            let (_, v) = kv.map_err(sled_err("read the audit log"))?;
            if let Ok(e) = serde_json::from_slice::<Entry>(&v) {
                if e.action == action {
                    return Ok(Some(e.time_ms));
                }
            }
        }
        Ok(None)
    }

    /// The records in one state, in time order (by the state index).
    pub fn in_state(
        &self,
        state: RecordState,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.trees[BY_STATE].scan_prefix([state.byte()]).map(|kv| {
            let (k, _) = kv.map_err(sled_err("scan the state index"))?;
            self.record_at(&k[1..])?.ok_or_else(|| StoreError::Corrupt {
                key: hex::encode(&k),
                reason: "state index points at no record".into(),
            })
        })
    }

    fn summary_at(&self, key: &[u8]) -> Result<Option<Summary>, StoreError> {
        match self.trees[SUMMARIES]
            .get(key)
            .map_err(sled_err("read a summary"))?
        {
            Some(v) => decode_summary(key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The summaries of the calls that started in `[from_ms, until_ms)`, in time order, read
    /// from the summary index (never the full records).
    pub fn summaries(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> impl Iterator<Item = Result<Summary, StoreError>> + '_ {
        let (from, until) = key_range(from_ms, until_ms);
        self.trees[SUMMARIES].range(from..until).map(|kv| {
            let (k, v) = kv.map_err(sled_err("scan the summaries"))?;
            decode_summary(&k, &v)
        })
    }

    /// The summaries of calls that started in `[from_ms, until_ms)`, newest first (of one agent
    /// or queue, by its index, when `of` names one), read lazily: a page of the newest reads a
    /// page's worth, however large the store.
    pub fn newest<'a>(
        &'a self,
        of: Option<(Named, &str)>,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Box<dyn Iterator<Item = Result<Summary, StoreError>> + 'a> {
        let (from, until) = key_range(from_ms, until_ms);
        let Some((by, name)) = of else {
            return Box::new(self.trees[SUMMARIES].range(from..until).rev().map(|kv| {
                let (k, v) = kv.map_err(sled_err("scan the summaries"))?;
                decode_summary(&k, &v)
            }));
        };
        let tree = match by {
            Named::Agent => BY_AGENT,
            Named::Queue => BY_QUEUE,
        };
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        let (mut lo, mut hi) = (prefix.clone(), prefix.clone());
        lo.extend_from_slice(&from);
        hi.extend_from_slice(&until);
        let skip = prefix.len();
        Box::new(
            self.trees[tree]
                .range(lo..hi)
                .rev()
                .filter_map(move |kv| match kv {
                    Err(e) => Some(Err(sled_err("scan an index")(e))),
                    Ok((k, _)) => self.summary_at(&k[skip..]).transpose(),
                }),
        )
    }

    /// The summaries of one agent's (or queue's) calls in `[from_ms, until_ms)`, by its index.
    pub fn summaries_of(
        &self,
        by: Named,
        name: &str,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<Summary>, StoreError> {
        let tree = match by {
            Named::Agent => BY_AGENT,
            Named::Queue => BY_QUEUE,
        };
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        let (from, until) = key_range(from_ms, until_ms);
        let (mut lo, mut hi) = (prefix.clone(), prefix.clone());
        lo.extend_from_slice(&from);
        hi.extend_from_slice(&until);
        let mut out = Vec::new();
        for kv in self.trees[tree].range(lo..hi) {
            let (k, _) = kv.map_err(sled_err("scan an index"))?;
            if let Some(s) = self.summary_at(&k[prefix.len()..])? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The lowest-scored calls that started in `[from_ms, until_ms)`, worst first (ties: the
    /// earlier call first), at most `limit`, accepted by `keep`. Walks the score index from
    /// the bottom and reads only the summaries it returns or tests.
    pub fn worst(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: usize,
        keep: impl Fn(&Summary) -> bool,
    ) -> Result<Vec<Summary>, StoreError> {
        let (from, until) = key_range(from_ms, until_ms);
        let mut out = Vec::new();
        for kv in self.trees[BY_SCORE].iter() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv.map_err(sled_err("scan the score index"))?;
            let key = &k[1..];
            if key < &from[..] || key >= &until[..] {
                continue;
            }
            if let Some(s) = self.summary_at(key)? {
                if keep(&s) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// The summary of one recording.
    pub fn summary(&self, id: RecordingId) -> Result<Option<Summary>, StoreError> {
        match self.trees[BY_ID]
            .get(id.0.to_be_bytes())
            .map_err(sled_err("read the id index"))?
        {
            Some(key) => self.summary_at(&key),
            None => Ok(None),
        }
    }

    /// The store's size on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Writes everything to disk.
    /// Writes what is pending to disk; then, with an anchor, writes the head that was in the
    /// store before the flush (so on disk now) to the anchor, fsynced.
    pub fn flush(&self) -> Result<(), StoreError> {
        let head = match &self.anchor {
            Some(_) => Some(self.audit_head()?),
            None => None,
        };
        self.db.flush().map(|_| ()).map_err(sled_err("flush"))?;
        if let (Some(a), Some(head)) = (&self.anchor, head) {
            let mut written = a.written.lock().unwrap_or_else(|p| p.into_inner());
            if written.is_none_or(|w| head.seq > w) {
                anchor::write(&a.path, &head).map_err(|e| StoreError::Anchor {
                    anchor: a.path.display().to_string(),
                    reason: format!("write it: {e}"),
                })?;
                *written = Some(head.seq);
            }
        }
        Ok(())
    }

    /// Opens the store in `dir` as [`Store::open`] does, then checks it against the head
    /// anchored at `anchor` (see [`anchor`]): a store whose chain does not reach that head is
    /// refused. Every flush afterwards moves the anchor forward.
    pub fn open_anchored(dir: &Path, anchor_path: &Path) -> Result<Store, StoreError> {
        let mut store = Store::open(dir)?;
        let anchored = anchor::read(anchor_path).map_err(|e| StoreError::Anchor {
            anchor: anchor_path.display().to_string(),
            reason: format!("read it: {e}"),
        })?;
        if let Some(anchored) = anchored.filter(|a| a.seq > 0) {
            let head = store.audit_head()?;
            let behind = || StoreError::BehindAnchor {
                path: dir.display().to_string(),
                anchor: anchor_path.display().to_string(),
                store_seq: head.seq,
                anchored_seq: anchored.seq,
            };
            if anchored.seq > head.seq {
                return Err(behind());
            }
            let entry = store.trees[AUDIT]
                .get(anchored.seq.to_be_bytes())
                .map_err(sled_err("read the audit log"))?
                .and_then(|v| serde_json::from_slice::<Entry>(&v).ok());
            if entry.is_none_or(|e| e.hash != anchored.hash) {
                return Err(StoreError::AnchorMismatch {
                    path: dir.display().to_string(),
                    anchor: anchor_path.display().to_string(),
                    seq: anchored.seq,
                });
            }
        }
        store.anchor = Some(Anchored {
            path: anchor_path.to_path_buf(),
            written: std::sync::Mutex::new(None),
        });
        store.flush()?;
        Ok(store)
    }

    /// How many records are in each state.
    pub fn count_by_state(&self, state: RecordState) -> usize {
        self.trees[BY_STATE].scan_prefix([state.byte()]).count()
    }

    /// The audit chain's head (its last entry's position and hash).
    pub fn audit_head(&self) -> Result<Head, StoreError> {
        match self.trees[META]
            .get("audit_head")
            .map_err(sled_err("read the audit head"))?
        {
            Some(v) => serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                key: "audit_head".into(),
                reason: e.to_string(),
            }),
            None => Ok(Head::default()),
        }
    }

    /// The audit entries in chain order, each with the position its key says and the entry or
    /// why it does not decode.
    pub fn audit_entries(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Result<Entry, String>), StoreError>> + '_ {
        self.audit_entries_after(None)
    }

    /// `audit_entries` after position `after` (from the start without one).
    pub fn audit_entries_after(
        &self,
        after: Option<u64>,
    ) -> impl Iterator<Item = Result<(u64, Result<Entry, String>), StoreError>> + '_ {
        let from = after.map_or(0, |a| a.saturating_add(1));
        self.trees[AUDIT].range(from.to_be_bytes()..).map(|kv| {
            let (k, v) = kv.map_err(sled_err("read the audit log"))?;
            let seq = k
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            Ok((seq, serde_json::from_slice(&v).map_err(|e| e.to_string())))
        })
    }

    /// The audit entries about one recording, in chain order (from the index: no scan of the
    /// log). An indexed entry gone from the log, or that does not decode, comes as its reason.
    pub fn audit_of(
        &self,
        id: RecordingId,
    ) -> impl DoubleEndedIterator<Item = Result<(u64, Result<Entry, String>), StoreError>> + '_
    {
        self.trees[AUDIT_BY_RECORDING]
            .scan_prefix(id.0.to_be_bytes())
            .map(move |kv| {
                let (k, _) = kv.map_err(sled_err("read the audit index"))?;
                let seq = k
                    .get(8..16)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(u64::MAX);
                let entry = match self.trees[AUDIT]
                    .get(seq.to_be_bytes())
                    .map_err(sled_err("read the audit log"))?
                {
                    Some(v) => serde_json::from_slice(&v).map_err(|e| e.to_string()),
                    None => Err(format!("audit entry {seq} is indexed but not in the log")),
                };
                Ok((seq, entry))
            })
    }
}
#[cfg(test)]
mod tests;
