//! The admin and compliance commands that ask questions: status, list, worst, show, kpi and the
//! reports; and the transport they share with holds and consent: the daemon's control socket
//! when it answers, else the store opened directly. Same request, same answer, one code path
//! ([`crate::query::handle`]).

use std::io::Write;
use std::path::PathBuf;

use crate::kpi::{GroupBy, Kpi, KpiRow};
use crate::policy::fmt_ms;
pub use crate::query::Answer;
use crate::query::{self, ListQuery, Report, Shown, Sort, Status, Window};
use crate::record::RecordState;
use crate::summary::Summary;

use super::table::{num, pct, Table};
use super::EXIT_OK;

pub use super::client::Access;

/// `--json` and `--csv`, for every listing.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    /// JSON (JSON Lines for lists).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header line.
    #[arg(long)]
    pub csv: bool,
}

/// When the question is asked: `--now` (RFC 3339) for ages like `--since 7d`.
#[derive(Debug, Clone, clap::Args)]
pub struct When {
    /// Resolve ages (`--since 7d`) from this time (RFC 3339) instead of now.
    #[arg(long, value_parser = super::args::parse_time)]
    pub now: Option<i64>,
}

impl When {
    pub(super) fn now(&self) -> i64 {
        self.now.unwrap_or_else(crate::ingest::now_ms)
    }
}

/// `reload` asks the running daemon and nothing else: it takes no `--store`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The daemon's control socket (default: `control.socket`).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

pub fn reload(args: ReloadArgs) -> anyhow::Result<u8> {
    let access = Access {
        config: args.config,
        store: None,
        socket: args.socket,
    };
    let (what, _) = access.reload()?;
    writeln!(std::io::stdout().lock(), "{what}")?;
    Ok(EXIT_OK)
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub when: When,
    /// Calls that started since: RFC 3339, or an age like 24h, 7d, 12w, 1y.
    #[arg(long)]
    pub since: Option<String>,
    /// Calls that started before: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
    /// Calls of this agent (the sidecar's `agent`).
    #[arg(long)]
    pub agent: Option<String>,
    /// Calls of this queue (the sidecar's `queue`).
    #[arg(long)]
    pub queue: Option<String>,
    /// Calls of this quality grade.
    #[arg(long, value_parser = ["good", "fair", "poor", "bad"])]
    pub grade: Option<String>,
    /// A flag code (low_snr, clipping, purge_refused, …).
    #[arg(long)]
    pub flag: Option<String>,
    /// A consent state, or `none` for calls with no consent recorded.
    #[arg(long, value_parser = ["granted", "denied", "unknown", "not_required", "none"])]
    pub consent: Option<String>,
    /// Recordings in this state.
    #[arg(long, value_parser = ["analysed", "too_short", "failed", "missing", "purged"])]
    pub state: Option<String>,
    /// score: worst first; time: newest first; duration: longest first.
    #[arg(long, default_value = "time", value_parser = ["score", "time", "duration"])]
    pub sort: String,
    /// Show at most this many (the count of all that match is printed after).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, clap::Args)]
pub struct WorstArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub when: When,
    /// Calls that started since: RFC 3339, or an age.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Show at most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub access: Access,
    /// A recording id, or the path it was ingested from (relative to the working directory).
    pub target: std::ffi::OsString,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct KpiArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub range: KpiRange,
    /// One row per day, ISO week, agent or queue (default: the whole window).
    #[arg(long, value_parser = ["day", "week", "agent", "queue"])]
    pub by: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub when: When,
    /// Since: RFC 3339, or an age like 90d (calls started since; for `purged`, deleted since).
    #[arg(long)]
    pub since: Option<String>,
    /// Until: RFC 3339, or an age (calls started before; for `purged`, deleted before).
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    pub out: ReportOut,
}

/// The calls a KPI table covers (the last 30 days unless told).
#[derive(Debug, clap::Args)]
pub struct KpiRange {
    #[command(flatten)]
    pub when: When,
    /// Calls that started since: RFC 3339, or an age.
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// Calls that started before: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
}

impl KpiRange {
    /// The window, and the time it was asked at.
    pub(super) fn window(&self) -> anyhow::Result<(Window, i64)> {
        let now = self.when.now();
        Ok((window(Some(&self.since), self.until.as_deref(), now)?, now))
    }
}

/// How and where a report is written.
#[derive(Debug, clap::Args)]
pub struct ReportOut {
    /// table for a terminal, json, csv, or html (one self-contained file with charts).
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Write the report here instead of to standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

fn typed<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|e| anyhow::anyhow!("{text:?}: {e}"))
}

pub(super) fn window(since: Option<&str>, until: Option<&str>, now: i64) -> anyhow::Result<Window> {
    Ok(Window {
        from_ms: since
            .map(|s| super::args::parse_since(s, now))
            .transpose()?,
        until_ms: until
            .map(|s| super::args::parse_since(s, now))
            .transpose()?,
    })
}

pub fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let (s, _) = args.access.status()?;
    print_document(&*s, &args.output, status_text)?;
    Ok(EXIT_OK)
}

/// One answer as pretty JSON, as `field,value` CSV, or as the text `human` makes of it.
fn print_document<T: serde::Serialize>(
    doc: &T,
    output: &Output,
    human: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output.json {
        writeln!(out, "{}", super::json::pretty(doc)?)?;
    } else if output.csv {
        write!(out, "{}", fields(&serde_json::to_value(doc)?).csv())?;
    } else {
        write!(out, "{}", human(doc))?;
    }
    Ok(())
}

/// A JSON document as `field,value` rows, nested fields joined with dots (`record.consent.state`,
/// `audit.0.action`): one table for any answer.
fn fields(value: &serde_json::Value) -> Table {
    fn walk(prefix: &str, v: &serde_json::Value, t: &mut Table) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    walk(&key(k), v, t);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&key(&i.to_string()), v, t);
                }
            }
            serde_json::Value::Null => t.push(vec![prefix.to_string(), String::new()]),
            serde_json::Value::String(text) => t.push(vec![prefix.to_string(), text.clone()]),
            other => t.push(vec![prefix.to_string(), other.to_string()]),
        }
    }
    let mut t = Table::new(&["field", "value"]);
    walk("", value, &mut t);
    t
}

fn status_text(s: &Status) -> String {
    let mut t = String::new();
    use std::fmt::Write as _;
    match &s.daemon {
        Some(d) => {
            let _ = writeln!(
                t,
                "daemon    running (pid {}, callwarden {}, since {})",
                d.pid,
                d.version,
                fmt_ms(d.started_ms)
            );
            let _ = writeln!(
                t,
                "queue     {} waiting or in analysis, {} settling; this run: {} stored, {} too short, {} failed, {} purged",
                d.queue_depth, d.settling, d.stored, d.too_short, d.failed, d.purged
            );
        }
        None => {
            let _ = writeln!(t, "daemon    not running (answered from the store)");
        }
    }
    let _ = writeln!(t, "store     {} ({} bytes)", s.store, s.store_bytes);
    for r in &s.roots {
        let _ = writeln!(t, "root      {} ({} free)", r.path, pct(r.free_ratio));
    }
    let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(t, "records   {}", counts.join(", "));
    let _ = writeln!(t, "holds     {} in force", s.holds_in_force);
    let _ = writeln!(
        t,
        "purge     last {}",
        s.last_purge.as_deref().unwrap_or("never")
    );
    let _ = writeln!(
        t,
        "audit     {} entries, head {}",
        s.audit_length, s.audit_head
    );
    if let Some(x) = &s.export {
        let _ = writeln!(
            t,
            "export    site {}: {} events waiting, {} sent (bound {}){}",
            x.site
                .as_deref()
                .unwrap_or("(export off in this configuration)"),
            x.waiting,
            x.acknowledged,
            x.max_backlog,
            if x.overflowed {
                "; overflowed: the site is sent again whole once the backlog drains"
            } else {
                ""
            }
        );
    }
    if let Some(d) = &s.daemon {
        if let Some(why) = &d.export_refused {
            let _ = writeln!(t, "export    REFUSED: {why}");
        } else if let Some(why) = &d.export_error {
            let _ = writeln!(t, "export    failing, retried: {why}");
        }
    }
    t
}

fn summaries_table(rows: &[Summary]) -> Table {
    let mut t = Table::new(&[
        "id", "started", "duration", "score", "grade", "agent", "queue", "consent", "flags", "path",
    ])
    .numeric(&[0, 2, 3]);
    for s in rows {
        t.push(vec![
            s.id.to_string(),
            fmt_ms(s.started_ms),
            num(s.duration_s, 1),
            s.score.map_or_else(|| "-".into(), |v| v.to_string()),
            // A recording with no grade says why: failed, too short, purged.
            match (s.grade, s.state) {
                (Some(g), _) => g.as_str().into(),
                (None, RecordState::Analysed) => "-".into(),
                (None, state) => state.as_str().replace('_', " "),
            },
            s.agent.clone().unwrap_or_else(|| "-".into()),
            s.queue.clone().unwrap_or_else(|| "-".into()),
            s.consent.map_or_else(|| "none".into(), |c| enum_text(&c)),
            match (&s.error, s.flags.is_empty()) {
                (Some(code), true) => format!("error: {code}"),
                (Some(code), false) => format!("error: {code} {}", s.flags.join(" ")),
                (None, true) => "-".into(),
                (None, false) => s.flags.join(" "),
            },
            s.path.to_string(),
        ]);
    }
    t
}

/// A serde enum's name.
fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn print_summaries(rows: &[Summary], output: &Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output.json {
        for s in rows {
            writeln!(out, "{}", super::json::line(s)?)?;
        }
    } else if output.csv {
        write!(out, "{}", summaries_table(rows).csv())?;
    } else {
        write!(out, "{}", summaries_table(rows).text())?;
    }
    Ok(())
}

pub fn list(args: ListArgs) -> anyhow::Result<u8> {
    let now = args.when.now();
    let q = ListQuery {
        window: window(args.since.as_deref(), args.until.as_deref(), now)?,
        agent: args.agent,
        queue: args.queue,
        grade: args.grade.as_deref().map(typed).transpose()?,
        flag: args.flag,
        consent: args.consent.as_deref().map(typed).transpose()?,
        state: args.state.as_deref().map(typed).transpose()?,
        sort: typed(&args.sort)?,
        limit: args.limit,
    };
    let (rows, _) = args.access.list(q)?;
    print_summaries(&rows, &args.output)?;
    Ok(EXIT_OK)
}

pub fn worst(args: WorstArgs) -> anyhow::Result<u8> {
    let now = args.when.now();
    let q = ListQuery {
        window: window(Some(&args.since), None, now)?,
        sort: Sort::Score,
        limit: args.limit,
        ..ListQuery::default()
    };
    let (rows, _) = args.access.list(q)?;
    print_summaries(&rows, &args.output)?;
    Ok(EXIT_OK)
}

pub fn show(args: ShowArgs) -> anyhow::Result<u8> {
    let target = crate::query::Target::from_arg(&args.target)?;
    let (shown, _) = args.access.show(target)?;
    print_document(&*shown, &args.output, show_text)?;
    Ok(EXIT_OK)
}

fn show_text(s: &Shown) -> String {
    use std::fmt::Write as _;
    let r = &s.record;
    let mut t = String::new();
    let _ = writeln!(t, "recording {}  {}", r.id.0, r.path);
    if let Some(twin) = r.twin {
        let _ = writeln!(
            t,
            "  copy of    recording {} (the same bytes, on disk when this one was stored)",
            twin.0
        );
    }
    let _ = writeln!(
        t,
        "  state      {}; started {}; ingested {}; {} bytes; sha256 {}",
        r.state.as_str(),
        fmt_ms(r.started_ms),
        fmt_ms(r.ingested_ms),
        r.size,
        r.sha256
    );
    if let Some(m) = &r.metadata {
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "  call       id {}, agent {}, queue {}, caller {}, callee {}, direction {}",
            field(&m.call_id),
            field(&m.agent),
            field(&m.queue),
            field(&m.caller),
            field(&m.callee),
            m.direction.map_or_else(|| "-".into(), |d| enum_text(&d))
        );
    }
    if let Some(rep) = &r.report {
        let q = &rep.quality;
        let flags: Vec<&str> = q.flags.iter().map(|f| f.code.as_str()).collect();
        let _ = writeln!(
            t,
            "  quality    score {} ({}, MOS {:.1}), {:.1} s, SNR {} dB, flags {}",
            q.score,
            q.grade.as_str(),
            q.mos,
            rep.format.duration_s,
            num(rep.metrics.noise.snr_db, 1),
            if flags.is_empty() {
                "none".into()
            } else {
                flags.join(" ")
            }
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(t, "  error      {} ({})", e.message, e.code);
    }
    if !r.flags.is_empty() {
        let flags: Vec<&str> = r.flags.iter().map(|f| f.as_str()).collect();
        let _ = writeln!(t, "  flags      {}", flags.join(" "));
    }
    if let Some(e) = &r.metadata_error {
        let _ = writeln!(t, "  sidecar    not used: {e}");
    }
    let law = r.consent_law.map_or("-", |l| l.as_str());
    match &r.consent {
        Some(c) => {
            let _ = writeln!(
                t,
                "  consent    {} (source {}, by {}, {}; law {law})",
                enum_text(&c.state),
                enum_text(&c.source),
                c.actor,
                fmt_ms(c.recorded_ms)
            );
        }
        None => {
            let _ = writeln!(t, "  consent    none recorded (law {law})");
        }
    }
    for c in r.consent_history.iter().rev() {
        let _ = writeln!(
            t,
            "    before   {} (source {}, by {}, {})",
            enum_text(&c.state),
            enum_text(&c.source),
            c.actor,
            fmt_ms(c.recorded_ms)
        );
    }
    let _ = writeln!(t, "  retention  {}", s.retention_explained);
    for h in &s.holds {
        let _ = writeln!(
            t,
            "  hold       {} case {} ({}), by {} {}{}",
            h.id,
            h.case,
            h.reason,
            h.actor,
            fmt_ms(h.added_ms),
            h.released.as_ref().map_or_else(String::new, |r| format!(
                "; released {} by {}",
                fmt_ms(r.at_ms),
                r.actor
            ))
        );
    }
    let _ = writeln!(t, "  audit");
    for e in &s.audit {
        let _ = writeln!(
            t,
            "    {:>6}  {}  {:<14} {}",
            e.seq,
            fmt_ms(e.time_ms),
            e.action,
            e.actor
        );
    }
    t
}

pub fn kpi(args: KpiArgs) -> anyhow::Result<u8> {
    let by = match &args.by {
        Some(b) => typed(b)?,
        None => GroupBy::All,
    };
    let (window, _) = args.range.window()?;
    let (k, _) = args.access.kpi(window, by)?;
    print_kpi(&k, by, &args.output)?;
    Ok(EXIT_OK)
}

/// A KPI table as `--json` (a line per group, the total last), `--csv` or text.
pub(super) fn print_kpi(k: &Kpi, by: GroupBy, output: &Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output.json {
        // JSON Lines, as every other --json: a line per group, the total last (group "total").
        #[derive(serde::Serialize)]
        struct Line<'a> {
            by: GroupBy,
            #[serde(flatten)]
            row: &'a KpiRow,
        }
        for row in k.rows.iter().chain([&k.total]) {
            writeln!(out, "{}", super::json::line(&Line { by, row })?)?;
        }
    } else if output.csv {
        write!(out, "{}", kpi_table(k, true).csv())?;
    } else {
        write!(out, "{}", kpi_table(k, false).text())?;
    }
    Ok(())
}

fn kpi_table(k: &Kpi, csv: bool) -> Table {
    // The call records' columns, when the store holds any.
    let with_calls = k.total.calls.is_some();
    let mut headers = vec![
        "group",
        "calls",
        "analysed",
        "failed",
        "mean score",
        "poor/bad",
        "mean duration s",
        "talk s",
        "mean hold s",
        "non-talk",
        "overtalk s",
        "consent coverage",
    ];
    if with_calls {
        headers.extend([
            "cdr calls to record",
            "recorded",
            "recorded lawfully",
            "missing",
            "short",
            "on demand",
        ]);
    }
    headers.push("flags");
    let numeric: Vec<usize> = (1..headers.len() - 1).collect();
    let mut t = Table::new(&headers).numeric(&numeric);
    let share = |v: Option<f64>| if csv { num(v, 4) } else { pct(v) };
    let row = |r: &KpiRow| {
        let mut flags: Vec<(&String, &u64)> = r.flags.iter().collect();
        flags.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut cells = vec![
            r.group.clone(),
            r.recordings.to_string(),
            share(r.share_analysed),
            share(r.share_failed),
            num(r.mean_score, 1),
            share(r.share_poor_or_bad),
            num(r.mean_duration_s, 1),
            format!("{:.1}", r.talk_s),
            num(r.mean_hold_s, 1),
            share(r.non_talk_share),
            format!("{:.1}", r.overtalk_s),
            share(r.consent_coverage),
        ];
        if with_calls {
            let c = r.calls.clone().unwrap_or_default();
            cells.extend([
                c.must_record.to_string(),
                share(c.coverage),
                share(c.lawful_share),
                c.missing.to_string(),
                c.short.to_string(),
                c.on_demand.to_string(),
            ]);
        }
        cells.push(
            flags
                .iter()
                .map(|(f, n)| format!("{f}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        cells
    };
    for r in &k.rows {
        t.push(row(r));
    }
    t.push(row(&k.total));
    t
}

pub fn report(kind: query::ReportKind, args: ReportArgs) -> anyhow::Result<u8> {
    let now = args.when.now();
    let window = window(args.since.as_deref(), args.until.as_deref(), now)?;
    let (dated, _) = args.access.report(kind, window)?;
    write_report(&dated, &args.out)?;
    Ok(EXIT_OK)
}

/// A report in `format`, to `output` or standard output.
pub(super) fn write_report(dated: &query::Dated, out: &ReportOut) -> anyhow::Result<()> {
    let text = render_report(dated, out.format)?;
    match &out.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("write the report to {}: {e}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// A report in one of its formats (the CLI's and the console's downloads alike).
pub fn render_report(dated: &query::Dated, format: ReportFormat) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Json => super::json::pretty(dated)? + "\n",
        ReportFormat::Csv => match &dated.body {
            // The certificate keeps its one-table form, the chain head on every row.
            Report::Purged(p) => super::reports::purged_csv(p),
            _ => csv_sections(dated),
        },
        ReportFormat::Table => super::reports::text(dated),
        ReportFormat::Html => super::reports::html(dated),
    })
}

/// Every table of a report, each under a `# title` line.
fn csv_sections(dated: &query::Dated) -> String {
    super::reports::tables(dated, super::reports::Reader::Programs)
        .into_iter()
        .map(|(title, t)| {
            if title.is_empty() {
                t.csv()
            } else {
                format!("# {title}\n{}", t.csv())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
