package roofline

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/devtest"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

func trace(t *testing.T, shape kernels.Shape, spec kernels.Spec) *traces.Trace {
	t.Helper()
	o, err := kernels.Simulate(context.Background(), kernels.Config{Shape: shape, Spec: spec, DType: kernels.FP16, Workload: kernels.Gaussian, Seed: 1, SampleHeads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return o.Trace
}

// predictStages prices tr on dev and returns its stages by name.
func predictStages(t *testing.T, tr *traces.Trace, dev *hwmodel.Device) map[string]StagePrediction {
	t.Helper()
	return predictStagesWith(t, tr, dev, Options{})
}

// predictStagesWith is predictStages under options o.
func predictStagesWith(t *testing.T, tr *traces.Trace, dev *hwmodel.Device, o Options) map[string]StagePrediction {
	t.Helper()
	p, err := Predict(tr, dev, o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]StagePrediction{}
	for _, s := range p.Stages {
		out[s.Name] = s
	}
	return out
}

var paperShape = kernels.Shape{Batch: 4, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 4096}

func TestIdealDenseIsBytesOverPeak(t *testing.T) {
	tr := trace(t, paperShape, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused})
	p, err := Predict(tr, devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// K and V: 2·B·H·S·D·2 bytes; q and out: B·H·D·2 each, all from HBM
	// except q and out, which are small enough to be served by L2, as are
	// the 16 splits' fp32 partial outputs and log-sum-exps, written by the
	// attention stage and read by the combine stage.
	kv := 2.0 * 4 * 32 * 4096 * 128 * 2
	qo := 2.0 * 4 * 32 * 128 * 2
	partials := 2.0 * 4 * 32 * 16 * 129 * 4
	want := kv/2e12 + (qo+partials)/7e12
	if math.Abs(p.IdealSeconds-want) > 1e-12*want {
		t.Errorf("ideal %.9g s, want (K+V)/peak_hbm + (q+out)/peak_l2 = %.9g s", p.IdealSeconds, want)
	}
	if p.Stages[0].Bound != BoundMemory {
		t.Errorf("dense at S=4096, B=4 is %s-bound, want memory", p.Stages[0].Bound)
	}
}

func TestKOnceCostsMoreThanKTwiceOnAGPU(t *testing.T) {
	spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice}
	twice, err := Predict(trace(t, paperShape, spec), devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec.KLayout = kernels.KOnce
	once, err := Predict(trace(t, paperShape, spec), devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !(once.Seconds > 1.5*twice.Seconds) {
		t.Errorf("K once %.3g s, K twice %.3g s: sector granularity should make once much slower", once.Seconds, twice.Seconds)
	}
	// Both request about the same bytes: the difference is granularity.
	if r := float64(once.RequestedBytes) / float64(twice.RequestedBytes); r < 0.95 || r > 1.05 {
		t.Errorf("requested bytes differ by %.2f×", r)
	}
}

func TestIPUPlacement(t *testing.T) {
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused}
	small := trace(t, kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 1024}, spec)
	sram, err := Predict(small, devtest.IPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sram.Placement["K"] != "sram" {
		t.Errorf("a 16 MiB KV cache placed in %s, want sram", sram.Placement["K"])
	}
	streaming, err := Predict(small, devtest.IPU(), Options{Placement: map[traces.Role]string{traces.RoleKVCache: "streaming"}})
	if err != nil {
		t.Fatal(err)
	}
	if streaming.Placement["K"] != "streaming" || !(streaming.Seconds > 100*sram.Seconds) {
		t.Errorf("streaming %.3g s vs sram %.3g s", streaming.Seconds, sram.Seconds)
	}
	// A 2 GiB KV cache does not fit in SRAM: it goes to streaming memory.
	big := trace(t, kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 128 << 10}, spec)
	p, err := Predict(big, devtest.IPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Placement["K"] != "streaming" {
		t.Errorf("a 2 GiB KV cache placed in %s", p.Placement["K"])
	}
	if _, err := Predict(big, devtest.IPU(), Options{Placement: map[traces.Role]string{traces.RoleKVCache: "sram"}}); err == nil {
		t.Error("forcing 2 GiB into 900 MB of SRAM was accepted")
	}
	if _, err := Predict(big, devtest.IPU(), Options{Placement: map[traces.Role]string{traces.RoleKVCache: "hbm"}}); err == nil ||
		!strings.Contains(err.Error(), "no level") {
		t.Errorf("unknown level: %v", err)
	}
}

func TestTinyShapesAreNotMemoryBound(t *testing.T) {
	tr := trace(t, kernels.Shape{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 64, Seq: 16},
		kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused})
	p, err := Predict(tr, devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stages {
		if s.Bound != BoundOverhead && s.Bound != BoundLatency {
			t.Errorf("stage %s of a 4 KiB step is %s-bound", s.Name, s.Bound)
		}
	}
}

func TestLittlesLawLimitsSmallBatches(t *testing.T) {
	spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Fused, R: 32, K: 128, KLayout: kernels.KTwice}
	// One work unit per KV head: 32 units cannot keep HBM busy.
	p, err := Predict(trace(t, kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 16384}, spec), devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var limited bool
	for _, l := range p.Stages[0].Levels {
		if l.Level == "hbm" {
			limited = l.ConcurrencyLimited
			if want := 32 * 2048 / 500e-9; math.Abs(l.Bandwidth-want) > 1e-6*want {
				t.Errorf("bandwidth %.4g, want 32 units × 2 KiB / 500 ns = %.4g", l.Bandwidth, want)
			}
		}
	}
	if !limited {
		t.Error("32 work units reached full HBM bandwidth")
	}
}

func TestCalibratedNeverBeatsIdeal(t *testing.T) {
	for _, shape := range []kernels.Shape{
		{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 64, Seq: 1},
		{Batch: 1, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 2048},
		{Batch: 16, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 8192},
	} {
		for _, spec := range []kernels.Spec{
			{Method: kernels.MethodDense, Impl: kernels.Unfused, AppendKV: true},
			{Method: kernels.MethodDense, Impl: kernels.Fused},
			{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 16, K: 64, KLayout: kernels.KOnce, AppendKV: true},
			{Method: kernels.MethodSparQ, Impl: kernels.Fused, R: 32, K: 256, KLayout: kernels.KTwice},
		} {
			tr := trace(t, shape, spec)
			for _, dev := range []*hwmodel.Device{devtest.GPU(), devtest.IPU()} {
				p, err := Predict(tr, dev, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if p.Seconds < p.IdealSeconds {
					t.Errorf("%s %+v %+v: calibrated %.4g < ideal %.4g", dev.Name, shape, spec, p.Seconds, p.IdealSeconds)
				}
				for _, s := range p.Stages {
					if s.Seconds < s.IdealSeconds {
						t.Errorf("stage %s: calibrated %.4g < ideal %.4g", s.Name, s.Seconds, s.IdealSeconds)
					}
				}
			}
		}
	}
}

func TestUnfusedPaysPerStageOverhead(t *testing.T) {
	shape := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 1024}
	tr := trace(t, shape, kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice})
	un, err := Predict(tr, devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var overhead float64
	launches := 0
	for i, s := range un.Stages {
		overhead += s.OverheadSeconds
		launches += tr.Stages[i].LaunchCount()
	}
	// The authors' implementation: top-r 8 kernels, approx-scores 1,
	// softmax-topk 6, exact-scores 1, weighted-sum 3.
	if launches != 19 {
		t.Errorf("%d launches, want 19", launches)
	}
	if want := float64(launches) * 2.5e-6; math.Abs(overhead-want) > 1e-15 {
		t.Errorf("overhead %.4g s, want %d launches × 2.5 µs", overhead, launches)
	}
}

func TestParsePlacement(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want map[traces.Role]string
		bad  bool
	}{
		{in: nil},
		{in: []string{"kv-cache=streaming"}, want: map[traces.Role]string{traces.RoleKVCache: "streaming"}},
		{in: []string{"kv-cache=sram,intermediate=sram"}, want: map[traces.Role]string{traces.RoleKVCache: "sram", traces.RoleIntermediate: "sram"}},
		{in: []string{"kv-cache"}, bad: true},
		{in: []string{"weights=hbm"}, bad: true},
		{in: []string{"kv-cache=hbm", "kv-cache=l2"}, bad: true},
	} {
		got, err := ParsePlacement(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// A copy engine drives an IPU's streaming memory: few work units still reach
// its achievable bandwidth, and each stage pays the copy's set-up cost.
func TestDMALevelIgnoresWorkUnitConcurrency(t *testing.T) {
	ipu := devtest.IPU()
	st := ipu.Levels["streaming"]
	st.DMA = true
	st.TransferOverheadSeconds = 1e-4
	ipu.Levels["streaming"] = st
	ipu.Concurrency.InflightBytesPerWorkUnit = 16 // tile loads: would cap streaming far below 7 GB/s
	tr := trace(t, kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 1024},
		kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused})
	p, err := Predict(tr, ipu, Options{Placement: map[traces.Role]string{traces.RoleKVCache: "streaming"}})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stages[0]
	for _, l := range s.Levels {
		if l.Level == "streaming" && (l.ConcurrencyLimited || l.Bandwidth != 7e9) {
			t.Errorf("streaming at %.3g B/s, limited=%v: want the achievable 7 GB/s", l.Bandwidth, l.ConcurrencyLimited)
		}
	}
	if want := 1e-4 + 1e-6; math.Abs(s.OverheadSeconds-want) > 1e-15 {
		t.Errorf("overhead %.4g s, want copy set-up + sync = %.4g", s.OverheadSeconds, want)
	}
}

// TestEagerDispatchTakesTheSlowerOfHostAndDevice checks the pipelined model
// of eager calls: a step takes its device time unless the host needs longer
// to issue it.
func TestEagerDispatchTakesTheSlowerOfHostAndDevice(t *testing.T) {
	shape := kernels.Shape{Batch: 4, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 4096}
	tr := trace(t, shape, kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice})
	graph, err := Predict(tr, devtest.GPU(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if graph.DeviceSeconds != graph.Seconds || graph.HostBound {
		t.Fatalf("no host time: seconds %g, device %g, host bound %v", graph.Seconds, graph.DeviceSeconds, graph.HostBound)
	}
	for _, c := range []struct {
		host      float64
		hostBound bool
	}{
		{graph.DeviceSeconds / 2, false},
		{graph.DeviceSeconds * 3, true},
	} {
		p, err := Predict(tr, devtest.GPU(), Options{HostSeconds: c.host})
		if err != nil {
			t.Fatal(err)
		}
		want := math.Max(c.host, graph.DeviceSeconds)
		if p.Seconds != want || p.HostBound != c.hostBound || p.DeviceSeconds != graph.DeviceSeconds || p.HostSeconds != c.host {
			t.Errorf("host %g: seconds %g (device %g, host bound %v), want %g (host bound %v)", c.host, p.Seconds, p.DeviceSeconds, p.HostBound, want, c.hostBound)
		}
	}
}

// Kernels the host issues into a stream (eager PyTorch) cost the device's
// stream launch each, where it measured one: every stage's launches, and
// the kernels of a top-k call beyond the one its stage counts, which the
// graph-timed table priced at the graph's launch.
func TestStreamDispatchPaysTheStreamLaunch(t *testing.T) {
	shape := kernels.Shape{Batch: 4, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 16384}
	tr := trace(t, shape, kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice})
	dev := devtest.GPU()
	const extra = 1e-6
	predict := func(o Options) map[string]StagePrediction { return predictStagesWith(t, tr, dev, o) }
	// Without a stream figure both dispatches read the same.
	base := predict(Options{})
	for name, s := range predict(Options{Stream: true}) {
		if s.Seconds != base[name].Seconds {
			t.Errorf("no stream figure: stage %s %g s in a stream, %g replayed", name, s.Seconds, base[name].Seconds)
		}
	}
	dev.Overheads.StreamLaunchSeconds = dev.Overheads.LaunchSeconds + extra
	// Top-k: 2 operations per call for 32 rows (top-r over d_h), 22 for
	// 32 rows of 16K positions (softmax-topk).
	dev.Compute = append(dev.Compute, hwmodel.Compute{Unit: "topk", DType: "fp32", OpsPerSecond: 1e12, Table: &hwmodel.Table{
		Rows: []float64{32}, Cols: []float64{128, 16384}, Seconds: [][]float64{{10e-6, 50e-6}}, Kernels: [][]float64{{2, 22}}}})
	graph, stream := predict(Options{}), predict(Options{Stream: true})
	topkKernels := map[string]float64{"top-r": 2, "softmax-topk": 22}
	for i, st := range tr.Stages {
		g, s := graph[st.Name], stream[st.Name]
		want := float64(st.LaunchCount()) * extra
		if n, ok := topkKernels[st.Name]; ok {
			want += (n - 1) * extra
		}
		if got := s.OverheadSeconds - g.OverheadSeconds; math.Abs(got-want) > 1e-12 {
			t.Errorf("stage %d %s: the stream adds %g s of overhead, want %g", i, st.Name, got, want)
		}
		if s.SelectSeconds != g.SelectSeconds || s.MemorySeconds != g.MemorySeconds {
			t.Errorf("stage %s: the stream moved select or memory time", st.Name)
		}
	}
	for _, name := range []string{"top-r", "softmax-topk"} {
		if _, ok := graph[name]; !ok {
			t.Fatalf("trace has no %s stage", name)
		}
	}
}

// A device with measured top-k and softmax tables prices SparQ's
// softmax-topk stage from them, by rows and row length: the softmax overlaps
// the stage's own reads, the top-k adds after it.
func TestPrimitiveTablesPriceSelectionAndSoftmax(t *testing.T) {
	shape := kernels.Shape{Batch: 4, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 4096}
	spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice}
	tr := trace(t, shape, spec)
	dev := devtest.GPU()
	grid := func(topk float64) *hwmodel.Table {
		return &hwmodel.Table{Rows: []float64{8, 1024}, Cols: []float64{128, 4096},
			Seconds: [][]float64{{topk, 2 * topk}, {4 * topk, 8 * topk}}}
	}
	dev.Compute = append(dev.Compute,
		hwmodel.Compute{Unit: "topk", DType: "fp32", OpsPerSecond: 1e12, FloorSeconds: 1e-6, Table: grid(10e-6)},
		hwmodel.Compute{Unit: "softmax", DType: "fp32", OpsPerSecond: 1e12, Table: grid(1e-3)})
	got := predictStages(t, tr, dev)
	// top-r: one top-k per (sequence, KV head) pair over d_h = 128 values:
	// 32 rows, log-interpolated between 8 (10 µs) and 1024 rows (40 µs).
	rows := float64(shape.Batch * shape.KVHeads)
	f := math.Log(rows/8) / math.Log(1024.0/8)
	if want := 10e-6 * math.Pow(4, f); math.Abs(got["top-r"].SelectSeconds-want) > 1e-12 {
		t.Errorf("top-r select %g s, want %g", got["top-r"].SelectSeconds, want)
	}
	st := got["softmax-topk"]
	if want := 20e-6 * math.Pow(4, f); math.Abs(st.SelectSeconds-want) > 1e-12 {
		t.Errorf("softmax-topk select %g s, want %g (32 rows of 4096)", st.SelectSeconds, want)
	}
	// The softmax runs over every query head's row: 128 rows of 4096.
	fs := math.Log(float64(shape.Batch*shape.Heads)/8) / math.Log(1024.0/8)
	if want := 2e-3 * math.Pow(4, fs); math.Abs(st.SoftmaxSeconds-want) > 1e-12 {
		t.Errorf("softmax %g s, want %g", st.SoftmaxSeconds, want)
	}
	if st.Bound != BoundSoftmax {
		t.Errorf("softmax-topk bound %s, want softmax (the table's milliseconds dominate)", st.Bound)
	}
	if want := st.OverheadSeconds + st.SoftmaxSeconds + st.SelectSeconds; math.Abs(st.Seconds-want) > 1e-12 {
		t.Errorf("stage %g s, want overhead + softmax + select = %g", st.Seconds, want)
	}
	// Fused kernels keep the softmax on chip: no library softmax.
	spec.Impl = kernels.Fused
	for _, s := range predictStages(t, trace(t, shape, spec), dev) {
		if s.SoftmaxSeconds != 0 {
			t.Errorf("fused stage %s prices a library softmax (%g s)", s.Name, s.SoftmaxSeconds)
		}
	}
}

// A materialized SparQ gather is priced at the device's gather rate when
// that is slower than the bytes it moves; with K stored once it picks
// scattered components, priced at the scattered copy rate where the device
// measured one.
func TestGatherRatePricesMaterializedGathers(t *testing.T) {
	shape := kernels.Shape{Batch: 4, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 4096}
	pairs := float64(shape.Batch * shape.KVHeads)
	rows := hwmodel.Compute{Unit: "copy", DType: "fp32", OpsPerSecond: 1e9, FloorSeconds: 1e-6}
	scattered := hwmodel.Compute{Unit: "copy", Kernel: hwmodel.CopyScattered, DType: "fp32", OpsPerSecond: 0.5e9, FloorSeconds: 2e-6}
	for _, tc := range []struct {
		name   string
		layout kernels.KLayout
		units  []hwmodel.Compute
		gather float64 // the gather stage's copy time
	}{
		{"K twice: whole rows", kernels.KTwice, []hwmodel.Compute{rows, scattered}, 1e-6 + pairs*32*4096/1e9},
		{"K once: scattered components", kernels.KOnce, []hwmodel.Compute{rows, scattered}, 2e-6 + pairs*32*4096/0.5e9},
		{"K once on a device without a scattered rate", kernels.KOnce, []hwmodel.Compute{rows}, 1e-6 + pairs*32*4096/1e9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: tc.layout, Materialize: true}
			dev := devtest.GPU()
			dev.Compute = append(dev.Compute, tc.units...)
			p, err := Predict(trace(t, shape, spec), dev, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{
				"gather":       tc.gather,
				"exact-scores": 1e-6 + pairs*128*128/1e9,
				"weighted-sum": 1e-6 + pairs*128*128/1e9,
			}
			for _, s := range p.Stages {
				w, ok := want[s.Name]
				if !ok {
					if s.CopySeconds != 0 {
						t.Errorf("stage %s gathers %g s", s.Name, s.CopySeconds)
					}
					continue
				}
				if math.Abs(s.CopySeconds-w) > 1e-12 {
					t.Errorf("stage %s gather %g s, want %g", s.Name, s.CopySeconds, w)
				}
				if s.Bound != BoundCopy {
					t.Errorf("stage %s bound %s, want the gather", s.Name, s.Bound)
				}
				delete(want, s.Name)
			}
			if len(want) > 0 {
				t.Errorf("stages missing: %v", want)
			}
		})
	}
}

// A tiled kernel's query tiles are priced from the device's attention-tile
// table for that kernel (blocks × MACs per block), else at the matrix peak,
// and the stage computes for the longer of that and its other arithmetic.
func TestQueryTilesPricedFromTheKernelsTable(t *testing.T) {
	shape := kernels.Shape{Batch: 8, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 4096}
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused, Split: 4096, Tile: kernels.QueryTile{Kernel: "k1", Rows: 64}}
	tr := trace(t, shape, spec)
	blocks := float64(shape.Batch * shape.Heads)
	perBlock := 2.0 * 64 * 4096 * 128
	attention := func(dev *hwmodel.Device) StagePrediction {
		t.Helper()
		return predictStages(t, tr, dev)[kernels.StageAttention]
	}

	// No table: the matrix peak, on the 256 of 100 units' worth of blocks.
	dev := devtest.GPU()
	dev.Compute = append(dev.Compute, hwmodel.Compute{Unit: "matrix", DType: "fp16", OpsPerSecond: 1e15})
	st := attention(dev)
	if want := 2 * blocks * perBlock / 1e15; math.Abs(st.TileSeconds-want) > 1e-12*want {
		t.Errorf("tile %g s at the matrix peak, want %g", st.TileSeconds, want)
	}

	// A table of another kernel does not apply; this kernel's does, read
	// at (blocks, MACs per block) and interpolated in the logarithms.
	table := &hwmodel.Table{Rows: []float64{128, 512}, Cols: []float64{perBlock / 4, perBlock * 4},
		Seconds: [][]float64{{1e-3, 4e-3}, {4e-3, 16e-3}}}
	dev.Compute = append(dev.Compute,
		hwmodel.Compute{Unit: hwmodel.UnitAttentionTile, Kernel: "other", DType: "fp16", OpsPerSecond: 1, Table: table},
		hwmodel.Compute{Unit: hwmodel.UnitAttentionTile, Kernel: "k1", DType: "fp16", OpsPerSecond: 1e13, Table: table})
	st = attention(dev)
	// Halfway in both logarithms: exp(mean of the four logs) = 4 ms.
	if want := 4e-3; math.Abs(st.TileSeconds-want) > 1e-9 {
		t.Errorf("tile %g s from the table, want %g", st.TileSeconds, want)
	}
	if st.ComputeSeconds != st.TileSeconds || st.Bound != BoundCompute {
		t.Errorf("compute %g s, bound %s: want the tile's %g s to bound the stage", st.ComputeSeconds, st.Bound, st.TileSeconds)
	}
	if want := st.OverheadSeconds + st.TileSeconds; math.Abs(st.Seconds-want) > 1e-12 {
		t.Errorf("stage %g s, want overhead + tile = %g", st.Seconds, want)
	}

	// bf16 uses the kernel's fp16 figures; without a tile the stage has none.
	if u, ok := dev.TileUnit("k1", "bf16"); !ok || u.OpsPerSecond != 1e13 {
		t.Errorf("bf16 lookup: %v %v, want the fp16 unit", u, ok)
	}
	spec.Tile = kernels.QueryTile{}
	for _, s := range predictStages(t, trace(t, shape, spec), dev) {
		if s.TileSeconds != 0 {
			t.Errorf("stage %s without a tile prices %g s of tiles", s.Name, s.TileSeconds)
		}
	}
}

// Unfused dense attention as a library's batched products: each product
// stage takes the device's measured table for its form and shape, less the
// launch the stage already counts, where that is slower than its bytes at
// the memory's rate; a device without a table for the shape keeps the
// memory model.
func TestLibraryMatmulPricedFromTheTable(t *testing.T) {
	if traces.MatmulScores != hwmodel.MatmulScores || traces.MatmulWeighted != hwmodel.MatmulWeighted {
		t.Fatal("traces and hwmodel name the product forms differently")
	}
	shape := kernels.Shape{Batch: 2, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 16384}
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused, Kernel: kernels.KernelCuBLAS}
	tr := trace(t, shape, spec)
	products, keys := 16.0, 16384.0
	for _, st := range tr.Stages {
		want := map[string]string{kernels.StageScores: traces.MatmulScores, kernels.StageWeightedSum: traces.MatmulWeighted}[st.Name]
		switch {
		case want == "" && st.Matmul != nil:
			t.Errorf("stage %s records a product %+v", st.Name, *st.Matmul)
		case want != "" && (st.Matmul == nil || *st.Matmul != traces.Matmul{Form: want, Products: 16, Rows: 4, Keys: 16384, Dim: 128}):
			t.Errorf("stage %s product %+v, want %s of 16 products, 4 rows, 16384 keys, 128 dims", st.Name, st.Matmul, want)
		}
	}

	dev := devtest.GPU()
	plain := predictStages(t, tr, dev)
	// A slow weighted sum (a kernel of few thread blocks): 4 × its bytes'
	// time at the memory's rate, read off the table's interpolation.
	slow := 4 * plain[kernels.StageWeightedSum].MemorySeconds
	unit := func(form string, rows int, at float64) hwmodel.Compute {
		return hwmodel.Compute{Unit: hwmodel.UnitMatmul, Kernel: form, QueryRows: rows, HeadDim: 128, DType: "fp16", OpsPerSecond: 1,
			Table: &hwmodel.Table{Rows: []float64{products / 2, products * 2}, Cols: []float64{keys / 4, keys * 4},
				Seconds: [][]float64{{at / 2, at * 2}, {at / 2, at * 2}}}}
	}
	launch := dev.Overheads.LaunchSeconds
	dev.Compute = append(dev.Compute,
		unit(hwmodel.MatmulWeighted, 8, slow+launch),
		unit(hwmodel.MatmulWeighted, 2, 1),               // too few rows for a group of 4
		unit(hwmodel.MatmulScores, 4, launch+launch/1e3), // faster than the bytes: memory still bounds it
	)
	got := predictStages(t, tr, dev)
	ws := got[kernels.StageWeightedSum]
	if math.Abs(ws.MatmulSeconds-slow) > 1e-9*slow || ws.Bound != BoundMatmul {
		t.Errorf("weighted sum: matmul %g s (%s), want the 8-row table less a launch, %g s, bounding it", ws.MatmulSeconds, ws.Bound, slow)
	}
	if want := ws.OverheadSeconds + slow; math.Abs(ws.Seconds-want) > 1e-9*want {
		t.Errorf("weighted sum %g s, want overhead + table = %g", ws.Seconds, want)
	}
	sc := got[kernels.StageScores]
	if sc.MatmulSeconds <= 0 || sc.Bound != BoundMemory || sc.Seconds != plain[kernels.StageScores].Seconds {
		t.Errorf("scores: matmul %g s, bound %s, %g s; want a table faster than the bytes to leave %g s", sc.MatmulSeconds, sc.Bound, sc.Seconds, plain[kernels.StageScores].Seconds)
	}

	// Without the kernel class the stages record no product and the
	// tables do not apply.
	spec.Kernel = ""
	for name, st := range predictStages(t, trace(t, shape, spec), dev) {
		if st.MatmulSeconds != 0 || st.Seconds != plain[name].Seconds {
			t.Errorf("stage %s without cublas: matmul %g s, %g s; want %g s", name, st.MatmulSeconds, st.Seconds, plain[name].Seconds)
		}
	}
}

// A split-KV kernel that loads its K and V tiles one after another is
// priced from the device's tile-loads table: its time for the stage's
// blocks and tiles per block, less the launch the stage counts, where that
// exceeds the bytes at the memory's rate. Past the table's last column the
// further tiles stream at the stage's memory rate; a tile of another size
// counts as that many of the table's; without the option or the table the
// stage streams.
func TestTileLoadsPricedFromTheTable(t *testing.T) {
	// 8 KV heads x 8 splits of 128 keys: 64 blocks, each K then V, 32 KiB tiles.
	shape := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 1024}
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused, Split: 128, TileKeys: 128}
	tr := trace(t, shape, spec)
	var attn traces.Stage
	for _, st := range tr.Stages {
		if st.Name == kernels.StageAttention {
			attn = st
		}
	}
	if attn.WorkUnits != 64 || attn.TileLoads != 2 {
		t.Fatalf("attention: %d blocks x %d tile loads, want 64 x 2", attn.WorkUnits, attn.TileLoads)
	}

	dev := devtest.GPU()
	launch := dev.Overheads.LaunchSeconds
	plain := predictStages(t, tr, dev)[kernels.StageAttention]
	slow := 3 * plain.MemorySeconds
	dev.Compute = append(dev.Compute, hwmodel.Compute{Unit: hwmodel.UnitTileLoads, DType: "fp16", OpsPerSecond: 1, TileBytes: 32 << 10,
		Table: &hwmodel.Table{Rows: []float64{32, 128}, Cols: []float64{1, 4},
			// Log-linear in both axes: 64 blocks x 2 tiles sits at launch + slow.
			Seconds: [][]float64{{(launch + slow) / 2, (launch + slow) * 2}, {(launch + slow) / 2, (launch + slow) * 2}}}})
	got := predictStages(t, tr, dev)[kernels.StageAttention]
	if math.Abs(got.TileLoadSeconds-slow) > 1e-9*slow || got.Bound != BoundTileLoads {
		t.Errorf("attention: tile loads %g s (%s), want the table less a launch, %g s, bounding it", got.TileLoadSeconds, got.Bound, slow)
	}
	if want := got.OverheadSeconds + slow; math.Abs(got.Seconds-want) > 1e-9*want {
		t.Errorf("attention %g s, want overhead + table = %g", got.Seconds, want)
	}

	// 16 tiles per block against a table that ends at 4: the first 4 at
	// the table, the other 12 of 16 at the stage's memory rate.
	spec.Split = 1024
	long := trace(t, shape, spec)
	lp := predictStages(t, long, dev)[kernels.StageAttention]
	first := (launch + slow) * 2 // the table's 4-tile column (its rows are equal)
	if want := first + lp.MemorySeconds*12/16 - launch; math.Abs(lp.TileLoadSeconds-want) > 1e-9*want {
		t.Errorf("16 tiles per block: %g s, want the table at 4 tiles + 12/16 of the memory time - a launch = %g", lp.TileLoadSeconds, want)
	}

	// Half-size tiles (d_h 64) count as half as many of the table's.
	half := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 8, HeadDim: 64, Seq: 1024}
	spec.Split = 512
	hp := predictStages(t, trace(t, half, spec), dev)[kernels.StageAttention]
	u, _ := dev.TileLoadUnit(1)
	if want := u.Table.At(8, 4) - launch; math.Abs(hp.TileLoadSeconds-want) > 1e-9*want {
		t.Errorf("8 half-size tiles per block: %g s, want the table at 4 tiles = %g", hp.TileLoadSeconds, want)
	}

	// Two tiles in flight read the device's table for two, and without
	// one the stage streams (the one-at-a-time table does not stand in).
	spec.Split, spec.TilesInFlight = 128, 2
	pipelined := trace(t, shape, spec)
	if st := predictStages(t, pipelined, dev)[kernels.StageAttention]; st.TileLoadSeconds != 0 || st.Seconds != plain.Seconds {
		t.Errorf("2 in flight, no table for it: tile loads %g s, %g s; want %g s", st.TileLoadSeconds, st.Seconds, plain.Seconds)
	}
	two := dev.Compute[len(dev.Compute)-1]
	two.TilesInFlight = 2
	two.Table = &hwmodel.Table{Rows: []float64{32, 128}, Cols: []float64{1, 4},
		Seconds: [][]float64{{(launch + slow) / 4, launch + slow}, {(launch + slow) / 4, launch + slow}}}
	dev.Compute = append(dev.Compute, two)
	if err := dev.Validate(); err != nil {
		t.Fatal(err)
	}
	half2 := (launch+slow)/2 - launch // log-linear: 2 tiles at half the 4-tile figure
	if st := predictStages(t, pipelined, dev)[kernels.StageAttention]; math.Abs(st.TileLoadSeconds-half2) > 1e-9*half2 {
		t.Errorf("2 in flight: tile loads %g s, want that table less a launch, %g s", st.TileLoadSeconds, half2)
	}
	if st := predictStages(t, tr, dev)[kernels.StageAttention]; math.Abs(st.TileLoadSeconds-slow) > 1e-9*slow {
		t.Errorf("1 in flight beside a table for 2: tile loads %g s, want %g s", st.TileLoadSeconds, slow)
	}
	spec.TilesInFlight = 0

	// No tile keys: no tile loads, the same stage as on a device without
	// the tables.
	spec.Split, spec.TileKeys = 128, 0
	untiled := trace(t, shape, spec)
	want := predictStages(t, untiled, devtest.GPU())[kernels.StageAttention]
	if st := predictStages(t, untiled, dev)[kernels.StageAttention]; st.TileLoadSeconds != 0 || st.Seconds != want.Seconds {
		t.Errorf("without tile keys: tile loads %g s, %g s; want %g s", st.TileLoadSeconds, st.Seconds, want.Seconds)
	}
}

// The code a tile-loading stage's blocks run outside their tile loop adds
// the device's block-code table at the stage's instructions per warp less
// the table at its first column (the measured kernel's own code), plus
// each parameter line beyond the kernel's; less code than that kernel, or
// a device without the table (or without tile-loads tables), adds
// nothing.
func TestBlockCodeAddsToTheTileLoads(t *testing.T) {
	shape := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 1024}
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused, Split: 128, TileKeys: 128, BlockInstructions: 2000, ParamLines: 7}
	tr := trace(t, shape, spec)
	if st := tr.Stages[slices.IndexFunc(tr.Stages, func(s traces.Stage) bool { return s.Name == kernels.StageAttention })]; st.BlockInstructions != 2000 || st.ParamLines != 7 {
		t.Fatalf("attention stage: %d block instructions, %d parameter lines; want 2000, 7", st.BlockInstructions, st.ParamLines)
	}

	dev := devtest.GPU()
	launch := dev.Overheads.LaunchSeconds
	slow := 3 * predictStages(t, tr, dev)[kernels.StageAttention].MemorySeconds
	dev.Compute = append(dev.Compute, hwmodel.Compute{Unit: hwmodel.UnitTileLoads, DType: "fp16", OpsPerSecond: 1, TileBytes: 32 << 10,
		Table: &hwmodel.Table{Rows: []float64{32, 128}, Cols: []float64{1, 4},
			Seconds: [][]float64{{(launch + slow) / 2, (launch + slow) * 2}, {(launch + slow) / 2, (launch + slow) * 2}}}})
	if st := predictStages(t, tr, dev)[kernels.StageAttention]; st.BlockCodeSeconds != 0 || math.Abs(st.TileLoadSeconds-slow) > 1e-9*slow {
		t.Errorf("no block-code table: block code %g s, tile loads %g s; want 0 and %g", st.BlockCodeSeconds, st.TileLoadSeconds, slow)
	}
	const lineSeconds = 50e-9
	dev.Compute = append(dev.Compute, hwmodel.Compute{Unit: hwmodel.UnitBlockCode, DType: "fp16", OpsPerSecond: 1, ParamLines: 2, ParamLineSeconds: lineSeconds,
		Table: &hwmodel.Table{Rows: []float64{32, 128}, Cols: []float64{500, 2000},
			Seconds: [][]float64{{8e-6, 10e-6}, {8e-6, 10e-6}}}})
	if err := dev.Validate(); err != nil {
		t.Fatal(err)
	}
	got := predictStages(t, tr, dev)[kernels.StageAttention]
	want := 2e-6 + 5*lineSeconds
	if math.Abs(got.BlockCodeSeconds-want) > 1e-9*want || math.Abs(got.TileLoadSeconds-(slow+want)) > 1e-9*(slow+want) || got.Bound != BoundTileLoads {
		t.Errorf("block code %g s, tile loads %g s (%s); want %g s on top of %g s, bounding the stage", got.BlockCodeSeconds, got.TileLoadSeconds, got.Bound, want, slow)
	}

	spec.BlockInstructions, spec.ParamLines = 300, 1
	if st := predictStages(t, trace(t, shape, spec), dev)[kernels.StageAttention]; st.BlockCodeSeconds != 0 {
		t.Errorf("less code than the measured kernel's: block code %g s, want 0", st.BlockCodeSeconds)
	}
	spec.BlockInstructions, spec.ParamLines = 0, 0
	if st := predictStages(t, trace(t, shape, spec), dev)[kernels.StageAttention]; st.BlockCodeSeconds != 0 || math.Abs(st.TileLoadSeconds-slow) > 1e-9*slow {
		t.Errorf("no code stated: block code %g s, tile loads %g s; want 0 and %g", st.BlockCodeSeconds, st.TileLoadSeconds, slow)
	}
}

// On a compiler-mapped device (an IPU under Poplar) every stage occupies
// all parallel units: a softmax over 32 rows computes on all 1472 tiles, not
// 32 of them, and Little's law counts every work-unit slot.
func TestCompilerMappedStagesOccupyTheDevice(t *testing.T) {
	shape := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 1024}
	tr := trace(t, shape, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused})
	dev := devtest.IPU()
	dev.Concurrency.InflightBytesPerWorkUnit = 16 // Little's law binds below the SRAM's rate
	sram := map[traces.Role]string{traces.RoleKVCache: "sram"}
	byRows := predictStagesWith(t, tr, dev, Options{Placement: sram})
	dev.Concurrency.CompilerMapped = true
	mapped := predictStagesWith(t, tr, dev, Options{Placement: sram})

	sm, smMapped := byRows[kernels.StageSoftmax], mapped[kernels.StageSoftmax]
	if sm.WorkUnits != 32 {
		t.Fatalf("softmax has %d work units, want one per row, 32", sm.WorkUnits)
	}
	if want := sm.ComputeSeconds * 32 / 1472; math.Abs(smMapped.ComputeSeconds-want) > 1e-9*want {
		t.Errorf("mapped softmax computes %g s, want all 1472 tiles' %g (32 rows: %g s)", smMapped.ComputeSeconds, want, sm.ComputeSeconds)
	}
	slots := float64(1472 * 6 * 16)
	for _, name := range []string{kernels.StageScores, kernels.StageWeightedSum} {
		for _, l := range mapped[name].Levels {
			if l.Level != "sram" {
				continue
			}
			if want := slots / 5e-9; !l.ConcurrencyLimited || math.Abs(l.Bandwidth-want) > 1e-6*want {
				t.Errorf("mapped %s: sram at %.4g B/s (limited %v), want every slot's %.4g", name, l.Bandwidth, l.ConcurrencyLimited, want)
			}
		}
		if mapped[name].Seconds >= byRows[name].Seconds {
			t.Errorf("%s: mapped %g s, not below %g s by work units", name, mapped[name].Seconds, byRows[name].Seconds)
		}
	}
}

// A stage's chain of dependent loads multiplies the latency of the level
// it waits on: a serial combine over 64 splits of partial results held in
// L2 takes at least 64 L2 latencies.
func TestDependentLoadsChainTheLatency(t *testing.T) {
	shape := kernels.Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 128, Seq: 1024}
	spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused, Split: 16}
	combine := func(serial bool) StagePrediction {
		t.Helper()
		spec.SerialCombine = serial
		st, ok := predictStages(t, trace(t, shape, spec), devtest.GPU())[kernels.StageCombine]
		if !ok {
			t.Fatal("no combine stage")
		}
		return st
	}
	par, ser := combine(false), combine(true)
	l2 := devtest.GPU().Levels["l2"].LatencySeconds
	if par.LatencySeconds != l2 {
		t.Errorf("parallel combine latency %g s, want one L2 latency %g", par.LatencySeconds, l2)
	}
	if want := 64 * l2; math.Abs(ser.LatencySeconds-want) > 1e-15 {
		t.Errorf("serial combine latency %g s, want 64 L2 latencies %g", ser.LatencySeconds, want)
	}
	if want := ser.OverheadSeconds + ser.LatencySeconds; ser.Bound != BoundLatency || math.Abs(ser.Seconds-want) > 1e-15 {
		t.Errorf("serial combine %g s bound by %s, want launch + 64 latencies = %g s, latency-bound", ser.Seconds, ser.Bound, want)
	}
}

// SparQ's ranking pass is a library kernel after the softmax: the stage
// pays for both, one after the other.
func TestRankPassAddsToTheSoftmax(t *testing.T) {
	shape := kernels.Shape{Batch: 4, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 4096}
	spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice}
	dev := devtest.GPU()
	dev.Compute = append(dev.Compute,
		hwmodel.Compute{Unit: "softmax", DType: "fp32", OpsPerSecond: 1e9, FloorSeconds: 1e-6},
		hwmodel.Compute{Unit: "copy", DType: "fp32", OpsPerSecond: 1e9, FloorSeconds: 2e-6})
	plain := predictStages(t, trace(t, shape, spec), dev)[kernels.StageSoftmaxTopK]
	spec.RankPass = true
	st := predictStages(t, trace(t, shape, spec), dev)[kernels.StageSoftmaxTopK]
	elems := float64(shape.Batch * shape.KVHeads * shape.Seq)
	if want := 2e-6 + elems/1e9; math.Abs(st.CopySeconds-want) > 1e-12 {
		t.Errorf("rank pass %g s, want floor + B·Hkv·S / rate = %g", st.CopySeconds, want)
	}
	if plain.CopySeconds != 0 || math.Abs(st.SoftmaxSeconds-plain.SoftmaxSeconds) > 1e-15 {
		t.Errorf("without the pass: copy %g s; softmax %g s with it, %g s without", plain.CopySeconds, st.SoftmaxSeconds, plain.SoftmaxSeconds)
	}
	if want := st.OverheadSeconds + st.SoftmaxSeconds + st.CopySeconds + st.SelectSeconds; math.Abs(st.Seconds-want) > 1e-12 {
		t.Errorf("stage %g s, want overhead + softmax + copy + select = %g", st.Seconds, want)
	}
	if st.Bound != BoundSoftmax {
		t.Errorf("bound %s, want softmax (the longer of the two library kernels)", st.Bound)
	}
}

// A stage run by a kernel class the device measured apart streams at that
// class's figure; every other stage, and devices without the figure, at the
// level's achievable bandwidth. Little's law still caps it.
func TestKernelBandwidthPricesTheStagesThatKernelRuns(t *testing.T) {
	shape := kernels.Shape{Batch: 16, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 8192}
	spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: kernels.KTwice, FusedExact: true}
	plainTr := trace(t, shape, spec)
	spec.Kernel = kernels.KernelTriton
	tritonTr := trace(t, shape, spec)

	dev := devtest.GPU()
	hbm := dev.Levels["hbm"]
	hbm.KernelBandwidth = map[string]float64{kernels.KernelTriton: hbm.AchievableBandwidth / 2}
	dev.Levels["hbm"] = hbm
	plain, triton := predictStages(t, plainTr, dev), predictStages(t, tritonTr, dev)
	marked := map[string]bool{kernels.StageApprox: true, kernels.StageExactAttn: true}
	for name, p := range plain {
		q := triton[name]
		for i, l := range p.Levels {
			m := q.Levels[i]
			want := l.Bandwidth
			if marked[name] && l.Level == "hbm" && !l.ConcurrencyLimited {
				want = hbm.AchievableBandwidth / 2
			}
			if m.Bandwidth != want || m.MovedBytes != l.MovedBytes {
				t.Errorf("%s on %s: %.4g B/s for %d B, want %.4g B/s for %d B", name, l.Level, m.Bandwidth, m.MovedBytes, want, l.MovedBytes)
			}
		}
	}
	if a := triton[kernels.StageApprox].Levels; len(a) == 0 || a[len(a)-1].Level != "hbm" || a[len(a)-1].ConcurrencyLimited {
		t.Fatalf("approx-scores levels %+v: the test needs an unlimited hbm read", a)
	}

	// Without the device figure, the kernel class changes nothing.
	plainDev := devtest.GPU()
	a, b := predictStages(t, plainTr, plainDev), predictStages(t, tritonTr, plainDev)
	for name := range a {
		if a[name].Seconds != b[name].Seconds {
			t.Errorf("%s: %g s marked, %g s not, on a device without kernel_bandwidth", name, b[name].Seconds, a[name].Seconds)
		}
	}

	// Little's law below the kernel's figure still sets the bandwidth.
	starved := devtest.GPU()
	starved.Levels["hbm"] = hbm
	starved.Concurrency.InflightBytesPerWorkUnit = 1
	for _, l := range predictStages(t, tritonTr, starved)[kernels.StageApprox].Levels {
		if l.Level == "hbm" && (!l.ConcurrencyLimited || l.Bandwidth >= hbm.AchievableBandwidth/2) {
			t.Errorf("hbm at %.4g B/s, limited=%v: Little's law should cap it", l.Bandwidth, l.ConcurrencyLimited)
		}
	}
}

// A call timed by the host clock around it, ending in a synchronize, pays
// the device's host_sync_seconds on top of whichever of host and device set
// its time; other calls do not.
func TestHostTimedCallAddsTheSynchronize(t *testing.T) {
	tr := trace(t, paperShape, kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Unfused})
	dev := devtest.GPU()
	dev.Overheads.HostSyncSeconds = 15e-6
	for _, c := range []struct {
		name  string
		opts  Options
		extra float64
	}{
		{"device time only", Options{}, 0},
		{"host-timed", Options{HostTimed: true}, 15e-6},
		{"host-timed, host-bound", Options{HostTimed: true, HostSeconds: 1}, 15e-6},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Predict(tr, dev, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := max(p.DeviceSeconds, c.opts.HostSeconds) + c.extra
			if math.Abs(p.Seconds-want) > 1e-15 || p.HostSyncSeconds != c.extra {
				t.Errorf("%.9g s (host sync %g), want %.9g s (host sync %g)", p.Seconds, p.HostSyncSeconds, want, c.extra)
			}
		})
	}
}

// A stage whose kernel class runs a loop of known steps is priced by the
// step time of that loop, each part checked alone against closed forms:
// the fixed part (units ÷ active units × steps), the bytes the loop's loads
// move and, for gathers only, the elements they load. Stages without the
// figure or the steps keep Little's law.
func TestKernelLoopStepsPriceTheLoop(t *testing.T) {
	shape := kernels.Shape{Batch: 1, Heads: 32, KVHeads: 8, HeadDim: 128, Seq: 32768}
	for _, c := range []struct {
		name   string
		layout kernels.KLayout
		split  int
		gather bool
	}{
		{"K once: gathers", kernels.KOnce, 0, true},
		{"K twice: rows", kernels.KTwice, 0, false},
		{"K once, split: gathers", kernels.KOnce, 4096, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 32, K: 128, KLayout: c.layout,
				FusedExact: true, Kernel: kernels.KernelTriton, Split: c.split}
			tr := trace(t, shape, spec)
			var st traces.Stage
			for _, s := range tr.Stages {
				if s.Name == kernels.StageApprox {
					st = s
				}
			}
			per := int64(shape.Seq)
			if c.split > 0 {
				per = int64(c.split)
			}
			chunk := int64(kernels.TritonScoreChunk(spec.R))
			if want := (per + chunk - 1) / chunk; st.LoopSteps != want || st.LoopGathers != c.gather {
				t.Fatalf("approx-scores: %d steps, gathers %v; want %d, %v", st.LoopSteps, st.LoopGathers, want, c.gather)
			}
			dev := devtest.GPU()
			cu := dev.Concurrency
			active := math.Min(float64(st.WorkUnits), float64(cu.ParallelUnits*cu.WorkUnitsPerParallelUnit))
			waves := float64(st.WorkUnits) / active

			base := predictStages(t, tr, dev)[kernels.StageApprox]
			var readMoved, readElems float64
			for _, x := range base.Tensors {
				if x.Level == "hbm" && x.Direction == traces.Read {
					readMoved += float64(x.MovedBytes)
					readElems += float64(x.RequestedBytes) / float64(elemBytes(tr, x.Tensor))
				}
			}
			parts := []struct {
				name string
				step hwmodel.LoopStep
				want float64
			}{
				{"fixed", hwmodel.LoopStep{Seconds: 1e-3}, waves * float64(st.LoopSteps) * 1e-3},
				{"bytes", hwmodel.LoopStep{Seconds: 1e-18, SecondsPerByte: 1e-6}, readMoved / active * 1e-6},
				{"elements", hwmodel.LoopStep{Seconds: 1e-18, SecondsPerElement: 1e-6}, readElems / active * 1e-6},
			}
			for _, part := range parts {
				if part.name == "elements" && !c.gather {
					continue
				}
				d := devtest.GPU()
				hbm := d.Levels["hbm"]
				kl := hwmodel.KernelLoop{Rows: part.step}
				if c.gather {
					kl = hwmodel.KernelLoop{Gather: part.step}
				}
				hbm.KernelLoops = map[string]hwmodel.KernelLoop{kernels.KernelTriton: kl}
				d.Levels["hbm"] = hbm
				got := predictStages(t, tr, d)[kernels.StageApprox]
				for _, l := range got.Levels {
					if l.Level != "hbm" {
						continue
					}
					if !l.ConcurrencyLimited || math.Abs(l.Seconds/part.want-1) > 1e-9 {
						t.Errorf("%s: hbm %g s (limited %v), want %g s", part.name, l.Seconds, l.ConcurrencyLimited, part.want)
					}
				}
			}

			// The other layout's figure, or none for the class, leaves Little's law.
			d := devtest.GPU()
			hbm := d.Levels["hbm"]
			other := hwmodel.KernelLoop{Gather: hwmodel.LoopStep{Seconds: 1}}
			if c.gather {
				other = hwmodel.KernelLoop{Rows: hwmodel.LoopStep{Seconds: 1}}
			}
			hbm.KernelLoops = map[string]hwmodel.KernelLoop{kernels.KernelTriton: other, "cutlass": {Rows: hwmodel.LoopStep{Seconds: 1}, Gather: hwmodel.LoopStep{Seconds: 1}}}
			d.Levels["hbm"] = hbm
			if got := predictStages(t, tr, d)[kernels.StageApprox]; got.Seconds != base.Seconds {
				t.Errorf("unmatched loop figures moved the stage: %g s, want %g s", got.Seconds, base.Seconds)
			}
		})
	}
}

// elemBytes is the element size of the tensor named name in tr.
func elemBytes(tr *traces.Trace, name string) int {
	id, _ := tr.TensorByName(name)
	return tr.Tensors[id].ElemBytes
}

// A block loading whole tiles keeps them in flight: Little's law takes the
// tile bytes times the tiles in flight per work unit where they exceed the
// device's figure (measured on kernels that load in loop steps), so a few
// blocks walking long rows of tiles are not held to the loop kernels' rate.
func TestTileLoadsKeepTheirTilesInFlight(t *testing.T) {
	// 8 heads, one work unit each (split = S): 16 tiles of 32 KiB per unit.
	shape := kernels.Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 128, Seq: 1024}
	dev := devtest.GPU()
	hbm, _ := dev.Level("hbm")
	little := func(perUnit float64) float64 { return 8 * perUnit / hbm.LatencySeconds }
	for _, tt := range []struct {
		tileKeys, inFlight int
		perUnit            float64
	}{
		{0, 0, dev.Concurrency.InflightBytesPerWorkUnit},
		{128, 0, 32 << 10},
		{128, 1, 32 << 10},
		{128, 2, 64 << 10},
	} {
		spec := kernels.Spec{Method: kernels.MethodDense, Impl: kernels.Fused, Split: 1024, TileKeys: tt.tileKeys, TilesInFlight: tt.inFlight}
		st := predictStages(t, trace(t, shape, spec), dev)[kernels.StageAttention]
		var got float64
		for _, l := range st.Levels {
			if l.Level == "hbm" {
				got = l.Bandwidth
			}
		}
		if want := little(tt.perUnit); math.Abs(got-want) > 1e-9*want {
			t.Errorf("tile keys %d, %d in flight: HBM at %g B/s, want 8 units x %g B / latency = %g", tt.tileKeys, tt.inFlight, got, tt.perUnit, want)
		}
	}
}
