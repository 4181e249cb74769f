//! The call records (CDR rows) in the store: stored with their import's audit entry and, for a
//! followed source, its cursor, in one transaction; read by time, by call and by leg; dropped
//! by their retention.

use super::*;

/// What [`Store::put_calls`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallsStored {
    pub new: usize,
    pub changed: usize,
    pub same: usize,
}

/// Milliseconds as bytes that sort as the numbers do (negative ones first).
fn sortable_ms(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn call_time_key(leg: &crate::cdr::CallRecord) -> Vec<u8> {
    let mut k = sortable_ms(leg.start_ms).to_vec();
    k.extend_from_slice(leg.id.as_bytes());
    k
}

fn call_key_key(leg: &crate::cdr::CallRecord) -> Vec<u8> {
    let mut k = leg.call_key().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(leg.id.as_bytes());
    k
}

impl Store {
    /// Stores call records (CDR rows, keyed by their leg id) and one `calls_import` audit entry
    /// naming where they came from and what could not be read, in one transaction. A row
    /// already stored as it is counts as `same`; one stored differently is replaced.
    pub fn put_calls(
        &self,
        legs: &[crate::cdr::CallRecord],
        actor: &str,
        source: &str,
        rejected: usize,
        time_ms: i64,
    ) -> Result<CallsStored, StoreError> {
        self.put_calls_with_cursor(legs, actor, source, rejected, time_ms, None)
    }

    /// [`Store::put_calls`], writing `cursor` (a key and value in the meta tree: where reading
    /// the source has got to) in the same transaction.
    pub fn put_calls_with_cursor(
        &self,
        legs: &[crate::cdr::CallRecord],
        actor: &str,
        source: &str,
        rejected: usize,
        time_ms: i64,
        cursor: Option<(&str, Vec<u8>)>,
    ) -> Result<CallsStored, StoreError> {
        // The legs that change something: those not stored as they are.
        let changing: Vec<&crate::cdr::CallRecord> = legs
            .iter()
            .filter(|l| !matches!(self.trees[CALLS].get(l.id.as_bytes()), Ok(Some(v)) if v.as_ref() == json(*l).as_slice()))
            .collect();
        let stored = self.transact_naming("store call records", &changing, |tx, naming| {
            for &t in naming {
                tx.touch(t)?;
            }
            if let Some((key, value)) = &cursor {
                tx.0[META].insert(key.as_bytes(), value.as_slice())?;
            }
            let mut n = CallsStored::default();
            for leg in legs {
                let value = json(leg);
                let old = tx.0[CALLS].get(leg.id.as_bytes())?;
                if let Some(old) = &old {
                    if old.as_ref() == value.as_slice() {
                        n.same += 1;
                        continue;
                    }
                    if let Ok(previous) = serde_json::from_slice::<crate::cdr::CallRecord>(old) {
                        tx.touch(previous.start_ms)?;
                        tx.count_leg(&previous, -1)?;
                        tx.0[CALLS_BY_TIME].remove(call_time_key(&previous))?;
                        tx.0[CALLS_BY_KEY].remove(call_key_key(&previous))?;
                    }
                    n.changed += 1;
                } else {
                    n.new += 1;
                }
                tx.touch(leg.start_ms)?;
                tx.count_leg(leg, 1)?;
                tx.0[CALLS].insert(leg.id.as_bytes(), value)?;
                tx.emit(super::outbox::Event::Call {
                    leg: Box::new(leg.clone()),
                })?;
                tx.0[CALLS_BY_TIME].insert(call_time_key(leg), leg.id.as_bytes())?;
                tx.0[CALLS_BY_KEY].insert(call_key_key(leg), leg.id.as_bytes())?;
            }
            tx.append(
                vec![Draft::new(
                    actor,
                    AuditAction::CallsImport,
                    serde_json::json!({"source": source, "new": n.new, "changed": n.changed,
                        "same": n.same, "rejected": rejected}),
                )],
                time_ms,
            )?;
            Ok(n)
        })?;
        self.flush()?;
        Ok(stored)
    }

    /// Drops the call records of calls that ended before `before_ms`, a thousand a transaction,
    /// each batch with a `calls_drop` audit entry naming its count and time range. Returns how
    /// many were dropped.
    pub fn drop_calls_before(
        &self,
        before_ms: i64,
        actor: &str,
        time_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut dropped = 0;
        loop {
            // Legs start before they end: those that started before the limit are candidates.
            let batch: Vec<crate::cdr::CallRecord> = self
                .calls_between(None, Some(before_ms))
                .filter(|l| l.as_ref().map_or(true, |l| l.end_ms < before_ms))
                .take(1000)
                .collect::<Result<_, _>>()?;
            if batch.is_empty() {
                return Ok(dropped);
            }
            let first = batch.iter().map(|l| l.start_ms).min().unwrap_or(before_ms);
            let last = batch.iter().map(|l| l.start_ms).max().unwrap_or(before_ms);
            let dropping: Vec<&crate::cdr::CallRecord> = batch.iter().collect();
            self.transact_naming("drop call records", &dropping, |tx, naming| {
                for &t in naming {
                    tx.touch(t)?;
                }
                for leg in &batch {
                    tx.touch(leg.start_ms)?;
                    tx.count_leg(leg, -1)?;
                    tx.0[CALLS].remove(leg.id.as_bytes())?;
                    tx.emit(super::outbox::Event::CallDropped { id: leg.id.clone() })?;
                    tx.0[CALLS_BY_TIME].remove(call_time_key(leg))?;
                    tx.0[CALLS_BY_KEY].remove(call_key_key(leg))?;
                }
                tx.append(
                    vec![Draft::new(
                        actor,
                        AuditAction::CallsDrop,
                        serde_json::json!({"dropped": batch.len(),
                            "started_from": crate::policy::fmt_ms(first),
                            "started_until": crate::policy::fmt_ms(last),
                            "ended_before": crate::policy::fmt_ms(before_ms)}),
                    )],
                    time_ms,
                )?;
                Ok(())
            })?;
            dropped += batch.len();
            self.flush()?;
            if batch.len() < 1000 {
                return Ok(dropped);
            }
        }
    }

    /// Whether any call record is stored.
    pub fn has_calls(&self) -> bool {
        !self.trees[CALLS].is_empty()
    }

    /// How many of these call records are stored exactly as they are.
    pub fn calls_known(&self, legs: &[crate::cdr::CallRecord]) -> Result<usize, StoreError> {
        let mut known = 0;
        for leg in legs {
            let stored = self.trees[CALLS]
                .get(leg.id.as_bytes())
                .map_err(sled_err("read a call record"))?;
            if stored.is_some_and(|v| v.as_ref() == json(leg).as_slice()) {
                known += 1;
            }
        }
        Ok(known)
    }

    /// A value of the meta tree (cursors, counters), as stored.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.trees[META]
            .get(key)
            .map_err(sled_err("read the meta tree"))?
            .map(|v| v.to_vec()))
    }

    /// Writes a value of the meta tree.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.trees[META]
            .insert(key, value)
            .map_err(sled_err("write the meta tree"))?;
        Ok(())
    }

    /// The call records of legs that started in `[from_ms, until_ms)`, in start order.
    pub fn calls_between(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> impl Iterator<Item = Result<crate::cdr::CallRecord, StoreError>> + '_ {
        let from = sortable_ms(from_ms.unwrap_or(i64::MIN)).to_vec();
        let until = sortable_ms(until_ms.unwrap_or(i64::MAX)).to_vec();
        self.trees[CALLS_BY_TIME].range(from..until).map(move |kv| {
            let (k, id) = kv.map_err(sled_err("read the calls index"))?;
            let v = self.trees[CALLS]
                .get(&id)
                .map_err(sled_err("read a call record"))?
                .ok_or_else(|| StoreError::Corrupt {
                    key: hex::encode(&k),
                    reason: "the calls index names a call record that is not there".into(),
                })?;
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                key: hex::encode(&id),
                reason: format!("call record: {e}"),
            })
        })
    }

    /// Every leg of the call with this key (a linked id), or the leg with this id and the
    /// legs of its call.
    pub fn call(&self, key: &str) -> Result<Vec<crate::cdr::CallRecord>, StoreError> {
        let read = |id: &[u8]| -> Result<Option<crate::cdr::CallRecord>, StoreError> {
            self.trees[CALLS]
                .get(id)
                .map_err(sled_err("read a call record"))?
                .map(|v| {
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                        key: hex::encode(id),
                        reason: format!("call record: {e}"),
                    })
                })
                .transpose()
        };
        let call_key = match read(key.as_bytes())? {
            Some(leg) => leg.call_key().to_string(),
            None => key.to_string(),
        };
        let mut prefix = call_key.into_bytes();
        prefix.push(0);
        let mut legs = Vec::new();
        for kv in self.trees[CALLS_BY_KEY].scan_prefix(&prefix) {
            let (_, id) = kv.map_err(sled_err("read the calls index"))?;
            if let Some(leg) = read(&id)? {
                legs.push(leg);
            }
        }
        Ok(legs)
    }
}
