//! Compliance evidence in the audio (issue 23): DTMF digits keyed into a call (counted, timed,
//! never kept), the recorder's periodic beep.
//!
//! The detectors' constants come from ITU-T Q.23/Q.24 (frequencies, tolerances, twist,
//! durations) and from what a tone is, not from these fixtures; the calls around the digits use
//! the test half of the speech (`assets/speech-test`), which decided nothing.

use std::path::{Path, PathBuf};

use callwarden::analysis::Analysis;

use callwarden::audio::g711;
use callwarden::config::Config;
use callwarden::pipeline::{self, Options};

use crate::stability::{through, to_alaw, to_mulaw};
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
        frequency_hz: Some(1000.0),
        file: None,
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
    // The beep given as its sound (the PBX's beep file): its frequency is found at load.
    let dir = tempfile::tempdir().unwrap();
    let (sound, call) = (dir.path().join("beep.wav"), dir.path().join("call.wav"));
    let mut tone = vec![0.0f32; RATE as usize / 4];
    add_tone(&mut tone, 0, RATE as usize / 4, 1000.0, 0.3, 0.0);
    write_wav(&sound, &tone, 1);
    write_wav(&call, &beeping_call(62.0, 3).0, 1);
    let mut config = beep_config();
    let beep = config.consent.beep.as_mut().unwrap();
    (beep.frequency_hz, beep.file) = (None, Some(sound));
    let report = pipeline::analyze_file(&call, "call", &config, Options::default()).unwrap();
    let beep = report.evidence.beep.unwrap();
    assert!((beep.frequency_hz - 1000.0).abs() < 5.0, "{beep:?}");
    assert!(beep.count >= 4 && beep.stopped_at_s.is_some(), "{beep:?}");
}

/// The announcement fixtures (`assets/announcement`): the test announcement and prompts of the
/// same voice and length that are not it.
const NOTICE: &str = "conf-now-recording";
const DECOYS: [&str; 2] = ["conf-userswilljoin", "call-fwd-unconditional"];

fn announcement(name: &str) -> Vec<f32> {
    read_speech(&assets().join("announcement").join(format!("{name}.wav"))).unwrap()
}

fn notice_config() -> Config {
    let mut config = Config::default();
    config.consent.announcement = vec![callwarden::config::AnnouncementConfig {
        name: "notice".into(),
        file: assets().join("announcement").join(format!("{NOTICE}.wav")),
        within_s: 30.0,
    }];
    config
}

/// Analyses with the configured announcements looked for.
fn analyze_prompted(samples: &[f32], channels: u16, config: &Config) -> Analysis {
    let prompts = pipeline::prompts(config).unwrap();
    let mut a = callwarden::analysis::Analyzer::new(RATE, channels, 1.0, config)
        .unwrap()
        .with_prompts(prompts);
    a.push(samples);
    a.finish(config, &Default::default(), false)
}

/// How the announcement reached the recording.
#[derive(Debug, Clone, Copy)]
enum Route {
    MuLaw,
    ALaw,
    Gsm,
    Opus,
}

/// Whether the codec tools are here: sox with GSM 06.10 (`libsox-fmt-all`) and opus-tools.
/// Without them the GSM and Opus calls are skipped with a loud message, except in CI (`CI`
/// set), where `.ci/run` installs them and they must run.
fn codec_tools() -> bool {
    let here = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = here("sox") && here("opusenc") && here("opusdec");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have sox, libsox-fmt-all and opus-tools (.ci/run installs them)"
        );
        eprintln!(
            "SKIPPED: the GSM and Opus calls (apt-get install sox libsox-fmt-all opus-tools)"
        );
    }
    ok
}

/// A whole channel through a phone path's codec and back to 8 kHz 16-bit PCM, by Debian's own
/// encoders: GSM 06.10 (13 kbit/s, sox) or Opus at 12 kbit/s (opus-tools); the length kept.
fn through_codec(x: &[f32], route: Route) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    write_wav(&input, x, 1);
    let run = |args: &[&std::ffi::OsStr]| {
        let o = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let coded = dir.path().join("coded");
    let os = |p: &Path| p.as_os_str().to_owned();
    match route {
        Route::Gsm => {
            let gsm = coded.with_extension("gsm");
            run(&[
                "sox".as_ref(),
                &os(&input),
                "-t".as_ref(),
                "gsm".as_ref(),
                &os(&gsm),
            ]);
            run(&[
                "sox".as_ref(),
                "-t".as_ref(),
                "gsm".as_ref(),
                "-r".as_ref(),
                "8000".as_ref(),
                "-c".as_ref(),
                "1".as_ref(),
                &os(&gsm),
                "-b".as_ref(),
                "16".as_ref(),
                "-e".as_ref(),
                "signed-integer".as_ref(),
                &os(&output),
            ]);
        }
        Route::Opus => {
            let opus = coded.with_extension("opus");
            run(&[
                "opusenc".as_ref(),
                "--quiet".as_ref(),
                "--bitrate".as_ref(),
                "12".as_ref(),
                &os(&input),
                &os(&opus),
            ]);
            run(&[
                "opusdec".as_ref(),
                "--quiet".as_ref(),
                "--rate".as_ref(),
                "8000".as_ref(),
                &os(&opus),
                &os(&output),
            ]);
        }
        _ => unreachable!("G.711 is applied in the test itself"),
    }
    let mut y = read_speech(&output).expect("8 kHz mono 16-bit PCM back");
    y.resize(x.len(), 0.0);
    y
}

/// A call of the other voices with `prompt` played at `at_s` (where its start is or would have
/// been: it may be cut by up to a fifth at its start or its end), ±6 dB, noise 10 dB below it,
/// the whole channel through `path`'s codec, mixed or on one of two channels. Returns the
/// samples, channels, and where the prompt starts.
fn announced_call(rng: &mut Rng, prompt: &str, path: Route) -> (Vec<f32>, u16, f64) {
    let voices = voices("speech-test");
    let clip = announcement(prompt);
    let gain = 10f64.powf((12.0 * rng.uniform() - 6.0) / 20.0) as f32;
    let cut = (0.2 * rng.uniform() * clip.len() as f64) as usize;
    let (heard, skipped) = match (rng.uniform() * 3.0) as usize {
        0 => (&clip[..], 0),
        1 => (&clip[cut..], cut),
        _ => (&clip[..clip.len() - cut], 0),
    };
    let start = (rng.uniform() * 25.0 * RATE as f64) as usize + skipped;
    let total = 40 * RATE as usize;
    let talk = |rng: &mut Rng, x: &mut [f32], from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let v = &voices[(rng.uniform() * voices.len() as f64) as usize];
            let n = v.len().min(to - at);
            x[at..at + n].copy_from_slice(&v[..n]);
            at += n + (RATE as f64 * (0.3 + rng.uniform())) as usize;
        }
    };
    let mut with = vec![0.0f32; total];
    // Speech before (when there is room) and after the announcement.
    let gap = (RATE as f64 * 0.5) as usize;
    if start > 3 * RATE as usize {
        talk(rng, &mut with, 0, start - gap);
    }
    for (o, v) in with[start..].iter_mut().zip(heard) {
        *o = v * gain;
    }
    talk(rng, &mut with, start + heard.len() + gap, total);
    let noise = if rng.uniform() < 0.5 {
        white(total, rng.next_u64())
    } else {
        pink(total, rng.next_u64())
    };
    let level = active_power(&clip, RATE) * (gain * gain) as f64;
    let scale = (level / 10.0 / power(&noise)).sqrt() as f32;
    for (v, n) in with.iter_mut().zip(&noise) {
        *v += scale * n;
    }
    // The whole channel (announcement, voices and noise) through the codec.
    let with = match path {
        Route::MuLaw => through(&with, to_mulaw, g711::mulaw_to_i16),
        Route::ALaw => through(&with, to_alaw, g711::alaw_to_i16),
        Route::Gsm | Route::Opus => through_codec(&with, path),
    };
    let at_s = (start - skipped) as f64 / RATE as f64;
    match (rng.uniform() * 3.0) as usize {
        0 => (with, 1, at_s),
        side => {
            let mut other = vec![0.0f32; total];
            let from = (rng.uniform() * RATE as f64) as usize;
            talk(rng, &mut other, from, total);
            let other = through(&other, to_mulaw, g711::mulaw_to_i16);
            let legs: [&[f32]; 2] = if side == 1 {
                [&with, &other]
            } else {
                [&other, &with]
            };
            (interleave(&legs), 2, at_s)
        }
    }
}

const PATHS: [Route; 4] = [Route::MuLaw, Route::ALaw, Route::Gsm, Route::Opus];

#[test]
fn the_announcement_is_found_through_codecs_noise_and_cuts_within_100_ms() {
    let config = notice_config();
    let codecs = codec_tools();
    let mut rng = Rng::new(2323);
    let (mut found, mut timed, mut n, mut least) = (0, 0, 0, 1.0f64);
    let mut misses = Vec::new();
    for i in 0..160 {
        let path = PATHS[i % PATHS.len()];
        if !codecs && matches!(path, Route::Gsm | Route::Opus) {
            continue;
        }
        let (x, channels, at_s) = announced_call(&mut rng, NOTICE, path);
        let a = analyze_prompted(&x, channels, &config);
        let ev = a
            .evidence
            .announcement
            .as_ref()
            .expect("announcements are configured");
        n += 1;
        if ev.found {
            found += 1;
            least = least.min(ev.confidence.unwrap());
            let err = (ev.at_s.unwrap() - at_s).abs();
            if err <= 0.1 {
                timed += 1;
            } else {
                misses.push(format!("{path:?}: at {:?}, placed at {at_s:.2}", ev.at_s));
            }
        } else {
            misses.push(format!("{path:?}: not found (placed at {at_s:.2})"));
        }
    }
    eprintln!(
        "announcement: found {found}/{n}, {timed} within 100 ms, least confidence {least}; \
         misses: {misses:?}"
    );
    assert!(
        found as f64 >= 0.99 * n as f64,
        "found {found}/{n}: {misses:?}"
    );
    assert!(
        timed as f64 >= 0.99 * n as f64,
        "timed {timed}/{n}: {misses:?}"
    );
}

#[test]
fn prompts_of_the_same_voice_and_length_are_not_the_announcement() {
    let config = notice_config();
    let codecs = codec_tools();
    let mut rng = Rng::new(2324);
    let mut false_alarms = Vec::new();
    for i in 0..80 {
        let decoy = DECOYS[i % DECOYS.len()];
        let path = PATHS[i % PATHS.len()];
        if !codecs && matches!(path, Route::Gsm | Route::Opus) {
            continue;
        }
        let (x, channels, at_s) = announced_call(&mut rng, decoy, path);
        let a = analyze_prompted(&x, channels, &config);
        let ev = a.evidence.announcement.unwrap();
        if ev.found {
            false_alarms.push(format!("{decoy} at {at_s:.2}: {ev:?}"));
        }
        assert!(a.quality.flags.iter().any(|f| f.code == "no_announcement") != ev.found);
    }
    assert!(false_alarms.is_empty(), "{false_alarms:#?}");
}

#[test]
fn no_other_fixture_holds_the_announcement() {
    let config = notice_config();
    let mut seen = 0;
    for path in every_fixture() {
        if path.starts_with(assets().join("announcement")) {
            continue;
        }
        let report = match pipeline::analyze_file(&path, "t", &config, Options::default()) {
            Ok(r) => r,
            Err(e) if e.code == "unsupported_format" => continue,
            Err(e) => panic!("{path:?}: {e:?}"),
        };
        seen += 1;
        let ev = report.evidence.announcement.unwrap();
        assert!(!ev.found, "{path:?}: {ev:?}");
    }
    assert!(seen >= 30, "{seen} fixtures");
}

/// A 20 s call of the test voices (mono, 8 kHz), with `extra` mixed in from `at` (a sample
/// index).
fn call_with(seed: u64, extra: &[f32], at: usize) -> Vec<f32> {
    let voices = voices("speech-test");
    let mut rng = Rng::new(seed);
    let total = 20 * RATE as usize;
    let mut x = vec![0.0f32; total];
    let mut pos = 0;
    while pos < total {
        let v = &voices[(rng.uniform() * voices.len() as f64) as usize];
        let n = v.len().min(total - pos);
        if pos + n <= at || pos >= at + extra.len() {
            x[pos..pos + n].copy_from_slice(&v[..n]);
        }
        pos += n + (RATE as f64 * (0.3 + rng.uniform())) as usize;
    }
    for (o, v) in x[at..].iter_mut().zip(extra) {
        *o += v;
    }
    let noise = white(total, seed ^ 99);
    let g = (1e-6 / power(&noise)).sqrt() as f32;
    x.iter_mut().zip(&noise).for_each(|(v, n)| *v += g * n);
    x
}

/// Sixteen DTMF digits (a card number), 80 ms tones 80 ms apart, at -15 dBFS per tone.
fn card_number() -> Vec<f32> {
    let mut x = vec![0.0f32; 16 * 1280];
    for d in 0..16 {
        let digit = (d * 7 + 3) % 16;
        let at = d * 1280;
        add_tone(&mut x, at, 640, ROWS[digit / 4], 0.18, 0.0);
        add_tone(&mut x, at, 640, COLS[digit % 4], 0.18, 0.0);
    }
    x
}

#[test]
fn evidence_reaches_the_consent_and_pci_reports_and_redact_silences_the_digits() {
    use crate::compliance::{callwarden, sidecar, site, text};
    let s = site();
    let notice = assets().join("announcement").join(format!("{NOTICE}.wav"));
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config.push_str(&format!(
        "[consent]\ndefault = \"one_party\"\n\
         [[consent.rule]]\nqueue = [\"eu\"]\nrequires = \"one_party\"\nnotice = true\n\
         [[consent.announcement]]\nname = \"notice\"\nfile = {notice:?}\n\
         [pci]\nqueue = [\"payments\"]\n"
    ));
    std::fs::write(&s.config, config).unwrap();
    let cfg = s.config.as_path();
    let write = |name: &str, x: &[f32], side: &str| {
        let path = s.root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_wav(&path, x, 1);
        sidecar(&path, side);
        path
    };
    let announced = call_with(1, &announcement(NOTICE), RATE as usize);
    write(
        "eu/announced.wav",
        &announced,
        r#"{"queue": "eu", "call_id": "a"}"#,
    );
    write(
        "eu/silent.wav",
        &call_with(2, &[], 0),
        r#"{"queue": "eu", "call_id": "b", "consent": {"state": "granted", "source": "announcement"}}"#,
    );
    let card = write(
        "payments/card.wav",
        &call_with(3, &card_number(), 6 * RATE as usize),
        r#"{"queue": "payments", "call_id": "c"}"#,
    );
    let o = callwarden(cfg, &["ingest", s.root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // Consent: the notice-law call without an announcement lacks it, with the reason.
    let o = callwarden(cfg, &["report", "consent", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["total"]["notice"], 2, "{rep:#}");
    assert_eq!(rep["total"]["lacking"], 1, "{rep:#}");
    assert_eq!(rep["total"]["no_announcement"], 1, "{rep:#}");
    assert_eq!(rep["lacking"][0]["call_id"], "b");
    assert_eq!(rep["lacking"][0]["sidecar_announced"], true);
    assert_eq!(rep["lacking"][0]["announced"], false);
    assert_eq!(rep["reasons"][0], "no announcement found in the first 30 s");
    let o = callwarden(cfg, &["report", "consent"]);
    assert!(
        text(&o).contains("no announcement found in the first 30 s"),
        "{}",
        text(&o)
    );

    // PCI: the card number is counted, never kept.
    let o = callwarden(cfg, &["report", "pci", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["total"]["recordings"], 1, "{rep:#}");
    assert_eq!(rep["total"]["with_bursts"], 1, "{rep:#}");
    assert_eq!(rep["recordings"][0]["dtmf_burst"], 16, "{rep:#}");
    let html = callwarden(cfg, &["report", "pci", "--format", "html"]);
    assert!(String::from_utf8_lossy(&html.stdout).contains("<svg"));
    let id = rep["recordings"][0]["id"].as_u64().unwrap().to_string();

    // Redact: a copy without the digits, different only inside the spans; audited.
    let out = s.base.join("redacted");
    std::fs::create_dir_all(&out).unwrap();
    let o = callwarden(
        cfg,
        &["redact", &id, "--dtmf", "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let copy = out.join("card.redacted.wav");
    let report =
        pipeline::analyze_file(&copy, "copy", &Config::default(), Options::default()).unwrap();
    assert_eq!(report.evidence.dtmf.digits, 0, "{:?}", report.evidence.dtmf);
    let (a, b) = (decode_all(&card), decode_all(&copy));
    assert_eq!(a.len(), b.len());
    let original =
        pipeline::analyze_file(&card, "card", &Config::default(), Options::default()).unwrap();
    let spans = callwarden::redact::spans(&original.evidence.dtmf, 0.1, 20.0);
    let inside = |i: usize| {
        spans.iter().any(|&sp| {
            let (lo, hi) = callwarden::redact::frames(sp, RATE);
            (lo..hi).contains(&i)
        })
    };
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if inside(i) {
            assert_eq!(*y, 0.0, "sample {i} inside a span");
        } else {
            assert_eq!(x, y, "sample {i} outside the spans");
        }
    }
    // Never over an existing copy; the original is untouched.
    let again = callwarden(
        cfg,
        &["redact", &id, "--dtmf", "--out", out.to_str().unwrap()],
    );
    assert!(!again.status.success());
    let store = callwarden::store::Store::open(&s.store).unwrap();
    let redacts: Vec<serde_json::Value> = store
        .audit_entries()
        .filter_map(|e| {
            let (_, e) = e.unwrap();
            let e = e.unwrap();
            (e.action == "redact").then_some(e.details)
        })
        .collect();
    assert_eq!(redacts.len(), 1);
    let copy_sha = callwarden::pipeline::sha256_file(&copy).unwrap();
    assert_eq!(redacts[0]["sha256"], copy_sha.as_str());
    assert_eq!(
        callwarden::pipeline::sha256_file(&card).unwrap(),
        original.sha256
    );
}

#[test]
fn an_announcement_that_cannot_be_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callwarden.toml");
    let missing = dir.path().join("nope.wav");
    std::fs::write(
        &config,
        format!("[[consent.announcement]]\nname = \"notice\"\nfile = {missing:?}\n"),
    )
    .unwrap();
    let call = dir.path().join("call.wav");
    write_wav(&call, &call_with(5, &[], 0), 1);
    let o = crate::compliance::callwarden(&config, &["analyze", call.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", crate::compliance::text(&o));
    let said = crate::compliance::text(&o);
    assert!(
        said.contains("announcement \"notice\"") && said.contains("nope.wav"),
        "{said}"
    );
}
