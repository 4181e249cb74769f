//! Throughput and memory benchmark for `callwarden analyze` (issue 2's speed targets).
//!
//! `cargo bench --bench throughput` generates test calls from the speech in `assets/speech`
//! (deterministic: looped prompts with pauses and a -50 dBFS noise floor) in a temporary
//! directory and reports, single-threaded:
//! - decode + analysis of a 1-hour 8 kHz mono PCM WAV (target: >= 10,000x real time),
//!   and the same with the SHA-256 the CLI also computes, and with the compliance evidence on
//!   (an announcement and the recorder's beep looked for; DTMF always is);
//! - 1-hour stereo 8 kHz, and mono 16 kHz and 48 kHz figures;
//! - if `ffmpeg` is on the PATH, `ffmpeg -threads 1 -af silencedetect,astats -f null -` on the
//!   same 8 kHz file, and the ratio.
//!
//! `cargo bench --bench throughput -- stereo` runs only the cases whose name holds a given
//! word (`mono`, `stereo`, `16 kHz`...), for a profiler.
//!
//! Memory: `cargo bench --bench throughput -- --write-4h PATH` writes a 4-hour 8 kHz stereo
//! WAV to PATH; measure the analyser on it with
//! `/usr/bin/time -v target/release/callwarden analyze PATH` ("Maximum resident set size").

use std::path::{Path, PathBuf};
use std::time::Instant;

use callwarden::config::Config;
use callwarden::pipeline::{self, Options};

const SOURCES: [&str; 6] = [
    "asterisk-demo-echotest",
    "asterisk-queue-youarenext",
    "asterisk-vm-mailboxfull",
    "asterisk-unidentified-no-callback",
    "asterisk-privacy-prompt",
    "asterisk-screen-callee-options",
];

fn speech(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/speech")
        .join(format!("{name}.wav"));
    hound::WavReader::open(path)
        .expect("speech asset")
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// One channel's worth of a call at 8 kHz: prompts with pauses, looped, from `offset`.
struct Talker {
    clips: Vec<Vec<i16>>,
    clip: usize,
    pos: usize,
    pause: usize,
    seed: u64,
}

impl Talker {
    fn new(offset: usize) -> Talker {
        Talker {
            clips: SOURCES.iter().map(|s| speech(s)).collect(),
            clip: offset % SOURCES.len(),
            pos: 0,
            pause: 8000 * (offset % 3),
            seed: 0x2545_F491_4F6C_DD1D ^ offset as u64,
        }
    }

    fn next(&mut self) -> i16 {
        // xorshift noise at about -50 dBFS under everything
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let noise = ((self.seed >> 53) as i32 - 1024) / 10;
        if self.pause > 0 {
            self.pause -= 1;
            return noise as i16;
        }
        let clip = &self.clips[self.clip];
        let v = clip[self.pos] as i32 + noise;
        self.pos += 1;
        if self.pos == clip.len() {
            self.pos = 0;
            self.clip = (self.clip + 1) % self.clips.len();
            self.pause = 8000 + (self.seed % 16000) as usize;
        }
        v.clamp(-32768, 32767) as i16
    }
}

fn write_call(path: &Path, seconds: u64, rate: u32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let mut talkers: Vec<Talker> = (0..channels as usize).map(|c| Talker::new(c * 2)).collect();
    let up = (rate / 8000).max(1);
    let mut last = vec![0i16; channels as usize];
    for _ in 0..seconds * 8000 {
        for (c, t) in talkers.iter_mut().enumerate() {
            last[c] = t.next();
        }
        // Higher rates: hold each 8 kHz sample (enough for a throughput figure).
        for _ in 0..up {
            for &v in &last {
                w.write_sample(v).expect("write");
            }
        }
    }
    w.finalize().expect("finalize");
    // On disk before the timing starts: write-back while the analyser runs would be timed too.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .expect("sync");
}

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn analyse_only(path: &Path, config: &Config) {
    // Decode and analyse, as the pipeline does, without the hash (the announcements are
    // fingerprinted once per process, as the pipeline's cache does).
    let mut decoder = callwarden::audio::Decoder::open(path).expect("open");
    let info = decoder.info().clone();
    let mut analyzer = callwarden::analysis::Analyzer::new(
        info.sample_rate,
        info.channels,
        info.full_scale,
        config,
    )
    .expect("analyzer")
    .with_prompts(pipeline::prompts(config).expect("announcements"));
    let mut block = Vec::new();
    while decoder.read(&mut block, 8192).expect("read") > 0 {
        analyzer.push(&block);
    }
    let report = analyzer.finish(config, &Default::default(), false);
    std::hint::black_box(report);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-4h") {
        let path = PathBuf::from(args.get(i + 1).expect("--write-4h PATH"));
        write_call(&path, 4 * 3600, 8000, 2);
        println!("wrote {}", path.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::default();
    let hour = 3600.0;
    let cases: [(&str, u32, u16); 4] = [
        ("1 h 8 kHz mono", 8000, 1),
        ("1 h 8 kHz stereo", 8000, 2),
        ("1 h 16 kHz mono", 16000, 1),
        ("1 h 48 kHz mono", 48000, 1),
    ];
    // `cargo bench --bench throughput -- stereo` runs only the cases whose name holds the
    // word (for a profiler); cargo's own `--bench` flag is not a filter.
    let only: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with("--")).collect();
    println!("callwarden analyze throughput (single thread, best of 3)");
    let mut mono8k = None;
    for (name, rate, channels) in cases {
        if !only.is_empty() && !only.iter().any(|w| name.contains(w.as_str())) {
            continue;
        }
        let path = dir.path().join(format!("call-{rate}-{channels}.wav"));
        write_call(&path, 3600, rate, channels);
        let secs = best_of(3, || analyse_only(&path, &config));
        println!(
            "  {name:<18} decode+analyse {:>7.1} ms  {:>8.0}x real time",
            secs * 1000.0,
            hour / secs
        );
        if rate == 8000 && channels == 1 {
            let with_hash = best_of(3, || {
                let r = pipeline::analyze_file(&path, "bench", &config, Options::default());
                std::hint::black_box(r.expect("analysed"));
            });
            println!(
                "  {:<18} + sha256          {:>7.1} ms  {:>8.0}x real time",
                "",
                with_hash * 1000.0,
                hour / with_hash
            );
            // The compliance evidence on: an announcement looked for at the start, the
            // recorder's beep throughout (DTMF is always looked for).
            let mut evidence = config.clone();
            evidence.consent.announcement = vec![callwarden::config::AnnouncementConfig {
                name: "notice".into(),
                file: Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("assets/announcement/conf-now-recording.wav"),
                within_s: 30.0,
            }];
            evidence.consent.beep = Some(callwarden::config::BeepConfig {
                frequency_hz: Some(1000.0),
                file: None,
                period_s: 15.0,
                tolerance_s: 1.0,
            });
            let on = best_of(3, || analyse_only(&path, &evidence));
            println!(
                "  {:<18} + evidence on     {:>7.1} ms  {:>8.0}x real time",
                "",
                on * 1000.0,
                hour / on
            );
            mono8k = Some((path, secs));
        }
    }
    let Some((path, ours)) = mono8k else { return };
    let ffmpeg = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output();
    if ffmpeg.map(|o| o.status.success()).unwrap_or(false) {
        let secs = best_of(3, || {
            let status = std::process::Command::new("ffmpeg")
                .args([
                    "-nostdin",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-threads",
                    "1",
                    "-i",
                ])
                .arg(&path)
                .args(["-af", "silencedetect,astats", "-f", "null", "-"])
                .status()
                .expect("ffmpeg");
            assert!(status.success());
        });
        println!(
            "  ffmpeg silencedetect,astats   {:>7.1} ms  {:>8.0}x real time; callwarden is {:.1}x faster",
            secs * 1000.0,
            hour / secs,
            secs / ours
        );
    } else {
        println!("  (ffmpeg not installed: no comparison)");
    }
}
