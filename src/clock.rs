//! The wall clock, read in one place: the edges (ingest, the daemon, the CLI, the outbox's
//! stamp on each event) call this; the functional core takes the time as a parameter.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
