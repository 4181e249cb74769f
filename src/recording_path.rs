//! A recording's path as the store keeps it: absolute, normalised, byte-exact.
//!
//! Paths are bytes on Linux. A recording is named in the store, in the index by path, in purge
//! intents, tombstones and audit entries by one [`RecordingPath`], made once at the edge where a
//! path comes in (a scan, the command line, a watch event): absolute (a relative path is taken
//! against the working directory of the command that gave it), without `.` components, with
//! `..` resolved lexically, and with its bytes kept exactly, valid UTF-8 or not. `ingest rec`,
//! `./rec`, `/abs/rec` and `rec/../rec` are therefore one recording, and a name such as
//! `bad\xff\xfe.wav` is stored, found again and purged as itself, never as a look-alike.
//!
//! Stored as a JSON string when the bytes are UTF-8 (the format stores had before), else as
//! `{"bytes": "<hex>"}`; shown with every byte that is not UTF-8 escaped as `\xNN` (and a
//! backslash as `\\`), so what is printed names one file only. This module never touches the
//! filesystem, except [`RecordingPath::from_cwd`], which reads the working directory.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An absolute, normalised path, byte-exact (see the module's documentation).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordingPath(PathBuf);

/// Why bytes are not a [`RecordingPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path {0} is not absolute")]
    Relative(String),
    #[error("the path {0} is not normalised (`.`, `..` or an empty component)")]
    NotNormal(String),
    #[error("the path is empty")]
    Empty,
    #[error("read the working directory: {0}")]
    Cwd(String),
}

impl RecordingPath {
    /// `path` made absolute against `cwd` (itself taken as absolute), with `.` dropped and `..`
    /// resolved lexically (`/..` stays `/`). Never touches the filesystem.
    pub fn resolve(path: &Path, cwd: &Path) -> RecordingPath {
        let joined;
        let full = if path.is_absolute() {
            path
        } else {
            joined = cwd.join(path);
            joined.as_path()
        };
        let mut out = PathBuf::from("/");
        for c in full.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::ParentDir => {
                    out.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        RecordingPath(out)
    }

    /// `path` as given on the command line or by a scan: made absolute against the working
    /// directory (read here, at the edge) when it is relative.
    pub fn from_cwd(path: &Path) -> Result<RecordingPath, PathError> {
        if path.is_absolute() {
            return Ok(RecordingPath::resolve(path, Path::new("/")));
        }
        let cwd = std::env::current_dir().map_err(|e| PathError::Cwd(e.to_string()))?;
        Ok(RecordingPath::resolve(path, &cwd))
    }

    /// An absolute path, normalised (`.` dropped, `..` resolved lexically); a relative one is
    /// refused.
    pub fn absolute(path: &Path) -> Result<RecordingPath, PathError> {
        if !path.is_absolute() {
            return Err(PathError::Relative(escape(path.as_os_str().as_bytes())));
        }
        Ok(RecordingPath::resolve(path, Path::new("/")))
    }

    /// Bytes that must already be absolute and normalised (an index key, a stored value).
    pub fn from_bytes(bytes: &[u8]) -> Result<RecordingPath, PathError> {
        if bytes.is_empty() {
            return Err(PathError::Empty);
        }
        let path = Path::new(OsStr::from_bytes(bytes));
        let shown = || escape(bytes);
        if !path.is_absolute() {
            return Err(PathError::Relative(shown()));
        }
        let normal = RecordingPath::resolve(path, Path::new("/"));
        if normal.as_bytes() != bytes {
            return Err(PathError::NotNormal(shown()));
        }
        Ok(normal)
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_os_str().as_bytes()
    }

    /// The path's components under `/`, byte-exact.
    pub fn parts(&self) -> Vec<&OsStr> {
        self.0
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// Whether this path lies strictly below `dir` (component-wise).
    pub fn is_below(&self, dir: &RecordingPath) -> bool {
        self.0 != dir.0 && self.0.starts_with(&dir.0)
    }

    /// The same path with another extension (a recording's sidecar).
    pub fn with_extension(&self, ext: impl AsRef<OsStr>) -> RecordingPath {
        RecordingPath(self.0.with_extension(ext))
    }

    /// The directory the file is in.
    pub fn parent(&self) -> RecordingPath {
        RecordingPath(self.0.parent().unwrap_or(Path::new("/")).to_path_buf())
    }

    /// The path as text that names it exactly (see [`escape`]).
    pub fn escaped(&self) -> String {
        escape(self.as_bytes())
    }

    pub fn into_path_buf(self) -> PathBuf {
        self.0
    }
}

/// Bytes as text: UTF-8 as it is, every other byte as `\xNN`, a backslash as `\\`. Two
/// different byte strings never print the same.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if ch == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(ch);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

impl fmt::Display for RecordingPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

impl fmt::Debug for RecordingPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.escaped())
    }
}

/// `/`: the placeholder of a blank record, never a recording's path.
impl Default for RecordingPath {
    fn default() -> RecordingPath {
        RecordingPath(PathBuf::from("/"))
    }
}

/// Read-only access to the path (for opening, `exists`, `extension`...). Printing goes through
/// `Display`, which escapes, rather than `Path::display`, which does not.
impl std::ops::Deref for RecordingPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for RecordingPath {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

impl AsRef<Path> for RecordingPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl PartialEq<&RecordingPath> for RecordingPath {
    fn eq(&self, other: &&RecordingPath) -> bool {
        self == *other
    }
}

impl PartialEq<str> for RecordingPath {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for RecordingPath {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// The stored form: a string when UTF-8, else the bytes in hex.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(String),
    Bytes { bytes: String },
}

impl Serialize for RecordingPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Stored::Bytes {
                bytes: hex::encode(self.as_bytes()),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RecordingPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = match Stored::deserialize(d)? {
            Stored::Text(t) => t.into_bytes(),
            Stored::Bytes { bytes } => hex::decode(bytes).map_err(serde::de::Error::custom)?,
        };
        if bytes.is_empty() {
            return Err(serde::de::Error::custom(PathError::Empty));
        }
        // Stores written before paths were made absolute may hold a relative path: it is read
        // as it is (normalised, kept relative) so the store stays readable, and the purge and
        // the checks that need an absolute path refuse it by name (`Path::is_absolute`).
        let path = PathBuf::from(OsString::from_vec(bytes));
        if path.is_absolute() {
            Ok(RecordingPath::resolve(&path, Path::new("/")))
        } else {
            Ok(RecordingPath(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, cwd: &str, expected: &str) {
        assert_eq!(
            RecordingPath::resolve(Path::new(path), Path::new(cwd)).escaped(),
            expected,
            "{path} in {cwd}"
        );
    }

    #[test]
    fn one_file_one_path() {
        check("rec", "/srv", "/srv/rec");
        check("./rec", "/srv", "/srv/rec");
        check("/srv/rec", "/elsewhere", "/srv/rec");
        check("rec/../rec", "/srv", "/srv/rec");
        check("rec//a.wav", "/srv", "/srv/rec/a.wav");
        check("../../../a.wav", "/srv", "/a.wav");
        check("/srv/./rec/", "/", "/srv/rec");
    }

    #[test]
    fn bytes_round_trip_exactly() {
        let raw = b"/srv/rec/bad\xff\xfe.wav";
        let p = RecordingPath::from_bytes(raw).unwrap();
        assert_eq!(p.as_bytes(), raw);
        assert_eq!(p.to_string(), "/srv/rec/bad\\xff\\xfe.wav");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"bytes":"2f7372762f7265632f626164fffe2e776176"}"#);
        let back: RecordingPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        // A UTF-8 path keeps the stored format of earlier stores: a plain string.
        let p = RecordingPath::from_bytes("/srv/ré c.wav".as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""/srv/ré c.wav""#);
    }

    #[test]
    fn escaping_never_merges_two_names() {
        // The bytes \xff and the text `\xff` print differently.
        assert_ne!(escape(b"a\xff"), escape(b"a\\xff"));
        assert_eq!(escape(b"a\\xff"), "a\\\\xff");
    }

    #[test]
    fn bytes_must_be_normal() {
        assert!(matches!(
            RecordingPath::from_bytes(b"rec/a.wav"),
            Err(PathError::Relative(_))
        ));
        assert!(matches!(
            RecordingPath::from_bytes(b"/srv/../a.wav"),
            Err(PathError::NotNormal(_))
        ));
        assert!(RecordingPath::from_bytes(b"").is_err());
    }

    #[test]
    fn below() {
        let root = RecordingPath::from_bytes(b"/srv/rec").unwrap();
        assert!(RecordingPath::from_bytes(b"/srv/rec/a.wav")
            .unwrap()
            .is_below(&root));
        assert!(!RecordingPath::from_bytes(b"/srv/record.wav")
            .unwrap()
            .is_below(&root));
        assert!(!root.is_below(&root));
    }
}
