package roofline

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/devtest"
	"github.com/bwsim/bwsim/models"
	"github.com/bwsim/bwsim/traces"
)

// llama27b and llama270b are the catalog's shapes (models/catalog.yaml),
// written out so these tests need no loader.
func llama27b() *models.Model {
	return &models.Model{Name: "llama-2-7b", Family: "llama", Layers: 32, DModel: 4096, Heads: 32, KVHeads: 32, HeadDim: 128,
		FFNDim: 11008, Vocab: 32000, MLP: models.MLPGated, Norm: models.NormRMS, Params: 6738415616,
		WeightDType: "fp16", KVDType: "fp16", MaxSeq: 4096}
}

func llama270b() *models.Model {
	return &models.Model{Name: "llama-2-70b", Family: "llama", Layers: 80, DModel: 8192, Heads: 64, KVHeads: 8, HeadDim: 128,
		FFNDim: 28672, Vocab: 32000, MLP: models.MLPGated, Norm: models.NormRMS, Params: 68976648192,
		WeightDType: "fp16", KVDType: "fp16", MaxSeq: 4096}
}

// fakeAttention is a trace source standing in for the kernels: one stage
// that reads every byte of K (kCopies times) and V of a layer once, with
// enough work units to reach the achievable bandwidth, and no arithmetic,
// plus an fp16 score vector per query head as its only intermediate. Its
// time per layer is overhead + bytes / bandwidth.
func fakeAttention(m *models.Model, s Shard, cacheLen, kCopies int, mean bool) AttentionMethod {
	name := "dense"
	if kCopies == 2 {
		name = "sparq"
	}
	return AttentionMethod{Name: name, Trace: func(batch int) (*traces.Trace, error) {
		B, Hkv, H, D, S := int64(batch), int64(s.KVHeads), int64(s.Heads), int64(m.HeadDim), int64(cacheLen)
		tr := traces.New(name, 1, 1)
		var ids []traces.TensorID
		ids = append(ids, tr.AddTensor(traces.Tensor{Name: "K", Role: traces.RoleKVCache, ElemBytes: 2, Shape: []int64{B, Hkv, S, D}, Layout: "B,Hkv,S,D"}))
		if kCopies == 2 {
			ids = append(ids, tr.AddTensor(traces.Tensor{Name: "Kt", Role: traces.RoleKVCache, ElemBytes: 2, Shape: []int64{B, Hkv, D, S}, Layout: "B,Hkv,D,S"}))
		}
		ids = append(ids, tr.AddTensor(traces.Tensor{Name: "V", Role: traces.RoleKVCache, ElemBytes: 2, Shape: []int64{B, Hkv, S, D}, Layout: "B,Hkv,S,D"}))
		if mean {
			tr.AddTensor(traces.Tensor{Name: "Vmean", Role: traces.RoleKVCache, ElemBytes: 4, Shape: []int64{B, Hkv, D}, Layout: "B,Hkv,D"})
		}
		tr.AddTensor(traces.Tensor{Name: "scores", Role: traces.RoleIntermediate, ElemBytes: 2, Shape: []int64{B, H, S}, Layout: "B,H,S"})
		st := tr.AddStage("attention", 1<<20)
		var buf traces.Buf
		for _, id := range ids {
			buf.Read(id, 0, tr.Tensors[id].Bytes())
		}
		tr.Append(st, &buf)
		return tr, nil
	}}
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Abs(want) }

// TestPlanByHand checks a whole plan of Llama 2 7B on the test GPU (80 GB,
// 1.8 TB/s achievable, 2.5 µs per launch, no matrix unit: fp16 vector 100
// TFLOP/s) against arithmetic done by hand.
func TestPlanByHand(t *testing.T) {
	m := llama27b()
	s, _ := NewShard(m, 1)
	spec := PlanSpec{Model: m, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1, KernelsPerLayer: 8}
	p, err := Plan(spec, []AttentionMethod{fakeAttention(m, s, 4096, 1, false), fakeAttention(m, s, 4096, 2, true)})
	if err != nil {
		t.Fatal(err)
	}
	dense, sparq := p.Plans[0], p.Plans[1]

	// KV bytes per token: 2 (K, V) · 32 layers · 32 KV heads · 128 · 2 B.
	if dense.KVBytesPerToken != 524288 || sparq.KVBytesPerToken != 786432 {
		t.Errorf("KV bytes per token: dense %v, K twice %v; want 524288, 786432", dense.KVBytesPerToken, sparq.KVBytesPerToken)
	}
	// Weights: 6738415616 · 2 B = 13476831232 B. Usable: 80e9 · 0.9 = 72e9.
	// Free: 72e9 − 13476831232 = 58523168768.
	// Per sequence (dense): KV 524288 · 4096 = 2147483648; activations
	// (2·4096 + (32+2·32)·128 + 32·128 + 2·11008) · 2 + 4·32000 = 221184;
	// scores 32 · 4096 · 2 = 262144: 2147966976 → 27 sequences.
	// SparQ adds Kt (1073741824) and v̄ 32·32·128·4 = 524288: 3222233088 → 18.
	if p.WeightBytesPerDevice != 13476831232 {
		t.Errorf("weights %v", p.WeightBytesPerDevice)
	}
	if dense.BytesPerSequence != 2147966976 || sparq.BytesPerSequence != 3222233088 {
		t.Errorf("bytes per sequence: dense %v, sparq %v", dense.BytesPerSequence, sparq.BytesPerSequence)
	}
	if dense.MaxBatch != 27 || sparq.MaxBatch != 18 {
		t.Errorf("max batch: dense %d, sparq %d; want 27, 18", dense.MaxBatch, sparq.MaxBatch)
	}
	if dense.Batch != 27 || sparq.Batch != 18 {
		t.Errorf("auto batch should be the largest that fits: %d, %d", dense.Batch, sparq.Batch)
	}
	mem := sparq.Memory
	if mem.Tensor("Kt") != 18*1073741824 || mem.Tensor("Vmean") != 18*524288 || mem.Tensor("K") != mem.Tensor("Kt") {
		t.Errorf("sparq KV tensors %+v", mem.KVTensors)
	}
	if sum := mem.WeightBytes + mem.KVCacheBytes + mem.ActivationBytes + mem.ReserveBytes + mem.FreeBytes; !near(sum, 80e9) {
		t.Errorf("memory breakdown sums to %v, not the capacity", sum)
	}

	// Time of dense at batch 27:
	// weights 13476831232 / 1.8e12;
	// attention 32 · (2.5e-6 + 27 · 32 · 2 · 4096 · 128 · 2 / 1.8e12);
	// arithmetic 2 · 6607077376 · 27 / 100e12 = 3.57 ms < weights: 0 exposed;
	// overhead 32 · 8 · 2.5e-6; no communication on one device.
	want := TimeBreakdown{
		Weights:   13476831232 / 1.8e12,
		Attention: 32 * (2.5e-6 + 27*32*2*4096*128*2/1.8e12),
		Overhead:  32 * 8 * 2.5e-6,
	}
	got := dense.Time
	if !near(got.Weights, want.Weights) || !near(got.Attention, want.Attention) || got.Arithmetic != 0 || got.Communication != 0 || !near(got.Overhead, want.Overhead) {
		t.Errorf("time %+v, want %+v", got, want)
	}
	if !near(dense.SecondsPerToken, want.Total()) || !near(dense.TokensPerSecond, 27/want.Total()) {
		t.Errorf("seconds per token %v, tokens/s %v", dense.SecondsPerToken, dense.TokensPerSecond)
	}
	// Ideal: bytes at peak (2e12), nothing else.
	if ideal := 13476831232/2e12 + 32*27*32*2*4096*128*2/2e12; !near(dense.IdealSecondsPerToken, ideal) {
		t.Errorf("ideal %v, want %v", dense.IdealSecondsPerToken, ideal)
	}
	if !near(sparq.Speedup, sparq.TokensPerSecond/dense.TokensPerSecond) || dense.Speedup != 1 {
		t.Errorf("speed-ups %v %v", dense.Speedup, sparq.Speedup)
	}
}

// TestTensorParallel checks the shard, the communication volume and its
// time for Llama 2 70B on 8 devices.
func TestTensorParallel(t *testing.T) {
	m := llama270b()
	// CommBytesPerStep: 80 layers · 2 all-reduces · 2·7/8 · (8192 · 2 B)
	// + 7/8 · 32000 · 2 B (logits) = 4587520 + 56000 per sequence.
	for _, b := range []int{1, 16} {
		if got, want := CommBytesPerStep(m, 8, b, 2), float64(b)*(4587520+56000); got != want {
			t.Errorf("comm bytes at batch %d: %v, want %v", b, got, want)
		}
	}
	if CommBytesPerStep(m, 1, 16, 2) != 0 {
		t.Error("one device communicates")
	}
	dev := devtest.GPU()
	dev.Links = []hwmodel.Link{{Name: "slow", BandwidthPerDirection: 50e9}, {Name: "fast", BandwidthPerDirection: 450e9, LatencySeconds: 1e-6}}
	s, err := NewShard(m, 8)
	if err != nil || s.Heads != 8 || s.KVHeads != 1 || s.KVReplicated {
		t.Fatalf("shard %+v, %v", s, err)
	}
	p, err := Plan(PlanSpec{Model: m, Device: dev, Devices: 8, Seq: 4096, Reserve: 0.1, KernelsPerLayer: 8, Batch: 4},
		[]AttentionMethod{fakeAttention(m, s, 4096, 1, false)})
	if err != nil {
		t.Fatal(err)
	}
	mp := p.Plans[0]
	if p.Link.Name != "fast" || p.Link.CommBytesPerToken != 4587520+56000 {
		t.Errorf("link %+v", p.Link)
	}
	// Ring steps: 80 · 2 · 2 · 7 + 7 = 2247, each paying 1 µs.
	if want := 4*(4587520+56000)/450e9 + 2247*1e-6; !near(mp.Time.Communication, want) {
		t.Errorf("communication %v, want %v", mp.Time.Communication, want)
	}
	// Collectives launch like kernels: 80 · 8 + 161.
	if want := float64(80*8+161) * 2.5e-6; !near(mp.Time.Overhead, want) {
		t.Errorf("overhead %v, want %v", mp.Time.Overhead, want)
	}
	// Whole model 2·80·8·128·2 = 327680 B per token; one device holds one
	// KV head of 8: 40960.
	if mp.KVBytesPerToken != 327680 || mp.KVBytesPerTokenPerDevice != 40960 {
		t.Errorf("KV per token %v, per device %v", mp.KVBytesPerToken, mp.KVBytesPerTokenPerDevice)
	}
	if mp.TokensPerSecondPerDevice != mp.TokensPerSecond/8 {
		t.Error("per-device rate")
	}

	// 16 devices: 8 KV heads are replicated, each device keeps one; the
	// whole model still stores 8 per layer.
	s16, err := NewShard(m, 16)
	if err != nil || s16.Heads != 4 || s16.KVHeads != 1 || !s16.KVReplicated {
		t.Fatalf("shard of 16: %+v, %v", s16, err)
	}
	p16, err := Plan(PlanSpec{Model: m, Device: dev, Devices: 16, Seq: 4096, Reserve: 0.1, Batch: 1}, []AttentionMethod{fakeAttention(m, s16, 4096, 1, false)})
	if err != nil {
		t.Fatal(err)
	}
	if p16.Plans[0].KVBytesPerToken != 327680 || !strings.Contains(strings.Join(p16.Notes, " "), "copy of the KV head") {
		t.Errorf("replicated: %v per token, notes %q", p16.Plans[0].KVBytesPerToken, p16.Notes)
	}
}

func TestLatencyLimitAndTarget(t *testing.T) {
	m := llama27b()
	s, _ := NewShard(m, 1)
	base := PlanSpec{Model: m, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1, KernelsPerLayer: 8}
	step := func(b int) float64 {
		spec := base
		spec.Batch = b
		p, err := Plan(spec, []AttentionMethod{fakeAttention(m, s, 4096, 1, false)})
		if err != nil {
			t.Fatal(err)
		}
		return p.Plans[0].SecondsPerToken
	}
	limit := (step(10) + step(11)) / 2
	spec := base
	spec.LatencyLimit, spec.TargetTokensPerSecond = limit, 10000
	p, err := Plan(spec, []AttentionMethod{fakeAttention(m, s, 4096, 1, false)})
	if err != nil {
		t.Fatal(err)
	}
	mp := p.Plans[0]
	if mp.Batch != 10 {
		t.Errorf("latency-limited batch %d, want 10 (step(10) %v ≤ %v < step(11) %v)", mp.Batch, step(10), limit, step(11))
	}
	if want := int(math.Ceil(10000 / mp.TokensPerSecond)); mp.Replicas != want || mp.DevicesNeeded != want {
		t.Errorf("replicas %d devices %d, want %d", mp.Replicas, mp.DevicesNeeded, want)
	}

	spec.Curve = true
	p, err = Plan(spec, []AttentionMethod{fakeAttention(m, s, 4096, 1, false)})
	if err != nil {
		t.Fatal(err)
	}
	var batches []int
	for _, pt := range p.Plans[0].Curve {
		batches = append(batches, pt.Batch)
		if pt.Fits != (pt.Batch <= 27) || !near(pt.TokensPerSecond, float64(pt.Batch)/pt.SecondsPerToken) {
			t.Errorf("curve point %+v", pt)
		}
	}
	if got := fmt.Sprint(batches); got != "[1 2 4 8 10 16 27 32]" {
		t.Errorf("curve batches %s", got)
	}
}

func TestPlanErrors(t *testing.T) {
	m7, m70 := llama27b(), llama270b()
	s7, _ := NewShard(m7, 1)
	dense7 := []AttentionMethod{fakeAttention(m7, s7, 4096, 1, false)}
	noLinks := devtest.GPU()
	cases := []struct {
		name    string
		spec    PlanSpec
		methods []AttentionMethod
		want    []string
	}{
		{"weights do not fit", PlanSpec{Model: m70, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1}, dense7,
			[]string{"weights of llama-2-70b", "more than", "use at least 2 devices"}},
		{"batch does not fit", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1, Batch: 28}, dense7,
			[]string{"dense: batch 28 does not fit", "at most 27"}},
		{"one sequence does not fit", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 1 << 17, Reserve: 0.1},
			[]AttentionMethod{fakeAttention(m7, s7, 1<<17, 2, true)}, []string{"one sequence of 131072 positions", "only"}},
		{"latency impossible", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1, LatencyLimit: 1e-3}, dense7,
			[]string{"even batch 1 takes", "over the 1 ms latency limit"}},
		{"batch over latency", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096, Reserve: 0.1, Batch: 20, LatencyLimit: 10e-3}, dense7,
			[]string{"batch 20 takes", "latency limit"}},
		{"heads do not split", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 3, Seq: 4096}, dense7,
			[]string{"32 attention heads", "3 devices", "try 1, 2, 4, 8, 16, 32"}},
		{"no links", PlanSpec{Model: m7, Device: noLinks, Devices: 2, Seq: 4096}, dense7, []string{"lists no links"}},
		{"unknown link", PlanSpec{Model: m7, Device: func() *hwmodel.Device {
			d := devtest.GPU()
			d.Links = []hwmodel.Link{{Name: "nvlink", BandwidthPerDirection: 1e11}}
			return d
		}(), Devices: 2, Seq: 4096, Link: "ib"}, dense7, []string{`no link "ib"`, "nvlink"}},
		{"unknown level", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096, Level: "l2"}, dense7, []string{`no memory level "l2"`, "hbm"}},
		{"bad numbers", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 0, Reserve: 1, TargetTokensPerSecond: -1, LatencyLimit: math.NaN()}, dense7,
			[]string{"seq must be positive", "reserve", "target tokens per second", "latency limit"}},
		{"bad dtype", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096, KVDType: "q8_0"}, dense7, []string{"kv dtype", "fp16, bf16, fp32"}},
		{"no methods", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096}, nil, []string{"no attention methods"}},
		{"twice", PlanSpec{Model: m7, Device: devtest.GPU(), Devices: 1, Seq: 4096}, append(dense7, dense7...), []string{"listed twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.spec, tc.methods)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNotesAndWindow(t *testing.T) {
	m := llama27b()
	m.SlidingWindow = 1024
	s, _ := NewShard(m, 1)
	p, err := Plan(PlanSpec{Model: m, Device: devtest.GPU(), Devices: 1, Seq: 8192, Reserve: 0.1, Batch: 1},
		[]AttentionMethod{fakeAttention(m, s, 1024, 1, false)})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "\n")
	if p.CacheLen != 1024 || !strings.Contains(notes, "sliding window of 1024") || !strings.Contains(notes, "beyond llama-2-7b's trained context of 4096") {
		t.Errorf("cache len %d, notes:\n%s", p.CacheLen, notes)
	}
	if p.Plans[0].BytesPerSequence < 524288*1024 || p.Plans[0].BytesPerSequence > 524288*1025 {
		t.Errorf("a 1024-position window holds %v bytes per sequence", p.Plans[0].BytesPerSequence)
	}
}
