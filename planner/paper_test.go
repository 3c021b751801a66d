package planner

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/sweep"
)

// paperPoint is one published end-to-end measurement of the SparQ paper
// (shared/reference/sparq.md §4.4, §4.5): seconds per token where
// published, and the speed-up.
type paperPoint struct {
	seq                 int
	dense, sparq, speed float64
}

// endToEnd plans dense and a sparse method at batch 1 and returns the
// predicted seconds per token of both, the predicted speed-up and the
// ideal (bytes at peak bandwidth) speed-up.
func endToEnd(t *testing.T, req Request, sparse sweep.MethodSpec) (dense, sparq, speedup, ideal float64) {
	t.Helper()
	req.Methods = []sweep.MethodSpec{{Name: kernels.MethodDense}, sparse}
	p, err := Plan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	d, s := p.Plans[0], p.Plans[1]
	return d.SecondsPerToken, s.SecondsPerToken, d.SecondsPerToken / s.SecondsPerToken, d.IdealSecondsPerToken / s.IdealSecondsPerToken
}

// TestPaperEndToEndCPU models the paper's llama.cpp run (Fig. 9, sparq.md
// §4.4): Llama 2 7B with Q8_0 weights and an fp16 KV cache, batch 1, on an
// AMD EPYC host (docs/devices/epyc-7763.yaml); dense llama.cpp attention
// (unfused graph nodes) against the SparQ fork's single fused operator
// with r = d_h/12, k = S/12, K stored twice and no v̄ (the fork has none).
// Measured speed-ups fall short of the transfer model at long contexts;
// the prediction must stay an upper bound within 2× of them, and dense
// must stay within 20% of the measured absolute times (the runs imply
// 180-190 GB/s of DRAM bandwidth, above the device file's 0.8 × peak).
func TestPaperEndToEndCPU(t *testing.T) {
	t.Parallel()
	m, dev := load(t, "llama-2-7b", "epyc-7763")
	measured := []paperPoint{
		{4096, 0.0540, 0.0475, 1.14}, {8192, 0.0655, 0.0518, 1.26}, {16384, 0.0853, 0.0543, 1.57},
		{32768, 0.1293, 0.0747, 1.73}, {65536, 0.2195, 0.1067, 2.06}, {131072, 0.4269, 0.1680, 2.54},
	}
	var table strings.Builder
	table.WriteString("| S | dense s/token measured | predicted | SparQ s/token measured | predicted | speed-up measured | predicted | error | ideal |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, pt := range measured {
		sparse := sweep.MethodSpec{Name: kernels.MethodSparQ, R: int(math.Round(128.0 / 12)), K: int(math.Round(float64(pt.seq) / 12)),
			KLayout: kernels.KTwice, Impl: kernels.Fused, NoRealloc: true}
		req := Request{PlanSpec: roofline.PlanSpec{Model: m, Device: dev, Devices: 1, Seq: pt.seq, Batch: 1, WeightDType: "q8_0", KVDType: "fp16",
			Reserve: roofline.DefaultReserve, KernelsPerLayer: roofline.DefaultKernelsPerLayer}}
		d, s, speed, ideal := endToEnd(t, req, sparse)
		e := speed/pt.speed - 1
		fmt.Fprintf(&table, "| %dK | %.4f | %.4f | %.4f | %.4f | %.2f× | %.2f× | %+.0f%% | %.2f× |\n", pt.seq/1024, pt.dense, d, pt.sparq, s, pt.speed, speed, 100*e, ideal)
		if de := d/pt.dense - 1; math.Abs(de) > 0.20 {
			t.Errorf("S=%d: dense %.4f s/token predicted, %.4f measured (%+.0f%%)", pt.seq, d, pt.dense, 100*de)
		}
		if speed < pt.speed*0.95 || speed > 2*pt.speed {
			t.Errorf("S=%d: speed-up %.2f× predicted, %.2f× measured", pt.seq, speed, pt.speed)
		}
	}
	t.Logf("llama.cpp, Llama 2 7B Q8_0, EPYC 7763, batch 1:\n%s", table.String())
}

// TestPaperEndToEndH100 models the paper's gpt-fast run (Fig. 10, sparq.md
// §4.5): Llama 2 7B in bf16 (weights and KV), batch 1, one H100 PCIe;
// dense through SDPA's math backend (unfused: scores, softmax, weighted
// sum) against compiled PyTorch SparQ at compression 1/8 (r = 16,
// k = S/16, K stored twice, running v̄). Compiled kernels tile the
// sequence, so the default pricing applies. SparQ's time per token must be
// within 20% of the measured one and the speed-up within 30%: dense is
// predicted 21-40% fast. PyTorch's math backend writes copies of q, K and V
// (torch 2.11 casts them to fp32 and scales a copy of K:
// validation/h100-kernels.csv), and which copies the gpt-fast run's
// PyTorch made is not stated, so dense is priced without them. (The
// speed-up was within 20% while top-k was priced as a floor plus a rate,
// which underpriced SparQ; validation/NOTES.md.) With the kernels' own work
// units (one program per (sequence, head)) SparQ is predicted slower than
// dense at batch 1; both are logged.
func TestPaperEndToEndH100(t *testing.T) {
	t.Parallel()
	m, dev := load(t, "llama-2-7b", "h100-pcie")
	measured := []paperPoint{
		{4096, 0.0118, 0.0119, 0.99}, {8192, 0.0145, 0.0132, 1.09}, {16384, 0.0185, 0.0142, 1.31},
		{32768, 0.0288, 0.0172, 1.68}, {45000, 0, 0, 1.88},
	}
	ratio := sweep.MethodSpec{Name: kernels.MethodSparQ, Ratio: 1.0 / 8}
	var table strings.Builder
	table.WriteString("| S | dense ms/token measured | predicted | SparQ ms/token measured | predicted | speed-up measured | predicted | error | per-pair programs | error | ideal |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pt := range measured {
		req := Request{PlanSpec: roofline.PlanSpec{Model: m, Device: dev, Devices: 1, Seq: pt.seq, Batch: 1, WeightDType: "bf16", KVDType: "bf16",
			Reserve: roofline.DefaultReserve, KernelsPerLayer: roofline.DefaultKernelsPerLayer}}
		d, s, speed, ideal := endToEnd(t, req, ratio)
		req.KernelWorkUnits = true
		_, _, perPair, _ := endToEnd(t, req, ratio)
		e, ep := speed/pt.speed-1, perPair/pt.speed-1
		ms := func(x float64) string {
			if x == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f", 1e3*x)
		}
		fmt.Fprintf(&table, "| %d | %s | %.1f | %s | %.1f | %.2f× | %.2f× | %+.0f%% | %.2f× | %+.0f%% | %.2f× |\n",
			pt.seq, ms(pt.dense), 1e3*d, ms(pt.sparq), 1e3*s, pt.speed, speed, 100*e, perPair, 100*ep, ideal)
		if math.Abs(e) > 0.30 {
			t.Errorf("S=%d: speed-up %.2f× predicted, %.2f× measured (%+.0f%%)", pt.seq, speed, pt.speed, 100*e)
		}
		if se := s/pt.sparq - 1; pt.sparq > 0 && math.Abs(se) > 0.20 {
			t.Errorf("S=%d: SparQ %.1f ms/token predicted, %.1f measured (%+.0f%%)", pt.seq, 1e3*s, 1e3*pt.sparq, 100*se)
		}
		if perPair >= speed {
			t.Errorf("S=%d: one program per pair (%.2f×) should be slower than tiled (%.2f×)", pt.seq, perPair, speed)
		}
	}
	t.Logf("gpt-fast, Llama 2 7B bf16, H100 PCIe, batch 1 (absolute times read from the [GF] plot, ±0.5 ms):\n%s", table.String())
}
