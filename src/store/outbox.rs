//! The outbox: what a central database must learn of this site, as one gap-free sequence.
//!
//! Once export is switched on ([`Store::start_outbox`]), every transaction that changes what
//! matters centrally appends its events to the `outbox` tree *in that same transaction*: a
//! recording's summary (never audio) whenever the record changes, a tombstone when it is purged,
//! a hold as placed or released, a call record stored or dropped, and the audit chain's head
//! when the exporter asks ([`Store::outbox_head`]). The audit entries themselves are not copied:
//! the audit log is already an append-only, gap-free sequence in the store, and the exporter
//! reads it directly.
//!
//! Each event has a number (1, 2, …, never reused) and a digest chaining it to the one before
//! (`sha256(previous digest, number, bytes)`), so that the event a central database holds under
//! a number proves which history it belongs to: a store restored from an older copy, or another
//! store under the same site name, cannot continue a central sequence without being caught.
//!
//! The exporter acknowledges what the central database committed ([`Store::ack_outbox`]); the
//! acknowledged events leave the tree. The backlog (events not yet acknowledged) is bounded by
//! `max_backlog`: past it, events are no longer appended and the outbox is marked overflowed,
//! so ingest never waits for the central database. Once the backlog has drained, the exporter
//! resynchronises ([`Store::resync_outbox`]): every recording, hold and call record as it is now
//! is appended again between a `resync` and a `resync_done` event, which tells the central side
//! to drop the call records the site dropped meanwhile.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::keys::json;
use super::{
    sled_err, ConflictableTransactionError, Hold, Store, StoreError, Tombstone, Tx, TxResult,
    CALLS, HOLDS, META, OUTBOX, RECORDINGS,
};
use crate::audit::Head;
use crate::summary::Summary;

/// Where the outbox stands, in `meta` under [`STATE_KEY`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxState {
    /// Export has been switched on: changes append events.
    pub enabled: bool,
    /// The last event appended (0 and an empty digest before the first).
    pub head: Position,
    /// The last event the central database acknowledged.
    pub ack: Position,
    /// Events held at most before the outbox overflows.
    pub max_backlog: u64,
    /// Events were not appended since the backlog reached `max_backlog`: a resync is due.
    pub overflowed: bool,
    /// How many events were not appended while overflowed.
    pub lost: u64,
    /// A resync is under way; its `resync` event's number. A process that dies during one
    /// leaves it set, and the exporter runs it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resyncing: Option<u64>,
    /// The last event of the last finished resync.
    #[serde(default)]
    pub snapshot_to: u64,
}

/// An event's number and digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub seq: u64,
    pub digest: String,
}

impl OutboxState {
    /// Events appended and not yet acknowledged.
    pub fn backlog(&self) -> u64 {
        self.head.seq.saturating_sub(self.ack.seq)
    }

    /// Whether a change may append one more event: the backlog stays under `max_backlog`,
    /// not counting a resync's snapshot of the site still waiting to be sent.
    fn has_room(&self) -> bool {
        let snapshot = match self.resyncing {
            Some(from) => self.head.seq.saturating_sub(from.max(self.ack.seq)),
            None => self.snapshot_to.saturating_sub(self.ack.seq),
        };
        self.backlog() < self.max_backlog.saturating_add(snapshot)
    }

    /// A resync is due: events were left out, or one was cut short.
    pub fn needs_resync(&self) -> bool {
        self.enabled && (self.overflowed || self.resyncing.is_some())
    }
}

const STATE_KEY: &str = "outbox";

/// One change the central database must learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A recording as it is now (its summary: metadata, score, consent, state).
    Recording { summary: Box<Summary> },
    /// A recording was purged: its tombstone.
    Purge { id: u64, tombstone: Tombstone },
    /// A legal hold, as placed or released.
    Hold { hold: Hold },
    /// A call record (a CDR leg) stored or changed.
    Call { leg: Box<crate::cdr::CallRecord> },
    /// A call record dropped by its retention rule.
    CallDropped { id: String },
    /// The audit chain's head, as anchored centrally.
    Head { head: Head, at_ms: i64 },
    /// A resynchronisation starts: what follows up to `resync_done` is the site as it is.
    Resync,
    /// The resynchronisation that started with event `from` is complete: call records not
    /// sent since then were dropped by the site.
    ResyncDone { from: u64 },
}

/// An event as kept and sent: when it was appended, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub at_ms: i64,
    pub event: Event,
}

/// An event read back from the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: u64,
    pub digest: String,
    /// The envelope's bytes (JSON), exactly as digested.
    pub bytes: Vec<u8>,
}

impl Stored {
    pub fn envelope(&self) -> Result<Envelope, StoreError> {
        serde_json::from_slice(&self.bytes).map_err(|e| StoreError::Corrupt {
            key: format!("outbox {}", self.seq),
            reason: e.to_string(),
        })
    }
}

/// The digest that chains event `seq` (its bytes) to the one before it.
pub fn chain_digest(previous: &str, seq: u64, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(previous.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(bytes);
    hex::encode(h.finalize())
}

pub(super) fn abort(what: &str, e: impl std::fmt::Display) -> ConflictableTransactionError<String> {
    ConflictableTransactionError::Abort(format!("{what}: {e}"))
}

impl Tx<'_> {
    fn outbox_state(&self) -> TxResult<OutboxState> {
        match self.0[META].get(STATE_KEY)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| abort("the outbox is unreadable", e)),
            None => Ok(OutboxState::default()),
        }
    }

    /// Appends `event` if export is on (and the backlog has room); a change's own transaction
    /// calls this, so the event exists exactly when the change does.
    pub(super) fn emit(&self, event: Event) -> TxResult<()> {
        let mut state = self.outbox_state()?;
        if !state.enabled {
            return Ok(());
        }
        if state.overflowed || !state.has_room() {
            state.overflowed = true;
            state.lost += 1;
            self.0[META].insert(STATE_KEY, json(&state))?;
            return Ok(());
        }
        self.push(&mut state, event)?;
        self.0[META].insert(STATE_KEY, json(&state))?;
        Ok(())
    }

    /// Appends `event` whatever the backlog (a resync's own events).
    fn push(&self, state: &mut OutboxState, event: Event) -> TxResult<()> {
        let bytes = json(&Envelope {
            at_ms: crate::clock::now_ms(),
            event,
        });
        let seq = state.head.seq + 1;
        let digest = chain_digest(&state.head.digest, seq, &bytes);
        let mut value = Vec::with_capacity(64 + bytes.len());
        value.extend_from_slice(digest.as_bytes());
        value.extend_from_slice(&bytes);
        self.0[OUTBOX].insert(&seq.to_be_bytes()[..], value)?;
        state.head = Position { seq, digest };
        Ok(())
    }

    /// Writes a hold and appends its event.
    pub(super) fn put_hold(&self, hold: &Hold) -> TxResult<()> {
        self.0[HOLDS].insert(&hold.id.to_be_bytes()[..], json(hold))?;
        self.emit(Event::Hold { hold: hold.clone() })
    }
}

/// A digest is 64 hex characters in front of the envelope.
const DIGEST_LEN: usize = 64;

fn decode_stored(k: &[u8], v: &[u8]) -> Result<Stored, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: format!("outbox {}", hex::encode(k)),
        reason: reason.into(),
    };
    let seq = u64::from_be_bytes(k.try_into().map_err(|_| corrupt("a key is not 8 bytes"))?);
    if v.len() < DIGEST_LEN {
        return Err(corrupt("an event is shorter than its digest"));
    }
    let digest = std::str::from_utf8(&v[..DIGEST_LEN])
        .map_err(|_| corrupt("a digest is not text"))?
        .to_string();
    Ok(Stored {
        seq,
        digest,
        bytes: v[DIGEST_LEN..].to_vec(),
    })
}

/// Records (by id) re-sent in one transaction of a resync.
const RESYNC_BATCH: usize = 500;

impl Store {
    /// Where the outbox stands.
    pub fn outbox_state(&self) -> Result<OutboxState, StoreError> {
        match self.trees[META]
            .get(STATE_KEY)
            .map_err(sled_err("read the outbox"))?
        {
            Some(v) => serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                key: STATE_KEY.into(),
                reason: e.to_string(),
            }),
            None => Ok(OutboxState::default()),
        }
    }

    /// Switches export on (or sets its bound again). The first time, the outbox starts as
    /// overflowed: the exporter's first round sends the site as it is then (every recording,
    /// hold and call record, [`Store::resync_outbox`]) before what follows, so the central
    /// database starts complete. Cheap: a daemon with a large store starts at once.
    pub fn start_outbox(&self, max_backlog: u64) -> Result<OutboxState, StoreError> {
        let max_backlog = max_backlog.max(1);
        let state = self.outbox_state()?;
        if state.enabled {
            return self.transact("set the outbox bound", |tx| {
                let mut state = tx.outbox_state()?;
                state.max_backlog = max_backlog;
                tx.0[META].insert(STATE_KEY, json(&state))?;
                Ok(state)
            });
        }
        self.transact("switch export on", |tx| {
            let mut state = tx.outbox_state()?;
            state.enabled = true;
            state.max_backlog = max_backlog;
            // Marked overflowed: the site as it is is sent by the exporter's first resync.
            state.overflowed = true;
            tx.0[META].insert(STATE_KEY, json(&state))?;
            Ok(())
        })?;
        self.flush()?;
        self.outbox_state()
    }

    /// Appends the site as it is now (see the module's comment). Only when one is due
    /// ([`OutboxState::needs_resync`]); returns whether it ran.
    pub fn resync_outbox(&self) -> Result<bool, StoreError> {
        // The marker and the end of the overflow in one transaction: changes from here on
        // append their own events again, and the snapshot below reads each record inside a
        // transaction, so no event of it can be older than one before it.
        let from = self.transact("start a resync", |tx| {
            let mut state = tx.outbox_state()?;
            if !state.needs_resync() {
                return Ok(None);
            }
            state.overflowed = false;
            tx.push(&mut state, Event::Resync)?;
            let from = state.head.seq;
            state.resyncing = Some(from);
            tx.0[META].insert(STATE_KEY, json(&state))?;
            Ok(Some(from))
        })?;
        let Some(from) = from else {
            return Ok(false);
        };
        let ids: Vec<super::RecordingId> = self.trees[RECORDINGS]
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(sled_err("read the records"))?;
                Ok(super::keys::decode(&k, &v)?.id)
            })
            .collect::<Result<_, StoreError>>()?;
        for batch in ids.chunks(RESYNC_BATCH) {
            self.transact("resync recordings", |tx| {
                let mut state = tx.outbox_state()?;
                for id in batch {
                    if let Some(r) = tx.get(*id)? {
                        tx.push(
                            &mut state,
                            Event::Recording {
                                summary: Box::new(Summary::of(&r)),
                            },
                        )?;
                        if let Some(t) = &r.tombstone {
                            tx.push(
                                &mut state,
                                Event::Purge {
                                    id: r.id.0,
                                    tombstone: t.clone(),
                                },
                            )?;
                        }
                    }
                }
                tx.0[META].insert(STATE_KEY, json(&state))?;
                Ok(())
            })?;
        }
        let holds: Vec<u64> = self.holds()?.iter().map(|h| h.id).collect();
        let calls: Vec<sled::IVec> = self.trees[CALLS]
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(sled_err("read the call records"))?;
        for batch in holds.chunks(RESYNC_BATCH) {
            self.transact("resync holds", |tx| {
                let mut state = tx.outbox_state()?;
                for id in batch {
                    if let Some(v) = tx.0[HOLDS].get(id.to_be_bytes())? {
                        let hold: Hold =
                            serde_json::from_slice(&v).map_err(|e| abort("a hold", e))?;
                        tx.push(&mut state, Event::Hold { hold })?;
                    }
                }
                tx.0[META].insert(STATE_KEY, json(&state))?;
                Ok(())
            })?;
        }
        for batch in calls.chunks(RESYNC_BATCH) {
            self.transact("resync call records", |tx| {
                let mut state = tx.outbox_state()?;
                for id in batch {
                    if let Some(v) = tx.0[CALLS].get(id)? {
                        let leg: crate::cdr::CallRecord =
                            serde_json::from_slice(&v).map_err(|e| abort("a call record", e))?;
                        tx.push(&mut state, Event::Call { leg: Box::new(leg) })?;
                    }
                }
                tx.0[META].insert(STATE_KEY, json(&state))?;
                Ok(())
            })?;
        }
        self.transact("finish a resync", |tx| {
            let mut state = tx.outbox_state()?;
            tx.push(&mut state, Event::ResyncDone { from })?;
            state.resyncing = None;
            state.snapshot_to = state.head.seq;
            tx.0[META].insert(STATE_KEY, json(&state))?;
            Ok(())
        })?;
        Ok(true)
    }

    /// Appends the audit chain's head (the exporter's anchor, every `export.head_interval_s`).
    pub fn outbox_head(&self, time_ms: i64) -> Result<(), StoreError> {
        self.transact("anchor the audit head", |tx| {
            let head: Head = match tx.0[META].get("audit_head")? {
                Some(v) => serde_json::from_slice(&v).map_err(|e| abort("the audit head", e))?,
                None => Head::default(),
            };
            tx.emit(Event::Head {
                head,
                at_ms: time_ms,
            })
        })
    }

    /// Up to `limit` events after `after`, in order.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        self.trees[OUTBOX]
            .range((after + 1).to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_err("read the outbox"))?;
                decode_stored(&k, &v)
            })
            .collect()
    }

    /// The event numbered `seq`, if the outbox still holds it.
    pub fn outbox_event(&self, seq: u64) -> Result<Option<Stored>, StoreError> {
        self.trees[OUTBOX]
            .get(seq.to_be_bytes())
            .map_err(sled_err("read the outbox"))?
            .map(|v| decode_stored(&seq.to_be_bytes(), &v))
            .transpose()
    }

    /// The central database committed every event up to `to`: they leave the outbox, and the
    /// acknowledgement is flushed. An acknowledgement never moves back.
    pub fn ack_outbox(&self, to: &Position) -> Result<(), StoreError> {
        let state = self.outbox_state()?;
        if to.seq <= state.ack.seq {
            return Ok(());
        }
        if to.seq > state.head.seq {
            return Err(StoreError::Refused(format!(
                "cannot acknowledge outbox event {}: the last one appended is {}",
                to.seq, state.head.seq
            )));
        }
        let from = state.ack.seq + 1;
        self.transact("acknowledge exported events", |tx| {
            let mut state = tx.outbox_state()?;
            for seq in from..=to.seq {
                tx.0[OUTBOX].remove(&seq.to_be_bytes()[..])?;
            }
            state.ack = to.clone();
            tx.0[META].insert(STATE_KEY, json(&state))?;
            Ok(())
        })?;
        self.flush()
    }
}
