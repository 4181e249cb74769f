//! The quality score, its MOS and grade, and the flags: a pure judgement of measurements.
//!
//! Formula `score.v2.2`, explained term by term in `docs/scoring.md`: the score starts at 100 and
//! each impairment takes points off, every term continuous and saturating, in the manner of the
//! ITU-T G.107 E-model (whose rating R it mirrors, so its R-to-MOS mapping applies). Thresholds
//! come from the configuration; nothing here reads a clock or a file.

use crate::config::{Config, Thresholds};

use super::model::{DecodeReport, Flag, Grade, Metrics, Penalty, Quality, Severity};

pub const FORMULA: &str = "score.v2.2";

/// SNR at or above which noise costs nothing, and at which the noise term saturates.
const SNR_CLEAN_DB: f64 = 35.0;
const SNR_WORST_DB: f64 = -5.0;
/// v2: fitted to PESQ-NB on the dev half (`scripts/score-v2`): 1.8 times v1's 50.
const NOISE_MAX: f64 = 90.0;
/// Points per dB of speech level outside the [too_quiet, too_loud] band, and the cap.
const LEVEL_PER_DB: f64 = 1.5;
const LEVEL_MAX: f64 = 20.0;
/// Clipping: 18 points per decade of clipped share above 1e-4, at most 55 (v2: 1.8 times v1's
/// 10 and 30, fitted to PESQ-NB).
const CLIP_FROM: f64 = 1e-4;
const CLIP_PER_DECADE: f64 = 18.0;
const CLIP_MAX: f64 = 55.0;
/// G.113's packet-loss robustness of G.711 without concealment.
const BPL_G711: f64 = 4.3;
const LOSS_MAX: f64 = 60.0;
/// Bandwidth: no cost at the muffled threshold, the full cost at 500 Hz.
const BANDWIDTH_FLOOR_HZ: f64 = 500.0;
/// v2: 1.3 times v1's 25, fitted to PESQ-NB.
const BANDWIDTH_MAX: f64 = 33.0;
/// Hum (fitted to PESQ-NB by `scripts/score-v2`, on top of what the noise term already charges
/// for the hum's power in the telephone band): points per dB the speech stands less than
/// `HUM_CLEAN_DB` over the hum, at most `HUM_MAX`; a report without that level pays v1's fixed
/// 5. (v2's 2.8 per dB under 23 dB charged a hum twice: hum calls scored 40 for a PESQ of 3.)
const HUM_PER_DB: f64 = 0.11;
const HUM_CLEAN_DB: f64 = 60.0;
const HUM_MAX: f64 = 50.0;
const HUM_POINTS_V1: f64 = 5.0;
const DEAD_AIR_EACH: f64 = 2.0;
const DEAD_AIR_MAX: f64 = 10.0;
const ONE_SIDED_POINTS: f64 = 30.0;
/// A leg lost mid-call: the recording misses one side from then on. A fixed cost (the recording
/// failed, whatever the length), and the share of the call lost on top, up to the cost of a
/// side missing throughout.
const LEG_LOST_POINTS: f64 = 10.0;
const LEG_LOST_SHARE_POINTS: f64 = 20.0;

/// What the judgement needs besides the whole-recording metrics.
pub struct Context<'a> {
    pub duration_s: f64,
    pub sample_rate: u32,
    pub decode: &'a DecodeReport,
    /// Per-channel (role, talk time) for multi-channel recordings.
    pub sides: &'a [(String, f64)],
    /// Per-channel (role, metrics) for multi-channel recordings: each leg that speaks is judged.
    pub legs: &'a [(String, &'a Metrics)],
    /// Legs that fell dead while another talked on.
    pub lost: &'a [super::model::LostLeg],
    /// One leg's voice coming back in another.
    pub echoes: &'a [super::model::EchoReport],
    /// The number of channels written, when they all carried one signal (analysed as one).
    pub identical_channels: Option<usize>,
}

pub fn assess(m: &Metrics, ctx: &Context<'_>, config: &Config) -> Quality {
    let t = &config.thresholds;
    let mut flags = call_flags(m, ctx, config);
    let mut penalties = Vec::new();
    let mut take = |term: &str, points: f64, channel: Option<&str>| {
        if points > 0.0 {
            penalties.push(Penalty {
                term: term.to_string(),
                points: (points * 10.0).round() / 10.0,
                channel: channel.map(str::to_string),
            });
        }
    };
    let no_speech = m.speech.talk_time_s <= 0.0;
    if no_speech {
        take("no_speech", 100.0, None);
    } else {
        // The sound of the speech: the mix's for one channel; with several, each leg that
        // speaks is judged on its own and the worst one's terms count (a muffled or noisy leg
        // is not hidden by a good one).
        let legs: Vec<(Option<&str>, &Metrics)> = if ctx.legs.is_empty() {
            vec![(None, m)]
        } else {
            ctx.legs
                .iter()
                .filter(|(_, lm)| lm.speech.talk_time_s > 0.0)
                .map(|(role, lm)| (Some(role.as_str()), *lm))
                .collect()
        };
        let mut worst: (f64, Vec<(&'static str, f64)>, Option<&str>) = (0.0, Vec::new(), None);
        for (role, lm) in legs {
            flags.extend(leg_flags(lm, ctx.sample_rate, t).into_iter().map(|mut f| {
                if let Some(role) = role {
                    f.message = format!("{role} leg: {}", f.message);
                    f.channel = Some(role.to_string());
                }
                f
            }));
            let terms = leg_terms(lm, ctx.sample_rate, t);
            let total: f64 = terms.iter().map(|x| x.1).sum();
            if total > worst.0 {
                worst = (total, terms, role);
            }
        }
        let (_, terms, role) = worst;
        for (term, points) in terms {
            take(term, points, role);
        }
        flags.extend(conversation_flags(m, ctx, config));
        // The codec the call crossed before it was recorded, which the sound does not show.
        take(
            "codec",
            config
                .analysis
                .codec
                .as_ref()
                .and_then(|c| c.ie())
                .unwrap_or(0.0),
            None,
        );
        take(
            "dead_air",
            (DEAD_AIR_EACH * m.silence.dead_air_count as f64).min(DEAD_AIR_MAX),
            None,
        );
        if one_sided(ctx, t).is_some() {
            take("one_sided", ONE_SIDED_POINTS, None);
        } else if let Some(first) = ctx.lost.iter().map(|l| l.at_s).reduce(f64::min) {
            let share = ((ctx.duration_s - first) / ctx.duration_s.max(1e-9)).clamp(0.0, 1.0);
            take(
                "leg_lost",
                LEG_LOST_POINTS + LEG_LOST_SHARE_POINTS * share,
                None,
            );
        }
    }
    let total: f64 = penalties.iter().map(|p| p.points).sum();
    let r = (100.0 - total).clamp(0.0, 100.0);
    let s = &config.score;
    let grade = if r >= s.good {
        Grade::Good
    } else if r >= s.fair {
        Grade::Fair
    } else if r >= s.poor {
        Grade::Poor
    } else {
        Grade::Bad
    };
    Quality {
        score: r.round() as u32,
        mos: (mos(r) * 100.0).round() / 100.0,
        grade,
        flags,
        penalties,
        formula: FORMULA.to_string(),
    }
}

/// The terms of the speech's sound, measured on one channel (or the mix of one): noise, level,
/// clipping, dropouts, bandwidth, hum.
fn leg_terms(m: &Metrics, sample_rate: u32, t: &Thresholds) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    // The noise a listener hears: in the telephone band where it was measured (v2), or inside
    // the speech where it is louder there than in the pauses (v2.1).
    let heard = m.noise.phone_snr_db.or(m.noise.snr_db);
    if let Some(snr) = [heard, m.noise.speech_snr_db]
        .into_iter()
        .flatten()
        .min_by(f64::total_cmp)
    {
        let x = ((SNR_CLEAN_DB - snr) / (SNR_CLEAN_DB - SNR_WORST_DB)).clamp(0.0, 1.0);
        out.push(("noise", NOISE_MAX * x));
    }
    if let Some(level) = m.level.active_speech_dbfs {
        let off = (t.too_quiet_dbfs - level).max(0.0) + (level - t.too_loud_dbfs).max(0.0);
        out.push(("level", (LEVEL_PER_DB * off).min(LEVEL_MAX)));
    }
    if m.clipping.ratio > CLIP_FROM {
        let decades = (m.clipping.ratio / CLIP_FROM).log10();
        out.push(("clipping", (CLIP_PER_DECADE * decades).min(CLIP_MAX)));
    }
    let loss_pct = m.dropouts.ratio * 100.0;
    if loss_pct > 0.0 {
        out.push((
            "dropouts",
            (95.0 * loss_pct / (loss_pct + BPL_G711)).min(LOSS_MAX),
        ));
    }
    if let Some(bw) = m.clarity.bandwidth_hz {
        let limit = muffled_limit(t, sample_rate);
        let x = ((limit - bw) / (limit - BANDWIDTH_FLOOR_HZ).max(1.0)).clamp(0.0, 1.0);
        out.push(("bandwidth", BANDWIDTH_MAX * x));
    }
    if m.noise.hum_hz.is_some() {
        let points = m.noise.hum_snr_db.map_or(HUM_POINTS_V1, |db| {
            (HUM_PER_DB * (HUM_CLEAN_DB - db)).clamp(0.0, HUM_MAX)
        });
        out.push(("hum", points));
    }
    out.retain(|(_, p)| *p > 0.0);
    out
}

/// ITU-T G.107's mapping of the rating R (0..100) to a mean opinion score (1..4.5).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
    }
}

/// The bandwidth below which speech sounds muffled at this sample rate.
pub fn muffled_limit(t: &Thresholds, sample_rate: u32) -> f64 {
    t.muffled_below_hz.min(0.45 * sample_rate as f64 / 2.0)
}

/// The side that (nearly) never speaks while another does, with its share.
fn one_sided<'a>(ctx: &'a Context<'_>, t: &Thresholds) -> Option<(&'a str, f64)> {
    let total: f64 = ctx.sides.iter().map(|s| s.1).sum();
    if ctx.sides.len() < 2 || total <= 0.0 {
        return None;
    }
    ctx.sides
        .iter()
        .map(|(role, talk)| (role.as_str(), talk / total))
        .find(|&(_, share)| share < t.one_sided_ratio)
}

/// The flags about the conversation as a whole: its silences and its sides.
fn conversation_flags(m: &Metrics, ctx: &Context<'_>, config: &Config) -> Vec<Flag> {
    let t = &config.thresholds;
    let mut out = Raised::default();
    if m.silence.dead_air_count > 0 {
        out.flag(
            "dead_air",
            Severity::Info,
            format!(
                "{} silences longer than {:.0} s, {:.1} s in all",
                m.silence.dead_air_count, config.analysis.dead_air_s, m.silence.dead_air_s
            ),
        );
    }
    if m.speech.leading_silence_s > t.leading_silence_s {
        out.flag(
            "long_leading_silence",
            Severity::Info,
            format!(
                "first speech at {:.1} s is later than {:.0} s",
                m.speech.leading_silence_s, t.leading_silence_s
            ),
        );
    }
    if let Some((role, share)) = one_sided(ctx, t) {
        out.flag(
            "one_sided",
            Severity::Error,
            format!(
                "{role} side has {:.1}% of the talk time, below {:.1}%",
                share * 100.0,
                t.one_sided_ratio * 100.0
            ),
        );
    }
    for e in ctx.echoes.iter().filter(|e| e.erl_db < t.echo_erl_db) {
        out.flag(
            "echo",
            Severity::Warn,
            format!(
                "the {} voice comes back in the {} leg {:.0} ms late and {:.1} dB down \
                 (under {:.0} dB): an echo path without a good canceller",
                e.source, e.channel, e.delay_ms, e.erl_db, t.echo_erl_db
            ),
        );
    }
    for lost in ctx.lost {
        out.flag(
            "leg_lost",
            Severity::Error,
            format!(
                "the {} leg fell silent at {:.1} s while the other side talked on for at \
                 least {:.0} s (one-way audio after a transfer or a hold?)",
                lost.role, lost.at_s, config.analysis.leg_lost_min_s
            ),
        );
    }
    if let Some(written) = ctx.identical_channels {
        out.flag(
            "channels_identical",
            Severity::Info,
            format!(
                "the {written} channels carry one signal (a mono recorder writing stereo?): \
                 analysed as one channel"
            ),
        );
    }
    out.0
}

/// The flags about the sound of the speech on one channel (or the mix of one).
fn leg_flags(m: &Metrics, sample_rate: u32, t: &Thresholds) -> Vec<Flag> {
    let mut out = Raised::default();
    if let Some(snr) = m.noise.snr_db {
        if snr < t.low_snr_db {
            let severity = if snr < t.low_snr_db / 2.0 {
                Severity::Error
            } else {
                Severity::Warn
            };
            out.flag(
                "low_snr",
                severity,
                format!("SNR {snr:.1} dB is below {:.0} dB", t.low_snr_db),
            );
        }
    }
    if let Some(floor) = m.noise.floor_dbfs {
        if floor > t.high_noise_floor_dbfs {
            out.flag(
                "high_noise",
                Severity::Warn,
                format!(
                    "noise floor {floor:.1} dBFS is above {:.0} dBFS",
                    t.high_noise_floor_dbfs
                ),
            );
        }
    }
    if let Some(level) = m.level.active_speech_dbfs {
        if level < t.too_quiet_dbfs {
            out.flag(
                "too_quiet",
                Severity::Warn,
                format!(
                    "speech level {level:.1} dBFS is below {:.0} dBFS",
                    t.too_quiet_dbfs
                ),
            );
        }
        if level > t.too_loud_dbfs {
            out.flag(
                "too_loud",
                Severity::Warn,
                format!(
                    "speech level {level:.1} dBFS is above {:.0} dBFS",
                    t.too_loud_dbfs
                ),
            );
        }
    }
    if m.clipping.ratio >= t.clipping_ratio && m.clipping.events > 0 {
        out.flag(
            "clipping",
            Severity::Warn,
            format!(
                "{:.3}% of samples clipped ({} events) is at or above {:.3}%",
                m.clipping.ratio * 100.0,
                m.clipping.events,
                t.clipping_ratio * 100.0
            ),
        );
    }
    if m.dropouts.ratio >= t.dropout_ratio && m.dropouts.count > 0 {
        out.flag(
            "dropouts",
            Severity::Warn,
            format!(
                "{} dropouts, {:.2}% of speech time, at or above {:.2}%",
                m.dropouts.count,
                m.dropouts.ratio * 100.0,
                t.dropout_ratio * 100.0
            ),
        );
    }
    if m.clarity.muffled {
        let bw = m.clarity.bandwidth_hz.unwrap_or(0.0);
        out.flag(
            "muffled",
            Severity::Warn,
            format!(
                "speech bandwidth {bw:.0} Hz is below {:.0} Hz",
                muffled_limit(t, sample_rate)
            ),
        );
    }
    if let Some(hz) = m.noise.hum_hz {
        out.flag(
            "hum",
            Severity::Warn,
            format!(
                "{hz} Hz mains hum stands more than {:.0} dB out of the noise",
                t.hum_margin_db
            ),
        );
    }
    out.0
}

/// Every flag code [`call_flags`], [`leg_flags`] and [`conversation_flags`] can raise (docs/analysis-report.md), so that a counter by code can
/// start at 0 for each. A test holds it to the codes `flags` uses.
pub const FLAG_CODES: [&str; 21] = [
    "too_short",
    "header_mismatch",
    "too_long",
    "truncated",
    "codec",
    "no_speech",
    "hold_only",
    "low_snr",
    "high_noise",
    "too_quiet",
    "too_loud",
    "clipping",
    "dropouts",
    "muffled",
    "hum",
    "dead_air",
    "long_leading_silence",
    "one_sided",
    "leg_lost",
    "channels_identical",
    "echo",
];

/// The flags a judgement raises, in order.
#[derive(Default)]
struct Raised(Vec<Flag>);

impl Raised {
    fn flag(&mut self, code: &str, severity: Severity, message: String) {
        self.0.push(Flag {
            code: code.to_string(),
            severity,
            message,
            channel: None,
        });
    }
}

/// The flags about the whole recording's file and whether it holds speech at all.
fn call_flags(m: &Metrics, ctx: &Context<'_>, config: &Config) -> Vec<Flag> {
    let mut out = Raised::default();
    let min_dur = config.analysis.min_duration_s;
    if ctx.duration_s < min_dur {
        out.flag(
            "too_short",
            Severity::Warn,
            format!("duration {:.1} s is below {min_dur:.1} s", ctx.duration_s),
        );
    }
    if ctx.decode.header_mismatch {
        out.flag(
            "header_mismatch",
            Severity::Info,
            "WAV header sizes disagree with the file; read to the real end of the data".into(),
        );
    }
    if ctx.decode.too_long {
        out.flag(
            "too_long",
            Severity::Warn,
            format!(
                "longer than {:.0} s (analysis.max_duration_s): analysed up to there",
                config.analysis.max_duration_s
            ),
        );
    }
    if ctx.decode.truncated {
        out.flag(
            "truncated",
            Severity::Warn,
            "the file ends before its header says; analysed as far as it decodes".into(),
        );
    }
    if m.speech.talk_time_s <= 0.0 {
        out.flag(
            "no_speech",
            Severity::Error,
            format!("no speech found in {:.1} s", ctx.duration_s),
        );
        if m.hold.music_s > 0.0 {
            out.flag(
                "hold_only",
                Severity::Warn,
                format!(
                    "only hold music ({:.1} s of {:.1} s): a call left on hold, or a recording of the hold alone",
                    m.hold.music_s, ctx.duration_s
                ),
            );
        }
        return out.0;
    }
    if let Some(codec) = &config.analysis.codec {
        out.flag(
            "codec",
            Severity::Info,
            match codec.ie() {
                Some(ie) => format!(
                    "carried in {} before it was recorded: impairment {ie:.0} (ITU-T G.113)",
                    codec.label()
                ),
                None => format!(
                    "carried in {} before it was recorded: no ITU-T G.113 planning value, not charged",
                    codec.label()
                ),
            },
        );
    }
    out.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn flag_codes_lists_every_code_raised() {
        // The first string after each `flag(` call in this file's non-test part is a code.
        let source = include_str!("score.rs");
        let body = source.split("#[cfg(test)]").next().unwrap();
        let mut used: Vec<&str> = body
            .split("flag(")
            .skip(1)
            .filter_map(|call| {
                let call = call.trim_start();
                call.strip_prefix('"')
                    .and_then(|c| c.split('"').next())
                    .filter(|c| {
                        !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
                    })
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        let mut listed = super::FLAG_CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(used, listed);
    }

    use super::*;

    #[test]
    fn mos_follows_g107() {
        assert_eq!(mos(0.0), 1.0);
        assert_eq!(mos(100.0), 4.5);
        assert!((mos(93.2) - 4.41).abs() < 0.01);
        assert!((mos(50.0) - 2.58).abs() < 0.01);
        let mut last = 0.0;
        for r in 0..=100 {
            let m = mos(r as f64);
            assert!(m >= last, "mos not monotone at {r}");
            last = m;
        }
    }
}
