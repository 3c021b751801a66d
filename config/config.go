// Package config loads bwsim's configuration: the device catalog with the
// user's overrides. It is the only package that imports viper; everything
// else receives typed values (a *hwmodel.Catalog).
//
// # Sources and precedence
//
// LoadDevices merges, later sources overriding earlier ones key by key:
//
//  1. the catalog embedded in the binary (hwmodel.CatalogYAML);
//  2. the calibrated host file written by `bwsim calibrate`, if present:
//     LoadOptions.HostFile, else $BWSIM_HOST_FILE, else
//     $XDG_CONFIG_HOME/bwsim/host.yaml (os.UserConfigDir);
//  3. the config file (--config), then each device file (--device-file) in
//     the order given;
//  4. environment variables BWSIM_<KEY>, the key upper-cased with '.' and
//     '-' replaced by '_', e.g.
//     BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH=3e12;
//  5. --set key=value flags (LoadOptions.Set), e.g.
//     --set devices.h100-sxm.memory_levels.hbm.achievable_bandwidth=3e12.
//     The value is read as YAML, so lists and maps can be given in flow
//     style: --set 'devices.host.links=[{name: x, bandwidth_per_direction: 1e9}]'.
//
// # File format
//
// Config and device files are YAML. The only top-level key is devices (a
// --config file will later also hold other sections, such as sweep
// settings). devices maps a device name (lower-case letters, digits, '-' and
// '_', starting with a letter) to its description:
//
//	devices:
//	  my-gpu:                        # a new device: every field below is required
//	    description: "what it is"
//	    kind: gpu                    # gpu, ipu or cpu; fixes the level names
//	    memory_levels:               # map keyed by level name
//	      hbm:                       # gpu: hbm (memory), l2 (cache), smem (onchip)
//	        role: memory             # ipu: sram, streaming (memory), exchange (fabric, optional)
//	        tier: 2                  # cpu: dram (memory), llc (cache); tier 0 is closest to compute
//	        capacity_bytes: 80e9
//	        peak_bandwidth: 3.35e12       # bytes/s, datasheet
//	        achievable_bandwidth: 3.0e12  # bytes/s, streaming microbenchmark; <= peak
//	        granularity_bytes: 32         # smallest transfer
//	        latency_seconds: 375e-9
//	        transfer_overhead_seconds: 0  # optional: fixed cost per stage using the level
//	        dma: false                    # optional: a copy engine drives transfers (no Little's-law limit)
//	        kernel_bandwidth: {triton: 2.75e12}  # optional: achievable bytes/s of stages a kernel class runs
//	        kernel_loops:                 # optional: a kernel class's loop step (steps that wait on their loads)
//	          triton:
//	            rows: {seconds: 3.8e-7, seconds_per_byte: 5.8e-12}
//	            gather: {seconds: 5.3e-7, seconds_per_byte: 3.9e-12, seconds_per_element: 7.4e-11}
//	        source: "where the figures come from"
//	      l2: {...}
//	      smem: {...}
//	    compute:                     # list; unit vector|matrix|special, or a library
//	                                 # primitive topk|softmax|copy|attention-tile|matmul
//	      - {unit: matrix, dtype: fp16, ops_per_second: 989e12, source: "..."}
//	      - {unit: copy, kernel: scattered, dtype: fp32,   # pattern: scattered or empty (rows)
//	         ops_per_second: 268e9, floor_seconds: 4.6e-6, source: "..."}
//	      - unit: matmul             # a library's batched products (torch.bmm)
//	        kernel: pv               # form: qk (q·Kᵀ) or pv (P·V)
//	        query_rows: 4            # rows per product it was measured at
//	        head_dim: 128
//	        dtype: fp16
//	        ops_per_second: 5.9e12   # MACs/s at the largest grid point
//	        table: {rows: [8, 32], cols: [1024, 131072],      # products x positions
//	                seconds: [[3.8e-6, 1.7e-4], [6.3e-6, 4.4e-4]]}
//	        source: "..."
//	    overheads: {launch_seconds: 2.4e-6, sync_seconds: 0, source: "...",
//	                host_sync_seconds: 17e-6}  # optional: host clock + synchronize around a call
//	    concurrency: {parallel_units: 132, work_units_per_parallel_unit: 8,
//	                  inflight_bytes_per_work_unit: 1378, source: "..."}
//	    links:                       # optional list
//	      - {name: nvlink4, bandwidth_per_direction: 450e9, latency_seconds: 0, source: "..."}
//
// dtype is one of fp32, fp16, bf16, fp8, int8, fp64, tf32. A file that names
// an existing device overrides only the keys it gives; maps merge key by
// key, but a list (compute, links) replaces the whole list. Keys are
// case-insensitive. Numbers may be written as YAML numbers or as strings
// ("3e12"); integers must be whole.
//
// # Strictness
//
// Unknown keys, values of the wrong type and impossible values
// (hwmodel.Device.Validate) are errors. Each error names its source (the
// file, "environment" with the variable, "--set" with the key, or the
// embedded catalog) and the key. Environment variables can only override
// keys that some file defines; a BWSIM_DEVICES_* variable that matches no
// key is an error.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/bwsim/bwsim/hwmodel"
)

// LoadOptions says which files and overrides LoadDevices applies on top of
// the embedded catalog.
type LoadOptions struct {
	// ConfigFile is the --config file; "" for none.
	ConfigFile string
	// DeviceFiles are --device-file files, applied in order.
	DeviceFiles []string
	// HostFile is the calibrated host file. "" means $BWSIM_HOST_FILE, else
	// DefaultHostFile; those are skipped when missing, an explicit HostFile
	// is not.
	HostFile string
	// SkipHostFile ignores the calibrated host file (reproducible runs,
	// tests).
	SkipHostFile bool
	// Set holds --set overrides: dotted key → value (read as YAML).
	Set map[string]string
}

// HostFileEnv names the environment variable that overrides the host file
// path.
const HostFileEnv = "BWSIM_HOST_FILE"

// envPrefix is the prefix of environment overrides.
const envPrefix = "BWSIM"

const embeddedSource = "embedded catalog"

// deviceSections are the top-level keys of a device file (and of the host
// file); configSections those of a --config file.
var (
	deviceSections = []string{"devices"}
	configSections = []string{"devices", ModelsSection, SweepSection} // every section a --config file may have
)

// fileDoc is the decoded form of every file.
type fileDoc struct {
	Devices map[string]*hwmodel.Device `mapstructure:"devices"`
	// Other sections (sweep, ...) were checked against configSections when
	// read and are decoded by their own loaders.
	Other map[string]any `mapstructure:",remain"`
}

// DefaultHostFile returns $XDG_CONFIG_HOME/bwsim/host.yaml (per
// os.UserConfigDir).
func DefaultHostFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locating the host file: %w", err)
	}
	return filepath.Join(dir, "bwsim", "host.yaml"), nil
}

// HostFilePath resolves where the calibrated host file lives: explicit if
// not empty, else $BWSIM_HOST_FILE, else DefaultHostFile.
func HostFilePath(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv(HostFileEnv); p != "" {
		return p, nil
	}
	return DefaultHostFile()
}

// KeyError is a bad key or value, with the source it came from.
type KeyError struct {
	// Source is a file path, "environment (BWSIM_...)", "--set KEY" or
	// "embedded catalog" (several joined with " and " when a problem spans
	// sources, such as a missing field).
	Source string
	// Device is the device the key belongs to, if any.
	Device string
	// Key is dotted: relative to the device when Device is set, else from
	// the top of the file.
	Key string
	Msg string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	b.WriteString(": ")
	if e.Device != "" {
		fmt.Fprintf(&b, "device %q: ", e.Device)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// layer is one file merged on top of the catalog.
type layer struct {
	name     string
	data     []byte
	sections []string
}

// LoadDevices loads the embedded catalog, the host file, the user's files,
// environment and --set overrides (in that order), decodes them strictly and
// validates every device. See the package documentation.
func LoadDevices(opts LoadOptions) (*hwmodel.Catalog, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	prov := newProvenance()

	if err := v.ReadConfig(bytes.NewReader(hwmodel.CatalogYAML())); err != nil {
		return nil, fmt.Errorf("%s: %w", embeddedSource, err)
	}
	prov.addLayer(embeddedSource, v.AllKeys())

	layers, err := userLayers(opts)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		fv, err := parseLayer(l)
		if err != nil {
			return nil, err
		}
		if err := v.MergeConfigMap(fv.AllSettings()); err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		prov.addLayer(l.name, fv.AllKeys())
	}

	if err := applyEnv(v, prov); err != nil {
		return nil, err
	}
	if err := applySet(v, prov, opts.Set); err != nil {
		return nil, err
	}

	var doc fileDoc
	if err := v.UnmarshalExact(&doc, strictDecoding); err != nil {
		return nil, keyErrors(err, prov.sourceFor)
	}
	devs := make([]*hwmodel.Device, 0, len(doc.Devices))
	var errs []error
	for _, name := range sortedNames(doc.Devices) {
		d := doc.Devices[name]
		if d == nil {
			d = &hwmodel.Device{}
		}
		d.Name = name
		d.Origin = prov.sourceFor("devices." + name)
		if err := d.Validate(); err != nil {
			errs = append(errs, fieldErrors(err, name, prov.sourceFor)...)
			continue
		}
		devs = append(devs, d)
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return hwmodel.NewCatalog(devs)
}

// userLayers reads the host file, the config file and the device files.
func userLayers(opts LoadOptions) ([]layer, error) {
	var layers []layer
	if !opts.SkipHostFile {
		path, err := HostFilePath(opts.HostFile)
		if err == nil {
			data, rerr := os.ReadFile(path)
			switch {
			case rerr == nil:
				layers = append(layers, layer{path, data, deviceSections})
			case opts.HostFile != "" || !errors.Is(rerr, os.ErrNotExist):
				return nil, fmt.Errorf("host file: %w", rerr)
			}
		} else if opts.HostFile != "" {
			return nil, err
		}
	}
	read := func(path string, sections []string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		layers = append(layers, layer{path, data, sections})
		return nil
	}
	if opts.ConfigFile != "" {
		if err := read(opts.ConfigFile, configSections); err != nil {
			return nil, err
		}
	}
	for _, f := range opts.DeviceFiles {
		if err := read(f, deviceSections); err != nil {
			return nil, err
		}
	}
	return layers, nil
}

// parseLayer reads one file into its own viper and checks it on its own:
// YAML syntax, top-level keys, unknown keys and value types. Values (ranges,
// completeness) are checked after merging.
func parseLayer(l layer) (fv *viper.Viper, err error) {
	defer func() {
		// viper and the YAML decoder are not fuzzed against hostile input;
		// a panic there is still just a bad file.
		if r := recover(); r != nil {
			fv, err = nil, fmt.Errorf("%s: cannot read: %v", l.name, r)
		}
	}()
	fv = viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(l.data)); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", l.name, unwrapViper(err))
	}
	var errs []error
	for top := range fv.AllSettings() {
		if !contains(l.sections, top) {
			errs = append(errs, &KeyError{Source: l.name, Key: top,
				Msg: fmt.Sprintf("unknown top-level key (known: %s)", strings.Join(l.sections, ", "))})
		}
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	var doc fileDoc
	if err := fv.UnmarshalExact(&doc, strictDecoding); err != nil {
		return nil, keyErrors(err, func(string) string { return l.name })
	}
	return fv, nil
}

// unwrapViper drops viper's ConfigParseError wrapper text duplication.
func unwrapViper(err error) error {
	var pe viper.ConfigParseError
	if errors.As(err, &pe) {
		if u := pe.Unwrap(); u != nil {
			return u
		}
	}
	return err
}

// applyEnv turns on BWSIM_* overrides and records which keys they set. A
// BWSIM_DEVICES_* variable that matches no key is an error: viper would
// silently ignore it.
func applyEnv(v *viper.Viper, prov *provenance) error {
	replacer := strings.NewReplacer(".", "_", "-", "_")
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(replacer)
	v.AutomaticEnv()
	byEnv := map[string]string{}
	for _, k := range v.AllKeys() {
		byEnv[envPrefix+"_"+strings.ToUpper(replacer.Replace(k))] = k
	}
	var errs []error
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix+"_DEVICES_") {
			continue
		}
		key, ok := byEnv[name]
		if !ok {
			errs = append(errs, &KeyError{Source: "environment", Key: name,
				Msg: "matches no key of the loaded devices (variables can only override keys that a file defines)"})
			continue
		}
		if val == "" {
			continue // viper ignores empty variables
		}
		prov.set(key, "environment ("+name+")")
	}
	if len(errs) > 0 {
		return joinSorted(errs)
	}
	return nil
}

// applySet applies --set overrides, parents before children.
func applySet(v *viper.Viper, prov *provenance, set map[string]string) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, raw := range keys {
		key := strings.ToLower(strings.TrimSpace(raw))
		src := "--set " + key
		segs := strings.Split(key, ".")
		bad := false
		for _, s := range segs {
			if s == "" {
				bad = true
			}
		}
		if bad {
			errs = append(errs, &KeyError{Source: "--set", Key: raw, Msg: "not a dotted key such as devices.h100-sxm.memory_levels.hbm.achievable_bandwidth"})
			continue
		}
		if !contains(configSections, segs[0]) {
			errs = append(errs, &KeyError{Source: src, Key: segs[0],
				Msg: fmt.Sprintf("unknown top-level key (known: %s)", strings.Join(configSections, ", "))})
			continue
		}
		val, err := parseValue(set[raw])
		if err == nil && val == nil {
			err = errors.New("empty value")
		}
		if err != nil {
			errs = append(errs, &KeyError{Source: src, Msg: fmt.Sprintf("value %q: %v", set[raw], err)})
			continue
		}
		v.Set(key, val)
		prov.setTree(key, val, src)
	}
	if len(errs) > 0 {
		return joinSorted(errs)
	}
	return nil
}

// parseValue reads a --set value as a YAML value (number, string, flow list
// or map).
func parseValue(s string) (val any, err error) {
	defer func() {
		if r := recover(); r != nil {
			val, err = nil, fmt.Errorf("cannot read: %v", r)
		}
	}()
	if strings.ContainsAny(s, "\n\r") {
		return nil, errors.New("must be one line")
	}
	tv := viper.New()
	tv.SetConfigType("yaml")
	if err := tv.ReadConfig(strings.NewReader("v: " + s)); err != nil {
		return nil, unwrapViper(err)
	}
	return tv.Get("v"), nil
}

// strictDecoding turns off weak typing (no bool→number, number→string) and
// installs the number hook.
func strictDecoding(c *mapstructure.DecoderConfig) {
	c.WeaklyTypedInput = false
	c.DecodeHook = numberHook
}

// numberHook reads numbers given as strings (environment variables, quoted
// YAML) and refuses fractional or out-of-range integers.
func numberHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Float32, reflect.Float64:
		if s, ok := data.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("expected a number, got string %q", s)
			}
			return f, nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var f float64
		switch x := data.(type) {
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return i, nil
			}
			g, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, fmt.Errorf("expected an integer, got string %q", x)
			}
			f = g
		case float64:
			f = x
		case float32:
			f = float64(x)
		case uint64:
			if x > 1<<62 {
				return nil, fmt.Errorf("integer %d out of range", x)
			}
			return int64(x), nil
		default:
			return data, nil
		}
		if f != float64(int64(f)) || f > 1<<62 || f < -(1<<62) {
			return nil, fmt.Errorf("expected an integer, got %v", f)
		}
		return int64(f), nil
	}
	return data, nil
}

// keyErrors converts a mapstructure error tree into KeyErrors, attributing
// each key to a source.
func keyErrors(err error, sourceFor func(key string) string) error {
	var out []error
	eachLeaf(err, func(e error) {
		var de *mapstructure.DecodeError
		if !errors.As(e, &de) {
			out = append(out, &KeyError{Source: sourceFor(""), Msg: e.Error()})
			return
		}
		path := parsePath(de.Name())
		inner := de.Unwrap()
		if inner == nil {
			inner = de
		}
		if list, ok := strings.CutPrefix(inner.Error(), "has invalid keys: "); ok {
			known := strings.Join(knownKeys(path), ", ")
			for _, k := range strings.Split(list, ", ") {
				p := append(append([]pathSeg(nil), path...), pathSeg{name: k})
				out = append(out, newKeyError(p, sourceFor, fmt.Sprintf("unknown key (known: %s)", known)))
			}
			return
		}
		out = append(out, newKeyError(path, sourceFor, friendly(inner)))
	})
	return joinSorted(out)
}

// fieldErrors converts Validate's errors into KeyErrors with sources.
func fieldErrors(err error, device string, sourceFor func(string) string) []error {
	var out []error
	eachLeaf(err, func(e error) {
		var fe *hwmodel.FieldError
		if !errors.As(e, &fe) {
			out = append(out, &KeyError{Source: sourceFor("devices." + device), Device: device, Msg: e.Error()})
			return
		}
		full := "devices." + device
		if fe.Key != "" {
			full += "." + fe.Key
		}
		out = append(out, &KeyError{Source: sourceFor(stripIndices(full)), Device: device, Key: fe.Key, Msg: fe.Msg})
	})
	return out
}

func newKeyError(path []pathSeg, sourceFor func(string) string, msg string) *KeyError {
	ke := &KeyError{Source: sourceFor(stripIndices(renderPath(path))), Msg: msg}
	if len(path) >= 2 && path[0].name == "devices" && !path[1].index {
		ke.Device = path[1].name
		ke.Key = renderPath(path[2:])
	} else {
		ke.Key = renderPath(path)
	}
	return ke
}

// friendly rewords mapstructure's type errors.
func friendly(err error) string {
	var ut *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ut) {
		return fmt.Sprintf("expected %s, got %s", typeWord(ut.Expected.Type()), valueWord(ut.Value))
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("expected %s, got %s", typeWord(pe.Expected.Type()), valueWord(pe.Value))
	}
	msg := err.Error()
	if kind, ok := strings.CutPrefix(msg, "source data must be an array or slice, got "); ok {
		return "expected a list, got " + kind
	}
	return msg
}

func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a map"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

func valueWord(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a map"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return fmt.Sprintf("number %v", v)
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// pathSeg is one step of a mapstructure field name: a struct field or map
// key, or a list index.
type pathSeg struct {
	name  string
	index bool
}

// parsePath splits "devices[h100-sxm].compute[0].unit".
func parsePath(s string) []pathSeg {
	var out []pathSeg
	for len(s) > 0 {
		switch s[0] {
		case '.':
			s = s[1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				out = append(out, pathSeg{name: s[1:]})
				return out
			}
			name := s[1:end]
			_, err := strconv.Atoi(name)
			out = append(out, pathSeg{name: name, index: err == nil})
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			out = append(out, pathSeg{name: s[:end]})
			s = s[end:]
		}
	}
	return out
}

func renderPath(p []pathSeg) string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case s.index:
			fmt.Fprintf(&b, "[%s]", s.name)
		case i > 0:
			b.WriteString("." + s.name)
		default:
			b.WriteString(s.name)
		}
	}
	return b.String()
}

// stripIndices turns "devices.x.compute[0].unit" into the viper key that
// holds it, "devices.x.compute" (a list is one value to viper).
func stripIndices(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		return key[:i]
	}
	return key
}

// knownKeys lists the keys the decoded type accepts at path.
func knownKeys(path []pathSeg) []string {
	t := reflect.TypeOf(fileDoc{})
	for _, s := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByTag(t, s.name)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := tagName(t.Field(i)); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if tagName(t.Field(i)) == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return tag
}

// provenance remembers which source last set each viper key.
type provenance struct {
	order []string       // sources in the order they were applied
	leaf  map[string]int // key → index into order
}

func newProvenance() *provenance { return &provenance{leaf: map[string]int{}} }

func (p *provenance) index(src string) int {
	for i, s := range p.order {
		if s == src {
			return i
		}
	}
	p.order = append(p.order, src)
	return len(p.order) - 1
}

func (p *provenance) addLayer(src string, keys []string) {
	i := p.index(src)
	for _, k := range keys {
		p.leaf[k] = i
	}
}

func (p *provenance) set(key, src string) { p.leaf[key] = p.index(src) }

// setTree records key and, when val is a map, every key below it. (Viper
// merges a map given to Set key by key with the other sources.)
func (p *provenance) setTree(key string, val any, src string) {
	var rec func(k string, v any)
	rec = func(k string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			p.set(k, src) // the map replaces a scalar that was here
			for mk, mv := range m {
				rec(k+"."+strings.ToLower(mk), mv)
			}
			return
		}
		p.set(k, src)
	}
	rec(key, val)
}

// sourceFor names the source of key: the source that set it, or, for a key
// nobody set (a missing field), the sources of the keys around it.
func (p *provenance) sourceFor(key string) string {
	for k := key; ; {
		if i, ok := p.leaf[k]; ok {
			return p.order[i]
		}
		if srcs := p.under(k); len(srcs) > 0 {
			return strings.Join(srcs, " and ")
		}
		j := strings.LastIndexByte(k, '.')
		if j < 0 {
			break
		}
		k = k[:j]
	}
	if len(p.order) > 0 {
		return p.order[len(p.order)-1]
	}
	return embeddedSource
}

// under lists, in the order applied, the sources of the keys below prefix.
func (p *provenance) under(prefix string) []string {
	if prefix == "" {
		return nil
	}
	seen := map[int]bool{}
	for k, i := range p.leaf {
		if strings.HasPrefix(k, prefix+".") {
			seen[i] = true
		}
	}
	var out []string
	for i, s := range p.order {
		if seen[i] {
			out = append(out, s)
		}
	}
	return out
}

func joinSorted(errs []error) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func sortedNames(m map[string]*hwmodel.Device) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// eachLeaf calls f for every error of err's tree that joins no others
// (errors.Join and mapstructure nest them).
func eachLeaf(err error, f func(error)) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, x := range j.Unwrap() {
			eachLeaf(x, f)
		}
		return
	}
	f(err)
}
