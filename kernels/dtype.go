package kernels

import (
	"fmt"
	"math"

	"github.com/x448/float16"
)

// DType is the element type of the target's KV cache and activations. The
// host computes in float32; values are rounded to the target type where the
// target would store them, so numerics match the target, and the target's
// element size defines every traced byte offset.
type DType string

// Supported element types.
const (
	FP32 DType = "fp32"
	FP16 DType = "fp16"
	BF16 DType = "bf16"
)

// ParseDType parses "fp32", "fp16" or "bf16".
func ParseDType(s string) (DType, error) {
	switch DType(s) {
	case FP32, FP16, BF16:
		return DType(s), nil
	}
	return "", fmt.Errorf("unknown dtype %q (want fp16, bf16 or fp32)", s)
}

// Size is the element size in bytes.
func (d DType) Size() int64 {
	if d == FP32 {
		return 4
	}
	return 2
}

// Round returns x rounded to the nearest value representable in d
// (round-to-nearest-even), as a float32.
func (d DType) Round(x float32) float32 {
	switch d {
	case FP16:
		return float16.Fromfloat32(x).Float32()
	case BF16:
		return roundBF16(x)
	}
	return x
}

// RoundSlice rounds every element of xs in place.
func (d DType) RoundSlice(xs []float32) {
	if d == FP32 {
		return
	}
	for i, x := range xs {
		xs[i] = d.Round(x)
	}
}

// Epsilon is the unit roundoff of d (half the gap between 1 and the next
// representable value), the scale of a single rounding error.
func (d DType) Epsilon() float64 {
	switch d {
	case FP16:
		return math.Ldexp(1, -11)
	case BF16:
		return math.Ldexp(1, -8)
	}
	return math.Ldexp(1, -24)
}

// roundBF16 keeps the top 16 bits of the float32 with round-to-nearest-even;
// NaN stays NaN.
func roundBF16(x float32) float32 {
	b := math.Float32bits(x)
	if b&0x7f800000 == 0x7f800000 && b&0x007fffff != 0 {
		return x // NaN
	}
	lsb := (b >> 16) & 1
	b += 0x7fff + lsb
	return math.Float32frombits(b & 0xffff0000)
}
