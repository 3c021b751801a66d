"""SASS listings in program order, shared by measure.py (cuobjdump of the
binaries it builds) and ncu_probe.py (Nsight Compute's source page of
library kernels): what a kernel runs before it first waits for a tile."""

import re

_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+([^;]*?)\s*;")
_PARAM = re.compile(r"c\[0x0\]\[(0x[0-9a-f]+)\]")


def cuobjdump_instructions(text, function):
    """The instructions of `function` in `cuobjdump -sass` output, in
    program order (predicates kept, encodings and addresses dropped)."""
    ops, inside = [], False
    for line in text.splitlines():
        if "Function :" in line:
            inside = line.split("Function :", 1)[1].strip() == function
            continue
        if inside:
            m = _INSTRUCTION.search(line)
            if m:
                ops.append(m.group(1))
    return ops


def opcode(instruction):
    """The opcode of one SASS instruction (a leading @predicate skipped)."""
    toks = instruction.split()
    if toks and toks[0].startswith("@"):
        toks = toks[1:]
    return toks[0] if toks else ""


def prologue(instructions):
    """(count, param_lines) of the instructions before the first DEPBAR (the
    first wait for a cp.async group): the start-up a block runs before its
    first tile can land. param_lines counts the distinct 64-byte lines of
    constant bank 0 (launch sizes and kernel parameters) those instructions
    read: each is a constant-cache miss the first time an SM reads it in a
    launch. A listing with no DEPBAR counts all of it."""
    lines, count = set(), len(instructions)
    for i, ins in enumerate(instructions):
        if opcode(ins).startswith("DEPBAR"):
            count = i
            break
        lines |= {int(o, 16) // 64 for o in _PARAM.findall(ins)}
    return count, len(lines)
