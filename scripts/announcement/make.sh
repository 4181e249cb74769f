#!/usr/bin/env bash
# Dev only, never in CI: builds assets/announcement/ (the recording-announcement fixtures of
# tests/it/evidence.rs) from Debian's packages asterisk-core-sounds-en-wav, sox with
# libsox-fmt-all (GSM 06.10) and opus-tools (Opus). The outputs are committed; run it again only
# to change them:
#   apt-get install asterisk-core-sounds-en-wav sox libsox-fmt-all opus-tools
#   bash scripts/announcement/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
src=/usr/share/asterisk/sounds/en_US_f_Allison
out=assets/announcement
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
# The announcement (a real recording notice) and prompts of the same voice and length that are
# not it (the decoys).
for name in conf-now-recording conf-userswilljoin call-fwd-unconditional; do
    cp "$src/$name.wav" "$out/$name.wav"
done
# What a phone path does to the announcements: GSM 06.10 (13 kbit/s) and Opus at 12 kbit/s,
# decoded back to 8 kHz 16-bit PCM.
for name in conf-now-recording; do
    sox "$out/$name.wav" -t gsm "$tmp/$name.gsm"
    sox -t gsm -r 8000 -c 1 "$tmp/$name.gsm" -b 16 -e signed-integer "$out/$name.gsm.wav"
    opusenc --quiet --bitrate 12 "$out/$name.wav" "$tmp/$name.opus"
    opusdec --quiet --rate 8000 "$tmp/$name.opus" "$tmp/$name.opus.wav"
    sox "$tmp/$name.opus.wav" -b 16 -e signed-integer -c 1 "$out/$name.opus.wav"
done
soxi "$out"/*.wav | grep -E "Input File|Duration|Sample Rate|Precision" || true
