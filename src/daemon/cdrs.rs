//! The daemon's CDR sources (`[[calls.source]]`): polled every `calls.poll_s` on a blocking
//! thread (skipped while the last poll still runs), each followed by `cdr_follow::Tail`; what
//! they gave is logged, lines that could not be read are named with their file and line.

use std::sync::{Arc, Mutex};

use crate::cdr_follow::Tail;
use crate::config::CallsConfig;
use crate::ingest;

use super::State;

/// The followed sources, as configured.
pub(super) struct Sources {
    pub(super) tails: Vec<Tail>,
    pub(super) of: Vec<crate::config::CdrSource>,
}

impl Sources {
    pub(super) fn new(calls: &CallsConfig) -> Arc<Mutex<Sources>> {
        Arc::new(Mutex::new(Sources {
            tails: calls
                .source
                .iter()
                .map(|s| Tail::new(s.path.clone(), s.template()))
                .collect(),
            of: calls.source.clone(),
        }))
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
                *sources = Sources {
                    tails: config
                        .calls
                        .source
                        .iter()
                        .map(|s| Tail::new(s.path.clone(), s.template()))
                        .collect(),
                    of: config.calls.source.clone(),
                };
            }
            let zone = match crate::cdr::Zone::get(&config.calls.timezone) {
                Ok(z) => z,
                Err(e) => {
                    tracing::error!(error = %e, "calls.timezone");
                    return;
                }
            };
            for tail in &mut sources.tails {
                match tail.poll(&store, &zone, config.calls.max_line_bytes, ingest::now_ms()) {
                    Ok(p) => {
                        if p.new + p.changed > 0 {
                            tracing::info!(
                                source = %tail.path.display(),
                                new = p.new,
                                changed = p.changed,
                                rejected = p.rejected.len(),
                                "call records read"
                            );
                        }
                        for (at, why) in &p.rejected {
                            tracing::warn!("call record not read: {at}: {why}");
                        }
                        for note in &p.notes {
                            tracing::warn!(source = %tail.path.display(), "{note}");
                        }
                    }
                    Err(e) => {
                        tracing::error!(source = %tail.path.display(), error = %e, "reading call records failed")
                    }
                }
            }
        });
    }
}
