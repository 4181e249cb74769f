//! The control socket: the daemon's local API and the CLI's client for it (the only place that
//! knows the wire format).
//!
//! One request per connection, as one line of JSON each way:
//! `{"protocol": 1, "client": "0.1.0", "request": {...}}` answered by
//! `{"protocol": 1, "server": "0.1.0", "ok": {...}}` or `{..., "error": {"code", "message"}}`.
//! The server learns the caller's uid and gid from the socket (SO_PEERCRED), looks up the user
//! name and every group the user is in, and maps groups to a [`Role`] from `[control]`; a caller
//! in none of the groups is refused before the request is read further. Requests are answered
//! by [`crate::query::handle`] on a blocking thread, at most a few at a time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, ControlConfig};
pub use crate::query::ErrorCode;
use crate::query::{self, Answer, Caller, Context, DaemonInfo, Request, Role, PROTOCOL};
use crate::store::Store;

/// Longest request line accepted (a hold selection or a list of ids fits many times over).
const MAX_REQUEST: usize = 1 << 20;
/// Requests answered at once; more wait their turn.
const CONCURRENT: usize = 8;
/// Connections open at once, in all and per caller (uid): 2,000 idle connections from one
/// user must not take the descriptors recordings need.
const MAX_CONNECTIONS: usize = 256;
const MAX_PER_CALLER: usize = 16;
/// How long a connection may take to send its request, and to take its answer.
const IDLE: Duration = Duration::from_secs(10);

/// The connections open now, in all and by caller.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_uid: std::collections::HashMap<u32, usize>,
}

/// One admitted connection; its place is given back when dropped.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut o) = self.open.lock() {
            o.total = o.total.saturating_sub(1);
            if let Some(n) = o.by_uid.get_mut(&self.uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    o.by_uid.remove(&self.uid);
                }
            }
        }
    }
}

/// Admits a connection from `uid` unless it would pass either bound; says which one otherwise.
fn admit(open: &Arc<Mutex<Open>>, uid: u32) -> Result<Slot, &'static str> {
    let mut o = open
        .lock()
        .map_err(|_| "the daemon's connection table is unavailable")?;
    if o.total >= MAX_CONNECTIONS {
        return Err("too many control connections open: try again shortly");
    }
    let mine = o.by_uid.entry(uid).or_insert(0);
    if *mine >= MAX_PER_CALLER {
        return Err("too many control connections open by this user: close some and try again");
    }
    *mine += 1;
    o.total += 1;
    Ok(Slot {
        open: open.clone(),
        uid,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    protocol: u32,
    client: String,
    request: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    protocol: u32,
    server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<Answer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<WireError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireError {
    code: ErrorCode,
    message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: another daemon answers on it")]
    InUse { path: String },
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: no group named {group:?} (control.socket_group)")]
    NoGroup { path: String, group: String },
}

/// What a client call can end in, besides an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens there: no daemon, or one without this socket.
    #[error("the daemon's control socket {path} is unreachable: {source}")]
    Unreachable {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "you may not connect to the control socket {path} ({source}): ask to be added to the \
         group it belongs to (control.socket_group)"
    )]
    NotAllowed {
        path: String,
        source: std::io::Error,
    },
    /// The daemon refused the request (no role for it, not found, invalid).
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    #[error("the daemon could not answer ({code}): {message}")]
    Failed { code: ErrorCode, message: String },
    #[error(
        "this callwarden ({client}) speaks control protocol {PROTOCOL}, the daemon \
         (callwarden {server}) speaks {protocol}: use the same version for both"
    )]
    Version {
        client: String,
        server: String,
        protocol: u32,
    },
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: the daemon's answer is unreadable: {reason}")]
    Garbled { path: String, reason: String },
}

/// A reload asked for over the socket: who asks, and where the outcome goes.
pub type ReloadRequest = (String, std::sync::mpsc::Sender<Result<String, String>>);

/// What the daemon shares with the socket's handlers: the configuration in force and its own
/// state, updated by its loop; the lock its purges hold; the way to ask its loop for a reload.
#[derive(Debug, Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub info: DaemonInfo,
    pub purge_lock: Arc<Mutex<()>>,
    pub reload: Option<tokio::sync::mpsc::UnboundedSender<ReloadRequest>>,
}

impl Shared {
    pub fn new(config: Arc<Config>, info: DaemonInfo) -> Shared {
        Shared {
            config,
            info,
            purge_lock: Arc::new(Mutex::new(())),
            reload: None,
        }
    }
}

/// Binds the socket: a stale socket file left by a crash is replaced; a live one (another
/// daemon) is an error. Sets its group and mode.
pub fn bind(config: &ControlConfig) -> Result<tokio::net::UnixListener, ControlError> {
    let path = &config.socket;
    let name = path.display().to_string();
    let io = |source| ControlError::Io {
        path: name.clone(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket: not touched",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse { path: name });
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    if !config.socket_group.is_empty() {
        let group = uzers::get_group_by_name(&config.socket_group).ok_or_else(|| {
            ControlError::NoGroup {
                path: name.clone(),
                group: config.socket_group.clone(),
            }
        })?;
        std::os::unix::fs::chown(path, None, Some(group.gid())).map_err(io)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.mode())).map_err(io)?;
    Ok(listener)
}

/// The name of the user with this uid in the system's user database, if any.
pub fn user_name(uid: u32) -> Option<String> {
    uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
}

/// The caller's name (`alice (uid 1000)`) and role from their uid and primary gid: the groups
/// are the user's primary and supplementary groups.
pub fn identify(uid: u32, gid: u32, config: &ControlConfig) -> (String, Option<Role>) {
    let user = uzers::get_user_by_uid(uid);
    let name = match &user {
        Some(u) => format!("{} (uid {uid})", u.name().to_string_lossy()),
        None => format!("uid {uid}"),
    };
    let mut groups: Vec<String> = user
        .as_ref()
        .and_then(|u| uzers::get_user_groups(u.name(), gid))
        .unwrap_or_default()
        .iter()
        .map(|g| g.name().to_string_lossy().into_owned())
        .collect();
    if let Some(g) = uzers::get_group_by_gid(gid) {
        groups.push(g.name().to_string_lossy().into_owned());
    }
    let member = |list: &[String]| groups.iter().any(|g| list.contains(g));
    let role = if member(&config.admin_groups) {
        Some(Role::Admin)
    } else if member(&config.auditor_groups) {
        Some(Role::Auditor)
    } else {
        None
    };
    (name, role)
}

/// Serves requests until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    store: Arc<Store>,
    shared: Arc<Mutex<Shared>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    let open = Arc::new(Mutex::new(Open::default()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(cred) = stream.peer_cred() else { continue };
                    let slot = match admit(&open, cred.uid()) {
                        Ok(slot) => slot,
                        Err(why) => {
                            // Told without waiting (the socket buffer takes one line), then closed.
                            let mut bytes = serde_json::to_vec(&error_reply(ErrorCode::Busy, why.into()))
                                .unwrap_or_default();
                            bytes.push(b'\n');
                            let _ = stream.try_write(&bytes);
                            tracing::warn!(uid = cred.uid(), "{why}");
                            continue;
                        }
                    };
                    let (store, shared, permits) = (store.clone(), shared.clone(), permits.clone());
                    tokio::spawn(async move {
                        let _slot = slot;
                        if let Err(e) = connection(stream, store, shared, permits).await {
                            tracing::debug!(error = %e, "control connection ended early");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
}

async fn connection(
    stream: tokio::net::UnixStream,
    store: Arc<Store>,
    shared: Arc<Mutex<Shared>>,
    permits: Arc<tokio::sync::Semaphore>,
) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST as u64));
    let read = tokio::time::timeout(IDLE, reader.read_line(&mut line)).await;
    let reply = match read {
        Err(_) => error_reply(ErrorCode::Invalid, "no request within 10 s".into()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) => {
            let _permit = permits.acquire_owned().await;
            let snapshot = shared.lock().map(|s| s.clone()).ok();
            match snapshot {
                None => error_reply(ErrorCode::Store, "the daemon's state is unavailable".into()),
                Some(snapshot) => tokio::task::spawn_blocking(move || {
                    answer(&line, cred.uid(), cred.gid(), &store, snapshot)
                })
                .await
                .unwrap_or_else(|e| {
                    error_reply(ErrorCode::Internal, format!("the handler failed: {e}"))
                }),
            }
        }
    };
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    bytes.push(b'\n');
    // A caller that does not take its answer does not keep the connection.
    match tokio::time::timeout(IDLE, async {
        write.write_all(&bytes).await?;
        write.shutdown().await
    })
    .await
    {
        Ok(done) => done,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the answer was not taken within 10 s",
        )),
    }
}

fn error_reply(code: ErrorCode, message: String) -> Reply {
    Reply {
        protocol: PROTOCOL,
        server: env!("CARGO_PKG_VERSION").into(),
        ok: None,
        error: Some(WireError { code, message }),
    }
}

/// One request line, answered for the peer `uid`/`gid`.
fn answer(line: &str, uid: u32, gid: u32, store: &Store, shared: Shared) -> Reply {
    let envelope: Envelope = match serde_json::from_str(line) {
        Ok(e) => e,
        Err(e) => return error_reply(ErrorCode::Invalid, format!("unreadable request: {e}")),
    };
    if envelope.protocol != PROTOCOL {
        return error_reply(
            ErrorCode::Protocol,
            format!(
                "this daemon (callwarden {}) speaks control protocol {PROTOCOL}; the client \
                 (callwarden {}) sent protocol {}: use the same version for both",
                env!("CARGO_PKG_VERSION"),
                envelope.client,
                envelope.protocol
            ),
        );
    }
    let config = &shared.config;
    let (name, role) = identify(uid, gid, &config.control);
    let Some(role) = role else {
        tracing::warn!(caller = %name, "control request refused: no role");
        return error_reply(
            ErrorCode::Forbidden,
            format!(
                "{name} is in none of the groups allowed to use callwarden (auditors: {:?}, \
                 admins: {:?})",
                config.control.auditor_groups, config.control.admin_groups
            ),
        );
    };
    let request: Request = match serde_json::from_value(envelope.request) {
        Ok(r) => r,
        Err(e) => return error_reply(ErrorCode::Invalid, format!("unknown request: {e}")),
    };
    let reload = |actor: &str| -> Result<String, String> {
        let tx = shared
            .reload
            .as_ref()
            .ok_or_else(|| "this daemon cannot reload over its socket".to_string())?;
        let (reply, outcome) = std::sync::mpsc::channel();
        tx.send((actor.to_string(), reply))
            .map_err(|_| "the daemon is stopping".to_string())?;
        outcome
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the daemon's loop did not answer the reload".to_string())?
    };
    let ctx = Context {
        store,
        config,
        daemon: Some(shared.info.clone()),
        now_ms: crate::ingest::now_ms(),
        purge_lock: Some(&shared.purge_lock),
        reload: Some(&reload),
    };
    let caller = Caller { name, role };
    match query::handle(&ctx, &caller, request) {
        Ok(a) => Reply {
            protocol: PROTOCOL,
            server: env!("CARGO_PKG_VERSION").into(),
            ok: Some(a),
            error: None,
        },
        Err(e) => error_reply(e.code(), e.to_string()),
    }
}

/// Asks the daemon on `socket` (blocking; the CLI's side).
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Answer, ClientError> {
    let path = socket.display().to_string();
    let stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(ClientError::NotAllowed { path, source: e })
        }
        Err(e) => return Err(ClientError::Unreachable { path, source: e }),
    };
    let io = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let envelope = serde_json::json!({
        "protocol": PROTOCOL,
        "client": env!("CARGO_PKG_VERSION"),
        "request": request,
    });
    let mut bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    bytes.push(b'\n');
    (&stream).write_all(&bytes).map_err(io)?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).map_err(io)?;
    let value: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| ClientError::Garbled {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let protocol = value["protocol"].as_u64().unwrap_or(0) as u32;
    let server = value["server"].as_str().unwrap_or("unknown").to_string();
    if protocol != PROTOCOL {
        return Err(ClientError::Version {
            client: env!("CARGO_PKG_VERSION").into(),
            server,
            protocol,
        });
    }
    let reply: Reply = serde_json::from_value(value).map_err(|e| ClientError::Garbled {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    match (reply.ok, reply.error) {
        (Some(answer), _) => Ok(answer),
        (None, Some(e)) if e.code == ErrorCode::Protocol => Err(ClientError::Version {
            client: env!("CARGO_PKG_VERSION").into(),
            server: reply.server,
            protocol,
        }),
        (None, Some(e)) if e.code.is_refusal() => Err(ClientError::Refused {
            code: e.code,
            message: e.message,
        }),
        (None, Some(e)) => Err(ClientError::Failed {
            code: e.code,
            message: e.message,
        }),
        (None, None) => Err(ClientError::Garbled {
            path,
            reason: "neither an answer nor an error".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_wire_names_and_a_new_one_is_read() {
        let wire = |c: ErrorCode| serde_json::to_string(&c).unwrap();
        assert_eq!(wire(ErrorCode::NotFound), r#""not_found""#);
        assert_eq!(wire(ErrorCode::Forbidden), r#""forbidden""#);
        assert_eq!(ErrorCode::Busy.to_string(), "busy");
        let newer: ErrorCode = serde_json::from_str(r#""quota""#).unwrap();
        assert_eq!(newer, ErrorCode::Other);
        assert!(ErrorCode::Refused.is_refusal() && !ErrorCode::Store.is_refusal());
    }

    #[test]
    fn connections_are_bounded_per_caller_and_in_all() {
        let open = Arc::new(Mutex::new(Open::default()));
        let mine: Vec<Slot> = (0..MAX_PER_CALLER)
            .map(|_| admit(&open, 1000).unwrap())
            .collect();
        assert!(admit(&open, 1000).unwrap_err().contains("by this user"));
        // Others still get in, up to the overall bound.
        let others: Vec<Slot> = (0..MAX_CONNECTIONS - MAX_PER_CALLER)
            .map(|i| admit(&open, 2000 + (i / MAX_PER_CALLER) as u32).unwrap())
            .collect();
        assert!(admit(&open, 0)
            .unwrap_err()
            .contains("too many control connections"));
        drop(others);
        drop(mine);
        let o = open.lock().unwrap();
        assert_eq!((o.total, o.by_uid.len()), (0, 0), "every place given back");
    }
}
