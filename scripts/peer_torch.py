#!/usr/bin/env python3
"""Run bwsim's dense and SparQ decode steps in PyTorch on the CPU, on the
same inputs, and compare outputs and times with `bwsim bench`.

For each method the script runs `bwsim bench --json --dump-inputs DIR` with
the workload flags below; bwsim writes the sampled pairs' q, K and V as
float32 .npy files (bitwise the values its kernel read) and its outputs.
The script loads them, runs

  dense:  eager matmul-softmax-matmul (torch.bmm, torch.softmax), the same
          with one torch.mv (sgemv) per pair and head, and, where this torch
          has it (2.0+), F.scaled_dot_product_attention;
  sparq:  a gather-based implementation of the algorithm bwsim runs
          (kernels/sparq.go): top-r of the group-summed |q|, approximate
          scores from the r selected rows of a contiguous Kᵀ (K stored
          twice), softmax, top-k of the group-summed approximate logits
          plus the k/4 most recent positions, α, exact attention over the
          gathered K and V rows, the blend with the mean of V (approximate
          scores by torch.bmm, and by one torch.mv per pair and head);

with torch.set_num_threads(THREADS) (bwsim gets --workers THREADS), checks
that the outputs agree with bwsim's, and prints the median times and their
ratios (torch / bwsim: above 1 means bwsim is faster), and the ratio to
the fastest torch variant of each method.

On a machine shared with other work, OpenMP's spinning threads make torch
with 2 threads erratic: run it also with OMP_WAIT_POLICY=PASSIVE (the
report records the policy).

Example (the issue's target shape; a few minutes, 1 GiB of disk at a time):

  /usr/bin/python3 scripts/peer_torch.py --threads 2 -- \\
      --seq 32k --heads 32 --head-dim 128 --dtype fp32 --sample-heads 32

Flags after `--` go to `bwsim bench` for both methods; --no-append is added
(the torch steps do not append to the cache, so the running mean of V is
over all positions on both sides). Requires python3-torch and numpy
(Debian: apt-get install python3-torch python3-numpy; the Debian torch uses
the system BLAS, so install an optimised one, e.g. libopenblas0-openmp).
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_WORKLOAD = ["--seq", "32k", "--heads", "32", "--head-dim", "128", "--dtype", "fp32",
                    "--sample-heads", "32", "--workload", "llm-like", "--seed", "1"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bwsim", help="bwsim binary (default: go build ./cmd/bwsim into the work directory)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads and bwsim --workers (default 2)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    ap.add_argument("--runs", type=int, default=7, help="timed calls; the median is reported (default 7)")
    ap.add_argument("--r", type=int, default=32, help="SparQ r (default 32)")
    ap.add_argument("--k", type=int, default=128, help="SparQ k (default 128)")
    ap.add_argument("--methods", default="dense,sparq", help="comma-separated: dense, sparq")
    ap.add_argument("--dir", help="work directory for the .npy files (default: a temporary one, removed)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("workload", nargs="*", help="bwsim bench workload flags (after --)")
    a = ap.parse_args()
    if not a.workload:
        a.workload = list(DEFAULT_WORKLOAD)
    return a


def log(*xs):
    print(*xs, file=sys.stderr, flush=True)


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_bwsim(work):
    out = os.path.join(work, "bwsim")
    log("peer: building bwsim")
    subprocess.run(["go", "build", "-o", out, "./cmd/bwsim"], cwd=repo_root(), check=True)
    return out


def run_bench(bwsim, flags, dump, threads, warmup, runs):
    cmd = [bwsim, "bench", *flags, "--no-append", "--json", "--dump-inputs", dump,
           "--workers", str(threads), "--warmup", str(warmup), "--runs", str(runs), "--calibrate=false"]
    log("peer:", " ".join(cmd))
    res = subprocess.run(cmd, check=True, stdout=subprocess.PIPE)
    return json.loads(res.stdout)


def load(dump):
    with open(os.path.join(dump, "meta.json")) as f:
        meta = json.load(f)
    arrays = {name: np.load(os.path.join(dump, spec["file"])) for name, spec in meta["files"].items()}
    return meta, arrays


def timeit(f, warmup, runs):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts)


def rel_l2(got, want):
    """Largest relative L2 error over the query heads (last axis is d_h)."""
    got = got.reshape(-1, got.shape[-1]).astype(np.float64)
    want = want.reshape(-1, want.shape[-1]).astype(np.float64)
    num = np.linalg.norm(got - want, axis=1)
    den = np.maximum(np.linalg.norm(want, axis=1), 1e-30)
    return float((num / den).max())


def dense_eager(q, K, V):
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = torch.bmm(q, K.transpose(1, 2)) * scale
    return torch.bmm(torch.softmax(s, dim=-1), V)


def dense_mv(q, K, V):
    """Hand-tuned eager dense: one matrix-vector product per pair and head
    (torch.mv, BLAS sgemv), which on CPU streams K and V far better than a
    batched matmul with one query row."""
    P, g, D = q.shape
    scale = 1.0 / math.sqrt(D)
    out = torch.empty(P, g, D)
    for i in range(P):
        for h in range(g):
            p = torch.softmax(torch.mv(K[i], q[i, h]) * scale, dim=-1)
            out[i, h] = torch.mv(V[i].t(), p)
    return out


def dense_sdpa(q, K, V):
    return F.scaled_dot_product_attention(q, K, V)


def sparq_gather(q, K, V, Kt, vmean, r, k, realloc, mv=False):
    """SparQ as bwsim runs it, with torch gathers. q [P, g, D]; K, V
    [P, S, D]; Kt [P, D, S] contiguous (K stored twice); vmean [P, D].
    mv computes the approximate scores with one sgemv per pair and head
    instead of a batched matmul."""
    P, g, D = q.shape
    S = K.shape[1]
    qa = q.abs()
    i1 = torch.topk(qa.sum(1), r, dim=-1).indices                           # [P, r]
    i1, _ = torch.sort(i1, dim=-1)
    qsel = torch.gather(q, 2, i1[:, None, :].expand(P, g, r))              # [P, g, r]
    ksel = torch.gather(Kt, 1, i1[:, :, None].expand(P, r, S))             # [P, r, S]
    l1 = qa.double().sum(-1)
    l1sel = qsel.abs().double().sum(-1)
    inv_tau = torch.where((l1 > 0) & (l1sel > 0), 1 / torch.sqrt(D * l1sel / l1), torch.ones_like(l1)).float()
    if mv:
        lh = torch.stack([torch.stack([torch.mv(ksel[i].t(), qsel[i, h]) for h in range(g)]) for i in range(P)])
        lh = lh * inv_tau[..., None]
    else:
        lh = torch.bmm(qsel, ksel) * inv_tau[..., None]                    # [P, g, S]
    if k >= S:
        i2 = torch.arange(S).expand(P, S)
    else:
        loc = k // 4
        cand = S - loc
        top = torch.topk(lh[:, :, :cand].sum(1), k - loc, dim=-1).indices
        top, _ = torch.sort(top, dim=-1)
        i2 = torch.cat([top, torch.arange(cand, S).expand(P, loc)], dim=-1)  # [P, k]
    shat = torch.softmax(lh, dim=-1)
    kk = i2.shape[1]
    if realloc and k < S:
        alpha = torch.gather(shat, 2, i2[:, None, :].expand(P, g, kk)).double().sum(-1).float()
    else:
        alpha = torch.ones(P, g)
    k2 = torch.gather(K, 1, i2[:, :, None].expand(P, kk, D))
    v2 = torch.gather(V, 1, i2[:, :, None].expand(P, kk, D))
    s = torch.softmax(torch.bmm(q, k2.transpose(1, 2)) * (1.0 / math.sqrt(D)), dim=-1)
    y = torch.bmm(s, v2)
    if realloc:
        a = alpha[..., None]
        y = a * y + (1 - a) * vmean[:, None, :]
    return y, i2, alpha


def blas_library():
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
        return ", ".join(sorted(os.path.basename(x) for x in libs)) or "unknown"
    except OSError:
        return "unknown"


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    work = a.dir or tempfile.mkdtemp(prefix="bwsim-peer-")
    os.makedirs(work, exist_ok=True)
    report = {"torch": torch.__version__, "threads": a.threads,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"), "rows": []}
    try:
        bwsim = a.bwsim or build_bwsim(work)
        methods = [m.strip() for m in a.methods.split(",") if m.strip()]
        for method in methods:
            if method == "dense":
                flags = ["--method", "dense", "--impl", "fused", *a.workload]
            elif method == "sparq":
                flags = ["--method", "sparq", "--impl", "unfused", "--k-layout", "twice",
                         "--r", str(a.r), "--k", str(a.k), *a.workload]
            else:
                raise SystemExit(f"unknown method {method!r}")
            dump = os.path.join(work, method)
            bench = run_bench(bwsim, flags, dump, a.threads, a.warmup, a.runs)
            meta, arr = load(dump)
            shutil.rmtree(dump)  # the arrays are in memory now
            q, K, V = (torch.from_numpy(arr[n]) for n in ("q", "k", "v"))
            out = arr["out"]
            P, g, D = q.shape
            S = K.shape[1]
            row = {"method": method, "pairs": P, "group": g, "seq": S, "head_dim": D,
                   "bwsim_seconds": bench["seconds"], "bwsim_min_seconds": bench["min_seconds"],
                   "bwsim_max_seconds": bench["max_seconds"], "bwsim_traced_seconds": bench["traced_seconds"],
                   "bwsim_gbps": bench["gbps"], "bwsim_bandwidth_fraction": bench["bandwidth_fraction"],
                   "simd": bench["simd"], "peers": []}
            log(f"peer: {method}: {P} pairs, g={g}, S={S}, D={D}; bwsim {bench['seconds'] * 1e3:.2f} ms")
            with torch.inference_mode():
                if method == "dense":
                    peers = [("torch eager bmm-softmax-bmm", lambda: dense_eager(q, K, V)),
                             ("torch mv-softmax-mv per pair", lambda: dense_mv(q, K, V))]
                    if hasattr(F, "scaled_dot_product_attention"):
                        peers.append(("torch SDPA", lambda: dense_sdpa(q, K, V)))
                    else:
                        row["note"] = f"torch {torch.__version__} has no scaled_dot_product_attention (added in 2.0)"
                    for name, f in peers:
                        y = f().numpy()
                        med, lo, hi = timeit(f, a.warmup, a.runs)
                        row["peers"].append({"name": name, "seconds": med, "min_seconds": lo, "max_seconds": hi,
                                             "ratio": med / bench["seconds"], "rel_l2_vs_bwsim": rel_l2(y, out)})
                else:
                    spec = meta["config"]["spec"]
                    realloc = not spec.get("no_reallocation", False)
                    Kt = K.transpose(1, 2).contiguous()  # the second copy of K, as stored
                    vmean = V.double().mean(1).float()
                    sel = arr["selected"]
                    for name, mv in (("torch gather SparQ, bmm (K twice)", False), ("torch gather SparQ, mv (K twice)", True)):
                        f = lambda: sparq_gather(q, K, V, Kt, vmean, spec["r"], spec["k"], realloc, mv)
                        y, i2, alpha = f()
                        same = [set(sel[i].tolist()) == set(i2[i].tolist()) for i in range(P)]
                        overlap = float(np.mean([len(set(sel[i].tolist()) & set(i2[i].tolist())) / sel.shape[1] for i in range(P)]))
                        y = y.numpy()
                        agree = [i for i in range(P) if same[i]]
                        med, lo, hi = timeit(f, a.warmup, a.runs)
                        row["peers"].append({
                            "name": name, "seconds": med, "min_seconds": lo, "max_seconds": hi,
                            "ratio": med / bench["seconds"],
                            "rel_l2_vs_bwsim": rel_l2(y, out),
                            "rel_l2_vs_bwsim_same_selection": rel_l2(y[agree], out[agree]) if agree else None,
                            "pairs_same_selection": len(agree), "selection_overlap": overlap,
                            "alpha_max_abs_diff": float(np.abs(alpha.numpy() - arr["alpha"]).max()),
                        })
            best = min(row["peers"], key=lambda p: p["seconds"])
            row["best_peer"] = best["name"]
            row["best_ratio"] = best["seconds"] / bench["seconds"]
            report["rows"].append(row)
            del q, K, V, arr
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    report["blas"] = blas_library()
    if a.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"torch {report['torch']} ({report['blas']}), {a.threads} threads, OMP_WAIT_POLICY {report['omp_wait_policy']}; "
          f"bwsim vector code {report['rows'][0]['simd'] if report['rows'] else '?'}")
    for row in report["rows"]:
        print(f"\n{row['method']}: {row['pairs']} pairs, g={row['group']}, S={row['seq']}, d_h={row['head_dim']}")
        print(f"  bwsim bench                    {row['bwsim_seconds'] * 1e3:9.2f} ms  ({row['bwsim_gbps']:.1f} GB/s)")
        for p in row["peers"]:
            extra = f"rel L2 vs bwsim {p['rel_l2_vs_bwsim']:.2e}"
            if "selection_overlap" in p:
                extra += (f", same selection in {p['pairs_same_selection']}/{row['pairs']} pairs "
                          f"(overlap {p['selection_overlap']:.4f}), rel L2 on those "
                          f"{p['rel_l2_vs_bwsim_same_selection'] if p['rel_l2_vs_bwsim_same_selection'] is not None else float('nan'):.2e}")
            print(f"  {p['name']:<36} {p['seconds'] * 1e3:9.2f} ms  torch/bwsim = {p['ratio']:.2f}x  ({extra})")
        print(f"  fastest torch: {row['best_peer']}, torch/bwsim = {row['best_ratio']:.2f}x")
        if "note" in row:
            print(f"  note: {row['note']}")


if __name__ == "__main__":
    main()
