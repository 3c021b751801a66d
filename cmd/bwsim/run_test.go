package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/kernels"
)

// runWorkload is a shape every method simulates in a few milliseconds.
var runWorkload = []string{"--seq", "512", "--heads", "4", "--kv-heads", "2", "--head-dim", "32", "--no-host-file"}

func TestRunEveryMethod(t *testing.T) {
	for _, args := range [][]string{
		{"--method", "dense"},
		{"--method", "sparq", "--r", "8", "--k", "64"},
		{"--method", "topk", "--k", "64"},
		{"--method", "topk", "--k", "64", "--no-realloc"},
		{"--method", "flexgen", "--k", "64"},
		{"--method", "h2o", "--k", "64"},
		{"--method", "window", "--k", "64", "--sinks", "8"},
		{"--method", "quest", "--k", "64", "--page", "8"},
		{"--method", "loki", "--k", "64", "--r", "8"},
		{"--method", "loki", "--k", "64", "--r", "8", "--k-layout", "twice", "--impl", "fused"},
		{"--method", "doublesparse", "--k", "64", "--r", "8", "--label-bits", "4"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := profileCLI(t, append(append([]string{"run", "--json"}, args...), runWorkload...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var out runOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatal(err)
			}
			if out.Config.Spec.Method != args[1] || out.Trace.ReadBytes <= 0 {
				t.Errorf("config %+v, trace %+v", out.Config.Spec, out.Trace)
			}
			if (args[1] == "dense") != (out.Fidelity == nil) {
				t.Errorf("fidelity %+v", out.Fidelity)
			}
			if out.Steps != nil {
				t.Errorf("one step reported as %d", len(out.Steps))
			}
		})
	}
}

// runJSON runs `bwsim run --json` with args on the small workload and
// decodes its output.
func runJSON(t *testing.T, args ...string) runOutput {
	t.Helper()
	code, stdout, stderr := profileCLI(t, append(append([]string{"run", "--json"}, args...), runWorkload...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out runOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunSteps(t *testing.T) {
	out := runJSON(t, "--method", "h2o", "--k", "64", "--steps", "3")
	if len(out.Steps) != 3 || out.Config.Steps != 3 {
		t.Fatalf("%d steps, config %+v", len(out.Steps), out.Config)
	}
	var mean float64
	for i, st := range out.Steps {
		if st.Seq != 512+i || st.Fidelity == nil {
			t.Errorf("step %d: %+v", i, st)
		}
		mean += st.Fidelity.RelL2Error / 3
	}
	if out.Trace.ReadBytes != out.Steps[2].Trace.ReadBytes {
		t.Errorf("top-level trace is not the last step's")
	}
	if math.Abs(mean-out.Fidelity.RelL2Error) > 1e-12 {
		t.Errorf("top-level fidelity %.6g is not the steps' mean %.6g", out.Fidelity.RelL2Error, mean)
	}
	// The table form lists the steps too.
	code, stdout, _ := profileCLI(t, "run", "--method", "window", "--k", "64", "--steps", "2", "--seq", "512", "--heads", "4", "--head-dim", "32", "--no-host-file")
	if code != 0 || !strings.Contains(stdout, "2 steps; the stage and tensor tables show the last one") || !strings.Contains(stdout, "mean over 2 steps") {
		t.Errorf("exit %d, output:\n%s", code, stdout)
	}
}

// --eager prices every launch at the device's stream figure: an unfused
// SparQ step on the H100, 16 of its stages' kernels and the top-k's extra
// ones, takes longer than replayed from a graph, and a device without a
// stream figure reads the same.
func TestRunEager(t *testing.T) {
	step := func(dev string, eager bool) float64 {
		t.Helper()
		args := []string{"--method", "sparq", "--materialize", "--rank-pass", "--device", dev}
		if eager {
			args = append(args, "--eager")
		}
		return runJSON(t, args...).Predictions[0].Seconds
	}
	if g, e := step("h100-sxm", false), step("h100-sxm", true); !(e > g) {
		t.Errorf("h100-sxm: eager step %g s, graph %g s: want eager longer", e, g)
	}
	if g, e := step("a100-80gb", false), step("a100-80gb", true); e != g {
		t.Errorf("a100-80gb (no stream figure): eager step %g s, graph %g s: want equal", e, g)
	}
}

func TestRunBadMethodFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "quest", "--page", "0"}, "page must be positive"},
		{[]string{"--method", "quest", "--page", "256", "--k", "64"}, "exceeds the token budget"},
		{[]string{"--method", "doublesparse", "--label-bits", "3"}, "label-bits must be one of 1, 2, 4, 8, 16"},
		{[]string{"--method", "window", "--sinks", "-1"}, "sinks must not be negative"},
		{[]string{"--method", "window", "--sinks", "200", "--k", "64"}, "sinks 200 exceed the token budget k 64"},
		{[]string{"--method", "loki", "--r", "64"}, "r 64 exceeds head-dim 32"},
		{[]string{"--method", "h2o", "--steps", "0"}, "--steps must be positive"},
		{[]string{"--method", "nope"}, "unknown method"},
		{[]string{"--method", "h2o", "--layer", "3"}, "--layer selects a layer of --kv-dump"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := profileCLI(t, append(append([]string{"run"}, tc.args...), runWorkload...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// writeNPY writes a little-endian float32 .npy file.
func writeNPY(t *testing.T, path string, shape []int, xs []float32) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", strings.Join(dims, ", "))
	hdr += strings.Repeat(" ", 63-(10+len(hdr))%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	binary.Write(&b, binary.LittleEndian, xs)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunKVDump(t *testing.T) {
	dir := t.TempDir()
	const H, Hkv, S, D = 4, 2, 64, 16
	val := func(i int) float32 { return float32(math.Sin(float64(i)*0.37)) * 2 }
	mk := func(n, off int) []float32 {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = val(i + off)
		}
		return xs
	}
	for _, layer := range []int{0, 1, 2} {
		writeNPY(t, filepath.Join(dir, fmt.Sprintf("layers.%d.q.npy", layer)), []int{H, S, D}, mk(H*S*D, layer))
		writeNPY(t, filepath.Join(dir, fmt.Sprintf("layers.%d.k.npy", layer)), []int{Hkv, S, D}, mk(Hkv*S*D, 7+layer))
		writeNPY(t, filepath.Join(dir, fmt.Sprintf("layers.%d.v.npy", layer)), []int{Hkv, S, D}, mk(Hkv*S*D, 99+layer))
	}
	code, stdout, stderr := profileCLI(t, "run", "--json", "--method", "h2o", "--k", "16", "--steps", "4", "--kv-dump", dir, "--no-host-file")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out runOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	c := out.Config
	want := kernels.Shape{Batch: 1, Heads: H, KVHeads: Hkv, HeadDim: D, Seq: S - 3}
	if c.Shape != want || c.Layer != 1 || c.KVDump != dir || c.Workload != kernels.WorkloadDump || len(out.Steps) != 4 {
		t.Errorf("config %+v, %d steps; want shape %+v from the dump, its middle layer", c, len(out.Steps), want)
	}
	code, _, stderr = profileCLI(t, "run", "--kv-dump", dir, "--heads", "8", "--no-host-file")
	if code != 2 || !strings.Contains(stderr, "--heads and --kv-dump") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = profileCLI(t, "run", "--method", "dense", "--kv-dump", dir, "--layer", "7", "--no-host-file")
	if code != 2 || !strings.Contains(stderr, "has no layer 7 (it has 0, 1, 2)") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
