//! Reading CDR files (the I/O edge of `cdr`): line by line with a cap on a line's length, once
//! for `calls import`, and followed like a log by the daemon (`[[calls.source]]`).
//!
//! Following keeps, per source, a cursor in the store: the file's device and inode, the byte
//! offset after the last complete line read and that line's number. It is written in the same
//! transaction as the call records those lines gave, so a crash loses nothing and reads nothing
//! twice. A line still being written (no newline yet) waits for the next poll. Rotation by
//! rename (logrotate's default, Asterisk's `logger rotate`): the old file is read to its end,
//! through the descriptor held open, or found again by its inode in the same folder after a
//! restart, before the new file is read from its start; a file truncated in place
//! (copytruncate) is read again from its start.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cdr::{CallRecord, Template, Zone};
use crate::store::{Store, StoreError};

/// A line that could not be read into a call record: where (`:LINE`), and why.
pub type Rejected = Vec<(String, String)>;

/// Reads the lines of `reader` from line number `first_line`: each complete line (without its
/// newline, nor a trailing CR) is parsed; a line longer than `max_line` bytes is skipped
/// without being held in memory. With `partial_last`, a last line without a newline counts
/// (a whole file); without it, it is left for later (a file being written). Returns the bytes
/// consumed and the number of lines.
pub fn read_lines(
    reader: &mut impl BufRead,
    first_line: u64,
    max_line: u64,
    partial_last: bool,
    mut each: impl FnMut(u64, Result<&[u8], String>),
) -> std::io::Result<(u64, u64)> {
    let (mut consumed, mut lines) = (0u64, 0u64);
    loop {
        let number = first_line + lines;
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take(max_line + 1)
            .read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && n > max_line {
            // Too long: skip to its end without keeping it.
            let (rest, ended) = skip_line(reader)?;
            if !ended && !partial_last {
                // Still being written: come back to it (the skipped part is read again then).
                break;
            }
            consumed += n + rest;
            lines += 1;
            each(
                number,
                Err(format!(
                    "a line of more than {max_line} bytes (calls.max_line_bytes)"
                )),
            );
            continue;
        }
        if !complete && !partial_last {
            break;
        }
        consumed += n;
        lines += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            each(number, Ok(&line));
        }
    }
    Ok((consumed, lines))
}

/// Reads up to and past the next newline, discarding: the bytes skipped, and whether a newline
/// ended them (else the input did).
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let (done, used) = {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok((skipped, false));
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            }
        };
        reader.consume(used);
        skipped += used as u64;
        if done {
            return Ok((skipped, true));
        }
    }
}

/// A source's cursor as stored (the default before its first read, or if it cannot be read).
pub(crate) fn load_cursor<T: serde::de::DeserializeOwned + Default>(
    store: &Store,
    key: &str,
) -> Result<T, StoreError> {
    Ok(store
        .meta(key)?
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or_default())
}

/// One FreeSWITCH JSON CDR file (at most `max_bytes`), or why it could not be read.
pub fn read_json_cdr(
    path: &Path,
    follow: crate::files::Follow,
    max_bytes: u64,
) -> Result<CallRecord, String> {
    let bytes = crate::files::read_capped(path, follow, max_bytes).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    crate::cdr::from_freeswitch_json(&text)
}

/// Parses CSV lines into call records and the lines rejected.
pub fn parse_csv(
    reader: &mut impl BufRead,
    first_line: u64,
    template: &Template,
    zone: &Zone,
    max_line: u64,
    partial_last: bool,
) -> std::io::Result<(Vec<CallRecord>, Rejected, u64, u64)> {
    let mut legs = Vec::new();
    let mut rejected = Vec::new();
    let (consumed, lines) =
        read_lines(
            reader,
            first_line,
            max_line,
            partial_last,
            |n, line| match line.and_then(|l| {
                crate::cdr::csv_fields(l).and_then(|f| crate::cdr::from_fields(&f, template, zone))
            }) {
                Ok(leg) => legs.push(leg),
                Err(why) => rejected.push((format!(":{n}"), why)),
            },
        )?;
    Ok((legs, rejected, consumed, lines))
}

/// Where following a source has got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub dev: u64,
    pub ino: u64,
    /// Bytes read (complete lines only).
    pub offset: u64,
    /// Lines read.
    pub line: u64,
}

/// One followed CSV file.
pub struct Tail {
    pub path: PathBuf,
    template: Template,
    cursor: Option<Cursor>,
    /// The file being read, kept open so that a rename does not lose its last lines.
    open: Option<(File, u64, u64)>,
}

/// What one poll of a source read.
#[derive(Debug, Default)]
pub struct Polled {
    pub new: usize,
    pub changed: usize,
    pub rejected: Rejected,
    /// Something worth a warning (a file truncated, a rotated file not found).
    pub notes: Vec<String>,
}

impl Tail {
    pub fn new(path: PathBuf, template: Template) -> Tail {
        Tail {
            path,
            template,
            cursor: None,
            open: None,
        }
    }

    fn cursor_key(&self) -> String {
        format!("cdr_cursor:{}", self.path.display())
    }

    /// Reads what was appended since the last poll (and what a rotation left in the old file),
    /// and stores it with the new cursor.
    pub fn poll(
        &mut self,
        store: &Store,
        zone: &Zone,
        max_line: u64,
        now_ms: i64,
    ) -> Result<Polled, StoreError> {
        let mut polled = Polled::default();
        if self.cursor.is_none() {
            self.cursor = Some(load_cursor(store, &self.cursor_key())?);
        }
        let current = match std::fs::metadata(&self.path) {
            Ok(m) if m.is_file() => Some((m.dev(), m.ino())),
            _ => None,
        };
        let cursor = self.cursor.unwrap_or_default();
        // The file we were reading is no longer at the path: finish it first.
        let reading = self
            .open
            .as_ref()
            .map(|(_, d, i)| (*d, *i))
            .or((cursor.dev != 0).then_some((cursor.dev, cursor.ino)));
        // Only once a new file is at the path: until then the old one may still be written to.
        if let (Some((dev, ino)), Some(now_at)) = (reading, current) {
            if now_at != (dev, ino) {
                let old = match self.open.take() {
                    Some((f, _, _)) => Some(f),
                    None => find_by_inode(&self.path, dev, ino),
                };
                match old {
                    Some(file) => {
                        self.read_from(
                            file,
                            (dev, ino),
                            true,
                            store,
                            zone,
                            max_line,
                            now_ms,
                            &mut polled,
                        )?;
                    }
                    None => polled.notes.push(format!(
                        "{}: the file read before (inode {ino}) is gone; lines it gained after \
                         offset {} were not read",
                        self.path.display(),
                        cursor.offset
                    )),
                }
                // The new file, from its start.
                let next = Cursor {
                    dev: current.map_or(0, |c| c.0),
                    ino: current.map_or(0, |c| c.1),
                    offset: 0,
                    line: 0,
                };
                store.put_meta(&self.cursor_key(), &json(&next))?;
                self.cursor = Some(next);
            }
        }
        let Some((dev, ino)) = current else {
            // Moved away and nothing new yet: what the old file gained is read meanwhile.
            if let Some((file, d, i)) = self.open.take() {
                self.read_from(
                    file,
                    (d, i),
                    false,
                    store,
                    zone,
                    max_line,
                    now_ms,
                    &mut polled,
                )?;
            }
            return Ok(polled);
        };
        let file = match self.open.take() {
            Some((f, d, i)) if (d, i) == (dev, ino) => f,
            _ => match crate::files::open_regular(&self.path, crate::files::Follow::Symlinks) {
                Ok((f, _)) => f,
                Err(e) => {
                    polled.notes.push(e.to_string());
                    return Ok(polled);
                }
            },
        };
        let c = self.cursor.unwrap_or_default();
        if (c.dev, c.ino) != (dev, ino) {
            self.cursor = Some(Cursor {
                dev,
                ino,
                offset: 0,
                line: 0,
            });
        }
        self.read_from(
            file,
            (dev, ino),
            false,
            store,
            zone,
            max_line,
            now_ms,
            &mut polled,
        )?;
        Ok(polled)
    }

    /// Reads `file` from the cursor (to its very end when `finished`: it will not grow), stores
    /// what it gave with the cursor after it, and keeps the file open unless finished.
    #[allow(clippy::too_many_arguments)]
    fn read_from(
        &mut self,
        mut file: File,
        (dev, ino): (u64, u64),
        finished: bool,
        store: &Store,
        zone: &Zone,
        max_line: u64,
        now_ms: i64,
        polled: &mut Polled,
    ) -> Result<(), StoreError> {
        let mut c = self.cursor.unwrap_or_default();
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size < c.offset {
            polled.notes.push(format!(
                "{}: the file is shorter than what was read ({size} < {} bytes): truncated, \
                 read again from its start",
                self.path.display(),
                c.offset
            ));
            c.offset = 0;
            c.line = 0;
        }
        if file.seek(SeekFrom::Start(c.offset)).is_err() {
            return Ok(());
        }
        // At most 64 MiB a poll, so a huge backlog is read over several polls.
        let mut reader = BufReader::new((&mut file).take(64 << 20));
        let parsed = parse_csv(
            &mut reader,
            c.line + 1,
            &self.template,
            zone,
            max_line,
            finished,
        );
        let (legs, rejected, consumed, lines) = match parsed {
            Ok(p) => p,
            Err(e) => {
                polled
                    .notes
                    .push(format!("read {}: {e}", self.path.display()));
                return Ok(());
            }
        };
        drop(reader);
        if lines > 0 {
            let next = Cursor {
                dev,
                ino,
                offset: c.offset + consumed,
                line: c.line + lines,
            };
            let source = format!("{}:{}-{}", self.path.display(), c.line + 1, next.line);
            let stored = store.put_calls_with_cursor(
                &legs,
                "daemon",
                &source,
                rejected.len(),
                now_ms,
                Some((&self.cursor_key(), json(&next))),
            )?;
            polled.new += stored.new;
            polled.changed += stored.changed;
            c = next;
        }
        polled.rejected.extend(
            rejected
                .into_iter()
                .map(|(at, why)| (format!("{}{at}", self.path.display()), why)),
        );
        self.cursor = Some(c);
        if !finished {
            self.open = Some((file, dev, ino));
        }
        Ok(())
    }
}

fn json(cursor: &Cursor) -> Vec<u8> {
    serde_json::to_vec(cursor).unwrap_or_default()
}

/// The file with this device and inode in the folder of `path` (a rotated log), opened.
fn find_by_inode(path: &Path, dev: u64, ino: u64) -> Option<File> {
    let dir = path.parent()?;
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        (m.is_file() && m.dev() == dev && m.ino() == ino).then(|| File::open(e.path()).ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_being_written_wait_and_long_ones_are_skipped_unread() {
        let text = b"a\r\nbb\n\n".to_vec();
        let mut long = text.clone();
        long.extend(vec![b'x'; 5000]);
        long.extend_from_slice(b"\nccc\ndd");
        let mut seen = Vec::new();
        let (consumed, lines) = read_lines(&mut &long[..], 1, 1024, false, |n, l| {
            seen.push((n, l.map(|b| String::from_utf8_lossy(b).into_owned())))
        })
        .unwrap();
        assert_eq!(lines, 5, "{seen:?}");
        assert_eq!(
            consumed as usize,
            long.len() - 2,
            "`dd` waits for its newline"
        );
        assert_eq!(seen[0], (1, Ok("a".into())));
        assert_eq!(seen[1], (2, Ok("bb".into())));
        assert!(seen[2]
            .1
            .as_ref()
            .unwrap_err()
            .contains("more than 1024 bytes"));
        assert_eq!(seen[2].0, 4);
        assert_eq!(seen[3], (5, Ok("ccc".into())));
        // A whole file: the last line counts without its newline.
        let mut all = Vec::new();
        read_lines(&mut &long[..], 1, 1024, true, |n, l| {
            all.push((n, l.is_ok()))
        })
        .unwrap();
        assert_eq!(all.last(), Some(&(6, true)));
    }
}

/// Where following a folder of JSON CDRs has got to: the newest file read, by status-change
/// time (ctime) then name. Not the modification time: a file copied in with its old time kept
/// (`cp -p`, `rsync -a`, an archive unpacked) has an old mtime but a new ctime, which nobody
/// can set back. A file whose ctime changes again (renamed, chmod) is read again, and its rows
/// are recognised as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DirCursor {
    /// Cursors from before were by mtime, which for files the PBX wrote is their ctime.
    #[serde(alias = "mtime_ns")]
    ctime_ns: i128,
    name: String,
}

/// A followed folder of FreeSWITCH `mod_json_cdr` files (one call each, written once).
pub struct JsonDir {
    pub path: PathBuf,
    cursor: Option<DirCursor>,
}

/// A file younger than this may still be being written: it waits for the next poll.
const SETTLE_NS: i128 = 1_000_000_000;

/// Files read per poll at most.
const FILES_PER_POLL: usize = 5000;

impl JsonDir {
    pub fn new(path: PathBuf) -> JsonDir {
        JsonDir { path, cursor: None }
    }

    fn cursor_key(&self) -> String {
        format!("cdr_cursor:json:{}", self.path.display())
    }

    /// Reads the files written (or copied in) since the last poll, oldest first, and stores
    /// their records with the new cursor.
    pub fn poll(
        &mut self,
        store: &Store,
        max_bytes: u64,
        now_ms: i64,
    ) -> Result<Polled, StoreError> {
        let mut polled = Polled::default();
        if self.cursor.is_none() {
            self.cursor = Some(load_cursor(store, &self.cursor_key())?);
        }
        let cursor = self.cursor.clone().unwrap_or_default();
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) => {
                polled
                    .notes
                    .push(format!("read {}: {e}", self.path.display()));
                return Ok(polled);
            }
        };
        let now_ns = i128::from(now_ms) * 1_000_000;
        let mut files: Vec<(i128, String)> = entries
            .flatten()
            .filter_map(|e| {
                use std::os::unix::fs::MetadataExt;
                let name = e.file_name().to_str()?.to_string();
                let m = e.metadata().ok()?;
                let ctime = i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec());
                (m.is_file() && name.ends_with(".json")).then_some((ctime, name))
            })
            .filter(|(t, n)| (*t, n.as_str()) > (cursor.ctime_ns, cursor.name.as_str()))
            .filter(|(t, _)| now_ns - t >= SETTLE_NS)
            .collect();
        files.sort();
        files.truncate(FILES_PER_POLL);
        let Some(last) = files.last().cloned() else {
            return Ok(polled);
        };
        let mut legs = Vec::new();
        let mut rejected = Vec::new();
        for (_, name) in &files {
            let path = self.path.join(name);
            match read_json_cdr(&path, crate::files::Follow::Never, max_bytes) {
                Ok(leg) => legs.push(leg),
                Err(why) => rejected.push((path.display().to_string(), why)),
            }
        }
        let next = DirCursor {
            ctime_ns: last.0,
            name: last.1,
        };
        let stored = store.put_calls_with_cursor(
            &legs,
            "daemon",
            &format!("{} ({} files)", self.path.display(), files.len()),
            rejected.len(),
            now_ms,
            Some((
                &self.cursor_key(),
                serde_json::to_vec(&next).unwrap_or_default(),
            )),
        )?;
        polled.new = stored.new;
        polled.changed = stored.changed;
        polled.rejected = rejected;
        self.cursor = Some(next);
        Ok(polled)
    }
}
