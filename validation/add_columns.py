#!/usr/bin/env python3
"""Add the columns that describe how each measured call ran to validation/h100.csv.

Reads one or more runs of the grid (`measure.py`'s measured.csv, given with
--run; without --run, the --measured file itself) and one or more host files
(`measure.py --only host`: the CPU time to issue one eager call of each
implementation, apart from the device) and writes --measured: the first
run's rows and comments, with

  seconds       the least of the row's medians over the runs that have it
                (interference from the rest of the machine only ever adds
                time: two runs back to back on one machine put eager
                timings 0.73-1.20x apart (5th-95th percentile; 0.27-4.5x
                at the extremes), CUDA-graph ones 0.99-1.01x), with that
                run's seconds_min, seconds_max, samples and sets;
  runs          how many runs measured the row;

and eleven columns after the existing ones (validation/README.md defines them):

  dispatch      `graph` for `+graph` variants (the pass replayed from a CUDA
                graph: no host dispatch in the time), `eager` otherwise;
  host_seconds  eager rows only: the median host_seconds of the same variant
                and k_layout over the shapes of each host file (the least
                of the files' medians: interference only adds host time)
                that issue the same GPU operations: SparQ's torch.topk
                over S takes the same path (one block per row: 2 GPU
                operations; multi-block radix select: 22, see
                topk_multiblock), sdpa-math issues as many (math_ops: 14,
                16 under GQA, more where TensorIterator splits a pass over
                2^31 bytes), falling back to every shape when no host shape
                matches; empty for graph rows and for variants not measured
                there;
  split         positions per program of the stages that scan S, where the
                implementation's grid differs from bwsim's default:
                `triton-split` (step 1 split along S, grid.approx_grid),
                `sdpa-efficient` (one program per (batch, head) walking all
                of S: the memory-efficient backend has no split over the keys
                for a single query) and `sdpa-flash` (FlashAttention-2's
                choice of splits, grid.flash2_grid: all of S in one program
                per problem when the problems fill the device) and
                `sdpa-cudnn` (cuDNN's split of whole 128-key tiles,
                grid.cudnn_grid, from the launch shapes Nsight Compute
                recorded); empty otherwise;
  materialize   `true` for `torch-gather` and `torch-compile` (torch.gather,
                or Inductor's generated gather, writes K[:, i1] to
                memory and the matmul reads it back); empty otherwise;
  upcast        `true` for `sdpa-math` (PyTorch's math backend casts q, K
                and V to fp32 copies, repeats K and V per query head under
                GQA and scales a copy of K before its fp32 matmuls, as the
                kernel list of h100-kernels.csv shows); empty otherwise;
  compiled      `true` for `torch-compile` (Inductor generates the gathers
                and fused element-wise kernels, which stream at memory
                rate; Nsight Compute, NOTES.md session 5); empty otherwise;
  fused_exact   `true` for `triton` and `triton-split` (measure.py's
                _sparq_exact_kernel gathers the k rows of K and V, takes the
                softmax, the weighted sum and the v-mean blend in one
                kernel); empty otherwise;
  query_tile    the tiled kernel and its query rows per thread block:
                `mem-efficient:64` for `sdpa-efficient` (the CUTLASS
                kernel's 64 x 128 tile), `flash2:128` for `sdpa-flash` when
                FA2 runs its non-split kernel (128 x 64); empty otherwise,
                FA2's split-KV kernel included: its 64-row tile is another
                kernel, which measure.py's tile part does not time;
  serial_combine `true` for `sdpa-flash` rows where FA2 splits the keys:
                its combine kernel walks the splits one dependent load at a
                time (Nsight Compute, NOTES.md session 5); empty otherwise;
  rank_pass     `true` for `triton`, `triton-split` and `torch-gather`
                (measure.py's _select writes the fp32 ranking, a cast of the
                logits at g = 1 or their group sum, with its own kernel
                before torch.topk: h100-kernels.csv's direct_copy kernel,
                28 us at B 64, 32/32, S 4K); empty otherwise (torch.compile
                fuses it);
  kernel        `triton` for `triton` and `triton-split` (their step 1 and
                exact step are Triton loops whose tiles feed tl.dot, which
                stream below the copy rate: measure.py --only dot);
                `cublas` for `torch-matmul` (its scores and weighted sum are
                cuBLAS batched products, priced from measure.py --only bmm);
                empty otherwise;
  tile_keys     `128` for `sdpa-cudnn` and for `sdpa-flash` rows where FA2
                runs its split-KV kernel: both load 128-key K or V tiles per
                thread block, which bwsim prices from the device's
                tile-loads tables (measure.py --only cpasync and
                cpasync-pipelined); empty otherwise;
  tiles_in_flight `2` for `sdpa-cudnn`: its kernel issues the next tile
                before waiting on the current one (DEPBAR.LE SB0, 1 in its
                SASS, validation/h100-ncu-sass.csv); empty otherwise (FA2's
                split kernel waits for each tile, DEPBAR.LE SB0, 0);
  block_instructions, param_lines  for rows with tile_keys: the kernel's
                instructions per warp before its first tile wait plus
                after its last, and the 64-byte parameter lines it reads
                first, from the GPU's Nsight Compute listing (--ncu-sass:
                validation/h100-ncu-sass.csv, h200-ncu-sass.csv; 1589 and
                7 for FA2's split kernel, 736 and 10 for cuDNN's).

Comment lines stay where they are; one more, before the header, says where
the columns come from. Idempotent: if the columns (or that comment) are
already there, they are recomputed, not added again. The file is replaced
atomically (a temporary file beside it, then os.replace).

Usage: python3 validation/add_columns.py [--run FILE ...] [--measured validation/h100.csv] [--host FILE ...] [--ncu-sass FILE]
"""

import argparse
import csv
import io
import math
import os
import statistics
import sys
import tempfile

from grid import approx_grid, cudnn_grid, flash2_grid

NEW = ["runs", "dispatch", "host_seconds", "split", "materialize", "upcast", "compiled", "fused_exact", "query_tile",
       "serial_combine", "rank_pass", "kernel", "tile_keys", "tiles_in_flight",
       "block_instructions", "param_lines"]
NOTE = ("# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact, query_tile, serial_combine,"
        " rank_pass, kernel, tile_keys:")
RUN_NOTE = "# run "
OLD_NOTES = ("# dispatch, host_seconds:", "# dispatch, host_seconds, split, materialize:",
             "# dispatch, host_seconds, split, materialize, upcast:",
             "# runs, dispatch, host_seconds, split, materialize, upcast:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact, query_tile:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact, query_tile, serial_combine:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact, query_tile, serial_combine,"
             " rank_pass:",
             "# runs, dispatch, host_seconds, split, materialize, upcast, compiled, fused_exact, query_tile, serial_combine,"
             " rank_pass, kernel:")
# The columns that name a measured call: rows of different runs with the
# same key time the same thing.
KEY = ["variant", "method", "k_layout", "batch", "heads", "kv_heads", "head_dim", "seq", "r", "k", "dtype"]


def data_lines(lines):
    """(index, line) of the lines that are neither comments nor blank."""
    return [(i, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]


def read_rows(path):
    """A measured or host file's data rows as dicts (comments and blank lines skipped)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")))


def parse(line):
    return next(csv.reader([line.rstrip("\r\n")]))


def topk_multiblock(slices, size):
    """Whether torch.topk (PyTorch 2.x CUDA, TopKImpl's should_use_multiblock)
    selects from `slices` rows of `size` elements with its multi-block radix
    select (~22 GPU operations) rather than one block per row (2): a fact of
    the library, which the host pays for in launches."""
    return ((slices <= 20 and size >= 20000) or (20 < slices <= 40 and size >= 10000)
            or (40 < slices <= 80 and size >= 8000) or (80 < slices < 200 and size >= 5000)
            or (200 <= slices < 800 and size >= 3000) or (800 <= slices <= 4000 and size >= 800)
            or (slices > 4000 and size >= 400))


def math_ops(batch, heads, kv_heads, seq, head_dim):
    """GPU operations of one eager sdpa-math decode call (PyTorch 2.11's math
    backend, NOTES.md session 5): 14 (q, K and V cast to fp32, q and K
    scaled, the two cuBLAS products, the _safe_softmax chain, the fp16
    casts), 2 more under GQA (K and V repeated to H heads after the cast),
    and every elementwise pass over more than 2^31 bytes (the casts of K
    and V, the repeats, the scaling of the repeated K) split by
    TensorIterator's 32-bit indexing into one kernel per 2^31 bytes: a fact
    of the library, which the host pays for in launches. torch.profiler
    counts the same at 5 of the 6 host shapes (26 against 25 at B 4, 32/8,
    S 128K)."""
    def pieces(nbytes):
        return -(-nbytes // 2**31)
    kv32 = batch * kv_heads * seq * head_dim * 4
    rep32 = batch * heads * seq * head_dim * 4
    ops = 14 + 2 * (pieces(kv32) - 1) + (pieces(rep32) - 1)
    if heads > kv_heads:
        ops += 2 + 2 * (pieces(rep32) - 1)
    return ops


def host_key(variant, layout, method, batch, heads, kv_heads, seq, head_dim):
    """Host figures are shared by rows of the same variant and K layout that
    issue the same GPU operations: SparQ rows whose selection takes the same
    torch.topk path (B x Hkv rows over S), sdpa-math rows with the same
    operation count (math_ops)."""
    multi = method == "sparq" and topk_multiblock(int(batch) * int(kv_heads), int(seq))
    ops = math_ops(int(batch), int(heads), int(kv_heads), int(seq), int(head_dim)) \
        if variant == "sdpa-math" else None
    return (variant, layout, multi, ops)


def host_medians(paths):
    """{host_key: host_seconds} and, the fallback, {(variant, k_layout):
    host_seconds}: per file the median over its measured shapes, then the
    least over the files, as interference from the rest of the machine
    only ever adds host time (the same shape differs by up to 2x between
    runs). Rows without a value (no valid sample) are left out."""
    per, every = {}, {}
    for path in paths:
        rows = read_rows(path)
        fper, fevery = {}, {}
        for r in rows:
            if r["host_seconds"]:
                key = host_key(r["variant"], r["k_layout"], r["method"], r["batch"], r["heads"], r["kv_heads"], r["seq"],
                               r["head_dim"])
                fper.setdefault(key, []).append(float(r["host_seconds"]))
                fevery.setdefault(key[:2], []).append(float(r["host_seconds"]))
        for acc, f in ((per, fper), (every, fevery)):
            for key, v in f.items():
                acc[key] = min(acc.get(key, math.inf), statistics.median(v))
    return per, every


# The columns a row's timing comes with: taken from the run whose median
# the row keeps.
TIMING = ("seconds", "seconds_min", "seconds_max", "samples", "sets")


def run_seconds(path):
    """{KEY values: {timing column: value}} of a run file (TIMING's columns
    it has), and its `# command:` and `# date:` comment lines."""
    with open(path, newline="") as fh:
        text = fh.read().splitlines()
    facts = [ln for ln in text if ln.startswith(("# command:", "# date:"))]
    rows = csv.DictReader(ln for _, ln in data_lines(text))
    return {tuple(r[c] for c in KEY): {c: r[c] for c in TIMING if c in r} for r in rows}, facts


# The tile-loading kernels' names in an ncu_probe.py --sass table, by the
# variant whose rows they run.
SASS_KERNELS = {"sdpa-flash": "void pytorch_flash::flash_fwd_splitkv_kernel<", "sdpa-cudnn": "cudnn_generated_fort_native_sdpa"}


def block_code(path):
    """{variant: (block_instructions, param_lines)} from an ncu_probe.py
    --sass table: each tile-loading kernel's instructions per warp before
    its first tile wait plus after its last, and the parameter lines it
    reads first, from the kernel's first row (its one-block case: FA2's
    and cuDNN's counts differ by at most 8 instructions between the cases
    profiled)."""
    found = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(ln for ln in fh if not ln.startswith("#")):
            for variant, prefix in SASS_KERNELS.items():
                if variant not in found and r["kernel"].startswith(prefix):
                    found[variant] = (int(r["pre"]) + int(r["post"]), int(r["param_lines"]))
    if set(found) != set(SASS_KERNELS):
        sys.exit(f"{path}: no row for {sorted(set(SASS_KERNELS) - set(found))}")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--measured", default=os.path.join(here, "h100.csv"))
    ap.add_argument("--run", action="append", default=[],
                    help="a run of the grid (repeatable): the first gives the rows; without --run, --measured is read")
    ap.add_argument("--host", action="append", help="host file (repeatable; default validation/h100-host.csv)")
    ap.add_argument("--ncu-sass", default=os.path.join(here, "h100-ncu-sass.csv"),
                    help="the GPU's ncu_probe.py --sass table: the tile-loading kernels' block_instructions and param_lines")
    args = ap.parse_args()
    args.host = args.host or [os.path.join(here, "h100-host.csv")]
    code = block_code(args.ncu_sass)

    med, every = host_medians(args.host)
    src = args.run[0] if args.run else args.measured
    with open(src, newline="") as fh:
        lines = fh.read().splitlines(keepends=True)
    others = [(p, *run_seconds(p)) for p in args.run[1:]]
    # Our own notes from an earlier run go; they are written again below
    # (the '# run' lines only when the runs are given again).
    ours = (NOTE,) + OLD_NOTES + ((RUN_NOTE,) if args.run else ())
    lines = [ln for ln in lines if not ln.startswith(ours)]
    rows = data_lines(lines)
    if not rows:
        sys.exit(f"{src}: no header")
    hi, hline = rows[0]
    header = parse(hline)
    # Drop our columns if an earlier run added them, then append them.
    keep = [j for j, name in enumerate(header) if name not in NEW]
    col = {name: j for j, name in enumerate(header)}
    out = list(lines)
    missing = set()
    sms = next((int(ln.split(":", 1)[1]) for ln in lines if ln.startswith("# sms:")), 132)
    n_runs = 1

    def emit(fields, old):
        # csv's own quoting; the line keeps its original ending (CRLF here).
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(fields)
        return buf.getvalue() + old[len(old.rstrip("\r\n")):]

    out[hi] = emit([header[j] for j in keep] + NEW, hline)
    for i, ln in rows[1:]:
        f = parse(ln)
        key = tuple(f[col[c]] for c in KEY)
        own = {c: f[col[c]] for c in TIMING if c in col}
        timings = [own] + [sec[key] for _, sec, _ in others if key in sec]
        times = [float(t["seconds"]) for t in timings]
        least = timings[times.index(min(times))]
        for c in TIMING:
            if c in col and c in least:
                f[col[c]] = least[c]
        f[col["seconds"]] = f"{min(times):.6e}"
        variant = f[col["variant"]]
        graph = variant.endswith("+graph")
        host = ""
        if not graph:
            key = host_key(variant, f[col["k_layout"]], f[col["method"]], f[col["batch"]], f[col["heads"]],
                           f[col["kv_heads"]], f[col["seq"]], f[col["head_dim"]])
            if key in med:
                host = f"{med[key]:.6e}"
            elif key[:2] in every:
                host = f"{every[key[:2]]:.6e}"
            else:
                missing.add(key[:2])
        base = variant.removesuffix("+graph")
        split, tile, serial, tkeys, inflight, binstr, plines = "", "", "", "", "", "", ""
        if base == "triton-split":
            pairs = int(f[col["batch"]]) * int(f[col["kv_heads"]])
            chunk, _, cpp = approx_grid(pairs, int(f[col["seq"]]), int(f[col["r"]]), True)
            split = str(chunk * cpp)
        elif base == "sdpa-efficient":
            split = f[col["seq"]]
            tile = "mem-efficient:64"
        elif base == "sdpa-flash":
            splits, per, rows_ = flash2_grid(int(f[col["batch"]]), int(f[col["heads"]]), int(f[col["kv_heads"]]),
                                             int(f[col["seq"]]), int(f[col["head_dim"]]), sms)
            # The split-KV kernel (64-row tiles, a combine after it) is
            # not the kernel measure.py's tile part times: no tile stated.
            split, tile = str(per), "flash2:128" if splits == 1 else ""
            serial = "true" if splits > 1 else ""
            # The split-KV kernel loads one 128-key K or V tile at a time.
            tkeys = "128" if splits > 1 else ""
        elif base == "sdpa-cudnn":
            split = str(cudnn_grid(int(f[col["batch"]]), int(f[col["heads"]]), int(f[col["kv_heads"]]),
                                   int(f[col["seq"]]), sms))
            tkeys = "128"
            inflight = "2"
        if tkeys:
            binstr, plines = (str(v) for v in code[base])
        mat = "true" if base in ("torch-gather", "torch-compile") else ""
        comp = "true" if base == "torch-compile" else ""
        fexact = "true" if base in ("triton", "triton-split") else ""
        rank = "true" if base in ("triton", "triton-split", "torch-gather") else ""
        kern = "triton" if base in ("triton", "triton-split") else "cublas" if base == "torch-matmul" else ""
        up = "true" if base == "sdpa-math" else ""
        # Recomputed in place (no --run), the file keeps the runs it was built from.
        runs = str(len(times)) if args.run or "runs" not in col else f[col["runs"]]
        n_runs = max(n_runs, int(runs))
        out[i] = emit([f[j] for j in keep] + [runs, "graph" if graph else "eager", host, split, mat, up, comp, fexact, tile, serial, rank, kern, tkeys, inflight, binstr, plines], ln)
    hosts = " and ".join("validation/" + os.path.basename(h) for h in args.host)
    note = (f"{NOTE} added by validation/add_columns.py: seconds = the least of the row's medians over the"
            f" {n_runs} run(s) of this grid (this file's own and the '# run' lines'), runs = how many had the row;"
            " dispatch = graph for '+graph' variants, else eager;"
            f" host_seconds (eager rows) = the median host_seconds of the same variant and k_layout over the shapes"
            f" measured in each of {hosts} that issue the same GPU operations (SparQ: the same one-block or"
            " multi-block torch.topk path; sdpa-math: the same operation count),"
            " the least of the files' medians; split, materialize, upcast, compiled, fused_exact, query_tile, serial_combine, rank_pass, kernel, tile_keys and tiles_in_flight from the implementations' grids and structure;"
            f" block_instructions and param_lines (rows with tile_keys) from validation/{os.path.basename(args.ncu_sass)}"
            " (validation/grid.py, add_columns.py)\n")
    run_notes = [f"{RUN_NOTE}{n} ({os.path.basename(path)}): {ln[2:]}\n"
                 for n, (path, _, facts) in enumerate(others, start=2) for ln in facts]
    out[hi:hi] = run_notes + [note]

    d = os.path.dirname(os.path.abspath(args.measured))
    fd, tmp = tempfile.mkstemp(prefix=".h100-", suffix=".csv", dir=d)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.writelines(out)
        os.chmod(tmp, os.stat(src).st_mode & 0o777)
        os.replace(tmp, args.measured)
    except BaseException:
        os.unlink(tmp)
        raise
    n_eager = sum(1 for _, ln in rows[1:] if not parse(ln)[col["variant"]].endswith("+graph"))
    print(f"{args.measured}: {len(rows) - 1} rows from {src}, {n_eager} eager, least seconds over {n_runs} run(s);"
          f" host_seconds for {len(med)} (variant, k_layout, topk path, operations)"
          + (f"; not measured: {sorted(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
