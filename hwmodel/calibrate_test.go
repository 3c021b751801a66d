package hwmodel

import (
	"context"
	"errors"
	"testing"
	"time"
)

func tinyOptions() CalibrateOptions {
	return CalibrateOptions{
		Workers: 2, DRAMBytes: 4 << 20, LLCBytes: 256 << 10, Repeats: 2,
		LatencyHops: 1 << 12, OverheadReps: 20, ComputeSeconds: 0.005,
		Now: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
	}
}

func TestCalibrateTiny(t *testing.T) {
	d, r, err := Calibrate(context.Background(), tinyOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Name != "host" || d.Kind != KindCPU {
		t.Errorf("device %s/%s", d.Name, d.Kind)
	}
	for name, v := range map[string]float64{
		"read": r.ReadBandwidth.Median, "single read": r.SingleReadBandwidth.Median,
		"llc read": r.LLCReadBandwidth.Median, "dram latency": r.DRAMLatency,
		"llc latency": r.LLCLatency, "overhead": r.StageOverhead, "dot": r.DotRate.Best,
		"exp": r.ExpRate, "llc bytes": float64(r.LLCBytes), "memory": float64(r.MemoryBytes),
	} {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if len(r.ReadBandwidth.Samples) != 2 || r.ReadBandwidth.Best < r.ReadBandwidth.Median {
		t.Errorf("read stats %+v", r.ReadBandwidth)
	}
	if r.DRAMLatency >= 1 || r.LLCLatency >= 1 {
		t.Errorf("latencies %v, %v", r.DRAMLatency, r.LLCLatency)
	}
	want := "measured by bwsim calibrate 2026-01-02, " + r.CPUModel
	if src := d.Levels["dram"].Source; len(src) < len(want) || src[:len(want)] != want {
		t.Errorf("source %q, want prefix %q", src, want)
	}
	if d.Concurrency.ParallelUnits != 2 {
		t.Errorf("parallel units %d", d.Concurrency.ParallelUnits)
	}
}

func TestCalibrateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Calibrate(ctx, tinyOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestNewStats(t *testing.T) {
	s := newStats([]float64{3, 1, 2, 4}, true)
	if s.Best != 4 || s.Median != 2.5 {
		t.Errorf("%+v", s)
	}
	s = newStats([]float64{3, 1, 2}, false)
	if s.Best != 1 || s.Median != 2 {
		t.Errorf("%+v", s)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"48K": 48 << 10, "491520K": 491520 << 10, "32M": 32 << 20, "1G": 1 << 30, "512": 512, "x": 0} {
		if got := parseSize(in); got != want {
			t.Errorf("parseSize(%q) = %d, want %d", in, got, want)
		}
	}
}
