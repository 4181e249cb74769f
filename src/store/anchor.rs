//! The audit chain's head anchored outside the store: a small file beside the store's directory
//! (`<store>.head` by default, `config::StoreConfig::anchor_for`), written after each flush of the store and fsynced.
//!
//! A store restored from an older copy, or whose history was rewritten, carries a chain that
//! no longer reaches the anchored head: it is refused at open ([`StoreError::BehindAnchor`]),
//! so a legal hold or a consent denial made after the backup cannot vanish without a word. The
//! anchor is only ever written with a head that is already on disk (read before the flush), so
//! it never runs ahead of the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audit::Head;

/// The anchored head, if the file exists. A file that does not parse is an error: an anchor is
/// never guessed.
pub fn read(path: &Path) -> std::io::Result<Option<Head>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the anchor with `head`, durably: a temporary file written and fsynced, renamed over
/// the anchor, and the directory fsynced.
pub fn write(path: &Path, head: &Head) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(head).unwrap_or_default())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_the_store_and_round_trips() {
        let store = crate::config::StoreConfig::default();
        assert_eq!(
            store.anchor_for(&store.path),
            Path::new("/var/lib/callwarden/store.head")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.head");
        assert_eq!(read(&path).unwrap(), None);
        let head = Head {
            seq: 7,
            hash: "ab".into(),
        };
        write(&path, &head).unwrap();
        assert_eq!(read(&path).unwrap(), Some(head));
        std::fs::write(&path, b"{").unwrap();
        assert!(read(&path).is_err());
    }
}
