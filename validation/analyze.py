#!/usr/bin/env python3
"""Where bwsim's SparQ predictions miss on the H100, stage by stage, and how
much mechanisms bwsim lacks would move the error. Exploratory: it reads
bwsim's own predictions (validate-points.csv) and the microbenchmarks, and
changes nothing in bwsim. Standard library only.

  go run ./cmd/bwsim validate --measured validation/h100.csv \\
      --device-file validation/h100-sxm-measured.yaml --out /tmp/v -q
  python3 validation/analyze.py /tmp/v/validate-points.csv validation/h100-micro.csv

Mechanisms tried (each calibrated from microbenchmarks only, never from a
SparQ or dense attention timing):
  topk     torch.topk over [B*Hkv, S] and softmax over [B*H, S] at the measured
           microbenchmark times (log-log interpolation in rows and columns)
           instead of bwsim's compare count at vector peak;
  kernels  each stage is several kernels: the launch cost of the extra ones
           (counted from measure.py's code) at the measured 2.4 us;
  sectors  K stored once: step 1 reads every 32-B sector of each key row that
           holds a selected component, once, rather than one sector per
           component (bwsim folds the strided 2-byte reads without reuse
           when K exceeds the L2); priced like bwsim prices memory, bytes over
           min(achievable, Little's law) with the measured figures;
  grid     triton-split only: step 1 runs B*Hkv*nsplit programs (measure.py
           splits S), not B*Hkv, so Little's law allows more in flight.
"""

import csv
import math
import statistics
import sys
from collections import defaultdict

LAUNCH = 2.4e-6  # s per small kernel in a CUDA graph (h100-micro.csv copy/read size=1048576 graph)
BW = 3.15e12     # B/s, read stream (h100-micro.csv read size=1073741824)
INFLIGHT = 11300  # B per program in flight (h100-micro.csv read_programs, 32.1 GB/s x 352 ns)
LAT = 352e-9     # s, HBM pointer chase (h100-micro.csv chase footprint=2147483648)
SLOTS = 132 * 8  # programs resident at once (catalog: 132 SMs x 8)


def nsplit(pairs, S, r, split):
    """The S-split measure.py's triton-split uses for step 1."""
    chunk = max(64, min(1024, 8192 // r))
    nchunks = -(-S // chunk)
    n = 1
    while split and n * 2 <= nchunks and pairs * n < 4 * 132:
        n *= 2
    return n


def load_points(path):
    out = []
    for r in csv.DictReader(open(path)):
        stages = {}
        for part in r["stages"].split(";"):
            name, rest = part.split("=", 1)
            stages[name] = float(rest.split("(")[0])
        r["stage_s"] = stages
        out.append(r)
    return out


def load_micro(path):
    rows = []
    for r in csv.reader(line for line in open(path) if not line.startswith("#")):
        rows.append(r)
    hdr, rows = rows[0], rows[1:]
    return [dict(zip(hdr, r)) for r in rows]


def kv(case):
    return dict(p.split("=", 1) for p in case.split(";") if "=" in p)


class Grid:
    """log-log bilinear interpolation of t(rows, cols), clamped at the edges."""

    def __init__(self):
        self.t = {}

    def add(self, rows, cols, t):
        self.t[(rows, cols)] = t

    def __call__(self, rows, cols):
        rs = sorted({r for r, _ in self.t})
        cs = sorted({c for _, c in self.t})

        def bracket(v, vs):
            v = min(max(v, vs[0]), vs[-1])
            for a, b in zip(vs, vs[1:]):
                if a <= v <= b:
                    return a, b, (math.log(v) - math.log(a)) / (math.log(b) - math.log(a))
            return vs[-1], vs[-1], 0.0

        r0, r1, fr = bracket(rows, rs)
        c0, c1, fc = bracket(cols, cs)
        lt = lambda r, c: math.log(self.t[(r, c)])  # noqa: E731
        v = (1 - fr) * ((1 - fc) * lt(r0, c0) + fc * lt(r0, c1)) + fr * ((1 - fc) * lt(r1, c0) + fc * lt(r1, c1))
        return math.exp(v)


def sectors_per_row(D, r, elem=2, sector=32):
    """Expected 32-B sectors of a D-element row that hold at least one of r
    components chosen at random."""
    per = sector // elem
    n = D // per
    miss = 1.0
    for i in range(r):
        miss *= (D - per - i) / (D - i)
    return n * (1 - miss)


def main():
    pts = load_points(sys.argv[1])
    micro = load_micro(sys.argv[2])
    topk, soft = Grid(), Grid()
    stage_meas = {}
    for m in micro:
        c = kv(m["case"])
        if m["bench"] == "topk_s" and m["mode"] == "graph" and c["k"] == "128":
            topk.add(int(c["rows"]), int(c["cols"]), float(m["seconds"]))
        if m["bench"] == "softmax" and m["mode"] == "graph":
            soft.add(int(c["rows"]), int(c["cols"]), float(m["seconds"]))
        if m["bench"] == "stage":
            name = m["case"].split(";")[0]
            stage_meas[(name, c["B"], c["H"], c["Hkv"], c["S"], c["stage"])] = float(m["seconds"])

    # 1. Stage by stage: the microbenchmarked stages against bwsim's.
    print("stage times, measured (CUDA graph) vs bwsim, r=32 k=128:")
    print(f"{'kernel':28s} {'B':>3s} {'Hkv':>3s} {'S':>6s} {'stage':22s} {'measured':>10s} {'bwsim':>10s} {'error':>8s}")
    vmap = {"sparq triton twice": ("triton+graph", "twice"), "sparq triton once": ("triton+graph", "once"),
            "sparq triton-split twice": ("triton-split+graph", "twice"),
            "sparq triton-split once": ("triton-split+graph", "once"),
            "dense torch-matmul": ("torch-matmul+graph", "")}
    smap = {"exact+weighted-sum": ("exact-scores", "weighted-sum")}
    for (name, B, H, Hkv, S, st), t in sorted(stage_meas.items(), key=lambda x: (x[0][0], int(x[0][1]), x[0][4])):
        var, lay = vmap[name]
        for p in pts:
            if (p["variant"], p["k_layout"], p["batch"], p["heads"], p["kv_heads"], p["seq"]) == (var, lay, B, H, Hkv, S) \
                    and p["r"] in ("", "32") and p["k"] in ("", "128"):
                pred = sum(p["stage_s"].get(s, 0) for s in smap.get(st, (st,)))
                print(f"{name:28s} {B:>3s} {Hkv:>3s} {S:>6s} {st:22s} {t * 1e6:8.1f}us {pred * 1e6:8.1f}us {100 * (pred / t - 1):+7.0f}%")
                break

    # 2. Mechanisms, cumulatively, on the Triton pipelines replayed as graphs.
    def err(p, t):
        return t / float(p["seconds"]) - 1

    def adjusted(p, mech):
        s = dict(p["stage_s"])
        B, H, Hkv, S, D = (int(p[k]) for k in ("batch", "heads", "kv_heads", "seq", "head_dim"))
        r, k = int(p["r"]), int(p["k"])
        g = H // Hkv
        if "topk" in mech:
            s["softmax-topk"] = max(s["softmax-topk"], topk(B * Hkv, S) + soft(B * H, S))
        if "kernels" in mech:
            # measure.py: top-r = abs, [group sum], topk, gather, 2 sums, mul, div, rsqrt;
            # softmax-topk = softmax, rank copy or group sum, fill, topk, gather, sum;
            # exact-scores and weighted-sum are one fused kernel (one launch fewer).
            s["top-r"] = (8 + (g > 1)) * LAUNCH + max(0, s["top-r"] - LAUNCH)
            s["softmax-topk"] += 4 * LAUNCH
            s["weighted-sum"] -= LAUNCH
        once = p["k_layout"] == "once"
        if ("sectors" in mech and once) or ("grid" in mech and p["variant"].startswith("triton-split")):
            if once and "sectors" in mech:
                nbytes = B * Hkv * S * sectors_per_row(D, r) * 32
            else:
                nbytes = B * Hkv * S * r * 2 if not once else None
            if nbytes is not None:
                units = B * Hkv * nsplit(B * Hkv, S, r, "grid" in mech and p["variant"].startswith("triton-split"))
                bw = min(BW, min(units, SLOTS) * INFLIGHT / LAT)
                s["approx-scores"] = LAUNCH + nbytes / bw
        return sum(s.values())

    groups = defaultdict(list)
    for p in pts:
        if p["method"] == "sparq" and p["variant"] in ("triton+graph", "triton-split+graph"):
            groups[(p["variant"], p["k_layout"])].append(p)
    steps = [(), ("topk",), ("topk", "kernels"), ("topk", "kernels", "sectors"), ("topk", "kernels", "sectors", "grid")]
    print("\nmedian |error| (max |error|) of the SparQ Triton pipelines, CUDA graph, as mechanisms are added:")
    print(f"{'variant':20s} {'layout':6s} {'n':>4s} " + " ".join(f"{'+' + m[-1] if m else 'bwsim':>18s}" for m in steps))
    for (v, lay), ps in sorted(groups.items()):
        cells = []
        for m in steps:
            e = [abs(err(p, adjusted(p, m))) for p in ps]
            cells.append(f"{100 * statistics.median(e):5.1f}% ({100 * max(e):5.0f}%)")
        print(f"{v:20s} {lay:6s} {len(ps):4d} " + " ".join(f"{c:>18s}" for c in cells))


if __name__ == "__main__":
    main()
