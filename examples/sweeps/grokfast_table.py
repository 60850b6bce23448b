#!/usr/bin/env python3
"""The README's Grokfast table from a Grokfast sweep's results.csv.

    python3 examples/sweeps/grokfast_table.py examples/sweeps/results/grokfast-s4/results.csv

Rows: every (activation, weight decay, train fraction) cell; columns: steps to 95 % test
accuracy (the sweep's grok_step; "—" where not reached) per seed without a filter
(grokfast_lambda = 0), with EMA and with MA, and each filter's speed-up = unfiltered steps
/ filtered steps over the seeds where both reach 95 % (median and range). Prints the
markdown table, then the pooled medians. Standard library only.
"""
import csv
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = list(csv.DictReader(open(path)))
    cells = defaultdict(dict)  # (act, wd, frac) -> {(filter, seed): grok_step or None}
    for r in rows:
        lam = float(r["optimizer.grokfast_lambda"])
        kind = "none" if lam == 0 else r["optimizer.grokfast"]
        key = (r["model.activation"], float(r["optimizer.weight_decay"]), float(r["task.train_fraction"]))
        step = int(r["grok_step"]) if r["grok_step"] else None
        cells[key][(kind, int(r["seed"]))] = step
    seeds = sorted({s for c in cells.values() for (_, s) in c})
    name = {"square": "x²", "relu": "ReLU"}
    fmt = lambda v: "—" if v is None else str(v)
    print("| σ | wd | train frac | none: steps to 95 % test (seeds " + ",".join(map(str, seeds))
          + ") | EMA (α 0.98, λ 2) | MA (w 100, λ 5) | EMA speed-up (median, range) | MA speed-up (median, range) |")
    print("|---|---|---|---|---|---|---|---|")
    pooled = {"ema": [], "ma": []}
    reached = defaultdict(int)
    for key in sorted(cells, key=lambda k: (k[0] != "square", k[1], k[2])):
        c = cells[key]
        cols = [", ".join(fmt(c.get((kind, s))) for s in seeds) for kind in ("none", "ema", "ma")]
        for kind in ("none", "ema", "ma"):
            reached[kind] += sum(c.get((kind, s)) is not None for s in seeds)
        ups = []
        for kind in ("ema", "ma"):
            r = [c[("none", s)] / c[(kind, s)] for s in seeds
                 if c.get(("none", s)) and c.get((kind, s))]
            pooled[kind] += r
            ups.append(f"{statistics.median(r):.2f}× ({min(r):.2f}–{max(r):.2f})" if r else "n/a")
        act, wd, frac = key
        print(f"| {name.get(act, act)} | {wd:g} | {frac:g} | " + " | ".join(cols + ups) + " |")
    n = len(rows) // 3
    for kind in ("ema", "ma"):
        r = pooled[kind]
        med = f"{statistics.median(r):.2f}× (range {min(r):.2f}–{max(r):.2f})" if r else "n/a"
        print(f"{kind}: {len(r)} paired runs reach 95 % with and without the filter; median speed-up {med}")
    print("models reaching 95 % test: " + ", ".join(f"{k} {reached[k]} of {n}" for k in ("none", "ema", "ma")))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: grokfast_table.py RESULTS_CSV")
    main(sys.argv[1])
