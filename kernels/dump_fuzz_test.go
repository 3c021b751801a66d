package kernels

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenDump feeds arbitrary bytes as a --kv-dump .safetensors file
// through OpenDump (which groups the tensors into layers and checks their
// shapes) and, when it is accepted and small, simulates a decode step on it:
// nothing may panic, and an accepted dump must describe a valid shape.
func FuzzOpenDump(f *testing.F) {
	seq := func(n int) []float32 {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(i%7) - 3
		}
		return xs
	}
	f.Add(safetensorsBytes(map[string]stTensor{
		"layers.0.q": {"F32", []int64{1, 2, 2, 4}, seq(16)},
		"layers.0.k": {"F16", []int64{1, 1, 3, 4}, seq(12)},
		"layers.0.v": {"BF16", []int64{1, 1, 3, 4}, seq(12)},
	}))
	f.Add(safetensorsBytes(map[string]stTensor{
		"layers.3.q": {"F32", []int64{2, 1, 4}, seq(8)},
		"layers.3.k": {"F32", []int64{2, 2, 4}, seq(16)},
		"layers.3.v": {"F32", []int64{2, 2, 4}, seq(16)},
		"layers.5.q": {"F32", []int64{2, 1, 4}, seq(8)},
		"layers.5.k": {"F32", []int64{2, 2, 4}, seq(16)},
		"layers.5.v": {"F32", []int64{2, 2, 4}, seq(16)},
	}))
	f.Add(safetensorsBytes(map[string]stTensor{
		"layers.0.q": {"F32", []int64{1, 1, 3, 2}, seq(6)},
		"layers.0.k": {"F32", []int64{1, 1, 2, 2}, seq(4)},
		"layers.0.v": {"F32", []int64{1, 1, 2, 2}, seq(4)},
	}))
	f.Add(safetensorsBytes(map[string]stTensor{"layers.0.q": {"F32", []int64{1, 1, 1, 1}, seq(1)}}))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "dump.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := LoadDumpInfo(path)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		shape := Shape{Batch: info.Batch, Heads: info.Heads, KVHeads: info.KVHeads, HeadDim: info.HeadDim, Seq: info.Seq}
		if err := shape.Validate(); err != nil || info.Queries < 1 || info.Queries > info.Seq || len(info.Layers) == 0 {
			t.Fatalf("accepted %+v: %v", info, err)
		}
		if shape.Pairs()*int64(info.Seq)*int64(info.HeadDim) > 1<<12 {
			return
		}
		for _, m := range []string{MethodDense, MethodSparQ} {
			spec := Spec{Method: m, Impl: Unfused}
			if m == MethodSparQ {
				spec.R, spec.K, spec.KLayout = 1, 1, KTwice
			}
			c := Config{Shape: shape, Spec: spec, DType: FP32, Workload: WorkloadDump, KVDump: path,
				Layer: info.MiddleLayer(), Steps: info.Queries, Workers: 1}
			c.Shape.Seq = info.Seq - info.Queries + 1
			if _, _, err := Plan(c); err != nil {
				continue
			}
			// Non-finite values are refused with an error; anything else
			// must simulate.
			_, _ = Simulate(context.Background(), c)
		}
	})
}
