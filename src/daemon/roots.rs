//! The recordings roots' identities, checked every few seconds. A watch follows a directory,
//! not its name: a root deleted, or replaced under the same name (moved away and made again, a
//! remount), leaves the watch on the old directory, and new recordings in the new one would
//! wait for the next rescan while `/healthz` said all was well. A root whose directory is not
//! the watched one is watched again and scanned; a missing root is a health problem until it is
//! back.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// A directory's identity: its device and inode.
type Identity = (u64, u64);

fn identity(path: &std::path::Path) -> Option<Identity> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// The roots and the directories their watch is on.
pub(super) struct Roots {
    roots: Vec<PathBuf>,
    watched: Vec<Option<Identity>>,
}

/// What a check found.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Check {
    /// Roots that are now another directory than the watched one (replaced, or back).
    pub(super) replaced: Vec<PathBuf>,
    /// Roots that are gone since the last check.
    pub(super) lost: Vec<PathBuf>,
    /// Roots missing now.
    pub(super) missing: usize,
}

impl Roots {
    /// The roots as they are now (the watch has just been set on them).
    pub(super) fn new(roots: &[PathBuf]) -> Roots {
        Roots {
            roots: roots.to_vec(),
            watched: roots.iter().map(|r| identity(r)).collect(),
        }
    }

    /// The roots that exist, to watch.
    pub(super) fn present(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .zip(&self.watched)
            .filter(|(_, id)| id.is_some())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Compares each root with the directory watched, and takes the new one as watched (the
    /// caller watches it again).
    pub(super) fn check(&mut self) -> Check {
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
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let mut roots = Roots::new(&[a.clone(), b.clone()]);
        assert_eq!(roots.check(), Check::default());

        // Moved away and made again: another directory under the same name.
        std::fs::rename(&a, dir.path().join("a.old")).unwrap();
        std::fs::create_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
        let check = roots.check();
        assert_eq!(check.replaced, vec![a.clone()]);
        assert_eq!(check.lost, vec![b.clone()]);
        assert_eq!(check.missing, 1);
        assert_eq!(roots.present(), vec![a.clone()]);
        let again = roots.check();
        assert!(again.replaced.is_empty() && again.lost.is_empty());
        assert_eq!(again.missing, 1);

        // A file where the root was is no root.
        std::fs::write(&b, b"").unwrap();
        assert_eq!(roots.check().missing, 1);
        std::fs::remove_file(&b).unwrap();
        std::fs::create_dir(&b).unwrap();
        assert_eq!(roots.check().replaced, vec![b]);
        assert_eq!(roots.present().len(), 2);
    }
}
