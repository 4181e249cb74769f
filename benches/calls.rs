//! Calls benchmark (issue 21's targets): N call records matched against N recordings in the
//! store (default 1,000,000 each, over 30 days), and the coverage report by day over them.
//!
//! `cargo bench --bench calls [-- --calls N --store DIR]` builds (once; reused when DIR holds
//! it) a store of N recordings (summaries only, no analysis: matching reads summaries) and N
//! call records, four in five recordings named by their call's id (half by the sidecar's
//! call_id, half in the file name), one in ten calls without a recording, and times:
//! - loading the N call records through `Store::put_calls` (batches of 1,000, as `calls import`),
//! - `report coverage` over the 30 days through `query::handle`, cold (no day's digest kept:
//!   every day read and matched, its digest kept; target <= 60 s), then from the kept digests
//!   (target <= 2 s), `kpi --by day` with the calls' columns, the report again after one new
//!   call record (its days matched again), and one day alone,
//! - the pure matching alone on the same data in memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use callwarden::audit::{AuditAction, Draft};
use callwarden::cdr::{CallRecord, Disposition};
use callwarden::config::Config;
use callwarden::metadata::Metadata;
use callwarden::query::{Answer, Caller, Context, Report, ReportKind, Request, Role, Window};
use callwarden::store::{Record, RecordState, RecordingId, Store};

const DAY_MS: i64 = 86_400_000;
/// 2026-12-01T00:00:00Z: the end of the 30 days.
const END_MS: i64 = 1_796_083_200_000;

#[path = "common/args.rs"]
mod args;

use args::arg;

fn leg(i: u64, n: u64) -> CallRecord {
    let start_ms = END_MS - 30 * DAY_MS + (i as i64 * 30 * DAY_MS) / n as i64;
    let billsec = 20 + (i % 300) as u32;
    CallRecord {
        id: format!("{}.{i}", start_ms / 1000),
        linked_id: None,
        start_ms,
        answer_ms: Some(start_ms + 3000),
        end_ms: start_ms + 3000 + i64::from(billsec) * 1000,
        duration_s: billsec + 3,
        billsec,
        disposition: Disposition::Answered,
        src: format!("10{:02}", i % 40),
        dst: "2000".into(),
        clid: String::new(),
        context: "from-internal".into(),
        channel: String::new(),
        dst_channel: String::new(),
        last_app: "Dial".into(),
        account: String::new(),
        userfield: String::new(),
        recording: None,
        queue: None,
        direction: None,
    }
}

/// The recording of call `i`, if it has one: named by its id in the sidecar or the file name.
fn recording(i: u64, n: u64) -> Option<Record> {
    if i % 10 == 9 {
        return None;
    }
    let l = leg(i, n);
    let by_sidecar = i.is_multiple_of(2);
    let name = if by_sidecar {
        format!("/var/spool/asterisk/monitor/{}/r{i}.wav", i % 30)
    } else {
        format!(
            "/var/spool/asterisk/monitor/{}/out-{}-{}.wav",
            i % 30,
            l.src,
            l.id
        )
    };
    Some(Record {
        id: RecordingId(i + 1),
        path: callwarden::recording_path::RecordingPath::from_bytes(name.as_bytes()).unwrap(),
        size: 1_000_000 + i,
        sha256: format!("{i:064x}"),
        state: RecordState::Analysed,
        started_ms: l.answer_ms.unwrap_or(l.start_ms),
        ingested_ms: l.end_ms + 1000,
        duration_s: Some(f64::from(l.billsec)),
        metadata: Some(Metadata {
            call_id: by_sidecar.then(|| l.id.clone()),
            agent: Some(format!("agent-{}", i % 40)),
            queue: Some(["sales", "support", "eu"][(i % 3) as usize].into()),
            ..Metadata::default()
        }),
        ..Record::blank()
    })
}

fn build(dir: &Path, n: u64) {
    let store = Store::open(dir).unwrap();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        if let Some(r) = recording(i, n) {
            let id = r.id.0;
            batch.push((
                r,
                Draft::new("ingest", AuditAction::Ingest, serde_json::Value::Null).about(id),
            ));
        }
        if batch.len() == 1000 || i + 1 == n {
            store.commit_many(&batch, END_MS).unwrap();
            batch.clear();
        }
    }
    store.flush().unwrap();
    eprintln!(
        "  {n} calls' recordings stored in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let legs: Vec<CallRecord> = (0..n).map(|i| leg(i, n)).collect();
    for chunk in legs.chunks(1000) {
        store
            .put_calls(chunk, "bench", "Master.csv", 0, END_MS)
            .unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "load {n} call records (put_calls, batches of 1,000): {s:.1} s ({:.0} rows/s)",
        n as f64 / s
    );
}

fn coverage(store: &Store, config: &Config, window: Window) -> (f64, Option<f64>, u64) {
    let ctx = Context {
        store,
        config,
        daemon: None,
        now_ms: END_MS + DAY_MS,
        purge_lock: None,
        reload: None,
    };
    let caller = Caller {
        name: "bench".into(),
        role: Role::Auditor,
    };
    let t = Instant::now();
    let answer = callwarden::query::handle(
        &ctx,
        &caller,
        Request::Report {
            kind: ReportKind::Coverage,
            window,
        },
    )
    .unwrap();
    let s = t.elapsed().as_secs_f64();
    let Answer::Report(dated) = answer else {
        panic!("not a report")
    };
    let Report::Coverage(c) = dated.body else {
        panic!("not the coverage report")
    };
    (s, c.total.coverage, c.total.missing)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("calls: bench");
        return;
    }
    let n: u64 = arg("--calls").map_or(1_000_000, |v| v.parse().expect("--calls N"));
    let dir = arg("--store").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("calls-bench-{n}")),
        PathBuf::from,
    );
    if !dir.join("db").exists() {
        eprintln!("building {} ...", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir, n);
    }
    let store = Store::open(&dir).unwrap();
    let config = Config::default();
    let all = Window {
        from_ms: Some(END_MS - 30 * DAY_MS),
        until_ms: Some(END_MS),
    };
    // Cold: no day's digest kept (as after an upgrade, or a configuration change).
    store.forget_coverage_digests().unwrap();
    let (s, cov, missing) = coverage(&store, &config, all);
    println!(
        "report coverage, 30 days ({n} calls, {} recordings), cold: {s:.1} s (target <= 60 s); \
         coverage {:.3}, missing {missing}",
        n - n / 10,
        cov.unwrap_or(0.0)
    );
    let best = (0..3)
        .map(|_| coverage(&store, &config, all).0)
        .fold(f64::INFINITY, f64::min);
    println!(
        "report coverage, 30 days, from the kept day digests: {best:.2} s, best of 3 (target <= 2 s)"
    );
    let t = Instant::now();
    let ctx = Context {
        store: &store,
        config: &config,
        daemon: None,
        now_ms: END_MS + DAY_MS,
        purge_lock: None,
        reload: None,
    };
    let caller = Caller {
        name: "bench".into(),
        role: Role::Auditor,
    };
    let kpi = callwarden::query::handle(
        &ctx,
        &caller,
        Request::Kpi {
            window: all,
            by: callwarden::kpi::GroupBy::Day,
        },
    )
    .unwrap();
    let Answer::Kpi(kpi) = kpi else {
        panic!("not the KPIs")
    };
    println!(
        "kpi --by day, 30 days ({} rows, with the calls' columns): {:.2} s",
        kpi.rows.len(),
        t.elapsed().as_secs_f64()
    );
    // One new call record on the last day: that day (and the one before, within the margin)
    // is matched again, the others read.
    let mut late = leg(n - 1, n);
    late.id = "bench-late.1".into();
    late.start_ms = END_MS - 3_600_000;
    store
        .put_calls(
            std::slice::from_ref(&late),
            "bench",
            "Master.csv",
            0,
            END_MS,
        )
        .unwrap();
    let (s, _, missing_after) = coverage(&store, &config, all);
    println!(
        "report coverage, 30 days, after one new call record: {s:.2} s (missing {missing} -> \
         {missing_after})"
    );
    let day = Window {
        from_ms: Some(END_MS - DAY_MS),
        until_ms: Some(END_MS),
    };
    let best = (0..3)
        .map(|_| coverage(&store, &config, day).0)
        .fold(f64::INFINITY, f64::min);
    println!("report coverage, 1 day of 30: {best:.2} s, best of 3");

    // Reading, then the matching alone, in memory.
    let t = Instant::now();
    let legs: Vec<CallRecord> = store
        .calls_between(None, None)
        .collect::<Result<_, _>>()
        .unwrap();
    println!(
        "read {} call records: {:.1} s",
        legs.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let summaries: Vec<_> = store
        .summaries(None, None)
        .collect::<Result<_, _>>()
        .unwrap();
    println!(
        "read {} summaries: {:.1} s",
        summaries.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let m = callwarden::calls::match_calls(
        legs,
        summaries,
        &config.calls,
        config.consent.default,
        END_MS + DAY_MS,
    );
    let r = callwarden::calls::coverage_report(&m, 1000);
    println!(
        "match_calls + coverage_report in memory: {:.1} s ({} calls, {} orphans)",
        t.elapsed().as_secs_f64(),
        r.total.calls,
        r.orphans
    );
}
