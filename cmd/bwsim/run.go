package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
	"github.com/spf13/cobra"
)

// runOutput is the JSON document `bwsim run --json` prints. With --steps
// above 1, trace (and the predictions) are the last step's, fidelity is the
// mean over the steps, and steps lists every step's trace and fidelity.
type runOutput struct {
	Config      kernels.Config         `json:"config"`
	Trace       traces.Summary         `json:"trace"`
	Fidelity    *kernels.Fidelity      `json:"fidelity,omitempty"`
	Steps       []runStep              `json:"steps,omitempty"`
	Predictions []*roofline.Prediction `json:"predictions,omitempty"`
	Measured    *hostMeasurement       `json:"measured,omitempty"`
}

// runStep is one step of a multi-step run.
type runStep struct {
	Step     int               `json:"step"`
	Seq      int               `json:"seq"`
	Trace    traces.Summary    `json:"trace"`
	Fidelity *kernels.Fidelity `json:"fidelity,omitempty"`
}

// hostMeasurement is the closed loop of --measure: the real kernel timed on
// the host beside the host model's prediction of it.
type hostMeasurement struct {
	Seconds          float64 `json:"seconds"`
	MinSeconds       float64 `json:"min_seconds"`
	Runs             int     `json:"runs"`
	PredictedSeconds float64 `json:"predicted_seconds"`
	// Error is (predicted − measured) / measured.
	Error float64 `json:"error"`
}

func newRunCmd() *cobra.Command {
	var wf workloadFlags
	var asJSON bool
	var traceOut string
	var devices, placement []string
	var measure, eager bool
	var runs int
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run one decode step of a kernel on the host and report its data transfers",
		Long: `run executes attention decode steps on the host CPU, on synthetic data or a
KV dump of a real model (--kv-dump), records the bytes every stage reads and
writes in the target's element size and layout, and compares a sparse
method's output with dense attention on the same data.

Methods: dense; sparq (--r query components, --k positions); topk (the
oracle: exact scores from all of K, the k best positions); flexgen (all of
K, k rows of V); h2o (heavy-hitter eviction into a cache of k tokens);
window (--sinks initial tokens and the most recent, k in all); quest (pages
of --page tokens ranked by min/max bounds, up to k tokens); loki (--r
principal components of the keys); doublesparse (--r static channels,
labels of --label-bits bits). --k is every method's token budget.

With --steps T the cache grows by one token per step (v̄ and H2O's scores
updated as a server would); the trace shown is the last step's, fidelity
the mean over the steps, and --json lists every step.`,
		Example: `  bwsim run --method sparq --r 32 --k 128 --seq 4k --batch 8
  bwsim run --method dense --impl fused --seq 32k --heads 32 --kv-heads 8 --json
  bwsim run --method sparq --materialize --rank-pass --seq 16k --batch 4 --device h100-sxm --eager
  bwsim run --method h2o --k 512 --steps 8
  bwsim run --method quest --k 256 --page 16 --kv-dump llama.safetensors --layer 16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := wf.config()
			if err != nil {
				return err
			}
			place, err := roofline.ParsePlacement(placement)
			if err != nil {
				return asUsage(err)
			}
			if len(placement) > 0 && len(devices) == 0 {
				return badInput("--placement places tensors on the devices of --device: give --device")
			}
			if traceOut != "" {
				if err := checkWritable(traceOut); err != nil {
					return badInput("--trace-out %s: %v", traceOut, err)
				}
			}
			var devs []*hwmodel.Device
			if len(devices) > 0 {
				cat, err := loadCatalog(cmd)
				if err != nil {
					return err
				}
				for _, name := range devices {
					d, err := cat.Get(name)
					if err != nil {
						return asUsage(err)
					}
					devs = append(devs, d)
				}
			}
			if measure {
				if !slices.Contains(devices, "host") {
					return badInput("--measure compares the host's measured time with its prediction: add --device host")
				}
				if c.DType != kernels.FP32 {
					return badInput("--measure times the host's float32 kernel: use --dtype fp32 so the trace counts the bytes the host moves")
				}
				if c.SampleHeads != 0 && int64(c.SampleHeads) != c.Shape.Pairs() {
					return badInput("--measure times every (sequence, kv-head) pair: leave --sample-heads unset")
				}
				if runs <= 0 {
					return badInput("--runs must be positive, got %d", runs)
				}
				c.SampleHeads = int(c.Shape.Pairs())
				// Every pair is simulated now: check the memory again.
				if _, _, err := kernels.Plan(c); err != nil {
					return badInput("--measure simulates every (sequence, kv-head) pair: %v", err)
				}
			}
			o, err := kernels.Simulate(cmd.Context(), c)
			if err != nil {
				return err
			}
			if traceOut != "" {
				if err := atomicfile.Write(traceOut, func(w io.Writer) error { return traces.Encode(w, o.Trace) }); err != nil {
					return err
				}
			}
			out := runOutput{Config: o.Config, Trace: traces.Summarize(o.Trace), Fidelity: o.Fidelity}
			for _, st := range o.Steps {
				out.Steps = append(out.Steps, runStep{Step: st.Step, Seq: st.Seq, Trace: traces.Summarize(st.Trace), Fidelity: st.Fidelity})
			}
			for _, d := range devs {
				p, err := roofline.Predict(o.Trace, d, roofline.Options{Placement: place, Stream: eager})
				if err != nil {
					return asUsage(err)
				}
				out.Predictions = append(out.Predictions, p)
				if measure && d.Name == "host" {
					m, err := measureHost(cmd.Context(), o.Config, runs)
					if err != nil {
						return err
					}
					m.PredictedSeconds = p.Seconds
					m.Error = (p.Seconds - m.Seconds) / m.Seconds
					out.Measured = m
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			printRun(cmd.OutOrStdout(), out)
			return nil
		},
	}
	wf.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of tables")
	cmd.Flags().StringVar(&traceOut, "trace-out", "", "also write the full trace (every extent) as versioned JSON to this file")
	cmd.Flags().StringSliceVar(&devices, "device", nil, "price the trace on these devices (comma-separated; see bwsim devices)")
	cmd.Flags().StringArrayVar(&placement, "placement", nil, "place a tensor role in a memory level, ROLE=LEVEL (e.g. kv-cache=streaming); repeatable")
	cmd.Flags().BoolVar(&measure, "measure", false, "with --device host: also time the real kernel on this machine and compare")
	cmd.Flags().IntVar(&runs, "runs", 15, "with --measure: timed runs (the median is reported)")
	cmd.Flags().BoolVar(&eager, "eager", false, "price the kernels as the host issues them one at a time into a stream (eager PyTorch) rather than replayed from a CUDA graph: each kernel, every one of a library top-k's included, at the device's stream launch figure where it lists one")
	addDeviceFlags(cmd.Flags())
	return cmd
}

func describe(c kernels.Config) string {
	s := c.Shape
	data := string(c.Workload)
	if c.KVDump != "" {
		data = fmt.Sprintf("kv-dump %s layer %d", c.KVDump, c.Layer)
	}
	steps := ""
	if c.Steps > 1 {
		steps = fmt.Sprintf(" steps=%d", c.Steps)
	}
	return fmt.Sprintf("%s impl=%s  batch=%d heads=%d kv-heads=%d head-dim=%d seq=%s%s %s %s",
		describeSpec(c.Spec), c.Spec.Impl, s.Batch, s.Heads, s.KVHeads, s.HeadDim, formatCount(s.Seq), steps, c.DType, data)
}

func printRun(w io.Writer, o runOutput) {
	fmt.Fprintln(w, describe(o.Config))
	fmt.Fprintf(w, "simulated %d of %d (sequence, kv-head) pairs; byte counts scaled ×%.4g to the full shape\n",
		o.Trace.SampledPairs, o.Trace.TotalPairs, o.Trace.Scale)
	if len(o.Steps) > 0 {
		fmt.Fprintf(w, "\n%d steps; the stage and tensor tables show the last one\n", len(o.Steps))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "step\tseq\tread\twritten\trel L2 error\tmass covered\ttop-k recall\t")
		for _, st := range o.Steps {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t", st.Step, st.Seq, units.Bytes(float64(st.Trace.ReadBytes)), units.Bytes(float64(st.Trace.WriteBytes)))
			if f := st.Fidelity; f != nil {
				fmt.Fprintf(tw, "%.4g\t%.4f\t%.4f\t\n", f.RelL2Error, f.MassCovered, f.TopKRecall)
			} else {
				fmt.Fprint(tw, "\t\t\t\n")
			}
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tread\twritten\twork units\tMACs\texps\t")
	for _, st := range o.Trace.Stages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t\n", st.Name, units.Bytes(float64(st.ReadBytes)), units.Bytes(float64(st.WriteBytes)),
			st.WorkUnits, st.Arith.MACs, st.Arith.Exps)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t\t\t\t\n", units.Bytes(float64(o.Trace.ReadBytes)), units.Bytes(float64(o.Trace.WriteBytes)))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tensor\trole\tsize\tread\twritten\t")
	for _, t := range o.Trace.Tensors {
		size := units.Bytes(float64(t.SizeBytes))
		if t.OnChip {
			size = "on chip"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", t.Name, t.Role, size, units.Bytes(float64(t.ReadBytes)), units.Bytes(float64(t.WriteBytes)))
	}
	tw.Flush()
	for _, p := range o.Predictions {
		fmt.Fprintf(w, "\n%s: %s per step (ideal %s); placement K in %s\n", p.Device, units.Seconds(p.Seconds), units.Seconds(p.IdealSeconds), p.Placement[kernels.TensorK])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "stage\tpredicted\tideal\tbound\tmemory\tcompute\toverhead\tmoved\t")
		for _, s := range p.Stages {
			var moved int64
			for _, l := range s.Levels {
				moved += l.MovedBytes
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, units.Seconds(s.Seconds), units.Seconds(s.IdealSeconds), s.Bound,
				units.Seconds(s.MemorySeconds), units.Seconds(s.ComputeSeconds), units.Seconds(s.OverheadSeconds), units.Bytes(float64(moved)))
		}
		tw.Flush()
	}
	if m := o.Measured; m != nil {
		fmt.Fprintf(w, "\nhost measured %s per step (median of %d, min %s), predicted %s: error %+.1f%%\n",
			units.Seconds(m.Seconds), m.Runs, units.Seconds(m.MinSeconds), units.Seconds(m.PredictedSeconds), 100*m.Error)
	}
	if f := o.Fidelity; f != nil {
		mean := ""
		if len(o.Steps) > 0 {
			mean = fmt.Sprintf(", mean over %d steps", len(o.Steps))
		}
		fmt.Fprintf(w, "\nfidelity vs dense (%d query heads%s): relative L2 error %.4g, mean α %.4f, attention mass covered %.4f, top-k recall %.4f\n",
			f.Heads, mean, f.RelL2Error, f.AlphaMean, f.MassCovered, f.TopKRecall)
	}
}

// measureHost times the untraced kernel on this machine.
func measureHost(ctx context.Context, c kernels.Config, runs int) (*hostMeasurement, error) {
	if runs <= 0 {
		return nil, badInput("--runs must be positive, got %d", runs)
	}
	p, err := kernels.Prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	t, err := p.Time(ctx, false, 2, runs)
	if err != nil {
		return nil, err
	}
	return &hostMeasurement{Seconds: t.Median.Seconds(), MinSeconds: t.Min.Seconds(), Runs: t.Runs}, nil
}
