package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

// benchOutput is the JSON document `bwsim bench --json` prints.
type benchOutput struct {
	Config kernels.Config `json:"config"`
	// SIMD is the instruction set of the kernels' vector primitives.
	SIMD       string `json:"simd"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Workers    int    `json:"workers"`
	Warmup     int    `json:"warmup"`
	Runs       int    `json:"runs"`

	// Seconds is the median untraced step; TracedSeconds the median traced
	// one; TraceOverhead = TracedSeconds/Seconds − 1.
	Seconds          float64 `json:"seconds"`
	MinSeconds       float64 `json:"min_seconds"`
	MaxSeconds       float64 `json:"max_seconds"`
	TracedSeconds    float64 `json:"traced_seconds"`
	TracedMinSeconds float64 `json:"traced_min_seconds"`
	TracedMaxSeconds float64 `json:"traced_max_seconds"`
	TraceOverhead    float64 `json:"trace_overhead"`

	// HostReadBytes is what one step reads on the host (the sampled pairs'
	// float32 data; see hostReadBytes); GBps = HostReadBytes/Seconds/1e9.
	HostReadBytes int64   `json:"host_read_bytes"`
	GBps          float64 `json:"gbps"`

	// ReadBandwidthGBps is the host's read bandwidth measured in this run
	// (median of ReadBandwidth's samples, taken before and after the timed
	// steps), BandwidthFraction = GBps / ReadBandwidthGBps.
	ReadBandwidthGBps float64        `json:"read_bandwidth_gbps"`
	BandwidthFraction float64        `json:"bandwidth_fraction"`
	ReadBandwidth     *bandwidthInfo `json:"read_bandwidth,omitempty"`
	// Calibrate is hwmodel.Calibrate's all-worker read bandwidth over the
	// same buffer size (blas32.Dot, SSE), for comparison; absent with
	// --calibrate=false.
	Calibrate *calibrateInfo `json:"calibrate,omitempty"`

	// DumpDir is where --dump-inputs wrote the inputs and outputs.
	DumpDir string `json:"dump_dir,omitempty"`
}

type bandwidthInfo struct {
	Method      string    `json:"method"`
	BufferBytes int64     `json:"buffer_bytes"`
	Workers     int       `json:"workers"`
	SamplesGBps []float64 `json:"samples_gbps"`
	MedianGBps  float64   `json:"median_gbps"`
	BestGBps    float64   `json:"best_gbps"`
}

type calibrateInfo struct {
	BufferBytes    int64     `json:"buffer_bytes"`
	ReadGBps       float64   `json:"read_gbps"`        // median
	ReadBestGBps   float64   `json:"read_best_gbps"`   // best
	LLCReadGBps    float64   `json:"llc_read_gbps"`    // median
	SingleReadGBps float64   `json:"single_read_gbps"` // one goroutine, median
	SamplesGBps    []float64 `json:"samples_gbps"`
}

func newBenchCmd() *cobra.Command {
	var (
		wf        workloadFlags
		asJSON    bool
		warmup    int
		runs      int
		workers   int
		bwRuns    int
		bwBytes   string
		calibrate bool
		dumpDir   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "time the real kernel on this host and compare it with the host's read bandwidth",
		Long: `bench prepares one decode step's data (the workload flags are those of run),
times the kernel untraced and traced (warm-up steps, then the median of
several), and measures the host's read bandwidth in the same run: the
kernels' vector read loop over a buffer as large as the data the step reads
(ReadBandwidth, before and after the timed steps) and, unless
--calibrate=false, hwmodel.Calibrate's read test over the same size.

gbps is the host bytes one step reads (float32 data of the sampled pairs,
folded to 64-byte lines) divided by the median untraced time.
bandwidth_fraction divides it by the measured read bandwidth.

--dump-inputs DIR writes the sampled pairs' q, K, V (float32 .npy, bitwise
what the kernel read), the kernel's outputs and meta.json, for
scripts/peer_torch.py to run the same step in PyTorch.`,
		Example: `  bwsim bench --method dense --impl fused --dtype fp32 --seq 32k --heads 32 --head-dim 128 --sample-heads 32 --no-append --json
  bwsim bench --method sparq --r 32 --k 128 --dtype fp32 --seq 32k --heads 32 --sample-heads 32 --no-append
  bwsim bench --method dense --dtype fp32 --seq 4k --dump-inputs /tmp/dense4k`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if warmup < 0 || runs < 1 || bwRuns < 1 || workers < 0 {
				return badInput("--warmup must be ≥ 0, --runs and --bw-runs ≥ 1, --workers ≥ 0")
			}
			c, err := wf.config()
			if err != nil {
				return err
			}
			c.Workers = workers
			var bufBytes int64
			if bwBytes != "" {
				n, err := parseCount("bw-bytes", bwBytes)
				if err != nil {
					return err
				}
				bufBytes = int64(n)
			}
			out, err := runBench(cmd.Context(), c, benchOptions{
				warmup: warmup, runs: runs, bwRuns: bwRuns, bwBytes: bufBytes,
				calibrate: calibrate, dumpDir: dumpDir, log: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			printBench(cmd.OutOrStdout(), out)
			return nil
		},
	}
	wf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	fs.IntVar(&warmup, "warmup", 2, "untimed steps before each timing")
	fs.IntVar(&runs, "runs", 7, "timed steps (the median is reported)")
	fs.IntVar(&workers, "workers", 0, "goroutines of the kernel and of the bandwidth test (0: GOMAXPROCS)")
	fs.IntVar(&bwRuns, "bw-runs", 5, "read-bandwidth passes before and after the timed steps (each)")
	fs.StringVar(&bwBytes, "bw-bytes", "", "buffer of the read-bandwidth test, e.g. 1024m (default: the bytes one step reads, at least 64 MiB)")
	fs.BoolVar(&calibrate, "calibrate", true, "also run hwmodel.Calibrate's read test over the same buffer size")
	fs.StringVar(&dumpDir, "dump-inputs", "", "write the sampled pairs' q, K, V and the kernel's outputs as .npy files to this directory")
	return cmd
}

type benchOptions struct {
	warmup, runs, bwRuns int
	bwBytes              int64
	calibrate            bool
	dumpDir              string
	log                  io.Writer
}

func runBench(ctx context.Context, c kernels.Config, o benchOptions) (*benchOutput, error) {
	logf := func(format string, a ...any) { fmt.Fprintf(o.log, "bench: "+format+"\n", a...) }
	if o.dumpDir != "" {
		// Refuse an unwritable --dump-inputs before any timed work.
		if err := checkOutputDir(o.dumpDir); err != nil {
			return nil, badInput("--dump-inputs %s: %v", o.dumpDir, err)
		}
	}
	logf("preparing %s", describe(c))
	p, err := kernels.Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	c = p.Config
	out := &benchOutput{Config: c, SIMD: kernels.SIMD(), GOMAXPROCS: runtime.GOMAXPROCS(0), Workers: c.Workers, Warmup: o.warmup, Runs: o.runs}

	// One traced step gives the bytes read (and, with --dump-inputs, the
	// outputs to compare against).
	res, err := p.Step(ctx, true)
	if err != nil {
		return nil, err
	}
	out.HostReadBytes, err = hostReadBytes(res.Trace, c.DType)
	if err != nil {
		return nil, err
	}
	bufBytes := o.bwBytes
	if bufBytes <= 0 {
		bufBytes = max(out.HostReadBytes, 64<<20)
	}

	bw := &bandwidthInfo{Method: "kernels.ReadBandwidth: " + out.SIMD + " vector sum of each worker's part", BufferBytes: bufBytes, Workers: c.Workers}
	measureBW := func() error {
		s, err := kernels.ReadBandwidth(ctx, bufBytes, c.Workers, o.bwRuns)
		for _, x := range s {
			bw.SamplesGBps = append(bw.SamplesGBps, x/1e9)
		}
		runtime.GC() // give the buffer back before the kernel runs
		return err
	}
	logf("read bandwidth over %s", units.Bytes(float64(bufBytes)))
	if err := measureBW(); err != nil {
		return nil, err
	}

	logf("timing %d+%d untraced steps", o.warmup, o.runs)
	t, err := p.Time(ctx, false, o.warmup, o.runs)
	if err != nil {
		return nil, err
	}
	out.Seconds, out.MinSeconds, out.MaxSeconds = t.Median.Seconds(), t.Min.Seconds(), t.Max.Seconds()
	logf("timing %d+%d traced steps", o.warmup, o.runs)
	tt, err := p.Time(ctx, true, o.warmup, o.runs)
	if err != nil {
		return nil, err
	}
	out.TracedSeconds, out.TracedMinSeconds, out.TracedMaxSeconds = tt.Median.Seconds(), tt.Min.Seconds(), tt.Max.Seconds()
	out.TraceOverhead = out.TracedSeconds/out.Seconds - 1
	out.GBps = float64(out.HostReadBytes) / out.Seconds / 1e9

	if o.dumpDir != "" {
		logf("writing inputs and outputs to %s", o.dumpDir)
		if err := dumpInputs(o.dumpDir, p, res, out); err != nil {
			return nil, err
		}
		out.DumpDir = o.dumpDir
	}

	logf("read bandwidth again")
	if err := measureBW(); err != nil {
		return nil, err
	}
	bw.MedianGBps = median(bw.SamplesGBps)
	bw.BestGBps = slices.Max(bw.SamplesGBps)
	out.ReadBandwidth = bw
	out.ReadBandwidthGBps = bw.MedianGBps
	out.BandwidthFraction = out.GBps / out.ReadBandwidthGBps

	if o.calibrate {
		logf("hwmodel.Calibrate read test over %s", units.Bytes(float64(bufBytes)))
		_, rep, err := hwmodel.Calibrate(ctx, hwmodel.CalibrateOptions{
			Workers: c.Workers, DRAMBytes: bufBytes, LLCBytes: 8 << 20, Repeats: 2 * o.bwRuns,
			LatencyHops: 1 << 12, OverheadReps: 50, ComputeSeconds: 0.01,
		})
		if err != nil {
			return nil, err
		}
		ci := &calibrateInfo{BufferBytes: rep.DRAMBufferBytes, ReadGBps: rep.ReadBandwidth.Median / 1e9, ReadBestGBps: rep.ReadBandwidth.Best / 1e9,
			LLCReadGBps: rep.LLCReadBandwidth.Median / 1e9, SingleReadGBps: rep.SingleReadBandwidth.Median / 1e9}
		for _, x := range rep.ReadBandwidth.Samples {
			ci.SamplesGBps = append(ci.SamplesGBps, x/1e9)
		}
		out.Calibrate = ci
	}
	return out, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// hostReadBytes is what one traced step of the sampled pairs reads on the
// host. The host holds every value as float32 (indices as int32): for an
// fp32 target the trace's reads, folded to 64-byte cache lines, are exactly
// the host's; for fp16/bf16 targets each tensor's requested bytes are scaled
// by 4/element size instead (line folding of half-width gathers does not
// carry over).
func hostReadBytes(tr *traces.Trace, dt kernels.DType) (int64, error) {
	var total float64
	for i := range tr.Stages {
		tts, err := tr.Fold(i, 64)
		if err != nil {
			return 0, err
		}
		for _, tt := range tts {
			if dt == kernels.FP32 {
				total += float64(tt.Read.Moved)
				continue
			}
			total += float64(tt.Read.Requested) * 4 / float64(tr.Tensors[tt.Tensor].ElemBytes)
		}
	}
	// Fold scales to the full shape; the host ran the sampled pairs.
	return int64(total/tr.Scale.Factor() + 0.5), nil
}

// dumpMeta is dump_dir/meta.json: what the .npy files hold.
type dumpMeta struct {
	Config kernels.Config `json:"config"`
	// Pairs are the sampled (batch, kv_head) pairs, in the order of the
	// first axis of every array.
	Pairs [][2]int `json:"pairs"`
	// Files maps each array to its file and shape.
	Files map[string]dumpFile `json:"files"`
	Bench *benchOutput        `json:"bench"`
	Note  string              `json:"note"`
}

type dumpFile struct {
	File  string `json:"file"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

// dumpInputs writes the prepared data and one step's outputs.
func dumpInputs(dir string, p *kernels.Prepared, res *kernels.Result, b *benchOutput) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := p.Config
	g, D, S := c.Shape.Group(), c.Shape.HeadDim, c.Shape.Seq
	data := p.Data()
	P := len(data)
	meta := dumpMeta{Config: c, Files: map[string]dumpFile{}, Bench: b,
		Note: "float32 arrays are bitwise the values the kernel read (already rounded to the target dtype); out is one untraced-equivalent step's output"}
	for _, o := range res.Outputs {
		meta.Pairs = append(meta.Pairs, [2]int{o.Batch, o.KVHead})
	}
	writeF32 := func(name string, shape []int, part func(i int) []float32) error {
		meta.Files[name] = dumpFile{File: name + ".npy", Shape: shape, DType: "<f4"}
		return writeNpy(filepath.Join(dir, name+".npy"), "<f4", shape, func(w io.Writer) error {
			for i := range P {
				if err := binary.Write(w, binary.LittleEndian, part(i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := writeF32("q", []int{P, g, D}, func(i int) []float32 { return data[i].Q }); err != nil {
		return err
	}
	if err := writeF32("k", []int{P, S, D}, func(i int) []float32 { return data[i].K }); err != nil {
		return err
	}
	if err := writeF32("v", []int{P, S, D}, func(i int) []float32 { return data[i].V }); err != nil {
		return err
	}
	if err := writeF32("out", []int{P, g, D}, func(i int) []float32 { return res.Outputs[i].Out }); err != nil {
		return err
	}
	if c.Spec.Method == kernels.MethodSparQ {
		k := len(res.Outputs[0].Selected)
		meta.Files["selected"] = dumpFile{File: "selected.npy", Shape: []int{P, k}, DType: "<i4"}
		err := writeNpy(filepath.Join(dir, "selected.npy"), "<i4", []int{P, k}, func(w io.Writer) error {
			for _, o := range res.Outputs {
				if err := binary.Write(w, binary.LittleEndian, o.Selected); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := writeF32("alpha", []int{P, g}, func(i int) []float32 { return res.Outputs[i].Alpha }); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(dir, "meta.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(meta)
	})
}

// writeNpy writes a C-order NumPy .npy file (format 1.0) of the given
// element type ("<f4", "<i4") and shape; body writes the little-endian data.
func writeNpy(path, descr string, shape []int, body func(io.Writer) error) error {
	dims := make([]string, len(shape))
	for i, n := range shape {
		dims[i] = fmt.Sprint(n)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// Magic (6) + version (2) + length (2) + header + '\n', padded with
	// spaces to a multiple of 64 bytes.
	pad := 64 - (10+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := io.WriteString(w, "\x93NUMPY\x01\x00"); err != nil {
			return err
		}
		if err := binary.Write(w, binary.LittleEndian, uint16(len(header))); err != nil {
			return err
		}
		if _, err := io.WriteString(w, header); err != nil {
			return err
		}
		return body(w)
	})
}

func printBench(w io.Writer, o *benchOutput) {
	fmt.Fprintln(w, describe(o.Config))
	fmt.Fprintf(w, "%d sampled pairs of %d; %d workers (GOMAXPROCS %d); vector code %s\n\n",
		o.Config.SampleHeads, o.Config.Shape.Pairs(), o.Workers, o.GOMAXPROCS, o.SIMD)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tmedian\tmin\tmax\tread\t\n")
	fmt.Fprintf(tw, "untraced\t%s\t%s\t%s\t%.1f GB/s\t\n", units.Seconds(o.Seconds), units.Seconds(o.MinSeconds), units.Seconds(o.MaxSeconds), o.GBps)
	fmt.Fprintf(tw, "traced\t%s\t%s\t%s\t%+.1f%%\t\n", units.Seconds(o.TracedSeconds), units.Seconds(o.TracedMinSeconds), units.Seconds(o.TracedMaxSeconds), 100*o.TraceOverhead)
	tw.Flush()
	fmt.Fprintf(w, "\nhost bytes read per step %s\n", units.Bytes(float64(o.HostReadBytes)))
	if bw := o.ReadBandwidth; bw != nil {
		fmt.Fprintf(w, "host read bandwidth %.1f GB/s (median of %d, best %.1f; %s over %s): kernel at %.0f%%\n",
			bw.MedianGBps, len(bw.SamplesGBps), bw.BestGBps, o.SIMD, units.Bytes(float64(bw.BufferBytes)), 100*o.BandwidthFraction)
	}
	if ci := o.Calibrate; ci != nil {
		fmt.Fprintf(w, "hwmodel.Calibrate read %.1f GB/s (median; best %.1f; one goroutine %.1f) over %s\n",
			ci.ReadGBps, ci.ReadBestGBps, ci.SingleReadGBps, units.Bytes(float64(ci.BufferBytes)))
	}
	if o.DumpDir != "" {
		fmt.Fprintf(w, "inputs and outputs written to %s\n", o.DumpDir)
	}
}
