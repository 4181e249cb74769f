//! The embedded store: the adapter for sled 0.34 (the only place that names it).
//!
//! Trees: `recordings` (key: start time in ms, then id, both big-endian so ranges scan in time
//! order; value: a version byte and the record as JSON), and the indexes `by_path` (path →
//! record key), `by_state` (state, key), `by_agent` and `by_queue` (name, 0, key). `meta` holds
//! the schema version. Every write of a record and its indexes is one transaction. Writes reach
//! disk with sled's background flush (every 500 ms) or [`Store::flush`]; a record lost to a crash
//! before that is re-ingested at the next start, because its file is still there (what must
//! never be lost, such as purge intents, will flush before its next step). One process at a time: sled locks the directory; a second opener gets
//! [`StoreError::Locked`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::analysis::model::{ErrorBody, Report};
use crate::metadata::Metadata;

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The version byte in front of every record value.
const RECORD_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open the store at {path}: it is in use by another process (a running daemon?)")]
    Locked { path: String },
    #[error("open the store at {path}: schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    NewerSchema { path: String, found: u32 },
    #[error("store {what}: {source}")]
    Sled {
        what: &'static str,
        source: sled::Error,
    },
    #[error("store: record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A recording's identity in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordingId(pub u64);

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Analysed and stored.
    Analysed,
    /// Shorter than the minimum duration: stored, not judged.
    TooShort,
    /// Could not be decoded; retried only if the file changes.
    Failed,
    /// The file is gone from disk.
    Missing,
}

impl RecordState {
    fn byte(self) -> u8 {
        match self {
            RecordState::Analysed => 1,
            RecordState::TooShort => 2,
            RecordState::Failed => 3,
            RecordState::Missing => 4,
        }
    }
}

/// Everything stored about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: RecordingId,
    /// The file's path as ingested.
    pub path: String,
    pub size: u64,
    /// Modification time, in nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// SHA-256 of the bytes as first ingested; never changed afterwards.
    pub sha256: String,
    pub state: RecordState,
    /// When the call started (ms since the epoch): the sidecar's, else the file's mtime.
    pub started_ms: i64,
    /// When callwarden stored it (ms since the epoch).
    pub ingested_ms: i64,
    pub report: Option<Report>,
    pub error: Option<ErrorBody>,
    pub metadata: Option<Metadata>,
    /// Record-level flags: `metadata_invalid`, `modified_after_ingest`.
    pub flags: Vec<String>,
    /// Why the metadata was rejected, when it was.
    pub metadata_error: Option<String>,
}

impl Record {
    fn key(&self) -> [u8; 16] {
        record_key(self.started_ms, self.id)
    }
}

fn record_key(started_ms: i64, id: RecordingId) -> [u8; 16] {
    let mut key = [0u8; 16];
    // Flip the sign bit so negative times sort before positive ones.
    key[..8].copy_from_slice(&((started_ms as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&id.0.to_be_bytes());
    key
}

fn named_key(name: &str, key: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 17);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn encode(record: &Record) -> Vec<u8> {
    let mut v = vec![RECORD_VERSION];
    // A Record always serialises (no maps with non-string keys, no failing Serialize impls).
    v.extend(serde_json::to_vec(record).unwrap_or_default());
    v
}

fn decode(key: &[u8], value: &[u8]) -> Result<Record, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: hex::encode(key),
        reason,
    };
    match value.split_first() {
        Some((&RECORD_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
        }
        Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        None => Err(corrupt("empty value".into())),
    }
}

pub struct Store {
    db: sled::Db,
    recordings: sled::Tree,
    by_path: sled::Tree,
    by_state: sled::Tree,
    by_agent: sled::Tree,
    by_queue: sled::Tree,
}

fn sled_err(what: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |source| StoreError::Sled { what, source }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.display().to_string();
        let db = sled::Config::new().path(dir).open().map_err(|e| match &e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                StoreError::Locked { path: path.clone() }
            }
            _ => StoreError::Sled {
                what: "open",
                source: e,
            },
        })?;
        let meta = db.open_tree("meta").map_err(sled_err("open meta"))?;
        match meta
            .get("schema_version")
            .map_err(sled_err("read the schema version"))?
        {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema { path, found });
                }
            }
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_err("write the schema version"))?;
            }
        }
        let tree = |name: &'static str| db.open_tree(name).map_err(sled_err("open a tree"));
        Ok(Store {
            recordings: tree("recordings")?,
            by_path: tree("by_path")?,
            by_state: tree("by_state")?,
            by_agent: tree("by_agent")?,
            by_queue: tree("by_queue")?,
            db,
        })
    }

    /// A new, never used id.
    pub fn next_id(&self) -> Result<RecordingId, StoreError> {
        self.db
            .generate_id()
            .map(RecordingId)
            .map_err(sled_err("generate an id"))
    }

    /// The record stored for `path`, if any.
    pub fn by_path(&self, path: &str) -> Result<Option<Record>, StoreError> {
        let Some(key) = self
            .by_path
            .get(path)
            .map_err(sled_err("read the path index"))?
        else {
            return Ok(None);
        };
        match self
            .recordings
            .get(&key)
            .map_err(sled_err("read a record"))?
        {
            Some(v) => decode(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `record` and its indexes in one transaction (replacing an older version of the
    /// same record). Visible to readers at once; durable at the next flush.
    pub fn put(&self, record: &Record, previous: Option<&Record>) -> Result<(), StoreError> {
        let key = record.key();
        let value = encode(record);
        let result = (
            &self.recordings,
            &self.by_path,
            &self.by_state,
            &self.by_agent,
            &self.by_queue,
        )
            .transaction(|(recordings, by_path, by_state, by_agent, by_queue)| {
                if let Some(old) = previous {
                    let old_key = old.key();
                    recordings.remove(&old_key)?;
                    by_path.remove(old.path.as_bytes())?;
                    let mut state_key = vec![old.state.byte()];
                    state_key.extend_from_slice(&old_key);
                    by_state.remove(state_key)?;
                    if let Some(m) = &old.metadata {
                        if let Some(agent) = &m.agent {
                            by_agent.remove(named_key(agent, &old_key))?;
                        }
                        if let Some(queue) = &m.queue {
                            by_queue.remove(named_key(queue, &old_key))?;
                        }
                    }
                }
                recordings.insert(&key[..], value.as_slice())?;
                by_path.insert(record.path.as_bytes(), &key[..])?;
                let mut state_key = vec![record.state.byte()];
                state_key.extend_from_slice(&key);
                by_state.insert(state_key, &[][..])?;
                if let Some(m) = &record.metadata {
                    if let Some(agent) = &m.agent {
                        by_agent.insert(named_key(agent, &key), &[][..])?;
                    }
                    if let Some(queue) = &m.queue {
                        by_queue.insert(named_key(queue, &key), &[][..])?;
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(sled_err("write a record")(e)),
            // The closure above never aborts on its own.
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Corrupt {
                    key: hex::encode(key),
                    reason: "write transaction aborted".into(),
                })
            }
        }
        Ok(())
    }

    /// Every record, in time order.
    pub fn all(&self) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.recordings.iter().map(|kv| {
            let (k, v) = kv.map_err(sled_err("scan the records"))?;
            decode(&k, &v)
        })
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(sled_err("flush"))
    }

    /// How many records are in each state.
    pub fn count_by_state(&self, state: RecordState) -> usize {
        self.by_state.scan_prefix([state.byte()]).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, path: &str, started_ms: i64) -> Record {
        Record {
            id: RecordingId(id),
            path: path.into(),
            size: 10,
            mtime_ns: 5,
            sha256: "ab".into(),
            state: RecordState::Analysed,
            started_ms,
            ingested_ms: 0,
            report: None,
            error: None,
            metadata: Some(Metadata {
                agent: Some("alice".into()),
                ..Default::default()
            }),
            flags: vec![],
            metadata_error: None,
        }
    }

    #[test]
    fn keys_sort_by_time_then_id() {
        let mut keys = [
            record_key(5, RecordingId(1)),
            record_key(-3, RecordingId(9)),
            record_key(5, RecordingId(0)),
            record_key(1_700_000_000_000, RecordingId(2)),
        ];
        keys.sort();
        assert_eq!(keys[0], record_key(-3, RecordingId(9)));
        assert_eq!(keys[1], record_key(5, RecordingId(0)));
        assert_eq!(keys[3], record_key(1_700_000_000_000, RecordingId(2)));
    }

    #[test]
    fn records_round_trip_and_indexes_follow_updates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = record(1, "/r/a.wav", 100);
        store.put(&a, None).unwrap();
        assert_eq!(store.by_path("/r/a.wav").unwrap(), Some(a.clone()));
        assert_eq!(store.count_by_state(RecordState::Analysed), 1);
        let mut b = a.clone();
        b.state = RecordState::Missing;
        store.put(&b, Some(&a)).unwrap();
        assert_eq!(store.count_by_state(RecordState::Analysed), 0);
        assert_eq!(store.count_by_state(RecordState::Missing), 1);
        assert_eq!(store.all().count(), 1);
        drop(store);
        // Reopens with the same content.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.by_path("/r/a.wav").unwrap().unwrap().state,
            RecordState::Missing
        );
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused_plainly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("schema_version", &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        match Store::open(dir.path()) {
            Err(e @ StoreError::NewerSchema { found: 99, .. }) => {
                assert!(e.to_string().contains("newer than this build"))
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a newer store was opened"),
        }
    }

    #[test]
    fn unknown_record_versions_are_reported_not_misread() {
        let err = decode(b"k", &[9, b'{', b'}']).unwrap_err();
        assert!(err.to_string().contains("unknown record version 9"));
    }
}
