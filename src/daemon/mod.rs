//! The daemon: watch the roots, ingest every finished recording exactly once, stop cleanly.
//!
//! One loop over a closed set of events (a filesystem event, a finished job, a tick, a signal,
//! shutdown) fed by `tokio::select!`. CPU work (hashing, analysis) and store writes run on a
//! fixed pool of worker threads fed from an unbounded queue of paths, so a burst of files is
//! queued, not threaded, and the watcher never waits on analysis. A file is ingested when it was
//! closed after writing or moved in, or — found by a scan or changed without a close — when its
//! size and mtime have stayed the same for the settle time. Start-up and periodic rescans catch
//! what events missed and mark vanished files `missing`.
//!
//! Purges run on their own blocking thread, one at a time: on a schedule
//! (`retention.purge_interval_s`), and early when a root's free space falls below
//! `retention.min_free_ratio` (alerting, and purging only what the rules allow early). Only a
//! purge deletes recordings (see [`crate::purge`]); ingest never moves, changes or deletes one.
//! The daemon audits its start, stop and configuration reloads, and logs the audit chain's head
//! at start and daily, so it can be anchored outside the machine.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;

use crate::recording_path::RecordingPath;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::alerts;
use crate::audit::{AuditAction, Draft};
use crate::config::Config;
use crate::control::Shared;
use crate::dispatch::Dispatcher;
use crate::endpoint::{Endpoint, Health};
use crate::ingest::{self, Candidate, Ingestor, Plan, Summary};
use crate::metrics::Metrics;
use crate::policy::Trigger;
use crate::store::{Store, StoreError};
use crate::watch::{self, WatchEvent};

mod cdrs;
mod monitor;
mod roots;
use monitor::{Awaiting, Monitor};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no recordings root configured: set ingest.roots")]
    NoRoots,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stopped after a store failure: {0}")]
    StoreFailed(String),
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    #[error("install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    #[error(transparent)]
    Endpoint(#[from] crate::endpoint::EndpointError),
    #[error("the web console on {address}: {source}")]
    Web {
        address: String,
        source: crate::web::BindError,
    },
}

/// A file handed to a worker.
struct Job {
    candidate: Candidate,
    config: Arc<Config>,
}

/// What a worker reports back.
struct Done {
    path: RecordingPath,
    summary: Summary,
    error: Option<StoreError>,
}

/// Counters for STATUS= and the final log line.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub stored: usize,
    pub too_short: usize,
    pub failed: usize,
    pub modified: usize,
    pub missing: usize,
    pub purged: usize,
    pub purge_refused: usize,
}

/// What a purge run reports back to the loop.
type PurgeResult = Result<crate::purge::Summary, StoreError>;

/// A file that changed without a close: ingested once it stays the same for the settle time.
struct Pending {
    size: u64,
    mtime_ns: i128,
    since: Instant,
}

struct State {
    config: Arc<Config>,
    config_path: Option<PathBuf>,
    store: Arc<Store>,
    queue: std_mpsc::Sender<Job>,
    pending: HashMap<RecordingPath, Pending>,
    in_flight: HashSet<RecordingPath>,
    /// Paths that changed again while a worker had them.
    dirty: HashSet<RecordingPath>,
    counters: Counters,
    /// A purge is running on its thread.
    purging: bool,
    purge_done: mpsc::UnboundedSender<PurgeResult>,
    /// Set at shutdown: a running purge stops after its batch.
    stop: Arc<AtomicBool>,
    /// When disk pressure was last alerted (alerts repeat at most hourly).
    pressure_alerted: Option<Instant>,
    last_purge: Option<String>,
    /// What the control socket's handlers see.
    shared: Arc<Mutex<Shared>>,
    /// Held by every purge.
    purge_lock: Arc<Mutex<()>>,
    /// Set by a store error the daemon cannot go on after: it stops, and exits non-zero.
    fatal: std::cell::OnceCell<String>,
    monitor: Monitor,
    /// The followed CDR files.
    cdr_sources: Arc<Mutex<cdrs::Sources>>,
}

impl State {
    fn ingestor(&self) -> Ingestor<'_> {
        Ingestor {
            store: &self.store,
            config: &self.config,
        }
    }

    fn is_under_roots(&self, path: &RecordingPath) -> bool {
        self.config.ingest.roots.iter().any(|r| path.is_below(r))
    }

    /// Queues `path` if it is a recording that the store does not hold as it is now.
    /// Queues a finished file for ingest unless the store has it as it is; whether it was queued.
    fn dispatch(&mut self, path: &RecordingPath) -> bool {
        if self.in_flight.contains(path) {
            self.dirty.insert(path.clone());
            return false;
        }
        self.pending.remove(path);
        let Some(candidate) = ingest::candidate(path, &self.config.ingest.extensions) else {
            return false;
        };
        match ingest::live_record(&self.store, path) {
            Ok(stored) if ingest::plan(&candidate, stored.as_ref()) == Plan::Skip => return false,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(file = %path, error = %e, "store lookup failed");
                self.failed(&e);
                return false;
            }
        }
        self.in_flight.insert(path.clone());
        let _ = self.queue.send(Job {
            candidate,
            config: self.config.clone(),
        });
        true
    }

    /// Remembers a file that is still changing.
    fn changed(&mut self, path: &RecordingPath) {
        if let Some(c) = ingest::candidate(path, &self.config.ingest.extensions) {
            self.pending.insert(
                c.path,
                Pending {
                    size: c.size,
                    mtime_ns: c.mtime_ns,
                    since: Instant::now(),
                },
            );
        }
    }

    /// Queues the pending files that have stayed the same for the settle time.
    fn settle(&mut self) {
        let settle = Duration::from_secs_f64(self.config.ingest.settle_s);
        let mut ready = Vec::new();
        let extensions = self.config.ingest.extensions.clone();
        self.pending
            .retain(|path, p| match ingest::candidate(path, &extensions) {
                None => false,
                Some(c) if c.size != p.size || c.mtime_ns != p.mtime_ns => {
                    *p = Pending {
                        size: c.size,
                        mtime_ns: c.mtime_ns,
                        since: Instant::now(),
                    };
                    true
                }
                Some(_) if p.since.elapsed() >= settle => {
                    ready.push(path.clone());
                    false
                }
                Some(_) => true,
            });
        for path in ready {
            self.dispatch(&path);
        }
    }

    fn event(&mut self, event: WatchEvent) {
        if let WatchEvent::Finished(p) | WatchEvent::Changed(p) | WatchEvent::NewDirectory(p) =
            &event
        {
            let real_dir = || p.symlink_metadata().is_ok_and(|m| m.file_type().is_dir());
            if !ingest::inside_roots(p, &self.config.ingest.roots)
                || (matches!(event, WatchEvent::NewDirectory(_)) && !real_dir())
            {
                tracing::warn!(file = %p, "ignored: reached through a symlink, outside the roots");
                return;
            }
        }
        match event {
            WatchEvent::Finished(path) if is_sidecar(&path) => {
                if let Err(e) = self
                    .ingestor()
                    .attach_sidecar(&path, crate::ingest::now_ms())
                {
                    tracing::error!(file = %path, error = %e, "attaching sidecar failed");
                    self.failed(&e);
                }
                self.alerts_awaiting(Awaiting::SidecarOf(&path));
            }
            WatchEvent::Finished(path) => {
                self.dispatch(&path);
            }
            WatchEvent::Changed(path) if !is_sidecar(&path) => self.changed(&path),
            WatchEvent::Changed(_) => {}
            WatchEvent::NewDirectory(dir) => {
                self.scan(&[dir], false);
            }
            WatchEvent::Removed(path) => {
                self.pending.remove(&path);
                match self.ingestor().mark_missing(&path, crate::ingest::now_ms()) {
                    Ok(true) => {
                        self.counters.missing += 1;
                        tracing::warn!(file = %path, "recording removed: marked missing");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(file = %path, error = %e, "store write failed");
                        self.failed(&e);
                    }
                }
            }
            WatchEvent::Rescan => {
                tracing::info!("events were lost: rescanning");
                let roots = self.config.ingest.roots.clone();
                self.scan(&roots, true);
            }
        }
    }

    /// Reconciles `roots` with the store: finished files are queued, fresh ones wait to settle,
    /// and (with `missing`) stored files that are gone are marked missing. Returns how many
    /// finished files it queued.
    fn scan(&mut self, roots: &[RecordingPath], missing: bool) -> usize {
        let (found, problems) = ingest::scan(roots, &self.config.ingest.extensions);
        self.monitor.metrics.rescanned(ingest::now_ms() / 1000);
        for p in problems {
            tracing::warn!("{p}");
        }
        let settle_ns = (self.config.ingest.settle_s * 1e9) as i128;
        let now_ns = ingest::now_ms() as i128 * 1_000_000;
        let mut queued = 0;
        for c in found {
            if now_ns - c.mtime_ns >= settle_ns {
                queued += usize::from(self.dispatch(&c.path));
            } else if !self.pending.contains_key(&c.path) {
                self.changed(&c.path);
            }
        }
        if missing {
            let gone: Vec<RecordingPath> = self
                .store
                .all()
                .filter_map(Result::ok)
                .filter(|r| r.state != crate::store::RecordState::Missing)
                .map(|r| r.path)
                .filter(|p| self.is_under_roots(p) && p.as_path().symlink_metadata().is_err())
                .collect();
            for path in gone {
                self.event(WatchEvent::Removed(path));
            }
        }
        queued
    }

    fn done(&mut self, done: Done) {
        self.in_flight.remove(&done.path);
        let s = &done.summary;
        self.counters.stored += s.ingested;
        self.counters.too_short += s.too_short;
        self.counters.failed += s.failed.len();
        self.counters.modified += s.modified.len();
        if let Some(e) = &done.error {
            tracing::error!(file = %done.path, error = %e, "store write failed");
            self.failed(e);
        } else if s.ingested + s.too_short > 0 {
            tracing::info!(file = %done.path, "stored");
        } else if let Some((_, why)) = s.failed.first() {
            tracing::warn!(file = %done.path, error = %why, "stored as failed");
        } else if !s.modified.is_empty() {
            tracing::warn!(file = %done.path, "changed after ingest: flagged, original hash kept");
        }
        // A sidecar may have landed while the recording was being analysed.
        let sidecar = done.path.with_extension("json");
        if sidecar.exists() {
            if let Err(e) = self
                .ingestor()
                .attach_sidecar(&sidecar, crate::ingest::now_ms())
            {
                tracing::error!(file = %sidecar, error = %e, "attaching sidecar failed");
                self.failed(&e);
            }
        }
        // Counted and judged with the sidecar attached (alerts see the consent it brings).
        self.observe(&done);
        if self.dirty.remove(&done.path) {
            self.changed(&done.path);
        }
    }

    /// Starts a purge on its own thread, unless one is running.
    fn start_purge(&mut self, trigger: Trigger) {
        if self.purging {
            return;
        }
        self.purging = true;
        let (store, config, stop, done, lock) = (
            self.store.clone(),
            self.config.clone(),
            self.stop.clone(),
            self.purge_done.clone(),
            self.purge_lock.clone(),
        );
        tokio::task::spawn_blocking(move || {
            // One purge at a time, whether scheduled or asked for over the socket.
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let purger = crate::purge::Purger {
                store: &store,
                config: &config,
                actor: "daemon",
                stop: Some(&stop),
                real_ms: None,
            };
            let _span = tracing::info_span!("purge", ?trigger).entered();
            let result = purger.run(ingest::now_ms(), trigger, false).map(|(_, s)| s);
            let _ = done.send(result);
        });
    }

    fn purged(&mut self, result: PurgeResult) {
        self.purging = false;
        match result {
            Ok(s) => {
                self.counters.purged += s.purged;
                self.counters.purge_refused += s.refused.len();
                let line = format!(
                    "{} purged, {} held, {} locked, {} refused, {} failed",
                    s.purged,
                    s.planned.held,
                    s.planned.locked,
                    s.refused.len(),
                    s.errors.len()
                );
                tracing::info!(
                    purged = s.purged,
                    completed_from_earlier = s.completed_from_earlier,
                    bytes_freed = s.bytes_freed,
                    held = s.planned.held,
                    locked = s.planned.locked,
                    refused = s.refused.len(),
                    failed = s.errors.len(),
                    "purge run done"
                );
                self.monitor.metrics.purged(
                    s.purged,
                    s.refused.len(),
                    s.errors.len(),
                    ingest::now_ms() / 1000,
                );
                if s.errors.is_empty() {
                    self.monitor.last_good_purge = Instant::now();
                }
                self.last_purge = Some(format!(
                    "{} ({line})",
                    crate::policy::fmt_ms(ingest::now_ms())
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "purge run failed");
                self.failed(&e);
            }
        }
    }

    /// Disk pressure: alert (at most hourly) and purge early what the rules allow.
    fn check_pressure(&mut self) {
        let threshold = self.config.retention.min_free_ratio;
        if threshold <= 0.0 {
            return;
        }
        let low: Vec<(String, f64)> = self
            .config
            .ingest
            .roots
            .iter()
            .filter_map(|r| crate::purge::free_ratio(r.as_path()).map(|f| (r.to_string(), f)))
            .filter(|(_, free)| *free < threshold)
            .collect();
        if low.is_empty() {
            self.pressure_alerted = None;
            return;
        }
        if self
            .pressure_alerted
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600))
        {
            self.pressure_alerted = Some(Instant::now());
            for (root, free) in &low {
                tracing::error!(alert = "disk_pressure", root = %root, free_ratio = free,
                    min_free_ratio = threshold,
                    "disk pressure: free space below the threshold; purging early only what the \
                     rules allow (never held or locked recordings)");
            }
        }
        self.start_purge(Trigger::DiskPressure);
    }

    /// Logs the audit chain's head, to be anchored outside the machine.
    fn log_chain_head(&self) {
        match self.store.audit_head() {
            Ok(head) => tracing::info!(seq = head.seq, sha256 = %head.hash, "audit chain head"),
            Err(e) => tracing::error!(error = %e, "reading the audit chain head failed"),
        }
    }

    fn audit(&self, action: AuditAction, details: serde_json::Value) {
        self.audit_as("daemon", action, details)
    }

    fn audit_as(&self, actor: &str, action: AuditAction, details: serde_json::Value) {
        if let Err(e) = self
            .store
            .audit(vec![Draft::new(actor, action, details)], ingest::now_ms())
        {
            tracing::error!(error = %e, action = action.as_str(), "writing an audit entry failed");
            self.failed(&e);
        }
    }

    /// Remembers a store error the daemon cannot go on after (see [`StoreError::is_fatal`]).
    fn failed(&self, e: &StoreError) {
        if e.is_fatal() {
            let _ = self.fatal.set(e.to_string());
        }
    }

    /// Reloads the configuration file (asked by `actor`): roots and the store path keep their
    /// values until a restart. The outcome, in words.
    fn reload(&mut self, actor: &str) -> Result<String, String> {
        let Some(path) = self.config_path.clone() else {
            tracing::info!("reload: no configuration file to reload");
            return Err("the daemon was started without a configuration file".into());
        };
        let loaded = Config::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                // An announcement that cannot be read would fail every recording.
                crate::pipeline::check(&c)?;
                Ok(c)
            });
        match loaded {
            Ok(new) if !new.ingest.roots.is_empty() => {
                let mut note = String::new();
                if new.ingest.roots != self.config.ingest.roots
                    || new.store.path != self.config.store.path
                    || new.control.socket != self.config.control.socket
                    || new.export != self.config.export
                {
                    tracing::warn!(
                        "ingest.roots, store.path, control.socket and [export] take effect at \
                         the next restart"
                    );
                    note = "; ingest.roots, store.path, control.socket and [export] take effect \
                            at the next restart"
                        .into();
                }
                tracing::info!(config = %path.display(), by = actor, "configuration reloaded");
                let mut new = new;
                new.ingest.roots = self.config.ingest.roots.clone();
                new.store.path = self.config.store.path.clone();
                new.control.socket = self.config.control.socket.clone();
                new.export = self.config.export.clone();
                self.audit_as(
                    actor,
                    AuditAction::ConfigReload,
                    serde_json::json!({"path": path.display().to_string(),
                        "from": self.config.digest(), "to": new.digest()}),
                );
                self.config = Arc::new(new);
                self.count_alert_rules();
                Ok(format!("reloaded {}{note}", path.display()))
            }
            Ok(_) => {
                tracing::error!("reload: the new configuration has no roots; keeping the old one");
                Err("the new configuration has no ingest.roots; the old one is kept".into())
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed; keeping the old configuration");
                Err(format!("{e}; the old configuration is kept"))
            }
        }
    }

    /// Publishes the state the control socket reports (`callwarden status`).
    fn publish(&self) {
        self.monitor
            .health
            .heartbeat_ms
            .store(ingest::now_ms(), Ordering::Relaxed);
        self.monitor.metrics.queue(self.in_flight.len());
        if let Ok(mut shared) = self.shared.lock() {
            shared.config = self.config.clone();
            let info = &mut shared.info;
            info.queue_depth = self.in_flight.len();
            info.settling = self.pending.len();
            info.stored = self.counters.stored;
            info.too_short = self.counters.too_short;
            info.failed = self.counters.failed;
            info.purged = self.counters.purged;
            if info.last_purge != self.last_purge {
                info.last_purge = self.last_purge.clone();
            }
            if let Some(export) = &self.monitor.export {
                let e = export.lock().unwrap_or_else(|p| p.into_inner());
                info.export_refused.clone_from(&e.refused);
                info.export_error.clone_from(&e.last_error);
            }
        }
    }

    fn status(&self) -> String {
        let c = &self.counters;
        format!(
            "stored {}, too short {}, failed {}, modified {}, missing {}, queued {}, settling {}, purged {}; last purge {}",
            c.stored,
            c.too_short,
            c.failed,
            c.modified,
            c.missing,
            self.in_flight.len(),
            self.pending.len(),
            c.purged,
            self.last_purge.as_deref().unwrap_or("none yet")
        )
    }
}

fn is_sidecar(path: &RecordingPath) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Starts `n` worker threads that ingest the jobs of `queue` and report to `done`.
/// Counts a worker thread alive for `/healthz` while it exists (a panic included).
struct Alive(Arc<Health>);

impl Alive {
    fn new(health: Arc<Health>) -> Alive {
        health.workers_alive.fetch_add(1, Ordering::Relaxed);
        Alive(health)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.workers_alive.fetch_sub(1, Ordering::Relaxed);
    }
}

fn workers(
    n: usize,
    store: Arc<Store>,
    queue: std_mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<Done>,
    health: Arc<Health>,
) {
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..n {
        let (store, queue, done) = (store.clone(), queue.clone(), done.clone());
        let alive = Alive::new(health.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("callwarden-worker-{i}"))
            .spawn(move || loop {
                let _alive = &alive;
                let job = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok(Job { candidate, config }) = job else {
                    return;
                };
                let ingestor = Ingestor {
                    store: &store,
                    config: &config,
                };
                let path = candidate.path.clone();
                let _span = tracing::info_span!("recording", file = %path).entered();
                // Another writer (a file marked missing, a consent set over the socket) may
                // change the record while it is analysed: the write is then refused as stale,
                // and the file is judged again against the record as it is now.
                let mut summary = Summary::default();
                let error = crate::store::until_fresh(|| {
                    let previous = ingest::live_record(&store, &path).ok().flatten();
                    let work = ingestor.process(candidate.clone(), previous);
                    summary = Summary::default();
                    ingestor.store_one(work, ingest::now_ms(), &mut summary)
                })
                .err();
                if done
                    .send(Done {
                        path,
                        summary,
                        error,
                    })
                    .is_err()
                {
                    return;
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a worker thread");
        }
    }
}

fn notify(state: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(state);
}

/// Runs the daemon until SIGTERM, SIGINT or `shutdown` completes.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<Counters, DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};

    if config.ingest.roots.is_empty() {
        return Err(DaemonError::NoRoots);
    }
    let store = Arc::new(Store::open_anchored(
        &config.store.path,
        &config.store.anchor_for(&config.store.path),
    )?);
    // Deleting is part of the job even when no rule expires anything (denied consent, disk
    // pressure, manual purges): a root the service cannot write to is said at once, not first
    // found by a failing purge.
    for root in &config.ingest.roots {
        match crate::purge::writable(root.as_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!(
                root = %root,
                error = %e,
                "callwarden cannot delete in this root: purges there (expired, consent denied, \
                 disk pressure, manual) will fail and be retried; give the service write access \
                 (systemd ReadWritePaths=, the folders' group)"
            ),
            _ => {}
        }
    }
    let mut watch = roots::Watch::start(&config.ingest.roots)?;
    let (queue_tx, queue_rx) = std_mpsc::channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let n = match config.ingest.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let health = Arc::new(Health::default());
    health.workers.store(n, Ordering::Relaxed);
    health
        .heartbeat_ms
        .store(ingest::now_ms(), Ordering::Relaxed);
    workers(n, store.clone(), queue_rx, done_tx, health.clone());
    let metrics = Arc::new(Metrics::new());
    let endpoint = if config.metrics.listen.is_empty() {
        None
    } else {
        let e = Endpoint::start(&config.metrics.listen, metrics.clone(), health.clone())?;
        tracing::info!(addr = %e.addr(), "metrics endpoint listening (/metrics, /healthz)");
        Some(e)
    };
    // The outbox is switched on before anything is ingested, so the first export holds the
    // site as it is and every change after it.
    let exporter = crate::fleet::export::start(
        store.clone(),
        &config.export,
        config.consent.default,
        metrics.clone(),
    )?;
    let (calls_alerts_tx, mut calls_alerts_rx) = mpsc::unbounded_channel();
    let monitor = Monitor {
        export: exporter.as_ref().map(|e| e.status.clone()),
        metrics,
        health,
        dispatcher: Some(Dispatcher::start(config.alerts.concurrency)),
        gate: alerts::Gate::default(),
        recent: VecDeque::new(),
        last_good_purge: Instant::now(),
        audit_breaks: Arc::new(AtomicUsize::new(0)),
        coverage: Default::default(),
        calls_alerted: Default::default(),
        calls_alerts: calls_alerts_tx,
        awaiting_sidecar: Vec::new(),
    };
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    // The control socket: bound before READY, so a CLI started after it finds the daemon.
    let listener = if config.control.socket.as_os_str().is_empty() {
        None
    } else {
        Some(crate::control::bind(&config.control)?)
    };
    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel::<crate::control::ReloadRequest>();
    let mut initial = Shared::new(
        Arc::new(config.clone()),
        crate::query::DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms: ingest::now_ms(),
            // Fixed until a restart (a reload keeps them).
            roots: config.ingest.roots.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
    );
    initial.reload = Some(reload_tx);
    let purge_lock = initial.purge_lock.clone();
    let shared = Arc::new(Mutex::new(initial));
    let (control_stop, control_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = listener {
        tracing::info!(socket = %config.control.socket.display(), "control socket ready");
        tokio::spawn(crate::control::serve(
            listener,
            store.clone(),
            shared.clone(),
            async move {
                let _ = control_stopped.await;
            },
        ));
    }
    // The web console: bound before READY too, so a failure to listen stops the start.
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) =
        crate::web::bind(&config.web)
            .await
            .map_err(|source| DaemonError::Web {
                address: config.web.listen.clone(),
                source,
            })?
    {
        tracing::info!(listen = %config.web.listen, scheme = listener.scheme(), "web console ready");
        tokio::spawn(crate::web::serve(
            listener,
            store.clone(),
            shared.clone(),
            async move {
                let _ = web_stopped.await;
            },
        ));
    }
    let rescan_every = Duration::from_secs_f64(config.ingest.rescan_interval_s);
    let (purge_tx, mut purge_rx) = mpsc::unbounded_channel();
    let cdr_sources = cdrs::Sources::new(&config.calls);
    let mut state = State {
        config: Arc::new(config),
        config_path,
        store: store.clone(),
        queue: queue_tx,
        pending: HashMap::new(),
        in_flight: HashSet::new(),
        dirty: HashSet::new(),
        counters: Counters::default(),
        purging: false,
        purge_done: purge_tx,
        stop: Arc::new(AtomicBool::new(false)),
        pressure_alerted: None,
        last_purge: None,
        shared,
        purge_lock,
        fatal: std::cell::OnceCell::new(),
        cdr_sources,
        monitor,
    };
    state.count_alert_rules();
    state.audit(
        AuditAction::DaemonStart,
        serde_json::json!({"version": env!("CARGO_PKG_VERSION"),
            "config": state.config.digest(),
            "roots": state.config.ingest.roots}),
    );
    // The watch is up before the scan, so nothing falls between the two.
    let roots = state.config.ingest.roots.clone();
    state.scan(&roots, true);
    tracing::info!(
        roots = ?roots,
        workers = n,
        queued = state.in_flight.len(),
        settling = state.pending.len(),
        "watching"
    );
    notify(&[sd_notify::NotifyState::Ready]);

    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut roots_tick = tokio::time::interval(roots::ROOTS_CHECK);
    let purge_every = |c: &Config| Duration::from_secs_f64(c.retention.purge_interval_s);
    let mut purge_period = purge_every(&state.config);
    // The first purge a minute after start (or sooner, if purges are more frequent): a restart
    // does not wait a whole period.
    let mut purge_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + purge_period.min(Duration::from_secs(60)),
        purge_period,
    );
    let mut pressure_tick = tokio::time::interval(Duration::from_secs(60));
    let mut head_tick = tokio::time::interval(Duration::from_secs(24 * 3600));
    let mut monitor_tick = tokio::time::interval(Duration::from_secs(30));
    let mut gauges_tick = tokio::time::interval(monitor::GAUGES_EVERY);
    let mut cdr_tick = tokio::time::interval(Duration::from_secs_f64(state.config.calls.poll_s));
    let mut rescan =
        tokio::time::interval_at(tokio::time::Instant::now() + rescan_every, rescan_every);
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut keepalive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(5)));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            event = watch.events.recv(), if watch.alive => match event {
                Some(event) => state.event(event),
                None => watch.lost(&state.monitor.health),
            },
            Some(done) = done_rx.recv() => state.done(done),
            _ = tick.tick() => {
                state.settle();
                state.alerts_awaiting(Awaiting::Due);
            }
            _ = rescan.tick() => {
                let roots = state.config.ingest.roots.clone();
                // What the watch reported is stored or queued by now: what this finds finished
                // and new, the watch never told of.
                let missed = state.scan(&roots, true);
                if missed > 0 {
                    state.monitor.metrics.rescan_found(missed);
                    tracing::warn!(
                        files = missed,
                        "the rescan found finished recordings the filesystem watch did not \
                         report: a filesystem without events (NFS, CIFS) or lost events; they \
                         are ingested now, and a shorter ingest.rescan_interval_s finds them sooner"
                    );
                }
            }
            _ = keepalive.tick() => {
                let status = state.status();
                if watchdog.is_some() {
                    notify(&[sd_notify::NotifyState::Watchdog, sd_notify::NotifyState::Status(&status)]);
                } else {
                    notify(&[sd_notify::NotifyState::Status(&status)]);
                }
            }
            _ = purge_tick.tick() => state.start_purge(Trigger::Schedule),
            Some(result) = purge_rx.recv() => state.purged(result),
            _ = pressure_tick.tick() => state.check_pressure(),
            _ = head_tick.tick() => {
                state.log_chain_head();
                state.check_chain();
            }
            _ = monitor_tick.tick() => {
                state.monitor_tick();
                state.check_calls();
            }
            Some(raised) = calls_alerts_rx.recv() => state.raise(raised),
            _ = gauges_tick.tick() => state.refresh_gauges(),
            _ = cdr_tick.tick() => state.follow_cdrs(),
            _ = roots_tick.tick() => {
                // sled's own flush thread fails alone (a full disk) and every write after it
                // fails too: a flush here finds that out while the daemon is idle, and moves
                // the anchor with what ingest stored.
                if let Err(e) = state.store.flush() {
                    tracing::error!(error = %e, "store flush failed");
                    state.failed(&e);
                }
                let scan = watch.check(&state.monitor.health);
                if !scan.is_empty() {
                    state.scan(&scan, false);
                }
            }
            Some((actor, reply)) = reload_rx.recv() => {
                let _ = reply.send(state.reload(&actor));
                if purge_every(&state.config) != purge_period {
                    purge_period = purge_every(&state.config);
                    purge_tick = tokio::time::interval_at(
                        tokio::time::Instant::now() + purge_period,
                        purge_period,
                    );
                }
            }
            _ = hup.recv() => {
                let _ = state.reload("daemon (SIGHUP)");
                if purge_every(&state.config) != purge_period {
                    purge_period = purge_every(&state.config);
                    purge_tick = tokio::time::interval_at(
                        tokio::time::Instant::now() + purge_period,
                        purge_period,
                    );
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = &mut shutdown => break,
        }
        state.publish();
        if let Some(why) = state.fatal.get() {
            tracing::error!(
                error = %why,
                "the store failed: stopping, so that the service is restarted with the store \
                 opened afresh (recordings not stored yet are ingested at the next start)"
            );
            break;
        }
    }

    // Stop: no new work, drain what is in flight (bounded), flush.
    notify(&[sd_notify::NotifyState::Stopping]);
    drop(watch);
    let (tx, _) = std_mpsc::channel();
    state.queue = tx; // closing the queue ends the idle workers
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(state.config.ingest.drain_timeout_s);
    while !state.in_flight.is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(done)) => state.done(done),
            Ok(None) | Err(_) => break,
        }
    }
    if !state.in_flight.is_empty() {
        tracing::warn!(
            left = state.in_flight.len(),
            "drain timeout: unfinished files will be ingested at the next start"
        );
    }
    // A running purge stops after its batch; what it had started, the next run completes.
    state.stop.store(true, Ordering::Relaxed);
    if state.purging {
        match tokio::time::timeout_at(deadline, purge_rx.recv()).await {
            Ok(Some(result)) => state.purged(result),
            _ => tracing::warn!("drain timeout: a purge batch is still running"),
        }
    }
    // Alerts still waiting for a sidecar are judged now, not lost.
    state.alerts_awaiting(Awaiting::All);
    state.audit(
        AuditAction::DaemonStop,
        serde_json::json!({"stored": state.counters.stored,
            "too_short": state.counters.too_short, "purged": state.counters.purged}),
    );
    let _ = control_stop.send(());
    let _ = web_stop.send(());
    if let Some(e) = endpoint {
        e.stop();
    }
    if let Some(d) = state.monitor.dispatcher.take() {
        d.stop(Duration::from_secs(5));
    }
    if let Some(e) = exporter {
        e.stop(Duration::from_secs(5));
    }
    if !state.config.control.socket.as_os_str().is_empty() {
        // Ours to remove: a CLI that finds no socket opens the store (free in a moment).
        let socket = &state.config.control.socket;
        if std::fs::symlink_metadata(socket)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            let _ = std::fs::remove_file(socket);
        }
    }
    if let Some(why) = state.fatal.get() {
        return Err(DaemonError::StoreFailed(why.clone()));
    }
    store.flush()?;
    tracing::info!(status = %state.status(), "stopped");
    Ok(state.counters)
}
