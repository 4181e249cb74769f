//! Call metadata from the PBX: the sidecar `NAME.json` beside `NAME.wav`.
//!
//! Pure parsing and validation: text in, [`Metadata`] or a reason out. Known fields are typed
//! and checked (times are RFC 3339, enums are closed); unknown fields are kept as they came.
//! A sidecar that does not parse never drops its recording: the caller stores the recording with
//! `metadata_invalid` and the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    Granted,
    Denied,
    Unknown,
    NotRequired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    Sidecar,
    Ivr,
    Agent,
    Announcement,
    Cli,
    Api,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub state: ConsentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ConsentSource>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// What a sidecar says about a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Metadata {
    /// Parses and validates a sidecar's text.
    pub fn parse(text: &str) -> Result<Metadata, String> {
        let m: Metadata = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(t) = &m.start_time {
            rfc3339_ms(t).map_err(|e| format!("start_time {t:?}: {e}"))?;
        }
        if let Some(Consent { time: Some(t), .. }) = &m.consent {
            rfc3339_ms(t).map_err(|e| format!("consent.time {t:?}: {e}"))?;
        }
        Ok(m)
    }

    /// The call's start, in ms since the Unix epoch, if the sidecar gives one.
    pub fn start_ms(&self) -> Option<i64> {
        self.start_time.as_deref().and_then(|t| rfc3339_ms(t).ok())
    }
}

/// An RFC 3339 time as ms since the Unix epoch.
pub fn rfc3339_ms(text: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sidecar_parses_and_keeps_unknown_fields() {
        let m = Metadata::parse(
            r#"{"call_id": "1700481234.56", "start_time": "2026-11-20T09:13:54+01:00",
                "direction": "inbound", "agent": "alice", "queue": "support",
                "caller": "+4930123", "callee": "600",
                "consent": {"state": "granted", "source": "ivr", "time": "2026-11-20T09:14:00Z"},
                "tags": ["vip"], "trunk": "sip-1"}"#,
        )
        .unwrap();
        assert_eq!(m.agent.as_deref(), Some("alice"));
        assert_eq!(m.consent.as_ref().unwrap().state, ConsentState::Granted);
        assert_eq!(m.extra["trunk"], "sip-1");
        assert_eq!(m.start_ms(), Some(1_795_162_434_000));
    }

    #[test]
    fn bad_sidecars_say_why() {
        let check = |text: &str, needle: &str| {
            let err = Metadata::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        };
        check("{", "EOF");
        check(r#"{"direction": "sideways"}"#, "sideways");
        check(r#"{"start_time": "yesterday"}"#, "start_time");
        check(r#"{"consent": {"state": "maybe"}}"#, "maybe");
        check(r#"[1, 2]"#, "");
    }
}
