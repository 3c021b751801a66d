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

// Config is everything a simulated decode (one step or several) depends on.
type Config struct {
	// Shape is the first step's shape: Seq positions, the current token
	// included.
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
	// Steps is the number of consecutive decode steps simulated: step t runs
	// over Seq+t positions, appending one token to the cache each step and
	// updating the running v̄ and H2O's scores as a server would. 0 means 1.
	Steps int `json:"steps,omitempty"`
	// KVDump, when set, reads q, K and V from a dump (a .safetensors file or
	// a directory of .npy files; see LoadDumpInfo) instead of generating
	// them, and Workload is WorkloadDump.
	KVDump string `json:"kv_dump,omitempty"`
	// Layer is the dump's layer to simulate.
	Layer int `json:"layer,omitempty"`
	// Workers bounds parallelism; 0 means GOMAXPROCS.
	Workers int `json:"-"`
	// MemoryLimit overrides the memory available for the simulation, in
	// bytes; 0 means what the machine reports as available.
	MemoryLimit int64 `json:"-"`
}

// steps is Steps with 0 meaning 1.
func (c Config) steps() int { return max(c.Steps, 1) }

// finalSeq is the number of positions at the last step.
func (c Config) finalSeq() int { return c.Shape.Seq + c.steps() - 1 }

// AutoSampleBytes is the host data (q, K, V, Kt as fp32) that automatic
// sampling keeps within: enough pairs for stable fidelity statistics, few
// enough for a sweep point to take well under a second.
const AutoSampleBytes = 256 << 20

// histPositions returns the earlier positions whose queries the method
// replays (H2O's prefill), with the weight each stands for.
func histPositions(c Config) ([]int32, float32) {
	if c.Spec.Method != MethodH2O {
		return nil, 1
	}
	return h2oHistory(c.Shape.Seq - 1)
}

// pairBytes is the host memory of one sampled pair's data, derived caches,
// state and outputs.
func pairBytes(c Config) int64 {
	g, D, S := int64(c.Shape.Group()), int64(c.Shape.HeadDim), int64(c.finalSeq())
	T := int64(c.steps())
	kv := int64(2)
	if c.Spec.usesKt() {
		kv++
	}
	switch c.Spec.Method {
	case MethodLoki:
		kv++ // rotated keys
	case MethodDoubleSparse:
		kv++ // labels (at most D channels)
	}
	hist, _ := histPositions(c)
	K := int64(max(c.Spec.K, 1))
	extra := int64(0)
	switch c.Spec.Method {
	case MethodLoki:
		extra = 3 * D * D // basis in float64 and float32
	case MethodQuest:
		extra = 2 * D * (S/int64(max(c.Spec.Page, 1)) + 1)
	case MethodH2O:
		extra = 2*K + 2*S // slots, scores; the prefill's column sums (float64)
	}
	// Outputs (one step's are in the g·D below) and selections of the
	// sparse and the dense run for the later steps.
	outs := (T - 1) * (2*g*D + K)
	return 4 * (T*g*D + kv*S*D + 2*D + g*D + int64(len(hist))*g*D + extra + outs)
}

// workerBytes is one worker's scratch memory.
func workerBytes(c Config) int64 {
	g, D, S, K := int64(c.Shape.Group()), int64(c.Shape.HeadDim), int64(c.finalSeq()), int64(max(c.Spec.K, 1))
	n := 4*(g*S+3*max(S, D)+D+g*K) + 8*g*S // + fidelity's float64 probabilities
	if c.Spec.Method == MethodTopK || c.Spec.Method == MethodFlexGen {
		n += 4 * g * S // probabilities beside the logits
	}
	return n
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
// estimate, without allocating anything (a dump's header is read to check
// the shape).
func Plan(c Config) (Config, MemoryEstimate, error) {
	if c.Steps < 0 {
		return c, MemoryEstimate{}, fmt.Errorf("steps must be positive, got %d", c.Steps)
	}
	if c.Shape.Seq > 0 && c.Shape.Seq > MaxSeq-c.steps() {
		return c, MemoryEstimate{}, fmt.Errorf("seq %d plus %d steps exceeds the limit %d", c.Shape.Seq, c.steps(), MaxSeq)
	}
	// Resolve against the last step's length: k is clamped per step.
	final := c.Shape
	final.Seq = c.finalSeq()
	spec, err := c.Spec.Resolve(final)
	if err != nil {
		return c, MemoryEstimate{}, err
	}
	c.Spec = spec
	if _, err := ParseDType(string(c.DType)); err != nil {
		return c, MemoryEstimate{}, err
	}
	if c.KVDump != "" {
		if c.Workload != "" && c.Workload != WorkloadDump {
			return c, MemoryEstimate{}, fmt.Errorf("workload %q and a kv-dump: the data come from the dump", c.Workload)
		}
		c.Workload = WorkloadDump
		info, err := LoadDumpInfo(c.KVDump)
		if err != nil {
			return c, MemoryEstimate{}, err
		}
		if err := info.Check(c); err != nil {
			return c, MemoryEstimate{}, err
		}
	} else if _, err := ParseWorkload(string(c.Workload)); err != nil {
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
	// c.Workers stays what the step may use: with fewer pairs than workers
	// the rest split each pair's sequence (Prepared.run).
	c.Workers = workers
	workers = min(workers, c.SampleHeads)
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

// Prepared holds the data of the sampled pairs, ready to run (and rerun, for
// timing) without generating it again.
type Prepared struct {
	Config   Config
	Estimate MemoryEstimate
	pairs    []preparedPair
	// bufCache[t][i] are step t's recorders of pair i, reused (Reset) by
	// every traced run so that recording does not reallocate.
	bc *bufCache
}

type bufCache struct {
	mu   sync.Mutex
	bufs [][][]*traces.Buf
}

// preparedPair is one pair's data, what the method's cache derives from it
// for every position, and the state before the first step.
type preparedPair struct {
	b, hk int
	data  *PairData
	// kt is K transposed, S-contiguous ([D, ktStride]), when K is stored
	// twice (Loki: the rotated keys).
	kt       []float32
	ktStride int
	// kx are the keys as the cache stores them when they differ from
	// data.K (Loki: rotated into the PCA basis), [S_f, D].
	kx []float32
	// basis is Loki's PCA basis, [D, D], row c = component c.
	basis []float32
	// channels, ranges and labels are Double Sparsity's calibration and
	// (dequantised) label cache, [S_f, r].
	channels []int32
	ranges   []float32
	labels   []float32
	// init is the mutable state before the first step.
	init pairState
}

// pairState is what changes from step to step: the running mean v̄ and the
// methods' bookkeeping.
type pairState struct {
	vmean []float32 // over the positions the cache holds
	quest questState
	h2o   h2oState
}

func (s pairState) clone() pairState {
	return pairState{vmean: append([]float32(nil), s.vmean...), quest: s.quest.clone(), h2o: s.h2o.clone()}
}

// Prepare validates c, checks memory, and generates (or loads) the sampled
// pairs' data.
func Prepare(ctx context.Context, c Config) (*Prepared, error) {
	c, est, err := Plan(c)
	if err != nil {
		return nil, err
	}
	idx := sampledPairs(c.Shape.Pairs(), int64(c.SampleHeads))
	p := &Prepared{Config: c, Estimate: est, pairs: make([]preparedPair, len(idx))}
	var dump *Dump
	if c.KVDump != "" {
		if dump, err = OpenDump(c.KVDump); err != nil {
			return nil, err
		}
		defer dump.Close()
	}
	hist, weight := histPositions(c)
	D, S, Sf := c.Shape.HeadDim, c.Shape.Seq, c.finalSeq()
	err = parallel(ctx, len(idx), c.Workers, func(i, _ int) error {
		pi := idx[i]
		b, hk := int(pi/int64(c.Shape.KVHeads)), int(pi%int64(c.Shape.KVHeads))
		var d *PairData
		var err error
		if dump != nil {
			d, err = dump.Pair(c, b, hk, hist)
		} else {
			d, err = generate(c.Workload, c.Shape, c.DType, c.Seed, b, hk, c.steps(), hist)
		}
		if err != nil {
			return err
		}
		d.HistWeight = weight
		pp := preparedPair{b: b, hk: hk, data: d}
		// The cache before the first step holds n0 positions: all but the
		// current token when the step appends it, all of them otherwise.
		n0 := S
		if c.Spec.AppendKV {
			n0 = S - 1
		}
		m := newMethod(c.Spec)
		m.prepare(c, &pp, n0)
		if c.Spec.usesKt() {
			K := d.K
			if pp.kx != nil {
				K = pp.kx
			}
			pp.kt, pp.ktStride = make([]float32, Sf*D), Sf
			for s := range Sf {
				for j := range D {
					pp.kt[j*Sf+s] = K[s*D+j]
				}
			}
		}
		if c.Spec.realloc() {
			// The running mean as the server holds it before this step.
			pp.init.vmean = make([]float32, D)
			if n0 > 0 {
				acc := make([]float64, D)
				for s := range n0 {
					for j, x := range d.V[s*D : (s+1)*D] {
						acc[j] += float64(x)
					}
				}
				for j := range acc {
					pp.init.vmean[j] = float32(acc[j] / float64(n0))
				}
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
	// Step is the step's index and Seq its number of positions.
	Step int `json:"step"`
	Seq  int `json:"seq"`
	// Trace is nil for untraced runs.
	Trace   *traces.Trace `json:"-"`
	Outputs []PairOutput  `json:"-"`
}

// Step runs the first decode step over every sampled pair, recording the
// trace when traced is true. It can be called repeatedly (for timing); each
// call starts from the same cache state.
func (p *Prepared) Step(ctx context.Context, traced bool) (*Result, error) {
	res, err := p.run(ctx, traced, 1)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// Run runs every decode step of the configuration from the prepared state,
// the cache growing by one position each step.
func (p *Prepared) Run(ctx context.Context, traced bool) ([]*Result, error) {
	return p.run(ctx, traced, p.Config.steps())
}

func (p *Prepared) run(ctx context.Context, traced bool, steps int) ([]*Result, error) {
	c := p.Config
	g, D := c.Shape.Group(), c.Shape.HeadDim
	plans := make([]*plan, steps)
	for t := range plans {
		shape := c.Shape
		shape.Seq += t
		pl := newPlan(c.Spec.atSeq(shape.Seq), shape, c.DType, int64(len(p.pairs)))
		pl.lab = newStageLabels(ctx, pl)
		plans[t] = pl
	}
	// bufs[t][i][s]: step t, pair i, stage s.
	var bufs [][][]*traces.Buf
	if traced {
		if p.bc == nil {
			p.bc = &bufCache{}
		}
		bc := p.bc
		bc.mu.Lock()
		defer bc.mu.Unlock()
		if len(bc.bufs) != steps || len(bc.bufs[0][0]) != len(plans[0].tr.Stages) {
			bc.bufs = make([][][]*traces.Buf, steps)
			for t := range bc.bufs {
				bc.bufs[t] = make([][]*traces.Buf, len(p.pairs))
				for i := range p.pairs {
					bc.bufs[t][i] = make([]*traces.Buf, len(plans[t].tr.Stages))
					for s := range bc.bufs[t][i] {
						bc.bufs[t][i][s] = &traces.Buf{}
					}
				}
			}
		}
		bufs = bc.bufs
	}
	outs := make([][]PairOutput, steps)
	for t := range outs {
		outs[t] = make([]PairOutput, len(p.pairs))
	}
	// Pairs run on at most one worker each; the workers left over split
	// each pair's sequence (plan.inner, simd_attn.go).
	outer := min(c.Workers, len(p.pairs))
	for _, pl := range plans {
		pl.inner = max(1, c.Workers/outer)
	}
	scratches := make([]*scratch, outer)
	err := parallel(ctx, len(p.pairs), outer, func(i, w int) error {
		if scratches[w] == nil {
			scratches[w] = newScratch(c)
		}
		pp := &p.pairs[i]
		st := pp.init.clone()
		for t, pl := range plans {
			x := &stepCtx{p: pl, pp: pp, st: &st, S: pl.shape.Seq, q: pp.data.Q[t*g*D : (t+1)*g*D],
				ref: pl.refs(pp.b, pp.hk), sc: scratches[w],
				out: &PairOutput{Batch: pp.b, KVHead: pp.hk, Out: make([]float32, g*D)}}
			if traced {
				x.bufs = bufs[t][i]
				for _, b := range x.bufs {
					b.Reset()
				}
			}
			pl.stepPair(x, t == 0)
			outs[t][i] = *x.out
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := make([]*Result, steps)
	for t, pl := range plans {
		res[t] = &Result{Config: c, Step: t, Seq: pl.shape.Seq, Outputs: outs[t]}
		if traced {
			// Serially: a pair records a few extents per stage (gathers
			// take one each), and handing the merge to other goroutines
			// cost more than the merge on small steps.
			stage := make([]*traces.Buf, len(p.pairs))
			for s := range pl.tr.Stages {
				for i := range p.pairs {
					stage[i] = bufs[t][i][s]
				}
				pl.tr.AppendAll(s, stage...)
			}
			res[t].Trace = pl.tr
		}
	}
	return res, nil
}

// stepPair runs one pair's step: the append of the current token (traced
// when the spec includes the append stage; always applied to the cache state
// after the first step, whose prepared state already holds the token
// otherwise), then the method.
func (p *plan) stepPair(x *stepCtx, first bool) {
	// Every stage starts by taking its Buf: label the goroutine there.
	defer p.lab.leave()
	if p.spec.AppendKV || !first {
		p.m.appendToken(x, x.buf(p.sAppend))
	}
	p.m.step(x)
}

// Data returns the sampled pairs' data, in sampling order.
func (p *Prepared) Data() []*PairData {
	out := make([]*PairData, len(p.pairs))
	for i, pp := range p.pairs {
		out[i] = pp.data
	}
	return out
}

// scratch is a worker's reusable buffers.
type scratch struct {
	rows   []float32 // [g, S] scores or logits
	sum    []float32 // [S] group-summed logits; [D] |q| sums
	idx    []int32
	perm   []int32
	logitK []float32 // [g, k] (or [g, S] for methods reading up to S rows)
	extra  []float32 // aux
}

func newScratch(c Config) *scratch {
	g, S, D := c.Shape.Group(), c.finalSeq(), c.Shape.HeadDim
	k := max(c.Spec.K, 1)
	if c.Spec.Method == MethodDense {
		k = 1
	}
	return &scratch{
		rows:   make([]float32, g*S),
		sum:    make([]float32, max(S, D)),
		idx:    make([]int32, max(S, D)),
		perm:   make([]int32, max(S, D)),
		logitK: make([]float32, g*k),
	}
}

// aux returns a second [n] buffer (topk and flexgen keep logits and
// probabilities side by side).
func (s *scratch) aux(n int) []float32 {
	if len(s.extra) < n {
		s.extra = make([]float32, n)
	}
	return s.extra[:n]
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

// Outcome is a traced simulation with, for sparse methods, its fidelity
// against dense attention on the same data.
type Outcome struct {
	Config   Config         `json:"config"`
	Estimate MemoryEstimate `json:"-"`
	// Trace is the last step's trace.
	Trace *traces.Trace `json:"-"`
	// Fidelity is the mean over the steps; nil for dense.
	Fidelity *Fidelity `json:"fidelity,omitempty"`
	// Steps has each step's trace and fidelity when Config.Steps > 1.
	Steps []StepOutcome `json:"steps,omitempty"`
}

// StepOutcome is one step of a multi-step simulation.
type StepOutcome struct {
	Step     int           `json:"step"`
	Seq      int           `json:"seq"`
	Trace    *traces.Trace `json:"-"`
	Fidelity *Fidelity     `json:"fidelity,omitempty"`
}

// Simulate prepares c's data, runs its traced steps and, for a sparse
// method, dense steps on the same data to measure fidelity.
func Simulate(ctx context.Context, c Config) (*Outcome, error) {
	p, err := Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := p.Run(ctx, true)
	if err != nil {
		return nil, err
	}
	T := len(res)
	o := &Outcome{Config: p.Config, Estimate: p.Estimate, Trace: res[T-1].Trace}
	fids := make([]*Fidelity, T)
	if p.Config.Spec.Method != MethodDense {
		dp := *p
		dp.Config.Spec = Spec{Method: MethodDense, Impl: Fused, AppendKV: p.Config.Spec.AppendKV}
		dense, err := dp.Run(ctx, false)
		if err != nil {
			return nil, err
		}
		for t := range res {
			f := MeasureFidelity(p, res[t], dense[t])
			fids[t] = &f
		}
		m := meanFidelity(fids)
		o.Fidelity = &m
	}
	if T > 1 {
		for t, r := range res {
			o.Steps = append(o.Steps, StepOutcome{Step: t, Seq: r.Seq, Trace: r.Trace, Fidelity: fids[t]})
		}
	}
	return o, nil
}
