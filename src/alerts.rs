//! Alerts: which recordings and system conditions raise one, and the gate that keeps one bad
//! trunk from raising ten thousand (pure: values and times in, decisions out).
//!
//! A rule (`[[alerts.rule]]`) watches either recordings (a score below a threshold, any of some
//! flags, consent denied or missing where the law needs it) or one system condition (the ingest
//! failure rate, low disk, an overdue purge, a failed audit check). Every alert that passes the
//! [`Gate`] is logged and handed to the configured actions ([`crate::dispatch`]). The gate
//! deduplicates (one alert per rule and subject per `repeat_s`) and rate-limits (at most
//! `max_per_hour` per rule); what it holds back is counted, never silently lost.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::calls::{CallState, Matching};
use crate::config::{
    AlertRule, AlertsConfig, CallAlert, ConsentAlert, ConsentLaw, PciConfig, SystemCondition,
};
use crate::metadata::ConsentState;
use crate::summary::Summary;

/// One alert, as logged and as sent (JSON) to commands and webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    /// `recording` or `system`.
    pub kind: String,
    pub severity: String,
    pub message: String,
    /// RFC 3339.
    pub time: String,
    /// What the alert is about: a recording id, or the condition (and root).
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Summary>,
}

/// The alerts a recording raises under `rules`.
pub fn for_recording(
    rules: &[AlertRule],
    s: &Summary,
    default_law: ConsentLaw,
    pci: &PciConfig,
    time: &str,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| r.system.is_none()) {
        let mut why = Vec::new();
        if let (Some(below), Some(score)) = (rule.score_below, s.score) {
            if score < below {
                why.push(format!("score {score} below {below}"));
            }
        }
        let flagged: Vec<&String> = s.flags.iter().filter(|f| rule.flags.contains(f)).collect();
        if !flagged.is_empty() {
            why.push(format!(
                "flags {}",
                flagged
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let law = s.consent_law.unwrap_or(default_law);
        for c in &rule.consent {
            match c {
                ConsentAlert::Denied if s.consent == Some(ConsentState::Denied) => {
                    why.push("consent denied".into())
                }
                ConsentAlert::Missing
                    if law == ConsentLaw::AllParty
                        && s.consent != Some(ConsentState::Denied)
                        && !crate::consent::covers(s.consent) =>
                {
                    why.push("consent missing where all-party consent is needed".into())
                }
                ConsentAlert::NoAnnouncement if s.notice && s.announced != Some(true) => {
                    why.push("no recording announcement where the law needs notice".into())
                }
                ConsentAlert::AnnouncementDisputed
                    if s.sidecar_announced && s.announced == Some(false) =>
                {
                    why.push(
                        "the sidecar says consent came from an announcement; the audio holds none"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        if rule.pci && in_pci_scope(s, pci) && s.dtmf_burst >= pci.min_digits {
            why.push(format!(
                "a burst of {} DTMF digits (card data?) where PCI DSS applies",
                s.dtmf_burst
            ));
        }
        if !why.is_empty() {
            out.push(Alert {
                rule: rule.name.clone(),
                kind: "recording".into(),
                severity: rule.severity.clone(),
                message: format!("recording {} ({}): {}", s.id, s.path, why.join("; ")),
                time: time.to_string(),
                subject: format!("recording {}", s.id),
                recording: Some(s.clone()),
            });
        }
    }
    out
}

/// Whether a recording is in `[pci]`'s scope: its queues or tags (both empty: every one).
pub fn in_pci_scope(s: &Summary, pci: &PciConfig) -> bool {
    (pci.queue.is_empty() && pci.tag.is_empty())
        || s.queue.as_ref().is_some_and(|q| pci.queue.contains(q))
        || s.tags.iter().any(|t| pci.tag.contains(t))
}

/// The state of the system that system rules judge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemState {
    /// Recordings processed and failed over the last hour.
    pub processed_1h: usize,
    pub failed_1h: usize,
    /// Each root with its free share, and the configured threshold.
    pub disk_free: Vec<(String, f64)>,
    pub min_free_ratio: f64,
    /// How long since the last successful purge (or since start, if none), and the interval.
    pub since_purge_s: f64,
    pub purge_interval_s: f64,
    /// Breaks the last audit chain check found.
    pub audit_breaks: usize,
    /// The export outbox: events waiting, its bound, and whether it overflowed.
    pub export_backlog: u64,
    pub export_max_backlog: u64,
    pub export_overflowed: bool,
    /// Why the exporter refuses to send, if it does.
    pub export_refused: Option<String>,
}

/// The alerts the system raises under `rules`.
pub fn for_system(rules: &[AlertRule], s: &SystemState, time: &str) -> Vec<Alert> {
    let mut out = Vec::new();
    let alert = |rule: &AlertRule, subject: String, message: String| Alert {
        rule: rule.name.clone(),
        kind: "system".into(),
        severity: rule.severity.clone(),
        message,
        time: time.to_string(),
        subject,
        recording: None,
    };
    for rule in rules {
        // A handful of files is no rate: wait for ten.
        let rate = (s.processed_1h >= 10).then(|| s.failed_1h as f64 / s.processed_1h as f64);
        match rule.system {
            Some(SystemCondition::IngestFailureRate)
                if rate.is_some_and(|r| r > rule.failure_rate_above) =>
            {
                out.push(alert(
                    rule,
                    "ingest_failure_rate".into(),
                    format!(
                        "{} of {} recordings failed in the last hour ({:.0}%, above {:.0}%)",
                        s.failed_1h,
                        s.processed_1h,
                        rate.unwrap_or(0.0) * 100.0,
                        rule.failure_rate_above * 100.0
                    ),
                ));
            }
            Some(SystemCondition::DiskLow) => {
                for (root, free) in &s.disk_free {
                    if *free < s.min_free_ratio {
                        out.push(alert(
                            rule,
                            format!("disk_low {root}"),
                            format!(
                                "{root}: {:.2}% free, below {:.2}%",
                                free * 100.0,
                                s.min_free_ratio * 100.0
                            ),
                        ));
                    }
                }
            }
            Some(SystemCondition::PurgeOverdue)
                if s.purge_interval_s > 0.0
                    && s.since_purge_s > 2.0 * s.purge_interval_s + 60.0 =>
            {
                out.push(alert(
                    rule,
                    "purge_overdue".into(),
                    format!(
                        "no successful purge for {:.0} s (every {:.0} s expected)",
                        s.since_purge_s, s.purge_interval_s
                    ),
                ));
            }
            Some(SystemCondition::ExportBacklog)
                if s.export_overflowed
                    || (s.export_max_backlog > 0
                        && s.export_backlog * 5 > s.export_max_backlog * 4) =>
            {
                out.push(alert(
                    rule,
                    "export_backlog".into(),
                    if s.export_overflowed {
                        format!(
                            "the export outbox reached export.max_backlog ({}): the site will be \
                             sent again whole once the central database takes it",
                            s.export_max_backlog
                        )
                    } else {
                        format!(
                            "{} events wait for the central database ({:.0}% of \
                             export.max_backlog)",
                            s.export_backlog,
                            100.0 * s.export_backlog as f64 / s.export_max_backlog as f64
                        )
                    },
                ));
            }
            Some(SystemCondition::ExportRefused) => {
                if let Some(why) = &s.export_refused {
                    out.push(alert(rule, "export_refused".into(), why.clone()));
                }
            }
            Some(SystemCondition::AuditVerifyFailed) if s.audit_breaks > 0 => {
                out.push(alert(
                    rule,
                    "audit_verify_failed".into(),
                    format!(
                        "the audit chain check found {} break(s): run `callwarden audit verify`",
                        s.audit_breaks
                    ),
                ));
            }
            _ => {}
        }
    }
    out
}

/// The alerts calls raise under `rules`: each call of `m` missing its recording or recorded
/// short (the caller passes each call once), and the coverage of the last day below a floor.
pub fn for_calls(
    rules: &[AlertRule],
    m: &Matching,
    coverage_24h: Option<f64>,
    time: &str,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for rule in rules {
        let alert = |subject: String, message: String| Alert {
            rule: rule.name.clone(),
            kind: "call".into(),
            severity: rule.severity.clone(),
            message,
            time: time.to_string(),
            subject,
            recording: None,
        };
        for c in &m.calls {
            let src = c.legs.first().map_or("", |l| l.src.as_str());
            let dst = c.legs.first().map_or("", |l| l.dst.as_str());
            let started = crate::policy::fmt_ms(c.start_ms);
            match c.state {
                CallState::Missing if rule.calls.contains(&CallAlert::MissingRecording) => out
                    .push(alert(
                        c.call.clone(),
                        format!(
                            "call {} ({src} -> {dst}, {started}, {:.0} s billed) has no recording",
                            c.call, c.billable_s
                        ),
                    )),
                CallState::Short if rule.calls.contains(&CallAlert::RecordingShort) => {
                    out.push(alert(
                        c.call.clone(),
                        format!(
                            "call {} ({src} -> {dst}, {started}) is recorded for {:.0}% of its \
                             {:.0} s",
                            c.call,
                            c.coverage.unwrap_or(0.0) * 100.0,
                            c.billable_s
                        ),
                    ))
                }
                _ => {}
            }
        }
        if let (Some(floor), Some(coverage)) = (rule.coverage_below, coverage_24h) {
            if coverage < floor {
                out.push(alert(
                    "coverage".into(),
                    format!(
                        "{:.1}% of the last 24 hours' calls to record were recorded, below {:.1}%",
                        coverage * 100.0,
                        floor * 100.0
                    ),
                ));
            }
        }
    }
    out
}

/// Whether an alert goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// The same rule and subject alerted less than `repeat_s` ago.
    Duplicate,
    /// The rule reached `max_per_hour`.
    RateLimited,
}

/// Deduplication and rate limiting, by rule and subject. Times in milliseconds.
#[derive(Debug, Default)]
pub struct Gate {
    last: HashMap<(String, String), i64>,
    sent: HashMap<String, VecDeque<i64>>,
}

impl Gate {
    pub fn admit(&mut self, alert: &Alert, cfg: &AlertsConfig, now_ms: i64) -> Verdict {
        let repeat_ms = (cfg.repeat_s * 1000.0) as i64;
        let key = (alert.rule.clone(), alert.subject.clone());
        if self.last.get(&key).is_some_and(|&t| now_ms - t < repeat_ms) {
            return Verdict::Duplicate;
        }
        let window = self.sent.entry(alert.rule.clone()).or_default();
        while window.front().is_some_and(|&t| now_ms - t >= 3_600_000) {
            window.pop_front();
        }
        if window.len() >= cfg.max_per_hour as usize {
            return Verdict::RateLimited;
        }
        window.push_back(now_ms);
        self.last.insert(key, now_ms);
        // Forget subjects whose repeat window has passed, so the map stays small.
        if self.last.len() > 100_000 {
            self.last.retain(|_, t| now_ms - *t < repeat_ms);
        }
        Verdict::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> AlertRule {
        AlertRule {
            name: name.into(),
            ..AlertRule::default()
        }
    }

    fn call(id: u64, score: u32, flags: &[&str], consent: Option<ConsentState>) -> Summary {
        Summary {
            duration_s: Some(60.0),
            score: Some(score),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            consent,
            consent_law: Some(ConsentLaw::AllParty),
            ..Summary::blank(id, &format!("/r/{id}.wav"))
        }
    }

    #[test]
    fn notice_disputed_announcements_and_card_digits_alert() {
        let rules = vec![
            AlertRule {
                consent: vec![ConsentAlert::NoAnnouncement],
                ..rule("notice")
            },
            AlertRule {
                consent: vec![ConsentAlert::AnnouncementDisputed],
                ..rule("disputed")
            },
            AlertRule {
                pci: true,
                ..rule("pci")
            },
        ];
        let pci = PciConfig {
            queue: vec!["payments".into()],
            ..PciConfig::default()
        };
        let names = |s: &Summary| -> Vec<String> {
            for_recording(&rules, s, ConsentLaw::OneParty, &pci, "t")
                .into_iter()
                .map(|a| a.rule)
                .collect()
        };
        let mut s = call(1, 90, &[], Some(ConsentState::Granted));
        assert!(names(&s).is_empty());
        // Notice law, no announcement heard; the sidecar claims one.
        s.notice = true;
        s.announced = Some(false);
        s.sidecar_announced = true;
        assert_eq!(names(&s), ["notice", "disputed"]);
        s.announced = Some(true);
        assert!(names(&s).is_empty());
        // Sixteen digits in a payments call; four in another queue; three in payments.
        s.dtmf_digits = 16;
        s.dtmf_burst = 16;
        s.queue = Some("payments".into());
        assert_eq!(names(&s), ["pci"]);
        s.queue = Some("sales".into());
        assert!(names(&s).is_empty());
        s.queue = Some("payments".into());
        s.dtmf_burst = 3;
        assert!(names(&s).is_empty());
    }

    #[test]
    fn recording_rules_match_score_flags_and_consent() {
        let rules = vec![
            AlertRule {
                score_below: Some(50),
                ..rule("poor")
            },
            AlertRule {
                flags: vec!["clipping".into()],
                ..rule("clip")
            },
            AlertRule {
                consent: vec![ConsentAlert::Denied, ConsentAlert::Missing],
                ..rule("consent")
            },
        ];
        let law = ConsentLaw::OneParty;
        let names = |s: &Summary| -> Vec<String> {
            for_recording(&rules, s, law, &PciConfig::default(), "t")
                .into_iter()
                .map(|a| a.rule)
                .collect()
        };
        assert_eq!(
            names(&call(1, 90, &[], Some(ConsentState::Granted))),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&call(2, 30, &["clipping"], Some(ConsentState::Granted))),
            ["poor", "clip"]
        );
        assert_eq!(
            names(&call(3, 90, &[], Some(ConsentState::Denied))),
            ["consent"]
        );
        assert_eq!(names(&call(4, 90, &[], None)), ["consent"]);
        let a = &for_recording(
            &rules,
            &call(2, 30, &["clipping"], None),
            law,
            &PciConfig::default(),
            "t",
        )[0];
        assert!(a.message.contains("score 30 below 50"), "{}", a.message);
    }

    #[test]
    fn system_rules_judge_rates_disk_purges_and_the_chain() {
        let rules = vec![
            AlertRule {
                system: Some(SystemCondition::IngestFailureRate),
                failure_rate_above: 0.2,
                ..rule("failing")
            },
            AlertRule {
                system: Some(SystemCondition::DiskLow),
                ..rule("disk")
            },
            AlertRule {
                system: Some(SystemCondition::PurgeOverdue),
                ..rule("purge")
            },
            AlertRule {
                system: Some(SystemCondition::AuditVerifyFailed),
                ..rule("audit")
            },
            AlertRule {
                system: Some(SystemCondition::ExportBacklog),
                ..rule("backlog")
            },
            AlertRule {
                system: Some(SystemCondition::ExportRefused),
                ..rule("refused")
            },
        ];
        let calm = SystemState {
            processed_1h: 100,
            failed_1h: 10,
            disk_free: vec![("/r".into(), 0.5)],
            min_free_ratio: 0.05,
            since_purge_s: 3000.0,
            purge_interval_s: 3600.0,
            audit_breaks: 0,
            export_backlog: 800,
            export_max_backlog: 1000,
            export_overflowed: false,
            export_refused: None,
        };
        assert!(for_system(&rules, &calm, "t").is_empty());
        let bad = SystemState {
            failed_1h: 30,
            disk_free: vec![("/r".into(), 0.01)],
            since_purge_s: 8000.0,
            audit_breaks: 1,
            export_backlog: 801,
            export_refused: Some("site s: the store is an older copy".into()),
            ..calm.clone()
        };
        let fired = for_system(&rules, &bad, "t");
        let names: Vec<&str> = fired.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(
            names,
            ["failing", "disk", "purge", "audit", "backlog", "refused"]
        );
        assert!(fired[4].message.contains("80%"), "{}", fired[4].message);
        let overflowed = SystemState {
            export_backlog: 1000,
            export_overflowed: true,
            ..calm
        };
        let fired = for_system(&rules, &overflowed, "t");
        assert!(fired[0].message.contains("sent again whole"), "{fired:?}");
    }

    #[test]
    fn the_gate_deduplicates_and_rate_limits() {
        let cfg = AlertsConfig {
            repeat_s: 60.0,
            max_per_hour: 3,
            ..AlertsConfig::default()
        };
        let mut gate = Gate::default();
        let alert = |subject: &str| Alert {
            rule: "r".into(),
            kind: "recording".into(),
            severity: "warn".into(),
            message: String::new(),
            time: String::new(),
            subject: subject.into(),
            recording: None,
        };
        assert_eq!(gate.admit(&alert("a"), &cfg, 0), Verdict::Send);
        assert_eq!(gate.admit(&alert("a"), &cfg, 30_000), Verdict::Duplicate);
        assert_eq!(gate.admit(&alert("a"), &cfg, 61_000), Verdict::Send);
        assert_eq!(gate.admit(&alert("b"), &cfg, 62_000), Verdict::Send);
        assert_eq!(gate.admit(&alert("c"), &cfg, 63_000), Verdict::RateLimited);
        // An hour after the first, the window has room again.
        assert_eq!(gate.admit(&alert("c"), &cfg, 3_600_001), Verdict::Send);
    }
}
