//! Compliance evidence in the audio (issue 23): DTMF digits keyed into a call (counted, timed,
//! never kept), the recorder's periodic beep.
//!
//! The detectors' constants come from ITU-T Q.23/Q.24 (frequencies, tolerances, twist,
//! durations) and from what a tone is, not from these fixtures; the calls around the digits use
//! the test half of the speech (`assets/speech-test`), which decided nothing.

use std::path::{Path, PathBuf};

use callwarden::audio::g711;
use callwarden::config::Config;
use callwarden::pipeline::{self, Options};

use crate::stability::{through, to_mulaw};
use crate::support::*;

const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// A keyed digit as the test placed it: when its tone sounded (seconds).
#[derive(Debug, Clone, Copy)]
struct Keyed {
    start_s: f64,
    end_s: f64,
}

/// A sine of `amp` (peak; `amp = 10^(dBFS/20)`) at `hz`, added into `out` from sample `at`.
fn add_tone(out: &mut [f32], at: usize, len: usize, hz: f64, amp: f64, phase: f64) {
    for i in 0..len {
        let t = i as f64 / RATE as f64;
        out[at + i] += (amp * (std::f64::consts::TAU * hz * t + phase).sin()) as f32;
    }
}

/// A call with one burst of `digits` DTMF digits between two stretches of speech, noise at
/// `snr_db` below the tones, through a µ-law round trip; with the digits' true spans.
fn burst_call(rng: &mut Rng, voices: &[Vec<f32>], digits: usize) -> (Vec<f32>, Vec<Keyed>, f64) {
    let before = &voices[(rng.uniform() * voices.len() as f64) as usize];
    let after = &voices[(rng.uniform() * voices.len() as f64) as usize];
    let lead = before.len() + (RATE as f64 * (0.3 + 0.7 * rng.uniform())) as usize;
    // Tones and gaps of 50-100 ms, as keyed by hand or sent by a phone.
    let mut plan = Vec::new();
    let mut at = lead;
    for _ in 0..digits {
        let tone = (RATE as f64 * (0.050 + 0.050 * rng.uniform())) as usize;
        let gap = (RATE as f64 * (0.050 + 0.050 * rng.uniform())) as usize;
        plan.push((at, tone));
        at += tone + gap;
    }
    let tail = (RATE as f64 * (0.3 + 0.7 * rng.uniform())) as usize;
    let total = at + tail + after.len();
    let mut x = vec![0.0f32; total];
    x[..before.len()].copy_from_slice(before);
    x[at + tail..].copy_from_slice(after);
    // -10 to -25 dBFS per tone, the two groups up to 3 dB apart (a line's tilt).
    let level_db = -10.0 - 15.0 * rng.uniform();
    let twist_db = 6.0 * rng.uniform() - 3.0;
    let (row_amp, col_amp) = (
        10f64.powf(level_db / 20.0),
        10f64.powf((level_db + twist_db) / 20.0),
    );
    let mut keyed = Vec::new();
    for &(start, len) in &plan {
        let digit = (rng.uniform() * 16.0) as usize;
        add_tone(
            &mut x,
            start,
            len,
            ROWS[digit / 4],
            row_amp,
            rng.uniform() * std::f64::consts::TAU,
        );
        add_tone(
            &mut x,
            start,
            len,
            COLS[digit % 4],
            col_amp,
            rng.uniform() * std::f64::consts::TAU,
        );
        keyed.push(Keyed {
            start_s: start as f64 / RATE as f64,
            end_s: (start + len) as f64 / RATE as f64,
        });
    }
    // Noise 10-20 dB below the tones' power, white or pink, over the whole call.
    let snr_db = 10.0 + 10.0 * rng.uniform();
    let tone_power = (row_amp * row_amp + col_amp * col_amp) / 2.0;
    let seed = rng.next_u64();
    let noise = if rng.uniform() < 0.5 {
        white(total, seed)
    } else {
        pink(total, seed)
    };
    let gain = (tone_power / 10f64.powf(snr_db / 10.0) / power(&noise)).sqrt() as f32;
    for (v, n) in x.iter_mut().zip(&noise) {
        *v += gain * n;
    }
    (through(&x, to_mulaw, g711::mulaw_to_i16), keyed, snr_db)
}

fn voices(dir: &str) -> Vec<Vec<f32>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(assets().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| trim(&read_speech(p).unwrap()))
        .collect()
}

#[test]
fn dtmf_bursts_are_counted_exactly_and_timed_within_20_ms() {
    let voices = voices("speech-test");
    let mut rng = Rng::new(23);
    let config = Config::default();
    let (mut bursts, mut exact, mut tones, mut timed) = (0, 0, 0, 0);
    let mut worst_ms: f64 = 0.0;
    let mut misses = Vec::new();
    for _ in 0..200 {
        let digits = 4 + (rng.uniform() * 13.0) as usize;
        let (x, keyed, snr_db) = burst_call(&mut rng, &voices, digits);
        let a = analyze_with(&x, 1, &config);
        let found: Vec<[f64; 2]> = a
            .evidence
            .dtmf
            .bursts
            .iter()
            .flat_map(|b| b.tones.iter().copied())
            .collect();
        bursts += 1;
        if found.len() == keyed.len() {
            exact += 1;
            for (f, k) in found.iter().zip(&keyed) {
                tones += 1;
                let err = (f[0] - k.start_s).abs().max((f[1] - k.end_s).abs()) * 1000.0;
                worst_ms = worst_ms.max(err);
                if err <= 20.0 {
                    timed += 1;
                }
            }
        } else {
            misses.push(format!(
                "{} keyed, {} found at {snr_db:.1} dB SNR",
                keyed.len(),
                found.len()
            ));
        }
    }
    let rate = exact as f64 / bursts as f64;
    eprintln!(
        "DTMF: {exact}/{bursts} bursts counted exactly; {timed}/{tones} tones within 20 ms \
         (worst {worst_ms:.1} ms); misses: {misses:?}"
    );
    assert!(
        rate >= 0.99,
        "{exact}/{bursts} bursts counted exactly: {misses:?}"
    );
    assert_eq!(
        timed, tones,
        "tones timed within 20 ms (worst {worst_ms:.1} ms)"
    );
}

/// Every audio fixture in the repository: speech, music, the format copies, the demo call.
fn every_fixture() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .is_some_and(|e| ["wav", "flac", "mp3", "ogg"].contains(&e.to_str().unwrap()))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&assets(), &mut out);
    out.sort();
    out
}

#[test]
fn no_digit_is_heard_in_speech_or_music() {
    let fixtures = every_fixture();
    assert!(fixtures.len() >= 30, "{} fixtures", fixtures.len());
    let config = Config::default();
    let mut talk_off = Vec::new();
    for path in &fixtures {
        let report = match pipeline::analyze_file(path, "t", &config, Options::default()) {
            Ok(r) => r,
            // GSM 6.10 is refused as unsupported (tests/it/decode.rs): nothing to hear.
            Err(e) if e.code == "unsupported_format" => continue,
            Err(e) => panic!("{path:?}: {e:?}"),
        };
        if report.evidence.dtmf.digits > 0 {
            talk_off.push(format!("{path:?}: {:?}", report.evidence.dtmf));
        }
    }
    assert!(talk_off.is_empty(), "talk-off: {talk_off:#?}");
}

/// A two-minute conversation of the test voices with pauses, noise 25 dB down, and the
/// recorder's 1 kHz beep (250 ms at -20 dBFS) every 15 s from 1 s, up to `beeps_until_s`.
fn beeping_call(beeps_until_s: f64, seed: u64) -> (Vec<f32>, f64) {
    let voices = voices("speech-test");
    let mut rng = Rng::new(seed);
    let total = 120 * RATE as usize;
    let mut x = vec![0.0f32; total];
    let mut at = (RATE as f64 * 0.5) as usize;
    while at < total {
        let v = &voices[(rng.uniform() * voices.len() as f64) as usize];
        let n = v.len().min(total - at);
        x[at..at + n].copy_from_slice(&v[..n]);
        at += n + (RATE as f64 * (0.3 + 1.5 * rng.uniform())) as usize;
    }
    let noise = pink(total, seed ^ 7);
    let gain = (active_power(&x, RATE) / 10f64.powf(2.5) / power(&noise)).sqrt() as f32;
    for (v, n) in x.iter_mut().zip(&noise) {
        *v += gain * n;
    }
    let mut last_end = 0.0;
    let mut t = 1.0;
    while t + 0.25 <= beeps_until_s.min(120.0) {
        let start = (t * RATE as f64) as usize;
        add_tone(&mut x, start, RATE as usize / 4, 1000.0, 0.1, 0.0);
        last_end = t + 0.25;
        t += 15.0;
    }
    (through(&x, to_mulaw, g711::mulaw_to_i16), last_end)
}

fn beep_config() -> Config {
    let mut config = Config::default();
    config.consent.beep = Some(callwarden::config::BeepConfig {
        frequency_hz: 1000.0,
        period_s: 15.0,
        tolerance_s: 1.0,
    });
    config
}

#[test]
fn a_15_s_beep_is_found_and_where_it_stops_is_told_within_1_s() {
    let config = beep_config();
    for seed in 0..4 {
        let (x, _) = beeping_call(200.0, seed);
        let a = analyze_with(&x, 1, &config);
        let beep = a.evidence.beep.as_ref().expect("a beep is configured");
        assert!(beep.ran_through, "seed {seed}: {beep:?}");
        assert_eq!(beep.count, 8, "seed {seed}: {beep:?}");
        assert!(!a.quality.flags.iter().any(|f| f.code == "beep_stopped"));

        let (x, last_end) = beeping_call(62.0, seed);
        let a = analyze_with(&x, 1, &config);
        let beep = a.evidence.beep.as_ref().unwrap();
        assert!(!beep.ran_through, "seed {seed}: {beep:?}");
        let stopped = beep.stopped_at_s.expect("stopped");
        assert!(
            (stopped - last_end).abs() <= 1.0,
            "seed {seed}: stopped at {stopped}, last beep ended at {last_end}"
        );
        assert!(a.quality.flags.iter().any(|f| f.code == "beep_stopped"));
    }
    // No beep configured: nothing said about one.
    let (x, _) = beeping_call(200.0, 9);
    assert!(analyze_with(&x, 1, &Config::default())
        .evidence
        .beep
        .is_none());
}
