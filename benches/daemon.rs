//! Daemon benchmarks (issue 3's speed targets), run against the real binary.
//!
//! `cargo bench --bench daemon [-- --files N]`:
//! - backlog: N five-minute 8 kHz recordings (default 100; the figure is for 2,000) are
//!   in the root when the daemon starts; the time until all are stored is compared with
//!   `callwarden analyze --jobs <cores>` on the same files (target: >= 80% of its throughput);
//! - latency: with the daemon idle, from the close of a new five-minute recording to the
//!   daemon's "stored" line (the record is committed and flushed), 30 times (target: p99 <= 1 s).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callwarden");

fn speech() -> Vec<i16> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech");
    let mut all = Vec::new();
    for name in [
        "asterisk-demo-echotest",
        "asterisk-screen-callee-options",
        "asterisk-conf-adminmenu-162",
    ] {
        let mut r = hound::WavReader::open(dir.join(format!("{name}.wav"))).unwrap();
        all.extend(r.samples::<i16>().map(|s| s.unwrap()));
        all.extend(std::iter::repeat_n(0i16, 8000));
    }
    all
}

/// A five-minute call: the speech looped, offset by `seed` so every file differs.
fn write_call(path: &Path, speech: &[i16], seed: usize) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..300 * 8000 {
        let v = speech[(i + seed * 977) % speech.len()];
        w.write_sample(v.wrapping_add((i % 7) as i16 - 3)).unwrap();
    }
    w.finalize().unwrap();
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

fn start(config: &Path) -> Running {
    let mut child = Command::new(BIN)
        .args(["daemon", "--config"])
        .arg(config)
        .env("CALLWARDEN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    Running { child, lines: rx }
}

impl Running {
    fn next_matching(&self, needle: &str) -> (Instant, String) {
        loop {
            let (t, line) = self
                .lines
                .recv_timeout(Duration::from_secs(600))
                .expect("daemon output");
            if line.contains(needle) {
                return (t, line);
            }
        }
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, root: &Path) -> PathBuf {
    let path = dir.join("callwarden.toml");
    std::fs::write(
        &path,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 2.0\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n",
            dir.join("store"),
            dir.join("control.sock")
        ),
    )
    .unwrap();
    path
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files = args
        .iter()
        .position(|a| a == "--files")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100usize);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let speech = speech();

    // Backlog.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("monitor");
    std::fs::create_dir(&root).unwrap();
    let mut paths = Vec::new();
    for i in 0..files {
        let p = root.join(format!("call-{i:05}.wav"));
        write_call(&p, &speech, i);
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        paths.push(p);
    }
    let t = Instant::now();
    let status = Command::new(BIN)
        .args(["analyze", "--json", "--jobs", &cores.to_string()])
        .args(&paths)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let analyze_s = t.elapsed().as_secs_f64();
    let cfg = config(dir.path(), &root);
    let t = Instant::now();
    let d = start(&cfg);
    for _ in 0..files {
        d.next_matching("stored file=");
    }
    let daemon_s = t.elapsed().as_secs_f64();
    d.stop();
    let hours = files as f64 * 300.0 / 3600.0;
    println!("callwarden daemon benchmarks ({cores} cores)");
    println!(
        "  backlog of {files} x 5 min ({hours:.1} h): analyze --jobs {cores} {analyze_s:.2} s, daemon {daemon_s:.2} s \
         (start to last stored): {:.0}% of analyze's throughput",
        100.0 * analyze_s / daemon_s
    );

    // Latency.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("monitor");
    std::fs::create_dir(&root).unwrap();
    let cfg = config(dir.path(), &root);
    let d = start(&cfg);
    d.next_matching("watching");
    let template = dir.path().join("template.wav");
    write_call(&template, &speech, 0);
    let bytes = std::fs::read(&template).unwrap();
    let mut latencies = Vec::new();
    for i in 0..30 {
        let path = root.join(format!("live-{i}.wav"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&bytes[..bytes.len() - 2 * i]).unwrap();
        f.write_all(&[]).unwrap();
        drop(f); // CLOSE_WRITE
        let closed = Instant::now();
        let (at, _) = d.next_matching("stored file=");
        latencies.push(at.duration_since(closed).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    d.stop();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "  latency close -> stored, 30 x 5 min: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
}
