package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Bars is a stacked bar chart in one or more panels that share a legend:
// in each panel one bar per category, each bar the sum of its layers.
type Bars struct {
	Title  string
	Panels []BarPanel
	// Layers name the stacked parts, bottom up; their colours follow the
	// palette.
	Layers []string
	// Y is the value axis (linear; Unit decides its ticks).
	Y Axis
}

// BarPanel is one panel of a Bars chart.
type BarPanel struct {
	Title      string
	Categories []string
	// Values[layer][category]; missing or non-finite values count as 0.
	Values [][]float64
}

// value returns the drawable value of layer l, category c.
func (bp BarPanel) value(l, c int) float64 {
	if l >= len(bp.Values) || c >= len(bp.Values[l]) {
		return 0
	}
	v := bp.Values[l][c]
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// Total returns the height of bar c.
func (bp BarPanel) Total(c int) float64 {
	t := 0.0
	for l := range bp.Values {
		t += bp.value(l, c)
	}
	return t
}

// Figure builds the chart: one panel per BarPanel, each with its own value
// range (so a method that moves 8× less is still legible).
func (b Bars) Figure() (*Figure, error) {
	f := &Figure{Legend: newLegend(), W: 9 * vg.Inch, H: 4.8 * vg.Inch}
	for i, bp := range b.Panels {
		title := bp.Title
		if i == 0 && b.Title != "" && len(b.Panels) == 1 {
			title = b.Title + "\n" + bp.Title
		}
		p := newPlot(title)
		p.Title.TextStyle.Font.Size = vg.Points(10)
		n := len(bp.Categories)
		if n == 0 {
			p.Title.Text += " (no data)"
			p.HideX()
			f.Panels = append(f.Panels, p)
			continue
		}
		top := 0.0
		for c := range n {
			top = math.Max(top, bp.Total(c))
		}
		ymin, ymax := axisRange(Axis{Unit: b.Y.Unit}, []float64{0, top}, 1.1)
		y := b.Y
		if i > 0 {
			y.Label = ""
		}
		setupAxis(&p.Y, Axis{Label: y.Label, Unit: y.Unit}, ymin, ymax)
		p.Add(grid())
		width := vg.Points(math.Max(6, math.Min(28, 160/float64(n))))
		var below *plotter.BarChart
		for l := range b.Layers {
			vals := make(plotter.Values, n)
			any := false
			for c := range n {
				vals[c] = bp.value(l, c)
				any = any || vals[c] > 0
			}
			bc, err := plotter.NewBarChart(vals, width)
			if err != nil {
				return nil, fmt.Errorf("plots: %w", err)
			}
			bc.Color = ColorAt(l)
			bc.LineStyle = draw.LineStyle{Color: grayOf(0xff), Width: vg.Points(0.3)}
			if below != nil {
				bc.StackOn(below)
			}
			below = bc
			if any {
				p.Add(bc)
			}
		}
		p.NominalX(bp.Categories...)
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
		p.Y.Min, p.Y.Max = ymin, ymax
		f.Panels = append(f.Panels, p)
	}
	for l, name := range b.Layers {
		f.addLegend(name, swatch{ColorAt(l)})
	}
	if len(f.Panels) > 1 && b.Title != "" {
		f.Title = b.Title
	}
	return f, nil
}

// swatch is a filled legend thumbnail.
type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y},
	}
	c.FillPolygon(s.c, c.ClipPolygonY(pts))
}

var _ plot.Thumbnailer = swatch{}
