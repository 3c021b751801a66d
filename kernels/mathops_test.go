package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// The vector primitives are tested at every level this host runs (the Go
// fallback always; AVX2 and AVX-512 where the CPU has them) against float64
// references and against each other, at lengths that exercise every loop
// and tail, at unaligned starts, and with guard elements after the end that
// no masked store may touch.

// hostLevels are the levels this host can run, lowest first.
func hostLevels() []simdLevel {
	var ls []simdLevel
	for l := levelGo; l <= detectSIMD(); l++ {
		ls = append(ls, l)
	}
	return ls
}

// simdLengths cover empty, sub-vector, exact multiples of 8, 16, 32, 64 and
// 128 lanes, and every remainder around them.
func simdLengths() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 95, 96, 97, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 4099)
}

const guard = 7 // elements after every output that must stay untouched

// randSlice returns n random values starting at an offset of off elements
// into a larger allocation (so vectors start unaligned), followed by guard
// elements holding a sentinel.
func randSlice(rng *rand.Rand, n, off int) []float32 {
	buf := make([]float32, off+n+guard)
	for i := range buf {
		buf[i] = float32(rng.NormFloat64())
	}
	s := buf[off : off+n : off+n+guard]
	for i := range guard {
		s[:n+guard][n+i] = 12345
	}
	return s
}

func checkGuard(t *testing.T, s []float32, what string) {
	t.Helper()
	for i, x := range s[len(s) : len(s)+guard] {
		if x != 12345 {
			t.Fatalf("%s: element %d past the end overwritten (%v)", what, i, x)
		}
	}
}

func TestDotAxpyLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range hostLevels() {
		for _, n := range simdLengths() {
			off := n % 4
			a, b := randSlice(rng, n, off), randSlice(rng, n, 3-off)
			var want, mag float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			got := float64(dotAt(l, a, b))
			// Each partial sum rounds once per addition: n·eps·Σ|ab| bounds it.
			if bound := float64(n+4) * 0x1p-24 * mag; math.Abs(got-want) > bound {
				t.Errorf("%v dot n=%d: got %v want %v (bound %.3g)", l, n, got, want, bound)
			}

			alpha := float32(rng.NormFloat64())
			y := randSlice(rng, n, off)
			y0 := slices.Clone(y)
			axpyAt(l, alpha, a, y)
			checkGuard(t, y, fmt.Sprintf("%v axpy n=%d", l, n))
			for i := range y {
				w := float64(y0[i]) + float64(alpha)*float64(a[i])
				// One rounding with FMA, two without.
				if bound := 2 * 0x1p-24 * (math.Abs(float64(y0[i])) + math.Abs(float64(alpha)*float64(a[i]))); math.Abs(float64(y[i])-w) > bound {
					t.Fatalf("%v axpy n=%d [%d]: got %v want %v", l, n, i, y[i], w)
				}
			}
		}
	}
}

func TestMaxScaleLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range hostLevels() {
		for _, n := range simdLengths() {
			if n == 0 {
				continue
			}
			xs := randSlice(rng, n, n%3)
			// The maximum somewhere in every position class, tails included.
			xs[rng.IntN(n)] = 100
			if got := maxAt(l, xs); got != 100 || got != maxGo(xs) {
				t.Fatalf("%v max n=%d: got %v", l, n, got)
			}
			for i := range xs {
				xs[i] = -float32(i) - 1 // maximum at the start
			}
			if got := maxAt(l, xs); got != -1 {
				t.Fatalf("%v max n=%d (first): got %v", l, n, got)
			}
			s := float32(rng.NormFloat64())
			want := slices.Clone(xs)
			scaleGo(s, want)
			scaleAt(l, s, xs)
			checkGuard(t, xs, fmt.Sprintf("%v scale n=%d", l, n))
			if !slices.Equal(xs, want) {
				t.Fatalf("%v scale n=%d: differs from Go", l, n)
			}
		}
	}
}

// expBound is the largest relative error of the vector e^x on normal
// results, as TestExpAccuracy measures it with a margin.
const expBound = 3e-7

// TestExpAccuracy compares the vector exponential with math.Exp on a dense
// sweep of [-104, 0] (softmax only takes e^(x−max) ≤ 1) plus the range up to
// 88. The measured maximum relative error on normal results is logged: 7.6e-8
// (1.3 float32 ulps) for both vector levels.
func TestExpAccuracy(t *testing.T) {
	var xs []float32
	for x := -104.0; x <= 88; x += 1.0 / 4099 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), -87.33, -87.34, -87.5, -87.7, -103.97, -200, float32(math.Inf(-1)))
	for _, l := range hostLevels() {
		if l == levelGo {
			continue // math.Exp itself
		}
		got := slices.Clone(xs)
		sum := expSubSumAt(l, got, 0)
		var worst, worstX, want64 float64
		for i, x := range xs {
			w := math.Exp(float64(x))
			want64 += float64(got[i])
			g := float64(got[i])
			switch {
			case w >= 0x1p-126:
				if e := math.Abs(g-w) / w; e > worst {
					worst, worstX = e, float64(x)
				}
			default: // below the normal range: 0 or a subnormal, absolute error tiny
				if math.Abs(g-w) > 0x1p-126 || g < 0 {
					t.Errorf("%v exp(%v) = %v, want %v", l, x, g, w)
				}
			}
		}
		t.Logf("%v: max relative error of exp on normal results %.3g (%.2f ulp) at x = %v", l, worst, worst/0x1p-24, worstX)
		if worst > expBound {
			t.Errorf("%v: exp relative error %.3g > %.3g", l, worst, expBound)
		}
		if z := len(xs) - 9; got[z] != 1 || got[z+1] != 1 {
			t.Errorf("%v: exp(0) = %v, exp(-0) = %v, want 1", l, got[z], got[z+1])
		}
		if math.Abs(sum-want64) > 1e-12*want64 {
			t.Errorf("%v: returned sum %v, stored values sum to %v", l, sum, want64)
		}
	}
}

func TestExpSubSumLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, l := range hostLevels() {
		for _, n := range simdLengths() {
			xs := randSlice(rng, n, n%5)
			for i := range xs {
				xs[i] *= 20
			}
			m := float32(0)
			if n > 0 {
				m = maxGo(xs)
			}
			want := slices.Clone(xs)
			wsum := expSubSumGo(want, m)
			sum := expSubSumAt(l, xs, m)
			checkGuard(t, xs, fmt.Sprintf("%v expSubSum n=%d", l, n))
			for i := range xs {
				// Relative error on normal results; results under 2^-126
				// may be flushed to 0.
				if e := math.Abs(float64(xs[i] - want[i])); e > expBound*float64(want[i]) && e > 0x1p-126 {
					t.Fatalf("%v expSubSum n=%d [%d]: got %v want %v", l, n, i, xs[i], want[i])
				}
			}
			if math.Abs(sum-wsum) > 4*expBound*wsum {
				t.Fatalf("%v expSubSum n=%d: sum %v want %v", l, n, sum, wsum)
			}
		}
	}
}

// TestSoftmaxAccuracy checks softmax at the host level against float64 at
// the kernels' fp32 tolerance, from 1 to 64K positions.
func TestSoftmaxAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 15, 17, 100, 4096, 32768, 65537} {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(4 * rng.NormFloat64())
		}
		want := make([]float64, n)
		m := math.Inf(-1)
		for _, x := range xs {
			m = math.Max(m, float64(x))
		}
		var sum float64
		for i, x := range xs {
			want[i] = math.Exp(float64(x) - m)
			sum += want[i]
		}
		softmax(xs)
		var num, den float64
		for i := range xs {
			want[i] /= sum
			d := float64(xs[i]) - want[i]
			num += d * d
			den += want[i] * want[i]
		}
		if e := math.Sqrt(num / den); e > 1e-6 {
			t.Errorf("n=%d: relative L2 error %.3g", n, e)
		}
	}
}

func TestRowsLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, l := range hostLevels() {
		for _, d := range []int{1, 8, 16, 24, 40, 64, 72, 128, 136, 192, 256, 320} {
			for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 33} {
				q := randSlice(rng, d, 1)
				k := randSlice(rng, n*d, 2)
				out := randSlice(rng, n, 3)
				scale := float32(0.125)
				dotRowsAt(l, q, k, out, scale)
				checkGuard(t, out, fmt.Sprintf("%v dotRows d=%d n=%d", l, d, n))
				for i := range out {
					var want, mag float64
					for j := range d {
						p := float64(q[j]) * float64(k[i*d+j])
						want += p
						mag += math.Abs(p)
					}
					want *= float64(scale)
					if bound := float64(d+4) * 0x1p-24 * mag * float64(scale); math.Abs(float64(out[i])-want) > bound {
						t.Fatalf("%v dotRows d=%d n=%d row %d: got %v want %v", l, d, n, i, out[i], want)
					}
				}

				w := randSlice(rng, n, 0)
				acc := randSlice(rng, d, 1)
				acc0 := slices.Clone(acc)
				axpyRowsAt(l, w, k, acc)
				checkGuard(t, acc, fmt.Sprintf("%v axpyRows d=%d n=%d", l, d, n))
				for j := range d {
					want, mag := float64(acc0[j]), math.Abs(float64(acc0[j]))
					for i := range n {
						p := float64(w[i]) * float64(k[i*d+j])
						want += p
						mag += math.Abs(p)
					}
					if bound := float64(2*n+2) * 0x1p-24 * mag; math.Abs(float64(acc[j])-want) > bound {
						t.Fatalf("%v axpyRows d=%d n=%d col %d: got %v want %v", l, d, n, j, acc[j], want)
					}
				}
			}
		}
	}
}

func TestFilterGreaterLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, l := range hostLevels() {
		for _, n := range simdLengths() {
			vals := randSlice(rng, n, n%2)
			if n > 3 {
				vals[1] = float32(math.NaN())
				vals[2] = float32(math.Inf(1))
			}
			for _, thr := range []float32{float32(math.Inf(-1)), -1, 0, 1.5, float32(math.Inf(1))} {
				want := make([]int32, n)
				want = want[:filterGreaterGo(vals, thr, 1000, want)]
				got := make([]int32, n+guard)
				for i := range got {
					got[i] = -7
				}
				m := filterGreaterAt(l, vals, thr, 1000, got[:n])
				if !slices.Equal(got[:m], want) {
					t.Fatalf("%v filter n=%d t=%v: got %v want %v", l, n, thr, got[:m], want)
				}
				for _, x := range got[n:] {
					if x != -7 {
						t.Fatalf("%v filter n=%d: wrote past the end", l, n)
					}
				}
			}
		}
	}
}

// refTopK ranks by sorting: value descending (-0 = +0, NaN lowest), then
// position ascending.
func refTopK(vals []float32, k int) []int32 {
	perm := make([]int32, len(vals))
	for i := range perm {
		perm[i] = int32(i)
	}
	sort.SliceStable(perm, func(a, b int) bool {
		return rankKey(vals[perm[a]]) > rankKey(vals[perm[b]])
	})
	out := slices.Clone(perm[:min(max(k, 0), len(vals))])
	slices.Sort(out)
	return out
}

func TestTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	type gen struct {
		name string
		f    func(i, n int) float32
	}
	gens := []gen{
		{"normal", func(int, int) float32 { return float32(rng.NormFloat64()) }},
		{"ties", func(int, int) float32 { return float32(rng.IntN(5)) }},
		{"ascending", func(i, _ int) float32 { return float32(i) }},
		{"descending", func(i, n int) float32 { return float32(n - i) }},
		{"constant", func(int, int) float32 { return 2 }},
		{"zeros", func(i, _ int) float32 {
			if i%2 == 0 {
				return float32(math.Copysign(0, -1))
			}
			return 0
		}},
		{"nan-inf", func(i, _ int) float32 {
			switch rng.IntN(8) {
			case 0:
				return float32(math.NaN())
			case 1:
				return float32(math.Inf(-1))
			case 2:
				return float32(math.Inf(1))
			}
			return float32(rng.NormFloat64())
		}},
	}
	for _, g := range gens {
		for _, n := range []int{1, 5, 100, 4095, 4096, 5000, 20000, 32768} {
			for _, k := range []int{0, 1, 2, 7, 96, 127, 300, n - 1, n, n + 3} {
				if k < 0 {
					continue
				}
				vals := make([]float32, n)
				for i := range vals {
					vals[i] = g.f(i, n)
				}
				want := refTopK(vals, k)
				idx := make([]int32, max(k, 1))
				scratch := make([]int32, n)
				got := topK(vals, k, idx, scratch)
				if !slices.Equal(got, want) {
					t.Fatalf("%s n=%d k=%d: got %v… want %v…", g.name, n, k, got[:min(8, len(got))], want[:min(8, len(want))])
				}
			}
		}
	}
}

// BenchmarkPrimitives times each primitive at each level of this host, so
//
//	go test -run '^$' -bench Primitives -count 10 ./kernels > p.txt
//	benchstat -col /level p.txt
//
// compares the assembly with the Go fallback. Bytes are the floats read.
func BenchmarkPrimitives(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	const d, rows = 128, 8192 // one 4 MiB block of K rows
	q := randSlice(rng, d, 0)
	k := randSlice(rng, rows*d, 0)
	out := make([]float32, rows)
	scores := randSlice(rng, 32768, 0)
	idx := make([]int32, 128)
	scratch := make([]int32, len(scores))
	for _, l := range hostLevels() {
		b.Run(fmt.Sprintf("op=dot/d=128/level=%v", l), func(b *testing.B) {
			b.SetBytes(4 * d * rows)
			for b.Loop() {
				for i := range rows {
					out[i] = dotAt(l, q, k[i*d:(i+1)*d])
				}
			}
		})
		b.Run(fmt.Sprintf("op=dotRows/d=128/level=%v", l), func(b *testing.B) {
			b.SetBytes(4 * d * rows)
			for b.Loop() {
				dotRowsAt(l, q, k, out, 1)
			}
		})
		b.Run(fmt.Sprintf("op=axpy/d=128/level=%v", l), func(b *testing.B) {
			b.SetBytes(4 * d * rows)
			for b.Loop() {
				for i := range rows {
					axpyAt(l, out[i], k[i*d:(i+1)*d], q)
				}
			}
		})
		b.Run(fmt.Sprintf("op=axpyRows/d=128/level=%v", l), func(b *testing.B) {
			b.SetBytes(4 * d * rows)
			for b.Loop() {
				axpyRowsAt(l, out, k, q)
			}
		})
		b.Run(fmt.Sprintf("op=softmax/n=32768/level=%v", l), func(b *testing.B) {
			xs := slices.Clone(scores)
			b.SetBytes(4 * int64(len(xs)))
			for b.Loop() {
				copy(xs, scores)
				m := maxAt(l, xs)
				s := expSubSumAt(l, xs, m)
				scaleAt(l, float32(1/s), xs)
			}
		})
		b.Run(fmt.Sprintf("op=filter/n=32768/level=%v", l), func(b *testing.B) {
			b.SetBytes(4 * int64(len(scores)))
			for b.Loop() {
				filterGreaterAt(l, scores, 3, 0, scratch)
			}
		})
	}
	b.Run("op=topK/n=32768/k=96/data=normal", func(b *testing.B) {
		b.SetBytes(4 * int64(len(scores)))
		for b.Loop() {
			topK(scores, 96, idx, scratch)
		}
	})
	ascending := make([]float32, len(scores))
	for i := range ascending {
		ascending[i] = float32(i)
	}
	b.Run("op=topK/n=32768/k=96/data=ascending", func(b *testing.B) {
		b.SetBytes(4 * int64(len(ascending)))
		for b.Loop() {
			topK(ascending, 96, idx, scratch)
		}
	})
}

func TestSumLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, l := range hostLevels() {
		for _, n := range simdLengths() {
			xs := randSlice(rng, n, n%3)
			var want, mag float64
			for _, x := range xs {
				want += float64(x)
				mag += math.Abs(float64(x))
			}
			if got := float64(sumAt(l, xs)); math.Abs(got-want) > float64(n+8)*0x1p-24*mag {
				t.Fatalf("%v sum n=%d: got %v want %v", l, n, got, want)
			}
		}
	}
}

func TestReadBandwidth(t *testing.T) {
	bw, err := ReadBandwidth(t.Context(), 1<<20, 2, 3)
	if err != nil || len(bw) != 3 {
		t.Fatalf("ReadBandwidth: %v, %d samples", err, len(bw))
	}
	for _, x := range bw {
		if !(x > 1e8) {
			t.Errorf("implausible read bandwidth %.3g B/s", x)
		}
	}
	if _, err := ReadBandwidth(t.Context(), 2, 1, 1); err == nil {
		t.Error("a 2-byte buffer: no error")
	}
}

// TestAttentionHelpers checks the grouped and gathered loops against the
// same arithmetic done one primitive call per row, which they replace, and
// that splitting them across workers changes no bit.
func TestAttentionHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, d := range []int{8, 16, 100, 128} {
		for _, g := range []int{1, 2, 4} {
			for _, n := range []int{1, 63, 64, 65, 300, 2*splitChunk + 5} {
				if n > splitChunk && d < 128 {
					continue
				}
				q := randSlice(rng, g*d, 0)
				k := randSlice(rng, n*d, 0)
				scale := float32(0.3)
				rows := make([]float32, g*n)
				groupScores(1, q, k, d, n, rows, n, scale)
				for h := range g {
					for i := range n {
						want := float64(dotGo(q[h*d:(h+1)*d], k[i*d:(i+1)*d])) * float64(scale)
						if math.Abs(float64(rows[h*n+i])-want) > 1e-4*(1+math.Abs(want)) {
							t.Fatalf("groupScores d=%d g=%d n=%d [%d,%d]: %v want %v", d, g, n, h, i, rows[h*n+i], want)
						}
					}
				}
				out := make([]float32, g*d)
				groupWeightedSum(1, rows, n, k, d, n, out)
				want := make([]float32, g*d)
				for h := range g {
					for i := range n {
						axpyGo(rows[h*n+i], k[i*d:(i+1)*d], want[h*d:(h+1)*d])
					}
				}
				for j := range out {
					if math.Abs(float64(out[j]-want[j])) > 1e-3*(1+math.Abs(float64(want[j]))) {
						t.Fatalf("groupWeightedSum d=%d g=%d n=%d [%d]: %v want %v", d, g, n, j, out[j], want[j])
					}
				}
				sm := slices.Clone(rows[:n])
				softmax(sm)
				for _, workers := range []int{2, 3} {
					r2 := make([]float32, g*n)
					groupScores(workers, q, k, d, n, r2, n, scale)
					if !slices.Equal(r2, rows) {
						t.Fatalf("groupScores d=%d g=%d n=%d: %d workers change the result", d, g, n, workers)
					}
					o2 := make([]float32, g*d)
					groupWeightedSum(workers, rows, n, k, d, n, o2)
					if !slices.Equal(o2, out) {
						t.Fatalf("groupWeightedSum d=%d g=%d n=%d: %d workers change the result", d, g, n, workers)
					}
					s2 := slices.Clone(rows[:n])
					softmaxSplit(workers, s2)
					if !slices.Equal(s2, sm) {
						t.Fatalf("softmaxSplit n=%d: %d workers change the result", n, workers)
					}
				}

				sel := []int32{0, int32(n - 1), int32(n / 2)}
				got := make([]float32, len(sel))
				gatherScores(q[:d], k, sel, got, scale)
				acc := make([]float32, d)
				gatherWeightedSum(got, k, sel, acc)
				wacc := make([]float32, d)
				for c, i := range sel {
					if w := dot(q[:d], k[int(i)*d:int(i+1)*d]) * scale; got[c] != w {
						t.Fatalf("gatherScores: %v want %v", got[c], w)
					}
					axpy(got[c], k[int(i)*d:int(i+1)*d], wacc)
				}
				if !slices.Equal(acc, wacc) {
					t.Fatalf("gatherWeightedSum differs from per-row axpy")
				}
			}
		}
	}
	// sumRows: selected rows of a [r, S] matrix, chunked, equals one axpy per
	// row over the whole length, bit for bit, for any workers.
	for _, s := range []int{1, 100, 2048, 5000, 3*splitChunk + 1} {
		src := randSlice(rng, 8*s, 0)
		sel := []int32{3, 0, 7, 7}
		coef := []float32{0.5, -1, 2, 0.25}
		init := randSlice(rng, s, 0)
		want := slices.Clone(init)
		for j, r := range sel {
			axpy(coef[j], src[int(r)*s:int(r+1)*s], want)
		}
		for _, workers := range []int{1, 2, 3} {
			// Two heads, the second with coefficients negated (exact).
			coef2 := append(slices.Clone(coef), coef...)
			for j := range coef {
				coef2[len(coef)+j] = -coef[j]
			}
			neg := slices.Clone(init)
			for i := range neg {
				neg[i] = -neg[i]
			}
			got := append(slices.Clone(init), neg...)
			sumRows(workers, coef2, src, s, sel, got, s, s)
			for i := range s {
				if got[i] != want[i] || got[s+i] != -want[i] {
					t.Fatalf("sumRows S=%d workers=%d differs from axpy per row at %d", s, workers, i)
				}
			}
		}
	}
}

func TestGatherColsLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range []int{4, 64, 128} {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 100, 2*splitChunk + 9} {
			k := randSlice(rng, n*d, 1)
			sel := []int32{int32(d - 1), 0, 3, 2, int32(d / 2)}
			coef := []float32{0.5, -2, 0.125, 1, 3}
			want := make([]float32, n)
			gatherColsGo(k, d, sel, coef, want)
			for i := range n {
				var acc float32
				for j, c := range sel {
					acc += coef[j] * k[i*d+int(c)]
				}
				if acc != want[i] {
					t.Fatalf("gatherColsGo d=%d n=%d row %d: %v, scalar loop %v", d, n, i, want[i], acc)
				}
			}
			for _, l := range hostLevels() {
				got := randSlice(rng, n, 2)
				gatherColsAt(l, k, d, sel, coef, got)
				checkGuard(t, got, fmt.Sprintf("%v gatherCols d=%d n=%d", l, d, n))
				if !slices.Equal(got, want) {
					t.Fatalf("%v gatherCols d=%d n=%d differs from Go", l, d, n)
				}
			}
			for _, workers := range []int{1, 3} {
				// Two heads: the second with coefficients doubled (exact).
				coef2 := append(slices.Clone(coef), coef...)
				for j := range coef {
					coef2[len(coef)+j] *= 2
				}
				got := make([]float32, 2*n)
				gatherCols(workers, k, d, n, sel, coef2, got, n)
				for i := range n {
					if got[i] != want[i] || got[n+i] != 2*want[i] {
						t.Fatalf("gatherCols workers=%d d=%d n=%d row %d: %v %v, want %v %v", workers, d, n, i, got[i], got[n+i], want[i], 2*want[i])
					}
				}
			}
		}
	}
}

func TestAxpySelLevels(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const stride = 300
	src := randSlice(rng, 9*stride, 0)
	for _, l := range hostLevels() {
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129, 200} {
			for _, sel := range [][]int32{{}, {4}, {0, 8, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 0, 0}} {
				coef := make([]float32, len(sel))
				for j := range coef {
					coef[j] = float32(rng.NormFloat64())
				}
				off := rng.IntN(stride - n + 1)
				got := randSlice(rng, n, 1)
				want := slices.Clone(got)
				axpySelAt(l, coef, src[off:], stride, sel, got)
				checkGuard(t, got, fmt.Sprintf("%v axpySel n=%d", l, n))
				for j, r := range sel {
					base := off + int(r)*stride
					axpyAt(l, coef[j], src[base:base+n], want)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%v axpySel n=%d sel=%v: differs from axpy per row", l, n, sel)
				}
			}
		}
	}
}
