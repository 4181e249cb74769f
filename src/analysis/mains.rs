//! Mains hum taken out of what decides speech (`Half::ac`, `band`, `low` and the VAD's input).
//!
//! Hum is the mains' waveform repeated at 50 or 60 Hz, phase-locked to the supply. Averaged in
//! step with that period (synchronous averaging), a signal converges on its hum, while random
//! noise, which is not locked to the mains, averages out. The average learns only from frames
//! the caller says are noise (between phrases, hum is all there is), so speech never echoes in
//! it; each frame is added without its mean (a DC offset is in step with any period, and is no
//! hum) and at unit RMS, so a swell weighs no more than a trough, and the average
//! forgets with a time constant of [`MEMORY_S`]. Each frame then loses its projection on that
//! average: the least-squares fit of the hum's amplitude to the frame, so a hum that swells and
//! fades is followed frame by frame, which a noise floor tracked over seconds cannot do. The
//! supply is never exactly at its nominal frequency (grids run within about 0.1 %, EN 50160
//! allows 1 %), and the upper harmonics of a hum at 50.05 Hz would turn most of a cycle against
//! a 50 Hz average in its memory: the fit's slope term says how far the hum has moved along the
//! average, and a second-order loop moves the average with it (`Template::track`).
//!
//! Without hum (the average holds less than `MIN_HUM_SHARE` beyond what noise leaves in it),
//! frames are left exactly as they are. Where hum is taken out, a steady white floor 20 dB under
//! the noise between phrases is added (`FLOOR_UNDER_DB`). Levels (`Half::power`), the SNR and
//! the hum's own measurement read the signal as it is: hum is noise a listener hears.

/// The mains frequencies in use (IEC 60038).
const MAINS_HZ: [u32; 2] = [50, 60];
/// The average's time constant: long enough that noise averages out in it to about an eighth
/// of a frame's RMS (`rate / (2 - rate)` of its power: 1.6 % at 50 Hz), short enough that a
/// supply drifting by 0.05 Hz has moved by a small part of a cycle while the loop follows it.
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
/// steady white floor this far under the noise between phrases (hum and all, its DC aside) is
/// added where hum is taken out, so that what detection reads there is 20 dB of headroom won
/// from the hum, not the canceller's leftovers. It sits under the template's own precision (a
/// 20 ms frame's share of the average, `rate / 2`: -18 dB at 50 Hz), and 20 dB under any noise
/// that was there (a cost of 0.04 dB).
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
    /// Where the next sample falls in `wave` (a fraction once the supply's frequency is
    /// followed).
    phase: f64,
    /// Template samples per sample: 1 at the nominal frequency, the supply's own ratio to it once
    /// followed.
    step: f64,
    /// The weight of each new period.
    rate: f32,
    /// The farthest a fit's slope is believed about how far the hum moved, in samples (125 µs:
    /// an eighth of the period of 1 kHz, the top of a hum's strong harmonics).
    reach: f64,
    /// The template at the frame's samples, and its slope there (scratch for the fit).
    at: Vec<f32>,
    slope: Vec<f32>,
}

/// How fast the template follows the supply's frequency: a second-order loop on the hum's
/// offset from the template, measured each frame, with a time constant of 25 frames (0.5 s) and
/// damping 0.7 (`2 ζ ω` and `ω²` per frame).
const TRACK_PHASE: f64 = 2.0 * 0.7 / 25.0;
const TRACK_STEP: f64 = 1.0 / (25.0 * 25.0);
/// Rounds over the primer that follow the hum before the replay.
const PRIME_ROUNDS: usize = 4;
/// The supply's frequency stays within 1 % of nominal (EN 50160, 99.5 % of a year).
const MAX_DEVIATION: f64 = 0.01;

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
                    phase: 0.0,
                    step: 1.0,
                    rate: (span_s / MEMORY_S).min(1.0) as f32,
                    reach: rate as f64 / 8000.0,
                    at: Vec::new(),
                    slope: Vec::new(),
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
    /// (and leaves `out` as it was); `energy` is the frame's sum of squares. The average learns
    /// from the frame when `learn` (the frame is noise: speech learnt would take speech's own
    /// tails away), and then follows the supply's frequency too.
    pub fn process(&mut self, frame: &[f32], energy: f32, learn: bool, out: &mut Vec<f32>) -> bool {
        self.frames += 1;
        if self.frames == CHECK_FRAMES {
            self.frames = 0;
            self.hum = self.find_hum();
        }
        let mut taken = false;
        if let Some(t) = self.hum.map(|k| &mut self.templates[k]) {
            t.align(frame.len());
            if let Some(fit) = t.fit(frame) {
                out.clear();
                out.extend_from_slice(frame);
                t.subtract(out, fit);
                taken = true;
                if learn {
                    t.track(fit, frame.len());
                }
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
        let unit = learn.then(|| Unit::of(frame, energy)).flatten();
        for t in &mut self.templates {
            if let Some(u) = unit {
                t.learn(frame, u);
            }
            t.advance(frame.len());
        }
        if let Some(u) = unit {
            self.noise_power += (u.power - self.noise_power) / NOISE_MEMORY_FRAMES;
        }
        taken
    }

    /// Learns from the channel's first `frames` (before any is processed), from those within
    /// `learn_db` of the quietest, and decides whether they hold hum.
    pub fn prime<'a>(&mut self, frames: impl Iterator<Item = &'a [f32]> + Clone, learn_db: f64) {
        // Each frame's energy once: the frames learnt from, as learnt.
        let energies: Vec<f32> = frames
            .clone()
            .map(|f| f.iter().map(|v| v * v).sum())
            .collect();
        let level = |f: &[f32], e: f32| level_db(e, f.len());
        let floor = frames
            .clone()
            .zip(&energies)
            .map(|(f, &e)| level(f, e))
            .fold(f64::INFINITY, f64::min);
        let units: Vec<Option<Unit>> = frames
            .clone()
            .zip(&energies)
            .map(|(f, &e)| Unit::of(f, e).filter(|_| level(f, e) <= floor + learn_db))
            .collect();
        let mut at = 0;
        let (mut sum, mut count) = (0.0f32, 0);
        for (frame, unit) in frames.clone().zip(&units) {
            if let Some(u) = *unit {
                sum += u.power;
                count += 1;
                for t in &mut self.templates {
                    t.phase = (at % t.wave.len()) as f64;
                    t.learn(frame, u);
                }
            }
            at += frame.len();
        }
        for t in &mut self.templates {
            t.phase = 0.0;
        }
        self.noise_power = sum / count.max(1) as f32;
        self.hum = self.find_hum();
        self.frames = 0;
        // A supply off its nominal frequency has smeared that first average: go over the same
        // frames again, following the hum, until the replay can start in step with it (the
        // loop's time constant is half a second: a few rounds of the primer).
        let Some(t) = self.hum.map(|k| &mut self.templates[k]) else {
            return;
        };
        for _ in 0..PRIME_ROUNDS {
            let mut at = 0;
            for (frame, unit) in frames.clone().zip(&units) {
                if let Some(u) = *unit {
                    t.align(frame.len());
                    if let Some(fit) = t.fit(frame) {
                        t.track(fit, frame.len());
                    }
                    t.learn(frame, u);
                }
                t.advance(frame.len());
                at += frame.len();
            }
            t.phase = (t.phase - at as f64 * t.step).rem_euclid(t.wave.len() as f64);
        }
        self.hum = self.find_hum();
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
    /// Whether the template is read in whole samples (the nominal frequency).
    fn whole(&self) -> bool {
        self.step == 1.0 && self.phase.fract() == 0.0
    }

    /// Where sample `i` of the frame falls: the two template samples around it and how far
    /// between them.
    #[inline]
    fn place(&self, i: usize) -> (usize, usize, f32) {
        let len = self.wave.len();
        let q = self.phase + i as f64 * self.step;
        let base = q.floor();
        let i0 = (base as usize) % len;
        let i1 = if i0 + 1 == len { 0 } else { i0 + 1 };
        (i0, i1, (q - base) as f32)
    }

    /// The template and its slope at the next `n` samples (linear interpolation).
    fn align(&mut self, n: usize) {
        self.at.clear();
        self.slope.clear();
        for i in 0..n {
            let (i0, i1, fr) = self.place(i);
            let (w0, w1) = (self.wave[i0], self.wave[i1]);
            self.at.push(w0 + fr * (w1 - w0));
            self.slope.push(w1 - w0);
        }
    }

    /// The least-squares fit to `x` of the aligned template, its amplitude a straight line
    /// across the frame (`a + b τ`, τ from -1/2 to 1/2), plus `c` times its slope. A hum that
    /// swells by 6 dB a second changes by 3 % within a 20 ms frame, which a constant amplitude
    /// would leave behind at -30 dB, and detection, which reads levels against each other,
    /// would see swell with the hum. The slope's part is how far the hum has moved along the
    /// template (`c / a` samples): what `track` follows.
    fn fit(&self, x: &[f32]) -> Option<[f64; 3]> {
        let n = x.len();
        let mut g = [[0.0f64; 3]; 3];
        let mut r = [0.0f64; 3];
        for (i, (&v, (&w, &d))) in x.iter().zip(self.at.iter().zip(&self.slope)).enumerate() {
            let u = [w as f64, (ramp(i, n) * w) as f64, d as f64];
            for j in 0..3 {
                r[j] += u[j] * v as f64;
                for k in 0..3 {
                    g[j][k] += u[j] * u[k];
                }
            }
        }
        if g[0][0] <= 1e-12 {
            return None;
        }
        solve3(g, r).or(Some([r[0] / g[0][0], 0.0, 0.0]))
    }

    /// Takes the fitted template out of `x`.
    fn subtract(&self, x: &mut [f32], [a, b, c]: [f64; 3]) {
        let n = x.len();
        let (a, b, c) = (a as f32, b as f32, c as f32);
        for (i, (v, (&w, &d))) in x
            .iter_mut()
            .zip(self.at.iter().zip(&self.slope))
            .enumerate()
        {
            *v -= (a + b * ramp(i, n)) * w + c * d;
        }
    }

    /// Moves the template along with the hum by what the fit says it moved.
    fn track(&mut self, [a, _, c]: [f64; 3], n: usize) {
        if a <= 0.0 {
            return;
        }
        let reach = self.reach;
        let moved = (c / a).clamp(-reach, reach);
        let len = self.wave.len() as f64;
        self.phase = (self.phase + TRACK_PHASE * moved).rem_euclid(len);
        self.step = (self.step + TRACK_STEP * moved / n as f64)
            .clamp(1.0 - MAX_DEVIATION, 1.0 + MAX_DEVIATION);
    }

    /// Moves the template past the next `n` samples.
    fn advance(&mut self, n: usize) {
        self.phase = (self.phase + n as f64 * self.step).rem_euclid(self.wave.len() as f64);
    }

    /// Moves the average towards `frame` without its mean, at unit RMS (`u`).
    fn learn(&mut self, frame: &[f32], u: Unit) {
        let (rate, mean, scale) = (self.rate, u.mean, u.scale);
        if self.whole() {
            let len = self.wave.len();
            let (mut i, mut p) = (0, self.phase as usize % len);
            while i < frame.len() {
                let n = (len - p).min(frame.len() - i);
                for (w, &v) in self.wave[p..p + n].iter_mut().zip(&frame[i..i + n]) {
                    *w += rate * (scale * (v - mean) - *w);
                }
                i += n;
                p = 0;
            }
            return;
        }
        // Between two template samples, each takes its share of the difference.
        for (i, &v) in frame.iter().enumerate() {
            let (i0, i1, fr) = self.place(i);
            let (w0, w1) = (self.wave[i0], self.wave[i1]);
            let diff = rate * (scale * (v - mean) - (w0 + fr * (w1 - w0)));
            self.wave[i0] += (1.0 - fr) * diff;
            self.wave[i1] += fr * diff;
        }
    }
}

/// A frame as the average learns it: without its mean (a DC offset is constant, so in step with
/// any period, and is no hum: `Half::ac` leaves it out anyway), at unit RMS.
#[derive(Debug, Clone, Copy)]
struct Unit {
    mean: f32,
    scale: f32,
    /// The frame's power about its mean.
    power: f32,
}

impl Unit {
    /// `frame`, whose sum of squares is `energy`, as learnt; none for a frame without AC power.
    fn of(frame: &[f32], energy: f32) -> Option<Unit> {
        let n = frame.len() as f32;
        let mean = frame.iter().sum::<f32>() / n;
        let power = energy / n - mean * mean;
        (power > 0.0 && power.is_finite()).then(|| Unit {
            mean,
            scale: power.sqrt().recip(),
            power,
        })
    }
}

/// Solves `g x = r` for a symmetric 3×3 `g` (Cramer's rule), if it is well conditioned.
fn solve3(g: [[f64; 3]; 3], r: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(g);
    if d.abs() <= 1e-9 * g[0][0] * g[1][1] * g[2][2] || !d.is_finite() {
        return None;
    }
    let mut x = [0.0; 3];
    for (j, xj) in x.iter_mut().enumerate() {
        let mut m = g;
        for k in 0..3 {
            m[k][j] = r[k];
        }
        *xj = det(m) / d;
    }
    Some(x)
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
            // The supply off its nominal frequency: followed.
            (8000, 50.05),
            (8000, 49.9),
            (16000, 60.12),
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
            // (From the third second: a supply off its frequency is followed within two.)
            let (before, after) = (swing(&x[from..y.len()]), swing(&y[3 * from..]));
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
    fn a_dc_offset_is_no_hum() {
        // A cheap converter's offset 24 dB over the noise: constant, so in step with any
        // period, and left alone.
        let rate = 8000;
        let x: Vec<f32> = noise(5 * rate, 0.01, 5).iter().map(|v| v + 0.05).collect();
        let mut c = MainsCanceller::new(rate as u32);
        c.prime(x[..rate].chunks_exact(160), 6.0);
        assert_eq!(c.hum, None);
        let mut out = Vec::new();
        for f in x.chunks_exact(160) {
            let e = f.iter().map(|v| v * v).sum();
            assert!(!c.process(f, e, true, &mut out));
        }
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
