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
// against traced steps). It only chooses the tensor label of each stage.
func (p *plan) pairStageBytes() [][]int64 {
	out := make([][]int64, len(p.tr.Stages))
	for i := range out {
		out[i] = make([]int64, len(p.tr.Tensors))
	}
	add := func(stage int, t traces.TensorID, n int64) {
		if stage >= 0 && t >= 0 {
			out[stage][t] += n
		}
	}
	G, D, S := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq)
	R, K, e := int64(p.spec.R), int64(p.spec.K), p.e
	sparq := p.spec.Method == MethodSparQ
	realloc := sparq && !p.spec.NoReallocation
	fused := p.spec.Impl == Fused

	if p.spec.AppendKV {
		add(p.sAppend, p.k, D*e)
		add(p.sAppend, p.v, D*e)
		add(p.sAppend, p.kt, D*e)
		if realloc {
			add(p.sAppend, p.vmean, 2*D*4)
		}
	}
	switch {
	case !sparq && !fused:
		add(p.sScores, p.q, G*D*e)
		add(p.sScores, p.k, S*D*e)
		add(p.sScores, p.scores, G*S*e)
		add(p.sSoftmax, p.scores, G*S*e)
		add(p.sSoftmax, p.probs, G*S*e)
		add(p.sWSum, p.probs, G*S*e)
		add(p.sWSum, p.v, S*D*e)
		add(p.sWSum, p.out, G*D*e)
	case !sparq:
		add(p.sAttn, p.q, G*D*e)
		add(p.sAttn, p.k, S*D*e)
		add(p.sAttn, p.v, S*D*e)
		add(p.sAttn, p.out, G*D*e)
	default:
		top, approx, soft, exact, wsum := p.sTopR, p.sApprox, p.sSoftTopK, p.sExact, p.sWSum
		if fused {
			top, approx, soft, exact, wsum = p.sSparQFuse, p.sSparQFuse, p.sSparQFuse, p.sSparQFuse, p.sSparQFuse
		}
		kcols := p.kt
		if kcols < 0 {
			kcols = p.k
		}
		add(top, p.q, G*D*e)
		add(approx, kcols, S*R*e)
		add(exact, p.k, K*D*e)
		add(wsum, p.v, K*D*e)
		if realloc {
			add(wsum, p.vmean, D*4)
		}
		add(wsum, p.out, G*D*e)
		if !fused {
			add(top, p.i1, R*IndexBytes)
			add(approx, p.i1, R*IndexBytes)
			add(approx, p.q, G*D*e)
			add(approx, p.logitsHat, G*S*e)
			add(soft, p.logitsHat, G*S*e)
			add(soft, p.i2, K*IndexBytes)
			add(soft, p.alpha, G*4)
			add(exact, p.i2, K*IndexBytes)
			add(exact, p.q, G*D*e)
			add(exact, p.logit, G*K*e)
			add(wsum, p.logit, G*K*e)
			add(wsum, p.i2, K*IndexBytes)
			if realloc {
				add(wsum, p.alpha, G*4)
			}
		}
	}
	return out
}
