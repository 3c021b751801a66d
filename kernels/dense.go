package kernels

import "github.com/bwsim/bwsim/traces"

// denseUnfused is the eager multi-kernel baseline: scores = q·Kᵀ/√D written
// to memory, softmax written to memory, then the probability-weighted sum of
// V. The g query heads of a group read the shared K and V once (q is viewed
// as a [g, D] matrix), as a GQA-aware implementation does.
func (p *plan) denseUnfused(d *PairData, ref pairRefs, buf func(int) *traces.Buf, sc *scratch, out []float32) {
	g, D, S := p.shape.Group(), p.shape.HeadDim, p.shape.Seq
	e := p.e
	G, D64, S64 := int64(g), int64(D), int64(S)
	scale := invSqrt(D64)

	// Stage 1: scores.
	bf := buf(p.sScores)
	bf.Read(p.q, ref.q, G*D64*e)
	bf.Read(p.k, ref.kv, S64*D64*e)
	rows := sc.rows[:g*S]
	for i := range S {
		krow := d.K[i*D : (i+1)*D]
		for h := range g {
			rows[h*S+i] = p.dt.Round(dot(d.Q[h*D:(h+1)*D], krow) * scale)
		}
	}
	bf.Write(p.scores, ref.rows, G*S64*e)
	bf.Arith(traces.Arith{MACs: G * S64 * D64, Elementwise: G * S64})

	// Stage 2: softmax, row by row.
	bf = buf(p.sSoftmax)
	bf.Read(p.scores, ref.rows, G*S64*e)
	for h := range g {
		row := rows[h*S : (h+1)*S]
		softmax(row)
		p.dt.RoundSlice(row)
	}
	bf.Write(p.probs, ref.rows, G*S64*e)
	bf.Arith(traces.Arith{Exps: G * S64, Compares: G * S64, Elementwise: 3 * G * S64})

	// Stage 3: probability-weighted sum of V.
	bf = buf(p.sWSum)
	bf.Read(p.probs, ref.rows, G*S64*e)
	bf.Read(p.v, ref.kv, S64*D64*e)
	p.weightedSum(d.V, rows, S, out)
	bf.Write(p.out, ref.out, G*D64*e)
	bf.Arith(traces.Arith{MACs: G * S64 * D64})
}

// denseFused is flash-decoding: one stage reads q, K and V once and keeps
// scores on chip (accumulated in fp32), writing only the output.
func (p *plan) denseFused(d *PairData, ref pairRefs, bf *traces.Buf, sc *scratch, out []float32) {
	g, D, S := p.shape.Group(), p.shape.HeadDim, p.shape.Seq
	e := p.e
	G, D64, S64 := int64(g), int64(D), int64(S)
	scale := invSqrt(D64)
	bf.Read(p.q, ref.q, G*D64*e)
	bf.Read(p.k, ref.kv, S64*D64*e)
	bf.Read(p.v, ref.kv, S64*D64*e)
	rows := sc.rows[:g*S]
	for i := range S {
		krow := d.K[i*D : (i+1)*D]
		for h := range g {
			rows[h*S+i] = dot(d.Q[h*D:(h+1)*D], krow) * scale
		}
	}
	for h := range g {
		softmax(rows[h*S : (h+1)*S])
	}
	p.weightedSum(d.V, rows, S, out)
	bf.Write(p.out, ref.out, G*D64*e)
	bf.Arith(traces.Arith{MACs: 2 * G * S64 * D64, Exps: G * S64, Compares: G * S64, Elementwise: 4 * G * S64})
}

// weightedSum sets out[h] = Σ_i w[h, i]·V[i] for the g heads, rounded to the
// dtype; w is [g, n] over the first n rows of v.
func (p *plan) weightedSum(v []float32, w []float32, n int, out []float32) {
	D := p.shape.HeadDim
	g := len(out) / D
	clear(out)
	for i := range n {
		vrow := v[i*D : (i+1)*D]
		for h := range g {
			if c := w[h*n+i]; c != 0 {
				axpy(c, vrow, out[h*D:(h+1)*D])
			}
		}
	}
	p.dt.RoundSlice(out)
}
