#!/usr/bin/env python3
"""Diagnostic, not calibration: why SparQ's Triton step 1 (measure.py's
_sparq_approx_kernel, K stored twice) reads Kt at about 2.8 TB/s where the
stream microbenchmark reads 3.15. Times variants of that kernel side by side
at one shape (B 64, 32 heads, S 4K, r 32: 2048 programs, 537 MB of Kt rows,
ten times the L2) and prints each one's read rate. Nothing here sets a
device figure (NOTES.md, session 7).

  python3 validation/probe_step1.py [--out FILE.csv]
"""

import argparse
import csv
import sys

import torch
import triton

from measure import _read_kernel, _sparq_approx_kernel, time_pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="also write the rows as CSV here")
    args = ap.parse_args()
    B, H, S, D, r = 64, 32, 4096, 128, 32
    pairs = B * H
    g = torch.Generator(device="cuda").manual_seed(1)
    kt = torch.randn(pairs, D, S, device="cuda", dtype=torch.float16, generator=g)
    q = torch.randn(pairs, D, device="cuda", dtype=torch.float16, generator=g)
    i1 = torch.stack([torch.randperm(D, device="cuda", generator=g)[:r] for _ in range(pairs)]).to(torch.int32)
    itau = torch.rand(pairs, device="cuda", generator=g) + 0.5
    out = torch.empty(pairs, S, device="cuda", dtype=torch.float16)
    rows_bytes = pairs * r * S * 2
    score_bytes = pairs * S * 2
    flat = kt.view(-1)
    part = torch.empty(triton.cdiv(flat.numel(), 8192), device="cuda", dtype=torch.float32)
    n_stream = rows_bytes // 2  # as many elements as step 1 reads

    cases = []

    def case(name, fn, moved):
        t = time_pass(fn, 1, graph=True)[0]
        cases.append((name, t, moved, moved / t / 1e12))
        print(f"{name:52s} {t * 1e6:9.1f} us {moved / t / 1e12:6.3f} TB/s", flush=True)

    case("stream read, same bytes (measure.py _read_kernel)",
         lambda: _read_kernel[(triton.cdiv(n_stream, 8192),)](flat, part, n_stream, BLOCK=8192, num_warps=8),
         rows_bytes)
    for chunk in (128, 256, 512):
        for warps in (4, 8):
            for stages in (2, 3, 4):
                case(f"step 1: chunk {chunk}, {warps} warps, {stages} stages",
                     lambda chunk=chunk, warps=warps, stages=stages: _sparq_approx_kernel[(pairs, 1)](
                         q, i1, itau, kt, out, S, S // chunk, D=D, R=r, G=1, GP=16, CHUNK=chunk, TWICE=True,
                         num_warps=warps, num_stages=stages),
                     rows_bytes + score_bytes)
    # Which rows of Kt: the same kernel and tile size (16 KiB a step) over
    # r random rows (the default above), the first r rows (one contiguous
    # r x S block per program), every (D/r)-th row, and all D rows.
    for rr, pick in ((32, "first"), (32, "strided"), (64, "random"), (128, "all")):
        if pick == "first":
            sel = torch.arange(rr, device="cuda", dtype=torch.int32).repeat(pairs, 1)
        elif pick == "strided":
            sel = torch.arange(0, D, D // rr, device="cuda", dtype=torch.int32).repeat(pairs, 1)
        elif pick == "all":
            sel = torch.arange(D, device="cuda", dtype=torch.int32).repeat(pairs, 1)
        else:
            sel = torch.stack([torch.randperm(D, device="cuda", generator=g)[:rr] for _ in range(pairs)]).to(torch.int32)
        chunk = 8192 // rr
        case(f"step 1: r {rr}, {pick} rows, chunk {chunk}",
             lambda sel=sel, rr=rr, chunk=chunk: _sparq_approx_kernel[(pairs, 1)](
                 q, sel, itau, kt, out, S, S // chunk, D=D, R=rr, G=1, GP=16, CHUNK=chunk, TWICE=True, num_warps=4),
             pairs * rr * S * 2 + score_bytes)
    if args.out:
        with open(args.out, "w", newline="") as fh:
            w = csv.writer(fh)
            fh.write(f"# probe_step1.py: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
                     f"triton {triton.__version__}; B {B}, H {H}, S {S}, r {r}, CUDA graph, median\n")
            w.writerow(["case", "seconds", "bytes", "tb_per_s"])
            for c in cases:
                w.writerow([c[0], f"{c[1]:.6e}", c[2], f"{c[3]:.3f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
