package kernels

import (
	"math"
	"sort"
)

// The float64 references below are written from the paper's Algorithm 1 and
// the definitions, independently of the kernels: plain loops, full
// sorts instead of quickselect, no shared helpers with the package.

func refSoftmax(xs []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	out := make([]float64, len(xs))
	var sum float64
	for i, x := range xs {
		out[i] = math.Exp(x - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func refRow(m []float32, i, d int) []float64 {
	out := make([]float64, d)
	for j := range d {
		out[j] = float64(m[i*d+j])
	}
	return out
}

func refDot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// refAttention is softmax(q·K[rows]ᵀ/√D)·V[rows].
func refAttention(q []float64, k, v []float32, d int, rows []int) []float64 {
	logits := make([]float64, len(rows))
	for c, i := range rows {
		logits[c] = refDot(q, refRow(k, i, d)) / math.Sqrt(float64(d))
	}
	p := refSoftmax(logits)
	out := make([]float64, d)
	for c, i := range rows {
		vr := refRow(v, i, d)
		for j := range out {
			out[j] += p[c] * vr[j]
		}
	}
	return out
}

func allRows(s int) []int {
	rows := make([]int, s)
	for i := range rows {
		rows[i] = i
	}
	return rows
}

// argTop returns the indices of the n largest scores, ties to the lower index.
func argTop(scores []float64, cand []int, n int) []int {
	c := append([]int(nil), cand...)
	sort.SliceStable(c, func(a, b int) bool {
		if scores[c[a]] != scores[c[b]] {
			return scores[c[a]] > scores[c[b]]
		}
		return c[a] < c[b]
	})
	return c[:min(n, len(c))]
}

type refSparQOut struct {
	out      [][]float64
	selected []int // ascending
	alpha    []float64
	// groupLogits are the group-summed approximate logits the selection ranked.
	groupLogits []float64
	// groupAbs are the group-summed |approximate logits|: the scale of the
	// rounding error in groupLogits.
	groupAbs []float64
}

// refSparQ is SparQ Attention for the g query heads of one KV head. If
// forceSel is not nil it replaces steps 1-3's selection (to check the exact
// part when low-precision rounding legitimately changes a near-tie).
func refSparQ(q []float32, k, v []float32, g, d, s, r, kk int, realloc bool, forceSel []int) refSparQOut {
	qs := make([][]float64, g)
	for h := range g {
		qs[h] = refRow(q, h, d)
	}
	abs := make([]float64, d)
	for h := range g {
		for j := range d {
			abs[j] += math.Abs(qs[h][j])
		}
	}
	i1 := argTop(abs, allRows(d), r)
	logits := make([][]float64, g)
	group := make([]float64, s)
	groupAbs := make([]float64, s)
	for h := range g {
		var l1, l1sel float64
		for j := range d {
			l1 += math.Abs(qs[h][j])
		}
		for _, j := range i1 {
			l1sel += math.Abs(qs[h][j])
		}
		tau := math.Sqrt(float64(d) * l1sel / l1)
		logits[h] = make([]float64, s)
		for i := range s {
			var acc float64
			for _, j := range i1 {
				acc += qs[h][j] * float64(k[i*d+j])
			}
			logits[h][i] = acc / tau
			group[i] += logits[h][i]
			groupAbs[i] += math.Abs(logits[h][i])
		}
	}
	var sel []int
	switch {
	case forceSel != nil:
		sel = forceSel
	case kk >= s:
		sel = allRows(s)
	default:
		l := kk / 4
		cand := allRows(s - l)
		sel = argTop(group, cand, kk-l)
		for i := s - l; i < s; i++ {
			sel = append(sel, i)
		}
		sort.Ints(sel)
	}
	vbar := make([]float64, d)
	for i := range s {
		for j := range d {
			vbar[j] += float64(v[i*d+j]) / float64(s)
		}
	}
	res := refSparQOut{selected: sel, groupLogits: group, groupAbs: groupAbs}
	for h := range g {
		alpha := 1.0
		if realloc && kk < s {
			shat := refSoftmax(logits[h])
			alpha = 0
			for _, i := range sel {
				alpha += shat[i]
			}
		}
		att := refAttention(qs[h], k, v, d, sel)
		for j := range att {
			att[j] = alpha*att[j] + (1-alpha)*vbar[j]
		}
		res.out = append(res.out, att)
		res.alpha = append(res.alpha, alpha)
	}
	return res
}
