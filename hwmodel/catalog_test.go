package hwmodel

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	a := testGPU()
	b := testGPU()
	b.Name = "other-gpu"
	c, err := NewCatalog([]*Device{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Names(), []string{"other-gpu", "test-gpu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	d, err := c.Get("TEST-GPU")
	if err != nil || d.Name != "test-gpu" {
		t.Fatalf("Get: %v, %v", d, err)
	}
	// Get returns a copy.
	d.Levels["hbm"] = MemoryLevel{}
	d.Compute[0].OpsPerSecond = 1
	if d2, _ := c.Get("test-gpu"); !reflect.DeepEqual(d2, a) {
		t.Error("Get returned shared state")
	}
	_, err = c.Get("h100")
	if err == nil || !strings.Contains(err.Error(), `unknown device "h100" (known: other-gpu, test-gpu)`) {
		t.Errorf("Get(unknown): %v", err)
	}
	if _, err := NewCatalog([]*Device{a, a}); err == nil {
		t.Error("duplicate names accepted")
	}
	bad := testGPU()
	bad.Kind = "tpu"
	if _, err := NewCatalog([]*Device{bad}); err == nil {
		t.Error("invalid device accepted")
	}
}

func TestDeviceJSON(t *testing.T) {
	d := testGPU()
	d.Origin = "test"
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	// Levels are an array ordered by tier, each with its name.
	var raw struct {
		Name   string `json:"name"`
		Levels []struct {
			Name string `json:"name"`
			Tier int    `json:"tier"`
		} `json:"memory_levels"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range raw.Levels {
		names = append(names, l.Name)
	}
	if raw.Name != "test-gpu" || !reflect.DeepEqual(names, []string{"smem", "l2", "hbm"}) {
		t.Errorf("JSON %s", b)
	}
	// A value marshals the same as a pointer.
	b2, _ := json.Marshal(*d)
	if !bytes.Equal(b, b2) {
		t.Error("value and pointer marshal differently")
	}
	var back Device
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := d.Clone()
	for k, l := range want.Levels {
		l.Name = k
		want.Levels[k] = l
	}
	if !reflect.DeepEqual(&back, want) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, want)
	}
}

func TestMemoryLevels(t *testing.T) {
	d := testGPU()
	ls := d.MemoryLevels()
	if len(ls) != 1 || ls[0].Name != "hbm" {
		t.Errorf("MemoryLevels() = %+v", ls)
	}
}

func TestCatalogYAMLIsACopy(t *testing.T) {
	a := CatalogYAML()
	a[0] = 'X'
	if CatalogYAML()[0] == 'X' {
		t.Error("CatalogYAML exposes the embedded bytes")
	}
	if !bytes.Contains(CatalogYAML(), []byte("\ndevices:\n")) {
		t.Error("catalog has no devices map")
	}
}

// A clone's per-kernel bandwidths are its own: --fit-level and --set edit
// clones of catalog devices.
func TestCloneCopiesKernelBandwidth(t *testing.T) {
	d := testGPU()
	setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelBandwidth = map[string]float64{"triton": 1e12} })
	c := d.Clone()
	c.Levels["hbm"].KernelBandwidth["triton"] = 5e11
	if got := d.Levels["hbm"].Achievable("triton"); got != 1e12 {
		t.Errorf("original's triton bandwidth %g after editing the clone, want 1e12", got)
	}
	if got, want := c.Levels["hbm"].Achievable(""), c.Levels["hbm"].AchievableBandwidth; got != want {
		t.Errorf("no kernel class: %g, want the achievable %g", got, want)
	}
}

// A clone's loop-step figures are its own, and Loop finds a class's rows or
// gathers only where they were measured.
func TestCloneCopiesTables(t *testing.T) {
	d := testGPU()
	d.Compute = append(d.Compute, matmulUnit(MatmulWeighted, 4))
	last := len(d.Compute) - 1
	want := d.Compute[last].Table.At(32, 1024)
	d.Compute[last].Table.Kernels = [][]float64{{1, 2, 3}, {4, 5, 6}}
	c := d.Clone()
	c.Compute[last].Table.Seconds[0][0] = 1
	c.Compute[last].Table.Rows[0] = 2
	c.Compute[last].Table.Kernels[0][0] = 9
	if got := d.Compute[last].Table.At(32, 1024); got != want {
		t.Errorf("original's table at 32 x 1024 reads %g after editing the clone, want %g", got, want)
	}
	if got := d.Compute[last].Table.Kernels[0][0]; got != 1 {
		t.Errorf("original's kernel count reads %v after editing the clone, want 1", got)
	}
}

func TestCloneCopiesKernelLoops(t *testing.T) {
	d := testGPU()
	rows := LoopStep{Seconds: 4e-7, SecondsPerByte: 6e-12}
	setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelLoops = map[string]KernelLoop{"triton": {Rows: rows}} })
	c := d.Clone()
	c.Levels["hbm"].KernelLoops["triton"] = KernelLoop{}
	hbm := d.Levels["hbm"]
	if got, ok := hbm.Loop("triton", false); !ok || got != rows {
		t.Errorf("original's triton rows %+v (%v) after editing the clone, want %+v", got, ok, rows)
	}
	for _, c := range []struct {
		kernel string
		gather bool
	}{{"triton", true}, {"", false}, {"cutlass", false}} {
		if got, ok := hbm.Loop(c.kernel, c.gather); ok {
			t.Errorf("Loop(%q, gather %v) = %+v, want none", c.kernel, c.gather, got)
		}
	}
	if got, want := rows.StepSeconds(1024, 99), 4e-7+1024*6e-12; math.Abs(got-want) > 1e-18 {
		t.Errorf("rows step of 1 KiB: %g s, want %g (elements cost rows nothing)", got, want)
	}
}
