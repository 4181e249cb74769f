//! Rendering the compliance and quality reports: as text, as CSV tables, as HTML with charts.

use crate::policy::fmt_ms;
use crate::query::{Dated, Due, Report};
use crate::store::Hold;
use crate::summary::Summary;

use super::table::{num, pct, Table};

/// The deletion certificate as one CSV table: every purge with the chain head that covers it.
pub fn purged_csv(p: &crate::query::PurgedReport) -> String {
    let mut t = Table::new(&[
        "id",
        "path",
        "sha256",
        "size",
        "duration_s",
        "deleted_at",
        "rule",
        "reason",
        "actor",
        "scope",
        "audit_seq",
        "policy_at",
        "deletion",
        "chain_head_seq",
        "chain_head_sha256",
    ]);
    for r in &p.recordings {
        t.push(vec![
            r.id.to_string(),
            r.path.to_string(),
            r.sha256.clone(),
            r.size.to_string(),
            r.duration_s.map_or_else(String::new, |d| d.to_string()),
            r.deleted_at.clone(),
            r.rule.clone(),
            r.reason.clone(),
            r.actor.clone(),
            r.scope.clone(),
            r.audit_seq.map_or_else(String::new, |s| s.to_string()),
            r.policy_at.clone().unwrap_or_default(),
            r.deletion.as_str().to_string(),
            p.audit_chain_head.seq.to_string(),
            p.audit_chain_head.sha256.clone(),
        ]);
    }
    t.csv()
}

/// Who reads a report's tables: people (text, HTML: shares as percentages) or programs (CSV:
/// shares as fractions, as in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    People,
    Programs,
}

/// The report's tables, each with a title (CSV prints them one after another).
pub fn tables(dated: &Dated, reader: Reader) -> Vec<(String, Table)> {
    let share = |v: Option<f64>| match reader {
        Reader::People => pct(v),
        Reader::Programs => num(v, 4),
    };
    match &dated.body {
        Report::Consent(c) => {
            let coverage = |rows: &[crate::kpi::ConsentRow]| {
                let mut t = Table::new(&[
                    "group",
                    "calls",
                    "granted",
                    "denied",
                    "unknown",
                    "not_required",
                    "none",
                    "all_party",
                    "notice",
                    "lacking",
                    "no_announcement",
                    "covered",
                ])
                .numeric(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
                for r in rows {
                    t.push(vec![
                        r.group.clone(),
                        r.recordings.to_string(),
                        r.granted.to_string(),
                        r.denied.to_string(),
                        r.unknown.to_string(),
                        r.not_required.to_string(),
                        r.none.to_string(),
                        r.all_party.to_string(),
                        r.notice.to_string(),
                        r.lacking.to_string(),
                        r.no_announcement.to_string(),
                        share(r.share_covered),
                    ]);
                }
                t
            };
            vec![
                ("total".into(), coverage(std::slice::from_ref(&c.total))),
                ("by day".into(), coverage(&c.by_day)),
                ("by queue".into(), coverage(&c.by_queue)),
                ("by agent".into(), coverage(&c.by_agent)),
                (
                    format!(
                        "lacking consent evidence ({} more not listed)",
                        c.lacking_not_listed
                    ),
                    lacking(&c.lacking, &c.reasons),
                ),
            ]
        }
        Report::Pci(p) => {
            let rows = |rows: &[crate::kpi::PciRow]| {
                let mut t = Table::new(&[
                    "group",
                    "recordings",
                    "with_dtmf",
                    "with_bursts",
                    "share_with_bursts",
                ])
                .numeric(&[1, 2, 3, 4]);
                for r in rows {
                    t.push(vec![
                        r.group.clone(),
                        r.recordings.to_string(),
                        r.with_dtmf.to_string(),
                        r.with_bursts.to_string(),
                        share(r.share_with_bursts),
                    ]);
                }
                t
            };
            let mut list =
                Table::new(&["id", "started", "agent", "queue", "digits", "burst", "path"])
                    .numeric(&[0, 4, 5]);
            for s in &p.recordings {
                list.push(vec![
                    s.id.to_string(),
                    fmt_ms(s.started_ms),
                    s.agent.clone().unwrap_or_else(|| "-".into()),
                    s.queue.clone().unwrap_or_else(|| "-".into()),
                    s.dtmf_digits.to_string(),
                    s.dtmf_burst.to_string(),
                    s.path.to_string(),
                ]);
            }
            vec![
                ("total".into(), rows(std::slice::from_ref(&p.total))),
                ("by queue".into(), rows(&p.by_queue)),
                ("by agent".into(), rows(&p.by_agent)),
                (
                    format!(
                        "recordings with a burst of {} digits or more ({} more not listed)",
                        p.min_digits, p.not_listed
                    ),
                    list,
                ),
            ]
        }
        Report::Quality(q) => {
            let mut dist = Table::new(&["score band", "calls"]).numeric(&[1]);
            for (i, n) in q.distribution.iter().enumerate() {
                let hi = if i == 9 { 100 } else { i * 10 + 9 };
                dist.push(vec![format!("{}-{hi}", i * 10), n.to_string()]);
            }
            let mut trend = Table::new(&["day", "calls", "mean score"]).numeric(&[1, 2]);
            for p in &q.trend {
                trend.push(vec![
                    p.day.clone(),
                    p.calls.to_string(),
                    format!("{:.1}", p.mean_score),
                ]);
            }
            let mut grades = Table::new(&["grade", "calls"]).numeric(&[1]);
            for g in ["good", "fair", "poor", "bad"] {
                grades.push(vec![
                    g.into(),
                    q.grades.get(g).copied().unwrap_or(0).to_string(),
                ]);
            }
            vec![
                ("distribution".into(), dist),
                ("grades".into(), grades),
                ("trend".into(), trend),
                ("flags".into(), counts(&q.flags, "flag")),
                ("worst calls".into(), calls(&q.worst)),
            ]
        }
        Report::Retention(r) => {
            let due = |items: &[Due]| {
                let mut t =
                    Table::new(&["id", "started", "rule", "deadline", "explanation", "path"])
                        .numeric(&[0]);
                for d in items {
                    t.push(vec![
                        d.id.to_string(),
                        d.started.clone(),
                        d.rule.clone(),
                        d.deadline.clone().unwrap_or_else(|| "-".into()),
                        d.explanation.clone(),
                        d.path.to_string(),
                    ]);
                }
                t
            };
            let mut kept = Table::new(&["kept by", "recordings"]).numeric(&[1]);
            kept.push(vec!["legal hold".into(), r.held.to_string()]);
            kept.push(vec!["min_keep lock".into(), r.locked.to_string()]);
            kept.push(vec!["needs review".into(), r.needs_review.to_string()]);
            vec![
                ("by state".into(), counts(&r.by_state, "state")),
                ("by rule".into(), counts(&r.by_rule, "rule")),
                ("kept".into(), kept),
                (
                    format!("expiring in the next 30 days ({} in all)", r.expiring_30d),
                    due(&r.expiring),
                ),
                (
                    format!("overdue ({}; should be none)", r.overdue.len()),
                    due(&r.overdue),
                ),
            ]
        }
        Report::Holds { holds } => vec![("holds".into(), holds_table(holds))],
        Report::Purged(p) => {
            let mut t = Table::new(&[
                "id",
                "deleted at",
                "rule",
                "actor",
                "sha256",
                "size",
                "reason",
                "audit seq",
                "path",
            ])
            .numeric(&[0, 5, 7]);
            for row in &p.recordings {
                t.push(vec![
                    row.id.to_string(),
                    {
                        let mut at = row.deleted_at.clone();
                        if let Some(policy) = &row.policy_at {
                            at.push_str(&format!(" (policy as of {policy})"));
                        }
                        if row.deletion == crate::record::Deletion::AlreadyGone {
                            at.push_str(" (file already gone: not witnessed)");
                        }
                        at
                    },
                    row.rule.clone(),
                    row.actor.clone(),
                    row.sha256.clone(),
                    row.size.to_string(),
                    row.reason.clone(),
                    row.audit_seq.map_or_else(|| "-".into(), |s| s.to_string()),
                    row.path.to_string(),
                ]);
            }
            let mut head = Table::new(&["audit chain head seq", "audit chain head sha256"]);
            head.push(vec![
                p.audit_chain_head.seq.to_string(),
                p.audit_chain_head.sha256.clone(),
            ]);
            vec![
                (format!("purged recordings ({})", p.recordings.len()), t),
                ("covered by".into(), head),
            ]
        }
        Report::Coverage(c) => {
            let rows = |rows: &[crate::calls::CoverageRow]| {
                let mut t = Table::new(&[
                    "group",
                    "calls",
                    "must record",
                    "recorded",
                    "coverage",
                    "lawful",
                    "lawful share",
                    "analysed",
                    "automatic",
                    "on demand",
                    "missing",
                    "short",
                    "pending",
                ])
                .numeric(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
                for r in rows {
                    t.push(vec![
                        r.group.clone(),
                        r.calls.to_string(),
                        r.must_record.to_string(),
                        r.recorded.to_string(),
                        share(r.coverage),
                        r.lawful.to_string(),
                        share(r.lawful_share),
                        r.analysed.to_string(),
                        r.automatic.to_string(),
                        r.on_demand.to_string(),
                        r.missing.to_string(),
                        r.short.to_string(),
                        r.pending.to_string(),
                    ]);
                }
                t
            };
            let briefs = |list: &[crate::calls::CallBrief]| {
                let mut t =
                    Table::new(&["call", "started", "billable s", "coverage", "src", "dst"])
                        .numeric(&[2, 3]);
                for b in list {
                    t.push(vec![
                        b.call.clone(),
                        fmt_ms(b.start_ms),
                        format!("{:.0}", b.billable_s),
                        share(b.coverage),
                        b.src.clone(),
                        b.dst.clone(),
                    ]);
                }
                t
            };
            let unmatched = |list: &[crate::calls::Unmatched]| {
                let mut t = Table::new(&["id", "started", "candidates", "path"]).numeric(&[0]);
                for u in list {
                    t.push(vec![
                        u.id.to_string(),
                        fmt_ms(u.started_ms),
                        if u.candidates.is_empty() {
                            "-".into()
                        } else {
                            u.candidates.join(" ")
                        },
                        u.path.clone(),
                    ]);
                }
                t
            };
            vec![
                ("total".into(), rows(std::slice::from_ref(&c.total))),
                ("by day".into(), rows(&c.by_day)),
                ("by agent".into(), rows(&c.by_agent)),
                ("by queue".into(), rows(&c.by_queue)),
                (
                    format!("calls missing their recording ({})", c.total.missing),
                    briefs(&c.missing),
                ),
                (
                    format!("calls recorded short ({})", c.total.short),
                    briefs(&c.short),
                ),
                (
                    "calls recorded without the consent their law needs".into(),
                    briefs(&c.unlawful),
                ),
                (
                    format!("recordings that match no call ({})", c.orphans),
                    unmatched(&c.orphan_recordings),
                ),
                (
                    format!("recordings that match several calls ({})", c.ambiguous),
                    unmatched(&c.ambiguous_recordings),
                ),
            ]
        }
    }
}

fn counts(map: &std::collections::BTreeMap<String, u64>, what: &str) -> Table {
    let mut t = Table::new(&[what, "recordings"]).numeric(&[1]);
    let mut items: Vec<(&String, &u64)> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, v) in items {
        t.push(vec![k.clone(), v.to_string()]);
    }
    t
}

/// The calls lacking what their law needs, with why.
fn lacking(rows: &[Summary], reasons: &[String]) -> Table {
    let mut t = calls(rows);
    t.headers.insert(7, "why".into());
    t.right.insert(7, false);
    for (i, row) in t.rows.iter_mut().enumerate() {
        row.insert(7, reasons.get(i).cloned().unwrap_or_default());
    }
    t
}

fn calls(rows: &[Summary]) -> Table {
    let mut t = Table::new(&[
        "id", "started", "score", "agent", "queue", "consent", "flags", "path",
    ])
    .numeric(&[0, 2]);
    for s in rows {
        t.push(vec![
            s.id.to_string(),
            fmt_ms(s.started_ms),
            s.score.map_or_else(|| "-".into(), |v| v.to_string()),
            s.agent.clone().unwrap_or_else(|| "-".into()),
            s.queue.clone().unwrap_or_else(|| "-".into()),
            s.consent.map_or_else(
                || "none".into(),
                |c| {
                    serde_json::to_value(c)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                },
            ),
            s.flags.join(" "),
            s.path.to_string(),
        ]);
    }
    t
}

pub fn holds_table(holds: &[Hold]) -> Table {
    let mut t = Table::new(&[
        "id",
        "case",
        "recordings",
        "added",
        "by",
        "reason",
        "status",
    ])
    .numeric(&[0, 2]);
    for h in holds {
        t.push(vec![
            h.id.to_string(),
            h.case.clone(),
            h.recordings.len().to_string(),
            fmt_ms(h.added_ms),
            h.actor.clone(),
            h.reason.clone(),
            match &h.released {
                Some(r) => format!("released {} by {} ({})", fmt_ms(r.at_ms), r.actor, r.reason),
                None => "in force".into(),
            },
        ]);
    }
    t
}

/// The report as text: a heading line, then each table.
pub fn text(dated: &Dated) -> String {
    let mut out = format!(
        "{} — generated {}\n",
        title(&dated.body),
        dated.generated_at
    );
    for (title, t) in tables(dated, Reader::People) {
        out.push_str(&format!("\n{title}\n"));
        if t.rows.is_empty() {
            out.push_str("  (none)\n");
        } else {
            out.push_str(&t.text());
        }
    }
    out
}

/// The report as one self-contained HTML page with its charts.
pub fn html(dated: &Dated) -> String {
    let mut page = page(dated);
    match &dated.body {
        Report::Quality(q) => {
            page.figures(&[
                ("scored calls", q.scored.to_string()),
                ("mean score", num(q.mean_score, 1)),
                (
                    "poor or bad",
                    pct((q.scored > 0).then(|| {
                        (q.grades.get("poor").unwrap_or(&0) + q.grades.get("bad").unwrap_or(&0))
                            as f64
                            / q.scored as f64
                    })),
                ),
            ]);
            page.heading("Trend");
            let trend: Vec<(String, f64)> = q
                .trend
                .iter()
                .map(|p| (p.day.clone(), p.mean_score))
                .collect();
            page.line("Mean score by day", &trend, 0.0, 100.0);
            page.heading("Distribution");
            let dist: Vec<(String, f64)> = q
                .distribution
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        format!("{}-{}", i * 10, if i == 9 { 100 } else { i * 10 + 9 }),
                        *n as f64,
                    )
                })
                .collect();
            page.bars("Calls by score band", "calls", &dist);
            let grades: Vec<(String, f64)> = ["good", "fair", "poor", "bad"]
                .iter()
                .map(|g| (g.to_string(), *q.grades.get(*g).unwrap_or(&0) as f64))
                .collect();
            page.bars("Calls by grade", "calls", &grades);
            page.heading("Flags");
            page.bars("Calls by flag", "calls", &sorted(&q.flags));
        }
        Report::Consent(c) => {
            page.figures(&[
                ("calls", c.total.recordings.to_string()),
                ("covered", pct(c.total.share_covered)),
                ("lacking consent", c.total.lacking.to_string()),
                ("under all-party law", c.total.all_party.to_string()),
            ]);
            page.heading("Coverage");
            let trend: Vec<(String, f64)> = c
                .by_day
                .iter()
                .map(|r| (r.group.clone(), r.share_covered.unwrap_or(0.0) * 100.0))
                .collect();
            page.line(
                "Share of calls with consent (%), by day",
                &trend,
                0.0,
                100.0,
            );
            let queues: Vec<(String, f64)> = c
                .by_queue
                .iter()
                .map(|r| (r.group.clone(), r.lacking as f64))
                .collect();
            page.bars("Calls lacking consent, by queue", "calls", &queues);
        }
        Report::Pci(p) => {
            page.figures(&[
                (
                    "recordings where PCI DSS applies",
                    p.total.recordings.to_string(),
                ),
                ("with DTMF", p.total.with_dtmf.to_string()),
                (
                    &format!("with bursts of {}+ digits", p.min_digits),
                    p.total.with_bursts.to_string(),
                ),
            ]);
            page.heading("Digit bursts");
            let queues: Vec<(String, f64)> = p
                .by_queue
                .iter()
                .map(|r| (r.group.clone(), r.with_bursts as f64))
                .collect();
            page.bars(
                "Recordings with digit bursts, by queue",
                "recordings",
                &queues,
            );
            let agents: Vec<(String, f64)> = p
                .by_agent
                .iter()
                .map(|r| (r.group.clone(), r.with_bursts as f64))
                .collect();
            page.bars(
                "Recordings with digit bursts, by agent",
                "recordings",
                &agents,
            );
        }
        Report::Coverage(c) => {
            page.figures(&[
                ("calls to record", c.total.must_record.to_string()),
                ("recorded", pct(c.total.coverage)),
                ("recorded lawfully", pct(c.total.lawful_share)),
                ("missing", c.total.missing.to_string()),
                ("short", c.total.short.to_string()),
                ("orphan recordings", c.orphans.to_string()),
            ]);
            page.heading("Coverage");
            let trend: Vec<(String, f64)> = c
                .by_day
                .iter()
                .map(|r| (r.group.clone(), r.coverage.unwrap_or(0.0) * 100.0))
                .collect();
            page.line("Calls recorded (%), by day", &trend, 0.0, 100.0);
            let missing: Vec<(String, f64)> = c
                .by_day
                .iter()
                .map(|r| (r.group.clone(), r.missing as f64))
                .collect();
            page.bars("Calls missing their recording, by day", "calls", &missing);
        }
        Report::Retention(r) => {
            page.figures(&[
                ("expiring in 30 days", r.expiring_30d.to_string()),
                ("overdue", r.overdue.len().to_string()),
                ("held", r.held.to_string()),
                ("locked", r.locked.to_string()),
            ]);
            page.heading("Recordings");
            page.bars("Recordings by state", "recordings", &sorted(&r.by_state));
            page.bars("Recordings by rule", "recordings", &sorted(&r.by_rule));
        }
        Report::Holds { holds } => {
            let active = holds.iter().filter(|h| h.released.is_none()).count();
            page.figures(&[
                ("holds in force", active.to_string()),
                ("released", (holds.len() - active).to_string()),
            ]);
        }
        Report::Purged(p) => {
            page.figures(&[
                ("purged recordings", p.recordings.len().to_string()),
                ("audit chain head", format!("#{}", p.audit_chain_head.seq)),
            ]);
            page.paragraph(&format!(
                "Every deletion below is recorded in the hash-chained audit log; the chain head \
                 {} (entry {}) covers them all. `callwarden audit verify` checks the chain.",
                p.audit_chain_head.sha256, p.audit_chain_head.seq
            ));
        }
    }
    for (title, t) in tables(dated, Reader::People) {
        page.heading(&capitalise(&title));
        if t.rows.is_empty() {
            page.paragraph("None.");
        } else {
            page.table(&t);
        }
    }
    page.finish()
}

fn sorted(map: &std::collections::BTreeMap<String, u64>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = map.iter().map(|(k, n)| (k.clone(), *n as f64)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// The page title of a report.
pub fn title(body: &Report) -> &'static str {
    match body {
        Report::Consent(_) => "Consent report",
        Report::Retention(_) => "Retention report",
        Report::Holds { .. } => "Legal holds",
        Report::Purged(_) => "Deletion certificate: purged recordings",
        Report::Quality(_) => "Quality report",
        Report::Coverage(_) => "Recording coverage of calls",
        Report::Pci(_) => "Card data (DTMF) in recordings",
    }
}

/// A page for the report.
pub fn page(dated: &crate::query::Dated) -> super::html::Page {
    let w = &dated.window;
    let range = match (w.from_ms, w.until_ms) {
        (None, None) => "all time".to_string(),
        (Some(f), None) => format!("since {}", fmt_ms(f)),
        (None, Some(u)) => format!("until {}", fmt_ms(u)),
        (Some(f), Some(u)) => format!("{} to {}", fmt_ms(f), fmt_ms(u)),
    };
    super::html::Page::new(
        title(&dated.body),
        &format!("{range}; generated {}", dated.generated_at),
    )
}
