package profiles

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/internal/devtest"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
)

var specs = []kernels.Spec{
	{Method: kernels.MethodDense, Impl: kernels.Unfused, AppendKV: true},
	{Method: kernels.MethodDense, Impl: kernels.Fused},
	{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 16, K: 64, KLayout: kernels.KTwice, AppendKV: true},
	{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 16, K: 64, KLayout: kernels.KOnce},
	{Method: kernels.MethodSparQ, Impl: kernels.Fused, R: 16, K: 64, KLayout: kernels.KOnce, AppendKV: true},
}

// simulate returns a trace of shape {batch 3, heads 4, kv-heads 2} (6
// pairs) with sample pairs simulated: 6, 3 (scale ×2) or 4 (×1.5, rounded).
func simulate(t *testing.T, spec kernels.Spec, sample int) *traces.Trace {
	t.Helper()
	shape := kernels.Shape{Batch: 3, Heads: 4, KVHeads: 2, HeadDim: 64, Seq: 333}
	o, err := kernels.Simulate(context.Background(), kernels.Config{Shape: shape, Spec: spec, DType: kernels.FP16, Workload: kernels.Gaussian, Seed: 7, SampleHeads: sample})
	if err != nil {
		t.Fatal(err)
	}
	return o.Trace
}

// roundTrip writes p and parses it back, as go tool pprof would read it.
func roundTrip(t *testing.T, p *profile.Profile) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	q, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return q
}

func label(s *profile.Sample, key string) string {
	v := s.Label[key]
	if len(v) != 1 {
		return fmt.Sprintf("<%d values>", len(v))
	}
	return v[0]
}

func TestTransferMatchesTrace(t *testing.T) {
	for _, dev := range []*hwmodel.Device{devtest.GPU(), devtest.IPU()} {
		for _, spec := range specs {
			for _, sample := range []int{6, 3, 4} {
				name := fmt.Sprintf("%s/%s-%s-%s/sample=%d", dev.Name, spec.Method, spec.Impl, spec.KLayout, sample)
				t.Run(name, func(t *testing.T) {
					tr := simulate(t, spec, sample)
					pred, err := roofline.Predict(tr, dev, roofline.Options{})
					if err != nil {
						t.Fatal(err)
					}
					built, err := Transfer(tr, dev, pred, Options{Comments: []string{"test"}})
					if err != nil {
						t.Fatal(err)
					}
					checkTransfer(t, tr, dev, pred, roundTrip(t, built), sample == 6 || sample == 3)
				})
			}
		}
	}
}

func checkTransfer(t *testing.T, tr *traces.Trace, dev *hwmodel.Device, pred *roofline.Prediction, p *profile.Profile, exactScale bool) {
	t.Helper()
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	wantTypes := []string{"transferred/bytes", "moved/bytes", "predicted/nanoseconds", "extents/count"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("sample types %v, want %v", types, wantTypes)
	}
	if p.DefaultSampleType != SampleTransferred {
		t.Errorf("default sample type %q, want %q", p.DefaultSampleType, SampleTransferred)
	}
	if !slices.Contains(p.Comments, "test") {
		t.Errorf("comments %q lack the caller's", p.Comments)
	}

	tot := Totals(p)
	want := tr.Totals()
	if tot[IndexTransferred] != want.Bytes() {
		t.Errorf("transferred total %d, want the trace's read + write bytes %d", tot[IndexTransferred], want.Bytes())
	}
	var runs int64
	for _, st := range tr.Stages {
		for _, e := range st.Extents {
			runs += e.Runs()
		}
	}
	if w := tr.Scale.Apply(runs); tot[IndexExtents] != w {
		t.Errorf("extents total %d, want %d runs", tot[IndexExtents], w)
	}

	byDir := map[string]int64{}
	moved := map[[2]string]int64{}     // stage, level
	predicted := map[string]int64{}    // stage
	requested := map[[3]string]int64{} // stage, tensor, direction
	for _, s := range p.Sample {
		method, stage := label(s, traces.LabelMethod), label(s, traces.LabelStage)
		if method != tr.Method {
			t.Errorf("sample method label %q, want %q", method, tr.Method)
		}
		var frames []string
		for _, l := range s.Location {
			if len(l.Line) != 1 {
				t.Fatalf("location %d has %d lines", l.ID, len(l.Line))
			}
			frames = append(frames, l.Line[0].Function.Name)
		}
		predicted[stage] += s.Value[IndexPredicted]
		if _, ok := s.Label[traces.LabelTensor]; !ok {
			// A stage that moves nothing: time only.
			if w := []string{tr.Method + "." + stage, tr.Method}; !slices.Equal(frames, w) {
				t.Errorf("stage-only sample frames %q, want %q", frames, w)
			}
			continue
		}
		tensor, dir, level, role := label(s, traces.LabelTensor), label(s, traces.LabelDirection), label(s, traces.LabelLevel), label(s, traces.LabelRole)
		if w := []string{tensor, tr.Method + "." + stage, tr.Method}; !slices.Equal(frames, w) {
			t.Errorf("frames, leaf first, %q, want %q", frames, w)
		}
		id, ok := tr.TensorByName(tensor)
		if !ok {
			t.Fatalf("sample of unknown tensor %q", tensor)
		}
		if r := string(tr.Tensors[id].Role); role != r {
			t.Errorf("tensor %s: role label %q, want %q", tensor, role, r)
		}
		if l := pred.Placement[tensor]; level != l {
			t.Errorf("tensor %s: level label %q, want placement %q", tensor, level, l)
		}
		if dir != "read" && dir != "write" {
			t.Errorf("direction label %q", dir)
		}
		if s.Value[IndexTransferred] <= 0 || s.Value[IndexMoved] <= 0 || s.Value[IndexExtents] <= 0 {
			t.Errorf("%s %s %s: values %v, want positive bytes and extents", stage, tensor, dir, s.Value)
		}
		byDir[dir] += s.Value[IndexTransferred]
		moved[[2]string{stage, level}] += s.Value[IndexMoved]
		k := [3]string{stage, tensor, dir}
		if _, dup := requested[k]; dup {
			t.Errorf("two samples for %v", k)
		}
		requested[k] = s.Value[IndexTransferred]
	}
	if byDir["read"] != want.ReadBytes || byDir["write"] != want.WriteBytes {
		t.Errorf("read %d, written %d bytes; want the trace's %d and %d", byDir["read"], byDir["write"], want.ReadBytes, want.WriteBytes)
	}
	var predTotal int64
	for i, sp := range pred.Stages {
		if got, w := predicted[sp.Name], nanos(sp.Seconds); got != w {
			t.Errorf("stage %s: predicted %d ns, want %d", sp.Name, got, w)
		}
		predTotal += predicted[sp.Name]
		for _, lt := range sp.Levels {
			if got := moved[[2]string{sp.Name, lt.Level}]; got != lt.MovedBytes {
				t.Errorf("stage %s level %s: moved %d bytes, prediction %d", sp.Name, lt.Level, got, lt.MovedBytes)
			}
		}
		if exactScale {
			for j, x := range tr.StageTensorTotals(i) {
				name := tr.Tensors[j].Name
				if got := requested[[3]string{sp.Name, name, "read"}]; got != x.ReadBytes {
					t.Errorf("stage %s tensor %s: read %d bytes, trace %d", sp.Name, name, got, x.ReadBytes)
				}
				if got := requested[[3]string{sp.Name, name, "write"}]; got != x.WriteBytes {
					t.Errorf("stage %s tensor %s: wrote %d bytes, trace %d", sp.Name, name, got, x.WriteBytes)
				}
			}
		}
	}
	if predTotal != tot[IndexPredicted] {
		t.Errorf("predicted total %d ns, stages sum to %d", tot[IndexPredicted], predTotal)
	}
}

func TestTransferStageWithoutTraffic(t *testing.T) {
	tr := simulate(t, specs[1], 6)
	tr.AddStage("barrier", 1) // a stage that moves nothing
	dev := devtest.GPU()
	pred, err := roofline.Predict(tr, dev, roofline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Transfer(tr, dev, pred, Options{Comments: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	checkTransfer(t, tr, dev, pred, roundTrip(t, p), true)
}

func TestTransferRejectsMismatchedPrediction(t *testing.T) {
	tr := simulate(t, specs[0], 6)
	dev := devtest.GPU()
	pred, err := roofline.Predict(tr, dev, roofline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := roofline.Predict(simulate(t, specs[1], 6), dev, roofline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	renamed := *pred
	renamed.Stages = slices.Clone(pred.Stages)
	renamed.Stages[1].Name = "other"
	untensored := *pred
	untensored.Stages = slices.Clone(pred.Stages)
	untensored.Stages[1].Tensors = nil
	for _, tc := range []struct {
		name string
		pred *roofline.Prediction
		want string
	}{
		{"nil", nil, "nil"},
		{"stage count", other, "stages"},
		{"stage name", &renamed, `"other"`},
		{"tensor traffic", &untensored, "no traffic for tensor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Transfer(tr, dev, tc.pred, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func TestApportion(t *testing.T) {
	for _, tc := range []struct {
		total int64
		w     []int64
		want  []int64
	}{
		{10, nil, []int64{}},
		{10, []int64{0, 0}, []int64{0, 0}},
		{0, []int64{1, 2}, []int64{0, 0}},
		{10, []int64{1, 1}, []int64{5, 5}},
		{10, []int64{1, 1, 1}, []int64{4, 3, 3}}, // ties go to the first
		{7, []int64{2, 0, 5}, []int64{2, 0, 5}},
		{15, []int64{2, 0, 5}, []int64{4, 0, 11}}, // 4.29, 10.71
		{1 << 62, []int64{1 << 42, 1 << 42}, []int64{1 << 61, 1 << 61}},
		{3, []int64{1 << 60, 1, 1 << 60}, []int64{2, 0, 1}},
	} {
		got := apportion(tc.total, tc.w)
		if !slices.Equal(got, tc.want) {
			t.Errorf("apportion(%d, %v) = %v, want %v", tc.total, tc.w, got, tc.want)
		}
	}
}

// TestGoToolPprof reads a written transfer profile with the go tool's pprof,
// as a user would.
func TestGoToolPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool pprof")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	tr := simulate(t, specs[2], 6)
	dev := devtest.GPU()
	pred, err := roofline.Predict(tr, dev, roofline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Transfer(tr, dev, pred, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "transfer.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"-top"}, []string{"Type: transferred", "sparq.approx-scores", "Kt", "sparq"}, nil},
		{[]string{"-top", "-sample_index=predicted"}, []string{"Type: predicted"}, nil},
		{[]string{"-top", "-tagfocus=stage=exact-scores"}, []string{"sparq.exact-scores", "K"}, []string{"Kt", "approx-scores"}},
		{[]string{"-tags", "-tagfocus=direction=write"}, []string{"level:", "tensor:", "write"}, []string{"read"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(goTool, append(append([]string{"tool", "pprof"}, tc.args...), path)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go tool pprof %v: %v\n%s", tc.args, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(string(out), w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}
