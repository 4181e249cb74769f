#!/usr/bin/env bash
# Installs callwarden: the binary, the systemd unit, sysusers and tmpfiles entries, the default
# configuration (only when there is none) and the documentation. Run with --help for the details.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [--help]

Installs a built callwarden (build it first: cargo build --release --locked).

  BIN=FILE      the binary to install (default: target/release/callwarden in this checkout)
  DESTDIR=DIR   lay the files out under DIR instead of / (for packages and images); with
                DESTDIR set nothing else is done: no users, no directories, no systemctl

Files, under DESTDIR:
  /usr/bin/callwarden                       the binary (the unit's ExecStart)
  /usr/lib/systemd/system/callwarden.service
  /usr/lib/sysusers.d/callwarden.conf       the callwarden user and group
  /usr/lib/tmpfiles.d/callwarden.conf       /var/lib/callwarden (the store) and /run/callwarden
  /etc/callwarden/callwarden.toml           the default configuration (mode 0640, group
                                            callwarden), ONLY if there is none: an upgrade keeps
                                            your configuration as it is
                                            (`callwarden default-config` prints the new default)
  /usr/share/doc/callwarden/                README.md and docs/*.md
  /usr/share/man/man1/callwarden*.1.gz      a manual page per command (`BIN man --out-dir`)
  /usr/share/bash-completion/completions/callwarden
  /usr/share/zsh/vendor-completions/_callwarden
  /usr/share/fish/vendor_completions.d/callwarden.fish
                                            shell completions (`BIN completions SHELL`)

Installing into / (DESTDIR empty) needs root, and then also runs, each only if it is present:
systemd-sysusers (creates the user), systemd-tmpfiles --create (creates the store and runtime
folders if missing) and systemctl daemon-reload. It does not enable, start or restart the
service; it prints what to do next.

It never touches the store (/var/lib/callwarden and what is in it) nor any recording: an upgrade
keeps the store, the audit log and the configuration.
EOF
}

case "${1:-}" in
    -h | --help)
        usage
        exit 0
        ;;
    "") ;;
    *)
        echo "install.sh: unknown argument: $1 (see --help)" >&2
        exit 2
        ;;
esac

umask 022
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$SRC/target/release/callwarden}"
DESTDIR="${DESTDIR:-}"
DESTDIR="${DESTDIR%/}"

BIN_PATH=/usr/bin/callwarden
UNIT_DIR=/usr/lib/systemd/system
SYSUSERS=/usr/lib/sysusers.d/callwarden.conf
TMPFILES=/usr/lib/tmpfiles.d/callwarden.conf
CONFIG=/etc/callwarden/callwarden.toml
DOC_DIR=/usr/share/doc/callwarden
MAN_DIR=/usr/share/man/man1
BASH_COMPLETION=/usr/share/bash-completion/completions/callwarden
ZSH_COMPLETION=/usr/share/zsh/vendor-completions/_callwarden
FISH_COMPLETION=/usr/share/fish/vendor_completions.d/callwarden.fish
# The configuration names the store and may name a webhook: readable by the callwarden group
# only (the .deb sets the same mode).
CONFIG_MODE=0640

die() {
    echo "install.sh: $*" >&2
    exit 1
}

if [ ! -f "$BIN" ] || [ ! -x "$BIN" ]; then
    die "no executable at BIN=$BIN (build it: cargo build --release --locked)"
fi
for f in systemd/callwarden.service systemd/callwarden.sysusers systemd/callwarden.tmpfiles \
    config/callwarden.toml; do
    [ -f "$SRC/$f" ] || die "missing $SRC/$f"
done

# The unit must start the binary where this script puts it.
exec_start="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$SRC/systemd/callwarden.service")"
[ "$exec_start" = "$BIN_PATH" ] ||
    die "systemd/callwarden.service starts '$exec_start', but the binary goes to $BIN_PATH"

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    die "installing into / needs root (or set DESTDIR=DIR to lay the files out elsewhere)"
fi

# Copies $1 to $DESTDIR$2 with mode $3: written beside, then renamed over the old one, so a
# running daemon or a reader never sees a half-written file.
put() {
    local src="$1" dst="$DESTDIR$2" mode="$3" dir tmp
    dir="$(dirname "$dst")"
    mkdir -p "$dir"
    tmp="$(mktemp "$dir/.install.XXXXXX")"
    if ! { cp "$src" "$tmp" && chmod "$mode" "$tmp" && mv -f "$tmp" "$dst"; }; then
        rm -f "$tmp"
        die "could not install $dst"
    fi
    echo "installed $dst"
}

put "$BIN" "$BIN_PATH" 0755
put "$SRC/systemd/callwarden.service" "$UNIT_DIR/callwarden.service" 0644
put "$SRC/systemd/callwarden.sysusers" "$SYSUSERS" 0644
put "$SRC/systemd/callwarden.tmpfiles" "$TMPFILES" 0644

if [ -e "$DESTDIR$CONFIG" ] || [ -L "$DESTDIR$CONFIG" ]; then
    echo "kept $DESTDIR$CONFIG (an upgrade keeps the configuration; \`callwarden default-config\` prints the new default)"
else
    put "$SRC/config/callwarden.toml" "$CONFIG" "$CONFIG_MODE"
fi

for doc in "$SRC/README.md" "$SRC"/docs/*.md; do
    if [ -f "$doc" ]; then
        put "$doc" "$DOC_DIR/$(basename "$doc")" 0644
    fi
done

# The manual pages and completions come from the binary's own command line, so they always
# match it.
GEN="$(mktemp -d)"
trap 'rm -rf "$GEN"' EXIT
"$BIN" man --out-dir "$GEN/man" || die "$BIN man --out-dir failed"
for page in "$GEN"/man/*.1; do
    [ -f "$page" ] || die "$BIN man --out-dir wrote no page"
    gzip -9n "$page"
    put "$page.gz" "$MAN_DIR/$(basename "$page").gz" 0644
done
for shell in bash zsh fish; do
    "$BIN" completions "$shell" >"$GEN/completion.$shell" || die "$BIN completions $shell failed"
done
put "$GEN/completion.bash" "$BASH_COMPLETION" 0644
put "$GEN/completion.zsh" "$ZSH_COMPLETION" 0644
put "$GEN/completion.fish" "$FISH_COMPLETION" 0644

if [ -n "$DESTDIR" ]; then
    echo "laid out under $DESTDIR; nothing else done (DESTDIR is set)"
    exit 0
fi

run_if_present() {
    if command -v "$1" >/dev/null 2>&1; then
        echo "running $*"
        "$@"
    else
        echo "skipped $1: not installed"
    fi
}

run_if_present systemd-sysusers "$SYSUSERS"
run_if_present systemd-tmpfiles --create "$TMPFILES"
if getent group callwarden >/dev/null 2>&1; then
    # A configuration installed now, or kept from before: the daemon's group reads it.
    { chgrp callwarden "$CONFIG" && chmod "$CONFIG_MODE" "$CONFIG"; } ||
        die "could not give $CONFIG to the callwarden group"
fi
if [ -d /run/systemd/system ]; then
    run_if_present systemctl daemon-reload
else
    echo "skipped systemctl daemon-reload: systemd is not running"
fi

cat <<EOF

Next: set ingest.roots in $CONFIG and the recordings root in a drop-in for the unit
(systemctl edit callwarden; see $DOC_DIR/integration.md), let callwarden read the recordings
(usermod -aG asterisk callwarden), then: systemctl enable --now callwarden
After an upgrade: systemctl restart callwarden
EOF
