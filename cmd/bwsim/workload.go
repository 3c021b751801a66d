package main

import (
	"fmt"
	"strings"

	"github.com/bwsim/bwsim/kernels"
	"github.com/spf13/pflag"
)

// workloadFlags are the flags that describe a simulated decode, shared by
// run, bench and profile.
type workloadFlags struct {
	method, impl, layout, dtype, workload string
	seq                                   string
	r, k                                  int
	page, labelBits, sinks, steps         int
	batch, heads, kvHeads, headDim        int
	seed                                  uint64
	sampleHeads                           int
	noRealloc, noAppend, materialize      bool
	upcast, compiled, fusedExact          bool
	serialCombine, rankPass               bool
	split, tileKeys, tilesInFlight        int
	blockInstructions, paramLines         int
	queryTile, kernel                     string
	kvDump                                string
	layer                                 int
	fs                                    *pflag.FlagSet
}

func (w *workloadFlags) register(fs *pflag.FlagSet) {
	w.fs = fs
	fs.StringVar(&w.method, "method", "sparq", "attention method: "+strings.Join(kernels.Methods(), ", "))
	fs.IntVar(&w.k, "k", 128, "token budget of every sparse method: positions read exactly (clamped to seq; k ≥ seq is dense)")
	fs.IntVar(&w.r, "r", 32, "proxy size (≤ head-dim): sparq's query components, loki's principal components d′, doublesparse's channels")
	fs.StringVar(&w.layout, "k-layout", "twice", "K storage of sparq (default twice) and loki (default once): twice (row-major K plus S-contiguous Kt) or once")
	fs.IntVar(&w.page, "page", kernels.DefaultPage, "quest: tokens per page")
	fs.IntVar(&w.labelBits, "label-bits", kernels.DefaultLabelBits, "doublesparse: bits per label element (1, 2, 4, 8 or 16)")
	fs.IntVar(&w.sinks, "sinks", kernels.DefaultSinks, "window: initial (sink) tokens always read, within k")
	fs.IntVar(&w.steps, "steps", 1, "consecutive decode steps, the cache growing by one token each (step t runs over seq+t positions)")
	fs.StringVar(&w.impl, "impl", "unfused", "kernel structure: unfused (one stage per step) or fused (one stage, intermediates on chip)")
	fs.StringVar(&w.seq, "seq", "4k", "sequence length S at the first step (cached positions incl. the current token), e.g. 4096, 32k")
	fs.IntVar(&w.batch, "batch", 1, "sequences per step")
	fs.IntVar(&w.heads, "heads", 32, "query heads")
	fs.IntVar(&w.kvHeads, "kv-heads", 0, "key/value heads (default: heads, i.e. MHA; fewer for GQA)")
	fs.IntVar(&w.headDim, "head-dim", 128, "head size d_h")
	fs.StringVar(&w.dtype, "dtype", "fp16", "target element type: fp16, bf16 or fp32")
	fs.Uint64Var(&w.seed, "seed", 1, "random seed of the synthetic workload")
	fs.StringVar(&w.workload, "workload", "llm-like", "synthetic data: gaussian or llm-like")
	fs.IntVar(&w.sampleHeads, "sample-heads", 0, "simulate this many (sequence, kv-head) pairs and scale the trace (0: automatic)")
	fs.BoolVar(&w.noRealloc, "no-realloc", false, "sparq and topk: no mean-value reallocation (α ≡ 1, no v̄), as the paper does for GQA models")
	fs.IntVar(&w.split, "split", 0, "positions per work unit of the stages that scan the sequence (a split-K grid; 0: dense 256, sparse methods one per sequence and kv-head)")
	fs.BoolVar(&w.upcast, "upcast", false, "dense unfused: compute on fp32 copies of q, K and V (PyTorch's math attention backend with 16-bit inputs: casts, GQA repeats, a scaled copy of K)")
	fs.BoolVar(&w.materialize, "materialize", false, "sparq unfused: gather K's r columns through device memory (torch.gather then matmul, a PyTorch implementation) instead of inside the scoring kernel")
	fs.BoolVar(&w.fusedExact, "fused-exact", false, "unfused selecting methods: the exact step (gathers of the selected K and V rows, softmax, weighted sum, blend) runs as one kernel, logits on chip")
	fs.BoolVar(&w.compiled, "compiled", false, "with --materialize: the pipeline runs under torch.compile (Inductor's generated gathers stream at memory rate; element-wise steps fuse)")
	fs.StringVar(&w.queryTile, "query-tile", "", "dense fused: the tiled kernel and its query rows per thread block, KERNEL:ROWS (flash2:128, mem-efficient:64): a decode query pays for the whole tile, priced at the device's measured attention-tile table for that kernel")
	fs.BoolVar(&w.serialCombine, "serial-combine", false, "dense fused with a split grid: the combine kernel walks the splits one dependent load at a time, as FlashAttention-2's does")
	fs.IntVar(&w.tileKeys, "tile-keys", 0, "dense fused: the kernel loads K and V in tiles of this many key positions (128: FlashAttention-2's split-KV kernel, cuDNN's), priced at the device's measured tile-loads table (0: streamed at the memory's rate)")
	fs.IntVar(&w.tilesInFlight, "tiles-in-flight", 0, "with --tile-keys: tiles each thread block keeps in flight, 1 issuing each when the last has landed (FlashAttention-2), 2 issuing the next before waiting on the current (cuDNN) (0: 1)")
	fs.IntVar(&w.blockInstructions, "block-instructions", 0, "with --tile-keys: instructions each warp runs before its first tile wait and after its last tile (Nsight Compute: 1589 for FlashAttention-2's split-KV kernel, 736 for cuDNN's), priced at the device's measured block-code table (0: not modelled)")
	fs.IntVar(&w.paramLines, "param-lines", 0, "with --tile-keys: 64-byte lines of kernel parameters each block reads before its first tile wait (7 FlashAttention-2, 10 cuDNN), each a constant-cache miss per launch (0: not modelled)")
	fs.BoolVar(&w.rankPass, "rank-pass", false, "sparq unfused: top-k ranks an fp32 tensor that its own kernel writes from the approximate logits (their group sum, or a cast without GQA), as PyTorch code that keeps the logits for the softmax does")
	fs.StringVar(&w.kernel, "kernel", "", "the class of kernel that runs the stages, priced from the device's figures for it where it lists them: triton (sparq unfused, gathering on chip: Triton kernels feeding tl.dot, which stream below the copy rate), cublas (dense unfused: scores and weighted sum as cuBLAS batched products, priced from the device's measured matmul tables)")
	fs.BoolVar(&w.noAppend, "no-append", false, "leave out the stage that appends the current token's k and v to the cache")
	fs.StringVar(&w.kvDump, "kv-dump", "", "read q, K and V from a dump (.safetensors file or directory of .npy files, see scripts/dump_kv.py); sets the shape: heads, kv-heads, head-dim and, unless given, batch and seq")
	fs.IntVar(&w.layer, "layer", -1, "with --kv-dump: the layer to simulate (default: the middle dumped layer)")
}

// changed reports whether the user set the flag.
func (w *workloadFlags) changed(name string) bool {
	return w.fs != nil && w.fs.Changed(name)
}

// config validates the flags and returns the kernel configuration.
func (w *workloadFlags) config() (kernels.Config, error) {
	if w.steps <= 0 {
		return kernels.Config{}, badInput("--steps must be positive, got %d", w.steps)
	}
	dt, err := kernels.ParseDType(w.dtype)
	if err != nil {
		return kernels.Config{}, asUsage(err)
	}
	c := kernels.Config{
		DType:       dt,
		Seed:        w.seed,
		SampleHeads: w.sampleHeads,
		Steps:       w.steps,
		Spec:        w.spec(),
	}
	if c.Spec.Tile, err = kernels.ParseQueryTile(w.queryTile); err != nil {
		return c, asUsage(err)
	}
	if w.kvDump != "" {
		if err := w.dumpShape(&c); err != nil {
			return c, err
		}
	} else {
		if w.changed("layer") {
			return c, badInput("--layer selects a layer of --kv-dump")
		}
		seq, err := parseCount("seq", w.seq)
		if err != nil {
			return kernels.Config{}, err
		}
		if w.heads <= 0 {
			return kernels.Config{}, badInput("--heads must be positive, got %d", w.heads)
		}
		kv := w.kvHeads
		if kv == 0 {
			kv = w.heads
		}
		wl, err := kernels.ParseWorkload(w.workload)
		if err != nil {
			return kernels.Config{}, asUsage(err)
		}
		c.Workload = wl
		c.Shape = kernels.Shape{Batch: w.batch, Heads: w.heads, KVHeads: kv, HeadDim: w.headDim, Seq: seq}
	}
	// Plan validates everything and checks memory without allocating.
	if _, _, err := kernels.Plan(c); err != nil {
		return c, asUsage(err)
	}
	return c, nil
}

// spec returns the kernel spec of the method flags; parameters the method
// does not use stay unset.
func (w *workloadFlags) spec() kernels.Spec {
	s := kernels.Spec{Method: w.method, Impl: kernels.Impl(w.impl), AppendKV: !w.noAppend, Split: w.split, Materialize: w.materialize, Compiled: w.compiled, FusedExact: w.fusedExact, Upcast: w.upcast, SerialCombine: w.serialCombine, TileKeys: w.tileKeys, TilesInFlight: w.tilesInFlight, BlockInstructions: w.blockInstructions, ParamLines: w.paramLines, RankPass: w.rankPass, Kernel: w.kernel}
	if w.method == kernels.MethodDense {
		return s
	}
	s.K = w.k
	switch w.method {
	case kernels.MethodSparQ:
		s.R, s.KLayout = w.r, kernels.KLayout(w.layout)
	case kernels.MethodLoki:
		s.R = w.r
		if w.changed("k-layout") {
			s.KLayout = kernels.KLayout(w.layout)
		}
	case kernels.MethodDoubleSparse:
		s.R, s.LabelBits = w.r, w.labelBits
	case kernels.MethodQuest:
		s.Page = w.page
	case kernels.MethodWindow:
		s.Sinks = w.sinks
	}
	s.NoReallocation = w.noRealloc
	return s
}

// dumpShape takes the shape from the dump's header: heads, kv-heads and
// head-dim always, batch and seq unless given (seq then makes the last step
// end at the dump's last position).
func (w *workloadFlags) dumpShape(c *kernels.Config) error {
	for _, f := range []string{"heads", "kv-heads", "head-dim", "workload", "seed"} {
		if w.changed(f) {
			return badInput("--%s and --kv-dump: the dump sets the shape and the data", f)
		}
	}
	info, err := kernels.LoadDumpInfo(w.kvDump)
	if err != nil {
		return asUsage(err)
	}
	c.KVDump = w.kvDump
	c.Workload = kernels.WorkloadDump
	c.Layer = w.layer
	if !w.changed("layer") {
		c.Layer = info.MiddleLayer()
	}
	batch := info.Batch
	if w.changed("batch") {
		batch = w.batch
	}
	seq := info.Seq - w.steps + 1
	if w.changed("seq") {
		if seq, err = parseCount("seq", w.seq); err != nil {
			return err
		}
	}
	if seq < 1 {
		return badInput("kv-dump %s has %d positions, fewer than --steps %d", w.kvDump, info.Seq, w.steps)
	}
	c.Shape = kernels.Shape{Batch: batch, Heads: info.Heads, KVHeads: info.KVHeads, HeadDim: info.HeadDim, Seq: seq}
	return nil
}

// describeSpec is the method and its parameters in words.
func describeSpec(s kernels.Spec) string {
	desc := s.Method
	if s.R > 0 {
		desc += fmt.Sprintf(" r=%d", s.R)
	}
	if s.K > 0 {
		desc += fmt.Sprintf(" k=%d", s.K)
	}
	if s.KLayout != "" {
		desc += " k-layout=" + string(s.KLayout)
	}
	switch s.Method {
	case kernels.MethodQuest:
		desc += fmt.Sprintf(" page=%d", s.Page)
	case kernels.MethodDoubleSparse:
		desc += fmt.Sprintf(" label-bits=%d", s.LabelBits)
	case kernels.MethodWindow:
		desc += fmt.Sprintf(" sinks=%d", s.Sinks)
	}
	if s.NoReallocation {
		desc += " no-realloc"
	}
	if s.Split > 0 {
		desc += fmt.Sprintf(" split=%d", s.Split)
	}
	if s.Materialize {
		desc += " materialize"
	}
	if s.Compiled {
		desc += " compiled"
	}
	if s.FusedExact {
		desc += " fused-exact"
	}
	if s.Upcast {
		desc += " upcast"
	}
	if s.RankPass {
		desc += " rank-pass"
	}
	if s.SerialCombine {
		desc += " serial-combine"
	}
	if s.TileKeys > 0 {
		desc += fmt.Sprintf(" tile-keys=%d", s.TileKeys)
	}
	if s.TilesInFlight > 1 {
		desc += fmt.Sprintf(" tiles-in-flight=%d", s.TilesInFlight)
	}
	if s.BlockInstructions > 0 {
		desc += fmt.Sprintf(" block-instructions=%d", s.BlockInstructions)
	}
	if s.ParamLines > 0 {
		desc += fmt.Sprintf(" param-lines=%d", s.ParamLines)
	}
	if !s.Tile.IsZero() {
		desc += " query-tile=" + s.Tile.String()
	}
	if s.Kernel != "" {
		desc += " kernel=" + s.Kernel
	}
	return desc
}
