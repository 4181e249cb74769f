//! The retention planner: a pure function from records, policy and time to decisions.
//!
//! `plan(records, policy, now)` says for every recording whether it is kept or purged, and why:
//! the rule that set its retention and the deadline, or the hold or lock that keeps it. Nothing
//! here reads the clock, the disk or the store; [`crate::purge`] carries decisions out.
//!
//! The rules (`[[retention.rule]]` in the configuration):
//! - A rule matches a recording when every key it lists matches (a list matches any of its
//!   values). The rule without match keys is the default: it applies when no other rule matches.
//! - When several rules match, the longest retention wins (ties: the first in the file). Its
//!   `delete` says what expiry deletes.
//! - `min_keep` is a lock, like S3 Object Lock's compliance mode: no deletion before it, manual
//!   and disk-pressure purges included. The longest lock of the matching rules applies.
//! - Denied consent shortens the retention to the denial plus `denied_grace_h`, unless a hold or a
//!   lock says otherwise.
//! - A legal hold overrides every deletion path. Released, the original deadline applies again.
//! - A purge is never undone by time: if a recording is due at `now`, it is due at any later time
//!   (holds and consent are inputs, not time).

use serde::{Deserialize, Serialize};

use crate::config::{RetentionConfig, RetentionRule};
use crate::metadata::ConsentState;
use crate::record::{Record, RecordFlag, RecordState, RecordingId};
pub use crate::record::{Scope, Span};

const HOUR_MS: i64 = 3_600_000;
#[cfg(test)]
const DAY_MS: i64 = 24 * HOUR_MS;

/// Why a purge is being planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduled run: what has expired.
    Schedule,
    /// Free space is low: also what the policy allows to go early.
    DiskPressure,
    /// An operator asked for these recordings to go.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Keep,
    Purge,
    /// Already purged, or the file is gone: nothing to do.
    Nothing,
}

/// Why a decision was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// Kept until its deadline (`None`: forever).
    Retained { until_ms: Option<i64> },
    /// Its retention has passed.
    Expired { deadline_ms: i64 },
    /// Consent was denied and the grace period has passed.
    ConsentDenied { denied_ms: i64, deadline_ms: i64 },
    /// Free space is low and the rule allows purging early.
    DiskPressure,
    /// An operator asked.
    Manual,
    /// A legal hold keeps it, whatever its deadline.
    Held {
        holds: Vec<u64>,
        deadline_ms: Option<i64>,
    },
    /// A rule's `min_keep` locks it until then.
    Locked { until_ms: i64 },
    /// An earlier purge refused to delete it (the file changed, a symlink, outside the roots):
    /// someone must look.
    NeedsReview { note: String },
    /// Purged already.
    Purged { at_ms: i64 },
    /// The file is gone, not by callwarden's hand (the record is `missing`).
    FileMissing,
}

/// The plan for one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: RecordingId,
    pub action: Action,
    /// The rule that set its retention.
    pub rule: String,
    /// What a purge deletes.
    pub scope: Scope,
    pub reason: Reason,
}

impl Decision {
    /// The reason in words, with the rule and the times.
    pub fn explain(&self) -> String {
        let rule = &self.rule;
        match &self.reason {
            Reason::Retained { until_ms: None } => format!("kept forever by rule {rule:?}"),
            Reason::Retained { until_ms: Some(t) } => {
                format!("kept until {} by rule {rule:?}", fmt_ms(*t))
            }
            Reason::Expired { deadline_ms } => {
                format!("expired {} under rule {rule:?}", fmt_ms(*deadline_ms))
            }
            Reason::ConsentDenied {
                denied_ms,
                deadline_ms,
            } => format!(
                "consent denied {}, grace ended {}",
                fmt_ms(*denied_ms),
                fmt_ms(*deadline_ms)
            ),
            Reason::DiskPressure => {
                format!("disk pressure; rule {rule:?} allows purging early")
            }
            Reason::Manual => "requested by an operator".into(),
            Reason::Held { holds, .. } => format!("under legal hold {holds:?}"),
            Reason::Locked { until_ms } => {
                format!(
                    "locked until {} (min_keep of rule {rule:?})",
                    fmt_ms(*until_ms)
                )
            }
            Reason::NeedsReview { note } => format!("needs review: {note}"),
            Reason::Purged { at_ms } => format!("purged {}", fmt_ms(*at_ms)),
            Reason::FileMissing => "the file is missing (not deleted by callwarden)".into(),
        }
    }
}

/// A time in ms since the epoch as RFC 3339 (UTC).
pub fn fmt_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn matches(rule: &RetentionRule, r: &Record) -> bool {
    fn any<T: PartialEq>(list: &[T], value: Option<T>) -> bool {
        list.is_empty() || value.is_some_and(|v| list.contains(&v))
    }
    let m = r.metadata.as_ref();
    let consent = r.consent.as_ref().map(|c| c.state);
    any(
        &rule.consent,
        Some(consent.unwrap_or(ConsentState::Unknown)),
    ) && any(&rule.direction, m.and_then(|m| m.direction))
        && any(&rule.queue, m.and_then(|m| m.queue.clone()))
        && any(&rule.agent, m.and_then(|m| m.agent.clone()))
        && (rule.tag.is_empty() || m.is_some_and(|m| m.tags.iter().any(|t| rule.tag.contains(t))))
        && any(&rule.grade, r.report.as_ref().map(|rep| rep.quality.grade))
        && any(&rule.state, Some(r.state))
}

/// Orders deadlines with forever (`None`) last.
fn later(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

/// The rule that sets a recording's retention, its deadline and the longest lock over it.
pub fn governing<'p>(
    r: &Record,
    policy: &'p RetentionConfig,
) -> (&'p RetentionRule, Option<i64>, Option<i64>) {
    let mut winner: Option<(&RetentionRule, Option<i64>)> = None;
    let mut lock: Option<i64> = None;
    let consider = |rule: &'p RetentionRule,
                    winner: &mut Option<(&'p RetentionRule, Option<i64>)>,
                    lock: &mut Option<i64>| {
        let deadline = rule.keep.after(r.started_ms);
        if winner.is_none_or(|(_, best)| later(deadline, best)) {
            *winner = Some((rule, deadline));
        }
        if let Some(min_keep) = rule.min_keep {
            let until = min_keep.after(r.started_ms).unwrap_or(i64::MAX);
            *lock = Some(lock.map_or(until, |l| l.max(until)));
        }
    };
    for rule in policy.rule.iter().filter(|rule| !rule.is_default()) {
        if matches(rule, r) {
            consider(rule, &mut winner, &mut lock);
        }
    }
    if winner.is_none() {
        if let Some(rule) = policy.rule.iter().find(|rule| rule.is_default()) {
            consider(rule, &mut winner, &mut lock);
        }
    }
    match winner {
        Some((rule, deadline)) => (rule, deadline, lock),
        // A validated policy always has a default rule; without one, keep everything.
        None => (&FALLBACK, None, lock),
    }
}

static FALLBACK: RetentionRule = RetentionRule {
    name: String::new(),
    consent: Vec::new(),
    direction: Vec::new(),
    queue: Vec::new(),
    agent: Vec::new(),
    tag: Vec::new(),
    grade: Vec::new(),
    state: Vec::new(),
    keep: Span::Forever,
    min_keep: None,
    delete: Scope::Audio,
    purge_early: false,
};

/// The decision for one recording.
pub fn decide(r: &Record, policy: &RetentionConfig, now_ms: i64, trigger: Trigger) -> Decision {
    let (rule, deadline, lock) = governing(r, policy);
    let decision = |action, reason| Decision {
        id: r.id,
        action,
        rule: rule.name.clone(),
        scope: rule.delete,
        reason,
    };
    if r.state == RecordState::Purged {
        let at_ms = r.tombstone.as_ref().map_or(0, |t| t.deleted_ms);
        return decision(Action::Nothing, Reason::Purged { at_ms });
    }
    if r.state == RecordState::Missing {
        return decision(Action::Nothing, Reason::FileMissing);
    }
    // Consent denied: the denial plus the grace period, if sooner.
    let denied = r
        .consent
        .as_ref()
        .filter(|c| c.state == ConsentState::Denied)
        .map(|c| {
            let at = c.time_ms.unwrap_or(c.recorded_ms);
            let grace = (policy.denied_grace_h * HOUR_MS as f64) as i64;
            (at, at.saturating_add(grace))
        });
    let (due_ms, due_reason) = match denied {
        Some((denied_ms, deadline_ms)) if deadline.is_none_or(|d| deadline_ms < d) => (
            Some(deadline_ms),
            Reason::ConsentDenied {
                denied_ms,
                deadline_ms,
            },
        ),
        _ => (
            deadline,
            Reason::Expired {
                deadline_ms: deadline.unwrap_or(i64::MAX),
            },
        ),
    };
    if !r.holds.is_empty() {
        return decision(
            Action::Keep,
            Reason::Held {
                holds: r.holds.clone(),
                deadline_ms: due_ms,
            },
        );
    }
    if let Some(note) = &r.purge_note {
        return decision(Action::Keep, Reason::NeedsReview { note: note.clone() });
    }
    if r.has(RecordFlag::ModifiedAfterIngest) {
        let note = "the file changed after ingest: the one on disk is not the recording".into();
        return decision(Action::Keep, Reason::NeedsReview { note });
    }
    let due = due_ms.is_some_and(|d| now_ms >= d);
    let reason = match trigger {
        _ if due => due_reason,
        Trigger::Manual => Reason::Manual,
        Trigger::DiskPressure if rule.purge_early => Reason::DiskPressure,
        _ => return decision(Action::Keep, Reason::Retained { until_ms: due_ms }),
    };
    if let Some(until_ms) = lock.filter(|&l| now_ms < l) {
        return decision(Action::Keep, Reason::Locked { until_ms });
    }
    decision(Action::Purge, reason)
}

/// The scheduled plan: a decision for every record.
pub fn plan<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    policy: &RetentionConfig,
    now_ms: i64,
) -> Vec<Decision> {
    records
        .into_iter()
        .map(|r| decide(r, policy, now_ms, Trigger::Schedule))
        .collect()
}

/// Counts of a plan, for summaries.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCounts {
    pub purge: usize,
    pub keep: usize,
    pub held: usize,
    pub locked: usize,
    pub needs_review: usize,
    pub nothing: usize,
}

pub fn count(decisions: &[Decision]) -> PlanCounts {
    let mut c = PlanCounts::default();
    for d in decisions {
        tally(&mut c, d);
    }
    c
}

/// Counts one decision in `c`.
pub fn tally(c: &mut PlanCounts, d: &Decision) {
    match (&d.action, &d.reason) {
        (Action::Purge, _) => c.purge += 1,
        (Action::Nothing, _) => c.nothing += 1,
        (_, Reason::Held { .. }) => c.held += 1,
        (_, Reason::Locked { .. }) => c.locked += 1,
        (_, Reason::NeedsReview { .. }) => c.needs_review += 1,
        _ => c.keep += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        for text in ["36h", "90d", "12w", "5y", "forever"] {
            assert_eq!(Span::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "d", "90", "-3d", "1.5y", "3m", "2000y"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn years_are_calendar_years() {
        // 2024-02-29T12:00:00Z plus one year is 2025-03-01T12:00:00Z.
        let leap = 1_709_208_000_000;
        assert_eq!(fmt_ms(leap), "2024-02-29T12:00:00Z");
        assert_eq!(
            fmt_ms(Span::Years(1).after(leap).unwrap()),
            "2025-03-01T12:00:00Z"
        );
        assert_eq!(
            fmt_ms(Span::Years(4).after(leap).unwrap()),
            "2028-02-29T12:00:00Z"
        );
        assert_eq!(Span::Days(2).after(0), Some(2 * DAY_MS));
        assert_eq!(Span::Forever.after(0), None);
    }

    fn rule(name: &str, keep: &str) -> RetentionRule {
        RetentionRule {
            name: name.into(),
            keep: Span::parse(keep).unwrap(),
            ..RetentionRule::default()
        }
    }

    fn denied_at(ms: i64) -> Option<crate::consent::ConsentRecord> {
        Some(crate::consent::ConsentRecord {
            state: ConsentState::Denied,
            source: crate::metadata::ConsentSource::Ivr,
            time_ms: Some(ms),
            recorded_ms: ms,
            actor: "ingest".into(),
            note: None,
        })
    }

    #[test]
    fn denied_consent_goes_after_the_grace_unless_locked_or_held() {
        let mut policy = RetentionConfig {
            rule: vec![rule("default", "5y")],
            ..RetentionConfig::default()
        };
        let r = Record {
            id: RecordingId(1),
            started_ms: 0,
            consent: denied_at(HOUR_MS),
            ..Record::blank()
        };
        let at = |now, p: &RetentionConfig, r: &Record| decide(r, p, now, Trigger::Schedule);
        assert_eq!(at(24 * HOUR_MS, &policy, &r).action, Action::Keep);
        let d = at(25 * HOUR_MS, &policy, &r);
        assert_eq!(d.action, Action::Purge);
        assert!(d.explain().contains("consent denied"), "{}", d.explain());
        // A lock keeps it to the lock's end.
        policy.rule[0].min_keep = Some(Span::Days(30));
        let d = at(25 * HOUR_MS, &policy, &r);
        assert_eq!(
            d.reason,
            Reason::Locked {
                until_ms: 30 * DAY_MS
            }
        );
        assert_eq!(at(30 * DAY_MS, &policy, &r).action, Action::Purge);
        // A hold keeps it whatever the time; released, the deadline applies again.
        let held = Record {
            holds: vec![3],
            ..r.clone()
        };
        assert_eq!(at(10 * 365 * DAY_MS, &policy, &held).action, Action::Keep);
        assert_eq!(at(10 * 365 * DAY_MS, &policy, &r).action, Action::Purge);
    }

    #[test]
    fn disk_pressure_and_manual_purges_respect_rules_locks_and_holds() {
        let policy = RetentionConfig {
            rule: vec![
                rule("default", "1y"),
                RetentionRule {
                    state: vec![RecordState::TooShort],
                    purge_early: true,
                    ..rule("short", "90d")
                },
                RetentionRule {
                    queue: vec!["legal".into()],
                    min_keep: Some(Span::Years(7)),
                    ..rule("legal", "7y")
                },
            ],
            ..RetentionConfig::default()
        };
        let short = Record {
            id: RecordingId(1),
            state: RecordState::TooShort,
            ..Record::blank()
        };
        let normal = Record {
            id: RecordingId(2),
            ..Record::blank()
        };
        let legal = Record {
            id: RecordingId(3),
            metadata: Some(crate::metadata::Metadata {
                queue: Some("legal".into()),
                ..Default::default()
            }),
            ..Record::blank()
        };
        let now = DAY_MS;
        let d = |r: &Record, t| decide(r, &policy, now, t);
        assert_eq!(d(&short, Trigger::Schedule).action, Action::Keep);
        assert_eq!(
            d(&short, Trigger::DiskPressure).reason,
            Reason::DiskPressure
        );
        // The default rule does not allow early purges.
        assert_eq!(d(&normal, Trigger::DiskPressure).action, Action::Keep);
        assert_eq!(d(&normal, Trigger::Manual).reason, Reason::Manual);
        // A lock refuses even a manual purge.
        assert!(matches!(
            d(&legal, Trigger::Manual).reason,
            Reason::Locked { .. }
        ));
        assert_eq!(d(&legal, Trigger::Manual).rule, "legal");
        // Already purged and missing files have nothing to do.
        let gone = Record {
            state: RecordState::Missing,
            ..normal.clone()
        };
        assert_eq!(d(&gone, Trigger::Manual).action, Action::Nothing);
    }

    mod properties {
        use super::super::*;
        use crate::config::RetentionRule;
        use crate::consent::ConsentRecord;
        use crate::metadata::{ConsentSource, Direction, Metadata};
        use proptest::prelude::*;

        const YEAR: i64 = 365 * DAY_MS;
        const QUEUES: [&str; 2] = ["sales", "support"];
        const AGENTS: [&str; 2] = ["alice", "bob"];
        const CONSENTS: [ConsentState; 4] = [
            ConsentState::Granted,
            ConsentState::Denied,
            ConsentState::Unknown,
            ConsentState::NotRequired,
        ];
        const STATES: [RecordState; 3] = [
            RecordState::Analysed,
            RecordState::TooShort,
            RecordState::Failed,
        ];

        fn span() -> impl Strategy<Value = Span> {
            prop_oneof![
                (1u32..2000).prop_map(Span::Hours),
                (1u32..800).prop_map(Span::Days),
                (1u32..100).prop_map(Span::Weeks),
                (1u32..10).prop_map(Span::Years),
                Just(Span::Forever),
            ]
        }

        fn subset<T: Clone + std::fmt::Debug + 'static>(
            all: Vec<T>,
        ) -> impl Strategy<Value = Vec<T>> {
            proptest::sample::subsequence(all.clone(), 0..=all.len())
        }

        fn rule(i: usize) -> impl Strategy<Value = RetentionRule> {
            (
                subset(QUEUES.iter().map(|s| s.to_string()).collect()),
                subset(AGENTS.iter().map(|s| s.to_string()).collect()),
                subset(CONSENTS.to_vec()),
                subset(STATES.to_vec()),
                span(),
                proptest::option::of(span()),
                any::<bool>(),
            )
                .prop_map(
                    move |(queue, agent, consent, state, keep, min_keep, early)| RetentionRule {
                        name: format!("rule{i}"),
                        queue,
                        agent,
                        consent,
                        state,
                        keep,
                        min_keep,
                        purge_early: early,
                        ..RetentionRule::default()
                    },
                )
        }

        fn policy() -> impl Strategy<Value = RetentionConfig> {
            (
                span(),
                proptest::option::of(span()),
                proptest::collection::vec(rule(0), 0..5),
                0.0f64..100.0,
            )
                .prop_map(|(keep, min_keep, rules, grace)| {
                    let mut rule = vec![RetentionRule {
                        name: "default".into(),
                        keep,
                        min_keep,
                        ..RetentionRule::default()
                    }];
                    for (i, mut r) in rules.into_iter().enumerate() {
                        r.name = format!("rule{}", i + 1);
                        // A rule without keys would be a second default; give it one.
                        if r.is_default() {
                            r.queue = vec!["sales".into()];
                        }
                        rule.push(r);
                    }
                    RetentionConfig {
                        denied_grace_h: grace,
                        rule,
                        ..RetentionConfig::default()
                    }
                })
        }

        fn record() -> impl Strategy<Value = Record> {
            (
                0i64..3 * YEAR,
                proptest::sample::select(STATES.to_vec()),
                proptest::option::of(proptest::sample::select(QUEUES.to_vec())),
                proptest::option::of(proptest::sample::select(AGENTS.to_vec())),
                proptest::option::of((proptest::sample::select(CONSENTS.to_vec()), 0i64..3 * YEAR)),
                any::<bool>(),
                0u64..1000,
            )
                .prop_map(|(started_ms, state, queue, agent, consent, held, id)| {
                    Record {
                        id: RecordingId(id),
                        state,
                        started_ms,
                        metadata: Some(Metadata {
                            queue: queue.map(String::from),
                            agent: agent.map(String::from),
                            direction: Some(Direction::Inbound),
                            ..Metadata::default()
                        }),
                        consent: consent.map(|(state, t)| ConsentRecord {
                            state,
                            source: ConsentSource::Sidecar,
                            time_ms: Some(t),
                            recorded_ms: t,
                            actor: "ingest".into(),
                            note: None,
                        }),
                        holds: if held { vec![7] } else { vec![] },
                        ..Record::blank()
                    }
                })
        }

        /// The rules that match, by the documented semantics, written out independently.
        fn oracle_matching<'p>(r: &Record, p: &'p RetentionConfig) -> Vec<&'p RetentionRule> {
            let m = r.metadata.as_ref().unwrap();
            let consent = r
                .consent
                .as_ref()
                .map_or(ConsentState::Unknown, |c| c.state);
            let specific: Vec<&RetentionRule> = p
                .rule
                .iter()
                .filter(|rule| !rule.is_default())
                .filter(|rule| {
                    (rule.queue.is_empty()
                        || m.queue.as_ref().is_some_and(|q| rule.queue.contains(q)))
                        && (rule.agent.is_empty()
                            || m.agent.as_ref().is_some_and(|a| rule.agent.contains(a)))
                        && (rule.consent.is_empty() || rule.consent.contains(&consent))
                        && (rule.state.is_empty() || rule.state.contains(&r.state))
                })
                .collect();
            if specific.is_empty() {
                p.rule.iter().filter(|rule| rule.is_default()).collect()
            } else {
                specific
            }
        }

        fn oracle_lock(r: &Record, p: &RetentionConfig) -> Option<i64> {
            oracle_matching(r, p)
                .iter()
                .filter_map(|rule| rule.min_keep)
                .map(|s| s.after(r.started_ms).unwrap_or(i64::MAX))
                .max()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, rng_seed: proptest::test_runner::RngSeed::Fixed(20261123), ..ProptestConfig::default() })]

            #[test]
            fn held_or_locked_recordings_are_never_purged(
                r in record(), p in policy(), now in 0i64..15 * YEAR,
            ) {
                for trigger in [Trigger::Schedule, Trigger::DiskPressure, Trigger::Manual] {
                    let d = decide(&r, &p, now, trigger);
                    if !r.holds.is_empty() {
                        prop_assert_ne!(d.action, Action::Purge, "held, {:?}", trigger);
                        let held = matches!(d.reason, Reason::Held { .. });
                        prop_assert!(held, "{:?}", d);
                    }
                    if oracle_lock(&r, &p).is_some_and(|l| now < l) {
                        prop_assert_ne!(d.action, Action::Purge, "locked, {:?}", trigger);
                    }
                }
            }

            #[test]
            fn the_longest_matching_retention_wins(r in record(), p in policy()) {
                let d = decide(&r, &p, 0, Trigger::Schedule);
                let matching = oracle_matching(&r, &p);
                let deadline = |rule: &RetentionRule| rule.keep.after(r.started_ms).unwrap_or(i64::MAX);
                let longest = matching.iter().map(|rule| deadline(rule)).max().unwrap();
                let winner = matching.iter().find(|rule| deadline(rule) == longest).unwrap();
                prop_assert_eq!(&d.rule, &winner.name);
                prop_assert_eq!(d.scope, winner.delete);
                // And nothing is purged before that deadline unless consent was denied.
                let denied = r.consent.as_ref().is_some_and(|c| c.state == ConsentState::Denied);
                for now in [longest.saturating_sub(1), r.started_ms] {
                    let d = decide(&r, &p, now, Trigger::Schedule);
                    if d.action == Action::Purge {
                        prop_assert!(denied, "purged before its retention: {:?}", d);
                    }
                }
            }

            #[test]
            fn moving_now_forward_never_undeletes(
                r in record(), p in policy(), now in 0i64..15 * YEAR, later in 0i64..15 * YEAR,
            ) {
                for trigger in [Trigger::Schedule, Trigger::DiskPressure, Trigger::Manual] {
                    let before = decide(&r, &p, now, trigger);
                    let after = decide(&r, &p, now + later, trigger);
                    if before.action == Action::Purge {
                        prop_assert_eq!(after.action, Action::Purge, "{:?} then {:?}", before, after);
                    }
                }
            }

            #[test]
            fn every_decision_has_a_reason(
                records in proptest::collection::vec(record(), 0..40), p in policy(), now in 0i64..15 * YEAR,
            ) {
                let decisions = plan(&records, &p, now);
                prop_assert_eq!(decisions.len(), records.len());
                for (d, r) in decisions.iter().zip(&records) {
                    prop_assert_eq!(d.id, r.id);
                    prop_assert!(!d.rule.is_empty());
                    let why = d.explain();
                    prop_assert!(why.len() > 10, "{}", why);
                    let consistent = match d.action {
                        Action::Purge => matches!(d.reason, Reason::Expired { .. } | Reason::ConsentDenied { .. }),
                        Action::Keep => matches!(d.reason, Reason::Retained { .. } | Reason::Held { .. } | Reason::Locked { .. }),
                        Action::Nothing => false,
                    };
                    prop_assert!(consistent, "{:?}", d);
                }
            }
        }
    }
}
