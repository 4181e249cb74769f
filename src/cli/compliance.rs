//! The compliance commands: purge, audit, reports, holds and consent, on the store directly.
//! (While the daemon runs it owns the store; these commands then say so.)

use std::io::Write;
use std::path::PathBuf;

use crate::config::Config;
use crate::metadata::{ConsentSource, ConsentState};
use crate::policy::{fmt_ms, Action, Trigger};
use crate::store::{RecordState, RecordingId, Selection, Store};

use super::{EXIT_ATTENTION, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Configuration file (TOML); keys it leaves out keep their defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Store directory (default: `store.path` from the configuration).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<(Config, Store)> {
        let config = super::load_config(&self.config)?;
        let dir = self
            .store
            .clone()
            .unwrap_or_else(|| config.store.path.clone());
        match Store::open(&dir) {
            Ok(store) => Ok((config, store)),
            Err(crate::store::StoreError::Locked { path }) => anyhow::bail!(
                "the store at {path} is in use, most likely by the running daemon (it purges on \
                 its schedule); stop it to run this command on the store directly"
            ),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the plan with its reasons and counts; delete nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Plan as of this time (RFC 3339) instead of now.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<i64>,
    /// Purge these recordings (by id) at once, unless held or locked.
    #[arg(long = "id")]
    pub ids: Vec<u64>,
    /// Print the decisions as JSON Lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and re-hash every recording against its stored hash; exit 3 on
    /// any break, each named.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Check the chain only, not the recordings.
        #[arg(long)]
        chain_only: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the audit log as JSON Lines.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Entries from this time on: RFC 3339, or an age like 24h, 7d, 12w, 1y.
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// The deletion certificate: purged recordings with hash, time, rule and actor, and the
    /// audit chain head that covers them.
    Purged {
        #[command(flatten)]
        store: StoreArgs,
        /// Purges from this time on: RFC 3339, or an age like 24h, 7d, 12w, 1y.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold on recordings (by id, or by agent, queue, call id, time range).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Recording ids.
        ids: Vec<u64>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        call_id: Option<String>,
        /// Calls that started at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: Option<i64>,
        /// Calls that started before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// The case the hold is for.
        #[arg(long)]
        case: String,
        #[arg(long)]
        reason: String,
    },
    /// Release a hold: its recordings' own deadlines apply again.
    Release {
        #[command(flatten)]
        store: StoreArgs,
        hold: u64,
        #[arg(long)]
        reason: String,
    },
    /// List the holds.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {
    /// Set the consent of recordings; the old state stays in their history, the change is
    /// audited with your user name.
    Set {
        #[command(flatten)]
        store: StoreArgs,
        /// Recording ids, then the state: granted, denied, unknown or not_required.
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
        #[arg(long, value_enum, default_value = "cli")]
        source: SourceArg,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SourceArg {
    Sidecar,
    Ivr,
    Agent,
    Announcement,
    Cli,
    Api,
}

fn parse_time(text: &str) -> Result<i64, String> {
    crate::metadata::rfc3339_ms(text).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// `--since`: RFC 3339, or an age (`24h`, `7d`) before `now_ms`.
fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(t) = crate::metadata::rfc3339_ms(text) {
        return Ok(t);
    }
    let span = crate::policy::Span::parse(text).map_err(|_| {
        anyhow::anyhow!("--since {text:?}: give an RFC 3339 time or an age like 24h, 7d, 1y")
    })?;
    // The age back from now: the same arithmetic as forward, mirrored.
    let ahead = span.after(now_ms).unwrap_or(i64::MAX);
    Ok(now_ms.saturating_sub(ahead.saturating_sub(now_ms)))
}

/// Who is running the command, for the audit log.
fn actor() -> String {
    let uid = rustix::process::getuid().as_raw();
    match std::env::var("USER") {
        Ok(name) if !name.is_empty() => format!("{name} (uid {uid})"),
        _ => format!("uid {uid}"),
    }
}

pub fn purge(args: PurgeArgs) -> anyhow::Result<u8> {
    let (config, store) = args.store.open()?;
    let now = args.now.unwrap_or_else(crate::ingest::now_ms);
    let actor = actor();
    let purger = crate::purge::Purger {
        store: &store,
        config: &config,
        actor: &actor,
        stop: None,
    };
    let mut out = std::io::stdout().lock();
    let (plan, summary) = if !args.ids.is_empty() {
        if args.dry_run {
            let mut plan = Vec::new();
            let mut summary = crate::purge::Summary::default();
            for id in &args.ids {
                let r = store
                    .get(RecordingId(*id))?
                    .ok_or_else(|| anyhow::anyhow!("no recording with id {id}"))?;
                let d = crate::policy::decide(&r, &config.retention, now, Trigger::Manual);
                crate::policy::tally(&mut summary.planned, &d);
                plan.push(crate::purge::Planned::new(&r, d));
            }
            (plan, summary)
        } else {
            let ids: Vec<RecordingId> = args.ids.iter().map(|i| RecordingId(*i)).collect();
            purger.purge_ids(&ids, now)?
        }
    } else {
        let trigger = if purger.under_pressure() {
            tracing::error!(
                min_free_ratio = config.retention.min_free_ratio,
                "disk pressure: free space is below the threshold; purging early what the policy allows"
            );
            Trigger::DiskPressure
        } else {
            Trigger::Schedule
        };
        purger.run(now, trigger, args.dry_run)?
    };
    let verb = if args.dry_run { "would purge" } else { "purge" };
    for p in &plan {
        let d = &p.decision;
        if args.json {
            let line = serde_json::json!({"id": d.id.0, "path": p.path, "action": d.action,
                "rule": d.rule, "scope": d.scope, "reason": d.reason, "explain": d.explain()});
            writeln!(out, "{line}")?;
        } else {
            let what = match d.action {
                Action::Purge => verb,
                _ => "keep",
            };
            writeln!(
                out,
                "{what:<11} {:>8}  {}  ({}; deletes {})",
                d.id.0,
                p.path,
                d.explain(),
                d.scope.as_str()
            )?;
        }
    }
    let c = &summary.planned;
    if !args.json {
        writeln!(
            out,
            "plan at {}: {} to purge, {} kept by retention, {} held, {} locked, {} need review",
            fmt_ms(now),
            c.purge,
            c.keep,
            c.held,
            c.locked,
            c.needs_review
        )?;
        if !args.dry_run {
            writeln!(
                out,
                "purged {} ({} MB freed; {} completed from an interrupted run), refused {}, failed {}",
                summary.purged,
                summary.bytes_freed / 1_000_000,
                summary.completed_from_earlier,
                summary.refused.len(),
                summary.errors.len()
            )?;
            for (id, path, why) in summary.refused.iter().chain(&summary.errors) {
                writeln!(out, "  not purged {id} {path}: {why}")?;
            }
        } else {
            let pending = store.intents()?.len();
            if pending > 0 {
                writeln!(
                    out,
                    "{pending} purges of an interrupted run will be completed first"
                )?;
            }
        }
    }
    Ok(if summary.refused.is_empty() && summary.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ATTENTION
    })
}

pub fn audit(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Verify {
            store,
            chain_only,
            json,
        } => {
            let (_, store) = store.open()?;
            let v = crate::verify::verify(&store, !chain_only, super::cores())?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&v)?)?;
            } else {
                writeln!(
                    out,
                    "audit chain: {} entries, head {} {}: {}",
                    v.entries,
                    v.head_seq,
                    v.head_hash,
                    if v.chain_breaks.is_empty() {
                        "intact"
                    } else {
                        "BROKEN"
                    }
                )?;
                for b in &v.chain_breaks {
                    writeln!(out, "  entry {}: {}", b.seq, b.problem)?;
                }
                if !chain_only {
                    writeln!(
                        out,
                        "recordings: {} intact, {} with problems",
                        v.recordings_ok,
                        v.recording_problems.len()
                    )?;
                    for (id, path, problem) in &v.recording_problems {
                        writeln!(out, "  recording {id} {path}: {problem}")?;
                    }
                }
            }
            Ok(if v.ok() { EXIT_OK } else { EXIT_ATTENTION })
        }
        AuditCommand::Export { store, since } => {
            let (_, store) = store.open()?;
            let since = since
                .map(|s| parse_since(&s, crate::ingest::now_ms()))
                .transpose()?;
            let mut out = std::io::stdout().lock();
            for item in store.audit_entries() {
                let (seq, entry) = item?;
                match entry {
                    Ok(e) if since.is_none_or(|t| e.time_ms >= t) => {
                        writeln!(out, "{}", serde_json::to_string(&e)?)?
                    }
                    Ok(_) => {}
                    Err(why) => anyhow::bail!("audit entry {seq} does not decode: {why}"),
                }
            }
            Ok(EXIT_OK)
        }
    }
}

pub fn report(cmd: ReportCommand) -> anyhow::Result<u8> {
    let ReportCommand::Purged {
        store,
        since,
        format,
    } = cmd;
    let (_, store) = store.open()?;
    let now = crate::ingest::now_ms();
    let since = since.map(|s| parse_since(&s, now)).transpose()?;
    // The audit entry of each purge, for the certificate.
    let mut purge_seq = std::collections::HashMap::new();
    for item in store.audit_entries() {
        if let (seq, Ok(e)) = item? {
            if e.action == "purge" {
                if let Some(id) = e.recording {
                    purge_seq.insert(id, seq);
                }
            }
        }
    }
    let head = store.audit_head()?;
    let mut rows = Vec::new();
    for r in store.in_state(RecordState::Purged) {
        let r = r?;
        let Some(t) = &r.tombstone else { continue };
        if since.is_some_and(|s| t.deleted_ms < s) {
            continue;
        }
        rows.push(serde_json::json!({
            "id": r.id.0, "path": r.path, "sha256": r.sha256, "size": r.size,
            "duration_s": r.duration_s, "deleted_at": fmt_ms(t.deleted_ms), "rule": t.rule,
            "reason": t.reason, "actor": t.actor, "scope": t.scope,
            "sidecar_deleted": t.sidecar_deleted, "audit_seq": purge_seq.get(&r.id.0),
        }));
    }
    rows.sort_by_key(|row| row["deleted_at"].as_str().unwrap_or_default().to_string());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "report": "purged", "generated_at": fmt_ms(now),
                "since": since.map(fmt_ms), "count": rows.len(),
                "audit_chain_head": {"seq": head.seq, "sha256": head.hash},
                "recordings": rows,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Format::Csv => {
            let columns = [
                "id",
                "path",
                "sha256",
                "size",
                "duration_s",
                "deleted_at",
                "rule",
                "reason",
                "actor",
                "scope",
                "audit_seq",
            ];
            writeln!(
                out,
                "{},chain_head_seq,chain_head_sha256",
                columns.join(",")
            )?;
            for row in &rows {
                let cells: Vec<String> = columns.iter().map(|c| csv_cell(&row[*c])).collect();
                writeln!(out, "{},{},{}", cells.join(","), head.seq, head.hash)?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:>8}  {:<20}  {:<14}  {:<16}  {:<64}  path",
                "id", "deleted at", "rule", "actor", "sha256"
            )?;
            for row in &rows {
                writeln!(
                    out,
                    "{:>8}  {:<20}  {:<14}  {:<16}  {:<64}  {}",
                    row["id"],
                    row["deleted_at"].as_str().unwrap_or_default(),
                    row["rule"].as_str().unwrap_or_default(),
                    row["actor"].as_str().unwrap_or_default(),
                    row["sha256"].as_str().unwrap_or_default(),
                    row["path"].as_str().unwrap_or_default()
                )?;
            }
            writeln!(
                out,
                "{} purged recordings; covered by audit chain head {} {}",
                rows.len(),
                head.seq,
                head.hash
            )?;
        }
    }
    Ok(EXIT_OK)
}

fn csv_cell(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn hold(cmd: HoldCommand) -> anyhow::Result<u8> {
    let now = crate::ingest::now_ms();
    let mut out = std::io::stdout().lock();
    match cmd {
        HoldCommand::Add {
            store,
            ids,
            agent,
            queue,
            call_id,
            from,
            until,
            case,
            reason,
        } => {
            let (_, store) = store.open()?;
            let selection = Selection {
                ids,
                agent,
                queue,
                call_id,
                from_ms: from,
                until_ms: until,
            };
            let hold = store.add_hold(&case, &reason, &actor(), selection, now)?;
            writeln!(
                out,
                "hold {} (case {}) placed on {} recordings",
                hold.id,
                hold.case,
                hold.recordings.len()
            )?;
        }
        HoldCommand::Release {
            store,
            hold,
            reason,
        } => {
            let (_, store) = store.open()?;
            let hold = store.release_hold(hold, &actor(), &reason, now)?;
            writeln!(
                out,
                "hold {} (case {}) released from {} recordings",
                hold.id,
                hold.case,
                hold.recordings.len()
            )?;
        }
        HoldCommand::List { store, json } => {
            let (_, store) = store.open()?;
            for h in store.holds()? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&h)?)?;
                } else {
                    writeln!(
                        out,
                        "{:>6}  case {:<16} {:>6} recordings  added {} by {}  {}",
                        h.id,
                        h.case,
                        h.recordings.len(),
                        fmt_ms(h.added_ms),
                        h.actor,
                        match &h.released {
                            Some(r) => format!("released {} by {}", fmt_ms(r.at_ms), r.actor),
                            None => "in force".into(),
                        }
                    )?;
                }
            }
        }
    }
    Ok(EXIT_OK)
}

pub fn consent(cmd: ConsentCommand) -> anyhow::Result<u8> {
    let ConsentCommand::Set {
        store,
        mut args,
        source,
        note,
    } = cmd;
    let state_text = args.pop().unwrap_or_default();
    let state: ConsentState = serde_json::from_value(serde_json::Value::String(state_text.clone()))
        .map_err(|_| {
            anyhow::anyhow!(
                "{state_text:?} is not a consent state: granted, denied, unknown or not_required"
            )
        })?;
    let ids = args
        .iter()
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("{a:?} is not a recording id"))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    let source = match source {
        SourceArg::Sidecar => ConsentSource::Sidecar,
        SourceArg::Ivr => ConsentSource::Ivr,
        SourceArg::Agent => ConsentSource::Agent,
        SourceArg::Announcement => ConsentSource::Announcement,
        SourceArg::Cli => ConsentSource::Cli,
        SourceArg::Api => ConsentSource::Api,
    };
    let (config, store) = store.open()?;
    let now = crate::ingest::now_ms();
    let mut out = std::io::stdout().lock();
    for id in ids {
        let Some(r) = store.get(RecordingId(id))? else {
            anyhow::bail!("no recording with id {id}");
        };
        let law = crate::consent::law(r.metadata.as_ref(), &config.consent);
        let record = crate::consent::ConsentRecord {
            state,
            source,
            time_ms: Some(now),
            recorded_ms: now,
            actor: actor(),
            note: note.clone(),
        };
        store.set_consent(RecordingId(id), record, law, now)?;
        writeln!(
            out,
            "recording {id}: consent {state_text} ({})",
            law.as_str()
        )?;
    }
    Ok(EXIT_OK)
}
