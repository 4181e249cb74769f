//! The daemon's monitoring: metrics moved as recordings are stored, the store gauges refreshed
//! every [`GAUGES_EVERY`] (on a blocking thread; the consent coverage, a scan of 30 days of
//! summaries, when the store has changed and at most a tenth of the time), alerts raised on recordings and on the system and passed
//! through the gate to the dispatcher, and the daily audit chain check. A recording stored
//! without its sidecar has its alerts judged when the sidecar comes or `alerts.sidecar_wait_s`
//! later (all of them at the stop).

use crate::recording_path::RecordingPath;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::alerts;
use crate::dispatch::Dispatcher;
use crate::endpoint::Health;
use crate::ingest;
use crate::metrics::{Gauges, Metrics, Outcome};

use super::{Done, State};

/// Metrics, health and alerts: what the daemon tells its operators.
pub(super) struct Monitor {
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) dispatcher: Option<Dispatcher>,
    pub(super) gate: alerts::Gate,
    /// Recordings processed in the last hour: when, and whether they failed.
    pub(super) recent: VecDeque<(Instant, bool)>,
    /// The last successful purge run (or the start).
    pub(super) last_good_purge: Instant,
    /// Breaks found by the last audit chain check (run on its own thread).
    pub(super) audit_breaks: Arc<AtomicUsize>,
    /// When the consent coverage was computed; held by the refresh running.
    pub(super) coverage: Arc<Mutex<Coverage>>,
    /// The calls already alerted (missing, short), by call key, with when; held by the check
    /// running.
    pub(super) calls_alerted: Arc<Mutex<std::collections::HashMap<String, i64>>>,
    /// Where the calls check sends the alerts it raises (to pass the gate on the loop).
    pub(super) calls_alerts: tokio::sync::mpsc::UnboundedSender<Vec<alerts::Alert>>,
    /// Recordings stored without their sidecar, whose alerts wait for it until then.
    pub(super) awaiting_sidecar: Vec<(Instant, RecordingPath)>,
    /// The exporter's state, when `[export.postgres]` is set.
    pub(super) export: Option<Arc<Mutex<crate::fleet::export::ExportStatus>>>,
}

/// How often the store gauges are refreshed.
pub(super) const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// The consent coverage is computed again when the store has changed since (its audit chain has
/// grown: every ingest, consent change, hold and purge is an entry) or an hour has passed (the
/// 30-day window slides), and no sooner than ten times its last cost after it, so that on a
/// large store it takes at most a tenth of one core.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    head: Option<u64>,
    at: Option<Instant>,
    next: Option<Instant>,
}

impl Coverage {
    fn due(&self, head: u64, now: Instant) -> bool {
        let changed = self.head != Some(head)
            || self
                .at
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(3600));
        changed && self.next.is_none_or(|next| now >= next)
    }

    fn done(&mut self, head: u64, started: Instant, now: Instant) {
        let cost = now.duration_since(started);
        self.head = Some(head);
        self.at = Some(now);
        self.next = Some(now + GAUGES_EVERY.max(cost * 10));
    }
}

/// Which recordings waiting for their sidecar have their alerts judged.
pub(super) enum Awaiting<'a> {
    /// Those whose wait is over.
    Due,
    /// All of them (the daemon is stopping).
    All,
    /// The one whose sidecar this is (it has just been attached).
    SidecarOf(&'a RecordingPath),
}

impl State {
    /// Counts a finished recording in the metrics and raises its alerts.
    pub(super) fn observe(&mut self, done: &Done) {
        let s = &done.summary;
        let result = if done.error.is_some() {
            Outcome::StoreError
        } else if s.ingested > 0 {
            Outcome::Stored
        } else if s.too_short > 0 {
            Outcome::TooShort
        } else if !s.failed.is_empty() {
            Outcome::Failed
        } else if !s.modified.is_empty() {
            Outcome::Modified
        } else {
            return;
        };
        let record = self.store.by_path(&done.path).ok().flatten();
        let summary = record.as_ref().map(crate::summary::Summary::of);
        let elapsed = record
            .as_ref()
            .and_then(|r| r.report.as_ref())
            .map(|rep| rep.analyzer.elapsed_ms as f64 / 1000.0);
        let m = &self.monitor;
        m.metrics.ingested(
            result,
            elapsed,
            summary.as_ref().and_then(|s| s.score),
            summary.as_ref().map_or(&[][..], |s| &s.flags),
        );
        let now = Instant::now();
        self.monitor
            .recent
            .push_back((now, matches!(result, Outcome::Failed | Outcome::StoreError)));
        while self
            .monitor
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(3600))
        {
            self.monitor.recent.pop_front();
        }
        if let (Some(summary), Outcome::Stored) = (summary, result) {
            // The sidecar, when the PBX writes one, brings the consent the rules judge.
            let wait = self.config.alerts.sidecar_wait_s;
            if wait > 0.0 && !done.path.with_extension("json").exists() {
                self.monitor
                    .awaiting_sidecar
                    .push((now + Duration::from_secs_f64(wait), done.path.clone()));
            } else {
                self.alert_recording(&summary);
            }
        }
    }

    /// Raises the alerts of one stored recording.
    fn alert_recording(&mut self, summary: &crate::summary::Summary) {
        let time = crate::policy::fmt_ms(ingest::now_ms());
        let raised = alerts::for_recording(
            &self.config.alerts.rule,
            summary,
            self.config.consent.default,
            &self.config.pci,
            &time,
        );
        self.raise(raised);
    }

    /// Judges the alerts of the recordings whose wait for a sidecar is over, or of all that
    /// wait (at shutdown), or of the one whose sidecar has come: as the store has them now.
    pub(super) fn alerts_awaiting(&mut self, which: Awaiting) {
        if self.monitor.awaiting_sidecar.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.monitor.awaiting_sidecar)
            .into_iter()
            .partition(|(deadline, path)| match which {
                Awaiting::Due => *deadline <= now,
                Awaiting::All => true,
                Awaiting::SidecarOf(sidecar) => path.with_extension("json") == sidecar,
            });
        self.monitor.awaiting_sidecar = waiting;
        for (_, path) in due {
            // Gone from the store since (purged, say): nothing to judge.
            if let Ok(Some(record)) = self.store.by_path(&path) {
                self.alert_recording(&crate::summary::Summary::of(&record));
            }
        }
    }

    /// Every 30 s, when the store holds call records: the last day's calls matched on a
    /// blocking thread, their gauges set, each call newly missing or short alerted once (when
    /// a rule watches calls), and the day's coverage judged.
    pub(super) fn check_calls(&self) {
        let rules: Vec<crate::config::AlertRule> = self
            .config
            .alerts
            .rule
            .iter()
            .filter(|r| !r.calls.is_empty() || r.coverage_below.is_some())
            .cloned()
            .collect();
        if !self.store.has_calls() {
            return;
        }
        let (store, config, alerted, tx, metrics) = (
            self.store.clone(),
            self.config.clone(),
            self.monitor.calls_alerted.clone(),
            self.monitor.calls_alerts.clone(),
            self.monitor.metrics.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let Ok(mut alerted) = alerted.try_lock() else {
                return;
            };
            const HOUR_MS: i64 = 3_600_000;
            let now = ingest::now_ms();
            let grace = (config.calls.grace_s * 1000.0) as i64;
            let from = now - 24 * HOUR_MS - grace;
            // The same matching as `calls list` and `report coverage`.
            let ctx = crate::query::Context {
                store: &store,
                config: &config,
                daemon: None,
                now_ms: now,
                purge_lock: None,
                reload: None,
            };
            let window = crate::query::Window {
                from_ms: Some(from),
                until_ms: None,
            };
            let mut m = match crate::query::matching(&ctx, window) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("the calls check could not read the store: {e}");
                    return;
                }
            };
            // The day whose calls are all past their grace time.
            let day = crate::calls::Matching {
                calls: m
                    .calls
                    .iter()
                    .filter(|c| c.end_ms + grace <= now && c.start_ms >= from)
                    .cloned()
                    .collect(),
                ..Default::default()
            };
            let orphans = m
                .orphans
                .iter()
                .filter(|u| u.started_ms >= now - 24 * HOUR_MS)
                .count();
            let report = crate::calls::coverage_report(&day, 0);
            metrics.calls(&report.total, orphans);
            let coverage = report.total.coverage;
            if rules.is_empty() {
                return;
            }
            m.calls.retain(|c| {
                matches!(
                    c.state,
                    crate::calls::CallState::Missing | crate::calls::CallState::Short
                ) && alerted.insert(c.call.clone(), now).is_none()
            });
            alerted.retain(|_, t| *t > now - 72 * HOUR_MS);
            let time = crate::policy::fmt_ms(now);
            let raised = alerts::for_calls(&rules, &m, coverage, &time);
            if !raised.is_empty() {
                let _ = tx.send(raised);
            }
        });
    }

    /// Sends what passes the gate; counts what it holds back.
    pub(super) fn raise(&mut self, raised: Vec<alerts::Alert>) {
        if raised.is_empty() {
            return;
        }
        let config = Arc::new(self.config.alerts.clone());
        let now = ingest::now_ms();
        for alert in raised {
            match self.monitor.gate.admit(&alert, &config, now) {
                alerts::Verdict::Send => {
                    self.monitor.metrics.alert(&alert.rule, "sent");
                    if let Some(d) = &self.monitor.dispatcher {
                        d.send(alert, &config);
                    }
                }
                alerts::Verdict::Duplicate => self.monitor.metrics.alert(&alert.rule, "duplicate"),
                alerts::Verdict::RateLimited => {
                    self.monitor.metrics.alert(&alert.rule, "rate_limited");
                    tracing::debug!(rule = %alert.rule, "alert held back by the rate limit: {}", alert.message);
                }
            }
        }
    }

    /// Each roots' share of free space.
    fn disk_free(&self) -> Vec<(String, f64)> {
        self.config
            .ingest
            .roots
            .iter()
            .filter_map(|r| crate::purge::free_ratio(r.as_path()).map(|f| (r.to_string(), f)))
            .collect()
    }

    /// Every [`GAUGES_EVERY`]: the store gauges, on a blocking thread (skipped while the last
    /// refresh still runs).
    pub(super) fn refresh_gauges(&mut self) {
        let (store, metrics, free, law, coverage) = (
            self.store.clone(),
            self.monitor.metrics.clone(),
            self.disk_free(),
            self.config.consent.default,
            self.monitor.coverage.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let Ok(mut coverage) = coverage.try_lock() else {
                return;
            };
            let head = store.audit_head().map_or(0, |h| h.seq);
            let mut g = Gauges {
                disk_free: free,
                store_bytes: store.size_on_disk(),
                audit_length: head,
                ..Gauges::default()
            };
            if let Ok(holds) = store.holds() {
                let held: HashSet<u64> = holds
                    .iter()
                    .filter(|h| h.released.is_none())
                    .flat_map(|h| h.recordings.iter().map(|r| r.0))
                    .collect();
                g.held = held.len();
            }
            let started = Instant::now();
            if coverage.due(head, started) {
                let since = ingest::now_ms() - 30 * 86_400_000;
                let recent = store.summaries(Some(since), None).flatten();
                // No recording in the window: coverage is 0 of 0, shown as 0.
                g.consent_coverage = Some(
                    crate::kpi::kpi(recent, crate::kpi::GroupBy::All, law)
                        .total
                        .consent_coverage
                        .unwrap_or(0.0),
                );
                coverage.done(head, started, Instant::now());
            }
            metrics.refresh(&g);
        });
    }

    /// Every 30 s: the system alerts.
    pub(super) fn monitor_tick(&mut self) {
        let disk_free = self.disk_free();
        let failed = self.monitor.recent.iter().filter(|(_, f)| *f).count();
        let system = alerts::SystemState {
            processed_1h: self.monitor.recent.len(),
            failed_1h: failed,
            disk_free,
            min_free_ratio: self.config.retention.min_free_ratio,
            since_purge_s: self.monitor.last_good_purge.elapsed().as_secs_f64(),
            purge_interval_s: self.config.retention.purge_interval_s,
            audit_breaks: self.monitor.audit_breaks.load(Ordering::Relaxed),
            ..alerts::SystemState::default()
        };
        let mut system = system;
        if let Some(export) = &self.monitor.export {
            let e = export.lock().unwrap_or_else(|p| p.into_inner()).clone();
            system.export_backlog = e.backlog;
            system.export_max_backlog = e.max_backlog;
            system.export_overflowed = e.overflowed;
            system.export_refused = e.refused;
        }
        let time = crate::policy::fmt_ms(ingest::now_ms());
        let raised = alerts::for_system(&self.config.alerts.rule, &system, &time);
        self.raise(raised);
    }

    /// The alert rules' label sets, at 0 until they fire (at start and after a reload).
    pub(super) fn count_alert_rules(&self) {
        let rules = self.config.alerts.rule.iter().map(|r| r.name.as_str());
        self.monitor.metrics.alert_rules(rules);
    }

    /// The daily audit chain check, on its own thread; its breaks feed `audit_verify_failed`.
    pub(super) fn check_chain(&self) {
        let (store, breaks) = (self.store.clone(), self.monitor.audit_breaks.clone());
        tokio::task::spawn_blocking(move || match crate::verify::verify(&store, false, 1) {
            Ok(v) => {
                if !v.chain_breaks.is_empty() {
                    tracing::error!(
                        breaks = v.chain_breaks.len(),
                        "the audit chain check found breaks: run `callwarden audit verify`"
                    );
                }
                breaks.store(v.chain_breaks.len(), Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "the audit chain check failed"),
        });
    }
}
