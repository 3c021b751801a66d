package hwmodel

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// testGPU is a complete, valid GPU.
func testGPU() *Device {
	lvl := func(role LevelRole, tier int) MemoryLevel {
		return MemoryLevel{Role: role, Tier: tier, CapacityBytes: 1e9, PeakBandwidth: 2e12, AchievableBandwidth: 1.8e12,
			GranularityBytes: 32, LatencySeconds: 400e-9, Source: "test"}
	}
	return &Device{
		Name: "test-gpu", Description: "a GPU", Kind: KindGPU,
		Levels: map[string]MemoryLevel{
			"smem": lvl(RoleOnChip, 0), "l2": lvl(RoleCache, 1), "hbm": lvl(RoleMemory, 2),
		},
		Compute: []Compute{
			{Unit: "vector", DType: "fp32", OpsPerSecond: 60e12},
			{Unit: "matrix", DType: "fp16", OpsPerSecond: 900e12},
			{Unit: "special", DType: "fp32", OpsPerSecond: 4e12},
		},
		Overheads:   Overheads{LaunchSeconds: 2.5e-6},
		Concurrency: Concurrency{ParallelUnits: 132, WorkUnitsPerParallelUnit: 8, InflightBytesPerWorkUnit: 1200},
		Links:       []Link{{Name: "nvlink", BandwidthPerDirection: 450e9}},
	}
}

func setLevel(d *Device, name string, f func(*MemoryLevel)) {
	l := d.Levels[name]
	f(&l)
	d.Levels[name] = l
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(d *Device)
		want   string // "" for valid
	}{
		{"valid", func(d *Device) {}, ""},
		{"negative peak", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.PeakBandwidth = -1 }) },
			`device "test-gpu": memory_levels.hbm.peak_bandwidth: must be positive, got -1`},
		{"NaN capacity", func(d *Device) { setLevel(d, "l2", func(l *MemoryLevel) { l.CapacityBytes = math.NaN() }) },
			"memory_levels.l2.capacity_bytes: must be positive, got NaN"},
		{"infinite peak", func(d *Device) { setLevel(d, "l2", func(l *MemoryLevel) { l.PeakBandwidth = math.Inf(1) }) },
			"memory_levels.l2.peak_bandwidth: must be positive, got +Inf"},
		{"achievable zero", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.AchievableBandwidth = 0 }) },
			"memory_levels.hbm.achievable_bandwidth: must be positive, got 0"},
		{"achievable above peak", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.AchievableBandwidth = 3e12 }) },
			"memory_levels.hbm.achievable_bandwidth: must not exceed peak_bandwidth 2e+12, got 3e+12"},
		{"granularity", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.GranularityBytes = 0 }) },
			"memory_levels.hbm.granularity_bytes: must be positive, got 0"},
		{"negative latency", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.LatencySeconds = -1e-9 }) },
			"memory_levels.hbm.latency_seconds: must be at least 0 and under 1 second"},
		{"latency a second", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.LatencySeconds = 1 }) },
			"memory_levels.hbm.latency_seconds: must be at least 0 and under 1 second, got 1"},
		{"transfer overhead", func(d *Device) { setLevel(d, "hbm", func(l *MemoryLevel) { l.TransferOverheadSeconds = -1 }) },
			"memory_levels.hbm.transfer_overhead_seconds"},
		{"wrong role", func(d *Device) { setLevel(d, "l2", func(l *MemoryLevel) { l.Role = RoleMemory }) },
			`memory_levels.l2.role: must be "cache" for level l2, got "memory"`},
		{"name mismatch", func(d *Device) { setLevel(d, "l2", func(l *MemoryLevel) { l.Name = "l3" }) },
			`memory_levels.l2.name: "l3" differs from the level's key "l2"`},
		{"duplicate tier", func(d *Device) { setLevel(d, "l2", func(l *MemoryLevel) { l.Tier = 2 }) },
			"tier 2 is also used by level"},
		{"missing level", func(d *Device) { delete(d.Levels, "smem") },
			"memory_levels.smem: missing (a gpu device needs levels hbm, l2, smem)"},
		{"unknown level", func(d *Device) { d.Levels["l3"] = d.Levels["l2"] },
			"memory_levels.l3: unknown level for a gpu device (known: hbm, l2, smem)"},
		{"no levels", func(d *Device) { d.Levels = nil }, "memory_levels: no memory levels"},
		{"unknown kind", func(d *Device) { d.Kind = "tpu" }, `kind: unknown kind "tpu" (known: cpu, gpu, ipu)`},
		{"bad name", func(d *Device) { d.Name = "H100 SXM" }, `name "H100 SXM": must be lower-case`},
		{"unknown unit", func(d *Device) { d.Compute[0].Unit = "tensor" }, `compute[0].unit: unknown unit "tensor"`},
		{"unknown dtype", func(d *Device) { d.Compute[1].DType = "fp4" }, `compute[1].dtype: unknown dtype "fp4"`},
		{"zero ops", func(d *Device) { d.Compute[2].OpsPerSecond = 0 }, "compute[2].ops_per_second: must be positive, got 0"},
		{"duplicate compute", func(d *Device) { d.Compute = append(d.Compute, d.Compute[0]) },
			"compute[3]: duplicate of compute[0] (vector fp32)"},
		{"negative launch", func(d *Device) { d.Overheads.LaunchSeconds = -1 }, "overheads.launch_seconds: must be zero or positive, got -1"},
		{"negative sync", func(d *Device) { d.Overheads.SyncSeconds = -1 }, "overheads.sync_seconds: must be zero or positive"},
		{"parallel units", func(d *Device) { d.Concurrency.ParallelUnits = 0 }, "concurrency.parallel_units: must be positive, got 0"},
		{"work units", func(d *Device) { d.Concurrency.WorkUnitsPerParallelUnit = -1 }, "concurrency.work_units_per_parallel_unit: must be positive"},
		{"inflight", func(d *Device) { d.Concurrency.InflightBytesPerWorkUnit = 0 }, "concurrency.inflight_bytes_per_work_unit: must be positive"},
		{"link bandwidth", func(d *Device) { d.Links[0].BandwidthPerDirection = 0 }, "links[0].bandwidth_per_direction: must be positive, got 0"},
		{"link name", func(d *Device) { d.Links = append(d.Links, d.Links[0]) }, `links[1].name: duplicate link "nvlink"`},
		{"ipu without exchange", func(d *Device) {
			d.Kind = KindIPU
			d.Levels = map[string]MemoryLevel{"sram": d.Levels["smem"], "streaming": d.Levels["hbm"]}
			setLevel(d, "sram", func(l *MemoryLevel) { l.Role = RoleMemory })
		}, ""},
		{"cpu", func(d *Device) {
			d.Kind = KindCPU
			d.Levels = map[string]MemoryLevel{"llc": d.Levels["l2"], "dram": d.Levels["hbm"]}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testGPU()
			tt.modify(d)
			err := d.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Device != d.Name {
				t.Errorf("error %v does not carry a *FieldError for %q", err, d.Name)
			}
		})
	}
}

// Validate reports every problem, not just the first.
func TestValidateReportsAll(t *testing.T) {
	d := testGPU()
	d.Kind = "tpu"
	d.Overheads.LaunchSeconds = -1
	d.Concurrency.ParallelUnits = 0
	err := d.Validate()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 3 {
		t.Fatalf("got %v, want 3 joined errors", err)
	}
}
