package roofline

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/models"
	"github.com/bwsim/bwsim/traces"
)

// Defaults of a PlanSpec.
const (
	// DefaultReserve is the fraction of device memory a plan holds back for
	// the runtime, allocator fragmentation and the framework's workspace;
	// serving systems commonly leave about a tenth free.
	DefaultReserve = 0.10
	// DefaultKernelsPerLayer is the number of kernels one layer launches
	// outside attention after fusion: input norm, QKV projection, rotary
	// embedding, output projection with residual, post-attention norm,
	// gate/up projection, activation, down projection with residual.
	DefaultKernelsPerLayer = 8
	// MaxPlanBatch is the largest batch a plan considers (the kernels'
	// batch limit).
	MaxPlanBatch = 1 << 16
)

// PlanSpec is a deployment to plan: one model on a tensor-parallel group of
// identical devices, every sequence at the same context length.
type PlanSpec struct {
	Model  *models.Model
	Device *hwmodel.Device
	// Devices is the tensor-parallel group size (1: one device).
	Devices int
	// Seq is the context length: positions in the cache at this step,
	// the current token included (capped by a sliding window).
	Seq int
	// WeightDType and KVDType override the model's ("" keeps them). The KV
	// dtype is also the activations' and selects the compute peaks.
	WeightDType, KVDType string
	// Reserve is the fraction of the memory level held back (see
	// DefaultReserve), in [0, 1).
	Reserve float64
	// Level names the memory level that holds weights and KV cache; ""
	// picks the fastest memory level the weights fit in.
	Level string
	// Link names the device link tensor-parallel collectives use; "" picks
	// the fastest.
	Link string
	// KernelsPerLayer is how many kernels one layer launches besides
	// attention (see DefaultKernelsPerLayer); each pays the device's launch
	// and synchronisation overhead.
	KernelsPerLayer int
	// Batch is the number of sequences decoded together; 0 picks the
	// largest that fits in memory and meets LatencyLimit.
	Batch int
	// LatencyLimit, when positive, is the most seconds one decode step (one
	// token of every sequence) may take.
	LatencyLimit float64
	// TargetTokensPerSecond, when positive, asks how many devices (whole
	// groups) produce this many tokens per second.
	TargetTokensPerSecond float64
	// Curve asks for tokens per second of every method at the same
	// batches: powers of two up to twice the largest batch that fits any
	// method, and each method's largest and planned batch.
	Curve bool
}

// AttentionMethod is one attention method to plan. Its trace says both what
// a step moves and what the method keeps: the kv-cache tensors of the
// batch-1 trace size the cache (K, V, SparQ's Kᵀ and v̄, ...), its
// intermediates the attention's working memory.
type AttentionMethod struct {
	// Name labels the method in results ("dense", "sparq:ratio=1/8").
	Name string
	// Trace returns the trace of one decode step of one layer's attention
	// on one device of the group: Shard.Heads query heads and
	// Shard.KVHeads KV heads per sequence, the plan's cache length and the
	// given batch. Plan calls it at most once per batch.
	Trace func(batch int) (*traces.Trace, error)
}

// CapacityPlan is a whole-model decode plan with each method side by side.
type CapacityPlan struct {
	Model   string `json:"model"`
	Device  string `json:"device"`
	Devices int    `json:"devices"`
	Seq     int    `json:"seq"`
	// CacheLen is the positions each sequence's cache holds: Seq, or the
	// model's sliding window when shorter.
	CacheLen    int    `json:"cache_len"`
	WeightDType string `json:"weight_dtype"`
	KVDType     string `json:"kv_dtype"`
	Shard       Shard  `json:"shard"`
	// Level is the memory level holding weights and KV cache.
	Level                 string   `json:"memory_level"`
	CapacityBytes         float64  `json:"capacity_bytes_per_device"`
	Reserve               float64  `json:"reserve_fraction"`
	WeightBytesPerDevice  float64  `json:"weight_bytes_per_device"`
	Link                  *LinkUse `json:"link,omitempty"`
	KernelsPerLayer       int      `json:"kernels_per_layer"`
	LatencyLimit          float64  `json:"latency_limit_seconds,omitempty"`
	TargetTokensPerSecond float64  `json:"target_tokens_per_second,omitempty"`
	// Notes explain what the plan assumed (a context beyond the model's
	// training length, a sliding window, replicated KV heads).
	Notes []string     `json:"notes,omitempty"`
	Plans []MethodPlan `json:"plans"`
}

// LinkUse is the link tensor-parallel collectives run over.
type LinkUse struct {
	Name                  string  `json:"name"`
	BandwidthPerDirection float64 `json:"bandwidth_per_direction"`
	LatencySeconds        float64 `json:"latency_seconds"`
	// CommBytesPerToken is what one device sends per generated token
	// (CommBytesPerStep over the batch) at the method's batch; it does not
	// depend on the batch.
	CommBytesPerToken float64 `json:"comm_bytes_per_token"`
}

// MethodPlan is one method's plan.
type MethodPlan struct {
	Method string `json:"method"`
	// KVBytesPerToken is the whole model's KV cache per position of one
	// sequence; KVBytesPerTokenPerDevice one device's share.
	KVBytesPerToken          float64 `json:"kv_bytes_per_token"`
	KVBytesPerTokenPerDevice float64 `json:"kv_bytes_per_token_per_device"`
	// BytesPerSequence is one device's memory per sequence: KV cache at
	// the cache length (with per-sequence state such as v̄) plus
	// activations.
	BytesPerSequence float64 `json:"bytes_per_sequence_per_device"`
	// MaxBatch is the largest batch that fits; Batch the one planned.
	MaxBatch int             `json:"max_batch"`
	Batch    int             `json:"batch"`
	Memory   MemoryBreakdown `json:"memory"`
	Time     TimeBreakdown   `json:"time"`
	// SecondsPerToken is one decode step: every sequence gets one token.
	SecondsPerToken float64 `json:"seconds_per_token"`
	// IdealSecondsPerToken moves every requested byte at peak bandwidth
	// and nothing else (the paper's "theoretical" model).
	IdealSecondsPerToken float64 `json:"ideal_seconds_per_token"`
	// TokensPerSecond is the group's; TokensPerSecondPerDevice that over
	// the group size.
	TokensPerSecond          float64 `json:"tokens_per_second"`
	TokensPerSecondPerDevice float64 `json:"tokens_per_second_per_device"`
	// Speedup is TokensPerSecond over the first method's.
	Speedup float64 `json:"speedup"`
	// Replicas and DevicesNeeded answer TargetTokensPerSecond.
	Replicas      int `json:"replicas,omitempty"`
	DevicesNeeded int `json:"devices_needed,omitempty"`
	// Attention is one layer's attention on one device at Batch.
	Attention *Prediction `json:"attention_per_layer"`
	// Curve is tokens per second against batch (Spec.Curve).
	Curve []CurvePoint `json:"curve,omitempty"`
}

// MemoryBreakdown is one device's memory at the planned batch.
type MemoryBreakdown struct {
	CapacityBytes float64 `json:"capacity_bytes"`
	ReserveBytes  float64 `json:"reserve_bytes"`
	WeightBytes   float64 `json:"weight_bytes"`
	// KVCacheBytes is the whole KV cache of the batch; KVTensors splits it
	// by the trace's kv-cache tensors (K, V, SparQ's Kᵀ copy and v̄).
	KVCacheBytes float64       `json:"kv_cache_bytes"`
	KVTensors    []TensorBytes `json:"kv_cache_tensors"`
	// ActivationBytes are the working activations and the attention
	// kernel's intermediates (from its trace) for the batch.
	ActivationBytes float64 `json:"activation_bytes"`
	FreeBytes       float64 `json:"free_bytes"`
}

// TensorBytes is one tensor's memory.
type TensorBytes struct {
	Tensor string  `json:"tensor"`
	Bytes  float64 `json:"bytes"`
}

// Tensor returns the bytes of the named tensor of the KV cache (0 when the
// method keeps none).
func (m MemoryBreakdown) Tensor(name string) float64 {
	for _, t := range m.KVTensors {
		if t.Tensor == name {
			return t.Bytes
		}
	}
	return 0
}

// TimeBreakdown splits one decode step.
type TimeBreakdown struct {
	// Weights is reading one device's weights at the level's achievable
	// bandwidth.
	Weights float64 `json:"weights_seconds"`
	// Attention is every layer's attention, priced from the trace.
	Attention float64 `json:"attention_seconds"`
	// Arithmetic is the linear layers' matrix arithmetic beyond what the
	// weight read hides (they overlap: the layers take the longer of the
	// two).
	Arithmetic float64 `json:"arithmetic_seconds"`
	// Communication is the tensor-parallel collectives over the link.
	Communication float64 `json:"communication_seconds"`
	// Overhead is the launch and synchronisation cost of the non-attention
	// kernels and the collectives.
	Overhead float64 `json:"overhead_seconds"`
}

// Total is the step time.
func (t TimeBreakdown) Total() float64 {
	return t.Weights + t.Attention + t.Arithmetic + t.Communication + t.Overhead
}

// CurvePoint is one batch of the tokens-per-second curve.
type CurvePoint struct {
	Batch           int     `json:"batch"`
	SecondsPerToken float64 `json:"seconds_per_token"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	// Fits is false beyond the memory wall (what the device would do with
	// unlimited memory).
	Fits bool `json:"fits"`
}

// deployment is a validated PlanSpec with everything that does not depend
// on the method.
type deployment struct {
	spec                     PlanSpec
	m                        *models.Model
	dev                      *hwmodel.Device
	shard                    Shard
	cacheLen                 int
	weightDType, kvDType     string
	wElem, kvElem            float64
	level                    hwmodel.MemoryLevel
	reserve, usable, weights float64
	link                     *hwmodel.Link
	matmulPeak               float64
	perKernel                float64
	notes                    []string
}

// Plan plans spec for each method: memory per device, the largest batch
// that fits, the time of one decode step split into weights, attention
// (each layer's trace priced with Predict), other arithmetic,
// tensor-parallel communication and overheads, tokens per second per device
// and for the group, and devices needed for a target rate.
func Plan(spec PlanSpec, methods []AttentionMethod) (*CapacityPlan, error) {
	if len(methods) == 0 {
		return nil, errors.New("no attention methods to plan")
	}
	d, err := newDeployment(spec)
	if err != nil {
		return nil, err
	}
	out := &CapacityPlan{
		Model: d.m.Name, Device: d.dev.Name, Devices: spec.Devices, Seq: spec.Seq, CacheLen: d.cacheLen,
		WeightDType: d.weightDType, KVDType: d.kvDType, Shard: d.shard, Level: d.level.Name,
		CapacityBytes: d.level.CapacityBytes, Reserve: spec.Reserve, WeightBytesPerDevice: d.weights,
		KernelsPerLayer: spec.KernelsPerLayer, LatencyLimit: spec.LatencyLimit,
		TargetTokensPerSecond: spec.TargetTokensPerSecond, Notes: d.notes,
	}
	if d.link != nil {
		out.Link = &LinkUse{Name: d.link.Name, BandwidthPerDirection: d.link.BandwidthPerDirection, LatencySeconds: d.link.LatencySeconds,
			CommBytesPerToken: CommBytesPerStep(d.m, spec.Devices, 1, d.kvElem)}
	}
	seen := map[string]bool{}
	var steps []stepFunc
	for _, am := range methods {
		if seen[am.Name] {
			return nil, fmt.Errorf("method %q listed twice", am.Name)
		}
		seen[am.Name] = true
		mp, step, err := d.planMethod(am)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", am.Name, err)
		}
		out.Plans = append(out.Plans, *mp)
		steps = append(steps, step)
	}
	for i := range out.Plans {
		out.Plans[i].Speedup = out.Plans[i].TokensPerSecond / out.Plans[0].TokensPerSecond
	}
	if spec.Curve {
		// Every method at the same batches, so that they compare at each
		// other's memory walls.
		batches := curveBatches(out.Plans)
		for i := range out.Plans {
			mp := &out.Plans[i]
			for _, b := range batches {
				t, _, err := steps[i](b)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", mp.Method, err)
				}
				mp.Curve = append(mp.Curve, CurvePoint{Batch: b, SecondsPerToken: t.Total(), TokensPerSecond: float64(b) / t.Total(), Fits: b <= mp.MaxBatch})
			}
		}
	}
	return out, nil
}

func newDeployment(spec PlanSpec) (*deployment, error) {
	if spec.Model == nil || spec.Device == nil {
		return nil, errors.New("plan needs a model and a device")
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if spec.Seq <= 0 {
		bad("seq must be positive, got %d", spec.Seq)
	}
	if !(spec.Reserve >= 0 && spec.Reserve < 1) {
		bad("reserve must be a fraction in [0, 1), got %v", spec.Reserve)
	}
	if spec.KernelsPerLayer < 0 {
		bad("kernels per layer must not be negative, got %d", spec.KernelsPerLayer)
	}
	if spec.Batch < 0 || spec.Batch > MaxPlanBatch {
		bad("batch must be from 1 to %d (or 0 for automatic), got %d", MaxPlanBatch, spec.Batch)
	}
	if !(spec.LatencyLimit >= 0) || math.IsInf(spec.LatencyLimit, 0) {
		bad("latency limit must be a positive number of seconds, got %v", spec.LatencyLimit)
	}
	if !(spec.TargetTokensPerSecond >= 0) || math.IsInf(spec.TargetTokensPerSecond, 0) {
		bad("target tokens per second must be a positive number, got %v", spec.TargetTokensPerSecond)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m, dev := spec.Model, spec.Device
	d := &deployment{spec: spec, m: m, dev: dev, cacheLen: m.CacheLen(spec.Seq), weightDType: m.WeightDType, kvDType: m.KVDType}
	if spec.WeightDType != "" {
		d.weightDType = spec.WeightDType
	}
	if spec.KVDType != "" {
		d.kvDType = spec.KVDType
	}
	var err error
	if d.wElem, err = models.DTypeBytes(d.weightDType); err != nil {
		return nil, fmt.Errorf("weight dtype: %w", err)
	}
	if !models.ValidKVDType(d.kvDType) {
		return nil, fmt.Errorf("kv dtype %q: must be one of %s", d.kvDType, strings.Join(models.KVDTypes(), ", "))
	}
	d.kvElem, _ = models.DTypeBytes(d.kvDType)
	if d.shard, err = NewShard(m, spec.Devices); err != nil {
		return nil, err
	}
	d.weights = float64(m.Params) * d.wElem / float64(spec.Devices)
	if err := d.pickLevel(); err != nil {
		return nil, err
	}
	if err := d.pickLink(); err != nil {
		return nil, err
	}
	d.matmulPeak = matmulPeak(dev, d.kvDType)
	if d.matmulPeak <= 0 {
		return nil, fmt.Errorf("device %s lists no compute rate for %s", dev.Name, d.kvDType)
	}
	d.perKernel = dev.Overheads.LaunchSeconds + dev.Overheads.SyncSeconds

	if m.MaxSeq > 0 && spec.Seq > m.MaxSeq {
		d.notes = append(d.notes, fmt.Sprintf("seq %d is beyond %s's trained context of %d positions: the plan prices memory and traffic as if the model attended that far",
			spec.Seq, m.Name, m.MaxSeq))
	}
	if d.cacheLen < spec.Seq {
		d.notes = append(d.notes, fmt.Sprintf("%s attends over a sliding window of %d positions: each sequence's cache holds %d positions, not %d",
			m.Name, m.SlidingWindow, d.cacheLen, spec.Seq))
	}
	if d.shard.KVReplicated {
		d.notes = append(d.notes, fmt.Sprintf("%s has %d KV heads for %d devices: each device keeps a copy of the KV head its %d query heads read",
			m.Name, m.KVHeads, spec.Devices, d.shard.Heads))
	}
	return d, nil
}

// pickLevel chooses the memory level for weights and KV cache.
func (d *deployment) pickLevel() error {
	mems := d.dev.MemoryLevels()
	if len(mems) == 0 {
		return fmt.Errorf("device %s has no memory level", d.dev.Name)
	}
	usable := func(l hwmodel.MemoryLevel) float64 { return l.CapacityBytes * (1 - d.spec.Reserve) }
	if d.spec.Level != "" {
		var names []string
		for _, l := range mems {
			names = append(names, l.Name)
			if l.Name == d.spec.Level {
				d.level = l
			}
		}
		if d.level.Name == "" {
			return fmt.Errorf("device %s has no memory level %q (memory levels: %s)", d.dev.Name, d.spec.Level, strings.Join(names, ", "))
		}
	} else {
		d.level = mems[len(mems)-1]
		for _, l := range mems {
			if d.weights < usable(l) {
				d.level = l
				break
			}
		}
	}
	d.reserve = d.level.CapacityBytes * d.spec.Reserve
	d.usable = d.level.CapacityBytes - d.reserve
	if d.weights >= d.usable {
		msg := fmt.Sprintf("the weights of %s in %s need %s per device on %d × %s, more than the %s of %s left after the %.0f%% reserve",
			d.m.Name, d.weightDType, units.Bytes(d.weights), d.spec.Devices, d.dev.Name, units.Bytes(d.usable), d.level.Name, 100*d.spec.Reserve)
		if n := d.fewestDevices(); n > 0 {
			msg += fmt.Sprintf(": use at least %d devices", n)
		}
		return errors.New(msg)
	}
	return nil
}

// fewestDevices is the smallest valid group whose weights fit the level,
// or 0 if none up to 64 does.
func (d *deployment) fewestDevices() int {
	total := float64(d.m.Params) * d.wElem
	for n := 1; n <= 64; n++ {
		if _, err := NewShard(d.m, n); err == nil && total/float64(n) < d.level.CapacityBytes*(1-d.spec.Reserve) {
			return n
		}
	}
	return 0
}

// pickLink chooses the link for a group of more than one device.
func (d *deployment) pickLink() error {
	if d.spec.Devices == 1 {
		return nil
	}
	links := d.dev.Links
	if len(links) == 0 {
		return fmt.Errorf("device %s lists no links, so a group of %d cannot communicate", d.dev.Name, d.spec.Devices)
	}
	if d.spec.Link == "" {
		best := links[0]
		for _, l := range links[1:] {
			if l.BandwidthPerDirection > best.BandwidthPerDirection {
				best = l
			}
		}
		d.link = &best
		return nil
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
		if l.Name == d.spec.Link {
			d.link = &l
		}
	}
	if d.link == nil {
		return fmt.Errorf("device %s has no link %q (links: %s)", d.dev.Name, d.spec.Link, strings.Join(names, ", "))
	}
	return nil
}

// matmulPeak is the rate of the device's matrix unit for dtype, else its
// vector unit's (a CPU has no matrix unit), falling back to fp32 rates.
func matmulPeak(dev *hwmodel.Device, dtype string) float64 {
	if p, ok := dev.Peak("matrix", dtype); ok {
		return p
	}
	p, _ := dev.Peak("vector", dtype)
	return p
}

// stepFunc prices one decode step at a batch: its time split and its
// ideal time.
type stepFunc func(batch int) (TimeBreakdown, float64, error)

// planMethod plans one method and returns its step function for the curve.
func (d *deployment) planMethod(am AttentionMethod) (*MethodPlan, stepFunc, error) {
	if am.Trace == nil {
		return nil, nil, errors.New("no trace source")
	}
	m, n := d.m, d.spec.Devices
	preds := map[int]*Prediction{}
	var use cacheUse
	attention := func(b int) (*Prediction, error) {
		if p, ok := preds[b]; ok {
			return p, nil
		}
		tr, err := am.Trace(b)
		if err != nil {
			return nil, fmt.Errorf("attention trace at batch %d: %w", b, err)
		}
		if tr == nil {
			return nil, fmt.Errorf("attention trace at batch %d: none", b)
		}
		p, err := Predict(tr, d.dev, Options{DType: d.kvDType,
			Placement: map[traces.Role]string{traces.RoleKVCache: d.level.Name, traces.RoleParameter: d.level.Name}})
		if err != nil {
			return nil, err
		}
		if b == 1 {
			use = newCacheUse(tr)
		}
		preds[b] = p
		return p, nil
	}
	if _, err := attention(1); err != nil {
		return nil, nil, err
	}

	layers := float64(m.Layers)
	kvSeq := layers * use.total()
	act := activationBytesPerSequence(m, d.shard, d.kvElem) + use.intermediates
	perSeq := kvSeq + act
	free := d.usable - d.weights
	mp := &MethodPlan{
		Method:                   am.Name,
		KVBytesPerToken:          layers * use.perToken * float64(m.KVHeads) / float64(d.shard.KVHeads),
		KVBytesPerTokenPerDevice: layers * use.perToken,
		BytesPerSequence:         perSeq,
		MaxBatch:                 int(math.Min(math.Floor(free/perSeq), MaxPlanBatch)),
	}
	if mp.MaxBatch < 1 {
		return nil, nil, fmt.Errorf("one sequence of %d positions needs %s per device (KV cache %s, activations %s), but only %s is left after the weights (%s) and the %.0f%% reserve of %s: use more devices, a shorter sequence or a smaller KV dtype",
			d.cacheLen, units.Bytes(perSeq), units.Bytes(kvSeq), units.Bytes(act), units.Bytes(math.Max(free, 0)),
			units.Bytes(d.weights), 100*d.spec.Reserve, d.level.Name)
	}

	step := stepFunc(func(b int) (TimeBreakdown, float64, error) {
		p, err := attention(b)
		if err != nil {
			return TimeBreakdown{}, 0, err
		}
		var t TimeBreakdown
		t.Weights = d.weights / d.level.AchievableBandwidth
		linear := 2 * float64(m.MatmulParams()) / float64(n) * float64(b) / d.matmulPeak
		t.Arithmetic = math.Max(0, linear-t.Weights)
		t.Attention = float64(m.Layers) * p.Seconds
		ideal := d.weights/d.level.PeakBandwidth + float64(m.Layers)*p.IdealSeconds
		if d.link != nil {
			bytes := CommBytesPerStep(m, n, b, d.kvElem)
			t.Communication = bytes/d.link.BandwidthPerDirection + float64(commSteps(m, n))*d.link.LatencySeconds
			ideal += bytes / d.link.BandwidthPerDirection
		}
		t.Overhead = float64(m.Layers*d.spec.KernelsPerLayer+collectives(m, n)) * d.perKernel
		return t, ideal, nil
	})

	batch, err := d.chooseBatch(mp.MaxBatch, step)
	if err != nil {
		return nil, nil, err
	}
	t, ideal, err := step(batch)
	if err != nil {
		return nil, nil, err
	}
	mp.Batch, mp.Time, mp.IdealSecondsPerToken = batch, t, ideal
	mp.SecondsPerToken = t.Total()
	mp.TokensPerSecond = float64(batch) / mp.SecondsPerToken
	mp.TokensPerSecondPerDevice = mp.TokensPerSecond / float64(n)
	mp.Attention = preds[batch]
	b := float64(batch)
	mp.Memory = MemoryBreakdown{
		CapacityBytes: d.level.CapacityBytes, ReserveBytes: d.reserve, WeightBytes: d.weights,
		KVCacheBytes: b * kvSeq, ActivationBytes: b * act, FreeBytes: free - b*perSeq,
	}
	for _, name := range use.tensors {
		mp.Memory.KVTensors = append(mp.Memory.KVTensors, TensorBytes{Tensor: name, Bytes: b * layers * use.bytes[name]})
	}
	if target := d.spec.TargetTokensPerSecond; target > 0 {
		mp.Replicas = int(math.Ceil(target / mp.TokensPerSecond))
		mp.DevicesNeeded = mp.Replicas * n
	}
	return mp, step, nil
}

// chooseBatch returns the spec's batch after checking it, or the largest
// batch up to maxBatch whose step meets the latency limit.
func (d *deployment) chooseBatch(maxBatch int, step func(int) (TimeBreakdown, float64, error)) (int, error) {
	limit := d.spec.LatencyLimit
	seconds := func(b int) (float64, error) {
		t, _, err := step(b)
		return t.Total(), err
	}
	if b := d.spec.Batch; b > 0 {
		if b > maxBatch {
			return 0, fmt.Errorf("batch %d does not fit: at most %d sequences of %d positions fit in %s per device", b, maxBatch, d.cacheLen, d.level.Name)
		}
		if limit > 0 {
			s, err := seconds(b)
			if err != nil {
				return 0, err
			}
			if s > limit {
				return 0, fmt.Errorf("batch %d takes %s per token, over the %s latency limit", b, units.Seconds(s), units.Seconds(limit))
			}
		}
		return b, nil
	}
	if limit == 0 {
		return maxBatch, nil
	}
	s, err := seconds(1)
	if err != nil {
		return 0, err
	}
	if s > limit {
		return 0, fmt.Errorf("even batch 1 takes %s per token on %d × %s, over the %s latency limit: use more devices",
			units.Seconds(s), d.spec.Devices, d.dev.Name, units.Seconds(limit))
	}
	// The step time grows with the batch: bisect for the largest batch
	// within the limit.
	lo, hi := 1, maxBatch
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		s, err := seconds(mid)
		if err != nil {
			return 0, err
		}
		if s <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// curveBatches lists the batches of the tokens-per-second curves: powers
// of two up to twice the largest batch that fits any method, and every
// method's largest and planned batch.
func curveBatches(plans []MethodPlan) []int {
	set := map[int]bool{}
	top := 0
	for _, mp := range plans {
		set[mp.MaxBatch], set[mp.Batch] = true, true
		top = max(top, mp.MaxBatch)
	}
	for b := 1; b <= 2*top && b <= MaxPlanBatch; b *= 2 {
		set[b] = true
	}
	return slices.Sorted(maps.Keys(set))
}
