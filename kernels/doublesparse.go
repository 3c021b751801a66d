package kernels

import (
	"math"

	"github.com/x448/float16"

	"github.com/bwsim/bwsim/traces"
)

// dsMethod is Double Sparsity (Yang et al., "Post-Training Sparse Attention
// with Double Sparsity", arXiv 2408.07092): a static set of r outlier
// channels per KV head, found offline, and a label cache holding those r
// channels of every key, contiguous per token, at b bits. Approximate
// scores q[channels]·label over all S positions pick the top k of their group
// sum (one selection per KV head), attended exactly.
//
// Calibration (see calibrate.go), from the pair's own keys over the
// calibration prefix, positions [0, ⌈S₀/2⌉) of the first step's cache: the r
// channels of largest Σ k_j² (ascending), and for b < 16 each channel's range
// max|k_j|. Labels of 16 bits are the keys rounded to fp16; below that a
// uniform mid-rise quantiser over [−max|k_j|, max|k_j|] with 2^b levels
// (clamped outside the calibrated range). The parameter tensor [Hkv, 2, r]
// holds the channel indices then the ranges (4 bytes each); a step reads the
// indices, and the ranges when b < 16. Each token's label is padded to whole
// bytes: ⌈r·b/8⌉.
//
// Stages unfused: approx-scores (q, the channels, the label cache: one
// contiguous run), topk (writes i2), exact-scores (k rows of K), weighted-sum
// (k rows of V). Fused: one stage. The append stage writes the new label.
//
// Closed form per KV head: S·⌈r·b/8⌉ bytes of labels + 2·k·D elements
// (the paper's S·r·b/16 + 2·k·D elements of 2 bytes when r·b is a multiple of
// 8), plus the calibration read, q, out and the intermediates; with the
// append stage 2·D elements and one label written.
type dsMethod struct {
	base
	calib, labels traces.TensorID
	proxyTopK
}

// labelBytes is one token's label: r channels at b bits, padded to bytes.
func labelBytes(r, bits int) int64 { return int64((r*bits + 7) / 8) }

func (m *dsMethod) calibBytes(p *plan) int64 {
	n := int64(p.spec.R) * 4
	if p.spec.LabelBits < 16 {
		n *= 2
	}
	return n
}

func (m *dsMethod) declare(p *plan) {
	B, Hkv, S := int64(p.shape.Batch), int64(p.shape.KVHeads), int64(p.shape.Seq)
	m.calib = p.tensor(TensorChannels, traces.RoleParameter, 4, "Hkv,2,R", Hkv, 2, int64(p.spec.R))
	m.labels = p.tensor(TensorLabels, traces.RoleKVCache, 1, "B,Hkv,S,L", B, Hkv, S, labelBytes(p.spec.R, p.spec.LabelBits))
	m.proxyTopK.declare(p)
}

func (m *dsMethod) prepare(c Config, pp *preparedPair, _ int) {
	D, r, b := c.Shape.HeadDim, c.Spec.R, c.Spec.LabelBits
	sf := c.Shape.Seq + c.steps() - 1
	pp.channels, pp.ranges = outlierChannels(pp.data.K, D, calibPrefix(c.Shape.Seq), r)
	pp.labels = make([]float32, sf*r)
	for i := range sf {
		for c, j := range pp.channels {
			pp.labels[i*r+c] = quantLabel(pp.data.K[i*D+int(j)], pp.ranges[c], b)
		}
	}
}

// quantLabel is a key component as the label cache stores it.
func quantLabel(v, rng float32, bits int) float32 {
	if bits >= 16 {
		return float16.Fromfloat32(v).Float32()
	}
	levels := float64(int(1) << bits)
	step := 2 * float64(rng) / levels
	if step == 0 {
		return 0
	}
	code := math.Floor(float64(v) / step)
	code = max(-levels/2, min(levels/2-1, code))
	return float32((code + 0.5) * step)
}

func (m *dsMethod) appendToken(x *stepCtx, bf *traces.Buf) {
	p := x.p
	bf.Read(m.calib, x.ref.hk*2*int64(p.spec.R)*4, m.calibBytes(p))
	x.appendKV(bf, int64(x.S-1))
	lb := labelBytes(p.spec.R, p.spec.LabelBits)
	bf.Write(m.labels, x.ref.pair*int64(x.S)*lb+int64(x.S-1)*lb, lb)
	bf.Arith(traces.Arith{Elementwise: int64(p.spec.R)})
}

func (m *dsMethod) step(x *stepCtx) {
	p := x.p
	g, D, S, r := p.shape.Group(), p.shape.HeadDim, x.S, p.spec.R
	G, D64, S64, R64 := int64(g), int64(D), int64(S), int64(r)
	lb := labelBytes(r, p.spec.LabelBits)

	// Approximate logits from the label cache.
	bf := x.buf(m.sApprox)
	x.readQ(bf)
	bf.Read(m.calib, x.ref.hk*2*R64*4, m.calibBytes(p))
	bf.Read(m.labels, x.ref.pair*S64*lb, S64*lb)
	qc := make([]float32, g*r)
	for h := range g {
		for c, j := range x.pp.channels {
			qc[h*r+c] = x.q[h*D+int(j)]
		}
	}
	scale := invSqrt(D64)
	lh := x.sc.rows[:g*S]
	for i := range S {
		lab := x.pp.labels[i*r : (i+1)*r]
		for h := range g {
			lh[h*S+i] = x.store(dot(qc[h*r:(h+1)*r], lab) * scale)
		}
	}
	bf.Arith(traces.Arith{MACs: G * S64 * R64, Elementwise: G * S64})
	m.finish(x, bf, lh, x.q, p.q)
}

func (m *dsMethod) closedForm(p *plan, add adder) {
	S := int64(p.shape.Seq)
	lb := labelBytes(p.spec.R, p.spec.LabelBits)
	if p.spec.AppendKV {
		add(p.sAppend, m.calib, m.calibBytes(p))
		add(p.sAppend, m.labels, lb)
	}
	add(m.sApprox, m.calib, m.calibBytes(p))
	add(m.sApprox, m.labels, S*lb)
	m.proxyTopK.closedForm(p, add, p.q)
}
