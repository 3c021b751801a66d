package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/sweep"
)

// Options adjust what Write produces.
type Options struct {
	// Command is the command line shown in the report.
	Command string
	// NoFigures skips the PNG and SVG files (the report then has tables
	// only).
	NoFigures bool
}

// File is one file Write wrote.
type File struct {
	Name string // relative to the output directory
	What string // what it holds, for people
}

// IndexName is the report's file name.
const IndexName = "index.html"

// Write writes, into dir (created if needed), every output of a sweep:
// results.csv, results.json, results.bench, the figures as PNG and SVG, and
// index.html. Every file is written atomically. It returns what it wrote,
// in order.
func Write(dir string, res *sweep.Results, opts Options) ([]File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []File
	put := func(name, what string, write func(io.Writer) error) error {
		if err := atomicfile.Write(filepath.Join(dir, name), write); err != nil {
			return err
		}
		files = append(files, File{name, what})
		return nil
	}
	rows := fmt.Sprintf("%d rows", len(res.Rows))
	if err := put(sweep.CSVName, rows+", one per method × device × shape", func(w io.Writer) error { return sweep.WriteCSV(w, res.Rows) }); err != nil {
		return nil, err
	}
	if err := put(sweep.JSONName, rows+" with stages, traffic, settings and devices", func(w io.Writer) error { return sweep.WriteJSON(w, res) }); err != nil {
		return nil, err
	}
	if err := put(sweep.BenchName, rows+" in Go benchmark format (benchstat -col /method "+sweep.BenchName+")", func(w io.Writer) error { return sweep.WriteBench(w, res) }); err != nil {
		return nil, err
	}
	var trade *sweep.Tradeoff
	tradeNote := ""
	if res.Grid.Tradeoff != nil && len(res.Rows) > 0 {
		var err error
		if trade, err = sweep.BuildTradeoff(res, ""); err != nil {
			tradeNote = err.Error()
		} else {
			pts := fmt.Sprintf("%d points", len(trade.Points))
			if err := put(sweep.TradeoffCSVName, pts+" of the trade-off view: transfer ratio, error, mass and speed-up on "+trade.Device+", Pareto fronts", func(w io.Writer) error { return sweep.WriteTradeoffCSV(w, trade) }); err != nil {
				return nil, err
			}
			if err := put(sweep.TradeoffJSONName, pts+" of the trade-off view as JSON", func(w io.Writer) error { return sweep.WriteTradeoffJSON(w, trade) }); err != nil {
				return nil, err
			}
		}
	}
	var figs []figure
	if !opts.NoFigures && len(res.Rows) > 0 {
		var err error
		figs, err = buildFigures(res, trade)
		if err != nil {
			return nil, err
		}
		for _, f := range figs {
			for _, ext := range []string{"png", "svg"} {
				data := f.png
				if ext == "svg" {
					data = f.svg
				}
				if err := put(f.name+"."+ext, f.what, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
					return nil, err
				}
			}
		}
	}
	files = append(files, File{IndexName, "the report: settings, tables and figures in one self-contained page"})
	page, err := renderHTML(res, trade, tradeNote, figs, files, opts)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, IndexName), func(w io.Writer) error { _, err := w.Write(page); return err }); err != nil {
		return nil, err
	}
	return files, nil
}

// figure is one rendered figure.
type figure struct {
	name, title, what string
	section           string // device name, or "" for sweep-wide figures
	png, svg          []byte
}

// tradeoffSection is the section of the trade-off figures.
const tradeoffSection = "\x00tradeoff"

// buildFigures renders every figure of res. A trade-off sweep (trade not
// nil) gets the trade-off figures only: its many methods at one shape
// make line charts against S and per-method panels unreadable.
func buildFigures(res *sweep.Results, trade *sweep.Tradeoff) ([]figure, error) {
	type spec struct {
		name, title, what, section string
		build                      func() (*plots.Figure, error)
	}
	var specs []spec
	if trade != nil {
		specs = append(specs,
			spec{TradeoffErrorFigure, "Trade-off against transfer", "output error and attention mass against the fraction of the KV cache read, Pareto front dashed", tradeoffSection,
				TradeoffChart(res, trade, false).Figure},
			spec{TradeoffSpeedupFigure, "Trade-off against speed-up", "output error and attention mass against the predicted speed-up on " + trade.Device + ", Pareto front dashed", tradeoffSection,
				TradeoffChart(res, trade, true).Figure},
		)
	}
	for _, d := range res.Devices {
		if trade != nil {
			break
		}
		specs = append(specs,
			spec{"speedup-" + d.Name, "Speed-up over dense", "speed-up over dense against sequence length on " + d.Name, d.Name, SpeedupChart(res, d.Name).Figure},
			spec{"time-" + d.Name, "Time per decode step", "time per decode step against sequence length on " + d.Name, d.Name, TimeChart(res, d.Name).Figure},
			spec{"roofline-" + d.Name, "Roofline", "roofline of " + d.Name + " with a point per stage", d.Name, RooflineChart(res, d.Name).Figure},
		)
	}
	if trade == nil {
		specs = append(specs, spec{"transfers", "Transfers by stage and tensor", "bytes per step by stage and tensor", "", TransferChart(res).Figure})
	}
	var out []figure
	for _, s := range specs {
		f, err := s.build()
		if err != nil {
			return nil, fmt.Errorf("figure %s: %w", s.name, err)
		}
		png, err := f.Render("png")
		if err != nil {
			return nil, fmt.Errorf("figure %s: %w", s.name, err)
		}
		svg, err := f.Render("svg")
		if err != nil {
			return nil, fmt.Errorf("figure %s: %w", s.name, err)
		}
		out = append(out, figure{name: s.name, title: s.title, what: s.what, section: s.section, png: png, svg: svg})
	}
	return out, nil
}

// SummaryTable is the speed-ups of one device: a line per (dtype, batch,
// seq), a column per sparse method.
type SummaryTable struct {
	Device  string
	Methods []string
	Lines   []SummaryLine
}

// SummaryLine is one shape of a SummaryTable.
type SummaryLine struct {
	DType      string
	Batch, Seq int
	// DenseSeconds is dense's time per step (0 without a dense row).
	DenseSeconds float64
	// Cells align with SummaryTable.Methods.
	Cells []SummaryCell
}

// SummaryCell is one method's speed-up at one shape.
type SummaryCell struct {
	Speedup, Ideal float64
	Fits, Present  bool
}

// String writes "7.58× (7.59×)", with * when the point does not fit.
func (c SummaryCell) String() string {
	if !c.Present || c.Speedup == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.3g× (%.3g×)", c.Speedup, c.Ideal)
	if !c.Fits {
		s += "*"
	}
	return s
}

// Summaries builds a speed-up table per device.
func Summaries(res *sweep.Results) []SummaryTable {
	st := newStyles(res)
	var sparse []string
	for _, l := range st.labels {
		if st.sparse[l] {
			sparse = append(sparse, l)
		}
	}
	col := map[string]int{}
	for i, l := range sparse {
		col[l] = i
	}
	var out []SummaryTable
	for _, d := range res.Devices {
		t := SummaryTable{Device: d.Name, Methods: sparse}
		idx := map[string]int{}
		for _, r := range res.Rows {
			if r.Device != d.Name {
				continue
			}
			k := fmt.Sprintf("%s|%d|%d", r.DType, r.Batch, r.Seq)
			i, ok := idx[k]
			if !ok {
				i = len(t.Lines)
				idx[k] = i
				t.Lines = append(t.Lines, SummaryLine{DType: r.DType, Batch: r.Batch, Seq: r.Seq, Cells: make([]SummaryCell, len(sparse))})
			}
			ln := &t.Lines[i]
			if !st.sparse[r.Label] {
				if ln.DenseSeconds == 0 {
					ln.DenseSeconds = r.Seconds
				}
				continue
			}
			ln.Cells[col[r.Label]] = SummaryCell{Speedup: r.Speedup, Ideal: r.IdealSpeedup, Fits: r.Fits, Present: true}
		}
		out = append(out, t)
	}
	return out
}

// Settings lists the sweep's settings as (name, value) pairs for people.
func Settings(res *sweep.Results) [][2]string {
	g := res.Grid
	join := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ", ")
	}
	kv := g.KVHeads
	if kv == 0 {
		kv = g.Heads
	}
	place := "default (IPUs keep the KV cache in streaming memory; others the fastest memory level with room)"
	if len(g.Placement) > 0 {
		place = join(len(g.Placement), func(i int) string { return g.Placement[i].String() }) + " (on top of the default)"
	}
	layouts := "each method's default (SparQ: twice, Loki: once)"
	if len(g.Layouts) > 0 {
		layouts = join(len(g.Layouts), func(i int) string { return string(g.Layouts[i]) }) + " (where the method does not set one)"
	}
	steps := "1"
	if g.Steps > 1 {
		steps = fmt.Sprintf("%d (times and bytes: the last step, over S+%d positions; fidelity: the mean over the steps)", g.Steps, g.Steps-1)
	}
	sample := "automatic"
	if g.SampleHeads > 0 {
		sample = fmt.Sprint(g.SampleHeads)
	}
	out := [][2]string{
		{"methods", join(len(g.Methods), func(i int) string { return g.Methods[i].String() })},
		{"sequence lengths", join(len(g.Seqs), func(i int) string { return units.Count(float64(g.Seqs[i])) })},
		{"batch sizes", join(len(g.Batches), func(i int) string { return fmt.Sprint(g.Batches[i]) })},
		{"dtypes", join(len(g.DTypes), func(i int) string { return string(g.DTypes[i]) })},
		{"heads / KV heads / head size", fmt.Sprintf("%d / %d / %d", g.Heads, kv, g.HeadDim)},
		{"impl", join(len(g.Impls), func(i int) string { return string(g.Impls[i]) })},
		{"K layout", layouts},
		{"append current token", fmt.Sprint(g.AppendKV)},
		{"decode steps per point", steps},
		{"workload, seed", fmt.Sprintf("%s, %d", g.Workload, g.Seed)},
		{"sampled (sequence, KV head) pairs", sample},
		{"devices", strings.Join(g.Devices, ", ")},
		{"placement", place},
		{"points", fmt.Sprintf("%d of %d finished", res.Done, res.Points)},
	}
	if t := g.Tradeoff; t != nil {
		out = append(out, [2]string{"trade-off view", "speed-ups on " + t.Device + "; lines: " + strings.Join(t.Families, ", ")})
	}
	if res.Shard != "" {
		out = append(out, [2]string{"shard", res.Shard})
	}
	return out
}

// FidelityLine is one sparse method's fidelity at one shape.
type FidelityLine struct {
	Label                     string
	DType                     string
	Batch, Seq                int
	R, K                      int
	RelL2, Alpha, Mass, Recal float64
	Sampled, Total            int64
}

// Fidelities lists the sparse rows' fidelity (device-independent: taken
// from the first device's rows).
func Fidelities(res *sweep.Results) []FidelityLine {
	if len(res.Devices) == 0 {
		return nil
	}
	first := res.Devices[0].Name
	var out []FidelityLine
	for _, r := range res.Rows {
		if r.Device != first || r.Method == "dense" {
			continue
		}
		out = append(out, FidelityLine{r.Label, r.DType, r.Batch, r.Seq, r.R, r.K, r.RelL2Error, r.AlphaMean, r.MassCovered, r.TopKRecall, r.SampledPairs, r.TotalPairs})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}

type htmlFigure struct {
	Title, What, Name string
	Src               template.URL
}

type htmlSection struct {
	Device      string
	Description string
	Summary     SummaryTable
	Figures     []htmlFigure
}

// htmlTradeoff is the trade-off section.
type htmlTradeoff struct {
	Device  string
	Focus   string
	Figures []htmlFigure
	Points  []sweep.TradeoffPoint
	// Multi is set when the points span several shapes.
	Multi bool
}

type htmlPage struct {
	Tradeoff     *htmlTradeoff
	TradeoffNote string
	Command      string
	Settings     [][2]string
	Incomplete   string
	Sections     []htmlSection
	Shared       []htmlFigure
	Fidelity     []FidelityLine
	Rows         []sweep.Row
	Files        []File
	Misfits      bool
	Focus        string
}

var funcs = template.FuncMap{
	"count":   func(n int) string { return units.Count(float64(n)) },
	"seconds": func(s float64) string { return units.Seconds(s) },
	"bytes":   func(n int64) string { return units.Bytes(float64(n)) },
	"g3":      func(x float64) string { return fmt.Sprintf("%.3g", x) },
	"dash": func(n int) string {
		if n == 0 {
			return "–"
		}
		return fmt.Sprint(n)
	},
	"ratio": func(x float64) string {
		if x == 0 {
			return "–"
		}
		return fmt.Sprintf("%.3g×", x)
	},
}

var page = template.Must(template.New("index").Funcs(funcs).Parse(indexHTML))

func renderHTML(res *sweep.Results, trade *sweep.Tradeoff, tradeNote string, figs []figure, files []File, opts Options) ([]byte, error) {
	p := htmlPage{Command: opts.Command, Settings: Settings(res), Rows: res.Rows, Files: files, TradeoffNote: tradeNote}
	if !res.Complete {
		p.Incomplete = fmt.Sprintf("This sweep is incomplete: %d of %d points finished. Run it again with --resume to finish it.", res.Done, res.Points)
	}
	if f, ok := FocusOf(res); ok {
		p.Focus = f.String()
	}
	if trade != nil {
		t := &htmlTradeoff{Device: trade.Device, Focus: tradeoffFocus(res, trade).String(), Points: trade.Points}
		for _, pt := range trade.Points {
			p0 := trade.Points[0]
			t.Multi = t.Multi || pt.Seq != p0.Seq || pt.Batch != p0.Batch || pt.DType != p0.DType || pt.Steps != p0.Steps
		}
		for _, f := range figs {
			if f.section == tradeoffSection {
				t.Figures = append(t.Figures, htmlFigure{f.title, f.what, f.name, dataURL(f.png)})
			}
		}
		p.Tradeoff = t
	}
	sums := Summaries(res)
	for i, d := range res.Devices {
		if trade != nil {
			break // the trade-off table replaces the per-device tables
		}
		sec := htmlSection{Device: d.Name, Description: d.Description, Summary: sums[i]}
		for _, f := range figs {
			if f.section == d.Name {
				sec.Figures = append(sec.Figures, htmlFigure{f.title, f.what, f.name, dataURL(f.png)})
			}
		}
		p.Sections = append(p.Sections, sec)
	}
	for _, f := range figs {
		if f.section == "" {
			p.Shared = append(p.Shared, htmlFigure{f.title, f.what, f.name, dataURL(f.png)})
		}
	}
	p.Fidelity = Fidelities(res)
	for _, r := range res.Rows {
		if !r.Fits {
			p.Misfits = true
		}
	}
	var b bytes.Buffer
	if err := page.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func dataURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

const indexHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bwsim sweep</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
code, pre { font-family: "Liberation Mono", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 0.5em 0.8em; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td.l, th.l { text-align: left; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 0.8em; }
.note { color: #555; font-size: 0.9em; }
figure { margin: 0.8em 0 1.4em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
details { margin: 1em 0; }
</style>
</head>
<body>
<h1>bwsim sweep</h1>
<p class="note">Predicted time of one decode step of attention (one layer) for each method, shape and device: the kernels ran on the host and their byte-level traces were priced on each device's memory hierarchy. Speed-ups are dense's time over the method's on the same device and shape; the ideal one compares requested bytes at peak bandwidth (the paper's "theoretical" speed-up).</p>
{{if .Command}}<pre>{{.Command}}</pre>{{end}}
{{if .Incomplete}}<p class="warn">{{.Incomplete}}</p>{{end}}

<h2 id="settings">Settings</h2>
<table>
{{range .Settings}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>
{{end}}</table>
{{if .TradeoffNote}}<p class="warn">No trade-off view: {{.TradeoffNote}}</p>{{end}}
{{with .Tradeoff}}
<h2 id="tradeoff">Trade-off</h2>
<p class="note">Each method over its parameter range, {{.Focus}}{{if .Multi}} in the figures (the table has every shape){{end}}: the output's relative L2 error and the exact attention mass on the positions it selects, against the fraction of the KV cache it reads (transfer: KV-cache bytes read over dense's) and against its predicted speed-up over dense on {{.Device}}. Each family of parameters is a line; the dashed line and rings mark the Pareto front, the points no other point beats in both coordinates (dense, with no error at 1×, takes part).</p>
{{range .Figures}}<figure><img src="{{.Src}}" alt="{{.What}}"><figcaption>{{.Title}}: {{.What}} (<a href="{{.Name}}.svg">SVG</a>, <a href="{{.Name}}.png">PNG</a>)</figcaption></figure>
{{end}}
<table>
<tr><th class="l">family</th><th class="l">method</th>{{if .Multi}}<th>dtype</th><th>batch</th><th>S</th>{{end}}<th>r</th><th>k</th><th>transfer</th><th>all bytes</th><th>rel. L2 error</th><th>mass covered</th><th>top-k recall</th><th>speed-up</th><th>ideal speed-up</th><th class="l">front</th></tr>
{{range .Points}}<tr><td class="l">{{.Family}}</td><td class="l">{{.Label}}</td>{{if $.Tradeoff.Multi}}<td>{{.DType}}</td><td>{{.Batch}}</td><td>{{count .Seq}}</td>{{end}}<td>{{dash .R}}</td><td>{{dash .K}}</td><td>{{g3 .TransferRatio}}</td><td>{{g3 .BytesRatio}}</td><td>{{g3 .RelL2Error}}</td><td>{{g3 .MassCovered}}</td><td>{{g3 .TopKRecall}}</td><td>{{ratio .Speedup}}{{if not .Fits}}*{{end}}</td><td>{{ratio .IdealSpeedup}}</td><td class="l">{{if .FrontTransfer}}T{{end}}{{if .FrontSpeedup}}S{{end}}</td></tr>
{{end}}</table>
<p class="note">front: on the Pareto front of error against transfer (T) and against speed-up (S). all bytes: every byte the step requests (intermediates, outputs and the append included) over dense's.</p>
{{end}}

{{range .Sections}}
<h2 id="{{.Device}}">{{.Device}}</h2>
{{if .Description}}<p class="note">{{.Description}}</p>{{end}}
<h3>Speed-up over dense (ideal in parentheses)</h3>
<table>
<tr><th>dtype</th><th>batch</th><th>S</th><th>dense time</th>{{range .Summary.Methods}}<th>{{.}}</th>{{end}}</tr>
{{range .Summary.Lines}}<tr><td>{{.DType}}</td><td>{{.Batch}}</td><td>{{count .Seq}}</td><td>{{if .DenseSeconds}}{{seconds .DenseSeconds}}{{else}}–{{end}}</td>{{range .Cells}}<td>{{.String}}</td>{{end}}</tr>
{{end}}</table>
{{range .Figures}}<figure><img src="{{.Src}}" alt="{{.What}}"><figcaption>{{.Title}}: {{.What}} (<a href="{{.Name}}.svg">SVG</a>, <a href="{{.Name}}.png">PNG</a>)</figcaption></figure>
{{end}}
{{end}}

{{if .Shared}}<h2 id="transfers">Transfers</h2>
{{range .Shared}}<figure><img src="{{.Src}}" alt="{{.What}}"><figcaption>{{.Title}}: {{.What}}, {{$.Focus}} (<a href="{{.Name}}.svg">SVG</a>, <a href="{{.Name}}.png">PNG</a>)</figcaption></figure>
{{end}}{{end}}

{{if .Misfits}}<p class="note">* and ○: the KV cache of this shape does not fit in the device's memory; the point is priced as if the outermost memory level were large enough (a real deployment would need several devices or a smaller batch).</p>{{end}}

{{if .Fidelity}}<h2 id="fidelity">Fidelity against dense</h2>
<p class="note">On the same synthetic data; relative L2 error of the output, mean α (the approximate attention mass of the selected positions), exact mass covered and top-k recall.</p>
<table>
<tr><th class="l">method</th><th>dtype</th><th>batch</th><th>S</th><th>r</th><th>k</th><th>rel. L2 error</th><th>mean α</th><th>mass covered</th><th>top-k recall</th><th>sampled pairs</th></tr>
{{range .Fidelity}}<tr><td class="l">{{.Label}}</td><td>{{.DType}}</td><td>{{.Batch}}</td><td>{{count .Seq}}</td><td>{{.R}}</td><td>{{.K}}</td><td>{{g3 .RelL2}}</td><td>{{g3 .Alpha}}</td><td>{{g3 .Mass}}</td><td>{{g3 .Recal}}</td><td>{{.Sampled}} of {{.Total}}</td></tr>
{{end}}</table>{{end}}

<details><summary>All {{len .Rows}} rows</summary>
<table>
<tr><th class="l">method</th><th class="l">device</th><th>dtype</th><th>batch</th><th>S</th><th>r</th><th>k</th><th>time</th><th>ideal</th><th>speed-up</th><th>ideal speed-up</th><th>bytes</th><th>moved</th><th class="l">bound</th><th class="l">KV in</th><th>fits</th></tr>
{{range .Rows}}<tr><td class="l">{{.Label}}</td><td class="l">{{.Device}}</td><td>{{.DType}}</td><td>{{.Batch}}</td><td>{{count .Seq}}</td><td>{{.R}}</td><td>{{.K}}</td><td>{{seconds .Seconds}}</td><td>{{seconds .IdealSeconds}}</td><td>{{ratio .Speedup}}</td><td>{{ratio .IdealSpeedup}}</td><td>{{bytes .Bytes}}</td><td>{{bytes .MovedBytes}}</td><td class="l">{{.Bound}}</td><td class="l">{{.KVLevel}}</td><td>{{if .Fits}}yes{{else}}no{{end}}</td></tr>
{{end}}</table>
</details>

<h2 id="files">Files</h2>
<table>
{{range .Files}}<tr><td class="l"><a href="{{.Name}}">{{.Name}}</a></td><td class="l">{{.What}}</td></tr>
{{end}}</table>
</body>
</html>
`
