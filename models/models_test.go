package models

import (
	"errors"
	"strings"
	"testing"
)

func llama27b() *Model {
	return &Model{Name: "llama-2-7b", Family: "llama", Layers: 32, DModel: 4096, Heads: 32, KVHeads: 32, HeadDim: 128,
		FFNDim: 11008, Vocab: 32000, MLP: MLPGated, Norm: NormRMS, Params: 6738415616,
		WeightDType: "fp16", KVDType: "fp16", MaxSeq: 4096}
}

// TestArchParams checks the parameter count against arithmetic done by
// hand for each architecture variant.
func TestArchParams(t *testing.T) {
	gemma := &Model{Layers: 28, DModel: 3072, Heads: 16, KVHeads: 16, HeadDim: 256, FFNDim: 24576, Vocab: 256000,
		MLP: MLPGated, Norm: NormRMS, TiedEmbeddings: true}
	pythia := &Model{Layers: 24, DModel: 2048, Heads: 16, KVHeads: 16, HeadDim: 128, FFNDim: 8192, Vocab: 50304,
		MLP: MLPPlain, Norm: NormLayer, Bias: true}
	gqa := llama27b()
	gqa.KVHeads, gqa.FFNDim = 8, 14336 // Mistral 7B's shapes
	cases := []struct {
		name string
		m    *Model
		want int64
	}{
		// 2·32000·4096 + 32·(4·4096² + 3·4096·11008 + 2·4096) + 4096
		{"llama-2-7b", llama27b(), 2*32000*4096 + 32*(4*4096*4096+3*4096*11008+2*4096) + 4096},
		// GQA: K and V are 4096 × 1024.
		{"gqa", gqa, 2*32000*4096 + 32*(2*4096*4096+2*4096*1024+3*4096*14336+2*4096) + 4096},
		// Tied: one 256000·3072 matrix; Q, K, V, O are 3072 × 4096.
		{"gemma", gemma, 256000*3072 + 28*(4*3072*4096+3*3072*24576+2*3072) + 3072},
		// GPT-NeoX: biases on QKV (3·2048), dense (2048), MLP (8192 + 2048);
		// two LayerNorms of 2·2048; final LayerNorm 2·2048.
		{"pythia", pythia, 2*50304*2048 + 24*(4*2048*2048+3*2048+2048+2*2048*8192+8192+2048+4*2048) + 2*2048},
	}
	for _, tc := range cases {
		if got := tc.m.ArchParams(); got != tc.want {
			t.Errorf("%s: ArchParams %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := llama27b().ArchParams(); got != 6738415616 {
		t.Errorf("llama-2-7b %d", got)
	}
	// Matmul weights: every projection and the head, not the input lookup.
	if got, want := llama27b().MatmulParams(), int64(32*(4*4096*4096+3*4096*11008)+32000*4096); got != want {
		t.Errorf("MatmulParams %d, want %d", got, want)
	}
}

func TestValidate(t *testing.T) {
	if err := llama27b().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(m *Model)
		want []string
	}{
		{"name", func(m *Model) { m.Name = "Llama 2" }, []string{"name must be"}},
		{"sizes", func(m *Model) { m.Layers, m.HeadDim = 0, 1<<13 }, []string{"layers: must be between 1", "head_dim: must be between 1 and 4096"}},
		{"gqa", func(m *Model) { m.KVHeads = 5 }, []string{"not a multiple of kv_heads 5"}},
		{"kinds", func(m *Model) { m.MLP, m.Norm = "swiglu", "batch" }, []string{`mlp: must be "gated" or "plain"`, `norm: must be "rms" or "layer"`}},
		{"dtypes", func(m *Model) { m.WeightDType, m.KVDType = "fp4", "int8" }, []string{`weight_dtype: unknown dtype "fp4"`, "kv_dtype: must be one of fp16, bf16, fp32"}},
		{"params", func(m *Model) { m.Params = 7e9 }, []string{"params: 7000000000 differs by 3.9%", "6738415616"}},
		{"negatives", func(m *Model) { m.MaxSeq, m.SlidingWindow, m.Params = -1, -2, 0 }, []string{"max_seq", "sliding_window", "params: must be positive"}},
	}
	for _, tc := range cases {
		m := llama27b()
		tc.edit(m)
		err := m.Validate()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %T is not a FieldError", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestDTypeBytesAndCacheLen(t *testing.T) {
	for dt, want := range map[string]float64{"fp32": 4, "bf16": 2, "int8": 1, "q8_0": 1.0625, "q4_0": 0.5625, "int4": 0.5} {
		if got, err := DTypeBytes(dt); err != nil || got != want {
			t.Errorf("%s: %v %v", dt, got, err)
		}
	}
	if _, err := DTypeBytes("fp12"); err == nil || !strings.Contains(err.Error(), "q8_0") {
		t.Errorf("unknown dtype: %v", err)
	}
	m := llama27b()
	m.SlidingWindow = 4096
	if m.CacheLen(1000) != 1000 || m.CacheLen(32768) != 4096 {
		t.Error("sliding window")
	}
}

func TestCatalogGet(t *testing.T) {
	c, err := NewCatalog([]*Model{llama27b()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Get(" LLAMA-2-7B ")
	if err != nil || m.Layers != 32 {
		t.Fatalf("%v %v", m, err)
	}
	m.Layers = 1 // a copy
	if m2, _ := c.Get("llama-2-7b"); m2.Layers != 32 {
		t.Error("Get returned shared state")
	}
	if _, err := NewCatalog([]*Model{llama27b(), llama27b()}); err == nil {
		t.Error("duplicate accepted")
	}
	bad := llama27b()
	bad.Layers = 0
	if _, err := NewCatalog([]*Model{bad}); err == nil {
		t.Error("invalid model accepted")
	}
}

// hfLlama is a config.json in the shape Hugging Face writes for a Llama 2
// 7B checkpoint (fields irrelevant to bwsim included, to be ignored).
const hfLlama = `{
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 11008,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 32,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "vocab_size": 32000
}`

func TestParseHFConfig(t *testing.T) {
	m, err := ParseHFConfig([]byte(hfLlama), "my-llama")
	if err != nil {
		t.Fatal(err)
	}
	want := llama27b()
	want.Name = "my-llama"
	if m.Layers != want.Layers || m.DModel != want.DModel || m.HeadDim != 128 || m.KVHeads != 32 || m.FFNDim != 11008 ||
		m.Params != 6738415616 || m.WeightDType != "fp16" || m.KVDType != "fp16" || m.MaxSeq != 4096 || m.MLP != MLPGated || m.TiedEmbeddings {
		t.Errorf("imported %+v", m)
	}

	gemma := `{"model_type": "gemma", "hidden_size": 3072, "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256,
	  "num_hidden_layers": 28, "intermediate_size": 24576, "vocab_size": 256000, "torch_dtype": "bfloat16", "max_position_embeddings": 8192}`
	g, err := ParseHFConfig([]byte(gemma), "g")
	if err != nil {
		t.Fatal(err)
	}
	if !g.TiedEmbeddings || g.HeadDim != 256 || g.Params != 8537680896 || g.KVDType != "bf16" {
		t.Errorf("gemma %+v", g)
	}
	mistral := `{"model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
	  "intermediate_size": 14336, "vocab_size": 32000, "sliding_window": 4096, "torch_dtype": "bfloat16", "head_dim": null}`
	if mi, err := ParseHFConfig([]byte(mistral), "mi"); err != nil || mi.SlidingWindow != 4096 || mi.Params != 7241732096 || mi.HeadDim != 128 {
		t.Errorf("mistral %+v %v", mi, err)
	}
	neox := `{"model_type": "gpt_neox", "hidden_size": 2048, "num_attention_heads": 16, "num_hidden_layers": 24,
	  "intermediate_size": 8192, "vocab_size": 50304, "torch_dtype": "float16", "use_parallel_residual": true}`
	if p, err := ParseHFConfig([]byte(neox), "p"); err != nil || p.Params != 1414647808 || !p.Bias || p.Norm != NormLayer {
		t.Errorf("pythia %+v %v", p, err)
	}

	errCases := []struct {
		name, json string
		want       []string
	}{
		{"not json", `{"hidden_size": `, []string{"not JSON"}},
		{"array", `[1, 2]`, []string{"not a JSON object"}},
		{"trailing", hfLlama + `{}`, []string{"data after the object"}},
		{"duplicate", `{"model_type": "llama", "hidden_size": 1, "hidden_size": 2}`, []string{"hidden_size: given twice"}},
		{"string number", strings.Replace(hfLlama, `"hidden_size": 4096`, `"hidden_size": "4096"`, 1), []string{"hidden_size: expected a whole number, got string"}},
		{"fraction", strings.Replace(hfLlama, `"num_hidden_layers": 32`, `"num_hidden_layers": 32.5`, 1), []string{"num_hidden_layers", "32.5"}},
		{"negative", strings.Replace(hfLlama, `"vocab_size": 32000`, `"vocab_size": -1`, 1), []string{"vocab_size", "-1"}},
		{"huge", strings.Replace(hfLlama, `"vocab_size": 32000`, `"vocab_size": 1e300`, 1), []string{"vocab_size"}},
		{"missing", strings.Replace(hfLlama, `"intermediate_size": 11008,`, ``, 1), []string{"intermediate_size: missing"}},
		{"model type", strings.Replace(hfLlama, `"llama"`, `"mixtral"`, 1), []string{`"mixtral" is not supported`, "gpt_neox"}},
		{"no model type", strings.Replace(hfLlama, `"model_type": "llama",`, ``, 1), []string{"model_type: missing"}},
		{"dtype", strings.Replace(hfLlama, `"float16"`, `"float8"`, 1), []string{`torch_dtype: "float8"`}},
		{"tie", strings.Replace(hfLlama, `"tie_word_embeddings": false`, `"tie_word_embeddings": "no"`, 1), []string{"tie_word_embeddings: expected true or false"}},
		{"gqa", strings.Replace(hfLlama, `"num_key_value_heads": 32`, `"num_key_value_heads": 5`, 1), []string{"not a multiple of kv_heads 5"}},
		{"head dim", strings.Replace(hfLlama, `"num_attention_heads": 32`, `"num_attention_heads": 30`, 1), []string{"head_dim: absent"}},
		{"zero layers", strings.Replace(hfLlama, `"num_hidden_layers": 32`, `"num_hidden_layers": 0`, 1), []string{"layers: must be between 1"}},
	}
	for _, tc := range errCases {
		_, err := ParseHFConfig([]byte(tc.json), "x")
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
	if _, err := ParseHFConfig([]byte(hfLlama), "Bad Name"); err == nil {
		t.Error("bad name accepted")
	}
}

// FuzzParseHFConfig feeds arbitrary bytes to the importer: it must never
// panic, and whatever it accepts must be a valid model whose derived
// numbers are positive.
func FuzzParseHFConfig(f *testing.F) {
	f.Add([]byte(hfLlama))
	f.Add([]byte(`{"model_type":"gemma","hidden_size":8,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":4,"vocab_size":3}`))
	f.Add([]byte(`{"model_type":"gpt_neox","hidden_size":1e1,"num_attention_heads":5,"num_hidden_layers":1,"intermediate_size":4,"vocab_size":3,"head_dim":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseHFConfig(data, "fuzz")
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid model: %v", err)
		}
		if m.ArchParams() <= 0 || m.MatmulParams() <= 0 || m.Params != m.ArchParams() {
			t.Fatalf("derived counts: params %d arch %d matmul %d", m.Params, m.ArchParams(), m.MatmulParams())
		}
	})
}
