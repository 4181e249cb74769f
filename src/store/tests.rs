//! The store's unit tests: records and indexes, the audit chain, upgrades, damage.

use super::keys::{record_key, RECORD_VERSION};
use super::*;
use crate::metadata::Metadata;

#[test]
fn ids_count_on_across_restarts_and_holds_have_their_own() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let ids: Vec<u64> = (0..3).map(|_| store.next_id().unwrap().0).collect();
        assert_eq!(ids, [1, 2, 3]);
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.next_id().unwrap().0, 4, "no jump at a restart");
    assert_eq!(store.next_in("next_hold_id", HOLDS).unwrap(), 1);
    // A store whose ids came from sled's generator: counting starts past the largest.
    let r = record(2_000_007, "/r/a.wav", 100);
    store
        .commit(
            &r,
            None,
            Draft::new("t", AuditAction::Ingest, serde_json::json!({})),
            1,
        )
        .unwrap();
    store.trees[META].remove("next_recording_id").unwrap();
    assert_eq!(store.next_id().unwrap().0, 2_000_008);
}

fn p(path: &str) -> RecordingPath {
    RecordingPath::from_bytes(path.as_bytes()).unwrap()
}

fn record(id: u64, path: &str, started_ms: i64) -> Record {
    Record {
        id: RecordingId(id),
        path: p(path),
        size: 10,
        mtime_ns: 5,
        sha256: "ab".into(),
        state: RecordState::Analysed,
        started_ms,
        ingested_ms: 0,
        report: None,
        error: None,
        metadata: Some(Metadata {
            agent: Some("alice".into()),
            ..Default::default()
        }),
        flags: vec![],
        metadata_error: None,
        ..Record::blank()
    }
}

#[test]
fn a_snapshot_left_unfinished_by_a_crash_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let a = record(1, "/r/a.wav", 100);
        store
            .commit(
                &a,
                None,
                Draft::new("t", AuditAction::Ingest, serde_json::Value::Null),
                1,
            )
            .unwrap();
        store.flush().unwrap();
    }
    // What a kill -9 in the middle of sled's snapshot write leaves behind.
    let torn = dir.path().join("snap.FFFFFFFFFFFFFFF0.generating");
    std::fs::write(&torn, b"half a snapshot").unwrap();
    assert!(
        matches!(
            sled::Config::new().path(dir.path()).open(),
            Err(sled::Error::Corruption { .. })
        ),
        "sled alone does not open it"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.by_path(&p("/r/a.wav")).unwrap().unwrap().id,
        RecordingId(1)
    );
    assert!(!torn.exists());
    assert!(dir
        .path()
        .join(UNFINISHED_SNAPSHOTS)
        .join("snap.FFFFFFFFFFFFFFF0.generating")
        .exists());
}

#[test]
fn keys_sort_by_time_then_id() {
    let mut keys = [
        record_key(5, RecordingId(1)),
        record_key(-3, RecordingId(9)),
        record_key(5, RecordingId(0)),
        record_key(1_700_000_000_000, RecordingId(2)),
    ];
    keys.sort();
    assert_eq!(keys[0], record_key(-3, RecordingId(9)));
    assert_eq!(keys[1], record_key(5, RecordingId(0)));
    assert_eq!(keys[3], record_key(1_700_000_000_000, RecordingId(2)));
}

#[test]
fn records_round_trip_and_indexes_follow_updates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = record(1, "/r/a.wav", 100);
    store
        .commit(
            &a,
            None,
            Draft::new("t", AuditAction::Ingest, serde_json::Value::Null),
            1,
        )
        .unwrap();
    assert_eq!(store.by_path(&p("/r/a.wav")).unwrap(), Some(a.clone()));
    assert_eq!(store.count_by_state(RecordState::Analysed), 1);
    let mut b = a.clone();
    b.state = RecordState::Missing;
    store
        .commit(
            &b,
            Some(&a),
            Draft::new("t", AuditAction::Missing, serde_json::Value::Null),
            2,
        )
        .unwrap();
    assert_eq!(store.count_by_state(RecordState::Analysed), 0);
    assert_eq!(store.count_by_state(RecordState::Missing), 1);
    assert_eq!(store.all().count(), 1);
    drop(store);
    // Reopens with the same content.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.by_path(&p("/r/a.wav")).unwrap().unwrap().state,
        RecordState::Missing
    );
}

#[test]
fn a_write_against_a_record_changed_since_it_was_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let draft = || Draft::new("t", AuditAction::Ingest, serde_json::Value::Null);
    let a = record(1, "/r/staging/a.wav", 100);
    store.commit(&a, None, draft(), 1).unwrap();
    // A worker carries the record to the file's new name...
    let mut moved = a.clone();
    moved.path = p("/r/day/a.wav");
    store.commit(&moved, Some(&a), draft(), 2).unwrap();
    // ... while the event loop, which read it at its old name, marks it missing: refused.
    let mut missing = a.clone();
    missing.state = RecordState::Missing;
    let entries = store.audit_entries().count();
    assert!(matches!(
        store.commit(&missing, Some(&a), draft(), 3),
        Err(StoreError::Stale)
    ));
    assert_eq!(store.audit_entries().count(), entries, "nothing written");
    assert_eq!(store.all().count(), 1);
    assert_eq!(
        store.by_path(&p("/r/day/a.wav")).unwrap(),
        Some(moved.clone())
    );
    assert_eq!(store.by_path(&p("/r/staging/a.wav")).unwrap(), None);
    // Read again, the same change is written.
    let mut n = 0;
    crate::store::until_fresh(|| {
        n += 1;
        let old = if n == 1 {
            a.clone()
        } else {
            store.get(a.id)?.unwrap()
        };
        let mut r = old.clone();
        r.state = RecordState::Missing;
        store.commit(&r, Some(&old), draft(), 3)
    })
    .unwrap();
    assert_eq!(n, 2);
    let now = store.get(a.id).unwrap().unwrap();
    assert_eq!(
        (now.path, now.state),
        (p("/r/day/a.wav"), RecordState::Missing)
    );
}

#[test]
fn a_write_stale_every_time_gives_up_with_the_error() {
    let mut runs = 0;
    let done: Result<(), StoreError> = crate::store::until_fresh(|| {
        runs += 1;
        Err(StoreError::Stale)
    });
    assert!(matches!(done, Err(StoreError::Stale)));
    assert_eq!(runs, crate::store::MAX_FRESH_TRIES);
    // Any other outcome ends the runs at once.
    let mut runs = 0;
    let done: Result<u8, StoreError> = crate::store::until_fresh(|| {
        runs += 1;
        if runs < 3 {
            Err(StoreError::Stale)
        } else {
            Ok(7)
        }
    });
    assert_eq!((done.unwrap(), runs), (7, 3));
}

#[test]
fn a_store_from_a_newer_version_is_refused_plainly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    match Store::open(dir.path()) {
        Err(e @ StoreError::NewerSchema { found: 99, .. }) => {
            assert!(e.to_string().contains("newer than this build"))
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a newer store was opened"),
    }
}

#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let old = r#"{"id":7,"path":"/r/a.wav","size":10,"mtime_ns":5,"sha256":"ab",
        "state":"analysed","started_ms":100,"ingested_ms":0,"report":null,"error":null,
        "metadata":null,"flags":[],"metadata_error":null}"#;
    let key = record_key(100, RecordingId(7));
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &1u32.to_be_bytes())
            .unwrap();
        let mut value = vec![RECORD_VERSION];
        value.extend_from_slice(old.as_bytes());
        db.open_tree("recordings")
            .unwrap()
            .insert(key, value)
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let r = store.get(RecordingId(7)).unwrap().unwrap();
    assert_eq!(r.path, "/r/a.wav");
    assert!(r.holds.is_empty() && r.consent.is_none() && r.tombstone.is_none());
    let version = store.trees[META].get("schema_version").unwrap().unwrap();
    assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
    // Version 3's summaries are built from the records.
    let summaries: Vec<Summary> = store.summaries(None, None).map(|s| s.unwrap()).collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0], Summary::of(&r));
    assert_eq!(
        store.summary(RecordingId(7)).unwrap(),
        Some(Summary::of(&r))
    );
}

#[test]
fn what_cannot_be_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = record(1, "/r/a.wav", 100);
    store
        .commit(
            &a,
            None,
            Draft::new("t", AuditAction::Ingest, serde_json::json!({})),
            1,
        )
        .unwrap();
    assert!(store.unreadable().is_empty());
    // A summary whose bytes changed (list would fail on it).
    store.trees[SUMMARIES]
        .insert(a.key(), &b"{\"id\":"[..])
        .unwrap();
    store.trees[BY_PATH]
        .insert(b"/r/gone.wav", &[0u8; 16][..])
        .unwrap();
    let problems = store.unreadable();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("by_path "), "{problems:?}");
    assert!(problems[1].starts_with("summaries "), "{problems:?}");
    assert!(!crate::verify::verify(&store, true, 1).unwrap().ok());
}

#[test]
fn a_version_4_store_gets_its_content_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = record(1, "/r/a.wav", 100);
    a.sha256 = "aa".into();
    let mut b = record(2, "/r/copy/a.wav", 200);
    b.sha256 = "aa".into();
    {
        let store = Store::open(dir.path()).unwrap();
        let ingest = |_: &Record| Draft::new("ingest", AuditAction::Ingest, serde_json::json!({}));
        store
            .commit_many(&[(a.clone(), ingest(&a)), (b.clone(), ingest(&b))], 1)
            .unwrap();
        // As a version 4 store (today's main before the index) left it.
        store.trees[BY_SHA].clear().unwrap();
        store.trees[META]
            .insert("schema_version", &4u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<u64> = store.by_sha("aa").unwrap().iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [1, 2]);
    assert!(
        store.by_sha("a").unwrap().is_empty(),
        "a prefix is no match"
    );
    // Kept as records change.
    let mut moved = b.clone();
    moved.path = p("/r/b.wav");
    moved.sha256 = "bb".into();
    store
        .commit(
            &moved,
            Some(&b),
            Draft::new("t", AuditAction::Note, serde_json::json!({})),
            2,
        )
        .unwrap();
    assert_eq!(store.by_sha("aa").unwrap().len(), 1);
    assert_eq!(store.by_sha("bb").unwrap()[0].path, p("/r/b.wav"));
}

#[test]
fn a_version_5_store_gets_the_error_code_in_its_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut failed = record(1, "/r/broken.wav", 100);
    failed.state = RecordState::Failed;
    failed.error = Some(crate::analysis::model::ErrorBody {
        code: "decode_failed".into(),
        message: "not audio".into(),
    });
    {
        let store = Store::open(dir.path()).unwrap();
        let draft = Draft::new("ingest", AuditAction::Ingest, serde_json::json!({}));
        store.commit_many(&[(failed.clone(), draft)], 1).unwrap();
        // As a version 5 store left it: the summary without the code.
        let key = failed.key();
        let mut old = crate::summary::Summary::of(&failed);
        old.error = None;
        store.trees[SUMMARIES]
            .insert(key, serde_json::to_vec(&old).unwrap())
            .unwrap();
        store.trees[META]
            .insert("schema_version", &5u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let summaries: Vec<_> = store.summaries(None, None).map(|s| s.unwrap()).collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].error.as_deref(), Some("decode_failed"));
}

#[test]
fn a_version_3_store_gets_its_audit_index_and_new_entries_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (record(1, "/r/a.wav", 100), record(2, "/r/b.wav", 200));
    {
        let store = Store::open(dir.path()).unwrap();
        let ingest = |r: &Record| {
            Draft::new("ingest", AuditAction::Ingest, serde_json::json!({})).about(r.id.0)
        };
        store
            .commit_many(&[(a.clone(), ingest(&a)), (b.clone(), ingest(&b))], 1)
            .unwrap();
        store
            .audit(
                vec![Draft::new(
                    "daemon",
                    AuditAction::ConfigReload,
                    serde_json::json!({}),
                )],
                2,
            )
            .unwrap();
        // As a version 3 store left it: no index.
        store.trees[AUDIT_BY_RECORDING].clear().unwrap();
        store.trees[META]
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let of = |id| -> Vec<u64> {
        store
            .audit_of(RecordingId(id))
            .map(|e| e.unwrap().1.unwrap().seq)
            .collect()
    };
    assert_eq!((of(1), of(2)), (vec![1], vec![2]));
    let c = record(1, "/r/a.wav", 100);
    store
        .commit(
            &c,
            Some(&a),
            Draft::new("x", AuditAction::Metadata, serde_json::json!({})).about(1),
            3,
        )
        .unwrap();
    assert_eq!(of(1), vec![1, 4]);
    // The index holds exactly the log's entries about each recording.
    let scanned: Vec<(u64, u64)> = store
        .audit_entries()
        .filter_map(|e| {
            let (seq, e) = e.unwrap();
            e.unwrap().recording.map(|id| (id, seq))
        })
        .collect();
    let mut indexed: Vec<(u64, u64)> = [1, 2]
        .iter()
        .flat_map(|&id| of(id).into_iter().map(move |seq| (id, seq)))
        .collect();
    indexed.sort_by_key(|&(id, seq)| (seq, id));
    assert_eq!(indexed, scanned);
}

#[test]
fn every_change_appends_to_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = record(1, "/r/a.wav", 100);
    store
        .commit(
            &a,
            None,
            Draft::new("t", AuditAction::Ingest, serde_json::Value::Null).about(1),
            1,
        )
        .unwrap();
    let consent = ConsentRecord {
        state: crate::metadata::ConsentState::Denied,
        source: crate::metadata::ConsentSource::Cli,
        time_ms: Some(2),
        recorded_ms: 2,
        actor: "carol".into(),
        note: None,
    };
    let r = store
        .set_consent(RecordingId(1), consent, ConsentLaw::AllParty, 2)
        .unwrap();
    assert_eq!(r.consent.unwrap().actor, "carol");
    let selection = Selection {
        agent: Some("alice".into()),
        ..Selection::default()
    };
    let hold = store.add_hold("K", "why", "dave", selection, 3).unwrap();
    assert_eq!(hold.recordings, vec![RecordingId(1)]);
    assert_eq!(
        store.get(RecordingId(1)).unwrap().unwrap().holds,
        vec![hold.id]
    );
    store.release_hold(hold.id, "erin", "closed", 4).unwrap();
    assert!(store.get(RecordingId(1)).unwrap().unwrap().holds.is_empty());
    assert!(store.release_hold(hold.id, "erin", "again", 5).is_err());
    // An empty selection would hold everything by accident: refused.
    assert!(store
        .add_hold("K", "why", "dave", Selection::default(), 6)
        .is_err());
    let entries: Vec<_> = store
        .audit_entries()
        .map(|e| e.unwrap().1.unwrap())
        .collect();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ingest", "t"),
            ("consent", "carol"),
            ("hold_add", "dave"),
            ("hold_add", "dave"),
            ("hold_release", "erin"),
            ("hold_release", "erin"),
        ]
    );
    let head = store.audit_head().unwrap();
    let (count, breaks) =
        crate::audit::verify_chain(store.audit_entries().map(|e| e.unwrap()), &head);
    assert_eq!((count, breaks.len()), (6, 0));
}

#[test]
fn unknown_record_versions_are_reported_not_misread() {
    let err = decode(b"k", &[9, b'{', b'}']).unwrap_err();
    assert!(err.to_string().contains("unknown record version 9"));
}

#[test]
fn a_version_6_store_gets_its_call_key_index_and_call_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = record(1, "/r/out-1700000000.12.wav", 100);
    r.metadata = Some(Metadata {
        call_id: Some("1700000000.12".into()),
        ..Default::default()
    });
    let leg: crate::cdr::CallRecord = serde_json::from_value(serde_json::json!({
        "id": "1700000000.12", "start_ms": 50, "end_ms": 90_000, "duration_s": 90,
        "billsec": 80, "disposition": "answered", "src": "1", "dst": "2", "clid": "",
        "context": "c", "channel": "", "dst_channel": "", "last_app": "Dial",
        "account": "", "userfield": ""
    }))
    .unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let draft = Draft::new("ingest", AuditAction::Ingest, serde_json::json!({}));
        store.commit_many(&[(r.clone(), draft)], 1).unwrap();
        store.put_calls(&[leg], "t", "test", 0, 1).unwrap();
        // As a version 6 store left it: no index; and calls' times miscounted, as an
        // interrupted upgrade could leave them.
        store.trees[BY_CALL_KEY].clear().unwrap();
        store.trees[CALL_TIMES]
            .insert("1700000000.12", super::digests::encode_call_time(50, 7))
            .unwrap();
        store.trees[META]
            .insert("schema_version", &6u32.to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let named = store.recordings_naming("1700000000.12").unwrap();
    assert_eq!(named.iter().map(|s| s.id).collect::<Vec<_>>(), [1]);
    assert_eq!(store.recordings_naming("out").unwrap().len(), 1);
    assert_eq!(
        store.call_named("1700000000.12").unwrap().as_deref(),
        Some("1700000000.12")
    );
    assert_eq!(store.call_named("nothing").unwrap(), None);
    // Counted afresh: once its one leg is dropped, the call is gone.
    store.drop_calls_before(i64::MAX, "t", 2).unwrap();
    assert_eq!(store.call_named("1700000000.12").unwrap(), None);
}

#[test]
fn a_recording_stored_while_call_records_are_read_moves_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    const DAY: i64 = 86_400_000;
    let leg: crate::cdr::CallRecord = serde_json::from_value(serde_json::json!({
        "id": "late.1", "start_ms": 10 * DAY, "end_ms": 10 * DAY + 60_000, "duration_s": 60,
        "billsec": 55, "disposition": "answered", "src": "1", "dst": "2", "clid": "",
        "context": "c", "channel": "", "dst_channel": "", "last_app": "Dial",
        "account": "", "userfield": ""
    }))
    .unwrap();
    // A recording naming that call, days away from it, stored after the call records' reads
    // and before their transaction.
    let mut r = record(1, "/r/late.1.wav", 20 * DAY);
    r.metadata = Some(Metadata {
        call_id: Some("late.1".into()),
        ..Default::default()
    });
    let (s2, r2) = (store.clone(), r.clone());
    let generation = std::sync::Arc::new(std::sync::Mutex::new(0));
    let g2 = generation.clone();
    super::digests::BETWEEN.with(|b| {
        *b.borrow_mut() = Some(Box::new(move || {
            let draft = Draft::new("t", AuditAction::Ingest, serde_json::json!({}));
            s2.commit(&r2, None, draft, 1).unwrap();
            *g2.lock().unwrap() = s2.day_generation(20).unwrap();
        }))
    });
    store.put_calls(&[leg], "t", "test", 0, 1).unwrap();
    let after_recording = *generation.lock().unwrap();
    assert_ne!(after_recording, 0);
    // The call records' transaction saw the recording's key move, read again, and moved the
    // recording's day (its recording is no longer an orphan there).
    assert_ne!(store.day_generation(20).unwrap(), after_recording);
}

mod outbox_events {
    use super::super::outbox::{chain_digest, Event, Position};
    use super::*;

    fn ingest(store: &Store, id: u64) -> Record {
        let r = record(id, &format!("/r/{id}.wav"), 1000 * id as i64);
        let d = Draft::new("t", AuditAction::Ingest, serde_json::json!({})).about(id);
        store.commit(&r, None, d, 1).unwrap();
        r
    }

    fn kinds(store: &Store) -> Vec<String> {
        store
            .outbox_after(0, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| match e.envelope().unwrap().event {
                Event::Recording { summary } => format!("recording {}", summary.id),
                Event::Purge { id, .. } => format!("purge {id}"),
                Event::Hold { hold } => format!("hold {}", hold.id),
                Event::Call { leg } => format!("call {}", leg.id),
                Event::CallDropped { id } => format!("dropped {id}"),
                Event::Head { head, .. } => format!("head {}", head.seq),
                Event::Resync => "resync".into(),
                Event::ResyncDone { from } => format!("resync_done {from}"),
            })
            .collect()
    }

    #[test]
    fn nothing_is_appended_until_export_is_switched_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        ingest(&store, 1);
        assert!(kinds(&store).is_empty());
        assert!(!store.outbox_state().unwrap().enabled);
    }

    #[test]
    fn switching_on_sends_the_site_as_it_is_then_each_change_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        ingest(&store, 1);
        let sel = Selection {
            ids: vec![1],
            ..Default::default()
        };
        store.add_hold("case-1", "why", "alice", sel, 5).unwrap();
        let state = store.start_outbox(1000).unwrap();
        assert!(state.enabled && state.needs_resync(), "{state:?}");
        assert!(
            kinds(&store).is_empty(),
            "the site is sent by the first resync"
        );
        // A change before it is not appended: the resync sends it.
        ingest(&store, 2);
        assert!(kinds(&store).is_empty());
        assert!(store.resync_outbox().unwrap());
        assert_eq!(
            kinds(&store),
            [
                "resync",
                "recording 1",
                "recording 2",
                "hold 1",
                "resync_done 1"
            ]
        );
        // A second start only sets the bound again.
        store.start_outbox(500).unwrap();
        assert_eq!(kinds(&store).len(), 5);
        // A change appends its events in its own transaction: the hold's and the records'.
        ingest(&store, 3);
        store.release_hold(1, "alice", "done", 6).unwrap();
        store.outbox_head(7).unwrap();
        assert_eq!(
            kinds(&store)[5..],
            ["recording 3", "recording 1", "hold 1", "head 7"]
        );
        // The digests chain, from an empty one.
        let events = store.outbox_after(0, usize::MAX).unwrap();
        let mut previous = String::new();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(e.digest, chain_digest(&previous, e.seq, &e.bytes));
            previous = e.digest.clone();
        }
        let state = store.outbox_state().unwrap();
        assert_eq!(state.head.seq, 9);
        assert_eq!(state.backlog(), 9);
        // Acknowledged events leave; an acknowledgement never moves back or past the head.
        store
            .ack_outbox(&Position {
                seq: 6,
                digest: events[5].digest.clone(),
            })
            .unwrap();
        assert_eq!(store.outbox_after(0, 10).unwrap()[0].seq, 7);
        assert_eq!(store.outbox_state().unwrap().backlog(), 3);
        store
            .ack_outbox(&Position {
                seq: 2,
                digest: String::new(),
            })
            .unwrap();
        assert_eq!(store.outbox_state().unwrap().ack.seq, 6);
        assert!(store
            .ack_outbox(&Position {
                seq: 99,
                digest: String::new()
            })
            .is_err());
        // Kept across a restart.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.outbox_state().unwrap().ack.seq, 6);
        assert_eq!(
            store.outbox_event(9).unwrap().unwrap().digest,
            events[8].digest
        );
    }

    #[test]
    fn a_full_backlog_never_blocks_a_change_and_a_resync_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.start_outbox(2).unwrap();
        assert!(store.resync_outbox().unwrap());
        assert_eq!(kinds(&store), ["resync", "resync_done 1"]);
        let top = store.outbox_state().unwrap().head.clone();
        store.ack_outbox(&top).unwrap();
        for id in 1..=4 {
            ingest(&store, id);
        }
        let state = store.outbox_state().unwrap();
        assert!(state.overflowed && state.needs_resync(), "{state:?}");
        assert_eq!((state.backlog(), state.lost), (2, 2));
        assert_eq!(
            store.get(RecordingId(4)).unwrap().unwrap().id.0,
            4,
            "stored all the same"
        );
        store.ack_outbox(&state.head).unwrap();
        assert!(store.resync_outbox().unwrap());
        assert!(!store.resync_outbox().unwrap(), "once");
        let after = kinds(&store);
        assert_eq!(
            after,
            [
                "resync",
                "recording 1",
                "recording 2",
                "recording 3",
                "recording 4",
                "resync_done 5"
            ]
        );
        // The snapshot does not count against the bound: two more changes still fit.
        ingest(&store, 5);
        ingest(&store, 6);
        assert!(!store.outbox_state().unwrap().overflowed);
        ingest(&store, 7);
        assert!(store.outbox_state().unwrap().overflowed);
    }

    #[test]
    fn a_purge_sends_its_tombstone_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.start_outbox(100).unwrap();
        store.resync_outbox().unwrap();
        let old = ingest(&store, 1);
        let mut purged = old.clone();
        purged.state = RecordState::Purged;
        purged.tombstone = Some(Tombstone {
            deleted_ms: 9,
            policy_ms: None,
            rule: "default".into(),
            reason: "expired".into(),
            actor: "retention".into(),
            scope: Scope::Audio,
            sidecar_deleted: false,
            rolled_forward: false,
        });
        let d = || Draft::new("t", AuditAction::Purge, serde_json::json!({})).about(1);
        store.commit(&purged, Some(&old), d(), 9).unwrap();
        let mut again = purged.clone();
        again.purge_note = Some("noted".into());
        store.commit(&again, Some(&purged), d(), 10).unwrap();
        assert_eq!(
            kinds(&store)[2..],
            ["recording 1", "recording 1", "purge 1", "recording 1"]
        );
    }
}
