//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// detectSIMD picks the widest level the CPU and OS support. AVX-512 needs
// only the foundation subset (F), and POPCNT; both vector levels need FMA.
func detectSIMD() simdLevel {
	x := cpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX2 && x.HasFMA && x.HasPOPCNT:
		return levelAVX512
	case x.HasAVX2 && x.HasFMA:
		return levelAVX2
	}
	return levelGo
}

// Assembly in asm_amd64.s. Slices are read up to len of the first one; the
// callers guarantee the others are at least as long.

//go:noescape
func dotAVX512(a, b []float32) float32

//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func axpyAVX512(alpha float32, x, y []float32)

//go:noescape
func axpyAVX2(alpha float32, x, y []float32)

// maxAVX512 and maxAVX2 need len(xs) ≥ 1.
//
//go:noescape
func maxAVX512(xs []float32) float32

//go:noescape
func maxAVX2(xs []float32) float32

// expSubSumAVX512 and expSubSumAVX2 replace every x by e^(x−m) (degree-7
// polynomial after range reduction; see TestExpAccuracy for its error) and
// return the sum of the stored values, accumulated in float64.
//
//go:noescape
func expSubSumAVX512(xs []float32, m float32) float64

//go:noescape
func expSubSumAVX2(xs []float32, m float32) float64

//go:noescape
func scaleAVX512(s float32, xs []float32)

//go:noescape
func scaleAVX2(s float32, xs []float32)

// sumAVX512 and sumAVX2 are the sum of xs: a pure read stream with eight
// accumulators, for measuring read bandwidth.
//
//go:noescape
func sumAVX512(xs []float32) float32

//go:noescape
func sumAVX2(xs []float32) float32

// dotRowsAVX512 sets out[i] = scale·(q[:d]·k[i·d:(i+1)·d]) for i < len(out);
// d must be a positive multiple of 16, len(q) ≥ d, len(k) ≥ len(out)·d.
//
//go:noescape
func dotRowsAVX512(q, k []float32, d int, out []float32, scale float32)

// axpyRowsAVX512 adds Σ_i w[i]·v[i·d:(i+1)·d] to out[:d] for i < len(w);
// d must be a positive multiple of 16, len(v) ≥ len(w)·d, len(out) ≥ d.
//
//go:noescape
func axpyRowsAVX512(w, v []float32, d int, out []float32)

// dotRowsAVX2 and axpyRowsAVX2 are the AVX2 versions; d must be a positive
// multiple of 8.
//
//go:noescape
func dotRowsAVX2(q, k []float32, d int, out []float32, scale float32)

//go:noescape
func axpyRowsAVX2(w, v []float32, d int, out []float32)

// filterGreaterAVX512 and filterGreaterAVX2 write base+i for every
// vals[i] > t (false for NaN) to out, ascending, and return how many; out
// must have room for len(vals).
//
//go:noescape
func filterGreaterAVX512(vals []float32, t float32, base int32, out []int32) int

//go:noescape
func filterGreaterAVX2(vals []float32, t float32, base int32, out []int32) int

// The *At functions run a primitive at level l, which must not exceed
// detectSIMD(); the package calls them with hostSIMD, the tests with each
// level the host has.

func dotAt(l simdLevel, a, b []float32) float32 {
	switch l {
	case levelAVX512:
		return dotAVX512(a, b)
	case levelAVX2:
		return dotAVX2(a, b)
	}
	return dotGo(a, b)
}

func axpyAt(l simdLevel, alpha float32, x, y []float32) {
	switch l {
	case levelAVX512:
		axpyAVX512(alpha, x, y)
	case levelAVX2:
		axpyAVX2(alpha, x, y)
	default:
		axpyGo(alpha, x, y)
	}
}

func maxAt(l simdLevel, xs []float32) float32 {
	switch l {
	case levelAVX512:
		return maxAVX512(xs)
	case levelAVX2:
		return maxAVX2(xs)
	}
	return maxGo(xs)
}

func expSubSumAt(l simdLevel, xs []float32, m float32) float64 {
	switch l {
	case levelAVX512:
		return expSubSumAVX512(xs, m)
	case levelAVX2:
		return expSubSumAVX2(xs, m)
	}
	return expSubSumGo(xs, m)
}

func scaleAt(l simdLevel, s float32, xs []float32) {
	switch l {
	case levelAVX512:
		scaleAVX512(s, xs)
	case levelAVX2:
		scaleAVX2(s, xs)
	default:
		scaleGo(s, xs)
	}
}

func dotRowsAt(l simdLevel, q, k, out []float32, scale float32) {
	d := len(q)
	switch {
	case d == 0:
	case l == levelAVX512 && d%16 == 0:
		dotRowsAVX512(q, k, d, out, scale)
		return
	case l >= levelAVX2 && d%8 == 0:
		dotRowsAVX2(q, k, d, out, scale)
		return
	}
	dotRowsEach(l, q, k, out, scale)
}

func axpyRowsAt(l simdLevel, w, v, out []float32) {
	d := len(out)
	switch {
	case d == 0:
	case l == levelAVX512 && d%16 == 0:
		axpyRowsAVX512(w, v, d, out)
		return
	case l >= levelAVX2 && d%8 == 0:
		axpyRowsAVX2(w, v, d, out)
		return
	}
	axpyRowsEach(l, w, v, out)
}

func filterGreaterAt(l simdLevel, vals []float32, t float32, base int32, out []int32) int {
	switch l {
	case levelAVX512:
		return filterGreaterAVX512(vals, t, base, out)
	case levelAVX2:
		return filterGreaterAVX2(vals, t, base, out)
	}
	return filterGreaterGo(vals, t, base, out)
}

func sumAt(l simdLevel, xs []float32) float32 {
	switch l {
	case levelAVX512:
		return sumAVX512(xs)
	case levelAVX2:
		return sumAVX2(xs)
	}
	return sumGo(xs)
}

// gatherColsAVX512 and gatherColsAVX2 set out[i] = Σ_j coef[j]·k[i·d+sel[j]]
// for i < len(out) (a multiple of 8 for AVX2), summing in j order with a
// rounding after each product and each addition, like gatherColsGo.
//
//go:noescape
func gatherColsAVX512(k []float32, d int, sel []int32, coef []float32, out []float32)

//go:noescape
func gatherColsAVX2(k []float32, d int, sel []int32, coef []float32, out []float32)

func gatherColsAt(l simdLevel, k []float32, d int, sel []int32, coef []float32, out []float32) {
	switch l {
	case levelAVX512:
		gatherColsAVX512(k, d, sel, coef, out)
	case levelAVX2:
		m := len(out) &^ 7
		gatherColsAVX2(k, d, sel, coef, out[:m])
		gatherColsGo(k[m*d:], d, sel, coef, out[m:])
	default:
		gatherColsGo(k, d, sel, coef, out)
	}
}

// axpySelAVX512 and axpySelAVX2 add Σ_j coef[j]·src[sel[j]·stride+i] to
// out[i] for i < len(out) (AVX2: the largest multiple of 8), j in order,
// one FMA per term, as axpy row by row does at the same level. The caller
// checks the bounds.
//
//go:noescape
func axpySelAVX512(coef, src []float32, stride int, sel []int32, out []float32)

//go:noescape
func axpySelAVX2(coef, src []float32, stride int, sel []int32, out []float32)

func axpySelAt(l simdLevel, coef, src []float32, stride int, sel []int32, out []float32) {
	switch l {
	case levelAVX512:
		axpySelAVX512(coef, src, stride, sel, out)
		return
	case levelAVX2:
		m := len(out) &^ 7
		axpySelAVX2(coef, src, stride, sel, out[:m])
		if m < len(out) {
			for j, r := range sel {
				base := int(r)*stride + m
				axpyAVX2(coef[j], src[base:base+len(out)-m], out[m:])
			}
		}
		return
	}
	axpySelGo(l, coef, src, stride, sel, out)
}
