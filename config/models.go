package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/bwsim/bwsim/models"
)

// ModelsSection is the top-level key of a --config file that adds or
// overrides models of the embedded model catalog (models.CatalogYAML):
//
//	models:
//	  llama-2-7b:                # an existing model: override some keys
//	    kv_dtype: bf16
//	  my-model:                  # a new model: every key below is required
//	    description: "what it is"
//	    family: llama
//	    layers: 32
//	    d_model: 4096
//	    heads: 32
//	    kv_heads: 8
//	    head_dim: 128
//	    ffn_dim: 14336
//	    vocab: 32000
//	    mlp: gated               # gated (SwiGLU, GeGLU) or plain
//	    norm: rms                # rms or layer
//	    bias: false
//	    tied_embeddings: false
//	    params: 7241732096       # within 2% of what the shapes give
//	    weight_dtype: bf16       # fp32 fp16 bf16 fp8 int8 q8_0 q4_0 int4
//	    kv_dtype: bf16           # fp32 fp16 bf16
//	    max_seq: 32768           # 0 if unknown
//	    sliding_window: 0        # 0: full attention
//	    source: "where the figures come from"
//
// Model names may contain dots (pythia-1.4b), so the section is merged model
// by model and key by key here rather than through viper's dotted keys.
// `bwsim models import config.json` writes such a section from a Hugging
// Face config.json.
const ModelsSection = "models"

const embeddedModelsSource = "embedded model catalog"

// modelEntry is one model's keys as read, with the source of each.
type modelEntry struct {
	fields  map[string]any
	sources map[string]string
}

// LoadModels loads the embedded model catalog, then the models: section of
// opts.ConfigFile, then opts.Set keys under models. (for example
// --set models.pythia-1.4b.kv_dtype=bf16: the last dotted part is the key,
// what lies between "models." and it the model), and decodes and validates
// every model strictly: unknown keys, values of the wrong type and
// impossible models are errors naming the source and key. Other sections of
// the config file and other --set keys are left to their loaders; device
// files, the host file and BWSIM_* variables hold no models.
func LoadModels(opts LoadOptions) (*models.Catalog, error) {
	entries := map[string]*modelEntry{}
	merge := func(section map[string]any, source string) error {
		var errs []error
		for name, raw := range section {
			e := entries[name]
			if e == nil {
				e = &modelEntry{fields: map[string]any{}, sources: map[string]string{}}
				entries[name] = e
			}
			if raw == nil {
				continue // a new model with no keys: Validate lists what is missing
			}
			fields, ok := raw.(map[string]any)
			if !ok {
				errs = append(errs, &KeyError{Source: source, Key: ModelsSection + "." + name, Msg: "expected a map of model keys, got " + valueWord(raw)})
				continue
			}
			for k, v := range fields {
				e.fields[k], e.sources[k] = v, source
			}
		}
		return joinIfAny(errs)
	}

	embedded, err := readSection(embeddedModelsSource, models.CatalogYAML(), []string{ModelsSection})
	if err != nil {
		return nil, err
	}
	if err := merge(embedded, embeddedModelsSource); err != nil {
		return nil, err
	}
	if opts.ConfigFile != "" {
		data, err := os.ReadFile(opts.ConfigFile)
		if err != nil {
			return nil, err
		}
		known := append([]string(nil), configSections...)
		if !contains(known, ModelsSection) {
			known = append(known, ModelsSection)
		}
		section, err := readSection(opts.ConfigFile, data, known)
		if err != nil {
			return nil, err
		}
		if err := merge(section, opts.ConfigFile); err != nil {
			return nil, err
		}
	}
	if err := applyModelSet(opts.Set, merge); err != nil {
		return nil, err
	}

	var ms []*models.Model
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		m, err := decodeModel(name, entries[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ms = append(ms, m)
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return models.NewCatalog(ms)
}

// readSection reads a YAML document and returns its models: section (nil
// when it has none), refusing top-level keys not in known.
func readSection(source string, data []byte, known []string) (section map[string]any, err error) {
	defer func() {
		// viper and the YAML decoder are not fuzzed against hostile input;
		// a panic there is still just a bad file.
		if r := recover(); r != nil {
			section, err = nil, fmt.Errorf("%s: cannot read: %v", source, r)
		}
	}()
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", source, unwrapViper(err))
	}
	sort.Strings(known)
	var errs []error
	for top := range v.AllSettings() {
		if !contains(known, top) {
			errs = append(errs, &KeyError{Source: source, Key: top, Msg: fmt.Sprintf("unknown top-level key (known: %s)", strings.Join(known, ", "))})
		}
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	// Get returns the section as read, model names with dots intact
	// (AllSettings would split them).
	raw := v.Get(ModelsSection)
	if raw == nil {
		return nil, nil
	}
	section, ok := raw.(map[string]any)
	if !ok {
		return nil, &KeyError{Source: source, Key: ModelsSection, Msg: "expected a map of models, got " + valueWord(raw)}
	}
	return section, nil
}

// applyModelSet applies the --set keys under models.: "models.NAME.KEY"
// sets one key, "models.NAME" a flow map of keys. Other keys belong to
// other loaders.
func applyModelSet(set map[string]string, merge func(map[string]any, string) error) error {
	var errs []error
	for _, raw := range slices.Sorted(maps.Keys(set)) {
		key := strings.ToLower(strings.TrimSpace(raw))
		rest, ok := strings.CutPrefix(key, ModelsSection+".")
		if !ok {
			continue
		}
		src := "--set " + key
		val, err := parseValue(set[raw])
		if err == nil && val == nil {
			err = errors.New("empty value")
		}
		if err != nil {
			errs = append(errs, &KeyError{Source: src, Msg: fmt.Sprintf("value %q: %v", set[raw], err)})
			continue
		}
		// A map value gives keys of the model the rest names; any other
		// value sets the key after the last dot.
		name, field := rest, ""
		if !isMapValue(val) {
			name, field = "", ""
			if i := strings.LastIndexByte(rest, '.'); i >= 0 {
				name, field = rest[:i], rest[i+1:]
			}
		}
		if name == "" || (field == "" && !isMapValue(val)) {
			errs = append(errs, &KeyError{Source: "--set", Key: raw, Msg: "not a key such as models.llama-2-7b.kv_dtype"})
			continue
		}
		if field != "" {
			val = map[string]any{field: val}
		}
		if err := merge(map[string]any{name: lowerKeys(val)}, src); err != nil {
			errs = append(errs, err)
		}
	}
	return joinIfAny(errs)
}

func isMapValue(v any) bool { _, ok := v.(map[string]any); return ok }

// lowerKeys lower-cases the keys of a map given on the command line, as
// viper does for files.
func lowerKeys(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[strings.ToLower(k)] = x
	}
	return out
}

// modelKeys lists the keys a model entry accepts.
func modelKeys() []string {
	t := reflect.TypeOf(models.Model{})
	var keys []string
	for i := range t.NumField() {
		if tag := tagName(t.Field(i)); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// decodeModel decodes one model's merged keys strictly, one key at a time so
// that each error names its key and source, then validates the model.
func decodeModel(name string, e *modelEntry) (*models.Model, error) {
	known := modelKeys()
	m := &models.Model{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(e.fields)) {
		full := ModelsSection + "." + name + "." + k
		if !contains(known, k) {
			errs = append(errs, &KeyError{Source: e.sources[k], Key: full, Msg: fmt.Sprintf("unknown key (known: %s)", strings.Join(known, ", "))})
			continue
		}
		cfg := &mapstructure.DecoderConfig{Result: m, ErrorUnused: true}
		strictDecoding(cfg)
		dec, err := mapstructure.NewDecoder(cfg)
		if err == nil {
			err = dec.Decode(map[string]any{k: e.fields[k]})
		}
		if err != nil {
			var de *mapstructure.DecodeError
			if errors.As(err, &de) && de.Unwrap() != nil {
				err = de.Unwrap()
			}
			errs = append(errs, &KeyError{Source: e.sources[k], Key: full, Msg: friendly(err)})
		}
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	m.Name = name
	m.Origin = lastSource(e.sources)
	if err := m.Validate(); err != nil {
		return nil, modelFieldErrors(err, name, e.sources)
	}
	return m, nil
}

// lastSource names where a model comes from: the last source that set any
// of its keys (the config file when it overrides one key of an embedded
// model), in the order embedded catalog, config file, --set.
func lastSource(sources map[string]string) string {
	best, rank := embeddedModelsSource, 0
	for _, s := range sources {
		r := 1
		switch {
		case s == embeddedModelsSource:
			r = 0
		case strings.HasPrefix(s, "--set"):
			r = 2
		}
		if r > rank || (r == rank && s > best) {
			best, rank = s, r
		}
	}
	return best
}

// modelFieldErrors converts Validate's errors into KeyErrors naming the
// source of the key (or, for a missing key, every source of the model).
func modelFieldErrors(err error, name string, sources map[string]string) error {
	allList := slices.Compact(slices.Sorted(maps.Values(sources)))
	whole := strings.Join(allList, " and ")
	if whole == "" {
		whole = "--config"
	}
	var out []error
	eachLeaf(err, func(e error) {
		key, src, msg := ModelsSection+"."+name, whole, e.Error()
		var fe *models.FieldError
		if errors.As(e, &fe) {
			msg = fe.Msg
			if fe.Key != "" {
				key += "." + fe.Key
				// A problem with an embedded key that another source
				// caused (params after a changed layers) names them all.
				if s, ok := sources[fe.Key]; ok && (s != embeddedModelsSource || len(allList) == 1) {
					src = s
				}
			}
		}
		out = append(out, &KeyError{Source: src, Key: key, Msg: msg})
	})
	return joinSorted(out)
}

func joinIfAny(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joinSorted(errs)
}
