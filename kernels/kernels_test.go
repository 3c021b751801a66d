package kernels

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/bwsim/bwsim/traces"
)

// tolerance is the largest relative L2 error allowed against the float64
// reference. Inputs are already rounded to the dtype, so the error comes from
// float32 accumulation, the rounding of the output (one unit roundoff) and,
// unfused, the rounding of scores and probabilities handed between stages
// (a few more): 4 unit roundoffs fused, 16 unfused, never below 1e-5.
func tolerance(dt DType, impl Impl) float64 {
	c := 4.0
	if impl == Unfused {
		c = 16
	}
	return math.Max(1e-5, c*dt.Epsilon())
}

func relL2(got []float32, want []float64) float64 {
	var e, r float64
	for i := range want {
		d := float64(got[i]) - want[i]
		e += d * d
		r += want[i] * want[i]
	}
	if r == 0 {
		return math.Sqrt(e)
	}
	return math.Sqrt(e / r)
}

var testShapes = []Shape{
	{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 16, Seq: 1},     // S = 1
	{Batch: 2, Heads: 4, KVHeads: 4, HeadDim: 32, Seq: 100},   // MHA, group of 1
	{Batch: 1, Heads: 8, KVHeads: 2, HeadDim: 64, Seq: 257},   // GQA, group of 4
	{Batch: 1, Heads: 8, KVHeads: 1, HeadDim: 32, Seq: 300},   // GQA, group of 8
	{Batch: 2, Heads: 2, KVHeads: 2, HeadDim: 128, Seq: 1024}, // paper's head size
}

// freshSeed gives every run new random inputs; failures print the seed, and
// BWSIM_TEST_SEED=<seed> replays one.
func freshSeed(t *testing.T) uint64 {
	s := rand.Uint64()
	if v := os.Getenv("BWSIM_TEST_SEED"); v != "" {
		var err error
		if s, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("BWSIM_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d", s)
	return s
}

func TestDenseMatchesReference(t *testing.T) {
	seed := freshSeed(t)
	for _, shape := range testShapes {
		for _, spec := range []Spec{{Impl: Unfused}, {Impl: Fused}, {Impl: Unfused, Upcast: true}} {
			impl := spec.Impl
			for _, dt := range []DType{FP32, FP16, BF16} {
				for _, w := range []Workload{Gaussian, LLMLike} {
					name := fmt.Sprintf("%+v/%s/upcast=%v/%s/%s", shape, impl, spec.Upcast, dt, w)
					t.Run(name, func(t *testing.T) {
						c := Config{Shape: shape, DType: dt, Workload: w, Seed: seed,
							Spec: Spec{Method: MethodDense, Impl: impl, Upcast: spec.Upcast, AppendKV: true}}
						p, res := prepareAndStep(t, c, false)
						g, D := shape.Group(), shape.HeadDim
						for i, d := range p.Data() {
							for h := range g {
								want := refAttention(refRow(d.Q, h, D), d.K, d.V, D, allRows(shape.Seq))
								got := res.Outputs[i].Out[h*D : (h+1)*D]
								if e := relL2(got, want); e > tolerance(dt, impl) {
									t.Errorf("pair %d head %d: relative error %.3g > %.3g", i, h, e, tolerance(dt, impl))
								}
							}
						}
					})
				}
			}
		}
	}
}

type sparqCase struct {
	r, k    int
	realloc bool
}

func TestSparQMatchesReference(t *testing.T) {
	seed := freshSeed(t)
	for _, shape := range testShapes {
		D, S := shape.HeadDim, shape.Seq
		cases := []sparqCase{
			{r: max(1, D/4), k: max(1, S/8), realloc: true},
			{r: max(1, D/4), k: max(1, S/8), realloc: false},
			{r: D, k: max(1, S/4), realloc: true}, // r = d_h: approximate scores are exact
			{r: 2, k: S, realloc: true},           // k = S: dense
			{r: 3, k: 2*S + 5, realloc: true},     // k > S: clamped, dense
			{r: 1, k: 1, realloc: true},           // smallest budget
		}
		for _, sc := range cases {
			for _, layout := range []KLayout{KTwice, KOnce} {
				for _, impl := range []Impl{Unfused, Fused} {
					for _, dt := range []DType{FP32, BF16, FP16} {
						name := fmt.Sprintf("%+v/r=%d,k=%d,realloc=%v/%s/%s/%s", shape, sc.r, sc.k, sc.realloc, layout, impl, dt)
						t.Run(name, func(t *testing.T) {
							checkSparQ(t, shape, sc, layout, impl, dt, seed)
						})
					}
				}
			}
		}
	}
}

func checkSparQ(t *testing.T, shape Shape, sc sparqCase, layout KLayout, impl Impl, dt DType, seed uint64) {
	c := Config{Shape: shape, DType: dt, Workload: LLMLike, Seed: seed,
		Spec: Spec{Method: MethodSparQ, Impl: impl, R: sc.r, K: sc.k, KLayout: layout, NoReallocation: !sc.realloc, AppendKV: true}}
	p, res := prepareAndStep(t, c, false)
	g, D, S := shape.Group(), shape.HeadDim, shape.Seq
	kk := min(sc.k, S)
	for i, d := range p.Data() {
		got := res.Outputs[i]
		ref := refSparQ(d.Q, d.K, d.V, g, D, S, sc.r, sc.k, sc.realloc, nil)
		if !slices.Equal(toInts(got.Selected), ref.selected) {
			// Rounding the approximate logits to a 16-bit type, or float32
			// against float64 arithmetic, may swap two positions whose
			// group logits are (nearly) tied. Accept only such swaps, then
			// check the rest of the algorithm on the kernel's selection.
			// The rounding error of a group logit scales with the heads'
			// |logits|, not with their sum: with r = 1 the heads' terms can
			// cancel, and rounding then flips the whole ranking.
			if !nearTieWithin(ref.groupLogits, toInts(got.Selected), ref.selected, 64*dt.Epsilon()*slices.Max(ref.groupAbs)) {
				t.Fatalf("pair %d: selection %v, want %v", i, got.Selected, ref.selected)
			}
			ref = refSparQ(d.Q, d.K, d.V, g, D, S, sc.r, sc.k, sc.realloc, toInts(got.Selected))
		}
		if len(got.Selected) != kk {
			t.Fatalf("pair %d: selected %d positions, want k = %d", i, len(got.Selected), kk)
		}
		for h := range g {
			if e := relL2(got.Out[h*D:(h+1)*D], ref.out[h]); e > tolerance(dt, impl) {
				t.Errorf("pair %d head %d: relative error %.3g > %.3g", i, h, e, tolerance(dt, impl))
			}
			if a := float64(got.Alpha[h]); math.Abs(a-ref.alpha[h]) > 8*math.Max(dt.Epsilon(), 1e-6) {
				t.Errorf("pair %d head %d: alpha %.6f, want %.6f", i, h, a, ref.alpha[h])
			}
		}
		if sc.k >= S {
			// k ≥ S is exactly dense.
			for h := range g {
				want := refAttention(refRow(d.Q, h, D), d.K, d.V, D, allRows(S))
				if e := relL2(got.Out[h*D:(h+1)*D], want); e > tolerance(dt, impl) {
					t.Errorf("k ≥ S: pair %d head %d differs from dense by %.3g", i, h, e)
				}
				if got.Alpha[h] != 1 {
					t.Errorf("k ≥ S: alpha %v, want exactly 1", got.Alpha[h])
				}
			}
		}
	}
}

func toInts(xs []int32) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// nearTie reports whether selections a and b differ only in positions whose
// scores are within rel (relative to the largest magnitude) of each other.
func nearTie(scores []float64, a, b []int, rel float64) bool {
	var scale float64
	for _, s := range scores {
		scale = math.Max(scale, math.Abs(s))
	}
	return nearTieWithin(scores, a, b, rel*scale)
}

// nearTieWithin reports whether selections a and b differ only in positions
// whose scores are within tol of each other.
func nearTieWithin(scores []float64, a, b []int, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	inB := map[int]bool{}
	for _, x := range b {
		inB[x] = true
	}
	var onlyA []int
	for _, x := range a {
		if !inB[x] {
			onlyA = append(onlyA, x)
		}
		delete(inB, x)
	}
	minB, maxA := math.Inf(1), math.Inf(-1)
	for x := range inB {
		minB = math.Min(minB, scores[x])
	}
	for _, x := range onlyA {
		maxA = math.Max(maxA, scores[x])
	}
	return len(onlyA) == 0 || math.Abs(maxA-minB) <= tol+1e-9
}

func TestRejectsBadSpecs(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 4, KVHeads: 2, HeadDim: 32, Seq: 64}
	for _, tc := range []struct {
		name  string
		shape Shape
		spec  Spec
	}{
		{"r > d_h", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 33, K: 8, KLayout: KTwice}},
		{"r = 0", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 0, K: 8, KLayout: KTwice}},
		{"k = 0", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 0, KLayout: KTwice}},
		{"bad layout", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: "thrice"}},
		{"bad method", shape, Spec{Method: "magic", Impl: Unfused}},
		{"bad impl", shape, Spec{Method: MethodDense, Impl: "eager"}},
		{"upcast fused", shape, Spec{Method: MethodDense, Impl: Fused, Upcast: true}},
		{"upcast sparq", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Upcast: true}},
		{"materialize dense", shape, Spec{Method: MethodDense, Impl: Unfused, Materialize: true}},
		{"fused-exact dense", shape, Spec{Method: MethodDense, Impl: Unfused, FusedExact: true}},
		{"fused-exact fused", shape, Spec{Method: MethodSparQ, Impl: Fused, R: 4, K: 8, KLayout: KTwice, FusedExact: true}},
		{"fused-exact materialize", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Materialize: true, FusedExact: true}},
		{"rank-pass dense", shape, Spec{Method: MethodDense, Impl: Unfused, RankPass: true}},
		{"rank-pass fused", shape, Spec{Method: MethodSparQ, Impl: Fused, R: 4, K: 8, KLayout: KTwice, RankPass: true}},
		{"kernel unknown", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Kernel: "cuda"}},
		{"kernel dense", shape, Spec{Method: MethodDense, Impl: Unfused, Kernel: KernelTriton}},
		{"kernel fused", shape, Spec{Method: MethodSparQ, Impl: Fused, R: 4, K: 8, KLayout: KTwice, Kernel: KernelTriton}},
		{"kernel materialize", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Materialize: true, Kernel: KernelTriton}},
		{"cublas sparq", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Kernel: KernelCuBLAS}},
		{"cublas fused", shape, Spec{Method: MethodDense, Impl: Fused, Kernel: KernelCuBLAS}},
		{"cublas upcast", shape, Spec{Method: MethodDense, Impl: Unfused, Upcast: true, Kernel: KernelCuBLAS}},
		{"query tile unfused", shape, Spec{Method: MethodDense, Impl: Unfused, Tile: QueryTile{"flash2", 128}}},
		{"serial combine sparq", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, SerialCombine: true}},
		{"compiled alone", shape, Spec{Method: MethodSparQ, Impl: Unfused, R: 4, K: 8, KLayout: KTwice, Compiled: true}},
		{"H % Hkv", Shape{Batch: 1, Heads: 6, KVHeads: 4, HeadDim: 32, Seq: 64}, Spec{Method: MethodDense, Impl: Fused}},
		{"S = 0", Shape{Batch: 1, Heads: 4, KVHeads: 4, HeadDim: 32, Seq: 0}, Spec{Method: MethodDense, Impl: Fused}},
		{"negative batch", Shape{Batch: -1, Heads: 4, KVHeads: 4, HeadDim: 32, Seq: 8}, Spec{Method: MethodDense, Impl: Fused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), Config{Shape: tc.shape, Spec: tc.spec, DType: FP16, Workload: Gaussian})
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRefusesWhatDoesNotFit(t *testing.T) {
	c := Config{Shape: Shape{Batch: 64, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 1 << 20},
		Spec: Spec{Method: MethodDense, Impl: Fused}, DType: FP16, Workload: Gaussian,
		SampleHeads: 2048, MemoryLimit: 1 << 30}
	_, err := Prepare(context.Background(), c)
	if err == nil {
		t.Fatal("a 2 TiB simulation was accepted with a 1 GiB limit")
	}
	t.Log(err)
}

// closed-form byte counts: the trace must equal them exactly, sampled or not.
func TestTraceBytesClosedForm(t *testing.T) {
	for _, tc := range []struct {
		shape  Shape
		sample int
	}{
		{Shape{Batch: 2, Heads: 8, KVHeads: 8, HeadDim: 64, Seq: 512}, 0},
		{Shape{Batch: 3, Heads: 8, KVHeads: 2, HeadDim: 128, Seq: 1000}, 2},
		{Shape{Batch: 4, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 4096}, 5}, // 128 pairs, 5 sampled: scale not integral
	} {
		for _, dt := range []DType{FP16, FP32} {
			B, H, Hkv, D, S := int64(tc.shape.Batch), int64(tc.shape.Heads), int64(tc.shape.KVHeads), int64(tc.shape.HeadDim), int64(tc.shape.Seq)
			e := dt.Size()
			pairs := B * Hkv
			t.Run(fmt.Sprintf("%+v/%s/sample=%d", tc.shape, dt, tc.sample), func(t *testing.T) {
				scaled := func(perPair int64) int64 {
					s := traces.Scale{Sampled: int64(tc.sample), Total: pairs}
					if tc.sample == 0 {
						return perPair * pairs
					}
					return s.Apply(perPair * int64(tc.sample))
				}
				for _, impl := range []Impl{Unfused, Fused} {
					tr := simulate(t, Config{Shape: tc.shape, DType: dt, Workload: Gaussian, SampleHeads: tc.sample,
						Spec: Spec{Method: MethodDense, Impl: impl}})
					tt := tensorTotals(tr)
					if got, want := tt[TensorK].ReadBytes, scaled(S*D*e); got != want {
						t.Errorf("dense %s K read %d, want B·Hkv·S·D·e = %d", impl, got, want)
					}
					if got, want := tt[TensorV].ReadBytes, scaled(S*D*e); got != want {
						t.Errorf("dense %s V read %d, want %d", impl, got, want)
					}
					if impl == Unfused {
						// scores written once and read once, probs likewise.
						g := H / Hkv
						if got, want := tt[TensorScores], (traces.Totals{ReadBytes: scaled(g * S * e), WriteBytes: scaled(g * S * e)}); got != want {
							t.Errorf("scores traffic %+v, want %+v", got, want)
						}
					}
				}
				r, k := int64(16), int64(64)
				for _, layout := range []KLayout{KTwice, KOnce} {
					tr := simulate(t, Config{Shape: tc.shape, DType: dt, Workload: Gaussian, SampleHeads: tc.sample,
						Spec: Spec{Method: MethodSparQ, Impl: Unfused, R: int(r), K: int(k), KLayout: layout}})
					tt := tensorTotals(tr)
					step1 := TensorKt
					if layout == KOnce {
						step1 = TensorK
					}
					// Step 1 reads S·r elements; step 2 reads k rows of K and V.
					if got, want := tt[step1].ReadBytes-boolInt(layout == KOnce)*scaled(k*D*e), scaled(S*r*e); got != want {
						t.Errorf("%s: step-1 read of %s %d, want B·Hkv·S·r·e = %d", layout, step1, got, want)
					}
					if layout == KTwice {
						if got, want := tt[TensorK].ReadBytes, scaled(k*D*e); got != want {
							t.Errorf("twice: K rows read %d, want B·Hkv·k·D·e = %d", got, want)
						}
					}
					if got, want := tt[TensorV].ReadBytes, scaled(k*D*e); got != want {
						t.Errorf("V rows read %d, want %d", got, want)
					}
					if got, want := tt[TensorVmean].ReadBytes, scaled(D*4); got != want {
						t.Errorf("Vmean read %d, want %d", got, want)
					}
				}
			})
		}
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// The append stage writes the new token's k and v (both K copies when K is
// stored twice) and reads and writes v̄: the paper's 2·d_h + 2·d_h extra.
func TestAppendStageBytes(t *testing.T) {
	shape := Shape{Batch: 2, Heads: 4, KVHeads: 4, HeadDim: 32, Seq: 128}
	tr := simulate(t, Config{Shape: shape, DType: FP16, Workload: Gaussian,
		Spec: Spec{Method: MethodSparQ, Impl: Unfused, R: 8, K: 16, KLayout: KTwice, AppendKV: true}})
	if tr.Stages[0].Name != StageAppend {
		t.Fatalf("first stage %q", tr.Stages[0].Name)
	}
	got := tr.StageTensorTotals(0)
	pairs, D := int64(8), int64(32)
	for name, want := range map[string]traces.Totals{
		TensorK:     {WriteBytes: pairs * D * 2},
		TensorKt:    {WriteBytes: pairs * D * 2},
		TensorV:     {WriteBytes: pairs * D * 2},
		TensorVmean: {ReadBytes: pairs * D * 4, WriteBytes: pairs * D * 4},
	} {
		id, _ := tr.TensorByName(name)
		if got[id] != want {
			t.Errorf("%s: %+v, want %+v", name, got[id], want)
		}
	}
}

func TestFusedKeepsIntermediatesOnChip(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 4, KVHeads: 2, HeadDim: 32, Seq: 256}
	tr := simulate(t, Config{Shape: shape, DType: FP16, Workload: Gaussian,
		Spec: Spec{Method: MethodSparQ, Impl: Fused, R: 8, K: 32, KLayout: KTwice}})
	if len(tr.Stages) != 1 {
		t.Fatalf("%d stages, want 1", len(tr.Stages))
	}
	tt := tensorTotals(tr)
	for _, name := range []string{TensorI1, TensorLogitsHat, TensorI2, TensorAlpha, TensorLogits} {
		if tt[name].Bytes() != 0 {
			t.Errorf("%s moved %+v", name, tt[name])
		}
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestKOnceTraceIsScattered(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 128, Seq: 1024}
	tr := simulate(t, Config{Shape: shape, DType: FP16, Workload: Gaussian,
		Spec: Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 64, KLayout: KOnce}})
	var strided, gathers int
	for _, st := range tr.Stages {
		if st.Name != StageApprox {
			continue
		}
		for _, e := range st.Extents {
			if e.Gather() {
				// The r columns are recorded in one call.
				gathers++
			}
			for x := range e.Expanded() {
				if x.Repeats() > 1 {
					strided++
					if x.Length != 2 || x.Stride != 256 || x.Count != 1024 {
						t.Errorf("gather extent %+v, want 2-byte runs every 256 bytes, 1024 times", x)
					}
				}
			}
		}
	}
	if strided != 32 || gathers != 1 {
		t.Errorf("%d strided extents in %d gathers, want r = 32 in 1", strided, gathers)
	}
	// Folding to 32-byte sectors: a 256-byte fp16 row has 8 sectors; 32 of
	// 128 components touch at least 1 and at most 8 of them.
	for i, st := range tr.Stages {
		if st.Name != StageApprox {
			continue
		}
		ft, err := tr.Fold(i, 32)
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := tr.TensorByName(TensorK)
		for _, x := range ft {
			if x.Tensor != kid {
				continue
			}
			if x.Read.Moved < 1024*32 || x.Read.Moved > 1024*256 {
				t.Errorf("moved %d bytes, outside [1 sector, 8 sectors] per row", x.Read.Moved)
			}
			// A row's components are fetched together: without a cache
			// holding all of K, each row still pays each sector once.
			if x.Read.MovedNoReuse != x.Read.Moved {
				t.Errorf("moved without reuse %d, want the per-row union %d", x.Read.MovedNoReuse, x.Read.Moved)
			}
		}
	}
}

func TestTraceIsDeterministic(t *testing.T) {
	c := Config{Shape: Shape{Batch: 4, Heads: 8, KVHeads: 2, HeadDim: 64, Seq: 300}, DType: FP16, Workload: LLMLike, Seed: 7,
		Spec: Spec{Method: MethodSparQ, Impl: Unfused, R: 16, K: 32, KLayout: KTwice, AppendKV: true}}
	a := simulate(t, c)
	c.Workers = 1
	b := simulate(t, c)
	if !slices.EqualFunc(a.Stages, b.Stages, func(x, y traces.Stage) bool {
		return x.Name == y.Name && x.Arith == y.Arith && slices.EqualFunc(x.Extents, y.Extents, traces.Extent.Equal)
	}) {
		t.Error("traces differ between 1 and several workers")
	}
}

func TestFidelity(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 128, Seq: 2048}
	run := func(r, k int) *Fidelity {
		o, err := Simulate(context.Background(), Config{Shape: shape, DType: FP32, Workload: LLMLike, Seed: 1,
			Spec: Spec{Method: MethodSparQ, Impl: Unfused, R: r, K: k, KLayout: KTwice}})
		if err != nil {
			t.Fatal(err)
		}
		return o.Fidelity
	}
	exact := run(128, 2048)
	if exact.RelL2Error > 1e-5 || exact.AlphaMean != 1 || math.Abs(exact.TopKRecall-1) > 1e-9 {
		t.Errorf("k = S: %+v, want no error, α = 1, recall 1", exact)
	}
	coarse, fine := run(8, 64), run(64, 256)
	if !(fine.RelL2Error < coarse.RelL2Error) {
		t.Errorf("error does not fall with more transfer: r=8,k=64 %.3g; r=64,k=256 %.3g", coarse.RelL2Error, fine.RelL2Error)
	}
	if fine.TopKRecall < 0.9 {
		t.Errorf("r=64, k=256 recall %.3f on llm-like data, want ≥ 0.9", fine.TopKRecall)
	}
	for _, f := range []*Fidelity{coarse, fine} {
		if f.AlphaMean <= 0 || f.AlphaMean > 1 || f.MassCovered <= 0 || f.MassCovered > 1+1e-9 {
			t.Errorf("out of range: %+v", f)
		}
	}
}

func simulate(t *testing.T, c Config) *traces.Trace {
	t.Helper()
	o, err := Simulate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Trace.Validate(); err != nil {
		t.Fatal(err)
	}
	return o.Trace
}

func tensorTotals(tr *traces.Trace) map[string]traces.Totals {
	out := map[string]traces.Totals{}
	for i, x := range tr.TensorTotals() {
		out[tr.Tensors[i].Name] = x
	}
	return out
}

// The Triton step-1 tile holds TritonScoreTileElems elements of K, its
// positions clamped to 64-1024, as validation/grid.py's approx_grid.
func TestTritonScoreChunk(t *testing.T) {
	for _, c := range []struct{ r, want int }{{1, 1024}, {4, 1024}, {8, 1024}, {16, 512}, {32, 256}, {64, 128}, {128, 64}, {256, 64}} {
		if got := TritonScoreChunk(c.r); got != c.want {
			t.Errorf("TritonScoreChunk(%d) = %d, want %d", c.r, got, c.want)
		}
	}
}
