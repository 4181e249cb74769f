//! The level arithmetic of pass two and the noise floor of a channel view, measured from the
//! distribution of its 10 ms levels (the histogram's quiet-end peak).

/// Level of digital silence: nothing is quieter than this.
pub const FLOOR_DB: f64 = -120.0;
pub(crate) const FLOOR_POWER: f64 = 1e-12;

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
pub(crate) fn moving_average_of(n: usize, reach: usize, at: impl Fn(usize) -> f32) -> Vec<f32> {
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
pub(crate) fn noise_spread(powers: impl Iterator<Item = f32>) -> f64 {
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
        // Four counts per bin, taken in turn and summed at the end: neighbouring halves mostly
        // fall in one bin, and a single count would make each increment wait for the last.
        let mut counts = vec![[0u32; 4]; Self::BINS];
        let mut n = 0usize;
        for p in powers {
            counts[Self::bin(p)][n & 3] += 1;
            n += 1;
        }
        let hist = counts
            .iter()
            .map(|c| c.iter().map(|&k| k as f64).sum())
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
