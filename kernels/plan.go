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
	TensorScores    = "scores"     // dense unfused: q·Kᵀ/√D
	TensorProbs     = "probs"      // dense unfused: softmax(scores)
	TensorI1        = "i1"         // SparQ: selected query components
	TensorLogitsHat = "logits_hat" // SparQ: approximate logits over all S
	TensorI2        = "i2"         // SparQ: selected positions
	TensorAlpha     = "alpha"      // SparQ: approximate mass of i2
	TensorLogits    = "logits"     // SparQ: exact logits of the k positions
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
	StageExact       = "exact-scores"
	StageSparQFused  = "sparq-fused"
)

// IndexBytes is the size of a stored index (i1, i2): 32-bit, as a kernel
// written for the purpose stores them.
const IndexBytes = 4

// ScanChunk is the number of positions one work unit of a scan stage covers
// when a stage splits the sequence across thread blocks (dense scores, the
// flash-decoding split): 256, a common tile length.
const ScanChunk = 256

// plan is one kernel's tensors and stages for one shape: the fixed part of
// the trace, shared by every pair.
type plan struct {
	spec  Spec
	shape Shape
	dt    DType
	e     int64 // element size
	tr    *traces.Trace

	q, k, kt, v, vmean, out         traces.TensorID
	scores, probs                   traces.TensorID
	i1, logitsHat, i2, alpha, logit traces.TensorID

	// Stage indices, -1 when absent.
	sAppend, sScores, sSoftmax, sWSum, sAttn      int
	sTopR, sApprox, sSoftTopK, sExact, sSparQFuse int

	// lab labels each stage for CPU profiles (labels.go); nil labels nothing.
	lab *stageLabels
}

func newPlan(spec Spec, shape Shape, dt DType, sampled int64) *plan {
	p := &plan{spec: spec, shape: shape, dt: dt, e: dt.Size()}
	p.sAppend, p.sScores, p.sSoftmax, p.sWSum, p.sAttn = -1, -1, -1, -1, -1
	p.sTopR, p.sApprox, p.sSoftTopK, p.sExact, p.sSparQFuse = -1, -1, -1, -1, -1
	B, H, Hkv, D, S := int64(shape.Batch), int64(shape.Heads), int64(shape.KVHeads), int64(shape.HeadDim), int64(shape.Seq)
	e := int(p.e)
	tr := traces.New(spec.Method, sampled, shape.Pairs())
	p.tr = tr
	fused := spec.Impl == Fused
	sparq := spec.Method == MethodSparQ
	realloc := sparq && !spec.NoReallocation

	p.q = tr.AddTensor(traces.Tensor{Name: TensorQ, Role: traces.RoleInput, ElemBytes: e, Shape: []int64{B, H, D}, Layout: "B,H,D"})
	p.k = tr.AddTensor(traces.Tensor{Name: TensorK, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, S, D}, Layout: "B,Hkv,S,D"})
	p.kt = -1
	if sparq && spec.KLayout == KTwice {
		p.kt = tr.AddTensor(traces.Tensor{Name: TensorKt, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, D, S}, Layout: "B,Hkv,D,S"})
	}
	p.v = tr.AddTensor(traces.Tensor{Name: TensorV, Role: traces.RoleKVCache, ElemBytes: e, Shape: []int64{B, Hkv, S, D}, Layout: "B,Hkv,S,D"})
	p.vmean = -1
	if realloc {
		// v̄ is accumulated in fp32 whatever the cache dtype (paper §5.2).
		p.vmean = tr.AddTensor(traces.Tensor{Name: TensorVmean, Role: traces.RoleKVCache, ElemBytes: 4, Shape: []int64{B, Hkv, D}, Layout: "B,Hkv,D"})
	}
	p.out = tr.AddTensor(traces.Tensor{Name: TensorOut, Role: traces.RoleOutput, ElemBytes: e, Shape: []int64{B, H, D}, Layout: "B,H,D"})

	pairs := B * Hkv
	chunks := (S + ScanChunk - 1) / ScanChunk
	if spec.AppendKV {
		p.sAppend = tr.AddStage(StageAppend, pairs)
	}
	switch {
	case !sparq && !fused:
		p.scores = tr.AddTensor(traces.Tensor{Name: TensorScores, Role: traces.RoleIntermediate, ElemBytes: e, Shape: []int64{B, H, S}, Layout: "B,H,S"})
		p.probs = tr.AddTensor(traces.Tensor{Name: TensorProbs, Role: traces.RoleIntermediate, ElemBytes: e, Shape: []int64{B, H, S}, Layout: "B,H,S"})
		p.sScores = tr.AddStage(StageScores, pairs*chunks)
		p.sSoftmax = tr.AddStage(StageSoftmax, B*H)
		p.sWSum = tr.AddStage(StageWeightedSum, pairs*chunks)
	case !sparq && fused:
		p.scores = tr.AddTensor(traces.Tensor{Name: TensorScores, Role: traces.RoleIntermediate, ElemBytes: 4, Shape: []int64{B, H, S}, Layout: "B,H,S", OnChip: true})
		p.sAttn = tr.AddStage(StageAttention, pairs*chunks)
	default:
		kk := int64(spec.K)
		r := int64(spec.R)
		p.i1 = tr.AddTensor(traces.Tensor{Name: TensorI1, Role: traces.RoleIntermediate, ElemBytes: IndexBytes, Shape: []int64{B, Hkv, r}, Layout: "B,Hkv,R", OnChip: fused})
		p.logitsHat = tr.AddTensor(traces.Tensor{Name: TensorLogitsHat, Role: traces.RoleIntermediate, ElemBytes: e, Shape: []int64{B, H, S}, Layout: "B,H,S", OnChip: fused})
		p.i2 = tr.AddTensor(traces.Tensor{Name: TensorI2, Role: traces.RoleIntermediate, ElemBytes: IndexBytes, Shape: []int64{B, Hkv, kk}, Layout: "B,Hkv,K", OnChip: fused})
		p.alpha = tr.AddTensor(traces.Tensor{Name: TensorAlpha, Role: traces.RoleIntermediate, ElemBytes: 4, Shape: []int64{B, H}, Layout: "B,H", OnChip: fused})
		p.logit = tr.AddTensor(traces.Tensor{Name: TensorLogits, Role: traces.RoleIntermediate, ElemBytes: e, Shape: []int64{B, H, kk}, Layout: "B,H,K", OnChip: fused})
		if fused {
			// One program per KV head: top-k over the whole sequence needs
			// every position's score in one place.
			p.sSparQFuse = tr.AddStage(StageSparQFused, pairs)
		} else {
			// The paper's Triton kernels run one program per (batch, head)
			// for the gathers; torch.topk runs one block per row.
			p.sTopR = tr.AddStage(StageTopR, pairs)
			p.sApprox = tr.AddStage(StageApprox, pairs)
			p.sSoftTopK = tr.AddStage(StageSoftmaxTopK, pairs)
			p.sExact = tr.AddStage(StageExact, pairs)
			p.sWSum = tr.AddStage(StageWeightedSum, pairs)
		}
	}
	return p
}

// pairRefs are the byte offsets of one (sequence, KV head) pair's slices of
// every tensor, in the target's layout.
type pairRefs struct {
	q, kv, vmean, out, rows, i1, i2, alpha, logit int64
}

func (p *plan) refs(b, hk int) pairRefs {
	H, Hkv, D, S := int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.HeadDim), int64(p.shape.Seq)
	g := int64(p.shape.Group())
	pair := int64(b)*Hkv + int64(hk)
	head0 := int64(b)*H + int64(hk)*g
	kk, r := int64(p.spec.K), int64(p.spec.R)
	return pairRefs{
		q:     head0 * D * p.e,
		kv:    pair * S * D * p.e,
		vmean: pair * D * 4,
		out:   head0 * D * p.e,
		rows:  head0 * S * p.e,
		i1:    pair * r * IndexBytes,
		i2:    pair * kk * IndexBytes,
		alpha: head0 * 4,
		logit: head0 * kk * p.e,
	}
}

// scratch is a worker's reusable buffers.
type scratch struct {
	rows   []float32 // [g, S] scores or logits
	sum    []float32 // [S] group-summed logits; [D] |q| sums
	idx    []int32
	perm   []int32
	acc    []float32 // [D]
	logitK []float32 // [g, k]
}

func (p *plan) newScratch() *scratch {
	g, S, D := p.shape.Group(), p.shape.Seq, p.shape.HeadDim
	return &scratch{
		rows:   make([]float32, g*S),
		sum:    make([]float32, max(S, D)),
		idx:    make([]int32, max(S, D)),
		perm:   make([]int32, max(S, D)),
		acc:    make([]float32, D),
		logitK: make([]float32, g*max(p.spec.K, 1)),
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
	// Alpha is SparQ's α per query head; nil for dense.
	Alpha []float32
}

// stepPair runs the step for one pair. bufs has one Buf per stage (nil
// entries or a nil slice record nothing). vmean is the pair's running mean
// over the positions before the current token; the append stage updates it.
func (p *plan) stepPair(d *PairData, kt []float32, vmean []float32, b, hk int, bufs []*traces.Buf, sc *scratch) PairOutput {
	// Every stage starts by taking its Buf: label the goroutine there.
	defer p.lab.leave()
	buf := func(i int) *traces.Buf {
		p.lab.enter(i)
		if i < 0 || bufs == nil {
			return nil
		}
		return bufs[i]
	}
	ref := p.refs(b, hk)
	g, D, S := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq)
	e := p.e
	out := PairOutput{Batch: b, KVHead: hk, Out: make([]float32, g*D)}

	sparq := p.spec.Method == MethodSparQ
	realloc := sparq && !p.spec.NoReallocation
	if p.spec.AppendKV {
		bf := buf(p.sAppend)
		last := S - 1
		bf.Write(p.k, ref.kv+last*D*e, D*e)
		bf.Write(p.v, ref.kv+last*D*e, D*e)
		if p.kt >= 0 {
			// The transposed copy takes one element per row: a strided write.
			bf.Strided(traces.Write, p.kt, ref.kv+last*e, e, S*e, D)
		}
		if realloc {
			bf.Read(p.vmean, ref.vmean, D*4)
			n := float32(S - 1)
			vrow := d.V[last*D : (last+1)*D]
			for j := range vmean {
				vmean[j] = (n*vmean[j] + vrow[j]) / (n + 1)
			}
			bf.Write(p.vmean, ref.vmean, D*4)
			bf.Arith(traces.Arith{Elementwise: 3 * D})
		}
	}
	switch {
	case !sparq && p.spec.Impl == Unfused:
		p.denseUnfused(d, ref, buf, sc, out.Out)
	case !sparq:
		p.denseFused(d, ref, buf(p.sAttn), sc, out.Out)
	default:
		p.sparq(d, kt, vmean, ref, buf, sc, &out)
	}
	return out
}

func invSqrt(d int64) float32 { return float32(1 / math.Sqrt(float64(d))) }
