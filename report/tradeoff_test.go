package report

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/sweep"
)

// runTradeoff runs a small trade-off sweep on a test GPU.
func runTradeoff(t *testing.T) *sweep.Results {
	t.Helper()
	g := sweep.DefaultGrid()
	fams, err := sweep.ParseFamilies([]string{"dense,sparq:r=4..16:k=32,h2o:k=32..128,window:ratio=1/8,topk:k=32"})
	if err != nil {
		t.Fatal(err)
	}
	g.Methods = nil
	g.Tradeoff = &sweep.TradeoffSettings{Device: "test-gpu"}
	for _, f := range fams {
		g.Methods = append(g.Methods, f.Methods...)
		g.Tradeoff.Families = append(g.Tradeoff.Families, f.Name)
	}
	g.Seqs, g.Batches = []int{512}, []int{8}
	g.Heads, g.KVHeads, g.HeadDim = 4, 4, 32
	g.Devices = []string{"test-gpu"}
	dev := &hwmodel.Device{
		Name: "test-gpu", Kind: hwmodel.KindGPU, Description: "a small test GPU",
		Levels: map[string]hwmodel.MemoryLevel{
			"hbm": {Role: hwmodel.RoleMemory, Tier: 2, CapacityBytes: 80e9, PeakBandwidth: 2e12, AchievableBandwidth: 1.6e12, GranularityBytes: 32, LatencySeconds: 500e-9},
		},
		Compute:     []hwmodel.Compute{{Unit: "vector", DType: "fp32", OpsPerSecond: 20e12}, {Unit: "vector", DType: "fp16", OpsPerSecond: 40e12}},
		Overheads:   hwmodel.Overheads{LaunchSeconds: 1e-7},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 100, WorkUnitsPerParallelUnit: 8, InflightBytesPerWorkUnit: 1000},
	}
	res, err := sweep.Run(context.Background(), g, []*hwmodel.Device{dev}, sweep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestTradeoffChartData(t *testing.T) {
	res := runTradeoff(t)
	tr, err := sweep.BuildTradeoff(res, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, speedup := range []bool{false, true} {
		c := TradeoffChart(res, tr, speedup)
		if len(c.Panels) != 2 || !strings.Contains(c.Title, "batch 8, S = 512, fp16 (4 heads × 32)") {
			t.Fatalf("%d panels, title %q", len(c.Panels), c.Title)
		}
		for pi, sp := range c.Panels {
			var names []string
			for _, s := range sp.Series {
				names = append(names, s.Name)
				if !slices.IsSortedFunc(s.Points, func(a, b plots.Point) int { return cmpFloat(a.X, b.X) }) {
					t.Errorf("%s: points not in the order of x", s.Name)
				}
				if s.Name == kernels.MethodDense && (s.Color >= 0 || s.Style != plots.NoLine || len(s.Points) != 1) {
					t.Errorf("dense series %+v", s)
				}
				if s.Color == 7 {
					t.Errorf("%s is black, the front's colour", s.Name)
				}
			}
			if want := []string{"dense", "sparq:r=4..16:k=32", "h2o:k=32..128", "window:ratio=1/8", "topk:k=32"}; !reflect.DeepEqual(names, want) {
				t.Errorf("series %q", names)
			}
			if n := len(sp.Series[1].Points); n != 3 {
				t.Errorf("sparq family has %d points", n)
			}
			// The front: the points flagged in the view, in the order of x.
			var want []plots.Point
			for _, p := range tr.Points {
				x, y := p.TransferRatio, p.RelL2Error
				on := []bool{p.FrontTransfer, p.MassFrontTransfer}[pi]
				if speedup {
					x = p.Speedup
					on = []bool{p.FrontSpeedup, p.MassFrontSpeedup}[pi]
				}
				if pi == 1 {
					y = p.MassCovered
				}
				if on {
					want = append(want, plots.Point{X: x, Y: y})
				}
			}
			slices.SortStableFunc(want, func(a, b plots.Point) int { return cmpFloat(a.X, b.X) })
			if !reflect.DeepEqual(sp.Front, want) || len(want) < 2 {
				t.Errorf("panel %d front %v, want %v", pi, sp.Front, want)
			}
			if speedup != (len(sp.VLines) == 1) {
				t.Errorf("vertical lines %v", sp.VLines)
			}
			if sp.X.Scale != plots.Log || (pi == 0) != (sp.Y.Scale == plots.Log) {
				t.Errorf("panel %d scales %v %v", pi, sp.X.Scale, sp.Y.Scale)
			}
		}
		if _, err := c.Figure(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteTradeoff(t *testing.T) {
	res := runTradeoff(t)
	dir := t.TempDir()
	files, err := Write(dir, res, Options{Command: "bwsim sweep --tradeoff"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := []string{"results.csv", "results.json", "results.bench", "tradeoff.csv", "tradeoff.json",
		"tradeoff-error.png", "tradeoff-error.svg", "tradeoff-speedup.png", "tradeoff-speedup.svg", "index.html"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files %q", names)
	}
	page, _ := os.ReadFile(filepath.Join(dir, IndexName))
	html := string(page)
	for _, want := range []string{`<h2 id="tradeoff">Trade-off</h2>`, "speed-up over dense on test-gpu", "h2o:k=32..128", "<td class=\"l\">TS</td>",
		`<a href="tradeoff-error.svg">`, "trade-off view", "decode steps per point"} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if n := strings.Count(html, "data:image/png;base64,"); n != 2 {
		t.Errorf("%d inline figures, want 2", n)
	}
	if strings.Contains(html, "Speed-up over dense (ideal in parentheses)") {
		t.Error("index.html has per-device speed-up tables: the trade-off table replaces them")
	}
	// Without figures the data are still there; without dense, a note.
	files, err = Write(t.TempDir(), res, Options{NoFigures: true})
	if err != nil || len(files) != 6 {
		t.Errorf("no figures: %d files, %v", len(files), err)
	}
	noDense := *res
	noDense.Rows = slices.DeleteFunc(slices.Clone(res.Rows), func(r sweep.Row) bool { return r.Method == kernels.MethodDense })
	dir = t.TempDir()
	if _, err := Write(dir, &noDense, Options{}); err != nil {
		t.Fatal(err)
	}
	page, _ = os.ReadFile(filepath.Join(dir, IndexName))
	if !strings.Contains(string(page), "No trade-off view: trade-off: no dense rows on test-gpu") {
		t.Error("no note on the missing trade-off view")
	}
}
