package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/hwmodel"
)

// isolate keeps the developer's host file and BWSIM_* variables out of a
// test.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("HOME", dir)
	t.Setenv(HostFileEnv, "")
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "BWSIM_DEVICES_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	return dir
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, opts LoadOptions) *hwmodel.Catalog {
	t.Helper()
	c, err := LoadDevices(opts)
	if err != nil {
		t.Fatalf("LoadDevices: %v", err)
	}
	return c
}

func mustGet(t *testing.T, c *hwmodel.Catalog, name string) *hwmodel.Device {
	t.Helper()
	d, err := c.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var catalogNames = []string{"a100-40gb", "a100-80gb", "h100-pcie", "h100-sxm", "h200", "host", "ipu-bow", "ipu-gc200"}

func TestCatalogLoadsAndValidates(t *testing.T) {
	isolate(t)
	c := mustLoad(t, LoadOptions{SkipHostFile: true})
	if got := c.Names(); !reflect.DeepEqual(got, catalogNames) {
		t.Fatalf("Names() = %v, want %v", got, catalogNames)
	}
	for _, d := range c.Devices() {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if d.Origin != embeddedSource {
			t.Errorf("%s: origin %q, want %q", d.Name, d.Origin, embeddedSource)
		}
		if d.Description == "" {
			t.Errorf("%s: no description", d.Name)
		}
		// Every figure has a source.
		for _, l := range d.OrderedLevels() {
			if l.Source == "" {
				t.Errorf("%s: level %s has no source", d.Name, l.Name)
			}
		}
		for i, cp := range d.Compute {
			if cp.Source == "" {
				t.Errorf("%s: compute[%d] has no source", d.Name, i)
			}
		}
		for i, l := range d.Links {
			if l.Source == "" {
				t.Errorf("%s: links[%d] has no source", d.Name, i)
			}
		}
		if d.Overheads.Source == "" || d.Concurrency.Source == "" {
			t.Errorf("%s: overheads or concurrency without source", d.Name)
		}
		if _, ok := d.Peak("vector", "fp32"); !ok {
			t.Errorf("%s: no vector fp32 rate", d.Name)
		}
	}
}

func TestRequiredLevels(t *testing.T) {
	isolate(t)
	c := mustLoad(t, LoadOptions{SkipHostFile: true})
	want := map[hwmodel.Kind]map[string]hwmodel.LevelRole{
		hwmodel.KindGPU: {"hbm": hwmodel.RoleMemory, "l2": hwmodel.RoleCache, "smem": hwmodel.RoleOnChip},
		hwmodel.KindIPU: {"sram": hwmodel.RoleMemory, "streaming": hwmodel.RoleMemory, "exchange": hwmodel.RoleFabric},
		hwmodel.KindCPU: {"dram": hwmodel.RoleMemory, "llc": hwmodel.RoleCache},
	}
	kinds := map[string]hwmodel.Kind{
		"a100-40gb": hwmodel.KindGPU, "a100-80gb": hwmodel.KindGPU, "h100-sxm": hwmodel.KindGPU,
		"h100-pcie": hwmodel.KindGPU, "h200": hwmodel.KindGPU, "ipu-gc200": hwmodel.KindIPU,
		"ipu-bow": hwmodel.KindIPU, "host": hwmodel.KindCPU,
	}
	for name, kind := range kinds {
		t.Run(name, func(t *testing.T) {
			d := mustGet(t, c, name)
			if d.Kind != kind {
				t.Fatalf("kind %s, want %s", d.Kind, kind)
			}
			if len(d.Levels) != len(want[kind]) {
				t.Errorf("levels %v, want %v", d.Levels, want[kind])
			}
			for lv, role := range want[kind] {
				l, ok := d.Level(lv)
				if !ok {
					t.Errorf("missing level %s", lv)
				} else if l.Role != role {
					t.Errorf("level %s role %s, want %s", lv, l.Role, role)
				}
			}
			// Tiers run outwards: the memory the KV cache lives in is last.
			ls := d.OrderedLevels()
			if ls[len(ls)-1].Role != hwmodel.RoleMemory {
				t.Errorf("outermost level %s is not a memory", ls[len(ls)-1].Name)
			}
		})
	}
}

func TestEnvOverride(t *testing.T) {
	tests := []struct {
		env, device, level string
		value              float64
	}{
		{"BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH", "h100-sxm", "hbm", 3.1e12},
		{"BWSIM_DEVICES_IPU_BOW_MEMORY_LEVELS_STREAMING_ACHIEVABLE_BANDWIDTH", "ipu-bow", "streaming", 6.5e9},
		{"BWSIM_DEVICES_A100_40GB_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH", "a100-40gb", "hbm", 1.4e12},
		{"BWSIM_DEVICES_HOST_MEMORY_LEVELS_DRAM_LATENCY_SECONDS", "host", "dram", 1e-7},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			isolate(t)
			t.Setenv(tt.env, strings.ToUpper(formatFloat(tt.value)))
			d := mustGet(t, mustLoad(t, LoadOptions{SkipHostFile: true}), tt.device)
			l, _ := d.Level(tt.level)
			got := l.AchievableBandwidth
			if strings.HasSuffix(tt.env, "LATENCY_SECONDS") {
				got = l.LatencySeconds
			}
			if got != tt.value {
				t.Errorf("got %v, want %v", got, tt.value)
			}
			if !strings.Contains(d.Origin, "environment ("+tt.env+")") {
				t.Errorf("origin %q does not name the variable", d.Origin)
			}
		})
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name, env, value string
		want             []string
	}{
		{"bad number", "BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH", "fast",
			[]string{"environment (BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH)", `device "h100-sxm"`, "memory_levels.hbm.achievable_bandwidth", `expected a number, got string "fast"`}},
		{"negative", "BWSIM_DEVICES_H200_MEMORY_LEVELS_HBM_PEAK_BANDWIDTH", "-1",
			[]string{"environment (BWSIM_DEVICES_H200_MEMORY_LEVELS_HBM_PEAK_BANDWIDTH)", `device "h200": memory_levels.hbm.peak_bandwidth: must be positive, got -1`}},
		{"no such key", "BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWDTH", "1",
			[]string{"environment", "BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWDTH", "matches no key"}},
		{"list from a string", "BWSIM_DEVICES_HOST_COMPUTE", "fast",
			[]string{"environment (BWSIM_DEVICES_HOST_COMPUTE)", `device "host": compute: expected a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			t.Setenv(tt.env, tt.value)
			_, err := LoadDevices(LoadOptions{SkipHostFile: true})
			checkErr(t, err, tt.want...)
		})
	}
}

func checkErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

const newDevice = `
  my-cpu:
    description: "a test CPU"
    kind: cpu
    memory_levels:
      llc: {role: cache, tier: 0, capacity_bytes: 32e6, peak_bandwidth: 200e9, achievable_bandwidth: 150e9, granularity_bytes: 64, latency_seconds: 15e-9, source: test}
      dram: {role: memory, tier: 1, capacity_bytes: 64e9, peak_bandwidth: 100e9, achievable_bandwidth: 80e9, granularity_bytes: 64, latency_seconds: 90e-9, source: test}
    compute:
      - {unit: vector, dtype: fp32, ops_per_second: 1e12, source: test}
    overheads: {launch_seconds: 2e-6, sync_seconds: 1e-6, source: test}
    concurrency: {parallel_units: 16, work_units_per_parallel_unit: 1, inflight_bytes_per_work_unit: 1024, source: test}
`

func TestUserFileMergeAndNewDevice(t *testing.T) {
	dir := isolate(t)
	base := mustGet(t, mustLoad(t, LoadOptions{SkipHostFile: true}), "h100-sxm")
	f := writeFile(t, dir, "user.yaml", `
devices:
  h100-sxm:
    memory_levels:
      hbm:
        achievable_bandwidth: 3.2e12   # our own measurement
        source: "ours"
    overheads:
      launch_seconds: "3e-6"
`+newDevice)
	c := mustLoad(t, LoadOptions{SkipHostFile: true, DeviceFiles: []string{f}})
	d := mustGet(t, c, "h100-sxm")
	want := base.Clone()
	hbm := want.Levels["hbm"]
	hbm.AchievableBandwidth, hbm.Source = 3.2e12, "ours"
	want.Levels["hbm"] = hbm
	want.Overheads.LaunchSeconds = 3e-6
	want.Origin = embeddedSource + " and " + f
	if !reflect.DeepEqual(d, want) {
		t.Errorf("merged device\n got %+v\nwant %+v", d, want)
	}
	n := mustGet(t, c, "my-cpu")
	if n.Origin != f || n.Levels["dram"].AchievableBandwidth != 80e9 || n.Concurrency.ParallelUnits != 16 {
		t.Errorf("new device %+v", n)
	}
	if len(c.Names()) != len(catalogNames)+1 {
		t.Errorf("names %v", c.Names())
	}

	// A later file overrides an earlier one; --config comes before
	// --device-file.
	f2 := writeFile(t, dir, "later.yaml", "devices:\n  my-cpu:\n    memory_levels:\n      dram: {achievable_bandwidth: 90e9}\n")
	cfg := writeFile(t, dir, "config.yaml", "devices:\n  my-cpu:\n    memory_levels:\n      dram: {achievable_bandwidth: 10e9}\n")
	c = mustLoad(t, LoadOptions{SkipHostFile: true, ConfigFile: cfg, DeviceFiles: []string{f, f2}})
	if got := mustGet(t, c, "my-cpu").Levels["dram"].AchievableBandwidth; got != 90e9 {
		t.Errorf("later file: achievable %v, want 9e10", got)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm:\n        peak_bandwith: 3e12\n",
			[]string{`device "h100-sxm": memory_levels.hbm.peak_bandwith: unknown key (known: achievable_bandwidth, capacity_bytes,`}},
		{"unknown kernel-loop key", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm:\n        kernel_loops: {triton: {row: {seconds: 4e-7}}}\n",
			[]string{`device "h100-sxm": memory_levels.hbm.kernel_loops.triton.row: unknown key (known: gather, rows)`}},
		// The H100's catalog entry has triton loop figures that an override
		// merges into; the A100's has none, so a partial step is all there is.
		{"kernel loop without a fixed part", "devices:\n  a100-40gb:\n    memory_levels:\n      hbm:\n        kernel_loops: {triton: {gather: {seconds_per_element: 7e-11}}}\n",
			[]string{`device "a100-40gb": memory_levels.hbm.kernel_loops.triton.gather.seconds: must be positive, got 0`}},
		{"unknown device key", "devices:\n  h100-sxm:\n    clock_hz: 2e9\n",
			[]string{`device "h100-sxm": clock_hz: unknown key (known: compute, concurrency, description, kind, links, memory_levels, overheads)`}},
		{"unknown compute key", "devices:\n  h100-sxm:\n    compute:\n      - {unit: vector, dtype: fp32, ops: 1}\n",
			[]string{`device "h100-sxm": compute[0].ops: unknown key`}},
		{"matmul unit without its shape", "devices:\n  h100-sxm:\n    compute:\n      - {unit: vector, dtype: fp16, ops_per_second: 1e14}\n" +
			"      - {unit: matmul, kernel: pv, dtype: fp16, ops_per_second: 1e12, table: {rows: [8], cols: [1024], seconds: [[3e-6]]}}\n",
			[]string{`device "h100-sxm": compute[1].query_rows: must be 1 to 65536, got 0`, `compute[1].head_dim: must be 1 to 65536, got 0`}},
		{"negative bandwidth", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm:\n        peak_bandwidth: -1\n",
			[]string{`device "h100-sxm": memory_levels.hbm.peak_bandwidth: must be positive, got -1`}},
		{"achievable above peak", "devices:\n  h200:\n    memory_levels:\n      hbm: {achievable_bandwidth: 5e12}\n",
			[]string{`device "h200": memory_levels.hbm.achievable_bandwidth: must not exceed peak_bandwidth`}},
		{"wrong type", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm:\n        peak_bandwidth: fast\n",
			[]string{`device "h100-sxm": memory_levels.hbm.peak_bandwidth: expected a number, got string "fast"`}},
		{"bool for number", "devices:\n  h100-sxm:\n    concurrency: {parallel_units: true}\n",
			[]string{`device "h100-sxm": concurrency.parallel_units: expected an integer, got boolean true`}},
		{"fractional integer", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {granularity_bytes: 32.5}\n",
			[]string{`device "h100-sxm": memory_levels.hbm.granularity_bytes: expected an integer, got 32.5`}},
		{"map for scalar", "devices:\n  h100-sxm:\n    kind: {a: 1}\n",
			[]string{`device "h100-sxm": kind: expected a string, got a map`}},
		{"scalar for map", "devices:\n  h100-sxm:\n    memory_levels: 5\n",
			[]string{`device "h100-sxm": memory_levels: expected a map, got number 5`}},
		{"unknown top-level key", "sweep:\n  points: 3\n",
			[]string{"sweep: unknown top-level key (known: devices)"}},
		{"unknown level", "devices:\n  h100-sxm:\n    memory_levels:\n      hmb: {role: memory, tier: 5, capacity_bytes: 1, peak_bandwidth: 1, achievable_bandwidth: 1, granularity_bytes: 1}\n",
			[]string{`device "h100-sxm": memory_levels.hmb: unknown level for a gpu device (known: hbm, l2, smem)`}},
		{"wrong role", "devices:\n  h100-sxm:\n    memory_levels:\n      l2: {role: memory}\n",
			[]string{`device "h100-sxm": memory_levels.l2.role: must be "cache" for level l2, got "memory"`}},
		{"unknown dtype", "devices:\n  h100-sxm:\n    compute:\n      - {unit: matrix, dtype: fp4, ops_per_second: 1e15}\n",
			[]string{`device "h100-sxm": compute[0].dtype: unknown dtype "fp4"`}},
		{"unknown kind", "devices:\n  h100-sxm:\n    kind: tpu\n",
			[]string{`device "h100-sxm": kind: unknown kind "tpu"`}},
		{"latency too large", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {latency_seconds: 2}\n",
			[]string{`memory_levels.hbm.latency_seconds: must be at least 0 and under 1 second, got 2`}},
		{"incomplete new device", "devices:\n  my-gpu:\n    kind: gpu\n    memory_levels:\n      hbm: {role: memory, tier: 2}\n",
			[]string{`device "my-gpu": memory_levels.l2: missing`, `memory_levels.hbm.peak_bandwidth: must be positive, got 0`, "concurrency.parallel_units: must be positive"}},
		{"bad device name", "devices:\n  my gpu:\n    kind: cpu\n",
			[]string{`device "my gpu": name "my gpu": must be lower-case letters`}},
		{"not YAML", "devices: [\n", []string{"not valid YAML"}},
		{"devices not a map", "devices: 5\n", []string{"devices: expected a map, got number 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			f := writeFile(t, dir, "bad.yaml", tt.content)
			_, err := LoadDevices(LoadOptions{SkipHostFile: true, DeviceFiles: []string{f}})
			checkErr(t, err, append([]string{f + ": "}, tt.want...)...)
		})
	}
}

// A bad key in the second of two files is blamed on that file.
func TestErrorNamesTheRightFile(t *testing.T) {
	dir := isolate(t)
	good := writeFile(t, dir, "good.yaml", "devices:\n  h200:\n    memory_levels:\n      hbm: {achievable_bandwidth: 3.5e12}\n")
	bad := writeFile(t, dir, "bad.yaml", "devices:\n  h200:\n    memory_levels:\n      l2: {peak_bandwidth: 0}\n")
	_, err := LoadDevices(LoadOptions{SkipHostFile: true, DeviceFiles: []string{good, bad}})
	checkErr(t, err, bad+`: device "h200": memory_levels.l2.peak_bandwidth: must be positive, got 0`)
	if strings.Contains(err.Error(), good) {
		t.Errorf("error %q blames %s", err, good)
	}
	// The config file is checked like device files.
	_, err = LoadDevices(LoadOptions{SkipHostFile: true, ConfigFile: bad})
	checkErr(t, err, bad+": ")
}

func TestSetOverride(t *testing.T) {
	dir := isolate(t)
	key := "devices.h100-sxm.memory_levels.hbm.achievable_bandwidth"
	d := mustGet(t, mustLoad(t, LoadOptions{SkipHostFile: true, Set: map[string]string{key: "2.9e12"}}), "h100-sxm")
	if got := d.Levels["hbm"].AchievableBandwidth; got != 2.9e12 {
		t.Errorf("--set: got %v", got)
	}
	if !strings.Contains(d.Origin, "--set "+key) {
		t.Errorf("origin %q", d.Origin)
	}

	// Precedence: file < environment < --set.
	f := writeFile(t, dir, "f.yaml", "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {achievable_bandwidth: 2.5e12}\n")
	t.Setenv("BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH", "2.6e12")
	opts := LoadOptions{SkipHostFile: true, DeviceFiles: []string{f}}
	if got := mustGet(t, mustLoad(t, opts), "h100-sxm").Levels["hbm"].AchievableBandwidth; got != 2.6e12 {
		t.Errorf("env over file: got %v", got)
	}
	opts.Set = map[string]string{strings.ToUpper(key): "2.7e12"}
	if got := mustGet(t, mustLoad(t, opts), "h100-sxm").Levels["hbm"].AchievableBandwidth; got != 2.7e12 {
		t.Errorf("--set over env: got %v", got)
	}

	// Lists and new devices through --set.
	c := mustLoad(t, LoadOptions{SkipHostFile: true, Set: map[string]string{
		"devices.host.compute": "[{unit: vector, dtype: fp32, ops_per_second: 5e10, source: set}]",
	}})
	if h := mustGet(t, c, "host"); len(h.Compute) != 1 || h.Compute[0].OpsPerSecond != 5e10 {
		t.Errorf("list --set: %+v", h.Compute)
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"bad value", map[string]string{"devices.h200.memory_levels.hbm.peak_bandwidth": "lots"},
			[]string{"--set devices.h200.memory_levels.hbm.peak_bandwidth: ", `expected a number, got string "lots"`}},
		{"negative", map[string]string{"devices.h200.concurrency.parallel_units": "-3"},
			[]string{"--set devices.h200.concurrency.parallel_units: ", "concurrency.parallel_units: must be positive, got -3"}},
		{"unknown key", map[string]string{"devices.h200.memory_levels.hbm.speed": "1"},
			[]string{"--set devices.h200.memory_levels.hbm.speed: ", "memory_levels.hbm.speed: unknown key"}},
		{"unknown section", map[string]string{"bogus.points": "1"},
			[]string{"--set bogus.points: bogus: unknown top-level key"}},
		{"empty segment", map[string]string{"devices..x": "1"}, []string{"--set: devices..x: not a dotted key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			_, err := LoadDevices(LoadOptions{SkipHostFile: true, Set: tt.set})
			checkErr(t, err, tt.want...)
		})
	}
}

func TestHostFile(t *testing.T) {
	dir := isolate(t)
	def, err := DefaultHostFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "config", "bwsim", "host.yaml"); def != want {
		t.Fatalf("DefaultHostFile() = %s, want %s", def, want)
	}
	// No host file yet: the embedded placeholder.
	embedded := mustGet(t, mustLoad(t, LoadOptions{}), "host")

	h := embedded.Clone()
	h.Description = "calibrated"
	dram := h.Levels["dram"]
	dram.AchievableBandwidth = 12.5e9
	h.Levels["dram"] = dram
	if err := WriteDeviceFile(def, h); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, mustLoad(t, LoadOptions{}), "host")
	if got.Description != "calibrated" || got.Levels["dram"].AchievableBandwidth != 12.5e9 || got.Origin != def {
		t.Errorf("host file not picked up: %+v", got)
	}
	if d := mustGet(t, mustLoad(t, LoadOptions{SkipHostFile: true}), "host"); d.Description == "calibrated" {
		t.Error("SkipHostFile read the host file")
	}

	// BWSIM_HOST_FILE and LoadOptions.HostFile move it.
	other := filepath.Join(dir, "other.yaml")
	h.Description = "other"
	if err := WriteDeviceFile(other, h); err != nil {
		t.Fatal(err)
	}
	t.Setenv(HostFileEnv, other)
	if d := mustGet(t, mustLoad(t, LoadOptions{}), "host"); d.Description != "other" {
		t.Errorf("%s ignored: %q", HostFileEnv, d.Description)
	}
	if d := mustGet(t, mustLoad(t, LoadOptions{HostFile: def}), "host"); d.Description != "calibrated" {
		t.Errorf("HostFile ignored: %q", d.Description)
	}
	// A missing explicit host file is an error; a missing default is not.
	if _, err := LoadDevices(LoadOptions{HostFile: filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("missing explicit host file: no error")
	}
	t.Setenv(HostFileEnv, filepath.Join(dir, "missing.yaml"))
	mustLoad(t, LoadOptions{})
}

func TestWriteDeviceFileRoundTrip(t *testing.T) {
	dir := isolate(t)
	c := mustLoad(t, LoadOptions{SkipHostFile: true})
	for _, d := range c.Devices() {
		t.Run(d.Name, func(t *testing.T) {
			// Over the same device, and as a new one.
			cp := d.Clone()
			cp.Name = "copy-of-" + d.Name
			cp.Description = "quotes \" and \\ and üñí and\nnewline"
			for i, dev := range []*hwmodel.Device{d, cp} {
				p := filepath.Join(dir, "sub", dev.Name+".yaml")
				if err := WriteDeviceFile(p, dev); err != nil {
					t.Fatal(err)
				}
				got := mustGet(t, mustLoad(t, LoadOptions{SkipHostFile: true, DeviceFiles: []string{p}}), dev.Name)
				want := dev.Clone()
				want.Origin = got.Origin
				if i == 1 && got.Origin != p {
					t.Errorf("origin %q", got.Origin)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("round trip\n got %+v\nwant %+v", got, want)
				}
			}
		})
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left %s", e.Name())
		}
	}
	bad := c.Devices()[0]
	bad.Levels["hbm"] = hwmodel.MemoryLevel{}
	if err := WriteDeviceFile(filepath.Join(dir, "bad.yaml"), bad); err == nil {
		t.Error("WriteDeviceFile wrote an invalid device")
	}
}

func TestGetListsNames(t *testing.T) {
	isolate(t)
	_, err := mustLoad(t, LoadOptions{SkipHostFile: true}).Get("h100")
	checkErr(t, err, `unknown device "h100"`, strings.Join(catalogNames, ", "))
}
