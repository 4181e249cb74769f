//! The store's records and what it keeps beside them: the data, no I/O.

use serde::{Deserialize, Serialize};

use crate::analysis::model::{ErrorBody, Report};
use crate::config::ConsentLaw;
use crate::consent::ConsentRecord;
use crate::metadata::Metadata;
use crate::policy::Scope;
use crate::recording_path::RecordingPath;

use super::keys::record_key;

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
    /// The file is gone from disk, not by callwarden's hand.
    Missing,
    /// Deleted by a purge: the record is a tombstone.
    Purged,
}

impl RecordState {
    pub(super) fn byte(self) -> u8 {
        match self {
            RecordState::Analysed => 1,
            RecordState::TooShort => 2,
            RecordState::Failed => 3,
            RecordState::Missing => 4,
            RecordState::Purged => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Analysed => "analysed",
            RecordState::TooShort => "too_short",
            RecordState::Failed => "failed",
            RecordState::Missing => "missing",
            RecordState::Purged => "purged",
        }
    }
}

/// What stays of a purged recording: proof of what it was and why it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    /// When the file was deleted (the real time).
    pub deleted_ms: i64,
    /// The time the retention policy was asked as of, when it was not the real time
    /// (`purge --now`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_ms: Option<i64>,
    /// The retention rule behind the purge.
    pub rule: String,
    /// Why, in words (expired on …, consent denied …, disk pressure, manual).
    pub reason: String,
    pub actor: String,
    pub scope: Scope,
    /// The sidecar was deleted with the audio.
    pub sidecar_deleted: bool,
    /// The purge was interrupted and completed by a later run.
    #[serde(default)]
    pub rolled_forward: bool,
}

/// Everything stored about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: RecordingId,
    /// The file's path: absolute, normalised, byte-exact.
    pub path: RecordingPath,
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
    /// The audio's duration (kept when a purge removes the analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    pub report: Option<Report>,
    pub error: Option<ErrorBody>,
    pub metadata: Option<Metadata>,
    /// Record-level flags: `metadata_invalid`, `metadata_unsafe`, `modified_after_ingest`,
    /// `purge_refused`.
    pub flags: Vec<String>,
    /// Why the metadata was rejected, when it was.
    pub metadata_error: Option<String>,
    /// The consent now; earlier states are in `consent_history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent_history: Vec<ConsentRecord>,
    /// The consent law that applies to the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_law: Option<ConsentLaw>,
    /// Legal holds in force on it (hold ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<u64>,
    /// Set when a purge refused to delete it (the file changed, a symlink, outside the roots);
    /// the planner leaves it to a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<Tombstone>,
    /// The recording this one is a copy of (the same bytes, still on disk when this one was
    /// stored): two files, two records, each purged on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin: Option<RecordingId>,
}

impl Record {
    /// A record with only its identity set (the rest empty), to be filled in.
    pub fn blank() -> Record {
        Record {
            id: RecordingId(0),
            path: RecordingPath::default(),
            size: 0,
            mtime_ns: 0,
            sha256: String::new(),
            state: RecordState::Analysed,
            started_ms: 0,
            ingested_ms: 0,
            duration_s: None,
            report: None,
            error: None,
            metadata: None,
            flags: Vec::new(),
            metadata_error: None,
            consent: None,
            consent_history: Vec::new(),
            consent_law: None,
            holds: Vec::new(),
            purge_note: None,
            tombstone: None,
            twin: None,
        }
    }

    pub(super) fn key(&self) -> [u8; 16] {
        record_key(self.started_ms, self.id)
    }

    /// The duration, from the analysis or as kept.
    pub fn duration(&self) -> Option<f64> {
        self.duration_s
            .or_else(|| self.report.as_ref().map(|r| r.format.duration_s))
    }
}

/// A purge about to delete a recording's files: written (and flushed) before anything is deleted,
/// removed with the tombstone. A run that finds one completes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: RecordingId,
    pub path: RecordingPath,
    pub size: u64,
    pub mtime_ns: i128,
    pub rule: String,
    pub reason: String,
    pub scope: Scope,
    pub actor: String,
    pub planned_ms: i64,
}

/// Which recordings a hold covers. Every given criterion must match; at least one is needed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Calls that started at or after this (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// Calls that started before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

impl Selection {
    pub(super) fn is_empty(&self) -> bool {
        *self == Selection::default()
    }

    pub(super) fn matches(&self, r: &Record) -> bool {
        let m = r.metadata.as_ref();
        (self.ids.is_empty() || self.ids.contains(&r.id.0))
            && self
                .agent
                .as_ref()
                .is_none_or(|a| m.and_then(|m| m.agent.as_ref()) == Some(a))
            && self
                .queue
                .as_ref()
                .is_none_or(|q| m.and_then(|m| m.queue.as_ref()) == Some(q))
            && self
                .call_id
                .as_ref()
                .is_none_or(|c| m.and_then(|m| m.call_id.as_ref()) == Some(c))
            && self.from_ms.is_none_or(|t| r.started_ms >= t)
            && self.until_ms.is_none_or(|t| r.started_ms < t)
    }
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub id: u64,
    pub case: String,
    pub reason: String,
    pub actor: String,
    pub added_ms: i64,
    pub selection: Selection,
    /// The recordings it covers (those the selection matched when it was added).
    pub recordings: Vec<RecordingId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Release>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub at_ms: i64,
    pub actor: String,
    pub reason: String,
}
