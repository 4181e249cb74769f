//! The audit log's entries and its hash chain (pure: no store, no clock).
//!
//! Every entry holds the SHA-256 of the one before it (`prev`) and its own (`hash`, over its
//! canonical JSON without `hash`). The store appends entries in the same transaction as the
//! change they describe, so a change and its entry exist together or not at all. Editing an
//! entry breaks its hash; removing one breaks the next entry's `prev` and the sequence; removing
//! the last ones breaks the head the store keeps beside the chain. [`verify_chain`] names each
//! break.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry, as stored and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub time_ms: i64,
    /// Who: a user name, `daemon`, `ingest`, `purge`.
    pub actor: String,
    /// What: `ingest`, `modified_after_ingest`, `missing`, `metadata`, `consent`, `hold_add`,
    /// `hold_release`, `purge_intent`, `purge`, `purge_refused`, `config_reload`, `chain_head`.
    pub action: String,
    /// The recording it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<u64>,
    /// The particulars (paths, hashes, rules, old and new values).
    pub details: serde_json::Value,
    /// The hash of the previous entry ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 of this entry's canonical JSON without this field.
    pub hash: String,
}

/// What an audit entry records: the actions callwarden writes. Entries are read back with their
/// action as text (`Entry::action`), exactly as stored, so that an entry written by another
/// version, or edited, is checked by its hash rather than refused by a parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Ingest,
    Touched,
    ModifiedAfterIngest,
    Moved,
    Missing,
    Metadata,
    Consent,
    HoldAdd,
    HoldRelease,
    PurgeIntent,
    Purge,
    PurgeRefused,
    PurgeCancelled,
    PurgeRun,
    ConfigReload,
    DaemonStart,
    DaemonStop,
    /// Call records (CDRs) loaded or followed.
    CallsImport,
    /// Call records dropped by their retention (`calls.retention_days`).
    CallsDrop,
    /// A live record holds the bytes of a recording whose purge found its file already gone.
    EscapedPurge,
    /// A redacted copy of a recording was written (the original unchanged).
    Redact,
    /// A console account was added or changed (never its password).
    User,
    /// A console login, a refused one, a logout.
    Login,
    LoginFailed,
    Logout,
    /// A recording was played or downloaded in the console.
    Access,
    Note,
}

impl AuditAction {
    /// The name stored in the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Ingest => "ingest",
            AuditAction::Touched => "touched",
            AuditAction::ModifiedAfterIngest => "modified_after_ingest",
            AuditAction::Moved => "moved",
            AuditAction::Missing => "missing",
            AuditAction::Metadata => "metadata",
            AuditAction::Consent => "consent",
            AuditAction::HoldAdd => "hold_add",
            AuditAction::HoldRelease => "hold_release",
            AuditAction::PurgeIntent => "purge_intent",
            AuditAction::Purge => "purge",
            AuditAction::PurgeRefused => "purge_refused",
            AuditAction::PurgeCancelled => "purge_cancelled",
            AuditAction::PurgeRun => "purge_run",
            AuditAction::ConfigReload => "config_reload",
            AuditAction::DaemonStart => "daemon_start",
            AuditAction::DaemonStop => "daemon_stop",
            AuditAction::CallsImport => "calls_import",
            AuditAction::CallsDrop => "calls_drop",
            AuditAction::EscapedPurge => "escaped_purge",
            AuditAction::Redact => "redact",
            AuditAction::User => "user",
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::Access => "access",
            AuditAction::Note => "note",
        }
    }
}

impl PartialEq<AuditAction> for String {
    fn eq(&self, other: &AuditAction) -> bool {
        self == other.as_str()
    }
}

/// An entry before it has a place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub actor: String,
    pub action: AuditAction,
    pub recording: Option<u64>,
    pub details: serde_json::Value,
}

impl Draft {
    pub fn new(actor: &str, action: AuditAction, details: serde_json::Value) -> Draft {
        Draft {
            actor: actor.to_string(),
            action,
            recording: None,
            details,
        }
    }

    pub fn about(mut self, recording: u64) -> Draft {
        self.recording = Some(recording);
        self
    }

    /// Seals the draft as entry `seq` after the entry whose hash is `prev`.
    pub fn seal(self, seq: u64, time_ms: i64, prev: &str) -> Entry {
        let mut e = Entry {
            seq,
            time_ms,
            actor: self.actor,
            action: self.action.as_str().to_string(),
            recording: self.recording,
            details: self.details,
            prev: prev.to_string(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }
}

impl Entry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            seq: u64,
            time_ms: i64,
            actor: &'a str,
            action: &'a str,
            recording: Option<u64>,
            details: &'a serde_json::Value,
            prev: &'a str,
        }
        let body = Body {
            seq: self.seq,
            time_ms: self.time_ms,
            actor: &self.actor,
            action: &self.action,
            recording: self.recording,
            details: &self.details,
            prev: &self.prev,
        };
        // serde_json writes struct fields in order and maps sorted: one canonical form.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The last entry's position and hash, kept beside the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// One break in the chain, with the entry it was found at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Break {
    /// The sequence number of the entry at fault (or expected there).
    pub seq: u64,
    pub problem: String,
}

/// Checks a chain read in key order (each item: the sequence number its key says, and the
/// entry or why it did not decode) against the stored head.
pub fn verify_chain(
    entries: impl IntoIterator<Item = (u64, Result<Entry, String>)>,
    head: &Head,
) -> (u64, Vec<Break>) {
    let mut breaks = Vec::new();
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    for (key_seq, entry) in entries {
        count += 1;
        let entry = match entry {
            Ok(e) => e,
            Err(why) => {
                breaks.push(Break {
                    seq: key_seq,
                    problem: format!("entry does not decode: {why}"),
                });
                expected_seq = key_seq + 1;
                prev = String::new();
                continue;
            }
        };
        if key_seq != expected_seq {
            breaks.push(Break {
                seq: expected_seq,
                problem: if key_seq > expected_seq {
                    format!(
                        "entries {expected_seq} to {} are missing",
                        key_seq.saturating_sub(1)
                    )
                } else {
                    format!("entry {key_seq} is out of order")
                },
            });
        }
        if entry.seq != key_seq {
            breaks.push(Break {
                seq: key_seq,
                problem: format!("entry stored at {key_seq} says it is {}", entry.seq),
            });
        }
        if entry.hash != entry.compute_hash() {
            breaks.push(Break {
                seq: key_seq,
                problem: "content does not match its hash (edited)".into(),
            });
        }
        if !prev.is_empty() && entry.prev != prev && key_seq == expected_seq {
            breaks.push(Break {
                seq: key_seq,
                problem: "does not follow the previous entry's hash".into(),
            });
        }
        prev = entry.hash.clone();
        expected_seq = key_seq + 1;
    }
    let last = expected_seq - 1;
    if last != head.seq {
        breaks.push(Break {
            seq: head.seq.max(last),
            problem: format!(
                "the chain ends at entry {last} but its head says {}: entries were removed or added",
                head.seq
            ),
        });
    } else if head.seq > 0 && prev != head.hash && !prev.is_empty() {
        breaks.push(Break {
            seq: head.seq,
            problem: "the last entry's hash differs from the recorded head".into(),
        });
    }
    (count, breaks)
}

#[cfg(test)]
mod tests {
    #[test]
    fn actions_keep_the_names_stored_before_they_were_an_enum() {
        let seal = |a| Draft::new("t", a, serde_json::json!({})).seal(1, 0, GENESIS);
        assert_eq!(seal(AuditAction::Purge).action, "purge");
        assert_eq!(seal(AuditAction::HoldAdd).action, "hold_add");
        assert_eq!(
            seal(AuditAction::ModifiedAfterIngest).action,
            "modified_after_ingest"
        );
        assert!(seal(AuditAction::PurgeRun).action == AuditAction::PurgeRun);
    }

    use super::*;

    fn chain(n: u64) -> (Vec<Entry>, Head) {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for seq in 1..=n {
            let e = Draft::new("alice", AuditAction::Ingest, serde_json::json!({"n": seq}))
                .about(seq)
                .seal(seq, 1000 + seq as i64, &prev);
            prev = e.hash.clone();
            out.push(e);
        }
        let head = Head { seq: n, hash: prev };
        (out, head)
    }

    fn check(entries: &[Entry], head: &Head) -> Vec<Break> {
        verify_chain(entries.iter().map(|e| (e.seq, Ok(e.clone()))), head).1
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (entries, head) = chain(5);
        assert!(check(&entries, &head).is_empty());
        assert!(check(&[], &Head::default()).is_empty());
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (mut entries, head) = chain(5);
        entries[2].actor = "mallory".into();
        let breaks = check(&entries, &head);
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(breaks[0].seq, 3);
        assert!(breaks[0].problem.contains("edited"));
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let (mut entries, head) = chain(5);
        entries[1].details = serde_json::json!({"n": 99});
        entries[1].hash = entries[1].compute_hash();
        let breaks = check(&entries, &head);
        assert_eq!(breaks[0].seq, 3, "{breaks:?}");
    }

    #[test]
    fn a_removed_entry_is_named() {
        let (mut entries, head) = chain(5);
        entries.remove(3);
        let breaks = check(&entries, &head);
        assert!(
            breaks
                .iter()
                .any(|b| b.seq == 4 && b.problem.contains("missing")),
            "{breaks:?}"
        );
        // Removing the last entry shows against the head.
        let (mut entries, head) = chain(5);
        entries.pop();
        let breaks = check(&entries, &head);
        assert!(
            breaks
                .iter()
                .any(|b| b.seq == 5 && b.problem.contains("removed")),
            "{breaks:?}"
        );
    }
}
