//! The console's pages, rendered on the server with maud (the maud adapter: templates checked at
//! compile time, every value escaped unless marked otherwise, and nothing here marks one).

use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};

use super::session::Session;
use super::{CallsQuery, CoverageQuery, KpiQuery, PAGE};
use crate::analysis::model::Report;
use crate::clock::Zone;
use crate::query::{Role, Shown};
use crate::summary::Summary;

/// A time (ms since the epoch) in the console's time zone, to the second.
pub fn when(ms: i64, tz: &Zone) -> String {
    tz.format(ms)
}

/// Seconds as `m:ss` (or `h:mm:ss`), whole seconds down, as players count.
pub fn clock(s: f64) -> String {
    let t = s.max(0.0).floor() as u64;
    if t >= 3600 {
        format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    } else {
        format!("{}:{:02}", t / 60, t % 60)
    }
}

/// A share (0-1) as a percentage with one decimal at most.
pub fn percent(x: f64) -> String {
    let p = (x * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

/// The serde name of an enum value (`granted`, `not_required`).
fn word<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}

fn layout(user: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · callwarden" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                @if let Some(u) = user {
                    header {
                        nav aria-label="Main" {
                            a href="/calls" { "Calls" }
                            a href="/coverage" { "Coverage" }
                            a href="/kpi" { "KPIs" }
                            a href="/reports" { "Reports" }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (u.user) " (" (u.role.as_str()) "), times in " (u.time_zone) }
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                main id="main" { h1 { (title) } (body) }
            }
        }
    }
}

pub fn error(status: StatusCode, message: &str) -> Markup {
    layout(
        None,
        status.canonical_reason().unwrap_or("Error"),
        html! {
            p.error role="alert" { (message) }
            p { a href="/calls" { "Back to the calls" } }
        },
    )
}

pub fn login(next: &str, message: Option<&str>) -> Markup {
    layout(
        None,
        "Log in",
        html! {
            @if let Some(m) = message { p.error role="alert" id="login-error" { (m) } }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="user" { "User name" }
                input id="user" name="user" type="text" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" id="login" { "Log in" }
            }
        },
    )
}

fn select(name: &str, label: &str, current: &str, choices: &[(&str, &str)]) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            @for (value, text) in choices {
                option value=(value) selected[*value == current] { (text) }
            }
        }
    }
}

/// The list's URL with `page` set, keeping every filter.
fn page_url(q: &CallsQuery, page: usize) -> String {
    let page = page.to_string();
    url_with(
        "/calls",
        &[
            ("from", &q.from),
            ("until", &q.until),
            ("agent", &q.agent),
            ("queue", &q.queue),
            ("grade", &q.grade),
            ("flag", &q.flag),
            ("consent", &q.consent),
            ("sort", &q.sort),
            ("page", &page),
        ],
    )
}

pub fn calls(
    user: &Session,
    q: &CallsQuery,
    rows: &[Summary],
    more: bool,
    problem: Option<&str>,
    tz: &Zone,
) -> Markup {
    let page = q.page.unwrap_or(1).max(1);
    layout(
        Some(user),
        "Calls",
        html! {
            form.filters method="get" action="/calls" aria-label="Filter the calls" {
                label for="from" { "From" }
                input id="from" name="from" type="date" value=(q.from);
                label for="until" { "Until" }
                input id="until" name="until" type="date" value=(q.until);
                label for="agent" { "Agent" }
                input id="agent" name="agent" type="text" value=(q.agent);
                label for="queue" { "Queue" }
                input id="queue" name="queue" type="text" value=(q.queue);
                (select("grade", "Score band", &q.grade, &[("", "any"), ("good", "good"), ("fair", "fair"), ("poor", "poor"), ("bad", "bad")]))
                label for="flag" { "Flag" }
                input id="flag" name="flag" type="text" value=(q.flag) placeholder="e.g. noisy";
                (select("consent", "Consent", &q.consent, &[("", "any"), ("granted", "granted"), ("denied", "denied"), ("unknown", "unknown"), ("not_required", "not required"), ("none", "none recorded")]))
                (select("sort", "Sort", &q.sort, &[("time", "newest first"), ("score", "worst first"), ("duration", "longest first")]))
                button type="submit" id="filter" { "Show" }
            }
            @if let Some(p) = problem { p.error role="alert" { (p) } }
            @if rows.is_empty() && problem.is_none() {
                p id="no-calls" { "No recording matches these filters." }
            } @else if !rows.is_empty() {
                table id="calls" {
                    caption { "Recordings " ((page - 1) * PAGE + 1) "–" ((page - 1) * PAGE + rows.len()) }
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Duration" }
                        th scope="col" { "Agent" } th scope="col" { "Queue" }
                        th scope="col" { "Score" } th scope="col" { "Flags" }
                        th scope="col" { "Consent" }
                    } }
                    tbody {
                        @for s in rows {
                            tr {
                                td { a href=(format!("/calls/{}", s.id)) { (when(s.started_ms, tz)) } }
                                td.num { (s.duration_s.map(clock).unwrap_or_default()) }
                                td { (s.agent.as_deref().unwrap_or("")) }
                                td { (s.queue.as_deref().unwrap_or("")) }
                                td.num {
                                    @if let Some(score) = s.score {
                                        span class=(format!("grade {}", s.grade.map(|g| g.as_str()).unwrap_or(""))) { (score) }
                                    } @else { (s.error.as_deref().unwrap_or("—")) }
                                }
                                td { (s.flags.join(", ")) }
                                td { (s.consent.map(|c| word(&c)).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            nav.pages aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(page_url(q, page - 1)) { "← Newer" } }
                @if more { a rel="next" href=(page_url(q, page + 1)) { "Older →" } }
            }
        },
    )
}

/// A URL of `path` with these query pairs (the empty ones left out).
fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = format!("{path}?");
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        url.push_str(k);
        url.push('=');
        url.push_str(&super::urlencode(v));
        url.push('&');
    }
    url.pop();
    url
}

/// The calls of the PBX's call records in a window, each with its verdict (recorded, short,
/// missing...) and its recordings: the recordings that never arrived, found by day.
pub fn coverage(
    user: &Session,
    q: &CoverageQuery,
    listed: Option<&crate::query::CallsPage>,
    problem: Option<&str>,
    tz: &Zone,
) -> Markup {
    let page = q.page.unwrap_or(1).max(1);
    let at = |p: usize| {
        let p = p.to_string();
        url_with(
            "/coverage",
            &[
                ("from", &q.from),
                ("until", &q.until),
                ("state", &q.state),
                ("agent", &q.agent),
                ("queue", &q.queue),
                ("page", &p),
            ],
        )
    };
    layout(
        Some(user),
        "Coverage",
        html! {
            p { "Calls from the PBX's call records, each with the recordings that cover it: which calls that had to be recorded were not." }
            form.filters method="get" action="/coverage" aria-label="Filter the calls" {
                label for="from" { "From" }
                input id="from" name="from" type="date" value=(q.from);
                label for="until" { "Until" }
                input id="until" name="until" type="date" value=(q.until);
                (select("state", "Coverage", &q.state, &[("", "any"), ("missing", "missing"), ("short", "short"), ("pending", "pending"), ("recorded", "recorded"), ("not_required", "not required")]))
                label for="agent" { "Agent" }
                input id="agent" name="agent" type="text" value=(q.agent);
                label for="queue" { "Queue" }
                input id="queue" name="queue" type="text" value=(q.queue);
                button type="submit" id="filter" { "Show" }
            }
            @if let Some(p) = problem { p.error role="alert" { (p) } }
            @if let Some(listed) = listed {
                @if listed.calls.is_empty() {
                    p id="no-calls" { "No call of the call records matches these filters." }
                } @else {
                    table id="coverage" {
                        caption { "Calls " ((page - 1) * PAGE + 1) "–" ((page - 1) * PAGE + listed.calls.len()) " of " (listed.total) ", oldest first" }
                        thead { tr {
                            th scope="col" { "Started" } th scope="col" { "Billable" }
                            th scope="col" { "Coverage" } th scope="col" { "Recorded" }
                            th scope="col" { "Agent" } th scope="col" { "Queue" }
                            th scope="col" { "Direction" } th scope="col" { "Recordings" }
                        } }
                        tbody {
                            @for c in &listed.calls {
                                tr {
                                    td { (when(c.start_ms, tz)) }
                                    td.num { (clock(c.billable_s)) }
                                    td { span class=(format!("state {}", c.state.as_str())) { (c.state.as_str().replace('_', " ")) } }
                                    td.num { (c.coverage.map(percent).unwrap_or_default()) }
                                    td { (c.agent.as_deref().unwrap_or("")) }
                                    td { (c.queue.as_deref().unwrap_or("")) }
                                    td { (c.direction.map(|d| word(&d)).unwrap_or_default()) }
                                    td {
                                        @for (i, r) in c.recordings.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            a href=(format!("/calls/{}", r.id)) { "#" (r.id) }
                                            @if let Some(score) = r.score { " (" (score) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !listed.orphans.is_empty() || !listed.ambiguous.is_empty() {
                    p id="unmatched" {
                        (listed.orphans.len()) " recordings of this window match no call, "
                        (listed.ambiguous.len()) " match several: the coverage report lists them."
                    }
                }
                nav.pages aria-label="Pages" {
                    @if page > 1 { a rel="prev" href=(at(page - 1)) { "← Earlier" } }
                    @if listed.total > page * PAGE { a rel="next" href=(at(page + 1)) { "Later →" } }
                }
            }
        },
    )
}

/// One row of the timeline: its label and the spans it draws, in seconds.
struct Lane {
    label: String,
    speech: Vec<[f64; 2]>,
    music: Vec<[f64; 2]>,
}

/// The time covered by two or more lanes' speech at once.
fn overtalk(lanes: &[Lane]) -> Vec<[f64; 2]> {
    let mut edges: Vec<(f64, i32)> = lanes
        .iter()
        .flat_map(|l| l.speech.iter().flat_map(|s| [(s[0], 1), (s[1], -1)]))
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut depth, mut start, mut out) = (0, 0.0, Vec::new());
    for (t, d) in edges {
        let before = depth;
        depth += d;
        if before < 2 && depth >= 2 {
            start = t;
        } else if before >= 2 && depth < 2 && t > start {
            out.push([start, t]);
        }
    }
    out
}

/// The speech, music and overtalk of each leg, as an SVG drawn from the stored analysis.
fn timeline(report: &Report) -> Markup {
    let duration = report.format.duration_s.max(0.001);
    let lanes: Vec<Lane> = match &report.channels {
        Some(chs) if chs.len() > 1 => chs
            .iter()
            .map(|c| Lane {
                label: c.role.clone(),
                speech: c.metrics.speech.segments.clone().unwrap_or_default(),
                music: c.metrics.hold.music.clone(),
            })
            .collect(),
        _ => vec![Lane {
            label: "mix".into(),
            speech: report.metrics.speech.segments.clone().unwrap_or_default(),
            music: report.metrics.hold.music.clone(),
        }],
    };
    let over = if lanes.len() > 1 {
        overtalk(&lanes)
    } else {
        Vec::new()
    };
    let (w, left, lane_h) = (900.0, 90.0, 22.0);
    let x = |t: f64| left + (t / duration).clamp(0.0, 1.0) * (w - left - 10.0);
    let height = lane_h * (lanes.len() as f64 + 1.0) + 20.0;
    let ticks: Vec<f64> = {
        let step = [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0]
            .into_iter()
            .find(|s| duration / s <= 10.0)
            .unwrap_or(7200.0);
        (0..=((duration / step) as usize))
            .map(|i| i as f64 * step)
            .collect()
    };
    let has_segments =
        lanes.iter().any(|l| !l.speech.is_empty()) || report.metrics.speech.talk_time_s == 0.0;
    html! {
        figure {
            svg id="timeline" role="img" viewBox=(format!("0 0 {w} {height}")) width="100%"
                aria-labelledby="timeline-title" {
                title id="timeline-title" { "Speech, hold music and overtalk per leg over " (clock(duration)) }
                @for (i, lane) in lanes.iter().enumerate() {
                    @let y = 10.0 + i as f64 * lane_h;
                    text x="4" y=(y + 15.0) class="lane" { (lane.label) }
                    rect x=(left) y=(y) width=(w - left - 10.0) height=(lane_h - 6.0) class="bg" {}
                    @for s in &lane.speech {
                        rect x=(x(s[0])) y=(y) width=((x(s[1]) - x(s[0])).max(0.5)) height=(lane_h - 6.0) class="speech" {}
                    }
                    @for s in &lane.music {
                        rect x=(x(s[0])) y=(y) width=((x(s[1]) - x(s[0])).max(0.5)) height=(lane_h - 6.0) class="music" {}
                    }
                }
                @if !over.is_empty() {
                    @let y = 10.0 + lanes.len() as f64 * lane_h;
                    text x="4" y=(y + 15.0) class="lane" { "overtalk" }
                    @for s in &over {
                        rect x=(x(s[0])) y=(y) width=((x(s[1]) - x(s[0])).max(0.5)) height=(lane_h - 6.0) class="over" {}
                    }
                }
                @for t in &ticks {
                    text x=(x(*t)) y=(height - 4.0) class="tick" { (clock(*t)) }
                }
            }
            figcaption {
                span.key.speech { "speech" } " " span.key.music { "hold music" } " " span.key.over { "overtalk" }
                @if !has_segments { " (analysed before segments were kept: the timeline is empty)" }
            }
        }
    }
}

/// One leg's level over time: its label and its envelope, if the analysis kept one.
struct Trace<'a> {
    label: &'a str,
    level: &'a crate::analysis::model::Level,
    floor: Option<f64>,
}

/// Each leg's level over time as a line (dBFS, 0 down to under the lowest noise floor), with its
/// noise floor dashed: where a leg went quiet, clipped or drowned in noise, drawn from the
/// stored analysis.
fn level_plot(report: &Report) -> Markup {
    let traces: Vec<Trace> = match &report.channels {
        Some(chs) if chs.len() > 1 => chs
            .iter()
            .map(|c| Trace {
                label: &c.role,
                level: &c.metrics.level,
                floor: c.metrics.noise.floor_dbfs,
            })
            .collect(),
        _ => vec![Trace {
            label: "mix",
            level: &report.metrics.level,
            floor: report.metrics.noise.floor_dbfs,
        }],
    };
    if traces.iter().all(|t| t.level.envelope.is_none()) {
        return html! {
            p.note id="no-levels" { "The level plot needs an analysis that kept the level over time (recordings analysed since schema v1.4)." }
        };
    }
    let duration = report.format.duration_s.max(0.001);
    let (w, left, top, plot_h, bottom) = (900.0, 90.0, 8.0, 140.0, 8.0 + 140.0);
    // Down to 10 dB under the lowest noise floor, in steps of the grid's 20 dB, from -60 to -120.
    let lowest = traces.iter().filter_map(|t| t.floor).fold(-50.0, f64::min);
    let (lo, hi) = (
        ((lowest - 10.0) / 20.0).floor().clamp(-6.0, -3.0) * 20.0,
        0.0,
    );
    let x = |t: f64| left + (t / duration).clamp(0.0, 1.0) * (w - left - 10.0);
    let y = |db: f64| top + (hi - db.clamp(lo, hi)) / (hi - lo) * plot_h;
    let height = bottom + 22.0;
    let line = |e: &crate::analysis::model::Envelope| -> String {
        let mut points = String::new();
        for (i, &db) in e.dbfs.iter().enumerate() {
            let t0 = i as f64 * e.step_s;
            let t1 = ((i + 1) as f64 * e.step_s).min(duration);
            for t in [t0, t1] {
                points.push_str(&format!("{:.1},{:.1} ", x(t), y(db as f64)));
            }
        }
        points.trim_end().to_string()
    };
    html! {
        figure {
            svg id="levels" role="img" viewBox=(format!("0 0 {w} {height}")) width="100%"
                aria-labelledby="levels-title" {
                title id="levels-title" { "Level per leg over " (clock(duration)) ", in dBFS, with each leg's noise floor dashed" }
                @for db in (0..=((hi - lo) / 20.0) as usize).map(|i| -20.0 * i as f64 + 0.0) {
                    line x1=(left) x2=(w - 10.0) y1=(y(db)) y2=(y(db)) class="grid" {}
                    text x=(left - 6.0) y=(y(db) + 4.0) text-anchor="end" class="tick" { (format!("{db:.0} dB")) }
                }
                @for (i, t) in traces.iter().enumerate() {
                    @if let Some(e) = &t.level.envelope {
                        polyline points=(line(e)) class=(format!("level l{}", i.min(2))) {}
                    }
                    @if let Some(f) = t.floor {
                        line x1=(left) x2=(w - 10.0) y1=(y(f)) y2=(y(f)) class="floor" {}
                    }
                }
            }
            figcaption {
                @for (i, t) in traces.iter().enumerate() {
                    span class=(format!("key l{}", i.min(2))) { (t.label) }
                    @if let Some(a) = t.level.active_speech_dbfs { " (speech " (format!("{a:.0}")) " dBFS" }
                    @else { " (no speech" }
                    @if let Some(f) = t.floor { ", noise " (format!("{f:.0}")) " dBFS" }
                    ") "
                }
            }
        }
    }
}

pub fn call(user: &Session, shown: &Shown, tz: &Zone) -> Markup {
    let r = &shown.record;
    let id = r.id.0;
    let meta = r.metadata.as_ref();
    let title = format!("Recording {id}");
    layout(
        Some(user),
        &title,
        html! {
            section aria-labelledby="about" {
                h2 id="about" { "The call" }
                dl {
                    dt { "Started" } dd { (when(r.started_ms, tz)) }
                    dt { "Duration" } dd { (r.duration_s.map(clock).unwrap_or_default()) }
                    dt { "Agent" } dd id="agent" { (meta.and_then(|m| m.agent.as_deref()).unwrap_or("")) }
                    dt { "Queue" } dd { (meta.and_then(|m| m.queue.as_deref()).unwrap_or("")) }
                    dt { "Call id" } dd { (meta.and_then(|m| m.call_id.as_deref()).unwrap_or("")) }
                    dt { "File" } dd { code { (r.path.to_string()) } }
                    dt { "State" } dd { (word(&r.state)) }
                }
            }
            @if let Some(report) = &r.report {
                section aria-labelledby="quality" {
                    h2 id="quality" { "Quality" }
                    p.score { "Score " strong id="score" class=(format!("grade {}", report.quality.grade.as_str())) { (report.quality.score) } " (" (report.quality.grade.as_str()) ", MOS " (format!("{:.1}", report.quality.mos)) ", " (report.quality.formula) ")" }
                    @if !report.quality.penalties.is_empty() {
                        table id="penalties" {
                            caption { "What took points off" }
                            thead { tr { th scope="col" { "Term" } th scope="col" { "Leg" } th scope="col" { "Points" } } }
                            tbody { @for p in &report.quality.penalties {
                                tr { td { (p.term) } td { (p.channel.as_deref().unwrap_or("")) } td.num { (format!("{:.1}", p.points)) } }
                            } }
                        }
                    }
                    @if !report.quality.flags.is_empty() {
                        ul id="flags" { @for f in &report.quality.flags {
                            li { strong { (f.code) } @if let Some(c) = &f.channel { " (" (c) ")" } ": " (f.message) }
                        } }
                    }
                    (timeline(report))
                    (level_plot(report))
                }
            } @else if let Some(e) = &r.error {
                p.error { "Not analysed: " (e.message) }
            }
            section aria-labelledby="listen" {
                h2 id="listen" { "Listen" }
                @if r.state == crate::record::RecordState::Purged {
                    p { "The recording was purged." }
                } @else {
                    audio id="player" controls preload="metadata" src=(format!("/calls/{id}/audio")) {
                        "Your browser cannot play this recording: "
                        a href=(format!("/calls/{id}/download")) { "download it" } "."
                    }
                    p { a id="download" href=(format!("/calls/{id}/download")) { "Download the original" } " (every playback and download is written to the audit log)" }
                }
            }
            section aria-labelledby="compliance" {
                h2 id="compliance" { "Consent, retention, holds" }
                dl {
                    dt { "Consent" }
                    dd id="consent" {
                        @if let Some(c) = &r.consent {
                            (word(&c.state)) " (" (word(&c.source)) ", recorded " (when(c.recorded_ms, tz)) " by " (c.actor) ")"
                            @if let Some(n) = &c.note { " — " (n) }
                        } @else { "none recorded" }
                    }
                    dt { "Retention" } dd id="retention" { (shown.retention_explained) }
                    dt { "Holds" }
                    dd id="holds" {
                        @if shown.holds.is_empty() { "none" }
                        @for h in &shown.holds {
                            div { "Hold " (h.id) ", case " (h.case) ": " (h.reason) " (" (h.actor) ", " (when(h.added_ms, tz)) ")"
                                @if h.released.is_some() { " — released" } }
                        }
                    }
                }
                @if user.role >= Role::Admin && r.state != crate::record::RecordState::Purged {
                    form.hold method="post" action=(format!("/calls/{id}/consent")) aria-label="Record the consent" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        (select("state", "Consent", "", &[("granted", "granted"), ("denied", "denied"), ("unknown", "unknown"), ("not_required", "not required")]))
                        (select("source", "Obtained by", "", &[("agent", "the agent"), ("ivr", "the IVR"), ("announcement", "the announcement"), ("api", "another system")]))
                        label for="note" { "Note" } input id="note" name="note" type="text";
                        button type="submit" id="set-consent" { "Record the consent" }
                    }
                    form.hold method="post" action=(format!("/calls/{id}/hold")) aria-label="Place a legal hold" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for="case" { "Case" } input id="case" name="case" type="text" required;
                        label for="reason" { "Reason" } input id="reason" name="reason" type="text" required;
                        button type="submit" id="place-hold" { "Place a legal hold" }
                    }
                }
            }
            @if user.role >= Role::Auditor {
                section aria-labelledby="audit" {
                    h2 id="audit" { "Audit log" }
                    table id="audit-entries" {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Details" } } }
                        tbody { @for e in &shown.audit {
                            tr { td { (when(e.time_ms, tz)) } td { (e.actor) } td { (e.action) } td { code { (e.details.to_string()) } } }
                        } }
                    }
                }
            }
        },
    )
}

pub fn kpi(user: &Session, q: &KpiQuery, k: &crate::kpi::Kpi) -> Markup {
    let pct = |x: Option<f64>| x.map(percent).unwrap_or_default();
    let num = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_default();
    layout(
        Some(user),
        "KPIs",
        html! {
            form.filters method="get" action="/kpi" aria-label="KPI window" {
                label for="from" { "From" } input id="from" name="from" type="date" value=(q.from);
                label for="until" { "Until" } input id="until" name="until" type="date" value=(q.until);
                (select("by", "Group by", &q.by, &[("day", "day"), ("week", "week"), ("agent", "agent"), ("queue", "queue"), ("all", "the whole window")]))
                button type="submit" { "Show" }
            }
            (kpi_chart(k))
            table id="kpi" {
                thead { tr {
                    th scope="col" { "Group" } th scope="col" { "Recordings" } th scope="col" { "Mean score" }
                    th scope="col" { "Poor or bad" } th scope="col" { "Mean duration" } th scope="col" { "Mean hold" }
                    th scope="col" { "Consent covered" }
                } }
                tbody {
                    @for row in k.rows.iter().chain(std::iter::once(&k.total)) {
                        tr {
                            th scope="row" { (row.group) }
                            td.num { (row.recordings) }
                            td.num { (num(row.mean_score)) }
                            td.num { (pct(row.share_poor_or_bad)) }
                            td.num { (row.mean_duration_s.map(clock).unwrap_or_default()) }
                            td.num { (row.mean_hold_s.map(clock).unwrap_or_default()) }
                            td.num { (pct(row.consent_coverage)) }
                        }
                    }
                }
            }
        },
    )
}

/// The mean score of each group as bars (0-100), the share of poor or bad calls marked on
/// each: the KPI table at a glance.
fn kpi_chart(k: &crate::kpi::Kpi) -> Markup {
    let rows: Vec<&crate::kpi::KpiRow> = k.rows.iter().filter(|r| r.mean_score.is_some()).collect();
    if rows.is_empty() {
        return html! {};
    }
    let (left, bar_h, w) = (140.0, 18.0, 900.0);
    let x = |v: f64| left + v.clamp(0.0, 100.0) / 100.0 * (w - left - 60.0);
    let height = rows.len() as f64 * (bar_h + 6.0) + 24.0;
    html! {
        figure {
            svg id="kpi-chart" role="img" viewBox=(format!("0 0 {w} {height}")) width="100%" aria-labelledby="kpi-chart-title" {
                title id="kpi-chart-title" { "Mean score by " (word(&k.by)) ", with the share of poor or bad calls" }
                @for (i, r) in rows.iter().enumerate() {
                    @let y = 4.0 + i as f64 * (bar_h + 6.0);
                    @let mean = r.mean_score.unwrap_or(0.0);
                    text x="4" y=(y + 13.0) class="lane" { (r.group) }
                    rect x=(left) y=(y) width=(x(100.0) - left) height=(bar_h) class="bg" {}
                    rect x=(left) y=(y) width=(x(mean) - left) height=(bar_h) class="speech" {}
                    @if let Some(share) = r.share_poor_or_bad {
                        rect x=(left) y=(y + bar_h - 5.0) width=(x(share * 100.0) - left) height="5" class="over" {}
                    }
                    text x=(x(100.0) + 6.0) y=(y + 13.0) class="lane" { (format!("{mean:.0}")) }
                }
                @for t in [0.0, 25.0, 50.0, 75.0, 100.0] {
                    text x=(x(t)) y=(height - 4.0) class="tick" { (format!("{t:.0}")) }
                }
            }
            figcaption { span.key.speech { "mean score" } " " span.key.over { "share poor or bad (of 100 %)" } }
        }
    }
}

pub fn reports(user: &Session) -> Markup {
    let kinds: &[(&str, &str, Role)] = &[
        ("quality", "Quality", Role::Viewer),
        ("consent", "Consent", Role::Auditor),
        ("retention", "Retention", Role::Auditor),
        ("holds", "Legal holds", Role::Auditor),
        ("coverage", "Recording coverage", Role::Auditor),
        ("pci", "Card digits (PCI DSS)", Role::Auditor),
        ("purged", "Deletion certificate", Role::Auditor),
    ];
    layout(
        Some(user),
        "Reports",
        html! {
            ul id="reports" {
                @for (kind, name, needs) in kinds {
                    @if user.role >= *needs {
                        li { (name) ": "
                            a href=(format!("/reports/{kind}")) { "HTML" } ", "
                            a href=(format!("/reports/{kind}?format=csv")) { "CSV" } ", "
                            a href=(format!("/reports/{kind}?format=json")) { "JSON" }
                        }
                    }
                }
            }
        },
    )
}
