//! The daemon's exporter: the outbox and the audit chain, sent in order to the central
//! database on a thread of its own, so that ingest never waits for it.
//!
//! Each round: (re)connect and reconcile if needed, anchor the audit head when
//! `export.head_interval_s` has passed, resync if the outbox overflowed and has drained, then
//! send up to `batch` audit entries and `batch` events in one transaction and acknowledge them
//! in the store once the database has committed. A failure drops the connection and waits
//! (0.5 s, doubling to 30 s); the next round reconnects and reconciles again, which also settles
//! a commit whose answer was lost. A refusal ([`super::Refusal`]) stops the sending, says why
//! (log, metric, `export_refused` alert) and is checked again every minute.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audit::Entry;
use crate::config::{ConsentLaw, ExportConfig, ExportPostgres};
use crate::metrics::Metrics;
use crate::store::outbox::{Envelope, Position, Stored};
use crate::store::{Store, StoreError};

use super::central::{Batch, Central, CentralError};
use super::Refusal;

/// What the daemon's monitor (alerts) and status see of the exporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportStatus {
    pub backlog: u64,
    pub max_backlog: u64,
    pub overflowed: bool,
    /// Why nothing is sent, while the exporter refuses.
    pub refused: Option<String>,
    /// The last failure (connection, SQL), until a batch goes through.
    pub last_error: Option<String>,
}

/// Waits between rounds with nothing to send.
const IDLE: Duration = Duration::from_millis(200);
/// The first wait after a failure; it doubles up to `MAX_BACKOFF`.
const BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a refusal is checked again.
const REFUSED_RECHECK: Duration = Duration::from_secs(60);

enum Failure {
    Refused(Refusal),
    Failed(String),
}

impl From<CentralError> for Failure {
    fn from(e: CentralError) -> Self {
        Failure::Failed(e.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Failed(e.to_string())
    }
}

enum Round {
    Idle,
    Sent,
}

pub struct Exporter {
    store: Arc<Store>,
    pg: ExportPostgres,
    head_every: Duration,
    redact: Option<Vec<u8>>,
    default_law: ConsentLaw,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<ExportStatus>>,
    stop: Arc<AtomicBool>,
    central: Option<Central>,
    /// The last audit entry the central database holds (known once reconciled).
    audit_sent: u64,
    last_head: Option<Instant>,
    /// Events and entries sent by this exporter.
    sent: usize,
}

/// A running exporter: stop it with [`Running::stop`].
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    pub status: Arc<Mutex<ExportStatus>>,
}

impl Running {
    /// Asks the exporter to stop and waits up to `wait` for its round to end.
    pub fn stop(self, wait: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let until = Instant::now() + wait;
        while !self.thread.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Switches the store's outbox on (the first time, the site as it is is queued) and starts the
/// exporter's thread. Call before ingest starts.
pub fn start(
    store: Arc<Store>,
    cfg: &ExportConfig,
    default_law: ConsentLaw,
    metrics: Arc<Metrics>,
) -> Result<Option<Running>, StoreError> {
    let Some(pg) = cfg.postgres.clone() else {
        return Ok(None);
    };
    let state = store.start_outbox(cfg.max_backlog)?;
    tracing::info!(
        site = %pg.site,
        backlog = state.backlog(),
        "exporting to the central database"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(ExportStatus {
        backlog: state.backlog(),
        max_backlog: state.max_backlog,
        overflowed: state.overflowed,
        ..ExportStatus::default()
    }));
    let mut exporter = Exporter::new(store, pg, cfg, default_law, metrics);
    exporter.status = status.clone();
    exporter.stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("callwarden-export".into())
        .spawn(move || exporter.run())
        .map_err(|e| StoreError::Refused(format!("could not start the exporter's thread: {e}")))?;
    Ok(Some(Running {
        stop,
        thread,
        status,
    }))
}

/// What one [`drain`] sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub batches: usize,
    pub sent: usize,
}

/// Sends everything the store has not yet sent, from this process, and returns: `callwarden
/// fleet push` on a stopped daemon's store (before a site is retired, or to catch up by hand).
/// The same rounds as the daemon's exporter; the first failure or refusal ends it.
pub fn drain(
    store: Arc<Store>,
    cfg: &ExportConfig,
    default_law: ConsentLaw,
) -> Result<Drained, String> {
    let Some(pg) = cfg.postgres.clone() else {
        return Err("no [export.postgres] in the configuration: export is off".into());
    };
    store
        .start_outbox(cfg.max_backlog)
        .map_err(|e| e.to_string())?;
    let mut exporter = Exporter::new(store, pg, cfg, default_law, Arc::new(Metrics::new()));
    let mut done = Drained::default();
    loop {
        match exporter.round() {
            Ok(Round::Sent) => {
                done.batches += 1;
                done.sent = exporter.sent;
            }
            Ok(Round::Idle) => return Ok(done),
            Err(Failure::Refused(r)) => return Err(r.to_string()),
            Err(Failure::Failed(why)) => return Err(why),
        }
    }
}

impl Exporter {
    fn new(
        store: Arc<Store>,
        pg: ExportPostgres,
        cfg: &ExportConfig,
        default_law: ConsentLaw,
        metrics: Arc<Metrics>,
    ) -> Exporter {
        Exporter {
            store,
            pg,
            head_every: Duration::from_secs_f64(cfg.head_interval_s),
            redact: cfg.redact.then(|| cfg.redact_key.as_bytes().to_vec()),
            default_law,
            metrics,
            status: Default::default(),
            stop: Default::default(),
            central: None,
            audit_sent: 0,
            last_head: None,
            sent: 0,
        }
    }

    fn run(mut self) {
        let mut backoff = BACKOFF;
        while !self.stop.load(Ordering::Relaxed) {
            let wait = match self.round() {
                Ok(Round::Sent) => {
                    backoff = BACKOFF;
                    Duration::ZERO
                }
                Ok(Round::Idle) => IDLE,
                Err(Failure::Refused(r)) => {
                    self.central = None;
                    let why = r.to_string();
                    let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    if status.refused.as_ref() != Some(&why) {
                        tracing::error!(site = %self.pg.site, "export refused: {why}");
                    }
                    status.refused = Some(why);
                    self.metrics.export().refused(true);
                    REFUSED_RECHECK
                }
                Err(Failure::Failed(why)) => {
                    self.central = None;
                    tracing::warn!(site = %self.pg.site, error = %why, "export failed; retrying");
                    self.metrics.export().failed();
                    self.status
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .last_error = Some(why);
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    w
                }
            };
            self.refresh();
            self.sleep(wait);
        }
    }

    /// Sleeps up to `d`, waking early to stop.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    /// The backlog and the age of the oldest waiting event, for the metrics and the alerts.
    fn refresh(&self) {
        let Ok(state) = self.store.outbox_state() else {
            return;
        };
        let oldest = self
            .store
            .outbox_after(state.ack.seq, 1)
            .ok()
            .and_then(|v| v.first().and_then(|e| e.envelope().ok()))
            .map(|e| e.at_ms);
        let lag_s = oldest.map_or(0.0, |at| {
            ((crate::ingest::now_ms() - at) as f64 / 1000.0).max(0.0)
        });
        self.metrics.export().backlog(state.backlog(), lag_s);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.backlog = state.backlog();
        status.max_backlog = state.max_backlog;
        status.overflowed = state.overflowed;
    }

    /// Connects and compares positions; acknowledges what the database committed already.
    fn connect(&mut self) -> Result<(), Failure> {
        let mut central = Central::connect(&self.pg.url, self.pg.ca_file.as_deref())?;
        central.check_schema()?;
        let site = self.pg.site.as_str();
        let at = central.site(site)?;
        let outbox = self.store.outbox_state()?;
        let audit_head = self.store.audit_head()?;
        let store = &self.store;
        let decided = super::reconcile(
            site,
            &at,
            &outbox,
            |seq| store.outbox_event(seq).ok().flatten().map(|e| e.digest),
            &audit_head,
            |seq| {
                store
                    .audit_entries_after(Some(seq.saturating_sub(1)))
                    .next()
                    .and_then(|r| r.ok())
                    .and_then(|(s, e)| e.ok().filter(|_| s == seq))
                    .map(|e| e.hash)
            },
        );
        match decided {
            Ok(Some(committed)) => {
                tracing::info!(
                    site,
                    seq = committed.seq,
                    "the central database had committed events not yet acknowledged"
                );
                self.store.ack_outbox(&committed)?;
            }
            Ok(None) => {}
            Err(r) => return Err(Failure::Refused(r)),
        }
        self.audit_sent = at.audit.seq;
        self.central = Some(central);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.refused.take().is_some() {
            tracing::info!(
                site,
                "export resumes: the store and the central database agree"
            );
        }
        self.metrics.export().refused(false);
        Ok(())
    }

    fn round(&mut self) -> Result<Round, Failure> {
        if self.central.is_none() {
            self.connect()?;
        }
        if self
            .last_head
            .is_none_or(|t| t.elapsed() >= self.head_every)
        {
            self.store.outbox_head(crate::ingest::now_ms())?;
            self.last_head = Some(Instant::now());
        }
        let state = self.store.outbox_state()?;
        if state.needs_resync() && (state.backlog() == 0 || state.resyncing.is_some()) {
            tracing::info!(site = %self.pg.site, lost = state.lost, "export: sending the site again whole");
            self.store.resync_outbox()?;
        }
        let state = self.store.outbox_state()?;
        let n = self.pg.batch;
        let audit: Vec<Entry> = self
            .store
            .audit_entries_after(Some(self.audit_sent))
            .take(n)
            .map(|item| {
                let (seq, entry) = item?;
                entry.map_err(|why| {
                    Failure::Failed(format!(
                        "audit entry {seq} does not decode ({why}): run `callwarden audit verify`"
                    ))
                })
            })
            .collect::<Result<_, Failure>>()?;
        let events: Vec<(Stored, Envelope)> = self
            .store
            .outbox_after(state.ack.seq, n)?
            .into_iter()
            .map(|e| {
                let envelope = e.envelope()?;
                Ok((e, envelope))
            })
            .collect::<Result<_, StoreError>>()?;
        if audit.is_empty() && events.is_empty() {
            return Ok(Round::Idle);
        }
        let batch = Batch {
            site: self.pg.site.as_str(),
            default_law: self.default_law,
            audit: &audit,
            prev_digest: &state.ack.digest,
            events: &events,
            redact: self.redact.as_deref(),
        };
        let central = self
            .central
            .as_mut()
            .ok_or_else(|| Failure::Failed("not connected".into()))?;
        central.send(&batch)?;
        // Committed: acknowledged in the store (a crash before this is settled at the next
        // connection, from the central position).
        if let Some((last, _)) = events.last() {
            self.store.ack_outbox(&Position {
                seq: last.seq,
                digest: last.digest.clone(),
            })?;
        }
        if let Some(e) = audit.last() {
            self.audit_sent = e.seq;
        }
        self.metrics.export().sent(audit.len() + events.len());
        self.sent += audit.len() + events.len();
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error = None;
        Ok(Round::Sent)
    }
}
