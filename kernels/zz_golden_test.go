package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

func TestZZGolden(t *testing.T) {
	out := os.Getenv("GOLDEN_OUT")
	if out == "" {
		t.Skip()
	}
	f, _ := os.Create(out)
	defer f.Close()
	shapes := []Shape{{1, 1, 1, 16, 1}, {2, 4, 4, 32, 100}, {1, 8, 2, 64, 257}, {2, 8, 1, 32, 300}}
	var specs []Spec
	for _, app := range []bool{false, true} {
		for _, impl := range []Impl{Unfused, Fused} {
			specs = append(specs, Spec{Method: MethodDense, Impl: impl, AppendKV: app})
			for _, lay := range []KLayout{KTwice, KOnce} {
				for _, nr := range []bool{false, true} {
					for _, rk := range [][2]int{{8, 16}, {3, 40}, {2, 1000}, {1, 1}} {
						specs = append(specs, Spec{Method: MethodSparQ, Impl: impl, R: rk[0], K: rk[1], KLayout: lay, NoReallocation: nr, AppendKV: app})
					}
				}
			}
		}
	}
	for _, sh := range shapes {
		for _, sp := range specs {
			for _, dt := range []DType{FP32, FP16} {
				for _, w := range []Workload{Gaussian, LLMLike} {
					c := Config{Shape: sh, Spec: sp, DType: dt, Workload: w, Seed: 42}
					o, err := Simulate(context.Background(), c)
					if err != nil {
						fmt.Fprintf(f, "%+v %+v err %v\n", sh, sp, err)
						continue
					}
					p, _ := Prepare(context.Background(), c)
					res, _ := p.Step(context.Background(), false)
					h := sha256.New()
					for _, po := range res.Outputs {
						for _, x := range po.Out {
							fmt.Fprintf(h, "%08x", math.Float32bits(x))
						}
						fmt.Fprint(h, po.Selected, po.Alpha)
					}
					tj, _ := json.Marshal(o.Trace)
					fj, _ := json.Marshal(o.Fidelity)
					key := fmt.Sprintf("%v|%s|%s|%d|%d|%s|%v|%v", sh, sp.Method, sp.Impl, sp.R, sp.K, sp.KLayout, sp.NoReallocation, sp.AppendKV)
					fmt.Fprintf(f, "%s %s %s trace=%x out=%x fid=%s\n", key, dt, w, sha256.Sum256(tj), h.Sum(nil), fj)
				}
			}
		}
	}
}
