package config

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/atomicfile"
)

// WriteDeviceFile writes d as a device file (the format of the package
// documentation, a devices map with one entry) to path, atomically: it
// writes a temporary file in the same directory and renames it over path
// (internal/atomicfile).
// Missing directories are created. d must pass Validate.
func WriteDeviceFile(path string, d *hwmodel.Device) error {
	if d == nil {
		return fmt.Errorf("write device file %s: nil device", path)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("write device file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(EncodeDevice(d))
		return err
	})
}

// EncodeDevice renders d as a device file in YAML, fields in a fixed order,
// levels by tier.
func EncodeDevice(d *hwmodel.Device) []byte {
	var b bytes.Buffer
	w := func(indent int, format string, a ...any) {
		for i := 0; i < indent; i++ {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, format, a...)
		b.WriteByte('\n')
	}
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	str := strconv.Quote

	w(0, "# bwsim device file; format: go doc github.com/bwsim/bwsim/config")
	w(0, "devices:")
	w(1, "%s:", d.Name)
	w(2, "description: %s", str(d.Description))
	w(2, "kind: %s", d.Kind)
	w(2, "memory_levels:")
	for _, l := range d.OrderedLevels() {
		w(3, "%s:", l.Name)
		w(4, "role: %s", l.Role)
		w(4, "tier: %d", l.Tier)
		w(4, "capacity_bytes: %s", num(l.CapacityBytes))
		w(4, "peak_bandwidth: %s", num(l.PeakBandwidth))
		w(4, "achievable_bandwidth: %s", num(l.AchievableBandwidth))
		w(4, "granularity_bytes: %d", l.GranularityBytes)
		w(4, "latency_seconds: %s", num(l.LatencySeconds))
		if l.DMA {
			w(4, "dma: true")
		}
		if l.TransferOverheadSeconds != 0 {
			w(4, "transfer_overhead_seconds: %s", num(l.TransferOverheadSeconds))
		}
		if len(l.KernelBandwidth) > 0 {
			w(4, "kernel_bandwidth:")
			for _, k := range slices.Sorted(maps.Keys(l.KernelBandwidth)) {
				w(5, "%s: %s", str(k), num(l.KernelBandwidth[k]))
			}
		}
		if len(l.KernelLoops) > 0 {
			w(4, "kernel_loops:")
			for _, k := range slices.Sorted(maps.Keys(l.KernelLoops)) {
				w(5, "%s:", str(k))
				for _, kind := range l.KernelLoops[k].Kinds() {
					if st := kind.Step; st != (hwmodel.LoopStep{}) {
						w(6, "%s: {seconds: %s, seconds_per_byte: %s, seconds_per_element: %s}", kind.Name,
							num(st.Seconds), num(st.SecondsPerByte), num(st.SecondsPerElement))
					}
				}
			}
		}
		w(4, "source: %s", str(l.Source))
	}
	if len(d.Compute) == 0 {
		w(2, "compute: []")
	} else {
		w(2, "compute:")
	}
	for _, c := range d.Compute {
		floor, kernel := "", ""
		if c.FloorSeconds != 0 {
			floor = ", floor_seconds: " + num(c.FloorSeconds)
		}
		if c.Kernel != "" {
			kernel = ", kernel: " + str(c.Kernel)
		}
		if c.Table == nil {
			w(3, "- {unit: %s%s, dtype: %s, ops_per_second: %s%s, source: %s}", str(c.Unit), kernel, str(c.DType), num(c.OpsPerSecond), floor, str(c.Source))
			continue
		}
		nums := func(xs []float64) string {
			s := make([]string, len(xs))
			for i, x := range xs {
				s[i] = num(x)
			}
			return "[" + strings.Join(s, ", ") + "]"
		}
		w(3, "- unit: %s", str(c.Unit))
		if c.Kernel != "" {
			w(4, "kernel: %s", str(c.Kernel))
		}
		if c.QueryRows != 0 {
			w(4, "query_rows: %d", c.QueryRows)
		}
		if c.HeadDim != 0 {
			w(4, "head_dim: %d", c.HeadDim)
		}
		if c.TileBytes != 0 {
			w(4, "tile_bytes: %d", c.TileBytes)
		}
		if c.TilesInFlight != 0 {
			w(4, "tiles_in_flight: %d", c.TilesInFlight)
		}
		if c.ParamLines != 0 {
			w(4, "param_lines: %d", c.ParamLines)
		}
		if c.ParamLineSeconds != 0 {
			w(4, "param_line_seconds: %s", num(c.ParamLineSeconds))
		}
		w(4, "dtype: %s", str(c.DType))
		w(4, "ops_per_second: %s", num(c.OpsPerSecond))
		if c.FloorSeconds != 0 {
			w(4, "floor_seconds: %s", num(c.FloorSeconds))
		}
		w(4, "table:")
		w(5, "rows: %s", nums(c.Table.Rows))
		w(5, "cols: %s", nums(c.Table.Cols))
		w(5, "seconds:")
		for _, row := range c.Table.Seconds {
			w(6, "- %s", nums(row))
		}
		if c.Table.Kernels != nil {
			w(5, "kernels:")
			for _, row := range c.Table.Kernels {
				w(6, "- %s", nums(row))
			}
		}
		w(4, "source: %s", str(c.Source))
	}
	w(2, "overheads:")
	w(3, "launch_seconds: %s", num(d.Overheads.LaunchSeconds))
	if d.Overheads.StreamLaunchSeconds != 0 {
		w(3, "stream_launch_seconds: %s", num(d.Overheads.StreamLaunchSeconds))
	}
	w(3, "sync_seconds: %s", num(d.Overheads.SyncSeconds))
	if d.Overheads.HostSyncSeconds != 0 {
		w(3, "host_sync_seconds: %s", num(d.Overheads.HostSyncSeconds))
	}
	w(3, "source: %s", str(d.Overheads.Source))
	w(2, "concurrency:")
	w(3, "parallel_units: %d", d.Concurrency.ParallelUnits)
	w(3, "work_units_per_parallel_unit: %d", d.Concurrency.WorkUnitsPerParallelUnit)
	w(3, "inflight_bytes_per_work_unit: %s", num(d.Concurrency.InflightBytesPerWorkUnit))
	if d.Concurrency.CompilerMapped {
		w(3, "compiler_mapped: true")
	}
	w(3, "source: %s", str(d.Concurrency.Source))
	if len(d.Links) == 0 {
		w(2, "links: []")
	} else {
		w(2, "links:")
	}
	for _, l := range d.Links {
		w(3, "- {name: %s, bandwidth_per_direction: %s, latency_seconds: %s, source: %s}", str(l.Name), num(l.BandwidthPerDirection), num(l.LatencySeconds), str(l.Source))
	}
	return b.Bytes()
}
