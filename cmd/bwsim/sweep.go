package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bwsim/bwsim/config"
	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/progress"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/report"
	"github.com/bwsim/bwsim/sweep"
)

func init() { extraCommands = append(extraCommands, newSweepCmd) }

// sweepFlags are the flags of bwsim sweep; each can also come from the
// sweep: section of the --config file.
type sweepFlags struct {
	// fromConfig maps the flags set from the --config file to the file.
	fromConfig map[string]string

	methods, seq, batch, devices, dtype, impl, layout, placement string
	workload, out, shard                                         string
	heads, kvHeads, headDim, sampleHeads, jobs, steps            int
	seed                                                         uint64
	noAppend, resume, quiet, noFigures                           bool
	tradeoff                                                     bool
	tradeoffDevice                                               string
	// changed reports whether a flag was given (on the command line or in
	// the --config file); nil: none was.
	changed func(name string) bool
}

// Defaults of bwsim sweep --tradeoff for the flags it leaves unset: one
// moderate shape (Llama-2-7B attention at S = 4K, batch 64, where attention
// is bound by memory bandwidth) and tradeoffSampleHeads sampled heads, so
// that the ~40 points take seconds.
var tradeoffDefaults = map[string]string{
	"seq":   "4k",
	"batch": "64",
}

// tradeoffSampleHeads is --sample-heads under --tradeoff unless set (or
// all pairs of a smaller shape).
const tradeoffSampleHeads = 16

func (f *sweepFlags) register(fs *pflag.FlagSet) {
	d := sweep.DefaultGrid()
	methods := make([]string, len(d.Methods))
	for i, m := range d.Methods {
		methods[i] = m.String()
	}
	fs.StringVar(&f.methods, "methods", strings.Join(methods, ","), "methods, comma-separated, NAME[:KEY=VALUE]...: dense, sparq:r=R:k=K, sparq:ratio=1/C,\n"+
		"topk, flexgen, h2o, window, quest, loki, doublesparse (keys: k token budget, r proxy size,\n"+
		"ratio=1/C, page, label-bits, sinks, layout=twice|once, impl=unfused|fused, realloc=false);\n"+
		"a value may be a range, A..B doubling (k=128..1024, ratio=1/2..1/16), or A|B alternatives\n"+
		"(with --tradeoff the default is each method over its range; see bwsim sweep --help)")
	fs.StringVar(&f.seq, "seq", "1k..128k", "sequence lengths: a list and ranges, e.g. 1k..128k (doubling), 4k,16k, 1k..8k:+1k")
	fs.StringVar(&f.batch, "batch", "1,64", "batch sizes, as --seq")
	fs.StringVar(&f.devices, "devices", strings.Join(d.Devices, ","), "devices to price every point on (see bwsim devices)")
	fs.StringVar(&f.dtype, "dtype", "fp16", "element types: fp16, bf16, fp32 (a list)")
	fs.IntVar(&f.heads, "heads", d.Heads, "query heads")
	fs.IntVar(&f.kvHeads, "kv-heads", 0, "key/value heads (default: heads; fewer for GQA)")
	fs.IntVar(&f.headDim, "head-dim", d.HeadDim, "head size d_h")
	fs.StringVar(&f.impl, "impl", "unfused", "kernel structure for methods that do not set impl: unfused, fused (a list)")
	fs.StringVar(&f.layout, "k-layout", "", "K storage for SparQ and Loki when the method does not set layout: twice, once (a list;\ndefault: SparQ twice, Loki once)")
	fs.StringVar(&f.placement, "placement", "", "where tensors live, [DEVICE:]ROLE=LEVEL, comma-separated, e.g. kv-cache=streaming\n(default: IPUs keep the KV cache in streaming memory, others the fastest level with room)")
	fs.StringVar(&f.workload, "workload", string(d.Workload), "synthetic data: gaussian or llm-like")
	fs.Uint64Var(&f.seed, "seed", d.Seed, "random seed of the synthetic workload")
	fs.IntVar(&f.sampleHeads, "sample-heads", 0, "simulate this many (sequence, kv-head) pairs per point and scale (0: automatic)")
	fs.BoolVar(&f.noAppend, "no-append", false, "leave out the stage that appends the current token's k and v")
	fs.IntVar(&f.steps, "steps", 1, "consecutive decode steps per point, the cache growing by one token each: rows price\nthe last step, fidelity is the mean over the steps")
	fs.BoolVar(&f.tradeoff, "tradeoff", false, "trade-off view: error and attention mass against transfer ratio and predicted speed-up,\n"+
		"Pareto front marked (tradeoff.csv, tradeoff.json, tradeoff-*.png/svg); defaults become\n"+
		"each method over its range at --seq 4k --batch 64 --sample-heads 16 (at most all pairs)")
	fs.StringVar(&f.tradeoffDevice, "tradeoff-device", "", "device of the trade-off view's speed-ups (default: the first of --devices)")
	fs.IntVarP(&f.jobs, "jobs", "j", 0, "points run at once (0: one per core)")
	fs.StringVarP(&f.out, "out", "o", "./bwsim-out", "output `DIR` (with --shard i/n: DIR/shard-i-of-n)")
	fs.BoolVar(&f.resume, "resume", false, "keep the points an interrupted sweep in the output directory finished; run the rest")
	fs.StringVar(&f.shard, "shard", "", "run slice `i/n` of the sweep (join the slices with bwsim sweep merge)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar and no table on stdout")
	fs.BoolVar(&f.noFigures, "no-figures", false, "write no PNG or SVG files (the report then has tables only)")
}

// applyConfig sets the flags the command line left unset from the sweep:
// section of the --config file.
func (f *sweepFlags) applyConfig(cmd *cobra.Command) error {
	if sets, err := cmd.Flags().GetStringArray("set"); err == nil {
		for _, kv := range sets {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(kv)), config.SweepSection+".") {
				return badInput("--set %s: sweep settings are flags of bwsim sweep (or keys of the --config file's sweep: section)", kv)
			}
		}
	}
	path, err := cmd.Flags().GetString("config")
	if err != nil || path == "" {
		return nil
	}
	s, err := config.LoadSweep(path)
	if err != nil {
		return asUsage(err)
	}
	vals := s.Flags()
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		fl := cmd.Flags().Lookup(name)
		if fl == nil {
			return badInput("%s: sweep.%s: not a setting of bwsim sweep", path, strings.ReplaceAll(name, "-", "_"))
		}
		if fl.Changed {
			continue
		}
		if err := fl.Value.Set(vals[name]); err != nil {
			return badInput("%s: sweep.%s: %v", path, strings.ReplaceAll(name, "-", "_"), err)
		}
		if f.fromConfig == nil {
			f.fromConfig = map[string]string{}
		}
		f.fromConfig[name] = path
	}
	return nil
}

// where names a setting in errors: the flag, or the config file's key
// when the value came from there.
func (f *sweepFlags) where(flag string) string {
	if path, ok := f.fromConfig[flag]; ok {
		return path + ": sweep." + strings.ReplaceAll(flag, "-", "_")
	}
	return "--" + flag
}

// grid checks every flag and returns the grid.
func (f *sweepFlags) grid() (sweep.Grid, error) {
	var errs []error
	bad := func(flag string, err error) { errs = append(errs, fmt.Errorf("%s: %w", f.where(flag), err)) }
	if f.tradeoff {
		f.tradeoffDefaults()
	}
	g := sweep.Grid{Heads: f.heads, KVHeads: f.kvHeads, HeadDim: f.headDim, Seed: f.seed, SampleHeads: f.sampleHeads, AppendKV: !f.noAppend, Steps: f.steps}
	if f.kvHeads == 0 {
		g.KVHeads = f.heads
	}
	fams, err := sweep.ParseFamilies([]string{f.methods})
	if err != nil {
		bad("methods", err)
	}
	for _, fam := range fams {
		g.Methods = append(g.Methods, fam.Methods...)
	}
	if f.steps < 1 {
		bad("steps", errors.New("must be positive"))
	}
	// parseCount's messages start with the flag; bad adds where the value
	// came from instead.
	count := func(flag string) func(string) (int, error) {
		return func(s string) (int, error) {
			n, err := parseCount(flag, s)
			if err != nil {
				return 0, errors.New(strings.TrimPrefix(err.Error(), "--"+flag+" "))
			}
			return n, nil
		}
	}
	if g.Seqs, err = sweep.ParseCounts([]string{f.seq}, count("seq")); err != nil {
		bad("seq", err)
	}
	if g.Batches, err = sweep.ParseCounts([]string{f.batch}, count("batch")); err != nil {
		bad("batch", err)
	}
	for _, s := range splitList(f.dtype) {
		dt, err := kernels.ParseDType(s)
		if err != nil {
			bad("dtype", err)
			continue
		}
		g.DTypes = appendNew(g.DTypes, dt)
	}
	for _, s := range splitList(f.impl) {
		if im := kernels.Impl(s); im == kernels.Unfused || im == kernels.Fused {
			g.Impls = appendNew(g.Impls, im)
		} else {
			bad("impl", fmt.Errorf("unknown impl %q (want unfused or fused)", s))
		}
	}
	for _, s := range splitList(f.layout) {
		if l := kernels.KLayout(s); l == kernels.KTwice || l == kernels.KOnce {
			g.Layouts = appendNew(g.Layouts, l)
		} else {
			bad("k-layout", fmt.Errorf("unknown k-layout %q (want twice or once)", s))
		}
	}
	if wl, err := kernels.ParseWorkload(f.workload); err != nil {
		bad("workload", err)
	} else {
		g.Workload = wl
	}
	for _, s := range splitList(f.devices) {
		g.Devices = appendNew(g.Devices, strings.ToLower(s))
	}
	for _, s := range splitList(f.placement) {
		p, err := sweep.ParsePlacement(s)
		if err != nil {
			bad("placement", err)
			continue
		}
		g.Placement = append(g.Placement, p)
	}
	for _, c := range []struct {
		flag string
		v    []string
	}{{"dtype", splitList(f.dtype)}, {"impl", splitList(f.impl)}, {"devices", splitList(f.devices)}} {
		if len(c.v) == 0 {
			bad(c.flag, errors.New("empty list"))
		}
	}
	if f.sampleHeads < 0 {
		bad("sample-heads", errors.New("must not be negative"))
	}
	if f.tradeoffDevice != "" && !f.tradeoff {
		bad("tradeoff-device", errors.New("only with --tradeoff"))
	}
	if f.tradeoff && len(g.Devices) > 0 {
		t := &sweep.TradeoffSettings{Device: strings.ToLower(strings.TrimSpace(f.tradeoffDevice))}
		if t.Device == "" {
			t.Device = g.Devices[0]
		} else if !slices.Contains(g.Devices, t.Device) {
			bad("tradeoff-device", fmt.Errorf("%q is not one of --devices (%s)", t.Device, strings.Join(g.Devices, ", ")))
		}
		// Dense is the reference of every ratio and speed-up.
		hasDense := false
		for _, fam := range fams {
			t.Families = append(t.Families, fam.Name)
			hasDense = hasDense || fam.Name == kernels.MethodDense
		}
		if !hasDense && len(fams) > 0 {
			g.Methods = append([]sweep.MethodSpec{{Name: kernels.MethodDense}}, g.Methods...)
			t.Families = append([]string{kernels.MethodDense}, t.Families...)
		}
		g.Tradeoff = t
		if f.changed == nil || !f.changed("sample-heads") {
			g.SampleHeads = tradeoffSampleHeads
			for _, b := range g.Batches {
				g.SampleHeads = min(g.SampleHeads, b*max(g.KVHeads, 1))
			}
		}
	}
	if f.jobs < 0 {
		bad("jobs", errors.New("must not be negative"))
	}
	if len(errs) > 0 {
		return g, &usageError{errors.Join(errs...)}
	}
	if err := g.Validate(); err != nil {
		return g, asUsage(err)
	}
	return g, nil
}

// tradeoffDefaults gives the flags --tradeoff changes the defaults of
// their trade-off values, unless they were set.
func (f *sweepFlags) tradeoffDefaults() {
	changed := func(name string) bool { return f.changed != nil && f.changed(name) }
	if !changed("methods") {
		f.methods = strings.Join(sweep.DefaultTradeoffMethods, ",")
	}
	for name, v := range tradeoffDefaults {
		if changed(name) {
			continue
		}
		switch name {
		case "seq":
			f.seq = v
		case "batch":
			f.batch = v
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func appendNew[T comparable](list []T, v T) []T {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// sweepDevices looks the grid's devices up in the catalog.
func sweepDevices(cat *hwmodel.Catalog, names []string) ([]*hwmodel.Device, error) {
	var devs []*hwmodel.Device
	var errs []error
	for _, n := range names {
		d, err := cat.Get(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("--devices: %w", err))
			continue
		}
		devs = append(devs, d)
	}
	if len(errs) > 0 {
		return nil, &usageError{errors.Join(errs...)}
	}
	return devs, nil
}

func newSweepCmd() *cobra.Command {
	var f sweepFlags
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "run a grid of methods × shapes, price it on several devices, write results, figures and a report",
		Long: `sweep runs every method at every shape (sequence length × batch × dtype) once
on the host, prices each trace on every device, and writes into the output
directory: results.csv, results.json and results.bench (Go benchmark format,
for benchstat), speed-up, time, roofline and transfer figures as PNG and SVG,
and index.html, a self-contained report. It prints the speed-ups over dense.

Without flags it draws the paper's kind of figure: Llama-2-7B attention
(32 heads of 128, fp16) at batch 1 and 64, S from 1K to 128K, dense against
SparQ r=32 k=128 and SparQ at 1/8, on a100-40gb, h100-sxm and ipu-bow.

Every finished point is recorded in DIR/journal.jsonl as it finishes, so an
interrupted sweep (Ctrl-C) keeps its rows: run the same command with
--resume to finish it. --shard i/n runs one slice (for a cluster's job
runner); bwsim sweep merge joins the slices.

Methods are NAME[:KEY=VALUE]... with the keys of bwsim run: k (every
method's token budget), r (the proxy size of sparq, loki and doublesparse),
page (quest), label-bits (doublesparse), sinks (window), layout, impl,
realloc, and ratio=1/C, which sizes the method to read about 1/C of dense's
KV-cache bytes at each shape (sparq, loki, doublesparse: r = d_h/C and
k = S/2C; h2o, window: k = S/C; quest: k = S·(1/C − 1/page)). A value may
be a range, A..B doubling (k=128..1024, ratio=1/2..1/16), or alternatives
A|B (label-bits=4|16): the item expands to one method per combination.

--tradeoff draws the trade-off view, the SparQ paper's Figure 1 at the
attention level: each method's output error and attention mass against the
fraction of the KV cache it reads and against its predicted speed-up on
--tradeoff-device, with the Pareto front marked, in tradeoff-error and
tradeoff-speedup (PNG, SVG), tradeoff.csv, tradeoff.json and index.html.
Each --methods item is one line of the view. Unless set, --tradeoff runs
every method over its range:
  ` + strings.Join(sweep.DefaultTradeoffMethods, "\n  ") + `
at --seq 4k --batch 64 with 16 sampled heads (about 15 s of CPU time).

--steps T simulates T consecutive decode steps per point (the cache
growing by one token each, H2O evicting as it goes): rows price the last
step and report the fidelity averaged over the steps.

Every flag can also be set in the sweep: section of the --config file
(snake_case keys: methods, seq, batch, devices, dtype, heads, kv_heads,
head_dim, impl, k_layout, placement, workload, seed, sample_heads,
no_append, jobs, out, steps, tradeoff, tradeoff_device); the command line
wins.`,
		Example: `  bwsim sweep
  bwsim sweep --methods dense,sparq:r=16:k=64,sparq:ratio=1/4 --seq 4k..64k --batch 8 --devices h100-sxm,h200
  bwsim sweep --methods dense,h2o:ratio=1/8,quest:k=512:page=16,doublesparse:r=16:label-bits=4 --steps 8
  bwsim sweep --tradeoff --devices a100-40gb,h100-sxm --tradeoff-device h100-sxm
  bwsim sweep --tradeoff --methods sparq:r=8..64:k=128,h2o:k=128..1024 --seq 16k
  bwsim sweep --placement kv-cache=sram --devices ipu-bow --seq 1k..16k
  bwsim sweep --shard 3/8 --out results && bwsim sweep merge results/shard-*`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.applyConfig(cmd); err != nil {
				return err
			}
			f.changed = func(name string) bool {
				_, fromConfig := f.fromConfig[name]
				return cmd.Flags().Changed(name) || fromConfig
			}
			return runSweep(cmd, &f)
		},
	}
	f.register(cmd.Flags())
	addDeviceFlags(cmd.Flags())
	cmd.AddCommand(newSweepMergeCmd())
	return cmd
}

func runSweep(cmd *cobra.Command, f *sweepFlags) error {
	g, err := f.grid()
	if err != nil {
		return err
	}
	var shard sweep.Shard
	if f.shard != "" {
		if shard, err = sweep.ParseShard(f.shard); err != nil {
			return badInput("--shard: %v", err)
		}
	}
	cat, err := loadCatalog(cmd)
	if err != nil {
		return err
	}
	devs, err := sweepDevices(cat, g.Devices)
	if err != nil {
		return err
	}
	if _, err := sweep.ResolvePlacement(g.Placement, devs); err != nil {
		return badInput("--placement: %v", err)
	}
	if err := checkOutputDir(f.out); err != nil {
		return badInput("--out %s: %v", f.out, err)
	}
	dir := f.out
	if shard.Count > 1 {
		dir = filepath.Join(dir, fmt.Sprintf("shard-%d-of-%d", shard.Index, shard.Count))
	}

	stderr := cmd.ErrOrStderr()
	var bar *progress.Bar
	if !f.quiet {
		if fl, ok := stderr.(*os.File); ok && progress.Enabled(fl) {
			bar = progress.New(stderr, len(shard.Select(g.Points())), "points")
		}
	}
	start := time.Now()
	res, runErr := sweep.Run(cmd.Context(), g, devs, sweep.Options{
		Jobs: f.jobs, Dir: dir, Resume: f.resume, Shard: shard,
		Progress: func(p sweep.Progress) { bar.Update(p.Done, p.Last) },
	})
	bar.Finish()
	if res == nil {
		return runErr
	}
	if res.Done > 0 || runErr == nil {
		files, err := report.Write(dir, res, report.Options{Command: commandLine(cmd), NoFigures: f.noFigures})
		if err != nil {
			return err
		}
		if !f.quiet {
			printSummary(cmd.OutOrStdout(), res)
		}
		printWritten(stderr, dir, res, files, time.Since(start))
	}
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			return fmt.Errorf("%w; the finished points are in %s: run the same command with --resume to finish", runErr, dir)
		}
		return runErr
	}
	return nil
}

// commandLine is the command as the user typed it, for the report.
func commandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		parts = append(parts, "--"+fl.Name+"="+shellQuote(fl.Value.String()))
	})
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " '\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printSummary prints each device's speed-ups, or the trade-off table
// of a trade-off sweep.
func printSummary(w io.Writer, res *sweep.Results) {
	if res.Grid.Tradeoff != nil {
		if t, err := sweep.BuildTradeoff(res, ""); err == nil {
			printTradeoff(w, t)
			return
		}
	}
	misfit := false
	for i, t := range report.Summaries(res) {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: speed-up over dense (ideal)\n", t.Device)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := "dtype\tbatch\tS\tdense time\t"
		for _, m := range t.Methods {
			hdr += m + "\t"
		}
		fmt.Fprintln(tw, hdr)
		for _, l := range t.Lines {
			dense := "–"
			if l.DenseSeconds > 0 {
				dense = units.Seconds(l.DenseSeconds)
			}
			line := fmt.Sprintf("%s\t%d\t%s\t%s\t", l.DType, l.Batch, units.Count(float64(l.Seq)), dense)
			for _, c := range l.Cells {
				line += c.String() + "\t"
				misfit = misfit || (c.Present && !c.Fits)
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
	if misfit {
		fmt.Fprintln(w, "\n* the KV cache does not fit in the device's memory: priced as if it did")
	}
}

// printTradeoff prints the trade-off view, a line per point.
func printTradeoff(w io.Writer, t *sweep.Tradeoff) {
	multi := false
	for _, p := range t.Points {
		p0 := t.Points[0]
		multi = multi || p.Seq != p0.Seq || p.Batch != p0.Batch || p.DType != p0.DType
	}
	if len(t.Points) == 0 {
		return
	}
	head := "trade-off against dense, speed-ups on " + t.Device
	if p := t.Points[0]; !multi {
		head += fmt.Sprintf(", batch %d, S = %s, %s", p.Batch, units.Count(float64(p.Seq)), p.DType)
	}
	if p := t.Points[0]; p.Steps > 1 {
		head += fmt.Sprintf(", %d decode steps (the last one priced, fidelity averaged)", p.Steps)
	}
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := "method\t"
	if multi {
		hdr += "dtype\tbatch\tS\t"
	}
	fmt.Fprintln(tw, hdr+"r\tk\ttransfer\trel. error\tmass\tspeed-up (ideal)\tfront")
	misfit := false
	for _, p := range t.Points {
		line := p.Label + "\t"
		if multi {
			line += fmt.Sprintf("%s\t%d\t%s\t", p.DType, p.Batch, units.Count(float64(p.Seq)))
		}
		front := ""
		if p.FrontTransfer {
			front += "T"
		}
		if p.FrontSpeedup {
			front += "S"
		}
		if front == "" {
			front = "–"
		}
		speed := "–"
		if p.Speedup > 0 {
			speed = fmt.Sprintf("%.3g× (%.3g×)", p.Speedup, p.IdealSpeedup)
			if !p.Fits {
				speed += "*"
				misfit = true
			}
		}
		line += fmt.Sprintf("%s\t%s\t%.3g\t%.3g\t%.3g\t%s\t%s", dash(p.R), dash(p.K), p.TransferRatio, p.RelL2Error, p.MassCovered, speed, front)
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "transfer: KV-cache bytes read over dense's; front: on the Pareto front of error against transfer (T) and speed-up (S)")
	if misfit {
		fmt.Fprintln(w, "* the KV cache does not fit in the device's memory: priced as if it did")
	}
}

func dash(n int) string {
	if n == 0 {
		return "–"
	}
	return strconv.Itoa(n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// printWritten says where the outputs went.
func printWritten(w io.Writer, dir string, res *sweep.Results, files []report.File, took time.Duration) {
	shapes := len(res.Grid.Seqs) * len(res.Grid.Batches) * len(res.Grid.DTypes)
	fmt.Fprintf(w, "bwsim sweep: %d of %d points (%s × %s), priced on %s, in %s\n",
		res.Done, res.Points, plural(len(res.Grid.Variants()), "method"), plural(shapes, "shape"), plural(len(res.Devices), "device"), took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "wrote %s:\n", filepath.Clean(dir))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range files {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Name, f.What)
	}
	tw.Flush()
	fmt.Fprintf(w, "open %s in a browser for the report\n", filepath.Join(dir, report.IndexName))
}

func newSweepMergeCmd() *cobra.Command {
	var out string
	var partial, noFigures, quiet bool
	cmd := &cobra.Command{
		Use:   "merge DIR...",
		Short: "join the outputs of the shards of a sweep",
		Long: `merge reads results.json from each shard's output directory, checks that
they come from the same sweep on the same device models, joins their rows,
recomputes the speed-ups and writes every output of a sweep (results,
figures, index.html) into --out. It refuses an incomplete set of shards
unless --allow-partial.`,
		Example: `  bwsim sweep merge results/shard-*
  bwsim sweep merge --out all run1/shard-1-of-2 run2/shard-2-of-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var parts []*sweep.Results
			for _, dir := range args {
				r, err := sweep.ReadFile(filepath.Join(dir, sweep.JSONName))
				if err != nil {
					return asUsage(err)
				}
				parts = append(parts, r)
			}
			start := time.Now()
			res, missing, err := sweep.Merge(parts)
			if err != nil {
				return asUsage(err)
			}
			if !res.Complete && !partial {
				msg := fmt.Sprintf("merge: %d of %d points present", res.Done, res.Points)
				if len(missing) > 0 {
					msg += "; missing or unfinished shards: " + strings.Join(missing, ", ")
				}
				return badInput("%s (use --allow-partial to merge anyway)", msg)
			}
			files, err := report.Write(out, res, report.Options{Command: commandLine(cmd) + " " + strings.Join(args, " "), NoFigures: noFigures})
			if err != nil {
				return err
			}
			if !quiet {
				printSummary(cmd.OutOrStdout(), res)
			}
			printWritten(cmd.ErrOrStderr(), out, res, files, time.Since(start))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "./bwsim-out", "output `DIR`")
	cmd.Flags().BoolVar(&partial, "allow-partial", false, "merge even when shards are missing or unfinished")
	cmd.Flags().BoolVar(&noFigures, "no-figures", false, "write no PNG or SVG files")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no table on stdout")
	return cmd
}
