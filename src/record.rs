//! The records callwarden keeps and what they are made of: the domain's data types at the
//! bottom of the crate (a recording's record, its state, consent, retention span and scope,
//! tombstone, holds and purge intents). Data only: no I/O, and it imports nothing that imports
//! it back (the store, the policy, the configuration, the summaries and the KPIs all build on
//! it).

use serde::{Deserialize, Serialize};

use crate::analysis::model::{ErrorBody, Report};
use crate::metadata::Metadata;
use crate::recording_path::RecordingPath;

use crate::metadata::{ConsentSource, ConsentState};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A record's key in the store: its start time (sign flipped, so earlier times sort first),
/// then its id, both big-endian.
pub fn record_key(started_ms: i64, id: RecordingId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&((started_ms as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&id.0.to_be_bytes());
    key
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

/// A record-level flag, stored by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFlag {
    /// The sidecar could not be used (`metadata_error` says why).
    MetadataInvalid,
    /// The sidecar's fields look like paths or carry control characters.
    MetadataUnsafe,
    /// The bytes on disk are not the ones first hashed: never purged automatically (the file
    /// there is not the recording), left to a human.
    ModifiedAfterIngest,
    /// A purge refused to delete it (`purge_note` says why): left to a human.
    PurgeRefused,
    /// Its bytes are those of a purged recording (`twin`) whose purge found the file already
    /// gone from its path: it was moved while the purge was pending, so the deletion certificate
    /// does not prove those bytes gone. The policy decides it again like any other recording.
    EscapedPurge,
}

impl RecordFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordFlag::MetadataInvalid => "metadata_invalid",
            RecordFlag::MetadataUnsafe => "metadata_unsafe",
            RecordFlag::ModifiedAfterIngest => "modified_after_ingest",
            RecordFlag::PurgeRefused => "purge_refused",
            RecordFlag::EscapedPurge => "escaped_purge",
        }
    }
}

impl std::fmt::Display for RecordFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a purge saw a recording's file go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deletion {
    /// The purge found the recorded file and deleted it.
    Deleted,
    /// The file was already gone from its path when the purge ran or resumed (deleted before a
    /// crash, or by someone else): rolled forward, the deletion not witnessed.
    AlreadyGone,
}

impl Deletion {
    pub fn as_str(self) -> &'static str {
        match self {
            Deletion::Deleted => "deleted",
            Deletion::AlreadyGone => "already_gone",
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
    /// Record-level flags (some steer the policy and the purge: see [`RecordFlag`]).
    pub flags: Vec<RecordFlag>,
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
    /// The law also needs notice: a recording announcement in the audio (`notice` in
    /// `[consent]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
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
            notice: false,
            holds: Vec::new(),
            purge_note: None,
            tombstone: None,
            twin: None,
        }
    }

    pub(super) fn key(&self) -> [u8; 16] {
        record_key(self.started_ms, self.id)
    }

    pub fn has(&self, flag: RecordFlag) -> bool {
        self.flags.contains(&flag)
    }

    /// Sets `flag` (once).
    pub fn flag(&mut self, flag: RecordFlag) {
        if !self.has(flag) {
            self.flags.push(flag);
        }
    }

    pub fn unflag(&mut self, flag: RecordFlag) {
        self.flags.retain(|f| *f != flag);
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

/// One-party consent (one side may record: most US states, the UK) or all-party (every side
/// must agree: California, Germany, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentLaw {
    OneParty,
    AllParty,
}

impl ConsentLaw {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentLaw::OneParty => "one_party",
            ConsentLaw::AllParty => "all_party",
        }
    }
}

/// A recording's consent at one point of its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub state: ConsentState,
    pub source: ConsentSource,
    /// When consent was given or denied, if known (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<i64>,
    /// When callwarden recorded it.
    pub recorded_ms: i64,
    /// Who recorded it: `ingest` for sidecars, else the operator.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A retention period: `"36h"`, `"90d"`, `"12w"`, `"5y"` (calendar years) or `"forever"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Span {
    Hours(u32),
    Days(u32),
    Weeks(u32),
    Years(u32),
    #[default]
    Forever,
}

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(text: String) -> Result<Span, String> {
        Span::parse(&text)
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        span.to_string()
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Span::Hours(n) => write!(f, "{n}h"),
            Span::Days(n) => write!(f, "{n}d"),
            Span::Weeks(n) => write!(f, "{n}w"),
            Span::Years(n) => write!(f, "{n}y"),
            Span::Forever => f.write_str("forever"),
        }
    }
}

impl Span {
    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        if t == "forever" {
            return Ok(Span::Forever);
        }
        let bad = || {
            format!("{text:?} is not a period: write a whole number and h, d, w or y (\"90d\", \"5y\"), or \"forever\"")
        };
        let unit = t.chars().last().ok_or_else(bad)?;
        let n: u32 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        if n > 1000 * 365 {
            return Err(format!("{text:?} is longer than a thousand years"));
        }
        match unit {
            'h' => Ok(Span::Hours(n)),
            'd' => Ok(Span::Days(n)),
            'w' => Ok(Span::Weeks(n)),
            'y' if n <= 1000 => Ok(Span::Years(n)),
            'y' => Err(format!("{text:?} is longer than a thousand years")),
            _ => Err(bad()),
        }
    }

    /// `from_ms` plus this span, in ms since the epoch; `None` for forever. Years are calendar
    /// years (29 February plus a year is 1 March).
    pub fn after(self, from_ms: i64) -> Option<i64> {
        match self {
            Span::Hours(n) => Some(from_ms.saturating_add(i64::from(n) * HOUR_MS)),
            Span::Days(n) => Some(from_ms.saturating_add(i64::from(n) * DAY_MS)),
            Span::Weeks(n) => Some(from_ms.saturating_add(i64::from(n) * 7 * DAY_MS)),
            Span::Years(n) => Some(add_years(from_ms, n)),
            Span::Forever => None,
        }
    }
}

fn add_years(from_ms: i64, years: u32) -> i64 {
    use time::{Date, Month, OffsetDateTime};
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(from_ms) * 1_000_000) else {
        return i64::MAX;
    };
    let year = t.year() + years as i32;
    let date = Date::from_calendar_date(year, t.month(), t.day())
        .or_else(|_| Date::from_calendar_date(year, Month::March, 1));
    match date {
        Ok(d) => {
            let moved = t.replace_date(d);
            (moved.unix_timestamp_nanos() / 1_000_000) as i64
        }
        Err(_) => i64::MAX,
    }
}

/// What a purge deletes. The tombstone (hash, size, duration, when, why, who) always stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Scope {
    /// The audio file and its sidecar; the record's metadata and analysis stay.
    #[default]
    #[serde(rename = "audio")]
    Audio,
    /// The files, and the record's metadata and analysis.
    #[serde(rename = "audio+metadata")]
    AudioAndMetadata,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Audio => "audio",
            Scope::AudioAndMetadata => "audio+metadata",
        }
    }
}
