//! The store's keys and values as bytes: keys that sort in time order, the indexes' keys, and
//! records encoded behind a version byte.

use serde::Serialize;

use super::{Record, RecordState, RecordingId, StoreError};
pub(super) use crate::record::record_key;
use crate::summary::Summary;

/// The version byte in front of every record value.
pub(super) const RECORD_VERSION: u8 = 1;

/// The record keys of the calls that started in `[from_ms, until_ms)`, either end open.
pub(super) fn key_range(from_ms: Option<i64>, until_ms: Option<i64>) -> ([u8; 16], [u8; 16]) {
    (
        record_key(from_ms.unwrap_or(i64::MIN), RecordingId(0)),
        record_key(until_ms.unwrap_or(i64::MAX), RecordingId(0)),
    )
}

pub(super) fn decode_summary(key: &[u8], value: &[u8]) -> Result<Summary, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: hex::encode(key),
        reason: format!("summary: {e}"),
    })
}

pub(super) fn named_key(name: &str, key: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 17);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// The worst-calls index: score, then the record key (so one score's calls are in time order).
pub(super) fn score_key(summary: &Summary, key: &[u8; 16]) -> Option<Vec<u8>> {
    let score = summary.score?;
    let mut k = vec![score.min(255) as u8];
    k.extend_from_slice(key);
    Some(k)
}

pub(super) fn state_key(state: RecordState, key: &[u8; 16]) -> Vec<u8> {
    let mut k = vec![state.byte()];
    k.extend_from_slice(key);
    k
}

pub(super) fn encode(record: &Record) -> Vec<u8> {
    let mut v = vec![RECORD_VERSION];
    // A Record always serialises (no maps with non-string keys, no failing Serialize impls).
    v.extend(serde_json::to_vec(record).unwrap_or_default());
    v
}

pub(super) fn decode(key: &[u8], value: &[u8]) -> Result<Record, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: hex::encode(key),
        reason,
    };
    match value.split_first() {
        Some((&RECORD_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
        }
        Some((v, _)) => Err(corrupt(format!("unknown record version {v}"))),
        None => Err(corrupt("empty value".into())),
    }
}

pub(super) fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The key of an audit entry in the index by recording.
pub(super) fn audit_index_key(recording: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&recording.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}
