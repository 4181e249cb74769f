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

/// Converts f32 samples (1.0 = full scale) to the VAD's 16-bit input, appending to `out`.
pub fn to_i16(samples: &[f32], out: &mut Vec<i16>) {
    // `as` saturates (and maps NaN to 0), so no clamp is needed and the loop vectorises.
    out.extend(samples.iter().map(|&x| (x * 32768.0) as i16));
}
