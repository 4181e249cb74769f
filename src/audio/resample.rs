//! Adapter for `rubato` (the only place that names it): streaming mono resampling, used to
//! feed the WebRTC VAD at 8 kHz when a file's rate is one the VAD does not take.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use super::AudioError;

/// Input frames per FFT chunk.
const CHUNK: usize = 1024;

pub struct Resampler {
    inner: Fft<f32>,
    pending: Vec<f32>,
    out: Vec<f32>,
}

impl Resampler {
    pub fn new(from_rate: u32, to_rate: u32) -> Result<Resampler, AudioError> {
        let inner = Fft::<f32>::new(
            from_rate as usize,
            to_rate as usize,
            CHUNK,
            1,
            FixedSync::Input,
        )
        .map_err(|e| AudioError::Unsupported {
            path: String::new(),
            what: format!("resampling {from_rate} Hz to {to_rate} Hz: {e}"),
        })?;
        let out = vec![0.0; inner.output_frames_max()];
        Ok(Resampler {
            inner,
            pending: Vec::with_capacity(2 * CHUNK),
            out,
        })
    }

    /// Appends the resampled form of `input` to `out`; keeps what does not fill a chunk yet.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let frames_out = self.inner.output_frames_next();
            let chunk = &self.pending[start..start + need];
            let (Ok(src), Ok(mut dst)) = (
                InterleavedSlice::new(chunk, 1, need),
                InterleavedSlice::new_mut(&mut self.out[..frames_out], 1, frames_out),
            ) else {
                break;
            };
            match self.inner.process_into_buffer(&src, &mut dst, None) {
                Ok((_, written)) => out.extend_from_slice(&self.out[..written]),
                Err(_) => break,
            }
            start += need;
        }
        self.pending.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_frequency_and_the_length_scales() {
        let rate_in = 44100.0f32;
        let input: Vec<f32> = (0..44100)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate_in).sin() * 0.5)
            .collect();
        let mut r = Resampler::new(44100, 8000).unwrap();
        let mut out = Vec::new();
        for c in input.chunks(777) {
            r.process(c, &mut out);
        }
        // All but the last partial chunk comes out.
        assert!(out.len() > 7500 && out.len() <= 8000, "{}", out.len());
        let tail = &out[2000..];
        let crossings = tail
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        let hz = crossings as f32 * 8000.0 / tail.len() as f32;
        assert!((hz - 440.0).abs() < 5.0, "{hz}");
    }
}
