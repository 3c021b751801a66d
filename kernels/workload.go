package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Workload names a synthetic data source.
type Workload string

// Workloads.
const (
	// Gaussian draws q, K and V independently from N(0, 1), as the paper's
	// microbenchmarks do. Attention over it is diffuse: the hardest case for
	// any sparse method and irrelevant to its accuracy on real models.
	Gaussian Workload = "gaussian"
	// LLMLike reproduces the statistics SparQ relies on (paper §3, App. E):
	//   - heavy-tailed query components: Student-t (ν = 3) draws, excess
	//     kurtosis far above a Gaussian's 0;
	//   - a few outlier channels (D/16) with 4× larger query and key
	//     magnitude, so a few query components carry most of q·k;
	//   - an attention sink: position 0's key aligned with the group's mean
	//     query, taking a large share of the attention mass;
	//   - recency bias: keys of the last ~32 positions pulled towards the
	//     query, decaying exponentially with distance;
	//   - heavy hitters: S/64 random positions aligned with the query;
	//   - values auto-correlated along the sequence (AR(1), ρ = 0.5) around a
	//     per-channel mean, so the mean value v̄ is informative.
	// The bulk of the logits q·k/√D has a standard deviation of about 1.2 (at
	// D = 128), with the sink, recent and heavy-hitter positions standing
	// 2 to 6 above it. Attention is therefore more diffuse than in most heads
	// of trained models: at S = 4096 the best S/16 positions hold about half
	// of the mass, which favours mean-value reallocation over any selection.
	LLMLike Workload = "llm-like"
	// WorkloadDump marks data read from a KV dump (Config.KVDump).
	WorkloadDump Workload = "kv-dump"
)

// ParseWorkload parses a workload name.
func ParseWorkload(s string) (Workload, error) {
	switch Workload(s) {
	case Gaussian, LLMLike:
		return Workload(s), nil
	}
	return "", fmt.Errorf("unknown workload %q (want gaussian or llm-like)", s)
}

// PairData is the data of one (sequence, KV head) pair: the queries of the
// group's g heads and the cache. Values are already rounded to the dtype.
type PairData struct {
	// Q holds the queries of the simulated steps, [steps, g, D]: step t's
	// query is the token at position Seq−1+t. With one step it is [g, D].
	Q []float32
	K []float32 // [Seq+steps−1, D]
	V []float32 // [Seq+steps−1, D]
	// QHist holds the queries of the earlier positions HistPos, ascending
	// ([len(HistPos), g, D]), for methods that replay the prompt (H2O's
	// prefill scores); each stands for HistWeight queries. nil otherwise.
	QHist      []float32
	HistPos    []int32
	HistWeight float32
}

// Generate fills the data of pair (b, hk) for one step deterministically from
// seed: the same seed gives the same pair whatever else is sampled or how
// work is scheduled.
func Generate(w Workload, shape Shape, dt DType, seed uint64, b, hk int) (*PairData, error) {
	return generate(w, shape, dt, seed, b, hk, 1, nil)
}

// generate fills the data of pair (b, hk) for `steps` steps (the cache holds
// Seq+steps−1 positions) and the queries of the earlier positions hist. The
// first step's query and the draws before it do not depend on steps or hist;
// the extra queries are drawn last.
func generate(w Workload, shape Shape, dt DType, seed uint64, b, hk, steps int, hist []int32) (*PairData, error) {
	g, d, s := shape.Group(), shape.HeadDim, shape.Seq+steps-1
	p := &PairData{Q: make([]float32, steps*g*d), K: make([]float32, s*d), V: make([]float32, s*d), HistWeight: 1}
	if len(hist) > 0 {
		p.QHist = make([]float32, len(hist)*g*d)
		p.HistPos = append([]int32(nil), hist...)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(b)<<32|uint64(hk)))
	switch w {
	case Gaussian:
		fillNormal(rng, p.Q[:g*d], 1)
		fillNormal(rng, p.K, 1)
		fillNormal(rng, p.V, 1)
		fillNormal(rng, p.Q[g*d:], 1)
		fillNormal(rng, p.QHist, 1)
	case LLMLike:
		genLLMLike(rng, p, g, d, s)
	default:
		return nil, fmt.Errorf("unknown workload %q", w)
	}
	dt.RoundSlice(p.Q)
	dt.RoundSlice(p.K)
	dt.RoundSlice(p.V)
	dt.RoundSlice(p.QHist)
	return p, nil
}

func fillNormal(rng *rand.Rand, xs []float32, sd float64) {
	for i := range xs {
		xs[i] = float32(rng.NormFloat64() * sd)
	}
}

// studentT3 draws from Student's t with 3 degrees of freedom scaled to unit
// variance (the raw variance is 3).
func studentT3(rng *rand.Rand) float64 {
	z := rng.NormFloat64()
	var chi2 float64
	for range 3 {
		x := rng.NormFloat64()
		chi2 += x * x
	}
	return z / math.Sqrt(chi2/3) / math.Sqrt(3)
}

func genLLMLike(rng *rand.Rand, p *PairData, g, d, s int) {
	// Channel scales: D/16 outlier channels at 4×.
	scale := make([]float64, d)
	for j := range scale {
		scale[j] = 1
	}
	nOut := max(1, d/16)
	for _, j := range rng.Perm(d)[:nOut] {
		scale[j] = 4
	}
	// Queries: heavy-tailed components, shared outlier channels. The common
	// part makes the heads of a group attend to similar positions.
	common := make([]float64, d)
	for j := range common {
		common[j] = studentT3(rng)
	}
	const qGain = 0.55
	mean := make([]float64, d)
	own := make([]float64, g*d) // each head's part of the first query
	for h := range g {
		for j := range d {
			own[h*d+j] = studentT3(rng)
			v := scale[j] * qGain * (0.7*common[j] + 0.7*own[h*d+j])
			p.Q[h*d+j] = float32(v)
			mean[j] += v / float64(g)
		}
	}
	// Unit vector along the group's mean query, pre-divided by the channel
	// scale so that aligning a key with it raises its logit by a known amount.
	var norm float64
	for j := range mean {
		norm += mean[j] * mean[j]
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		norm = 1
	}
	dir := make([]float64, d)
	for j := range dir {
		dir[j] = mean[j] / norm
	}
	sqrtD := math.Sqrt(float64(d))
	for i := range s {
		row := p.K[i*d : (i+1)*d]
		for j := range row {
			row[j] = float32(scale[j] * 0.55 * rng.NormFloat64())
		}
	}
	// align adds gain·√D·dir/‖q̄‖ to key i: its logit against the mean query
	// rises by about gain.
	align := func(i int, gain float64) {
		row := p.K[i*d : (i+1)*d]
		for j := range row {
			row[j] += float32(gain * sqrtD * dir[j] / norm)
		}
	}
	align(0, 6) // attention sink
	for t := range min(s, 128) {
		align(s-1-t, 3*math.Exp(-float64(t)/32)) // recency
	}
	for range max(1, s/64) {
		align(rng.IntN(s), 2+2*rng.Float64()) // heavy hitters
	}
	// Values: AR(1) along the sequence around a per-channel mean.
	vmean := make([]float64, d)
	for j := range vmean {
		vmean[j] = 0.5 * rng.NormFloat64()
	}
	const rho = 0.5
	innov := math.Sqrt(1 - rho*rho)
	prev := make([]float64, d)
	for i := range s {
		for j := range d {
			x := rho*prev[j] + innov*rng.NormFloat64()
			prev[j] = x
			p.V[i*d+j] = float32(vmean[j] + x)
		}
	}
	// Queries of the other positions: later steps, then the prompt's.
	const rhoQ = 0.8
	fresh := math.Sqrt(1 - rhoQ*rhoQ)
	for _, qs := range [][]float32{p.Q[g*d:], p.QHist} {
		for i := 0; i < len(qs); i += g * d {
			for h := range g {
				for j := range d {
					part := rhoQ*own[h*d+j] + fresh*studentT3(rng)
					qs[i+h*d+j] = float32(scale[j] * qGain * (0.7*common[j] + 0.7*part))
				}
			}
		}
	}
}
