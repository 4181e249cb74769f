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
    /// The role of each channel of a multi-channel recording, in order (`["customer",
    /// "agent"]`): which side is on which channel changes with the call's direction on some
    /// PBXs (FreeSWITCH writes the caller left). Overrides `analysis.channel_roles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The codec the call was carried in before it was recorded (`G729`, `PCMU`, `gsm`): the
    /// score takes its ITU-T G.113 impairment off. Overrides `analysis.codec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<crate::analysis::carried::Codec>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The most channel roles a sidecar may name.
const MAX_CHANNEL_ROLES: usize = 8;

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
        if m.channels.len() > MAX_CHANNEL_ROLES
            || m.channels.iter().any(|r| {
                r.is_empty()
                    || r.len() > 32
                    || !r
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        {
            return Err(format!(
                "channels: at most {MAX_CHANNEL_ROLES} roles of 1 to 32 letters, digits, _ or -"
            ));
        }
        Ok(m)
    }

    /// The call's start, in ms since the Unix epoch, if the sidecar gives one.
    pub fn start_ms(&self) -> Option<i64> {
        self.start_time.as_deref().and_then(|t| rfc3339_ms(t).ok())
    }
}

impl Metadata {
    /// `self` with every field that `over` sets replaced by `over`'s (a sidecar over what the
    /// file name says).
    pub fn overlay(mut self, over: Metadata) -> Metadata {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(call_id, start_time, direction, agent, queue, caller, callee, consent, codec);
        if !over.tags.is_empty() {
            self.tags = over.tags;
        }
        if !over.channels.is_empty() {
            self.channels = over.channels;
        }
        self.extra.extend(over.extra);
        self
    }
}

/// Fields taken from file names, e.g. `{queue}-{agent}-{epoch}` for `support-alice-1700481234`.
///
/// Placeholders: `{call_id}`, `{uniqueid}` (Asterisk's `epoch.sequence`: the call id and the start
/// time), `{agent}`, `{queue}`, `{caller}`, `{callee}`, `{direction}`, `{epoch}` (Unix seconds),
/// `{datetime}` (`YYYYMMDD-HHMMSS`, UTC) and `{_}` (ignored). Each placeholder takes the text up to
/// the literal that follows it, so two placeholders need a literal between them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilenamePattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Field(String),
}

const FIELDS: [&str; 10] = [
    "call_id",
    "uniqueid",
    "agent",
    "queue",
    "caller",
    "callee",
    "direction",
    "epoch",
    "datetime",
    "_",
];

impl FilenamePattern {
    pub fn parse(pattern: &str) -> Result<FilenamePattern, String> {
        let mut tokens = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or("a `{` without its `}`")?;
                    let name = &rest[1..end];
                    if !FIELDS.contains(&name) {
                        return Err(format!(
                            "unknown placeholder {{{name}}} (known: {})",
                            FIELDS.join(", ")
                        ));
                    }
                    if matches!(tokens.last(), Some(Token::Field(_))) {
                        return Err("two placeholders need a literal between them".into());
                    }
                    tokens.push(Token::Field(name.to_string()));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    tokens.push(Token::Literal(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    tokens.push(Token::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        Ok(FilenamePattern { tokens })
    }

    /// The metadata a file name (without its extension) carries, or `None` when it does not
    /// match the pattern or a value is malformed.
    pub fn extract(&self, stem: &str) -> Option<Metadata> {
        let mut m = Metadata::default();
        let mut rest = stem;
        let mut i = 0;
        while i < self.tokens.len() {
            match &self.tokens[i] {
                Token::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
                Token::Field(name) => {
                    let value = match self.tokens.get(i + 1) {
                        Some(Token::Literal(next)) => {
                            let at = rest.find(next.as_str())?;
                            let v = &rest[..at];
                            rest = &rest[at..];
                            v
                        }
                        _ => std::mem::take(&mut rest),
                    };
                    if value.is_empty() {
                        return None;
                    }
                    set_field(&mut m, name, value)?;
                }
            }
            i += 1;
        }
        rest.is_empty().then_some(m)
    }
}

fn epoch_to_rfc3339(seconds: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn set_field(m: &mut Metadata, name: &str, value: &str) -> Option<()> {
    let text = Some(value.to_string());
    match name {
        "call_id" => m.call_id = text,
        "uniqueid" => {
            let seconds: i64 = value.split('.').next()?.parse().ok()?;
            m.call_id = text;
            m.start_time = Some(epoch_to_rfc3339(seconds)?);
        }
        "agent" => m.agent = text,
        "queue" => m.queue = text,
        "caller" => m.caller = text,
        "callee" => m.callee = text,
        "direction" => {
            m.direction =
                Some(serde_json::from_value(serde_json::Value::String(value.to_lowercase())).ok()?)
        }
        "epoch" => m.start_time = Some(epoch_to_rfc3339(value.parse().ok()?)?),
        "datetime" => {
            let format =
                time::macros::format_description!("[year][month][day]-[hour][minute][second]");
            let t = time::PrimitiveDateTime::parse(value, &format)
                .ok()?
                .assume_utc();
            m.start_time = t
                .format(&time::format_description::well_known::Rfc3339)
                .ok();
        }
        _ => {}
    }
    Some(())
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
    fn file_names_carry_fields() {
        let check =
            |pattern: &str, stem: &str, expected: Option<(&str, Option<&str>, Option<&str>)>| {
                let p = FilenamePattern::parse(pattern).unwrap();
                let got = p.extract(stem).map(|m| {
                    (
                        m.start_time.clone().unwrap_or_default(),
                        m.agent.clone(),
                        m.queue.clone(),
                    )
                });
                let expected = expected
                    .map(|(t, a, q)| (t.to_string(), a.map(String::from), q.map(String::from)));
                assert_eq!(got, expected, "{pattern} on {stem}");
            };
        check(
            "{queue}-{agent}-{epoch}",
            "support-alice-1700000000",
            Some(("2023-11-14T22:13:20Z", Some("alice"), Some("support"))),
        );
        check(
            "{uniqueid}",
            "1700000000.56",
            Some(("2023-11-14T22:13:20Z", None, None)),
        );
        check(
            "q-{queue}_{datetime}",
            "q-sales_20261120-091354",
            Some(("2026-11-20T09:13:54Z", None, Some("sales"))),
        );
        check("{queue}-{agent}-{epoch}", "support-alice", None);
        check("{queue}-{agent}-{epoch}", "support-alice-yesterday", None);
        assert!(FilenamePattern::parse("{queue}{agent}").is_err());
        assert!(FilenamePattern::parse("{nope}").is_err());
        assert!(FilenamePattern::parse("{queue").is_err());
    }

    #[test]
    fn a_sidecar_overrides_the_file_name() {
        let from_name = Metadata {
            agent: Some("a".into()),
            queue: Some("q".into()),
            ..Default::default()
        };
        let sidecar = Metadata {
            agent: Some("b".into()),
            ..Default::default()
        };
        let m = from_name.overlay(sidecar);
        assert_eq!(
            (m.agent.as_deref(), m.queue.as_deref()),
            (Some("b"), Some("q"))
        );
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
