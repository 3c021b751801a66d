// Package traces is the data model of bwsim: a byte-level record of the memory
// traffic of one simulated decode step.
//
// A Trace lists the tensors a kernel touches and the ordered stages it runs.
// Each stage is a device-wide step that ends in a global synchronisation (a
// kernel launch on a GPU, a compute set on an IPU) and carries the extents it
// reads and writes, its arithmetic and the number of independent work units
// it can spread over the device.
//
// Large shapes are simulated on a sample of (sequence, KV head) pairs. Extents
// and arithmetic are recorded for the sampled pairs only; Scale says how many
// pairs the full shape has, and every total this package reports (ReadBytes,
// StageTotals, Fold, ...) is already scaled to the full shape.
package traces

import (
	"fmt"
	"iter"
	"math"
	"slices"
)

// Role says what a tensor is for, which decides where a device keeps it.
type Role string

// Tensor roles.
const (
	RoleKVCache      Role = "kv-cache"     // persistent per-sequence cache (K, Kt, V, Vmean)
	RoleParameter    Role = "parameter"    // model weights and calibration data
	RoleInput        Role = "input"        // per-step activation handed in (the query)
	RoleIntermediate Role = "intermediate" // handed from one stage to the next
	RoleOutput       Role = "output"       // the step's result
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleKVCache, RoleParameter, RoleInput, RoleIntermediate, RoleOutput:
		return true
	}
	return false
}

// Direction is the direction of a transfer as seen from the compute units.
type Direction uint8

// Transfer directions.
const (
	Read Direction = iota
	Write
)

func (d Direction) String() string {
	if d == Write {
		return "write"
	}
	return "read"
}

// TensorID indexes Trace.Tensors.
type TensorID int32

// Tensor describes one buffer in device memory, in the target's element size
// and layout. Offsets of extents are byte offsets into this buffer.
type Tensor struct {
	Name      string  `json:"name"`
	Role      Role    `json:"role"`
	ElemBytes int     `json:"elem_bytes"`
	Shape     []int64 `json:"shape"`
	// Layout names the dimension order, outermost first, e.g. "B,Hkv,S,D".
	Layout string `json:"layout"`
	// OnChip marks a tensor that a fused kernel keeps in registers or shared
	// memory: it is listed for completeness and never has extents.
	OnChip bool `json:"on_chip,omitempty"`
}

// Bytes is the tensor's full size.
func (t Tensor) Bytes() int64 {
	n := int64(t.ElemBytes)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Extent is a run of bytes of one tensor moved in one direction. A strided
// extent repeats Count times, each repeat Stride bytes after the previous one;
// it is how a kernel reports a column gather (one element per row) without a
// call per element. For a plain run Count is 1 and Stride 0.
//
// A gather extent (Index not nil) stands for one copy of that run or strided
// series per entry a of Index, in Index's order, each starting Pitch·a bytes
// after Offset: k selected rows of K are one extent with Length and Pitch the
// row size and Index the row numbers. It describes exactly the extents
// Expand lists, which are what recording the copies one by one would have
// stored (a copy that continues the previous one merged into it), so that
// every total, Fold and Summarize is the same for either form.
type Extent struct {
	Tensor TensorID  `json:"t"`
	Dir    Direction `json:"d"`
	Offset int64     `json:"o"`
	Length int64     `json:"n"`
	Stride int64     `json:"s,omitempty"`
	Count  int64     `json:"c,omitempty"`
	Pitch  int64     `json:"p,omitempty"`
	Index  []int32   `json:"i,omitempty"`
}

// Repeats is Count with the zero value meaning one run.
func (e Extent) Repeats() int64 {
	if e.Count <= 0 {
		return 1
	}
	return e.Count
}

// Equal reports whether e and f are the same extent in the same form.
func (e Extent) Equal(f Extent) bool {
	return e.Tensor == f.Tensor && e.Dir == f.Dir && e.Offset == f.Offset && e.Length == f.Length &&
		e.Stride == f.Stride && e.Count == f.Count && e.Pitch == f.Pitch && slices.Equal(e.Index, f.Index) &&
		(e.Index == nil) == (f.Index == nil)
}

// Gather reports whether e is a gather extent.
func (e Extent) Gather() bool { return e.Index != nil }

// Copies is the number of copies of the run or series e stands for: the
// length of Index for a gather, otherwise 1.
func (e Extent) Copies() int64 {
	if e.Index == nil {
		return 1
	}
	return int64(len(e.Index))
}

// Bytes is the number of bytes the extent moves.
func (e Extent) Bytes() int64 { return e.Length * e.Repeats() * e.Copies() }

// at is the offset of copy j of a gather.
func (e Extent) at(j int) int64 { return e.Offset + int64(e.Index[j])*e.Pitch }

// Parts is the number of extents e stands for without gathers: 1, or for a
// gather the length of Expand's list.
func (e Extent) Parts() int64 {
	if e.Index == nil {
		return 1
	}
	if e.Repeats() > 1 {
		return int64(len(e.Index))
	}
	n := int64(0)
	for j := range e.Index {
		if j == 0 || e.at(j) != e.at(j-1)+e.Length {
			n++
		}
	}
	return n
}

// Runs is the number of contiguous runs e describes: Parts times Repeats.
func (e Extent) Runs() int64 { return e.Parts() * e.Repeats() }

// End is one past the last byte the extent touches.
func (e Extent) End() int64 {
	off := e.Offset
	if len(e.Index) > 0 {
		off = e.at(0)
		for j := range e.Index {
			off = max(off, e.at(j))
		}
	}
	return off + (e.Repeats()-1)*e.Stride + e.Length
}

// Expand appends to dst the extents e stands for without gathers
// (Expanded) and returns the extended slice.
func (e Extent) Expand(dst []Extent) []Extent {
	for p := range e.Expanded() {
		dst = append(dst, p)
	}
	return dst
}

// Expanded yields the extents e stands for without gathers: e itself when it
// is not a gather; otherwise one plain run per maximal block of copies that
// follow each other in memory (copy j+1 starting where copy j ends), or one
// strided extent per copy when the copies are series.
func (e Extent) Expanded() iter.Seq[Extent] {
	return func(yield func(Extent) bool) {
		if e.Index == nil {
			yield(e)
			return
		}
		c := e
		c.Pitch, c.Index = 0, nil
		if e.Repeats() > 1 {
			for j := range e.Index {
				c.Offset = e.at(j)
				if !yield(c) {
					return
				}
			}
			return
		}
		c.Count = 1
		for j := 0; j < len(e.Index); {
			k := e.blockEnd(j)
			c.Offset, c.Length = e.at(j), int64(k-j)*e.Length
			if !yield(c) {
				return
			}
			j = k
		}
	}
}

// blockEnd returns one past the last copy of the block of contiguous copies
// that starts at copy j of a gather of runs.
func (e Extent) blockEnd(j int) int {
	k := j + 1
	for k < len(e.Index) && e.at(k) == e.at(k-1)+e.Length {
		k++
	}
	return k
}

// Arith counts the arithmetic of a stage, in operations on elements.
type Arith struct {
	// MACs are multiply-accumulates (one multiply and one add), the unit of
	// dot products and matrix-vector products.
	MACs int64 `json:"macs"`
	// Exps are exponentials (softmax).
	Exps int64 `json:"exps"`
	// Compares are comparisons made by selection (top-k, max).
	Compares int64 `json:"compares"`
	// Elementwise are other element operations (scaling, adds, divides, lerp).
	Elementwise int64 `json:"elementwise"`
	// SelectElems are the elements scanned by selection primitives (top-k
	// over scores): devices price them at their top-k throughput, which is
	// set by passes and synchronisation rather than arithmetic.
	SelectElems int64 `json:"select_elems,omitempty"`
	// SelectRows are the independent slices those elements form (one top-k
	// per row): a selection primitive's time depends on the row length, not
	// only on the element count. 0 when unknown.
	SelectRows int64 `json:"select_rows,omitempty"`
	// SoftmaxRows are the rows of a softmax run as its own library kernel
	// over the stage's Exps elements (an unfused pipeline's torch.softmax),
	// which devices may price from a measured table; 0 when the softmax is
	// fused into a kernel with other work.
	SoftmaxRows int64 `json:"softmax_rows,omitempty"`
	// CopyElems are the elements library copy kernels write (torch.gather,
	// dtype casts, repeats of K and V for GQA): their per-element index
	// arithmetic, not the bytes, sets their pace, so devices may price
	// them at a measured rate.
	CopyElems int64 `json:"copy_elems,omitempty"`
	// ScatteredCopyElems are those of CopyElems a copy kernel picks one
	// at a time within rows (torch.gather of r components of every key
	// row, K stored once) rather than as whole rows: devices may price
	// them at their own measured rate, which is slower.
	ScatteredCopyElems int64 `json:"scattered_copy_elems,omitempty"`
	// TileMACs are the multiply-accumulates of a tiled fused-attention
	// kernel's query tiles, the padding rows included: such a kernel
	// computes a whole tile of query rows (64 or 128) against every key
	// block however few rows hold a query, so one decode query costs a
	// tile's matrix work. Stage.TileKernel names the kernel; devices price
	// these at that kernel's measured tile throughput. They are not in
	// MACs, which count the arithmetic the algorithm needs.
	TileMACs int64 `json:"tile_macs,omitempty"`
	// TileUnits are the thread blocks those tiles run as (one tile each):
	// the tile throughput depends on how many share the device.
	TileUnits int64 `json:"tile_units,omitempty"`
}

// Add returns a + b.
func (a Arith) Add(b Arith) Arith {
	return Arith{a.MACs + b.MACs, a.Exps + b.Exps, a.Compares + b.Compares, a.Elementwise + b.Elementwise,
		a.SelectElems + b.SelectElems, a.SelectRows + b.SelectRows, a.SoftmaxRows + b.SoftmaxRows, a.CopyElems + b.CopyElems,
		a.ScatteredCopyElems + b.ScatteredCopyElems, a.TileMACs + b.TileMACs, a.TileUnits + b.TileUnits}
}

// Flops counts a MAC as two floating-point operations and every other
// operation as one.
func (a Arith) Flops() int64 { return 2*a.MACs + a.Exps + a.Compares + a.Elementwise }

// MaxTilesInFlight bounds Stage.TilesInFlight: a thread block's shared
// memory holds a few K or V tiles at most.
const MaxTilesInFlight = 8

// MaxBlockInstructions and MaxParamLines bound Stage.BlockInstructions and
// Stage.ParamLines: a kernel's straight-line code around its tile loop
// runs to thousands of instructions per warp, and a launch passes at most
// 32 KiB of parameters (512 lines).
const (
	MaxBlockInstructions = 1 << 20
	MaxParamLines        = 512
)

// Stage is one device-wide step of a kernel.
type Stage struct {
	Name    string   `json:"name"`
	Extents []Extent `json:"extents"`
	Arith   Arith    `json:"arith"`
	// WorkUnits is the number of independent units of work the stage offers the
	// device for the full shape (thread blocks, tiles' jobs, threads): the
	// concurrency a device can exploit to hide memory latency.
	WorkUnits int64 `json:"work_units"`
	// Launches is the number of device kernels (GPU launches, IPU compute
	// sets) the modelled implementation runs for the stage; 0 means 1.
	Launches int `json:"launches,omitempty"`
	// TileKernel names the tiled fused-attention kernel whose query tiles
	// Arith.TileMACs counts (a device's attention-tile unit of that
	// kernel prices them); empty when the stage has none.
	TileKernel string `json:"tile_kernel,omitempty"`
	// Kernel names the class of code that runs the stage where a device
	// measures it apart ("triton": a Triton loop whose tiles feed tl.dot
	// through shared memory); a memory level's kernel_bandwidth for it
	// replaces the level's achievable bandwidth. Empty: the stream rate.
	Kernel string `json:"kernel,omitempty"`
	// DependentLoads is the longest chain of loads one work unit issues in
	// which each load waits for the one before (a loop whose accumulator
	// the compiler cannot overlap, such as FlashAttention-2's combine
	// walking its splits): the stage takes at least that many latencies of
	// the slowest level it touches. 0 counts as one.
	DependentLoads int64 `json:"dependent_loads,omitempty"`
	// LoopSteps is how many steps each work unit's load loop runs (a Triton
	// program's chunks of positions), for kernels whose steps do not
	// overlap; 0: not modelled. With Kernel it selects a memory level's
	// kernel_loops figures.
	LoopSteps int64 `json:"loop_steps,omitempty"`
	// LoopGathers says the loop loads single elements scattered over rows
	// (r components of every key row) rather than runs of rows.
	LoopGathers bool `json:"loop_gathers,omitempty"`
	// TileLoads is how many tiles each work unit loads in turn, at most
	// TilesInFlight at a time (a split-KV attention kernel's K and V
	// tiles: FlashAttention-2's and cuDNN's); a device that measured such
	// loads (its tile-loads unit for that count) prices the stage at least
	// at them. 0: not modelled.
	TileLoads int64 `json:"tile_loads,omitempty"`
	// TilesInFlight is how many of its tiles a work unit keeps in flight:
	// 1 (or 0) issues the next only when the last has landed
	// (FlashAttention-2's split-KV kernel), 2 issues the next before
	// waiting on the current (cuDNN's decode kernel). Little's law counts
	// them as the work unit's bytes in flight.
	TilesInFlight int64 `json:"tiles_in_flight,omitempty"`
	// BlockInstructions, with TileLoads, is the instructions each warp of a
	// work unit executes outside its tile loop: before it first waits for a
	// tile (parameters, indices, addresses) and after its last tile has
	// landed (the last products, the epilogue, the output write). In a
	// grid that runs at once no other block hides them; a device that
	// measured such code (its block-code unit) adds their time to the tile
	// loads'. 0: not modelled.
	BlockInstructions int64 `json:"block_instructions,omitempty"`
	// ParamLines, with TileLoads, is the 64-byte lines of kernel
	// parameters a work unit reads before its first wait: each is a
	// constant-cache miss that every launch pays afresh.
	ParamLines int64 `json:"param_lines,omitempty"`
	// Matmul, when set, says the stage is one library batched matrix
	// product (cuBLAS through torch.bmm) of that shape: a device that
	// measured the library's products prices the stage from them.
	Matmul *Matmul `json:"matmul,omitempty"`
}

// Matmul is the shape of a library batched matrix product over the full
// step: Products independent products, each of Rows query rows against
// Keys key positions in Dim dimensions.
type Matmul struct {
	// Form is MatmulScores or MatmulWeighted.
	Form     string `json:"form"`
	Products int64  `json:"products"`
	Rows     int64  `json:"rows"`
	Keys     int64  `json:"keys"`
	Dim      int64  `json:"dim"`
}

// Product forms of a library matmul stage.
const (
	// MatmulScores is q·Kᵀ: [Rows × Dim] times the transpose of a
	// [Keys × Dim] operand.
	MatmulScores = "qk"
	// MatmulWeighted is P·V: [Rows × Keys] times [Keys × Dim].
	MatmulWeighted = "pv"
)

// validMatmul checks a stage's library product: a known form and every
// extent positive and within what a device could hold.
func validMatmul(m *Matmul) error {
	if m.Form != MatmulScores && m.Form != MatmulWeighted {
		return fmt.Errorf("matmul form %q (want %s or %s)", m.Form, MatmulScores, MatmulWeighted)
	}
	for _, x := range []struct {
		name string
		n    int64
	}{{"products", m.Products}, {"rows", m.Rows}, {"keys", m.Keys}, {"dim", m.Dim}} {
		if x.n < 1 || x.n > 1<<40 {
			return fmt.Errorf("matmul %s %d out of range", x.name, x.n)
		}
	}
	return nil
}

// LaunchCount is Launches with the zero value meaning one.
func (s Stage) LaunchCount() int {
	if s.Launches <= 0 {
		return 1
	}
	return s.Launches
}

// Scale relates the sampled pairs to the full shape.
type Scale struct {
	Sampled int64 `json:"sampled_pairs"`
	Total   int64 `json:"total_pairs"`
}

// Factor is Total/Sampled.
func (s Scale) Factor() float64 {
	if s.Sampled == 0 {
		return 0
	}
	return float64(s.Total) / float64(s.Sampled)
}

// Apply scales a count recorded for the sampled pairs to the full shape,
// exactly when Total is a multiple of Sampled and rounded otherwise.
func (s Scale) Apply(n int64) int64 {
	if s.Sampled <= 0 || s.Sampled == s.Total {
		return n
	}
	if s.Total%s.Sampled == 0 {
		return n * (s.Total / s.Sampled)
	}
	return int64(math.Round(float64(n) * s.Factor()))
}

// Trace is the record of one simulated decode step.
type Trace struct {
	// Method names the kernel that produced the trace, e.g. "sparq".
	Method  string   `json:"method"`
	Tensors []Tensor `json:"tensors"`
	Stages  []Stage  `json:"stages"`
	Scale   Scale    `json:"scale"`
}

// New returns an empty trace for method covering total (sequence, KV head)
// pairs of which sampled are simulated.
func New(method string, sampled, total int64) *Trace {
	return &Trace{Method: method, Scale: Scale{Sampled: sampled, Total: total}}
}

// AddTensor declares a tensor and returns its id.
func (t *Trace) AddTensor(tn Tensor) TensorID {
	t.Tensors = append(t.Tensors, tn)
	return TensorID(len(t.Tensors) - 1)
}

// TensorByName returns the id of the named tensor.
func (t *Trace) TensorByName(name string) (TensorID, bool) {
	for i, tn := range t.Tensors {
		if tn.Name == name {
			return TensorID(i), true
		}
	}
	return -1, false
}

// AddStage appends a stage with no extents and returns its index.
func (t *Trace) AddStage(name string, workUnits int64) int {
	t.Stages = append(t.Stages, Stage{Name: name, WorkUnits: workUnits})
	return len(t.Stages) - 1
}

// Append adds what a Buf recorded to stage i. Calling Append for the work
// items of a stage in a fixed order makes the trace deterministic however the
// items were scheduled.
func (t *Trace) Append(i int, b *Buf) { t.AppendAll(i, b) }

// AppendAll appends what each of bs recorded to stage i, in order, as Append
// for each would, growing the stage's storage once; nil Bufs are skipped.
func (t *Trace) AppendAll(i int, bs ...*Buf) {
	n, nidx := 0, 0
	for _, b := range bs {
		if b != nil {
			n += len(b.ext)
			nidx += len(b.idx)
		}
	}
	st := &t.Stages[i]
	st.Extents = slices.Grow(st.Extents, n)
	// A Buf's index storage is reused by its next recording: copy the
	// gathers' indices into one slice of the trace's own.
	var idx []int32
	if nidx > 0 {
		idx = make([]int32, 0, nidx)
	}
	for _, b := range bs {
		if b == nil {
			continue
		}
		for _, e := range b.ext {
			if e.Index != nil {
				k := len(idx)
				idx = append(idx, e.Index...)
				e.Index = idx[k:len(idx):len(idx)]
				st.Extents = appendGather(st.Extents, e, false)
				continue
			}
			st.Extents = appendMerged(st.Extents, e)
		}
		st.Arith = st.Arith.Add(b.arith)
	}
}

// Totals are byte counts for the full shape.
type Totals struct {
	ReadBytes  int64 `json:"read_bytes"`
	WriteBytes int64 `json:"write_bytes"`
}

// Bytes is reads plus writes.
func (x Totals) Bytes() int64 { return x.ReadBytes + x.WriteBytes }

func (x *Totals) add(e Extent) {
	if e.Dir == Write {
		x.WriteBytes += e.Bytes()
	} else {
		x.ReadBytes += e.Bytes()
	}
}

func (x Totals) scaled(s Scale) Totals {
	return Totals{s.Apply(x.ReadBytes), s.Apply(x.WriteBytes)}
}

// Totals returns the bytes the whole step requests, scaled to the full shape.
func (t *Trace) Totals() Totals {
	var x Totals
	for _, st := range t.Stages {
		for _, e := range st.Extents {
			x.add(e)
		}
	}
	return x.scaled(t.Scale)
}

// StageTotals returns the bytes stage i requests, scaled to the full shape.
func (t *Trace) StageTotals(i int) Totals {
	var x Totals
	for _, e := range t.Stages[i].Extents {
		x.add(e)
	}
	return x.scaled(t.Scale)
}

// TensorTotals returns, for every tensor, the bytes requested over the whole
// step, scaled to the full shape.
func (t *Trace) TensorTotals() []Totals {
	xs := make([]Totals, len(t.Tensors))
	for _, st := range t.Stages {
		for _, e := range st.Extents {
			xs[e.Tensor].add(e)
		}
	}
	for i := range xs {
		xs[i] = xs[i].scaled(t.Scale)
	}
	return xs
}

// StageTensorTotals returns the bytes stage i requests from each tensor.
func (t *Trace) StageTensorTotals(i int) []Totals {
	xs := make([]Totals, len(t.Tensors))
	for _, e := range t.Stages[i].Extents {
		xs[e.Tensor].add(e)
	}
	for j := range xs {
		xs[j] = xs[j].scaled(t.Scale)
	}
	return xs
}

// StageArith returns stage i's arithmetic scaled to the full shape.
func (t *Trace) StageArith(i int) Arith {
	a := t.Stages[i].Arith
	s := t.Scale
	return Arith{s.Apply(a.MACs), s.Apply(a.Exps), s.Apply(a.Compares), s.Apply(a.Elementwise),
		s.Apply(a.SelectElems), s.Apply(a.SelectRows), s.Apply(a.SoftmaxRows), s.Apply(a.CopyElems),
		s.Apply(a.ScatteredCopyElems), s.Apply(a.TileMACs), s.Apply(a.TileUnits)}
}

// ExtentCount is the number of recorded extents (not scaled), each gather
// counted as the extents it stands for (Extent.Parts).
func (t *Trace) ExtentCount() int {
	n := 0
	for _, st := range t.Stages {
		n += st.ExtentCount()
	}
	return n
}

// ExtentCount is the number of the stage's extents, each gather counted as
// the extents it stands for (Extent.Parts).
func (s Stage) ExtentCount() int {
	n := int64(0)
	for _, e := range s.Extents {
		n += e.Parts()
	}
	return int(n)
}

// validGather checks a gather extent whose first copy (at Offset) is known to
// lie inside a tensor of size bytes: a positive pitch and every copy inside.
func validGather(e Extent, size int64) error {
	if len(e.Index) == 0 || e.Pitch <= 0 {
		return fmt.Errorf("gather with %d indices and pitch %d", len(e.Index), e.Pitch)
	}
	// The last copy ends room bytes before the tensor's end when it starts
	// at Offset.
	room := size - e.Offset - (e.Repeats()-1)*e.Stride - e.Length
	for _, a := range e.Index {
		if a < 0 || int64(a) > room/e.Pitch {
			return fmt.Errorf("gather index %d outside", a)
		}
	}
	return nil
}

// MaxTraceBytes bounds the bytes one trace may record (before scaling), so
// that every sum over it fits in an int64 even after scaling by up to 2^20.
const MaxTraceBytes = 1 << 42

// MaxGatherIndices bounds the gather indices of one trace, so that folding
// a decoded trace (a granule span per gathered run) needs no more memory than
// the plain extents a trace file of MaxDecodeBytes can hold.
const MaxGatherIndices = 1 << 25

// Validate checks the structural invariants every consumer relies on: known
// roles, positive element sizes and dimensions, extents inside their tensors
// (every copy of a gather), no extents on on-chip tensors, at most
// MaxGatherIndices gather indices, and a sane scale.
func (t *Trace) Validate() error {
	if t.Scale.Sampled <= 0 || t.Scale.Total < t.Scale.Sampled {
		return fmt.Errorf("scale: sampled pairs %d, total pairs %d: need 0 < sampled <= total", t.Scale.Sampled, t.Scale.Total)
	}
	sizes := make([]int64, len(t.Tensors))
	for i, tn := range t.Tensors {
		if tn.Name == "" {
			return fmt.Errorf("tensor %d: empty name", i)
		}
		if !tn.Role.Valid() {
			return fmt.Errorf("tensor %q: unknown role %q", tn.Name, tn.Role)
		}
		if tn.ElemBytes <= 0 || tn.ElemBytes > 64 {
			return fmt.Errorf("tensor %q: element size %d bytes out of range", tn.Name, tn.ElemBytes)
		}
		size := int64(tn.ElemBytes)
		for _, d := range tn.Shape {
			if d <= 0 {
				return fmt.Errorf("tensor %q: dimension %d not positive", tn.Name, d)
			}
			if size > math.MaxInt64/d {
				return fmt.Errorf("tensor %q: size overflows", tn.Name)
			}
			size *= d
		}
		sizes[i] = size
	}
	var total, indices int64
	for si, st := range t.Stages {
		if st.WorkUnits < 0 {
			return fmt.Errorf("stage %q: negative work units", st.Name)
		}
		if st.DependentLoads < 0 || st.DependentLoads > 1<<30 {
			return fmt.Errorf("stage %q: %d dependent loads out of range", st.Name, st.DependentLoads)
		}
		if st.Launches < 0 || st.Launches > 1<<20 {
			return fmt.Errorf("stage %q: %d launches out of range", st.Name, st.Launches)
		}
		if st.LoopSteps < 0 || st.LoopSteps > 1<<40 || (st.LoopGathers && st.LoopSteps == 0) {
			return fmt.Errorf("stage %q: %d loop steps out of range (gathers %v)", st.Name, st.LoopSteps, st.LoopGathers)
		}
		if st.TileLoads < 0 || st.TileLoads > 1<<40 {
			return fmt.Errorf("stage %q: %d tile loads out of range", st.Name, st.TileLoads)
		}
		if st.TilesInFlight < 0 || st.TilesInFlight > MaxTilesInFlight || (st.TilesInFlight > 0 && st.TileLoads == 0) {
			return fmt.Errorf("stage %q: %d tiles in flight out of range (%d tile loads)", st.Name, st.TilesInFlight, st.TileLoads)
		}
		if st.BlockInstructions < 0 || st.BlockInstructions > MaxBlockInstructions || st.ParamLines < 0 || st.ParamLines > MaxParamLines ||
			(st.BlockInstructions+st.ParamLines > 0 && st.TileLoads == 0) {
			return fmt.Errorf("stage %q: %d block instructions, %d parameter lines out of range (%d tile loads)", st.Name, st.BlockInstructions, st.ParamLines, st.TileLoads)
		}
		if st.Matmul != nil {
			if err := validMatmul(st.Matmul); err != nil {
				return fmt.Errorf("stage %q: %w", st.Name, err)
			}
		}
		a := st.Arith
		if a.MACs < 0 || a.Exps < 0 || a.Compares < 0 || a.Elementwise < 0 || a.SelectElems < 0 || a.SelectRows < 0 || a.SoftmaxRows < 0 || a.CopyElems < 0 ||
			a.ScatteredCopyElems < 0 || a.TileMACs < 0 || a.TileUnits < 0 {
			return fmt.Errorf("stage %q: negative arithmetic count", st.Name)
		}
		if a.ScatteredCopyElems > a.CopyElems {
			return fmt.Errorf("stage %q: %d scattered copy elements of %d copied", st.Name, a.ScatteredCopyElems, a.CopyElems)
		}
		if (a.TileMACs > 0) != (st.TileKernel != "") || a.TileUnits > a.TileMACs || (a.TileMACs > 0 && a.TileUnits == 0) {
			return fmt.Errorf("stage %q: query tiles need a kernel name, units and MACs together (kernel %q, %d units, %d MACs)",
				st.Name, st.TileKernel, a.TileUnits, a.TileMACs)
		}
		if a.SelectRows > a.SelectElems || a.SoftmaxRows > a.Exps {
			return fmt.Errorf("stage %q: more rows than elements (select %d of %d, softmax %d of %d)",
				st.Name, a.SelectRows, a.SelectElems, a.SoftmaxRows, a.Exps)
		}
		for ei, e := range st.Extents {
			if e.Tensor < 0 || int(e.Tensor) >= len(t.Tensors) {
				return fmt.Errorf("stage %d extent %d: tensor index %d out of range", si, ei, e.Tensor)
			}
			tn := t.Tensors[e.Tensor]
			if tn.OnChip {
				return fmt.Errorf("stage %q: extent on on-chip tensor %q", st.Name, tn.Name)
			}
			if e.Dir != Read && e.Dir != Write {
				return fmt.Errorf("stage %q extent %d: bad direction %d", st.Name, ei, e.Dir)
			}
			if e.Offset < 0 || e.Length <= 0 || e.Stride < 0 || e.Count < 0 {
				return fmt.Errorf("stage %q extent %d: negative or empty extent", st.Name, ei)
			}
			size := sizes[e.Tensor]
			r := e.Repeats()
			if e.Length > size || e.Offset > size-e.Length ||
				(r > 1 && (e.Stride < e.Length || (r-1) > (size-e.Offset-e.Length)/e.Stride)) {
				return fmt.Errorf("stage %q extent %d: bytes outside tensor %q (%d bytes) or overlapping repeats", st.Name, ei, tn.Name, size)
			}
			// Repeats do not overlap, so one run or series moves at most its
			// tensor's size.
			one := e.Length * r
			if e.Index != nil || e.Pitch != 0 {
				if indices += int64(len(e.Index)); indices > MaxGatherIndices {
					return fmt.Errorf("stage %q extent %d: more than %d gather indices", st.Name, ei, MaxGatherIndices)
				}
				if err := validGather(e, size); err != nil {
					return fmt.Errorf("stage %q extent %d: %w in tensor %q (%d bytes)", st.Name, ei, err, tn.Name, size)
				}
			}
			// Keep the sum of all of them inside int64.
			if e.Copies() > (MaxTraceBytes-total)/one {
				return fmt.Errorf("stage %q extent %d: trace moves more than %d bytes", st.Name, ei, int64(MaxTraceBytes))
			}
			total += e.Bytes()
		}
	}
	return nil
}
