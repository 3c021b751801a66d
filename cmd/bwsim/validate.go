package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
)

func init() { extraCommands = append(extraCommands, newValidateCmd) }

// validateOutput is the JSON document `bwsim validate --json` prints.
type validateOutput struct {
	Files    []*roofline.MeasurementFile `json:"files"`
	Points   []roofline.ValidationPoint  `json:"points"`
	Summary  roofline.ErrorSummary       `json:"summary"`
	Groups   []roofline.ErrorSummary     `json:"groups"`
	Variants []roofline.ErrorSummary     `json:"variants"`
	Plots    []string                    `json:"plots,omitempty"`
	Fits     []levelFitReport            `json:"fits,omitempty"`
}

type validateFlags struct {
	measured    []string
	asJSON      bool
	out         string
	noPlot      bool
	quiet       bool
	workload    string
	seed        uint64
	sampleHeads int
	fitLevels   []string
}

func newValidateCmd() *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate --measured FILE...",
		Short: "compare predictions with timings measured on real devices",
		Long: `validate reads measurement files (CSV: one measured kernel call per row; the
format is in validation/README.md), simulates each row's decode step on the
host, prices it on the row's device and prints predicted against measured
time with the relative error (predicted − measured) / measured of every
point, then the median and maximum |error| per device and method, and per
implementation variant and K layout. It draws predicted against measured time (log-log,
with y = x) as PNG and SVG in --out.

Rows are simulated without the append stage (kernel microbenchmarks do not
write the cache), on the gaussian workload (byte counts do not depend on the
data) and with one sampled (sequence, KV head) pair (byte counts are exact
under sampling). Device names must be catalog names (bwsim devices); the
device flags change the catalog, so a calibration can be tried against the
same measurements.

--fit-level DEVICE:LEVEL fits a memory level's achievable bandwidth and
per-transfer overhead to the device's dense rows (least squares on the
relative error), for devices no microbenchmark can run on: their dense
calls are transfers of the whole KV cache. It prints the fitted figures, the
dense rows' errors with them, and the --set flags that apply them.`,
		Example: `  bwsim validate --measured validation/h100.csv
  bwsim validate --measured validation/paper.csv --json
  bwsim validate --measured validation/paper.csv --fit-level ipu-bow:streaming
  bwsim validate --measured validation/h100.csv --set devices.h100-sxm.overheads.launch_seconds=5e-6`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd, f, args)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.measured, "measured", nil, "measurement `FILE`s (CSV; repeatable or comma-separated; also taken as arguments)")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object (files, points[], summary, groups, variants, fits) instead of tables")
	fs.StringVarP(&f.out, "out", "o", "./bwsim-out", "write validate.png, validate.svg and validate-points.csv into this `DIR`")
	fs.BoolVar(&f.noPlot, "no-plot", false, "write no files")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print the summaries only, not every point")
	fs.StringVar(&f.workload, "workload", "gaussian", "synthetic data the rows are simulated on: gaussian or llm-like")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the synthetic workload")
	fs.IntVar(&f.sampleHeads, "sample-heads", 1, "(sequence, kv-head) pairs simulated per row (0: automatic)")
	fs.StringArrayVar(&f.fitLevels, "fit-level", nil, "also fit `DEVICE:LEVEL`'s achievable bandwidth and transfer overhead to the device's dense rows\n(for devices that cannot run microbenchmarks); repeatable; predictions keep the catalog's figures")
	addDeviceFlags(fs)
	return cmd
}

func runValidate(cmd *cobra.Command, f validateFlags, args []string) error {
	files := append(append([]string{}, f.measured...), args...)
	if len(files) == 0 {
		return badInput("no measurement files: give --measured FILE (format: validation/README.md)")
	}
	wl, err := kernels.ParseWorkload(f.workload)
	if err != nil {
		return asUsage(err)
	}
	if f.sampleHeads < 0 {
		return badInput("--sample-heads %d: must be positive (or 0 for automatic)", f.sampleHeads)
	}
	if !f.noPlot {
		if err := checkOutputDir(f.out); err != nil {
			return badInput("--out %s: %v", f.out, err)
		}
	}
	var parsed []*roofline.MeasurementFile
	var rows []roofline.Measurement
	for _, name := range files {
		mf, err := readMeasurementFile(name)
		if err != nil {
			return err
		}
		parsed = append(parsed, mf)
		rows = append(rows, mf.Rows...)
	}
	cat, err := loadCatalog(cmd)
	if err != nil {
		return err
	}
	fits, err := parseFitLevels(f.fitLevels, cat)
	if err != nil {
		return err
	}
	jobs, err := planValidation(rows, cat, wl, f.seed, f.sampleHeads)
	if err != nil {
		return err
	}
	points, tracesByKey, err := predictRows(cmd.Context(), jobs)
	if err != nil {
		return err
	}
	out := validateOutput{
		Files:    parsed,
		Points:   points,
		Summary:  roofline.Summarize(points),
		Groups:   roofline.SummarizeBy(points, false),
		Variants: roofline.SummarizeBy(points, true),
	}
	for _, fl := range fits {
		r, err := fitLevel(fl, jobs, points, tracesByKey)
		if err != nil {
			return err
		}
		out.Fits = append(out.Fits, r)
	}
	if !f.noPlot {
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return err
		}
		title := "bwsim validate: " + strings.Join(baseNames(files), ", ")
		for _, format := range []string{"png", "svg"} {
			path := filepath.Join(f.out, "validate."+format)
			if err := writeValidationPlot(path, format, title, points); err != nil {
				return err
			}
			out.Plots = append(out.Plots, path)
		}
		path := filepath.Join(f.out, "validate-points.csv")
		if err := atomicfile.Write(path, func(w io.Writer) error { return writePointsCSV(w, points) }); err != nil {
			return err
		}
		out.Plots = append(out.Plots, path)
	}
	if f.asJSON {
		return writeJSON(cmd.OutOrStdout(), out)
	}
	printValidation(cmd.OutOrStdout(), out, f.quiet)
	return nil
}

func readMeasurementFile(name string) (*roofline.MeasurementFile, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, asUsage(err)
	}
	defer fh.Close()
	mf, err := roofline.ParseMeasurements(fh, name)
	if err != nil {
		return nil, asUsage(err)
	}
	return mf, nil
}

func baseNames(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Base(f)
	}
	return out
}

// validationJob is one row with what its prediction needs.
type validationJob struct {
	m   roofline.Measurement
	dev *hwmodel.Device
	cfg kernels.Config
	key string
}

// predict prices the job's trace tr on dev, with the row's placement and
// host time.
func (j validationJob) predict(tr *traces.Trace, dev *hwmodel.Device) (*roofline.Prediction, error) {
	p, err := roofline.Predict(tr, dev, roofline.Options{Placement: j.m.PlacementMap, HostSeconds: j.m.HostSeconds,
		HostTimed: j.m.Dispatch == roofline.DispatchHostSync,
		Stream:    j.m.Dispatch == roofline.DispatchHostSync || j.m.Dispatch == roofline.DispatchEager})
	if err != nil {
		return nil, asUsage(fmt.Errorf("%s: %w", j.m.Source, err))
	}
	return p, nil
}

// planValidation checks every row against the catalog and the kernels'
// limits, reporting every bad row (bad input).
func planValidation(rows []roofline.Measurement, cat *hwmodel.Catalog, wl kernels.Workload, seed uint64, sample int) ([]validationJob, error) {
	var errs []error
	devs := map[string]*hwmodel.Device{}
	jobs := make([]validationJob, 0, len(rows))
	for _, m := range rows {
		dev, ok := devs[m.Device]
		if !ok {
			d, err := cat.Get(m.Device)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.Source, err))
				if len(errs) >= 20 {
					break
				}
				continue
			}
			devs[m.Device], dev = d, d
		}
		c := kernels.Config{
			Shape: kernels.Shape{Batch: m.Batch, Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim, Seq: m.Seq},
			Spec: kernels.Spec{Method: m.Method, Impl: kernels.Impl(m.Impl), R: m.R, K: m.K,
				KLayout: kernels.KLayout(m.KLayout), Split: m.Split, Materialize: m.Materialize, Compiled: m.Compiled, FusedExact: m.FusedExact, Upcast: m.Upcast, Tile: m.QueryTile, SerialCombine: m.SerialCombine, TileKeys: m.TileKeys, TilesInFlight: m.TilesInFlight, BlockInstructions: m.BlockInstructions, ParamLines: m.ParamLines, RankPass: m.RankPass, Kernel: m.Kernel},
			DType:       kernels.DType(m.DType),
			Workload:    wl,
			Seed:        seed,
			SampleHeads: sample,
			Workers:     1,
		}
		if sample > 0 && int64(sample) > c.Shape.Pairs() {
			c.SampleHeads = int(c.Shape.Pairs())
		}
		if _, _, err := kernels.Plan(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Source, err))
			if len(errs) >= 20 {
				break
			}
			continue
		}
		jobs = append(jobs, validationJob{m: m, dev: dev, cfg: c, key: fmt.Sprintf("%+v", c)})
	}
	if len(errs) > 0 {
		return nil, asUsage(errors.Join(errs...))
	}
	return jobs, nil
}

// predictRows simulates each distinct configuration once (in parallel) and
// prices every row on its device. It returns the points and, by
// validationJob.key, the traces they were priced from.
func predictRows(ctx context.Context, jobs []validationJob) ([]roofline.ValidationPoint, map[string]*traces.Trace, error) {
	uniq := map[string]kernels.Config{}
	var keys []string
	for _, j := range jobs {
		if _, ok := uniq[j.key]; !ok {
			uniq[j.key] = j.cfg
			keys = append(keys, j.key)
		}
	}
	tracesByKey := make(map[string]*traces.Trace, len(keys))
	var mu sync.Mutex
	var firstErr error
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(keys)) {
		wg.Go(func() {
			for k := range next {
				tr, err := simulateTrace(ctx, uniq[k])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				tracesByKey[k] = tr
				mu.Unlock()
			}
		})
	}
	for _, k := range keys {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	points := make([]roofline.ValidationPoint, 0, len(jobs))
	for _, j := range jobs {
		p, err := j.predict(tracesByKey[j.key], j.dev)
		if err != nil {
			return nil, nil, err
		}
		points = append(points, roofline.NewValidationPoint(j.m, p))
	}
	return points, tracesByKey, nil
}

func simulateTrace(ctx context.Context, c kernels.Config) (*traces.Trace, error) {
	p, err := kernels.Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := p.Step(ctx, true)
	if err != nil {
		return nil, err
	}
	return res.Trace, nil
}

func printValidation(w io.Writer, o validateOutput, quiet bool) {
	for _, f := range o.Files {
		n := 0
		for _, p := range o.Points {
			if strings.HasPrefix(p.Source, f.Name+":") {
				n++
			}
		}
		fmt.Fprintf(w, "%s: %d measurements\n", f.Name, n)
		for _, c := range f.Comments {
			if strings.HasPrefix(c, "command:") || strings.HasPrefix(c, "gpu:") || strings.HasPrefix(c, "source:") {
				fmt.Fprintf(w, "  %s\n", c)
			}
		}
	}
	if !quiet {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "source\tdevice\tmethod\timpl\tvariant\tB\tH\tHkv\tD\tS\tr\tk\tlayout\tmeasured\tpredicted\terror\t")
		hostBound := 0
		for _, p := range o.Points {
			r, k := "", ""
			if p.Method == kernels.MethodSparQ {
				r, k = fmt.Sprint(p.R), fmt.Sprint(p.K)
			}
			pred := units.Seconds(p.PredictedSeconds)
			if p.HostBound {
				pred += " h"
				hostBound++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%+.1f%%\t\n",
				p.Source, p.Device, p.Method, p.Impl, p.Variant, p.Batch, p.Heads, p.KVHeads, p.HeadDim,
				units.Count(float64(p.Seq)), r, k, p.KLayout, units.Seconds(p.Seconds), pred, 100*p.RelError)
		}
		tw.Flush()
		if hostBound > 0 {
			fmt.Fprintf(w, "h: %d eager rows predicted host-bound (their host_seconds exceeds the predicted device time)\n", hostBound)
		}
	}
	printSummaries(w, "error by device and method", o.Groups, false)
	printSummaries(w, "error by device, method, variant and K layout", o.Variants, true)
	s := o.Summary
	fmt.Fprintf(w, "\nall %d points: median |error| %.1f%%, max |error| %.1f%% (%s)\n", s.Points, 100*s.MedianAbsError, 100*s.MaxAbsError, s.Worst)
	for _, r := range o.Fits {
		printLevelFit(w, r)
	}
	if len(o.Plots) > 0 {
		fmt.Fprintf(w, "wrote %s\n", strings.Join(o.Plots, ", "))
	}
}

func printSummaries(w io.Writer, title string, groups []roofline.ErrorSummary, variants bool) {
	fmt.Fprintf(w, "\n%s (error = (predicted − measured) / measured):\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if variants {
		fmt.Fprintln(tw, "device\tmethod\timpl\tvariant\tlayout\tpoints\tmedian |err|\tmax |err|\tmedian err\tworst\t")
	} else {
		fmt.Fprintln(tw, "device\tmethod\tpoints\tmedian |err|\tmax |err|\tmedian err\tworst\t")
	}
	for _, g := range groups {
		if variants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", g.Device, g.Method, g.Impl, g.Variant, g.KLayout)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t", g.Device, g.Method)
		}
		fmt.Fprintf(tw, "%d\t%.1f%%\t%.1f%%\t%+.1f%%\t%s\t\n", g.Points, 100*g.MedianAbsError, 100*g.MaxAbsError, 100*g.MedianError, g.Worst)
	}
	tw.Flush()
}

// writePointsCSV writes every point: the measurement's columns, then the
// prediction, the error and each predicted stage's time.
func writePointsCSV(w io.Writer, points []roofline.ValidationPoint) error {
	rows := make([]roofline.Measurement, len(points))
	for i, p := range points {
		rows[i] = p.Measurement
	}
	var b strings.Builder
	if err := roofline.WriteMeasurements(&b, nil, rows); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(points)+1 {
		// A field with a line break: write the measurement columns only.
		_, err := io.WriteString(w, b.String())
		return err
	}
	if _, err := fmt.Fprintf(w, "%s,source,predicted_seconds,ideal_seconds,rel_error,stages\n", lines[0]); err != nil {
		return err
	}
	for i, p := range points {
		st := make([]string, len(p.Stages))
		for j, s := range p.Stages {
			st[j] = fmt.Sprintf("%s=%.4g(%s)", s.Name, s.Seconds, s.Bound)
		}
		if _, err := fmt.Fprintf(w, "%s,%s,%.6g,%.6g,%.6g,%s\n", lines[i+1], csvField(p.Source), p.PredictedSeconds, p.IdealSeconds, p.RelError, strings.Join(st, ";")); err != nil {
			return err
		}
	}
	return nil
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
