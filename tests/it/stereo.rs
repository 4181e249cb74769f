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
    // Both sides speak: not one-sided; the whole-call speech is the union of both.
    assert!(!a.quality.flags.iter().any(|f| f.code == "one_sided"));
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
