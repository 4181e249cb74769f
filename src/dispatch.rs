//! Sending alerts: the command action (the alert as JSON on the standard input of a program run
//! without a shell) and the webhook action (an HTTP POST, through the ureq adapter), on a few
//! threads of their own.
//!
//! A failing, slow or missing action never holds the daemon up: alerts wait in a bounded queue
//! (one that is full drops the alert and says so), each command is killed at its timeout, and a
//! POST is retried a bounded number of times. Recording data reaches a command only as JSON on
//! its standard input, never in its arguments or through a shell.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::alerts::Alert;
use crate::config::AlertsConfig;

/// Alerts waiting for an action; more are dropped (and logged).
const QUEUE: usize = 1024;

/// An alert with the configuration in force when it was raised.
type Job = (Alert, Arc<AlertsConfig>);

pub struct Dispatcher {
    queue: Option<SyncSender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts `concurrency` sender threads.
    pub fn start(concurrency: usize) -> Dispatcher {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..concurrency.max(1))
            .filter_map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("callwarden-alerts-{i}"))
                    .spawn(move || sender(rx))
                    .ok()
            })
            .collect();
        Dispatcher {
            queue: Some(tx),
            threads,
        }
    }

    /// Logs the alert and queues its actions under `config` (the configuration in force).
    pub fn send(&self, alert: Alert, config: &Arc<AlertsConfig>) {
        let json = serde_json::to_string(&alert).unwrap_or_default();
        tracing::warn!(rule = %alert.rule, severity = %alert.severity, alert = %json, "{}", alert.message);
        if config.command.is_empty() && config.webhook.is_empty() {
            return;
        }
        if let Some(q) = &self.queue {
            match q.try_send((alert, config.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full((a, _))) => tracing::error!(
                    rule = %a.rule,
                    "alert actions are {QUEUE} behind: this alert is logged only"
                ),
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Lets queued alerts go out (up to `timeout`), then stops the threads.
    pub fn stop(mut self, timeout: Duration) {
        self.queue = None;
        let deadline = Instant::now() + timeout;
        for t in self.threads.drain(..) {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn sender(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((alert, config)) = next else { return };
        let json = serde_json::to_vec(&alert).unwrap_or_default();
        if !config.command.is_empty() {
            if let Err(e) = run_command(&config.command, &line(&json), config.command_timeout_s) {
                tracing::error!(rule = %alert.rule, command = ?config.command, error = %e, "alert command failed");
            }
        }
        if !config.webhook.is_empty() {
            if let Err(e) = post(
                &config.webhook,
                &json,
                config.webhook_timeout_s,
                config.webhook_retries,
            ) {
                tracing::error!(rule = %alert.rule, url = %config.webhook, error = %e, "alert webhook failed");
            }
        }
    }
}

/// The alert as a command reads it: one line, newline-terminated (a shell `while read` loop
/// drops a last line without one).
fn line(json: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(json.len() + 1);
    line.extend_from_slice(json);
    line.push(b'\n');
    line
}

/// Runs `argv` with `input` on its standard input; an error unless it exits 0 in time.
pub fn run_command(argv: &[String], input: &[u8], timeout_s: f64) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is its own business.
        let _ = stdin.write_all(input);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{program} exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} killed after {timeout_s} s"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait for {program}: {e}")),
        }
    }
}

/// POSTs `body` as JSON to `url`, retrying a failure `retries` times (0.5 s, 1 s, 2 s, … apart).
pub fn post(url: &str, body: &[u8], timeout_s: f64, retries: u32) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs_f64(timeout_s)))
        .build()
        .into();
    let mut pause = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(pause);
            pause *= 2;
        }
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("{} attempts: {last}", retries + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_get_the_alert_on_stdin_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let script = format!("cat > {}", out.display());
        let argv = vec!["sh".to_string(), "-c".to_string(), script];
        run_command(&argv, b"{\"rule\":\"x\"}", 5.0).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"rule\":\"x\"}");
        let slow = vec!["sleep".to_string(), "5".to_string()];
        let t = Instant::now();
        assert!(run_command(&slow, b"", 0.2).unwrap_err().contains("killed"));
        assert!(t.elapsed() < Duration::from_secs(2));
        let missing = vec!["/nonexistent/callwarden-alert".to_string()];
        assert!(run_command(&missing, b"", 1.0)
            .unwrap_err()
            .starts_with("start"));
        let failing = vec!["false".to_string()];
        assert!(run_command(&failing, b"", 1.0)
            .unwrap_err()
            .contains("exited"));
    }

    #[test]
    fn a_shell_read_loop_gets_the_whole_alert() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lines");
        let script = format!(
            "while IFS= read -r l; do printf '%s|' \"$l\" >> {}; done",
            out.display()
        );
        let argv = vec!["sh".to_string(), "-c".to_string(), script];
        run_command(&argv, &line(b"{\"rule\":\"x\"}"), 5.0).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"rule\":\"x\"}|");
    }
}
