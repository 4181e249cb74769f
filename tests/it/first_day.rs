//! An operator's first day (issue 20): the command line as a new admin meets it. Options that
//! would be ignored are refused, `analyze DIR` recurses, output is for people (no float noise,
//! shares as percentages in text and fractions in JSON, consent `none`, failed recordings named
//! with their reason), every `--json` is JSON Lines, the ingest progress has a bar, and the
//! daemon's status counts too-short recordings apart.

use std::process::{Command, Output};
use std::time::Duration;

use crate::admin::{cw, site, stdout, text};
use crate::daemon::Daemon;
use crate::support::{age, assets, standard_call, write_wav};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .output()
        .unwrap()
}

/// Every number in a JSON text that has a fraction, as written.
fn fractional_numbers(json: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (mut in_string, mut escaped, mut token) = (false, false, String::new());
    for c in json.chars().chain(std::iter::once(' ')) {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+') {
            token.push(c);
        } else {
            if token.contains('.') {
                found.push(std::mem::take(&mut token));
            }
            token.clear();
            in_string = c == '"';
        }
    }
    found
}

/// Significant digits of a decimal token (`0.00123` has 3, `35.32` has 4).
fn significant_digits(token: &str) -> usize {
    let mantissa = token.split(['e', 'E']).next().unwrap();
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

#[test]
fn options_that_would_do_nothing_are_refused() {
    // reload asks the running daemon: it has no store to open.
    let out = run(&["reload", "--store", "/tmp/somewhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store"));
}

#[test]
fn analyze_searches_a_directory_recursively_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("2026/12/06");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(
        assets().join("formats/speech.flac"),
        dir.path().join("b.flac"),
    )
    .unwrap();
    std::fs::copy(assets().join("formats/speech.mp3"), nested.join("a.mp3")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a recording").unwrap();
    let out = run(&["analyze", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["file"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("2026/12/06/a.mp3"), "{files:?}");
    assert!(files[1].ends_with("b.flac"), "{files:?}");

    // A directory without a recording is bad input, said plainly.
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["analyze", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recordings in it"));
}

#[test]
fn json_carries_no_float_noise() {
    let s = site();
    let mut outputs = vec![
        stdout(&cw(&s, &["list", "--json"], &[])),
        stdout(&cw(&s, &["kpi", "--json", "--by", "agent"], &[])),
        stdout(&cw(&s, &["report", "quality", "--format", "json"], &[])),
        stdout(&cw(&s, &["status", "--json"], &[])),
    ];
    let analysed = run(&[
        "analyze",
        "--json",
        "--segments",
        assets().join("demo/call-stereo.wav").to_str().unwrap(),
    ]);
    outputs.push(String::from_utf8(analysed.stdout).unwrap());
    for out in &outputs {
        let numbers = fractional_numbers(out);
        assert!(!numbers.is_empty());
        let noisy: Vec<&String> = numbers
            .iter()
            .filter(|n| significant_digits(n) > 10)
            .collect();
        assert!(noisy.is_empty(), "float noise {noisy:?} in {out}");
    }
}

#[test]
fn output_for_people_says_what_it_means() {
    let s = site();
    let list = stdout(&cw(&s, &["list"], &[]));
    let line = |name: &str| {
        list.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_string()
    };
    // No consent is `none`, not `-`; a failed recording says so and why.
    assert!(line("very-noisy.wav").contains(" none "), "{list}");
    let broken = line("broken.wav");
    assert!(
        broken.contains(" failed ") && broken.contains("error: decode_failed"),
        "{list}"
    );
    assert!(line("short.wav").contains(" too short "), "{list}");

    // Shares: percent for people, fractions for programs.
    let consent = stdout(&cw(&s, &["report", "consent"], &[]));
    let total = consent
        .lines()
        .find(|l| l.starts_with("total "))
        .unwrap_or_else(|| panic!("{consent}"));
    assert!(total.trim_end().ends_with('%'), "{total}");
    let csv = stdout(&cw(&s, &["report", "consent", "--format", "csv"], &[]));
    assert!(!csv.contains('%'), "{csv}");
    let json = stdout(&cw(&s, &["report", "consent", "--format", "json"], &[]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let share = v["total"]["share_covered"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "{json}");
}

#[test]
fn kpi_json_is_json_lines_with_the_total_last() {
    let s = site();
    let out = stdout(&cw(&s, &["kpi", "--json", "--by", "agent"], &[]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // alice, bob, carol, then the total.
    let groups: Vec<&str> = rows.iter().map(|r| r["group"].as_str().unwrap()).collect();
    assert_eq!(groups, ["alice", "bob", "carol", "total"], "{out}");
    assert!(rows.iter().all(|r| r["by"] == "agent"));
    assert_eq!(rows[3]["recordings"], 7);
}

#[test]
fn report_holds_honours_until() {
    let s = site();
    stdout(&cw(
        &s,
        &[
            "hold",
            "add",
            "1",
            "--case",
            "C-1",
            "--reason",
            "litigation",
        ],
        &[],
    ));
    let all = stdout(&cw(&s, &["report", "holds", "--format", "json"], &[]));
    let before = stdout(&cw(
        &s,
        &[
            "report",
            "holds",
            "--format",
            "json",
            "--until",
            "2020-01-01T00:00:00Z",
        ],
        &[],
    ));
    let count = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t).unwrap()["holds"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((count(&all), count(&before)), (1, 0), "{before}");
}

#[test]
fn ingest_progress_has_a_bar_failures_and_an_eta() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let call = standard_call();
    for i in 0..3 {
        write_wav(&root.join(format!("call-{i}.wav")), &call.samples, 1);
    }
    std::fs::write(root.join("broken.wav"), b"RIFF\x04\x00\x00\x00WAVE").unwrap();
    for e in std::fs::read_dir(&root).unwrap() {
        age(&e.unwrap().path(), 600);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["ingest", "--store"])
        .arg(dir.path().join("store"))
        .arg(&root)
        .env("CALLWARDEN_CONFIG", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rfind(|l| l.contains("files,"))
        .unwrap_or_else(|| panic!("no progress line in {err}"));
    assert!(
        last.contains("[####################] 100%") && last.contains("4/4 files, 1 failed"),
        "{last}"
    );
    assert!(last.ends_with("done"), "{last}");
}

#[test]
fn the_daemon_counts_too_short_recordings_apart() {
    let s = site();
    let d = Daemon::start(&s.config);
    d.wait_idle();
    let short = standard_call().samples[..4000].to_vec();
    write_wav(&s.root.join("blip.wav"), &short, 1);
    age(&s.root.join("blip.wav"), 600);
    let status = || stdout(&cw(&s, &["status"], &[]));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = status();
    while !seen.contains("1 too short") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = status();
    }
    assert!(
        seen.contains("this run: 0 stored, 1 too short, 0 failed"),
        "{seen}"
    );
    assert_eq!(d.stop(), Some(0));
}
