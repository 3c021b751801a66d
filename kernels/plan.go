package kernels

import (
	"math"

	"github.com/bwsim/bwsim/traces"
)

// Tensor names used in traces.
const (
	TensorQ         = "q"
	TensorK         = "K"
	TensorKt        = "Kt"
	TensorV         = "V"
	TensorVmean     = "Vmean"
	TensorOut       = "out"
	TensorScores    = "scores"     // dense, topk, flexgen: q·Kᵀ/√D over all S
	TensorProbs     = "probs"      // dense unfused: softmax(scores)
	TensorI1        = "i1"         // SparQ: selected query components
	TensorLogitsHat = "logits_hat" // SparQ, Loki, Double Sparsity: approximate logits over all S
	TensorI2        = "i2"         // selected positions
	TensorAlpha     = "alpha"      // SparQ, topk: approximate mass of i2
	TensorLogits    = "logits"     // exact logits of the selected positions
	TensorWeights   = "weights"    // flexgen: exact probabilities of the selected positions
	TensorQRot      = "q_rot"      // Loki: the query in the PCA basis
	TensorBasis     = "pca_basis"  // Loki: calibrated PCA basis (parameter)
	TensorChannels  = "channels"   // Double Sparsity: calibrated channels and label scales (parameter)
	TensorLabels    = "labels"     // Double Sparsity: the label cache
	TensorPageMM    = "page_minmax"
	TensorPageScore = "page_scores" // Quest: upper bound per page
	TensorPages     = "pages"       // Quest: selected pages
	TensorH2OScore  = "h2o_scores"  // H2O: accumulated attention per cache slot
	TensorSlotPos   = "slot_pos"    // H2O: the position each cache slot holds
	TensorVictim    = "victim"      // H2O: the slot the next token replaces
	TensorRank      = "rank"        // SparQ with Spec.RankPass: the fp32 scores top-k ranks
	TensorKSel      = "K_sel"       // SparQ materialized: the r gathered components of every key
	TensorKVRows    = "KV_rows"     // SparQ materialized: the k gathered rows of K and of V
	TensorQ32       = "q_fp32"      // dense upcast: q cast to fp32
	TensorK32       = "K_fp32"      // dense upcast: K cast to fp32
	TensorV32       = "V_fp32"      // dense upcast: V cast to fp32
	TensorKRep      = "K_rep"       // dense upcast, GQA: K_fp32 repeated to every query head
	TensorVRep      = "V_rep"       // dense upcast, GQA: V_fp32 repeated to every query head
	TensorKScaled   = "K_scaled"    // dense upcast: K·√(1/√D), PyTorch's math backend's scaled copy
	TensorPartials  = "partials"    // dense fused, split: each split's output and log-sum-exp, fp32
)

// Stage names.
const (
	StageAppend      = "append"
	StageScores      = "scores"
	StageSoftmax     = "softmax"
	StageWeightedSum = "weighted-sum"
	StageAttention   = "attention" // dense fused
	StageTopR        = "top-r"
	StageApprox      = "approx-scores"
	StageSoftmaxTopK = "softmax-topk"
	StageTopK        = "topk"
	StageExact       = "exact-scores"
	StageExactAttn   = "exact-attention" // Spec.FusedExact: exact scores and weighted sum in one kernel
	StagePageScores  = "page-scores"
	StageH2OUpdate   = "h2o-update"
	StageSparQFused  = "sparq-fused"
	StageGather      = "gather"    // SparQ materialized: torch.gather of K's r columns
	StageUpcast      = "upcast"    // dense upcast: casts of q, K and V to fp32
	StageRepeatKV    = "repeat-kv" // dense upcast, GQA: K and V copied per query head
	StageScaleK      = "scale-k"   // dense upcast: the scaled copies of q and K
	StageCombine     = "combine"   // dense fused, split: flash-decoding's reduction of the splits
)

// IndexBytes is the size of a stored index (i1, i2): 32-bit, as a kernel
// written for the purpose stores them.
const IndexBytes = 4

// ScanChunk is the number of positions one work unit of a scan stage covers
// when a stage splits the sequence across thread blocks (dense scores, the
// flash-decoding split): 256, a common tile length.
const ScanChunk = 256

// plan is one kernel's tensors and stages for one shape at one decode step:
// the fixed part of the trace, shared by every pair. The tensors and the
// append stage every method has are declared here; the method declares the
// rest.
type plan struct {
	spec  Spec
	shape Shape // Seq is this step's number of positions
	dt    DType
	e     int64 // element size
	tr    *traces.Trace
	m     method

	// rows is the number of rows of the K and V tensors per pair: S, or
	// H2O's fixed number of cache slots.
	rows int64

	q, k, kt, v, vmean, out traces.TensorID

	sAppend int // -1 when absent
	sFused  int // the one stage of a fused kernel; -1 unfused

	// lab labels each stage for CPU profiles (labels.go); nil labels nothing.
	lab *stageLabels
	// inner is how many goroutines each pair's sequence loops may use
	// (workers left over when there are fewer pairs than workers); 0 or 1
	// runs them on the pair's own goroutine. The results do not depend on it.
	inner int
}

func newPlan(spec Spec, shape Shape, dt DType, sampled int64) *plan {
	p := &plan{spec: spec, shape: shape, dt: dt, e: dt.Size(), sAppend: -1, sFused: -1, kt: -1, vmean: -1}
	p.m = newMethod(spec)
	B, H, Hkv, D := int64(shape.Batch), int64(shape.Heads), int64(shape.KVHeads), int64(shape.HeadDim)
	p.rows = p.m.cacheRows(spec, shape.Seq)
	e := int(p.e)
	tr := traces.New(spec.Method, sampled, shape.Pairs())
	p.tr = tr
	p.q = tr.AddTensor(traces.Tensor{Name: TensorQ, Role: traces.RoleInput, ElemBytes: e, Shape: []int64{B, H, D}, Layout: "B,H,D"})
	p.k = tr.AddTensor(traces.Tensor{Name: TensorK, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, p.rows, D}, Layout: "B,Hkv,S,D"})
	if spec.usesKt() {
		p.kt = tr.AddTensor(traces.Tensor{Name: TensorKt, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, D, p.rows}, Layout: "B,Hkv,D,S"})
	}
	p.v = tr.AddTensor(traces.Tensor{Name: TensorV, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, p.rows, D}, Layout: "B,Hkv,S,D"})
	if spec.realloc() {
		// v̄ is accumulated in fp32 whatever the cache dtype (paper §5.2).
		p.vmean = tr.AddTensor(traces.Tensor{Name: TensorVmean, Role: traces.RoleKVCache, ElemBytes: 4, Shape: []int64{B, Hkv, D}, Layout: "B,Hkv,D"})
	}
	p.out = tr.AddTensor(traces.Tensor{Name: TensorOut, Role: traces.RoleOutput, ElemBytes: e, Shape: []int64{B, H, D}, Layout: "B,H,D"})
	if spec.AppendKV {
		p.sAppend = tr.AddStage(StageAppend, B*Hkv)
	}
	p.m.declare(p)
	return p
}

// Declaration helpers for methods.

func (p *plan) fused() bool { return p.spec.Impl == Fused }

// librarySoftmaxRows is the rows of a softmax over g heads' scores when it
// runs as its own library kernel (unfused), 0 when a fused kernel keeps it
// on chip.
func (p *plan) librarySoftmaxRows(g int64) int64 {
	if p.fused() {
		return 0
	}
	return g
}

// pairs is the number of (sequence, KV head) pairs of the full shape.
func (p *plan) pairs() int64 { return p.shape.Pairs() }

// scanUnits is the number of work units of a stage that scans the
// sequence: one per Spec.Split positions of each pair, or per def positions
// when Split is unset (def 0: one per pair).
func (p *plan) scanUnits(def int) int64 {
	n := int64(p.spec.Split)
	if n == 0 {
		n = int64(def)
	}
	if n == 0 {
		return p.pairs()
	}
	return p.pairs() * ((int64(p.shape.Seq) + n - 1) / n)
}

// stage declares an unfused stage, or returns the fused kernel's single
// stage (declared by fusedStage) when the kernel is fused.
func (p *plan) stage(name string, units int64) int {
	if p.fused() {
		return p.sFused
	}
	return p.tr.AddStage(name, units)
}

// launches sets how many device kernels the modelled unfused implementation
// runs for stage i (see traces.Stage.Launches); a fused kernel is one.
func (p *plan) launches(i, n int) {
	if !p.fused() {
		p.tr.Stages[i].Launches = n
	}
}

// fusedStage declares the single stage of a fused kernel (no-op unfused).
func (p *plan) fusedStage(name string, units int64) {
	if p.fused() {
		p.sFused = p.tr.AddStage(name, units)
	}
}

// inter declares an intermediate tensor: handed between stages through
// device memory unfused, kept on chip fused.
func (p *plan) inter(name string, elem int64, layout string, shape ...int64) traces.TensorID {
	return p.tr.AddTensor(traces.Tensor{Name: name, Role: traces.RoleIntermediate, ElemBytes: int(elem), Shape: shape, Layout: layout, OnChip: p.fused()})
}

// tensor declares a tensor with a role other than intermediate.
func (p *plan) tensor(name string, role traces.Role, elem int64, layout string, shape ...int64) traces.TensorID {
	return p.tr.AddTensor(traces.Tensor{Name: name, Role: role, ElemBytes: int(elem), Shape: shape, Layout: layout})
}

// onChip reports whether tensor t is absent from memory traffic.
func (p *plan) onChip(t traces.TensorID) bool { return t < 0 || p.tr.Tensors[t].OnChip }

// rd and wr record a transfer unless the tensor is kept on chip (or absent).
func (p *plan) rd(bf *traces.Buf, t traces.TensorID, off, n int64) {
	if !p.onChip(t) {
		bf.Read(t, off, n)
	}
}

func (p *plan) wr(bf *traces.Buf, t traces.TensorID, off, n int64) {
	if !p.onChip(t) {
		bf.Write(t, off, n)
	}
}

// pairRefs are the byte offsets of one (sequence, KV head) pair's slices of
// the common tensors, in the target's layout, and the pair's indices.
type pairRefs struct {
	pair  int64 // b·Hkv + hk
	hk    int64
	head0 int64 // b·H + hk·g: the group's first query head
	q     int64
	kv    int64 // the pair's first row of K (and of V, and of Kt)
	vmean int64
	out   int64
}

func (p *plan) refs(b, hk int) pairRefs {
	H, Hkv, D := int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.HeadDim)
	g := int64(p.shape.Group())
	pair := int64(b)*Hkv + int64(hk)
	head0 := int64(b)*H + int64(hk)*g
	return pairRefs{
		pair:  pair,
		hk:    int64(hk),
		head0: head0,
		q:     head0 * D * p.e,
		kv:    pair * p.rows * D * p.e,
		vmean: pair * D * 4,
		out:   head0 * D * p.e,
	}
}

// PairOutput is what one pair's step produced.
type PairOutput struct {
	Batch, KVHead int
	// Out is the output of the group's g query heads, [g, D].
	Out []float32
	// Selected are the positions read exactly (SparQ's i2), ascending; nil
	// for dense.
	Selected []int32
	// Alpha is the reallocation weight α per query head (1 without
	// reallocation); nil for dense.
	Alpha []float32
}

func invSqrt(d int64) float32 { return float32(1 / math.Sqrt(float64(d))) }
