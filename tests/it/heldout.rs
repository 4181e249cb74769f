//! Held-out accuracy: the analysis on real prompts it was never tuned on, the 568 Asterisk
//! prompts of Debian's `asterisk-core-sounds-en-wav` (the tuning set in `assets/speech` is left
//! out). `scripts/heldout` fetches them and runs this; it prints, per noise and SNR, how many
//! starts, ends and SNRs fall within issue 2's bounds, and the worst cases by name.
//!
//! The floors asserted here are regression guards measured on that set, not targets: a change
//! that moves a share below its floor has made the analysis worse on speech it never saw.

use std::path::{Path, PathBuf};

use callwarden::analysis::Analysis;

use crate::accuracy::{clip, drop_packets, flags, low_pass, with_floor, with_hum};
use crate::support::*;

/// Every 8 kHz mono 16-bit WAV under `dir`, sorted, without the tuning set's prompts.
fn prompts(dir: &Path) -> Vec<(String, Vec<f32>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "wav") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths.sort();
    let tuning: Vec<String> = std::fs::read_dir(assets().join("speech"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("asterisk-").map(str::to_string)
        })
        .collect();
    paths
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            !tuning.contains(&name)
        })
        .filter_map(|p| {
            let x = read_speech(&p)?;
            let u = trim(&x);
            // Half a second of speech at least (shorter prompts are single words), and speech:
            // the `silence/` prompts hold nothing above -90 dBFS.
            let speech = active_power(&u, RATE) >= 1e-5;
            (speech && u.len() >= RATE as usize / 2).then(|| {
                let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                (name, u)
            })
        })
        .collect()
}

/// Calls of four prompts each, after pauses of 0.6 to 2 s, named by their prompts.
fn calls_of(prompts: &[(String, Vec<f32>)]) -> Vec<(String, Call)> {
    let mut rng = Rng::new(4242);
    prompts
        .chunks(4)
        .map(|group| {
            let parts: Vec<(Vec<f32>, f64)> = group
                .iter()
                .map(|(_, u)| (u.clone(), 0.6 + 1.4 * rng.uniform()))
                .collect();
            let names: Vec<&str> = group.iter().map(|(n, _)| n.as_str()).collect();
            (names.join("+"), Call::of(&parts, 1.0, 1.0))
        })
        .collect()
}

struct Case {
    name: String,
    start: f64,
    end: f64,
    snr: Option<f64>,
    hum: bool,
}

fn noise_of(kind: &str, n: usize, seed: u64) -> Vec<f32> {
    match kind {
        "white" => white(n, seed),
        "brown" => brown(n, seed),
        "swell" => swell(&pink(n, seed), seed),
        _ => pink(n, seed),
    }
}

/// The calls with every sample times `gain`.
fn scaled(calls: Vec<(String, Call)>, gain: f32) -> Vec<(String, Call)> {
    calls
        .into_iter()
        .map(|(name, c)| {
            let samples = c.samples.iter().map(|v| v * gain).collect();
            (
                name,
                Call {
                    samples,
                    spans: c.spans,
                },
            )
        })
        .collect()
}

fn measure(name: &str, call: &Call, kind: &str, snr: f64, seed: u64) -> Case {
    let noise = noise_of(kind, call.samples.len(), seed);
    let a = analyze(&call.with_noise(&noise, snr), 1);
    let s = &a.metrics.speech;
    Case {
        name: name.to_string(),
        start: s.start_s.map_or(f64::NAN, |v| v - call.start_s()),
        end: s.end_s.map_or(f64::NAN, |v| v - call.end_s()),
        snr: a.metrics.noise.snr_db.map(|v| v - snr),
        hum: a.metrics.noise.hum_hz.is_some(),
    }
}

/// Runs `f` over `jobs` on both cores, results in order.
fn parallel<T: Sync, R: Send>(jobs: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let half = jobs.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(half)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

struct Shares {
    start_50: f64,
    start_100: f64,
    end_50: f64,
    end_100: f64,
    snr_2: f64,
}

fn report(label: &str, cases: &[Case]) -> Shares {
    let n = cases.len() as f64;
    let share = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count() as f64 / n;
    let quantile = |mut v: Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let shares = Shares {
        start_50: share(&|c| c.start.abs() <= 0.050),
        start_100: share(&|c| c.start.abs() <= 0.100),
        end_50: share(&|c| c.end.abs() <= 0.050),
        end_100: share(&|c| c.end.abs() <= 0.100),
        snr_2: share(&|c| c.snr.is_some_and(|e| e.abs() <= 2.0)),
    };
    let hums: Vec<&str> = cases
        .iter()
        .filter(|c| c.hum)
        .map(|c| c.name.as_str())
        .collect();
    if std::env::var_os("CW_NOFLOORS").is_none() {
        assert!(hums.is_empty(), "{label}: hum found in {hums:?}");
    } else if !hums.is_empty() {
        println!(
            "    hum found in {} of {}: {:?}",
            hums.len(),
            cases.len(),
            &hums[..hums.len().min(5)]
        );
    }
    let early = cases.iter().filter(|c| c.end < -0.100).count();
    let late = cases.iter().filter(|c| c.end > 0.100).count();
    let snr_bias = cases.iter().filter_map(|c| c.snr).sum::<f64>() / n;
    println!(
        "{label:<16} n {:>4}  start<=50 {:>5.1}% <=100 {:>5.1}%  end<=50 {:>5.1}% <=100 {:>5.1}% (early {early}, late {late}, p90 |end| {:.0} ms)  snr+-2 {:>5.1}% (bias {snr_bias:+.2} dB, p90 |err| {:.2})",
        cases.len(),
        100.0 * shares.start_50,
        100.0 * shares.start_100,
        100.0 * shares.end_50,
        100.0 * shares.end_100,
        1000.0 * quantile(cases.iter().map(|c| c.end.abs()).collect(), 0.9),
        100.0 * shares.snr_2,
        quantile(cases.iter().map(|c| c.snr.map_or(f64::INFINITY, f64::abs)).collect(), 0.9),
    );
    let ends: Vec<f64> = cases.iter().map(|c| c.end).collect();
    let starts: Vec<f64> = cases.iter().map(|c| c.start).collect();
    println!(
        "    signed ms: start p10/p50/p90 {:+.0}/{:+.0}/{:+.0}  end p5/p10/p50/p90 {:+.0}/{:+.0}/{:+.0}/{:+.0}",
        1000.0 * quantile(starts.clone(), 0.1),
        1000.0 * quantile(starts.clone(), 0.5),
        1000.0 * quantile(starts, 0.9),
        1000.0 * quantile(ends.clone(), 0.05),
        1000.0 * quantile(ends.clone(), 0.1),
        1000.0 * quantile(ends.clone(), 0.5),
        1000.0 * quantile(ends, 0.9),
    );
    let mut worst: Vec<&Case> = cases
        .iter()
        .filter(|c| c.end.abs() > 0.100 || c.start.abs() > 0.100)
        .collect();
    worst.sort_by(|a, b| {
        (b.end.abs().max(b.start.abs())).total_cmp(&a.end.abs().max(a.start.abs()))
    });
    for c in worst.iter().take(4) {
        println!("    {:<48} start {:+.3} end {:+.3}", c.name, c.start, c.end);
    }
    shares
}

#[test]
#[ignore = "needs the held-out prompts: run scripts/heldout"]
fn heldout_prompts() {
    let dir =
        std::env::var_os("CALLWARDEN_HELDOUT").expect("CALLWARDEN_HELDOUT: run scripts/heldout");
    let prompts = prompts(Path::new(&dir));
    assert!(
        prompts.len() >= 100,
        "only {} prompts under {dir:?}",
        prompts.len()
    );
    println!("{} held-out prompts", prompts.len());

    // Each prompt alone (1 s of noise either side), and calls of four prompts with pauses.
    let singles: Vec<(String, Call)> = prompts
        .iter()
        .map(|(name, u)| (name.clone(), Call::of(&[(u.clone(), 1.0)], 1.0, 1.0)))
        .collect();
    let calls = calls_of(&prompts);

    let kinds = std::env::var("CW_KINDS").unwrap_or_else(|_| "white,pink".into());
    let gain: f32 = std::env::var("CW_GAIN").map_or(1.0, |g| g.parse().unwrap());
    let (singles, calls) = (scaled(singles, gain), scaled(calls, gain));
    for kind in kinds.split(',') {
        for snr in [0.0, 5.0, 10.0, 20.0, 30.0] {
            let seed0 = match kind {
                "white" => 50_000,
                "pink" => 60_000,
                _ => 100_000,
            } + snr as u64 * 1000;
            let jobs: Vec<(usize, &(String, Call))> = singles.iter().enumerate().collect();
            let one = parallel(&jobs, |(i, (name, call))| {
                measure(name, call, kind, snr, seed0 + *i as u64)
            });
            let jobs: Vec<(usize, &(String, Call))> = calls.iter().enumerate().collect();
            let four = parallel(&jobs, |(i, (name, call))| {
                measure(name, call, kind, snr, seed0 + 500 + *i as u64)
            });
            let a = report(&format!("{kind} {snr} single"), &one);
            let b = report(&format!("{kind} {snr} calls"), &four);
            if std::env::var_os("CW_NOFLOORS").is_none() {
                check_floors(kind, snr, &a, &b);
            }
        }
    }
    // Babble of six other held-out prompts, for the SNR (issue 2: within 3 dB at 10 and 20 dB).
    for snr in [10.0, 20.0] {
        let jobs: Vec<(usize, &(String, Call))> = calls.iter().enumerate().collect();
        let cases = parallel(&jobs, |(i, (_, call))| {
            let voices: Vec<Vec<f32>> = (1..=6)
                .map(|k| prompts[(4 * i + 37 * k) % prompts.len()].1.clone())
                .collect();
            let noise = babble_of(&voices, call.samples.len(), 70_000 + *i as u64);
            let a = analyze(&call.with_noise(&noise, snr), 1);
            a.metrics.noise.snr_db.map_or(f64::INFINITY, |v| v - snr)
        });
        let within = cases.iter().filter(|e| e.abs() <= 3.0).count() as f64 / cases.len() as f64;
        let bias = cases.iter().filter(|e| e.is_finite()).sum::<f64>() / cases.len() as f64;
        println!(
            "babble {snr} calls n {:>4}  snr+-3 {:>5.1}% (bias {bias:+.2} dB)",
            cases.len(),
            100.0 * within
        );
        assert!(
            within >= 0.9,
            "babble {snr} dB: SNRs within 3 dB {within:.3}"
        );
    }
    flags_on_heldout_calls(&calls);
    two_party_calls(&prompts);
    other_rates(&prompts);
}

/// `x` at `factor` times its rate: zeros stuffed between the samples, then a windowed-sinc
/// low-pass at the old Nyquist (8 zero crossings a side, Hann window).
fn upsample(x: &[f32], factor: usize) -> Vec<f32> {
    let half = 8 * factor;
    let taps: Vec<f32> = (0..=2 * half)
        .map(|i| {
            let t = (i as f64 - half as f64) / factor as f64;
            let sinc = if t == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t)
            };
            let w =
                0.5 + 0.5 * (std::f64::consts::PI * (i as f64 - half as f64) / half as f64).cos();
            (sinc * w) as f32
        })
        .collect();
    let n = x.len() * factor;
    (0..n)
        .map(|j| {
            // Output j sums the stuffed input at k * factor near j.
            let lo = j.saturating_sub(half).div_ceil(factor);
            let hi = ((j + half) / factor).min(x.len() - 1);
            (lo..=hi).map(|k| x[k] * taps[k * factor + half - j]).sum()
        })
        .collect()
}

/// Prompts alone at 16 and 48 kHz (narrowband speech, as a PBX recording at a wideband rate
/// holds), in white noise at 10 and 20 dB: starts, ends and SNRs as at 8 kHz.
fn other_rates(prompts: &[(String, Vec<f32>)]) {
    let config = callwarden::config::Config::default();
    for (factor, step) in [(2usize, 2usize), (6, 8)] {
        let rate = RATE * factor as u32;
        let chosen: Vec<(usize, &(String, Vec<f32>))> =
            prompts.iter().enumerate().step_by(step).collect();
        for snr in [10.0, 20.0] {
            let cases = parallel(&chosen, |(i, (name, u))| {
                let speech = upsample(u, factor);
                let pad = rate as usize;
                let mut clean = vec![0.0f32; pad];
                clean.extend(&speech);
                clean.extend(std::iter::repeat_n(0.0, pad));
                let noise = white(clean.len(), 80_000 + *i as u64);
                // The truth as in `Call::with_noise`: P.56 over the call, pauses included.
                let target = active_power(&clean, rate) / 10f64.powf(snr / 10.0);
                let g = (target / power(&noise)).sqrt() as f32;
                let x: Vec<f32> = clean.iter().zip(&noise).map(|(s, n)| s + n * g).collect();
                let a = analyze_at(&x, rate, 1, &config);
                let s = &a.metrics.speech;
                let (start, end) = (1.0, 1.0 + speech.len() as f64 / rate as f64);
                Case {
                    name: name.clone(),
                    start: s.start_s.map_or(f64::NAN, |v| v - start),
                    end: s.end_s.map_or(f64::NAN, |v| v - end),
                    snr: a.metrics.noise.snr_db.map(|v| v - snr),
                    hum: a.metrics.noise.hum_hz.is_some(),
                }
            });
            let s = report(&format!("white {snr} {} kHz", rate / 1000), &cases);
            let (starts, ends) = if snr >= 20.0 {
                (s.start_50, s.end_50)
            } else {
                (s.start_100, s.end_100)
            };
            assert!(
                starts >= 0.97 && ends >= 0.88 && s.snr_2 >= 0.97,
                "{} kHz {snr} dB",
                rate / 1000
            );
        }
    }
}

/// The regression floors (see the module doc): shares of starts and ends within 100 ms (50 ms
/// from 20 dB) and of SNRs within 2 dB, for prompts alone and in calls.
fn check_floors(kind: &str, snr: f64, single: &Shares, calls: &Shares) {
    let (start, end, snr_2) = match (kind, snr as u32) {
        ("white", 0) => (0.90, 0.85, 0.97),
        ("white", 5) => (0.97, 0.92, 0.97),
        ("white", 10) => (0.98, 0.90, 0.97),
        ("pink", 0) => (0.90, 0.72, 0.80),
        ("pink", 5) => (0.92, 0.85, 0.93),
        ("pink", 10) => (0.92, 0.88, 0.95),
        (_, 20) => (0.98, 0.90, 0.97),
        _ => (0.98, 0.94, 0.97),
    };
    for (what, s) in [("alone", single), ("in calls", calls)] {
        let (starts, ends) = if snr >= 20.0 {
            (s.start_50, s.end_50)
        } else {
            (s.start_100, s.end_100)
        };
        assert!(
            starts >= start,
            "{kind} {snr} dB {what}: starts {starts:.3} < {start}"
        );
        assert!(
            ends >= end,
            "{kind} {snr} dB {what}: ends {ends:.3} < {end}"
        );
        assert!(
            s.snr_2 >= snr_2,
            "{kind} {snr} dB {what}: SNRs {:.3} < {snr_2}",
            s.snr_2
        );
    }
}

/// On every held-out call: no impairment flag on the clean call (under a -65 dBFS floor), and
/// each impairment flagged where it was put.
fn flags_on_heldout_calls(calls: &[(String, Call)]) {
    let checks: Vec<(String, Vec<String>)> = parallel(calls, |(name, call)| {
        let clean = with_floor(&call.samples, -65.0);
        let mut wrong = Vec::new();
        let f = |x: &[f32]| -> Vec<String> {
            let a: Analysis = analyze(x, 1);
            flags(&a)
        };
        let got = f(&clean);
        for code in [
            "clipping",
            "muffled",
            "hum",
            "dropouts",
            "no_speech",
            "noisy",
        ] {
            if got.iter().any(|g| g == code) {
                wrong.push(format!("clean: {code}"));
            }
        }
        let peak = clean.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // Packets lost in speech (those in pauses are not dropouts).
        let lossy = drop_packets(&call.samples, 0.02, 5);
        let lost = lossy
            .chunks(160)
            .zip(call.samples.chunks(160))
            .filter(|(l, c)| l.iter().all(|&v| v == 0.0) && power(c) > 1e-6)
            .count();
        for (what, x, code) in [
            ("clipped x8", clip(&clean, 8.0), "clipping"),
            ("loud clean", clip(&clean, 0.999 / peak), ""),
            ("1 kHz low-pass", low_pass(&clean, 1000.0, 4), "muffled"),
            (
                "2% loss",
                lossy.clone(),
                if lost >= 3 { "dropouts" } else { "" },
            ),
            ("50 Hz hum", with_hum(&clean, 50.0, -45.0), "hum"),
            ("60 Hz hum", with_hum(&clean, 60.0, -45.0), "hum"),
        ] {
            let got = f(&x);
            if code.is_empty() {
                if got.iter().any(|g| g == "clipping") {
                    wrong.push(format!("{what}: clipping"));
                }
            } else if !got.iter().any(|g| g == code) {
                wrong.push(format!("{what}: no {code} in {got:?}"));
            }
        }
        (name.clone(), wrong)
    });
    let bad: Vec<_> = checks.iter().filter(|(_, w)| !w.is_empty()).collect();
    println!("flags: {} of {} calls wrong", bad.len(), checks.len());
    for (name, wrong) in bad.iter().take(20) {
        println!("    {name}: {wrong:?}");
    }
    assert!(
        bad.is_empty(),
        "flags wrong on {} held-out calls",
        bad.len()
    );
}

/// Two-party calls of held-out prompts (issue 2: talk time within 0.3 s a side, overtalk within
/// 0.5 s; the truth is the sum of the trimmed prompts' lengths): turns alternate, each starting from 0.8 s before to 1 s after the other side's end, on
/// two legs with -60 dBFS line noise.
fn two_party_calls(prompts: &[(String, Vec<f32>)]) {
    let mut rng = Rng::new(8080);
    let mut calls = Vec::new();
    for group in prompts.chunks(8).filter(|g| g.len() == 8) {
        let mut spans: [Vec<(usize, usize)>; 2] = [Vec::new(), Vec::new()];
        let mut at = RATE as usize / 2;
        for (k, (_, u)) in group.iter().enumerate() {
            let side = k % 2;
            spans[side].push((at, at + u.len()));
            let next = at as f64 + u.len() as f64 + (rng.uniform() * 1.8 - 0.8) * RATE as f64;
            // A turn never starts before the other side's previous turn ends.
            let floor = spans[1 - side].last().map_or(0, |s| s.1) as f64;
            at = next.max(floor).max(at as f64 + RATE as f64 * 0.2) as usize;
        }
        let len = spans.iter().flatten().map(|s| s.1).max().unwrap() + RATE as usize;
        let legs: Vec<Vec<f32>> = (0..2)
            .map(|side| {
                let mut x: Vec<f32> = white(len, 90 + side as u64 + 2 * calls.len() as u64)
                    .iter()
                    .map(|v| v * 1e-3)
                    .collect();
                for (k, &(s, _)) in spans[side].iter().enumerate() {
                    let u = &group[2 * k + side].1;
                    x[s..s + u.len()]
                        .iter_mut()
                        .zip(u)
                        .for_each(|(o, v)| *o += v);
                }
                x
            })
            .collect();
        calls.push((legs, spans));
    }
    let seconds =
        |s: &[(usize, usize)]| s.iter().map(|s| s.1 - s.0).sum::<usize>() as f64 / RATE as f64;
    let results = parallel(&calls, |(legs, spans)| {
        let a = analyze(&interleave(&[&legs[0], &legs[1]]), 2);
        let channels = a.channels.as_ref().expect("channels");
        let talk: Vec<f64> = (0..2)
            .map(|side| channels[side].metrics.speech.talk_time_s - seconds(&spans[side]))
            .collect();
        let mut overlap = 0usize;
        for &(s1, e1) in &spans[0] {
            for &(s2, e2) in &spans[1] {
                overlap += e1.min(e2).saturating_sub(s1.max(s2));
            }
        }
        let overtalk = a.conversation.as_ref().expect("conversation").overtalk_s
            - overlap as f64 / RATE as f64;
        (talk, overtalk)
    });
    for (k, (t, o)) in results.iter().enumerate() {
        if t.iter().any(|e| e.abs() > 0.3) {
            println!(
                "    call {k}: talk {:+.2}/{:+.2} overtalk {o:+.2}",
                t[0], t[1]
            );
        }
    }
    let n = results.len() as f64;
    let talk_ok = results
        .iter()
        .filter(|(t, _)| t.iter().all(|e| e.abs() <= 0.3))
        .count() as f64
        / n;
    let over_ok = results.iter().filter(|(_, o)| o.abs() <= 0.5).count() as f64 / n;
    let worst_talk = results
        .iter()
        .flat_map(|(t, _)| t.iter().copied())
        .fold(0.0f64, |m, e| if e.abs() > m.abs() { e } else { m });
    let worst_over =
        results
            .iter()
            .map(|(_, o)| *o)
            .fold(0.0f64, |m, e| if e.abs() > m.abs() { e } else { m });
    println!(
        "two-party n {:>4}  talk both within 0.3 s {:>5.1}% (worst {worst_talk:+.2} s)  overtalk within 0.5 s {:>5.1}% (worst {worst_over:+.2} s)",
        results.len(),
        100.0 * talk_ok,
        100.0 * over_ok
    );
    // The misses are long prompts whose pauses of 300-500 ms the truth counts as talk and the
    // analysis, bridging only gaps under 300 ms, does not (demo-instruct: 71 s, -1.3 s).
    assert!(
        talk_ok >= 0.9,
        "talk time within 0.3 s on {talk_ok:.3} of the calls"
    );
    assert!(
        over_ok >= 0.97,
        "overtalk within 0.5 s on {over_ok:.3} of the calls"
    );
}

/// One held-out prompt alone in one noise, its segments printed: `CW_ONE=name CW_KIND=pink
/// CW_SNR=10 CW_SEED=1 scripts/heldout heldout_one`.
#[test]
#[ignore = "needs the held-out prompts: run scripts/heldout"]
fn heldout_one() {
    let dir =
        std::env::var_os("CALLWARDEN_HELDOUT").expect("CALLWARDEN_HELDOUT: run scripts/heldout");
    // A helper for one prompt: `scripts/heldout` alone runs the measurement above, and this
    // has nothing to do without a name.
    let Ok(want) = std::env::var("CW_ONE") else {
        eprintln!("heldout_one: set CW_ONE to a prompt's name to look at it alone");
        return;
    };
    let kind = std::env::var("CW_KIND").unwrap_or_else(|_| "pink".into());
    let snr: f64 = std::env::var("CW_SNR").map_or(10.0, |s| s.parse().unwrap());
    let prompts = prompts(Path::new(&dir));
    // The seed `heldout_prompts` gives this prompt alone or call, unless CW_SEED says otherwise.
    let base = match kind.as_str() {
        "white" => 50_000,
        "pink" => 60_000,
        _ => 100_000,
    } + snr as u64 * 1000;
    let (call, seed) = if want.contains('+') {
        let calls = calls_of(&prompts);
        let i = calls
            .iter()
            .position(|(n, _)| *n == want)
            .expect("no such call");
        (calls.into_iter().nth(i).unwrap().1, base + 500 + i as u64)
    } else {
        let i = prompts
            .iter()
            .position(|(n, _)| *n == want)
            .expect("no such prompt");
        (
            Call::of(&[(prompts[i].1.clone(), 1.0)], 1.0, 1.0),
            base + i as u64,
        )
    };
    let seed: u64 = std::env::var("CW_SEED").map_or(seed, |s| s.parse().unwrap());
    let noise = noise_of(&kind, call.samples.len(), seed);
    let a = analyze(&call.with_noise(&noise, snr), 1);
    println!("truth {:.3}..{:.3}", call.start_s(), call.end_s());
    println!("segments {:?}", a.metrics.speech.segments);
    println!(
        "snr {:?} floor {:?}",
        a.metrics.noise.snr_db, a.metrics.noise.floor_dbfs
    );
}
