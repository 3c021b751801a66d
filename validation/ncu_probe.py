#!/usr/bin/env python3
"""Cases for Nsight Compute: one call of each implementation whose
prediction misses (and of a neighbour that does not), profiled kernel by
kernel under `ncu`, to find the mechanism a miss lacks. Diagnostic only:
nothing here sets a device figure (the device model is calibrated from the
microbenchmarks of measure.py).

Each case is warmed up (3 calls, so compiling and autotuning happen outside
the profiled range), then profiled between cudaProfilerStart and Stop,
after a marker kernel (measure.py's empty Triton kernel) launched with a
grid of 1000 + the case's index: every kernel after the marker with grid
(1000+i, 1, 1) belongs to case i. K, V (and Kt) are one random set, D = 128,
fp16, r = 32, k = 128.

On the GPU machine (leave the clocks alone: --clock-control none):
  ncu --clock-control none --profile-from-start off --csv --page details \\
      --section SpeedOfLight --section LaunchStats --section Occupancy \\
      --section WarpStateStats --section MemoryWorkloadAnalysis \\
      --section ComputeWorkloadAnalysis --log-file SECTIONS.csv \\
      python3 validation/ncu_probe.py
  ncu --clock-control none --profile-from-start off --csv --page raw \\
      --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio,dram__bytes_read.sum,gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active' \\
      --log-file STALLS.csv python3 validation/ncu_probe.py --only 0,1,2,3,4,5,10,11,13
Anywhere, one row per kernel (the table validation/h100-ncu.csv holds):
  python3 validation/ncu_probe.py --summarize SECTIONS.csv STALLS.csv --out validation/h100-ncu.csv

Instruction counts (session 13: how many query rows each fused kernel's tile
computes, from its tensor-pipe instructions):
  ncu --clock-control none --profile-from-start off --csv --page raw \\
      --metrics 'sm__inst_executed_pipe_tensor_op_hmma.sum,gpu__time_duration.sum,launch__shared_mem_per_block_dynamic,launch__shared_mem_per_block_static,launch__grid_size,launch__block_size,launch__registers_per_thread,dram__bytes_read.sum,sm__inst_executed_pipe_xu.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active' \\
      --log-file HMMA.csv python3 validation/ncu_probe.py --only 3,4,5,6,7,16,17
  python3 validation/ncu_probe.py --instructions HMMA.csv --out validation/h100-ncu-hmma.csv

Launch shapes (session 15: cuDNN's grid at 128 problems) and SASS listings
with warp stall samples (which kernel keeps how many tiles in flight), from
validation/ (one command on a lent H100, 37.5 s):
  ncu --clock-control none --profile-from-start off --csv --page raw \\
      --metrics launch__grid_size,launch__block_size,gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__shared_mem_per_block_dynamic,launch__registers_per_thread,smsp__inst_executed.sum,sm__inst_executed_pipe_tensor_op_hmma.sum,launch__occupancy_limit_shared_mem \\
      --log-file GRID.csv python3 ncu_probe.py --only 5,6,7,16,18,19
  ncu --clock-control none --profile-from-start off --section SourceCounters \\
      --section WarpStateStats --csv --page source --print-source sass \\
      --log-file SASS.csv python3 ncu_probe.py --only 5,7,18
  python3 validation/ncu_probe.py --instructions GRID.csv --out validation/h100-ncu-launch.csv
  python3 validation/ncu_probe.py --sass SASS.csv --cases 5,7,18 --out validation/h100-ncu-sass.csv
"""

import argparse
import csv
import os
import sys
import tempfile

from sass import opcode, prologue  # validation/sass.py: shared with measure.py's startup part

R, K, D = 32, 128, 128

# (name, B, H, Hkv, S, implementation, K layout); layout "" for dense.
CASES = [
    ("sdpa-efficient B1 32/32 S32K", 1, 32, 32, 32768, "sdpa-efficient", ""),
    ("sdpa-efficient B4 32/32 S16K", 4, 32, 32, 16384, "sdpa-efficient", ""),
    ("sdpa-efficient B64 32/32 S4K", 64, 32, 32, 4096, "sdpa-efficient", ""),
    ("sdpa-cudnn B1 32/32 S32K", 1, 32, 32, 32768, "sdpa-cudnn", ""),
    ("sdpa-flash B1 32/32 S32K", 1, 32, 32, 32768, "sdpa-flash", ""),
    ("sdpa-flash B1 32/8 S4K", 1, 32, 8, 4096, "sdpa-flash", ""),
    ("sdpa-flash B1 32/32 S1K", 1, 32, 32, 1024, "sdpa-flash", ""),
    ("sdpa-cudnn B1 32/8 S4K", 1, 32, 8, 4096, "sdpa-cudnn", ""),
    ("torch-matmul B1 32/8 S128K", 1, 32, 8, 131072, "torch-matmul", ""),
    ("torch-matmul B1 32/32 S128K", 1, 32, 32, 131072, "torch-matmul", ""),
    ("triton once B1 32/8 S32K", 1, 32, 8, 32768, "triton", "once"),
    ("triton twice B1 32/8 S32K", 1, 32, 8, 32768, "triton", "twice"),
    ("triton once B1 32/32 S32K", 1, 32, 32, 32768, "triton", "once"),
    ("torch-compile twice B64 32/32 S4K", 64, 32, 32, 4096, "torch-compile", "twice"),
    ("torch-compile twice B1 32/32 S16K", 1, 32, 32, 16384, "torch-compile", "twice"),
    ("torch-gather twice B64 32/32 S4K", 64, 32, 32, 4096, "torch-gather", "twice"),
    ("sdpa-cudnn B4 32/8 S1K", 4, 32, 8, 1024, "sdpa-cudnn", ""),
    ("sdpa-cudnn B64 32/32 S4K", 64, 32, 32, 4096, "sdpa-cudnn", ""),
    # Session 15: 128 (sequence, KV head) problems, where grid.cudnn_grid's
    # rule had no recorded launch shape.
    ("sdpa-cudnn B4 32/32 S1K", 4, 32, 32, 1024, "sdpa-cudnn", ""),
    ("sdpa-cudnn B16 32/8 S1K", 16, 32, 8, 1024, "sdpa-cudnn", ""),
]

# Columns of the summary: (column, section run's metric name).
SECTION_METRICS = [
    ("duration_ns", "Duration"),
    ("dram_pct", "DRAM Throughput"),
    ("sm_busy_pct", "SM Busy"),
    ("issue_busy_pct", "Issue Slots Busy"),
    ("registers", "Registers Per Thread"),
    ("warps_per_sm", "Achieved Active Warps Per SM"),
    ("cycles_per_issue", "Warp Cycles Per Issued Instruction"),
    ("l2_hit_pct", "L2 Hit Rate"),
]
STALL_PREFIX, STALL_SUFFIX = "smsp__average_warps_issue_stalled_", "_per_issue_active.ratio"
HEADER = (["case", "case_name", "order", "kernel", "grid", "block"] + [c for c, _ in SECTION_METRICS]
          + ["dram_read_bytes", "tensor_pct", "stalls"])


def run_cases(only):
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import measure  # validation/measure.py: inputs and implementations

    backends = dict(measure.sdpa_backends())
    marker = torch.empty(1, device="cuda")
    measure.CHECK_COMPILE.add("compile")
    for i, (name, B, H, Hkv, S, impl, layout) in enumerate(CASES):
        if only and i not in only:
            continue
        torch.manual_seed(1000 + i)
        x = measure.Inputs(B, H, Hkv, S, D, torch.float16, kt=layout == "twice")
        if impl in backends:
            fn = measure.dense_sdpa(x, backends[impl])
        elif impl == "torch-matmul":
            fn = measure.dense_torch(x)
        else:
            fn = measure.sparq_maker(impl, R, K, layout == "twice")(x)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        t = measure.time_pass(fn, 1, graph=False)[0]
        torch.cuda.cudart().cudaProfilerStart()
        measure._empty_kernel[(1000 + i,)](marker)
        fn()
        torch.cuda.synchronize()
        torch.cuda.cudart().cudaProfilerStop()
        print(f"case {1000 + i} {name}: eager {t * 1e6:.1f} us (unprofiled, one input set)", flush=True)
        del x, fn
        torch.cuda.empty_cache()


def _csv_rows(path):
    # ncu prefixes its CSV with '==PROF==' and '==WARNING==' lines.
    with open(path, newline="") as fh:
        return list(csv.reader(ln for ln in fh if not ln.startswith("==")))


def _raw_kernels(path):
    """A `--page raw` run's columns ({name: index}) and its kernels in
    launch order, each a dict with 'name', 'grid', 'block' and the row 'r'."""
    rows = _csv_rows(path)
    col = {h: j for j, h in enumerate(rows[0])}
    return col, [{"name": r[col["Kernel Name"]], "grid": r[col["Grid Size"]], "block": r[col["Block Size"]], "r": r}
                 for r in rows[2:]]  # row 1: units


def _split_cases(kernels):
    """[(case index, order, kernel)] from kernels in launch order, each a
    dict with 'name' and 'grid': the marker's grid names the case."""
    out, case, order = [], None, 0
    for k in kernels:
        if "empty_kernel" in k["name"]:
            case, order = int(k["grid"].strip("()").split(",")[0]) - 1000, 0
            continue
        if case is not None:
            out.append((case, order, k))
            order += 1
    return out


def summarize(sections, stalls, out):
    rows = _csv_rows(sections)
    col = {h: j for j, h in enumerate(rows[0])}
    kernels = {}
    for r in rows[1:]:
        k = kernels.setdefault(r[col["ID"]], {"name": r[col["Kernel Name"]], "grid": r[col["Grid Size"]],
                                               "block": r[col["Block Size"]], "m": {}})
        k["m"][r[col["Metric Name"]]] = r[col["Metric Value"]].replace(",", "")
    extra = {}
    if stalls:
        col, raw = _raw_kernels(stalls)
        for case, order, k in _split_cases(raw):
            r = k["r"]
            st = {h[len(STALL_PREFIX):-len(STALL_SUFFIX)]: float(r[j].replace(",", "")) for h, j in col.items()
                  if h.startswith(STALL_PREFIX) and h.endswith(STALL_SUFFIX)}
            top = sorted(st.items(), key=lambda t: -t[1])[:5]
            extra[(case, order)] = (r[col["dram__bytes_read.sum"]].replace(",", ""),
                                    r[col["sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"]],
                                    " ".join(f"{n}={v:.2f}" for n, v in top))
    table = []
    for case, order, k in _split_cases(list(kernels.values())):
        m = k["m"]
        dram, tensor, st = extra.get((case, order), ("", "", ""))
        table.append([case, CASES[case][0], order, k["name"][:120], k["grid"], k["block"]]
                     + [m.get(name, "") for _, name in SECTION_METRICS] + [dram, tensor, st])
    _write_table(out, "one call per case after 3 warm-up calls; " "made by: python3 validation/ncu_probe.py --summarize (see its docstring);\n"
                      "# stalls: the five largest smsp__average_warps_issue_stalled_*_per_issue_active ratios\n"
                      "# (cases of the second run only)", HEADER, table)


# The GPU the summarized run profiled, for the tables' first line (--gpu).
GPU = "H100 SXM"


def _write_table(out, made_by, header, table):
    """Write table under the files' common comment (made_by completes it)
    to out, atomically: a temporary file in the same directory, renamed."""
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".ncu-", suffix=".csv", dir=d)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(f"# Nsight Compute 2025.3.1 on the lent {GPU} (--clock-control none), {made_by};\n"
                     "# duration under ncu's cache control (caches flushed).\n")
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(table)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


# The instruction-count run (`--page raw`, one row per kernel): the
# columns it needs.
INSTRUCTION_METRICS = [
    ("registers", "launch__registers_per_thread"),
    ("smem_dynamic_bytes", "launch__shared_mem_per_block_dynamic"),
    ("duration_ns", "gpu__time_duration.sum"),
    ("dram_read_bytes", "dram__bytes_read.sum"),
    ("tensor_pct", "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"),
    ("hmma_inst", "sm__inst_executed_pipe_tensor_op_hmma.sum"),
    ("xu_inst", "sm__inst_executed_pipe_xu.sum"),
    ("dram_write_bytes", "dram__bytes_write.sum"),
    ("inst_executed", "smsp__inst_executed.sum"),
]
# Multiply-accumulates of one warp-level HMMA instruction on sm_80/sm_90
# (mma.sync m16n8k16; a wmma m16n16k16 compiles to two of them).
HMMA_MACS = 16 * 8 * 16


def summarize_instructions(raw, out):
    """One row per kernel of an instruction-count run: its tensor-pipe
    instructions, the multiply-accumulates they make, and the query rows of
    the tile that many MACs imply for the case's attention (MACs over
    2 x S x D x B x Hkv: both products, every key, per KV head, as a GQA
    group runs as one tile's rows). The columns are those of
    INSTRUCTION_METRICS the run collected (the launch-shape run of session
    15 took no tensor-pipe percentage and no XU count)."""
    col, kernels = _raw_kernels(raw)
    metrics = [(c, m) for c, m in INSTRUCTION_METRICS if m in col]
    table = []
    for case, order, k in _split_cases(kernels):
        name, B, _, Hkv, S, _, _ = CASES[case]
        vals = {c: k["r"][col[m]].replace(",", "") for c, m in metrics}
        macs = int(float(vals.get("hmma_inst") or 0)) * HMMA_MACS
        table.append([case, name, order, k["name"][:120], k["grid"], k["block"]] + list(vals.values())
                     + [macs, f"{macs / (2 * S * D * B * Hkv):g}" if macs else ""])
    _write_table(out, "one call per case after 3 warm-up calls; " "instruction counts, made by: python3 validation/ncu_probe.py --instructions\n"
                      "# (see its docstring); macs = hmma_inst x 2048 (m16n8k16); tile_rows = macs / (2 S D B Hkv)",
                 ["case", "case_name", "order", "kernel", "grid", "block"] + [c for c, _ in metrics]
                 + ["macs", "tile_rows"], table)


def _sass_kernels(path):
    """The kernels of a `--page source --print-source sass` run in launch
    order, each (name, header, rows); ncu prints a kernel's listing twice
    in a row when two sections feed it, so a repeat is dropped."""
    blocks = []
    for r in _csv_rows(path):
        if r and r[0] == "Kernel Name":
            blocks.append((r[1], []))
        elif blocks:
            blocks[-1][1].append(r)
    kernels = []
    for name, rows in blocks:
        k = (name, rows[0], rows[1:])
        if not kernels or kernels[-1] != k:
            kernels.append(k)
    return kernels


def block_code(head, rows):
    """(warps, pre, mid, post, param_lines) of one kernel's source-page
    listing: the instructions each warp executes before its first wait for
    a cp.async group (DEPBAR), between its first and last wait, and after
    its last (per warp: executions / the first instruction's, which every
    warp runs once), and the 64-byte lines of the parameter bank read before
    the first wait (sass.prologue over the executed instructions). A kernel
    with no wait counts everything as pre."""
    col = {h: j for j, h in enumerate(head)}
    ex = [int((r[col["Instructions Executed"]] or "0").replace(",", "")) for r in rows]
    warps = max(ex[0], 1)
    waits = [i for i, r in enumerate(rows) if ex[i] > 0 and opcode(r[col["Source"]]).startswith("DEPBAR")]
    first, last = (waits[0], waits[-1]) if waits else (len(rows), len(rows))
    _, param_lines = prologue([r[col["Source"]] for i, r in enumerate(rows) if ex[i] > 0])
    return (warps, round(sum(ex[:first]) / warps), round(sum(ex[first:last]) / warps),
            round(sum(ex[last:]) / warps), param_lines)


def summarize_block_code(path, out):
    """One row per kernel of a SASS source-page run, in launch order (the
    markers and every other kernel included): block_code's counts and the
    share of warp stall samples before the first wait. With measure.py's
    part startup-sass it places each start-up variant on the axis of
    measure.py's part startup; with ncu_probe's cases, the library kernels."""
    table = []
    for name, head, rows in _sass_kernels(path):
        if "empty_kernel" in name:
            continue
        warps, pre, mid, post, lines = block_code(head, rows)
        table.append([name[:120], len(rows), warps, pre, mid, post, lines])
    _write_table(out, "one launch per kernel; instructions per warp, made by: python3 validation/ncu_probe.py --block-code SASS.csv\n"
                      "# (see its docstring); pre / mid / post: executed before the first cp.async wait, between the first and\n"
                      "# last, after the last; param_lines: 64-byte lines of the parameter bank read before the first wait",
                 ["kernel", "instructions", "warps", "pre", "mid", "post", "param_lines"], table)


def summarize_sass(path, cases, out):
    """One row per kernel of a SASS source-page run (cases: the --only list
    it ran, in order): how the kernel waits for its cp.async tiles and where
    its warps' stall samples fall. cp_async lists, in program order, each
    LDGSTS group (the count of LDGSTS before its LDGDEPBAR) and each wait
    (DEPBAR.LE SB0, N: at most N groups may still be in flight, so N = 0
    waits for every tile issued and N = 1 keeps one in flight); the sample
    shares are of the kernel's warp stall samples: long_sb_pct (waiting on
    global memory or cp.async), before_first_wait_pct (the instructions
    before the first DEPBAR: the kernel's start-up, issuing its first
    loads); pre, mid, post and param_lines (block_code: what each warp
    executes before its first wait, between, after its last, and the
    parameter lines it reads first), the axis of measure.py's part
    startup."""
    table, case_iter, case = [], iter(cases), None
    for name, head, rows in _sass_kernels(path):
        if "empty_kernel" in name:
            case = next(case_iter, None)
            continue
        if case is None:
            continue
        col = {h: j for j, h in enumerate(head)}
        samples = [int(r[col["Warp Stall Sampling (All Samples)"]] or 0) for r in rows]
        executed = sum(1 for r in rows if int((r[col["Instructions Executed"]] or "0").replace(",", "")) > 0)
        total = sum(samples) or 1
        seq, pending, first_wait = [], 0, None
        for i, r in enumerate(rows):
            toks = r[col["Source"]].split()
            op = opcode(r[col["Source"]])
            if op.startswith("LDGSTS"):
                pending += 1
            elif op == "LDGDEPBAR":
                seq.append(f"group:{pending}")
                pending = 0
            elif op.startswith("DEPBAR"):
                seq.append("wait:" + toks[-1].rstrip(";").replace("0x", ""))
                first_wait = i if first_wait is None else first_wait
        _, pre, mid, post, param_lines = block_code(head, rows)
        long_sb = sum(int(r[col["stall_long_sb"]] or 0) for r in rows)
        before = sum(samples[:first_wait]) if first_wait is not None else 0
        stalls = {h[len("stall_"):]: sum(int(r[j] or 0) for r in rows) for h, j in col.items()
                  if h.startswith("stall_") and "Not Issued" not in h}
        top = sorted(stalls.items(), key=lambda t: -t[1])[:5]
        table.append([case, CASES[case][0], name[:120], len(rows), executed, pre, mid, post, param_lines, total, " ".join(seq),
                      f"{100 * long_sb / total:.1f}", f"{100 * before / total:.1f}",
                      " ".join(f"{n}={100 * v / total:.1f}" for n, v in top)])
    _write_table(out, "one call per case after 3 warm-up calls; " "SASS listings, made by: python3 validation/ncu_probe.py --sass SASS.csv --cases LIST\n"
                      "# (see its docstring); shares in % of the kernel's warp stall samples",
                 ["case", "case_name", "kernel", "instructions", "executed", "pre", "mid", "post",
                  "param_lines", "samples", "cp_async",
                  "long_sb_pct", "before_first_wait_pct", "top_stalls_pct"], table)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    ap.add_argument("--only", default="", help="comma list of case indices to run (default: all)")
    ap.add_argument("--summarize", nargs="+", metavar="CSV",
                    help="SECTIONS.csv [STALLS.csv]: write one row per kernel to --out instead of running")
    ap.add_argument("--instructions", metavar="RAW.csv",
                    help="an instruction-count run's CSV: write one row per kernel to --out instead of running")
    ap.add_argument("--sass", metavar="SASS.csv",
                    help="a source-page run's CSV (--page source --print-source sass): write one row per kernel to --out")
    ap.add_argument("--block-code", metavar="SASS.csv",
                    help="a source-page run's CSV: write each kernel's instructions per warp around its tile waits to --out")
    ap.add_argument("--gpu", default="H100 SXM", help="with --summarize, --instructions, --sass or --block-code: the GPU the run profiled")
    ap.add_argument("--cases", default="", help="with --sass: the comma list of cases that run profiled, in order")
    ap.add_argument("--out", default="validation/h100-ncu.csv",
                    help="with --summarize, --instructions or --sass: the table to write")
    args = ap.parse_args()
    globals()["GPU"] = args.gpu
    if args.list:
        for i, c in enumerate(CASES):
            print(1000 + i, c[0])
        return
    if args.instructions:
        summarize_instructions(args.instructions, args.out)
        return
    if args.block_code:
        summarize_block_code(args.block_code, args.out)
        return
    if args.sass:
        if not args.cases:
            ap.error("--sass needs --cases, the list the run profiled")
        summarize_sass(args.sass, [int(i) for i in args.cases.split(",")], args.out)
        return
    if args.summarize:
        if len(args.summarize) > 2:
            ap.error("--summarize takes SECTIONS.csv and optionally STALLS.csv")
        summarize(args.summarize[0], args.summarize[1] if len(args.summarize) > 1 else "", args.out)
        return
    run_cases({int(i) for i in args.only.split(",")} if args.only else set())


if __name__ == "__main__":
    main()
