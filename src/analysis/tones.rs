//! Signalling tones in the audio, in pass one: DTMF digits keyed into the call (ITU-T Q.23,
//! Q.24) and the recorder's periodic beep.
//!
//! The model, in a paragraph. A signalling tone is one or two steady sinusoids at frequencies
//! fixed in advance that, while they sound, hold nearly all of the signal's power. So every
//! 10 ms half of the channel is put through a bank of Goertzel filters at those frequencies
//! (`goertzel`); a half is a *hit* when the tones' power is above the lowest level a receiver
//! must accept, they hold most of the half's power (speech and music spread theirs over many
//! partials and formants), and (for DTMF) the two groups' levels are within the twist a
//! receiver allows. Consecutive hits of the same tone make a run; a run is a tone when it lasts
//! as long as Q.24 requires and its frequencies, read from the bins' phase advance over the whole
//! run, are within tolerance. A voice's harmonics glide with its pitch, so they fail that test
//! even where they line up with a DTMF pair for a moment. Only when and how long a tone sounded
//! is kept, never which digit it was: keeping the digits would put card data in the store.

use super::goertzel::{Bank, Bin};

/// Q.23's low (row) and high (column) groups.
pub const ROWS_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
pub const COLS_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Halves below this mean-square power (-40 dB, about -34 dBm0) hold no tone a receiver must
/// take: Q.24's receivers must accept tones down to -25 dBm0 per frequency (the margin covers
/// the weakest tone of a twisted pair). Quieter halves skip the filters altogether.
const MIN_TONE_POWER: f32 = 1e-4;
/// The tones hold at least this share of a hit's power. A clean pair holds nearly all of it;
/// noise 10 dB below the tones leaves 0.91, and a tone 1.5 % off its bin loses 0.9 dB in a 10 ms
/// block (0.74 left). A voiced sound spreads its power over a dozen harmonics and formants.
const MIN_SHARE: f32 = 0.6;
/// The most of a hit's power the voicing band can hold (0.5 by the bound above, with margin for
/// the band filter's ringing over from the half before).
const MAX_LOW_SHARE: f32 = 0.6;
/// Twist: the two groups' levels may differ by up to 8 dB either way (Q.24's receivers take
/// 8 dB of normal twist and 4 dB of reverse twist or more; the line's tilt is unknown here).
const MAX_TWIST: f32 = 6.309_573; // 10^(8/10)
/// Q.24's frequency tolerances: a receiver accepts a tone within 1.5 % of its frequency and
/// rejects one beyond 3.5 %; the line between is drawn halfway.
const MAX_OFFSET: f64 = 0.025;
/// Q.24's durations: tones of 40 ms or more are taken, of 23 ms or less refused; the line is
/// drawn at 32 ms. Interruptions of 10 ms (one half) are bridged, as Q.24 asks.
const MIN_TONE_S: f64 = 0.032;
const BRIDGE_HALVES: u32 = 1;

/// What the detectors are told of each half besides its samples: its mean-square power about
/// its mean (`ac`) and its power in the voicing band (`low`, 100-390 Hz, pass one's).
#[derive(Debug, Clone, Copy, Default)]
pub struct HalfView {
    pub ac: f32,
    pub low: f32,
}

/// A tone found: when it sounded, in seconds from the start of the channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpan {
    pub start_s: f64,
    pub end_s: f64,
}

/// The run of hits of one tone (a DTMF pair, or the beep) being followed.
#[derive(Debug, Clone)]
struct Run {
    key: u8,
    first: u32,
    last: u32,
    /// Amplitudes (square root of the tones' power) of the first and last hit, their sum and
    /// their maximum: the edges and the duration are read from them, a partly covered half
    /// counting for its share.
    first_amp: f32,
    last_amp: f32,
    sum_amp: f32,
    max_amp: f32,
    /// `Σ bin[b] conj(bin[b-1])` over consecutive hits, per lane of the tone.
    advance: [Bin; 2],
    /// The last hit's bins, per lane of the tone.
    prev: [Bin; 2],
}

/// Follows runs of hits and turns the ones that pass into tones.
#[derive(Debug, Clone)]
struct Runs {
    half_s: f64,
    run: Option<Run>,
    found: Vec<ToneSpan>,
}

/// One hit: the tone's key, its lanes' bins and its amplitude.
struct Hit {
    key: u8,
    bins: [Bin; 2],
    amp: f32,
}

impl Runs {
    fn new(half_s: f64) -> Runs {
        Runs {
            half_s,
            run: None,
            found: Vec::new(),
        }
    }

    /// The next half, `index`, with its hit if it is one; `within` tells whether a run's
    /// frequencies, from its lanes' phase advance, hold.
    fn half(&mut self, index: u32, hit: Option<Hit>, within: impl Fn(u8, [Bin; 2]) -> bool) {
        if let Some(run) = &mut self.run {
            let continues = hit.as_ref().is_some_and(|h| h.key == run.key)
                && index <= run.last + 1 + BRIDGE_HALVES;
            if continues {
                let h = hit.as_ref().expect("checked");
                if index == run.last + 1 {
                    for k in 0..2 {
                        let a = h.bins[k].times_conj(run.prev[k]);
                        run.advance[k].re += a.re;
                        run.advance[k].im += a.im;
                    }
                }
                run.prev = h.bins;
                run.last = index;
                run.last_amp = h.amp;
                run.sum_amp += h.amp;
                run.max_amp = run.max_amp.max(h.amp);
                return;
            }
            if hit.is_none() && index <= run.last + BRIDGE_HALVES {
                return;
            }
            self.close(&within);
        }
        if let Some(h) = hit {
            self.run = Some(Run {
                key: h.key,
                first: index,
                last: index,
                first_amp: h.amp,
                last_amp: h.amp,
                sum_amp: h.amp,
                max_amp: h.amp,
                advance: [Bin::default(); 2],
                prev: h.bins,
            });
        }
    }

    /// Ends the run being followed: a tone if it lasted and held its frequencies.
    fn close(&mut self, within: &impl Fn(u8, [Bin; 2]) -> bool) {
        let Some(run) = self.run.take() else {
            return;
        };
        let duration_s = (run.sum_amp / run.max_amp) as f64 * self.half_s;
        // Frequencies are read from two consecutive hits or more.
        let measured = run.advance.iter().all(|a| a.norm_sqr() > 0.0);
        if duration_s < MIN_TONE_S || !measured || !within(run.key, run.advance) {
            return;
        }
        let share = |amp: f32| (amp / run.max_amp).min(1.0) as f64;
        self.found.push(ToneSpan {
            start_s: (run.first as f64 + 1.0 - share(run.first_amp)) * self.half_s,
            end_s: (run.last as f64 + share(run.last_amp)) * self.half_s,
        });
    }
}

/// Pass one's DTMF detector for one channel.
#[derive(Debug, Clone)]
pub struct Dtmf {
    bank: Bank<8>,
    runs: Runs,
    gate: Gate,
}

/// Which frames are filtered: all while a tone is followed; otherwise only steady ones, from
/// their second half (see [`Gate::frame`]).
#[derive(Debug, Clone)]
struct Gate {
    /// The frame before (its samples, what pass one saw of its halves, and its first half's
    /// index): a tone found in this frame may have started there.
    before: Vec<f32>,
    before_views: [HalfView; 2],
    before_first: Option<u32>,
}

impl Gate {
    fn new(half_len: usize) -> Gate {
        Gate {
            before: vec![0.0; 2 * half_len],
            before_views: [HalfView::default(); 2],
            before_first: None,
        }
    }

    /// The next frame: its two halves from half `first` on, and what pass one saw of them;
    /// `may` tells a half that could be a hit without filtering it, `hit` filters it.
    ///
    /// While no tone is being followed, only a steady frame's second half is filtered (see
    /// [`STEADY`]); when it is a hit, the frame before and this frame's first half are filtered
    /// too, in order, since the tone may have started there. Every half of a tone is thus
    /// filtered, as if all were, at a fraction of the cost over speech and noise.
    #[inline]
    fn frame(
        &mut self,
        runs: &mut Runs,
        (first, halves, views): (u32, [&[f32]; 2], [HalfView; 2]),
        may: impl Fn(HalfView) -> bool,
        hit: impl Fn(&[f32], HalfView) -> Option<Hit>,
        within: impl Fn(u8, [Bin; 2]) -> bool + Copy,
    ) {
        let following = runs.run.is_some();
        let second = if following || steady(views) {
            hit(halves[1], views[1])
        } else {
            None
        };
        if following || second.is_some() {
            if !following && self.before_first.is_some_and(|b| b + 2 == first) {
                let (a, b) = self.before.split_at(halves[0].len());
                for (k, (half, view)) in [a, b].into_iter().zip(self.before_views).enumerate() {
                    runs.half(first - 2 + k as u32, hit(half, view), within);
                }
            }
            runs.half(first, hit(halves[0], views[0]), within);
            runs.half(first + 1, second, within);
        }
        // A tone that starts in this frame covers its second half wholly, or the next frame's
        // first half is its first hit: the frame is kept only if its second half could be one.
        if may(views[1]) {
            let n = halves[0].len();
            self.before[..n].copy_from_slice(halves[0]);
            self.before[n..].copy_from_slice(halves[1]);
            self.before_views = views;
            self.before_first = Some(first);
        }
    }
}

/// While no tone is followed, a frame is filtered only when its two halves' powers are within
/// this ratio (2 dB): a tone of 40 ms or more covers a whole frame somewhere, where its power
/// holds within the beat of its two frequencies (at most 0.9 dB from half to half over 10 ms:
/// they are 268 Hz apart or more) and the jitter of noise 10 dB below it (pink noise, whose
/// power lies in few low bins, jitters most). Most of a voice's frames swing more than that,
/// and are passed over. (At 1.5 dB, noisy tones were first filtered a frame late.)
const STEADY: f32 = 1.585;

impl Dtmf {
    /// A detector for halves of `half_len` samples at `rate` Hz.
    pub fn new(rate: u32, half_len: usize) -> Dtmf {
        let mut hz = [0.0; 8];
        hz[..4].copy_from_slice(&ROWS_HZ);
        hz[4..].copy_from_slice(&COLS_HZ);
        Dtmf {
            // Summed down to about 4 kHz (its Nyquist frequency, 2 kHz, above the highest
            // column's 1633 Hz).
            bank: Bank::new(hz, rate, half_len, (rate / 4000) as usize),
            runs: Runs::new(half_len as f64 / rate as f64),
            gate: Gate::new(half_len),
        }
    }

    /// The next frame: its two halves from half `first` on, and what pass one saw of them.
    #[inline]
    pub fn frame(&mut self, first: u32, halves: [&[f32]; 2], views: [HalfView; 2]) {
        let bank = &self.bank;
        self.gate.frame(
            &mut self.runs,
            (first, halves, views),
            may_hit,
            |half, view| hit_of(bank, half, view),
            |key, advance| pair_within(bank, key, advance),
        );
    }

    /// The next half alone (for tests that feed halves).
    #[cfg(test)]
    fn half(&mut self, index: u32, half: &[f32], view: HalfView) {
        let hit = hit_of(&self.bank, half, view);
        let bank = &self.bank;
        self.runs
            .half(index, hit, |key, advance| pair_within(bank, key, advance));
    }

    /// Ends the stream: the tones found, in order.
    pub fn finish(mut self) -> Vec<ToneSpan> {
        let bank = &self.bank;
        self.runs
            .close(&|key, advance| pair_within(bank, key, advance));
        self.runs.found
    }
}

/// Whether a frame's two halves hold their power within [`STEADY`].
fn steady(views: [HalfView; 2]) -> bool {
    let [a, b] = views.map(|v| v.ac);
    a <= b * STEADY && b <= a * STEADY
}

/// Whether a half passes the checks that need no filtering: loud enough, and not voiced. A
/// pair holding the share a hit needs leaves at most half the power in the voicing band: the
/// rest (at most 40 %) plus the tones' own leakage into it (at most 17 %, the band's response
/// at 697 Hz). Voiced speech, with most of its power there, is passed over.
fn may_hit(view: HalfView) -> bool {
    view.ac >= MIN_TONE_POWER && view.low <= MAX_LOW_SHARE * view.ac
}

/// The hit a half of DTMF is, if it is one.
fn hit_of(bank: &Bank<8>, half: &[f32], view: HalfView) -> Option<Hit> {
    if !may_hit(view) {
        return None;
    }
    let ac = view.ac;
    let bins = bank.bins(half);
    let powers: [f32; 8] = std::array::from_fn(|k| bank.power(k, bins[k]));
    let strongest = |lanes: std::ops::Range<usize>| {
        lanes
            .max_by(|&a, &b| powers[a].total_cmp(&powers[b]))
            .expect("four lanes")
    };
    let (row, col) = (strongest(0..4), strongest(4..8));
    let (low, high) = (powers[row], powers[col]);
    let steady = low.min(high) >= MIN_TONE_POWER / 4.0
        && low <= high * MAX_TWIST
        && high <= low * MAX_TWIST
        && low + high >= MIN_SHARE * ac;
    steady.then(|| Hit {
        key: (row * 4 + (col - 4)) as u8,
        bins: [bins[row], bins[col]],
        amp: (low + high).sqrt(),
    })
}

/// Whether both frequencies of the pair `key` (row * 4 + column), read from their lanes' phase
/// advance, are within Q.24's tolerance.
fn pair_within(bank: &Bank<8>, key: u8, advance: [Bin; 2]) -> bool {
    let (row, col) = ((key / 4) as usize, 4 + (key % 4) as usize);
    [row, col]
        .iter()
        .zip(advance)
        .all(|(&k, a)| (bank.offset_hz(k, a) / bank.hz[k]).abs() <= MAX_OFFSET)
}

/// Pass one's detector of the recorder's beep (one configured frequency) for one channel.
#[derive(Debug, Clone)]
pub struct Beep {
    bank: Bank<1>,
    runs: Runs,
    gate: Gate,
}

/// A beep is a tone like a DTMF pair's, mixed into the call at a prompt's level: halves below
/// -50 dB (mean square) are not looked at.
const MIN_BEEP_POWER: f32 = 1e-5;
/// Unlike a digit, a beep sounds over whoever is talking (the recorder mixes it in): over a
/// voice at its own level it holds half the power, over one 3 dB louder a third. Below that
/// share the voice hides it (the period's check lets one hidden beep pass).
const MIN_BEEP_SHARE: f32 = 0.33;

impl Beep {
    pub fn new(hz: f64, rate: u32, half_len: usize) -> Beep {
        // Summed down as far as the beep allows (its frequency under 0.4 of the new rate, where
        // the box-car still passes it at 0.8 or more).
        let decimate = (rate as f64 / (2.5 * hz)).floor().max(1.0) as usize;
        Beep {
            bank: Bank::new([hz], rate, half_len, decimate),
            runs: Runs::new(half_len as f64 / rate as f64),
            gate: Gate::new(half_len),
        }
    }

    /// The next frame, as [`Dtmf::frame`].
    #[inline]
    pub fn frame(&mut self, first: u32, halves: [&[f32]; 2], views: [HalfView; 2]) {
        let bank = &self.bank;
        self.gate.frame(
            &mut self.runs,
            (first, halves, views),
            |view| view.ac >= MIN_BEEP_POWER,
            |half, view| beep_hit(bank, half, view),
            |_, advance| tone_within(bank, advance[0]),
        );
    }

    pub fn finish(mut self) -> Vec<ToneSpan> {
        let bank = &self.bank;
        self.runs
            .close(&|_, advance: [Bin; 2]| tone_within(bank, advance[0]));
        self.runs.found
    }
}

fn beep_hit(bank: &Bank<1>, half: &[f32], view: HalfView) -> Option<Hit> {
    if view.ac < MIN_BEEP_POWER {
        return None;
    }
    let bin = bank.bins(half)[0];
    let power = bank.power(0, bin);
    (power >= MIN_BEEP_SHARE * view.ac).then_some(Hit {
        key: 0,
        bins: [bin, bin],
        amp: power.sqrt(),
    })
}

fn tone_within(bank: &Bank<1>, advance: Bin) -> bool {
    (bank.offset_hz(0, advance) / bank.hz[0]).abs() <= MAX_OFFSET
}

/// A burst of digits: tones at most `gap_s` apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    pub start_s: f64,
    pub end_s: f64,
    pub tones: Vec<ToneSpan>,
}

/// The tones grouped into bursts: a card number or a PIN is keyed as digits a few hundred
/// milliseconds apart, with pauses of a second or two between groups.
pub fn bursts(tones: &[ToneSpan], gap_s: f64) -> Vec<Burst> {
    let mut out: Vec<Burst> = Vec::new();
    for &t in tones {
        match out.last_mut() {
            Some(b) if t.start_s - b.end_s <= gap_s => {
                b.end_s = t.end_s;
                b.tones.push(t);
            }
            _ => out.push(Burst {
                start_s: t.start_s,
                end_s: t.end_s,
                tones: vec![t],
            }),
        }
    }
    out
}

/// The strongest frequency (Hz) in the telephone band (100-3400 Hz) of a sound: a beep's.
/// Power spectra of 64 ms frames are summed and the peak bin refined by a parabola through it
/// and its neighbours (in dB). `None` for a sound too short or without a peak.
pub fn dominant_hz(samples: &[f32], rate: u32) -> Option<f64> {
    let len = (0.064 * rate as f64).round() as usize;
    if samples.len() < len || len < 16 {
        return None;
    }
    let mut spectrum = super::spectrum::PowerSpectrum::new(len);
    let mut sum = vec![0.0f64; spectrum.bins()];
    for frame in samples.chunks_exact(len) {
        spectrum.compute(frame);
        for (s, &p) in sum.iter_mut().zip(&spectrum.power) {
            *s += p as f64;
        }
    }
    let bin_hz = rate as f64 / spectrum.size() as f64;
    let lo = ((100.0 / bin_hz).ceil() as usize).max(1);
    let hi = ((3400.0 / bin_hz).floor() as usize).min(sum.len() - 2);
    let peak = (lo..=hi).max_by(|&a, &b| sum[a].total_cmp(&sum[b]))?;
    if sum[peak] <= 0.0 {
        return None;
    }
    let db = |i: usize| 10.0 * sum[i].max(1e-30).log10();
    let (a, b, c) = (db(peak - 1), db(peak), db(peak + 1));
    let denom = a - 2.0 * b + c;
    let shift = if denom.abs() > 1e-12 {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    Some((peak as f64 + shift) * bin_hz)
}

/// The beep as the period expects it: how many beeps were heard in step, the first and the
/// last, and where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct BeepRun {
    pub count: u32,
    pub first_s: Option<f64>,
    pub last_s: Option<f64>,
    /// The end of the last beep heard before one due was missing; `Some(0.0)` when none was
    /// heard though one was due.
    pub stopped_at_s: Option<f64>,
    /// The first beep came later than one period (and its tolerance) into the call.
    pub late_start: bool,
}

/// Judges the beeps heard (any channel) against the period. A beep is in step when it starts a
/// whole number of periods (one or two: a loud voice can hide one beep) after the last one in
/// step, within the tolerance; beeps out of step (a voice's note that passed as a tone) are not
/// counted. The beep stopped where no beep in step came for two periods, or the call went on
/// that long after the last.
pub fn beep_run(beeps: &[ToneSpan], duration_s: f64, period_s: f64, tolerance_s: f64) -> BeepRun {
    let mut sorted: Vec<ToneSpan> = beeps.to_vec();
    sorted.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let due = period_s + tolerance_s;
    let lost = 2.0 * period_s + tolerance_s;
    let Some(&first) = sorted.first() else {
        return BeepRun {
            count: 0,
            first_s: None,
            last_s: None,
            stopped_at_s: (duration_s > due).then_some(0.0),
            late_start: duration_s > due,
        };
    };
    let mut count = 1;
    let mut last = first;
    let mut stopped = None;
    for &b in &sorted[1..] {
        let since = b.start_s - last.start_s;
        if since > lost {
            stopped = Some(last.end_s);
            break;
        }
        let in_step = (1..=2).any(|k| (since - k as f64 * period_s).abs() <= tolerance_s);
        if in_step {
            count += 1;
            last = b;
        }
    }
    if stopped.is_none() && duration_s - last.start_s > lost {
        stopped = Some(last.end_s);
    }
    BeepRun {
        count,
        first_s: Some(first.start_s),
        last_s: Some(last.end_s),
        stopped_at_s: stopped,
        late_start: first.start_s > due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    /// The tones a detector finds in one DTMF pair of `ms` milliseconds at `row`/`col` Hz,
    /// with `low_db`/`high_db` (peak dBFS) levels, between 100 ms of silence.
    fn pair(row: f64, col: f64, ms: f64, low_db: f64, high_db: f64) -> Vec<ToneSpan> {
        let lead = 800;
        let len = (ms / 1000.0 * RATE as f64) as usize;
        let mut x = vec![0.0f32; lead + len + lead];
        for (hz, db) in [(row, low_db), (col, high_db)] {
            let amp = 10f64.powf(db / 20.0);
            for i in 0..len {
                let t = i as f64 / RATE as f64;
                x[lead + i] += (amp * (std::f64::consts::TAU * hz * t).sin()) as f32;
            }
        }
        let mut d = Dtmf::new(RATE, 80);
        for (j, half) in x.chunks_exact(80).enumerate() {
            let mean = half.iter().sum::<f32>() / 80.0;
            let ac = half.iter().map(|v| v * v).sum::<f32>() / 80.0 - mean * mean;
            d.half(j as u32, half, HalfView { ac, low: 0.0 });
        }
        d.finish()
    }

    #[test]
    fn q24_frequency_tolerance_accepts_1_5_and_rejects_3_5_percent() {
        for (row, col) in ROWS_HZ.iter().zip(COLS_HZ) {
            for off in [-0.015, 0.0, 0.015] {
                let found = pair(row * (1.0 + off), col * (1.0 - off), 60.0, -15.0, -15.0);
                assert_eq!(found.len(), 1, "{row}/{col} Hz {off:+}: {found:?}");
            }
            for off in [-0.035, 0.035] {
                let found = pair(row * (1.0 + off), col, 60.0, -15.0, -15.0);
                assert!(found.is_empty(), "{row} Hz {off:+}: {found:?}");
                let found = pair(*row, col * (1.0 + off), 60.0, -15.0, -15.0);
                assert!(found.is_empty(), "{col} Hz {off:+}: {found:?}");
            }
        }
    }

    #[test]
    fn q24_durations_take_40_ms_and_refuse_23_ms() {
        assert_eq!(pair(770.0, 1336.0, 40.0, -20.0, -20.0).len(), 1);
        assert!(pair(770.0, 1336.0, 23.0, -20.0, -20.0).is_empty());
        let found = pair(852.0, 1477.0, 80.0, -20.0, -20.0);
        assert_eq!(found.len(), 1);
        assert!((found[0].start_s - 0.1).abs() < 0.005, "{found:?}");
        assert!((found[0].end_s - 0.18).abs() < 0.005, "{found:?}");
    }

    #[test]
    fn twist_beyond_8_db_and_tones_too_weak_are_refused() {
        assert_eq!(pair(941.0, 1209.0, 60.0, -12.0, -18.0).len(), 1);
        assert!(pair(941.0, 1209.0, 60.0, -10.0, -21.0).is_empty());
        assert!(pair(941.0, 1209.0, 60.0, -21.0, -10.0).is_empty());
        // About -40 dBm0 per tone: below what any receiver must take.
        assert!(pair(941.0, 1209.0, 60.0, -45.0, -45.0).is_empty());
    }

    #[test]
    fn a_beep_file_gives_its_frequency() {
        let beep: Vec<f32> = (0..2000)
            .map(|i| (0.3 * (std::f64::consts::TAU * 987.0 * i as f64 / 8000.0).sin()) as f32)
            .collect();
        let hz = dominant_hz(&beep, 8000).unwrap();
        assert!((hz - 987.0).abs() < 3.0, "{hz}");
        assert_eq!(dominant_hz(&beep[..100], 8000), None);
    }

    #[test]
    fn a_beep_in_step_runs_through_and_its_stop_is_placed() {
        let beep = |t: f64| ToneSpan {
            start_s: t,
            end_s: t + 0.25,
        };
        let all: Vec<ToneSpan> = (0..8).map(|k| beep(2.0 + 15.0 * k as f64)).collect();
        let run = beep_run(&all, 120.0, 15.0, 1.0);
        assert_eq!(
            (run.count, run.stopped_at_s, run.late_start),
            (8, None, false)
        );
        // One beep hidden by a voice, and one out of step: neither breaks the run.
        let mut gapped = all.clone();
        gapped.remove(3);
        gapped.push(beep(40.0));
        let run = beep_run(&gapped, 120.0, 15.0, 1.0);
        assert_eq!((run.count, run.stopped_at_s), (7, None));
        // Stopped after the fourth beep.
        let run = beep_run(&all[..4], 120.0, 15.0, 1.0);
        assert_eq!(run.count, 4);
        assert_eq!(run.stopped_at_s, Some(47.25));
        let none = beep_run(&[], 120.0, 15.0, 1.0);
        assert_eq!((none.count, none.stopped_at_s), (0, Some(0.0)));
        assert_eq!(beep_run(&[], 10.0, 15.0, 1.0).stopped_at_s, None);
    }
}
