//! The channels of a multi-channel recording judged against each other: one signal written
//! twice (a mono recorder writing stereo), and a leg that died mid-call (one-way audio after a
//! transfer or a hold, the recording failure PBX trackers report most).
//!
//! Both work on the 10 ms half-frame powers pass one keeps ([`Half`]) and the speech segments,
//! so they cost nothing per sample.

use super::features::Half;
use super::segments::Segments;

/// Halves summed into one block for comparing channels: 100 ms.
const BLOCK_HALVES: usize = 10;
/// A copy's block energies follow the original's by one gain, within this (bf16 powers and
/// rounding are far finer; two legs of a real call differ by tens of dB whenever one side
/// speaks alone).
const COPY_TOLERANCE_DB: f64 = 1.0;
/// The share of the loud blocks that must follow (a little room for clicks).
const COPY_SHARE: f64 = 0.95;
/// Loud blocks (with sound well over the floor in either channel) needed before anything is
/// called a copy: 2 s.
const COPY_MIN_BLOCKS: usize = 20;
/// A block is loud when it stands this far (10 dB) over its channel's floor, the 20 % quantile
/// of its blocks: noise alone, in two independent channels, also keeps a steady ratio.
const LOUD_OVER_FLOOR: f64 = 10.0;
/// Below this a block is digital silence (a 16-bit LSB is about -96 dBFS).
const SILENT_POWER: f64 = 1e-11;

/// One 100 ms block of a channel: its energy (sum of half powers), and its first and last
/// half's, which is all a shift of up to one half (10 ms) can move across its edges.
#[derive(Clone, Copy)]
struct Block {
    sum: f64,
    first: f64,
    last: f64,
}

fn blocks(h: &[Half]) -> Vec<Block> {
    h.chunks_exact(BLOCK_HALVES)
        .map(|c| Block {
            sum: c.iter().map(|h| f64::from(h.power())).sum(),
            first: f64::from(c[0].power()),
            last: f64::from(c[BLOCK_HALVES - 1].power()),
        })
        .collect()
}

/// Whether `b` carries the signal of `a`, delayed or advanced by at most 10 ms and scaled.
///
/// A shift by `d` <= 10 ms moves energy only across a block's edges: `b`'s block k holds `a`'s
/// block k less at most its last (or first) half, plus at most the last half of block k-1 (or
/// the first of k+1), all times one gain. Every loud block must fit that interval (within 1 dB)
/// for one gain (the median ratio); digital silence must be silence in both.
pub fn identical(a: &[Half], b: &[Half]) -> bool {
    let (a, b) = (blocks(a), blocks(b));
    let n = a.len().min(b.len());
    if a.iter()
        .zip(&b)
        .any(|(x, y)| (x.sum > SILENT_POWER) != (y.sum > SILENT_POWER))
    {
        return false;
    }
    let floor = |v: &[Block]| {
        let mut sums: Vec<f64> = v.iter().map(|x| x.sum).collect();
        sums.sort_by(f64::total_cmp);
        sums.get(sums.len() / 5).copied().unwrap_or(0.0)
    };
    let (fa, fb) = (floor(&a[..n]), floor(&b[..n]));
    let loud: Vec<usize> = (0..n)
        .filter(|&k| a[k].sum > SILENT_POWER)
        .filter(|&k| a[k].sum > LOUD_OVER_FLOOR * fa || b[k].sum > LOUD_OVER_FLOOR * fb)
        .collect();
    if loud.len() < COPY_MIN_BLOCKS {
        return false;
    }
    // The gain: the median ratio (a shift moves the ratio of few blocks, and either way).
    let mut gains: Vec<f64> = loud.iter().map(|&k| b[k].sum / a[k].sum).collect();
    gains.sort_by(f64::total_cmp);
    let g = gains[gains.len() / 2];
    let tolerance = 10f64.powf(COPY_TOLERANCE_DB / 10.0);
    let fits = loud
        .iter()
        .filter(|&&k| {
            let before = if k > 0 { a[k - 1].last } else { 0.0 };
            let after = a.get(k + 1).map_or(0.0, |x| x.first);
            let low = g * (a[k].sum - a[k].first.max(a[k].last)) / tolerance;
            let high = g * (a[k].sum + before.max(after)) * tolerance;
            (low..=high).contains(&b[k].sum)
        })
        .count();
    fits as f64 >= COPY_SHARE * loud.len() as f64
}

/// A channel's level must fall this far under its own noise floor (10 dB) to count as dead: a
/// live line keeps the noise of the room and the line, a lost leg falls to digital silence or to
/// a PBX's comfort noise far below it.
const DEAD_DROP: f64 = 0.1;
/// The quantile of a channel's half powers before its last speech taken as its noise floor.
const FLOOR_QUANTILE: f64 = 0.2;

/// A leg that went dead while another talked on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lost {
    pub channel: usize,
    /// When it went dead, in seconds from the start.
    pub at_s: f64,
}

/// The legs that fell dead (digital silence, or 10 dB under their noise floor, to the end of
/// the recording) at a time after which another channel still spoke for at least `min_s`.
/// A pause, however long, on a live line keeps its noise floor and is not a lost leg.
pub fn lost(halves: &[&[Half]], segments: &[&Segments], half_s: f64, min_s: f64) -> Vec<Lost> {
    let mut out = Vec::new();
    for (c, (h, seg)) in halves.iter().zip(segments).enumerate() {
        let Some(&(_, last_end)) = seg.last() else {
            // Silent throughout: `one_sided` tells that.
            continue;
        };
        let last_end = last_end.min(h.len());
        let Some(floor) = quantile(&h[..last_end], FLOOR_QUANTILE) else {
            continue;
        };
        let dead = (floor * DEAD_DROP).max(SILENT_POWER);
        // From the end back to the last half with life in it.
        let alive_to = h[last_end..]
            .iter()
            .rposition(|x| f64::from(x.power()) > dead)
            .map_or(last_end, |i| last_end + i + 1);
        let at_s = alive_to as f64 * half_s;
        let others_until = segments
            .iter()
            .enumerate()
            .filter(|&(o, _)| o != c)
            .filter_map(|(_, s)| s.last().map(|&(_, e)| e as f64 * half_s))
            .fold(f64::NEG_INFINITY, f64::max);
        if others_until - at_s >= min_s {
            out.push(Lost { channel: c, at_s });
        }
    }
    out
}

/// Histogram bins for [`quantile`]: 0.25 dB from -160 dB to +10 dB.
const BIN_DB: f64 = 0.25;
const LOWEST_DB: f64 = -160.0;
const BINS: usize = 680;

/// The `q` quantile of the halves' powers, to a quarter dB, from a histogram (a 4-hour channel
/// has 1.4 million halves: no copy of them is made).
fn quantile(h: &[Half], q: f64) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let mut counts = [0u32; BINS];
    for x in h {
        let db = 10.0 * f64::from(x.power()).max(1e-30).log10();
        let bin = ((db - LOWEST_DB) / BIN_DB).clamp(0.0, (BINS - 1) as f64) as usize;
        counts[bin] += 1;
    }
    let rank = ((h.len() - 1) as f64 * q) as u64;
    let mut seen = 0u64;
    for (bin, &n) in counts.iter().enumerate() {
        seen += u64::from(n);
        if seen > rank {
            return Some(10f64.powf((LOWEST_DB + (bin as f64 + 0.5) * BIN_DB) / 10.0));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halves(powers: &[f32]) -> Vec<Half> {
        powers.iter().map(|&p| Half::new(p, p, p, p)).collect()
    }

    /// Speech-like powers: 1 s bursts at `level` with 0.5 s gaps at `floor`, a little ripple.
    fn talk(n: usize, level: f32, floor: f32, phase: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let ripple = 1.0 + 0.3 * ((i * 7 + phase) % 11) as f32 / 11.0;
                if (i + phase) % 150 < 100 {
                    level * ripple
                } else {
                    floor * ripple
                }
            })
            .collect()
    }

    #[test]
    fn a_scaled_copy_is_identical_and_two_talkers_are_not() {
        let a = talk(3000, 1e-2, 1e-6, 0);
        let scaled: Vec<f32> = a.iter().map(|p| p * 0.5).collect();
        assert!(identical(&halves(&a), &halves(&scaled)));
        // Delayed by half a half (5 ms): each half's power mixes two neighbours.
        let delayed: Vec<f32> = (0..a.len())
            .map(|i| 0.5 * (a[i] + a[i.saturating_sub(1)]) * 0.7)
            .collect();
        assert!(identical(&halves(&a), &halves(&delayed)));
        // The other side of a call talks in the first one's gaps.
        let other = talk(3000, 1e-2, 1e-6, 100);
        assert!(!identical(&halves(&a), &halves(&other)));
        // Heavy crosstalk (the other side 10 dB down in each leg) is still two talkers.
        let mixed_a: Vec<f32> = a.iter().zip(&other).map(|(x, y)| x + 0.1 * y).collect();
        let mixed_b: Vec<f32> = a.iter().zip(&other).map(|(x, y)| 0.1 * x + y).collect();
        assert!(!identical(&halves(&mixed_a), &halves(&mixed_b)));
        // A long hold: noise alone keeps a steady ratio in two independent lines; only the
        // blocks with sound over the floor count.
        let hold = |x: &[f32], level: f32| -> Vec<f32> {
            let mut v = x[..1500].to_vec();
            v.extend((0..30_000).map(|i| level * (1.0 + 0.05 * (i % 3) as f32)));
            v
        };
        assert!(!identical(
            &halves(&hold(&a, 1e-6)),
            &halves(&hold(&other, 2e-6))
        ));
        // Silence in one only, or too little sound to tell.
        let mut gap = scaled.clone();
        gap[500..600].iter_mut().for_each(|p| *p = 0.0);
        assert!(!identical(&halves(&a), &halves(&gap)));
        assert!(!identical(&halves(&a[..100]), &halves(&scaled[..100])));
    }

    #[test]
    fn a_leg_that_falls_dead_is_lost_and_a_long_pause_is_not() {
        let half_s = 0.01;
        // 60 s: the customer talks until 20 s, then the leg falls to digital silence at 22 s;
        // the agent talks to the end.
        let agent = talk(6000, 1e-2, 1e-6, 0);
        let mut customer = talk(6000, 1e-2, 1e-6, 100);
        customer[2200..].iter_mut().for_each(|p| *p = 0.0);
        let seg_agent: Segments = vec![(0, 5900)];
        let seg_customer: Segments = vec![(100, 2000)];
        let found = lost(
            &[&halves(&agent), &halves(&customer)],
            &[&seg_agent, &seg_customer],
            half_s,
            10.0,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].channel, 1);
        assert!((found[0].at_s - 22.0).abs() < 0.05, "{found:?}");
        // Comfort noise 20 dB under the line's floor is dead too.
        let mut cn = talk(6000, 1e-2, 1e-6, 100);
        cn[2200..].iter_mut().for_each(|p| *p = 1e-8);
        let found = lost(
            &[&halves(&agent), &halves(&cn)],
            &[&seg_agent, &seg_customer],
            half_s,
            10.0,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        // A live line that stops talking keeps its floor: a pause, not a lost leg.
        let mut pause = talk(6000, 1e-2, 1e-6, 100);
        pause[2000..].iter_mut().for_each(|p| *p = 1e-6);
        let found = lost(
            &[&halves(&agent), &halves(&pause)],
            &[&seg_agent, &seg_customer],
            half_s,
            10.0,
        );
        assert!(found.is_empty(), "{found:?}");
        // Dead, but the other side stopped within 10 s: the call simply ended.
        let seg_short: Segments = vec![(0, 2900)];
        let found = lost(
            &[&halves(&agent), &halves(&customer)],
            &[&seg_short, &seg_customer],
            half_s,
            10.0,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
