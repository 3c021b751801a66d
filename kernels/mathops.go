package kernels

import (
	"math"
	"math/bits"
	"slices"

	"gonum.org/v1/gonum/blas/blas32"
)

// dot is the float32 inner product of equal-length slices. gonum's blas32
// runs SSE assembly on amd64, about 3× a scalar Go loop.
func dot(a, b []float32) float32 {
	return blas32.Dot(blas32.Vector{N: len(a), Inc: 1, Data: a}, blas32.Vector{N: len(b), Inc: 1, Data: b})
}

// axpy computes y += alpha·x.
func axpy(alpha float32, x, y []float32) {
	blas32.Axpy(alpha, blas32.Vector{N: len(x), Inc: 1, Data: x}, blas32.Vector{N: len(y), Inc: 1, Data: y})
}

// softmax replaces xs by softmax(xs), stably, accumulating in float64.
func softmax(xs []float32) {
	if len(xs) == 0 {
		return
	}
	m := xs[0]
	for _, x := range xs[1:] {
		if x > m {
			m = x
		}
	}
	var sum float64
	for i, x := range xs {
		e := math.Exp(float64(x - m))
		xs[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range xs {
		xs[i] *= inv
	}
}

// topK writes into idx (len ≥ k) the indices of the k largest values of
// vals, in ascending index order, and returns idx[:k]. Ties go to the lower
// index, so the selection is deterministic. It runs in expected O(n) by
// quickselect over a scratch permutation.
func topK(vals []float32, k int, idx []int32, scratch []int32) []int32 {
	n := len(vals)
	if k >= n {
		idx = idx[:n]
		for i := range idx {
			idx[i] = int32(i)
		}
		return idx
	}
	perm := scratch[:n]
	for i := range perm {
		perm[i] = int32(i)
	}
	// better reports whether position a ranks before position b.
	better := func(a, b int32) bool {
		va, vb := vals[a], vals[b]
		if va != vb {
			return va > vb
		}
		return a < b
	}
	lo, hi := 0, n-1
	for lo < hi {
		// Median of three as pivot.
		mid := lo + (hi-lo)/2
		if better(perm[mid], perm[lo]) {
			perm[mid], perm[lo] = perm[lo], perm[mid]
		}
		if better(perm[hi], perm[lo]) {
			perm[hi], perm[lo] = perm[lo], perm[hi]
		}
		if better(perm[hi], perm[mid]) {
			perm[hi], perm[mid] = perm[mid], perm[hi]
		}
		pivot := perm[mid]
		i, j := lo, hi
		for i <= j {
			for better(perm[i], pivot) {
				i++
			}
			for better(pivot, perm[j]) {
				j--
			}
			if i <= j {
				perm[i], perm[j] = perm[j], perm[i]
				i++
				j--
			}
		}
		// Now perm[lo..j] rank at or before pivot and perm[i..hi] at or after.
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			lo = hi
		}
	}
	idx = idx[:k]
	copy(idx, perm[:k])
	slices.Sort(idx)
	return idx
}

// log2Ceil is ⌈log₂ n⌉ for n ≥ 1, the depth of a selection network or heap,
// used to count comparisons.
func log2Ceil(n int) int64 {
	if n <= 1 {
		return 1
	}
	return int64(64 - bits.LeadingZeros64(uint64(n-1)))
}
