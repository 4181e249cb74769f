#!/usr/bin/env bash
# Builds the .deb (scripts/build-deb.sh) and checks it: its control fields and contents
# (dpkg-deb -I/-c), a stripped binary, a manual page for every command, the completions, the
# configuration's mode, and lintian with no error. With CI=true (or CALLWARDEN_TEST_DEB_INSTALL=1),
# as root, it also installs the package on this machine, where systemd is not PID 1, checks the
# user, folders and configuration it created, and purges it again.
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
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
check() { # check DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

bash scripts/build-deb.sh | tee "$T/build.log"
DEB="$(tail -n 1 "$T/build.log")"
[ -f "$DEB" ] || { echo "test-deb.sh: no package built (last line: $DEB)" >&2; exit 1; }

dpkg-deb -I "$DEB" >"$T/info"
dpkg-deb -c "$DEB" >"$T/contents"
field() { dpkg-deb -f "$DEB" "$1"; }

maintainer_has_address() { field Maintainer | grep -Eq '^[^<]+ <[^@ ]+@[^> ]+>$'; }
depends_on_sysusers() { field Depends | grep -q 'systemd | systemd-standalone-sysusers'; }
depends_on_tmpfiles() { field Depends | grep -q 'systemd | systemd-standalone-tmpfiles'; }
config_is_conffile() { dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/callwarden/callwarden.toml; }
check "Maintainer has a name and an address" maintainer_has_address
check "Depends names systemd-sysusers (postinst runs it)" depends_on_sysusers
check "Depends names systemd-tmpfiles (postinst runs it)" depends_on_tmpfiles
check "the configuration is a conffile" config_is_conffile

has_entry() { # has_entry MODE PATH
    awk -v m="$1" -v p="./$2" '$1 == m && $6 == p { found = 1 } END { exit !found }' "$T/contents"
}
check "binary /usr/bin/callwarden, 755" has_entry -rwxr-xr-x usr/bin/callwarden
check "configuration 640" has_entry -rw-r----- etc/callwarden/callwarden.toml
check "unit, sysusers, tmpfiles" eval 'has_entry -rw-r--r-- usr/lib/systemd/system/callwarden.service &&
    has_entry -rw-r--r-- usr/lib/sysusers.d/callwarden.conf &&
    has_entry -rw-r--r-- usr/lib/tmpfiles.d/callwarden.conf'
check "copyright and changelog" eval 'has_entry -rw-r--r-- usr/share/doc/callwarden/copyright &&
    has_entry -rw-r--r-- usr/share/doc/callwarden/changelog.Debian.gz'
check "bash, zsh and fish completions" eval 'has_entry -rw-r--r-- usr/share/bash-completion/completions/callwarden &&
    has_entry -rw-r--r-- usr/share/zsh/vendor-completions/_callwarden &&
    has_entry -rw-r--r-- usr/share/fish/vendor_completions.d/callwarden.fish'
every_command_has_a_page() {
    local page missing=0
    target/release/callwarden man --out-dir "$T/man"
    for page in "$T"/man/*.1; do
        has_entry -rw-r--r-- "usr/share/man/man1/$(basename "$page").gz" ||
            { echo "  no page usr/share/man/man1/$(basename "$page").gz"; missing=1; }
    done
    [ "$missing" -eq 0 ] && [ "$(find "$T/man" -name '*.1' | wc -l)" -gt 20 ]
}
check "a manual page for every command (callwarden man --out-dir)" every_command_has_a_page

dpkg-deb -x "$DEB" "$T/root"
binary_is_stripped() {
    local size
    size="$(stat -c %s "$T/root/usr/bin/callwarden")"
    echo "  /usr/bin/callwarden: $((size / 1024 / 1024)) MB"
    [ "$size" -lt $((30 * 1024 * 1024)) ] && ! readelf -S "$T/root/usr/bin/callwarden" | grep -q '\.debug_'
}
check "the binary carries no debug info (and is under 30 MB)" binary_is_stripped
page_renders() { zcat "$T/root/usr/share/man/man1/callwarden-ingest.1.gz" | grep -qF -- '\-\-store'; }
check "callwarden-ingest(1) documents its options" page_renders

if command -v lintian >/dev/null 2>&1; then
    lintian --allow-root "$DEB" >"$T/lintian" 2>&1 || true
    sed 's/^/  /' "$T/lintian"
    no_lintian_error() { ! grep -q '^E: ' "$T/lintian"; }
    check "lintian: no error" no_lintian_error
elif [ "${CI:-}" = true ]; then
    fail "lintian is not installed (.ci/run installs it)"
else
    echo "skip lintian: not installed (apt-get install lintian)"
fi

if [ "$(id -u)" -eq 0 ] && { [ "${CI:-}" = true ] || [ "${CALLWARDEN_TEST_DEB_INSTALL:-}" = 1 ]; }; then
    if dpkg -s callwarden >/dev/null 2>&1; then
        fail "callwarden is already installed here: not touching it"
    elif dpkg -i "$DEB" >"$T/dpkg.log" 2>&1; then
        ok "dpkg -i (systemd is $( [ -d /run/systemd/system ] && echo running || echo 'not PID 1'))"
        check "the callwarden user and group exist" eval 'getent passwd callwarden >/dev/null && getent group callwarden-admin >/dev/null'
        owned() { [ "$(stat -c "%a %U:%G" "$1")" = "$2" ]; }
        check "/var/lib/callwarden (750 callwarden)" owned /var/lib/callwarden "750 callwarden:callwarden"
        check "/run/callwarden (750 callwarden)" owned /run/callwarden "750 callwarden:callwarden"
        check "the configuration: 640 root:callwarden" owned /etc/callwarden/callwarden.toml "640 root:callwarden"
        check "the installed binary runs" eval '/usr/bin/callwarden --version | grep -q "^callwarden "'
        if dpkg --purge callwarden >"$T/purge.log" 2>&1; then
            ok "dpkg --purge"
        else
            fail "dpkg --purge: $(cat "$T/purge.log")"
        fi
    else
        fail "dpkg -i: $(cat "$T/dpkg.log")"
    fi
else
    echo "skip installing the package here: needs root and CI=true or CALLWARDEN_TEST_DEB_INSTALL=1"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
