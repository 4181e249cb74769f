//! Calls, not files (issue 21): call records from Asterisk's `Master.csv` and FreeSWITCH's JSON
//! CDRs, loaded with `calls import`, matched with the recordings `ingest` stored, in either
//! order; coverage, the missing and short calls, the orphans, the lawful-recording rate; bad
//! rows named and skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{age, ok, standard_call, text, write_wav, Rng};

/// 2026-12-01T09:00:00Z.
const BASE_S: i64 = 1_796_115_600;
/// Asked after every call's grace time.
const LATER: &str = "2026-12-05T00:00:00Z";

struct Site {
    _dir: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    config: PathBuf,
}

fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.0\n[store]\npath = {:?}\n\
             [control]\nsocket = \"\"\n{extra}",
            base.join("store")
        ),
    )
    .unwrap();
    Site {
        _dir: dir,
        base,
        root,
        config,
    }
}

fn cw(s: &Site, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env("CALLWARDEN_CONFIG", "")
        .output()
        .unwrap()
}

fn wall(s: i64) -> String {
    callwarden::policy::fmt_ms(s * 1000)[..19].replace('T', " ")
}

/// One call of the generated day: its uniqueid, start, answer and billable seconds.
struct Call {
    id: String,
    start_s: i64,
    answer_s: i64,
    billsec: i64,
}

fn calls(n: usize) -> Vec<Call> {
    calls_from(n, BASE_S)
}

fn calls_from(n: usize, base_s: i64) -> Vec<Call> {
    let mut rng = Rng::new(21);
    (0..n)
        .map(|i| {
            let start_s = base_s + i as i64 * 90;
            let ring = 2 + (rng.uniform() * 6.0) as i64;
            let billsec = 8 + (rng.uniform() * 30.0) as i64;
            Call {
                id: format!("{BASE_S}.{i}"),
                start_s,
                answer_s: start_s + ring,
                billsec,
            }
        })
        .collect()
}

/// The last application of call `i` and its arguments: one call in four went through the
/// `sales` queue.
fn last_app(i: usize) -> (&'static str, &'static str) {
    if i.is_multiple_of(4) {
        ("Queue", "sales,tT,,,300")
    } else {
        ("Dial", "PJSIP/2000,30,tT")
    }
}

/// Asterisk's `Master.csv` exactly as cdr_csv writes it: text fields quoted, numbers bare.
fn master_csv(calls: &[Call]) -> String {
    let mut out = String::new();
    for (i, c) in calls.iter().enumerate() {
        let end = c.answer_s + c.billsec;
        let (app, data) = last_app(i);
        writeln!(
            out,
            "\"\",\"10{:02}\",\"2000\",\"from-internal\",\"\"\"Agent {i}\"\" <10{:02}>\",\
             \"PJSIP/10{:02}-0000{i:04x}\",\"PJSIP/2000-0000{i:04x}\",\"{app}\",\"{data}\",\
             \"{}\",\"{}\",\"{}\",{},{},\"ANSWERED\",\"DOCUMENTATION\",\"{}\",\"\"",
            i % 10,
            i % 10,
            i % 10,
            wall(c.start_s),
            wall(c.answer_s),
            wall(end),
            end - c.start_s,
            c.billsec,
            c.id
        )
        .unwrap();
    }
    out
}

/// What the site's recorder did: most calls whole, some cut in half, some not at all, and a
/// few recordings of no call. Recordings name their call by the sidecar's call id or by the
/// uniqueid in the file name (as MixMonitor's `${UNIQUEID}` does), half each.
struct Plan {
    missing: Vec<String>,
    short: Vec<String>,
    orphans: usize,
}

fn record(root: &Path, calls: &[Call]) -> Plan {
    let speech = standard_call().samples;
    let mut order: Vec<usize> = (0..calls.len()).collect();
    // Mixed arrival order, fixed.
    let mut rng = Rng::new(7);
    for i in (1..order.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize % (i + 1);
        order.swap(i, j);
    }
    let mut plan = Plan {
        missing: Vec::new(),
        short: Vec::new(),
        orphans: 0,
    };
    for &i in &order {
        let c = &calls[i];
        if i % 20 == 7 {
            plan.missing.push(c.id.clone());
            continue;
        }
        let mut seconds = c.billsec as usize;
        if i % 40 == 13 {
            seconds /= 2;
            plan.short.push(c.id.clone());
        }
        let samples: Vec<f32> = speech
            .iter()
            .copied()
            .cycle()
            .take(seconds * 8000)
            .collect();
        let (name, sidecar) = if i % 2 == 0 {
            (
                format!("call-{i:03}.wav"),
                format!(
                    r#"{{"call_id": "{}", "start_time": "{}", "agent": "a{}"}}"#,
                    c.id,
                    callwarden::policy::fmt_ms(c.answer_s * 1000),
                    i % 10
                ),
            )
        } else {
            (
                format!("out-10{:02}-{}.wav", i % 10, c.id),
                format!(
                    r#"{{"start_time": "{}", "agent": "a{}"}}"#,
                    callwarden::policy::fmt_ms(c.answer_s * 1000),
                    i % 10
                ),
            )
        };
        let path = root.join(&name);
        write_wav(&path, &samples, 1);
        std::fs::write(path.with_extension("json"), sidecar).unwrap();
    }
    // Recordings of no call: the next day, when nothing was called.
    for k in 0..5 {
        let path = root.join(format!("stray-{k}.wav"));
        write_wav(&path, &speech[..8000 * 10], 1);
        std::fs::write(
            path.with_extension("json"),
            format!(
                r#"{{"start_time": "{}"}}"#,
                callwarden::policy::fmt_ms((BASE_S + 86_400 + k * 600) * 1000)
            ),
        )
        .unwrap();
        plan.orphans += 1;
    }
    for e in std::fs::read_dir(root).unwrap() {
        age(&e.unwrap().path(), 600);
    }
    plan
}

fn coverage(s: &Site) -> serde_json::Value {
    let out = ok(cw(
        s,
        &[
            "report", "coverage", "--format", "json", "--now", LATER, "--since", "30d",
        ],
    ));
    let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report"], "coverage");
    // When it was made is the only thing that may differ between two asks.
    v.as_object_mut().unwrap().remove("generated_at");
    v
}

fn check(report: &serde_json::Value, plan: &Plan) {
    let total = &report["total"];
    assert_eq!(total["calls"], 200, "{total}");
    assert_eq!(total["must_record"], 200);
    assert_eq!(total["recorded"], 190);
    assert_eq!(total["coverage"], 0.95);
    assert_eq!(total["missing"], 10);
    assert_eq!(total["short"], 5);
    assert_eq!(report["orphans"], plan.orphans);
    let ids = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["call"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut missing = plan.missing.clone();
    missing.sort();
    let mut short = plan.short.clone();
    short.sort();
    assert_eq!(ids("missing"), missing);
    assert_eq!(ids("short"), short);
}

#[test]
fn coverage_from_master_csv_whichever_comes_first() {
    let all = calls(200);
    // CDRs first, then the recordings.
    let s = site("");
    let csv = s.base.join("Master.csv");
    std::fs::write(&csv, master_csv(&all)).unwrap();
    let out = ok(cw(&s, &["calls", "import", csv.to_str().unwrap()]));
    assert!(
        out.contains("200 new, 0 changed, 0 already loaded, 0 rejected"),
        "{out}"
    );
    let plan = record(&s.root, &all);
    let ingest = cw(&s, &["ingest", s.root.to_str().unwrap()]);
    assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest));
    let first = coverage(&s);
    check(&first, &plan);
    assert_eq!(first["total"]["automatic"], 190);
    assert_eq!(first["total"]["analysed"], 190);

    // Loaded again (a history import run twice): nothing changes.
    let again = ok(cw(&s, &["calls", "import", csv.to_str().unwrap()]));
    assert!(
        again.contains("0 new, 0 changed, 200 already loaded"),
        "{again}"
    );
    assert_eq!(coverage(&s), first);

    // The recordings first, then the CDRs: the same answers.
    let t = site("");
    let plan_t = record(&t.root, &all);
    assert_eq!(
        cw(&t, &["ingest", t.root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let csv_t = t.base.join("Master.csv");
    std::fs::write(&csv_t, master_csv(&all)).unwrap();
    ok(cw(&t, &["calls", "import", csv_t.to_str().unwrap()]));
    let second = coverage(&t);
    check(&second, &plan_t);
    assert_eq!(second["total"], first["total"]);

    // The list and one call.
    let missing = ok(cw(
        &s,
        &[
            "calls", "list", "--state", "missing", "--now", LATER, "--since", "30d", "--json",
        ],
    ));
    assert_eq!(missing.lines().count(), 10, "{missing}");
    let one: serde_json::Value =
        serde_json::from_str(&ok(cw(&s, &["calls", "show", &plan.short[0], "--json"]))).unwrap();
    assert_eq!(one["state"], "short");
    assert_eq!(one["recordings"].as_array().unwrap().len(), 1);
    let shown = ok(cw(&s, &["calls", "show", &plan.short[0]]));
    assert!(shown.contains("state      short"), "{shown}");
    // kpi gains the calls' columns.
    let kpi = ok(cw(
        &s,
        &[
            "kpi", "--json", "--by", "day", "--now", LATER, "--since", "30d",
        ],
    ));
    let total: serde_json::Value = serde_json::from_str(kpi.lines().last().unwrap()).unwrap();
    assert_eq!(total["group"], "total");
    assert_eq!(total["calls"]["coverage"], 0.95, "{kpi}");
    assert_eq!(total["calls"]["missing"], 10);
    let day: serde_json::Value = serde_json::from_str(kpi.lines().next().unwrap()).unwrap();
    assert_eq!(day["group"], "2026-12-01");
    assert_eq!(day["calls"]["must_record"], 200);
    let kpi_table = ok(cw(
        &s,
        &["kpi", "--by", "day", "--now", LATER, "--since", "30d"],
    ));
    assert!(
        kpi_table.contains("cdr calls to record") && kpi_table.contains("95.0%"),
        "{kpi_table}"
    );
    let table = ok(cw(
        &s,
        &["report", "coverage", "--now", LATER, "--since", "30d"],
    ));
    assert!(table.contains("95.0%"), "{table}");
    let html = ok(cw(
        &s,
        &[
            "report", "coverage", "--format", "html", "--now", LATER, "--since", "30d",
        ],
    ));
    assert!(html.contains("<svg") && html.contains("Calls recorded (%), by day"));
}

#[test]
fn bad_rows_are_named_and_the_rest_loaded() {
    let s = site("");
    let all = calls(3);
    let mut csv = master_csv(&all);
    csv.push_str("\"only\",\"three\",\"columns\"\n");
    csv.push_str(&master_csv(&calls(4)[3..]).replace("2026-12-01", "2026-13-01"));
    csv.push_str(&"x".repeat(10 << 20));
    csv.push('\n');
    let mut bytes = csv.into_bytes();
    bytes.extend_from_slice(b"\"\xff\xfe\",\"1\"\n");
    bytes.extend_from_slice(master_csv(&calls(6)[5..]).as_bytes());
    let path = s.base.join("Master.csv");
    std::fs::write(&path, bytes).unwrap();
    let out = cw(&s, &["calls", "import", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display().to_string();
    assert!(err.contains(&format!("{p}:4: 3 columns")), "{err}");
    assert!(err.contains(&format!("{p}:5: start: bad time")), "{err}");
    assert!(
        err.contains(&format!("{p}:6: a line of more than 65536 bytes")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{p}:7: field 1 is not UTF-8")),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("4 new, 0 changed, 0 already loaded, 4 rejected"),
        "{}",
        text(&out)
    );
    // The import and its rejects are in the audit log.
    let audit = ok(cw(&s, &["audit", "export"]));
    assert!(
        audit.contains("\"calls_import\"") && audit.contains("\"rejected\":4"),
        "{audit}"
    );
}

#[test]
fn freeswitch_json_cdrs_match_stereo_recordings_by_uuid() {
    let s = site("");
    let cdrs = s.base.join("json_cdr");
    std::fs::create_dir_all(&cdrs).unwrap();
    let speech = standard_call().samples;
    for i in 0..3 {
        let uuid = format!("6f1c2c1e-0000-4000-8000-00000000000{i}");
        let start = BASE_S + i * 300;
        std::fs::write(
            cdrs.join(format!("{uuid}.cdr.json")).with_extension("json"),
            format!(
                r#"{{"variables":{{"uuid":"{uuid}","start_epoch":"{start}","answer_epoch":"{}",
                "end_epoch":"{}","billsec":"20","duration":"22","hangup_cause":"NORMAL_CLEARING",
                "caller_id_number":"1001","destination_number":"2000"}}}}"#,
                start + 2,
                start + 22
            ),
        )
        .unwrap();
        if i < 2 {
            // FreeSWITCH records stereo, named by the call's uuid.
            let stereo: Vec<f32> = speech[..8000 * 20]
                .iter()
                .flat_map(|&v| [v, v * 0.5])
                .collect();
            let path = s.root.join(format!("{uuid}.wav"));
            write_wav(&path, &stereo, 2);
        }
    }
    for e in std::fs::read_dir(&s.root).unwrap() {
        age(&e.unwrap().path(), 600);
    }
    ok(cw(&s, &["calls", "import", cdrs.to_str().unwrap()]));
    assert_eq!(
        cw(&s, &["ingest", s.root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let r = coverage(&s);
    assert_eq!(r["total"]["recorded"], 2, "{r}");
    assert_eq!(r["total"]["missing"], 1);
    assert_eq!(r["orphans"], 0);
    let listed = ok(cw(
        &s,
        &["calls", "list", "--now", LATER, "--since", "30d", "--json"],
    ));
    let how: Vec<String> = listed
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["recordings"][0]["matched_by"].as_str().map(String::from)
        })
        .collect();
    assert_eq!(how, ["file_name", "file_name"]);
}

#[test]
fn the_lawful_rate_counts_calls_without_the_consent_their_law_needs() {
    let s = site("[consent]\ndefault = \"one_party\"\n[[consent.rule]]\nqueue = [\"eu\"]\nrequires = \"all_party\"\n");
    let all = calls(4);
    let csv = s.base.join("Master.csv");
    std::fs::write(&csv, master_csv(&all)).unwrap();
    ok(cw(&s, &["calls", "import", csv.to_str().unwrap()]));
    let speech = standard_call().samples;
    // eu with consent, eu without, eu denied, us without (one-party: lawful).
    let sidecars = [
        r#""queue": "eu", "consent": {"state": "granted"}"#,
        r#""queue": "eu""#,
        r#""queue": "eu", "consent": {"state": "denied"}"#,
        r#""queue": "us""#,
    ];
    for (c, extra) in all.iter().zip(sidecars) {
        let path = s.root.join(format!("r-{}.wav", c.id));
        write_wav(&path, &speech[..(c.billsec as usize) * 8000], 1);
        std::fs::write(
            path.with_extension("json"),
            format!(
                r#"{{"start_time": "{}", {extra}}}"#,
                callwarden::policy::fmt_ms(c.answer_s * 1000)
            ),
        )
        .unwrap();
        age(&path, 600);
        age(&path.with_extension("json"), 600);
    }
    assert_eq!(
        cw(&s, &["ingest", s.root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let r = coverage(&s);
    assert_eq!(r["total"]["recorded"], 4, "{r}");
    assert_eq!(r["total"]["lawful"], 2);
    assert_eq!(r["total"]["lawful_share"], 0.5);
    let mut unlawful: Vec<&str> = r["unlawful"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call"].as_str().unwrap())
        .collect();
    unlawful.sort();
    assert_eq!(unlawful, [all[1].id.as_str(), all[2].id.as_str()]);
}

/// The calls the daemon knows, asked through its control socket.
fn known_calls(s: &Site) -> usize {
    ok(cw(
        s,
        &[
            "calls", "list", "--json", "--since", "30d", "--now", LATER, "--limit", "100000",
        ],
    ))
    .lines()
    .count()
}

fn wait_for_calls(s: &Site, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = known_calls(s);
    while seen != n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        seen = known_calls(s);
    }
    assert_eq!(seen, n, "calls the daemon read");
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn the_daemon_follows_master_csv_through_rotation_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    let cdr = base.join("cdr-csv");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&cdr).unwrap();
    let master = cdr.join("Master.csv");
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.5\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n[calls]\npoll_s = 0.2\n\
             [[calls.source]]\npath = {master:?}\nformat = \"asterisk_csv\"\n",
            base.join("store"),
            base.join("control.sock"),
        ),
    )
    .unwrap();
    let s = Site {
        _dir: dir,
        base: base.clone(),
        root,
        config: config.clone(),
    };
    let all = calls(200);
    let lines: Vec<String> = master_csv(&all).lines().map(|l| format!("{l}\n")).collect();
    // 100 lines, and half of the 101st: Asterisk is writing it.
    append(&master, &lines[..100].concat());
    let (half, rest) = lines[100].split_at(lines[100].len() / 2);
    append(&master, half);
    let mut d = crate::daemon::Daemon::start(&config);
    wait_for_calls(&s, 100);

    // The line is finished, more come; then logrotate renames the file, the PBX writes a few
    // more lines to the old one before it reopens, and a new file starts.
    append(&master, &format!("{rest}{}", lines[101..120].concat()));
    let rotated = cdr.join("Master.csv.1");
    std::fs::rename(&master, &rotated).unwrap();
    append(&rotated, &lines[120..130].concat());
    append(&master, &lines[130..160].concat());
    wait_for_calls(&s, 160);

    // Killed, and lines keep coming while it is down.
    crate::daemon::kill9(&mut d);
    append(&master, &lines[160..200].concat());
    let d = crate::daemon::Daemon::start(&config);
    wait_for_calls(&s, 200);
    assert_eq!(d.stop(), Some(0));

    // Every row read once: the audit's imports add up to 200 new, nothing read twice.
    let audit = ok(cw(&s, &["audit", "export"]));
    let (mut new, mut same, mut rejected) = (0, 0, 0);
    for line in audit.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["action"] == "calls_import" {
            new += e["details"]["new"].as_u64().unwrap();
            same += e["details"]["same"].as_u64().unwrap();
            rejected += e["details"]["rejected"].as_u64().unwrap();
        }
    }
    assert_eq!((new, same, rejected), (200, 0, 0), "{audit}");
}

#[test]
fn missing_and_short_calls_and_a_low_coverage_raise_alerts_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let got = base.join("alerts.jsonl");
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.0\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
             [alerts]\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n\
             [[alerts.rule]]\nname = \"missing\"\ncalls = [\"missing_recording\"]\n\
             [[alerts.rule]]\nname = \"short\"\ncalls = [\"recording_short\"]\n\
             [[alerts.rule]]\nname = \"floor\"\ncoverage_below = 0.99\n",
            base.join("store"),
            base.join("control.sock"),
            got.display()
        ),
    )
    .unwrap();
    let s = Site {
        _dir: dir,
        base: base.clone(),
        root: root.clone(),
        config: config.clone(),
    };
    // Today's calls, all ended more than the grace time ago.
    let now_s = callwarden::ingest::now_ms() / 1000;
    let all = calls_from(200, now_s - 6 * 3600);
    let csv = base.join("Master.csv");
    std::fs::write(&csv, master_csv(&all)).unwrap();
    ok(cw(&s, &["calls", "import", csv.to_str().unwrap()]));
    let plan = record(&root, &all);
    assert_eq!(
        cw(&s, &["ingest", root.to_str().unwrap()]).status.code(),
        Some(0)
    );

    let d = crate::daemon::Daemon::start(&config);
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&got)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read().len() < 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The last day's calls in the metrics.
    let addr = d
        .line_with("metrics endpoint listening")
        .and_then(|l| {
            l.split("addr=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("the endpoint is announced");
    let scrape = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut t = String::new();
        c.read_to_string(&mut t).unwrap();
        t
    };
    for line in [
        "callwarden_calls_last_day{state=\"must_record\"} 200",
        "callwarden_calls_last_day{state=\"missing\"} 10",
        "callwarden_calls_last_day{state=\"short\"} 5",
        "callwarden_calls_coverage_ratio 0.95",
    ] {
        assert!(scrape.lines().any(|l| l == line), "{line} not in {scrape}");
    }
    assert_eq!(d.stop(), Some(0));
    let alerts = read();
    let subjects = |rule: &str| -> Vec<String> {
        let mut v: Vec<String> = alerts
            .iter()
            .filter(|a| a["rule"] == rule)
            .map(|a| a["subject"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let (mut missing, mut short) = (plan.missing.clone(), plan.short.clone());
    missing.sort();
    short.sort();
    assert_eq!(subjects("missing"), missing, "{alerts:#?}");
    assert_eq!(subjects("short"), short);
    assert_eq!(subjects("floor"), ["coverage"]);
    assert!(alerts.iter().any(|a| a["message"]
        .as_str()
        .unwrap()
        .contains("95.0% of the last 24 hours")));
    assert!(alerts.iter().all(|a| a["kind"] == "call"));
}

#[test]
fn the_same_calls_in_asterisks_postgresql_table_give_the_same_answers() {
    let Some(pg) = crate::pg::Pg::start() else {
        return;
    };
    let mut db = pg.client();
    // The standard cdr table of cdr_pgsql (with linkedid).
    db.batch_execute(
        "CREATE TABLE cdr (calldate timestamp NOT NULL DEFAULT now(), \
         clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '', \
         dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '', \
         channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '', \
         lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '', \
         duration bigint NOT NULL DEFAULT 0, billsec bigint NOT NULL DEFAULT 0, \
         disposition varchar(45) NOT NULL DEFAULT '', amaflags bigint NOT NULL DEFAULT 0, \
         accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(150) NOT NULL DEFAULT '', \
         linkedid varchar(150) NOT NULL DEFAULT '', userfield varchar(255) NOT NULL DEFAULT '')",
    )
    .unwrap();
    let all = calls(200);
    let insert = |db: &mut postgres::Client, c: &Call, i: usize| {
        let end = c.answer_s + c.billsec;
        db.execute(
            "INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, \
             lastdata, duration, billsec, disposition, uniqueid, linkedid) VALUES \
             ($1::text::timestamp, $2, $3, '2000', 'from-internal', $4, 'PJSIP/2000', $8, $9, \
             $5, $6, 'ANSWERED', $7, '')",
            &[
                &wall(c.start_s),
                &format!("\"Agent {i}\" <10{:02}>", i % 10),
                &format!("10{:02}", i % 10),
                &format!("PJSIP/10{:02}-{i}", i % 10),
                &(end - c.start_s),
                &c.billsec,
                &c.id,
                &last_app(i).0,
                &last_app(i).1,
            ],
        )
        .unwrap();
    };
    // Every call but one: a long call's row comes last, dated (75 min) before the last ones.
    for (i, c) in all.iter().enumerate().filter(|(i, _)| *i != 150) {
        insert(&mut db, c, i);
    }

    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.0\n[store]\npath = {:?}\n\
             [control]\nsocket = {:?}\n[calls]\npoll_s = 0.2\n\
             [[calls.source]]\nformat = \"asterisk_pgsql\"\nurl = {:?}\n",
            base.join("store"),
            base.join("control.sock"),
            pg.url(),
        ),
    )
    .unwrap();
    let s = Site {
        _dir: dir,
        base,
        root: root.clone(),
        config: config.clone(),
    };
    let plan = record(&root, &all);
    assert_eq!(
        cw(&s, &["ingest", root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let d = crate::daemon::Daemon::start(&config);
    wait_for_calls(&s, 199);
    insert(&mut db, &all[150], 150);
    wait_for_calls(&s, 200);
    let from_db = coverage(&s);
    check(&from_db, &plan);
    assert_eq!(d.stop(), Some(0));

    // The same day from Master.csv gives the same totals.
    let t = site("");
    let plan_t = record(&t.root, &all);
    assert_eq!(
        cw(&t, &["ingest", t.root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let csv = t.base.join("Master.csv");
    std::fs::write(&csv, master_csv(&all)).unwrap();
    ok(cw(&t, &["calls", "import", csv.to_str().unwrap()]));
    let from_csv = coverage(&t);
    check(&from_csv, &plan_t);
    assert_eq!(from_db["total"], from_csv["total"]);
    assert_eq!(from_db["by_day"], from_csv["by_day"]);
    assert_eq!(from_db["missing"], from_csv["missing"]);
    // The queue, from lastdata in both: each source's missing calls counted in their queue.
    assert_eq!(from_db["by_queue"], from_csv["by_queue"]);
    let sales = from_db["by_queue"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["group"] == "sales")
        .unwrap_or_else(|| panic!("no sales queue: {}", from_db["by_queue"]));
    assert_eq!(sales["calls"], 50, "{sales}");
    let listed = ok(cw(
        &t,
        &[
            "calls", "list", "--queue", "sales", "--json", "--since", "30d", "--now", LATER,
            "--limit", "1000",
        ],
    ));
    assert_eq!(listed.lines().count(), 50);
    assert!(
        listed.lines().all(|l| l.contains(r#""queue":"sales""#)),
        "{listed}"
    );
}

#[test]
fn a_call_outlives_its_purged_recordings_until_its_own_retention() {
    let retention = |days: u32| {
        format!(
            "[calls]\nretention_days = {days}\n[[retention.rule]]\nname = \"default\"\nkeep = \"1d\"\n"
        )
    };
    let s = site(&retention(30));
    let all = calls(4);
    let csv = s.base.join("Master.csv");
    std::fs::write(&csv, master_csv(&all)).unwrap();
    ok(cw(&s, &["calls", "import", csv.to_str().unwrap()]));
    let speech = standard_call().samples;
    for c in &all {
        let path = s.root.join(format!("r-{}.wav", c.id));
        write_wav(&path, &speech[..(c.billsec as usize) * 8000], 1);
        std::fs::write(
            path.with_extension("json"),
            format!(
                r#"{{"start_time": "{}"}}"#,
                callwarden::policy::fmt_ms(c.answer_s * 1000)
            ),
        )
        .unwrap();
        age(&path, 600);
        age(&path.with_extension("json"), 600);
    }
    assert_eq!(
        cw(&s, &["ingest", s.root.to_str().unwrap()]).status.code(),
        Some(0)
    );
    // The recordings are five days old: a one-day retention purges them; the calls stay.
    let purge = cw(&s, &["purge"]);
    assert_eq!(purge.status.code(), Some(0), "{}", text(&purge));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(cw(&s, &["calls", "show", &all[0].id, "--json"]))).unwrap();
    assert_eq!(shown["state"], "recorded", "{shown}");
    assert_eq!(shown["recordings"][0]["state"], "purged");
    assert!(!s.root.join(format!("r-{}.wav", all[0].id)).exists());

    // Three days for call records: the run drops them, audited.
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config)
            .unwrap()
            .replace(&retention(30), &retention(3)),
    )
    .unwrap();
    ok(cw(&s, &["purge"]));
    let gone = cw(&s, &["calls", "show", &all[0].id]);
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone));
    let audit = ok(cw(&s, &["audit", "export"]));
    assert!(
        audit.contains("\"calls_drop\"") && audit.contains("\"dropped\":4"),
        "{audit}"
    );
}

#[test]
fn the_daemon_follows_a_freeswitch_json_cdr_folder() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let root = base.join("root");
    let json = base.join("json_cdr");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&json).unwrap();
    let config = base.join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\n[store]\npath = {:?}\n[control]\nsocket = {:?}\n\
             [calls]\npoll_s = 0.2\n[[calls.source]]\npath = {json:?}\nformat = \"freeswitch_json\"\n",
            base.join("store"),
            base.join("control.sock"),
        ),
    )
    .unwrap();
    let s = Site {
        _dir: dir,
        base,
        root,
        config: config.clone(),
    };
    let write = |i: i64| {
        let uuid = format!("0c3b1a2e-0000-4000-8000-{i:012}");
        let start = BASE_S + i * 120;
        let path = json.join(format!("{uuid}.cdr.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"variables":{{"uuid":"{uuid}","start_epoch":"{start}","answer_epoch":"{}",
                "end_epoch":"{}","billsec":"30","duration":"32","hangup_cause":"NORMAL_CLEARING"}}}}"#,
                start + 2,
                start + 32
            ),
        )
        .unwrap();
        // Finished a while ago.
        age(&path, 5);
    };
    for i in 0..3 {
        write(i);
    }
    let mut d = crate::daemon::Daemon::start(&config);
    wait_for_calls(&s, 3);
    for i in 3..5 {
        write(i);
    }
    wait_for_calls(&s, 5);
    // After a crash the folder is not read again from its start.
    crate::daemon::kill9(&mut d);
    write(5);
    let d = crate::daemon::Daemon::start(&config);
    wait_for_calls(&s, 6);
    // A file copied in from an archive with its old time kept is read too.
    write(6);
    age(
        &json.join("0c3b1a2e-0000-4000-8000-000000000006.cdr.json"),
        86_400,
    );
    wait_for_calls(&s, 7);
    assert_eq!(d.stop(), Some(0));
    let audit = ok(cw(&s, &["audit", "export"]));
    let (mut new, mut same) = (0, 0);
    for line in audit.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["action"] == "calls_import" {
            new += e["details"]["new"].as_u64().unwrap();
            same += e["details"]["same"].as_u64().unwrap();
        }
    }
    assert_eq!((new, same), (7, 0), "{audit}");
}
