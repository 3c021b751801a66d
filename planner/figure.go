package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/bwsim/bwsim/internal/atomicfile"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/plots"
	"github.com/bwsim/bwsim/roofline"
)

// FigureName is the base name of the tokens-per-second figure WriteOutputs
// writes (with .png and .svg); JSONName the plan itself.
const (
	FigureName = "tokens-per-second"
	JSONName   = "plan.json"
)

// Chart draws tokens per second of the group against batch for every method
// with a curve: solid where the batch fits in memory, dashed beyond (what
// the device would give with unlimited memory), and a dotted vertical line
// at each method's memory wall (its largest batch that fits).
func Chart(p *roofline.CapacityPlan) plots.LineChart {
	group := p.Device
	if p.Devices > 1 {
		group = fmt.Sprintf("%d × %s", p.Devices, p.Device)
	}
	c := plots.LineChart{
		Title: fmt.Sprintf("%s on %s, seq %s", p.Model, group, units.Count(float64(p.Seq))),
		X:     plots.Axis{Label: "batch (sequences)", Scale: plots.Log, Unit: plots.Count},
		Y:     plots.Axis{Label: "tokens per second (group)", Scale: plots.Log, Unit: plots.Plain},
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, mp := range p.Plans {
		for _, pt := range mp.Curve {
			lo, hi = math.Min(lo, pt.TokensPerSecond), math.Max(hi, pt.TokensPerSecond)
		}
	}
	for i, mp := range p.Plans {
		if len(mp.Curve) == 0 {
			continue
		}
		var fits, beyond []plots.Point
		for _, pt := range mp.Curve {
			xy := plots.Point{X: float64(pt.Batch), Y: pt.TokensPerSecond}
			if pt.Fits {
				fits = append(fits, xy)
			}
			if pt.Batch >= mp.MaxBatch {
				beyond = append(beyond, xy) // starts at the wall, joining the solid line
			}
		}
		c.Series = append(c.Series,
			plots.Series{Name: mp.Method, Points: fits, Color: i, Marker: plots.MarkerAt(i)},
			plots.Series{Points: beyond, Color: i, Style: plots.Dashed},
			plots.Series{
				Name:   fmt.Sprintf("%s memory wall (batch %d)", mp.Method, mp.MaxBatch),
				Points: []plots.Point{{X: float64(mp.MaxBatch), Y: lo / 1.2}, {X: float64(mp.MaxBatch), Y: hi * 1.2}},
				Color:  i, Style: plots.Dotted, Width: 1,
			})
	}
	return c
}

// WriteOutputs writes the plan as JSON and, when it has curves, the
// tokens-per-second figure as PNG and SVG into dir, each file atomically.
// It returns the paths written.
func WriteOutputs(dir string, p *roofline.CapacityPlan) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	write := func(name string, f func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		if err := atomicfile.Write(path, f); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	err := write(JSONName, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	})
	if err != nil {
		return written, err
	}
	hasCurve := false
	for _, mp := range p.Plans {
		hasCurve = hasCurve || len(mp.Curve) > 0
	}
	if !hasCurve {
		return written, nil
	}
	fig, err := Chart(p).Figure()
	if err != nil {
		return written, err
	}
	for _, format := range []string{"png", "svg"} {
		data, err := fig.Render(format)
		if err != nil {
			return written, err
		}
		if err := write(FigureName+"."+format, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return written, err
		}
	}
	return written, nil
}
