package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/models"
	"github.com/bwsim/bwsim/planner"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/sweep"
)

func init() { extraCommands = append(extraCommands, newPlanCmd) }

// planFlags are the flags of bwsim plan.
type planFlags struct {
	model, modelFile, device, seq, batch, methods string
	weightDType, kvDType, level, link, out        string
	devices, kernelsPerLayer                      int
	reserve, target, latencyMS                    float64
	curve, asJSON, kernelWorkUnits                bool
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "plan whole-model decoding: memory, largest batch, tokens/s, devices for a target",
		Long: `plan answers capacity questions for one model on one device or a
tensor-parallel group: the memory per device (weights, KV cache with SparQ's
transposed K copy and v̄, activations, a reserve), the largest batch that
fits, the time of one decode step split into weights, attention, other
arithmetic, tensor-parallel communication and overheads, tokens per second
per device and for the group, and how many devices a target rate needs.
Dense attention and each sparse method are planned side by side: SparQ moves
fewer bytes per step but stores K twice, so fewer sequences fit.

Attention is priced from real traces: the kernel runs one layer's attention
for one device's share of the heads at the batch and context length, and the
trace is priced on the device and multiplied by the layers. The weights are
read once per step at the memory's achievable bandwidth, overlapped with the
linear layers' arithmetic; tensor parallelism adds two ring all-reduces per
layer and an all-gather of the logits over the device's fastest link.`,
		Example: `  bwsim plan --model llama-2-70b --device h100-sxm --devices 8 --seq 32k
  bwsim plan --model llama-2-7b --device h100-pcie --seq 16k --batch 1 --methods dense,sparq:ratio=1/8
  bwsim plan --model llama-3-70b --device h200 --devices 4 --seq 8k --latency-ms 50 --target-tokens-per-second 10000
  bwsim plan --model-file ~/Mistral-7B-v0.1/config.json --device a100-80gb --seq 32k --out plan-out
  bwsim plan --model llama-2-7b --device-file docs/devices/epyc-7763.yaml --device epyc-7763 \
      --weight-dtype q8_0 --seq 32k --batch 1 --methods dense,sparq:r=11:k=2731:impl=fused:realloc=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(cmd)
			if err != nil {
				return err
			}
			if f.out != "" {
				if err := checkOutputDir(f.out); err != nil {
					return badInput("--out %s: %v", f.out, err)
				}
			}
			p, err := planner.Plan(cmd.Context(), req)
			if err != nil {
				if cmd.Context().Err() != nil {
					return err
				}
				return asUsage(err)
			}
			if f.out != "" {
				paths, err := planner.WriteOutputs(f.out, p)
				if err != nil {
					return err
				}
				if !f.asJSON {
					defer fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s\n", strings.Join(paths, ", "))
				}
			}
			if f.asJSON {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			return printPlan(cmd.OutOrStdout(), p)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.model, "model", "", "model from the catalog (see bwsim models); with --model-file, the imported model's name")
	fs.StringVar(&f.modelFile, "model-file", "", "plan the model of a Hugging Face config.json `FILE` instead")
	fs.StringVar(&f.device, "device", "", "device (see bwsim devices)")
	fs.IntVar(&f.devices, "devices", 1, "tensor-parallel group size")
	fs.StringVar(&f.seq, "seq", "", "context length, e.g. 4096, 32k")
	fs.StringVar(&f.batch, "batch", "auto", "sequences per step, or auto: the largest that fits (and meets --latency-ms)")
	fs.StringVar(&f.methods, "methods", "dense,sparq:ratio=1/8", "methods side by side, comma-separated: dense, sparq:r=R:k=K or sparq:ratio=1/C,\nwith optional :layout=once, :impl=fused, :realloc=false (the first is the speed-ups' reference)")
	fs.Float64Var(&f.target, "target-tokens-per-second", 0, "also report the devices needed for this many tokens per second")
	fs.Float64Var(&f.latencyMS, "latency-ms", 0, "most milliseconds one decode step may take (limits the batch)")
	fs.StringVar(&f.weightDType, "weight-dtype", "", "weight element type (default: the model's): "+strings.Join(models.WeightDTypes(), ", "))
	fs.StringVar(&f.kvDType, "kv-dtype", "", "KV cache and activation element type (default: the model's): "+strings.Join(models.KVDTypes(), ", "))
	fs.Float64Var(&f.reserve, "reserve", roofline.DefaultReserve, "fraction of device memory held back for the runtime and fragmentation")
	fs.StringVar(&f.level, "level", "", "memory level for weights and KV cache (default: the fastest the weights fit in)")
	fs.StringVar(&f.link, "link", "", "device link for tensor-parallel collectives (default: the fastest)")
	fs.IntVar(&f.kernelsPerLayer, "kernels-per-layer", roofline.DefaultKernelsPerLayer, "non-attention kernels per layer, each paying the device's launch overhead")
	fs.BoolVar(&f.kernelWorkUnits, "kernel-work-units", false, "price attention stages with the work units the kernels declare (SparQ: one program per\n(sequence, KV head), like the paper's Triton kernels) instead of tiling the sequence\nover thread blocks (256 positions each), as torch.compile'd and flash-decoding kernels do")
	fs.BoolVar(&f.curve, "curve", false, "also compute tokens/s at every power-of-two batch (implied by --out)")
	fs.StringVar(&f.out, "out", "", "write plan.json and the tokens/s-vs-batch figure (PNG, SVG) into `DIR`")
	fs.BoolVar(&f.asJSON, "json", false, "print the plan as JSON (plans[] per method)")
	addDeviceFlags(fs)
	return cmd
}

// request validates the flags and loads the model and device.
func (f *planFlags) request(cmd *cobra.Command) (planner.Request, error) {
	var req planner.Request
	if f.device == "" {
		return req, badInput("--device is required (see bwsim devices)")
	}
	if f.seq == "" {
		return req, badInput("--seq is required, e.g. --seq 32k")
	}
	seq, err := parseCount("seq", f.seq)
	if err != nil {
		return req, err
	}
	batch := 0
	if b := strings.TrimSpace(f.batch); b != "auto" {
		if batch, err = strconv.Atoi(b); err != nil || batch < 1 {
			return req, badInput("--batch %q: want a positive whole number or auto", f.batch)
		}
	}
	if f.devices < 1 {
		return req, badInput("--devices must be at least 1, got %d", f.devices)
	}
	if !(f.target >= 0) || math.IsInf(f.target, 0) {
		return req, badInput("--target-tokens-per-second must be a positive number, got %v", f.target)
	}
	if !(f.latencyMS >= 0) || math.IsInf(f.latencyMS, 0) {
		return req, badInput("--latency-ms must be a positive number, got %v", f.latencyMS)
	}
	methods, err := sweep.ParseMethods([]string{f.methods})
	if err != nil {
		return req, badInput("--methods: %v", err)
	}
	var m *models.Model
	switch {
	case f.modelFile != "":
		if m, err = readModelFile(f.modelFile, f.model); err != nil {
			return req, err
		}
	case f.model != "":
		mc, err := loadModels(cmd)
		if err != nil {
			return req, err
		}
		if m, err = mc.Get(f.model); err != nil {
			return req, badInput("--model: %v", err)
		}
	default:
		return req, badInput("--model or --model-file is required (see bwsim models)")
	}
	cat, err := loadCatalog(cmd)
	if err != nil {
		return req, err
	}
	dev, err := cat.Get(f.device)
	if err != nil {
		return req, badInput("--device: %v", err)
	}
	req = planner.Request{
		PlanSpec: roofline.PlanSpec{
			Model: m, Device: dev, Devices: f.devices, Seq: seq,
			WeightDType: f.weightDType, KVDType: f.kvDType, Reserve: f.reserve, Level: f.level, Link: f.link,
			KernelsPerLayer: f.kernelsPerLayer, Batch: batch, LatencyLimit: f.latencyMS / 1e3,
			TargetTokensPerSecond: f.target, Curve: f.curve || f.out != "",
		},
		Methods: methods, KernelWorkUnits: f.kernelWorkUnits,
	}
	return req, nil
}

// printPlan writes the plan as two tables, methods side by side.
func printPlan(w io.Writer, p *roofline.CapacityPlan) error {
	group := p.Device
	if p.Devices > 1 {
		group = fmt.Sprintf("%d × %s (tensor parallel)", p.Devices, p.Device)
	}
	heads := fmt.Sprintf("%d query and %d KV heads per device", p.Shard.Heads, p.Shard.KVHeads)
	fmt.Fprintf(w, "%s on %s, seq %s: %s\n", p.Model, group, units.Count(float64(p.Seq)), heads)
	fmt.Fprintf(w, "weights %s, KV cache %s; %s %s per device, %.0f%% reserved; %d non-attention kernels per layer\n",
		p.WeightDType, p.KVDType, p.Level, units.Bytes(p.CapacityBytes), 100*p.Reserve, p.KernelsPerLayer)
	if l := p.Link; l != nil {
		latency := "no latency given"
		if l.LatencySeconds > 0 {
			latency = "latency " + units.Seconds(l.LatencySeconds)
		}
		fmt.Fprintf(w, "tensor parallel over %s, %s per direction, %s: %s sent per token per device\n",
			l.Name, units.Bandwidth(l.BandwidthPerDirection), latency, units.Bytes(l.CommBytesPerToken))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)

	// Labels are padded to one width so that, in a right-aligned table,
	// they read left-aligned.
	const labelWidth = 34
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, cell func(mp roofline.MethodPlan) string) {
		fmt.Fprintf(tw, "%-*s\t", labelWidth, label)
		for _, mp := range p.Plans {
			fmt.Fprintf(tw, "%s\t", cell(mp))
		}
		fmt.Fprintln(tw)
	}
	bytes := func(f func(mp roofline.MethodPlan) float64) func(roofline.MethodPlan) string {
		return func(mp roofline.MethodPlan) string { return units.Bytes(f(mp)) }
	}
	secs := func(f func(mp roofline.MethodPlan) float64) func(roofline.MethodPlan) string {
		return func(mp roofline.MethodPlan) string { return units.Seconds(f(mp)) }
	}
	row("memory per device", func(mp roofline.MethodPlan) string { return mp.Method })
	row("KV cache per token (whole model)", bytes(func(mp roofline.MethodPlan) float64 { return mp.KVBytesPerToken }))
	row("memory per sequence", bytes(func(mp roofline.MethodPlan) float64 { return mp.BytesPerSequence }))
	row("largest batch that fits", func(mp roofline.MethodPlan) string { return strconv.Itoa(mp.MaxBatch) })
	row("planned batch", func(mp roofline.MethodPlan) string { return strconv.Itoa(mp.Batch) })
	row("  weights", bytes(func(mp roofline.MethodPlan) float64 { return mp.Memory.WeightBytes }))
	row("  KV cache", bytes(func(mp roofline.MethodPlan) float64 { return mp.Memory.KVCacheBytes }))
	for _, name := range kvTensorNames(p) {
		row("    "+name, func(mp roofline.MethodPlan) string {
			if b := mp.Memory.Tensor(name); b > 0 {
				return units.Bytes(b)
			}
			return "-"
		})
	}
	row("  activations", bytes(func(mp roofline.MethodPlan) float64 { return mp.Memory.ActivationBytes }))
	row("  reserve", bytes(func(mp roofline.MethodPlan) float64 { return mp.Memory.ReserveBytes }))
	row("  free", bytes(func(mp roofline.MethodPlan) float64 { return mp.Memory.FreeBytes }))
	row("", func(roofline.MethodPlan) string { return "" })
	row("time per token (one step)", secs(func(mp roofline.MethodPlan) float64 { return mp.SecondsPerToken }))
	row("  weights", secs(func(mp roofline.MethodPlan) float64 { return mp.Time.Weights }))
	row("  attention", secs(func(mp roofline.MethodPlan) float64 { return mp.Time.Attention }))
	row("  other arithmetic", secs(func(mp roofline.MethodPlan) float64 { return mp.Time.Arithmetic }))
	row("  communication", secs(func(mp roofline.MethodPlan) float64 { return mp.Time.Communication }))
	row("  overheads", secs(func(mp roofline.MethodPlan) float64 { return mp.Time.Overhead }))
	row("ideal (bytes at peak bandwidth)", secs(func(mp roofline.MethodPlan) float64 { return mp.IdealSecondsPerToken }))
	row("tokens/s (group)", func(mp roofline.MethodPlan) string { return fmt.Sprintf("%.4g", mp.TokensPerSecond) })
	row("tokens/s per device", func(mp roofline.MethodPlan) string { return fmt.Sprintf("%.4g", mp.TokensPerSecondPerDevice) })
	row("throughput vs "+p.Plans[0].Method, func(mp roofline.MethodPlan) string { return units.Ratio(mp.Speedup) })
	if p.TargetTokensPerSecond > 0 {
		row("devices for "+strconv.FormatFloat(p.TargetTokensPerSecond, 'f', -1, 64)+" tokens/s", func(mp roofline.MethodPlan) string {
			return fmt.Sprintf("%d (%d × %d)", mp.DevicesNeeded, mp.Replicas, p.Devices)
		})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, mp := range p.Plans {
		if len(mp.Curve) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: tokens/s (group) by batch, * beyond the memory wall\n", mp.Method)
		var cells []string
		for _, pt := range mp.Curve {
			mark := ""
			if !pt.Fits {
				mark = "*"
			}
			cells = append(cells, fmt.Sprintf("%d: %.4g%s", pt.Batch, pt.TokensPerSecond, mark))
		}
		fmt.Fprintln(w, "  "+strings.Join(cells, "  "))
	}
	return nil
}

// kvTensorNames lists the KV-cache tensors of every method, in first-seen
// order (K, Kt, V, Vmean, ...).
func kvTensorNames(p *roofline.CapacityPlan) []string {
	var names []string
	for _, mp := range p.Plans {
		for _, t := range mp.Memory.KVTensors {
			if !slices.Contains(names, t.Tensor) {
				names = append(names, t.Tensor)
			}
		}
	}
	return names
}
