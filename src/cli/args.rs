//! What commands take that needs more than clap: the times given on the command line
//! (`--now`, `--since`) and the name of who runs the command.

pub(super) fn parse_time(text: &str) -> Result<i64, String> {
    crate::metadata::rfc3339_ms(text).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// `--since`: RFC 3339, or an age (`24h`, `7d`) before `now_ms`.
pub(super) fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(t) = crate::metadata::rfc3339_ms(text) {
        return Ok(t);
    }
    let span = crate::policy::Span::parse(text).map_err(|_| {
        anyhow::anyhow!("--since {text:?}: give an RFC 3339 time or an age like 24h, 7d, 1y")
    })?;
    // The age back from now: the same arithmetic as forward, mirrored.
    let ahead = span.after(now_ms).unwrap_or(i64::MAX);
    Ok(now_ms.saturating_sub(ahead.saturating_sub(now_ms)))
}

/// Who runs this command, for the audit log and the deletion certificate: the user database's
/// name for the uid (never only `uid 0`), who ran it through sudo, and the login name the
/// environment claims when it differs (`root (uid 0, sudo by alice)`).
pub(super) fn actor() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = crate::control::user_name(uid);
    let mut notes = vec![format!("uid {uid}")];
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(by) = env("SUDO_USER") {
        notes.push(format!("sudo by {by}"));
    }
    if let Some(user) = env("USER").filter(|u| Some(u) != name.as_ref()) {
        notes.push(format!("USER={user}"));
    }
    format!(
        "{} ({})",
        name.unwrap_or_else(|| "unknown user".into()),
        notes.join(", ")
    )
}
