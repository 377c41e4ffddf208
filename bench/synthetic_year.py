#!/usr/bin/env python3
"""A year of hourly history, 90 days ahead, on synthetic series of known kinds: the check that
last year's course (src/model/yearly.rs) helps where there is a yearly cycle and costs
nothing where there is none. No public set has year-long series without a yearly cycle.

  python3 bench/synthetic_year.py --out bench/results/NEW [--against bench/results/OLD] \
      [--bin target/release/headroom] [--per-kind 20] [--seed 11]

Kinds: a yearly wave with growth, a yearly wave under heavy noise (both should gain); the
`fleet.py` shape (daily and weekly cycles, trend, some level shifts), a random walk, a slow
AR(1), a lasting step in the first 90 days, one-off spikes, a bump of weeks somewhere in the
year (none has a yearly cycle; each should be unchanged). Every series has daily and weekly
cycles. Writes OUT/synthetic_year.csv (series, kind, MASE against the weekly seasonal naive's
in-sample error, 80 % coverage, the probability of going above the history's maximum and
whether it did) and prints per kind the geometric-mean MASE, the coverage, the crossings and
the Brier score and, with --against, the geometric-mean MASE ratio new/old, how many series
got worse, and the Brier difference with a paired bootstrap interval.
Standard library only; fixed seed.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone

YEAR, H = 365 * 24, 90 * 24
N = YEAR + H


def series(kind: str, rnd: random.Random) -> list[float]:
    t = range(N)
    amp_d, ph_d, amp_w = rnd.uniform(0, 0.15), rnd.uniform(0, 6.3), rnd.uniform(0, 0.05)
    cycles = [amp_d * math.sin(2 * math.pi * (i % 24) / 24 + ph_d) + amp_w * math.sin(2 * math.pi * (i % 168) / 168)
              for i in t]
    noise = lambda sd: [rnd.gauss(0, sd) for _ in t]  # noqa: E731
    wave = lambda amp: [amp * math.sin(2 * math.pi * i / (364 * 24) + ph) for ph in [rnd.uniform(0, 6.3)] for i in t]  # noqa: E731
    if kind == "yearly_growth":
        g = rnd.uniform(0, 0.0005) / 24
        return [0.4 + w + g * i + c + e for i, (w, c, e) in enumerate(zip(wave(0.1), cycles, noise(0.02)))]
    if kind == "yearly_noisy":
        return [0.4 + w + c + e for w, c, e in zip(wave(0.08), cycles, noise(0.05))]
    if kind == "fleet":
        base, slope = rnd.uniform(0.1, 0.6), rnd.uniform(-0.0002, 0.002) / 24
        v = [base + slope * i + c + e for i, (c, e) in enumerate(zip(cycles, noise(rnd.uniform(0.005, 0.03))))]
        if rnd.random() < 0.2:
            k, d = rnd.randrange(N // 4, 3 * N // 4), rnd.uniform(-0.15, 0.15)
            v = [x + (d if i >= k else 0) for i, x in enumerate(v)]
        return [min(1.0, max(0.0, x)) for x in v]
    if kind == "random_walk":
        level, out = 0.5, []
        for c, e in zip(cycles, noise(0.01)):
            level += rnd.gauss(0, 0.004)
            out.append(level + c + e)
        return out
    if kind == "ar1":
        a, out = 0.0, []
        for c in cycles:
            a = 0.995 * a + rnd.gauss(0, 0.01)
            out.append(0.5 + a + c)
        return out
    if kind == "early_step":
        k, d = rnd.randrange(24, 90 * 24), rnd.choice([-1, 1]) * rnd.uniform(0.05, 0.2)
        return [0.4 + c + e + (d if i >= k else 0) for i, (c, e) in enumerate(zip(cycles, noise(0.02)))]
    if kind == "spikes":
        v = [0.3 + c + e for c, e in zip(cycles, noise(0.02))]
        for _ in range(20):
            k, w, up = rnd.randrange(0, N - 48), rnd.randrange(1, 48), rnd.uniform(0.1, 0.4)
            for i in range(k, k + w):
                v[i] += up
        return v
    if kind == "bump":
        v = [0.4 + c + e for c, e in zip(cycles, noise(0.02))]
        k, w, up = rnd.randrange(0, 300 * 24), rnd.randrange(7 * 24, 60 * 24), rnd.uniform(0.05, 0.2)
        return [x + (up if k <= i < k + w else 0) for i, x in enumerate(v)]
    raise ValueError(kind)


KINDS = ["yearly_growth", "yearly_noisy", "fleet", "random_walk", "ar1", "early_step", "spikes", "bump"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--against")
    ap.add_argument("--bin", default="target/release/headroom")
    ap.add_argument("--per-kind", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    stamps = [(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(YEAR)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            rnd = random.Random(f"{a.seed}/{kind}")
            for j in range(a.per_kind):
                v = series(kind, rnd)
                path = os.path.join(tmp, f"{kind}{j}.csv")
                with open(path, "w") as f:
                    f.write("timestamp,value\n")
                    f.writelines(f"{s},{x:.6f}\n" for s, x in zip(stamps, v))
                top = max(v[:YEAR])
                out = subprocess.run([a.bin, "forecast", "--input", path, "--horizon", f"{H * 3600}s", "--step", "3600s",
                                      "--level", "0.8", "--format", "json", "--threshold", repr(top)],
                                     capture_output=True, text=True, check=True)
                doc = json.loads(out.stdout)
                fc = doc["forecast"][:H]
                prob = doc["breaches"][0]["probability"]
                test = v[YEAR:]
                scale = sum(abs(v[i] - v[i - 168]) for i in range(168, YEAR)) / (YEAR - 168)
                mase = sum(abs(x - p["mean"]) for x, p in zip(test, fc)) / H / scale
                cov = sum(p["lower"] <= x <= p["upper"] for x, p in zip(test, fc)) / H
                crossed = int(any(x > top for x in test))
                rows.append({"series": f"{kind}{j}", "kind": kind, "mase": f"{mase:.6g}", "coverage": f"{cov:.4f}",
                             "breach_prob": f"{prob:.6g}", "crossed": crossed})
    fields = ["series", "kind", "mase", "coverage", "breach_prob", "crossed"]
    old = keep_rows(a.out, a.against, "synthetic_year.csv", fields, rows, "series")
    print("| kind | n | MASE | cov80 | crossed | Brier |"
          + (" MASE ratio new/old | worse | Brier new - old |" if old else ""))
    print("|---|---|---|---|---|---|" + ("---|---|---|" if old else ""))
    for kind in KINDS + ["all"]:
        mine = [r for r in rows if kind in (r["kind"], "all")]
        gm = math.exp(sum(math.log(float(r["mase"])) for r in mine) / len(mine))
        cov = sum(float(r["coverage"]) for r in mine) / len(mine)
        line = (f"| {kind} | {len(mine)} | {gm:.3f} | {cov:.2f} | {sum(int(r['crossed']) for r in mine)} |"
                f" {sum(map(brier, mine)) / len(mine):.4f} |")
        if old:
            logs = [math.log(float(r["mase"]) / float(old[r["series"]]["mase"])) for r in mine]
            diffs = [brier(r) - brier(old[r["series"]]) for r in mine]
            lo, hi = bootstrap(diffs, a.seed)
            line += (f" {math.exp(sum(logs) / len(logs)):.3f} | {sum(x > 0.001 for x in logs)} |"
                     f" {sum(diffs) / len(diffs):+.4f} ({lo:+.4f} to {hi:+.4f}) |")
        print(line)
    return 0


def keep_rows(out: str, against: str | None, name: str, fields: list[str], rows: list[dict], key: str) -> dict:
    """Writes `rows` to OUT/NAME and returns the earlier run's rows (AGAINST/NAME) by `key`,
    or {} without one."""
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if not against:
        return {}
    with open(os.path.join(against, name)) as f:
        return {r[key]: r for r in csv.DictReader(f)}


def brier(r: dict) -> float:
    """One row's Brier score: (breach probability - crossed)^2."""
    return (float(r["breach_prob"]) - int(r["crossed"])) ** 2


def bootstrap(diffs: list[float], seed: int, draws: int = 4000) -> tuple[float, float]:
    """95 % interval of the mean of paired differences, resampling series."""
    rnd = random.Random(seed)
    means = sorted(sum(rnd.choice(diffs) for _ in diffs) / len(diffs) for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


if __name__ == "__main__":
    raise SystemExit(main())
