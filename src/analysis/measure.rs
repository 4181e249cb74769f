//! Pass two: turning the kept features and the speech segments into the report's measurements,
//! per channel, over the mix of all channels, and between the parties of a conversation.

use std::collections::BTreeMap;

use crate::config::{AnalysisConfig, Thresholds};

use super::features::{ChannelFeatures, ClipHistogram, LevelSpectra, Zeros};
use super::model::{
    Clarity, Clipping, Conversation, Dropouts, Envelope, Hold, Level, Metrics, Noise, Silence,
    Speech,
};
use super::noise::{self, level_db, FLOOR_DB};
use super::segments::{self, Segments};
use super::spectrum;

/// Fewer non-speech halves than this (200 ms) leave the noise unmeasured.
const MIN_NOISE_HALVES: usize = 20;
/// Halves this close to speech are left out of the noise measurement (decays, breaths).
const NOISE_GUARD_HALVES: usize = 5;
/// Highest mains harmonic looked at (the hum spectrum is decimated to about 1 kHz).
const HUM_MAX_HZ: f64 = 480.0;
/// Share of speech energy under the reported bandwidth.
const ROLLOFF_SHARE: f64 = 0.95;

/// Time base shared by all channels of one recording.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub half_s: f64,
    pub duration_s: f64,
}

impl Timing {
    /// Whole halves in `s` seconds.
    pub fn halves(&self, s: f64) -> usize {
        (s / self.half_s).round() as usize
    }
}

/// What pass two keeps of one channel besides its metrics, for the mix and the conversation.
pub struct ChannelResult {
    pub metrics: Metrics,
    pub segments: Segments,
    /// Hold music.
    pub holds: Segments,
    pub samples: u64,
    pub clipped: u64,
    pub dropout_s: f64,
    pub speech_spectrum: Option<(Vec<f64>, f64)>,
    /// The speech's and the noise's long-term spectra.
    pub long_term: Option<Spectra>,
    pub hum: Option<spectrum::Hum>,
}

/// The noise power over the non-speech halves (away from speech), if there are enough of them.
/// Halves whose 50 ms power is above `limit` in the full band and above `band_limit` in the
/// speech band (`band`, pre-emphasised) are left out: speech the detector missed is not noise,
/// and it shows in both. Noise that wanders at low frequencies (pink, rumble) rises in the full
/// band only, and is all kept: leaving its loud moments out would put its mean too low.
fn measured_noise(
    powers: &[f32],
    band: &dyn Fn(usize) -> f32,
    segments: &Segments,
    (limit, band_limit): (f64, f64),
) -> Option<(f64, usize)> {
    let reach = noise::SMOOTH_HALVES;
    let n = powers.len();
    let smoothed = noise::MovingAverage::new(n, reach, |j| powers[j])
        .zip(noise::MovingAverage::new(n, reach, band));
    let mut sum = 0.0;
    let mut count = 0;
    let mut next = 0;
    for (j, (full, speech_band)) in smoothed.enumerate() {
        // Skip the segments and their guard.
        while segments
            .get(next)
            .is_some_and(|s| j >= s.1.saturating_add(NOISE_GUARD_HALVES))
        {
            next += 1;
        }
        if segments
            .get(next)
            .is_some_and(|s| j + NOISE_GUARD_HALVES >= s.0)
        {
            continue;
        }
        if full as f64 <= limit || speech_band as f64 <= band_limit {
            sum += powers[j] as f64;
            count += 1;
        }
    }
    (count >= MIN_NOISE_HALVES).then(|| (sum / count as f64, count))
}

/// Speech, silence, level and noise measurements from half powers and segments.
pub struct Basics {
    pub speech: Speech,
    pub silence: Silence,
    pub hold: Hold,
    pub active_power: Option<f64>,
    pub noise_power: f64,
    pub snr_db: Option<f64>,
    pub noise_measured: bool,
    pub envelope: Option<Envelope>,
}

/// The level over time (see [`Envelope`]): whole halves per step, at least 100 ms, so that no
/// more than [`Envelope::MAX_POINTS`] cover the recording.
pub fn envelope(powers: &[f32], half_s: f64) -> Envelope {
    let min_halves = (0.1 / half_s).ceil().max(1.0) as usize;
    let per = powers
        .len()
        .div_ceil(Envelope::MAX_POINTS)
        .max(min_halves)
        .max(1);
    let dbfs = powers
        .chunks(per)
        .map(|c| {
            let mean = c.iter().map(|&p| p as f64).sum::<f64>() / c.len() as f64;
            level_db(mean).round().clamp(FLOOR_DB, 0.0) as i16
        })
        .collect();
    Envelope {
        step_s: round2(per as f64 * half_s),
        dbfs,
    }
}

/// `powers` are the full band's half powers, `band` the speech band's (see `measured_noise`).
/// Hold music (`holds`) and another leg's echo (`echoed`) are neither silence nor noise.
#[allow(clippy::too_many_arguments)]
pub fn basics(
    powers: &[f32],
    band: &dyn Fn(usize) -> f32,
    segments: &Segments,
    holds: &Segments,
    echoed: &Segments,
    estimate: &noise::NoiseEstimate,
    timing: Timing,
    cfg: &AnalysisConfig,
    with_segments: bool,
) -> Basics {
    let t = |h: usize| (h as f64 * timing.half_s).min(timing.duration_s);
    let talk: f64 = segments.iter().map(|&(s, e)| t(e) - t(s)).sum::<f64>() + 0.0;
    let start = segments.first().map(|s| t(s.0));
    let end = segments.last().map(|s| t(s.1));
    // Another leg's echo is neither this one's talk nor its noise (nor a silence in it).
    let occupied = segments::union(&[segments, holds, echoed]);
    let gaps: Vec<f64> = occupied.windows(2).map(|w| t(w[1].0) - t(w[0].1)).collect();
    let dead: Vec<f64> = gaps
        .iter()
        .copied()
        .filter(|&g| g > cfg.dead_air_s)
        .collect();
    let speech = Speech {
        ratio: if timing.duration_s > 0.0 {
            (talk / timing.duration_s).clamp(0.0, 1.0)
        } else {
            0.0
        },
        talk_time_s: talk,
        start_s: start,
        end_s: end,
        leading_silence_s: start.unwrap_or(timing.duration_s),
        trailing_silence_s: end.map_or(timing.duration_s, |e| (timing.duration_s - e).max(0.0)),
        segments: with_segments.then(|| segments.iter().map(|&(s, e)| [t(s), t(e)]).collect()),
    };
    let silence = Silence {
        longest_s: gaps.iter().copied().fold(0.0, f64::max),
        dead_air_s: dead.iter().sum::<f64>() + 0.0,
        dead_air_count: dead.len() as u32,
    };
    let limit = 10f64.powf(estimate.limit_db / 10.0);
    let band_limit = 10f64.powf(noise::noise_limit_db(powers.len(), band) / 10.0);
    let measured = measured_noise(powers, band, &occupied, (limit, band_limit));
    let noise_power = measured.map_or(estimate.power, |m| m.0).max(1e-12);
    let hangover = ((segments::P56_HANGOVER_S / timing.half_s).round() as usize).max(1);
    let activity = segments::p56_activity(segments, hangover, powers.len());
    let speech_power = segments::mean_power(powers, &activity);
    // Speech and noise add in power: what the speech frames hold beyond the noise is speech.
    let active_power = speech_power.map(|p| (p - noise_power).max(p * 1e-3));
    let snr_db = match (active_power, measured) {
        (Some(a), Some(_)) => Some(level_db(a) - level_db(noise_power)),
        _ => None,
    };
    let hold = Hold {
        music_s: round2(holds.iter().map(|&(s, e)| t(e) - t(s)).sum::<f64>() + 0.0),
        music: holds
            .iter()
            .map(|&(s, e)| [round2(t(s)), round2(t(e))])
            .collect(),
    };
    Basics {
        speech,
        silence,
        hold,
        active_power,
        noise_power,
        snr_db,
        noise_measured: measured.is_some(),
        envelope: with_segments.then(|| envelope(powers, timing.half_s)),
    }
}

/// Clipped samples and events: samples at the very top of the signal's range, where flat runs
/// show the waveform was cut off. A natural peak reaches its extreme once and is not a run.
fn clipping(hist: &ClipHistogram, peak: f32) -> (u64, u64) {
    if peak <= 0.0 {
        return (0, 0);
    }
    let from = ClipHistogram::bin(peak * 0.998);
    let events: u64 = hist.runs[from..].iter().sum();
    if events == 0 {
        return (0, 0);
    }
    (hist.samples[from..].iter().sum(), events)
}

/// Lost-packet gaps: runs of digital silence 10-200 ms long strictly inside speech that cut
/// the speech off abruptly: the 10 ms on both sides still hold speech above `cut_power`.
/// A pause where the talker's voice decays into digital silence (an
/// edited prompt, a codec's silence suppression) is not a lost packet.
fn dropouts(
    zeros: &[Zeros],
    powers: &[f32],
    half_len: usize,
    segments: &Segments,
    cut_power: f64,
) -> (u64, u64) {
    let n = powers.len();
    let min = half_len as u64; // 10 ms
    let max = 20 * half_len as u64; // 200 ms
    let silent = |z: &Zeros| z.lead as usize >= half_len;
    let loud = |j: usize| powers.get(j).is_some_and(|&p| p as f64 >= cut_power);
    let mut count = 0;
    let mut samples = 0;
    let mut seg = 0;
    let mut consider = |start: u64, len: u64| {
        if len < min || len > max {
            return;
        }
        let (before, after) = (start as usize / half_len, (start + len) as usize / half_len);
        let before_ok = if !(start as usize).is_multiple_of(half_len) {
            loud(before)
        } else {
            before > 0 && loud(before - 1)
        };
        if !(before_ok && loud(after)) {
            return;
        }
        let end = start + len;
        while seg < segments.len() && (segments[seg].1 * half_len) as u64 <= start {
            seg += 1;
        }
        if let Some(&(s, e)) = segments.get(seg) {
            if (s * half_len) as u64 <= start && end <= (e * half_len) as u64 {
                count += 1;
                samples += len;
            }
        }
    };
    let mut k = 0;
    while k < zeros.len() {
        let z = zeros[k];
        let j = z.index as usize;
        if silent(&z) {
            let first_k = k;
            let mut last = j;
            while k + 1 < zeros.len()
                && zeros[k + 1].index as usize == last + 1
                && silent(&zeros[k + 1])
            {
                k += 1;
                last += 1;
            }
            let before = match first_k.checked_sub(1).map(|p| zeros[p]) {
                Some(p) if p.index as usize + 1 == j => p.trail as u64,
                _ => 0,
            };
            let after = match zeros.get(k + 1) {
                Some(a) if a.index as usize == last + 1 => a.lead as u64,
                _ => 0,
            };
            k += 1;
            // A run that touches the start or the end of the file is not inside anything.
            if j == 0 || last + 1 >= n {
                continue;
            }
            let start = (j * half_len) as u64 - before;
            consider(start, before + ((last + 1 - j) * half_len) as u64 + after);
        } else {
            if let Some(next) = zeros.get(k + 1) {
                if next.index as usize == j + 1 && !silent(next) && z.trail > 0 && next.lead > 0 {
                    let start = ((j + 1) * half_len) as u64 - z.trail as u64;
                    consider(start, z.trail as u64 + next.lead as u64);
                }
            }
            k += 1;
        }
    }
    (count, samples)
}

/// Speech's standard pre-emphasis coefficient (1 - 0.97 z^-1).
const PRE_EMPHASIS: f64 = 0.97;

/// The noise-free mean spectrum of speech frames, pre-emphasised, and its bin width.
///
/// Voiced speech falls by about 6 dB per octave, so nearly all of its raw power lies under
/// 1 kHz and a raw roll-off says little about the channel. Pre-emphasis (+6 dB/octave, as
/// every speech front end applies) flattens that tilt, so the 95% roll-off lands near the top
/// of the band the channel really carries: about 3.4 kHz for a clean narrowband call.
fn speech_spectrum(clean: &[f64], bin_hz: f64) -> (Vec<f64>, f64) {
    let rate = bin_hz * 2.0 * (clean.len() - 1) as f64;
    let emphasised = clean
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let w = 2.0 * std::f64::consts::PI * i as f64 * bin_hz / rate;
            p * (1.0 + PRE_EMPHASIS * PRE_EMPHASIS - 2.0 * PRE_EMPHASIS * w.cos())
        })
        .collect();
    (emphasised, bin_hz)
}

/// The long-term spectra of a channel's speech (loud speech frames, the noise taken out) and
/// of its noise (the quiet frames), and their bin width; none without speech frames. No noise
/// spectrum without quiet frames.
pub struct Spectra {
    pub speech: Vec<f64>,
    pub noise: Option<Vec<f64>>,
    pub bin_hz: f64,
}

fn spectra_of(spectra: &[LevelSpectra; 2], noise_db: f64, gate_db: f64) -> Option<Spectra> {
    let (speech, n) = spectra[1].mean_between(gate_db, f64::INFINITY);
    if n == 0 {
        return None;
    }
    let (quiet0, n0) = spectra[0].mean_between(f64::NEG_INFINITY, noise_db + 3.0);
    let (quiet1, n1) = spectra[1].mean_between(f64::NEG_INFINITY, noise_db + 3.0);
    let noise: Option<Vec<f64>> = (n0 + n1 > 0).then(|| {
        quiet0
            .iter()
            .zip(&quiet1)
            .map(|(a, b)| (a * n0 as f64 + b * n1 as f64) / (n0 + n1) as f64)
            .collect()
    });
    let speech = match &noise {
        Some(noise) => speech
            .iter()
            .zip(noise)
            .map(|(s, n)| (s - n).max(0.0))
            .collect(),
        None => speech,
    };
    Some(Spectra {
        speech,
        noise,
        bin_hz: spectra[1].bin_hz,
    })
}

/// The active speech level over the hum's (its lines that stand out), in dB. The hum spectrum
/// is the Hann-windowed |X|^2 of `HUM_BLOCK` samples: a line of mean square P peaks at
/// P N^2 / 8 in its bin.
fn hum_snr_db(active_power: Option<f64>, hum: Option<spectrum::Hum>) -> Option<f64> {
    let n = super::features::HUM_BLOCK as f64;
    let hum_power = hum?.power * 8.0 / (n * n);
    let speech = active_power?;
    (hum_power > 0.0).then(|| round2(level_db(speech) - level_db(hum_power)))
}

/// The telephone band a listener hears through a handset: ITU-T P.830's IRS receive
/// characteristic passes about 300-3400 Hz (and PESQ filters with it); what lies below, rumble,
/// brown noise, mains hum, is heard little or not at all.
const PHONE_BAND_HZ: (f64, f64) = (300.0, 3400.0);
/// The band's correction is bounded: a noise all outside the band is still not silence.
const PHONE_BAND_MAX_DB: f64 = 20.0;

/// How much more of the speech's power than of the noise's lies in the telephone band, in dB:
/// the SNR a listener hears is the SNR plus this. Summed over channels' spectra for a mix.
fn phone_band_db(spectra: &[&Spectra]) -> Option<f64> {
    let first = spectra.first()?;
    let bins = first.speech.len();
    let mut speech = vec![0.0; bins];
    let mut noise = vec![0.0; bins];
    for s in spectra {
        speech.iter_mut().zip(&s.speech).for_each(|(a, x)| *a += x);
        noise
            .iter_mut()
            .zip(s.noise.as_ref()?)
            .for_each(|(a, x)| *a += x);
    }
    let in_band = |i: usize| {
        let hz = i as f64 * first.bin_hz;
        hz >= PHONE_BAND_HZ.0 && hz <= PHONE_BAND_HZ.1
    };
    let share = |p: &[f64]| {
        let all: f64 = p.iter().sum();
        let band: f64 = p
            .iter()
            .enumerate()
            .filter(|(i, _)| in_band(*i))
            .map(|(_, x)| x)
            .sum();
        (all > 0.0).then(|| band / all)
    };
    let (s, n) = (share(&speech)?, share(&noise)?);
    if s <= 0.0 {
        return None;
    }
    let db = 10.0 * (s / n.max(1e-12)).log10();
    Some(db.min(PHONE_BAND_MAX_DB))
}

/// Mains hum, looked for in the quiet blocks' spectrum: those within 3 dB of the noise floor,
/// or in a call with few pauses the quietest third of the blocks (hum is steady and speech is
/// not, so the quietest blocks show the hum's lines with the least speech around them).
fn hum_of(hum: &LevelSpectra, noise_db: f64, margin_db: f64) -> Option<spectrum::Hum> {
    let (quiet, n) = hum.mean_between(f64::NEG_INFINITY, noise_db + 3.0);
    let (spectrum, n) = if n >= 1 {
        (quiet, n)
    } else {
        hum.mean_between(f64::NEG_INFINITY, hum.quantile_db(1.0 / 3.0, 2))
    };
    if n == 0 {
        return None;
    }
    spectrum::detect_hum(&spectrum, hum.bin_hz, HUM_MAX_HZ, margin_db)
}

fn clarity(spectrum: &Option<(Vec<f64>, f64)>, nyquist: f64, t: &Thresholds) -> Clarity {
    let bandwidth = spectrum
        .as_ref()
        .and_then(|(p, bin_hz)| spectrum::rolloff_hz(p, *bin_hz, ROLLOFF_SHARE));
    let limit = t.muffled_below_hz.min(0.45 * nyquist);
    Clarity {
        bandwidth_hz: bandwidth.map(|b| b.round()),
        muffled: bandwidth.is_some_and(|b| b < limit),
    }
}

fn peak_dbfs(peak: f32) -> f64 {
    if peak > 0.0 {
        (20.0 * (peak as f64).log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

fn assemble(
    b: Basics,
    peak: f32,
    dc: f64,
    noise_level: Noise,
    clarity: Clarity,
    clip: Clipping,
    drop: Dropouts,
) -> Metrics {
    Metrics {
        speech: b.speech,
        silence: b.silence,
        level: Level {
            active_speech_dbfs: b.active_power.map(level_db),
            peak_dbfs: peak_dbfs(peak),
            dc_offset: dc,
            envelope: b.envelope,
        },
        noise: noise_level,
        clarity,
        clipping: clip,
        dropouts: drop,
        hold: b.hold,
    }
}

/// All measurements of one channel.
#[allow(clippy::too_many_arguments)]
pub fn channel(
    f: &ChannelFeatures,
    powers: &[f32],
    seg: &segments::Segmentation,
    holds: &Segments,
    echoed: &Segments,
    timing: Timing,
    cfg: &AnalysisConfig,
    t: &Thresholds,
    with_segments: bool,
) -> ChannelResult {
    let b = basics(
        powers,
        &|j| f.halves[j].band(),
        &seg.segments,
        holds,
        echoed,
        &seg.noise,
        timing,
        cfg,
        with_segments,
    );
    let noise_db = level_db(b.noise_power);
    let gate_db = noise_db + cfg.vad.energy_margin_db.max(2.0 * seg.noise.spread_db);
    let long_term = if seg.segments.is_empty() {
        None
    } else {
        spectra_of(&f.spectra, noise_db, gate_db)
    };
    let spectrum = long_term
        .as_ref()
        .map(|s| speech_spectrum(&s.speech, s.bin_hz));
    let band_db = long_term.as_ref().and_then(|s| phone_band_db(&[s]));
    // Music everywhere leaves no noise to measure (nor hum to find above it: a bass line is
    // not mains hum).
    let unmeasured = !b.noise_measured && !holds.is_empty();
    let hum = hum_of(&f.hum, noise_db, t.hum_margin_db).filter(|_| !unmeasured);
    let (clipped, events) = clipping(&f.clip, f.peak);
    // A lost packet cuts speech off: its neighbours hold speech within P.56's margin of the
    // active level (a part-zeroed half holds half of that at least).
    let cut_power = b.active_power.map_or(f64::INFINITY, |a| {
        0.5 * a * 10f64.powf(-segments::P56_MARGIN_DB / 10.0)
    });
    let (drop_count, drop_samples) =
        dropouts(&f.zeros, powers, f.half_len, &seg.segments, cut_power);
    let dropout_s = drop_samples as f64 / f.rate as f64;
    let talk = b.speech.talk_time_s;
    let clarity = clarity(&spectrum, f.rate as f64 / 2.0, t);
    let noise = Noise {
        floor_dbfs: (!unmeasured).then_some(noise_db),
        snr_db: b.snr_db.map(round2),
        phone_snr_db: b.snr_db.zip(band_db).map(|(s, d)| round2(s + d)),
        speech_snr_db: speech_snr_db(f).map(round2),
        hum_hz: hum.map(|h| h.hz),
        hum_snr_db: hum_snr_db(b.active_power, hum),
    };
    let metrics = assemble(
        b,
        f.peak,
        if f.samples > 0 {
            f.sum / f.samples as f64
        } else {
            0.0
        },
        noise,
        clarity,
        Clipping {
            ratio: ratio(clipped as f64, f.samples as f64),
            events,
        },
        Dropouts {
            count: drop_count,
            ratio: ratio(dropout_s, talk),
        },
    );
    ChannelResult {
        metrics,
        segments: seg.segments.clone(),
        holds: holds.clone(),
        samples: f.samples,
        clipped,
        dropout_s,
        speech_spectrum: spectrum,
        long_term,
        hum,
    }
}

/// Speech frames louder than this under the loud end of the speech (its 95th percentile) show
/// their floor: in softer ones, the voice's own valleys fall under the noise of any call.
const SPEECH_FLOOR_RANGE_DB: f64 = 15.0;
/// The least number of speech spectra the SNR inside speech is measured on (about 1.5 s of
/// loud speech, at about 6 a second).
const SPEECH_FLOOR_MIN: u32 = 8;

/// A clean voice's own floor, read as `features::SpeechFloor` reads noise: its valleys stand
/// this far (dB) under its power (the `scripts/score-v2` dev half's clean prompts read 35.7 to
/// 41 dB, median 37.3).
const VOICE_VALLEYS_DB: f64 = 37.0;

/// The SNR inside speech (`features::SpeechFloor`): the mean, over the loud speech frames, of
/// each one's power over its spectral floor, less the voice's own valleys' share of that floor
/// (powers add); `None` with too little speech, or no floor beyond the voice's own.
fn speech_snr_db(f: &ChannelFeatures) -> Option<f64> {
    let top = f.spectra[1].quantile_db(0.95, 1);
    if !top.is_finite() {
        return None;
    }
    let from = LevelSpectra::bucket(top - SPEECH_FLOOR_RANGE_DB);
    let (sum, n) = f.speech_floor[from..]
        .iter()
        .fold((0.0, 0), |(s, n), &(x, k)| (s + x, n + k));
    if n < SPEECH_FLOOR_MIN {
        return None;
    }
    let floor = 10f64.powf(-sum / n as f64 / 10.0) - 10f64.powf(-VOICE_VALLEYS_DB / 10.0);
    (floor > 0.0).then(|| -10.0 * floor.log10())
}

/// The whole recording's measurements from its channels: speech is "anyone speaks", levels and
/// noise are over the power sum of the channels (what a listener to both legs hears).
pub fn mix(
    features: &[ChannelFeatures],
    channels: &[ChannelResult],
    echoed: &Segments,
    timing: Timing,
    cfg: &AnalysisConfig,
    t: &Thresholds,
    with_segments: bool,
) -> Metrics {
    let halves = features.iter().map(|f| f.halves.len()).min().unwrap_or(0);
    let powers: Vec<f32> = (0..halves)
        .map(|j| features.iter().map(|f| f.halves[j].power()).sum())
        .collect();
    let all: Vec<&Segments> = channels.iter().map(|c| &c.segments).collect();
    let union = segments::union(&all);
    let holds: Vec<&Segments> = channels.iter().map(|c| &c.holds).collect();
    let holds = segments::union(&holds);
    let estimate = noise::noise_floor(&powers);
    let band = |j: usize| features.iter().map(|f| f.halves[j].band()).sum();
    let b = Basics {
        // Each leg carries its own level over time; the mix's would be a third copy to store.
        envelope: None,
        ..basics(
            &powers,
            &band,
            &union,
            &holds,
            echoed,
            &estimate,
            timing,
            cfg,
            with_segments,
        )
    };
    let noise_db = level_db(b.noise_power);
    let samples: u64 = channels.iter().map(|c| c.samples).sum();
    let clipped: u64 = channels.iter().map(|c| c.clipped).sum();
    let talk: f64 = channels.iter().map(|c| c.metrics.speech.talk_time_s).sum();
    let mut summed: Option<(Vec<f64>, f64)> = None;
    for (p, bin_hz) in channels.iter().filter_map(|c| c.speech_spectrum.as_ref()) {
        match &mut summed {
            Some((acc, _)) => acc.iter_mut().zip(p).for_each(|(a, x)| *a += x),
            None => summed = Some((p.clone(), *bin_hz)),
        }
    }
    let hum = channels
        .iter()
        .filter_map(|c| c.hum)
        .max_by(|a, b| a.excess_db.total_cmp(&b.excess_db));
    let nyquist = features.first().map_or(4000.0, |f| f.rate as f64 / 2.0);
    let dc = channels
        .iter()
        .map(|c| c.metrics.level.dc_offset)
        .sum::<f64>()
        / channels.len().max(1) as f64;
    let peak = features.iter().map(|f| f.peak).fold(0.0, f32::max);
    let long_term: Vec<&Spectra> = channels
        .iter()
        .filter_map(|c| c.long_term.as_ref())
        .collect();
    let band_db = phone_band_db(&long_term);
    let noise = Noise {
        floor_dbfs: (b.noise_measured || holds.is_empty()).then_some(noise_db),
        snr_db: b.snr_db.map(round2),
        phone_snr_db: b.snr_db.zip(band_db).map(|(s, d)| round2(s + d)),
        // The mix is as noisy inside speech as its noisiest leg.
        speech_snr_db: channels
            .iter()
            .filter_map(|c| c.metrics.noise.speech_snr_db)
            .min_by(f64::total_cmp),
        hum_hz: hum.map(|h| h.hz),
        hum_snr_db: hum_snr_db(b.active_power, hum),
    };
    assemble(
        b,
        peak,
        dc,
        noise,
        clarity(&summed, nyquist, t),
        Clipping {
            ratio: ratio(clipped as f64, samples as f64),
            events: channels.iter().map(|c| c.metrics.clipping.events).sum(),
        },
        Dropouts {
            count: channels.iter().map(|c| c.metrics.dropouts.count).sum(),
            ratio: ratio(channels.iter().map(|c| c.dropout_s).sum(), talk),
        },
    )
}

/// Talk shares, overtalk, interruptions and non-talk time between the channels.
pub fn conversation(
    channels: &[ChannelResult],
    roles: &[String],
    timing: Timing,
    cfg: &AnalysisConfig,
) -> Conversation {
    let t = |h: usize| (h as f64 * timing.half_s).min(timing.duration_s);
    let talk_total: f64 = channels.iter().map(|c| c.metrics.speech.talk_time_s).sum();
    let mut talk_ratio = BTreeMap::new();
    let mut interruptions = BTreeMap::new();
    for (c, role) in channels.iter().zip(roles) {
        talk_ratio.insert(
            role.clone(),
            ratio(c.metrics.speech.talk_time_s, talk_total),
        );
        interruptions.insert(role.clone(), 0u32);
    }
    let all: Vec<&Segments> = channels.iter().map(|c| &c.segments).collect();
    let overlaps = segments::overlaps(&all);
    let overtalk_s: f64 = overlaps.iter().map(|&(s, e)| t(e) - t(s)).sum::<f64>() + 0.0;
    let mut overtalk_count = 0;
    for &(s, e) in &overlaps {
        if t(e) - t(s) <= cfg.overtalk_min_s {
            continue;
        }
        overtalk_count += 1;
        // The side whose turn began last, while another was already speaking, interrupted.
        let starts: Vec<(usize, usize)> = channels
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.segments
                    .iter()
                    .find(|&&(a, b)| a <= s && s < b)
                    .map(|&(a, _)| (a, i))
            })
            .collect();
        if let Some(&(latest, who)) = starts.iter().max() {
            let tied = starts.iter().filter(|&&(a, _)| a == latest).count() > 1;
            if !tied {
                *interruptions.entry(roles[who].clone()).or_insert(0) += 1;
            }
        }
    }
    let union = segments::union(&all);
    let non_talk_s: f64 = union
        .windows(2)
        .map(|w| t(w[1].0) - t(w[0].1))
        .filter(|&g| g > cfg.non_talk_min_s)
        .sum::<f64>()
        + 0.0;
    Conversation {
        lost_legs: Vec::new(),
        echoes: Vec::new(),
        talk_ratio,
        overtalk_s: round2(overtalk_s),
        overtalk_count,
        interruptions,
        non_talk_s: round2(non_talk_s),
        non_talk_ratio: ratio(non_talk_s, timing.duration_s),
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_the_mean_level_of_each_step_and_never_too_many_points() {
        // 1 s at -20 dBFS, then 1 s of digital silence, in 5 ms halves: steps of 0.1 s.
        let mut powers = vec![0.01f32; 200];
        powers.extend(vec![0.0f32; 200]);
        let e = envelope(&powers, 0.005);
        assert_eq!(e.step_s, 0.1);
        assert_eq!(e.dbfs.len(), 20);
        assert!(e.dbfs[..10].iter().all(|&d| d == -20));
        assert!(e.dbfs[10..].iter().all(|&d| d == -120));
        // Two hours: at most MAX_POINTS, the last step partial.
        let long = vec![0.001f32; 2 * 3600 * 200 + 7];
        let e = envelope(&long, 0.005);
        assert!(e.dbfs.len() <= Envelope::MAX_POINTS, "{}", e.dbfs.len());
        assert!(e.step_s * e.dbfs.len() as f64 >= 7200.0);
        assert!(e.dbfs.iter().all(|&d| d == -30));
    }

    fn z(index: u32, lead: u16, trail: u16) -> Zeros {
        Zeros { index, lead, trail }
    }

    #[test]
    fn noise_that_swells_at_low_frequencies_is_measured_whole_and_missed_speech_is_not() {
        // 400 halves of noise at 1e-4 whose full band swells 8 dB for 100 ms in every 500 ms
        // (rumble), its speech band steady at 1e-5; and a 100 ms word the detector missed, loud
        // in both bands. No segments.
        let swell = |j: usize| j % 50 < 10;
        let word = |j: usize| (300..310).contains(&j);
        let powers: Vec<f32> = (0..400)
            .map(|j| match (word(j), swell(j)) {
                (true, _) => 1e-2,
                (false, true) => 6.3e-4,
                _ => 1e-4,
            })
            .collect();
        let band = |j: usize| if word(j) { 1e-3 } else { 1e-5 };
        let limits =
            |at: &dyn Fn(usize) -> f32| 10f64.powf(noise::noise_floor_of(400, at).limit_db / 10.0);
        let limit = limits(&|j| powers[j]);
        let band_limit = limits(&band);
        let (noise, count) = measured_noise(&powers, &band, &vec![], (limit, band_limit)).unwrap();
        // The swells belong to the noise (the band says so): the mean of every half but the
        // word's and the two on each side of it that its 50 ms smoothing reaches.
        let swelling = powers
            .iter()
            .enumerate()
            .filter(|&(j, _)| !(298..312).contains(&j))
            .map(|(_, &p)| p as f64)
            .sum::<f64>()
            / 386.0;
        assert_eq!(count, 386);
        assert!(
            (noise / swelling - 1.0).abs() < 1e-6,
            "{noise} vs {swelling}"
        );
        // Judged on the full band alone, the swells would go too, and the noise read low.
        let full_only = measured_noise(&powers, &band, &vec![], (limit, 0.0)).unwrap();
        assert!(full_only.0 < 0.8 * swelling, "{full_only:?}");
    }

    #[test]
    fn a_zeroed_packet_inside_speech_is_one_dropout() {
        // 80-sample halves; a 160-sample zero run from sample 40 of half 10 to sample 40 of half 12.
        let mut powers = vec![0.01f32; 40];
        powers[11] = 0.0;
        let zeros = vec![z(10, 0, 40), z(11, 80, 80), z(12, 40, 0)];
        assert_eq!(
            dropouts(&zeros, &powers, 80, &vec![(0, 40)], 0.001),
            (1, 160)
        );
        // Outside speech it is a pause, not a dropout.
        assert_eq!(dropouts(&zeros, &powers, 80, &vec![(20, 40)], 0.001).0, 0);
        // Speech that fades out before the silence is a pause too.
        powers[10] = 1e-6;
        assert_eq!(dropouts(&zeros, &powers, 80, &vec![(0, 40)], 0.001).0, 0);
        // Straddling two halves without a whole silent half.
        let powers = vec![0.01f32; 40];
        let zeros = vec![z(5, 0, 50), z(6, 50, 0)];
        assert_eq!(
            dropouts(&zeros, &powers, 80, &vec![(0, 40)], 0.001),
            (1, 100)
        );
    }

    #[test]
    fn flat_tops_at_the_extreme_are_clipping_and_a_lone_peak_is_not() {
        let mut hist = ClipHistogram {
            samples: vec![0; 3500],
            runs: vec![0; 3500],
        };
        let top = ClipHistogram::bin(1.0);
        hist.samples[top] = 1;
        assert_eq!(clipping(&hist, 1.0), (0, 0));
        hist.samples[top] = 50;
        hist.runs[top] = 10;
        assert_eq!(clipping(&hist, 1.0), (50, 10));
    }
}
