//! Our own RIFF/WAVE reader for integer PCM, IEEE float and G.711.
//!
//! Written here rather than taken from hound or symphonia because both trust the header's
//! sizes, and the files a PBX leaves behind lie: Asterisk's MixMonitor writes a 44-byte header
//! claiming 0 data bytes and patches it only when the call ends, a crashed writer never does,
//! and streaming writers put 0xFFFFFFFF. It reads the data in fixed blocks into a reused
//! buffer, converts each block in a tight monomorphic loop, and never reads past the data.
//!
//! The rule for the data chunk's declared size against what the file holds (`available`, from
//! the data's start to the end of the file), always reading whole frames only:
//! - declared 0: the header was never patched; read all that is there, `header_mismatch`;
//! - declared more than available, and the header is a placeholder (data size 0xFFFFFFFF, or
//!   a RIFF size too small to hold the declared data, such as 36, 8 or 0): the header was
//!   never brought up to date; read all that is there, `header_mismatch`;
//! - declared more than available, with a RIFF size consistent with it: a sensible header
//!   with less data behind it, the file was cut short (by a copy, a full disk); read what is
//!   there, `truncated`, and `frames_hint` keeps the frames the header promised;
//! - declared less than available, followed by something that looks like a chunk (LIST, id3,
//!   ...): the size stands, and what follows is not audio; a RIFF size too small for that
//!   data is still a lie, `header_mismatch`;
//! - declared less than available, followed by anything else: more audio was appended after
//!   the header was written; read it all, `header_mismatch`.
//!
//! A trailing partial frame is dropped. With `header_mismatch`, `frames_hint` is `None`.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::{check_rate, g711, AudioError, AudioInfo, DecodeNotes};

/// Bytes read from the file at a time (rounded down to whole frames).
const BLOCK: usize = 64 * 1024;
/// A fmt chunk larger than this is not a fmt chunk.
const MAX_FMT: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    U8,
    S16,
    S24,
    S32,
    F32,
    F64,
    Law,
}

pub struct WavStream {
    /// Positioned in the data; read in whole blocks, so no buffering of its own.
    file: File,
    path: String,
    encoding: Encoding,
    /// The 256 expanded values, for G.711.
    law: Box<[f32; 256]>,
    channels: usize,
    block_align: usize,
    /// Data bytes (whole frames) still to read.
    remaining: u64,
    /// The reused block buffer.
    bytes: Vec<u8>,
    pub info: AudioInfo,
    pub notes: DecodeNotes,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// The tail shared by every KSDATAFORMAT_SUBTYPE_* GUID whose first two bytes are a format tag.
const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// The name of a format tag we do not decode.
fn codec_name(tag: u16) -> String {
    let known = match tag {
        0x0031 => return "GSM 6.10 (WAV49)".into(),
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG audio",
        0x0055 => "MP3",
        0x0064 => "G.726 ADPCM",
        0x0065 => "G.722 ADPCM",
        _ => return format!("WAV format tag 0x{tag:04X}"),
    };
    format!("WAV format tag 0x{tag:04X} ({known})")
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether 8 bytes at the end of the declared data look like a chunk header: a four-character
/// id of letters, digits and spaces, whose size fits in the file.
fn looks_like_chunk(header: &[u8; 8], at: u64, file_len: u64) -> bool {
    let id_ok = header[..4]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b' ')
        && header[0] != b' ';
    id_ok && at + 8 + le32(header, 4) as u64 <= file_len + 1
}

impl WavStream {
    /// Opens a RIFF/WAVE file whose first 12 bytes were checked by the caller.
    pub fn open(file: File, file_len: u64, path: &str) -> Result<WavStream, AudioError> {
        let io = |source: std::io::Error| AudioError::Io {
            path: path.to_string(),
            source,
        };
        let decode = |what: String| AudioError::Decode {
            path: path.to_string(),
            what,
        };
        let unsupported = |what: String| AudioError::Unsupported {
            path: path.to_string(),
            what,
        };
        let mut reader = BufReader::with_capacity(4096, file);
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut riff = [0u8; 12];
        reader.read_exact(&mut riff).map_err(io)?;
        let riff_size = le32(&riff, 4) as u64;
        let mut pos = 12u64;
        let mut fmt: Option<Vec<u8>> = None;
        let (data_start, declared) = loop {
            if pos + 8 > file_len {
                return Err(match fmt {
                    Some(_) => AudioError::Empty {
                        path: path.to_string(),
                    },
                    None => decode("find a fmt chunk: the file ends first".into()),
                });
            }
            let mut header = [0u8; 8];
            reader.read_exact(&mut header).map_err(io)?;
            pos += 8;
            let size = le32(&header, 4) as u64;
            match &header[..4] {
                b"fmt " => {
                    if fmt.is_some() {
                        return Err(decode("read the header: two fmt chunks".into()));
                    }
                    if size < 16 || size > MAX_FMT || pos + size > file_len {
                        return Err(decode(format!(
                            "read the header: malformed fmt chunk ({size} bytes declared, {} in the file)",
                            file_len - pos
                        )));
                    }
                    let mut body = vec![0u8; size as usize];
                    reader.read_exact(&mut body).map_err(io)?;
                    pos += size;
                    if size % 2 == 1 && pos < file_len {
                        reader.seek_relative(1).map_err(io)?;
                        pos += 1;
                    }
                    fmt = Some(body);
                }
                b"data" => {
                    if fmt.is_none() {
                        return Err(decode(
                            "read the header: data chunk before the fmt chunk".into(),
                        ));
                    }
                    break (pos, size);
                }
                id => {
                    let skip = size + (size & 1);
                    if pos + skip > file_len {
                        return Err(decode(format!(
                            "read the header: chunk {:?} claims {size} bytes, past the end of the file",
                            String::from_utf8_lossy(id)
                        )));
                    }
                    reader.seek_relative(skip as i64).map_err(io)?;
                    pos += skip;
                }
            }
        };
        let fmt = fmt.unwrap_or_default();
        let mut tag = le16(&fmt, 0);
        let channels = le16(&fmt, 2) as usize;
        let rate = le32(&fmt, 4);
        let bits = le16(&fmt, 14);
        if tag == WAVE_FORMAT_EXTENSIBLE {
            if fmt.len() < 40 {
                return Err(decode(
                    "read the header: WAVE_FORMAT_EXTENSIBLE fmt chunk too short".into(),
                ));
            }
            if fmt[26..40] != GUID_TAIL {
                return Err(unsupported(format!(
                    "WAVE_FORMAT_EXTENSIBLE sub-format {:02x?}",
                    &fmt[24..40]
                )));
            }
            tag = le16(&fmt, 24);
        }
        let (encoding, codec) = match (tag, bits) {
            (WAVE_FORMAT_PCM, 8) => (Encoding::U8, "pcm_u8"),
            (WAVE_FORMAT_PCM, 16) => (Encoding::S16, "pcm_s16le"),
            (WAVE_FORMAT_PCM, 24) => (Encoding::S24, "pcm_s24le"),
            (WAVE_FORMAT_PCM, 32) => (Encoding::S32, "pcm_s32le"),
            (WAVE_FORMAT_IEEE_FLOAT, 32) => (Encoding::F32, "pcm_f32le"),
            (WAVE_FORMAT_IEEE_FLOAT, 64) => (Encoding::F64, "pcm_f64le"),
            (WAVE_FORMAT_MULAW, 8) => (Encoding::Law, "pcm_mulaw"),
            (WAVE_FORMAT_ALAW, 8) => (Encoding::Law, "pcm_alaw"),
            (WAVE_FORMAT_PCM, b) => return Err(unsupported(format!("{b}-bit integer PCM"))),
            (WAVE_FORMAT_IEEE_FLOAT, b) => return Err(unsupported(format!("{b}-bit float PCM"))),
            (WAVE_FORMAT_MULAW | WAVE_FORMAT_ALAW, b) => {
                return Err(unsupported(format!("{b}-bit G.711")))
            }
            _ => return Err(unsupported(codec_name(tag))),
        };
        if channels == 0 {
            return Err(decode(
                "read the header: the fmt chunk declares 0 channels".into(),
            ));
        }
        if channels > 16 {
            return Err(unsupported(format!(
                "{channels} channels (1 to 16 supported)"
            )));
        }
        check_rate(path, rate)?;

        let block_align = channels * (bits as usize / 8);
        let available = file_len - data_start;
        let declared_end = data_start + declared;
        // The RIFF size counts from byte 8; a placeholder or never-patched one is smaller than
        // the data it should hold.
        let riff_holds_data = riff_size + 8 >= declared_end;
        let mut notes = DecodeNotes::default();
        let mut length = if declared == 0 {
            notes.header_mismatch = true;
            available
        } else if declared > available {
            if declared == 0xFFFF_FFFF || !riff_holds_data {
                notes.header_mismatch = true;
            } else {
                notes.truncated = true;
            }
            available
        } else if declared < available {
            // Is what follows the declared data another chunk, or more audio?
            let next = declared_end + (declared & 1);
            let mut header = [0u8; 8];
            let follows_chunk = next + 8 <= file_len
                && reader.seek(SeekFrom::Start(next)).is_ok()
                && reader.read_exact(&mut header).is_ok()
                && looks_like_chunk(&header, next, file_len);
            if follows_chunk || available - declared <= 1 {
                notes.header_mismatch = !riff_holds_data;
                declared
            } else {
                notes.header_mismatch = true;
                available
            }
        } else {
            notes.header_mismatch = !riff_holds_data;
            declared
        };
        let promised = declared / block_align as u64;
        length -= length % block_align as u64;
        if length == 0 {
            return Err(AudioError::Empty {
                path: path.to_string(),
            });
        }
        let mut file = reader.into_inner();
        file.seek(SeekFrom::Start(data_start)).map_err(io)?;
        let (full_scale, law) = match codec {
            "pcm_mulaw" => (32124.0 / 32768.0, g711::table(g711::mulaw_to_i16)),
            "pcm_alaw" => (32256.0 / 32768.0, g711::table(g711::alaw_to_i16)),
            _ => (1.0, [0.0; 256]),
        };
        let frames_hint = if notes.header_mismatch {
            None
        } else if notes.truncated {
            Some(promised)
        } else {
            Some(length / block_align as u64)
        };
        Ok(WavStream {
            file,
            path: path.to_string(),
            encoding,
            law: Box::new(law),
            channels,
            block_align,
            remaining: length,
            bytes: vec![0; BLOCK - BLOCK % block_align],
            info: AudioInfo {
                container: "wav".into(),
                codec: codec.into(),
                sample_rate: rate,
                channels: channels as u16,
                full_scale,
                frames_hint,
            },
            notes,
        })
    }

    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        out.clear();
        let mut frames = 0usize;
        while frames < max_frames && self.remaining > 0 {
            let want = ((max_frames - frames) as u64)
                .saturating_mul(self.block_align as u64)
                .min(self.remaining)
                .min(self.bytes.len() as u64) as usize;
            let got = self.fill(want)?;
            if got < want {
                // The file shrank under us: what is there is what there is.
                self.notes.truncated = true;
                self.remaining = 0;
            } else {
                self.remaining -= want as u64;
            }
            let whole = got - got % self.block_align;
            if out.capacity() == 0 {
                out.reserve(max_frames.min(1 << 20) * self.channels);
            }
            self.convert(whole, out);
            frames += whole / self.block_align;
        }
        Ok(frames)
    }

    /// Reads up to `want` bytes into the block buffer; fewer only at the end of the file.
    fn fill(&mut self, want: usize) -> Result<usize, AudioError> {
        let mut got = 0;
        while got < want {
            match self.file.read(&mut self.bytes[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AudioError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(got)
    }

    /// Appends the first `n` bytes of the block buffer to `out` as f32.
    fn convert(&self, n: usize, out: &mut Vec<f32>) {
        let bytes = &self.bytes[..n];
        match self.encoding {
            Encoding::U8 => append(bytes, out, |[b]: [u8; 1]| {
                (b as f32 - 128.0) * (1.0 / 128.0)
            }),
            Encoding::S16 => append(bytes, out, |b: [u8; 2]| {
                i16::from_le_bytes(b) as f32 * (1.0 / 32768.0)
            }),
            Encoding::S24 => append(bytes, out, |[a, b, c]: [u8; 3]| {
                (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 * (1.0 / 8_388_608.0)
            }),
            Encoding::S32 => append(bytes, out, |b: [u8; 4]| {
                i32::from_le_bytes(b) as f32 * (1.0 / 2_147_483_648.0)
            }),
            Encoding::F32 => append(bytes, out, |b: [u8; 4]| finite(f32::from_le_bytes(b))),
            Encoding::F64 => append(
                bytes,
                out,
                |b: [u8; 8]| finite(f64::from_le_bytes(b) as f32),
            ),
            Encoding::Law => {
                let table = &*self.law;
                append(bytes, out, |[b]: [u8; 1]| table[b as usize])
            }
        }
    }
}

/// NaN and infinities (never valid audio) as silence.
fn finite(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Converts `bytes`, `N` per sample, with `f` and appends them to `out`: one monomorphic loop
/// per encoding, which the compiler vectorises.
#[inline(always)]
fn append<const N: usize>(bytes: &[u8], out: &mut Vec<f32>, f: impl Fn([u8; N]) -> f32) {
    let start = out.len();
    let count = bytes.len() / N;
    out.resize(start + count, 0.0);
    for (dst, src) in out[start..].iter_mut().zip(bytes.chunks_exact(N)) {
        let mut sample = [0u8; N];
        sample.copy_from_slice(src);
        *dst = f(sample);
    }
}
