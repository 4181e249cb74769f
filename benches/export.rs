//! Export benchmarks (issue 24): what the outbox costs a site, and how fast it drains.
//!
//! `cargo bench --bench export [-- --records N] [-- --db URL]`:
//! - the outbox on ingest: N recordings (default 20,000) committed one transaction each, as
//!   ingest commits them, into a store with export off, then into one with export on (each
//!   commit also appends its event): the time per commit, and the difference;
//! - draining, with `--db URL` (a PostgreSQL the bench may write to; `fleet migrate` is run on
//!   it): the N events and their audit entries sent as `callwarden fleet push` sends them, in
//!   batches of 500: events and entries per second.

use std::sync::Arc;
use std::time::Instant;

use callwarden::audit::{AuditAction, Draft};
use callwarden::config::{ConsentLaw, ExportConfig, ExportPostgres};
use callwarden::metadata::Metadata;
use callwarden::recording_path::RecordingPath;
use callwarden::store::{Record, RecordState, RecordingId, Store};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn record(i: u64) -> Record {
    Record {
        id: RecordingId(i),
        path: RecordingPath::from_bytes(format!("/var/spool/asterisk/monitor/{i}.wav").as_bytes())
            .expect("an absolute path"),
        size: 1_000_000,
        sha256: format!("{i:064x}"),
        state: RecordState::Analysed,
        started_ms: 1_795_000_000_000 + i as i64 * 60_000,
        metadata: Some(Metadata {
            agent: Some(format!("agent-{}", i % 40)),
            queue: Some(format!("q{}", i % 4)),
            call_id: Some(format!("1795000000.{i}")),
            ..Metadata::default()
        }),
        ..Record::blank()
    }
}

/// Commits `n` recordings into a fresh store, export on or off: seconds per commit.
fn commits(n: u64, export: bool) -> (f64, tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(Store::open(&dir.path().join("store")).expect("a store"));
    if export {
        store.start_outbox(10_000_000).expect("export on");
    }
    let t = Instant::now();
    for i in 1..=n {
        let draft = Draft::new("ingest", AuditAction::Ingest, serde_json::json!({})).about(i);
        store
            .commit(&record(i), None, draft, 1_795_000_000_000)
            .expect("a commit");
    }
    store.flush().expect("a flush");
    (t.elapsed().as_secs_f64() / n as f64, dir, store)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no work to do.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: u64 = arg("--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (mut off, mut on) = (f64::MAX, f64::MAX);
    let mut kept = None;
    for _ in 0..3 {
        off = off.min(commits(n, false).0);
        let (t, dir, store) = commits(n, true);
        on = on.min(t);
        kept = Some((dir, store));
    }
    println!(
        "ingest commits, {n} recordings: export off {:.1} us, on {:.1} us per commit (+{:.1} us, {:+.0}%)",
        off * 1e6,
        on * 1e6,
        (on - off) * 1e6,
        100.0 * (on - off) / off
    );
    let Some(url) = arg("--db") else {
        println!("draining: skipped (give --db URL of a PostgreSQL the bench may write to)");
        return;
    };
    let (_dir, store) = kept.expect("a store with export on");
    let mut central =
        callwarden::fleet::central::Central::connect(&url, None).expect("the database");
    central.migrate("bench").expect("the fleet schema");
    let site = format!("bench-{}", std::process::id());
    let cfg = ExportConfig {
        postgres: Some(ExportPostgres {
            url,
            site: site.clone().try_into().expect("a site name"),
            batch: 500,
            ca_file: None,
        }),
        ..ExportConfig::default()
    };
    let t = Instant::now();
    let drained =
        callwarden::fleet::export::drain(store, &cfg, ConsentLaw::OneParty).expect("drained");
    let s = t.elapsed().as_secs_f64();
    println!(
        "draining to PostgreSQL (site {site}): {} events and audit entries in {} batches, {:.2} s, {:.0} per second",
        drained.sent,
        drained.batches,
        s,
        drained.sent as f64 / s
    );
}
