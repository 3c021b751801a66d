package kernels

import "github.com/bwsim/bwsim/traces"

// H2OPrefillQueries bounds the prompt queries whose attention H2O's prefill
// scores sum: above it a uniform stride sample of the prompt's queries
// (always including the last) stands in, each weighted by the stride, so that
// preparing a long sequence costs O(H2OPrefillQueries·S·D), not O(S²·D).
const H2OPrefillQueries = 512

// h2oMethod is the Heavy-Hitter Oracle (Zhang et al., "H2O: Heavy-Hitter
// Oracle for Efficient Generative Inference of Large Language Models",
// NeurIPS 2023), SparQ's eviction baseline, with a fixed-size cache as a
// server keeps it: k slots of K and V, each with the position it holds and
// the attention it has accumulated (summed over the group's heads, so one
// eviction per KV head). As in the SparQ authors' evaluation code, the
// scores start from the column sums of the prompt's dense causal attention
// (the prefill; see H2OPrefillQueries), the prefill keeps the k best prompt
// positions with the l = k/4 most recent forced in, and every decode step
// adds its own attention; eviction is permanent and never touches the l most
// recent positions.
//
// Stages: append (reads the victim slot once the cache is full, writes k, v,
// the slot's position and a zero score into it), exact-scores (q and every
// slot of K: one contiguous run), weighted-sum (every slot of V), h2o-update
// (reads the logits again for their softmax, reads and writes the slot
// scores; once the cache is full it reads the slot positions and writes the
// next victim). Fused: append plus one stage.
//
// Closed form per KV head in the steady state (S > k), elements: 2·k·D read
// and 2·D written, plus 2·k fp32 scores, k + 1 slot positions and 2 victim
// indices (4-byte), plus q, out and the logits. The paper's
// M_H2O = 2·k·D + 2·D + 2·S counts a score for every position as its
// evaluation code's mask does; a fixed-size cache keeps one per slot (2·k).
// With k ≥ S nothing is evicted and the step is dense attention.
type h2oMethod struct {
	scores, slotPos, victim traces.TensorID
	sUpdate                 int
	tail                    tail
}

// h2oState is one pair's cache bookkeeping.
type h2oState struct {
	slots  []int32   // position held by each slot
	scores []float32 // accumulated attention per slot (fp32, as stored)
	victim int32     // slot the next token replaces; -1 while there is room
}

func (s h2oState) clone() h2oState {
	return h2oState{slots: append([]int32(nil), s.slots...), scores: append([]float32(nil), s.scores...), victim: s.victim}
}

func (*h2oMethod) cacheRows(s Spec, S int) int64 { return int64(min(s.K, S)) }

func (m *h2oMethod) declare(p *plan) {
	B, Hkv := int64(p.shape.Batch), int64(p.shape.KVHeads)
	m.scores = p.tensor(TensorH2OScore, traces.RoleKVCache, 4, "B,Hkv,S", B, Hkv, p.rows)
	m.slotPos = p.tensor(TensorSlotPos, traces.RoleKVCache, IndexBytes, "B,Hkv,S", B, Hkv, p.rows)
	m.victim = p.tensor(TensorVictim, traces.RoleKVCache, IndexBytes, "B,Hkv", B, Hkv)
	m.tail.declareLogits(p, TensorLogits, p.rows)
	m.tail.idx, m.tail.alpha = -1, -1
	p.fusedStage(MethodH2O+"-fused", p.pairs())
	m.tail.declareStages(p, true)
	m.sUpdate = p.stage(StageH2OUpdate, p.pairs())
}

// full reports whether a step over S positions ends with every slot taken
// (and so picks a victim for the next token).
func (m *h2oMethod) full(p *plan) bool { return p.shape.Seq >= p.spec.K }

func (m *h2oMethod) appendToken(x *stepCtx, bf *traces.Buf) {
	p := x.p
	st := &x.st.h2o
	slot := int32(len(st.slots))
	if st.victim >= 0 {
		bf.Read(m.victim, x.ref.pair*IndexBytes, IndexBytes)
		slot = st.victim
	}
	x.appendKV(bf, int64(slot))
	off := x.ref.pair*p.rows*4 + int64(slot)*4
	bf.Write(m.slotPos, off, IndexBytes)
	bf.Write(m.scores, off, 4)
	h2oInsert(st, slot, int32(x.S-1))
}

// h2oInsert puts position pos into slot (a new one when slot is the slot
// count) with a zero score.
func h2oInsert(st *h2oState, slot, pos int32) {
	if int(slot) == len(st.slots) {
		st.slots = append(st.slots, pos)
		st.scores = append(st.scores, 0)
	} else {
		st.slots[slot] = pos
		st.scores[slot] = 0
	}
	st.victim = -1
}

// h2oVictim returns the slot to evict after a step over S positions: the
// lowest score among positions older than the l most recent (ties to the
// older position).
func h2oVictim(st *h2oState, S, l int) int32 {
	best := int32(-1)
	for c, pos := range st.slots {
		if int(pos) >= S-l {
			continue
		}
		if best < 0 || st.scores[c] < st.scores[best] || (st.scores[c] == st.scores[best] && pos < st.slots[best]) {
			best = int32(c)
		}
	}
	if best < 0 { // everything is recent (k < 4): evict the oldest
		for c, pos := range st.slots {
			if best < 0 || pos < st.slots[best] {
				best = int32(c)
			}
		}
	}
	return best
}

func (m *h2oMethod) step(x *stepCtx) {
	p := x.p
	st := &x.st.h2o
	g := p.shape.Group()
	n := len(st.slots)
	G, N, e := int64(g), int64(n), p.e
	slots := make([]int32, n)
	for i := range slots {
		slots[i] = int32(i)
	}
	sel := rowSel{pos: st.slots, slot: slots}
	logit := m.tail.exact(x, sel, x.q, p.q, x.keys())
	m.tail.weightedSum(x, sel, logit, nil) // leaves the probabilities in logit

	bf := x.buf(m.sUpdate)
	p.rd(bf, m.tail.logits, x.ref.head0*N*e, G*N*e)
	off := x.ref.pair * p.rows * 4
	bf.Read(m.scores, off, N*4)
	for c := range n {
		var add float64
		for h := range g {
			add += float64(logit[h*n+c])
		}
		st.scores[c] = float32(float64(st.scores[c]) + add)
	}
	bf.Write(m.scores, off, N*4)
	ar := traces.Arith{Elementwise: G*N + N}
	if !p.fused() {
		ar.Exps = G * N // the probabilities again, from the stored logits
	}
	if m.full(p) {
		bf.Read(m.slotPos, off, N*IndexBytes)
		st.victim = h2oVictim(st, x.S, p.spec.LocalWindow())
		bf.Write(m.victim, x.ref.pair*IndexBytes, IndexBytes)
		ar.Compares = N
	}
	bf.Arith(ar)
}

func (m *h2oMethod) closedForm(p *plan, add adder) {
	G, N, e := int64(p.shape.Group()), p.rows, p.e
	if p.spec.AppendKV {
		if p.shape.Seq-1 >= p.spec.K {
			add(p.sAppend, m.victim, IndexBytes)
		}
		add(p.sAppend, m.slotPos, IndexBytes)
		add(p.sAppend, m.scores, 4)
	}
	m.tail.closedForm(p, add, p.q, false)
	add(m.sUpdate, m.tail.logits, G*N*e)
	add(m.sUpdate, m.scores, 2*N*4)
	if m.full(p) {
		add(m.sUpdate, m.slotPos, N*IndexBytes)
		add(m.sUpdate, m.victim, IndexBytes)
	}
}

// prepare runs the prefill: the prompt's dense causal attention summed per
// position, the k best kept, the first victim chosen; then inserts the
// positions up to n0 that the cache already holds (the current token when
// the step does not append it).
func (m *h2oMethod) prepare(c Config, pp *preparedPair, n0 int) {
	d := pp.data
	g, D := c.Shape.Group(), c.Shape.HeadDim
	nPre := c.Shape.Seq - 1 // prompt positions before the first step's token
	k := c.Spec.K
	l := c.Spec.LocalWindow()
	col := make([]float64, nPre)
	logits := make([]float32, nPre)
	scale := invSqrt(int64(D))
	w := float64(d.HistWeight)
	for t, pos := range d.HistPos {
		n := int(pos) + 1
		for h := range g {
			q := d.QHist[(t*g+h)*D : (t*g+h+1)*D]
			for i := range n {
				logits[i] = dot(q, d.K[i*D:(i+1)*D]) * scale
			}
			softmax(logits[:n])
			for i := range n {
				col[i] += w * float64(logits[i])
			}
		}
	}
	st := &pp.init.h2o
	st.victim = -1
	if nPre <= k {
		st.slots = iota32(0, nPre)
	} else {
		// Keep the l most recent and the k − l best of the rest.
		cand := nPre - min(l, k)
		score := make([]float32, cand)
		for i := range score {
			score[i] = float32(col[i])
		}
		idx := make([]int32, cand)
		perm := make([]int32, cand)
		st.slots = append(append([]int32(nil), topK(score, k-(nPre-cand), idx, perm)...), iota32(cand, nPre)...)
	}
	st.scores = make([]float32, len(st.slots))
	for c, pos := range st.slots {
		st.scores[c] = float32(col[pos])
	}
	if len(st.slots) == k {
		st.victim = h2oVictim(st, nPre, l)
	}
	for pos := nPre; pos < n0; pos++ {
		slot := int32(len(st.slots))
		if st.victim >= 0 {
			slot = st.victim
		}
		h2oInsert(st, slot, int32(pos))
		if len(st.slots) == k && pos+1 < n0 {
			st.victim = h2oVictim(st, pos+1, l)
		}
	}
}

// h2oHistory returns the prompt positions whose queries H2O's prefill sums,
// ascending, and the weight each stands for.
func h2oHistory(nPre int) ([]int32, float32) {
	if nPre <= 0 {
		return nil, 1
	}
	if nPre <= H2OPrefillQueries {
		return iota32(0, nPre), 1
	}
	stride := (nPre + H2OPrefillQueries - 1) / H2OPrefillQueries
	var pos []int32
	for p := nPre - 1; p >= 0; p -= stride {
		pos = append(pos, int32(p))
	}
	for i, j := 0, len(pos)-1; i < j; i, j = i+1, j-1 {
		pos[i], pos[j] = pos[j], pos[i]
	}
	return pos, float32(stride)
}
