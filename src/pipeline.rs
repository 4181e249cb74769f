//! One recording through the whole analysis: hash the bytes, decode, analyse, report.
//!
//! This is the I/O edge around the pure `analysis` core, shared by `callwarden analyze` and (later)
//! the daemon's workers. It reads the file and nothing else; it never writes.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::analysis::model::{self, DecodeReport, ErrorBody, ErrorReport, Format, Report};
use crate::analysis::{Analyzer, Prompt};
use crate::audio::{AudioError, Decoder};
use crate::config::Config;
use crate::files::{Follow, OpenError};

/// Frames handed from the decoder to the analyser at a time.
const BLOCK_FRAMES: usize = 8192;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Include every speech segment in the report.
    pub segments: bool,
    /// Whether a symlink named as the file is followed: never under the recordings roots.
    pub follow: Follow,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segments: false,
            follow: Follow::Never,
        }
    }
}

/// Why a file could not be analysed; `code` is the contract's error code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub code: &'static str,
    pub message: String,
    /// Trying again later may succeed (a permission fixed, descriptors freed, an I/O error),
    /// unlike a file that is what it is (not audio, a FIFO, a codec we cannot decode).
    pub transient: bool,
    /// The file was gone when it was to be opened (moved or deleted since it was found).
    pub vanished: bool,
}

impl FileError {
    pub fn to_report(&self, file: &str) -> ErrorReport {
        ErrorReport {
            schema: model::SCHEMA.to_string(),
            file: file.to_string(),
            error: ErrorBody {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl From<AudioError> for FileError {
    fn from(e: AudioError) -> FileError {
        FileError {
            code: e.code(),
            message: e.to_string(),
            transient: false,
            vanished: false,
        }
    }
}

/// The configured recording announcements, each prompt decoded and fingerprinted once per
/// process (and again only when its file or its entry changes).
pub fn prompts(config: &Config) -> Result<Vec<Arc<Prompt>>, String> {
    type Key = (
        std::path::PathBuf,
        String,
        u64,
        Option<std::time::SystemTime>,
        u64,
    );
    static CACHE: Mutex<Vec<(Key, Arc<Prompt>)>> = Mutex::new(Vec::new());
    let mut out = Vec::new();
    for a in &config.consent.announcement {
        let meta = std::fs::metadata(&a.file)
            .map_err(|e| format!("announcement {:?}: {}: {e}", a.name, a.file.display()))?;
        let key: Key = (
            a.file.clone(),
            a.name.clone(),
            meta.len(),
            meta.modified().ok(),
            a.within_s.to_bits(),
        );
        let cached = {
            let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| p.clone())
        };
        let prompt = match cached {
            Some(p) => p,
            None => {
                let p = Arc::new(load_prompt(a)?);
                let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
                cache.retain(|(k, _)| !(k.0 == key.0 && k.1 == key.1));
                cache.push((key, p.clone()));
                p
            }
        };
        out.push(prompt);
    }
    Ok(out)
}

/// Whether the configured announcements and beep can be used: what the daemon and `analyze`
/// check before they start (and a reload before it takes a new configuration).
pub fn check(config: &Config) -> Result<(), String> {
    prompts(config)?;
    beep_hz(config)?;
    Ok(())
}

/// The recorder's beep frequency: `[consent.beep]`'s `frequency_hz`, or the strongest
/// frequency of its `file` (found once per process, and again when the file changes).
pub fn beep_hz(config: &Config) -> Result<Option<f64>, String> {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: Mutex<Option<(Key, f64)>> = Mutex::new(None);
    let Some(beep) = &config.consent.beep else {
        return Ok(None);
    };
    let Some(file) = &beep.file else {
        return Ok(beep.frequency_hz);
    };
    let what = |e: String| format!("consent.beep: {}: {e}", file.display());
    let meta = std::fs::metadata(file).map_err(|e| what(e.to_string()))?;
    let key: Key = (file.clone(), meta.len(), meta.modified().ok());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, hz)) = cache.as_ref() {
        if *k == key {
            return Ok(Some(*hz));
        }
    }
    let (mono, rate) = decode_mono(file, 60).map_err(what)?;
    let hz = crate::analysis::tones::dominant_hz(&mono, rate)
        .filter(|hz| (100.0..=3400.0).contains(hz))
        .ok_or_else(|| what("no tone between 100 and 3400 Hz in it".into()))?;
    *cache = Some((key, hz));
    Ok(Some(hz))
}

/// A short sound file's samples, its channels mixed down, and its rate; refused beyond
/// `max_s` seconds.
fn decode_mono(path: &Path, max_s: u32) -> Result<(Vec<f32>, u32), String> {
    let mut decoder = Decoder::open(path).map_err(|e| e.to_string())?;
    let info = decoder.info().clone();
    let channels = info.channels.max(1) as usize;
    let (mut block, mut mono) = (Vec::new(), Vec::new());
    while decoder
        .read(&mut block, BLOCK_FRAMES)
        .map_err(|e| e.to_string())?
        > 0
    {
        mono.extend(
            block
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        if mono.len() > (max_s * info.sample_rate) as usize {
            return Err(format!("longer than {max_s} s: not a prompt"));
        }
    }
    Ok((mono, info.sample_rate))
}

/// Decodes an announcement's file (channels mixed down) and takes its fingerprint.
fn load_prompt(a: &crate::config::AnnouncementConfig) -> Result<Prompt, String> {
    let what = |e: String| format!("announcement {:?}: {}: {e}", a.name, a.file.display());
    // A prompt is seconds long; a file of minutes is not one.
    let (mono, rate) = decode_mono(&a.file, 120).map_err(what)?;
    let len_s = mono.len() as f64 / rate as f64;
    if len_s < 0.5 {
        return Err(what("shorter than half a second: too short to find".into()));
    }
    Ok(Prompt {
        name: a.name.clone(),
        print: crate::analysis::fingerprint::of(&mono, rate),
        len_s,
        within_s: a.within_s,
    })
}

/// SHA-256 of the bytes of the regular file at `path` (never through a symlink), as lowercase
/// hex (what `sha256sum` prints).
pub fn sha256_file(path: &Path) -> Result<String, OpenError> {
    let (mut file, _) = crate::files::open_regular(path, Follow::Never)?;
    sha256_read(&mut file).map_err(|source| OpenError::Io {
        path: crate::recording_path::escape(path.as_os_str().as_encoded_bytes()),
        source,
    })
}

/// SHA-256 of what `file` holds from where it stands to its end.
pub(crate) fn sha256_read(file: &mut std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Analyses the recording at `path`; `name` is how the report names it.
pub fn analyze_file(
    path: &Path,
    name: &str,
    config: &Config,
    options: Options,
) -> Result<Report, FileError> {
    let started = Instant::now();
    // One open for the hash and the decoding: both read the same file, whatever happens to
    // the name meanwhile; a FIFO or device is refused before any read.
    let io = |message: String| FileError {
        code: "io",
        message,
        transient: true,
        vanished: false,
    };
    let (mut file, len) =
        crate::files::open_regular(path, options.follow).map_err(|e| FileError {
            code: "io",
            message: e.to_string(),
            transient: e.is_transient(),
            vanished: matches!(e, OpenError::Missing { .. }),
        })?;
    let sha256 = sha256_read(&mut file).map_err(|e| io(format!("read {}: {e}", path.display())))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io(format!("read {}: {e}", path.display())))?;
    let mut decoder = Decoder::from_file(file, len, path)?;
    let info = decoder.info().clone();
    // An announcement that cannot be read is the configuration's fault, not the recording's:
    // the daemon checks them at start and the recording is tried again once fixed.
    let config_error = |message| FileError {
        code: "announcement",
        message,
        transient: true,
        vanished: false,
    };
    let prompts = prompts(config).map_err(config_error)?;
    let beep = beep_hz(config).map_err(config_error)?;
    let mut analyzer = Analyzer::new(info.sample_rate, info.channels, info.full_scale, config)
        .map_err(|e| FileError {
            code: "unsupported_format",
            message: e.to_string(),
            transient: false,
            vanished: false,
        })?
        .with_prompts(prompts);
    if let Some(hz) = beep {
        analyzer = analyzer.with_beep_hz(hz);
    }
    let mut block = Vec::with_capacity(BLOCK_FRAMES * info.channels as usize);
    let mut frames = 0u64;
    // The analysis keeps a few bytes per 10 ms: what it holds grows with the duration, so the
    // duration is bounded (a sparse file of gigabytes of zeros, a header that claims days).
    let max_frames = (config.analysis.max_duration_s * f64::from(info.sample_rate)) as u64;
    let mut too_long = false;
    loop {
        let want = BLOCK_FRAMES.min(max_frames.saturating_sub(frames) as usize);
        if want == 0 {
            too_long = true;
            break;
        }
        let n = decoder.read(&mut block, want)?;
        if n == 0 {
            break;
        }
        frames += n as u64;
        analyzer.push(&block);
    }
    if frames == 0 {
        return Err(FileError {
            code: "empty",
            message: format!("decode {}: no audio in the file", path.display()),
            transient: false,
            vanished: false,
        });
    }
    let notes = decoder.notes();
    let decode = DecodeReport {
        header_mismatch: notes.header_mismatch,
        truncated: notes.truncated,
        skipped_packets: notes.skipped_packets,
        too_long,
    };
    let analysis = analyzer.finish(config, &decode, options.segments);
    Ok(Report {
        schema: model::SCHEMA.to_string(),
        file: name.to_string(),
        sha256,
        format: Format {
            container: info.container.clone(),
            codec: info.codec.clone(),
            sample_rate: info.sample_rate,
            channels: info.channels,
            duration_s: (analysis.duration_s * 1000.0).round() / 1000.0,
        },
        quality: analysis.quality,
        metrics: analysis.metrics,
        channels: analysis.channels,
        conversation: analysis.conversation,
        evidence: analysis.evidence,
        decode,
        analyzer: model::Analyzer {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_hash: config.digest(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        },
    })
}
