//! Many sites, one view: each site's records, KPIs and audit heads in a central PostgreSQL.
//!
//! The audio stays where the PBX wrote it. What leaves a site is its outbox
//! ([`crate::store::outbox`]: summaries, tombstones, holds, call records, anchored heads) and
//! its audit chain, sent in order by the daemon's exporter ([`export`]) through the PostgreSQL
//! adapter ([`central`]), one transaction per batch, exactly once: the central database keys
//! both by (site, number) and takes a batch only if it continues what it holds (the next
//! number, chained to the digest or hash before). Before it sends anything after a (re)connect,
//! the exporter compares the central position with the store's ([`reconcile`]); a store that is
//! behind what the central database already holds (restored from an older copy, or another
//! store under the same site name) is refused, loudly, and nothing is sent.
//!
//! This module is the pure part: site names, the reconciliation, the keyed hash of numbers
//! (`export.redact`) and the check of a site's exported audit chain against its heads.

pub mod central;
pub mod export;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::audit::{Break, Entry, Head};
use crate::store::outbox::{OutboxState, Position};

/// A site's name in the central database: 1-64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteName(String);

impl SiteName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteName {
    type Error = String;

    fn try_from(name: String) -> Result<SiteName, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(SiteName(name))
        } else {
            Err(format!(
                "site name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
            ))
        }
    }
}

impl From<SiteName> for String {
    fn from(s: SiteName) -> String {
        s.0
    }
}

impl std::fmt::Display for SiteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the central database holds of one site.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CentralSite {
    /// The last outbox event it holds, and that event's digest.
    pub last: Position,
    /// The last audit entry it holds, and that entry's hash.
    pub audit: Head,
}

/// Why the exporter will not send: the store and the central database tell different
/// histories. Never papered over: an operator must look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "site {site}: the central database holds outbox event {central}, but this store's last \
         is {store}: the store is an older copy (restored or rolled back) or another site's; \
         nothing is exported until an operator resolves it (docs/fleet.md, \"Refused\")"
    )]
    StoreBehind {
        site: String,
        central: u64,
        store: u64,
    },
    #[error(
        "site {site}: the central database's outbox event {seq} is not this store's (digests \
         differ): the store is an older copy that went on since, or another store exports \
         under this site name; nothing is exported (docs/fleet.md, \"Refused\")"
    )]
    Diverged { site: String, seq: u64 },
    #[error(
        "site {site}: the central database lacks outbox events {from} to {to} that it \
         acknowledged before: it was restored from an older copy; nothing is exported until an \
         operator resolves it (docs/fleet.md, \"Refused\")"
    )]
    CentralBehind { site: String, from: u64, to: u64 },
    #[error(
        "site {site}: the central database holds audit entry {central}, but this store's chain \
         ends at {store}: the store is an older copy (restored or rolled back); nothing is \
         exported until an operator resolves it (docs/fleet.md, \"Refused\")"
    )]
    AuditBehind {
        site: String,
        central: u64,
        store: u64,
    },
    #[error(
        "site {site}: audit entry {seq} in the central database differs from this store's: the \
         store is an older copy that went on since, or one of the two histories was \
         rewritten; nothing is exported (docs/fleet.md, \"Refused\")"
    )]
    AuditRewritten { site: String, seq: u64 },
}

/// Compares the central position of `site` with the store's, before anything is sent.
///
/// - `outbox`: the store's outbox state; `digest_at(seq)`: the digest of an event the outbox
///   still holds (events after the acknowledged one are kept until acknowledged).
/// - `audit_head`: the store's chain head; `hash_at(seq)`: the hash of its entry `seq`.
///
/// Returns the position to acknowledge (the central database committed a batch whose
/// acknowledgement the store did not keep: a crash between the two), or why not to go on.
pub fn reconcile(
    site: &str,
    central: &CentralSite,
    outbox: &OutboxState,
    digest_at: impl Fn(u64) -> Option<String>,
    audit_head: &Head,
    hash_at: impl Fn(u64) -> Option<String>,
) -> Result<Option<Position>, Refusal> {
    let site = site.to_string();
    // The audit chain first: it is the proof.
    if central.audit.seq > audit_head.seq {
        return Err(Refusal::AuditBehind {
            site,
            central: central.audit.seq,
            store: audit_head.seq,
        });
    }
    if central.audit.seq > 0 && hash_at(central.audit.seq).as_deref() != Some(&central.audit.hash) {
        return Err(Refusal::AuditRewritten {
            site,
            seq: central.audit.seq,
        });
    }
    let (c, ack) = (&central.last, &outbox.ack);
    if c.seq > outbox.head.seq {
        return Err(Refusal::StoreBehind {
            site,
            central: c.seq,
            store: outbox.head.seq,
        });
    }
    if c.seq < ack.seq {
        return Err(Refusal::CentralBehind {
            site,
            from: c.seq + 1,
            to: ack.seq,
        });
    }
    if c.seq == ack.seq {
        return if c.digest == ack.digest {
            Ok(None)
        } else {
            Err(Refusal::Diverged { site, seq: c.seq })
        };
    }
    match digest_at(c.seq) {
        Some(d) if d == c.digest => Ok(Some(c.clone())),
        _ => Err(Refusal::Diverged { site, seq: c.seq }),
    }
}

/// The keyed hash numbers leave a site as when `export.redact` is on: `h:` and the first 16
/// bytes of HMAC-SHA256 under the site's key, in hex. The same number under the same key gives
/// the same hash (so calls can still be counted by caller), and without the key it cannot be
/// reversed by trying every number.
pub fn redact_number(key: &[u8], number: &str) -> String {
    if number.is_empty() {
        return String::new();
    }
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(number.as_bytes());
    format!("h:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
}

/// A call record with its numbers (source, destination, caller id) hashed.
pub fn redact_leg(key: &[u8], leg: &mut crate::cdr::CallRecord) {
    leg.src = redact_number(key, &leg.src);
    leg.dst = redact_number(key, &leg.dst);
    leg.clid = redact_number(key, &leg.clid);
}

/// One site's exported audit chain checked as a chain (every hash, link and number, from
/// entry 1) and against the heads it anchored (`(audit seq, hash)`): a site that rewrote its
/// history after anchoring a head, or an entry edited in the central table, is named.
pub fn verify_site(
    entries: impl IntoIterator<Item = (u64, Result<Entry, String>)>,
    heads: &[(u64, String)],
) -> (u64, Vec<Break>) {
    let entries: Vec<(u64, Result<Entry, String>)> = entries.into_iter().collect();
    let last = entries.last().map_or(Head::default(), |(seq, e)| Head {
        seq: *seq,
        hash: e.as_ref().map_or(String::new(), |e| e.hash.clone()),
    });
    let hash_of: std::collections::HashMap<u64, String> = entries
        .iter()
        .filter_map(|(seq, e)| e.as_ref().ok().map(|e| (*seq, e.hash.clone())))
        .collect();
    let (count, mut breaks) = crate::audit::verify_chain(entries, &last);
    for (seq, hash) in heads {
        match hash_of.get(seq) {
            Some(h) if h == hash => {}
            Some(_) => breaks.push(Break {
                seq: *seq,
                problem: "differs from the head the site anchored for it".into(),
            }),
            None if *seq == 0 => {}
            None => breaks.push(Break {
                seq: *seq,
                problem: "the site anchored a head here, but the entry is not in the central copy"
                    .into(),
            }),
        }
    }
    breaks.sort_by_key(|b| b.seq);
    (count, breaks)
}

#[cfg(test)]
mod tests;
