//! Redaction (pure): which stretches of a recording to silence, and silencing them.
//!
//! A redacted copy replaces every DTMF tone the analysis found, widened by a margin on each side
//! (a tone's edges as found are within 20 ms; the margin covers them and the key's click), with
//! digital silence on every channel (a digit keyed on one leg is heard, fainter, on the other).
//! Everything outside those stretches is copied sample for sample.

use crate::analysis::model::DtmfEvidence;

/// The stretches (seconds, to the millisecond) to silence: each tone widened by `margin_s` on
/// both sides, kept within `[0, duration_s]`, overlapping ones merged, in order.
pub fn spans(dtmf: &DtmfEvidence, margin_s: f64, duration_s: f64) -> Vec<[f64; 2]> {
    let mut all: Vec<[f64; 2]> = dtmf
        .bursts
        .iter()
        .flat_map(|b| b.tones.iter())
        .map(|t| {
            [
                ms((t[0] - margin_s).max(0.0)),
                ms((t[1] + margin_s).min(duration_s)),
            ]
        })
        .filter(|s| s[1] > s[0])
        .collect();
    all.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let mut merged: Vec<[f64; 2]> = Vec::new();
    for s in all {
        match merged.last_mut() {
            Some(last) if s[0] <= last[1] => last[1] = last[1].max(s[1]),
            _ => merged.push(s),
        }
    }
    merged
}

/// Seconds to the millisecond (the reports' resolution; the margin dwarfs the rounding).
fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The frame range `[start, end)` a span covers at `rate` (the frames whose time lies in it,
/// rounded outwards).
pub fn frames(span: [f64; 2], rate: u32) -> (usize, usize) {
    let r = rate as f64;
    (
        (span[0] * r).floor() as usize,
        (span[1] * r).ceil() as usize,
    )
}

/// Silences the spans in `block`, interleaved frames of `channels` channels starting at frame
/// `first`.
pub fn silence(block: &mut [f32], channels: usize, first: usize, rate: u32, spans: &[[f64; 2]]) {
    let n = block.len() / channels.max(1);
    for &span in spans {
        let (a, b) = frames(span, rate);
        let (lo, hi) = (a.max(first), b.min(first + n));
        if lo < hi {
            block[(lo - first) * channels..(hi - first) * channels]
                .iter_mut()
                .for_each(|v| *v = 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::model::DtmfBurst;

    #[test]
    fn tones_are_widened_merged_and_silenced_on_every_channel() {
        let dtmf = DtmfEvidence {
            digits: 3,
            longest_burst: 3,
            bursts: vec![DtmfBurst {
                start_s: 1.0,
                end_s: 1.5,
                digits: 3,
                channel: None,
                tones: vec![[1.0, 1.1], [1.2, 1.3], [1.9, 2.0]],
            }],
        };
        assert_eq!(spans(&dtmf, 0.1, 2.05), vec![[0.9, 1.4], [1.8, 2.05]]);
        let mut x = vec![1.0f32; 2 * 100];
        silence(&mut x, 2, 50, 100, &[[0.6, 0.7]]);
        let silent: Vec<usize> = (0..100).filter(|&f| x[2 * f] == 0.0).collect();
        assert_eq!(silent, (10..20).collect::<Vec<_>>());
        assert!((0..100).all(|f| x[2 * f] == x[2 * f + 1]));
    }
}
