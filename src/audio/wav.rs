//! Our own RIFF/WAVE reader for PCM, IEEE float and G.711.
//!
//! Written here rather than taken from hound or symphonia because both trust the header's
//! sizes, and the files a PBX leaves behind lie: Asterisk's MixMonitor writes a 44-byte header
//! claiming 0 data bytes and patches it only when the call ends, a crashed writer never does,
//! and streaming writers put 0xFFFFFFFF. We read to the real end of the data instead.
//!
//! The rule for the declared data size against what the file holds:
//! - declared 0 or 0xFFFFFFFF, with audio behind it: `header_mismatch`, read it all;
//! - declared less than the file holds, and what follows is not another chunk: the header was
//!   never brought up to date (`header_mismatch`), read it all; when another chunk (LIST, id3)
//!   follows, that chunk is not audio and the declared size stands, whatever size the chunk
//!   claims (tag writers put 0xFFFFFFFF too), and so do fewer than 8 bytes (a chunk header cut
//!   short, never a recording's worth of audio);
//! - declared more than the file holds: the file was cut short (`truncated`), read what is there.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::{g711, AudioError, AudioInfo, DecodeNotes};

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
    reader: File,
    path: String,
    encoding: Encoding,
    law: Option<Box<[f32; 256]>>,
    channels: usize,
    block_align: usize,
    remaining: u64,
    bytes: Vec<u8>,
    pub info: AudioInfo,
    pub notes: DecodeNotes,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn codec_name(tag: u16) -> String {
    match tag {
        0x0002 => "Microsoft ADPCM".into(),
        0x0011 => "IMA ADPCM".into(),
        0x0031 => "GSM 6.10 (WAV49)".into(),
        0x0040 => "G.721 ADPCM".into(),
        0x0050 => "MPEG audio in WAV".into(),
        0x0055 => "MP3 in WAV".into(),
        0x0064 => "G.726 ADPCM".into(),
        0x0065 => "G.722 ADPCM".into(),
        other => format!("WAV format tag 0x{other:04X}"),
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Whether 8 bytes at a chunk boundary look like a chunk header (a printable four-letter id).
fn looks_like_chunk(header: &[u8]) -> bool {
    header.len() == 8 && header[..4].iter().all(|&c| (0x20..0x7F).contains(&c))
}

/// Ids of the chunks writers put after the data: metadata, padding, cue points.
const CHUNKS_AFTER_DATA: [&[u8; 4]; 14] = [
    b"LIST", b"id3 ", b"ID3 ", b"JUNK", b"junk", b"PAD ", b"FLLR", b"fact", b"cue ", b"bext",
    b"iXML", b"smpl", b"inst", b"cart",
];

/// Whether the 8 bytes just past the declared data, with `rest` bytes after them, are a chunk
/// header rather than more audio. Audio whose bytes read as a printable id is common enough,
/// so the size must agree: it fits in the file, or it is 0xFFFFFFFF (a size nobody knew, as
/// streaming writers put), or the id is one writers use there, whose size is then no evidence
/// (a tag cut short, a size never patched).
fn is_chunk_after_data(header: &[u8], rest: u64) -> bool {
    if !looks_like_chunk(header) {
        return false;
    }
    let size = le32(&header[4..]);
    size as u64 <= rest + 1
        || size == 0xFFFF_FFFF
        || CHUNKS_AFTER_DATA.iter().any(|id| header[..4] == id[..])
}

impl WavStream {
    /// Opens a RIFF/WAVE file whose first 12 bytes were checked by the caller.
    pub fn open(file: File, file_len: u64, path: &str) -> Result<WavStream, AudioError> {
        let io = |source: std::io::Error| AudioError::Io {
            path: path.to_string(),
            source,
        };
        let decode = |what: &str| AudioError::Decode {
            path: path.to_string(),
            what: what.to_string(),
        };
        let mut reader = BufReader::with_capacity(1 << 16, file);
        reader.seek(SeekFrom::Start(12)).map_err(io)?;
        let mut pos = 12u64;
        let mut fmt: Option<Vec<u8>> = None;
        let (data_start, declared) = loop {
            let mut header = [0u8; 8];
            if pos + 8 > file_len {
                return Err(if fmt.is_some() {
                    AudioError::Empty {
                        path: path.to_string(),
                    }
                } else {
                    decode("no fmt chunk before the end of the file")
                });
            }
            reader.read_exact(&mut header).map_err(io)?;
            pos += 8;
            let size = le32(&header[4..]) as u64;
            match &header[..4] {
                b"fmt " => {
                    if !(16..=1024).contains(&size) || pos + size > file_len {
                        return Err(decode("malformed fmt chunk"));
                    }
                    let mut body = vec![0u8; size as usize];
                    reader.read_exact(&mut body).map_err(io)?;
                    pos += size;
                    if size % 2 == 1 && pos < file_len {
                        reader.seek(SeekFrom::Current(1)).map_err(io)?;
                        pos += 1;
                    }
                    fmt = Some(body);
                }
                b"data" => {
                    if fmt.is_none() {
                        return Err(decode("data chunk before the fmt chunk"));
                    }
                    break (pos, size);
                }
                _ => {
                    let skip = size + (size & 1);
                    if pos + skip > file_len {
                        return Err(decode(
                            "chunk runs past the end of the file before any data",
                        ));
                    }
                    reader.seek(SeekFrom::Current(skip as i64)).map_err(io)?;
                    pos += skip;
                }
            }
        };
        let fmt = fmt.unwrap_or_default();
        let mut tag = le16(&fmt[0..]);
        let channels = le16(&fmt[2..]) as usize;
        let rate = le32(&fmt[4..]);
        let bits = le16(&fmt[14..]);
        if tag == WAVE_FORMAT_EXTENSIBLE {
            if fmt.len() < 26 {
                return Err(decode("malformed WAVE_FORMAT_EXTENSIBLE fmt chunk"));
            }
            tag = le16(&fmt[24..]);
        }
        let unsupported = |what: String| AudioError::Unsupported {
            path: path.to_string(),
            what,
        };
        type Law = Option<fn(u8) -> i16>;
        let (encoding, codec, law): (Encoding, &str, Law) = match (tag, bits) {
            (WAVE_FORMAT_PCM, 8) => (Encoding::U8, "pcm_u8", None),
            (WAVE_FORMAT_PCM, 16) => (Encoding::S16, "pcm_s16le", None),
            (WAVE_FORMAT_PCM, 24) => (Encoding::S24, "pcm_s24le", None),
            (WAVE_FORMAT_PCM, 32) => (Encoding::S32, "pcm_s32le", None),
            (WAVE_FORMAT_IEEE_FLOAT, 32) => (Encoding::F32, "pcm_f32le", None),
            (WAVE_FORMAT_IEEE_FLOAT, 64) => (Encoding::F64, "pcm_f64le", None),
            (WAVE_FORMAT_MULAW, 8) => (Encoding::Law, "pcm_mulaw", Some(g711::mulaw_to_i16)),
            (WAVE_FORMAT_ALAW, 8) => (Encoding::Law, "pcm_alaw", Some(g711::alaw_to_i16)),
            (
                WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT | WAVE_FORMAT_MULAW | WAVE_FORMAT_ALAW,
                b,
            ) => {
                return Err(unsupported(format!(
                    "{} with {b} bits per sample",
                    codec_name(tag)
                )))
            }
            _ => return Err(unsupported(codec_name(tag))),
        };
        if channels == 0 || channels > 16 {
            return Err(decode(&format!("{channels} channels in the fmt chunk")));
        }
        if !(8000..=48000).contains(&rate) {
            return Err(unsupported(format!(
                "sample rate {rate} Hz (8 to 48 kHz supported)"
            )));
        }
        let block_align = channels * (bits as usize / 8);
        let available = file_len - data_start;
        let mut notes = DecodeNotes::default();
        let mut length = if declared == 0 || declared == 0xFFFF_FFFF {
            if available > 0 {
                notes.header_mismatch = true;
            }
            available
        } else if declared > available {
            notes.truncated = true;
            available
        } else if declared < available {
            // Is what follows the declared data another chunk, or more audio?
            let next = data_start + declared + (declared & 1);
            let mut header = [0u8; 8];
            let follows_chunk = next + 8 <= file_len
                && reader.seek(SeekFrom::Start(next)).is_ok()
                && reader.read_exact(&mut header).is_ok()
                && is_chunk_after_data(&header, file_len - next - 8);
            if follows_chunk || available - declared < 8 {
                declared
            } else {
                notes.header_mismatch = true;
                available
            }
        } else {
            declared
        };
        length -= length % block_align as u64;
        if length == 0 {
            return Err(AudioError::Empty {
                path: path.to_string(),
            });
        }
        let mut reader = reader.into_inner();
        reader.seek(SeekFrom::Start(data_start)).map_err(io)?;
        let full_scale = match codec {
            "pcm_mulaw" => 32124.0 / 32768.0,
            "pcm_alaw" => 32256.0 / 32768.0,
            _ => 1.0,
        };
        Ok(WavStream {
            reader,
            path: path.to_string(),
            encoding,
            law: law.map(|l| Box::new(g711::table(l))),
            channels,
            block_align,
            remaining: length,
            bytes: Vec::new(),
            info: AudioInfo {
                container: "wav".into(),
                codec: codec.into(),
                sample_rate: rate,
                channels: channels as u16,
                full_scale,
                frames_hint: (!notes.header_mismatch).then_some(length / block_align as u64),
            },
            notes,
        })
    }

    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        out.clear();
        let want = (max_frames as u64 * self.block_align as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        self.bytes.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.reader.read(&mut self.bytes[got..want]) {
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
        if got < want {
            // The file shrank under us: what is there is what there is.
            self.notes.truncated = true;
            self.remaining = 0;
        } else {
            self.remaining -= want as u64;
        }
        let bytes = &self.bytes[..got - got % self.block_align];
        out.reserve(bytes.len());
        match self.encoding {
            Encoding::U8 => out.extend(bytes.iter().map(|&b| (b as f32 - 128.0) / 128.0)),
            Encoding::S16 => {
                // Written into place rather than pushed, so that the loop vectorises.
                let start = out.len();
                out.resize(start + bytes.len() / 2, 0.0);
                for (o, b) in out[start..].iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = i16::from_le_bytes([b[0], b[1]]) as f32 * (1.0 / 32768.0);
                }
            }
            Encoding::S24 => out.extend(bytes.chunks_exact(3).map(|b| {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * (1.0 / 8_388_608.0)
            })),
            Encoding::S32 => out.extend(bytes.chunks_exact(4).map(|b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            })),
            Encoding::F32 => out.extend(bytes.chunks_exact(4).map(|b| {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if v.is_finite() {
                    v
                } else {
                    0.0
                }
            })),
            Encoding::F64 => out.extend(bytes.chunks_exact(8).map(|b| {
                let v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                if v.is_finite() {
                    v as f32
                } else {
                    0.0
                }
            })),
            Encoding::Law => {
                let table = self.law.as_deref().copied().unwrap_or([0.0; 256]);
                out.extend(bytes.iter().map(|&b| table[b as usize]))
            }
        }
        Ok(out.len() / self.channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_follows_the_data_is_a_chunk_or_audio() {
        let header = |id: &[u8; 4], size: u32| [id.as_slice(), &size.to_le_bytes()].concat();
        // Metadata chunks, whatever size they claim.
        assert!(is_chunk_after_data(&header(b"LIST", 0xFFFF_FFFF), 0));
        assert!(is_chunk_after_data(&header(b"id3 ", 1 << 20), 10));
        // Any id, with a size that fits or one nobody knew.
        assert!(is_chunk_after_data(&header(b"xtra", 10), 10));
        assert!(is_chunk_after_data(&header(b"xtra", 0xFFFF_FFFF), 10));
        // Audio: printable bytes with a size that cannot be, or bytes no id has.
        assert!(!is_chunk_after_data(&header(b"xtra", 1 << 20), 10));
        assert!(!is_chunk_after_data(
            &[0x01, 0xFF, 0x80, 0x7F, 0, 0, 0, 0],
            10
        ));
    }
}
