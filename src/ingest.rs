//! Ingest: finding finished recordings and bringing each into the store exactly once.
//!
//! This is the one-shot pipeline behind `callwarden ingest PATH...` (importing an archive); the
//! daemon will feed the same [`Ingestor`] from its watcher. Identity is path + size + mtime,
//! confirmed by the content hash: a stored file is skipped; a stored file whose bytes changed
//! keeps its original hash and gets `modified_after_ingest`; a failed one is retried only when it
//! changes. It reads recordings and sidecars and writes only the store; it never moves, changes or
//! deletes a recording, and never follows a symlink.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::UNIX_EPOCH;

use crate::analysis::model::ErrorBody;
use crate::audit::{AuditAction, Draft};
use crate::config::Config;
use crate::metadata::Metadata;
use crate::pipeline::{self, Options};

/// How stored recordings are analysed: with every speech segment, so the console can draw each
/// leg's timeline from the store (a few hundred bytes for a call of minutes).
const KEPT: Options = Options {
    segments: true,
    follow: crate::files::Follow::Never,
};
use crate::recording_path::RecordingPath;
use crate::store::{Record, RecordFlag, RecordState, Store, StoreError};

/// A file found by a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub path: RecordingPath,
    pub size: u64,
    pub mtime_ns: i128,
}

/// What happened to each file of a run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub ingested: usize,
    pub already_stored: usize,
    pub too_short: usize,
    pub failed: Vec<(RecordingPath, String)>,
    pub modified: Vec<RecordingPath>,
    /// Recordings moved inside the roots: from, to.
    pub moved: Vec<(RecordingPath, RecordingPath)>,
    pub unsettled: usize,
    pub audio_s: f64,
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Whether `path` has one of the recording extensions (case-insensitive).
pub fn is_recording(path: &Path, extensions: &[String]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Every recording under `roots` (files given directly count too), without following symlinks.
/// Unreadable directories are reported, not fatal. The roots are absolute and normalised, so
/// every path found is too.
pub fn scan(roots: &[RecordingPath], extensions: &[String]) -> (Vec<Candidate>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for root in roots {
        for entry in walkdir::WalkDir::new(root.as_path())
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("scan {root}: {e}"));
                    continue;
                }
            };
            if entry.file_type().is_symlink()
                && (is_recording(entry.path(), extensions) || entry.path().is_dir())
            {
                problems.push(format!(
                    "skipped symlink {}: symlinks in a recordings root are not followed",
                    entry.path().display()
                ));
                continue;
            }
            if !entry.file_type().is_file() || !is_recording(entry.path(), extensions) {
                continue;
            }
            match entry.metadata() {
                Ok(meta) => found.push(Candidate {
                    path: RecordingPath::resolve(entry.path(), root.as_path()),
                    size: meta.len(),
                    mtime_ns: mtime_ns(&meta),
                }),
                Err(e) => problems.push(format!("stat {}: {e}", entry.path().display())),
            }
        }
    }
    (found, problems)
}

/// The files `analyze` is given: a file as named (whatever its extension), a directory searched
/// recursively, in name order, for files with a recording extension (symlinks inside it are not
/// followed, as in a root). Returns the files, and what could not be searched.
pub fn expand(paths: &[PathBuf], extensions: &[String]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let before = files.len();
        for entry in walkdir::WalkDir::new(path)
            .follow_links(false)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() && is_recording(e.path(), extensions) => {
                    files.push(e.path().to_path_buf())
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("search {}: {e}", path.display())),
            }
        }
        if files.len() == before {
            problems.push(format!(
                "{}: no recordings in it (extensions: {})",
                path.display(),
                extensions.join(", ")
            ));
        }
    }
    (files, problems)
}

/// The sidecar of a recording (`NAME.json` beside `NAME.wav`), parsed: `None` when there is none.
/// Only a regular file, never through a symlink (`x.json -> /etc/passwd` or someone else's
/// metadata is refused), never past `max_bytes`.
pub fn read_sidecar(recording: &Path, max_bytes: u64) -> Option<Result<Metadata, String>> {
    let path = recording.with_extension("json");
    match crate::files::read_capped(&path, crate::files::Follow::Never, max_bytes) {
        Ok(bytes) => Some(match String::from_utf8(bytes) {
            Ok(text) => Metadata::parse(&text),
            Err(_) => Err(format!(
                "read {}: not UTF-8 text",
                RecordingPath::resolve(&path, Path::new("/"))
            )),
        }),
        Err(crate::files::OpenError::Missing { .. }) => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// The configuration a recording is analysed with when its sidecar names the channels' roles or
/// the codec the call crossed (over `analysis.channel_roles` and `analysis.codec`); `None`: as
/// configured.
fn analysed_with(config: &Config, m: &Metadata) -> Option<Config> {
    if m.channels.is_empty() && m.codec.is_none() {
        return None;
    }
    let mut c = config.clone();
    if !m.channels.is_empty() {
        c.analysis.channel_roles = m.channels.clone();
    }
    if m.codec.is_some() {
        c.analysis.codec = m.codec.clone();
    }
    Some(c)
}

/// What to do with a candidate, given what the store holds for its path.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Same size and mtime as stored.
    Skip,
    /// Never seen, or failed before and changed since: analyse and store.
    Analyse,
    /// Stored, and its size or mtime changed: hash it to know whether its bytes did.
    Recheck,
}

pub fn plan(candidate: &Candidate, stored: Option<&Record>) -> Plan {
    match stored {
        None => Plan::Analyse,
        // Never read whole (a transient error outlived its retries): tried again at every
        // scan, changed or not, until it has a hash.
        Some(r) if r.state == RecordState::Failed && r.sha256.is_empty() => Plan::Analyse,
        Some(r) if r.size == candidate.size && r.mtime_ns == candidate.mtime_ns => Plan::Skip,
        Some(r) if r.state == RecordState::Failed => Plan::Analyse,
        Some(_) => Plan::Recheck,
    }
}

/// The waits before each new try of a file that failed with a transient error.
const RETRY_DELAYS_MS: [u64; 3] = [100, 500, 2000];

/// Ingests files into one store with one configuration.
pub struct Ingestor<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
}

/// The outcome of the CPU work for one file, to be written to the store.
pub struct Work {
    candidate: Candidate,
    previous: Option<Record>,
    outcome: Outcome,
}

enum Outcome {
    /// The analysis, the hash of a file it failed on, and the sidecar as read before the
    /// analysis (read once: it may name the channels' roles, and it is stored with the record).
    Analysed(
        Box<Result<crate::analysis::model::Report, pipeline::FileError>>,
        Option<String>,
        Option<Box<Result<Metadata, String>>>,
    ),
    Hashed(Result<String, String>),
}

/// How far a run has come, after each file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Files that failed so far.
    pub failed: usize,
    /// Audio analysed so far, seconds.
    pub audio_s: f64,
}

impl Ingestor<'_> {
    /// Ingests `candidates` with `jobs` worker threads; `now_ms` is the current time and
    /// `settle_ms` how long a file must have been left alone to count as finished.
    pub fn run(
        &self,
        candidates: Vec<Candidate>,
        jobs: usize,
        now_ms: i64,
        settle_ms: i64,
        mut progress: impl FnMut(&Progress),
    ) -> Result<Summary, StoreError> {
        let mut summary = Summary::default();
        let mut todo = Vec::new();
        for c in candidates {
            if now_ms.saturating_sub((c.mtime_ns / 1_000_000) as i64) < settle_ms {
                summary.unsettled += 1;
                continue;
            }
            let stored = live_record(self.store, &c.path)?;
            match plan(&c, stored.as_ref()) {
                Plan::Skip => summary.already_stored += 1,
                Plan::Analyse | Plan::Recheck => todo.push((c, stored)),
            }
        }
        let total = todo.len();
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::sync_channel::<Work>(jobs.max(1) * 2);
        let todo = &todo;
        std::thread::scope(|scope| -> Result<(), StoreError> {
            for _ in 0..jobs.max(1) {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((candidate, previous)) = todo.get(i) else {
                        break;
                    };
                    let work = self.process(candidate.clone(), previous.clone());
                    if tx.send(work).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for (i, work) in rx.into_iter().enumerate() {
                self.store_one(work, now_ms, &mut summary)?;
                progress(&Progress {
                    done: i + 1,
                    total,
                    failed: summary.failed.len(),
                    audio_s: summary.audio_s,
                });
            }
            Ok(())
        })?;
        self.store.flush()?;
        Ok(summary)
    }

    /// The CPU work for one file (hash, or hash and analyse), on the calling thread.
    pub fn process(&self, candidate: Candidate, previous: Option<Record>) -> Work {
        let outcome = match plan(&candidate, previous.as_ref()) {
            Plan::Recheck => {
                Outcome::Hashed(pipeline::sha256_file(&candidate.path).map_err(|e| e.to_string()))
            }
            _ => {
                let name = candidate.path.to_string();
                // The sidecar may say which side is on which channel, and which codec the
                // call crossed.
                let sidecar = read_sidecar(
                    candidate.path.as_path(),
                    self.config.ingest.max_sidecar_bytes,
                );
                let with_sidecar = match &sidecar {
                    Some(Ok(m)) => analysed_with(self.config, m),
                    _ => None,
                };
                let config = with_sidecar.as_ref().unwrap_or(self.config);
                let mut r = pipeline::analyze_file(&candidate.path, &name, config, KEPT);
                // A transient error (a permission being fixed, descriptors running out) is
                // tried again, backing off, before the file is stored as failed.
                for delay_ms in RETRY_DELAYS_MS {
                    let Err(e) = &r else { break };
                    if !e.transient {
                        break;
                    }
                    tracing::warn!(file = %candidate.path, error = %e.message,
                        "could not read the recording; trying again in {delay_ms} ms");
                    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                    r = pipeline::analyze_file(&candidate.path, &name, config, KEPT);
                }
                let sha = match &r {
                    Err(_) => pipeline::sha256_file(&candidate.path).ok(),
                    Ok(_) => None,
                };
                Outcome::Analysed(Box::new(r), sha, sidecar.map(Box::new))
            }
        };
        Work {
            candidate,
            previous,
            outcome,
        }
    }

    /// Writes the outcome of [`Ingestor::process`] to the store, counting it in `summary`.
    pub fn store_one(
        &self,
        work: Work,
        now_ms: i64,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        let Work {
            candidate,
            previous,
            outcome,
        } = work;
        let path = candidate.path.clone();
        match outcome {
            Outcome::Hashed(hash) => {
                let Some(old) = previous else { return Ok(()) };
                let mut record = old.clone();
                record.size = candidate.size;
                record.mtime_ns = candidate.mtime_ns;
                match hash {
                    Ok(sha) if sha == old.sha256 => {
                        summary.already_stored += 1;
                    }
                    Ok(sha) => {
                        // Evidence of tampering or a PBX bug: keep the original hash and say so.
                        tracing::warn!(file = %path, stored = %old.sha256, now = %sha,
                            "recording changed after ingest; original hash kept");
                        record.flag(RecordFlag::ModifiedAfterIngest);
                        summary.modified.push(path.clone());
                    }
                    Err(e) => {
                        summary.failed.push((path.clone(), e));
                        return Ok(());
                    }
                }
                let event = if record.flags != old.flags {
                    Draft::new(
                        "ingest",
                        AuditAction::ModifiedAfterIngest,
                        serde_json::json!({
                        "path": path, "sha256_stored": old.sha256,
                        "size": record.size, "mtime_ns": record.mtime_ns.to_string()}),
                    )
                } else {
                    Draft::new(
                        "ingest",
                        AuditAction::Touched,
                        serde_json::json!({
                        "path": path, "size": record.size, "mtime_ns": record.mtime_ns.to_string()}),
                    )
                };
                self.store
                    .commit(&record, Some(&old), event.about(record.id.0), now_ms)
            }
            Outcome::Analysed(result, failed_sha, sidecar) => {
                // Gone between the scan (or event) and the open, never read: nothing to store
                // (a move's new name, or the deletion, is seen on its own).
                if matches!(&*result, Err(e) if e.vanished) && previous.is_none() {
                    return Ok(());
                }
                // Read, but gone from its path before it could be stored (moved on within the
                // roots a moment after close): the name it has now is stored on its own, and a
                // record here would name no file.
                if previous.is_none() && candidate.path.symlink_metadata().is_err() {
                    return Ok(());
                }
                // A new path with bytes the store knows: the same recording moved inside the
                // roots (its old file gone), or a copy of one still on disk.
                let mut twin = None;
                let mut escaped = false;
                if previous.is_none() {
                    let sha = match &*result {
                        Ok(r) => r.sha256.clone(),
                        Err(_) => failed_sha.clone().unwrap_or_default(),
                    };
                    match self.twin(&sha, &candidate.path)? {
                        Twin::Moved(old) => {
                            return self.moved(*old, &candidate, now_ms, summary);
                        }
                        Twin::CopyOf(id) => twin = Some(id),
                        Twin::EscapedPurge(id) => {
                            tracing::warn!(file = %candidate.path, purged = id.0,
                                "these bytes are a purged recording's, moved while its purge \
                                 was pending; the policy decides them again");
                            twin = Some(id);
                            escaped = true;
                        }
                        Twin::None => {}
                    }
                }
                let from_name = self.name_metadata(candidate.path.as_path());
                let (metadata, metadata_error) = match sidecar.map(|s| *s) {
                    None => (from_name, None),
                    Some(Ok(m)) => (Some(from_name.unwrap_or_default().overlay(m)), None),
                    Some(Err(e)) => (from_name, Some(e)),
                };
                let mut flags = Vec::new();
                if let Some(e) = &metadata_error {
                    tracing::warn!(file = %candidate.path, error = %e, "sidecar not used");
                    flags.push(RecordFlag::MetadataInvalid);
                }
                if metadata.as_ref().is_some_and(unsafe_metadata) {
                    flags.push(RecordFlag::MetadataUnsafe);
                }
                if escaped {
                    flags.push(RecordFlag::EscapedPurge);
                }
                let started_ms = metadata
                    .as_ref()
                    .and_then(Metadata::start_ms)
                    .unwrap_or((candidate.mtime_ns / 1_000_000) as i64);
                let id = match &previous {
                    Some(p) => p.id,
                    None => self.store.next_id()?,
                };
                let (state, sha256, report, error) = match *result {
                    Ok(report) => {
                        summary.audio_s += report.format.duration_s;
                        let state = self.analysed_state(report.format.duration_s);
                        if state == RecordState::TooShort {
                            summary.too_short += 1;
                        } else {
                            summary.ingested += 1;
                        }
                        (state, report.sha256.clone(), Some(report), None)
                    }
                    Err(e) => {
                        // Said once, by whoever ran this (the daemon's log, the CLI's summary).
                        summary.failed.push((path.clone(), e.message.clone()));
                        let body = ErrorBody {
                            code: e.code.to_string(),
                            message: e.message,
                        };
                        (
                            RecordState::Failed,
                            failed_sha.unwrap_or_default(),
                            None,
                            Some(body),
                        )
                    }
                };
                let consent = metadata
                    .as_ref()
                    .and_then(|m| crate::consent::from_metadata(m, now_ms));
                let consent_law = crate::consent::law(metadata.as_ref(), &self.config.consent);
                let notice = crate::consent::notice(metadata.as_ref(), &self.config.consent);
                let record = Record {
                    id,
                    path,
                    size: candidate.size,
                    mtime_ns: candidate.mtime_ns,
                    sha256,
                    state,
                    started_ms,
                    ingested_ms: now_ms,
                    duration_s: report.as_ref().map(|r| r.format.duration_s),
                    report,
                    error,
                    metadata,
                    flags,
                    metadata_error,
                    consent,
                    consent_law: Some(consent_law),
                    notice,
                    twin: twin.or(previous.as_ref().and_then(|p| p.twin)),
                    ..previous.clone().unwrap_or_else(Record::blank)
                };
                let mut details = serde_json::json!({"path": record.path,
                    "sha256": record.sha256, "size": record.size, "state": record.state,
                    "consent": record.consent.as_ref().map(|c| c.state),
                    "flags": record.flags});
                if let Some(twin) = record.twin {
                    details["twin"] = twin.0.into();
                }
                let event = Draft::new("ingest", AuditAction::Ingest, details);
                self.store
                    .commit(&record, previous.as_ref(), event.about(record.id.0), now_ms)
            }
        }
    }
}

/// What the store holds with the same bytes as a file at a new path.
enum Twin {
    None,
    /// A live record whose file is gone from its path (and no purge is taking it): this file.
    Moved(Box<Record>),
    /// A live record whose file is still on disk: this file is a copy of it.
    CopyOf(crate::store::RecordingId),
    /// A purged record whose purge found its file already gone (rolled forward): this file is
    /// that recording, moved while its purge was pending.
    EscapedPurge(crate::store::RecordingId),
}

impl Ingestor<'_> {
    fn twin(&self, sha256: &str, path: &RecordingPath) -> Result<Twin, StoreError> {
        if sha256.is_empty() {
            return Ok(Twin::None);
        }
        let mut copy_of = None;
        let mut escaped = None;
        for r in self.store.by_sha(sha256)? {
            if r.path == *path {
                continue;
            }
            if r.state == RecordState::Purged {
                if r.tombstone.as_ref().is_some_and(|t| t.rolled_forward) {
                    escaped.get_or_insert(r.id);
                }
                continue;
            }
            // A relative path (stored by a version before paths were made absolute) names no
            // file we can know: its record moves to the absolute path its bytes are found at.
            let gone = r.state == RecordState::Missing
                || !r.path.is_absolute()
                || r.path.symlink_metadata().is_err();
            if gone && !self.store.purge_pending(r.id)? {
                return Ok(Twin::Moved(Box::new(r)));
            }
            copy_of.get_or_insert(r.id);
        }
        Ok(match (escaped, copy_of) {
            (Some(id), _) => Twin::EscapedPurge(id),
            (None, Some(id)) => Twin::CopyOf(id),
            (None, None) => Twin::None,
        })
    }

    /// The state of a recording analysed to `duration_s`.
    fn analysed_state(&self, duration_s: f64) -> RecordState {
        if duration_s < self.config.analysis.min_duration_s {
            RecordState::TooShort
        } else {
            RecordState::Analysed
        }
    }

    /// Carries a record over to the path its file was moved to: one record, its path updated,
    /// a `moved` audit entry. Its id, consent, holds and history stay; a recording marked
    /// `missing` is back.
    fn moved(
        &self,
        old: Record,
        candidate: &Candidate,
        now_ms: i64,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        let mut record = old.clone();
        record.path = candidate.path.clone();
        record.size = candidate.size;
        record.mtime_ns = candidate.mtime_ns;
        if record.state == RecordState::Missing {
            record.state = match (&record.error, record.duration()) {
                (Some(_), _) => RecordState::Failed,
                (None, Some(d)) => self.analysed_state(d),
                (None, None) => RecordState::Analysed,
            };
        }
        // A purge refused at the old path (a relative path, a symlink on the way, outside the
        // roots) judged that path; the bytes are now proven the same at this one, so the next
        // purge judges it afresh. A change after ingest is its own flag and stays.
        let mut details = serde_json::json!({"from": old.path, "to": record.path,
            "sha256": record.sha256, "size": record.size,
            "mtime_ns": record.mtime_ns.to_string()});
        if record.has(RecordFlag::PurgeRefused) {
            record.unflag(RecordFlag::PurgeRefused);
            details["purge_refusal_cleared"] = record.purge_note.take().unwrap_or_default().into();
        }
        tracing::info!(from = %old.path, to = %record.path, id = record.id.0, "recording moved");
        summary.moved.push((old.path.clone(), record.path.clone()));
        let event = Draft::new("ingest", AuditAction::Moved, details);
        self.store
            .commit(&record, Some(&old), event.about(record.id.0), now_ms)
    }

    /// The metadata the file name carries under `ingest.filename_pattern`, if any.
    fn name_metadata(&self, path: &Path) -> Option<Metadata> {
        let pattern = &self.config.ingest.filename_pattern;
        if pattern.is_empty() {
            return None;
        }
        let stem = path.file_stem()?.to_str()?;
        crate::metadata::FilenamePattern::parse(pattern)
            .ok()?
            .extract(stem)
    }

    /// Attaches a sidecar that arrived after its recording was stored. Returns whether a stored
    /// recording took it.
    pub fn attach_sidecar(&self, sidecar: &RecordingPath, now_ms: i64) -> Result<bool, StoreError> {
        crate::store::until_fresh(|| self.try_attach_sidecar(sidecar, now_ms))
    }

    fn try_attach_sidecar(&self, sidecar: &RecordingPath, now_ms: i64) -> Result<bool, StoreError> {
        for ext in &self.config.ingest.extensions {
            for ext in [ext.to_lowercase(), ext.to_uppercase()] {
                let recording = sidecar.with_extension(&ext);
                let Some(old) = self.store.by_path(&recording)? else {
                    continue;
                };
                let mut record = old.clone();
                record.unflag(RecordFlag::MetadataInvalid);
                match read_sidecar(recording.as_path(), self.config.ingest.max_sidecar_bytes) {
                    None => return Ok(false),
                    Some(Ok(m)) => {
                        let m = self
                            .name_metadata(recording.as_path())
                            .unwrap_or_default()
                            .overlay(m);
                        if let Some(start) = m.start_ms() {
                            record.started_ms = start;
                        }
                        // The sidecar's consent, unless an operator has set one since.
                        let operator_set =
                            record.consent.as_ref().is_some_and(|c| c.actor != "ingest");
                        if !operator_set {
                            if let Some(c) = crate::consent::from_metadata(&m, now_ms) {
                                if record.consent.as_ref().map(|o| o.state) != Some(c.state) {
                                    if let Some(old) = record.consent.take() {
                                        record.consent_history.push(old);
                                    }
                                    record.consent = Some(c);
                                }
                            }
                        }
                        record.consent_law =
                            Some(crate::consent::law(Some(&m), &self.config.consent));
                        record.notice = crate::consent::notice(Some(&m), &self.config.consent);
                        if unsafe_metadata(&m) {
                            record.flag(RecordFlag::MetadataUnsafe);
                        } else {
                            record.unflag(RecordFlag::MetadataUnsafe);
                        }
                        record.metadata = Some(m);
                        record.metadata_error = None;
                    }
                    Some(Err(e)) => {
                        record.flag(RecordFlag::MetadataInvalid);
                        record.metadata_error = Some(e);
                    }
                }
                if record != old {
                    let event = Draft::new(
                        "ingest",
                        AuditAction::Metadata,
                        serde_json::json!({"sidecar": sidecar,
                            "valid": record.metadata_error.is_none(),
                            "consent": record.consent.as_ref().map(|c| c.state)}),
                    );
                    self.store
                        .commit(&record, Some(&old), event.about(record.id.0), now_ms)?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Marks the record of a file that is gone as `missing`. Returns whether it was stored.
    pub fn mark_missing(&self, path: &RecordingPath, now_ms: i64) -> Result<bool, StoreError> {
        // A worker may carry the record to its file's new name meanwhile (moved a moment after
        // close): the write is then refused as stale, and the record is judged again.
        crate::store::until_fresh(|| self.try_mark_missing(path, now_ms))
    }

    fn try_mark_missing(&self, path: &RecordingPath, now_ms: i64) -> Result<bool, StoreError> {
        let Some(old) = self.store.by_path(path)? else {
            return Ok(false);
        };
        // A purge under way deletes the file before it writes the tombstone: not missing.
        if matches!(old.state, RecordState::Missing | RecordState::Purged)
            || path.as_path().symlink_metadata().is_ok()
            || self.store.purge_pending(old.id)?
        {
            return Ok(false);
        }
        // The purge may have finished between the first read and the intent check (its
        // tombstone and the intent's removal are one transaction): read the record again, after
        // the check, so a fresh tombstone is never overwritten as "missing".
        let Some(old) = self.store.get(old.id)?.filter(|r| {
            r.path == *path && !matches!(r.state, RecordState::Missing | RecordState::Purged)
        }) else {
            return Ok(false);
        };
        let mut record = old.clone();
        record.state = RecordState::Missing;
        tracing::warn!(file = %record.path, id = record.id.0, "recording is missing from disk");
        let event = Draft::new(
            "ingest",
            AuditAction::Missing,
            serde_json::json!({"path": record.path, "sha256": record.sha256}),
        );
        self.store
            .commit(&record, Some(&old), event.about(record.id.0), now_ms)?;
        Ok(true)
    }
}

/// The record of the recording now at `path`, if stored. A purged record is a tombstone of an
/// earlier file: a new file at its path is a new recording.
pub fn live_record(store: &Store, path: &RecordingPath) -> Result<Option<Record>, StoreError> {
    Ok(store
        .by_path(path)?
        .filter(|r| r.state != RecordState::Purged))
}

/// Whether a sidecar's fields look like paths or carry control characters (`../`, `/`, NUL):
/// never used as paths by callwarden, but a sign of a confused or hostile writer, so flagged.
pub fn unsafe_metadata(m: &Metadata) -> bool {
    let bad = |s: &String| s.contains("..") || s.contains('/') || s.chars().any(char::is_control);
    [&m.call_id, &m.agent, &m.queue, &m.caller, &m.callee]
        .into_iter()
        .flatten()
        .any(bad)
        || m.tags.iter().any(bad)
}

/// A recording file as a candidate, if it is a regular file (not a symlink) with a recording
/// extension.
pub fn candidate(path: &RecordingPath, extensions: &[String]) -> Option<Candidate> {
    let meta = path.as_path().symlink_metadata().ok()?;
    (meta.file_type().is_file() && is_recording(path.as_path(), extensions)).then(|| Candidate {
        path: path.clone(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
    })
}

/// Files still being written when a one-shot ingest starts: waited for until each has been left
/// alone for `settle_ms` (its size and mtime unchanged), but no longer than `settle_ms` past the
/// start, since a file that keeps changing that long is still being recorded. Returns the
/// candidates now finished (as they are now) and those still changing. `now_ms` reads the
/// clock, `sleep` waits, `waiting` hears how many files are waited for and how long at most.
pub fn settle(
    candidates: Vec<Candidate>,
    settle_ms: i64,
    now_ms: impl Fn() -> i64,
    sleep: impl Fn(std::time::Duration),
    mut waiting: impl FnMut(usize, i64),
    extensions: &[String],
) -> (Vec<Candidate>, Vec<Candidate>) {
    let deadline = now_ms() + settle_ms;
    let settled = |c: &Candidate, now: i64| now - (c.mtime_ns / 1_000_000) as i64 >= settle_ms;
    let (mut ready, mut pending): (Vec<_>, Vec<_>) =
        candidates.into_iter().partition(|c| settled(c, now_ms()));
    loop {
        let now = now_ms();
        // Each file as it is now (gone: not ours to wait for).
        pending = pending
            .iter()
            .filter_map(|c| candidate(&c.path, extensions))
            .collect();
        let (done, still): (Vec<_>, Vec<_>) = pending.into_iter().partition(|c| settled(c, now));
        ready.extend(done);
        pending = still;
        if pending.is_empty() || now >= deadline {
            break;
        }
        waiting(pending.len(), deadline - now);
        let next = pending
            .iter()
            .map(|c| (c.mtime_ns / 1_000_000) as i64 + settle_ms - now)
            .min()
            .unwrap_or(0)
            .clamp(10, 250)
            .min(deadline - now);
        sleep(std::time::Duration::from_millis(next.max(1) as u64));
    }
    (ready, pending)
}

/// Whether `path` lies under one of `roots` and is reached from it through real directories
/// only: a symlinked subdirectory is not scanned, and an event from inside one (the watch may
/// follow it) names a file outside the roots, never a recording.
pub fn inside_roots(path: &RecordingPath, roots: &[RecordingPath]) -> bool {
    roots.iter().any(|root| {
        if !path.is_below(root) {
            return false;
        }
        let parts = path.parts();
        let mut dir = root.to_path_buf();
        for part in &parts[root.parts().len()..parts.len() - 1] {
            dir.push(part);
            match dir.symlink_metadata() {
                Ok(m) if m.file_type().is_dir() => {}
                _ => return false,
            }
        }
        true
    })
}

/// The current time in ms since the Unix epoch (the edge where the clock is read).
pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecordingId;

    fn candidate(size: u64, mtime_ns: i128) -> Candidate {
        Candidate {
            path: RecordingPath::from_bytes(b"/r/a.wav").unwrap(),
            size,
            mtime_ns,
        }
    }

    fn stored(size: u64, mtime_ns: i128, state: RecordState) -> Record {
        Record {
            id: RecordingId(1),
            path: RecordingPath::from_bytes(b"/r/a.wav").unwrap(),
            size,
            mtime_ns,
            sha256: "x".into(),
            state,
            ..Record::blank()
        }
    }

    #[test]
    fn plans() {
        let check = |c: Candidate, s: Option<Record>, expected: Plan| {
            assert_eq!(plan(&c, s.as_ref()), expected, "{c:?} vs {s:?}");
        };
        check(candidate(10, 5), None, Plan::Analyse);
        check(
            candidate(10, 5),
            Some(stored(10, 5, RecordState::Analysed)),
            Plan::Skip,
        );
        check(
            candidate(10, 5),
            Some(stored(10, 5, RecordState::Failed)),
            Plan::Skip,
        );
        check(
            candidate(11, 5),
            Some(stored(10, 5, RecordState::Failed)),
            Plan::Analyse,
        );
        check(
            candidate(10, 6),
            Some(stored(10, 5, RecordState::Analysed)),
            Plan::Recheck,
        );
        check(
            candidate(12, 5),
            Some(stored(10, 5, RecordState::TooShort)),
            Plan::Recheck,
        );
        // Failed without a hash (never read whole): tried again although unchanged.
        let mut unread = stored(10, 5, RecordState::Failed);
        unread.sha256.clear();
        check(candidate(10, 5), Some(unread), Plan::Analyse);
    }

    #[test]
    fn a_file_gone_before_it_was_read_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let config = Config::default();
        let ingestor = Ingestor {
            store: &store,
            config: &config,
        };
        let file = dir.path().join("a.wav");
        std::fs::write(&file, b"RIFF....WAVE").unwrap();
        let c = super::candidate(
            &RecordingPath::absolute(&file).unwrap(),
            &config.ingest.extensions,
        )
        .unwrap();
        std::fs::remove_file(&file).unwrap();
        let work = ingestor.process(c, None);
        let mut summary = Summary::default();
        ingestor.store_one(work, 1, &mut summary).unwrap();
        assert_eq!(
            store.all().count(),
            0,
            "no record for a file that is not there"
        );
    }

    #[test]
    fn a_symlinked_directory_leads_outside_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("day")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let roots = [RecordingPath::absolute(&root).unwrap()];
        let at = |p: &str| RecordingPath::absolute(&root.join(p)).unwrap();
        assert!(inside_roots(&at("a.wav"), &roots));
        assert!(inside_roots(&at("day/a.wav"), &roots));
        assert!(!inside_roots(&at("link/a.wav"), &roots));
        assert!(!inside_roots(&at("gone/a.wav"), &roots));
        let elsewhere = RecordingPath::absolute(&outside.join("a.wav")).unwrap();
        assert!(!inside_roots(&elsewhere, &roots));
    }

    #[test]
    fn extensions_match_without_case() {
        let exts = vec!["wav".to_string(), "mp3".to_string()];
        assert!(is_recording(Path::new("/a/b.WAV"), &exts));
        assert!(is_recording(Path::new("b.mp3"), &exts));
        assert!(!is_recording(Path::new("b.json"), &exts));
        assert!(!is_recording(Path::new("wav"), &exts));
    }
}
