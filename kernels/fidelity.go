package kernels

import (
	"math"
	"slices"
)

// Fidelity compares a sparse kernel's outputs with dense attention on the
// same data.
type Fidelity struct {
	// RelL2Error is ‖y − y_dense‖₂ / ‖y_dense‖₂ over all sampled outputs.
	RelL2Error float64 `json:"rel_l2_error"`
	// AlphaMean is the mean of SparQ's α over the sampled query heads (1 for
	// methods without reallocation).
	AlphaMean float64 `json:"alpha_mean"`
	// MassCovered is the mean exact attention mass on the selected positions.
	MassCovered float64 `json:"mass_covered"`
	// TopKRecall is MassCovered relative to the mass of the true top-k
	// positions (the best any selection of k positions can cover), averaged
	// over query heads: 1 means the selection is as good as an oracle.
	TopKRecall float64 `json:"topk_recall"`
	// Heads is the number of query heads measured.
	Heads int `json:"heads"`
}

// MeasureFidelity compares sparse with dense outputs of the same step of the
// same prepared data. dense must come from a dense run of the same Prepared
// data.
func MeasureFidelity(p *Prepared, sparse, dense *Result) Fidelity {
	c := p.Config
	g, D, S := c.Shape.Group(), c.Shape.HeadDim, sparse.Seq
	if S == 0 { // a Result built by hand: the first step
		S = c.Shape.Seq
	}
	q0 := sparse.Step * g * D
	var errSq, refSq, alphaSum, massSum, recallSum float64
	heads := 0
	probs := make([]float64, S)
	sorted := make([]float64, S)
	for i, pp := range p.pairs {
		so, do := sparse.Outputs[i], dense.Outputs[i]
		for j := range so.Out {
			dv := float64(so.Out[j]) - float64(do.Out[j])
			errSq += dv * dv
			refSq += float64(do.Out[j]) * float64(do.Out[j])
		}
		for h := range g {
			heads++
			a := 1.0
			if so.Alpha != nil {
				a = float64(so.Alpha[h])
			}
			alphaSum += a
			if so.Selected == nil {
				massSum++
				recallSum++
				continue
			}
			exactProbs(pp.data.Q[q0+h*D:q0+(h+1)*D], pp.data.K, D, probs)
			var covered float64
			for _, s := range so.Selected {
				covered += probs[s]
			}
			copy(sorted, probs)
			slices.Sort(sorted)
			var best float64
			for _, x := range sorted[S-min(len(so.Selected), S):] {
				best += x
			}
			massSum += covered
			if best > 0 {
				recallSum += math.Min(1, covered/best)
			}
		}
	}
	f := Fidelity{Heads: heads}
	if refSq > 0 {
		f.RelL2Error = math.Sqrt(errSq / refSq)
	}
	if heads > 0 {
		f.AlphaMean = alphaSum / float64(heads)
		f.MassCovered = massSum / float64(heads)
		f.TopKRecall = recallSum / float64(heads)
	}
	return f
}

// exactProbs computes softmax(q·Kᵀ/√D) in float64.
func exactProbs(q, k []float32, d int, probs []float64) {
	s := len(probs)
	scale := 1 / math.Sqrt(float64(d))
	m := math.Inf(-1)
	for i := range s {
		var acc float64
		row := k[i*d : (i+1)*d]
		for j, x := range q {
			acc += float64(x) * float64(row[j])
		}
		probs[i] = acc * scale
		m = math.Max(m, probs[i])
	}
	var sum float64
	for i := range probs {
		probs[i] = math.Exp(probs[i] - m)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
}

// meanFidelity averages per-step fidelity field by field.
func meanFidelity(fs []*Fidelity) Fidelity {
	var m Fidelity
	for _, f := range fs {
		m.RelL2Error += f.RelL2Error
		m.AlphaMean += f.AlphaMean
		m.MassCovered += f.MassCovered
		m.TopKRecall += f.TopKRecall
		m.Heads = f.Heads
	}
	n := float64(len(fs))
	m.RelL2Error /= n
	m.AlphaMean /= n
	m.MassCovered /= n
	m.TopKRecall /= n
	return m
}
