//! The Goertzel filter: one bin of the discrete Fourier transform at any frequency, a multiply
//! and two adds per sample (Goertzel, "An algorithm for the evaluation of finite trigonometric
//! series", 1958). A bank of them runs in lock step over a block, its lanes side by side so the
//! compiler can run them in vector registers.
//!
//! Besides the power, each block's bin comes out as a complex number whose phase, compared with
//! the previous block's, tells the tone's true frequency: a sinusoid at `f + d` advances by
//! `2π (f + d) N / rate` from one block of `N` samples to the next, the bin's own rotation
//! `2π f N / rate` is known, so what is left over is `2π d N / rate`. Over 10 ms blocks that
//! reads any offset within ±50 Hz, far finer than the block's own bin.

/// A complex number (the bin of one block), as two f32.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bin {
    pub re: f32,
    pub im: f32,
}

impl Bin {
    pub fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    /// `self * conj(other)`.
    pub fn times_conj(self, other: Bin) -> Bin {
        Bin {
            re: self.re * other.re + self.im * other.im,
            im: self.im * other.re - self.re * other.im,
        }
    }
}

/// `LANES` Goertzel filters over consecutive blocks of `block` samples at `rate` Hz.
///
/// Where every frequency is far below the rate, the block is first summed in groups of
/// `decimate` samples (a box-car low-pass and decimation in one), which divides the filters'
/// work by as much: the box-car's gain at each lane's frequency is known and divided out, what
/// folds down from near the new Nyquist frequency is attenuated by it, and its delay is the
/// same for every block, so the phase advance from block to block is unchanged.
#[derive(Debug, Clone)]
pub struct Bank<const LANES: usize> {
    /// `2 cos ω` per lane (ω at the decimated rate).
    coeff: [f32; LANES],
    /// `cos ω`, `sin ω` per lane (the last step turns the state into the bin).
    cos: [f32; LANES],
    sin: [f32; LANES],
    /// The bin's own rotation from one block to the next, `e^{-j2πf block/rate}`, per lane.
    turn: [Bin; LANES],
    /// What a sinusoid's bin is scaled by: the decimated block's length and the box-car's gain
    /// at the lane's frequency, squared, over two (so [`Bank::power`] is the mean square).
    scale: [f32; LANES],
    /// Frequencies (Hz) per lane.
    pub hz: [f64; LANES],
    /// Samples per block, at the input's rate.
    pub block: usize,
    pub rate: u32,
    decimate: usize,
}

impl<const LANES: usize> Bank<LANES> {
    pub fn new(hz: [f64; LANES], rate: u32, block: usize, decimate: usize) -> Self {
        let decimate = decimate.clamp(1, block.max(1));
        let used = (block / decimate) as f64;
        let omega = hz.map(|f| 2.0 * std::f64::consts::PI * f * decimate as f64 / rate as f64);
        let boxcar = |f: f64| {
            let x = std::f64::consts::PI * f / rate as f64;
            if decimate == 1 {
                1.0
            } else {
                ((x * decimate as f64).sin() / x.sin()).abs()
            }
        };
        Bank {
            coeff: omega.map(|w| (2.0 * w.cos()) as f32),
            cos: omega.map(|w| w.cos() as f32),
            sin: omega.map(|w| w.sin() as f32),
            turn: hz.map(|f| {
                let a = -(2.0 * std::f64::consts::PI * f * block as f64 / rate as f64);
                Bin {
                    re: a.cos() as f32,
                    im: a.sin() as f32,
                }
            }),
            scale: hz.map(|f| {
                let g = used * boxcar(f);
                (2.0 / (g * g)) as f32
            }),
            hz,
            block,
            rate,
            decimate,
        }
    }

    /// The bins of one block (up to a constant phase per lane, the same for every block of the
    /// bank's length).
    ///
    /// The recursion `s[n] = x[n] + c s[n-1] - s[n-2]` is stepped two samples at a time,
    /// `s[n+1] = (x[n+1] + c x[n] - c s[n-2]) + (c² - 1) s[n-1]`, so each step's chain of
    /// dependent operations covers two samples instead of one (the loop is bound by that
    /// chain's latency, not by the arithmetic). Same filter, rounded slightly differently.
    #[inline]
    pub fn bins(&self, x: &[f32]) -> [Bin; LANES] {
        let c = self.coeff;
        let d = c.map(|c| c * c - 1.0);
        let mut s1 = [0.0f32; LANES];
        let mut s2 = [0.0f32; LANES];
        let m = self.decimate;
        let x = &x[..(x.len() / m) * m];
        let mut pairs = x.chunks_exact(2 * m);
        for p in &mut pairs {
            let (xa, xb) = if m == 1 {
                (p[0], p[1])
            } else {
                (p[..m].iter().sum(), p[m..].iter().sum())
            };
            for k in 0..LANES {
                let a = (xa - s2[k]) + c[k] * s1[k];
                let b = ((xb + c[k] * xa) - c[k] * s2[k]) + d[k] * s1[k];
                s2[k] = a;
                s1[k] = b;
            }
        }
        for v in pairs.remainder().chunks_exact(m) {
            let v: f32 = v.iter().sum();
            for k in 0..LANES {
                let s0 = (v - s2[k]) + c[k] * s1[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        // y = s1 - e^{-jω} s2 = Σ x[n] e^{jω(N-1-n)}.
        std::array::from_fn(|k| Bin {
            re: s1[k] - self.cos[k] * s2[k],
            im: self.sin[k] * s2[k],
        })
    }

    /// The mean-square power of the sinusoid a bin holds (its amplitude squared over two), for a
    /// block of the bank's length.
    pub fn power(&self, k: usize, bin: Bin) -> f32 {
        self.scale[k] * bin.norm_sqr()
    }

    /// The frequency offset (Hz) of a tone in lane `k` from the accumulated
    /// `Σ bins[b] * conj(bins[b-1])` over consecutive blocks.
    pub fn offset_hz(&self, k: usize, advance: Bin) -> f64 {
        let d = advance.times_conj(Bin {
            re: self.turn[k].re,
            im: -self.turn[k].im,
        });
        let phase = (d.im as f64).atan2(d.re as f64);
        phase * self.rate as f64 / (2.0 * std::f64::consts::PI * self.block as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, amp: f32, rate: u32, n: usize, phase: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                amp * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64 + phase).sin()
                    as f32
            })
            .collect()
    }

    #[test]
    fn a_tone_gives_its_power_and_true_frequency() {
        for decimate in [1, 2] {
            a_tone_reads_right(Bank::new([697.0, 1633.0], 8000, 80, decimate));
        }
        a_tone_reads_right(Bank::new([697.0, 1633.0], 48000, 480, 12));
    }

    fn a_tone_reads_right(bank: Bank<2>) {
        let rate = bank.rate;
        for (hz, lane) in [(697.0, 0), (703.0, 0), (690.0, 0), (1650.0, 1)] {
            let x = sine(hz, 0.5, rate, bank.block * 10, 0.3);
            let bins: Vec<[Bin; 2]> = x.chunks(bank.block).map(|b| bank.bins(b)).collect();
            // Off the bin, the 10 ms block's response falls as sinc²: 0.87 at 21 Hz.
            let off = (hz - bank.hz[lane]) / 100.0;
            let sinc = (std::f64::consts::PI * off).sin() / (std::f64::consts::PI * off);
            let expected = if off == 0.0 { 1.0 } else { sinc * sinc };
            let ratio = bank.power(lane, bins[3][lane]) as f64 / 0.125 / expected;
            // Decimated, the box-car's gain is divided out at the lane's own frequency, and
            // its slope leaves a few percent 17 Hz away.
            assert!(
                ratio > 0.95 && ratio < 1.05,
                "{hz} Hz at {rate} Hz / {}: power ratio {ratio}",
                bank.decimate
            );
            let advance = bins.windows(2).fold(Bin::default(), |acc, w| {
                let a = w[1][lane].times_conj(w[0][lane]);
                Bin {
                    re: acc.re + a.re,
                    im: acc.im + a.im,
                }
            });
            let measured = bank.hz[lane] + bank.offset_hz(lane, advance);
            assert!((measured - hz).abs() < 0.5, "{hz} Hz read as {measured}");
        }
    }
}
