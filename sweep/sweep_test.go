package sweep

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

// testGPU is a small GPU-like device whose HBM holds hbmBytes.
func testGPU(name string, hbmBytes float64) *hwmodel.Device {
	return &hwmodel.Device{
		Name: name, Kind: hwmodel.KindGPU, Description: "test GPU",
		Levels: map[string]hwmodel.MemoryLevel{
			"smem": {Role: hwmodel.RoleOnChip, Tier: 0, CapacityBytes: 1 << 20, PeakBandwidth: 20e12, AchievableBandwidth: 15e12, GranularityBytes: 4, LatencySeconds: 30e-9},
			"l2":   {Role: hwmodel.RoleCache, Tier: 1, CapacityBytes: 32 << 20, PeakBandwidth: 6e12, AchievableBandwidth: 5e12, GranularityBytes: 32, LatencySeconds: 200e-9},
			"hbm":  {Role: hwmodel.RoleMemory, Tier: 2, CapacityBytes: hbmBytes, PeakBandwidth: 2e12, AchievableBandwidth: 1.6e12, GranularityBytes: 32, LatencySeconds: 500e-9},
		},
		Compute: []hwmodel.Compute{
			{Unit: "vector", DType: "fp32", OpsPerSecond: 20e12}, {Unit: "vector", DType: "fp16", OpsPerSecond: 80e12},
			{Unit: "matrix", DType: "fp16", OpsPerSecond: 300e12}, {Unit: "special", DType: "fp32", OpsPerSecond: 1e12},
		},
		Overheads:   hwmodel.Overheads{LaunchSeconds: 3e-6},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 100, WorkUnitsPerParallelUnit: 8, InflightBytesPerWorkUnit: 1000},
	}
}

// testIPU has SRAM and streaming memory.
func testIPU() *hwmodel.Device {
	return &hwmodel.Device{
		Name: "test-ipu", Kind: hwmodel.KindIPU, Description: "test IPU",
		Levels: map[string]hwmodel.MemoryLevel{
			"sram":      {Role: hwmodel.RoleMemory, Tier: 0, CapacityBytes: 900e6, PeakBandwidth: 60e12, AchievableBandwidth: 40e12, GranularityBytes: 4, LatencySeconds: 3e-9},
			"streaming": {Role: hwmodel.RoleMemory, Tier: 2, CapacityBytes: 64e9, PeakBandwidth: 16e9, AchievableBandwidth: 7e9, GranularityBytes: 256, LatencySeconds: 2e-6},
		},
		Compute:     []hwmodel.Compute{{Unit: "vector", DType: "fp32", OpsPerSecond: 10e12}, {Unit: "vector", DType: "fp16", OpsPerSecond: 20e12}},
		Overheads:   hwmodel.Overheads{SyncSeconds: 3e-7},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 1472, WorkUnitsPerParallelUnit: 6, InflightBytesPerWorkUnit: 16},
	}
}

func TestParseMethod(t *testing.T) {
	for _, tc := range []struct {
		in, canon, slug string
	}{
		{"dense", "dense", "dense"},
		{" Dense:impl=fused ", "dense:impl=fused", "dense-fused"},
		{"sparq", "sparq:r=32:k=128", "sparq-r32-k128"},
		{"sparq:r=32:k=128", "sparq:r=32:k=128", "sparq-r32-k128"},
		{"sparq:k=64", "sparq:r=32:k=64", "sparq-r32-k64"},
		{"sparq:ratio=1/8", "sparq:ratio=1/8", "sparq-1of8"},
		{"sparq:ratio=0.25", "sparq:ratio=1/4", "sparq-1of4"},
		{"sparq:ratio=0.3", "sparq:ratio=0.3", "sparq-0.3"},
		{"sparq:r=16:k=64:k-layout=once:impl=fused:realloc=false", "sparq:r=16:k=64:layout=once:impl=fused:realloc=false", "sparq-r16-k64-once-fused-norealloc"},
		{"sparq:layout=twice:realloc=true", "sparq:r=32:k=128:layout=twice", "sparq-r32-k128"},
		{"topk", "topk:k=128", "topk-k128"},
		{"topk:k=64:realloc=false", "topk:k=64:realloc=false", "topk-k64-norealloc"},
		{"flexgen:k=256", "flexgen:k=256", "flexgen-k256"},
		{"h2o:impl=fused", "h2o:k=128:impl=fused", "h2o-k128-fused"},
		{"window", "window:k=128", "window-k128"},
		{"window:k=64:sinks=0", "window:k=64:sinks=0", "window-k64-s0"},
		{"quest:page=16", "quest:k=128", "quest-k128"},
		{"quest:k=256:page=32", "quest:k=256:page=32", "quest-k256-p32"},
		{"loki", "loki:r=32:k=128", "loki-r32-k128"},
		{"loki:ratio=1/4:layout=twice", "loki:ratio=1/4:layout=twice", "loki-1of4-twice"},
		{"loki:layout=once", "loki:r=32:k=128:layout=once", "loki-r32-k128"},
		{"doublesparse", "doublesparse:r=16:k=128", "doublesparse-r16-k128"},
		{"doublesparse:label-bits=4:r=8", "doublesparse:r=8:k=128:label-bits=4", "doublesparse-r8-k128-b4"},
		{"doublesparse:bits=2", "doublesparse:r=16:k=128:label-bits=2", "doublesparse-r16-k128-b2"},
		{"doublesparse:ratio=1/8:label_bits=16", "doublesparse:ratio=1/8", "doublesparse-1of8"},
		{"h2o:ratio=1/8", "h2o:ratio=1/8", "h2o-1of8"},
		{"window:ratio=1/16:sinks=8", "window:ratio=1/16:sinks=8", "window-1of16-s8"},
		{"quest:ratio=1/4:page=32", "quest:ratio=1/4:page=32", "quest-1of4-p32"},
		{"quest:ratio=1/8", "quest:ratio=1/8", "quest-1of8"},
	} {
		m, err := ParseMethod(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if m.String() != tc.canon || m.Slug() != tc.slug {
			t.Errorf("%q: %q %q, want %q %q", tc.in, m.String(), m.Slug(), tc.canon, tc.slug)
		}
		again, err := ParseMethod(m.String())
		if err != nil || again != m {
			t.Errorf("%q does not round-trip: %+v, %v", m.String(), again, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", `unknown method ""`},
		{"h3o", `unknown method "h3o" (want dense, sparq, topk, flexgen, h2o, window, quest, loki, doublesparse)`},
		{"h2o:r=8", `unknown key "r" for h2o (keys: k, ratio, impl)`},
		{"topk:ratio=1/8", `unknown key "ratio" for topk (it reads all of K to score exactly, so it never moves less than half of dense's bytes; give k)`},
		{"flexgen:ratio=1/2", `unknown key "ratio" for flexgen (it reads all of K`},
		{"loki:bits=4", `unknown key "label-bits" for loki (keys: r, k, ratio, layout, impl)`},
		{"doublesparse:bits=3", "label-bits=3: want one of [1 2 4 8 16]"},
		{"doublesparse:bits=4:label-bits=8", `key "label-bits" given twice`},
		{"h2o:ratio=1/8:k=64", "ratio sets k from the shape; give either ratio or k"},
		{"loki:ratio=1/8:r=8", "ratio sets r and k from the shape; give either ratio or r and k"},
		{"quest:ratio=1/16", "quest's page metadata alone reads 1/16 of dense's bytes (a min and a max per channel and page of 16); want a ratio above 1/16, or a larger page"},
		{"quest:page=8:ratio=1/8", "want a ratio above 1/8"},
		{"quest:k=8", "page 16 exceeds the token budget k 8: not one page fits"},
		{"window:k=2", "sinks 4 exceed the token budget k 2"},
		{"window:k=8:sinks=9", "sinks 9 exceed the token budget k 8"},
		{"window:sinks=-1", "sinks=-1: not a whole number ≥ 0"},
		{"quest:page=0", "page=0: must be positive"},
		{"dense:r=32", `unknown key "r" for dense (keys: impl)`},
		{"sparq:x=1", `unknown key "x" for sparq (keys: r, k, ratio, layout, impl, realloc)`},
		{"sparq:r", `"r" is not KEY=VALUE`},
		{"sparq:r=", `"r=" is not KEY=VALUE`},
		{"sparq:r=0", "r=0: must be positive"},
		{"sparq:r=3.5", "r=3.5: not a whole number"},
		{"sparq:r=8:r=16", `key "r" given twice`},
		{"sparq:ratio=8", "ratio=8: must be in (0, 1]"},
		{"sparq:ratio=1/0", "not a fraction"},
		{"sparq:ratio=1/8:k=64", "give either ratio or r and k"},
		{"sparq:layout=thrice", "want twice or once"},
		{"sparq:impl=magic", "want unfused or fused"},
		{"sparq:realloc=maybe", "want true or false"},
	} {
		_, err := ParseMethod(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
	if _, err := ParseMethods([]string{"dense,sparq", "sparq:r=32:k=128"}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate accepted: %v", err)
	}
	if _, err := ParseMethods([]string{" , "}); err == nil {
		t.Error("empty list accepted")
	}
}

func TestMethodSpecPerShape(t *testing.T) {
	ratio, _ := ParseMethod("sparq:ratio=1/8")
	fixed, _ := ParseMethod("sparq:r=32:k=128:layout=once")
	for _, tc := range []struct {
		m        MethodSpec
		d, s     int
		r, k     int
		layout   kernels.KLayout
		wantImpl kernels.Impl
	}{
		{ratio, 128, 4096, 16, 256, kernels.KTwice, kernels.Unfused},
		{ratio, 128, 131072, 16, 8192, kernels.KTwice, kernels.Unfused},
		{ratio, 64, 1000, 8, 63, kernels.KTwice, kernels.Unfused},
		{ratio, 4, 8, 1, 1, kernels.KTwice, kernels.Unfused},
		{fixed, 128, 4096, 32, 128, kernels.KOnce, kernels.Unfused},
		{mustParse(t, "loki:ratio=1/4"), 128, 4096, 32, 512, kernels.KOnce, kernels.Unfused},
		{mustParse(t, "h2o:k=64"), 128, 4096, 0, 64, "", kernels.Unfused},
		{mustParse(t, "quest:impl=fused"), 128, 4096, 0, 128, "", kernels.Fused},
		// ratio=1/c per method: half proxy, half gather where there is a
		// proxy; k = S/c for the methods that only read k rows; Quest's
		// page bounds take 1/page.
		{mustParse(t, "doublesparse:ratio=1/8"), 128, 4096, 16, 256, "", kernels.Unfused},
		{mustParse(t, "h2o:ratio=1/8"), 128, 4096, 0, 512, "", kernels.Unfused},
		{mustParse(t, "window:ratio=1/16"), 128, 4096, 0, 256, "", kernels.Unfused},
		{mustParse(t, "quest:ratio=1/8"), 128, 4096, 0, 256, "", kernels.Unfused},
		{mustParse(t, "quest:ratio=1/4:page=32"), 128, 4096, 0, 896, "", kernels.Unfused},
		{mustParse(t, "window:ratio=1/16"), 64, 8, 0, 1, "", kernels.Unfused},
	} {
		sp := tc.m.Spec(kernels.Shape{HeadDim: tc.d, Seq: tc.s}, true)
		if sp.R != tc.r || sp.K != tc.k || sp.KLayout != tc.layout || sp.Impl != tc.wantImpl || !sp.AppendKV {
			t.Errorf("%s at d=%d S=%d: %+v, want r=%d k=%d %s", tc.m, tc.d, tc.s, sp, tc.r, tc.k, tc.layout)
		}
	}
}

func mustParse(t *testing.T, s string) MethodSpec {
	t.Helper()
	m, err := ParseMethod(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func parseK(s string) (int, error) {
	mult := 1
	if strings.HasSuffix(s, "k") {
		mult, s = 1024, strings.TrimSuffix(s, "k")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad count %q", s)
	}
	return n * mult, nil
}

func TestParseCounts(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []int
		err  string
	}{
		{in: []string{"1k..128k"}, want: []int{1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072}},
		{in: []string{"1,64"}, want: []int{1, 64}},
		{in: []string{"64, 1,1"}, want: []int{1, 64}},
		{in: []string{"1k..8k:+1k"}, want: []int{1024, 2048, 3072, 4096, 5120, 6144, 7168, 8192}},
		{in: []string{"1..100:*4"}, want: []int{1, 4, 16, 64}},
		{in: []string{"1..100:x10", "3"}, want: []int{1, 3, 10, 100}},
		{in: []string{"4k..4k"}, want: []int{4096}},
		{in: []string{"8..4"}, err: "end 4 is below start 8"},
		{in: []string{"1..8:*1"}, err: "factor"},
		{in: []string{"1..8:/2"}, err: "want *F (multiply) or +D (add)"},
		{in: []string{"1..8:+0"}, err: "bad count"},
		{in: []string{"x"}, err: "bad count"},
		{in: []string{""}, err: "empty list"},
		{in: []string{"1..100000:+1"}, err: "more than 4096 values"},
	} {
		got, err := ParseCounts(tc.in, parseK)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPlacement(t *testing.T) {
	devs := []*hwmodel.Device{testGPU("gpu", 80e9), testIPU()}
	for _, tc := range []struct {
		rules []string
		want  map[string]map[traces.Role]string
		err   string
	}{
		{nil, map[string]map[traces.Role]string{"gpu": {}, "test-ipu": {"kv-cache": "streaming"}}, ""},
		{[]string{"kv-cache=sram"}, map[string]map[traces.Role]string{"gpu": {}, "test-ipu": {"kv-cache": "sram"}}, ""},
		{[]string{"test-ipu:kv-cache=auto"}, map[string]map[traces.Role]string{"gpu": {}, "test-ipu": {}}, ""},
		{[]string{"intermediate=hbm", "test-ipu:intermediate=sram"}, map[string]map[traces.Role]string{"gpu": {"intermediate": "hbm"}, "test-ipu": {"kv-cache": "streaming", "intermediate": "sram"}}, ""},
		{[]string{"kv-cache=l2"}, nil, "gpu's l2 is a cache level"},
		{[]string{"kv-cache=dram"}, nil, `no device has a memory level "dram" (memory levels: gpu:hbm, test-ipu:sram, test-ipu:streaming, or auto)`},
		{[]string{"h100:kv-cache=hbm"}, nil, `device "h100" is not in the sweep`},
		{[]string{"gpu:kv-cache=sram"}, nil, `no device has a memory level "sram"`},
	} {
		var rules []Placement
		for _, s := range tc.rules {
			p, err := ParsePlacement(s)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			if p.String() != strings.TrimSpace(s) {
				t.Errorf("%q prints as %q", s, p)
			}
			rules = append(rules, p)
		}
		got, err := ResolvePlacement(rules, devs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.rules, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v %v, want %v", tc.rules, got, err, tc.want)
		}
	}
	for _, bad := range []string{"kv-cache", "=hbm", "weights=hbm", "kv-cache="} {
		if _, err := ParsePlacement(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// smallGrid runs in well under a second.
func smallGrid() Grid {
	g := DefaultGrid()
	g.Methods = []MethodSpec{{Name: kernels.MethodDense}, {Name: kernels.MethodSparQ, R: 8, K: 32}, {Name: kernels.MethodSparQ, Ratio: 0.25}}
	g.Seqs = []int{256, 512, 1024}
	g.Batches = []int{1, 4}
	g.Heads, g.KVHeads, g.HeadDim = 4, 2, 32
	g.Devices = []string{"gpu", "small-gpu", "test-ipu"}
	return g
}

func smallDevices() []*hwmodel.Device {
	// small-gpu holds the KV caches of batch 1 and of batch 4 at S = 256
	// (≤ 393 KB) but not the others (≥ 524 KB).
	return []*hwmodel.Device{testGPU("gpu", 80e9), testGPU("small-gpu", 450e3), testIPU()}
}

func TestGrid(t *testing.T) {
	g := smallGrid()
	g.Impls = []kernels.Impl{kernels.Unfused, kernels.Fused}
	g.Layouts = []kernels.KLayout{kernels.KTwice, kernels.KOnce}
	g.Methods = append(g.Methods, MethodSpec{Name: kernels.MethodSparQ, R: 4, K: 16, Impl: kernels.Fused})
	var labels []string
	for _, v := range g.Variants() {
		labels = append(labels, v.Label)
	}
	want := []string{
		"dense", "dense:impl=fused",
		"sparq:r=8:k=32", "sparq:r=8:k=32:layout=once", "sparq:r=8:k=32:impl=fused", "sparq:r=8:k=32:layout=once:impl=fused",
		"sparq:ratio=1/4", "sparq:ratio=1/4:layout=once", "sparq:ratio=1/4:impl=fused", "sparq:ratio=1/4:layout=once:impl=fused",
		"sparq:r=4:k=16:impl=fused", "sparq:r=4:k=16:layout=once:impl=fused",
	}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("variants\n%q\nwant\n%q", labels, want)
	}
	pts := g.Points()
	if len(pts) != len(want)*3*2 {
		t.Errorf("%d points", len(pts))
	}
	keys := map[string]bool{}
	for i, p := range pts {
		if p.Index != i || keys[p.Key] || !strings.HasPrefix(p.Key, "method="+p.Variant.Spec.FullString()+"/") || !strings.Contains(p.Key, "/steps=1/") {
			t.Errorf("point %d: index %d key %q", i, p.Index, p.Key)
		}
		keys[p.Key] = true
	}
	if err := g.Validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		edit func(*Grid)
		want string
	}{
		{func(g *Grid) { g.Methods = []MethodSpec{{Name: kernels.MethodSparQ, R: 64, K: 8}} }, "r 64 exceeds head-dim 32"},
		{func(g *Grid) { g.KVHeads = 3 }, "heads 4 is not a multiple of kv-heads 3"},
		{func(g *Grid) { g.Seqs = nil }, "no sequence lengths"},
		{func(g *Grid) { g.DTypes = []kernels.DType{"fp8"} }, `unknown dtype "fp8"`},
		{func(g *Grid) { g.Workload = "real" }, `unknown workload "real"`},
		{func(g *Grid) { g.SampleHeads = 100 }, "sample-heads 100 exceeds"},
	} {
		g := smallGrid()
		tc.edit(&g)
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
}

func TestShards(t *testing.T) {
	g := smallGrid()
	all := g.Points()
	for _, n := range []int{1, 2, 3, 5, 40} {
		seen := map[string]int{}
		owner := map[string]int{}
		for i := 1; i <= n; i++ {
			s := Shard{Index: i, Count: n}
			if n == 1 {
				s = Shard{}
			}
			for _, p := range s.Select(all) {
				seen[p.Key]++
				if o, ok := owner[p.Group]; ok && o != i {
					t.Errorf("n=%d: group %s split over shards %d and %d", n, p.Group, o, i)
				}
				owner[p.Group] = i
			}
		}
		if len(seen) != len(all) {
			t.Errorf("n=%d: %d of %d points covered", n, len(seen), len(all))
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("n=%d: %s in %d shards", n, k, c)
			}
		}
	}
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s, _ := ParseShard(" 2/8 "); s.String() != "2/8" {
		t.Errorf("shard %v", s)
	}
}

func TestRun(t *testing.T) {
	g := smallGrid()
	res, err := Run(context.Background(), g, smallDevices(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Done != 18 || len(res.Rows) != 18*3 || len(res.Traffic) != 18 {
		t.Fatalf("complete %v, done %d, %d rows, %d traffic", res.Complete, res.Done, len(res.Rows), len(res.Traffic))
	}
	dense := map[string]Row{}
	for _, r := range res.Rows {
		if r.Method == "dense" {
			dense[r.Device+groupOf(r)] = r
		}
	}
	for _, r := range res.Rows {
		d := dense[r.Device+groupOf(r)]
		if r.Seconds <= 0 || r.IdealSeconds <= 0 || r.Bytes <= 0 || r.MovedBytes < r.Bytes/2 || r.Bound == "" || len(r.Stages) == 0 {
			t.Errorf("%s %s: %+v", r.Key, r.Device, r)
		}
		if got := d.Seconds / r.Seconds; r.Speedup != got || r.IdealSpeedup != d.IdealSeconds/r.IdealSeconds {
			t.Errorf("%s %s: speed-up %v, want %v", r.Key, r.Device, r.Speedup, got)
		}
		if r.Method == "dense" && (r.Speedup != 1 || r.RelL2Error != 0 || r.AlphaMean != 1) {
			t.Errorf("dense row %+v", r)
		}
		if r.Method == "sparq" && (r.RelL2Error <= 0 || r.RelL2Error > 0.5 || r.AlphaMean <= 0 || r.AlphaMean > 1) {
			t.Errorf("%s: fidelity %v %v", r.Key, r.RelL2Error, r.AlphaMean)
		}
		wantFit := r.Device != "small-gpu" || r.Batch == 1 || r.Seq == 256
		if r.Fits != wantFit || (r.Note == "") == !wantFit {
			t.Errorf("%s on %s: fits %v (%q)", r.Key, r.Device, r.Fits, r.Note)
		}
		wantLevel := map[string]string{"gpu": "hbm", "small-gpu": "hbm", "test-ipu": "streaming"}[r.Device]
		if r.KVLevel != wantLevel {
			t.Errorf("%s on %s: KV cache in %s", r.Key, r.Device, r.KVLevel)
		}
		if r.Label == "sparq:ratio=1/4" && (r.R != 8 || r.K != r.Seq/8) {
			t.Errorf("%s: r=%d k=%d", r.Key, r.R, r.K)
		}
	}
	// The same point priced on devices that differ only in capacity costs
	// the same when it fits.
	for i := 0; i+2 < len(res.Rows); i += 3 {
		a, b := res.Rows[i], res.Rows[i+1]
		if a.Device != "gpu" || b.Device != "small-gpu" || a.Key != b.Key {
			t.Fatalf("row order: %s %s, %s %s", a.Key, a.Device, b.Key, b.Device)
		}
		if a.Seconds != b.Seconds {
			t.Errorf("%s: %v on gpu, %v on small-gpu", a.Key, a.Seconds, b.Seconds)
		}
	}
	// Deterministic whatever the scheduling.
	again, err := Run(context.Background(), g, smallDevices(), Options{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	compareRows(t, again.Rows, res.Rows)

	if _, err := Run(context.Background(), g, smallDevices()[:2], Options{}); err == nil {
		t.Error("missing device accepted")
	}
}

func compareRows(t *testing.T, got, want []Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestInterruptResume cancels a sweep at several moments, resumes it, and
// checks the result equals an uninterrupted run row by row, with no point
// run twice.
func TestInterruptResume(t *testing.T) {
	g := smallGrid()
	devs := smallDevices()
	full, err := Run(context.Background(), g, devs, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	type moment struct {
		name string
		// cancel is called with the cancel func; it returns the progress
		// hook that may cancel.
		afterPoints int
		afterTime   time.Duration
	}
	for _, m := range []moment{
		{name: "before any point", afterPoints: 0},
		{name: "after 1 point", afterPoints: 1},
		{name: "after 7 points", afterPoints: 7},
		{name: "after 17 points", afterPoints: 17},
		{name: "mid-point", afterTime: 3 * time.Millisecond},
	} {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := Options{Dir: dir, Jobs: 2}
			switch {
			case m.afterTime > 0:
				time.AfterFunc(m.afterTime, cancel)
			case m.afterPoints == 0:
				cancel()
			default:
				opts.Progress = func(p Progress) {
					if p.Done >= m.afterPoints {
						cancel()
					}
				}
			}
			part, err := Run(ctx, g, devs, opts)
			if part == nil {
				t.Fatalf("no results: %v", err)
			}
			if part.Complete {
				t.Skip("finished before the cancel")
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if m.afterPoints > 0 && part.Done < m.afterPoints {
				t.Errorf("%d points kept, want ≥ %d", part.Done, m.afterPoints)
			}
			// Every finished row is in the partial results.
			for _, r := range part.Rows {
				if r.Speedup == 0 && r.Method != "dense" && hasDense(part.Rows, r) {
					t.Errorf("%s: no speed-up", r.Key)
				}
			}
			var ran []string
			var mu sync.Mutex
			res, err := Run(context.Background(), g, devs, Options{Dir: dir, Resume: true, Progress: func(p Progress) {
				mu.Lock()
				ran = append(ran, p.Last)
				mu.Unlock()
				if p.Resumed != part.Done {
					t.Errorf("resumed %d, want %d", p.Resumed, part.Done)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(ran) != part.Points-part.Done {
				t.Errorf("resume ran %d points, want %d", len(ran), part.Points-part.Done)
			}
			compareRows(t, res.Rows, full.Rows)
			checkJournal(t, dir, res.Points)
		})
	}
}

func hasDense(rows []Row, r Row) bool {
	for _, d := range rows {
		if d.Method == "dense" && d.Device == r.Device && groupOf(d) == groupOf(r) {
			return true
		}
	}
	return false
}

// checkJournal checks the journal holds each point exactly once.
func checkJournal(t *testing.T, dir string, points int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, JournalName))
	if err != nil {
		t.Fatal(err)
	}
	recs, n, err := parseJournal(data)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("journal: %v (%d of %d bytes good)", err, n, len(data))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Key] {
			t.Errorf("journal has %s twice", r.Key)
		}
		seen[r.Key] = true
	}
	if len(seen) != points {
		t.Errorf("journal has %d points, want %d", len(seen), points)
	}
}

func TestJournal(t *testing.T) {
	g := smallGrid()
	g.Seqs = []int{256}
	devs := smallDevices()
	dir := t.TempDir()
	full, err := Run(context.Background(), g, devs, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, JournalName)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")

	// A torn last record (a crash mid-write) is dropped and rerun.
	torn := strings.Join(lines[:3], "") + lines[3][:len(lines[3])/2]
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := 0
	res, err := Run(context.Background(), g, devs, Options{Dir: dir, Resume: true, Progress: func(Progress) { runs++ }})
	if err != nil {
		t.Fatal(err)
	}
	if runs != res.Points-2 {
		t.Errorf("reran %d points, want %d", runs, res.Points-2)
	}
	compareRows(t, res.Rows, full.Rows)
	checkJournal(t, dir, res.Points)

	// A changed device model invalidates its records.
	devs2 := smallDevices()
	devs2[0].Overheads.LaunchSeconds *= 2
	runs = 0
	if _, err := Run(context.Background(), g, devs2, Options{Dir: dir, Resume: true, Progress: func(Progress) { runs++ }}); err != nil {
		t.Fatal(err)
	}
	if runs != res.Points {
		t.Errorf("reran %d points after a device change, want %d", runs, res.Points)
	}

	// Garbage in the middle is an error, not silently dropped.
	if err := os.WriteFile(path, []byte(lines[0]+"{not json\n"+lines[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), g, devs, Options{Dir: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "line 2: corrupt record") {
		t.Errorf("err = %v", err)
	}
	// Without --resume the journal starts over.
	if _, err := Run(context.Background(), g, devs, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	checkJournal(t, dir, res.Points)
}

func TestMerge(t *testing.T) {
	g := smallGrid()
	devs := smallDevices()
	full, err := Run(context.Background(), g, devs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []*Results
	for i := 1; i <= 3; i++ {
		r, err := Run(context.Background(), g, devs, Options{Shard: Shard{i, 3}, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Shard != fmt.Sprintf("%d/3", i) || !r.Complete || r.Points == 0 || r.Points == full.Points {
			t.Errorf("shard %d: %q complete %v, %d points", i, r.Shard, r.Complete, r.Points)
		}
		// Speed-ups are complete within a shard.
		for _, row := range r.Rows {
			if row.Speedup == 0 {
				t.Errorf("shard %d: %s has no speed-up", i, row.Key)
			}
		}
		// Through JSON, as merge reads them.
		path := filepath.Join(t.TempDir(), JSONName)
		f, _ := os.Create(path)
		if err := WriteJSON(f, r); err != nil {
			t.Fatal(err)
		}
		f.Close()
		back, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Errorf("shard %d does not round-trip through JSON", i)
		}
		parts = append(parts, back)
	}
	merged, missing, err := Merge([]*Results{parts[2], parts[0], parts[1], parts[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Complete || len(missing) != 0 || merged.Shard != "" {
		t.Errorf("complete %v, missing %v", merged.Complete, missing)
	}
	compareRows(t, merged.Rows, full.Rows)

	partial, missing, err := Merge(parts[:2])
	if err != nil {
		t.Fatal(err)
	}
	if partial.Complete || !reflect.DeepEqual(missing, []string{"3/3"}) {
		t.Errorf("partial: complete %v, missing %v", partial.Complete, missing)
	}

	other := *parts[1]
	other.Grid.Seed = 2
	if _, _, err := Merge([]*Results{parts[0], &other}); err == nil || !strings.Contains(err.Error(), "different settings") {
		t.Errorf("different settings: %v", err)
	}
	changed := *parts[1]
	changed.Rows = append([]Row(nil), parts[1].Rows...)
	changed.Rows[0].Seconds *= 2
	if _, _, err := Merge([]*Results{parts[1], &changed}); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("conflicting rows: %v", err)
	}
}

func TestOutputs(t *testing.T) {
	g := smallGrid()
	g.Batches = []int{4}
	res, err := Run(context.Background(), g, smallDevices(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteCSV(&b, res.Rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(res.Rows)+1 || !reflect.DeepEqual(recs[0], CSVHeader) {
		t.Fatalf("%d records, header %v", len(recs), recs[0])
	}
	col := map[string]int{}
	for i, h := range CSVHeader {
		col[h] = i
	}
	for _, want := range []string{"method", "r", "k", "k_layout", "impl", "device", "batch", "seq", "heads", "kv_heads", "head_dim", "dtype",
		"seconds", "ideal_seconds", "speedup", "ideal_speedup", "bytes", "bound", "rel_l2_error", "alpha_mean", "scale", "sampled_pairs"} {
		if _, ok := col[want]; !ok {
			t.Errorf("no column %s", want)
		}
	}
	for i, r := range res.Rows {
		rec := recs[i+1]
		secs, _ := strconv.ParseFloat(rec[col["seconds"]], 64)
		if rec[col["label"]] != r.Label || rec[col["device"]] != r.Device || secs != r.Seconds || rec[col["seq"]] != strconv.Itoa(r.Seq) {
			t.Errorf("row %d: %v", i, rec)
		}
	}

	b.Reset()
	if err := WriteBench(&b, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var bench []string
	for _, l := range lines {
		if strings.HasPrefix(l, "Benchmark") {
			bench = append(bench, l)
		} else if !regexp.MustCompile(`^[a-z][a-z-]*: \S`).MatchString(l) {
			t.Errorf("not a config line: %q", l)
		}
	}
	if len(bench) != len(res.Rows) {
		t.Errorf("%d benchmark lines for %d rows", len(bench), len(res.Rows))
	}
	re := regexp.MustCompile(`^BenchmarkDecode/method=[a-z0-9.-]+/device=[a-z0-9-]+/dtype=fp16/batch=4/seq=\d+ 1 [0-9.]+ ns/op [0-9.]+ ideal-ns/op \d+ B/op \d+ requested-B/op$`)
	for _, l := range bench {
		if !re.MatchString(l) {
			t.Errorf("bad benchmark line %q", l)
		}
	}
	if !strings.Contains(b.String(), "method=sparq-1of4/device=test-ipu/dtype=fp16/batch=4/seq=512 1 ") {
		t.Errorf("no line for sparq-1of4 on test-ipu at 512:\n%s", b.String())
	}

	// benchstat reads it, when it is installed.
	bs, err := exec.LookPath("benchstat")
	if err != nil {
		home, _ := os.UserHomeDir()
		bs = filepath.Join(home, "go", "bin", "benchstat")
		if _, err := os.Stat(bs); err != nil {
			t.Skip("benchstat not installed")
		}
	}
	path := filepath.Join(t.TempDir(), BenchName)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bs, "-col", "/method", "-filter", "/device:gpu", path).CombinedOutput()
	if err != nil {
		t.Fatalf("benchstat: %v\n%s", err, out)
	}
	for _, want := range []string{"dense", "sparq-r8-k32", "sparq-1of4", "sec/op", "ideal-sec/op", "B/op", "vs base", "seq=1024"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("benchstat output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "parsing") || strings.Contains(string(out), "error") {
		t.Errorf("benchstat complains:\n%s", out)
	}
}

// TestEveryMethod runs every kernel method through a sweep.
func TestEveryMethod(t *testing.T) {
	g := smallGrid()
	g.Methods = nil
	for _, name := range Methods() {
		spec := name
		if name != kernels.MethodDense {
			spec += ":k=32"
		}
		g.Methods = append(g.Methods, mustParse(t, spec))
	}
	g.Seqs, g.Batches = []int{512}, []int{1}
	g.Devices = g.Devices[:1]
	res, err := Run(context.Background(), g, smallDevices()[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != len(Methods()) {
		t.Fatalf("%d rows for %d methods", len(res.Rows), len(Methods()))
	}
	for _, r := range res.Rows {
		if r.Speedup <= 0 || r.Seconds <= 0 || (r.Method != kernels.MethodDense && r.K != 32) {
			t.Errorf("%s: speed-up %v, k %d", r.Label, r.Speedup, r.K)
		}
	}
}
