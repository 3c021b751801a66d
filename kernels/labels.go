package kernels

import (
	"context"
	"runtime/pprof"

	"github.com/bwsim/bwsim/traces"
)

// Profiler labels.
//
// Every stage a worker runs for a pair carries runtime/pprof goroutine labels
// (traces.LabelMethod, traces.LabelStage and, when one tensor dominates the
// stage's traffic, traces.LabelTensor), so a CPU profile of the kernels, from
// `bwsim profile --cpu-profile` or `go test -bench . -cpuprofile`, can be
// sliced with `go tool pprof -tagfocus=stage=approx-scores`.
//
// The labels are those pprof.Do would set, but built once per Step: entering
// a stage only swaps the goroutine's label pointer (pprof.SetGoroutineLabels),
// which allocates nothing and costs a few nanoseconds per stage and pair, so
// labelling is always on.

// stageLabels holds one Step's label contexts.
type stageLabels struct {
	// base carries the caller's labels, restored after each pair.
	base context.Context
	// stages holds, by stage index, base with the stage's labels added.
	stages []context.Context
}

// newStageLabels builds the labels of p's stages on top of ctx's labels.
func newStageLabels(ctx context.Context, p *plan) *stageLabels {
	l := &stageLabels{base: ctx, stages: make([]context.Context, len(p.tr.Stages))}
	bytes := p.pairStageBytes()
	for i, st := range p.tr.Stages {
		kv := []string{traces.LabelMethod, p.tr.Method, traces.LabelStage, st.Name}
		if t := dominantTensor(bytes[i]); t >= 0 {
			kv = append(kv, traces.LabelTensor, p.tr.Tensors[t].Name)
		}
		l.stages[i] = pprof.WithLabels(ctx, pprof.Labels(kv...))
	}
	return l
}

// enter labels the calling goroutine with stage i; a negative i (a stage the
// plan does not have) or a nil l changes nothing.
func (l *stageLabels) enter(i int) {
	if l == nil || i < 0 || i >= len(l.stages) {
		return
	}
	pprof.SetGoroutineLabels(l.stages[i])
}

// leave restores the caller's labels.
func (l *stageLabels) leave() {
	if l == nil {
		return
	}
	pprof.SetGoroutineLabels(l.base)
}

// dominantTensor returns the tensor that accounts for more than half of a
// stage's requested bytes (reads and writes), or -1 when none does.
func dominantTensor(bytes []int64) traces.TensorID {
	var total int64
	for _, n := range bytes {
		total += n
	}
	for t, n := range bytes {
		if n > 0 && 2*n > total {
			return traces.TensorID(t)
		}
	}
	return -1
}

// pairStageBytes returns, per stage and tensor, the bytes one pair's step
// requests, in closed form: what the kernels record (a test checks it
// against traced steps for every method). It chooses the tensor label of
// each stage, and states each method's traffic.
func (p *plan) pairStageBytes() [][]int64 {
	out := make([][]int64, len(p.tr.Stages))
	for i := range out {
		out[i] = make([]int64, len(p.tr.Tensors))
	}
	add := func(stage int, t traces.TensorID, n int64) {
		if stage >= 0 && t >= 0 && !p.tr.Tensors[t].OnChip {
			out[stage][t] += n
		}
	}
	D, e := int64(p.shape.HeadDim), p.e
	if p.spec.AppendKV {
		// Common to every method: the new k and v (and the Kt copy); v̄ read
		// and written.
		add(p.sAppend, p.k, D*e)
		add(p.sAppend, p.v, D*e)
		add(p.sAppend, p.kt, D*e)
		add(p.sAppend, p.vmean, 2*D*4)
	}
	p.m.closedForm(p, add)
	return out
}
