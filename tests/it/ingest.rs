//! `callwarden ingest`: every finished recording stored exactly once, with its sidecar, its
//! failures and later changes recorded; reruns pick up where they stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callwarden::store::{RecordState, Store};

use crate::support::{assets, rp, standard_call, write_wav};

fn ingest(paths: &[&Path], store: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callwarden"));
    cmd.arg("ingest")
        .arg("--store")
        .arg(store)
        .arg("--jobs")
        .arg("2");
    cmd.args(paths);
    cmd.env_remove("CALLWARDEN_LOG")
        .output()
        .expect("run callwarden")
}

fn summary(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sets a file's mtime an hour back, so it counts as finished.
fn age(path: &Path) {
    crate::support::age(path, 3600);
}

struct Folder {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
}

fn folder() -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("monitor");
    let day = root.join("2026-11-20");
    std::fs::create_dir_all(&day).unwrap();
    for name in [
        "asterisk-demo-echotest",
        "asterisk-vm-review",
        "asterisk-queue-youarenext",
    ] {
        std::fs::copy(
            assets().join(format!("speech/{name}.wav")),
            day.join(format!("{name}.WAV")),
        )
        .unwrap();
    }
    write_wav(&day.join("call.wav"), &standard_call().samples, 1);
    // A good sidecar, a broken one, a short recording and a corrupt one.
    std::fs::write(
        day.join("asterisk-demo-echotest.json"),
        r#"{"agent": "alice", "queue": "support", "start_time": "2026-11-20T09:00:00Z",
            "consent": {"state": "granted", "source": "ivr"}, "trunk": "sip-1"}"#,
    )
    .unwrap();
    std::fs::write(day.join("asterisk-vm-review.json"), "{not json").unwrap();
    std::fs::copy(
        assets().join("speech/fsdd-7_theo_3.wav"),
        day.join("short.wav"),
    )
    .unwrap();
    std::fs::write(day.join("corrupt.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    std::fs::write(day.join("notes.txt"), "not a recording").unwrap();
    for entry in std::fs::read_dir(&day).unwrap() {
        age(&entry.unwrap().path());
    }
    let store = dir.path().join("store");
    Folder {
        _dir: dir,
        root,
        store,
    }
}

#[test]
fn an_archive_is_stored_once_with_sidecars_and_failures() {
    let f = folder();
    let o = ingest(&[&f.root], &f.store);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a corrupt file makes the run exit 2"
    );
    assert_eq!(
        summary(&o),
        "ingested 4, already stored 0, too short 1, failed 1, modified after ingest 0, still being written 0"
    );
    let store = Store::open(&f.store).unwrap();
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 6);
    let find = |suffix: &str| records.iter().find(|r| r.path.ends_with(suffix)).unwrap();
    let echo = find("asterisk-demo-echotest.WAV");
    assert_eq!(echo.state, RecordState::Analysed);
    let meta = echo.metadata.as_ref().unwrap();
    assert_eq!(meta.agent.as_deref(), Some("alice"));
    assert_eq!(meta.extra["trunk"], "sip-1");
    assert_eq!(echo.started_ms, 1_795_165_200_000);
    let bytes = std::fs::read(&echo.path).unwrap();
    assert_eq!(
        echo.sha256,
        callwarden::pipeline::sha256_file(Path::new(&echo.path)).unwrap()
    );
    assert_eq!(echo.size, bytes.len() as u64);
    assert!(echo.report.as_ref().unwrap().quality.score > 50);
    let review = find("asterisk-vm-review.WAV");
    assert_eq!(
        review.flags,
        vec![callwarden::store::RecordFlag::MetadataInvalid]
    );
    assert!(review.metadata_error.is_some());
    assert_eq!(review.state, RecordState::Analysed);
    assert_eq!(find("short.wav").state, RecordState::TooShort);
    let corrupt = find("corrupt.wav");
    assert_eq!(corrupt.state, RecordState::Failed);
    assert_eq!(corrupt.error.as_ref().unwrap().code, "decode_failed");
    assert_eq!(store.count_by_state(RecordState::Analysed), 4);
}

#[test]
fn a_rerun_skips_what_is_stored_and_sees_what_changed() {
    let f = folder();
    ingest(&[&f.root], &f.store);
    let o = ingest(&[&f.root], &f.store);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        summary(&o).starts_with("ingested 0, already stored 6,"),
        "{}",
        summary(&o)
    );

    // One recording's bytes change after ingest (a second writer, or tampering).
    let call = f.root.join("2026-11-20/call.wav");
    let before = Store::open(&f.store)
        .unwrap()
        .by_path(&rp(&call))
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(&call).unwrap();
    let n = bytes.len();
    bytes[n - 100..]
        .iter_mut()
        .for_each(|b| *b = b.wrapping_add(1));
    std::fs::write(&call, &bytes).unwrap();
    age(&call);
    // And a new one arrives, written a moment ago: waited for (ingest.settle_s), then stored.
    let fresh = f.root.join("2026-11-20/fresh.wav");
    std::fs::copy(assets().join("speech/asterisk-privacy-prompt.wav"), &fresh).unwrap();

    let o = ingest(&[&f.root], &f.store);
    assert_eq!(
        summary(&o),
        "ingested 1, already stored 5, too short 0, failed 0, modified after ingest 1, still being written 0"
    );
    let store = Store::open(&f.store).unwrap();
    let after = store.by_path(&rp(&call)).unwrap().unwrap();
    assert_eq!(after.sha256, before.sha256, "the original hash stays");
    assert_eq!(
        after.flags,
        vec![callwarden::store::RecordFlag::ModifiedAfterIngest]
    );
    assert_eq!(after.id, before.id);
    assert!(store.by_path(&rp(&fresh)).unwrap().is_some());
    assert_eq!(store.all().count(), 7);
}

#[test]
fn a_store_in_use_is_said_so() {
    let f = folder();
    let _held = Store::open(&f.store).unwrap();
    let o = ingest(&[&f.root], &f.store);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn symlinks_are_not_followed() {
    let f = folder();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere.wav");
    std::fs::copy(assets().join("speech/asterisk-privacy-prompt.wav"), &target).unwrap();
    std::os::unix::fs::symlink(&target, f.root.join("2026-11-20/link.wav")).unwrap();
    std::os::unix::fs::symlink(outside.path(), f.root.join("linked-dir")).unwrap();
    ingest(&[&f.root], &f.store);
    let store = Store::open(&f.store).unwrap();
    assert!(store
        .all()
        .all(|r| !r.unwrap().path.to_string().contains("link")));
}

#[test]
fn file_names_carry_metadata_and_sidecars_win() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("monitor");
    std::fs::create_dir(&root).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[ingest]\nfilename_pattern = \"{queue}-{agent}-{epoch}\"\n",
    )
    .unwrap();
    for (name, sidecar) in [
        ("support-carol-1700000000.wav", None),
        ("sales-dave-1700000100.wav", Some(r#"{"agent": "erin"}"#)),
        ("unpatterned.wav", None),
    ] {
        let path = root.join(name);
        std::fs::copy(assets().join("speech/asterisk-vm-review.wav"), &path).unwrap();
        if let Some(text) = sidecar {
            std::fs::write(path.with_extension("json"), text).unwrap();
        }
        age(&path);
    }
    let store = dir.path().join("store");
    let o = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["ingest", "--config"])
        .arg(&config)
        .arg("--store")
        .arg(&store)
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let store = Store::open(&store).unwrap();
    let get = |name: &str| store.by_path(&rp(root.join(name))).unwrap().unwrap();
    let carol = get("support-carol-1700000000.wav");
    let m = carol.metadata.unwrap();
    assert_eq!(
        (m.queue.as_deref(), m.agent.as_deref()),
        (Some("support"), Some("carol"))
    );
    assert_eq!(carol.started_ms, 1_700_000_000_000);
    let dave = get("sales-dave-1700000100.wav").metadata.unwrap();
    assert_eq!(
        (dave.queue.as_deref(), dave.agent.as_deref()),
        (Some("sales"), Some("erin"))
    );
    assert_eq!(get("unpatterned.wav").metadata, None);
}

/// A sidecar's `channels` names the side on each channel (FreeSWITCH writes the caller left, so
/// the agent's side changes with the direction); without it, `analysis.channel_roles` does. Its
/// `codec` (the one the call crossed) costs the score that codec's ITU-T G.113 impairment.
#[test]
fn a_sidecar_names_the_side_on_each_channel_and_the_codec() {
    let dir = tempfile::tempdir().unwrap();
    let f = Folder {
        root: dir.path().join("root"),
        store: dir.path().join("store"),
        _dir: dir,
    };
    std::fs::create_dir_all(&f.root).unwrap();
    let agent = standard_call().samples;
    let customer: Vec<f32> = agent.iter().rev().copied().collect();
    let stereo = crate::support::interleave(&[&agent, &customer]);
    let named = f.root.join("out.wav");
    let plain = f.root.join("in.wav");
    for path in [&named, &plain] {
        write_wav(path, &stereo, 2);
    }
    std::fs::write(
        named.with_extension("json"),
        r#"{"channels": ["customer", "agent"]}"#,
    )
    .unwrap();
    let bad = f.root.join("bad.wav");
    write_wav(&bad, &stereo, 2);
    std::fs::write(bad.with_extension("json"), r#"{"channels": ["../x"]}"#).unwrap();
    // The codec the call crossed, which the score charges (and a name that is not one).
    let gsm = f.root.join("gsm.wav");
    let bad_codec = f.root.join("bad-codec.wav");
    for (path, sidecar) in [(&gsm, "GSM"), (&bad_codec, "gsm; drop")] {
        write_wav(path, &stereo, 2);
        std::fs::write(
            path.with_extension("json"),
            format!(r#"{{"codec": "{sidecar}"}}"#),
        )
        .unwrap();
    }
    for p in [&named, &plain, &bad, &gsm, &bad_codec] {
        age(p);
    }
    for p in [&named, &bad, &gsm, &bad_codec] {
        age(&p.with_extension("json"));
    }
    let o = ingest(&[&f.root], &f.store);
    assert!(o.status.success(), "{}", summary(&o));
    let store = Store::open(&f.store).unwrap();
    let roles = |p: &Path| -> Vec<String> {
        let r = store.by_path(&rp(p)).unwrap().unwrap();
        let report = r.report.expect("analysed");
        report
            .channels
            .unwrap()
            .iter()
            .map(|c| c.role.clone())
            .collect()
    };
    assert_eq!(roles(&named), ["customer", "agent"]);
    assert_eq!(roles(&plain), ["agent", "customer"]);
    // A sidecar whose roles are not names is not used (and says why).
    assert_eq!(roles(&bad), ["agent", "customer"]);
    let r = store.by_path(&rp(&bad)).unwrap().unwrap();
    assert!(
        r.metadata_error
            .as_deref()
            .is_some_and(|e| e.contains("channels")),
        "{r:?}"
    );
    let score = |p: &Path| {
        let r = store.by_path(&rp(p)).unwrap().unwrap();
        let q = r.report.expect("analysed").quality;
        let codec = q
            .penalties
            .iter()
            .find(|p| p.term == "codec")
            .map(|p| p.points);
        (q.score, codec, r.metadata_error)
    };
    let (plain_score, ..) = score(&plain);
    assert_eq!(score(&gsm), (plain_score - 20, Some(20.0), None));
    let (s, codec, error) = score(&bad_codec);
    assert_eq!((s, codec), (plain_score, None));
    assert!(error.is_some_and(|e| e.contains("codec")));
}
