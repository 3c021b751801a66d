package kernels

import (
	"math"
	"math/bits"
	"slices"
)

// dot is the float32 inner product of a and b, which must be at least as
// long as a. It runs the widest vector code the host has (simd_common.go).
func dot(a, b []float32) float32 { return dotSIMD(a, b[:len(a)]) }

// axpy computes y += alpha·x; y must be at least as long as x.
func axpy(alpha float32, x, y []float32) { axpySIMD(alpha, x, y[:len(x)]) }

// dotRows sets out[i] = scale·dot(q, k[i·d:(i+1)·d]) for every i < len(out),
// with d = len(q): the scores of one query against consecutive key rows.
// Several rows share each load of q and their horizontal sums, so it runs
// at memory speed where a dot call per row does not.
func dotRows(q, k, out []float32, scale float32) {
	dotRowsSIMD(q, k[:len(out)*len(q)], out, scale)
}

// axpyRows adds Σ_i w[i]·v[i·d:(i+1)·d] to out, with d = len(out): the
// weighted sum of consecutive value rows, the output held in registers.
func axpyRows(w, v, out []float32) {
	axpyRowsSIMD(w, v[:len(w)*len(out)], out)
}

// softmax replaces xs by softmax(xs), stably: the maximum is subtracted
// before exponentiating, and the normalising sum is accumulated in float64,
// chunk by chunk of splitChunk positions (so that softmaxSplit, which runs
// the chunks in parallel, gives the same bits). The vector exponential is
// within 1.3 float32 ulps of math.Exp (TestExpAccuracy).
func softmax(xs []float32) {
	if len(xs) > splitChunk {
		softmaxSplit(1, xs)
		return
	}
	if len(xs) == 0 {
		return
	}
	m := maxSIMD(xs)
	sum := expSubSumSIMD(xs, m)
	scaleSIMD(float32(1/sum), xs)
}

// topK writes into idx (len ≥ k) the indices of the k largest values of
// vals, in ascending index order, and returns idx[:k]. Ties go to the lower
// index, so the selection is deterministic; -0 equals +0 and NaN ranks below
// every number. scratch needs len(vals) entries.
//
// Small selections (k at least a 1/16 of n, or n small) run quickselect over
// all positions. Large ones keep a candidate list and a threshold t, the
// k-th largest of the candidates: a vector filter appends the positions of
// values above t block by block, and whenever the list passes 4k it is cut
// back to its top k, raising t. Rejected values are at most the final k-th
// value and, when equal to it, come after k positions that rank before
// them, so the result is exact; the work is one vector pass over vals.
func topK(vals []float32, k int, idx []int32, scratch []int32) []int32 {
	n := len(vals)
	switch {
	case k >= n:
		idx = idx[:n]
		for i := range idx {
			idx[i] = int32(i)
		}
		return idx
	case k <= 0:
		return idx[:0]
	}
	const block = 1024
	limit := 4 * k
	if 16*k > n || limit+block > len(scratch) || n < 4*block {
		perm := scratch[:n]
		for i := range perm {
			perm[i] = int32(i)
		}
		return sortedTop(vals, perm, k, idx)
	}
	cand := scratch[:limit+block]
	for i := range k {
		cand[i] = int32(i)
	}
	m := k
	selectTop(vals, cand[:m], k)
	t := vals[cand[k-1]]
	for off := k; off < n; off += block {
		end := min(off+block, n)
		m += filterGreaterSIMD(vals[off:end], t, int32(off), cand[m:])
		if m > limit {
			selectTop(vals, cand[:m], k)
			m = k
			t = vals[cand[k-1]]
		}
		if t != t { // NaN: every number passes; do it the plain way
			perm := scratch[:n]
			for i := range perm {
				perm[i] = int32(i)
			}
			return sortedTop(vals, perm, k, idx)
		}
	}
	return sortedTop(vals, cand[:m], k, idx)
}

// sortedTop selects the top k of the positions in perm (len ≥ k) and writes
// them to idx in ascending order.
func sortedTop(vals []float32, perm []int32, k int, idx []int32) []int32 {
	selectTop(vals, perm, k)
	idx = idx[:k]
	copy(idx, perm[:k])
	slices.Sort(idx)
	return idx
}

// rankKey maps a float32 to a uint32 whose order is the ranking: numbers by
// value with -0 = +0, every NaN below -Inf.
func rankKey(x float32) uint32 {
	b := math.Float32bits(x)
	switch {
	case x != x:
		return 0
	case b == 1<<31: // -0
		b = 0
	}
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}

// selectTop reorders perm (positions in vals, len ≥ k ≥ 1) so that its
// first k entries are the top k, and perm[k-1] the k-th, by value and then
// by lower position: quickselect with a median-of-three pivot.
func selectTop(vals []float32, perm []int32, k int) {
	// better reports whether position a ranks before position b.
	better := func(a, b int32) bool {
		ka, kb := rankKey(vals[a]), rankKey(vals[b])
		if ka != kb {
			return ka > kb
		}
		return a < b
	}
	lo, hi := 0, len(perm)-1
	for lo < hi {
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
}

// log2Ceil is ⌈log₂ n⌉ for n ≥ 1, the depth of a selection network or heap,
// used to count comparisons.
func log2Ceil(n int) int64 {
	if n <= 1 {
		return 1
	}
	return int64(64 - bits.LeadingZeros64(uint64(n-1)))
}
