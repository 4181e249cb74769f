//! One leg's voice coming back in another: an echo path (a phone or gateway without a good
//! echo canceller sends back what it plays, tens of dB down and tens to hundreds of ms late).
//!
//! An echo path is one filter: a delayed copy of its source, a fixed loss down, half after half.
//! Another talker is not: whatever they say after the source, their level does not follow the
//! source's at one delay and one loss. So, over the source's strong speech (where an echo would
//! stand out of the other leg's noise), the search counts, at each delay up to
//! [`MAX_DELAY_S`], the share of those halves where the other leg's level lies within
//! [`CONSISTENT_DB`] of one loss under the source's. An echo holds its loss on a large share of
//! them at its delay; chance, on few at any delay. The delay with the largest share is the
//! echo's, and the loss there its echo return loss (ERL).
//!
//! Two legs of nearly the same level at the delay are not echo but one voice mixed into both
//! (`legs::identical`): an echo path loses at least [`MIN_LOSS_DB`] (ITU-T G.168's least
//! hybrid loss), so nothing closer is reported.
//!
//! An echo is not its channel's talker: [`own_speech`] takes the stretches of a channel's
//! speech that its echo explains out of that channel's talk, so the echo does not count as the
//! other side talking, nor as overtalk.

use super::noise::{fast_level_db, NoiseEstimate};
use super::segments::Segments;

/// The longest echo delay looked for: a round trip through two jitter buffers and a
/// long-distance network.
pub const MAX_DELAY_S: f64 = 0.5;
/// The least loss an echo path has (G.168 assumes a hybrid returns at most -6 dB).
pub const MIN_LOSS_DB: f64 = 6.0;
/// An echo's level follows its source's within this many dB, half after half...
pub const CONSISTENT_DB: f64 = 4.0;
/// ...over at least this share of the source's strong halves. Where an echo stands over the
/// other leg's noise it holds its loss on most of them (60-90% at 20-30 dB of loss); where it
/// is half masked, on 40-60%. Another talker's speech, by chance at the best delay, on under a
/// quarter.
pub const MIN_CONSISTENT_SHARE: f64 = 0.4;
/// The least number of the source's strong halves whose echo would be heard (0.5 s).
pub const MIN_AUDIBLE: usize = 50;
/// The least number of the source's strong halves (1 s of speech) the estimate is made on.
pub const MIN_STRONG: usize = 100;
/// The most halves the estimate looks at, spread evenly over a long call.
const MAX_STRONG: usize = 50_000;
/// The source's strong speech: its halves within this many dB of its loud end (the 95th
/// percentile of its speech halves).
const STRONG_RANGE_DB: f64 = 20.0;
/// A half is heard over a leg's noise at this much above its mean power, at least.
const HEARD_DB: f64 = 3.0;
/// How far an echo path smears a 10 ms half: one half early (the halves' phase) to four late
/// (the echo's reverberant tail).
const SMEAR_EARLY: usize = 1;
const SMEAR_LATE: usize = 4;
/// The loss histogram's bins: 0.5 dB from -20 to +100 dB.
const BIN_DB: f64 = 0.5;
const BINS_FROM_DB: f64 = -20.0;
const BINS: usize = 240;

/// One leg's echo found in another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    /// The channel whose voice comes back.
    pub source: usize,
    /// The channel it comes back in.
    pub channel: usize,
    /// In halves.
    pub delay: usize,
    /// The echo's level under the source's, in dB (positive): its echo return loss.
    pub loss_db: f64,
    /// The loss against the source's smeared level (what the search measures), in dB: what
    /// predicts the echo's level half by half.
    pub path_loss_db: f64,
}

/// One channel as the echo search sees it: its per-half power, its noise and its speech.
pub struct Leg<'a, P: Fn(usize) -> f32> {
    pub power: P,
    pub noise: NoiseEstimate,
    pub segments: &'a Segments,
}

impl<P: Fn(usize) -> f32> Leg<'_, P> {
    fn level(&self, j: usize) -> f64 {
        fast_level_db((self.power)(j))
    }

    /// The level a half must pass to be heard over the leg's noise.
    fn heard_db(&self) -> f64 {
        heard_over(&self.noise)
    }

    /// The source's level reaching half `j + delay` of another leg through a path `delay`
    /// halves long: the loudest of its halves `j - SMEAR_LATE ..= j + SMEAR_EARLY`.
    fn smeared(&self, j: usize, n: usize) -> f64 {
        self.smeared_where(j, n, |_| true)
    }

    /// `smeared` over the halves `keep` accepts.
    fn smeared_where(&self, j: usize, n: usize, keep: impl Fn(usize) -> bool) -> f64 {
        smeared_of(&self.power, j, n, keep)
    }
}

/// The level a half must pass to be heard over `noise`: past its limit, and [`HEARD_DB`] over its
/// mean power.
fn heard_over(noise: &NoiseEstimate) -> f64 {
    noise
        .limit_db
        .max(fast_level_db(noise.power as f32) + HEARD_DB)
}

/// The loudest of `at`'s halves `j - SMEAR_LATE ..= j + SMEAR_EARLY` that `keep` accepts, in dB.
fn smeared_of(at: &impl Fn(usize) -> f32, j: usize, n: usize, keep: impl Fn(usize) -> bool) -> f64 {
    let lo = j.saturating_sub(SMEAR_LATE);
    let hi = (j + SMEAR_EARLY).min(n - 1);
    let loudest = (lo..=hi)
        .filter(|&i| keep(i))
        .map(at)
        .fold(0.0f32, f32::max);
    fast_level_db(loudest)
}

/// Another view of both legs' halves than their power (a band of it): a voice differs from an
/// echo in spectrum as well as in level, so where it stands under the echo's level it may still
/// stand out of it in a band (a fricative over a vowel's echo, a low voice over a hiss).
pub struct View<'a> {
    pub source: &'a dyn Fn(usize) -> f32,
    pub channel: &'a dyn Fn(usize) -> f32,
}

/// The echo as one view sees it: its path's loss there and the channel's noise there.
struct ViewedEcho<'a> {
    view: &'a View<'a>,
    path_loss_db: f64,
    heard_db: f64,
}

impl<'a> ViewedEcho<'a> {
    /// The echo's path as `view` sees it: the median loss, in that view, over the source's
    /// speech halves whose echo the power view holds (heard, and within [`CONSISTENT_DB`] of
    /// its prediction); none when fewer than [`MIN_AUDIBLE`] hold it.
    fn measure<P: Fn(usize) -> f32>(
        view: &'a View<'a>,
        source: &Leg<P>,
        channel: &Leg<P>,
        echo: &Echo,
        n: usize,
    ) -> Option<ViewedEcho<'a>> {
        let heard = channel.heard_db();
        let mut losses: Vec<f64> = source
            .segments
            .iter()
            .flat_map(|&(s, e)| s..e.min(n.saturating_sub(echo.delay)))
            .filter(|&j| {
                let predicted = source.smeared(j, n) - echo.path_loss_db;
                predicted > heard
                    && (channel.level(j + echo.delay) - predicted).abs() <= CONSISTENT_DB
            })
            .map(|j| {
                smeared_of(&view.source, j, n, |_| true)
                    - fast_level_db((view.channel)(j + echo.delay))
            })
            .collect();
        if losses.len() < MIN_AUDIBLE {
            return None;
        }
        let mid = losses.len() / 2;
        let (_, &mut path_loss_db, _) = losses.select_nth_unstable_by(mid, f64::total_cmp);
        Some(ViewedEcho {
            view,
            path_loss_db,
            heard_db: heard_over(&super::noise::noise_floor_of(n, view.channel)),
        })
    }

    /// Whether the channel's half `k` stands out of the echo in this view.
    fn stands_out(&self, k: usize, delay: usize, n: usize) -> bool {
        let echo = k.checked_sub(delay).map_or(f64::NEG_INFINITY, |j| {
            smeared_of(&self.view.source, j, n, |_| true) - self.path_loss_db
        });
        fast_level_db((self.view.channel)(k)) > self.heard_db.max(echo + CONSISTENT_DB)
    }
}

/// Every leg's echo in every other. `n` is the number of halves every leg has.
pub fn echoes<P: Fn(usize) -> f32>(legs: &[Leg<P>], n: usize, half_s: f64) -> Vec<Echo> {
    let mut out = Vec::new();
    for source in 0..legs.len() {
        for channel in 0..legs.len() {
            if source != channel {
                if let Some(e) = find(&legs[source], &legs[channel], n, half_s) {
                    out.push(Echo {
                        source,
                        channel,
                        ..e
                    });
                }
            }
        }
    }
    out
}

/// The echo of `source` in `channel`, if there is one (`source` and `channel` are left for the
/// caller to fill in).
fn find<P: Fn(usize) -> f32>(
    source: &Leg<P>,
    channel: &Leg<P>,
    n: usize,
    half_s: f64,
) -> Option<Echo> {
    let max_delay = (MAX_DELAY_S / half_s).round() as usize;
    if n <= max_delay + SMEAR_LATE {
        return None;
    }
    let last = n - max_delay - 1;
    // The source's speech halves, every `step`-th, where it dominates (not the channel's own
    // talk, nor the channel's echo in the source), and their loud end.
    let inside: usize = source
        .segments
        .iter()
        .map(|&(s, e)| e.min(last + 1).saturating_sub(s))
        .sum();
    if inside < MIN_STRONG {
        return None;
    }
    let step = inside.div_ceil(MAX_STRONG).max(1);
    let mut levels: Vec<(usize, f64)> = source
        .segments
        .iter()
        .flat_map(|&(s, e)| s..e.min(last + 1))
        .step_by(step)
        .map(|j| (j, source.level(j)))
        .filter(|&(j, a)| a > channel.level(j) + MIN_LOSS_DB)
        .collect();
    if levels.len() < MIN_STRONG {
        return None;
    }
    let mut sorted: Vec<f64> = levels.iter().map(|l| l.1).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let loud = sorted[(sorted.len() - 1) * 95 / 100];
    levels.retain(|l| l.1 >= loud - STRONG_RANGE_DB);
    if levels.len() < MIN_STRONG {
        return None;
    }
    // The source's level as it reaches each delay (the same smear whatever the delay).
    let reaching: Vec<(usize, f64)> = levels
        .iter()
        .map(|&(j, _)| (j, source.smeared(j, n)))
        .collect();
    let heard = channel.heard_db();
    let width = (CONSISTENT_DB / BIN_DB).round() as usize;
    let mut histogram = [0u32; BINS];
    // At each delay, the loss held on the most halves and on how many.
    let mut best = Vec::with_capacity(max_delay + 1);
    for d in 0..=max_delay {
        histogram.fill(0);
        for &(j, a) in &reaching {
            let b = channel.level(j + d);
            if b > heard {
                let bin = ((a - b - BINS_FROM_DB) / BIN_DB).floor();
                if (0.0..BINS as f64).contains(&bin) {
                    histogram[bin as usize] += 1;
                }
            }
        }
        best.push(densest(&histogram, width));
    }
    let (delay, &(center, _)) = best
        .iter()
        .enumerate()
        .max_by_key(|(_, &(_, count))| count)?;
    let loss_db = BINS_FROM_DB + (center as f64 + 0.5) * BIN_DB;
    // Of the halves whose echo would be heard at that loss, the share that hold it.
    let audible: Vec<f64> = reaching
        .iter()
        .filter(|&&(_, a)| a - loss_db > heard)
        .map(|&(j, a)| a - channel.level(j + delay))
        .collect();
    let held = audible
        .iter()
        .filter(|diff| (*diff - loss_db).abs() <= CONSISTENT_DB)
        .count();
    let share = held as f64 / audible.len().max(1) as f64;
    if audible.len() < MIN_AUDIBLE || share < MIN_CONSISTENT_SHARE || loss_db < MIN_LOSS_DB {
        return None;
    }
    // The echo return loss (G.168: source power over echo power) over the halves that hold
    // the echo's loss; `loss_db` above is against the smeared source, its loudest nearby half.
    let (mut source_power, mut echo_power) = (0.0f64, 0.0f64);
    for &(j, a) in &reaching {
        if a - loss_db > heard && (a - channel.level(j + delay) - loss_db).abs() <= CONSISTENT_DB {
            source_power += f64::from((source.power)(j));
            echo_power += f64::from((channel.power)(j + delay));
        }
    }
    let erl_db = 10.0 * (source_power / echo_power.max(1e-30)).log10();
    if erl_db < MIN_LOSS_DB {
        return None;
    }
    Some(Echo {
        source: 0,
        channel: 0,
        delay,
        loss_db: erl_db,
        path_loss_db: loss_db,
    })
}

/// `channel`'s own speech: its segments without the stretches that are `echo` (of `source`)
/// and nothing more.
///
/// A half is the echo's when the echo would be heard there (the source's smeared level one
/// path loss down stands over the channel's noise) and the channel's level lies no more than
/// [`CONSISTENT_DB`] over it: the test that found the path. A half is the channel's own
/// voice when it stands over both its noise and [`CONSISTENT_DB`] over the echo: a talker
/// speaks about as loud as the source, and the path loses at least [`MIN_LOSS_DB`]. It may
/// stand out in its power or in any of `views` (bands of it): under a strong echo (8-10 dB of
/// loss) a voice's softer halves sit at the echo's level, yet a fricative over the echo of a
/// vowel stands out in the pre-emphasised band, a low voice over the echo of a hiss in the
/// voicing band. Each view has its own path loss (the echo path colours the voice) and noise.
/// Each segment keeps the runs of at least `min_run` own halves in a row (an echo's halves
/// rise over their prediction now and then, one at a time, not for a syllable), bridged over
/// gaps shorter than `bridge` and widened over the halves next to them that are not the
/// echo's and stand over the noise (the voice's soft edges). A segment without such a run was
/// the echo.
pub fn own_speech<P: Fn(usize) -> f32>(
    source: &Leg<P>,
    channel: &Leg<P>,
    echo: &Echo,
    n: usize,
    bridge: usize,
    min_run: usize,
    views: &[View],
) -> Segments {
    let heard = channel.heard_db();
    let viewed: Vec<ViewedEcho> = views
        .iter()
        .filter_map(|v| ViewedEcho::measure(v, source, channel, echo, n))
        .collect();
    let echo_level = |k: usize| {
        k.checked_sub(echo.delay)
            .filter(|&j| j < n)
            .map_or(f64::NEG_INFINITY, |j| {
                source.smeared(j, n) - echo.path_loss_db
            })
    };
    let echo_delay = echo.delay;
    let mut out = Segments::new();
    for &(s, e) in channel.segments {
        let (is_echo, own): (Vec<bool>, Vec<bool>) = (s..e)
            .map(|k| {
                let (level, echo) = (channel.level(k), echo_level(k));
                (
                    echo > heard && level <= echo + CONSISTENT_DB,
                    level > heard.max(echo + CONSISTENT_DB)
                        || viewed.iter().any(|v| v.stands_out(k, echo_delay, n)),
                )
            })
            .unzip();
        // A segment the echo is nowhere in is the channel's own, whole.
        if !is_echo.contains(&true) {
            push_joined(&mut out, (s, e));
            continue;
        }
        // Runs of own halves long enough to be a voice, bridged.
        let mut runs: Segments = Vec::new();
        let mut i = 0;
        while i < own.len() {
            let len = own[i..].iter().take_while(|&&o| o).count();
            if len >= min_run {
                match runs.last_mut() {
                    Some(last) if i - last.1 < bridge => last.1 = i + len,
                    _ => runs.push((i, i + len)),
                }
            }
            i += len.max(1);
        }
        // Widened over the halves that are not the echo's and stand over the noise, within the
        // segment: the voice's soft edges. A pause between the echo and the voice, which
        // detection bridged, is the line's noise and neither.
        let widens = |i: usize| !is_echo[i] && channel.level(s + i) > heard;
        for (a, b) in runs {
            let a = a - (0..a).rev().take_while(|&i| widens(i)).count();
            let b = b + (b..is_echo.len()).take_while(|&i| widens(i)).count();
            push_joined(&mut out, (s + a, s + b));
        }
    }
    out
}

/// Appends `span` to the sorted `out`, joined to its last span where they touch or overlap.
fn push_joined(out: &mut Segments, span: (usize, usize)) {
    match out.last_mut() {
        Some(last) if last.1 >= span.0 => last.1 = last.1.max(span.1),
        _ => out.push(span),
    }
}

/// The `2 * width + 1` bins of `histogram` holding the most: their centre bin and count.
fn densest(histogram: &[u32], width: usize) -> (usize, u32) {
    let mut sum: u32 = histogram[..=width.min(histogram.len() - 1)].iter().sum();
    let mut best = (0, sum);
    for c in 1..histogram.len() {
        if let Some(&enter) = histogram.get(c + width) {
            sum += enter;
        }
        if let Some(leave) = c.checked_sub(width + 1) {
            sum -= histogram[leave];
        }
        if sum > best.1 {
            best = (c, sum);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 400;
    const FLOOR_DB: f64 = -70.0;

    fn power(db: f64) -> f64 {
        10f64.powf(db / 10.0)
    }

    fn noise() -> NoiseEstimate {
        NoiseEstimate {
            power: power(FLOOR_DB),
            spread_db: 1.0,
            limit_db: FLOOR_DB + 6.0,
        }
    }

    /// The source talks over `spans` at -20 dB, its syllables 3 dB up and down every 50 ms.
    fn source_db(spans: &Segments) -> Vec<f64> {
        (0..N)
            .map(|j| match spans.iter().any(|&(s, e)| (s..e).contains(&j)) {
                true if (j / 5) % 2 == 0 => -17.0,
                true => -23.0,
                false => FLOOR_DB,
            })
            .collect()
    }

    /// The other leg: the source's echo `DELAY` halves late and `LOSS_DB` down, its own voice
    /// over `own` at -22 dB, and the floor.
    const DELAY: usize = 3;
    const LOSS_DB: f64 = 15.0;
    fn channel_db(source: &[f64], own: &Segments) -> Vec<f64> {
        (0..N)
            .map(|k| {
                let echo = k.checked_sub(DELAY).map_or(0.0, |j| {
                    if source[j] > FLOOR_DB {
                        power(source[j] - LOSS_DB)
                    } else {
                        0.0
                    }
                });
                let voice = if own.iter().any(|&(s, e)| (s..e).contains(&k)) {
                    power(-22.0)
                } else {
                    0.0
                };
                10.0 * (echo + voice + power(FLOOR_DB)).log10()
            })
            .collect()
    }

    /// `own_speech` of the channel whose detected speech is `detected`.
    fn own_of(talk: &Segments, voice: &Segments, detected: &Segments) -> Segments {
        let (s_db, c_db) = {
            let s = source_db(talk);
            let c = channel_db(&s, voice);
            (s, c)
        };
        let sp: Vec<f32> = s_db.iter().map(|&d| power(d) as f32).collect();
        let cp: Vec<f32> = c_db.iter().map(|&d| power(d) as f32).collect();
        let at_source: &dyn Fn(usize) -> f32 = &|j| sp[j];
        let at_channel: &dyn Fn(usize) -> f32 = &|j| cp[j];
        let source = Leg {
            power: at_source,
            noise: noise(),
            segments: talk,
        };
        let channel = Leg {
            power: at_channel,
            noise: noise(),
            segments: detected,
        };
        // The search measures the loss against the smeared source: its loud syllables.
        let echo = Echo {
            source: 0,
            channel: 1,
            delay: DELAY,
            loss_db: LOSS_DB,
            path_loss_db: LOSS_DB,
        };
        own_speech(&source, &channel, &echo, N, 30, 8, &[])
    }

    #[test]
    fn an_echo_alone_is_taken_out_and_a_voice_over_it_is_kept() {
        let talk = vec![(50, 150), (250, 350)];
        // Detection saw the echo as speech, and the voice inside the second stretch of it.
        let detected = vec![(53, 153), (253, 353)];
        assert_eq!(
            own_of(&talk, &vec![(280, 330)], &detected),
            vec![(280, 330)]
        );
        // Two bursts of the voice 100 ms apart are one phrase; the echo around them is not.
        assert_eq!(
            own_of(&talk, &vec![(280, 300), (310, 330)], &detected),
            vec![(280, 330)]
        );
        // A voice where the source is silent keeps the whole of its segment.
        assert_eq!(
            own_of(&talk, &vec![(180, 220)], &vec![(53, 153), (178, 222)]),
            vec![(178, 222)]
        );
        // No voice at all: nothing is left.
        assert_eq!(own_of(&talk, &vec![], &detected), vec![]);
        // A voice 200 ms after the echo's tail, which detection bridged to it: the pause
        // between them (the line's noise) is neither the echo nor the voice.
        assert_eq!(
            own_of(&talk, &vec![(173, 220)], &vec![(53, 222)]),
            vec![(173, 220)]
        );
    }
}
