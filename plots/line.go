package plots

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Axis describes one axis of a chart.
type Axis struct {
	Label string
	Scale Scale
	Unit  Unit
	// Min and Max fix the range when Max > Min; otherwise the data decide.
	Min, Max float64
}

// Point is one data point.
type Point struct{ X, Y float64 }

// Series is one line (or set of markers) of a chart.
type Series struct {
	// Name is the legend entry; "" for none. A series with a name and no
	// points is a legend entry only (to explain a style).
	Name   string
	Points []Point
	// Color indexes Palette; negative is gray.
	Color  int
	Style  LineStyle
	Marker Marker
	// Width is the line width in points; 0 means 1.5.
	Width float64
}

// LineChart is a chart of series against a common x axis.
type LineChart struct {
	Title string
	X, Y  Axis
	// Series are drawn in order.
	Series []Series
	// HLines are thin gray reference lines (1× on a speed-up chart); they
	// are inside the y range.
	HLines []float64
}

// usable reports whether v can be drawn on an axis of scale s.
func usable(v float64, s Scale) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	return s != Log || v > 0
}

// segments splits the series' points at the ones that cannot be drawn, so a
// gap stays a gap.
func segments(pts []Point, xs, ys Scale) [][]Point {
	var out [][]Point
	var cur []Point
	for _, p := range pts {
		if usable(p.X, xs) && usable(p.Y, ys) {
			cur = append(cur, p)
			continue
		}
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Clean returns the series' drawable points (finite, > 0 on log axes).
func (c LineChart) Clean(s Series) []Point {
	var out []Point
	for _, seg := range segments(s.Points, c.X.Scale, c.Y.Scale) {
		out = append(out, seg...)
	}
	return out
}

// Ranges returns the axis ranges the chart is drawn with: the fixed ones,
// or the drawable data (and HLines) padded a little. Log ranges are always
// positive.
func (c LineChart) Ranges() (xmin, xmax, ymin, ymax float64) {
	var xs, ys []float64
	for _, s := range c.Series {
		for _, p := range c.Clean(s) {
			xs = append(xs, p.X)
			ys = append(ys, p.Y)
		}
	}
	for _, h := range c.HLines {
		if usable(h, c.Y.Scale) && len(ys) > 0 {
			ys = append(ys, h)
		}
	}
	xmin, xmax = axisRange(c.X, xs, 1.06)
	ymin, ymax = axisRange(c.Y, ys, 1.25)
	return
}

// axisRange is the range of vals on ax, padded by the factor pad on a log
// scale (by (pad−1)/2 of the span on a linear one).
func axisRange(ax Axis, vals []float64, pad float64) (float64, float64) {
	if ax.Max > ax.Min && (ax.Scale != Log || ax.Min > 0) {
		return ax.Min, ax.Max
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if ax.Scale == Log {
		if math.IsInf(lo, 0) { // no data
			return 1, 10
		}
		if lo == hi {
			return lo / 2, hi * 2
		}
		return lo / pad, hi * pad
	}
	if math.IsInf(lo, 0) {
		return 0, 1
	}
	if lo > 0 && ax.Unit != Plain {
		lo = 0 // quantities start at zero
	}
	if lo == hi {
		return lo - 1, hi + 1
	}
	m := (hi - lo) * (pad - 1) / 2
	if lo == 0 {
		return 0, hi + m
	}
	return lo - m, hi + m
}

func setupAxis(a *plot.Axis, ax Axis, min, max float64) {
	a.Label.Text = ax.Label
	a.Min, a.Max = min, max
	if ax.Scale == Log {
		a.Scale = plot.LogScale{}
	}
	a.Tick.Marker = ticker{ax.Scale, ax.Unit}
}

func grid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = colorGrid
	g.Horizontal.Color = colorGrid
	g.Vertical.Width = vg.Points(0.4)
	g.Horizontal.Width = vg.Points(0.4)
	return g
}

var colorGrid color.Color = color.Gray{Y: 0xe0}

// Figure builds the chart.
func (c LineChart) Figure() (*Figure, error) {
	xmin, xmax, ymin, ymax := c.Ranges()
	p := newPlot(c.Title)
	setupAxis(&p.X, c.X, xmin, xmax)
	setupAxis(&p.Y, c.Y, ymin, ymax)
	p.Add(grid())
	f := &Figure{Panels: []*plot.Plot{p}, Legend: newLegend()}
	if err := addHLines(p, c.HLines, c.Y.Scale, xmin, xmax); err != nil {
		return nil, err
	}
	entries, empty, err := addSeries(p, c.Series, c.X.Scale, c.Y.Scale, p.Add)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		f.addLegend(e.name, e.thumbs...)
	}
	if empty {
		p.Title.Text += " (no data)"
	}
	// Add widened the ranges to the data; put ours back.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
	return f, nil
}

// addHLines draws thin gray horizontal reference lines across [xmin, xmax].
func addHLines(p *plot.Plot, ys []float64, scale Scale, xmin, xmax float64) error {
	for _, h := range ys {
		if !usable(h, scale) {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: h}, {X: xmax, Y: h}})
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: Gray, Width: vg.Points(0.8)}
		p.Add(l)
	}
	return nil
}

// legendEntry is a named series' legend line.
type legendEntry struct {
	name   string
	thumbs []plot.Thumbnailer
}

// addSeries draws the series in order, handing each plotter to add (p.Add,
// or a wrapper), and returns the legend entries of the named ones; empty
// reports that no series had a drawable point.
func addSeries(p *plot.Plot, series []Series, xs, ys Scale, add func(...plot.Plotter)) (entries []legendEntry, empty bool, err error) {
	empty = true
	for _, s := range series {
		clr := ColorAt(s.Color)
		width := vg.Points(1.5)
		if s.Width > 0 {
			width = vg.Points(s.Width)
		}
		ls := s.Style.draw(clr, width)
		gs := s.Marker.glyph(clr)
		var thumbs []plot.Thumbnailer
		for _, seg := range segments(s.Points, xs, ys) {
			empty = false
			xys := make(plotter.XYs, len(seg))
			for i, pt := range seg {
				xys[i] = plotter.XY{X: pt.X, Y: pt.Y}
			}
			if s.Style != NoLine {
				l, err := plotter.NewLine(xys)
				if err != nil {
					return nil, false, err
				}
				l.LineStyle = ls
				add(l)
				if thumbs == nil {
					thumbs = append(thumbs, l)
				}
			}
			if s.Marker != NoMarker {
				sc, err := plotter.NewScatter(xys)
				if err != nil {
					return nil, false, err
				}
				sc.GlyphStyle = gs
				add(sc)
				if len(thumbs) < 2 {
					thumbs = append(thumbs, sc)
				}
			}
		}
		if s.Name == "" {
			continue
		}
		if thumbs == nil { // a legend-only entry, or no drawable point
			thumbs = legendThumbs(s.Style, ls, s.Marker, gs)
		}
		entries = append(entries, legendEntry{s.Name, thumbs})
	}
	return entries, empty, nil
}

// legendThumbs draws a style without data.
func legendThumbs(style LineStyle, ls draw.LineStyle, m Marker, gs draw.GlyphStyle) []plot.Thumbnailer {
	var out []plot.Thumbnailer
	if style != NoLine {
		l := &plotter.Line{LineStyle: ls}
		out = append(out, l)
	}
	if m != NoMarker {
		out = append(out, &plotter.Scatter{GlyphStyle: gs})
	}
	return out
}
