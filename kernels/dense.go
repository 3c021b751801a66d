package kernels

import "github.com/bwsim/bwsim/traces"

// denseMethod is the baseline: read all of K and V.
//
// Unfused (eager, multi-kernel): stage scores writes q·Kᵀ/√D, stage softmax
// writes the probabilities, stage weighted-sum reads them with V. Fused
// (flash-decoding): one stage attention reads q, K and V once and keeps the
// scores on chip in fp32; when it splits the sequence over several work
// units per pair, each writes its partial output and log-sum-exp (fp32) and
// a second kernel, stage combine, reduces them into the output, as
// flash-decoding and cuDNN do (validation/h100-kernels.csv: a split-KV
// kernel and a combine kernel). The g query heads of a group read the
// shared K and V once (q viewed as a [g, D] matrix), as a GQA-aware
// implementation does.
//
// Closed form per pair (elements): K and V S·D each, plus q and out g·D;
// unfused also scores and probs g·S written and read once each. Per KV head
// with the append stage: 2·S·D + 2·D, the paper's M_dense.
//
// Upcast (Spec.Upcast, PyTorch's math backend): stage upcast casts q, K and
// V to fp32 copies; under GQA stage repeat-kv copies K and V to every query
// head; stage scale-k writes scaled copies of q and K; scores, softmax and
// weighted-sum then read the fp32 tensors, one copy per query head, and
// hand fp32 scores and probabilities over.
type denseMethod struct {
	base
	scores, probs            traces.TensorID
	sScores, sSoftmax, sWSum int
	sAttn                    int
	up                       *upcastPath // nil unless Spec.Upcast
	// partials and sCombine: fused with more than one split per pair,
	// else -1; splits is the splits per pair.
	partials traces.TensorID
	sCombine int
	splits   int64
}

// upcastPath is the fp32 copies of the math backend and the stages that
// write them. kRep and vRep are the K and V copies the products read (the
// repeats under GQA, else the casts), kScaled the scaled K.
type upcastPath struct {
	q32, k32, v32, kRep, vRep, kScaled traces.TensorID
	sUpcast, sRepeat, sScale           int // sRepeat: -1 without GQA
}

func (u *upcastPath) declare(p *plan) {
	B, H, Hkv, S, D := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.Seq), int64(p.shape.HeadDim)
	u.q32 = p.inter(TensorQ32, 4, "B,H,D", B, H, D)
	u.k32 = p.inter(TensorK32, 4, "B,Hkv,S,D", B, Hkv, S, D)
	u.v32 = p.inter(TensorV32, 4, "B,Hkv,S,D", B, Hkv, S, D)
	u.kRep, u.vRep, u.sRepeat = u.k32, u.v32, -1
	u.sUpcast = p.tr.AddStage(StageUpcast, p.scanUnits(ScanChunk))
	p.launches(u.sUpcast, 3)
	if p.shape.Group() > 1 {
		u.kRep = p.inter(TensorKRep, 4, "B,H,S,D", B, H, S, D)
		u.vRep = p.inter(TensorVRep, 4, "B,H,S,D", B, H, S, D)
		u.sRepeat = p.tr.AddStage(StageRepeatKV, p.scanUnits(ScanChunk)*int64(p.shape.Group()))
		p.launches(u.sRepeat, 2)
	}
	u.kScaled = p.inter(TensorKScaled, 4, "B,H,S,D", B, H, S, D)
	u.sScale = p.tr.AddStage(StageScaleK, p.scanUnits(ScanChunk)*int64(p.shape.Group()))
	p.launches(u.sScale, 2)
}

// record traces the copies for one pair: casts read the 16-bit tensors once,
// repeats and the scaled copy move one fp32 copy per query head.
func (u *upcastPath) record(x *stepCtx) {
	p := x.p
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(x.S), p.e
	pair, head0 := x.ref.pair, x.ref.head0
	bf := x.buf(u.sUpcast)
	bf.Read(p.q, x.ref.q, G*D*e)
	bf.Read(p.k, x.ref.kv, S*D*e)
	bf.Read(p.v, x.ref.kv, S*D*e)
	bf.Write(u.q32, head0*D*4, G*D*4)
	bf.Write(u.k32, pair*S*D*4, S*D*4)
	bf.Write(u.v32, pair*S*D*4, S*D*4)
	bf.Arith(traces.Arith{CopyElems: G*D + 2*S*D})
	kOff, kLen := pair*S*D*4, S*D*4
	if u.sRepeat >= 0 {
		bf = x.buf(u.sRepeat)
		bf.Read(u.k32, pair*S*D*4, S*D*4)
		bf.Read(u.v32, pair*S*D*4, S*D*4)
		bf.Write(u.kRep, head0*S*D*4, G*S*D*4)
		bf.Write(u.vRep, head0*S*D*4, G*S*D*4)
		bf.Arith(traces.Arith{CopyElems: 2 * G * S * D})
		kOff, kLen = head0*S*D*4, G*S*D*4
	}
	bf = x.buf(u.sScale)
	bf.Read(u.q32, head0*D*4, G*D*4)
	bf.Write(u.q32, head0*D*4, G*D*4)
	bf.Read(u.kRep, kOff, kLen)
	bf.Write(u.kScaled, head0*S*D*4, G*S*D*4)
	bf.Arith(traces.Arith{Elementwise: G*D + G*S*D})
}

// closedForm is record's bytes per pair.
func (u *upcastPath) closedForm(p *plan, add adder) {
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), p.e
	add(u.sUpcast, p.q, G*D*e)
	add(u.sUpcast, p.k, S*D*e)
	add(u.sUpcast, p.v, S*D*e)
	add(u.sUpcast, u.q32, G*D*4)
	add(u.sUpcast, u.k32, S*D*4)
	add(u.sUpcast, u.v32, S*D*4)
	if u.sRepeat >= 0 {
		add(u.sRepeat, u.k32, S*D*4)
		add(u.sRepeat, u.v32, S*D*4)
		add(u.sRepeat, u.kRep, G*S*D*4)
		add(u.sRepeat, u.vRep, G*S*D*4)
	}
	add(u.sScale, u.q32, 2*G*D*4)
	add(u.sScale, u.kRep, G*S*D*4)
	add(u.sScale, u.kScaled, G*S*D*4)
}

func (m *denseMethod) declare(p *plan) {
	B, H, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.Seq)
	m.sScores, m.sSoftmax, m.sWSum, m.sAttn, m.probs, m.partials, m.sCombine = -1, -1, -1, -1, -1, -1, -1
	if p.fused() {
		m.scores = p.tr.AddTensor(traces.Tensor{Name: TensorScores, Role: traces.RoleIntermediate, ElemBytes: 4, Shape: []int64{B, H, S}, Layout: "B,H,S", OnChip: true})
		units := p.scanUnits(ScanChunk)
		m.sAttn = p.tr.AddStage(StageAttention, units)
		p.tr.Stages[m.sAttn].TileKernel = p.spec.Tile.Kernel
		m.splits = units / p.pairs()
		if tk := int64(p.spec.TileKeys); tk > 0 {
			per := (S + m.splits - 1) / m.splits
			p.tr.Stages[m.sAttn].TileLoads = 2 * ((per + tk - 1) / tk)
			p.tr.Stages[m.sAttn].TilesInFlight = int64(p.spec.TilesInFlight)
			p.tr.Stages[m.sAttn].BlockInstructions = int64(p.spec.BlockInstructions)
			p.tr.Stages[m.sAttn].ParamLines = int64(p.spec.ParamLines)
		}
		if m.splits > 1 {
			D := int64(p.shape.HeadDim)
			m.partials = p.tr.AddTensor(traces.Tensor{Name: TensorPartials, Role: traces.RoleIntermediate, ElemBytes: 4,
				Shape: []int64{B, H, m.splits, D + 1}, Layout: "B,H,splits,D+1"})
			m.sCombine = p.tr.AddStage(StageCombine, B*H)
			if p.spec.SerialCombine {
				p.tr.Stages[m.sCombine].DependentLoads = m.splits
			}
		}
		return
	}
	se := p.e
	if p.spec.Upcast {
		m.up = &upcastPath{}
		m.up.declare(p)
		se = 4
	}
	m.scores = p.inter(TensorScores, se, "B,H,S", B, H, S)
	m.probs = p.inter(TensorProbs, se, "B,H,S", B, H, S)
	m.sScores = p.tr.AddStage(StageScores, p.scanUnits(ScanChunk))
	m.sSoftmax = p.tr.AddStage(StageSoftmax, B*H)
	m.sWSum = p.tr.AddStage(StageWeightedSum, p.scanUnits(ScanChunk))
	if p.spec.Kernel == KernelCuBLAS {
		// One batched product per (sequence, KV head) pair, the group's
		// query heads as its rows, as torch.baddbmm and torch.bmm run them.
		shape := traces.Matmul{Products: B * int64(p.shape.KVHeads), Rows: int64(p.shape.Group()), Keys: S, Dim: int64(p.shape.HeadDim)}
		qk, pv := shape, shape
		qk.Form, pv.Form = traces.MatmulScores, traces.MatmulWeighted
		p.tr.Stages[m.sScores].Matmul, p.tr.Stages[m.sWSum].Matmul = &qk, &pv
	}
	if m.up != nil {
		// _safe_softmax is five kernels and a cast of P; the output is
		// cast back to the input type.
		p.launches(m.sSoftmax, 6)
		p.launches(m.sWSum, 2)
	}
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
	se := e // scores and probabilities
	if m.up != nil {
		se = 4
	}
	off := x.ref.head0 * S64 * se

	// Stage 1: scores.
	var rows []float32
	if m.up == nil {
		rows = x.scoresAll(x.buf(m.sScores), m.scores)
	} else {
		m.up.record(x)
		// Each query head reads its own scaled fp32 copy of K; fp32
		// scores stay unrounded.
		bf := x.buf(m.sScores)
		bf.Read(m.up.q32, x.ref.head0*D64*4, G*D64*4)
		bf.Read(m.up.kScaled, x.ref.head0*S64*D64*4, G*S64*D64*4)
		rows = x.sc.rows[:g*S]
		groupScores(p.inner, x.q[:g*D], x.keys(), D, S, rows, S, invSqrt(D64))
		bf.Write(m.scores, off, G*S64*4)
		bf.Arith(traces.Arith{MACs: G * S64 * D64, Elementwise: G * S64})
	}

	// Stage 2: softmax, row by row.
	bf := x.buf(m.sSoftmax)
	bf.Read(m.scores, off, G*S64*se)
	for h := range g {
		row := rows[h*S : (h+1)*S]
		softmaxSplit(p.inner, row)
		if m.up == nil {
			p.dt.RoundSlice(row)
		}
	}
	bf.Write(m.probs, off, G*S64*se)
	bf.Arith(traces.Arith{Exps: G * S64, Compares: G * S64, Elementwise: 3 * G * S64, SoftmaxRows: G})

	// Stage 3: probability-weighted sum of V.
	bf = x.buf(m.sWSum)
	bf.Read(m.probs, off, G*S64*se)
	switch {
	case m.up == nil:
		bf.Read(p.v, x.ref.kv, S64*D64*e)
	case m.up.sRepeat >= 0:
		bf.Read(m.up.vRep, x.ref.head0*S64*D64*4, G*S64*D64*4)
	default:
		bf.Read(m.up.v32, x.ref.pair*S64*D64*4, S64*D64*4)
	}
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
	bf.Arith(traces.Arith{MACs: 2 * G * S64 * D64, Exps: G * S64, Compares: G * S64, Elementwise: 4 * G * S64})
	if t := p.spec.Tile; !t.IsZero() {
		bf.Arith(m.tileArith(t, G, S64, D64))
	}
	if m.sCombine < 0 {
		bf.Write(p.out, x.ref.out, G*D64*e)
		return
	}
	// The splits' partial outputs and log-sum-exps go through memory to the
	// combine kernel (here the host kernel reduces in registers; the bytes
	// are those of the two-kernel device implementation).
	part := m.splits * (D64 + 1) * 4
	bf.Write(m.partials, x.ref.head0*part, G*part)
	bf = x.buf(m.sCombine)
	bf.Read(m.partials, x.ref.head0*part, G*part)
	bf.Write(p.out, x.ref.out, G*D64*e)
	bf.Arith(traces.Arith{Exps: G * m.splits, MACs: G * m.splits * D64, Elementwise: G * (m.splits + D64)})
}

// tileArith is a tiled kernel's work for one (sequence, KV head) pair: the
// g query heads of the group share K and V, so they run as the rows of
// ceil(g/rows) tiles (FlashAttention-2 views a decode step's group as its
// query rows), each a thread block per split, each tile multiplying all its
// rows with every key twice (q·Kᵀ and P·V).
func (m *denseMethod) tileArith(t QueryTile, g, S, D int64) traces.Arith {
	rows := int64(t.Rows)
	tiles := (g + rows - 1) / rows
	return traces.Arith{TileMACs: 2 * tiles * rows * S * D, TileUnits: tiles * max(m.splits, 1)}
}

func (m *denseMethod) closedForm(p *plan, add adder) {
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), p.e
	if p.fused() {
		add(m.sAttn, p.q, G*D*e)
		add(m.sAttn, p.k, S*D*e)
		add(m.sAttn, p.v, S*D*e)
		if m.sCombine < 0 {
			add(m.sAttn, p.out, G*D*e)
			return
		}
		part := m.splits * (D + 1) * 4
		add(m.sAttn, m.partials, G*part)
		add(m.sCombine, m.partials, G*part)
		add(m.sCombine, p.out, G*D*e)
		return
	}
	if u := m.up; u != nil {
		u.closedForm(p, add)
		add(m.sScores, u.q32, G*D*4)
		add(m.sScores, u.kScaled, G*S*D*4)
		add(m.sScores, m.scores, G*S*4)
		add(m.sSoftmax, m.scores, G*S*4)
		add(m.sSoftmax, m.probs, G*S*4)
		add(m.sWSum, m.probs, G*S*4)
		if u.sRepeat >= 0 {
			add(m.sWSum, u.vRep, G*S*D*4)
		} else {
			add(m.sWSum, u.v32, S*D*4)
		}
		add(m.sWSum, p.out, G*D*e)
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
