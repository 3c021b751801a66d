package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bwsim/bwsim/sweep"
)

// interruptSweep is a sweep of about 2.5 s on two cores: 72 points, enough
// that an interrupt lands between and during them.
var interruptSweep = []string{"sweep", "-q", "--no-figures", "--no-host-file",
	"--methods", "dense,sparq:r=8:k=32,topk:k=32", "--seq", "256..8k", "--batch", "1,2,4,8",
	"--heads", "4", "--head-dim", "32", "--devices", "h100-sxm,ipu-bow", "--jobs", "2"}

// TestSweepSignalResume interrupts a real bwsim sweep process with SIGINT at
// several moments, resuming it each time, and checks that the final
// results equal an uninterrupted run's: no row lost, none duplicated, and
// no partial or temporary file at any point.
func TestSweepSignalResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bwsim and runs sweeps in subprocesses")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on windows")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	xdg := isolateConfig(t)
	bin := filepath.Join(t.TempDir(), "bwsim")
	build := exec.Command(goCmd, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "BWSIM_HOST_FILE=")

	// start runs bwsim with args; after delay (if positive) it sends
	// SIGINT. It returns the exit code and stderr.
	start := func(delay time.Duration, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if delay > 0 {
			timer := time.AfterFunc(delay, func() { cmd.Process.Signal(os.Interrupt) })
			defer timer.Stop()
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, stderr.String()
		case errors.As(err, &ee) && ee.Exited():
			return ee.ExitCode(), stderr.String()
		}
		t.Fatalf("bwsim %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		return -1, ""
	}

	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	t0 := time.Now()
	if code, stderr := start(0, append(interruptSweep, "--out", whole)...); code != 0 {
		t.Fatalf("uninterrupted sweep: exit %d\n%s", code, stderr)
	}
	t.Logf("uninterrupted sweep: %v", time.Since(t0).Round(time.Millisecond))
	want := readRows(t, filepath.Join(whole, sweep.CSVName))
	if len(want) == 0 {
		t.Fatal("no rows")
	}
	checkNoDuplicates(t, "uninterrupted", want)

	out := filepath.Join(dir, "interrupted")
	interrupted := 0
	for i, delay := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		args := append(slices.Clone(interruptSweep), "--out", out)
		if i > 0 {
			args = append(args, "--resume")
		}
		code, stderr := start(delay, args...)
		switch code {
		case 0: // finished before the signal
		case 1:
			interrupted++
			if !strings.Contains(stderr, "--resume") {
				t.Errorf("after %v: exit 1 without the advice to resume:\n%s", delay, stderr)
			}
		default:
			t.Fatalf("after %v: exit %d\n%s", delay, code, stderr)
		}
		checkNoTempFiles(t, out)
		// Whatever results a stopped sweep wrote are finished points of
		// the whole sweep, each once.
		if _, err := os.Stat(filepath.Join(out, sweep.CSVName)); err == nil {
			rows := readRows(t, filepath.Join(out, sweep.CSVName))
			checkNoDuplicates(t, "after "+delay.String(), rows)
			keys := rowKeys(want)
			for _, r := range rows {
				if !slices.Contains(keys, rowKey(r)) {
					t.Errorf("after %v: row not in the whole sweep: %q", delay, r)
				}
			}
			t.Logf("signal after %v: exit %d, %d of %d rows", delay, code, len(rows), len(want))
		} else {
			t.Logf("signal after %v: exit %d, no results yet", delay, code)
		}
	}
	if interrupted == 0 {
		t.Log("every run finished before its signal: the interrupts tested nothing")
	}
	if code, stderr := start(0, append(slices.Clone(interruptSweep), "--out", out, "--resume")...); code != 0 {
		t.Fatalf("final resume: exit %d\n%s", code, stderr)
	}
	checkNoTempFiles(t, out)
	got := readRows(t, filepath.Join(out, sweep.CSVName))
	checkNoDuplicates(t, "resumed", got)
	if !slices.Equal(sortedRows(got), sortedRows(want)) {
		t.Errorf("resumed sweep has %d rows, uninterrupted %d; they differ", len(got), len(want))
		for _, r := range sortedRows(got) {
			if !slices.Contains(sortedRows(want), r) {
				t.Errorf("only after resuming: %s", r)
			}
		}
		for _, r := range sortedRows(want) {
			if !slices.Contains(sortedRows(got), r) {
				t.Errorf("lost: %s", r)
			}
		}
	}
}

// readRows reads a results.csv: the header, then every row.
func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], sweep.CSVHeader) {
		t.Fatalf("%s: bad header", path)
	}
	return recs[1:]
}

// rowKey is what identifies a row: every column up to seconds (method,
// parameters, device, shape, data).
func rowKey(r []string) string {
	i := slices.Index(sweep.CSVHeader, "seconds")
	return strings.Join(r[:i], ",")
}

func rowKeys(rows [][]string) []string {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = rowKey(r)
	}
	return keys
}

func sortedRows(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, ",")
	}
	slices.Sort(out)
	return out
}

func checkNoDuplicates(t *testing.T, what string, rows [][]string) {
	t.Helper()
	keys := rowKeys(rows)
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			t.Errorf("%s: row twice: %s", what, keys[i])
		}
	}
}

// checkNoTempFiles fails on files an interrupted atomic write would leave.
func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || strings.Contains(e.Name(), ".tmp") {
			t.Errorf("%s: temporary file left: %s", dir, e.Name())
		}
	}
}
