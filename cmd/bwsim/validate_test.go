package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/roofline"
)

const validateCSV = `# gpu: test
device,method,impl,batch,heads,kv_heads,head_dim,seq,r,k,k_layout,dtype,seconds,placement,variant
h100-sxm,dense,fused,2,8,8,64,1024,,,,fp16,2.0e-05,,sdpa-cudnn
h100-sxm,sparq,unfused,2,8,2,64,2048,16,64,twice,fp16,8.0e-05,,triton+graph
ipu-bow,dense,unfused,1,4,4,64,1024,,,,fp16,1.0e-03,kv-cache=streaming,poplar
`

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateJSON(t *testing.T) {
	isolateConfig(t)
	in := writeTemp(t, "m.csv", validateCSV)
	outDir := filepath.Join(t.TempDir(), "out")
	out, err := execute(t, "validate", "--measured", in, "--json", "--out", outDir)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Points []struct {
			Device           string  `json:"device"`
			Seconds          float64 `json:"seconds"`
			PredictedSeconds float64 `json:"predicted_seconds"`
			RelError         float64 `json:"rel_error"`
			Source           string  `json:"source"`
			Stages           []struct {
				Name string `json:"name"`
			} `json:"stages"`
		} `json:"points"`
		Summary struct {
			MedianAbsError float64 `json:"median_abs_error"`
			MaxAbsError    float64 `json:"max_abs_error"`
			Points         int     `json:"points"`
		} `json:"summary"`
		Groups []roofline.ErrorSummary `json:"groups"`
		Plots  []string                `json:"plots"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Points) != 3 || doc.Summary.Points != 3 {
		t.Fatalf("%d points, summary of %d, want 3", len(doc.Points), doc.Summary.Points)
	}
	maxAbs := 0.0
	for _, p := range doc.Points {
		if !(p.PredictedSeconds > 0) {
			t.Errorf("%s: predicted %g", p.Source, p.PredictedSeconds)
		}
		if want := (p.PredictedSeconds - p.Seconds) / p.Seconds; math.Abs(p.RelError-want) > 1e-12 {
			t.Errorf("%s: rel_error %g, want %g", p.Source, p.RelError, want)
		}
		maxAbs = math.Max(maxAbs, math.Abs(p.RelError))
		if len(p.Stages) == 0 {
			t.Errorf("%s: no stages", p.Source)
		}
	}
	if doc.Points[1].Source != in+":4" || len(doc.Points[1].Stages) != 5 {
		t.Errorf("sparq point %+v, want source line 4 and 5 unfused stages", doc.Points[1])
	}
	if doc.Summary.MaxAbsError != maxAbs {
		t.Errorf("max_abs_error %g, want %g", doc.Summary.MaxAbsError, maxAbs)
	}
	if len(doc.Groups) != 3 {
		t.Errorf("%d device/method groups, want 3", len(doc.Groups))
	}
	for _, f := range []string{"validate.png", "validate.svg", "validate-points.csv"} {
		st, err := os.Stat(filepath.Join(outDir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	pts, err := os.ReadFile(filepath.Join(outDir, "validate-points.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(pts)), "\n"); len(lines) != 4 || !strings.Contains(lines[0], "predicted_seconds") {
		t.Errorf("points CSV:\n%s", pts)
	}
}

func TestValidateTableAndOverrides(t *testing.T) {
	isolateConfig(t)
	in := writeTemp(t, "m.csv", validateCSV)
	out, err := execute(t, "validate", in, "--no-plot")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"3 measurements", "gpu: test", "error by device and method", "median |err|", "sdpa-cudnn", "all 3 points"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	// A slower HBM in the catalog makes the dense H100 prediction slower.
	fast, err := execute(t, "validate", in, "--no-plot", "--json")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := execute(t, "validate", in, "--no-plot", "--json", "--set", "devices.h100-sxm.memory_levels.hbm.achievable_bandwidth=1e11")
	if err != nil {
		t.Fatal(err)
	}
	pred := func(doc string) float64 {
		var d struct {
			Points []struct {
				PredictedSeconds float64 `json:"predicted_seconds"`
			} `json:"points"`
		}
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		return d.Points[0].PredictedSeconds
	}
	if !(pred(slow) > 2*pred(fast)) {
		t.Errorf("--set slower HBM: predicted %g s, catalog %g s", pred(slow), pred(fast))
	}
}

func TestValidateBadInput(t *testing.T) {
	isolateConfig(t)
	hdr := "device,method,impl,batch,heads,kv_heads,head_dim,seq,r,k,k_layout,dtype,seconds,placement\n"
	cases := map[string][]string{
		"no files":       {"validate"},
		"missing file":   {"validate", "--measured", filepath.Join(t.TempDir(), "nope.csv")},
		"bad row":        {"validate", writeTemp(t, "a.csv", hdr+"h100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,-1,\n")},
		"unknown device": {"validate", writeTemp(t, "b.csv", hdr+"a10g,dense,fused,1,32,32,128,4096,,,,fp16,1e-4,\n")},
		"r over d":       {"validate", writeTemp(t, "c.csv", hdr+"h100-sxm,sparq,unfused,1,32,32,64,4096,128,16,twice,fp16,1e-4,\n")},
		"bad placement":  {"validate", writeTemp(t, "d.csv", hdr+"h100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,1e-4,kv-cache=l2\n")},
		"bad workload":   {"validate", "--workload", "zeros", writeTemp(t, "e.csv", hdr+"h100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,1e-4,\n")},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := execute(t, append(args, "--no-plot")...)
			if err == nil || !isUsage(err) {
				t.Errorf("error %v, want bad input (exit 2)", err)
			}
		})
	}
}

// TestCommittedMeasurementFiles keeps validation/*.csv parseable and their
// devices in the catalog; the paper's file is validated end to end.
func TestCommittedMeasurementFiles(t *testing.T) {
	isolateConfig(t)
	files, err := filepath.Glob("../../validation/*.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); strings.Contains(base, "-micro") || strings.Contains(base, "-host") || strings.Contains(base, "-kernels") || strings.Contains(base, "-ncu") || strings.Contains(base, "-probe") {
			continue // microbenchmarks, profiles and probes, not measurement files
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := roofline.ParseMeasurements(fh, f)
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(mf.Rows) == 0 {
			t.Errorf("%s: no rows", f)
		}
	}
	paper := "../../validation/paper.csv"
	if _, err := os.Stat(paper); err != nil {
		t.Skip("no validation/paper.csv")
	}
	if testing.Short() {
		t.Skip("short: not simulating the paper's rows")
	}
	if _, err := execute(t, "validate", paper, "--no-plot", "-q"); err != nil {
		t.Errorf("validate %s: %v", paper, err)
	}
}

// The catalog's IPU memory figures are fits to the device's dense rows
// (hwmodel/catalog.yaml says so): the streaming level to the paper's five
// remote rows, the SRAM level to the nine SRAM-resident ones (and the
// remote rows' intermediates). Refitting both reproduces them, the fitted
// predictions of the rows stay close to their measurements, and so do the
// SparQ rows no fit saw.
func TestIPUMemoryFiguresAreTheDenseFit(t *testing.T) {
	isolateConfig(t)
	paper := "../../validation/paper.csv"
	if _, err := os.Stat(paper); err != nil {
		t.Skip("no validation/paper.csv")
	}
	out, err := execute(t, "validate", paper, "--no-plot", "--json", "--fit-level", "ipu-bow:streaming", "--fit-level", "ipu-bow:sram")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Points []roofline.ValidationPoint `json:"points"`
		Fits   []levelFitReport           `json:"fits"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Fits) != 2 {
		t.Fatalf("%d fits, want 2", len(doc.Fits))
	}
	for _, tt := range []struct {
		level         string
		rows, skipped int
		tolerance     float64
	}{{"streaming", 5, 9, 0.05}, {"sram", 14, 0, 0.08}} {
		var f levelFitReport
		for _, x := range doc.Fits {
			if x.Level == tt.level {
				f = x
			}
		}
		if len(f.Rows) != tt.rows || len(f.Skipped) != tt.skipped {
			t.Errorf("%s: fitted %d rows, skipped %v; want %d fitted, %d skipped", tt.level, len(f.Rows), f.Skipped, tt.rows, tt.skipped)
		}
		if d := f.Fit.Bandwidth/f.CatalogBandwidth - 1; math.Abs(d) > 0.005 {
			t.Errorf("%s: fitted %.4g B/s, catalog %.4g: refit the catalog", tt.level, f.Fit.Bandwidth, f.CatalogBandwidth)
		}
		if d := f.Fit.TransferOverheadSeconds/f.CatalogTransferOverheadSeconds - 1; math.Abs(d) > 0.005 {
			t.Errorf("%s: fitted %.4g s per transfer, catalog %.4g: refit the catalog", tt.level, f.Fit.TransferOverheadSeconds, f.CatalogTransferOverheadSeconds)
		}
		for _, r := range f.Rows {
			if math.Abs(r.FittedRelError) > tt.tolerance {
				t.Errorf("%s: %s: %+.1f%% with the fitted figures", tt.level, r.Source, 100*r.FittedRelError)
			}
		}
	}
	sparq := 0
	for _, p := range doc.Points {
		if p.Device == "ipu-bow" && p.Method == "sparq" {
			sparq++
			if math.Abs(p.RelError) > 0.10 {
				t.Errorf("%s (SparQ, outside the fit): %+.1f%%", p.Source, 100*p.RelError)
			}
		}
	}
	if sparq != 5 {
		t.Errorf("%d IPU SparQ rows, want 5", sparq)
	}
}
