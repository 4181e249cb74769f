//! The daemon's CDR sources (`[[calls.source]]`): polled every `calls.poll_s` on a blocking
//! thread (skipped while the last poll still runs), each followed by `cdr_follow::Tail`; what
//! they gave is logged, lines that could not be read are named with their file and line.

use std::sync::{Arc, Mutex};

use crate::cdr_follow::Tail;
use crate::config::{CallsConfig, CdrFormat};
use crate::ingest;

use super::State;

/// The followed sources, as configured.
pub(super) struct Sources {
    pub(super) tails: Vec<Tail>,
    pub(super) dirs: Vec<crate::cdr_follow::JsonDir>,
    pub(super) tables: Vec<crate::cdr_pgsql::Table>,
    pub(super) of: Vec<crate::config::CdrSource>,
}

impl Sources {
    fn of(calls: &CallsConfig) -> Sources {
        let pgsql = |s: &&crate::config::CdrSource| s.format == CdrFormat::AsteriskPgsql;
        let json = |s: &&crate::config::CdrSource| s.format == CdrFormat::FreeswitchJson;
        Sources {
            tails: calls
                .source
                .iter()
                .filter(|s| !pgsql(s) && !json(s))
                .map(|s| Tail::new(s.path.clone(), s.template()))
                .collect(),
            dirs: calls
                .source
                .iter()
                .filter(json)
                .map(|s| crate::cdr_follow::JsonDir::new(s.path.clone()))
                .collect(),
            tables: calls
                .source
                .iter()
                .filter(pgsql)
                .map(|s| crate::cdr_pgsql::Table::new(s.url.clone(), s.table.clone()))
                .collect(),
            of: calls.source.clone(),
        }
    }

    pub(super) fn new(calls: &CallsConfig) -> Arc<Mutex<Sources>> {
        Arc::new(Mutex::new(Sources::of(calls)))
    }
}

impl State {
    /// Reads what the CDR sources gained, on a blocking thread.
    pub(super) fn follow_cdrs(&mut self) {
        if self.config.calls.source.is_empty() {
            return;
        }
        let (store, sources, config) = (
            self.store.clone(),
            self.cdr_sources.clone(),
            self.config.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let Ok(mut sources) = sources.try_lock() else {
                return;
            };
            // A reload that changed the sources starts them afresh (their cursors are kept).
            if sources.of != config.calls.source {
                *sources = Sources::of(&config.calls);
            }
            let zone = match crate::cdr::Zone::get(&config.calls.timezone) {
                Ok(z) => z,
                Err(e) => {
                    tracing::error!(error = %e, "calls.timezone");
                    return;
                }
            };
            for table in &mut sources.tables {
                let source = format!("{} {}", crate::cdr_pgsql::redact(&table.url), table.table);
                let polled =
                    table.poll(&store, &zone, config.calls.pg_lookback_s, ingest::now_ms());
                log(&source, polled);
            }
            for dir in &mut sources.dirs {
                let polled = dir.poll(
                    &store,
                    config.calls.max_line_bytes.max(1 << 20),
                    ingest::now_ms(),
                );
                log(&dir.path.display().to_string(), polled);
            }
            for tail in &mut sources.tails {
                let polled =
                    tail.poll(&store, &zone, config.calls.max_line_bytes, ingest::now_ms());
                log(&tail.path.display().to_string(), polled);
            }
        });
    }
}

/// What one poll of a source read, in the log.
fn log(source: &str, polled: Result<crate::cdr_follow::Polled, crate::store::StoreError>) {
    match polled {
        Ok(p) => {
            if p.new + p.changed > 0 {
                tracing::info!(
                    source,
                    new = p.new,
                    changed = p.changed,
                    rejected = p.rejected.len(),
                    "call records read"
                );
            }
            for (at, why) in &p.rejected {
                tracing::warn!(source, "call record not read: {at}: {why}");
            }
            for note in &p.notes {
                tracing::warn!(source, "{note}");
            }
        }
        Err(e) => tracing::error!(source, error = %e, "reading call records failed"),
    }
}
