package kernels

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/traces"
)

// Impl is how a kernel is structured on the target.
type Impl string

// Implementations.
const (
	// Unfused runs one device-wide stage per step of the algorithm, handing
	// intermediates (scores, indices, α) through device memory, as eager
	// PyTorch and the paper's Triton kernels do.
	Unfused Impl = "unfused"
	// Fused runs the whole step as one stage and keeps intermediates on chip,
	// as flash-decoding does for dense attention.
	Fused Impl = "fused"
)

// KLayout is how a SparQ (or Loki) cache stores K.
type KLayout string

// K layouts.
const (
	// KTwice stores K row-major [S, D] and again S-contiguous [D, S] (the
	// paper's layout, +50% cache memory): step 1 reads r contiguous rows of Kt.
	KTwice KLayout = "twice"
	// KOnce stores K row-major only: step 1 gathers r scattered components of
	// every row.
	KOnce KLayout = "once"
)

// Method names.
const (
	MethodDense = "dense"
	MethodSparQ = "sparq"
	// MethodTopK is the oracle: exact scores from all of K, then attention
	// over the exact top-k positions.
	MethodTopK = "topk"
	// MethodFlexGen reads all of K for exact scores and only the top-k rows
	// of V.
	MethodFlexGen = "flexgen"
	// MethodH2O is heavy-hitter eviction into a fixed-size cache.
	MethodH2O = "h2o"
	// MethodWindow is StreamingLLM / LM-Infinite: sink tokens plus a
	// sliding window.
	MethodWindow = "window"
	// MethodQuest ranks pages of keys by per-channel min/max bounds.
	MethodQuest = "quest"
	// MethodLoki scores with the leading principal components of the keys.
	MethodLoki = "loki"
	// MethodDoubleSparse scores with a compact label cache of static
	// outlier channels.
	MethodDoubleSparse = "doublesparse"
)

// Methods lists every method name, dense first.
func Methods() []string {
	return []string{MethodDense, MethodSparQ, MethodTopK, MethodFlexGen, MethodH2O, MethodWindow, MethodQuest, MethodLoki, MethodDoubleSparse}
}

// Defaults of the method parameters a caller leaves unset (the CLI and the
// sweep use them).
const (
	DefaultPage      = 16 // Quest's page size (Tang et al. 2024)
	DefaultLabelBits = 16 // Double Sparsity's label precision: a 16-bit copy
	DefaultSinks     = 4  // StreamingLLM's attention sinks (Xiao et al. 2023)
)

// LabelBitsAllowed are the label precisions Double Sparsity accepts.
var LabelBitsAllowed = []int{1, 2, 4, 8, 16}

// Spec selects a kernel and its parameters. Parameters share names across
// methods: K is every sparse method's token budget (positions read exactly),
// R the size of its proxy where it has one (SparQ's query components, Loki's
// principal components d′, Double Sparsity's channels). Resolve clears the
// parameters a method does not use, so the JSON form lists only those that
// matter.
type Spec struct {
	// Method is one of Methods().
	Method string `json:"method"`
	Impl   Impl   `json:"impl"`
	// R is the proxy size: SparQ's query components, Loki's d′, Double
	// Sparsity's channels; at most the head size.
	R int `json:"r,omitempty"`
	// K is the number of positions read exactly (clamped to the sequence).
	K int `json:"k,omitempty"`
	// KLayout is how SparQ (default twice) and Loki (default once) store K.
	KLayout KLayout `json:"k_layout,omitempty"`
	// Page is Quest's page size in tokens.
	Page int `json:"page,omitempty"`
	// LabelBits is Double Sparsity's label precision: 1, 2, 4, 8 or 16 bits.
	LabelBits int `json:"label_bits,omitempty"`
	// Sinks is the number of initial tokens window always reads (within K).
	Sinks int `json:"sinks,omitempty"`
	// NoReallocation turns mean-value reallocation off (α ≡ 1, no v̄) for
	// SparQ, as the paper does for its GQA models, and for topk.
	NoReallocation bool `json:"no_reallocation,omitempty"`
	// Split is the positions per work unit of the stages that scan the
	// sequence: a split-K grid, as flash-decoding and split Triton kernels
	// launch to occupy every SM at small batch. 0 keeps the method's own
	// grid: ScanChunk positions for dense, one work unit per (sequence, KV
	// head) pair for the sparse methods' scans, as the paper's gather kernels
	// run. It changes the work units a stage offers, not its bytes.
	Split int `json:"split,omitempty"`
	// Materialize routes SparQ's step-1 gather through device memory, as a
	// PyTorch implementation does (torch.gather, then a matmul): one kernel
	// writes the r gathered components of every key and the next reads them
	// back, and the element-wise work runs as separate kernels. Unfused
	// SparQ only; the default is the paper's Triton kernels, which gather
	// inside the kernel that consumes the data.
	Materialize bool `json:"materialize,omitempty"`
	// Compiled is the materialized PyTorch pipeline under torch.compile:
	// Inductor writes the gathers and the element-wise steps as its own
	// generated kernels. The gathered operands still go through memory
	// (the matmuls stay library calls), but the gather kernels stream at
	// memory rate rather than at the library copy kernel's element rate,
	// and the element-wise steps fuse into fewer launches. Requires
	// Materialize.
	Compiled bool `json:"compiled,omitempty"`
	// FusedExact runs a selecting method's exact step as one kernel: the
	// gathers of the selected K and V rows, their softmax, the weighted sum
	// and the blend with v̄, with the exact logits kept on chip (stage
	// exact-attention), as validation/measure.py's Triton step 2 does. The
	// default is the paper's implementation: a gather-matvec kernel for the
	// logits, then softmax, the gather-matvec over V and the blend as
	// separate kernels. Unfused selecting methods only.
	FusedExact bool `json:"fused_exact,omitempty"`
	// RankPass, for unfused SparQ, runs the selection's ranking as its own
	// kernel: it writes an fp32 tensor [B, Hkv, S] from the approximate
	// logits (their sum over the group's query heads, or an fp32 copy of
	// them without GQA), and top-k reads that, as PyTorch code that keeps
	// the logits for the softmax does (validation/measure.py's SparQ; the
	// authors' GQA evaluation code sums the group). The default ranks the
	// logits where they are, the group sum fused into the selection.
	RankPass bool `json:"rank_pass,omitempty"`
	// Kernel names the code that runs the stages, for the device figures
	// measured per kernel class. KernelTriton: unfused SparQ's gathers in
	// Triton kernels whose tiles feed tl.dot through shared memory (step
	// 1, and the exact step with FusedExact), as validation/measure.py's
	// SparQ runs them; their stages stream at a memory level's
	// kernel_bandwidth for the class where the device lists one.
	// KernelCuBLAS: unfused dense attention's scores and weighted sum as a
	// library's batched matrix products (cuBLAS through torch.baddbmm and
	// torch.bmm); each stage records its product's shape
	// (traces.Stage.Matmul), which a device's measured matmul tables
	// price. Empty: the level's stream rate.
	Kernel string `json:"kernel,omitempty"`
	// Upcast computes unfused dense attention on fp32 copies, as PyTorch's
	// math attention backend does with 16-bit inputs: a cast kernel writes
	// q, K and V in fp32, GQA repeats K and V to every query head, K is
	// scaled into another copy, and the matmuls, softmax and output run in
	// fp32. Unfused dense only.
	Upcast bool `json:"upcast,omitempty"`
	// Tile, for fused dense attention, is the query tile of the tiled
	// kernel that ran it (FlashAttention-2, PyTorch's memory-efficient
	// kernel): such a kernel computes Tile.Rows query rows against every
	// key block, padding rows included, so a decode query costs a whole
	// tile's matrix work, which devices price at that kernel's measured
	// tile throughput (traces.Arith.TileMACs). The zero value models no
	// tile: the arithmetic is the algorithm's own.
	Tile QueryTile `json:"query_tile,omitzero"`
	// SerialCombine, for fused dense attention split over the sequence, is
	// a combine kernel that walks the splits one dependent load at a time,
	// as FlashAttention-2's does (Nsight Compute: about 0.19 µs per split on
	// an H100, long-scoreboard stalls): the combine stage's dependent loads
	// are its splits. The default combine reduces the splits in parallel.
	SerialCombine bool `json:"serial_combine,omitempty"`
	// TileKeys, for fused dense attention, is the key positions of the K
	// and V tiles the kernel loads one after another, each issued when the
	// last has landed (128 for FlashAttention-2's split-KV kernel and
	// cuDNN's at d_h 128): every work unit loads 2 x ceil(positions / TileKeys)
	// tiles (traces.Stage.TileLoads), which devices price from their
	// measured tile loads. 0: the stage streams at the memory's rate.
	TileKeys int `json:"tile_keys,omitempty"`
	// TilesInFlight, with TileKeys, is how many of those tiles the kernel
	// keeps in flight: 1 (or 0) issues each when the last has landed
	// (FlashAttention-2's split-KV kernel), 2 issues the next before
	// waiting on the current (cuDNN's decode kernel waits with DEPBAR.LE
	// SB0, 1). Devices price it from their tile-loads unit for that count.
	TilesInFlight int `json:"tiles_in_flight,omitempty"`
	// BlockInstructions, with TileKeys, is the instructions each warp runs
	// before its first tile wait and after its last tile (Nsight Compute's
	// source page, validation/ncu_probe.py: 1589 for FlashAttention-2's
	// split-KV kernel at d_h 128, 736 for cuDNN's decode kernel), and
	// ParamLines the 64-byte lines of parameters it reads first (7 and
	// 10): devices price them from their block-code unit. 0: not modelled.
	BlockInstructions int `json:"block_instructions,omitempty"`
	ParamLines        int `json:"param_lines,omitempty"`
	// AppendKV adds the stage a server runs every step before attention: write
	// the current token's k and v into the cache (and whatever else the
	// method keeps per token) and update the running mean v̄.
	AppendKV bool `json:"append_kv"`
}

// QueryTile names a tiled fused-attention kernel and the query rows of its
// tile. Its text form is KERNEL:ROWS, e.g. flash2:128.
type QueryTile struct {
	// Kernel is the name a device's attention-tile unit is listed under.
	Kernel string `json:"kernel"`
	// Rows are the query rows one thread block computes.
	Rows int `json:"rows"`
}

// Kernel classes (Spec.Kernel).
const (
	// KernelTriton is Triton kernels whose tiles feed tl.dot.
	KernelTriton = "triton"
	// KernelCuBLAS is a library's batched matrix products (cuBLAS).
	KernelCuBLAS = "cublas"
)

// TritonScoreTileElems is how many elements of K one step of the Triton
// step-1 loop loads: an [r, chunk] tile of 8192 (16 KiB in fp16), as
// validation/measure.py's _sparq_approx_kernel tiles it (grid.approx_grid).
const TritonScoreTileElems = 8192

// TritonScoreChunk is the positions one step of the Triton step-1 loop
// scores for r components: TritonScoreTileElems/r, between 64 and 1024.
func TritonScoreChunk(r int) int {
	return min(max(TritonScoreTileElems/max(r, 1), 64), 1024)
}

// MaxTileRows bounds QueryTile.Rows (kernels tile 16 to 256 rows).
const MaxTileRows = 4096

// IsZero reports whether t names no tile.
func (t QueryTile) IsZero() bool { return t == QueryTile{} }

// String is the KERNEL:ROWS form ParseQueryTile reads; empty for no tile.
func (t QueryTile) String() string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s:%d", t.Kernel, t.Rows)
}

// Validate checks a non-zero tile: a kernel name of lower-case letters,
// digits and '-', and 1 to MaxTileRows rows.
func (t QueryTile) Validate() error {
	if t.IsZero() {
		return nil
	}
	if t.Kernel == "" || strings.Trim(t.Kernel, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("query tile kernel %q: want lower-case letters, digits and '-'", t.Kernel)
	}
	if t.Rows < 1 || t.Rows > MaxTileRows {
		return fmt.Errorf("query tile %s: rows must be 1 to %d, got %d", t.Kernel, MaxTileRows, t.Rows)
	}
	return nil
}

// ParseQueryTile reads KERNEL:ROWS (empty: no tile).
func ParseQueryTile(s string) (QueryTile, error) {
	if s == "" {
		return QueryTile{}, nil
	}
	name, rows, ok := strings.Cut(s, ":")
	if !ok {
		return QueryTile{}, fmt.Errorf("query tile %q: want KERNEL:ROWS, e.g. flash2:128", s)
	}
	n, err := strconv.Atoi(rows)
	if err != nil {
		return QueryTile{}, fmt.Errorf("query tile %q: rows: %w", s, err)
	}
	t := QueryTile{Kernel: name, Rows: n}
	if err := t.Validate(); err != nil {
		return QueryTile{}, err
	}
	return t, nil
}

// Validate checks the spec's own values; Resolve checks them against a shape.
func (s Spec) Validate() error {
	switch s.Impl {
	case Unfused, Fused:
	default:
		return fmt.Errorf("unknown impl %q (want unfused or fused)", s.Impl)
	}
	m := s.Method
	if !slices.Contains(Methods(), m) {
		return fmt.Errorf("unknown method %q (want %s)", m, strings.Join(Methods(), ", "))
	}
	if s.Split < 0 {
		return fmt.Errorf("split must not be negative, got %d", s.Split)
	}
	if s.Materialize && (m != MethodSparQ || s.Impl != Unfused) {
		return fmt.Errorf("materialize applies to unfused sparq only (got %s %s): a fused kernel keeps its gathers on chip", s.Impl, m)
	}
	if s.FusedExact && (m == MethodDense || s.Impl != Unfused || s.Materialize) {
		return fmt.Errorf("fused-exact applies to an unfused selecting method that gathers on chip (got %s %s, materialize %v)", s.Impl, m, s.Materialize)
	}
	if s.Compiled && !s.Materialize {
		return fmt.Errorf("compiled applies to a materialized pipeline: set materialize too")
	}
	if s.RankPass && (m != MethodSparQ || s.Impl != Unfused) {
		return fmt.Errorf("rank-pass applies to unfused sparq only (got %s %s)", s.Impl, m)
	}
	switch s.Kernel {
	case "":
	case KernelTriton:
		if m != MethodSparQ || s.Impl != Unfused || s.Materialize {
			return fmt.Errorf("kernel %s applies to unfused sparq that gathers on chip (got %s %s, materialize %v)", s.Kernel, s.Impl, m, s.Materialize)
		}
	case KernelCuBLAS:
		if m != MethodDense || s.Impl != Unfused || s.Upcast {
			return fmt.Errorf("kernel %s applies to unfused dense attention in its own dtype (got %s %s, upcast %v)", s.Kernel, s.Impl, m, s.Upcast)
		}
	default:
		return fmt.Errorf("kernel %q: unknown kernel class (known: %s, %s)", s.Kernel, KernelTriton, KernelCuBLAS)
	}
	if s.Upcast && (m != MethodDense || s.Impl != Unfused) {
		return fmt.Errorf("upcast applies to unfused dense only (got %s %s)", s.Impl, m)
	}
	if err := s.Tile.Validate(); err != nil {
		return err
	}
	if !s.Tile.IsZero() && (m != MethodDense || s.Impl != Fused) {
		return fmt.Errorf("query tile applies to fused dense attention only (got %s %s)", s.Impl, m)
	}
	if s.SerialCombine && (m != MethodDense || s.Impl != Fused) {
		return fmt.Errorf("serial combine applies to fused dense attention only (got %s %s)", s.Impl, m)
	}
	if s.TileKeys != 0 && (m != MethodDense || s.Impl != Fused) {
		return fmt.Errorf("tile keys apply to fused dense attention only (got %s %s)", s.Impl, m)
	}
	if s.TileKeys < 0 || s.TileKeys > 1<<20 {
		return fmt.Errorf("tile keys must be 1 to %d (0: off), got %d", 1<<20, s.TileKeys)
	}
	if s.TilesInFlight != 0 && s.TileKeys == 0 {
		return fmt.Errorf("tiles in flight need tile keys (the tiles they count), got %d with none", s.TilesInFlight)
	}
	if s.TilesInFlight < 0 || s.TilesInFlight > traces.MaxTilesInFlight {
		return fmt.Errorf("tiles in flight must be 1 to %d (0: 1), got %d", traces.MaxTilesInFlight, s.TilesInFlight)
	}
	if (s.BlockInstructions != 0 || s.ParamLines != 0) && s.TileKeys == 0 {
		return fmt.Errorf("block instructions and parameter lines need tile keys (the tile loop they surround), got %d and %d with none", s.BlockInstructions, s.ParamLines)
	}
	if s.BlockInstructions < 0 || s.BlockInstructions > traces.MaxBlockInstructions {
		return fmt.Errorf("block instructions must be 0 to %d, got %d", traces.MaxBlockInstructions, s.BlockInstructions)
	}
	if s.ParamLines < 0 || s.ParamLines > traces.MaxParamLines {
		return fmt.Errorf("parameter lines must be 0 to %d, got %d", traces.MaxParamLines, s.ParamLines)
	}
	if m == MethodDense {
		return nil
	}
	if s.K <= 0 {
		return fmt.Errorf("%s: k must be positive, got %d", m, s.K)
	}
	switch m {
	case MethodSparQ, MethodLoki, MethodDoubleSparse:
		if s.R <= 0 {
			return fmt.Errorf("%s: r must be positive, got %d", m, s.R)
		}
	}
	switch m {
	case MethodSparQ:
		if s.KLayout != KTwice && s.KLayout != KOnce {
			return fmt.Errorf("unknown k-layout %q (want twice or once)", s.KLayout)
		}
	case MethodLoki:
		if s.KLayout != "" && s.KLayout != KTwice && s.KLayout != KOnce {
			return fmt.Errorf("unknown k-layout %q (want twice or once)", s.KLayout)
		}
	case MethodQuest:
		if s.Page <= 0 {
			return fmt.Errorf("quest: page must be positive, got %d", s.Page)
		}
		if s.Page > s.K {
			return fmt.Errorf("quest: page %d exceeds the token budget k %d: not one page fits", s.Page, s.K)
		}
	case MethodDoubleSparse:
		if !slices.Contains(LabelBitsAllowed, s.LabelBits) {
			return fmt.Errorf("doublesparse: label-bits must be one of 1, 2, 4, 8, 16, got %d", s.LabelBits)
		}
	case MethodWindow:
		if s.Sinks < 0 {
			return fmt.Errorf("window: sinks must not be negative, got %d", s.Sinks)
		}
		if s.Sinks > s.K {
			return fmt.Errorf("window: sinks %d exceed the token budget k %d", s.Sinks, s.K)
		}
	}
	return nil
}

// Resolve validates s against shape and returns it with k clamped to the
// sequence length, Loki's layout defaulted and unused parameters cleared. r
// larger than the head size is an error: a user asking for more components
// than exist has made a mistake, whereas k ≥ S is a legitimate way to ask for
// dense attention.
func (s Spec) Resolve(shape Shape) (Spec, error) {
	if err := s.Validate(); err != nil {
		return s, err
	}
	if err := shape.Validate(); err != nil {
		return s, err
	}
	if s.usesR() && s.R > shape.HeadDim {
		return s, fmt.Errorf("%s: r %d exceeds head-dim %d", s.Method, s.R, shape.HeadDim)
	}
	if s.Method == MethodLoki && s.KLayout == "" {
		s.KLayout = KOnce
	}
	c := Spec{Method: s.Method, Impl: s.Impl, AppendKV: s.AppendKV, Split: s.Split, Materialize: s.Materialize, Compiled: s.Compiled, FusedExact: s.FusedExact, Upcast: s.Upcast, Tile: s.Tile, SerialCombine: s.SerialCombine, TileKeys: s.TileKeys, TilesInFlight: s.TilesInFlight, BlockInstructions: s.BlockInstructions, ParamLines: s.ParamLines, RankPass: s.RankPass, Kernel: s.Kernel}
	if s.Method != MethodDense {
		c.K = min(s.K, shape.Seq)
	}
	if s.usesR() {
		c.R = s.R
	}
	if s.Method == MethodSparQ || s.Method == MethodLoki {
		c.KLayout = s.KLayout
	}
	if s.hasReallocation() {
		c.NoReallocation = s.NoReallocation
	}
	switch s.Method {
	case MethodQuest:
		c.Page = s.Page
	case MethodDoubleSparse:
		c.LabelBits = s.LabelBits
	case MethodWindow:
		c.Sinks = s.Sinks
	}
	return c, nil
}

// atSeq returns the resolved spec for a step over S positions: k clamped,
// except H2O's, which is the size of its cache (filled after k steps).
func (s Spec) atSeq(S int) Spec {
	if s.Method != MethodDense && s.Method != MethodH2O {
		s.K = min(s.K, S)
	}
	return s
}

// LocalWindow is the l = k/4 most recent positions (the current token
// included) that SparQ always selects and H2O never evicts.
func (s Spec) LocalWindow() int { return s.K / 4 }

func (s Spec) usesR() bool {
	return s.Method == MethodSparQ || s.Method == MethodLoki || s.Method == MethodDoubleSparse
}

// hasReallocation reports whether the method can blend with v̄.
func (s Spec) hasReallocation() bool { return s.Method == MethodSparQ || s.Method == MethodTopK }

// realloc reports whether the kernel blends with the running mean v̄.
func (s Spec) realloc() bool { return s.hasReallocation() && !s.NoReallocation }

// usesKt reports whether the cache holds an S-contiguous copy of K.
func (s Spec) usesKt() bool {
	return (s.Method == MethodSparQ || s.Method == MethodLoki) && s.KLayout == KTwice
}
