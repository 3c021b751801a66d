package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/sweep"
)

var updateSweepGolden = flag.Bool("update-sweep", false, "rewrite testdata/sweep/*.txt with the current output")

// runCLI runs the command line as main does and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	code := run(ctx, args, stdout, stderr)
	stdout.Close()
	stderr.Close()
	o, _ := os.ReadFile(stdout.Name())
	e, _ := os.ReadFile(stderr.Name())
	return code, string(o), string(e)
}

// A golden file is
//
//	# comment
//	args: sweep --flag value ...   ($OUT: a fresh directory, $TESTDATA: testdata/sweep)
//	exit: 0
//	-- stdout --
//	...
//	-- stderr --
//	...
//
// Output is compared after replacing the directories by $OUT and
// $TESTDATA and durations by 1.0s. go test -update-sweep rewrites them.
type golden struct {
	head           []string
	args           []string
	exit           int
	stdout, stderr string
}

func readGolden(t *testing.T, path string) golden {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	head, rest, ok := strings.Cut(text, "-- stdout --\n")
	out, errText, ok2 := strings.Cut(rest, "-- stderr --\n")
	if !ok || !ok2 {
		t.Fatalf("%s: want -- stdout -- and -- stderr -- sections", path)
	}
	g := golden{stdout: out, stderr: errText}
	for _, line := range strings.Split(strings.TrimRight(head, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "args: "):
			g.args = strings.Fields(strings.TrimPrefix(line, "args: "))
		case strings.HasPrefix(line, "exit: "):
			g.exit, _ = strconv.Atoi(strings.TrimPrefix(line, "exit: "))
			continue
		}
		if !strings.HasPrefix(line, "exit: ") {
			g.head = append(g.head, line)
		}
	}
	return g
}

func (g golden) format() string {
	return strings.Join(g.head, "\n") + "\nexit: " + strconv.Itoa(g.exit) + "\n-- stdout --\n" + g.stdout + "-- stderr --\n" + g.stderr
}

var durationRE = regexp.MustCompile(`in [0-9.]+m?s\b`)

func TestSweepGolden(t *testing.T) {
	isolateConfig(t)
	testdata, err := filepath.Abs(filepath.Join("testdata", "sweep"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(testdata, "*.txt"))
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			g := readGolden(t, path)
			out := t.TempDir()
			args := make([]string, len(g.args))
			for i, a := range g.args {
				args[i] = strings.NewReplacer("$OUT", out, "$TESTDATA", testdata).Replace(a)
			}
			code, stdout, stderr := runCLI(t, context.Background(), args...)
			norm := func(s string) string {
				s = strings.NewReplacer(out, "$OUT", testdata, "$TESTDATA").Replace(s)
				return durationRE.ReplaceAllString(s, "in 1.0s")
			}
			got := golden{head: g.head, args: g.args, exit: code, stdout: norm(stdout), stderr: norm(stderr)}
			if *updateSweepGolden {
				if err := os.WriteFile(path, []byte(got.format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.exit != g.exit {
				t.Errorf("exit %d, want %d\nstderr:\n%s", got.exit, g.exit, got.stderr)
			}
			if got.stdout != g.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, g.stdout)
			}
			if got.stderr != g.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", got.stderr, g.stderr)
			}
		})
	}
}

// smallSweep is a sweep that runs in a fraction of a second.
var smallSweep = []string{"sweep", "--methods", "dense,sparq:r=8:k=32", "--seq", "256,512", "--batch", "1,4",
	"--heads", "4", "--head-dim", "32", "--devices", "h100-sxm,ipu-bow", "--no-host-file", "--no-figures", "-q"}

func TestSweepShardsAndMerge(t *testing.T) {
	isolateConfig(t)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	if code, _, stderr := runCLI(t, context.Background(), append(smallSweep, "--out", whole)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	shards := filepath.Join(dir, "shards")
	for _, s := range []string{"1/3", "2/3", "3/3"} {
		if code, _, stderr := runCLI(t, context.Background(), append(smallSweep, "--out", shards, "--shard", s)...); code != 0 {
			t.Fatalf("shard %s: exit %d: %s", s, code, stderr)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(shards, "shard-*-of-3"))
	if len(parts) != 3 {
		t.Fatalf("shard directories %q", parts)
	}
	merged := filepath.Join(dir, "merged")
	code, _, stderr := runCLI(t, context.Background(), append([]string{"sweep", "merge", "--no-figures", "-q", "--out", merged}, parts...)...)
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(filepath.Join(whole, sweep.CSVName))
	b, _ := os.ReadFile(filepath.Join(merged, sweep.CSVName))
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("merged results.csv differs from the whole sweep's:\n%s\n%s", a, b)
	}
	code, _, stderr = runCLI(t, context.Background(), append([]string{"sweep", "merge", "--no-figures", "--out", merged}, parts[:2]...)...)
	if code != 2 || !strings.Contains(stderr, "missing or unfinished shards: 3/3") || !strings.Contains(stderr, "--allow-partial") {
		t.Errorf("partial merge: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, context.Background(), "sweep", "merge", filepath.Join(dir, "nothing"))
	if code != 2 || !strings.Contains(stderr, "no such file") {
		t.Errorf("merge of nothing: exit %d: %s", code, stderr)
	}
}

func TestSweepInterruptAndResume(t *testing.T) {
	isolateConfig(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, stderr := runCLI(t, ctx, append(smallSweep, "--out", dir)...)
	if code != 1 || !strings.Contains(stderr, "interrupted after 0 of 8 points") || !strings.Contains(stderr, "--resume") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, context.Background(), append(smallSweep, "--out", dir, "--resume")...)
	if code != 0 || !strings.Contains(stderr, "8 of 8 points") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
}

// TestSweepTradeoffShardsAndMerge splits a trade-off sweep of two shapes
// in shards and checks the merge writes the whole sweep's trade-off view.
func TestSweepTradeoffShardsAndMerge(t *testing.T) {
	isolateConfig(t)
	args := []string{"sweep", "--tradeoff", "--methods", "sparq:r=4..8:k=32,h2o:k=32|64", "--seq", "256,512", "--batch", "2",
		"--heads", "4", "--head-dim", "32", "--devices", "h100-sxm,ipu-bow", "--tradeoff-device", "ipu-bow", "--steps", "2",
		"--no-host-file", "--no-figures", "-q"}
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	if code, _, stderr := runCLI(t, context.Background(), append(args, "--out", whole)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	shards := filepath.Join(dir, "shards")
	for _, s := range []string{"1/2", "2/2"} {
		if code, _, stderr := runCLI(t, context.Background(), append(args, "--out", shards, "--shard", s)...); code != 0 {
			t.Fatalf("shard %s: exit %d: %s", s, code, stderr)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(shards, "shard-*-of-2"))
	merged := filepath.Join(dir, "merged")
	if code, _, stderr := runCLI(t, context.Background(), append([]string{"sweep", "merge", "--no-figures", "-q", "--out", merged}, parts...)...); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(filepath.Join(whole, sweep.TradeoffCSVName))
	b, _ := os.ReadFile(filepath.Join(merged, sweep.TradeoffCSVName))
	if strings.Count(string(a), "\n") != 1+2*5 || string(a) != string(b) {
		t.Errorf("merged tradeoff.csv differs from the whole sweep's:\n%s\n%s", a, b)
	}
	for _, want := range []string{",ipu-bow,", "h2o:k=32|64,h2o:k=64,h2o,,64,", ",fp16,2,512,2,"} {
		if !strings.Contains(string(a), want) {
			t.Errorf("tradeoff.csv lacks %q:\n%s", want, a)
		}
	}
	// Resuming the finished sweep reruns nothing and keeps the view.
	code, _, stderr := runCLI(t, context.Background(), append(args, "--out", whole, "--resume")...)
	c, _ := os.ReadFile(filepath.Join(whole, sweep.TradeoffCSVName))
	if code != 0 || !strings.Contains(stderr, "10 of 10 points") || string(c) != string(a) {
		t.Errorf("resume: exit %d: %s", code, stderr)
	}
}
