package kernels

import (
	"math"
	"math/bits"
	"slices"
	"sync"
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
// Small selections (k over a 16th of n, or n small) run quickselect over all
// positions. Large ones keep a candidate list and a threshold t, the k-th
// largest of the candidates, starting from the top k of the last block of
// positions (recent positions tend to score high): a vector filter appends
// the positions of values ≥ t block by block, and whenever the list passes
// 4k it is cut back to its top k, raising t. A rejected value is below the
// k-th of k candidates, so below the final k-th value, and the result is
// exact; the work is one vector pass over vals.
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
	plain := func() []int32 {
		perm := scratch[:n]
		for i := range perm {
			perm[i] = int32(i)
		}
		return sortedTop(vals, perm, k, idx)
	}
	if 16*k > n || limit+block > len(scratch) || n < 4*block {
		return plain()
	}
	cand := scratch[:limit+block]
	warm := max(block, k)
	rest := n - warm
	for i := range warm {
		cand[i] = int32(rest + i)
	}
	selectTop(vals, cand[:warm], k)
	m := k
	t := vals[cand[k-1]]
	if t != t || math.IsInf(float64(t), -1) {
		return plain() // NaN or -Inf in the top k: every number would pass
	}
	for off := 0; off < rest; off += block {
		end := min(off+block, rest)
		// v ≥ t, as v > the next float below t.
		m += filterGreaterSIMD(vals[off:end], math.Nextafter32(t, float32(math.Inf(-1))), int32(off), cand[m:])
		if m > limit {
			selectTop(vals, cand[:m], k)
			m = k
			t = vals[cand[k-1]]
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

// selectTop rewrites the first k entries of perm (positions in vals,
// len ≥ k ≥ 1) as the top k of all its entries, perm[k-1] the k-th, by
// value and then by lower position; the entries after k are left as they
// were. It ranks composite keys, rankKey(value) above the
// complemented position, so that every comparison is one integer compare
// and no two keys tie, by quickselect with a median-of-three pivot.
func selectTop(vals []float32, perm []int32, k int) {
	kp := keyPool.Get().(*[]uint64)
	keys := slices.Grow((*kp)[:0], len(perm))[:len(perm)]
	for i, p := range perm {
		keys[i] = uint64(rankKey(vals[p]))<<32 | uint64(^uint32(p))
	}
	lo, hi := 0, len(keys)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if keys[mid] > keys[lo] {
			keys[mid], keys[lo] = keys[lo], keys[mid]
		}
		if keys[hi] > keys[lo] {
			keys[hi], keys[lo] = keys[lo], keys[hi]
		}
		if keys[hi] > keys[mid] {
			keys[hi], keys[mid] = keys[mid], keys[hi]
		}
		// Now keys[lo] ≥ keys[mid] ≥ keys[hi]: both scans stop in range.
		pivot := keys[mid]
		i, j := lo, hi
		for i <= j {
			for keys[i] > pivot {
				i++
			}
			for pivot > keys[j] {
				j--
			}
			if i <= j {
				keys[i], keys[j] = keys[j], keys[i]
				i++
				j--
			}
		}
		// Now keys[lo..j] ≥ pivot ≥ keys[i..hi].
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			lo = hi
		}
	}
	for i, key := range keys[:k] {
		perm[i] = int32(^uint32(key))
	}
	*kp = keys
	keyPool.Put(kp)
}

// keyPool recycles selectTop's key buffers.
var keyPool = sync.Pool{New: func() any { return new([]uint64) }}

// log2Ceil is ⌈log₂ n⌉ for n ≥ 1, the depth of a selection network or heap,
// used to count comparisons.
func log2Ceil(n int) int64 {
	if n <= 1 {
		return 1
	}
	return int64(64 - bits.LeadingZeros64(uint64(n-1)))
}
