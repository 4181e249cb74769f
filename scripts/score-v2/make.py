#!/usr/bin/env python3
"""Dev-only harness for the score's weights (issue 22): degraded calls, their PESQ-NB, and
callwarden's analysis of them. Never run in CI (it needs `pip install pesq numpy scipy`).

    python3 scripts/score-v2/make.py OUT [--callwarden target/release/callwarden]

writes OUT/{dev,test}/<condition>__<prompt>.wav (8 kHz, 16-bit), OUT/pesq.csv (PESQ-NB of each
against its clean prompt) and OUT/analysis.jsonl (`callwarden analyze --json`). The dev half is
assets/speech, the test half assets/speech-test (the split written in the repo). Conditions:
white, pink, brown, babble and 50 Hz hum noise at 0-30 dB SNR (active speech level over noise
power), low-pass filtering (800-2500 Hz), coarse quantisation (4-6 bits: codec-like damage),
clipping (+6 to +20 dB of gain), lost 20 ms packets zeroed (1-8 %), real codecs (GSM full
rate, IMA ADPCM, LPC-10 through `sox`; Opus at 6-16 kbit/s through `opusenc`/`opusdec`, also
over white noise at 20 dB; each analysed with its codec declared, `--codec`), and the clean
prompt. Every random choice has a fixed seed."""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from pesq import pesq
from scipy import signal

ROOT = Path(__file__).resolve().parents[2]
FS = 8000


def read(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        if w.getnchannels() > 1:
            x = x.reshape(-1, w.getnchannels()).mean(axis=1)
        rate = w.getframerate()
    if rate != FS:
        x = signal.resample_poly(x, FS, rate)
    return x / 32768.0


def write(path, x):
    y = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes(y.tobytes())


def active_power(x):
    """Mean power over the 10 ms frames within 15.9 dB of the loudest (P.56-like)."""
    frames = x[: len(x) // 80 * 80].reshape(-1, 80)
    p = (frames**2).mean(axis=1)
    top = np.percentile(p, 99)
    return p[p > top / 10 ** (15.9 / 10)].mean()


def noise(kind, n, rng, voices):
    if kind == "white":
        return rng.standard_normal(n)
    if kind in ("pink", "brown"):
        w = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(w)) + 1.0
        w /= f ** (0.5 if kind == "pink" else 1.0)
        return np.fft.irfft(w, n)
    if kind == "hum":
        t = np.arange(n) / FS
        return sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 12))
    if kind == "babble":
        out = np.zeros(n)
        for v in rng.choice(len(voices), 6, replace=False):
            s = voices[v]
            start = rng.integers(0, len(s))
            out += np.resize(np.roll(s, -start), n)
        return out
    raise ValueError(kind)


def conditions():
    for kind in ("white", "pink", "brown", "babble", "hum"):
        for snr in (0, 5, 10, 20, 30):
            yield f"{kind}-{snr}dB", ("noise", kind, snr)
    for hz in (800, 1200, 1800, 2500):
        yield f"lowpass-{hz}", ("lowpass", hz)
    for bits in (4, 5, 6):
        yield f"quant-{bits}bit", ("quant", bits)
    for db in (6, 12, 20):
        yield f"clip-{db}dB", ("clip", db)
    for pct in (1, 3, 8):
        yield f"loss-{pct}pct", ("loss", pct)
    for name in ("gsm", "vox", "lpc10", "opus6", "opus8", "opus12", "opus16"):
        yield f"codec-{name}", ("codec", name)
    yield "codec-opus8-white-20dB", ("codec", "opus8", ("noise", "white", 20))
    yield "clean", ("clean",)


def degrade(x, how, rng, voices):
    x = x / np.sqrt(active_power(x)) * 10 ** (-26 / 20)
    if how[0] == "noise":
        _, kind, snr = how
        n = noise(kind, len(x), rng, voices)
        n *= np.sqrt(active_power(x) / (n**2).mean() / 10 ** (snr / 10))
        return x + n
    if how[0] == "lowpass":
        sos = signal.butter(8, how[1], fs=FS, output="sos")
        return signal.sosfilt(sos, x)
    if how[0] == "quant":
        step = 2.0 / 2 ** how[1] * 0.25
        return np.round(x / step) * step
    if how[0] == "clip":
        y = x * 10 ** (how[1] / 20)
        return np.clip(y, -0.5, 0.5)
    if how[0] == "codec":
        y = degrade(x, how[2], rng, voices) if len(how) > 2 else x
        return codec(y, how[1])
    if how[0] == "loss":
        y = x.copy()
        frames = len(y) // 160
        for f in rng.choice(frames, max(1, frames * how[1] // 100), replace=False):
            y[f * 160 : (f + 1) * 160] = 0
        return y
    return x


def codec(x, name):
    """`x` through an encoder and its decoder, cut or padded to its length (the decoders here
    keep the timing: Opus drops its pre-skip; PESQ aligns what is left)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src, out = tmp / "in.wav", tmp / "out.wav"
        write(src, x)
        if name.startswith("opus"):
            enc = tmp / "x.opus"
            subprocess.run(["opusenc", "--quiet", "--bitrate", name[4:], src, enc], check=True)
            subprocess.run(["opusdec", "--quiet", "--rate", str(FS), enc, out], check=True)
        else:
            kind = ["-t", name] + (["-r", str(FS), "-c", "1"] if name == "vox" else [])
            enc = tmp / f"x.{name}"
            subprocess.run(["sox", src] + kind + [enc], check=True)
            subprocess.run(["sox"] + kind + [enc, "-b", "16", out], check=True)
        y = read(out)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--callwarden", default=str(ROOT / "target/release/callwarden"))
    a = ap.parse_args()
    rows = []
    halves = {"dev": ROOT / "assets/speech", "test": ROOT / "assets/speech-test"}
    for half, folder in halves.items():
        prompts = sorted(folder.glob("*.wav"))
        voices = [read(p) for p in prompts]
        (a.out / half).mkdir(parents=True, exist_ok=True)
        for pi, p in enumerate(prompts):
            # Silence around the prompt, as a call has.
            clean = np.concatenate([np.zeros(FS // 2), voices[pi], np.zeros(FS // 2)])
            for ci, (name, how) in enumerate(conditions()):
                rng = np.random.default_rng(1000 * pi + ci)
                others = [v for i, v in enumerate(voices) if i != pi]
                y = degrade(clean, how, rng, others)
                ref = degrade(clean, ("clean",), rng, others)
                path = a.out / half / f"{name}__{p.stem}.wav"
                write(path, y)
                try:
                    mos = pesq(FS, ref, y, "nb")
                except Exception as e:  # PESQ refuses some signals (no utterance found)
                    print(f"{path.name}: pesq: {e}", file=sys.stderr)
                    mos = float("nan")
                rows.append((half, name, p.stem, str(path), mos))
    with open(a.out / "pesq.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["half", "condition", "prompt", "path", "pesq"])
        w.writerows(rows)
    # Each call is analysed as the daemon would with the codec it crossed declared (a sidecar's
    # `codec`): the name the PBX would give (G.113 rates GSM; Opus, LPC-10 and the Dialogic
    # ADPCM of VOX files have no planning value and cost nothing).
    declared = {}
    for half, name, _, path, _ in rows:
        codec = name.split("-")[1] if name.startswith("codec-") else None
        codec = "opus" if codec and codec.startswith("opus") else codec
        declared.setdefault(codec, []).append(path)
    with open(a.out / "analysis.jsonl", "w") as f:
        for codec, paths in declared.items():
            extra = ["--codec", codec] if codec else []
            subprocess.run(
                [a.callwarden, "analyze", "--json", "-j", "1", *extra, *paths],
                stdout=f,
                check=False,
            )
    print(f"{len(rows)} files; {a.out / 'pesq.csv'}, {a.out / 'analysis.jsonl'}")


if __name__ == "__main__":
    main()
