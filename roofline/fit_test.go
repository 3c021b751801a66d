package roofline

import (
	"math"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/internal/devtest"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

var streamingKV = Options{Placement: map[traces.Role]string{traces.RoleKVCache: "streaming"}}

// The fit recovers the figures a set of calls was priced with: predictions
// on a device with known streaming figures, taken as measurements, fitted
// from a device whose figures are wrong.
func TestFitLevelRecoversTheFiguresCallsWerePricedWith(t *testing.T) {
	truth := devtest.IPU()
	st := truth.Levels["streaming"]
	st.DMA, st.AchievableBandwidth, st.TransferOverheadSeconds = true, 5.5e9, 40e-6
	truth.Levels["streaming"] = st
	guess := devtest.IPU()
	st.AchievableBandwidth, st.TransferOverheadSeconds = 9e9, 300e-6
	guess.Levels["streaming"] = st

	var samples []LevelSample
	for _, c := range []struct {
		batch, seq int
		spec       kernels.Spec
	}{
		{1, 256, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused}},
		{1, 2048, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused}},
		{4, 1024, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused}},
		{2, 4096, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused}},
	} {
		tr := trace(t, kernels.Shape{Batch: c.batch, Heads: 8, KVHeads: 8, HeadDim: 64, Seq: c.seq}, c.spec)
		measured, err := Predict(tr, truth, streamingKV)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Predict(tr, guess, streamingKV)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewLevelSample("case", measured.Seconds, p, guess, "streaming")
		if err != nil {
			t.Fatal(err)
		}
		// The split is exact at the figures it was taken with.
		back := s.OtherSeconds + float64(s.Transfers)*st.TransferOverheadSeconds + float64(s.MovedBytes)/st.AchievableBandwidth
		if math.Abs(back-p.Seconds) > 1e-12*p.Seconds {
			t.Fatalf("B %d S %d: sample rebuilds %.9g s, prediction is %.9g s", c.batch, c.seq, back, p.Seconds)
		}
		samples = append(samples, s)
	}
	f, err := FitLevel(samples)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.Bandwidth/5.5e9-1) > 1e-9 || math.Abs(f.TransferOverheadSeconds/40e-6-1) > 1e-9 {
		t.Errorf("fit %.6g B/s, %.6g s per transfer; want 5.5e9, 4e-05", f.Bandwidth, f.TransferOverheadSeconds)
	}
	for i, e := range f.RelErrors {
		if math.Abs(e) > 1e-9 {
			t.Errorf("sample %d: residual %.3g, want 0", i, e)
		}
	}
}

func TestFitLevel(t *testing.T) {
	const bw, ovh = 8e9, 50e-6
	at := func(bytes int64, transfers int, other float64) LevelSample {
		return LevelSample{MeasuredSeconds: other + float64(transfers)*ovh + float64(bytes)/bw,
			MovedBytes: bytes, Transfers: transfers, OtherSeconds: other}
	}
	for _, c := range []struct {
		name          string
		samples       []LevelSample
		bw, ovh       float64
		errorContains string
	}{
		{name: "exact", samples: []LevelSample{at(1e6, 2, 0), at(1e8, 2, 1e-5), at(1e7, 3, 0)}, bw: bw, ovh: ovh},
		// Proportional transfers and bytes cannot separate the two: the
		// bandwidth alone takes the time.
		{name: "collinear", samples: []LevelSample{
			{MeasuredSeconds: 1e-3, MovedBytes: 1e6, Transfers: 1},
			{MeasuredSeconds: 2e-3, MovedBytes: 2e6, Transfers: 2}}, bw: 1e9},
		// Calls that take less than their bytes at any overhead: clamp
		// the overhead, refit the bandwidth.
		{name: "negative overhead", samples: []LevelSample{
			{MeasuredSeconds: 1e-3, MovedBytes: 1e6, Transfers: 2},
			{MeasuredSeconds: 1.5e-2, MovedBytes: 1e7, Transfers: 2}}, bw: 0},
		{name: "one sample", samples: []LevelSample{at(1e6, 2, 0)}, errorContains: "at least 2"},
		{name: "no transfer time", samples: []LevelSample{
			{MeasuredSeconds: 1e-3, MovedBytes: 1e6, Transfers: 1, OtherSeconds: 2e-3},
			{MeasuredSeconds: 2e-3, MovedBytes: 3e6, Transfers: 1, OtherSeconds: 4e-3}}, errorContains: "no positive bandwidth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := FitLevel(c.samples)
			if c.errorContains != "" {
				if err == nil || !strings.Contains(err.Error(), c.errorContains) {
					t.Fatalf("err %v, want one containing %q", err, c.errorContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.TransferOverheadSeconds < 0 {
				t.Errorf("overhead %.3g s: must not be negative", f.TransferOverheadSeconds)
			}
			if c.bw > 0 && (math.Abs(f.Bandwidth/c.bw-1) > 1e-9 || math.Abs(f.TransferOverheadSeconds-c.ovh) > 1e-12) {
				t.Errorf("fit %.6g B/s, %.6g s; want %.6g, %.6g", f.Bandwidth, f.TransferOverheadSeconds, c.bw, c.ovh)
			}
			if c.bw == 0 {
				// Clamped: bandwidth is the relative-LSQ slope through zero.
				var sab, saa float64
				for _, s := range c.samples {
					b := float64(s.MovedBytes) / s.MeasuredSeconds
					sab, saa = sab+b, saa+b*b
				}
				if want := saa / sab; f.TransferOverheadSeconds != 0 || math.Abs(f.Bandwidth/want-1) > 1e-9 {
					t.Errorf("fit %.6g B/s, %.3g s; want %.6g B/s and no overhead", f.Bandwidth, f.TransferOverheadSeconds, want)
				}
			}
			if len(f.RelErrors) != len(c.samples) || f.Points != len(c.samples) {
				t.Errorf("%d residuals, %d points for %d samples", len(f.RelErrors), f.Points, len(c.samples))
			}
		})
	}
}

func TestNewLevelSampleRefusesCallsTheLevelDoesNotTime(t *testing.T) {
	ipu := devtest.IPU()
	dense := trace(t, kernels.Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 64, Seq: 512},
		kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused})
	inSRAM, err := Predict(dense, ipu, Options{})
	if err != nil {
		t.Fatal(err)
	}
	onStream, err := Predict(dense, ipu, streamingKV)
	if err != nil {
		t.Fatal(err)
	}
	hostBound := *onStream
	hostBound.HostBound = true
	slow := devtest.IPU()
	slow.Compute[0].OpsPerSecond = 1e6
	computeBound, err := Predict(dense, slow, streamingKV)
	if err != nil {
		t.Fatal(err)
	}
	// A stage a kernel class runs streams at the class's rate, not the
	// level's achievable bandwidth the fit is for.
	classed := devtest.IPU()
	st := classed.Levels["streaming"]
	st.KernelBandwidth = map[string]float64{kernels.KernelTriton: 3e9}
	classed.Levels["streaming"] = st
	sparq := trace(t, kernels.Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 64, Seq: 512},
		kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 16, K: 64, KLayout: kernels.KTwice, Kernel: kernels.KernelTriton})
	atClassRate, err := Predict(sparq, classed, streamingKV)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, level   string
		measured      float64
		p             *Prediction
		errorContains string
	}{
		{"no such level", "dram", 1e-3, onStream, "no memory level"},
		{"nothing on the level", "streaming", 1e-3, inSRAM, "moves no bytes"},
		{"host-bound", "streaming", 1e-3, &hostBound, "host"},
		{"zero time", "streaming", 0, onStream, "must be positive"},
		{"compute-bound", "streaming", 1e-3, computeBound, "do not set its time"},
		{"kernel class rate", "streaming", 1e-3, atClassRate, "transfers at 3e+09 B/s do not set its time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewLevelSample("row", c.measured, c.p, ipu, c.level)
			if err == nil || !strings.Contains(err.Error(), c.errorContains) {
				t.Fatalf("err %v, want one containing %q", err, c.errorContains)
			}
		})
	}
}
