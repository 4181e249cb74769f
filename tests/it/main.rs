//! Integration tests: one binary, one module per area.

mod accuracy;
mod admin;
mod browser;
mod calls;
mod cli;
mod compliance;
mod daemon;
mod decode;
mod evidence;
mod first_day;
mod fleet;
mod heldout;
mod ingest;
mod lifecycle;
mod music;
mod operations;
mod pg;
mod readme;
mod stability;
mod stereo;
mod support;
mod tidy;
mod trust;
mod web;
