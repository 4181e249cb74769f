//! The days' coverage digests: derived data kept so that a report over a month does not
//! match a million calls again.
//!
//! Each UTC day has a generation in `day_generations`, set to a fresh sled id (unique for
//! the life of the database, crashes included) in the same transaction as every change to a
//! call record or a recording within [`crate::calls::MATCH_MARGIN_MS`] of the day. A digest
//! in `coverage_digests` carries the generation read before it was computed and the key of
//! the configuration it was computed under, and is used only while both still hold: a change
//! during its computation, a change after it, or a new configuration leaves it stale, and a
//! stale digest is never read. The digests are written outside any transaction; losing one
//! (a crash, a damaged value) costs only its recomputation.

use super::*;
use crate::calls::Digest;

fn day_key(day: i64) -> [u8; 8] {
    ((day as u64) ^ (1 << 63)).to_be_bytes()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored<C, D> {
    generation: u64,
    config: C,
    digest: D,
}

/// The key of the index by call key: the call key, 0, the record key (none for a call key
/// holding a 0 byte, which no call record has).
pub(super) fn call_key_index(call_key: &str, record_key: &[u8]) -> Option<Vec<u8>> {
    if call_key.as_bytes().contains(&0) {
        return None;
    }
    let mut k = Vec::with_capacity(call_key.len() + 1 + record_key.len());
    k.extend_from_slice(call_key.as_bytes());
    k.push(0);
    k.extend_from_slice(record_key);
    Some(k)
}

fn prefix(call_key: &str) -> Vec<u8> {
    let mut p = call_key.as_bytes().to_vec();
    p.push(0);
    p
}

/// The start of a recording from its record key (time first, sortable).
fn key_time(record_key: &[u8]) -> Option<i64> {
    let b: [u8; 8] = record_key.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// A call's entry in `call_times`: its first start and its legs.
pub(super) fn encode_call_time(start_ms: i64, legs: u64) -> Vec<u8> {
    let mut v = start_ms.to_be_bytes().to_vec();
    v.extend_from_slice(&legs.to_be_bytes());
    v
}

fn decode_call_time(v: &[u8]) -> Option<(i64, u64)> {
    let start = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let n = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((start, n))
}

const RETRY: &str = "retry: the recordings' call keys changed meanwhile";

#[cfg(test)]
thread_local! {
    /// Run once between [`Store::transact_naming`]'s reads and its transaction (a test's way
    /// into the race).
    pub(super) static BETWEEN: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        std::cell::RefCell::new(None);
}

impl Store {
    /// Runs a transaction that changes call records (`legs`, as they will be, and those they
    /// replace or drop): `f` gets the start times of every recording that names one of them
    /// by its id or call key, whose days it must move. A transaction cannot scan, so they are
    /// read before it, with each key's version (`call_key_versions`, moved by every recording
    /// that gains or loses the key) and each leg as stored; a transaction that finds one of
    /// them changed meanwhile starts again.
    pub(super) fn transact_naming<T>(
        &self,
        what: &'static str,
        legs: &[&crate::cdr::CallRecord],
        f: impl Fn(&Tx, &[i64]) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        let read = sled_err("read the index by call key");
        loop {
            let stored: Vec<Option<sled::IVec>> = legs
                .iter()
                .map(|l| self.trees[CALLS].get(l.id.as_bytes()))
                .collect::<Result<_, _>>()
                .map_err(&read)?;
            let previous: Vec<crate::cdr::CallRecord> = stored
                .iter()
                .flatten()
                .filter_map(|v| serde_json::from_slice(v).ok())
                .collect();
            let mut keys: Vec<&str> = legs
                .iter()
                .flat_map(|l| [l.id.as_str(), l.call_key()])
                .chain(previous.iter().map(|l| l.call_key()))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let mut versions = Vec::with_capacity(keys.len());
            let mut times = Vec::new();
            for key in keys {
                let version = self.trees[CALL_KEY_VERSIONS]
                    .get(key.as_bytes())
                    .map_err(&read)?;
                versions.push((key, version));
                for kv in self.trees[BY_CALL_KEY].scan_prefix(prefix(key)) {
                    let (k, _) = kv.map_err(&read)?;
                    times.extend(k.len().checked_sub(16).and_then(|at| key_time(&k[at..])));
                }
            }
            times.sort_unstable();
            times.dedup();
            #[cfg(test)]
            if let Some(between) = BETWEEN.with(|b| b.borrow_mut().take()) {
                between();
            }
            let done = self.transact(what, |tx| {
                let moved = |same: bool| match same {
                    true => Ok(()),
                    false => Err(ConflictableTransactionError::Abort(RETRY.to_string())),
                };
                for (leg, before) in legs.iter().zip(&stored) {
                    moved(tx.0[CALLS].get(leg.id.as_bytes())? == *before)?;
                }
                for (key, before) in &versions {
                    moved(tx.0[CALL_KEY_VERSIONS].get(key.as_bytes())? == *before)?;
                }
                f(tx, &times)
            });
            match done {
                Err(StoreError::Refused(why)) if why == RETRY => continue,
                done => return done,
            }
        }
    }
}

impl Tx<'_> {
    /// Moves the version of each of these call keys (see [`Store::transact_naming`]).
    pub(super) fn move_key_versions(&self, keys: &[String]) -> TxResult<()> {
        for key in keys {
            let id = self.0[CALL_KEY_VERSIONS].generate_id()?;
            self.0[CALL_KEY_VERSIONS].insert(key.as_bytes(), &id.to_be_bytes()[..])?;
        }
        Ok(())
    }

    /// Indexes a recording by the keys it carries for its call, and moves the days of the
    /// calls they name: a recording belongs to its call however far apart their times are.
    pub(super) fn index_call_keys(&self, keys: &[String], record_key: &[u8]) -> TxResult<()> {
        for ck in keys {
            if let Some(k) = call_key_index(ck, record_key) {
                self.0[BY_CALL_KEY].insert(k, &[][..])?;
                self.touch_calls_named(ck)?;
            }
        }
        Ok(())
    }

    /// Undoes [`Tx::index_call_keys`] for a recording's previous version.
    pub(super) fn unindex_call_keys(&self, keys: &[String], record_key: &[u8]) -> TxResult<()> {
        for ck in keys {
            if let Some(k) = call_key_index(ck, record_key) {
                self.0[BY_CALL_KEY].remove(k)?;
                self.touch_calls_named(ck)?;
            }
        }
        Ok(())
    }

    /// Moves the days of the call a key names: the leg with that id, or the call with that
    /// key.
    fn touch_calls_named(&self, key: &str) -> TxResult<()> {
        if let Some(v) = self.0[CALLS].get(key.as_bytes())? {
            if let Ok(leg) = serde_json::from_slice::<crate::cdr::CallRecord>(&v) {
                self.touch(leg.start_ms)?;
            }
        }
        if let Some((start, _)) = self.call_time(key)? {
            self.touch(start)?;
        }
        Ok(())
    }

    /// A call's first start and how many legs it has, by its call key.
    fn call_time(&self, call_key: &str) -> TxResult<Option<(i64, u64)>> {
        Ok(self.0[CALL_TIMES]
            .get(call_key.as_bytes())?
            .and_then(|v| decode_call_time(&v)))
    }

    /// Counts a leg in (`+1`) or out (`-1`) of its call's entry in `call_times`.
    pub(super) fn count_leg(&self, leg: &crate::cdr::CallRecord, delta: i64) -> TxResult<()> {
        let key = leg.call_key();
        let (start, n) = self.call_time(key)?.unwrap_or((leg.start_ms, 0));
        let n = n.saturating_add_signed(delta);
        if n == 0 {
            self.0[CALL_TIMES].remove(key.as_bytes())?;
        } else {
            let v = encode_call_time(start.min(leg.start_ms), n);
            self.0[CALL_TIMES].insert(key.as_bytes(), v)?;
        }
        Ok(())
    }

    /// Moves the generation of every day whose digest may read something at `t_ms`.
    pub(super) fn touch(&self, t_ms: i64) -> TxResult<()> {
        let t = &self.0[DAY_GENERATIONS];
        for day in crate::calls::days_touched(t_ms) {
            let id = t.generate_id()?;
            t.insert(&day_key(day)[..], &id.to_be_bytes()[..])?;
        }
        Ok(())
    }
}

impl Store {
    /// The generation of a day (0 until something within its margin changes).
    pub fn day_generation(&self, day: i64) -> Result<u64, StoreError> {
        Ok(self.trees[DAY_GENERATIONS]
            .get(day_key(day))
            .map_err(sled_err("read a day's generation"))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// The digest of a day, if one was kept under configuration `config` and nothing within
    /// the day's margin has changed since.
    pub fn day_digest(&self, day: i64, config: &str) -> Result<Option<Digest>, StoreError> {
        let Some(v) = self
            .digests
            .get(day_key(day))
            .map_err(sled_err("read a coverage digest"))?
        else {
            return Ok(None);
        };
        // Derived data: a value that does not decode is recomputed, not an error.
        let Ok(stored) = serde_json::from_slice::<Stored<String, Digest>>(&v) else {
            return Ok(None);
        };
        let fresh = stored.config == config && stored.generation == self.day_generation(day)?;
        Ok(fresh.then_some(stored.digest))
    }

    /// Keeps the digest of a day, computed under `config` from what the store held at
    /// `generation` (read before the computation began).
    pub fn put_day_digest(
        &self,
        day: i64,
        generation: u64,
        config: &str,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let value = json(&Stored {
            generation,
            config,
            digest,
        });
        self.digests
            .insert(day_key(day), value)
            .map_err(sled_err("write a coverage digest"))?;
        Ok(())
    }

    /// The recordings that carry `key` for their call (as their sidecar's call id, or in
    /// their file name), wherever their time.
    pub fn recordings_naming(&self, key: &str) -> Result<Vec<Summary>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees[BY_CALL_KEY].scan_prefix(prefix(key)) {
            let (k, _) = kv.map_err(sled_err("read the index by call key"))?;
            let Some(at) = k.len().checked_sub(16) else {
                continue;
            };
            out.extend(self.summary_at(&k[at..])?);
        }
        Ok(out)
    }

    /// The call (its key) that a key names: the call of the leg with that id, or the call
    /// with that key.
    pub fn call_named(&self, key: &str) -> Result<Option<String>, StoreError> {
        let read = sled_err("read a call record");
        if let Some(v) = self.trees[CALLS].get(key.as_bytes()).map_err(&read)? {
            if let Ok(leg) = serde_json::from_slice::<crate::cdr::CallRecord>(&v) {
                return Ok(Some(leg.call_key().to_string()));
            }
        }
        let known = self.trees[CALL_TIMES]
            .get(key.as_bytes())
            .map_err(&read)?
            .is_some();
        Ok(known.then(|| key.to_string()))
    }

    /// Forgets every kept coverage digest: each is made again when a report asks for its day
    /// (a benchmark's cold start).
    pub fn forget_coverage_digests(&self) -> Result<(), StoreError> {
        self.digests
            .clear()
            .map_err(sled_err("forget the coverage digests"))
    }

    /// The first and the last start time of the call records and the recordings (none: the
    /// store holds neither).
    pub fn time_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let read = sled_err("read the store's time span");
        let time = |k: &[u8]| {
            k.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
        };
        let mut times = Vec::new();
        for tree in [&self.trees[CALLS_BY_TIME], &self.trees[SUMMARIES]] {
            for kv in [tree.first().map_err(&read)?, tree.last().map_err(&read)?] {
                times.extend(kv.and_then(|(k, _)| time(&k)));
            }
        }
        Ok(times.iter().min().copied().zip(times.iter().max().copied()))
    }
}
