// Package plots draws bwsim's figures with gonum/plot: line charts on
// log–log axes (speed-up and time per step against sequence length),
// roofline charts and stacked transfer breakdowns.
//
// It knows nothing of sweeps or traces: callers describe a figure with this
// package's small types (LineChart, Roofline, Bars) and render it to PNG or
// SVG. Every value that cannot sit on a log axis (≤ 0, NaN, ±Inf) is
// dropped before drawing, tick labels read as people write numbers (4K,
// 64 MiB, 20 µs, 2×), and a panic inside gonum becomes an error.
package plots

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is one or more panels side by side with a shared legend on the
// right.
type Figure struct {
	// Title is drawn above all panels (panels have their own titles too).
	Title string
	// Panels are drawn left to right.
	Panels []*plot.Plot
	// Legend is drawn in a column right of the panels; it may be empty.
	Legend plot.Legend
	// W and H are the figure's size; zero means Width and Height.
	W, H vg.Length
	// entries counts legend entries (plot.Legend does not say).
	entries int
}

// Default figure size and PNG resolution.
const (
	Width  = 8.5 * vg.Inch
	Height = 4.2 * vg.Inch
	DPI    = 110
)

// sans is the font of every text; Liberation Sans ships inside the module,
// so rendering needs no system fonts.
var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 12)
	p.Title.Padding = vg.Points(6)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sans, 11)
		ax.Tick.Label.Font = font.From(sans, 9)
	}
	return p
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 9)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(2)
	return l
}

func (f *Figure) addLegend(name string, thumbs ...plot.Thumbnailer) {
	f.Legend.Add(name, thumbs...)
	f.entries++
}

// Render draws the figure at its size as "png" or "svg" (fonts embedded).
// A panic inside gonum is returned as an error.
func (f *Figure) Render(format string) ([]byte, error) {
	w, h := f.W, f.H
	if w <= 0 || h <= 0 {
		w, h = Width, Height
	}
	return f.RenderSize(format, w, h)
}

// RenderSize draws the figure at w × h.
func (f *Figure) RenderSize(format string, w, h vg.Length) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("plots: drawing failed: %v", r)
		}
	}()
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))}
	case "svg":
		c = vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(true))
	default:
		return nil, fmt.Errorf("plots: unknown format %q (want png or svg)", format)
	}
	f.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Draw draws the figure on dc.
func (f *Figure) Draw(dc draw.Canvas) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	area := dc
	if f.Title != "" {
		sty := draw.TextStyle{Color: color.Black, Font: font.From(sans, 12), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
		sty.Font.Size = vg.Points(12)
		dc.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - vg.Points(4)}, f.Title)
		area = draw.Crop(dc, 0, 0, 0, -sty.Height(f.Title)-vg.Points(8))
	}
	if f.entries > 0 {
		lr := f.Legend.Rectangle(dc)
		lw := lr.Max.X - lr.Min.X + vg.Points(10)
		if maxW := (dc.Max.X - dc.Min.X) * 45 / 100; lw > maxW {
			lw = maxW
		}
		area = draw.Crop(area, 0, -lw, 0, 0)
		col := draw.Crop(dc, dc.Max.X-dc.Min.X-lw+vg.Points(6), 0, 0, -vg.Points(26))
		f.Legend.Draw(col)
	}
	if len(f.Panels) == 0 {
		return
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(f.Panels), PadX: vg.Points(8), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(6)}
	canvases := plot.Align([][]*plot.Plot{f.Panels}, tiles, area)
	for i, p := range f.Panels {
		p.Draw(canvases[0][i])
	}
}

// Palette is the colour cycle of series: Okabe–Ito first (readable by
// people with colour-vision deficiencies), then more for many categories.
var Palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xff}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xff}, // green
	color.RGBA{0xCC, 0x79, 0xA7, 0xff}, // purple
	color.RGBA{0xE6, 0x9F, 0x00, 0xff}, // orange
	color.RGBA{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	color.RGBA{0x8C, 0x6D, 0x31, 0xff}, // brown
	color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
	// Paul Tol's muted scheme, for charts with many categories.
	color.RGBA{0x33, 0x22, 0x88, 0xff}, // indigo
	color.RGBA{0x88, 0xCC, 0xEE, 0xff}, // cyan
	color.RGBA{0x44, 0xAA, 0x99, 0xff}, // teal
	color.RGBA{0x11, 0x77, 0x33, 0xff}, // dark green
	color.RGBA{0x99, 0x99, 0x33, 0xff}, // olive
	color.RGBA{0xDD, 0xCC, 0x77, 0xff}, // sand
	color.RGBA{0xCC, 0x66, 0x77, 0xff}, // rose
	color.RGBA{0x88, 0x22, 0x55, 0xff}, // wine
	color.RGBA{0xAA, 0x44, 0x99, 0xff}, // mauve
}

// Gray is the colour of reference lines.
var Gray = color.Gray{Y: 0x80}

// ColorAt returns the palette colour i (cycling); negative i is gray.
func ColorAt(i int) color.Color {
	if i < 0 {
		return Gray
	}
	return Palette[i%len(Palette)]
}

// Marker is a point glyph.
type Marker int

// Markers: filled shapes first, then outlines.
const (
	NoMarker Marker = iota
	Circle          // filled
	Triangle        // filled, pointing up
	Square          // filled
	Diamond         // filled
	Cross
	Plus
	OpenTriangle
	OpenSquare
	Ring // open circle, drawn larger: marks points that need a remark
)

// Markers lists the glyphs that cycle for categories (Ring is kept for
// remarks).
var Markers = []Marker{Circle, Triangle, Square, Diamond, Cross, Plus, OpenTriangle, OpenSquare}

// MarkerAt returns marker i of the cycle.
func MarkerAt(i int) Marker { return Markers[i%len(Markers)] }

// diamond is a square turned by 45°.
type diamond struct{}

func (diamond) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(0.5)})
	r := sty.Radius * 1.2
	var p vg.Path
	p.Move(vg.Point{X: pt.X, Y: pt.Y + r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y})
	p.Line(vg.Point{X: pt.X, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X - r, Y: pt.Y})
	p.Close()
	c.SetColor(sty.Color)
	c.Fill(p)
}

func (m Marker) glyph(clr color.Color) draw.GlyphStyle {
	g := draw.GlyphStyle{Color: clr, Radius: vg.Points(2.6)}
	switch m {
	case Circle:
		g.Shape = draw.CircleGlyph{}
	case Triangle:
		g.Shape = draw.PyramidGlyph{}
		g.Radius = vg.Points(3.2)
	case Square:
		g.Shape = draw.BoxGlyph{}
		g.Radius = vg.Points(2.4)
	case OpenTriangle:
		g.Shape = draw.TriangleGlyph{}
		g.Radius = vg.Points(3)
	case OpenSquare:
		g.Shape = draw.SquareGlyph{}
	case Diamond:
		g.Shape = diamond{}
	case Cross:
		g.Shape = draw.CrossGlyph{}
		g.Radius = vg.Points(3)
	case Plus:
		g.Shape = draw.PlusGlyph{}
		g.Radius = vg.Points(3)
	case Ring:
		g.Shape = draw.RingGlyph{}
		g.Radius = vg.Points(4.5)
	}
	return g
}

// LineStyle is how a series' line is drawn.
type LineStyle int

// Line styles.
const (
	Solid LineStyle = iota
	Dashed
	Dotted
	NoLine // markers only
)

func (s LineStyle) draw(clr color.Color, width vg.Length) draw.LineStyle {
	ls := draw.LineStyle{Color: clr, Width: width}
	switch s {
	case Dashed:
		ls.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	case Dotted:
		ls.Dashes = []vg.Length{vg.Points(1.5), vg.Points(2)}
	}
	return ls
}

func grayOf(y uint8) color.Color { return color.Gray{Y: y} }
