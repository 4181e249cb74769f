//! Pass two, per channel: the noise floor and the speech segments, from the kept features.
//!
//! The WebRTC VAD alone calls nearly everything speech in loud noise, so a 10 ms half is speech
//! only when the VAD says so *and* its energy stands out of the noise floor by more than the
//! noise's own spread. The noise floor is the mean power of the quiet part of the level
//! distribution, found by iterating from the 10th percentile. Raw decisions are then smoothed:
//! short gaps bridged, short bursts dropped, and each edge extended over the frames that still
//! stand above the noise, so soft onsets and decays are kept.

use crate::config::VadConfig;

/// Level of digital silence: nothing is quieter than this.
pub const FLOOR_DB: f64 = -120.0;
const FLOOR_POWER: f64 = 1e-12;

/// Speech segments as half indices `[start, end)`.
pub type Segments = Vec<(usize, usize)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// Mean power of the noise-like halves.
    pub noise_power: f64,
    /// Spread (standard deviation, dB) of the noise level from half to half.
    pub spread_db: f64,
    pub segments: Segments,
}

pub fn level_db(power: f64) -> f64 {
    10.0 * power.max(FLOOR_POWER).log10()
}

/// Histogram of half levels, 0.1 dB bins from `FLOOR_DB` to +20 dB.
struct LevelHistogram {
    counts: Vec<u32>,
    total: u64,
}

impl LevelHistogram {
    const STEP: f64 = 0.1;

    fn new(levels: impl Iterator<Item = f64>) -> LevelHistogram {
        let bins = ((20.0 - FLOOR_DB) / Self::STEP) as usize + 1;
        let mut counts = vec![0u32; bins];
        let mut total = 0;
        for l in levels {
            let b = (((l - FLOOR_DB) / Self::STEP).max(0.0) as usize).min(bins - 1);
            counts[b] += 1;
            total += 1;
        }
        LevelHistogram { counts, total }
    }

    fn percentile(&self, q: f64) -> f64 {
        let target = (q * self.total as f64).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c as u64;
            if acc >= target {
                return FLOOR_DB + (b as f64 + 0.5) * Self::STEP;
            }
        }
        20.0
    }
}

/// Estimates the noise floor and its spread from the half powers.
pub fn noise_floor(powers: &[f32]) -> (f64, f64) {
    if powers.is_empty() {
        return (FLOOR_POWER, 0.0);
    }
    let hist = LevelHistogram::new(powers.iter().map(|&p| level_db(p as f64)));
    let (p5, p10, p20) = (hist.percentile(0.05), hist.percentile(0.10), hist.percentile(0.20));
    // For a log-normal-ish noise level, p20 - p5 spans 0.80 standard deviations.
    let spread = ((p20 - p5) / 0.80).clamp(0.3, 8.0);
    let window = (2.5 * spread).max(2.0);
    let mut noise_db = p10;
    let mut noise_power = 10f64.powf(noise_db / 10.0);
    for _ in 0..6 {
        let limit = 10f64.powf((noise_db + window) / 10.0);
        let (sum, n) = powers
            .iter()
            .map(|&p| p as f64)
            .filter(|&p| p <= limit)
            .fold((0.0, 0u64), |(s, n), p| (s + p, n + 1));
        if n == 0 {
            break;
        }
        noise_power = (sum / n as f64).max(FLOOR_POWER);
        let next = level_db(noise_power);
        if (next - noise_db).abs() < 0.01 {
            break;
        }
        noise_db = next;
    }
    (noise_power.max(FLOOR_POWER), spread)
}

/// Finds the speech segments of one channel. `vad` holds one decision per two halves.
pub fn segment(powers: &[f32], vad: &[bool], half_s: f64, cfg: &VadConfig) -> Segmentation {
    let (noise_power, spread) = noise_floor(powers);
    let noise_db = level_db(noise_power);
    let gate = 10f64.powf((noise_db + cfg.energy_margin_db.max(2.5 * spread)) / 10.0);
    let edge = 10f64.powf((noise_db + cfg.edge_margin_db.max(1.5 * spread)) / 10.0);
    let vad_at = |j: usize| {
        vad.get(j / 2)
            .or(vad.last())
            .copied()
            .unwrap_or(false)
    };

    // Raw decisions, as runs.
    let mut raw: Segments = Vec::new();
    let mut start = None;
    for (j, &p) in powers.iter().enumerate() {
        let speech = vad_at(j) && p as f64 > gate;
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
        raw.push((s, powers.len()));
    }

    let halves = |ms: u32| ((ms as f64 / 1000.0) / half_s).round() as usize;
    let mut segments = bridge(&raw, halves(cfg.min_silence_ms));
    segments.retain(|&(s, e)| e - s >= halves(cfg.min_speech_ms).max(1));

    // Extend the edges over frames that still stand above the noise (at most 200 ms).
    let reach = halves(200);
    let mut previous_end = 0;
    for i in 0..segments.len() {
        let next_start = segments.get(i + 1).map_or(powers.len(), |s| s.0);
        let (mut s, mut e) = segments[i];
        let mut steps = 0;
        while s > previous_end && steps < reach && powers[s - 1] as f64 > edge {
            s -= 1;
            steps += 1;
        }
        steps = 0;
        while e < next_start && steps < reach && powers[e] as f64 > edge {
            e += 1;
            steps += 1;
        }
        segments[i] = (s, e);
        previous_end = e;
    }
    Segmentation {
        noise_power,
        spread_db: spread,
        segments: bridge(&segments, 0),
    }
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
        let (noise, _) = noise_floor(&powers);
        assert!((level_db(noise) + 40.0).abs() < 0.5, "{}", level_db(noise));
    }

    #[test]
    fn a_click_is_not_speech_and_speech_is() {
        let cfg = VadConfig::default();
        let mut powers = vec![1e-6f32; 400];
        powers[50] = 1e-1; // one 10 ms click
        for p in &mut powers[200..260] {
            *p = 1e-2; // 600 ms of speech
        }
        let vad = vec![true; 200];
        let seg = segment(&powers, &vad, 0.01, &cfg);
        assert_eq!(seg.segments, vec![(200, 260)]);
    }
}
