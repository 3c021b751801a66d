package kernels

import (
	"math"
	"os"
	"strings"
)

// Vector primitives and their dispatch.
//
// Each primitive (dot, axpy, the three passes of softmax) has a pure-Go
// version in this file and, on amd64, an AVX2+FMA and an AVX-512F version in
// asm_amd64.s. hostSIMD, chosen once at start-up from the CPU's features
// (golang.org/x/sys/cpu, which also checks that the OS saves the vector
// state), picks one; the *SIMD functions of simd_amd64.go dispatch on it
// with a predictable switch, so a call costs one compare more than a direct
// one. The purego build tag, or any other architecture, compiles the
// assembly out and leaves only the Go versions (simd_generic.go). The
// environment variable BWSIM_SIMD=go|avx2|avx512 lowers the level at start-up
// (never above what the CPU has), so the same binary can time each path.

// simdLevel is an instruction-set level of the vector primitives.
type simdLevel int

const (
	levelGo simdLevel = iota
	levelAVX2
	levelAVX512
)

var levelNames = [...]string{levelGo: "go", levelAVX2: "avx2", levelAVX512: "avx512"}

func (l simdLevel) String() string { return levelNames[l] }

// hostSIMD is the level the primitives run at.
var hostSIMD = capLevel(detectSIMD(), os.Getenv("BWSIM_SIMD"))

// capLevel lowers l to the level named by env, if env names a lower one.
func capLevel(l simdLevel, env string) simdLevel {
	for want, name := range levelNames {
		if strings.EqualFold(strings.TrimSpace(env), name) && simdLevel(want) < l {
			return simdLevel(want)
		}
	}
	return l
}

// SIMD names the instruction set the kernels' vector primitives use on this
// host: "avx512", "avx2" or "go" (the portable fallback).
func SIMD() string { return hostSIMD.String() }

// Sum is the read-only reduction the kernels' vector loops run at: a
// calibration that measures host bandwidth with it measures what these
// kernels can reach.
func Sum(xs []float32) float32 { return sumAt(hostSIMD, xs) }

// dotGo is the portable dot product: four accumulators, no bounds checks in
// the loop. len(b) must be at least len(a).
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo is the portable y += alpha·x. len(y) must be at least len(x).
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		ys[0] += alpha * xs[0]
		ys[1] += alpha * xs[1]
		ys[2] += alpha * xs[2]
		ys[3] += alpha * xs[3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// maxGo is the largest element of a non-empty xs.
func maxGo(xs []float32) float32 {
	m := xs[0]
	for _, x := range xs[1:] {
		if x > m {
			m = x
		}
	}
	return m
}

// expSubSumGo replaces every x by e^(x−m) and returns their sum, in
// float64. math.Exp makes it the accuracy reference of the vector versions.
func expSubSumGo(xs []float32, m float32) float64 {
	var sum float64
	for i, x := range xs {
		e := float32(math.Exp(float64(x - m)))
		xs[i] = e
		sum += float64(e)
	}
	return sum
}

// scaleGo multiplies every element of xs by s.
func scaleGo(s float32, xs []float32) {
	for i := range xs {
		xs[i] *= s
	}
}

// dotRowsEach is dotRows one row at a time (any head size).
func dotRowsEach(l simdLevel, q, k, out []float32, scale float32) {
	d := len(q)
	for i := range out {
		out[i] = dotAt(l, q, k[i*d:(i+1)*d]) * scale
	}
}

// axpyRowsEach is axpyRows one row at a time.
func axpyRowsEach(l simdLevel, w, v, out []float32) {
	d := len(out)
	for i, c := range w {
		axpyAt(l, c, v[i*d:(i+1)*d], out)
	}
}

// The primitives at the host's level.

func dotSIMD(a, b []float32) float32                { return dotAt(hostSIMD, a, b) }
func axpySIMD(alpha float32, x, y []float32)        { axpyAt(hostSIMD, alpha, x, y) }
func maxSIMD(xs []float32) float32                  { return maxAt(hostSIMD, xs) }
func expSubSumSIMD(xs []float32, m float32) float64 { return expSubSumAt(hostSIMD, xs, m) }
func scaleSIMD(s float32, xs []float32)             { scaleAt(hostSIMD, s, xs) }
func dotRowsSIMD(q, k, out []float32, scale float32) {
	dotRowsAt(hostSIMD, q, k, out, scale)
}
func axpyRowsSIMD(w, v, out []float32) { axpyRowsAt(hostSIMD, w, v, out) }
func filterGreaterSIMD(vals []float32, t float32, base int32, out []int32) int {
	return filterGreaterAt(hostSIMD, vals, t, base, out)
}

// filterGreaterGo writes base+i for every vals[i] > t (false for NaN) to
// out, ascending, and returns how many; out must have room for len(vals).
func filterGreaterGo(vals []float32, t float32, base int32, out []int32) int {
	out = out[:len(vals)]
	n := 0
	for i, v := range vals {
		if v > t {
			out[n] = base + int32(i)
			n++
		}
	}
	return n
}

// gatherColsGo sets out[i] = Σ_j coef[j]·k[i·d+sel[j]] for i < len(out),
// summing in j order.
func gatherColsGo(k []float32, d int, sel []int32, coef []float32, out []float32) {
	coef = coef[:len(sel)]
	for i := range out {
		row := k[i*d : (i+1)*d]
		var acc float32
		for j, c := range sel {
			acc += float32(coef[j] * row[c])
		}
		out[i] = acc
	}
}

// axpySelGo adds Σ_j coef[j]·src[sel[j]·stride+i] to out[i], one axpy per
// selected row.
func axpySelGo(l simdLevel, coef, src []float32, stride int, sel []int32, out []float32) {
	for j, r := range sel {
		base := int(r) * stride
		axpyAt(l, coef[j], src[base:base+len(out)], out)
	}
}
