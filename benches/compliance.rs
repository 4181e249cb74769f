//! Compliance benchmarks (issue 4's speed targets).
//!
//! `cargo bench --bench compliance [-- --records N --purge N]`:
//! - planning: `policy::plan` over N records in memory (default 1,000,000; target <= 2 s), with
//!   a seven-rule policy, consent, holds and locks in the mix;
//! - purging: N expired recordings (default 100,000; target <= 60 s) in 100 folders, stored
//!   through the library, then one scheduled `Purger::run` (intents flushed, files checked and
//!   deleted, directories fsynced, tombstones and audit entries written and flushed).

use std::time::Instant;

use callwarden::audit::Draft;
use callwarden::config::{Config, RetentionConfig, RetentionRule};
use callwarden::consent::ConsentRecord;
use callwarden::metadata::{ConsentSource, ConsentState, Direction, Metadata};
use callwarden::policy::{self, Span, Trigger};
use callwarden::recording_path::RecordingPath;
use callwarden::store::{Record, RecordState, RecordingId, Store};

const DAY_MS: i64 = 86_400_000;
const NOW_MS: i64 = 1_795_000_000_000; // 2026-11-18

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn policy() -> RetentionConfig {
    let rule = |name: &str, keep: &str| RetentionRule {
        name: name.into(),
        keep: Span::parse(keep).unwrap(),
        ..RetentionRule::default()
    };
    RetentionConfig {
        rule: vec![
            rule("default", "1y"),
            RetentionRule {
                state: vec![RecordState::Failed, RecordState::TooShort],
                purge_early: true,
                ..rule("junk", "30d")
            },
            RetentionRule {
                queue: vec!["advice".into()],
                min_keep: Some(Span::Years(5)),
                ..rule("advice", "5y")
            },
            RetentionRule {
                consent: vec![ConsentState::Granted],
                direction: vec![Direction::Outbound],
                ..rule("sales", "2y")
            },
            RetentionRule {
                agent: vec!["agent-7".into(), "agent-13".into()],
                ..rule("training", "90d")
            },
            RetentionRule {
                tag: vec!["complaint".into()],
                ..rule("complaints", "3y")
            },
            RetentionRule {
                consent: vec![ConsentState::Unknown],
                queue: vec!["eu".into()],
                ..rule("eu-unknown", "14d")
            },
        ],
        ..RetentionConfig::default()
    }
}

fn record(i: u64, started_ms: i64) -> Record {
    let queues = ["sales", "support", "advice", "eu"];
    Record {
        id: RecordingId(i),
        path: RecordingPath::from_bytes(format!("/var/spool/asterisk/monitor/{i}.wav").as_bytes())
            .expect("an absolute path"),
        size: 1_000_000,
        sha256: "0".repeat(64),
        state: if i.is_multiple_of(50) {
            RecordState::Failed
        } else {
            RecordState::Analysed
        },
        started_ms,
        metadata: Some(Metadata {
            agent: Some(format!("agent-{}", i % 40)),
            queue: Some(queues[(i % 4) as usize].into()),
            direction: Some(if i.is_multiple_of(3) {
                Direction::Outbound
            } else {
                Direction::Inbound
            }),
            tags: if i.is_multiple_of(97) {
                vec!["complaint".into()]
            } else {
                vec![]
            },
            ..Metadata::default()
        }),
        consent: (!i.is_multiple_of(5)).then(|| ConsentRecord {
            state: if i.is_multiple_of(31) {
                ConsentState::Denied
            } else {
                ConsentState::Granted
            },
            source: ConsentSource::Ivr,
            time_ms: Some(started_ms),
            recorded_ms: started_ms,
            actor: "ingest".into(),
            note: None,
        }),
        holds: if i.is_multiple_of(1000) {
            vec![1]
        } else {
            vec![]
        },
        ..Record::blank()
    }
}

fn bench_plan(n: usize) {
    let policy = policy();
    // A year of calls, evenly spread.
    let records: Vec<Record> = (0..n as u64)
        .map(|i| {
            record(
                i,
                NOW_MS - 365 * DAY_MS + (i as i64 * 365 * DAY_MS) / n as i64,
            )
        })
        .collect();
    let mut best = f64::MAX;
    let mut counts = None;
    for _ in 0..3 {
        let t = Instant::now();
        let decisions = policy::plan(&records, &policy, NOW_MS);
        best = best.min(t.elapsed().as_secs_f64());
        counts = Some(policy::count(&decisions));
    }
    println!(
        "plan: {n} records in {best:.3} s (best of 3; target <= 2 s for 1,000,000): {:?}",
        counts.unwrap()
    );
}

fn bench_purge(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut config = Config::default();
    config.ingest.roots = vec![RecordingPath::absolute(&root).expect("an absolute root")];
    config.store.path = dir.path().join("store");
    config.retention.min_free_ratio = 0.0;
    config.retention.rule = vec![RetentionRule {
        name: "default".into(),
        keep: Span::Days(30),
        ..RetentionRule::default()
    }];
    let store = Store::open(&config.store.path).unwrap();
    let t = Instant::now();
    for i in 0..n as u64 {
        let folder = root.join(format!("{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        let path = folder.join(format!("rec-{i}.wav"));
        std::fs::write(&path, i.to_le_bytes().repeat(128)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        if i.is_multiple_of(10) {
            std::fs::write(path.with_extension("json"), "{}").unwrap();
        }
        let r = Record {
            id: store.next_id().unwrap(),
            path: RecordingPath::absolute(&path).expect("an absolute path"),
            size: meta.len(),
            mtime_ns: mtime,
            sha256: "0".repeat(64),
            started_ms: NOW_MS - 400 * DAY_MS + i as i64,
            ..Record::blank()
        };
        store
            .commit(
                &r,
                None,
                Draft::new(
                    "bench",
                    callwarden::audit::AuditAction::Ingest,
                    serde_json::Value::Null,
                ),
                NOW_MS,
            )
            .unwrap();
    }
    store.flush().unwrap();
    println!(
        "purge: set up {n} stored recordings in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let purger = callwarden::purge::Purger {
        store: &store,
        config: &config,
        actor: "bench",
        stop: None,
        real_ms: None,
    };
    let t = Instant::now();
    let (_, summary) = purger.run(NOW_MS, Trigger::Schedule, false).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(summary.purged, n, "{summary:?}");
    assert_eq!(store.count_by_state(RecordState::Purged), n);
    println!(
        "purge: {n} expired recordings purged in {secs:.1} s ({:.0}/s; target <= 60 s for 100,000)",
        n as f64 / secs
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no work to do.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    bench_plan(arg("--records", 1_000_000));
    bench_purge(arg("--purge", 100_000));
}
