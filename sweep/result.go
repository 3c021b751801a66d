package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
)

// Row is one method at one shape on one device.
type Row struct {
	// Key is the point's key (method and shape); with Device it identifies
	// the row.
	Key string `json:"key"`
	// Method is the kernel (dense, sparq); Label the method spec with the
	// sweep's defaults filled in, as legends show it.
	Method  string `json:"method"`
	Label   string `json:"label"`
	R       int    `json:"r"`
	K       int    `json:"k"`
	KLayout string `json:"k_layout"`
	Impl    string `json:"impl"`
	Realloc bool   `json:"realloc"`
	// Page, LabelBits and Sinks are Quest's, Double Sparsity's and the
	// window method's parameters (0 for other methods).
	Page      int `json:"page,omitempty"`
	LabelBits int `json:"label_bits,omitempty"`
	Sinks     int `json:"sinks,omitempty"`

	Device   string `json:"device"`
	Batch    int    `json:"batch"`
	Seq      int    `json:"seq"`
	Heads    int    `json:"heads"`
	KVHeads  int    `json:"kv_heads"`
	HeadDim  int    `json:"head_dim"`
	DType    string `json:"dtype"`
	Workload string `json:"workload"`
	Seed     uint64 `json:"seed"`
	AppendKV bool   `json:"append_kv"`
	// Steps is the decode steps simulated (Grid.Steps, at least 1): Seq is
	// the first step's length, times and bytes are the last step's and
	// fidelity is the mean over the steps.
	Steps int `json:"steps"`

	// Seconds is the calibrated time of one decode step, IdealSeconds the
	// requested bytes at peak bandwidth.
	Seconds      float64 `json:"seconds"`
	IdealSeconds float64 `json:"ideal_seconds"`
	// Speedup and IdealSpeedup are dense's time over this row's on the same
	// device and shape; 0 when the sweep has no dense baseline.
	Speedup      float64 `json:"speedup"`
	IdealSpeedup float64 `json:"ideal_speedup"`
	// Bytes is what the kernel requests (reads and writes, full shape);
	// MovedBytes what the memory levels move after granularity and caches.
	Bytes      int64 `json:"bytes"`
	MovedBytes int64 `json:"moved_bytes"`
	// KVCacheBytes is the size of the KV cache (with the Kᵀ copy).
	KVCacheBytes int64 `json:"kv_cache_bytes"`
	// Bound is what limits the step: the bound of the stages that take
	// most of its time.
	Bound string `json:"bound"`
	// Fits is false when the tensors do not fit in the device's memory; the
	// row is then priced as if the outermost level (or the level placement
	// names) were large enough, and Note says what did not fit.
	Fits bool   `json:"fits"`
	Note string `json:"note,omitempty"`
	// Placement is the memory level of the KV cache.
	KVLevel string `json:"kv_level"`

	// Fidelity against dense on the same data (dense: 0 error, α = 1).
	RelL2Error  float64 `json:"rel_l2_error"`
	AlphaMean   float64 `json:"alpha_mean"`
	MassCovered float64 `json:"mass_covered"`
	TopKRecall  float64 `json:"topk_recall"`

	// Scale is total over sampled (sequence, KV head) pairs.
	Scale        float64 `json:"scale"`
	SampledPairs int64   `json:"sampled_pairs"`
	TotalPairs   int64   `json:"total_pairs"`

	Stages []StageRow `json:"stages"`
}

// StageRow is one stage of a row's prediction.
type StageRow struct {
	Name         string  `json:"name"`
	Seconds      float64 `json:"seconds"`
	IdealSeconds float64 `json:"ideal_seconds"`
	Bound        string  `json:"bound"`
	Flops        int64   `json:"flops"`
	// RequestedBytes and MovedBytes are summed over levels; MemoryBytes is
	// what memory levels (not caches) move, the denominator of
	// ArithmeticIntensity.
	RequestedBytes      int64   `json:"requested_bytes"`
	MovedBytes          int64   `json:"moved_bytes"`
	ArithmeticIntensity float64 `json:"arithmetic_intensity"`
	WorkUnits           int64   `json:"work_units"`
}

// Traffic is the bytes a point's kernel requests, by stage and tensor,
// scaled to the full shape. It does not depend on the device.
type Traffic struct {
	Key    string         `json:"key"`
	Label  string         `json:"label"`
	Batch  int            `json:"batch"`
	Seq    int            `json:"seq"`
	DType  string         `json:"dtype"`
	Stages []StageTraffic `json:"stages"`
}

// StageTraffic is one stage's bytes per tensor.
type StageTraffic struct {
	Stage   string          `json:"stage"`
	Tensors []TensorTraffic `json:"tensors"`
}

// TensorTraffic is one tensor's bytes in one stage.
type TensorTraffic struct {
	Tensor     string `json:"tensor"`
	Role       string `json:"role"`
	ReadBytes  int64  `json:"read_bytes"`
	WriteBytes int64  `json:"write_bytes"`
}

// DeviceInfo is what results keep of a device: enough to draw its roofline
// and to tell whether a resumed sweep prices on the same model.
type DeviceInfo struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Kind        string            `json:"kind"`
	Levels      []LevelInfo       `json:"levels"`
	Compute     []hwmodel.Compute `json:"compute"`
	// Fingerprint is a hash of the full device description.
	Fingerprint string `json:"fingerprint"`
}

// LevelInfo is one memory level of a DeviceInfo.
type LevelInfo struct {
	Name                string  `json:"name"`
	Role                string  `json:"role"`
	Tier                int     `json:"tier"`
	CapacityBytes       float64 `json:"capacity_bytes"`
	PeakBandwidth       float64 `json:"peak_bandwidth"`
	AchievableBandwidth float64 `json:"achievable_bandwidth"`
}

// Describe summarises d.
func Describe(d *hwmodel.Device) DeviceInfo {
	info := DeviceInfo{Name: d.Name, Description: d.Description, Kind: string(d.Kind), Compute: d.Compute}
	for _, l := range d.OrderedLevels() {
		info.Levels = append(info.Levels, LevelInfo{Name: l.Name, Role: string(l.Role), Tier: l.Tier,
			CapacityBytes: l.CapacityBytes, PeakBandwidth: l.PeakBandwidth, AchievableBandwidth: l.AchievableBandwidth})
	}
	full := struct {
		D      *hwmodel.Device
		Levels []hwmodel.MemoryLevel
	}{d, d.OrderedLevels()}
	b, _ := json.Marshal(full)
	sum := sha256.Sum256(b)
	info.Fingerprint = hex.EncodeToString(sum[:8])
	return info
}

// Peak returns the device's peak rate of unit for dtype, falling back to
// fp32 as hwmodel.Device.Peak does.
func (d DeviceInfo) Peak(unit, dtype string) (float64, bool) {
	var fallback float64
	for _, c := range d.Compute {
		if c.Unit != unit {
			continue
		}
		if c.DType == dtype {
			return c.OpsPerSecond, true
		}
		if c.DType == "fp32" {
			fallback = c.OpsPerSecond
		}
	}
	return fallback, fallback > 0
}

// Schema names the version of the results file format.
const Schema = "bwsim.sweep/v1"

// Results is a sweep's output: the rows of every finished point, the
// traffic behind them and what produced them.
type Results struct {
	Schema  string       `json:"schema"`
	Grid    Grid         `json:"settings"`
	Devices []DeviceInfo `json:"devices"`
	// Shard is "i/n" when the sweep ran one shard, "" for all of it.
	Shard string `json:"shard,omitempty"`
	// Points is how many points the sweep (or shard) has; Done how many
	// finished. Complete is Done == Points.
	Points   int       `json:"points"`
	Done     int       `json:"done"`
	Complete bool      `json:"complete"`
	Rows     []Row     `json:"rows"`
	Traffic  []Traffic `json:"traffic"`
}

// Device returns the named device's info.
func (r *Results) Device(name string) (DeviceInfo, bool) {
	for _, d := range r.Devices {
		if d.Name == name {
			return d, true
		}
	}
	return DeviceInfo{}, false
}

// groupOf is the row's shape key (everything but the method and device).
func groupOf(r Row) string {
	return fmt.Sprintf("dtype=%s/batch=%d/heads=%d/kv_heads=%d/head_dim=%d/seq=%d/steps=%d/workload=%s/seed=%d/append=%t",
		r.DType, r.Batch, r.Heads, r.KVHeads, r.HeadDim, r.Seq, max(r.Steps, 1), r.Workload, r.Seed, r.AppendKV)
}

// ComputeSpeedups fills Speedup and IdealSpeedup of every row from the dense
// row on the same device and shape: the one with the same impl when there is
// one, else the first dense row of the sweep's method order. Rows without a
// baseline get 0.
func ComputeSpeedups(rows []Row) {
	type slot struct{ byImpl map[string]*Row }
	base := map[string]*slot{}
	for i := range rows {
		r := &rows[i]
		if r.Method != kernels.MethodDense {
			continue
		}
		k := r.Device + "|" + groupOf(*r)
		s := base[k]
		if s == nil {
			s = &slot{byImpl: map[string]*Row{}}
			base[k] = s
			s.byImpl[""] = r
		}
		if _, ok := s.byImpl[r.Impl]; !ok {
			s.byImpl[r.Impl] = r
		}
	}
	for i := range rows {
		r := &rows[i]
		r.Speedup, r.IdealSpeedup = 0, 0
		s := base[r.Device+"|"+groupOf(*r)]
		if s == nil {
			continue
		}
		b := s.byImpl[r.Impl]
		if b == nil {
			b = s.byImpl[""]
		}
		if r.Seconds > 0 {
			r.Speedup = b.Seconds / r.Seconds
		}
		if r.IdealSeconds > 0 {
			r.IdealSpeedup = b.IdealSeconds / r.IdealSeconds
		}
	}
}

// sortRows orders rows by grid position, then device order.
func sortRows(rows []Row, order map[string]int, devOrder map[string]int) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if oa, ob := order[a.Key], order[b.Key]; oa != ob {
			return oa < ob
		}
		return devOrder[a.Device] < devOrder[b.Device]
	})
}

// dominantBound is the bound that accounts for the largest share of the
// step's time.
func dominantBound(p *roofline.Prediction) string {
	t := map[roofline.Bound]float64{}
	for _, s := range p.Stages {
		t[s.Bound] += s.Seconds
	}
	best, bestT := "", -1.0
	for _, b := range roofline.Bounds {
		if t[b] > bestT {
			best, bestT = string(b), t[b]
		}
	}
	return best
}

// finite replaces NaN and infinities (which JSON cannot carry) by 0.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
