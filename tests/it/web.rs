//! The web console over HTTP, against the real daemon on a temp directory: logins and their
//! cookies, roles, CSRF, escaping, Range playback, paths that lead nowhere, guessing slowed
//! down, and every login, failure, playback and change in the audit log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::daemon::Daemon;
use crate::support::assets;

pub(crate) struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub base: String,
}

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn cw(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub(crate) const ADMIN: (&str, &str) = ("alice", "alice-passw0rd-1");
pub(crate) const AUDITOR: (&str, &str) = ("audrey", "audrey-passw0rd-1");
pub(crate) const VIEWER: (&str, &str) = ("vic", "vic-passw0rd-123");

impl Site {
    /// Three recordings (one whose agent is a script), three users, and the daemon's
    /// configuration with the console on a free port.
    pub(crate) fn new() -> Site {
        Site::with_web("")
    }

    /// As [`Site::new`], with more `[web]` keys (`extra`, TOML lines).
    pub(crate) fn with_web(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        std::fs::create_dir(&rec).unwrap();
        let calls = [
            (
                "call-1",
                "asterisk-demo-echotest",
                "<script>alert(1)</script>",
                "sales",
            ),
            ("call-2", "asterisk-vm-review", "bob", "support"),
            ("call-3", "asterisk-queue-youarenext", "carol", "sales"),
        ];
        for (i, (name, speech, agent, queue)) in calls.iter().enumerate() {
            std::fs::copy(
                assets().join("speech").join(format!("{speech}.wav")),
                rec.join(format!("{name}.wav")),
            )
            .unwrap();
            let sidecar = serde_json::json!({"call_id": name, "agent": agent, "queue": queue,
                "start_time": format!("2026-11-0{}T10:00:00Z", i + 1)});
            std::fs::write(rec.join(format!("{name}.json")), sidecar.to_string()).unwrap();
        }
        let port = free_port();
        let config = dir.path().join("callwarden.toml");
        std::fs::write(
            &config,
            format!(
                "[ingest]\nroots = [{rec:?}]\nsettle_s = 0.2\n[store]\npath = {store:?}\n\
                 [control]\nsocket = {sock:?}\n[web]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n",
                rec = rec,
                store = dir.path().join("store"),
                sock = dir.path().join("control.sock"),
            ),
        )
        .unwrap();
        for ((name, password), role) in [(ADMIN, "admin"), (AUDITOR, "auditor"), (VIEWER, "viewer")]
        {
            let out = cw(
                &config,
                &["user", "add", name, "--role", role, "--password-stdin"],
                Some(&format!("{password}\n")),
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Site {
            dir,
            config,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub(crate) fn rec(&self) -> PathBuf {
        self.dir.path().join("rec")
    }

    /// The audit log, as the CLI exports it (JSON lines).
    fn audit(&self) -> Vec<serde_json::Value> {
        let out = cw(&self.config, &["audit", "export"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// An answer: status, headers, body.
pub(crate) struct Got {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

fn got(what: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Got {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => {
            return Got {
                status: 0,
                headers: Default::default(),
                body: format!("{what}: {e}").into_bytes(),
            }
        }
    };
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_vec().unwrap(),
    }
}

pub(crate) fn get(site: &Site, path: &str, cookie: Option<&str>, range: Option<&str>) -> Got {
    let mut req = agent().get(format!("{}{path}", site.base));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("cw_session={c}"));
    }
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    got(path, req.call())
}

pub(crate) fn post(site: &Site, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Got {
    let mut req = agent().post(format!("{}{path}", site.base));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("cw_session={c}"));
    }
    got(path, req.send_form(form.iter().copied()))
}

/// Logs in; the answer and the session token its cookie carries.
pub(crate) fn login(site: &Site, (user, password): (&str, &str)) -> (Got, Option<String>) {
    let g = post(
        site,
        "/login",
        None,
        &[("user", user), ("password", password), ("next", "/calls")],
    );
    let token = g
        .header("set-cookie")
        .strip_prefix("cw_session=")
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (g, token)
}

/// The CSRF token of the forms on a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    page[at..at + 64].to_string()
}

fn holds(site: &Site) -> String {
    let out = cw(&site.config, &["hold", "list"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_console_serves_each_role_what_it_may_and_audits_it() {
    let site = Site::new();
    let daemon = Daemon::start(&site.config);
    daemon.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 3,
        "the three recordings",
    );

    // Nothing without a login: pages send to the login, audio answers 401.
    let g = get(&site, "/calls", None, None);
    assert_eq!(g.status, 303);
    assert_eq!(g.header("location"), "/login?next=/calls");
    assert_eq!(get(&site, "/calls/1/audio", None, None).status, 401);

    // The session cookie carries the right attributes.
    let (g, admin) = login(&site, ADMIN);
    assert_eq!(g.status, 303, "{}", g.text());
    let cookie = g.header("set-cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let admin = admin.unwrap();
    assert!(g
        .header("content-security-policy")
        .contains("default-src 'self'"));

    // The list: every recording, the script agent as text; a filter narrows it.
    let page = get(&site, "/calls", Some(&admin), None).text();
    assert_eq!(page.matches("href=\"/calls/").count(), 3, "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    let page = get(&site, "/calls?agent=bob", Some(&admin), None).text();
    assert_eq!(page.matches("href=\"/calls/").count(), 1, "{page}");
    let page = get(&site, "/calls?queue=sales&sort=score", Some(&admin), None).text();
    assert_eq!(page.matches("href=\"/calls/").count(), 2, "{page}");
    assert_eq!(
        get(&site, "/calls?grade=%3Cx%3E", Some(&admin), None).status,
        200
    );

    // One call: its score and timeline; its audio, by range.
    let id = {
        let page = get(&site, "/calls?agent=bob", Some(&admin), None).text();
        let at = page.find("href=\"/calls/").unwrap() + 13;
        page[at..].split('"').next().unwrap().to_string()
    };
    let page = get(&site, &format!("/calls/{id}"), Some(&admin), None).text();
    assert!(page.contains("id=\"score\""), "{page}");
    assert!(page.contains("class=\"speech\""), "{page}");
    let file = std::fs::read(site.rec().join("call-2.wav")).unwrap();
    let g = get(
        &site,
        &format!("/calls/{id}/audio"),
        Some(&admin),
        Some("bytes=100-199"),
    );
    assert_eq!(g.status, 206);
    assert_eq!(
        g.header("content-range"),
        format!("bytes 100-199/{}", file.len())
    );
    assert_eq!(g.header("content-type"), "audio/wav");
    assert_eq!(g.body, file[100..200]);
    let g = get(
        &site,
        &format!("/calls/{id}/audio"),
        Some(&admin),
        Some("bytes=999999999-"),
    );
    assert_eq!(g.status, 416);
    let g = get(&site, &format!("/calls/{id}/download"), Some(&admin), None);
    assert_eq!(g.status, 200);
    assert_eq!(g.body, file);
    assert!(g.header("content-disposition").contains("call-2.wav"));

    // Paths that lead nowhere read no file.
    for path in [
        "/calls/..%2F..%2Fetc%2Fpasswd",
        "/calls/../../etc/passwd",
        "/calls/999/audio",
        "/calls/1%2F..%2F2/audio",
        "/assets/..%2F..%2FCargo.toml",
    ] {
        let g = get(&site, path, Some(&admin), None);
        assert!(
            g.status == 404 || g.status == 403,
            "{path}: {} {}",
            g.status,
            g.text()
        );
        assert!(!g.text().contains("root:"), "{path}");
    }

    // A change without the CSRF token changes nothing; with it, the admin's hold is audited
    // with the admin's name.
    let page = get(&site, &format!("/calls/{id}"), Some(&admin), None).text();
    let token = csrf(&page);
    let g = post(
        &site,
        &format!("/calls/{id}/hold"),
        Some(&admin),
        &[("case", "K-1"), ("reason", "lawsuit")],
    );
    assert_eq!(g.status, 403);
    let g = post(
        &site,
        &format!("/calls/{id}/hold"),
        Some(&admin),
        &[
            ("csrf", "0".repeat(64).as_str()),
            ("case", "K-1"),
            ("reason", "lawsuit"),
        ],
    );
    assert_eq!(g.status, 403);
    assert!(holds(&site).contains("no legal holds") || !holds(&site).contains("K-1"));
    let g = post(
        &site,
        &format!("/calls/{id}/hold"),
        Some(&admin),
        &[
            ("csrf", token.as_str()),
            ("case", "K-1"),
            ("reason", "lawsuit"),
        ],
    );
    assert_eq!(g.status, 303, "{}", g.text());
    assert!(holds(&site).contains("K-1"), "{}", holds(&site));

    // A form posted from another site is refused, token or not.
    let g = got(
        "cross-site hold",
        agent()
            .post(format!("{}/calls/{id}/hold", site.base))
            .header("Cookie", format!("cw_session={admin}"))
            .header("Origin", "https://evil.example")
            .send_form([("csrf", token.as_str()), ("case", "K-X"), ("reason", "x")]),
    );
    assert_eq!(g.status, 403);
    assert!(!holds(&site).contains("K-X"));

    // The admin records the consent from the call's page; it is in the store and the log.
    let g = post(
        &site,
        &format!("/calls/{id}/consent"),
        Some(&admin),
        &[
            ("csrf", token.as_str()),
            ("state", "granted"),
            ("source", "agent"),
            ("note", "asked on the call"),
        ],
    );
    assert_eq!(g.status, 303, "{}", g.text());
    let page = get(&site, &format!("/calls/{id}"), Some(&admin), None).text();
    assert!(page.contains("granted (agent"), "{page}");
    assert_eq!(
        get(&site, "/kpi?by=agent", Some(&admin), None)
            .text()
            .matches("id=\"kpi-chart\"")
            .count(),
        1
    );

    // An auditor reads compliance pages but places no hold: 403, and nothing changes.
    let (_, auditor) = login(&site, AUDITOR);
    let auditor = auditor.unwrap();
    let page = get(&site, &format!("/calls/{id}"), Some(&auditor), None).text();
    assert!(page.contains("id=\"audit-entries\""));
    assert!(!page.contains("id=\"place-hold\""));
    let g = post(
        &site,
        &format!("/calls/{id}/hold"),
        Some(&auditor),
        &[
            ("csrf", csrf(&page).as_str()),
            ("case", "K-2"),
            ("reason", "no"),
        ],
    );
    assert_eq!(g.status, 403);
    assert!(!holds(&site).contains("K-2"));
    let g = post(
        &site,
        &format!("/calls/{id}/consent"),
        Some(&auditor),
        &[
            ("csrf", csrf(&page).as_str()),
            ("state", "denied"),
            ("source", "agent"),
        ],
    );
    assert_eq!(g.status, 403, "only admins change consent");
    assert_eq!(
        get(&site, "/reports/consent", Some(&auditor), None).status,
        200
    );

    // A viewer sees quality, not compliance.
    let (_, viewer) = login(&site, VIEWER);
    let viewer = viewer.unwrap();
    assert_eq!(
        get(&site, "/reports/quality", Some(&viewer), None).status,
        200
    );
    assert_eq!(
        get(&site, "/reports/consent", Some(&viewer), None).status,
        403
    );
    let page = get(&site, &format!("/calls/{id}"), Some(&viewer), None).text();
    assert!(!page.contains("id=\"audit-entries\""));
    let g = get(
        &site,
        &format!("/calls/{id}/audio"),
        Some(&viewer),
        Some("bytes=0-9"),
    );
    assert_eq!(g.status, 206);

    // Logging out ends the session.
    let page = get(&site, "/calls", Some(&auditor), None).text();
    let g = post(
        &site,
        "/logout",
        Some(&auditor),
        &[("csrf", csrf(&page).as_str())],
    );
    assert_eq!(g.status, 303);
    assert!(g.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(get(&site, "/calls", Some(&auditor), None).status, 303);

    // A disabled account's session ends at its next request.
    let out = cw(&site.config, &["user", "disable", VIEWER.0], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get(&site, "/calls", Some(&viewer), None).status, 303);
    assert_eq!(login(&site, VIEWER).0.status, 401);

    // Guessing slows down: after three failures (the disabled user's counted for this
    // address), the next try must wait, whoever it is for.
    for _ in 0..2 {
        assert_eq!(login(&site, (AUDITOR.0, "wrong-password-00")).0.status, 401);
    }
    let g = login(&site, AUDITOR).0;
    assert_eq!(g.status, 429, "even the right password waits");
    assert!(g.header("retry-after").parse::<u32>().unwrap() >= 1);

    // Every login, failure, logout, playback, download and change, with who did it.
    let log = site.audit();
    let count = |action: &str, actor: &str| {
        log.iter()
            .filter(|e| e["action"] == action && e["actor"] == actor)
            .count()
    };
    assert_eq!(count("login", ADMIN.0), 1);
    assert_eq!(count("login", AUDITOR.0), 1);
    assert_eq!(count("logout", AUDITOR.0), 1);
    assert_eq!(
        count("login_failed", "console"),
        3,
        "two guesses and the disabled user"
    );
    assert_eq!(
        count("hold_add", ADMIN.0),
        2,
        "the recording's entry and the hold's"
    );
    let access: Vec<_> = log.iter().filter(|e| e["action"] == "access").collect();
    let what = |actor: &str, what: &str| {
        access
            .iter()
            .filter(|e| e["actor"] == actor && e["details"]["what"] == what)
            .count()
    };
    assert_eq!(
        what(ADMIN.0, "play"),
        1,
        "one playback, however many ranges"
    );
    assert_eq!(what(ADMIN.0, "download"), 1);
    assert_eq!(what(VIEWER.0, "play"), 1);
    let id_n: u64 = id.parse().unwrap();
    assert!(access.iter().all(|e| e["recording"] == id_n));
    assert!(
        !log.iter().any(|e| e.to_string().contains("passw0rd")),
        "no password in the log"
    );
    assert!(log
        .iter()
        .any(|e| e["action"] == "user" && e["details"]["change"] == "disable"));
    drop(daemon);
}

/// One line of Asterisk's `Master.csv` (cdr_csv): a call `id` from `start` (UTC), answered
/// or not, with `billsec` seconds billed.
fn master_line(id: &str, start: &str, answered: bool, billsec: u32) -> String {
    let (disposition, answer, end) = if answered {
        ("ANSWERED", start.to_string(), format!("{start}+{billsec}"))
    } else {
        ("NO ANSWER", String::new(), start.to_string())
    };
    // The end is the start plus the billed time, written out.
    let end = match end.split_once('+') {
        Some((s, secs)) => {
            let at = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).unwrap();
            let later = at
                .checked_add(jiff::Span::new().seconds(secs.parse::<i64>().unwrap()))
                .unwrap();
            later.strftime("%Y-%m-%d %H:%M:%S").to_string()
        }
        None => end,
    };
    format!(
        "\"\",\"1001\",\"2000\",\"from-internal\",\"\"\"Agent\"\" <1001>\",\"PJSIP/1001-01\",\
         \"PJSIP/2000-01\",\"Dial\",\"PJSIP/2000,30,tT\",\"{start}\",\"{answer}\",\"{end}\",\
         {billsec},{billsec},\"{disposition}\",\"DOCUMENTATION\",\"{id}\",\"\"\n"
    )
}

#[test]
fn the_coverage_page_lists_the_calls_the_pbx_made_and_which_were_not_recorded() {
    let site = Site::new();
    let daemon = Daemon::start(&site.config);
    daemon.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 3,
        "the three recordings",
    );
    // The PBX's records: call-2 (recorded: its sidecar names it), one answered call of a
    // minute with no recording, one that was never answered.
    let csv = site.dir.path().join("Master.csv");
    let cdrs = [
        master_line("call-2", "2026-11-02 10:00:00", true, 7),
        master_line("lost-1", "2026-11-02 11:00:00", true, 60),
        master_line("ring-1", "2026-11-02 12:00:00", false, 0),
    ]
    .concat();
    std::fs::write(&csv, cdrs).unwrap();
    let out = cw(
        &site.config,
        &["calls", "import", csv.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, viewer) = login(&site, VIEWER);
    let viewer = viewer.unwrap();
    let day = "from=2026-11-01&until=2026-11-03";

    let all = get(&site, &format!("/coverage?{day}"), Some(&viewer), None);
    assert_eq!(all.status, 200, "{}", all.text());
    let all = all.text();
    assert!(all.contains("of 3, oldest first"), "{all}");
    assert!(all.contains("class=\"state recorded\""), "{all}");
    assert!(all.contains("class=\"state missing\""), "{all}");
    assert!(all.contains("class=\"state not_required\""), "{all}");
    // The recorded call links its recording.
    assert_eq!(all.matches("href=\"/calls/").count(), 1, "{all}");

    let missing = get(
        &site,
        &format!("/coverage?{day}&state=missing"),
        Some(&viewer),
        None,
    )
    .text();
    assert!(missing.contains("of 1, oldest first"), "{missing}");
    assert!(missing.contains("2026-11-02 11:00:00"), "{missing}");
    assert!(!missing.contains("2026-11-02 10:00:00"), "{missing}");
    assert!(missing.contains("1:00"), "the billable minute: {missing}");

    // A state that is not one is said so, and lists nothing.
    let bad = get(
        &site,
        &format!("/coverage?{day}&state=%3Cgone%3E"),
        Some(&viewer),
        None,
    )
    .text();
    assert!(bad.contains("is not one of recorded, short"), "{bad}");
    assert!(!bad.contains("<gone>"), "{bad}");
    assert!(!bad.contains("id=\"coverage\""), "{bad}");

    // Without a day the list is of the last week (here: no call), and says which days.
    let recent = get(&site, "/coverage", Some(&viewer), None).text();
    assert!(recent.contains("id=\"no-calls\""), "{recent}");
    assert!(
        recent.contains("name=\"from\" type=\"date\" value=\"20"),
        "{recent}"
    );
    assert!(get(&site, "/coverage", None, None).status == 303);
    drop(daemon);
}

/// The test's authority, and a certificate for 127.0.0.1 it signed with its key, as PEM files
/// in `dir`: (authority, certificate, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let certs = crate::support::test_certificates();
    let paths = (
        dir.join("ca.pem"),
        dir.join("console.pem"),
        dir.join("console.key"),
    );
    std::fs::write(&paths.0, certs.authority).unwrap();
    std::fs::write(&paths.1, certs.certificate).unwrap();
    std::fs::write(&paths.2, certs.key).unwrap();
    paths
}

/// Runs `callwarden daemon` expecting it to refuse to start: its exit status and what it said
/// (killed after 30 s if it starts after all).
fn daemon_refuses(config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["daemon", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A client with the public roots only.
fn agent_untrusting() -> ureq::Agent {
    agent()
}

#[test]
fn the_console_serves_https_itself_with_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(certs.path());
    let site = Site::with_web(&format!("tls_cert = {cert:?}\ntls_key = {key:?}"));
    let daemon = Daemon::start(&site.config);
    daemon.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("web console ready") && x.contains("https"))
        },
        "the console over HTTPS",
    );
    daemon.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 3,
        "the three recordings",
    );
    let https = site.base.replace("http://", "https://");
    let root = ureq::tls::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    root,
                ])))
                .build(),
        )
        .build()
        .into();

    // The login page, over TLS checked against our authority, says to stay on HTTPS.
    let g = got("/login", agent.get(format!("{https}/login")).call());
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.header("strict-transport-security"), "max-age=31536000");
    // A login: the cookie is Secure, and the calls list answers over TLS.
    let g = got(
        "/login",
        agent.post(format!("{https}/login")).send_form([
            ("user", VIEWER.0),
            ("password", VIEWER.1),
            ("next", "/calls"),
        ]),
    );
    assert_eq!(g.status, 303, "{}", g.text());
    let cookie = g.header("set-cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    let token = cookie
        .strip_prefix("cw_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let page = got(
        "/calls",
        agent
            .get(format!("{https}/calls"))
            .header("Cookie", format!("cw_session={token}"))
            .call(),
    );
    assert_eq!(page.status, 200);
    assert_eq!(page.text().matches("href=\"/calls/").count(), 3);
    // Plain HTTP to the same port gets no page.
    let plain = get(&site, "/login", None, None);
    assert_ne!(plain.status, 200, "{}", plain.text());
    // A client that does not trust our authority does not connect.
    let strange = got(
        "/login",
        agent_untrusting().get(format!("{https}/login")).call(),
    );
    assert_eq!(strange.status, 0, "{}", strange.text());
    drop(daemon);

    // A key that is missing, or a certificate that is not one, stops the start, said plainly.
    let missing = Site::with_web(&format!(
        "tls_cert = {cert:?}\ntls_key = {:?}",
        certs.path().join("nowhere.key")
    ));
    let (code, said) = daemon_refuses(&missing.config);
    assert_ne!(code, Some(0));
    assert!(code.is_some(), "the daemon started without its key");
    assert!(
        said.contains("web.tls_key") && said.contains("nowhere.key"),
        "{said}"
    );
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let bad = Site::with_web(&format!("tls_cert = {garbage:?}\ntls_key = {key:?}"));
    let (code, said) = daemon_refuses(&bad.config);
    assert!(code.is_some() && code != Some(0));
    assert!(said.contains("web.tls_cert"), "{said}");
    // Only one of the two is a configuration error.
    let half = certs.path().join("half.toml");
    let text = std::fs::read_to_string(&missing.config).unwrap();
    let text: Vec<&str> = text.lines().filter(|l| !l.starts_with("tls_key")).collect();
    std::fs::write(&half, text.join("\n")).unwrap();
    let (code, said) = daemon_refuses(&half);
    assert!(code.is_some() && code != Some(0));
    assert!(said.contains("tls_key"), "{said}");
}

#[test]
fn each_user_sees_times_in_their_own_time_zone() {
    let site = Site::new();
    let daemon = Daemon::start(&site.config);
    daemon.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 3,
        "the three recordings",
    );
    let (_, viewer) = login(&site, VIEWER);
    let viewer = viewer.unwrap();
    // The console's time zone (UTC here) until the user has one.
    let page = get(&site, "/calls?agent=bob", Some(&viewer), None).text();
    assert!(page.contains("2026-11-02 10:00:00"), "{page}");
    assert!(page.contains("times in UTC"), "{page}");

    // A zone that is not one is refused, and nothing changes.
    let out = cw(
        &site.config,
        &["user", "zone", VIEWER.0, "Mars/Olympus"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a time zone"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Paris (UTC+1 in November): the same session sees the same call an hour later, at once.
    let out = cw(
        &site.config,
        &["user", "zone", VIEWER.0, "Europe/Paris"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = get(&site, "/calls?agent=bob", Some(&viewer), None).text();
    assert!(page.contains("2026-11-02 11:00:00"), "{page}");
    assert!(page.contains("times in Europe/Paris"), "{page}");
    let list = cw(&site.config, &["user", "list"], None);
    assert!(String::from_utf8_lossy(&list.stdout).contains("Europe/Paris"));
    // Back to the console's.
    let out = cw(&site.config, &["user", "zone", VIEWER.0], None);
    assert!(out.status.success());
    let page = get(&site, "/calls?agent=bob", Some(&viewer), None).text();
    assert!(page.contains("2026-11-02 10:00:00"), "{page}");
    // The change is audited, by whoever made it.
    let changes = site
        .audit()
        .into_iter()
        .filter(|e| e["action"] == "user" && e.to_string().contains("time_zone"))
        .count();
    assert_eq!(changes, 2, "two changes made, one refused");
    drop(daemon);
}
