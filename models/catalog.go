package models

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

//go:embed catalog.yaml
var catalogYAML []byte

// CatalogYAML returns the embedded model catalog: YAML with a top-level
// models map keyed by model name, every figure with its source in a
// comment. Package config loads it (with the user's overrides).
func CatalogYAML() []byte { return bytes.Clone(catalogYAML) }

// Catalog is a set of validated models, keyed by name.
type Catalog struct {
	models map[string]*Model
}

// NewCatalog builds a catalog from models with distinct names that pass
// Validate. It reports every invalid model.
func NewCatalog(ms []*Model) (*Catalog, error) {
	c := &Catalog{models: make(map[string]*Model, len(ms))}
	var errs []error
	for _, m := range ms {
		if m == nil {
			return nil, errors.New("models: nil model")
		}
		if _, dup := c.models[m.Name]; dup {
			return nil, fmt.Errorf("models: duplicate model %q", m.Name)
		}
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
		}
		c.models[m.Name] = m.Clone()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Names returns the model names, sorted.
func (c *Catalog) Names() []string { return slices.Sorted(maps.Keys(c.models)) }

// Get returns a copy of the named model (names are case-insensitive). The
// error lists the known names.
func (c *Catalog) Get(name string) (*Model, error) {
	m, ok := c.models[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return nil, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(c.Names(), ", "))
	}
	return m.Clone(), nil
}

// Models returns copies of all models, sorted by name.
func (c *Catalog) Models() []*Model {
	out := make([]*Model, 0, len(c.models))
	for _, n := range c.Names() {
		out = append(out, c.models[n].Clone())
	}
	return out
}

// EncodeYAML renders models as a models: section in the catalog's format
// (fields in a fixed order), ready to paste into a --config file.
func EncodeYAML(ms ...*Model) []byte {
	var b bytes.Buffer
	b.WriteString("models:\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s:\n", m.Name)
		str := func(k, v string) { fmt.Fprintf(&b, "    %s: %s\n", k, strconv.Quote(v)) }
		num := func(k string, v int64) { fmt.Fprintf(&b, "    %s: %d\n", k, v) }
		str("description", m.Description)
		str("family", m.Family)
		num("layers", int64(m.Layers))
		num("d_model", int64(m.DModel))
		num("heads", int64(m.Heads))
		num("kv_heads", int64(m.KVHeads))
		num("head_dim", int64(m.HeadDim))
		num("ffn_dim", int64(m.FFNDim))
		num("vocab", int64(m.Vocab))
		str("mlp", m.MLP)
		str("norm", m.Norm)
		fmt.Fprintf(&b, "    bias: %t\n", m.Bias)
		fmt.Fprintf(&b, "    tied_embeddings: %t\n", m.TiedEmbeddings)
		num("params", m.Params)
		str("weight_dtype", m.WeightDType)
		str("kv_dtype", m.KVDType)
		num("max_seq", int64(m.MaxSeq))
		num("sliding_window", int64(m.SlidingWindow))
		str("source", m.Source)
	}
	return b.Bytes()
}
