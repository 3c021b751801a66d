package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
	"github.com/spf13/cobra"
)

// runOutput is the JSON document `bwsim run --json` prints.
type runOutput struct {
	Config   kernels.Config    `json:"config"`
	Trace    traces.Summary    `json:"trace"`
	Fidelity *kernels.Fidelity `json:"fidelity,omitempty"`
}

func newRunCmd() *cobra.Command {
	var wf workloadFlags
	var asJSON bool
	var traceOut string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run one decode step of a kernel on the host and report its data transfers",
		Long: `run executes one attention decode step (dense or SparQ) on the host CPU on
synthetic data, records the bytes every stage reads and writes in the
target's element size and layout, and compares a sparse method's output
with dense attention on the same data.`,
		Example: `  bwsim run --method sparq --r 32 --k 128 --seq 4k --batch 8
  bwsim run --method dense --impl fused --seq 32k --heads 32 --kv-heads 8 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := wf.config()
			if err != nil {
				return err
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
	return cmd
}

func describe(c kernels.Config) string {
	s := c.Shape
	desc := c.Spec.Method
	if c.Spec.Method == kernels.MethodSparQ {
		desc += fmt.Sprintf(" r=%d k=%d k-layout=%s", c.Spec.R, c.Spec.K, c.Spec.KLayout)
		if c.Spec.NoReallocation {
			desc += " no-realloc"
		}
	}
	return fmt.Sprintf("%s impl=%s  batch=%d heads=%d kv-heads=%d head-dim=%d seq=%s %s %s",
		desc, c.Spec.Impl, s.Batch, s.Heads, s.KVHeads, s.HeadDim, formatCount(s.Seq), c.DType, c.Workload)
}

func printRun(w io.Writer, o runOutput) {
	fmt.Fprintln(w, describe(o.Config))
	fmt.Fprintf(w, "simulated %d of %d (sequence, kv-head) pairs; byte counts scaled ×%.4g to the full shape\n\n",
		o.Trace.SampledPairs, o.Trace.TotalPairs, o.Trace.Scale)
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
	if f := o.Fidelity; f != nil {
		fmt.Fprintf(w, "\nfidelity vs dense (%d query heads): relative L2 error %.4g, mean α %.4f, attention mass covered %.4f, top-k recall %.4f\n",
			f.Heads, f.RelL2Error, f.AlphaMean, f.MassCovered, f.TopKRecall)
	}
}
