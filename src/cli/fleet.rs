//! `callwarden fleet`: the central database of many sites (issue 24): prepare its schema, read
//! the fleet's KPIs and reports with the same code and renderers as one site's, and check each
//! site's exported audit chain against the heads it anchored.

use std::io::Write;
use std::path::PathBuf;

use crate::calls::Digest;
use crate::fleet::central::Central;
use crate::kpi::{GroupBy, Kpi};
use crate::query::{Dated, Report, Window};
use crate::summary::Summary;

use super::admin::{KpiRange, Output, ReportOut, When};
use super::{EXIT_ATTENTION, EXIT_OK};

#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    /// Create or upgrade the central schema (tables by site, indexes, the KPI views), each
    /// migration once, in its own transaction.
    Migrate {
        #[command(flatten)]
        db: Db,
    },
    /// The KPIs over every site (or one), computed as `callwarden kpi` computes one site's.
    Kpi(FleetKpiArgs),
    /// A report over every site (or one): consent, quality, pci, holds or coverage; or one
    /// site's deletion certificate (purged).
    Report(FleetReportArgs),
    /// Send what this site has not yet sent to the central database, from a stopped daemon's
    /// store (`[export.postgres]` of the configuration), and exit.
    Push {
        /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
        /// it exists, else the built-in defaults; `daemon` needs a file).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Store directory (default: `store.path` from the configuration).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Check each site's exported audit chain (every hash, link and number) and the heads it
    /// anchored; exit 3 if anything is broken.
    Verify {
        #[command(flatten)]
        db: Db,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, clap::Args)]
pub struct Db {
    /// The central database: a PostgreSQL URL (`postgresql://user@host/db`) or key=value
    /// string.
    #[arg(long, value_name = "URL", env = "CALLWARDEN_FLEET_DB")]
    pub db: String,
    /// The authority (PEM) that signed the database's TLS certificate (default: the public web
    /// roots); TLS itself is the URL's `sslmode`.
    #[arg(long, value_name = "PEM", env = "CALLWARDEN_FLEET_CA")]
    pub ca_file: Option<PathBuf>,
    /// Only this site.
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct FleetKpiArgs {
    #[command(flatten)]
    pub db: Db,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub range: KpiRange,
    /// One row per site, day, ISO week, agent or queue (default: the whole window).
    #[arg(long, value_parser = ["site", "day", "week", "agent", "queue"])]
    pub by: Option<String>,
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FleetReport {
    Consent,
    Quality,
    Pci,
    Holds,
    Coverage,
    /// The deletion certificate of one site (`--site`): one audit chain covers it.
    Purged,
}

#[derive(Debug, clap::Args)]
pub struct FleetReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: FleetReport,
    #[command(flatten)]
    pub db: Db,
    #[command(flatten)]
    pub when: When,
    /// Since: RFC 3339, or an age like 90d.
    #[arg(long)]
    pub since: Option<String>,
    /// Until: RFC 3339, or an age.
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    pub out: ReportOut,
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn fleet(cmd: FleetCommand) -> anyhow::Result<u8> {
    match cmd {
        FleetCommand::Migrate { db } => {
            let mut c = Central::connect(&db.db, db.ca_file.as_deref())?;
            let (before, after) = c.migrate(env!("CARGO_PKG_VERSION"))?;
            let mut out = std::io::stdout().lock();
            if before == after {
                writeln!(
                    out,
                    "the central schema is at version {after}: nothing to do"
                )?;
            } else {
                writeln!(
                    out,
                    "the central schema moved from version {before} to {after}"
                )?;
            }
            Ok(EXIT_OK)
        }
        FleetCommand::Push { config, store } => {
            let config = super::load_config(&config)?;
            let path = store.unwrap_or_else(|| config.store.path.clone());
            let store = std::sync::Arc::new(crate::store::Store::open_anchored(
                &path,
                &config.store.anchor_for(&path),
            )?);
            let site = config
                .export
                .postgres
                .as_ref()
                .map(|p| p.site.to_string())
                .unwrap_or_default();
            match crate::fleet::export::drain(store.clone(), &config.export, config.consent.default)
            {
                Ok(d) => {
                    store.flush()?;
                    writeln!(
                        std::io::stdout().lock(),
                        "site {site}: sent {} events and audit entries in {} batches; nothing \
                         left to send",
                        d.sent,
                        d.batches
                    )?;
                    Ok(EXIT_OK)
                }
                Err(why) => {
                    store.flush()?;
                    eprintln!("callwarden: fleet push: {why}");
                    Ok(EXIT_ATTENTION)
                }
            }
        }
        FleetCommand::Kpi(args) => kpi(args),
        FleetCommand::Report(args) => report(args),
        FleetCommand::Verify { db, output } => verify(db, output),
    }
}

/// The summaries of the window, each under its site's default law (as that site's own KPIs
/// judge it), with their sites.
fn summaries(c: &mut Central, db: &Db, w: Window) -> anyhow::Result<Vec<(String, Summary)>> {
    c.check_schema()?;
    Ok(c.summaries(db.site.as_deref(), w.from_ms, w.until_ms)?
        .into_iter()
        .map(|(site, law, mut s)| {
            s.consent_law.get_or_insert(law);
            (site, s)
        })
        .collect())
}

/// The fleet's KPI table: by site (a row per site), or as one site's `kpi` would group.
pub fn fleet_kpi(rows: Vec<(String, Summary)>, by: Option<&str>) -> anyhow::Result<Kpi> {
    // Every summary carries its law now: the default given here never applies.
    let law = crate::config::ConsentLaw::OneParty;
    if by == Some("site") {
        let mut sites: std::collections::BTreeMap<String, Vec<Summary>> = Default::default();
        for (site, s) in &rows {
            sites.entry(site.clone()).or_default().push(s.clone());
        }
        let mut k = crate::kpi::kpi(rows.into_iter().map(|r| r.1), GroupBy::All, law);
        k.rows = sites
            .into_iter()
            .map(|(site, s)| {
                let mut row = crate::kpi::kpi(s, GroupBy::All, law).total;
                row.group = site;
                row
            })
            .collect();
        return Ok(k);
    }
    let by = match by {
        Some(b) => serde_json::from_value(serde_json::Value::String(b.into()))
            .map_err(|e| anyhow::anyhow!("--by {b}: {e}"))?,
        None => GroupBy::All,
    };
    Ok(crate::kpi::kpi(rows.into_iter().map(|r| r.1), by, law))
}

/// The calls' coverage over the fleet: each site's call records and recordings matched by the
/// site's own code (`calls::match_calls`, under this configuration's `[calls]` rules and the
/// site's default law) over the window and `MATCH_MARGIN_MS` around it, the calls whose first
/// leg started in the window counted, and the sites' digests added up. None when no site has
/// call records there. (A site's own `report coverage` also finds a recording far from its
/// call's time by its key, as in a copied archive; the fleet's matches within the margin.)
fn coverage(
    c: &mut Central,
    site: Option<&str>,
    w: Window,
    config: &crate::config::Config,
    now: i64,
) -> anyhow::Result<Vec<(String, Digest)>> {
    let margin = crate::calls::MATCH_MARGIN_MS;
    let around = |t: Option<i64>, d: i64| t.map(|t| t.saturating_add(d));
    let (from, until) = (around(w.from_ms, -margin), around(w.until_ms, margin));
    let inside = |t: i64| w.from_ms.is_none_or(|f| t >= f) && w.until_ms.is_none_or(|u| t < u);
    let mut out = Vec::new();
    for (name, law) in c.sites()? {
        if site.is_some_and(|s| s != name) {
            continue;
        }
        let legs = c.calls(&name, from, until)?;
        if legs.is_empty() {
            continue;
        }
        let recordings = c
            .summaries(Some(&name), from, until)?
            .into_iter()
            .map(|(_, _, s)| s);
        let mut m = crate::calls::match_calls(legs, recordings, &config.calls, law, now);
        m.calls.retain(|call| inside(call.start_ms));
        m.orphans.retain(|r| inside(r.started_ms));
        m.ambiguous.retain(|r| inside(r.started_ms));
        out.push((name, Digest::of(&m, LIST_LIMIT)));
    }
    Ok(out)
}

/// The sites' digests as one.
fn merged(digests: Vec<(String, Digest)>) -> Option<Digest> {
    digests.into_iter().map(|d| d.1).reduce(|mut a, b| {
        a.merge(b, LIST_LIMIT);
        a
    })
}

/// Calls listed at most in a report (all are counted), as in a site's.
const LIST_LIMIT: usize = 1000;

fn kpi(args: FleetKpiArgs) -> anyhow::Result<u8> {
    let (w, now) = args.range.window()?;
    let config = super::load_config(&args.config)?;
    let mut c = Central::connect(&args.db.db, args.db.ca_file.as_deref())?;
    let rows = summaries(&mut c, &args.db, w)?;
    let mut k = fleet_kpi(rows, args.by.as_deref())?;
    let digests = coverage(&mut c, args.db.site.as_deref(), w, &config, now)?;
    if args.by.as_deref() == Some("site") {
        for (site, d) in &digests {
            if let Some(row) = k.rows.iter_mut().find(|r| &r.group == site) {
                row.calls = Some(d.total.clone().named(site.clone()));
            }
        }
        if let Some(all) = merged(digests) {
            k.total.calls = Some(all.total.named("total".into()));
        }
    } else if let Some(all) = merged(digests) {
        k = crate::kpi::with_calls(k, &all);
    }
    let by = if args.by.as_deref() == Some("site") {
        GroupBy::All
    } else {
        k.by
    };
    super::admin::print_kpi(&k, by, &args.output)?;
    Ok(EXIT_OK)
}

fn report(args: FleetReportArgs) -> anyhow::Result<u8> {
    let now = args.when.now();
    let w = super::admin::window(args.since.as_deref(), args.until.as_deref(), now)?;
    let config = super::load_config(&args.config)?;
    let mut c = Central::connect(&args.db.db, args.db.ca_file.as_deref())?;
    let law = crate::config::ConsentLaw::OneParty;
    let body = match args.kind {
        FleetReport::Holds => {
            c.check_schema()?;
            Report::Holds {
                holds: c
                    .holds(args.db.site.as_deref())?
                    .into_iter()
                    .map(|(_, h)| h)
                    .filter(|h| w.from_ms.is_none_or(|f| h.added_ms >= f))
                    .filter(|h| w.until_ms.is_none_or(|u| h.added_ms < u))
                    .collect(),
            }
        }
        FleetReport::Purged => {
            let Some(site) = args.db.site.as_deref() else {
                anyhow::bail!(
                    "the deletion certificate is one site's, proved by its audit chain: give --site"
                );
            };
            c.check_schema()?;
            Report::Purged(purged(&mut c, site, w)?)
        }
        FleetReport::Coverage => {
            c.check_schema()?;
            let all = merged(coverage(&mut c, args.db.site.as_deref(), w, &config, now)?)
                .unwrap_or_default();
            Report::Coverage(Box::new(all.report()))
        }
        kind => {
            let rows = summaries(&mut c, &args.db, w)?.into_iter().map(|r| r.1);
            match kind {
                FleetReport::Consent => Report::Consent(crate::kpi::consent_report(
                    rows,
                    law,
                    config
                        .consent
                        .announcement
                        .iter()
                        .map(|a| a.within_s)
                        .fold(0.0, f64::max),
                    1000,
                )),
                FleetReport::Pci => Report::Pci(crate::kpi::pci_report(rows, &config.pci, 1000)),
                _ => Report::Quality(crate::kpi::quality_report(rows, 20)),
            }
        }
    };
    let dated = Dated {
        generated_at: crate::policy::fmt_ms(now),
        since: w.from_ms.map(crate::policy::fmt_ms),
        window: w,
        body,
    };
    super::admin::write_report(&dated, &args.out)?;
    Ok(EXIT_OK)
}

/// One site's deletion certificate from the central copy: each purge with its tombstone, the
/// hash, size and path its `purge` audit entry recorded, and the site's last audit entry held
/// centrally as the head that covers them all (`fleet verify` checks the chain up to it).
fn purged(c: &mut Central, site: &str, w: Window) -> anyhow::Result<crate::query::PurgedReport> {
    let head = c.site(site)?.audit;
    let mut rows = Vec::new();
    for p in c.purges(site, w.from_ms, w.until_ms)? {
        let details = p.entry.as_ref().map(|e| &e.details);
        let sha256 = details
            .and_then(|d| d["sha256"].as_str())
            .unwrap_or_default()
            .to_string();
        let size = details.and_then(|d| d["size"].as_u64()).unwrap_or(0);
        let Some(summary) = p.summary else {
            anyhow::bail!(
                "site {site}: purge of recording {} without its record",
                p.id
            );
        };
        rows.push(crate::query::PurgedRow::of(
            p.id,
            (summary.path, sha256, size, summary.duration_s),
            &p.tombstone,
            p.entry.map(|e| e.seq),
        ));
    }
    Ok(crate::query::PurgedReport {
        count: rows.len(),
        audit_chain_head: head.into(),
        recordings: rows,
    })
}

/// One site's check, as printed.
#[derive(Debug, serde::Serialize)]
struct SiteCheck {
    site: String,
    entries: u64,
    heads: usize,
    breaks: Vec<crate::audit::Break>,
}

fn verify(db: Db, output: Output) -> anyhow::Result<u8> {
    let mut c = Central::connect(&db.db, db.ca_file.as_deref())?;
    c.check_schema()?;
    let sites: Vec<String> = match &db.site {
        Some(s) => vec![s.clone()],
        None => c.sites()?.into_iter().map(|(s, _)| s).collect(),
    };
    let mut checks = Vec::new();
    for site in sites {
        let heads = c.heads(&site)?;
        let (entries, breaks) = crate::fleet::verify_site(c.audit(&site)?, &heads);
        checks.push(SiteCheck {
            site,
            entries,
            heads: heads.len(),
            breaks,
        });
    }
    let mut out = std::io::stdout().lock();
    for check in &checks {
        if output.json {
            writeln!(out, "{}", super::json::line(check)?)?;
        } else if output.csv {
            continue;
        } else if check.breaks.is_empty() {
            writeln!(
                out,
                "{}: {} audit entries, {} anchored heads: intact",
                check.site, check.entries, check.heads
            )?;
        } else {
            writeln!(
                out,
                "{}: {} audit entries, {} anchored heads: {} break(s)",
                check.site,
                check.entries,
                check.heads,
                check.breaks.len()
            )?;
            for b in &check.breaks {
                writeln!(out, "  entry {}: {}", b.seq, b.problem)?;
            }
        }
    }
    if output.csv {
        let mut t = super::table::Table::new(&["site", "entries", "heads", "seq", "problem"]);
        for check in &checks {
            for b in &check.breaks {
                t.push(vec![
                    check.site.clone(),
                    check.entries.to_string(),
                    check.heads.to_string(),
                    b.seq.to_string(),
                    b.problem.clone(),
                ]);
            }
        }
        write!(out, "{}", t.csv())?;
    }
    Ok(if checks.iter().any(|c| !c.breaks.is_empty()) {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    })
}
