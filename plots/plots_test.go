package plots

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/cmpimg"
	"gonum.org/v1/plot/vg"
)

func TestTickLabels(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scale    Scale
		unit     Unit
		min, max float64
		want     []string
	}{
		{"seq 1K..128K", Log, Count, 1024 / 1.06, 131072 * 1.06, []string{"1K", "2K", "4K", "8K", "16K", "32K", "64K", "128K"}},
		{"seq 1K..1M thinned", Log, Count, 1024, 1 << 20, []string{"1K", "4K", "16K", "64K", "256K", "1M"}},
		{"seq 256..4K", Log, Count, 256, 4096, []string{"256", "512", "1K", "2K", "4K"}},
		{"speed-up", Log, Ratio, 0.3, 9, []string{"0.5×", "1×", "2×", "4×", "8×"}},
		{"narrow speed-up", Log, Ratio, 6, 8.5, []string{"6×", "6.5×", "7×", "7.5×", "8×", "8.5×"}},
		{"seconds decades", Log, Seconds, 9e-6, 0.02, []string{"10 µs", "100 µs", "1 ms", "10 ms"}},
		{"seconds 1-2-5", Log, Seconds, 15e-6, 0.0009, []string{"20 µs", "50 µs", "100 µs", "200 µs", "500 µs"}},
		{"seconds in a decade", Log, Seconds, 2.5e-3, 8e-3, []string{"4 ms", "6 ms", "8 ms"}},
		{"bytes log", Log, Bytes, 1 << 20, 1 << 30, []string{"1 MiB", "4 MiB", "16 MiB", "64 MiB", "256 MiB", "1 GiB"}},
		{"bytes linear", Linear, Bytes, 0, 70 << 30, []string{"0 B", "20 GiB", "40 GiB", "60 GiB"}},
		{"bytes linear small", Linear, Bytes, 0, 9 << 20, []string{"0 B", "2 MiB", "4 MiB", "6 MiB", "8 MiB"}},
		{"flops", Log, Flops, 5e10, 2e15, []string{"100 GFLOP/s", "1 TFLOP/s", "10 TFLOP/s", "100 TFLOP/s", "1 PFLOP/s"}},
		{"intensity", Log, Plain, 0.004, 300, []string{"0.01", "0.1", "1", "10", "100"}},
		{"wide decades thinned", Log, Plain, 1e-3, 1e9, []string{"0.01", "1", "100", "10000", "1000000", "1e+08"}},
		{"linear plain", Linear, Plain, 0, 1, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
		{"fractions", Log, Fraction, 1.0 / 40, 1.2, []string{"1/32", "1/16", "1/8", "1/4", "1/2", "1"}},
		{"fractions thinned", Log, Fraction, 1.0 / 1100, 1, []string{"1/1024", "1/256", "1/64", "1/16", "1/4", "1"}},
		{"fractions narrow", Log, Fraction, 0.3, 0.45, []string{"0.3", "0.35", "0.4", "0.45"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TickLabels(tc.scale, tc.unit, tc.min, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("labels %q, want %q", got, tc.want)
			}
			for _, tk := range Ticks(tc.scale, tc.unit, tc.min, tc.max) {
				if tk.Value < tc.min*(1-1e-9) || tk.Value > tc.max*(1+1e-9) {
					t.Errorf("tick %v outside [%v, %v]", tk.Value, tc.min, tc.max)
				}
				if tc.scale == Log && tk.Value <= 0 {
					t.Errorf("tick %v on a log axis", tk.Value)
				}
			}
		})
	}
}

func TestTicksDegenerate(t *testing.T) {
	for _, r := range [][2]float64{{0, 0}, {-5, -1}, {math.NaN(), 1}, {1, math.Inf(1)}, {5, 1}} {
		for _, tk := range Ticks(Log, Count, r[0], r[1]) {
			if !(tk.Value > 0) {
				t.Errorf("range %v: tick %v", r, tk.Value)
			}
		}
	}
}

func TestLineChartDropsUndrawable(t *testing.T) {
	c := LineChart{
		X: Axis{Scale: Log, Unit: Count}, Y: Axis{Scale: Log, Unit: Ratio},
		Series: []Series{
			{Name: "a", Points: []Point{{1024, 2}, {2048, 0}, {4096, 4}, {8192, math.NaN()}, {16384, -1}, {32768, math.Inf(1)}, {0, 3}, {65536, 8}}},
			{Name: "bad", Points: []Point{{1024, 0}, {-1, 2}}},
		},
		HLines: []float64{1, 0},
	}
	if got, want := c.Clean(c.Series[0]), []Point{{1024, 2}, {4096, 4}, {65536, 8}}; !reflect.DeepEqual(got, want) {
		t.Errorf("clean %v, want %v", got, want)
	}
	if got := segments(c.Series[0].Points, Log, Log); len(got) != 3 {
		t.Errorf("%d segments, want 3 (gaps stay gaps)", len(got))
	}
	xmin, xmax, ymin, ymax := c.Ranges()
	if !(xmin > 0 && xmin < 1024 && xmax > 65536 && ymin > 0 && ymin < 1 && ymax > 8) {
		t.Errorf("ranges x [%v, %v] y [%v, %v]", xmin, xmax, ymin, ymax)
	}
	f, err := c.Figure()
	if err != nil {
		t.Fatal(err)
	}
	decodePNG(t, f)
}

func TestEmptyCharts(t *testing.T) {
	for name, build := range map[string]func() (*Figure, error){
		"line":     LineChart{Title: "t", X: Axis{Scale: Log, Unit: Count}, Y: Axis{Scale: Log, Unit: Seconds}, Series: []Series{{Name: "x", Points: []Point{{0, 0}}}}}.Figure,
		"roofline": Roofline{Title: "r", Points: []RooflinePoint{{Intensity: 0, Rate: 1}}, Groups: []string{"g"}, Kinds: []string{"k"}}.Figure,
		"bars":     Bars{Title: "b", Panels: []BarPanel{{Title: "p"}}, Y: Axis{Unit: Bytes}}.Figure,
		"scatter":  Scatter{Panels: []ScatterPanel{{Title: "s", X: Axis{Scale: Log}, Y: Axis{Scale: Log}, Series: []Series{{Points: []Point{{0, 1}}}}, Front: []Point{{1, 0}}}}}.Figure,
	} {
		t.Run(name, func(t *testing.T) {
			f, err := build()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(f.Panels[0].Title.Text, "(no data)") {
				t.Errorf("title %q does not say there is no data", f.Panels[0].Title.Text)
			}
			decodePNG(t, f)
		})
	}
}

func TestRenderRecoversPanics(t *testing.T) {
	p := plot.New()
	p.Y.Scale = plot.LogScale{}
	p.Y.Min, p.Y.Max = 0, 10 // gonum panics on a log axis reaching 0
	f := &Figure{Panels: []*plot.Plot{p}}
	if _, err := f.Render("png"); err == nil || !strings.Contains(err.Error(), "drawing failed") {
		t.Errorf("err = %v, want a drawing error", err)
	}
	if _, err := (&Figure{}).Render("gif"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestSVGEmbedsFonts(t *testing.T) {
	f, err := speedupExample().Figure()
	if err != nil {
		t.Fatal(err)
	}
	svg, err := f.Render("svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("@font-face")) {
		t.Error("SVG does not embed its fonts")
	}
}

func TestRooflineRanges(t *testing.T) {
	r := rooflineExample()
	xmin, xmax, ymin, ymax := r.Ranges()
	// The ridge point of the slowest ceiling (989e12/3e12 = 330) and the
	// lowest point (0.07, 1e11) must be inside.
	if !(xmin < 0.07 && xmax > 330 && ymin < 1e11 && ymax > 989e12) {
		t.Errorf("ranges x [%v, %v] y [%v, %v]", xmin, xmax, ymin, ymax)
	}
	if n := len(r.Usable()); n != len(r.Points)-1 {
		t.Errorf("%d usable points, want all but the one at intensity 0", n)
	}
}

func TestBarTotals(t *testing.T) {
	bp := BarPanel{Categories: []string{"a", "b"}, Values: [][]float64{{1, 2}, {3, math.NaN()}, {-4}}}
	if bp.Total(0) != 4 || bp.Total(1) != 2 {
		t.Errorf("totals %v %v", bp.Total(0), bp.Total(1))
	}
}

func decodePNG(t *testing.T, f *Figure) {
	t.Helper()
	b, err := f.Render("png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	w := f.W
	if w <= 0 {
		w = Width
	}
	if got, want := img.Bounds().Dx(), int(math.Round(float64(w/vg.Inch)*DPI)); got != want {
		t.Errorf("width %d px, want %d", got, want)
	}
}

func speedupExample() LineChart {
	seqs := []float64{1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072}
	c := LineChart{
		Title:  "Speed-up over dense on example-gpu",
		X:      Axis{Label: "sequence length S", Scale: Log, Unit: Count},
		Y:      Axis{Label: "speed-up over dense", Scale: Log, Unit: Ratio},
		HLines: []float64{1},
	}
	for m, base := range []float64{0.5, 0.9} {
		for b, batch := range []float64{1, 64} {
			var real, ideal []Point
			for i, s := range seqs {
				ideal = append(ideal, Point{s, 8 - 4/float64(i+1)})
				real = append(real, Point{s, base * batch / (batch + 1) * (8 - 5/float64(i+1))})
			}
			c.Series = append(c.Series,
				Series{Name: []string{"method a", "method b"}[m] + []string{", batch 1", ", batch 64"}[b], Points: real, Color: m, Marker: MarkerAt(b)},
				Series{Points: ideal, Color: m, Style: Dashed, Width: 1})
		}
	}
	c.Series = append(c.Series, Series{Name: "ideal", Color: -1, Style: Dashed},
		Series{Points: []Point{{131072, 7}}, Color: -1, Style: NoLine, Marker: Ring})
	return c
}

func rooflineExample() Roofline {
	return Roofline{
		Title:    "Roofline of example-gpu",
		Ceilings: []Ceiling{{"l2 9.9 TB/s", 9.9e12}, {"hbm 3 TB/s", 3e12}},
		Peaks:    []Peak{{"matrix 989 TFLOP/s", 989e12}, {"vector 134 TFLOP/s", 134e12}},
		Groups:   []string{"dense", "sparq"},
		Kinds:    []string{"append", "scores", "softmax"},
		Points: []RooflinePoint{
			{0, 0, 0.07, 1e11}, {0, 1, 1, 2.5e12}, {0, 2, 1.2, 3e12},
			{1, 0, 0.07, 1.1e11}, {1, 1, 6, 1.7e13}, {1, 2, 0, 1},
		},
	}
}

func barsExample() Bars {
	return Bars{
		Title:  "Bytes per step",
		Layers: []string{"K", "V", "scores"},
		Y:      Axis{Label: "bytes", Unit: Bytes},
		Panels: []BarPanel{
			{Title: "dense", Categories: []string{"scores", "softmax", "weighted-sum"}, Values: [][]float64{{64 << 30, 0, 0}, {0, 0, 64 << 30}, {1 << 29, 1 << 30, 1 << 29}}},
			{Title: "sparq", Categories: []string{"approx", "exact"}, Values: [][]float64{{16 << 30, 4 << 30}, {0, 4 << 30}, {1 << 28, 0}}},
		},
	}
}

// scatterExample is a trade-off chart of two panels: error (log) and mass
// (linear) against the fraction of bytes read.
func scatterExample() Scatter {
	fams := []struct {
		name string
		pts  [][3]float64 // x, error, mass
	}{
		{"method a", [][3]float64{{1.0 / 16, 0.15, 0.45}, {1.0 / 8, 0.09, 0.55}, {1.0 / 4, 0.05, 0.66}, {1.0 / 2, 0.017, 0.77}}},
		{"method b", [][3]float64{{1.0 / 32, 0.3, 0.43}, {1.0 / 16, 0.22, 0.51}, {1.0 / 8, 0.15, 0.6}}},
		{"method c", [][3]float64{{0.51, 0.03, 0.38}, {0.53, 0.015, 0.51}, {0.56, 0.008, 0.68}}},
	}
	var s Scatter
	s.Title = "Trade-off on example data"
	for panel, title := range []string{"Error (lower is better)", "Mass (higher is better)"} {
		sp := ScatterPanel{Title: title, X: Axis{Label: "bytes read / dense's", Scale: Log, Unit: Fraction}, FrontName: "Pareto front"}
		sp.Y = Axis{Scale: Log}
		if panel == 1 {
			sp.Y = Axis{}
		}
		for i, f := range fams {
			var pts []Point
			for _, p := range f.pts {
				pts = append(pts, Point{p[0], p[1+panel]})
			}
			sp.Series = append(sp.Series, Series{Name: f.name, Points: pts, Color: i, Marker: MarkerAt(i), Width: 1})
		}
		sp.Series = append(sp.Series, Series{Name: "reference", Points: []Point{{1, float64(panel)}}, Color: -1, Marker: Square, Style: NoLine})
		if panel == 0 {
			sp.Front = []Point{{1.0 / 32, 0.3}, {1.0 / 16, 0.15}, {1.0 / 8, 0.09}, {1.0 / 4, 0.05}, {1.0 / 2, 0.017}, {0.53, 0.015}, {0.56, 0.008}}
			sp.FrontLabels = []string{"b1", "a1", "", "", "", "", "c3"}
		} else {
			sp.Front = []Point{{1.0 / 32, 0.43}, {1.0 / 16, 0.51}, {1.0 / 8, 0.6}, {1.0 / 4, 0.66}, {1.0 / 2, 0.77}, {1, 1}}
		}
		s.Panels = append(s.Panels, sp)
	}
	return s
}

func TestScatter(t *testing.T) {
	s := scatterExample()
	// The reference point at y = 0 cannot sit on the log axis: it is
	// dropped, and so is its x.
	xmin, xmax, ymin, ymax := s.Panels[0].Ranges()
	if !(xmin < 1.0/32 && xmax > 0.56 && xmax < 1 && ymin < 0.008 && ymax > 0.3 && ymin > 0) {
		t.Errorf("ranges x [%v, %v] y [%v, %v]", xmin, xmax, ymin, ymax)
	}
	f, err := s.Figure()
	if err != nil {
		t.Fatal(err)
	}
	// Each name once in the shared legend, then the front: 4 series + 1.
	if f.entries != 5 {
		t.Errorf("%d legend entries, want 5", f.entries)
	}
	if len(f.Panels) != 2 || f.Panels[0].Title.Text != "Error (lower is better)" {
		t.Errorf("panels %d", len(f.Panels))
	}
	// Reference lines widen the ranges.
	sp := s.Panels[1]
	sp.VLines, sp.HLines = []float64{2}, []float64{1.5}
	_, xmax, _, ymax = sp.Ranges()
	if xmax < 2 || ymax < 1.5 {
		t.Errorf("reference lines outside x max %v y max %v", xmax, ymax)
	}
	pts, labels := drawableFront(ScatterPanel{X: Axis{Scale: Log}, Y: Axis{Scale: Log}, Front: []Point{{0, 1}, {1, 2}, {2, 3}}, FrontLabels: []string{"x", "", "z"}}, Log, Log)
	if len(pts) != 2 || !reflect.DeepEqual(labels, []string{"", "z"}) {
		t.Errorf("front %v labels %q", pts, labels)
	}
	decodePNG(t, f)
}

// TestGolden compares each chart type with a golden PNG by decoded pixels;
// go test -regen ./plots rewrites the goldens.
func TestGolden(t *testing.T) {
	for name, build := range map[string]func() (*Figure, error){
		"speedup":  speedupExample().Figure,
		"roofline": rooflineExample().Figure,
		"bars":     barsExample().Figure,
		"scatter":  scatterExample().Figure,
	} {
		t.Run(name, func(t *testing.T) {
			f, err := build()
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.RenderSize("png", 6*vg.Inch, 3.5*vg.Inch)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+"_golden.png")
			if *cmpimg.GenerateTestData {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -regen ./plots to create it)", err)
			}
			ok, err := cmpimg.EqualApprox("png", got, want, 0.02)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				out := filepath.Join(t.ArtifactDir(), name+".png")
				_ = os.WriteFile(out, got, 0o644)
				t.Errorf("%s differs from %s (got: %s)", name, golden, out)
			}
		})
	}
}
