//! Adapter for `notify` (the only place that names it): filesystem events as our own
//! [`WatchEvent`]s.
//!
//! Events are hints, not truth: they can be merged or lost (queue overflow), so the daemon also
//! rescans. A close after writing or a move into the tree means "finished"; any other change
//! means "still changing"; an overflow asks for a rescan. It never reads or writes files.

use std::path::Path;

use crate::recording_path::RecordingPath;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Closed after writing, or moved in: the writer is done with it.
    Finished(RecordingPath),
    /// Created or modified: may still be growing.
    Changed(RecordingPath),
    /// A new directory (its files may predate the watch on it).
    NewDirectory(RecordingPath),
    /// Removed or moved away.
    Removed(RecordingPath),
    /// Events were lost: scan again.
    Rescan,
}

#[derive(Debug, thiserror::Error)]
#[error("watch {path}: {message}")]
pub struct WatchError {
    pub path: String,
    pub message: String,
}

/// Keeps the watches alive while held.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

fn translate(event: notify::Event) -> Vec<WatchEvent> {
    if event.need_rescan() {
        return vec![WatchEvent::Rescan];
    }
    // The watched roots are absolute and normalised, and notify joins names onto them.
    let paths: Vec<RecordingPath> = event
        .paths
        .iter()
        .map(|p| RecordingPath::resolve(p, Path::new("/")))
        .collect();
    let each = |f: fn(RecordingPath) -> WatchEvent| paths.iter().cloned().map(f).collect();
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => each(WatchEvent::Finished),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => each(WatchEvent::Finished),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            // [from, to]: the old name is gone, the new one is finished.
            let mut out = Vec::new();
            if let Some(from) = paths.first() {
                out.push(WatchEvent::Removed(from.clone()));
            }
            if let Some(to) = paths.get(1) {
                out.push(WatchEvent::Finished(to.clone()));
            }
            out
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => each(WatchEvent::Removed),
        EventKind::Create(CreateKind::Folder) => each(WatchEvent::NewDirectory),
        EventKind::Create(_) | EventKind::Modify(_) => each(WatchEvent::Changed),
        EventKind::Remove(RemoveKind::Folder) => Vec::new(),
        EventKind::Remove(_) => each(WatchEvent::Removed),
        _ => Vec::new(),
    }
}

/// Watches `roots` recursively, sending events to `tx` (never blocking the watcher).
pub fn watch(
    roots: &[RecordingPath],
    tx: UnboundedSender<WatchEvent>,
) -> Result<Watcher, WatchError> {
    let err = |path: &Path, e: notify::Error| WatchError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let events = match res {
            Ok(event) => translate(event),
            Err(_) => vec![WatchEvent::Rescan],
        };
        for e in events {
            let _ = tx.send(e);
        }
    })
    .map_err(|e| err(Path::new("(watcher)"), e))?;
    for root in roots {
        inner
            .watch(root.as_path(), RecursiveMode::Recursive)
            .map_err(|e| err(root.as_path(), e))?;
    }
    Ok(Watcher { _inner: inner })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(std::path::PathBuf::from(p));
        }
        e
    }

    #[test]
    fn events_translate() {
        let check = |kind: EventKind, paths: &[&str], expected: Vec<WatchEvent>| {
            assert_eq!(translate(event(kind, paths)), expected, "{kind:?}");
        };
        let p = |s: &str| RecordingPath::from_bytes(s.as_bytes()).unwrap();
        check(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/r/a.wav"],
            vec![WatchEvent::Finished(p("/r/a.wav"))],
        );
        check(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/r/.a.tmp", "/r/a.wav"],
            vec![
                WatchEvent::Removed(p("/r/.a.tmp")),
                WatchEvent::Finished(p("/r/a.wav")),
            ],
        );
        check(
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            &["/r/a.wav"],
            vec![WatchEvent::Changed(p("/r/a.wav"))],
        );
        check(
            EventKind::Create(CreateKind::Folder),
            &["/r/day"],
            vec![WatchEvent::NewDirectory(p("/r/day"))],
        );
        check(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            &["/r/a.wav"],
            vec![],
        );
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(translate(overflow), vec![WatchEvent::Rescan]);
    }
}
