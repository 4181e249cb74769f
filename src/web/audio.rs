//! Playing and downloading a recording: the original file, as stored, streamed with HTTP Range
//! (RFC 9110 §14) so the browser's player can seek. Only the stored path of a recording the
//! user may see is opened, only inside the recordings roots, never through a symlink, only a
//! regular file, and only while its size is the one stored. Each playback and download is an
//! audit entry.

use std::io::{Seek, SeekFrom};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;

use super::{audit, now_ms, shown, who, App, Failure};
use crate::audit::{AuditAction, Draft};

/// A playback of the same recording in the same session is audited once in this long (ms): a
/// player asks for many ranges while it plays and seeks.
const LISTEN_AUDIT_MS: i64 = 600_000;

/// A byte range asked for: `[start, end]`, inclusive, within a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// What a `Range` header asks of a file of `size` bytes: None for the whole file (no header,
/// another unit, several ranges: RFC 9110 lets a server send the whole), Err for a range the
/// file cannot satisfy.
pub fn range(header: Option<&str>, size: u64) -> Result<Option<Span>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let span = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end && start < size => Span {
            start,
            end: end.min(size - 1),
        },
        (Ok(start), Err(_)) if b.is_empty() && start < size => Span {
            start,
            end: size - 1,
        },
        (Err(_), Ok(suffix)) if a.is_empty() && suffix > 0 && size > 0 => Span {
            start: size.saturating_sub(suffix),
            end: size - 1,
        },
        _ => return Err(()),
    };
    Ok(Some(span))
}

/// The media type a browser plays the container as.
fn mime(container: &str) -> &'static str {
    match container {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

pub async fn play(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    serve(app, headers, id, false).await
}

pub async fn download(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    serve(app, headers, id, true).await
}

async fn serve(app: App, headers: HeaderMap, id: String, attachment: bool) -> Response {
    let Some((token, user)) = who(&app, &headers) else {
        return Failure(StatusCode::UNAUTHORIZED, "log in first".into()).into_response();
    };
    let Ok(id) = id.parse::<u64>() else {
        return Failure(StatusCode::NOT_FOUND, "no such recording".into()).into_response();
    };
    // The same question the call page asks: the user's role decides, as everywhere.
    let shown = match shown(&app, &user, id).await {
        Ok(s) => s,
        Err(f) => return f.into_response(),
    };
    let record = shown.record;
    if record.state == crate::record::RecordState::Purged {
        return Failure(StatusCode::GONE, format!("recording {id} was purged")).into_response();
    }
    let format = record.report.as_ref().map(|r| r.format.clone());
    let container = format.as_ref().map_or("", |f| f.container.as_str());
    if !attachment && format.as_ref().is_some_and(|f| f.codec.contains("gsm")) {
        return Failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "recording {id} is GSM in WAV, which browsers cannot play: download it and \
                 play it with sox or a desktop player"
            ),
        )
        .into_response();
    }
    let roots = app
        .shared
        .lock()
        .map(|s| s.config.ingest.roots.clone())
        .unwrap_or_default();
    if !roots.iter().any(|r| record.path.is_below(r)) {
        return Failure(
            StatusCode::FORBIDDEN,
            format!("recording {id} lies outside the recordings roots: it is not served"),
        )
        .into_response();
    }
    let path = record.path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        crate::files::open_regular(&path, crate::files::Follow::Never)
    })
    .await;
    let (file, size) = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            return Failure(
                StatusCode::NOT_FOUND,
                format!("recording {id}'s file cannot be read: {e}"),
            )
            .into_response()
        }
        Err(e) => return Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if size != record.size {
        return Failure(
            StatusCode::CONFLICT,
            format!(
                "recording {id}'s file is {size} bytes, not the {} stored: it changed since it \
                 was ingested, and is not served (`callwarden audit verify` checks every file)",
                record.size
            ),
        )
        .into_response();
    }
    let span = match range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    ) {
        Ok(s) => s,
        Err(()) => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    // Who listened: once per session and recording while it plays (a pause of 10 minutes
    // starts another playback); every download.
    let now = now_ms();
    let session = super::session::key(&token);
    let first = attachment || {
        let mut seen = app.listened.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| now - *t < LISTEN_AUDIT_MS);
        seen.insert((session.clone(), id), now).is_none()
    };
    if first {
        let what = if attachment { "download" } else { "play" };
        let event = Draft::new(
            user.user.as_str(),
            AuditAction::Access,
            serde_json::json!({"what": what, "sha256": record.sha256}),
        )
        .about(id);
        if let Err(f) = audit(&app, vec![event]).await {
            if !attachment {
                if let Ok(mut seen) = app.listened.lock() {
                    seen.remove(&(session, id));
                }
            }
            return f.into_response();
        }
    }
    let (start, len) = span.map_or((0, size), |s| (s.start, s.end - s.start + 1));
    let mut std_file = file;
    if std_file.seek(SeekFrom::Start(start)).is_err() {
        return Failure(StatusCode::INTERNAL_SERVER_ERROR, "seek failed".into()).into_response();
    }
    let reader = tokio::fs::File::from_std(std_file).take(len);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime(container)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Some(s) = span {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", s.start, s.end)) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    if attachment {
        let name = record
            .path
            .to_path_buf()
            .file_name()
            .map(|n| n.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
            .unwrap_or_else(|| format!("recording-{id}"));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        let s = |start, end| Ok(Some(Span { start, end }));
        assert_eq!(range(None, 100), Ok(None));
        assert_eq!(range(Some("bytes=0-"), 100), s(0, 99));
        assert_eq!(range(Some("bytes=10-19"), 100), s(10, 19));
        assert_eq!(range(Some("bytes=90-200"), 100), s(90, 99));
        assert_eq!(range(Some("bytes=-10"), 100), s(90, 99));
        assert_eq!(range(Some("bytes=-500"), 100), s(0, 99));
        assert_eq!(range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(range(Some("bytes=5-4"), 100), Err(()));
        assert_eq!(range(Some("bytes=x-y"), 100), Err(()));
        assert_eq!(range(Some("bytes=0-"), 0), Err(()));
    }
}
