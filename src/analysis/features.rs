//! Pass one: the streaming, per-channel feature extractor.
//!
//! Every sample is touched once, in 20 ms frames split into two 10 ms halves. What is kept is
//! small and proportional to the duration (8 bytes per 10 ms, one VAD decision per 30 ms, and
//! the rare runs of digital silence), so a four-hour call costs about 12 MB per channel and never
//! its audio. Spectra are summed into
//! buckets by frame level, so the speech and noise spectra can be taken once the noise floor is
//! known, without a second pass over the audio. No allocation happens per frame.

use crate::audio::Resampler;
use crate::config::VadMode;

use super::fingerprint::{Fingerprint, Fingerprinter};
use super::mains::MainsCanceller;
use super::music::{Tone, ToneTracker};
use super::spectrum::PowerSpectrum;
use super::tones::{Beep, Dtmf, HalfView, ToneSpan};
use super::vad::{self, Vad};

/// A sample whose magnitude is at or below this is digital silence (about -72 dBFS; covers the
/// smallest G.711 A-law step, which has no exact zero).
pub const SILENCE_EPS: f32 = 2.5e-4;

/// What is kept of each 10 ms of one channel: four powers as bfloat16 (the top half of an
/// f32: 0.4% precision, the whole range), 8 bytes in all.
///
/// - `power`: mean square of the samples, what levels are measured on;
/// - `band`: mean square of the pre-emphasised samples (1 - 0.97 z^-1), the speech band's energy
///   with rumble, hum and DC drift 20-30 dB down;
/// - `ac`: mean square about the half's own mean, the full band without DC and the slow wander
///   under about 50 Hz that no voice makes;
/// - `low`: mean square in the voicing band ([`LowBand`], about 100-390 Hz), where a decaying
///   voice lasts longest and white noise has a tenth of its power.
///
/// Detection runs on `band` and `ac`; edges also follow `low`. Where a channel carries mains
/// hum, these three (and the VAD's input) are taken after the hum canceller (`mains`);
/// `power` is always the signal as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Half([u16; 4]);

fn to_bf16(x: f32) -> u16 {
    let bits = x.max(0.0).to_bits();
    // Round to nearest; powers are finite and non-negative, so this never overflows into NaN.
    ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

fn from_bf16(x: u16) -> f32 {
    f32::from_bits((x as u32) << 16)
}

impl Half {
    pub fn new(power: f32, band: f32, ac: f32, low: f32) -> Half {
        Half([to_bf16(power), to_bf16(band), to_bf16(ac), to_bf16(low)])
    }
    pub fn power(self) -> f32 {
        from_bf16(self.0[0])
    }
    pub fn band(self) -> f32 {
        from_bf16(self.0[1])
    }
    pub fn ac(self) -> f32 {
        from_bf16(self.0[2])
    }
    pub fn low(self) -> f32 {
        from_bf16(self.0[3])
    }
}

/// The voicing band: a band-pass biquad at 200 Hz, Q 0.7, 0 dB at its peak (about 100-390 Hz
/// between its half-power points).
///
/// As a voice decays, its fundamental and first harmonics (and the low side of the first
/// formant) are what remain last, while fricatives and the upper formants fade first. The band
/// holds a tenth of white noise's power and a third of pink's, so a voiced tail stands up to
/// 10 dB further out of white noise here than in the full band. The unit peak gain means the
/// band's power never exceeds the speech's own, so measuring a tail's strength here can only
/// under-state it. Telephone-band calls carry little below 300 Hz: the band then simply sees
/// little speech, and the other views decide.
#[derive(Debug, Clone, Copy)]
pub struct LowBand {
    b0: f64,
    a1: f64,
    a2: f64,
    /// The feedback of the recursion in steps of two: `y[n] = w[n] - d2 y[n-2] - d4 y[n-4]`.
    d2: f64,
    d4: f64,
    /// The last two inputs, the last two `u[n] = b0 (x[n] - x[n-2])` and the last four outputs.
    x: [f64; 2],
    u: [f64; 2],
    y: [f64; 4],
}

/// Centre and Q of the voicing band.
const LOW_BAND_HZ: f64 = 200.0;
const LOW_BAND_Q: f64 = 0.7;

impl LowBand {
    /// The band-pass for `rate` Hz (RBJ's constant 0 dB peak gain form: b1 = 0, b2 = -b0).
    pub fn new(rate: u32) -> LowBand {
        let w0 = 2.0 * std::f64::consts::PI * LOW_BAND_HZ / rate as f64;
        let alpha = w0.sin() / (2.0 * LOW_BAND_Q);
        let a0 = 1.0 + alpha;
        let (a1, a2) = (-2.0 * w0.cos() / a0, (1.0 - alpha) / a0);
        LowBand {
            b0: alpha / a0,
            a1,
            a2,
            d2: 2.0 * a2 - a1 * a1,
            d4: a2 * a2,
            x: [0.0; 2],
            u: [0.0; 2],
            y: [0.0; 4],
        }
    }

    /// Energy of `x` through the band-pass, the state carried on from the samples before.
    ///
    /// The recursion `y[n] = u[n] - a1 y[n-1] - a2 y[n-2]` (`u[n] = b0 (x[n] - x[n-2])`) is run
    /// in its scattered look-ahead form: multiplying the denominator `D(z)` by `D(-z)` leaves
    /// only even powers, `y[n] = w[n] - (2 a2 - a1²) y[n-2] - a2² y[n-4]` with
    /// `w[n] = u[n] - a1 u[n-1] + a2 u[n-2]`. The added poles mirror the filter's own (so it
    /// stays as stable), and even and odd samples make two independent chains: one multiply
    /// and add of latency per two samples instead of per sample. Same filter, same output.
    #[inline]
    pub fn energy(&mut self, x: &[f32]) -> f32 {
        let (b0, a1, a2, d2, d4) = (self.b0, self.a1, self.a2, self.d2, self.d4);
        let [mut x1, mut x2] = self.x;
        let [mut u1, mut u2] = self.u;
        let [mut y1, mut y2, mut y3, mut y4] = self.y;
        let (mut ea, mut eb) = (0.0f64, 0.0f64);
        let mut pairs = x.chunks_exact(2);
        for p in &mut pairs {
            let (xa, xb) = (p[0] as f64, p[1] as f64);
            let ua = b0 * (xa - x2);
            let ub = b0 * (xb - x1);
            let wa = ua - a1 * u1 + a2 * u2;
            let wb = ub - a1 * ua + a2 * u1;
            let ya = (wa - d4 * y4) - d2 * y2;
            let yb = (wb - d4 * y3) - d2 * y1;
            (x2, x1, u2, u1) = (xa, xb, ua, ub);
            (y4, y3, y2, y1) = (y2, y1, ya, yb);
            ea += ya * ya;
            eb += yb * yb;
        }
        if let [v] = pairs.remainder() {
            let v = *v as f64;
            let u = b0 * (v - x2);
            let y = u - a1 * y1 - a2 * y2;
            (x2, x1, u2, u1) = (x1, v, u1, u);
            (y4, y3, y2, y1) = (y3, y2, y1, y);
            ea += y * y;
        }
        // Long digital silence would otherwise decay the state into subnormals (slow).
        if [y1, y2, y3, y4].iter().all(|y| y.abs() < 1e-30) {
            (y1, y2, y3, y4) = (0.0, 0.0, 0.0, 0.0);
        }
        self.x = [x1, x2];
        self.u = [u1, u2];
        self.y = [y1, y2, y3, y4];
        (ea + eb) as f32
    }
}

/// Digital-silence samples at the start and end of a half, kept only for the halves that have
/// any (they are rare inside speech, which is where dropouts are looked for).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zeros {
    pub index: u32,
    pub lead: u16,
    pub trail: u16,
}

/// Spectra summed by frame level, in 1 dB buckets from -100 to +10 dBFS.
#[derive(Debug, Clone)]
pub struct LevelSpectra {
    pub bins: usize,
    pub bin_hz: f64,
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
}

pub const LEVEL_MIN_DB: f64 = -100.0;
pub const LEVEL_BUCKETS: usize = 110;

impl LevelSpectra {
    fn new(bins: usize, bin_hz: f64) -> LevelSpectra {
        LevelSpectra {
            bins,
            bin_hz,
            sums: vec![0.0; bins * LEVEL_BUCKETS],
            counts: vec![0; LEVEL_BUCKETS],
        }
    }

    pub fn bucket(level_db: f64) -> usize {
        ((level_db - LEVEL_MIN_DB).floor().max(0.0) as usize).min(LEVEL_BUCKETS - 1)
    }

    fn add(&mut self, level_db: f64, power: &[f32]) {
        let b = Self::bucket(level_db);
        self.counts[b] += 1;
        for (s, &p) in self.sums[b * self.bins..(b + 1) * self.bins]
            .iter_mut()
            .zip(power)
        {
            *s += p as f64;
        }
    }

    /// The level under which lie at least `share` of the frames (and at least `min` of them):
    /// an upper bound for `mean_between`.
    pub fn quantile_db(&self, share: f64, min: u64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let want = ((share * total as f64).ceil() as u64).max(min);
        let mut acc = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return LEVEL_MIN_DB + b as f64 + 1.0;
            }
        }
        f64::INFINITY
    }

    /// The mean spectrum of the frames whose level lies in `[lo_db, hi_db)`, with its frame count.
    pub fn mean_between(&self, lo_db: f64, hi_db: f64) -> (Vec<f64>, u64) {
        let mut out = vec![0.0; self.bins];
        let mut n = 0;
        for b in 0..LEVEL_BUCKETS {
            let bucket_lo = LEVEL_MIN_DB + b as f64;
            let inside = if b == 0 {
                lo_db < bucket_lo + 1.0
            } else {
                bucket_lo + 0.5 >= lo_db
            };
            if !inside || bucket_lo + 0.5 >= hi_db || self.counts[b] == 0 {
                continue;
            }
            n += self.counts[b];
            for (o, s) in out
                .iter_mut()
                .zip(&self.sums[b * self.bins..(b + 1) * self.bins])
            {
                *o += s;
            }
        }
        if n > 0 {
            out.iter_mut().for_each(|o| *o /= n as f64);
        }
        (out, n)
    }
}

/// Magnitude histogram of loud samples, to find flat-topped (clipped) runs at the signal's extreme.
#[derive(Debug, Clone)]
pub struct ClipHistogram {
    /// Samples by magnitude, for magnitudes from `CLIP_LO` up in steps of `CLIP_STEP`.
    pub samples: Vec<u64>,
    /// Flat runs (two or more equal samples) by magnitude.
    pub runs: Vec<u64>,
}

pub const CLIP_LO: f32 = 0.25;
pub const CLIP_STEP: f32 = 0.0005;
const CLIP_BINS: usize = 3500;

impl ClipHistogram {
    pub fn bin(magnitude: f32) -> usize {
        (((magnitude - CLIP_LO) / CLIP_STEP).max(0.0) as usize).min(CLIP_BINS - 1)
    }
}

/// Everything pass one keeps of one channel.
#[derive(Debug, Clone)]
pub struct ChannelFeatures {
    pub rate: u32,
    /// Samples per 10 ms half.
    pub half_len: usize,
    pub halves: Vec<Half>,
    /// Sorted by half index.
    pub zeros: Vec<Zeros>,
    /// One WebRTC VAD decision per 30 ms (three halves).
    pub vad: Vec<bool>,
    pub samples: u64,
    pub sum: f64,
    pub peak: f32,
    pub clip: ClipHistogram,
    /// Frame spectra of frames the VAD called non-speech / speech.
    pub spectra: [LevelSpectra; 2],
    /// Fine (about 1 Hz) spectra of about 1 s blocks of the signal decimated to about 1 kHz.
    pub hum: LevelSpectra,
    /// Noise inside speech, by frame level (the buckets of `LevelSpectra`): the sum over speech
    /// frames of each one's power over its spectral floor (dB), and their count (see
    /// [`SpeechFloor`]).
    pub speech_floor: Vec<(f64, u32)>,
    /// Held spectral peaks (`music`), and the number of 80 ms hops they were looked for in.
    pub tones: Vec<Tone>,
    pub tone_hops: usize,
    /// DTMF tones (when, never which digit) and the recorder's beeps (`tones`).
    pub dtmf: Vec<ToneSpan>,
    pub beeps: Vec<ToneSpan>,
    /// The fingerprint of the channel's start, when announcements are looked for.
    pub print: Option<Fingerprint>,
}

/// Runs of digital silence at most this long (200 ms, the longest dropout) between sound are
/// lost packets, not pauses.
pub const MAX_LOST_HALVES: usize = 20;

/// Sound whose peak stands this far over digital silence (12 dB over [`SILENCE_EPS`]) is what a
/// lost packet interrupts; a line this close to digital silence has halves of it by chance.
const SOUND_PEAK: f32 = 4.0 * SILENCE_EPS;

impl ChannelFeatures {
    /// Fills each short run of fully silent halves between sound with the halves on either side
    /// of it (their geometric mean, view by view), so that detection sees through a lost packet
    /// as a listener does. A lost packet carries no information about speech; left as digital
    /// silence it is the quietest moment of the call, and the noise floor's track and the
    /// phrases' levels built on it would move speech seconds away. The dropout measurement
    /// reads `zeros`, which keeps the runs.
    pub fn see_through_lost_packets(&mut self) {
        let half_len = self.half_len;
        let n = self.halves.len();
        let silent = |z: &Zeros| z.lead as usize >= half_len;
        let mut k = 0;
        while k < self.zeros.len() {
            if !silent(&self.zeros[k]) {
                k += 1;
                continue;
            }
            let first = self.zeros[k].index as usize;
            let mut last = first;
            while k + 1 < self.zeros.len()
                && self.zeros[k + 1].index as usize == last + 1
                && silent(&self.zeros[k + 1])
            {
                k += 1;
                last += 1;
            }
            k += 1;
            if first == 0 || last + 1 >= n || last + 1 - first > MAX_LOST_HALVES {
                continue;
            }
            // The nearest whole halves of sound on each side (a neighbour may hold the run's
            // first or last zeros).
            let whole = |j: usize| {
                self.zeros
                    .binary_search_by_key(&(j as u32), |z| z.index)
                    .is_err()
            };
            let before = if whole(first - 1) || first < 2 {
                first - 1
            } else {
                first - 2
            };
            let after = if whole(last + 1) || last + 2 >= n {
                last + 1
            } else {
                last + 2
            };
            let (a, b) = (self.halves[before], self.halves[after]);
            let mean = |x: f32, y: f32| (x * y).sqrt();
            let fill = Half::new(
                mean(a.power(), b.power()),
                mean(a.band(), b.band()),
                mean(a.ac(), b.ac()),
                mean(a.low(), b.low()),
            );
            self.halves[first..=last].iter_mut().for_each(|h| *h = fill);
        }
    }
}

/// Noise that lives inside speech (a coarse quantiser's, a codec's, noise a gate or a codec's
/// silence suppression leaves out of the pauses) is not seen by the SNR, which takes the noise
/// from the pauses. It is seen in the speech's own spectrum: a voice's spectrum has deep valleys
/// (between its harmonics, above its formants), and noise fills them. So a speech frame's power
/// over its spectral floor (the 10th percentile of its telephone-band bins, as if flat over the
/// band) bounds its SNR from above: white noise at 10-30 dB SNR reads up to 5 dB over the truth,
/// 4-6 bit quantisation 20-28 dB, and clean speech reads 35-41 dB (its own valleys; measured on the
/// `scripts/score-v2` dev calls).
struct SpeechFloor {
    /// The telephone band's bins (300-3400 Hz), and room to order them.
    band: std::ops::Range<usize>,
    scratch: Vec<u32>,
}

/// The floor's percentile of a frame's band bins.
const FLOOR_SHARE: f64 = 0.1;
/// One speech spectrum in this many is read for its floor (about 6 a second of speech: the
/// floor is an average, and reading each would cost 10 % of the analysis).
const FLOOR_EVERY: u64 = 2;

impl SpeechFloor {
    fn new(bin_hz: f64, bins: usize) -> SpeechFloor {
        let lo = ((300.0 / bin_hz).ceil() as usize).min(bins);
        let hi = ((3400.0 / bin_hz).floor() as usize + 1).clamp(lo, bins);
        SpeechFloor {
            band: lo..hi,
            scratch: Vec::with_capacity(hi - lo),
        }
    }

    /// The band's power over its floor spread flat over the band (dB), for a spectrum `power`;
    /// `None` for a band too narrow to have a floor or a floor of digital silence.
    fn over_floor_db(&mut self, power: &[f32]) -> Option<f64> {
        let band = power.get(self.band.clone())?;
        if band.len() < 10 {
            return None;
        }
        // Powers are never negative, so their bits order as they do.
        self.scratch.clear();
        self.scratch.extend(band.iter().map(|p| p.to_bits()));
        let k = (band.len() as f64 * FLOOR_SHARE) as usize;
        let floor = f32::from_bits(*self.scratch.select_nth_unstable(k).1);
        let total: f32 = band.iter().sum();
        (floor > 0.0).then(|| 10.0 * (total as f64 / (floor as f64 * band.len() as f64)).log10())
    }
}

/// The streaming extractor for one channel.
pub struct ChannelTracker {
    f: ChannelFeatures,
    frame_len: usize,
    full_scale: f32,
    pending: Vec<f32>,
    /// The last sample of the frame before, without its hum (pre-emphasis reads it).
    last_sample: f32,
    low_band: LowBand,
    /// Takes mains hum out of the views detection reads (`mains`), into `residual`.
    mains: MainsCanceller,
    residual: Vec<f32>,
    /// The last half that was not digital silence (when it stands out of it), the halves of
    /// digital silence since, and room for a frame with its lost halves filled in. When
    /// `sound_in_prev`, the last sound is the frame before's second half instead (peak
    /// `prev_peak`), copied only once a frame with silence, or the end of a block, needs it.
    last_sound: Vec<f32>,
    sound_in_prev: bool,
    prev_peak: f32,
    silent_halves: usize,
    patched: Vec<f32>,
    /// The first `PRIME_FRAMES` frames, until they are fed; then the primer frames still to
    /// replay.
    primer: Option<Vec<f32>>,
    replaying: usize,
    spectrum: PowerSpectrum,
    vad: Vad,
    /// Resamples to the VAD's rate when the file's is not one it takes.
    vad_resampler: Option<Resampler>,
    vad_input: Vec<i16>,
    vad_resampled: Vec<f32>,
    vad_len: usize,
    frames_seen: u64,
    /// Quietest frame level of the current second and of the last few.
    floor_block: f64,
    floor_frames: usize,
    floor_ring: [f64; 4],
    floor_next: usize,
    clip_prev: f32,
    clip_in_run: bool,
    dec: usize,
    dec_acc: f32,
    dec_fill: usize,
    hum_block: Vec<f32>,
    hum_block_power: f64,
    hum_block_halves: u32,
    hum_spectrum: PowerSpectrum,
    tone_tracker: ToneTracker,
    speech_floor: SpeechFloor,
    speech_spectra: u64,
    dtmf: Box<Dtmf>,
    beep: Option<Beep>,
    /// The fingerprint of the channel's start, where announcements are looked for.
    pub(crate) fingerprint: Option<Box<Fingerprinter>>,
}

/// Samples of the decimated signal per hum block (about 0.5 s at about 1 kHz, 2 Hz bins: short
/// enough that pauses between prompts hold whole blocks free of speech).
pub(crate) const HUM_BLOCK: usize = 512;
/// Frames per block of the running floor (1 s), and how far above it a frame needs no VAD.
const FLOOR_BLOCK_FRAMES: usize = 50;
const FAR_ABOVE_FLOOR_DB: f64 = 25.0;
/// The hum canceller learns the mains' waveform from frames within this of the running floor:
/// the noise between phrases, where hum is all there is. 6 dB takes in a 20 ms frame of white
/// noise's own spread (about ±1 dB) and a slowly swelling hum's troughs, and leaves out the
/// speech whose echo in the average would take its own tails away.
const MAINS_LEARN_DB: f64 = 6.0;
/// Frames the hum canceller learns from before the first is fed (1 s).
const PRIME_FRAMES: usize = 50;
/// Frames between two spectra (the long-term speech and noise spectra are averages).
const SPECTRUM_EVERY: u64 = 4;
/// The VAD's frame: its longest, which costs the least per second of audio.
const VAD_FRAME_MS: usize = 30;
/// Halves (10 ms) per VAD decision.
pub const HALVES_PER_VAD: usize = VAD_FRAME_MS / 10;
/// Rate the VAD runs at when the file's rate is not one it takes.
const VAD_FALLBACK_RATE: u32 = 8000;

impl ChannelTracker {
    /// A tracker for one channel at `rate` Hz; `beep_hz` is the recorder's beep to look for.
    pub fn new(
        rate: u32,
        full_scale: f32,
        mode: VadMode,
        beep_hz: Option<f64>,
    ) -> Result<ChannelTracker, String> {
        let half_len = ((rate as f64) / 100.0).round().max(1.0) as usize;
        let frame_len = 2 * half_len;
        let spectrum = PowerSpectrum::new(frame_len);
        let bin_hz = rate as f64 / spectrum.size() as f64;
        let speech_floor = SpeechFloor::new(bin_hz, spectrum.bins());
        let (vad_rate, vad_resampler) = if vad::RATES.contains(&rate) {
            (rate, None)
        } else {
            let resampler = Resampler::new(rate, VAD_FALLBACK_RATE).map_err(|e| e.to_string())?;
            (VAD_FALLBACK_RATE, Some(resampler))
        };
        let vad = Vad::new(vad_rate, mode).ok_or("no VAD at this rate")?;
        let vad_len = (vad_rate as usize * VAD_FRAME_MS) / 1000;
        let dec = ((rate as f64) / 1000.0).round().max(1.0) as usize;
        let hum_spectrum = PowerSpectrum::new(HUM_BLOCK);
        let hum_bin_hz = rate as f64 / dec as f64 / hum_spectrum.size() as f64;
        Ok(ChannelTracker {
            f: ChannelFeatures {
                rate,
                half_len,
                halves: Vec::new(),
                zeros: Vec::new(),
                vad: Vec::new(),
                samples: 0,
                sum: 0.0,
                peak: 0.0,
                clip: ClipHistogram {
                    samples: vec![0; CLIP_BINS],
                    runs: vec![0; CLIP_BINS],
                },
                spectra: [
                    LevelSpectra::new(spectrum.bins(), bin_hz),
                    LevelSpectra::new(spectrum.bins(), bin_hz),
                ],
                hum: LevelSpectra::new(hum_spectrum.bins(), hum_bin_hz),
                speech_floor: vec![(0.0, 0); LEVEL_BUCKETS],
                tones: Vec::new(),
                tone_hops: 0,
                dtmf: Vec::new(),
                beeps: Vec::new(),
                print: None,
            },
            frame_len,
            full_scale,
            pending: Vec::with_capacity(frame_len),
            last_sample: 0.0,
            low_band: LowBand::new(rate),
            mains: MainsCanceller::new(rate),
            residual: Vec::with_capacity(frame_len),
            last_sound: Vec::with_capacity(frame_len / 2),
            sound_in_prev: false,
            prev_peak: 0.0,
            silent_halves: 0,
            patched: Vec::with_capacity(frame_len),
            primer: Some(Vec::with_capacity(frame_len * PRIME_FRAMES)),
            replaying: 0,
            spectrum,
            vad,
            vad_resampler,
            vad_input: Vec::with_capacity(4 * vad_len),
            vad_resampled: Vec::new(),
            vad_len,
            frames_seen: 0,
            floor_block: f64::INFINITY,
            floor_frames: 0,
            floor_ring: [f64::INFINITY; 4],
            floor_next: 0,
            clip_prev: 0.0,
            clip_in_run: false,
            dec,
            dec_acc: 0.0,
            dec_fill: 0,
            hum_block: Vec::with_capacity(HUM_BLOCK),
            hum_block_power: 0.0,
            hum_block_halves: 0,
            hum_spectrum,
            tone_tracker: ToneTracker::new(rate, frame_len),
            speech_floor,
            speech_spectra: 0,
            dtmf: Box::new(Dtmf::new(rate, half_len)),
            beep: beep_hz.map(|hz| Beep::new(hz, rate, half_len)),
            fingerprint: None,
        })
    }

    /// Looks for the recorder's beep at `hz` (from the start of the channel).
    pub(crate) fn look_for_beep(&mut self, hz: f64) {
        self.beep = Some(Beep::new(hz, self.f.rate, self.f.half_len));
    }

    /// Feeds the next samples of this channel.
    pub fn push(&mut self, mut samples: &[f32]) {
        if let Some(f) = self.fingerprint.as_mut().filter(|f| !f.full()) {
            f.push(samples);
        }
        if let Some(primer) = self.primer.as_mut() {
            let take = (self.frame_len * PRIME_FRAMES - primer.len()).min(samples.len());
            primer.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if primer.len() < self.frame_len * PRIME_FRAMES {
                return;
            }
            self.replay_primer();
        }
        self.feed(samples);
    }

    /// The channel's first second, held back until the hum canceller has learnt from it (hum
    /// there would otherwise stand out of the cancelled rest as speech), then fed.
    fn replay_primer(&mut self) {
        let Some(primer) = self.primer.take() else {
            return;
        };
        let frames = primer.chunks_exact(self.frame_len);
        self.replaying = frames.len();
        self.mains.prime(frames, MAINS_LEARN_DB);
        self.feed(&primer);
    }

    /// Feeds samples past the primer.
    fn feed(&mut self, mut samples: &[f32]) {
        if !self.pending.is_empty() {
            let take = (self.frame_len - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() < self.frame_len {
                return;
            }
            let frame = std::mem::take(&mut self.pending);
            self.frame(&frame, None);
            self.keep_sound_of(Some(&frame));
            self.pending = frame;
            self.pending.clear();
        }
        let mut chunks = samples.chunks_exact(self.frame_len);
        let mut prev = None;
        for frame in &mut chunks {
            self.frame(frame, prev);
            prev = Some(frame);
        }
        self.keep_sound_of(prev);
        self.pending.extend_from_slice(chunks.remainder());
    }

    /// Ends the stream: a last partial frame counts for the sample statistics (peak, DC,
    /// clipping, duration) but is too short to judge for speech.
    pub fn finish(mut self) -> ChannelFeatures {
        self.replay_primer();
        let tail = std::mem::take(&mut self.pending);
        for half in tail.chunks(self.f.half_len) {
            let (sum, _, max) = moments(half);
            self.f.sum += sum as f64;
            self.f.peak = self.f.peak.max(max);
            if max >= 0.5 * self.full_scale {
                self.scan_clipping(half);
            }
        }
        self.f.samples += tail.len() as u64;
        (self.f.tones, self.f.tone_hops) = self.tone_tracker.finish();
        self.f.dtmf = (*self.dtmf).finish();
        self.f.print = self.fingerprint.map(|f| f.finish());
        if let Some(beep) = self.beep {
            self.f.beeps = beep.finish();
        }
        self.f
    }

    fn frame(&mut self, frame: &[f32], prev: Option<&[f32]>) {
        let half_len = self.f.half_len;
        let raw = [&frame[..half_len], &frame[half_len..]].map(moments);
        // A lost packet (digital silence, up to `MAX_LOST_HALVES`, after sound that stands out
        // of digital silence) is heard by the VAD and the running floor as a decoder's
        // concealment plays it: the last half of sound again. Left as silence, it resets the
        // VAD's state and drops the floor for seconds, which moves decisions far from it; the
        // halves keep the silence (`see_through_lost_packets`, the dropouts).
        if raw.iter().all(|r| r.2 > SILENCE_EPS) {
            // Sound throughout, nearly every frame: its last half is the last sound, read from
            // it (`prev` of the next frame) only if needed.
            self.silent_halves = 0;
            self.sound_in_prev = true;
            self.prev_peak = raw[1].2;
            self.heard(frame, raw, None);
            return;
        }
        self.keep_sound_of(prev);
        let mut patched = std::mem::take(&mut self.patched);
        patched.clear();
        let mut lost = false;
        for (half, r) in frame.chunks_exact(half_len).zip(&raw) {
            if r.2 > SILENCE_EPS {
                self.silent_halves = 0;
                self.keep_sound(half, r.2);
                patched.extend_from_slice(half);
                continue;
            }
            self.silent_halves += 1;
            if self.silent_halves <= MAX_LOST_HALVES && !self.last_sound.is_empty() {
                lost = true;
                patched.extend_from_slice(&self.last_sound);
            } else {
                patched.extend_from_slice(half);
            }
        }
        self.heard(frame, raw, lost.then_some(&patched[..]));
        self.patched = patched;
    }

    /// Keeps the last sound from `prev` (the frame before), if it is there.
    fn keep_sound_of(&mut self, prev: Option<&[f32]>) {
        if std::mem::take(&mut self.sound_in_prev) {
            match prev {
                Some(p) => self.keep_sound(&p[self.f.half_len..], self.prev_peak),
                None => self.last_sound.clear(),
            }
        }
    }

    /// Keeps `half` (its peak `peak`) as the sound a lost packet after it would repeat, when it
    /// stands out of digital silence.
    fn keep_sound(&mut self, half: &[f32], peak: f32) {
        self.last_sound.clear();
        if peak > SOUND_PEAK {
            self.last_sound.extend_from_slice(half);
        }
    }

    /// One frame, `raw` its halves' moments; `concealed`, the frame the VAD and the running
    /// floor hear in its place when it holds a lost packet. (Inlined: it is `frame`'s body, run
    /// 50 times a second per channel.)
    #[inline(always)]
    fn heard(&mut self, frame: &[f32], raw: [(f32, f32, f32); 2], concealed: Option<&[f32]>) {
        let half_len = self.f.half_len;
        let mut frame_power = 0.0f64;
        let first = self.f.halves.len() as u32;
        let mut views = [HalfView::default(); 2];
        let energy = raw[0].1 + raw[1].1;
        let level = super::mains::level_db(energy, frame.len());
        let heard_level = concealed.map_or(level, |c| {
            super::mains::level_db(c.iter().map(|x| x * x).sum(), c.len())
        });
        let floor = self.running_floor(heard_level);
        let mut residual = std::mem::take(&mut self.residual);
        // The primer's frames were learnt from before they were replayed; a lost packet is no
        // hum to learn.
        let learn = self.replaying == 0 && concealed.is_none() && level <= floor + MAINS_LEARN_DB;
        self.replaying = self.replaying.saturating_sub(1);
        let hum_taken = self.mains.process(frame, energy, learn, &mut residual);
        let halves = frame
            .chunks_exact(half_len)
            .zip(if hum_taken { &residual[..] } else { frame }.chunks_exact(half_len));
        for (((half, clean), view), (sum, sumsq, max)) in halves.zip(&mut views).zip(raw) {
            let power = sumsq / half_len as f32;
            frame_power += power as f64;
            // Detection's views, without the mains hum; the tone detectors' `ac` with it, as
            // a tone's share of what is there.
            let mean = sum / half_len as f32;
            let raw_ac = (power - mean * mean).max(0.0);
            let ac = if hum_taken {
                let (clean_sum, clean_sumsq, _) = moments(clean);
                let clean_mean = clean_sum / half_len as f32;
                (clean_sumsq / half_len as f32 - clean_mean * clean_mean).max(0.0)
            } else {
                raw_ac
            };
            let band = emphasised_energy(clean, self.last_sample) / half_len as f32;
            self.last_sample = clean[half_len - 1];
            let low = self.low_band.energy(clean) / half_len as f32;
            self.f.sum += sum as f64;
            if max > self.f.peak {
                self.f.peak = max;
            }
            let (lead, trail) = if max <= SILENCE_EPS {
                (half_len, half_len)
            } else {
                (
                    half.iter().position(|x| x.abs() > SILENCE_EPS).unwrap_or(0),
                    half.iter()
                        .rev()
                        .position(|x| x.abs() > SILENCE_EPS)
                        .unwrap_or(0),
                )
            };
            if lead > 0 || trail > 0 {
                self.f.zeros.push(Zeros {
                    index: self.f.halves.len() as u32,
                    lead: lead as u16,
                    trail: trail as u16,
                });
            }
            *view = HalfView { ac: raw_ac, low };
            self.f.halves.push(Half::new(power, band, ac, low));
            if max >= 0.5 * self.full_scale {
                self.scan_clipping(half);
            } else {
                self.clip_in_run = false;
                self.clip_prev = 0.0;
            }
        }
        self.f.samples += frame.len() as u64;
        let halves = [&frame[..half_len], &frame[half_len..]];
        self.dtmf.frame(first, halves, views);
        if let Some(beep) = &mut self.beep {
            beep.frame(first, halves, views);
        }

        let obvious = self.floor_next > 0 && heard_level > floor + FAR_ABOVE_FLOOR_DB;
        let speech = self.vad_frame(
            concealed.unwrap_or(if hum_taken { &residual } else { frame }),
            obvious,
        );
        self.residual = residual;
        // One frame in four is enough for long-term spectra (an unbiased sample of them: still
        // 12.5 spectra a second), and a quarter of the FFT cost.
        self.frames_seen += 1;
        if self.frames_seen.is_multiple_of(SPECTRUM_EVERY) {
            self.spectrum.compute(frame);
            self.f.spectra[speech as usize].add(level, &self.spectrum.power);
            self.speech_spectra += speech as u64;
            if speech && self.speech_spectra.is_multiple_of(FLOOR_EVERY) {
                if let Some(db) = self.speech_floor.over_floor_db(&self.spectrum.power) {
                    let b = &mut self.f.speech_floor[LevelSpectra::bucket(level)];
                    *b = (b.0 + db, b.1 + 1);
                }
            }
        }

        self.decimate(frame);
        self.tone_tracker.frame(frame);
        self.hum_block_power += frame_power;
        self.hum_block_halves += 2;
    }

    /// The quietest frame level of the last few seconds, `level_db` (this frame's) included.
    fn running_floor(&mut self, level_db: f64) -> f64 {
        self.floor_block = self.floor_block.min(level_db);
        self.floor_frames += 1;
        if self.floor_frames == FLOOR_BLOCK_FRAMES {
            self.floor_ring[self.floor_next % self.floor_ring.len()] = self.floor_block;
            self.floor_next += 1;
            self.floor_block = f64::INFINITY;
            self.floor_frames = 0;
        }
        self.floor_ring
            .iter()
            .take(self.floor_next.min(self.floor_ring.len()))
            .fold(self.floor_block, |m, &b| m.min(b))
    }

    /// Feeds the VAD; returns its latest decision.
    ///
    /// A frame far above the quietest of the last seconds (`FAR_ABOVE_FLOOR_DB`) is speech to
    /// the VAD without asking it: pass two calls such a frame speech on its energy alone
    /// whatever the VAD says (it is way past the "strong" gate), so the VAD's vote cannot
    /// change anything there, and asking costs most of the analysis time.
    fn vad_frame(&mut self, frame: &[f32], obvious: bool) -> bool {
        match &mut self.vad_resampler {
            Some(r) => {
                self.vad_resampled.clear();
                r.process(frame, &mut self.vad_resampled);
                vad::to_i16(&self.vad_resampled, &mut self.vad_input);
            }
            None => vad::to_i16(frame, &mut self.vad_input),
        }
        let mut start = 0;
        while self.vad_input.len() - start >= self.vad_len {
            let speech = obvious
                || self
                    .vad
                    .is_speech(&self.vad_input[start..start + self.vad_len]);
            self.f.vad.push(speech);
            start += self.vad_len;
        }
        self.vad_input.drain(..start);
        self.f.vad.last().copied().unwrap_or(false)
    }

    /// Counts loud samples by magnitude and flat runs among them.
    fn scan_clipping(&mut self, half: &[f32]) {
        let lo = 0.5 * self.full_scale;
        let flat = 1e-4 * self.full_scale.max(1e-6);
        for &x in half {
            let m = x.abs();
            if m < lo {
                self.clip_in_run = false;
                self.clip_prev = 0.0;
                continue;
            }
            let bin = ClipHistogram::bin(m);
            self.f.clip.samples[bin] += 1;
            let is_flat = (x - self.clip_prev).abs() <= flat;
            if is_flat && !self.clip_in_run {
                self.f.clip.runs[bin] += 1;
            }
            self.clip_in_run = is_flat;
            self.clip_prev = x;
        }
    }

    /// Box-car decimation to about 1 kHz for the hum spectrum.
    fn decimate(&mut self, frame: &[f32]) {
        let dec = self.dec;
        // A multiply, not a divide per sample out (a divide's latency was 1 % of the analysis).
        let scale = 1.0 / dec as f32;
        let mut rest = frame;
        if self.dec_fill > 0 {
            let take = (dec - self.dec_fill).min(rest.len());
            self.dec_acc += rest[..take].iter().sum::<f32>();
            self.dec_fill += take;
            rest = &rest[take..];
            if self.dec_fill < dec {
                return;
            }
            let v = self.dec_acc * scale;
            self.push_hum(v);
            self.dec_acc = 0.0;
            self.dec_fill = 0;
        }
        let mut chunks = rest.chunks_exact(dec);
        for c in &mut chunks {
            let v = c.iter().sum::<f32>() * scale;
            self.push_hum(v);
        }
        let r = chunks.remainder();
        self.dec_acc = r.iter().sum();
        self.dec_fill = r.len();
    }

    fn push_hum(&mut self, v: f32) {
        self.hum_block.push(v);
        if self.hum_block.len() == HUM_BLOCK {
            let halves = self.hum_block_halves.max(1) as f64;
            let level = 10.0 * (self.hum_block_power / halves + 1e-20).log10();
            self.hum_spectrum.compute(&self.hum_block);
            self.f.hum.add(level, &self.hum_spectrum.power);
            self.hum_block.clear();
            self.hum_block_power = 0.0;
            self.hum_block_halves = 0;
        }
    }
}

/// Speech's standard pre-emphasis coefficient.
pub const PRE_EMPHASIS: f32 = 0.97;

/// Energy of `x` after pre-emphasis, `prev` being the sample before it.
#[inline]
fn emphasised_energy(x: &[f32], prev: f32) -> f32 {
    let Some(&first) = x.first() else { return 0.0 };
    let d0 = first - PRE_EMPHASIS * prev;
    let mut acc = [0.0f32; 8];
    let (a, b) = (&x[1..], &x[..x.len() - 1]);
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (u, v) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            let d = u[i] - PRE_EMPHASIS * v[i];
            acc[i] += d * d;
        }
    }
    let mut e: f32 = acc.iter().sum::<f32>() + d0 * d0;
    for (u, v) in ca.remainder().iter().zip(cb.remainder()) {
        let d = u - PRE_EMPHASIS * v;
        e += d * d;
    }
    e
}

/// Sum, sum of squares and largest magnitude of `x`, with independent accumulators so the
/// loop vectorises.
#[inline]
fn moments(x: &[f32]) -> (f32, f32, f32) {
    let mut s = [0.0f32; 8];
    let mut q = [0.0f32; 8];
    let mut m = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            s[i] += c[i];
            q[i] += c[i] * c[i];
            // A plain compare (not `f32::max`, whose NaN rule costs a blend per lane).
            let a = c[i].abs();
            m[i] = if a > m[i] { a } else { m[i] };
        }
    }
    let mut sum: f32 = s.iter().sum();
    let mut sumsq: f32 = q.iter().sum();
    let mut max = m.iter().cloned().fold(0.0, f32::max);
    for &v in chunks.remainder() {
        sum += v;
        sumsq += v * v;
        max = max.max(v.abs());
    }
    (sum, sumsq, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_keeps_powers_to_half_a_percent() {
        for x in [0.0f32, 1e-12, 3.3e-7, 0.0123, 0.5, 1.0, 4.0] {
            let y = from_bf16(to_bf16(x));
            assert!((y - x).abs() <= x * 0.004, "{x} -> {y}");
        }
    }

    #[test]
    fn moments_match_naive() {
        let x: Vec<f32> = (0..83)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 10.0)
            .collect();
        let (s, q, m) = moments(&x);
        let ns: f32 = x.iter().sum();
        let nq: f32 = x.iter().map(|v| v * v).sum();
        let nm = x.iter().map(|v| v.abs()).fold(0.0, f32::max);
        assert!((s - ns).abs() < 1e-4 && (q - nq).abs() < 1e-3 && m == nm);
    }

    #[test]
    fn emphasis_removes_dc_and_keeps_high_frequencies() {
        let dc = vec![0.5f32; 80];
        assert!(emphasised_energy(&dc, 0.5) / 80.0 < 0.25 * 0.001);
        let alt: Vec<f32> = (0..80)
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let e = emphasised_energy(&alt, -0.5) / 80.0;
        assert!((e - 0.25 * 1.97 * 1.97).abs() < 1e-3, "{e}");
    }

    #[test]
    fn the_voicing_band_passes_200_hz_and_stops_the_rest() {
        for rate in [8000u32, 16000, 48000] {
            let gain = |hz: f64| {
                let x: Vec<f32> = (0..rate as usize)
                    .map(|i| {
                        (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin() as f32
                    })
                    .collect();
                let mut band = LowBand::new(rate);
                band.energy(&x[..rate as usize / 2]); // settle
                let e = band.energy(&x[rate as usize / 2..]) as f64;
                10.0 * (e / (0.5 * (rate as f64 / 2.0))).log10()
            };
            assert!(gain(200.0).abs() < 0.1, "{rate} Hz: peak {}", gain(200.0));
            // Half power near 100 and 390 Hz, and well down by the upper formants.
            assert!((gain(100.0) + 3.0).abs() < 0.6, "{rate}: {}", gain(100.0));
            assert!((gain(390.0) + 3.0).abs() < 0.6, "{rate}: {}", gain(390.0));
            assert!(gain(2000.0) < -15.0, "{rate}: {}", gain(2000.0));
        }
    }

    #[test]
    fn the_voicing_band_in_steps_of_two_is_the_plain_biquad() {
        let x: Vec<f32> = (0..4001)
            .map(|i| ((i * 7919 % 2003) as f32 / 1001.0 - 1.0) * 0.5)
            .collect();
        let rate = 44100; // 441-sample halves: odd, so the odd remainder is crossed too
        let plain = {
            let w0 = 2.0 * std::f64::consts::PI * LOW_BAND_HZ / rate as f64;
            let alpha = w0.sin() / (2.0 * LOW_BAND_Q);
            let a0 = 1.0 + alpha;
            let (b0, a1, a2) = (alpha / a0, -2.0 * w0.cos() / a0, (1.0 - alpha) / a0);
            let (mut x1, mut x2, mut y1, mut y2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let mut e = 0.0f64;
            for &v in &x {
                let y = b0 * (v as f64 - x2) - a1 * y1 - a2 * y2;
                (x2, x1, y2, y1) = (x1, v as f64, y1, y);
                e += y * y;
            }
            e
        };
        let mut band = LowBand::new(rate);
        let stepped: f64 = x.chunks(441).map(|c| band.energy(c) as f64).sum();
        assert!(
            (stepped - plain).abs() <= 1e-5 * plain,
            "{stepped} vs {plain}"
        );
    }

    #[test]
    fn frames_split_across_pushes_give_the_same_features() {
        // Three seconds past the primer, with lost packets (digital silence) of 10-60 ms, some
        // across the pushes' edges, and a silence longer than a lost packet.
        let mut x: Vec<f32> = (0..32000)
            .map(|i| 0.3 * (i as f32 * 0.05).sin() + if i % 7 == 0 { 0.01 } else { 0.0 })
            .collect();
        for (at, len) in [
            (9990, 80),
            (13000, 160),
            (16650, 480),
            (20000, 3000),
            (27000, 240),
        ] {
            x[at..at + len].iter_mut().for_each(|v| *v = 0.0);
        }
        let features = |block: usize| {
            let mut t = ChannelTracker::new(8000, 1.0, VadMode::Aggressive, None).unwrap();
            for c in x.chunks(block) {
                t.push(c);
            }
            t.finish()
        };
        let whole = features(x.len());
        assert_eq!(whole.halves.len(), 400);
        assert_eq!(whole.samples, 32000);
        for block in [333, 160, 1000] {
            let split = features(block);
            assert_eq!(whole.vad, split.vad, "{block}");
            assert_eq!(whole.halves, split.halves, "{block}");
            assert_eq!(whole.zeros, split.zeros, "{block}");
        }
    }

    #[test]
    fn a_voice_s_valleys_stand_deep_and_noise_fills_them() {
        // A spectrum of harmonics every 100 Hz (32 Hz bins, 8 kHz) with valleys 60 dB down,
        // and the same under flat noise 20 dB under its power.
        let bins = 129;
        let harmonic: Vec<f32> = (0..bins)
            .map(|b| if (b * 32) % 100 < 32 { 1.0 } else { 1e-6 })
            .collect();
        let mut floor = SpeechFloor::new(31.25, bins);
        let clean = floor.over_floor_db(&harmonic).unwrap();
        assert!(clean > 40.0, "{clean}");
        let band = floor.band.clone();
        let total: f32 = harmonic[band.clone()].iter().sum();
        let noise = total * 0.01 / band.len() as f32;
        let noisy: Vec<f32> = harmonic.iter().map(|&p| p + noise).collect();
        let got = floor.over_floor_db(&noisy).unwrap();
        assert!((got - 20.0).abs() < 1.0, "{got}");
        assert_eq!(floor.over_floor_db(&vec![0.0; bins]), None);
    }
}
