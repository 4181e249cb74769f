//! The compliance commands: purge, audit, reports, holds and consent, on the store directly.
//! (While the daemon runs it owns the store; these commands then say so.)

use std::io::Write;

use crate::metadata::{ConsentSource, ConsentState};
use crate::policy::{fmt_ms, Action};
use crate::query::Request;
use crate::store::Selection;

use super::admin::{Access, Answer};
use super::args::{parse_since, parse_time};
use super::{EXIT_ATTENTION, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub store: Access,
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
        store: Access,
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
        store: Access,
        /// Entries from this time on: RFC 3339, or an age like 24h, 7d, 12w, 1y.
        #[arg(long)]
        since: Option<String>,
        /// Entries asked for at a time (the log comes in pages, so a long one never has to fit
        /// in one answer).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        page_size: u64,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Consent coverage by day, queue and agent, and the calls lacking consent evidence
    /// where their law needs it.
    Consent(super::admin::ReportArgs),
    /// Counts by state and rule, what expires in the next 30 days, and what is overdue (each
    /// explained).
    Retention(super::admin::ReportArgs),
    /// Legal holds, in force and released.
    Holds(super::admin::ReportArgs),
    /// The deletion certificate: purged recordings with hash, time, rule and actor, and the
    /// audit chain head that covers them.
    Purged(super::admin::ReportArgs),
    /// Score distribution, trend, grades, flags and the worst calls.
    Quality(super::admin::ReportArgs),
    /// Calls (from the PBX's call records) recorded, lawfully, analysed, on demand, missing and
    /// short, by day, agent and queue; the missing and short calls and the orphan recordings.
    Coverage(super::admin::ReportArgs),
    /// Card data: recordings holding DTMF digit bursts where PCI DSS applies (`[pci]`), by
    /// queue and agent (counts and times only: the digits are never kept).
    Pci(super::admin::ReportArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold on recordings (by id, or by agent, queue, call id, time range).
    Add {
        #[command(flatten)]
        store: Access,
        /// Recording ids.
        ids: Vec<u64>,
        /// Every recording of this agent (with the time range, if given).
        #[arg(long)]
        agent: Option<String>,
        /// Every recording of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Every recording of this call (the sidecar's `call_id`).
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
        /// Why the hold is placed (kept in the hold and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Release a hold: its recordings' own deadlines apply again.
    Release {
        #[command(flatten)]
        store: Access,
        /// The hold's id (`callwarden hold list`).
        hold: u64,
        /// Why the hold is released (kept in the hold and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// List the holds.
    List {
        #[command(flatten)]
        store: Access,
        #[command(flatten)]
        output: super::admin::Output,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {
    /// Set the consent of recordings; the old state stays in their history, the change is
    /// audited with your user name.
    Set {
        #[command(flatten)]
        store: Access,
        /// Recording ids, then the state: granted, denied, unknown or not_required.
        #[arg(required = true, num_args = 2..)]
        args: Vec<String>,
        /// Where the consent comes from: the PBX's sidecar, an IVR prompt, an agent, or this
        /// command (cli).
        #[arg(long, value_enum, default_value = "cli")]
        source: SourceArg,
        /// A note kept with the change (a ticket, who gave consent).
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

pub fn purge(args: PurgeArgs) -> anyhow::Result<u8> {
    let (outcome, _) = args.store.purge(args.ids.clone(), args.dry_run, args.now)?;
    let crate::query::PurgeOutcome {
        now_ms: now,
        plan,
        summary,
        pending_intents,
        ..
    } = *outcome;
    let mut out = std::io::stdout().lock();
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
        } else if pending_intents > 0 {
            writeln!(
                out,
                "{pending_intents} purges of an interrupted run will be completed first"
            )?;
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
            let (v, _) = store.verify(chain_only)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", super::json::line(&v)?)?;
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
                if !v.store_problems.is_empty() {
                    writeln!(
                        out,
                        "store: DAMAGED, {} items cannot be read (restore the store and its \
                         anchor from a backup: docs/compliance.md, \"A damaged store\")",
                        v.store_problems.len()
                    )?;
                    for p in &v.store_problems {
                        writeln!(out, "  {p}")?;
                    }
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
        AuditCommand::Export {
            store,
            since,
            page_size,
        } => {
            let since_ms = since
                .map(|s| parse_since(&s, crate::ingest::now_ms()))
                .transpose()?;
            let limit = usize::try_from(page_size).unwrap_or(usize::MAX);
            let page = |after_seq| Request::AuditExport {
                since_ms,
                after_seq,
                limit: Some(limit),
            };
            let mut out = std::io::stdout().lock();
            store.ask_pages(
                page(None),
                |answer| match answer {
                    // Exactly a page: there may be more (a daemon that does not page sends
                    // everything, more than a page, and is asked nothing else).
                    Answer::Audit(entries) if entries.len() == limit => {
                        Some(page(entries.last().map(|e| e.seq)))
                    }
                    _ => None,
                },
                |answer| {
                    let Answer::Audit(entries) = answer else {
                        anyhow::bail!("the daemon answered something else than audit entries");
                    };
                    for e in &entries {
                        writeln!(out, "{}", serde_json::to_string(e)?)?;
                    }
                    Ok(())
                },
            )?;
            Ok(EXIT_OK)
        }
    }
}

pub fn report(cmd: ReportCommand) -> anyhow::Result<u8> {
    use crate::query::ReportKind;
    let (kind, args) = match cmd {
        ReportCommand::Consent(a) => (ReportKind::Consent, a),
        ReportCommand::Retention(a) => (ReportKind::Retention, a),
        ReportCommand::Holds(a) => (ReportKind::Holds, a),
        ReportCommand::Purged(a) => (ReportKind::Purged, a),
        ReportCommand::Quality(a) => (ReportKind::Quality, a),
        ReportCommand::Coverage(a) => (ReportKind::Coverage, a),
        ReportCommand::Pci(a) => (ReportKind::Pci, a),
    };
    super::admin::report(kind, args)
}

pub fn hold(cmd: HoldCommand) -> anyhow::Result<u8> {
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
            let selection = Selection {
                ids,
                agent,
                queue,
                call_id,
                from_ms: from,
                until_ms: until,
            };
            let (hold, _) = store.hold_add(selection, case, reason)?;
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
            let (hold, _) = store.hold_release(hold, reason)?;
            writeln!(
                out,
                "hold {} (case {}) released from {} recordings",
                hold.id,
                hold.case,
                hold.recordings.len()
            )?;
        }
        HoldCommand::List { store, output } => {
            let (holds, _) = store.holds()?;
            if output.json {
                for h in &holds {
                    writeln!(out, "{}", super::json::line(h)?)?;
                }
            } else if output.csv {
                write!(out, "{}", super::reports::holds_table(&holds).csv())?;
            } else {
                write!(out, "{}", super::reports::holds_table(&holds).text())?;
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
    let (changes, _) = store.consent_set(ids, state, source, note)?;
    let mut out = std::io::stdout().lock();
    for c in changes {
        writeln!(out, "recording {}: consent {state_text} ({})", c.id, c.law)?;
    }
    Ok(EXIT_OK)
}
