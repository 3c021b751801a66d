package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfigFile feeds arbitrary bytes as a --config file to the three
// loaders that read one: LoadDevices (devices:), LoadModels (models:) and
// LoadSweep (sweep:). None may panic; each either fails with a message or
// returns what validates.
func FuzzLoadConfigFile(f *testing.F) {
	for _, s := range []string{
		"",
		"devices: {}\nmodels: {}\nsweep: {}\n",
		"sweep:\n  methods: [dense, \"sparq:r=32:k=128\", \"sparq:ratio=1/8\"]\n  seq: 1k..128k\n  batch: [1, 64]\n  devices: [a100-40gb, h100-sxm, ipu-bow]\n  heads: 32\n  kv_heads: 8\n  seed: 7\n  no_append: true\n  out: ./x\n",
		"sweep:\n  heads: many\n",
		"sweep:\n  seq: [1k, {a: 1}]\n",
		"sweep:\n  jobs: 1.5\n  seed: -1\n",
		"sweep: [1, 2]\n",
		"models:\n  llama-2-7b:\n    kv_dtype: bf16\n",
		"models:\n  pythia-1.4b:\n    layers: -1\n",
		"models:\n  my-model:\n    description: x\n    family: llama\n    layers: 2\n    d_model: 64\n    heads: 4\n    kv_heads: 2\n    head_dim: 16\n    ffn_dim: 128\n    vocab: 100\n    mlp: gated\n    norm: rms\n    bias: false\n    tied_embeddings: false\n    params: 0\n    weight_dtype: bf16\n    kv_dtype: bf16\n    max_seq: 0\n    sliding_window: 0\n    source: fuzz\n",
		"models:\n  x: 3\n",
		"models: [a]\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {achievable_bandwidth: 3.1e12}\nmodels:\n  gemma-7b: {vocab: 1}\nsweep: {dtype: fp16}\n",
		"devices:" + newDevice,
		"nonsense: 1\n",
		"devices: [\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if c, err := LoadDevices(LoadOptions{SkipHostFile: true, ConfigFile: p}); err != nil {
			if err.Error() == "" {
				t.Fatal("devices: empty error")
			}
		} else {
			for _, d := range c.Devices() {
				if err := d.Validate(); err != nil {
					t.Fatalf("loaded an invalid device: %v", err)
				}
			}
		}
		if c, err := LoadModels(LoadOptions{SkipHostFile: true, ConfigFile: p}); err != nil {
			if err.Error() == "" {
				t.Fatal("models: empty error")
			}
		} else {
			for _, m := range c.Models() {
				if err := m.Validate(); err != nil {
					t.Fatalf("loaded an invalid model %s: %v", m.Name, err)
				}
			}
		}
		s, err := LoadSweep(p)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("sweep: empty error")
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("sweep error does not name the file: %v", err)
			}
			return
		}
		keys := sweepKeys()
		for flag := range s.Flags() {
			if !contains(keys, strings.ReplaceAll(flag, "-", "_")) {
				t.Fatalf("sweep setting %q is not a key of the section", flag)
			}
		}
	})
}

// FuzzSetOverride feeds arbitrary --set KEY=VALUE pairs to the device and
// model loaders: they must fail with a message or return what validates.
func FuzzSetOverride(f *testing.F) {
	for _, kv := range [][2]string{
		{"devices.h100-sxm.memory_levels.hbm.achievable_bandwidth", "3e12"},
		{"devices.h100-sxm.memory_levels.hbm.capacity_bytes", "-1"},
		{"devices.host.links", "[{name: x, bandwidth_per_direction: 1e9}]"},
		{"devices.h100-sxm.compute", "[{unit: matrix, dtype: fp99, ops_per_second: 1}]"},
		{"devices.new.kind", "gpu"},
		{"devices.h100-sxm", "{kind: ipu}"},
		{"models.pythia-1.4b.kv_dtype", "bf16"},
		{"models.llama-2-7b", "{layers: 2, params: 1}"},
		{"models.new.layers", "2"},
		{"models..x", "1"},
		{"sweep.seq", "4"},
		{"devices", "[1"},
	} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		o := LoadOptions{SkipHostFile: true, Set: map[string]string{key: value}}
		if c, err := LoadDevices(o); err != nil {
			if err.Error() == "" {
				t.Fatal("devices: empty error")
			}
		} else {
			for _, d := range c.Devices() {
				if err := d.Validate(); err != nil {
					t.Fatalf("loaded an invalid device: %v", err)
				}
			}
		}
		if c, err := LoadModels(o); err != nil {
			if err.Error() == "" {
				t.Fatal("models: empty error")
			}
		} else {
			for _, m := range c.Models() {
				if err := m.Validate(); err != nil {
					t.Fatalf("loaded an invalid model %s: %v", m.Name, err)
				}
			}
		}
	})
}
