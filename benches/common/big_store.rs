//! The benchmarks' large store: N recordings (default 1,000,000) spread over the year before
//! it was built, each with a full analysis report (the demo stereo call's, with scores, flags,
//! agents, queues and consent varied). Built once into a directory and reused while it holds
//! one (`bench-built` says how many and when).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use callwarden::analysis::model::{Flag, Grade, Severity};
use callwarden::audit::Draft;
use callwarden::config::Config;
use callwarden::consent::ConsentRecord;
use callwarden::metadata::{ConsentSource, ConsentState, Metadata};
use callwarden::store::{Record, RecordState, RecordingId, Store};

pub const DAY_MS: i64 = 86_400_000;

/// The store of `n` recordings in `dir` (default `/tmp/callwarden-bench-queries-N`), built if it
/// is not there yet, and the time it was built as of.
pub fn open_or_build(n: u64, dir: Option<String>) -> (PathBuf, i64) {
    let dir = PathBuf::from(dir.unwrap_or_else(|| format!("/tmp/callwarden-bench-queries-{n}")));
    let built = std::fs::read_to_string(dir.join("bench-built")).ok();
    let now = match built
        .as_deref()
        .and_then(|b| b.split(' ').nth(1)?.parse().ok())
    {
        Some(now) => {
            println!("store: reusing {} ({n} records)", dir.display());
            now
        }
        None => {
            let _ = std::fs::remove_dir_all(&dir);
            let now = callwarden::clock::now_ms();
            build(&dir, n, now);
            now
        }
    };
    (dir, now)
}

/// Builds the store: N calls over the year before `now`, in batches of 1,000.
fn build(dir: &Path, n: u64, now: i64) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/call-stereo.wav");
    let report = callwarden::pipeline::analyze_file(
        &demo,
        "demo",
        &Config::default(),
        callwarden::pipeline::Options::default(),
    )
    .expect("analyse the demo call");
    let store = Store::open(dir).unwrap();
    let t = Instant::now();
    let queues = ["sales", "support", "advice", "eu"];
    let codes = ["low_snr", "clipping", "dropouts", "dead_air", "muffled"];
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let started_ms = now - 365 * DAY_MS + (i as i64 * 365 * DAY_MS) / n as i64;
        let mut rep = report.clone();
        // Scores skewed high, as real calls are; one call in eight with a flag.
        let score = (100 - (i * 7919 % 101) * (i * 104_729 % 7) / 6) as u32;
        rep.quality.score = score;
        rep.quality.grade = match score {
            80.. => Grade::Good,
            60..=79 => Grade::Fair,
            40..=59 => Grade::Poor,
            _ => Grade::Bad,
        };
        rep.quality.flags = if i % 8 == 0 {
            vec![Flag {
                code: codes[(i / 8 % 5) as usize].into(),
                severity: Severity::Warn,
                message: "measured".into(),
                channel: None,
            }]
        } else {
            vec![]
        };
        rep.file = format!("/var/spool/asterisk/monitor/{}/{i}.wav", i % 365);
        rep.format.duration_s = 30.0 + (i % 600) as f64;
        let r = Record {
            id: RecordingId(i + 1),
            path: callwarden::recording_path::RecordingPath::from_bytes(rep.file.as_bytes())
                .expect("an absolute path"),
            size: 1_000_000 + i,
            sha256: format!("{i:064x}"),
            state: if i % 50 == 0 {
                RecordState::Failed
            } else {
                RecordState::Analysed
            },
            started_ms,
            ingested_ms: started_ms + 60_000,
            report: (i % 50 != 0).then_some(rep),
            metadata: Some(Metadata {
                agent: Some(format!("agent-{}", i % 40)),
                queue: Some(queues[(i % 4) as usize].into()),
                ..Metadata::default()
            }),
            consent: (i % 5 != 0).then(|| ConsentRecord {
                state: if i % 31 == 0 {
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
            consent_law: Some(if i % 4 == 3 {
                callwarden::config::ConsentLaw::AllParty
            } else {
                callwarden::config::ConsentLaw::OneParty
            }),
            ..Record::blank()
        };
        batch.push((
            r,
            Draft::new(
                "ingest",
                callwarden::audit::AuditAction::Ingest,
                serde_json::Value::Null,
            )
            .about(i + 1),
        ));
        if batch.len() == 1000 || i + 1 == n {
            store.commit_many(&batch, now).unwrap();
            batch.clear();
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "  {} records stored ({:.0} s)",
                i + 1,
                t.elapsed().as_secs_f64()
            );
        }
    }
    store.flush().unwrap();
    std::fs::write(dir.join("bench-built"), format!("{n} {now}")).unwrap();
    println!(
        "store: {n} records built in {:.0} s ({} MB on disk)",
        t.elapsed().as_secs_f64(),
        store.size_on_disk() / 1_000_000
    );
}
