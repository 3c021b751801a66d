package kernels

import (
	"slices"

	"github.com/bwsim/bwsim/traces"
)

// method is one attention algorithm for one decode step. A method is a small
// value built from its Spec: it declares its tensors and stages on a plan
// (after the tensors and the append stage every method shares), runs one
// (sequence, KV head) pair, and states the bytes that pair requests in closed
// form. Per-pair data and state (derived caches, calibration, running
// statistics) live in preparedPair and pairState, not in the method.
//
// The query-aware methods share one shape, built from the helpers below: a
// proxy scan over all S positions (scanColumns, scoresAll, or a method's own
// proxy) → a selection (selectTop, with a forced local window) → an exact
// gather (tail: exact logits of the selected rows of K, then their softmax and
// weighted sum of V rows).
type method interface {
	// cacheRows is the number of K and V rows a pair's cache holds at a step
	// over S positions.
	cacheRows(s Spec, S int) int64
	// declare adds the method's tensors and stages to p.
	declare(p *plan)
	// prepare derives, from a pair's data, what the method's cache holds
	// beyond K and V (rotated keys, labels, calibration) and its state over
	// the first n0 positions.
	prepare(c Config, pp *preparedPair, n0 int)
	// appendToken writes the current token (position S−1) into the pair's
	// cache and state, recording the append stage's traffic into bf (nil
	// records nothing).
	appendToken(x *stepCtx, bf *traces.Buf)
	// step runs the method for one pair.
	step(x *stepCtx)
	// closedForm adds, per stage and tensor, the bytes one pair's step
	// requests beyond the common part (the query-independent append of k, v,
	// Kt and v̄, which pairStageBytes adds).
	closedForm(p *plan, add adder)
}

// adder accumulates closed-form bytes of a stage and tensor; negative stages
// and tensors and on-chip tensors are ignored.
type adder func(stage int, t traces.TensorID, n int64)

// newMethod returns the method of a resolved spec.
func newMethod(s Spec) method {
	switch s.Method {
	case MethodSparQ:
		return &sparqMethod{}
	case MethodTopK:
		return &oracleMethod{renorm: true}
	case MethodFlexGen:
		return &oracleMethod{renorm: false}
	case MethodH2O:
		return &h2oMethod{}
	case MethodWindow:
		return &windowMethod{}
	case MethodQuest:
		return &questMethod{}
	case MethodLoki:
		return &lokiMethod{}
	case MethodDoubleSparse:
		return &dsMethod{}
	}
	return &denseMethod{}
}

// base gives a method the defaults: a cache of S rows, nothing derived, an
// append of k, v (and Kt, v̄) at position S−1.
type base struct{}

func (base) cacheRows(_ Spec, S int) int64          { return int64(S) }
func (base) prepare(Config, *preparedPair, int)     {}
func (base) appendToken(x *stepCtx, bf *traces.Buf) { x.appendKV(bf, int64(x.S-1)) }

// stepCtx is one pair's step: its data, state, scratch and recording.
type stepCtx struct {
	p   *plan
	pp  *preparedPair
	st  *pairState
	S   int       // positions this step (the current token is S−1)
	q   []float32 // [g, D]: this step's query
	ref pairRefs
	sc  *scratch
	out *PairOutput
	// bufs has one Buf per stage; nil records nothing.
	bufs []*traces.Buf
	// qRead is set once a fused kernel holds q on chip.
	qRead bool
}

// buf labels the goroutine with stage i and returns its Buf (nil when the
// stage is absent or the step untraced).
func (x *stepCtx) buf(i int) *traces.Buf {
	x.p.lab.enter(i)
	if i < 0 || x.bufs == nil {
		return nil
	}
	return x.bufs[i]
}

// keys is the key cache as the method stores it (Loki: rotated), [S_f, D].
func (x *stepCtx) keys() []float32 {
	if x.pp.kx != nil {
		return x.pp.kx
	}
	return x.pp.data.K
}

// store rounds a value handed to a later stage through memory (unfused) to
// the dtype; a fused kernel keeps it in fp32 on chip.
func (x *stepCtx) store(v float32) float32 {
	if x.p.fused() {
		return v
	}
	return x.p.dt.Round(v)
}

// readQ records the read of the group's queries, once per fused kernel.
func (x *stepCtx) readQ(bf *traces.Buf) {
	if x.p.fused() && x.qRead {
		return
	}
	x.qRead = true
	bf.Read(x.p.q, x.ref.q, int64(x.p.shape.Group())*int64(x.p.shape.HeadDim)*x.p.e)
}

// appendKV writes the current token's k and v into cache row `row` (both K
// copies when K is stored twice) and, with reallocation, updates the running
// mean v̄ over the S−1 positions before it.
func (x *stepCtx) appendKV(bf *traces.Buf, row int64) {
	p := x.p
	D, e := int64(p.shape.HeadDim), p.e
	bf.Write(p.k, x.ref.kv+row*D*e, D*e)
	bf.Write(p.v, x.ref.kv+row*D*e, D*e)
	if p.kt >= 0 {
		// The transposed copy takes one element per row: a strided write.
		bf.Strided(traces.Write, p.kt, x.ref.kv+row*e, e, p.rows*e, D)
	}
	if p.vmean >= 0 {
		bf.Read(p.vmean, x.ref.vmean, D*4)
		vmean := x.st.vmean
		n := float32(x.S - 1)
		last := x.S - 1
		vrow := x.pp.data.V[last*int(D) : (last+1)*int(D)]
		for j := range vmean {
			vmean[j] = (n*vmean[j] + vrow[j]) / (n + 1)
		}
		bf.Write(p.vmean, x.ref.vmean, D*4)
		bf.Arith(traces.Arith{Elementwise: 3 * D})
	}
}

// scoresAll is the exact scan every position-exact method starts with: it
// reads q and all of K and writes q·Kᵀ/√D for the group's heads ([g, S], in
// x.sc.rows) to tensor t, rounded to the dtype when handed through memory.
func (x *stepCtx) scoresAll(bf *traces.Buf, t traces.TensorID) []float32 {
	p := x.p
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	G, D64, S64, e := int64(g), int64(D), int64(S), p.e
	scale := invSqrt(D64)
	x.readQ(bf)
	bf.Read(p.k, x.ref.kv, S64*D64*e)
	rows := x.sc.rows[:g*S]
	groupScores(p.inner, x.q[:g*D], x.keys(), D, S, rows, S, scale)
	if !p.fused() {
		p.dt.RoundSlice(rows)
	}
	p.wr(bf, t, x.ref.head0*S64*e, G*S64*e)
	bf.Arith(traces.Arith{MACs: G * S64 * D64, Elementwise: G * S64})
	return rows
}

// scanColumns sets rows[h, i] = Σ_{j∈cols} q[h, j]·K[i, j] for the g heads
// and every position i < S: the proxy scan of SparQ (cols = i1) and Loki
// (cols = the first d′ components). With K stored twice each column is one
// contiguous row of Kt (recorded as one gather of rows); stored once, every
// row contributes its components: one strided series per column (one gather
// of series), or per run of consecutive columns when coalesce is set.
func (x *stepCtx) scanColumns(bf *traces.Buf, cols []int32, coalesce bool, q []float32, rows []float32) {
	p := x.p
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	D64, S64, e := int64(D), int64(S), p.e
	clear(rows[:g*S])
	coef := make([]float32, g*len(cols)) // q[h, cols]
	for h := range g {
		for c, j := range cols {
			coef[h*len(cols)+c] = q[h*D+int(j)]
		}
	}
	if p.kt >= 0 {
		bf.Rows(traces.Read, p.kt, x.ref.kv, S64*e, S64*e, cols)
		sumRows(p.inner, coef, x.pp.kt, x.pp.ktStride, cols, rows, S, S)
		return
	}
	if coalesce {
		for c := 0; c < len(cols); {
			n := 1
			for c+n < len(cols) && cols[c+n] == cols[c]+int32(n) {
				n++
			}
			bf.Strided(traces.Read, p.k, x.ref.kv+int64(cols[c])*e, int64(n)*e, D64*e, S64)
			c += n
		}
	} else {
		bf.StridedAt(traces.Read, p.k, x.ref.kv, e, D64*e, S64, e, cols)
	}
	gatherCols(p.inner, x.keys(), D, S, cols, coef, rows, S)
}

// selectTop picks k of n candidates: the last `forced` always (a local
// window), the other k−forced by the group sum of rows (g rows, `stride`
// apart, over the first n−forced entries), ties to the lower index. k ≥ n
// picks every candidate. The result is a new ascending slice.
func (x *stepCtx) selectTop(rows []float32, stride, n, k, forced int) []int32 {
	if k >= n {
		return iota32(0, n)
	}
	g := x.p.shape.Group()
	cand := n - forced // candidates [0, cand) compete; [cand, n) are forced
	sum := x.sc.sum[:cand]
	copy(sum, rows[:cand])
	for h := 1; h < g; h++ {
		for i, v := range rows[h*stride : h*stride+cand] {
			sum[i] += v
		}
	}
	sel := topK(sum, k-forced, x.sc.idx, x.sc.perm)
	out := make([]int32, 0, k)
	out = append(out, sel...)
	for i := cand; i < n; i++ {
		out = append(out, int32(i))
	}
	return out
}

// selectArith is the arithmetic of selectTop over n candidates.
func selectArith(g, n, k int64) traces.Arith {
	return traces.Arith{Compares: n * log2Ceil(int(k)), Elementwise: (g - 1) * n, SelectElems: n, SelectRows: 1}
}

// iota32 returns [from, to).
func iota32(from, to int) []int32 {
	out := make([]int32, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		out = append(out, int32(i))
	}
	return out
}

// rowSel is a selection of cache rows for the exact part of a step.
type rowSel struct {
	// pos are positions: rows of the host data, in the order of the logits.
	pos []int32
	// slot are the rows of the K and V tensors when they differ from the
	// positions (H2O's cache slots); nil otherwise.
	slot []int32
}

// rows are the rows of the K and V tensors the selection reads, in the
// order of the logits.
func (s rowSel) rows() []int32 {
	if s.slot != nil {
		return s.slot
	}
	return s.pos
}

// tail is the exact gather every selecting method ends with: the exact
// logits of the n selected rows of K (stage exact-scores), then their softmax
// and the weighted sum of the V rows (stage weighted-sum), optionally blended
// with v̄ by α: y = α·out + (1−α)·v̄.
type tail struct {
	n      int64           // rows selected per pair
	idx    traces.TensorID // the selection both stages read (i2, pages); -1: none
	idxLen int64           // bytes of idx per pair
	logits traces.TensorID // [B, H, n]: written by exact-scores (or an earlier stage), read by weighted-sum
	alpha  traces.TensorID // [B, H] fp32, -1 without reallocation
	// probs marks logits holding probabilities already (FlexGen): no
	// softmax, no renormalisation.
	probs         bool
	sExact, sWSum int
	// copyRows: the selected rows of K and V are gathered into rowsCopy
	// ([B, Hkv, 2, n, D]) by a copy kernel and read back by the matmul, as
	// a PyTorch implementation runs (Spec.Materialize).
	copyRows bool
	rowsCopy traces.TensorID
}

// declareRowsCopy routes the selected rows through memory (Spec.Materialize).
func (t *tail) declareRowsCopy(p *plan) {
	B, Hkv, D := int64(p.shape.Batch), int64(p.shape.KVHeads), int64(p.shape.HeadDim)
	t.copyRows = true
	t.rowsCopy = p.inter(TensorKVRows, p.e, "B,Hkv,2,K,D", B, Hkv, 2, t.n, D)
}

// copyRowsOf records the copy of n selected rows of K (which = 0) or V
// (which = 1): written by the gather, read back by the matmul.
func (t *tail) copyRowsOf(x *stepCtx, bf *traces.Buf, which int64) {
	if !t.copyRows {
		return
	}
	D, e := int64(x.p.shape.HeadDim), x.p.e
	off := (x.ref.pair*2 + which) * t.n * D * e
	x.p.wr(bf, t.rowsCopy, off, t.n*D*e)
	x.p.rd(bf, t.rowsCopy, off, t.n*D*e)
}

// declareLogits declares the tensor the two stages hand over.
func (t *tail) declareLogits(p *plan, name string, n int64) {
	t.n = n
	B, H := int64(p.shape.Batch), int64(p.shape.Heads)
	t.logits = p.inter(name, p.e, "B,H,K", B, H, n)
}

// declareStages declares exact-scores (when exact) and weighted-sum, one
// work unit per pair as the paper's gather kernels run; with
// Spec.FusedExact, one exact-attention stage does both and the logits stay
// on chip.
func (t *tail) declareStages(p *plan, exact bool) {
	t.sExact = -1
	if exact && p.spec.FusedExact && !p.fused() {
		t.sExact = p.stage(StageExactAttn, p.pairs())
		t.sWSum = t.sExact
		p.tr.Tensors[t.logits].OnChip = true
		return
	}
	if exact {
		t.sExact = p.stage(StageExact, p.pairs())
	}
	t.sWSum = p.stage(StageWeightedSum, p.pairs())
	// Softmax over the k logits and the gather-matvec are two kernels; the
	// blend with v̄ (torch.lerp) is a third.
	n := 2
	if t.alpha >= 0 {
		n = 3
	}
	p.launches(t.sWSum, n)
}

// exact computes the exact logits q·K[row]ᵀ/√D of the selected rows into
// x.sc.logitK ([g, n]) and returns them. q is the query to use ([g, D]), read
// from tensor qt (the input q, or an intermediate such as Loki's q_rot).
func (t *tail) exact(x *stepCtx, sel rowSel, q []float32, qt traces.TensorID, kd []float32) []float32 {
	p := x.p
	bf := x.buf(t.sExact)
	g, D := p.shape.Group(), p.shape.HeadDim
	G, D64, e := int64(g), int64(D), p.e
	n := len(sel.pos)
	p.rd(bf, t.idx, x.ref.pair*t.idxLen, t.idxLen)
	if qt == p.q {
		x.readQ(bf)
	} else {
		p.rd(bf, qt, x.ref.head0*D64*e, G*D64*e)
	}
	scale := invSqrt(D64)
	logit := x.sc.logitK[:g*n]
	bf.Rows(traces.Read, p.k, x.ref.kv, D64*e, D64*e, sel.rows())
	t.copyRowsOf(x, bf, 0)
	for h := range g {
		gatherScores(q[h*D:(h+1)*D], kd, sel.pos, logit[h*n:(h+1)*n], scale)
	}
	if !p.onChip(t.logits) { // handed to weighted-sum through memory
		p.dt.RoundSlice(logit)
	}
	p.wr(bf, t.logits, x.ref.head0*t.n*e, G*t.n*e)
	bf.Arith(traces.Arith{MACs: G * t.n * D64, Elementwise: G * t.n})
	return logit
}

// weightedSum finishes the step: softmax of each head's logits (unless they
// are probabilities already), the weighted sum of the selected V rows and,
// when alpha is not nil, the blend with v̄. It writes x.out.Out.
func (t *tail) weightedSum(x *stepCtx, sel rowSel, logit []float32, alpha []float32) {
	p := x.p
	bf := x.buf(t.sWSum)
	g, D := p.shape.Group(), p.shape.HeadDim
	G, D64, e := int64(g), int64(D), p.e
	n := len(sel.pos)
	p.rd(bf, t.logits, x.ref.head0*t.n*e, G*t.n*e)
	if t.sWSum != t.sExact { // a fused exact step read it already
		p.rd(bf, t.idx, x.ref.pair*t.idxLen, t.idxLen)
	}
	if !t.probs {
		for h := range g {
			softmax(logit[h*n : (h+1)*n])
		}
	}
	acc := x.out.Out
	clear(acc)
	bf.Rows(traces.Read, p.v, x.ref.kv, D64*e, D64*e, sel.rows())
	t.copyRowsOf(x, bf, 1)
	for h := range g {
		gatherWeightedSum(logit[h*n:(h+1)*n], x.pp.data.V, sel.pos, acc[h*D:(h+1)*D])
	}
	if alpha != nil {
		bf.Read(p.vmean, x.ref.vmean, D64*4)
		p.rd(bf, t.alpha, x.ref.head0*4, G*4)
		vmean := x.st.vmean
		for h := range g {
			a := alpha[h]
			o := acc[h*D : (h+1)*D]
			for j := range o {
				o[j] = a*o[j] + (1-a)*vmean[j]
			}
		}
	}
	p.dt.RoundSlice(acc)
	bf.Write(p.out, x.ref.out, G*D64*e)
	ar := traces.Arith{Exps: G * t.n, MACs: G * t.n * D64, Elementwise: 3*G*t.n + 3*G*D64}
	if t.probs {
		ar.Exps = 0
	}
	bf.Arith(ar)
	x.out.Selected = sortedCopy(sel.pos)
}

// closedForm adds the tail's bytes per pair: exact reads q (or qt) and n rows
// of K, weighted-sum n rows of V; the logits, the index and α move through
// memory unfused.
// qRead says whether a fused kernel holds q on chip before exact-scores.
func (t *tail) closedForm(p *plan, add adder, qt traces.TensorID, qRead bool) {
	G, D, e := int64(p.shape.Group()), int64(p.shape.HeadDim), p.e
	if t.sExact >= 0 {
		add(t.sExact, t.idx, t.idxLen)
		if qt == p.q {
			if !p.fused() || !qRead {
				add(t.sExact, p.q, G*D*e)
			}
		} else {
			add(t.sExact, qt, G*D*e)
		}
		add(t.sExact, p.k, t.n*D*e)
		add(t.sExact, t.logits, G*t.n*e)
		if t.copyRows {
			add(t.sExact, t.rowsCopy, 2*t.n*D*e)
		}
	}
	add(t.sWSum, t.logits, G*t.n*e)
	if t.sWSum != t.sExact {
		add(t.sWSum, t.idx, t.idxLen)
	}
	add(t.sWSum, p.v, t.n*D*e)
	if t.copyRows {
		add(t.sWSum, t.rowsCopy, 2*t.n*D*e)
	}
	if t.alpha >= 0 {
		add(t.sWSum, p.vmean, D*4)
		add(t.sWSum, t.alpha, G*4)
	}
	add(t.sWSum, p.out, G*D*e)
}

func sortedCopy(xs []int32) []int32 {
	out := append([]int32(nil), xs...)
	slices.Sort(out)
	return out
}

// proxyTopK is the whole shape of the methods that score every position
// with a cheap proxy and attend the top k exactly, with no forced window
// (Loki, Double Sparsity): approx-scores (the method's proxy; writes the
// approximate logits) → topk (the top k of their group sum; writes i2) →
// the tail.
type proxyTopK struct {
	logitsHat, i2  traces.TensorID
	sApprox, sTopK int
	tail           tail
}

// declare declares the approximate logits, i2, the tail's logits and the
// stages, after the method's own tensors.
func (ps *proxyTopK) declare(p *plan) {
	B, H, Hkv, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.Seq)
	kk := int64(p.spec.K)
	ps.logitsHat = p.inter(TensorLogitsHat, p.e, "B,H,S", B, H, S)
	ps.i2 = p.inter(TensorI2, IndexBytes, "B,Hkv,K", B, Hkv, kk)
	ps.tail.declareLogits(p, TensorLogits, kk)
	ps.tail.idx, ps.tail.idxLen, ps.tail.alpha = ps.i2, kk*IndexBytes, -1
	p.fusedStage(p.spec.Method+"-fused", p.pairs())
	ps.sApprox = p.stage(StageApprox, p.scanUnits(0))
	ps.sTopK = p.stage(StageTopK, p.pairs())
	ps.tail.declareStages(p, true)
}

// finish ends the approx-scores stage (bf) by writing the approximate
// logits lh ([g, S]), then runs the selection and the tail with query q
// read from tensor qt.
func (ps *proxyTopK) finish(x *stepCtx, bf *traces.Buf, lh, q []float32, qt traces.TensorID) {
	p := x.p
	G, S64, K64, e := int64(p.shape.Group()), int64(x.S), int64(p.spec.K), p.e
	p.wr(bf, ps.logitsHat, x.ref.head0*S64*e, G*S64*e)

	bf = x.buf(ps.sTopK)
	p.rd(bf, ps.logitsHat, x.ref.head0*S64*e, G*S64*e)
	i2 := x.selectTop(lh, x.S, x.S, p.spec.K, 0)
	p.wr(bf, ps.i2, x.ref.pair*K64*IndexBytes, K64*IndexBytes)
	bf.Arith(selectArith(G, S64, K64))

	sel := rowSel{pos: i2}
	logit := ps.tail.exact(x, sel, q, qt, x.keys())
	ps.tail.weightedSum(x, sel, logit, nil)
}

// closedForm adds the bytes beyond the method's proxy reads: q, the
// approximate logits, i2 and the tail.
func (ps *proxyTopK) closedForm(p *plan, add adder, qt traces.TensorID) {
	G, D, S, K, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), int64(p.spec.K), p.e
	add(ps.sApprox, p.q, G*D*e)
	add(ps.sApprox, ps.logitsHat, G*S*e)
	add(ps.sTopK, ps.logitsHat, G*S*e)
	add(ps.sTopK, ps.i2, K*IndexBytes)
	ps.tail.closedForm(p, add, qt, true)
}
