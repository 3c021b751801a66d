// Package report turns sweep results into the files a person reads: the
// figures (PNG and SVG) and a self-contained index.html with the settings,
// tables and figures inline, next to the machine-readable results.csv,
// results.json and results.bench.
package report

import (
	"fmt"
	"sort"

	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/sweep"
)

// curve identifies one line of a chart: a method at one batch and dtype.
type curve struct {
	label string
	batch int
	dtype string
}

// styles assigns colours to methods and markers to (batch, dtype) pairs, the
// same in every figure.
type styles struct {
	labels   []string       // method labels, grid order
	color    map[string]int // by label
	marker   map[string]plots.Marker
	shapes   []string // "batch|dtype" keys in order
	dtypes   int
	sparse   map[string]bool
	variants []sweep.Variant
}

func newStyles(res *sweep.Results) *styles {
	s := &styles{color: map[string]int{}, marker: map[string]plots.Marker{}, sparse: map[string]bool{}}
	s.variants = res.Grid.Variants()
	for i, v := range s.variants {
		s.labels = append(s.labels, v.Label)
		s.color[v.Label] = i
		s.sparse[v.Label] = v.Spec.Name != kernels.MethodDense
	}
	s.dtypes = len(res.Grid.DTypes)
	i := 0
	for _, dt := range res.Grid.DTypes {
		for _, b := range res.Grid.Batches {
			k := shapeKey(b, string(dt))
			s.shapes = append(s.shapes, k)
			s.marker[k] = plots.MarkerAt(i)
			i++
		}
	}
	return s
}

func shapeKey(batch int, dtype string) string { return fmt.Sprintf("%d|%s", batch, dtype) }

func (s *styles) name(c curve) string {
	n := fmt.Sprintf("%s, batch %d", c.label, c.batch)
	if s.dtypes > 1 {
		n += ", " + c.dtype
	}
	return n
}

// curves groups a device's rows into lines, in legend order (method, then
// dtype and batch), each sorted by sequence length.
func curves(res *sweep.Results, device string, keep func(sweep.Row) bool) ([]curve, map[curve][]sweep.Row) {
	byCurve := map[curve][]sweep.Row{}
	for _, r := range res.Rows {
		if r.Device != device || !keep(r) {
			continue
		}
		c := curve{r.Label, r.Batch, r.DType}
		byCurve[c] = append(byCurve[c], r)
	}
	st := newStyles(res)
	order := map[string]int{}
	for i, l := range st.labels {
		order[l] = i
	}
	shapeOrder := map[string]int{}
	for i, k := range st.shapes {
		shapeOrder[k] = i
	}
	var cs []curve
	for c, rows := range byCurve {
		sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if order[cs[i].label] != order[cs[j].label] {
			return order[cs[i].label] < order[cs[j].label]
		}
		return shapeOrder[shapeKey(cs[i].batch, cs[i].dtype)] < shapeOrder[shapeKey(cs[j].batch, cs[j].dtype)]
	})
	return cs, byCurve
}

const notFitNote = "KV cache does not fit (priced as if it did)"

// SpeedupChart is speed-up over dense against sequence length on one
// device: a solid line per sparse method and batch, its ideal (bytes at
// peak bandwidth) dashed in the same colour, 1× in gray.
func SpeedupChart(res *sweep.Results, device string) plots.LineChart {
	st := newStyles(res)
	c := plots.LineChart{
		Title:  "Speed-up over dense on " + device + shapeTitle(res),
		X:      plots.Axis{Label: "sequence length S", Scale: plots.Log, Unit: plots.Count},
		Y:      plots.Axis{Label: "speed-up over dense", Scale: plots.Log, Unit: plots.Ratio},
		HLines: []float64{1},
	}
	cs, rows := curves(res, device, func(r sweep.Row) bool { return st.sparse[r.Label] && r.Speedup > 0 })
	var misfits []plots.Point
	for _, cv := range cs {
		var real, ideal []plots.Point
		for _, r := range rows[cv] {
			real = append(real, plots.Point{X: float64(r.Seq), Y: r.Speedup})
			ideal = append(ideal, plots.Point{X: float64(r.Seq), Y: r.IdealSpeedup})
			if !r.Fits {
				misfits = append(misfits, plots.Point{X: float64(r.Seq), Y: r.Speedup})
			}
		}
		clr := st.color[cv.label]
		c.Series = append(c.Series,
			plots.Series{Name: st.name(cv), Points: real, Color: clr, Marker: st.marker[shapeKey(cv.batch, cv.dtype)]},
			plots.Series{Points: ideal, Color: clr, Style: plots.Dashed, Width: 1})
	}
	if len(cs) > 0 {
		c.Series = append(c.Series, plots.Series{Name: "ideal: bytes at peak bandwidth", Color: -1, Style: plots.Dashed, Width: 1})
	}
	c.Series = append(c.Series, misfitSeries(misfits)...)
	return c
}

// TimeChart is the predicted time of one decode step against sequence
// length on one device, a line per method and batch.
func TimeChart(res *sweep.Results, device string) plots.LineChart {
	st := newStyles(res)
	c := plots.LineChart{
		Title: "Time per decode step on " + device + shapeTitle(res),
		X:     plots.Axis{Label: "sequence length S", Scale: plots.Log, Unit: plots.Count},
		Y:     plots.Axis{Label: "time per step (one layer's attention)", Scale: plots.Log, Unit: plots.Seconds},
	}
	cs, rows := curves(res, device, func(sweep.Row) bool { return true })
	var misfits []plots.Point
	for _, cv := range cs {
		var pts []plots.Point
		for _, r := range rows[cv] {
			pts = append(pts, plots.Point{X: float64(r.Seq), Y: r.Seconds})
			if !r.Fits {
				misfits = append(misfits, plots.Point{X: float64(r.Seq), Y: r.Seconds})
			}
		}
		c.Series = append(c.Series, plots.Series{Name: st.name(cv), Points: pts, Color: st.color[cv.label], Marker: st.marker[shapeKey(cv.batch, cv.dtype)]})
	}
	c.Series = append(c.Series, misfitSeries(misfits)...)
	return c
}

func misfitSeries(pts []plots.Point) []plots.Series {
	if len(pts) == 0 {
		return nil
	}
	return []plots.Series{
		{Points: pts, Color: -1, Style: plots.NoLine, Marker: plots.Ring},
		{Name: notFitNote, Color: -1, Style: plots.NoLine, Marker: plots.Ring},
	}
}

func shapeTitle(res *sweep.Results) string {
	g := res.Grid
	kv := g.KVHeads
	if kv == 0 || kv == g.Heads {
		return fmt.Sprintf(" (%d heads × %d)", g.Heads, g.HeadDim)
	}
	return fmt.Sprintf(" (%d heads, %d KV heads, × %d)", g.Heads, kv, g.HeadDim)
}

// Focus is the shape the roofline and transfer figures show: the largest
// batch and sequence length of the first dtype that has rows.
type Focus struct {
	Batch, Seq int
	DType      string
}

// String is "batch 64, S = 128K, fp16".
func (f Focus) String() string {
	return fmt.Sprintf("batch %d, S = %s, %s", f.Batch, units.Count(float64(f.Seq)), f.DType)
}

// FocusOf picks the focus shape of res; ok is false when res has no rows.
func FocusOf(res *sweep.Results) (Focus, bool) {
	var f Focus
	for _, dt := range res.Grid.DTypes {
		for _, r := range res.Rows {
			if r.DType != string(dt) {
				continue
			}
			if r.Batch > f.Batch || (r.Batch == f.Batch && r.Seq > f.Seq) {
				f = Focus{r.Batch, r.Seq, r.DType}
			}
		}
		if f.Batch > 0 {
			return f, true
		}
	}
	return f, false
}

// RooflineChart places every stage of every method at the focus shape on
// the device's roofline: a ceiling per memory level (achievable bandwidth)
// and per compute peak of the dtype.
func RooflineChart(res *sweep.Results, device string) plots.Roofline {
	st := newStyles(res)
	focus, _ := FocusOf(res)
	rf := plots.Roofline{Title: fmt.Sprintf("Roofline of %s, %s", device, focus)}
	if dev, ok := res.Device(device); ok {
		for _, l := range dev.Levels {
			if l.Role == "onchip" || l.AchievableBandwidth <= 0 {
				continue
			}
			rf.Ceilings = append(rf.Ceilings, plots.Ceiling{Name: fmt.Sprintf("%s %s", l.Name, units.Bandwidth(l.AchievableBandwidth)), BytesPerSecond: l.AchievableBandwidth})
		}
		for _, unit := range []string{"matrix", "vector"} {
			if v, ok := dev.Peak(unit, focus.DType); ok {
				rf.Peaks = append(rf.Peaks, plots.Peak{Name: fmt.Sprintf("%s %s", unit, units.Flops(v)), FlopsPerSecond: v})
			}
		}
	}
	kinds := map[string]int{}
	groups := map[string]int{}
	for _, label := range st.labels {
		for _, r := range res.Rows {
			if r.Device != device || r.Label != label || r.Batch != focus.Batch || r.Seq != focus.Seq || r.DType != focus.DType {
				continue
			}
			g, ok := groups[label]
			if !ok {
				g = len(rf.Groups)
				groups[label] = g
				rf.Groups = append(rf.Groups, label)
			}
			for _, s := range r.Stages {
				k, ok := kinds[s.Name]
				if !ok {
					k = len(rf.Kinds)
					kinds[s.Name] = k
					rf.Kinds = append(rf.Kinds, s.Name)
				}
				rate := 0.0
				if s.Seconds > 0 {
					rate = float64(s.Flops) / s.Seconds
				}
				rf.Points = append(rf.Points, plots.RooflinePoint{Group: g, Kind: k, Intensity: s.ArithmeticIntensity, Rate: rate})
			}
		}
	}
	return rf
}

// TransferChart is the bytes each method's stages request at the focus
// shape, stacked by tensor: one panel per method, each on its own scale.
func TransferChart(res *sweep.Results) plots.Bars {
	st := newStyles(res)
	focus, _ := FocusOf(res)
	b := plots.Bars{
		Title: "Bytes per step by stage and tensor, " + focus.String(),
		Y:     plots.Axis{Label: "bytes requested (reads + writes)", Unit: plots.Bytes},
	}
	layer := map[string]int{}
	byLabel := map[string]sweep.Traffic{}
	for _, t := range res.Traffic {
		if t.Batch == focus.Batch && t.Seq == focus.Seq && t.DType == focus.DType {
			byLabel[t.Label] = t
		}
	}
	for _, label := range st.labels {
		t, ok := byLabel[label]
		if !ok {
			continue
		}
		for _, s := range t.Stages {
			for _, x := range s.Tensors {
				if _, ok := layer[x.Tensor]; !ok {
					layer[x.Tensor] = len(b.Layers)
					b.Layers = append(b.Layers, x.Tensor)
				}
			}
		}
	}
	for _, label := range st.labels {
		t, ok := byLabel[label]
		if !ok {
			continue
		}
		bp := plots.BarPanel{Title: label, Values: make([][]float64, len(b.Layers))}
		for l := range bp.Values {
			bp.Values[l] = make([]float64, len(t.Stages))
		}
		for c, s := range t.Stages {
			bp.Categories = append(bp.Categories, s.Stage)
			for _, x := range s.Tensors {
				bp.Values[layer[x.Tensor]][c] = float64(x.ReadBytes + x.WriteBytes)
			}
		}
		b.Panels = append(b.Panels, bp)
	}
	return b
}
