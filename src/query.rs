//! The questions admins and compliance officers ask, and their answers: one code path for both
//! transports (the daemon's control socket, or the store opened directly when no daemon runs).
//!
//! A [`Request`] is plain data; [`handle`] answers it from the store and the configuration,
//! checks the caller's [`Role`] first, and writes every change with the caller's name in the
//! audit log (through the store's audited methods). Lists, KPIs and reports read the summary
//! and score indexes ([`crate::summary`]), never whole records, except `show` (one record) and
//! the retention report (the planner needs every record). The time is a parameter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::model::Grade;
use crate::audit::{AuditAction, Draft, Entry, Head};
use crate::config::Config;
use crate::consent::ConsentRecord;
use crate::kpi::{self, ConsentReport, GroupBy, Kpi, QualityReport};
use crate::metadata::{ConsentSource, ConsentState};
use crate::policy::{self, fmt_ms, Action, Decision, Reason, Trigger};
use crate::recording_path::RecordingPath;
use crate::store::{Hold, Named, Record, RecordState, RecordingId, Selection, Store, StoreError};
use crate::summary::Summary;

/// The version of [`Request`] and [`Answer`] as they travel over the control socket.
pub const PROTOCOL: u32 = 1;

/// What a caller may do. Auditors read everything (lists, KPIs, reports, holds); admins also
/// change consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The web console's quality pages only: lists, calls, KPIs, the quality report.
    Viewer,
    Auditor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

/// Who asks: the name written in the audit log, and what they may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// A time window over when calls started: `[from_ms, until_ms)`, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Worst first.
    Score,
    /// Newest first.
    #[default]
    Time,
    /// Longest first.
    Duration,
}

/// `list`'s filters. Every given one must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub window: Window,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RecordState>,
    #[serde(default)]
    pub sort: Sort,
    pub limit: usize,
}

/// A consent filter: a state, or `none` for calls with no consent recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentFilter {
    Granted,
    Denied,
    Unknown,
    NotRequired,
    None,
}

impl ConsentFilter {
    fn matches(self, c: Option<ConsentState>) -> bool {
        match self {
            ConsentFilter::Granted => c == Some(ConsentState::Granted),
            ConsentFilter::Denied => c == Some(ConsentState::Denied),
            ConsentFilter::Unknown => c == Some(ConsentState::Unknown),
            ConsentFilter::NotRequired => c == Some(ConsentState::NotRequired),
            ConsentFilter::None => c.is_none(),
        }
    }
}

impl ListQuery {
    fn matches(&self, s: &Summary) -> bool {
        self.agent
            .as_ref()
            .is_none_or(|a| s.agent.as_ref() == Some(a))
            && self
                .queue
                .as_ref()
                .is_none_or(|q| s.queue.as_ref() == Some(q))
            && self.grade.is_none_or(|g| s.grade == Some(g))
            && self.flag.as_ref().is_none_or(|f| s.flags.contains(f))
            && self.consent.is_none_or(|c| c.matches(s.consent))
            && self.state.is_none_or(|st| s.state == st)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Consent,
    Retention,
    Holds,
    Purged,
    Quality,
    /// Calls that should have been recorded and were, by day, agent and queue.
    Coverage,
    /// DTMF digit bursts (card data) in recordings where PCI DSS applies.
    Pci,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Consent => "consent",
            ReportKind::Retention => "retention",
            ReportKind::Holds => "holds",
            ReportKind::Purged => "purged",
            ReportKind::Quality => "quality",
            ReportKind::Coverage => "coverage",
            ReportKind::Pci => "pci",
        }
    }
}

/// A question or an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    List(ListQuery),
    /// A recording by id, or by the path it was ingested from.
    Show {
        target: Target,
    },
    Kpi {
        window: Window,
        by: GroupBy,
    },
    ConsentSet {
        ids: Vec<u64>,
        state: ConsentState,
        source: ConsentSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    HoldAdd {
        selection: Selection,
        case: String,
        reason: String,
    },
    HoldRelease {
        hold: u64,
        reason: String,
    },
    HoldList,
    Report {
        kind: ReportKind,
        window: Window,
    },
    /// A purge now: of these recordings (unless held or locked), or what the policy says is due
    /// (no ids). A dry run plans and deletes nothing. `now_ms` plans as of another time: for
    /// dry runs, and for real purges only on a store opened directly (a daemon purges at its own
    /// time).
    Purge {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ids: Vec<u64>,
        dry_run: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        now_ms: Option<i64>,
    },
    /// Reload the daemon's configuration file.
    Reload,
    /// Calls (from the PBX's call records) that started in the window, with their recordings
    /// and verdicts, oldest first; in one state only, if given; at most `limit`.
    Calls {
        window: Window,
        #[serde(flatten)]
        filter: CallFilter,
        limit: usize,
    },
    /// One call, by its key or one of its legs' ids.
    CallShow {
        call: String,
    },
    /// Store call records read from `source` (a file), and how many rows could not be read.
    CallsImport {
        source: String,
        legs: Vec<crate::cdr::CallRecord>,
        rejected: usize,
    },
    /// A redacted copy of recording `id` (whose bytes hashed `source_sha256`) was written to
    /// `out` (hashing `sha256`), with these spans silenced: audit it.
    Redacted {
        id: u64,
        source_sha256: String,
        out: String,
        sha256: String,
        spans: Vec<[f64; 2]>,
    },
    /// Check the audit chain and, unless `chain_only`, re-hash every recording.
    AuditVerify {
        chain_only: bool,
    },
    /// The audit entries written since a time (all without one), in chain order: those after
    /// `after_seq`, at most `limit` of them (a page; fewer means the log's end).
    AuditExport {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ms: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Add or change a web console account (its password arrives hashed).
    User {
        name: crate::accounts::UserName,
        change: crate::accounts::AccountChange,
    },
    /// Every console account (never their password hashes).
    Users,
}

impl Request {
    /// The role a request needs.
    pub fn needs(&self) -> Role {
        match self {
            Request::ConsentSet { .. } | Request::Reload | Request::CallsImport { .. } => {
                Role::Admin
            }
            Request::Purge { dry_run: false, .. } => Role::Admin,
            Request::User { .. } | Request::Users => Role::Admin,
            Request::Status
            | Request::List(_)
            | Request::Show { .. }
            | Request::Kpi { .. }
            | Request::Calls { .. }
            | Request::CallShow { .. }
            | Request::Report {
                kind: ReportKind::Quality,
                ..
            } => Role::Viewer,
            _ => Role::Auditor,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::List(_) => "list",
            Request::Show { .. } => "show",
            Request::Kpi { .. } => "kpi",
            Request::ConsentSet { .. } => "consent set",
            Request::HoldAdd { .. } => "hold add",
            Request::HoldRelease { .. } => "hold release",
            Request::HoldList => "hold list",
            Request::Report { .. } => "report",
            Request::Purge { dry_run: true, .. } => "plan a purge",
            Request::Purge { .. } => "purge",
            Request::Reload => "reload the configuration",
            Request::Calls { .. } => "list calls",
            Request::CallShow { .. } => "show a call",
            Request::Redacted { .. } => "redact",
            Request::CallsImport { .. } => "import call records",
            Request::AuditVerify { .. } => "verify the audit log",
            Request::AuditExport { .. } => "export the audit log",
            Request::User { .. } => "change a console account",
            Request::Users => "list the console accounts",
        }
    }
}

/// The daemon's side of `status`: only a running daemon knows these.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub version: String,
    pub started_ms: i64,
    /// Files waiting for or in analysis.
    pub queue_depth: usize,
    /// Files seen changing, waiting to settle.
    pub settling: usize,
    /// Recordings stored analysed this run (too-short ones apart, as the metrics count them).
    pub stored: usize,
    #[serde(default)]
    pub too_short: usize,
    pub failed: usize,
    pub purged: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purge: Option<String>,
    pub roots: Vec<String>,
    /// Why the exporter refuses to send to the central database, while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_refused: Option<String>,
    /// The exporter's last failure, until a batch goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_error: Option<String>,
}

/// The export to the central database, as the store's outbox stands (`docs/fleet.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportState {
    /// This site's name there, as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Events appended and acknowledged so far, and those waiting.
    pub appended: u64,
    pub acknowledged: u64,
    pub waiting: u64,
    pub max_backlog: u64,
    /// The backlog reached its bound: the site is sent again whole once it drains.
    pub overflowed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootStatus {
    pub path: String,
    /// Share of the filesystem free, if it can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `None`: answered from the store, no daemon running.
    pub daemon: Option<DaemonInfo>,
    /// The answering build's version and protocol.
    pub version: String,
    pub protocol: u32,
    pub store: String,
    pub store_bytes: u64,
    pub roots: Vec<RootStatus>,
    pub counts: BTreeMap<String, usize>,
    pub holds_in_force: usize,
    /// The last purge the audit log records (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purge: Option<String>,
    pub audit_length: u64,
    pub audit_head: String,
    /// Only once export has been switched on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportState>,
}

/// `show`: everything about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub record: Record,
    pub retention: Decision,
    pub retention_explained: String,
    pub holds: Vec<Hold>,
    pub audit: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub id: u64,
    pub state: ConsentState,
    pub law: String,
}

/// One expiring or overdue recording in the retention report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Due {
    pub id: u64,
    pub path: RecordingPath,
    pub started: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    pub explanation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionReport {
    pub by_state: BTreeMap<String, u64>,
    /// Recordings still held (not purged) by the rule that governs them.
    pub by_rule: BTreeMap<String, u64>,
    pub held: u64,
    pub locked: u64,
    pub needs_review: u64,
    /// What expires in the next 30 days (the first 1,000 listed; all counted).
    pub expiring_30d: u64,
    pub expiring: Vec<Due>,
    /// Due longer than a purge interval ago and still here, or left to a human: should be
    /// none; each is explained.
    pub overdue: Vec<Due>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgedRow {
    pub id: u64,
    pub path: RecordingPath,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    pub deleted_at: String,
    pub rule: String,
    pub reason: String,
    pub actor: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_seq: Option<u64>,
    /// The time the retention policy was asked as of, when it was not the deletion's time
    /// (`purge --now`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_at: Option<String>,
    /// Whether the purge saw the file and deleted it, or found it already gone.
    pub deletion: crate::record::Deletion,
}

impl PurgedRow {
    /// The row of a recording purged under `t`, proved by audit entry `audit_seq`.
    pub fn of(
        id: u64,
        (path, sha256, size, duration_s): (RecordingPath, String, u64, Option<f64>),
        t: &crate::record::Tombstone,
        audit_seq: Option<u64>,
    ) -> PurgedRow {
        PurgedRow {
            id,
            path,
            sha256,
            size,
            duration_s,
            deleted_at: fmt_ms(t.deleted_ms),
            rule: t.rule.clone(),
            reason: t.reason.clone(),
            actor: t.actor.clone(),
            scope: t.scope.as_str().into(),
            audit_seq,
            policy_at: t.policy_ms.map(fmt_ms),
            deletion: if t.rolled_forward {
                crate::record::Deletion::AlreadyGone
            } else {
                crate::record::Deletion::Deleted
            },
        }
    }
}

/// The audit chain head that covers a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub sha256: String,
}

impl From<Head> for ChainHead {
    fn from(h: Head) -> ChainHead {
        ChainHead {
            seq: h.seq,
            sha256: h.hash,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgedReport {
    pub count: usize,
    /// The audit chain head that covers every purge listed.
    pub audit_chain_head: ChainHead,
    pub recordings: Vec<PurgedRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    Consent(ConsentReport),
    Coverage(Box<crate::calls::CoverageReport>),
    Retention(RetentionReport),
    Holds { holds: Vec<Hold> },
    Purged(PurgedReport),
    Quality(QualityReport),
    Pci(kpi::PciReport),
}

/// A report with when and over what it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dated {
    pub generated_at: String,
    /// Where the window starts (RFC 3339), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub window: Window,
    #[serde(flatten)]
    pub body: Report,
}

/// An answer, one variant per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "data", rename_all = "snake_case")]
pub enum Answer {
    Status(Box<Status>),
    List(Vec<Summary>),
    Show(Box<Shown>),
    Kpi(Kpi),
    ConsentSet(Vec<ConsentChange>),
    Hold(Hold),
    Holds(Vec<Hold>),
    Report(Box<Dated>),
    Purge(Box<PurgeOutcome>),
    Reloaded(String),
    Verified(Box<crate::verify::Verification>),
    Audit(Vec<Entry>),
    Calls(CallsPage),
    Call(Box<crate::calls::CallView>),
    CallsImported(crate::store::CallsStored),
    Account(crate::accounts::AccountView),
    Accounts(Vec<crate::accounts::AccountView>),
}

/// A page of calls: those asked for, how many matched in all, and the recordings of the window
/// that match no call or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallsPage {
    pub calls: Vec<crate::calls::CallView>,
    pub total: usize,
    pub orphans: Vec<crate::calls::Unmatched>,
    pub ambiguous: Vec<crate::calls::Unmatched>,
}

/// What a purge request planned and did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeOutcome {
    pub now_ms: i64,
    pub dry_run: bool,
    /// The notable decisions (purges, holds, locks, reviews), with their reasons.
    pub plan: Vec<crate::purge::Planned>,
    pub summary: crate::purge::Summary,
    /// Purges of an interrupted run, completed first by the next real run.
    pub pending_intents: usize,
}

impl PartialEq for PurgeOutcome {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

/// Why a request got no answer: the code the protocol carries (its snake_case name), on which
/// the client decides (a refusal is the caller's to fix, a failure the daemon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Client and daemon speak different protocol versions.
    Protocol,
    /// The caller has no role for the request.
    Forbidden,
    NotFound,
    /// A request that cannot be carried out as asked.
    Invalid,
    /// The store refused the change (a hold in the way, a lock).
    Refused,
    /// The store failed.
    Store,
    /// Too many connections open.
    Busy,
    /// The handler itself failed.
    Internal,
    /// A code this version does not know (a newer daemon's).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Whether it is the caller's to fix (as opposed to the daemon's failure).
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::Invalid | ErrorCode::Refused
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    /// The stable code the protocol carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::Forbidden(_) => ErrorCode::Forbidden,
            QueryError::NotFound(_) => ErrorCode::NotFound,
            QueryError::Invalid(_) => ErrorCode::Invalid,
            QueryError::Store(StoreError::Refused(_)) => ErrorCode::Refused,
            QueryError::Store(_) => ErrorCode::Store,
        }
    }
}

/// Asks the daemon's loop to reload its configuration, as this caller: the outcome in words.
pub type Reload<'a> = &'a (dyn Fn(&str) -> Result<String, String> + Sync);

/// What a request is answered from.
pub struct Context<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    /// Set when the daemon answers.
    pub daemon: Option<DaemonInfo>,
    pub now_ms: i64,
    /// Held while a purge runs, so the daemon's scheduled purges and requested ones never
    /// overlap (the daemon's; a store opened directly has one process only).
    pub purge_lock: Option<&'a std::sync::Mutex<()>>,
    /// The daemon's reload (absent without a daemon).
    pub reload: Option<Reload<'a>>,
}

/// Answers `request` for `caller`.
pub fn handle(ctx: &Context, caller: &Caller, request: Request) -> Result<Answer, QueryError> {
    if caller.role < request.needs() {
        return Err(QueryError::Forbidden(format!(
            "{} may not {}: it needs the {} role, and {} has {}",
            caller.name,
            request.name(),
            request.needs().as_str(),
            caller.name,
            caller.role.as_str()
        )));
    }
    let store = ctx.store;
    match request {
        Request::Status => status(ctx).map(|s| Answer::Status(Box::new(s))),
        Request::List(q) => list(store, &q).map(Answer::List),
        Request::Show { target } => show(ctx, &target).map(|s| Answer::Show(Box::new(s))),
        Request::Kpi { window, by } => {
            let summaries = collect(store.summaries(window.from_ms, window.until_ms))?;
            let k = kpi::kpi(summaries, by, ctx.config.consent.default);
            Ok(Answer::Kpi(if store.has_calls() {
                kpi::with_calls(k, &coverage(ctx, window)?)
            } else {
                k
            }))
        }
        Request::ConsentSet {
            ids,
            state,
            source,
            note,
        } => consent_set(ctx, caller, &ids, state, source, note).map(Answer::ConsentSet),
        Request::HoldAdd {
            selection,
            case,
            reason,
        } => Ok(Answer::Hold(store.add_hold(
            &case,
            &reason,
            &caller.name,
            selection,
            ctx.now_ms,
        )?)),
        Request::HoldRelease { hold, reason } => Ok(Answer::Hold(store.release_hold(
            hold,
            &caller.name,
            &reason,
            ctx.now_ms,
        )?)),
        Request::HoldList => Ok(Answer::Holds(store.holds()?)),
        Request::Purge {
            ids,
            dry_run,
            now_ms,
        } => purge(ctx, caller, &ids, dry_run, now_ms).map(|o| Answer::Purge(Box::new(o))),
        Request::Reload => match ctx.reload {
            Some(reload) => reload(&caller.name)
                .map(Answer::Reloaded)
                .map_err(QueryError::Invalid),
            None => Err(QueryError::Invalid(
                "no daemon is running: the configuration is read when it starts".into(),
            )),
        },
        Request::Redacted {
            id,
            source_sha256,
            out,
            sha256,
            spans,
        } => {
            let Some(record) = store.get(RecordingId(id))? else {
                return Err(QueryError::NotFound(format!("no recording with id {id}")));
            };
            if record.sha256 != source_sha256 {
                return Err(QueryError::Store(StoreError::Refused(format!(
                    "recording {id}'s bytes are not the ones stored (sha256 {} here, {} in the \
                     store): no redacted copy is recorded",
                    source_sha256, record.sha256
                ))));
            }
            let event = Draft::new(
                &caller.name,
                AuditAction::Redact,
                serde_json::json!({"what": "dtmf", "out": out, "sha256": sha256,
                    "source_sha256": source_sha256, "spans": spans}),
            )
            .about(id);
            Ok(Answer::Audit(store.audit(vec![event], ctx.now_ms)?))
        }
        Request::AuditVerify { chain_only } => {
            // A stable view: no purge runs while the files are checked.
            let _guard = ctx
                .purge_lock
                .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
            let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
            Ok(Answer::Verified(Box::new(crate::verify::verify(
                store,
                !chain_only,
                jobs,
            )?)))
        }
        Request::AuditExport {
            since_ms,
            after_seq,
            limit,
        } => {
            let mut entries = Vec::new();
            for item in store.audit_entries_after(after_seq) {
                if limit.is_some_and(|l| entries.len() >= l) {
                    break;
                }
                match item? {
                    (_, Ok(e)) if since_ms.is_none_or(|t| e.time_ms >= t) => entries.push(e),
                    (_, Ok(_)) => {}
                    (seq, Err(why)) => {
                        return Err(QueryError::Invalid(format!(
                        "audit entry {seq} does not decode: {why} (run `callwarden audit verify`)"
                    )))
                    }
                }
            }
            Ok(Answer::Audit(entries))
        }
        Request::User { name, change } => {
            let account = store.change_account(&name, &change, &caller.name, ctx.now_ms)?;
            Ok(Answer::Account((&account).into()))
        }
        Request::Users => Ok(Answer::Accounts(
            store.accounts()?.iter().map(Into::into).collect(),
        )),
        Request::Calls {
            window,
            filter,
            limit,
        } => {
            let m = matching(ctx, window)?;
            let selected: Vec<crate::calls::CallView> =
                m.calls.into_iter().filter(|c| filter.accepts(c)).collect();
            Ok(Answer::Calls(CallsPage {
                total: selected.len(),
                calls: selected.into_iter().take(limit).collect(),
                orphans: m.orphans,
                ambiguous: m.ambiguous,
            }))
        }
        Request::CallShow { call } => {
            let legs = store.call(&call)?;
            let (Some(start), Some(end)) = (
                legs.iter().map(|l| l.start_ms).min(),
                legs.iter().map(|l| l.end_ms).max(),
            ) else {
                return Err(QueryError::NotFound(format!(
                    "no call {call:?} in the call records"
                )));
            };
            let key = legs[0].call_key().to_string();
            let m = matching(
                ctx,
                Window {
                    from_ms: Some(start - MATCH_MARGIN_MS),
                    until_ms: Some(end + 1),
                },
            )?;
            m.calls
                .into_iter()
                .find(|c| c.call == key)
                .map(|c| Answer::Call(Box::new(c)))
                .ok_or_else(|| QueryError::NotFound(format!("no call {call:?}")))
        }
        Request::CallsImport {
            source,
            legs,
            rejected,
        } => Ok(Answer::CallsImported(store.put_calls(
            &legs,
            &caller.name,
            &source,
            rejected,
            ctx.now_ms,
        )?)),
        Request::Report { kind, window } => {
            let body = report(ctx, kind, window)?;
            Ok(Answer::Report(Box::new(Dated {
                generated_at: fmt_ms(ctx.now_ms),
                since: window.from_ms.map(fmt_ms),
                window,
                body,
            })))
        }
    }
}

use crate::calls::MATCH_MARGIN_MS;

/// The calls that started in the window, matched with the recordings around it (and the calls
/// just before and after it, so a recording of one of those is not taken for an orphan); the
/// orphans and ambiguous recordings are those that started in the window.
pub fn matching(ctx: &Context, window: Window) -> Result<crate::calls::Matching, QueryError> {
    let store = ctx.store;
    let around = |t: Option<i64>, d: i64| t.map(|t| t.saturating_add(d));
    let legs: Vec<crate::cdr::CallRecord> = store
        .calls_between(
            around(window.from_ms, -MATCH_MARGIN_MS),
            around(window.until_ms, MATCH_MARGIN_MS),
        )
        .collect::<Result<_, _>>()?;
    let (from, until) = (
        around(window.from_ms, -MATCH_MARGIN_MS),
        around(window.until_ms, MATCH_MARGIN_MS),
    );
    let mut recordings = collect(store.summaries(from, until))?;
    let inside =
        |t: i64| window.from_ms.is_none_or(|f| t >= f) && window.until_ms.is_none_or(|u| t < u);
    // A recording belongs to the call its key names however far apart their times are (a
    // copied archive has new file times): those of the window's calls are read by key.
    let near = |t: i64| from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u);
    let mut far: std::collections::BTreeMap<u64, Summary> = Default::default();
    let mut asked: std::collections::HashSet<&str> = Default::default();
    // The window's calls: those whose first leg started in it (every leg of them asks).
    let mut first: std::collections::HashMap<&str, i64> = Default::default();
    for leg in &legs {
        let t = first.entry(leg.call_key()).or_insert(leg.start_ms);
        *t = (*t).min(leg.start_ms);
    }
    for leg in legs.iter().filter(|l| inside(first[l.call_key()])) {
        for key in [leg.id.as_str(), leg.call_key()] {
            if asked.insert(key) {
                for s in store.recordings_naming(key)? {
                    if !near(s.started_ms) {
                        far.insert(s.id, s);
                    }
                }
            }
        }
    }
    recordings.extend(far.into_values());
    // A key that names no call here may name one outside the margins.
    let failed = std::cell::RefCell::new(None);
    let elsewhere = |key: &str| {
        store.call_named(key).unwrap_or_else(|e| {
            failed.borrow_mut().get_or_insert(e);
            None
        })
    };
    let mut m = crate::calls::match_calls_with(
        legs,
        recordings,
        &elsewhere,
        &ctx.config.calls,
        ctx.config.consent.default,
        ctx.now_ms,
    );
    if let Some(e) = failed.into_inner() {
        return Err(e.into());
    }
    m.calls.retain(|c| inside(c.start_ms));
    m.orphans.retain(|u| inside(u.started_ms));
    m.ambiguous.retain(|u| inside(u.started_ms));
    Ok(m)
}

const DAY_MS: i64 = 86_400_000;

/// The coverage digest of a window, made day by day: a UTC day wholly inside the window is
/// read from the digest the store keeps for it while that is fresh (else matched, and kept
/// once no call in it is pending); the parts of days at the window's ends are matched afresh.
/// An open end stops at the first or last call record or recording.
fn coverage(ctx: &Context, window: Window) -> Result<crate::calls::Digest, QueryError> {
    use crate::calls::Digest;
    let store = ctx.store;
    let mut all = Digest {
        settled: true,
        ..Digest::default()
    };
    let Some((first, last)) = store.time_span()? else {
        return Ok(all);
    };
    // Nothing lies before the first record or after the last: an open end may go to the
    // edge of its day, which makes that day whole.
    let from = window
        .from_ms
        .unwrap_or(first.div_euclid(DAY_MS).saturating_mul(DAY_MS));
    let until = window
        .until_ms
        .unwrap_or((last.div_euclid(DAY_MS).saturating_add(1)).saturating_mul(DAY_MS));
    let config = ctx.config.calls_digest();
    let mut a = from;
    while a < until {
        let day = a.div_euclid(DAY_MS);
        let b = until.min((day + 1).saturating_mul(DAY_MS));
        let whole = a == day * DAY_MS && b - a == DAY_MS;
        let kept = match whole {
            true => store.day_digest(day, &config)?,
            false => None,
        };
        let d = match kept {
            Some(d) => d,
            None => {
                // Read before matching: a change while it runs leaves the digest stale.
                let generation = store.day_generation(day)?;
                let unit = Window {
                    from_ms: Some(a),
                    until_ms: Some(b),
                };
                let d = crate::calls::Digest::of(&matching(ctx, unit)?, REPORT_LIST_LIMIT);
                if whole && d.settled {
                    store.put_day_digest(day, generation, &config, &d)?;
                }
                d
            }
        };
        all.merge(d, REPORT_LIST_LIMIT);
        a = b;
    }
    Ok(all)
}

fn collect(
    it: impl Iterator<Item = Result<Summary, StoreError>>,
) -> Result<Vec<Summary>, StoreError> {
    it.collect()
}

fn status(ctx: &Context) -> Result<Status, QueryError> {
    let store = ctx.store;
    let counts = [
        RecordState::Analysed,
        RecordState::TooShort,
        RecordState::Failed,
        RecordState::Missing,
        RecordState::Purged,
    ]
    .iter()
    .map(|&s| (s.as_str().to_string(), store.count_by_state(s)))
    .collect();
    let head = store.audit_head()?;
    let outbox = store.outbox_state()?;
    let export = outbox.enabled.then(|| ExportState {
        site: ctx
            .config
            .export
            .postgres
            .as_ref()
            .map(|p| p.site.to_string()),
        appended: outbox.head.seq,
        acknowledged: outbox.ack.seq,
        waiting: outbox.backlog(),
        max_backlog: outbox.max_backlog,
        overflowed: outbox.overflowed,
    });
    let last_purge = match &ctx.daemon {
        Some(d) if d.last_purge.is_some() => d.last_purge.clone(),
        _ => store
            .last_audit_time(crate::audit::AuditAction::PurgeRun)?
            .map(fmt_ms),
    };
    Ok(Status {
        daemon: ctx.daemon.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL,
        store: ctx.config.store.path.display().to_string(),
        store_bytes: store.size_on_disk(),
        roots: ctx
            .config
            .ingest
            .roots
            .iter()
            .map(|r| RootStatus {
                path: r.display().to_string(),
                free_ratio: crate::purge::free_ratio(r),
            })
            .collect(),
        counts,
        holds_in_force: store
            .holds()?
            .iter()
            .filter(|h| h.released.is_none())
            .count(),
        last_purge,
        audit_length: head.seq,
        audit_head: head.hash,
        export,
    })
}

/// The calls a list query matches, sorted, at most its limit. Worst-first lists walk the
/// score index; an agent's or queue's calls come from its index; anything else scans the
/// window's summaries.
pub fn list(store: &Store, q: &ListQuery) -> Result<Vec<Summary>, QueryError> {
    let Window { from_ms, until_ms } = q.window;
    if q.sort == Sort::Score {
        return Ok(store.worst(from_ms, until_ms, q.limit, |s| q.matches(s))?);
    }
    if q.sort == Sort::Time {
        // Newest first straight from the time-ordered keys: a page reads about a page.
        let of = match (&q.agent, &q.queue) {
            (Some(a), _) => Some((Named::Agent, a.as_str())),
            (None, Some(queue)) => Some((Named::Queue, queue.as_str())),
            (None, None) => None,
        };
        let mut found = Vec::new();
        for s in store.newest(of, from_ms, until_ms) {
            if found.len() >= q.limit {
                break;
            }
            let s = s?;
            if q.matches(&s) {
                found.push(s);
            }
        }
        return Ok(found);
    }
    let mut found: Vec<Summary> = match (&q.agent, &q.queue) {
        (Some(a), _) => store.summaries_of(Named::Agent, a, from_ms, until_ms)?,
        (None, Some(queue)) => store.summaries_of(Named::Queue, queue, from_ms, until_ms)?,
        (None, None) => collect(store.summaries(from_ms, until_ms))?,
    };
    found.retain(|s| q.matches(s));
    match q.sort {
        Sort::Time | Sort::Score => found.sort_by_key(|s| std::cmp::Reverse(s.started_ms)),
        Sort::Duration => found.sort_by(|a, b| {
            b.duration_s
                .unwrap_or(0.0)
                .total_cmp(&a.duration_s.unwrap_or(0.0))
        }),
    }
    found.truncate(q.limit);
    Ok(found)
}

/// Which calls `calls list` shows: every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::calls::CallState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<crate::metadata::Direction>,
}

impl CallFilter {
    pub fn accepts(&self, c: &crate::calls::CallView) -> bool {
        self.state.is_none_or(|s| c.state == s)
            && self
                .agent
                .as_ref()
                .is_none_or(|a| c.agent.as_ref() == Some(a))
            && self
                .queue
                .as_ref()
                .is_none_or(|q| c.queue.as_ref() == Some(q))
            && self.direction.is_none_or(|d| c.direction == Some(d))
    }
}

/// One recording named on the command line: by id, or by its path (made absolute in the
/// caller's working directory, byte-exact, so a name that is not UTF-8 is found too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Id(u64),
    Path(RecordingPath),
}

impl Target {
    /// An argument as given: all digits is an id, anything else a path (relative to the
    /// working directory, read here at the edge).
    pub fn from_arg(arg: &std::ffi::OsStr) -> Result<Target, crate::recording_path::PathError> {
        match arg.to_str().and_then(|s| s.parse::<u64>().ok()) {
            Some(id) => Ok(Target::Id(id)),
            None => RecordingPath::from_cwd(std::path::Path::new(arg)).map(Target::Path),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "id {id}"),
            Target::Path(path) => write!(f, "path {path}"),
        }
    }
}

fn show(ctx: &Context, target: &Target) -> Result<Shown, QueryError> {
    let store = ctx.store;
    let record = match target {
        Target::Id(id) => store.get(RecordingId(*id))?,
        Target::Path(path) => store.by_path(path)?,
    };
    let Some(record) = record else {
        return Err(QueryError::NotFound(format!("no recording with {target}")));
    };
    let retention = policy::decide(
        &record,
        &ctx.config.retention,
        ctx.now_ms,
        Trigger::Schedule,
    );
    let holds = store
        .holds()?
        .into_iter()
        .filter(|h| h.recordings.contains(&record.id))
        .collect();
    let mut audit = Vec::new();
    for item in store.audit_of(record.id) {
        if let (_, Ok(e)) = item? {
            audit.push(e);
        }
    }
    Ok(Shown {
        retention_explained: retention.explain(),
        retention,
        record,
        holds,
        audit,
    })
}

fn consent_set(
    ctx: &Context,
    caller: &Caller,
    ids: &[u64],
    state: ConsentState,
    source: ConsentSource,
    note: Option<String>,
) -> Result<Vec<ConsentChange>, QueryError> {
    if ids.is_empty() {
        return Err(QueryError::Invalid("give at least one recording id".into()));
    }
    // Every id first, so a typo changes nothing.
    let mut records = Vec::with_capacity(ids.len());
    for &id in ids {
        match ctx.store.get(RecordingId(id))? {
            Some(r) => records.push(r),
            None => return Err(QueryError::NotFound(format!("no recording with id {id}"))),
        }
    }
    let mut out = Vec::new();
    for r in records {
        let law = crate::consent::law(r.metadata.as_ref(), &ctx.config.consent);
        let consent = ConsentRecord {
            state,
            source,
            time_ms: Some(ctx.now_ms),
            recorded_ms: ctx.now_ms,
            actor: caller.name.clone(),
            note: note.clone(),
        };
        ctx.store.set_consent(r.id, consent, law, ctx.now_ms)?;
        out.push(ConsentChange {
            id: r.id.0,
            state,
            law: law.as_str().into(),
        });
    }
    Ok(out)
}

fn purge(
    ctx: &Context,
    caller: &Caller,
    ids: &[u64],
    dry_run: bool,
    now_ms: Option<i64>,
) -> Result<PurgeOutcome, QueryError> {
    if now_ms.is_some() && !dry_run && ctx.daemon.is_some() {
        return Err(QueryError::Invalid(
            "a purge as of another time (--now) deletes only with the daemon stopped; the \
             daemon purges at its own time (a dry run with --now is fine)"
                .into(),
        ));
    }
    let now = now_ms.unwrap_or(ctx.now_ms);
    let _guard = match ctx.purge_lock.map(|m| m.try_lock()) {
        Some(Err(std::sync::TryLockError::WouldBlock)) => {
            return Err(QueryError::Invalid(
                "the daemon is purging right now: ask again when it has finished".into(),
            ))
        }
        Some(Ok(guard)) => Some(guard),
        // A poisoned lock only means an earlier purge thread panicked: purges are crash-safe.
        Some(Err(std::sync::TryLockError::Poisoned(p))) => Some(p.into_inner()),
        None => None,
    };
    let purger = crate::purge::Purger {
        store: ctx.store,
        config: ctx.config,
        actor: &caller.name,
        stop: None,
        real_ms: Some(ctx.now_ms),
    };
    let (plan, summary) = if !ids.is_empty() {
        if dry_run {
            let mut plan = Vec::new();
            let mut summary = crate::purge::Summary::default();
            for id in ids {
                let r = ctx
                    .store
                    .get(RecordingId(*id))?
                    .ok_or_else(|| QueryError::NotFound(format!("no recording with id {id}")))?;
                let d = policy::decide(&r, &ctx.config.retention, now, Trigger::Manual);
                policy::tally(&mut summary.planned, &d);
                plan.push(crate::purge::Planned::new(&r, d));
            }
            (plan, summary)
        } else {
            let ids: Vec<RecordingId> = ids.iter().map(|i| RecordingId(*i)).collect();
            purger.purge_ids(&ids, now)?
        }
    } else {
        let trigger = if purger.under_pressure() {
            tracing::error!(
                min_free_ratio = ctx.config.retention.min_free_ratio,
                "disk pressure: free space is below the threshold; purging early what the policy allows"
            );
            Trigger::DiskPressure
        } else {
            Trigger::Schedule
        };
        purger.run(now, trigger, dry_run)?
    };
    Ok(PurgeOutcome {
        now_ms: now,
        dry_run,
        plan,
        summary,
        pending_intents: ctx.store.intents()?.len(),
    })
}

/// Calls listed at most in a report (all are counted).
const REPORT_LIST_LIMIT: usize = 1000;

fn report(ctx: &Context, kind: ReportKind, window: Window) -> Result<Report, QueryError> {
    let store = ctx.store;
    let summaries = || store.summaries(window.from_ms, window.until_ms);
    Ok(match kind {
        ReportKind::Consent => Report::Consent(kpi::consent_report(
            collect(summaries())?,
            ctx.config.consent.default,
            ctx.config
                .consent
                .announcement
                .iter()
                .map(|a| a.within_s)
                .fold(0.0, f64::max),
            REPORT_LIST_LIMIT,
        )),
        ReportKind::Pci => Report::Pci(kpi::pci_report(
            collect(summaries())?,
            &ctx.config.pci,
            REPORT_LIST_LIMIT,
        )),
        ReportKind::Quality => Report::Quality(kpi::quality_report(collect(summaries())?, 20)),
        ReportKind::Holds => Report::Holds {
            holds: store
                .holds()?
                .into_iter()
                .filter(|h| window.from_ms.is_none_or(|f| h.added_ms >= f))
                .filter(|h| window.until_ms.is_none_or(|u| h.added_ms < u))
                .collect(),
        },
        ReportKind::Purged => Report::Purged(purged(store, window)?),
        ReportKind::Retention => Report::Retention(retention(ctx, window)?),
        ReportKind::Coverage => Report::Coverage(Box::new(coverage(ctx, window)?.report())),
    })
}

/// The deletion certificate: purges in the window (by deletion time).
fn purged(store: &Store, window: Window) -> Result<PurgedReport, QueryError> {
    // The entry that proves each deletion: the recording's last `purge` entry.
    let purge_seq = |id: RecordingId| -> Result<Option<u64>, QueryError> {
        for item in store.audit_of(id).rev() {
            if let (seq, Ok(e)) = item? {
                if e.action == crate::audit::AuditAction::Purge {
                    return Ok(Some(seq));
                }
            }
        }
        Ok(None)
    };
    let audit_head = store.audit_head()?;
    let mut rows = Vec::new();
    for r in store.in_state(RecordState::Purged) {
        let r = r?;
        let Some(t) = &r.tombstone else { continue };
        if window.from_ms.is_some_and(|s| t.deleted_ms < s)
            || window.until_ms.is_some_and(|u| t.deleted_ms >= u)
        {
            continue;
        }
        rows.push((
            t.deleted_ms,
            PurgedRow::of(
                r.id.0,
                (r.path.clone(), r.sha256.clone(), r.size, r.duration_s),
                t,
                purge_seq(r.id)?,
            ),
        ));
    }
    rows.sort_by_key(|(t, row)| (*t, row.id));
    Ok(PurgedReport {
        count: rows.len(),
        audit_chain_head: audit_head.into(),
        recordings: rows.into_iter().map(|(_, row)| row).collect(),
    })
}

fn retention(ctx: &Context, window: Window) -> Result<RetentionReport, QueryError> {
    const DAY_MS: i64 = 86_400_000;
    let now = ctx.now_ms;
    let policy = &ctx.config.retention;
    // A purge runs every interval: what was due before the last one should be gone.
    let slack = (policy.purge_interval_s * 1000.0) as i64;
    let mut rep = RetentionReport::default();
    for r in store_records(ctx.store, window) {
        let r = r?;
        *rep.by_state.entry(r.state.as_str().into()).or_default() += 1;
        let d = policy::decide(&r, policy, now, Trigger::Schedule);
        if r.state == RecordState::Purged {
            continue;
        }
        *rep.by_rule.entry(d.rule.clone()).or_default() += 1;
        let due = |deadline: Option<i64>| Due {
            id: r.id.0,
            path: r.path.clone(),
            started: fmt_ms(r.started_ms),
            rule: d.rule.clone(),
            deadline: deadline.map(fmt_ms),
            explanation: d.explain(),
        };
        match (&d.action, &d.reason) {
            (_, Reason::Held { .. }) => rep.held += 1,
            (_, Reason::Locked { .. }) => rep.locked += 1,
            (_, Reason::NeedsReview { .. }) => {
                rep.needs_review += 1;
                rep.overdue.push(due(None));
            }
            (Action::Keep, Reason::Retained { until_ms: Some(t) }) if *t < now + 30 * DAY_MS => {
                rep.expiring_30d += 1;
                if rep.expiring.len() < REPORT_LIST_LIMIT {
                    rep.expiring.push(due(Some(*t)));
                }
            }
            (
                Action::Purge,
                Reason::Expired { deadline_ms } | Reason::ConsentDenied { deadline_ms, .. },
            ) if *deadline_ms < now - slack => {
                let mut item = due(Some(*deadline_ms));
                item.explanation = format!(
                    "{}; due for longer than a purge interval ({} s): is the daemon running and \
                     purging? (see `callwarden status` and the purge audit entries)",
                    item.explanation, policy.purge_interval_s
                );
                rep.overdue.push(item);
            }
            _ => {}
        }
    }
    rep.expiring.sort_by(|a, b| a.deadline.cmp(&b.deadline));
    Ok(rep)
}

fn store_records(
    store: &Store,
    window: Window,
) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_> {
    if window == Window::default() {
        Box::new(store.all())
    } else {
        Box::new(store.records_between(window.from_ms, window.until_ms))
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::calls::Digest;
    use crate::cdr::{CallRecord, Disposition};
    use crate::metadata::Metadata;
    use crate::recording_path::RecordingPath;
    use crate::store::{Record, RecordingId};

    /// 2026-12-01T00:00:00Z.
    pub(super) const T0: i64 = 1_796_083_200_000;

    pub(super) fn leg(id: &str, linked: Option<&str>, start_ms: i64, billsec: u32) -> CallRecord {
        CallRecord {
            id: id.into(),
            linked_id: linked.map(String::from),
            start_ms,
            answer_ms: Some(start_ms + 5000),
            end_ms: start_ms + 5000 + i64::from(billsec) * 1000,
            duration_s: billsec + 5,
            billsec,
            disposition: Disposition::Answered,
            src: "1001".into(),
            dst: "2000".into(),
            clid: String::new(),
            context: "from-internal".into(),
            channel: String::new(),
            dst_channel: String::new(),
            last_app: "Dial".into(),
            account: String::new(),
            userfield: String::new(),
            recording: None,
            queue: None,
            direction: None,
        }
    }

    pub(super) fn rec(
        id: u64,
        name: &str,
        call_id: Option<&str>,
        started_ms: i64,
        dur: f64,
    ) -> Record {
        Record {
            id: RecordingId(id),
            path: RecordingPath::from_bytes(format!("/r/{name}").as_bytes()).unwrap(),
            started_ms,
            duration_s: Some(dur),
            metadata: Some(Metadata {
                call_id: call_id.map(String::from),
                agent: Some(format!("agent{}", id % 3)),
                ..Metadata::default()
            }),
            ..Record::blank()
        }
    }

    pub(super) fn put(store: &Store, r: &Record, previous: Option<&Record>) {
        let draft = Draft::new("t", AuditAction::Ingest, serde_json::Value::Null).about(r.id.0);
        store.commit(r, previous, draft, T0).unwrap();
    }

    /// What the kept digests give, and what matching the whole window at once gives.
    pub(super) fn both(ctx: &Context, window: Window) -> (CoverageReportOf, CoverageReportOf) {
        let kept = coverage(ctx, window).unwrap().report();
        let whole = Digest::of(&matching(ctx, window).unwrap(), REPORT_LIST_LIMIT).report();
        (kept, whole)
    }
    pub(super) type CoverageReportOf = crate::calls::CoverageReport;

    pub(super) fn ctx_at<'a>(store: &'a Store, config: &'a Config, now_ms: i64) -> Context<'a> {
        Context {
            store,
            config,
            daemon: None,
            now_ms,
            purge_lock: None,
            reload: None,
        }
    }

    pub(super) fn windows() -> [Window; 3] {
        const H: i64 = 3_600_000;
        [
            Window::default(),
            Window {
                from_ms: Some(T0 + 86_400_000),
                until_ms: Some(T0 + 3 * 86_400_000),
            },
            Window {
                from_ms: Some(T0 + 5 * H),
                until_ms: Some(T0 + 55 * H),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn coverage_kept_by_day_is_what_matching_the_whole_window_gives_through_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = Config::default();
        let at = |config, now_ms| ctx_at(&store, config, now_ms);
        let ctx = at(&config, T0 + 40 * 86_400_000);
        // Four days of calls, some near midnight, in a fixed pseudo-random order.
        let mut seed: u64 = 7;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut legs = Vec::new();
        let mut id = 0;
        for i in 0..160u64 {
            let start = T0 + (i / 40) as i64 * 86_400_000 + next(86_400) as i64 * 1000;
            let call = format!("17960{i:03}.{}", next(90));
            let billsec = 30 + next(300) as u32;
            legs.push(leg(&call, None, start, billsec));
            if i % 7 == 0 {
                legs.push(leg(
                    &format!("{call}-b"),
                    Some(&call),
                    start + 2000,
                    billsec - 10,
                ));
            }
            let dur = f64::from(billsec);
            id += 1;
            let r = match i % 10 {
                0 => continue,
                // Copied later: the file's time is days after the call.
                1 => rec(
                    id,
                    &format!("a{i}.wav"),
                    Some(&call),
                    start + 3 * 86_400_000,
                    dur,
                ),
                2 => rec(id, &format!("out-{call}.wav"), None, start + 5000, dur),
                3 => rec(id, &format!("nokey{i}.wav"), None, start + 6000, dur),
                4 => rec(
                    id,
                    &format!("b{i}.wav"),
                    Some(&call),
                    start + 5000,
                    dur / 2.0,
                ),
                _ => rec(id, &format!("c{i}.wav"), Some(&call), start + 5000, dur),
            };
            put(&store, &r, None);
        }
        // A call over midnight whose recording, copied days later, names its second leg
        // (which starts on the next day).
        let before = T0 + 3 * 86_400_000 - 1000;
        legs.push(leg("span.1", None, before, 120));
        legs.push(leg("span.2", Some("span.1"), before + 3000, 100));
        put(
            &store,
            &rec(800, "x-span.2.wav", None, T0 + 6 * 86_400_000, 100.0),
            None,
        );
        // Recordings of no call (yet): one names a call that comes later.
        let stray = rec(900, "stray-late.1.wav", None, T0 + 86_400_000 + 1, 20.0);
        put(&store, &stray, None);
        put(
            &store,
            &rec(901, "x.wav", None, T0 + 2 * 86_400_000 + 2, 20.0),
            None,
        );
        store.put_calls(&legs, "t", "test", 0, T0).unwrap();

        let check = |what: &str| {
            for w in windows() {
                let (kept, whole) = both(&ctx, w);
                assert_eq!(kept, whole, "{what}, window {w:?}");
            }
            both(&ctx, Window::default()).0
        };
        let key = config.calls_digest();
        // Within the grace time of its last calls a day is not kept: it would change with
        // time alone.
        let early = at(&config, T0 + 3 * 86_400_000 + 7_300_000);
        let (kept, whole) = both(&early, Window::default());
        assert_eq!(kept, whole);
        assert!(kept.total.pending > 0);
        assert!(store
            .day_digest(T0 / 86_400_000 + 3, &key)
            .unwrap()
            .is_none());
        assert!(store
            .day_digest(T0 / 86_400_000 + 2, &key)
            .unwrap()
            .is_some());

        let first = check("at first");
        assert!(
            first.total.missing > 0 && first.total.short > 0 && first.orphans >= 2,
            "{:?} {:?}",
            first.total,
            first.orphan_recordings
        );
        assert!(!first.missing.iter().any(|c| c.call == "span.1"));
        assert!(!first.orphan_recordings.iter().any(|u| u.id == 800));
        assert!(first.total.recorded > 100, "{:?}", first.total);
        for day in 0..7 {
            let d = T0 / 86_400_000 + day;
            assert!(
                store.day_digest(d, &key).unwrap().is_some(),
                "day {day} kept"
            );
        }
        let kept = || {
            (0..7)
                .filter(|day| {
                    let d = T0 / 86_400_000 + day;
                    store.day_digest(d, &key).unwrap().is_some()
                })
                .count()
        };

        // The call a stray recording names arrives, two days away from it.
        store
            .put_calls(
                &[leg("late.1", None, T0 + 3 * 86_400_000 + 7_200_000, 60)],
                "t",
                "test",
                0,
                T0,
            )
            .unwrap();
        assert!(kept() < 7, "the days it touches are no longer kept");
        let now = check("a late call record");
        assert_eq!(now.orphans, first.orphans - 1);

        // A recording copied days after its call is cut short: its call's day changes.
        let far = store
            .all()
            .map(|r| r.unwrap())
            .find(|r| r.path.to_string().ends_with("/a1.wav"))
            .unwrap();
        let mut cut = far.clone();
        cut.duration_s = Some(1.0);
        put(&store, &cut, Some(&far));
        let after = check("a far recording changed");
        assert_eq!(after.total.short, now.total.short + 1);

        // A missing call's recording arrives a week later.
        let missing = &after.missing[0];
        put(
            &store,
            &rec(
                950,
                "late.wav",
                Some(&missing.call),
                T0 + 10 * 86_400_000,
                600.0,
            ),
            None,
        );
        let found = check("a missing call's recording arrived");
        assert_eq!(found.total.missing, after.total.missing - 1);

        // A configuration that judges otherwise is not read from the kept digests.
        let mut strict = config.clone();
        strict.calls.short_ratio = 0.0;
        let (kept2, whole2) = both(&at(&strict, ctx.now_ms), Window::default());
        assert_eq!(kept2, whole2);
        assert!(found.total.short > 0 && kept2.total.short == 0);

        // Dropping a day's call records turns its recordings into orphans.
        store.drop_calls_before(T0 + 86_400_000, "t", T0).unwrap();
        let dropped = check("call records dropped");
        assert!(dropped.orphans > found.orphans);
    }
}

#[cfg(test)]
mod races {
    use super::tests_support::*;
    use super::*;

    /// Call records and the recordings that name them arrive at once, on two threads, while a
    /// third reads (and keeps) the days' digests: whatever the interleaving, what is kept in
    /// the end is what matching the whole window gives.
    #[test]
    fn digests_kept_while_calls_and_recordings_race_are_never_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = Config::default();
        const DAY: i64 = 86_400_000;
        let calls: Vec<(String, i64)> = (0..200)
            .map(|i| (format!("race{i}.1"), T0 + (i % 4) * DAY + i * 60_000))
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for chunk in calls.chunks(10) {
                    let legs: Vec<_> = chunk.iter().map(|(id, t)| leg(id, None, *t, 60)).collect();
                    store.put_calls(&legs, "t", "race", 0, T0).unwrap();
                }
            });
            s.spawn(|| {
                for (i, (id, t)) in calls.iter().enumerate() {
                    // Copied in days later: far from its call, named by it.
                    let r = rec(
                        i as u64 + 1,
                        &format!("{id}.wav"),
                        Some(id),
                        t + 5 * DAY,
                        60.0,
                    );
                    put(&store, &r, None);
                }
            });
            s.spawn(|| {
                let ctx = ctx_at(&store, &config, T0 + 40 * DAY);
                for _ in 0..30 {
                    coverage(&ctx, Window::default()).unwrap();
                }
            });
        });
        let ctx = ctx_at(&store, &config, T0 + 40 * DAY);
        let (kept, whole) = both(&ctx, Window::default());
        assert_eq!(kept, whole);
        assert_eq!(kept.total.recorded, 200, "{:?}", kept.total);
        assert_eq!(kept.orphans, 0);
    }
}
