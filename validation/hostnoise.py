#!/usr/bin/env python3
"""How well does the host's issue time explain eager timings? Diagnostic,
standard library only; changes nothing in bwsim and no device figure comes
from it.

Reads runs of the grid that carry `host_issue_seconds` (measure.py since
session 11: each eager row's own call, its issue time taken right after its
eager timing, GC off in both) and, for the host-bound rows (the call's issue
time at least 1.5x the same shape's CUDA-graph timing, which is the
device's time), prints the percentiles of

  own      eager seconds / the row's own host_issue_seconds;
  variant  eager seconds / the median host_issue_seconds of the row's
           add_columns.host_key group (variant, K layout, torch.topk path,
           sdpa-math's operation count) over the run's shapes: the rule
           add_columns.py applies to the separate host files.

If the host's pace were steady, both would sit near 1 with a narrow spread.

  python3 validation/hostnoise.py validation/h100-rowhost-run1.csv validation/h100-rowhost-run2.csv
"""

import statistics
import sys

from add_columns import host_key, read_rows

KEY = ("method", "k_layout", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k")


def pct(xs):
    xs = sorted(xs)
    return " ".join(f"{xs[min(len(xs) - 1, int(q * len(xs)))]:.2f}" for q in (0.05, 0.25, 0.5, 0.75, 0.95))


def main(paths):
    for path in paths:
        rs = read_rows(path)
        if not rs or "host_issue_seconds" not in rs[0]:
            sys.exit(f"{path}: no host_issue_seconds column (a run of measure.py before session 11?)")
        graph = {(r["variant"].removesuffix("+graph"),) + tuple(r[c] for c in KEY): float(r["seconds"])
                 for r in rs if r["variant"].endswith("+graph")}
        eager = [r for r in rs if not r["variant"].endswith("+graph") and r["host_issue_seconds"]]
        path_of = {}
        by_variant = {}
        for r in eager:
            path_of[id(r)] = host_key(r["variant"], r["k_layout"], r["method"], r["batch"], r["heads"],
                                      r["kv_heads"], r["seq"], r["head_dim"])
            by_variant.setdefault(path_of[id(r)], []).append(float(r["host_issue_seconds"]))
        med = {k: statistics.median(v) for k, v in by_variant.items()}
        own, var = [], []
        for r in eager:
            dev = graph.get((r["variant"],) + tuple(r[c] for c in KEY))
            host = float(r["host_issue_seconds"])
            if dev is None or host < 1.5 * dev:
                continue
            t = float(r["seconds"])
            own.append(t / host)
            var.append(t / med[path_of[id(r)]])
        print(f"{path}: {len(eager)} eager rows, {len(own)} host-bound; percentiles 5 25 50 75 95")
        print(f"  own      {pct(own)}")
        print(f"  variant  {pct(var)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
