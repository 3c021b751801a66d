package sweep

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

// DefaultTradeoffMethods are the families the trade-off view runs by
// default: each method over its parameter range, at budgets around the
// SparQ paper's (k = 128 of a few thousand positions; r = 8 to 64 of 128
// components), and dense as the reference.
var DefaultTradeoffMethods = []string{
	"dense",
	"sparq:r=8..64:k=128",
	"sparq:ratio=1/2..1/16",
	"topk:k=32..512",
	"flexgen:k=32..512",
	"h2o:k=128..1024",
	"window:k=128..1024",
	"quest:k=128..1024",
	"loki:r=8..64:k=128",
	"doublesparse:r=8..32:k=128:label-bits=4",
	"doublesparse:r=8..32:k=128:label-bits=16",
}

// File names of the trade-off view's data.
const (
	TradeoffCSVName  = "tradeoff.csv"
	TradeoffJSONName = "tradeoff.json"
	// TradeoffSchema names the version of tradeoff.json.
	TradeoffSchema = "bwsim.tradeoff/v1"
)

// TradeoffPoint is one method at one shape in the trade-off view: what it
// reads, how wrong its output is and how fast it is predicted to be on the
// view's device.
type TradeoffPoint struct {
	// Family is the line the point belongs to (Variant.Family); Label the
	// method as in the other outputs.
	Family string `json:"family"`
	Label  string `json:"label"`
	Method string `json:"method"`
	// R and K are the resolved proxy size and token budget; Page,
	// LabelBits and Sinks as in Row.
	R         int    `json:"r"`
	K         int    `json:"k"`
	Page      int    `json:"page,omitempty"`
	LabelBits int    `json:"label_bits,omitempty"`
	Sinks     int    `json:"sinks,omitempty"`
	Impl      string `json:"impl"`
	KLayout   string `json:"k_layout,omitempty"`

	DType string `json:"dtype"`
	Batch int    `json:"batch"`
	Seq   int    `json:"seq"`
	Steps int    `json:"steps"`

	// KVReadBytes is what the step reads of the KV cache (every tensor of
	// role kv-cache: K, V and what a method keeps beside them, such as
	// SparQ's Kᵀ, Quest's page bounds, Double Sparsity's labels); the
	// requested bytes of the full shape, device-independent.
	KVReadBytes      int64 `json:"kv_read_bytes"`
	DenseKVReadBytes int64 `json:"dense_kv_read_bytes"`
	// TransferRatio is KVReadBytes over dense's: the fraction of the KV
	// cache the method reads. BytesRatio is the same for every byte the
	// step requests (reads and writes of every tensor).
	TransferRatio float64 `json:"transfer_ratio"`
	BytesRatio    float64 `json:"bytes_ratio"`

	// Fidelity against dense on the same data (Row).
	RelL2Error  float64 `json:"rel_l2_error"`
	MassCovered float64 `json:"mass_covered"`
	TopKRecall  float64 `json:"topk_recall"`
	AlphaMean   float64 `json:"alpha_mean"`

	// Device, Seconds, Speedup, IdealSpeedup and Fits are the row's on the
	// view's device.
	Device       string  `json:"device"`
	Seconds      float64 `json:"seconds"`
	Speedup      float64 `json:"speedup"`
	IdealSpeedup float64 `json:"ideal_speedup"`
	Fits         bool    `json:"fits"`

	// FrontTransfer marks the Pareto front of its shape in (lower error,
	// lower transfer ratio): no other point is at least as good in both
	// and better in one. FrontSpeedup is the front in (lower error, higher
	// speed-up). MassFrontTransfer and MassFrontSpeedup are the fronts
	// with higher mass covered in place of lower error. Dense (no error,
	// all bytes, 1×) takes part: a method slower than dense is never on
	// the speed-up front.
	FrontTransfer     bool `json:"front_transfer"`
	FrontSpeedup      bool `json:"front_speedup"`
	MassFrontTransfer bool `json:"mass_front_transfer"`
	MassFrontSpeedup  bool `json:"mass_front_speedup"`
}

// Tradeoff is the trade-off view of a sweep: one point per method and
// shape, on one device.
type Tradeoff struct {
	Schema string `json:"schema"`
	Device string `json:"device"`
	// Families lists the lines in order.
	Families []string        `json:"families"`
	Points   []TradeoffPoint `json:"points"`
}

// BuildTradeoff builds the trade-off view of res on device ("" means the
// grid's trade-off device, else the first device). Rows without a dense
// row of the same shape are left out; it is an error when none has one.
func BuildTradeoff(res *Results, device string) (*Tradeoff, error) {
	if device == "" {
		if t := res.Grid.Tradeoff; t != nil {
			device = t.Device
		} else if len(res.Devices) > 0 {
			device = res.Devices[0].Name
		}
	}
	if _, ok := res.Device(device); !ok {
		return nil, fmt.Errorf("trade-off: no results on device %q", device)
	}
	t := &Tradeoff{Schema: TradeoffSchema, Device: device}
	family := map[string]string{}
	seenFam := map[string]bool{}
	for _, v := range res.Grid.Variants() {
		family[v.Label] = v.Family
		if !seenFam[v.Family] {
			seenFam[v.Family] = true
			t.Families = append(t.Families, v.Family)
		}
	}
	kvRead := map[string]int64{}
	for _, tr := range res.Traffic {
		var n int64
		for _, s := range tr.Stages {
			for _, x := range s.Tensors {
				if x.Role == string(traces.RoleKVCache) {
					n += x.ReadBytes
				}
			}
		}
		kvRead[tr.Key] = n
	}
	// Dense rows by shape: the one with the same impl when there is one.
	type base struct{ first, byImpl map[string]*Row }
	dense := map[string]*base{}
	var rows []*Row
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Device != device {
			continue
		}
		rows = append(rows, r)
		if r.Method != kernels.MethodDense {
			continue
		}
		g := groupOf(*r)
		b := dense[g]
		if b == nil {
			b = &base{first: map[string]*Row{"": r}, byImpl: map[string]*Row{}}
			dense[g] = b
		}
		if _, ok := b.byImpl[r.Impl]; !ok {
			b.byImpl[r.Impl] = r
		}
	}
	for _, r := range rows {
		b := dense[groupOf(*r)]
		if b == nil {
			continue
		}
		d := b.byImpl[r.Impl]
		if d == nil {
			d = b.first[""]
		}
		fam, ok := family[r.Label]
		if !ok {
			fam = r.Label
		}
		p := TradeoffPoint{
			Family: fam, Label: r.Label, Method: r.Method,
			R: r.R, K: r.K, Page: r.Page, LabelBits: r.LabelBits, Sinks: r.Sinks, Impl: r.Impl, KLayout: r.KLayout,
			DType: r.DType, Batch: r.Batch, Seq: r.Seq, Steps: max(r.Steps, 1),
			KVReadBytes: kvRead[r.Key], DenseKVReadBytes: kvRead[d.Key],
			RelL2Error: r.RelL2Error, MassCovered: r.MassCovered, TopKRecall: r.TopKRecall, AlphaMean: r.AlphaMean,
			Device: r.Device, Seconds: r.Seconds, Speedup: r.Speedup, IdealSpeedup: r.IdealSpeedup, Fits: r.Fits,
		}
		if p.DenseKVReadBytes > 0 {
			p.TransferRatio = float64(p.KVReadBytes) / float64(p.DenseKVReadBytes)
		}
		if d.Bytes > 0 {
			p.BytesRatio = float64(r.Bytes) / float64(d.Bytes)
		}
		t.Points = append(t.Points, p)
	}
	if len(t.Points) == 0 {
		return nil, fmt.Errorf("trade-off: no dense rows on %s to compare with (add dense to the methods)", device)
	}
	markFronts(t.Points)
	return t, nil
}

// markFronts sets the front flags of each shape's points.
func markFronts(pts []TradeoffPoint) {
	byShape := map[string][]int{}
	var order []string
	for i, p := range pts {
		k := fmt.Sprintf("%s|%d|%d|%d", p.DType, p.Batch, p.Seq, p.Steps)
		if _, ok := byShape[k]; !ok {
			order = append(order, k)
		}
		byShape[k] = append(byShape[k], i)
	}
	for _, k := range order {
		idx := byShape[k]
		n := len(idx)
		transfer, speed, errs, mass := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for j, i := range idx {
			p := pts[i]
			transfer[j] = positiveOrNaN(p.TransferRatio)
			speed[j] = -positiveOrNaN(p.Speedup)
			errs[j] = p.RelL2Error
			mass[j] = -p.MassCovered
		}
		ft, fs := ParetoFront(transfer, errs), ParetoFront(speed, errs)
		mt, ms := ParetoFront(transfer, mass), ParetoFront(speed, mass)
		for j, i := range idx {
			pts[i].FrontTransfer, pts[i].FrontSpeedup = ft[j], fs[j]
			pts[i].MassFrontTransfer, pts[i].MassFrontSpeedup = mt[j], ms[j]
		}
	}
}

// positiveOrNaN keeps positive finite values; a missing value (0) cannot
// take part in a front.
func positiveOrNaN(x float64) float64 {
	if x > 0 && !math.IsInf(x, 0) {
		return x
	}
	return math.NaN()
}

// ParetoFront reports which points (x[i], y[i]) are on the Pareto front
// when smaller is better in both coordinates (negate a coordinate where
// larger is better): those that no other point dominates, that is, none
// is at least as small in both and smaller in one. Equal points are all on
// the front. A point with a NaN coordinate is neither on the front nor
// dominates another.
func ParetoFront(x, y []float64) []bool {
	n := min(len(x), len(y))
	on := make([]bool, n)
	for i := range n {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) {
			continue
		}
		on[i] = true
		for j := range n {
			if j == i || math.IsNaN(x[j]) || math.IsNaN(y[j]) {
				continue
			}
			if x[j] <= x[i] && y[j] <= y[i] && (x[j] < x[i] || y[j] < y[i]) {
				on[i] = false
				break
			}
		}
	}
	return on
}

// TradeoffCSVHeader is the column order of WriteTradeoffCSV.
var TradeoffCSVHeader = []string{
	"family", "label", "method", "r", "k", "page", "label_bits", "sinks", "impl", "k_layout",
	"dtype", "batch", "seq", "steps",
	"kv_read_bytes", "dense_kv_read_bytes", "transfer_ratio", "bytes_ratio",
	"rel_l2_error", "mass_covered", "topk_recall", "alpha_mean",
	"device", "seconds", "speedup", "ideal_speedup", "fits",
	"front_transfer", "front_speedup", "mass_front_transfer", "mass_front_speedup",
}

// WriteTradeoffCSV writes one line per point.
func WriteTradeoffCSV(w io.Writer, t *Tradeoff) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(TradeoffCSVHeader); err != nil {
		return err
	}
	b := strconv.FormatBool
	for _, p := range t.Points {
		rec := []string{
			p.Family, p.Label, p.Method, optionalInt(p.R), optionalInt(p.K), optionalInt(p.Page), optionalInt(p.LabelBits), optionalInt(p.Sinks), p.Impl, p.KLayout,
			p.DType, strconv.Itoa(p.Batch), strconv.Itoa(p.Seq), strconv.Itoa(p.Steps),
			strconv.FormatInt(p.KVReadBytes, 10), strconv.FormatInt(p.DenseKVReadBytes, 10), ftoa(p.TransferRatio), ftoa(p.BytesRatio),
			ftoa(p.RelL2Error), ftoa(p.MassCovered), ftoa(p.TopKRecall), ftoa(p.AlphaMean),
			p.Device, ftoa(p.Seconds), optional(p.Speedup), optional(p.IdealSpeedup), b(p.Fits),
			b(p.FrontTransfer), b(p.FrontSpeedup), b(p.MassFrontTransfer), b(p.MassFrontSpeedup),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTradeoffJSON writes the view as one indented JSON document.
func WriteTradeoffJSON(w io.Writer, t *Tradeoff) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
