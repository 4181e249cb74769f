//! Calls and their recordings (pure): the PBX's call records grouped into calls, each matched
//! with the recordings that belong to it, and judged: recorded, short, missing, pending, or not
//! required; recordings that match no call are orphans, those that match several ambiguous.
//!
//! A call is the CDR rows that share a call key (Asterisk's `linkedid`, FreeSWITCH's bridge
//! uuid, else the row's own id): both legs, the `r()`/`t()` files, the pieces of a transfer.
//! A recording is matched by the strongest key it carries: its sidecar's `call_id`, or a token
//! of its file name (`-`, `_` or space apart) that is a leg's or a call's id; only a recording
//! with no key is matched by time (it started, or was last written, within the call, give or
//! take `calls.match_tolerance_s`), and only when exactly one call fits. Nothing is guessed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::cdr::{CallRecord, Disposition};
use crate::config::{CallsConfig, ConsentLaw};
use crate::metadata::ConsentState;
use crate::record::RecordState;
use crate::summary::Summary;

/// What a call's recording tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Recorded for at least `short_ratio` of its billable time.
    Recorded,
    /// Recorded, but for less than `short_ratio` of its billable time.
    Short,
    /// Should have a recording and has none, `grace_s` after it ended.
    Missing,
    /// Should have a recording and has none yet, within `grace_s`.
    Pending,
    /// No recording is required (not answered, too short, or a rule says so).
    NotRequired,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Recorded => "recorded",
            CallState::Short => "short",
            CallState::Missing => "missing",
            CallState::Pending => "pending",
            CallState::NotRequired => "not_required",
        }
    }
}

/// How a recording was tied to its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The sidecar's call id.
    CallId,
    /// A leg's or the call's id in the file name.
    FileName,
    /// Time alone (the recording carried no key).
    Time,
}

/// One recording of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecording {
    pub id: u64,
    pub path: String,
    pub matched_by: MatchedBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u32>,
    pub state: RecordState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentState>,
    pub on_demand: bool,
}

/// A call with its legs, its recordings and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    /// The call key (linked id, else the leg's id).
    pub call: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Billable seconds: the answered time of its legs, overlaps counted once.
    pub billable_s: f64,
    pub disposition: Disposition,
    pub must_record: bool,
    pub state: CallState,
    /// Share of the billable time the recordings cover (none: nothing billable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Recorded with the consent its law needs (none: not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The recordings' queue, else the one the call records name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// From the call records (see [`CallsConfig::direction`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<crate::metadata::Direction>,
    pub legs: Vec<CallRecord>,
    pub recordings: Vec<CallRecording>,
}

/// A recording that matches no call, or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmatched {
    pub id: u64,
    pub path: String,
    pub started_ms: i64,
    /// The calls it could be (empty: an orphan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

/// Calls and recordings matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Matching {
    pub calls: Vec<CallView>,
    pub orphans: Vec<Unmatched>,
    pub ambiguous: Vec<Unmatched>,
}

/// The keys a recording's file name may carry for its call: its stem, and the stem's parts
/// between `-`, `_` and spaces.
pub fn name_keys(path: &crate::recording_path::RecordingPath) -> Vec<String> {
    let mut keys: Vec<String> = name_tokens(&stem_of(path)).map(String::from).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn stem_of(path: &crate::recording_path::RecordingPath) -> String {
    path.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// [`name_keys`] of a stem, unsorted, possibly repeated.
fn name_tokens(stem: &str) -> impl Iterator<Item = &str> {
    std::iter::once(stem)
        .chain(stem.split(['-', '_', ' ']))
        .filter(|k| !k.is_empty())
}

/// Every key a recording may carry for its call: its sidecar's call id and its name's keys.
pub fn recording_keys(s: &Summary) -> Vec<String> {
    let mut keys = name_keys(&s.path);
    if let Some(c) = s.call_id.as_deref().filter(|c| !c.is_empty()) {
        keys.push(c.to_string());
        keys.sort();
        keys.dedup();
    }
    keys
}

/// Matches recordings (their summaries) to the calls the CDR rows make, as of `now_ms`.
/// Purged recordings count for their call (the call was recorded) but are not matched as
/// orphans.
pub fn match_calls(
    legs: impl IntoIterator<Item = CallRecord>,
    recordings: impl IntoIterator<Item = Summary>,
    config: &CallsConfig,
    default_law: ConsentLaw,
    now_ms: i64,
) -> Matching {
    match_calls_with(legs, recordings, &|_| None, config, default_law, now_ms)
}

/// [`match_calls`] over part of the calls: `elsewhere` names the call (its key) that a key a
/// recording carries belongs to when that call is not among `legs`. A recording whose key
/// names such a call belongs to it: it is neither matched here nor an orphan.
pub fn match_calls_with(
    legs: impl IntoIterator<Item = CallRecord>,
    recordings: impl IntoIterator<Item = Summary>,
    elsewhere: &dyn Fn(&str) -> Option<String>,
    config: &CallsConfig,
    default_law: ConsentLaw,
    now_ms: i64,
) -> Matching {
    // Calls from their legs.
    let mut by_key: BTreeMap<String, Vec<CallRecord>> = BTreeMap::new();
    for leg in legs {
        by_key
            .entry(leg.call_key().to_string())
            .or_default()
            .push(leg);
    }
    let keys: Vec<String> = by_key.keys().cloned().collect();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, (key, legs)) in by_key.iter().enumerate() {
        ids.insert(key.as_str(), i);
        for leg in legs {
            ids.insert(leg.id.as_str(), i);
        }
    }
    // Calls by start, for matching by time.
    let spans: Vec<(i64, i64)> = by_key
        .values()
        .map(|legs| {
            (
                legs.iter().map(|l| l.start_ms).min().unwrap_or(0),
                legs.iter().map(|l| l.end_ms).max().unwrap_or(0),
            )
        })
        .collect();
    let mut by_start: Vec<usize> = (0..spans.len()).collect();
    by_start.sort_by_key(|&i| spans[i].0);
    let longest_ms = spans.iter().map(|(s, e)| e - s).max().unwrap_or(0);
    let tolerance_ms = (config.match_tolerance_s * 1000.0) as i64;

    let mut matched: Vec<Vec<(Summary, MatchedBy)>> = vec![Vec::new(); keys.len()];
    let mut m = Matching::default();
    for s in recordings {
        let call_id = s.call_id.as_deref().filter(|c| !c.is_empty());
        let by_id = call_id
            .and_then(|c| ids.get(c))
            .map(|&i| (i, MatchedBy::CallId));
        // The calls the keys name: here (by index) or elsewhere (by key).
        let by_name = || {
            let mut here: HashSet<usize> = HashSet::new();
            let mut away: HashSet<String> = HashSet::new();
            let stem = stem_of(&s.path);
            for k in name_tokens(&stem) {
                match ids.get(k) {
                    Some(&i) => {
                        here.insert(i);
                    }
                    None => away.extend(elsewhere(k)),
                }
            }
            (here, away)
        };
        let target = match by_id {
            Some(hit) => Ok(hit),
            None if call_id.and_then(elsewhere).is_some() => continue,
            None => {
                let (here, away) = by_name();
                match (here.len(), away.len()) {
                    (1, 0) => Ok((*here.iter().next().unwrap_or(&0), MatchedBy::FileName)),
                    (0, 1) => continue,
                    (0, 0) => {
                        let fits = time_fits(&spans, &by_start, longest_ms, tolerance_ms, &s);
                        match fits.as_slice() {
                            [one] => Ok((*one, MatchedBy::Time)),
                            many => Err(many.iter().map(|&i| keys[i].clone()).collect()),
                        }
                    }
                    _ => Err(here
                        .into_iter()
                        .map(|i| keys[i].clone())
                        .chain(away)
                        .collect::<Vec<String>>()),
                }
            }
        };
        match target {
            Ok((i, how)) => matched[i].push((s, how)),
            Err(_) if s.state == RecordState::Purged => {}
            Err(mut candidates) => {
                candidates.sort();
                let u = Unmatched {
                    id: s.id,
                    path: s.path.to_string(),
                    started_ms: s.started_ms,
                    candidates,
                };
                if u.candidates.is_empty() {
                    m.orphans.push(u);
                } else {
                    m.ambiguous.push(u);
                }
            }
        }
    }
    for ((key, legs), recordings) in by_key.into_iter().zip(matched) {
        m.calls
            .push(judge(key, legs, recordings, config, default_law, now_ms));
    }
    m.calls
        .sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.call.cmp(&b.call)));
    m.orphans.sort_by_key(|u| (u.started_ms, u.id));
    m.ambiguous.sort_by_key(|u| (u.started_ms, u.id));
    m
}

/// The calls a recording with no key fits in time: it started, or was last written (a
/// recording's time is its file's when no sidecar gives the start), within the call.
fn time_fits(
    spans: &[(i64, i64)],
    by_start: &[usize],
    longest_ms: i64,
    tolerance_ms: i64,
    s: &Summary,
) -> Vec<usize> {
    let t = s.started_ms;
    let from = t - longest_ms - tolerance_ms;
    let first = by_start.partition_point(|&i| spans[i].0 < from);
    by_start[first..]
        .iter()
        .take_while(|&&i| spans[i].0 <= t + tolerance_ms)
        .copied()
        .filter(|&i| {
            let (start, end) = spans[i];
            start - tolerance_ms <= t && t <= end + tolerance_ms
        })
        .collect()
}

fn judge(
    call: String,
    mut legs: Vec<CallRecord>,
    recordings: Vec<(Summary, MatchedBy)>,
    config: &CallsConfig,
    default_law: ConsentLaw,
    now_ms: i64,
) -> CallView {
    legs.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.id.cmp(&b.id)));
    let start_ms = legs.iter().map(|l| l.start_ms).min().unwrap_or(0);
    let end_ms = legs.iter().map(|l| l.end_ms).max().unwrap_or(0);
    // Answered time, overlapping legs counted once; a leg without an answer time is billed
    // back from its end.
    let answered: Vec<(i64, i64)> = legs
        .iter()
        .filter(|l| l.billsec > 0)
        .map(|l| {
            let from = l
                .answer_ms
                .unwrap_or(l.end_ms - i64::from(l.billsec) * 1000);
            (from, l.end_ms.max(from))
        })
        .collect();
    let billable_s = union_ms(answered) as f64 / 1000.0;
    let disposition = if legs.iter().any(|l| l.disposition == Disposition::Answered) {
        Disposition::Answered
    } else {
        legs.first()
            .map_or(Disposition::NoAnswer, |l| l.disposition)
    };
    let direction = config.direction(&legs);
    let must_record = config.must_record(&legs, billable_s, direction);
    let live: Vec<&(Summary, MatchedBy)> = recordings.iter().collect();
    // Coverage: the recordings' time, overlaps once, over the billable time.
    let covered_ms = union_ms(
        live.iter()
            .filter_map(|(s, _)| {
                s.duration_s
                    .map(|d| (s.started_ms, s.started_ms + (d * 1000.0) as i64))
            })
            .collect(),
    );
    let coverage = (billable_s > 0.0 && !live.is_empty())
        .then(|| (covered_ms as f64 / 1000.0 / billable_s).min(1.0));
    let state = if !live.is_empty() {
        match coverage {
            Some(c) if c < config.short_ratio => CallState::Short,
            _ => CallState::Recorded,
        }
    } else if !must_record {
        CallState::NotRequired
    } else if now_ms < end_ms + (config.grace_s * 1000.0) as i64 {
        CallState::Pending
    } else {
        CallState::Missing
    };
    let first = recordings.first().map(|(s, _)| s);
    let agent = recordings.iter().find_map(|(s, _)| s.agent.clone());
    let queue = recordings
        .iter()
        .find_map(|(s, _)| s.queue.clone())
        .or_else(|| legs.iter().find_map(|l| l.queue.clone()));
    let lawful = first.map(|_| {
        recordings.iter().all(|(s, _)| {
            let law = s.consent_law.unwrap_or(default_law);
            crate::kpi::lack_of(s, law).is_none()
        })
    });
    CallView {
        call,
        start_ms,
        end_ms,
        billable_s,
        disposition,
        must_record,
        state,
        coverage,
        lawful,
        agent,
        queue,
        direction,
        legs,
        recordings: recordings
            .into_iter()
            .map(|(s, how)| CallRecording {
                id: s.id,
                path: s.path.to_string(),
                matched_by: how,
                duration_s: s.duration_s,
                score: s.score,
                state: s.state,
                consent: s.consent,
                on_demand: s.tags.contains(&config.on_demand_tag),
            })
            .collect(),
    }
}

/// The length of a union of intervals, in the intervals' unit.
fn union_ms(mut spans: Vec<(i64, i64)>) -> i64 {
    spans.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (s, e) in spans {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map_or(0, |(s, e)| e - s)
}

/// One row of the coverage report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub group: String,
    pub calls: u64,
    pub must_record: u64,
    /// Calls that must be recorded and were (short ones included).
    pub recorded: u64,
    /// recorded / must_record.
    pub coverage: Option<f64>,
    /// Calls that must be recorded and were, with the consent their law needs.
    pub lawful: u64,
    /// lawful / must_record.
    pub lawful_share: Option<f64>,
    /// Recorded calls with every recording analysed.
    pub analysed: u64,
    /// analysed / recorded.
    pub analysed_share: Option<f64>,
    pub automatic: u64,
    pub on_demand: u64,
    pub missing: u64,
    pub short: u64,
    pub pending: u64,
}

/// Coverage by day (UTC), agent or queue, and in total; orphans are counted in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub total: CoverageRow,
    pub by_day: Vec<CoverageRow>,
    pub by_agent: Vec<CoverageRow>,
    pub by_queue: Vec<CoverageRow>,
    pub orphans: usize,
    pub ambiguous: usize,
    /// The missing calls, oldest first (at most `limit`).
    pub missing: Vec<CallBrief>,
    pub short: Vec<CallBrief>,
    pub unlawful: Vec<CallBrief>,
    pub orphan_recordings: Vec<Unmatched>,
    pub ambiguous_recordings: Vec<Unmatched>,
}

/// A call in a report's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallBrief {
    pub call: String,
    pub start_ms: i64,
    pub billable_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub src: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dst: String,
}

impl CallBrief {
    fn of(c: &CallView) -> CallBrief {
        let first = c.legs.first();
        CallBrief {
            call: c.call.clone(),
            start_ms: c.start_ms,
            billable_s: c.billable_s,
            coverage: c.coverage,
            src: first.map(|l| l.src.clone()).unwrap_or_default(),
            dst: first.map(|l| l.dst.clone()).unwrap_or_default(),
        }
    }
}

impl CoverageRow {
    /// Counts one call in the row.
    fn count(&mut self, c: &CallView) {
        self.calls += 1;
        if !c.must_record {
            return;
        }
        self.must_record += 1;
        match c.state {
            CallState::Recorded | CallState::Short => {
                self.recorded += 1;
                if c.lawful == Some(true) {
                    self.lawful += 1;
                }
                if c.recordings
                    .iter()
                    .all(|x| x.state == RecordState::Analysed)
                {
                    self.analysed += 1;
                }
                if c.recordings.iter().any(|x| x.on_demand) {
                    self.on_demand += 1;
                } else {
                    self.automatic += 1;
                }
                if c.state == CallState::Short {
                    self.short += 1;
                }
            }
            CallState::Missing => self.missing += 1,
            CallState::Pending => self.pending += 1,
            CallState::NotRequired => {}
        }
    }

    /// Adds another row's counts (the shares are made by [`CoverageRow::named`]).
    pub fn absorb(&mut self, o: &CoverageRow) {
        self.calls += o.calls;
        self.must_record += o.must_record;
        self.recorded += o.recorded;
        self.lawful += o.lawful;
        self.analysed += o.analysed;
        self.automatic += o.automatic;
        self.on_demand += o.on_demand;
        self.missing += o.missing;
        self.short += o.short;
        self.pending += o.pending;
    }

    /// The row named `group`, with its shares made from its counts.
    pub fn named(mut self, group: String) -> CoverageRow {
        let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        self.group = group;
        self.coverage = share(self.recorded, self.must_record);
        self.lawful_share = share(self.lawful, self.must_record);
        self.analysed_share = share(self.analysed, self.recorded);
        self
    }
}

/// A coverage report before its shares: the counts by day, agent and queue, and the head of
/// each list. Made from one matching ([`Digest::of`]), merged in time order with the digests
/// of the windows that follow ([`Digest::merge`]): the store keeps one per settled day, so a
/// report over a month reads thirty digests instead of matching a million calls again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// Counts only: the shares are made when the report is.
    pub total: CoverageRow,
    /// By UTC day, as days since 1970-01-01.
    pub by_day: BTreeMap<i64, CoverageRow>,
    pub by_agent: BTreeMap<String, CoverageRow>,
    pub by_queue: BTreeMap<String, CoverageRow>,
    pub orphans: usize,
    pub ambiguous: usize,
    /// The first `limit` of each list, oldest first.
    pub missing: Vec<CallBrief>,
    pub short: Vec<CallBrief>,
    pub unlawful: Vec<CallBrief>,
    pub orphan_recordings: Vec<Unmatched>,
    pub ambiguous_recordings: Vec<Unmatched>,
    /// No call in it is pending: time alone will not change it (new call records or
    /// recordings, consent or purges may).
    pub settled: bool,
}

const DAY_MS: i64 = 86_400_000;

/// How far before and after a window its call records and recordings are read to match the
/// calls that started in it: a recording's time is its file's when no sidecar gives the
/// start, calls last hours, and a call just outside the window may claim a recording inside.
pub const MATCH_MARGIN_MS: i64 = 6 * 3600 * 1000;

/// The UTC days (days since 1970-01-01) whose matching reads a call record or a recording of
/// time `t_ms`: those within [`MATCH_MARGIN_MS`] of it. A change at `t_ms` may change their
/// digests, and no other's.
pub fn days_touched(t_ms: i64) -> std::ops::RangeInclusive<i64> {
    t_ms.saturating_sub(MATCH_MARGIN_MS).div_euclid(DAY_MS)
        ..=t_ms.saturating_add(MATCH_MARGIN_MS).div_euclid(DAY_MS)
}

impl Digest {
    /// The digest of a matching, each list at most `limit` long.
    pub fn of(m: &Matching, limit: usize) -> Digest {
        let mut d = Digest {
            orphans: m.orphans.len(),
            ambiguous: m.ambiguous.len(),
            orphan_recordings: m.orphans.iter().take(limit).cloned().collect(),
            ambiguous_recordings: m.ambiguous.iter().take(limit).cloned().collect(),
            settled: true,
            ..Digest::default()
        };
        for c in &m.calls {
            d.total.count(c);
            d.by_day
                .entry(c.start_ms.div_euclid(DAY_MS))
                .or_default()
                .count(c);
            let agent = c.agent.clone().unwrap_or_else(|| "-".into());
            d.by_agent.entry(agent).or_default().count(c);
            let queue = c.queue.clone().unwrap_or_else(|| "-".into());
            d.by_queue.entry(queue).or_default().count(c);
            d.settled &= c.state != CallState::Pending;
            let list = match c.state {
                _ if !c.must_record => None,
                CallState::Missing => Some(&mut d.missing),
                CallState::Short => Some(&mut d.short),
                _ => None,
            };
            if let Some(list) = list.filter(|l| l.len() < limit) {
                list.push(CallBrief::of(c));
            }
            if c.must_record && c.lawful == Some(false) && d.unlawful.len() < limit {
                d.unlawful.push(CallBrief::of(c));
            }
        }
        d
    }

    /// Adds the digest of the window that follows this one's.
    pub fn merge(&mut self, next: Digest, limit: usize) {
        fn add<K: Ord>(into: &mut BTreeMap<K, CoverageRow>, from: BTreeMap<K, CoverageRow>) {
            for (k, row) in from {
                into.entry(k).or_default().absorb(&row);
            }
        }
        fn append<T>(into: &mut Vec<T>, from: Vec<T>, limit: usize) {
            let room = limit.saturating_sub(into.len());
            into.extend(from.into_iter().take(room));
        }
        self.total.absorb(&next.total);
        add(&mut self.by_day, next.by_day);
        add(&mut self.by_agent, next.by_agent);
        add(&mut self.by_queue, next.by_queue);
        self.orphans += next.orphans;
        self.ambiguous += next.ambiguous;
        append(&mut self.missing, next.missing, limit);
        append(&mut self.short, next.short, limit);
        append(&mut self.unlawful, next.unlawful, limit);
        append(&mut self.orphan_recordings, next.orphan_recordings, limit);
        append(
            &mut self.ambiguous_recordings,
            next.ambiguous_recordings,
            limit,
        );
        self.settled &= next.settled;
    }

    /// The report: each row named and its shares made.
    pub fn report(self) -> CoverageReport {
        let rows = |g: BTreeMap<String, CoverageRow>| {
            g.into_iter().map(|(k, r)| r.named(k)).collect::<Vec<_>>()
        };
        CoverageReport {
            total: self.total.named("total".into()),
            by_day: self
                .by_day
                .into_iter()
                .map(|(day, r)| r.named(crate::policy::fmt_ms(day * DAY_MS)[..10].to_string()))
                .collect(),
            by_agent: rows(self.by_agent),
            by_queue: rows(self.by_queue),
            orphans: self.orphans,
            ambiguous: self.ambiguous,
            missing: self.missing,
            short: self.short,
            unlawful: self.unlawful,
            orphan_recordings: self.orphan_recordings,
            ambiguous_recordings: self.ambiguous_recordings,
        }
    }
}

/// The coverage report of a matching: rows, and the calls and recordings to look at (each list
/// at most `limit` long).
pub fn coverage_report(m: &Matching, limit: usize) -> CoverageReport {
    Digest::of(m, limit).report()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(id: &str, linked: Option<&str>, start_s: i64, billsec: u32) -> CallRecord {
        CallRecord {
            id: id.into(),
            linked_id: linked.map(String::from),
            start_ms: start_s * 1000,
            answer_ms: Some((start_s + 5) * 1000),
            end_ms: (start_s + 5 + i64::from(billsec)) * 1000,
            duration_s: billsec + 5,
            billsec,
            disposition: if billsec > 0 {
                Disposition::Answered
            } else {
                Disposition::NoAnswer
            },
            src: "1001".into(),
            dst: "2000".into(),
            clid: String::new(),
            context: "from-internal".into(),
            channel: String::new(),
            dst_channel: String::new(),
            last_app: "Dial".into(),
            account: String::new(),
            userfield: String::new(),
            recording: None,
            queue: None,
            direction: None,
        }
    }

    fn rec(id: u64, name: &str, call_id: Option<&str>, start_s: i64, dur: f64) -> Summary {
        Summary {
            started_ms: start_s * 1000,
            duration_s: Some(dur),
            score: Some(90),
            call_id: call_id.map(String::from),
            ..Summary::blank(id, &format!("/r/{name}"))
        }
    }

    #[test]
    fn calls_are_matched_by_key_then_time_and_judged() {
        let config = CallsConfig::default();
        let legs = vec![
            leg("100.1", None, 1000, 60),
            leg("200.1", Some("200.0"), 2000, 100),
            leg("200.0", None, 1995, 110),
            leg("300.1", None, 3000, 60),
            leg("400.1", None, 4000, 0),
            leg("500.1", None, 5000, 60),
        ];
        let recordings = vec![
            // By the sidecar's call id, whole.
            rec(1, "a.wav", Some("100.1"), 1005, 60.0),
            // Both pieces of a transferred call, by the legs' ids in their names.
            rec(2, "out-200.0.wav", None, 2000, 50.0),
            rec(3, "q-200.1-x.wav", None, 2050, 60.0),
            // Half a call, by time.
            rec(4, "nokey.wav", None, 3010, 30.0),
            // Nothing fits: an orphan.
            rec(5, "stray.wav", None, 9000, 10.0),
        ];
        let m = match_calls(
            legs,
            recordings,
            &config,
            ConsentLaw::OneParty,
            1_000_000_000,
        );
        let state = |k: &str| m.calls.iter().find(|c| c.call == k).unwrap().state;
        assert_eq!(m.calls.len(), 5, "{:#?}", m.calls);
        assert_eq!(state("100.1"), CallState::Recorded);
        assert_eq!(state("200.0"), CallState::Recorded);
        assert_eq!(state("300.1"), CallState::Short);
        assert_eq!(state("400.1"), CallState::NotRequired);
        assert_eq!(state("500.1"), CallState::Missing);
        let transfer = m.calls.iter().find(|c| c.call == "200.0").unwrap();
        assert_eq!(transfer.recordings.len(), 2);
        assert_eq!(transfer.legs.len(), 2);
        assert_eq!(m.orphans.len(), 1);
        assert_eq!(m.orphans[0].id, 5);
        let how: Vec<MatchedBy> = m
            .calls
            .iter()
            .flat_map(|c| c.recordings.iter().map(|r| r.matched_by))
            .collect();
        assert_eq!(
            how,
            [
                MatchedBy::CallId,
                MatchedBy::FileName,
                MatchedBy::FileName,
                MatchedBy::Time
            ]
        );
        let r = coverage_report(&m, 100);
        assert_eq!(
            (r.total.must_record, r.total.recorded, r.total.missing),
            (4, 3, 1)
        );
        assert_eq!(r.total.coverage, Some(0.75));
        assert_eq!(r.missing[0].call, "500.1");
        assert_eq!(r.short[0].call, "300.1");
        // Within the grace time a call without a recording is pending, not missing.
        let early = match_calls(
            vec![leg("500.1", None, 5000, 60)],
            vec![],
            &config,
            ConsentLaw::OneParty,
            5_100_000,
        );
        assert_eq!(early.calls[0].state, CallState::Pending);
    }

    #[test]
    fn which_calls_must_be_recorded_goes_by_queue_and_direction_from_the_call_records() {
        use crate::metadata::Direction;
        let mut config = CallsConfig::default();
        config.record = vec![crate::config::RecordRule {
            queue: vec!["sales".into()],
            direction: vec![Direction::Inbound],
            ..crate::config::RecordRule::default()
        }];
        config
            .direction_by_context
            .insert("from-trunk".into(), Direction::Inbound);
        let queued = |id: &str, start_s: i64, queue: &str, context: &str| {
            let mut l = leg(id, None, start_s, 60);
            l.queue = Some(queue.into());
            l.context = context.into();
            l
        };
        let mut written = queued("4.1", 4000, "sales", "from-internal");
        written.direction = Some(Direction::Inbound);
        let legs = vec![
            queued("1.1", 1000, "sales", "from-trunk"),
            queued("2.1", 2000, "support", "from-trunk"),
            queued("3.1", 3000, "sales", "from-internal"),
            // The direction the PBX wrote wins over the context's.
            written,
        ];
        let m = match_calls(legs, vec![], &config, ConsentLaw::OneParty, i64::MAX / 2);
        let call = |k: &str| m.calls.iter().find(|c| c.call == k).unwrap();
        assert_eq!(call("1.1").state, CallState::Missing);
        assert_eq!(call("2.1").state, CallState::NotRequired, "another queue");
        assert_eq!(
            call("3.1").state,
            CallState::NotRequired,
            "no direction known"
        );
        assert_eq!(call("4.1").state, CallState::Missing);
        // A call with no recording is still grouped by the queue its records name.
        assert_eq!(call("1.1").queue.as_deref(), Some("sales"));
        assert_eq!(call("1.1").direction, Some(Direction::Inbound));
        let by_queue = Digest::of(&m, 10).by_queue;
        assert_eq!(by_queue["sales"].missing, 2, "{by_queue:?}");
        assert_eq!(by_queue["support"].must_record, 0, "{by_queue:?}");
    }

    #[test]
    fn overlapping_calls_make_a_keyless_recording_ambiguous() {
        let legs = vec![leg("1.1", None, 1000, 60), leg("2.1", None, 1010, 60)];
        let m = match_calls(
            legs,
            vec![rec(1, "x.wav", None, 1020, 30.0)],
            &CallsConfig::default(),
            ConsentLaw::OneParty,
            i64::MAX / 2,
        );
        assert!(m.orphans.is_empty());
        assert_eq!(m.ambiguous.len(), 1);
        assert_eq!(m.ambiguous[0].candidates, ["1.1", "2.1"]);
        assert!(m.calls.iter().all(|c| c.state == CallState::Missing));
    }

    #[test]
    fn lawful_needs_the_consent_the_law_asks() {
        let legs = vec![leg("1.1", None, 1000, 60), leg("2.1", None, 2000, 60)];
        let mut denied = rec(1, "a.wav", Some("1.1"), 1005, 60.0);
        denied.consent = Some(ConsentState::Denied);
        let mut none_all_party = rec(2, "b.wav", Some("2.1"), 2005, 60.0);
        none_all_party.consent_law = Some(ConsentLaw::AllParty);
        let m = match_calls(
            legs,
            vec![denied, none_all_party],
            &CallsConfig::default(),
            ConsentLaw::OneParty,
            i64::MAX / 2,
        );
        let r = coverage_report(&m, 10);
        assert_eq!((r.total.recorded, r.total.lawful), (2, 0));
        assert_eq!(r.unlawful.len(), 2);
    }

    #[test]
    fn under_notice_law_a_recording_without_the_announcement_is_not_lawful() {
        let legs = vec![
            leg("1.1", None, 1000, 60),
            leg("2.1", None, 2000, 60),
            leg("3.1", None, 3000, 60),
        ];
        let mut heard = rec(1, "a.wav", Some("1.1"), 1005, 60.0);
        (heard.notice, heard.announced) = (true, Some(true));
        let mut missing = rec(2, "b.wav", Some("2.1"), 2005, 60.0);
        (missing.notice, missing.announced) = (true, Some(false));
        // Not looked for (no announcement configured when it was analysed): no evidence.
        let mut unchecked = rec(3, "c.wav", Some("3.1"), 3005, 60.0);
        unchecked.notice = true;
        let m = match_calls(
            legs,
            vec![heard, missing, unchecked],
            &CallsConfig::default(),
            ConsentLaw::OneParty,
            i64::MAX / 2,
        );
        let r = coverage_report(&m, 10);
        assert_eq!((r.total.recorded, r.total.lawful), (3, 1));
        assert_eq!(r.unlawful.len(), 2);
    }

    #[test]
    fn union_counts_overlaps_once() {
        assert_eq!(union_ms(vec![(0, 10), (5, 15), (20, 25)]), 20);
        assert_eq!(union_ms(vec![]), 0);
    }
}
