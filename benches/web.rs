//! The web console under load (issue 25's targets), on the benchmarks' 1,000,000-recording store.
//!
//! `cargo bench --bench web [-- --records N --store DIR --users 50 --pages 40]` builds (or
//! reuses) the store the queries benchmark uses, adds a console account, serves the console
//! exactly as the daemon does (`web::bind` + `web::serve`) and then:
//! - 50 users at once, each logged in, browse: the newest calls, the next page, an agent's
//!   calls, a score band, one call's page (40 pages each); the p50, p95 and p99 page times
//!   (target: p99 <= 200 ms);
//! - ingest's work (analysing and committing the demo call, one after another) alone, then
//!   while 20 users play a one-hour recording through the console at once (Range requests of
//!   256 KiB, as a player reads ahead); the two ingest rates (target: no slower).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callwarden::accounts::{AccountChange, PasswordHash};
use callwarden::config::Config;
use callwarden::control::Shared;
use callwarden::query::Role;
use callwarden::store::{Record, RecordState, RecordingId, Store};

#[path = "common/big_store.rs"]
mod big_store;

#[path = "common/args.rs"]
mod args;

use args::arg;

const PASSWORD: &str = "bench-passw0rd";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn login(base: &str, user: &str) -> String {
    let r = agent()
        .post(format!("{base}/login"))
        .send_form([("user", user), ("password", PASSWORD)])
        .expect("login");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    cookie.split(';').next().unwrap().to_string()
}

fn fetch(base: &str, cookie: &str, path: &str, range: Option<&str>) -> (u16, usize) {
    let mut req = agent()
        .get(format!("{base}{path}"))
        .header("Cookie", cookie);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let mut r = req.call().expect("a page");
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, body.len())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A one-hour 8 kHz mono WAV of the demo call's speech, looped (57.6 MB).
fn hour_wav(path: &Path) {
    let demo =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/speech/asterisk-demo-echotest.wav");
    let mut reader = hound::WavReader::open(demo).unwrap();
    let clip: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..8000 * 3600 {
        w.write_sample(clip[i % clip.len()]).unwrap();
    }
    w.finalize().unwrap();
}

/// Ingest's work for `n` calls: analyse the demo call and commit its record.
fn ingest(store: &Store, n: u64, first_id: u64) -> f64 {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/call-stereo.wav");
    let config = Config::default();
    let t = Instant::now();
    for k in 0..n {
        let report = callwarden::pipeline::analyze_file(
            &demo,
            "demo",
            &config,
            callwarden::pipeline::Options::default(),
        )
        .unwrap();
        let id = first_id + k;
        let path = format!("/bench/ingest/{id}.wav");
        let record = Record {
            id: RecordingId(id),
            path: callwarden::recording_path::RecordingPath::from_bytes(path.as_bytes()).unwrap(),
            size: 1,
            sha256: format!("{id:064x}"),
            state: RecordState::Analysed,
            started_ms: callwarden::clock::now_ms(),
            ingested_ms: callwarden::clock::now_ms(),
            report: Some(report),
            ..Record::blank()
        };
        store
            .commit(
                &record,
                None,
                callwarden::audit::Draft::new(
                    "ingest",
                    callwarden::audit::AuditAction::Ingest,
                    serde_json::Value::Null,
                )
                .about(id),
                callwarden::clock::now_ms(),
            )
            .unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: u64 = arg("--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let users: usize = arg("--users").and_then(|v| v.parse().ok()).unwrap_or(50);
    let pages: usize = arg("--pages").and_then(|v| v.parse().ok()).unwrap_or(40);
    let (dir, now) = big_store::open_or_build(n, arg("--store"));
    let store = Arc::new(Store::open(&dir).unwrap());
    let name = "bench".parse().unwrap();
    if store.account(&name).unwrap().is_none() {
        store
            .change_account(
                &name,
                &AccountChange::Add {
                    role: Role::Auditor,
                    hash: PasswordHash::of(PASSWORD).unwrap(),
                },
                "bench",
                now,
            )
            .unwrap();
    }
    // A real recording to play: one hour, inside a root, its record with the file's size.
    let root = PathBuf::from(format!("{}-audio", dir.display()));
    std::fs::create_dir_all(&root).unwrap();
    let hour = root.join("hour.wav");
    if !hour.exists() {
        hour_wav(&hour);
    }
    let size = std::fs::metadata(&hour).unwrap().len();
    let audio_id = n + 1_000_000;
    let hour_record = Record {
        id: RecordingId(audio_id),
        path: callwarden::recording_path::RecordingPath::from_bytes(
            hour.as_os_str().as_encoded_bytes(),
        )
        .unwrap(),
        size,
        sha256: format!("{audio_id:064x}"),
        state: RecordState::Analysed,
        started_ms: now - 1000,
        ingested_ms: now,
        ..Record::blank()
    };
    if store.get(RecordingId(audio_id)).unwrap().is_none() {
        store
            .commit(
                &hour_record,
                None,
                callwarden::audit::Draft::new(
                    "ingest",
                    callwarden::audit::AuditAction::Ingest,
                    serde_json::Value::Null,
                )
                .about(audio_id),
                now,
            )
            .unwrap();
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::default();
    config.store.path = dir.clone();
    config.ingest.roots = vec![callwarden::recording_path::RecordingPath::absolute(&root).unwrap()];
    config.web.listen = format!("127.0.0.1:{port}");
    config.web.secure_cookies = false;
    let shared = Arc::new(Mutex::new(Shared::new(
        Arc::new(config.clone()),
        Default::default(),
    )));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let served = store.clone();
    std::thread::spawn(move || {
        // As the daemon runs it: one thread for the runtime, queries on blocking threads.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = callwarden::web::bind(&config.web).await.unwrap().unwrap();
            ready_tx.send(()).unwrap();
            callwarden::web::serve(listener, served, shared, std::future::pending()).await;
        })
    });
    ready_rx.recv().unwrap();
    let base = format!("http://127.0.0.1:{port}");

    // 50 users browsing at once.
    let cookies: Vec<String> = (0..users).map(|_| login(&base, "bench")).collect();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    let threads: Vec<_> = cookies
        .into_iter()
        .enumerate()
        .map(|(u, cookie)| {
            let (base, times) = (base.clone(), times.clone());
            std::thread::spawn(move || {
                let grades = ["good", "fair", "poor", "bad"];
                for p in 0..pages {
                    let path = match p % 5 {
                        0 => "/calls".to_string(),
                        1 => "/calls?page=2".to_string(),
                        2 => format!("/calls?agent=agent-{}", (u + p) % 40),
                        3 => format!("/calls?grade={}", grades[(u + p) % 4]),
                        _ => format!("/calls/{}", 1 + (u as u64 * 7919 + p as u64 * 104_729) % n),
                    };
                    let start = Instant::now();
                    let (status, _) = fetch(&base, &cookie, &path, None);
                    let ms = start.elapsed().as_secs_f64() * 1000.0;
                    assert_eq!(status, 200, "{path}");
                    times.lock().unwrap().push(ms);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let mut all = times.lock().unwrap().clone();
    all.sort_by(f64::total_cmp);
    println!(
        "{users} users browsing, {} pages in {wall:.1} s ({:.0} pages/s): p50 {:.1} ms, \
         p95 {:.1} ms, p99 {:.1} ms (target p99 <= 200 ms)",
        all.len(),
        all.len() as f64 / wall,
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99)
    );

    // Ingest alone, then with 20 streams playing the hour: as players do (reading ahead at
    // eight times real time: 256 KiB, 16 s of audio, every 2 s), then flat out.
    // Each rate is the best of three runs of 200 calls (the store's background flushes make
    // one run alone noisy).
    let calls = 200;
    let mut next_id = n + 2_000_000;
    let mut best_of_3 = |store: &Store| {
        (0..3)
            .map(|_| {
                next_id += calls;
                ingest(store, calls, next_id)
            })
            .fold(0.0, f64::max)
    };
    let alone = best_of_3(&store);
    for (what, pause) in [
        (
            "as players read (8x real time)",
            Duration::from_millis(2048),
        ),
        ("flat out", Duration::ZERO),
    ] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streamed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let streams: Vec<_> = (0..20u64)
            .map(|k| {
                let (base, stop, streamed) = (base.clone(), stop.clone(), streamed.clone());
                let cookie = login(&base, "bench");
                std::thread::spawn(move || {
                    let chunk = 256 * 1024u64;
                    let mut at = (k * 7919 * chunk) % size;
                    // Players start at different moments.
                    std::thread::sleep(pause.mul_f64(k as f64 / 20.0));
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let range = format!("bytes={at}-{}", (at + chunk - 1).min(size - 1));
                        let (status, got) = fetch(
                            &base,
                            &cookie,
                            &format!("/calls/{audio_id}/audio"),
                            Some(&range),
                        );
                        assert_eq!(status, 206);
                        streamed.fetch_add(got as u64, std::sync::atomic::Ordering::Relaxed);
                        at = (at + chunk) % size;
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        std::thread::sleep(pause.max(Duration::from_millis(200)));
        let t = Instant::now();
        let before = streamed.load(std::sync::atomic::Ordering::Relaxed);
        let with = best_of_3(&store);
        let served = streamed.load(std::sync::atomic::Ordering::Relaxed) - before;
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in streams {
            s.join().unwrap();
        }
        println!(
            "ingest: {alone:.1} calls/s alone, {with:.1} calls/s with 20 streams {what} \
             ({:.1} MB/s served): {:+.1} %",
            served as f64 / 1e6 / secs.max(1e-9),
            (with / alone - 1.0) * 100.0
        );
    }
}
