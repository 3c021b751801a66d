package kernels

import "github.com/bwsim/bwsim/traces"

// denseMethod is the baseline: read all of K and V.
//
// Unfused (eager, multi-kernel): stage scores writes q·Kᵀ/√D, stage softmax
// writes the probabilities, stage weighted-sum reads them with V. Fused
// (flash-decoding): one stage attention reads q, K and V once and keeps the
// scores on chip in fp32. The g query heads of a group read the shared K and
// V once (q viewed as a [g, D] matrix), as a GQA-aware implementation does.
//
// Closed form per pair (elements): K and V S·D each, plus q and out g·D;
// unfused also scores and probs g·S written and read once each. Per KV head
// with the append stage: 2·S·D + 2·D, the paper's M_dense.
type denseMethod struct {
	base
	scores, probs            traces.TensorID
	sScores, sSoftmax, sWSum int
	sAttn                    int
}

func (m *denseMethod) declare(p *plan) {
	B, H, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.Seq)
	m.sScores, m.sSoftmax, m.sWSum, m.sAttn, m.probs = -1, -1, -1, -1, -1
	if p.fused() {
		m.scores = p.tr.AddTensor(traces.Tensor{Name: TensorScores, Role: traces.RoleIntermediate, ElemBytes: 4, Shape: []int64{B, H, S}, Layout: "B,H,S", OnChip: true})
		m.sAttn = p.tr.AddStage(StageAttention, p.scanUnits(ScanChunk))
		return
	}
	m.scores = p.inter(TensorScores, p.e, "B,H,S", B, H, S)
	m.probs = p.inter(TensorProbs, p.e, "B,H,S", B, H, S)
	m.sScores = p.tr.AddStage(StageScores, p.scanUnits(ScanChunk))
	m.sSoftmax = p.tr.AddStage(StageSoftmax, B*H)
	m.sWSum = p.tr.AddStage(StageWeightedSum, p.scanUnits(ScanChunk))
}

func (m *denseMethod) step(x *stepCtx) {
	if x.p.fused() {
		m.fused(x)
	} else {
		m.unfused(x)
	}
}

func (m *denseMethod) unfused(x *stepCtx) {
	p := x.p
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	e := p.e
	G, D64, S64 := int64(g), int64(D), int64(S)
	off := x.ref.head0 * S64 * e

	// Stage 1: scores.
	rows := x.scoresAll(x.buf(m.sScores), m.scores)

	// Stage 2: softmax, row by row.
	bf := x.buf(m.sSoftmax)
	bf.Read(m.scores, off, G*S64*e)
	for h := range g {
		row := rows[h*S : (h+1)*S]
		softmaxSplit(p.inner, row)
		p.dt.RoundSlice(row)
	}
	bf.Write(m.probs, off, G*S64*e)
	bf.Arith(traces.Arith{Exps: G * S64, Compares: G * S64, Elementwise: 3 * G * S64, SoftmaxRows: G})

	// Stage 3: probability-weighted sum of V.
	bf = x.buf(m.sWSum)
	bf.Read(m.probs, off, G*S64*e)
	bf.Read(p.v, x.ref.kv, S64*D64*e)
	weightedSumAll(p, x.pp.data.V, rows, S, x.out.Out)
	bf.Write(p.out, x.ref.out, G*D64*e)
	bf.Arith(traces.Arith{MACs: G * S64 * D64})
}

// fused is flash-decoding: one stage reads q, K and V once and keeps scores
// on chip (accumulated in fp32), writing only the output.
func (m *denseMethod) fused(x *stepCtx) {
	p := x.p
	bf := x.buf(m.sAttn)
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	e := p.e
	G, D64, S64 := int64(g), int64(D), int64(S)
	scale := invSqrt(D64)
	bf.Read(p.q, x.ref.q, G*D64*e)
	bf.Read(p.k, x.ref.kv, S64*D64*e)
	bf.Read(p.v, x.ref.kv, S64*D64*e)
	rows := x.sc.rows[:g*S]
	groupScores(p.inner, x.q[:g*D], x.pp.data.K, D, S, rows, S, scale)
	for h := range g {
		softmaxSplit(p.inner, rows[h*S:(h+1)*S])
	}
	weightedSumAll(p, x.pp.data.V, rows, S, x.out.Out)
	bf.Write(p.out, x.ref.out, G*D64*e)
	bf.Arith(traces.Arith{MACs: 2 * G * S64 * D64, Exps: G * S64, Compares: G * S64, Elementwise: 4 * G * S64})
}

func (m *denseMethod) closedForm(p *plan, add adder) {
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), p.e
	if p.fused() {
		add(m.sAttn, p.q, G*D*e)
		add(m.sAttn, p.k, S*D*e)
		add(m.sAttn, p.v, S*D*e)
		add(m.sAttn, p.out, G*D*e)
		return
	}
	add(m.sScores, p.q, G*D*e)
	add(m.sScores, p.k, S*D*e)
	add(m.sScores, m.scores, G*S*e)
	add(m.sSoftmax, m.scores, G*S*e)
	add(m.sSoftmax, m.probs, G*S*e)
	add(m.sWSum, m.probs, G*S*e)
	add(m.sWSum, p.v, S*D*e)
	add(m.sWSum, p.out, G*D*e)
}

// weightedSumAll sets out[h] = Σ_i w[h, i]·V[i] for the g heads, rounded to
// the dtype; w is [g, n] over the first n rows of v.
func weightedSumAll(p *plan, v []float32, w []float32, n int, out []float32) {
	clear(out)
	groupWeightedSum(p.inner, w, n, v, p.shape.HeadDim, n, out)
	p.dt.RoundSlice(out)
}
