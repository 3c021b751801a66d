package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// SweepSection is the top-level key of a --config file that holds the
// settings of bwsim sweep.
const SweepSection = "sweep"

// SweepSettings is the sweep: section of a --config file. Each key mirrors
// a flag of bwsim sweep (snake_case here, kebab-case on the command line)
// and takes the same values; a flag given on the command line wins. Lists
// may be YAML lists or comma-separated strings:
//
//	sweep:
//	  methods: [dense, "sparq:r=32:k=128", "sparq:ratio=1/8"]
//	  seq: 1k..128k
//	  batch: [1, 64]
//	  devices: [a100-40gb, h100-sxm, ipu-bow]
//	  dtype: fp16
//	  heads: 32
//	  kv_heads: 32
//	  head_dim: 128
//	  placement: ["ipu-bow:kv-cache=streaming"]
//	  steps: 1
//	  tradeoff: false
//	  out: ./bwsim-out
type SweepSettings struct {
	Methods     []string `mapstructure:"methods"`
	Seq         []string `mapstructure:"seq"`
	Batch       []string `mapstructure:"batch"`
	Devices     []string `mapstructure:"devices"`
	DType       []string `mapstructure:"dtype"`
	Impl        []string `mapstructure:"impl"`
	KLayout     []string `mapstructure:"k_layout"`
	Placement   []string `mapstructure:"placement"`
	Heads       *int     `mapstructure:"heads"`
	KVHeads     *int     `mapstructure:"kv_heads"`
	HeadDim     *int     `mapstructure:"head_dim"`
	Workload    *string  `mapstructure:"workload"`
	Seed        *uint64  `mapstructure:"seed"`
	SampleHeads *int     `mapstructure:"sample_heads"`
	NoAppend    *bool    `mapstructure:"no_append"`
	Jobs        *int     `mapstructure:"jobs"`
	Out         *string  `mapstructure:"out"`
	// Steps, Tradeoff and TradeoffDevice are --steps, --tradeoff and
	// --tradeoff-device.
	Steps          *int    `mapstructure:"steps"`
	Tradeoff       *bool   `mapstructure:"tradeoff"`
	TradeoffDevice *string `mapstructure:"tradeoff_device"`
}

// Flags returns the settings that are set, keyed by the flag of bwsim
// sweep they stand for, with lists joined by commas.
func (s SweepSettings) Flags() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(s)
	t := v.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("mapstructure")
		flag := strings.ReplaceAll(key, "_", "-")
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			if f.Len() > 0 {
				out[flag] = strings.Join(f.Interface().([]string), ",")
			}
		case reflect.Pointer:
			if !f.IsNil() {
				out[flag] = fmt.Sprint(f.Elem().Interface())
			}
		}
	}
	return out
}

// sweepKeys lists the keys of the sweep: section.
func sweepKeys() []string {
	t := reflect.TypeOf(SweepSettings{})
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("mapstructure")
	}
	return keys
}

// LoadSweep reads the sweep: section of the config file at path, strictly:
// unknown keys (in the section or at the top level) and values of the wrong
// type are errors naming the file and key. A file without the section gives
// zero settings. The devices: section is left to LoadDevices.
func LoadSweep(path string) (s SweepSettings, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = SweepSettings{}, fmt.Errorf("%s: cannot read: %v", path, r)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return s, fmt.Errorf("%s: not valid YAML: %w", path, unwrapViper(err))
	}
	known := append(append([]string(nil), configSections...), SweepSection)
	sort.Strings(known)
	known = sweepUniq(known)
	for top := range v.AllSettings() {
		if !contains(known, top) {
			return s, &KeyError{Source: path, Key: top, Msg: fmt.Sprintf("unknown top-level key (known: %s)", strings.Join(known, ", "))}
		}
	}
	raw := v.Get(SweepSection)
	if raw == nil {
		return s, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return s, &KeyError{Source: path, Key: SweepSection, Msg: "expected a map of settings"}
	}
	keys := sweepKeys()
	var bad []string
	for k := range m {
		if !contains(keys, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return s, &KeyError{Source: path, Key: SweepSection + "." + bad[0], Msg: fmt.Sprintf("unknown key (known: %s)", strings.Join(keys, ", "))}
	}
	for _, k := range sweepSortedKeys(m) {
		var one SweepSettings
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			Result: &one, ErrorUnused: true, DecodeHook: sweepHook, WeaklyTypedInput: false,
		})
		if err != nil {
			return s, err
		}
		if err := dec.Decode(map[string]any{k: m[k]}); err != nil {
			return s, &KeyError{Source: path, Key: SweepSection + "." + k, Msg: sweepValueError(k, m[k])}
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &s, ErrorUnused: true, DecodeHook: sweepHook})
	if err != nil {
		return s, err
	}
	if err := dec.Decode(m); err != nil {
		return SweepSettings{}, fmt.Errorf("%s: %s: %w", path, SweepSection, err)
	}
	return s, nil
}

func sweepValueError(key string, val any) string {
	var ft reflect.Type
	st := reflect.TypeOf(SweepSettings{})
	for i := range st.NumField() {
		if st.Field(i).Tag.Get("mapstructure") == key {
			ft = st.Field(i).Type
		}
	}
	want := "a value"
	switch {
	case ft == nil:
	case ft.Kind() == reflect.Slice:
		want = "a list or a string"
	case ft.Kind() == reflect.Pointer:
		switch ft.Elem().Kind() {
		case reflect.Int, reflect.Uint64:
			want = "a whole number"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a string"
		}
	}
	return fmt.Sprintf("expected %s, got %s", want, valueWord(val))
}

// sweepHook turns scalars into one-element lists and list items into
// strings, and reads whole numbers given as strings.
func sweepHook(from, to reflect.Type, data any) (any, error) {
	scalar := func(x any) (string, bool) {
		switch y := x.(type) {
		case string:
			return y, true
		case int, int64, int32, uint64, uint32, uint:
			return fmt.Sprint(y), true
		case float64:
			if y == float64(int64(y)) {
				return strconv.FormatInt(int64(y), 10), true
			}
			return strconv.FormatFloat(y, 'g', -1, 64), true
		}
		return "", false
	}
	if to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.String {
		if s, ok := scalar(data); ok {
			return []string{s}, nil
		}
		if list, ok := data.([]any); ok {
			out := make([]string, len(list))
			for i, x := range list {
				s, ok := scalar(x)
				if !ok {
					return nil, fmt.Errorf("item %d: expected a string or number", i+1)
				}
				out[i] = s
			}
			return out, nil
		}
		return nil, fmt.Errorf("expected a list or a string")
	}
	switch to.Kind() {
	case reflect.Int, reflect.Uint64:
		switch x := data.(type) {
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("expected a whole number")
			}
			return n, nil
		case float64:
			if x != float64(int64(x)) {
				return nil, fmt.Errorf("expected a whole number")
			}
			return int64(x), nil
		}
	}
	return data, nil
}

func sweepUniq(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func sweepSortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
