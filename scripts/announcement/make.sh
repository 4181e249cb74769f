#!/usr/bin/env bash
# Dev only, never in CI: copies the recording-announcement fixtures of tests/it/evidence.rs into
# assets/announcement/ from Debian's package asterisk-core-sounds-en-wav. The copies are
# committed; run it again only to change them:
#   apt-get install asterisk-core-sounds-en-wav
#   bash scripts/announcement/make.sh
# (The tests put whole calls through GSM and Opus themselves, with sox and opus-tools.)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=/usr/share/asterisk/sounds/en_US_f_Allison
out=assets/announcement
mkdir -p "$out"
# The announcement (a real recording notice) and prompts of the same voice and length that are
# not it (the decoys).
for name in conf-now-recording conf-userswilljoin call-fwd-unconditional; do
    cp "$src/$name.wav" "$out/$name.wav"
done
