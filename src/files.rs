//! Opening the files callwarden reads (recordings and sidecars): regular files only, checked on
//! the open descriptor, never blocking, never through a symlink in the roots, bounded in size
//! where the content is parsed whole. The rustix adapter for reads (deletes are `purge::fs`).
//!
//! A FIFO, socket or device named `x.wav` or `x.json` is refused before a byte is read: the open
//! itself never waits (`O_NONBLOCK`, so a FIFO with no writer does not wedge a worker), and the
//! type is taken from `fstat` on the descriptor, so nothing can be swapped in between a check
//! and the read. It never writes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::recording_path::escape;

/// Whether a symlink as the last component of the path is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Never: everything under the recordings roots (`O_NOFOLLOW`).
    Never,
    /// A file a user named on the command line (`callwarden analyze link.wav`).
    Symlinks,
}

/// Why a file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("open {path}: no such file")]
    Missing { path: String },
    #[error("open {path}: it is a symlink, and symlinks in the recordings roots are not followed")]
    Symlink { path: String },
    #[error("open {path}: it is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("read {path}: {size} bytes is more than the limit of {max}")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("open {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl OpenError {
    /// Whether trying again later may succeed (a permission fixed, descriptors freed, an I/O
    /// error), as opposed to a file that is what it is.
    pub fn is_transient(&self) -> bool {
        match self {
            OpenError::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            ),
            _ => false,
        }
    }
}

fn kind_of(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    }
}

/// Opens `path` for reading if it is a regular file; returns it with its size (from `fstat` on
/// the open descriptor).
pub fn open_regular(path: &Path, follow: Follow) -> Result<(File, u64), OpenError> {
    let shown = || escape(path.as_os_str().as_encoded_bytes());
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if follow == Follow::Never {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => OpenError::Missing { path: shown() },
        Errno::LOOP if follow == Follow::Never => OpenError::Symlink { path: shown() },
        e => OpenError::Io {
            path: shown(),
            source: e.into(),
        },
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| OpenError::Io {
        path: shown(),
        source: e.into(),
    })?;
    let t = FileType::from_raw_mode(st.st_mode);
    if t != FileType::RegularFile {
        return Err(OpenError::NotRegular {
            path: shown(),
            kind: kind_of(t),
        });
    }
    // O_NONBLOCK means nothing to a regular file's reads; it is left set.
    Ok((File::from(fd), st.st_size as u64))
}

/// The whole of a small regular file (a sidecar), refused past `max` bytes whatever its size
/// claims: at most `max + 1` bytes are ever read.
pub fn read_capped(path: &Path, follow: Follow, max: u64) -> Result<Vec<u8>, OpenError> {
    let shown = || escape(path.as_os_str().as_encoded_bytes());
    let (file, size) = open_regular(path, follow)?;
    if size > max {
        return Err(OpenError::TooLarge {
            path: shown(),
            size,
            max,
        });
    }
    let mut out = Vec::with_capacity(size as usize);
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|source| OpenError::Io {
            path: shown(),
            source,
        })?;
    if out.len() as u64 > max {
        return Err(OpenError::TooLarge {
            path: shown(),
            size: out.len() as u64,
            max,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open_and_none_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        assert_eq!(open_regular(&file, Follow::Never).unwrap().1, 4);

        let fifo = dir.path().join("x.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // No writer: a blocking open would wait forever.
        assert!(matches!(
            open_regular(&fifo, Follow::Never),
            Err(OpenError::NotRegular { kind: "a FIFO", .. })
        ));
        assert!(matches!(
            open_regular(Path::new("/dev/zero"), Follow::Symlinks),
            Err(OpenError::NotRegular {
                kind: "a character device",
                ..
            })
        ));
        assert!(matches!(
            open_regular(dir.path(), Follow::Never),
            Err(OpenError::NotRegular {
                kind: "a directory",
                ..
            })
        ));

        let link = dir.path().join("y.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            open_regular(&link, Follow::Never),
            Err(OpenError::Symlink { .. })
        ));
        assert!(open_regular(&link, Follow::Symlinks).is_ok());
        assert!(matches!(
            open_regular(&dir.path().join("gone"), Follow::Never),
            Err(OpenError::Missing { .. })
        ));
    }

    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.json");
        std::fs::write(&file, vec![b' '; 100]).unwrap();
        assert_eq!(read_capped(&file, Follow::Never, 100).unwrap().len(), 100);
        assert!(matches!(
            read_capped(&file, Follow::Never, 99),
            Err(OpenError::TooLarge { size: 100, .. })
        ));
    }
}
