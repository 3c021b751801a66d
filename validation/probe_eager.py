#!/usr/bin/env python3
"""Diagnostic, not calibration: why some eager SparQ rows of h100.csv take
far longer than both their host issue time and their CUDA-graph time (the
triton K-once row at B 4, 32 heads, S 16K: 645 us eager, 319 us host,
338 us graph). For a few cases it times the call the way measure.py does
and with each suspect taken away, and records where the device waits:

  eager         measure.py's time_pass (events around each call, no
                synchronize between samples), three times
  eager, no gc  the same with Python's garbage collector off
  host idle     measure.py's host figure (free_samples: back-to-back calls
                right after a synchronize)
  host busy     the host's time per call inside the eager timing loop,
                while the device runs the previous calls
  graph         the call replayed from a CUDA graph
  profile       torch.profiler over 6 back-to-back calls: the device's busy
                and idle time per call, and the longest CPU-side CUDA
                runtime calls (a launch that blocks shows here)

Nothing here sets a device figure (NOTES.md, session 10).

  python3 validation/probe_eager.py [--out DIR]
"""

import argparse
import csv
import gc
import os
import statistics
import time

import torch

from measure import Inputs, free_samples, profiled_events, shape_seed, sparq_maker, time_pass

CASES = [  # (variant, K layout, B, H, Hkv, S)
    ("triton", "once", 4, 32, 32, 16384),
    ("triton", "twice", 4, 32, 32, 16384),
    ("torch-gather", "twice", 4, 32, 32, 16384),
    ("triton", "once", 4, 32, 32, 32768),
    ("triton", "once", 1, 32, 32, 4096),
    ("torch-gather", "twice", 4, 32, 8, 4096),
]


def host_busy(fn, n):
    """Host seconds per call issuing n calls between events, as time_pass's
    timing loop does, before the final synchronize."""
    st = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    en = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(n):
        st[i].record()
        fn()
        en[i].record()
    host = (time.perf_counter() - t0) / n
    torch.cuda.synchronize()
    dev = statistics.median(a.elapsed_time(b) / 1e3 for a, b in zip(st, en))
    return host, dev


def profile(fn, calls=6):
    evs, dev = profiled_events(fn, calls)
    busy = sum(e.time_range.end - e.time_range.start for e in dev)
    span = dev[-1].time_range.end - dev[0].time_range.start if dev else 0
    rt = [e for e in evs if str(e.device_type).endswith("CPU") and e.name.startswith("cuda")]
    by = {}
    for e in rt:
        by.setdefault(e.name, []).append(e.time_range.end - e.time_range.start)
    worst = sorted(((max(v), k, len(v), sum(v)) for k, v in by.items()), reverse=True)[:4]
    return busy / calls, span / calls, len(dev) / calls, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    r, k, D = 32, 128, 128
    for variant, layout, B, H, Hkv, S in CASES:
        torch.manual_seed(shape_seed(B, S, Hkv))
        x = Inputs(B, H, Hkv, S, D, torch.float16, kt=(layout == "twice"))
        fn = sparq_maker(variant, r, k, layout == "twice")(x)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        name = f"{variant} {layout} B{B} {H}/{Hkv} S{S}"
        out = {"case": name}
        for i in range(3):
            med, lo, hi, n = time_pass(fn, 1)
            out[f"eager{i}"] = med
        out["eager_min"], out["eager_max"] = lo, hi
        gc.disable()
        try:
            out["eager_nogc"] = time_pass(fn, 1)[0]
        finally:
            gc.enable()
        out["host_idle"] = statistics.median(free_samples(fn, 8, 7))
        out["host_busy"], out["eager_loop"] = host_busy(fn, 40)
        out["graph"] = time_pass(fn, 1, graph=True)[0]
        busy, span, ops, worst = profile(fn)
        out["prof_busy"], out["prof_span"], out["prof_ops"] = busy / 1e6, span / 1e6, ops
        out["prof_worst"] = "; ".join(f"{nm} max {mx:.0f} us x{c} sum {sm:.0f}" for mx, nm, c, sm in worst)
        rows.append(out)
        eager = " ".join(f"{out['eager%d' % i] * 1e6:.0f}" for i in range(3))
        print(f"{name}: eager {eager} us"
              f" (no gc {out['eager_nogc'] * 1e6:.0f}), host idle {out['host_idle'] * 1e6:.0f},"
              f" host busy {out['host_busy'] * 1e6:.0f} (loop {out['eager_loop'] * 1e6:.0f}),"
              f" graph {out['graph'] * 1e6:.0f}; profile: device busy {busy:.0f} us of {span:.0f} per call,"
              f" {ops:g} ops; {out['prof_worst']}", flush=True)
        del x, fn
        torch.cuda.empty_cache()
    with open(os.path.join(args.out, "probe_eager.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
