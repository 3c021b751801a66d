package kernels

import (
	"math"

	"github.com/bwsim/bwsim/traces"
)

// questMethod is Quest (Tang et al., "Quest: Query-Aware Sparsity for
// Efficient Long-Context LLM Inference", ICML 2024). The cache is paged, P
// tokens per page, and keeps per page and channel the min and max of its keys
// (2·D elements of metadata). A page's criticality is the upper bound
// Σ_j max(q_j·max_j, q_j·min_j) of q·k over its keys (summed over the group's
// heads: one selection per KV head); the best pages are loaded whole and
// attended exactly. Like the other methods' local window, the page holding
// the current token is always loaded.
//
// The token budget k buys whole pages: with ℓ tokens in the last page
// (1 ≤ ℓ ≤ P), 1 + ⌊(k − ℓ)/P⌋ pages and ℓ + P·⌊(k − ℓ)/P⌋ ≤ k tokens; every
// page when k ≥ S (then the step is dense attention).
//
// Stages unfused: page-scores (q and the metadata of all ⌈S/P⌉ pages, one
// contiguous run; writes the bounds), topk (writes the selected pages),
// exact-scores and weighted-sum over the selected pages' rows (one run per
// page). Fused: one stage. The append stage updates the last page's min and
// max (a read as well unless the token opens a new page).
//
// Closed form per KV head (elements): 2·D·⌈S/P⌉ + 2·n·D read with n the
// tokens above (≈ the paper's 2·D·S/P + 2·k·D), plus q, out and the
// intermediates; with the append stage 2·D written for k and v and 2·D (+2·D
// read) for the metadata.
type questMethod struct {
	base
	meta, scores, pages traces.TensorID
	sPage, sTop         int
	nPages, kPages      int64
	tail                tail
}

// questBudget returns the pages and tokens Quest reads at a step over S
// positions with page size P and budget k.
func questBudget(S, P, k int) (pages, tokens int) {
	n := (S + P - 1) / P
	if k >= S {
		return n, S
	}
	last := S - (n-1)*P
	extra := (k - last) / P
	return 1 + extra, last + extra*P
}

func (m *questMethod) declare(p *plan) {
	B, H, Hkv, D, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.HeadDim), p.shape.Seq
	pages, tokens := questBudget(S, p.spec.Page, p.spec.K)
	m.nPages, m.kPages = int64((S+p.spec.Page-1)/p.spec.Page), int64(pages)
	m.meta = p.tensor(TensorPageMM, traces.RoleKVCache, p.e, "B,Hkv,P,2,D", B, Hkv, m.nPages, 2, D)
	m.scores = p.inter(TensorPageScore, p.e, "B,H,P", B, H, m.nPages)
	m.pages = p.inter(TensorPages, IndexBytes, "B,Hkv,K", B, Hkv, m.kPages)
	m.tail.declareLogits(p, TensorLogits, int64(tokens))
	m.tail.idx, m.tail.idxLen, m.tail.alpha = m.pages, m.kPages*IndexBytes, -1
	p.fusedStage(MethodQuest+"-fused", p.pairs())
	m.sPage = p.stage(StagePageScores, p.scanUnits(0))
	m.sTop = p.stage(StageTopK, p.pairs())
	m.tail.declareStages(p, true)
}

// questState is a pair's page metadata, [pages, D] each, for every page the
// run will use.
type questState struct {
	min, max []float32
}

func (s questState) clone() questState {
	return questState{min: append([]float32(nil), s.min...), max: append([]float32(nil), s.max...)}
}

// questAdd folds position i's key into its page's min and max.
func questAdd(st *questState, K []float32, D, P, i int) {
	pg := i / P
	mn, mx := st.min[pg*D:(pg+1)*D], st.max[pg*D:(pg+1)*D]
	k := K[i*D : (i+1)*D]
	if i%P == 0 {
		copy(mn, k)
		copy(mx, k)
		return
	}
	for j, v := range k {
		mn[j] = min(mn[j], v)
		mx[j] = max(mx[j], v)
	}
}

func (m *questMethod) prepare(c Config, pp *preparedPair, n0 int) {
	D, P := c.Shape.HeadDim, c.Spec.Page
	n := (c.Shape.Seq + c.steps() - 1 + P - 1) / P
	st := &pp.init.quest
	st.min, st.max = make([]float32, n*D), make([]float32, n*D)
	for i := range n0 {
		questAdd(st, pp.data.K, D, P, i)
	}
}

func (m *questMethod) appendToken(x *stepCtx, bf *traces.Buf) {
	p := x.p
	x.appendKV(bf, int64(x.S-1))
	D, P := p.shape.HeadDim, p.spec.Page
	i := x.S - 1
	n := 2 * int64(D) * p.e
	off := (x.ref.pair*m.nPages + int64(i/P)) * n
	if i%P != 0 {
		bf.Read(m.meta, off, n)
	}
	questAdd(&x.st.quest, x.pp.data.K, D, P, i)
	bf.Write(m.meta, off, n)
	bf.Arith(traces.Arith{Compares: 2 * int64(D)})
}

func (m *questMethod) step(x *stepCtx) {
	p := x.p
	g, D, P := p.shape.Group(), p.shape.HeadDim, p.spec.Page
	G, D64, NP, e := int64(g), int64(D), m.nPages, p.e
	np := int(NP)
	st := &x.st.quest

	// Page bounds.
	bf := x.buf(m.sPage)
	x.readQ(bf)
	bf.Read(m.meta, x.ref.pair*NP*2*D64*e, NP*2*D64*e)
	scale := float64(invSqrt(D64))
	bounds := x.sc.rows[:g*np]
	for h := range g {
		q := x.q[h*D : (h+1)*D]
		for pg := range np {
			mn, mx := st.min[pg*D:(pg+1)*D], st.max[pg*D:(pg+1)*D]
			var b float64
			for j, qj := range q {
				b += math.Max(float64(qj*mn[j]), float64(qj*mx[j]))
			}
			bounds[h*np+pg] = x.store(float32(b * scale))
		}
	}
	p.wr(bf, m.scores, x.ref.head0*NP*e, G*NP*e)
	bf.Arith(traces.Arith{MACs: 2 * G * NP * D64, Compares: G * NP * D64, Elementwise: G * NP})

	// Page selection, the current token's page forced.
	bf = x.buf(m.sTop)
	p.rd(bf, m.scores, x.ref.head0*NP*e, G*NP*e)
	pages := x.selectTop(bounds, np, np, int(m.kPages), 1)
	p.wr(bf, m.pages, x.ref.pair*m.kPages*IndexBytes, m.kPages*IndexBytes)
	bf.Arith(selectArith(G, NP, m.kPages))

	pos := make([]int32, 0, m.tail.n)
	for _, pg := range pages {
		pos = append(pos, iota32(int(pg)*P, min((int(pg)+1)*P, x.S))...)
	}
	sel := rowSel{pos: pos}
	logit := m.tail.exact(x, sel, x.q, p.q, x.keys())
	m.tail.weightedSum(x, sel, logit, nil)
}

func (m *questMethod) closedForm(p *plan, add adder) {
	G, D, e := int64(p.shape.Group()), int64(p.shape.HeadDim), p.e
	if p.spec.AppendKV {
		n := 2 * D * e
		if (p.shape.Seq-1)%p.spec.Page != 0 {
			add(p.sAppend, m.meta, n)
		}
		add(p.sAppend, m.meta, n)
	}
	add(m.sPage, p.q, G*D*e)
	add(m.sPage, m.meta, m.nPages*2*D*e)
	add(m.sPage, m.scores, G*m.nPages*e)
	add(m.sTop, m.scores, G*m.nPages*e)
	add(m.sTop, m.pages, m.kPages*IndexBytes)
	m.tail.closedForm(p, add, p.q, true)
}
