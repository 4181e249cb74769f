//! The analysis core: decoded samples in, quality measurements and a judgement out.
//!
//! Pure and streaming: an [`Analyzer`] is fed interleaved f32 blocks of any size and keeps only
//! small per-frame features (pass one, `features`); [`Analyzer::finish`] turns those into
//! segments (`segments`), measurements (`measure`) and the score (`score`). It never reads a
//! file, a clock or the environment, and never logs: the caller owns all I/O.

pub mod carried;
pub mod echo;
pub mod features;
pub mod fingerprint;
pub mod goertzel;
pub mod legs;
pub mod mains;
pub mod measure;
pub mod model;
pub mod music;
pub mod noise;
pub mod score;
pub mod segments;
pub mod spectrum;
pub mod tones;
pub mod track;
pub mod vad;

use crate::config::Config;

use features::{ChannelFeatures, ChannelTracker};
use measure::Timing;
use model::{ChannelReport, Conversation, DecodeReport, Metrics, Quality};

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("analyse {channels} channels at {rate} Hz: {reason}")]
    Unsupported {
        channels: u16,
        rate: u32,
        reason: String,
    },
}

/// A prompt to look for (a recording announcement), its fingerprint made once at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub name: String,
    pub print: fingerprint::Fingerprint,
    /// How long the prompt lasts, and how far into the recording it may start (seconds).
    pub len_s: f64,
    pub within_s: f64,
}

/// The streaming analyser of one recording.
pub struct Analyzer {
    rate: u32,
    prompts: Vec<std::sync::Arc<Prompt>>,
    /// The recorder's beep looked for (Hz).
    beep_hz: Option<f64>,
    trackers: Vec<ChannelTracker>,
    /// One deinterleaved block per channel, reused.
    scratch: Vec<Vec<f32>>,
}

/// Everything measured about one recording, before it is wrapped into a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub duration_s: f64,
    pub metrics: Metrics,
    pub quality: Quality,
    pub channels: Option<Vec<ChannelReport>>,
    pub conversation: Option<Conversation>,
    pub evidence: model::Evidence,
}

impl Analyzer {
    /// An analyser for `channels` channels at `rate` Hz whose codec's full scale is `full_scale`.
    pub fn new(
        rate: u32,
        channels: u16,
        full_scale: f32,
        config: &Config,
    ) -> Result<Analyzer, AnalysisError> {
        let unsupported = |reason: String| AnalysisError::Unsupported {
            channels,
            rate,
            reason,
        };
        if channels == 0 {
            return Err(unsupported("no channels".into()));
        }
        if !(8000..=48000).contains(&rate) {
            return Err(unsupported(
                "sample rates from 8 to 48 kHz are supported".into(),
            ));
        }
        let trackers = (0..channels)
            .map(|_| {
                ChannelTracker::new(
                    rate,
                    full_scale,
                    config.analysis.vad.mode,
                    config.consent.beep.as_ref().and_then(|b| b.frequency_hz),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(unsupported)?;
        Ok(Analyzer {
            rate,
            prompts: Vec::new(),
            beep_hz: config.consent.beep.as_ref().and_then(|b| b.frequency_hz),
            trackers,
            scratch: Vec::new(),
        })
    }

    /// Looks for these prompts (recording announcements) at the start of every channel.
    pub fn with_prompts(mut self, prompts: Vec<std::sync::Arc<Prompt>>) -> Analyzer {
        let limit_s = prompts
            .iter()
            .map(|p| p.within_s + p.len_s + 1.0)
            .fold(0.0, f64::max);
        if !prompts.is_empty() {
            for t in &mut self.trackers {
                t.fingerprint = Some(Box::new(fingerprint::Fingerprinter::new(
                    self.rate, limit_s,
                )));
            }
        }
        self.prompts = prompts;
        self
    }

    /// Looks for the recorder's beep at `hz` (a `[consent.beep]` given as a file, its frequency
    /// found at load).
    pub fn with_beep_hz(mut self, hz: f64) -> Analyzer {
        for t in &mut self.trackers {
            t.look_for_beep(hz);
        }
        self.beep_hz = Some(hz);
        self
    }

    /// Feeds interleaved frames (a trailing partial frame is ignored).
    pub fn push(&mut self, interleaved: &[f32]) {
        let n = self.trackers.len();
        if n == 1 {
            self.trackers[0].push(interleaved);
            return;
        }
        // Deinterleave into reused per-channel blocks, then feed each channel.
        let frames = interleaved.len() / n;
        self.scratch.resize_with(n, Vec::new);
        for channel in &mut self.scratch {
            channel.resize(frames, 0.0);
        }
        if let [left, right] = &mut self.scratch[..] {
            // Stereo, nearly every multichannel call: a loop the compiler can vectorise.
            for ((l, r), pair) in left.iter_mut().zip(right).zip(interleaved.chunks_exact(2)) {
                (*l, *r) = (pair[0], pair[1]);
            }
        } else {
            for (c, channel) in self.scratch.iter_mut().enumerate() {
                for (dst, frame) in channel.iter_mut().zip(interleaved.chunks_exact(n)) {
                    *dst = frame[c];
                }
            }
        }
        for (tracker, channel) in self.trackers.iter_mut().zip(&self.scratch) {
            tracker.push(channel);
        }
    }

    /// Ends the stream and judges the recording.
    pub fn finish(self, config: &Config, decode: &DecodeReport, with_segments: bool) -> Analysis {
        let rate = self.rate;
        let features: Vec<ChannelFeatures> = self
            .trackers
            .into_iter()
            .map(|t| {
                let mut f = t.finish();
                f.see_through_lost_packets();
                f
            })
            .collect();
        let sought = Sought {
            prompts: &self.prompts,
            beep_hz: self.beep_hz,
        };
        judge(rate, &features, &sought, config, decode, with_segments)
    }
}

/// What is looked for besides the quality: the announcements and the beep.
struct Sought<'a> {
    prompts: &'a [std::sync::Arc<Prompt>],
    beep_hz: Option<f64>,
}

/// Pass two over the kept features of every channel.
fn judge(
    rate: u32,
    features: &[ChannelFeatures],
    sought: &Sought,
    config: &Config,
    decode: &DecodeReport,
    with_segments: bool,
) -> Analysis {
    let cfg = &config.analysis;
    // One signal written to every channel (a mono recorder writing stereo) is one channel: two
    // copies would read as a call spent in overtalk.
    let identical_channels = features.len() > 1
        && features[1..]
            .iter()
            .all(|f| legs::identical(&features[0].halves, &f.halves));
    let written = features.len();
    let features = if identical_channels {
        &features[..1]
    } else {
        features
    };
    let samples = features.first().map_or(0, |f| f.samples);
    let half_len = features.first().map_or(1, |f| f.half_len);
    let timing = Timing {
        half_s: half_len as f64 / rate as f64,
        duration_s: samples as f64 / rate as f64,
    };
    // Music and speech, channel by channel.
    let detected: Vec<(segments::Segmentation, segments::Segments)> = features
        .iter()
        .map(|f| {
            let mut music = music::spans(&f.tones, f.tone_hops, f.halves.len(), &|j| {
                f.halves[j].power()
            });
            let mut seg = segments::segment(&f.halves, &f.vad, timing.half_s, &cfg.vad, &music);
            // Short music that continues a hold is the hold's: segmented again with it.
            if let Some(continued) = music.continued(&seg.segments) {
                seg = segments::segment(&f.halves, &f.vad, timing.half_s, &cfg.vad, &continued);
                music = continued;
            }
            let holds = music::holds(
                &music.spans,
                &seg.segments,
                timing.halves(music::HOLD_GAP_S),
            );
            (seg, holds)
        })
        .collect();
    let roles: Vec<String> = (0..features.len())
        .map(|i| {
            cfg.channel_roles
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("channel_{i}"))
        })
        .collect();
    let multi = features.len() > 1;
    let halves: Vec<&[features::Half]> = features.iter().map(|f| &f.halves[..]).collect();
    // One leg's voice coming back in another: found, then taken out of that leg's talk (what
    // it explains is neither the leg's speech nor its noise).
    let mut echoed: Vec<segments::Segments> = vec![Vec::new(); features.len()];
    let echoes: Vec<model::EchoReport> = if multi {
        let legs: Vec<echo::Leg<_>> = halves
            .iter()
            .zip(&detected)
            .map(|(&h, (seg, _))| echo::Leg {
                power: move |j: usize| h[j].power(),
                noise: seg.noise,
                segments: &seg.segments,
            })
            .collect();
        let n = halves.iter().map(|h| h.len()).min().unwrap_or(0);
        let p = segments::Params::new(&cfg.vad, timing.half_s);
        let found = echo::echoes(&legs, n, timing.half_s);
        for e in &found {
            let (source, channel) = (&legs[e.source], &legs[e.channel]);
            let (hs, hc) = (halves[e.source], halves[e.channel]);
            let (band_s, band_c) = (|j: usize| hs[j].band(), |j: usize| hc[j].band());
            let (low_s, low_c) = (|j: usize| hs[j].low(), |j: usize| hc[j].low());
            let views = [
                echo::View {
                    source: &band_s,
                    channel: &band_c,
                },
                echo::View {
                    source: &low_s,
                    channel: &low_c,
                },
            ];
            let kept = echo::own_speech(source, channel, e, n, p.bridge, p.min_run, &views);
            let taken = segments::minus(channel.segments, &kept);
            echoed[e.channel] = segments::union(&[&echoed[e.channel], &taken]);
        }
        found
            .into_iter()
            .map(|e| model::EchoReport {
                source: roles[e.source].clone(),
                channel: roles[e.channel].clone(),
                delay_ms: (e.delay as f64 * timing.half_s * 1000.0).round(),
                erl_db: (e.loss_db * 10.0).round() / 10.0,
            })
            .collect()
    } else {
        Vec::new()
    };
    let results: Vec<measure::ChannelResult> = features
        .iter()
        .zip(detected)
        .zip(&echoed)
        .map(|((f, (seg, holds)), echoed)| {
            // Made after segmenting, whose views are gone by then (on a 4-hour call each
            // series of halves is 6 MB).
            let powers: Vec<f32> = f.halves.iter().map(|h| h.power()).collect();
            // The leg's own speech: what detection found, less another leg's echo.
            let seg = segments::Segmentation {
                segments: segments::minus(&seg.segments, echoed),
                ..seg
            };
            measure::channel(
                f,
                &powers,
                &seg,
                &holds,
                echoed,
                timing,
                cfg,
                &config.thresholds,
                with_segments,
            )
        })
        .collect();
    let lost: Vec<model::LostLeg> = if multi {
        let segs: Vec<&segments::Segments> = results.iter().map(|r| &r.segments).collect();
        legs::lost(&halves, &segs, timing.half_s, cfg.leg_lost_min_s)
            .into_iter()
            .map(|l| model::LostLeg {
                role: roles[l.channel].clone(),
                at_s: (l.at_s * 100.0).round() / 100.0,
            })
            .collect()
    } else {
        Vec::new()
    };
    let metrics = if multi {
        measure::mix(
            features,
            &results,
            &segments::union(&echoed.iter().collect::<Vec<_>>()),
            timing,
            cfg,
            &config.thresholds,
            with_segments,
        )
    } else {
        results[0].metrics.clone()
    };
    let sides: Vec<(String, f64)> = if multi {
        roles
            .iter()
            .zip(&results)
            .map(|(r, c)| (r.clone(), c.metrics.speech.talk_time_s))
            .collect()
    } else {
        Vec::new()
    };
    let legs: Vec<(String, &Metrics)> = if multi {
        roles
            .iter()
            .cloned()
            .zip(results.iter().map(|r| &r.metrics))
            .collect()
    } else {
        Vec::new()
    };
    let quality = score::assess(
        &metrics,
        &score::Context {
            duration_s: timing.duration_s,
            sample_rate: rate,
            decode,
            sides: &sides,
            legs: &legs,
            lost: &lost,
            echoes: &echoes,
            identical_channels: identical_channels.then_some(written),
        },
        config,
    );
    let mut quality = quality;
    let evidence = evidence(features, &roles, sought, timing, config, &mut quality.flags);
    let conversation = multi.then(|| Conversation {
        lost_legs: lost,
        echoes,
        ..measure::conversation(&results, &roles, timing, cfg)
    });
    let channels = multi.then(|| {
        results
            .into_iter()
            .zip(roles)
            .enumerate()
            .map(|(index, (r, role))| ChannelReport {
                index,
                role,
                metrics: r.metrics,
            })
            .collect()
    });
    Analysis {
        duration_s: timing.duration_s,
        metrics,
        quality,
        channels,
        conversation,
        evidence,
    }
}

/// Seconds, to the millisecond.
fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The compliance evidence in the channels' tones, with the flags it raises.
fn evidence(
    features: &[ChannelFeatures],
    roles: &[String],
    sought: &Sought,
    timing: Timing,
    config: &Config,
    flags: &mut Vec<model::Flag>,
) -> model::Evidence {
    let multi = features.len() > 1;
    let mut bursts: Vec<model::DtmfBurst> = features
        .iter()
        .zip(roles)
        .flat_map(|(f, role)| {
            tones::bursts(&f.dtmf, config.pci.burst_gap_s)
                .into_iter()
                .map(move |b| model::DtmfBurst {
                    start_s: ms(b.start_s),
                    end_s: ms(b.end_s),
                    digits: b.tones.len() as u32,
                    channel: multi.then(|| role.clone()),
                    tones: b
                        .tones
                        .iter()
                        .map(|t| [ms(t.start_s), ms(t.end_s)])
                        .collect(),
                })
        })
        .collect();
    bursts.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let dtmf = model::DtmfEvidence {
        digits: bursts.iter().map(|b| b.digits).sum(),
        longest_burst: bursts.iter().map(|b| b.digits).max().unwrap_or(0),
        bursts,
    };
    if dtmf.digits > 0 {
        flags.push(model::Flag {
            code: "dtmf_in_recording".into(),
            severity: model::Severity::Warn,
            message: format!(
                "{} DTMF digit(s) keyed in {} burst(s), the longest of {}",
                dtmf.digits,
                dtmf.bursts.len(),
                dtmf.longest_burst
            ),
            channel: None,
        });
    }
    let prompts = sought.prompts;
    let beep = config
        .consent
        .beep
        .as_ref()
        .zip(sought.beep_hz)
        .map(|(cfg, hz)| {
            let heard: Vec<tones::ToneSpan> = features
                .iter()
                .flat_map(|f| f.beeps.iter().copied())
                .collect();
            let run = tones::beep_run(&heard, timing.duration_s, cfg.period_s, cfg.tolerance_s);
            let ran_through = run.stopped_at_s.is_none() && !run.late_start;
            if let Some(at) = run.stopped_at_s {
                flags.push(model::Flag {
                    code: "beep_stopped".into(),
                    severity: model::Severity::Warn,
                    message: if run.count == 0 {
                        "the recording beep was never heard".into()
                    } else {
                        format!("the recording beep stopped at {at:.1} s")
                    },
                    channel: None,
                });
            }
            model::BeepEvidence {
                frequency_hz: hz,
                period_s: cfg.period_s,
                count: run.count,
                first_s: run.first_s.map(ms),
                last_s: run.last_s.map(ms),
                ran_through,
                stopped_at_s: run.stopped_at_s.map(ms),
            }
        });
    let announcement = (!prompts.is_empty()).then(|| {
        // The best match of any prompt on any channel.
        let best = prompts
            .iter()
            .flat_map(|p| {
                features.iter().zip(roles).filter_map(move |(f, role)| {
                    let found = fingerprint::find(&p.print, f.print.as_ref()?, p.within_s)?;
                    Some((p, role, found))
                })
            })
            .min_by(|a, b| a.2.bit_errors.total_cmp(&b.2.bit_errors));
        match best {
            Some((p, role, found)) => model::AnnouncementEvidence {
                found: true,
                name: Some(p.name.clone()),
                at_s: Some(ms(found.at_s)),
                channel: multi.then(|| role.clone()),
                confidence: Some(((1.0 - 2.0 * found.bit_errors) * 100.0).round() / 100.0),
            },
            None => {
                let within = prompts.iter().map(|p| p.within_s).fold(0.0, f64::max);
                flags.push(model::Flag {
                    code: "no_announcement".into(),
                    severity: model::Severity::Warn,
                    message: format!("no recording announcement found in the first {within:.0} s"),
                    channel: None,
                });
                model::AnnouncementEvidence {
                    found: false,
                    name: None,
                    at_s: None,
                    channel: None,
                    confidence: None,
                }
            }
        }
    });
    model::Evidence {
        dtmf,
        beep,
        announcement,
    }
}
