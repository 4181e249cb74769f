//! Decoding recordings into blocks of f32 samples, and resampling for the VAD.
//!
//! Owns every byte read from an audio file: our own WAV reader (`wav`, for the PCM, float and
//! G.711 files PBXs write, including those whose header lies) and symphonia for the rest
//! (`codec`). Memory stays bounded whatever the duration: files are read in blocks. It never
//! writes a file, and never panics on input: a bad file is an [`AudioError`].

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
    /// "wav", "mp3", "flac", "ogg", ...
    pub container: String,
    /// "pcm_s16le", "pcm_mulaw", "mp3", "flac", "vorbis", ...
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
    /// A WAV header's sizes disagreed with the file; the real data was read.
    pub header_mismatch: bool,
    /// The file ends before its header or container says.
    pub truncated: bool,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
}

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
    #[error("decode {path}: {what}")]
    Decode { path: String, what: String },
}

impl AudioError {
    /// The report contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            AudioError::Io { .. } => "io",
            AudioError::Empty { .. } => "empty",
            AudioError::Unsupported { .. } => "unsupported_format",
            AudioError::Decode { .. } => "decode_failed",
        }
    }
}

enum Inner {
    Wav(wav::WavStream),
    // Boxed: it holds symphonia's reader state, a look-ahead packet among it.
    Codec(Box<codec::CodecStream>),
}

/// A streaming decoder over one file.
pub struct Decoder {
    inner: Inner,
}

impl Decoder {
    /// Opens the regular file at `path` (a symlink the caller named is followed) and decodes it.
    pub fn open(path: &Path) -> Result<Decoder, AudioError> {
        let (file, len) = crate::files::open_regular(path, crate::files::Follow::Symlinks)
            .map_err(|e| AudioError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Decoder::from_file(file, len, path)
    }

    /// Decodes an open regular file of `len` bytes, read from its start; `path` names it in
    /// errors and gives the extension.
    pub fn from_file(mut file: File, len: u64, path: &Path) -> Result<Decoder, AudioError> {
        let name = path.display().to_string();
        let io = |source: std::io::Error| AudioError::Io {
            path: name.clone(),
            source,
        };
        if len == 0 {
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
            let stream = wav::WavStream::open(file, len, &name)?;
            return Ok(Decoder {
                inner: Inner::Wav(stream),
            });
        }
        if got >= 4 && (&head[..4] == b"RIFF" || &head[..4] == b"RF64") {
            return Err(AudioError::Unsupported {
                path: name,
                what: "RIFF file that is not a plain WAVE".into(),
            });
        }
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
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

    /// Clears `out`, then fills it with up to `max_frames` interleaved frames as f32.
    /// Returns the number of frames; 0 means the end of the stream.
    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        match &mut self.inner {
            Inner::Wav(w) => w.read(out, max_frames),
            Inner::Codec(c) => c.read(out, max_frames),
        }
    }

    pub fn notes(&self) -> &DecodeNotes {
        match &self.inner {
            Inner::Wav(w) => &w.notes,
            Inner::Codec(c) => &c.notes,
        }
    }
}
