package kernels

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/traces"
)

// Config is everything one simulated decode step depends on.
type Config struct {
	Shape    Shape    `json:"shape"`
	Spec     Spec     `json:"spec"`
	DType    DType    `json:"dtype"`
	Workload Workload `json:"workload"`
	Seed     uint64   `json:"seed"`
	// SampleHeads is how many (sequence, KV head) pairs to simulate; the
	// trace is scaled to all Batch·KVHeads pairs. 0 picks automatically: all
	// pairs while their data stays under AutoSampleBytes, otherwise the
	// largest divisor of the pair count whose data fits in it.
	SampleHeads int `json:"sample_heads"`
	// Workers bounds parallelism; 0 means GOMAXPROCS.
	Workers int `json:"-"`
	// MemoryLimit overrides the memory available for the simulation, in
	// bytes; 0 means what the machine reports as available.
	MemoryLimit int64 `json:"-"`
}

// AutoSampleBytes is the host data (q, K, V, Kt as fp32) that automatic
// sampling keeps within: enough pairs for stable fidelity statistics, few
// enough for a sweep point to take well under a second.
const AutoSampleBytes = 256 << 20

// pairBytes is the host memory of one sampled pair's data.
func pairBytes(c Config) int64 {
	g, D, S := int64(c.Shape.Group()), int64(c.Shape.HeadDim), int64(c.Shape.Seq)
	kv := int64(2)
	if c.Spec.Method == MethodSparQ && c.Spec.KLayout == KTwice {
		kv = 3
	}
	return 4 * (g*D + kv*S*D + 2*D + g*D)
}

// workerBytes is one worker's scratch memory.
func workerBytes(c Config) int64 {
	g, D, S, K := int64(c.Shape.Group()), int64(c.Shape.HeadDim), int64(c.Shape.Seq), int64(max(c.Spec.K, 1))
	return 4*(g*S+3*max(S, D)+D+g*K) + 8*g*S // + fidelity's float64 probabilities
}

// MemoryEstimate is what a run will allocate on the host.
type MemoryEstimate struct {
	Pairs     int64 // sampled pairs
	PairBytes int64 // data per pair
	Workers   int
	Total     int64
}

func (m MemoryEstimate) String() string {
	return fmt.Sprintf("%s for %d sampled pairs (%s each) and %d workers",
		units.Bytes(float64(m.Total)), m.Pairs, units.Bytes(float64(m.PairBytes)), m.Workers)
}

// Plan resolves the configuration: validated spec, sample size and memory
// estimate, without allocating anything.
func Plan(c Config) (Config, MemoryEstimate, error) {
	spec, err := c.Spec.Resolve(c.Shape)
	if err != nil {
		return c, MemoryEstimate{}, err
	}
	c.Spec = spec
	if _, err := ParseDType(string(c.DType)); err != nil {
		return c, MemoryEstimate{}, err
	}
	if _, err := ParseWorkload(string(c.Workload)); err != nil {
		return c, MemoryEstimate{}, err
	}
	total := c.Shape.Pairs()
	per := pairBytes(c)
	switch {
	case c.SampleHeads < 0:
		return c, MemoryEstimate{}, fmt.Errorf("sample-heads must be positive (or 0 for automatic), got %d", c.SampleHeads)
	case c.SampleHeads == 0:
		// The largest divisor of the pair count within the budget, so the
		// trace scales by a whole number.
		n := min(max(int64(1), AutoSampleBytes/per), total)
		for total%n != 0 {
			n--
		}
		c.SampleHeads = int(n)
	case int64(c.SampleHeads) > total:
		return c, MemoryEstimate{}, fmt.Errorf("sample-heads %d exceeds the %d (sequence, kv-head) pairs of the shape", c.SampleHeads, total)
	}
	workers := c.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, c.SampleHeads)
	c.Workers = workers
	est := MemoryEstimate{Pairs: int64(c.SampleHeads), PairBytes: per, Workers: workers}
	est.Total = est.Pairs*per + int64(workers)*workerBytes(c)
	limit := c.MemoryLimit
	if limit <= 0 {
		limit = availableMemory()
	}
	if limit > 0 && est.Total > limit {
		return c, est, fmt.Errorf("the simulation needs an estimated %v, more than the %s available: lower --sample-heads or the shape", est, units.Bytes(float64(limit)))
	}
	return c, est, nil
}

// sampledPairs picks n of total pairs, evenly spaced so that every batch
// position and head range is represented.
func sampledPairs(total, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) * total / n
	}
	return out
}

// Prepared holds the generated data of the sampled pairs, ready to run (and
// rerun, for timing) without generating it again.
type Prepared struct {
	Config   Config
	Estimate MemoryEstimate
	pairs    []preparedPair
}

type preparedPair struct {
	b, hk int
	data  *PairData
	kt    []float32 // K transposed, when K is stored twice
	vmean []float32 // running mean before the current token
}

// Prepare validates c, checks memory, and generates the sampled pairs' data.
func Prepare(ctx context.Context, c Config) (*Prepared, error) {
	c, est, err := Plan(c)
	if err != nil {
		return nil, err
	}
	idx := sampledPairs(c.Shape.Pairs(), int64(c.SampleHeads))
	p := &Prepared{Config: c, Estimate: est, pairs: make([]preparedPair, len(idx))}
	D, S := c.Shape.HeadDim, c.Shape.Seq
	err = parallel(ctx, len(idx), c.Workers, func(i, _ int) error {
		pi := idx[i]
		b, hk := int(pi/int64(c.Shape.KVHeads)), int(pi%int64(c.Shape.KVHeads))
		d, err := Generate(c.Workload, c.Shape, c.DType, c.Seed, b, hk)
		if err != nil {
			return err
		}
		pp := preparedPair{b: b, hk: hk, data: d}
		if c.Spec.Method == MethodSparQ && c.Spec.KLayout == KTwice {
			pp.kt = make([]float32, S*D)
			for s := range S {
				for j := range D {
					pp.kt[j*S+s] = d.K[s*D+j]
				}
			}
		}
		// The running mean as the server holds it before this step: over
		// the positions before the current token when the step appends it,
		// over all of them otherwise.
		n := S
		if c.Spec.AppendKV {
			n = S - 1
		}
		pp.vmean = make([]float32, D)
		if n > 0 {
			acc := make([]float64, D)
			for s := range n {
				for j, x := range d.V[s*D : (s+1)*D] {
					acc[j] += float64(x)
				}
			}
			for j := range acc {
				pp.vmean[j] = float32(acc[j] / float64(n))
			}
		}
		p.pairs[i] = pp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Result is one simulated step.
type Result struct {
	Config Config `json:"config"`
	// Trace is nil for untraced runs.
	Trace   *traces.Trace `json:"-"`
	Outputs []PairOutput  `json:"-"`
}

// Step runs the kernel once over every sampled pair, recording the trace
// when traced is true. It can be called repeatedly (for timing); each call
// starts from the same cache state.
func (p *Prepared) Step(ctx context.Context, traced bool) (*Result, error) {
	c := p.Config
	pl := newPlan(c.Spec, c.Shape, c.DType, int64(len(p.pairs)))
	pl.lab = newStageLabels(ctx, pl)
	nStages := len(pl.tr.Stages)
	var bufs [][]*traces.Buf
	if traced {
		bufs = make([][]*traces.Buf, len(p.pairs))
	}
	outs := make([]PairOutput, len(p.pairs))
	scratches := make([]*scratch, c.Workers)
	err := parallel(ctx, len(p.pairs), c.Workers, func(i, w int) error {
		if scratches[w] == nil {
			scratches[w] = pl.newScratch()
		}
		var bs []*traces.Buf
		if traced {
			bs = make([]*traces.Buf, nStages)
			for s := range bs {
				bs[s] = &traces.Buf{}
			}
			bufs[i] = bs
		}
		pp := p.pairs[i]
		vmean := append([]float32(nil), pp.vmean...)
		outs[i] = pl.stepPair(pp.data, pp.kt, vmean, pp.b, pp.hk, bs, scratches[w])
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Config: c, Outputs: outs}
	if traced {
		for s := range nStages {
			for i := range bufs {
				pl.tr.Append(s, bufs[i][s])
			}
		}
		res.Trace = pl.tr
	}
	return res, nil
}

// Data returns the sampled pairs' data, in sampling order.
func (p *Prepared) Data() []*PairData {
	out := make([]*PairData, len(p.pairs))
	for i, pp := range p.pairs {
		out[i] = pp.data
	}
	return out
}

// parallel runs f(i, worker) for i in [0, n) on the given number of workers,
// stopping at the first error or when ctx is cancelled.
func parallel(ctx context.Context, n, workers int, f func(i, worker int) error) error {
	if workers <= 0 {
		workers = 1
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				if ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i, w); err != nil {
					errs[w] = err
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Outcome is a traced step with, for sparse methods, its fidelity against
// dense attention on the same data.
type Outcome struct {
	Config   Config         `json:"config"`
	Estimate MemoryEstimate `json:"-"`
	Trace    *traces.Trace  `json:"-"`
	// Fidelity is nil for dense.
	Fidelity *Fidelity `json:"fidelity,omitempty"`
}

// Simulate prepares c's data, runs one traced step and, for a sparse
// method, a dense step on the same data to measure fidelity.
func Simulate(ctx context.Context, c Config) (*Outcome, error) {
	p, err := Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := p.Step(ctx, true)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Config: p.Config, Estimate: p.Estimate, Trace: res.Trace}
	if p.Config.Spec.Method != MethodDense {
		dp := *p
		dp.Config.Spec = Spec{Method: MethodDense, Impl: Fused, AppendKV: p.Config.Spec.AppendKV}
		dense, err := dp.Step(ctx, false)
		if err != nil {
			return nil, err
		}
		f := MeasureFidelity(p, res, dense)
		o.Fidelity = &f
	}
	return o, nil
}
