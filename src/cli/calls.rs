//! `callwarden calls`: load the PBX's call records (CDRs), list the calls with their recordings
//! and verdicts, show one. Reading and parsing files happens here, on the caller's side; the
//! rows go to the daemon (or the store) in batches, each one audited.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::calls::CallView;
use crate::cdr::{CallRecord, Column, Template, Zone};
use crate::policy::fmt_ms;

use super::admin::Output;
use super::client::Access;
use super::table::{pct, Table};
use super::{EXIT_BAD_INPUT, EXIT_OK};

#[derive(Debug, clap::Subcommand)]
pub enum CallsCommand {
    /// Load call records from files: Asterisk's Master.csv (cdr_csv), cdr_custom with
    /// --columns, FreeSWITCH's mod_cdr_csv files, or mod_json_cdr files (one JSON per call; a
    /// folder of them). A row already loaded is not loaded twice; a row that cannot be read is
    /// named with its line and skipped (exit 2).
    Import(ImportArgs),
    /// The calls that started in a window, with their recordings and verdicts (recorded,
    /// short, missing, pending, not_required), and the recordings that match no call.
    List(ListArgs),
    /// One call: its call records, every recording with its score and how it was matched, its
    /// coverage and consent.
    Show(ShowArgs),
}

/// The layout of the files given to `calls import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Asterisk cdr_csv (Master.csv): 18 columns, or 21 with newcdrcolumns.
    AsteriskCsv,
    /// Asterisk cdr_custom, or any CSV: the columns named by --columns.
    Custom,
    /// FreeSWITCH mod_cdr_csv, default template.
    FreeswitchCsv,
    /// FreeSWITCH mod_json_cdr: one JSON document per file.
    FreeswitchJson,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub access: Access,
    /// CDR files (for freeswitch-json also folders of .json files).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The files' layout (default: freeswitch-json for .json files, else asterisk-csv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The CSV columns in order, for --format custom (calldate, clid, src, dst, dcontext,
    /// channel, dstchannel, lastapp, duration, billsec, disposition, uniqueid, linkedid,
    /// userfield, ...; a name callwarden does not use is skipped).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub when: super::admin::When,
    /// Calls that started since: RFC 3339, or an age like 24h, 7d, 12w, 1y.
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Calls that started before: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Only calls in this state.
    #[arg(long, value_parser = ["recorded", "short", "missing", "pending", "not_required"])]
    pub state: Option<String>,
    /// Only this agent's calls (from the recordings' sidecars).
    #[arg(long)]
    pub agent: Option<String>,
    /// Only calls through this queue (the recordings', else the call records').
    #[arg(long)]
    pub queue: Option<String>,
    /// Only calls in this direction (see calls.direction_by_context).
    #[arg(long, value_parser = ["inbound", "outbound", "internal"])]
    pub direction: Option<String>,
    /// Show at most this many (the count of all that match is printed after).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub access: Access,
    /// The call: its key (Asterisk linkedid) or any leg's id (uniqueid, uuid).
    pub call: String,
    #[command(flatten)]
    pub output: Output,
}

pub fn calls(cmd: CallsCommand) -> anyhow::Result<u8> {
    match cmd {
        CallsCommand::Import(args) => import(args),
        CallsCommand::List(args) => list(args),
        CallsCommand::Show(args) => show(args),
    }
}

/// Rows sent to the store in one request (a request is at most 1 MiB).
const BATCH: usize = 1000;

fn import(args: ImportArgs) -> anyhow::Result<u8> {
    let config = args.access.load()?;
    let zone = Zone::get(&config.calls.timezone).map_err(anyhow::Error::msg)?;
    let template = match args.format {
        Some(Format::Custom) => {
            if args.columns.is_empty() {
                anyhow::bail!("--format custom needs --columns (the CSV's column names, in order)");
            }
            let columns: Vec<Column> = args
                .columns
                .iter()
                .map(|c| {
                    serde_json::from_value(serde_json::Value::String(c.trim().to_string()))
                        .unwrap_or(Column::Ignore)
                })
                .collect();
            Some(Template(columns))
        }
        _ if !args.columns.is_empty() => {
            anyhow::bail!("--columns is for --format custom only")
        }
        Some(Format::AsteriskCsv) => Some(Template::asterisk_csv()),
        Some(Format::FreeswitchCsv) => Some(Template::freeswitch_csv()),
        Some(Format::FreeswitchJson) => None,
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let mut bad = 0usize;
    for file in &args.files {
        let json = args.format == Some(Format::FreeswitchJson)
            || (args.format.is_none()
                && (file.is_dir() || file.extension().is_some_and(|e| e == "json")));
        let (legs, rejected) = if json {
            read_json(file, config.calls.max_line_bytes.max(1 << 20))
        } else {
            let template = template.clone().unwrap_or_else(Template::asterisk_csv);
            read_csv(file, &template, &zone, config.calls.max_line_bytes)
        };
        let source = file.display().to_string();
        for (place, why) in &rejected {
            eprintln!("callwarden: {source}{place}: {why}");
        }
        bad += rejected.len();
        let mut total = crate::store::CallsStored::default();
        let chunks: Vec<&[CallRecord]> = legs.chunks(BATCH).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            // The file's rejected rows are counted once, with its first batch.
            let rejected_here = if i == 0 { rejected.len() } else { 0 };
            let (n, _) = args
                .access
                .calls_import(source.clone(), chunk.to_vec(), rejected_here)?;
            total.new += n.new;
            total.changed += n.changed;
            total.same += n.same;
        }
        if legs.is_empty() && !rejected.is_empty() {
            args.access
                .calls_import(source.clone(), Vec::new(), rejected.len())?;
        }
        writeln!(
            out,
            "{source}: {} new, {} changed, {} already loaded, {} rejected",
            total.new,
            total.changed,
            total.same,
            rejected.len()
        )?;
    }
    Ok(if bad > 0 { EXIT_BAD_INPUT } else { EXIT_OK })
}

use crate::cdr_follow::Rejected;

/// The rows of a CSV file, line by line (a line longer than `max_line` skipped unread).
fn read_csv(
    path: &Path,
    template: &Template,
    zone: &Zone,
    max_line: u64,
) -> (Vec<CallRecord>, Rejected) {
    let file = match crate::files::open_regular(path, crate::files::Follow::Symlinks) {
        Ok((f, _)) => f,
        Err(e) => return (Vec::new(), vec![(String::new(), e.to_string())]),
    };
    let mut reader = BufReader::new(file);
    match crate::cdr_follow::parse_csv(&mut reader, 1, template, zone, max_line, true) {
        Ok((legs, rejected, _, _)) => (legs, rejected),
        Err(e) => (Vec::new(), vec![(String::new(), format!("read: {e}"))]),
    }
}

/// FreeSWITCH JSON CDRs: a file, or every .json file in a folder (in name order).
fn read_json(path: &Path, max_bytes: u64) -> (Vec<CallRecord>, Rejected) {
    let mut legs = Vec::new();
    let mut rejected = Vec::new();
    let files: Vec<PathBuf> = if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut f: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect();
                f.sort();
                f
            }
            Err(e) => {
                rejected.push((String::new(), e.to_string()));
                return (legs, rejected);
            }
        }
    } else {
        vec![path.to_path_buf()]
    };
    for f in files {
        let place = if f == path {
            String::new()
        } else {
            format!(
                "/{}",
                f.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )
        };
        match crate::cdr_follow::read_json_cdr(&f, crate::files::Follow::Symlinks, max_bytes) {
            Ok(leg) => legs.push(leg),
            Err(why) => rejected.push((place, why)),
        }
    }
    (legs, rejected)
}

fn list(args: ListArgs) -> anyhow::Result<u8> {
    let now = args.when.now();
    let window = super::admin::window(Some(&args.since), args.until.as_deref(), now)?;
    let named = |s: &Option<String>| s.clone().map(serde_json::Value::String);
    let filter = crate::query::CallFilter {
        state: named(&args.state).map(serde_json::from_value).transpose()?,
        agent: args.agent.clone(),
        queue: args.queue.clone(),
        direction: named(&args.direction)
            .map(serde_json::from_value)
            .transpose()?,
    };
    let (page, _) = args.access.calls(window, filter, args.limit)?;
    let mut out = std::io::stdout().lock();
    if args.output.json {
        for c in &page.calls {
            writeln!(out, "{}", super::json::line(&Line::of(c))?)?;
        }
        return Ok(EXIT_OK);
    }
    let mut t = Table::new(&[
        "call",
        "started",
        "billable s",
        "state",
        "coverage",
        "recordings",
        "agent",
        "queue",
        "src",
        "dst",
    ])
    .numeric(&[2, 4, 5]);
    for c in &page.calls {
        let first = c.legs.first();
        t.push(vec![
            c.call.clone(),
            fmt_ms(c.start_ms),
            format!("{:.0}", c.billable_s),
            c.state.as_str().replace('_', " "),
            pct(c.coverage),
            c.recordings.len().to_string(),
            c.agent.clone().unwrap_or_else(|| "-".into()),
            c.queue.clone().unwrap_or_else(|| "-".into()),
            first.map_or("-".into(), |l| l.src.clone()),
            first.map_or("-".into(), |l| l.dst.clone()),
        ]);
    }
    if args.output.csv {
        write!(out, "{}", t.csv())?;
        return Ok(EXIT_OK);
    }
    write!(out, "{}", t.text())?;
    if page.total > page.calls.len() {
        writeln!(
            out,
            "({} of {} calls shown; --limit for more)",
            page.calls.len(),
            page.total
        )?;
    }
    if !page.orphans.is_empty() {
        writeln!(out, "\n{} recordings match no call:", page.orphans.len())?;
        for u in &page.orphans {
            writeln!(out, "  {:>6}  {}  {}", u.id, fmt_ms(u.started_ms), u.path)?;
        }
    }
    if !page.ambiguous.is_empty() {
        writeln!(
            out,
            "\n{} recordings match several calls:",
            page.ambiguous.len()
        )?;
        for u in &page.ambiguous {
            writeln!(
                out,
                "  {:>6}  {}  {}  ({})",
                u.id,
                fmt_ms(u.started_ms),
                u.path,
                u.candidates.join(", ")
            )?;
        }
    }
    Ok(EXIT_OK)
}

/// A call as one JSON line: its verdict, its legs and its recordings.
#[derive(serde::Serialize)]
struct Line<'a> {
    call: &'a str,
    started: String,
    #[serde(flatten)]
    view: &'a CallView,
}

impl<'a> Line<'a> {
    fn of(c: &'a CallView) -> Line<'a> {
        Line {
            call: &c.call,
            started: fmt_ms(c.start_ms),
            view: c,
        }
    }
}

fn show(args: ShowArgs) -> anyhow::Result<u8> {
    let (c, _) = args.access.call_show(args.call.clone())?;
    let mut out = std::io::stdout().lock();
    if args.output.json {
        writeln!(out, "{}", super::json::pretty(&Line::of(&c))?)?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "call {}", c.call)?;
    writeln!(
        out,
        "  state      {}; {} to {}; billable {:.0} s; coverage {}; {}",
        c.state.as_str().replace('_', " "),
        fmt_ms(c.start_ms),
        fmt_ms(c.end_ms),
        c.billable_s,
        pct(c.coverage),
        if c.must_record {
            "must be recorded"
        } else {
            "no recording required"
        }
    )?;
    if let Some(lawful) = c.lawful {
        writeln!(
            out,
            "  consent    {}",
            if lawful {
                "recorded with the consent its law needs"
            } else {
                "recorded WITHOUT the consent its law needs"
            }
        )?;
    }
    writeln!(out, "  legs")?;
    for l in &c.legs {
        writeln!(
            out,
            "    {}  {}  {} -> {}  {}  billsec {}  context {}  channel {}",
            l.id,
            fmt_ms(l.start_ms),
            l.src,
            l.dst,
            l.disposition.as_str(),
            l.billsec,
            l.context,
            l.channel
        )?;
    }
    writeln!(out, "  recordings")?;
    if c.recordings.is_empty() {
        writeln!(out, "    none")?;
    }
    for r in &c.recordings {
        writeln!(
            out,
            "    {:>6}  {}  score {}  {:.1} s  consent {}  matched by {}{}  {}",
            r.id,
            r.state.as_str(),
            r.score.map_or("-".into(), |s| s.to_string()),
            r.duration_s.unwrap_or(0.0),
            r.consent
                .map_or("none".to_string(), |s| serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()),
            serde_json::to_value(r.matched_by)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            if r.on_demand { ", on demand" } else { "" },
            r.path
        )?;
    }
    Ok(EXIT_OK)
}
