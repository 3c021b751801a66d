package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
)

// levelToFit is one --fit-level DEVICE:LEVEL.
type levelToFit struct{ device, level string }

// levelFitReport is one fitted level in `bwsim validate` output.
type levelFitReport struct {
	Device string            `json:"device"`
	Level  string            `json:"level"`
	Fit    roofline.LevelFit `json:"fit"`
	// CatalogBandwidth and CatalogTransferOverheadSeconds are the figures
	// the predictions used.
	CatalogBandwidth               float64 `json:"catalog_achievable_bandwidth"`
	CatalogTransferOverheadSeconds float64 `json:"catalog_transfer_overhead_seconds"`
	// Rows are the dense rows fitted, with their error before and after
	// (re-predicted with the fitted figures).
	Rows []levelFitRow `json:"rows"`
	// Skipped are dense rows of the device the level does not time, with
	// the reason.
	Skipped []string `json:"skipped,omitempty"`
	// Set are the --set flags that apply the fit.
	Set []string `json:"set"`
}

type levelFitRow struct {
	Source           string  `json:"source"`
	MeasuredSeconds  float64 `json:"measured_seconds"`
	CatalogRelError  float64 `json:"catalog_rel_error"`
	FittedRelError   float64 `json:"fitted_rel_error"`
	FittedPrediction float64 `json:"fitted_predicted_seconds"`
}

// parseFitLevels checks each DEVICE:LEVEL against the catalog before any
// simulation runs.
func parseFitLevels(specs []string, cat *hwmodel.Catalog) ([]levelToFit, error) {
	var out []levelToFit
	for _, s := range specs {
		dev, level, ok := strings.Cut(s, ":")
		if !ok || dev == "" || level == "" {
			return nil, badInput("--fit-level %q: want DEVICE:LEVEL, e.g. ipu-bow:streaming", s)
		}
		d, err := cat.Get(dev)
		if err != nil {
			return nil, badInput("--fit-level %q: %v", s, err)
		}
		if _, ok := d.Level(level); !ok {
			var names []string
			for _, l := range d.OrderedLevels() {
				names = append(names, l.Name)
			}
			return nil, badInput("--fit-level %q: device %s has no memory level %q (it has %s)", s, dev, level, strings.Join(names, ", "))
		}
		out = append(out, levelToFit{device: dev, level: level})
	}
	return out, nil
}

// fitLevel fits one level to its device's dense rows, then re-predicts
// those rows with the fitted figures: the fit assumes each row's level
// transfers stay the longest work of their stages, and the re-prediction
// is what says whether they did.
func fitLevel(fl levelToFit, jobs []validationJob, points []roofline.ValidationPoint, tracesByKey map[string]*traces.Trace) (levelFitReport, error) {
	r := levelFitReport{Device: fl.device, Level: fl.level}
	var samples []roofline.LevelSample
	var used []int
	var dev *hwmodel.Device
	for i, j := range jobs {
		if j.m.Device != fl.device || j.m.Method != kernels.MethodDense {
			continue
		}
		dev = j.dev
		p, err := j.predict(tracesByKey[j.key], j.dev)
		if err != nil {
			return r, err
		}
		s, err := roofline.NewLevelSample(j.m.Source, j.m.Seconds, p, j.dev, fl.level)
		if err != nil {
			r.Skipped = append(r.Skipped, err.Error())
			continue
		}
		samples, used = append(samples, s), append(used, i)
	}
	if dev == nil {
		return r, badInput("--fit-level %s:%s: the measurement files have no dense rows of %s", fl.device, fl.level, fl.device)
	}
	lvl := dev.Levels[fl.level]
	r.CatalogBandwidth, r.CatalogTransferOverheadSeconds = lvl.AchievableBandwidth, lvl.TransferOverheadSeconds
	fit, err := roofline.FitLevel(samples)
	if err != nil {
		msg := fmt.Sprintf("--fit-level %s:%s: %v", fl.device, fl.level, err)
		if len(r.Skipped) > 0 {
			msg += fmt.Sprintf(" (%d dense rows skipped; first: %s)", len(r.Skipped), r.Skipped[0])
		}
		return r, badInput("%s", msg)
	}
	r.Fit = fit
	fitted := dev.Clone()
	lvl.AchievableBandwidth, lvl.TransferOverheadSeconds = fit.Bandwidth, fit.TransferOverheadSeconds
	fitted.Levels[fl.level] = lvl
	for k, i := range used {
		j := jobs[i]
		p, err := j.predict(tracesByKey[j.key], fitted)
		if err != nil {
			return r, err
		}
		r.Rows = append(r.Rows, levelFitRow{Source: j.m.Source, MeasuredSeconds: j.m.Seconds,
			CatalogRelError: points[i].RelError, FittedRelError: roofline.RelativeError(p.Seconds, j.m.Seconds),
			FittedPrediction: p.Seconds})
		if d := r.Rows[k].FittedRelError - fit.RelErrors[k]; d > 1e-9 || d < -1e-9 {
			r.Skipped = append(r.Skipped, fmt.Sprintf("%s: re-predicted %+.2f%%, the fit assumed %+.2f%%: the level no longer times one of its stages",
				j.m.Source, 100*r.Rows[k].FittedRelError, 100*fit.RelErrors[k]))
		}
	}
	prefix := "devices." + fl.device + ".memory_levels." + fl.level + "."
	r.Set = []string{
		fmt.Sprintf("%sachievable_bandwidth=%.4g", prefix, fit.Bandwidth),
		fmt.Sprintf("%stransfer_overhead_seconds=%.4g", prefix, fit.TransferOverheadSeconds),
	}
	return r, nil
}

func printLevelFit(w io.Writer, r levelFitReport) {
	fmt.Fprintf(w, "\nfit of %s's %s level to its %d dense rows (least squares on the relative error):\n", r.Device, r.Level, r.Fit.Points)
	fmt.Fprintf(w, "  achievable bandwidth %s/s (catalog %s/s), transfer overhead %s per transfer (catalog %s)\n",
		units.DecimalBytes(r.Fit.Bandwidth), units.DecimalBytes(r.CatalogBandwidth),
		units.Seconds(r.Fit.TransferOverheadSeconds), units.Seconds(r.CatalogTransferOverheadSeconds))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "source\tmeasured\terror (catalog)\terror (fitted)\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%+.1f%%\t%+.1f%%\t\n", row.Source, units.Seconds(row.MeasuredSeconds), 100*row.CatalogRelError, 100*row.FittedRelError)
	}
	tw.Flush()
	const shown = 5
	for i, s := range r.Skipped {
		if i == shown {
			fmt.Fprintf(w, "  ... and %d more not fitted (--json lists them)\n", len(r.Skipped)-shown)
			break
		}
		fmt.Fprintf(w, "  not fitted: %s\n", s)
	}
	fmt.Fprintf(w, "  apply with: --set %s\n", strings.Join(r.Set, " --set "))
}
