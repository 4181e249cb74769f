//! Integration tests: one binary, one module per area.

mod accuracy;
mod cli;
mod decode;
mod stereo;
mod support;
