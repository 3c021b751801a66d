package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/config"
	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/models"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/sweep"
)

// load returns a catalog model and a device from the embedded catalogs
// (plus the documented EPYC host file).
func load(t *testing.T, model, device string) (*models.Model, *hwmodel.Device) {
	t.Helper()
	mc, err := config.LoadModels(config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mc.Get(model)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := config.LoadDevices(config.LoadOptions{SkipHostFile: true, DeviceFiles: []string{filepath.Join("..", "docs", "devices", "epyc-7763.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dc.Get(device)
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func methods(t *testing.T, list string) []sweep.MethodSpec {
	t.Helper()
	ms, err := sweep.ParseMethods([]string{list})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestKVBytesFromKernels checks that the cache the plan counts is the one
// the kernels declare: 2·32·32·128·2 = 524288 bytes per token for Llama 2
// 7B in fp16, 786432 with K stored twice, 524288 again with K stored once;
// v̄ adds 32·32·128·4 bytes per sequence; two devices hold half each.
func TestKVBytesFromKernels(t *testing.T) {
	m, dev := load(t, "llama-2-7b", "h100-sxm")
	cases := []struct {
		devices          int
		list             string
		perToken, perDev []float64
		vmean            []float64
	}{
		{1, "dense,sparq:r=32:k=128,sparq:r=32:k=128:layout=once,sparq:r=32:k=128:realloc=false",
			[]float64{524288, 786432, 524288, 786432}, []float64{524288, 786432, 524288, 786432}, []float64{0, 524288, 524288, 0}},
		{2, "dense,sparq:r=32:k=128", []float64{524288, 786432}, []float64{262144, 393216}, []float64{0, 262144}},
	}
	for _, tc := range cases {
		p, err := Plan(context.Background(), Request{Methods: methods(t, tc.list),
			PlanSpec: roofline.PlanSpec{Model: m, Device: dev, Devices: tc.devices, Seq: 4096, Batch: 1, Reserve: roofline.DefaultReserve}})
		if err != nil {
			t.Fatal(err)
		}
		for i, mp := range p.Plans {
			if mp.KVBytesPerToken != tc.perToken[i] || mp.KVBytesPerTokenPerDevice != tc.perDev[i] || mp.Memory.Tensor("Vmean") != tc.vmean[i] {
				t.Errorf("%d devices, %s: per token %v (per device %v), v̄ %v; want %v, %v, %v", tc.devices, mp.Method,
					mp.KVBytesPerToken, mp.KVBytesPerTokenPerDevice, mp.Memory.Tensor("Vmean"), tc.perToken[i], tc.perDev[i], tc.vmean[i])
			}
			if want := mp.KVBytesPerTokenPerDevice*4096 + tc.vmean[i]; mp.Memory.KVCacheBytes != want {
				t.Errorf("%s: KV cache %v, want %v", mp.Method, mp.Memory.KVCacheBytes, want)
			}
		}
	}
}

// TestLlama70BOnEightH100 is the question: Llama 2 70B on 8 H100s
// at 32K, dense against SparQ 1/8. SparQ's larger cache must lower the
// batch that fits, and its smaller traffic must raise tokens/s at the same
// batch.
func TestLlama70BOnEightH100(t *testing.T) {
	m, dev := load(t, "llama-2-70b", "h100-sxm")
	p, err := Plan(context.Background(), Request{Methods: methods(t, "dense,sparq:ratio=1/8"),
		PlanSpec: roofline.PlanSpec{Model: m, Device: dev, Devices: 8, Seq: 32768, Reserve: roofline.DefaultReserve,
			KernelsPerLayer: roofline.DefaultKernelsPerLayer, TargetTokensPerSecond: 10000, Curve: true}})
	if err != nil {
		t.Fatal(err)
	}
	dense, sparq := p.Plans[0], p.Plans[1]
	if sparq.MaxBatch >= dense.MaxBatch {
		t.Errorf("K stored twice should fit fewer sequences: dense %d, sparq %d", dense.MaxBatch, sparq.MaxBatch)
	}
	if p.Link == nil || p.Link.Name != "nvlink4" || dense.Time.Communication <= 0 {
		t.Errorf("tensor parallelism over %+v, %v s", p.Link, dense.Time.Communication)
	}
	var dAt, sAt float64
	for _, pt := range dense.Curve {
		if pt.Batch == sparq.MaxBatch {
			dAt = pt.TokensPerSecond
		}
	}
	for _, pt := range sparq.Curve {
		if pt.Batch == sparq.MaxBatch {
			sAt = pt.TokensPerSecond
		}
	}
	if !(sAt > dAt) || dAt == 0 {
		t.Errorf("at batch %d SparQ gives %v tokens/s, dense %v", sparq.MaxBatch, sAt, dAt)
	}
	if dense.DevicesNeeded == 0 || dense.DevicesNeeded%8 != 0 {
		t.Errorf("devices needed %d", dense.DevicesNeeded)
	}
	t.Logf("dense: max batch %d, %.4g tokens/s, %d devices for 10k; sparq: max batch %d, %.4g tokens/s, %d devices",
		dense.MaxBatch, dense.TokensPerSecond, dense.DevicesNeeded, sparq.MaxBatch, sparq.TokensPerSecond, sparq.DevicesNeeded)

	dir := t.TempDir()
	paths, err := WriteOutputs(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %v", paths)
	}
	png, _ := os.ReadFile(filepath.Join(dir, FigureName+".png"))
	svg, _ := os.ReadFile(filepath.Join(dir, FigureName+".svg"))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("memory wall")) {
		t.Error("figure files are not a PNG and an SVG with the memory wall")
	}
	var back struct {
		Plans []struct {
			Method          string  `json:"method"`
			KVBytesPerToken float64 `json:"kv_bytes_per_token"`
			MaxBatch        int     `json:"max_batch"`
			SecondsPerToken float64 `json:"seconds_per_token"`
			TokensPerSecond float64 `json:"tokens_per_second"`
			Memory          struct {
				WeightBytes  float64 `json:"weight_bytes"`
				KVCacheBytes float64 `json:"kv_cache_bytes"`
			} `json:"memory"`
		} `json:"plans"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, JSONName))
	if err := json.Unmarshal(data, &back); err != nil || len(back.Plans) != 2 || back.Plans[1].KVBytesPerToken != 3*80*8*128*2 ||
		back.Plans[0].MaxBatch != dense.MaxBatch || back.Plans[0].Memory.WeightBytes == 0 {
		t.Errorf("plan.json: %v %+v", err, back)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestPlannerErrors(t *testing.T) {
	m, dev := load(t, "llama-2-7b", "h100-sxm")
	spec := func(devices int, kv string) roofline.PlanSpec {
		return roofline.PlanSpec{Model: m, Device: dev, Devices: devices, Seq: 4096, KVDType: kv}
	}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"r above head size", Request{PlanSpec: spec(1, ""), Methods: methods(t, "sparq:r=256:k=64")}, "r 256 exceeds head-dim 128"},
		{"no methods", Request{PlanSpec: spec(1, "")}, "no methods"},
		{"bad kv dtype", Request{PlanSpec: spec(1, "fp8"), Methods: methods(t, "dense")}, "kv dtype"},
		{"heads", Request{PlanSpec: spec(5, ""), Methods: methods(t, "dense")}, "do not split evenly over 5 devices"},
		{"no seq", Request{PlanSpec: roofline.PlanSpec{Model: m, Device: dev, Devices: 1}, Methods: methods(t, "dense")}, "seq must be positive"},
	}
	for _, tc := range cases {
		if _, err := Plan(context.Background(), tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
