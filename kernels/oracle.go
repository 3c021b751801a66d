package kernels

import "github.com/bwsim/bwsim/traces"

// oracleMethod is one of the two methods that score every position exactly
// with all of K and then read only k rows of V. Both rank positions by the
// exact attention probabilities summed over the group's heads (one i2 per KV
// head), as the SparQ authors' evaluation code does for both.
//
// topk (renorm) is the oracle top-k, the quality ceiling of every selecting
// method at budget k: y = softmax(q·K[i2]ᵀ/√D)·V[i2], renormalised over the
// k positions, and — with reallocation, on by default as for SparQ — blended
// with the running mean v̄ by the exact mass α = Σ_{i∈i2} p_i, so that it
// bounds SparQ's error with or without reallocation.
//
// flexgen (not renorm) is FlexGen's sparse-V attention (Sheng et al.,
// "FlexGen: High-Throughput Generative Inference of Large Language Models
// with a Single GPU", ICML 2023): y = Σ_{i∈i2} p_i·V[i] with p the exact
// probabilities over all S — the mass outside i2 is dropped, not
// renormalised.
//
// Stages unfused: scores (q and all of K, writes q·Kᵀ/√D), softmax-topk
// (writes i2, α for topk, and the k selected logits — probabilities for
// flexgen), weighted-sum (reads them and k rows of V). Fused: one stage.
//
// Closed form per KV head (elements): S·D + k·D read, plus q, out and the
// intermediates; with the append stage + 2·D written (the paper's
// M_FlexGen = S·D + k·D + 2·D, at least half of dense), and for topk with
// reallocation v̄ read, updated and read again (+3·D in fp32).
type oracleMethod struct {
	base
	renorm             bool
	scores, i2, alpha  traces.TensorID
	sScores, sSoftTopK int
	tail               tail
}

func (m *oracleMethod) declare(p *plan) {
	B, H, Hkv, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.Seq)
	kk := int64(p.spec.K)
	m.scores = p.inter(TensorScores, p.e, "B,H,S", B, H, S)
	m.i2 = p.inter(TensorI2, IndexBytes, "B,Hkv,K", B, Hkv, kk)
	m.alpha = -1
	if p.spec.realloc() {
		m.alpha = p.inter(TensorAlpha, 4, "B,H", B, H)
	}
	name := TensorLogits
	if !m.renorm {
		name = TensorWeights
	}
	m.tail.declareLogits(p, name, kk)
	m.tail.idx, m.tail.idxLen, m.tail.alpha, m.tail.probs = m.i2, kk*IndexBytes, m.alpha, !m.renorm
	p.fusedStage(p.spec.Method+"-fused", p.pairs())
	m.sScores = p.stage(StageScores, p.scanUnits(ScanChunk))
	m.sSoftTopK = p.stage(StageSoftmaxTopK, p.pairs())
	m.tail.declareStages(p, false)
}

func (m *oracleMethod) step(x *stepCtx) {
	p := x.p
	g, S, k := p.shape.Group(), x.S, p.spec.K
	G, S64, K64, e := int64(g), int64(S), int64(k), p.e

	logits := x.scoresAll(x.buf(m.sScores), m.scores)

	bf := x.buf(m.sSoftTopK)
	p.rd(bf, m.scores, x.ref.head0*S64*e, G*S64*e)
	probs := x.sc.aux(g * S)
	copy(probs, logits)
	for h := range g {
		softmax(probs[h*S : (h+1)*S])
	}
	i2 := x.selectTop(probs, S, S, k, 0)
	n := len(i2)
	sel := x.sc.logitK[:g*n]
	src := logits
	if !m.renorm {
		src = probs
	}
	for h := range g {
		for c, i := range i2 {
			sel[h*n+c] = x.store(src[h*S+int(i)])
		}
	}
	var alpha []float32
	if m.alpha >= 0 {
		alpha = make([]float32, g)
		for h := range g {
			if k >= S {
				alpha[h] = 1
				continue
			}
			var a float64
			for _, i := range i2 {
				a += float64(probs[h*S+int(i)])
			}
			alpha[h] = float32(a)
		}
	}
	p.wr(bf, m.i2, x.ref.pair*K64*IndexBytes, K64*IndexBytes)
	p.wr(bf, m.alpha, x.ref.head0*4, G*4)
	p.wr(bf, m.tail.logits, x.ref.head0*K64*e, G*K64*e)
	bf.Arith(traces.Arith{Exps: G * S64, Compares: S64*log2Ceil(k) + G*S64, Elementwise: 3*G*S64 + (G-1)*S64 + G*K64,
		SelectElems: S64, SelectRows: 1, SoftmaxRows: p.librarySoftmaxRows(G)})

	m.tail.weightedSum(x, rowSel{pos: i2}, sel, alpha)
	x.out.Alpha = alpha
}

func (m *oracleMethod) closedForm(p *plan, add adder) {
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), p.e
	K := int64(p.spec.K)
	add(m.sScores, p.q, G*D*e)
	add(m.sScores, p.k, S*D*e)
	add(m.sScores, m.scores, G*S*e)
	add(m.sSoftTopK, m.scores, G*S*e)
	add(m.sSoftTopK, m.i2, K*IndexBytes)
	add(m.sSoftTopK, m.alpha, G*4)
	add(m.sSoftTopK, m.tail.logits, G*K*e)
	m.tail.closedForm(p, add, p.q, true)
}
