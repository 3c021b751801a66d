package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/profiles"
	"github.com/bwsim/bwsim/traces"
)

// profileCLI runs bwsim with args and returns the exit code and output.
func profileCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return profileCLIContext(t, context.Background(), args...)
}

func profileCLIContext(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	code = run(ctx, args, out, errf)
	out.Close()
	errf.Close()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return code, string(o), string(e)
}

// smallWorkload is a shape that profiles in well under a second.
var smallWorkload = []string{"--method", "sparq", "--seq", "1k", "--heads", "4", "--batch", "2", "--r", "16", "--k", "64", "--no-host-file"}

func TestProfileWritesBothProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, transfer := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "transfer.pb.gz")
	args := append([]string{"profile", "--device", "a100-40gb", "--duration", "300ms", "--cpu-profile", cpu, "--transfer-profile", transfer}, smallWorkload...)
	code, stdout, stderr := profileCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"device a100-40gb: predicted", "wrote transfer profile " + transfer, "wrote CPU profile " + cpu} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}

	// The same workload, simulated here, gives the trace the profile must
	// add up to.
	c := kernels.Config{
		Shape: kernels.Shape{Batch: 2, Heads: 4, KVHeads: 4, HeadDim: 128, Seq: 1024}, DType: kernels.FP16, Workload: kernels.LLMLike, Seed: 1,
		Spec: kernels.Spec{Method: kernels.MethodSparQ, Impl: kernels.Unfused, R: 16, K: 64, KLayout: kernels.KTwice, AppendKV: true},
	}
	o, err := kernels.Simulate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	tp := parseProfile(t, transfer)
	if got, want := profiles.Totals(tp)[profiles.IndexTransferred], o.Trace.Totals().Bytes(); got != want {
		t.Errorf("transfer profile: %d bytes transferred, trace %d", got, want)
	}
	stages := map[string]bool{}
	for _, st := range o.Trace.Stages {
		stages[st.Name] = true
	}
	for _, s := range tp.Sample {
		if st := s.Label[traces.LabelStage]; len(st) != 1 || !stages[st[0]] {
			t.Errorf("transfer sample with stage labels %q", st)
		}
	}

	cp := parseProfile(t, cpu)
	if len(cp.SampleType) == 0 || cp.SampleType[0].Type != "samples" {
		t.Errorf("CPU profile sample types %v", cp.SampleType)
	}
	// Labels are checked in depth by the kernels' tests; a few hundred
	// milliseconds may catch few stages, but every label must be valid.
	for _, s := range cp.Sample {
		if st, ok := s.Label[traces.LabelStage]; ok && (len(st) != 1 || !stages[st[0]]) {
			t.Errorf("CPU sample with stage labels %q", st)
		}
	}
}

func parseProfile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// unwritableDir returns a directory in which no file can be created.
func unwritableDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// Root writes anywhere but on read-only file systems.
	const sys = "/sys"
	if f, err := os.CreateTemp(sys, "probe"); err == nil {
		os.Remove(f.Name())
		t.Skip("running as root with a writable /sys: no unwritable directory to test")
	}
	return sys
}

func TestProfileBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.pb.gz")
	for _, tc := range []struct {
		name string
		args []string // after profile and a valid workload
		want string
	}{
		{"no output", nil, "nothing to write"},
		{"negative duration", []string{"--duration", "-1s", "--transfer-profile", out}, "--duration"},
		{"same file", []string{"--cpu-profile", out, "--transfer-profile", out}, "same file"},
		{"missing directory", []string{"--transfer-profile", filepath.Join(dir, "nope", "t.pb.gz")}, "does not exist"},
		{"parent is a file", []string{"--cpu-profile", filepath.Join(file, "cpu.pprof")}, "not a directory"},
		{"path is a directory", []string{"--transfer-profile", dir}, "is a directory"},
		{"unknown device", []string{"--device", "z80", "--transfer-profile", out}, "unknown device"},
		{"bad workload", []string{"--method", "nope", "--transfer-profile", out}, "unknown method"},
		{"unwritable directory", []string{"--transfer-profile", "UNWRITABLE/t.pb.gz", "--cpu-profile", filepath.Join(dir, "cpu.pprof")}, "cannot create files in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"profile"}, smallWorkload...), tc.args...)
			for i, a := range args {
				if strings.HasPrefix(a, "UNWRITABLE/") {
					args[i] = filepath.Join(unwritableDir(t), strings.TrimPrefix(a, "UNWRITABLE/"))
				}
			}
			before := listDir(t, dir)
			code, _, stderr := profileCLI(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
			if after := listDir(t, dir); after != before {
				t.Errorf("files left behind: before %q, after %q", before, after)
			}
		})
	}
}

// TestProfileInterrupted stops a CPU profile half way: the error says why
// and no file, partial or temporary, is left.
func TestProfileInterrupted(t *testing.T) {
	dir := t.TempDir()
	cpu := filepath.Join(dir, "cpu.pprof")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	args := append([]string{"profile", "--duration", "1m", "--cpu-profile", cpu}, smallWorkload...)
	code, _, stderr := profileCLIContext(t, ctx, args...)
	if code != 1 || !strings.Contains(stderr, context.DeadlineExceeded.Error()) {
		t.Errorf("exit %d, stderr %q: want 1 and %q", code, stderr, context.DeadlineExceeded)
	}
	if got := listDir(t, dir); got != dir {
		t.Errorf("files left behind: %s", got)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}
