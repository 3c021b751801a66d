package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/models"
)

func mustLoadModels(t *testing.T, opts LoadOptions) *models.Catalog {
	t.Helper()
	c, err := LoadModels(opts)
	if err != nil {
		t.Fatalf("LoadModels: %v", err)
	}
	return c
}

// TestModelCatalog checks the embedded catalog: the models the issue asks
// for, each with a source, and a stated parameter count equal to what the
// shapes give (the catalog's counts were computed by hand from config.json).
func TestModelCatalog(t *testing.T) {
	c := mustLoadModels(t, LoadOptions{})
	want := []string{"gemma-7b", "llama-2-13b", "llama-2-70b", "llama-2-7b", "llama-3-70b", "llama-3-8b", "mistral-7b", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b"}
	if got := c.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	params := map[string]int64{
		"llama-2-7b":  6_738_415_616,
		"llama-2-13b": 13_015_864_320,
		"llama-2-70b": 68_976_648_192,
		"llama-3-8b":  8_030_261_248,
		"llama-3-70b": 70_553_706_496,
		"mistral-7b":  7_241_732_096,
		"gemma-7b":    8_537_680_896,
		"pythia-1.4b": 1_414_647_808,
		"pythia-2.8b": 2_775_208_960,
		"pythia-6.9b": 6_857_302_016,
	}
	for _, m := range c.Models() {
		if m.Source == "" || m.Description == "" {
			t.Errorf("%s: no source or description", m.Name)
		}
		if m.Origin != embeddedModelsSource {
			t.Errorf("%s: origin %q", m.Name, m.Origin)
		}
		if m.Params != params[m.Name] {
			t.Errorf("%s: catalog params %d, want %d", m.Name, m.Params, params[m.Name])
		}
		if arch := m.ArchParams(); arch != m.Params {
			t.Errorf("%s: the shapes give %d parameters, the catalog says %d", m.Name, arch, m.Params)
		}
	}
	mistral, _ := c.Get("Mistral-7B")
	if mistral.SlidingWindow != 4096 || mistral.CacheLen(32768) != 4096 {
		t.Errorf("mistral sliding window %d", mistral.SlidingWindow)
	}
	if _, err := c.Get("llama-9"); err == nil || !strings.Contains(err.Error(), "llama-2-7b") {
		t.Errorf("unknown model error %v should list the known models", err)
	}
}

func TestModelOverridesFromConfigAndSet(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bwsim.yaml", `
devices:
  h100-sxm:
    description: "renamed"
sweep:
  seq: 4k
models:
  llama-2-7b:
    kv_dtype: bf16
  tiny:
    description: "a test model"
    family: llama
    layers: 2
    d_model: 64
    heads: 4
    kv_heads: 2
    head_dim: 16
    ffn_dim: 128
    vocab: 100
    mlp: gated
    norm: rms
    bias: false
    tied_embeddings: true
    params: 80448
    weight_dtype: fp16
    kv_dtype: fp16
    max_seq: 0
    sliding_window: 0
    source: "test"
`)
	c := mustLoadModels(t, LoadOptions{ConfigFile: cfg, Set: map[string]string{
		"models.tiny.layers":   "3",
		"models.tiny.params":   "129728",
		"devices.host.kind":    "cpu", // not ours: ignored here
		"Models.TINY.max_seq":  "512",
		"models.tiny.kv_heads": "4",
		// Model names may contain dots; the key is the last part.
		"models.pythia-1.4b.kv_dtype": "bf16",
	}})
	if p, _ := c.Get("pythia-1.4b"); p.KVDType != "bf16" || p.Origin != "--set models.pythia-1.4b.kv_dtype" {
		t.Errorf("pythia-1.4b after --set: kv %s, origin %s", p.KVDType, p.Origin)
	}
	l, _ := c.Get("llama-2-7b")
	if l.KVDType != "bf16" || l.WeightDType != "fp16" || l.Origin != cfg {
		t.Errorf("llama-2-7b override: kv %s weight %s origin %s", l.KVDType, l.WeightDType, l.Origin)
	}
	tiny, err := c.Get("tiny")
	if err != nil {
		t.Fatal(err)
	}
	// 64·100 + 3·(2·64·64 + 2·64·64 + 3·64·128 + 2·64) + 64 = 129728 (tied).
	if tiny.Layers != 3 || tiny.KVHeads != 4 || tiny.MaxSeq != 512 || tiny.ArchParams() != 129728 {
		t.Errorf("tiny = %+v (arch params %d)", tiny, tiny.ArchParams())
	}
}

func TestModelLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, yaml string
		set        map[string]string
		want       []string
	}{
		{"unknown key", "models:\n  llama-2-7b:\n    layerz: 3\n", nil, []string{"models.llama-2-7b.layerz", "unknown key", "kv_heads"}},
		{"wrong type", "models:\n  llama-2-7b:\n    layers: many\n", nil, []string{"models.llama-2-7b.layers", "integer"}},
		{"fraction", "models:\n  llama-2-7b:\n    layers: 3.5\n", nil, []string{"layers", "integer"}},
		{"top-level", "modles:\n  x: 1\n", nil, []string{"modles", "unknown top-level key", "models"}},
		{"not a map", "models: 3\n", nil, []string{"expected a map of models"}},
		{"entry not a map", "models:\n  x: 3\n", nil, []string{"models.x", "expected a map"}},
		{"params disagree", "models:\n  llama-2-7b:\n    layers: 40\n", nil, []string{"models.llama-2-7b.params", "differs", "the architecture gives"}},
		{"incomplete new model", "models:\n  mine:\n    layers: 2\n", nil, []string{"models.mine.d_model", "models.mine.kv_dtype", "must be"}},
		{"bad kv dtype", "models:\n  llama-2-7b:\n    kv_dtype: q8_0\n", nil, []string{"kv_dtype", "fp16, bf16, fp32"}},
		{"gqa", "models:\n  llama-2-7b:\n    kv_heads: 5\n", nil, []string{"not a multiple of kv_heads"}},
		{"bad name", "models:\n  7b:\n    layers: 2\n", nil, []string{"name must be"}},
		{"set unknown", "", map[string]string{"models.llama-2-7b.foo": "1"}, []string{"--set models.llama-2-7b.foo", "unknown key"}},
		{"set bad", "", map[string]string{"models.llama-2-7b.layers": "[1"}, []string{"--set models.llama-2-7b.layers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := LoadOptions{Set: tc.set}
			if tc.yaml != "" {
				opts.ConfigFile = writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			}
			_, err := LoadModels(opts)
			checkErr(t, err, tc.want...)
			if tc.yaml != "" && !strings.Contains(err.Error(), opts.ConfigFile) && tc.name != "incomplete new model" {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
	if _, err := LoadModels(LoadOptions{ConfigFile: filepath.Join(dir, "missing.yaml")}); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestEncodedModelLoads checks that what `bwsim models import` writes is a
// models: section LoadModels reads back to the same model.
func TestEncodedModelLoads(t *testing.T) {
	c := mustLoadModels(t, LoadOptions{})
	g, _ := c.Get("gemma-7b")
	g.Name = "gemma-copy"
	g.Description = `quotes "and" unicode ✓`
	path := writeFile(t, t.TempDir(), "m.yaml", string(models.EncodeYAML(g)))
	c2 := mustLoadModels(t, LoadOptions{ConfigFile: path})
	back, err := c2.Get("gemma-copy")
	if err != nil {
		t.Fatal(err)
	}
	back.Origin, g.Origin = "", ""
	if !reflect.DeepEqual(back, g) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, g)
	}
}
