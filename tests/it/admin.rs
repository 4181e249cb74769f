//! Admins and compliance officers: every query command against a stopped store and against a
//! running daemon over its socket gives the same answer; roles come from Unix groups; changes
//! are audited with the caller's name; the outputs are pinned by snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callwarden::store::Store;

use crate::daemon::Daemon;
use crate::support::{age, assets, standard_call, white, write_wav};

/// A site: recordings with sidecars, ingested into a store, and a configuration.
pub(crate) struct Site {
    _dir: tempfile::TempDir,
    pub(crate) base: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) config: PathBuf,
}

/// The fixed "now" every query is asked at, so ages and windows are reproducible.
const NOW: &str = "2026-12-01T00:00:00Z";

/// Writes the configuration with these role groups.
fn configure(s: &Site, auditors: &[&str], admins: &[&str]) {
    std::fs::write(
        &s.config,
        format!(
            "[ingest]\nroots = [{:?}]\nsettle_s = 0.0\nworkers = 1\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\nauditor_groups = {auditors:?}\nadmin_groups = {admins:?}\n\
             [consent]\ndefault = \"one_party\"\n\
             [[consent.rule]]\nqueue = [\"eu\"]\nrequires = \"all_party\"\n\
             [[retention.rule]]\nname = \"default\"\nkeep = \"90d\"\n\
             [[retention.rule]]\nname = \"sales\"\nqueue = [\"sales\"]\nkeep = \"1y\"\n",
            s.root,
            s.base.join("store"),
            s.base.join("control.sock"),
        ),
    )
    .unwrap();
}

/// The primary group of the user running the tests (roles are given by group).
fn my_group() -> String {
    let out = Command::new("id").arg("-gn").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Seven calls over three days: clean, noisy, very noisy, clipped, stereo, too short, broken.
pub(crate) fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let s = Site {
        config: base.join("callwarden.toml"),
        _dir: dir,
        base,
        root,
    };
    let group = my_group();
    configure(&s, &[], &[group.as_str()]);
    let call = standard_call();
    let noise = white(call.samples.len(), 5);
    let clipped: Vec<f32> = call
        .samples
        .iter()
        .map(|&v| (v * 12.0).clamp(-0.5, 0.5))
        .collect();
    let calls: [(&str, Vec<f32>, &str); 4] = [
        (
            "clean",
            call.samples.clone(),
            r#""agent": "alice", "queue": "sales", "consent": {"state": "granted"}"#,
        ),
        (
            "noisy",
            call.with_noise(&noise, 10.0),
            r#""agent": "bob", "queue": "eu", "consent": {"state": "unknown"}"#,
        ),
        (
            "very-noisy",
            call.with_noise(&noise, 0.0),
            r#""agent": "bob", "queue": "eu""#,
        ),
        (
            "clipped",
            clipped,
            r#""agent": "alice", "queue": "support", "consent": {"state": "denied"}"#,
        ),
    ];
    for (i, (name, samples, fields)) in calls.iter().enumerate() {
        let path = s.root.join(format!("{name}.wav"));
        write_wav(&path, samples, 1);
        sidecar(
            &path,
            &format!("2026-11-{:02}T09:{i:02}:00Z", 28 + i % 3),
            fields,
        );
    }
    let stereo = s.root.join("stereo.wav");
    std::fs::copy(assets().join("demo/call-stereo.wav"), &stereo).unwrap();
    sidecar(
        &stereo,
        "2026-11-30T10:00:00Z",
        r#""agent": "carol", "queue": "sales", "consent": {"state": "not_required"}"#,
    );
    let short = s.root.join("short.wav");
    write_wav(&short, &call.samples[..8000], 1);
    sidecar(&short, "2026-11-29T11:00:00Z", r#""agent": "carol""#);
    let broken = s.root.join("broken.wav");
    std::fs::write(&broken, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunkjunk").unwrap();
    sidecar(&broken, "2026-11-29T12:00:00Z", r#""agent": "alice""#);
    for entry in std::fs::read_dir(&s.root).unwrap() {
        age(&entry.unwrap().path(), 3600);
    }
    let out = cw(&s, &["ingest", "--jobs", "1"], &[s.root.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "one file is broken: {}",
        text(&out)
    );
    s
}

fn sidecar(recording: &Path, start: &str, fields: &str) {
    std::fs::write(
        recording.with_extension("json"),
        format!(r#"{{"start_time": "{start}", {fields}}}"#),
    )
    .unwrap();
}

/// Runs callwarden with the site's configuration.
pub(crate) fn cw(s: &Site, args: &[&str], rest: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .args(rest)
        .output()
        .unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn stdout(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The queries compared across the two transports, each with its arguments.
const QUERIES: &[&[&str]] = &[
    &["list", "--now", NOW, "--since", "30d"],
    &["list", "--now", NOW, "--csv", "--sort", "score"],
    &["list", "--now", NOW, "--json", "--agent", "bob"],
    &[
        "list",
        "--now",
        NOW,
        "--consent",
        "none",
        "--state",
        "analysed",
    ],
    &["list", "--now", NOW, "--flag", "clipping", "--csv"],
    &["worst", "--now", NOW, "--since", "7d", "--limit", "3"],
    &["kpi", "--now", NOW, "--by", "agent"],
    &["kpi", "--now", NOW, "--by", "day", "--csv"],
    &["kpi", "--now", NOW, "--json"],
    &[
        "report",
        "consent",
        "--format",
        "json",
        "--since",
        "2026-11-01T00:00:00Z",
    ],
    &["report", "quality", "--format", "csv"],
    &["report", "retention", "--format", "json"],
    &["report", "holds", "--format", "json"],
    &["report", "purged", "--format", "json"],
    &["hold", "list", "--json"],
];

/// Stable text: the site's temp paths and report times replaced.
fn stable(s: &Site, out: &str) -> String {
    let mut t = out.replace(s.base.to_str().unwrap(), "[SITE]");
    let key = "\"generated_at\": \"";
    let mut from = 0;
    while let Some(at) = t[from..].find(key).map(|i| from + i + key.len()) {
        let end = t[at..].find('"').map_or(t.len(), |i| at + i);
        t.replace_range(at..end, "[GENERATED]");
        from = at;
    }
    t
}

#[test]
fn the_daemon_and_the_store_give_the_same_answers() {
    let s = site();
    let ids: Vec<serde_json::Value> = stdout(&cw(&s, &["list", "--json"], &["--limit", "100"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids.len(), 7, "every recording is listed");
    let clean = ids
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("clean.wav"))
        .unwrap();
    let clean_id = clean["id"].to_string();

    let stopped: Vec<String> = QUERIES
        .iter()
        .map(|q| stable(&s, &stdout(&cw(&s, q, &[]))))
        .chain(std::iter::once(stable(
            &s,
            &stdout(&cw(&s, &["show", &clean_id, "--json"], &[])),
        )))
        .collect();

    // Pinned outputs: table, CSV and JSON.
    insta::assert_snapshot!("list_table", stopped[0]);
    insta::assert_snapshot!("list_csv_by_score", stopped[1]);
    insta::assert_snapshot!("list_json_bob", stopped[2]);
    insta::assert_snapshot!("list_no_consent", stopped[3]);
    insta::assert_snapshot!("list_clipping", stopped[4]);
    insta::assert_snapshot!("worst", stopped[5]);
    insta::assert_snapshot!("kpi_by_agent", stopped[6]);
    insta::assert_snapshot!("kpi_by_day_csv", stopped[7]);
    insta::assert_snapshot!("kpi_json", stopped[8]);
    insta::assert_snapshot!("report_consent_json", stopped[9]);
    insta::assert_snapshot!("report_quality_csv", stopped[10]);

    let status: serde_json::Value =
        serde_json::from_str(&stdout(&cw(&s, &["status", "--json"], &[]))).unwrap();
    assert!(status["daemon"].is_null(), "{status}");
    assert_eq!(status["counts"]["analysed"], 5);
    assert_eq!(status["counts"]["too_short"], 1);
    assert_eq!(status["counts"]["failed"], 1);

    let daemon = Daemon::start(&s.config);
    let running: Vec<String> = QUERIES
        .iter()
        .map(|q| stable(&s, &stdout(&cw(&s, q, &[]))))
        .chain(std::iter::once(stable(
            &s,
            &stdout(&cw(&s, &["show", &clean_id, "--json"], &[])),
        )))
        .collect();
    for ((q, a), b) in QUERIES.iter().zip(&stopped).zip(&running) {
        if q.contains(&"purged") {
            // The daemon audits its start: the chain head that covers the purges moved on.
            let body = |t: &str| {
                serde_json::from_str::<serde_json::Value>(t).unwrap()["recordings"].clone()
            };
            assert_eq!(body(a), body(b), "{q:?}: the store and the daemon disagree");
        } else {
            assert_eq!(a, b, "{q:?}: the store and the daemon disagree");
        }
    }
    assert_eq!(stopped.last(), running.last(), "show disagrees");
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&cw(&s, &["status", "--json"], &[]))).unwrap();
    assert_eq!(status["daemon"]["pid"], daemon_pid(&status), "{status}");
    assert_eq!(status["daemon"]["queue_depth"], 0);
    assert_eq!(status["counts"]["analysed"], 5);
    let human = stdout(&cw(&s, &["status"], &[]));
    assert!(human.contains("daemon    running"), "{human}");
    assert_eq!(daemon.stop(), Some(0));
    assert!(
        !s.base.join("control.sock").exists(),
        "the daemon removes its socket at stop"
    );
}

fn daemon_pid(status: &serde_json::Value) -> serde_json::Value {
    // The pid is the daemon's own: just check it is a number.
    assert!(status["daemon"]["pid"].as_u64().is_some_and(|p| p > 0));
    status["daemon"]["pid"].clone()
}

#[test]
fn roles_come_from_groups_and_changes_carry_the_callers_name() {
    let s = site();
    let group = my_group();
    let first: serde_json::Value = serde_json::from_str(
        stdout(&cw(&s, &["list", "--json"], &[]))
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = first["id"].to_string();

    // Auditors read and manage holds, but may not change consent.
    configure(&s, &[group.as_str()], &[]);
    let daemon = Daemon::start(&s.config);
    stdout(&cw(&s, &["kpi"], &[]));
    let hold = cw(
        &s,
        &["hold", "add", &id, "--case", "K-1", "--reason", "subpoena"],
        &[],
    );
    assert!(stdout(&hold).contains("placed on 1 recordings"));
    let refused = cw(&s, &["consent", "set", &id, "denied"], &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("needs the admin role"),
        "{}",
        text(&refused)
    );
    // Auditors may plan a purge, not carry one out.
    let plan = cw(
        &s,
        &["purge", "--dry-run", "--now", "2027-06-01T00:00:00Z"],
        &[],
    );
    assert!(stdout(&plan).contains("would purge"), "{}", text(&plan));
    let refused = cw(&s, &["purge", "--id", &id], &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    let refused = cw(&s, &["reload"], &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert_eq!(daemon.stop(), Some(0));

    // Anyone outside the configured groups is refused, plainly.
    configure(&s, &["callwarden-test-no-such-group"], &[]);
    let daemon = Daemon::start(&s.config);
    let refused = cw(&s, &["list"], &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("is in none of the groups allowed"),
        "{}",
        text(&refused)
    );
    assert_eq!(daemon.stop(), Some(0));

    // An admin's consent change shows in `show` and in the audit log, with the caller's name.
    configure(&s, &[], &[group.as_str()]);
    let daemon = Daemon::start(&s.config);
    let set = cw(
        &s,
        &[
            "consent",
            "set",
            &id,
            "denied",
            "--source",
            "agent",
            "--note",
            "caller objected",
        ],
        &[],
    );
    assert!(stdout(&set).contains("consent denied"), "{}", text(&set));
    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&cw(&s, &["show", &id, "--json"], &[]))).unwrap();
    let me = caller_name();
    assert_eq!(shown["record"]["consent"]["state"], "denied");
    assert_eq!(shown["record"]["consent"]["actor"], me.as_str());
    assert_eq!(
        shown["record"]["consent_history"][0]["state"],
        first["consent"]
    );
    let actions: Vec<(String, String)> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("consent".into(), me.clone())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("hold_add".into(), me.clone())),
        "{actions:?}"
    );

    // Admins purge through the daemon (never as of another time) and reload its configuration.
    let future = cw(&s, &["purge", "--now", "2027-06-01T00:00:00Z"], &[]);
    assert_eq!(future.status.code(), Some(2), "{}", text(&future));
    assert!(
        text(&future).contains("only with the daemon stopped"),
        "{}",
        text(&future)
    );
    let bob = stdout(&cw(&s, &["list", "--json", "--agent", "bob"], &[]));
    let bob: serde_json::Value = serde_json::from_str(bob.lines().next().unwrap()).unwrap();
    let (victim, victim_id) = (
        PathBuf::from(bob["path"].as_str().unwrap()),
        bob["id"].to_string(),
    );
    assert_ne!(victim_id, id);
    let held = cw(&s, &["purge", "--id", &id], &[]);
    assert!(
        stdout(&held).contains("under legal hold"),
        "{}",
        text(&held)
    );
    let purged = cw(&s, &["purge", "--id", &victim_id], &[]);
    assert!(stdout(&purged).contains("purged 1 "), "{}", text(&purged));
    assert!(!victim.exists(), "the manual purge deleted the file");
    let certificate: serde_json::Value = serde_json::from_str(&stdout(&cw(
        &s,
        &["report", "purged", "--format", "json"],
        &[],
    )))
    .unwrap();
    assert_eq!(certificate["count"], 1);
    assert_eq!(certificate["recordings"][0]["actor"], me.as_str());
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("keep = \"90d\"", "keep = \"120d\""),
    )
    .unwrap();
    let reload = cw(&s, &["reload"], &[]);
    assert!(
        stdout(&reload).starts_with("reloaded "),
        "{}",
        text(&reload)
    );
    // The audit commands work while the daemon runs, too.
    let verify = cw(&s, &["audit", "verify"], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(text(&verify).contains("intact"), "{}", text(&verify));
    let recent = stdout(&cw(&s, &["audit", "export", "--since", "1h"], &[]));
    assert!(
        recent.lines().any(|l| l.contains("\"action\":\"purge\"")),
        "{recent}"
    );
    // In pages of two, through the daemon and from the stopped store: the same log.
    let whole = stdout(&cw(&s, &["audit", "export"], &[]));
    let paged = stdout(&cw(&s, &["audit", "export", "--page-size", "2"], &[]));
    assert!(whole.lines().count() > 4, "{whole}");
    assert_eq!(paged, whole);
    assert_eq!(daemon.stop(), Some(0));
    let local = stdout(&cw(&s, &["audit", "export", "--page-size", "3"], &[]));
    assert_eq!(local, stdout(&cw(&s, &["audit", "export"], &[])));
    // The stopped store holds what the daemon exported, and its stop.
    assert!(local.starts_with(&whole), "{local}");
    let reloads: Vec<serde_json::Value> = stdout(&cw(&s, &["audit", "export"], &[]))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "config_reload")
        .collect();
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert_eq!(reloads[0]["actor"], me.as_str());
    let export = stdout(&cw(&s, &["audit", "export"], &[]));
    let consent_entry: serde_json::Value = export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["action"] == "consent")
        .expect("the consent change is audited");
    assert_eq!(consent_entry["actor"], me.as_str());
    assert_eq!(consent_entry["details"]["to"], "denied");
    let verify = cw(&s, &["audit", "verify"], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}

/// The name the daemon writes for the user running the tests.
fn caller_name() -> String {
    let user = Command::new("id").arg("-un").output().unwrap();
    let uid = Command::new("id").arg("-u").output().unwrap();
    format!(
        "{} (uid {})",
        String::from_utf8_lossy(&user.stdout).trim(),
        String::from_utf8_lossy(&uid.stdout).trim()
    )
}

#[test]
fn a_locked_store_behind_an_unreachable_socket_is_named() {
    let s = site();
    let _lock = Store::open(&s.base.join("store")).unwrap();
    let out = cw(&s, &["list"], &["--socket", "/nonexistent/callwarden.sock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("is in use by another process"), "{t}");
    assert!(
        t.contains("control socket /nonexistent/callwarden.sock is unreachable"),
        "{t}"
    );
    // No daemon and no store: said so, and no store is created by asking.
    let missing = s.base.join("no-store");
    let out = cw(&s, &["status", "--store", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("there is no store at"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists());
}

#[test]
fn a_daemon_of_another_protocol_version_says_so() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("old.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        let reply = r#"{"protocol": 99, "server": "9.9.9", "error": {"code": "protocol", "message": "old"}}"#;
        writeln!(stream, "{reply}").unwrap();
        line
    });
    let out = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
    assert_eq!(sent["protocol"], 1);
    assert_eq!(sent["request"]["command"], "status");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("speaks control protocol 1, the daemon (callwarden 9.9.9) speaks 99"),
        "{}",
        text(&out)
    );
}

/// Checks that tags nest properly (void elements aside) and returns the tag counts.
fn check_well_formed(html: &str) -> std::collections::BTreeMap<String, usize> {
    const VOID: [&str; 3] = ["meta", "br", "hr"];
    let mut stack: Vec<String> = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            let closing: String = closing
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert_eq!(
                stack.pop().as_deref(),
                Some(closing.as_str()),
                "misnested </{closing}>"
            );
        } else {
            *counts.entry(name.clone()).or_default() += 1;
            if !self_closing && !VOID.contains(&name.as_str()) {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    counts
}

#[test]
fn html_reports_are_self_contained_and_hold_their_charts() {
    let s = site();
    for (kind, charts) in [
        ("quality", 4),
        ("consent", 2),
        ("retention", 2),
        ("purged", 0),
    ] {
        let file = s.base.join(format!("{kind}.html"));
        let output = format!("--output={}", file.display());
        let out = cw(&s, &["report", kind, "--format", "html", &output], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let html = std::fs::read_to_string(&file).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{kind}");
        for external in ["<script", "src=", "href=", "url(", "@import", "<link"] {
            assert!(
                !html.contains(external),
                "{kind}: {external} in a self-contained report"
            );
        }
        let counts = check_well_formed(&html);
        assert_eq!(
            counts.get("svg").copied().unwrap_or(0),
            charts,
            "{kind}: {counts:?}"
        );
        assert!(counts.get("table").copied().unwrap_or(0) >= 1, "{kind}");
    }
    let quality = std::fs::read_to_string(s.base.join("quality.html")).unwrap();
    assert!(
        quality.contains("<polyline class=\"trend\""),
        "a trend line"
    );
    assert_eq!(
        quality.matches("<rect class=\"bar\"").count(),
        10 + 4 + flag_codes(&s),
        "one bar per score band, grade and flag"
    );
}

fn flag_codes(s: &Site) -> usize {
    let q: serde_json::Value = serde_json::from_str(&stdout(&cw(
        s,
        &["report", "quality", "--format", "json"],
        &[],
    )))
    .unwrap();
    q["flags"].as_object().unwrap().len()
}

#[test]
fn completions_and_the_man_page_come_from_the_cli() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_callwarden"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_callwarden") && bash.contains("worst"),
        "bash"
    );
    assert!(run(&["completions", "zsh"]).contains("#compdef callwarden"));
    assert!(run(&["completions", "fish"]).contains("complete -c callwarden"));
    let man = run(&["man"]);
    assert!(
        man.contains(".TH callwarden") && man.contains("kpi"),
        "{man}"
    );
}
