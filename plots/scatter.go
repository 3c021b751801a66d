package plots

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Scatter is a trade-off chart: one or more panels side by side, each a
// cloud of points (series of markers, optionally joined in order) with a
// front, the points that nothing beats, joined by a dashed black line and
// ringed. Panels share one legend: each series name once, in the order
// first met, then the front.
type Scatter struct {
	Title  string
	Panels []ScatterPanel
}

// ScatterPanel is one panel of a Scatter.
type ScatterPanel struct {
	Title string
	X, Y  Axis
	// Series are drawn in order, over the front's line.
	Series []Series
	// Front is joined in the order given; FrontName is its legend entry
	// ("" for none).
	Front     []Point
	FrontName string
	// FrontLabels, when set, annotate the front's points (aligned with
	// Front; "" for none).
	FrontLabels []string
	// HLines and VLines are thin gray reference lines (1× on a speed-up
	// axis), inside the ranges.
	HLines, VLines []float64
}

// Ranges returns the panel's axis ranges: the fixed ones, or the drawable
// points of the series and the front (and the reference lines) with room
// around them.
func (sp ScatterPanel) Ranges() (xmin, xmax, ymin, ymax float64) {
	var xs, ys []float64
	add := func(pts []Point) {
		for _, seg := range segments(pts, sp.X.Scale, sp.Y.Scale) {
			for _, p := range seg {
				xs = append(xs, p.X)
				ys = append(ys, p.Y)
			}
		}
	}
	for _, s := range sp.Series {
		add(s.Points)
	}
	add(sp.Front)
	if len(xs) > 0 {
		for _, v := range sp.VLines {
			if usable(v, sp.X.Scale) {
				xs = append(xs, v)
			}
		}
		for _, h := range sp.HLines {
			if usable(h, sp.Y.Scale) {
				ys = append(ys, h)
			}
		}
	}
	xmin, xmax = axisRange(sp.X, xs, 1.25)
	ymin, ymax = axisRange(sp.Y, ys, 1.25)
	return
}

// frontStyle is how fronts are drawn.
var (
	frontLine  = draw.LineStyle{Color: Palette[7], Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(2.5)}}
	frontGlyph = Ring.glyph(Palette[7])
)

// Figure builds the chart.
func (s Scatter) Figure() (*Figure, error) {
	f := &Figure{Legend: newLegend(), W: 12 * vg.Inch, H: 5 * vg.Inch}
	if len(s.Panels) == 1 {
		f.W = Width
	}
	f.Title = s.Title
	seen := map[string]bool{}
	frontName := ""
	for _, sp := range s.Panels {
		xmin, xmax, ymin, ymax := sp.Ranges()
		p := newPlot(sp.Title)
		p.Title.TextStyle.Font.Size = vg.Points(11)
		setupAxis(&p.X, sp.X, xmin, xmax)
		setupAxis(&p.Y, sp.Y, ymin, ymax)
		p.Add(grid())
		addUnboxed := func(ps ...plot.Plotter) {
			for _, x := range ps {
				p.Add(unboxed{x})
			}
		}
		if err := addHLines(p, sp.HLines, sp.Y.Scale, xmin, xmax); err != nil {
			return nil, err
		}
		for _, v := range sp.VLines {
			if !usable(v, sp.X.Scale) {
				continue
			}
			l, err := plotter.NewLine(plotter.XYs{{X: v, Y: ymin}, {X: v, Y: ymax}})
			if err != nil {
				return nil, err
			}
			l.LineStyle = draw.LineStyle{Color: Gray, Width: vg.Points(0.8)}
			addUnboxed(l)
		}
		front, labels := drawableFront(sp, sp.X.Scale, sp.Y.Scale)
		var frontRings *plotter.Scatter
		if len(front) > 0 {
			if len(front) > 1 {
				l, err := plotter.NewLine(front)
				if err != nil {
					return nil, err
				}
				l.LineStyle = frontLine
				addUnboxed(l)
			}
			sc, err := plotter.NewScatter(front)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = frontGlyph
			frontRings = sc
		}
		entries, empty, err := addSeries(p, sp.Series, sp.X.Scale, sp.Y.Scale, addUnboxed)
		if err != nil {
			return nil, err
		}
		if frontRings != nil {
			addUnboxed(frontRings)
		}
		if len(labels) > 0 {
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: front, Labels: labels})
			if err != nil {
				return nil, err
			}
			for i := range lb.TextStyle {
				lb.TextStyle[i].Font = font.From(sans, 7)
				lb.TextStyle[i].XAlign = draw.XLeft
				lb.TextStyle[i].YAlign = draw.YCenter
			}
			lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(-5)}
			addUnboxed(lb)
		}
		for _, e := range entries {
			if !seen[e.name] {
				seen[e.name] = true
				f.addLegend(e.name, e.thumbs...)
			}
		}
		if frontName == "" {
			frontName = sp.FrontName
		}
		if empty && len(front) == 0 {
			p.Title.Text += " (no data)"
		}
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
		f.Panels = append(f.Panels, p)
	}
	if frontName != "" {
		f.addLegend(frontName, &plotter.Line{LineStyle: frontLine}, &plotter.Scatter{GlyphStyle: frontGlyph})
	}
	return f, nil
}

// unboxed hides a plotter's glyph boxes from gonum, which otherwise pads
// each panel's data area by its own glyphs, differently in every panel:
// panels side by side would not line up. Ranges leave room for the
// glyphs instead.
type unboxed struct{ plotter plot.Plotter }

func (u unboxed) Plot(c draw.Canvas, p *plot.Plot) { u.plotter.Plot(c, p) }

// drawableFront returns the front's drawable points and, when the panel
// labels them, their labels ("" labels kept so they stay aligned; nil when
// every label is empty).
func drawableFront(sp ScatterPanel, xs, ys Scale) (plotter.XYs, []string) {
	var pts plotter.XYs
	var labels []string
	any := false
	for i, p := range sp.Front {
		if !usable(p.X, xs) || !usable(p.Y, ys) {
			continue
		}
		pts = append(pts, plotter.XY{X: p.X, Y: p.Y})
		l := ""
		if i < len(sp.FrontLabels) {
			l = sp.FrontLabels[i]
		}
		any = any || l != ""
		labels = append(labels, l)
	}
	if !any {
		labels = nil
	}
	return pts, labels
}
