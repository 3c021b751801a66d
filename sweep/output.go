package sweep

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// File names a sweep writes in its output directory.
const (
	CSVName   = "results.csv"
	JSONName  = "results.json"
	BenchName = "results.bench"
)

// CSVHeader is the column order of WriteCSV; it only ever grows at the end.
var CSVHeader = []string{
	"method", "label", "r", "k", "k_layout", "impl", "realloc",
	"device", "batch", "seq", "heads", "kv_heads", "head_dim", "dtype", "workload", "seed", "append_kv",
	"seconds", "ideal_seconds", "speedup", "ideal_speedup",
	"bytes", "moved_bytes", "kv_cache_bytes", "kv_level", "bound", "fits",
	"rel_l2_error", "alpha_mean", "mass_covered", "topk_recall",
	"scale", "sampled_pairs", "total_pairs", "note",
	"page", "label_bits", "sinks", "steps",
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// optional writes 0 (no baseline) as an empty cell.
func optional(x float64) string {
	if x == 0 {
		return ""
	}
	return ftoa(x)
}

// optionalInt writes 0 (a parameter the method does not have) as an empty
// cell.
func optionalInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// WriteCSV writes one line per row, stages left out (they are in the
// JSON).
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{
			r.Method, r.Label, strconv.Itoa(r.R), strconv.Itoa(r.K), r.KLayout, r.Impl, strconv.FormatBool(r.Realloc),
			r.Device, strconv.Itoa(r.Batch), strconv.Itoa(r.Seq), strconv.Itoa(r.Heads), strconv.Itoa(r.KVHeads), strconv.Itoa(r.HeadDim),
			r.DType, r.Workload, strconv.FormatUint(r.Seed, 10), strconv.FormatBool(r.AppendKV),
			ftoa(r.Seconds), ftoa(r.IdealSeconds), optional(r.Speedup), optional(r.IdealSpeedup),
			strconv.FormatInt(r.Bytes, 10), strconv.FormatInt(r.MovedBytes, 10), strconv.FormatInt(r.KVCacheBytes, 10),
			r.KVLevel, r.Bound, strconv.FormatBool(r.Fits),
			ftoa(r.RelL2Error), ftoa(r.AlphaMean), ftoa(r.MassCovered), ftoa(r.TopKRecall),
			ftoa(r.Scale), strconv.FormatInt(r.SampledPairs, 10), strconv.FormatInt(r.TotalPairs, 10), r.Note,
			optionalInt(r.Page), optionalInt(r.LabelBits), optionalInt(r.Sinks), strconv.Itoa(max(r.Steps, 1)),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the results as one indented JSON document.
func WriteJSON(w io.Writer, res *Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// ReadJSON reads a document WriteJSON wrote.
func ReadJSON(r io.Reader) (*Results, error) {
	var res Results
	dec := json.NewDecoder(r)
	if err := dec.Decode(&res); err != nil {
		return nil, err
	}
	if res.Schema != Schema {
		return nil, fmt.Errorf("schema %q, want %q", res.Schema, Schema)
	}
	return &res, nil
}

// ReadFile reads a results.json file.
func ReadFile(path string) (*Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := ReadJSON(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// WriteBench writes the rows in Go benchmark format, one line per row,
// so that benchstat can compare methods or devices:
//
//	BenchmarkDecode/method=sparq-r32-k128/device=h100-sxm/dtype=fp16/batch=64/seq=4096 1 16200 ns/op 2580 ideal-ns/op ...
//
// ns/op is the calibrated time of one decode step, ideal-ns/op the
// requested bytes at peak bandwidth, B/op the bytes the memory levels move
// and requested-B/op the bytes the kernel asks for. Settings shared by every
// row are configuration lines ("heads: 32").
//
// For example: benchstat -col /method results.bench.
func WriteBench(w io.Writer, res *Results) error {
	var b bytes.Buffer
	g := res.Grid
	kv := g.KVHeads
	if kv == 0 {
		kv = g.Heads
	}
	fmt.Fprintf(&b, "bwsim: sweep\nschema: %s\nheads: %d\nkv-heads: %d\nhead-dim: %d\nworkload: %s\nseed: %d\n",
		Schema, g.Heads, kv, g.HeadDim, g.Workload, g.Seed)
	if g.Steps > 1 {
		fmt.Fprintf(&b, "steps: %d\n", g.Steps)
	}
	if res.Shard != "" {
		fmt.Fprintf(&b, "shard: %s\n", res.Shard)
	}
	slugs := map[string]string{}
	for _, v := range g.Variants() {
		slugs[v.Label] = v.Spec.Slug()
	}
	for _, r := range res.Rows {
		slug, ok := slugs[r.Label]
		if !ok {
			slug = strings.NewReplacer(":", "-", "=", "", "/", "of").Replace(r.Label)
		}
		fmt.Fprintf(&b, "BenchmarkDecode/method=%s/device=%s/dtype=%s/batch=%d/seq=%d 1 %s ns/op %s ideal-ns/op %d B/op %d requested-B/op\n",
			slug, r.Device, r.DType, r.Batch, r.Seq, benchFloat(r.Seconds*1e9), benchFloat(r.IdealSeconds*1e9), r.MovedBytes, r.Bytes)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// benchFloat prints a value with six significant digits, never in
// exponent form (benchstat reads either, people read this better).
func benchFloat(x float64) string {
	s := strconv.FormatFloat(x, 'g', 6, 64)
	if strings.ContainsAny(s, "e") {
		f, _ := strconv.ParseFloat(s, 64)
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}
