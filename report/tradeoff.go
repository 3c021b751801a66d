package report

import (
	"fmt"
	"slices"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/sweep"
)

// Figure names of the trade-off view.
const (
	TradeoffErrorFigure   = "tradeoff-error"
	TradeoffSpeedupFigure = "tradeoff-speedup"
)

// tradeoffFocus is the shape the trade-off figures show: the focus shape
// of the sweep when the view has points there, else that of its first
// point.
func tradeoffFocus(res *sweep.Results, t *sweep.Tradeoff) Focus {
	f, ok := FocusOf(res)
	if ok {
		for _, p := range t.Points {
			if p.DType == f.DType && p.Batch == f.Batch && p.Seq == f.Seq {
				return f
			}
		}
	}
	if len(t.Points) == 0 {
		return f
	}
	p := t.Points[0]
	return Focus{Batch: p.Batch, Seq: p.Seq, DType: p.DType}
}

// tradeoffAt returns the view's points at the focus shape.
func tradeoffAt(t *sweep.Tradeoff, f Focus) []sweep.TradeoffPoint {
	var out []sweep.TradeoffPoint
	for _, p := range t.Points {
		if p.DType == f.DType && p.Batch == f.Batch && p.Seq == f.Seq {
			out = append(out, p)
		}
	}
	return out
}

// tradeoffAxis picks a point's coordinate on one axis.
type tradeoffAxis struct {
	axis  plots.Axis
	value func(sweep.TradeoffPoint) float64
	// front reports whether a point is on the front of this x and the
	// panel's y (error or mass).
	frontErr, frontMass func(sweep.TradeoffPoint) bool
	vlines              []float64
}

// TradeoffChart is one figure of the trade-off view at the focus shape:
// the output's relative error (left) and the attention mass on the
// selected positions (right) against the transfer ratio (speedup false) or
// the predicted speed-up on the view's device (speedup true). Each family
// is a line in the order of its x; the Pareto front is dashed and ringed.
func TradeoffChart(res *sweep.Results, t *sweep.Tradeoff, speedup bool) plots.Scatter {
	focus := tradeoffFocus(res, t)
	pts := tradeoffAt(t, focus)
	x := tradeoffAxis{
		axis:      plots.Axis{Label: "KV-cache bytes read / dense's", Scale: plots.Log, Unit: plots.Fraction},
		value:     func(p sweep.TradeoffPoint) float64 { return p.TransferRatio },
		frontErr:  func(p sweep.TradeoffPoint) bool { return p.FrontTransfer },
		frontMass: func(p sweep.TradeoffPoint) bool { return p.MassFrontTransfer },
	}
	what := "transfer ratio"
	if speedup {
		x = tradeoffAxis{
			axis:      plots.Axis{Label: "predicted speed-up over dense, " + t.Device, Scale: plots.Log, Unit: plots.Ratio},
			value:     func(p sweep.TradeoffPoint) float64 { return p.Speedup },
			frontErr:  func(p sweep.TradeoffPoint) bool { return p.FrontSpeedup },
			frontMass: func(p sweep.TradeoffPoint) bool { return p.MassFrontSpeedup },
			vlines:    []float64{1},
		}
		what = "speed-up on " + t.Device
	}
	title := fmt.Sprintf("Error and attention mass against %s, %s%s, %s", what, focus, shapeTitle(res), res.Grid.Workload)
	panels := []struct {
		title string
		y     plots.Axis
		value func(sweep.TradeoffPoint) float64
		front func(sweep.TradeoffPoint) bool
	}{
		// The quantities are in the panel titles, not on the y axes: gonum
		// pads a log axis's label as if it sat at the arithmetic middle of
		// the range, which would offset one panel from the other.
		{"Relative L2 error of the output (lower is better)", plots.Axis{Scale: plots.Log, Unit: plots.Plain},
			func(p sweep.TradeoffPoint) float64 { return p.RelL2Error }, x.frontErr},
		{"Attention mass on the selected positions (higher is better)", plots.Axis{Unit: plots.Plain},
			func(p sweep.TradeoffPoint) float64 { return p.MassCovered }, x.frontMass},
	}
	sc := plots.Scatter{Title: title}
	for _, pn := range panels {
		sp := plots.ScatterPanel{Title: pn.title, X: x.axis, Y: pn.y, FrontName: "Pareto front", VLines: x.vlines}
		for i, fam := range t.Families {
			var line []plots.Point
			for _, p := range pts {
				if p.Family == fam {
					line = append(line, plots.Point{X: x.value(p), Y: pn.value(p)})
				}
			}
			if len(line) == 0 {
				continue
			}
			slices.SortStableFunc(line, func(a, b plots.Point) int { return cmpFloat(a.X, b.X) })
			s := plots.Series{Name: fam, Points: line, Color: familyColor(i), Marker: plots.MarkerAt(i), Width: 1}
			if fam == kernels.MethodDense {
				s.Color, s.Marker, s.Style = -1, plots.Square, plots.NoLine
			}
			sp.Series = append(sp.Series, s)
		}
		for _, p := range pts {
			if pn.front(p) {
				sp.Front = append(sp.Front, plots.Point{X: x.value(p), Y: pn.value(p)})
			}
		}
		slices.SortStableFunc(sp.Front, func(a, b plots.Point) int { return cmpFloat(a.X, b.X) })
		sc.Panels = append(sc.Panels, sp)
	}
	return sc
}

// familyColor is family i's palette colour, skipping black, the front's.
func familyColor(i int) int {
	if i >= 7 {
		return i + 1
	}
	return i
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
