//! Asterisk's `cdr_pgsql` / `cdr_odbc` table in PostgreSQL, read by the daemon (the postgres
//! adapter): the standard `cdr` columns (calldate, clid, src, dst, dcontext, channel,
//! dstchannel, lastapp, duration, billsec, disposition, amaflags, accountcode, uniqueid,
//! linkedid, userfield, and `lastdata` where the table has it, for the queue), read as text and
//! parsed like a `Master.csv` row, so both sources give the same records.
//!
//! The cursor is the last (calldate, uniqueid) read, kept in the store with the records. Asterisk
//! writes a row when the call ends but dates it when it started, so a long call's row lands
//! behind rows already read: every poll reads again from `calls.pg_lookback_s` before the
//! cursor (rows already stored are recognised and not written again), in pages of 5,000.

use serde::{Deserialize, Serialize};

use crate::cdr::{Column, Template, Zone};
use crate::cdr_follow::Polled;
use crate::store::{Store, StoreError};

/// Rows read per query.
const PAGE: i64 = 5000;

/// Where reading the table has got to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    calldate: String,
    uniqueid: String,
}

/// One followed table.
pub struct Table {
    pub url: String,
    pub table: String,
    client: Option<postgres::Client>,
    cursor: Option<Cursor>,
}

/// The table's columns as the query returns them, in this order.
fn template() -> Template {
    Template(vec![
        Column::Start,
        Column::Clid,
        Column::Src,
        Column::Dst,
        Column::Context,
        Column::Channel,
        Column::DstChannel,
        Column::LastApp,
        Column::LastData,
        Column::Duration,
        Column::Billsec,
        Column::Disposition,
        Column::Ignore, // amaflags
        Column::Account,
        Column::UniqueId,
        Column::LinkedId,
        Column::UserField,
    ])
}

/// A table name as SQL may name it: letters, digits, `_`, and one `.` for a schema.
pub fn valid_table(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        })
}

impl Table {
    pub fn new(url: String, table: String) -> Table {
        Table {
            url,
            table,
            client: None,
            cursor: None,
        }
    }

    fn cursor_key(&self) -> String {
        format!("cdr_cursor:pgsql:{}:{}", redact(&self.url), self.table)
    }

    /// Reads the rows added since the last poll (and the lookback before it) and stores them
    /// with the new cursor. A database that cannot be reached is a note, tried again next poll.
    pub fn poll(
        &mut self,
        store: &Store,
        zone: &Zone,
        lookback_s: f64,
        now_ms: i64,
    ) -> Result<Polled, StoreError> {
        let mut polled = Polled::default();
        if self.cursor.is_none() {
            self.cursor = Some(crate::cdr_follow::load_cursor(store, &self.cursor_key())?);
        }
        if self.client.is_none() {
            match postgres::Client::connect(&self.url, postgres::NoTls) {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    polled
                        .notes
                        .push(format!("connect to {}: {e}", redact(&self.url)));
                    return Ok(polled);
                }
            }
        }
        let template = template();
        let uniqueid = template
            .0
            .iter()
            .position(|c| *c == Column::UniqueId)
            .unwrap_or(0);
        let sql = format!(
            "SELECT to_char(calldate, 'YYYY-MM-DD HH24:MI:SS'), coalesce(clid, ''), \
             coalesce(src, ''), coalesce(dst, ''), coalesce(dcontext, ''), \
             coalesce(channel, ''), coalesce(dstchannel, ''), coalesce(lastapp, ''), \
             coalesce(to_jsonb(c) ->> 'lastdata', ''), coalesce(duration, 0)::text, coalesce(billsec, 0)::text, \
             coalesce(disposition, ''), '', coalesce(accountcode, ''), coalesce(uniqueid, ''), \
             coalesce(linkedid, ''), coalesce(userfield, '') \
             FROM {} AS c WHERE (calldate, uniqueid) > \
             ($1::text::timestamp - make_interval(secs => $3::float8), $2::text) \
             ORDER BY calldate, uniqueid LIMIT {PAGE}",
            self.table
        );
        let cursor = self.cursor.clone().unwrap_or_default();
        // The first page from the lookback before the cursor: rows of long calls land behind it.
        let mut from = if cursor.calldate.is_empty() {
            Cursor {
                calldate: "1970-01-01 00:00:00".into(),
                uniqueid: String::new(),
            }
        } else {
            Cursor {
                calldate: cursor.calldate.clone(),
                uniqueid: String::new(),
            }
        };
        let mut back_s = if cursor.calldate.is_empty() {
            0.0
        } else {
            lookback_s
        };
        let mut newest = cursor.clone();
        while let Some(client) = self.client.as_mut() {
            let rows = match client.query(sql.as_str(), &[&from.calldate, &from.uniqueid, &back_s])
            {
                Ok(rows) => rows,
                Err(e) => {
                    polled.notes.push(format!(
                        "read {} from {}: {e}",
                        self.table,
                        redact(&self.url)
                    ));
                    // A broken connection is made again next poll.
                    self.client = None;
                    break;
                }
            };
            let mut legs = Vec::new();
            let mut rejected = Vec::new();
            let mut last = None;
            for row in &rows {
                let fields: Vec<String> = (0..template.0.len())
                    .map(|i| {
                        row.try_get::<_, Option<String>>(i)
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                    })
                    .collect();
                let at = Cursor {
                    calldate: fields[0].clone(),
                    uniqueid: fields[uniqueid].clone(),
                };
                match crate::cdr::from_fields(&fields, &template, zone) {
                    Ok(leg) => legs.push(leg),
                    Err(why) => rejected.push((format!("{}:{}", self.table, at.uniqueid), why)),
                }
                last = Some(at);
            }
            let Some(last) = last else {
                break;
            };
            if (last.calldate.as_str(), last.uniqueid.as_str())
                > (newest.calldate.as_str(), newest.uniqueid.as_str())
            {
                newest = last.clone();
            }
            let known = store.calls_known(&legs)?;
            if known < legs.len() || !rejected.is_empty() || newest != cursor {
                let source = format!("{} {}", redact(&self.url), self.table);
                let stored = store.put_calls_with_cursor(
                    &legs,
                    "daemon",
                    &source,
                    rejected.len(),
                    now_ms,
                    Some((
                        &self.cursor_key(),
                        serde_json::to_vec(&newest).unwrap_or_default(),
                    )),
                )?;
                polled.new += stored.new;
                polled.changed += stored.changed;
            }
            polled.rejected.extend(rejected);
            self.cursor = Some(newest.clone());
            if (rows.len() as i64) < PAGE {
                break;
            }
            from = last;
            back_s = 0.0;
        }
        Ok(polled)
    }
}

impl Drop for Table {
    /// The client owns a runtime of its own, which must not be dropped on an async thread (the
    /// daemon's loop, at its stop): it is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// The URL without its password, for logs and the audit log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_and_passwords() {
        assert!(valid_table("cdr") && valid_table("asterisk.cdr"));
        assert!(!valid_table("cdr; drop table x") && !valid_table("a.b.c") && !valid_table("1x"));
        assert_eq!(
            redact("postgresql://ast:secret@127.0.0.1:5433/asterisk"),
            "postgresql://ast:***@127.0.0.1:5433/asterisk"
        );
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
    }
}
