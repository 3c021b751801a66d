#!/usr/bin/env python3
"""Dump the queries, keys and values a Hugging Face causal LM computes for one
prompt, for `bwsim run --kv-dump`.

The model runs the prompt once (the prefill). A custom attention function
records, for every requested layer, what attention sees after the rotary
embedding:

  layers.L.q  [H, T, D]    the query of every prompt position
  layers.L.k  [Hkv, T, D]  the key cache after the prompt
  layers.L.v  [Hkv, T, D]  the value cache after the prompt

(T = the prompt's tokens; GQA models have Hkv < H). bwsim then simulates
decode steps over the first positions of the cache: with --seq S and --steps
N, step t attends over positions [0, S+t) with the query of position S-1+t,
so the dumped prompt is replayed as if it were being generated (bwsim's
default seq makes the last step end at the last position). H2O's prefill
scores use the queries of every earlier position, which is why all of them
are dumped.

Output formats:
  --format safetensors (default): one file, tensors in the model's dtype
                                  (F16, BF16 or F32);
  --format npy:                   a directory of layers.L.{q,k,v}.npy files
                                  (bfloat16 is written as float32, which
                                  NumPy can hold).
Both are written with NumPy alone (no safetensors package needed).

Requirements: torch, numpy and transformers >= 4.48 (for its attention
function registry), plus the model's weights (a local directory or a Hub
name you have access to). Example:

  python3 scripts/dump_kv.py --model meta-llama/Llama-2-7b-hf \\
      --prompt-file prompt.txt --max-tokens 4096 --layers 0,15,31 \\
      --out llama2-7b.safetensors
  bwsim run --method sparq --r 16 --k 256 --kv-dump llama2-7b.safetensors \\
      --layer 15 --steps 16

--synthetic H,HKV,T,D writes random data of that shape instead of running a
model (no torch or transformers needed): a quick check of the files and of
bwsim's loader.
"""

import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np


def write_safetensors(path, arrays):
    """Write {name: (dtype, shape, little-endian bytes)} as .safetensors."""
    header, blobs, offset = {}, [], 0
    for name in sorted(arrays):
        dtype, shape, blob = arrays[name]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "bwsim-kv-dump"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes
    atomic_write(path, [struct.pack("<Q", len(text)), text] + blobs)


def write_npy(path, array):
    """Write a C-ordered little-endian float array as .npy (format 1.0)."""
    array = np.ascontiguousarray(array)
    descr = {np.dtype(np.float16): "<f2", np.dtype(np.float32): "<f4",
             np.dtype(np.float64): "<f8"}[array.dtype]
    shape = "(" + "".join(f"{d}, " for d in array.shape).rstrip(" ")
    if len(array.shape) > 1:
        shape = shape.rstrip(",")
    head = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}), }}"
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    atomic_write(path, [b"\x93NUMPY\x01\x00", struct.pack("<H", len(head)),
                        head.encode("latin1"), array.astype(descr).tobytes()])


def atomic_write(path, chunks):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".dump-")
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(out, fmt, layers):
    """Write layers, {L: (q, k, v)} with q [H, T, D] and k, v [Hkv, T, D]:
    float16 or float32 numpy arrays, or (uint16 bits, "bf16") for bfloat16."""
    if fmt == "npy":
        os.makedirs(out, exist_ok=True)
        for layer, qkv in layers.items():
            for name, x in zip("qkv", qkv):
                if isinstance(x, tuple):  # bfloat16 bits: widen to float32
                    x = (x[0].astype(np.uint32) << 16).view(np.float32)
                write_npy(os.path.join(out, f"layers.{layer}.{name}.npy"), x)
        return
    arrays = {}
    for layer, qkv in layers.items():
        for name, x in zip("qkv", qkv):
            if isinstance(x, tuple):
                bits = np.ascontiguousarray(x[0]).astype("<u2")
                arrays[f"layers.{layer}.{name}"] = ("BF16", bits.shape, bits.tobytes())
            else:
                tag, descr = {np.dtype(np.float16): ("F16", "<f2"),
                              np.dtype(np.float32): ("F32", "<f4")}[x.dtype]
                arrays[f"layers.{layer}.{name}"] = (tag, x.shape, np.ascontiguousarray(x).astype(descr).tobytes())
    write_safetensors(out, arrays)


def synthetic(spec, layers, seed):
    h, hkv, t, d = (int(x) for x in spec.split(","))
    if h % hkv:
        sys.exit(f"--synthetic: H={h} is not a multiple of HKV={hkv}")
    rng = np.random.default_rng(seed)
    return {layer: (rng.standard_normal((h, t, d), dtype=np.float32),
                    rng.standard_normal((hkv, t, d), dtype=np.float32),
                    rng.standard_normal((hkv, t, d), dtype=np.float32))
            for layer in layers}


def from_model(args):
    import torch
    try:
        from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError as e:
        sys.exit(f"dump_kv.py needs transformers >= 4.48 (AttentionInterface): {e}")

    if args.prompt_file:
        with open(args.prompt_file, encoding="utf-8") as f:
            prompt = f.read()
    else:
        prompt = args.prompt
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[args.dtype]
    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok(prompt, return_tensors="pt").input_ids[:, : args.max_tokens]

    captured = {}

    def record(module, query, key, value, attention_mask, **kwargs):
        layer = getattr(module, "layer_idx", None)
        if args.layers is None or layer in args.layers:
            # query [1, H, T, D] after the rotary embedding; key and value
            # [1, Hkv, T, D] as cached, before any GQA repeat.
            captured[layer] = tuple(x[0].detach().to("cpu").contiguous() for x in (query, key, value))
        return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("bwsim_dump", record)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation="bwsim_dump")
    model.to(args.device).eval()
    with torch.no_grad():
        model(ids.to(args.device), use_cache=True)
    if not captured:
        sys.exit("no attention layer was recorded: does this model use transformers' attention interface?")

    def to_numpy(x):
        if x.dtype == torch.bfloat16:
            return (x.view(torch.int16).numpy().view(np.uint16), "bf16")
        return x.numpy()

    print(f"{ids.shape[1]} tokens, layers {sorted(captured)}, q {tuple(captured[min(captured)][0].shape)}, "
          f"k {tuple(captured[min(captured)][1].shape)}", file=sys.stderr)
    return {layer: tuple(to_numpy(x) for x in qkv) for layer, qkv in sorted(captured.items())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="Hugging Face model name or local directory")
    ap.add_argument("--prompt", default="", help="the prompt text")
    ap.add_argument("--prompt-file", help="read the prompt from this file")
    ap.add_argument("--max-tokens", type=int, default=4096, help="truncate the prompt to this many tokens")
    ap.add_argument("--layers", help="comma-separated layer indices (default: all)")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"], help="model dtype")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    ap.add_argument("--format", default="safetensors", choices=["safetensors", "npy"])
    ap.add_argument("--out", required=True, help="output .safetensors file or .npy directory")
    ap.add_argument("--synthetic", metavar="H,HKV,T,D", help="write random data of this shape instead of running a model")
    ap.add_argument("--seed", type=int, default=0, help="seed of --synthetic")
    args = ap.parse_args()
    args.layers = None if args.layers is None else {int(x) for x in args.layers.split(",")}
    if args.synthetic:
        layers = synthetic(args.synthetic, sorted(args.layers or {0}), args.seed)
    else:
        if not args.model or not (args.prompt or args.prompt_file):
            ap.error("--model and --prompt or --prompt-file are required (or --synthetic)")
        layers = from_model(args)
    save(args.out, args.format, layers)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
