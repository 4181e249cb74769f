//! The console in a real browser: Debian's Chromium, headless, driven through chromedriver with
//! a WebDriver client (fantoccini), against the daemon on a temp directory. A QA lead logs in,
//! filters the list, opens a call and plays it; an auditor places no hold; an admin does; logout
//! ends the session. The screenshots in docs/ are the ones this test sees.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};

use crate::daemon::Daemon;
use crate::web::{cw, Site, ADMIN, AUDITOR, VIEWER};

/// chromedriver, by PID, and the browser it starts on `profile`: both stopped when dropped,
/// even when the test fails before closing its session.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The browser's processes are the ones whose command line names this test's profile.
        let needle = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for pid in procs
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}

/// chromium and chromedriver, if installed; in CI they must be.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let (chromium, driver) = (
        PathBuf::from("/usr/bin/chromium"),
        PathBuf::from("/usr/bin/chromedriver"),
    );
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the browser tests: .ci/run installs chromium and chromium-driver"
    );
    eprintln!(
        "\n*** SKIPPED: the browser tests need Debian's chromium and chromium-driver \
         (apt-get install chromium chromium-driver) ***\n"
    );
    None
}

fn start_driver(bin: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver {
        child,
        port,
        profile: tempfile::tempdir().unwrap(),
    };
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    d
}

async fn session(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1280,2400",
                "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

async fn log_in(c: &Client, base: &str, (user, password): (&str, &str)) {
    c.goto(&format!("{base}/calls")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    c.find(Locator::Id("user"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives(c, "/calls").await;
}

/// Waits (up to 10 s) for the browser to reach `path`.
async fn arrives(c: &Client, path: &str) {
    arrives_where(c, |u| u.path() == path, path).await;
}

/// Waits (up to 10 s) for the browser's URL to pass `done` (a click's navigation ends after
/// the click does).
async fn arrives_where(c: &Client, done: impl Fn(&url::Url) -> bool, what: &str) -> url::Url {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let now = c.current_url().await.unwrap();
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < until, "still at {now}, not {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn log_out(c: &Client, base: &str) {
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives(c, "/login").await;
    c.goto(&format!("{base}/calls")).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/login",
        "the session is gone"
    );
}

/// What an automated accessibility check can hold on the page shown (WCAG 2.1 AA where a
/// machine can tell): a language, one h1, a label on every field, a name on every link,
/// button and image, scoped table headers, a text contrast of at least 4.5:1 (3:1 for large
/// text) against the background it sits on, and no positive tabindex.
const A11Y_CHECKS: &str = r#"
const problems = [];
const describe = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '');
if (!document.documentElement.lang) problems.push('no lang on html');
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (e.labels.length === 0 && !e.getAttribute('aria-label')) problems.push('no label: ' + describe(e));
}
for (const e of document.querySelectorAll('a[href], button')) {
    if (!(e.textContent.trim() || e.getAttribute('aria-label'))) problems.push('no name: ' + describe(e));
}
for (const e of document.querySelectorAll('svg')) {
    const by = e.getAttribute('aria-labelledby');
    const named = (by && document.getElementById(by) && document.getElementById(by).textContent.trim())
        || e.getAttribute('aria-label');
    if (e.getAttribute('role') !== 'img' || !named) problems.push('unnamed image: ' + describe(e));
}
for (const e of document.querySelectorAll('img')) if (!e.hasAttribute('alt')) problems.push('no alt: ' + describe(e));
for (const e of document.querySelectorAll('thead th')) if (!e.getAttribute('scope')) problems.push('no scope: ' + describe(e));
for (const e of document.querySelectorAll('[tabindex]')) if (e.tabIndex > 0) problems.push('positive tabindex: ' + describe(e));
for (const f of document.querySelectorAll('form')) {
    if (f.querySelectorAll('input:not([type=hidden]), select').length > 1 && !f.getAttribute('aria-label')
        && !f.classList.contains('login')) problems.push('unnamed form: ' + describe(f));
}
const rgba = s => { const m = s.match(/[\d.]+/g) || ['0', '0', '0', '0']; return m.map(Number).concat([1]).slice(0, 4); };
const lum = ([r, g, b]) => {
    const c = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
};
const background = e => {
    for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
        const c = rgba(getComputedStyle(n).backgroundColor);
        if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
};
let checked = 0;
for (const e of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'OPTION', 'title'].includes(e.tagName)) continue;
    if (e.closest('title')) continue;
    const text = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text || e.getClientRects().length === 0) continue;
    const st = getComputedStyle(e);
    if (st.visibility === 'hidden' || st.display === 'none') continue;
    const r = e.getBoundingClientRect();
    if (r.right < 0 || r.bottom < 0) continue; // off screen until focused (the skip link)
    const fg = rgba(e instanceof SVGElement ? st.fill : st.color);
    const bg = background(e);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) problems.push('contrast ' + ratio.toFixed(2) + ': ' + describe(e));
}
if (checked === 0) problems.push('no text checked');
return problems;
"#;

/// Runs [`A11Y_CHECKS`] on the page shown, and tabs through it: the first Tab reaches the
/// skip link (unless a field has the focus already), focus is visible, and every link, button
/// and field is reached by the keyboard.
async fn accessible(c: &Client, what: &str) {
    let problems = c.execute(A11Y_CHECKS, vec![]).await.unwrap();
    assert_eq!(problems, serde_json::json!([]), "{what}: accessibility");
    let focusable = c
        .execute(
            "return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select')]
                 .filter(e => e.getClientRects().length > 0 || e.classList.contains('skip'))
                 .length;",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap() as usize;
    let autofocus = c
        .execute("return document.activeElement !== document.body;", vec![])
        .await
        .unwrap()
        == serde_json::json!(true);
    let mut reached = std::collections::BTreeSet::new();
    // A date field takes a Tab per part, the player one per control.
    for i in 0..focusable * 4 + 12 {
        if reached.len() == focusable {
            break;
        }
        // A key pressed on the page, not sent to an element (which would focus it first).
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: '\u{E004}' })
            .then(KeyAction::Up { value: '\u{E004}' });
        c.perform_actions(tab).await.unwrap();
        let now = c
            .execute(
                "const e = document.activeElement;
                 const all = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select')];
                 return {index: all.indexOf(e), skip: e.classList.contains('skip'),
                         outline: getComputedStyle(e).outlineStyle, tag: e.outerHTML.slice(0, 80),
                         focus: document.hasFocus()};",
                vec![],
            )
            .await
            .unwrap();
        if i == 0 && !autofocus {
            assert_eq!(
                now["skip"], true,
                "{what}: the first Tab reaches the skip link"
            );
        }
        if let Some(at) = now["index"].as_i64().filter(|&x| x >= 0) {
            assert_ne!(now["outline"], "none", "{what}: focus is visible: {now}");
            reached.insert(at);
        }
    }
    assert_eq!(
        reached.len(),
        focusable,
        "{what}: every link, button and field is reached by Tab"
    );
}

async fn rows(c: &Client) -> usize {
    c.find_all(Locator::Css("#calls tbody tr"))
        .await
        .unwrap()
        .len()
}

/// The page as rendered, whole: its body, whatever the window's height (the browser's own
/// frame takes a few pixels more or less from machine to machine).
async fn whole_page(c: &Client) -> Vec<u8> {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .screenshot()
        .await
        .unwrap()
}

/// Compares a screenshot with the one kept in docs/ (same size, at most 3 % of pixels off by
/// more than an eighth of the range: times of the day and ids move a few glyphs); with
/// `UPDATE_SCREENSHOTS=1`, keeps the new one instead.
fn matches_docs(png_bytes: &[u8], name: &str) {
    let kept = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::write(&kept, png_bytes).unwrap();
        return;
    }
    let decode = |bytes: &[u8]| {
        let mut d = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
        d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut r = d.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let step = info.color_type.samples();
        let gray: Vec<u8> = buf
            .chunks(step)
            .map(|p| {
                p[..step.min(3)].iter().map(|&v| v as u32).sum::<u32>() as u8 / step.min(3) as u8
            })
            .collect();
        (info.width, info.height, gray)
    };
    let bytes = std::fs::read(&kept).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run the test with UPDATE_SCREENSHOTS=1",
            kept.display()
        )
    });
    let (w, h, a) = decode(&bytes);
    let (w2, h2, b) = decode(png_bytes);
    assert_eq!((w, h), (w2, h2), "{name}: the page's size changed");
    let off = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| (**x as i32 - **y as i32).abs() > 32)
        .count();
    let share = off as f64 / a.len() as f64;
    assert!(
        share <= 0.03,
        "{name}: {:.1} % of the pixels differ from docs/{name}: run with \
         UPDATE_SCREENSHOTS=1 if the change is meant",
        share * 100.0
    );
}

#[test]
fn a_qa_lead_finds_a_call_and_listens_an_auditor_may_not_hold_an_admin_may() {
    let Some((chromium, driver_bin)) = browser() else {
        return;
    };
    let site = Site::new();
    let daemon = Daemon::start(&site.config);
    daemon.wait_for(
        |l| l.iter().filter(|x| x.contains("stored")).count() >= 3,
        "the three recordings",
    );
    let driver = start_driver(&driver_bin);
    let base = site.base.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = session(&driver, &chromium, driver.profile.path()).await;

        // The QA lead (a viewer): log in, filter, open the call, play it.
        log_in(&c, &base, VIEWER).await;
        assert_eq!(rows(&c).await, 3);
        let list = whole_page(&c).await;
        matches_docs(&list, "console-calls.png");
        accessible(&c, "the calls").await;
        c.find(Locator::Id("agent"))
            .await
            .unwrap()
            .send_keys("bob")
            .await
            .unwrap();
        c.find(Locator::Id("filter"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_where(
            &c,
            |u| u.query().is_some_and(|q| q.contains("agent=bob")),
            "the filtered list",
        )
        .await;
        assert_eq!(rows(&c).await, 1, "the filter narrows the list");
        c.find(Locator::Css("#calls tbody a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let call_url =
            arrives_where(&c, |u| u.path().starts_with("/calls/"), "the call's page").await;
        // The audio element loads and plays; its duration is the recording's.
        let played = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const a = document.getElementById('player');
                 a.muted = true;
                 const wait = () => a.currentTime > 0.3
                     ? done({duration: a.duration, time: a.currentTime})
                     : setTimeout(wait, 50);
                 a.play().then(wait).catch(e => done({error: String(e)}));",
                vec![],
            )
            .await
            .unwrap();
        assert!(played.get("error").is_none(), "{played}");
        let duration = played["duration"].as_f64().unwrap();
        let wav = hound::WavReader::open(site.rec().join("call-2.wav")).unwrap();
        let truth = wav.duration() as f64 / wav.spec().sample_rate as f64;
        assert!((duration - truth).abs() < 0.05, "{duration} vs {truth}");
        // The server answered the player's Range request with 206.
        let statuses = c
            .execute(
                "return performance.getEntriesByType('resource')
                    .filter(e => e.name.endsWith('/audio'))
                    .map(e => e.responseStatus);",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            statuses
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.as_u64() == Some(206)),
            "{statuses}"
        );
        // The call page as a QA lead sees it (before any hold: a hold shows today's time).
        let page = whole_page(&c).await;
        matches_docs(&page, "console-call.png");
        assert!(
            c.find(Locator::Css("#levels polyline")).await.is_ok(),
            "the level plot is drawn"
        );
        for path in ["/coverage", "/kpi", "/reports"] {
            c.goto(&format!("{base}{path}")).await.unwrap();
            accessible(&c, path).await;
        }
        log_out(&c, &base).await;
        accessible(&c, "the login").await;

        // An auditor has no hold form, and a hold posted anyway is refused.
        log_in(&c, &base, AUDITOR).await;
        c.goto(call_url.as_str()).await.unwrap();
        assert!(c.find(Locator::Id("place-hold")).await.is_err());
        let status = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const csrf = document.querySelector('input[name=csrf]').value;
                 fetch(location.pathname + '/hold', {method: 'POST',
                     body: new URLSearchParams({csrf, case: 'K-9', reason: 'no'})})
                   .then(r => done(r.status));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(status.as_u64(), Some(403));
        log_out(&c, &base).await;

        // An admin places one, through the form.
        log_in(&c, &base, ADMIN).await;
        c.goto(call_url.as_str()).await.unwrap();
        accessible(&c, "the call, as an admin").await;
        c.find(Locator::Id("case"))
            .await
            .unwrap()
            .send_keys("K-7")
            .await
            .unwrap();
        c.find(Locator::Id("reason"))
            .await
            .unwrap()
            .send_keys("subpoena 7")
            .await
            .unwrap();
        c.find(Locator::Id("place-hold"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The form posts, and the call's page comes back with the hold on it.
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let holds = match c.find(Locator::Id("holds")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if holds.contains("case K-7: subpoena 7 (alice") {
                break;
            }
            assert!(Instant::now() < until, "no hold shown: {holds}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        log_out(&c, &base).await;
        c.close().await.unwrap();
    });
    let out = cw(&site.config, &["hold", "list"], None);
    let holds = String::from_utf8_lossy(&out.stdout);
    assert!(holds.contains("K-7") && !holds.contains("K-9"), "{holds}");
    let out = cw(&site.config, &["audit", "export"], None);
    let log = String::from_utf8_lossy(&out.stdout);
    let hold_by_alice = log.lines().any(|l| {
        l.contains("\"action\":\"hold_add\"")
            && l.contains("\"actor\":\"alice\"")
            && l.contains("K-7")
    });
    assert!(hold_by_alice, "{log}");
    assert!(log.contains("\"action\":\"access\"") && log.contains("\"actor\":\"vic\""));
    drop(driver);
    drop(daemon);
}
