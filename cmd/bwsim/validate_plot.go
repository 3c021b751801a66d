package main

import (
	"fmt"
	"io"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/roofline"
)

// writeValidationPlot draws predicted against measured time per call, in
// microseconds on log-log axes, one series per device, method and impl, with
// y = x solid and y = 2x, y = x/2 dashed.
func writeValidationPlot(path, format, title string, points []roofline.ValidationPoint) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "measured time per call (µs)"
	p.Y.Label.Text = "predicted time per call (µs)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	groups := map[string]plotter.XYs{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range points {
		x, y := pt.Seconds*1e6, pt.PredictedSeconds*1e6
		if !(x > 0 && y > 0) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			continue
		}
		k := fmt.Sprintf("%s %s %s", pt.Device, pt.Method, pt.Impl)
		groups[k] = append(groups[k], plotter.XY{X: x, Y: y})
		lo, hi = math.Min(lo, math.Min(x, y)), math.Max(hi, math.Max(x, y))
	}
	if len(groups) == 0 {
		return fmt.Errorf("%s: no points to draw", path)
	}
	lo, hi = lo/1.5, hi*1.5
	for _, f := range []struct {
		factor float64
		dashed bool
	}{{1, false}, {2, true}, {0.5, true}} {
		l, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo * f.factor}, {X: hi, Y: hi * f.factor}})
		if err != nil {
			return err
		}
		l.Width = vg.Points(0.8)
		if f.dashed {
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			l.Color = plotutil.Color(7)
		}
		p.Add(l)
	}
	p.Legend.Add("y = x (dashed: 2× off)")
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		s, err := plotter.NewScatter(groups[k])
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(2.2)
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s (%d)", k, len(groups[k])), s)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
	wt, err := p.WriterTo(7*vg.Inch, 7*vg.Inch, format)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
