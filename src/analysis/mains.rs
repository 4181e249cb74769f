//! Mains hum taken out of what decides speech (`Half::ac`, `band`, `low` and the VAD's input).
//!
//! Hum is the mains' waveform repeated at 50 or 60 Hz, phase-locked to the supply. Averaged in
//! step with that period (synchronous averaging), a signal converges on its hum, while random
//! noise, which is not locked to the mains, averages out. The average learns only from frames
//! the caller says are noise (between phrases, hum is all there is), so speech never echoes in
//! it; each frame is added at unit RMS, so a swell weighs no more than a trough, and the average
//! forgets with a time constant of [`MEMORY_S`]. Each frame then loses its projection on that
//! average: the least-squares fit of the hum's amplitude to the frame, so a hum that swells and
//! fades is followed frame by frame, which a noise floor tracked over seconds cannot do.
//!
//! A projection only ever removes power. Without hum the average is a faint mix of noise, and a
//! frame loses its component along one direction of the template's length `L` (about 1/L of its
//! power: 0.03 dB at 8 kHz), which no gate can tell. Levels (`Half::power`), the SNR and the
//! hum's own measurement read the signal as it is: hum is noise a listener hears.

/// The mains frequencies in use (IEC 60038).
const MAINS_HZ: [u32; 2] = [50, 60];
/// The average's time constant: long enough that speech (whose pitch wanders by far more than
/// a cycle of a 50 Hz harmonic in this time) averages out to about an eighth of a frame's
/// RMS, short enough that the grid's frequency deviation (±0.05 Hz in normal operation, EN
/// 50160) turns the low harmonics by well under a tenth of a cycle.
pub const MEMORY_S: f64 = 0.64;
/// At most this many periods in one template, for rates where one period is not a whole number
/// of samples (8 kHz at 60 Hz: three periods are 400 samples).
const MAX_PERIODS: u32 = 10;

/// The least share of the learnt frames' power a template must hold, beyond what its noise
/// leaves in it, to be taken as hum and taken out. A hum a tenth of the noise (10 dB under it)
/// lifts the floor by 0.4 dB, and by 1.5 dB when it swells by 6 dB: under what the gates'
/// margins notice. Below it, frames are left exactly as they are.
const MIN_HUM_SHARE: f32 = 0.1;
/// Frames between two looks at whether the templates hold hum (once a second).
const CHECK_FRAMES: u32 = 50;
/// What the canceller leaves of hum is not noise anyone hears, and it swells with the hum:
/// detection reads levels against each other, so where nothing else is left (a hum on a line
/// otherwise digitally clean) those leftovers would stand out as the hum's swells did. A
/// steady white floor this far under the noise between phrases (hum and all) is added where
/// hum is taken out, so that what detection reads there is 20 dB of headroom won from the hum,
/// not the canceller's leftovers. Under the template's own precision (a 20 ms frame's share of
/// the average, `rate / 2`: -18 dB at 50 Hz) and 20 dB under any noise that was there.
const FLOOR_UNDER_DB: f32 = 20.0;
/// The time constant of the level of the noise between phrases.
const NOISE_MEMORY_FRAMES: f32 = 200.0;

/// The hum canceller of one channel.
#[derive(Debug, Clone)]
pub struct MainsCanceller {
    templates: Vec<Template>,
    /// The template taken out of every frame, if one holds hum.
    hum: Option<usize>,
    frames: u32,
    /// Mean power of the frames learnt from (the noise between phrases, hum and all).
    noise_power: f32,
    /// The white floor's generator (xorshift32, fixed seed: analyses repeat exactly).
    seed: u32,
}

/// The synchronous average over a whole number of one mains frequency's periods.
#[derive(Debug, Clone)]
struct Template {
    wave: Vec<f32>,
    /// Where the next sample falls in `wave`.
    pos: usize,
    /// The weight of each new period.
    rate: f32,
}

impl MainsCanceller {
    /// A canceller for a channel at `rate` Hz.
    pub fn new(rate: u32) -> MainsCanceller {
        let templates = MAINS_HZ
            .iter()
            .filter_map(|&hz| {
                let periods = (1..=MAX_PERIODS).find(|k| (k * rate).is_multiple_of(hz))?;
                let len = (periods * rate / hz) as usize;
                let span_s = len as f64 / rate as f64;
                Some(Template {
                    wave: vec![0.0; len],
                    pos: 0,
                    rate: (span_s / MEMORY_S).min(1.0) as f32,
                })
            })
            .collect();
        MainsCanceller {
            templates,
            hum: None,
            frames: 0,
            noise_power: 0.0,
            seed: 0x9E37_79B9,
        }
    }

    /// Writes `frame` without its hum to `out` and says so, or says there was none to take out
    /// (and leaves `out` as it was); `energy` is the frame's sum of squares. The average learns from the frame when `learn` (the frame is
    /// noise: speech learnt would take speech's own tails away).
    pub fn process(&mut self, frame: &[f32], energy: f32, learn: bool, out: &mut Vec<f32>) -> bool {
        self.frames += 1;
        if self.frames == CHECK_FRAMES {
            self.frames = 0;
            self.hum = self.find_hum();
        }
        let mut taken = false;
        if let Some(t) = self.hum.map(|k| &self.templates[k]) {
            if let Some(fit) = t.fit(frame) {
                out.clear();
                out.extend_from_slice(frame);
                t.subtract(out, fit);
                taken = true;
            }
        }
        if taken {
            // Uniform in ±a has power a²/3.
            let a = (3.0 * self.noise_power * 10f32.powf(-FLOOR_UNDER_DB / 10.0)).sqrt();
            for v in out.iter_mut() {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 17;
                self.seed ^= self.seed << 5;
                *v += a * (self.seed as f32 / u32::MAX as f32 * 2.0 - 1.0);
            }
        }
        // The templates learn from the frame as it is, after it was fitted: a frame is never
        // fitted by an average that already holds it.
        let scale = if learn && energy > 0.0 && energy.is_finite() {
            (frame.len() as f32 / energy).sqrt()
        } else {
            0.0
        };
        for t in &mut self.templates {
            if scale > 0.0 {
                t.learn(frame, scale);
            }
            t.pos = (t.pos + frame.len()) % t.wave.len();
        }
        if scale > 0.0 {
            let power = energy / frame.len() as f32;
            self.noise_power += (power - self.noise_power) / NOISE_MEMORY_FRAMES;
        }
        taken
    }

    /// Learns from the channel's first `frames` (before any is processed), from those within
    /// `learn_db` of the quietest, and decides whether they hold hum.
    pub fn prime<'a>(&mut self, frames: impl Iterator<Item = &'a [f32]> + Clone, learn_db: f64) {
        let energy = |f: &[f32]| f.iter().map(|v| v * v).sum::<f32>();
        let level = |f: &[f32]| level_db(energy(f), f.len());
        let floor = frames.clone().map(level).fold(f64::INFINITY, f64::min);
        let mut at = 0;
        let (mut sum, mut count) = (0.0f32, 0);
        for frame in frames {
            let e = energy(frame);
            if level(frame) <= floor + learn_db && e > 0.0 && e.is_finite() {
                sum += e / frame.len() as f32;
                count += 1;
                let scale = (frame.len() as f32 / e).sqrt();
                for t in &mut self.templates {
                    t.pos = at % t.wave.len();
                    t.learn(frame, scale);
                }
            }
            at += frame.len();
        }
        for t in &mut self.templates {
            t.pos = 0;
        }
        self.noise_power = sum / count.max(1) as f32;
        self.hum = self.find_hum();
        self.frames = 0;
    }

    /// The template that holds hum: the supply has one frequency, so the one holding more of
    /// the learnt power (the other holds only the harmonics they share, such as 300 Hz, and
    /// noise), if it holds at least `MIN_HUM_SHARE` beyond what noise leaves in an average
    /// (`rate / (2 - rate)` of its power, for independent unit-RMS frames).
    fn find_hum(&self) -> Option<usize> {
        self.templates
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let held = t.wave.iter().map(|w| w * w).sum::<f32>() / t.wave.len() as f32;
                (k, held - t.rate / (2.0 - t.rate))
            })
            .filter(|&(_, share)| share >= MIN_HUM_SHARE)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }
}

impl Template {
    /// Calls `f(i, p, n)` for the runs of `len` samples from the template's position: the
    /// samples `i..i + n` of the frame fall on `p..p + n` of `wave`.
    fn runs(&self, len: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (mut i, mut p) = (0, self.pos);
        while i < len {
            let n = (self.wave.len() - p).min(len - i);
            f(i, p, n);
            i += n;
            p = 0;
        }
    }

    /// The least-squares fit of the template to `x`, its amplitude a straight line across the
    /// frame (`a + b τ`, τ from -1/2 to 1/2): a hum that swells by 6 dB a second changes by 3 %
    /// within a 20 ms frame, which a constant amplitude would leave behind at -30 dB, and
    /// detection, which reads levels against each other, would see swell with the hum.
    fn fit(&self, x: &[f32]) -> Option<(f32, f32)> {
        let n = x.len();
        // Σ w², Σ τ w², Σ τ² w², Σ x w, Σ τ x w
        let mut m = [0.0f32; 5];
        self.runs(n, |i, p, len| {
            for (k, (&v, &w)) in x[i..i + len].iter().zip(&self.wave[p..p + len]).enumerate() {
                let tau = ramp(i + k, n);
                let ww = w * w;
                let xw = v * w;
                m[0] += ww;
                m[1] += tau * ww;
                m[2] += tau * tau * ww;
                m[3] += xw;
                m[4] += tau * xw;
            }
        });
        let [a, b, c, p, q] = m;
        if a <= f32::MIN_POSITIVE {
            return None;
        }
        let det = a * c - b * b;
        if det <= 1e-6 * a * c {
            return Some((p / a, 0.0));
        }
        Some(((p * c - q * b) / det, (q * a - p * b) / det))
    }

    /// Takes the fitted template (`gain + slope τ` times it) out of `x`.
    fn subtract(&self, x: &mut [f32], (gain, slope): (f32, f32)) {
        let n = x.len();
        self.runs(n, |i, p, len| {
            for (k, (v, w)) in x[i..i + len]
                .iter_mut()
                .zip(&self.wave[p..p + len])
                .enumerate()
            {
                *v -= (gain + slope * ramp(i + k, n)) * w;
            }
        });
    }

    /// Moves the average towards `frame` at unit RMS (`scale` times it).
    fn learn(&mut self, frame: &[f32], scale: f32) {
        let (pos, rate) = (self.pos, self.rate);
        let len = self.wave.len();
        let (mut i, mut p) = (0, pos);
        while i < frame.len() {
            let n = (len - p).min(frame.len() - i);
            for (w, &v) in self.wave[p..p + n].iter_mut().zip(&frame[i..i + n]) {
                *w += rate * (scale * v - *w);
            }
            i += n;
            p = 0;
        }
    }
}

/// The level of a frame of `len` samples whose sum of squares is `energy`, dBFS.
pub fn level_db(energy: f32, len: usize) -> f64 {
    10.0 * (energy as f64 / len.max(1) as f64 + 1e-20).log10()
}

/// Where sample `i` of `n` falls on the frame's ramp, from -1/2 to 1/2.
#[inline]
fn ramp(i: usize, n: usize) -> f32 {
    (i as f32 - (n as f32 - 1.0) / 2.0) / n as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(x: &[f32]) -> f64 {
        x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64
    }

    /// Deterministic white noise (xorshift), RMS about 0.29 * `amp`.
    fn noise(n: usize, amp: f32, mut seed: u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                amp * ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            })
            .collect()
    }

    /// Runs `x` through a canceller in 20 ms frames; the residual.
    /// Runs `x` through a canceller in 20 ms frames, primed on the first second as the
    /// channel tracker does, learning from frames within 6 dB of the first second's quietest.
    fn cancel(x: &[f32], rate: u32) -> Vec<f32> {
        let mut c = MainsCanceller::new(rate);
        let frame = (rate / 50) as usize;
        let primer = x[..(rate as usize).min(x.len())].chunks_exact(frame);
        c.prime(primer.clone(), 6.0);
        let floor = primer
            .map(|f| level_db(f.iter().map(|v| v * v).sum(), f.len()))
            .fold(f64::INFINITY, f64::min);
        x.chunks_exact(frame)
            .flat_map(|f| {
                let e: f32 = f.iter().map(|v| v * v).sum();
                let mut out = Vec::new();
                if c.process(f, e, level_db(e, f.len()) <= floor + 6.0, &mut out) {
                    out
                } else {
                    f.to_vec()
                }
            })
            .collect()
    }

    #[test]
    fn a_swelling_hum_is_taken_out_and_the_noise_under_it_kept() {
        for (rate, hz) in [
            (8000u32, 50.0f64),
            (8000, 60.0),
            (16000, 60.0),
            (11025, 50.0),
        ] {
            let n = 10 * rate as usize;
            let floor = noise(n, 0.01, 7);
            let hum: Vec<f32> = (0..n)
                .map(|i| {
                    let t = i as f64 / rate as f64;
                    // ±6 dB every 2 s, harmonics to 1 kHz falling as 1/k.
                    let swing = 10f64.powf(0.3 * (std::f64::consts::PI * t).sin());
                    let h: f64 = (1..=(1000.0 / hz) as usize)
                        .map(|k| (2.0 * std::f64::consts::PI * hz * k as f64 * t).sin() / k as f64)
                        .sum();
                    (0.1 * swing * h) as f32
                })
                .collect();
            let x: Vec<f32> = floor.iter().zip(&hum).map(|(a, b)| a + b).collect();
            let y = cancel(&x, rate);
            // After the first second: the hum, which stood more than 20 dB over the noise, is
            // 15 dB down or more, and what is left no longer swells with it (the noise and
            // the canceller's steady floor 20 dB under the hum).
            let from = rate as usize;
            let left = power(&y[from..]);
            let was = power(&x[from..y.len()]);
            assert!(10.0 * (was / power(&floor[from..y.len()])).log10() > 20.0);
            let down_db = 10.0 * (was / left).log10();
            assert!(
                down_db >= 15.0,
                "{rate} Hz, {hz} Hz hum: {down_db:.1} dB down"
            );
            let swing = |x: &[f32]| {
                let p: Vec<f64> = x.chunks_exact(rate as usize / 4).map(power).collect();
                let (lo, hi) = p
                    .iter()
                    .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
                10.0 * (hi / lo).log10()
            };
            let (before, after) = (swing(&x[from..y.len()]), swing(&y[from..]));
            assert!(
                before > 10.0 && after < 3.0,
                "{rate} Hz, {hz} Hz: swing {before:.1} -> {after:.1} dB"
            );
        }
    }

    #[test]
    fn without_hum_a_frame_keeps_its_power() {
        let rate = 8000;
        let x = noise(10 * rate, 0.1, 3);
        let y = cancel(&x, rate as u32);
        let off_db = 10.0 * (power(&y) / power(&x[..y.len()])).log10();
        assert!(off_db <= 0.0 && off_db > -0.1, "{off_db:.3} dB");
    }

    #[test]
    fn silence_and_odd_rates_are_safe() {
        let y = cancel(&vec![0.0; 8000], 8000);
        assert!(y.iter().all(|&v| v == 0.0));
        // 7999 Hz has no whole number of periods at 50 or 60 Hz within reach: left as it is.
        let mut c = MainsCanceller::new(7999);
        assert!(c.templates.is_empty());
        let mut out = Vec::new();
        assert!(!c.process(&[0.5, -0.5], 0.5, true, &mut out));
    }
}
