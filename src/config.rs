//! The configuration: its types, its defaults, and loading it from TOML.
//!
//! The commented default file `config/callwarden.toml` is embedded in the binary; a test keeps it
//! identical to [`Config::default`]. A configuration is validated once, at load: unknown keys are
//! rejected with their name and line, values out of range with their key. The rest of the code gets
//! a `Config` by reference and never reads files or the environment for settings.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::record::ConsentLaw;

/// The default configuration file, as shipped in `config/`.
pub const DEFAULT_TOML: &str = include_str!("../config/callwarden.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parse config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config {path}: `{key}` {problem}")]
    Invalid {
        path: String,
        key: &'static str,
        problem: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub analysis: AnalysisConfig,
    pub score: ScoreConfig,
    pub thresholds: Thresholds,
    pub ingest: IngestConfig,
    pub store: StoreConfig,
    pub consent: ConsentConfig,
    pub retention: RetentionConfig,
    pub control: ControlConfig,
    pub metrics: MetricsConfig,
    pub alerts: AlertsConfig,
    pub calls: CallsConfig,
    pub pci: PciConfig,
    pub export: ExportConfig,
    pub web: WebConfig,
}

/// The web console, served by the daemon: off until `listen` is set (docs/web.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address and port to serve on (`127.0.0.1:8480`); empty: no console.
    pub listen: String,
    /// How long a login lasts (minutes).
    pub session_minutes: u32,
    /// Session cookies are sent over HTTPS only (`Secure`): keep it on behind a TLS proxy;
    /// browsers also keep such cookies for http://localhost and http://127.0.0.1.
    pub secure_cookies: bool,
    /// The time zone pages show times in (an IANA name such as `Europe/Paris`).
    pub time_zone: String,
    /// Serve HTTPS directly with this PEM certificate chain (leaf first); empty: plain HTTP,
    /// for loopback or behind a TLS proxy.
    pub tls_cert: String,
    /// The certificate's PEM private key (readable by the daemon only).
    pub tls_key: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: String::new(),
            session_minutes: 480,
            secure_cookies: true,
            time_zone: "UTC".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// Sending this site's metadata, KPIs and audit heads to a central PostgreSQL (the fleet):
/// on when `[export.postgres]` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// How often the audit chain's head is anchored in the central database (seconds).
    pub head_interval_s: f64,
    /// Events kept at most while the central database cannot be reached; past it, changes are
    /// no longer queued one by one, and the site is sent again whole once it is back.
    pub max_backlog: u64,
    /// Hash caller and callee numbers (source, destination, caller id) with `redact_key`
    /// before they leave the site.
    pub redact: bool,
    /// The key of that hash (at least 16 characters; keep it secret, and the same at every
    /// site whose numbers should be comparable).
    pub redact_key: String,
    pub postgres: Option<ExportPostgres>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            head_interval_s: 300.0,
            max_backlog: 1_000_000,
            redact: false,
            redact_key: String::new(),
            postgres: None,
        }
    }
}

/// The central database and this site's name in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPostgres {
    /// A libpq-style URL or key=value string (`postgresql://callwarden@db/fleet`).
    pub url: String,
    pub site: crate::fleet::SiteName,
    /// Events (and audit entries) sent per transaction.
    #[serde(default = "default_export_batch")]
    pub batch: usize,
    /// The authority (PEM) that signed the database's TLS certificate; without it, the public
    /// web roots. TLS itself is the URL's `sslmode` (`require` is advised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_export_batch() -> usize {
    500
}

/// The PBX's call records (CDRs) and how recordings are matched and judged against them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// The time zone of the CDRs' wall-clock times: an IANA name, "UTC", or "local".
    pub timezone: String,
    /// How long after a call ends its recording may still come before it is missing.
    pub grace_s: f64,
    /// A recording covering less than this share of the call's billable time is short.
    pub short_ratio: f64,
    /// A recording with no call id matches a call by time within this many seconds.
    pub match_tolerance_s: f64,
    /// The sidecar tag that marks a recording made on demand (not by the automatic rule).
    pub on_demand_tag: String,
    /// A CDR line longer than this is skipped and reported.
    pub max_line_bytes: u64,
    /// Which calls must be recorded: any rule that matches; none given: every answered call
    /// with at least one billable second.
    pub record: Vec<RecordRule>,
    /// A call's direction by its first leg's dialplan context, where its CDR has none
    /// (Asterisk's never does): `from-trunk = "inbound"`.
    pub direction_by_context: std::collections::BTreeMap<String, crate::metadata::Direction>,
    /// CDR files the daemon follows like a log.
    pub source: Vec<CdrSource>,
    /// How often the daemon reads what the sources gained.
    pub poll_s: f64,
    /// For a PostgreSQL source: how far before the last row read each poll reads again (a
    /// row is written when its call ends and dated when it started: the longest call).
    pub pg_lookback_s: f64,
    /// Call records are dropped this many days after their call ended, by the purge run
    /// (audited); 0 keeps them forever.
    pub retention_days: u32,
}

/// A CDR file, or Asterisk's CDR table in PostgreSQL, that the daemon follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrSource {
    /// The file (absolute): Asterisk's /var/log/asterisk/cdr-csv/Master.csv, say.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub path: std::path::PathBuf,
    pub format: CdrFormat,
    /// The columns, for `format = "custom"` (as `calls import --columns`).
    #[serde(default)]
    pub columns: Vec<crate::cdr::Column>,
    /// For `asterisk_pgsql`: the connection (`postgresql://user:password@host:port/db` or
    /// `host=... dbname=...`).
    #[serde(default)]
    pub url: String,
    /// For `asterisk_pgsql`: the table (default `cdr`; `schema.table` allowed).
    #[serde(default = "default_cdr_table")]
    pub table: String,
}

fn path_is_empty(p: &std::path::Path) -> bool {
    p.as_os_str().is_empty()
}

fn default_cdr_table() -> String {
    "cdr".into()
}

/// The layout of a followed CDR file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdrFormat {
    AsteriskCsv,
    Custom,
    FreeswitchCsv,
    /// A folder of FreeSWITCH mod_json_cdr files (one call each).
    FreeswitchJson,
    /// Asterisk's cdr_pgsql / cdr_odbc table in PostgreSQL.
    AsteriskPgsql,
}

impl CdrSource {
    pub fn template(&self) -> crate::cdr::Template {
        match self.format {
            CdrFormat::AsteriskCsv | CdrFormat::AsteriskPgsql => {
                crate::cdr::Template::asterisk_csv()
            }
            CdrFormat::FreeswitchCsv | CdrFormat::FreeswitchJson => {
                crate::cdr::Template::freeswitch_csv()
            }
            CdrFormat::Custom => crate::cdr::Template(self.columns.clone()),
        }
    }
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            timezone: "UTC".into(),
            grace_s: 600.0,
            short_ratio: 0.9,
            match_tolerance_s: 5.0,
            on_demand_tag: "on_demand".into(),
            max_line_bytes: 65_536,
            record: Vec::new(),
            direction_by_context: Default::default(),
            source: Vec::new(),
            poll_s: 5.0,
            pg_lookback_s: 14_400.0,
            retention_days: 0,
        }
    }
}

/// Calls that must be recorded: every key given must match (a list matches any of its values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordRule {
    /// Dialplan contexts (Asterisk `dcontext`, FreeSWITCH `context`) of any leg.
    pub context: Vec<String>,
    /// Queues any leg went through (see [`crate::cdr::CallRecord::queue`]).
    pub queue: Vec<String>,
    /// The call's direction (see [`CallsConfig::direction`]); a call whose direction is not
    /// known matches no rule that names directions.
    pub direction: Vec<crate::metadata::Direction>,
    /// How the call ended (default: answered).
    pub disposition: Vec<crate::cdr::Disposition>,
    /// At least this many billable seconds.
    pub min_billsec: u32,
}

impl Default for RecordRule {
    fn default() -> Self {
        RecordRule {
            context: Vec::new(),
            queue: Vec::new(),
            direction: Vec::new(),
            disposition: vec![crate::cdr::Disposition::Answered],
            min_billsec: 1,
        }
    }
}

impl RecordRule {
    fn matches(
        &self,
        legs: &[crate::cdr::CallRecord],
        billable_s: f64,
        direction: Option<crate::metadata::Direction>,
    ) -> bool {
        let answered = legs
            .iter()
            .any(|l| l.disposition == crate::cdr::Disposition::Answered);
        let disposition = if answered {
            crate::cdr::Disposition::Answered
        } else {
            legs.first()
                .map_or(crate::cdr::Disposition::NoAnswer, |l| l.disposition)
        };
        let queue =
            |l: &crate::cdr::CallRecord| l.queue.as_ref().is_some_and(|q| self.queue.contains(q));
        (self.context.is_empty() || legs.iter().any(|l| self.context.contains(&l.context)))
            && (self.queue.is_empty() || legs.iter().any(queue))
            && (self.direction.is_empty() || direction.is_some_and(|d| self.direction.contains(&d)))
            && (self.disposition.is_empty() || self.disposition.contains(&disposition))
            && billable_s >= f64::from(self.min_billsec)
    }
}

impl CallsConfig {
    /// Whether a call (its legs, its billable seconds) must be recorded.
    /// `direction` is the call's ([`CallsConfig::direction`]).
    pub fn must_record(
        &self,
        legs: &[crate::cdr::CallRecord],
        billable_s: f64,
        direction: Option<crate::metadata::Direction>,
    ) -> bool {
        if self.record.is_empty() {
            RecordRule::default().matches(legs, billable_s, direction)
        } else {
            self.record
                .iter()
                .any(|r| r.matches(legs, billable_s, direction))
        }
    }

    /// A call's direction: the first leg's that the PBX wrote, else the first leg's context
    /// looked up in `direction_by_context`. Legs come ordered by start.
    pub fn direction(&self, legs: &[crate::cdr::CallRecord]) -> Option<crate::metadata::Direction> {
        legs.iter().find_map(|l| l.direction).or_else(|| {
            legs.iter()
                .find_map(|l| self.direction_by_context.get(&l.context).copied())
        })
    }
}

/// Which consent law applies to a call (by queue, direction or tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// The law when no rule matches.
    pub default: ConsentLaw,
    /// Whether, when no rule matches, the law also needs notice (an announcement in the audio).
    pub notice: bool,
    /// The first rule that matches a call decides its law.
    pub rule: Vec<ConsentRule>,
    /// The recorder's periodic beep, looked for in every recording.
    pub beep: Option<BeepConfig>,
    /// The recording announcements (the PBX's own prompts), looked for at the start of every
    /// recording.
    pub announcement: Vec<AnnouncementConfig>,
}

/// A recording announcement: the prompt the PBX plays ("this call may be recorded").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementConfig {
    /// How reports name it.
    pub name: String,
    /// The prompt's audio file (WAV, FLAC, MP3 or Ogg), as the PBX plays it.
    pub file: std::path::PathBuf,
    /// It must start within this many seconds of the start of the recording.
    #[serde(default = "default_within_s")]
    pub within_s: f64,
}

fn default_within_s() -> f64 {
    30.0
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            default: ConsentLaw::OneParty,
            notice: false,
            rule: Vec::new(),
            beep: None,
            announcement: Vec::new(),
        }
    }
}

/// The periodic tone a recorder mixes into what it records (Asterisk MixMonitor's
/// `B(interval)`): its frequency and how often it sounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeepConfig {
    /// The beep's frequency (Hz); or `file`:
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_hz: Option<f64>,
    /// The beep's sound (WAV, FLAC, MP3 or Ogg, as the PBX plays it): its strongest frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
    /// Seconds from one beep to the next.
    pub period_s: f64,
    /// How far a beep may be from where the period puts it (seconds).
    #[serde(default = "default_beep_tolerance_s")]
    pub tolerance_s: f64,
}

fn default_beep_tolerance_s() -> f64 {
    1.0
}

/// Card data keyed as DTMF into recordings (PCI DSS): where it is watched for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PciConfig {
    /// Recordings in any of these queues, or with any of these tags, are watched; both empty:
    /// every recording.
    pub queue: Vec<String>,
    pub tag: Vec<String>,
    /// A burst of at least this many digits is card data (or a PIN) to a `pci` alert rule.
    pub min_digits: u32,
    /// Digits at most this far apart (seconds) are one burst.
    pub burst_gap_s: f64,
}

impl Default for PciConfig {
    fn default() -> Self {
        PciConfig {
            queue: Vec::new(),
            tag: Vec::new(),
            min_digits: 4,
            burst_gap_s: 2.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRule {
    #[serde(default)]
    pub queue: Vec<String>,
    #[serde(default)]
    pub direction: Vec<crate::metadata::Direction>,
    #[serde(default)]
    pub tag: Vec<String>,
    pub requires: ConsentLaw,
    /// The law also needs notice: a recording announcement found in the audio
    /// (`[[consent.announcement]]`) within its window.
    #[serde(default)]
    pub notice: bool,
}

/// How long recordings are kept, and how purges run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// The daemon plans and runs a purge this often (seconds).
    pub purge_interval_s: f64,
    /// Recordings whose consent was denied are purged this long after the denial (hours).
    pub denied_grace_h: f64,
    /// Disk pressure: below this share of free space on a root's filesystem, alert and purge
    /// early what the policy allows (0: never).
    pub min_free_ratio: f64,
    /// The rules; exactly one without any match key is the default.
    pub rule: Vec<RetentionRule>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            purge_interval_s: 3600.0,
            denied_grace_h: 24.0,
            min_free_ratio: 0.05,
            rule: vec![RetentionRule {
                name: "default".into(),
                keep: crate::record::Span::Forever,
                ..RetentionRule::default()
            }],
        }
    }
}

/// One retention rule: what it matches (every listed key must match; a list matches any of
/// its values) and what it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<crate::metadata::ConsentState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direction: Vec<crate::metadata::Direction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grade: Vec<crate::analysis::model::Grade>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<crate::record::RecordState>,
    /// How long after the call's start a recording is kept.
    pub keep: crate::record::Span,
    /// A lock: nothing deletes it before this, manual purges included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_keep: Option<crate::record::Span>,
    /// What expiry deletes.
    #[serde(default)]
    pub delete: crate::record::Scope,
    /// Under disk pressure, may recordings under this rule go before their time (never held or
    /// locked ones)?
    #[serde(default)]
    pub purge_early: bool,
}

impl RetentionRule {
    /// A rule without any match key: the default.
    pub fn is_default(&self) -> bool {
        self.consent.is_empty()
            && self.direction.is_empty()
            && self.queue.is_empty()
            && self.agent.is_empty()
            && self.tag.is_empty()
            && self.grade.is_empty()
            && self.state.is_empty()
    }
}

/// Which files are recordings, and when one is finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Directories the daemon watches (recursively; new subdirectories are watched as they come):
    /// absolute paths (normalised at load).
    pub roots: Vec<crate::recording_path::RecordingPath>,
    /// Recording file extensions, matched without regard to case.
    pub extensions: Vec<String>,
    /// A file found by a scan counts as finished once left alone this long (seconds).
    pub settle_s: f64,
    /// Files hashed and analysed at once; 0 means one per core.
    pub workers: usize,
    /// Fields taken from file names (see `metadata::FilenamePattern`); empty: none.
    pub filename_pattern: String,
    /// The daemon rescans its roots this often (seconds), for what events missed.
    pub rescan_interval_s: f64,
    /// On stop, how long the daemon waits for analyses in flight (seconds).
    pub drain_timeout_s: f64,
    /// A sidecar larger than this is refused, never read whole.
    pub max_sidecar_bytes: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            roots: Vec::new(),
            extensions: ["wav", "mp3", "flac", "ogg", "gsm"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            settle_s: 5.0,
            workers: 0,
            filename_pattern: String::new(),
            rescan_interval_s: 600.0,
            drain_timeout_s: 30.0,
            max_sidecar_bytes: 64 * 1024,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to serve `/metrics` and `/healthz` on (e.g. `127.0.0.1:9477`); empty: off.
    pub listen: String,
}

/// Alerts: the rules, the actions, and how often they may fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// One alert per rule and subject (a recording, a condition) per this many seconds.
    pub repeat_s: f64,
    /// At most this many alerts per rule per hour; the rest are counted and logged once.
    pub max_per_hour: u32,
    /// A recording stored without its sidecar has its alerts judged this long later (seconds),
    /// with the consent the sidecar brings if it has come by then (PBXs write the JSON after
    /// the audio).
    pub sidecar_wait_s: f64,
    /// A command run for every alert, the alert as JSON on its standard input (no shell:
    /// the first item is the program, the others its arguments, as written).
    pub command: Vec<String>,
    pub command_timeout_s: f64,
    /// Commands and webhooks in flight at once.
    pub concurrency: usize,
    /// An HTTP(S) URL the alert is POSTed to as JSON; empty: none.
    pub webhook: String,
    pub webhook_timeout_s: f64,
    /// Retries of a failed POST (with a doubling pause from half a second).
    pub webhook_retries: u32,
    pub rule: Vec<AlertRule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            repeat_s: 3600.0,
            max_per_hour: 60,
            sidecar_wait_s: 10.0,
            command: Vec::new(),
            command_timeout_s: 10.0,
            concurrency: 2,
            webhook: String::new(),
            webhook_timeout_s: 5.0,
            webhook_retries: 3,
            rule: Vec::new(),
        }
    }
}

/// One alert rule: recording criteria (any that matches raises it) or one system condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRule {
    pub name: String,
    /// `warn` or `error`, carried in the alert.
    pub severity: String,
    pub score_below: Option<u32>,
    pub flags: Vec<String>,
    pub consent: Vec<ConsentAlert>,
    pub system: Option<SystemCondition>,
    /// For `ingest_failure_rate`: the share of failed recordings over an hour that alerts.
    pub failure_rate_above: f64,
    /// Calls (from the call records): each one missing its recording, or recorded short.
    pub calls: Vec<CallAlert>,
    /// The share of the last 24 hours' calls to record that were recorded, below which the
    /// rule alerts.
    pub coverage_below: Option<f64>,
    /// Card data: a recording in `[pci]`'s queues or tags holding a burst of at least
    /// `pci.min_digits` DTMF digits.
    pub pci: bool,
}

/// What a call rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAlert {
    /// A call that must be recorded has no recording `calls.grace_s` after it ended.
    MissingRecording,
    /// A call's recordings cover less than `calls.short_ratio` of its billable time.
    RecordingShort,
}

impl Default for AlertRule {
    fn default() -> Self {
        AlertRule {
            name: String::new(),
            severity: "warn".into(),
            score_below: None,
            flags: Vec::new(),
            consent: Vec::new(),
            system: None,
            failure_rate_above: 0.1,
            calls: Vec::new(),
            coverage_below: None,
            pci: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAlert {
    /// Consent was denied.
    Denied,
    /// No granted or not-required consent where all-party consent is the law.
    Missing,
    /// The law needs notice and the audio holds no recording announcement.
    NoAnnouncement,
    /// The sidecar says consent came from an announcement, and the audio holds none.
    AnnouncementDisputed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemCondition {
    IngestFailureRate,
    /// A root's free space below `retention.min_free_ratio`.
    DiskLow,
    /// No successful purge for two purge intervals.
    PurgeOverdue,
    /// The daily audit chain check found a break.
    AuditVerifyFailed,
    /// The export outbox holds more than 80 % of `export.max_backlog`, or overflowed.
    ExportBacklog,
    /// The exporter refuses to send: the store and the central database disagree.
    ExportRefused,
}

/// The daemon's control socket, and who may use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// The Unix socket the daemon answers on (and the CLI asks); empty: no socket.
    pub socket: std::path::PathBuf,
    /// Group the socket is given (empty: the daemon's own); with `socket_mode`, who may connect.
    pub socket_group: String,
    /// The socket's permissions, in octal.
    pub socket_mode: String,
    /// Members of these Unix groups read everything (lists, KPIs, reports) and manage holds.
    pub auditor_groups: Vec<String>,
    /// Members of these groups may also change consent.
    pub admin_groups: Vec<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: "/run/callwarden/control.sock".into(),
            socket_group: String::new(),
            socket_mode: "0660".into(),
            auditor_groups: vec!["callwarden".into()],
            admin_groups: vec!["callwarden-admin".into(), "root".into()],
        }
    }
}

impl ControlConfig {
    /// The socket mode as bits (validated at load).
    pub fn mode(&self) -> u32 {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8).unwrap_or(0o660)
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: std::path::PathBuf,
    /// Where the audit chain's head is anchored outside the store; empty: `<path>.head`.
    pub anchor: std::path::PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: "/var/lib/callwarden/store".into(),
            anchor: std::path::PathBuf::new(),
        }
    }
}

impl StoreConfig {
    /// The anchor of the store in `dir`: the configured one for the configured store, else
    /// `<dir>.head`.
    pub fn anchor_for(&self, dir: &std::path::Path) -> std::path::PathBuf {
        if dir == self.path && !self.anchor.as_os_str().is_empty() {
            self.anchor.clone()
        } else {
            // Beside the store's directory, outside it: copying the directory back does not
            // bring an old anchor along.
            let mut name = dir.file_name().unwrap_or_default().to_os_string();
            name.push(".head");
            dir.with_file_name(name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    pub channel_roles: Vec<String>,
    pub dead_air_s: f64,
    pub non_talk_min_s: f64,
    pub overtalk_min_s: f64,
    /// A leg that falls dead while another still talks this long after is `leg_lost`.
    pub leg_lost_min_s: f64,
    pub min_duration_s: f64,
    /// Recordings are analysed up to this long (the rest is hashed, not analysed): what the
    /// analysis holds grows with the duration.
    pub max_duration_s: f64,
    /// The codec every call crossed before it was recorded (a G.729 trunk): the score takes its
    /// ITU-T G.113 impairment off (`analysis::carried`). A sidecar's `codec` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<crate::analysis::carried::Codec>,
    pub vad: VadConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            channel_roles: vec!["agent".into(), "customer".into()],
            dead_air_s: 5.0,
            non_talk_min_s: 3.0,
            overtalk_min_s: 0.3,
            leg_lost_min_s: 10.0,
            min_duration_s: 2.0,
            max_duration_s: 43_200.0,
            codec: None,
            vad: VadConfig::default(),
        }
    }
}

/// WebRTC VAD aggressiveness, from least to most likely to call a frame non-speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VadMode {
    Quality,
    LowBitrate,
    Aggressive,
    VeryAggressive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadConfig {
    pub mode: VadMode,
    pub min_silence_ms: u32,
    pub min_speech_ms: u32,
    pub energy_margin_db: f64,
    pub edge_margin_db: f64,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            mode: VadMode::Aggressive,
            min_silence_ms: 300,
            min_speech_ms: 80,
            energy_margin_db: 1.5,
            edge_margin_db: 0.5,
        }
    }
}

/// Grade bands on the 0..100 score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    pub good: f64,
    pub fair: f64,
    pub poor: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            good: 80.0,
            fair: 65.0,
            poor: 50.0,
        }
    }
}

/// The thresholds behind the quality flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub low_snr_db: f64,
    pub high_noise_floor_dbfs: f64,
    pub too_quiet_dbfs: f64,
    pub too_loud_dbfs: f64,
    pub clipping_ratio: f64,
    pub dropout_ratio: f64,
    pub muffled_below_hz: f64,
    pub leading_silence_s: f64,
    pub one_sided_ratio: f64,
    pub hum_margin_db: f64,
    /// Multi-channel: a leg's voice coming back in another less than this far down is `echo`.
    pub echo_erl_db: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            low_snr_db: 15.0,
            high_noise_floor_dbfs: -45.0,
            too_quiet_dbfs: -35.0,
            too_loud_dbfs: -10.0,
            clipping_ratio: 0.0005,
            dropout_ratio: 0.005,
            muffled_below_hz: 1800.0,
            leading_silence_s: 10.0,
            one_sided_ratio: 0.02,
            hum_margin_db: 10.0,
            echo_erl_db: 30.0,
        }
    }
}

impl Config {
    /// Loads and validates a configuration file; keys it leaves out keep their defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: &str| ConfigError::Invalid {
            path: origin.to_string(),
            key,
            problem: problem.to_string(),
        };
        if !self.web.listen.is_empty() && self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "web.listen",
                "must be an address and port, such as 127.0.0.1:8480 (or empty: no console)",
            ));
        }
        if crate::clock::Zone::named(&self.web.time_zone).is_err() {
            return Err(bad(
                "web.time_zone",
                "must be an IANA time zone name, such as UTC or Europe/Paris",
            ));
        }
        if self.web.tls_cert.is_empty() != self.web.tls_key.is_empty() {
            return Err(bad(
                "web.tls_cert",
                "give both tls_cert and tls_key, or neither (plain HTTP)",
            ));
        }
        if self.web.session_minutes == 0 {
            return Err(bad("web.session_minutes", "must be at least 1"));
        }
        if let Some(beep) = &self.consent.beep {
            match (beep.frequency_hz, &beep.file) {
                // The filters read tones up to 3.4 kHz (the telephone band) at any rate.
                (Some(hz), None) if !(100.0..=3400.0).contains(&hz) => {
                    return Err(bad("consent.beep.frequency_hz", "must be 100 to 3400 Hz"));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(bad(
                        "consent.beep",
                        "needs either frequency_hz or file (the beep's sound), not both",
                    ))
                }
            }
            if !(beep.period_s.is_finite() && beep.period_s >= 1.0) {
                return Err(bad("consent.beep.period_s", "must be 1 second or more"));
            }
            if !(beep.tolerance_s.is_finite()
                && beep.tolerance_s > 0.0
                && beep.tolerance_s < beep.period_s / 2.0)
            {
                return Err(bad(
                    "consent.beep.tolerance_s",
                    "must be above 0 and under half the period",
                ));
            }
        }
        for (i, a) in self.consent.announcement.iter().enumerate() {
            if a.name.trim().is_empty() || a.file.as_os_str().is_empty() {
                return Err(bad("consent.announcement", "each needs a name and a file"));
            }
            if self.consent.announcement[..i]
                .iter()
                .any(|b| b.name == a.name)
            {
                return Err(bad("consent.announcement", "names must differ"));
            }
            if !(a.within_s.is_finite() && a.within_s > 0.0 && a.within_s <= 3600.0) {
                return Err(bad(
                    "consent.announcement.within_s",
                    "must be above 0 and at most 3600 seconds",
                ));
            }
        }
        let x = &self.export;
        if !(x.head_interval_s.is_finite() && x.head_interval_s >= 1.0) {
            return Err(bad("export.head_interval_s", "must be 1 second or more"));
        }
        if x.max_backlog == 0 {
            return Err(bad("export.max_backlog", "must be 1 or more"));
        }
        if x.redact && x.redact_key.chars().count() < 16 {
            return Err(bad(
                "export.redact_key",
                "export.redact needs a key of at least 16 characters",
            ));
        }
        if let Some(pg) = &x.postgres {
            if pg.url.trim().is_empty() {
                return Err(bad("export.postgres.url", "must name the central database"));
            }
            if !(1..=10_000).contains(&pg.batch) {
                return Err(bad("export.postgres.batch", "must be 1 to 10000"));
            }
        }
        if self.pci.min_digits == 0 {
            return Err(bad("pci.min_digits", "must be 1 or more"));
        }
        if !(self.pci.burst_gap_s.is_finite() && self.pci.burst_gap_s > 0.0) {
            return Err(bad("pci.burst_gap_s", "must be above 0 seconds"));
        }
        let c = &self.calls;
        if let Err(e) = crate::cdr::Zone::get(&c.timezone) {
            return Err(bad("calls.timezone", &e));
        }
        if !(c.grace_s.is_finite() && c.grace_s >= 0.0) {
            return Err(bad("calls.grace_s", "must be 0 or more seconds"));
        }
        if !(c.short_ratio > 0.0 && c.short_ratio <= 1.0) {
            return Err(bad("calls.short_ratio", "must be above 0 and at most 1"));
        }
        if !(c.match_tolerance_s.is_finite() && c.match_tolerance_s >= 0.0) {
            return Err(bad("calls.match_tolerance_s", "must be 0 or more seconds"));
        }
        if c.max_line_bytes < 1024 {
            return Err(bad("calls.max_line_bytes", "must be at least 1024"));
        }
        if !(c.poll_s.is_finite() && c.poll_s >= 0.1) {
            return Err(bad("calls.poll_s", "must be 0.1 seconds or more"));
        }
        if !(c.pg_lookback_s.is_finite() && c.pg_lookback_s >= 0.0) {
            return Err(bad("calls.pg_lookback_s", "must be 0 or more seconds"));
        }
        for src in &c.source {
            if src.format == CdrFormat::AsteriskPgsql {
                if src.url.is_empty() || !src.path.as_os_str().is_empty() {
                    return Err(bad(
                        "calls.source",
                        "format = \"asterisk_pgsql\" takes a url (and a table), not a path",
                    ));
                }
                if !crate::cdr_pgsql::valid_table(&src.table) {
                    return Err(bad(
                        "calls.source",
                        &format!("table {:?} is not a plain [schema.]table name", src.table),
                    ));
                }
                continue;
            }
            if !src.url.is_empty() {
                return Err(bad(
                    "calls.source",
                    "url is for format = \"asterisk_pgsql\" only",
                ));
            }
            if !src.path.is_absolute() {
                return Err(bad(
                    "calls.source",
                    &format!("path {} is not absolute", src.path.display()),
                ));
            }
            if (src.format == CdrFormat::Custom) == src.columns.is_empty() {
                return Err(bad(
                    "calls.source",
                    &format!(
                        "{}: columns are given with format = \"custom\", and only then",
                        src.path.display()
                    ),
                ));
            }
        }
        if let Some(root) = self.ingest.roots.iter().find(|r| !r.is_absolute()) {
            return Err(bad(
                "ingest.roots",
                &format!("{root} is not an absolute path"),
            ));
        }
        let a = &self.analysis;
        let positive = [
            ("analysis.dead_air_s", a.dead_air_s),
            ("analysis.non_talk_min_s", a.non_talk_min_s),
            ("analysis.overtalk_min_s", a.overtalk_min_s),
            ("analysis.leg_lost_min_s", a.leg_lost_min_s),
        ];
        for (key, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad(key, "must be a positive number of seconds"));
            }
        }
        if !(a.min_duration_s.is_finite() && a.min_duration_s >= 0.0) {
            return Err(bad("analysis.min_duration_s", "must be 0 or more seconds"));
        }
        if !(a.max_duration_s.is_finite() && a.max_duration_s >= 1.0) {
            return Err(bad("analysis.max_duration_s", "must be 1 second or more"));
        }
        if a.channel_roles.iter().any(|r| r.trim().is_empty()) {
            return Err(bad(
                "analysis.channel_roles",
                "must not contain empty names",
            ));
        }
        if !(10..=5000).contains(&a.vad.min_silence_ms) {
            return Err(bad("analysis.vad.min_silence_ms", "must be 10 to 5000"));
        }
        if a.vad.min_speech_ms > 2000 {
            return Err(bad("analysis.vad.min_speech_ms", "must be 0 to 2000"));
        }
        for (key, value) in [
            ("analysis.vad.energy_margin_db", a.vad.energy_margin_db),
            ("analysis.vad.edge_margin_db", a.vad.edge_margin_db),
        ] {
            if !(value.is_finite() && (0.0..=40.0).contains(&value)) {
                return Err(bad(key, "must be 0 to 40 dB"));
            }
        }
        let s = &self.score;
        if !(s.good <= 100.0 && s.good >= s.fair && s.fair >= s.poor && s.poor >= 0.0) {
            return Err(bad(
                "score",
                "bands must satisfy 100 >= good >= fair >= poor >= 0",
            ));
        }
        let t = &self.thresholds;
        for (key, value) in [
            ("thresholds.clipping_ratio", t.clipping_ratio),
            ("thresholds.dropout_ratio", t.dropout_ratio),
            ("thresholds.one_sided_ratio", t.one_sided_ratio),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(bad(key, "must be a ratio from 0 to 1"));
            }
        }
        for (key, value) in [
            ("thresholds.low_snr_db", t.low_snr_db),
            ("thresholds.high_noise_floor_dbfs", t.high_noise_floor_dbfs),
            ("thresholds.too_quiet_dbfs", t.too_quiet_dbfs),
            ("thresholds.too_loud_dbfs", t.too_loud_dbfs),
            ("thresholds.muffled_below_hz", t.muffled_below_hz),
            ("thresholds.leading_silence_s", t.leading_silence_s),
            ("thresholds.hum_margin_db", t.hum_margin_db),
            ("thresholds.echo_erl_db", t.echo_erl_db),
        ] {
            if !value.is_finite() {
                return Err(bad(key, "must be a finite number"));
            }
        }
        let al = &self.alerts;
        if !(al.repeat_s.is_finite() && al.repeat_s >= 0.0) {
            return Err(bad("alerts.repeat_s", "must be 0 or more seconds"));
        }
        if !(al.sidecar_wait_s.is_finite() && (0.0..=3600.0).contains(&al.sidecar_wait_s)) {
            return Err(bad("alerts.sidecar_wait_s", "must be 0 to 3600 seconds"));
        }
        if al.max_per_hour == 0 {
            return Err(bad("alerts.max_per_hour", "must be at least 1"));
        }
        if !(1..=32).contains(&al.concurrency) {
            return Err(bad("alerts.concurrency", "must be 1 to 32"));
        }
        for (key, v) in [
            ("alerts.command_timeout_s", al.command_timeout_s),
            ("alerts.webhook_timeout_s", al.webhook_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(key, "must be a positive number of seconds"));
            }
        }
        if al.command.first().is_some_and(|c| c.trim().is_empty()) {
            return Err(bad(
                "alerts.command",
                "the program (first item) must not be empty",
            ));
        }
        if !(al.webhook.is_empty()
            || al.webhook.starts_with("http://")
            || al.webhook.starts_with("https://"))
        {
            return Err(bad("alerts.webhook", "must be an http:// or https:// URL"));
        }
        let mut names = std::collections::HashSet::new();
        for r in &al.rule {
            if r.name.trim().is_empty() || !names.insert(r.name.as_str()) {
                return Err(bad("alerts.rule", "every rule needs a name of its own"));
            }
            let watches_recordings =
                r.score_below.is_some() || !r.flags.is_empty() || !r.consent.is_empty();
            let watches_calls = !r.calls.is_empty() || r.coverage_below.is_some();
            let watches = [watches_recordings, r.system.is_some(), watches_calls];
            if watches.iter().filter(|w| **w).count() != 1 {
                return Err(bad(
                    "alerts.rule",
                    "a rule watches recordings (score_below, flags, consent), one system \
                     condition, or calls (calls, coverage_below): one of them",
                ));
            }
            if r.coverage_below
                .is_some_and(|c| !(c.is_finite() && (0.0..=1.0).contains(&c)))
            {
                return Err(bad(
                    "alerts.rule",
                    "coverage_below must be a ratio from 0 to 1",
                ));
            }
            if !matches!(r.severity.as_str(), "warn" | "error") {
                return Err(bad("alerts.rule", "severity must be \"warn\" or \"error\""));
            }
            if !(r.failure_rate_above.is_finite() && (0.0..=1.0).contains(&r.failure_rate_above)) {
                return Err(bad(
                    "alerts.rule",
                    "failure_rate_above must be a ratio from 0 to 1",
                ));
            }
        }
        if !self.metrics.listen.is_empty()
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(bad(
                "metrics.listen",
                "must be an address and port like \"127.0.0.1:9477\"",
            ));
        }
        let c = &self.control;
        match u32::from_str_radix(c.socket_mode.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => {}
            _ => {
                return Err(bad(
                    "control.socket_mode",
                    "must be octal permissions (like \"0660\") that let the daemon read and write",
                ))
            }
        }
        if c.auditor_groups
            .iter()
            .chain(&c.admin_groups)
            .any(|g| g.trim().is_empty())
        {
            return Err(bad(
                "control.auditor_groups",
                "group names must not be empty",
            ));
        }
        let i = &self.ingest;
        if i.extensions.is_empty() || i.extensions.iter().any(|e| e.is_empty() || e.contains('.')) {
            return Err(bad(
                "ingest.extensions",
                "must list extensions without dots, like \"wav\"",
            ));
        }
        if !i.filename_pattern.is_empty() {
            if let Err(e) = crate::metadata::FilenamePattern::parse(&i.filename_pattern) {
                return Err(bad("ingest.filename_pattern", &e));
            }
        }
        if !(i.settle_s.is_finite() && i.settle_s >= 0.0) {
            return Err(bad("ingest.settle_s", "must be 0 or more seconds"));
        }
        for (key, value) in [
            ("ingest.rescan_interval_s", i.rescan_interval_s),
            ("ingest.drain_timeout_s", i.drain_timeout_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad(key, "must be a positive number of seconds"));
            }
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(bad("store.path", "must not be empty"));
        }
        let r = &self.retention;
        if !(r.purge_interval_s.is_finite() && r.purge_interval_s >= 1.0) {
            return Err(bad(
                "retention.purge_interval_s",
                "must be at least 1 second",
            ));
        }
        if !(r.denied_grace_h.is_finite() && r.denied_grace_h >= 0.0) {
            return Err(bad("retention.denied_grace_h", "must be 0 or more hours"));
        }
        if !(r.min_free_ratio.is_finite() && (0.0..1.0).contains(&r.min_free_ratio)) {
            return Err(bad(
                "retention.min_free_ratio",
                "must be a ratio from 0 to below 1",
            ));
        }
        match r.rule.iter().filter(|rule| rule.is_default()).count() {
            0 => return Err(bad(
                "retention.rule",
                "needs a default rule (one without match keys), so every recording has a retention",
            )),
            1 => {}
            _ => {
                return Err(bad(
                    "retention.rule",
                    "has more than one default rule (rules without match keys)",
                ))
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for rule in &r.rule {
            if rule.name.trim().is_empty() {
                return Err(bad("retention.rule.name", "must not be empty"));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(bad(
                    "retention.rule.name",
                    &format!("{:?} is used twice", rule.name),
                ));
            }
            if rule.state.contains(&crate::record::RecordState::Purged) {
                return Err(bad(
                    "retention.rule.state",
                    &format!(
                        "rule {:?}: \"purged\" recordings have nothing left to keep",
                        rule.name
                    ),
                ));
            }
        }
        if t.too_quiet_dbfs >= t.too_loud_dbfs {
            return Err(bad(
                "thresholds.too_quiet_dbfs",
                "must be below thresholds.too_loud_dbfs",
            ));
        }
        Ok(())
    }

    /// A short stable digest of the effective configuration, stored with every analysis so a
    /// result can be traced to the settings that made it.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let hash = Sha256::digest(&canonical);
        hex::encode(&hash[..8])
    }

    /// A digest of what matching calls with recordings depends on (the `[calls]` section and
    /// the default consent law): a coverage digest kept under another is not used.
    pub fn calls_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical =
            serde_json::to_vec(&(&self.calls, self.consent.default)).unwrap_or_default();
        hex::encode(&Sha256::digest(&canonical)[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_file_is_the_default() {
        let parsed = Config::parse(DEFAULT_TOML, "default").expect("default config parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[analysis]\ndead_air_s = 4.0\ndead_aire_s = 5.0\n";
        let err = Config::parse(text, "test.toml").unwrap_err().to_string();
        assert!(err.contains("dead_aire_s"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let check = |text: &str, key: &str| {
            let err = Config::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        };
        check("[analysis]\ndead_air_s = -1.0\n", "analysis.dead_air_s");
        check("[score]\ngood = 50.0\nfair = 60.0\n", "score");
        check(
            "[thresholds]\nclipping_ratio = 2.0\n",
            "thresholds.clipping_ratio",
        );
        check("[analysis.vad]\nmode = \"loud\"\n", "mode");
        check(
            "[[retention.rule]]\nname = \"short\"\nstate = [\"failed\"]\nkeep = \"30d\"\n",
            "needs a default rule",
        );
        check(
            "[[retention.rule]]\nname = \"default\"\nkeep = \"90 days\"\n",
            "not a period",
        );
        check(
            "[[retention.rule]]\nname = \"a\"\nkeep = \"1y\"\n[[retention.rule]]\nname = \"b\"\nkeep = \"2y\"\n",
            "more than one default",
        );
        check(
            "[thresholds]\ntoo_quiet_dbfs = -5.0\n",
            "thresholds.too_quiet_dbfs",
        );
        check("[consent.beep]\nperiod_s = 15.0\n", "consent.beep");
        check(
            "[consent.beep]\nfrequency_hz = 1000.0\nfile = \"b.wav\"\nperiod_s = 15.0\n",
            "not both",
        );
        check(
            "[consent.beep]\nfrequency_hz = 5000.0\nperiod_s = 15.0\n",
            "consent.beep.frequency_hz",
        );
        check(
            "[consent.beep]\nfrequency_hz = 1000.0\nperiod_s = 15.0\ntolerance_s = 8.0\n",
            "consent.beep.tolerance_s",
        );
        check(
            "[[consent.announcement]]\nname = \"\"\nfile = \"a.wav\"\n",
            "consent.announcement",
        );
        check("[pci]\nmin_digits = 0\n", "pci.min_digits");
    }

    #[test]
    fn digest_follows_the_settings() {
        let a = Config::default();
        let mut b = Config::default();
        b.analysis.dead_air_s = 6.0;
        assert_eq!(a.digest(), Config::default().digest());
        assert_ne!(a.digest(), b.digest());
    }
}
