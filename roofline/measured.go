package roofline

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

// A measurement file holds timings measured on real devices, one kernel call
// per row, for comparison with predictions (bwsim validate). It is CSV with a
// header row naming at least MeasurementColumns, in any order:
//
//	device     catalog name of the device measured (h100-sxm, a100-40gb, ...)
//	method     dense or sparq
//	impl       fused or unfused: how the measured kernel was structured
//	batch, heads, kv_heads, head_dim, seq   the decode step's shape
//	r, k, k_layout   SparQ's parameters (k_layout twice or once); empty for dense
//	dtype      fp16, bf16 or fp32
//	seconds    the median time of one call (not per query)
//	placement  optional ROLE=LEVEL overrides, e.g. kv-cache=streaming; several
//	           separated by ';' (or ',' inside a quoted field)
//
// Optional columns describe how the measured implementation ran, so that the
// prediction models the same structure:
//
//	variant       the implementation's name (sdpa-flash, triton+graph, ...)
//	dispatch      graph (replayed from a CUDA graph: device time only),
//	              eager (each kernel issued by the host as the call runs) or
//	              host-sync (timed by the host clock around each call, which
//	              ends in a synchronize: the device's host_sync_seconds adds)
//	host_seconds  eager only: the host's time to issue one call, measured
//	              apart from the device's (calls issued back to back after a
//	              synchronize, the GPU idle)
//	split         positions per work unit of the stages that scan the
//	              sequence (a split-K grid); empty: one per (sequence, KV head)
//	materialize   true when gathers write their result to device memory for
//	              the next kernel (torch.gather), false or empty when the
//	              consuming kernel gathers directly
//	compiled      true when a materialized pipeline ran under torch.compile:
//	              its gathers and element-wise steps are generated kernels
//	              that stream at memory rate (needs materialize)
//	fused_exact   true when a selecting method's exact step (row gathers,
//	              softmax, weighted sum, blend) ran as one kernel
//	upcast        true when unfused dense attention ran on fp32 copies of
//	              q, K and V (PyTorch's math backend with 16-bit inputs)
//	rank_pass     true when unfused SparQ's top-k ranked an fp32 tensor its
//	              own kernel wrote (a group sum or cast of the logits)
//	serial_combine  true when a fused dense kernel's combine walked its
//	              splits one dependent load at a time (FlashAttention-2)
//	tile_keys     key positions of the K and V tiles a fused dense kernel
//	              loaded one after another, each issued when the last had
//	              landed (128: FlashAttention-2's split-KV kernel, cuDNN's):
//	              kernels.Spec.TileKeys
//	tiles_in_flight  with tile_keys, the tiles each thread block kept in
//	              flight: 1 (empty) issuing each when the last had landed,
//	              2 issuing the next before waiting (cuDNN):
//	              kernels.Spec.TilesInFlight
//	block_instructions  with tile_keys, the instructions each warp ran
//	              before its first tile wait and after its last tile
//	              (Nsight Compute's source page): kernels.Spec.BlockInstructions
//	param_lines   with tile_keys, the 64-byte lines of kernel parameters
//	              each block read before its first wait:
//	              kernels.Spec.ParamLines
//	query_tile    KERNEL:ROWS when fused dense attention ran as a tiled
//	              kernel that computes ROWS query rows per thread block
//	              (flash2:128, mem-efficient:64): kernels.Spec.Tile
//	kernel        the class of code that ran the stages (triton: unfused
//	              SparQ's gathers as Triton kernels feeding tl.dot; cublas:
//	              unfused dense attention's products as cuBLAS batched
//	              matmuls): kernels.Spec.Kernel
//
// Other extra columns are allowed and ignored. Lines
// starting with '#' are comments: the machine's facts and the command that
// produced the file belong there. Blank lines are skipped; a field may not
// span lines.

// Dispatch modes of the dispatch column.
const (
	DispatchGraph    = "graph"
	DispatchEager    = "eager"
	DispatchHostSync = "host-sync"
)

// MeasurementColumns are the columns every measurement file has.
var MeasurementColumns = []string{"device", "method", "impl", "batch", "heads", "kv_heads", "head_dim", "seq",
	"r", "k", "k_layout", "dtype", "seconds", "placement"}

// MaxMeasurementFileBytes bounds what ParseMeasurements reads.
const MaxMeasurementFileBytes = 64 << 20

// maxDim bounds every shape field; the kernels' own limits are checked when a
// row is simulated.
const maxDim = 1 << 30

// Measurement is one measured kernel call.
type Measurement struct {
	Device  string `json:"device"`
	Method  string `json:"method"`
	Impl    string `json:"impl"`
	Batch   int    `json:"batch"`
	Heads   int    `json:"heads"`
	KVHeads int    `json:"kv_heads"`
	HeadDim int    `json:"head_dim"`
	Seq     int    `json:"seq"`
	// R, K and KLayout are SparQ's; zero and empty for dense.
	R       int    `json:"r,omitempty"`
	K       int    `json:"k,omitempty"`
	KLayout string `json:"k_layout,omitempty"`
	DType   string `json:"dtype"`
	// Seconds is the measured time of one call.
	Seconds float64 `json:"seconds"`
	// Placement is the placement column as written ("" for none);
	// PlacementMap is it parsed.
	Placement    string                 `json:"placement,omitempty"`
	PlacementMap map[traces.Role]string `json:"-"`
	// Variant is the optional variant column.
	Variant string `json:"variant,omitempty"`
	// Dispatch is DispatchGraph, DispatchEager or "" (not stated).
	Dispatch string `json:"dispatch,omitempty"`
	// HostSeconds is the host's time to issue one eager call (0: unknown).
	HostSeconds float64 `json:"host_seconds,omitempty"`
	// Split is the positions per work unit of the sequence scans (0: one
	// work unit per (sequence, KV head) pair).
	Split int `json:"split,omitempty"`
	// Materialize is true when the measured gathers went through device
	// memory.
	Materialize bool `json:"materialize,omitempty"`
	// Compiled is true when the materialized pipeline ran under
	// torch.compile (generated gather and element-wise kernels).
	Compiled bool `json:"compiled,omitempty"`
	// FusedExact is true when the exact step ran as one kernel.
	FusedExact bool `json:"fused_exact,omitempty"`
	// Upcast is true when the measured dense kernel computed on fp32
	// copies of its inputs.
	Upcast bool `json:"upcast,omitempty"`
	// RankPass is true when SparQ's ranking ran as its own kernel.
	RankPass bool `json:"rank_pass,omitempty"`
	// SerialCombine is true when the combine walked the splits serially.
	SerialCombine bool `json:"serial_combine,omitempty"`
	// TileKeys is the key positions of the tiles a fused dense kernel
	// loaded one after another (0: not stated).
	TileKeys int `json:"tile_keys,omitempty"`
	// TilesInFlight is how many of those tiles each thread block kept in
	// flight (0: not stated, one at a time).
	TilesInFlight int `json:"tiles_in_flight,omitempty"`
	// BlockInstructions and ParamLines are the code each thread block ran
	// around its tile loop (0: not stated).
	BlockInstructions int `json:"block_instructions,omitempty"`
	ParamLines        int `json:"param_lines,omitempty"`
	// QueryTile is the tiled kernel and its query rows (zero: none stated).
	QueryTile kernels.QueryTile `json:"query_tile,omitzero"`
	// Kernel is the kernel class that ran the gathers ("": not stated).
	Kernel string `json:"kernel,omitempty"`
	// Source is "file:line".
	Source string `json:"source"`
}

// MeasurementFile is a parsed measurement file.
type MeasurementFile struct {
	Name string `json:"name"`
	// Comments are the comment lines, without the leading '#' and space.
	Comments []string      `json:"comments"`
	Rows     []Measurement `json:"-"`
}

// ParseMeasurements reads a measurement file; name is used in errors and in
// each row's Source. Every problem found is reported, each with its line.
func ParseMeasurements(r io.Reader, name string) (*MeasurementFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMeasurementFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxMeasurementFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxMeasurementFileBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	f := &MeasurementFile{Name: name}
	for _, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimRight(line, "\r"); strings.HasPrefix(t, "#") {
			f.Comments = append(f.Comments, strings.TrimSpace(strings.TrimPrefix(t, "#")))
		}
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: no header row (want %s)", name, strings.Join(MeasurementColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	var errs []error
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := col[h]; dup {
			errs = append(errs, fmt.Errorf("%s: header: column %q appears twice", name, h))
		}
		col[h] = i
	}
	var missing []string
	for _, c := range MeasurementColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%s: header: missing column(s) %s (want %s)", name, strings.Join(missing, ", "), strings.Join(MeasurementColumns, ",")))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A syntax error (a stray quote): report it and stop, the
			// reader cannot tell where the next record starts.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = fmt.Errorf("%s:%d: %w", name, pe.Line, pe.Err)
			} else {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errs = append(errs, err)
			break
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			errs = append(errs, fmt.Errorf("%s:%d: %d fields, the header has %d", name, line, len(rec), len(header)))
			continue
		}
		m, err := parseRow(rec, col)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, err))
			if len(errs) >= 20 {
				errs = append(errs, fmt.Errorf("%s: too many errors", name))
				break
			}
			continue
		}
		m.Source = fmt.Sprintf("%s:%d", name, line)
		f.Rows = append(f.Rows, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(f.Rows) == 0 {
		return nil, fmt.Errorf("%s: no measurements after the header", name)
	}
	return f, nil
}

func parseRow(rec []string, col map[string]int) (Measurement, error) {
	get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
	var m Measurement
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	m.Device = get("device")
	if !hwmodel.ValidDeviceName(m.Device) {
		bad("device %q: not a device name (lower-case letters, digits, '-' and '_'; see bwsim devices)", m.Device)
	}
	m.Method = get("method")
	switch m.Method {
	case "dense", "sparq":
	default:
		bad("method %q: want dense or sparq", m.Method)
	}
	m.Impl = get("impl")
	switch m.Impl {
	case "fused", "unfused":
	default:
		bad("impl %q: want fused or unfused", m.Impl)
	}
	count := func(c string, dst *int) {
		s := get(c)
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad("%s %q: not a whole number", c, s)
		case n <= 0:
			bad("%s %d: must be positive", c, n)
		case n > maxDim:
			bad("%s %d: larger than %d", c, n, maxDim)
		default:
			*dst = n
		}
	}
	count("batch", &m.Batch)
	count("heads", &m.Heads)
	count("kv_heads", &m.KVHeads)
	count("head_dim", &m.HeadDim)
	count("seq", &m.Seq)
	if m.Heads > 0 && m.KVHeads > 0 && m.Heads%m.KVHeads != 0 {
		bad("heads %d is not a multiple of kv_heads %d", m.Heads, m.KVHeads)
	}
	m.KLayout = get("k_layout")
	switch m.Method {
	case "sparq":
		count("r", &m.R)
		count("k", &m.K)
		switch m.KLayout {
		case "twice", "once":
		default:
			bad("k_layout %q: want twice or once for sparq", m.KLayout)
		}
	case "dense":
		for _, c := range []string{"r", "k", "k_layout"} {
			if get(c) != "" {
				bad("%s %q given for dense: leave it empty", c, get(c))
			}
		}
	}
	m.DType = get("dtype")
	switch m.DType {
	case "fp16", "bf16", "fp32":
	default:
		bad("dtype %q: want fp16, bf16 or fp32", m.DType)
	}
	sec := get("seconds")
	v, err := strconv.ParseFloat(sec, 64)
	switch {
	case err != nil:
		bad("seconds %q: not a number", sec)
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		bad("seconds %q: must be positive and finite", sec)
	default:
		m.Seconds = v
	}
	m.Placement = get("placement")
	if m.Placement != "" {
		pm, err := ParsePlacement([]string{strings.ReplaceAll(m.Placement, ";", ",")})
		if err != nil {
			bad("%v", err)
		}
		m.PlacementMap = pm
	}
	opt := func(c string) string {
		if i, ok := col[c]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	m.Variant = opt("variant")
	m.Dispatch = opt("dispatch")
	switch m.Dispatch {
	case "", DispatchGraph, DispatchEager, DispatchHostSync:
	default:
		bad("dispatch %q: want graph, eager or host-sync (or empty)", m.Dispatch)
	}
	if s := opt("host_seconds"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil:
			bad("host_seconds %q: not a number", s)
		case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
			bad("host_seconds %q: must be positive and finite", s)
		case m.Dispatch != DispatchEager:
			bad("host_seconds %q given for dispatch %q: only eager calls have a host time", s, m.Dispatch)
		default:
			m.HostSeconds = v
		}
	}
	for _, f := range []struct {
		col string
		dst *int
	}{{"split", &m.Split}, {"tile_keys", &m.TileKeys}, {"tiles_in_flight", &m.TilesInFlight},
		{"block_instructions", &m.BlockInstructions}, {"param_lines", &m.ParamLines}} {
		s := opt(f.col)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad("%s %q: not a whole number", f.col, s)
		case n <= 0 || n > maxDim:
			bad("%s %d: must be between 1 and %d", f.col, n, maxDim)
		default:
			*f.dst = n
		}
	}
	// Which kernels can materialize or upcast is the kernels' rule
	// (Spec.Validate), checked when the row is simulated.
	for _, f := range []struct {
		col string
		dst *bool
	}{{"materialize", &m.Materialize}, {"compiled", &m.Compiled}, {"fused_exact", &m.FusedExact}, {"upcast", &m.Upcast},
		{"serial_combine", &m.SerialCombine}, {"rank_pass", &m.RankPass}} {
		switch s := opt(f.col); s {
		case "", "false", "0":
		case "true", "1":
			*f.dst = true
		default:
			bad("%s %q: want true or false (or empty)", f.col, s)
		}
	}
	if t, err := kernels.ParseQueryTile(opt("query_tile")); err != nil {
		bad("%v", err)
	} else {
		m.QueryTile = t
	}
	// Which kernel classes exist and what they apply to is the kernels'
	// rule, checked when the row is simulated.
	m.Kernel = opt("kernel")
	return m, errors.Join(errs...)
}

// WriteMeasurements writes rows as a measurement file with the given comment
// lines, the columns MeasurementColumns plus the optional ones
// (OptionalMeasurementColumns).
func WriteMeasurements(w io.Writer, comments []string, rows []Measurement) error {
	for _, c := range comments {
		if strings.ContainsAny(c, "\r\n") {
			return fmt.Errorf("comment %q spans lines", c)
		}
		if _, err := fmt.Fprintf(w, "# %s\n", c); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, MeasurementColumns...), OptionalMeasurementColumns...)); err != nil {
		return err
	}
	opt := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	for _, m := range rows {
		rec := []string{m.Device, m.Method, m.Impl, strconv.Itoa(m.Batch), strconv.Itoa(m.Heads), strconv.Itoa(m.KVHeads),
			strconv.Itoa(m.HeadDim), strconv.Itoa(m.Seq), opt(m.R), opt(m.K), m.KLayout, m.DType,
			strconv.FormatFloat(m.Seconds, 'g', -1, 64), m.Placement, m.Variant, m.Dispatch, optSeconds(m.HostSeconds),
			opt(m.Split), optBool(m.Materialize), optBool(m.Upcast), optBool(m.Compiled), optBool(m.FusedExact),
			m.QueryTile.String(), optBool(m.SerialCombine), optBool(m.RankPass), m.Kernel, opt(m.TileKeys), opt(m.TilesInFlight),
			opt(m.BlockInstructions), opt(m.ParamLines)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// OptionalMeasurementColumns are the optional columns WriteMeasurements
// writes, in order.
var OptionalMeasurementColumns = []string{"variant", "dispatch", "host_seconds", "split", "materialize", "upcast", "compiled", "fused_exact", "query_tile", "serial_combine", "rank_pass", "kernel", "tile_keys", "tiles_in_flight", "block_instructions", "param_lines"}

func optSeconds(s float64) string {
	if s == 0 {
		return ""
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

func optBool(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// ValidationPoint is one measured row with its prediction.
type ValidationPoint struct {
	Measurement
	PredictedSeconds float64 `json:"predicted_seconds"`
	IdealSeconds     float64 `json:"ideal_seconds"`
	// DeviceSeconds is the predicted device time; HostBound says the row's
	// host time (eager dispatch) exceeded it and set PredictedSeconds.
	DeviceSeconds float64 `json:"device_seconds"`
	HostBound     bool    `json:"host_bound,omitempty"`
	// RelError is (predicted − measured) / measured.
	RelError float64 `json:"rel_error"`
	// Stages are the predicted stages, for finding what a miss comes from.
	Stages []StageTime `json:"stages"`
}

// StageTime is one predicted stage's time and bound.
type StageTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Bound   Bound   `json:"bound"`
}

// NewValidationPoint pairs a measurement with its prediction.
func NewValidationPoint(m Measurement, p *Prediction) ValidationPoint {
	v := ValidationPoint{Measurement: m, PredictedSeconds: p.Seconds, IdealSeconds: p.IdealSeconds,
		DeviceSeconds: p.DeviceSeconds, HostBound: p.HostBound,
		RelError: RelativeError(p.Seconds, m.Seconds)}
	for _, s := range p.Stages {
		v.Stages = append(v.Stages, StageTime{Name: s.Name, Seconds: s.Seconds, Bound: s.Bound})
	}
	return v
}

// RelativeError is (predicted − measured) / measured.
func RelativeError(predicted, measured float64) float64 {
	return (predicted - measured) / measured
}

// ErrorSummary is the error over a set of points.
type ErrorSummary struct {
	// Device, Method, Impl, Variant and KLayout name the group ("" where a
	// summary spans several).
	Device  string `json:"device,omitempty"`
	Method  string `json:"method,omitempty"`
	Impl    string `json:"impl,omitempty"`
	Variant string `json:"variant,omitempty"`
	KLayout string `json:"k_layout,omitempty"`
	Points  int    `json:"points"`
	// MedianAbsError and MaxAbsError are of |RelError|; MedianError keeps
	// the sign (positive: predictions too slow).
	MedianAbsError float64 `json:"median_abs_error"`
	MaxAbsError    float64 `json:"max_abs_error"`
	MedianError    float64 `json:"median_error"`
	// Worst is the Source of the point with the largest |error|.
	Worst string `json:"worst,omitempty"`
}

// Summarize computes the error summary of points.
func Summarize(points []ValidationPoint) ErrorSummary {
	s := ErrorSummary{Points: len(points)}
	if len(points) == 0 {
		return s
	}
	abs := make([]float64, len(points))
	signed := make([]float64, len(points))
	for i, p := range points {
		abs[i], signed[i] = math.Abs(p.RelError), p.RelError
		if abs[i] > s.MaxAbsError || i == 0 {
			s.MaxAbsError, s.Worst = abs[i], p.Source
		}
	}
	s.MedianAbsError = median(abs)
	s.MedianError = median(signed)
	return s
}

// SummarizeBy groups points by device and method (and, with variants, by
// impl, variant and K layout too) and summarizes each group, in sorted order.
func SummarizeBy(points []ValidationPoint, variants bool) []ErrorSummary {
	type key struct{ device, method, impl, variant, layout string }
	groups := map[key][]ValidationPoint{}
	for _, p := range points {
		k := key{device: p.Device, method: p.Method}
		if variants {
			k.impl, k.variant, k.layout = p.Impl, p.Variant, p.KLayout
		}
		groups[k] = append(groups[k], p)
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.device != b.device {
			return a.device < b.device
		}
		if a.method != b.method {
			return a.method < b.method
		}
		if a.impl != b.impl {
			return a.impl < b.impl
		}
		if a.variant != b.variant {
			return a.variant < b.variant
		}
		return a.layout < b.layout
	})
	out := make([]ErrorSummary, 0, len(keys))
	for _, k := range keys {
		s := Summarize(groups[k])
		s.Device, s.Method, s.Impl, s.Variant, s.KLayout = k.device, k.method, k.impl, k.variant, k.layout
		out = append(out, s)
	}
	return out
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
