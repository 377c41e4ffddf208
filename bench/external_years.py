#!/usr/bin/env python3
"""Year-long series that are not electricity load: a check of last year's course
(src/model/yearly.rs) away from the public long sets, 43 of whose 45 windows are PJM load.

  python3 bench/external_years.py --data DIR --out bench/results/NEW [--against bench/results/OLD] \
      [--bin target/release/headroom]

DIR holds three files of https://github.com/jbrownlee/Datasets (checked at commit d20fcb6):
`pollution.csv` (Beijing, hourly 2010-2014: temperature, dew point, pressure, PM2.5) and
`daily-min-temperatures.csv`, `daily-max-temperatures.csv` (Melbourne, daily 1981-1990).
Windows: a year of history and 90 days ahead, at every 90-day step, where under 5 % of either
part is missing (127 windows). Writes OUT/external_years.csv (window, series, whether last
year's course was used, MASE against the weekly seasonal naive's in-sample error, 80 %
coverage, interval score in the same scale, the probability of going above the history's
maximum and whether it did) and prints per series the geometric-mean MASE and interval score,
the coverage and the Brier score and, with --against, the geometric-mean MASE and interval
score ratios new/old and the Brier difference, each with a paired bootstrap 95 % interval
over windows. Standard library only; fixed seed.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from synthetic_year import bootstrap, brier, keep_rows  # shared with the synthetic check (beside this file)

DAY = 86_400
LEVEL, ALPHA = 0.8, 0.2
SEED = 17


def load(data: str) -> dict[str, tuple[int, list[tuple[datetime, float | None]]]]:
    """Each series' step and (time, value or None) points."""
    series = {}
    with open(os.path.join(data, "pollution.csv")) as f:
        rows = list(csv.DictReader(f))
    for col, name in [("TEMP", "beijing_temperature"), ("DEWP", "beijing_dew_point"), ("PRES", "beijing_pressure"),
                      ("pm2.5", "beijing_pm25")]:
        series[name] = (3600, [(datetime(int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]),
                                         tzinfo=timezone.utc), None if r[col] in ("NA", "") else float(r[col]))
                               for r in rows])
    for file, name in [("daily-min-temperatures.csv", "melbourne_min"), ("daily-max-temperatures.csv", "melbourne_max")]:
        pts = []
        with open(os.path.join(data, file)) as f:
            for r in csv.reader(f):
                try:
                    pts.append((datetime.strptime(r[0], "%Y-%m-%d").replace(tzinfo=timezone.utc), float(r[1].strip("?"))))
                except (ValueError, IndexError):
                    continue  # the header
        series[name] = (DAY, pts)
    return series


def windows(series, tmp: str):
    """(window, series, step, path of the history file, history, test) for every usable window."""
    out = []
    for name, (step, pts) in series.items():
        year, ahead = 365 * DAY // step, 90 * DAY // step
        for i in range(year, len(pts) - ahead + 1, ahead):
            train, test = pts[i - year:i], pts[i:i + ahead]
            if sum(v is None for _, v in train) >= 0.05 * year or sum(v is None for _, v in test) >= 0.05 * ahead:
                continue
            path = os.path.join(tmp, f"{name}_{i}.csv")
            with open(path, "w") as f:
                f.write("timestamp,value\n")
                f.writelines(f"{t:%Y-%m-%dT%H:%M:%SZ},{'' if v is None else v}\n" for t, v in train)
            out.append((f"{name}_{i}", name, step, path, [v for _, v in train], [v for _, v in test]))
    return out


def score(binary: str, w) -> dict:
    window, name, step, path, train, test = w
    week = 7 * DAY // step
    seen = [v for v in train if v is not None]
    top = max(seen)
    diffs = [abs(train[t] - train[t - week]) for t in range(week, len(train))
             if train[t] is not None and train[t - week] is not None]
    scale = sum(diffs) / len(diffs)
    out = subprocess.run([binary, "forecast", "--input", path, "--horizon", f"{len(test) * step}s", "--step", f"{step}s",
                          "--level", str(LEVEL), "--format", "json", "--threshold", repr(top)],
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    pairs = [(x, p) for x, p in zip(test, doc["forecast"]) if x is not None]
    n = len(pairs)
    mase = sum(abs(x - p["mean"]) for x, p in pairs) / n / scale
    cov = sum(p["lower"] <= x <= p["upper"] for x, p in pairs) / n
    msis = sum(p["upper"] - p["lower"] + 2 / ALPHA * (max(0.0, p["lower"] - x) + max(0.0, x - p["upper"]))
               for x, p in pairs) / n / scale
    return {"window": window, "series": name, "last_year": int("last_year" in doc["model"]), "mase": f"{mase:.6g}",
            "coverage": f"{cov:.4f}", "msis": f"{msis:.6g}", "breach_prob": f"{doc['breaches'][0]['probability']:.6g}",
            "crossed": int(any(x is not None and x > top for x in test))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--against")
    ap.add_argument("--bin", default="target/release/headroom")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = windows(load(a.data), tmp)
        with ThreadPoolExecutor(a.jobs) as ex:
            rows = list(ex.map(lambda w: score(a.bin, w), ws))
    fields = ["window", "series", "last_year", "mase", "coverage", "msis", "breach_prob", "crossed"]
    old = keep_rows(a.out, a.against, "external_years.csv", fields, rows, "window")
    gm = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))  # noqa: E731
    print("| series | windows | last year | crossed | MASE | MSIS | cov80 | Brier |"
          + (" MASE new/old | MSIS new/old | Brier new - old | cov80 old |" if old else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|---|---|---|" if old else ""))
    for name in sorted({r["series"] for r in rows}) + ["all"]:
        mine = [r for r in rows if name in (r["series"], "all")]
        line = (f"| {name} | {len(mine)} | {sum(int(r['last_year']) for r in mine)} | {sum(r['crossed'] for r in mine)} |"
                f" {gm([float(r['mase']) for r in mine]):.3f} | {gm([float(r['msis']) for r in mine]):.3f} |"
                f" {sum(float(r['coverage']) for r in mine) / len(mine):.3f} | {sum(map(brier, mine)) / len(mine):.4f} |")
        if old:
            cells = []
            for key in ("mase", "msis"):
                logs = [math.log(float(r[key]) / float(old[r["window"]][key])) for r in mine]
                lo, hi = bootstrap(logs, SEED)
                cells.append(f" {math.exp(sum(logs) / len(logs)):.3f} ({math.exp(lo):.3f}-{math.exp(hi):.3f}) |")
            diffs = [brier(r) - brier(old[r["window"]]) for r in mine]
            lo, hi = bootstrap(diffs, SEED)
            cells.append(f" {sum(diffs) / len(diffs):+.4f} ({lo:+.4f} to {hi:+.4f}) |")
            cells.append(f" {sum(float(old[r['window']]['coverage']) for r in mine) / len(mine):.3f} |")
            line += "".join(cells)
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
