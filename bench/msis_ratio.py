#!/usr/bin/env python3
"""Paired bootstrap of the log MSIS ratio (interval score) of two accuracy.py outputs:
`python3 bench/msis_ratio.py bench/results/NEW bench/results/OLD`. For changes that move only
the bands, where the MASE ratio of accuracy.py stays 1."""
import csv, math, random, sys
new, old = sys.argv[1], sys.argv[2]
def load(d, s):
    out = {}
    for r in csv.DictReader(open(f"{d}/{s}.csv")):
        if r['model'] == 'headroom' and r['msis'] not in ('', 'nan'):
            out[r['series']] = (float(r['msis']), float(r['coverage']) if r['coverage'] else float('nan'))
    return out
allr = []
for s in ['bench', 'bench-vm', 'bench-long', 'bench-long2']:
    a, b = load(new, s), load(old, s)
    keys = [k for k in a if k in b and a[k][0] > 0 and b[k][0] > 0]
    r = [math.log(a[k][0] / b[k][0]) for k in keys]
    allr += r
    random.seed(1)
    bs = sorted(sum(random.choice(r) for _ in r) / len(r) for _ in range(4000))
    print(f"{s}: MSIS ratio {math.exp(sum(r)/len(r)):.3f} ({math.exp(bs[100]):.3f}-{math.exp(bs[3900]):.3f}) n={len(r)}")
r = allr; random.seed(1)
bs = sorted(sum(random.choice(r) for _ in r) / len(r) for _ in range(4000))
print(f"pooled: MSIS ratio {math.exp(sum(r)/len(r)):.3f} ({math.exp(bs[100]):.3f}-{math.exp(bs[3900]):.3f}) n={len(r)}")
