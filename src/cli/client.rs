//! The CLI's typed client: one method per request, each returning its own answer type, through
//! the running daemon or the store opened directly ([`Access::ask`]). A daemon that answers
//! with another kind of answer is an error here, once, instead of at every command.

use super::admin::{Access, Transport};
use crate::kpi::{GroupBy, Kpi};
use crate::metadata::{ConsentSource, ConsentState};
use crate::query::{
    Answer, ConsentChange, Dated, ListQuery, PurgeOutcome, ReportKind, Request, Shown, Status,
    Window,
};
use crate::store::{Hold, Selection};
use crate::summary::Summary;
use crate::verify::Verification;

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
    fn show(target: String) -> Show(Box<Shown>) = Request::Show { target };
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
}
