//! The HTTP endpoint for monitoring (the tiny_http adapter): `/metrics` in the Prometheus text
//! format, or OpenMetrics for the client whose `Accept` asks for it, and `/healthz`, on the configured address (loopback by default, off when unset).
//!
//! It serves from its own thread and reads only what the daemon publishes (the metrics and a
//! heartbeat), so a slow scraper never holds the daemon up and a scrape never touches the store.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::metrics::{Format, Metrics};

/// A heartbeat older than this means the daemon's loop is stuck.
const STALE_MS: i64 = 15_000;

/// What `/healthz` judges: the loop's heartbeat, the filesystem watch, the roots, the worker
/// threads alive.
#[derive(Debug, Default)]
pub struct Health {
    pub heartbeat_ms: AtomicI64,
    pub workers: AtomicUsize,
    pub workers_alive: AtomicUsize,
    /// Set when the filesystem watch has ended (its thread gone) and could not be set again.
    pub watch_lost: std::sync::atomic::AtomicBool,
    /// Recordings roots that are missing (deleted, unmounted).
    pub roots_missing: AtomicUsize,
}

impl Health {
    /// `None` when healthy, else why not.
    pub fn problem(&self, now_ms: i64) -> Option<String> {
        let beat = self.heartbeat_ms.load(Ordering::Relaxed);
        let (alive, want) = (
            self.workers_alive.load(Ordering::Relaxed),
            self.workers.load(Ordering::Relaxed),
        );
        let missing = self.roots_missing.load(Ordering::Relaxed);
        if self.watch_lost.load(Ordering::Relaxed) {
            Some("the filesystem watch has stopped (rescans go on)".into())
        } else if missing > 0 {
            Some(format!(
                "{missing} of the recordings roots missing (ingest.roots)"
            ))
        } else if now_ms - beat > STALE_MS {
            Some(format!(
                "the daemon's loop has not run for {} s",
                (now_ms - beat) / 1000
            ))
        } else if alive < want {
            Some(format!("{alive} of {want} worker threads alive"))
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint {addr}: {reason}")]
pub struct EndpointError {
    addr: String,
    reason: String,
}

/// A running endpoint.
pub struct Endpoint {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: String,
}

impl Endpoint {
    /// Binds `addr` (`host:port`) and serves until [`Endpoint::stop`].
    pub fn start(
        addr: &str,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Endpoint, EndpointError> {
        let server = tiny_http::Server::http(addr).map_err(|e| EndpointError {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let bound = server
            .server_addr()
            .to_ip()
            .map_or_else(|| addr.to_string(), |a| a.to_string());
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("callwarden-metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    respond(request, &metrics, &health);
                }
            })
            .map_err(|e| EndpointError {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Endpoint {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Static, valid header names and values.
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| tiny_http::Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap())
}

fn respond(request: tiny_http::Request, metrics: &Metrics, health: &Health) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let get = matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let response = match (get, path.as_str()) {
        (true, "/metrics") => {
            let accept = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str());
            let format = Format::negotiate(accept);
            tiny_http::Response::from_string(metrics.encode(format))
                .with_header(header("Content-Type", format.content_type()))
        }
        (true, "/healthz") => match health.problem(crate::ingest::now_ms()) {
            None => tiny_http::Response::from_string("ok\n"),
            Some(why) => tiny_http::Response::from_string(format!("unhealthy: {why}\n"))
                .with_status_code(503),
        },
        (false, "/metrics" | "/healthz") => {
            tiny_http::Response::from_string("only GET\n").with_status_code(405)
        }
        _ => tiny_http::Response::from_string("not found: try /metrics or /healthz\n")
            .with_status_code(404),
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "metrics client went away");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_a_recent_heartbeat_and_every_worker() {
        let h = Health::default();
        h.heartbeat_ms.store(100_000, Ordering::Relaxed);
        h.workers.store(2, Ordering::Relaxed);
        h.workers_alive.store(2, Ordering::Relaxed);
        assert_eq!(h.problem(101_000), None);
        assert!(h.problem(200_000).unwrap().contains("has not run"));
        h.workers_alive.store(1, Ordering::Relaxed);
        assert_eq!(h.problem(101_000).unwrap(), "1 of 2 worker threads alive");
        h.workers_alive.store(2, Ordering::Relaxed);
        h.roots_missing.store(1, Ordering::Relaxed);
        assert_eq!(
            h.problem(101_000).unwrap(),
            "1 of the recordings roots missing (ingest.roots)"
        );
        h.watch_lost.store(true, Ordering::Relaxed);
        assert!(h.problem(101_000).unwrap().contains("watch has stopped"));
    }
}
