// Package hwmodel describes accelerators and hosts as data: memory levels,
// compute peaks, fixed overheads, parallelism and links. Devices come from an
// embedded YAML catalog that users override with their own files, BWSIM_*
// environment variables and flags; Load is the only place that reads them.
package hwmodel

import (
	"math"
	"sort"
)

// Kind is the family of a device, which fixes the names of its memory levels.
type Kind string

// Device kinds.
const (
	KindGPU Kind = "gpu" // levels hbm, l2, smem
	KindIPU Kind = "ipu" // levels sram, streaming (exchange optional)
	KindCPU Kind = "cpu" // levels dram, llc
)

// LevelRole says how a memory level can hold a tensor.
type LevelRole string

// Level roles.
const (
	// RoleMemory is a level tensors are placed in (HBM, DRAM, IPU SRAM or
	// streaming memory).
	RoleMemory LevelRole = "memory"
	// RoleCache is a hardware-managed cache in front of the memory levels (L2,
	// LLC): it serves reuse within a stage but is never a placement.
	RoleCache LevelRole = "cache"
	// RoleOnChip is program-managed on-chip storage (shared memory,
	// registers) that only a fused kernel uses for its intermediates.
	RoleOnChip LevelRole = "onchip"
	// RoleFabric is an interconnect between the memories of the parallel
	// units (the IPU exchange). It stores nothing and is never a placement;
	// its capacity is the memory it connects.
	RoleFabric LevelRole = "fabric"
)

// MemoryLevel is one level of a device's memory hierarchy.
type MemoryLevel struct {
	Name string    `mapstructure:"name" json:"name"`
	Role LevelRole `mapstructure:"role" json:"role"`
	// Tier orders levels from the compute units outwards: 0 is closest.
	Tier int `mapstructure:"tier" json:"tier"`
	// CapacityBytes is the capacity of the whole level (all SMs, all tiles).
	CapacityBytes float64 `mapstructure:"capacity_bytes" json:"capacity_bytes"`
	// PeakBandwidth is the datasheet bandwidth in bytes per second.
	PeakBandwidth float64 `mapstructure:"peak_bandwidth" json:"peak_bandwidth"`
	// AchievableBandwidth is the bandwidth a well-written streaming kernel
	// reaches, in bytes per second, measured by a copy/stream microbenchmark.
	AchievableBandwidth float64 `mapstructure:"achievable_bandwidth" json:"achievable_bandwidth"`
	// GranularityBytes is the smallest unit the level moves (a GPU sector, a
	// cache line, an exchange word): a request for fewer bytes costs this.
	GranularityBytes int64 `mapstructure:"granularity_bytes" json:"granularity_bytes"`
	// LatencySeconds is the load-to-use latency of one access.
	LatencySeconds float64 `mapstructure:"latency_seconds" json:"latency_seconds"`
	// TransferOverheadSeconds is a fixed cost paid once by every stage that
	// moves data through this level, on top of Overheads (the set-up of an
	// IPU streaming-memory copy). It is 0 for hardware-managed levels, whose
	// per-access cost is LatencySeconds.
	TransferOverheadSeconds float64 `mapstructure:"transfer_overhead_seconds" json:"transfer_overhead_seconds"`
	// DMA marks a level whose transfers a copy engine drives (an IPU's
	// streaming memory, copied by the exchange and gateway): the bytes the
	// work units keep in flight do not limit its bandwidth, so Little's law
	// on work units does not apply to it.
	DMA bool `mapstructure:"dma" json:"dma,omitempty"`
	// KernelBandwidth is the achievable bandwidth of named kernel classes
	// whose loads stream slower than the microbenchmark's (Triton loops
	// whose tiles feed the matrix unit through shared memory: "triton"),
	// each measured by a microbenchmark of that class. A stage whose
	// traces.Stage.Kernel is listed streams at its figure.
	KernelBandwidth map[string]float64 `mapstructure:"kernel_bandwidth" json:"kernel_bandwidth,omitempty"`
	// KernelLoops is what one step of a work unit's load loop costs named
	// kernel classes whose steps do not overlap (each step waits for its
	// loads before the next is issued, as a Triton loop feeding tl.dot
	// does), each measured by a microbenchmark of that class at a few
	// programs. A stage whose traces.Stage.Kernel is listed and whose
	// traces.Stage.LoopSteps is known streams at most one step per step
	// time per work unit; stages without them keep Little's law on
	// Concurrency.InflightBytesPerWorkUnit.
	KernelLoops map[string]KernelLoop `mapstructure:"kernel_loops" json:"kernel_loops,omitempty"`
	// Source says where the figures come from.
	Source string `mapstructure:"source" json:"source"`
}

// Achievable is the level's achievable bandwidth for a stage run by kernel
// class kernel: its KernelBandwidth entry where it lists one, else
// AchievableBandwidth.
func (l MemoryLevel) Achievable(kernel string) float64 {
	if bw, ok := l.KernelBandwidth[kernel]; ok && kernel != "" {
		return bw
	}
	return l.AchievableBandwidth
}

// KernelLoop is a kernel class's loop-step cost for the two ways its loop
// loads: runs of rows (contiguous, vectorised loads) and gathers of single
// elements scattered over rows. A zero LoopStep is not measured.
type KernelLoop struct {
	Rows   LoopStep `mapstructure:"rows" json:"rows"`
	Gather LoopStep `mapstructure:"gather" json:"gather"`
}

// LoopStep prices one step of one work unit's load loop: a fixed part (a
// round trip to the level and the loop's own work), a part per byte the
// step moves and, for gathers, a part per element loaded.
type LoopStep struct {
	Seconds           float64 `mapstructure:"seconds" json:"seconds"`
	SecondsPerByte    float64 `mapstructure:"seconds_per_byte" json:"seconds_per_byte"`
	SecondsPerElement float64 `mapstructure:"seconds_per_element" json:"seconds_per_element,omitempty"`
}

// LoopKind is one of a KernelLoop's steps under its YAML key.
type LoopKind struct {
	Name string // "rows" or "gather"
	Step LoopStep
}

// Gather says the kind is the loop's gather of single elements.
func (k LoopKind) Gather() bool { return k.Name == "gather" }

// Kinds lists the loop's rows and gather steps, in that order.
func (k KernelLoop) Kinds() []LoopKind {
	return []LoopKind{{"rows", k.Rows}, {"gather", k.Gather}}
}

// Measured says the step has figures.
func (s LoopStep) Measured() bool { return s.Seconds > 0 }

// StepSeconds is one step's time when it moves bytes and loads elements.
func (s LoopStep) StepSeconds(bytes, elements float64) float64 {
	return s.Seconds + bytes*s.SecondsPerByte + elements*s.SecondsPerElement
}

// Loop is the loop-step cost of kernel class kernel on the level, for
// gathers of elements or for runs of rows; ok is false where the level
// lists none.
func (l MemoryLevel) Loop(kernel string, gather bool) (step LoopStep, ok bool) {
	kl, found := l.KernelLoops[kernel]
	if !found || kernel == "" {
		return LoopStep{}, false
	}
	step = kl.Rows
	if gather {
		step = kl.Gather
	}
	return step, step.Measured()
}

// Compute is one peak arithmetic rate.
type Compute struct {
	// Unit is "vector", "matrix", "special" (exponentials and other
	// transcendental functions), or a library primitive: "topk" (such as
	// torch.topk: OpsPerSecond counts elements scanned, FloorSeconds is the
	// least one call takes), "softmax" (elements normalised) or "copy"
	// (elements a library copy kernel writes: torch.gather, dtype casts,
	// repeats), or UnitAttentionTile (a tiled fused-attention kernel's
	// query tiles: OpsPerSecond counts their multiply-accumulates, padding
	// rows included, and the Table gives a call's time for Rows thread
	// blocks of Cols multiply-accumulates each), or UnitMatmul (a library's
	// batched matrix product: the Table gives a call's time for Rows
	// products over Cols key positions each, OpsPerSecond counts
	// multiply-accumulates at the largest grid point), or UnitTileLoads
	// (a split-KV kernel's tile loads: the Table gives a call's time for
	// Rows thread blocks each loading Cols tiles of TileBytes, at most
	// TilesInFlight at a time, OpsPerSecond counts bytes at the largest
	// grid point), or UnitBlockCode (the code a split-KV kernel's blocks
	// run outside their tile loop: the Table gives a call's time for Rows
	// thread blocks whose warps each run Cols instructions, ParamLines and
	// ParamLineSeconds price parameter reads, OpsPerSecond counts one
	// warp's added instructions per second at one wave).
	Unit string `mapstructure:"unit" json:"unit"`
	// Kernel names the kernel an attention-tile unit was measured on
	// (flash2, mem-efficient), a matmul unit's product form
	// (MatmulScores, MatmulWeighted), or a copy unit's pattern
	// (CopyScattered; empty: whole rows); empty for every other unit.
	Kernel string `mapstructure:"kernel" json:"kernel,omitempty"`
	// QueryRows and HeadDim are the shape a matmul unit was measured at:
	// each product's query rows (the heads of a GQA group) and the head
	// dimension. 0 for every other unit.
	QueryRows int `mapstructure:"query_rows" json:"query_rows,omitempty"`
	HeadDim   int `mapstructure:"head_dim" json:"head_dim,omitempty"`
	// TileBytes is the size of the tile a tile-loads unit's blocks load
	// (32 KiB: 128 keys of a d_h = 128 fp16 K or V). 0 for every other unit.
	TileBytes int `mapstructure:"tile_bytes" json:"tile_bytes,omitempty"`
	// TilesInFlight is how many tiles a tile-loads unit's blocks keep in
	// flight: 1 (or 0) issues the next tile only when the last has landed
	// (FlashAttention-2's split-KV kernel), 2 issues the next before
	// waiting on the current (double buffering, cuDNN's decode kernel).
	// A device has one tile-loads unit per count. 0 for every other unit.
	TilesInFlight int `mapstructure:"tiles_in_flight" json:"tiles_in_flight,omitempty"`
	// ParamLines is the 64-byte lines of kernel parameters a block-code
	// unit's kernel reads before its first wait (its table's times include
	// them), and ParamLineSeconds what each further line adds to a call:
	// a constant-cache miss each block waits on, at any grid. 0 for every
	// other unit.
	ParamLines       int     `mapstructure:"param_lines" json:"param_lines,omitempty"`
	ParamLineSeconds float64 `mapstructure:"param_line_seconds" json:"param_line_seconds,omitempty"`
	// DType is "fp32", "fp16", "bf16", "fp8", "int8", "fp64" or "tf32".
	DType string `mapstructure:"dtype" json:"dtype"`
	// OpsPerSecond counts floating-point operations (a multiply-add is two)
	// for vector and matrix units, and function evaluations for special units.
	OpsPerSecond float64 `mapstructure:"ops_per_second" json:"ops_per_second"`
	// FloorSeconds is the minimum time of one call (a multi-pass primitive's
	// launches and synchronisations); 0 for plain arithmetic units.
	FloorSeconds float64 `mapstructure:"floor_seconds" json:"floor_seconds,omitempty"`
	// Table, for a library primitive (topk, softmax), is its measured time
	// per call over a grid of shapes. Where it is given it replaces
	// FloorSeconds + elements / OpsPerSecond, which cannot follow a
	// primitive whose strategy changes with the shape (torch.topk: one
	// block per row for short rows, a multi-block radix select for long
	// ones).
	Table  *Table `mapstructure:"table" json:"table,omitempty"`
	Source string `mapstructure:"source" json:"source"`
}

// CallSeconds is the time of one call of a primitive unit over rows
// independent slices holding elems elements in all: the Table's figure when
// there is one and rows is known, else FloorSeconds + elems / OpsPerSecond.
func (c Compute) CallSeconds(rows, elems float64) float64 {
	if c.Table != nil && rows > 0 && elems > 0 {
		return c.Table.At(rows, elems/rows)
	}
	return c.FloorSeconds + elems/c.OpsPerSecond
}

// Table is a primitive's measured time per call on a full grid of shapes:
// Seconds[i][j] for Rows[i] slices of Cols[j] elements each.
type Table struct {
	Rows    []float64   `mapstructure:"rows" json:"rows"`
	Cols    []float64   `mapstructure:"cols" json:"cols"`
	Seconds [][]float64 `mapstructure:"seconds" json:"seconds"`
	// Kernels, optional, is how many device operations (kernels, memsets)
	// one call runs at each grid point, as a profiler counts them. A
	// library may switch strategy with the shape (torch.topk: 2 kernels
	// for short rows, 22 for its multi-block radix select); the count
	// prices what each extra kernel costs when the host issues them into a
	// stream rather than a graph replaying them (Overheads.Launch).
	Kernels [][]float64 `mapstructure:"kernels" json:"kernels,omitempty"`
}

// KernelsAt is the device operations one call runs at (rows, cols): the
// count at the grid point nearest in the logarithms (a strategy switch has
// no in-between), or 1 where the table does not count them.
func (t *Table) KernelsAt(rows, cols float64) float64 {
	if len(t.Kernels) == 0 {
		return 1
	}
	return t.Kernels[nearest(t.Rows, rows)][nearest(t.Cols, cols)]
}

// nearest is the index of the grid point closest to x in the logarithm,
// the lower one on a tie.
func nearest(grid []float64, x float64) int {
	best, dist := 0, math.Inf(1)
	for i, g := range grid {
		if d := math.Abs(math.Log(x / g)); d < dist {
			best, dist = i, d
		}
	}
	return best
}

// At interpolates the table at (rows, cols), bilinearly in the
// logarithms of all three quantities (times follow power laws between the
// measured shapes). Below the grid it holds the edge value (a call never
// gets cheaper than the smallest one measured); above it, time grows in
// proportion, as a primitive that already fills the device can only take
// longer for more rows or longer rows.
func (t *Table) At(rows, cols float64) float64 {
	i0, i1, fi, ri := bracket(t.Rows, rows)
	j0, j1, fj, rj := bracket(t.Cols, cols)
	at := func(a, b int) float64 { return math.Log(t.Seconds[a][b]) }
	lo := at(i0, j0)*(1-fj) + at(i0, j1)*fj
	hi := at(i1, j0)*(1-fj) + at(i1, j1)*fj
	return math.Exp(lo*(1-fi)+hi*fi) * ri * rj
}

// bracket places x on an ascending grid: the grid points around it (equal
// at and beyond the ends), the log-linear fraction between them, and the
// proportional excess beyond the last point.
func bracket(grid []float64, x float64) (lo, hi int, f, excess float64) {
	n := len(grid)
	switch {
	case x <= grid[0]:
		return 0, 0, 0, 1
	case x >= grid[n-1]:
		return n - 1, n - 1, 0, x / grid[n-1]
	}
	lo = sort.SearchFloat64s(grid, x) - 1
	if grid[lo+1] == x {
		return lo + 1, lo + 1, 0, 1
	}
	return lo, lo + 1, math.Log(x/grid[lo]) / math.Log(grid[lo+1]/grid[lo]), 1
}

// Overheads are the fixed costs of one stage.
type Overheads struct {
	// LaunchSeconds is the cost of starting a stage (a kernel launch in a
	// stream, a compute set's start).
	LaunchSeconds float64 `mapstructure:"launch_seconds" json:"launch_seconds"`
	// StreamLaunchSeconds is the device's time per kernel when the host
	// issues kernels one at a time into a stream (eager PyTorch) rather than
	// replaying them from a CUDA graph, measured with the kernels queued
	// ahead of the device so that the host's issue time is not in it.
	// 0: not measured, LaunchSeconds stands for it.
	StreamLaunchSeconds float64 `mapstructure:"stream_launch_seconds" json:"stream_launch_seconds,omitempty"`
	// SyncSeconds is the cost of the global synchronisation that ends a
	// stage (IPU exchange sync, a host barrier).
	SyncSeconds float64 `mapstructure:"sync_seconds" json:"sync_seconds"`
	// HostSyncSeconds is what a host clock around one call adds to the
	// device's work when the call ends in a synchronize: the first launch
	// reaching the device and the synchronize returning (a torch op then
	// synchronize, less the op's device time). It prices measurements
	// timed that way, not the device. 0: not measured.
	HostSyncSeconds float64 `mapstructure:"host_sync_seconds" json:"host_sync_seconds,omitempty"`
	Source          string  `mapstructure:"source" json:"source"`
}

// Launch is the cost of starting one kernel: StreamLaunchSeconds where the
// host issues the kernels into a stream and the device measured it,
// LaunchSeconds otherwise.
func (o Overheads) Launch(stream bool) float64 {
	if stream && o.StreamLaunchSeconds > 0 {
		return o.StreamLaunchSeconds
	}
	return o.LaunchSeconds
}

// Concurrency describes how many memory requests a device keeps in flight,
// for Little's law: bandwidth ≤ bytes in flight / latency.
type Concurrency struct {
	// ParallelUnits is the number of SMs, tiles or cores.
	ParallelUnits int `mapstructure:"parallel_units" json:"parallel_units"`
	// WorkUnitsPerParallelUnit is how many work units (thread blocks,
	// threads) one parallel unit runs at once.
	WorkUnitsPerParallelUnit int `mapstructure:"work_units_per_parallel_unit" json:"work_units_per_parallel_unit"`
	// InflightBytesPerWorkUnit is the bytes one work unit keeps in flight
	// to memory.
	InflightBytesPerWorkUnit float64 `mapstructure:"inflight_bytes_per_work_unit" json:"inflight_bytes_per_work_unit"`
	// CompilerMapped says the device's compiler spreads every tensor's
	// elements over all parallel units and each unit works on the
	// elements it holds (Poplar on an IPU: a softmax over 32 rows runs on
	// every tile, a row's columns split across them), so a stage occupies
	// the whole device whatever the work units of the kernel's algorithm
	// (a GPU's thread blocks).
	CompilerMapped bool   `mapstructure:"compiler_mapped" json:"compiler_mapped,omitempty"`
	Source         string `mapstructure:"source" json:"source"`
}

// Link is a connection to other devices.
type Link struct {
	Name string `mapstructure:"name" json:"name"`
	// BandwidthPerDirection in bytes per second.
	BandwidthPerDirection float64 `mapstructure:"bandwidth_per_direction" json:"bandwidth_per_direction"`
	LatencySeconds        float64 `mapstructure:"latency_seconds" json:"latency_seconds"`
	Source                string  `mapstructure:"source" json:"source"`
}

// Device is one accelerator or host.
type Device struct {
	Name        string                 `mapstructure:"-" json:"name"`
	Description string                 `mapstructure:"description" json:"description"`
	Kind        Kind                   `mapstructure:"kind" json:"kind"`
	Levels      map[string]MemoryLevel `mapstructure:"memory_levels" json:"-"`
	Compute     []Compute              `mapstructure:"compute" json:"compute"`
	Overheads   Overheads              `mapstructure:"overheads" json:"overheads"`
	Concurrency Concurrency            `mapstructure:"concurrency" json:"concurrency"`
	Links       []Link                 `mapstructure:"links" json:"links"`
	// Origin says which file or source the device was loaded from.
	Origin string `mapstructure:"-" json:"origin"`
}

// OrderedLevels returns the memory levels sorted by Tier, closest first.
func (d *Device) OrderedLevels() []MemoryLevel {
	ls := make([]MemoryLevel, 0, len(d.Levels))
	for name, l := range d.Levels {
		l.Name = name
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].Tier != ls[j].Tier {
			return ls[i].Tier < ls[j].Tier
		}
		return ls[i].Name < ls[j].Name
	})
	return ls
}

// Level returns the named memory level.
func (d *Device) Level(name string) (MemoryLevel, bool) {
	l, ok := d.Levels[name]
	l.Name = name
	return l, ok
}

// Unit returns the named unit's entry for dtype, falling back to fp32.
func (d *Device) Unit(unit, dtype string) (Compute, bool) {
	return d.find(unit, "", dtype, "fp32")
}

// find returns the unit of that name and kernel for dtype, else the one
// for fallback.
func (d *Device) find(unit, kernel, dtype, fallback string) (Compute, bool) {
	var fb Compute
	var ok bool
	for _, c := range d.Compute {
		if c.Unit != unit || c.Kernel != kernel {
			continue
		}
		if c.DType == dtype {
			return c, true
		}
		if c.DType == fallback {
			fb, ok = c, true
		}
	}
	return fb, ok
}

// UnitAttentionTile is the unit of a tiled fused-attention kernel's query
// tiles (traces.Arith.TileMACs), one per kernel.
const UnitAttentionTile = "attention-tile"

// CopyScattered is the pattern (Compute.Kernel) of a copy unit measured
// picking single elements within rows (torch.gather of 32 of every 128
// components), which index arithmetic paces more slowly than whole rows;
// traces.Arith.ScatteredCopyElems are priced at it.
const CopyScattered = "scattered"

// CopyUnit returns the copy unit measured for pattern (CopyScattered, or
// "" for whole rows) for dtype, falling back to fp32 as Unit does.
func (d *Device) CopyUnit(pattern, dtype string) (Compute, bool) {
	return d.find("copy", pattern, dtype, "fp32")
}

// UnitMatmul is the unit of a library's batched matrix products as an
// unfused attention calls them (cuBLAS through torch.bmm): one unit per
// product form, query rows and head dimension, each a table of measured
// call times. The library picks its kernel, and with it how many thread
// blocks run, by shape (at 8 products of 4 rows cuBLAS runs the
// probabilities-times-V product at half the memory's rate), which no
// bandwidth figure follows.
const UnitMatmul = "matmul"

// Product forms of a matmul unit (Compute.Kernel) and of a stage's library
// product (traces.Matmul.Form).
const (
	// MatmulScores is q·Kᵀ: [rows × dim] times the transpose of a
	// [keys × dim] operand, as scores against a K cache.
	MatmulScores = "qk"
	// MatmulWeighted is P·V: [rows × keys] times [keys × dim], as
	// probabilities against a V cache.
	MatmulWeighted = "pv"
)

// MatmulUnit returns the matmul unit measured for form at headDim whose
// query rows are the fewest at or above rows (a library pads a product's
// rows to its tile, so fewer rows cost what the next measured count does);
// fp16 tables stand for bf16. ok is false where none was measured: callers
// keep their bandwidth model.
func (d *Device) MatmulUnit(form string, rows, headDim int, dtype string) (Compute, bool) {
	if dtype == "fp32" {
		return Compute{}, false
	}
	var best Compute
	found := false
	for _, c := range d.Compute {
		if c.Unit != UnitMatmul || c.Kernel != form || c.HeadDim != headDim || c.Table == nil || c.QueryRows < rows {
			continue
		}
		if c.DType != dtype && c.DType != "fp16" {
			continue
		}
		better := !found || c.QueryRows < best.QueryRows || (c.QueryRows == best.QueryRows && c.DType == dtype)
		if better {
			best, found = c, true
		}
	}
	return best, found
}

// UnitTileLoads is the unit of a split-KV attention kernel's tile loads
// (traces.Stage.TileLoads), measured on a kernel reduced to its loads: each
// thread block copies its K and V tiles into shared memory, either issuing
// the next only when the last has landed (FlashAttention-2's split-KV
// kernel) or keeping two in flight (cuDNN's decode kernel), the unit's
// TilesInFlight. When a grid fits on the device at once its blocks load in
// lockstep, so each round trip is one the other blocks cannot hide, and a
// one-tile-per-load call reads far below the memory's rate (on an H200, 256
// blocks loading two 32 KiB tiles each, one at a time, take 7.7 µs,
// 2.2 TB/s).
const UnitTileLoads = "tile-loads"

// UnitBlockCode is the unit of the code a split-KV kernel's thread blocks
// run outside their tile loop (traces.Stage.BlockInstructions and
// ParamLines), measured on the tile-loads kernel with straight-line
// arithmetic added before its first tile and after its last, and with
// extra parameters read first: its Table gives a call's time for Rows
// thread blocks of 4 warps loading two 32 KiB tiles each, every warp
// running Cols instructions outside the loop (the first column is the
// kernel's own). In a grid that runs at once, every block's start and
// end lie on the call's critical path: on an H100, 264 blocks take
// 9.1 µs with the kernel's own 496 instructions and 10.1 µs with 1265.
const UnitBlockCode = "block-code"

// MaxParamLines bounds a block-code unit's ParamLines: a launch passes at
// most 32 KiB of parameters.
const MaxParamLines = 512

// BlockCodeUnit returns the device's block-code unit; ok is false where
// none was measured. The code is instructions, whatever the data's type:
// one unit serves every dtype.
func (d *Device) BlockCodeUnit() (Compute, bool) {
	for _, c := range d.Compute {
		if c.Unit == UnitBlockCode && c.Table != nil {
			return c, true
		}
	}
	return Compute{}, false
}

// MaxTilesInFlight bounds a tile-loads unit's TilesInFlight: a block's
// shared memory holds a few 32 KiB tiles at most.
const MaxTilesInFlight = 8

// TileLoadUnit returns the device's tile-loads unit for blocks that keep
// inFlight tiles in flight (0 counts as 1); ok is false where none was
// measured. The loads are bytes, whatever their type: one unit per count
// serves every dtype.
func (d *Device) TileLoadUnit(inFlight int) (Compute, bool) {
	for _, c := range d.Compute {
		if c.Unit == UnitTileLoads && c.Table != nil && c.TileBytes > 0 && max(c.TilesInFlight, 1) == max(inFlight, 1) {
			return c, true
		}
	}
	return Compute{}, false
}

// TileUnit returns the attention-tile unit measured on kernel for dtype,
// falling back to the kernel's fp16 figures for other 16-bit types (the
// tile's matrix work runs at the same rate for fp16 and bf16).
func (d *Device) TileUnit(kernel, dtype string) (Compute, bool) {
	if dtype == "fp32" {
		return Compute{}, false
	}
	return d.find(UnitAttentionTile, kernel, dtype, "fp16")
}

// Peak returns the peak rate of unit for dtype, falling back to fp32 for
// dtypes the unit lists no rate for (a CPU computes fp16 data at fp32 rate
// after widening it). ok is false when the unit has no rate at all.
func (d *Device) Peak(unit, dtype string) (ops float64, ok bool) {
	c, ok := d.Unit(unit, dtype)
	return c.OpsPerSecond, ok && c.OpsPerSecond > 0
}
