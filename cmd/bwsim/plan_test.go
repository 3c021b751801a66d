package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlanCommand(t *testing.T) {
	isolateConfig(t)
	out, err := execute(t, "plan", "--model", "llama-2-7b", "--device", "h100-sxm", "--seq", "4k", "--target-tokens-per-second", "5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"llama-2-7b on h100-sxm, seq 4K", "largest batch that fits", "Kt", "Vmean", "attention",
		"throughput vs dense", "devices for 5000 tokens/s", "512.0 KiB", "768.0 KiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	dir := t.TempDir()
	out, err = execute(t, "plan", "--model", "llama-2-7b", "--device", "h100-sxm", "--seq", "4096", "--json", "--out", dir,
		"--methods", "dense,sparq:r=32:k=128")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Plans []struct {
			Method          string  `json:"method"`
			KVBytesPerToken float64 `json:"kv_bytes_per_token"`
			MaxBatch        int     `json:"max_batch"`
			SecondsPerToken float64 `json:"seconds_per_token"`
			TokensPerSecond float64 `json:"tokens_per_second"`
			Memory          struct {
				WeightBytes  float64 `json:"weight_bytes"`
				KVCacheBytes float64 `json:"kv_cache_bytes"`
				ReserveBytes float64 `json:"reserve_bytes"`
			} `json:"memory"`
			Curve []struct {
				Batch int  `json:"batch"`
				Fits  bool `json:"fits"`
			} `json:"curve"`
		} `json:"plans"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(doc.Plans) != 2 || doc.Plans[0].Method != "dense" || doc.Plans[1].Method != "sparq:r=32:k=128" {
		t.Fatalf("plans %+v", doc.Plans)
	}
	d, s := doc.Plans[0], doc.Plans[1]
	if d.KVBytesPerToken != 524288 || s.KVBytesPerToken != 786432 || s.MaxBatch >= d.MaxBatch || d.SecondsPerToken <= 0 ||
		d.TokensPerSecond <= 0 || d.Memory.WeightBytes != 6738415616*2 || d.Memory.KVCacheBytes <= 0 || d.Memory.ReserveBytes != 8e9 || len(d.Curve) == 0 {
		t.Errorf("plans %+v", doc.Plans)
	}
	for _, name := range []string{"plan.json", "tokens-per-second.png", "tokens-per-second.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("--out: %s: %v", name, err)
		}
	}
}

func TestPlanModelFile(t *testing.T) {
	isolateConfig(t)
	dir := filepath.Join(t.TempDir(), "Tiny-Llama")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_attention_heads": 32,
	  "num_key_value_heads": 4, "num_hidden_layers": 22, "vocab_size": 32000, "torch_dtype": "bfloat16", "max_position_embeddings": 2048}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "plan", "--model-file", cfg, "--device", "a100-40gb", "--seq", "2k", "--batch", "8", "--methods", "dense")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tiny-llama on a100-40gb") || !strings.Contains(out, "bf16") {
		t.Errorf("output:\n%s", out)
	}
	out, err = execute(t, "models", "import", cfg, "--name", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	// The imported section loads back through --config.
	conf := filepath.Join(t.TempDir(), "bwsim.yaml")
	if err := os.WriteFile(conf, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = execute(t, "models", "show", "tiny", "--config", conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kv_heads: 4") || !strings.Contains(out, "loaded from "+conf) {
		t.Errorf("show:\n%s", out)
	}
}

func TestPlanErrors(t *testing.T) {
	isolateConfig(t)
	base := []string{"plan", "--model", "llama-2-7b", "--device", "h100-sxm", "--seq", "4k"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown model", []string{"plan", "--model", "llama-9", "--device", "h100-sxm", "--seq", "4k"}, "unknown model"},
		{"no model", []string{"plan", "--device", "h100-sxm", "--seq", "4k"}, "--model or --model-file"},
		{"no device", []string{"plan", "--model", "llama-2-7b", "--seq", "4k"}, "--device is required"},
		{"no seq", []string{"plan", "--model", "llama-2-7b", "--device", "h100-sxm"}, "--seq is required"},
		{"unknown device", []string{"plan", "--model", "llama-2-7b", "--device", "tpu", "--seq", "4k"}, "unknown device"},
		{"batch too big", append(base, "--batch", "1000"), "batch 1000 does not fit"},
		{"batch word", append(base, "--batch", "lots"), "--batch"},
		{"latency", append(base, "--latency-ms", "0.5"), "even batch 1 takes"},
		{"negative target", append(base, "--target-tokens-per-second", "-5"), "--target-tokens-per-second"},
		{"heads", append(base, "--devices", "3"), "do not split evenly over 3 devices"},
		{"weights", []string{"plan", "--model", "llama-2-70b", "--device", "h100-sxm", "--seq", "4k"}, "use at least 2 devices"},
		{"method", append(base, "--methods", "dense,sparse"), "--methods"},
		{"dtype", append(base, "--weight-dtype", "fp12"), "weight dtype"},
		{"model file", []string{"plan", "--model-file", "/nonexistent/config.json", "--device", "h100-sxm", "--seq", "4k"}, "no such file"},
	}
	for _, tc := range cases {
		_, err := execute(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
			continue
		}
		if !isUsage(err) {
			t.Errorf("%s: %v is not a usage error (exit 2)", tc.name, err)
		}
	}
}

func TestModelsCommand(t *testing.T) {
	isolateConfig(t)
	out, err := execute(t, "models")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b", "gemma-7b",
		"pythia-1.4b", "pythia-6.9b", "6.74B", "4K"} {
		if !strings.Contains(out, want) {
			t.Errorf("models output lacks %q:\n%s", want, out)
		}
	}
	out, err = execute(t, "models", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ms []struct {
		Name   string `json:"name"`
		Params int64  `json:"params"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms) != 10 {
		t.Fatalf("--json: %v, %d models", err, len(ms))
	}
	for _, m := range ms {
		if m.Params <= 0 || !strings.HasPrefix(m.Source, "https://huggingface.co/") {
			t.Errorf("%+v", m)
		}
	}
	if _, err := execute(t, "models", "show", "gpt-5"); err == nil || !isUsage(err) {
		t.Errorf("unknown model: %v", err)
	}
}
