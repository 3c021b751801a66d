package sweep

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/kernels"
)

func TestExpandMethod(t *testing.T) {
	for _, tc := range []struct {
		in, name string
		want     []string
	}{
		{"dense", "dense", []string{"dense"}},
		{" sparq ", "sparq:r=32:k=128", []string{"sparq:r=32:k=128"}},
		{"sparq:r=8..64:k=128", "sparq:r=8..64:k=128", []string{"sparq:r=8:k=128", "sparq:r=16:k=128", "sparq:r=32:k=128", "sparq:r=64:k=128"}},
		{"sparq:ratio=1/2..1/16", "sparq:ratio=1/2..1/16", []string{"sparq:ratio=1/2", "sparq:ratio=1/4", "sparq:ratio=1/8", "sparq:ratio=1/16"}},
		{"SparQ:R=8|16", "sparq:r=8|16", []string{"sparq:r=8:k=128", "sparq:r=16:k=128"}},
		{"h2o:k=128..1024|3000", "h2o:k=128..1024|3000", []string{"h2o:k=128", "h2o:k=256", "h2o:k=512", "h2o:k=1024", "h2o:k=3000"}},
		{"h2o:k=100..300", "h2o:k=100..300", []string{"h2o:k=100", "h2o:k=200"}},
		// The first key varies slowest; aliases are resolved.
		{"doublesparse:r=8..16:bits=4|16", "doublesparse:r=8..16:label-bits=4|16", []string{
			"doublesparse:r=8:k=128:label-bits=4", "doublesparse:r=8:k=128", "doublesparse:r=16:k=128:label-bits=4", "doublesparse:r=16:k=128"}},
		{"loki:k-layout=twice|once", "loki:layout=twice|once", []string{"loki:r=32:k=128:layout=twice", "loki:r=32:k=128:layout=once"}},
		{"window:k=64:sinks=0|4", "window:k=64:sinks=0|4", []string{"window:k=64:sinks=0", "window:k=64"}},
	} {
		f, err := ExpandMethod(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var got []string
		for _, m := range f.Methods {
			got = append(got, m.String())
		}
		if f.Name != tc.name || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q %q, want %q %q", tc.in, f.Name, got, tc.name, tc.want)
		}
		// The family's name expands to the same specs.
		again, err := ExpandMethod(f.Name)
		if err != nil || !reflect.DeepEqual(again.Methods, f.Methods) {
			t.Errorf("%q does not round-trip: %v", f.Name, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"sparq:r=64..8", `method "sparq:r=64..8": r=64..8: range "64..8": end 8 is below start 64`},
		{"sparq:r=0..8", "want positive whole numbers at both ends"},
		{"sparq:ratio=2..16", "a ratio range is 1/A..1/B, e.g. 1/2..1/16"},
		{"sparq:layout=twice..once", "layout takes no range (list values with |)"},
		{"h2o:r=8..16", `unknown key "r" for h2o (keys: k, ratio, impl)`},
		{"sparq:r", `"r" is not KEY=VALUE (keys for sparq: r, k, ratio, layout, impl, realloc)`},
		{"sparq:r=8..64:k=16:ratio=1/8", "give either ratio or r and k"},
		{"window:k=2..8", `method "window:k=2..8": method "window:k=2": sinks 4 exceed the token budget k 2`},
		{"quest:ratio=1/4..1/32", "want a ratio above 1/16"},
		{"sparq:r=1..1073741824:k=1..1073741824:layout=twice|once", "more than 1024 combinations"},
		{"h4o:k=1..8", `unknown method "h4o"`},
	} {
		_, err := ExpandMethod(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
	// r beyond the head size is a shape problem: the grid says so before
	// any work starts.
	g := smallGrid()
	g.Methods = mustMethods(t, "dense,sparq:r=8..64:k=32")
	if err := g.Validate(); err == nil || !strings.Contains(err.Error(), "sparq:r=64:k=32 at batch 1, seq 256: sparq: r 64 exceeds head-dim 32") {
		t.Errorf("err = %v", err)
	}
	if _, err := ParseFamilies([]string{"sparq:r=8..16:k=128,sparq:r=16:k=128"}); err == nil || !strings.Contains(err.Error(), `"sparq:r=16:k=128" listed twice`) {
		t.Errorf("duplicate across families: %v", err)
	}
	fams, err := ParseFamilies([]string{"dense,h2o:k=64..128", "window:k=32"})
	if err != nil || len(fams) != 3 || fams[1].Name != "h2o:k=64..128" || len(fams[1].Methods) != 2 {
		t.Errorf("families %+v %v", fams, err)
	}
	ms, err := ParseMethods(DefaultTradeoffMethods)
	if err != nil || len(ms) != 41 {
		t.Errorf("default trade-off methods: %d, %v", len(ms), err)
	}
}

func mustMethods(t *testing.T, s string) []MethodSpec {
	t.Helper()
	ms, err := ParseMethods([]string{s})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestFullString(t *testing.T) {
	for _, tc := range []struct{ in, full string }{
		{"dense", "dense:impl=unfused"},
		{"sparq", "sparq:r=32:k=128:layout=twice:impl=unfused:realloc=true"},
		{"loki:ratio=1/4:impl=fused", "loki:ratio=1/4:layout=once:impl=fused"},
		{"topk:realloc=false", "topk:k=128:impl=unfused:realloc=false"},
		{"quest:k=64", "quest:k=64:page=16:impl=unfused"},
		{"doublesparse", "doublesparse:r=16:k=128:label-bits=16:impl=unfused"},
		{"window:sinks=0", "window:k=128:sinks=0:impl=unfused"},
		{"h2o", "h2o:k=128:impl=unfused"},
	} {
		m := mustParse(t, tc.in)
		if got := m.FullString(); got != tc.full {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.full)
		}
		// The full form parses to the same computation.
		again := mustParse(t, m.FullString())
		if again.Spec(kernels.Shape{HeadDim: 64, Seq: 1024}, true) != m.Spec(kernels.Shape{HeadDim: 64, Seq: 1024}, true) {
			t.Errorf("%q: full form %q is a different spec", tc.in, m.FullString())
		}
	}
}

func TestParetoFront(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		x, y []float64
		want []bool
	}{
		{"empty", nil, nil, []bool{}},
		{"one", []float64{1}, []float64{1}, []bool{true}},
		{"staircase",
			// a b c(≻ by b) d e(= d) f(≻ by d) g(NaN) h(dense: all bytes, no error)
			[]float64{0.1, 0.2, 0.2, 0.5, 0.5, 0.6, nan, 1},
			[]float64{0.5, 0.3, 0.4, 0.1, 0.1, 0.2, 0, 0},
			[]bool{true, true, false, true, true, false, false, true}},
		{"same x, lower y wins", []float64{1, 1}, []float64{2, 1}, []bool{false, true}},
		{"same y, lower x wins", []float64{1, 2}, []float64{1, 1}, []bool{true, false}},
		{"one point beats all", []float64{0, 1, 2, 3}, []float64{0, 1, 2, 3}, []bool{true, false, false, false}},
		{"anti-diagonal all on", []float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, []bool{true, true, true, true}},
		// Higher is better in y: negate it.
		{"speed-up (negated)", []float64{-1, -4, -2, -8}, []float64{0, 0.1, 0.2, 0.5}, []bool{true, true, false, true}},
	} {
		got := ParetoFront(tc.x, tc.y)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// tradeoffGrid is a trade-off sweep of every method in a few variants at
// one shape.
func tradeoffGrid(t *testing.T) Grid {
	g := smallGrid()
	items := []string{"dense", "sparq:ratio=1/2..1/8", "sparq:r=4..16:k=32", "topk:k=16|64", "flexgen:k=32", "h2o:ratio=1/4|1/8",
		"window:ratio=1/4|1/8", "quest:ratio=1/4|1/8", "loki:ratio=1/4", "doublesparse:ratio=1/4", "doublesparse:ratio=1/4:label-bits=4"}
	fams, err := ParseFamilies(items)
	if err != nil {
		t.Fatal(err)
	}
	g.Methods = nil
	g.Tradeoff = &TradeoffSettings{Device: "small-gpu"}
	for _, f := range fams {
		g.Methods = append(g.Methods, f.Methods...)
		g.Tradeoff.Families = append(g.Tradeoff.Families, f.Name)
	}
	g.Seqs, g.Batches = []int{1024}, []int{4}
	g.HeadDim = 64
	return g
}

func TestTradeoff(t *testing.T) {
	g := tradeoffGrid(t)
	res, err := Run(context.Background(), g, smallDevices(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := BuildTradeoff(res, "")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Device != "small-gpu" || len(tr.Points) != len(g.Methods) || !reflect.DeepEqual(tr.Families, g.Tradeoff.Families) {
		t.Fatalf("device %s, %d points, families %q", tr.Device, len(tr.Points), tr.Families)
	}
	byLabel := map[string]TradeoffPoint{}
	for _, p := range tr.Points {
		byLabel[p.Label] = p
		if p.Device != "small-gpu" || p.Seq != 1024 || p.Batch != 4 || p.Steps != 1 || p.KVReadBytes <= 0 || p.DenseKVReadBytes <= 0 {
			t.Errorf("%s: %+v", p.Label, p)
		}
	}
	if d := byLabel["dense"]; d.TransferRatio != 1 || d.BytesRatio != 1 || d.Speedup != 1 || d.RelL2Error != 0 || !d.FrontTransfer || !d.FrontSpeedup {
		t.Errorf("dense: %+v", d)
	}
	// ratio=1/c reads about 1/c of dense's KV cache, whatever the method.
	for _, tc := range []struct {
		label string
		want  float64
	}{
		{"sparq:ratio=1/2", 0.5}, {"sparq:ratio=1/4", 0.25}, {"sparq:ratio=1/8", 0.125},
		{"h2o:ratio=1/4", 0.25}, {"h2o:ratio=1/8", 0.125},
		{"window:ratio=1/4", 0.25}, {"window:ratio=1/8", 0.125},
		{"quest:ratio=1/4", 0.25}, {"quest:ratio=1/8", 0.125},
		{"loki:ratio=1/4", 0.25},
		{"doublesparse:ratio=1/4", 0.25},
		// 4-bit labels read a quarter of the proxy's 16-bit bytes.
		{"doublesparse:ratio=1/4:label-bits=4", 0.125 + 0.125/4},
	} {
		p, ok := byLabel[tc.label]
		if !ok {
			t.Errorf("no point %s", tc.label)
			continue
		}
		if math.Abs(p.TransferRatio-tc.want) > 0.03*tc.want+0.004 {
			t.Errorf("%s: transfer ratio %.4f, want about %.4f", tc.label, p.TransferRatio, tc.want)
		}
	}
	// Exact scoring reads all of K: at least half of dense's bytes.
	for _, l := range []string{"topk:k=16", "topk:k=64", "flexgen:k=32"} {
		if r := byLabel[l].TransferRatio; r < 0.5 || r > 0.6 {
			t.Errorf("%s: transfer ratio %v", l, r)
		}
	}
	// More budget, less error, more bytes.
	if a, b := byLabel["sparq:ratio=1/8"], byLabel["sparq:ratio=1/2"]; !(a.TransferRatio < b.TransferRatio && a.RelL2Error > b.RelL2Error && a.Speedup > b.Speedup) {
		t.Errorf("sparq 1/8 %+v against 1/2 %+v", a, b)
	}
	// The fronts are the brute-force fronts of the points.
	n := len(tr.Points)
	x, s, e, m := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, p := range tr.Points {
		x[i], s[i], e[i], m[i] = p.TransferRatio, -p.Speedup, p.RelL2Error, -p.MassCovered
	}
	ft, fs, mt, ms := ParetoFront(x, e), ParetoFront(s, e), ParetoFront(x, m), ParetoFront(s, m)
	onFront := 0
	for i, p := range tr.Points {
		if p.FrontTransfer != ft[i] || p.FrontSpeedup != fs[i] || p.MassFrontTransfer != mt[i] || p.MassFrontSpeedup != ms[i] {
			t.Errorf("%s: fronts %v %v %v %v, want %v %v %v %v", p.Label, p.FrontTransfer, p.FrontSpeedup, p.MassFrontTransfer, p.MassFrontSpeedup, ft[i], fs[i], mt[i], ms[i])
		}
		if p.FrontTransfer {
			onFront++
		}
		// A method slower than dense is never worth it.
		if p.Speedup < 1 && p.FrontSpeedup {
			t.Errorf("%s: slower than dense yet on the speed-up front", p.Label)
		}
	}
	if onFront < 3 || onFront == n {
		t.Errorf("%d of %d points on the transfer front", onFront, n)
	}
	// Families: each item is a line.
	if p := byLabel["sparq:r=8:k=32"]; p.Family != "sparq:r=4..16:k=32" {
		t.Errorf("family %q", p.Family)
	}

	// Another device; an unknown one.
	if tr2, err := BuildTradeoff(res, "test-ipu"); err != nil || tr2.Points[1].Speedup == tr.Points[1].Speedup || tr2.Points[1].TransferRatio != tr.Points[1].TransferRatio {
		t.Errorf("on test-ipu: %v", err)
	}
	if _, err := BuildTradeoff(res, "h100"); err == nil {
		t.Error("unknown device accepted")
	}

	// CSV and JSON.
	var b bytes.Buffer
	if err := WriteTradeoffCSV(&b, tr); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != n+1 || !reflect.DeepEqual(recs[0], TradeoffCSVHeader) {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
	for _, rec := range recs[1:] {
		if len(rec) != len(TradeoffCSVHeader) {
			t.Errorf("record %q", rec)
		}
	}
	b.Reset()
	if err := WriteTradeoffJSON(&b, tr); err != nil {
		t.Fatal(err)
	}
	var back Tradeoff
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || !reflect.DeepEqual(&back, tr) {
		t.Errorf("json does not round-trip: %v", err)
	}

	// Without dense there is nothing to compare with.
	noDense := *res
	noDense.Rows = nil
	for _, r := range res.Rows {
		if r.Method != kernels.MethodDense {
			noDense.Rows = append(noDense.Rows, r)
		}
	}
	if _, err := BuildTradeoff(&noDense, ""); err == nil || !strings.Contains(err.Error(), "no dense rows") {
		t.Errorf("err = %v", err)
	}
}

func TestTradeoffGrid(t *testing.T) {
	g := tradeoffGrid(t)
	g.Impls = []kernels.Impl{kernels.Unfused, kernels.Fused}
	fams := map[string]string{}
	for _, v := range g.Variants() {
		fams[v.Label] = v.Family
	}
	for label, want := range map[string]string{
		"dense": "dense", "dense:impl=fused": "dense:impl=fused",
		"sparq:r=4:k=32": "sparq:r=4..16:k=32", "sparq:r=4:k=32:impl=fused": "sparq:r=4..16:k=32:impl=fused",
		"topk:k=16": "topk:k=16|64", "loki:ratio=1/4": "loki:ratio=1/4",
	} {
		if fams[label] != want {
			t.Errorf("%s: family %q, want %q", label, fams[label], want)
		}
	}
	for _, tc := range []struct {
		edit func(*Grid)
		want string
	}{
		{func(g *Grid) { g.Tradeoff.Device = "h100" }, `trade-off device "h100" is not one of the sweep's devices (gpu, small-gpu, test-ipu)`},
		{func(g *Grid) { g.Methods = g.Methods[1:] }, "the trade-off view compares with dense: add dense to the methods"},
		{func(g *Grid) { g.Tradeoff.Families = []string{"h2o:k=8..4"} }, "trade-off family: "},
		{func(g *Grid) { g.Steps = -1 }, "steps must be positive"},
	} {
		g := tradeoffGrid(t)
		tc.edit(&g)
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
}

// TestSteps runs multi-step points: rows and keys carry the steps, the
// fidelity is the mean over the steps, and resume keeps them apart from
// single-step records.
func TestSteps(t *testing.T) {
	g := smallGrid()
	g.Methods = mustMethods(t, "dense,h2o:k=32,sparq:r=8:k=32")
	g.Seqs, g.Batches, g.Devices = []int{256}, []int{1}, g.Devices[:1]
	devs := smallDevices()[:1]
	dir := t.TempDir()
	one, err := Run(context.Background(), g, devs, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	g.Steps = 4
	runs := 0
	four, err := Run(context.Background(), g, devs, Options{Dir: dir, Resume: true, Progress: func(Progress) { runs++ }})
	if err != nil {
		t.Fatal(err)
	}
	if runs != len(g.Methods) {
		t.Errorf("ran %d points, want %d: a 1-step record stood in for a 4-step point", runs, len(g.Methods))
	}
	for i, r := range four.Rows {
		o := one.Rows[i]
		if r.Steps != 4 || o.Steps != 1 || !strings.Contains(r.Key, "/steps=4/") || r.Seq != 256 {
			t.Errorf("%s: steps %d (1-step row %d), key %s", r.Label, r.Steps, o.Steps, r.Key)
		}
		if r.Speedup <= 0 {
			t.Errorf("%s: no speed-up", r.Label)
		}
		// The last step runs over 259 positions: dense moves more bytes.
		if r.Method == kernels.MethodDense && r.Bytes <= o.Bytes {
			t.Errorf("dense: %d bytes at the 4th step, %d at the 1st", r.Bytes, o.Bytes)
		}
		if r.Method == kernels.MethodH2O && r.RelL2Error == o.RelL2Error {
			t.Errorf("h2o: the same error over 4 steps as over 1 (%v)", r.RelL2Error)
		}
	}
	// Resuming the 4-step sweep reruns nothing.
	runs = 0
	again, err := Run(context.Background(), g, devs, Options{Dir: dir, Resume: true, Progress: func(Progress) { runs++ }})
	if err != nil || runs != 0 {
		t.Fatalf("resume reran %d points: %v", runs, err)
	}
	compareRows(t, again.Rows, four.Rows)
	var b strings.Builder
	if err := WriteCSV(&b, four.Rows); err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	col := len(CSVHeader) - 1
	if CSVHeader[col] != "steps" || recs[1][col] != "4" {
		t.Errorf("steps column %q = %q", CSVHeader[col], recs[1][col])
	}
	b.Reset()
	if err := WriteBench(&b, four); err != nil || !strings.Contains(b.String(), "\nsteps: 4\n") {
		t.Errorf("bench: %v\n%s", err, b.String())
	}
}

// TestOldJournal: a journal of the previous format (other keys) is refused
// with advice, not silently rerun or misread.
func TestOldJournal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, JournalName), []byte(`{"bwsim_sweep_journal":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := smallGrid()
	g.Seqs, g.Batches = []int{256}, []int{1}
	_, err := Run(context.Background(), g, smallDevices(), Options{Dir: dir, Resume: true})
	if err == nil || !strings.Contains(err.Error(), "journal version 1, this bwsim reads version 2: run without --resume to start over") {
		t.Errorf("err = %v", err)
	}
}
