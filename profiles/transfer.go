// Package profiles turns a simulated step into pprof profiles, so that the
// standard tools (go tool pprof, its flame graph, -tagfocus) can take a
// trace apart.
//
// A data-transfer profile (Transfer) has one sample per stage, tensor and
// direction. Its stack reads, leaf first, tensor → stage → method, so the
// flame graph reads method ▸ stage ▸ tensor. Frames are named:
//
//	method   the trace's method                      "sparq"
//	stage    method and stage name, joined by a dot  "sparq.approx-scores"
//	tensor   the tensor's name                       "Kt"
//
// (a stage frame carries its method's name so that it never collides with a
// tensor of the same name, such as dense's "scores" stage and tensor). Every
// sample carries the labels of traces.LabelMethod, LabelStage, LabelTensor,
// LabelRole, LabelDirection and LabelLevel; the kernels put the first three
// on their CPU profiles, so one -tagfocus selects the same stage in both.
//
// The sample types, all scaled to the full shape like every total of a trace:
//
//	transferred (bytes, the default)  the bytes the kernel asked for: the
//	        requested bytes of the trace's extents; their sum is exactly
//	        Trace.Totals().Bytes()
//	moved (bytes)  what the memory level the tensor is placed in moves:
//	        the extents folded to that level's granularity, counted once per
//	        granule when a cache in front of the level holds the stage's
//	        footprint of the tensor (or the level is itself a cache) and once
//	        per run otherwise, as roofline.Predict prices them; summed over a
//	        stage and level it equals that stage's LevelTraffic.MovedBytes
//	predicted (nanoseconds)  the stage's predicted time on the device,
//	        apportioned to its samples in proportion to the time each one's
//	        moved bytes take at the bandwidth the prediction used for its level
//	        (moved / LevelTraffic.Bandwidth): a memory-bound stage's time is
//	        shared by the transfers that make it. The stage's fixed overheads,
//	        and its compute or latency when they bind, are shared the same way.
//	        Rounding is by largest remainder, so a stage's samples sum to its
//	        predicted time rounded to the nanosecond. A stage that moves
//	        nothing gets one sample with the stack stage → method and no
//	        tensor.
//	extents (count)  the contiguous runs of bytes the kernel requested: a
//	        strided extent counts each of its repeats.
package profiles

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/google/pprof/profile"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
)

// Sample types of a transfer profile, in the order of Profile.SampleType.
const (
	SampleTransferred = "transferred"
	SampleMoved       = "moved"
	SamplePredicted   = "predicted"
	SampleExtents     = "extents"
)

// Value indices of a transfer profile's samples.
const (
	IndexTransferred = iota
	IndexMoved
	IndexPredicted
	IndexExtents
)

// Options adjust a transfer profile.
type Options struct {
	// Comments are added after the profile's own (go tool pprof -comments
	// prints them), e.g. the command line that made it.
	Comments []string
}

// sampleKey identifies one sample: a tensor moved in one direction by one
// stage.
type sampleKey struct {
	stage  int
	tensor traces.TensorID
	dir    traces.Direction
}

// row accumulates one sample's values.
type row struct {
	sampleKey
	requested int64 // bytes, for the sampled pairs
	runs      int64 // contiguous runs, for the sampled pairs
	level     string
	moved     int64 // bytes, scaled
	share     float64
	values    [4]int64
}

// Transfer builds the data-transfer profile of tr as priced on dev by pred,
// which must be roofline.Predict(tr, dev, …). The package documentation
// describes the samples, frames and labels.
func Transfer(tr *traces.Trace, dev *hwmodel.Device, pred *roofline.Prediction, opts Options) (*profile.Profile, error) {
	if tr == nil || dev == nil || pred == nil {
		return nil, fmt.Errorf("transfer profile: nil trace, device or prediction")
	}
	if len(pred.Stages) != len(tr.Stages) {
		return nil, fmt.Errorf("transfer profile: prediction has %d stages, trace %d", len(pred.Stages), len(tr.Stages))
	}
	for i, st := range tr.Stages {
		if pred.Stages[i].Name != st.Name {
			return nil, fmt.Errorf("transfer profile: stage %d is %q in the trace, %q in the prediction", i, st.Name, pred.Stages[i].Name)
		}
	}
	var rows []*row
	var stageOnly []int // stages that move nothing
	for i, st := range tr.Stages {
		byKey := map[sampleKey]*row{}
		var srows []*row
		for _, e := range st.Extents {
			k := sampleKey{i, e.Tensor, e.Dir}
			r, ok := byKey[k]
			if !ok {
				r = &row{sampleKey: k}
				byKey[k] = r
				srows = append(srows, r)
			}
			r.requested += e.Bytes()
			r.runs += e.Runs()
		}
		slices.SortFunc(srows, func(a, b *row) int {
			if a.tensor != b.tensor {
				return int(a.tensor) - int(b.tensor)
			}
			return int(a.dir) - int(b.dir)
		})
		if err := priceStage(tr, pred, i, srows); err != nil {
			return nil, err
		}
		if len(srows) == 0 {
			stageOnly = append(stageOnly, i)
		}
		rows = append(rows, srows...)
	}

	// Scale requested bytes and runs to the full shape so that the totals
	// are exactly those of the trace, whatever the rounding of the scale.
	var reads, writes, runs []int64
	var readIdx, writeIdx []int
	for j, r := range rows {
		if r.dir == traces.Write {
			writes, writeIdx = append(writes, r.requested), append(writeIdx, j)
		} else {
			reads, readIdx = append(reads, r.requested), append(readIdx, j)
		}
		runs = append(runs, r.runs)
	}
	tot := tr.Totals()
	for k, v := range apportion(tot.ReadBytes, reads) {
		rows[readIdx[k]].values[IndexTransferred] = v
	}
	for k, v := range apportion(tot.WriteBytes, writes) {
		rows[writeIdx[k]].values[IndexTransferred] = v
	}
	for j, v := range apportion(tr.Scale.Apply(sum(runs)), runs) {
		rows[j].values[IndexExtents] = v
	}

	b := newBuilder(tr, dev, pred, opts)
	for _, r := range rows {
		tn := tr.Tensors[r.tensor]
		b.add([]string{tn.Name, stageFrame(tr.Method, tr.Stages[r.stage].Name), tr.Method}, r.values[:], map[string][]string{
			traces.LabelMethod:    {tr.Method},
			traces.LabelStage:     {tr.Stages[r.stage].Name},
			traces.LabelTensor:    {tn.Name},
			traces.LabelRole:      {string(tn.Role)},
			traces.LabelDirection: {r.dir.String()},
			traces.LabelLevel:     {r.level},
		})
	}
	for _, i := range stageOnly {
		v := []int64{0, 0, nanos(pred.Stages[i].Seconds), 0}
		b.add([]string{stageFrame(tr.Method, tr.Stages[i].Name), tr.Method}, v, map[string][]string{
			traces.LabelMethod: {tr.Method},
			traces.LabelStage:  {tr.Stages[i].Name},
		})
	}
	if err := b.p.CheckValid(); err != nil {
		return nil, fmt.Errorf("transfer profile: %w", err)
	}
	return b.p, nil
}

// priceStage fills the level, moved bytes and predicted time of stage i's
// rows from the prediction's per-tensor traffic.
func priceStage(tr *traces.Trace, pred *roofline.Prediction, i int, rows []*row) error {
	st := tr.Stages[i]
	sp := pred.Stages[i]
	var shares []float64
	for _, r := range rows {
		name := tr.Tensors[r.tensor].Name
		found := false
		for _, tt := range sp.Tensors {
			if tt.Tensor != name || tt.Direction != r.dir {
				continue
			}
			found = true
			r.level = tt.Level
			r.moved = tt.MovedBytes
			r.values[IndexMoved] = r.moved
			for _, lt := range sp.Levels {
				if lt.Level == tt.Level && lt.Bandwidth > 0 {
					r.share = float64(r.moved) / lt.Bandwidth
				}
			}
		}
		if !found {
			return fmt.Errorf("transfer profile: stage %s: the prediction has no traffic for tensor %s (%s)", st.Name, name, r.dir)
		}
		shares = append(shares, r.share)
	}
	w := weights(shares)
	if sum(w) == 0 {
		// No level time to go by: share the stage's time by moved bytes.
		for k, r := range rows {
			w[k] = r.moved
		}
	}
	for k, v := range apportion(nanos(sp.Seconds), w) {
		rows[k].values[IndexPredicted] = v
	}
	return nil
}

func stageFrame(method, stage string) string { return method + "." + stage }

func nanos(s float64) int64 {
	if !(s > 0) {
		return 0
	}
	return int64(math.Round(s * 1e9))
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// weights turns non-negative shares into integer weights with 2^52
// resolution relative to the largest.
func weights(shares []float64) []int64 {
	var hi float64
	for _, s := range shares {
		hi = math.Max(hi, s)
	}
	w := make([]int64, len(shares))
	if !(hi > 0) || math.IsInf(hi, 0) {
		return w
	}
	for i, s := range shares {
		w[i] = int64(math.Round(s / hi * (1 << 52)))
	}
	return w
}

// apportion splits total into integers proportional to the non-negative
// weights by largest remainder (ties to the earlier weight): the parts sum to
// total exactly. Zero weights get zero; with no positive weight every part
// is zero.
func apportion(total int64, w []int64) []int64 {
	out := make([]int64, len(w))
	W := sum(w)
	if W <= 0 || total <= 0 {
		return out
	}
	type rem struct {
		i int
		r uint64
	}
	rems := make([]rem, 0, len(w))
	left := total
	for i, x := range w {
		if x <= 0 {
			continue
		}
		// x·total/W in 128 bits: x ≤ W, so the quotient fits.
		hi, lo := bits.Mul64(uint64(x), uint64(total))
		q, r := bits.Div64(hi, lo, uint64(W))
		out[i] = int64(q)
		left -= int64(q)
		rems = append(rems, rem{i, r})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return 0
	})
	for k := 0; left > 0; k++ {
		out[rems[k].i]++
		left--
	}
	return out
}

// builder assembles a profile with synthetic frames.
type builder struct {
	p       *profile.Profile
	mapping *profile.Mapping
	locs    map[string]*profile.Location
}

func newBuilder(tr *traces.Trace, dev *hwmodel.Device, pred *roofline.Prediction, opts Options) *builder {
	m := &profile.Mapping{ID: 1, File: "bwsim", HasFunctions: true}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			IndexTransferred: {Type: SampleTransferred, Unit: "bytes"},
			IndexMoved:       {Type: SampleMoved, Unit: "bytes"},
			IndexPredicted:   {Type: SamplePredicted, Unit: "nanoseconds"},
			IndexExtents:     {Type: SampleExtents, Unit: "count"},
		},
		DefaultSampleType: SampleTransferred,
		PeriodType:        &profile.ValueType{Type: SampleTransferred, Unit: "bytes"},
		Period:            1,
		Mapping:           []*profile.Mapping{m},
		Comments: append([]string{
			fmt.Sprintf("bwsim transfer profile: %s on %s, predicted %.4g s per step", tr.Method, dev.Name, pred.Seconds),
			fmt.Sprintf("byte counts scaled from %d simulated to %d (sequence, kv-head) pairs", tr.Scale.Sampled, tr.Scale.Total),
		}, opts.Comments...),
	}
	return &builder{p: p, mapping: m, locs: map[string]*profile.Location{}}
}

// location returns the frame's location, creating it and its function on
// first use.
func (b *builder) location(name string) *profile.Location {
	if l, ok := b.locs[name]; ok {
		return l
	}
	f := &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: name}
	b.p.Function = append(b.p.Function, f)
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1), Mapping: b.mapping, Line: []profile.Line{{Function: f}}}
	b.p.Location = append(b.p.Location, l)
	b.locs[name] = l
	return l
}

// add appends a sample whose stack is frames, leaf first.
func (b *builder) add(frames []string, values []int64, labels map[string][]string) {
	s := &profile.Sample{Value: slices.Clone(values), Label: labels}
	for _, f := range frames {
		s.Location = append(s.Location, b.location(f))
	}
	b.p.Sample = append(b.p.Sample, s)
}

// Totals sums every sample type of p over all samples, in the order of
// p.SampleType (for a transfer profile, index with IndexTransferred, ...).
func Totals(p *profile.Profile) []int64 {
	out := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		for i, v := range s.Value {
			if i < len(out) {
				out[i] += v
			}
		}
	}
	return out
}
