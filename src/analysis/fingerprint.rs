//! Audio fingerprints: finding a known prompt (the recording announcement) in a call.
//!
//! The model, in a paragraph. What survives a phone path (a codec, a level change, noise) is
//! not the waveform but the shape of the spectrum as it moves: whether, from one moment to the
//! next, a band gains energy relative to the band above it. So every 10 ms the last 64 ms of the
//! channel are taken to 17 bands spaced evenly in log frequency over 300-3000 Hz (the band every
//! narrowband codec keeps), and each pair of neighbouring bands gives one bit: the sign of the
//! change, since the frame before, of their energy difference. That is the fingerprint of
//! Haitsma and Kalker ("A highly robust audio fingerprinting system", ISMIR 2002), with the
//! bands brought into the telephone band. It does not depend on the level, and a codec or noise
//! flips only the bits whose bands were close to begin with. A prompt is found where its bits
//! and the call's agree far more often than chance would have them agree (half the bits): the
//! bit error rate over the best-aligned 80 % of the prompt (a prompt cut at its start or end
//! still matches) is at most [`MAX_BIT_ERRORS`].

use super::spectrum::PowerSpectrum;

/// The bands' edges (Hz): 17 bands, evenly spaced in log frequency.
const LOW_HZ: f64 = 300.0;
const HIGH_HZ: f64 = 3000.0;
const BANDS: usize = 17;
/// Seconds of signal per fingerprint frame, and between frames.
const WINDOW_S: f64 = 0.064;
pub const HOP_S: f64 = 0.01;
/// The share of the prompt that must match: a prompt cut by up to a fifth at its start or its
/// end is still found.
const KEPT: f64 = 0.8;
/// The most bit errors, as a share of the reliable bits compared, for a match. Unrelated sounds
/// agree on half the bits (their bits are coin flips to each other; over the 1,700 reliable
/// bits of a 2.3 s prompt's 80 % the share strays from a half by 0.012, so even the best of
/// thousands of alignments stays above 0.44; other prompts in the same voice come closer, 0.41
/// at best in the tests); a prompt under a codec and noise 10 dB down keeps more than two thirds
/// of them (0.22 errors at worst in the tests).
pub const MAX_BIT_ERRORS: f64 = 0.35;

/// The fingerprint of one channel (or one prompt): 16 bits per 10 ms frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fingerprint {
    pub bits: Vec<u16>,
    /// A prompt's: per frame, the bits worth comparing. A bit whose bands' difference barely
    /// changed flips under the least noise or coding; the prompt is clean, so which bits those
    /// are is known, and the weakest [`UNRELIABLE`] of them are left out of every comparison.
    pub mask: Vec<u16>,
}

/// The share of a prompt's bits left out as unreliable (its weakest changes, and its
/// pauses', where any noise decides).
const UNRELIABLE: f64 = 0.4;

/// Makes a fingerprint from samples as they come, for at most `limit` frames.
pub struct Fingerprinter {
    spectrum: PowerSpectrum,
    /// Each band's first and last bin (inclusive, exclusive).
    bands: Vec<(usize, usize)>,
    window: Vec<f32>,
    /// Samples in `window` so far (it fills before the first frame).
    filled: usize,
    hop: usize,
    pending: usize,
    previous: Option<[f32; BANDS - 1]>,
    limit: usize,
    pub print: Fingerprint,
    /// For a prompt: the size of each bit's change, frame by frame.
    strengths: Option<Vec<[f32; BANDS - 1]>>,
}

impl Fingerprinter {
    /// A fingerprinter for a channel at `rate` Hz, stopping after `limit_s` seconds.
    pub fn new(rate: u32, limit_s: f64) -> Fingerprinter {
        let window_len = (WINDOW_S * rate as f64).round() as usize;
        let spectrum = PowerSpectrum::new(window_len);
        let bin_hz = rate as f64 / spectrum.size() as f64;
        let edge = |k: usize| LOW_HZ * (HIGH_HZ / LOW_HZ).powf(k as f64 / BANDS as f64);
        let bands = (0..BANDS)
            .map(|k| {
                let lo = (edge(k) / bin_hz).round() as usize;
                let hi = ((edge(k + 1) / bin_hz).round() as usize).max(lo + 1);
                (lo.min(spectrum.bins()), hi.min(spectrum.bins()))
            })
            .collect();
        Fingerprinter {
            spectrum,
            bands,
            window: vec![0.0; window_len],
            filled: 0,
            hop: (HOP_S * rate as f64).round() as usize,
            pending: 0,
            previous: None,
            limit: (limit_s / HOP_S).ceil() as usize,
            print: Fingerprint::default(),
            strengths: None,
        }
    }

    /// Whether it has all the frames it wants.
    pub fn full(&self) -> bool {
        self.print.bits.len() >= self.limit
    }

    /// Feeds the next samples.
    pub fn push(&mut self, mut x: &[f32]) {
        while !x.is_empty() && !self.full() {
            // A hop (10 ms) is shorter than the window (64 ms): slide the window by what comes
            // and append it.
            let take = (self.hop - self.pending).min(x.len());
            let n = self.window.len();
            self.window.copy_within(take.., 0);
            self.window[n - take..].copy_from_slice(&x[..take]);
            self.filled = (self.filled + take).min(n);
            self.pending += take;
            x = &x[take..];
            if self.pending == self.hop {
                self.pending = 0;
                if self.filled == n {
                    self.frame();
                }
            }
        }
    }

    fn frame(&mut self) {
        self.spectrum.compute(&self.window);
        let power = &self.spectrum.power;
        let energy: Vec<f32> = self
            .bands
            .iter()
            .map(|&(lo, hi)| power[lo..hi].iter().sum())
            .collect();
        let mut diff = [0.0f32; BANDS - 1];
        for (m, d) in diff.iter_mut().enumerate() {
            *d = energy[m] - energy[m + 1];
        }
        if let Some(prev) = self.previous {
            let mut bits = 0u16;
            let mut strength = [0.0f32; BANDS - 1];
            for m in 0..BANDS - 1 {
                let change = diff[m] - prev[m];
                if change > 0.0 {
                    bits |= 1 << m;
                }
                strength[m] = change.abs();
            }
            self.print.bits.push(bits);
            if let Some(s) = &mut self.strengths {
                s.push(strength);
            }
        }
        self.previous = Some(diff);
    }

    pub fn finish(self) -> Fingerprint {
        let mut print = self.print;
        if let Some(strengths) = self.strengths {
            let mut all: Vec<f32> = strengths.iter().flatten().copied().collect();
            all.sort_by(f32::total_cmp);
            let floor = all
                .get((all.len() as f64 * UNRELIABLE) as usize)
                .copied()
                .unwrap_or(0.0);
            print.mask = strengths
                .iter()
                .map(|s| {
                    (0..BANDS - 1)
                        .filter(|&m| s[m] > floor)
                        .fold(0u16, |acc, m| acc | 1 << m)
                })
                .collect();
        }
        print
    }
}

/// Where a prompt was found in a channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// Where the prompt starts in the channel (seconds; where its start would have been when it
    /// was cut at its start).
    pub at_s: f64,
    /// The share of bits that disagree over the best-matching 80 % of the prompt.
    pub bit_errors: f64,
}

/// The best match of `prompt` in `channel` starting no later than `within_s`, if its bit errors
/// are at most [`MAX_BIT_ERRORS`].
pub fn find(prompt: &Fingerprint, channel: &Fingerprint, within_s: f64) -> Option<Found> {
    let len = prompt.bits.len();
    if len < 10 || channel.bits.is_empty() {
        return None;
    }
    let kept = ((len as f64 * KEPT).round() as usize).max(1);
    let cut = len - kept;
    let last = (within_s / HOP_S).round() as isize;
    let mask = |i: usize| prompt.mask.get(i).copied().unwrap_or(u16::MAX);
    let counted: Vec<u32> = (0..len).map(|i| mask(i).count_ones()).collect();
    let all: u32 = counted.iter().sum();
    let (head_bits, tail_bits): (u32, u32) =
        (counted[..cut].iter().sum(), counted[kept..].iter().sum());
    if all == 0 {
        return None;
    }
    let mut best: Option<(f64, isize)> = None;
    let mut errors = vec![0u32; len];
    for offset in -(cut as isize)..=last {
        // Errors frame by frame where prompt and channel overlap; where they do not, the frame
        // counts as a miss (half its bits), so a prompt beyond the channel's ends never matches
        // on its overlap alone.
        for (i, e) in errors.iter_mut().enumerate() {
            let j = offset + i as isize;
            *e = if j >= 0 && (j as usize) < channel.bits.len() {
                ((prompt.bits[i] ^ channel.bits[j as usize]) & mask(i)).count_ones()
            } else {
                counted[i] / 2
            };
        }
        let total: u32 = errors.iter().sum();
        let head: u32 = errors[..cut].iter().sum();
        let tail: u32 = errors[kept..].iter().sum();
        // The best 80 %: the prompt without its first or its last fifth.
        let share = ((total - head) as f64 / (all - head_bits).max(1) as f64)
            .min((total - tail) as f64 / (all - tail_bits).max(1) as f64);
        if best.is_none_or(|(b, _)| share < b) {
            best = Some((share, offset));
        }
    }
    let (share, offset) = best?;
    (share <= MAX_BIT_ERRORS).then(|| Found {
        at_s: (offset as f64 * HOP_S).max(0.0),
        bit_errors: share,
    })
}

/// The fingerprint of a whole prompt, with the mask of its reliable bits.
pub fn of(samples: &[f32], rate: u32) -> Fingerprint {
    let mut f = Fingerprinter::new(rate, samples.len() as f64 / rate as f64 + 1.0);
    f.strengths = Some(Vec::new());
    f.push(samples);
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chirp_is_found_where_it_was_put_and_not_in_noise() {
        let rate = 8000;
        let mut state = 7u64;
        let mut noise = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.02
                })
                .collect()
        };
        // A prompt: a warbling tone whose pitch wanders over the band.
        let prompt: Vec<f32> = (0..2 * rate as usize)
            .map(|i| {
                let t = i as f64 / rate as f64;
                let f = 800.0 + 600.0 * (t * 3.1).sin() + 300.0 * (t * 7.3).sin();
                (0.3 * (std::f64::consts::TAU * f * t).sin()) as f32
            })
            .collect();
        let print = of(&prompt, rate);
        let mut call = noise(3 * rate as usize);
        let at = call.len();
        call.extend(prompt.iter().map(|v| v * 0.5));
        call.extend(noise(2 * rate as usize));
        let found = find(&print, &of(&call, rate), 30.0).expect("found");
        assert!(
            (found.at_s - at as f64 / rate as f64).abs() <= 0.02,
            "{found:?}"
        );
        assert!(find(&print, &of(&noise(6 * rate as usize), rate), 30.0).is_none());
    }
}
