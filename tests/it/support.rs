//! Test calls built from real speech: utterances with pauses, noise at a known SNR, stereo
//! conversations, with their ground truth. Everything is deterministic (fixed seeds).
//!
//! The random source is a hand-written SplitMix64: ten lines, stable forever, where a crate's
//! generator may change its stream between versions and silently move every fixture.

use std::path::{Path, PathBuf};

use callwarden::analysis::{model::DecodeReport, Analysis, Analyzer};
use callwarden::config::Config;

pub const RATE: u32 = 8000;

/// A test file's path as the store keeps it (absolute and normalised).
pub fn rp(path: impl AsRef<Path>) -> callwarden::recording_path::RecordingPath {
    callwarden::recording_path::RecordingPath::absolute(path.as_ref()).unwrap()
}

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// A clean speech recording from `assets/speech` (8 kHz mono).
pub fn speech(name: &str) -> Vec<f32> {
    let path = assets().join("speech").join(format!("{name}.wav"));
    read_speech(&path).unwrap_or_else(|| panic!("{path:?}: not 8 kHz mono 16-bit PCM"))
}

/// Every sample of a file, decoded by callwarden's own decoder (interleaved).
pub fn decode_all(path: &Path) -> Vec<f32> {
    let mut d = callwarden::audio::Decoder::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let (mut all, mut block) = (Vec::new(), Vec::new());
    while d.read(&mut block, 4096).unwrap() > 0 {
        all.extend_from_slice(&block);
    }
    all
}

/// An 8 kHz mono 16-bit PCM WAV's samples, or None for any other file.
pub fn read_speech(path: &Path) -> Option<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).ok()?;
    let spec = reader.spec();
    if spec.sample_rate != RATE || spec.channels != 1 || spec.bits_per_sample != 16 {
        return None;
    }
    reader
        .samples::<i16>()
        .map(|s| s.ok().map(|v| v as f32 / 32768.0))
        .collect()
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

pub fn white(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// Pink (1/f) noise: white noise through Paul Kellett's refined pinking filter.
/// Brown (1/f²) noise, the rumble of a car or a fan: white noise through a leaky integrator
/// (corner near 16 Hz at 8 kHz).
pub fn brown(n: usize, seed: u64) -> Vec<f32> {
    let mut y = 0.0f64;
    white(n, seed)
        .into_iter()
        .map(|w| {
            y = 0.9875 * y + w as f64;
            y as f32
        })
        .collect()
}

pub fn pink(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut b = [0.0f64; 7];
    (0..n)
        .map(|_| {
            let w = rng.normal();
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let out = b.iter().sum::<f64>() + w * 0.5362;
            b[6] = w * 0.115926;
            out as f32
        })
        .collect()
}

/// Noise whose level drifts by up to ±3 dB over a few seconds, as an office's or a street's does.
pub fn swell(x: &[f32], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let (a, b) = (
        rng.uniform() * std::f64::consts::TAU,
        rng.uniform() * std::f64::consts::TAU,
    );
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let t = i as f64 / 8000.0;
            let db = 2.0 * (a + t * std::f64::consts::TAU / 3.7).sin()
                + 1.0 * (b + t * std::f64::consts::TAU / 1.3).sin();
            v * 10f64.powf(db / 20.0) as f32
        })
        .collect()
}

/// Babble: several voices talking at once, each a loop of other prompts from its own offset.
pub fn babble(n: usize, seed: u64) -> Vec<f32> {
    let sources = [
        "asterisk-conf-adminmenu-162",
        "asterisk-screen-callee-options",
        "asterisk-vm-review",
        "asterisk-unidentified-no-callback",
        "asterisk-privacy-prompt",
        "asterisk-vm-mailboxfull",
    ];
    let voices: Vec<Vec<f32>> = sources.iter().map(|name| trim(&speech(name))).collect();
    babble_of(&voices, n, seed)
}

/// Babble from the given voices, each looped from its own offset at unit power.
pub fn babble_of(voices: &[Vec<f32>], n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut out = vec![0.0f32; n];
    for voice in voices {
        let offset = (rng.uniform() * voice.len() as f64) as usize;
        let norm = power(voice).sqrt() as f32;
        for (i, o) in out.iter_mut().enumerate() {
            *o += voice[(offset + i) % voice.len()] / norm;
        }
    }
    out
}

pub fn power(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len().max(1) as f64
}

fn frame_powers(x: &[f32]) -> Vec<f64> {
    x.chunks(80).map(power).collect()
}

/// The utterance from its first to its last 10 ms that is active in P.56's sense: within
/// 15.9 dB of the utterance's active speech level.
pub fn trim(x: &[f32]) -> Vec<f32> {
    let p = frame_powers(x);
    let threshold = active_power(x, RATE) * 10f64.powf(-15.9 / 10.0);
    let first = p.iter().position(|&v| v >= threshold).unwrap_or(0);
    let last = p
        .iter()
        .rposition(|&v| v >= threshold)
        .unwrap_or(p.len() - 1);
    x[first * 80..((last + 1) * 80).min(x.len())].to_vec()
}

/// The active speech power of clean speech, ITU-T P.56 method B: the envelope (30 ms time
/// constants, 200 ms hangover) decides activity at the threshold that lies 15.9 dB below the
/// level it yields.
pub fn active_power(x: &[f32], rate: u32) -> f64 {
    let g = (-1.0 / (rate as f64 * 0.03)).exp();
    let hang = (0.2 * rate as f64) as usize;
    let (mut q, mut p) = (0.0f64, 0.0f64);
    // Envelope, then its running maximum over the hangover.
    let env: Vec<f64> = x
        .iter()
        .map(|&v| {
            q = g * q + (1.0 - g) * (v as f64).abs();
            p = g * p + (1.0 - g) * q;
            p
        })
        .collect();
    let mut held = vec![0.0f64; env.len()];
    let mut deque: std::collections::VecDeque<usize> = Default::default();
    for i in 0..env.len() {
        while deque.back().is_some_and(|&j| env[j] <= env[i]) {
            deque.pop_back();
        }
        deque.push_back(i);
        if deque[0] + hang < i {
            deque.pop_front();
        }
        held[i] = env[deque[0]];
    }
    // Activity per threshold, in 0.25 dB steps of the held envelope: a sample is active at
    // threshold c while the envelope reached c within the hangover.
    let bins = 480;
    let mut count = vec![0u64; bins];
    for h in &held {
        let db = 20.0 * h.max(1e-12).log10();
        let b = (((db + 120.0) / 0.25).max(0.0) as usize).min(bins - 1);
        count[b] += 1;
    }
    // P.56 (and G.191's sv56): the level at threshold c is all the energy over the time active
    // at c; the active level is the one at the lowest threshold where it stands no more than
    // the margin above the threshold, scanning up from the bottom.
    let energy: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mut active = count.iter().sum::<u64>();
    for (b, &c) in count.iter().enumerate() {
        if active == 0 {
            break;
        }
        let threshold_db = -120.0 + b as f64 * 0.25;
        let level = energy / active as f64;
        if 10.0 * level.max(1e-20).log10() - threshold_db <= 15.9 {
            return level;
        }
        active -= c;
    }
    power(x)
}

/// A call built from utterances with the pauses before each; the truth is where each
/// utterance's speech lies.
pub struct Call {
    pub samples: Vec<f32>,
    pub spans: Vec<(usize, usize)>,
}

impl Call {
    pub fn new(parts: &[(&str, f64)], tail_s: f64, gain: f32) -> Call {
        let utterances: Vec<(Vec<f32>, f64)> = parts
            .iter()
            .map(|&(name, pause)| (trim(&speech(name)), pause))
            .collect();
        Call::of(&utterances, tail_s, gain)
    }

    /// A call of trimmed utterances, each after its pause.
    pub fn of(parts: &[(Vec<f32>, f64)], tail_s: f64, gain: f32) -> Call {
        let mut samples = Vec::new();
        let mut spans = Vec::new();
        for (u, pause) in parts {
            samples.extend(std::iter::repeat_n(0.0, (pause * RATE as f64) as usize));
            spans.push((samples.len(), samples.len() + u.len()));
            samples.extend(u.iter().map(|v| v * gain));
        }
        samples.extend(std::iter::repeat_n(0.0, (tail_s * RATE as f64) as usize));
        Call { samples, spans }
    }

    pub fn start_s(&self) -> f64 {
        self.spans[0].0 as f64 / RATE as f64
    }

    pub fn end_s(&self) -> f64 {
        self.spans.last().unwrap().1 as f64 / RATE as f64
    }

    /// The call with `noise` (scaled) added so that active speech power over noise power is
    /// `snr_db`.
    pub fn with_noise(&self, noise: &[f32], snr_db: f64) -> Vec<f32> {
        let target = active_power(&self.samples, RATE) / 10f64.powf(snr_db / 10.0);
        let scale = (target / power(&noise[..self.samples.len()])).sqrt() as f32;
        self.samples
            .iter()
            .zip(noise)
            .map(|(s, n)| s + n * scale)
            .collect()
    }
}

/// The standard test call: six prompts with pauses, about 40 s.
pub fn standard_call() -> Call {
    Call::new(
        &[
            ("asterisk-demo-echotest", 1.2),
            ("asterisk-queue-youarenext", 1.5),
            ("asterisk-vm-mailboxfull", 2.0),
            ("fsdd-3_jackson_12", 1.0),
            ("asterisk-unidentified-no-callback", 1.7),
            ("asterisk-privacy-prompt", 1.3),
        ],
        1.5,
        1.0,
    )
}

pub fn analyze_with(samples: &[f32], channels: u16, config: &Config) -> Analysis {
    analyze_at(samples, RATE, channels, config)
}

/// `analyze_with` at another sample rate.
pub fn analyze_at(samples: &[f32], rate: u32, channels: u16, config: &Config) -> Analysis {
    let mut a = Analyzer::new(rate, channels, 1.0, config).expect("analyzer");
    for block in samples.chunks(4096 * channels as usize) {
        a.push(block);
    }
    a.finish(config, &DecodeReport::default(), true)
}

pub fn analyze(samples: &[f32], channels: u16) -> Analysis {
    analyze_with(samples, channels, &Config::default())
}

/// Interleaves channels of equal length.
pub fn interleave(channels: &[&[f32]]) -> Vec<f32> {
    let n = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    (0..n)
        .flat_map(|i| channels.iter().map(move |c| c[i]))
        .collect()
}

pub fn write_wav(path: &Path, samples: &[f32], channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Writes 16-bit samples as an 8 kHz mono WAV.
pub fn write_pcm(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    samples.iter().for_each(|&v| w.write_sample(v).unwrap());
    w.finalize().unwrap();
}

/// Sets a file's mtime `seconds` back, so a scan counts it as finished.
pub fn age(path: &Path, seconds: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(seconds))
        .unwrap();
}

/// A command's exit status and both outputs, for a failed assertion's message.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command's standard output, once it exited 0.
pub fn ok(o: std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// A certificate authority of the test's own and a server certificate for 127.0.0.1 it
/// signed, as PEM: what a TLS test's server holds and its client trusts.
pub struct TestCertificates {
    pub authority: String,
    pub certificate: String,
    pub key: String,
}

pub fn test_certificates() -> TestCertificates {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "callwarden test authority");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    TestCertificates {
        authority: ca_cert.pem(),
        certificate: cert.pem(),
        key: key.serialize_pem(),
    }
}
