//! The recordings roots' identities, checked every few seconds. A watch follows a directory,
//! not its name: a root deleted, or replaced under the same name (moved away and made again, a
//! remount), leaves the watch on the old directory, and new recordings in the new one would
//! wait for the next rescan while `/healthz` said all was well. A root whose directory is not
//! the watched one is watched again and scanned; a missing root is a health problem until it is
//! back. [`Watch`] holds the watch and sets it again when a root is replaced or its thread ends.

use crate::recording_path::RecordingPath;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::endpoint::Health;
use crate::watch::{self, WatchError, WatchEvent};

/// How often the roots are checked for being the directories watched (a stat each).
pub(super) const ROOTS_CHECK: Duration = Duration::from_secs(2);

/// The filesystem watch on the roots, and the directories it is on.
pub(super) struct Watch {
    _watcher: watch::Watcher,
    /// Its events; read only while `alive`.
    pub(super) events: mpsc::UnboundedReceiver<WatchEvent>,
    /// False once the watch's thread is gone (its channel closed).
    pub(super) alive: bool,
    /// Setting the watch again failed: it is tried at every check.
    rewatch_failed: bool,
    roots: Roots,
}

impl Watch {
    pub(super) fn start(roots: &[RecordingPath]) -> Result<Watch, WatchError> {
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = watch::watch(roots, tx)?;
        Ok(Watch {
            _watcher: watcher,
            events,
            alive: true,
            rewatch_failed: false,
            roots: Roots::new(roots),
        })
    }

    /// The watch's thread is gone: no more events until the next check sets it again.
    pub(super) fn lost(&mut self, health: &Health) {
        self.alive = false;
        health.watch_lost.store(true, Ordering::Relaxed);
        tracing::error!(
            "the filesystem watch has stopped: watching again in a moment; until then new files \
             are found by the rescans only"
        );
    }

    /// Checks the roots and tells `health`. A root replaced or back, or a watch whose thread
    /// is gone, is watched again (a new channel; the old watch and its events go); until that
    /// succeeds it is tried at every check and /healthz says the watch has stopped. Returns
    /// the roots to scan for what the watch missed.
    pub(super) fn check(&mut self, health: &Health) -> Vec<RecordingPath> {
        let check = self.roots.check();
        health.roots_missing.store(check.missing, Ordering::Relaxed);
        for root in &check.lost {
            tracing::error!(root = %root, "a recordings root is missing: nothing there \
                is watched until it is back; /healthz says so");
        }
        if check.replaced.is_empty() && self.alive && !self.rewatch_failed {
            return Vec::new();
        }
        let (tx, events) = mpsc::unbounded_channel();
        match watch::watch(&self.roots.present(), tx) {
            Ok(watcher) => {
                let scan = if self.alive && !self.rewatch_failed {
                    check.replaced
                } else {
                    self.roots.present()
                };
                self._watcher = watcher;
                self.events = events;
                self.alive = true;
                self.rewatch_failed = false;
                health.watch_lost.store(false, Ordering::Relaxed);
                tracing::warn!(roots = ?scan, "watching the roots again; scanning them");
                scan
            }
            Err(e) => {
                if !self.rewatch_failed {
                    tracing::error!(error = %e, "watching the roots again failed; retrying every \
                        {} s", ROOTS_CHECK.as_secs());
                }
                self.rewatch_failed = true;
                health.watch_lost.store(true, Ordering::Relaxed);
                Vec::new()
            }
        }
    }
}

/// A directory's identity: its device and inode.
type Identity = (u64, u64);

fn identity(path: &std::path::Path) -> Option<Identity> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// The roots and the directories their watch is on.
struct Roots {
    roots: Vec<RecordingPath>,
    watched: Vec<Option<Identity>>,
}

/// What a check found.
#[derive(Debug, Default, PartialEq)]
struct Check {
    /// Roots that are now another directory than the watched one (replaced, or back).
    replaced: Vec<RecordingPath>,
    /// Roots that are gone since the last check.
    lost: Vec<RecordingPath>,
    /// Roots missing now.
    missing: usize,
}

impl Roots {
    /// The roots as they are now (the watch has just been set on them).
    fn new(roots: &[RecordingPath]) -> Roots {
        Roots {
            roots: roots.to_vec(),
            watched: roots.iter().map(|r| identity(r)).collect(),
        }
    }

    /// The roots that exist, to watch.
    fn present(&self) -> Vec<RecordingPath> {
        self.roots
            .iter()
            .zip(&self.watched)
            .filter(|(_, id)| id.is_some())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Compares each root with the directory watched, and takes the new one as watched (the
    /// caller watches it again).
    fn check(&mut self) -> Check {
        let mut check = Check::default();
        for (root, watched) in self.roots.iter().zip(self.watched.iter_mut()) {
            let now = identity(root);
            if now != *watched {
                match now {
                    Some(_) => check.replaced.push(root.clone()),
                    None => check.lost.push(root.clone()),
                }
                *watched = now;
            }
            check.missing += usize::from(now.is_none());
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_replaced_lost_and_back_is_reported_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            RecordingPath::absolute(&dir.path().join("a")).unwrap(),
            RecordingPath::absolute(&dir.path().join("b")).unwrap(),
        );
        std::fs::create_dir(a.as_path()).unwrap();
        std::fs::create_dir(b.as_path()).unwrap();
        let mut roots = Roots::new(&[a.clone(), b.clone()]);
        assert_eq!(roots.check(), Check::default());

        // Moved away and made again: another directory under the same name.
        std::fs::rename(a.as_path(), dir.path().join("a.old")).unwrap();
        std::fs::create_dir(a.as_path()).unwrap();
        std::fs::remove_dir(b.as_path()).unwrap();
        let check = roots.check();
        assert_eq!(check.replaced, vec![a.clone()]);
        assert_eq!(check.lost, vec![b.clone()]);
        assert_eq!(check.missing, 1);
        assert_eq!(roots.present(), vec![a.clone()]);
        let again = roots.check();
        assert!(again.replaced.is_empty() && again.lost.is_empty());
        assert_eq!(again.missing, 1);

        // A file where the root was is no root.
        std::fs::write(b.as_path(), b"").unwrap();
        assert_eq!(roots.check().missing, 1);
        std::fs::remove_file(b.as_path()).unwrap();
        std::fs::create_dir(b.as_path()).unwrap();
        assert_eq!(roots.check().replaced, vec![b]);
        assert_eq!(roots.present().len(), 2);
    }
}
