"""Launch grids of measure.py's Triton SparQ kernels, shared with the script
that describes them to bwsim (add_columns.py); pure Python, no GPU needed."""


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
