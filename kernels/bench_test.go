package kernels

import (
	"context"
	"fmt"
	"testing"
)

// Benchmarks run one decode step over 4 (sequence, head) pairs at the
// paper's head size, traced and untraced, so that
//
//	go test -bench . -count 10 ./kernels | tee new.txt; benchstat old.txt new.txt
//
// compares kernels and shows what tracing costs. SetBytes is the host bytes
// of K and V read (fp32), so the MB/s column is the kernel's read bandwidth.
func BenchmarkKernels(b *testing.B) {
	shape := Shape{Batch: 1, Heads: 4, KVHeads: 4, HeadDim: 128, Seq: 8192}
	for _, bc := range []struct {
		name string
		spec Spec
	}{
		{"dense-unfused", Spec{Method: MethodDense, Impl: Unfused}},
		{"dense-fused", Spec{Method: MethodDense, Impl: Fused}},
		{"sparq-twice", Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KTwice}},
		{"sparq-once", Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KOnce}},
		{"sparq-fused", Spec{Method: MethodSparQ, Impl: Fused, R: 32, K: 128, KLayout: KTwice}},
	} {
		p, err := Prepare(context.Background(), Config{Shape: shape, Spec: bc.spec, DType: FP32, Workload: Gaussian, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		for _, traced := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/traced=%v", bc.name, traced), func(b *testing.B) {
				b.SetBytes(2 * int64(shape.Heads) * int64(shape.Seq) * int64(shape.HeadDim) * 4)
				for b.Loop() {
					if _, err := p.Step(context.Background(), traced); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
