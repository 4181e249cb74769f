//! The web console (`[web] listen`): find a call, see why it scored so, listen to it. Served by
//! the daemon on its tokio runtime (the axum adapter lives here), with the CLI's roles and audit
//! trail: every page is a [`crate::query`] request made as the logged-in user, every login,
//! failure, logout, playback and download is an audit entry.
//!
//! Pages are rendered on the server (`pages`, maud: checked at compile time, escaped by
//! default); the only script is none, the only style sheet is embedded. Changes are POSTs that
//! carry the session's CSRF token; cookies are HttpOnly, SameSite=Strict and (by default)
//! Secure.

mod audio;
pub mod pages;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::accounts::UserName;
use crate::audit::{AuditAction, Draft};
use crate::clock::Zone;
use crate::config::WebConfig;
use crate::control::Shared;
use crate::query::{self, Answer, Caller, Context, QueryError, Request, Role};
use crate::store::Store;

use session::{Limiter, Session, Sessions, COOKIE};

/// The console's state, shared by every request.
pub struct Console {
    store: Arc<Store>,
    shared: Arc<Mutex<Shared>>,
    sessions: Sessions,
    limiter: Limiter,
    web: WebConfig,
    /// When each session (its token's hash) last asked for a recording's audio, by id: a
    /// playback is audited once.
    listened: Mutex<std::collections::HashMap<(String, u64), i64>>,
}

type App = Arc<Console>;

/// The console's socket, bound, and its TLS configuration when it serves HTTPS itself.
pub struct Listener {
    tcp: tokio::net::TcpListener,
    tls: Option<tls::Served>,
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Binds `[web] listen` and reads its certificate, if any; None when the console is off.
pub async fn bind(web: &WebConfig) -> Result<Option<Listener>, BindError> {
    if web.listen.is_empty() {
        return Ok(None);
    }
    let tls = if web.tls_cert.is_empty() {
        None
    } else {
        Some(tls::server_config(
            std::path::Path::new(&web.tls_cert),
            std::path::Path::new(&web.tls_key),
        )?)
    };
    let tcp = tokio::net::TcpListener::bind(&web.listen).await?;
    Ok(Some(Listener { tcp, tls }))
}

impl Listener {
    /// `https` when the console holds its own certificate, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Serves the console until `shutdown` resolves.
pub async fn serve(
    listener: Listener,
    store: Arc<Store>,
    shared: Arc<Mutex<Shared>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let web = shared
        .lock()
        .map(|s| s.config.web.clone())
        .unwrap_or_default();
    let app = Arc::new(Console {
        store,
        shared,
        sessions: Sessions::default(),
        limiter: Limiter::default(),
        web,
        listened: Mutex::new(Default::default()),
    });
    let router = router(app);
    let served = match listener.tls {
        Some(config) => tls::serve(listener.tcp, config, router, shutdown).await,
        None => {
            axum::serve(
                listener.tcp,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "the web console stopped");
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/calls") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/calls", get(calls))
        .route("/calls/{id}", get(call))
        .route("/calls/{id}/audio", get(audio::play))
        .route("/calls/{id}/download", get(audio::download))
        .route("/calls/{id}/hold", post(hold))
        .route("/calls/{id}/consent", post(consent))
        .route("/coverage", get(coverage))
        .route("/kpi", get(kpi))
        .route("/reports", get(reports))
        .route("/reports/{kind}", get(report))
        .route("/assets/console.css", get(css))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            security_headers,
        ))
        .with_state(app)
}

/// Headers every answer carries: no framing, no sniffing, nothing loaded from elsewhere, and no
/// caching of pages that show personal data; over the console's own TLS, HTTPS from now on.
async fn security_headers(State(app): State<App>, mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; media-src 'self'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    if !app.web.tls_cert.is_empty() {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    r
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/web/console.css"),
    )
        .into_response()
}

/// An error page or status with a message for people.
#[derive(Debug)]
pub struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, pages::error(self.0, &self.1)).into_response()
    }
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Failure {
        let status = match &e {
            QueryError::Forbidden(_) => StatusCode::FORBIDDEN,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure(status, e.to_string())
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// The session token the request's cookie holds.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Who is logged in: a live session whose account is still enabled, with the account's role as
/// it is now.
fn who(app: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = cookie_token(headers)?;
    let mut s = app.sessions.get(&token, now_ms())?;
    match app.store.account(&s.user) {
        Ok(Some(a)) if !a.disabled => {
            s.role = a.role;
            s.time_zone = a.time_zone.unwrap_or_else(|| app.web.time_zone.clone());
            Some((token, s))
        }
        _ => {
            app.sessions.close(&token);
            None
        }
    }
}

/// The logged-in user, or where to go to log in.
#[allow(clippy::result_large_err)]
fn require(app: &Console, headers: &HeaderMap, back: &str) -> Result<Session, Response> {
    who(app, headers)
        .map(|(_, s)| s)
        .ok_or_else(|| Redirect::to(&format!("/login?next={}", urlencode(back))).into_response())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Answers `request` as `user`, on a blocking thread, as the control socket does.
async fn ask(app: &App, user: &Session, request: Request) -> Result<Answer, Failure> {
    let snapshot = app
        .shared
        .lock()
        .map(|s| s.clone())
        .map_err(|_| Failure(StatusCode::SERVICE_UNAVAILABLE, "the daemon is busy".into()))?;
    let store = app.store.clone();
    let caller = Caller {
        name: user.user.to_string(),
        role: user.role,
    };
    tokio::task::spawn_blocking(move || {
        let ctx = Context {
            store: &store,
            config: &snapshot.config,
            daemon: Some(snapshot.info.clone()),
            now_ms: now_ms(),
            purge_lock: Some(&snapshot.purge_lock),
            reload: None,
        };
        query::handle(&ctx, &caller, request)
    })
    .await
    .map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page failed: {e}"),
        )
    })?
    .map_err(Failure::from)
}

/// `ask`, for the one kind of answer `pick` takes.
async fn ask_for<T>(
    app: &App,
    user: &Session,
    request: Request,
    pick: impl FnOnce(Answer) -> Option<T>,
) -> Result<T, Failure> {
    pick(ask(app, user, request).await?).ok_or_else(|| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the daemon answered with another kind of answer".into(),
        )
    })
}

/// A recording with its retention, holds and audit entries, as `user` may see it.
async fn shown(app: &App, user: &Session, id: u64) -> Result<Box<query::Shown>, Failure> {
    let request = Request::Show {
        target: query::Target::Id(id),
    };
    ask_for(app, user, request, |a| match a {
        Answer::Show(s) => Some(s),
        _ => None,
    })
    .await
}

/// Writes audit entries on a blocking thread; a failure is logged (the action it records has
/// already happened, or is refused by the caller).
async fn audit(app: &App, events: Vec<Draft>) -> Result<(), Failure> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.audit(events, now_ms()))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(error = %e, "the console could not write the audit log");
            Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the audit log cannot be written, so nothing is done: {e}"),
            )
        })
}

/// The time zone `user` sees times in: their own, else the console's (checked when set).
fn zone(user: &Session) -> Zone {
    Zone::named(&user.time_zone).unwrap_or_else(|_| Zone::utc())
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only a path on this site is a place to go back to.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/calls".into(),
    }
}

async fn login_page(State(app): State<App>, headers: HeaderMap, q: Query<Next>) -> Response {
    if who(&app, &headers).is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    pages::login(&safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let next = safe_next(form.next.as_deref());
    let addr = peer.ip().to_string();
    let now = now_ms();
    let wait = app.limiter.wait_ms(&form.user, &addr, now);
    if wait > 0 {
        let secs = (wait + 999) / 1000;
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(
                &next,
                Some(&format!("Too many failed logins: try again in {secs} s.")),
            ),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let name: Option<UserName> = form.user.parse().ok();
    let store = app.store.clone();
    let password = form.password.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let account = name.as_ref().and_then(|n| store.account(n).ok().flatten());
        match account {
            // The hash is checked even for a disabled account, so timing tells nothing.
            Some(a) => (a.hash.verify(&password) && !a.disabled).then_some(a),
            None => {
                // As long as a real check, so timing does not tell which names exist.
                let _ = crate::accounts::PasswordHash::of("not-a-password-at-all")
                    .map(|h| h.verify(&password));
                None
            }
        }
    })
    .await
    .ok()
    .flatten();
    let Some(account) = checked else {
        app.limiter.failed(&form.user, &addr, now);
        // The name tried is audited as typed, escaped by JSON; never the password.
        let event = Draft::new(
            "console",
            AuditAction::LoginFailed,
            serde_json::json!({"user": form.user.chars().take(64).collect::<String>(),
                "address": addr}),
        );
        if let Err(f) = audit(&app, vec![event]).await {
            return f.into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("Wrong user name or password.")),
        )
            .into_response();
    };
    app.limiter.succeeded(&form.user, &addr);
    let Ok(csrf) = session::token() else {
        return Failure(StatusCode::INTERNAL_SERVER_ERROR, "no randomness".into()).into_response();
    };
    let minutes = i64::from(app.web.session_minutes);
    let session = Session {
        user: account.name.clone(),
        role: account.role,
        csrf,
        expires_ms: now + minutes * 60_000,
        time_zone: account
            .time_zone
            .clone()
            .unwrap_or_else(|| app.web.time_zone.clone()),
    };
    let event = Draft::new(
        account.name.as_str(),
        AuditAction::Login,
        serde_json::json!({"address": addr, "role": account.role.as_str()}),
    );
    if let Err(f) = audit(&app, vec![event]).await {
        return f.into_response();
    }
    let token = match app.sessions.open(session, now) {
        Ok(t) => t,
        Err(e) => return Failure(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        minutes * 60,
        if app.web.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Whether a POST comes from a page of this console: browsers name the page's origin, and a
/// form posted from another site names that site. A client that sends no `Origin` (not a
/// browser) is judged by the CSRF token alone.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

fn cross_site() -> Response {
    Failure(
        StatusCode::FORBIDDEN,
        "This form was posted from another site: nothing is done.".into(),
    )
    .into_response()
}

/// Whether a change carries the session's token (compared in constant time).
fn csrf_ok(session: &Session, given: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn csrf_refused() -> Response {
    Failure(
        StatusCode::FORBIDDEN,
        "This form is out of date or did not come from this console: reload the page and try \
         again."
            .into(),
    )
    .into_response()
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((token, s)) = who(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !same_origin(&headers) {
        return cross_site();
    }
    if !csrf_ok(&s, &form.csrf) {
        return csrf_refused();
    }
    app.sessions.close(&token);
    let event = Draft::new(s.user.as_str(), AuditAction::Logout, serde_json::json!({}));
    if let Err(f) = audit(&app, vec![event]).await {
        return f.into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// The calls list's query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CallsQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub grade: String,
    #[serde(default)]
    pub flag: String,
    #[serde(default)]
    pub consent: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: Option<usize>,
}

/// Calls per page.
pub const PAGE: usize = 50;

impl CallsQuery {
    /// The list request, or what is wrong with the filters.
    fn request(&self, tz: &Zone) -> Result<query::ListQuery, String> {
        let word = |s: &str| -> Option<String> {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        let parse_enum = |what: &str, s: &str| -> Result<Option<serde_json::Value>, String> {
            match word(s) {
                None => Ok(None),
                Some(w) => Ok(Some(serde_json::Value::String(w.clone()))).and_then(|v| {
                    if w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                        Ok(v)
                    } else {
                        Err(format!("{what} {w:?} is not one of the choices"))
                    }
                }),
            }
        };
        let grade = parse_enum("grade", &self.grade)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| format!("grade {:?} is not one of the choices", self.grade))?;
        let consent = parse_enum("consent", &self.consent)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| format!("consent {:?} is not one of the choices", self.consent))?;
        let sort = match self.sort.as_str() {
            "" | "time" => query::Sort::Time,
            "score" => query::Sort::Score,
            "duration" => query::Sort::Duration,
            other => {
                return Err(format!(
                    "sort {other:?} is not one of time, score, duration"
                ))
            }
        };
        let page = self.page.unwrap_or(1).max(1);
        Ok(query::ListQuery {
            window: query::Window {
                from_ms: day_ms(&self.from, tz, false)?,
                until_ms: day_ms(&self.until, tz, true)?,
            },
            agent: word(&self.agent),
            queue: word(&self.queue),
            grade,
            flag: word(&self.flag),
            consent,
            state: None,
            sort,
            limit: page.saturating_mul(PAGE).saturating_add(1),
        })
    }
}

/// A `YYYY-MM-DD` day in `tz` as ms since the epoch: its start, or (`end`) the next day's;
/// None when not given.
fn day_ms(s: &str, tz: &Zone, end: bool) -> Result<Option<i64>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    tz.day_ms(s, end).map(Some)
}

async fn calls(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<CallsQuery>,
) -> Response {
    let user = match require(&app, &headers, &uri.to_string()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tz = zone(&user);
    let request = match q.request(&tz) {
        Ok(r) => r,
        Err(e) => return pages::calls(&user, &q, &[], false, Some(&e), &tz).into_response(),
    };
    let page = q.page.unwrap_or(1).max(1);
    let list = ask_for(&app, &user, Request::List(request), |a| match a {
        Answer::List(l) => Some(l),
        _ => None,
    });
    match list.await {
        Ok(all) => {
            let more = all.len() > page * PAGE;
            let rows: Vec<_> = all.into_iter().skip((page - 1) * PAGE).take(PAGE).collect();
            pages::calls(&user, &q, &rows, more, None, &tz).into_response()
        }
        Err(f) => f.into_response(),
    }
}

/// The coverage list's query string: calls from the PBX's call records.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CoverageQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub page: Option<usize>,
}

/// Days the coverage list shows when no day is given: matching calls to recordings reads the
/// whole window, so the default is a week, not the store's whole history.
const COVERAGE_DEFAULT_DAYS: i64 = 7;

impl CoverageQuery {
    /// The window and filter asked for (the last week when no day is given), or what is wrong.
    fn request(
        &mut self,
        tz: &Zone,
        now_ms: i64,
    ) -> Result<(query::Window, query::CallFilter), String> {
        if self.from.trim().is_empty() && self.until.trim().is_empty() {
            let day = |ms: i64| tz.format(ms).chars().take(10).collect::<String>();
            self.from = day(now_ms - (COVERAGE_DEFAULT_DAYS - 1) * 86_400_000);
            self.until = day(now_ms);
        }
        let state = match self.state.trim() {
            "" => None,
            w => Some(
                serde_json::from_value(serde_json::Value::String(w.to_string())).map_err(|_| {
                    format!(
                        "state {w:?} is not one of recorded, short, missing, pending, not_required"
                    )
                })?,
            ),
        };
        let word = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        Ok((
            query::Window {
                from_ms: day_ms(&self.from, tz, false)?,
                until_ms: day_ms(&self.until, tz, true)?,
            },
            query::CallFilter {
                state,
                agent: word(&self.agent),
                queue: word(&self.queue),
                direction: None,
            },
        ))
    }
}

async fn coverage(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(mut q): Query<CoverageQuery>,
) -> Response {
    let user = match require(&app, &headers, &uri.to_string()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tz = zone(&user);
    let (window, filter) = match q.request(&tz, now_ms()) {
        Ok(r) => r,
        Err(e) => return pages::coverage(&user, &q, None, Some(&e), &tz).into_response(),
    };
    let page = q.page.unwrap_or(1).max(1);
    let request = Request::Calls {
        window,
        filter,
        limit: page.saturating_mul(PAGE),
    };
    let listed = ask_for(&app, &user, request, |a| match a {
        Answer::Calls(p) => Some(p),
        _ => None,
    });
    match listed.await {
        Ok(mut p) => {
            p.calls = p.calls.into_iter().skip((page - 1) * PAGE).collect();
            pages::coverage(&user, &q, Some(&p), None, &tz).into_response()
        }
        Err(f) => f.into_response(),
    }
}

async fn call(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
) -> Response {
    let user = match require(&app, &headers, &uri.to_string()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<u64>() else {
        return Failure(StatusCode::NOT_FOUND, "no such recording".into()).into_response();
    };
    match shown(&app, &user, id).await {
        Ok(shown) => pages::call(&user, &shown, &zone(&user)).into_response(),
        Err(f) => f.into_response(),
    }
}

/// Who may change recording `id` with this POST: a logged-in user, from this site, with the
/// session's CSRF token; or the answer that refuses it.
fn change_to(
    app: &Console,
    headers: &HeaderMap,
    csrf: &str,
    id: &str,
) -> Result<(Session, u64), Box<Response>> {
    let Some((_, user)) = who(app, headers) else {
        return Err(Box::new(
            Failure(StatusCode::UNAUTHORIZED, "log in first".into()).into_response(),
        ));
    };
    if !same_origin(headers) {
        return Err(Box::new(cross_site()));
    }
    if !csrf_ok(&user, csrf) {
        return Err(Box::new(csrf_refused()));
    }
    let Ok(id) = id.parse::<u64>() else {
        return Err(Box::new(
            Failure(StatusCode::NOT_FOUND, "no such recording".into()).into_response(),
        ));
    };
    Ok((user, id))
}

#[derive(Debug, Deserialize)]
struct HoldForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    case: String,
    #[serde(default)]
    reason: String,
}

async fn hold(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HoldForm>,
) -> Response {
    let (user, id) = match change_to(&app, &headers, &form.csrf, &id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    // Stricter than the query layer, which lets an auditor add a hold from the CLI: in the
    // console, holds are an admin action.
    if user.role < Role::Admin {
        return Failure(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not place a legal hold: it needs the admin role",
                user.user
            ),
        )
        .into_response();
    }
    let (case, reason) = (form.case.trim(), form.reason.trim());
    if case.is_empty() || reason.is_empty() {
        return Failure(
            StatusCode::BAD_REQUEST,
            "a hold needs a case and a reason".into(),
        )
        .into_response();
    }
    let request = Request::HoldAdd {
        selection: crate::store::Selection {
            ids: vec![id],
            ..Default::default()
        },
        case: case.to_string(),
        reason: reason.to_string(),
    };
    match ask(&app, &user, request).await {
        Ok(_) => Redirect::to(&format!("/calls/{id}")).into_response(),
        Err(f) => f.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    note: String,
}

/// An admin records a recording's consent (how it was obtained, and a note), as `consent set`
/// does; audited with the admin's name.
async fn consent(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ConsentForm>,
) -> Response {
    let (user, id) = match change_to(&app, &headers, &form.csrf, &id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let word = |w: &str| serde_json::Value::String(w.to_string());
    let (Ok(state), Ok(source)) = (
        serde_json::from_value::<crate::metadata::ConsentState>(word(&form.state)),
        serde_json::from_value::<crate::metadata::ConsentSource>(word(&form.source)),
    ) else {
        return Failure(
            StatusCode::BAD_REQUEST,
            "choose a consent state and how it was obtained".into(),
        )
        .into_response();
    };
    let note = form.note.trim();
    let request = Request::ConsentSet {
        ids: vec![id],
        state,
        source,
        note: (!note.is_empty()).then(|| note.to_string()),
    };
    // The query layer checks the role (admin), as for the CLI.
    match ask(&app, &user, request).await {
        Ok(_) => Redirect::to(&format!("/calls/{id}")).into_response(),
        Err(f) => f.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct KpiQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub by: String,
}

async fn kpi(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<KpiQuery>,
) -> Response {
    let user = match require(&app, &headers, &uri.to_string()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let tz = zone(&user);
    let by = match q.by.as_str() {
        "" | "day" => crate::kpi::GroupBy::Day,
        "all" => crate::kpi::GroupBy::All,
        "week" => crate::kpi::GroupBy::Week,
        "agent" => crate::kpi::GroupBy::Agent,
        "queue" => crate::kpi::GroupBy::Queue,
        other => {
            return Failure(
                StatusCode::BAD_REQUEST,
                format!("group by {other:?}: use all, day, week, agent or queue"),
            )
            .into_response()
        }
    };
    let window = match (day_ms(&q.from, &tz, false), day_ms(&q.until, &tz, true)) {
        (Ok(from_ms), Ok(until_ms)) => query::Window { from_ms, until_ms },
        (Err(e), _) | (_, Err(e)) => {
            return Failure(StatusCode::BAD_REQUEST, e).into_response();
        }
    };
    let kpi = ask_for(&app, &user, Request::Kpi { window, by }, |a| match a {
        Answer::Kpi(k) => Some(k),
        _ => None,
    });
    match kpi.await {
        Ok(k) => pages::kpi(&user, &q, &k).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn reports(State(app): State<App>, headers: HeaderMap) -> Response {
    match require(&app, &headers, "/reports") {
        Ok(user) => pages::reports(&user).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

async fn report(
    State(app): State<App>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let user = match require(&app, &headers, &uri.to_string()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(kind) = serde_json::from_value::<query::ReportKind>(serde_json::Value::String(kind))
    else {
        return Failure(StatusCode::NOT_FOUND, "no such report".into()).into_response();
    };
    let (format, mime, ext) = match q.format.as_str() {
        "" | "html" => (
            crate::cli::ReportFormat::Html,
            "text/html; charset=utf-8",
            "html",
        ),
        "csv" => (
            crate::cli::ReportFormat::Csv,
            "text/csv; charset=utf-8",
            "csv",
        ),
        "json" => (crate::cli::ReportFormat::Json, "application/json", "json"),
        other => {
            return Failure(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: use html, csv or json"),
            )
            .into_response()
        }
    };
    let tz = zone(&user);
    let window = match (day_ms(&q.from, &tz, false), day_ms(&q.until, &tz, true)) {
        (Ok(from_ms), Ok(until_ms)) => query::Window { from_ms, until_ms },
        (Err(e), _) | (_, Err(e)) => return Failure(StatusCode::BAD_REQUEST, e).into_response(),
    };
    let report = ask_for(&app, &user, Request::Report { kind, window }, |a| match a {
        Answer::Report(d) => Some(d),
        _ => None,
    });
    let dated = match report.await {
        Ok(d) => d,
        Err(f) => return f.into_response(),
    };
    match crate::cli::render_report(&dated, format) {
        Ok(text) => {
            let mut r = ([(header::CONTENT_TYPE, mime)], text).into_response();
            if ext != "html" {
                let name = format!(
                    "attachment; filename=\"callwarden-{}.{ext}\"",
                    kind.as_str()
                );
                if let Ok(v) = HeaderValue::from_str(&name) {
                    r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
                }
            }
            // The HTML reports carry their own inline style and charts.
            if ext == "html" {
                r.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                         frame-ancestors 'none'",
                    ),
                );
            }
            r
        }
        Err(e) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_post_from_another_site_is_told_apart() {
        let host = (header::HOST, "cw.example.org");
        assert!(
            same_origin(&headers(std::slice::from_ref(&host))),
            "no Origin: a program"
        );
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://cw.example.org")
        ])));
        assert!(!same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, (header::ORIGIN, "null")])));
    }

    #[test]
    fn only_a_path_here_is_a_place_to_go_back_to() {
        assert_eq!(safe_next(Some("/calls/7")), "/calls/7");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "calls",
        ] {
            assert_eq!(safe_next(Some(bad)), "/calls", "{bad}");
        }
        assert_eq!(safe_next(None), "/calls");
    }
}
