//! KPIs and report aggregates over recording summaries (pure: summaries in, tables out).
//!
//! Everything here folds [`Summary`] values one at a time into fixed-size accumulators, so a
//! year of calls is aggregated in one pass without holding it. Nothing reads the store, the
//! clock or the configuration: the caller passes what applies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::model::Grade;
use crate::config::ConsentLaw;
#[cfg(test)]
use crate::consent::lacks as lacks_consent;
use crate::consent::{covers, Lack};

/// What a recording lacks under its law (`law`: its own, or the default), from its summary.
pub fn lack_of(s: &Summary, law: ConsentLaw) -> Option<Lack> {
    crate::consent::lack(law, s.consent, s.notice, s.announced)
}
use crate::metadata::ConsentState;
use crate::record::RecordState;
use crate::summary::{scored, Summary};

const DAY_MS: i64 = 86_400_000;

/// How KPI rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row for the whole window.
    All,
    Day,
    Week,
    Agent,
    Queue,
}

/// The group a call falls in: a UTC day (`2026-11-30`), an ISO week (`2026-W48`), an agent or
/// a queue (`-` when the call has none).
pub fn group_key(s: &Summary, by: GroupBy) -> String {
    match by {
        GroupBy::All => "all".into(),
        GroupBy::Day => day(s.started_ms),
        GroupBy::Week => week(s.started_ms),
        GroupBy::Agent => s.agent.clone().unwrap_or_else(|| "-".into()),
        GroupBy::Queue => s.queue.clone().unwrap_or_else(|| "-".into()),
    }
}

fn date(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()
}

/// The UTC day of a time, `YYYY-MM-DD`.
pub fn day(ms: i64) -> String {
    date(ms).map_or_else(
        || format!("day {}", ms.div_euclid(DAY_MS)),
        |d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
    )
}

/// The ISO week of a time, `YYYY-Www`.
pub fn week(ms: i64) -> String {
    date(ms).map_or_else(
        || format!("day {}", ms.div_euclid(DAY_MS)),
        |d| {
            let (year, week, _) = d.to_iso_week_date();
            format!("{year:04}-W{week:02}")
        },
    )
}

/// Consent coverage of a set of calls under one law.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub recordings: u64,
    /// Granted or not required.
    pub covered: u64,
    /// Lacking what the law needs.
    pub lacking: u64,
    pub share_covered: Option<f64>,
}

impl Coverage {
    fn add(&mut self, consent: Option<ConsentState>, lack: Option<Lack>) {
        self.recordings += 1;
        if covers(consent) {
            self.covered += 1;
        }
        if lack.is_some() {
            self.lacking += 1;
        }
        self.share_covered = ratio(self.covered as f64, self.recordings as f64);
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| round(a / b, 4))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// One KPI row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiRow {
    pub group: String,
    /// Recordings the store holds for the group (purged ones are in the purge report).
    pub recordings: u64,
    pub analysed: u64,
    pub failed: u64,
    pub too_short: u64,
    pub share_analysed: Option<f64>,
    pub share_failed: Option<f64>,
    pub mean_score: Option<f64>,
    /// Share of scored calls graded poor or bad.
    pub share_poor_or_bad: Option<f64>,
    pub flags: BTreeMap<String, u64>,
    /// Mean duration: the handling-time proxy.
    pub mean_duration_s: Option<f64>,
    pub talk_s: f64,
    /// Hold music over the analysed recordings, seconds, and its mean per recording (talk + hold
    /// + wrap-up is the handling time call centres manage).
    #[serde(default)]
    pub hold_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_hold_s: Option<f64>,
    /// Share of the stereo calls' time in which nobody talked (hold, dead air).
    pub non_talk_share: Option<f64>,
    pub overtalk_s: f64,
    /// Share of recordings with granted or not-required consent.
    pub consent_coverage: Option<f64>,
    /// Coverage by the law that applies.
    pub consent_by_law: BTreeMap<String, Coverage>,
    /// The group's calls, from the call records (when the store holds any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<crate::calls::CoverageRow>,
}

#[derive(Debug, Default, Clone)]
struct Acc {
    row: KpiRow,
    score_sum: f64,
    scored: u64,
    poor: u64,
    duration_sum: f64,
    durations: u64,
    non_talk_sum: f64,
    conversation_time: f64,
    holds: u64,
    covered: u64,
}

impl Acc {
    fn add(&mut self, s: &Summary, default_law: ConsentLaw) {
        let r = &mut self.row;
        r.recordings += 1;
        match s.state {
            RecordState::Analysed => r.analysed += 1,
            RecordState::Failed => r.failed += 1,
            RecordState::TooShort => r.too_short += 1,
            RecordState::Missing | RecordState::Purged => {}
        }
        if let (Some(score), true) = (s.score, scored(s.state)) {
            self.score_sum += score as f64;
            self.scored += 1;
            if matches!(s.grade, Some(Grade::Poor | Grade::Bad)) {
                self.poor += 1;
            }
        }
        for f in &s.flags {
            *r.flags.entry(f.clone()).or_default() += 1;
        }
        if let Some(d) = s.duration_s {
            self.duration_sum += d;
            self.durations += 1;
            if let Some(nt) = s.non_talk_s {
                self.non_talk_sum += nt;
                self.conversation_time += d;
            }
        }
        r.talk_s += s.talk_s.unwrap_or(0.0);
        // Every analysed call counts in the mean hold, with or without one.
        if s.talk_s.is_some() && scored(s.state) {
            r.hold_s += s.hold_s.unwrap_or(0.0);
            self.holds += 1;
        }
        r.overtalk_s += s.overtalk_s.unwrap_or(0.0);
        let law = s.consent_law.unwrap_or(default_law);
        if covers(s.consent) {
            self.covered += 1;
        }
        r.consent_by_law
            .entry(law.as_str().to_string())
            .or_default()
            .add(s.consent, lack_of(s, law));
    }

    fn finish(mut self) -> KpiRow {
        let r = &mut self.row;
        let n = r.recordings as f64;
        r.share_analysed = ratio(r.analysed as f64, n);
        r.share_failed = ratio(r.failed as f64, n);
        r.mean_score = (self.scored > 0).then(|| round(self.score_sum / self.scored as f64, 1));
        r.share_poor_or_bad = ratio(self.poor as f64, self.scored as f64);
        r.mean_duration_s =
            (self.durations > 0).then(|| round(self.duration_sum / self.durations as f64, 1));
        r.non_talk_share = ratio(self.non_talk_sum, self.conversation_time);
        r.consent_coverage = ratio(self.covered as f64, n);
        r.mean_hold_s = (self.holds > 0).then(|| round(r.hold_s / self.holds as f64, 1));
        r.talk_s = round(r.talk_s, 1);
        r.hold_s = round(r.hold_s, 1);
        r.overtalk_s = round(r.overtalk_s, 1);
        self.row
    }
}

/// KPIs of a window, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpi {
    pub by: GroupBy,
    pub rows: Vec<KpiRow>,
    pub total: KpiRow,
}

/// Adds the calls' columns to KPI rows from a coverage digest: each row its group's calls, a
/// group with calls and no recording its own row, the total the total.
pub fn with_calls(mut k: Kpi, d: &crate::calls::Digest) -> Kpi {
    let by = k.by;
    let mut groups: BTreeMap<String, crate::calls::CoverageRow> = BTreeMap::new();
    let mut add =
        |key: String, row: &crate::calls::CoverageRow| groups.entry(key).or_default().absorb(row);
    match by {
        GroupBy::All => {}
        GroupBy::Day => d.by_day.iter().for_each(|(n, r)| add(day(n * DAY_MS), r)),
        GroupBy::Week => d.by_day.iter().for_each(|(n, r)| add(week(n * DAY_MS), r)),
        GroupBy::Agent => d.by_agent.iter().for_each(|(a, r)| add(a.clone(), r)),
        GroupBy::Queue => d.by_queue.iter().for_each(|(q, r)| add(q.clone(), r)),
    }
    let mut groups: BTreeMap<String, crate::calls::CoverageRow> = groups
        .into_iter()
        .map(|(k, r)| (k.clone(), r.named(k)))
        .collect();
    for row in &mut k.rows {
        row.calls = groups.remove(&row.group);
    }
    if by != GroupBy::All {
        for (group, calls) in groups {
            k.rows.push(KpiRow {
                group,
                calls: Some(calls),
                ..KpiRow::default()
            });
        }
        k.rows.sort_by(|a, b| a.group.cmp(&b.group));
    }
    k.total.calls = Some(d.total.clone().named("total".into()));
    k
}

/// Folds summaries into KPI rows (purged recordings are left out), rows in key order.
pub fn kpi(
    summaries: impl IntoIterator<Item = Summary>,
    by: GroupBy,
    default_law: ConsentLaw,
) -> Kpi {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for s in summaries {
        if s.state == RecordState::Purged {
            continue;
        }
        total.add(&s, default_law);
        if by != GroupBy::All {
            groups
                .entry(group_key(&s, by))
                .or_default()
                .add(&s, default_law);
        }
    }
    let mut total = total.finish();
    total.group = "total".into();
    let rows = groups
        .into_iter()
        .map(|(k, acc)| {
            let mut row = acc.finish();
            row.group = k;
            row
        })
        .collect();
    Kpi { by, rows, total }
}

/// One row of the consent report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsentRow {
    pub group: String,
    pub recordings: u64,
    pub granted: u64,
    pub denied: u64,
    pub unknown: u64,
    pub not_required: u64,
    /// No consent recorded at all.
    pub none: u64,
    /// Under all-party consent.
    pub all_party: u64,
    /// Under a law that needs notice (a recording announcement in the audio).
    #[serde(default)]
    pub notice: u64,
    pub lacking: u64,
    /// Lacking only the announcement their law's notice needs.
    #[serde(default)]
    pub no_announcement: u64,
    pub share_covered: Option<f64>,
}

impl ConsentRow {
    fn add(&mut self, s: &Summary, law: ConsentLaw) {
        let consent = s.consent;
        self.recordings += 1;
        match consent {
            Some(ConsentState::Granted) => self.granted += 1,
            Some(ConsentState::Denied) => self.denied += 1,
            Some(ConsentState::Unknown) => self.unknown += 1,
            Some(ConsentState::NotRequired) => self.not_required += 1,
            None => self.none += 1,
        }
        if law == ConsentLaw::AllParty {
            self.all_party += 1;
        }
        if s.notice {
            self.notice += 1;
        }
        match lack_of(s, law) {
            Some(Lack::Announcement { .. }) => {
                self.lacking += 1;
                self.no_announcement += 1;
            }
            Some(Lack::Consent) => self.lacking += 1,
            None => {}
        }
        self.share_covered = ratio(
            (self.granted + self.not_required) as f64,
            self.recordings as f64,
        );
    }
}

/// Consent coverage by day, queue and agent, and the calls lacking consent evidence where
/// their law needs it (at most `limit` of them listed; all are counted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsentReport {
    pub total: ConsentRow,
    pub by_day: Vec<ConsentRow>,
    pub by_queue: Vec<ConsentRow>,
    pub by_agent: Vec<ConsentRow>,
    pub lacking: Vec<Summary>,
    /// Why each listed call lacks what its law needs (`reasons[i]` for `lacking[i]`).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Lacking calls not listed (over the limit).
    pub lacking_not_listed: u64,
}

/// `within_s`: how far into a call the announcement is looked for (for the reasons).
pub fn consent_report(
    summaries: impl IntoIterator<Item = Summary>,
    default_law: ConsentLaw,
    within_s: f64,
    limit: usize,
) -> ConsentReport {
    let mut rep = ConsentReport::default();
    let (mut days, mut queues, mut agents) = (
        BTreeMap::<String, ConsentRow>::new(),
        BTreeMap::<String, ConsentRow>::new(),
        BTreeMap::<String, ConsentRow>::new(),
    );
    for s in summaries {
        if s.state == RecordState::Purged {
            continue;
        }
        let law = s.consent_law.unwrap_or(default_law);
        rep.total.add(&s, law);
        for (map, by) in [
            (&mut days, GroupBy::Day),
            (&mut queues, GroupBy::Queue),
            (&mut agents, GroupBy::Agent),
        ] {
            map.entry(group_key(&s, by)).or_default().add(&s, law);
        }
        if let Some(lack) = lack_of(&s, law) {
            if rep.lacking.len() < limit {
                rep.reasons.push(lack.reason(law, s.consent, within_s));
                rep.lacking.push(s);
            } else {
                rep.lacking_not_listed += 1;
            }
        }
    }
    let rows = |m: BTreeMap<String, ConsentRow>| {
        m.into_iter()
            .map(|(k, mut r)| {
                r.group = k;
                r
            })
            .collect()
    };
    rep.total.group = "total".into();
    rep.by_day = rows(days);
    rep.by_queue = rows(queues);
    rep.by_agent = rows(agents);
    rep
}

/// DTMF keyed into recordings where PCI DSS applies: how many hold card-length bursts, by
/// queue and agent, and which.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PciReport {
    /// The burst length that counts (`pci.min_digits`).
    pub min_digits: u32,
    pub total: PciRow,
    pub by_queue: Vec<PciRow>,
    pub by_agent: Vec<PciRow>,
    /// Recordings with a burst of at least `min_digits`, longest burst first.
    pub recordings: Vec<Summary>,
    pub not_listed: u64,
}

/// One row of the PCI report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PciRow {
    pub group: String,
    /// Recordings in the PCI scope.
    pub recordings: u64,
    /// With any DTMF, and with a burst of at least `min_digits`.
    pub with_dtmf: u64,
    pub with_bursts: u64,
    pub share_with_bursts: Option<f64>,
}

impl PciRow {
    fn add(&mut self, s: &Summary, min_digits: u32) {
        self.recordings += 1;
        if s.dtmf_digits > 0 {
            self.with_dtmf += 1;
        }
        if s.dtmf_burst >= min_digits {
            self.with_bursts += 1;
        }
        self.share_with_bursts = ratio(self.with_bursts as f64, self.recordings as f64);
    }
}

/// The PCI report over the recordings in `[pci]`'s scope (purged ones left out: their audio
/// is gone).
pub fn pci_report(
    summaries: impl IntoIterator<Item = Summary>,
    pci: &crate::config::PciConfig,
    limit: usize,
) -> PciReport {
    let mut rep = PciReport {
        min_digits: pci.min_digits,
        ..Default::default()
    };
    let (mut queues, mut agents) = (
        BTreeMap::<String, PciRow>::new(),
        BTreeMap::<String, PciRow>::new(),
    );
    let mut listed = Vec::new();
    for s in summaries {
        if s.state == RecordState::Purged || !crate::alerts::in_pci_scope(&s, pci) {
            continue;
        }
        rep.total.add(&s, pci.min_digits);
        queues
            .entry(group_key(&s, GroupBy::Queue))
            .or_default()
            .add(&s, pci.min_digits);
        agents
            .entry(group_key(&s, GroupBy::Agent))
            .or_default()
            .add(&s, pci.min_digits);
        if s.dtmf_burst >= pci.min_digits {
            listed.push(s);
        }
    }
    listed.sort_by(|a, b| b.dtmf_burst.cmp(&a.dtmf_burst).then(a.id.cmp(&b.id)));
    rep.not_listed = listed.len().saturating_sub(limit) as u64;
    listed.truncate(limit);
    rep.recordings = listed;
    let rows = |m: BTreeMap<String, PciRow>| {
        m.into_iter()
            .map(|(k, mut r)| {
                r.group = k;
                r
            })
            .collect()
    };
    rep.total.group = "total".into();
    rep.by_queue = rows(queues);
    rep.by_agent = rows(agents);
    rep
}

/// The quality report: the score distribution, the trend by day, flags, the worst calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub scored: u64,
    pub mean_score: Option<f64>,
    /// Calls per score band: `[0,10)`, `[10,20)`, … `[90,100]`.
    pub distribution: Vec<u64>,
    pub grades: BTreeMap<String, u64>,
    /// Mean score and count by UTC day.
    pub trend: Vec<TrendPoint>,
    pub flags: BTreeMap<String, u64>,
    pub worst: Vec<Summary>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub day: String,
    pub calls: u64,
    pub mean_score: f64,
}

pub fn quality_report(summaries: impl IntoIterator<Item = Summary>, worst: usize) -> QualityReport {
    let mut rep = QualityReport {
        distribution: vec![0; 10],
        ..QualityReport::default()
    };
    let mut days: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut sum = 0.0;
    // The worst calls: kept sorted, at most `worst` (score, then time).
    let mut low: Vec<Summary> = Vec::new();
    for s in summaries {
        let Some(score) = s.score.filter(|_| scored(s.state)) else {
            continue;
        };
        rep.scored += 1;
        sum += score as f64;
        rep.distribution[(score as usize / 10).min(9)] += 1;
        if let Some(g) = s.grade {
            *rep.grades.entry(g.as_str().to_string()).or_default() += 1;
        }
        for f in &s.flags {
            *rep.flags.entry(f.clone()).or_default() += 1;
        }
        let d = days.entry(day(s.started_ms)).or_default();
        d.0 += 1;
        d.1 += score as f64;
        if worst > 0 && (low.len() < worst || low.last().is_some_and(|w| w.score > Some(score))) {
            let at = low.partition_point(|w| w.score <= Some(score));
            low.insert(at, s);
            low.truncate(worst);
        }
    }
    rep.mean_score = (rep.scored > 0).then(|| round(sum / rep.scored as f64, 1));
    rep.trend = days
        .into_iter()
        .map(|(day, (calls, total))| TrendPoint {
            day,
            calls,
            mean_score: round(total / calls as f64, 1),
        })
        .collect();
    rep.worst = low;
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, day: i64, score: Option<u32>, consent: Option<ConsentState>) -> Summary {
        Summary {
            state: if score.is_some() {
                RecordState::Analysed
            } else {
                RecordState::Failed
            },
            started_ms: 1_764_460_800_000 + day * DAY_MS, // 2025-11-30T00:00:00Z
            duration_s: Some(60.0),
            score,
            grade: score.map(|s| match s {
                80.. => Grade::Good,
                60..=79 => Grade::Fair,
                40..=59 => Grade::Poor,
                _ => Grade::Bad,
            }),
            flags: if score.is_some_and(|s| s < 50) {
                vec!["low_snr".into()]
            } else {
                vec![]
            },
            agent: Some(if id.is_multiple_of(2) { "alice" } else { "bob" }.into()),
            queue: None,
            consent,
            consent_law: Some(ConsentLaw::AllParty),
            talk_s: Some(40.0),
            hold_s: score.map(|_| id as f64 * 10.0),
            non_talk_s: Some(6.0),
            overtalk_s: Some(1.5),
            ..Summary::blank(id, &format!("/r/{id}.wav"))
        }
    }

    #[test]
    fn days_and_iso_weeks() {
        assert_eq!(day(1_764_460_800_000), "2025-11-30");
        assert_eq!(week(1_764_460_800_000), "2025-W48");
        assert_eq!(week(1_767_225_600_000), "2026-W01"); // 2026-01-01 is in ISO week 1
    }

    #[test]
    fn kpi_rows_add_up() {
        let calls = vec![
            call(1, 0, Some(90), Some(ConsentState::Granted)),
            call(2, 0, Some(40), None),
            call(3, 1, None, Some(ConsentState::NotRequired)),
            call(4, 1, Some(70), Some(ConsentState::Denied)),
        ];
        let k = kpi(calls, GroupBy::Day, ConsentLaw::OneParty);
        assert_eq!(k.rows.len(), 2);
        assert_eq!(k.rows[0].group, "2025-11-30");
        assert_eq!(k.total.recordings, 4);
        assert_eq!(k.total.analysed, 3);
        assert_eq!(k.total.share_failed, Some(0.25));
        assert_eq!(k.total.mean_score, Some(66.7));
        assert_eq!(k.total.share_poor_or_bad, Some(0.3333));
        assert_eq!(k.total.flags["low_snr"], 1);
        assert_eq!(k.total.non_talk_share, Some(0.1));
        // Hold over the three analysed calls (10, 20 and 40 s); the failed one has none.
        assert_eq!(k.total.hold_s, 70.0);
        assert_eq!(k.total.mean_hold_s, Some(23.3));
        assert_eq!(k.rows[1].mean_hold_s, Some(40.0));
        assert_eq!(k.total.consent_coverage, Some(0.5));
        let all = &k.total.consent_by_law["all_party"];
        assert_eq!((all.recordings, all.covered, all.lacking), (4, 2, 2));
    }

    #[test]
    fn consent_lacking_follows_the_law() {
        assert!(lacks_consent(ConsentLaw::AllParty, None));
        assert!(lacks_consent(
            ConsentLaw::AllParty,
            Some(ConsentState::Unknown)
        ));
        assert!(!lacks_consent(ConsentLaw::OneParty, None));
        assert!(lacks_consent(
            ConsentLaw::OneParty,
            Some(ConsentState::Denied)
        ));
        let calls = (0..10).map(|i| call(i, 0, Some(80), None));
        let r = consent_report(calls, ConsentLaw::OneParty, 30.0, 3);
        assert_eq!(r.total.lacking, 10);
        assert_eq!((r.lacking.len(), r.lacking_not_listed), (3, 7));
        assert_eq!(r.by_agent.len(), 2);
    }

    #[test]
    fn quality_keeps_the_worst_in_order() {
        let calls = [55, 90, 12, 70, 12, 99, 30]
            .iter()
            .enumerate()
            .map(|(i, &s)| call(i as u64, i as i64 % 2, Some(s), None));
        let q = quality_report(calls, 3);
        let worst: Vec<(u64, Option<u32>)> = q.worst.iter().map(|s| (s.id, s.score)).collect();
        assert_eq!(worst, vec![(2, Some(12)), (4, Some(12)), (6, Some(30))]);
        assert_eq!(q.scored, 7);
        assert_eq!(q.distribution.iter().sum::<u64>(), 7);
        assert_eq!(q.distribution[9], 2);
        assert_eq!(q.trend.len(), 2);
    }
}
