#!/usr/bin/env python3
"""Paired bootstrap of the Brier score difference (breach odds) of two accuracy.py outputs:
`python3 bench/brier_diff.py bench/results/NEW bench/results/OLD`. Per set and threshold
(max(train); p99 on the long sets) and pooled: mean Brier new and old, their difference with a
95 % interval (4,000 draws over series, fixed seed), and the Brier skill score of each. For
changes that move only the probabilities, where the MASE and MSIS ratios stay 1."""
import csv, random, sys

SETS = ['bench', 'bench-vm', 'bench-long', 'bench-long2']


def load(d, s, sfx):
    out = {}
    for r in csv.DictReader(open(f"{d}/{s}.csv")):
        p = r.get('breach_prob' + sfx, '')
        if r['model'] == 'headroom' and p not in ('', 'nan'):
            out[r['series']] = (float(p), int(r['breach_actual' + sfx] != ''))
    return out


def bss(rows, i):
    base = sum(r[2] for r in rows) / len(rows)
    brier = sum((r[i] - r[2]) ** 2 for r in rows) / len(rows)
    return 1 - brier / (base * (1 - base)) if 0 < base < 1 else float('nan')


def report(name, rows):
    d = [(a - y) ** 2 - (b - y) ** 2 for a, b, y in rows]
    random.seed(1)
    bs = sorted(sum(random.choice(d) for _ in d) / len(d) for _ in range(4000))
    new = sum((a - y) ** 2 for a, _, y in rows) / len(rows)
    old = sum((b - y) ** 2 for _, b, y in rows) / len(rows)
    print(f"| {name} | {len(rows)} | {new:.4f} | {old:.4f} | {new - old:+.4f} ({bs[100]:+.4f} to {bs[3900]:+.4f}) "
          f"| {bss(rows, 0):.2f} | {bss(rows, 1):.2f} |")


def main():
    new, old = sys.argv[1], sys.argv[2]
    print(f"Brier {new} against {old} (negative difference: better)\n")
    print("| set | n | Brier new | Brier old | difference (95 %) | BSS new | BSS old |")
    print("|---|---|---|---|---|---|---|")
    pooled = []
    for s in SETS:
        for sfx in ('', '_p99'):
            a, b = load(new, s, sfx), load(old, s, sfx)
            rows = [(a[k][0], b[k][0], a[k][1]) for k in a if k in b]
            if rows:
                report(s + (' p99' if sfx else ''), rows)
                if not sfx:
                    pooled += rows
    report('**pooled (max)**', pooled)


if __name__ == '__main__':
    main()
