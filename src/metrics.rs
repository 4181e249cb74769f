//! The daemon's Prometheus metrics (the prometheus-client adapter): what it counts, and the
//! text it serves at `/metrics`.
//!
//! Counters move as the daemon works (a recording stored, a purge done); gauges that need the
//! store (held recordings, consent coverage, store size, audit chain length, disk free) are
//! refreshed by the daemon on a timer, never at scrape time, so a scrape costs nothing.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}

/// Every metric the daemon exposes.
pub struct Metrics {
    registry: Registry,
    ingested: Family<Labels, Counter>,
    analysis_seconds: Histogram,
    queue_depth: Gauge,
    score: Histogram,
    flags: Family<Labels, Counter>,
    consent_coverage: Gauge<f64, AtomicU64>,
    purges: Family<Labels, Counter>,
    held: Gauge,
    disk_free: Family<Labels, Gauge<f64, AtomicU64>>,
    store_bytes: Gauge,
    audit_length: Gauge,
    last_purge: Gauge<i64, AtomicI64>,
    last_rescan: Gauge<i64, AtomicI64>,
    rescan_found: Counter,
    alerts: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("callwarden");
        let ingested = Family::<Labels, Counter>::default();
        registry.register(
            "recordings_ingested",
            "Recordings ingested, by result (stored, too_short, failed, modified, missing)",
            ingested.clone(),
        );
        let analysis_seconds = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register(
            "analysis_seconds",
            "Time to hash, decode and analyse one recording",
            analysis_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Recordings waiting for or in analysis",
            queue_depth.clone(),
        );
        let score = Histogram::new((1..=10).map(|i| i as f64 * 10.0));
        registry.register(
            "quality_score",
            "Quality scores (0-100) of the recordings analysed",
            score.clone(),
        );
        let flags = Family::<Labels, Counter>::default();
        registry.register(
            "flags",
            "Flags raised on recordings analysed, by code",
            flags.clone(),
        );
        let consent_coverage = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "consent_coverage_ratio",
            "Share of the last 30 days' recordings with granted or not-required consent",
            consent_coverage.clone(),
        );
        let purges = Family::<Labels, Counter>::default();
        registry.register(
            "purges",
            "Recordings purged by the daemon, by result (purged, refused, failed)",
            purges.clone(),
        );
        let held = Gauge::default();
        registry.register(
            "held_recordings",
            "Recordings under legal hold",
            held.clone(),
        );
        let disk_free = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "disk_free_ratio",
            "Share of free space on each recordings root's filesystem",
            disk_free.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_size_bytes",
            "The store's size on disk",
            store_bytes.clone(),
        );
        let audit_length = Gauge::default();
        registry.register(
            "audit_chain_length",
            "Entries in the audit log",
            audit_length.clone(),
        );
        let last_purge = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "last_purge_timestamp_seconds",
            "When the last purge run finished without error (Unix time)",
            last_purge.clone(),
        );
        let last_rescan = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "last_rescan_timestamp_seconds",
            "When the last rescan of the roots finished (Unix time)",
            last_rescan.clone(),
        );
        let rescan_found = Counter::default();
        registry.register(
            "rescan_found_recordings",
            "Finished recordings that a scheduled rescan found and the filesystem watch had not \
             reported (a filesystem without events, such as NFS, or lost events)",
            rescan_found.clone(),
        );
        let alerts = Family::<Labels, Counter>::default();
        registry.register(
            "alerts",
            "Alerts raised, by rule and outcome (sent, suppressed)",
            alerts.clone(),
        );
        let build = Family::<Labels, Gauge>::default();
        registry.register("build_info", "The running build", build.clone());
        build
            .get_or_create(&vec![
                ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                (
                    "schema".to_string(),
                    crate::store::SCHEMA_VERSION.to_string(),
                ),
            ])
            .set(1);
        Metrics {
            registry,
            ingested,
            analysis_seconds,
            queue_depth,
            score,
            flags,
            consent_coverage,
            purges,
            held,
            disk_free,
            store_bytes,
            audit_length,
            last_purge,
            last_rescan,
            rescan_found,
            alerts,
        }
    }

    /// One recording done: its result, and for an analysed one its time, score and flags.
    pub fn ingested(
        &self,
        result: &str,
        analysis_s: Option<f64>,
        score: Option<u32>,
        flags: &[String],
    ) {
        self.ingested.get_or_create(&label("result", result)).inc();
        if let Some(s) = analysis_s {
            self.analysis_seconds.observe(s);
        }
        if let Some(score) = score {
            self.score.observe(score as f64);
        }
        for f in flags {
            self.flags.get_or_create(&label("code", f)).inc();
        }
    }

    pub fn purged(&self, purged: usize, refused: usize, failed: usize, at_s: i64) {
        for (result, n) in [("purged", purged), ("refused", refused), ("failed", failed)] {
            self.purges
                .get_or_create(&label("result", result))
                .inc_by(n as u64);
        }
        if failed == 0 {
            self.last_purge.set(at_s);
        }
    }

    pub fn rescanned(&self, at_s: i64) {
        self.last_rescan.set(at_s);
    }

    /// Recordings a scheduled rescan found that the watch had not reported.
    pub fn rescan_found(&self, n: usize) {
        self.rescan_found.inc_by(n as u64);
    }

    pub fn queue(&self, depth: usize) {
        self.queue_depth.set(depth as i64);
    }

    pub fn alert(&self, rule: &str, outcome: &str) {
        self.alerts
            .get_or_create(&vec![
                ("rule".to_string(), rule.to_string()),
                ("outcome".to_string(), outcome.to_string()),
            ])
            .inc();
    }

    /// The gauges read from the store and the filesystems.
    pub fn refresh(&self, s: &Gauges) {
        self.held.set(s.held as i64);
        if let Some(c) = s.consent_coverage {
            self.consent_coverage.set(c);
        }
        self.store_bytes.set(s.store_bytes as i64);
        self.audit_length.set(s.audit_length as i64);
        for (root, free) in &s.disk_free {
            self.disk_free
                .get_or_create(&label("root", root))
                .set(*free);
        }
    }

    /// The exposition text (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The gauges the daemon refreshes on its timer.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub held: usize,
    pub consent_coverage: Option<f64>,
    pub store_bytes: u64,
    pub audit_length: u64,
    pub disk_free: Vec<(String, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_exposed() {
        let m = Metrics::new();
        m.ingested("stored", Some(0.02), Some(87), &["low_snr".into()]);
        m.ingested("failed", None, None, &[]);
        m.purged(3, 1, 0, 1_700_000_000);
        m.refresh(&Gauges {
            held: 2,
            consent_coverage: Some(0.75),
            store_bytes: 1000,
            audit_length: 42,
            disk_free: vec![("/r".into(), 0.5)],
        });
        let text = m.encode();
        for line in [
            "callwarden_recordings_ingested_total{result=\"stored\"} 1",
            "callwarden_recordings_ingested_total{result=\"failed\"} 1",
            "callwarden_flags_total{code=\"low_snr\"} 1",
            "callwarden_purges_total{result=\"purged\"} 3",
            "callwarden_held_recordings 2",
            "callwarden_consent_coverage_ratio 0.75",
            "callwarden_audit_chain_length 42",
            "callwarden_disk_free_ratio{root=\"/r\"} 0.5",
            "callwarden_last_purge_timestamp_seconds 1700000000",
            "callwarden_quality_score_count 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.contains("callwarden_build_info{version=\""));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
