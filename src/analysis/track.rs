//! The noise floor as it moves: how far a channel's noise rises, from moment to moment, above
//! its quietest stretches.
//!
//! Real background noise is seldom steady: an office, a street or a car swells and ebbs by
//! several dB over seconds. Judged against one floor for the whole call, the swells stand out
//! of it like speech. So each view of a channel also gets a track of its floor: the quiet end
//! of its level over the 1.8 s around each moment (the minimum of the 50 ms smoothed level,
//! as in minimum statistics), opened (a running minimum, then a running maximum, of the same
//! width) so that anything narrower than the window, a word or a phrase, leaves no trace while
//! a broad swell keeps its shape. Speech only adds power, so the quiet end over a window with
//! any pause in it is the noise's. A track is kept only where the floor rises more than
//! [`TOLERANCE_DB`] above its quiet end, so steady noise is judged exactly as before.
//!
//! The window is the trade: shorter follows faster swells, but a stretch of speech longer than
//! the window with no pause in it then reads as a raised floor. Even then the floor only rises
//! to the speech's quietest moments, so the speech around them still stands out of it.

/// Halves in one block of the track (200 ms).
pub const BLOCK_HALVES: usize = 20;
/// Blocks on each side in the opening's window: with its own block, 1.8 s.
const REACH_BLOCKS: usize = 4;
/// Rises of the floor up to this (dB) are the jitter of steady noise's quiet end, not a swell.
pub const TOLERANCE_DB: f64 = 1.0;
/// Halves on each side in the smoothing before the block minima (50 ms, as the detector's).
const SMOOTH_HALVES: usize = 2;

/// The rise of a channel view's noise floor over its quietest stretches, per block.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Power ratio (at least 1) at each block's centre.
    gains: Vec<f32>,
}

impl Track {
    /// The track of the `n` half powers `at(0..n)`, or `None` when the floor holds within the
    /// tolerance everywhere (steady noise).
    pub fn of(n: usize, at: impl Fn(usize) -> f32) -> Option<Track> {
        let blocks = n.div_ceil(BLOCK_HALVES);
        if blocks < 2 * REACH_BLOCKS + 2 {
            // Too short for a window on each side of anything: one floor for all.
            return None;
        }
        // Block minima of the 50 ms smoothed powers, as a running window sum.
        let mut minima = vec![f64::INFINITY; blocks];
        let mut sum = 0.0f64;
        let (mut lo, mut hi) = (0usize, 0usize);
        for j in 0..n {
            while hi < (j + SMOOTH_HALVES + 1).min(n) {
                sum += at(hi) as f64;
                hi += 1;
            }
            while lo < j.saturating_sub(SMOOTH_HALVES) {
                sum -= at(lo) as f64;
                lo += 1;
            }
            let m = &mut minima[j / BLOCK_HALVES];
            *m = m.min(sum.max(0.0) / (hi - lo) as f64);
        }
        let eroded = running(&minima, f64::min, true);
        let opened = running(&eroded, f64::max, false);
        let db: Vec<f64> = opened
            .iter()
            .map(|&p| 10.0 * p.max(1e-12).log10())
            .collect();
        // The quiet end: the 10th percentile of the opened floor, so one lucky block does not
        // set it.
        let mut sorted = db.clone();
        sorted.sort_by(f64::total_cmp);
        let base = sorted[(sorted.len() - 1) / 10];
        let rises: Vec<f64> = db
            .iter()
            .map(|&d| (d - base - TOLERANCE_DB).max(0.0))
            .collect();
        if rises.iter().all(|&r| r == 0.0) {
            return None;
        }
        Some(Track {
            gains: rises.iter().map(|&r| 10f64.powf(r / 10.0) as f32).collect(),
        })
    }

    /// The floor's rise (a power ratio, at least 1) at half `j`: its block's. Not interpolated
    /// between blocks: the block that holds a pause has the pause's floor, and a neighbour's
    /// raised by unbroken speech must not reach into the edge.
    #[inline]
    pub fn gain(&self, j: usize) -> f64 {
        self.gains[(j / BLOCK_HALVES).min(self.gains.len() - 1)] as f64
    }
}

/// `pick` over each block and the `REACH_BLOCKS` on either side; near the ends the window is
/// cut short, or, if `full`, moved inwards whole (a minimum over a cut window at a file's start
/// would take speech that starts with the file for its floor).
fn running(x: &[f64], pick: fn(f64, f64) -> f64, full: bool) -> Vec<f64> {
    let width = 2 * REACH_BLOCKS + 1;
    (0..x.len())
        .map(|b| {
            let (mut lo, mut hi) = (
                b.saturating_sub(REACH_BLOCKS),
                (b + REACH_BLOCKS + 1).min(x.len()),
            );
            if full {
                lo = lo.min(x.len().saturating_sub(width));
                hi = hi.max(width.min(x.len()));
            }
            x[lo..hi].iter().copied().fold(x[b], pick)
        })
        .collect()
}

/// The floor's rise at half `j` of an optional track (1 without one).
#[inline]
pub fn gain(track: Option<&Track>, j: usize) -> f64 {
    track.map_or(1.0, |t| t.gain(j))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise powers with a +-3% wobble half to half, times `shape(j)`.
    fn noise(n: usize, shape: impl Fn(usize) -> f64) -> Vec<f32> {
        let mut state = 7u64;
        (0..n)
            .map(|j| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                (1e-4 * (0.7 + 0.6 * u) * shape(j)) as f32
            })
            .collect()
    }

    #[test]
    fn steady_noise_and_speech_bursts_leave_no_track() {
        // Steady noise with a 1 s word 30 dB up every 3 s: the floor never moves.
        let x = noise(3000, |j| if j % 300 < 100 { 1000.0 } else { 1.0 });
        assert_eq!(Track::of(x.len(), |j| x[j]), None);
    }

    #[test]
    fn a_swell_is_followed() {
        // The noise rises 6 dB for 3 s in the middle of 9 s.
        let x = noise(900, |j| if (300..600).contains(&j) { 3.98 } else { 1.0 });
        let t = Track::of(x.len(), |j| x[j]).expect("a track");
        let db = |j: usize| 10.0 * t.gain(j).log10();
        assert!(db(100) < 0.5, "before: {}", db(100));
        assert!(db(800) < 0.5, "after: {}", db(800));
        // Within the swell, its rise less the tolerance (and the jitter of the minima).
        assert!((db(450) - 5.0).abs() < 1.0, "in the swell: {}", db(450));
    }

    #[test]
    fn short_files_have_no_track() {
        let x = noise(150, |j| if j < 75 { 1.0 } else { 10.0 });
        assert_eq!(Track::of(x.len(), |j| x[j]), None);
    }
}
