// Package units formats byte counts, durations and counts the way people
// read them: binary byte units, SI time units.
package units

import (
	"fmt"
	"math"
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
func Bandwidth(bps float64) string {
	switch {
	case bps >= 1e12:
		return fmt.Sprintf("%.3g TB/s", bps/1e12)
	case bps >= 1e9:
		return fmt.Sprintf("%.3g GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.3g MB/s", bps/1e6)
	}
	return fmt.Sprintf("%.3g B/s", bps)
}
