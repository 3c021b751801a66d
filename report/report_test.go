package report

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/sweep"
)

// synthetic builds results by hand: dense, sparq r=32 k=128 and sparq 1/8
// on two devices at S = 1K..8K, batch 1 and 64. Dense takes S·batch ns;
// the sparse methods are 2× and 4× faster (ideal 3× and 6×) at batch 64 and
// 2× slower at batch 1. gpu-b cannot hold batch 64 at 8K.
func synthetic() *sweep.Results {
	g := sweep.DefaultGrid()
	g.Seqs = []int{1024, 2048, 4096, 8192}
	g.Devices = []string{"gpu-a", "gpu-b"}
	res := &sweep.Results{Schema: sweep.Schema, Grid: g, Points: 24, Done: 24, Complete: true}
	for _, name := range g.Devices {
		res.Devices = append(res.Devices, sweep.DeviceInfo{
			Name: name, Kind: "gpu",
			Levels: []sweep.LevelInfo{
				{Name: "smem", Role: "onchip", AchievableBandwidth: 20e12},
				{Name: "l2", Role: "cache", AchievableBandwidth: 8e12},
				{Name: "hbm", Role: "memory", AchievableBandwidth: 2e12},
			},
			Compute: []hwmodel.Compute{{Unit: "vector", DType: "fp16", OpsPerSecond: 100e12}, {Unit: "matrix", DType: "fp16", OpsPerSecond: 800e12}},
		})
	}
	variants := g.Variants()
	for _, b := range g.Batches {
		for _, s := range g.Seqs {
			for vi, v := range variants {
				key := v.Label + "/" + string(rune('0'+vi))
				res.Traffic = append(res.Traffic, sweep.Traffic{Key: key, Label: v.Label, Batch: b, Seq: s, DType: "fp16", Stages: []sweep.StageTraffic{
					{Stage: "append", Tensors: []sweep.TensorTraffic{{Tensor: "K", Role: "kv-cache", WriteBytes: 256}}},
					{Stage: "scan", Tensors: []sweep.TensorTraffic{{Tensor: "K", Role: "kv-cache", ReadBytes: int64(s * b * (vi + 1))}, {Tensor: "scores", Role: "intermediate", WriteBytes: int64(s)}}},
				}})
				for _, d := range g.Devices {
					dense := float64(s*b) * 1e-9
					secs, ideal := dense, dense/2
					if vi > 0 {
						f := float64(2 * vi)
						if b == 1 {
							f = 0.5
						}
						secs, ideal = dense/f, dense/2/float64(3*vi)
					}
					r := sweep.Row{Key: key, Method: v.Spec.Name, Label: v.Label, Device: d, Batch: b, Seq: s, DType: "fp16",
						Heads: 32, KVHeads: 32, HeadDim: 128, Workload: "llm-like", Seed: 1, AppendKV: true,
						Seconds: secs, IdealSeconds: ideal, Fits: !(d == "gpu-b" && b == 64 && s == 8192), Bound: "memory",
						Stages: []sweep.StageRow{
							{Name: "append", Seconds: secs / 10, Flops: 0, ArithmeticIntensity: 0},
							{Name: "scan", Seconds: secs * 0.9, Flops: int64(s * b * 100), ArithmeticIntensity: 1 + float64(vi)},
						}}
					res.Rows = append(res.Rows, r)
				}
			}
		}
	}
	sweep.ComputeSpeedups(res.Rows)
	return res
}

func TestSpeedupChartData(t *testing.T) {
	res := synthetic()
	c := SpeedupChart(res, "gpu-b")
	var names []string
	for _, s := range c.Series {
		names = append(names, s.Name)
	}
	want := []string{
		"sparq:r=32:k=128, batch 1", "", "sparq:r=32:k=128, batch 64", "",
		"sparq:ratio=1/8, batch 1", "", "sparq:ratio=1/8, batch 64", "",
		"ideal: bytes at peak bandwidth", "", notFitNote,
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("series %q\nwant %q", names, want)
	}
	// sparq:ratio=1/8 at batch 64: 4× measured, 6× ideal (dashed, same colour).
	real, ideal := c.Series[6], c.Series[7]
	if real.Color != ideal.Color || ideal.Style != plots.Dashed || real.Style != plots.Solid || real.Marker != plots.Triangle {
		t.Errorf("styles %+v %+v", real, ideal)
	}
	for i, s := range []float64{1024, 2048, 4096, 8192} {
		if real.Points[i] != (plots.Point{X: s, Y: 4}) || math.Abs(ideal.Points[i].Y-6) > 1e-12 {
			t.Errorf("point %d: %v %v", i, real.Points[i], ideal.Points[i])
		}
	}
	// The ring marks the two sparse points that do not fit.
	if got := c.Series[9].Points; len(got) != 2 || got[0].X != 8192 || c.Series[9].Marker != plots.Ring {
		t.Errorf("misfit series %+v", c.Series[9])
	}
	if len(SpeedupChart(res, "gpu-a").Series) != 9 {
		t.Error("gpu-a has a misfit series")
	}
	xmin, xmax, ymin, ymax := c.Ranges()
	if !(xmin < 1024 && xmin > 900 && xmax > 8192 && xmax < 9000 && ymin < 0.5 && ymin > 0.3 && ymax > 6 && ymax < 8) {
		t.Errorf("ranges x [%v, %v] y [%v, %v]", xmin, xmax, ymin, ymax)
	}
	if got := plots.TickLabels(c.X.Scale, c.X.Unit, xmin, xmax); !reflect.DeepEqual(got, []string{"1K", "2K", "4K", "8K"}) {
		t.Errorf("x ticks %q", got)
	}
	if got := plots.TickLabels(c.Y.Scale, c.Y.Unit, ymin, ymax); !reflect.DeepEqual(got, []string{"0.5×", "1×", "2×", "4×"}) {
		t.Errorf("y ticks %q", got)
	}
	if c.HLines[0] != 1 {
		t.Errorf("no 1× line")
	}
}

func TestTimeChartData(t *testing.T) {
	res := synthetic()
	c := TimeChart(res, "gpu-a")
	if len(c.Series) != 6 {
		t.Fatalf("%d series", len(c.Series))
	}
	if c.Series[0].Name != "dense, batch 1" || c.Series[1].Name != "dense, batch 64" {
		t.Errorf("first series %q %q", c.Series[0].Name, c.Series[1].Name)
	}
	if p := c.Series[1].Points[3]; p.X != 8192 || math.Abs(p.Y-8192*64e-9) > 1e-15 {
		t.Errorf("dense batch 64 at 8K: %v", p)
	}
	_, _, ymin, ymax := c.Ranges()
	if got := plots.TickLabels(c.Y.Scale, c.Y.Unit, ymin, ymax); !reflect.DeepEqual(got, []string{"1 µs", "10 µs", "100 µs"}) {
		t.Errorf("y ticks %q (range %v..%v)", got, ymin, ymax)
	}
}

func TestRooflineChartData(t *testing.T) {
	res := synthetic()
	r := RooflineChart(res, "gpu-a")
	if r.Title != "Roofline of gpu-a, batch 64, S = 8K, fp16" {
		t.Errorf("title %q", r.Title)
	}
	if len(r.Ceilings) != 2 || r.Ceilings[0].Name != "l2 8 TB/s" || r.Ceilings[1].BytesPerSecond != 2e12 {
		t.Errorf("ceilings %+v", r.Ceilings)
	}
	if len(r.Peaks) != 2 || r.Peaks[0].Name != "matrix 800 TFLOP/s" || r.Peaks[1].Name != "vector 100 TFLOP/s" {
		t.Errorf("peaks %+v", r.Peaks)
	}
	if !reflect.DeepEqual(r.Groups, []string{"dense", "sparq:r=32:k=128", "sparq:ratio=1/8"}) || !reflect.DeepEqual(r.Kinds, []string{"append", "scan"}) {
		t.Errorf("groups %q kinds %q", r.Groups, r.Kinds)
	}
	// append has no flops: never on the log axes.
	if n := len(r.Usable()); n != 3 {
		t.Errorf("%d usable points, want 3", n)
	}
	u := r.Usable()[2]
	if u.Group != 2 || u.Kind != 1 || u.Intensity != 3 || math.Abs(u.Rate-8192*64*100/(8192*64e-9/4*0.9)) > 1 {
		t.Errorf("point %+v", u)
	}
}

func TestTransferChartData(t *testing.T) {
	b := TransferChart(synthetic())
	if !reflect.DeepEqual(b.Layers, []string{"K", "scores"}) || len(b.Panels) != 3 {
		t.Fatalf("layers %q, %d panels", b.Layers, len(b.Panels))
	}
	p := b.Panels[2]
	if p.Title != "sparq:ratio=1/8" || !reflect.DeepEqual(p.Categories, []string{"append", "scan"}) {
		t.Errorf("panel %q %q", p.Title, p.Categories)
	}
	if p.Values[0][0] != 256 || p.Values[0][1] != 8192*64*3 || p.Values[1][1] != 8192 || p.Total(1) != 8192*64*3+8192 {
		t.Errorf("values %v", p.Values)
	}
}

func TestSummaries(t *testing.T) {
	sums := Summaries(synthetic())
	if len(sums) != 2 || !reflect.DeepEqual(sums[1].Methods, []string{"sparq:r=32:k=128", "sparq:ratio=1/8"}) || len(sums[1].Lines) != 8 {
		t.Fatalf("%+v", sums)
	}
	l := sums[1].Lines[7]
	if l.Batch != 64 || l.Seq != 8192 || l.Cells[1].String() != "4× (6×)*" || l.Cells[0].String() != "2× (3×)*" {
		t.Errorf("line %+v: %q %q", l, l.Cells[0], l.Cells[1])
	}
	if got := sums[0].Lines[0].Cells[0].String(); got != "0.5× (3×)" {
		t.Errorf("batch 1 cell %q", got)
	}
}

// writeSmall runs a tiny real sweep on test devices and writes its report.
func writeSmall(t *testing.T) (string, *sweep.Results, []File) {
	t.Helper()
	g := sweep.DefaultGrid()
	g.Methods = []sweep.MethodSpec{{Name: kernels.MethodDense}, {Name: kernels.MethodSparQ, R: 8, K: 32}, {Name: kernels.MethodSparQ, Ratio: 0.125}}
	g.Seqs = []int{256, 512, 1024, 2048}
	g.Batches = []int{1, 8}
	g.Heads, g.KVHeads, g.HeadDim = 4, 4, 32
	g.Devices = []string{"test-gpu"}
	dev := &hwmodel.Device{
		Name: "test-gpu", Kind: hwmodel.KindGPU, Description: "a small test GPU <b>escaped</b>",
		Levels: map[string]hwmodel.MemoryLevel{
			"l2":  {Role: hwmodel.RoleCache, Tier: 1, CapacityBytes: 4 << 20, PeakBandwidth: 6e12, AchievableBandwidth: 5e12, GranularityBytes: 32, LatencySeconds: 200e-9},
			"hbm": {Role: hwmodel.RoleMemory, Tier: 2, CapacityBytes: 3e6, PeakBandwidth: 2e12, AchievableBandwidth: 1.6e12, GranularityBytes: 32, LatencySeconds: 500e-9},
		},
		Compute:     []hwmodel.Compute{{Unit: "vector", DType: "fp32", OpsPerSecond: 20e12}, {Unit: "vector", DType: "fp16", OpsPerSecond: 40e12}, {Unit: "matrix", DType: "fp16", OpsPerSecond: 300e12}},
		Overheads:   hwmodel.Overheads{LaunchSeconds: 3e-6},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 100, WorkUnitsPerParallelUnit: 8, InflightBytesPerWorkUnit: 1000},
	}
	res, err := sweep.Run(context.Background(), g, []*hwmodel.Device{dev}, sweep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := Write(dir, res, Options{Command: "bwsim sweep --devices test-gpu"})
	if err != nil {
		t.Fatal(err)
	}
	return dir, res, files
}

func TestWrite(t *testing.T) {
	dir, res, files := writeSmall(t)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if st, err := os.Stat(filepath.Join(dir, f.Name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	want := []string{"results.csv", "results.json", "results.bench",
		"speedup-test-gpu.png", "speedup-test-gpu.svg", "time-test-gpu.png", "time-test-gpu.svg",
		"roofline-test-gpu.png", "roofline-test-gpu.svg", "transfers.png", "transfers.svg", "index.html"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files %q", names)
	}
	back, err := sweep.ReadFile(filepath.Join(dir, sweep.JSONName))
	if err != nil || !reflect.DeepEqual(back.Rows, res.Rows) {
		t.Errorf("results.json does not hold the rows: %v", err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, IndexName))
	html := string(page)
	for _, want := range []string{
		"<title>bwsim sweep</title>", "bwsim sweep --devices test-gpu", "sparq:ratio=1/8", "256, 512, 1K, 2K",
		"a small test GPU &lt;b&gt;escaped&lt;/b&gt;", `<img src="data:image/png;base64,`, "Fidelity against dense",
		"does not fit", `<a href="results.csv">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if n := strings.Count(html, "data:image/png;base64,"); n != 4 {
		t.Errorf("%d inline figures, want 4", n)
	}
	for _, bad := range []string{"ZgotmplZ", "<script", "http://", "https://"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	// An empty result set still gives a report, without figures.
	empty := *res
	empty.Rows, empty.Traffic, empty.Done, empty.Complete = nil, nil, 0, false
	files, err = Write(t.TempDir(), &empty, Options{})
	if err != nil || len(files) != 4 {
		t.Errorf("empty: %d files, %v", len(files), err)
	}
}

// TestReportRendersInChromium opens index.html in headless Chromium and
// checks the screenshot shows a page (skipped without Chromium).
func TestReportRendersInChromium(t *testing.T) {
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no Chromium")
	}
	dir, _, _ := writeSmall(t)
	shot := filepath.Join(t.ArtifactDir(), "index.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
		"--window-size=1200,2400", "--screenshot="+shot, "file://"+filepath.Join(dir, IndexName))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 2400 {
		t.Errorf("screenshot %v", b)
	}
	// A rendered page has text, tables and coloured plot lines: many
	// colours, and ink in both halves.
	colors := map[[3]uint32]bool{}
	var inkTop, inkBottom int
	for y := 0; y < img.Bounds().Dy(); y += 2 {
		for x := 0; x < img.Bounds().Dx(); x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
			if r < 0x8000 || g < 0x8000 || b < 0x8000 {
				if y < img.Bounds().Dy()/2 {
					inkTop++
				} else {
					inkBottom++
				}
			}
		}
	}
	if len(colors) < 50 || inkTop < 1000 || inkBottom < 1000 {
		t.Errorf("screenshot looks blank: %d colours, ink %d/%d (%s)", len(colors), inkTop, inkBottom, shot)
	}
	t.Logf("screenshot: %s", shot)
}
