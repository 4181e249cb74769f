//! The daemon's Prometheus metrics (the prometheus-client adapter): what it counts, and the
//! text it serves at `/metrics`.
//!
//! Counters move as the daemon works (a recording stored, a purge done); every label set a
//! counter can take that is known in advance (results, flag codes, the configured alert rules
//! and their outcomes) exists from the start at 0, so `rate()` over it is 0, not empty. Gauges
//! that need the store (held recordings, consent coverage, store size, audit chain length, disk
//! free) are refreshed by the daemon on a timer, never at scrape time, so a scrape costs nothing.
//!
//! prometheus-client writes OpenMetrics only; Prometheus' text format 0.0.4 (what a plain client
//! and `promtool check metrics` read) is derived from it here, for the client that does not ask
//! for OpenMetrics.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// How one recording's processing ended, as `callwarden_recordings_ingested_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    TooShort,
    Failed,
    Modified,
    StoreError,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Stored,
        Outcome::TooShort,
        Outcome::Failed,
        Outcome::Modified,
        Outcome::StoreError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::TooShort => "too_short",
            Outcome::Failed => "failed",
            Outcome::Modified => "modified",
            Outcome::StoreError => "store_error",
        }
    }
}

/// What the alert gate did with an alert.
pub const ALERT_OUTCOMES: [&str; 3] = ["sent", "duplicate", "rate_limited"];

/// The states `callwarden_calls_last_day` counts.
const CALL_STATES: [&str; 5] = ["must_record", "recorded", "missing", "short", "orphan"];

/// The results a purge run counts.
const PURGE_RESULTS: [&str; 3] = ["purged", "refused", "failed"];

/// The exposition format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4: the default.
    Text,
    /// OpenMetrics 1.0, for the client that asks for it (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it is accepted with a quality at
    /// least that of plain text, else the text format (also without a header, or a bad one).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut text) = (0.0f64, 0.0f64);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .find_map(|q| q.parse::<f64>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

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
    calls: Family<Labels, Gauge>,
    calls_coverage: Gauge<f64, AtomicU64>,
    export: ExportMetrics,
}

/// The exporter's metrics (all 0 while export is off).
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    backlog: Gauge,
    lag: Gauge<f64, AtomicU64>,
    events: Counter,
    failures: Counter,
    refused: Gauge,
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
            "Recordings processed, by result (stored, too_short, failed, modified, store_error)",
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
        let calls = Family::<Labels, Gauge>::default();
        registry.register(
            "calls_last_day",
            "The last 24 hours' calls (from the call records, past their grace time), by state \
             (must_record, recorded, missing, short, orphan recordings)",
            calls.clone(),
        );
        for state in CALL_STATES {
            let _ = calls.get_or_create(&label("state", state));
        }
        let calls_coverage = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "calls_coverage_ratio",
            "Share of the last 24 hours' calls to record that were recorded",
            calls_coverage.clone(),
        );
        let export = ExportMetrics::default();
        registry.register(
            "export_backlog_events",
            "Outbox events waiting for the central database",
            export.backlog.clone(),
        );
        registry.register(
            "export_lag_seconds",
            "Age of the oldest outbox event the central database has not acknowledged",
            export.lag.clone(),
        );
        registry.register(
            "export_events",
            "Outbox events and audit entries the central database committed",
            export.events.clone(),
        );
        registry.register(
            "export_failures",
            "Export attempts that failed (connection, SQL, a batch refused)",
            export.failures.clone(),
        );
        registry.register(
            "export_refused",
            "1 while the exporter refuses to send (the store and the central database disagree)",
            export.refused.clone(),
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
        for outcome in Outcome::ALL {
            let _ = ingested.get_or_create(&label("result", outcome.label()));
        }
        for code in crate::analysis::score::FLAG_CODES {
            let _ = flags.get_or_create(&label("code", code));
        }
        for result in PURGE_RESULTS {
            let _ = purges.get_or_create(&label("result", result));
        }
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
            calls,
            calls_coverage,
            export,
        }
    }

    /// The exporter's metrics.
    pub fn export(&self) -> &ExportMetrics {
        &self.export
    }

    /// One recording done: its result, and for an analysed one its time, score and flags.
    pub fn ingested(
        &self,
        result: Outcome,
        analysis_s: Option<f64>,
        score: Option<u32>,
        flags: &[String],
    ) {
        self.ingested
            .get_or_create(&label("result", result.label()))
            .inc();
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
        for (result, n) in PURGE_RESULTS.into_iter().zip([purged, refused, failed]) {
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
            .get_or_create(&alert_labels(rule, outcome))
            .inc();
    }

    /// Every outcome of these (configured) alert rules at 0 until it happens; called at start
    /// and at every reload (a rule dropped by a reload keeps its counts).
    pub fn alert_rules<'a>(&self, rules: impl IntoIterator<Item = &'a str>) {
        for rule in rules {
            for outcome in ALERT_OUTCOMES {
                let _ = self.alerts.get_or_create(&alert_labels(rule, outcome));
            }
        }
    }

    /// The last day's calls: the counts by state, and the coverage.
    pub fn calls(&self, row: &crate::calls::CoverageRow, orphans: usize) {
        let counts = [
            row.must_record,
            row.recorded,
            row.missing,
            row.short,
            orphans as u64,
        ];
        for (state, n) in CALL_STATES.into_iter().zip(counts) {
            self.calls
                .get_or_create(&label("state", state))
                .set(n as i64);
        }
        self.calls_coverage.set(row.coverage.unwrap_or(0.0));
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

    /// The exposition text in the format asked for.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Text => openmetrics_to_text(&out),
        }
    }
}

fn alert_labels(rule: &str, outcome: &str) -> Labels {
    vec![
        ("rule".to_string(), rule.to_string()),
        ("outcome".to_string(), outcome.to_string()),
    ]
}

/// Prometheus' text format 0.0.4 from OpenMetrics text: a counter family is named by its
/// `_total` sample (so its HELP and TYPE name what is scraped), an info family becomes a gauge
/// named `_info`, types the text format lacks become `untyped`; `# UNIT`, `# EOF`, `_created`
/// samples and exemplars are dropped, and HELP loses OpenMetrics' `\"` escape.
fn openmetrics_to_text(open: &str) -> String {
    let mut out = String::with_capacity(open.len());
    let mut help: Option<(&str, String)> = None;
    let mut family_type = "";
    for line in open.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text.replace("\\\"", "\"")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family_type = kind;
            let (renamed, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), "counter"),
                "counter" => (name.to_string(), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            if let Some((_, text)) = help.take().filter(|(h, _)| *h == name) {
                out.push_str(&format!("# HELP {renamed} {text}\n"));
            }
            out.push_str(&format!("# TYPE {renamed} {kind}\n"));
        } else if line.starts_with('#') {
            // # UNIT, # EOF, and any other comment OpenMetrics has and the text format has not.
        } else if !line.is_empty() {
            let (series, rest) = split_sample(line);
            let name = series.split('{').next().unwrap_or(series);
            if name.ends_with("_created")
                && matches!(family_type, "counter" | "histogram" | "summary")
            {
                continue;
            }
            // An exemplar follows the value and optional timestamp after " # ".
            let value = rest.split(" # ").next().unwrap_or(rest);
            out.push_str(series);
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// A sample line's series (`name{labels}`, label values may hold anything quoted) and the rest.
fn split_sample(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'{' && bytes[i] != b' ' {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'{' {
        let (mut quoted, mut escaped) = (false, false);
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b'}' if !quoted => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    line.split_at(i)
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

impl ExportMetrics {
    /// The outbox's backlog and the age (seconds) of its oldest waiting event.
    pub fn backlog(&self, events: u64, lag_s: f64) {
        self.backlog.set(events as i64);
        self.lag.set(lag_s);
    }

    /// Events and entries the central database committed.
    pub fn sent(&self, n: usize) {
        self.events.inc_by(n as u64);
    }

    pub fn failed(&self) {
        self.failures.inc();
    }

    pub fn refused(&self, refused: bool) {
        self.refused.set(i64::from(refused));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_exposed() {
        let m = Metrics::new();
        m.ingested(Outcome::Stored, Some(0.02), Some(87), &["low_snr".into()]);
        m.ingested(Outcome::Failed, None, None, &[]);
        m.purged(3, 1, 0, 1_700_000_000);
        m.refresh(&Gauges {
            held: 2,
            consent_coverage: Some(0.75),
            store_bytes: 1000,
            audit_length: 42,
            disk_free: vec![("/r".into(), 0.5)],
        });
        let text = m.encode(Format::OpenMetrics);
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

    #[test]
    fn known_label_sets_exist_at_zero_from_the_start() {
        let m = Metrics::new();
        m.alert_rules(["poor"]);
        let text = m.encode(Format::Text);
        for line in [
            "callwarden_recordings_ingested_total{result=\"too_short\"} 0",
            "callwarden_recordings_ingested_total{result=\"store_error\"} 0",
            "callwarden_flags_total{code=\"hum\"} 0",
            "callwarden_flags_total{code=\"one_sided\"} 0",
            "callwarden_purges_total{result=\"refused\"} 0",
            "callwarden_alerts_total{rule=\"poor\",outcome=\"rate_limited\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_drops_openmetrics_only_lines() {
        let m = Metrics::new();
        m.ingested(Outcome::Stored, Some(0.02), Some(87), &[]);
        let text = m.encode(Format::Text);
        assert!(text.contains(
            "# HELP callwarden_recordings_ingested_total Recordings processed, by result"
        ));
        assert!(text.contains("# TYPE callwarden_recordings_ingested_total counter\n"));
        assert!(text.contains("# TYPE callwarden_analysis_seconds histogram\n"));
        assert!(text.contains("callwarden_recordings_ingested_total{result=\"stored\"} 1\n"));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        // Every sample's family has a HELP and a TYPE line before it.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let series = split_sample(line).0.split('{').next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| series.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(series);
                assert!(typed.contains(family), "{line}: no TYPE for {family}");
            }
        }
    }

    #[test]
    fn conversion_keeps_label_values_and_drops_exemplars_and_created() {
        let open = "# HELP x_requests Requests \\\"quoted\\\".\n# TYPE x_requests counter\n\
                    # UNIT x_requests requests\n\
                    x_requests_total{path=\"/a # {b}\"} 3 # {trace=\"1\"} 1.0\n\
                    x_requests_created{path=\"/a # {b}\"} 1700000000\n\
                    # TYPE x_build info\nx_build_info{v=\"1\"} 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(open),
            "# HELP x_requests_total Requests \"quoted\".\n# TYPE x_requests_total counter\n\
             x_requests_total{path=\"/a # {b}\"} 3\n\
             # TYPE x_build_info gauge\nx_build_info{v=\"1\"} 1\n"
        );
    }

    #[test]
    fn negotiation_serves_openmetrics_only_to_who_asks() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.2")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("garbage;;;q=x")), Format::Text);
    }
}
