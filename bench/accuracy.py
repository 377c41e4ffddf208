#!/usr/bin/env python3
"""Scores a headroom build on the four public sets as one benchmark.

  python3 bench/accuracy.py --out bench/results/NEW [--against bench/results/OLD] [--bin target/release/headroom]

Runs ../shared/bench/score.py on bench, bench-vm, bench-long and bench-long2 (breach
probabilities for max(train) and, on the long sets, the p99 threshold), writes each set's
per-series CSV and summary under --out, and prints per set and pooled over all series:
relMASE (geometric mean of MASE / MASE(SeasonalNaive)) for headroom and every peer, mean 80 %
coverage, MSISgm and the Brier skill of the breach probability. With --reference, also scores
the seasonal-naive Gaussian (dummy_cli.py) whose Brier skill is the target's bar.

With --against (an earlier --out folder), a paired bootstrap over series, per set and pooled:
the geometric-mean MASE and interval-score (MSIS) ratios new/old and the Brier difference of
the breach odds new - old (max(train); p99 on the long sets), each with its 95 % interval, and
the coverage before and after. A change is told from noise when the interval excludes 1 (a
ratio) or 0 (a difference). Standard library only; fixed seed.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
SETS = [
    # (name, data dir, peers file, long)
    ("bench", "bench", "peers_public.csv", False),
    ("bench-vm", "bench-vm", "peers_vm_public.csv", False),
    ("bench-long", "bench-long", "peers_long_public.csv", True),
    ("bench-long2", "bench-long2", "peers_long2_public.csv", True),
]
BASELINE = "SeasonalNaive"
LABEL = "headroom"
REFERENCE = "SNGaussian"
BOOT = 4000


def score(binary: str, out: str, jobs: int, reference: bool) -> None:
    os.makedirs(out, exist_ok=True)
    for name, data, peers, long in SETS:
        d = os.path.join(SHARED, "data", data)
        thr = "--threshold {threshold}" + (" --threshold {soft_threshold}" if long else "")
        base = "forecast --input {train_csv} --horizon {horizon_duration} --step {step_seconds}s --level 0.8 --format json"
        runs = [(LABEL, f"{binary} {base} {thr}")]
        if reference:
            runs.append((REFERENCE, f"python3 {SHARED}/bench/dummy_cli.py {base} {thr}"))
        for label, cmd in runs:
            csv_out = os.path.join(out, f"{name}.csv" if label == LABEL else f"{name}.{label}.csv")
            args = [sys.executable, os.path.join(SHARED, "bench", "score.py"), d, "--cmd", cmd,
                    "--out", csv_out, "--label", label, "--jobs", str(jobs)]
            if long:
                args += ["--soft-threshold", "--timeout", "120"]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        md = os.path.join(out, f"{name}.md")
        args = [sys.executable, os.path.join(SHARED, "bench", "summarize.py"), os.path.join(d, peers),
                os.path.join(out, f"{name}.csv"), "--out", md]
        if long:
            args.append("--soft-threshold")
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load(folder: str, reference: bool) -> dict:
    """set -> model -> series -> row."""
    out = {}
    for name, data, peers, _ in SETS:
        by = {}
        files = [os.path.join(SHARED, "data", data, peers), os.path.join(folder, f"{name}.csv")]
        ref = os.path.join(folder, f"{name}.{REFERENCE}.csv")
        if reference and os.path.exists(ref):
            files.append(ref)
        for p in files:
            if not os.path.exists(p):
                continue
            for r in rows(p):
                by.setdefault(r["model"], {})[r["series"]] = r
        out[name] = by
    return out


def gmean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def rel(by: dict, model: str, series: list[str], key: str = "mase"):
    """Per series: model's metric / baseline's, for the series both have."""
    out = []
    for s in series:
        m, b = by.get(model, {}).get(s), by.get(BASELINE, {}).get(s)
        if m and b and num(m.get(key)) and num(b.get(key)):
            out.append(num(m[key]) / num(b[key]))
    return out


def bss(rs: list[dict], key: str):
    ps = [(num(r.get(key)), r) for r in rs]
    ps = [(b, r) for b, r in ps if b is not None]
    if not ps:
        return None, 0
    brier = sum(b for b, _ in ps) / len(ps)
    actual_key = "breach_actual_p99" if key.endswith("p99") else "breach_actual"
    # breach_actual holds the step of the actual crossing, empty without one.
    base = sum(1 for _, r in ps if (r.get(actual_key) or "") != "") / len(ps)
    if base in (0, 1):
        return None, len(ps)
    return 1 - brier / (base * (1 - base)), len(ps)


def fmt(x, d=2):
    return "–" if x is None else f"{x:.{d}f}"


def report(folder: str, reference: bool) -> None:
    data = load(folder, reference)
    models = [LABEL, "AutoTheta", "MSTL", "AutoARIMA", "AutoETS", "Prophet", "LinearOLS"]
    print(f"## {folder}\n")
    head = "| set | n | " + " | ".join(models) + " | cov80 | MSISgm | best peer MSISgm | BSS max | BSS p99 |"
    if reference:
        head += " SN-Gauss BSS max | SN-Gauss BSS p99 |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    pooled = {m: [] for m in models}
    for name, _, _, long in SETS:
        by = data[name]
        series = sorted(by.get(LABEL, {}))
        cells = []
        for m in models:
            r = rel(by, m, series)
            pooled[m].extend(r)
            cells.append(fmt(gmean(r)) if len(r) == len(series) and series else "–")
        mine = [by[LABEL][s] for s in series]
        cov = [num(r["coverage"]) for r in mine if num(r.get("coverage")) is not None]
        msis = gmean(rel(by, LABEL, series, "msis"))
        peer_msis = [gmean(rel(by, m, series, "msis")) for m in models[1:] if len(rel(by, m, series, "msis")) == len(series)]
        best = min((x for x in peer_msis if x is not None), default=None)
        b_max, _ = bss(mine, "brier")
        b_p99, _ = bss(mine, "brier_p99") if long else (None, 0)
        line = (f"| {name} | {len(series)} | " + " | ".join(cells)
                + f" | {fmt(sum(cov) / len(cov) if cov else None)} | {fmt(msis)} | {fmt(best)} | {fmt(b_max)} | {fmt(b_p99)} |")
        if reference:
            ref = [by.get(REFERENCE, {}).get(s) for s in series]
            ref = [r for r in ref if r]
            line += f" {fmt(bss(ref, 'brier')[0])} | {fmt(bss(ref, 'brier_p99')[0] if long else None)} |"
        print(line)
    n = len(pooled[LABEL])
    cells = [fmt(gmean(pooled[m])) if len(pooled[m]) == n else f"({fmt(gmean(pooled[m]))}, n={len(pooled[m])})" for m in models]
    print(f"| **pooled** | {n} | " + " | ".join(cells) + " | | | | | |")
    # VM groups.
    by = data["bench-vm"]
    for group in ("cpu", "mem"):
        series = sorted(s for s in by.get(LABEL, {}) if s.startswith(group + "_"))
        cells = [fmt(gmean(rel(by, m, series))) for m in models]
        print(f"| bench-vm {group} | {len(series)} | " + " | ".join(cells) + " | | | | | |")
    print()


def compare(new: str, old: str) -> None:
    """Per set and pooled, paired over the series both folders hold: the geometric-mean MASE
    and MSIS ratios new/old and the Brier difference new - old (max(train); p99 on the long
    sets), each with a bootstrap 95 % interval, and the mean coverage old -> new."""
    a, b = load(new, False), load(old, False)
    rng = random.Random(20261201)
    print(f"## {new} against {old}: paired bootstrap 95 % over series\n")
    print("MASE and MSIS: geometric-mean ratio new/old (below 1 is better); Brier: mean difference "
          "new - old (below 0 is better). A change is told from noise when the interval excludes "
          "1 (ratios) or 0 (Brier).\n")
    print("| set | n | MASE ratio | better / worse | MSIS ratio | Brier max | Brier p99 | cov80 old -> new |")
    print("|---|---|---|---|---|---|---|---|")
    pooled: dict[str, list[float]] = {"mase": [], "msis": [], "brier": []}
    for name, _, _, long in SETS:
        na, nb = a[name].get(LABEL, {}), b[name].get(LABEL, {})
        both = sorted(set(na) & set(nb))
        logs = {key: log_ratios(na, nb, both, key) for key in ("mase", "msis")}
        briers = {sfx: brier_diffs(na, nb, both, sfx) for sfx in ("", "_p99")}
        cov = [(num(nb[s].get("coverage")), num(na[s].get("coverage"))) for s in both]
        cov = [(x, y) for x, y in cov if x is not None and y is not None]
        old_cov = fmt(sum(x for x, _ in cov) / len(cov), 3) if cov else "–"
        new_cov = fmt(sum(y for _, y in cov) / len(cov), 3) if cov else "–"
        for key in ("mase", "msis"):
            pooled[key].extend(logs[key])
        pooled["brier"].extend(briers[""])
        print(f"| {name} | {len(logs['mase'])} | {interval(logs['mase'], rng, True)} | {better_worse(logs['mase'])} "
              f"| {interval(logs['msis'], rng, True)} | {interval(briers[''], rng, False)} "
              f"| {interval(briers['_p99'], rng, False) if long else '–'} | {old_cov} -> {new_cov} |")
    print(f"| **pooled** | {len(pooled['mase'])} | {interval(pooled['mase'], rng, True)} | {better_worse(pooled['mase'])} "
          f"| {interval(pooled['msis'], rng, True)} | {interval(pooled['brier'], rng, False)} | | |")
    print()


def log_ratios(na: dict, nb: dict, series: list[str], key: str) -> list[float]:
    out = []
    for s in series:
        x, y = num(na[s].get(key)), num(nb[s].get(key))
        if x and y and x > 0 and y > 0:
            out.append(math.log(x / y))
    return out


def brier_diffs(na: dict, nb: dict, series: list[str], sfx: str) -> list[float]:
    """Per series (p_new - y)^2 - (p_old - y)^2, y = 1 where the test window crossed."""
    out = []
    for s in series:
        x, y = num(na[s].get("breach_prob" + sfx)), num(nb[s].get("breach_prob" + sfx))
        if x is not None and y is not None:
            hit = 1.0 if (na[s].get("breach_actual" + sfx) or "") != "" else 0.0
            out.append((x - hit) ** 2 - (y - hit) ** 2)
    return out


def interval(xs: list[float], rng: random.Random, ratio: bool) -> str:
    """The mean and its bootstrap 95 % interval; as a ratio, exp of the mean log."""
    if not xs:
        return "–"
    mean = sum(xs) / len(xs)
    boots = sorted(sum(rng.choice(xs) for _ in xs) / len(xs) for _ in range(BOOT))
    lo, hi = boots[int(0.025 * BOOT)], boots[int(0.975 * BOOT) - 1]
    if ratio:
        return f"{math.exp(mean):.3f} ({math.exp(lo):.3f}-{math.exp(hi):.3f})"
    return f"{mean:+.4f} ({lo:+.4f} to {hi:+.4f})"


def better_worse(logs: list[float]) -> str:
    return f"{sum(1 for x in logs if x < -1e-9)} / {sum(1 for x in logs if x > 1e-9)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for this build's CSVs and summaries")
    ap.add_argument("--against", help="an earlier --out folder to compare with")
    ap.add_argument("--bin", default="target/release/headroom")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reference", action="store_true", help="also score the seasonal-naive Gaussian")
    ap.add_argument("--report-only", action="store_true", help="do not run, summarise --out as it is")
    args = ap.parse_args()
    if not args.report_only:
        score(args.bin, args.out, args.jobs, args.reference)
    report(args.out, args.reference)
    if args.against:
        compare(args.out, args.against)


if __name__ == "__main__":
    main()
