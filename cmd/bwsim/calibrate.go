package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/config"
	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
)

func init() { extraCommands = append(extraCommands, newCalibrateCmd) }

func newCalibrateCmd() *cobra.Command {
	var (
		out     string
		quick   bool
		asJSON  bool
		workers int
	)
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "measure this host and write it as the device \"host\"",
		Long: `calibrate measures this machine: read bandwidth from memory with all cores
and with one, LLC bandwidth, memory and LLC latency (random pointer chase),
the cost of fanning a stage out to all cores and joining, and the in-cache
dot-product and exp rates of Go code. It writes the result as a device file
for the device "host" (default $XDG_CONFIG_HOME/bwsim/host.yaml, or
$BWSIM_HOST_FILE), which every later command loads over the embedded catalog.
It takes a few seconds (about one with --quick).`,
		Example: `  bwsim calibrate
  bwsim calibrate --quick --out -
  bwsim calibrate --out host.yaml && bwsim devices show host --device-file host.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 0 {
				return badInput("--workers %d: must be positive (0: GOMAXPROCS)", workers)
			}
			lo, err := deviceLoadOptions(cmd)
			if err != nil {
				return err
			}
			path := out
			if path == "" {
				if path, err = config.HostFilePath(""); err != nil {
					return asUsage(err)
				}
			}
			if path != "-" {
				if err := checkOutputFile(path); err != nil {
					if out == "" {
						return badInput("host file %s: %v (choose another with --out)", path, err)
					}
					return badInput("--out %s: %v", path, err)
				}
			}
			// Check the user's device files and overrides before measuring
			// (the host file is what this command replaces).
			pre := lo
			pre.SkipHostFile = true
			if _, err := config.LoadDevices(pre); err != nil {
				return asUsage(err)
			}
			opts := hwmodel.CalibrateOptions{}
			if quick {
				opts = hwmodel.QuickCalibrateOptions()
			}
			opts.Workers = workers
			opts.Log = cmd.ErrOrStderr()
			// Measure bandwidth with the kernels' own vector loop: the
			// host model then describes what bwsim's kernels can reach.
			opts.ReadKernel, opts.ReadKernelName = kernels.Sum, "kernels.Sum ("+kernels.SIMD()+")"
			d, rep, err := hwmodel.Calibrate(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if path == "-" {
				_, err := cmd.OutOrStdout().Write(config.EncodeDevice(d))
				return err
			}
			if err := config.WriteDeviceFile(path, d); err != nil {
				return err
			}
			// Check that later commands see it (with this command's overrides).
			lo.HostFile, lo.SkipHostFile = path, false
			c, err := config.LoadDevices(lo)
			if err != nil {
				return asUsage(fmt.Errorf("wrote %s, but loading it back failed: %w", path, err))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), struct {
					Report hwmodel.Report  `json:"report"`
					Device *hwmodel.Device `json:"device"`
					Path   string          `json:"path"`
				}{rep, d, path})
			}
			printCalibration(cmd.OutOrStdout(), rep)
			loaded, err := c.Get("host")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s; later commands load it as device \"host\" (loaded from: %s)\n", path, loaded.Origin)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&out, "out", "", "write the host device file here (\"-\": print it); default $BWSIM_HOST_FILE or $XDG_CONFIG_HOME/bwsim/host.yaml")
	fs.BoolVar(&quick, "quick", false, "smaller buffers and fewer repeats (about a second; memory figures may include LLC hits)")
	fs.BoolVar(&asJSON, "json", false, "print the measurements and the device as JSON")
	fs.IntVar(&workers, "workers", 0, "goroutines for the multi-core tests (0: GOMAXPROCS)")
	addDeviceFlags(fs)
	return cmd
}

func printCalibration(w io.Writer, r hwmodel.Report) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	host, _ := os.Hostname()
	p("%s: %s, %d CPUs, %d workers, %s (%.1f s)", host, r.CPUModel, r.CPUs, r.Workers, r.Date, r.Elapsed.Seconds())
	p("  caches: %s lines, L2 %s, LLC %s (%s); memory %s",
		units.Bytes(float64(r.LineBytes)), units.Bytes(float64(r.L2Bytes)), units.Bytes(float64(r.LLCBytes)), r.CacheSource, units.Bytes(float64(r.MemoryBytes)))
	p("  memory read, %d workers:  %s median, %s best of %d (buffer %s)", r.Workers,
		units.Bandwidth(r.ReadBandwidth.Median), units.Bandwidth(r.ReadBandwidth.Best), len(r.ReadBandwidth.Samples), units.Bytes(float64(r.DRAMBufferBytes)))
	p("  memory read, 1 worker:    %s median, %s best", units.Bandwidth(r.SingleReadBandwidth.Median), units.Bandwidth(r.SingleReadBandwidth.Best))
	p("  LLC read, %d workers:     %s median, %s best (buffer %s)", r.Workers,
		units.Bandwidth(r.LLCReadBandwidth.Median), units.Bandwidth(r.LLCReadBandwidth.Best), units.Bytes(float64(r.LLCBufferBytes)))
	p("  memory latency:           %s (random pointer chase, TLB misses included)", units.Seconds(r.DRAMLatency))
	p("  LLC latency:              %s", units.Seconds(r.LLCLatency))
	p("  stage fan-out + join:     %s", units.Seconds(r.StageOverhead))
	p("  blas32.Dot in cache:      %s (best), %s median", units.Flops(r.DotRate.Best), units.Flops(r.DotRate.Median))
	p("  math.Exp:                 %.3g evaluations/s", r.ExpRate)
	for _, n := range r.Notes {
		p("  note: %s", n)
	}
}
