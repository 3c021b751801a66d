package kernels

import (
	"math"
	"slices"
	"sort"

	"github.com/x448/float16"
)

// Float64 references of the sparse methods, written from the papers and the
// method definitions independently of the kernels: plain loops, full sorts,
// their own eigen-solver, no package helpers beyond DType.Round (the
// definition of the target's storage).
//
// Every reference returns, for one pair and one step, the selected units
// (positions, or pages for Quest) with the scores that ranked them, so that a
// test can tell a legitimate near-tie swap from a bug, and takes a forced
// selection to check the exact part on the kernel's choice.

// refResult is one pair's step.
type refResult struct {
	units  []int     // selected units (positions, Quest's pages), ascending
	scores []float64 // the ranking score of every unit (nil: static pattern)
	pos    []int     // positions attended, ascending
	out    [][]float64
	alpha  []float64 // nil without reallocation
}

// refCtx is the data of one pair at one step, in float64.
type refCtx struct {
	g, d, s int
	q       [][]float64 // [g][D]: this step's queries
	k, v    []float32   // the caches (at least s rows)
	kf, vf  [][]float64 // the first s rows in float64
	dt      DType
}

func newRefCtx(d *PairData, g, D, S, step int, dt DType) refCtx {
	c := refCtx{g: g, d: D, s: S, k: d.K, v: d.V, dt: dt, kf: refRows(d.K, D, S), vf: refRows(d.V, D, S)}
	for h := range g {
		c.q = append(c.q, refRow(d.Q, step*g+h, D))
	}
	return c
}

// refRows converts the first n rows of m to float64.
func refRows(m []float32, d, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = refRow(m, i, d)
	}
	return out
}

// probs are the exact attention probabilities of head h over all S.
func (c refCtx) probs(h int) []float64 {
	l := make([]float64, c.s)
	for i := range c.s {
		l[i] = refDot(c.q[h], c.kf[i]) / math.Sqrt(float64(c.d))
	}
	return refSoftmax(l)
}

// vbar is the mean of V over the S positions.
func (c refCtx) vbar() []float64 {
	out := make([]float64, c.d)
	for i := range c.s {
		for j := range c.d {
			out[j] += float64(c.v[i*c.d+j]) / float64(c.s)
		}
	}
	return out
}

// attend runs exact attention of every head over positions.
func (c refCtx) attend(pos []int) [][]float64 {
	var out [][]float64
	for h := range c.g {
		logits := make([]float64, len(pos))
		for n, i := range pos {
			logits[n] = refDot(c.q[h], c.kf[i]) / math.Sqrt(float64(c.d))
		}
		o := make([]float64, c.d)
		for n, p := range refSoftmax(logits) {
			for j, x := range c.vf[pos[n]] {
				o[j] += p * x
			}
		}
		out = append(out, o)
	}
	return out
}

// groupTop ranks units by the group sum of per-head scores and returns the
// n best, ascending, with the group scores.
func groupTop(per [][]float64, cand []int, n int) ([]int, []float64) {
	group := make([]float64, len(per[0]))
	for _, row := range per {
		for i, x := range row {
			group[i] += x
		}
	}
	sel := argTop(group, cand, n)
	sort.Ints(sel)
	return sel, group
}

// refOracle is topk (renorm, optional reallocation) or flexgen.
func refOracle(c refCtx, k int, renorm, realloc bool, force []int) refResult {
	per := make([][]float64, c.g)
	for h := range c.g {
		per[h] = c.probs(h)
	}
	sel, group := groupTop(per, allRows(c.s), k)
	if force != nil {
		sel = force
	}
	r := refResult{units: sel, scores: group, pos: sel}
	if !renorm {
		for h := range c.g {
			o := make([]float64, c.d)
			for _, i := range sel {
				for j, x := range c.vf[i] {
					o[j] += per[h][i] * x
				}
			}
			r.out = append(r.out, o)
		}
		return r
	}
	r.out = c.attend(sel)
	if realloc {
		vb := c.vbar()
		for h := range c.g {
			a := 1.0
			if k < c.s {
				a = 0
				for _, i := range sel {
					a += per[h][i]
				}
			}
			for j := range r.out[h] {
				r.out[h][j] = a*r.out[h][j] + (1-a)*vb[j]
			}
			r.alpha = append(r.alpha, a)
		}
	}
	return r
}

// refWindow is StreamingLLM / LM-Infinite.
func refWindow(c refCtx, k, sinks int) refResult {
	var pos []int
	for i := range c.s {
		if k >= c.s || i < min(sinks, k) || i >= c.s-(k-min(sinks, k)) {
			pos = append(pos, i)
		}
	}
	return refResult{units: pos, pos: pos, out: c.attend(pos)}
}

// refQuest is Quest with pages of P tokens and the current page forced.
func refQuest(c refCtx, k, P int, force []int) refResult {
	np := (c.s + P - 1) / P
	per := make([][]float64, c.g)
	for h := range c.g {
		per[h] = make([]float64, np)
		for pg := range np {
			var b float64
			for j := range c.d {
				mn, mx := math.Inf(1), math.Inf(-1)
				for i := pg * P; i < min((pg+1)*P, c.s); i++ {
					x := float64(c.k[i*c.d+j])
					mn, mx = math.Min(mn, x), math.Max(mx, x)
				}
				b += math.Max(c.q[h][j]*mn, c.q[h][j]*mx)
			}
			per[h][pg] = b / math.Sqrt(float64(c.d))
		}
	}
	// Pages that fit the budget once the last (possibly partial) page is in.
	var pages []int
	var group []float64
	if k >= c.s {
		pages = allRows(np)
	} else {
		last := c.s - (np-1)*P
		more := (k - last) / P
		pages, group = groupTop(per, allRows(np-1), more)
		pages = append(pages, np-1)
	}
	if force != nil {
		pages = force
	}
	var pos []int
	for _, pg := range pages {
		for i := pg * P; i < min((pg+1)*P, c.s); i++ {
			pos = append(pos, i)
		}
	}
	if group == nil {
		group = make([]float64, np)
	}
	return refResult{units: pages, scores: group, pos: pos, out: c.attend(pos)}
}

// refSymEigen diagonalises a symmetric matrix with cyclic Jacobi rotations
// and returns its eigenvalues and eigenvectors (as columns).
func refSymEigen(a [][]float64) ([]float64, [][]float64) {
	n := len(a)
	m := make([]float64, n*n) // row-major, kept symmetric
	v := make([]float64, n*n) // rows are the eigenvectors
	for i := range n {
		copy(m[i*n:(i+1)*n], a[i])
		v[i*n+i] = 1
	}
	for range 100 {
		var off, diag float64
		for i := range n {
			for j := range n {
				if i != j {
					off += m[i*n+j] * m[i*n+j]
				} else {
					diag += m[i*n+j] * m[i*n+j]
				}
			}
		}
		if off <= 1e-28*diag {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := m[p*n+q]
				if apq == 0 {
					continue
				}
				app, aqq := m[p*n+p], m[q*n+q]
				theta := (aqq - app) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				cs := 1 / math.Sqrt(t*t+1)
				sn := t * cs
				rp, rq := m[p*n:(p+1)*n], m[q*n:(q+1)*n]
				for i := range n {
					x, y := rp[i], rq[i]
					rp[i], rq[i] = cs*x-sn*y, sn*x+cs*y
				}
				for i := range n {
					m[i*n+p], m[i*n+q] = rp[i], rq[i]
				}
				m[p*n+p] = app - t*apq
				m[q*n+q] = aqq + t*apq
				m[p*n+q], m[q*n+p] = 0, 0
				vp, vq := v[p*n:(p+1)*n], v[q*n:(q+1)*n]
				for i := range n {
					x, y := vp[i], vq[i]
					vp[i], vq[i] = cs*x-sn*y, sn*x+cs*y
				}
			}
		}
	}
	vals := make([]float64, n)
	vecs := make([][]float64, n)
	for i := range n {
		vals[i] = m[i*n+i]
		vecs[i] = make([]float64, n)
	}
	for c := range n {
		for j := range n {
			vecs[j][c] = v[c*n+j]
		}
	}
	return vals, vecs
}

// refLokiBasis is the PCA basis of the keys' second moment over the first
// ⌈S₀/2⌉ positions, components as rows by descending eigenvalue, each with
// its largest-magnitude entry positive.
func refLokiBasis(k []float32, d, s0 int) [][]float64 {
	n := max(1, (s0+1)/2)
	m := make([][]float64, d)
	for a := range d {
		m[a] = make([]float64, d)
		for b := range d {
			for i := range n {
				m[a][b] += float64(k[i*d+a]) * float64(k[i*d+b])
			}
		}
	}
	vals, vecs := refSymEigen(m)
	order := allRows(d)
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	basis := make([][]float64, d)
	for c, col := range order {
		row := make([]float64, d)
		big := 0
		for j := range d {
			row[j] = vecs[j][col]
			if math.Abs(row[j]) > math.Abs(row[big]) {
				big = j
			}
		}
		if row[big] < 0 {
			for j := range row {
				row[j] = -row[j]
			}
		}
		basis[c] = row
	}
	return basis
}

// refLoki scores with the first r components of the rotated query and keys,
// then attends the top k with all components. Keys are stored rotated in the
// dtype, with the basis stored in the dtype too.
func refLoki(c refCtx, s0, k, r int, force []int) refResult {
	basis := make([][]float64, c.d)
	for i, row := range cachedLokiBasis(c.k, c.d, s0) {
		basis[i] = make([]float64, c.d)
		for j, x := range row {
			basis[i][j] = float64(c.dt.Round(float32(x)))
		}
	}
	rot := func(x []float64) []float64 {
		out := make([]float64, c.d)
		for comp := range c.d {
			out[comp] = refDot(basis[comp], x)
		}
		return out
	}
	krot := make([][]float64, c.s)
	for i := range c.s {
		kr := rot(c.kf[i])
		for j := range kr {
			kr[j] = float64(c.dt.Round(float32(kr[j])))
		}
		krot[i] = kr
	}
	per := make([][]float64, c.g)
	qr := make([][]float64, c.g)
	for h := range c.g {
		qr[h] = rot(c.q[h])
		per[h] = make([]float64, c.s)
		for i := range c.s {
			per[h][i] = refDot(qr[h][:r], krot[i][:r]) / math.Sqrt(float64(c.d))
		}
	}
	sel, group := groupTop(per, allRows(c.s), k)
	if force != nil {
		sel = force
	}
	res := refResult{units: sel, scores: group, pos: sel}
	for h := range c.g {
		logits := make([]float64, len(sel))
		for n, i := range sel {
			logits[n] = refDot(qr[h], krot[i]) / math.Sqrt(float64(c.d))
		}
		p := refSoftmax(logits)
		o := make([]float64, c.d)
		for n, i := range sel {
			for j, x := range c.vf[i] {
				o[j] += p[n] * x
			}
		}
		res.out = append(res.out, o)
	}
	return res
}

// refDoubleSparse scores with r static channels of the keys (largest energy
// over the first ⌈S₀/2⌉ positions), stored as b-bit labels.
func refDoubleSparse(c refCtx, s0, k, r, bits int, force []int) refResult {
	n := max(1, (s0+1)/2)
	energy := make([]float64, c.d)
	rng := make([]float64, c.d)
	for i := range n {
		for j := range c.d {
			x := float64(c.k[i*c.d+j])
			energy[j] += x * x
			rng[j] = math.Max(rng[j], math.Abs(x))
		}
	}
	ch := argTop(energy, allRows(c.d), r)
	sort.Ints(ch)
	label := func(x float64, j int) float64 {
		if bits == 16 {
			return float64(float16.Fromfloat32(float32(x)).Float32())
		}
		levels := math.Pow(2, float64(bits))
		step := 2 * float64(float32(rng[j])) / levels
		if step == 0 {
			return 0
		}
		code := math.Max(-levels/2, math.Min(levels/2-1, math.Floor(x/step)))
		return (code + 0.5) * step
	}
	per := make([][]float64, c.g)
	for h := range c.g {
		per[h] = make([]float64, c.s)
		for i := range c.s {
			var acc float64
			for _, j := range ch {
				acc += c.q[h][j] * label(float64(c.k[i*c.d+j]), j)
			}
			per[h][i] = acc / math.Sqrt(float64(c.d))
		}
	}
	sel, group := groupTop(per, allRows(c.s), k)
	if force != nil {
		sel = force
	}
	return refResult{units: sel, scores: group, pos: sel, out: c.attend(sel)}
}

// refH2O runs H2O over a whole decode: the prefill's column sums of dense
// causal attention (from the prompt queries the data hold, each standing for
// HistWeight), the k best prompt positions kept with the l = k/4 most recent
// forced, then per step: the new token replaces the victim, attention over
// the kept set, scores accumulate, the lowest-scoring position older than
// the l most recent becomes the next victim. follow, when not nil, gives the
// kernel's kept set per step: where it differs from the reference's only by
// near-tied positions the reference adopts it (and reports it in tied).
func refH2O(d *PairData, g, D, s0, steps, k int, dt DType, follow func(step int) []int) (res []refResult, tied int, err string) {
	l := k / 4
	nPre := s0 - 1
	score := make([]float64, s0+steps)
	kf := refRows(d.K, D, s0+steps-1)
	for t, pos := range d.HistPos {
		n := int(pos) + 1
		for h := range g {
			q := refRow(d.QHist, t*g+h, D)
			lg := make([]float64, n)
			for i := range n {
				lg[i] = refDot(q, kf[i]) / math.Sqrt(float64(D))
			}
			for i, p := range refSoftmax(lg) {
				score[i] += float64(d.HistWeight) * p
			}
		}
	}
	var kept []int
	if nPre <= k {
		kept = allRows(nPre)
	} else {
		kept = argTop(score, allRows(nPre-l), k-l)
		for i := nPre - l; i < nPre; i++ {
			kept = append(kept, i)
		}
	}
	victim := func(S int) int {
		best := -1
		for _, p := range kept {
			if p >= S-l {
				continue
			}
			if best < 0 || score[p] < score[best] || (score[p] == score[best] && p < best) {
				best = p
			}
		}
		return best
	}
	for t := range steps {
		S := s0 + t
		if len(kept) == k {
			v := victim(S - 1)
			kept = slices.DeleteFunc(kept, func(p int) bool { return p == v })
		}
		kept = append(kept, S-1)
		sort.Ints(kept)
		if follow != nil {
			if got := follow(t); !slices.Equal(got, kept) {
				if !nearTie(score, got, kept, 1e-4) {
					return res, tied, "kept sets differ beyond a near tie"
				}
				tied++
				kept = got
			}
		}
		c := newRefCtx(d, g, D, S, t, dt)
		r := refResult{units: slices.Clone(kept), scores: score, pos: slices.Clone(kept), out: c.attend(kept)}
		res = append(res, r)
		for h := range g {
			lg := make([]float64, len(kept))
			for n, i := range kept {
				lg[n] = refDot(c.q[h], kf[i]) / math.Sqrt(float64(D))
			}
			for n, p := range refSoftmax(lg) {
				score[kept[n]] += p
			}
		}
	}
	return res, tied, ""
}
