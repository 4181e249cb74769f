//! Console sessions and the login limiter: in the daemon's memory (a restart logs everyone out),
//! keyed by the SHA-256 of the cookie's token so that the table holds nothing a browser could
//! present.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::accounts::UserName;
use crate::query::Role;

/// The session cookie's name.
pub const COOKIE: &str = "cw_session";

/// A logged-in user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: UserName,
    pub role: Role,
    /// The token every change must carry (a form field), so another site cannot post for the
    /// user.
    pub csrf: String,
    pub expires_ms: i64,
    /// The time zone pages show this user times in: the account's own as it is now, else the
    /// console's (`[web] time_zone`).
    pub time_zone: String,
}

/// 32 random bytes, hex.
pub fn token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// What the tables keep of a token: its SHA-256, never the token a browser presents.
pub(crate) fn key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// Opens a session at `now_ms`; its token goes in the cookie. Expired sessions leave as
    /// new ones come (the table holds no more than the logins of one session's lifetime).
    pub fn open(&self, session: Session, now_ms: i64) -> Result<String, String> {
        let token = token()?;
        let mut all = self
            .0
            .lock()
            .map_err(|_| "the session table is unavailable")?;
        all.retain(|_, s| s.expires_ms > now_ms);
        all.insert(key(&token), session);
        Ok(token)
    }

    /// The live session of `token` at `now_ms`.
    pub fn get(&self, token: &str, now_ms: i64) -> Option<Session> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(token);
        match all.get(&k) {
            Some(s) if s.expires_ms > now_ms => Some(s.clone()),
            Some(_) => {
                all.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn close(&self, token: &str) -> Option<Session> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(token))
    }

    /// Ends every session of `user` (disabled, or its password changed).
    pub fn close_user(&self, user: &UserName) {
        if let Ok(mut all) = self.0.lock() {
            all.retain(|_, s| &s.user != user);
        }
    }
}

/// Failures allowed before logins slow down.
const FREE_FAILURES: u32 = 3;
/// The longest wait between tries (ms): 5 minutes.
const MAX_WAIT_MS: i64 = 300_000;
/// Failures older than this are forgotten (ms): 15 minutes.
const FORGET_MS: i64 = 900_000;

#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    last_ms: i64,
}

impl Failures {
    /// When the next try may come: after the free failures, each one doubles the wait from one
    /// second, up to five minutes.
    fn next_ms(&self) -> Option<i64> {
        let doublings = self.count.checked_sub(FREE_FAILURES)?.min(20);
        Some(
            self.last_ms
                .saturating_add((1000i64 << doublings).min(MAX_WAIT_MS)),
        )
    }
}

/// Slows down password guessing, per user name and per address: both must be free for a try.
#[derive(Debug, Default)]
pub struct Limiter(Mutex<HashMap<String, Failures>>);

impl Limiter {
    fn keys(user: &str, addr: &str) -> [String; 2] {
        [format!("u:{user}"), format!("a:{addr}")]
    }

    /// How long (ms) until `user` may try again from `addr`; 0: now.
    pub fn wait_ms(&self, user: &str, addr: &str, now_ms: i64) -> i64 {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(user, addr)
            .iter()
            .filter_map(|k| all.get(k))
            .filter(|f| now_ms.saturating_sub(f.last_ms) < FORGET_MS)
            .filter_map(|f| f.next_ms())
            .map(|next| next.saturating_sub(now_ms).max(0))
            .max()
            .unwrap_or(0)
    }

    pub fn failed(&self, user: &str, addr: &str, now_ms: i64) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, f| now_ms.saturating_sub(f.last_ms) < FORGET_MS);
        for k in Self::keys(user, addr) {
            let f = all.entry(k).or_default();
            f.count = f.count.saturating_add(1);
            f.last_ms = now_ms;
        }
    }

    pub fn succeeded(&self, user: &str, addr: &str) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(user, addr) {
            all.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: &str, expires_ms: i64) -> Session {
        Session {
            user: user.parse().unwrap(),
            role: Role::Viewer,
            csrf: "c".into(),
            expires_ms,
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::default();
        let t = s.open(session("ann", 1000), 0).unwrap();
        assert_eq!(t.len(), 64);
        assert!(s.get(&t, 999).is_some());
        assert!(s.get(&t, 1000).is_none(), "expired");
        let t = s.open(session("ann", 5000), 0).unwrap();
        let u = s.open(session("bob", 5000), 0).unwrap();
        s.close_user(&"ann".parse().unwrap());
        assert!(s.get(&t, 0).is_none());
        assert!(s.get(&u, 0).is_some());
        assert!(s.close(&u).is_some());
        assert!(s.get(&u, 0).is_none());
        assert!(s.get("not a token", 0).is_none());
    }

    #[test]
    fn guessing_slows_down_per_user_and_per_address() {
        let l = Limiter::default();
        for i in 0..3 {
            assert_eq!(l.wait_ms("ann", "10.0.0.1", i), 0);
            l.failed("ann", "10.0.0.1", i);
        }
        // The fourth failure in a row waits a second, the fifth two.
        assert_eq!(l.wait_ms("ann", "10.0.0.1", 2), 1000);
        assert_eq!(
            l.wait_ms("ann", "10.0.0.9", 2),
            1000,
            "the user, from anywhere"
        );
        assert_eq!(
            l.wait_ms("bob", "10.0.0.1", 2),
            1000,
            "the address, for anyone"
        );
        assert_eq!(l.wait_ms("bob", "10.0.0.9", 2), 0);
        l.failed("ann", "10.0.0.1", 1002);
        assert_eq!(l.wait_ms("ann", "10.0.0.1", 1002), 2000);
        for i in 0..30 {
            l.failed("ann", "10.0.0.1", 2000 + i);
        }
        assert_eq!(l.wait_ms("ann", "10.0.0.1", 2029), MAX_WAIT_MS);
        assert_eq!(
            l.wait_ms("ann", "10.0.0.1", 2029 + FORGET_MS),
            0,
            "forgotten"
        );
        l.succeeded("ann", "10.0.0.1");
        assert_eq!(l.wait_ms("ann", "10.0.0.1", 2030), 0);
    }
}
