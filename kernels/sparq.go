package kernels

import (
	"math"

	"github.com/bwsim/bwsim/traces"
)

// sparq runs SparQ Attention (Ribar et al. 2024, Algorithm 1) for one pair,
// following the authors' evaluation code:
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
// attention. Unfused, the stages hand i1, the approximate logits, i2, α and
// the exact logits through device memory, each rounded to its stored type;
// fused, one stage keeps them on chip in fp32.
func (p *plan) sparq(d *PairData, kt []float32, vmean []float32, ref pairRefs, buf func(int) *traces.Buf, sc *scratch, out *PairOutput) {
	g, D, S := p.shape.Group(), p.shape.HeadDim, p.shape.Seq
	r, k := p.spec.R, p.spec.K
	e := p.e
	G, D64, S64, R64, K64 := int64(g), int64(D), int64(S), int64(r), int64(k)
	fused := p.spec.Impl == Fused
	realloc := !p.spec.NoReallocation
	stage := func(unfused int) *traces.Buf {
		if fused {
			return buf(p.sSparQFuse)
		}
		return buf(unfused)
	}
	store := func(x float32) float32 { // rounding of a value handed through memory
		if fused {
			return x
		}
		return p.dt.Round(x)
	}

	// Step 1: top-r of the group's summed |q|.
	bf := stage(p.sTopR)
	bf.Read(p.q, ref.q, G*D64*e)
	absSum := sc.sum[:D]
	clear(absSum)
	for h := range g {
		for j, x := range d.Q[h*D : (h+1)*D] {
			absSum[j] += float32(math.Abs(float64(x)))
		}
	}
	i1 := topK(absSum, r, sc.idx, sc.perm)
	i1 = append([]int32(nil), i1...)
	if !fused {
		bf.Write(p.i1, ref.i1, R64*IndexBytes)
	}
	bf.Arith(traces.Arith{Elementwise: G * D64, Compares: D64 * log2Ceil(r)})

	// Step 2: approximate logits from r components of every key.
	bf = stage(p.sApprox)
	if !fused {
		bf.Read(p.i1, ref.i1, R64*IndexBytes)
		bf.Read(p.q, ref.q, G*D64*e)
	}
	lh := sc.rows[:g*S]
	clear(lh)
	invTau := make([]float32, g)
	for h := range g {
		q := d.Q[h*D : (h+1)*D]
		var l1, l1sel float64
		for _, x := range q {
			l1 += math.Abs(float64(x))
		}
		for _, j := range i1 {
			l1sel += math.Abs(float64(q[j]))
		}
		invTau[h] = 1
		if l1 > 0 && l1sel > 0 {
			invTau[h] = float32(1 / math.Sqrt(float64(D)*l1sel/l1))
		}
	}
	if kt != nil {
		// K stored twice: each selected component is one contiguous row of Kt.
		for _, j := range i1 {
			bf.Read(p.kt, ref.kv+int64(j)*S64*e, S64*e)
			ktRow := kt[int(j)*S : (int(j)+1)*S]
			for h := range g {
				axpy(d.Q[h*D+int(j)], ktRow, lh[h*S:(h+1)*S])
			}
		}
	} else {
		// K stored once: r scattered components of every row.
		for _, j := range i1 {
			bf.Strided(traces.Read, p.k, ref.kv+int64(j)*e, e, D64*e, S64)
		}
		for i := range S {
			krow := d.K[i*D : (i+1)*D]
			for h := range g {
				q := d.Q[h*D : (h+1)*D]
				var acc float32
				for _, j := range i1 {
					acc += q[j] * krow[j]
				}
				lh[h*S+i] = acc
			}
		}
	}
	for h := range g {
		row := lh[h*S : (h+1)*S]
		for i := range row {
			row[i] = store(row[i] * invTau[h])
		}
	}
	if !fused {
		bf.Write(p.logitsHat, ref.rows, G*S64*e)
	}
	bf.Arith(traces.Arith{MACs: G * S64 * R64, Elementwise: G*S64 + 2*G*D64})

	// Step 3: softmax, local window and top-k of the group-summed logits.
	bf = stage(p.sSoftTopK)
	if !fused {
		bf.Read(p.logitsHat, ref.rows, G*S64*e)
	}
	var i2 []int32
	if k >= S {
		i2 = make([]int32, S)
		for i := range i2 {
			i2[i] = int32(i)
		}
	} else {
		l := p.spec.LocalWindow()
		cand := S - l // positions [0, cand) compete; [cand, S) are forced
		sum := sc.sum[:cand]
		copy(sum, lh[:cand])
		for h := 1; h < g; h++ {
			for i, x := range lh[h*S : h*S+cand] {
				sum[i] += x
			}
		}
		sel := topK(sum, k-l, sc.idx, sc.perm)
		i2 = make([]int32, 0, k)
		i2 = append(i2, sel...)
		for i := cand; i < S; i++ {
			i2 = append(i2, int32(i))
		}
	}
	alpha := make([]float32, g)
	for h := range g {
		row := lh[h*S : (h+1)*S]
		softmax(row) // ŝ, unboosted: the window only forces selection
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
	if !fused {
		bf.Write(p.i2, ref.i2, K64*IndexBytes)
		bf.Write(p.alpha, ref.alpha, G*4)
	}
	bf.Arith(traces.Arith{Exps: G * S64, Compares: S64*log2Ceil(k) + G*S64, Elementwise: 3*G*S64 + (G-1)*S64 + G*K64})

	// Step 4: exact logits over the k selected rows of K.
	bf = stage(p.sExact)
	if !fused {
		bf.Read(p.i2, ref.i2, K64*IndexBytes)
		bf.Read(p.q, ref.q, G*D64*e)
	}
	scale := invSqrt(D64)
	logit := sc.logitK[:g*len(i2)]
	n := len(i2)
	for c, i := range i2 {
		bf.Read(p.k, ref.kv+int64(i)*D64*e, D64*e)
		krow := d.K[int(i)*D : (int(i)+1)*D]
		for h := range g {
			logit[h*n+c] = store(dot(d.Q[h*D:(h+1)*D], krow) * scale)
		}
	}
	if !fused {
		bf.Write(p.logit, ref.logit, G*K64*e)
	}
	bf.Arith(traces.Arith{MACs: G * K64 * D64, Elementwise: G * K64})

	// Step 5: softmax over the k logits, weighted sum of V rows, blend with v̄.
	bf = stage(p.sWSum)
	if !fused {
		bf.Read(p.logit, ref.logit, G*K64*e)
		bf.Read(p.i2, ref.i2, K64*IndexBytes)
	}
	for h := range g {
		softmax(logit[h*n : (h+1)*n])
	}
	acc := out.Out
	clear(acc)
	for c, i := range i2 {
		bf.Read(p.v, ref.kv+int64(i)*D64*e, D64*e)
		vrow := d.V[int(i)*D : (int(i)+1)*D]
		for h := range g {
			axpy(logit[h*n+c], vrow, acc[h*D:(h+1)*D])
		}
	}
	if realloc {
		bf.Read(p.vmean, ref.vmean, D64*4)
		if !fused {
			bf.Read(p.alpha, ref.alpha, G*4)
		}
		for h := range g {
			a := alpha[h]
			o := acc[h*D : (h+1)*D]
			for j := range o {
				o[j] = a*o[j] + (1-a)*vmean[j]
			}
		}
	}
	p.dt.RoundSlice(acc)
	bf.Write(p.out, ref.out, G*D64*e)
	bf.Arith(traces.Arith{Exps: G * K64, MACs: G * K64 * D64, Elementwise: 3*G*K64 + 3*G*D64})

	out.Selected = i2
	out.Alpha = alpha
}
