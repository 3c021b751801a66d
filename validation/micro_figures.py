#!/usr/bin/env python3
"""The device figures a catalog entry takes from measure.py's
microbenchmarks, read out of micro.csv files: stream bandwidth, DRAM and L2
chase latency, L2 read bandwidth over footprints, launch time in a CUDA
graph, bytes in flight per program (Little's law), the torch.topk and
torch.softmax tables in the catalog's layout, the torch.gather copy rates (whole rows, scattered),
the ex2 and mma.sync rates, the read rate of Triton loops feeding tl.dot
(kernel_bandwidth for kernel class triton) and their loop-step cost at a
few programs (kernel_loops, part inflight), the fused attention kernels' query-tile
tables (part tile: prefill calls, every tile row a real query), and cuBLAS's
batched products as matmul tables (part bmm: synthetic tensors), and the
tile-loads table (part cpasync: thread blocks loading 32 KiB tiles one
after another, a split-KV kernel reduced to its loads), and the block-code
table (part startup, with the ncu_probe.py --block-code table of its
kernels among the files). Nothing here reads a decode attention timing.
Standard library only.

  python3 validation/micro_figures.py validation/h200-micro.csv
  python3 validation/micro_figures.py validation/h100-micro.csv validation/h100-micro-gather.csv validation/h100-micro-mma.csv validation/h100-micro-tile.csv validation/h100-micro-dot.csv validation/h100-micro-inflight.csv validation/h100-micro-bmm.csv

The second line reproduces the h100-sxm catalog entry's tables exactly;
  python3 validation/micro_figures.py validation/h100-micro-startup.csv validation/h200-ncu-startup.csv
prints its block-code unit (h200-micro-startup.csv for the h200 entry's).
"""

import csv
import statistics
import sys

ROWS = [32, 128, 512, 2048]
TOPK_COLS = [128, 1024, 4096, 16384, 65536, 131072]  # 128: topk_d (k = 32), others topk_s (k = 128)


def load(paths):
    out = []
    for path in paths:
        with open(path, newline="") as fh:
            out += [r for r in csv.reader(ln for ln in fh if not ln.startswith("#")) if r and r[0] != "bench"]
    return out


def fields(case):
    return dict(kv.split("=", 1) for kv in case.split(";") if "=" in kv)


def relative_lstsq(xs, ys):
    """Coefficients c minimising sum(((x . c) - y) / y)^2: least squares on
    the relative error, so the shortest steps weigh as much as the longest
    (normal equations, Gaussian elimination; a handful of unknowns)."""
    n = len(xs[0])
    a = [[sum(x[i] * x[j] / y / y for x, y in zip(xs, ys)) for j in range(n)] for i in range(n)]
    b = [sum(x[i] / y for x, y in zip(xs, ys)) for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda k: abs(a[k][i]))
        a[i], a[p], b[i], b[p] = a[p], a[i], b[p], b[i]
        for k in range(i + 1, n):
            f = a[k][i] / a[i][i]
            a[k] = [u - f * v for u, v in zip(a[k], a[i])]
            b[k] -= f * b[i]
    c = [0.0] * n
    for i in reversed(range(n)):
        c[i] = (b[i] - sum(a[i][j] * c[j] for j in range(i + 1, n))) / a[i][i]
    return c


def loop_steps(rows, say):
    """kernel_loops for class triton (part inflight): one program's step
    time, bytes per step / its read rate alone (the median over 1-16
    programs, where the rate does not depend on their number; the rows at
    32-264 programs show where it starts to), fitted as
    seconds + bytes x seconds_per_byte (rows: _dot_read_kernel) and
    + elements x seconds_per_element (gathers: _component_read_kernel,
    elements = components x chunk)."""
    steps = {}
    for r in rows:
        if r[0] not in ("inflight_dot", "inflight_gather", "inflight_stream"):
            continue
        f = fields(r[1])
        if int(f["programs"]) > 16:
            continue  # past the linear region: the programs share the memory system
        per_prog = float(r[5]) * 1e9 / int(f["programs"])
        elems = int(f["components"]) * int(f["chunk"]) if "components" in f else 0
        key = (r[0], f.get("components"), f.get("chunk"), None if "components" in f else f["step_bytes"])
        steps.setdefault(key, []).append((int(f["step_bytes"]), elems, per_prog))
    if not steps:
        return
    for bench, case in (("inflight_dot", "step_bytes=16384;"), ("inflight_gather", "components=32;chunk=256;")):
        wide = [(int(fields(r[1])["programs"]), float(r[5]) / int(fields(r[1])["programs"])) for r in rows
                if r[0] == bench and case in r[1]]
        if wide:
            say(f"  {bench} {case.rstrip(';')} per-program GB/s", ", ".join(f"P{p}: {g:.1f}" for p, g in sorted(wide)))
    fits = {"inflight_dot": ("rows", 2), "inflight_gather": ("gather", 3), "inflight_stream": ("stream (not a class)", 2)}
    for bench, (kind, n) in fits.items():
        xs, ys, label = [], [], []
        for key, v in sorted(steps.items(), key=lambda kv: (kv[1][0][0], kv[1][0][1])):
            if key[0] != bench:
                continue
            step = statistics.median(b for b, _, _ in v)
            rate = statistics.median(p for _, _, p in v)
            xs.append([1.0, step, v[0][1]][:n])
            ys.append(step / rate)
            label.append(f"{step / 1024:.0f} KiB" + (f"/{v[0][1]} el" if n == 3 else "") + f": {rate / 1e9:.1f}")
        if not xs:
            continue
        c = relative_lstsq(xs, ys)
        res = [(sum(a * b for a, b in zip(x, c)) / y - 1) * 100 for x, y in zip(xs, ys)]
        say(f"loop step, {kind}", f"seconds {c[0]:.4g}, seconds_per_byte {c[1]:.4g}"
            + (f", seconds_per_element {c[2]:.4g}" if n == 3 else "")
            + f" (residuals {min(res):+.1f} to {max(res):+.1f} %)")
        say("  per-program GB/s by step", "; ".join(label))


MATMUL_PRODUCTS = [8, 32, 128, 512, 2048]


def print_table(rows, cols, seconds, notes):
    """A catalog unit's table: the grid's rows and cols, then one line of
    seconds per row, each ending in its note."""
    print("        table:")
    print(f"          rows: [{', '.join(str(v) for v in rows)}]")
    print(f"          cols: [{', '.join(str(v) for v in cols)}]")
    print("          seconds:")
    for line, note in zip(seconds, notes):
        print("            - [" + ", ".join(f"{v:.4g}" for v in line) + f"]  # {note}")


def matmul_tables(rows, say):
    """The catalog's matmul units from part bmm: per product form and query
    rows, the time of P products over N key positions (D = 128). The part
    skips 2048 products x 128K (68 GB of K, over its 17 GB cap); that cell
    is 4 x the 512-product one, what bwsim's table does above its rows,
    marked in the row's comment (at 1K-32K positions the measured 2048-row
    reads within a few per cent of 4 x 512, printed)."""
    cells = {}
    for r in rows:
        if r[0] == "bmm" and r[2] == "graph":
            f = fields(r[1])
            cells[(f["form"], int(f["M"]), int(f["P"]), int(f["N"]))] = float(r[4])
    if not cells:
        return
    keys = sorted({k[3] for k in cells})
    for form in ("qk", "pv"):
        for m in sorted({k[1] for k in cells if k[0] == form}):
            grid, derived = [], {}
            for p in MATMUL_PRODUCTS:
                line = []
                for n in keys:
                    v = cells.get((form, m, p, n))
                    if v is None and p == MATMUL_PRODUCTS[-1] and (form, m, MATMUL_PRODUCTS[-2], n) in cells:
                        v = cells[(form, m, MATMUL_PRODUCTS[-2], n)] * p / MATMUL_PRODUCTS[-2]
                        derived[p] = n
                    line.append(v)
                grid.append(line)
            if any(v is None for line in grid for v in line):
                say(f"matmul {form} rows {m}", "incomplete grid, no table")
                continue
            p, n = MATMUL_PRODUCTS[-2], keys[-1]
            rate = p * m * n * 128 / grid[-2][-1]
            above = [cells[(form, m, 2048, k)] / (4 * cells[(form, m, 512, k)]) - 1 for k in keys
                     if k >= 1024 and (form, m, 2048, k) in cells]
            print(f"matmul {form}, {m} query rows: {p * n * 256 / grid[-2][-1] / 1e12:.2f} TB/s of K or V at {p} x {n};"
                  f" 2048 products against 4 x 512 at 1K-32K: {min(above):+.1%} to {max(above):+.1%}")
            print("      - unit: matmul")
            print(f"        kernel: {form}")
            print(f"        query_rows: {m}")
            print("        head_dim: 128")
            print("        dtype: fp16")
            print(f"        ops_per_second: {rate:.4g}")
            notes = [f"{pp} products" + (f" ({derived[pp]}: 4 x 512 products, not measured)" if pp in derived else "")
                     for pp in MATMUL_PRODUCTS]
            print_table(MATMUL_PRODUCTS, keys, grid, notes)


def tile_load_table(rows, say):
    """The catalog's tile-loads units from parts cpasync and
    cpasync-pipelined: the time of P thread blocks each loading N 32 KiB
    tiles with cp.async (80 KiB of shared memory per block, as
    FlashAttention-2's split-KV kernel holds), CUDA graph; one table per
    count of tiles in flight: one after another (cpasync_dependent, part
    cpasync's grid) and two (cpasync_pipelined over the same grid, part
    cpasync-pipelined; one tile has nothing to pipeline, so its column is
    that run's dependent one-tile rows). Rows that make no table (part
    cpasync's few pipelined ones, the 40 KiB ones) are printed beside the
    dependent table: what the dependency and the residency cost."""
    dep, pipe, other = {}, {}, {}
    for r in rows:
        if r[0] in ("cpasync_dependent", "cpasync_pipelined") and r[2] == "graph":
            f = fields(r[1])
            key = (int(f["programs"]), int(f["phases"]))
            if f["smem_kib"] != "80":
                other[(r[0], f["smem_kib"]) + key] = float(r[4])
            elif r[0] == "cpasync_dependent":
                dep[key] = float(r[4])
            else:
                pipe[key] = float(r[4])

    def grid(cells):
        progs = sorted({k[0] for k in cells})
        loads = sorted({k[1] for k in cells})
        return progs, loads, all((p, n) in cells for p in progs for n in loads)

    def unit(cells, in_flight):
        progs, loads, _ = grid(cells)
        big = progs[-1] * loads[-1] * 32768 / cells[(progs[-1], loads[-1])]
        print("      - unit: tile-loads")
        print("        dtype: fp16")
        print("        tile_bytes: 32768")
        if in_flight > 1:
            print(f"        tiles_in_flight: {in_flight}")
        print(f"        ops_per_second: {big:.4g}")
        print_table(progs, loads, [[cells[(p, n)] for n in loads] for p in progs], [f"{p} blocks" for p in progs])

    dprogs, dloads, dfull = grid(dep) if dep else ([], [], False)
    pprogs = grid(pipe)[0] if pipe else []
    # A pipelined grid over the dependent one's blocks is its own table;
    # part cpasync's few pipelined rows are only compared.
    if pipe and set(pprogs) == set(dprogs):
        cells = dict(pipe)
        cells.update({(p, 1): dep[(p, 1)] for p in pprogs if (p, 1) in dep})
        if grid(cells)[2]:
            unit(cells, 2)
        else:
            say("tile loads, 2 in flight", "incomplete grid, no table")
    else:
        for (p, n), t in pipe.items():
            other[("cpasync_pipelined", "80", p, n)] = t
    if len(dloads) < 2:
        return
    if not dfull:
        say("tile loads", "incomplete grid, no table")
        return
    for (kind, smem, p, n), t in sorted(other.items()):
        d = dep.get((p, n))
        if d:
            say(f"{kind} {smem} KiB, {p} blocks x {n} tiles", f"{t * 1e6:.2f} us against {d * 1e6:.2f} dependent")
    unit(dep, 1)


def loglog(x, xs, ys):
    """ys at x, linear in the logarithms between the nearest points of xs
    (ascending), held at the ends: hwmodel.Table.At along one axis."""
    import math

    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1] * x / xs[-1]
    i = next(j for j in range(1, len(xs)) if xs[j] >= x)
    f = math.log(x / xs[i - 1]) / math.log(xs[i] / xs[i - 1])
    return math.exp(math.log(ys[i - 1]) + f * math.log(ys[i] / ys[i - 1]))


def block_code_table(rows, say):
    """The catalog's block-code unit from part startup and the Nsight
    Compute count of its kernels (ncu_probe.py --block-code over part
    startup-sass, whose rows name the tile_startup_* kernels): rows are
    thread blocks (2 tiles each, 80 KiB, 4 warps), columns the
    instructions each warp runs before its first tile wait plus after its
    last (pre + post), the first column the kernel with no code added; the
    same lines added before the first tile or after the last make one
    column (their counts' mean), its time the mean of the two. param_line_seconds: per parameter line
    beyond the kernel's own, the median over blocks and parameter variants
    of (time - the table's time at that variant's instructions) / its extra
    lines. The variant with all three is printed against the sum (do they
    add?), and the 16-tile rows against the 2-tile ones (does the code
    cost the same over a long walk?)."""
    count = {r[0]: (int(r[3]) + int(r[5]), int(r[6])) for r in rows
             if len(r) == 7 and r[0].startswith("tile_startup_")}
    cells, params, mixed, long = {}, {}, {}, {}
    for r in rows:
        if r[0] != "startup" or r[2] != "graph":
            continue
        f = fields(r[1])
        if f["kernel"] not in count:
            say("block code", f"no instruction count for {f['kernel']} (give the ncu_probe --block-code table too)")
            return
        n, lines = count[f["kernel"]]
        p, phases, t = int(f["programs"]), int(f["phases"]), float(r[4])
        pre, prm, post = int(f["pre_lines"]), int(f["params"]), int(f["post_lines"])
        if phases != 2:
            long[(pre, p, phases)] = (n, t)
        elif prm and (pre or post):
            mixed[p] = (n, lines, t)
        elif prm:
            params.setdefault(p, []).append((n, lines, t))
        else:
            cells.setdefault((p, pre + post), []).append((n, t))
    if not cells:
        return
    # The same lines before the first tile or after the last compile to
    # counts a few instructions apart: one column at their mean.
    col_of = {added: round(statistics.mean(n for (_, a), v in cells.items() if a == added for n, _ in v))
              for added in {a for _, a in cells}}
    cells = {(p, col_of[a]): [t for _, t in v] for (p, a), v in cells.items()}
    progs = sorted({p for p, _ in cells})
    cols = sorted({n for _, n in cells})
    if any((p, n) not in cells for p in progs for n in cols):
        say("block code", "incomplete grid, no table")
        return
    table = {p: [statistics.mean(cells[(p, n)]) for n in cols] for p in progs}
    base_lines = next(lines for n, lines in count.values() if n == cols[0])
    per_line = [(t - loglog(n, cols, table[p])) / (lines - base_lines)
                for p, vs in params.items() for n, lines, t in vs if lines > base_lines]
    pls = statistics.median(per_line) if per_line else 0.0
    for p, (n, lines, t) in sorted(mixed.items()):
        want = loglog(n, cols, table[p]) + pls * (lines - base_lines)
        say(f"block code, all three, {p} blocks", f"{t * 1e6:.2f} us measured, {want * 1e6:.2f} table + lines")
    for (pre, p, phases), (n, t) in sorted(long.items()):
        base = long.get((0, p, phases))
        if pre and base and p in table and n in cols:
            say(f"block code, {n} instructions, {p} blocks x {phases} tiles",
                f"+{(t - base[1]) * 1e6:.2f} us (x 2 tiles: +{(table[p][cols.index(n)] - table[p][0]) * 1e6:.2f} us)")
    one = min(progs, key=lambda p: abs(p - 264))
    rate = (cols[-1] - cols[0]) / (table[one][-1] - table[one][0])
    print("      - unit: block-code")
    print("        dtype: fp16")
    print(f"        param_lines: {base_lines}")
    print(f"        param_line_seconds: {pls:.3g}")
    print(f"        ops_per_second: {rate:.4g}")
    print_table(progs, cols, [table[p] for p in progs], [f"{p} blocks" for p in progs])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = load(sys.argv[1:])

    def seconds(bench, case, mode):
        for r in rows:
            if r[0] == bench and r[1] == case and r[2] == mode:
                return float(r[4])
        return None

    def say(name, value, unit=""):
        print(f"{name:44s} {value}{unit}")

    t = seconds("read", "size=1073741824", "eager")
    if t:
        say("hbm achievable (read 1 GiB, eager)", f"{(1 << 30) / t / 1e12:.3f}", " TB/s")
    lat = seconds("chase", "footprint=2147483648;hop_stride=256", "eager")
    for fp in ("8388608", "33554432", "268435456", "2147483648"):
        v = seconds("chase", f"footprint={fp};hop_stride=256", "eager")
        if v:
            say(f"chase latency, {int(fp) >> 20} MiB", f"{v * 1e9:.0f}", " ns")
    l2 = [(int(fields(r[1])["footprint"]) >> 20, float(r[5])) for r in rows if r[0] == "read_l2"]
    if l2:
        say("read_l2 by footprint (MiB: GB/s)", ", ".join(f"{m}: {g:.0f}" for m, g in l2))
    small = [seconds(b, f"size={n}", "graph") for b in ("copy", "read") for n in (1 << 20, 2 << 20, 4 << 20)]
    small = [v for v in small if v]
    if small:
        # The kernels' own work is under half a microsecond at these sizes:
        # the median is the per-kernel cost a graph of small kernels pays.
        say("launch: median small kernel in a graph", f"{statistics.median(small) * 1e6:.2f}",
            f" us (copy/read 1-4 MiB: {', '.join(f'{v * 1e6:.2f}' for v in small)})")
    queued = {mode: [float(r[4]) for r in rows if r[0] == "qlaunch" and r[2] == mode
                     and fields(r[1])["kernel"] in ("copy", "read")] for mode in ("stream", "graph")}
    if queued["stream"]:
        # The same statistic as the graph figure above, for kernels queued
        # in a stream (eager PyTorch with the host ahead): stream_launch_seconds.
        extra = statistics.median(queued["stream"]) - statistics.median(queued["graph"])
        say("stream launch: median small kernel queued", f"{statistics.median(queued['stream']) * 1e6:.2f}",
            f" us (graph of {fields(next(r for r in rows if r[0] == 'qlaunch')[1])['n']}:"
            f" {statistics.median(queued['graph']) * 1e6:.2f} us; {extra * 1e6:.2f} us more per kernel)")
        if small:
            say("stream_launch_seconds (graph launch + that)", f"{(statistics.median(small) + extra) * 1e6:.2f}", " us")
    ops = {}
    for r in rows:
        if r[0] == "topk_ops" and r[2] == "graph":
            f = fields(r[1])
            ops[(int(f["rows"]), int(f["cols"]))] = int(float(f["ops"]))
    if ops:
        print(f"topk kernels table (operations per call; rows {sorted({r for r, _ in ops})},"
              f" cols {sorted({c for _, c in ops})}):")
        for r in sorted({r for r, _ in ops}):
            print("            - [" + ", ".join(str(ops.get((r, c), "?")) for c in sorted({c for _, c in ops})) + f"]  # {r} rows")
    one = [r for r in rows if r[0] == "read_programs" and r[1].startswith("programs=1;block=8192;warps=8")]
    if one and lat:
        rate = float(one[0][5]) * 1e9
        say("one 8-warp program, 16 KiB steps", f"{rate / 1e9:.2f}", " GB/s")
        say("bytes in flight per program (x 2 GiB chase)", f"{rate * lat:.0f}", " B")

    def table(name, cells):
        if any(v is None for line in cells for v in line):
            return
        print(f"{name} table (seconds; rows {ROWS}):")
        for r, line in zip(ROWS, cells):
            print("            - [" + ", ".join(f"{v:.3g}" for v in line) + f"]  # {r} rows")

    table("topk", [[seconds("topk_d", f"rows={r};cols=128;k=32;dtype=fp16", "graph") if c == 128 else
                    seconds("topk_s", f"rows={r};cols={c};k=128;dtype=fp32", "graph") for c in TOPK_COLS] for r in ROWS])
    table("softmax", [[seconds("softmax", f"rows={r};cols={c};in=fp16;out=fp32", "graph") for c in TOPK_COLS[1:]]
                      for r in ROWS])
    big = [int(r[3]) / 4 / float(r[4]) / 1e9 for r in rows if r[0] == "topk_s" and r[2] == "graph"
           and fields(r[1]).get("rows") == "2048" and fields(r[1]).get("k") == "128" and int(fields(r[1])["cols"]) >= 16384]
    if big:
        say("topk G elements/s, 2048 rows x >= 16K", ", ".join(f"{g:.1f}" for g in big))
    sm = seconds("softmax", "rows=2048;cols=131072;in=fp16;out=fp32", "graph")
    if sm:
        say("softmax G elements/s, 2048 x 128K", f"{2048 * 131072 / sm / 1e9:.1f}")
    tg = [(r[1], int(fields(r[1])["elems"]), float(r[4])) for r in rows if r[0] == "tgather" and r[2] == "graph"]
    if tg:
        rate = [e / s / 1e9 for c, e, s in tg if c.startswith("pattern=rows") and e >= 1 << 28]
        say("torch.gather G elements/s (rows, >= 256M)", ", ".join(f"{g:.1f}" for g in rate))
        # Picking 32 of 128 components of every row (K stored once): the
        # copy unit of pattern scattered.
        rate = [e / s / 1e9 for c, e, s in tg if c.startswith("pattern=cols") and e >= 1 << 28]
        say("torch.gather G elements/s (cols, >= 256M)", ", ".join(f"{g:.1f}" for g in rate))
        say("torch.gather smallest call", f"{min(s for _, _, s in tg) * 1e6:.2f}", " us")
    for bench, unit in (("ex2", "T/s"), ("mma_sync", "TFLOP/s"), ("matmul_fp16", "TFLOP/s")):
        for r in rows:
            if r[0] == bench:
                say(f"{bench} {r[1].rsplit(';ops=', 1)[0]}", f"{int(fields(r[1])['ops']) / float(r[4]) / 1e12:.2f}", " " + unit)

    dot = [int(r[3]) / float(r[4]) / 1e12 for r in rows if r[0] == "dot_read"]
    if dot:
        say(f"hbm kernel_bandwidth triton (dot_read, {len(dot)} cases)",
            f"median {statistics.median(dot):.3f}, range {min(dot):.2f}-{max(dot):.2f}", " TB/s")

    loop_steps(rows, say)
    matmul_tables(rows, say)
    tile_load_table(rows, say)
    block_code_table(rows, say)

    tile = {}
    for r in rows:
        if r[0] == "attn_tile" and r[2] == "graph":
            f = fields(r[1])
            blocks, macs = int(f["blocks"]), int(f["macs"])
            tile.setdefault(f["kernel"], {})[(blocks, macs // blocks)] = float(r[4])
    for kernel, cells in tile.items():
        blocks = sorted({b for b, _ in cells})
        per = sorted({m for _, m in cells})
        if any((b, m) not in cells for b in blocks for m in per):
            say(f"attention-tile {kernel}", "incomplete grid, no table")
            continue
        big = max(blocks)
        rate = statistics.median(per[-1] * big / cells[(big, m)] for m in per[-1:])
        print(f"attention-tile {kernel}: {2 * rate / 1e12:.1f} TFLOP/s of tiles at {big} blocks x {per[-1]} MACs")
        print(f"        kernel: {kernel}")
        print(f"        ops_per_second: {rate:.4g}")
        print_table(blocks, per, [[cells[(b, m)] for m in per] for b in blocks], [f"{b} blocks" for b in blocks])


if __name__ == "__main__":
    main()
