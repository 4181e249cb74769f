//! The wall clock, read in one place: the edges (ingest, the daemon, the CLI, the outbox's
//! stamp on each event) call this; the functional core takes the time as a parameter.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time zone people read times in (the jiff adapter for the console and its configuration).
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone of an IANA name (`UTC`, `Europe/Paris`).
    pub fn named(name: &str) -> Result<Zone, String> {
        jiff::tz::TimeZone::get(name)
            .map(Zone)
            .map_err(|e| format!("{name:?} is not a time zone: {e}"))
    }

    pub fn utc() -> Zone {
        Zone(jiff::tz::TimeZone::UTC)
    }

    /// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` in this zone.
    pub fn format(&self, ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned(self.0.clone())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|_| "?".into())
    }

    /// Where the day `YYYY-MM-DD` starts in this zone (ms since the epoch), or (`end`) where it
    /// ends: the next day's start.
    pub fn day_ms(&self, day: &str, end: bool) -> Result<i64, String> {
        let date: jiff::civil::Date = day
            .trim()
            .parse()
            .map_err(|_| format!("{day:?} is not a day (YYYY-MM-DD)"))?;
        let date = if end {
            date.tomorrow().map_err(|e| e.to_string())?
        } else {
            date
        };
        date.to_zoned(self.0.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| format!("{day}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_in_a_zone() {
        let paris = Zone::named("Europe/Paris").unwrap();
        // 2026-12-07 starts at 23:00 UTC the day before (CET, UTC+1).
        let start = paris.day_ms("2026-12-07", false).unwrap();
        assert_eq!(Zone::utc().format(start), "2026-12-06 23:00:00");
        assert_eq!(paris.format(start), "2026-12-07 00:00:00");
        assert_eq!(
            paris.day_ms("2026-12-07", true).unwrap() - start,
            86_400_000
        );
        assert!(paris.day_ms("7/12/2026", false).is_err());
        assert!(Zone::named("Mars/Olympus").is_err());
    }
}
