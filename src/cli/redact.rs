//! `callwarden redact`: a copy of a recording with its DTMF digits silenced (card data, PCI
//! DSS), written by the user who asks, audited in the store. The original is never changed.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::client::Access;
use super::{Exit, EXIT_BAD_INPUT, EXIT_OK};
use crate::audio::Decoder;
use crate::files::{open_regular, Follow};
use crate::query::{Request, Target};

#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    #[command(flatten)]
    pub access: Access,
    /// The recording's id.
    pub id: u64,
    /// Silence the DTMF digits the analysis found (each tone and the margin around it).
    #[arg(long, required = true)]
    pub dtmf: bool,
    /// The folder the copy is written to (`<name>.redacted.wav`; never over an existing file).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Silence this much more on each side of every tone (milliseconds).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=2000))]
    pub margin_ms: u32,
}

pub fn redact(args: RedactArgs) -> anyhow::Result<u8> {
    let bad = |m: String| -> anyhow::Error { Exit(EXIT_BAD_INPUT, m).into() };
    let (shown, _) = args.access.show(Target::Id(args.id))?;
    let record = &shown.record;
    let Some(report) = record.report.as_ref() else {
        return Err(bad(format!(
            "recording {} was not analysed: there are no DTMF spans to redact",
            args.id
        )));
    };
    if record.state == crate::store::RecordState::Purged {
        return Err(bad(format!("recording {} was purged", args.id)));
    }
    let duration_s = report.format.duration_s;
    let spans = crate::redact::spans(
        &report.evidence.dtmf,
        args.margin_ms as f64 / 1000.0,
        duration_s,
    );
    if spans.is_empty() {
        println!(
            "recording {} holds no DTMF digits: nothing to redact, no copy written",
            args.id
        );
        return Ok(EXIT_OK);
    }
    let source = record.path.as_path();
    // The bytes copied are the bytes analysed: the file is hashed through the descriptor it is
    // decoded from.
    let (mut file, len) = open_regular(source, Follow::Never)
        .map_err(|e| bad(format!("open recording {}: {e}", args.id)))?;
    let sha = crate::pipeline::sha256_read(&mut file)?;
    if sha != record.sha256 {
        return Err(bad(format!(
            "{} changed since it was analysed (sha256 {sha}, stored {}): not redacted",
            source.display(),
            record.sha256
        )));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut decoder = Decoder::from_file(file, len, source)
        .map_err(|e| bad(format!("decode {}: {e}", source.display())))?;
    let info = decoder.info().clone();
    let channels = info.channels as usize;
    let name = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("recording-{}", args.id));
    let out = args.out.join(format!("{name}.redacted.wav"));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
        .map_err(|e| bad(format!("create {}: {e}", out.display())))?;
    let spec = hound::WavSpec {
        channels: info.channels,
        sample_rate: info.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let written = (|| -> anyhow::Result<()> {
        let mut writer = hound::WavWriter::new(std::io::BufWriter::new(created), spec)?;
        let mut block = Vec::new();
        let mut frame = 0usize;
        loop {
            let n = decoder.read(&mut block, 8192)?;
            if n == 0 {
                break;
            }
            crate::redact::silence(&mut block, channels, frame, info.sample_rate, &spans);
            for &v in &block {
                writer.write_sample((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)?;
            }
            frame += n;
        }
        writer.finalize()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&out);
        return Err(e.context(format!("write {}", out.display())));
    }
    let (mut copy, _) = open_regular(&out, Follow::Never)?;
    let copy_sha = crate::pipeline::sha256_read(&mut copy)?;
    let out_abs = std::path::absolute(&out).unwrap_or(out.clone());
    let (answer, _) = args.access.ask(Request::Redacted {
        id: args.id,
        source_sha256: record.sha256.clone(),
        out: out_abs.display().to_string(),
        sha256: copy_sha.clone(),
        spans: spans.clone(),
    })?;
    let seq = match answer {
        crate::query::Answer::Audit(entries) => entries.first().map(|e| e.seq),
        _ => None,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "wrote {} (sha256 {copy_sha}): {} span(s) silenced, {:.2} s in all{}",
        out.display(),
        spans.len(),
        spans.iter().map(|s| s[1] - s[0]).sum::<f64>(),
        seq.map_or_else(String::new, |s| format!("; audit entry {s}"))
    )?;
    Ok(EXIT_OK)
}
