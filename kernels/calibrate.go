package kernels

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Calibration of Loki and Double Sparsity. Both methods calibrate offline on
// a calibration set; the simulator calibrates each (sequence, KV head) pair
// on its own keys over a calibration prefix, positions [0, calibPrefix(S₀))
// of the first step's cache. Later positions, and every query, stay out of
// it, so the calibration never sees the data it is scored on beyond the keys
// a server would have had by then.

// calibPrefix is the calibration prefix of a cache of S positions: its first
// half, ⌈S/2⌉ positions.
func calibPrefix(S int) int { return max(1, (S+1)/2) }

// pcaBasis returns the principal directions of the keys' second moment
// M = Σ_{i<n} k_i·k_iᵀ (uncentred, so a common key offset stays in the
// leading components), as the rows of a [D, D] matrix in descending order of
// eigenvalue, each signed so that its largest-magnitude entry is positive.
func pcaBasis(K []float32, D, n int) []float64 {
	m := mat.NewSymDense(D, nil)
	for i := range n {
		row := K[i*D : (i+1)*D]
		for a := range D {
			ra := float64(row[a])
			if ra == 0 {
				continue
			}
			for b := a; b < D; b++ {
				m.SetSym(a, b, m.At(a, b)+ra*float64(row[b]))
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(m, true) {
		// Cannot happen for a finite symmetric matrix; fall back to the
		// identity, whose scores are the first d′ channels.
		id := make([]float64, D*D)
		for i := range D {
			id[i*D+i] = 1
		}
		return id
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, D)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case vals[a] > vals[b]:
			return -1
		case vals[a] < vals[b]:
			return 1
		}
		return 0
	})
	out := make([]float64, D*D)
	for c, col := range order {
		row := out[c*D : (c+1)*D]
		big := 0
		for j := range D {
			row[j] = vecs.At(j, col)
			if math.Abs(row[j]) > math.Abs(row[big]) {
				big = j
			}
		}
		if row[big] < 0 {
			for j := range row {
				row[j] = -row[j]
			}
		}
	}
	return out
}

// outlierChannels returns the r channels of largest energy Σ_{i<n} k_ij²
// (ties to the lower channel), ascending, and each one's range max|k_ij|.
func outlierChannels(K []float32, D, n, r int) ([]int32, []float32) {
	acc := make([]float64, D)
	rng := make([]float32, D)
	for i := range n {
		for j, v := range K[i*D : (i+1)*D] {
			acc[j] += float64(v) * float64(v)
			rng[j] = max(rng[j], float32(math.Abs(float64(v))))
		}
	}
	ch := iota32(0, D)
	slices.SortStableFunc(ch, func(a, b int32) int {
		switch {
		case acc[a] > acc[b]:
			return -1
		case acc[a] < acc[b]:
			return 1
		}
		return 0
	})
	ch = ch[:r]
	slices.Sort(ch)
	ranges := make([]float32, r)
	for c, j := range ch {
		ranges[c] = rng[j]
	}
	return ch, ranges
}
