//! The fleet's pure parts: reconciliation, redaction, the central chain check.

use super::*;
use crate::audit::{AuditAction, Draft, GENESIS};

fn pos(seq: u64, digest: &str) -> Position {
    Position {
        seq,
        digest: digest.into(),
    }
}

fn outbox(ack: Position, head: Position) -> OutboxState {
    OutboxState {
        enabled: true,
        ack,
        head,
        max_backlog: 100,
        ..OutboxState::default()
    }
}

fn central(last: Position, audit_seq: u64, audit_hash: &str) -> CentralSite {
    CentralSite {
        last,
        audit: Head {
            seq: audit_seq,
            hash: audit_hash.into(),
        },
    }
}

fn head(seq: u64, hash: &str) -> Head {
    Head {
        seq,
        hash: hash.into(),
    }
}

/// The store's events 1..=10 have digests "d1".."d10"; its audit entries 1..=20, hashes
/// "h1".."h20".
fn decide(c: &CentralSite, o: &OutboxState) -> Result<Option<Position>, Refusal> {
    reconcile(
        "s",
        c,
        o,
        |seq| (seq > o.ack.seq && seq <= o.head.seq).then(|| format!("d{seq}")),
        &head(20, "h20"),
        |seq| (1..=20).contains(&seq).then(|| format!("h{seq}")),
    )
}

#[test]
fn a_store_and_a_database_that_agree_go_on() {
    let o = outbox(pos(4, "d4"), pos(10, "d10"));
    assert_eq!(decide(&central(pos(4, "d4"), 12, "h12"), &o), Ok(None));
    // A batch committed whose acknowledgement the store lost (a crash between the two).
    assert_eq!(
        decide(&central(pos(7, "d7"), 12, "h12"), &o),
        Ok(Some(pos(7, "d7")))
    );
    // A new site: nothing sent yet on either side.
    let fresh = outbox(pos(0, ""), pos(3, "d3"));
    assert_eq!(decide(&CentralSite::default(), &fresh), Ok(None));
}

#[test]
fn an_older_or_foreign_store_is_refused() {
    let o = outbox(pos(4, "d4"), pos(10, "d10"));
    // Restored from an older copy: the database holds events the store never wrote.
    assert!(matches!(
        decide(&central(pos(15, "d15"), 12, "h12"), &o),
        Err(Refusal::StoreBehind {
            central: 15,
            store: 10,
            ..
        })
    ));
    // Another history under the same numbers.
    assert!(matches!(
        decide(&central(pos(7, "x7"), 12, "h12"), &o),
        Err(Refusal::Diverged { seq: 7, .. })
    ));
    assert!(matches!(
        decide(&central(pos(4, "x4"), 12, "h12"), &o),
        Err(Refusal::Diverged { seq: 4, .. })
    ));
    // The database lost what it acknowledged.
    assert!(matches!(
        decide(&central(pos(2, "d2"), 12, "h12"), &o),
        Err(Refusal::CentralBehind { from: 3, to: 4, .. })
    ));
    // The audit chain is checked first: a store whose chain is shorter, or different.
    assert!(matches!(
        decide(&central(pos(4, "d4"), 25, "h25"), &o),
        Err(Refusal::AuditBehind {
            central: 25,
            store: 20,
            ..
        })
    ));
    assert!(matches!(
        decide(&central(pos(4, "d4"), 12, "other"), &o),
        Err(Refusal::AuditRewritten { seq: 12, .. })
    ));
    let message = decide(&central(pos(15, "d15"), 12, "h12"), &o)
        .unwrap_err()
        .to_string();
    assert!(message.contains("older copy"), "{message}");
}

#[test]
fn numbers_leave_hashed_under_the_key() {
    let key = b"0123456789abcdef";
    let a = redact_number(key, "+33140000000");
    assert!(a.starts_with("h:") && a.len() == 34, "{a}");
    assert_eq!(
        a,
        redact_number(key, "+33140000000"),
        "the same number, the same hash"
    );
    assert_ne!(a, redact_number(key, "+33140000001"));
    assert_ne!(a, redact_number(b"another key, 16+", "+33140000000"));
    assert_eq!(redact_number(key, ""), "");
    assert!(!a.contains("3314"));
}

#[test]
fn site_names_are_checked() {
    assert!(SiteName::try_from("paris-1.dc_2".to_string()).is_ok());
    for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
        assert!(SiteName::try_from(bad.to_string()).is_err(), "{bad:?}");
    }
}

fn chain(n: u64) -> Vec<Entry> {
    let mut prev = GENESIS.to_string();
    (1..=n)
        .map(|seq| {
            let e = Draft::new("t", AuditAction::Note, serde_json::json!({"n": seq})).seal(
                seq,
                1000 * seq as i64,
                &prev,
            );
            prev = e.hash.clone();
            e
        })
        .collect()
}

#[test]
fn the_central_chain_is_checked_against_its_heads() {
    let entries = chain(6);
    let rows = |v: &[Entry]| -> Vec<(u64, Result<Entry, String>)> {
        v.iter().map(|e| (e.seq, Ok(e.clone()))).collect()
    };
    let heads = vec![(3, entries[2].hash.clone()), (6, entries[5].hash.clone())];
    assert_eq!(verify_site(rows(&entries), &heads), (6, vec![]));
    // An entry edited in the central table.
    let mut edited = entries.clone();
    edited[1].actor = "mallory".into();
    let (_, breaks) = verify_site(rows(&edited), &heads);
    assert_eq!(breaks[0].seq, 2, "{breaks:?}");
    // A site that rewrote its history after anchoring: entries that chain, but not the head.
    let mut rewritten = chain(3);
    rewritten[2] = Draft::new("t", AuditAction::Note, serde_json::json!({"n": "other"})).seal(
        3,
        3000,
        &rewritten[1].hash,
    );
    let (_, breaks) = verify_site(rows(&rewritten), &heads);
    let seqs: Vec<u64> = breaks.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, [3, 6], "{breaks:?}");
}
