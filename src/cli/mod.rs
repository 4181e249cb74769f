//! The command line: clap definitions, dispatch and rendering. No business logic lives here.
//!
//! Exit codes (documented in the README, tested in tests/it/cli.rs):
//! 0 everything asked for was done; 1 internal error; 2 bad input (a file that could not be
//! analysed, an invalid configuration, a usage error); 3 done, but something needs a human
//! (`audit verify` found a break, a purge was refused).

mod admin;
pub use admin::{render_report, ReportFormat};
mod args;
mod calls;
mod client;
mod compliance;
mod fleet;
mod html;
mod json;
mod redact;
mod reports;
mod table;
mod users;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use clap::{Parser, Subcommand};

use crate::analysis::model::{Report, Severity};
use crate::config::Config;
use crate::pipeline::{self, Options};

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_ATTENTION: u8 = 3;
pub const EXIT_FORBIDDEN: u8 = 4;

/// An error that ends the command with its own exit code.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

/// The main page's closing sections: what holds for every command.
const AFTER_HELP: &str = "\
Configuration: every command reads --config FILE, else $CALLWARDEN_CONFIG, else
/etc/callwarden/callwarden.toml when it exists, else the built-in defaults
(`callwarden default-config` prints them, commented). `daemon` needs a file.

Exit status: 0 everything asked for was done; 1 internal error; 2 bad input (a file that could
not be analysed, an invalid configuration, a usage error, a recording still being written);
3 done, but something needs a human (`audit verify` found a break, a purge was refused);
4 refused (no role for the request).

Files: /etc/callwarden/callwarden.toml (configuration), /var/lib/callwarden/store and
store.head (the store and its anchor), /run/callwarden/control.sock (the control socket).
Documentation: /usr/share/doc/callwarden/ (README.md, compliance.md, integration.md).
Each command has its own page: man callwarden-ingest, man callwarden-audit-verify, ...";

#[derive(Debug, Parser)]
#[command(
    name = "callwarden",
    version,
    about = "Call-recording quality and compliance",
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse recordings: quality score, speech, noise, level, clarity, clipping, dropouts.
    Analyze(AnalyzeArgs),
    /// Import recordings (an archive, a PBX's monitor folder) into the store, once each.
    Ingest(IngestArgs),
    /// Run the daemon: watch the recordings roots and ingest every finished call once (the
    /// configuration is read again on SIGHUP or `callwarden reload`).
    Daemon(DaemonArgs),
    /// Purge what the retention policy says is due (never held or locked recordings).
    Purge(compliance::PurgeArgs),
    /// The audit log: verify the chain and every recording's hash, or export it.
    #[command(subcommand)]
    Audit(compliance::AuditCommand),
    /// Reports for compliance officers.
    #[command(subcommand)]
    Report(compliance::ReportCommand),
    /// Legal holds: add, release, list.
    #[command(subcommand)]
    Hold(compliance::HoldCommand),
    /// Consent: set a recording's consent state.
    #[command(subcommand)]
    Consent(compliance::ConsentCommand),
    /// Is the daemon up, what is it doing, and how does the store stand.
    Status(admin::StatusArgs),
    /// List recordings, filtered and sorted.
    List(admin::ListArgs),
    /// The worst-scored recordings of a recent window.
    Worst(admin::WorstArgs),
    /// Everything about one recording: metadata, analysis, consent, retention, holds, audit.
    Show(admin::ShowArgs),
    /// Write a copy of a recording with its DTMF digits (card data) silenced, audited; the
    /// original is never changed.
    Redact(redact::RedactArgs),
    /// Quality and compliance KPIs over a window, by day, week, agent or queue.
    Kpi(admin::KpiArgs),
    /// Calls, from the PBX's call records: load them, list calls with their recordings and
    /// verdicts (recorded, short, missing), show one.
    #[command(subcommand)]
    Calls(calls::CallsCommand),
    /// Many sites, one view: the central PostgreSQL the daemons export to (prepare its
    /// schema, the fleet's KPIs and reports, check every site's audit chain there).
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Web console accounts: add one, change its password, disable it, list them.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Ask the running daemon to reload its configuration file (as SIGHUP does; audited with
    /// your name).
    Reload(admin::ReloadArgs),
    /// Print a shell completion script (installed by the package and scripts/install.sh).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a folder.
    Man(ManArgs),
    /// Print the default configuration (commented TOML).
    DefaultConfig,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write callwarden.1 and a page for every subcommand (callwarden-ingest.1,
    /// callwarden-audit-verify.1, ...) into this folder instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Files or directories (searched recursively; symlinks are not followed).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Store directory (default: `store.path` from the configuration).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Files analysed in parallel (default: `ingest.workers`, or the number of cores).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Recordings to analyse (WAV PCM/float/G.711, MP3, FLAC, Ogg Vorbis), or directories,
    /// searched recursively for files with a recording extension (`ingest.extensions`;
    /// symlinks inside are not followed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per file (JSON Lines), as in docs/analysis-report.md.
    #[arg(long)]
    pub json: bool,
    /// Include every speech segment in the JSON.
    #[arg(long)]
    pub segments: bool,
    /// Files analysed in parallel (default: the number of cores).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The codec the calls were carried in before they were recorded (`G729`, `PCMU`, `gsm`):
    /// the score takes its ITU-T G.113 impairment off (overrides `analysis.codec`).
    #[arg(long, value_parser = crate::analysis::carried::Codec::parse)]
    pub codec: Option<crate::analysis::carried::Codec>,
}

pub fn main() -> ExitCode {
    // What callwarden creates (the store, its anchor, reports) is for its owner alone whatever
    // the umask it was started with; the control socket's mode is set explicitly.
    let inherited = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    rustix::process::umask(inherited | rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    init_logging();
    let code = match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Ingest(args) => ingest(args),
        Command::Daemon(args) => daemon(args),
        Command::Purge(args) => compliance::purge(args),
        Command::Audit(cmd) => compliance::audit(cmd),
        Command::Report(cmd) => compliance::report(cmd),
        Command::Hold(cmd) => compliance::hold(cmd),
        Command::User(cmd) => users::user(cmd),
        Command::Consent(cmd) => compliance::consent(cmd),
        Command::Status(args) => admin::status(args),
        Command::List(args) => admin::list(args),
        Command::Worst(args) => admin::worst(args),
        Command::Show(args) => admin::show(args),
        Command::Redact(args) => redact::redact(args),
        Command::Kpi(args) => admin::kpi(args),
        Command::Calls(cmd) => calls::calls(cmd),
        Command::Fleet(cmd) => fleet::fleet(cmd),
        Command::Reload(args) => admin::reload(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "callwarden", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Man(args) => man(args),
        Command::DefaultConfig => {
            print!("{}", crate::config::DEFAULT_TOML);
            Ok(EXIT_OK)
        }
    };
    match code {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("callwarden: {e:#}");
            match e.downcast_ref::<Exit>() {
                Some(Exit(code, _)) => ExitCode::from(*code),
                None => ExitCode::from(EXIT_BAD_INPUT),
            }
        }
    }
}

fn daemon(args: DaemonArgs) -> anyhow::Result<u8> {
    let path = config_path(&args.config).unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG));
    let config = Config::load(&path)?;
    // An announcement that cannot be read would fail every recording: refuse to start.
    crate::pipeline::check(&config).map_err(|e| Exit(EXIT_BAD_INPUT, e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counters = runtime.block_on(crate::daemon::run(
        config,
        Some(path),
        std::future::pending(),
    ))?;
    tracing::info!(?counters, "exit");
    Ok(EXIT_OK)
}

/// The manual: the main page on stdout, or every page into a folder (for packages).
fn man(args: ManArgs) -> anyhow::Result<u8> {
    use anyhow::Context;
    use clap::CommandFactory;
    match args.out_dir {
        None => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
        }
    }
    Ok(EXIT_OK)
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CALLWARDEN_LOG").unwrap_or_else(|_| {
            // symphonia logs its probing of every non-audio file as an error; the outcome is
            // reported by us, once.
            tracing_subscriber::EnvFilter::new(
                "warn,symphonia_core=off,symphonia_format_riff=off,symphonia_format_ogg=off,\
                 symphonia_bundle_mp3=off,symphonia_bundle_flac=off,symphonia_codec_vorbis=off",
            )
        });
    use std::io::IsTerminal;
    // Plain lines without colours when not on a terminal (journald, files, tests); without a
    // timestamp when stderr is the journal (systemd sets JOURNAL_STREAM), which adds its own.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// The line printed for one file, and whether it was analysed.
struct Outcome {
    line: String,
    ok: bool,
}

fn analyze(args: AnalyzeArgs) -> anyhow::Result<u8> {
    let mut config = load_config(&args.config)?;
    if args.codec.is_some() {
        config.analysis.codec = args.codec.clone();
    }
    crate::pipeline::check(&config).map_err(|e| Exit(EXIT_BAD_INPUT, e))?;
    let (files, problems) = crate::ingest::expand(&args.files, &config.ingest.extensions);
    for p in &problems {
        eprintln!("callwarden: {p}");
    }
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(cores)
        .min(files.len())
        .max(1);
    // A file the user names is read even through a symlink; never a FIFO or a device.
    let options = Options {
        segments: args.segments,
        follow: crate::files::Follow::Symlinks,
    };
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    let mut failed = false;
    let stdout = std::io::stdout();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, files, config) = (&next, &files, &config);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let name = path.display().to_string();
                let outcome = match pipeline::analyze_file(path, &name, config, options) {
                    Ok(report) => Outcome {
                        line: if args.json {
                            json::line(&report).unwrap_or_default()
                        } else {
                            summary(&report)
                        },
                        ok: true,
                    },
                    Err(e) => {
                        tracing::debug!(file = %name, code = e.code, "analysis failed");
                        Outcome {
                            line: if args.json {
                                json::line(&e.to_report(&name)).unwrap_or_default()
                            } else {
                                format!("{name}: failed to analyse: {} ({})", e.message, e.code)
                            },
                            ok: false,
                        }
                    }
                };
                if tx.send((i, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Print in the order the files were given, as soon as each one's turn comes.
        let mut waiting = BTreeMap::new();
        let mut turn = 0;
        for (i, outcome) in rx {
            waiting.insert(i, outcome);
            while let Some(outcome) = waiting.remove(&turn) {
                failed |= !outcome.ok;
                if outcome.ok || args.json {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{}", outcome.line);
                } else {
                    eprintln!("{}", outcome.line);
                }
                turn += 1;
            }
        }
    });
    // A directory with no recording, or one that could not be searched, is bad input too.
    Ok(if failed || !problems.is_empty() {
        EXIT_BAD_INPUT
    } else {
        EXIT_OK
    })
}

/// The system-wide configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/callwarden/callwarden.toml";

/// The configuration file every command reads, by one rule: `--config`, else
/// `$CALLWARDEN_CONFIG`, else the system file if it exists; `None`: the built-in defaults.
fn config_path(given: &Option<PathBuf>) -> Option<PathBuf> {
    given
        .clone()
        .or_else(|| {
            std::env::var_os("CALLWARDEN_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| {
            let system = PathBuf::from(SYSTEM_CONFIG);
            system.exists().then_some(system)
        })
}

pub(super) fn load_config(given: &Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match config_path(given) {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ingest(args: IngestArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    use std::time::Instant;

    let config = load_config(&args.config)?;
    let store_dir = args
        .store
        .clone()
        .unwrap_or_else(|| config.store.path.clone());
    let store = match crate::store::Store::open_anchored(
        &store_dir,
        &config.store.anchor_for(&store_dir),
    ) {
        Ok(s) => s,
        Err(crate::store::StoreError::Locked { path }) => {
            anyhow::bail!(
                "the store at {path} is in use, most likely by the running daemon: let the daemon \
                 ingest these recordings (put them under one of its roots) or stop it first"
            )
        }
        Err(e) => return Err(e.into()),
    };
    // One file, one path: `rec`, `./rec` and `/abs/rec` are the same recording.
    let paths = args
        .paths
        .iter()
        .map(|p| crate::recording_path::RecordingPath::from_cwd(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (candidates, problems) = crate::ingest::scan(&paths, &config.ingest.extensions);
    for p in &problems {
        eprintln!("callwarden: {p}");
    }
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or(match config.ingest.workers {
            0 => cores(),
            n => n,
        });
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_line = 0usize;
    let progress = |p: &crate::ingest::Progress| {
        let (done, total) = (p.done, p.total);
        let line = progress_line(p, started.elapsed().as_secs_f64());
        if terminal {
            eprint!("\r{line}   ");
            if done == total {
                eprintln!();
            }
        } else if done == total || done * 20 / total.max(1) > last_line {
            last_line = done * 20 / total.max(1);
            eprintln!("callwarden: ingest: {line}");
        }
    };
    let ingestor = crate::ingest::Ingestor {
        store: &store,
        config: &config,
    };
    let settle_ms = (config.ingest.settle_s * 1000.0) as i64;
    // Files written seconds ago are waited for (at most `ingest.settle_s`), not skipped.
    let (candidates, unfinished) = crate::ingest::settle(
        candidates,
        settle_ms,
        crate::ingest::now_ms,
        std::thread::sleep,
        |n, left_ms| {
            let line = format!(
                "waiting for {n} file(s) still being written (at most {:.1} s more)",
                left_ms as f64 / 1000.0
            );
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("callwarden: ingest: {line}");
            }
        },
        &config.ingest.extensions,
    );
    if terminal {
        eprint!("\r");
    }
    let summary = ingestor.run(
        candidates,
        jobs,
        crate::ingest::now_ms(),
        settle_ms,
        progress,
    )?;
    println!(
        "ingested {}, already stored {}, too short {}, failed {}, modified after ingest {}, \
         still being written {}",
        summary.ingested,
        summary.already_stored,
        summary.too_short,
        summary.failed.len(),
        summary.modified.len(),
        summary.unsettled + unfinished.len()
    );
    for c in &unfinished {
        println!(
            "  still being written after {} s (ingest.settle_s), not ingested: {}",
            config.ingest.settle_s, c.path
        );
    }
    for (path, why) in &summary.failed {
        println!("  failed: {path}: {why}");
    }
    for path in &summary.modified {
        println!("  modified after ingest (original hash kept): {path}");
    }
    for (from, to) in &summary.moved {
        println!("  moved (one recording, its path updated): {from} -> {to}");
    }
    Ok(
        if summary.failed.is_empty() && problems.is_empty() && unfinished.is_empty() {
            EXIT_OK
        } else {
            EXIT_BAD_INPUT
        },
    )
}

/// The ingest progress line: a bar with the percentage, the files done and failed, the audio,
/// the rate and the time left (`ETA 1 h 02 min`), from the progress after `elapsed_s`.
fn progress_line(p: &crate::ingest::Progress, elapsed_s: f64) -> String {
    const WIDTH: usize = 20;
    let share = if p.total == 0 {
        1.0
    } else {
        p.done as f64 / p.total as f64
    };
    let filled = ((share * WIDTH as f64).floor() as usize).min(WIDTH);
    let rate = p.done as f64 / elapsed_s.max(1e-3);
    let eta = if p.done == p.total {
        "done".to_string()
    } else if p.done == 0 {
        "ETA -".to_string()
    } else {
        format!("ETA {}", human_duration((p.total - p.done) as f64 / rate))
    };
    format!(
        "[{}{}] {:>3.0}%  {}/{} files, {} failed, {:.1} h of audio, {rate:.1} files/s, {eta}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        share * 100.0,
        p.done,
        p.total,
        p.failed,
        p.audio_s / 3600.0,
    )
}

/// A duration for people: `42 s`, `3 min 20 s`, `1 h 02 min`.
fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.1} {unit}"))
}

/// The readable summary of one report.
pub fn summary(r: &Report) -> String {
    let m = &r.metrics;
    let q = &r.quality;
    let mut s = format!(
        "{}\n  score {} ({}, MOS {:.1})  {:.1} s  {} {} {} Hz {} ch\n",
        r.file,
        q.score,
        q.grade.as_str(),
        q.mos,
        r.format.duration_s,
        r.format.container,
        r.format.codec,
        r.format.sample_rate,
        r.format.channels
    );
    s += &format!(
        "  speech   {:.0}% ({:.1} s), first {}, last {}; longest silence {:.1} s, dead air {} ({:.1} s)\n",
        m.speech.ratio * 100.0,
        m.speech.talk_time_s,
        opt(m.speech.start_s, "s"),
        opt(m.speech.end_s, "s"),
        m.silence.longest_s,
        m.silence.dead_air_count,
        m.silence.dead_air_s
    );
    s += &format!(
        "  level    speech {}, peak {:.1} dBFS; noise floor {}, SNR {}{}\n",
        opt(m.level.active_speech_dbfs, "dBFS"),
        m.level.peak_dbfs,
        opt(m.noise.floor_dbfs, "dBFS"),
        opt(m.noise.snr_db, "dB"),
        m.noise
            .hum_hz
            .map_or(String::new(), |h| format!(", hum {h} Hz"))
    );
    s += &format!(
        "  clarity  bandwidth {}{}; clipping {:.3}% ({} events); dropouts {} ({:.2}% of speech)\n",
        m.clarity
            .bandwidth_hz
            .map_or("n/a".to_string(), |b| format!("{b:.0} Hz")),
        if m.clarity.muffled { " (muffled)" } else { "" },
        m.clipping.ratio * 100.0,
        m.clipping.events,
        m.dropouts.count,
        m.dropouts.ratio * 100.0
    );
    if !m.hold.music.is_empty() {
        let spans: Vec<String> = m
            .hold
            .music
            .iter()
            .map(|[a, b]| format!("{a:.1}-{b:.1} s"))
            .collect();
        s += &format!(
            "  hold     music {:.1} s: {}\n",
            m.hold.music_s,
            spans.join(", ")
        );
    }
    if let (Some(channels), Some(c)) = (&r.channels, &r.conversation) {
        for ch in channels {
            s += &format!(
                "  {:<8} talk {:.1} s ({:.0}%), speech {}, SNR {}\n",
                ch.role,
                ch.metrics.speech.talk_time_s,
                c.talk_ratio.get(&ch.role).copied().unwrap_or(0.0) * 100.0,
                opt(ch.metrics.level.active_speech_dbfs, "dBFS"),
                opt(ch.metrics.noise.snr_db, "dB")
            );
        }
        let interruptions: Vec<String> = c
            .interruptions
            .iter()
            .map(|(role, n)| format!("{role} {n}"))
            .collect();
        s += &format!(
            "  overtalk {:.1} s ({} events), interruptions {}; non-talk {:.1} s ({:.0}%)\n",
            c.overtalk_s,
            c.overtalk_count,
            interruptions.join(", "),
            c.non_talk_s,
            c.non_talk_ratio * 100.0
        );
    }
    if q.flags.is_empty() {
        s += "  flags    none";
    } else {
        for (i, f) in q.flags.iter().enumerate() {
            let sev = match f.severity {
                Severity::Info => "info",
                Severity::Warn => "warn",
                Severity::Error => "error",
            };
            s += &format!(
                "  {}{sev:<5} {}: {}",
                if i == 0 { "flags    " } else { "         " },
                f.code,
                f.message
            );
            if i + 1 < q.flags.len() {
                s.push('\n');
            }
        }
    }
    s
}

#[cfg(test)]
mod progress_tests {
    use super::{human_duration, progress_line};
    use crate::ingest::Progress;

    #[test]
    fn the_line_has_a_bar_the_failures_and_a_readable_eta() {
        let p = Progress {
            done: 450,
            total: 1000,
            failed: 2,
            audio_s: 4320.0,
        };
        assert_eq!(
            progress_line(&p, 90.0),
            "[#########-----------]  45%  450/1000 files, 2 failed, 1.2 h of audio, \
             5.0 files/s, ETA 1 min 50 s"
        );
        let first = Progress { done: 0, ..p };
        assert!(progress_line(&first, 0.0).ends_with("ETA -"));
        let all = Progress { done: 1000, ..p };
        assert!(progress_line(&all, 100.0).starts_with("[####################] 100%"));
        assert!(progress_line(&all, 100.0).ends_with("done"));
        assert_eq!(human_duration(42.4), "42 s");
        assert_eq!(human_duration(200.0), "3 min 20 s");
        assert_eq!(human_duration(3720.0), "1 h 02 min");
        assert_eq!(human_duration(-3.0), "0 s");
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and option of the tree, with its path (`callwarden report retention`).
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Arg)>) {
        for arg in cmd.get_arguments() {
            out.push((path.clone(), arg.clone()));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_and_command_is_documented() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut args = Vec::new();
        walk(&cmd, "callwarden".into(), &mut args);
        let undocumented: Vec<String> = args
            .iter()
            .filter(|(_, a)| !matches!(a.get_id().as_str(), "help" | "version"))
            .filter(|(_, a)| a.get_help().is_none() && a.get_long_help().is_none())
            .map(|(path, a)| format!("{path} {}", a.get_id()))
            .collect();
        assert!(undocumented.is_empty(), "no help text: {undocumented:#?}");
        fn commands(cmd: &clap::Command, path: String, out: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    out.push(p.clone());
                }
                commands(sub, p, out);
            }
        }
        let mut bare = Vec::new();
        commands(&cmd, "callwarden".into(), &mut bare);
        assert!(bare.is_empty(), "commands without a description: {bare:#?}");
    }

    #[test]
    fn each_shared_option_is_described_one_way() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut args = Vec::new();
        walk(&cmd, "callwarden".into(), &mut args);
        let mut by_id: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for (path, a) in &args {
            // --store differs on purpose: `ingest` always opens it, queries only without a daemon.
            if matches!(a.get_id().as_str(), "config" | "socket") {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                by_id
                    .entry(a.get_id().to_string())
                    .or_default()
                    .insert(format!("{help}  [{path}]"));
            }
        }
        for (id, helps) in by_id {
            let texts: std::collections::BTreeSet<&str> = helps
                .iter()
                .map(|h| h.split("  [").next().unwrap())
                .collect();
            assert_eq!(
                texts.len(),
                1,
                "--{id} is described {} ways: {helps:#?}",
                texts.len()
            );
        }
    }
}
