//! Pass two, per channel: the speech segments, from the kept features, in named passes.
//!
//! The model, in a paragraph. Each of three bands of a channel (the full band without DC, the
//! pre-emphasised speech band, the voicing band) has a noise: its floor at the quiet end of
//! the level distribution (`noise`), and how far that floor rises from moment to moment
//! (`track`). A 10 ms half is speech when it stands out of its band's noise by more than the
//! noise's own spread and the WebRTC VAD agrees, or when it stands out so far that the energy
//! alone is evidence. Runs of such halves are bridged over short gaps and kept when they hold
//! a word's worth of evidence; phrases fainter than P.56's margin under the call's active level
//! are dropped unless they stand well out of the noise. Then each edge moves to where the
//! speech itself (noise removed) is within P.56's margin of its phrase's active level, as far
//! as any band sees it above its noise, and on down a decay the noise hides. Music is not
//! speech: only a voice standing out of it is (`music::over_music`).
//!
//! The passes, in order: [`Bands::measure`] (noise per band), [`detect`] (presence per half),
//! [`keep_evidenced`] (bridge, evidence), [`drop_faint_phrases`], [`Edges::apply`] (P.56
//! edges, twice: once on the confident segments' level, once on the refined ones'), and the
//! music pass. Every constant is in [`Params`], with where it comes from. Every strength test
//! judges a band's excess by that band's peak gain, so a tail can be under-stated but never
//! over-stated: only noise can push an edge late, and each gate holds noise to its own spread.

use crate::config::VadConfig;

use super::features::{Half, HALVES_PER_VAD, PRE_EMPHASIS};
use super::noise::{
    level_db, moving_average_of, noise_floor_of, noise_spread, MovingAverage, NoiseEstimate,
    FLOOR_POWER, SMOOTH_HALVES,
};
use super::track::{self, Track};

/// Speech segments as half indices `[start, end)`.
pub type Segments = Vec<(usize, usize)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    pub noise: NoiseEstimate,
    pub segments: Segments,
}

/// P.56's margin: speech is active while within this many dB of its active level.
pub const P56_MARGIN_DB: f64 = 15.9;

/// P.56's hangover: activity lasts this long after the envelope falls below its threshold.
pub const P56_HANGOVER_S: f64 = 0.2;

/// Every constant of detection, in halves or power ratios, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Gaps shorter than this are bridged (`[vad] min_silence_ms`: a pause within a phrase).
    pub bridge: usize,
    /// Speech evidence a segment needs, and the shortest run that counts on its own
    /// (`[vad] min_speech_ms`: about a syllable's nucleus).
    pub min_run: usize,
    /// The least a gate stands over its band's noise, dB (`[vad] energy_margin_db`).
    pub energy_margin_db: f64,
    /// The least an edge's half stands over its band's noise to be seen, dB
    /// (`[vad] edge_margin_db`).
    pub edge_margin_db: f64,
    /// Gates stand this many spreads of the noise's 50 ms level over it: a Gaussian spread
    /// passes one noise half in 740.
    pub gate_spreads: f64,
    /// An edge's half is seen this many spreads over the noise (one noise half in 44: edges
    /// only grow from speech, so a looser test there costs little).
    pub visible_spreads: f64,
    /// The strong gate over the gate, dB, and its least height over the noise: so far above
    /// the noise that only a mistaken VAD would call it silence (the VAD misses weak words in
    /// noise; the energy alone is then evidence enough).
    pub strong_over_gate_db: f64,
    pub strong_least_db: f64,
    /// P.56's margin as a power ratio (under the active level).
    pub margin: f64,
    /// P.56's hangover.
    pub hangover: usize,
    /// Pauses at least this long (500 ms) separate phrases, each with its own active level for
    /// its edges: a turn in a conversation or a prompt in a menu.
    pub phrase_gap: usize,
    /// The one-sided window that looks past an edge for a tail too weak to see in 50 ms
    /// (100 ms: the noise's spread halves again).
    pub tail_window: usize,
    /// Spreads above its noise a band must stand, past a pause, to carry an end on to a sound
    /// after a stop closure (one noise half in 30,000 for a Gaussian spread).
    pub closure_spreads: f64,
    /// How far (a power ratio, 10 dB) the speech in one half must stand above the full band's
    /// noise to count as a burst in that band alone. The power of 80 or more samples of any
    /// Gaussian noise, even one so narrow that a half holds two degrees of freedom (a
    /// chi-square with two: exceeding ten times its mean has probability e^-10, 5e-5), stays
    /// under it: fewer than one end in 500 is carried on by noise across the 300 ms looked
    /// past.
    pub lone_burst: f64,
    /// How much better (a ratio of speech-to-noise shares, 3 dB) the voicing band must see
    /// speech than the full band for edges to follow it.
    pub voicing_advantage: f64,
    /// Inactive halves that cut an edge island off from its segment (50 ms).
    pub island_gap: usize,
    /// Halves in each of the two windows that measure a decay's rate at an end (50 ms).
    pub decay_halves: usize,
    /// Decay rates (dB per half) an end is extrapolated with: a slow vowel fade (50 dB/s) to
    /// an abrupt stop (300 dB/s).
    pub decay_slopes_db: (f64, f64),
    /// The most an end is carried past what can be seen (80 ms).
    pub max_unseen: usize,
}

impl Params {
    /// The parameters for halves of `half_s` seconds under the `[vad]` configuration.
    pub fn new(cfg: &VadConfig, half_s: f64) -> Params {
        let halves = |ms: f64| ((ms / 1000.0) / half_s).round() as usize;
        Params {
            bridge: halves(cfg.min_silence_ms as f64),
            min_run: halves(cfg.min_speech_ms as f64).max(1),
            energy_margin_db: cfg.energy_margin_db,
            edge_margin_db: cfg.edge_margin_db,
            gate_spreads: 3.0,
            visible_spreads: 2.0,
            strong_over_gate_db: 4.5,
            strong_least_db: 6.0,
            margin: 10f64.powf(-P56_MARGIN_DB / 10.0),
            hangover: halves(P56_HANGOVER_S * 1000.0).max(1),
            phrase_gap: halves(500.0),
            tail_window: 10,
            closure_spreads: 4.0,
            lone_burst: 10.0,
            voicing_advantage: 2.0,
            island_gap: 5,
            decay_halves: 5,
            decay_slopes_db: (0.5, 3.0),
            max_unseen: 8,
        }
    }
}

/// Finds the speech segments of one channel from its kept halves; their full-band powers
/// (`Half::power`) give the noise as measured. `vad` holds one decision per
/// `HALVES_PER_VAD` halves. Music is not noise, and is speech only where a voice stands out of
/// it (`music::over_music`).
pub fn segment(
    halves: &[Half],
    vad: &[bool],
    half_s: f64,
    cfg: &VadConfig,
    music: &super::music::Music,
) -> Segmentation {
    let p = Params::new(cfg, half_s);
    let bands = Bands::measure(halves, &p);
    let raw = detect(&bands, vad);
    let coarse = keep_evidenced(&raw, &p);
    let voicing_follows = bands.voicing_follows(&coarse, &p);
    let coarse = drop_faint_phrases(coarse, &bands, &p);
    let refined = Edges::new(&bands, &p, voicing_follows).apply(&coarse);
    Segmentation {
        noise: measured_noise(halves, music),
        segments: super::music::over_music(
            &bridge(&refined, p.bridge),
            music,
            &|j| halves[j].ac(),
            p.min_run,
        ),
    }
}

/// The noise as measured (for the report): the full band's floor, outside the music.
fn measured_noise(halves: &[Half], music: &super::music::Music) -> NoiseEstimate {
    if music.spans.is_empty() {
        return noise_floor_of(halves.len(), |j| halves[j].power());
    }
    let rest: Vec<f32> = outside(&music.spans, 0..halves.len())
        .map(|j| halves[j].power())
        .collect();
    noise_floor_of(rest.len(), |j| rest[j])
}

/// Pass 1: the three bands of a channel, each with its noise and gates.
struct Bands<'a> {
    halves: &'a [Half],
    /// Full band without its sub-voice wander (`Half::ac`): where voiced speech has its power,
    /// so white noise hides it least.
    full: View,
    /// Pre-emphasised speech band: where rumble and pink noise's slow wander vanish.
    emph: View,
    /// Voicing band (100-390 Hz): where a decaying voice lasts longest; follows ends only.
    voicing: View,
    /// What a 100 ms mean past an edge must exceed to be seen, in the full and voicing bands.
    tail_visible: f64,
    low_tail_visible: f64,
}

impl<'a> Bands<'a> {
    fn measure(halves: &'a [Half], p: &Params) -> Bands<'a> {
        let n = halves.len();
        let full = View::new(n, |j| halves[j].ac(), p);
        let emph = View::new(n, |j| halves[j].band(), p);
        let voicing = View::new(n, |j| halves[j].low(), p);
        // The spreads of the 100 ms means that look past an edge for a weak tail.
        let tail_spread = noise_spread(MovingAverage::new(n, p.tail_window / 2, |j| {
            full.level_over_floor(j, halves[j].ac())
        }));
        let low_tail_spread = noise_spread(MovingAverage::new(n, p.tail_window / 2, |j| {
            voicing.level_over_floor(j, halves[j].low())
        }));
        let visible = |noise: f64, spread: f64| {
            noise * 10f64.powf(p.edge_margin_db.max(p.visible_spreads * spread) / 10.0)
        };
        Bands {
            halves,
            tail_visible: visible(full.noise.power, tail_spread),
            low_tail_visible: visible(voicing.noise.power, low_tail_spread),
            full,
            emph,
            voicing,
        }
    }

    fn len(&self) -> usize {
        self.halves.len()
    }

    fn ac(&self, j: usize) -> f64 {
        self.halves[j].ac() as f64
    }

    fn band(&self, j: usize) -> f64 {
        self.halves[j].band() as f64
    }

    fn low(&self, j: usize) -> f64 {
        self.halves[j].low() as f64
    }

    /// The full band may not call speech where the speech band sits below its own noise:
    /// speech only adds power, so that is a swell of low-frequency noise.
    fn speech_band_agrees(&self, j: usize) -> bool {
        self.emph.above(j, self.emph.noise.power)
    }
}

/// Pass 2: speech presence per half, as runs. A half is speech when the VAD says so and it
/// passes a gate in the full or speech band, or when it passes a strong gate whatever the VAD
/// says.
fn detect(bands: &Bands, vad: &[bool]) -> Segments {
    let (full, emph) = (&bands.full, &bands.emph);
    let vad_at = |j: usize| {
        vad.get(j / HALVES_PER_VAD)
            .or(vad.last())
            .copied()
            .unwrap_or(false)
    };
    let mut raw: Segments = Vec::new();
    let mut start = None;
    for j in 0..bands.len() {
        let full_says = |t: f64| full.above(j, t) && bands.speech_band_agrees(j);
        let speech = (vad_at(j) && (full_says(full.gate) || emph.above(j, emph.gate)))
            || full_says(full.strong)
            || emph.above(j, emph.strong);
        match (speech, start) {
            (true, None) => start = Some(j),
            (false, Some(s)) => {
                raw.push((s, j));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        raw.push((s, bands.len()));
    }
    raw
}

/// Pass 3: bridges short gaps, then keeps what holds enough speech evidence: a few scattered
/// noise blips bridged together are still not speech, and neither is a click.
fn keep_evidenced(raw: &Segments, p: &Params) -> Segments {
    let mut segments = bridge(raw, p.bridge);
    segments.retain(|&(s, e)| {
        let from = raw.partition_point(|r| r.1 <= s);
        let evidence: usize = raw[from..]
            .iter()
            .take_while(|r| r.0 < e)
            .map(|r| r.1.min(e) - r.0.max(s))
            .sum();
        evidence >= p.min_run
    });
    segments
}

/// The halves of `range` outside the sorted spans `spans`.
pub fn outside(
    spans: &Segments,
    range: std::ops::Range<usize>,
) -> impl Iterator<Item = usize> + '_ {
    let mut k = spans.partition_point(|s| s.1 <= range.start);
    range.filter(move |&j| {
        while spans.get(k).is_some_and(|s| s.1 <= j) {
            k += 1;
        }
        spans.get(k).is_none_or(|s| s.0 > j)
    })
}

/// One band of a channel's halves for detection: its noise and its gates.
struct View {
    /// The 50 ms smoothed powers.
    smoothed: Vec<f32>,
    /// The noise at its quietest; `track` says how far it rises above that, moment by moment.
    noise: NoiseEstimate,
    track: Option<Track>,
    gate: f64,
    strong: f64,
    visible: f64,
    /// The noise's half-to-half spread (dB).
    spread_db: f64,
}

impl View {
    /// The band of the `n` half powers `at(0..n)`.
    fn new(n: usize, at: impl Fn(usize) -> f32 + Copy, p: &Params) -> View {
        // The level from the raw halves (smoothing would blend weak speech into the noise
        // peak); the spread from the smoothed ones, which are what the gates judge.
        let smoothed = moving_average_of(n, SMOOTH_HALVES, at);
        let noise = noise_floor_of(n, at);
        let spread = noise_spread(smoothed.iter().copied());
        let track = Track::of(n, at);
        let noise_db = level_db(noise.power);
        let margin = p.energy_margin_db.max(p.gate_spreads * spread);
        let db = |x: f64| 10f64.powf((noise_db + x) / 10.0);
        View {
            smoothed,
            noise,
            track,
            gate: db(margin),
            strong: db((margin + p.strong_over_gate_db).max(p.strong_least_db)),
            visible: db(p.edge_margin_db.max(p.visible_spreads * spread)),
            spread_db: spread,
        }
    }

    /// Whether the smoothed power at `j` stands above `threshold`, a level relative to the
    /// quietest noise (the noise, a gate), once the noise's rise there is added.
    fn above(&self, j: usize, threshold: f64) -> bool {
        self.smoothed[j] as f64 > threshold * self.gain(j)
    }

    /// The noise floor's rise at `j` over its quietest (a power ratio, 1 in steady noise).
    fn gain(&self, j: usize) -> f64 {
        track::gain(self.track.as_ref(), j)
    }

    /// The noise power at `j`.
    fn noise_at(&self, j: usize) -> f64 {
        self.noise.power * self.gain(j)
    }

    /// The noise's mean rise over `[a, b)`.
    fn gain_over(&self, a: usize, b: usize) -> f64 {
        if self.track.is_none() || b <= a {
            return 1.0;
        }
        (a..b).map(|j| self.gain(j)).sum::<f64>() / (b - a) as f64
    }

    /// `power` at `j` with the noise's rise there taken out.
    fn level_over_floor(&self, j: usize, power: f32) -> f32 {
        (power as f64 / self.gain(j)) as f32
    }

    /// Whether the smoothed power at `j` stands `spreads` of the noise's spread over it.
    fn well_out(&self, j: usize, spreads: f64) -> bool {
        self.above(
            j,
            self.noise.power * 10f64.powf(spreads * self.spread_db / 10.0),
        )
    }
}

/// Mean power over the segments, if they hold any halves.
pub fn mean_power(powers: &[f32], segments: &Segments) -> Option<f64> {
    mean_over(|j| powers[j] as f64, segments)
}

/// Mean of `at` over the segments, if they hold any halves.
fn mean_over(at: impl Fn(usize) -> f64, segments: &Segments) -> Option<f64> {
    let (sum, n) = segments.iter().fold((0.0, 0usize), |(s, n), &(a, b)| {
        (s + (a..b).map(&at).sum::<f64>(), n + b - a)
    });
    (n > 0).then(|| sum / n as f64)
}

/// Mean of `excess` (power less the noise) over the segments: the active speech power.
fn active_power(excess: impl Fn(usize) -> f64, segments: &Segments) -> Option<f64> {
    mean_over(excess, segments).map(|p| p.max(FLOOR_POWER))
}

/// Pass 4: drops the phrases P.56 would not count, more than its margin under the channel's
/// active level (in the full band), unless they stand out of their noise by the strong gate in
/// the full or speech band: such a phrase is a swell of the noise that the VAD and the gates
/// took for speech, and judged against its own level, as edges are, it would only grow. A
/// quiet talker well clear of the noise is kept.
fn drop_faint_phrases(segments: Segments, bands: &Bands, p: &Params) -> Segments {
    let views: [(&View, &dyn Fn(usize) -> f64); 2] = [
        (&bands.full, &|j| bands.ac(j)),
        (&bands.emph, &|j| bands.band(j)),
    ];
    let excess = |v: usize, segs: &Segments| {
        let (view, at) = views[v];
        active_power(|j| at(j) - view.noise_at(j), segs)
    };
    let Some(call) = excess(0, &p56_activity(&segments, p.hangover, bands.len())) else {
        return segments;
    };
    let mut kept = Segments::with_capacity(segments.len());
    for (a, b) in phrases(&segments, p.phrase_gap) {
        let own: Segments = segments[a..b].to_vec();
        let faint = excess(0, &own).is_none_or(|level| level < call * p.margin);
        let stands_out = || {
            (0..views.len()).any(|v| {
                let view = views[v].0;
                let (s, e) = (own[0].0, own[own.len() - 1].1);
                excess(v, &own).is_some_and(|level| {
                    level >= (view.strong - view.noise.power) * view.gain_over(s, e)
                })
            })
        };
        if !faint || stands_out() {
            kept.extend(own);
        }
    }
    kept
}

/// Coarse segments grouped into phrases, as index ranges `[a, b)` into `segments`.
fn phrases(segments: &Segments, gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, w) in segments.iter().enumerate() {
        match out.last_mut() {
            Some(last) if w.0 < segments[last.1 - 1].1 + gap => last.1 = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

impl Bands<'_> {
    /// Whether ends follow the voicing band: where it sees speech better than the full band,
    /// its share of the speech's power (in the confident segments) over its share of the
    /// noise's. In white noise that is about 5 (a tenth of the noise, half of a voice); in
    /// pink noise or rumble it is near 1, and the band, with a tenth of the full band's degrees
    /// of freedom, would only add noise to the edges.
    fn voicing_follows(&self, confident: &Segments, p: &Params) -> bool {
        let excess = |at: &dyn Fn(usize) -> f64, noise: f64| {
            mean_over(at, confident).map_or(0.0, |m| (m - noise).max(0.0))
        };
        let speech_share = excess(&|j| self.low(j), self.voicing.noise.power)
            / excess(&|j| self.ac(j), self.full.noise.power).max(FLOOR_POWER);
        let noise_share = self.voicing.noise.power / self.full.noise.power;
        speech_share >= p.voicing_advantage * noise_share
    }
}

/// Pass 5: moves segment edges to where the speech itself (noise removed) is within P.56's
/// margin of the active speech level, as far as it can be seen above the noise, and adds the
/// active runs next to speech. So the edges do not move with the noise: a decay is followed
/// as deep as the speech is still active, not as deep as the noise happens to allow. Judged on
/// the full band without its sub-voice wander (`ac`), so slow noise swells are not taken for
/// speech. Onsets are abrupt (a burst, a vowel's rise): the full and speech bands see them.
/// Ends decay, and may resume after a closure, so they also follow the voicing band and look
/// past a closure.
struct Edges<'a> {
    bands: &'a Bands<'a>,
    p: &'a Params,
    /// The voicing band, where it sees speech better than the full band.
    voicing: Option<&'a View>,
}

impl<'a> Edges<'a> {
    fn new(bands: &'a Bands<'a>, p: &'a Params, voicing_follows: bool) -> Edges<'a> {
        Edges {
            bands,
            p,
            voicing: voicing_follows.then_some(&bands.voicing),
        }
    }

    /// The active level comes first from the confident segments, then once more from the
    /// refined ones (in noise the confident ones hold only the loud parts). Each phrase's edges
    /// are judged against its own level: a quieter last phrase still decays to 15.9 dB under
    /// its own level, not under the call's.
    fn apply(&self, coarse: &Segments) -> Segments {
        let (n, p, full) = (self.bands.len(), self.p, &self.bands.full);
        let mut refined = coarse.clone();
        let phrases = phrases(coarse, p.phrase_gap);
        let excess = |j: usize| self.bands.ac(j) - full.noise_at(j);
        for _ in 0..2 {
            let activity = p56_activity(&refined, p.hangover, n);
            let Some(active) = active_power(excess, &activity) else {
                break;
            };
            let local: Vec<f64> = phrases
                .iter()
                .map(|&(a, b)| {
                    let within: Segments = activity
                        .iter()
                        .map(|&(s, e)| (s.max(coarse[a].0), e.min(coarse[b - 1].1 + p.hangover)))
                        .filter(|&(s, e)| e > s)
                        .collect();
                    active_power(excess, &within).unwrap_or(active) * p.margin
                })
                .zip(phrases.iter())
                .flat_map(|(level, &(a, b))| std::iter::repeat_n(level, b - a))
                .collect();
            refined = self.refine(coarse, &local, active * p.margin);
        }
        refined
    }

    /// `local[i]` is the strength threshold for coarse segment `i` (P.56's margin under its
    /// phrase's active level); `relative`, the call's, judges runs away from any segment.
    fn refine(&self, coarse: &Segments, local: &[f64], relative: f64) -> Segments {
        let n = self.bands.len();
        let mut segments = coarse.clone();
        let mut previous_end = 0;
        for i in 0..segments.len() {
            let next_start = segments.get(i + 1).map_or(n, |s| s.0);
            let rel = local[i];
            let (s, e) = self.trim(segments[i], rel);
            if s == e {
                segments[i] = (s, e);
                continue;
            }
            let s = self.grow_start(s, previous_end, rel);
            let e = self.grow_end(s, e, next_start, rel);
            segments[i] = (s, e);
            previous_end = e.max(previous_end);
        }
        segments.retain(|&(s, e)| e > s);
        self.join_solid_runs(&segments, relative)
    }

    /// The speech at `j` (noise removed) is within the margin `relative` of its level.
    fn strong_enough(&self, j: usize, relative: f64) -> bool {
        self.bands.ac(j) - self.bands.full.noise_at(j) >= relative
    }

    /// Next to speech, seeing it in either band is enough.
    fn seen(&self, j: usize) -> bool {
        let (full, emph) = (&self.bands.full, &self.bands.emph);
        (full.above(j, full.visible) && self.bands.speech_band_agrees(j))
            || emph.above(j, emph.visible)
    }

    fn active(&self, j: usize, relative: f64) -> bool {
        self.seen(j) && self.strong_enough(j, relative)
    }

    /// A run on its own must show in both bands (slow noise swells show in one band only).
    fn solid(&self, j: usize, relative: f64) -> bool {
        let (full, emph) = (&self.bands.full, &self.bands.emph);
        self.strong_enough(j, relative)
            && full.above(j, full.visible)
            && emph.above(j, emph.visible)
    }

    /// Trims what the detector started on but is not active, and an island at the end: a run
    /// shorter than a word's evidence, cut off from the rest by 50 ms or more of nothing
    /// (noise the detector bridged onto the speech; a real burst there comes back in
    /// `grow_end`, where it must stand well out).
    fn trim(&self, (mut s, mut e): (usize, usize), rel: f64) -> (usize, usize) {
        while s < e && !self.active(s, rel) {
            s += 1;
        }
        while e > s && !self.active(e - 1, rel) {
            e -= 1;
        }
        loop {
            let mut r = e;
            while r > s && self.active(r - 1, rel) {
                r -= 1;
            }
            let mut g = r;
            while g > s && !self.active(g - 1, rel) {
                g -= 1;
            }
            if e - r >= self.p.min_run || g == s || r - g < self.p.island_gap {
                break;
            }
            e = g;
        }
        (s, e)
    }

    /// A weak tail: the 100 ms `[a, b)` beyond an edge, taken together, still holds speech: in
    /// `view`, whose powers are `at`, its mean stands over the noise by the strength test and
    /// over `visible` (both with the noise's rise there).
    fn holds_tail(
        view: &View,
        at: &dyn Fn(usize) -> f64,
        visible: f64,
        (a, b): (usize, usize),
        relative: f64,
    ) -> bool {
        if b <= a {
            return false;
        }
        let m = (a..b).map(at).sum::<f64>() / (b - a) as f64;
        let rise = view.gain_over(a, b);
        m - view.noise.power * rise >= relative && m > visible * rise
    }

    /// A weak tail in the full band.
    fn tail(&self, span: (usize, usize), rel: f64) -> bool {
        let b = self.bands;
        Self::holds_tail(&b.full, &|j| b.ac(j), b.tail_visible, span, rel)
    }

    /// A voiced decay, in the voicing band: it stands out of that band's noise, and the band's
    /// excess alone (never more than the speech's own power) passes the strength test; or the
    /// 100 ms beyond the edge does, taken together.
    fn voiced(&self, j: usize, span: (usize, usize), rel: f64) -> bool {
        let b = self.bands;
        self.voicing.is_some_and(|v| {
            (v.above(j, v.visible) && b.low(j) - v.noise_at(j) >= rel)
                || Self::holds_tail(v, &|j| b.low(j), b.low_tail_visible, span, rel)
        })
    }

    fn grow_start(&self, mut s: usize, previous_end: usize, rel: f64) -> usize {
        let w = self.p.tail_window;
        while s > previous_end
            && (self.active(s - 1, rel)
                || self.tail((s.saturating_sub(w).max(previous_end), s), rel))
        {
            s -= 1;
        }
        s
    }

    /// Grows an end while it is active or holds a weak or voiced tail, on across a stop
    /// closure, and on down the decay the noise hides.
    fn grow_end(&self, s: usize, mut e: usize, next_start: usize, rel: f64) -> usize {
        let w = self.p.tail_window;
        loop {
            while e < next_start && {
                let ahead = (e, (e + w).min(next_start));
                self.active(e, rel) || self.tail(ahead, rel) || self.voiced(e, ahead, rel)
            } {
                e += 1;
            }
            // Judged on halves whose 50 ms window lies wholly past the edge.
            let ahead = (e + SMOOTH_HALVES)..(e + self.p.bridge).min(next_start);
            match ahead.into_iter().find(|&j| self.after_closure(j, rel)) {
                Some(j) => e = j + 1,
                None => break,
            }
        }
        e + self
            .unseen_decay(s, e, rel)
            .min(next_start.saturating_sub(e))
    }

    /// A burst may last a single half, which the 50 ms mean dilutes five-fold: the half on its
    /// own counts when it stands as far out of the half-to-half spread of the noise in the full
    /// and the speech band, or so far out of the full band's noise that no noise reaches it (a
    /// low release or lip sound, which pre-emphasis takes out), and passes the strength test.
    fn burst(&self, j: usize, rel: f64) -> bool {
        let (b, p) = (self.bands, self.p);
        let spreads_out = |view: &View, power: f64| {
            power > view.noise_at(j) * 10f64.powf(p.closure_spreads * view.noise.spread_db / 10.0)
        };
        let full = b.ac(j);
        let excess = full - b.full.noise_at(j);
        excess >= rel
            && spreads_out(&b.full, full)
            && (spreads_out(&b.emph, b.band(j)) || excess >= b.full.noise_at(j) * p.lone_burst)
    }

    /// A sound after a stop closure (a last syllable, burst or fricative): it stands well out
    /// of the noise in two bands, or in the pre-emphasised one alone, and its excess, taken
    /// back by the band's peak gain so it never over-states the speech, passes the strength
    /// test. The full band alone is not enough: pink noise and rumble swell in it far past what
    /// its quiet side shows.
    fn after_closure(&self, j: usize, rel: f64) -> bool {
        let (b, k) = (self.bands, self.p.closure_spreads);
        let emph_gain = (1.0 + PRE_EMPHASIS as f64).powi(2);
        let full = b.full.smoothed[j] as f64;
        let emph = b.emph.smoothed[j] as f64;
        self.burst(j, rel)
            || (b.full.well_out(j, k)
                && full - b.full.noise_at(j) >= rel
                && self.voicing.is_some_and(|v| v.well_out(j, k)))
            || (b.emph.well_out(j, k) && (emph - b.emph.noise_at(j)) / emph_gain >= rel)
    }

    /// Halves of decay past `e` that the noise hides: where the full band's visibility, not the
    /// strength test, ended the segment, the speech was still `depth` dB over P.56's margin when
    /// it sank under the noise; at the rate it was decaying over its last 100 ms it reaches the
    /// margin that many halves later.
    fn unseen_decay(&self, s: usize, e: usize, relative: f64) -> usize {
        let (full, p) = (&self.bands.full, self.p);
        let d = p.decay_halves;
        let seen = (full.visible - full.noise.power) * full.gain(e.saturating_sub(1));
        if seen <= relative || e < s + 2 * d {
            return 0;
        }
        let depth = level_db(seen) - level_db(relative);
        let excess = |a: usize, b: usize| {
            (a..b)
                .map(|j| self.bands.ac(j) - full.noise_at(j))
                .sum::<f64>()
                / (b - a) as f64
        };
        let (earlier, later) = (excess(e - 2 * d, e - d), excess(e - d, e));
        if later <= 0.0 || earlier <= later {
            return 0;
        }
        let slope = ((level_db(earlier) - level_db(later)) / d as f64)
            .clamp(p.decay_slopes_db.0, p.decay_slopes_db.1);
        ((depth / slope).round() as usize).min(p.max_unseen)
    }

    /// Solid runs the detector did not start on (a weak word the VAD missed in noise) belong
    /// to speech when they are long enough not to be a noise burst and lie within the bridging
    /// gap of speech.
    fn join_solid_runs(&self, segments: &Segments, relative: f64) -> Segments {
        let (n, p) = (self.bands.len(), self.p);
        let mut runs: Vec<(usize, usize, bool)> =
            segments.iter().map(|&(s, e)| (s, e, true)).collect();
        let mut j = 0;
        while j < n {
            if !self.solid(j, relative) {
                j += 1;
                continue;
            }
            let start = j;
            while j < n && self.solid(j, relative) {
                j += 1;
            }
            if j - start >= p.min_run {
                runs.push((start, j, false));
            }
        }
        runs.sort_unstable();
        let mut last_end: Option<usize> = None;
        for r in runs.iter_mut() {
            if !r.2 && last_end.is_some_and(|e| r.0 <= e + p.bridge) {
                r.2 = true;
            }
            if r.2 {
                last_end = Some(last_end.map_or(r.1, |e| e.max(r.1)));
            }
        }
        let mut next_start: Option<usize> = None;
        for r in runs.iter_mut().rev() {
            if !r.2 && next_start.is_some_and(|s| r.1 + p.bridge >= s) {
                r.2 = true;
            }
            if r.2 {
                next_start = Some(next_start.map_or(r.0, |s| s.min(r.0)));
            }
        }
        let kept: Segments = runs.iter().filter(|r| r.2).map(|r| (r.0, r.1)).collect();
        bridge(&kept, 0)
    }
}

/// The stretches over which active speech power is measured, in the manner of P.56: the speech
/// segments, each followed by the hangover (a talker's decays belong to their speech level).
pub fn p56_activity(segments: &Segments, hangover: usize, len: usize) -> Segments {
    let extended: Segments = segments
        .iter()
        .map(|&(s, e)| (s, (e + hangover).min(len)))
        .collect();
    bridge(&extended, 0)
}

/// Joins segments separated by fewer than `gap` halves.
pub fn bridge(segments: &[(usize, usize)], gap: usize) -> Segments {
    let mut out: Segments = Vec::with_capacity(segments.len());
    for &(s, e) in segments {
        match out.last_mut() {
            Some(last) if s <= last.1 + gap => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The union of several channels' segments, as one sorted list.
pub fn union(all: &[&Segments]) -> Segments {
    let mut merged: Segments = all.iter().flat_map(|s| s.iter().copied()).collect();
    merged.sort_unstable();
    bridge(&merged, 0)
}

/// The parts of `a` outside `b` (both sorted, their spans apart): music or an echo cut out of
/// speech.
pub fn minus(a: &Segments, b: &Segments) -> Segments {
    let mut out = Vec::new();
    let mut k = 0;
    for &(s, e) in a {
        while b.get(k).is_some_and(|r| r.1 <= s) {
            k += 1;
        }
        let mut from = s;
        for r in b[k.min(b.len())..].iter().take_while(|r| r.0 < e) {
            if r.0 > from {
                out.push((from, r.0));
            }
            from = from.max(r.1);
        }
        if from < e {
            out.push((from, e));
        }
    }
    out
}

/// The time covered by at least two of the channels at once, as segments.
pub fn overlaps(all: &[&Segments]) -> Segments {
    let mut edges: Vec<(usize, i32)> = Vec::new();
    for segs in all {
        for &(s, e) in segs.iter() {
            edges.push((s, 1));
            edges.push((e, -1));
        }
    }
    edges.sort_unstable();
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (t, d) in edges {
        let before = depth;
        depth += d;
        if before < 2 && depth >= 2 {
            start = t;
        } else if before >= 2 && depth < 2 && t > start {
            out.push((start, t));
        }
    }
    bridge(&out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_leaves_what_the_second_does_not_cover() {
        let a = vec![(0, 10), (20, 30), (40, 50)];
        assert_eq!(minus(&a, &vec![]), a);
        assert_eq!(minus(&a, &a), vec![]);
        assert_eq!(
            minus(&a, &vec![(2, 4), (8, 22), (25, 26), (45, 60)]),
            vec![(0, 2), (4, 8), (22, 25), (26, 30), (40, 45)]
        );
        assert_eq!(minus(&vec![(5, 6)], &vec![(0, 1), (7, 9)]), vec![(5, 6)]);
        // Music cut out of speech.
        let segs = vec![(0, 10), (20, 40), (50, 60)];
        assert_eq!(
            minus(&segs, &vec![(5, 25), (30, 35)]),
            vec![(0, 5), (25, 30), (35, 40), (50, 60)]
        );
        assert_eq!(minus(&segs, &vec![(0, 100)]), vec![]);
    }

    fn check_bridge(input: &[(usize, usize)], gap: usize, expected: &[(usize, usize)]) {
        assert_eq!(bridge(input, gap), expected, "bridge {input:?} gap {gap}");
    }

    #[test]
    fn overlap_and_union() {
        let a = vec![(0, 10), (20, 30)];
        let b = vec![(5, 22), (40, 45)];
        assert_eq!(overlaps(&[&a, &b]), vec![(5, 10), (20, 22)]);
        assert_eq!(union(&[&a, &b]), vec![(0, 30), (40, 45)]);
    }

    #[test]
    fn bridging() {
        check_bridge(&[(0, 5), (7, 9)], 2, &[(0, 9)]);
        check_bridge(&[(0, 5), (8, 9)], 2, &[(0, 5), (8, 9)]);
        check_bridge(&[(0, 5), (3, 4)], 0, &[(0, 5)]);
        check_bridge(&[], 3, &[]);
    }

    /// 600 ms of steady speech, then a decay of 1 dB per 10 ms, in steady noise `snr_db` under
    /// the speech; the end found, in halves after the decay's start.
    fn end_of_decay(snr_db: f64) -> usize {
        let cfg = VadConfig::default();
        let speech = 1e-2f64;
        let noise = speech * 10f64.powf(-snr_db / 10.0);
        let mut state = 99u64;
        let powers: Vec<f32> = (0..600)
            .map(|j| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let wobble = 1.0 + 0.3 * (((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5);
                let s = match j {
                    200..=259 => speech,
                    260..=319 => speech * 10f64.powf(-((j - 259) as f64) / 10.0),
                    _ => 0.0,
                };
                (s + noise * wobble) as f32
            })
            .collect();
        let halves: Vec<Half> = powers.iter().map(|&p| Half::new(p, p, p, p)).collect();
        let vad = vec![true; 300];
        let seg = segment(&halves, &vad, 0.01, &cfg, &Default::default());
        seg.segments.last().expect("speech").1 - 260
    }

    #[test]
    fn an_end_carries_on_down_the_decay_the_noise_hides() {
        // The active level is about the steady part's (the decay adds a little), so the margin,
        // 15.9 dB under it, is reached about 16 halves into the decay.
        let clear = end_of_decay(30.0);
        assert!((13..=18).contains(&clear), "30 dB: {clear}");
        // At 5 dB the decay sinks under the noise about 5 dB early; the end follows it there
        // and on by the unseen part of the decay, so it lands near the same place.
        let noisy = end_of_decay(5.0);
        assert!(
            noisy + 3 >= clear && noisy <= clear + 3,
            "5 dB: {noisy}, 30 dB: {clear}"
        );
    }

    /// Speech at `speech` power over halves 100..200 in noise of about 1e-6, then 100 ms of
    /// noise and one half whose full band (not its speech band) holds `burst` more.
    fn segments_with_low_burst(speech: f32, burst: f32) -> Segments {
        let noise = |j: usize| 1e-6 * 10f32.powf(((j * 7919) % 21) as f32 / 100.0 - 0.1);
        let halves: Vec<Half> = (0..400)
            .map(|j| {
                let n = noise(j);
                match j {
                    100..200 => Half::new(n + speech, n + speech, n + speech, n + speech),
                    210 => Half::new(n + burst, n, n + burst, n),
                    _ => Half::new(n, n, n, n),
                }
            })
            .collect();
        let vad: Vec<bool> = (0..200).map(|v| (50..100).contains(&v)).collect();
        segment(
            &halves,
            &vad,
            0.01,
            &VadConfig::default(),
            &Default::default(),
        )
        .segments
    }

    #[test]
    fn a_low_burst_after_a_closure_ends_the_speech_when_no_noise_reaches_it() {
        // 27 dB over the noise and 7 dB over P.56's margin: the end is carried to it.
        assert_eq!(segments_with_low_burst(1e-2, 5e-4), vec![(100, 211)]);
        // 20 dB speech, a burst 8 dB over the noise: strong enough, but noise could be that.
        assert_eq!(segments_with_low_burst(1e-4, 6e-6), vec![(100, 200)]);
    }

    #[test]
    fn a_click_is_not_speech_and_speech_is() {
        let cfg = VadConfig::default();
        let mut powers = vec![1e-6f32; 400];
        powers[50] = 1e-1; // one 10 ms click
        for p in &mut powers[200..260] {
            *p = 1e-2; // 600 ms of speech
        }
        let halves: Vec<Half> = powers.iter().map(|&p| Half::new(p, p, p, p)).collect();
        let vad = vec![true; 200];
        let seg = segment(&halves, &vad, 0.01, &cfg, &Default::default());
        assert_eq!(seg.segments, vec![(200, 260)]);
    }
}
