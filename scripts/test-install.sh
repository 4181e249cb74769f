#!/usr/bin/env bash
# Tests scripts/install.sh: lays callwarden out in a fresh DESTDIR with a dummy binary, checks
# every file and its mode, that an upgrade keeps a changed configuration and the store, and,
# where the tools are present, that systemd accepts the installed unit, sysusers and tmpfiles
# entries. Prints "N passed, M failed" last; exits non-zero on any failure.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTALL="$SRC/scripts/install.sh"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
D="$T/dest"

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $*"
}
skip() { echo "skip $*"; }
check() { # check DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
mode_of() { stat -c %a "$1"; }
has_mode() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(mode_of "$1")" = "$2" ]; }
dir_mode() { [ -d "$1" ] && [ "$(mode_of "$1")" = "$2" ]; }
# Runs install.sh with the environment given as arguments, output to $T/install.log.
install_with() { env "$@" bash "$INSTALL" >"$T/install.log" 2>&1; }

mkdir -p "$T/bin"
# A stand-in binary: answers `man --out-dir DIR` and `completions SHELL` as the real one does.
dummy() { # dummy VERSION
    cat >"$T/bin/callwarden" <<EOF
#!/bin/sh
case "\$1" in
    man) mkdir -p "\$3" && echo ".TH callwarden 1" >"\$3/callwarden.1" &&
        echo ".TH callwarden-ingest 1" >"\$3/callwarden-ingest.1" ;;
    completions) echo "# \$2 completion" ;;
    *) echo callwarden-dummy-$1 ;;
esac
EOF
    chmod 0755 "$T/bin/callwarden"
}
dummy 1

# --help, and refusals.
help_explains() { "$INSTALL" --help >"$T/help" && grep -q 'DESTDIR=' "$T/help" && grep -q 'BIN=' "$T/help"; }
refuses_unknown_argument() { ! "$INSTALL" --bogus 2>/dev/null; }
refuses_missing_bin() { ! DESTDIR="$T/x" BIN="$T/nope" "$INSTALL" 2>/dev/null && [ ! -e "$T/x" ]; }
check "--help exits 0 and explains BIN and DESTDIR" help_explains
check "an unknown argument is refused" refuses_unknown_argument
check "a missing BIN is refused, and nothing is installed" refuses_missing_bin
check "bash -n install.sh" bash -n "$INSTALL"

# First installation.
if install_with DESTDIR="$D" BIN="$T/bin/callwarden"; then
    ok "install.sh into a fresh DESTDIR"
else
    fail "install.sh into a fresh DESTDIR: $(cat "$T/install.log")"
fi

check "binary /usr/bin/callwarden, mode 755" has_mode "$D/usr/bin/callwarden" 755
check "binary is the one given in BIN" cmp -s "$T/bin/callwarden" "$D/usr/bin/callwarden"
check "unit /usr/lib/systemd/system/callwarden.service, mode 644" \
    has_mode "$D/usr/lib/systemd/system/callwarden.service" 644
check "unit is systemd/callwarden.service" \
    cmp -s "$SRC/systemd/callwarden.service" "$D/usr/lib/systemd/system/callwarden.service"
check "unit's ExecStart is the installed binary's path" \
    grep -q '^ExecStart=/usr/bin/callwarden ' "$D/usr/lib/systemd/system/callwarden.service"
check "sysusers /usr/lib/sysusers.d/callwarden.conf, mode 644" \
    has_mode "$D/usr/lib/sysusers.d/callwarden.conf" 644
check "sysusers is systemd/callwarden.sysusers" \
    cmp -s "$SRC/systemd/callwarden.sysusers" "$D/usr/lib/sysusers.d/callwarden.conf"
check "tmpfiles /usr/lib/tmpfiles.d/callwarden.conf, mode 644" \
    has_mode "$D/usr/lib/tmpfiles.d/callwarden.conf" 644
check "tmpfiles is systemd/callwarden.tmpfiles" \
    cmp -s "$SRC/systemd/callwarden.tmpfiles" "$D/usr/lib/tmpfiles.d/callwarden.conf"
check "config /etc/callwarden/callwarden.toml, mode 640 (as the .deb)" \
    has_mode "$D/etc/callwarden/callwarden.toml" 640
check "config is the default configuration" \
    cmp -s "$SRC/config/callwarden.toml" "$D/etc/callwarden/callwarden.toml"
check "/etc/callwarden is a directory, mode 755" dir_mode "$D/etc/callwarden" 755
check "README in /usr/share/doc/callwarden (the unit's Documentation=), mode 644" \
    has_mode "$D/usr/share/doc/callwarden/README.md" 644
docs_installed() {
    local f
    for f in "$SRC"/docs/*.md; do
        cmp -s "$f" "$D/usr/share/doc/callwarden/${f##*/}" || return 1
    done
}
man_pages_installed() {
    has_mode "$D/usr/share/man/man1/callwarden.1.gz" 644 &&
        has_mode "$D/usr/share/man/man1/callwarden-ingest.1.gz" 644 &&
        zcat "$D/usr/share/man/man1/callwarden-ingest.1.gz" | grep -q '^.TH callwarden-ingest'
}
completions_installed() {
    grep -q '# bash completion' "$D/usr/share/bash-completion/completions/callwarden" &&
        grep -q '# zsh completion' "$D/usr/share/zsh/vendor-completions/_callwarden" &&
        grep -q '# fish completion' "$D/usr/share/fish/vendor_completions.d/callwarden.fish"
}
check "a gzipped manual page per command in /usr/share/man/man1, from BIN man --out-dir" \
    man_pages_installed
check "bash, zsh and fish completions, from BIN completions" completions_installed
no_temporary_files() { [ -z "$(find "$D" -name '.install.*')" ]; }
only_files_laid_out() { [ ! -e "$D/var" ] && [ ! -e "$D/run" ] && [ ! -e "$D/etc/passwd" ]; }
only_listed_files() {
    local f
    {
        printf '%s\n' ./etc/callwarden/callwarden.toml ./usr/bin/callwarden \
            ./usr/lib/systemd/system/callwarden.service ./usr/lib/sysusers.d/callwarden.conf \
            ./usr/lib/tmpfiles.d/callwarden.conf ./usr/share/doc/callwarden/README.md \
            ./usr/share/man/man1/callwarden.1.gz ./usr/share/man/man1/callwarden-ingest.1.gz \
            ./usr/share/bash-completion/completions/callwarden \
            ./usr/share/zsh/vendor-completions/_callwarden \
            ./usr/share/fish/vendor_completions.d/callwarden.fish
        for f in "$SRC"/docs/*.md; do echo "./usr/share/doc/callwarden/${f##*/}"; done
    } | sort >"$T/files.expected"
    (cd "$D" && find . -type f -o -type l) | sort >"$T/files.found"
    diff "$T/files.expected" "$T/files.found" >/dev/null
}
check "docs/*.md in /usr/share/doc/callwarden" docs_installed
check "no temporary files left behind" no_temporary_files
check "no store, runtime folder or user database laid out (DESTDIR only lays out files)" \
    only_files_laid_out
check "nothing but the listed files installed" only_listed_files

# Upgrade: a changed configuration and the store stay as they are; the binary is replaced.
echo '# changed by the admin' >>"$D/etc/callwarden/callwarden.toml"
cp "$D/etc/callwarden/callwarden.toml" "$T/config.changed"
chmod 0600 "$D/etc/callwarden/callwarden.toml"
mkdir -p "$D/var/lib/callwarden/store"
echo precious >"$D/var/lib/callwarden/store/db"
touch -d '2020-01-01 00:00:00' "$D/var/lib/callwarden/store/db"
store_listing() { (cd "$D/var/lib/callwarden" && find . -printf '%p %m %u %s %T@\n' | sort); }
store_listing >"$T/store.before"
dummy 2
if install_with DESTDIR="$D/" BIN="$T/bin/callwarden"; then
    ok "second install.sh (an upgrade; DESTDIR with a trailing slash)"
else
    fail "second install.sh: $(cat "$T/install.log")"
fi
check "upgrade keeps the changed configuration" \
    cmp -s "$T/config.changed" "$D/etc/callwarden/callwarden.toml"
check "upgrade keeps the configuration's mode" \
    has_mode "$D/etc/callwarden/callwarden.toml" 600
check "upgrade says it kept the configuration" grep -q '^kept .*callwarden.toml' "$T/install.log"
check "upgrade replaces the binary" cmp -s "$T/bin/callwarden" "$D/usr/bin/callwarden"
store_unchanged() { store_listing | diff "$T/store.before" - >/dev/null && grep -qx precious "$D/var/lib/callwarden/store/db"; }
check "upgrade leaves the store alone" store_unchanged

# systemd's own checks of what was installed.
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart's binary exists and is executable: /usr/bin/callwarden is not
    # on this machine, so a copy of the installed unit starts the installed (dummy) binary instead.
    # Every other line is the installed unit's, and any warning at all counts as a failure.
    mkdir -p "$T/verify"
    sed "s#^ExecStart=/usr/bin/callwarden #ExecStart=$D/usr/bin/callwarden #" \
        "$D/usr/lib/systemd/system/callwarden.service" >"$T/verify/callwarden.service"
    if grep -q "^ExecStart=$D/usr/bin/callwarden " "$T/verify/callwarden.service" &&
        systemd-analyze verify "$T/verify/callwarden.service" >"$T/verify.log" 2>&1 &&
        [ ! -s "$T/verify.log" ]; then
        ok "systemd-analyze verify accepts the installed unit, without a warning"
    else
        fail "systemd-analyze verify: $(cat "$T/verify.log")"
    fi
else
    skip "systemd-analyze verify: systemd-analyze is not installed"
fi

if [ "$(id -u)" -eq 0 ] && command -v systemd-sysusers >/dev/null 2>&1 &&
    command -v systemd-tmpfiles >/dev/null 2>&1; then
    # In a scratch root of their own: they create the user and the folders there.
    R="$T/sysroot"
    mkdir -p "$R/etc" "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d"
    cp "$D/usr/lib/sysusers.d/callwarden.conf" "$R/usr/lib/sysusers.d/"
    cp "$D/usr/lib/tmpfiles.d/callwarden.conf" "$R/usr/lib/tmpfiles.d/"
    if systemd-sysusers --root="$R" >"$T/sysusers.log" 2>&1 &&
        grep -q '^callwarden:x:[0-9]*:[0-9]*:.*:/var/lib/callwarden:' "$R/etc/passwd" &&
        grep -q '^callwarden:x:' "$R/etc/group"; then
        ok "systemd-sysusers creates the callwarden user and group from the installed entry"
    else
        fail "systemd-sysusers: $(cat "$T/sysusers.log")"
    fi
    uid="$(awk -F: '$1 == "callwarden" { print $3 }' "$R/etc/passwd")"
    if systemd-tmpfiles --root="$R" --create >"$T/tmpfiles.log" 2>&1 && [ ! -s "$T/tmpfiles.log" ] &&
        [ "$(stat -c '%a %u' "$R/var/lib/callwarden")" = "750 $uid" ] &&
        [ "$(stat -c '%a %u' "$R/run/callwarden")" = "750 $uid" ]; then
        ok "systemd-tmpfiles creates /var/lib/callwarden and /run/callwarden (750, callwarden)"
    else
        fail "systemd-tmpfiles: $(cat "$T/tmpfiles.log")"
    fi
else
    skip "systemd-sysusers/systemd-tmpfiles: needs root and both tools"
fi

if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck install.sh test-install.sh" shellcheck "$INSTALL" "$SRC/scripts/test-install.sh"
else
    skip "shellcheck: not installed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
