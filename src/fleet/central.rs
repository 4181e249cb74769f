//! The central PostgreSQL database of a fleet: the adapter for the `postgres` crate (and its
//! TLS, rustls through tokio-postgres-rustls) on the fleet's side (the schema's migrations, a site's position, a batch sent in one transaction,
//! and what `fleet kpi|report|verify` read back). `cdr_pgsql` is the adapter for reading a
//! PBX's own `cdr` table.
//!
//! A batch is taken only if it continues what the database holds of its site: its first audit
//! entry follows the last one held (number and hash), and its first outbox event follows the
//! last one held (number and the digest before it). The site's row is locked for the
//! transaction, so two exporters under one site name cannot interleave.

use std::path::Path;
use std::time::Duration;

use crate::audit::{Entry, Head};
use crate::config::ConsentLaw;
use crate::store::outbox::{Envelope, Event, Position, Stored};
use crate::summary::Summary;

use super::CentralSite;

/// The schema's migrations, in order: (version, SQL), applied once each.
pub const MIGRATIONS: &[(u32, &str)] = &[(1, include_str!("migrations/0001_fleet.sql"))];

/// The schema version this build writes and reads.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("the central database URL: {0}")]
    Url(String),
    #[error("connect to the central database: {0}")]
    Connect(String),
    #[error("TLS to the central database: {0}")]
    Tls(String),
    #[error("the central database: {0}")]
    Sql(String),
    #[error(
        "the central database has schema version {found}, this build needs {needed}: run \
         `callwarden fleet migrate --db URL`"
    )]
    Schema { found: u32, needed: u32 },
    #[error(
        "the central database has schema version {found}, newer than this build's {known}: \
         upgrade callwarden"
    )]
    NewerSchema { found: u32, known: u32 },
    #[error("site {site}: the batch does not continue what the central database holds: {why}")]
    Discontinuous { site: String, why: String },
    #[error("the central database holds a row it cannot read: {0}")]
    Unreadable(String),
}

impl From<postgres::Error> for CentralError {
    fn from(e: postgres::Error) -> Self {
        // The server's own message (a constraint, a lock) says more than the client's summary.
        match e.as_db_error() {
            Some(db) => CentralError::Sql(format!(
                "{}{}",
                db.message(),
                db.constraint()
                    .map(|c| format!(" (constraint {c})"))
                    .unwrap_or_default()
            )),
            None => CentralError::Sql(e.to_string()),
        }
    }
}

/// One batch for one site: audit entries and outbox events, in order.
pub struct Batch<'a> {
    pub site: &'a str,
    /// The law a recording without its own falls under at this site.
    pub default_law: ConsentLaw,
    pub audit: &'a [Entry],
    /// The digest of the event before the first (empty before event 1).
    pub prev_digest: &'a str,
    pub events: &'a [(Stored, Envelope)],
    /// `export.redact`'s key: numbers leave hashed under it.
    pub redact: Option<&'a [u8]>,
}

/// A purge as the central database holds it.
pub struct Purged {
    pub id: u64,
    pub tombstone: crate::record::Tombstone,
    /// The site's `purge` audit entry for it.
    pub entry: Option<Entry>,
    pub summary: Option<Summary>,
}

/// An audit entry as read back: its number, and the entry or why it does not decode.
pub type AuditRow = (u64, Result<Entry, String>);

pub struct Central {
    client: postgres::Client,
}

/// An error with the causes under it (a TLS handshake says why only there).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// The TLS client: rustls with ring, the server checked against `ca_file` or the web roots.
fn tls(ca_file: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, CentralError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |why: String| CentralError::Tls(format!("{}: {why}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("holds no certificate (PEM)".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CentralError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn day_sql(n: u8) -> String {
    format!("(to_timestamp(${n}::bigint / 1000.0) AT TIME ZONE 'UTC')::date")
}

fn ts_sql(n: u8) -> String {
    format!("to_timestamp(${n}::bigint / 1000.0)")
}

fn text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A serde enum without an `as_str` (the consent state) as its word (`"granted"`).
fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

impl Central {
    /// Connects (10 s at most, unless the URL says otherwise), with TLS as the URL's `sslmode`
    /// says (`disable`; `prefer`, the default: TLS when the server offers it; `require`). Under
    /// TLS the server's certificate is always checked, against `ca_file` (PEM: the authority
    /// that signed it) or, without one, the public web roots.
    pub fn connect(url: &str, ca_file: Option<&Path>) -> Result<Central, CentralError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| CentralError::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let client = config
            .connect(tls(ca_file)?)
            .map_err(|e| CentralError::Connect(with_causes(&e)))?;
        Ok(Central { client })
    }

    /// Whether this connection is encrypted (the server's own view, `pg_stat_ssl`).
    pub fn encrypted(&mut self) -> Result<bool, CentralError> {
        Ok(self
            .client
            .query_one(
                "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                &[],
            )?
            .get(0))
    }

    /// The schema version the database has (0: none).
    pub fn schema_version(&mut self) -> Result<u32, CentralError> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('fleet_migrations') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: Option<i32> = self
            .client
            .query_one("SELECT max(version) FROM fleet_migrations", &[])?
            .get(0);
        Ok(v.unwrap_or(0) as u32)
    }

    /// Refuses a database whose schema is not this build's.
    pub fn check_schema(&mut self) -> Result<(), CentralError> {
        match self.schema_version()? {
            v if v == latest() => Ok(()),
            v if v > latest() => Err(CentralError::NewerSchema {
                found: v,
                known: latest(),
            }),
            v => Err(CentralError::Schema {
                found: v,
                needed: latest(),
            }),
        }
    }

    /// Applies the migrations the database lacks, each in its own transaction, under an
    /// advisory lock (two at once wait for each other). Returns the versions before and after.
    pub fn migrate(&mut self, build: &str) -> Result<(u32, u32), CentralError> {
        let before = self.schema_version()?;
        if before > latest() {
            return Err(CentralError::NewerSchema {
                found: before,
                known: latest(),
            });
        }
        for (version, sql) in MIGRATIONS {
            let mut tx = self.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(7306381120240001)", &[])?;
            let done: bool = tx
                .query_one("SELECT to_regclass('fleet_migrations') IS NOT NULL", &[])?
                .get(0);
            let applied = done
                && tx
                    .query_opt(
                        "SELECT 1 FROM fleet_migrations WHERE version = $1",
                        &[&(*version as i32)],
                    )?
                    .is_some();
            if applied {
                continue;
            }
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO fleet_migrations (version, by_build) VALUES ($1, $2)",
                &[&(*version as i32), &build],
            )?;
            tx.commit()?;
        }
        Ok((before, self.schema_version()?))
    }

    /// What the database holds of `site` (nothing yet: zeros).
    pub fn site(&mut self, site: &str) -> Result<CentralSite, CentralError> {
        let row = self.client.query_opt(
            "SELECT last_seq, last_digest, audit_seq, audit_hash FROM fleet_sites WHERE site = $1",
            &[&site],
        )?;
        Ok(match row {
            None => CentralSite::default(),
            Some(r) => CentralSite {
                last: Position {
                    seq: r.get::<_, i64>(0) as u64,
                    digest: r.get(1),
                },
                audit: Head {
                    seq: r.get::<_, i64>(2) as u64,
                    hash: r.get(3),
                },
            },
        })
    }

    /// Sends one batch in one transaction; nothing of it is kept if any part fails.
    pub fn send(&mut self, b: &Batch) -> Result<(), CentralError> {
        let site = b.site;
        let mut tx = self.client.transaction()?;
        tx.execute(
            "INSERT INTO fleet_sites (site, default_law) VALUES ($1, $2)
             ON CONFLICT (site) DO UPDATE SET default_law = EXCLUDED.default_law",
            &[&site, &b.default_law.as_str()],
        )?;
        let row = tx.query_one(
            "SELECT last_seq, last_digest, audit_seq, audit_hash FROM fleet_sites
             WHERE site = $1 FOR UPDATE",
            &[&site],
        )?;
        let (mut last_seq, mut last_digest) =
            (row.get::<_, i64>(0) as u64, row.get::<_, String>(1));
        let (mut audit_seq, mut audit_hash) =
            (row.get::<_, i64>(2) as u64, row.get::<_, String>(3));
        let broken = |why: String| CentralError::Discontinuous {
            site: site.to_string(),
            why,
        };
        let insert_audit = tx.prepare(&format!(
            "INSERT INTO fleet_audit (site, seq, time, actor, action, recording, prev, hash, entry)
             VALUES ($1, $2, {}, $4, $5, $6, $7, $8, $9)",
            ts_sql(3)
        ))?;
        for e in b.audit {
            let follows = if audit_seq == 0 {
                e.prev == crate::audit::GENESIS
            } else {
                e.prev == audit_hash
            };
            if e.seq != audit_seq + 1 || !follows {
                return Err(broken(format!(
                    "audit entry {} does not follow entry {audit_seq}",
                    e.seq
                )));
            }
            tx.execute(
                &insert_audit,
                &[
                    &site,
                    &(e.seq as i64),
                    &e.time_ms,
                    &e.actor,
                    &e.action,
                    &e.recording.map(|r| r as i64),
                    &e.prev,
                    &e.hash,
                    &text(e),
                ],
            )?;
            audit_seq = e.seq;
            audit_hash = e.hash.clone();
        }
        // The numbers are checked event by event below; the first must also chain to the
        // digest held.
        if !b.events.is_empty() && b.prev_digest != last_digest {
            return Err(broken(format!(
                "the batch does not chain to event {last_seq}'s digest"
            )));
        }
        let mut p = Projector::prepare(&mut tx)?;
        for (stored, envelope) in b.events {
            if stored.seq != last_seq + 1 {
                return Err(broken(format!(
                    "outbox event {} does not follow event {last_seq}",
                    stored.seq
                )));
            }
            p.apply(&mut tx, site, b, stored, envelope)?;
            last_seq = stored.seq;
            last_digest = stored.digest.clone();
        }
        tx.execute(
            "UPDATE fleet_sites SET last_seq = $2, last_digest = $3, audit_seq = $4,
             audit_hash = $5, last_exported_at = now() WHERE site = $1",
            &[
                &site,
                &(last_seq as i64),
                &last_digest,
                &(audit_seq as i64),
                &audit_hash,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every site the database knows, with the law its recordings fall under by default.
    pub fn sites(&mut self) -> Result<Vec<(String, ConsentLaw)>, CentralError> {
        self.client
            .query(
                "SELECT site, default_law FROM fleet_sites ORDER BY site",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0), law(&r.get::<_, String>(1))?)))
            .collect()
    }

    /// The summaries of the recordings that started in `[from_ms, until_ms)`, of one site or
    /// all, each with its site and that site's default law, in (site, start, id) order.
    pub fn summaries(
        &mut self,
        site: Option<&str>,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<(String, ConsentLaw, Summary)>, CentralError> {
        let rows = self.client.query(
            "SELECT r.site, s.default_law, r.summary::text
             FROM fleet_recordings r JOIN fleet_sites s ON s.site = r.site
             WHERE ($1::text IS NULL OR r.site = $1)
               AND ($2::bigint IS NULL OR r.started_ms >= $2)
               AND ($3::bigint IS NULL OR r.started_ms < $3)
             ORDER BY r.site, r.started_ms, r.id",
            &[&site, &from_ms, &until_ms],
        )?;
        rows.iter()
            .map(|r| {
                let summary: Summary = serde_json::from_str(&r.get::<_, String>(2))
                    .map_err(|e| CentralError::Unreadable(format!("a summary: {e}")))?;
                Ok((r.get(0), law(&r.get::<_, String>(1))?, summary))
            })
            .collect()
    }

    /// The call records (CDR legs) of one site that started in `[from_ms, until_ms)`.
    pub fn calls(
        &mut self,
        site: &str,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<crate::cdr::CallRecord>, CentralError> {
        let rows = self.client.query(
            "SELECT body::text FROM fleet_calls
             WHERE site = $1 AND ($2::bigint IS NULL OR started_ms >= $2)
               AND ($3::bigint IS NULL OR started_ms < $3)
             ORDER BY started_ms, id",
            &[&site, &from_ms, &until_ms],
        )?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.get::<_, String>(0))
                    .map_err(|e| CentralError::Unreadable(format!("a call record: {e}")))
            })
            .collect()
    }

    /// One site's purges deleted in `[from_ms, until_ms)`, in deletion order: each tombstone
    /// with the `purge` audit entry that proves it (when the central copy holds it) and the
    /// recording's summary.
    pub fn purges(
        &mut self,
        site: &str,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<Purged>, CentralError> {
        let rows = self.client.query(
            "SELECT p.id, p.body::text, a.entry, r.summary::text
             FROM fleet_purges p
             LEFT JOIN LATERAL (
                 SELECT entry FROM fleet_audit
                 WHERE site = p.site AND recording = p.id AND action = 'purge'
                 ORDER BY seq DESC LIMIT 1
             ) a ON true
             LEFT JOIN fleet_recordings r ON r.site = p.site AND r.id = p.id
             WHERE p.site = $1
               AND ($2::bigint IS NULL OR (p.body->>'deleted_ms')::bigint >= $2)
               AND ($3::bigint IS NULL OR (p.body->>'deleted_ms')::bigint < $3)
             ORDER BY (p.body->>'deleted_ms')::bigint, p.id",
            &[&site, &from_ms, &until_ms],
        )?;
        let bad =
            |what: &str, e: serde_json::Error| CentralError::Unreadable(format!("{what}: {e}"));
        rows.iter()
            .map(|r| {
                Ok(Purged {
                    id: r.get::<_, i64>(0) as u64,
                    tombstone: serde_json::from_str(&r.get::<_, String>(1))
                        .map_err(|e| bad("a tombstone", e))?,
                    entry: r
                        .get::<_, Option<String>>(2)
                        .map(|e| serde_json::from_str(&e).map_err(|e| bad("a purge entry", e)))
                        .transpose()?,
                    summary: r
                        .get::<_, Option<String>>(3)
                        .map(|s| serde_json::from_str(&s).map_err(|e| bad("a summary", e)))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// The holds of one site or all, with their site.
    pub fn holds(
        &mut self,
        site: Option<&str>,
    ) -> Result<Vec<(String, crate::record::Hold)>, CentralError> {
        let rows = self.client.query(
            "SELECT site, body::text FROM fleet_holds WHERE ($1::text IS NULL OR site = $1)
             ORDER BY site, id",
            &[&site],
        )?;
        rows.iter()
            .map(|r| {
                let hold = serde_json::from_str(&r.get::<_, String>(1))
                    .map_err(|e| CentralError::Unreadable(format!("a hold: {e}")))?;
                Ok((r.get(0), hold))
            })
            .collect()
    }

    /// One site's audit entries as exported, in order: each as its number and the entry, or
    /// why it does not decode.
    pub fn audit(&mut self, site: &str) -> Result<Vec<AuditRow>, CentralError> {
        let rows = self.client.query(
            "SELECT seq, entry FROM fleet_audit WHERE site = $1 ORDER BY seq",
            &[&site],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let seq = r.get::<_, i64>(0) as u64;
                (
                    seq,
                    serde_json::from_str(&r.get::<_, String>(1)).map_err(|e| e.to_string()),
                )
            })
            .collect())
    }

    /// The heads one site anchored: (audit seq, hash), in order.
    pub fn heads(&mut self, site: &str) -> Result<Vec<(u64, String)>, CentralError> {
        Ok(self
            .client
            .query(
                "SELECT audit_seq, hash FROM fleet_heads WHERE site = $1 ORDER BY event_seq",
                &[&site],
            )?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    /// Runs SQL as given (tests and operators' fixes; never with input from a recording).
    pub fn execute(&mut self, sql: &str) -> Result<(), CentralError> {
        self.client.batch_execute(sql)?;
        Ok(())
    }
}

fn law(word: &str) -> Result<ConsentLaw, CentralError> {
    serde_json::from_value(serde_json::Value::String(word.into()))
        .map_err(|_| CentralError::Unreadable(format!("a consent law {word:?}")))
}

/// The prepared statements that apply events to the tables.
struct Projector {
    event: postgres::Statement,
    recording: postgres::Statement,
    consent: postgres::Statement,
    purge: postgres::Statement,
    hold: postgres::Statement,
    call: postgres::Statement,
    call_dropped: postgres::Statement,
    head: postgres::Statement,
    resync_done: postgres::Statement,
}

impl Projector {
    fn prepare(tx: &mut postgres::Transaction) -> Result<Projector, CentralError> {
        Ok(Projector {
            event: tx.prepare(&format!(
                "INSERT INTO fleet_events (site, seq, kind, at, digest, body)
                 VALUES ($1, $2, $3, {}, $5, $6)",
                ts_sql(4)
            ))?,
            // A row moves only forward: an older event (re-sent by a resync) never wins.
            recording: tx.prepare(&format!(
                "INSERT INTO fleet_recordings (site, id, seq, started_ms, started, day, state,
                   agent, queue, score, grade, consent, consent_law, lawful, talk_s, hold_s,
                   call_id, held, summary)
                 VALUES ($1, $2, $3, $4, {}, {}, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                   $15, $16, $17::text::jsonb)
                 ON CONFLICT (site, id) DO UPDATE SET seq = EXCLUDED.seq,
                   started_ms = EXCLUDED.started_ms, started = EXCLUDED.started,
                   day = EXCLUDED.day, state = EXCLUDED.state, agent = EXCLUDED.agent,
                   queue = EXCLUDED.queue, score = EXCLUDED.score, grade = EXCLUDED.grade,
                   consent = EXCLUDED.consent, consent_law = EXCLUDED.consent_law,
                   lawful = EXCLUDED.lawful, talk_s = EXCLUDED.talk_s, hold_s = EXCLUDED.hold_s,
                   call_id = EXCLUDED.call_id, held = EXCLUDED.held, summary = EXCLUDED.summary
                 WHERE fleet_recordings.seq < EXCLUDED.seq",
                ts_sql(4),
                day_sql(4)
            ))?,
            consent: tx.prepare(
                "INSERT INTO fleet_consent (site, id, seq, state, law, lawful)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (site, id) DO UPDATE SET seq = EXCLUDED.seq, state = EXCLUDED.state,
                   law = EXCLUDED.law, lawful = EXCLUDED.lawful
                 WHERE fleet_consent.seq < EXCLUDED.seq",
            )?,
            purge: tx.prepare(&format!(
                "INSERT INTO fleet_purges (site, id, seq, deleted, day, rule, reason, actor, scope,
                   body)
                 VALUES ($1, $2, $3, {}, {}, $5, $6, $7, $8, $9::text::jsonb)
                 ON CONFLICT (site, id) DO NOTHING",
                ts_sql(4),
                day_sql(4)
            ))?,
            hold: tx.prepare(&format!(
                "INSERT INTO fleet_holds (site, id, seq, case_id, reason, actor, added, released,
                   recordings, body)
                 VALUES ($1, $2, $3, $4, $5, $6, {}, {}, $9, $10::text::jsonb)
                 ON CONFLICT (site, id) DO UPDATE SET seq = EXCLUDED.seq,
                   released = EXCLUDED.released, recordings = EXCLUDED.recordings,
                   body = EXCLUDED.body
                 WHERE fleet_holds.seq < EXCLUDED.seq",
                ts_sql(7),
                ts_sql(8)
            ))?,
            call: tx.prepare(&format!(
                "INSERT INTO fleet_calls (site, id, seq, call_key, started_ms, started, day,
                   disposition, billsec, queue, body)
                 VALUES ($1, $2, $3, $4, $5, {}, {}, $6, $7, $8, $9::text::jsonb)
                 ON CONFLICT (site, id) DO UPDATE SET seq = EXCLUDED.seq,
                   call_key = EXCLUDED.call_key, started_ms = EXCLUDED.started_ms,
                   started = EXCLUDED.started, day = EXCLUDED.day,
                   disposition = EXCLUDED.disposition, billsec = EXCLUDED.billsec,
                   queue = EXCLUDED.queue, body = EXCLUDED.body
                 WHERE fleet_calls.seq < EXCLUDED.seq",
                ts_sql(5),
                day_sql(5)
            ))?,
            call_dropped: tx.prepare("DELETE FROM fleet_calls WHERE site = $1 AND id = $2")?,
            head: tx.prepare(&format!(
                "INSERT INTO fleet_heads (site, event_seq, audit_seq, hash, at)
                 VALUES ($1, $2, $3, $4, {})",
                ts_sql(5)
            ))?,
            // Call records not re-sent by a resync were dropped at the site meanwhile.
            resync_done: tx.prepare("DELETE FROM fleet_calls WHERE site = $1 AND seq < $2")?,
        })
    }

    fn apply(
        &mut self,
        tx: &mut postgres::Transaction,
        site: &str,
        b: &Batch,
        stored: &Stored,
        envelope: &Envelope,
    ) -> Result<(), CentralError> {
        let seq = stored.seq as i64;
        let kind = match &envelope.event {
            Event::Recording { .. } => "recording",
            Event::Purge { .. } => "purge",
            Event::Hold { .. } => "hold",
            Event::Call { .. } => "call",
            Event::CallDropped { .. } => "call_dropped",
            Event::Head { .. } => "head",
            Event::Resync => "resync",
            Event::ResyncDone { .. } => "resync_done",
        };
        // The body as the site wrote it, unless numbers must leave hashed.
        let mut redacted = None;
        if let (Event::Call { leg }, Some(key)) = (&envelope.event, b.redact) {
            let mut leg = leg.as_ref().clone();
            super::redact_leg(key, &mut leg);
            redacted = Some(Envelope {
                at_ms: envelope.at_ms,
                event: Event::Call { leg: Box::new(leg) },
            });
        }
        let envelope = redacted.as_ref().unwrap_or(envelope);
        let body = match &redacted {
            Some(e) => text(e),
            None => String::from_utf8_lossy(&stored.bytes).into_owned(),
        };
        tx.execute(
            &self.event,
            &[&site, &seq, &kind, &envelope.at_ms, &stored.digest, &body],
        )?;
        match &envelope.event {
            Event::Recording { summary: s } => {
                let law = s.consent_law.unwrap_or(b.default_law);
                let lawful = crate::kpi::lack_of(s, law).is_none();
                tx.execute(
                    &self.recording,
                    &[
                        &site,
                        &(s.id as i64),
                        &seq,
                        &s.started_ms,
                        &s.state.as_str(),
                        &s.agent,
                        &s.queue,
                        &s.score.map(|x| x as i32),
                        &s.grade.map(|g| g.as_str()),
                        &s.consent.map(|c| word(&c)),
                        &s.consent_law.map(|l| l.as_str()),
                        &lawful,
                        &s.talk_s,
                        &s.hold_s,
                        &s.call_id,
                        &s.held,
                        &text(s),
                    ],
                )?;
                tx.execute(
                    &self.consent,
                    &[
                        &site,
                        &(s.id as i64),
                        &seq,
                        &s.consent.map(|c| word(&c)),
                        &law.as_str(),
                        &lawful,
                    ],
                )?;
            }
            Event::Purge { id, tombstone: t } => {
                tx.execute(
                    &self.purge,
                    &[
                        &site,
                        &(*id as i64),
                        &seq,
                        &t.deleted_ms,
                        &t.rule,
                        &t.reason,
                        &t.actor,
                        &t.scope.as_str(),
                        &text(t),
                    ],
                )?;
            }
            Event::Hold { hold: h } => {
                tx.execute(
                    &self.hold,
                    &[
                        &site,
                        &(h.id as i64),
                        &seq,
                        &h.case,
                        &h.reason,
                        &h.actor,
                        &h.added_ms,
                        &h.released.as_ref().map(|r| r.at_ms),
                        &(h.recordings.len() as i64),
                        &text(h),
                    ],
                )?;
            }
            Event::Call { leg } => {
                tx.execute(
                    &self.call,
                    &[
                        &site,
                        &leg.id,
                        &seq,
                        &leg.call_key(),
                        &leg.start_ms,
                        &leg.disposition.as_str(),
                        &(leg.billsec as i32),
                        &leg.queue,
                        &text(leg),
                    ],
                )?;
            }
            Event::CallDropped { id } => {
                tx.execute(&self.call_dropped, &[&site, id])?;
            }
            Event::Head { head, at_ms } => {
                tx.execute(
                    &self.head,
                    &[&site, &seq, &(head.seq as i64), &head.hash, at_ms],
                )?;
            }
            Event::Resync => {}
            Event::ResyncDone { from } => {
                tx.execute(&self.resync_done, &[&site, &(*from as i64)])?;
            }
        }
        Ok(())
    }
}
