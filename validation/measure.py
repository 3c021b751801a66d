#!/usr/bin/env python3
"""GPU measurements for validating bwsim: bandwidth ceilings, launch
overhead, top-k/softmax throughput, dense decode attention and SparQ.

Self-contained: needs only PyTorch and Triton (CuPy optional, for a raw
empty-kernel launch). Writes, under --out:

  measured.csv  dense and SparQ decode attention, the bwsim measurement
                format (validation/README.md), machine facts and the exact
                command in '#' comment lines; eager rows also carry
                host_issue_seconds, the issue time of the row's own call
                taken right after its eager timing (a diagnostic:
                validation/hostnoise.py);
  micro.csv     microbenchmarks (copy, read, gathers by row size, read
                bandwidth against the number of thread blocks, pointer-chase
                latency, launch overhead, torch.topk / softmax; parts
                mma and tile: instruction rates and the fused attention
                kernels' query-tile throughput; part burst: a grid's time
                when each thread block reads once and stops; part startup:
                the tile-loads kernel with code added outside its tile
                loop, built with nvcc and counted with cuobjdump);
  host.csv      host dispatch (part `host`): the CPU time to issue one eager
                call of each implementation right after a synchronize with
                the GPU idle, and the GPU operations per call (torch.profiler);
  kernels.csv   per-kernel device times (part `kernels`, not run by
                default): each GPU operation of one call of every
                implementation, in issue order, with its median device
                duration over 5 profiled calls (torch.profiler);
  log.txt       everything printed.

Timing: CUDA events around a pass over R rotating input sets (R chosen so a
pass touches >= --rotate-bytes, several times the L2), per-call time = pass
time / R, warm-up passes first, the median over samples reported (min and
max kept), Python's garbage collector off while timing. Every input is
drawn from N(0, 1), never zeros. Each kernel is
checked against a float32 reference before it is timed. "+graph" variants
capture the pass in a CUDA graph and time its replays (no CPU dispatch in
the time); the others time eager PyTorch, CPU dispatch included.

Usage: python3 validation/measure.py --out DIR [--quick] [--budget-s 480]
"""

import argparse
import csv
import gc
import math
import os
import statistics
import subprocess
import sys
import time
import traceback

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from grid import approx_grid  # validation/grid.py: the grids, shared with add_columns.py

T0 = time.time()
LOG = None


def log(*a):
    s = " ".join(str(x) for x in a)
    line = f"[{time.time() - T0:7.1f}s] {s}"
    print(line, flush=True)
    if LOG is not None:
        LOG.write(line + "\n")
        LOG.flush()


# --------------------------------------------------------------------------
# Triton kernels


@triton.jit
def _read_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    # One block of BLOCK elements per program: a streaming read.
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + pid, tl.sum(x.to(tl.float32), 0))


@triton.jit
def _read_prog_kernel(x_ptr, out_ptr, per_prog, BLOCK: tl.constexpr):
    # Each program reads its own contiguous share, BLOCK elements per step:
    # achieved bandwidth against the number of programs (Little's law).
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * per_prog
    acc = tl.zeros([BLOCK], tl.float32)
    for i in range(0, per_prog, BLOCK):
        acc += tl.load(base + i + tl.arange(0, BLOCK)).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc, 0))


@triton.jit
def _burst_kernel(x_ptr, out_ptr, TILES: tl.constexpr, ROWS: tl.constexpr, COLS: tl.constexpr):
    # One burst per program: TILES [ROWS, COLS] loads, none depending on
    # another (an unrolled block, no loop to pipeline), then one value written.
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * (TILES * ROWS * COLS)
    offs = tl.arange(0, ROWS)[:, None] * COLS + tl.arange(0, COLS)[None, :]
    acc = tl.zeros([ROWS, COLS], tl.float32)
    for t in tl.static_range(TILES):
        acc += tl.load(base + t * ROWS * COLS + offs).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(tl.sum(acc, 1), 0))


@triton.jit
def _phased_burst_kernel(x_ptr, out_ptr, PHASES: tl.constexpr, ROWS: tl.constexpr, COLS: tl.constexpr):
    # PHASES [ROWS, COLS] loads per program, each after the one before has
    # arrived: its address depends on the previous tile's sum (through a
    # comparison random data never meets, so the offset stays 0), as a
    # kernel that loads K, waits, then loads V; then one value written.
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * (PHASES * ROWS * COLS)
    offs = tl.arange(0, ROWS)[:, None] * COLS + tl.arange(0, COLS)[None, :]
    total = 0.0
    dep = 0
    for t in tl.static_range(PHASES):
        tile = tl.load(base + t * ROWS * COLS + dep + offs).to(tl.float32)
        s = tl.sum(tl.sum(tile, 1), 0)
        dep = (s > 3.0e38).to(tl.int32)
        total += s
    tl.store(out_ptr + pid, total)


@triton.jit
def _gather_kernel(t_ptr, out_ptr, mask_rows, seed, ELEMS: tl.constexpr, ROWS: tl.constexpr):
    # ROWS pseudo-random rows of ELEMS fp16 elements per program; row numbers
    # come from an integer hash, so no index array is read.
    pid = tl.program_id(0)
    h = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS) + seed
    h = (((h >> 16) ^ h) * 73244475) & 0x7FFFFFFF
    h = (((h >> 16) ^ h) * 73244475) & 0x7FFFFFFF
    h = (h >> 16) ^ h
    row = h & mask_rows
    if ELEMS == 1:
        x = tl.load(t_ptr + row)
        tl.store(out_ptr + pid, tl.sum(x.to(tl.float32), 0))
    else:
        offs = row[:, None] * ELEMS + tl.arange(0, ELEMS)[None, :]
        x = tl.load(t_ptr + offs)
        tl.store(out_ptr + pid, tl.sum(tl.sum(x.to(tl.float32), 1), 0))


@triton.jit
def _chase_kernel(nxt_ptr, pos_ptr, steps):
    # Dependent loads: latency per hop. Each launch continues where the last
    # stopped, so repeated launches visit new nodes.
    p = tl.load(pos_ptr)
    for _ in range(steps):
        p = tl.load(nxt_ptr + p)
    tl.store(pos_ptr, p)


@triton.jit
def _read_repeat_kernel(x_ptr, out_ptr, per_prog, reps, BLOCK: tl.constexpr):
    # Each program reads its share of a small buffer reps times: L2 bandwidth.
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * per_prog
    acc = tl.zeros([BLOCK], tl.float32)
    for _ in range(reps):
        for i in range(0, per_prog, BLOCK):
            # .cg: cache in L2 only, so the SM's L1 does not serve the repeats.
            acc += tl.load(base + i + tl.arange(0, BLOCK), cache_modifier=".cg").to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc, 0))


@triton.jit
def _empty_kernel(x_ptr):
    pid = tl.program_id(0)  # noqa: F841


@triton.jit
def _sparq_approx_kernel(q_ptr, i1_ptr, itau_ptr, k_ptr, out_ptr, S, chunks_per_prog,
                         D: tl.constexpr, R: tl.constexpr, G: tl.constexpr, GP: tl.constexpr,
                         CHUNK: tl.constexpr, TWICE: tl.constexpr):
    # SparQ step 1 for one (sequence, KV head) pair and a range of CHUNK-position
    # chunks: logits_hat[h, s] = q[h, i1] . K[s, i1] / tau[h] for the group's G
    # query heads (padded to GP for the matrix unit). TWICE reads r contiguous
    # rows of Kt [D, S]; otherwise r scattered components of each row of K [S, D].
    pair = tl.program_id(0).to(tl.int64)
    part = tl.program_id(1)
    rr = tl.arange(0, R)
    hh = tl.arange(0, GP)
    hm = hh < G
    i1 = tl.load(i1_ptr + pair * R + rr)
    qs = tl.load(q_ptr + (pair * G + hh)[:, None] * D + i1[None, :], mask=hm[:, None], other=0.0)
    itau = tl.load(itau_ptr + pair * G + hh, mask=hm, other=0.0)
    kbase = k_ptr + pair * S * D
    obase = out_ptr + pair * G * S
    cc = tl.arange(0, CHUNK)
    c0 = part * chunks_per_prog
    for c in range(c0, c0 + chunks_per_prog):
        s = c * CHUNK + cc
        sm = s < S
        if TWICE:
            kt = tl.load(kbase + i1[:, None] * S + s[None, :], mask=sm[None, :], other=0.0)
        else:
            kt = tl.load(kbase + s[None, :] * D + i1[:, None], mask=sm[None, :], other=0.0)
        acc = tl.dot(qs, kt) * itau[:, None]
        tl.store(obase + hh[:, None] * S + s[None, :], acc.to(tl.float16), mask=hm[:, None] & sm[None, :])


@triton.jit
def _dot_read_kernel(q_ptr, kt_ptr, out_ptr, S, D: tl.constexpr, CHUNK: tl.constexpr):
    # Dense scores through the matrix unit, the way a Triton kernel that
    # feeds tl.dot streams its operand: one program per (sequence, head)
    # walks every row of Kt [D, S], a [D, CHUNK] tile a step, multiplies a
    # 16-row query tile by it and writes the first row's scores.
    pair = tl.program_id(0).to(tl.int64)
    hh = tl.arange(0, 16)
    dd = tl.arange(0, D)
    cc = tl.arange(0, CHUNK)
    qs = tl.load(q_ptr + pair * 16 * D + hh[:, None] * D + dd[None, :])
    kbase = kt_ptr + pair * D * S
    for c in range(0, S // CHUNK):
        s = c * CHUNK + cc
        kt = tl.load(kbase + dd[:, None] * S + s[None, :])
        acc = tl.dot(qs, kt)
        tl.store(out_ptr + pair * S + s[None, :] + hh[:, None] * 0, acc.to(tl.float16), mask=hh[:, None] == 0)


@triton.jit
def _component_read_kernel(q_ptr, idx_ptr, k_ptr, out_ptr, S, D: tl.constexpr, C: tl.constexpr,
                           CHUNK: tl.constexpr):
    # A gather of C fixed components (a per-program set of columns) from
    # every row of a row-major [S, D] matrix, CHUNK rows a step, fed to
    # tl.dot with a 16-row tile: the component-gather access pattern at the
    # granularity of single elements, in a loop of the Triton tl.dot class.
    pair = tl.program_id(0).to(tl.int64)
    cc = tl.arange(0, C)
    hh = tl.arange(0, 16)
    idx = tl.load(idx_ptr + pair * C + cc)
    qs = tl.load(q_ptr + pair * 16 * C + hh[:, None] * C + cc[None, :])
    kbase = k_ptr + pair * S * D
    rr = tl.arange(0, CHUNK)
    for c in range(0, S // CHUNK):
        s = c * CHUNK + rr
        kt = tl.load(kbase + s[None, :] * D + idx[:, None])
        acc = tl.dot(qs, kt)
        tl.store(out_ptr + pair * S + s[None, :] + hh[:, None] * 0, acc.to(tl.float16), mask=hh[:, None] == 0)


@triton.jit
def _sparq_exact_kernel(q_ptr, i2_ptr, k_ptr, v_ptr, vmean_ptr, alpha_ptr, out_ptr, S, scale,
                        D: tl.constexpr, KK: tl.constexpr, KB: tl.constexpr,
                        G: tl.constexpr, GP: tl.constexpr):
    # SparQ step 2 for one pair: gather the k selected rows of K and V, exact
    # softmax attention for the group's G heads (online softmax over blocks of
    # KB rows), then y = alpha*y + (1-alpha)*vmean.
    pair = tl.program_id(0).to(tl.int64)
    hh = tl.arange(0, GP)
    hm = hh < G
    dd = tl.arange(0, D)
    qt = tl.load(q_ptr + (pair * G + hh)[:, None] * D + dd[None, :], mask=hm[:, None], other=0.0)
    kbase = k_ptr + pair * S * D
    vbase = v_ptr + pair * S * D
    m_i = tl.full([GP], float("-inf"), tl.float32)
    l_i = tl.zeros([GP], tl.float32)
    acc = tl.zeros([GP, D], tl.float32)
    for b in range(0, KK, KB):
        idx = tl.load(i2_ptr + pair * KK + b + tl.arange(0, KB))
        kb = tl.load(kbase + idx[:, None] * D + dd[None, :])
        sc = tl.dot(qt, tl.trans(kb)) * scale
        m_new = tl.maximum(m_i, tl.max(sc, 1))
        p = tl.exp(sc - m_new[:, None])
        corr = tl.exp(m_i - m_new)
        l_i = l_i * corr + tl.sum(p, 1)
        vb = tl.load(vbase + idx[:, None] * D + dd[None, :])
        acc = acc * corr[:, None] + tl.dot(p.to(tl.float16), vb)
        m_i = m_new
    y = acc / l_i[:, None]
    a = tl.load(alpha_ptr + pair * G + hh, mask=hm, other=1.0)
    vm = tl.load(vmean_ptr + pair * D + dd)
    y = a[:, None] * y + (1.0 - a[:, None]) * vm[None, :]
    tl.store(out_ptr + (pair * G + hh)[:, None] * D + dd[None, :], y.to(tl.float16), mask=hm[:, None])


# --------------------------------------------------------------------------
# Attention implementations. Shapes: q [B, H, D], K and V [B, Hkv, S, D],
# Kt [B, Hkv, D, S], vmean [B, Hkv, D] fp32. Output [B, H, D] (or a view).


class Inputs:
    def __init__(self, B, H, Hkv, S, D, dtype, kt=False):
        self.B, self.H, self.Hkv, self.S, self.D = B, H, Hkv, S, D
        self.g = H // Hkv
        self.q = torch.randn(B, H, D, device="cuda", dtype=dtype)
        self.K = torch.randn(B, Hkv, S, D, device="cuda", dtype=dtype)
        self.V = torch.randn(B, Hkv, S, D, device="cuda", dtype=dtype)
        self.vmean = torch.mean(self.V, dim=2, dtype=torch.float32)
        self.Kt = None
        if kt:
            self.add_kt()

    def add_kt(self):
        if self.Kt is None:
            self.Kt = self.K.transpose(-1, -2).contiguous()


def dense_sdpa(x, backend):
    from torch.nn.attention import sdpa_kernel

    q4 = x.q.view(x.B, x.H, 1, x.D)
    gqa = x.g > 1

    def f():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q4, x.K, x.V, enable_gqa=gqa)

    return f


def dense_torch(x, stages=False):
    # Unfused: scores = q K^T / sqrt(D) (one batched matmul), softmax, P V.
    # The g heads of a group read the shared K and V once.
    B, Hkv, g, S, D = x.B, x.Hkv, x.g, x.S, x.D
    q3 = x.q.view(B * Hkv, g, D)
    kT = x.K.view(B * Hkv, S, D).transpose(1, 2)
    v3 = x.V.view(B * Hkv, S, D)
    base = torch.empty(B * Hkv, g, S, device="cuda", dtype=x.q.dtype)
    scale = 1.0 / math.sqrt(D)

    def f():
        s = torch.baddbmm(base, q3, kT, beta=0.0, alpha=scale)
        p = torch.softmax(s, dim=-1)
        return torch.bmm(p, v3)

    if stages:
        s0 = torch.baddbmm(base, q3, kT, beta=0.0, alpha=scale)
        p0 = torch.softmax(s0, dim=-1)
        return {
            "scores": lambda: torch.baddbmm(base, q3, kT, beta=0.0, alpha=scale),
            "softmax": lambda: torch.softmax(s0, dim=-1),
            "weighted-sum": lambda: torch.bmm(p0, v3),
        }
    return f


def _topr_and_tau(x, r):
    B, Hkv, g, D = x.B, x.Hkv, x.g, x.D
    qg = x.q.view(B, Hkv, g, D)
    absq = qg.abs()
    gs = absq.sum(2) if g > 1 else absq[:, :, 0]
    i1 = torch.topk(gs, r, dim=-1).indices  # [B, Hkv, r]
    sel = absq.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r))
    tau2 = sel.sum(-1, dtype=torch.float32).mul_(D).div_(absq.sum(-1, dtype=torch.float32))
    return qg, i1, tau2  # tau^2 [B, Hkv, g]


def _select(lh, S, k, g):
    # lh: approximate logits (already / tau) [B, Hkv, g, S]. Returns i2 and alpha.
    s_hat = torch.softmax(lh, dim=-1, dtype=torch.float32)
    rank = lh.sum(2, dtype=torch.float32) if g > 1 else lh[:, :, 0].to(torch.float32, copy=True)
    rank[..., S - k // 4:] = float("inf")
    i2 = torch.topk(rank, k, dim=-1).indices  # [B, Hkv, k]
    B, Hkv = i2.shape[:2]
    alpha = s_hat.gather(-1, i2[:, :, None, :].expand(B, Hkv, g, k)).sum(-1)  # [B, Hkv, g]
    return i2, alpha


def _sparq_torch_core(q, K, V, Kt, vmean, r: int, k: int, twice: bool):
    B, Hkv, S, D = K.shape
    H = q.shape[1]
    g = H // Hkv
    qg = q.view(B, Hkv, g, D)
    absq = qg.abs()
    gs = absq.sum(2)
    i1 = torch.topk(gs, r, dim=-1).indices
    sel = absq.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r))
    tau = torch.sqrt(sel.sum(-1, dtype=torch.float32) * D / absq.sum(-1, dtype=torch.float32))
    qsel = qg.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r))
    if twice:
        lh = torch.matmul(qsel, Kt.gather(2, i1[:, :, :, None].expand(B, Hkv, r, S)))
    else:
        lh = torch.matmul(qsel, K.gather(3, i1[:, :, None, :].expand(B, Hkv, S, r)).transpose(-1, -2))
    lh = lh.float() / tau[..., None]
    s_hat = torch.softmax(lh, dim=-1)
    rank = lh.sum(2)
    rank[..., S - k // 4:] = float("inf")
    i2 = torch.topk(rank, k, dim=-1).indices
    alpha = s_hat.gather(-1, i2[:, :, None, :].expand(B, Hkv, g, k)).sum(-1)
    idx = i2[..., None].expand(B, Hkv, k, D)
    kg, vg = K.gather(2, idx), V.gather(2, idx)
    att = torch.softmax(torch.matmul(qg, kg.transpose(-1, -2)).float() / math.sqrt(D), dim=-1).to(q.dtype)
    y = torch.matmul(att, vg).float()
    a = alpha[..., None]
    return (a * y + (1 - a) * vmean[:, :, None, :]).to(q.dtype)


_COMPILED = {}


def sparq_compiled(x, r, k, twice):
    # The paper's third GPU variant: PyTorch SparQ through torch.compile
    # (inductor fuses the element-wise work; gathers and top-k stay separate).
    if "fn" not in _COMPILED:
        import torch._dynamo

        for knob in ("cache_size_limit", "recompile_limit"):
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, 64)
        _COMPILED["fn"] = torch.compile(_sparq_torch_core, dynamic=False)
    fn = _COMPILED["fn"]
    return lambda: fn(x.q, x.K, x.V, x.Kt, x.vmean, r, k, twice)


def sparq_torch(x, r, k, twice, debug=False):
    # The paper's PyTorch SparQ (gathers through torch.gather, materialised),
    # eager, with GQA sharing i1 and i2 across a group.
    B, Hkv, g, S, D = x.B, x.Hkv, x.g, x.S, x.D

    def f():
        qg, i1, tau2 = _topr_and_tau(x, r)
        qsel = qg.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r))  # [B,Hkv,g,r]
        if twice:
            ksel = x.Kt.gather(2, i1[:, :, :, None].expand(B, Hkv, r, S))  # [B,Hkv,r,S]
            lh = torch.matmul(qsel, ksel)
        else:
            ksel = x.K.gather(3, i1[:, :, None, :].expand(B, Hkv, S, r))  # [B,Hkv,S,r]
            lh = torch.matmul(qsel, ksel.transpose(-1, -2))
        lh = lh / tau2.sqrt().to(lh.dtype)[..., None]
        i2, alpha = _select(lh, S, k, g)
        idx = i2[..., None].expand(B, Hkv, k, D)
        kg, vg = x.K.gather(2, idx), x.V.gather(2, idx)
        att = torch.softmax(torch.matmul(qg, kg.transpose(-1, -2)).float() / math.sqrt(D), dim=-1).to(qg.dtype)
        y = torch.matmul(att, vg)  # [B, Hkv, g, D]
        a = alpha[..., None].to(y.dtype)
        out = a * y + (1 - a) * x.vmean[:, :, None, :].to(y.dtype)
        if debug:
            return out.view(B, x.H, D), i2, alpha
        return out

    return f


def sparq_triton(x, r, k, twice, split, debug=False, stages=False):
    # Triton for the two gathers (step 1 over r components of every key,
    # step 2 over k full rows of K and V, fused with the exact softmax and
    # the v-mean blend); torch.topk and softmax in between, as in the paper's
    # benchmark. split=False: one program per (sequence, KV head) pair, as the
    # paper's gather kernel; split=True: step 1 also splits S across programs.
    B, H, Hkv, g, S, D = x.B, x.H, x.Hkv, x.g, x.S, x.D
    assert r >= 16 and r & (r - 1) == 0 and k >= 64 and k & (k - 1) == 0
    pairs = B * Hkv
    chunk, nsplit, cpp = approx_grid(pairs, S, r, split)
    gp = max(16, triton.next_power_of_2(g))
    kmat = x.Kt if twice else x.K
    scale = 1.0 / math.sqrt(D)

    def f():
        qg, i1, tau2 = _topr_and_tau(x, r)
        itau = tau2.rsqrt_()
        lh = torch.empty(B, Hkv, g, S, device="cuda", dtype=x.q.dtype)
        if debug:
            lh.fill_(float("nan"))
        _sparq_approx_kernel[(pairs, nsplit)](
            x.q, i1, itau, kmat, lh, S, cpp,
            D=D, R=r, G=g, GP=gp, CHUNK=chunk, TWICE=twice, num_warps=4)
        i2, alpha = _select(lh, S, k, g)
        out = torch.empty(B, H, D, device="cuda", dtype=x.q.dtype)
        if debug:
            out.fill_(float("nan"))
        _sparq_exact_kernel[(pairs,)](
            x.q, i2, x.K, x.V, x.vmean, alpha, out, S, scale,
            D=D, KK=k, KB=64, G=g, GP=gp, num_warps=4)
        if debug or stages:
            return out, i2, alpha, lh, i1, itau
        return out

    if stages:
        # The pipeline cut at its device-memory hand-offs, each part on the
        # intermediates of one full run, for timing parts alone.
        _, i2, alpha, lh, i1, itau = f()
        out = torch.empty(B, H, D, device="cuda", dtype=x.q.dtype)
        return {
            "top-r": lambda: _topr_and_tau(x, r)[2].rsqrt_(),
            "approx-scores": lambda: _sparq_approx_kernel[(pairs, nsplit)](
                x.q, i1, itau, kmat, lh, S, cpp, D=D, R=r, G=g, GP=gp, CHUNK=chunk, TWICE=twice, num_warps=4),
            "softmax-topk": lambda: _select(lh, S, k, g),
            "exact+weighted-sum": lambda: _sparq_exact_kernel[(pairs,)](
                x.q, i2, x.K, x.V, x.vmean, alpha, out, S, scale, D=D, KK=k, KB=64, G=g, GP=gp, num_warps=4),
        }
    return f


def sdpa_backends():
    """(variant, backend) of the four forced SDPA backends."""
    from torch.nn.attention import SDPBackend

    return (("sdpa-flash", SDPBackend.FLASH_ATTENTION), ("sdpa-efficient", SDPBackend.EFFICIENT_ATTENTION),
            ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION), ("sdpa-math", SDPBackend.MATH))


def sparq_maker(variant, r, k, twice):
    """The builder (Inputs -> call) of a SparQ variant: torch-gather,
    torch-compile, triton or triton-split."""
    if variant == "torch-gather":
        return lambda x: sparq_torch(x, r, k, twice)
    if variant == "torch-compile":
        return lambda x: sparq_compiled(x, r, k, twice)
    if variant in ("triton", "triton-split"):
        return lambda x: sparq_triton(x, r, k, twice, variant == "triton-split")
    raise ValueError(f"unknown SparQ variant {variant}")


def sparq_reference(x, r, k):
    # float32 SparQ (same algorithm) for checks.
    B, Hkv, g, S, D = x.B, x.Hkv, x.g, x.S, x.D
    _, i1, _ = _topr_and_tau(x, r)  # the same selection (fp16 group sums)
    qg = x.q.float().view(B, Hkv, g, D)
    absq = qg.abs()
    sel = absq.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r)).sum(-1)
    tau = torch.sqrt(D * sel / absq.sum(-1))
    qsel = qg.gather(-1, i1[:, :, None, :].expand(B, Hkv, g, r))
    ksel = x.K.float().gather(3, i1[:, :, None, :].expand(B, Hkv, S, r))
    lh = torch.matmul(qsel, ksel.transpose(-1, -2)) / tau[..., None]
    return lh, i1


def exact_given(x, i2, alpha):
    # float32 step 2 given the selection: checks the exact-attention kernel.
    B, Hkv, g, D = x.B, x.Hkv, x.g, x.D
    k = i2.shape[-1]
    qg = x.q.float().view(B, Hkv, g, D)
    idx = i2[..., None].expand(B, Hkv, k, D)
    kg, vg = x.K.float().gather(2, idx), x.V.float().gather(2, idx)
    att = torch.softmax(torch.matmul(qg, kg.transpose(-1, -2)) / math.sqrt(D), dim=-1)
    y = torch.matmul(att, vg)
    a = alpha[..., None].float()
    return (a * y + (1 - a) * x.vmean[:, :, None, :]).reshape(B, x.H, D)


def dense_reference(x):
    B, Hkv, g, S, D = x.B, x.Hkv, x.g, x.S, x.D
    qg = x.q.float().view(B, Hkv, g, D)
    att = torch.softmax(torch.matmul(qg, x.K.float().transpose(-1, -2)) / math.sqrt(D), dim=-1)
    return torch.matmul(att, x.V.float()).reshape(B, x.H, D)


def relerr(a, ref):
    a = a.float().reshape(-1)
    ref = ref.float().reshape(-1)
    if not torch.isfinite(a).all():
        return float("nan")
    return float((a - ref).norm() / ref.norm())


# --------------------------------------------------------------------------
# Timing


def _capture(run):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        run()
        run()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run()
    torch.cuda.synchronize()
    return g


def time_pass(run, calls, graph=False, target_s=0.04, min_n=5, max_n=40, warm=2):
    """Median seconds per call of run(), which makes `calls` calls.

    Python's garbage collector is off while the passes are timed, as it is
    while the host's issue time is taken (free_samples): a collection costs
    the host up to ~300 us inside an eager call (validation/NOTES.md,
    session 10), depends on what the measuring process holds rather than
    on the call, and a timing with it on cannot be compared with a host
    figure taken with it off. Files measured before session 11 were timed
    with it on."""
    g = None
    if graph:
        g = _capture(run)
        fn = g.replay
    else:
        fn = run
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    e0 = torch.cuda.Event(enable_timing=True)
    e1 = torch.cuda.Event(enable_timing=True)
    gc.collect()
    gc.disable()
    try:
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        t = e0.elapsed_time(e1) / 1e3
        n = int(min(max_n, max(min_n, target_s / max(t, 1e-7))))
        st = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        en = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        for i in range(n):
            st[i].record()
            fn()
            en[i].record()
        torch.cuda.synchronize()
    finally:
        gc.enable()
    ts = [a.elapsed_time(b) / 1e3 / calls for a, b in zip(st, en)]
    del g
    return statistics.median(ts), min(ts), max(ts), n


def n_sets(set_bytes, rotate_bytes, max_sets=32):
    return int(max(1, min(max_sets, math.ceil(rotate_bytes / max(set_bytes, 1)))))


# --------------------------------------------------------------------------
# Machine facts


def facts(args):
    p = torch.cuda.get_device_properties(0)
    f = {
        "gpu": p.name,
        "sms": p.multi_processor_count,
        "l2_bytes": getattr(p, "L2_cache_size", "?"),
        "memory_bytes": p.total_memory,
        "compute_capability": f"{p.major}.{p.minor}",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "triton": triton.__version__,
        "python": sys.version.split()[0],
    }
    try:
        import cupy

        f["cupy"] = cupy.__version__
    except Exception:
        f["cupy"] = "absent"
    q = ("name,driver_version,clocks.max.sm,clocks.max.mem,clocks.sm,clocks.mem,"
         "clocks.applications.graphics,power.limit,pstate,temperature.gpu,vbios_version,"
         "memory.total,pci.bus_id,persistence_mode,compute_mode")
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        f["nvidia_smi"] = f"{q} = {out}"
    except Exception as e:  # noqa: BLE001
        f["nvidia_smi"] = f"failed: {e}"
    try:
        f["uname"] = os.uname().release
    except Exception:
        pass
    return f


def catalog_name(gpu):
    n = gpu.lower()
    if "h100" in n:
        return "h100-pcie" if "pcie" in n else "h100-sxm"
    if "h200" in n:
        return "h200"
    if "a100" in n:
        return "a100-80gb" if "80" in n else "a100-40gb"
    return n.replace(" ", "-")


def smi_clocks():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"failed: {e}"


# --------------------------------------------------------------------------
# Microbenchmarks

MICRO_HEADER = ["bench", "case", "mode", "bytes", "seconds", "gbps", "seconds_min", "seconds_max", "samples"]


class Micro:
    def __init__(self, path):
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f)

    def row(self, bench, case, mode, nbytes, t):
        med, lo, hi, n = t
        gbps = nbytes / med / 1e9 if nbytes else ""
        self.w.writerow([bench, case, mode, int(nbytes), f"{med:.6e}", f"{gbps:.2f}" if gbps != "" else "",
                         f"{lo:.6e}", f"{hi:.6e}", n])
        self.f.flush()
        log(f"  {bench:14s} {case:38s} {mode:6s} {med * 1e6:11.2f} us" + (f"  {gbps:8.1f} GB/s" if gbps != "" else ""))


def micro_bandwidth(m, quick):
    log("micro: copy and read against size")
    sizes = [1 << s for s in ([20, 24, 26, 30] if quick else range(20, 33))]
    for size in sizes:
        n = size // 2
        src = torch.randn(n, device="cuda", dtype=torch.float16)
        dst = torch.empty_like(src)
        m.row("copy", f"size={size}", "eager", 2 * size, time_pass(lambda: dst.copy_(src), 1))
        BLOCK = 8192
        grid = triton.cdiv(n, BLOCK)
        part = torch.empty(grid, device="cuda", dtype=torch.float32)
        m.row("read", f"size={size}", "eager", size,
              time_pass(lambda: _read_kernel[(grid,)](src, part, n, BLOCK=BLOCK, num_warps=8), 1))
        if size <= (1 << 26) or size == (1 << 30):
            # GPU-side time per launch, 10 launches per replayed graph: the
            # fixed cost per kernel without CPU dispatch (small sizes: L2-resident).
            def copies():
                for _ in range(10):
                    dst.copy_(src)

            def reads():
                for _ in range(10):
                    _read_kernel[(grid,)](src, part, n, BLOCK=BLOCK, num_warps=8)

            m.row("copy", f"size={size}", "graph", 2 * size, time_pass(copies, 10, graph=True))
            m.row("read", f"size={size}", "graph", size, time_pass(reads, 10, graph=True))
        if size == 1 << 30:
            m.row("read_torch_sum", f"size={size}", "eager", size, time_pass(lambda: src.sum(dtype=torch.float32), 1))
        del src, dst, part
    torch.cuda.empty_cache()
    log("clocks after bandwidth:", smi_clocks())

    log("micro: read bandwidth against the number of programs (Little's law)")
    total = 1 << 29  # 1 GiB of fp16
    buf = torch.randn(total, device="cuda", dtype=torch.float16)
    progs = [1, 8, 32, 132, 528, 2112] if quick else [1, 2, 4, 8, 16, 32, 66, 132, 264, 528, 1056, 2112, 4224, 8448]
    for block, warps in ((2048, 8), (8192, 8), (8192, 4)):
        for P in progs:
            per = min(total // P, 32 << 20) // block * block  # at most 64 MiB per program
            out = torch.empty(P, device="cuda", dtype=torch.float32)
            nb = P * per * 2
            m.row("read_programs", f"programs={P};block={block};warps={warps};bytes_per_iter={block * 2}", "eager", nb,
                  time_pass(lambda: _read_prog_kernel[(P,)](buf, out, per, BLOCK=block, num_warps=warps), 1))
    del buf
    torch.cuda.empty_cache()

    log("micro: L2-resident read bandwidth against footprint")
    for mb in ([16] if quick else [2, 4, 8, 16, 24, 32, 40, 48, 64, 128, 1024]):
        n = mb << 19  # fp16 elements
        buf = torch.randn(n, device="cuda", dtype=torch.float16)
        P, block = 1056, 1024
        per = max(block, n // P // block * block)
        P = n // per
        reps = max(1, int(4e9 // (P * per * 2)))
        out = torch.empty(P, device="cuda", dtype=torch.float32)
        m.row("read_l2", f"footprint={mb << 20};programs={P};reps={reps}", "eager", P * per * 2 * reps,
              time_pass(lambda: _read_repeat_kernel[(P,)](buf, out, per, reps, BLOCK=block, num_warps=4), 1,
                        min_n=3, max_n=10))
        del buf
    torch.cuda.empty_cache()

    log("micro: random row gathers against row size")
    table_elems = 1 << 30  # 2 GiB fp16 table
    table = torch.randn(table_elems, device="cuda", dtype=torch.float16)
    nidx = 1 << 22 if quick else 1 << 24
    for rb in [2, 4, 8, 16, 32, 64, 128, 256, 512]:
        elems = rb // 2
        rows = max(32, 8192 // elems) if elems > 1 else 4096
        nrows = table_elems // elems
        grid = nidx // rows
        out = torch.empty(grid, device="cuda", dtype=torch.float32)
        seed = [0]

        def run():
            seed[0] += 1
            _gather_kernel[(grid,)](table, out, nrows - 1, seed[0] * 7919, ELEMS=elems, ROWS=rows, num_warps=4)

        t = time_pass(run, 1)
        m.row("gather", f"row_bytes={rb};rows={nidx};sectors32={nidx * max(1, math.ceil(rb / 32))}", "eager",
              nidx * rb, t)
    del table
    torch.cuda.empty_cache()


def micro_latency(m, quick):
    log("micro: pointer-chase latency")
    for size in [1 << 18, 1 << 23, 1 << 25, 1 << 28, 1 << 31]:
        nodes = size // 256
        stride = 32  # int64 elements = 256 B between nodes
        perm = torch.randperm(nodes, device="cuda")
        nxt = torch.zeros(nodes * stride, device="cuda", dtype=torch.int64)
        nxt[perm * stride] = torch.roll(perm, -1) * stride
        pos = (perm[:1] * stride).clone()
        res = {}
        for steps in (2000, 6000):
            res[steps] = time_pass(lambda: _chase_kernel[(1,)](nxt, pos, steps, num_warps=1), 1,
                                   min_n=3, max_n=5, warm=1)
        per = (res[6000][0] - res[2000][0]) / 4000
        m.row("chase", f"footprint={size};hop_stride=256", "eager", 0, (per, per, per, 1))
        del nxt, perm
    torch.cuda.empty_cache()


def micro_launch(m, quick):
    log("micro: launch overhead")
    N = 2000 if quick else 5000
    x = torch.randn(1, device="cuda")

    def triton_empty():
        for _ in range(N):
            _empty_kernel[(1,)](x)

    m.row("launch", "triton_empty_back_to_back", "eager", 0, time_pass(triton_empty, N, min_n=3, max_n=5))

    def torch_add():
        for _ in range(N):
            x.add_(1.0)

    m.row("launch", "torch_add1_back_to_back", "eager", 0, time_pass(torch_add, N, min_n=3, max_n=5))
    Ng = 1000

    def torch_add_g():
        for _ in range(Ng):
            x.add_(1.0)

    m.row("launch", "torch_add1_graph_node", "graph", 0, time_pass(torch_add_g, Ng, graph=True, min_n=5, max_n=10))

    def host_sync(f, n=500):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            f()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts), min(ts), max(ts), n

    torch.cuda.synchronize()
    m.row("launch_sync", "torch_add1_then_synchronize", "host", 0, host_sync(lambda: x.add_(1.0)))
    m.row("launch_sync", "triton_empty_then_synchronize", "host", 0, host_sync(lambda: _empty_kernel[(1,)](x)))
    m.row("launch_sync", "synchronize_only", "host", 0, host_sync(lambda: None))
    try:
        import cupy as cp

        ker = cp.RawKernel(r'extern "C" __global__ void e() {}', "e")
        ker((1,), (1,), ())
        cp.cuda.Device().synchronize()
        Nc = 20000
        ts = []
        for _ in range(5):
            s, e = cp.cuda.Event(), cp.cuda.Event()
            s.record()
            for _ in range(Nc):
                ker((1,), (1,), ())
            e.record()
            e.synchronize()
            ts.append(cp.cuda.get_elapsed_time(s, e) / 1e3 / Nc)
        m.row("launch", "cupy_rawkernel_empty_back_to_back", "eager", 0,
              (statistics.median(ts), min(ts), max(ts), len(ts)))
        ts = []
        for _ in range(500):
            t0 = time.perf_counter()
            ker((1,), (1,), ())
            cp.cuda.Device().synchronize()
            ts.append(time.perf_counter() - t0)
        m.row("launch_sync", "cupy_rawkernel_empty_then_synchronize", "host", 0,
              (statistics.median(ts), min(ts), max(ts), len(ts)))
    except Exception as e:  # noqa: BLE001
        log("cupy launch benchmark skipped:", repr(e))


def queued_seconds(fn, calls, reps):
    """Device seconds per call of fn when `calls` calls are issued into the
    stream behind a torch.cuda._sleep spin that outlasts their issue, so the
    device runs them back to back as eager PyTorch runs with the host ahead:
    (median, min, max, samples) over the samples in which the spin was still
    running when the last call was issued, or None."""
    if not SLEEP_RATE:
        SLEEP_RATE.append(sleep_cycles_per_s())

    def many():
        for _ in range(calls):
            fn()

    many()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    many()
    issue = time.perf_counter() - t0
    torch.cuda.synchronize()
    sleep_s = max(0.02, 10 * issue)
    ts, bad = [], 0
    while len(ts) < reps and bad < 3:
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        torch.cuda._sleep(int(sleep_s * SLEEP_RATE[0]))
        e0.record()
        many()
        queued = not e0.query()
        e1.record()
        e1.synchronize()
        if queued:
            ts.append(e0.elapsed_time(e1) / 1e3 / calls)
        else:
            bad += 1
            sleep_s *= 4
    return (statistics.median(ts), min(ts), max(ts), len(ts)) if ts else None


def micro_queued_launch(m, quick):
    """Device time per kernel when the host issues kernels one at a time into
    a stream (eager PyTorch), against the same kernels replayed from a CUDA
    graph (queued_seconds: the host's issue time is not in the figure); and
    how many device operations torch.topk runs per call over SparQ's sizes,
    with its time per call both ways."""
    log("micro: per-kernel device time, queued in a stream vs replayed from a graph")
    N = 100 if quick else 200
    reps = 5 if quick else 9
    x = torch.randn(1, device="cuda")
    cases = [("torch_add1", 0, lambda: x.add_(1.0)),
             ("triton_empty", 0, lambda: _empty_kernel[(1,)](x))]
    keep = [x]
    for size in (1 << 20, 1 << 21, 1 << 22):
        src = torch.randn(size // 2, device="cuda", dtype=torch.float16)
        dst = torch.empty_like(src)
        BLOCK = 8192
        grid = triton.cdiv(src.numel(), BLOCK)
        part = torch.empty(grid, device="cuda", dtype=torch.float32)
        keep += [src, dst, part]
        cases.append((f"copy;size={size}", 2 * size, lambda s=src, d=dst: d.copy_(s)))
        cases.append((f"read;size={size}", size,
                      lambda s=src, p=part, g=grid, n=src.numel(): _read_kernel[(g,)](s, p, n, BLOCK=BLOCK, num_warps=8)))
    for name, nbytes, fn in cases:
        t = queued_seconds(fn, N, reps)
        if t:
            m.row("qlaunch", f"kernel={name};n={N}", "stream", nbytes, t)
        else:
            log(f"  qlaunch {name}: the spin ended before the launches were issued; no sample")

        def many(fn=fn):
            for _ in range(N):
                fn()

        m.row("qlaunch", f"kernel={name};n={N}", "graph", nbytes, time_pass(many, N, graph=True, min_n=5, max_n=reps))
    del keep, cases
    torch.cuda.empty_cache()

    log("micro: torch.topk's device operations per call, queued in a stream vs a graph")
    shapes = [(rows, 128, 32, torch.float16) for rows in (32, 128, 512, 2048)]
    shapes += [(rows, S, 128, torch.float32) for rows in (32, 128, 512, 2048)
               for S in (1024, 4096, 16384, 65536, 131072) if rows * S * 4 <= (1 << 30)]
    for rows, S, k, dt in shapes[:3] if quick else shapes:
        x = torch.randn(rows, S, device="cuda", dtype=dt)
        fn = lambda x=x, k=k: torch.topk(x, k, dim=-1)  # noqa: E731
        fn()
        ops = device_ops(fn)
        calls = max(2, min(20, 400 // max(1, int(ops["ops"]))))
        case = f"rows={rows};cols={S};k={k};dtype={'fp16' if dt == torch.float16 else 'fp32'};ops={ops['ops']:g}"
        t = queued_seconds(fn, calls, reps)
        if t:
            m.row("topk_ops", case, "stream", x.numel() * x.element_size(), t)

        def many(fn=fn, calls=calls):
            for _ in range(calls):
                fn()

        m.row("topk_ops", case, "graph", x.numel() * x.element_size(), time_pass(many, calls, graph=True, min_n=5, max_n=reps))
        del x
    torch.cuda.empty_cache()

_MMA_SRC = r"""
extern "C" __global__ void mma_loop(float* out, int iters) {
    // CHAINS independent m16n8k16 fp16 -> fp32 mma.sync accumulators per
    // warp: the sm80-style matrix instruction (not Hopper's wgmma), whose
    // throughput pre-Hopper kernels such as CUTLASS's memory-efficient
    // attention get on an H100. Operands are nonzero halves from the thread id.
    unsigned t = threadIdx.x + 1;
    unsigned a0 = 0x3c003c00u ^ (t & 0x3ffu), a1 = a0 ^ 0x00010000u, a2 = a0 ^ 0x00020000u, a3 = a0 ^ 0x00030000u;
    unsigned b0 = 0x3c003c00u ^ ((t * 7u) & 0x3ffu), b1 = b0 ^ 0x00010000u;
    float c[CHAINS][4];
    for (int j = 0; j < CHAINS; j++) { c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f; }
    for (int i = 0; i < iters; i++) {
#pragma unroll
        for (int j = 0; j < CHAINS; j++) {
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                         : "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        }
    }
    float s = 0.0f;
    for (int j = 0; j < CHAINS; j++) { s += c[j][0] + c[j][1] + c[j][2] + c[j][3]; }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

extern "C" __global__ void ex2_loop(float* out, int iters) {
    // CHAINS independent ex2.approx.f32 chains per thread: the special
    // function unit's rate (softmax's exponentials).
    float x[CHAINS];
    for (int j = 0; j < CHAINS; j++) { x[j] = -1.0f - 1e-3f * (threadIdx.x + j); }
    for (int i = 0; i < iters; i++) {
#pragma unroll
        for (int j = 0; j < CHAINS; j++) {
            float y;
            asm volatile("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x[j]));
            x[j] = -y;
        }
    }
    float s = 0.0f;
    for (int j = 0; j < CHAINS; j++) { s += x[j]; }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
"""


def micro_mma(m, quick):
    """Matrix and special-unit instruction rates (CuPy raw kernels): mma.sync
    m16n8k16 fp16 -> fp32 and ex2.approx.f32, over CTAs per SM and warps per
    CTA, against a large fp16 torch.matmul (Hopper's wgmma path)."""
    log("micro: mma.sync and ex2 rates against CTAs and warps")
    import cupy as cp

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    chains = 4
    mod = cp.RawModule(code=_MMA_SRC, options=(f"-DCHAINS={chains}", "-arch=sm_90"))
    kern = {"mma_sync": mod.get_function("mma_loop"), "ex2": mod.get_function("ex2_loop")}
    out = cp.empty(8 * sms * 1024, dtype=cp.float32)
    # ops per warp and iteration: 4096 flop per mma (16x8x16 multiply-adds)
    # per chain; 32 exponentials per ex2 per chain.
    per_warp = {"mma_sync": 4096 * chains, "ex2": 32 * chains}
    iters = 2048 if quick else 8192
    for name, fn in kern.items():
        for ctas in ([32, sms] if quick else [32, sms, 2 * sms]):
            for warps in (4, 8):
                fn((ctas,), (32 * warps,), (out, cp.int32(64)))
                cp.cuda.Device().synchronize()
                ts = []
                for _ in range(7):
                    s, e = cp.cuda.Event(), cp.cuda.Event()
                    s.record()
                    fn((ctas,), (32 * warps,), (out, cp.int32(iters)))
                    e.record()
                    e.synchronize()
                    ts.append(cp.cuda.get_elapsed_time(s, e) / 1e3)
                ops = ctas * warps * iters * per_warp[name]
                med = statistics.median(ts)
                m.row(name, f"ctas={ctas};warps={warps};chains={chains};ops={ops}", "eager", 0,
                      (med, min(ts), max(ts), len(ts)))
                log(f"    {name} {ctas} CTAs x {warps} warps: {ops / med / 1e12:.2f} T ops/s,"
                    f" {ops / med / min(ctas, sms) / 1e12:.3f} T ops/s per busy SM")
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    t = time_pass(lambda: torch.mm(a, b), 1, min_n=5, max_n=10)
    m.row("matmul_fp16", f"n={n};ops={2 * n ** 3}", "eager", 0, t)
    log(f"    torch.mm fp16 {n}^3: {2 * n ** 3 / t[0] / 1e12:.1f} TFLOP/s")
    del a, b
    torch.cuda.empty_cache()


def micro_dot_read(m, quick):
    """Read rate of a Triton loop whose tiles feed tl.dot (dense scores over
    every row of Kt: _dot_read_kernel), against the stream kernel's: the
    loads go through shared memory to the matrix unit. bwsim prices stages
    run by such kernels (`kernel: triton`) at this rate (memory level
    kernel_bandwidth). Dense work only; never a sparse kernel's timing."""
    log("micro: read rate of Triton loops feeding tl.dot (dense scores, all rows)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    D = 128
    for programs in ([4 * sms] if quick else [4 * sms, 16 * sms]):
        for S in ([4096] if quick else [4096, 16384]):
            gen = torch.Generator(device="cuda").manual_seed(programs + S)
            kt = torch.randn(programs, D, S, device="cuda", dtype=torch.float16, generator=gen)
            q = torch.randn(programs, 16, D, device="cuda", dtype=torch.float16, generator=gen)
            out = torch.empty(programs, S, device="cuda", dtype=torch.float16)
            nbytes = kt.numel() * 2 + out.numel() * 2
            for chunk in (64, 128):
                for warps in (4, 8):
                    t = time_pass(lambda: _dot_read_kernel[(programs,)](q, kt, out, S, D=D, CHUNK=chunk,
                                                                        num_warps=warps), 1, graph=True)
                    m.row("dot_read", f"programs={programs};seq={S};chunk={chunk};warps={warps}", "graph", nbytes, t)
            del kt, q, out
            torch.cuda.empty_cache()


def micro_inflight(m, quick):
    """Bytes one program keeps in flight (Little's law: its read rate alone
    times the DRAM latency), against the bytes its loop moves per step, for
    three loop shapes at 1-264 programs (1-16: the linear region of
    read_programs, where one program's rate is its own; beyond, where the
    programs share the memory system):
    the stream kernel (_read_prog_kernel, loads to registers), a Triton
    loop feeding tl.dot over dense rows (_dot_read_kernel), and the same
    class gathering C random components of each 256-byte row
    (_component_read_kernel: every sector of a row it touches moves). The
    step bytes count 32-byte sectors, as bwsim's traces fold them. A
    pointer chase over 2 GiB in the same run gives the latency. Primitives
    only; never an attention kernel's timing."""
    log("micro: bytes in flight per program against the loop step")
    D = 128
    progs = [1, 8] if quick else [1, 2, 4, 8, 16, 32, 64, 132, 264]
    nodes = (1 << 31) // 256
    perm = torch.randperm(nodes, device="cuda")
    nxt = torch.zeros(nodes * 32, device="cuda", dtype=torch.int64)
    nxt[perm * 32] = torch.roll(perm, -1) * 32
    pos = (perm[:1] * 32).clone()
    res = {st: time_pass(lambda: _chase_kernel[(1,)](nxt, pos, st, num_warps=1), 1, min_n=3, max_n=5, warm=1)
           for st in (2000, 6000)}
    per = (res[6000][0] - res[2000][0]) / 4000
    m.row("chase", f"footprint={1 << 31};hop_stride=256", "eager", 0, (per, per, per, 1))
    del nxt, perm
    torch.cuda.empty_cache()

    # Bytes each program reads: 64 MiB, so even one program's share exceeds
    # the L2 (50-60 MB) and repeats stream from DRAM (at 16 MiB one or two
    # programs ran from L2, at twice the rate). Past 64 programs the share
    # shrinks so the grid reads at most 4 GiB (still far beyond the L2).
    share = {p: min(64 << 20, (4 << 30) // p) // (1 << 20) * (1 << 20) for p in progs}
    P = max(progs)
    total = max(p * share[p] for p in progs)
    buf = torch.randn(total // 2, device="cuda", dtype=torch.float16)
    out = torch.empty(P, device="cuda", dtype=torch.float32)
    for block in (2048, 8192, 16384, 32768):
        for p in progs:
            n = share[p] // 2
            m.row("inflight_stream", f"programs={p};step_bytes={block * 2};warps=8", "eager", p * share[p],
                  time_pass(lambda: _read_prog_kernel[(p,)](buf, out, n, BLOCK=block, num_warps=8), 1))
    del out

    gen = torch.Generator(device="cuda").manual_seed(7)
    mat = buf  # Kt [D, S] or K [S, D] per program, S = share / (2 D)
    outs = torch.empty(total // (D * 2), device="cuda", dtype=torch.float16)
    q = torch.randn(P, 16, D, device="cuda", dtype=torch.float16, generator=gen)
    for chunk in (32, 64, 128):
        for p in progs:
            S = share[p] // (D * 2)
            m.row("inflight_dot", f"programs={p};step_bytes={chunk * D * 2};warps=4", "eager", p * share[p],
                  time_pass(lambda: _dot_read_kernel[(p,)](q, mat, outs, S, D=D, CHUNK=chunk, num_warps=4), 1))
    for comps in (16, 32, 64):
        idx = torch.stack([torch.randperm(D, device="cuda", generator=gen)[:comps].sort().values for _ in range(P)])
        idx = idx.to(torch.int32).contiguous()
        qc = torch.randn(P, 16, comps, device="cuda", dtype=torch.float16, generator=gen)
        sectors = [len({int(i) * 2 // 32 for i in row}) for row in idx.tolist()]
        for chunk in (64, 128, 256):
            for p in progs:
                S = share[p] // (D * 2)
                moved = sum(sectors[:p]) * 32 * S
                step = round(moved / p / (S // chunk))
                m.row("inflight_gather", f"programs={p};components={comps};chunk={chunk};step_bytes={step};warps=4",
                      "eager", moved,
                      time_pass(lambda: _component_read_kernel[(p,)](qc, idx, mat, outs, S, D=D, C=comps,
                                                                     CHUNK=chunk, num_warps=4), 1))
    del buf, mat, outs, q
    torch.cuda.empty_cache()


def micro_burst(m, quick, rotate_bytes):
    """One burst per thread block: a grid of P programs, each reading B bytes
    from DRAM in loads that depend on none other (unrolled, no loop), then writing
    one value (_burst_kernel; B = 16 KiB to 128 KiB, 4-16 warps so no
    program holds more than 256 bytes per thread), replayed in a CUDA graph
    over rotating buffers so the L2 serves none of it. A kernel whose
    blocks each move one tile and stop (FlashAttention-2's split-KV kernel
    at one key block per split, cuDNN's at 128 keys) cannot pipeline a
    block's first load behind anything: its time is at least this one's.
    Primitives only; never an attention kernel's timing."""
    log("micro: one burst per thread block (grid x bytes per block)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    progs = [sms, 2 * sms] if quick else [32, 64, sms, 2 * sms, 4 * sms, 8 * sms, 16 * sms]
    # (rows, tiles, warps): one tile is [rows, 128] fp16.
    shapes = [(64, 1, 4), (128, 1, 4)] if quick else [(64, 1, 4), (128, 1, 4), (128, 2, 8), (128, 4, 16)]
    for rows, tiles, warps in shapes:
        per = rows * 128 * 2 * tiles
        for p in progs:
            ns = n_sets(p * per, rotate_bytes)
            buf = torch.randn(ns * p * per // 2, device="cuda", dtype=torch.float16)
            out = torch.empty(p, device="cuda", dtype=torch.float32)
            views = [buf[i * p * per // 2:(i + 1) * p * per // 2] for i in range(ns)]

            def run(views=views, out=out, p=p):
                for v in views:
                    _burst_kernel[(p,)](v, out, TILES=tiles, ROWS=rows, COLS=128, num_warps=warps)

            t = attempt(f"burst P={p} B={per}", lambda run=run, ns=ns: time_pass(run, ns, graph=True, min_n=5, max_n=20))
            if t is not None:
                m.row("burst", f"programs={p};bytes_per_program={per};warps={warps}", "graph", p * per, t)
            del buf, out, views
        torch.cuda.empty_cache()


def micro_phases(m, quick, rotate_bytes):
    """Dependent load phases per thread block: a grid of P programs, each
    loading PHASES tiles of 32 KiB ([128, 128] fp16) one after another, the
    next tile's address waiting on the previous tile's sum
    (_phased_burst_kernel, 4 warps), beside the same bytes in one burst
    (_burst_kernel, independent loads). The difference is what a kernel pays
    for loading in dependent phases (K, then V) when it has no loop to hide
    them in. CUDA graph, rotating buffers. Primitives only; never an
    attention kernel's timing."""
    log("micro: dependent load phases per thread block")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    progs = [2 * sms] if quick else [sms, 256, 2 * sms, 4 * sms]
    rows, cols = 128, 128
    tile = rows * cols * 2
    for phases in ([1, 2] if quick else [1, 2, 3, 4]):
        per = phases * tile
        for p in progs:
            ns = n_sets(p * per, rotate_bytes)
            buf = torch.randn(ns * p * per // 2, device="cuda", dtype=torch.float16)
            out = torch.empty(p, device="cuda", dtype=torch.float32)
            views = [buf[i * p * per // 2:(i + 1) * p * per // 2] for i in range(ns)]
            for kind in ("phased", "burst"):
                if kind == "burst" and phases == 1:
                    continue  # one phase is one burst

                def run(views=views, out=out, p=p, kind=kind):
                    for v in views:
                        if kind == "phased":
                            _phased_burst_kernel[(p,)](v, out, PHASES=phases, ROWS=rows, COLS=cols, num_warps=4)
                        else:
                            _burst_kernel[(p,)](v, out, TILES=phases, ROWS=rows, COLS=cols, num_warps=4)

                t = attempt(f"{kind} P={p} phases={phases}",
                            lambda run=run, ns=ns: time_pass(run, ns, graph=True, min_n=5, max_n=20))
                if t is not None:
                    m.row(kind, f"programs={p};phases={phases};bytes_per_program={per};warps=4", "graph", p * per, t)
            del buf, out, views
        torch.cuda.empty_cache()


_CPASYNC_SRC = r"""
// One thread block per split of a split-KV decode kernel, reduced to its
// loads: PHASES tiles of CHUNKS 16-byte chunks each, copied global -> shared
// with cp.async (as FlashAttention-2 and cuDNN load K and V tiles), each
// tile summed from shared memory once it has landed, then 16 bytes per
// thread written (FA2's split kernel writes its fp32 partial output rows).
// PIPELINED = 0: the next tile is issued only after the previous one has
// arrived (FA2's first key block: K, wait, then V). PIPELINED = 1: the next
// tile is issued before waiting on the current one (double buffering, FA2's
// loop over later key blocks). Dynamic shared memory is sized by the caller,
// which fixes how many blocks an SM holds at once.
extern "C" __global__ void __launch_bounds__(128) tile_phases(
        const int4* __restrict__ x, float4* __restrict__ out, int phases, int chunks, int pipelined) {
    extern __shared__ int4 smem[];
    const int4* base = x + (size_t)blockIdx.x * phases * chunks;
    float acc = 0.0f;
    auto issue = [&](int p) {
        int4* buf = smem + (p & 1) * chunks;
        const int4* src = base + (size_t)p * chunks;
        for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
            unsigned dst;
            asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(dst) : "l"(buf + c));
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(dst), "l"(src + c));
        }
        asm volatile("cp.async.commit_group;");
    };
    issue(0);
    for (int p = 0; p < phases; p++) {
        if (pipelined && p + 1 < phases) {
            issue(p + 1);
            asm volatile("cp.async.wait_group 1;");
        } else {
            asm volatile("cp.async.wait_group 0;");
        }
        __syncthreads();
        const int4* buf = smem + (p & 1) * chunks;
        for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
            int4 v = buf[c];
            acc += (float)(v.x & 0xff) + (float)(v.w >> 24);
        }
        __syncthreads();
        if (!pipelined && p + 1 < phases) issue(p + 1);
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = make_float4(acc, acc, acc, acc);
}
"""


def micro_cpasync(m, quick, rotate_bytes, pipelined_grid=False):
    """Split-KV tile loads with cp.async (CuPy raw kernel tile_phases): a
    grid of P thread blocks of 4 warps, each copying PHASES tiles of 32 KiB
    ([128, 128] fp16, one key block of K or V) from DRAM into shared memory,
    either each tile after the previous one has landed (dependent) or the
    next issued before the current is waited on (pipelined), with 80 KiB of
    shared memory per block (FlashAttention-2's split-KV kernel for d_h 128:
    a 64-row Q tile and one K and one V tile, 2 blocks per SM) or 40 KiB
    (5 per SM). Replayed in a CUDA graph over rotating buffers so the L2
    serves none of it. What a one-block-per-split kernel pays for its loads,
    apart from its arithmetic. Primitives only; never an attention
    kernel's timing.

    pipelined_grid (part cpasync-pipelined): the pipelined mode over the
    dependent grid's blocks and tiles, the table bwsim reads for kernels
    that keep two tiles in flight (cuDNN's decode kernel waits with
    DEPBAR.LE SB0, 1: validation/h100-ncu-sass.csv)."""
    log("micro: cp.async tile phases per thread block (split-KV loads)")
    import cupy as cp

    sms = torch.cuda.get_device_properties(0).multi_processor_count
    mod = cp.RawModule(code=_CPASYNC_SRC, options=("-arch=sm_90", "-std=c++17"))
    kern = mod.get_function("tile_phases")
    kern.max_dynamic_shared_size_bytes = 80 * 1024
    tile = 128 * 128 * 2
    dep_progs = [16, 32, 64, 128, sms, 192, 256, 2 * sms, 384, 512, 4 * sms, 8 * sms]
    if quick:
        cases = [(80, 0, 1, 2 * sms), (80, 0, 2, 2 * sms), (80, 1, 2, 2 * sms)]
    elif pipelined_grid:
        # One tile has nothing to pipeline: the table's first column is
        # the dependent grid's (the same kernel path), taken in this run.
        cases = [(80, 0, 1, p) for p in dep_progs]
        cases += [(80, 1, n, p) for n in (2, 3, 4, 6, 8, 12, 16) for p in dep_progs]
    else:
        # (shared KiB, pipelined, phases, programs). The dependent grid is
        # the table bwsim reads; the pipelined and 40 KiB rows say what
        # the dependency and the residency cost.
        cases = [(80, 0, n, p) for n in (1, 2, 3, 4, 6, 8, 12, 16) for p in dep_progs]
        cases += [(80, 1, n, p) for n in (2, 4, 8, 16) for p in (64, sms, 2 * sms, 8 * sms)]
        # 40 KiB holds one tile: one phase only (5 blocks per SM).
        cases += [(40, 0, 1, p) for p in (64, 2 * sms, 8 * sms)]
    for smem_kib, pipelined, phases, p in cases:
        per = phases * tile
        ns = n_sets(p * per, rotate_bytes)
        buf = torch.randn(ns * p * per // 2, device="cuda", dtype=torch.float16)
        out = torch.empty(p * 128 * 4, device="cuda", dtype=torch.float32)
        run = _tile_launcher(kern, p, phases, [buf.data_ptr() + i * p * per for i in range(ns)], out, pipelined, smem_kib)

        name = "cpasync_pipelined" if pipelined else "cpasync_dependent"
        t = attempt(f"{name} P={p} phases={phases} smem={smem_kib}K",
                    lambda run=run, ns=ns: time_pass(run, ns, graph=True, min_n=5, max_n=20))
        if t is not None:
            m.row(name, f"programs={p};phases={phases};bytes_per_program={per};warps=4;smem_kib={smem_kib}",
                  "graph", p * per, t)
        del buf, out
    torch.cuda.empty_cache()


def startup_name(pre, params, post):
    """The kernel name of one start-up variant: its name in cuobjdump's and
    Nsight Compute's listings, so either can be matched to its rows."""
    return f"tile_startup_l{pre}_p{params}_e{post}"


def _code_lines(var, n, seed):
    """n lines of straight-line integer arithmetic over four independent
    chains var0..var3 (about 3 instructions a line), each line's shift and
    odd multiplier its own so nothing folds or repeats."""
    import random

    rng = random.Random(seed)
    return [f"{var}{i % 4} = ({var}{i % 4} ^ ({var}{(i + 1) % 4} >> {rng.randrange(1, 31)})) * {rng.randrange(1 << 20, 1 << 31) | 1}u;"
            for i in range(n)]


def _startup_source(pre, params, post):
    """tile_phases (_CPASYNC_SRC) under startup_name, with code a block runs
    before its first load and after its last tile: `params` extra 4-byte
    kernel parameters read once each (constant bank 0, as a library kernel
    reads its parameter struct) and `pre` lines of arithmetic in front of
    the first cp.async, feeding the tiles' address through a runtime mask
    of 0 (so the load waits on them); `post` lines after the last tile,
    fed by its sum and feeding the value written (so they run after it)."""
    body = ["unsigned h0 = threadIdx.x, h1 = blockIdx.x, h2 = threadIdx.x ^ (blockIdx.x << 7), h3 = blockIdx.x * 3u;"]
    body += [f"h{i % 4} = h{i % 4} * 0x9e3779b1u + p{i};" for i in range(params)]
    body += _code_lines("h", pre, pre * 7919 + params)
    body.append("const unsigned h = h0 ^ h1 ^ h2 ^ h3;")
    tail = ["unsigned g0 = __float_as_uint(acc), g1 = g0 ^ threadIdx.x, g2 = g0 + blockIdx.x, g3 = g0 * 3u;"]
    tail += _code_lines("g", post, post * 104729 + 1)
    tail.append("acc += (float)((g0 ^ g1 ^ g2 ^ g3) & mask);")
    src = _CPASYNC_SRC.replace("tile_phases(", startup_name(pre, params, post) + "(")
    src = src.replace("int pipelined)", "int pipelined, unsigned mask" + "".join(f", unsigned p{i}" for i in range(params)) + ")")
    for old, new in (("const int4* base = x + (size_t)blockIdx.x * phases * chunks;",
                      "\n    ".join(body) + "\n    const int4* base = x + (size_t)blockIdx.x * phases * chunks + (h & mask);"),
                     ("out[blockIdx.x * blockDim.x + threadIdx.x] =", "\n    ".join(tail) + "\n    out[blockIdx.x * blockDim.x + threadIdx.x] =")):
        assert old in src
        src = src.replace(old, new)
    return src


def _build_cubin(src, tag):
    """Compile src with nvcc for sm_90 into a cubin and list its SASS with
    cuobjdump: the binary timed is the one counted. Returns (path, sass)."""
    import tempfile

    d = tempfile.mkdtemp(prefix="bwsim-startup-")
    cu, cubin = os.path.join(d, f"{tag}.cu"), os.path.join(d, f"{tag}.cubin")
    with open(cu, "w") as fh:
        fh.write(src)
    built = subprocess.run(["nvcc", "-cubin", "-arch=sm_90", "-std=c++17", "-O3", "-o", cubin, cu],
                           capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"nvcc {cu}: {built.stderr.strip()[:500]}")
    sass = subprocess.run(["cuobjdump", "-sass", cubin], check=True, capture_output=True, text=True).stdout
    return cubin, sass


# Start-up variants (pre lines, extra parameters, post lines) of part
# startup: arithmetic before the first tile, parameter reads, arithmetic
# after the last tile, and one of all three (whether the costs add).
STARTUP_VARIANTS = ([(0, 0, 0)] + [(n, 0, 0) for n in (64, 128, 256, 512, 1024)]
                    + [(0, w, 0) for w in (16, 64, 128, 256)] + [(0, 0, n) for n in (64, 128, 256, 512, 1024)]
                    + [(256, 128, 256)])


def _startup_kernels(variants):
    """Build each start-up variant (nvcc, sm_90) and load it: a list of
    (variant, kernel, static_pre, param_lines), static_pre being the
    instructions before the first DEPBAR in its cuobjdump listing."""
    import cupy as cp
    from sass import cuobjdump_instructions, prologue

    out = []
    for pre, params, post in variants:
        name = startup_name(pre, params, post)
        built = attempt(f"build {name}", lambda: _build_cubin(_startup_source(pre, params, post), name))
        if built is None:
            continue
        cubin, sass = built
        count, param_lines = prologue(cuobjdump_instructions(sass, name))
        kern = cp.RawModule(path=cubin).get_function(name)
        kern.max_dynamic_shared_size_bytes = 80 * 1024
        out.append(((pre, params, post), kern, count, param_lines))
    return out


def _tile_launcher(kern, p, phases, ptrs, out, pipelined=0, smem_kib=80, params=None):
    """A function issuing one tile_phases kernel (or a start-up variant of
    it, params: its extra parameter count) per pointer in ptrs, p blocks
    of 4 warps each loading `phases` 32 KiB tiles, on PyTorch's current
    stream."""
    import cupy as cp

    chunks = 128 * 128 * 2 // 16
    tail = () if params is None else (cp.uint32(0),) + tuple(
        cp.uint32((2654435761 * (i + 1)) & 0xffffffff) for i in range(params))

    def run():
        with cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            for ptr in ptrs:
                kern((p,), (128,), (cp.uint64(ptr), cp.uint64(out.data_ptr()), cp.int32(phases), cp.int32(chunks),
                                    cp.int32(pipelined)) + tail, shared_mem=smem_kib * 1024)
    return run


def micro_startup(m, quick, rotate_bytes):
    """What a split-KV block runs besides its loads (part startup):
    measure.py's tile_phases kernel (dependent mode, 80 KiB of shared
    memory, 4 warps, 2 tiles of 32 KiB) with straight-line arithmetic in
    front of its first cp.async, extra kernel parameters read before it,
    and arithmetic after its last tile (STARTUP_VARIANTS), over grids of
    one wave or more. Each variant is built with nvcc and its SASS counted
    with cuobjdump (validation/sass.py); part startup-sass lets Nsight
    Compute count what each warp executes, the axis a library kernel's own
    listing is placed on. Replayed in a CUDA graph over rotating buffers,
    as the attention rows are, so the instruction and constant caches are
    as warm or cold as they are for them. Primitives only; never an
    attention kernel's timing."""
    log("micro: code a block runs before its first tile and after its last")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    tile = 128 * 128 * 2
    variants = [(0, 0, 0), (256, 0, 0), (0, 64, 0), (0, 0, 256)] if quick else STARTUP_VARIANTS
    progs = [64, 2 * sms] if quick else [32, 64, 128, sms, 2 * sms, 4 * sms]
    for (pre, params, post), kern, count, param_lines in _startup_kernels(variants):
        cases = [(2, p) for p in progs]
        if not quick and params == 0 and post == 0 and pre in (0, 512):
            cases += [(16, p) for p in (128, 2 * sms)]  # does the start-up add the same over a long walk?
        for phases, p in cases:
            per = phases * tile
            ns = n_sets(p * per, rotate_bytes)
            buf = torch.randn(ns * p * per // 2, device="cuda", dtype=torch.float16)
            out = torch.empty(p * 128 * 4, device="cuda", dtype=torch.float32)
            run = _tile_launcher(kern, p, phases, [buf.data_ptr() + i * p * per for i in range(ns)], out, params=params)
            t = attempt(f"{startup_name(pre, params, post)} P={p} phases={phases}",
                        lambda run=run, ns=ns: time_pass(run, ns, graph=True, min_n=5, max_n=20))
            if t is not None:
                m.row("startup", f"programs={p};phases={phases};kernel={startup_name(pre, params, post)};pre_lines={pre};"
                      f"params={params};post_lines={post};static_pre={count};param_lines={param_lines};warps=4;smem_kib=80",
                      "graph", p * per, t)
            del buf, out
    torch.cuda.empty_cache()


def startup_once():
    """Part startup-sass: each start-up variant launched once, eagerly, at
    2 x SMs blocks of one tile each, for Nsight Compute's source page to
    count the instructions each warp executes before its wait and after it
    (ncu_probe.py --block-code). One tile, because the listing counts by
    instruction: with two, the loop's wait is one instruction for both
    tiles and what runs after it holds the second tile's issue; with one,
    what follows the wait is exactly what follows a block's last tile at
    any count (the last tile's sum, the code after it, the write), and
    what precedes it what precedes its first."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    p, tile = 2 * sms, 128 * 128 * 2
    buf = torch.randn(p * tile // 2, device="cuda", dtype=torch.float16)
    out = torch.empty(p * 128 * 4, device="cuda", dtype=torch.float32)
    for (pre, params, post), kern, _, _ in _startup_kernels(STARTUP_VARIANTS):
        _tile_launcher(kern, p, 1, [buf.data_ptr()], out, params=params)()
    torch.cuda.synchronize()


# The fused SDPA kernels whose query tile measure.py's tile part times:
# (bwsim's kernel name, SDPA backend name, query rows per thread block).
# FA2's non-split forward kernel on sm90 tiles 128 query rows x 64 keys;
# PyTorch's memory-efficient (CUTLASS) kernel 64 x 128.
TILE_KERNELS = (("flash2", "FLASH_ATTENTION", 128), ("mem-efficient", "EFFICIENT_ATTENTION", 64))
TILE_Q_TILES_PER_HEAD = 4


def micro_tile(m, quick):
    """Fused attention kernels' query-tile throughput, on prefill calls whose
    tiles are all real query rows: B 1, H heads of TILE_Q_TILES_PER_HEAD
    query tiles each (the tiles of a head share its K and V through L2, so
    the call is bound by the tile's arithmetic, not by memory), Sk keys,
    D 128, fp16, no mask. One thread block per query tile: blocks =
    H x tiles per head. A decode call pads its one query (or its GQA group)
    to the same tile, so it does the same work per block; bwsim prices it
    from this table (unit attention-tile). Never on decode shapes' timings."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    log("micro: fused attention query-tile throughput (prefill, all tile rows real)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    D = 128
    keys_list = [128, 1024, 16384] if quick else [128, 256, 512, 1024, 4096, 16384, 65536]
    for kname, backend, rows in TILE_KERNELS:
        be = getattr(SDPBackend, backend)
        # FA2 runs its non-split kernel only when heads x 64-row blocks fill
        # 0.8 x 2 x SMs; below that it splits the keys, another kernel.
        blocks_list = [sms, 4 * sms, 16 * sms] if quick else [32, sms, 2 * sms, 4 * sms, 8 * sms, 16 * sms]
        if kname == "flash2":
            blocks_list = [b for b in blocks_list if b >= sms]
        for blocks in blocks_list:
            H = blocks // TILE_Q_TILES_PER_HEAD
            Sq = rows * TILE_Q_TILES_PER_HEAD
            for Sk in keys_list:
                if H * Sk * D * 2 * 2 > 24e9:
                    continue
                gen = torch.Generator(device="cuda").manual_seed(blocks * 131 + Sk)
                q = torch.randn(1, H, Sq, D, device="cuda", dtype=torch.float16, generator=gen)
                k = torch.randn(1, H, Sk, D, device="cuda", dtype=torch.float16, generator=gen)
                v = torch.randn(1, H, Sk, D, device="cuda", dtype=torch.float16, generator=gen)

                def run():
                    with sdpa_kernel(be):
                        return F.scaled_dot_product_attention(q, k, v)

                label = ""
                if Sk == keys_list[0]:
                    # Which kernel ran (FA2 could have split the keys).
                    from torch.profiler import ProfilerActivity, profile
                    run()
                    torch.cuda.synchronize()
                    with profile(activities=[ProfilerActivity.CUDA]) as prof:
                        run()
                        torch.cuda.synchronize()
                    names = sorted({e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA})
                    label = ";ran=" + "|".join(n.split("<")[0].split("(")[0].replace("void ", "") for n in names)
                macs = blocks * rows * Sk * D * 2
                t = time_pass(run, 1, graph=True, min_n=5, max_n=20)
                m.row("attn_tile", f"kernel={kname};blocks={blocks};rows={rows};keys={Sk};head_dim={D};macs={macs}{label}",
                      "graph", 0, t)
                log(f"    {kname} {blocks} blocks x {Sk} keys: {2 * macs / t[0] / 1e12:.1f} TFLOP/s"
                    f" ({2 * macs / t[0] / min(blocks, sms) / 1e12:.3f} per busy SM)")
                del q, k, v
            torch.cuda.empty_cache()


def micro_topk_softmax(m, quick, rotate_bytes):
    log("micro: torch.topk and softmax over SparQ's sizes")
    rows_list = [32, 512] if quick else [32, 128, 512, 2048]
    # top-r over the head dimension (fp16 |q|, D = 128)
    for rows in rows_list:
        for r in ([32] if quick else [16, 32, 64]):
            ns = n_sets(rows * 128 * 2, rotate_bytes)
            xs = [torch.randn(rows, 128, device="cuda", dtype=torch.float16) for _ in range(ns)]

            def run():
                for x in xs:
                    torch.topk(x, r, dim=-1)

            for graph in (False, True):
                m.row("topk_d", f"rows={rows};cols=128;k={r};dtype=fp16", "graph" if graph else "eager",
                      rows * 128 * 2, time_pass(run, ns, graph=graph))
    for rows in rows_list:
        for S in ([4096, 32768] if quick else [1024, 4096, 16384, 65536, 131072]):
            if rows * S * 4 > (1 << 30):
                continue
            ns = n_sets(rows * S * 4, rotate_bytes)
            xs = [torch.randn(rows, S, device="cuda", dtype=torch.float32) for _ in range(ns)]
            xh = [torch.randn(rows, S, device="cuda", dtype=torch.float16) for _ in range(ns)]
            ks = [128] if (quick or S != 16384) else [64, 128, 256, 512]
            for k in ks:
                def run():
                    for x in xs:
                        torch.topk(x, k, dim=-1)

                for graph in (False, True):
                    m.row("topk_s", f"rows={rows};cols={S};k={k};dtype=fp32", "graph" if graph else "eager",
                          rows * S * 4, time_pass(run, ns, graph=graph))

            def sm():
                for x in xh:
                    torch.softmax(x, dim=-1, dtype=torch.float32)

            for graph in (False, True):
                m.row("softmax", f"rows={rows};cols={S};in=fp16;out=fp32", "graph" if graph else "eager",
                      rows * S * 6, time_pass(sm, ns, graph=graph))
            del xs, xh
    torch.cuda.empty_cache()


def micro_torch_gather(m, quick, rotate_bytes):
    """torch.gather as a primitive, on synthetic fp16 tensors (never SparQ's
    own pipeline): `rows` picks 32 of 128 rows of length S per slice (the
    index expanded along S: K stored transposed), `cols` picks 32 of 128
    elements in each of S rows (K stored once), `sel` picks k = 128 of S
    rows of 128 elements (a row gather). Also the fp16 -> fp32 cast copy and
    batched fp32 / fp16 GEMV (one query row against [S, 128]), the
    primitives of PyTorch's math attention path."""
    log("micro: torch.gather, casts and GEMV")
    Ns = [32, 512] if quick else [32, 512, 2048]
    Ss = [4096] if quick else [1024, 4096, 16384]
    for N in Ns:
        for S in Ss:
            src_bytes = N * 128 * S * 2
            if src_bytes > (2 << 30):
                continue
            ns = n_sets(src_bytes, rotate_bytes, max_sets=8)
            for pattern in ("rows", "cols", "sel"):
                if pattern == "rows":
                    srcs = [torch.randn(N, 128, S, device="cuda", dtype=torch.float16) for _ in range(ns)]
                    idx = [torch.randint(0, 128, (N, 32, 1), device="cuda").expand(N, 32, S) for _ in range(ns)]
                    dim, out_elems = 1, N * 32 * S
                elif pattern == "cols":
                    srcs = [torch.randn(N, S, 128, device="cuda", dtype=torch.float16) for _ in range(ns)]
                    idx = [torch.randint(0, 128, (N, 1, 32), device="cuda").expand(N, S, 32) for _ in range(ns)]
                    dim, out_elems = 2, N * S * 32
                else:
                    srcs = [torch.randn(N, S, 128, device="cuda", dtype=torch.float16) for _ in range(ns)]
                    idx = [torch.randint(0, S, (N, 128, 1), device="cuda").expand(N, 128, 128) for _ in range(ns)]
                    dim, out_elems = 1, N * 128 * 128

                def run(srcs=srcs, idx=idx, dim=dim):
                    for x, i in zip(srcs, idx):
                        torch.gather(x, dim, i)

                m.row("tgather", f"pattern={pattern};N={N};S={S};elems={out_elems}", "graph",
                      out_elems * 2, time_pass(run, ns, graph=True))
                del srcs, idx
            # The math path's primitives over the same [N, S, 128] K.
            ks = [torch.randn(N, S, 128, device="cuda", dtype=torch.float16) for _ in range(ns)]

            def cast(ks=ks):
                for x in ks:
                    x.to(torch.float32)

            m.row("cast", f"fp16->fp32;N={N};S={S};elems={N * S * 128}", "graph", N * S * 128 * 6,
                  time_pass(cast, ns, graph=True))
            for dt, name in ((torch.float16, "fp16"), (torch.float32, "fp32")):
                kk = [x.to(dt) for x in ks]
                qs = [torch.randn(N, 1, 128, device="cuda", dtype=dt) for _ in range(ns)]

                def gemv(kk=kk, qs=qs):
                    for q, x in zip(qs, kk):
                        torch.matmul(q, x.transpose(-1, -2))

                m.row("gemv", f"{name};N={N};S={S}", "graph", N * S * 128 * kk[0].element_size(),
                      time_pass(gemv, ns, graph=True))
                del kk, qs
            del ks
            torch.cuda.empty_cache()


def micro_bmm(m, quick, rotate_bytes):
    """cuBLAS's batched matrix products as PyTorch's unfused attention calls
    them, on synthetic fp16 tensors (never an attention call): `qk` is
    torch.baddbmm of P products [M, D] x [D, N] whose right operand is a
    transposed [N, D] view (the scores against K), `pv` is torch.bmm of
    P products [M, N] x [N, D] (probabilities times V), D = 128, over P 8 to
    2048 products, M 1, 4 and 8 query rows and N 128 to 128K positions.
    cuBLAS picks its kernel, and with it the number of thread blocks, by
    shape: at P 8, M 4 its q K^T kernel runs 16 blocks (h100-ncu.csv), so a
    product's time is a per-shape table, like torch.topk's."""
    log("micro: batched matrix products (cuBLAS)")
    D = 128
    Ms = [4] if quick else [1, 4, 8]
    Ps = [8, 32] if quick else [8, 32, 128, 512, 2048]
    Ns = [4096] if quick else [128, 1024, 4096, 16384, 32768, 131072]
    scale = 1.0 / math.sqrt(D)
    for M in Ms:
        for P in Ps:
            for N in Ns:
                kv = P * N * D * 2
                if kv > 17.2e9:
                    continue
                ns = n_sets(kv + 2 * P * M * N * 2, rotate_bytes, max_sets=8)
                torch.manual_seed(P * 131 + N + M)
                ks = [torch.randn(P, N, D, device="cuda", dtype=torch.float16) for _ in range(ns)]
                qs = [torch.randn(P, M, D, device="cuda", dtype=torch.float16) for _ in range(ns)]
                ps = [torch.softmax(torch.randn(P, M, N, device="cuda", dtype=torch.float16), dim=-1)
                      for _ in range(ns)]
                base = torch.empty(P, M, N, device="cuda", dtype=torch.float16)

                def qk(ks=ks, qs=qs, base=base):
                    for q, k in zip(qs, ks):
                        torch.baddbmm(base, q, k.transpose(1, 2), beta=0.0, alpha=scale)

                def pv(ks=ks, ps=ps):
                    for p, v in zip(ps, ks):
                        torch.bmm(p, v)

                for form, run in (("qk", qk), ("pv", pv)):
                    t = attempt(f"bmm {form} M={M} P={P} N={N}", lambda run=run: time_pass(run, ns, graph=True))
                    if t is not None:
                        m.row("bmm", f"form={form};M={M};P={P};N={N};D={D}", "graph", kv, t)
                del ks, qs, ps, base
                torch.cuda.empty_cache()


# --------------------------------------------------------------------------
# Attention measurements

HEADER = ["device", "method", "impl", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k", "k_layout",
          "dtype", "seconds", "placement", "variant", "seconds_min", "seconds_max", "samples", "sets",
          "host_issue_seconds"]


class Results:
    def __init__(self, path, device):
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f)
        self.device = device
        self.rows = []

    def add(self, method, impl, x, r, k, layout, variant, t, sets, host=None):
        med, lo, hi, n = t
        row = [self.device, method, impl, x.B, x.H, x.Hkv, x.D, x.S, r or "", k or "", layout or "", "fp16",
               f"{med:.6e}", "", variant, f"{lo:.6e}", f"{hi:.6e}", n, sets,
               "" if host is None else f"{host:.6e}"]
        self.w.writerow(row)
        self.f.flush()
        self.rows.append(row)
        kv = 2 * x.B * x.Hkv * x.S * x.D * 2
        extra = f" kv-bw {kv / med / 1e12:5.2f} TB/s" if method == "dense" else ""
        log(f"  {method:5s} {variant:22s} B={x.B:<3d} H={x.H}/{x.Hkv} S={x.S:<6d} "
            f"{'' if r is None else f'r={r} k={k} {layout}':20s} {med * 1e6:10.1f} us{extra}")


BROKEN = {}
CHECK_COMPILE = set()


def attempt(name, fn):
    """Run fn, logging and remembering failures by name so a broken variant is
    not retried on every shape."""
    if name in BROKEN:
        return None
    try:
        return fn()
    except torch.cuda.OutOfMemoryError as e:
        log(f"  {name}: out of memory ({str(e).splitlines()[0][:120]})")
        torch.cuda.empty_cache()
        return None
    except Exception as e:  # noqa: BLE001
        msg = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        log(f"  {name}: FAILED {msg}")
        LOG.write(traceback.format_exc() + "\n")
        BROKEN[name] = msg
        torch.cuda.empty_cache()
        return None


def check_all(res_log):
    """Correctness of every implementation on fresh random inputs, against
    float32 references (METHOD.md). Returns {variant: error}."""
    out = {}
    torch.manual_seed(1234)
    for (H, Hkv) in ((8, 8), (8, 2)):
        x = Inputs(2, H, Hkv, 2048, 128, torch.float16, kt=True)
        ref = dense_reference(x)
        for name, be in sdpa_backends():
            def c(be=be):
                y = dense_sdpa(x, be)()
                return relerr(y.reshape(x.B, x.H, x.D), ref)
            e = attempt(f"check {name} g={H // Hkv}", c)
            out[f"{name} g={H // Hkv}"] = e
        e = attempt("check torch-matmul", lambda: relerr(dense_torch(x)().reshape(x.B, x.H, x.D), ref))
        out[f"torch-matmul g={H // Hkv}"] = e
        r, k = 32, 128
        lh_ref, i1_ref = sparq_reference(x, r, k)
        for twice in (True, False):
            lay = "twice" if twice else "once"
            for split in (False, True):
                name = f"triton{'-split' if split else ''} {lay} g={H // Hkv}"

                def c(twice=twice, split=split):
                    y, i2, alpha, lh, i1, _ = sparq_triton(x, r, k, twice, split, debug=True)()
                    same_i1 = bool((torch.sort(i1, -1).values == torch.sort(i1_ref, -1).values).all())
                    e_lh = relerr(lh, lh_ref)
                    e_y = relerr(y, exact_given(x, i2, alpha))
                    return max(e_lh, e_y) if same_i1 else float("inf")
                out[name] = attempt("check " + name, c)

            def c2(twice=twice):
                y, i2, alpha = sparq_torch(x, r, k, twice, debug=True)()
                return relerr(y, exact_given(x, i2, alpha))
            out[f"torch-gather {lay} g={H // Hkv}"] = attempt(f"check torch-gather {lay}", c2)
        # The two SparQ implementations against each other (selection ties may
        # differ: loose bound).
        def c3():
            a = sparq_triton(x, r, k, True, False)()
            b = sparq_torch(x, r, k, True)().reshape(x.B, x.H, x.D)
            return relerr(a, b)
        out[f"triton vs torch-gather g={H // Hkv}"] = attempt("check triton vs torch", c3)
        if H == Hkv and "compile" in CHECK_COMPILE:
            def c4():
                a = sparq_compiled(x, r, k, True)()
                b = sparq_torch(x, r, k, True)().reshape(x.B, x.H, x.D)
                return relerr(a.reshape(x.B, x.H, x.D), b)
            out[f"torch-compile vs torch-gather g={H // Hkv}"] = attempt("check torch-compile", c4)
        del x
    for kname, e in out.items():
        ok = e is not None and e == e and e < (5e-2 if "vs" in kname else 1e-2)
        res_log.append(f"# check {kname}: rel L2 error {e if e is None else f'{e:.2e}'} {'ok' if ok else 'FAILED'}")
        log(f"check {kname:36s} {e if e is None else f'{e:.2e}'} {'ok' if ok else 'FAILED'}")
    torch.cuda.empty_cache()
    return out


def shape_seed(B, S, Hkv):
    """The random seed of a shape's inputs, the same in every part."""
    return B * 1000003 + S * 31 + Hkv


def shape_inputs(part, B, H, Hkv, S, D, args):
    """(x, kv): one seeded input set for a part's shape, with Kt where K, V
    and Kt fit in --max-kv-bytes, and kv the bytes of one of K, V, Kt; x is
    None (and the skip logged) when K and V alone do not fit."""
    kv = B * Hkv * S * D * 2
    if 2 * kv > args.max_kv_bytes:
        log(f"skip {part} B={B} H={H}/{Hkv} S={S}: K+V {2 * kv / 1e9:.1f} GB over --max-kv-bytes")
        return None, kv
    torch.manual_seed(shape_seed(B, S, Hkv))
    return Inputs(B, H, Hkv, S, D, torch.float16, kt=3 * kv <= args.max_kv_bytes), kv


def measure_shape(res, B, H, Hkv, S, D, pairs_rk, args, dense=True, sparq_variants=None, layouts=("twice", "once")):
    kv = B * Hkv * S * D * 2  # one of K, V, Kt
    if 3 * kv > args.max_kv_bytes:
        if 2 * kv > args.max_kv_bytes:
            log(f"skip B={B} H={H}/{Hkv} S={S}: K+V {2 * kv / 1e9:.1f} GB over --max-kv-bytes")
            return
    ns = n_sets(3 * kv, args.rotate_bytes)
    torch.manual_seed(shape_seed(B, S, Hkv))
    xs = [Inputs(B, H, Hkv, S, D, torch.float16) for _ in range(ns)]
    x0 = xs[0]

    def timed(method, impl, variant, mk, r=None, k=None, layout=None):
        fns = [mk(x) for x in xs]

        def run():
            for f in fns:
                f()

        for graph in (False, True):
            vname = variant + ("+graph" if graph else "")
            name = f"{vname} B={B} S={S} g={H // Hkv} r={r} k={k} {layout}"
            t = attempt(name, lambda: time_pass(run, len(fns), graph=graph))
            if t is None:
                continue
            # The host's issue time of this very call, in this process,
            # right after its eager timing and under the same collector
            # setting (the host part's figure, free_samples, taken per row).
            host = None if graph else attempt("host " + name, lambda: free_loop(fns[0], CHECK_CALLS, CHECK_SAMPLES))
            res.add(method, impl, x0, r, k, layout, vname, t, len(fns), host)

    if dense:
        for name, be in sdpa_backends():
            if name == "sdpa-math" and 2 * kv > (8 << 30):
                continue
            if name == "sdpa-efficient" and H != Hkv:
                continue  # no GQA support in this backend (it raises)  # math materialises repeated K/V for GQA and fp32 scores: slow, skip large
            timed("dense", "unfused" if name == "sdpa-math" else "fused", name, lambda x, be=be: dense_sdpa(x, be))
        timed("dense", "unfused", "torch-matmul", dense_torch)
    variants = sparq_variants or ["torch-gather", "triton", "triton-split"]
    for layout in layouts:
        twice = layout == "twice"
        if twice:
            if 3 * kv > args.max_kv_bytes:
                log(f"skip K-twice at B={B} H={H}/{Hkv} S={S}: K+V+Kt {3 * kv / 1e9:.1f} GB over --max-kv-bytes")
                continue
            for x in xs:
                x.add_kt()
        for (r, k) in pairs_rk:
            for v in variants:
                timed("sparq", "unfused", v, sparq_maker(v, r, k, twice), r, k, layout)
    del xs, x0
    torch.cuda.empty_cache()


def measure_stages(m, shapes, args):
    """Each stage of the Triton SparQ pipeline and of the unfused dense
    kernel timed alone (CUDA graph, rotating sets), to compare with bwsim's
    per-stage predictions."""
    for (B, H, Hkv, S) in shapes:
        kv = B * Hkv * S * 128 * 2
        if 3 * kv > args.max_kv_bytes:
            continue
        ns = n_sets(3 * kv, args.rotate_bytes)
        torch.manual_seed(B * 7 + S)
        xs = [Inputs(B, H, Hkv, S, 128, torch.float16, kt=True) for _ in range(ns)]
        groups = [("dense torch-matmul", [dense_torch(x, stages=True) for x in xs])]
        for twice in (True, False):
            for split in (False, True):
                lay = "twice" if twice else "once"
                groups.append((f"sparq triton{'-split' if split else ''} {lay}",
                               [sparq_triton(x, 32, 128, twice, split, stages=True) for x in xs]))
        for name, dicts in groups:
            for st in dicts[0]:
                def run(st=st, dicts=dicts):
                    for d in dicts:
                        d[st]()
                t = attempt(f"stage {name} {st}", lambda: time_pass(run, len(dicts), graph=True))
                if t is not None:
                    m.row("stage", f"{name};B={B};H={H};Hkv={Hkv};S={S};r=32;k=128;stage={st}", "graph", 0, t)
        del xs, groups
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------
# Host dispatch: the CPU time of one eager call, with the GPU held busy

HOST_HEADER = ["variant", "method", "k_layout", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k", "dtype",
               "host_seconds", "host_min", "host_max", "samples", "kernels"]

# (B, H, Hkv, S) spanning the grid: batch 1 to 64, S 1K to 128K, MHA and GQA.
HOST_SHAPES = [(1, 32, 8, 1024), (1, 32, 32, 16384), (16, 32, 32, 16384), (64, 32, 32, 4096),
               (4, 32, 8, 131072), (64, 32, 8, 16384)]

HOST_LAUNCHES = 500  # pending GPU operations per timed loop, well under the launch queue's ~1000
HOST_MIN_SLEEP_S = 0.05

HOST_METHOD = ("# host_seconds: CPU wall time to issue one eager call: time.perf_counter around N back-to-back calls"
               f" (N = min(20, {HOST_LAUNCHES} / kernels), so the launch queue never fills), / N, issued right after"
               " torch.cuda.synchronize with the GPU idle (free_samples: unless a call waits for the device, see"
               " '# syncs' lines, the device never throttles N calls); 3 warm-up calls first (torch.compile,"
               " Triton JIT, cuDNN plans), Python's GC off in the loop; median, min, max over `samples` repeats."
               " kernels: GPU operations per call (kernels + memcpy + memset), counted with torch.profiler over 3 calls.")


def sleep_cycles_per_s():
    """Cycles per second of torch.cuda._sleep's spin loop (the SM clock), timed
    with CUDA events after a first spin that lets the clock rise."""
    torch.cuda._sleep(int(2e8))
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    torch.cuda._sleep(int(4e8))
    e1.record()
    e1.synchronize()
    return 4e8 / (e0.elapsed_time(e1) / 1e3)


def profiled_events(fn, calls):
    """torch.profiler's events (CPU and CUDA) over `calls` back-to-back
    calls of fn and a final synchronize, and the device's among them in
    start order."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    evs = list(prof.events())
    dev = sorted((e for e in evs if str(e.device_type).endswith("CUDA")), key=lambda e: e.time_range.start)
    return evs, dev


def device_ops(fn, calls=3):
    """What `calls` calls of fn put on the GPU, per call: operations (kernels,
    memcpy, memset), of which memcpy and memset, CUDA runtime calls that wait
    for the device (the profiler's own and our final synchronize included:
    measure_host takes off those of an empty fn), and the operations' names
    in issue order for one call. From torch.profiler (CUPTI)."""
    evs, dev = profiled_events(fn, calls)
    names = [e.name for e in dev]
    waits = ("cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cudaMemcpy", "cudaMemset")
    syncs = sum(1 for e in evs if str(e.device_type).endswith("CPU") and e.name in waits)
    return {
        "ops": len(names) / calls,
        "memcpy": sum(n.startswith("Memcpy") for n in names) / calls,
        "memset": sum(n.startswith("Memset") for n in names) / calls,
        "syncs": syncs / calls,
        "names": names[:len(names) // calls],
    }


def host_sample(fn, n, cycles):
    """Seconds to issue n calls of fn while the GPU spins in
    torch.cuda._sleep(cycles), and whether it was still busy after them."""
    done = torch.cuda.Event()
    torch.cuda.synchronize()
    torch.cuda._sleep(cycles)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t = time.perf_counter() - t0
    done.record()
    busy = not done.query()
    torch.cuda.synchronize()
    return t, busy


def free_samples(fn, n, reps):
    """Host seconds per call, `reps` samples of n back-to-back calls of fn,
    each issued right after a device synchronize with the GPU idle: n times
    the call's GPU operations stay well under the launch queue, so unless a
    call waits for the device (device_ops counts those), the device never
    throttles the host. validation/h100-hostcheck.csv: over 30 host-bound
    cases this figure is within -7 ... +4 % of the eager timing (10th-90th
    percentile), where issuing behind a torch.cuda._sleep spin
    (host_samples) reads a median 13 % high (up to 61 %)."""
    out = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t0) / n)
        torch.cuda.synchronize()
    finally:
        gc.enable()
    return out


def host_time(fn, reps, base_syncs):
    """Host seconds per call of fn (median, min, max over the valid samples)
    and what it puts on the GPU (device_ops, less base_syncs: those counted
    for an empty fn)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ops = device_ops(fn)
    ops["syncs"] = max(0.0, ops["syncs"] - base_syncs)
    n = int(max(4, min(20, HOST_LAUNCHES // max(ops["ops"], 1))))
    return {"samples": free_samples(fn, n, reps), "n": n, **ops}


def host_samples(fn, n, cycles_per_s, reps, min_sleep_s=HOST_MIN_SLEEP_S):
    """Host seconds per call of fn over `reps` samples of n back-to-back
    calls, each issued while torch.cuda._sleep holds the GPU (host_sample);
    a sample counts only if the GPU was still busy after the calls and they
    took under half the spin. n * (GPU operations per call) must stay well
    under the launch queue (HOST_LAUNCHES)."""
    # The sleep: ten times the same loop issued with the GPU idle (not
    # throttled either while the queue stays short, unless a call waits for
    # the device), at least min_sleep_s.
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    free = time.perf_counter() - t0
    torch.cuda.synchronize()
    sleep_s = min(0.5, max(min_sleep_s, 10 * free))
    samples, bad, last = [], 0, None
    gc.collect()
    gc.disable()
    try:
        while len(samples) < reps and bad < 3:
            t, busy = host_sample(fn, n, int(sleep_s * cycles_per_s))
            last = (t, busy, sleep_s)
            if busy and t < 0.5 * sleep_s:
                samples.append(t / n)
            elif t < 0.5 * sleep_s:
                # The GPU finished before the short loop did: the spin ran
                # shorter than planned. Lengthen it and try again (3 times at most).
                bad += 1
                sleep_s = min(2.0, 4 * sleep_s)
            else:
                # The loop lasted as long as the spin: a call waits for the
                # device (or the launch queue filled), and a longer spin cannot
                # help; after valid samples, a stall of the host (3 at most).
                bad += 1
                if not samples:
                    break
    finally:
        gc.enable()
    return {"samples": samples, "n": n, "sleep_s": sleep_s, "free_s": free / n, "bad": bad, "last": last}


# Calls per sample of the hostcheck part's short loops: at most ~60 GPU
# operations a call (torch-gather), so 8 calls stay far under the launch
# queue without a profiler pass per implementation.
CHECK_CALLS = 8
CHECK_SAMPLES = 5
SLEEP_RATE = []  # torch.cuda._sleep cycles per second, measured once


def eager_cases(x, kv, r, k, dense, sparq_variants, layouts, part):
    """The implementations a part runs on inputs x (one of K, V, Kt is kv
    bytes): [(variant, method, k_layout, builder)]: with dense, every SDPA
    backend that takes the shape and torch-matmul; then sparq_variants in
    each K layout, K twice only where x has Kt."""
    cases = []
    if dense:
        for name, be in sdpa_backends():
            if name == "sdpa-efficient" and x.H != x.Hkv:
                continue  # no GQA in this backend
            if name == "sdpa-math" and 2 * kv > (8 << 30):
                continue  # as the grid
            cases.append((name, "dense", "", lambda be=be: dense_sdpa(x, be)))
        cases.append(("torch-matmul", "dense", "", lambda: dense_torch(x)))
    for layout in layouts:
        if layout == "twice" and x.Kt is None:
            log(f"skip {part} K-twice at B={x.B} H={x.H}/{x.Hkv} S={x.S}: K+V+Kt over --max-kv-bytes")
            continue
        for v in sparq_variants:
            cases.append((v, "sparq", layout, lambda v=v, tw=(layout == "twice"): sparq_maker(v, r, k, tw)(x)))
    return cases


def measure_host(args, head):
    """The `host` part: host_time of every eager implementation at
    HOST_SHAPES, r = 32, k = 128, D = 128, fp16, written to --out/host.csv."""
    path = os.path.join(args.out, "host.csv")
    fh = open(path, "w", newline="")
    for line in head:
        fh.write(line + "\n")
    fh.write(HOST_METHOD + "\n")
    base = device_ops(lambda: None)["syncs"]
    fh.write(f"# host: the profiler counts {base:g} waits"
             " for the device per call of an empty function, taken off each variant's count\n")
    w = csv.writer(fh)
    w.writerow(HOST_HEADER)
    fh.flush()
    log(f"host: empty fn: {base:g} waits per call")
    reps = 3 if args.quick else 7
    shapes = HOST_SHAPES[:2] if args.quick else HOST_SHAPES
    r, k, D = 32, 128, 128
    table = {}  # (variant, layout) -> [(shape, median, kernels)]
    named = set()

    def one(variant, method, layout, x, build):
        res = attempt(f"host {variant} {layout} B={x.B} H={x.H}/{x.Hkv} S={x.S}",
                      lambda: host_time(build(), reps, base))
        if res is None:
            return
        ops = res["ops"]
        kern = str(int(ops)) if ops == int(ops) else f"{ops:.2f}"
        row = [variant, method, layout, x.B, x.H, x.Hkv, x.D, x.S, r if method == "sparq" else "",
               k if method == "sparq" else "", "fp16"]
        s = res["samples"]
        shape = f"B={x.B} H={x.H}/{x.Hkv} S={x.S}"
        if s:
            row += [f"{statistics.median(s):.6e}", f"{min(s):.6e}", f"{max(s):.6e}", len(s), kern]
            table.setdefault((variant, layout), []).append((shape, statistics.median(s), kern))
        else:
            row += ["", "", "", 0, kern]
        if res["syncs"]:
            fh.write(f"# syncs: {variant} {layout} {shape}: {res['syncs']:g} host synchronizations per call\n")
        w.writerow(row)
        fh.flush()
        log(f"  host {variant:14s} {layout:5s} {shape:24s} "
            + (f"{statistics.median(s) * 1e6:8.1f} us [{min(s) * 1e6:.1f}, {max(s) * 1e6:.1f}] x{len(s)}"
               if s else "  invalid") +
            f"  {kern} ops ({res['memcpy']:g} memcpy, {res['memset']:g} memset, {res['syncs']:g} syncs)"
            f"  N={res['n']}")
        key = (variant, layout, x.g)
        if key not in named:
            named.add(key)
            log(f"    ops of one call ({' '.join(filter(None, (variant, layout)))} g={x.g}): "
                + " | ".join(n[:80] for n in res["names"]))

    # Pass 1 everything but torch.compile; pass 2 torch.compile, whose compile
    # time per shape is the long part, so the budget cuts it first.
    for compiled in (False, True):
        for (B, H, Hkv, S) in shapes:
            if compiled and time.time() - T0 > args.budget_s:
                log(f"budget reached: host torch-compile stops before B={B} H={H}/{Hkv} S={S}")
                break
            x, kv = shape_inputs("host", B, H, Hkv, S, D, args)
            if x is None:
                continue
            log(f"host shape B={B} H={H}/{Hkv} S={S}{' torch.compile' if compiled else ''}")
            if compiled:
                # torch-compile is measured with K twice only, as in the grid.
                cases = eager_cases(x, kv, r, k, False, ["torch-compile"], ("twice",), "host")
            else:
                cases = eager_cases(x, kv, r, k, True, ["torch-gather", "triton", "triton-split"],
                                    ("twice", "once"), "host")
            # Every implementation of the shape runs (compiles, JITs, plans)
            # before any is timed, so no first-time work lands near a sample.
            for (v, method, layout, build) in cases:
                attempt(f"host warm-up {v} {layout} B={B} H={H}/{Hkv} S={S}",
                        lambda build=build: [f() for f in [build()] * 3])
            torch.cuda.synchronize()
            for (v, method, layout, build) in cases:
                one(v, method, layout, x, build)
            del x, cases
            torch.cuda.empty_cache()
    fh.close()
    log("host seconds per call, across shapes (median of each shape's median):")
    log(f"  {'variant':14s} {'layout':6s} {'median':>9s} {'min':>9s} {'max':>9s} shapes kernels")
    for (v, lay), pts in table.items():
        meds = [p[1] for p in pts]
        log(f"  {v:14s} {lay:6s} {statistics.median(meds) * 1e6:7.1f}us {min(meds) * 1e6:7.1f}us "
            f"{max(meds) * 1e6:7.1f}us {len(pts):6d} {','.join(sorted(set(p[2] for p in pts)))}")


# --------------------------------------------------------------------------
# Host-time probe: which way of timing the host's issue explains the eager
# timings? Five figures per implementation and shape, taken back to back on
# the same rotating inputs as the grid.

HOSTCHECK_SHAPES = [(1, 32, 8, 1024), (1, 32, 32, 1024), (4, 32, 8, 4096), (1, 32, 32, 16384), (16, 32, 32, 4096)]
HOSTCHECK_HEADER = ["variant", "method", "k_layout", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k", "sets",
                    "eager_seconds", "graph_seconds", "held_short", "free_short", "free_long", "free_long_calls"]


def free_loop(fn, n, reps):
    """Median of free_samples."""
    return statistics.median(free_samples(fn, n, reps))


def measure_hostcheck(args, head):
    """The `hostcheck` part, written to --out/hostcheck.csv: per eager
    implementation and shape, the grid's eager timing (CUDA events), its
    CUDA-graph timing, and the host's issue time three ways: held_short
    (CHECK_CALLS calls while torch.cuda._sleep holds the GPU: the host
    part's method before session 4), free_short (the same calls with the
    GPU idle at the start), free_long (a ~40 ms loop with the GPU idle at the start: the
    host's pace once warm; throttled by the device when the call is
    device-bound and the launch queue fills)."""
    path = os.path.join(args.out, "hostcheck.csv")
    fh = open(path, "w", newline="")
    for line in head:
        fh.write(line + "\n")
    w = csv.writer(fh)
    w.writerow(HOSTCHECK_HEADER)
    if not SLEEP_RATE:
        SLEEP_RATE.append(sleep_cycles_per_s())
    r, k, D = 32, 128, 128
    for (B, H, Hkv, S) in HOSTCHECK_SHAPES[:2] if args.quick else HOSTCHECK_SHAPES:
        kv = B * Hkv * S * D * 2
        ns = n_sets(3 * kv, args.rotate_bytes)
        torch.manual_seed(shape_seed(B, S, Hkv))
        xs = [Inputs(B, H, Hkv, S, D, torch.float16, kt=True) for _ in range(ns)]
        cases = eager_cases(xs[0], kv, r, k, True, ["torch-gather", "triton", "triton-split"], ("twice", "once"),
                            "hostcheck")
        for ci, (v, method, layout, _) in enumerate(cases):
            def build(xx, ci=ci):
                return eager_cases(xx, kv, r, k, True, ["torch-gather", "triton", "triton-split"], ("twice", "once"),
                                   "hostcheck")[ci][3]()

            def probe(v=v, method=method, layout=layout, build=build):
                fns = [build(xx) for xx in xs]
                i = [0]

                def one():
                    f = fns[i[0] % len(fns)]
                    i[0] += 1
                    f()

                def run():
                    for f in fns:
                        f()

                eager = time_pass(run, len(fns))[0]
                graph = time_pass(run, len(fns), graph=True)[0]
                held = host_samples(one, CHECK_CALLS, SLEEP_RATE[0], CHECK_SAMPLES, min_sleep_s=0.02)["samples"]
                short = free_loop(one, CHECK_CALLS, CHECK_SAMPLES)
                n_long = int(max(CHECK_CALLS, min(2000, 0.04 / max(short, 1e-6))))
                long_ = free_loop(one, n_long, 3)
                row = [v, method, layout, B, H, Hkv, D, S, r if method == "sparq" else "", k if method == "sparq" else "",
                       len(fns), f"{eager:.6e}", f"{graph:.6e}", f"{statistics.median(held):.6e}" if held else "",
                       f"{short:.6e}", f"{long_:.6e}", n_long]
                w.writerow(row)
                fh.flush()
                log(f"  hostcheck {v:14s} {layout:5s} B={B} H={H}/{Hkv} S={S}: eager {eager * 1e6:7.1f} graph {graph * 1e6:7.1f}"
                    f" held {statistics.median(held) * 1e6 if held else float('nan'):7.1f} free-short {short * 1e6:7.1f}"
                    f" free-long {long_ * 1e6:7.1f} us (x{n_long})")

            attempt(f"hostcheck {v} {layout} B={B} H={H}/{Hkv} S={S}", probe)
        del xs, cases
        torch.cuda.empty_cache()
    fh.close()


# --------------------------------------------------------------------------
# Per-kernel device times: which stage of each implementation takes the time

KERNEL_HEADER = ["variant", "k_layout", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k",
                 "op_index", "op_name", "device_us"]

# (B, H, Hkv, S): the host part's shapes, batch 1 to 64, S 1K to 128K, MHA and GQA.
KERNEL_SHAPES = [(1, 32, 8, 1024), (1, 32, 32, 16384), (64, 32, 32, 4096), (16, 32, 32, 16384),
                 (64, 32, 8, 16384), (4, 32, 8, 131072)]

KERNEL_CALLS = 5
KERNEL_TAG = "bwsim-kernels-call-"

KERNEL_METHOD = ("# method: for each implementation and shape, one input set drawn from N(0, 1) (never zeros); the"
                 " call is built with the builders of the host part, called 3 times (Triton JIT, cuDNN plans) and"
                 " the device synchronized; then torch.profiler (activities CPU + CUDA, CUPTI) records"
                 f" {KERNEL_CALLS} calls, each followed by torch.cuda.synchronize() inside a record_function range"
                 " of its own, so host dispatch never overlaps the next call. The device events (kernels, memcpy,"
                 " memset) are assigned to the call whose range holds their start and sorted by start time;"
                 " op_index is the position in issue order within one call; op_name is the event's name (the"
                 " first call's; commas replaced by ';', cut to 120 characters); device_us is the median over the"
                 f" {KERNEL_CALLS} calls of that position's device duration (event.time_range, end - start, µs)."
                 " The L2 is not flushed between calls: a call whose inputs fit in the 50 MB L2 may read some"
                 " from it. '# total' lines: ops per call, the median over calls of the summed durations"
                 " (device busy time, launch gaps excluded) and of the span from the first op's start to the"
                 " last op's end (launch gaps included); '# mismatch' lines: calls whose operations differed")


def profile_calls(fn, calls=KERNEL_CALLS):
    """The device operations (kernels, memcpy, memset) of each of `calls`
    calls of fn, each call and a torch.cuda.synchronize() inside a
    record_function range: a list per call of (name, start_us, duration_us)
    in issue order. From torch.profiler (CUPTI)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            with record_function(f"{KERNEL_TAG}{i}"):
                fn()
                torch.cuda.synchronize()
    evs = list(prof.events())
    marks = {}
    for e in evs:
        if e.name.startswith(KERNEL_TAG) and str(e.device_type).endswith("CPU"):
            marks.setdefault(int(e.name[len(KERNEL_TAG):]), (e.time_range.start, e.time_range.end))
    ranges = [marks[i] for i in sorted(marks)]
    # The ranges' copies on the GPU timeline (gpu_user_annotation) are no operations.
    dev = sorted(((e.name, e.time_range.start, e.time_range.elapsed_us()) for e in evs
                  if str(e.device_type).endswith("CUDA") and not e.name.startswith(KERNEL_TAG)),
                 key=lambda o: o[1])
    per = [[] for _ in range(calls)]
    lost = 0
    for op in dev:
        for i, (a, b) in enumerate(ranges[:calls]):
            if a <= op[1] <= b:
                per[i].append(op)
                break
        else:
            lost += 1
    if lost or len(ranges) != calls or any(not c for c in per):
        # Clocks not aligned as expected: fall back to equal shares in time order.
        if not dev or len(dev) % calls:
            raise RuntimeError(f"{len(dev)} device operations in {calls} calls ({len(ranges)} ranges, {lost} outside)")
        n = len(dev) // calls
        log(f"    note: {lost} of {len(dev)} device operations outside the call ranges; split in {calls} equal shares")
        per = [dev[i * n:(i + 1) * n] for i in range(calls)]
    return per


def kernel_table(per):
    """Per-position (name, median duration us) over the calls, the median
    per-call sum and span (us), and a note when the calls' operations differ
    (then the positions the shortest call has)."""
    n = min(len(c) for c in per)
    first = [o[0] for o in per[0]]
    mismatch = ""
    if any(len(c) != len(per[0]) or [o[0] for o in c] != first for c in per):
        mismatch = f"calls ran {sorted(set(len(c) for c in per))} operations or differently named ones; first {n} kept"
    ops = [(per[0][i][0], statistics.median(c[i][2] for c in per)) for i in range(n)]
    total = statistics.median(sum(o[2] for o in c) for c in per)
    span = statistics.median(max(o[1] + o[2] for o in c) - c[0][1] for c in per)
    return ops, total, span, mismatch


def op_label(name):
    """An operation's name for the CSV: commas replaced, at most 120 characters."""
    return name.replace(", ", ";").replace(",", ";")[:120]


def kernel_case(build):
    """Build the call, warm it up (3 calls), then profile KERNEL_CALLS calls."""
    fn = build()
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    return kernel_table(profile_calls(fn))


def measure_kernels(args, head):
    """The `kernels` part: the GPU operations one call of each
    implementation runs and their device durations, at KERNEL_SHAPES,
    r = 32, k = 128, D = 128, fp16, written to --out/kernels.csv."""
    path = os.path.join(args.out, "kernels.csv")
    fh = open(path, "w", newline="")
    for line in head:
        fh.write(line + "\n")
    fh.write(KERNEL_METHOD + "\n")
    w = csv.writer(fh)
    w.writerow(KERNEL_HEADER)
    fh.flush()
    r, k, D = 32, 128, 128
    shapes = KERNEL_SHAPES[:2] if args.quick else KERNEL_SHAPES
    table = {}  # (variant, layout) -> [(shape, total us, ops)]
    for (B, H, Hkv, S) in shapes:
        if time.time() - T0 > args.budget_s:
            log(f"budget reached: kernels stops before B={B} H={H}/{Hkv} S={S}")
            break
        x, kv = shape_inputs("kernels", B, H, Hkv, S, D, args)
        if x is None:
            continue
        shape = f"B={B} H={H}/{Hkv} S={S}"
        log(f"kernels shape {shape}")
        cases = eager_cases(x, kv, r, k, True, ["torch-gather", "triton"], ("twice", "once"), "kernels")
        for (v, method, layout, build) in cases:
            res = attempt(f"kernels {v} {layout} {shape}", lambda build=build: kernel_case(build))
            if res is None:
                continue
            ops, total, span, mismatch = res
            sparq = method == "sparq"
            base = [v, layout, B, H, Hkv, D, S, r if sparq else "", k if sparq else ""]
            label = " ".join(filter(None, (v, layout)))
            fh.write(f"# total: {label} {shape}: {len(ops)} ops per call, sum {total:.1f} us, span {span:.1f} us\n")
            if mismatch:
                fh.write(f"# mismatch: {label} {shape}: {mismatch}\n")
                log(f"    mismatch: {mismatch}")
            for i, (name, us) in enumerate(ops):
                w.writerow(base + [i, op_label(name), f"{us:.3f}"])
            fh.flush()
            top = sorted(enumerate(ops), key=lambda t: -t[1][1])[:3]
            log(f"  kernels {v:14s} {layout:5s} {shape:24s} {len(ops):3d} ops  sum {total:9.1f} us  span {span:9.1f} us")
            log("    top: " + " | ".join(f"#{i} {us:.1f} us {name[:70]}" for i, (name, us) in top))
            table.setdefault((v, layout), []).append((shape, total, len(ops)))
        del x, cases
        torch.cuda.empty_cache()
    fh.close()
    log("device us per call (sum of operation durations) and operations, per shape:")
    for (v, lay), pts in table.items():
        log(f"  {v:14s} {lay:5s} " + "  ".join(f"{s}: {t:.1f} us/{n}" for s, t, n in pts))


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--quick", action="store_true", help="a small smoke pass")
    ap.add_argument("--budget-s", type=float, default=480, help="stop starting new shapes after this many seconds")
    ap.add_argument("--max-kv-bytes", type=float, default=52e9, help="largest K+V(+Kt) allocation per shape")
    ap.add_argument("--rotate-bytes", type=float, default=256e6, help="bytes a timed pass must touch (L2 is 50 MB)")
    ap.add_argument("--skip-micro", action="store_true")
    ap.add_argument("--only", default="", help="comma list of parts: micro,host,check,rk,grid,stages,compile,kernels,tgather,hostcheck,mma,tile,dot,"
                    "inflight,bmm,qlaunch,burst,phases,cpasync,cpasync-pipelined,startup,startup-sass (kernels, hostcheck, mma, tile, dot, inflight, bmm, qlaunch, burst, phases, cpasync, cpasync-pipelined, startup, startup-sass: not in the default set)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    LOG = open(os.path.join(args.out, "log.txt"), "a")
    parts = set(args.only.split(",")) if args.only else {"micro", "host", "check", "grid", "rk", "stages", "compile"}
    if args.skip_micro:
        parts.discard("micro")

    torch.backends.cuda.matmul.allow_tf32 = False
    f = facts(args)
    device = catalog_name(f["gpu"])
    cmd = "python3 " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    head = [f"# bwsim GPU measurements (validation/measure.py); device {device} = {f['gpu']}",
            f"# command: {cmd}",
            f"# date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    head += [f"# {k}: {v}" for k, v in f.items()]
    for line in head:
        log(line)

    mpath = os.path.join(args.out, "micro.csv")
    rpath = os.path.join(args.out, "measured.csv")
    for path, hdr in ((mpath, MICRO_HEADER), (rpath, HEADER)):
        with open(path, "w", newline="") as fh:
            for line in head:
                fh.write(line + "\n")
            if path == rpath:
                fh.write("# seconds: median per call (CUDA events around a pass over `sets` rotating input sets, / sets,"
                         " Python's GC off while timing); '+graph' variants replay the pass as a CUDA graph; the others"
                         " are eager PyTorch\n")
                fh.write(f"# host_issue_seconds (eager rows): the host's time to issue one call, right after its eager"
                         f" timing: median over {CHECK_SAMPLES} samples of {CHECK_CALLS} back-to-back calls issued after"
                         " torch.cuda.synchronize with the GPU idle, GC off (free_samples)\n")
            csv.writer(fh).writerow(hdr)
    m = Micro(mpath)
    res = Results(rpath, device)

    if "compile" in parts:
        CHECK_COMPILE.add("compile")
    if "check" in parts:
        checks = []
        check_all(checks)
        with open(rpath, "a") as fh:
            for c in checks:
                fh.write(c + "\n")
    if "micro" in parts:
        for fn in (micro_launch, micro_bandwidth, micro_latency):
            attempt(fn.__name__, lambda fn=fn: fn(m, args.quick))
        attempt("micro_topk_softmax", lambda: micro_topk_softmax(m, args.quick, args.rotate_bytes))
    if "mma" in parts:
        attempt("micro_mma", lambda: micro_mma(m, args.quick))
    if "tile" in parts:
        attempt("micro_tile", lambda: micro_tile(m, args.quick))
    if "burst" in parts:
        attempt("micro_burst", lambda: micro_burst(m, args.quick, args.rotate_bytes))
    if "phases" in parts:
        attempt("micro_phases", lambda: micro_phases(m, args.quick, args.rotate_bytes))
    if "cpasync" in parts:
        attempt("micro_cpasync", lambda: micro_cpasync(m, args.quick, args.rotate_bytes))
    if "cpasync-pipelined" in parts:
        attempt("micro_cpasync_pipelined", lambda: micro_cpasync(m, args.quick, args.rotate_bytes, pipelined_grid=True))
    if "startup" in parts:
        attempt("micro_startup", lambda: micro_startup(m, args.quick, args.rotate_bytes))
    if "startup-sass" in parts:
        attempt("startup_once", startup_once)
    if "dot" in parts:
        attempt("micro_dot_read", lambda: micro_dot_read(m, args.quick))
    if "inflight" in parts:
        attempt("micro_inflight", lambda: micro_inflight(m, args.quick))
    if "bmm" in parts:
        attempt("micro_bmm", lambda: micro_bmm(m, args.quick, args.rotate_bytes))
    if "qlaunch" in parts:
        attempt("micro_queued_launch", lambda: micro_queued_launch(m, args.quick))
    if "tgather" in parts or "micro" in parts:
        attempt("micro_torch_gather", lambda: micro_torch_gather(m, args.quick, args.rotate_bytes))
    if "host" in parts:
        attempt("host", lambda: measure_host(args, head))
    if "kernels" in parts:
        attempt("kernels", lambda: measure_kernels(args, head))
    if "hostcheck" in parts:
        attempt("hostcheck", lambda: measure_hostcheck(args, head))

    D = 128
    if "rk" in parts and not args.quick:
        # The paper's r x k grid: A100 batch 64, S = 16384, MHA.
        pairs = [(r, k) for r in (16, 32, 64) for k in (64, 128, 256, 512)]
        if time.time() - T0 <= args.budget_s:
            log("r x k grid, B=64 S=16384 MHA")
            attempt("rk grid", lambda: measure_shape(res, 64, 32, 32, 16384, D, pairs, args, dense=False,
                                                     sparq_variants=["triton", "torch-gather"], layouts=("twice",)))
        else:
            log("budget reached: r x k grid skipped")
    if "grid" in parts:
        if args.quick:
            batches, seqs = [1, 16], [4096]
        else:
            batches, seqs = [1, 4, 16, 64], [1024, 4096, 16384, 32768, 131072]
        shapes = [(B, H, Hkv, S) for (H, Hkv) in ((32, 32), (32, 8)) for S in seqs for B in batches]
        # The paper's shape first, then by size, so a budget stop keeps the small ones.
        shapes.sort(key=lambda s: (s != (64, 32, 32, 4096), s[0] * s[2] * s[3]))
        for (B, H, Hkv, S) in shapes:
            if time.time() - T0 > args.budget_s:
                log(f"budget reached: stopping before B={B} H={H}/{Hkv} S={S}")
                break
            log(f"shape B={B} H={H}/{Hkv} S={S}")
            attempt(f"shape B={B} H={H}/{Hkv} S={S}",
                    lambda: measure_shape(res, B, H, Hkv, S, D, [(32, 128)], args))
    if "stages" in parts:
        st_shapes = [(1, 32, 32, 4096), (1, 32, 32, 32768), (16, 32, 32, 4096), (16, 32, 32, 32768),
                     (64, 32, 32, 4096), (4, 32, 8, 131072), (64, 32, 8, 16384)]
        if args.quick:
            st_shapes = [(16, 32, 32, 4096)]
        log("stages")
        attempt("stages", lambda: measure_stages(m, st_shapes, args))
    if "compile" in parts:
        c_shapes = [(64, 32, 32, 4096), (1, 32, 32, 16384), (16, 32, 32, 16384), (4, 32, 8, 32768)]
        if args.quick:
            c_shapes = c_shapes[:1]
        for (B, H, Hkv, S) in c_shapes:
            if time.time() - T0 > args.budget_s + 120:
                log("budget reached: torch.compile shapes skipped")
                break
            log(f"torch.compile B={B} H={H}/{Hkv} S={S}")
            attempt(f"compile B={B} S={S}", lambda: measure_shape(res, B, H, Hkv, S, D, [(32, 128)], args, dense=False,
                                                                  sparq_variants=["torch-compile"], layouts=("twice",)))
    log("clocks at end:", smi_clocks())
    log(f"done: {len(res.rows)} attention rows; broken variants: {BROKEN}")
    log(f"total {time.time() - T0:.0f} s")


if __name__ == "__main__":
    main()
