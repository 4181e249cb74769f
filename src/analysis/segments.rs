//! Pass two, per channel: the noise floor and the speech segments, from the kept features.
//!
//! The WebRTC VAD alone calls nearly everything speech in loud noise, so a 10 ms half is speech
//! only when the VAD says so *and* its energy (50 ms smoothed) stands out of the noise floor by
//! more than the noise's own spread, in either of two views (full band without DC, or the
//! pre-emphasised speech band). The noise floor is the peak at the quiet end of the level
//! histogram. Raw decisions are then smoothed: short gaps bridged, bursts with too little
//! evidence dropped, and each edge moved to where the speech is within P.56's margin of its
//! active level, as far as it can be seen above the noise: in the full band, the speech band, or
//! (ends only, where it sees speech better) the voicing band, where a decaying voice lasts
//! longest; and across a stop closure to the syllable, burst or fricative after it, when that
//! stands well out of the noise. Every strength test judges a view's excess by that view's peak
//! gain, so a tail can be under-stated but never over-stated: only noise can push an edge late,
//! and each gate holds noise to its own spread.

use crate::config::VadConfig;

use super::features::{Half, HALVES_PER_VAD, PRE_EMPHASIS};
use super::track::{self, Track};

/// Level of digital silence: nothing is quieter than this.
pub const FLOOR_DB: f64 = -120.0;
const FLOOR_POWER: f64 = 1e-12;

/// Speech segments as half indices `[start, end)`.
pub type Segments = Vec<(usize, usize)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    pub noise: NoiseEstimate,
    pub segments: Segments,
}

/// Halves on each side averaged into the detection statistic (50 ms in all): long enough to
/// steady the noise's level (its spread shrinks by the square root of five), short against a
/// syllable.
pub const SMOOTH_HALVES: usize = 2;

/// The moving average of the half powers over `2 * SMOOTH_HALVES + 1` halves.
pub fn smooth(powers: &[f32]) -> Vec<f32> {
    moving_average(powers, SMOOTH_HALVES)
}

/// The centred moving average over `2 * reach + 1` halves (fewer at the ends).
fn moving_average(powers: &[f32], reach: usize) -> Vec<f32> {
    moving_average_of(powers.len(), reach, |j| powers[j])
}

/// `moving_average` of the `n` values `at(0..n)`.
fn moving_average_of(n: usize, reach: usize, at: impl Fn(usize) -> f32) -> Vec<f32> {
    MovingAverage::new(n, reach, at).collect()
}

/// The centred moving average over `2 * reach + 1` of the `n` values `at(0..n)`, one at a
/// time: for statistics of a smoothed series that need not hold it (on a 4-hour call, each
/// series of halves is 11 MB).
pub(crate) struct MovingAverage<F> {
    at: F,
    n: usize,
    reach: usize,
    j: usize,
    sum: f64,
    /// The window is `at(lo..hi)`.
    lo: usize,
    hi: usize,
}

impl<F: Fn(usize) -> f32> MovingAverage<F> {
    pub(crate) fn new(n: usize, reach: usize, at: F) -> Self {
        MovingAverage {
            at,
            n,
            reach,
            j: 0,
            sum: 0.0,
            lo: 0,
            hi: 0,
        }
    }
}

impl<F: Fn(usize) -> f32> Iterator for MovingAverage<F> {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        if self.j >= self.n {
            return None;
        }
        let want_hi = (self.j + self.reach + 1).min(self.n);
        while self.hi < want_hi {
            self.sum += (self.at)(self.hi) as f64;
            self.hi += 1;
        }
        let want_lo = self.j.saturating_sub(self.reach);
        while self.lo < want_lo {
            self.sum -= (self.at)(self.lo) as f64;
            self.lo += 1;
        }
        self.j += 1;
        Some((self.sum.max(0.0) / (self.hi - self.lo) as f64) as f32)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n - self.j;
        (left, Some(left))
    }
}

pub fn level_db(power: f64) -> f64 {
    10.0 * power.max(FLOOR_POWER).log10()
}

/// `level_db` to within 0.05 dB, for binning (0.25 dB bins): log2 from the float's exponent and a cubic on
/// its mantissa (the libm call would be most of a histogram pass).
#[inline]
pub fn fast_level_db(power: f32) -> f64 {
    let p = power.max(FLOOR_POWER as f32);
    let bits = p.to_bits();
    let exponent = ((bits >> 23) & 0xFF) as i32 - 127;
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000) - 1.0; // [0, 1)
                                                                      // log2(1 + m) by a cubic through its ends (max error about 0.013).
    let log2 = m * (std::f32::consts::LOG2_E + m * (-0.721_347_5 + m * 0.278_652_4));
    (10.0 * std::f64::consts::LOG10_2) * (exponent as f32 + log2) as f64
}

/// P.56's margin: speech is active while within this many dB of its active level.
pub const P56_MARGIN_DB: f64 = 15.9;

/// The noise as pass two sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseEstimate {
    /// Mean power of the noise-like halves.
    pub power: f64,
    /// Spread (dB) of the noise level from half to half, from the quiet side of its peak.
    pub spread_db: f64,
    /// Halves louder than this are not noise, whatever else says so.
    pub limit_db: f64,
}

/// Estimates the noise from the distribution of half levels. Noise-only halves pile up in a
/// peak at the low end of the distribution; speech only adds power, so the quiet side of that
/// peak is pure noise and gives its spread. The noise power is the mean over the peak (up to
/// two spreads above it), which is the mean noise power for any noise, steady or not.
pub fn noise_floor(powers: &[f32]) -> NoiseEstimate {
    noise_floor_of(powers.len(), |j| powers[j])
}

/// `noise_floor` of the `n` powers `at(0..n)`.
pub(crate) fn noise_floor_of(n: usize, at: impl Fn(usize) -> f32) -> NoiseEstimate {
    if n == 0 {
        return NoiseEstimate {
            power: FLOOR_POWER,
            spread_db: 0.0,
            limit_db: FLOOR_DB,
        };
    }
    let (mode, spread) = Levels::of((0..n).map(&at)).noise_peak();
    let top = Levels::level(mode) + 2.0 * spread + Levels::STEP;
    let limit = 10f64.powf(top / 10.0);
    let (sum, count) = (0..n)
        .map(|j| at(j) as f64)
        .filter(|&p| p <= limit)
        .fold((0.0, 0u64), |(s, c), p| (s + p, c + 1));
    let power = if count > 0 {
        sum / count as f64
    } else {
        10f64.powf(Levels::level(mode) / 10.0)
    };
    NoiseEstimate {
        power: power.max(FLOOR_POWER),
        spread_db: spread,
        limit_db: Levels::limit_db(mode, spread),
    }
}

/// `noise_floor(powers).spread_db`, in one pass that keeps none of them.
fn noise_spread(powers: impl Iterator<Item = f32>) -> f64 {
    let levels = Levels::of(powers);
    if levels.n == 0 {
        return 0.0;
    }
    levels.noise_peak().1
}

/// `noise_floor_of(n, at).limit_db`, without the pass that measures the noise's power.
pub(crate) fn noise_limit_db(n: usize, at: impl Fn(usize) -> f32) -> f64 {
    if n == 0 {
        return FLOOR_DB;
    }
    let (mode, spread) = Levels::of((0..n).map(at)).noise_peak();
    Levels::limit_db(mode, spread)
}

/// The distribution of half levels, in 0.25 dB bins from `FLOOR_DB` to +20 dBFS.
struct Levels {
    hist: Vec<f64>,
    n: usize,
}

impl Levels {
    const STEP: f64 = 0.25;
    const BINS: usize = ((20.0 - FLOOR_DB) / Self::STEP) as usize + 1;

    fn of(powers: impl Iterator<Item = f32>) -> Levels {
        let mut hist = vec![0f64; Self::BINS];
        let mut n = 0;
        for p in powers {
            hist[Self::bin(p)] += 1.0;
            n += 1;
        }
        Levels { hist, n }
    }

    fn bin(p: f32) -> usize {
        (((fast_level_db(p) - FLOOR_DB) / Self::STEP).max(0.0) as usize).min(Self::BINS - 1)
    }

    /// The level (dBFS) at the centre of bin `b`.
    fn level(b: usize) -> f64 {
        FLOOR_DB + (b as f64 + 0.5) * Self::STEP
    }

    /// Over this level (dBFS), a half is not noise: three spreads and a decibel over the peak.
    fn limit_db(mode: usize, spread: f64) -> f64 {
        Self::level(mode) + 3.0 * spread + 1.0
    }

    /// The noise peak's bin and its spread (dB); the distribution holds at least one level.
    fn noise_peak(&self) -> (usize, f64) {
        let (hist, n, bins) = (&self.hist, self.n, Self::BINS);
        // The noise peak is the quiet end's: search up to 3 dB above the 10th percentile (and
        // never past the median), so that speech's own pile of levels in a call with few pauses
        // is not taken for the noise.
        let percentile = |q: f64| {
            let target = (q * n as f64).ceil().max(1.0);
            let mut acc = 0.0;
            hist.iter()
                .position(|&c| {
                    acc += c;
                    acc >= target
                })
                .unwrap_or(bins - 1)
        };
        let search_top = percentile(0.5).min(percentile(0.1) + (3.0 / Self::STEP) as usize);
        // Smooth over +-0.5 dB so the peak is not a single lucky bin (a 1.25 dB box, whose own
        // width is taken out of the measured spread below).
        const KERNEL_SD: f64 = 0.36;
        let smooth: Vec<f64> = (0..bins)
            .map(|b| {
                let lo = b.saturating_sub(2);
                let hi = (b + 2).min(bins - 1);
                hist[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64
            })
            .collect();
        let (mode, peak) =
            smooth[..=search_top]
                .iter()
                .enumerate()
                .fold(
                    (0, -1.0),
                    |best, (b, &c)| if c > best.1 { (b, c) } else { best },
                );
        // Quiet-side width at exp(-1/2) of the peak: one standard deviation of a normal shape.
        let target = 0.6065 * peak;
        let mut b = mode;
        while b > 0 && smooth[b] > target {
            b -= 1;
        }
        // Interpolate the crossing between bins b and b + 1.
        let above = smooth[b + 1].max(target);
        let frac = if above > smooth[b] {
            (above - target) / (above - smooth[b])
        } else {
            0.0
        };
        let width = if b < mode {
            ((mode - b - 1) as f64 + frac) * Self::STEP
        } else {
            0.0
        };
        let spread = (width * width - KERNEL_SD * KERNEL_SD)
            .max(0.0)
            .sqrt()
            .clamp(0.2, 8.0);
        (mode, spread)
    }
}

/// Finds the speech segments of one channel from its kept halves; their full-band powers
/// (`Half::power`) give the noise as measured. `vad` holds one decision per
/// `HALVES_PER_VAD` halves. Music is not noise, and is speech only where a voice stands out of
/// it (`music::over_music`).
pub fn segment(
    halves: &[Half],
    vad: &[bool],
    half_s: f64,
    cfg: &VadConfig,
    music: &super::music::Music,
) -> Segmentation {
    let n = halves.len();
    let ac = |j: usize| halves[j].ac();
    let low = |j: usize| halves[j].low();
    // Two views of the noise: full band (where voiced speech has its power, so white noise
    // hides it least) and speech band (pre-emphasised, where rumble and pink noise's slow
    // wander vanish). Each view's gates stand above its noise by more than its own spread, so
    // speech counts when it stands out in either. A third, the voicing band, only follows
    // edges (see `Refine`).
    let full = View::new(n, ac, cfg);
    let measured = if music.spans.is_empty() {
        noise_floor_of(n, |j| halves[j].power())
    } else {
        let rest: Vec<f32> = outside(&music.spans, 0..n)
            .map(|j| halves[j].power())
            .collect();
        noise_floor_of(rest.len(), |j| rest[j])
    };
    let emph = View::new(n, |j| halves[j].band(), cfg);
    let voicing = View::new(n, low, cfg);
    // The spreads of the 100 ms means that look past an edge for a weak tail.
    let tail_spread = noise_spread(MovingAverage::new(n, TAIL_WINDOW / 2, |j| {
        full.level_over_floor(j, ac(j))
    }));
    let low_tail_spread = noise_spread(MovingAverage::new(n, TAIL_WINDOW / 2, |j| {
        voicing.level_over_floor(j, low(j))
    }));
    let vad_at = |j: usize| {
        vad.get(j / HALVES_PER_VAD)
            .or(vad.last())
            .copied()
            .unwrap_or(false)
    };
    // Raw decisions, as runs.
    let mut raw: Segments = Vec::new();
    let mut start = None;
    // The full view alone may not call speech where the speech band sits below its own
    // noise: speech only adds power, so that is a swell of low-frequency noise.
    let speech_band_agrees = |j: usize| emph.above(j, emph.noise.power);
    for j in 0..n {
        let full_says = |t: f64| full.above(j, t) && speech_band_agrees(j);
        let speech = (vad_at(j) && (full_says(full.gate) || emph.above(j, emph.gate)))
            || full_says(full.strong)
            || emph.above(j, emph.strong);
        match (speech, start) {
            (true, None) => start = Some(j),
            (false, Some(s)) => {
                raw.push((s, j));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        raw.push((s, n));
    }

    let halves_of = |ms: u32| ((ms as f64 / 1000.0) / half_s).round() as usize;
    // Bridge short gaps, then keep what holds enough speech evidence: a few scattered noise
    // blips bridged together are still not speech, and neither is a click.
    let mut segments = bridge(&raw, halves_of(cfg.min_silence_ms));
    let min_evidence = halves_of(cfg.min_speech_ms).max(1);
    segments.retain(|&(s, e)| {
        let from = raw.partition_point(|r| r.1 <= s);
        let evidence: usize = raw[from..]
            .iter()
            .take_while(|r| r.0 < e)
            .map(|r| r.1.min(e) - r.0.max(s))
            .sum();
        evidence >= min_evidence
    });

    // Edges: where the speech itself (noise removed) is within P.56's margin of the active
    // speech level, as far as it can be seen above the noise. So the edges do not move with
    // the noise: a decay is followed as deep as the speech is still active, not as deep as the
    // noise happens to allow. Judged on the full band without its sub-voice wander (`ac`), so
    // slow noise swells are not taken for speech. The active level comes first from the
    // confident segments, then once more from the refined ones (in noise the confident ones
    // hold only the loud parts).
    // The voicing band follows edges only where it sees speech better than the full band: its
    // share of the speech's power (in the confident segments) over its share of the noise's.
    // In white noise that is about 5 (a tenth of the noise, half of a voice); in pink noise or
    // rumble it is near 1, and the band, with a tenth of the full band's degrees of freedom,
    // would only add noise to the edges.
    let excess = |at: &dyn Fn(usize) -> f32, noise: f64| {
        mean_over(|j| at(j) as f64, &segments).map_or(0.0, |m| (m - noise).max(0.0))
    };
    let speech_share =
        excess(&low, voicing.noise.power) / excess(&ac, full.noise.power).max(FLOOR_POWER);
    let noise_share = voicing.noise.power / full.noise.power;
    let use_voicing = speech_share >= VOICING_ADVANTAGE * noise_share;
    let visible =
        |noise: f64, spread: f64| noise * 10f64.powf(cfg.edge_margin_db.max(2.0 * spread) / 10.0);
    let refine_cfg = Refine {
        halves,
        tail_visible: visible(full.noise.power, tail_spread),
        low_tail_visible: visible(voicing.noise.power, low_tail_spread),
        full: &full,
        emph: &emph,
        voicing: use_voicing.then_some(&voicing),
        min_run: halves_of(cfg.min_speech_ms).max(1),
        gap: halves_of(cfg.min_silence_ms),
    };
    let hangover = ((P56_HANGOVER_S / half_s).round() as usize).max(1);
    let margin = 10f64.powf(-P56_MARGIN_DB / 10.0);
    let segments = drop_faint_phrases(
        segments,
        &[&full, &emph],
        &[&ac, &|j| halves[j].band()],
        hangover,
        margin,
        halves_of(PHRASE_GAP_MS),
    );
    let mut refined = segments.clone();
    let phrases = phrases(&segments, halves_of(PHRASE_GAP_MS));
    for _ in 0..2 {
        let activity = p56_activity(&refined, hangover, n);
        let excess = |j: usize| ac(j) as f64 - full.noise_at(j);
        let Some(active) = active_power(excess, &activity) else {
            break;
        };
        // Each phrase's edges are judged against its own level: a quieter last phrase still
        // decays to 15.9 dB under its own level, not under the call's.
        let local: Vec<f64> = phrases
            .iter()
            .map(|&(a, b)| {
                let within: Segments = activity
                    .iter()
                    .map(|&(s, e)| (s.max(segments[a].0), e.min(segments[b - 1].1 + hangover)))
                    .filter(|&(s, e)| e > s)
                    .collect();
                active_power(excess, &within).unwrap_or(active) * margin
            })
            .zip(phrases.iter())
            .flat_map(|(level, &(a, b))| std::iter::repeat_n(level, b - a))
            .collect();
        refined = refine_cfg.apply(&segments, &local, active * margin);
    }
    let segments = refined;
    Segmentation {
        noise: measured,
        segments: super::music::over_music(
            &bridge(&segments, halves_of(cfg.min_silence_ms)),
            music,
            &|j| halves[j].ac(),
        ),
    }
}

/// The halves of `range` outside the sorted spans `spans`.
pub fn outside(
    spans: &Segments,
    range: std::ops::Range<usize>,
) -> impl Iterator<Item = usize> + '_ {
    let mut k = spans.partition_point(|s| s.1 <= range.start);
    range.filter(move |&j| {
        while spans.get(k).is_some_and(|s| s.1 <= j) {
            k += 1;
        }
        spans.get(k).is_none_or(|s| s.0 > j)
    })
}

/// One view of a channel's halves for detection: its noise and its gates.
struct View {
    /// The 50 ms smoothed powers.
    smoothed: Vec<f32>,
    /// The noise at its quietest; `track` says how far it rises above that, moment by moment.
    noise: NoiseEstimate,
    track: Option<Track>,
    /// Spread (dB) of the smoothed level in noise.
    spread_db: f64,
    gate: f64,
    strong: f64,
    visible: f64,
}

impl View {
    /// The view of the `n` half powers `at(0..n)`.
    fn new(n: usize, at: impl Fn(usize) -> f32 + Copy, cfg: &VadConfig) -> View {
        // The level from the raw halves (smoothing would blend weak speech into the noise
        // peak); the spread from the smoothed ones, which are what the gates judge.
        let smoothed = moving_average_of(n, SMOOTH_HALVES, at);
        let noise = noise_floor_of(n, at);
        let spread = noise_spread(smoothed.iter().copied());
        let track = Track::of(n, at);
        let noise_db = level_db(noise.power);
        let margin = cfg.energy_margin_db.max(3.0 * spread);
        let db = |x: f64| 10f64.powf((noise_db + x) / 10.0);
        View {
            smoothed,
            noise,
            track,
            spread_db: spread,
            gate: db(margin),
            // So far above the noise that only a mistaken VAD would call it silence (the VAD
            // misses weak words in noise; the energy alone is then evidence enough).
            strong: db((margin + 4.5).max(6.0)),
            visible: db(cfg.edge_margin_db.max(2.0 * spread)),
        }
    }

    /// Whether the smoothed power at `j` stands above `threshold`, a level relative to the
    /// quietest noise (the noise, a gate), once the noise's rise there is added.
    fn above(&self, j: usize, threshold: f64) -> bool {
        self.smoothed[j] as f64 > threshold * self.gain(j)
    }

    /// The noise floor's rise at `j` over its quietest (a power ratio, 1 in steady noise).
    fn gain(&self, j: usize) -> f64 {
        track::gain(self.track.as_ref(), j)
    }

    /// The noise power at `j`.
    fn noise_at(&self, j: usize) -> f64 {
        self.noise.power * self.gain(j)
    }

    /// The noise's mean rise over `[a, b)`.
    fn gain_over(&self, a: usize, b: usize) -> f64 {
        if self.track.is_none() || b <= a {
            return 1.0;
        }
        (a..b).map(|j| self.gain(j)).sum::<f64>() / (b - a) as f64
    }

    /// `power` at `j` with the noise's rise there taken out.
    fn level_over_floor(&self, j: usize, power: f32) -> f32 {
        (power as f64 / self.gain(j)) as f32
    }
}

/// Mean power over the segments, if they hold any halves.
pub fn mean_power(powers: &[f32], segments: &Segments) -> Option<f64> {
    mean_over(|j| powers[j] as f64, segments)
}

/// Mean of `at` over the segments, if they hold any halves.
fn mean_over(at: impl Fn(usize) -> f64, segments: &Segments) -> Option<f64> {
    let (sum, n) = segments.iter().fold((0.0, 0usize), |(s, n), &(a, b)| {
        (s + (a..b).map(&at).sum::<f64>(), n + b - a)
    });
    (n > 0).then(|| sum / n as f64)
}

/// Mean of `excess` (power less the noise) over the segments: the active speech power.
fn active_power(excess: impl Fn(usize) -> f64, segments: &Segments) -> Option<f64> {
    mean_over(excess, segments).map(|p| p.max(FLOOR_POWER))
}

/// Drops the phrases P.56 would not count, more than its margin under the channel's active
/// level (in the full band), unless they stand out of their noise by the strong gate in some
/// view: such a phrase is a swell of the noise that the VAD and the gates took for speech, and
/// judged against its own level, as edges are, it would only grow. A quiet talker well clear of
/// the noise is kept.
fn drop_faint_phrases(
    segments: Segments,
    views: &[&View],
    powers: &[&dyn Fn(usize) -> f32],
    hangover: usize,
    margin: f64,
    gap: usize,
) -> Segments {
    let n = views[0].smoothed.len();
    let excess = |v: usize, segs: &Segments| {
        let (view, at) = (views[v], powers[v]);
        active_power(|j| at(j) as f64 - view.noise_at(j), segs)
    };
    let Some(call) = excess(0, &p56_activity(&segments, hangover, n)) else {
        return segments;
    };
    let mut kept = Segments::with_capacity(segments.len());
    for (a, b) in phrases(&segments, gap) {
        let own: Segments = segments[a..b].to_vec();
        let faint = excess(0, &own).is_none_or(|level| level < call * margin);
        let stands_out = || {
            (0..views.len()).any(|v| {
                let view = views[v];
                let (s, e) = (own[0].0, own[own.len() - 1].1);
                excess(v, &own).is_some_and(|level| {
                    level >= (view.strong - view.noise.power) * view.gain_over(s, e)
                })
            })
        };
        if !faint || stands_out() {
            kept.extend(own);
        }
    }
    kept
}

/// Pauses at least this long (ms) separate phrases, each with its own active level for its
/// edges: a turn in a conversation or a prompt in a menu.
const PHRASE_GAP_MS: u32 = 500;

/// Coarse segments grouped into phrases, as index ranges `[a, b)` into `segments`.
fn phrases(segments: &Segments, gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, w) in segments.iter().enumerate() {
        match out.last_mut() {
            Some(last) if w.0 < segments[last.1 - 1].1 + gap => last.1 = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

/// Halves in the one-sided window that looks past an edge for a tail too weak to see in
/// 50 ms (100 ms: the noise's spread halves again).
const TAIL_WINDOW: usize = 10;

/// Spreads above its noise the pre-emphasised view must stand, past a pause, to carry an end
/// on to a sound after a stop closure.
const CLOSURE_SPREADS: f64 = 4.0;

/// How far (dB) the speech in one half must stand above the full band's noise to count as a
/// burst in that band alone. The power of 80 or more samples of any Gaussian noise, even one so
/// narrow that a half holds two degrees of freedom (a chi-square with two: exceeding ten times
/// its mean has probability e^-10, 5e-5), stays under it: fewer than one end in 500 is carried on
/// by noise across the 300 ms looked past.
const LONE_BURST_DB: f64 = 10.0;

/// How much better (as a ratio of speech-to-noise shares, 3 dB) the voicing band must see
/// speech than the full band for edges to follow it.
const VOICING_ADVANTAGE: f64 = 2.0;

/// Inactive halves that cut an edge island off from its segment (50 ms).
const ISLAND_GAP: usize = 5;

/// Halves in each of the two windows that measure a decay's rate at an end.
const DECAY_HALVES: usize = 5;
/// Decay rates (dB per 10 ms) an end is extrapolated with: a slow vowel fade to an abrupt stop.
const DECAY_SLOPES_DB: (f64, f64) = (0.5, 3.0);
/// The most an end is carried past what can be seen (80 ms).
const MAX_UNSEEN_HALVES: usize = 8;

/// Moves segment edges to where speech is active, and adds the active runs next to speech.
struct Refine<'a> {
    halves: &'a [Half],
    tail_visible: f64,
    low_tail_visible: f64,
    full: &'a View,
    emph: &'a View,
    /// The voicing band, where it sees speech better than the full band.
    voicing: Option<&'a View>,
    min_run: usize,
    gap: usize,
}

impl Refine<'_> {
    fn ac(&self, j: usize) -> f64 {
        self.halves[j].ac() as f64
    }

    fn low(&self, j: usize) -> f64 {
        self.halves[j].low() as f64
    }

    /// Halves of decay past `e` that the noise hides: where the full band's visibility, not the
    /// strength test, ended the segment, the speech was still `depth` dB over P.56's margin when
    /// it sank under the noise; at the rate it was decaying over its last 100 ms it reaches the
    /// margin that many halves later.
    fn unseen_decay(&self, s: usize, e: usize, relative: f64) -> usize {
        let seen =
            (self.full.visible - self.full.noise.power) * self.full.gain(e.saturating_sub(1));
        if seen <= relative || e < s + 2 * DECAY_HALVES {
            return 0;
        }
        let depth = level_db(seen) - level_db(relative);
        let excess = |a: usize, b: usize| {
            (a..b)
                .map(|j| self.ac(j) - self.full.noise_at(j))
                .sum::<f64>()
                / (b - a) as f64
        };
        let (earlier, later) = (
            excess(e - 2 * DECAY_HALVES, e - DECAY_HALVES),
            excess(e - DECAY_HALVES, e),
        );
        if later <= 0.0 || earlier <= later {
            return 0;
        }
        let slope = ((level_db(earlier) - level_db(later)) / DECAY_HALVES as f64)
            .clamp(DECAY_SLOPES_DB.0, DECAY_SLOPES_DB.1);
        ((depth / slope).round() as usize).min(MAX_UNSEEN_HALVES)
    }

    /// `local[i]` is the strength threshold for coarse segment `i` (P.56's margin under its
    /// phrase's active level); `relative`, the call's, judges runs away from any segment.
    fn apply(&self, coarse: &Segments, local: &[f64], relative: f64) -> Segments {
        let n = self.halves.len();
        let strong_enough =
            |j: usize, relative: f64| self.ac(j) - self.full.noise_at(j) >= relative;
        // Next to speech, seeing it in either view is enough; a run on its own must show in
        // both (slow noise swells show in one view only).
        let seen: Vec<bool> = (0..n)
            .map(|j| {
                (self.full.above(j, self.full.visible) && self.emph.above(j, self.emph.noise.power))
                    || self.emph.above(j, self.emph.visible)
            })
            .collect();
        let active = |j: usize, relative: f64| seen[j] && strong_enough(j, relative);
        let solid: Vec<bool> = (0..n)
            .map(|j| {
                strong_enough(j, relative)
                    && self.full.above(j, self.full.visible)
                    && self.emph.above(j, self.emph.visible)
            })
            .collect();
        let mean = |at: &dyn Fn(usize) -> f64, a: usize, b: usize| {
            (a..b).map(at).sum::<f64>() / (b - a).max(1) as f64
        };
        // A weak tail: the 100 ms beyond the edge, taken together, still holds speech: in
        // `view`, whose powers are `at`, its mean stands over the noise by the strength test
        // and over `visible` (both with the noise's rise there).
        let holds_tail =
            |view: &View, at: &dyn Fn(usize) -> f64, visible: f64, a: usize, b: usize, relative| {
                let m = mean(at, a, b);
                let rise = view.gain_over(a, b);
                b > a && m - view.noise.power * rise >= relative && m > visible * rise
            };
        let window = |a: usize, b: usize, relative: f64| {
            holds_tail(
                self.full,
                &|j| self.ac(j),
                self.tail_visible,
                a,
                b,
                relative,
            )
        };
        // A voiced decay, in the voicing band: it stands out of that band's noise, and the
        // band's excess alone (never more than the speech's own power) passes the strength
        // test; or the 100 ms beyond the edge does, taken together.
        let voiced = |j: usize, relative: f64| {
            self.voicing
                .is_some_and(|v| v.above(j, v.visible) && self.low(j) - v.noise_at(j) >= relative)
        };
        let voiced_window = |a: usize, b: usize, relative: f64| {
            self.voicing.is_some_and(|v| {
                holds_tail(v, &|j| self.low(j), self.low_tail_visible, a, b, relative)
            })
        };
        // A sound after a stop closure (a last syllable, burst or fricative): it stands well
        // out of the noise in two views, or in the pre-emphasised one alone, and its excess,
        // taken back by the view's peak gain so it never over-states the speech, passes the
        // strength test. The full band alone is not enough: pink noise and rumble swell in it
        // far past what its quiet side shows.
        let emph_gain = (1.0 + PRE_EMPHASIS as f64).powi(2);
        let well_out = |view: &View, j: usize| {
            view.above(
                j,
                view.noise.power * 10f64.powf(CLOSURE_SPREADS * view.spread_db / 10.0),
            )
        };
        // A burst may last a single half, which the 50 ms mean dilutes five-fold: the half on
        // its own counts when it stands as far out of the half-to-half spread of the noise in
        // the full and the speech band, or so far out of the full band's noise that no noise
        // reaches it (a low release or lip sound, which pre-emphasis takes out), and passes the
        // strength test.
        let spreads_out = |view: &View, j: usize, power: f64| {
            power > view.noise_at(j) * 10f64.powf(CLOSURE_SPREADS * view.noise.spread_db / 10.0)
        };
        let lone_burst = 10f64.powf(LONE_BURST_DB / 10.0);
        let burst = |j: usize, relative: f64| {
            let full = self.ac(j);
            let excess = full - self.full.noise_at(j);
            excess >= relative
                && spreads_out(self.full, j, full)
                && (spreads_out(self.emph, j, self.halves[j].band() as f64)
                    || excess >= self.full.noise_at(j) * lone_burst)
        };
        let after_closure = |j: usize, relative: f64| {
            let full = self.full.smoothed[j] as f64;
            let emph = self.emph.smoothed[j] as f64;
            burst(j, relative)
                || (well_out(self.full, j)
                    && full - self.full.noise_at(j) >= relative
                    && self.voicing.is_some_and(|v| well_out(v, j)))
                || (well_out(self.emph, j)
                    && (emph - self.emph.noise_at(j)) / emph_gain >= relative)
        };
        let mut segments = coarse.clone();
        let mut previous_end = 0;
        for i in 0..segments.len() {
            let next_start = segments.get(i + 1).map_or(n, |s| s.0);
            let (mut s, mut e) = segments[i];
            let rel = local[i];
            // Trim what the detector started on but is not active, then grow.
            while s < e && !active(s, rel) {
                s += 1;
            }
            while e > s && !active(e - 1, rel) {
                e -= 1;
            }
            // An island at an end: a run shorter than a word's evidence, cut off from the
            // rest by 50 ms or more of nothing: noise the detector bridged onto the speech.
            // A real burst there comes back below, where it must stand well out.
            loop {
                let mut r = e;
                while r > s && active(r - 1, rel) {
                    r -= 1;
                }
                let mut g = r;
                while g > s && !active(g - 1, rel) {
                    g -= 1;
                }
                if e - r >= self.min_run || g == s || r - g < ISLAND_GAP {
                    break;
                }
                e = g;
            }
            if s == e {
                segments[i] = (s, e);
                continue;
            }
            // Onsets are abrupt (a burst, a vowel's rise): the full and speech bands see them.
            // Ends decay, and may resume after a closure, so they also follow the voicing band
            // and look past a closure.
            while s > previous_end
                && (active(s - 1, rel)
                    || window(s.saturating_sub(TAIL_WINDOW).max(previous_end), s, rel))
            {
                s -= 1;
            }
            loop {
                while e < next_start
                    && (active(e, rel)
                        || window(e, (e + TAIL_WINDOW).min(next_start), rel)
                        || voiced(e, rel)
                        || voiced_window(e, (e + TAIL_WINDOW).min(next_start), rel))
                {
                    e += 1;
                }
                // Judged on halves whose 50 ms window lies wholly past the edge.
                let ahead = (e + SMOOTH_HALVES)..(e + self.gap).min(next_start);
                match ahead.into_iter().find(|&j| after_closure(j, rel)) {
                    Some(j) => e = j + 1,
                    None => break,
                }
            }
            // The decay goes on under the noise: carry the end as far as it would take to
            // reach the margin.
            e += self
                .unseen_decay(s, e, rel)
                .min(next_start.saturating_sub(e));
            segments[i] = (s, e);
            previous_end = e.max(previous_end);
        }
        segments.retain(|&(s, e)| e > s);
        // Solid runs the detector did not start on (a weak word the VAD missed in noise)
        // belong to speech when they are long enough not to be a noise burst and lie within
        // the bridging gap of speech.
        let mut runs: Vec<(usize, usize, bool)> =
            segments.iter().map(|&(s, e)| (s, e, true)).collect();
        let mut j = 0;
        while j < n {
            if !solid[j] {
                j += 1;
                continue;
            }
            let start = j;
            while j < n && solid[j] {
                j += 1;
            }
            if j - start >= self.min_run {
                runs.push((start, j, false));
            }
        }
        runs.sort_unstable();
        let mut last_end: Option<usize> = None;
        for r in runs.iter_mut() {
            if !r.2 && last_end.is_some_and(|e| r.0 <= e + self.gap) {
                r.2 = true;
            }
            if r.2 {
                last_end = Some(last_end.map_or(r.1, |e| e.max(r.1)));
            }
        }
        let mut next_start: Option<usize> = None;
        for r in runs.iter_mut().rev() {
            if !r.2 && next_start.is_some_and(|s| r.1 + self.gap >= s) {
                r.2 = true;
            }
            if r.2 {
                next_start = Some(next_start.map_or(r.0, |s| s.min(r.0)));
            }
        }
        let kept: Segments = runs.iter().filter(|r| r.2).map(|r| (r.0, r.1)).collect();
        bridge(&kept, 0)
    }
}

/// P.56's hangover: activity lasts this long after the envelope falls below its threshold.
pub const P56_HANGOVER_S: f64 = 0.2;

/// The stretches over which active speech power is measured, in the manner of P.56: the speech
/// segments, each followed by the hangover (a talker's decays belong to their speech level).
pub fn p56_activity(segments: &Segments, hangover: usize, len: usize) -> Segments {
    let extended: Segments = segments
        .iter()
        .map(|&(s, e)| (s, (e + hangover).min(len)))
        .collect();
    bridge(&extended, 0)
}

/// Joins segments separated by fewer than `gap` halves.
pub fn bridge(segments: &[(usize, usize)], gap: usize) -> Segments {
    let mut out: Segments = Vec::with_capacity(segments.len());
    for &(s, e) in segments {
        match out.last_mut() {
            Some(last) if s <= last.1 + gap => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The union of several channels' segments, as one sorted list.
pub fn union(all: &[&Segments]) -> Segments {
    let mut merged: Segments = all.iter().flat_map(|s| s.iter().copied()).collect();
    merged.sort_unstable();
    bridge(&merged, 0)
}

/// The time covered by at least two of the channels at once, as segments.
pub fn overlaps(all: &[&Segments]) -> Segments {
    let mut edges: Vec<(usize, i32)> = Vec::new();
    for segs in all {
        for &(s, e) in segs.iter() {
            edges.push((s, 1));
            edges.push((e, -1));
        }
    }
    edges.sort_unstable();
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (t, d) in edges {
        let before = depth;
        depth += d;
        if before < 2 && depth >= 2 {
            start = t;
        } else if before >= 2 && depth < 2 && t > start {
            out.push((start, t));
        }
    }
    bridge(&out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bridge(input: &[(usize, usize)], gap: usize, expected: &[(usize, usize)]) {
        assert_eq!(bridge(input, gap), expected, "bridge {input:?} gap {gap}");
    }

    #[test]
    fn bridging() {
        check_bridge(&[(0, 5), (7, 9)], 2, &[(0, 9)]);
        check_bridge(&[(0, 5), (8, 9)], 2, &[(0, 5), (8, 9)]);
        check_bridge(&[(0, 5), (3, 4)], 0, &[(0, 5)]);
        check_bridge(&[], 3, &[]);
    }

    #[test]
    fn fast_levels_are_close() {
        for p in [1e-12f32, 3.7e-9, 1e-4, 0.0123, 0.5, 1.0, 7.9] {
            let (fast, exact) = (fast_level_db(p), level_db(p as f64));
            assert!((fast - exact).abs() < 0.05, "{p}: {fast} vs {exact}");
        }
    }

    #[test]
    fn smoothing_is_a_centred_moving_average() {
        let x = [0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0];
        let s = smooth(&x);
        assert_eq!(s, vec![5.0 / 3.0, 5.0 / 4.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn overlap_and_union() {
        let a = vec![(0, 10), (20, 30)];
        let b = vec![(5, 22), (40, 45)];
        assert_eq!(overlaps(&[&a, &b]), vec![(5, 10), (20, 22)]);
        assert_eq!(union(&[&a, &b]), vec![(0, 30), (40, 45)]);
    }

    #[test]
    fn noise_floor_of_steady_noise_is_its_mean() {
        // Half powers spread +-1 dB around 1e-4 (-40 dBFS), a third of them speech at -20 dBFS.
        let powers: Vec<f32> = (0..3000)
            .map(|i| {
                if i % 3 == 0 {
                    1e-2
                } else {
                    1e-4 * 10f32.powf(((i * 7919) % 21) as f32 / 100.0 - 0.1)
                }
            })
            .collect();
        let noise = noise_floor(&powers);
        assert!(
            (level_db(noise.power) + 40.0).abs() < 0.5,
            "{}",
            level_db(noise.power)
        );
    }

    #[test]
    fn noise_spread_is_measured_from_few_halves() {
        // 250 noise halves (a short file) whose levels swell slowly (each 0.95 of the last,
        // spread 1.5 dB), and 100 of speech 20 dB up: the histogram's peak is lumpy.
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut powers = Vec::new();
        let mut z = 0.0;
        for i in 0..350 {
            let db = if i < 250 {
                let (u, v) = (uniform(), uniform());
                let e = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                z = 0.95 * z + (1.0f64 - 0.95 * 0.95).sqrt() * e;
                -40.0 + 1.5 * z
            } else {
                -20.0
            };
            powers.push(10f64.powf(db / 10.0) as f32);
        }
        let spread = noise_floor(&powers).spread_db;
        let sd = {
            let db: Vec<f64> = powers[..250].iter().map(|&p| level_db(p as f64)).collect();
            let mean = db.iter().sum::<f64>() / 250.0;
            (db.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / 250.0).sqrt()
        };
        assert!((spread - sd).abs() <= 0.35 * sd, "spread {spread}, sd {sd}");
    }

    /// 600 ms of steady speech, then a decay of 1 dB per 10 ms, in steady noise `snr_db` under
    /// the speech; the end found, in halves after the decay's start.
    fn end_of_decay(snr_db: f64) -> usize {
        let cfg = VadConfig::default();
        let speech = 1e-2f64;
        let noise = speech * 10f64.powf(-snr_db / 10.0);
        let mut state = 99u64;
        let powers: Vec<f32> = (0..600)
            .map(|j| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let wobble = 1.0 + 0.3 * (((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5);
                let s = match j {
                    200..=259 => speech,
                    260..=319 => speech * 10f64.powf(-((j - 259) as f64) / 10.0),
                    _ => 0.0,
                };
                (s + noise * wobble) as f32
            })
            .collect();
        let halves: Vec<Half> = powers.iter().map(|&p| Half::new(p, p, p, p)).collect();
        let vad = vec![true; 300];
        let seg = segment(&halves, &vad, 0.01, &cfg, &Default::default());
        seg.segments.last().expect("speech").1 - 260
    }

    #[test]
    fn an_end_carries_on_down_the_decay_the_noise_hides() {
        // The active level is about the steady part's (the decay adds a little), so the margin,
        // 15.9 dB under it, is reached about 16 halves into the decay.
        let clear = end_of_decay(30.0);
        assert!((13..=18).contains(&clear), "30 dB: {clear}");
        // At 5 dB the decay sinks under the noise about 5 dB early; the end follows it there
        // and on by the unseen part of the decay, so it lands near the same place.
        let noisy = end_of_decay(5.0);
        assert!(
            noisy + 3 >= clear && noisy <= clear + 3,
            "5 dB: {noisy}, 30 dB: {clear}"
        );
    }

    /// Speech at `speech` power over halves 100..200 in noise of about 1e-6, then 100 ms of
    /// noise and one half whose full band (not its speech band) holds `burst` more.
    fn segments_with_low_burst(speech: f32, burst: f32) -> Segments {
        let noise = |j: usize| 1e-6 * 10f32.powf(((j * 7919) % 21) as f32 / 100.0 - 0.1);
        let halves: Vec<Half> = (0..400)
            .map(|j| {
                let n = noise(j);
                match j {
                    100..200 => Half::new(n + speech, n + speech, n + speech, n + speech),
                    210 => Half::new(n + burst, n, n + burst, n),
                    _ => Half::new(n, n, n, n),
                }
            })
            .collect();
        let vad: Vec<bool> = (0..200).map(|v| (50..100).contains(&v)).collect();
        segment(
            &halves,
            &vad,
            0.01,
            &VadConfig::default(),
            &Default::default(),
        )
        .segments
    }

    #[test]
    fn a_low_burst_after_a_closure_ends_the_speech_when_no_noise_reaches_it() {
        // 27 dB over the noise and 7 dB over P.56's margin: the end is carried to it.
        assert_eq!(segments_with_low_burst(1e-2, 5e-4), vec![(100, 211)]);
        // 20 dB speech, a burst 8 dB over the noise: strong enough, but noise could be that.
        assert_eq!(segments_with_low_burst(1e-4, 6e-6), vec![(100, 200)]);
    }

    #[test]
    fn a_click_is_not_speech_and_speech_is() {
        let cfg = VadConfig::default();
        let mut powers = vec![1e-6f32; 400];
        powers[50] = 1e-1; // one 10 ms click
        for p in &mut powers[200..260] {
            *p = 1e-2; // 600 ms of speech
        }
        let halves: Vec<Half> = powers.iter().map(|&p| Half::new(p, p, p, p)).collect();
        let vad = vec![true; 200];
        let seg = segment(&halves, &vad, 0.01, &cfg, &Default::default());
        assert_eq!(seg.segments, vec![(200, 260)]);
    }
}
