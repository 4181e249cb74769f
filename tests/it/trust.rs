//! Trust: the compliance proof holds against real paths and hostile files (issue 19). Each test
//! here failed on the main before the fix it names.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

use callwarden::store::{RecordState, Store};

use crate::compliance::{callwarden, copy_tree, recording, sidecar, site, text, Site, FUTURE};

/// `callwarden ARGS --config CONFIG`, run in the directory `cwd`.
fn run_in(cwd: &Path, config: &Path, args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .current_dir(cwd)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CALLWARDEN_LOG")
        .env("USER", "trust-test")
        .output()
        .expect("run callwarden")
}

/// A site with one finished recording, `a.wav`, made from `seed`.
fn one_file(seed: u64) -> (Site, std::path::PathBuf) {
    let s = site();
    let file = s.root.join("a.wav");
    recording(&file, seed);
    crate::support::age(&file, 3600);
    (s, file)
}

/// [`one_file`], ingested.
fn one_stored(seed: u64) -> (Site, std::path::PathBuf) {
    let (s, file) = one_file(seed);
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    (s, file)
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn one_file_is_one_record_however_it_is_named() {
    let s = site();
    let file = s.root.join("day/a.wav");
    recording(&file, 1);
    crate::support::age(&file, 3600);
    // The same root, four ways, from its parent directory.
    for given in ["root", "./root", s.root.to_str().unwrap(), "root/../root"] {
        let o = run_in(&s.base, &s.config, &[os("ingest"), os(given)]);
        assert!(o.status.success(), "ingest {given}: {}", text(&o));
    }
    {
        let store = Store::open(&s.store).unwrap();
        let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 1, "one file, one record: {records:?}");
        assert_eq!(records[0].path.as_path(), file.as_path());
    }
    // Checked from another directory: intact, no tamper alarm.
    let o = run_in(Path::new("/"), &s.config, &[os("audit"), os("verify")]);
    assert!(o.status.success(), "verify from /: {}", text(&o));
    // And purged like any other.
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!file.exists(), "purged: {}", text(&o));
    let store = Store::open(&s.store).unwrap();
    let r = store.all().next().unwrap().unwrap();
    assert_eq!(r.state, RecordState::Purged);
}

#[test]
fn a_name_that_is_not_utf8_is_stored_and_purged_as_itself() {
    let s = site();
    let name = OsStr::from_bytes(b"bad\xff\xfe.wav");
    let file = s.root.join(name);
    recording(&file, 2);
    sidecar(&file, r#"{"agent": "ann"}"#);
    crate::support::age(&file, 3600);
    // A look-alike whose name is the lossy reading of the other must stay a file of its own.
    let lookalike = s.root.join("bad\u{fffd}\u{fffd}.wav");
    recording(&lookalike, 3);
    crate::support::age(&lookalike, 3600);
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    {
        let store = Store::open(&s.store).unwrap();
        let r = store
            .by_path(&crate::support::rp(&file))
            .unwrap()
            .expect("stored under its exact bytes");
        assert_eq!(r.path.as_bytes(), file.as_os_str().as_bytes());
        assert_ne!(r.state, RecordState::Missing);
        assert_eq!(
            r.metadata.and_then(|m| m.agent).as_deref(),
            Some("ann"),
            "its own sidecar"
        );
        assert_eq!(store.all().count(), 2);
    }
    // Shown escaped, so the name on screen names one file; JSON carries the exact bytes.
    let o = callwarden(&s.config, &["list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(r#"bad\xff\xfe.wav"#),
        "{}",
        text(&o)
    );
    let o = callwarden(&s.config, &["list", "--json"]);
    let hex: String = file
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!(r#"{{"bytes":"{hex}"}}"#)),
        "{}",
        text(&o)
    );
    // `show` finds each by its exact name, absolute or relative to the working directory.
    let show = |cwd: &Path, name: &OsStr| {
        let o = run_in(cwd, &s.config, &[os("show"), name, os("--json")]);
        assert!(o.status.success(), "{}", text(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        json["record"]["id"].as_u64().unwrap()
    };
    let exact = show(&s.base, file.as_os_str());
    assert_eq!(show(&s.root, name), exact);
    assert_ne!(show(&s.root, lookalike.file_name().unwrap()), exact);
    let o = run_in(&s.base, &s.config, &[os("show"), name]);
    assert!(
        !o.status.success() && text(&o).contains("no recording with path"),
        "relative to the wrong folder: {}",
        text(&o)
    );
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    let store = Store::open(&s.store).unwrap();
    for r in store.all() {
        let r = r.unwrap();
        // The invariant a deletion certificate rests on: no tombstone for a file on disk.
        assert_eq!(
            r.state == RecordState::Purged,
            std::fs::symlink_metadata(r.path.as_path()).is_err(),
            "{r:?}"
        );
    }
    assert!(!file.exists() && !lookalike.exists(), "{}", text(&o));
    assert!(
        !file.with_extension("json").exists(),
        "its sidecar went with it"
    );
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn fifos_devices_and_symlinked_sidecars_are_refused_without_waiting() {
    let s = site();
    // A FIFO as a sidecar, as a recording, and sidecars through symlinks.
    let (a, b, c, d) = (
        s.root.join("a.wav"),
        s.root.join("b.wav"),
        s.root.join("c.wav"),
        s.root.join("d.wav"),
    );
    for (i, f) in [&a, &b, &c, &d].into_iter().enumerate() {
        recording(f, 10 + i as u64);
        crate::support::age(f, 3600);
    }
    mkfifo(&a.with_extension("json"));
    mkfifo(&s.root.join("pipe.wav"));
    let foreign = s.outside.join("meta.json");
    std::fs::write(&foreign, r#"{"agent": "mallory", "consent": "granted"}"#).unwrap();
    std::os::unix::fs::symlink(&foreign, b.with_extension("json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", c.with_extension("json")).unwrap();
    // A sidecar past the limit (64 KiB by default): a 1 MB field.
    std::fs::write(
        d.with_extension("json"),
        format!(r#"{{"agent": "{}"}}"#, "x".repeat(1 << 20)),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["ingest", s.root.to_str().unwrap(), "--config"])
        .arg(&s.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ingest hung on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let store = Store::open(&s.store).unwrap();
    assert_eq!(
        store.all().count(),
        4,
        "the FIFO named .wav is no recording"
    );
    let check = |f: &Path, why: &str| {
        let r = store.by_path(&crate::support::rp(f)).unwrap().unwrap();
        assert!(
            r.has(callwarden::store::RecordFlag::MetadataInvalid),
            "{r:?}"
        );
        assert!(r.metadata.is_none(), "nothing read from it: {r:?}");
        let error = r.metadata_error.unwrap_or_default();
        assert!(error.contains(why), "{error}");
    };
    check(&a, "a FIFO, not a regular file");
    check(&b, "symlink");
    check(&c, "symlink");
    check(&d, "more than the limit of 65536");

    // `analyze` on a FIFO or a device says why at once.
    for target in [s.root.join("pipe.wav"), "/dev/zero".into()] {
        let o = Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .arg("analyze")
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    }
}

#[test]
fn the_store_is_private_whatever_the_umask() {
    let (s, _) = one_file(20);
    // Started under umask 022, as from a login shell.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec {} ingest {} --config {}",
            env!("CARGO_BIN_EXE_callwarden"),
            s.root.display(),
            s.config.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "store directory mode {mode:o}");
    for entry in walk(&s.store) {
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o077;
        assert_eq!(mode, 0, "{} is open to others", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_file_gone_without_a_purge_is_a_finding_when_marked_missing_too() {
    let s = site();
    let (a, b) = (s.root.join("a.wav"), s.root.join("b.wav"));
    recording(&a, 30);
    recording(&b, 31);
    crate::support::age(&a, 3600);
    crate::support::age(&b, 3600);
    assert!(callwarden(&s.config, &["ingest", s.root.to_str().unwrap()])
        .status
        .success());
    std::fs::remove_file(&a).unwrap();
    let verify = || callwarden(&s.config, &["audit", "verify"]);
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // A running daemon would mark it `missing`: the finding stays.
    {
        let store = Store::open(&s.store).unwrap();
        let config = callwarden::config::Config::load(&s.config).unwrap();
        let ingestor = callwarden::ingest::Ingestor {
            store: &store,
            config: &config,
        };
        assert!(ingestor
            .mark_missing(&crate::support::rp(&a), 1_000)
            .unwrap());
    }
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("no purge deleted it"), "{}", text(&o));
}

#[test]
fn an_older_copy_of_the_store_is_refused_and_reported() {
    let (s, file) = one_stored(40);
    // The operator's backup, taken now (the store stopped).
    let backup = s.base.join("backup");
    copy_tree(&s.store, &backup);
    // Then a legal hold, which the backup does not have.
    let id = {
        let store = Store::open(&s.store).unwrap();
        let id = store.all().next().unwrap().unwrap().id.0.to_string();
        id
    };
    let o = callwarden(
        &s.config,
        &["hold", "add", &id, "--case", "K-9", "--reason", "subpoena"],
    );
    assert!(o.status.success(), "{}", text(&o));
    // The backup restored over the store.
    std::fs::remove_dir_all(&s.store).unwrap();
    copy_tree(&backup, &s.store);
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("behind its anchor"), "{}", text(&o));
    // The purge that would delete the recording the hold protected does not run.
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(file.exists());
    // Nor does the daemon start on it.
    let o = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["daemon", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("behind its anchor"), "{}", text(&o));
}

#[test]
fn every_command_reads_the_same_configuration() {
    let (s, file) = one_file(50);
    // No --config: the configuration named by CALLWARDEN_CONFIG (as the system file would be).
    let bare = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .args(args)
            .env("CALLWARDEN_CONFIG", &s.config)
            .env_remove("CALLWARDEN_LOG")
            .output()
            .unwrap()
    };
    let o = bare(&["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        s.store.join("db").exists(),
        "ingest used the configured store: {}",
        text(&o)
    );
    let o = bare(&["list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("a.wav"),
        "{}",
        text(&o)
    );
    // A broken configuration stops analyze as it stops the rest.
    std::fs::write(&s.config, "[analysis]\nno_such_key = 1\n").unwrap();
    for args in [&["analyze", file.to_str().unwrap()][..], &["list"][..]] {
        let o = bare(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("no_such_key"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn ingest_waits_for_files_being_written_and_names_those_that_never_finish() {
    let s = site();
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config)
            .unwrap()
            .replace("settle_s = 0.0", "settle_s = 1.0"),
    )
    .unwrap();
    // Just closed: waited for, then stored.
    let done = s.root.join("done.wav");
    recording(&done, 60);
    // Still growing for longer than settle_s: named, and the exit status says so.
    let growing = s.root.join("growing.wav");
    recording(&growing, 61);
    let writer = {
        let growing = growing.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .unwrap();
            for _ in 0..40 {
                f.write_all(&[0u8; 160]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("ingested 0, already stored 0, too short 1"),
        "{out}"
    );
    assert!(out.contains("still being written 1"), "{out}");
    assert!(
        out.contains(&format!("not ingested: {}", growing.display())),
        "{out}"
    );
    assert!(out.contains("waiting for"), "progress is shown: {out}");
    let store = Store::open(&s.store).unwrap();
    assert!(store.by_path(&crate::support::rp(&done)).unwrap().is_some());
    assert!(store
        .by_path(&crate::support::rp(&growing))
        .unwrap()
        .is_none());
}

#[test]
fn a_move_inside_the_roots_is_one_record_and_a_copy_names_its_twin() {
    let s = site();
    let staging = s.root.join("staging/a.wav");
    recording(&staging, 70);
    sidecar(&staging, r#"{"agent": "ann"}"#);
    crate::support::age(&staging, 3600);
    let ingest = || {
        let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    ingest();
    // The PBX moves the finished recording (and its sidecar) into its day folder.
    let day = s.root.join("2026-12-06/a.wav");
    std::fs::create_dir_all(day.parent().unwrap()).unwrap();
    std::fs::rename(&staging, &day).unwrap();
    std::fs::rename(staging.with_extension("json"), day.with_extension("json")).unwrap();
    let o = ingest();
    assert!(text(&o).contains("moved (one recording"), "{}", text(&o));
    {
        let store = Store::open(&s.store).unwrap();
        let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 1, "{records:?}");
        let r = &records[0];
        assert_eq!(r.path.as_path(), day.as_path());
        assert_eq!(
            r.metadata.as_ref().and_then(|m| m.agent.as_deref()),
            Some("ann")
        );
        let actions: Vec<String> = store
            .audit_of(r.id)
            .map(|e| e.unwrap().1.unwrap().action)
            .collect();
        assert_eq!(actions, ["ingest", "moved"]);
    }
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(
        o.status.success(),
        "no tamper alarm after a move: {}",
        text(&o)
    );

    // Moved again, after a daemon marked it missing: back, not missing.
    let again = s.root.join("2026-12-07/a.wav");
    std::fs::create_dir_all(again.parent().unwrap()).unwrap();
    std::fs::rename(&day, &again).unwrap();
    {
        let store = Store::open(&s.store).unwrap();
        let config = callwarden::config::Config::load(&s.config).unwrap();
        let ingestor = callwarden::ingest::Ingestor {
            store: &store,
            config: &config,
        };
        assert!(ingestor
            .mark_missing(&crate::support::rp(&day), 1_000)
            .unwrap());
    }
    ingest();
    {
        let store = Store::open(&s.store).unwrap();
        let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].path.as_path(), again.as_path());
        assert_eq!(records[0].state, RecordState::TooShort);
    }

    // A true copy stays a second record that names its twin.
    let copy = s.root.join("copies/a.wav");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&again, &copy).unwrap();
    crate::support::age(&copy, 1800);
    ingest();
    let store = Store::open(&s.store).unwrap();
    let original = store.by_path(&crate::support::rp(&again)).unwrap().unwrap();
    let twin = store.by_path(&crate::support::rp(&copy)).unwrap().unwrap();
    assert_ne!(original.id, twin.id);
    assert_eq!(twin.twin, Some(original.id));
    assert_eq!(original.twin, None);
}

#[test]
fn the_deletion_certificate_carries_the_real_time_and_who() {
    let (s, _) = one_stored(80);
    let before = callwarden::ingest::now_ms();
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    let after = callwarden::ingest::now_ms();
    let store = Store::open(&s.store).unwrap();
    let r = store.all().next().unwrap().unwrap();
    let t = r.tombstone.expect("a tombstone");
    assert!(
        (before..=after).contains(&t.deleted_ms),
        "deleted at the real time, not the policy's: {t:?}"
    );
    assert_eq!(t.policy_ms, Some(2_208_988_800_000), "{t:?}");
    // Every audit entry of the run is stamped with the real time, too.
    for e in store.audit_entries() {
        let e = e.unwrap().1.unwrap();
        assert!(e.time_ms <= after, "{e:?}");
    }
    // Who: the user database's name for the uid, not only the uid.
    let uid = rustix::process::getuid().as_raw();
    let name = callwarden::control::user_name(uid).unwrap();
    assert!(
        t.actor.starts_with(&format!("{name} (uid {uid}")),
        "{}",
        t.actor
    );
    drop(store);
    let o = callwarden(&s.config, &["report", "purged", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = &report["recordings"][0];
    assert_eq!(row["policy_at"], "2040-01-01T00:00:00Z", "{row}");
    assert!(
        row["deleted_at"].as_str().unwrap().starts_with("20"),
        "{row}"
    );
    assert_ne!(row["deleted_at"], row["policy_at"]);
}

#[test]
fn status_names_the_store_it_read_and_show_and_the_log_say_why_a_sidecar_was_not_used() {
    let s = site();
    let file = s.root.join("a.wav");
    recording(&file, 90);
    sidecar(&file, r#"{"agent": "#);
    crate::support::age(&file, 3600);
    let run = |args: &[&str], journal: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callwarden"));
        cmd.args(args)
            .arg("--config")
            .arg(&s.config)
            .env("CALLWARDEN_LOG", "warn");
        if journal {
            cmd.env("JOURNAL_STREAM", "8:12345");
        } else {
            cmd.env_remove("JOURNAL_STREAM");
        }
        cmd.output().unwrap()
    };
    let o = run(&["ingest", s.root.to_str().unwrap()], true);
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    let line = log
        .lines()
        .find(|l| l.contains("sidecar not used"))
        .unwrap_or_else(|| panic!("logged: {log}"));
    assert!(
        line.trim_start().starts_with("WARN"),
        "journald adds the time: {line}"
    );
    // The store named by --store, not the configured one.
    let elsewhere = s.base.join("elsewhere");
    copy_tree(&s.store, &elsewhere);
    let o = run(&["status", "--store", elsewhere.to_str().unwrap()], false);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains(&format!("store     {}", elsewhere.display())),
        "{out}"
    );
    let o = run(&["show", "1"], false);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("sidecar    not used:"), "{out}");
    let other = s.root.join("b.wav");
    recording(&other, 91);
    sidecar(&other, "[");
    crate::support::age(&other, 3600);
    let o = run(&["ingest", s.root.to_str().unwrap()], false);
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    let line = log
        .lines()
        .find(|l| l.contains("sidecar not used"))
        .unwrap_or_else(|| panic!("logged: {log}"));
    assert!(line.starts_with("20"), "a timestamp elsewhere: {line}");
}

#[test]
fn a_damaged_store_is_never_reported_intact() {
    let (s, _) = one_stored(95);
    let pristine = s.base.join("pristine");
    copy_tree(&s.store, &pristine);
    let len = std::fs::metadata(s.store.join("db")).unwrap().len() as usize;
    // One flipped byte at several places in the database's log: sled reads up to the damage
    // and drops the rest without an error; the anchor shows what went missing.
    for at in [40, len / 3, len / 2, len - 40] {
        std::fs::remove_dir_all(&s.store).unwrap();
        copy_tree(&pristine, &s.store);
        let db = s.store.join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        bytes[at] ^= 0xff;
        std::fs::write(&db, bytes).unwrap();
        for args in [&["audit", "verify"][..], &["list"][..]] {
            let o = callwarden(&s.config, args);
            assert_eq!(
                o.status.code(),
                Some(3),
                "byte {at}, {args:?}: {}",
                text(&o)
            );
            let out = text(&o);
            assert!(
                out.contains("damaged") && out.contains("docs/compliance.md"),
                "byte {at}, {args:?}: {out}"
            );
        }
    }
}

/// A tmpfs of `mb` MiB mounted at `dir`, unmounted when dropped. `None` (said loudly) where
/// mounting is not allowed; in CI it must be.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root)"
            );
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here (not root?): the full-disk test did not run"
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_store_disk_stops_the_daemon_and_a_restart_recovers() {
    let s = site();
    let mnt = s.base.join("mnt");
    let Some(_fs) = Tmpfs::mount(&mnt, 3) else {
        return;
    };
    let store = mnt.join("store");
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config).unwrap().replace(
            &format!("path = {:?}", s.store),
            &format!("path = {store:?}"),
        ),
    )
    .unwrap();
    for i in 0..2 {
        let f = s.root.join(format!("a{i}.wav"));
        recording(&f, 100 + i);
        crate::support::age(&f, 3600);
    }
    let d = crate::daemon::Daemon::start(&s.config);
    d.wait_idle();
    // The store's disk fills; a recording arrives.
    let filler = mnt.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let late = s.root.join("late.wav");
    recording(&late, 110);
    // Stopped within the drain timeout, non-zero, so systemd restarts it.
    let code = d.exited(std::time::Duration::from_secs(45));
    assert!(code.is_some_and(|c| c != 0), "exit status {code:?}");
    // Space comes back; the restart stores what the failure left.
    std::fs::remove_file(&filler).unwrap();
    let d = crate::daemon::Daemon::start(&s.config);
    d.wait_idle();
    assert_eq!(d.stop(), Some(0));
    let store = Store::open(&store).unwrap();
    assert!(store.by_path(&crate::support::rp(&late)).unwrap().is_some());
    assert_eq!(store.all().count(), 3);
}

#[test]
fn the_daemon_follows_a_recording_moved_300_ms_after_close() {
    let s = site();
    let d = crate::daemon::Daemon::start(&s.config);
    // The PBX writes to staging, closes, and moves the file into its day folder 300 ms later.
    let staging = s.root.join("staging/call.wav");
    recording(&staging, 120);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let day = s.root.join("2026-12-06/call.wav");
    std::fs::create_dir_all(day.parent().unwrap()).unwrap();
    std::fs::rename(&staging, &day).unwrap();
    // The new name is stored (or the record moved to it); then the daemon stops.
    d.wait_for(
        |l| {
            l.iter().any(|x| {
                x.contains("2026-12-06/call.wav")
                    && (x.contains("recording moved") || x.contains("stored"))
            })
        },
        "the recording at its new name",
    );
    let log = d.log();
    assert_eq!(d.stop(), Some(0));
    let store = Store::open(&s.store).unwrap();
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    assert_eq!(
        records.len(),
        1,
        "one recording, one record: {records:?} {log:#?}"
    );
    assert_eq!(records[0].path.as_path(), day.as_path(), "{log:#?}");
    assert_ne!(records[0].state, RecordState::Missing);
    drop(store);
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_symlinked_folder_in_a_root_is_neither_scanned_nor_watched() {
    let s = site();
    // A folder outside the root, linked into it.
    std::os::unix::fs::symlink(&s.outside, s.root.join("linked")).unwrap();
    let before = s.outside.join("before.wav");
    recording(&before, 130);
    crate::support::age(&before, 3600);
    let d = crate::daemon::Daemon::start(&s.config);
    // Created outside the root while the daemon watches; and one inside, as a control.
    let during = s.outside.join("during.wav");
    recording(&during, 131);
    let inside = s.root.join("inside.wav");
    recording(&inside, 132);
    d.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("stored") && x.contains("inside.wav"))
        },
        "the recording inside the root",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.stop(), Some(0));
    let store = Store::open(&s.store).unwrap();
    let paths: Vec<String> = store.all().map(|r| r.unwrap().path.to_string()).collect();
    assert_eq!(paths.len(), 1, "only the file inside the root: {paths:?}");
    assert!(paths[0].ends_with("/root/inside.wav"), "{paths:?}");
}

/// Every file under `dir`, and `dir`, owned by `uid`.
fn chown_tree(dir: &Path, uid: u32) {
    std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            chown_tree(&path, uid);
        } else {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        }
    }
}

/// A file the ingest may not read at first (a permission fixed a moment later, as when a PBX
/// writes 0600 and a cron job opens it up): retried with backoff, then stored whole. Left
/// unreadable, it is stored failed without a hash, never counted intact, and read again at the
/// next ingest. Runs the binary as `nobody`, since root reads any file.
#[test]
fn a_read_error_that_passes_is_retried_and_one_that_stays_is_never_intact() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    if !running_as_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: the transient-read test must run"
        );
        eprintln!("SKIPPED: not root, so cannot run callwarden as another user");
        return;
    }
    let as_nobody = |s: &Site, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_callwarden"));
        c.args(args)
            .arg("--config")
            .arg(&s.config)
            .env("CALLWARDEN_LOG", "warn")
            .env("USER", "trust-test")
            .uid(NOBODY)
            .gid(NOBODY);
        c
    };
    let root = |s: &Site| s.root.to_str().unwrap().to_string();

    // Fixed while the retries run: one record, analysed, with its hash.
    let (s, file) = one_file(96);
    chown_tree(&s.base, NOBODY);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut child = as_nobody(&s, &["ingest", &root(&s)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("trying again in 100 ms") {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && log.contains("trying again in 100 ms"),
        "{}{log}",
        text(&o)
    );
    {
        let store = Store::open(&s.store).unwrap();
        let r = store.by_path(&crate::support::rp(&file)).unwrap().unwrap();
        assert!(
            r.state != RecordState::Failed && !r.sha256.is_empty(),
            "{r:?}"
        );
    }

    // Never fixed: stored failed, no hash, and verify does not call it intact.
    let (s, file) = one_file(97);
    chown_tree(&s.base, NOBODY);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let o = as_nobody(&s, &["ingest", &root(&s)]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("trying again in 2000 ms") && text(&o).contains("failed: "),
        "{}",
        text(&o)
    );
    let o = as_nobody(&s, &["audit", "verify"]).output().unwrap();
    assert!(
        !o.status.success() && text(&o).contains("no hash was recorded"),
        "{}",
        text(&o)
    );
    // Fixed later: the next ingest reads it although its size and time did not change.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = as_nobody(&s, &["ingest", &root(&s)]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = as_nobody(&s, &["audit", "verify"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The purge of `file`'s record planned, its intent written, and nothing more: a purge killed
/// right after planning.
fn pending_purge(s: &Site, file: &Path) -> callwarden::store::RecordingId {
    let store = Store::open(&s.store).unwrap();
    let r = store.by_path(&crate::support::rp(file)).unwrap().unwrap();
    let intent = callwarden::store::Intent {
        id: r.id,
        path: r.path.clone(),
        size: r.size,
        mtime_ns: r.mtime_ns,
        rule: "default".into(),
        reason: "expired".into(),
        scope: callwarden::policy::Scope::Audio,
        actor: "trust-test".into(),
        planned_ms: 0,
    };
    store.write_intents(&[intent], 0).unwrap();
    store.flush().unwrap();
    r.id
}

/// A recording moved while its purge was pending (the purge's intent written, then a crash,
/// then someone moved the file): the purge finds its path empty and rolls forward, and the
/// certificate says so ("already gone", not "deleted"). Its bytes, found at the new path, are
/// flagged as the purged recording's, named as its twin, reported by verify, and purged again.
#[test]
fn a_recording_moved_while_its_purge_was_pending_is_not_proven_gone() {
    use callwarden::store::RecordFlag;
    let (s, file) = one_stored(98);
    pending_purge(&s, &file);
    let moved = s.root.join("later/a.wav");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&file, &moved).unwrap();

    // The pending purge completes (rolled forward); then the file turns up at its new path.
    let o = callwarden(&s.config, &["purge"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let (first, second) = {
        let store = Store::open(&s.store).unwrap();
        let first = store.by_path(&crate::support::rp(&file)).unwrap().unwrap();
        let second = store.by_path(&crate::support::rp(&moved)).unwrap().unwrap();
        (first, second)
    };
    assert_eq!(first.state, RecordState::Purged);
    assert!(second.has(RecordFlag::EscapedPurge), "{second:?}");
    assert_eq!(second.twin, Some(first.id));

    let o = callwarden(&s.config, &["report", "purged", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["recordings"][0]["deletion"], "already_gone", "{json}");
    let o = callwarden(&s.config, &["report", "purged"]);
    assert!(
        text(&o).contains("already gone: not witnessed"),
        "{}",
        text(&o)
    );
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("bytes of purged recording {}", first.id.0)),
        "{}",
        text(&o)
    );

    // The policy decides the escaped copy again: it is due too, and this purge sees it go.
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!moved.exists());
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(&s.config, &["report", "purged", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["recordings"][1]["deletion"], "deleted", "{json}");
}

/// The same move, but the new path stored before the pending purge completes (the daemon saw
/// the file arrive there first, and stored it as a copy since a purge was taking the original):
/// the purge that finds the original gone flags the copy as escaped.
#[test]
fn a_move_stored_before_its_pending_purge_completes_is_flagged_too() {
    use callwarden::store::RecordFlag;
    let (s, file) = one_stored(100);
    let id = pending_purge(&s, &file);
    let moved = s.root.join("later/a.wav");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&file, &moved).unwrap();
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = callwarden(&s.config, &["purge"]);
    assert!(o.status.success(), "{}", text(&o));
    {
        let store = Store::open(&s.store).unwrap();
        let copy = store.by_path(&crate::support::rp(&moved)).unwrap().unwrap();
        assert!(copy.has(RecordFlag::EscapedPurge), "{copy:?}");
        assert_eq!(copy.twin, Some(id));
        let audited = store
            .audit_of(copy.id)
            .filter_map(|e| e.unwrap().1.ok())
            .any(|e| e.action == callwarden::audit::AuditAction::EscapedPurge);
        assert!(audited);
    }
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!moved.exists());
    let o = callwarden(&s.config, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `callwarden ARGS --config CONFIG`, which must finish within `secs` (killed by PID if not).
fn run_bounded(config: &Path, args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CALLWARDEN_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("callwarden {args:?} hung for {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The store's files damaged under a running daemon (a disk fault, a stray `dd`): whatever sled
/// notices, the daemon never spins or hangs. It works on, or stops non-zero; SIGTERM ends it
/// within the drain timeout; and afterwards the store is either whole or reported damaged (exit
/// 3, naming what to do), never read as intact with records lost. (sled serves a store this
/// small from its cache, so here the damage is found at the next open, by the anchor.)
#[test]
fn a_store_damaged_under_the_running_daemon_never_hangs_it() {
    let s = site();
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config).unwrap().replace(
            "settle_s = 0.0\n",
            "settle_s = 0.0\ndrain_timeout_s = 5.0\n",
        ),
    )
    .unwrap();
    for i in 0..6 {
        let f = s.root.join(format!("a{i}.wav"));
        recording(&f, 120 + i);
        crate::support::age(&f, 3600);
    }
    for (case, (from, to)) in [(0.25, 0.75), (0.0, 1.0)].into_iter().enumerate() {
        let d = crate::daemon::Daemon::start(&s.config);
        d.wait_idle();
        let db = s.store.join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        let n = bytes.len() as f64;
        for b in &mut bytes[(n * from) as usize..(n * to) as usize] {
            *b ^= 0xa5;
        }
        std::fs::write(&db, bytes).unwrap();
        // Work arrives: a recording, queries, a verify.
        let late = s.root.join(format!("late{case}.wav"));
        recording(&late, 130 + case as u64);
        for args in [&["status"][..], &["list"][..], &["audit", "verify"][..]] {
            run_bounded(&s.config, args, 20);
        }
        let code = d.terminate(std::time::Duration::from_secs(20));
        assert!(code.is_some(), "case {case}: killed by a signal");
        // Afterwards: whole, or refused as damaged; never intact with records lost.
        let o = run_bounded(&s.config, &["audit", "verify"], 60);
        match o.status.code() {
            Some(0) => {
                let o = run_bounded(&s.config, &["list", "--json"], 20);
                let listed = String::from_utf8_lossy(&o.stdout).lines().count();
                assert!(
                    listed >= 6 + case,
                    "case {case}: {listed} listed; {}",
                    text(&o)
                );
            }
            Some(3) => assert!(
                text(&o).contains("damaged") && text(&o).contains("docs/compliance.md"),
                "case {case}: {}",
                text(&o)
            ),
            other => panic!("case {case}: verify exited {other:?}: {}", text(&o)),
        }
        // The next case starts from a store that opens.
        if !o.status.success() {
            std::fs::remove_dir_all(&s.store).unwrap();
            let _ = std::fs::remove_file(s.store.with_extension("head"));
        }
    }
}

/// A record from a store written before paths were made absolute (`ingest rec` stored
/// `rec/a.wav`) is carried over to its absolute path by the next ingest of the roots (the
/// daemon's start-up scan does the same): one record, a `moved` audit entry, and purgeable.
#[test]
fn a_relative_path_from_an_older_store_is_upgraded_by_the_next_scan() {
    use callwarden::audit::{AuditAction, Draft};
    let (s, file) = one_stored(99);
    {
        let store = Store::open(&s.store).unwrap();
        let old = store.by_path(&crate::support::rp(&file)).unwrap().unwrap();
        let mut relative = old.clone();
        relative.path = serde_json::from_str("\"root/a.wav\"").unwrap();
        assert!(!relative.path.is_absolute());
        let event = Draft::new("old-version", AuditAction::Note, serde_json::Value::Null);
        store
            .commit(&relative, Some(&old), event.about(old.id.0), 1)
            .unwrap();
        store.flush().unwrap();
    }
    let o = run_in(
        &s.outside,
        &s.config,
        &[os("purge"), os("--now"), os(FUTURE)],
    );
    assert!(
        text(&o).contains("not absolute"),
        "refused before the upgrade: {}",
        text(&o)
    );
    assert!(file.exists());
    let o = callwarden(&s.config, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    {
        let store = Store::open(&s.store).unwrap();
        let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].path.as_path(), file.as_path());
        let moved = store
            .audit_of(records[0].id)
            .filter_map(|e| e.unwrap().1.ok())
            .any(|e| e.action == AuditAction::Moved);
        assert!(moved);
    }
    let o = callwarden(&s.config, &["purge", "--now", FUTURE]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!file.exists(), "{}", text(&o));
}
