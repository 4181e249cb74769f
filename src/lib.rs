//! callwarden: call-recording quality and compliance.
//!
//! The library behind the `callwarden` binary. See ARCHITECTURE.md for the data flow and the
//! module map.

pub mod accounts;
pub mod alerts;
pub mod analysis;
pub mod audio;
pub mod audit;
pub mod calls;
pub mod cdr;
pub mod cdr_follow;
pub mod cdr_pgsql;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod control;
pub mod daemon;
pub mod dispatch;
pub mod endpoint;
pub mod files;
pub mod fleet;
pub mod ingest;
pub mod kpi;
pub mod metadata;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod purge;
pub mod query;
pub mod record;
pub mod recording_path;
pub mod redact;
pub mod store;
pub mod summary;
pub mod verify;
pub mod watch;
pub mod web;
