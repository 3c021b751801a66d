package plots

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Roofline is a roofline chart: attained operation rate against arithmetic
// intensity (operations per byte), both log, under the ceilings of each
// memory level (bandwidth × intensity) and each compute peak.
type Roofline struct {
	Title string
	// Ceilings are memory levels; Peaks are compute rates.
	Ceilings []Ceiling
	Peaks    []Peak
	// Points are drawn with the colour of their group and the marker of
	// their kind; Groups and Kinds name them in the legend, in order.
	Points []RooflinePoint
	Groups []string
	Kinds  []string
}

// Ceiling is a memory level's bandwidth.
type Ceiling struct {
	Name           string
	BytesPerSecond float64
}

// Peak is a compute unit's rate.
type Peak struct {
	Name           string
	FlopsPerSecond float64
}

// RooflinePoint is one stage of one kernel.
type RooflinePoint struct {
	// Group indexes Roofline.Groups (colour), Kind Roofline.Kinds (marker).
	Group, Kind int
	// Intensity is flops per byte moved from memory; Rate is flops per
	// second attained.
	Intensity, Rate float64
}

// Usable returns the points that can be drawn (both coordinates finite
// and positive).
func (r Roofline) Usable() []RooflinePoint {
	var out []RooflinePoint
	for _, p := range r.Points {
		if usable(p.Intensity, Log) && usable(p.Rate, Log) {
			out = append(out, p)
		}
	}
	return out
}

// Ranges returns the axis ranges: every point, every ridge point (where a
// ceiling meets the highest peak) and the peaks, with room around them.
func (r Roofline) Ranges() (xmin, xmax, ymin, ymax float64) {
	var xs, ys []float64
	top := r.topPeak()
	for _, p := range r.Usable() {
		xs = append(xs, p.Intensity)
		ys = append(ys, p.Rate)
	}
	for _, c := range r.Ceilings {
		if usable(c.BytesPerSecond, Log) && top > 0 {
			xs = append(xs, top/c.BytesPerSecond)
		}
	}
	for _, p := range r.Peaks {
		if usable(p.FlopsPerSecond, Log) {
			ys = append(ys, p.FlopsPerSecond)
		}
	}
	xmin, xmax = axisRange(Axis{Scale: Log}, xs, 4)
	ymin, ymax = axisRange(Axis{Scale: Log}, ys, 3)
	return
}

func (r Roofline) topPeak() float64 {
	top := 0.0
	for _, p := range r.Peaks {
		if usable(p.FlopsPerSecond, Log) {
			top = math.Max(top, p.FlopsPerSecond)
		}
	}
	return top
}

// Figure builds the chart.
func (r Roofline) Figure() (*Figure, error) {
	xmin, xmax, ymin, ymax := r.Ranges()
	p := newPlot(r.Title)
	setupAxis(&p.X, Axis{Label: "arithmetic intensity (flop/byte)", Scale: Log, Unit: Plain}, xmin, xmax)
	setupAxis(&p.Y, Axis{Label: "attained (flop/s)", Scale: Log, Unit: Flops}, ymin, ymax)
	p.Add(grid())
	f := &Figure{Panels: []*plot.Plot{p}, Legend: newLegend()}
	top := r.topPeak()
	styles := []LineStyle{Solid, Dashed, Dotted}
	for i, c := range r.Ceilings {
		if !usable(c.BytesPerSecond, Log) {
			continue
		}
		// bandwidth × intensity up to the highest peak.
		xEnd := xmax
		if top > 0 {
			xEnd = math.Min(xmax, top/c.BytesPerSecond)
		}
		if xEnd <= xmin {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: c.BytesPerSecond * xmin}, {X: xEnd, Y: c.BytesPerSecond * xEnd}})
		if err != nil {
			return nil, err
		}
		l.LineStyle = styles[i%len(styles)].draw(grayOf(0x30), vg.Points(1.2))
		p.Add(l)
		f.addLegend(c.Name, l)
	}
	for i, pk := range r.Peaks {
		if !usable(pk.FlopsPerSecond, Log) {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: pk.FlopsPerSecond}, {X: xmax, Y: pk.FlopsPerSecond}})
		if err != nil {
			return nil, err
		}
		l.LineStyle = styles[i%len(styles)].draw(grayOf(0x90), vg.Points(1.2))
		p.Add(l)
		f.addLegend(pk.Name, l)
	}
	usablePts := r.Usable()
	for g := range r.Groups {
		for k := range r.Kinds {
			var xys plotter.XYs
			for _, pt := range usablePts {
				if pt.Group == g && pt.Kind == k {
					xys = append(xys, plotter.XY{X: pt.Intensity, Y: pt.Rate})
				}
			}
			if len(xys) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = MarkerAt(k).glyph(ColorAt(g))
			p.Add(sc)
		}
	}
	for g, name := range r.Groups {
		f.addLegend(name, swatch{ColorAt(g)})
	}
	for k, name := range r.Kinds {
		f.addLegend(name, &plotter.Scatter{GlyphStyle: MarkerAt(k).glyph(Gray)})
	}
	if len(usablePts) == 0 {
		p.Title.Text += " (no data)"
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
	return f, nil
}
