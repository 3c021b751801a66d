package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// hfArch is what a Hugging Face model_type implies beyond config.json's
// numbers.
type hfArch struct {
	mlp, norm string
	bias      bool
	// tied is tie_word_embeddings' default for the model type.
	tied bool
}

// hfArchs lists the model types ParseHFConfig understands.
var hfArchs = map[string]hfArch{
	"llama":    {MLPGated, NormRMS, false, false},
	"mistral":  {MLPGated, NormRMS, false, false},
	"gemma":    {MLPGated, NormRMS, false, true},
	"gpt_neox": {MLPPlain, NormLayer, true, false},
}

// HFModelTypes lists the model_type values ParseHFConfig accepts.
func HFModelTypes() []string { return slices.Sorted(maps.Keys(hfArchs)) }

// hfDTypes maps torch_dtype to bwsim's names.
var hfDTypes = map[string]string{"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}

// hfField is one config.json field ParseHFConfig reads.
type hfField struct {
	key      string
	required bool
}

// hfInts are the integer fields, with whether they are required.
var hfInts = []hfField{
	{"hidden_size", true}, {"num_attention_heads", true}, {"num_hidden_layers", true},
	{"intermediate_size", true}, {"vocab_size", true}, {"num_key_value_heads", false},
	{"head_dim", false}, {"sliding_window", false}, {"max_position_embeddings", false},
}

// MaxHFConfigBytes bounds the config.json ParseHFConfig reads.
const MaxHFConfigBytes = 1 << 20

// ParseHFConfig reads a Hugging Face config.json and returns the model it
// describes, named name, with its parameter count computed from the shapes.
//
// Decoding is strict for the fields it needs: the document must be one JSON
// object with no duplicate keys; hidden_size, num_attention_heads,
// num_hidden_layers, intermediate_size and vocab_size must be whole
// numbers; num_key_value_heads (default: the heads), head_dim (default:
// hidden_size / heads), sliding_window and max_position_embeddings may be
// absent or null; torch_dtype must be float16, bfloat16 or float32 (default
// float16); tie_word_embeddings must be true or false (default: the model
// type's); model_type must be one of HFModelTypes. Other fields are ignored:
// they do not change what a decode step moves. The model is validated.
func ParseHFConfig(data []byte, name string) (*Model, error) {
	if len(data) > MaxHFConfigBytes {
		return nil, fmt.Errorf("config.json: %d bytes, more than the %d a model configuration needs", len(data), MaxHFConfigBytes)
	}
	fields, err := topLevel(data)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config.json: %s: %s", key, fmt.Sprintf(format, a...)))
	}

	var modelType string
	if raw, ok := fields["model_type"]; !ok {
		bad("model_type", "missing (known: %s)", strings.Join(HFModelTypes(), ", "))
	} else if err := json.Unmarshal(raw, &modelType); err != nil {
		bad("model_type", "expected a string, got %s", describeJSON(raw))
	}
	arch, archOK := hfArchs[modelType]
	if modelType != "" && !archOK {
		bad("model_type", "%q is not supported (known: %s); describe the model in a --config file's models: section instead",
			modelType, strings.Join(HFModelTypes(), ", "))
	}

	ints := map[string]int{}
	for _, f := range hfInts {
		raw, ok := fields[f.key]
		if !ok || string(raw) == "null" {
			if f.required {
				bad(f.key, "missing")
			}
			continue
		}
		n, err := wholeNumber(raw)
		if err != nil {
			bad(f.key, "%v", err)
			continue
		}
		ints[f.key] = n
	}

	dtype := "fp16"
	if raw, ok := fields["torch_dtype"]; ok && string(raw) != "null" {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			bad("torch_dtype", "expected a string, got %s", describeJSON(raw))
		} else if d, ok := hfDTypes[s]; ok {
			dtype = d
		} else {
			bad("torch_dtype", "%q is not float16, bfloat16 or float32", s)
		}
	}
	tied := arch.tied
	if raw, ok := fields["tie_word_embeddings"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &tied); err != nil {
			bad("tie_word_embeddings", "expected true or false, got %s", describeJSON(raw))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	m := &Model{
		Name:           name,
		Description:    "imported from a Hugging Face config.json",
		Family:         modelType,
		Layers:         ints["num_hidden_layers"],
		DModel:         ints["hidden_size"],
		Heads:          ints["num_attention_heads"],
		KVHeads:        ints["num_key_value_heads"],
		HeadDim:        ints["head_dim"],
		FFNDim:         ints["intermediate_size"],
		Vocab:          ints["vocab_size"],
		MLP:            arch.mlp,
		Norm:           arch.norm,
		Bias:           arch.bias,
		TiedEmbeddings: tied,
		WeightDType:    dtype,
		KVDType:        dtype,
		MaxSeq:         ints["max_position_embeddings"],
		SlidingWindow:  ints["sliding_window"],
		Source:         "Hugging Face config.json",
	}
	if m.KVHeads == 0 {
		m.KVHeads = m.Heads
	}
	if m.HeadDim == 0 {
		if m.Heads <= 0 || m.DModel%m.Heads != 0 {
			return nil, fmt.Errorf("config.json: head_dim: absent, and hidden_size %d is not a multiple of num_attention_heads %d", m.DModel, m.Heads)
		}
		m.HeadDim = m.DModel / m.Heads
	}
	// The count is only meaningful once the shapes are valid; Validate
	// reports them otherwise.
	m.Params = 1
	if err := m.Validate(); err != nil && !onlyParams(err) {
		return nil, err
	}
	m.Params = m.ArchParams()
	return m, m.Validate()
}

// onlyParams reports whether every problem Validate found is the params
// field (which ParseHFConfig fills in afterwards).
func onlyParams(err error) bool {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) || fe.Key != "params" {
			return false
		}
	}
	return true
}

// topLevel splits one JSON object into its fields, refusing anything that
// is not exactly one object and any key given twice (encoding/json would
// silently keep the last).
func topLevel(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("not JSON: object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s: not JSON: %w", key, err)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("%s: given twice", key)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the object")
	}
	return fields, nil
}

// wholeNumber reads a JSON number that is a whole number from 0 to 2^31−1.
func wholeNumber(raw json.RawMessage) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("expected a whole number, got %s", describeJSON(raw))
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("expected a whole number, got %s", describeJSON(raw))
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return 0, fmt.Errorf("expected a whole number from 0 to %d, got %s", math.MaxInt32, n)
	}
	return int(f), nil
}

// describeJSON names a JSON value's kind for an error message.
func describeJSON(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "":
		return "nothing"
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "boolean " + s
	case s[0] == '"':
		if len(s) > 40 {
			s = s[:37] + `..."`
		}
		return "string " + s
	case s[0] == '[':
		return "a list"
	case s[0] == '{':
		return "an object"
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return "number " + s
}
