package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bwsim.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSweep(t *testing.T) {
	path := writeTemp(t, `
devices:
  h100-sxm:
    overheads: {launch_seconds: 3e-6}
sweep:
  methods: [dense, "sparq:r=32:k=128", "sparq:ratio=1/8"]
  seq: 1k..128k
  batch: [1, 64]
  devices: a100-40gb, h100-sxm
  dtype: fp16
  Heads: 32
  kv_heads: "8"
  head_dim: 128
  placement: ["ipu-bow:kv-cache=streaming"]
  seed: 7
  no_append: true
  out: results
  steps: 4
  tradeoff: true
  tradeoff_device: h100-sxm
`)
	s, err := LoadSweep(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"methods": "dense,sparq:r=32:k=128,sparq:ratio=1/8", "seq": "1k..128k", "batch": "1,64",
		"devices": "a100-40gb, h100-sxm", "dtype": "fp16", "heads": "32", "kv-heads": "8", "head-dim": "128",
		"placement": "ipu-bow:kv-cache=streaming", "seed": "7", "no-append": "true", "out": "results",
		"steps": "4", "tradeoff": "true", "tradeoff-device": "h100-sxm",
	}
	if got := s.Flags(); !reflect.DeepEqual(got, want) {
		t.Errorf("flags\n%v\nwant\n%v", got, want)
	}
	// The same file loads as a device file too.
	if _, err := LoadDevices(LoadOptions{ConfigFile: path, SkipHostFile: true}); err != nil {
		t.Errorf("LoadDevices: %v", err)
	}
	// No sweep section: nothing set.
	s, err = LoadSweep(writeTemp(t, "devices: {}\n"))
	if err != nil || len(s.Flags()) != 0 {
		t.Errorf("%v %v", s.Flags(), err)
	}
}

func TestLoadSweepErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"sweep:\n  sequence: 1k\n", "sweep.sequence: unknown key (known: methods, seq, batch"},
		{"sweeps:\n  seq: 1k\n", "sweeps: unknown top-level key (known: devices, models, sweep)"},
		{"sweep: 3\n", "sweep: expected a map of settings"},
		{"sweep:\n  heads: [1, 2]\n", "sweep.heads: expected a whole number, got a list"},
		{"sweep:\n  heads: 1.5\n", "sweep.heads: expected a whole number, got number 1.5"},
		{"sweep:\n  heads: many\n", `sweep.heads: expected a whole number, got string "many"`},
		{"sweep:\n  workload: [a, b]\n", "sweep.workload: expected a string, got a list"},
		{"sweep:\n  no_append: yes please\n", `sweep.no_append: expected true or false, got string "yes please"`},
		{"sweep:\n  tradeoff: [a]\n", `sweep.tradeoff: expected true or false, got a list`},
		{"sweep:\n  steps: 1.5\n", `sweep.steps: expected a whole number, got number 1.5`},
		{"sweep:\n  seq: {a: 1}\n", "sweep.seq: expected a list or a string, got a map"},
		{"sweep:\n  methods: [dense, [sparq]]\n", "sweep.methods: expected a list or a string, got a list"},
		{"sweep: [\n", "not valid YAML"},
	} {
		path := writeTemp(t, tc.text)
		_, err := LoadSweep(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.want)
		}
	}
	if _, err := LoadSweep(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
