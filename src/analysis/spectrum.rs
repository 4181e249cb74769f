//! Spectra: the adapter for `realfft` (the only place that names it) and the pure maths on
//! power spectra: the speech bandwidth (roll-off) and mains-hum detection.
//!
//! Plans and buffers are made once per analyser and reused for every frame: no allocation per
//! frame.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// A windowed power spectrum of fixed-length frames.
pub struct PowerSpectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    /// Power per bin of the last frame, `size / 2 + 1` bins.
    pub power: Vec<f32>,
}

impl PowerSpectrum {
    /// Frames of `frame_len` samples (Hann-windowed), zero-padded to the next power of two.
    pub fn new(frame_len: usize) -> PowerSpectrum {
        let size = frame_len.next_power_of_two().max(16);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(size);
        let window = (0..frame_len)
            .map(|i| {
                let x = std::f32::consts::PI * (i as f32 + 0.5) / frame_len as f32;
                x.sin() * x.sin()
            })
            .collect();
        PowerSpectrum {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; size / 2 + 1],
            fft,
            window,
        }
    }

    pub fn size(&self) -> usize {
        self.input.len()
    }

    pub fn bins(&self) -> usize {
        self.power.len()
    }

    /// Computes the power spectrum of `frame` (at most `frame_len` samples) into `self.power`.
    pub fn compute(&mut self, frame: &[f32]) {
        let n = frame.len().min(self.window.len());
        for ((dst, &x), &w) in self.input.iter_mut().zip(&frame[..n]).zip(&self.window) {
            *dst = x * w;
        }
        self.input[n..].iter_mut().for_each(|v| *v = 0.0);
        // The lengths are fixed by the plan, so processing cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.output) {
            *p = c.norm_sqr();
        }
    }
}

/// The frequency under which `share` of the spectrum's power lies. `None` for an empty spectrum.
pub fn rolloff_hz(power: &[f64], bin_hz: f64, share: f64) -> Option<f64> {
    let total: f64 = power.iter().map(|p| p.max(0.0)).sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let target = total * share;
    let mut acc = 0.0;
    for (i, p) in power.iter().enumerate() {
        let p = p.max(0.0);
        if acc + p >= target {
            // Interpolate inside the bin.
            let frac = if p > 0.0 { (target - acc) / p } else { 0.0 };
            return Some((i as f64 - 0.5 + frac).max(0.0) * bin_hz);
        }
        acc += p;
    }
    Some((power.len() - 1) as f64 * bin_hz)
}

/// The outcome of looking for mains hum in a fine-resolution noise spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hum {
    pub hz: u32,
    /// How many harmonics (the fundamental included) stand out.
    pub lines: usize,
    /// The strongest line's height over the noise around it.
    pub excess_db: f64,
    /// The power of the lines that stand out (the sum of their peak bins), in the spectrum's
    /// units.
    pub power: f64,
}

/// Looks for a 50 or 60 Hz line family in `power` (bins `bin_hz` apart, at least ~1 Hz fine):
/// a family counts when at least two of its harmonics up to `max_hz` stand `margin_db` above the
/// median of the spectrum around them. Telephone paths often filter the fundamental away, so
/// the harmonics carry the evidence. When both families qualify, the one with more lines wins.
///
/// Over noise, a line standing `margin_db` out of its surroundings is itself unlikely, so two
/// are hum. Over music (the bed of a held call, a radio) tonal peaks stand out everywhere, and
/// some land on the mains' harmonics by chance. So the same test runs halfway between the
/// harmonics, as a control: where peaks stand there too, the family counts only when its lines
/// outnumber the control's beyond chance (a one-sided sign test at 5 %: a peak is as likely
/// on either grid if it has nothing to do with the mains).
pub fn detect_hum(power: &[f64], bin_hz: f64, max_hz: f64, margin_db: f64) -> Option<Hum> {
    let bin = |hz: f64| (hz / bin_hz).round() as isize;
    let near_line = |hz: f64| {
        [50.0, 60.0].iter().any(|&f0: &f64| {
            let k = (hz / f0).round();
            k >= 1.0 && (hz - k * f0).abs() <= 4.0
        })
    };
    let mut around = Vec::new();
    // The height over its surroundings of the strongest bin within 2 Hz of `f`, and that bin.
    let mut stands = |f: f64| -> Option<(f64, f64)> {
        let lo = bin(f - 2.0).max(0) as usize;
        let hi = (bin(f + 2.0).max(0) as usize).min(power.len().saturating_sub(1));
        if lo > hi {
            return None;
        }
        let line = power[lo..=hi].iter().cloned().fold(0.0, f64::max);
        around.clear();
        let wlo = bin(f - 25.0).max(0) as usize;
        let whi = (bin(f + 25.0).max(0) as usize).min(power.len().saturating_sub(1));
        for (i, &p) in power.iter().enumerate().take(whi + 1).skip(wlo) {
            if !near_line(i as f64 * bin_hz) {
                around.push(p);
            }
        }
        if around.len() < 4 || line <= 0.0 {
            return None;
        }
        around.sort_by(|a, b| a.total_cmp(b));
        let median = around[around.len() / 2].max(1e-30);
        let excess = 10.0 * (line / median).log10();
        (excess >= margin_db).then_some((excess, line))
    };
    let mut best: Option<Hum> = None;
    for f0 in [50u32, 60] {
        let mut lines = 0;
        let mut control = 0;
        let mut strongest = f64::NEG_INFINITY;
        let mut power_sum = 0.0;
        let mut k = 1;
        while (k * f0) as f64 <= max_hz {
            let f = (k * f0) as f64;
            k += 1;
            if let Some((excess, line)) = stands(f) {
                lines += 1;
                strongest = strongest.max(excess);
                power_sum += line;
            }
            if stands(f + 0.5 * f0 as f64).is_some() {
                control += 1;
            }
        }
        if lines >= 2 && (control == 0 || beats_chance(lines, control)) {
            let candidate = Hum {
                hz: f0,
                lines,
                excess_db: strongest,
                power: power_sum,
            };
            best = match best {
                Some(b) if b.lines > lines || (b.lines == lines && b.excess_db >= strongest) => {
                    Some(b)
                }
                _ => Some(candidate),
            };
        }
    }
    best
}

/// Whether `hits` of `hits + misses` even chances is more than chance allows: the one-sided
/// binomial tail P(X >= hits) at most 5 %.
fn beats_chance(hits: usize, misses: usize) -> bool {
    let n = hits + misses;
    // C(n, i) / 2^n summed over i >= hits, in f64 (n is a few tens at most).
    let mut c = 1.0f64; // C(n, 0)
    let mut tail = 0.0;
    for i in 0..=n {
        if i >= hits {
            tail += c;
        }
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    tail / 2f64.powi(n as i32) <= 0.05
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolloff_of_flat_spectrum_is_proportional() {
        let flat = vec![1.0; 101];
        let r = rolloff_hz(&flat, 40.0, 0.95).unwrap();
        assert!((r - 3800.0).abs() < 60.0, "{r}");
        assert_eq!(rolloff_hz(&[0.0; 10], 40.0, 0.95), None);
    }

    #[test]
    fn tone_lands_in_its_bin() {
        let rate = 8000.0;
        let mut s = PowerSpectrum::new(160);
        let frame: Vec<f32> = (0..160)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate).sin())
            .collect();
        s.compute(&frame);
        let peak = (0..s.bins())
            .max_by(|&a, &b| s.power[a].total_cmp(&s.power[b]))
            .unwrap();
        let hz = peak as f32 * rate / s.size() as f32;
        assert!((hz - 1000.0).abs() < 40.0, "{hz}");
    }

    fn line_spectrum(lines: &[f64]) -> Vec<f64> {
        let mut p = vec![1.0; 512];
        for &f in lines {
            p[f as usize] = 100.0;
        }
        p
    }

    #[test]
    fn hum_families_are_told_apart() {
        let h50 = detect_hum(&line_spectrum(&[50.0, 100.0, 150.0]), 1.0, 480.0, 10.0);
        assert_eq!(h50.map(|h| h.hz), Some(50));
        let h60 = detect_hum(&line_spectrum(&[60.0, 120.0, 180.0]), 1.0, 480.0, 10.0);
        assert_eq!(h60.map(|h| h.hz), Some(60));
        assert_eq!(detect_hum(&line_spectrum(&[]), 1.0, 480.0, 10.0), None);
        // One line alone is a tone, not mains hum.
        assert_eq!(detect_hum(&line_spectrum(&[50.0]), 1.0, 480.0, 10.0), None);
    }

    #[test]
    fn music_peaks_on_and_off_the_mains_grid_are_not_hum() {
        // A bed of notes: some peaks land on 50 Hz harmonics, as many between them.
        let notes = [100.0, 175.0, 250.0, 325.0, 400.0, 275.0];
        assert_eq!(detect_hum(&line_spectrum(&notes), 1.0, 480.0, 10.0), None);
        // Hum with a stray note between its lines is still hum: 8 lines beat 1 by chance.
        let mut hum: Vec<f64> = (1..=8).map(|k| 50.0 * k as f64).collect();
        hum.push(325.0);
        let h = detect_hum(&line_spectrum(&hum), 1.0, 480.0, 10.0);
        assert_eq!(h.map(|h| (h.hz, h.lines)), Some((50, 8)));
        assert!(beats_chance(5, 0) && !beats_chance(4, 0));
        assert!(beats_chance(7, 1) && !beats_chance(6, 1));
    }
}
