//! The CLI's client: where an answer comes from ([`Access`]: the running daemon over its socket,
//! else the store opened directly), and one typed method per request, each returning its own
//! answer type. A daemon that answers
//! with another kind of answer is an error here, once, instead of at every command.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::control::{self, ClientError};
use crate::query::{self, Caller, Context, Role};
use crate::store::{Store, StoreError};

use super::{Exit, EXIT_ATTENTION, EXIT_BAD_INPUT, EXIT_FORBIDDEN};
use crate::kpi::{GroupBy, Kpi};
use crate::metadata::{ConsentSource, ConsentState};
use crate::query::{
    Answer, ConsentChange, Dated, ListQuery, PurgeOutcome, ReportKind, Request, Shown, Status,
    Window,
};
use crate::store::{Hold, Selection};
use crate::summary::Summary;
use crate::verify::Verification;

/// Where a command's answer comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Access {
    /// Configuration file (default: $CALLWARDEN_CONFIG, else /etc/callwarden/callwarden.toml if
    /// it exists, else the built-in defaults; `daemon` needs a file).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Store directory, used when no daemon answers (default: `store.path`).
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    /// The daemon's control socket (default: `control.socket`).
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
}

/// How the answer reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Daemon,
    Store,
}

impl Access {
    pub fn load(&self) -> anyhow::Result<Config> {
        super::load_config(&self.config)
    }

    /// `--store`, else `store.path`.
    fn store_dir(&self, config: &Config) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| config.store.path.clone())
    }

    /// Asks the daemon; when none answers, answers from the store directly, as the local user
    /// (whoever may open the store's files may change it: the admin role).
    pub fn ask(&self, request: Request) -> anyhow::Result<(Answer, Transport)> {
        let mut answer = None;
        let transport = self.ask_pages(
            request,
            |_| None,
            |a| {
                answer = Some(a);
                Ok(())
            },
        )?;
        let answer = answer.ok_or_else(|| anyhow::anyhow!("no answer"))?;
        Ok((answer, transport))
    }

    /// `ask`, page by page: `each` takes every answer, and `next` says from an answer what to
    /// ask next (None: done). All pages come the same way, through one daemon connection per
    /// page or from the store opened once.
    pub fn ask_pages(
        &self,
        first: Request,
        mut next: impl FnMut(&Answer) -> Option<Request>,
        mut each: impl FnMut(Answer) -> anyhow::Result<()>,
    ) -> anyhow::Result<Transport> {
        let config = self.load()?;
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| config.control.socket.clone());
        // Re-hashing every recording takes as long as reading them all.
        let timeout = |request: &Request| match request {
            Request::AuditVerify { chain_only: false } => Duration::from_secs(24 * 3600),
            _ => Duration::from_secs(600),
        };
        let unreachable = if socket.as_os_str().is_empty() {
            "no control socket is configured (control.socket)".to_string()
        } else {
            match control::call(&socket, &first, timeout(&first)) {
                Ok(mut answer) => loop {
                    let following = next(&answer);
                    each(answer)?;
                    let Some(request) = following else {
                        return Ok(Transport::Daemon);
                    };
                    answer = control::call(&socket, &request, timeout(&request))
                        .map_err(daemon_error)?;
                },
                Err(ClientError::Unreachable { source, .. }) => {
                    format!(
                        "its control socket {} is unreachable ({source})",
                        socket.display()
                    )
                }
                Err(e) => return Err(daemon_error(e)),
            }
        };
        let dir = self.store_dir(&config);
        // A question is no reason to create a store; call records to keep are, as recordings
        // to ingest are, and the first console account (added before the daemon first runs).
        let creates = matches!(first, Request::CallsImport { .. } | Request::User { .. });
        if !dir.exists() && !creates {
            return Err(Exit(
                EXIT_BAD_INPUT,
                format!(
                    "no daemon answers ({unreachable}) and there is no store at {}: is \
                     callwarden configured (--config, or /etc/callwarden/callwarden.toml)?",
                    dir.display()
                ),
            )
            .into());
        }
        let store = match Store::open_anchored(&dir, &config.store.anchor_for(&dir)) {
            Ok(store) => store,
            Err(e @ (StoreError::BehindAnchor { .. } | StoreError::AnchorMismatch { .. })) => {
                return Err(Exit(EXIT_ATTENTION, e.to_string()).into())
            }
            Err(StoreError::Locked { path }) => {
                return Err(Exit(
                    EXIT_BAD_INPUT,
                    format!(
                        "the store at {path} is in use by another process (a daemon?), but {unreachable}: \
                         check that the daemon is healthy and that its control.socket is the one \
                         this command uses (--socket, or --config with the daemon's configuration)"
                    ),
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        // The store answering is the one opened (`--store` or `store.path`), and says so.
        let mut config = config;
        config.store.path = dir.clone();
        let ctx = Context {
            store: &store,
            config: &config,
            daemon: None,
            now_ms: crate::ingest::now_ms(),
            purge_lock: None,
            reload: None,
        };
        let caller = Caller {
            name: super::args::actor(),
            role: Role::Admin,
        };
        let mut request = first;
        loop {
            let answer = query::handle(&ctx, &caller, request).map_err(local_error)?;
            let following = next(&answer);
            each(answer)?;
            match following {
                Some(r) => request = r,
                None => return Ok(Transport::Store),
            }
        }
    }
}

/// A daemon's refusal or failure, as the CLI reports it.
fn daemon_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Refused { code, message } => {
            let exit = if code == crate::control::ErrorCode::Forbidden {
                EXIT_FORBIDDEN
            } else {
                EXIT_BAD_INPUT
            };
            Exit(exit, message).into()
        }
        e @ ClientError::NotAllowed { .. } => Exit(EXIT_FORBIDDEN, e.to_string()).into(),
        e => e.into(),
    }
}

/// A question the store itself could not answer, as the CLI reports it.
fn local_error(e: query::QueryError) -> anyhow::Error {
    match e {
        e @ query::QueryError::Forbidden(_) => Exit(EXIT_FORBIDDEN, e.to_string()).into(),
        e @ (query::QueryError::NotFound(_) | query::QueryError::Invalid(_)) => {
            Exit(EXIT_BAD_INPUT, e.to_string()).into()
        }
        query::QueryError::Store(StoreError::Refused(why)) => Exit(EXIT_BAD_INPUT, why).into(),
        e => e.into(),
    }
}

/// A daemon (or store) answered a request with something else.
fn unexpected(wanted: &str, got: &Answer) -> anyhow::Error {
    let got = serde_json::to_value(got)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
        .unwrap_or_else(|| "something else".into());
    anyhow::anyhow!("asked for {wanted}, the daemon answered {got}")
}

/// Generates one typed method per request: `name(args) -> Answer::Variant's content`.
macro_rules! requests {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $variant:ident($out:ty) = $request:expr;
    )*) => {
        impl Access {
            $(
                $(#[$doc])*
                pub fn $name(&self, $($arg: $ty),*) -> anyhow::Result<($out, Transport)> {
                    match self.ask($request)? {
                        (Answer::$variant(v), transport) => Ok((v, transport)),
                        (other, _) => Err(unexpected(stringify!($name), &other)),
                    }
                }
            )*
        }
    };
}

requests! {
    /// The daemon's (or the store's) state.
    fn status() -> Status(Box<Status>) = Request::Status;
    /// The recordings a query selects.
    fn list(query: ListQuery) -> List(Vec<Summary>) = Request::List(query);
    /// One recording, by id or path.
    fn show(target: crate::query::Target) -> Show(Box<Shown>) = Request::Show { target };
    fn kpi(window: Window, by: GroupBy) -> Kpi(Kpi) = Request::Kpi { window, by };
    fn consent_set(
        ids: Vec<u64>,
        state: ConsentState,
        source: ConsentSource,
        note: Option<String>
    ) -> ConsentSet(Vec<ConsentChange>) = Request::ConsentSet { ids, state, source, note };
    fn hold_add(selection: Selection, case: String, reason: String) -> Hold(Hold) =
        Request::HoldAdd { selection, case, reason };
    fn hold_release(hold: u64, reason: String) -> Hold(Hold) =
        Request::HoldRelease { hold, reason };
    fn holds() -> Holds(Vec<Hold>) = Request::HoldList;
    fn report(kind: ReportKind, window: Window) -> Report(Box<Dated>) =
        Request::Report { kind, window };
    fn purge(ids: Vec<u64>, dry_run: bool, now_ms: Option<i64>) -> Purge(Box<PurgeOutcome>) =
        Request::Purge { ids, dry_run, now_ms };
    /// Reloads the daemon's configuration.
    fn reload() -> Reloaded(String) = Request::Reload;
    fn verify(chain_only: bool) -> Verified(Box<Verification>) =
        Request::AuditVerify { chain_only };
    /// Calls with their recordings and verdicts.
    fn calls(window: Window, filter: crate::query::CallFilter, limit: usize) ->
        Calls(crate::query::CallsPage) = Request::Calls { window, filter, limit };
    fn call_show(call: String) -> Call(Box<crate::calls::CallView>) = Request::CallShow { call };
    /// Stores call records read from `source`.
    fn calls_import(source: String, legs: Vec<crate::cdr::CallRecord>, rejected: usize) ->
        CallsImported(crate::store::CallsStored) =
        Request::CallsImport { source, legs, rejected };
    /// Adds or changes a console account.
    fn user(name: crate::accounts::UserName, change: crate::accounts::AccountChange) ->
        Account(crate::accounts::AccountView) = Request::User { name, change };
    fn users() -> Accounts(Vec<crate::accounts::AccountView>) = Request::Users;
}
