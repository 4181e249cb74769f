//! Operations: the Prometheus endpoint scraped over loopback after real ingests, and alert
//! actions (a command, a webhook served by the test on loopback) firing once per rule and
//! recording, held back by the rate limit, and never stopping ingest when they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::support::{age, standard_call, white, write_wav};

/// A loopback HTTP server that records the bodies POSTed to it and answers `status`; it stops
/// when dropped.
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hook {
    fn start(status: u16) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, halt) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(body) = read_request(stream, status) {
                            sink.lock().unwrap().push(body);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hook {
            port,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: TcpStream, status: u16) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let reason = if status == 200 { "OK" } else { "Server Error" };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    String::from_utf8(body).ok()
}

/// GETs `path` from the daemon's endpoint: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let (code, _, body) = get_accepting(addr, path, None);
    (code, body)
}

/// GETs `path` with an `Accept` header: the status code, the Content-Type and the body.
fn get_accepting(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, content_type, body.to_string())
}

/// The value of one sample line of the exposition (`name{labels}`), 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

/// Four good calls, one with consent denied, one broken file.
fn site(alerts: &str) -> Site {
    site_with("", alerts)
}

/// `site`, with more `[ingest]` keys.
fn site_with(ingest: &str, alerts: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 1.0\nworkers = 2\n{ingest}\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[retention]\n\
             min_free_ratio = 0.0\n{alerts}",
            base.join("store"),
            base.join("control.sock"),
        ),
    )
    .unwrap();
    let call = standard_call();
    let noise = white(call.samples.len(), 3);
    for i in 0..5 {
        let path = root.join(format!("call-{i}.wav"));
        write_wav(&path, &call.with_noise(&noise, 5.0 + 5.0 * i as f64), 1);
        let consent = if i == 4 { "denied" } else { "granted" };
        std::fs::write(
            path.with_extension("json"),
            format!(r#"{{"agent": "a{i}", "consent": {{"state": "{consent}"}}}}"#),
        )
        .unwrap();
    }
    std::fs::write(root.join("broken.wav"), b"RIFF\x04\x00\x00\x00WAVE").unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        age(&entry.unwrap().path(), 600);
    }
    Site {
        _dir: dir,
        root,
        config,
    }
}

fn metrics_addr(d: &Daemon) -> String {
    let line = d
        .line_with("metrics endpoint listening")
        .expect("the endpoint is announced");
    line.split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The alerts the command received: one file each (commands run concurrently).
fn command_log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("alert."))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|t| !t.is_empty())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

#[test]
fn metrics_count_what_the_daemon_did_and_alerts_fire_once_per_rule_and_recording() {
    let hook = Hook::start(200);
    let dir_probe = tempfile::tempdir().unwrap();
    let s = site(&format!(
        "[alerts]\ncommand = [\"sh\", \"-c\", \"cat > $(mktemp {}/alert.XXXXXX)\"]\nwebhook = {:?}\n\
         [[alerts.rule]]\nname = \"every-call\"\nscore_below = 101\n\
         [[alerts.rule]]\nname = \"denied\"\nconsent = [\"denied\"]\n",
        dir_probe.path().display(),
        hook.url()
    ));
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let addr = metrics_addr(&d);

    // Each rule once per recording: five calls, one of them denied; the broken file none.
    wait_until("the webhook's six alerts", || hook.bodies().len() >= 6);
    wait_until("the command's six alerts", || {
        command_log(dir_probe.path()).len() >= 6
    });
    std::thread::sleep(Duration::from_millis(500));
    for alerts in [hook.bodies(), command_log(dir_probe.path())] {
        let mut keys: Vec<(String, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a["rule"].as_str().unwrap().to_string(),
                    a["subject"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(n, 6, "{alerts:?}");
        assert_eq!(keys.len(), 6, "no duplicates: {alerts:?}");
        assert_eq!(keys.iter().filter(|k| k.0 == "every-call").count(), 5);
        let denied: Vec<&serde_json::Value> =
            alerts.iter().filter(|a| a["rule"] == "denied").collect();
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0]["recording"]["consent"], "denied");
        assert!(denied[0]["message"]
            .as_str()
            .unwrap()
            .contains("consent denied"));
    }

    let root = format!(
        "callwarden_disk_free_ratio{{root=\"{}\"}}",
        s.root.display()
    );
    wait_until("the gauges", || get(&addr, "/metrics").1.contains(&root));
    let (code, metrics) = get(&addr, "/metrics");
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "callwarden_recordings_ingested_total{result=\"stored\"}"
        ),
        5.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "callwarden_recordings_ingested_total{result=\"failed\"}"
        ),
        1.0
    );
    assert_eq!(sample(&metrics, "callwarden_quality_score_count"), 5.0);
    assert_eq!(sample(&metrics, "callwarden_analysis_seconds_count"), 5.0);
    assert_eq!(sample(&metrics, "callwarden_queue_depth"), 0.0);
    assert_eq!(
        sample(
            &metrics,
            "callwarden_alerts_total{rule=\"every-call\",outcome=\"sent\"}"
        ),
        5.0
    );
    assert!(sample(&metrics, "callwarden_flags_total{code=\"low_snr\"}") >= 1.0);
    assert!(metrics.contains("callwarden_build_info{version=\""));
    assert!(sample(&metrics, "callwarden_last_rescan_timestamp_seconds") > 1.7e9);
    // The gauges read from the store are refreshed at start and every 30 s.
    assert!(metrics.contains("callwarden_audit_chain_length "));
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(&addr, "/").0, 404);
    assert_eq!(d.stop(), Some(0));
}

/// `promtool check metrics` on a scrape: Some(its verdict and output), None without promtool
/// (then the test skips loudly, but not in CI, where .ci/run installs it).
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have promtool (Debian's prometheus package; .ci/run installs it)"
            );
            eprintln!("SKIPPED promtool check metrics: promtool is not installed");
            return None;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && said.trim().is_empty(), said))
}

#[test]
fn a_scrape_is_prometheus_text_that_promtool_accepts_with_every_series_from_the_start() {
    let s = site(
        "[[alerts.rule]]\nname = \"denied\"\nconsent = [\"denied\"]\n\
         [[alerts.rule]]\nname = \"never\"\nscore_below = 0\n",
    );
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let addr = metrics_addr(&d);

    // What `kpi` says of consent, the gauge says within a refresh (5 s), not minutes later.
    let kpi = crate::compliance::callwarden(&s.config, &["kpi", "--json"]);
    assert!(kpi.status.success(), "{kpi:?}");
    let kpi: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&kpi.stdout).lines().next().unwrap()).unwrap();
    let coverage = kpi["consent_coverage"]
        .as_f64()
        .unwrap_or_else(|| panic!("consent_coverage in {kpi}"));
    assert!(coverage > 0.0 && coverage < 1.0, "{kpi}");
    let gauge = "callwarden_consent_coverage_ratio";
    let refreshed = Instant::now();
    wait_until("the consent coverage gauge", || {
        (sample(&get(&addr, "/metrics").1, gauge) - coverage).abs() < 1e-9
    });
    assert!(refreshed.elapsed() < Duration::from_secs(12));

    // A plain client (curl, promtool) gets the text format; Prometheus, asking, OpenMetrics.
    let (code, content_type, text) = get_accepting(&addr, "/metrics", None);
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");
    let (_, content_type, open) = get_accepting(
        &addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    if let Some((ok, said)) = promtool_check(&text) {
        assert!(ok, "promtool check metrics:\n{said}\non:\n{text}");
    }

    // Every known series exists at 0 before anything happens to it.
    for series in [
        "callwarden_recordings_ingested_total{result=\"too_short\"} 0",
        "callwarden_recordings_ingested_total{result=\"store_error\"} 0",
        "callwarden_flags_total{code=\"clipping\"} 0",
        "callwarden_purges_total{result=\"refused\"} 0",
        "callwarden_alerts_total{rule=\"never\",outcome=\"sent\"} 0",
        "callwarden_alerts_total{rule=\"denied\",outcome=\"rate_limited\"} 0",
        "callwarden_alerts_total{rule=\"denied\",outcome=\"sent\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "{series} not in:\n{text}"
        );
    }
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn the_rate_limit_holds_alerts_back_and_failing_actions_never_stop_ingest() {
    // Every action fails: the command does not exist, the webhook answers 500.
    let hook = Hook::start(500);
    let s = site(&format!(
        "[alerts]\ncommand = [\"/nonexistent/callwarden-pager\"]\nwebhook = {:?}\n\
         webhook_retries = 1\nmax_per_hour = 2\n\
         [[alerts.rule]]\nname = \"every-call\"\nscore_below = 101\n",
        hook.url()
    ));
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let addr = metrics_addr(&d);
    let stored = "callwarden_recordings_ingested_total{result=\"stored\"}";
    wait_until("six recordings counted", || {
        let m = get(&addr, "/metrics").1;
        sample(&m, stored) == 5.0
            && sample(
                &m,
                "callwarden_recordings_ingested_total{result=\"failed\"}",
            ) == 1.0
    });
    let (_, metrics) = get(&addr, "/metrics");
    assert_eq!(
        sample(
            &metrics,
            "callwarden_recordings_ingested_total{result=\"stored\"}"
        ),
        5.0,
        "ingest goes on whatever the actions do: {metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "callwarden_alerts_total{rule=\"every-call\",outcome=\"sent\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "callwarden_alerts_total{rule=\"every-call\",outcome=\"rate_limited\"}"
        ),
        3.0
    );
    // Two alerts, each tried twice (one retry), all answered 500.
    wait_until("the retried webhook calls", || hook.bodies().len() >= 4);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.bodies().len(), 4);
    wait_until("the failures logged", || {
        d.line_with("alert webhook failed").is_some()
            && d.line_with("alert command failed").is_some()
    });
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn system_conditions_alert_through_the_same_actions() {
    // Any disk is below 99.99% free: `disk_low` fires at the first check, once per root.
    let hook = Hook::start(200);
    let s = site(&format!(
        "[alerts]\nwebhook = {:?}\n[[alerts.rule]]\nname = \"disk\"\nsystem = \"disk_low\"\n\
         severity = \"error\"\n",
        hook.url()
    ));
    let config = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("min_free_ratio = 0.0", "min_free_ratio = 0.9999");
    std::fs::write(&s.config, config).unwrap();
    let d = Daemon::start(&s.config);
    wait_until("the disk alert", || !hook.bodies().is_empty());
    let alert = &hook.bodies()[0];
    assert_eq!(alert["kind"], "system");
    assert_eq!(alert["severity"], "error");
    assert_eq!(
        alert["subject"],
        format!("disk_low {}", s.root.display()).as_str()
    );
    assert!(alert["message"].as_str().unwrap().contains("below 99.99%"));
    d.wait_idle();
    assert_eq!(hook.bodies().len(), 1, "once per root");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn consent_alerts_wait_for_a_sidecar_that_comes_after_its_recording() {
    let dir_probe = tempfile::tempdir().unwrap();
    let s = site(&format!(
        "[alerts]\ncommand = [\"sh\", \"-c\", \"cat > $(mktemp {}/alert.XXXXXX)\"]\n\
         sidecar_wait_s = 4.0\n\
         [[alerts.rule]]\nname = \"no-consent\"\nconsent = [\"missing\"]\n\
         [consent]\ndefault = \"all_party\"\n",
        dir_probe.path().display(),
    ));
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let call = standard_call();
    let noise = white(call.samples.len(), 5);
    let audio = call.with_noise(&noise, 20.0);
    let stored = |name: &str| {
        let needle = format!("{name}.wav");
        d.wait_for(
            |l| {
                l.iter()
                    .any(|x| x.contains("stored") && x.contains(&needle))
            },
            &needle,
        );
    };
    let alerted = |name: &str| {
        command_log(dir_probe.path())
            .iter()
            .filter(|a| {
                a["recording"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("{name}.wav")))
            })
            .count()
    };

    // The PBX writes the sidecar a moment after the audio: its consent is judged, no alert.
    write_wav(&s.root.join("late.wav"), &audio, 1);
    stored("late");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(
        s.root.join("late.json"),
        r#"{"consent": {"state": "granted"}}"#,
    )
    .unwrap();
    // No sidecar ever: the alert comes once the wait is over, not before.
    write_wav(&s.root.join("bare.wav"), &audio, 1);
    stored("bare");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(alerted("bare"), 0, "{:?}", command_log(dir_probe.path()));
    wait_until("bare's alert", || alerted("bare") == 1);
    // Stored just before the daemon stops: judged at the stop, not lost.
    write_wav(&s.root.join("last.wav"), &audio, 1);
    stored("last");
    assert_eq!(d.stop(), Some(0));
    wait_until("last's alert", || alerted("last") == 1);

    let alerts = command_log(dir_probe.path());
    assert_eq!(alerted("late"), 0, "{alerts:?}");
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["rule"], "no-consent");
        assert!(a["message"].as_str().unwrap().contains("consent missing"));
    }
}

#[test]
fn a_root_replaced_under_the_daemon_is_watched_again_and_a_missing_one_is_unhealthy() {
    let s = site("");
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let addr = metrics_addr(&d);
    assert_eq!(get(&addr, "/healthz").0, 200);

    // Moved away (a remount, a tidy-up script): /healthz says so while it is gone.
    std::fs::rename(&s.root, s.root.with_extension("old")).unwrap();
    wait_until("/healthz to report the root", || {
        let (code, body) = get(&addr, "/healthz");
        code == 503 && body.contains("1 of the recordings roots missing")
    });
    // Made again: the new directory is watched, and a recording in it is stored at once, not at
    // the next rescan (10 minutes away).
    std::fs::create_dir(&s.root).unwrap();
    wait_until("the watch on the new root", || {
        d.line_with("watching the roots again").is_some()
    });
    let call = standard_call();
    write_wav(&s.root.join("after.wav"), &call.samples, 1);
    d.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("stored") && x.contains("after.wav"))
        },
        "the recording in the new root",
    );
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn rescans_count_only_what_the_watch_did_not_report() {
    let s = site_with("rescan_interval_s = 0.5", "");
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let addr = metrics_addr(&d);
    // Reported by the watch, and stored while rescans run twice a second.
    let call = standard_call();
    for i in 0..3 {
        write_wav(&s.root.join(format!("new-{i}.wav")), &call.samples, 1);
    }
    for i in 0..3 {
        let name = format!("new-{i}.wav");
        d.wait_for(
            |l| l.iter().any(|x| x.contains("stored") && x.contains(&name)),
            &name,
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (_, metrics) = get(&addr, "/metrics");
    assert!(
        metrics.contains("\ncallwarden_rescan_found_recordings_total 0\n"),
        "{metrics}"
    );
    assert!(sample(&metrics, "callwarden_last_rescan_timestamp_seconds") > 1.7e9);
    assert!(d.line_with("the rescan found").is_none());
    assert_eq!(d.stop(), Some(0));
}
