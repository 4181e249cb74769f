//! Music: hold music told apart from speech, per channel.
//!
//! The model, in a paragraph. Music is made of notes: partials that hold one pitch for as long
//! as the note lasts (a quarter note at 60-140 bpm lasts 430 ms to 1 s, and chords, pads and
//! bass notes longer), and new notes start every few hundred milliseconds. Speech holds no pitch
//! that long: its fundamental glides through every syllable (about four a second), so its
//! harmonics drift out of a 16 Hz bin within a syllable. So pass one takes, every 80 ms, the
//! spectrum of the last 64 ms (16 Hz resolution), picks its narrow tonal peaks, and follows
//! each from one spectrum to the next; a peak that holds its bin for [`MIN_TRACK_HOPS`] spectra
//! (320 ms) or more is a *tone*. Pass two calls music the stretches where tones cover most of
//! the time (a 2.4 s window, about ten syllables) and several of them start (new notes): a
//! mains hum or a dial tone is one steady tone with no new notes, speech leaves most of each
//! window without tones. Drums break tones, so a steady beat also makes music: the level's
//! onsets repeating at one lag of 0.3-1 s (60-200 bpm) over 3 s, which speech's irregular
//! syllables never do; found, the beat is followed period by period out to its first and last
//! onsets (a drum intro, the drums back after a break), as a beat tracker follows one. These
//! are the persistent spectral peaks and the pulse metric of Scheirer and Slaney ("Construction
//! and evaluation of a robust multifeature speech/music discriminator", ICASSP 1997), the peaks
//! measured as the tonal-track persistence of sinusoidal modelling (McAulay and Quatieri, 1986).
//!
//! Music found is taken out of speech, talk time and the noise measurement by the caller, but
//! for a voice that stands out of the music's bed as speech must stand out of noise
//! ([`over_music`]); a recording of music alone has no speech.

use super::noise::fast_level_db;
use super::segments::Segments;
use super::spectrum::PowerSpectrum;

/// Hop between two spectra, in 20 ms frames (80 ms).
pub const HOP_FRAMES: usize = 4;
/// Halves (10 ms) per hop.
pub const HOP_HALVES: usize = 2 * HOP_FRAMES;
/// A hop's length, seconds.
const HOP_S: f64 = HOP_HALVES as f64 * 0.01;
/// Length of each spectrum's window (64 ms: bins of 15.6 Hz, a semitone at 260 Hz).
const WINDOW_S: f64 = 0.064;
/// The spectra are taken of the signal brought down to about this rate by means of
/// neighbouring samples (a 512-point transform whatever the file's rate; what folds down from
/// above 4 kHz is weak in speech and in music alike, and only ever adds peaks that must still
/// persist to count).
const TONE_RATE_HZ: f64 = 8000.0;
/// The band where tones are looked for: the telephone band, where hold music is heard, from
/// above mains hum's strongest harmonics.
const BAND_HZ: (f64, f64) = (150.0, 3400.0);
/// A tonal peak stands this much (power ratio, 10 dB) above the spectrum on both sides, this far
/// (Hz) away: beyond the Hann window's main lobe (two bins), a pure partial's leakage is more
/// than 31 dB down, while a random noise peak clears 10 dB on both sides about once in a
/// hundred bins.
const PEAK_PROMINENCE: f32 = 10.0;
const PEAK_FLANK_HZ: f64 = 47.0;
/// At most this many peaks per spectrum are followed: a local maximum takes at least two bins,
/// so this is every peak the band can hold at 8 and 16 kHz.
const MAX_PEAKS: usize = 112;
/// A peak that holds its bin (within one) for this many spectra is a tone (320 ms): longer than
/// the steady stretch of a syllable's pitch, shorter than a note.
pub const MIN_TRACK_HOPS: usize = 4;
/// Window of the music decision (30 hops, 2.4 s).
const WINDOW_HOPS: usize = 30;
/// Share of the window's hops that tones must cover for music to be found, and to carry on (a
/// double threshold: a drum fill or a rest does not end the music, and the edge, where half
/// the window holds music, is placed where it is).
const MIN_COVER: f64 = 0.7;
const KEEP_COVER: f64 = 0.5;
/// Hops of the window in which a tone starts (new notes); a steady tone starts once.
const MIN_ONSETS: usize = 4;
/// Music shorter than this (3 s) is not hold music (a ring tone, a jingle in an ad).
const MIN_MUSIC_HOPS: usize = 38;

/// Music spans at most this far apart (seconds) with no speech between them are one hold.
pub const HOLD_GAP_S: f64 = 5.0;
/// The same, in halves (10 ms).
const HOLD_GAP_HALVES: usize = (HOLD_GAP_S * 100.0) as usize;

/// A tone: a spectral peak held from hop `start` for `hops` hops at `bin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    pub bin: u16,
    pub start: u32,
    pub hops: u32,
}

/// Pass one's part: the tones of one channel, hop by hop.
pub struct ToneTracker {
    spectrum: PowerSpectrum,
    window_len: usize,
    /// Samples per decimated sample, and the sum and count of the one being made.
    dec: usize,
    dec_acc: f32,
    dec_fill: usize,
    /// The current hop's samples at about 8 kHz.
    buffer: Vec<f32>,
    frames: usize,
    hop: u32,
    lo: usize,
    hi: usize,
    flank: usize,
    /// The peaks of the last spectrum (bin, hop where its track started), by bin.
    live: Vec<(u16, u32)>,
    next: Vec<(u16, u32)>,
    peaks: Vec<u16>,
    tones: Vec<Tone>,
}

impl ToneTracker {
    /// A tracker for a channel at `rate` Hz fed in frames of `frame_len` samples.
    pub fn new(rate: u32, frame_len: usize) -> ToneTracker {
        let dec = (rate as f64 / TONE_RATE_HZ).round().max(1.0) as usize;
        let dec_rate = rate as f64 / dec as f64;
        let window_len = ((dec_rate * WINDOW_S).round() as usize)
            .min(HOP_FRAMES * frame_len / dec)
            .max(16);
        let spectrum = PowerSpectrum::new(window_len);
        let bin_hz = dec_rate / spectrum.size() as f64;
        let flank = (PEAK_FLANK_HZ / bin_hz).round().max(2.0) as usize;
        let bins = spectrum.bins();
        let lo = ((BAND_HZ.0 / bin_hz).ceil() as usize).max(flank);
        let hi = ((BAND_HZ.1 / bin_hz).floor() as usize).min(bins.saturating_sub(flank + 1));
        ToneTracker {
            spectrum,
            window_len,
            dec,
            dec_acc: 0.0,
            dec_fill: 0,
            buffer: Vec::with_capacity(HOP_FRAMES * frame_len / dec + 1),
            frames: 0,
            hop: 0,
            lo,
            hi,
            flank,
            live: Vec::with_capacity(MAX_PEAKS),
            next: Vec::with_capacity(MAX_PEAKS),
            peaks: Vec::with_capacity(MAX_PEAKS),
            tones: Vec::new(),
        }
    }

    /// Feeds the next frame.
    pub fn frame(&mut self, frame: &[f32]) {
        if self.dec == 1 {
            self.buffer.extend_from_slice(frame);
        } else {
            // Means of `dec` samples, to about 8 kHz.
            let scale = 1.0 / self.dec as f32;
            let mut rest = frame;
            if self.dec_fill > 0 {
                let take = (self.dec - self.dec_fill).min(rest.len());
                self.dec_acc += rest[..take].iter().sum::<f32>();
                self.dec_fill += take;
                rest = &rest[take..];
                if self.dec_fill == self.dec {
                    self.buffer.push(self.dec_acc * scale);
                    (self.dec_acc, self.dec_fill) = (0.0, 0);
                }
            }
            let mut chunks = rest.chunks_exact(self.dec);
            self.buffer
                .extend((&mut chunks).map(|c| c.iter().sum::<f32>() * scale));
            let r = chunks.remainder();
            if !r.is_empty() {
                self.dec_acc += r.iter().sum::<f32>();
                self.dec_fill += r.len();
            }
        }
        self.frames += 1;
        if self.frames < HOP_FRAMES {
            return;
        }
        let from = self.buffer.len().saturating_sub(self.window_len);
        self.spectrum.compute(&self.buffer[from..]);
        self.buffer.clear();
        self.frames = 0;
        self.pick_peaks();
        self.follow();
        self.hop += 1;
    }

    /// The local maxima of the spectrum that stand `PEAK_PROMINENCE` above both flanks.
    fn pick_peaks(&mut self) {
        let p = &self.spectrum.power;
        let f = self.flank;
        self.peaks.clear();
        if self.hi <= self.lo {
            return;
        }
        let (lo, hi) = (self.lo, self.hi + 1);
        // Branch-free tests over aligned slices, so that they vectorise; peaks are rare.
        let centre = &p[lo..hi];
        let (left, right) = (&p[lo - 1..hi - 1], &p[lo + 1..hi + 1]);
        let (far_left, far_right) = (&p[lo - f..hi - f], &p[lo + f..hi + f]);
        let mut mask = [0u8; 64];
        for start in (0..centre.len()).step_by(mask.len()) {
            let end = (start + mask.len()).min(centre.len());
            for i in start..end {
                let c = centre[i];
                mask[i - start] = ((c > left[i])
                    & (c >= right[i])
                    & (c > PEAK_PROMINENCE * far_left[i])
                    & (c > PEAK_PROMINENCE * far_right[i])
                    & (c > 0.0)) as u8;
            }
            for (i, &m) in mask[..end - start].iter().enumerate() {
                if m != 0 && self.peaks.len() < MAX_PEAKS {
                    self.peaks.push((lo + start + i) as u16);
                }
            }
        }
    }

    /// Carries each peak on the track of a peak of the last spectrum within one bin (the
    /// nearest, each taken once); tracks left without a peak end.
    fn follow(&mut self) {
        self.next.clear();
        let mut used = [false; MAX_PEAKS];
        let mut j = 0;
        for &b in &self.peaks {
            while j < self.live.len() && self.live[j].0 + 1 < b {
                j += 1;
            }
            // Candidates: live[j..] with bin within one of b, nearest first.
            let mut best: Option<usize> = None;
            let mut i = j;
            while i < self.live.len() && self.live[i].0 <= b + 1 {
                if !used[i] {
                    let d = self.live[i].0.abs_diff(b);
                    if best.is_none_or(|k| d < self.live[k].0.abs_diff(b)) {
                        best = Some(i);
                    }
                }
                i += 1;
            }
            let start = match best {
                Some(i) => {
                    used[i] = true;
                    self.live[i].1
                }
                None => self.hop,
            };
            self.next.push((b, start));
        }
        for (i, &(bin, start)) in self.live.iter().enumerate() {
            if !used[i] {
                end_track(&mut self.tones, bin, start, self.hop);
            }
        }
        std::mem::swap(&mut self.live, &mut self.next);
    }

    /// The tones, and the number of hops seen.
    pub fn finish(mut self) -> (Vec<Tone>, usize) {
        let live = std::mem::take(&mut self.live);
        for (bin, start) in live {
            end_track(&mut self.tones, bin, start, self.hop);
        }
        (self.tones, self.hop as usize)
    }
}

/// Keeps a track that ended at hop `end` if it was held long enough to be a tone.
fn end_track(tones: &mut Vec<Tone>, bin: u16, start: u32, end: u32) {
    let hops = end - start;
    if hops as usize >= MIN_TRACK_HOPS {
        tones.push(Tone { bin, start, hops });
    }
}

/// Frames (20 ms) in the window of the beat, and the lags looked at: 3 s, and beats 0.3 to 1 s
/// apart (200 to 60 bpm, the tempi of nearly all popular music).
const BEAT_WINDOW_FRAMES: usize = 150;
const BEAT_LAGS: (usize, usize) = (15, 50);
/// A beat: the onsets' autocorrelation at some lag in range reaches this share of its energy.
/// Speech's syllables come at irregular intervals (about 4 a second, never in step for
/// seconds): its strength stays near 0.2, drum-driven music's near 0.7.
const MIN_BEAT: f32 = 0.5;
/// The beat is measured every this many hops (about 0.5 s), where tones cover at least
/// `BEAT_MIN_COVER` of the window (music with a beat still carries a bass line or chords), and
/// within a hold's gap of music found (a drum intro carries none).
const BEAT_EVERY_HOPS: usize = 6;
const BEAT_MIN_COVER: f64 = 0.2;

/// Whether each hop lies in a steady beat (Scheirer and Slaney's pulse metric, after Scheirer's
/// tempo analysis, 1998): the rises of the level from one 20 ms frame to the next (onsets) are
/// autocorrelated over a 3 s window, and a beat is a lag in tempo range where they repeat.
fn beats(onsets: &[f32], hops: usize, wanted: &[bool]) -> Vec<bool> {
    let mut out = vec![false; hops];
    let mut lags = vec![0usize; hops];
    let mut w = vec![0f32; BEAT_WINDOW_FRAMES];
    for h in (BEAT_EVERY_HOPS / 2..hops).step_by(BEAT_EVERY_HOPS) {
        if !wanted[h] {
            continue;
        }
        let centre = h * HOP_FRAMES + HOP_FRAMES / 2;
        let Some(from) = centre.checked_sub(BEAT_WINDOW_FRAMES / 2) else {
            continue;
        };
        let Some(window) = onsets.get(from..from + BEAT_WINDOW_FRAMES) else {
            continue;
        };
        let mean = window.iter().sum::<f32>() / BEAT_WINDOW_FRAMES as f32;
        w.iter_mut().zip(window).for_each(|(d, &o)| *d = o - mean);
        let energy: f32 = w.iter().map(|x| x * x).sum();
        if energy <= 0.0 {
            continue;
        }
        let (strongest, lag) = (BEAT_LAGS.0..=BEAT_LAGS.1)
            .map(|lag| (dot(&w[..w.len() - lag], &w[lag..]), lag))
            .fold((f32::MIN, 0), |best, r| if r.0 > best.0 { r } else { best });
        if strongest >= MIN_BEAT * energy {
            let lo = h.saturating_sub(BEAT_EVERY_HOPS / 2);
            let hi = (h + BEAT_EVERY_HOPS.div_ceil(2)).min(hops);
            out[lo..hi].iter_mut().for_each(|b| *b = true);
            lags[h] = lag;
        }
    }
    follow_beats(onsets, &lags, &mut out);
    out
}

/// The onsets: the rise of the level (dB) from each 20 ms frame to the next, none for a fall.
fn level_onsets(power: &dyn Fn(usize) -> f32, halves: usize) -> Vec<f32> {
    let frames = halves / 2;
    let mut onsets = Vec::with_capacity(frames);
    let mut last = None;
    for t in 0..frames {
        let level = fast_level_db(0.5 * (power(2 * t) + power(2 * t + 1))) as f32;
        onsets.push(last.map_or(0.0, |l: f32| (level - l).max(0.0)));
        last = Some(level);
    }
    onsets
}

/// The dot product of `a` and `b` (of one length), in eight running sums so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + rest
}

/// An onset on the beat's grid is at least this share of the rise the grid was anchored on (a
/// drum hit's rise varies with its accent, not by half). Decided on dev: at 0.3 a piano's beat
/// was followed into the speech after it, at 0.7 a dance track's stopped inside its drums.
const ON_GRID_SHARE: f32 = 0.5;

/// Carries each stretch of beat out to its first and last onsets, as a beat tracker follows a
/// beat (Dixon, "Automatic extraction of tempo and beat from expressive performances", 2001):
/// from the strongest onset of the period at the stretch's edge, the next beat is predicted one
/// period (the lag found) further, and taken where an onset within one frame of the prediction
/// rises at least `ON_GRID_SHARE` as much; it stops at the first beat not there. The 3 s window
/// places a beat's start and end only to within half of it: a drum intro, the drums coming back
/// after a break, the last bar before the music stops. A voice's onsets fall on a grid only by
/// chance, one beat in a few. `lags` holds the lag (frames) found at each hop measured with a
/// beat, else 0.
fn follow_beats(onsets: &[f32], lags: &[usize], out: &mut [bool]) {
    let hops = out.len();
    // The strongest onset in frames `[a, b)`, if any rises.
    let strongest = |a: usize, b: usize| -> Option<usize> {
        let (a, b) = (a.min(onsets.len()), b.min(onsets.len()));
        (a..b)
            .filter(|&t| onsets[t] > 0.0)
            .max_by(|&x, &y| onsets[x].total_cmp(&onsets[y]))
    };
    // Follows the grid from onset `at`, a period at a time; the last onset on it.
    let follow = |mut at: usize, lag: usize, forward: bool| -> usize {
        let reference = onsets[at];
        loop {
            let next = if forward {
                Some(at + lag)
            } else {
                at.checked_sub(lag)
            };
            match next.and_then(|p| strongest(p.saturating_sub(1), p + 2)) {
                Some(m) if onsets[m] >= ON_GRID_SHARE * reference => at = m,
                _ => return at,
            }
        }
    };
    // The stretches as measured, before any is carried out.
    for (lo, hi) in flag_runs(out) {
        let measured = |h: &usize| lags[*h] > 0;
        let (Some(first), Some(last)) = ((lo..hi).find(measured), (lo..hi).rev().find(measured))
        else {
            continue;
        };
        let (lag, end) = (lags[last], hi * HOP_FRAMES);
        if let Some(at) = strongest(end.saturating_sub(lag), end) {
            // The music lasts half a period past its last onset.
            let to = (follow(at, lag, true) + lag / 2)
                .div_ceil(HOP_FRAMES)
                .min(hops);
            out[hi.min(to)..to].iter_mut().for_each(|b| *b = true);
        }
        let (lag, start) = (lags[first], lo * HOP_FRAMES);
        if let Some(at) = strongest(start, start + lag) {
            let from = (follow(at, lag, false) / HOP_FRAMES).min(lo);
            out[from..lo].iter_mut().for_each(|b| *b = true);
        }
    }
}

/// The music of one channel, in halves (`[start, end)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Music {
    pub spans: Segments,
    /// Where a steady beat was found (its onsets are the music's, not a voice's).
    pub beat: Segments,
    /// Music too short to be hold music on its own (under [`MIN_MUSIC_HOPS`]), within
    /// [`HOLD_GAP_S`] of a span: hold music only where it continues one ([`Music::continued`]).
    pub short: Segments,
}

/// The stretches of music among `hops` hops with these tones, in halves (`[start, end)`, at
/// most `halves`); `power` gives each half's power.
pub fn spans(tones: &[Tone], hops: usize, halves: usize, power: &dyn Fn(usize) -> f32) -> Music {
    if hops == 0 {
        return Music::default();
    }
    let mut covered = vec![false; hops];
    let mut onset = vec![false; hops];
    for t in tones {
        let (s, e) = (t.start as usize, (t.start + t.hops) as usize);
        covered[s.min(hops)..e.min(hops)]
            .iter_mut()
            .for_each(|c| *c = true);
        if s < hops {
            onset[s] = true;
        }
    }
    // The window's counts, centred (cut short at the ends of the recording).
    let half = WINDOW_HOPS / 2;
    let width = |h: usize| ((h + half).min(hops) - h.saturating_sub(half)) as f64;
    let count = |v: &[bool]| -> Vec<usize> {
        let mut prefix = vec![0usize; hops + 1];
        for (i, &x) in v.iter().enumerate() {
            prefix[i + 1] = prefix[i] + x as usize;
        }
        (0..hops)
            .map(|h| prefix[(h + half).min(hops)] - prefix[h.saturating_sub(half)])
            .collect()
    };
    let (cover, onsets) = (count(&covered), count(&onset));
    let share = |h: usize| cover[h] as f64 / width(h);
    let level_onsets = level_onsets(power, halves);
    let tonal: Vec<bool> = (0..hops).map(|h| share(h) >= BEAT_MIN_COVER).collect();
    let mut beat = beats(&level_onsets, hops, &tonal);
    // A drum intro, or the drums back after a break, carry no tones: near music found (a beat,
    // or tones over most of the window), the beat is looked for whatever the tones.
    let found: Vec<bool> = (0..hops)
        .map(|h| beat[h] || share(h) >= MIN_COVER)
        .collect();
    let gap = (HOLD_GAP_S / HOP_S).round() as usize;
    let near = within(&found, gap);
    if near.iter().zip(&tonal).any(|(&n, &t)| n && !t) {
        let wanted: Vec<bool> = near.iter().zip(&tonal).map(|(&n, &t)| n || t).collect();
        beat = beats(&level_onsets, hops, &wanted);
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    let mut confirmed = false;
    for h in 0..=hops {
        let cover_share = if h < hops { share(h) } else { 0.0 };
        let beat = h < hops && beat[h];
        if beat || cover_share >= KEEP_COVER {
            start.get_or_insert(h);
            confirmed |= beat || (cover_share >= MIN_COVER && onsets[h] >= MIN_ONSETS);
        } else if let Some(s) = start.take() {
            if confirmed {
                runs.push((s, h));
            }
            confirmed = false;
        }
    }
    // A gap shorter than half the window is below what the window resolves: one music. So is
    // such a stretch between music and either end of the recording.
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    for (s, e) in runs {
        match merged.last_mut() {
            Some(last) if s - last.1 < half => last.1 = e,
            _ => merged.push((if s < half { 0 } else { s }, e)),
        }
    }
    if let Some(last) = merged.last_mut() {
        if hops - last.1 < half {
            last.1 = hops;
        }
    }
    let to_halves = |h: usize| {
        if h == hops {
            halves
        } else {
            (h * HOP_HALVES).min(halves)
        }
    };
    let (long, short): (Segments, Segments) = merged
        .into_iter()
        .partition(|&(s, e)| e - s >= MIN_MUSIC_HOPS);
    let near = |&(s, e): &(usize, usize)| {
        long.iter()
            .any(|&(ls, le)| s.abs_diff(le) <= gap || ls.abs_diff(e) <= gap)
    };
    let halves_of = |runs: &[(usize, usize)]| -> Segments {
        runs.iter()
            .map(|&(s, e)| (to_halves(s), to_halves(e)))
            .collect()
    };
    Music {
        short: halves_of(&short.iter().copied().filter(near).collect::<Vec<_>>()),
        spans: halves_of(&long),
        beat: flag_runs(&beat)
            .into_iter()
            .map(|(s, e)| (to_halves(s), to_halves(e)))
            .filter(|&(s, e)| e > s)
            .collect(),
    }
}

impl Music {
    /// The music with its short stretches that continue a span, no speech between them (the
    /// last bars of a hold after a rest; the jingle before it), as spans of their own; `None`
    /// when there are none. [`MIN_MUSIC_HOPS`] keeps a short piece of music standing alone
    /// (a ring tone, a jingle in an ad) from being a hold, not a hold's own last bars.
    pub fn continued(&self, speech: &Segments) -> Option<Music> {
        let joined: Segments = self
            .short
            .iter()
            .copied()
            .filter(|&(s, e)| {
                self.spans.iter().any(|&(ms, me)| {
                    (me <= s && s - me <= HOLD_GAP_HALVES && !talk_between(speech, me, s))
                        || (e <= ms && ms - e <= HOLD_GAP_HALVES && !talk_between(speech, e, ms))
                })
            })
            .collect();
        (!joined.is_empty()).then(|| Music {
            spans: super::segments::union(&[&self.spans, &joined]),
            beat: self.beat.clone(),
            short: Vec::new(),
        })
    }
}

/// Whether each of `flags` lies at most `reach` from one that is `true`.
fn within(flags: &[bool], reach: usize) -> Vec<bool> {
    let mut out = vec![false; flags.len()];
    let mut last = None;
    for (i, &f) in flags.iter().enumerate() {
        if f {
            last = Some(i);
        }
        out[i] = last.is_some_and(|l| i - l <= reach);
    }
    last = None;
    for (i, &f) in flags.iter().enumerate().rev() {
        if f {
            last = Some(i);
        }
        out[i] |= last.is_some_and(|l| l - i <= reach);
    }
    out
}

/// The runs of `true` in `flags`, as `[start, end)`.
fn flag_runs(flags: &[bool]) -> Segments {
    let mut out: Segments = Vec::new();
    for (i, &f) in flags.iter().enumerate() {
        match out.last_mut() {
            Some(last) if f && last.1 == i => last.1 = i + 1,
            _ if f => out.push((i, i + 1)),
            _ => {}
        }
    }
    out
}

/// Speech stands this far (dB) above a music bed to be heard over it as speech, the way it must
/// stand out of noise.
const OVER_MUSIC_DB: f64 = 10.0;
/// The bed is measured where nothing was taken for speech, over at least this many halves.
const MIN_BED_HALVES: usize = 100;

/// `segments` without the music, but for speech over the music: in each music span, a segment
/// (its part in the span) is speech when its mean power stands `OVER_MUSIC_DB` above the span's
/// bed, the mean power of the span's halves outside every segment (a caller over a radio, an
/// agent over a held call's music), and no beat runs under it: where the music has a beat, its
/// loud onsets are drums, not a voice. Hold music alone is never that far above its own quiet
/// parts for long; where the span holds too little bed to measure, all of it is music. What is
/// left of a segment next to a span, shorter than `min_run` (the evidence a segment needs), is
/// the music's edge that the 80 ms hops did not reach (a note's attack after a rest), not
/// speech.
pub fn over_music(
    segments: &Segments,
    music: &Music,
    power: &dyn Fn(usize) -> f32,
    min_run: usize,
) -> Segments {
    let mut keep: Segments = Vec::new();
    for &(ms, me) in &music.spans {
        let inside: Segments = segments
            .iter()
            .map(|&(s, e)| (s.max(ms), e.min(me)))
            .filter(|&(s, e)| e > s)
            .collect();
        let (bed_sum, bed_len) = super::segments::outside(&inside, ms..me)
            .fold((0.0f64, 0usize), |(sum, n), j| {
                (sum + power(j) as f64, n + 1)
            });
        if bed_len < MIN_BED_HALVES {
            continue;
        }
        let bed_power = bed_sum / bed_len as f64;
        let over = bed_power * 10f64.powf(OVER_MUSIC_DB / 10.0);
        for &(s, e) in &inside {
            let on_beat = music.beat.iter().any(|&(bs, be)| bs < e && be > s);
            let mean = (s..e).map(|j| power(j) as f64).sum::<f64>() / (e - s) as f64;
            if !on_beat && mean >= over {
                keep.push((s, e));
            }
        }
    }
    let mut out = super::segments::union(&[&super::segments::minus(segments, &music.spans), &keep]);
    out.retain(|&(s, e)| {
        e - s >= min_run || !music.spans.iter().any(|&(ms, me)| ms == e || me == s)
    });
    out
}

/// Whether any of `speech` lies between halves `a` and `b`.
fn talk_between(speech: &Segments, a: usize, b: usize) -> bool {
    speech.iter().any(|&(s, e)| s < b && e > a)
}

/// Music spans that follow one another with no speech between them are one hold (a rest in the
/// music, the loop of a music-on-hold class starting over).
pub fn holds(music: &Segments, speech: &Segments, max_gap: usize) -> Segments {
    let mut out: Segments = Vec::with_capacity(music.len());
    for &(s, e) in music {
        if let Some(last) = out.last_mut() {
            if s - last.1 <= max_gap && !talk_between(speech, last.1, s) {
                last.1 = e;
                continue;
            }
        }
        out.push((s, e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    fn tones_of(x: &[f32]) -> (Vec<Tone>, usize) {
        let mut t = ToneTracker::new(RATE, 160);
        for f in x.chunks_exact(160) {
            t.frame(f);
        }
        t.finish()
    }

    fn sine(hz: f64, s: f64) -> Vec<f32> {
        (0..(s * RATE as f64) as usize)
            .map(|i| {
                (0.1 * (2.0 * std::f64::consts::PI * hz * i as f64 / RATE as f64).sin()) as f32
            })
            .collect()
    }

    /// A melody: notes of `note_s` on a scale, each with three partials.
    fn melody(seconds: f64, note_s: f64) -> Vec<f32> {
        let scale = [262.0, 294.0, 330.0, 349.0, 392.0, 440.0, 494.0];
        let per = (note_s * RATE as f64) as usize;
        let n = (seconds * RATE as f64) as usize;
        (0..n)
            .map(|i| {
                let f = scale[(i / per * 3) % scale.len()];
                let t = i as f64 / RATE as f64;
                (1..=3)
                    .map(|k| {
                        0.05 / k as f64 * (2.0 * std::f64::consts::PI * f * k as f64 * t).sin()
                    })
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn a_beat_is_followed_out_to_its_first_and_last_onsets_and_no_further() {
        // Drum hits every 24 frames (125 bpm) from frame 100 to frame 700, the beat measured
        // only in hops 60-119; before the drums a voice's onsets (off the grid), after them
        // silence.
        let mut onsets = vec![0f32; 1000];
        for t in (100..=700).step_by(24) {
            onsets[t] = 10.0;
        }
        for t in [13, 29, 41, 58, 66, 81, 93] {
            onsets[t] = 20.0;
        }
        let hops = 250;
        let mut out = vec![false; hops];
        let mut lags = vec![0usize; hops];
        out[60..120].iter_mut().for_each(|b| *b = true);
        for h in (63..120).step_by(BEAT_EVERY_HOPS) {
            lags[h] = 24;
        }
        follow_beats(&onsets, &lags, &mut out);
        let first = out.iter().position(|&b| b).unwrap();
        let last = out.iter().rposition(|&b| b).unwrap();
        // From the first hit's hop to half a period past the last one.
        assert_eq!(first, 100 / HOP_FRAMES);
        assert_eq!(last + 1, (700 + 12usize).div_ceil(HOP_FRAMES));
        assert!(out[first..=last].iter().all(|&b| b));
        // A hit a frame off its prediction (a period of 24.5 frames) is still on the grid.
        let mut onsets = vec![0f32; 1000];
        for k in 0..25 {
            onsets[100 + (24.5 * k as f64) as usize] = 10.0;
        }
        let mut out = vec![false; hops];
        out[60..120].iter_mut().for_each(|b| *b = true);
        follow_beats(&onsets, &lags, &mut out);
        assert_eq!(out.iter().position(|&b| b), Some(100 / HOP_FRAMES));
        // No beat measured: nothing is followed.
        let mut out = vec![false; hops];
        follow_beats(&onsets, &vec![0; hops], &mut out);
        assert!(out.iter().all(|&b| !b));
    }

    #[test]
    fn what_music_leaves_of_a_segment_is_speech_only_if_it_is_long_enough() {
        // Music over halves 100-400 at a steady level, no beat; a segment from 97 into the
        // music (a note's attack after a rest, caught 30 ms before the hop the span starts
        // on), one ending 20 halves before it, one from 390 to 420.
        let music = Music {
            spans: vec![(100, 400)],
            ..Music::default()
        };
        let power = |_: usize| 1e-4f32;
        let segments = vec![(50, 80), (97, 150), (390, 420)];
        let got = over_music(&segments, &music, &power, 8);
        assert_eq!(got, vec![(50, 80), (400, 420)]);
    }

    #[test]
    fn a_steady_sine_is_one_tone() {
        let (tones, hops) = tones_of(&sine(440.0, 3.0));
        assert_eq!(hops, 37);
        assert_eq!(tones.len(), 1, "{tones:?}");
        assert_eq!(tones[0].bin, (440.0f64 / 15.625).round() as u16);
        assert_eq!(tones[0].hops, 37);
    }

    #[test]
    fn a_melody_is_music_and_a_steady_tone_is_not() {
        let (tones, hops) = tones_of(&melody(20.0, 0.4));
        let halves = 2000;
        let m = spans(&tones, hops, halves, &|_| 0.01).spans;
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].0 <= 100 && m[0].1 >= 1900, "{m:?}");
        // One tone for 20 s: no new notes.
        let (tones, hops) = tones_of(&sine(425.0, 20.0));
        assert!(spans(&tones, hops, halves, &|_| 0.01).spans.is_empty());
        // Silence and white noise hold no tones.
        let (tones, _) = tones_of(&vec![0.0; 16000]);
        assert!(tones.is_empty());
        let mut seed = 1u64;
        let noise: Vec<f32> = (0..80000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        let (tones, hops) = tones_of(&noise);
        assert!(
            spans(&tones, hops, 1000, &|_| 0.01).spans.is_empty(),
            "{tones:?}"
        );
    }

    #[test]
    fn music_with_no_speech_between_is_one_hold() {
        let music = vec![(100, 200), (250, 400), (900, 1000)];
        assert_eq!(holds(&music, &vec![], 400), vec![(100, 400), (900, 1000)]);
        assert_eq!(
            holds(&music, &vec![(210, 240)], 400),
            vec![(100, 200), (250, 400), (900, 1000)]
        );
    }

    #[test]
    fn within_reaches_both_ways() {
        let flags = [false, false, false, true, false, false, false, false, true];
        let got: Vec<usize> = within(&flags, 2)
            .iter()
            .enumerate()
            .filter(|(_, &w)| w)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(within(&[false; 3], 5), vec![false; 3]);
    }

    #[test]
    fn short_music_is_hold_music_only_where_it_continues_a_hold() {
        // A hold over halves 1000-3000, its last 2 s after a 1.4 s rest (3140-3340), and 2 s of
        // music 1.6 s before it.
        let music = Music {
            spans: vec![(1000, 3000)],
            short: vec![(640, 840), (3140, 3340)],
            ..Music::default()
        };
        let with_both = music.continued(&vec![(100, 500)]).expect("continued");
        assert_eq!(
            with_both.spans,
            vec![(640, 840), (1000, 3000), (3140, 3340)]
        );
        assert!(with_both.short.is_empty());
        // Talk in the rest (the agent back on the line): the bars after it are not the hold's.
        let after_talk = music
            .continued(&vec![(3050, 3120)])
            .expect("the one before");
        assert_eq!(after_talk.spans, vec![(640, 840), (1000, 3000)]);
        // Speech taken inside the short music itself does not part it from the hold.
        let inside = music.continued(&vec![(3160, 3300)]).expect("continued");
        assert_eq!(inside.spans.len(), 3);
        // Talk on both sides: nothing continues the hold.
        assert_eq!(music.continued(&vec![(850, 990), (3010, 3100)]), None);
    }
}
