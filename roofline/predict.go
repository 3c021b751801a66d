// Package roofline prices a trace on a device: time per stage and per step,
// from the bytes each memory level moves, the arithmetic, the concurrency the
// stage offers and the device's fixed overheads.
//
// The model, per stage:
//
//	memory   = Σ_levels moved_bytes(level) / min(achievable_bw, Little's-law_bw)
//	compute  = Σ_units ops / (peak × min(1, work_units / parallel_units))
//	latency  = the latency of the slowest level touched × the stage's chain of
//	           dependent loads (one by default)
//	softmax  = a library softmax kernel's measured time (unfused stages)
//	copy     = floor + elements / a library copy kernel's measured rate
//	tile     = a tiled attention kernel's measured time for its query tiles
//	           (padding rows included), else their MACs at the matrix peak
//	select   = a top-k primitive's measured time, or floor + elements / rate
//	time     = launches × launch + sync + max(memory, compute and tile, latency, softmax + copy) + select
//
// and per step the sum of the stages, or the host's time to issue them when
// they are dispatched eagerly and the host is the slower (Options.HostSeconds).
// A launch costs the device's graph figure, or its stream figure when the
// host issues the kernels one at a time (Options.Stream), where a library
// call's every kernel counts (a top-k table's kernel counts).
//
// where moved bytes are the traced extents folded to the level's access
// granularity (a 2-byte gather costs a 32-byte sector), counted once per
// granule when a cache in front holds the stage's footprint of the tensor
// and once per run otherwise, and Little's law caps bandwidth at
// (active work units × bytes in flight per unit) / latency. A stage whose
// kernel class runs a loop of known steps that do not overlap (a Triton
// loop feeding tl.dot: traces.Stage.LoopSteps, a level's kernel_loops) is
// capped instead by its step time: each unit's steps × (fixed + bytes per
// step × seconds per byte + elements per step × seconds per element, the
// last for gathers of single elements), active units at a time. The ideal figure
// is the requested bytes at peak bandwidth with nothing else: the paper's
// "theoretical" speed-up compares ideal figures.
package roofline

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/traces"
)

// Options adjust a prediction.
type Options struct {
	// Placement maps a tensor role (kv-cache, input, intermediate, output,
	// parameter) to the memory level that must hold it, overriding the
	// default: the fastest memory level with room.
	Placement map[traces.Role]string
	// DType selects compute peaks ("fp16", "bf16", "fp32"); default from
	// the KV cache's element size.
	DType string
	// HostSeconds is the host's time to issue one step when its kernels are
	// dispatched eagerly, one at a time from the host (0: replayed from a
	// graph, or issued faster than the device runs them). Successive steps
	// pipeline through the launch queue: while the device runs step n the
	// host issues step n+1, so a step takes the longer of the two.
	HostSeconds float64
	// HostTimed says the call was timed by the host clock around it and
	// ended in a synchronize (as the SparQ paper's GPU benchmarks time
	// theirs): the prediction adds the device's Overheads.HostSyncSeconds.
	HostTimed bool
	// Stream says the host issued the kernels one at a time into a stream
	// (eager or host-timed calls) instead of replaying them from a CUDA
	// graph: each launch costs the device's Overheads.Launch(true).
	Stream bool
}

// Bound names what limits a stage.
type Bound string

// Bounds.
const (
	BoundMemory   Bound = "memory"
	BoundCompute  Bound = "compute"
	BoundLatency  Bound = "latency"
	BoundOverhead Bound = "overhead"
	// BoundSelect is a stage dominated by a top-k selection primitive.
	BoundSelect Bound = "select"
	// BoundSoftmax is a stage dominated by a library softmax kernel, whose
	// one block per row runs below the memory bandwidth on few rows.
	BoundSoftmax Bound = "softmax"
	// BoundCopy is a stage dominated by a library copy kernel's per-element
	// index arithmetic (torch.gather, dtype casts and repeats copy ~0.3 G
	// elements per ms on an H100, below the memory bandwidth for 2-byte
	// elements).
	BoundCopy Bound = "copy"
	// BoundTileLoads is a stage whose thread blocks load their tiles one
	// after another (traces.Stage.TileLoads) slower than the stage's bytes
	// stream: each tile's round trip is exposed when the grid's blocks
	// start together and have nothing else in flight.
	BoundTileLoads Bound = "tile-loads"
	// BoundMatmul is a stage whose library matrix product's measured time
	// (the device's matmul table for its shape) exceeds what its bytes
	// take at the memory's rate: the library's kernel for that shape runs
	// too few thread blocks, or reads below the stream rate.
	BoundMatmul Bound = "matmul"
)

// Bounds lists every Bound, in the order reports use.
var Bounds = []Bound{BoundMemory, BoundCompute, BoundLatency, BoundOverhead, BoundSelect, BoundSoftmax, BoundCopy, BoundMatmul, BoundTileLoads}

// LevelTraffic is what one memory level moves in one stage.
type LevelTraffic struct {
	Level string `json:"level"`
	// RequestedBytes is what the kernel asked of tensors served by this level.
	RequestedBytes int64 `json:"requested_bytes"`
	// MovedBytes is after granularity folding and cache reuse.
	MovedBytes int64 `json:"moved_bytes"`
	// Bandwidth is the effective bandwidth used, bytes/s.
	Bandwidth float64 `json:"bandwidth"`
	// ConcurrencyLimited is true when the work units' concurrency (Little's
	// law on the bytes each keeps in flight, or the step time of a loop
	// whose steps do not overlap), not the level's achievable bandwidth,
	// set Bandwidth.
	ConcurrencyLimited bool    `json:"concurrency_limited"`
	Seconds            float64 `json:"seconds"`
}

// TensorTraffic is what one tensor moves in one direction in one stage, at
// the level it is served from.
type TensorTraffic struct {
	Tensor         string           `json:"tensor"`
	Direction      traces.Direction `json:"direction"`
	Level          string           `json:"level"`
	RequestedBytes int64            `json:"requested_bytes"`
	MovedBytes     int64            `json:"moved_bytes"`
}

// StagePrediction is one stage's predicted time.
type StagePrediction struct {
	Name            string  `json:"name"`
	Seconds         float64 `json:"seconds"`
	IdealSeconds    float64 `json:"ideal_seconds"`
	Bound           Bound   `json:"bound"`
	MemorySeconds   float64 `json:"memory_seconds"`
	ComputeSeconds  float64 `json:"compute_seconds"`
	LatencySeconds  float64 `json:"latency_seconds"`
	OverheadSeconds float64 `json:"overhead_seconds"`
	// SelectSeconds is the time of top-k selection primitives, serial with
	// the rest of the stage.
	SelectSeconds float64 `json:"select_seconds"`
	// SoftmaxSeconds is a library softmax kernel's time: it reads and
	// writes the stage's scores itself, so it overlaps the memory time
	// rather than adding to it (with CopySeconds, a kernel after it).
	SoftmaxSeconds float64 `json:"softmax_seconds,omitempty"`
	// CopySeconds is a library copy kernel's time (gather, cast, repeat),
	// which likewise
	// overlaps the bytes it moves.
	CopySeconds float64 `json:"copy_seconds,omitempty"`
	// TileSeconds is a tiled fused-attention kernel's time for its query
	// tiles (traces.Arith.TileMACs): matrix work on padding rows that a
	// decode query pays for, overlapping the memory time as the rest of
	// the kernel's arithmetic does. ComputeSeconds includes it.
	TileSeconds float64 `json:"tile_seconds,omitempty"`
	// MatmulSeconds is a library matrix product's measured time for the
	// stage's shape (traces.Stage.Matmul, from the device's matmul unit),
	// less the launch OverheadSeconds counts: the whole kernel, its own
	// bytes included, so it overlaps the memory time. 0 where the device
	// measured no product of that form, rows and head dimension.
	MatmulSeconds float64 `json:"matmul_seconds,omitempty"`
	// TileLoadSeconds is the stage's time at the device's measured tile
	// loads (traces.Stage.TileLoads: K and V tiles each loaded after the
	// last has landed), less the launch OverheadSeconds counts. The
	// measured kernel moves the stage's bytes, so it overlaps the memory
	// time. 0 where the stage or the device has none.
	TileLoadSeconds float64 `json:"tile_load_seconds,omitempty"`
	// BlockCodeSeconds is what the code the stage's thread blocks run
	// outside their tile loop adds (traces.Stage.BlockInstructions and
	// ParamLines beyond those of the kernel the device's block-code table
	// was measured on): in a grid that runs at once every block's start and
	// end lie on the critical path. TileLoadSeconds includes it.
	BlockCodeSeconds float64        `json:"block_code_seconds,omitempty"`
	Levels           []LevelTraffic `json:"levels"`
	// Tensors breaks the levels' traffic down by tensor and direction, in
	// the order the trace declares tensors, reads before writes.
	Tensors []TensorTraffic `json:"tensors"`
	Flops   int64           `json:"flops"`
	// ArithmeticIntensity is flops per byte moved from memory levels (not
	// caches): the x-axis of a roofline chart.
	ArithmeticIntensity float64 `json:"arithmetic_intensity"`
	WorkUnits           int64   `json:"work_units"`
}

// Prediction is one step's predicted time on one device.
type Prediction struct {
	Device       string  `json:"device"`
	Seconds      float64 `json:"seconds"`
	IdealSeconds float64 `json:"ideal_seconds"`
	// DeviceSeconds is the sum of the stages; Seconds is the larger of it
	// and HostSeconds (Options.HostSeconds), and HostBound says which won,
	// plus HostSyncSeconds for a host-timed call.
	DeviceSeconds float64 `json:"device_seconds"`
	HostSeconds   float64 `json:"host_seconds,omitempty"`
	HostBound     bool    `json:"host_bound,omitempty"`
	// HostSyncSeconds is what the host clock and synchronize around a
	// host-timed call add (Options.HostTimed), included in Seconds.
	HostSyncSeconds float64           `json:"host_sync_seconds,omitempty"`
	Stages          []StagePrediction `json:"stages"`
	// Placement records where each tensor was placed.
	Placement map[string]string `json:"placement"`
	// RequestedBytes and MovedBytes are summed over stages and levels.
	RequestedBytes int64 `json:"requested_bytes"`
	MovedBytes     int64 `json:"moved_bytes"`
}

// Predict prices tr on dev.
func Predict(tr *traces.Trace, dev *hwmodel.Device, opts Options) (*Prediction, error) {
	place, err := placeTensors(tr, dev, opts.Placement)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev.Name, err)
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = dtypeOf(tr)
	}
	pred := &Prediction{Device: dev.Name, Placement: map[string]string{}}
	for i, t := range tr.Tensors {
		if !t.OnChip {
			pred.Placement[t.Name] = place[i].Name
		}
	}
	for i := range tr.Stages {
		sp, err := predictStage(tr, i, dev, place, dtype, opts.Stream)
		if err != nil {
			return nil, fmt.Errorf("device %s: stage %s: %w", dev.Name, tr.Stages[i].Name, err)
		}
		pred.Stages = append(pred.Stages, sp)
		pred.Seconds += sp.Seconds
		pred.IdealSeconds += sp.IdealSeconds
		for _, l := range sp.Levels {
			pred.RequestedBytes += l.RequestedBytes
			pred.MovedBytes += l.MovedBytes
		}
	}
	pred.DeviceSeconds = pred.Seconds
	if h := opts.HostSeconds; h > 0 {
		pred.HostSeconds = h
		if h > pred.Seconds {
			pred.Seconds, pred.HostBound = h, true
		}
	}
	if opts.HostTimed {
		pred.HostSyncSeconds = dev.Overheads.HostSyncSeconds
		pred.Seconds += pred.HostSyncSeconds
	}
	return pred, nil
}

func dtypeOf(tr *traces.Trace) string {
	for _, t := range tr.Tensors {
		if t.Role == traces.RoleKVCache && t.ElemBytes == 4 && t.Name != "Vmean" {
			return "fp32"
		}
	}
	return "fp16"
}

// placeTensors assigns every off-chip tensor a level: the override for its
// role if any, otherwise the fastest memory level with room. Small
// intermediates, inputs and outputs that fit in half of a cache level stay
// there between stages (a GPU's L2 serves a 1 MiB score vector written by one
// kernel and read by the next), so they are priced at the cache.
func placeTensors(tr *traces.Trace, dev *hwmodel.Device, override map[traces.Role]string) ([]hwmodel.MemoryLevel, error) {
	levels := dev.OrderedLevels()
	var memories, caches []hwmodel.MemoryLevel
	for _, l := range levels {
		switch l.Role {
		case hwmodel.RoleMemory:
			memories = append(memories, l)
		case hwmodel.RoleCache:
			caches = append(caches, l)
		}
	}
	if len(memories) == 0 {
		return nil, fmt.Errorf("no memory level to place tensors in")
	}
	for role, name := range override {
		l, ok := dev.Level(name)
		if !ok {
			return nil, fmt.Errorf("placement %s=%s: no level %q (levels: %s)", role, name, name, levelNames(levels))
		}
		if l.Role != hwmodel.RoleMemory {
			return nil, fmt.Errorf("placement %s=%s: %s is a %s level, tensors are placed in memory levels", role, name, name, l.Role)
		}
	}
	free := map[string]float64{}
	for _, l := range memories {
		free[l.Name] = l.CapacityBytes
	}
	// Place the biggest role first: the KV cache decides where it can live.
	order := []traces.Role{traces.RoleKVCache, traces.RoleParameter, traces.RoleInput, traces.RoleIntermediate, traces.RoleOutput}
	out := make([]hwmodel.MemoryLevel, len(tr.Tensors))
	for _, role := range order {
		var need float64
		var ids []int
		for i, t := range tr.Tensors {
			if t.Role == role && !t.OnChip {
				need += float64(t.Bytes())
				ids = append(ids, i)
			}
		}
		if len(ids) == 0 {
			continue
		}
		var chosen *hwmodel.MemoryLevel
		if name, ok := override[role]; ok {
			for j := range memories {
				if memories[j].Name == name {
					chosen = &memories[j]
				}
			}
			if need > free[name] {
				return nil, fmt.Errorf("placement %s=%s: %s of %s tensors, %s holds %s more", role, name, units.Bytes(need), role, name, units.Bytes(free[name]))
			}
		} else {
			for j := range memories {
				if need <= free[memories[j].Name] {
					chosen = &memories[j]
					break
				}
			}
			if chosen == nil {
				last := memories[len(memories)-1]
				return nil, fmt.Errorf("%s tensors need %s, more than any memory level holds (%s: %s free)", role, units.Bytes(need), last.Name, units.Bytes(free[last.Name]))
			}
		}
		free[chosen.Name] -= need
		for _, i := range ids {
			out[i] = *chosen
			if role != traces.RoleKVCache && role != traces.RoleParameter {
				for _, c := range caches {
					if float64(tr.Tensors[i].Bytes()) <= c.CapacityBytes/2 && c.Tier < chosen.Tier {
						out[i] = c
						break
					}
				}
			}
		}
	}
	return out, nil
}

// predictStage prices stage i.
func predictStage(tr *traces.Trace, i int, dev *hwmodel.Device, place []hwmodel.MemoryLevel, dtype string, stream bool) (StagePrediction, error) {
	st := tr.Stages[i]
	sp := StagePrediction{Name: st.Name, WorkUnits: st.WorkUnits}
	cu := dev.Concurrency
	slots := float64(cu.ParallelUnits * cu.WorkUnitsPerParallelUnit)
	active := math.Min(float64(max(st.WorkUnits, 1)), slots)
	if cu.CompilerMapped {
		active = slots
	}

	// Memory: fold each tensor at its level's granularity.
	byLevel := map[string]*LevelTraffic{}
	levelOf := map[string]hwmodel.MemoryLevel{}
	var caches []hwmodel.MemoryLevel
	for _, l := range dev.OrderedLevels() {
		if l.Role == hwmodel.RoleCache {
			caches = append(caches, l)
		}
	}
	grans := map[int64][]traces.TensorTraffic{}
	order := map[int]int{} // index in sp.Tensors → sort key
	var memBytes, memReadBytes int64
	// What each level's loads move and how many elements they request: a
	// loop step waits on its loads (stores drain behind it).
	loopBytes, loopElems := map[string]float64{}, map[string]float64{}
	for _, lvl := range place {
		if _, ok := grans[lvl.GranularityBytes]; ok || lvl.GranularityBytes <= 0 {
			continue
		}
		ft, err := tr.Fold(i, lvl.GranularityBytes)
		if err != nil {
			return sp, err
		}
		grans[lvl.GranularityBytes] = ft
	}
	for g, ft := range grans {
		for _, x := range ft {
			lvl := place[x.Tensor]
			if lvl.GranularityBytes != g || tr.Tensors[x.Tensor].OnChip {
				continue
			}
			lt, ok := byLevel[lvl.Name]
			if !ok {
				lt = &LevelTraffic{Level: lvl.Name}
				byLevel[lvl.Name] = lt
				levelOf[lvl.Name] = lvl
			}
			for dir, t := range []traces.Traffic{x.Read, x.Write} {
				if t.Requested == 0 {
					continue
				}
				moved := movedBytes(t, lvl, caches)
				lt.RequestedBytes += t.Requested
				lt.MovedBytes += moved
				if traces.Direction(dir) == traces.Read && lvl.Role == hwmodel.RoleMemory {
					memReadBytes += moved
				}
				if st.LoopSteps > 0 && traces.Direction(dir) == traces.Read {
					loopBytes[lvl.Name] += float64(moved)
					loopElems[lvl.Name] += float64(t.Requested) / float64(max(tr.Tensors[x.Tensor].ElemBytes, 1))
				}
				sp.Tensors = append(sp.Tensors, TensorTraffic{Tensor: tr.Tensors[x.Tensor].Name, Direction: traces.Direction(dir),
					Level: lvl.Name, RequestedBytes: t.Requested, MovedBytes: moved})
				order[len(sp.Tensors)-1] = int(x.Tensor)*2 + dir
			}
		}
	}
	idx := make([]int, len(sp.Tensors))
	for k := range idx {
		idx[k] = k
	}
	sort.Slice(idx, func(a, b int) bool { return order[idx[a]] < order[idx[b]] })
	sorted := make([]TensorTraffic, len(idx))
	for k, j := range idx {
		sorted[k] = sp.Tensors[j]
	}
	sp.Tensors = sorted
	names := make([]string, 0, len(byLevel))
	for n := range byLevel {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return levelOf[names[a]].Tier < levelOf[names[b]].Tier })
	for _, n := range names {
		lt, lvl := byLevel[n], levelOf[n]
		bw := lvl.Achievable(st.Kernel)
		loop, looped := lvl.Loop(st.Kernel, st.LoopGathers)
		switch {
		case lvl.DMA:
		case looped && st.LoopSteps > 0 && lt.MovedBytes > 0:
			// A loop whose steps do not overlap: each work unit takes its
			// steps one after another, active units at a time.
			units := float64(max(st.WorkUnits, 1))
			steps := units * float64(st.LoopSteps)
			perUnit := float64(st.LoopSteps) * loop.StepSeconds(loopBytes[n]/steps, loopElems[n]/steps)
			if lb := float64(lt.MovedBytes) / (units / active * perUnit); lb < bw {
				bw, lt.ConcurrencyLimited = lb, true
			}
		case lvl.LatencySeconds > 0 && cu.InflightBytesPerWorkUnit > 0:
			little := active * tileInflight(st, memReadBytes, cu.InflightBytesPerWorkUnit) / lvl.LatencySeconds
			if little < bw {
				bw, lt.ConcurrencyLimited = little, true
			}
		}
		lt.Bandwidth = bw
		lt.Seconds = float64(lt.MovedBytes) / bw
		sp.MemorySeconds += lt.Seconds
		sp.IdealSeconds += float64(lt.RequestedBytes) / lvl.PeakBandwidth
		if lt.MovedBytes > 0 {
			sp.LatencySeconds = math.Max(sp.LatencySeconds, lvl.LatencySeconds)
		}
		if lvl.Role == hwmodel.RoleMemory {
			memBytes += lt.MovedBytes
		}
		if lt.MovedBytes > 0 {
			// A fixed cost per stage that touches the level (an IPU's
			// remote-buffer copy is set up once per transfer).
			sp.OverheadSeconds += lvl.TransferOverheadSeconds
		}
		sp.Levels = append(sp.Levels, *lt)
	}

	sp.LatencySeconds *= float64(max(st.DependentLoads, 1))

	// Compute, on the fraction of the device the work units occupy.
	a := tr.StageArith(i)
	sp.Flops = a.Flops()
	occupancy := math.Min(1, float64(max(st.WorkUnits, 1))/float64(max(cu.ParallelUnits, 1)))
	if cu.CompilerMapped {
		occupancy = 1
	}
	vec, ok := dev.Peak("vector", dtype)
	if !ok {
		return sp, fmt.Errorf("no vector compute peak")
	}
	compute := float64(2*a.MACs+a.Compares+a.Elementwise) / vec
	if a.Exps > 0 {
		if sfu, ok := dev.Peak("special", dtype); ok {
			compute += float64(a.Exps) / sfu
		} else {
			compute += float64(a.Exps) / vec
		}
	}
	sp.ComputeSeconds = compute / occupancy
	if memBytes > 0 {
		sp.ArithmeticIntensity = float64(sp.Flops) / float64(memBytes)
	}

	sp.OverheadSeconds += float64(st.LaunchCount())*dev.Overheads.Launch(stream) + dev.Overheads.SyncSeconds
	if a.SoftmaxRows > 0 {
		if sm, ok := dev.Unit("softmax", dtype); ok {
			sp.SoftmaxSeconds = sm.CallSeconds(float64(a.SoftmaxRows), float64(a.Exps))
		}
	}
	if a.CopyElems > 0 {
		if ga, ok := dev.CopyUnit("", dtype); ok {
			rows := a.CopyElems
			if gs, ok := dev.CopyUnit(hwmodel.CopyScattered, dtype); ok && a.ScatteredCopyElems > 0 {
				rows -= a.ScatteredCopyElems
				sp.CopySeconds = gs.CallSeconds(0, float64(a.ScatteredCopyElems))
			}
			if rows > 0 {
				sp.CopySeconds += ga.CallSeconds(0, float64(rows))
			}
		}
	}
	if mm := st.Matmul; mm != nil {
		if u, ok := dev.MatmulUnit(mm.Form, int(mm.Rows), int(mm.Dim), dtype); ok {
			// The table times calls replayed in a CUDA graph, each with
			// the per-kernel cost the device's launch figure is (that
			// figure is itself the time of small kernels so replayed);
			// the stage's overhead counts that launch already.
			sp.MatmulSeconds = max(u.Table.At(float64(mm.Products), float64(mm.Keys))-dev.Overheads.LaunchSeconds, 0)
		}
	}
	if st.TileLoads > 0 && memReadBytes > 0 {
		sp.TileLoadSeconds = tileLoadSeconds(dev, st, memReadBytes, sp.MemorySeconds)
		if sp.TileLoadSeconds > 0 {
			sp.BlockCodeSeconds = blockCodeSeconds(dev, st)
			sp.TileLoadSeconds += sp.BlockCodeSeconds
		}
	}
	if a.TileMACs > 0 {
		// The tile's work includes the arithmetic counted above (the real
		// rows are rows of the tile): the stage computes for the longer.
		sp.TileSeconds = tileSeconds(dev, st.TileKernel, dtype, a, occupancy)
		sp.ComputeSeconds = max(sp.ComputeSeconds, sp.TileSeconds)
	}
	// A library softmax and a library copy are separate kernels: a stage
	// that runs both (a softmax, then the cast or group sum that top-k
	// ranks) runs them one after the other. Each moves its own bytes, so
	// together they overlap the stage's memory time.
	library := sp.SoftmaxSeconds + sp.CopySeconds + sp.MatmulSeconds
	work := max(sp.MemorySeconds, sp.ComputeSeconds, sp.LatencySeconds, library, sp.TileLoadSeconds)
	if a.SelectElems > 0 {
		// A top-k primitive runs its passes after the scores exist: it adds
		// to the stage rather than overlapping it. Devices that list no
		// top-k throughput price the selection as compares (above).
		if tk, ok := dev.Unit("topk", dtype); ok {
			sp.SelectSeconds = tk.CallSeconds(float64(a.SelectRows), float64(a.SelectElems))
			if stream && tk.Table != nil && a.SelectRows > 0 {
				// The table's graph replays paid the graph's launch for
				// each of the call's kernels; issued into a stream, the
				// kernels beyond the one the stage counts pay the
				// difference too.
				n := tk.Table.KernelsAt(float64(a.SelectRows), float64(a.SelectElems)/float64(a.SelectRows))
				sp.OverheadSeconds += (n - 1) * (dev.Overheads.Launch(true) - dev.Overheads.Launch(false))
			}
		}
	}
	sp.Seconds = sp.OverheadSeconds + work + sp.SelectSeconds
	switch {
	case sp.SelectSeconds > work && sp.SelectSeconds > sp.OverheadSeconds:
		sp.Bound = BoundSelect
	case sp.OverheadSeconds > work:
		sp.Bound = BoundOverhead
	case library > 0 && work == library && sp.MatmulSeconds >= max(sp.SoftmaxSeconds, sp.CopySeconds):
		sp.Bound = BoundMatmul
	case library > 0 && work == library && sp.SoftmaxSeconds >= sp.CopySeconds:
		sp.Bound = BoundSoftmax
	case library > 0 && work == library:
		sp.Bound = BoundCopy
	case sp.TileLoadSeconds > 0 && work == sp.TileLoadSeconds:
		sp.Bound = BoundTileLoads
	case work == sp.MemorySeconds:
		sp.Bound = BoundMemory
	case work == sp.ComputeSeconds:
		sp.Bound = BoundCompute
	default:
		sp.Bound = BoundLatency
	}
	return sp, nil
}

// tileInflight is the bytes a work unit keeps in flight: the device's
// figure (measured on kernels that load in loop steps), or for a stage
// whose blocks load whole tiles (traces.Stage.TileLoads) the tiles it keeps
// in flight, where those are more: a cp.async tile is one request for all
// its bytes.
func tileInflight(st traces.Stage, readBytes int64, device float64) float64 {
	if st.TileLoads == 0 || readBytes == 0 {
		return device
	}
	return max(device, tileBytes(st, readBytes)*float64(max(st.TilesInFlight, 1)))
}

// tileBytes is the size of one of a tile-loading stage's tiles: its bytes
// read from memory over its work units' tile loads.
func tileBytes(st traces.Stage, readBytes int64) float64 {
	return float64(readBytes) / (float64(max(st.WorkUnits, 1)) * float64(st.TileLoads))
}

// tileLoadSeconds prices a stage's tile loads from the device's tile-loads
// table for the stage's tiles in flight: its time for the stage's work
// units each loading TileLoads tiles, less the launch the stage's overhead counts (the table
// times kernels replayed in a CUDA graph, as the launch figure is). A tile
// of another size than the table's counts as that many of the table's
// tiles (a byte-for-byte scaling, exact only at the table's tile). Past the
// table's last column a block's further loads stream at the stage's memory
// rate (memorySeconds is the whole stage's): over a long walk the blocks
// drift apart and keep the memory busy, so only the first loads pay for
// starting in lockstep. (The tables' last columns are not yet that steady
// state: the H200's 264 blocks take 2.25 µs per load from 8 to 12 loads and
// 1.88 µs from 12 to 16, and cuDNN's long walks read at 4.7 TB/s.) 0 where
// the device measured no tile loads for that many in flight.
func tileLoadSeconds(dev *hwmodel.Device, st traces.Stage, readBytes int64, memorySeconds float64) float64 {
	u, ok := dev.TileLoadUnit(int(st.TilesInFlight))
	if !ok {
		return 0
	}
	units := float64(max(st.WorkUnits, 1))
	loads := float64(st.TileLoads) * tileBytes(st, readBytes) / float64(u.TileBytes)
	last := u.Table.Cols[len(u.Table.Cols)-1]
	t := u.Table.At(units, min(loads, last))
	if loads > last {
		t += memorySeconds * (loads - last) / loads
	}
	return max(t-dev.Overheads.LaunchSeconds, 0)
}

// blockCodeSeconds prices the code a tile-loading stage's blocks run
// outside their tile loop from the device's block-code unit: the table's
// time for the stage's blocks at its instructions per warp, less its time
// at the first column (the measured kernel's own code, which the
// tile-loads table already holds), plus each parameter line beyond the
// kernel's own. A stage with less code than that kernel gets nothing
// back: the tile-loads table is the floor. 0 where the stage states no
// code or the device measured none.
func blockCodeSeconds(dev *hwmodel.Device, st traces.Stage) float64 {
	u, ok := dev.BlockCodeUnit()
	if !ok || st.BlockInstructions+st.ParamLines == 0 {
		return 0
	}
	units := float64(max(st.WorkUnits, 1))
	t := 0.0
	if base := u.Table.Cols[0]; float64(st.BlockInstructions) > base {
		t = max(u.Table.At(units, float64(st.BlockInstructions))-u.Table.At(units, base), 0)
	}
	return t + u.ParamLineSeconds*float64(max(st.ParamLines-int64(u.ParamLines), 0))
}

// tileSeconds prices a stage's query tiles: from the kernel's measured
// attention-tile table where the device lists one (its time for that many
// thread blocks of that many MACs each: the kernel's softmax and
// bookkeeping on the tile are in it), else at the matrix peak on the
// fraction of the device the stage occupies, a lower bound.
func tileSeconds(dev *hwmodel.Device, kernel, dtype string, a traces.Arith, occupancy float64) float64 {
	if u, ok := dev.TileUnit(kernel, dtype); ok {
		return u.CallSeconds(float64(a.TileUnits), float64(a.TileMACs))
	}
	if mx, ok := dev.Peak("matrix", dtype); ok {
		return 2 * float64(a.TileMACs) / mx / occupancy
	}
	return 0
}

// movedBytes is what a level moves for folded traffic t: a memory level
// moves every run's granules unless a cache in front of it holds the stage's
// footprint of the tensor, which then serves the re-reads; a cache moves
// each granule once.
func movedBytes(t traces.Traffic, lvl hwmodel.MemoryLevel, caches []hwmodel.MemoryLevel) int64 {
	if lvl.Role != hwmodel.RoleMemory {
		return t.Moved
	}
	for _, c := range caches {
		if c.Tier < lvl.Tier && float64(t.Moved) <= c.CapacityBytes {
			return t.Moved
		}
	}
	return t.MovedNoReuse
}

func levelNames(ls []hwmodel.MemoryLevel) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}
