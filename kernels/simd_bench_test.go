package kernels

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkTargetShape times one decode step at the shape of the host-speed
// target (S = 32K, H = 32, d_h = 128, fp32; 8 of the 32 (sequence, head)
// pairs, the automatic sample), untraced and traced. SetBytes is the host
// bytes the step reads (its trace folded to 64-byte lines), so MB/s is the
// kernel's read bandwidth:
//
//	go test -run '^$' -bench TargetShape -count 10 ./kernels > new.txt
//	benchstat old.txt new.txt
func BenchmarkTargetShape(b *testing.B) {
	shape := Shape{Batch: 1, Heads: 32, KVHeads: 32, HeadDim: 128, Seq: 32 << 10}
	for _, bc := range []struct {
		name string
		spec Spec
	}{
		{"dense-fused", Spec{Method: MethodDense, Impl: Fused}},
		{"dense-unfused", Spec{Method: MethodDense, Impl: Unfused}},
		{"sparq-twice", Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KTwice}},
		{"sparq-once", Spec{Method: MethodSparQ, Impl: Unfused, R: 32, K: 128, KLayout: KOnce}},
	} {
		ctx := context.Background()
		p, err := Prepare(ctx, Config{Shape: shape, Spec: bc.spec, DType: FP32, Workload: LLMLike, Seed: 1, SampleHeads: 8})
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Step(ctx, true)
		if err != nil {
			b.Fatal(err)
		}
		var read int64
		for i := range res.Trace.Stages {
			tts, err := res.Trace.Fold(i, 64)
			if err != nil {
				b.Fatal(err)
			}
			for _, tt := range tts {
				read += tt.Read.Moved
			}
		}
		read = int64(float64(read) / res.Trace.Scale.Factor())
		for _, traced := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/traced=%v", bc.name, traced), func(b *testing.B) {
				b.SetBytes(read)
				for b.Loop() {
					if _, err := p.Step(ctx, traced); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
