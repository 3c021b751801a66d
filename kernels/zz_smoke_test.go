package kernels

import (
	"context"
	"testing"
)

func TestZZSmoke(t *testing.T) {
	shape := Shape{Batch: 1, Heads: 8, KVHeads: 8, HeadDim: 128, Seq: 4096}
	for _, sp := range []Spec{
		{Method: MethodDense, Impl: Fused},
		{Method: MethodSparQ, R: 16, K: 256, KLayout: KTwice},
		{Method: MethodTopK, K: 256},
		{Method: MethodTopK, K: 256, NoReallocation: true},
		{Method: MethodFlexGen, K: 256},
		{Method: MethodH2O, K: 512},
		{Method: MethodWindow, K: 512, Sinks: 4},
		{Method: MethodQuest, K: 256, Page: 16},
		{Method: MethodLoki, K: 256, R: 16},
		{Method: MethodDoubleSparse, K: 256, R: 16, LabelBits: 16},
	} {
		for _, impl := range []Impl{Unfused, Fused} {
			sp.Impl = impl
			sp.AppendKV = true
			o, err := Simulate(context.Background(), Config{Shape: shape, Spec: sp, DType: FP16, Workload: LLMLike, Seed: 1, Steps: 4})
			if err != nil {
				t.Fatal(sp, err)
			}
			if err := o.Trace.Validate(); err != nil {
				t.Fatal(sp, err)
			}
			tot := o.Trace.Totals()
			t.Logf("%-12s %-7s bytes %9d  fid %+v", sp.Method, impl, tot.Bytes(), o.Fidelity)
		}
	}
}
