package kernels

import (
	"math"

	"github.com/bwsim/bwsim/traces"
)

// sparqMethod is SparQ Attention (Ribar et al., "SparQ Attention:
// Bandwidth-Efficient LLM Inference", ICML 2024, Algorithm 1), following the
// authors' evaluation code:
//
//  1. i1 = top-r of |q| summed over the group's heads (one i1 per KV head);
//  2. τ = sqrt(D·‖q[i1]‖₁/‖q‖₁) per query head; approximate logits
//     q[i1]·K[:, i1]ᵀ/τ over all S positions, ŝ = softmax of them;
//  3. the l = k/4 most recent positions are always selected; the other k−l
//     are the top of the group-summed approximate logits (one i2 per KV
//     head); k positions in total, not k+1: the traffic model charges k rows;
//  4. α = Σ_{i∈i2} ŝ_i per query head, from the unboosted ŝ;
//  5. exact attention over the k rows: s = softmax(q·K[i2]ᵀ/√D);
//  6. y = α·(s·V[i2]) + (1−α)·v̄, or α ≡ 1 without reallocation.
//
// With k ≥ S every position is selected, α is 1 and the result is dense
// attention.
//
// Stages unfused: top-r (writes i1), approx-scores (reads r columns of K over
// all S — r rows of Kt when K is stored twice, r strided series of K rows
// once — and writes the approximate logits), softmax-topk (writes i2 and α),
// exact-scores (k rows of K), weighted-sum (k rows of V, v̄); every
// intermediate is rounded to its stored type. Fused: one stage keeps them on
// chip in fp32. Materialized (Spec.Materialize, a PyTorch implementation):
// a gather stage between top-r and approx-scores reads the r columns and
// writes them to K_sel, [B, Hkv, r, S], which approx-scores reads back;
// exact-scores and weighted-sum write the k selected rows of K and of V to
// KV_rows and read them back. Compiled (Spec.Compiled, torch.compile): the
// same bytes, from generated kernels rather than library copies.
//
// Closed form per KV head (elements, with the append stage): S·r + 2·k·D
// read, k and v written (plus the Kt copy), v̄ read and written and read
// again, plus q, out and the intermediates — the paper's Eq. 11,
// S·r + 2·k·D + 4·D.
type sparqMethod struct {
	base
	i1, logitsHat, i2, alpha  traces.TensorID
	kSel                      traces.TensorID // materialized only, else -1
	rank                      traces.TensorID // Spec.RankPass only, else -1
	sTopR, sApprox, sSoftTopK int
	sGather                   int // materialized only, else -1
	tail                      tail
}

func (m *sparqMethod) declare(p *plan) {
	B, H, Hkv, S := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.Seq)
	kk, r := int64(p.spec.K), int64(p.spec.R)
	m.i1 = p.inter(TensorI1, IndexBytes, "B,Hkv,R", B, Hkv, r)
	m.logitsHat = p.inter(TensorLogitsHat, p.e, "B,H,S", B, H, S)
	m.i2 = p.inter(TensorI2, IndexBytes, "B,Hkv,K", B, Hkv, kk)
	m.alpha = p.inter(TensorAlpha, 4, "B,H", B, H)
	m.rank = -1
	if p.spec.RankPass {
		m.rank = p.inter(TensorRank, 4, "B,Hkv,S", B, Hkv, S)
	}
	m.tail.declareLogits(p, TensorLogits, kk)
	m.tail.idx, m.tail.idxLen = m.i2, kk*IndexBytes
	m.tail.alpha = -1
	if p.spec.realloc() {
		m.tail.alpha = m.alpha
	}
	// One program per KV head fused: top-k over the whole sequence needs
	// every position's score in one place. Unfused, the paper's Triton
	// kernels run one program per (batch, head) for the gathers; torch.topk
	// runs one block per row.
	p.fusedStage(StageSparQFused, p.pairs())
	m.sTopR = p.stage(StageTopR, p.pairs())
	m.kSel, m.sGather = -1, -1
	scanTile := 0 // the paper's gather kernel: one program per pair
	if p.spec.Materialize {
		// torch.gather and the matmul after it are library kernels whose
		// grids tile their output, not one program per pair.
		scanTile = ScanChunk
		m.kSel = p.inter(TensorKSel, p.e, "B,Hkv,R,S", B, Hkv, r, S)
		m.sGather = p.stage(StageGather, p.scanUnits(scanTile))
	}
	m.sApprox = p.stage(StageApprox, p.scanUnits(scanTile))
	m.sSoftTopK = p.stage(StageSoftmaxTopK, p.pairs())
	// Kernels per stage in the authors' PyTorch + Triton implementation,
	// counted from its code and the H100 per-stage traces
	// (validation/NOTES.md): top-r with τ is abs, topk, gather, two sums,
	// mul, div and rsqrt; softmax-topk is softmax, topk and the gather, sum
	// and casts of α.
	p.launches(m.sTopR, 8)
	p.launches(m.sSoftTopK, 6)
	m.tail.declareStages(p, true)
	if p.spec.Kernel != "" {
		// Step 1's program walks its positions a tile at a time, each step
		// waiting for its loads (traces.Stage.LoopSteps); with K once the
		// tile gathers r scattered components of each key row. The exact
		// step's loop loads each block's row numbers before the rows: a
		// loop of another shape, left to the stream rate and Little's law.
		ap := &p.tr.Stages[m.sApprox]
		ap.Kernel = p.spec.Kernel
		per := int64(p.spec.Split)
		if per == 0 {
			per = S
		}
		chunk := int64(TritonScoreChunk(int(r)))
		ap.LoopSteps = (per + chunk - 1) / chunk
		ap.LoopGathers = p.spec.KLayout == KOnce
		if p.spec.FusedExact {
			p.tr.Stages[m.tail.sExact].Kernel = p.spec.Kernel
		}
	}
	if p.spec.Materialize {
		m.tail.declareRowsCopy(p)
	}
	if p.spec.Compiled {
		// Inductor's kernels for the same pipeline (validation/NOTES.md,
		// session 5, Nsight Compute): the |q| sum, torch.topk's two kernels
		// and the fused q[i1]·τ kernel; the gather; the matmul; the fused
		// scale-softmax-rank kernel and torch.topk; one fused gather of
		// K[i2] and V[i2], the matmul and the fused softmax; the matmul and
		// the fused blend.
		p.launches(m.sTopR, 4)
		p.launches(m.sApprox, 1)
		p.launches(m.sSoftTopK, 2)
		p.launches(m.tail.sExact, 3)
		p.launches(m.tail.sWSum, 2)
	} else if p.spec.Materialize {
		// The gather-based PyTorch version (validation/measure.py's
		// sparq_torch) runs every element-wise step as its own kernel:
		// gathering q[i1], √τ² and its cast, the matmul and the division by
		// τ; torch.gather of K[i2] and V[i2], the matmul, the cast, the
		// scaling and the softmax and its cast; the matmul with V, α's
		// cast, and the blend as four element-wise kernels.
		p.launches(m.sApprox, 4)
		p.launches(m.tail.sExact, 6)
		p.launches(m.tail.sWSum, 7)
	}
}

func (m *sparqMethod) step(x *stepCtx) {
	p := x.p
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	r, k := p.spec.R, p.spec.K
	e := p.e
	G, D64, S64, R64, K64 := int64(g), int64(D), int64(S), int64(r), int64(k)
	realloc := p.spec.realloc()
	q := x.q

	// Step 1: top-r of the group's summed |q|.
	bf := x.buf(m.sTopR)
	x.readQ(bf)
	absSum := x.sc.sum[:D]
	clear(absSum)
	for h := range g {
		for j, v := range q[h*D : (h+1)*D] {
			absSum[j] += float32(math.Abs(float64(v)))
		}
	}
	i1 := topK(absSum, r, x.sc.idx, x.sc.perm)
	i1 = append([]int32(nil), i1...)
	p.wr(bf, m.i1, x.ref.pair*R64*IndexBytes, R64*IndexBytes)
	bf.Arith(traces.Arith{Elementwise: G * D64, Compares: D64 * log2Ceil(r), SelectElems: D64, SelectRows: 1})

	// Step 2: approximate logits from r components of every key, gathered
	// by the kernel that uses them or, materialized, by a gather kernel
	// that hands them over through memory.
	bf = x.buf(m.sApprox)
	p.rd(bf, m.i1, x.ref.pair*R64*IndexBytes, R64*IndexBytes)
	x.readQ(bf)
	scan := bf
	if m.sGather >= 0 {
		scan = x.buf(m.sGather)
		p.rd(scan, m.i1, x.ref.pair*R64*IndexBytes, R64*IndexBytes)
	}
	invTau := make([]float32, g)
	for h := range g {
		qh := q[h*D : (h+1)*D]
		var l1, l1sel float64
		for _, v := range qh {
			l1 += math.Abs(float64(v))
		}
		for _, j := range i1 {
			l1sel += math.Abs(float64(qh[j]))
		}
		invTau[h] = 1
		if l1 > 0 && l1sel > 0 {
			invTau[h] = float32(1 / math.Sqrt(float64(D)*l1sel/l1))
		}
	}
	lh := x.sc.rows[:g*S]
	x.scanColumns(scan, i1, false, q, lh)
	if m.kSel >= 0 {
		sel := x.ref.pair * R64 * S64 * e
		p.wr(scan, m.kSel, sel, R64*S64*e)
		p.rd(bf, m.kSel, sel, R64*S64*e)
		if !p.spec.Compiled {
			// torch.gather's kernel is paced by its elements, not its
			// bytes; Inductor's generated gather streams. With K stored
			// once it picks r scattered components of every key row.
			a := traces.Arith{CopyElems: R64 * S64}
			if p.spec.KLayout == KOnce {
				a.ScatteredCopyElems = a.CopyElems
			}
			scan.Arith(a)
		}
	}
	for h := range g {
		row := lh[h*S : (h+1)*S]
		scaleSIMD(invTau[h], row)
		if !p.fused() {
			p.dt.RoundSlice(row)
		}
	}
	p.wr(bf, m.logitsHat, x.ref.head0*S64*e, G*S64*e)
	bf.Arith(traces.Arith{MACs: G * S64 * R64, Elementwise: G*S64 + 2*G*D64})

	// Step 3: softmax, local window and top-k of the group-summed logits.
	bf = x.buf(m.sSoftTopK)
	p.rd(bf, m.logitsHat, x.ref.head0*S64*e, G*S64*e)
	i2 := x.selectTop(lh, S, S, k, min(p.spec.LocalWindow(), k))
	alpha := make([]float32, g)
	for h := range g {
		row := lh[h*S : (h+1)*S]
		softmaxSplit(p.inner, row) // ŝ, unboosted: the window only forces selection
		if !realloc || k >= S {
			alpha[h] = 1
			continue
		}
		var a float64
		for _, i := range i2 {
			a += float64(row[i])
		}
		alpha[h] = float32(a)
	}
	p.wr(bf, m.i2, x.ref.pair*K64*IndexBytes, K64*IndexBytes)
	p.wr(bf, m.alpha, x.ref.head0*4, G*4)
	bf.Arith(traces.Arith{Exps: G * S64, Compares: S64*log2Ceil(k) + G*S64, Elementwise: 3*G*S64 + (G-1)*S64 + G*K64,
		SelectElems: S64, SelectRows: 1, SoftmaxRows: p.librarySoftmaxRows(G)})
	if m.rank >= 0 {
		// The ranking kernel reads the logits again and writes one fp32
		// row per pair, which top-k reads; a library reduction or cast,
		// paced by the elements it writes.
		p.rd(bf, m.logitsHat, x.ref.head0*S64*e, G*S64*e)
		p.wr(bf, m.rank, x.ref.pair*S64*4, S64*4)
		p.rd(bf, m.rank, x.ref.pair*S64*4, S64*4)
		bf.Arith(traces.Arith{CopyElems: S64})
	}

	// Steps 4 and 5: exact attention over the k rows, blended with v̄.
	sel := rowSel{pos: i2}
	logit := m.tail.exact(x, sel, q, p.q, x.keys())
	var blend []float32
	if realloc {
		blend = alpha
	}
	m.tail.weightedSum(x, sel, logit, blend)
	if m.kSel >= 0 && !p.spec.Compiled {
		// The PyTorch version copies K[i2] and V[i2] with torch.gather
		// before its matmuls.
		x.buf(m.tail.sExact).Arith(traces.Arith{CopyElems: int64(len(i2)) * D64})
		x.buf(m.tail.sWSum).Arith(traces.Arith{CopyElems: int64(len(i2)) * D64})
	}
	x.out.Alpha = alpha
}

func (m *sparqMethod) closedForm(p *plan, add adder) {
	G, D, S, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), p.e
	R, K := int64(p.spec.R), int64(p.spec.K)
	kcols := p.kt
	if kcols < 0 {
		kcols = p.k
	}
	add(m.sTopR, p.q, G*D*e)
	add(m.sTopR, m.i1, R*IndexBytes)
	add(m.sApprox, m.i1, R*IndexBytes)
	if !p.fused() {
		add(m.sApprox, p.q, G*D*e)
	}
	if m.kSel >= 0 {
		add(m.sGather, m.i1, R*IndexBytes)
		add(m.sGather, kcols, S*R*e)
		add(m.sGather, m.kSel, S*R*e)
		add(m.sApprox, m.kSel, S*R*e)
	} else {
		add(m.sApprox, kcols, S*R*e)
	}
	add(m.sApprox, m.logitsHat, G*S*e)
	add(m.sSoftTopK, m.logitsHat, G*S*e)
	if m.rank >= 0 {
		add(m.sSoftTopK, m.logitsHat, G*S*e)
		add(m.sSoftTopK, m.rank, 2*S*4)
	}
	add(m.sSoftTopK, m.i2, K*IndexBytes)
	add(m.sSoftTopK, m.alpha, G*4)
	m.tail.closedForm(p, add, p.q, true)
}
