//! Adapter for the WebRTC voice-activity detector (`webrtc-vad`): the only place that names it.
//!
//! It takes f32 frames at any of the VAD's rates (8, 16, 32, 48 kHz) and answers speech or not.
//! A `Vad` holds a raw C pointer, so each analyser owns its own and never shares it across threads.

use crate::config::VadMode;

/// Sample rates the WebRTC VAD accepts.
pub const RATES: [u32; 4] = [8000, 16000, 32000, 48000];

pub struct Vad {
    inner: webrtc_vad::Vad,
}

impl Vad {
    /// A detector for `rate`, which must be one of [`RATES`].
    pub fn new(rate: u32, mode: VadMode) -> Option<Vad> {
        let rate = match rate {
            8000 => webrtc_vad::SampleRate::Rate8kHz,
            16000 => webrtc_vad::SampleRate::Rate16kHz,
            32000 => webrtc_vad::SampleRate::Rate32kHz,
            48000 => webrtc_vad::SampleRate::Rate48kHz,
            _ => return None,
        };
        let mode = match mode {
            VadMode::Quality => webrtc_vad::VadMode::Quality,
            VadMode::LowBitrate => webrtc_vad::VadMode::LowBitrate,
            VadMode::Aggressive => webrtc_vad::VadMode::Aggressive,
            VadMode::VeryAggressive => webrtc_vad::VadMode::VeryAggressive,
        };
        Some(Vad {
            inner: webrtc_vad::Vad::new_with_rate_and_mode(rate, mode),
        })
    }

    /// Whether `frame` (10, 20 or 30 ms of 16-bit samples at the detector's rate) holds
    /// speech. A frame of any other length is not speech.
    pub fn is_speech(&mut self, frame: &[i16]) -> bool {
        !frame.is_empty() && self.inner.is_voice_segment(frame).unwrap_or(false)
    }
}

/// Converts f32 samples (1.0 = full scale) to the VAD's 16-bit input, appending to `out`:
/// rounded to the nearest step (16-bit PCM comes back exactly as it was decoded), clamped to
/// the 16-bit range. A NaN (the decoders never give one) comes out as its payload's low bits:
/// 0 for the usual NaN.
pub fn to_i16(samples: &[f32], out: &mut Vec<i16>) {
    // Adding 1.5 * 2^23 leaves the rounded value, offset, in the low bits of an f32's mantissa
    // (exact for |v| < 2^22). This is the textbook float-to-int trick, written here because
    // the saturating `as` does not vectorise without AVX-512: it was 4 % of the analysis.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    out.extend(samples.iter().map(|&x| {
        let v = (x * 32768.0).clamp(-32768.0, 32767.0) + MAGIC;
        (v.to_bits() as i32).wrapping_sub(MAGIC_BITS) as i16
    }));
}

#[cfg(test)]
mod tests {
    use super::to_i16;

    #[test]
    fn sixteen_bit_samples_come_back_exactly_and_the_rest_rounds_and_clamps() {
        let every: Vec<f32> = (i16::MIN..=i16::MAX).map(|k| k as f32 / 32768.0).collect();
        let mut out = vec![7];
        to_i16(&every, &mut out);
        assert_eq!(out[0], 7, "appends");
        assert!(out[1..]
            .iter()
            .zip(i16::MIN..=i16::MAX)
            .all(|(&a, b)| a == b));

        let step = 1.0 / 32768.0;
        let odd = [
            (0.4 * step, 0),
            (0.6 * step, 1),
            (-0.6 * step, -1),
            (100.3 * step, 100),
            (1.0, 32767),
            (2.0, 32767),
            (-1.0, -32768),
            (-7.5, -32768),
            (f32::INFINITY, 32767),
            (f32::NEG_INFINITY, -32768),
        ];
        let mut got = Vec::new();
        to_i16(&odd.map(|(x, _)| x), &mut got);
        assert_eq!(got, odd.map(|(_, k)| k));
        got.clear();
        to_i16(&[f32::NAN], &mut got);
        assert_eq!(got, [0]);
    }
}
