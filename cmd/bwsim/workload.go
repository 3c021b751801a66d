package main

import (
	"github.com/bwsim/bwsim/kernels"
	"github.com/spf13/pflag"
)

// workloadFlags are the flags that describe one simulated decode step,
// shared by run, bench and profile.
type workloadFlags struct {
	method, impl, layout, dtype, workload string
	seq                                   string
	r, k                                  int
	batch, heads, kvHeads, headDim        int
	seed                                  uint64
	sampleHeads                           int
	noRealloc, noAppend                   bool
}

func (w *workloadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&w.method, "method", "sparq", "attention method: dense or sparq")
	fs.IntVar(&w.r, "r", 32, "SparQ: query components used for approximate scores (≤ head-dim)")
	fs.IntVar(&w.k, "k", 128, "SparQ: positions fetched exactly (clamped to seq; k ≥ seq is dense)")
	fs.StringVar(&w.layout, "k-layout", "twice", "SparQ K storage: twice (row-major K plus S-contiguous Kt) or once")
	fs.StringVar(&w.impl, "impl", "unfused", "kernel structure: unfused (one stage per step) or fused (one stage, intermediates on chip)")
	fs.StringVar(&w.seq, "seq", "4k", "sequence length S (cached positions incl. the current token), e.g. 4096, 32k")
	fs.IntVar(&w.batch, "batch", 1, "sequences per step")
	fs.IntVar(&w.heads, "heads", 32, "query heads")
	fs.IntVar(&w.kvHeads, "kv-heads", 0, "key/value heads (default: heads, i.e. MHA; fewer for GQA)")
	fs.IntVar(&w.headDim, "head-dim", 128, "head size d_h")
	fs.StringVar(&w.dtype, "dtype", "fp16", "target element type: fp16, bf16 or fp32")
	fs.Uint64Var(&w.seed, "seed", 1, "random seed of the synthetic workload")
	fs.StringVar(&w.workload, "workload", "llm-like", "synthetic data: gaussian or llm-like")
	fs.IntVar(&w.sampleHeads, "sample-heads", 0, "simulate this many (sequence, kv-head) pairs and scale the trace (0: automatic)")
	fs.BoolVar(&w.noRealloc, "no-realloc", false, "SparQ: no mean-value reallocation (α ≡ 1, no v̄), as the paper does for GQA models")
	fs.BoolVar(&w.noAppend, "no-append", false, "leave out the stage that appends the current token's k and v to the cache")
}

// config validates the flags and returns the kernel configuration.
func (w *workloadFlags) config() (kernels.Config, error) {
	seq, err := parseCount("seq", w.seq)
	if err != nil {
		return kernels.Config{}, err
	}
	kv := w.kvHeads
	if kv == 0 {
		kv = w.heads
	}
	dt, err := kernels.ParseDType(w.dtype)
	if err != nil {
		return kernels.Config{}, asUsage(err)
	}
	wl, err := kernels.ParseWorkload(w.workload)
	if err != nil {
		return kernels.Config{}, asUsage(err)
	}
	c := kernels.Config{
		Shape:       kernels.Shape{Batch: w.batch, Heads: w.heads, KVHeads: kv, HeadDim: w.headDim, Seq: seq},
		DType:       dt,
		Workload:    wl,
		Seed:        w.seed,
		SampleHeads: w.sampleHeads,
		Spec:        kernels.Spec{Method: w.method, Impl: kernels.Impl(w.impl), AppendKV: !w.noAppend},
	}
	if w.method == kernels.MethodSparQ {
		c.Spec.R, c.Spec.K, c.Spec.KLayout = w.r, w.k, kernels.KLayout(w.layout)
		c.Spec.NoReallocation = w.noRealloc
	}
	// Plan validates everything and checks memory without allocating.
	if _, _, err := kernels.Plan(c); err != nil {
		return c, asUsage(err)
	}
	return c, nil
}
