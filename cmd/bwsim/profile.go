package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/profiles"
	"github.com/bwsim/bwsim/roofline"
)

func init() { extraCommands = append(extraCommands, newProfileCmd) }

func newProfileCmd() *cobra.Command {
	var wf workloadFlags
	var device, cpuOut, transferOut string
	var duration time.Duration
	var traced bool
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "write pprof profiles of a kernel: host CPU time by stage, and data transfers on a device",
		Long: `profile writes two kinds of pprof profile of one decode step.

--cpu-profile runs the kernel on the host repeatedly for --duration under the
Go CPU profiler. Every stage carries the labels method, stage and, where one
tensor dominates the stage's traffic, tensor.

--transfer-profile records which bytes every stage moves and prices them on
--device. Its samples are stacks method ▸ stage ▸ tensor with labels method,
stage, tensor, role, direction (read/write) and level (where the tensor is
placed), and four values: transferred (bytes the kernel asked for, the
default), moved (bytes the memory level moves after folding to its access
granularity), predicted (nanoseconds on the device) and extents (runs of
bytes requested).

Both use the same label keys, so one -tagfocus works on either. Read them
with go tool pprof (see docs/profiling.md).`,
		Example: `  bwsim profile --method sparq --seq 8k --device h100-sxm --transfer-profile transfer.pb.gz --cpu-profile cpu.pprof
  go tool pprof -top transfer.pb.gz
  go tool pprof -top -tagfocus=stage=approx-scores cpu.pprof
  go tool pprof -http=:8080 transfer.pb.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cpuOut == "" && transferOut == "" {
				return badInput("nothing to write: give --cpu-profile FILE, --transfer-profile FILE or both")
			}
			if duration < 0 {
				return badInput("--duration %v: must not be negative", duration)
			}
			if cpuOut != "" && transferOut != "" && filepath.Clean(cpuOut) == filepath.Clean(transferOut) {
				return badInput("--cpu-profile and --transfer-profile name the same file %s", cpuOut)
			}
			for _, o := range []struct{ flag, path string }{{"cpu-profile", cpuOut}, {"transfer-profile", transferOut}} {
				if o.path == "" {
					continue
				}
				if err := checkWritable(o.path); err != nil {
					return badInput("--%s %s: %v", o.flag, o.path, err)
				}
			}
			c, err := wf.config()
			if err != nil {
				return err
			}
			cat, err := loadCatalog(cmd)
			if err != nil {
				return err
			}
			dev, err := cat.Get(device)
			if err != nil {
				return badInput("--device: %v", err)
			}

			ctx := cmd.Context()
			prep, err := kernels.Prepare(ctx, c)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, describe(prep.Config))
			res, err := prep.Step(ctx, true)
			if err != nil {
				return err
			}
			pred, err := roofline.Predict(res.Trace, dev, roofline.Options{})
			if err != nil {
				return asUsage(err)
			}
			fmt.Fprintf(w, "device %s: predicted %s per step (ideal %s)\n", dev.Name, units.Seconds(pred.Seconds), units.Seconds(pred.IdealSeconds))

			if transferOut != "" {
				p, err := profiles.Transfer(res.Trace, dev, pred, profiles.Options{Comments: []string{describe(prep.Config)}})
				if err != nil {
					return err
				}
				if err := atomicfile.Write(transferOut, p.Write); err != nil {
					return err
				}
				t := profiles.Totals(p)
				fmt.Fprintf(w, "wrote transfer profile %s: %s transferred, %s moved, %s predicted, %d extents\n", transferOut,
					units.Bytes(float64(t[profiles.IndexTransferred])), units.Bytes(float64(t[profiles.IndexMoved])),
					units.Seconds(float64(t[profiles.IndexPredicted])*1e-9), t[profiles.IndexExtents])
			}
			if cpuOut != "" {
				var steps int
				var elapsed time.Duration
				err := atomicfile.Write(cpuOut, func(f io.Writer) error {
					if err := pprof.StartCPUProfile(f); err != nil {
						return fmt.Errorf("start CPU profile: %w", err)
					}
					defer pprof.StopCPUProfile()
					start := time.Now()
					for steps == 0 || time.Since(start) < duration {
						if _, err := prep.Step(ctx, traced); err != nil {
							return err
						}
						steps++
					}
					elapsed = time.Since(start)
					return nil
				})
				if err != nil {
					return err
				}
				mode := "untraced"
				if traced {
					mode = "traced"
				}
				fmt.Fprintf(w, "wrote CPU profile %s: %d %s steps in %s on the host (%s per step)\n", cpuOut, steps, mode,
					units.Seconds(elapsed.Seconds()), units.Seconds(elapsed.Seconds()/float64(steps)))
			}
			return nil
		},
	}
	wf.register(cmd.Flags())
	addDeviceFlags(cmd.Flags())
	fl := cmd.Flags()
	fl.StringVar(&device, "device", "h100-sxm", "device the transfer profile is priced on (bwsim devices lists them)")
	fl.DurationVar(&duration, "duration", 2*time.Second, "CPU profile: repeat the step for at least this long (one step at least)")
	fl.StringVar(&cpuOut, "cpu-profile", "", "write a CPU profile of the host kernel, labelled by stage, to this file")
	fl.StringVar(&transferOut, "transfer-profile", "", "write a data-transfer profile (gzipped pprof protobuf) to this file")
	fl.BoolVar(&traced, "traced", false, "CPU profile: record the trace in every step, to see what tracing costs")
	return cmd
}

// checkWritable checks, before any work, that a file can be created at
// path: its directory exists and takes new files, and path is not a
// directory.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("is a directory")
	}
	return probeDir(dir)
}
