package hwmodel

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// FieldError is one problem with one key of a device description. Key is the
// dotted path inside the device, as it is spelled in YAML
// ("memory_levels.hbm.peak_bandwidth", "compute[2].dtype").
type FieldError struct {
	Device string
	Key    string
	Msg    string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("device %q: %s", e.Device, e.Msg)
	}
	return fmt.Sprintf("device %q: %s: %s", e.Device, e.Key, e.Msg)
}

// levelSpec is a memory level a kind knows.
type levelSpec struct {
	name     string
	role     LevelRole
	required bool
}

// kindLevels lists, per kind, the memory levels a device may have, with the
// role each must have.
var kindLevels = map[Kind][]levelSpec{
	KindGPU: {{"hbm", RoleMemory, true}, {"l2", RoleCache, true}, {"smem", RoleOnChip, true}},
	KindIPU: {{"sram", RoleMemory, true}, {"streaming", RoleMemory, true}, {"exchange", RoleFabric, false}},
	KindCPU: {{"dram", RoleMemory, true}, {"llc", RoleCache, true}},
}

// Compute units and data types a device may list.
var (
	computeUnits  = []string{"vector", "matrix", "special", "topk", "softmax", "copy", UnitAttentionTile, UnitMatmul, UnitTileLoads, UnitBlockCode}
	computeDTypes = []string{"fp32", "fp16", "bf16", "fp8", "int8", "fp64", "tf32"}
)

var deviceNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ValidDeviceName reports whether name can name a device: lower-case letters,
// digits, '-' and '_', starting with a letter. Config keys are
// case-insensitive and dotted, so other names cannot be addressed.
func ValidDeviceName(name string) bool { return deviceNameRE.MatchString(name) }

// Validate checks that d is complete and physically possible: a known kind
// with exactly the memory levels that kind has (each with its role), positive
// capacities and bandwidths, achievable ≤ peak bandwidth, positive
// granularity, a latency under a second, known compute units and dtypes with
// positive rates, non-negative overheads, positive concurrency and links with
// positive bandwidth. It reports every problem it finds, each as a
// *FieldError joined with errors.Join.
func (d *Device) Validate() error {
	v := validator{dev: d.Name}
	if !ValidDeviceName(d.Name) {
		v.add("", "name %q: must be lower-case letters, digits, '-' or '_', starting with a letter", d.Name)
	}
	specs, ok := kindLevels[d.Kind]
	if !ok {
		v.add("kind", "unknown kind %q (known: cpu, gpu, ipu)", d.Kind)
	}
	v.levels(d, specs, ok)
	v.compute(d.Compute)
	v.nonNegative("overheads.launch_seconds", d.Overheads.LaunchSeconds)
	v.nonNegative("overheads.sync_seconds", d.Overheads.SyncSeconds)
	v.latency("overheads.stream_launch_seconds", d.Overheads.StreamLaunchSeconds)
	v.latency("overheads.host_sync_seconds", d.Overheads.HostSyncSeconds)
	c := d.Concurrency
	if c.ParallelUnits <= 0 {
		v.add("concurrency.parallel_units", "must be positive, got %d", c.ParallelUnits)
	}
	if c.WorkUnitsPerParallelUnit <= 0 {
		v.add("concurrency.work_units_per_parallel_unit", "must be positive, got %d", c.WorkUnitsPerParallelUnit)
	}
	v.positive("concurrency.inflight_bytes_per_work_unit", c.InflightBytesPerWorkUnit)
	seen := map[string]bool{}
	for i, l := range d.Links {
		key := fmt.Sprintf("links[%d]", i)
		if l.Name == "" {
			v.add(key+".name", "must not be empty")
		} else if seen[l.Name] {
			v.add(key+".name", "duplicate link %q", l.Name)
		}
		seen[l.Name] = true
		v.positive(key+".bandwidth_per_direction", l.BandwidthPerDirection)
		v.latency(key+".latency_seconds", l.LatencySeconds)
	}
	return v.err()
}

type validator struct {
	dev  string
	errs []error
}

func (v *validator) add(key, format string, a ...any) {
	v.errs = append(v.errs, &FieldError{Device: v.dev, Key: key, Msg: fmt.Sprintf(format, a...)})
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) positive(key string, x float64) {
	if !(x > 0) || math.IsInf(x, 0) {
		v.add(key, "must be positive, got %v", x)
	}
}

func (v *validator) nonNegative(key string, x float64) {
	if !(x >= 0) || math.IsInf(x, 0) {
		v.add(key, "must be zero or positive, got %v", x)
	}
}

func (v *validator) latency(key string, x float64) {
	if !(x >= 0) || x >= 1 {
		v.add(key, "must be at least 0 and under 1 second, got %v", x)
	}
}

func (v *validator) levels(d *Device, specs []levelSpec, kindOK bool) {
	if len(d.Levels) == 0 {
		v.add("memory_levels", "no memory levels")
	}
	known := map[string]levelSpec{}
	var names []string
	for _, s := range specs {
		known[s.name] = s
		names = append(names, s.name)
		if _, ok := d.Levels[s.name]; s.required && !ok {
			v.add("memory_levels."+s.name, "missing (a %s device needs levels %s)", d.Kind, requiredNames(specs))
		}
	}
	tiers := map[int]string{}
	for _, name := range sortedKeys(d.Levels) {
		l := d.Levels[name]
		key := "memory_levels." + name
		if kindOK {
			if s, ok := known[name]; !ok {
				v.add(key, "unknown level for a %s device (known: %s)", d.Kind, strings.Join(names, ", "))
			} else if l.Role != s.role {
				v.add(key+".role", "must be %q for level %s, got %q", s.role, name, l.Role)
			}
		}
		if l.Name != "" && l.Name != name {
			v.add(key+".name", "%q differs from the level's key %q", l.Name, name)
		}
		if l.Tier < 0 {
			v.add(key+".tier", "must be zero or positive, got %d", l.Tier)
		} else if other, dup := tiers[l.Tier]; dup {
			v.add(key+".tier", "tier %d is also used by level %s", l.Tier, other)
		} else {
			tiers[l.Tier] = name
		}
		v.positive(key+".capacity_bytes", l.CapacityBytes)
		v.positive(key+".peak_bandwidth", l.PeakBandwidth)
		v.positive(key+".achievable_bandwidth", l.AchievableBandwidth)
		if l.AchievableBandwidth > l.PeakBandwidth && l.PeakBandwidth > 0 {
			v.add(key+".achievable_bandwidth", "must not exceed peak_bandwidth %v, got %v", l.PeakBandwidth, l.AchievableBandwidth)
		}
		if l.GranularityBytes <= 0 {
			v.add(key+".granularity_bytes", "must be positive, got %d", l.GranularityBytes)
		}
		v.latency(key+".latency_seconds", l.LatencySeconds)
		v.latency(key+".transfer_overhead_seconds", l.TransferOverheadSeconds)
		for _, k := range slices.Sorted(maps.Keys(l.KernelBandwidth)) {
			bw, kk := l.KernelBandwidth[k], key+".kernel_bandwidth."+k
			if k == "" {
				v.add(key+".kernel_bandwidth", "names an empty kernel class")
				continue
			}
			v.positive(kk, bw)
			if bw > l.PeakBandwidth && l.PeakBandwidth > 0 {
				v.add(kk, "must not exceed peak_bandwidth %v, got %v", l.PeakBandwidth, bw)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(l.KernelLoops)) {
			kl, kk := l.KernelLoops[k], key+".kernel_loops."+k
			if k == "" {
				v.add(key+".kernel_loops", "names an empty kernel class")
				continue
			}
			if !kl.Rows.Measured() && !kl.Gather.Measured() {
				v.add(kk, "lists neither rows nor gather with seconds > 0")
			}
			for _, kind := range kl.Kinds() {
				v.loopStep(kk+"."+kind.Name, kind.Step, kind.Gather())
			}
		}
	}
}

// loopStep checks one loop-step cost: all of it absent, or a positive
// fixed part and finite non-negative rates (an element rate only for
// gathers, whose loads are single elements).
func (v *validator) loopStep(key string, s LoopStep, gather bool) {
	if s == (LoopStep{}) {
		return
	}
	v.positive(key+".seconds", s.Seconds)
	v.nonNegative(key+".seconds_per_byte", s.SecondsPerByte)
	v.nonNegative(key+".seconds_per_element", s.SecondsPerElement)
	if !gather && s.SecondsPerElement != 0 {
		v.add(key+".seconds_per_element", "applies to gathers only (rows load whole runs)")
	}
}

func (v *validator) compute(cs []Compute) {
	type ud struct {
		unit, dtype, kernel string
		rows, dim, inFlight int
	}
	seen := map[ud]int{}
	tileLoads := map[int]int{}
	blockCode := -1
	for i, c := range cs {
		if c.Unit == UnitBlockCode {
			if blockCode >= 0 {
				v.add(fmt.Sprintf("compute[%d]", i), "a second %s unit (compute[%d] is one): a device has one, for every dtype", UnitBlockCode, blockCode)
			} else {
				blockCode = i
			}
		}
		// One tile-loads table per count of tiles in flight serves every
		// dtype (TileLoadUnit): a second would be ignored.
		if c.Unit == UnitTileLoads {
			n := max(c.TilesInFlight, 1)
			if j, dup := tileLoads[n]; dup {
				v.add(fmt.Sprintf("compute[%d]", i), "a second %s unit for %d tile(s) in flight (compute[%d] is one): a device has one per count, for every dtype", UnitTileLoads, n, j)
			} else {
				tileLoads[n] = i
			}
		}
		key := fmt.Sprintf("compute[%d]", i)
		if !contains(computeUnits, c.Unit) {
			v.add(key+".unit", "unknown unit %q (known: %s)", c.Unit, strings.Join(computeUnits, ", "))
		}
		if !contains(computeDTypes, c.DType) {
			v.add(key+".dtype", "unknown dtype %q (known: %s)", c.DType, strings.Join(computeDTypes, ", "))
		}
		switch {
		case c.Unit == UnitAttentionTile && c.Kernel == "":
			v.add(key+".kernel", "an %s unit names the kernel it measures", UnitAttentionTile)
		case c.Unit == UnitMatmul:
			v.matmul(key, c)
		case c.Unit == UnitTileLoads:
			v.tileLoads(key, c)
		case c.Unit == UnitBlockCode:
			v.blockCode(key, c)
		case c.Unit == "copy" && c.Kernel != "" && c.Kernel != CopyScattered:
			v.add(key+".kernel", "a copy unit's pattern is %s or empty (whole rows), got %q", CopyScattered, c.Kernel)
		case c.Unit != UnitAttentionTile && c.Unit != "copy" && c.Kernel != "":
			v.add(key+".kernel", "only %s, %s and copy units name a kernel, not %q", UnitAttentionTile, UnitMatmul, c.Unit)
		}
		if c.Unit != UnitMatmul && (c.QueryRows != 0 || c.HeadDim != 0) {
			v.add(key, "only %s units take query_rows and head_dim, not %q", UnitMatmul, c.Unit)
		}
		if c.Unit != UnitTileLoads && c.TileBytes != 0 {
			v.add(key+".tile_bytes", "only %s units take tile_bytes, not %q", UnitTileLoads, c.Unit)
		}
		if c.Unit != UnitTileLoads && c.TilesInFlight != 0 {
			v.add(key+".tiles_in_flight", "only %s units take tiles_in_flight, not %q", UnitTileLoads, c.Unit)
		}
		if c.Unit != UnitBlockCode && (c.ParamLines != 0 || c.ParamLineSeconds != 0) {
			v.add(key, "only %s units take param_lines and param_line_seconds, not %q", UnitBlockCode, c.Unit)
		}
		id := ud{c.Unit, c.DType, c.Kernel, c.QueryRows, c.HeadDim, max(c.TilesInFlight, 1)}
		if j, dup := seen[id]; dup {
			v.add(key, "duplicate of compute[%d] (%s)", j, strings.Join(slices.DeleteFunc([]string{c.Unit, c.DType, c.Kernel}, func(s string) bool { return s == "" }), " "))
		} else {
			seen[id] = i
		}
		v.positive(key+".ops_per_second", c.OpsPerSecond)
		v.latency(key+".floor_seconds", c.FloorSeconds)
		if c.Table != nil {
			if c.Unit != "topk" && c.Unit != "softmax" && c.Unit != UnitAttentionTile && c.Unit != UnitMatmul && c.Unit != UnitTileLoads && c.Unit != UnitBlockCode {
				v.add(key+".table", "only library primitives (topk, softmax, %s, %s, %s, %s) take a table, not %q", UnitAttentionTile, UnitMatmul, UnitTileLoads, UnitBlockCode, c.Unit)
			}
			v.table(key+".table", c.Table)
		}
	}
}

// matmul checks what a matmul unit's lookup needs: a product form, the
// shape it was measured at and its table (a matmul has no rate that would
// stand in for one).
func (v *validator) matmul(key string, c Compute) {
	if c.Kernel != MatmulScores && c.Kernel != MatmulWeighted {
		v.add(key+".kernel", "a %s unit names its product form, %s or %s, got %q", UnitMatmul, MatmulScores, MatmulWeighted, c.Kernel)
	}
	if c.QueryRows < 1 || c.QueryRows > 1<<16 {
		v.add(key+".query_rows", "must be 1 to 65536, got %d", c.QueryRows)
	}
	if c.HeadDim < 1 || c.HeadDim > 1<<16 {
		v.add(key+".head_dim", "must be 1 to 65536, got %d", c.HeadDim)
	}
	if c.Table == nil {
		v.add(key+".table", "a %s unit is its measured table", UnitMatmul)
	}
}

// tileLoads checks what a tile-loads unit's lookup needs: the tile it was
// measured with and its table.
func (v *validator) tileLoads(key string, c Compute) {
	if c.Kernel != "" {
		v.add(key+".kernel", "a %s unit names no kernel, got %q", UnitTileLoads, c.Kernel)
	}
	if c.TileBytes < 16 || c.TileBytes > 1<<24 {
		v.add(key+".tile_bytes", "must be 16 B to 16 MiB, got %d", c.TileBytes)
	}
	if c.TilesInFlight < 0 || c.TilesInFlight > MaxTilesInFlight {
		v.add(key+".tiles_in_flight", "must be 1 to %d (0: 1), got %d", MaxTilesInFlight, c.TilesInFlight)
	}
	if c.Table == nil {
		v.add(key+".table", "a %s unit is its measured table", UnitTileLoads)
	}
}

// blockCode checks what a block-code unit's lookup needs: its table (the
// first column is its kernel's own code) and its parameter lines.
func (v *validator) blockCode(key string, c Compute) {
	if c.Kernel != "" {
		v.add(key+".kernel", "a %s unit names no kernel, got %q", UnitBlockCode, c.Kernel)
	}
	if c.ParamLines < 0 || c.ParamLines > MaxParamLines {
		v.add(key+".param_lines", "must be 0 to %d, got %d", MaxParamLines, c.ParamLines)
	}
	v.latency(key+".param_line_seconds", c.ParamLineSeconds)
	if c.Table == nil {
		v.add(key+".table", "a %s unit is its measured table", UnitBlockCode)
	}
}

// table checks a primitive's grid: ascending positive axes and one positive
// time under a second for every (rows, cols) point.
func (v *validator) table(key string, t *Table) {
	for _, ax := range []struct {
		name string
		xs   []float64
	}{{"rows", t.Rows}, {"cols", t.Cols}} {
		if len(ax.xs) == 0 {
			v.add(key+"."+ax.name, "empty")
		}
		for i, x := range ax.xs {
			if !(x >= 1) || math.IsInf(x, 0) {
				v.add(fmt.Sprintf("%s.%s[%d]", key, ax.name, i), "must be at least 1, got %v", x)
			} else if i > 0 && !(x > ax.xs[i-1]) {
				v.add(fmt.Sprintf("%s.%s[%d]", key, ax.name, i), "must be above the previous point (%v), got %v", ax.xs[i-1], x)
			}
		}
	}
	v.grid(key, "seconds", "times", t.Seconds, len(t.Rows), len(t.Cols), func(x float64) string {
		if !(x > 0) || x >= 1 {
			return "must be positive and under 1 second"
		}
		return ""
	})
	if t.Kernels != nil {
		v.grid(key, "kernels", "counts", t.Kernels, len(t.Rows), len(t.Cols), func(x float64) string {
			if !(x >= 1) || x > 1<<16 || x != math.Trunc(x) {
				return "must be a whole number of operations from 1 to 65536"
			}
			return ""
		})
	}
}

// grid checks one of a table's matrices (name: seconds, kernels): rows ×
// cols values of what (times, counts), each of which bad accepts ("") or
// says what it must be.
func (v *validator) grid(key, name, what string, m [][]float64, rows, cols int, bad func(float64) string) {
	if len(m) != rows {
		v.add(key+"."+name, "has %d rows of %s for %d rows values", len(m), what, rows)
		return
	}
	for i, row := range m {
		if len(row) != cols {
			v.add(fmt.Sprintf("%s.%s[%d]", key, name, i), "has %d %s for %d cols values", len(row), what, cols)
			continue
		}
		for j, x := range row {
			if msg := bad(x); msg != "" {
				v.add(fmt.Sprintf("%s.%s[%d][%d]", key, name, i, j), "%s, got %v", msg, x)
			}
		}
	}
}

func requiredNames(specs []levelSpec) string {
	var s []string
	for _, l := range specs {
		if l.required {
			s = append(s, l.name)
		}
	}
	return strings.Join(s, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
