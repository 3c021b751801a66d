package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/units"
)

func init() { extraCommands = append(extraCommands, newDevicesCmd) }

func newDevicesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "list the device catalog",
		Long: `devices lists the devices bwsim can price traces on: the embedded catalog
(A100, H100, H200, Graphcore IPU, and this host), the host file written by
bwsim calibrate, and your overrides (--config, --device-file, BWSIM_*
environment variables, --set). Each memory level that can hold the KV cache
gets one row. "bwsim devices show NAME" prints every figure with its source.`,
		Example: `  bwsim devices
  bwsim devices --json
  bwsim devices --set devices.h100-sxm.memory_levels.hbm.achievable_bandwidth=3.1e12
  bwsim devices show ipu-bow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadCatalog(cmd)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), c.Devices())
			}
			return printDevices(cmd.OutOrStdout(), c.Devices())
		},
	}
	addDeviceFlags(cmd.PersistentFlags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array with every figure of every device")
	cmd.AddCommand(newDevicesShowCmd())
	return cmd
}

func newDevicesShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "print one device with the source of every figure",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadCatalog(cmd)
			if err != nil {
				return err
			}
			d, err := c.Get(args[0])
			if err != nil {
				return badInput("%v", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printDevice(cmd.OutOrStdout(), d)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the device as JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printDevices prints one row per memory level that can hold the KV cache.
func printDevices(w io.Writer, devs []*hwmodel.Device) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tKIND\tKV LEVEL\tCAPACITY\tPEAK BW\tACHIEVABLE BW\tGRANULARITY\tLATENCY\tMATRIX FP16\tLAUNCH")
	for _, d := range devs {
		matrix := "-"
		if ops, ok := d.Peak("matrix", "fp16"); ok {
			matrix = units.Flops(ops)
		}
		for _, l := range d.MemoryLevels() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d B\t%s\t%s\t%s\n",
				d.Name, d.Kind, l.Name, units.DecimalBytes(l.CapacityBytes), units.Bandwidth(l.PeakBandwidth),
				units.Bandwidth(l.AchievableBandwidth), l.GranularityBytes, units.Seconds(l.LatencySeconds),
				matrix, units.Seconds(d.Overheads.LaunchSeconds))
		}
	}
	return tw.Flush()
}

// printDevice prints every figure of d with its source.
func printDevice(w io.Writer, d *hwmodel.Device) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	src := func(s string) {
		if s != "" {
			p("      source: %s", s)
		}
	}
	p("%s (%s): %s", d.Name, d.Kind, d.Description)
	p("  loaded from: %s", d.Origin)
	cu := d.Concurrency
	inflight := float64(cu.ParallelUnits*cu.WorkUnitsPerParallelUnit) * cu.InflightBytesPerWorkUnit

	p("\n  memory levels (tier 0 closest to compute):")
	for _, l := range d.OrderedLevels() {
		p("    %s (%s, tier %d)", l.Name, l.Role, l.Tier)
		p("      capacity %s, peak %s, achievable %s (%.0f%%), granularity %d B, latency %s",
			units.DecimalBytes(l.CapacityBytes), units.Bandwidth(l.PeakBandwidth), units.Bandwidth(l.AchievableBandwidth),
			100*l.AchievableBandwidth/l.PeakBandwidth, l.GranularityBytes, units.Seconds(l.LatencySeconds))
		if l.TransferOverheadSeconds > 0 {
			p("      transfer overhead %s per stage", units.Seconds(l.TransferOverheadSeconds))
		}
		for _, k := range slices.Sorted(maps.Keys(l.KernelBandwidth)) {
			p("      achievable for %s kernels: %s (%.0f%%)", k, units.Bandwidth(l.KernelBandwidth[k]), 100*l.KernelBandwidth[k]/l.PeakBandwidth)
		}
		for _, k := range slices.Sorted(maps.Keys(l.KernelLoops)) {
			for _, kind := range l.KernelLoops[k].Kinds() {
				st := kind.Step
				if !st.Measured() {
					continue
				}
				line := fmt.Sprintf("      %s loop step, %s: %s + %s per KiB", k, kind.Name, units.Seconds(st.Seconds), units.Seconds(1024*st.SecondsPerByte))
				if st.SecondsPerElement > 0 {
					line += fmt.Sprintf(" + %s per 1024 elements", units.Seconds(1024*st.SecondsPerElement))
				}
				p("%s", line)
			}
		}
		if l.LatencySeconds > 0 {
			p("      Little's-law ceiling at full occupancy: %s", units.Bandwidth(inflight/l.LatencySeconds))
		}
		src(l.Source)
	}

	p("\n  compute:")
	for _, c := range d.Compute {
		rate := units.Flops(c.OpsPerSecond)
		switch c.Unit {
		case "special":
			rate = strings.Replace(units.Flops(c.OpsPerSecond), "FLOP/s", " evaluations/s", 1)
		case "copy":
			pattern := "whole rows"
			if c.Kernel == hwmodel.CopyScattered {
				pattern = "scattered elements within rows"
			}
			rate = strings.Replace(units.Flops(c.OpsPerSecond), "FLOP/s", " elements/s", 1) + " copied (" + pattern + "), at least " + units.Seconds(c.FloorSeconds) + " a call"
		case "topk":
			rate = strings.Replace(units.Flops(c.OpsPerSecond), "FLOP/s", " elements/s", 1) + ", at least " + units.Seconds(c.FloorSeconds) + " a call"
		case hwmodel.UnitAttentionTile:
			rate = c.Kernel + ": " + strings.Replace(units.Flops(c.OpsPerSecond), "FLOP/s", " MAC/s", 1) + " of query tiles at the largest grid measured"
		case hwmodel.UnitTileLoads:
			rate = fmt.Sprintf("%s tiles loaded %s per thread block: %s at the largest grid measured (a table over %d block counts x %d loads per block)",
				units.Bytes(float64(c.TileBytes)), inFlight(c.TilesInFlight), units.Bandwidth(c.OpsPerSecond), len(c.Table.Rows), len(c.Table.Cols))
		case hwmodel.UnitMatmul:
			rate = fmt.Sprintf("%s, %d query rows, head dim %d: %s at the largest grid measured (a table over %d product counts x %d positions)",
				c.Kernel, c.QueryRows, c.HeadDim, strings.Replace(units.Flops(c.OpsPerSecond), "FLOP/s", " MAC/s", 1), len(c.Table.Rows), len(c.Table.Cols))
		}
		p("    %-7s %-4s  %s", c.Unit, c.DType, rate)
		src(c.Source)
	}

	p("\n  overheads per stage: launch %s, sync %s", units.Seconds(d.Overheads.LaunchSeconds), units.Seconds(d.Overheads.SyncSeconds))
	if d.Overheads.StreamLaunchSeconds > 0 {
		p("  a kernel the host issues into a stream (eager) instead of a graph: launch %s", units.Seconds(d.Overheads.StreamLaunchSeconds))
	}
	if d.Overheads.HostSyncSeconds > 0 {
		p("  a host-timed call (ending in a synchronize) adds %s", units.Seconds(d.Overheads.HostSyncSeconds))
	}
	src(d.Overheads.Source)

	p("\n  concurrency: %d parallel units x %d work units x %s in flight = %s in flight",
		cu.ParallelUnits, cu.WorkUnitsPerParallelUnit, units.DecimalBytes(cu.InflightBytesPerWorkUnit), units.DecimalBytes(inflight))
	src(cu.Source)

	if len(d.Links) > 0 {
		p("\n  links:")
		for _, l := range d.Links {
			lat := ""
			if l.LatencySeconds > 0 {
				lat = ", latency " + units.Seconds(l.LatencySeconds)
			}
			p("    %s: %s per direction%s", l.Name, units.Bandwidth(l.BandwidthPerDirection), lat)
			src(l.Source)
		}
	}
	return nil
}

// inFlight says how a tile-loads unit's blocks issue their tiles.
func inFlight(n int) string {
	if n <= 1 {
		return "one after another"
	}
	return fmt.Sprintf("%d in flight", n)
}
