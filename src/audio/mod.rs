//! Decoding recordings into blocks of f32 samples, and resampling for the VAD.
//!
//! Owns every byte read from an audio file: our own RIFF/WAVE reader (`wav`, for the PCM, float
//! and G.711 files PBXs write, including those whose header lies) and symphonia for MP3, FLAC
//! and Ogg Vorbis (`codec`, the only file that names it); rubato is named only in `resample`.
//! Files are probed by content, the extension is a hint. Memory stays bounded whatever the
//! duration: files are read in blocks into reused buffers. It never writes a file, and never
//! panics or hangs on input: a bad file is an [`AudioError`].

mod codec;
pub mod g711;
mod resample;
mod wav;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use resample::Resampler;

/// What a file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// "wav", "mp3", "flac" or "ogg".
    pub container: String,
    /// "pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le", "pcm_mulaw",
    /// "pcm_alaw", "mp3", "flac" or "vorbis".
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// The largest magnitude the codec can produce on our scale (1.0 = full scale): 1.0 for PCM,
    /// float and lossy codecs, 32124/32768 for mu-law, 32256/32768 for A-law.
    pub full_scale: f32,
    /// Frames the container announces, when it does and its header is to be believed.
    pub frames_hint: Option<u64>,
}

/// How decoding went; final once `read` has returned 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeNotes {
    /// A WAV header's sizes disagreed with the file (never patched, a placeholder, or too
    /// small); the real data was read to the end of the file.
    pub header_mismatch: bool,
    /// The file ends before a believable header or container says it should.
    pub truncated: bool,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
}

/// Why a file could not be decoded. Messages read after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("decode {path}: the file holds no audio")]
    Empty { path: String },
    #[error("decode {path}: unsupported format: {what}")]
    Unsupported { path: String, what: String },
    #[error("resample {from} Hz to {to} Hz: {reason}")]
    UnsupportedRate { from: u32, to: u32, reason: String },
    #[error("decode {path}: {what}")]
    Decode { path: String, what: String },
}

impl AudioError {
    /// The report contract's error code: "io", "empty", "unsupported_format" or
    /// "decode_failed".
    pub fn code(&self) -> &'static str {
        match self {
            AudioError::Io { .. } => "io",
            AudioError::Empty { .. } => "empty",
            AudioError::Unsupported { .. } | AudioError::UnsupportedRate { .. } => {
                "unsupported_format"
            }
            AudioError::Decode { .. } => "decode_failed",
        }
    }
}

/// The sample rates we decode; anything else is refused by name.
const RATES: std::ops::RangeInclusive<u32> = 8000..=48000;

fn check_rate(path: &str, rate: u32) -> Result<(), AudioError> {
    if RATES.contains(&rate) {
        Ok(())
    } else {
        Err(AudioError::Unsupported {
            path: path.to_string(),
            what: format!("sample rate {rate} Hz (8000 to 48000 Hz supported)"),
        })
    }
}

enum Inner {
    Wav(wav::WavStream),
    Codec(Box<codec::CodecStream>),
}

/// A streaming decoder over one file.
pub struct Decoder {
    inner: Inner,
}

impl Decoder {
    /// Opens `path`, probing its content (the extension is only a hint), and reads its header.
    pub fn open(path: &Path) -> Result<Decoder, AudioError> {
        let name = path.display().to_string();
        let io = |source: std::io::Error| AudioError::Io {
            path: name.clone(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        if meta.len() == 0 {
            return Err(AudioError::Empty { path: name });
        }
        let mut head = [0u8; 12];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        if got == 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
            let stream = wav::WavStream::open(file, meta.len(), &name)?;
            return Ok(Decoder {
                inner: Inner::Wav(stream),
            });
        }
        if got >= 4 && matches!(&head[..4], b"RIFF" | b"RIFX" | b"RF64") {
            let what = if &head[..4] == b"RIFF" {
                "RIFF file that is not WAVE"
            } else {
                "RIFX/RF64 WAV"
            };
            return Err(AudioError::Unsupported {
                path: name,
                what: what.into(),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase);
        let stream = codec::CodecStream::open(file, &name, ext.as_deref())?;
        Ok(Decoder {
            inner: Inner::Codec(Box::new(stream)),
        })
    }

    pub fn info(&self) -> &AudioInfo {
        match &self.inner {
            Inner::Wav(w) => &w.info,
            Inner::Codec(c) => &c.info,
        }
    }

    /// Clears `out`, then fills it with up to `max_frames` interleaved frames (`channels`
    /// samples each) as f32. Returns the number of frames; 0 means the end of the stream.
    /// Memory is bounded by `max_frames` and one block or packet, whatever the file's length.
    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        match &mut self.inner {
            Inner::Wav(w) => w.read(out, max_frames),
            Inner::Codec(c) => c.read(out, max_frames),
        }
    }

    /// How decoding went; final once `read` has returned 0.
    pub fn notes(&self) -> &DecodeNotes {
        match &self.inner {
            Inner::Wav(w) => &w.notes,
            Inner::Codec(c) => &c.notes,
        }
    }
}
