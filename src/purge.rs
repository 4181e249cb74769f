//! Purge: carrying out the planner's deletions, crash-safe, only under the roots.
//!
//! For each batch of recordings the planner says to purge:
//! 1. write an intent per recording (with its `purge_intent` audit entry) and flush the store;
//! 2. for each: walk from the configured root to the file one directory at a time with
//!    `O_NOFOLLOW` (a symlink anywhere below the root refuses the purge), check the file is the
//!    one recorded (a regular file with the recorded size and mtime; else refuse and flag it),
//!    delete the audio and a regular-file sidecar beside it;
//! 3. fsync every directory touched;
//! 4. turn each record into a tombstone, remove its intent and write its `purge` audit entry, in
//!    one transaction, and flush.
//!
//! Interrupted anywhere, the next run first completes every intent left over (step 2 again:
//! a file still there is checked and deleted, a file already gone is rolled forward), so there is
//! never a deleted file without its tombstone and audit entry, and never a tombstone for a file
//! still there. The `fs` functions below are the only place that deletes anything (the rustix
//! adapter).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditAction, Draft};
use crate::config::Config;
use crate::policy::{self, Action, Decision, PlanCounts, Trigger};
use crate::recording_path::RecordingPath;
use crate::store::{
    Intent, Record, RecordFlag, RecordState, RecordingId, Store, StoreError, Tombstone,
};

/// Recordings deleted between two flushes of the store.
const BATCH: usize = 500;

/// What a purge run did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The plan's counts (what was kept and why).
    pub planned: PlanCounts,
    /// Recordings deleted, with tombstones written.
    pub purged: usize,
    /// Of those, purges an earlier run had started (completed or rolled forward).
    pub completed_from_earlier: usize,
    pub bytes_freed: u64,
    /// Purges refused: recording id, path, why (each is flagged `purge_refused`).
    pub refused: Vec<(u64, RecordingPath, String)>,
    /// Purges that failed for now (an I/O error): their intents stay, the next run retries.
    pub errors: Vec<(u64, RecordingPath, String)>,
    /// Call records dropped by `calls.retention_days`.
    #[serde(default)]
    pub calls_dropped: usize,
}

/// One recording's decision, with what a purge needs to know of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Planned {
    pub id: RecordingId,
    pub path: RecordingPath,
    pub size: u64,
    pub mtime_ns: i128,
    pub started_ms: i64,
    pub decision: Decision,
}

impl Planned {
    pub fn new(r: &Record, decision: Decision) -> Planned {
        Planned {
            id: r.id,
            path: r.path.clone(),
            size: r.size,
            mtime_ns: r.mtime_ns,
            started_ms: r.started_ms,
            decision,
        }
    }
}

/// What happened to one recording's files.
enum Outcome {
    /// Deleted now: the directory to fsync, whether the sidecar went too, the bytes freed.
    Deleted {
        dir: PathBuf,
        dir_fd: OwnedFd,
        sidecar: bool,
        bytes: u64,
    },
    /// The audio is not there (an interrupted purge deleted it, or someone did).
    Gone { sidecar: bool },
    /// Not deleted, never will be by callwarden: someone must look.
    Refused(Refusal),
    /// Not deleted, and no longer to be: a hold was placed after the plan.
    Cancelled(String),
    /// Not deleted for now.
    Error(String),
}

/// Why a purge refused to delete a recording: left to a human, the record flagged
/// `purge_refused` with this as its note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the file changed after ingest: the one on disk is not the recording")]
    ModifiedAfterIngest,
    /// Only a record from a store written before paths were made absolute.
    #[error(
        "the stored path is not absolute (ingested by an older version from a relative path): \
         the next scan of the roots (the daemon's, or `callwarden ingest ROOT`) finds its bytes \
         and carries the record to its absolute path"
    )]
    RelativePath,
    #[error("the path is outside the configured recordings roots (ingest.roots)")]
    OutsideRoots,
    #[error("the path names no file")]
    NoFile,
    #[error("{0} is a symlink: purges never follow symlinks")]
    Symlink(String),
    #[error("{name} is not a regular file ({kind})")]
    NotRegular { name: String, kind: String },
    #[error(
        "the file on disk is not the one recorded (size {size} vs {expected}, mtime changed: \
         {mtime_changed}); it was replaced or changed after ingest"
    )]
    Replaced {
        size: u64,
        expected: u64,
        mtime_changed: bool,
    },
}

/// Runs purges against one store under one configuration.
pub struct Purger<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    /// Who is purging: `daemon`, or the user running the CLI.
    pub actor: &'a str,
    /// Set to stop between batches (the daemon's shutdown); each batch completes first.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// The real time of the run, when the policy is asked as of another time (`purge --now`):
    /// deletions, tombstones and audit entries carry the real time, and the tombstone the
    /// policy's time beside it. `None`: the policy's time is the real time.
    pub real_ms: Option<i64>,
}

impl Purger<'_> {
    /// The time stamped on what the run writes, given the policy's time.
    fn at(&self, now_ms: i64) -> i64 {
        self.real_ms.unwrap_or(now_ms)
    }

    /// The plan at `now_ms` for every recording that still has files, decided one record at a
    /// time as the store is read (memory holds the notable decisions, not the records): the
    /// counts, and the decisions other than "kept by retention" (purges, holds, locks, reviews).
    pub fn plan(
        &self,
        now_ms: i64,
        trigger: Trigger,
    ) -> Result<(Vec<Planned>, PlanCounts), StoreError> {
        let mut notable = Vec::new();
        let mut counts = PlanCounts::default();
        let pending: std::collections::HashSet<RecordingId> =
            self.store.intents()?.into_iter().map(|i| i.id).collect();
        for state in [
            RecordState::Analysed,
            RecordState::TooShort,
            RecordState::Failed,
        ] {
            for r in self.store.in_state(state) {
                let r = r?;
                if pending.contains(&r.id) {
                    continue;
                }
                let d = policy::decide(&r, &self.config.retention, now_ms, trigger);
                policy::tally(&mut counts, &d);
                if !(d.action == Action::Keep
                    && matches!(d.reason, policy::Reason::Retained { .. }))
                {
                    notable.push(Planned::new(&r, d));
                }
            }
        }
        Ok((notable, counts))
    }

    /// Completes the purges an interrupted run left (intents without tombstones).
    pub fn recover(&self, now_ms: i64, summary: &mut Summary) -> Result<(), StoreError> {
        let intents = self.store.intents()?;
        if !intents.is_empty() {
            tracing::warn!(
                count = intents.len(),
                "completing purges an interrupted run left"
            );
        }
        for chunk in intents.chunks(BATCH) {
            self.delete_batch(chunk, now_ms, true, summary)?;
        }
        Ok(())
    }

    /// A scheduled (or disk-pressure) run: completes what an earlier run left, plans, and
    /// purges what is due. With `dry_run`, deletes nothing and writes nothing. Returns the
    /// notable decisions (see [`Purger::plan`]) and what was done.
    pub fn run(
        &self,
        now_ms: i64,
        trigger: Trigger,
        dry_run: bool,
    ) -> Result<(Vec<Planned>, Summary), StoreError> {
        let mut summary = Summary::default();
        if !dry_run {
            self.recover(now_ms, &mut summary)?;
        }
        let (plan, counts) = self.plan(now_ms, trigger)?;
        summary.planned = counts;
        if !dry_run {
            let mut due: Vec<&Planned> = plan
                .iter()
                .filter(|p| p.decision.action == Action::Purge)
                .collect();
            // Oldest first: under disk pressure the run may stop once there is room again.
            due.sort_by_key(|p| (p.started_ms, p.id));
            self.execute(&due, now_ms, trigger, &mut summary)?;
            // Call records follow their own rule (their recordings keep their tombstones).
            let days = self.config.calls.retention_days;
            if days > 0 {
                let before = self.at(now_ms) - i64::from(days) * 86_400_000;
                summary.calls_dropped =
                    self.store
                        .drop_calls_before(before, self.actor, self.at(now_ms))?;
            }
            // The run itself, so "when did the last purge run" has an audited answer.
            self.store.audit(
                vec![Draft::new(
                    self.actor,
                    AuditAction::PurgeRun,
                    serde_json::json!({"trigger": format!("{trigger:?}").to_lowercase(),
                        "purged": summary.purged, "held": summary.planned.held,
                        "refused": summary.refused.len(),
                        "failed": summary.errors.len(),
                        "calls_dropped": summary.calls_dropped}),
                )],
                self.at(now_ms),
            )?;
        }
        Ok((plan, summary))
    }

    /// Purges the given recordings at an operator's request: held and locked ones are refused
    /// (in the returned decisions), the rest deleted as any purge.
    pub fn purge_ids(
        &self,
        ids: &[RecordingId],
        now_ms: i64,
    ) -> Result<(Vec<Planned>, Summary), StoreError> {
        let mut summary = Summary::default();
        self.recover(now_ms, &mut summary)?;
        let mut plan = Vec::new();
        for id in ids {
            let Some(r) = self.store.get(*id)? else {
                return Err(StoreError::Refused(format!(
                    "no recording with id {}",
                    id.0
                )));
            };
            let d = policy::decide(&r, &self.config.retention, now_ms, Trigger::Manual);
            policy::tally(&mut summary.planned, &d);
            plan.push(Planned::new(&r, d));
        }
        let due: Vec<&Planned> = plan
            .iter()
            .filter(|p| p.decision.action == Action::Purge)
            .collect();
        self.execute(&due, now_ms, Trigger::Manual, &mut summary)?;
        Ok((plan, summary))
    }

    fn execute(
        &self,
        due: &[&Planned],
        now_ms: i64,
        trigger: Trigger,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        for chunk in due.chunks(BATCH) {
            if self.stopping() {
                tracing::info!("purge stopped between batches; the rest waits for the next run");
                break;
            }
            if trigger == Trigger::DiskPressure && !self.under_pressure() {
                break;
            }
            let intents: Vec<Intent> = chunk
                .iter()
                .map(|p| Intent {
                    id: p.id,
                    path: p.path.clone(),
                    size: p.size,
                    mtime_ns: p.mtime_ns,
                    rule: p.decision.rule.clone(),
                    reason: p.decision.explain(),
                    scope: p.decision.scope,
                    actor: self.actor.to_string(),
                    planned_ms: self.at(now_ms),
                })
                .collect();
            self.store.write_intents(&intents, self.at(now_ms))?;
            self.delete_batch(&intents, now_ms, false, summary)?;
        }
        Ok(())
    }

    /// Step 2 to 4 for intents already written.
    fn delete_batch(
        &self,
        intents: &[Intent],
        now_ms: i64,
        earlier: bool,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        let mut dirs: HashMap<PathBuf, OwnedFd> = HashMap::new();
        let mut done = Vec::new();
        for intent in intents {
            let tombstone = |sidecar_deleted, rolled_forward| Tombstone {
                deleted_ms: self.at(now_ms),
                policy_ms: (self.at(now_ms) != now_ms).then_some(now_ms),
                rule: intent.rule.clone(),
                reason: intent.reason.clone(),
                actor: intent.actor.clone(),
                scope: intent.scope,
                sidecar_deleted,
                rolled_forward,
            };
            match self.delete_files(intent)? {
                Outcome::Deleted {
                    dir,
                    dir_fd,
                    sidecar,
                    bytes,
                } => {
                    dirs.entry(dir).or_insert(dir_fd);
                    summary.bytes_freed += bytes;
                    done.push((intent.clone(), tombstone(sidecar, false)));
                }
                Outcome::Gone { sidecar } => {
                    tracing::info!(id = intent.id.0, path = %intent.path,
                        "purge: the file was already gone; tombstone written (rolled forward)");
                    done.push((intent.clone(), tombstone(sidecar, true)));
                }
                Outcome::Refused(refusal) => {
                    let why = refusal.to_string();
                    tracing::warn!(id = intent.id.0, path = %intent.path, %why, "purge refused");
                    self.store.refuse_purge(intent, &why, self.at(now_ms))?;
                    summary
                        .refused
                        .push((intent.id.0, intent.path.clone(), why));
                }
                Outcome::Cancelled(why) => {
                    tracing::info!(id = intent.id.0, path = %intent.path, %why, "purge cancelled");
                    self.store.cancel_purge(intent, &why, self.at(now_ms))?;
                }
                Outcome::Error(why) => {
                    tracing::error!(id = intent.id.0, path = %intent.path, %why,
                        "purge failed; it will be retried");
                    summary.errors.push((intent.id.0, intent.path.clone(), why));
                }
            }
        }
        for (dir, fd) in &dirs {
            if let Err(e) = fs::fsync_dir(fd) {
                // The deletions may not be durable yet; the intents stay and the next run checks.
                tracing::error!(dir = %dir.display(), error = %e, "fsync of a directory failed");
                done.retain(|(i, _)| !i.path.starts_with(dir));
            }
        }
        if earlier {
            summary.completed_from_earlier += done.len();
        }
        summary.purged += done.len();
        self.store.finish_purges(&done, self.at(now_ms))?;
        for (intent, _) in done.iter().filter(|(_, t)| t.rolled_forward) {
            self.flag_escaped(intent, now_ms)?;
        }
        Ok(())
    }

    /// A purge that found its file already gone did not see it deleted: the file may have been
    /// moved inside the roots while the purge was pending, and already stored at its new path
    /// (as a copy, since the purge was taking the original). Every live record with the purged
    /// recording's bytes stored since the purge was planned is flagged `escaped_purge`, names
    /// it as its twin, and gets an audit entry; `audit verify` reports it until a purge decides
    /// it again. A copy stored before the plan is a copy made on purpose: it keeps its own life.
    fn flag_escaped(&self, intent: &Intent, now_ms: i64) -> Result<(), StoreError> {
        let purged = intent.id;
        let Some(gone) = self.store.get(purged)? else {
            return Ok(());
        };
        if gone.sha256.is_empty() {
            return Ok(());
        }
        for found in self.store.by_sha(&gone.sha256)? {
            crate::store::until_fresh(|| self.flag_one_escaped(found.id, &gone, intent, now_ms))?;
        }
        Ok(())
    }

    /// Flags the record `id` as holding the bytes of the purged recording `gone`, if it does.
    fn flag_one_escaped(
        &self,
        id: RecordingId,
        gone: &Record,
        intent: &Intent,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let purged = intent.id;
        let Some(old) = self.store.get(id)? else {
            return Ok(());
        };
        if old.id == purged
            || old.sha256 != gone.sha256
            || old.state == RecordState::Purged
            || old.has(RecordFlag::EscapedPurge)
            || old.ingested_ms < intent.planned_ms
        {
            return Ok(());
        }
        let mut record = old.clone();
        record.flag(RecordFlag::EscapedPurge);
        record.twin = Some(purged);
        tracing::warn!(id = record.id.0, path = %record.path, purged = purged.0,
            "the bytes of a recording whose purge found it gone are still stored here");
        let event = Draft::new(
            self.actor,
            AuditAction::EscapedPurge,
            serde_json::json!({"path": record.path, "sha256": record.sha256,
                "purged": purged.0, "purged_path": gone.path}),
        )
        .about(record.id.0);
        self.store
            .commit(&record, Some(&old), event, self.at(now_ms))
    }

    /// The configured root `path` lies under, and the path's components below it (byte-exact).
    fn locate<'p>(&self, path: &'p RecordingPath) -> Result<(PathBuf, Vec<&'p OsStr>), Refusal> {
        if !path.is_absolute() {
            return Err(Refusal::RelativePath);
        }
        let parts = path.parts();
        for root in &self.config.ingest.roots {
            let root_len = root.parts().len();
            if path.is_below(root) {
                return Ok((root.to_path_buf(), parts[root_len..].to_vec()));
            }
        }
        Err(Refusal::OutsideRoots)
    }

    /// Step 2 for one intent.
    fn delete_files(&self, intent: &Intent) -> Result<Outcome, StoreError> {
        let path = &intent.path;
        let held_now = match self.store.get(intent.id)? {
            Some(r) if r.has(RecordFlag::ModifiedAfterIngest) => {
                return Ok(Outcome::Refused(Refusal::ModifiedAfterIngest));
            }
            Some(r) => !r.holds.is_empty(),
            None => false,
        };
        let (root, parts) = match self.locate(path) {
            Ok(found) => found,
            Err(why) => return Ok(Outcome::Refused(why)),
        };
        let Some((name, dirs)) = parts.split_last() else {
            return Ok(Outcome::Refused(Refusal::NoFile));
        };
        let dir_fd = match fs::open_below(&root, dirs) {
            Ok(fd) => fd,
            Err(fs::Open::Symlink(at)) => return Ok(Outcome::Refused(Refusal::Symlink(at))),
            Err(fs::Open::Missing) => return Ok(Outcome::Gone { sidecar: false }),
            Err(fs::Open::Io(e)) => return Ok(Outcome::Error(e)),
        };
        let sidecar_name = Path::new(name).with_extension("json").into_os_string();
        let delete_sidecar = |dir_fd: &OwnedFd| -> Result<bool, String> {
            if sidecar_name.as_os_str() == *name {
                return Ok(false);
            }
            fs::unlink_regular(dir_fd, &sidecar_name, None)
                .map(|u| matches!(u, fs::Unlinked::Deleted))
                .map_err(|e| e.to_string())
        };
        if held_now {
            // A hold placed since the plan wins, as long as the file is still there.
            if fs::exists(&dir_fd, name) {
                return Ok(Outcome::Cancelled(
                    "a legal hold was placed after the plan".into(),
                ));
            }
            return Ok(Outcome::Gone { sidecar: false });
        }
        match fs::unlink_regular(&dir_fd, name, Some((intent.size, intent.mtime_ns))) {
            Ok(fs::Unlinked::Deleted) => {
                let sidecar = delete_sidecar(&dir_fd).unwrap_or_else(|e| {
                    tracing::warn!(path = %intent.path, error = %e, "sidecar not deleted");
                    false
                });
                Ok(Outcome::Deleted {
                    dir: path.parent().into_path_buf(),
                    dir_fd,
                    sidecar,
                    bytes: intent.size,
                })
            }
            Ok(fs::Unlinked::NotThere) => {
                let sidecar = delete_sidecar(&dir_fd).unwrap_or(false);
                if sidecar {
                    let _ = fs::fsync_dir(&dir_fd);
                }
                Ok(Outcome::Gone { sidecar })
            }
            Err(fs::UnlinkError::Refused(why)) => Ok(Outcome::Refused(why)),
            Err(fs::UnlinkError::Io(why)) => Ok(Outcome::Error(why)),
        }
    }

    fn stopping(&self) -> bool {
        self.stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether any root's filesystem has less free space than `retention.min_free_ratio`.
    pub fn under_pressure(&self) -> bool {
        let threshold = self.config.retention.min_free_ratio;
        threshold > 0.0
            && self
                .config
                .ingest
                .roots
                .iter()
                .filter_map(|root| fs::free_ratio(root))
                .any(|free| free < threshold)
    }
}

/// The rustix adapter: directory walks without following symlinks, checked unlinks, free space.
mod fs {
    use std::ffi::OsStr;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use crate::recording_path::escape;

    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;

    pub enum Open {
        Symlink(String),
        Missing,
        Io(String),
    }

    const DIR: OFlags = OFlags::DIRECTORY
        .union(OFlags::RDONLY)
        .union(OFlags::CLOEXEC)
        .union(OFlags::NOFOLLOW);

    /// Opens `root` (the configured path, which may itself be a symlink the operator chose),
    /// then each of `dirs` below it without following symlinks.
    pub fn open_below(root: &Path, dirs: &[&OsStr]) -> Result<OwnedFd, Open> {
        let mut fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT => Open::Missing,
            e => Open::Io(format!("open {}: {e}", root.display())),
        })?;
        let mut at = root.to_path_buf();
        for d in dirs {
            at.push(d);
            let shown = || escape(at.as_os_str().as_bytes());
            fd = rustix::fs::openat(&fd, *d, DIR, Mode::empty()).map_err(|e| match e {
                Errno::LOOP | Errno::NOTDIR => Open::Symlink(shown()),
                Errno::NOENT => Open::Missing,
                e => Open::Io(format!("open {}: {e}", shown())),
            })?;
        }
        Ok(fd)
    }

    /// What an unlink did.
    pub enum Unlinked {
        Deleted,
        /// Nothing by that name was there.
        NotThere,
    }

    /// Why an unlink did not happen.
    #[derive(Debug, thiserror::Error)]
    pub enum UnlinkError {
        /// Something is there, but not the file expected: left to a human.
        #[error("refused: {0}")]
        Refused(super::Refusal),
        /// The filesystem failed (for now): tried again by the next run.
        #[error("{0}")]
        Io(String),
    }

    /// Deletes `name` in `dir` if it is a regular file (and, when `expect` is given, has that
    /// size and mtime in ns).
    pub fn unlink_regular(
        dir: &OwnedFd,
        name: &OsStr,
        expect: Option<(u64, i128)>,
    ) -> Result<Unlinked, UnlinkError> {
        let shown = escape(name.as_bytes());
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(Unlinked::NotThere),
            Err(e) => return Err(UnlinkError::Io(format!("stat {shown}: {e}"))),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(UnlinkError::Refused(super::Refusal::Symlink(shown))),
            other => {
                return Err(UnlinkError::Refused(super::Refusal::NotRegular {
                    name: shown,
                    kind: format!("{other:?}"),
                }))
            }
        }
        if let Some((size, mtime_ns)) = expect {
            let now_mtime = i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec);
            if st.st_size as u64 != size || now_mtime != mtime_ns {
                return Err(UnlinkError::Refused(super::Refusal::Replaced {
                    size: st.st_size as u64,
                    expected: size,
                    mtime_changed: now_mtime != mtime_ns,
                }));
            }
        }
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) => Ok(Unlinked::Deleted),
            Err(Errno::NOENT) => Ok(Unlinked::NotThere),
            Err(e) => Err(UnlinkError::Io(format!("delete {shown}: {e}"))),
        }
    }

    /// Makes the deletions in `dir` durable.
    pub fn fsync_dir(dir: &OwnedFd) -> Result<(), Errno> {
        rustix::fs::fsync(dir)
    }

    /// Whether `name` exists in `dir` (as anything, symlinks not followed).
    pub fn exists(dir: &OwnedFd, name: &OsStr) -> bool {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// The share of free space (for unprivileged users) on the filesystem of `path`.
    pub fn free_ratio(path: &Path) -> Option<f64> {
        let s = rustix::fs::statvfs(path).ok()?;
        (s.f_blocks > 0).then(|| s.f_bavail as f64 / s.f_blocks as f64)
    }

    pub fn writable(dir: &Path) -> std::io::Result<()> {
        use rustix::fs::Access;
        rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(Into::into)
    }
}

/// The share of free space on the filesystem of `path`, if it can be read.
pub fn free_ratio(path: &Path) -> Option<f64> {
    fs::free_ratio(path)
}

/// Whether callwarden may delete in the root `dir`: its filesystem is mounted writable (a
/// systemd `ReadOnlyPaths=` is a read-only mount) and the folder grants write and search. A
/// purge there fails otherwise, harmlessly but every time, so the daemon says so when it starts.
/// (Sub-folders may still differ; each purge failure is logged on its own.)
pub fn writable(dir: &Path) -> std::io::Result<()> {
    fs::writable(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Draft;
    use crate::store::Selection;

    #[test]
    fn a_writable_root_is_told_from_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(writable(dir.path()).is_ok());
        let gone = writable(&dir.path().join("gone")).unwrap_err();
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_hold_placed_after_the_plan_cancels_the_purge() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("a.wav");
        std::fs::write(&file, b"RIFF....").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let mtime_ns = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let mut config = Config::default();
        config.ingest.roots = vec![RecordingPath::absolute(&root).unwrap()];
        let store = Store::open(&dir.path().join("store")).unwrap();
        let record = Record {
            id: RecordingId(1),
            path: RecordingPath::absolute(&file).unwrap(),
            size: meta.len(),
            mtime_ns,
            ..Record::blank()
        };
        let event = Draft::new("t", AuditAction::Ingest, serde_json::Value::Null);
        store.commit(&record, None, event, 0).unwrap();
        let intent = Intent {
            id: RecordingId(1),
            path: record.path.clone(),
            size: record.size,
            mtime_ns,
            rule: "default".into(),
            reason: "expired".into(),
            scope: crate::policy::Scope::Audio,
            actor: "t".into(),
            planned_ms: 0,
        };
        store.write_intents(&[intent], 0).unwrap();
        let selection = Selection {
            ids: vec![1],
            ..Selection::default()
        };
        store.add_hold("K", "late", "t", selection, 1).unwrap();
        let purger = Purger {
            store: &store,
            config: &config,
            actor: "t",
            stop: None,
            real_ms: None,
        };
        let mut summary = Summary::default();
        purger.recover(2, &mut summary).unwrap();
        assert!(file.exists(), "a held recording was deleted");
        assert_eq!(summary.purged, 0);
        assert!(store.intents().unwrap().is_empty());
        let cancelled = store
            .audit_entries()
            .filter_map(|e| e.unwrap().1.ok())
            .filter(|e| e.action == crate::audit::AuditAction::PurgeCancelled)
            .count();
        assert_eq!(cancelled, 1);
    }
}
