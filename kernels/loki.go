package kernels

import (
	"github.com/bwsim/bwsim/traces"
)

// lokiMethod is Loki (Singhania et al., "Loki: Low-Rank Keys for Efficient
// Sparse Attention", NeurIPS 2024). Keys are stored rotated into a PCA basis
// P computed offline; P is orthogonal, so q·k = (Pq)·(Pk) and the cache needs
// no second copy. Approximate scores use only the first d′ = r components of
// the rotated query and keys; the top k of their group sum (one selection
// per KV head) are attended exactly with all D components.
//
// Calibration (see calibrate.go): P holds the principal directions of the
// second moment Σ k·kᵀ of the pair's own keys over the calibration prefix,
// positions [0, ⌈S₀/2⌉) of the first step's cache — a stand-in for the
// paper's offline calibration set. It is a parameter tensor [Hkv, D, D] in
// fp32 (component-major), read whole every step to rotate q and by the append
// stage to rotate the new key.
//
// Stages unfused: approx-scores (q, the basis; writes the rotated q and the
// approximate logits over all S from d′ columns of K — d′ contiguous
// components of every row with K stored once, the default, or d′ rows of the
// rotated Kt stored twice), topk (writes i2), exact-scores (rotated q, k rows
// of K), weighted-sum (k rows of V). Fused: one stage.
//
// Closed form per KV head (elements): S·d′ + 2·k·D + D² read (the basis),
// plus q, out and the intermediates — the paper's S·d′ + 2·k·D, which leaves
// out the basis; with the append stage 2·D written (+ the Kt copy) and D²
// read.
type lokiMethod struct {
	base
	basis, qrot traces.TensorID
	proxyTopK
}

func (m *lokiMethod) declare(p *plan) {
	B, H, Hkv, D := int64(p.shape.Batch), int64(p.shape.Heads), int64(p.shape.KVHeads), int64(p.shape.HeadDim)
	m.basis = p.tensor(TensorBasis, traces.RoleParameter, p.e, "Hkv,C,D", Hkv, D, D)
	m.qrot = p.inter(TensorQRot, p.e, "B,H,D", B, H, D)
	m.proxyTopK.declare(p)
}

func (m *lokiMethod) prepare(c Config, pp *preparedPair, _ int) {
	D := c.Shape.HeadDim
	sf := c.Shape.Seq + c.steps() - 1
	b64 := pcaBasis(pp.data.K, D, calibPrefix(c.Shape.Seq))
	pp.basis = make([]float32, D*D)
	for i, v := range b64 {
		pp.basis[i] = c.DType.Round(float32(v))
	}
	pp.kx = rotateKeys(pp.data.K[:sf*D], pp.basis, D, c.DType)
}

// rotateKeys returns the keys in the basis ([S, D], component c of row i =
// P[c]·K[i]), accumulated in float64 and stored in the dtype.
func rotateKeys(K []float32, basis []float32, D int, dt DType) []float32 {
	out := make([]float32, len(K))
	for i := 0; i < len(K); i += D {
		row := K[i : i+D]
		for c := range D {
			var acc float64
			for j, v := range basis[c*D : (c+1)*D] {
				acc += float64(v) * float64(row[j])
			}
			out[i+c] = dt.Round(float32(acc))
		}
	}
	return out
}

func (m *lokiMethod) appendToken(x *stepCtx, bf *traces.Buf) {
	D := int64(x.p.shape.HeadDim)
	bf.Read(m.basis, x.ref.hk*D*D*x.p.e, D*D*x.p.e)
	bf.Arith(traces.Arith{MACs: D * D})
	x.appendKV(bf, int64(x.S-1))
}

func (m *lokiMethod) step(x *stepCtx) {
	p := x.p
	g, D, S := p.shape.Group(), p.shape.HeadDim, x.S
	G, D64, S64, R64, e := int64(g), int64(D), int64(S), int64(p.spec.R), p.e

	// Rotate q, approximate logits from the first d′ components.
	bf := x.buf(m.sApprox)
	x.readQ(bf)
	bf.Read(m.basis, x.ref.hk*D64*D64*e, D64*D64*e)
	qr := make([]float32, g*D)
	for h := range g {
		for c := range D {
			qr[h*D+c] = x.store(dot(x.pp.basis[c*D:(c+1)*D], x.q[h*D:(h+1)*D]))
		}
	}
	p.wr(bf, m.qrot, x.ref.head0*D64*e, G*D64*e)
	lh := x.sc.rows[:g*S]
	x.scanColumns(bf, iota32(0, p.spec.R), true, qr, lh)
	scale := invSqrt(D64)
	for i := range lh {
		lh[i] = x.store(lh[i] * scale)
	}
	bf.Arith(traces.Arith{MACs: G*D64*D64 + G*S64*R64, Elementwise: G * S64})
	m.finish(x, bf, lh, qr, m.qrot)
}

func (m *lokiMethod) closedForm(p *plan, add adder) {
	G, D, S, R, e := int64(p.shape.Group()), int64(p.shape.HeadDim), int64(p.shape.Seq), int64(p.spec.R), p.e
	if p.spec.AppendKV {
		add(p.sAppend, m.basis, D*D*e)
	}
	kcols := p.kt
	if kcols < 0 {
		kcols = p.k
	}
	add(m.sApprox, m.basis, D*D*e)
	add(m.sApprox, m.qrot, G*D*e)
	add(m.sApprox, kcols, S*R*e)
	m.proxyTopK.closedForm(p, add, m.qrot)
}
