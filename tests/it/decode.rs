//! Decoding: every format to the same measurements, the files PBXs really leave behind, and
//! every malformed input to a clean error.

use std::path::{Path, PathBuf};

use callwarden::audio::{AudioError, Decoder};
use callwarden::config::Config;
use callwarden::pipeline::{self, Options};

use crate::support::assets;

fn formats(name: &str) -> PathBuf {
    assets().join("formats").join(name)
}

/// All samples of a file, interleaved, with its notes.
fn decode_all(path: &Path) -> Result<(Vec<f32>, callwarden::audio::DecodeNotes), AudioError> {
    decode_in_blocks(path, 1000)
}

/// All samples of a file read `frames` at a time, interleaved, with its notes.
fn decode_in_blocks(
    path: &Path,
    frames: usize,
) -> Result<(Vec<f32>, callwarden::audio::DecodeNotes), AudioError> {
    let mut d = Decoder::open(path)?;
    let mut all = Vec::new();
    let mut block = Vec::new();
    while d.read(&mut block, frames)? > 0 {
        all.extend_from_slice(&block);
    }
    Ok((all, d.notes().clone()))
}

fn original() -> Vec<i16> {
    hound::WavReader::open(formats("speech.wav"))
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect()
}

/// A WAV file made by hand, so headers can lie.
struct Wav {
    tag: u16,
    bits: u16,
    channels: u16,
    rate: u32,
    data: Vec<u8>,
    declared: Option<u32>,
    riff: Option<u32>,
    extensible: bool,
    after: Vec<u8>,
}

impl Wav {
    fn pcm16(samples: &[i16], channels: u16, rate: u32) -> Wav {
        Wav {
            tag: 1,
            bits: 16,
            channels,
            rate,
            data: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            declared: None,
            riff: None,
            extensible: false,
            after: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let block = self.channels as u32 * self.bits as u32 / 8;
        let mut fmt = Vec::new();
        fmt.extend((if self.extensible { 0xFFFEu16 } else { self.tag }).to_le_bytes());
        fmt.extend(self.channels.to_le_bytes());
        fmt.extend(self.rate.to_le_bytes());
        fmt.extend((self.rate * block).to_le_bytes());
        fmt.extend((block as u16).to_le_bytes());
        fmt.extend(self.bits.to_le_bytes());
        if self.extensible {
            fmt.extend(22u16.to_le_bytes());
            fmt.extend(self.bits.to_le_bytes());
            fmt.extend(0u32.to_le_bytes());
            fmt.extend(self.tag.to_le_bytes());
            fmt.extend([
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ]);
        }
        let mut out = Vec::new();
        out.extend(b"RIFF");
        let riff = 4 + 8 + fmt.len() + 8 + self.data.len() + self.after.len();
        out.extend(self.riff.unwrap_or(riff as u32).to_le_bytes());
        out.extend(b"WAVE");
        out.extend(b"fmt ");
        out.extend((fmt.len() as u32).to_le_bytes());
        out.extend(&fmt);
        out.extend(b"data");
        out.extend(
            self.declared
                .unwrap_or(self.data.len() as u32)
                .to_le_bytes(),
        );
        out.extend(&self.data);
        out.extend(&self.after);
        out
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.bytes()).unwrap();
        path
    }
}

fn analyze(path: &Path) -> callwarden::analysis::model::Report {
    pipeline::analyze_file(path, "t", &Config::default(), Options::default())
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Same measurements as the PCM original, within tolerances that lossy codecs can meet.
fn check_same(path: &Path, level_tol_db: f64) {
    let base = analyze(&formats("speech.wav"));
    let r = analyze(path);
    let (b, m) = (&base.metrics, &r.metrics);
    let name = path.display();
    assert!(
        (r.format.duration_s - base.format.duration_s).abs() < 0.08,
        "{name}: duration {}",
        r.format.duration_s
    );
    assert!(
        (m.speech.talk_time_s - b.speech.talk_time_s).abs() <= 0.1,
        "{name}: talk {}",
        m.speech.talk_time_s
    );
    assert!(
        (m.speech.start_s.unwrap() - b.speech.start_s.unwrap()).abs() <= 0.03,
        "{name}: start"
    );
    assert!(
        (m.speech.end_s.unwrap() - b.speech.end_s.unwrap()).abs() <= 0.06,
        "{name}: end"
    );
    let (lr, lb) = (
        m.level.active_speech_dbfs.unwrap(),
        b.level.active_speech_dbfs.unwrap(),
    );
    assert!(
        (lr - lb).abs() <= level_tol_db,
        "{name}: level {lr:.2} vs {lb:.2}"
    );
    let (wr, wb) = (
        m.clarity.bandwidth_hz.unwrap(),
        b.clarity.bandwidth_hz.unwrap(),
    );
    assert!((wr - wb).abs() <= 200.0, "{name}: bandwidth {wr} vs {wb}");
    assert_eq!(r.quality.grade, base.quality.grade, "{name}");
}

#[test]
fn every_format_decodes_to_the_same_measurements() {
    for (file, codec, tol) in [
        ("speech.flac", "flac", 0.1),
        ("speech.mp3", "mp3", 1.0),
        ("speech.ogg", "vorbis", 0.5),
        ("speech-mulaw.wav", "pcm_mulaw", 0.2),
        ("speech-alaw.wav", "pcm_alaw", 0.2),
    ] {
        let path = formats(file);
        let d = Decoder::open(&path).unwrap();
        assert_eq!(d.info().codec, codec, "{file}");
        assert_eq!(
            (d.info().sample_rate, d.info().channels),
            (8000, 1),
            "{file}"
        );
        check_same(&path, tol);
    }
}

#[test]
fn g711_round_trips_are_close_to_the_original() {
    let orig = original();
    for (file, scale) in [("speech-mulaw.wav", 32124.0), ("speech-alaw.wav", 32256.0)] {
        let (x, _) = decode_all(&formats(file)).unwrap();
        assert_eq!(x.len(), orig.len(), "{file}");
        // G.711 keeps about 38 dB SNR on speech.
        let err: f64 = x
            .iter()
            .zip(&orig)
            .map(|(a, &b)| (*a as f64 - b as f64 / 32768.0).powi(2))
            .sum();
        let sig: f64 = orig.iter().map(|&b| (b as f64 / 32768.0).powi(2)).sum();
        assert!(10.0 * (sig / err).log10() > 30.0, "{file}");
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak <= scale / 32768.0 + 1e-6, "{file}");
        assert_eq!(
            Decoder::open(&formats(file)).unwrap().info().full_scale,
            scale / 32768.0
        );
    }
}

fn to_bytes(samples: &[i16], bits: u16, float: bool) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| {
            let v = s as f64 / 32768.0;
            match (bits, float) {
                (8, false) => vec![((s >> 8) as i32 + 128) as u8],
                (24, false) => ((s as i32) << 8).to_le_bytes()[..3].to_vec(),
                (32, false) => ((s as i32) << 16).to_le_bytes().to_vec(),
                (32, true) => (v as f32).to_le_bytes().to_vec(),
                (64, true) => v.to_le_bytes().to_vec(),
                _ => unreachable!(),
            }
        })
        .collect()
}

#[test]
fn pcm_variants_decode_to_the_same_samples() {
    let dir = tempfile::tempdir().unwrap();
    let orig = original();
    for (bits, float, extensible, tol) in [
        (8u16, false, false, 1.0 / 128.0),
        (24, false, false, 1e-6),
        (32, false, true, 1e-6),
        (32, true, false, 1e-6),
        (64, true, true, 1e-6),
    ] {
        let mut w = Wav::pcm16(&orig, 1, 8000);
        w.tag = if float { 3 } else { 1 };
        w.bits = bits;
        w.extensible = extensible;
        w.data = to_bytes(&orig, bits, float);
        let path = w.write(dir.path(), &format!("v{bits}{float}.wav"));
        let (x, notes) = decode_all(&path).unwrap();
        assert_eq!(x.len(), orig.len(), "{bits} bits");
        assert!(!notes.header_mismatch && !notes.truncated);
        let worst = x
            .iter()
            .zip(&orig)
            .map(|(a, &b)| (a - b as f32 / 32768.0).abs())
            .fold(0.0, f32::max);
        assert!(worst <= tol, "{bits} bits float={float}: off by {worst}");
    }
}

#[test]
fn stereo_and_other_rates() {
    let dir = tempfile::tempdir().unwrap();
    let orig = original();
    // Stereo: the same speech on both legs, analysed as the one signal it is.
    let both: Vec<i16> = orig.iter().flat_map(|&s| [s, s]).collect();
    let stereo = Wav::pcm16(&both, 2, 8000).write(dir.path(), "stereo.wav");
    let r = analyze(&stereo);
    assert_eq!(r.format.channels, 2);
    assert!(r.channels.is_none() && r.conversation.is_none());
    assert!(r
        .quality
        .flags
        .iter()
        .any(|f| f.code == "channels_identical"));
    let base = analyze(&formats("speech.wav"));
    assert!((r.metrics.speech.talk_time_s - base.metrics.speech.talk_time_s).abs() < 0.05);
    // Different speech on each leg: two channels.
    let other: Vec<i16> = orig.iter().rev().copied().collect();
    let two: Vec<i16> = orig
        .iter()
        .zip(&other)
        .flat_map(|(&a, &b)| [a, b])
        .collect();
    let r = analyze(&Wav::pcm16(&two, 2, 8000).write(dir.path(), "two.wav"));
    assert_eq!(r.channels.as_ref().map(Vec::len), Some(2));
    // Other rates (16, 44.1, 48 kHz): linear upsampling of the same speech.
    for rate in [16000u32, 11025, 44100, 48000] {
        let n = orig.len() * rate as usize / 8000;
        let up: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 * 8000.0 / rate as f64;
                let (k, f) = (t as usize, t.fract());
                let a = orig[k.min(orig.len() - 1)] as f64;
                let b = orig[(k + 1).min(orig.len() - 1)] as f64;
                (a + (b - a) * f) as i16
            })
            .collect();
        let path = Wav::pcm16(&up, 1, rate).write(dir.path(), &format!("r{rate}.wav"));
        let r = analyze(&path);
        assert_eq!(r.format.sample_rate, rate);
        let (t, tb) = (
            r.metrics.speech.talk_time_s,
            base.metrics.speech.talk_time_s,
        );
        assert!((t - tb).abs() <= 0.15, "{rate} Hz: talk {t} vs {tb}");
        assert!((r.format.duration_s - base.format.duration_s).abs() < 0.01);
    }
}

#[test]
fn lying_headers_are_read_to_the_real_end() {
    let dir = tempfile::tempdir().unwrap();
    let orig = original();
    let cases: [(&str, Option<u32>, Option<u32>); 4] = [
        // Asterisk MixMonitor before close: sizes never patched.
        ("asterisk-open", Some(0), Some(36)),
        ("riff-8", Some(0), Some(8)),
        ("streaming", Some(0xFFFF_FFFF), Some(0xFFFF_FFFF)),
        // Patched once, then written to again.
        ("stale", Some(8000), None),
    ];
    for (name, declared, riff) in cases {
        let mut w = Wav::pcm16(&orig, 1, 8000);
        w.declared = declared;
        w.riff = riff;
        let path = w.write(dir.path(), &format!("{name}.wav"));
        let (x, notes) = decode_all(&path).unwrap();
        assert_eq!(x.len(), orig.len(), "{name}: all the audio");
        assert!(notes.header_mismatch, "{name}");
        let r = analyze(&path);
        assert!(
            r.quality.flags.iter().any(|f| f.code == "header_mismatch"),
            "{name}"
        );
    }
    // A LIST chunk after the data is not audio, and not a mismatch.
    let mut w = Wav::pcm16(&orig, 1, 8000);
    w.after = [b"LIST".as_slice(), &8u32.to_le_bytes(), b"INFOabcd"].concat();
    let (x, notes) = decode_all(&w.write(dir.path(), "list.wav")).unwrap();
    assert_eq!(x.len(), orig.len());
    assert_eq!(notes, Default::default());
}

#[test]
fn truncated_files_are_analysed_as_far_as_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let orig = original();
    let mut w = Wav::pcm16(&orig, 1, 8000);
    w.declared = Some(orig.len() as u32 * 2);
    w.data.truncate(orig.len()); // half the samples
    let path = w.write(dir.path(), "cut.wav");
    let (x, notes) = decode_all(&path).unwrap();
    assert_eq!(x.len(), orig.len() / 2);
    assert!(notes.truncated);
    let r = analyze(&path);
    assert!(r.quality.flags.iter().any(|f| f.code == "truncated"));
    // A FLAC stream cut in the middle: its header knows the length.
    let flac = std::fs::read(formats("speech.flac")).unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &flac[..flac.len() / 2]).unwrap();
    let (x, notes) = decode_all(&cut).unwrap();
    assert!(!x.is_empty() && x.len() < orig.len());
    assert!(notes.truncated);
    // An MP3 cut in the middle still decodes what is there.
    let mp3 = std::fs::read(formats("speech.mp3")).unwrap();
    let cut = dir.path().join("cut.mp3");
    std::fs::write(&cut, &mp3[..mp3.len() / 2]).unwrap();
    let (x, _) = decode_all(&cut).unwrap();
    assert!(x.len() > orig.len() / 4);
}

fn check_error(name: &str, bytes: &[u8], code: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = pipeline::analyze_file(&path, name, &Config::default(), Options::default())
        .expect_err(name);
    assert_eq!(err.code, code, "{name}: {}", err.message);
    assert!(err.message.contains(needle), "{name}: {}", err.message);
}

#[test]
fn malformed_inputs_end_in_clean_errors() {
    let orig = original();
    let good = Wav::pcm16(&orig[..8000], 1, 8000).bytes();
    let mut rng = crate::support::Rng::new(1);
    let random: Vec<u8> = (0..50_000).map(|_| rng.next_u64() as u8).collect();
    check_error("empty.wav", b"", "empty", "no audio");
    check_error(
        "random.wav",
        &random,
        "unsupported_format",
        "not a recognised",
    );
    check_error(
        "random.mp3",
        &random,
        "unsupported_format",
        "not a recognised",
    );
    check_error(
        "text.wav",
        b"hello, this is not audio\n",
        "unsupported_format",
        "",
    );
    check_error(
        "riff-only.wav",
        b"RIFF\x04\x00\x00\x00WAVE",
        "decode_failed",
        "fmt",
    );
    // fmt chunk cut short.
    check_error("short-fmt.wav", &good[..30], "decode_failed", "fmt");
    // No data bytes at all behind a good header.
    check_error("header-only.wav", &good[..44], "empty", "no audio");
    // Zero channels.
    let mut zero = good.clone();
    zero[22] = 0;
    check_error("zero-channels.wav", &zero, "decode_failed", "0 channels");
    // A chunk before the data that claims more than the file.
    let mut bogus = good[..36].to_vec();
    bogus.extend(b"junk\xff\xff\xff\x7f");
    bogus.extend(&good[36..]);
    check_error("bogus-chunk.wav", &bogus, "decode_failed", "past the end");
    // Data before fmt.
    let mut swapped = b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00".to_vec();
    swapped.extend(&good[12..36]);
    check_error(
        "data-first.wav",
        &swapped,
        "decode_failed",
        "before the fmt",
    );
    // Rates and codecs we do not take, by name.
    let mut fast = Wav::pcm16(&orig[..8000], 1, 96000);
    fast.rate = 96000;
    check_error("96k.wav", &fast.bytes(), "unsupported_format", "96000 Hz");
    let gsm = std::fs::read(formats("speech-gsm.wav")).unwrap();
    check_error("gsm.wav", &gsm, "unsupported_format", "GSM 6.10 (WAV49)");
    let mut adpcm = Wav::pcm16(&orig[..8000], 1, 8000);
    adpcm.tag = 0x11;
    adpcm.bits = 4;
    check_error(
        "adpcm.wav",
        &adpcm.bytes(),
        "unsupported_format",
        "IMA ADPCM",
    );
}

#[test]
fn missing_files_and_directories_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.wav");
    let err = pipeline::analyze_file(&missing, "nope", &Config::default(), Options::default())
        .unwrap_err();
    assert_eq!(err.code, "io");
    let err = pipeline::analyze_file(dir.path(), "dir", &Config::default(), Options::default())
        .unwrap_err();
    assert_eq!(err.code, "io");
}

#[test]
fn truncation_at_every_point_never_panics() {
    // Every prefix of a small WAV and MP3 either decodes or fails cleanly.
    let dir = tempfile::tempdir().unwrap();
    let wav = Wav::pcm16(&original()[..4000], 1, 8000).bytes();
    let mp3 = std::fs::read(formats("speech.mp3")).unwrap();
    for (ext, bytes) in [("wav", &wav), ("mp3", &mp3)] {
        for cut in (0..bytes.len().min(6000)).step_by(97) {
            let path = dir.path().join(format!("p{cut}.{ext}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let _ = pipeline::analyze_file(&path, "p", &Config::default(), Options::default());
        }
    }
}

#[test]
fn complete_files_are_not_truncated_whatever_their_last_block_holds() {
    // speech.* hold 42,895 frames: read in blocks of 10,000 or 30,000 frames (or all at once),
    // the last block holds more than 4,096, as a complete file does in the pipeline's blocks of
    // 8,192 whenever its length modulo 8,192 is above 4,096.
    let dir = tempfile::tempdir().unwrap();
    for file in ["speech.mp3", "speech.flac", "speech.ogg"] {
        let path = formats(file);
        let (first, _) = decode_in_blocks(&path, 1000).unwrap();
        for frames in [1000, 4096, 8192, 10_000, 30_000, 1 << 16] {
            let (x, notes) = decode_in_blocks(&path, frames).unwrap();
            assert_eq!(x.len(), first.len(), "{file} in blocks of {frames}");
            assert!(!notes.truncated, "{file} in blocks of {frames}");
        }
        let r = analyze(&path);
        assert!(
            !r.quality.flags.iter().any(|f| f.code == "truncated"),
            "{file}"
        );
        // A copy cut in the middle is truncated, whatever the block size: MP3 and FLAC by the
        // length their header announces, Ogg by its missing end-of-stream page.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join(format!("cut-{file}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        for frames in [1000, 8192, 30_000, 1 << 16] {
            let (x, notes) = decode_in_blocks(&cut, frames).unwrap();
            assert!(!x.is_empty() && x.len() < first.len(), "cut {file}");
            assert!(notes.truncated, "cut {file} in blocks of {frames}");
        }
    }
}

#[test]
fn a_chunk_after_the_data_claiming_4_gib_is_not_audio() {
    let dir = tempfile::tempdir().unwrap();
    let orig = original();
    let huge = 0xFFFF_FFFFu32.to_le_bytes();
    let cases: [(&str, Vec<u8>); 5] = [
        ("list-header-only", [b"LIST".as_slice(), &huge].concat()),
        // A copy cut in the chunk header.
        ("list-header-cut", [b"LIST".as_slice(), &huge[..2]].concat()),
        (
            "list-with-body",
            [
                b"LIST".as_slice(),
                &huge,
                b"INFOISFT\x06\x00\x00\x00pbx-1\x00",
            ]
            .concat(),
        ),
        ("id3", [b"id3 ".as_slice(), &huge, b"ID3\x03\x00"].concat()),
        ("any-chunk", [b"xtra".as_slice(), &huge, &[0u8; 6]].concat()),
    ];
    for (name, after) in cases {
        let mut w = Wav::pcm16(&orig, 1, 8000);
        w.after = after;
        let path = w.write(dir.path(), &format!("{name}.wav"));
        let (x, notes) = decode_all(&path).unwrap();
        assert_eq!(
            x.len(),
            orig.len(),
            "{name}: the data chunk's samples, no more"
        );
        assert!(
            x.iter().zip(&orig).all(|(a, &b)| *a == b as f32 / 32768.0),
            "{name}: the samples are the data chunk's"
        );
        assert_eq!(notes, Default::default(), "{name}");
        let r = analyze(&path);
        let duration = orig.len() as f64 / 8000.0;
        assert!(
            (r.format.duration_s - duration).abs() < 0.001,
            "{name}: duration"
        );
    }
}

/// CRC-32 as Ogg computes it: polynomial 0x04c11db7, not reflected, initial value 0.
fn ogg_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in bytes {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// An Ogg file's pages, each as its bytes.
fn ogg_pages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"OggS");
        let segments = bytes[at + 26] as usize;
        let body: usize = bytes[at + 27..at + 27 + segments]
            .iter()
            .map(|&s| s as usize)
            .sum();
        let len = 27 + segments + body;
        pages.push(bytes[at..at + len].to_vec());
        at += len;
    }
    pages
}

/// Sets a page's granule position and serial number, and its CRC to match.
fn ogg_rewrite(page: &mut [u8], granule: Option<i64>, serial: Option<u32>) {
    if let Some(g) = granule {
        page[6..14].copy_from_slice(&g.to_le_bytes());
    }
    if let Some(s) = serial {
        page[14..18].copy_from_slice(&s.to_le_bytes());
    }
    page[22..26].copy_from_slice(&[0; 4]);
    let crc = ogg_crc(page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn ogg_crc_matches_the_asset() {
    // The helper's CRC is the one symphonia checks: it recomputes every page of the asset.
    for page in ogg_pages(&std::fs::read(formats("speech.ogg")).unwrap()) {
        let mut copy = page.clone();
        ogg_rewrite(&mut copy, None, None);
        assert_eq!(copy, page);
    }
}

#[test]
fn ogg_pages_without_a_granule_position_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, _) = decode_all(&formats("speech.ogg")).unwrap();
    let pages = ogg_pages(&std::fs::read(formats("speech.ogg")).unwrap());
    // Pages 0 and 1 hold the three headers; the audio starts on page 2 and ends on the last.
    let last = pages.len() - 1;
    for (name, from, to) in [
        ("one-middle-page", 3, 3),
        ("all-but-the-last", 2, last - 1),
        ("every-audio-page", 2, last),
    ] {
        let mut pages = pages.clone();
        for page in &mut pages[from..=to] {
            ogg_rewrite(page, Some(-1), None);
        }
        let path = dir.path().join(format!("{name}.ogg"));
        std::fs::write(&path, pages.concat()).unwrap();
        for frames in [1000, 8192] {
            let (x, notes) = decode_in_blocks(&path, frames).unwrap();
            assert!(!notes.truncated, "{name}");
            if from == to {
                // The next page's granule puts the stream back in step: the same samples.
                assert_eq!(x.len(), orig.len(), "{name}: all the audio");
            } else {
                // The last packet's padding is trimmed against where the page before it ended:
                // with that unknown, it is kept (a few ms at most).
                assert!(
                    x.len() >= orig.len() && x.len() < orig.len() + 1024,
                    "{name}: {} frames for {}",
                    x.len(),
                    orig.len()
                );
            }
            assert!(x.iter().zip(&orig).all(|(a, b)| a == b), "{name}");
        }
        let r = analyze(&path);
        assert!((r.format.duration_s - orig.len() as f64 / 8000.0).abs() < 0.3);
    }
}

#[test]
fn chained_ogg_streams_are_decoded_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, _) = decode_all(&formats("speech.ogg")).unwrap();
    let bytes = std::fs::read(formats("speech.ogg")).unwrap();
    // The same stream again under another serial number, as a recorder that restarts its
    // encoder (or `cat a.ogg b.ogg`) leaves it.
    let mut second = ogg_pages(&bytes);
    for page in &mut second {
        ogg_rewrite(page, None, Some(0x1234_5678));
    }
    let path = dir.path().join("chained.ogg");
    std::fs::write(&path, [bytes.clone(), second.concat()].concat()).unwrap();
    for frames in [1000, 8192] {
        let (x, notes) = decode_in_blocks(&path, frames).unwrap();
        assert_eq!(x.len(), 2 * orig.len(), "both streams, whole");
        assert_eq!(&x[..orig.len()], &orig[..]);
        assert_eq!(&x[orig.len()..], &orig[..]);
        assert_eq!(notes, Default::default());
    }
    let r = analyze(&path);
    assert!((r.format.duration_s - 2.0 * orig.len() as f64 / 8000.0).abs() < 0.01);
    // A second stream at another rate cannot continue the first: a clean error that says so.
    let mut other = second.clone();
    other[0][40..44].copy_from_slice(&16000u32.to_le_bytes());
    ogg_rewrite(&mut other[0], None, None);
    let path = dir.path().join("chained-16k.ogg");
    std::fs::write(&path, [bytes, other.concat()].concat()).unwrap();
    let err = pipeline::analyze_file(&path, "c", &Config::default(), Options::default())
        .expect_err("a rate change");
    assert_eq!(err.code, "decode_failed", "{}", err.message);
    assert!(err.message.contains("sample rate"), "{}", err.message);
    // Pages under another serial number with no headers of their own cannot be decoded: the
    // first stream is read to where it stops, and the file is reported cut short.
    let mut pages = ogg_pages(&std::fs::read(formats("speech.ogg")).unwrap());
    for page in &mut pages[4..] {
        ogg_rewrite(page, None, Some(0x1234_5678));
    }
    let path = dir.path().join("serial-changed.ogg");
    std::fs::write(&path, pages.concat()).unwrap();
    let (x, notes) = decode_all(&path).unwrap();
    // Pages 2 and 3 end at granule 16,128: all of them, and their samples.
    assert_eq!(x.len(), 16_128);
    assert_eq!(&x[..], &orig[..16_128]);
    assert!(notes.truncated);
}

#[test]
fn a_sparse_file_of_zeros_is_analysed_only_up_to_the_longest_duration() {
    // A header that says 0 data bytes (as MixMonitor leaves it), then 64 MiB of holes: on disk
    // a few KB, read as 70 minutes of zeros.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.wav");
    let mut wav = Wav::pcm16(&[0; 8000], 1, 8000);
    wav.declared = Some(0);
    std::fs::write(&path, wav.bytes()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut config = Config::default();
    config.analysis.max_duration_s = 60.0;
    let r = pipeline::analyze_file(&path, "sparse", &config, Options::default()).unwrap();
    assert!(
        (r.format.duration_s - 60.0).abs() < 0.01,
        "{}",
        r.format.duration_s
    );
    assert!(r.decode.too_long);
    assert!(r.quality.flags.iter().any(|f| f.code == "too_long"));
    // The hash still covers the whole file (the proof is of the bytes, not of the analysis).
    assert_eq!(r.sha256, callwarden::pipeline::sha256_file(&path).unwrap());
    // Under the bound, nothing changes.
    config.analysis.max_duration_s = 43_200.0;
    let short = formats("speech.flac");
    let r = pipeline::analyze_file(&short, "flac", &config, Options::default()).unwrap();
    assert!(!r.decode.too_long);
}
