package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execute runs the bwsim command line and returns its stdout and error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func isolateConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("BWSIM_HOST_FILE", "")
	return dir
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

func TestDevicesCommand(t *testing.T) {
	isolateConfig(t)
	out, err := execute(t, "devices")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "ipu-gc200", "ipu-bow", "host", "streaming", "3.35 TB/s"} {
		if !strings.Contains(out, name) {
			t.Errorf("devices output lacks %q:\n%s", name, out)
		}
	}

	out, err = execute(t, "devices", "--json", "--set", "devices.h200.memory_levels.hbm.achievable_bandwidth=3.5e12")
	if err != nil {
		t.Fatal(err)
	}
	var devs []struct {
		Name   string `json:"name"`
		Levels []struct {
			Name                string  `json:"name"`
			AchievableBandwidth float64 `json:"achievable_bandwidth"`
		} `json:"memory_levels"`
	}
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(devs) != 8 {
		t.Errorf("%d devices", len(devs))
	}
	for _, d := range devs {
		if d.Name == "h200" && (len(d.Levels) != 3 || d.Levels[2].Name != "hbm" || d.Levels[2].AchievableBandwidth != 3.5e12) {
			t.Errorf("h200 levels %+v", d.Levels)
		}
	}

	out, err = execute(t, "devices", "show", "ipu-bow")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"streaming (memory, tier 2)", "SPARQ-BM", "source:", "transfer overhead 23.1 µs"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}

func TestDevicesBadInput(t *testing.T) {
	dir := isolateConfig(t)
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {peak_bandwidth: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"devices", "show", "h300"}, `unknown device "h300"`},
		{[]string{"devices", "--set", "devices.h200"}, "want KEY=VALUE"},
		{[]string{"devices", "--device-file", bad}, bad + `: device "h100-sxm": memory_levels.hbm.peak_bandwidth: must be positive, got -1`},
		{[]string{"devices", "show", "h200", "--set", "devices.h200.kind=tpu"}, `--set devices.h200.kind: device "h200": kind: unknown kind`},
	}
	for _, tt := range tests {
		_, err := execute(t, tt.args...)
		if err == nil || !isUsage(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestCalibrateCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the host for about a second")
	}
	dir := isolateConfig(t)
	out, err := execute(t, "calibrate", "--quick")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bwsim", "host.yaml")
	if !strings.Contains(out, "wrote "+path) {
		t.Errorf("output:\n%s", out)
	}
	// Later commands pick it up.
	out, err = execute(t, "devices", "show", "host")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "measured by bwsim calibrate") || !strings.Contains(out, "loaded from: "+path) {
		t.Errorf("host not loaded from %s:\n%s", path, out)
	}
}
