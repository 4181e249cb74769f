//! The whole life of recordings on a temp root, at random (issue 19's property): ingest, move,
//! copy, rename, delete by hand, hold, purge, kill -9 of ingests and purges and the restarts
//! after them, in any order. Afterwards no tombstone names a file on disk, every recording file
//! under the root has exactly one live record, no held file is gone but by hand, and `audit
//! verify` agrees with the filesystem.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};

use callwarden::store::{RecordState, Store};

use crate::compliance::{callwarden, recording, sidecar, site, text, Site, FUTURE};

#[derive(Debug, Clone)]
enum Op {
    /// A new recording; `legal` ones are kept forever by the site's policy.
    New {
        legal: bool,
    },
    /// The n-th file on disk, with its sidecar, into another folder.
    Move(usize),
    /// Renamed in its folder.
    Rename(usize),
    /// Copied to another folder (the audio only).
    Copy(usize),
    /// Deleted by hand, with its sidecar.
    Delete(usize),
    /// A legal hold on the n-th file's recording, if stored.
    Hold(usize),
    Ingest,
    /// An ingest killed (-9) after this many ms.
    IngestKilled(u64),
    Purge,
    PurgeKilled(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|legal| Op::New { legal }),
        1 => (0usize..64).prop_map(Op::Move),
        1 => (0usize..64).prop_map(Op::Rename),
        1 => (0usize..64).prop_map(Op::Copy),
        1 => (0usize..64).prop_map(Op::Delete),
        1 => (0usize..64).prop_map(Op::Hold),
        2 => Just(Op::Ingest),
        1 => (0u64..150).prop_map(Op::IngestKilled),
        1 => Just(Op::Purge),
        1 => (0u64..150).prop_map(Op::PurgeKilled),
    ]
}

/// The recording files under `dir`, sorted.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(recordings(&p));
        } else if p.extension().is_some_and(|e| e == "wav") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn killed(s: &Site, args: &[&str], after_ms: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env_remove("CALLWARDEN_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(after_ms));
    let _ = child.kill();
    child.wait().unwrap();
}

fn ok(s: &Site, args: &[&str]) {
    let o = callwarden(&s.config, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
}

/// Runs `ops` on a fresh site, then checks the invariants.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let s = site();
    let root = s.root.to_str().unwrap();
    let mut made = 0u64;
    // What was deleted by hand, by content (a file may have moved before it was deleted).
    let mut by_hand: HashSet<String> = HashSet::new();
    // The site as installed: an empty root, its store made by a first run.
    ok(&s, &["ingest", root]);
    for op in ops {
        let files = recordings(&s.root);
        let pick = |n: usize| (!files.is_empty()).then(|| files[n % files.len()].clone());
        match op {
            Op::New { legal } => {
                made += 1;
                let path = s.root.join(format!("d{}/rec-{made}.wav", made % 3));
                recording(&path, 1000 + made);
                if *legal {
                    sidecar(&path, r#"{"queue": "legal"}"#);
                }
                crate::support::age(&path, 3600);
            }
            Op::Move(n) | Op::Rename(n) => {
                let Some(from) = pick(*n) else { continue };
                made += 1;
                let dir = match op {
                    Op::Move(_) => s.root.join(format!("moved-{}", made % 2)),
                    _ => from.parent().unwrap().to_path_buf(),
                };
                std::fs::create_dir_all(&dir).unwrap();
                let to = dir.join(format!("renamed-{made}.wav"));
                std::fs::rename(&from, &to).unwrap();
                let _ = std::fs::rename(from.with_extension("json"), to.with_extension("json"));
            }
            Op::Copy(n) => {
                let Some(from) = pick(*n) else { continue };
                made += 1;
                let to = s.root.join(format!("copies/copy-{made}.wav"));
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&from, &to).unwrap();
                crate::support::age(&to, 1800);
            }
            Op::Delete(n) => {
                let Some(path) = pick(*n) else { continue };
                by_hand.insert(callwarden::pipeline::sha256_file(&path).unwrap());
                std::fs::remove_file(&path).unwrap();
                let _ = std::fs::remove_file(path.with_extension("json"));
            }
            Op::Hold(n) => {
                let Some(path) = pick(*n) else { continue };
                let id = {
                    let store = Store::open(&s.store).unwrap();
                    store
                        .by_path(&crate::support::rp(&path))
                        .unwrap()
                        .filter(|r| r.state != RecordState::Purged)
                        .map(|r| r.id.0.to_string())
                };
                if let Some(id) = id {
                    ok(
                        &s,
                        &["hold", "add", &id, "--case", "P-1", "--reason", "test"],
                    );
                }
            }
            Op::Ingest => ok(&s, &["ingest", root]),
            Op::IngestKilled(ms) => killed(&s, &["ingest", root], *ms),
            Op::Purge => ok(&s, &["purge", "--now", FUTURE]),
            Op::PurgeKilled(ms) => killed(&s, &["purge", "--now", FUTURE], *ms),
        }
    }
    // The restart after the last crash: everything finished.
    ok(&s, &["ingest", root]);
    ok(&s, &["purge", "--now", FUTURE]);
    ok(&s, &["ingest", root]);

    let verify = callwarden(&s.config, &["audit", "verify"]);
    let store = Store::open(&s.store).unwrap();
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    let on_disk = recordings(&s.root);
    for r in &records {
        let exists = r.path.symlink_metadata().is_ok();
        if r.state == RecordState::Purged {
            prop_assert!(!exists, "a tombstone names a file on disk: {r:?}");
            prop_assert!(r.holds.is_empty(), "a held recording was purged: {r:?}");
        } else if !exists {
            prop_assert!(
                by_hand.contains(&r.sha256),
                "a live recording is gone, and not by hand: {r:?}"
            );
        }
    }
    for file in &on_disk {
        let live = records
            .iter()
            .filter(|r| r.state != RecordState::Purged && r.path.as_path() == file)
            .count();
        prop_assert_eq!(live, 1, "{} has {} live records", file.display(), live);
    }
    // verify agrees with the filesystem: a finding exactly when a live record's file is gone.
    let gone = records
        .iter()
        .any(|r| r.state != RecordState::Purged && r.path.symlink_metadata().is_err());
    prop_assert_eq!(
        verify.status.code(),
        Some(if gone { 3 } else { 0 }),
        "verify: {}",
        text(&verify)
    );
    Ok(())
}

#[test]
fn any_life_of_recordings_keeps_the_proof_true() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        rng_seed: RngSeed::Fixed(20261206),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..24), |ops| run(&ops));
    if let Err(e) = result {
        panic!("{e}");
    }
}
