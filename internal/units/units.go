// Package units formats byte counts, durations and counts the way people
// read them: binary byte units, SI time units.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes prints n with a binary unit: 512 B, 1.5 KiB, 32.0 MiB.
func Bytes(n float64) string {
	const unit = 1024
	if math.Abs(n) < unit {
		return fmt.Sprintf("%.0f B", n)
	}
	exp := 0
	for math.Abs(n) >= unit && exp < 6 {
		n /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", n, "KMGTPE"[exp-1])
}

// Seconds prints s with ns, µs, ms or s and three significant digits.
func Seconds(s float64) string {
	a := math.Abs(s)
	switch {
	case a == 0:
		return "0 s"
	case a < 1e-6:
		return fmt.Sprintf("%.3g ns", s*1e9)
	case a < 1e-3:
		return fmt.Sprintf("%.3g µs", s*1e6)
	case a < 1:
		return fmt.Sprintf("%.3g ms", s*1e3)
	}
	return fmt.Sprintf("%.3g s", s)
}

// Bandwidth prints bytes per second in decimal units (GB/s, TB/s), as
// datasheets do.
func Bandwidth(bps float64) string { return DecimalBytes(bps) + "/s" }

// DecimalBytes prints a size in decimal units, as datasheets give
// capacities: 80 GB, 41.9 MB, 1.21 kB.
func DecimalBytes(n float64) string {
	switch {
	case n >= 1e12:
		return fmt.Sprintf("%.3g TB", n/1e12)
	case n >= 1e9:
		return fmt.Sprintf("%.3g GB", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3g MB", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.3g kB", n/1e3)
	}
	return fmt.Sprintf("%.4g B", n)
}

// Count prints a positive count with a binary suffix when it is a whole
// multiple (512, 1K, 4K, 128K, 1M) and exactly otherwise (1536). It is how people
// write sequence lengths (and axis ticks of them).
func Count(n float64) string {
	switch {
	case n >= 1<<30 && math.Mod(n, 1<<30) == 0:
		return fmt.Sprintf("%.0fG", n/(1<<30))
	case n >= 1<<20 && math.Mod(n, 1<<20) == 0:
		return fmt.Sprintf("%.0fM", n/(1<<20))
	case n >= 1<<10 && math.Mod(n, 1<<10) == 0:
		return fmt.Sprintf("%.0fK", n/(1<<10))
	case n == math.Trunc(n) && math.Abs(n) < 1<<53:
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	return trimFloat(n, 3)
}

// BytesShort prints n with a binary unit and no trailing zeros, for axis
// ticks: 512 B, 1 KiB, 1.5 MiB, 64 GiB.
func BytesShort(n float64) string {
	const unit = 1024
	if math.Abs(n) < unit {
		return trimFloat(n, 3) + " B"
	}
	exp := 0
	for math.Abs(n) >= unit && exp < 6 {
		n /= unit
		exp++
	}
	return trimFloat(n, 3) + " " + string("KMGTPE"[exp-1]) + "iB"
}

// SecondsShort prints s with ns, µs, ms or s and at most three significant
// digits, without trailing zeros, for axis ticks: 1 µs, 20 µs, 1.5 ms.
func SecondsShort(s float64) string {
	a := math.Abs(s)
	switch {
	case a == 0:
		return "0 s"
	case a < 1e-6:
		return trimFloat(s*1e9, 3) + " ns"
	case a < 1e-3:
		return trimFloat(s*1e6, 3) + " µs"
	case a < 1:
		return trimFloat(s*1e3, 3) + " ms"
	}
	return trimFloat(s, 3) + " s"
}

// Flops prints an operation rate in decimal units: 19.5 TFLOP/s.
func Flops(ops float64) string {
	switch a := math.Abs(ops); {
	case a >= 1e15:
		return trimFloat(ops/1e15, 3) + " PFLOP/s"
	case a >= 1e12:
		return trimFloat(ops/1e12, 3) + " TFLOP/s"
	case a >= 1e9:
		return trimFloat(ops/1e9, 3) + " GFLOP/s"
	case a >= 1e6:
		return trimFloat(ops/1e6, 3) + " MFLOP/s"
	}
	return trimFloat(ops, 3) + " FLOP/s"
}

// Ratio prints a speed-up or other factor: 0.25×, 1×, 6.4×, 12×.
func Ratio(x float64) string { return trimFloat(x, 3) + "×" }

// trimFloat formats x with at most digits significant digits and no
// exponent for the magnitudes units print (1e-3 to 1e6).
func trimFloat(x float64, digits int) string {
	s := fmt.Sprintf("%.*g", digits, x)
	if strings.ContainsAny(s, "e") {
		// %g switches to an exponent for large values with few digits
		// (1.28e+03): print the rounded value plainly instead.
		f, _ := strconv.ParseFloat(s, 64)
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}
