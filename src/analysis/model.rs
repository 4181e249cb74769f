//! The analysis report: the JSON contract of `docs/analysis-report.md` as Rust types.
//!
//! Field names are the contract. Add fields freely; never rename or remove one without bumping
//! [`SCHEMA`].

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "callwarden.analysis.v1.5";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub file: String,
    pub sha256: String,
    pub format: Format,
    pub quality: Quality,
    #[serde(flatten)]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    /// Compliance evidence in the audio itself (added in v1.3; reports before it read as none).
    #[serde(default)]
    pub evidence: Evidence,
    pub decode: DecodeReport,
    pub analyzer: Analyzer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Format {
    pub container: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub score: u32,
    pub mos: f64,
    pub grade: Grade,
    pub flags: Vec<Flag>,
    /// The points each impairment took off the score (an addition to the contract).
    pub penalties: Vec<Penalty>,
    /// Version of the scoring formula (docs/scoring.md).
    pub formula: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Good,
    Fair,
    Poor,
    Bad,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Good => "good",
            Grade::Fair => "fair",
            Grade::Poor => "poor",
            Grade::Bad => "bad",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub code: String,
    pub severity: Severity,
    pub message: String,
    /// The role of the channel it is about (multi-channel recordings: each leg is judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    pub term: String,
    pub points: f64,
    /// The channel it was measured on (multi-channel: the worst leg's terms count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The measurements shared by the whole recording and each channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub speech: Speech,
    pub silence: Silence,
    pub level: Level,
    pub noise: Noise,
    pub clarity: Clarity,
    pub clipping: Clipping,
    pub dropouts: Dropouts,
    /// Music on hold (added in v1.1; reports of v1 read as none).
    #[serde(default)]
    pub hold: Hold,
}

/// Music on hold: its total length and its stretches (music with no speech between is one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub music_s: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub music: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speech {
    pub ratio: f64,
    pub talk_time_s: f64,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub leading_silence_s: f64,
    pub trailing_silence_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<[f64; 2]>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub longest_s: f64,
    pub dead_air_s: f64,
    pub dead_air_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub active_speech_dbfs: Option<f64>,
    pub peak_dbfs: f64,
    pub dc_offset: f64,
    /// The level over time (v1.4; only with segments, as stored recordings are analysed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

/// The level over time: the mean power of each `step_s` from the start, in whole dBFS (on the
/// scale of `active_speech_dbfs`, digital silence at -120), at most [`Envelope::MAX_POINTS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub step_s: f64,
    pub dbfs: Vec<i16>,
}

impl Envelope {
    /// Enough points to draw a call across a laptop screen, few enough to keep in the store
    /// for every recording (two bytes each before serialisation).
    pub const MAX_POINTS: usize = 240;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub floor_dbfs: Option<f64>,
    pub snr_db: Option<f64>,
    /// The SNR in the telephone band (300-3400 Hz) a listener hears through a handset.
    #[serde(default)]
    pub phone_snr_db: Option<f64>,
    /// The SNR inside speech (v1.5): the loud speech frames' power over their spectral floor,
    /// which noise that lives only inside speech fills (see `docs/analysis-report.md`).
    #[serde(default)]
    pub speech_snr_db: Option<f64>,
    pub hum_hz: Option<u32>,
    /// The active speech level over the hum's, in dB.
    #[serde(default)]
    pub hum_snr_db: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clarity {
    pub bandwidth_hz: Option<f64>,
    pub muffled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clipping {
    pub ratio: f64,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropouts {
    pub count: u64,
    pub ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    pub index: usize,
    pub role: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Legs that fell dead while another talked on (`leg_lost`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_legs: Vec<LostLeg>,
    /// One leg's voice coming back in another (an echo path: a phone or gateway without a good
    /// echo canceller).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub echoes: Vec<EchoReport>,
    pub talk_ratio: std::collections::BTreeMap<String, f64>,
    pub overtalk_s: f64,
    pub overtalk_count: u32,
    pub interruptions: std::collections::BTreeMap<String, u32>,
    pub non_talk_s: f64,
    pub non_talk_ratio: f64,
}

/// A leg that fell dead mid-call: its role and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostLeg {
    pub role: String,
    pub at_s: f64,
}

/// One leg's voice in another: whose (`source`), in which (`channel`), how late and how far down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoReport {
    pub source: String,
    pub channel: String,
    pub delay_ms: f64,
    pub erl_db: f64,
}

/// What the audio itself shows for compliance: digits keyed into it, the recorder's beep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub dtmf: DtmfEvidence,
    /// Only when a beep is configured (`[consent.beep]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep: Option<BeepEvidence>,
    /// Only when announcements are configured (`[[consent.announcement]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<AnnouncementEvidence>,
}

/// Whether a recording announcement was played, where and on which channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnouncementEvidence {
    pub found: bool,
    /// Which announcement (`[[consent.announcement]]`'s name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it starts (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_s: Option<f64>,
    /// Multi-channel recordings: the role of the channel it was heard on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// 0..1: how far the fingerprints agree beyond chance (1 - 2 x the bit error rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// DTMF keyed into the call: how many digits and when, never which (keeping the digits would
/// put card data in the store).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DtmfEvidence {
    pub digits: u32,
    /// Digits in the longest burst.
    pub longest_burst: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bursts: Vec<DtmfBurst>,
}

/// Digits keyed close together (`pci.burst_gap_s`), on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfBurst {
    pub start_s: f64,
    pub end_s: f64,
    pub digits: u32,
    /// Multi-channel recordings: the role of the channel it was keyed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When each digit's tone sounded.
    pub tones: Vec<[f64; 2]>,
}

/// The recorder's periodic beep: whether it ran through the call, and where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeepEvidence {
    pub frequency_hz: f64,
    pub period_s: f64,
    /// Beeps heard in step with the period.
    pub count: u32,
    pub first_s: Option<f64>,
    pub last_s: Option<f64>,
    /// Every beep the period called for was heard, from the start of the call to its end.
    pub ran_through: bool,
    /// Where the beep stopped: the end of the last beep heard before one due was missing
    /// (`0` when none was heard though one was due).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at_s: Option<f64>,
}

/// How decoding went (an addition to the contract).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecodeReport {
    pub header_mismatch: bool,
    pub truncated: bool,
    pub skipped_packets: u64,
    /// Longer than `analysis.max_duration_s`: analysed up to it (an addition to the contract).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub too_long: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analyzer {
    pub version: String,
    pub config_hash: String,
    pub elapsed_ms: u64,
}

/// The line printed for a file that could not be analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub schema: String,
    pub file: String,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}
