//! Console accounts: who may log in to the web console, with which role, and the argon2 adapter
//! that hashes and checks their passwords (the only module that knows argon2).
//!
//! A password is never stored or sent: the CLI hashes it (argon2id, a fresh salt, the crate's
//! default cost: 19 MiB, 2 passes) and hands the daemon the PHC string; the console checks a
//! login against it.

use serde::{Deserialize, Serialize};

use crate::query::Role;

/// The shortest password accepted (NIST SP 800-63B asks for at least 8; a console that plays
/// recordings of customers' calls asks for more).
pub const MIN_PASSWORD: usize = 10;
/// The longest: argon2 takes any length, but a megabyte pasted by mistake is not a password.
pub const MAX_PASSWORD: usize = 256;

/// A user's name: 1-64 of ASCII letters, digits, `.`, `_`, `-`, starting with a letter or
/// digit (it is written in the audit log and shown in pages, so it holds nothing to escape).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<String> for UserName {
    type Error = String;

    fn try_from(name: String) -> Result<UserName, String> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(UserName(name))
        } else {
            Err(format!(
                "{name:?} is not a user name: use 1-64 letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ))
        }
    }
}

impl std::str::FromStr for UserName {
    type Err = String;

    fn from_str(s: &str) -> Result<UserName, String> {
        UserName::try_from(s.to_string())
    }
}

impl From<UserName> for String {
    fn from(n: UserName) -> String {
        n.0
    }
}

/// A password's argon2 hash, as a PHC string (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = String;

    fn try_from(s: String) -> Result<PasswordHash, String> {
        argon2::PasswordHash::new(&s).map_err(|e| format!("not an argon2 password hash: {e}"))?;
        Ok(PasswordHash(s))
    }
}

impl From<PasswordHash> for String {
    fn from(h: PasswordHash) -> String {
        h.0
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh salt; refuses one too short or too long.
    pub fn of(password: &str) -> Result<PasswordHash, String> {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let n = password.chars().count();
        if n < MIN_PASSWORD {
            return Err(format!(
                "the password is {n} characters long: use at least {MIN_PASSWORD}"
            ));
        }
        if password.len() > MAX_PASSWORD {
            return Err(format!(
                "the password is longer than {MAX_PASSWORD} bytes: is that really it?"
            ));
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|e| format!("the password could not be hashed: {e}"))
    }

    /// Whether `password` is the one hashed.
    pub fn verify(&self, password: &str) -> bool {
        use argon2::password_hash::PasswordVerifier;
        if password.len() > MAX_PASSWORD {
            return false;
        }
        argon2::PasswordHash::new(&self.0).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

/// One console account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub name: UserName,
    pub role: Role,
    pub hash: PasswordHash,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// The time zone the console shows this user times in (an IANA name); None: the console's
    /// (`[web] time_zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub created_ms: i64,
    pub changed_ms: i64,
}

/// What the CLI lists of an account (never its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub name: UserName,
    pub role: Role,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub created_ms: i64,
    pub changed_ms: i64,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> AccountView {
        AccountView {
            name: a.name.clone(),
            role: a.role,
            disabled: a.disabled,
            time_zone: a.time_zone.clone(),
            created_ms: a.created_ms,
            changed_ms: a.changed_ms,
        }
    }
}

/// A change to an account, as the CLI asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum AccountChange {
    /// A new account (refused when the name is taken).
    Add { role: Role, hash: PasswordHash },
    /// A new password (and the account enabled again).
    Password { hash: PasswordHash },
    /// No more logins; its open sessions end at their next request.
    Disable,
    /// The time zone the console shows the user times in (None: the console's).
    TimeZone { zone: Option<String> },
}

impl AccountChange {
    /// Applies the change to `current` (None: no such account) at `now_ms`.
    pub fn apply(
        &self,
        name: &UserName,
        current: Option<&Account>,
        now_ms: i64,
    ) -> Result<Account, String> {
        match (self, current) {
            (AccountChange::Add { .. }, Some(_)) => Err(format!(
                "user {name} exists: use `user passwd` to change it"
            )),
            (AccountChange::Add { role, hash }, None) => Ok(Account {
                name: name.clone(),
                role: *role,
                hash: hash.clone(),
                disabled: false,
                time_zone: None,
                created_ms: now_ms,
                changed_ms: now_ms,
            }),
            (_, None) => Err(format!("no user {name}")),
            (AccountChange::Password { hash }, Some(a)) => Ok(Account {
                hash: hash.clone(),
                disabled: false,
                changed_ms: now_ms,
                ..a.clone()
            }),
            (AccountChange::Disable, Some(a)) => Ok(Account {
                disabled: true,
                changed_ms: now_ms,
                ..a.clone()
            }),
            (AccountChange::TimeZone { zone }, Some(a)) => {
                if let Some(z) = zone {
                    crate::clock::Zone::named(z)?;
                }
                Ok(Account {
                    time_zone: zone.clone(),
                    changed_ms: now_ms,
                    ..a.clone()
                })
            }
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AccountChange::Add { .. } => "add",
            AccountChange::Password { .. } => "password",
            AccountChange::Disable => "disable",
            AccountChange::TimeZone { .. } => "time_zone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hold_nothing_to_escape() {
        for good in ["alice", "qa.lead-2", "B_o_b"] {
            assert!(good.parse::<UserName>().is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "<script>", "ä", &"x".repeat(65)] {
            assert!(bad.parse::<UserName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_hashed_salted_and_checked() {
        let a = PasswordHash::of("correct horse battery").unwrap();
        let b = PasswordHash::of("correct horse battery").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.verify("correct horse battery"));
        assert!(!a.verify("correct horse batterY"));
        assert!(PasswordHash::of("short").is_err());
        assert!(String::from(a).starts_with("$argon2id$"));
        assert!(PasswordHash::try_from("plain".to_string()).is_err());
    }

    #[test]
    fn changes_apply_in_order() {
        let name: UserName = "ann".parse().unwrap();
        let hash = PasswordHash::of("0123456789ab").unwrap();
        let add = AccountChange::Add {
            role: Role::Viewer,
            hash: hash.clone(),
        };
        let a = add.apply(&name, None, 5).unwrap();
        assert!(add.apply(&name, Some(&a), 6).is_err());
        let d = AccountChange::Disable.apply(&name, Some(&a), 7).unwrap();
        assert!(d.disabled && d.changed_ms == 7 && d.created_ms == 5);
        let p = AccountChange::Password { hash }
            .apply(&name, Some(&d), 8)
            .unwrap();
        assert!(!p.disabled);
        assert!(AccountChange::Disable.apply(&name, None, 9).is_err());
    }
}
