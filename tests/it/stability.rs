//! Stability (issue 22): copies of one call that a listener cannot tell apart must be analysed
//! alike. Each call (real speech in noise, both halves of the material: see `music.rs`) is
//! compared with its copies after one least-significant bit of dither, ±1 dB of gain, a G.711
//! µ-law or A-law round trip and a 16 kHz copy (a FLAC or WAV copy is the 16-bit samples
//! themselves, which every call here already is), and after a 20-60 ms packet-loss gap.
//!
//! What must hold (the numbers): speech start and end move at most 50 ms, the SNR at
//! most 1 dB where it is 10 dB or more, no stretch of speech longer than 300 ms appears or
//! vanishes; a packet-loss gap removes no speech more than 100 ms away from it.
//!
//! Where it does not hold yet the test asserts today's count as a ceiling (a regression guard)
//! and says so: the copies hold on the test half and not on the dev half (11 of 72 calls lose
//! or gain a 310-540 ms stretch); a gap still removes 10-170 ms of speech elsewhere in 13 of 360
//! dev cases (most of them 160-320 ms away, where an edge judged against its phrase's level
//! moves by a half) and 2 of 360 test cases (30 ms each, 11 and 16 s away), against 76 dev
//! cases before lost packets were seen through (`ChannelFeatures::see_through_lost_packets`)
//! and 16 before the VAD and the running floor heard a lost packet as the sound before it
//! (a gap had taken 440 ms of speech 7.9 s away).

use callwarden::analysis::Analysis;
use callwarden::audio::g711;
use callwarden::config::Config;

use crate::music::{voices, Half, BOTH};
use crate::support::*;

/// The 16-bit sample nearest `x`.
fn q16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn quantised(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| q16(v) as f32 / 32768.0).collect()
}

/// G.711 µ-law of a 16-bit sample (ITU-T G.711, as in the reference `linear2ulaw`).
pub(crate) fn to_mulaw(x: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = x as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(32635) + BIAS;
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 A-law of a 16-bit sample (the reference `linear2alaw`).
pub(crate) fn to_alaw(x: i16) -> u8 {
    let mut v = (x as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let ends = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let Some(seg) = ends.iter().position(|&e| v <= e) else {
        return (0x7F ^ mask) as u8;
    };
    let mantissa = if seg < 2 {
        (v >> 1) & 0x0F
    } else {
        (v >> seg) & 0x0F
    };
    (((seg as i32) << 4 | mantissa) ^ mask) as u8
}

pub(crate) fn through(x: &[f32], encode: fn(i16) -> u8, decode: fn(u8) -> i16) -> Vec<f32> {
    x.iter()
        .map(|&v| decode(encode(q16(v))) as f32 / 32768.0)
        .collect()
}

/// The call at 16 kHz: zeros between the samples, then a zero-phase windowed-sinc low-pass at
/// 4 kHz (gain 2), so nothing moves in time.
fn at_16k(x: &[f32]) -> Vec<f32> {
    const HALF: i64 = 32;
    let taps: Vec<f64> = (-HALF..=HALF)
        .map(|k| {
            let t = k as f64 / 2.0;
            let sinc = if k == 0 {
                1.0
            } else {
                (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * k as f64 / (HALF + 1) as f64).cos();
            sinc * w
        })
        .collect();
    let n = 2 * x.len();
    (0..n as i64)
        .map(|i| {
            let mut acc = 0.0;
            for (j, &t) in taps.iter().enumerate() {
                let src = i - (j as i64 - HALF);
                if src >= 0 && src % 2 == 0 && ((src / 2) as usize) < x.len() {
                    acc += t * x[(src / 2) as usize] as f64;
                }
            }
            acc as f32
        })
        .collect()
}

/// Speech, 10 ms frame by frame.
fn speech_frames(a: &Analysis, n_frames: usize) -> Vec<bool> {
    let mut out = vec![false; n_frames];
    for s in a.metrics.speech.segments.as_ref().unwrap() {
        let (from, to) = (
            (s[0] * 100.0).round() as usize,
            (s[1] * 100.0).round() as usize,
        );
        for f in out.iter_mut().take(to.min(n_frames)).skip(from) {
            *f = true;
        }
    }
    out
}

/// The longest run of frames where the two disagree.
fn longest_disagreement(a: &[bool], b: &[bool]) -> usize {
    let (mut best, mut run) = (0, 0);
    for (x, y) in a.iter().zip(b) {
        run = if x != y { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

struct Tally {
    cases: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, what: &str, base: &Analysis, copy: &Analysis, n_frames: usize) {
        self.cases += 1;
        let (s0, s1) = (&base.metrics.speech, &copy.metrics.speech);
        let moved = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs(),
            (None, None) => 0.0,
            _ => f64::INFINITY,
        };
        let (ds, de) = (moved(s0.start_s, s1.start_s), moved(s0.end_s, s1.end_s));
        if ds > 0.050 || de > 0.050 {
            self.failures
                .push(format!("{what}: start moved {ds:.3} s, end {de:.3} s"));
        }
        if let (Some(a), Some(b)) = (base.metrics.noise.snr_db, copy.metrics.noise.snr_db) {
            if a >= 10.0 && (a - b).abs() > 1.0 {
                self.failures
                    .push(format!("{what}: SNR {a:.2} dB became {b:.2} dB"));
            }
        }
        let run = longest_disagreement(
            &speech_frames(base, n_frames),
            &speech_frames(copy, n_frames),
        );
        if run > 30 {
            self.failures.push(format!(
                "{what}: {} ms of speech appear or vanish",
                run * 10
            ));
        }
    }
}

/// The calls: each voice's prompts with pauses, in white and pink noise at 10, 20 and 30 dB.
fn calls(half: Half) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (v, utterances) in voices(half).into_iter().enumerate() {
        let mut rng = Rng::new(50 + v as u64);
        let parts: Vec<(Vec<f32>, f64)> = utterances
            .iter()
            .take(6)
            .map(|u| (u.clone(), 0.5 + 1.5 * rng.uniform()))
            .collect();
        let call = Call::of(&parts, 1.0, 1.0);
        for kind in ["white", "pink"] {
            for snr in [10.0, 20.0, 30.0] {
                let n = call.samples.len();
                let noise = if kind == "white" {
                    white(n, 7 + v as u64)
                } else {
                    pink(n, 7 + v as u64)
                };
                let x = quantised(&call.with_noise(&noise, snr));
                out.push((format!("{half:?} voice {v}, {kind} {snr} dB"), x));
            }
        }
    }
    out
}

#[test]
fn copies_a_listener_cannot_tell_apart_are_analysed_alike() {
    let config = Config::default();
    let mut report = Vec::new();
    let mut counts = Vec::new();
    for half in BOTH {
        let mut tally = Tally {
            cases: 0,
            failures: Vec::new(),
        };
        for (name, x) in calls(half) {
            let n_frames = x.len() / 80;
            let base = analyze(&x, 1);
            let mut rng = Rng::new(x.len() as u64);
            let dithered: Vec<f32> = x
                .iter()
                .map(|&v| v + ((rng.uniform() - rng.uniform()) / 32768.0) as f32)
                .collect();
            let copies: Vec<(&str, Vec<f32>)> = vec![
                ("1 LSB dither", quantised(&dithered)),
                (
                    "+1 dB",
                    quantised(&x.iter().map(|v| v * 1.122).collect::<Vec<_>>()),
                ),
                (
                    "-1 dB",
                    quantised(&x.iter().map(|v| v * 0.891).collect::<Vec<_>>()),
                ),
                ("µ-law", through(&x, to_mulaw, g711::mulaw_to_i16)),
                ("A-law", through(&x, to_alaw, g711::alaw_to_i16)),
            ];
            for (what, copy) in copies {
                tally.check(
                    &format!("{name}, {what}"),
                    &base,
                    &analyze(&copy, 1),
                    n_frames,
                );
            }
            let wide = analyze_at(&at_16k(&x), 16000, 1, &config);
            tally.check(&format!("{name}, 16 kHz"), &base, &wide, n_frames);
        }
        report.push(format!(
            "{half:?}: {} of {} copies differ beyond the bounds",
            tally.failures.len(),
            tally.cases
        ));
        eprintln!("{half:?}: {:#?}", tally.failures);
        counts.push((half, tally.failures.len()));
    }
    eprintln!("{report:#?}");
    for (half, failures) in counts {
        let ceiling = match half {
            Half::Test => 0,
            Half::Dev => 11,
        };
        assert!(failures <= ceiling, "{half:?}: {report:#?}");
    }
}

#[test]
fn a_packet_loss_gap_removes_no_speech_away_from_it() {
    let mut report = Vec::new();
    for half in BOTH {
        let (mut cases, mut failures) = (0, Vec::new());
        for (name, x) in calls(half) {
            let n_frames = x.len() / 80;
            let base = analyze(&x, 1);
            let frames = speech_frames(&base, n_frames);
            // Gaps of 20, 40 and 60 ms at ten places inside the speech.
            let inside: Vec<usize> = (0..n_frames).filter(|&f| frames[f]).collect();
            for k in 0..10 {
                let at = inside[(k * inside.len()) / 10 + 7] * 80;
                for ms in [20, 40, 60] {
                    let mut y = x.clone();
                    let len = ms * 8;
                    y[at..at + len].iter_mut().for_each(|v| *v = 0.0);
                    let lossy = speech_frames(&analyze(&y, 1), n_frames);
                    cases += 1;
                    let (gap_from, gap_to) = (at / 80, (at + len).div_ceil(80));
                    let lost_far: Vec<usize> = (0..n_frames)
                        .filter(|&f| frames[f] && !lossy[f])
                        .filter(|&f| f + 10 < gap_from || f >= gap_to + 10)
                        .collect();
                    if !lost_far.is_empty() {
                        failures.push(format!(
                            "{name}: a {ms} ms gap at {:.2} s removes {} ms of speech up to {:.2} s away",
                            at as f64 / 8000.0,
                            lost_far.len() * 10,
                            lost_far
                                .iter()
                                .map(|&f| (f as f64 - gap_from as f64).abs() / 100.0)
                                .fold(0.0, f64::max)
                        ));
                    }
                }
            }
        }
        report.push(format!(
            "{half:?}: {} of {cases} gaps remove speech away from them",
            failures.len()
        ));
        eprintln!("{half:?}: {failures:#?}");
        let ceiling = match half {
            Half::Test => 2,
            Half::Dev => 13,
        };
        assert!(failures.len() <= ceiling, "{report:#?}");
    }
}
