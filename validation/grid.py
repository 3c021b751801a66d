"""Launch grids of measure.py's Triton SparQ kernels and of the flash SDPA
backend, shared with the script that describes them to bwsim
(add_columns.py); pure Python, no GPU needed."""

import math


def approx_grid(pairs, S, r, split, sms=132):
    """Step 1's grid: (chunk, nsplit, chunks_per_program).

    Each program scores `chunk` positions per loop step (a [r, chunk] tile of
    Kt, about 16 KiB in fp16); without `split` one program per (sequence, KV
    head) pair walks all of S; with it, S is also split in powers of two until
    about 4 programs per SM run (or a program has one chunk left)."""
    chunk = max(64, min(1024, 8192 // r))
    nchunks = -(-S // chunk)
    nsplit = 1
    if split:
        while nsplit * 2 <= nchunks and pairs * nsplit < 4 * sms:
            nsplit *= 2
    return chunk, nsplit, -(-nchunks // nsplit)


def flash2_grid(batch, heads, kv_heads, seq, head_dim=128, sms=132):
    """FlashAttention-2's launch for one decode query per head, as PyTorch's
    flash backend runs it: (splits, positions per split, query tile rows).

    A GQA group's query heads become the query rows of one (sequence, KV
    head) problem (FA2 swaps them in when the query length is 1). FA2 then
    splits the keys across thread blocks only when the problems' 64-row
    blocks would leave most of 2 x SMs slots idle, choosing the fewest
    splits whose wave efficiency is within 85 % of the best, among split
    counts that change the key blocks per split (blocks of 128 keys at
    head_dim 128, 256 at 64, 64 above). With one split it runs its
    non-split kernel (128-row query tiles on sm90); with more, the split-KV
    kernel (64-row tiles) and a combine kernel."""
    rows = heads // kv_heads if heads > kv_heads else 1
    problems = batch * (kv_heads if heads > kv_heads else heads) * -(-rows // 64)
    block_n = 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)
    n_blocks = -(-seq // block_n)
    slots = 2 * sms
    splits = 1
    if problems < 0.8 * slots:
        top = min(128, slots, n_blocks)
        ok = [s for s in range(1, top + 1) if s == 1 or -(-n_blocks // s) != -(-n_blocks // (s - 1))]

        def eff(s):
            waves = problems * s / slots
            return waves / math.ceil(waves)

        best = max(eff(s) for s in ok)
        splits = next(s for s in ok if eff(s) >= 0.85 * best)
    if splits == 1:
        return 1, seq, 128
    return splits, -(-n_blocks // splits) * block_n, 64


def cudnn_grid(batch, heads, kv_heads, seq, sms=132):
    """cuDNN's fused decode attention (its sm80 flash fprop kernel with
    16 x 128 tiles, then lean_reduction_kernel): positions per thread block.

    Inferred from the six launch shapes Nsight Compute recorded on an H100
    (validation/h100-ncu-hmma.csv and h100-ncu-launch.csv, 132 SMs): a GQA
    group shares one block per (sequence, KV head) problem, and where the
    problems are few the keys are split across blocks of whole 128-key
    tiles, as many per problem as fill 2 x SMs blocks: (32, 8, 1) at B 1,
    32/8, S 4K; (8, 32, 1) at B 1, 32/32, S 32K; (8, 8, 4) at B 4, 32/8,
    S 1K. With 128 problems or more it does not split: (1, 32, 4) at B 4,
    32/32, S 1K and (1, 8, 16) at B 16, 32/8, S 1K (no reduction kernel),
    where filling 2 x SMs would have given 2 splits; (1, 32, 64) at B 64,
    32/32, S 4K. The threshold lies between 33 and 128 problems; taken here
    at FlashAttention-2's (0.8 x SMs: one split from 106 problems on an
    H100), which no recorded shape contradicts. Whether the count rounds to
    a power of two is not settled either (no measured row tells the two
    apart)."""
    problems = batch * (kv_heads if heads > kv_heads else heads)
    n_blocks = -(-seq // 128)
    splits = 1 if problems >= 0.8 * sms else max(1, min(n_blocks, (2 * sms) // problems))
    return -(-n_blocks // splits) * 128
