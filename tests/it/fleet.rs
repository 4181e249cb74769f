//! Many sites, one view (issue 24), against a real PostgreSQL (`crate::pg`): two daemons
//! export to one central database; faults (kill -9 during export, the database stopped for
//! 30 s, a batch refused by a constraint) lose and double nothing; tampering is named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use callwarden::store::Store;
use callwarden::summary::Summary;

use crate::daemon::{kill9, Daemon};
use crate::pg::Pg;
use crate::support::{age, ok, speech, text, white, write_wav, Rng};

struct Site {
    _dir: tempfile::TempDir,
    name: String,
    root: PathBuf,
    store: PathBuf,
    config: PathBuf,
}

/// A site exporting to `pg` in batches of `batch`, with `extra` appended to its `[export]`.
fn site(name: &str, pg: &Pg, batch: usize, extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recordings");
    std::fs::create_dir_all(&root).unwrap();
    let store = dir.path().join("store");
    let config = dir.path().join("callwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nroots = [{root:?}]\nsettle_s = 0.0\nworkers = 2\n[store]\npath = {store:?}\n\
             [control]\nsocket = \"\"\n[calls]\ntimezone = \"UTC\"\n\
             [export]\nhead_interval_s = 1.0\n{extra}\n\
             [export.postgres]\nurl = {:?}\nsite = {name:?}\nbatch = {batch}\n",
            pg.url()
        ),
    )
    .unwrap();
    Site {
        _dir: dir,
        name: name.into(),
        root,
        store,
        config,
    }
}

/// Recordings `from..to` of a site: 2 s of speech in a little noise, each with a sidecar
/// (agent, queue, call id; consent granted on every fourth), aged past settling.
fn recordings(s: &Site, from: usize, to: usize) {
    let voice = speech("asterisk-vm-review");
    let noise = white(16000, 7);
    for i in from..to {
        let gain = 0.3 + 0.5 * ((i * 37) % 11) as f32 / 11.0;
        let samples: Vec<f32> = (0..16000)
            .map(|k| voice[(k + 400 * i) % voice.len()] * gain + noise[k] * 0.003)
            .collect();
        let path = s.root.join(format!("{}-{i:04}.wav", s.name));
        write_wav(&path, &samples, 1);
        let consent = if i % 4 == 0 {
            r#", "consent": {"state": "granted"}"#
        } else {
            ""
        };
        std::fs::write(
            path.with_extension("json"),
            format!(
                r#"{{"start_time": "2026-11-{:02}T{:02}:{:02}:00Z", "agent": "agent-{}", "queue": "q{}", "call_id": "{}-{i}"{consent}}}"#,
                1 + i % 28,
                8 + i % 10,
                i % 60,
                i % 5,
                i % 3,
                s.name
            ),
        )
        .unwrap();
        age(&path, 3600);
        age(&path.with_extension("json"), 3600);
    }
}

fn cw(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("CALLWARDEN_CONFIG", "")
        .output()
        .unwrap()
}

fn fleet(pg: &Pg, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .arg("fleet")
        .args(args)
        .arg("--db")
        .arg(pg.url())
        .env("CALLWARDEN_CONFIG", "")
        .output()
        .unwrap()
}

fn count(pg: &Pg, sql: &str) -> i64 {
    pg.client().query_one(sql, &[]).unwrap().get(0)
}

/// Waits until `done`, polling; panics with `what` after `limit`.
fn wait(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn recordings_there(pg: &Pg, site: &str) -> i64 {
    count(
        pg,
        &format!("SELECT count(*) FROM fleet_recordings WHERE site = '{site}'"),
    )
}

/// After `fleet push` on the stopped store: the central database holds exactly what the
/// store holds, once, and every event of the site in order with nothing missing.
fn assert_mirrors(pg: &Pg, s: &Site) {
    let pushed = ok(cw(&s.config, &["fleet", "push"]));
    assert!(pushed.contains("nothing left to send"), "{pushed}");
    let store = Store::open(&s.store).unwrap();
    let site = s.name.as_str();
    let mut client = pg.client();
    // Recordings: every summary, as the store has it now.
    let here: BTreeMap<u64, Summary> = store
        .summaries(None, None)
        .map(|r| r.unwrap())
        .map(|s| (s.id, s))
        .collect();
    let there: BTreeMap<u64, Summary> = client
        .query(
            "SELECT summary::text FROM fleet_recordings WHERE site = $1",
            &[&site],
        )
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str::<Summary>(&r.get::<_, String>(0)).unwrap())
        .map(|s| (s.id, s))
        .collect();
    assert_eq!(here.len(), there.len(), "{site}: recordings");
    assert!(here == there, "{site}: the summaries differ");
    // Holds and purges (tombstones).
    let holds: Vec<String> = store
        .holds()
        .unwrap()
        .iter()
        .map(|h| serde_json::to_string(h).unwrap())
        .collect();
    let holds_there: Vec<String> = client
        .query(
            "SELECT body::text FROM fleet_holds WHERE site = $1 ORDER BY id",
            &[&site],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.get::<_, String>(0)).unwrap();
            serde_json::to_string(&serde_json::from_value::<callwarden::record::Hold>(v).unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(holds, holds_there, "{site}: holds");
    let purged: Vec<u64> = store
        .in_state(callwarden::record::RecordState::Purged)
        .map(|r| r.unwrap().id.0)
        .collect();
    let purged_there: Vec<u64> = client
        .query(
            "SELECT id FROM fleet_purges WHERE site = $1 ORDER BY id",
            &[&site],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0) as u64)
        .collect();
    assert_eq!(purged, purged_there, "{site}: purges");
    // The audit chain, whole, ending where the store's does.
    let head = store.audit_head().unwrap();
    let row = client
        .query_one(
            "SELECT count(*), max(seq), (SELECT hash FROM fleet_audit WHERE site = $1
               ORDER BY seq DESC LIMIT 1) FROM fleet_audit WHERE site = $1",
            &[&site],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0) as u64,
        head.seq,
        "{site}: audit entries"
    );
    assert_eq!(row.get::<_, Option<i64>>(1), Some(head.seq as i64));
    assert_eq!(row.get::<_, Option<String>>(2), Some(head.hash.clone()));
    // Every event once and in order: numbers 1..=n without a gap, n the store's last, and
    // each digest the one the store chained.
    let outbox = store.outbox_state().unwrap();
    assert_eq!(outbox.backlog(), 0, "{site}: all acknowledged");
    let seqs: Vec<i64> = client
        .query(
            "SELECT seq FROM fleet_events WHERE site = $1 ORDER BY seq",
            &[&site],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seqs.len() as u64, outbox.head.seq, "{site}: events");
    assert!(
        seqs.iter().enumerate().all(|(i, &q)| q == i as i64 + 1),
        "{site}: events numbered 1..=n"
    );
    let last: String = client
        .query_one(
            "SELECT last_digest FROM fleet_sites WHERE site = $1",
            &[&site],
        )
        .unwrap()
        .get(0);
    assert_eq!(last, outbox.head.digest, "{site}: the chain's end");
}

fn migrate(pg: &Pg) {
    let first = ok(fleet(pg, &["migrate"]));
    assert!(first.contains("from version 0 to 1"), "{first}");
    let again = ok(fleet(pg, &["migrate"]));
    assert!(again.contains("nothing to do"), "{again}");
}

/// The JSON Lines of a `kpi --json`, by group.
fn kpi_lines(out: &str) -> BTreeMap<String, serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["group"].as_str().unwrap().to_string(), v))
        .collect()
}

#[test]
fn two_sites_export_to_one_database_and_it_holds_exactly_theirs() {
    let Some(pg) = Pg::start() else { return };
    migrate(&pg);
    // Paris sends its callers' numbers hashed.
    let sites = [
        site(
            "paris",
            &pg,
            50,
            "redact = true\nredact_key = \"paris-0123456789abcdef\"",
        ),
        site("lyon", &pg, 50, ""),
    ];
    for s in &sites {
        recordings(s, 0, 500);
    }
    let daemons: Vec<Daemon> = sites.iter().map(|s| Daemon::start(&s.config)).collect();
    for s in &sites {
        wait(Duration::from_secs(180), "500 recordings there", || {
            recordings_there(&pg, &s.name) == 500
        });
    }
    for d in daemons {
        assert_eq!(d.stop(), Some(0));
    }
    // Consent changes, a hold, a purge and the PBX's call records, on the stopped stores (the
    // CLI writes the outbox too); then the daemons again, with more recordings arriving while
    // they run.
    for s in &sites {
        let cdr = s.root.with_file_name("Master.csv");
        std::fs::write(&cdr, master_csv(&s.name)).unwrap();
        let imported = ok(cw(&s.config, &["calls", "import", cdr.to_str().unwrap()]));
        assert!(imported.contains("45"), "{imported}");
    }
    let (paris, lyon) = (&sites[0], &sites[1]);
    for id in ["3", "4", "5"] {
        ok(cw(&paris.config, &["consent", "set", id, "denied"]));
    }
    ok(cw(&lyon.config, &["consent", "set", "9", "granted"]));
    let hold = ok(cw(
        &lyon.config,
        &["hold", "add", "7", "--case", "K-7", "--reason", "subpoena"],
    ));
    assert!(hold.contains("placed on 1"), "{hold}");
    let purged = ok(cw(&paris.config, &["purge", "--id", "10"]));
    assert!(purged.contains("purged 1 "), "{purged}");
    let daemons: Vec<Daemon> = sites.iter().map(|s| Daemon::start(&s.config)).collect();
    for s in &sites {
        recordings(s, 500, 520);
    }
    for s in &sites {
        wait(Duration::from_secs(120), "520 recordings there", || {
            recordings_there(&pg, &s.name) == 520
        });
    }
    for d in daemons {
        assert_eq!(d.stop(), Some(0));
    }
    for s in &sites {
        assert_mirrors(&pg, s);
    }
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM fleet_purges WHERE site = 'paris' AND id = 10"
        ),
        1
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM fleet_holds WHERE site = 'lyon' AND case_id = 'K-7'"
        ),
        1
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM fleet_consent WHERE site = 'paris' AND state = 'denied'"
        ),
        3
    );

    // The fleet's KPIs are the sites' KPIs added up: the same code over both sites' summaries.
    let window = ["--since", "3650d", "--now", "2026-12-06T00:00:00Z"];
    let fleet_kpi = kpi_lines(&ok(fleet(
        &pg,
        &[&["kpi", "--json"][..], &window[..]].concat(),
    )));
    let site_kpi: Vec<BTreeMap<String, serde_json::Value>> = sites
        .iter()
        .map(|s| {
            kpi_lines(&ok(cw(
                &s.config,
                &[&["kpi", "--json"][..], &window[..]].concat(),
            )))
        })
        .collect();
    let total = &fleet_kpi["total"];
    for field in ["recordings", "analysed", "failed", "too_short"] {
        let sum: u64 = site_kpi
            .iter()
            .map(|k| k["total"][field].as_u64().unwrap())
            .sum();
        assert_eq!(total[field].as_u64().unwrap(), sum, "{field}");
    }
    assert_eq!(
        total["recordings"].as_u64(),
        Some(1039),
        "1040 less one purged"
    );
    // Means and shares: what the site's own code makes of both stores' summaries together.
    let both: Vec<Summary> = sites
        .iter()
        .flat_map(|s| {
            let store = Store::open(&s.store).unwrap();
            store
                .summaries(None, None)
                .map(|r| r.unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = serde_json::to_value(
        callwarden::kpi::kpi(
            both,
            callwarden::kpi::GroupBy::All,
            callwarden::config::ConsentLaw::OneParty,
        )
        .total,
    )
    .unwrap();
    for field in [
        "mean_score",
        "talk_s",
        "share_poor_or_bad",
        "consent_coverage",
        "mean_duration_s",
    ] {
        let (a, b) = (
            total[field].as_f64().unwrap(),
            expected[field].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{field}: {a} vs {b}");
    }
    // By site: one row per site, equal to that site's own total.
    let by_site = kpi_lines(&ok(fleet(
        &pg,
        &[&["kpi", "--json", "--by", "site"][..], &window[..]].concat(),
    )));
    for (s, k) in sites.iter().zip(&site_kpi) {
        let row = &by_site[&s.name];
        for field in ["recordings", "analysed", "mean_score", "consent_coverage"] {
            assert_eq!(row[field], k["total"][field], "{} {field}", s.name);
        }
    }
    // Numbers left Paris hashed, Lyon's as they are.
    let numbers = |site: &str| -> Vec<String> {
        pg.client()
            .query(
                "SELECT body::jsonb #>> '{event,leg,src}' FROM fleet_events
                 WHERE site = $1 AND kind = 'call'",
                &[&site],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let (hashed, plain) = (numbers("paris"), numbers("lyon"));
    assert_eq!((hashed.len(), plain.len()), (45, 45));
    assert!(
        hashed.iter().all(|n| n.starts_with("h:") && n.len() == 34),
        "{hashed:?}"
    );
    assert!(plain.iter().all(|n| n == "1001"), "{plain:?}");
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM fleet_calls WHERE site = 'paris' AND (body->>'src' = '1001' \
             OR body->>'dst' = '2000' OR body->>'clid' LIKE '%1001%')"
        ),
        0
    );

    // Calls: the fleet's coverage is the sites' added up (45 calls each, 40 recorded).
    let coverage = |out: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(out).unwrap()["total"].clone()
    };
    let args = ["report", "coverage", "--format", "json", "--since", "3650d"];
    let fleet_cov = coverage(&ok(Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .arg("fleet")
        .args(args)
        .args(["--db", &pg.url(), "--config"])
        .arg(&paris.config)
        .output()
        .unwrap()));
    let site_cov: Vec<serde_json::Value> = sites
        .iter()
        .map(|s| coverage(&ok(cw(&s.config, &args))))
        .collect();
    for field in [
        "calls",
        "must_record",
        "recorded",
        "lawful",
        "analysed",
        "missing",
        "short",
    ] {
        let sum: u64 = site_cov.iter().map(|c| c[field].as_u64().unwrap()).sum();
        assert_eq!(fleet_cov[field].as_u64(), Some(sum), "{field}: {fleet_cov}");
    }
    assert_eq!(fleet_cov["must_record"].as_u64(), Some(90), "{fleet_cov}");
    assert_eq!(fleet_cov["recorded"].as_u64(), Some(80), "{fleet_cov}");
    assert_eq!(fleet_cov["missing"].as_u64(), Some(10), "{fleet_cov}");
    let with_calls = kpi_lines(&ok(fleet(
        &pg,
        &[&["kpi", "--json"][..], &window[..]].concat(),
    )));
    assert_eq!(with_calls["total"]["calls"]["recorded"].as_u64(), Some(80));

    // Reports over the fleet, with the sites' renderers.
    let consent = ok(fleet(
        &pg,
        &["report", "consent", "--format", "json", "--since", "3650d"],
    ));
    assert!(consent.contains("\"report\": \"consent\""), "{consent}");
    let html = ok(fleet(
        &pg,
        &["report", "quality", "--format", "html", "--since", "3650d"],
    ));
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..100]);
    let holds = ok(fleet(
        &pg,
        &["report", "holds", "--format", "csv", "--site", "lyon"],
    ));
    // Paris's deletion certificate from the central copy is the one Paris gives.
    let certificate = |out: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["recordings"].clone()
    };
    let central = certificate(&ok(fleet(
        &pg,
        &["report", "purged", "--format", "json", "--site", "paris"],
    )));
    let local = certificate(&ok(cw(
        &paris.config,
        &["report", "purged", "--format", "json"],
    )));
    assert_eq!(central, local);
    assert_eq!(central[0]["id"].as_u64(), Some(10), "{central}");
    let no_site = fleet(&pg, &["report", "purged"]);
    assert_ne!(no_site.status.code(), Some(0));
    assert!(text(&no_site).contains("give --site"), "{}", text(&no_site));
    assert!(holds.contains("K-7"), "{holds}");

    // Every SQL panel of the shipped Grafana dashboard runs on this schema and finds rows.
    dashboard_queries_run(&pg);

    // The chains verify; an entry changed in the central table is named.
    let verified = ok(fleet(&pg, &["verify"]));
    assert_eq!(verified.matches("intact").count(), 2, "{verified}");
    pg.client()
        .batch_execute(
            "UPDATE fleet_audit SET entry = replace(entry, '\"actor\":\"', '\"actor\":\"x') \
             WHERE site = 'lyon' AND seq = 5",
        )
        .unwrap();
    let tampered = fleet(&pg, &["verify"]);
    assert_eq!(tampered.status.code(), Some(3), "{}", text(&tampered));
    let out = String::from_utf8_lossy(&tampered.stdout);
    assert!(out.contains("paris") && out.contains("intact"), "{out}");
    assert!(
        out.contains("lyon") && out.contains("entry 5: content does not match its hash"),
        "{out}"
    );
}

#[test]
fn kill_9_a_stopped_database_and_a_refused_batch_lose_and_double_nothing() {
    let Some(pg) = Pg::start() else { return };
    migrate(&pg);
    let s = site("nice", &pg, 2, "");
    // Killed at random points of the export: 34 new recordings before each start, and the
    // kill as soon as the database holds a random number of the new ones.
    let mut rng = Rng::new(24);
    let mut there = Vec::new();
    for round in 0..10 {
        let before = recordings_there(&pg, "nice");
        recordings(&s, 34 * round, 34 * (round + 1));
        let mut d = Daemon::start(&s.config);
        let target = before + 1 + (rng.uniform() * 20.0) as i64;
        wait(
            Duration::from_secs(60),
            "some of the new recordings",
            || recordings_there(&pg, "nice") >= target,
        );
        kill9(&mut d);
        there.push((recordings_there(&pg, "nice"), 34 * (round as i64 + 1)));
    }
    eprintln!("recordings in the central database at each kill, of those written: {there:?}");
    // Most kills fell while the export was under way, not after it.
    let during = there.iter().filter(|(t, w)| t < w).count();
    assert!(during >= 5, "{there:?}");
    let d = Daemon::start(&s.config);
    wait(Duration::from_secs(120), "340 recordings there", || {
        recordings_there(&pg, "nice") == 340
    });
    // A batch the database refuses (a constraint): retried, never skipped, landed once the
    // constraint is gone.
    pg.client()
        .batch_execute(
            "ALTER TABLE fleet_recordings ADD CONSTRAINT no_agent_3 \
             CHECK (agent IS DISTINCT FROM 'agent-3') NOT VALID",
        )
        .unwrap();
    recordings(&s, 340, 360);
    d.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("export failed") && x.contains("no_agent_3"))
        },
        "a refused batch",
    );
    let stuck = recordings_there(&pg, "nice");
    assert!(stuck < 360, "the batch with agent-3 did not land: {stuck}");
    pg.client()
        .batch_execute("ALTER TABLE fleet_recordings DROP CONSTRAINT no_agent_3")
        .unwrap();
    wait(Duration::from_secs(60), "360 recordings there", || {
        recordings_there(&pg, "nice") == 360
    });
    // The database stopped mid-export for 30 s: ingest goes on, the backlog drains after.
    recordings(&s, 360, 420);
    std::thread::sleep(Duration::from_millis(150));
    pg.stop();
    d.wait_for(
        |l| {
            (360..420).all(|i| {
                let name = format!("nice-{i:04}.wav");
                l.iter().any(|x| x.contains("stored") && x.contains(&name))
            })
        },
        "ingest while the database is down",
    );
    std::thread::sleep(Duration::from_secs(30));
    pg.start_again();
    wait(Duration::from_secs(120), "420 recordings there", || {
        recordings_there(&pg, "nice") == 420
    });
    assert_eq!(d.stop(), Some(0));
    assert_mirrors(&pg, &s);
}

#[test]
fn a_store_rolled_back_is_refused_and_a_full_outbox_is_sent_again_whole() {
    let Some(pg) = Pg::start() else { return };
    migrate(&pg);
    // The outbox holds 20 events at most. Sent once; then the database goes away and 60 more
    // recordings come: 20 wait, the rest is not queued one by one, and the site is sent whole
    // once the database is back.
    let s = site("lille", &pg, 100, "max_backlog = 20");
    recordings(&s, 0, 10);
    let d = Daemon::start(&s.config);
    wait(Duration::from_secs(60), "10 recordings there", || {
        recordings_there(&pg, "lille") == 10
    });
    pg.stop();
    recordings(&s, 10, 70);
    d.wait_for(
        |l| {
            (10..70).all(|i| {
                let name = format!("lille-{i:04}.wav");
                l.iter().any(|x| x.contains("stored") && x.contains(&name))
            })
        },
        "ingest while the database is down",
    );
    assert_eq!(d.stop(), Some(0));
    let state = Store::open(&s.store).unwrap().outbox_state().unwrap();
    assert!(state.overflowed && state.lost >= 40, "{state:?}");
    assert_eq!(state.backlog(), 20, "{state:?}");
    let status = ok(cw(&s.config, &["status"]));
    let sent = state.ack.seq;
    assert!(
        status.contains(&format!(
            "export    site lille: 20 events waiting, {sent} sent (bound 20); overflowed"
        )),
        "{status}"
    );
    pg.start_again();
    assert_mirrors(&pg, &s);

    // A backup of the store (with its anchor), then more recordings sent; the backup restored.
    let backup = s.store.with_file_name("backup");
    crate::compliance::copy_tree(&s.store, &backup.join("store"));
    let anchor = s.store.with_file_name("store.head");
    std::fs::copy(&anchor, backup.join("store.head")).unwrap();
    let d = Daemon::start(&s.config);
    recordings(&s, 60, 80);
    wait(Duration::from_secs(60), "80 recordings there", || {
        recordings_there(&pg, "lille") == 80
    });
    assert_eq!(d.stop(), Some(0));
    let before = count(&pg, "SELECT last_seq FROM fleet_sites WHERE site = 'lille'");
    std::fs::remove_dir_all(&s.store).unwrap();
    crate::compliance::copy_tree(&backup.join("store"), &s.store);
    std::fs::copy(backup.join("store.head"), &anchor).unwrap();
    // With its control socket, so `status` asks the daemon.
    let socket = s.store.with_file_name("control.sock");
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("socket = \"\"", &format!("socket = {socket:?}")),
    )
    .unwrap();
    let d = Daemon::start(&s.config);
    d.wait_for(
        |l| {
            l.iter()
                .any(|x| x.contains("export refused") && x.contains("older copy"))
        },
        "the exporter's refusal",
    );
    wait(Duration::from_secs(10), "the refusal in status", || {
        String::from_utf8_lossy(&cw(&s.config, &["status"]).stdout).contains("export    REFUSED")
    });
    let status = ok(cw(&s.config, &["status"]));
    assert!(status.contains("older copy"), "{status}");
    assert_eq!(d.stop(), Some(0));
    let push = cw(&s.config, &["fleet", "push"]);
    assert_eq!(push.status.code(), Some(3), "{}", text(&push));
    assert!(text(&push).contains("site lille"), "{}", text(&push));
    assert_eq!(
        count(&pg, "SELECT last_seq FROM fleet_sites WHERE site = 'lille'"),
        before,
        "nothing of the old copy was sent"
    );
}

/// Runs every SQL query of `assets/grafana/callwarden-fleet.json`, Grafana's macros replaced
/// as Grafana would for all time and both sites; the daily views must give rows.
fn dashboard_queries_run(pg: &Pg) {
    let path = crate::support::assets().join("grafana/callwarden-fleet.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(sql) = m.get("rawSql").and_then(|s| s.as_str()) {
                    out.push(sql.to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut queries);
    assert!(queries.len() >= 8, "{queries:?}");
    let mut client = pg.client();
    let mut with_rows = 0;
    for sql in &queries {
        let sql = sql
            .replace(
                "$__timeFilter(day)",
                "day BETWEEN '2000-01-01' AND '2100-01-01'",
            )
            .replace("${site:sqlstring}", "'paris','lyon'");
        let rows = client
            .query(&sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        with_rows += usize::from(!rows.is_empty());
    }
    assert!(
        with_rows >= queries.len() - 1,
        "{with_rows} of {}",
        queries.len()
    );
}

/// The PBX's `Master.csv` (Asterisk's cdr_csv layout) for a site: the calls of its recordings
/// 0..40 (uniqueid = the sidecar's call id, the same start, 2 billable seconds) and 5 calls
/// that no recording names.
fn master_csv(site: &str) -> String {
    let mut out = String::new();
    for i in 0..45usize {
        let (uid, day, hour, minute) = if i < 40 {
            (format!("{site}-{i}"), 1 + i % 28, 8 + i % 10, i % 60)
        } else {
            (format!("{site}-none-{i}"), 2, 20, i)
        };
        let at = |s: usize| format!("2026-11-{day:02} {hour:02}:{minute:02}:{s:02}");
        out.push_str(&format!(
            "\"\",\"1001\",\"2000\",\"from-internal\",\"\"\"Agent\"\" <1001>\",\
             \"PJSIP/1001-{i:08x}\",\"PJSIP/2000-{i:08x}\",\"Dial\",\"PJSIP/2000,30\",\
             \"{}\",\"{}\",\"{}\",2,2,\"ANSWERED\",\"DOCUMENTATION\",\"{uid}\",\"\"\n",
            at(0),
            at(0),
            at(2)
        ));
    }
    out
}

#[test]
fn the_database_is_reached_over_tls_and_its_certificate_is_checked() {
    use callwarden::fleet::central::Central;
    // An authority of our own, and the server's certificate for 127.0.0.1 signed by it.
    let certs = crate::support::test_certificates();
    let Some(pg) = Pg::start_with_tls(&certs.certificate, &certs.key) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ours, &certs.authority).unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other_ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&other_key)
        .unwrap();
    std::fs::write(&other, other_ca.pem()).unwrap();
    let url = format!("{} sslmode=require", pg.url());

    // Checked against our authority: encrypted, as the server sees it.
    let mut c = Central::connect(&url, Some(&ours)).unwrap();
    assert!(c.encrypted().unwrap());
    // Another authority, or the public roots: no connection at all.
    let refused = Central::connect(&url, Some(&other))
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("certificate"), "{refused}");
    assert!(Central::connect(&url, None).is_err());
    // Not PEM: said plainly.
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let junk = Central::connect(&url, Some(&dir.path().join("junk.pem")))
        .err()
        .unwrap()
        .to_string();
    assert!(
        junk.contains("junk.pem") && junk.contains("no certificate"),
        "{junk}"
    );

    // The commands and the exporter, end to end.
    let migrated = Command::new(env!("CARGO_BIN_EXE_callwarden"))
        .args(["fleet", "migrate", "--db", &url, "--ca-file"])
        .arg(&ours)
        .env("CALLWARDEN_CONFIG", "")
        .output()
        .unwrap();
    assert!(ok(migrated).contains("to 1"));
    let s = site("tls", &pg, 50, "");
    let config = std::fs::read_to_string(&s.config).unwrap();
    let config = config.replace(
        &format!("url = {:?}", pg.url()),
        &format!("url = {url:?}\nca_file = {ours:?}"),
    );
    std::fs::write(&s.config, config).unwrap();
    recordings(&s, 0, 10);
    let d = Daemon::start(&s.config);
    wait(Duration::from_secs(60), "10 recordings there", || {
        recordings_there(&pg, "tls") == 10
    });
    assert_eq!(d.stop(), Some(0));
}
