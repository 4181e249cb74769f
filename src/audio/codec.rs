//! Adapter for symphonia (the only place that names it): MP3, FLAC, Ogg Vorbis and anything
//! else it can probe, decoded packet by packet into interleaved f32.
//!
//! Decode errors are expected in real files: an `UnexpectedEof` at the end of a cut stream is
//! the end of data (and the file is `truncated`), one bad packet is skipped and counted,
//! `ResetRequired` makes a new decoder, for the next stream of a chained Ogg file when the
//! reader says it. A stream that stops making progress ends in an error, never a hang.
//!
//! In Ogg, where a packet ends is told by its page's granule position, and some writers put -1
//! (or garbage) on pages that end packets: symphonia then trims those packets away whole. The
//! only trim Ogg needs is the encoder's padding at the very end, so an end trim is believed on
//! the last packet of a stream only.

use std::fs::File;

use symphonia::core::codecs::audio::well_known::{CODEC_ID_FLAC, CODEC_ID_MP3, CODEC_ID_VORBIS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::Duration;

use super::{AudioError, AudioInfo, DecodeNotes};

/// Consecutive undecodable packets after which a file is given up.
const MAX_BAD_PACKETS: u32 = 100;
/// Packets in a row that yield no audio after which a file is given up.
const MAX_EMPTY_PACKETS: u32 = 10_000;

pub struct CodecStream {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    params: AudioCodecParameters,
    track_id: u32,
    path: String,
    /// Ogg, whose end trims come from granule positions (see the module docs).
    ogg: bool,
    /// What the reader gave after a packet it was asked about, not yet used.
    peeked: Option<symphonia::core::errors::Result<Option<Packet>>>,
    decoded: Vec<f32>,
    scratch: Vec<f32>,
    offset: usize,
    /// Frames decoded so far, handed out or still buffered.
    decoded_frames: u64,
    /// Frames the container announces for all its streams so far, when it does.
    expected: Option<u64>,
    done: bool,
    pub info: AudioInfo,
    pub notes: DecodeNotes,
}

fn decode_error(path: &str, what: impl std::fmt::Display) -> AudioError {
    AudioError::Decode {
        path: path.to_string(),
        what: what.to_string(),
    }
}

/// A frame count the container announces, unless it is a negative one read as unsigned (an Ogg
/// granule position of -1 on the last page says "no count", not 2^64 - 1 frames).
fn believable(frames: Option<u64>) -> Option<u64> {
    frames.filter(|&n| n < 1 << 63)
}

fn unsupported(path: &str, what: impl std::fmt::Display) -> AudioError {
    AudioError::Unsupported {
        path: path.to_string(),
        what: what.to_string(),
    }
}

impl CodecStream {
    pub fn open(
        file: File,
        path: &str,
        extension: Option<&str>,
    ) -> Result<CodecStream, AudioError> {
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                Error::Unsupported(_) => unsupported(path, "not a recognised audio container"),
                Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    unsupported(path, "not a recognised audio container")
                }
                other => decode_error(path, format!("read the container: {other}")),
            })?;
        let container = reader.format_info().short_name.to_string();
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported(path, "no audio track"))?;
        let track_id = track.id;
        let frames_hint = believable(track.num_frames);
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => return Err(unsupported(path, "no audio track")),
        };
        let codec = match params.codec {
            c if c == CODEC_ID_MP3 => "mp3".to_string(),
            c if c == CODEC_ID_FLAC => "flac".to_string(),
            c if c == CODEC_ID_VORBIS => "vorbis".to_string(),
            c => format!("{c}").to_lowercase(),
        };
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|_| unsupported(path, format!("codec {codec}")))?;
        let mut stream = CodecStream {
            reader,
            decoder,
            params: params.clone(),
            track_id,
            path: path.to_string(),
            ogg: container == "ogg",
            peeked: None,
            decoded: Vec::new(),
            scratch: Vec::new(),
            offset: 0,
            decoded_frames: 0,
            expected: frames_hint,
            done: false,
            info: AudioInfo {
                container,
                codec,
                sample_rate: params.sample_rate.unwrap_or(0),
                channels: params.channels.as_ref().map_or(0, |c| c.count() as u16),
                full_scale: 1.0,
                frames_hint,
            },
            notes: DecodeNotes::default(),
        };
        // Some containers learn the rate and layout only from the first packet.
        if stream.info.sample_rate == 0 || stream.info.channels == 0 {
            stream.fill()?;
        }
        if stream.info.channels == 0 {
            return Err(AudioError::Empty {
                path: path.to_string(),
            });
        }
        if !(8000..=48000).contains(&stream.info.sample_rate) {
            return Err(unsupported(
                path,
                format!(
                    "sample rate {} Hz (8 to 48 kHz supported)",
                    stream.info.sample_rate
                ),
            ));
        }
        Ok(stream)
    }

    /// Decodes packets until some audio is buffered or the stream ends.
    fn fill(&mut self) -> Result<(), AudioError> {
        let mut bad = 0;
        let mut empty = 0;
        while !self.done && self.offset >= self.decoded.len() {
            self.decoded.clear();
            self.offset = 0;
            let next = match self.peeked.take() {
                Some(next) => next,
                None => self.reader.next_packet(),
            };
            let mut packet = match next {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.finish();
                    break;
                }
                Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // Readers end a complete stream with `None`: this one was cut short.
                    self.notes.truncated = true;
                    self.finish();
                    break;
                }
                Err(Error::ResetRequired) => {
                    // The reader's tracks changed: the next stream of a chained file.
                    self.next_stream()?;
                    continue;
                }
                Err(Error::DecodeError(_)) => {
                    self.skip(&mut bad)?;
                    continue;
                }
                Err(e) => return Err(decode_error(&self.path, e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            if self.ogg && packet.trim_end > Duration::ZERO {
                self.check_end_trim(&mut packet);
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    bad = 0;
                    let spec = buf.spec();
                    let channels = spec.channels().count() as u16;
                    if self.info.channels == 0 {
                        self.info.channels = channels;
                    }
                    if self.info.sample_rate == 0 {
                        self.info.sample_rate = spec.rate();
                    }
                    if channels != self.info.channels {
                        return Err(decode_error(
                            &self.path,
                            format!(
                                "channel count changed from {} to {channels}",
                                self.info.channels
                            ),
                        ));
                    }
                    if buf.frames() == 0 {
                        empty += 1;
                        if empty > MAX_EMPTY_PACKETS {
                            return Err(decode_error(
                                &self.path,
                                "no audio in thousands of packets",
                            ));
                        }
                        continue;
                    }
                    buf.copy_to_vec_interleaved(&mut self.scratch);
                    self.decoded_frames += buf.frames() as u64;
                    let n = buf.frames() * channels as usize;
                    self.decoded
                        .extend_from_slice(&self.scratch[..n.min(self.scratch.len())]);
                }
                Err(Error::DecodeError(_)) => self.skip(&mut bad)?,
                Err(Error::ResetRequired) => self.reset()?,
                Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.finish();
                }
                Err(e) => return Err(decode_error(&self.path, e)),
            }
        }
        Ok(())
    }

    /// Keeps an Ogg packet's end trim only where it can be the encoder's padding: on the last
    /// packet of its stream, and short of the whole packet. Elsewhere it comes from a granule
    /// position of -1 or garbage, and would drop real audio.
    fn check_end_trim(&mut self, packet: &mut Packet) {
        let next = self.reader.next_packet();
        let last = !matches!(&next, Ok(Some(p)) if p.track_id == self.track_id);
        self.peeked = Some(next);
        if !last || packet.dur == Duration::ZERO {
            packet.dur = packet.dur.saturating_add(packet.trim_end);
            packet.trim_end = Duration::ZERO;
        }
    }

    /// Follows the reader to its new default audio track (the next stream of a chained Ogg
    /// file), with a new decoder. Its rate and channels must be the first stream's: the
    /// analysis is of one signal.
    fn next_stream(&mut self) -> Result<(), AudioError> {
        let track = self
            .reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| decode_error(&self.path, "a chained stream without an audio track"))?;
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => {
                return Err(decode_error(
                    &self.path,
                    "a chained stream without an audio track",
                ))
            }
        };
        let rate = params.sample_rate.unwrap_or(self.info.sample_rate);
        if self.info.sample_rate != 0 && rate != self.info.sample_rate {
            return Err(decode_error(
                &self.path,
                format!(
                    "a chained stream changes the sample rate from {} to {rate} Hz",
                    self.info.sample_rate
                ),
            ));
        }
        let channels = params
            .channels
            .as_ref()
            .map_or(self.info.channels, |c| c.count() as u16);
        if self.info.channels != 0 && channels != self.info.channels {
            return Err(decode_error(
                &self.path,
                format!(
                    "a chained stream changes the channel count from {} to {channels}",
                    self.info.channels
                ),
            ));
        }
        if track.id != self.track_id {
            // A new stream: what it announces adds to what came before. The same track after a
            // reset is the same stream, already counted.
            self.expected = self
                .expected
                .zip(believable(track.num_frames))
                .map(|(a, b)| a.saturating_add(b));
        }
        self.track_id = track.id;
        self.params = params;
        self.reset()
    }

    fn skip(&mut self, bad: &mut u32) -> Result<(), AudioError> {
        self.notes.skipped_packets += 1;
        *bad += 1;
        if *bad > MAX_BAD_PACKETS {
            return Err(decode_error(
                &self.path,
                format!("{MAX_BAD_PACKETS} packets in a row failed to decode"),
            ));
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), AudioError> {
        self.decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&self.params, &AudioDecoderOptions::default())
            .map_err(|e| decode_error(&self.path, format!("reset the decoder: {e}")))?;
        Ok(())
    }

    /// The end of the stream. Called from inside `read`, before the frames of its last block
    /// are handed out: what was decoded, not what was handed out, is what the file held.
    fn finish(&mut self) {
        self.done = true;
        if let Some(expected) = self.expected {
            // Lossy codecs pad a little; a real cut loses much more than a packet.
            if self.decoded_frames + 4096 < expected {
                self.notes.truncated = true;
            }
        }
    }

    pub fn read(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize, AudioError> {
        out.clear();
        let channels = self.info.channels.max(1) as usize;
        while out.len() < max_frames * channels {
            if self.offset >= self.decoded.len() {
                self.fill()?;
                if self.offset >= self.decoded.len() {
                    break;
                }
            }
            let take = (max_frames * channels - out.len()).min(self.decoded.len() - self.offset);
            out.extend_from_slice(&self.decoded[self.offset..self.offset + take]);
            self.offset += take;
        }
        Ok(out.len() / channels)
    }
}
