//! Compliance: purges that survive kill -9 anywhere, never touch what must stay or anything
//! outside the roots, and an audit log that shows tampering.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use callwarden::store::{RecordState, Store};

use crate::support::{rp, write_pcm, Rng};

/// Every purge in these tests plans as of this time: everything under 30 days has expired.
pub(crate) const FUTURE: &str = "2040-01-01T00:00:00Z";

pub(crate) fn callwarden(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CALLWARDEN_LOG")
        .env("USER", "compliance-test")
        .output()
        .expect("run callwarden")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) struct Site {
    _dir: tempfile::TempDir,
    pub(crate) base: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) store: PathBuf,
    pub(crate) outside: PathBuf,
    pub(crate) config: PathBuf,
}

/// A recordings root, a store and a directory outside the root, with a policy: 30 days by
/// default, queue `legal` kept forever.
pub(crate) fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let (root, store, outside) = (base.join("root"), base.join("store"), base.join("outside"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let config = base.join("callwarden.toml");
    let socket = base.join("control.sock");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.0\n[store]\npath = {store:?}\n\
             [control]\nsocket = {socket:?}\n\
             [retention]\nmin_free_ratio = 0.0\n\
             [[retention.rule]]\nname = \"default\"\nkeep = \"30d\"\n\
             [[retention.rule]]\nname = \"legal\"\nqueue = [\"legal\"]\nkeep = \"forever\"\n"
        ),
    )
    .unwrap();
    Site {
        _dir: dir,
        base,
        root,
        store,
        outside,
        config,
    }
}

/// A distinct half-second recording (stored as too short; the policy treats it like any other).
pub(crate) fn recording(path: &Path, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut rng = Rng::new(seed);
    let samples: Vec<i16> = (0..4000).map(|_| (rng.normal() * 300.0) as i16).collect();
    write_pcm(path, &samples);
}

pub(crate) fn sidecar(recording: &Path, json: &str) {
    std::fs::write(recording.with_extension("json"), json).unwrap();
}

/// Copies a tree, keeping modification times (a purge checks them).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mtime = entry.metadata().unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&target)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

fn audit_actions(store: &Store) -> Vec<(String, Option<u64>, String)> {
    store
        .audit_entries()
        .map(|e| {
            let (_, e) = e.unwrap();
            let e = e.unwrap();
            (e.action, e.recording, e.actor)
        })
        .collect()
}

/// The files a site's recordings have, by whether the policy keeps them.
struct Population {
    expired: Vec<PathBuf>,
    kept: Vec<PathBuf>,
}

fn populate(s: &Site) -> Population {
    let mut expired = Vec::new();
    let mut kept = Vec::new();
    for i in 0..1000u64 {
        let path = s.root.join(format!("day-{:02}/rec-{i:04}.wav", i % 10));
        recording(&path, i);
        if i % 10 == 0 {
            sidecar(&path, r#"{"queue": "sales"}"#);
        }
        expired.push(path);
    }
    for i in 0..60u64 {
        let path = s.root.join(format!("legal/keep-{i:03}.wav"));
        recording(&path, 10_000 + i);
        sidecar(&path, r#"{"queue": "legal"}"#);
        kept.push(path);
    }
    for i in 0..40u64 {
        let path = s.root.join(format!("day-{:02}/vip-{i:03}.wav", i % 10));
        recording(&path, 20_000 + i);
        sidecar(&path, r#"{"queue": "vip"}"#);
        kept.push(path);
    }
    Population { expired, kept }
}

/// Right after a kill: nothing that must stay is gone, no tombstone for a file still there, and
/// every file gone has a tombstone or an intent the next run will complete.
fn check_after_crash(s: &Site, p: &Population, run: usize) -> usize {
    for path in &p.kept {
        assert!(path.exists(), "run {run}: {} must stay", path.display());
        assert!(
            path.with_extension("json").exists(),
            "run {run}: sidecar of {}",
            path.display()
        );
    }
    let store = Store::open(&s.store).unwrap();
    let pending: Vec<u64> = store.intents().unwrap().iter().map(|i| i.id.0).collect();
    let mut gone = 0;
    for r in store.all() {
        let r = r.unwrap();
        let exists = Path::new(&r.path).exists();
        if r.state == RecordState::Purged {
            assert!(
                !exists,
                "run {run}: tombstone for {}, still on disk",
                r.path
            );
        }
        if !exists {
            gone += 1;
            assert!(
                r.state == RecordState::Purged || pending.contains(&r.id.0),
                "run {run}: {} is gone without a tombstone or an intent",
                r.path
            );
        }
    }
    gone
}

/// After a run to completion: every expired file gone with exactly one tombstone and one
/// `purge` entry, the rest untouched, and the chain and hashes verify.
fn check_complete(s: &Site, p: &Population, run: usize) {
    for path in &p.expired {
        assert!(
            !path.exists(),
            "run {run}: {} should be purged",
            path.display()
        );
        assert!(!path.with_extension("json").exists());
    }
    for path in &p.kept {
        assert!(path.exists(), "run {run}: {} must stay", path.display());
    }
    {
        let store = Store::open(&s.store).unwrap();
        assert!(
            store.intents().unwrap().is_empty(),
            "run {run}: intents left"
        );
        assert_eq!(store.count_by_state(RecordState::Purged), 1000, "run {run}");
        let mut purges: HashMap<u64, usize> = HashMap::new();
        for (action, recording, _) in audit_actions(&store) {
            if action == "purge" {
                *purges.entry(recording.unwrap()).or_default() += 1;
            }
        }
        assert_eq!(purges.len(), 1000, "run {run}: purge entries");
        assert!(
            purges.values().all(|&n| n == 1),
            "run {run}: a purge audited twice"
        );
        for r in store.in_state(RecordState::Purged) {
            let r = r.unwrap();
            assert_eq!(purges.get(&r.id.0), Some(&1), "run {run}: {}", r.path);
            assert!(r.tombstone.is_some());
        }
    }
    let verify = callwarden(&s.config, &["audit", "verify"]);
    assert!(verify.status.success(), "run {run}: {}", text(&verify));
}

#[test]
fn purges_survive_kill_9_at_random_points() {
    let s = site();
    let p = populate(&s);
    let root = s.root.to_str().unwrap();
    let o = callwarden(&s.config, &["ingest", root, "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(
        &s.config,
        &[
            "hold",
            "add",
            "--queue",
            "vip",
            "--case",
            "C-9",
            "--reason",
            "litigation",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("placed on 40 recordings"), "{}", text(&o));
    let (template_root, template_store) = (s.base.join("t-root"), s.base.join("t-store"));
    copy_tree(&s.root, &template_root);
    copy_tree(&s.store, &template_store);
    // The store's anchor belongs to the copy: restoring the store alone is refused.
    let (anchor, template_anchor) = (s.base.join("store.head"), s.base.join("t-store.head"));
    std::fs::copy(&anchor, &template_anchor).unwrap();
    let restore = || {
        for (dir, template) in [(&s.root, &template_root), (&s.store, &template_store)] {
            std::fs::remove_dir_all(dir).unwrap();
            copy_tree(template, dir);
        }
        std::fs::copy(&template_anchor, &anchor).unwrap();
    };

    // An uninterrupted run, to time the window the kills land in.
    let started = Instant::now();
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    let full = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("purged 1000 "), "{}", text(&o));
    check_complete(&s, &p, 0);

    let mut rng = Rng::new(20261123);
    let mut interrupted_midway = 0;
    for run in 1..=50 {
        restore();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .args(["purge", "--now", FUTURE, "--config"])
            .arg(&s.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(rng.uniform()));
        let _ = child.kill();
        child.wait().unwrap();
        let gone = check_after_crash(&s, &p, run);
        if gone > 0 && gone < 1000 {
            interrupted_midway += 1;
        }
        let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
        assert!(o.status.success(), "run {run}: {}", text(&o));
        check_complete(&s, &p, run);
    }
    assert!(
        interrupted_midway >= 5,
        "only {interrupted_midway} kills landed mid-purge"
    );

    // The deletion certificate lists every purge with its hash and rule, and the chain head.
    let o = callwarden(&s.config, &["report", "purged", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["count"], 1000);
    let first = &report["recordings"][0];
    assert_eq!(first["rule"], "default");
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    assert!(first["audit_seq"].as_u64().is_some());
    assert!(report["audit_chain_head"]["seq"].as_u64().unwrap() > 2000);
    let o = callwarden(&s.config, &["report", "purged", "--format", "csv"]);
    let csv = String::from_utf8(o.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1001);
    assert!(csv.starts_with("id,path,sha256,"));
}

#[test]
fn purges_never_leave_the_roots_follow_symlinks_or_delete_replaced_files() {
    let s = site();
    let victim = s.outside.join("victim.wav");
    recording(&victim, 1);
    let sentinel = s.outside.join("sentinel");
    std::fs::write(&sentinel, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, s.root.join("link.wav")).unwrap();
    std::os::unix::fs::symlink(&s.outside, s.root.join("linkdir")).unwrap();
    let moved = s.root.join("day/moved.wav");
    recording(&moved, 2);
    let hostile = s.root.join("hostile.wav");
    recording(&hostile, 3);
    sidecar(
        &hostile,
        r#"{"call_id": "../outside/sentinel", "agent": "../../etc/passwd", "tags": ["../x"]}"#,
    );
    let replaced = s.root.join("replaced.wav");
    recording(&replaced, 4);

    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    // Symlinks are reported and skipped, so the run says not everything was done.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("skipped symlink"), "{}", text(&o));
    assert!(
        text(&o).contains("ingested 0, already stored 0, too short 3"),
        "{}",
        text(&o)
    );
    {
        let store = Store::open(&s.store).unwrap();
        assert_eq!(store.all().count(), 3, "symlinked files are never ingested");
        let r = store.by_path(&rp(&hostile)).unwrap().unwrap();
        assert!(
            r.has(callwarden::store::RecordFlag::MetadataUnsafe),
            "{:?}",
            r.flags
        );
    }

    // After ingest: the folder holding one recording becomes a symlink to a look-alike outside
    // the root, and another recording is replaced by a different file.
    let outside_day = s.outside.join("day");
    std::fs::rename(s.root.join("day"), &outside_day).unwrap();
    std::os::unix::fs::symlink(&outside_day, s.root.join("day")).unwrap();
    recording(&replaced, 99);

    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "refusals need a human: {}",
        text(&o)
    );
    let out = text(&o);
    assert!(out.contains("purged 1 "), "{out}");
    assert!(out.contains("refused 2"), "{out}");
    // Only the hostile-sidecar recording (and its own sidecar) went.
    assert!(!hostile.exists() && !hostile.with_extension("json").exists());
    for kept in [
        &victim,
        &sentinel,
        &outside_day.join("moved.wav"),
        &replaced,
    ] {
        assert!(kept.exists(), "{} was deleted", kept.display());
    }
    let store_check = |path: &Path, expect: &str| {
        let store = Store::open(&s.store).unwrap();
        let r = store.by_path(&rp(path)).unwrap().unwrap();
        assert!(
            r.has(callwarden::store::RecordFlag::PurgeRefused),
            "{:?}",
            r.flags
        );
        let note = r.purge_note.unwrap();
        assert!(note.contains(expect), "{note}");
        assert_ne!(r.state, RecordState::Purged);
    };
    store_check(&moved, "symlink");
    store_check(&replaced, "not the one recorded");

    // The refused ones wait for a human: a second run leaves them alone.
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 need review"), "{}", text(&o));
    assert!(replaced.exists() && outside_day.join("moved.wav").exists());
    let verify = callwarden(&s.config, &["audit", "verify", "--chain-only"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

fn raw_audit(store: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::open(store).unwrap();
    let tree = db.open_tree("audit").unwrap();
    (db, tree)
}

#[test]
fn audit_verify_names_a_changed_recording_and_an_edited_or_removed_entry() {
    let s = site();
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = s.root.join(format!("r{i}.wav"));
            recording(&p, 100 + i);
            p
        })
        .collect();
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let verify = || callwarden(&s.config, &["audit", "verify"]);
    let o = verify();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 intact, 0 with problems"),
        "{}",
        text(&o)
    );

    // One byte of a recording flipped (same size): named, with its path.
    let original = std::fs::read(&paths[1]).unwrap();
    let mut flipped = original.clone();
    flipped[500] ^= 0x01;
    std::fs::write(&paths[1], &flipped).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("{}: content changed", paths[1].display())),
        "{out}"
    );
    assert!(
        out.contains("audit chain: 3 entries") && out.contains("intact"),
        "{out}"
    );
    std::fs::write(&paths[1], &original).unwrap();
    assert!(verify().status.success());

    // An audit entry edited in the store: named.
    {
        let (db, tree) = raw_audit(&s.store);
        let key = 2u64.to_be_bytes();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&tree.get(key).unwrap().unwrap()).unwrap();
        entry["actor"] = "mallory".into();
        tree.insert(key, serde_json::to_vec(&entry).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("entry 2: content does not match its hash"),
        "{}",
        text(&o)
    );

    // An audit entry removed: named. (Restore the edited one first.)
    {
        let (db, tree) = raw_audit(&s.store);
        let mut entry: serde_json::Value =
            serde_json::from_slice(&tree.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        entry["actor"] = "ingest".into();
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&entry).unwrap())
            .unwrap();
        tree.remove(1u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("entry 1: entries 1 to 1 are missing"),
        "{}",
        text(&o)
    );
}

#[test]
fn holds_and_consent_changes_are_audited_and_a_released_hold_expires_again() {
    let s = site();
    let a = s.root.join("a.wav");
    let b = s.root.join("b.wav");
    recording(&a, 1);
    recording(&b, 2);
    sidecar(
        &a,
        r#"{"agent": "alice", "consent": {"state": "granted", "source": "ivr"}}"#,
    );
    assert!(callwarden(&s.config, &["ingest", s.root.to_str().unwrap()])
        .status
        .success());
    let id_of = |path: &Path| {
        let store = Store::open(&s.store).unwrap();
        store.by_path(&rp(path)).unwrap().unwrap().id.0
    };
    let (ida, idb) = (id_of(&a), id_of(&b));

    // Consent: b denied by an operator; the grace period is 24 h, so it is due at once in 2040.
    let o = callwarden(
        &s.config,
        &[
            "consent",
            "set",
            &idb.to_string(),
            "denied",
            "--note",
            "caller objected",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    {
        let store = Store::open(&s.store).unwrap();
        let r = store
            .get(callwarden::store::RecordingId(idb))
            .unwrap()
            .unwrap();
        let c = r.consent.unwrap();
        assert_eq!(c.state, callwarden::metadata::ConsentState::Denied);
        assert!(c.actor.contains("compliance-test"), "{}", c.actor);
        let consent_entries: Vec<_> = audit_actions(&store)
            .into_iter()
            .filter(|(action, id, _)| action == "consent" && *id == Some(idb))
            .collect();
        assert_eq!(consent_entries.len(), 1);
        assert!(consent_entries[0].2.contains("compliance-test"));
    }

    // A hold on alice's calls (a) and, by id, on b.
    let o = callwarden(
        &s.config,
        &[
            "hold", "add", "--agent", "alice", "--case", "K-1", "--reason", "subpoena",
        ],
    );
    assert!(text(&o).contains("placed on 1 recordings"), "{}", text(&o));
    let o = callwarden(
        &s.config,
        &[
            "hold",
            "add",
            &idb.to_string(),
            "--case",
            "K-2",
            "--reason",
            "complaint",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(&s.config, &["purge", "--now", FUTURE, "--dry-run"]);
    assert!(
        text(&o).contains("0 to purge") && text(&o).contains("2 held"),
        "{}",
        text(&o)
    );
    // Not even by hand.
    let o = callwarden(
        &s.config,
        &["purge", "--id", &ida.to_string(), "--now", FUTURE],
    );
    assert!(text(&o).contains("under legal hold"), "{}", text(&o));
    assert!(a.exists() && b.exists());

    // Released, the original deadlines apply again: both long passed in 2040.
    let o = callwarden(&s.config, &["hold", "list", "--json"]);
    let holds: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(holds.len(), 2);
    for h in &holds {
        let id = h["id"].as_u64().unwrap().to_string();
        let o = callwarden(
            &s.config,
            &["hold", "release", &id, "--reason", "case closed"],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(text(&o).contains("purged 2 "), "{}", text(&o));
    assert!(text(&o).contains("consent denied"), "{}", text(&o));
    assert!(!a.exists() && !b.exists());
    let store = Store::open(&s.store).unwrap();
    let actions: Vec<String> = audit_actions(&store).into_iter().map(|a| a.0).collect();
    for expected in [
        "ingest",
        "consent",
        "hold_add",
        "hold_release",
        "purge_intent",
        "purge",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "no {expected} in {actions:?}"
        );
    }
}

#[test]
fn a_dry_run_writes_nothing_and_a_locked_store_is_named() {
    let s = site();
    let a = s.root.join("a.wav");
    recording(&a, 1);
    assert!(callwarden(&s.config, &["ingest", s.root.to_str().unwrap()])
        .status
        .success());
    let o = callwarden(&s.config, &["purge", "--dry-run", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would purge"), "{}", text(&o));
    assert!(a.exists());
    let store = Store::open(&s.store).unwrap();
    assert!(store.intents().unwrap().is_empty());
    assert!(!audit_actions(&store)
        .iter()
        .any(|a| a.0.starts_with("purge")));
    // While something holds the store, a purge says who and exits 2.
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("in use"), "{}", text(&o));
    drop(store);
}

#[test]
fn disk_pressure_purges_early_only_what_the_rules_allow() {
    let s = site();
    // Any real disk has less than 99.99% free: permanent pressure for this test.
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config = config.replace("min_free_ratio = 0.0", "min_free_ratio = 0.9999");
    config += "[[retention.rule]]\nname = \"junk\"\nqueue = [\"junk\"]\nkeep = \"90d\"\npurge_early = true\n";
    std::fs::write(&s.config, config).unwrap();
    let mut junk = Vec::new();
    for i in 0..4u64 {
        let p = s.root.join(format!("junk-{i}.wav"));
        recording(&p, 300 + i);
        sidecar(&p, r#"{"queue": "junk"}"#);
        junk.push(p);
    }
    let normal = s.root.join("normal.wav");
    recording(&normal, 400);
    let legal = s.root.join("legal.wav");
    recording(&legal, 401);
    sidecar(&legal, r#"{"queue": "legal"}"#);
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let held_id = {
        let store = Store::open(&s.store).unwrap();
        store.by_path(&rp(&junk[3])).unwrap().unwrap().id.0
    };
    let o = callwarden(
        &s.config,
        &[
            "hold",
            "add",
            &held_id.to_string(),
            "--case",
            "P-1",
            "--reason",
            "dispute",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Nothing has expired yet (the files are minutes old): only pressure can purge.
    let o = callwarden(&s.config, &["purge"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("disk pressure"), "the alert: {out}");
    assert!(out.contains("purged 3 "), "{out}");
    assert!(junk[..3].iter().all(|p| !p.exists()));
    for kept in [&junk[3], &normal, &legal] {
        assert!(kept.exists(), "{} went early", kept.display());
    }
    let store = Store::open(&s.store).unwrap();
    let reasons: Vec<String> = store
        .in_state(RecordState::Purged)
        .map(|r| r.unwrap().tombstone.unwrap().reason)
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons.iter().all(|r| r.contains("disk pressure")),
        "{reasons:?}"
    );
}

#[test]
fn a_new_file_at_a_purged_path_is_a_new_recording() {
    let s = site();
    let path = s.root.join("reused.wav");
    recording(&path, 1);
    assert!(callwarden(&s.config, &["ingest", s.root.to_str().unwrap()])
        .status
        .success());
    assert!(callwarden(&s.config, &["purge", "--now", FUTURE])
        .status
        .success());
    assert!(!path.exists());
    recording(&path, 2);
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(text(&o).contains("too short 1"), "{}", text(&o));
    let store = Store::open(&s.store).unwrap();
    assert_eq!(store.count_by_state(RecordState::Purged), 1);
    let new = store.by_path(&rp(path)).unwrap().unwrap();
    assert_eq!(new.state, RecordState::TooShort);
    assert!(new.flags.is_empty(), "{:?}", new.flags);
    drop(store);
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
}
