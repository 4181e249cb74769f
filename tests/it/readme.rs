//! The README as a new user follows it: every line of its tour (`<!-- tour -->`) runs and exits
//! 0, and every sample output (`<!-- output of: ARGS -->` before a fenced block) is what
//! `callwarden ARGS` prints today: standard output when it succeeds, standard error when it
//! fails. Both run in a fresh folder with `assets` linked in, as a checkout would have it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced block after each line that starts with `marker`: (the rest of that line, block).
fn blocks_after(text: &str, marker: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(marker) else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "a fenced block after {line}");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let arg = rest.trim().trim_end_matches("-->").trim().to_string();
        found.push((arg, body.join("\n") + "\n"));
    }
    found
}

/// A folder like a checkout's top: `assets` linked to the real one.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"),
        dir.path().join("assets"),
    )
    .unwrap();
    dir
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_callwarden"))
}

#[test]
fn the_sample_outputs_are_what_the_commands_print() {
    let samples = blocks_after(&readme(), "<!-- output of:");
    assert!(samples.len() >= 3, "{samples:?}");
    for (args, expected) in samples {
        let dir = checkout();
        let out = Command::new(binary())
            .args(args.split_whitespace())
            .current_dir(dir.path())
            // Built-in defaults, whatever this machine's environment says.
            .env("CALLWARDEN_CONFIG", "")
            .output()
            .unwrap();
        let printed = if out.status.success() {
            &out.stdout
        } else {
            &out.stderr
        };
        assert_eq!(
            String::from_utf8_lossy(printed),
            expected,
            "README's output of `callwarden {args}` (exit {:?}) is stale",
            out.status.code()
        );
    }
}

#[test]
fn every_line_of_the_tour_runs() {
    let tour = blocks_after(&readme(), "<!-- tour -->");
    assert_eq!(tour.len(), 1, "one tour");
    let lines: Vec<&str> = tour[0].1.lines().filter(|l| l.starts_with("$B ")).collect();
    assert!(lines.len() >= 10, "{lines:?}");
    let has_jq = Command::new("jq").arg("--version").output().is_ok();
    let dir = checkout();
    for line in lines {
        if line.contains("| jq") && !has_jq {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have jq (.ci/run installs it)"
            );
            eprintln!("SKIPPED a README tour line: jq is not installed: {line}");
            continue;
        }
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", line])
            .env("B", binary())
            .env("CALLWARDEN_CONFIG", "")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README tour line failed: {line}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if line.contains("echo $?") {
            assert_eq!(stdout.trim_end().lines().last(), Some("2"), "{line}");
        }
    }
    // What the tour says it leaves behind, and nothing else.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["assets", "my.toml", "tour-store", "tour-store.head"]);
}
