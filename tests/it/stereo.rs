//! Two-party calls: per-channel talk time, overtalk and interruptions against the truth.

use crate::support::*;

/// Places utterances on a silent track of `len_s` seconds; returns the track and the spans.
fn track(len_s: f64, parts: &[(&str, f64)]) -> (Vec<f32>, Vec<(usize, usize)>) {
    let mut x = vec![0.0f32; (len_s * RATE as f64) as usize];
    let mut spans = Vec::new();
    for &(name, at) in parts {
        let u = trim(&speech(name));
        let start = (at * RATE as f64) as usize;
        x[start..start + u.len()].copy_from_slice(&u);
        spans.push((start, start + u.len()));
    }
    let floor = white(x.len(), parts.len() as u64);
    for (v, n) in x.iter_mut().zip(floor) {
        *v += n * 1e-3; // -60 dBFS of line noise
    }
    (x, spans)
}

fn seconds(spans: &[(usize, usize)]) -> f64 {
    spans.iter().map(|s| (s.1 - s.0) as f64).sum::<f64>() / RATE as f64
}

fn overlap_s(a: &[(usize, usize)], b: &[(usize, usize)]) -> f64 {
    let mut total = 0usize;
    for &(s1, e1) in a {
        for &(s2, e2) in b {
            total += e1.min(e2).saturating_sub(s1.max(s2));
        }
    }
    total as f64 / RATE as f64
}

#[test]
fn two_party_call_talk_time_and_overtalk() {
    let (agent, a_spans) = track(
        32.0,
        &[
            ("asterisk-queue-youarenext", 0.5),
            ("asterisk-vm-mailboxfull", 12.0),
            ("asterisk-privacy-prompt", 26.0),
        ],
    );
    let (customer, c_spans) = track(
        32.0,
        &[
            ("asterisk-unidentified-no-callback", 5.2),
            ("fsdd-3_jackson_12", 13.0),
            ("fsdd-9_nicolas_8", 17.5),
            ("asterisk-vm-review", 22.0),
        ],
    );
    let a = analyze(&interleave(&[&agent, &customer]), 2);
    let channels = a.channels.as_ref().expect("channels for stereo");
    assert_eq!(channels[0].role, "agent");
    assert_eq!(channels[1].role, "customer");
    for (ch, truth) in channels.iter().zip([seconds(&a_spans), seconds(&c_spans)]) {
        let got = ch.metrics.speech.talk_time_s;
        assert!(
            (got - truth).abs() <= 0.3,
            "{}: talk {got:.2} s, truth {truth:.2} s",
            ch.role
        );
    }
    let conv = a.conversation.as_ref().expect("conversation");
    let truth = overlap_s(&a_spans, &c_spans);
    assert!(
        (conv.overtalk_s - truth).abs() <= 0.5,
        "overtalk {:.2} s, truth {truth:.2} s",
        conv.overtalk_s
    );
    // Interruptions: each overlap longer than 300 ms, charged to the side that started last.
    let (mut by_agent, mut by_customer) = (0, 0);
    for &(s1, e1) in &a_spans {
        for &(s2, e2) in &c_spans {
            if e1.min(e2) > s1.max(s2) + (0.3 * RATE as f64) as usize {
                if s1 > s2 {
                    by_agent += 1;
                } else {
                    by_customer += 1;
                }
            }
        }
    }
    assert_eq!(conv.interruptions["agent"], by_agent, "{conv:?}");
    assert_eq!(conv.interruptions["customer"], by_customer, "{conv:?}");
    assert_eq!(conv.overtalk_count, by_agent + by_customer, "{conv:?}");
    let ratio_sum: f64 = conv.talk_ratio.values().sum();
    assert!((ratio_sum - 1.0).abs() < 1e-9);
    // Both sides speak: not one-sided, not one signal twice, no leg lost; the whole-call
    // speech is the union of both.
    assert!(conv.echoes.is_empty(), "{:?}", conv.echoes);
    for code in ["one_sided", "channels_identical", "leg_lost", "echo"] {
        assert!(!a.quality.flags.iter().any(|f| f.code == code), "{code}");
    }
    assert!(a.metrics.speech.talk_time_s >= channels[0].metrics.speech.talk_time_s);
}

#[test]
fn a_silent_leg_is_one_sided() {
    let (agent, _) = track(24.0, &[("asterisk-demo-echotest", 0.5)]);
    let silent = white(agent.len(), 77)
        .iter()
        .map(|v| v * 1e-3)
        .collect::<Vec<_>>();
    let a = analyze(&interleave(&[&agent, &silent]), 2);
    assert!(
        a.quality.flags.iter().any(|f| f.code == "one_sided"),
        "{:?}",
        a.quality.flags
    );
}

fn codes(a: &callwarden::analysis::Analysis) -> Vec<&str> {
    a.quality.flags.iter().map(|f| f.code.as_str()).collect()
}

/// A mono recorder writing stereo: the same signal in both channels, exactly or delayed 3 ms
/// and 4 dB down. One channel's analysis, no overtalk, and a flag that says why.
#[test]
fn one_signal_in_both_channels_is_analysed_as_one() {
    let (mono, spans) = track(
        30.0,
        &[
            ("asterisk-queue-youarenext", 0.5),
            ("fsdd-3_jackson_12", 9.0),
            ("asterisk-vm-mailboxfull", 16.0),
        ],
    );
    let alone = analyze(&mono, 1);
    let delay = (0.003 * RATE as f64) as usize;
    let delayed: Vec<f32> = (0..mono.len())
        .map(|i| {
            if i < delay {
                0.0
            } else {
                0.63 * mono[i - delay]
            }
        })
        .collect();
    for (what, copy) in [("exact", mono.clone()), ("delayed, scaled", delayed)] {
        let a = analyze(&interleave(&[&mono, &copy]), 2);
        assert!(
            codes(&a).contains(&"channels_identical"),
            "{what}: {:?}",
            codes(&a)
        );
        assert!(a.conversation.is_none() && a.channels.is_none(), "{what}");
        let talk = a.metrics.speech.talk_time_s;
        assert!(
            (talk - alone.metrics.speech.talk_time_s).abs() <= 0.05
                && (talk - seconds(&spans)).abs() <= 0.5,
            "{what}: talk {talk:.2} s, alone {:.2} s",
            alone.metrics.speech.talk_time_s
        );
    }
}

/// A two-party call whose customer leg falls dead at 30 s while the agent talks to 55 s.
fn call_with_customer(customer_after_30s: impl Fn(usize) -> f32) -> callwarden::analysis::Analysis {
    let (agent, _) = track(
        60.0,
        &[
            ("asterisk-queue-youarenext", 0.5),
            ("asterisk-vm-mailboxfull", 12.0),
            ("asterisk-privacy-prompt", 26.0),
            ("asterisk-unidentified-no-callback", 38.0),
            ("asterisk-vm-review", 48.0),
        ],
    );
    let (mut customer, _) = track(
        60.0,
        &[
            ("fsdd-9_nicolas_8", 6.0),
            // A long natural pause (8 s) before it speaks again.
            ("fsdd-3_jackson_12", 20.0),
        ],
    );
    let dead_from = 30 * RATE as usize;
    for (i, v) in customer.iter_mut().enumerate().skip(dead_from) {
        *v = customer_after_30s(i);
    }
    analyze(&interleave(&[&agent, &customer]), 2)
}

#[test]
fn a_leg_that_falls_dead_mid_call_is_lost_and_a_listening_one_is_not() {
    let noise = white(60 * RATE as usize, 91);
    // Digital silence, and comfort noise 20 dB under the line's noise: lost at 30 s.
    for (what, a) in [
        ("digital silence", call_with_customer(|_| 0.0)),
        ("comfort noise", call_with_customer(|i| noise[i] * 1e-4)),
    ] {
        let conv = a.conversation.as_ref().expect("stereo");
        assert_eq!(conv.lost_legs.len(), 1, "{what}: {conv:?}");
        assert_eq!(conv.lost_legs[0].role, "customer", "{what}");
        assert!(
            (conv.lost_legs[0].at_s - 30.0).abs() <= 1.0,
            "{what}: {conv:?}"
        );
        assert!(codes(&a).contains(&"leg_lost"), "{what}: {:?}", codes(&a));
        assert!(
            a.quality.penalties.iter().any(|p| p.term == "leg_lost"),
            "{what}"
        );
    }
    // The customer listens on a live line (its noise goes on): a pause, not a lost leg.
    let a = call_with_customer(|i| noise[i] * 1e-3);
    assert!(
        a.conversation.as_ref().unwrap().lost_legs.is_empty(),
        "{:?}",
        a.conversation
    );
    assert!(!codes(&a).contains(&"leg_lost"));
}

/// A Butterworth low-pass biquad (RBJ cookbook), applied `order / 2` times.
fn low_pass(x: &[f32], cutoff_hz: f64, sections: usize) -> Vec<f32> {
    let w = 2.0 * std::f64::consts::PI * cutoff_hz / RATE as f64;
    let alpha = w.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
    let (b0, b1, b2) = ((1.0 - w.cos()) / 2.0, 1.0 - w.cos(), (1.0 - w.cos()) / 2.0);
    let (a0, a1, a2) = (1.0 + alpha, -2.0 * w.cos(), 1.0 - alpha);
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for _ in 0..sections {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for v in y.iter_mut() {
            let x0 = *v;
            let out = (b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
            (x2, x1, y2, y1) = (x1, x0, y1, out);
            *v = out;
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

/// A customer leg muffled to about 840 Hz inside a clean call: judged on its own, it is
/// flagged on that leg and its bandwidth costs the call, where the mix hid it.
#[test]
fn a_muffled_leg_is_judged_on_its_own() {
    let (agent, _) = track(
        32.0,
        &[
            ("asterisk-queue-youarenext", 0.5),
            ("asterisk-vm-mailboxfull", 12.0),
            ("asterisk-privacy-prompt", 26.0),
        ],
    );
    let (customer, _) = track(
        32.0,
        &[
            ("asterisk-unidentified-no-callback", 5.2),
            ("fsdd-3_jackson_12", 13.0),
            ("asterisk-vm-review", 22.0),
        ],
    );
    let clean = analyze(&interleave(&[&agent, &customer]), 2);
    let muffled = low_pass(&customer, 840.0, 4);
    let a = analyze(&interleave(&[&agent, &muffled]), 2);
    let flag = a
        .quality
        .flags
        .iter()
        .find(|f| f.code == "muffled")
        .unwrap_or_else(|| panic!("not flagged: {:?}", a.quality.flags));
    assert_eq!(flag.channel.as_deref(), Some("customer"), "{flag:?}");
    assert!(flag.message.starts_with("customer leg: "), "{flag:?}");
    let bandwidth = a
        .quality
        .penalties
        .iter()
        .find(|p| p.term == "bandwidth")
        .unwrap_or_else(|| panic!("no bandwidth term: {:?}", a.quality.penalties));
    assert_eq!(bandwidth.channel.as_deref(), Some("customer"));
    assert!(
        a.quality.score < 80 && a.quality.score + 10 <= clean.quality.score,
        "muffled {} vs clean {}",
        a.quality.score,
        clean.quality.score
    );
    assert!(!clean.quality.flags.iter().any(|f| f.code == "muffled"));
}

/// The agent's voice coming back in the customer's leg, `delay_s` late and `erl_db` down, as
/// a phone or gateway without a good echo canceller sends it back.
fn call_with_echo(delay_s: f64, erl_db: f64) -> callwarden::analysis::Analysis {
    echo_call(delay_s, erl_db, &CUSTOMER, &[(0, 1.0)]).0
}

/// The customer's turns in the echo calls, none over the agent's.
const CUSTOMER: [(&str, f64); 3] = [
    ("asterisk-unidentified-no-callback", 5.2),
    ("fsdd-3_jackson_12", 19.0),
    ("asterisk-vm-review", 33.0),
];

/// `call_with_echo` with the customer's own turns and the echo path's taps (samples after the
/// delay, gain: scaled to unit energy), and the truth: the analysis, the agent's and the
/// customer's speech.
type Spans = Vec<(usize, usize)>;
fn echo_call(
    delay_s: f64,
    erl_db: f64,
    customer_parts: &[(&str, f64)],
    taps: &[(usize, f32)],
) -> (callwarden::analysis::Analysis, Spans, Spans) {
    let (agent, a_spans) = track(
        48.0,
        &[
            ("asterisk-queue-youarenext", 0.5),
            ("asterisk-vm-mailboxfull", 12.0),
            ("asterisk-privacy-prompt", 26.0),
        ],
    );
    let (mut customer, c_spans) = track(48.0, customer_parts);
    let d = (delay_s * RATE as f64).round() as usize;
    let energy: f32 = taps.iter().map(|t| t.1 * t.1).sum();
    let gain = 10f32.powf(-(erl_db as f32) / 20.0) / energy.sqrt();
    for &(lag, tap) in taps {
        for i in d + lag..customer.len() {
            customer[i] += gain * tap * agent[i - d - lag];
        }
    }
    (
        analyze(&interleave(&[&agent, &customer]), 2),
        a_spans,
        c_spans,
    )
}

#[test]
fn an_echo_is_found_with_its_delay_and_loss() {
    for (delay_s, erl_db) in [
        (0.012, 8.0),
        (0.04, 10.0),
        (0.205, 15.0),
        (0.48, 20.0),
        (0.1, 25.0),
    ] {
        let a = call_with_echo(delay_s, erl_db);
        let conv = a.conversation.as_ref().unwrap();
        let e = conv
            .echoes
            .iter()
            .find(|e| e.source == "agent" && e.channel == "customer")
            .unwrap_or_else(|| panic!("{delay_s} s, {erl_db} dB: none in {:?}", conv.echoes));
        assert!(
            (e.delay_ms - delay_s * 1000.0).abs() <= 10.0 && (e.erl_db - erl_db).abs() <= 3.0,
            "{delay_s} s, {erl_db} dB: {e:?}"
        );
        assert_eq!(conv.echoes.len(), 1, "{:?}", conv.echoes);
        assert!(codes(&a).contains(&"echo"), "{:?}", codes(&a));
    }
}

/// An echo is not the other side talking: with the agent's voice coming back in the
/// customer's leg (8-20 dB down, 12-480 ms late, through a plain delay or a path that smears
/// it over 19 ms), each leg's talk time stays within 0.5 s of its own speech and the overtalk
/// within 0.5 s of the true overlap, both when the customer only answers and when they talk
/// over the agent at about the agent's level (where the echo is under their voice). Before
/// the echo was taken out of its leg's talk, the customer's talk held the agent's too.
///
/// Where the echo is strong (8-10 dB down) the talker's softer halves sit at its level. They
/// are told from it in bands of their power too (`echo::own_speech`): over the agent, the
/// customer's talk then comes out up to 0.59 s short of 16.9 s (overtalk up to 0.59 s short of
/// 4.1 s; it was 1.3 s on power alone), held here within 0.65 s; at 15-20 dB it is within
/// 0.5 s. A reply 8 dB under the agent's level, under an echo 8-10 dB down, stands at the
/// echo's own level and is lost whole (measured with a 0.46 s reply).
#[test]
fn an_echo_is_not_the_other_side_talking() {
    let over = [
        ("asterisk-unidentified-no-callback", 5.2),
        ("asterisk-queue-youarenext", 13.0),
        ("fsdd-3_jackson_12", 19.0),
        ("asterisk-vm-review", 28.0),
    ];
    // A hybrid's echo path: the direct return and reflections 4, 9 and 19 ms later.
    let smeared = [(0, 1.0), (32, 0.6), (72, -0.35), (150, 0.2)];
    let mut failures = Vec::new();
    for (customer, name, taps) in [
        (&CUSTOMER[..], "answers", &[(0, 1.0)][..]),
        (&over[..], "talks over", &[(0, 1.0)][..]),
        (&CUSTOMER[..], "answers, smeared echo", &smeared[..]),
        (&over[..], "talks over, smeared echo", &smeared[..]),
    ] {
        for (delay_s, erl_db) in [(0.012, 8.0), (0.04, 10.0), (0.205, 15.0), (0.48, 20.0)] {
            let (a, a_spans, c_spans) = echo_call(delay_s, erl_db, customer, taps);
            let conv = a.conversation.as_ref().expect("conversation");
            let channels = a.channels.as_ref().expect("channels");
            let talk = |i: usize| channels[i].metrics.speech.talk_time_s;
            let (agent, cust) = (seconds(&a_spans), seconds(&c_spans));
            let overlap = overlap_s(&a_spans, &c_spans);
            let line = format!(
                "{name}, {delay_s} s, {erl_db} dB: agent {:.2} of {agent:.2} s, customer {:.2} \
                 of {cust:.2} s, overtalk {:.2} of {overlap:.2} s, echoes {:?}",
                talk(0),
                talk(1),
                conv.overtalk_s,
                conv.echoes
            );
            eprintln!("{line}");
            // Under a strong echo, double talk is under-counted (see above), never over.
            let short = if overlap > 1.0 && erl_db < 15.0 {
                0.65
            } else {
                0.5
            };
            let within = |got: f64, truth: f64| got <= truth + 0.5 && got >= truth - short;
            if (talk(0) - agent).abs() > 0.5
                || !within(talk(1), cust)
                || !within(conv.overtalk_s, overlap)
                || conv.echoes.is_empty()
            {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Calls without an echo path: two talkers taking turns, answering each other at once, over
/// each other, in line noise from -60 to -35 dBFS. No echo reported in either direction.
#[test]
fn no_echo_is_found_where_there_is_none() {
    type Parts<'a> = &'a [(&'a str, f64)];
    let layouts: [(Parts, Parts); 3] = [
        (
            &[
                ("asterisk-queue-youarenext", 0.5),
                ("asterisk-vm-mailboxfull", 12.0),
            ],
            &[
                ("asterisk-unidentified-no-callback", 4.6),
                ("fsdd-3_jackson_12", 16.8),
            ],
        ),
        (
            &[
                ("asterisk-privacy-prompt", 0.5),
                ("asterisk-vm-review", 9.0),
            ],
            &[("fsdd-9_nicolas_8", 1.5), ("asterisk-demo-echotest", 10.0)],
        ),
        (
            &[
                ("fsdd-3_jackson_12", 0.5),
                ("asterisk-queue-youarenext", 7.0),
            ],
            &[("fsdd-9_nicolas_8", 3.0), ("asterisk-vm-mailboxfull", 8.0)],
        ),
    ];
    for (i, (agent_parts, customer_parts)) in layouts.into_iter().enumerate() {
        let (agent, _) = track(40.0, agent_parts);
        let (customer, _) = track(40.0, customer_parts);
        for (j, noise_gain) in [0.0f32, 5e-3, 2e-2].into_iter().enumerate() {
            let noisy = |x: &[f32], seed: u64| -> Vec<f32> {
                let n = white(x.len(), seed);
                x.iter().zip(n).map(|(v, n)| v + noise_gain * n).collect()
            };
            let a = analyze(
                &interleave(&[
                    &noisy(&agent, 10 + j as u64),
                    &noisy(&customer, 20 + j as u64),
                ]),
                2,
            );
            let conv = a.conversation.as_ref().unwrap();
            assert!(
                conv.echoes.is_empty(),
                "call {i}, noise {noise_gain}: {:?}",
                conv.echoes
            );
            assert!(!codes(&a).contains(&"echo"));
        }
    }
}

/// The echo test on the test half's voices (issue 22: decided on the dev prompts above, reported
/// here): each test voice's first three utterances as the agent (at -26 dBFS, 0.5, 12 and 26 s),
/// the next voice's as the customer, answering 0.5 s after each or talking over the agent at its
/// level, under the agent's echo 8-20 dB down and 12-480 ms late. The customer's talk time stays
/// within 0.5 s of the truth and the echo is found, in every case. (Before the voice was looked
/// for in bands of its power, talking over a strong echo came out up to 1.02 s short here; before
/// the edges stopped at the line's noise, an answer 0.3 s after the echo's tail took the tail in:
/// 0.83 s over.)
#[test]
fn an_echo_is_not_the_other_side_talking_on_the_test_voices() {
    use crate::music::{voices, Half};
    let vs = voices(Half::Test);
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for v in 0..vs.len() {
        let (agent_voice, customer_voice) = (&vs[v], &vs[(v + 1) % vs.len()]);
        let place = |voice: &[Vec<f32>], at: [f64; 3]| {
            let mut x = vec![0.0f32; 48 * RATE as usize];
            let mut spans = Vec::new();
            for (k, &at) in at.iter().enumerate() {
                let u = &voice[k % voice.len()];
                let gain = (10f64.powf(-26.0 / 10.0) / active_power(u, RATE)).sqrt() as f32;
                let start = (at * RATE as f64) as usize;
                let end = (start + u.len()).min(x.len());
                for (y, &s) in x[start..end].iter_mut().zip(u) {
                    *y = s * gain;
                }
                spans.push((start, end));
            }
            let len = x.len();
            for (y, n) in x.iter_mut().zip(white(len, 7)) {
                *y += n * 1e-3; // -60 dBFS of line noise
            }
            (x, spans)
        };
        let (agent, a_spans) = place(agent_voice, [0.5, 12.0, 26.0]);
        let ends: Vec<f64> = a_spans.iter().map(|s| s.1 as f64 / RATE as f64).collect();
        for (layout, at) in [
            ("answers", [ends[0] + 0.5, ends[1] + 0.5, ends[2] + 0.5]),
            ("talks over", [2.0, 13.0, 27.0]),
        ] {
            let (customer, c_spans) = place(customer_voice, at);
            let truth = seconds(&c_spans);
            for (delay_s, erl_db) in [(0.012, 8.0), (0.04, 10.0), (0.205, 15.0), (0.48, 20.0)] {
                let d = (delay_s * RATE as f64).round() as usize;
                let gain = 10f32.powf(-(erl_db as f32) / 20.0);
                let mut with_echo = customer.clone();
                for i in d..with_echo.len() {
                    with_echo[i] += gain * agent[i - d];
                }
                let a = analyze(&interleave(&[&agent, &with_echo]), 2);
                let talk = a.channels.as_ref().expect("channels")[1]
                    .metrics
                    .speech
                    .talk_time_s;
                let found = !a
                    .conversation
                    .as_ref()
                    .expect("conversation")
                    .echoes
                    .is_empty();
                let line = format!(
                    "voice {v}, {layout}, {delay_s} s, {erl_db} dB: customer {talk:.2} of {truth:.2} s, echo found {found}"
                );
                if (talk - truth).abs() > 0.5 || !found {
                    failures.push(line.clone());
                }
                lines.push(line);
            }
        }
    }
    eprintln!("{lines:#?}");
    assert!(failures.is_empty(), "{failures:#?}");
}
