#!/usr/bin/env python3
"""Fits the score's term weights to PESQ-NB (issue 22), on the dev half only, and reports the
rank correlation of the v1 and the refitted score with PESQ on both halves.

    python3 scripts/score-v2/fit.py OUT     (OUT as written by make.py)

Model: each PESQ MOS is mapped to the E-model's rating R (the inverse of G.107's R-to-MOS curve
that the score already uses), and 100 - R is fitted as a non-negative sum of the current terms'
points (the terms PESQ can hear: noise, bandwidth, clipping, dropouts), each scaled by a factor,
and of a graded hum term (points per dB that `noise.hum_snr_db`, the speech over the hum, falls
short of a level searched on dev); the
terms PESQ cannot see (level, which PESQ normalises; dead air, one side, a lost leg) keep their
weight. A factor of 1 keeps a term as it is. The "v1" column is the score the binary gives."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, nnls
from scipy.stats import spearmanr

TERMS = ["noise", "bandwidth", "clipping", "dropouts", "hum"]


def r_of_mos(mos):
    mos = min(max(mos, 1.0001), 4.4999)
    f = lambda r: 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r) - mos
    return brentq(f, 0, 100)


def main():
    out = Path(sys.argv[1])
    pesq = {}
    with open(out / "pesq.csv") as f:
        for row in csv.DictReader(f):
            pesq[row["path"]] = (row["half"], row["condition"], float(row["pesq"]))
    data = []
    for line in open(out / "analysis.jsonl"):
        d = json.loads(line)
        if d["file"] not in pesq or "quality" not in d:
            continue
        half, cond, mos = pesq[d["file"]]
        if mos != mos:
            continue
        pts = {p["term"]: p["points"] for p in d["quality"].get("penalties", [])}
        other = sum(v for k, v in pts.items() if k not in TERMS)
        # The speech over the hum (dB), for a graded hum term (none: no hum found).
        hum = d["noise"].get("hum_snr_db")
        pts["hum"] = float("nan") if hum is None else hum
        no_speech = any(fl["code"] == "no_speech" for fl in d["quality"]["flags"])
        data.append((half, cond, mos, d["quality"]["score"], [pts.get(t, 0.0) for t in TERMS], other, no_speech))
    dev = [x for x in data if x[0] == "dev" and not x[6]]
    H = TERMS.index("hum")

    def hum_points(v, clean_db):
        return 0.0 if v != v else max(0.0, clean_db - v)

    def design(rows, clean_db):
        X = np.array([x[4] for x in rows], dtype=float)
        X[:, H] = [hum_points(v, clean_db) for v in X[:, H]]
        return X

    y = np.array([100 - r_of_mos(x[2]) - x[5] for x in dev])
    # The hum term is graded: points per dB the speech stands less than `clean_db` over it.
    best = None
    for clean_db in np.arange(10.0, 60.5, 1.0):
        X = design(dev, clean_db)
        factors, residual = nnls(X, y)
        if best is None or residual < best[2]:
            best = (clean_db, factors, residual)
    clean_db, factors, _ = best
    X = design(dev, clean_db)
    print("factors on dev (v2 weight = factor x current weight; hum: points per dB of speech "
          f"over hum under {clean_db:.0f} dB):")
    for t, f in zip(TERMS, factors):
        used = (X[:, TERMS.index(t)] > 0).sum()
        print(f"  {t:10s} {f:5.2f}  ({used} dev files where it costs)")

    def v2(x):
        if x[6]:
            return 0.0
        v = np.array(x[4], dtype=float)
        v[H] = hum_points(v[H], clean_db)
        return max(0.0, min(100.0, 100 - float(np.dot(factors, v)) - x[5]))

    for half in ("dev", "test"):
        rows = [x for x in data if x[0] == half]
        m = np.array([x[2] for x in rows])
        r1 = spearmanr([x[3] for x in rows], m).statistic
        r2 = spearmanr([v2(x) for x in rows], m).statistic
        print(f"{half}: n={len(rows)}  rho(v1, PESQ)={r1:.3f}  rho(refit, PESQ)={r2:.3f}")
        by = {}
        for x in rows:
            by.setdefault(x[1].rsplit("-", 1)[0] if x[1] != "clean" else "clean", []).append(x)
        for k, xs in sorted(by.items()):
            print(
                f"    {k:8s} PESQ {np.mean([x[2] for x in xs]):.2f}  v1 {np.mean([x[3] for x in xs]):5.1f}"
                f"  refit {np.mean([v2(x) for x in xs]):5.1f}"
            )


if __name__ == "__main__":
    main()
