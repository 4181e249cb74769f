#!/usr/bin/env bash
# Builds the Debian package: the release binary, then the manual pages and shell completions
# generated from its command line (into target/assets), then `cargo deb --no-build`.
# Needs cargo-deb (`cargo install cargo-deb --locked`). Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 ||
    { echo "build-deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }

cargo build --release --locked
bin=target/release/callwarden
rm -rf target/assets
mkdir -p target/assets/man target/assets/completions
"$bin" man --out-dir target/assets/man
"$bin" completions bash > target/assets/completions/callwarden
"$bin" completions zsh > target/assets/completions/_callwarden
"$bin" completions fish > target/assets/completions/callwarden.fish
cargo deb --no-build --locked 2>&1 | tail -n 1
