//! The binary as a user runs it: output, JSON Lines, order, exit codes, configuration errors.

use std::process::{Command, Output};

use crate::support::{assets, standard_call, write_wav};

fn callwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .env_remove("CALLWARDEN_LOG")
        .output()
        .expect("run callwarden")
}

/// Analyses the demo call with the configuration `text`.
fn demo_with_config(text: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let demo = assets().join("demo/call-stereo.wav");
    callwarden(&[
        "analyze",
        "--config",
        cfg.to_str().unwrap(),
        demo.to_str().unwrap(),
    ])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn analyses_the_demo_call() {
    let demo = assets().join("demo/call-stereo.wav");
    let o = callwarden(&["analyze", demo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in [
        "score",
        "speech",
        "noise floor",
        "agent",
        "customer",
        "overtalk",
        "flags",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn json_lines_in_input_order_and_exit_2_when_any_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("call.wav");
    write_wav(&call, &standard_call().samples, 1);
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"not audio").unwrap();
    let demo = assets().join("demo/call-stereo.wav");
    let files = [
        call.to_str().unwrap(),
        bad.to_str().unwrap(),
        demo.to_str().unwrap(),
    ];
    let mut args = vec!["analyze", "--json", "--segments", "--jobs", "2"];
    args.extend(files);
    let o = callwarden(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, file) in lines.iter().zip(files) {
        assert_eq!(line["schema"], "callwarden.analysis.v1.5");
        assert_eq!(line["file"], file);
    }
    assert_eq!(lines[1]["error"]["code"], "unsupported_format");
    let ok = &lines[0];
    assert!(ok["quality"]["score"].as_u64().unwrap() <= 100);
    assert!(ok["speech"]["segments"].as_array().unwrap().len() > 3);
    assert_eq!(ok["sha256"].as_str().unwrap().len(), 64);
    assert!(lines[2]["conversation"]["talk_ratio"]["agent"].is_number());
    assert_eq!(lines[2]["channels"].as_array().unwrap().len(), 2);
}

#[test]
fn a_failure_without_json_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("empty.wav");
    std::fs::write(&bad, b"").unwrap();
    let o = callwarden(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(callwarden(&["analyze"]).status.code(), Some(2));
    assert_eq!(callwarden(&["analyse-this"]).status.code(), Some(2));
    let demo = assets().join("demo/call-stereo.wav");
    assert_eq!(
        callwarden(&["analyze", "--jobs", "0", demo.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_bad_config_is_named_with_its_key_and_line() {
    let o = demo_with_config(b"[analysis]\ndead_air_s = 4.0\n\n[thresholds]\nlow_snr = 3.0\n");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("low_snr") && err.contains("line 5"), "{err}");
}

#[test]
fn the_default_config_is_printed_and_loads() {
    let o = callwarden(&["default-config"]);
    assert_eq!(o.status.code(), Some(0));
    let o = demo_with_config(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The codec a call crossed before it was recorded costs its ITU-T G.113 impairment (`Ie`): from
/// `--codec`, or `analysis.codec`, as a PBX or SDP names it. A codec G.113 gives no value is
/// named in a flag and costs nothing; a name that is not one is refused.
#[test]
fn a_declared_codec_costs_its_g113_impairment() {
    let demo = assets().join("demo/call-stereo.wav");
    let demo = demo.to_str().unwrap();
    let json = |o: Output| -> serde_json::Value {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let score = |v: &serde_json::Value| v["quality"]["score"].as_i64().unwrap();
    let codec_points = |v: &serde_json::Value| {
        v["quality"]["penalties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["term"] == "codec")
            .map(|p| p["points"].as_f64().unwrap())
    };
    let codec_flag = |v: &serde_json::Value| {
        v["quality"]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == "codec")
            .map(|f| f["message"].as_str().unwrap().to_string())
    };
    let plain = json(callwarden(&["analyze", "--json", demo]));
    assert_eq!(plain["quality"]["formula"], "score.v2.2");
    assert_eq!((codec_points(&plain), codec_flag(&plain)), (None, None));
    for (given, ie) in [("G729/8000", 10.0), ("gsm", 20.0), ("PCMA", 0.0)] {
        let v = json(callwarden(&["analyze", "--json", "--codec", given, demo]));
        assert_eq!(score(&plain) - score(&v), ie as i64, "{given}");
        assert_eq!(codec_points(&v), (ie > 0.0).then_some(ie), "{given}");
        let message = codec_flag(&v).unwrap();
        assert!(message.contains(&format!("impairment {ie}")), "{message}");
    }
    let opus = json(callwarden(&["analyze", "--json", "--codec", "opus", demo]));
    assert_eq!(score(&opus), score(&plain));
    assert!(codec_flag(&opus).unwrap().contains("not charged"));
    // From the configuration, and a name that is not one.
    let from_config = demo_with_config(b"[analysis]\ncodec = \"g.729a\"\n");
    assert!(stdout(&from_config).contains(&format!("score {} ", score(&plain) - 11)));
    let o = demo_with_config(b"[analysis]\ncodec = \"g729 annex b\"\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("codec"), "{}", stderr(&o));
    let o = callwarden(&["analyze", "--codec", "", demo]);
    assert_eq!(o.status.code(), Some(2));
}
