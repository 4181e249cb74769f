//! `callwarden user`: the web console's accounts. The password is read here (a prompt without
//! echo, or one line of standard input) and only its argon2 hash leaves this process.

use std::io::{BufRead, IsTerminal, Write};

use super::client::Access;
use crate::accounts::{AccountChange, PasswordHash, UserName};
use crate::query::Role;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Quality pages only: calls, KPIs, the quality report; listening.
    Viewer,
    /// Also consent, retention, holds and audit entries, as the CLI's auditors.
    Auditor,
    /// Also legal holds and consent changes.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add an account (asks for its password).
    Add {
        #[command(flatten)]
        store: Access,
        /// The user name: letters, digits, '.', '_', '-'.
        name: UserName,
        /// What the user may do in the console.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (and enable a disabled account again).
    Passwd {
        #[command(flatten)]
        store: Access,
        /// The user name.
        name: UserName,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: no more logins, and its sessions end.
    Disable {
        #[command(flatten)]
        store: Access,
        /// The user name.
        name: UserName,
    },
    /// Show the console's times to this user in their own time zone.
    Zone {
        #[command(flatten)]
        store: Access,
        /// The user name.
        name: UserName,
        /// An IANA time zone (`Europe/Paris`, `America/New_York`); none: the console's own
        /// (`[web] time_zone`) again.
        zone: Option<String>,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        store: Access,
    },
}

/// The password: one line of standard input, or typed twice at a prompt without echo.
fn password(from_stdin: bool) -> anyhow::Result<PasswordHash> {
    let typed = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ: nothing changed");
        }
        first
    };
    PasswordHash::of(&typed).map_err(|e| anyhow::anyhow!("{e}: nothing changed"))
}

pub fn user(cmd: UserCommand) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match cmd {
        UserCommand::Add {
            store,
            name,
            role,
            password_stdin,
        } => {
            let hash = password(password_stdin)?;
            let (a, _) = store.user(
                name,
                AccountChange::Add {
                    role: role.into(),
                    hash,
                },
            )?;
            writeln!(out, "user {} added ({})", a.name, a.role.as_str())?;
        }
        UserCommand::Passwd {
            store,
            name,
            password_stdin,
        } => {
            let hash = password(password_stdin)?;
            let (a, _) = store.user(name, AccountChange::Password { hash })?;
            writeln!(out, "user {}: password changed", a.name)?;
        }
        UserCommand::Disable { store, name } => {
            let (a, _) = store.user(name, AccountChange::Disable)?;
            writeln!(out, "user {} disabled", a.name)?;
        }
        UserCommand::Zone { store, name, zone } => {
            let (a, _) = store.user(name, AccountChange::TimeZone { zone })?;
            match &a.time_zone {
                Some(z) => writeln!(out, "user {}: times in {z}", a.name)?,
                None => writeln!(out, "user {}: times in the console's time zone", a.name)?,
            }
        }
        UserCommand::List { store } => {
            let (all, _) = store.users()?;
            if all.is_empty() {
                writeln!(
                    out,
                    "no console accounts: add one with `callwarden user add NAME --role admin`"
                )?;
            }
            for a in all {
                writeln!(
                    out,
                    "{:<24} {:<8} {:<8} {}",
                    a.name,
                    a.role.as_str(),
                    if a.disabled { "disabled" } else { "enabled" },
                    a.time_zone.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(0)
}
