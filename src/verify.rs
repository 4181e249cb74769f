//! `audit verify`: the audit chain, and every recording on disk against its stored hash.
//!
//! Reads the store and the recordings; writes nothing. Each problem names the audit entry or
//! the recording (id and path) it was found at.

use serde::{Deserialize, Serialize};

use crate::recording_path::RecordingPath;
use crate::store::{Record, RecordState, Store, StoreError};

/// What `audit verify` found.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Entries in the chain.
    pub entries: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// Breaks in the chain: the entry, and what is wrong.
    pub chain_breaks: Vec<crate::audit::Break>,
    /// Recordings re-hashed and found intact.
    pub recordings_ok: u64,
    /// Recordings that are not what was stored: id, path, what is wrong.
    pub recording_problems: Vec<(u64, RecordingPath, String)>,
    /// What in the store cannot be read (records, summaries, holds, intents, indexes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.chain_breaks.is_empty()
            && self.recording_problems.is_empty()
            && self.store_problems.is_empty()
    }
}

/// Checks the chain and, with `files`, re-hashes every recording that should be on disk (and
/// checks that purged ones are gone) with `jobs` threads.
pub fn verify(store: &Store, files: bool, jobs: usize) -> Result<Verification, StoreError> {
    let (head, entries) = consistent_chain(store)?;
    let (count, chain_breaks) = crate::audit::verify_chain(entries, &head);
    let mut v = Verification {
        entries: count,
        head_seq: head.seq,
        head_hash: head.hash,
        chain_breaks,
        // Never "intact" over a store that cannot be read whole (the full check only: the
        // chain-only check stays as cheap as the chain).
        store_problems: if files {
            store.unreadable()
        } else {
            Vec::new()
        },
        ..Verification::default()
    };
    if !files {
        return Ok(v);
    }
    let mut records = Vec::new();
    for state in [
        RecordState::Analysed,
        RecordState::TooShort,
        RecordState::Failed,
        RecordState::Missing,
        RecordState::Purged,
    ] {
        for r in store.in_state(state) {
            // What the check needs, not the analysis: memory stays small on big stores.
            let r = r?;
            records.push(Record {
                id: r.id,
                path: r.path,
                size: r.size,
                sha256: r.sha256,
                state: r.state,
                flags: r.flags,
                twin: r.twin,
                ..Record::blank()
            });
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(r) = records.get(i) else { break };
                let mut problem = check_file(r);
                // Gone while a purge of it was under way (its intent written) or finished
                // since the list was read: that is the purge, not a loss.
                if problem.as_deref() == Some(GONE)
                    && (store.purge_pending(r.id).unwrap_or(false)
                        || store
                            .get(r.id)
                            .ok()
                            .flatten()
                            .is_some_and(|now| now.state == RecordState::Purged))
                {
                    problem = None;
                }
                if let Ok(mut out) = results.lock() {
                    out.push((r.id.0, r.path.clone(), problem));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort();
    for (id, path, problem) in results {
        match problem {
            None => v.recordings_ok += 1,
            Some(p) => v.recording_problems.push((id, path, p)),
        }
    }
    Ok(v)
}

/// The chain as of one head, while writers may be appending. Entries and their head are written
/// in one transaction, so every entry up to a head read before the log was read is there; the
/// entries appended while the log was read (up to the head read after it) belong to the next
/// check and are left out; an entry past that second head was never written with a head and
/// stays in, to be reported.
#[allow(clippy::type_complexity)]
fn consistent_chain(
    store: &Store,
) -> Result<
    (
        crate::audit::Head,
        Vec<(u64, Result<crate::audit::Entry, String>)>,
    ),
    StoreError,
> {
    let head = store.audit_head()?;
    let mut entries = store.audit_entries().collect::<Result<Vec<_>, _>>()?;
    let after = store.audit_head()?;
    entries.retain(|(seq, _)| *seq <= head.seq || *seq > after.seq);
    Ok((head, entries))
}

const GONE: &str = "the file is gone, and no purge deleted it";
const NO_HASH: &str =
    "no hash was recorded (the file could not be read at ingest): it cannot be proven intact";

/// What is wrong with one recording's file, if anything.
fn check_file(r: &Record) -> Option<String> {
    let path = r.path.as_path();
    let meta = path.symlink_metadata();
    if r.state == RecordState::Purged {
        // Gone is right; a file with the same bytes at the path means the purge did not happen.
        let meta = meta.ok()?;
        if meta.is_file() && meta.len() == r.size {
            if let Ok(sha) = crate::pipeline::sha256_file(path) {
                if sha == r.sha256 {
                    return Some("purged, but the file is still on disk".into());
                }
            }
        }
        return None;
    }
    match meta {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(GONE.into()),
        Err(e) => Some(format!("cannot read the file: {e}")),
        Ok(m) if !m.is_file() => Some("not a regular file any more (a symlink?)".into()),
        // Never read whole at ingest (an error that outlived its retries): nothing to prove
        // it against, so never counted intact.
        Ok(_) if r.sha256.is_empty() => Some(NO_HASH.into()),
        Ok(_) => match crate::pipeline::sha256_file(path) {
            Ok(sha) if sha == r.sha256 && r.has(crate::store::RecordFlag::EscapedPurge) => {
                Some(format!(
                    "holds the bytes of purged recording {}, moved here while its purge was \
                     pending: that purge's certificate does not prove them gone (the next purge \
                     decides this copy again)",
                    r.twin.map_or(0, |t| t.0)
                ))
            }
            Ok(sha) if sha == r.sha256 => None,
            Ok(sha) => Some(format!(
                "content changed: SHA-256 {sha}, stored {}",
                r.sha256
            )),
            Err(e) => Some(format!("cannot read the file: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, Draft};
    use crate::recording_path::RecordingPath;

    #[test]
    fn a_busy_log_is_never_reported_broken() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..3000 {
                    let draft =
                        Draft::new("test", AuditAction::Note, serde_json::json!({ "i": i }));
                    store.audit(vec![draft.clone(), draft], i).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let mut checks = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || checks == 0 {
                let v = verify(&store, false, 1).unwrap();
                assert!(v.chain_breaks.is_empty(), "{:?}", v.chain_breaks);
                checks += 1;
            }
            assert!(checks > 1);
        });
        assert!(verify(&store, false, 1).unwrap().ok());
    }

    #[test]
    fn a_record_without_a_hash_is_never_intact() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        let r = Record {
            path: RecordingPath::absolute(&file).unwrap(),
            size: 4,
            state: RecordState::Failed,
            ..Record::blank()
        };
        assert_eq!(check_file(&r).as_deref(), Some(NO_HASH));
        let r = Record {
            sha256: crate::pipeline::sha256_file(&file).unwrap(),
            ..r
        };
        assert_eq!(check_file(&r), None);
    }
}
