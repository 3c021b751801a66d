// Package models describes decoder-only transformer language models as data:
// the shapes that decide what one decode step reads, computes and stores
// (layers, widths, heads, vocabulary, element types, sliding window).
//
// Models come from an embedded YAML catalog (CatalogYAML), which package
// config loads with the user's overrides, or from a Hugging Face
// config.json (ParseHFConfig). This package holds the types, the catalog
// text, validation and the arithmetic that follows from the architecture
// (parameter counts); it reads no YAML itself.
package models

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// MLP kinds.
const (
	// MLPGated is a gated feed-forward block (SwiGLU, GeGLU): gate and up
	// projections d_model → ffn, a down projection ffn → d_model.
	MLPGated = "gated"
	// MLPPlain is a two-matrix feed-forward block (GPT-NeoX, GPT-2): up
	// d_model → ffn and down ffn → d_model.
	MLPPlain = "plain"
)

// Norm kinds.
const (
	NormRMS   = "rms"   // RMSNorm: one scale vector
	NormLayer = "layer" // LayerNorm: a scale and a bias vector
)

// Model is one decoder-only transformer.
type Model struct {
	Name        string `mapstructure:"-" json:"name"`
	Description string `mapstructure:"description" json:"description"`
	// Family is the architecture family (llama, mistral, gemma, gpt_neox),
	// the model_type of a Hugging Face config.
	Family string `mapstructure:"family" json:"family"`
	// Layers is the number of transformer blocks.
	Layers int `mapstructure:"layers" json:"layers"`
	// DModel is the width of the residual stream (hidden_size).
	DModel int `mapstructure:"d_model" json:"d_model"`
	// Heads is the number of query heads.
	Heads int `mapstructure:"heads" json:"heads"`
	// KVHeads is the number of key/value heads (< Heads for grouped-query
	// attention).
	KVHeads int `mapstructure:"kv_heads" json:"kv_heads"`
	// HeadDim is the size of one head (not always DModel/Heads: Gemma 7B
	// has 16 heads of 256 over a 3072-wide stream).
	HeadDim int `mapstructure:"head_dim" json:"head_dim"`
	// FFNDim is the inner width of the feed-forward block.
	FFNDim int `mapstructure:"ffn_dim" json:"ffn_dim"`
	// Vocab is the vocabulary size (rows of the embedding).
	Vocab int `mapstructure:"vocab" json:"vocab"`
	// MLP is MLPGated or MLPPlain.
	MLP string `mapstructure:"mlp" json:"mlp"`
	// Norm is NormRMS or NormLayer.
	Norm string `mapstructure:"norm" json:"norm"`
	// Bias is true when every linear layer has a bias (GPT-NeoX).
	Bias bool `mapstructure:"bias" json:"bias"`
	// TiedEmbeddings is true when the output head reuses the input
	// embedding matrix.
	TiedEmbeddings bool `mapstructure:"tied_embeddings" json:"tied_embeddings"`
	// Params is the published parameter count. It must agree with the
	// count the architecture gives (ArchParams) within ParamsTolerance.
	Params int64 `mapstructure:"params" json:"params"`
	// WeightDType is the element type the weights are stored in (see
	// DTypeBytes); KVDType that of the KV cache (fp32, fp16 or bf16).
	WeightDType string `mapstructure:"weight_dtype" json:"weight_dtype"`
	KVDType     string `mapstructure:"kv_dtype" json:"kv_dtype"`
	// MaxSeq is the context length the model was trained for
	// (max_position_embeddings); 0 if unknown. Longer plans get a note.
	MaxSeq int `mapstructure:"max_seq" json:"max_seq"`
	// SlidingWindow is the attention window; the KV cache then holds at
	// most this many positions. 0 means full attention.
	SlidingWindow int `mapstructure:"sliding_window" json:"sliding_window,omitempty"`
	// Source says where the figures come from.
	Source string `mapstructure:"source" json:"source"`
	// Origin says which file or source the model was loaded from.
	Origin string `mapstructure:"-" json:"origin,omitempty"`
}

// ParamsTolerance is how far (as a fraction) a model's stated parameter
// count may differ from the count its architecture gives before Validate
// calls it a mistake.
const ParamsTolerance = 0.02

// Limits keep every derived count inside int64.
const (
	maxDim     = 1 << 20 // d_model, ffn_dim (vocab: twice this)
	maxHeadDim = 1 << 12
	maxLayers  = 1 << 12
	maxHeads   = 1 << 12
	maxSeq     = 1 << 30
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]*$`)

// ValidName reports whether name can name a model: lower-case letters,
// digits, '.', '-' and '_', starting with a letter (config keys are
// case-insensitive, so upper case could not be addressed).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// dtypeBytes is the storage size of one element of each weight type. q8_0
// and q4_0 are llama.cpp's block formats: blocks of 32 weights of 8 (4)
// bits sharing one fp16 scale, 34 (18) bytes per 32 weights.
var dtypeBytes = map[string]float64{
	"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5,
	"q8_0": 34.0 / 32, "q4_0": 18.0 / 32,
}

// KV cache element types: those the kernels can simulate.
var kvDTypes = []string{"fp16", "bf16", "fp32"}

// DTypeBytes returns the storage bytes per element of a weight or KV dtype.
func DTypeBytes(dtype string) (float64, error) {
	b, ok := dtypeBytes[dtype]
	if !ok {
		return 0, fmt.Errorf("unknown dtype %q (known: %s)", dtype, strings.Join(WeightDTypes(), ", "))
	}
	return b, nil
}

// WeightDTypes lists the weight element types, smallest last.
func WeightDTypes() []string {
	return []string{"fp32", "fp16", "bf16", "fp8", "int8", "q8_0", "q4_0", "int4"}
}

// KVDTypes lists the KV-cache element types.
func KVDTypes() []string { return append([]string(nil), kvDTypes...) }

// ValidKVDType reports whether dtype can be a KV cache's element type.
func ValidKVDType(dtype string) bool { return slices.Contains(kvDTypes, dtype) }

// AttentionParams is the weights of one layer's attention: Q and O are
// DModel × Heads·HeadDim, K and V DModel × KVHeads·HeadDim (plus biases).
func (m *Model) AttentionParams() int64 {
	d, q, kv := int64(m.DModel), int64(m.Heads*m.HeadDim), int64(m.KVHeads*m.HeadDim)
	n := 2*d*q + 2*d*kv
	if m.Bias {
		n += q + 2*kv + d
	}
	return n
}

// MLPParams is the weights of one layer's feed-forward block.
func (m *Model) MLPParams() int64 {
	d, f := int64(m.DModel), int64(m.FFNDim)
	mats := int64(2)
	if m.MLP == MLPGated {
		mats = 3
	}
	n := mats * d * f
	if m.Bias {
		n += (mats-1)*f + d
	}
	return n
}

// normParams is one normalisation layer's parameters.
func (m *Model) normParams() int64 {
	if m.Norm == NormLayer {
		return 2 * int64(m.DModel)
	}
	return int64(m.DModel)
}

// LayerParams is one transformer block: attention, MLP and two norms.
func (m *Model) LayerParams() int64 {
	return m.AttentionParams() + m.MLPParams() + 2*m.normParams()
}

// EmbeddingParams is the input embedding, Vocab × DModel.
func (m *Model) EmbeddingParams() int64 { return int64(m.Vocab) * int64(m.DModel) }

// ArchParams is the parameter count the architecture gives: the embedding,
// the blocks, the final norm and the output head (unless tied to the
// embedding). Rotary position embeddings have no parameters.
func (m *Model) ArchParams() int64 {
	n := m.EmbeddingParams() + int64(m.Layers)*m.LayerParams() + m.normParams()
	if !m.TiedEmbeddings {
		n += m.EmbeddingParams()
	}
	return n
}

// MatmulParams is the weights one decode step multiplies with, once per
// sequence: every block's projections and the output head. The input
// embedding is a lookup, not a product (when tied it is also the head).
func (m *Model) MatmulParams() int64 {
	return int64(m.Layers)*(m.AttentionParams()+m.MLPParams()) + m.EmbeddingParams()
}

// KVBytesPerToken is the KV cache one position adds to one sequence with
// K and V stored once in the model's KV dtype: 2 · layers · KV heads ·
// head size · element size (524288 bytes for Llama 2 7B in fp16).
func (m *Model) KVBytesPerToken() float64 {
	b, _ := DTypeBytes(m.KVDType)
	return 2 * float64(m.Layers*m.KVHeads*m.HeadDim) * b
}

// CacheLen is the number of positions the KV cache holds at context length
// seq: seq, or the sliding window when it is shorter.
func (m *Model) CacheLen(seq int) int {
	if m.SlidingWindow > 0 && seq > m.SlidingWindow {
		return m.SlidingWindow
	}
	return seq
}

// Clone returns a copy of m.
func (m *Model) Clone() *Model {
	if m == nil {
		return nil
	}
	c := *m
	return &c
}

// FieldError is one problem with one field of a model.
type FieldError struct {
	Model string
	// Key is the field's key in the catalog (layers, kv_heads, ...).
	Key string
	Msg string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("model %q: %s", e.Model, e.Msg)
	}
	return fmt.Sprintf("model %q: %s: %s", e.Model, e.Key, e.Msg)
}

// Validate checks that m is complete and consistent: a valid name, positive
// sizes within limits, heads a multiple of KV heads, known MLP, norm and
// dtypes, and a stated parameter count that the architecture reproduces
// within ParamsTolerance. It reports every problem, each a *FieldError,
// joined with errors.Join.
func (m *Model) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Model: m.Name, Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	if !ValidName(m.Name) {
		add("", "name must be lower-case letters, digits, '.', '-' or '_', starting with a letter")
	}
	sizes := []struct {
		key   string
		v     int
		limit int
	}{
		{"layers", m.Layers, maxLayers}, {"d_model", m.DModel, maxDim}, {"heads", m.Heads, maxHeads},
		{"kv_heads", m.KVHeads, maxHeads}, {"head_dim", m.HeadDim, maxHeadDim}, {"ffn_dim", m.FFNDim, maxDim},
		{"vocab", m.Vocab, 2 * maxDim},
	}
	sizesOK := true
	for _, s := range sizes {
		if s.v <= 0 || s.v > s.limit {
			add(s.key, "must be between 1 and %d, got %d", s.limit, s.v)
			sizesOK = false
		}
	}
	if sizesOK && m.Heads%m.KVHeads != 0 {
		add("kv_heads", "heads %d is not a multiple of kv_heads %d", m.Heads, m.KVHeads)
	}
	if m.MLP != MLPGated && m.MLP != MLPPlain {
		add("mlp", "must be %q or %q, got %q", MLPGated, MLPPlain, m.MLP)
	}
	if m.Norm != NormRMS && m.Norm != NormLayer {
		add("norm", "must be %q or %q, got %q", NormRMS, NormLayer, m.Norm)
	}
	if _, ok := dtypeBytes[m.WeightDType]; !ok {
		add("weight_dtype", "unknown dtype %q (known: %s)", m.WeightDType, strings.Join(WeightDTypes(), ", "))
	}
	if !ValidKVDType(m.KVDType) {
		add("kv_dtype", "must be one of %s, got %q", strings.Join(kvDTypes, ", "), m.KVDType)
	}
	if m.MaxSeq < 0 || m.MaxSeq > maxSeq {
		add("max_seq", "must be between 0 (unknown) and %d, got %d", maxSeq, m.MaxSeq)
	}
	if m.SlidingWindow < 0 || m.SlidingWindow > maxSeq {
		add("sliding_window", "must be between 0 (none) and %d, got %d", maxSeq, m.SlidingWindow)
	}
	if m.Params <= 0 {
		add("params", "must be positive, got %d", m.Params)
	} else if sizesOK && m.MLP != "" && m.Norm != "" {
		arch := m.ArchParams()
		if diff := math.Abs(float64(m.Params-arch)) / float64(arch); diff > ParamsTolerance {
			add("params", "%d differs by %.1f%% from the %d the architecture gives (check layers, d_model, ffn_dim, vocab, tied_embeddings)",
				m.Params, 100*diff, arch)
		}
	}
	return errors.Join(errs...)
}
