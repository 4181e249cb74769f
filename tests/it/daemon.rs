//! The daemon, run as the real binary on temp directories: files arriving every way a PBX
//! writes them are stored exactly once, never before they are finished; restarts reconcile.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callwarden::store::{RecordState, Store};

use crate::support::{age, assets, rp, standard_call, write_pcm, write_wav};

/// A running daemon; killed (by PID) if a test fails before stopping it.
pub(crate) struct Daemon {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub(crate) fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[])
    }

    fn start_with(config: &Path, env: &[(&str, &Path)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .arg("daemon")
            .arg("--config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .env("CALLWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let d = Daemon {
            child: Some(child),
            lines,
        };
        d.wait_for(|l| l.iter().any(|x| x.contains("watching")), "the watch");
        d
    }

    /// Files the start-up scan queued (from the "watching" line).
    fn queued(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().find(|l| l.contains("watching")).unwrap();
        let n = line.split("queued=").nth(1).unwrap();
        n.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits until every file the start-up scan queued is done.
    pub(crate) fn wait_idle(&self) {
        let queued = self.queued();
        self.wait_for(
            |l| {
                l.iter()
                    .filter(|x| x.contains("stored") || x.contains("changed after ingest"))
                    .count()
                    >= queued
            },
            "the queued files",
        );
    }

    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Every log line so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first log line that contains `needle`.
    pub(crate) fn line_with(&self, needle: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    }

    pub(crate) fn wait_for(&self, done: impl Fn(&[String]) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if done(&self.lines.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}: {:#?}",
            self.lines.lock().unwrap()
        );
    }

    /// Waits for the daemon to exit by itself (at most `within`), and its exit status.
    pub(crate) fn exited(mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the daemon did not exit within {within:?}: {:#?}",
            self.lines.lock().unwrap()
        );
    }

    /// SIGTERM, then [`Daemon::exited`]: the daemon must be gone within `within`.
    pub(crate) fn terminate(self, within: Duration) -> Option<i32> {
        if let Some(child) = &self.child {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
        }
        self.exited(within)
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        child.wait().unwrap().code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("monitor");
    std::fs::create_dir_all(&root).unwrap();
    let store = dir.path().join("store");
    let config = dir.path().join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{:?}]\nsettle_s = 2.0\nworkers = 2\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n",
            root,
            store,
            dir.path().join("control.sock")
        ),
    )
    .unwrap();
    Setup {
        _dir: dir,
        root,
        store,
        config,
    }
}

/// Writes a WAV the way Asterisk's MixMonitor does: a header claiming 0 data bytes, audio
/// appended in chunks while the call runs, the sizes patched only at close.
fn write_like_asterisk(path: &Path, samples: &[i16], chunks: usize, pause: Duration) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut header = Vec::new();
    header.extend(b"RIFF");
    header.extend(36u32.to_le_bytes());
    header.extend(b"WAVEfmt ");
    header.extend(16u32.to_le_bytes());
    header.extend(1u16.to_le_bytes());
    header.extend(1u16.to_le_bytes());
    header.extend(8000u32.to_le_bytes());
    header.extend(16000u32.to_le_bytes());
    header.extend(2u16.to_le_bytes());
    header.extend(16u16.to_le_bytes());
    header.extend(b"data");
    header.extend(0u32.to_le_bytes());
    f.write_all(&header).unwrap();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    for chunk in bytes.chunks(bytes.len().div_ceil(chunks)) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(pause);
    }
    let data = bytes.len() as u32;
    f.seek(SeekFrom::Start(4)).unwrap();
    f.write_all(&(36 + data).to_le_bytes()).unwrap();
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(&data.to_le_bytes()).unwrap();
}

fn pcm(name: &str) -> Vec<i16> {
    hound::WavReader::open(assets().join(format!("speech/{name}.wav")))
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect()
}

#[test]
fn files_arriving_every_way_are_stored_once_and_only_when_finished() {
    let s = setup();
    let d = Daemon::start(&s.config);
    let root = &s.root;
    // Written in one go.
    write_wav(&root.join("one-go.wav"), &standard_call().samples, 1);
    // Written to a temporary name and renamed in.
    std::fs::copy(
        assets().join("speech/asterisk-vm-review.wav"),
        root.join(".incoming.tmp"),
    )
    .unwrap();
    std::fs::rename(root.join(".incoming.tmp"), root.join("renamed.wav")).unwrap();
    // A new per-day folder, with a sidecar before its audio.
    let day = root.join("2026-11-21");
    std::fs::create_dir(&day).unwrap();
    std::fs::write(
        day.join("early.json"),
        r#"{"agent": "alice", "queue": "sales"}"#,
    )
    .unwrap();
    std::fs::copy(
        assets().join("speech/asterisk-queue-youarenext.wav"),
        day.join("early.wav"),
    )
    .unwrap();
    // Sidecar after the audio.
    std::fs::copy(
        assets().join("speech/asterisk-privacy-prompt.wav"),
        day.join("late.wav"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        day.join("late.json"),
        r#"{"agent": "bob", "direction": "inbound"}"#,
    )
    .unwrap();
    // A corrupt one.
    std::fs::write(
        root.join("corrupt.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunk",
    )
    .unwrap();
    // Slowly, as Asterisk writes a call: 2 s of writing with the header claiming 0 bytes.
    let slow = pcm("asterisk-demo-echotest");
    write_like_asterisk(
        &root.join("asterisk.wav"),
        &slow,
        8,
        Duration::from_millis(250),
    );

    d.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 6,
        "six recordings",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.stop(), Some(0));

    let store = Store::open(&s.store).unwrap();
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 6, "{records:#?}");
    let find = |suffix: &str| records.iter().find(|r| r.path.ends_with(suffix)).unwrap();
    // The slowly written file was analysed whole, once, from its final bytes.
    let asterisk = find("asterisk.wav");
    assert_eq!(asterisk.state, RecordState::Analysed);
    let report = asterisk.report.as_ref().unwrap();
    assert!((report.format.duration_s - slow.len() as f64 / 8000.0).abs() < 0.01);
    assert!(asterisk.flags.is_empty(), "{:?}", asterisk.flags);
    assert_eq!(
        asterisk.sha256,
        callwarden::pipeline::sha256_file(Path::new(&asterisk.path)).unwrap()
    );
    assert_eq!(find("renamed.wav").state, RecordState::Analysed);
    assert_eq!(find("one-go.wav").state, RecordState::Analysed);
    assert_eq!(
        find("early.wav")
            .metadata
            .as_ref()
            .unwrap()
            .agent
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        find("late.wav").metadata.as_ref().unwrap().agent.as_deref(),
        Some("bob")
    );
    assert_eq!(find("corrupt.wav").state, RecordState::Failed);
}

#[test]
fn restarts_reconcile_and_changes_are_flagged() {
    let s = setup();
    std::fs::copy(
        assets().join("speech/asterisk-vm-review.wav"),
        s.root.join("kept.wav"),
    )
    .unwrap();
    std::fs::copy(
        assets().join("speech/asterisk-privacy-prompt.wav"),
        s.root.join("gone.wav"),
    )
    .unwrap();
    let d = Daemon::start(&s.config);
    d.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 2,
        "two recordings",
    );
    assert_eq!(d.stop(), Some(0));

    // While stopped: one file arrives, one is deleted.
    std::fs::remove_file(s.root.join("gone.wav")).unwrap();
    write_wav(&s.root.join("while-down.wav"), &standard_call().samples, 1);
    let d = Daemon::start(&s.config);
    d.wait_for(
        |l| l.iter().any(|x| x.contains("stored")),
        "the new recording",
    );
    // A stored file's bytes change under the daemon.
    let kept = s.root.join("kept.wav");
    let mut bytes = std::fs::read(&kept).unwrap();
    let n = bytes.len();
    bytes[n - 50..].iter_mut().for_each(|b| *b ^= 0x55);
    std::fs::write(&kept, &bytes).unwrap();
    d.wait_for(
        |l| l.iter().any(|x| x.contains("changed after ingest")),
        "the change",
    );
    assert_eq!(d.count("marked missing"), 1);
    assert_eq!(d.stop(), Some(0));

    let store = Store::open(&s.store).unwrap();
    let get = |name: &str| store.by_path(&rp(s.root.join(name))).unwrap().unwrap();
    assert_eq!(get("gone.wav").state, RecordState::Missing);
    assert_eq!(get("while-down.wav").state, RecordState::Analysed);
    let changed = get("kept.wav");
    assert_eq!(
        changed.flags,
        vec![callwarden::store::RecordFlag::ModifiedAfterIngest]
    );
    assert_ne!(
        changed.sha256,
        callwarden::pipeline::sha256_file(&kept).unwrap(),
        "the original hash stays"
    );
    assert_eq!(store.all().count(), 3);
}

/// Stops the child with SIGKILL, as a crash would.
pub(crate) fn kill9(d: &mut Daemon) {
    let mut child = d.child.take().unwrap();
    Command::new("kill")
        .arg("-KILL")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let _ = child.wait();
}

#[test]
fn kill_9_during_a_500_file_ingest_loses_and_doubles_nothing() {
    let s = setup();
    // 500 short distinct recordings (3 s each), already in place.
    let base = pcm("asterisk-queue-youarenext");
    for i in 0..500 {
        let samples: Vec<i16> = base[..24_000]
            .iter()
            .map(|&v| v.wrapping_add(i as i16))
            .collect();
        let path = s.root.join(format!("call-{i:03}.wav"));
        write_pcm(&path, &samples);
        age(&path, 60);
    }
    // Twenty crashes at varied moments (deterministic: 50 ms steps).
    for round in 0..20u64 {
        let mut d = Daemon::start(&s.config);
        std::thread::sleep(Duration::from_millis(20 + (round * 37) % 250));
        kill9(&mut d);
    }
    // Then a clean run through what the crashes left.
    let d = Daemon::start(&s.config);
    d.wait_idle();
    assert_eq!(d.stop(), Some(0));
    let store = Store::open(&s.store).expect("the store opens cleanly after 20 crashes");
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    let mut paths: Vec<_> = records.iter().map(|r| &r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), records.len(), "a file stored twice");
    assert_eq!(records.len(), 500, "every file stored");
    assert!(records.iter().all(|r| r.state == RecordState::Analysed));
}

#[test]
fn sigterm_with_work_in_flight_exits_0_and_loses_nothing() {
    let s = setup();
    for i in 0..40 {
        let path = s.root.join(format!("c{i}.wav"));
        write_wav(&path, &standard_call().samples, 1);
        age(&path, 60);
    }
    // Stopped right after start, with the backlog in flight.
    let d = Daemon::start(&s.config);
    assert!(d.queued() > 0);
    assert_eq!(d.stop(), Some(0));
    // What the first run did not finish, the next one does.
    let d = Daemon::start(&s.config);
    d.wait_idle();
    assert_eq!(d.stop(), Some(0));
    let store = Store::open(&s.store).unwrap();
    assert_eq!(store.all().count(), 40);
}

#[test]
fn sighup_reloads_the_config_and_keeps_the_old_one_when_invalid() {
    let s = setup();
    let d = Daemon::start(&s.config);
    let pid = d.child.as_ref().unwrap().id().to_string();
    let original = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        format!("{original}\n[analysis]\nbogus_key = 1\n"),
    )
    .unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    d.wait_for(
        |l| l.iter().any(|x| x.contains("reload failed")),
        "the rejected reload",
    );
    std::fs::write(
        &s.config,
        format!("{original}\n[analysis]\ndead_air_s = 4.0\n"),
    )
    .unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    d.wait_for(
        |l| l.iter().any(|x| x.contains("configuration reloaded")),
        "the reload",
    );
    assert!(d
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("bogus_key")));
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn two_hundred_recordings_arriving_every_way() {
    let s = setup();
    let d = Daemon::start(&s.config);
    let root = s.root.clone();
    let base = pcm("asterisk-queue-youarenext");
    let distinct = |i: usize| -> Vec<i16> {
        base.iter()
            .map(|&v| v.wrapping_add((i % 50) as i16 - 25))
            .collect()
    };
    let write = write_pcm;
    // 30 Asterisk-style slow writers at once, each over about 3 s.
    let slow: Vec<_> = (0..30)
        .map(|i| {
            let (root, samples) = (root.clone(), distinct(i));
            std::thread::spawn(move || {
                write_like_asterisk(
                    &root.join(format!("slow-{i}.wav")),
                    &samples,
                    8,
                    Duration::from_millis(400),
                )
            })
        })
        .collect();
    let mut expected_meta = Vec::new();
    for i in 30..200 {
        let samples = distinct(i);
        match i % 5 {
            // Written in one go.
            0 => write(&root.join(format!("plain-{i}.wav")), &samples),
            // Written to a temporary name and renamed in.
            1 => {
                let tmp = root.join(format!(".tmp-{i}"));
                write(&tmp, &samples);
                std::fs::rename(&tmp, root.join(format!("renamed-{i}.WAV"))).unwrap();
            }
            // Copied into a new per-day folder, sidecar first.
            2 => {
                let day = root.join(format!("day-{}", i / 50));
                std::fs::create_dir_all(&day).unwrap();
                std::fs::write(
                    day.join(format!("day-{i}.json")),
                    format!(r#"{{"agent": "a{i}"}}"#),
                )
                .unwrap();
                write(&day.join(format!("day-{i}.wav")), &samples);
                expected_meta.push((day.join(format!("day-{i}.wav")), format!("a{i}")));
            }
            // Sidecar after the audio.
            3 => {
                let p = root.join(format!("late-{i}.wav"));
                write(&p, &samples);
                std::fs::write(
                    root.join(format!("late-{i}.json")),
                    format!(r#"{{"agent": "b{i}"}}"#),
                )
                .unwrap();
                expected_meta.push((p, format!("b{i}")));
            }
            // Corrupt (ten of them) or plain.
            _ if i < 80 => std::fs::write(
                root.join(format!("corrupt-{i}.wav")),
                b"RIFF\x04\x00\x00\x00WAVE",
            )
            .unwrap(),
            _ => write(&root.join(format!("plain-{i}.wav")), &samples),
        }
    }
    slow.into_iter().for_each(|t| t.join().unwrap());
    d.wait_for(
        |l| {
            l.iter()
                .filter(|x| x.contains("stored file=") || x.contains("stored as failed"))
                .count()
                >= 200
        },
        "200 recordings",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.stop(), Some(0));

    let store = Store::open(&s.store).unwrap();
    let records: Vec<_> = store.all().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 200);
    let failed = records
        .iter()
        .filter(|r| r.state == RecordState::Failed)
        .count();
    assert_eq!(failed, 10);
    for r in records.iter().filter(|r| r.state != RecordState::Failed) {
        assert_eq!(r.state, RecordState::Analysed, "{}", r.path);
        let report = r.report.as_ref().unwrap();
        // Never analysed before it was finished: the whole utterance, and no flags of a cut file.
        assert!(
            (report.format.duration_s - base.len() as f64 / 8000.0).abs() < 0.01,
            "{}",
            r.path
        );
        assert!(r.flags.is_empty(), "{}: {:?}", r.path, r.flags);
    }
    for (path, agent) in expected_meta {
        let r = store.by_path(&rp(&path)).unwrap().unwrap();
        assert_eq!(
            r.metadata.unwrap().agent.as_deref(),
            Some(agent.as_str()),
            "{}",
            path.display()
        );
    }
}

#[test]
fn systemd_hears_ready_status_and_stopping() {
    let s = setup();
    let socket_path = s.root.parent().unwrap().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let d = Daemon::start_with(&s.config, &[("NOTIFY_SOCKET", &socket_path)]);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !(seen.contains("READY=1") && seen.contains("STATUS=")) {
        let n = socket.recv(&mut buf).expect("a notification");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("STATUS=stored 0"), "{seen}");
    assert_eq!(d.stop(), Some(0));
    while !seen.contains("STOPPING=1") {
        let n = socket.recv(&mut buf).expect("the stop notification");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// The daemon purges on its schedule: expired recordings go (with tombstones and audit entries
/// by `daemon`), held ones stay; its start, reload and stop are audited.
#[test]
fn purges_on_schedule_and_audits_its_life() {
    let s = setup();
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config += "[retention]\npurge_interval_s = 1.0\n\
               [[retention.rule]]\nname = \"default\"\nkeep = \"1d\"\n";
    std::fs::write(&s.config, &config).unwrap();
    let call: Vec<i16> = (0..24_000)
        .map(|i| ((i * 37) % 2000) as i16 - 1000)
        .collect();
    let paths: Vec<PathBuf> = (0..6)
        .map(|i| {
            let p = s.root.join(format!("old-{i}.wav"));
            let mut samples = call.clone();
            samples[0] = i;
            write_pcm(&p, &samples);
            age(&p, 3 * 24 * 3600);
            p
        })
        .collect();
    std::fs::write(paths[0].with_extension("json"), r#"{"agent": "held"}"#).unwrap();
    // Ingested and put on hold before the daemon starts (the CLI needs the store to itself).
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .args(args)
            .arg("--config")
            .arg(&s.config)
            .output()
            .unwrap()
    };
    assert!(cli(&["ingest", s.root.to_str().unwrap()]).status.success());
    let o = cli(&[
        "hold", "add", "--agent", "held", "--case", "D-1", "--reason", "test",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let d = Daemon::start(&s.config);
    d.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("purge run done") && x.contains("purged=5"))
        },
        "the scheduled purge",
    );
    assert!(d.count("audit chain head") >= 1);
    assert!(paths[0].exists(), "a held recording was purged");
    assert!(paths[1..].iter().all(|p| !p.exists()));
    // The deletions are not mistaken for vanished recordings.
    assert_eq!(d.count("marked missing"), 0);
    Command::new("kill")
        .arg("-HUP")
        .arg(d.child.as_ref().unwrap().id().to_string())
        .status()
        .unwrap();
    d.wait_for(
        |l| l.iter().any(|x| x.contains("configuration reloaded")),
        "the reload",
    );
    assert_eq!(d.stop(), Some(0));

    let store = Store::open(&s.store).unwrap();
    assert_eq!(store.count_by_state(RecordState::Purged), 5);
    assert_eq!(store.count_by_state(RecordState::Missing), 0);
    let entries: Vec<callwarden::audit::Entry> = store
        .audit_entries()
        .map(|e| e.unwrap().1.unwrap())
        .collect();
    let actions = |action: &str| {
        entries
            .iter()
            .filter(|e| e.action == action)
            .collect::<Vec<_>>()
    };
    assert_eq!(actions("purge").len(), 5);
    assert!(actions("purge").iter().all(|e| e.actor == "daemon"));
    for life in ["daemon_start", "config_reload", "daemon_stop"] {
        assert_eq!(actions(life).len(), 1, "{life}");
    }
    let head = store.audit_head().unwrap();
    assert_eq!(head.seq, entries.len() as u64);
}
