package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Attention-shaped loops over the vector primitives, for the kernels to call
// in place of a primitive call per row. Each keeps what it reuses in
// registers or L1 and streams the big operand once.
//
// The sequence loops take a workers count: with more than one they split
// the rows into chunks of splitChunk run on that many goroutines, so that a
// pair can use the cores its Step does not fill (fewer sampled pairs than
// workers). The chunking is the same whatever the count, and chunk results
// are combined in chunk order, so the output is bitwise the same for any
// workers ≥ 1.

// splitChunk is the rows of one work item when a sequence is split: 4096
// rows of 128 floats are 2 MiB of K or V.
const splitChunk = 4096

// forChunks calls f(c, lo, hi) for every chunk c = [lo, hi) of splitChunk
// rows of [0, n), on up to workers goroutines (the caller's included).
func forChunks(n, workers int, f func(c, lo, hi int)) {
	chunks := (n + splitChunk - 1) / splitChunk
	if workers <= 1 || chunks <= 1 {
		for c := range chunks {
			f(c, c*splitChunk, min((c+1)*splitChunk, n))
		}
		return
	}
	var next atomic.Int64
	run := func() {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			f(c, c*splitChunk, min((c+1)*splitChunk, n))
		}
	}
	var wg sync.WaitGroup
	for range min(workers, chunks) - 1 {
		wg.Go(run)
	}
	run()
	wg.Wait()
}

// scoreBlock is how many key or value rows groupScores and groupWeightedSum
// take at a time when g > 1: 64 rows of 128 floats are 32 KiB, which every
// head of the group then reads from L1/L2 instead of memory.
const scoreBlock = 64

// groupScores sets rows[h·stride+i] = scale·(q[h·d:(h+1)·d]·k[i·d:(i+1)·d])
// for the g = len(q)/d query heads of a KV group and the n key rows: the
// score stage of dense attention (stride = n for a [g, n] score matrix).
// A row's score does not depend on the chunking.
func groupScores(workers int, q, k []float32, d, n int, rows []float32, stride int, scale float32) {
	g := len(q) / d
	forChunks(n, workers, func(_, lo, hi int) {
		if g == 1 {
			dotRows(q[:d], k[lo*d:hi*d], rows[lo:hi], scale)
			return
		}
		for i0 := lo; i0 < hi; i0 += scoreBlock {
			i1 := min(i0+scoreBlock, hi)
			kb := k[i0*d : i1*d]
			for h := range g {
				dotRows(q[h*d:(h+1)*d], kb, rows[h*stride+i0:h*stride+i1], scale)
			}
		}
	})
}

// groupWeightedSum adds Σ_{i<n} w[h·stride+i]·v[i·d:(i+1)·d] to
// out[h·d:(h+1)·d] for the g = len(out)/d heads of a KV group: the weighted
// sum of V rows (stride = n for a [g, n] probability matrix). Each chunk's
// sum starts from zero; they are added to out in chunk order.
func groupWeightedSum(workers int, w []float32, stride int, v []float32, d, n int, out []float32) {
	g := len(out) / d
	chunks := (n + splitChunk - 1) / splitChunk
	part := make([]float32, chunks*g*d)
	forChunks(n, workers, func(c, lo, hi int) {
		p := part[c*g*d : (c+1)*g*d]
		if g == 1 {
			axpyRows(w[lo:hi], v[lo*d:hi*d], p)
			return
		}
		for i0 := lo; i0 < hi; i0 += scoreBlock {
			i1 := min(i0+scoreBlock, hi)
			vb := v[i0*d : i1*d]
			for h := range g {
				axpyRows(w[h*stride+i0:h*stride+i1], vb, p[h*d:(h+1)*d])
			}
		}
	})
	for c := range chunks {
		axpy(1, part[c*g*d:(c+1)*g*d], out[:g*d])
	}
}

// softmaxSplit is softmax with the passes over xs split across workers;
// the result is bitwise softmax's.
func softmaxSplit(workers int, xs []float32) {
	n := len(xs)
	if n == 0 {
		return
	}
	chunks := (n + splitChunk - 1) / splitChunk
	part := make([]float64, chunks)
	maxes := make([]float32, chunks)
	forChunks(n, workers, func(c, lo, hi int) { maxes[c] = maxSIMD(xs[lo:hi]) })
	m := maxSIMD(maxes)
	forChunks(n, workers, func(c, lo, hi int) { part[c] = expSubSumSIMD(xs[lo:hi], m) })
	var sum float64
	for _, s := range part {
		sum += s
	}
	inv := float32(1 / sum)
	forChunks(n, workers, func(_, lo, hi int) { scaleSIMD(inv, xs[lo:hi]) })
}

// sumChunk is the slice of the output sumRows keeps in L1 while it adds
// every selected row into it: 2048 floats, 8 KiB.
const sumChunk = 2048

// sumRows adds Σ_j coef[h·r+j]·src[sel[j]·rowLen+i] to out[h·stride+i] for
// every i < n ≤ rowLen and each of the g = len(coef)/r heads of a group
// (r = len(sel)), in j order: a weighted sum of selected rows, e.g. the r
// selected rows of Kᵀ that give SparQ's approximate scores when K is stored
// twice. It walks the positions in chunks of sumChunk, within which the
// outputs stay in L1 and the selected rows in L2 while every head adds
// them in, instead of streaming the output once per row and the rows once
// per head; the result is bitwise one axpy per row and head.
func sumRows(workers int, coef []float32, src []float32, rowLen int, sel []int32, out []float32, stride, n int) {
	r := len(sel)
	if r == 0 {
		return
	}
	g := len(coef) / r
	for _, row := range sel { // the assembly reads without bounds checks
		if row < 0 || int(row)*rowLen+n > len(src) || n > rowLen {
			panic(fmt.Sprintf("sumRows: row %d of length %d outside a source of %d", row, n, len(src)))
		}
	}
	coef = coef[:g*r]
	forChunks(n, workers, func(_, lo, hi int) {
		for c0 := lo; c0 < hi; c0 += sumChunk {
			c1 := min(c0+sumChunk, hi)
			for h := range g {
				for j0 := 0; j0 < r; j0 += sumRowGroup {
					j1 := min(j0+sumRowGroup, r)
					axpySelAt(hostSIMD, coef[h*r+j0:h*r+j1], src[c0:], rowLen, sel[j0:j1], out[h*stride+c0:h*stride+c1])
				}
			}
		}
	})
}

// sumRowGroup is how many selected rows sumRows adds per pass over an
// output chunk: eight streams at a time, the output in registers.
const sumRowGroup = 8

// gatherScores sets out[c] = scale·(q·k[sel[c]·d:(sel[c]+1)·d]) for every
// selected row c, with d = len(q): the exact scores of the rows SparQ
// selected.
func gatherScores(q, k []float32, sel []int32, out []float32, scale float32) {
	d := len(q)
	out = out[:len(sel)]
	for c, i := range sel {
		out[c] = dot(q, k[int(i)*d:int(i+1)*d]) * scale
	}
}

// gatherWeightedSum adds Σ_c w[c]·v[sel[c]·d:(sel[c]+1)·d] to out, with
// d = len(out): the weighted sum of the selected V rows.
func gatherWeightedSum(w, v []float32, sel []int32, out []float32) {
	d := len(out)
	w = w[:len(sel)]
	for c, i := range sel {
		axpy(w[c], v[int(i)*d:int(i+1)*d], out)
	}
}

// gatherBlock is how many key rows gatherCols takes at a time for a group
// of heads: 256 rows of 128 floats are 128 KiB, read from memory by the
// first head and from L2 by the others.
const gatherBlock = 256

// gatherCols sets out[h·stride+i] = Σ_j coef[h·r+j]·k[i·d+sel[j]] for the
// g = len(coef)/r heads of a group (r = len(sel)) and the n rows of k:
// SparQ's approximate scores from the r selected components of every key
// row when K is stored once. Products and sums round as the scalar loop
// `acc += coef[j] * row[sel[j]]` does, in j order, so the result is bitwise
// that loop's at every level and for any workers.
func gatherCols(workers int, k []float32, d, n int, sel []int32, coef []float32, out []float32, stride int) {
	r := len(sel)
	if r == 0 {
		for h := range len(out) / max(stride, 1) {
			clear(out[h*stride : h*stride+n])
		}
		return
	}
	g := len(coef) / r
	k = k[:n*d]
	for _, j := range sel { // the assembly gathers without bounds checks
		if j < 0 || int(j) >= d {
			panic(fmt.Sprintf("gatherCols: component %d outside a row of %d", j, d))
		}
	}
	forChunks(n, workers, func(_, lo, hi int) {
		for i0 := lo; i0 < hi; i0 += gatherBlock {
			i1 := min(i0+gatherBlock, hi)
			for h := range g {
				gatherColsAt(hostSIMD, k[i0*d:i1*d], d, sel, coef[h*r:(h+1)*r], out[h*stride+i0:h*stride+i1])
			}
		}
	})
}
