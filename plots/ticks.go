package plots

import (
	"math"
	"strconv"

	"github.com/bwsim/bwsim/internal/units"
	"gonum.org/v1/plot"
)

// Scale is how an axis maps values.
type Scale int

// Scales.
const (
	Linear Scale = iota
	Log
)

// Unit says what an axis measures, which decides its tick values and
// labels.
type Unit int

// Units.
const (
	Plain    Unit = iota // 0.5, 10, 1000
	Count                // sequence lengths, batch: 1K, 4K, 64K (powers of two)
	Bytes                // 4 MiB, 1 GiB (powers of two)
	Seconds              // 10 µs, 1 ms (decades)
	Ratio                // speed-ups: 0.5×, 1×, 2×, 4× (powers of two)
	Flops                // operation rates: 10 TFLOP/s (decades)
	Fraction             // shares of a whole: 1/64, 1/8, 1/2, 1 (powers of two)
)

// Format writes v as a tick label of the unit.
func (u Unit) Format(v float64) string {
	switch u {
	case Count:
		return units.Count(v)
	case Bytes:
		return units.BytesShort(v)
	case Seconds:
		return units.SecondsShort(v)
	case Ratio:
		return units.Ratio(v)
	case Flops:
		return units.Flops(v)
	case Fraction:
		return fraction(v)
	}
	return plainNumber(v)
}

// fraction writes v in (0, 1) as 1/N when 1/v is whole, else as a number.
func fraction(v float64) string {
	if v > 0 && v < 1 {
		n := 1 / v
		if r := math.Round(n); math.Abs(n-r) < 1e-6*n {
			return "1/" + strconv.FormatFloat(r, 'f', -1, 64)
		}
	}
	return plainNumber(v)
}

// binary units tick at powers of two, the others at powers of ten.
func (u Unit) binary() bool { return u == Count || u == Bytes || u == Ratio || u == Fraction }

// plainNumber prints v with at most 3 significant digits and no exponent
// in the range people read (1e-4 to 1e7).
func plainNumber(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e7 || a < 1e-4 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// maxLabels is the most labelled ticks an axis shows.
const maxLabels = 8

// Ticks returns the ticks of an axis of unit u on scale s over [min, max]:
// labelled major ticks a person reads at a glance and unlabelled minor
// ones. It never returns a tick outside the range and, on a log scale,
// never one ≤ 0.
func Ticks(s Scale, u Unit, min, max float64) []plot.Tick {
	if !(min <= max) || math.IsInf(min, 0) || math.IsInf(max, 0) {
		return nil
	}
	if s == Log {
		if max <= 0 {
			return nil
		}
		if min <= 0 {
			min = max / 10
		}
		var ts []plot.Tick
		if u.binary() {
			ts = log2Ticks(u, min, max)
		} else {
			ts = log10Ticks(u, min, max)
		}
		if labelled(ts) >= 2 {
			return ts
		}
		// A narrow range: plain steps, still placed on the log scale.
		lin := linearTicks(u, min, max)
		if labelled(lin) >= 2 {
			return lin
		}
		return append(ts, lin...)
	}
	return linearTicks(u, min, max)
}

// TickLabels returns the labels of the major ticks, in order.
func TickLabels(s Scale, u Unit, min, max float64) []string {
	var out []string
	for _, t := range Ticks(s, u, min, max) {
		if t.Label != "" {
			out = append(out, t.Label)
		}
	}
	return out
}

func labelled(ts []plot.Tick) int {
	n := 0
	for _, t := range ts {
		if t.Label != "" {
			n++
		}
	}
	return n
}

const eps = 1e-9

func inRange(v, min, max float64) bool {
	return v >= min*(1-eps) && v <= max*(1+eps)
}

// log2Ticks puts a tick at every power of two and labels every first, second,
// fourth... so that at most maxLabels remain; labels fall on powers that are
// multiples of the step, so 1K (2^10) and 1 MiB (2^20) stay labelled.
func log2Ticks(u Unit, min, max float64) []plot.Tick {
	lo, hi := int(math.Floor(math.Log2(min))), int(math.Ceil(math.Log2(max)))
	var pows []int
	for p := lo; p <= hi; p++ {
		if inRange(math.Exp2(float64(p)), min, max) {
			pows = append(pows, p)
		}
	}
	step := 1
	for {
		n := 0
		for _, p := range pows {
			if mod(p, step) == 0 {
				n++
			}
		}
		if n <= maxLabels {
			break
		}
		step *= 2
	}
	ts := make([]plot.Tick, 0, len(pows))
	for _, p := range pows {
		v := math.Exp2(float64(p))
		t := plot.Tick{Value: v}
		if mod(p, step) == 0 {
			t.Label = u.Format(v)
		}
		ts = append(ts, t)
	}
	return ts
}

func mod(a, b int) int { return ((a % b) + b) % b }

// log10Ticks labels decades (every other one over a wide range) and marks
// 2..9 times each decade as minor ticks; over less than two decades it
// also labels 2 and 5 times each decade.
func log10Ticks(u Unit, min, max float64) []plot.Tick {
	lo, hi := int(math.Floor(math.Log10(min))), int(math.Ceil(math.Log10(max)))
	decades := 0
	for d := lo; d <= hi; d++ {
		if inRange(math.Pow(10, float64(d)), min, max) {
			decades++
		}
	}
	step := 1
	for decades/step > maxLabels {
		step++
	}
	fine := decades < 2
	var ts []plot.Tick
	for d := lo; d <= hi; d++ {
		base := math.Pow(10, float64(d))
		for k := 1; k <= 9; k++ {
			v := float64(k) * base
			if !inRange(v, min, max) {
				continue
			}
			t := plot.Tick{Value: v}
			if (k == 1 && mod(d, step) == 0) || (fine && (k == 2 || k == 5)) {
				t.Label = u.Format(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// linearTicks labels round multiples of the unit's natural scale: steps of
// 1, 2 or 5 × 1024^k bytes (or counts), 1, 2 or 5 × 10^k otherwise.
func linearTicks(u Unit, min, max float64) []plot.Tick {
	span := max - min
	if span <= 0 {
		if min == 0 {
			return []plot.Tick{{Value: 0, Label: u.Format(0)}}
		}
		return []plot.Tick{{Value: min, Label: u.Format(min)}}
	}
	scale := 1.0
	if u == Bytes || u == Count {
		for math.Max(math.Abs(min), math.Abs(max))/scale >= 1024 {
			scale *= 1024
		}
	}
	step := niceStep(span/scale/5) * scale
	var ts []plot.Tick
	first := math.Ceil(min/step - eps)
	for i := first; i*step <= max+step*eps; i++ {
		v := i * step
		if math.Abs(v) < step*eps {
			v = 0
		}
		ts = append(ts, plot.Tick{Value: v, Label: u.Format(v)})
		if len(ts) > 100 {
			break
		}
	}
	return ts
}

// niceStep rounds x up to 1, 2 or 5 × 10^k.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-eps) {
			return m * p
		}
	}
	return 10 * p
}

// ticker adapts Ticks to plot.Ticker.
type ticker struct {
	scale Scale
	unit  Unit
}

func (t ticker) Ticks(min, max float64) []plot.Tick { return Ticks(t.scale, t.unit, min, max) }
