//! A recording's summary: the few fields that lists, KPIs and reports read, kept by the store
//! in its own index beside the full record (pure).
//!
//! A full record holds the whole analysis report (hundreds of fields, several kilobytes of
//! JSON); reading a month of them to count scores would decode megabytes for a handful of
//! numbers. The summary is derived from the record on every write ([`Summary::of`]), so it can
//! never disagree with it, and is small enough to scan a year of calls in a second.

use serde::{Deserialize, Serialize};

use crate::analysis::model::Grade;
use crate::config::ConsentLaw;
use crate::metadata::ConsentState;
use crate::record::{Record, RecordState};
use crate::recording_path::RecordingPath;

/// What lists, KPIs and reports need of one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: u64,
    pub path: RecordingPath,
    pub state: RecordState,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// Quality flag codes, then record flags (`purge_refused`, `metadata_invalid`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_law: Option<ConsentLaw>,
    /// Speech time over all channels (the union), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_s: Option<f64>,
    /// Hold music, seconds, when there was any (analysis reports from v1.1 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_s: Option<f64>,
    /// Time nobody spoke for long (hold, dead air), seconds; stereo calls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_talk_s: Option<f64>,
    /// Both parties at once, seconds; stereo calls only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overtalk_s: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// Why a failed recording could not be analysed: the error code (`unsupported_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The PBX's id of the call (the sidecar's `call_id`), for matching call records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The sidecar's tags (`on_demand`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The law also needs notice (a recording announcement in the audio).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
    /// Whether the audio held a recording announcement (`None`: not looked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<bool>,
    /// The sidecar says consent came from an announcement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sidecar_announced: bool,
    /// DTMF digits keyed into the call, and in its longest burst (never which digits).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dtmf_digits: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dtmf_burst: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Summary {
    /// The summary of a record, as it is now.
    pub fn of(r: &Record) -> Summary {
        let report = r.report.as_ref();
        let quality = report.map(|rep| &rep.quality);
        let conversation = report.and_then(|rep| rep.conversation.as_ref());
        let meta = r.metadata.as_ref();
        let mut flags: Vec<String> = quality
            .map(|q| q.flags.iter().map(|f| f.code.clone()).collect())
            .unwrap_or_default();
        for f in &r.flags {
            if !flags.iter().any(|g| g == f.as_str()) {
                flags.push(f.as_str().to_string());
            }
        }
        Summary {
            id: r.id.0,
            path: r.path.clone(),
            state: r.state,
            started_ms: r.started_ms,
            duration_s: r.duration(),
            // A purged recording keeps its analysis only when its rule deleted the audio alone;
            // either way it no longer counts as a scored call.
            score: quality.map(|q| q.score).filter(|_| scored(r.state)),
            grade: quality.map(|q| q.grade).filter(|_| scored(r.state)),
            flags,
            agent: meta.and_then(|m| m.agent.clone()),
            queue: meta.and_then(|m| m.queue.clone()),
            consent: r.consent.as_ref().map(|c| c.state),
            consent_law: r.consent_law,
            talk_s: report.map(|rep| rep.metrics.speech.talk_time_s),
            hold_s: report
                .map(|rep| rep.metrics.hold.music_s)
                .filter(|&h| h > 0.0),
            non_talk_s: conversation.map(|c| c.non_talk_s),
            overtalk_s: conversation.map(|c| c.overtalk_s),
            held: !r.holds.is_empty(),
            error: r
                .error
                .as_ref()
                .filter(|_| r.state == RecordState::Failed)
                .map(|e| e.code.clone()),
            call_id: meta.and_then(|m| m.call_id.clone()),
            tags: meta.map(|m| m.tags.clone()).unwrap_or_default(),
            notice: r.notice,
            announced: report
                .and_then(|rep| rep.evidence.announcement.as_ref())
                .map(|a| a.found),
            sidecar_announced: meta
                .and_then(|m| m.consent.as_ref())
                .is_some_and(|c| c.source == Some(crate::metadata::ConsentSource::Announcement)),
            dtmf_digits: report.map_or(0, |rep| rep.evidence.dtmf.digits),
            dtmf_burst: report.map_or(0, |rep| rep.evidence.dtmf.longest_burst),
        }
    }
}

#[cfg(test)]
impl Summary {
    /// An analysed recording with nothing else known, for tests to fill in what they judge.
    pub(crate) fn blank(id: u64, path: &str) -> Summary {
        Summary {
            id,
            path: RecordingPath::from_bytes(path.as_bytes()).unwrap(),
            state: RecordState::Analysed,
            started_ms: 0,
            duration_s: None,
            score: None,
            grade: None,
            flags: vec![],
            agent: None,
            queue: None,
            consent: None,
            consent_law: None,
            talk_s: None,
            hold_s: None,
            non_talk_s: None,
            overtalk_s: None,
            held: false,
            error: None,
            call_id: None,
            tags: vec![],
            notice: false,
            announced: None,
            sidecar_announced: false,
            dtmf_digits: 0,
            dtmf_burst: 0,
        }
    }
}

/// Whether records in this state carry a score that lists and KPIs count.
pub fn scored(state: RecordState) -> bool {
    matches!(state, RecordState::Analysed | RecordState::Missing)
}
