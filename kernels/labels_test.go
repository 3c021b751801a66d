package kernels

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/bwsim/bwsim/traces"
)

var labelSpecs = []Spec{
	{Method: MethodDense, Impl: Unfused, AppendKV: true},
	{Method: MethodDense, Impl: Fused},
	{Method: MethodSparQ, Impl: Unfused, R: 8, K: 16, KLayout: KTwice, AppendKV: true},
	{Method: MethodSparQ, Impl: Unfused, R: 8, K: 16, KLayout: KOnce, NoReallocation: true},
	{Method: MethodSparQ, Impl: Fused, R: 8, K: 16, KLayout: KTwice, AppendKV: true},
	{Method: MethodSparQ, Impl: Fused, R: 8, K: 1000, KLayout: KOnce, AppendKV: true},
}

// TestPairStageBytesMatchesTrace checks the closed form that chooses the
// tensor label of each stage against what a traced step records per pair.
func TestPairStageBytesMatchesTrace(t *testing.T) {
	shapes := []Shape{
		{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 16, Seq: 1},
		{Batch: 2, Heads: 8, KVHeads: 2, HeadDim: 32, Seq: 100},
		{Batch: 1, Heads: 4, KVHeads: 4, HeadDim: 64, Seq: 257},
	}
	for _, shape := range shapes {
		for _, spec := range labelSpecs {
			t.Run(fmt.Sprintf("%+v/%+v", shape, spec), func(t *testing.T) {
				p, res := prepareAndStep(t, Config{Shape: shape, Spec: spec, DType: FP16, Workload: Gaussian, Seed: 1, SampleHeads: 1}, true)
				pl := newPlan(p.Config.Spec, p.Config.Shape, p.Config.DType, 1)
				want := pl.pairStageBytes()
				tr := res.Trace
				for i, st := range tr.Stages {
					got := make([]int64, len(tr.Tensors))
					for _, e := range st.Extents {
						got[e.Tensor] += e.Bytes()
					}
					for j, tn := range tr.Tensors {
						if got[j] != want[i][j] {
							t.Errorf("stage %s tensor %s: traced %d bytes per pair, closed form %d", st.Name, tn.Name, got[j], want[i][j])
						}
					}
				}
			})
		}
	}
}

func TestStageLabels(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 4096}
	for _, tc := range []struct {
		spec Spec
		want map[string]string // stage → dominant tensor, "" for none
	}{
		{Spec{Method: MethodDense, Impl: Unfused, AppendKV: true},
			map[string]string{StageAppend: "", StageScores: TensorK, StageSoftmax: "", StageWeightedSum: TensorV}},
		{Spec{Method: MethodDense, Impl: Fused},
			map[string]string{StageAttention: "", StageCombine: TensorPartials}},
		{Spec{Method: MethodDense, Impl: Fused, Split: 4096}, // one split per pair: no combine
			map[string]string{StageAttention: ""}},
		{Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KTwice, AppendKV: true},
			// Appending reads and writes the fp32 running mean v̄: more
			// bytes than the new k and v rows in fp16.
			map[string]string{StageAppend: TensorVmean, StageTopR: TensorQ, StageApprox: TensorKt, StageSoftmaxTopK: TensorLogitsHat, StageExact: TensorK, StageWeightedSum: TensorV}},
		{Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KOnce},
			map[string]string{StageTopR: TensorQ, StageApprox: TensorK, StageSoftmaxTopK: TensorLogitsHat, StageExact: TensorK, StageWeightedSum: TensorV}},
		{Spec{Method: MethodSparQ, Impl: Fused, R: 32, K: 128, KLayout: KTwice},
			map[string]string{StageSparQFused: TensorKt}},
		{Spec{Method: MethodSparQ, Impl: Fused, R: 32, K: 128, KLayout: KOnce},
			map[string]string{StageSparQFused: TensorK}},
	} {
		t.Run(fmt.Sprintf("%s-%s-%s", tc.spec.Method, tc.spec.Impl, tc.spec.KLayout), func(t *testing.T) {
			pl := newPlan(tc.spec, shape, FP16, 1)
			ctx := pprof.WithLabels(context.Background(), pprof.Labels("caller", "test"))
			l := newStageLabels(ctx, pl)
			if len(pl.tr.Stages) != len(tc.want) {
				t.Fatalf("%d stages, want %d", len(pl.tr.Stages), len(tc.want))
			}
			for i, st := range pl.tr.Stages {
				want, ok := tc.want[st.Name]
				if !ok {
					t.Fatalf("unexpected stage %s", st.Name)
				}
				sc := l.stages[i]
				checkLabel := func(key, want string) {
					t.Helper()
					got, ok := pprof.Label(sc, key)
					if want == "" {
						if ok {
							t.Errorf("stage %s: label %s=%q, want none", st.Name, key, got)
						}
						return
					}
					if got != want {
						t.Errorf("stage %s: label %s=%q, want %q", st.Name, key, got, want)
					}
				}
				checkLabel(traces.LabelMethod, tc.spec.Method)
				checkLabel(traces.LabelStage, st.Name)
				checkLabel(traces.LabelTensor, want)
				checkLabel("caller", "test") // the caller's labels are kept
			}
		})
	}
}

func TestDominantTensor(t *testing.T) {
	for _, tc := range []struct {
		bytes []int64
		want  traces.TensorID
	}{
		{nil, -1},
		{[]int64{0, 0}, -1},
		{[]int64{10, 10}, -1},
		{[]int64{10, 11}, 1},
		{[]int64{1, 5, 3}, 1},
		{[]int64{5, 3, 2}, -1}, // exactly half is not more than half
		{[]int64{0, 7, 0}, 1},
	} {
		if got := dominantTensor(tc.bytes); got != tc.want {
			t.Errorf("dominantTensor(%v) = %d, want %d", tc.bytes, got, tc.want)
		}
	}
}

// TestCPUProfileHasStageLabels takes a real CPU profile of SparQ steps and
// checks that the samples carry the stage labels.
func TestCPUProfileHasStageLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a CPU profile for a while")
	}
	shape := Shape{Batch: 1, Heads: 4, KVHeads: 4, HeadDim: 128, Seq: 4096}
	spec := Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KOnce, AppendKV: true}
	p, err := Prepare(context.Background(), Config{Shape: shape, Spec: spec, DType: FP16, Workload: Gaussian, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pl := newPlan(p.Config.Spec, p.Config.Shape, p.Config.DType, 1)
	stages := map[string]string{}
	for i, st := range pl.tr.Stages {
		stages[st.Name] = ""
		if d := dominantTensor(pl.pairStageBytes()[i]); d >= 0 {
			stages[st.Name] = pl.tr.Tensors[d].Name
		}
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("cannot profile (is -cpuprofile set?): %v", err)
	}
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := p.Step(context.Background(), false); err != nil {
			pprof.StopCPUProfile()
			t.Fatal(err)
		}
	}
	pprof.StopCPUProfile()
	prof, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	labelled := map[string]int{}
	for _, s := range prof.Sample {
		st, ok := s.Label[traces.LabelStage]
		if !ok {
			continue
		}
		if len(st) != 1 {
			t.Fatalf("sample with stage labels %q", st)
		}
		want, known := stages[st[0]]
		if !known {
			t.Errorf("sample labelled with unknown stage %q", st[0])
			continue
		}
		labelled[st[0]]++
		if m := s.Label[traces.LabelMethod]; len(m) != 1 || m[0] != MethodSparQ {
			t.Errorf("stage %s sample: method labels %q, want [%s]", st[0], m, MethodSparQ)
		}
		var got string
		if v := s.Label[traces.LabelTensor]; len(v) == 1 {
			got = v[0]
		}
		if got != want {
			t.Errorf("stage %s sample: tensor label %q, want %q", st[0], got, want)
		}
	}
	t.Logf("labelled samples by stage: %v", labelled)
	// K-once approximate scores gather r components of every row: the most
	// expensive stage on the host, certain to be sampled.
	if labelled[StageApprox] == 0 {
		t.Errorf("no CPU sample labelled stage=%s (labelled: %v, %d samples)", StageApprox, labelled, len(prof.Sample))
	}
}

// BenchmarkStageLabels measures what labelling costs per stage of a pair:
// one enter and, amortised, a share of the leave.
func BenchmarkStageLabels(b *testing.B) {
	spec := Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KTwice, AppendKV: true}
	pl := newPlan(spec, Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 128, Seq: 4096}, FP16, 1)
	l := newStageLabels(context.Background(), pl)
	b.ReportAllocs()
	for b.Loop() {
		l.enter(1)
		l.leave()
	}
}
