//! Consent: what a recording's consent is, where it came from, and which law applies (pure).
//!
//! A recording's consent comes from its sidecar at ingest (source `sidecar` unless the sidecar
//! names one) and can be changed later by an operator through [`crate::store::Store::set_consent`],
//! which keeps the history and writes an audit entry with who did it. The law (one-party or
//! all-party consent) comes from `[consent]` in the configuration, by queue, direction or tag.

use crate::config::{ConsentConfig, ConsentLaw};
use crate::metadata::{ConsentSource, ConsentState, Metadata};
pub use crate::record::ConsentRecord;

/// The consent a sidecar states, recorded at `now_ms`.
pub fn from_metadata(m: &Metadata, now_ms: i64) -> Option<ConsentRecord> {
    let c = m.consent.as_ref()?;
    Some(ConsentRecord {
        state: c.state,
        source: c.source.unwrap_or(ConsentSource::Sidecar),
        time_ms: c
            .time
            .as_deref()
            .and_then(|t| crate::metadata::rfc3339_ms(t).ok()),
        recorded_ms: now_ms,
        actor: "ingest".into(),
        note: None,
    })
}

/// The consent law for a call: the first `[[consent.rule]]` that matches, else the default.
pub fn law(m: Option<&Metadata>, config: &ConsentConfig) -> ConsentLaw {
    rule_for(m, config).map_or(config.default, |r| r.requires)
}

/// Whether the law for a call needs notice (a recording announcement in the audio): the first
/// matching rule's `notice`, else `[consent] notice`.
pub fn notice(m: Option<&Metadata>, config: &ConsentConfig) -> bool {
    rule_for(m, config).map_or(config.notice, |r| r.notice)
}

/// The first `[[consent.rule]]` that matches a call.
fn rule_for<'c>(
    m: Option<&Metadata>,
    config: &'c ConsentConfig,
) -> Option<&'c crate::config::ConsentRule> {
    for rule in &config.rule {
        let queue_ok = rule.queue.is_empty()
            || m.and_then(|m| m.queue.as_ref())
                .is_some_and(|q| rule.queue.contains(q));
        let direction_ok = rule.direction.is_empty()
            || m.and_then(|m| m.direction)
                .is_some_and(|d| rule.direction.contains(&d));
        let tag_ok =
            rule.tag.is_empty() || m.is_some_and(|m| m.tags.iter().any(|t| rule.tag.contains(t)));
        if queue_ok && direction_ok && tag_ok {
            return Some(rule);
        }
    }
    None
}

/// What a recording lacks that its law needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lack {
    /// Consent denied, or not granted where every party must agree.
    Consent,
    /// The law needs notice and no recording announcement was found in the audio (`checked`),
    /// or the audio was never looked at for one (analysed before any was configured).
    Announcement { checked: bool },
}

impl Lack {
    /// Why, in words; `within_s` is how far into a call the announcement is looked for.
    pub fn reason(self, law: ConsentLaw, consent: Option<ConsentState>, within_s: f64) -> String {
        match self {
            Lack::Consent if consent == Some(ConsentState::Denied) => "consent denied".into(),
            Lack::Consent => format!(
                "no consent recorded where {} consent is the law",
                law.as_str().replace('_', "-")
            ),
            Lack::Announcement { checked: true } => {
                format!("no announcement found in the first {within_s:.0} s")
            }
            Lack::Announcement { checked: false } => {
                "not checked for an announcement (analysed before one was configured)".into()
            }
        }
    }
}

/// What a recording lacks under its law: consent first, then notice. `announced` is whether
/// the audio held an announcement (`None`: not looked for).
pub fn lack(
    law: ConsentLaw,
    consent: Option<ConsentState>,
    notice: bool,
    announced: Option<bool>,
) -> Option<Lack> {
    if lacks(law, consent) {
        Some(Lack::Consent)
    } else if notice && announced != Some(true) {
        Some(Lack::Announcement {
            checked: announced.is_some(),
        })
    } else {
        None
    }
}

/// Whether a recording lacks the consent its law needs: under all-party consent only `granted`
/// or `not_required` will do; under one-party consent, the business's own consent suffices.
pub fn lacking(law: ConsentLaw, consent: Option<&ConsentRecord>) -> bool {
    lacks(law, consent.map(|c| c.state))
}

/// [`lacking`], from the consent state alone (`None`: no consent recorded).
pub fn lacks(law: ConsentLaw, consent: Option<ConsentState>) -> bool {
    match law {
        ConsentLaw::OneParty => consent == Some(ConsentState::Denied),
        ConsentLaw::AllParty => !covers(consent),
    }
}

/// Whether a consent state is evidence enough under any law: granted, or not required.
pub fn covers(consent: Option<ConsentState>) -> bool {
    matches!(
        consent,
        Some(ConsentState::Granted | ConsentState::NotRequired)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsentRule;
    use crate::metadata::Direction;

    #[test]
    fn the_first_matching_rule_sets_the_law() {
        let config = ConsentConfig {
            default: ConsentLaw::OneParty,
            rule: vec![
                ConsentRule {
                    queue: vec!["eu".into()],
                    direction: vec![],
                    tag: vec![],
                    requires: ConsentLaw::AllParty,
                    notice: false,
                },
                ConsentRule {
                    queue: vec![],
                    direction: vec![Direction::Outbound],
                    tag: vec!["ca".into()],
                    requires: ConsentLaw::AllParty,
                    notice: false,
                },
            ],
            ..Default::default()
        };
        let m = |queue: Option<&str>, direction, tags: &[&str]| Metadata {
            queue: queue.map(String::from),
            direction,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(law(None, &config), ConsentLaw::OneParty);
        assert_eq!(
            law(Some(&m(Some("eu"), None, &[])), &config),
            ConsentLaw::AllParty
        );
        assert_eq!(
            law(Some(&m(None, Some(Direction::Outbound), &["ca"])), &config),
            ConsentLaw::AllParty
        );
        assert_eq!(
            law(Some(&m(None, Some(Direction::Inbound), &["ca"])), &config),
            ConsentLaw::OneParty
        );
    }

    #[test]
    fn notice_needs_an_announcement_found_and_says_why() {
        use ConsentState::*;
        let law = ConsentLaw::OneParty;
        assert_eq!(lack(law, Some(Granted), false, None), None);
        assert_eq!(lack(law, Some(Granted), true, Some(true)), None);
        let missing = lack(law, Some(Granted), true, Some(false)).unwrap();
        assert_eq!(
            missing.reason(law, Some(Granted), 30.0),
            "no announcement found in the first 30 s"
        );
        let unchecked = lack(law, None, true, None).unwrap();
        assert_eq!(unchecked, Lack::Announcement { checked: false });
        assert!(unchecked.reason(law, None, 30.0).starts_with("not checked"));
        // Consent is judged first: denied stays denied whatever the audio holds.
        let denied = lack(law, Some(Denied), true, Some(true)).unwrap();
        assert_eq!(denied.reason(law, Some(Denied), 30.0), "consent denied");
        assert_eq!(
            lack(ConsentLaw::AllParty, None, false, None)
                .unwrap()
                .reason(ConsentLaw::AllParty, None, 30.0),
            "no consent recorded where all-party consent is the law"
        );
    }

    #[test]
    fn sidecar_consent_is_recorded_with_its_source() {
        let m = Metadata::parse(
            r#"{"consent": {"state": "granted", "source": "ivr", "time": "2026-01-02T03:04:05Z"}}"#,
        )
        .unwrap();
        let c = from_metadata(&m, 7).unwrap();
        assert_eq!(c.state, ConsentState::Granted);
        assert_eq!(c.source, ConsentSource::Ivr);
        assert_eq!(c.time_ms, Some(1_767_323_045_000));
        assert_eq!(c.actor, "ingest");
        assert!(!lacking(ConsentLaw::AllParty, Some(&c)));
        assert!(lacking(ConsentLaw::AllParty, None));
        assert!(!lacking(ConsentLaw::OneParty, None));
    }
}
