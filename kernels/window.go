package kernels

// windowMethod is the fixed attention pattern of StreamingLLM (Xiao et al.,
// "Efficient Streaming Language Models with Attention Sinks", ICLR 2024) and
// LM-Infinite (Han et al., "LM-Infinite: Zero-Shot Extreme Length
// Generalization for Large Language Models", NAACL 2024): the first `sinks`
// positions (attention sinks) and the k − sinks most recent positions, k in
// all, attended exactly. The selection depends on the position only, never on
// q, so no index is stored or read.
//
// Stages unfused: exact-scores (q and k rows of K: two contiguous runs),
// weighted-sum (k rows of V). Fused: one stage.
//
// Closed form per KV head (elements): 2·k·D read, plus q, out and the k
// logits; with the append stage + 2·D written — the paper's
// M_LM∞ = 2·k·D + 2·D.
type windowMethod struct {
	base
	tail tail
}

func (m *windowMethod) declare(p *plan) {
	m.tail.declareLogits(p, TensorLogits, int64(p.spec.K))
	m.tail.idx, m.tail.alpha = -1, -1
	p.fusedStage(MethodWindow+"-fused", p.pairs())
	m.tail.declareStages(p, true)
}

// windowRows returns the sink positions [0, sinks) and the k − sinks most
// recent positions of S, ascending; every position when k ≥ S.
func windowRows(S, k, sinks int) []int32 {
	if k >= S {
		return iota32(0, S)
	}
	sinks = min(sinks, k)
	return append(iota32(0, sinks), iota32(S-(k-sinks), S)...)
}

func (m *windowMethod) step(x *stepCtx) {
	sel := rowSel{pos: windowRows(x.S, x.p.spec.K, x.p.spec.Sinks)}
	logit := m.tail.exact(x, sel, x.q, x.p.q, x.keys())
	m.tail.weightedSum(x, sel, logit, nil)
}

func (m *windowMethod) closedForm(p *plan, add adder) {
	m.tail.closedForm(p, add, p.q, false)
}
