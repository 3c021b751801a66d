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
		{"kernel bandwidth", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelBandwidth = map[string]float64{"triton": 1.5e12} })
		}, ""},
		{"kernel bandwidth zero", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelBandwidth = map[string]float64{"triton": 0} })
		}, "memory_levels.hbm.kernel_bandwidth.triton: must be positive, got 0"},
		{"kernel bandwidth above peak", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelBandwidth = map[string]float64{"triton": 5e12} })
		}, "memory_levels.hbm.kernel_bandwidth.triton: must not exceed peak_bandwidth 2e+12, got 5e+12"},
		{"kernel bandwidth unnamed", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelBandwidth = map[string]float64{"": 1e12} })
		}, "memory_levels.hbm.kernel_bandwidth: names an empty kernel class"},
		{"kernel loops", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) {
				l.KernelLoops = map[string]KernelLoop{"triton": {Rows: LoopStep{Seconds: 4e-7, SecondsPerByte: 6e-12},
					Gather: LoopStep{Seconds: 5e-7, SecondsPerByte: 4e-12, SecondsPerElement: 7e-11}}}
			})
		}, ""},
		{"kernel loop without a fixed part", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) {
				l.KernelLoops = map[string]KernelLoop{"triton": {Rows: LoopStep{SecondsPerByte: 6e-12}}}
			})
		}, "memory_levels.hbm.kernel_loops.triton.rows.seconds: must be positive, got 0"},
		{"kernel loop negative rate", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) {
				l.KernelLoops = map[string]KernelLoop{"triton": {Gather: LoopStep{Seconds: 5e-7, SecondsPerElement: -1}}}
			})
		}, "memory_levels.hbm.kernel_loops.triton.gather.seconds_per_element: must be zero or positive, got -1"},
		{"kernel loop elements on rows", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) {
				l.KernelLoops = map[string]KernelLoop{"triton": {Rows: LoopStep{Seconds: 4e-7, SecondsPerElement: 1e-11}}}
			})
		}, "memory_levels.hbm.kernel_loops.triton.rows.seconds_per_element: applies to gathers only"},
		{"kernel loop empty", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) { l.KernelLoops = map[string]KernelLoop{"triton": {}} })
		}, "memory_levels.hbm.kernel_loops.triton: lists neither rows nor gather"},
		{"kernel loop unnamed", func(d *Device) {
			setLevel(d, "hbm", func(l *MemoryLevel) {
				l.KernelLoops = map[string]KernelLoop{"": {Rows: LoopStep{Seconds: 4e-7}}}
			})
		}, "memory_levels.hbm.kernel_loops: names an empty kernel class"},
		{"host sync", func(d *Device) { d.Overheads.HostSyncSeconds = -1e-6 }, "overheads.host_sync_seconds: must be at least 0"},
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
		{"table", func(d *Device) { d.Compute = append(d.Compute, tableUnit()) }, ""},
		{"tile loads", func(d *Device) { d.Compute = append(d.Compute, tileLoadUnit()) }, ""},
		{"tile loads without a tile", func(d *Device) { u := tileLoadUnit(); u.TileBytes = 0; d.Compute = append(d.Compute, u) },
			"compute[3].tile_bytes: must be 16 B to 16 MiB, got 0"},
		{"tile loads without a table", func(d *Device) { u := tileLoadUnit(); u.Table = nil; d.Compute = append(d.Compute, u) },
			"compute[3].table: a tile-loads unit is its measured table"},
		{"two tile loads units", func(d *Device) {
			u := tileLoadUnit()
			u.DType = "bf16"
			d.Compute = append(d.Compute, tileLoadUnit(), u)
		}, "compute[4]: a second tile-loads unit for 1 tile(s) in flight (compute[3] is one)"},
		{"tile loads one and two in flight", func(d *Device) {
			u := tileLoadUnit()
			u.TilesInFlight = 2
			d.Compute = append(d.Compute, tileLoadUnit(), u)
		}, ""},
		{"two tile loads units for 2 in flight", func(d *Device) {
			u := tileLoadUnit()
			u.TilesInFlight = 2
			d.Compute = append(d.Compute, u, u)
		}, "compute[4]: a second tile-loads unit for 2 tile(s) in flight (compute[3] is one)"},
		{"tiles in flight out of range", func(d *Device) { u := tileLoadUnit(); u.TilesInFlight = 9; d.Compute = append(d.Compute, u) },
			"compute[3].tiles_in_flight: must be 1 to 8 (0: 1), got 9"},
		{"tiles in flight on topk", func(d *Device) { u := tableUnit(); u.TilesInFlight = 2; d.Compute = append(d.Compute, u) },
			`compute[3].tiles_in_flight: only tile-loads units take tiles_in_flight, not "topk"`},
		{"tile loads with a kernel", func(d *Device) { u := tileLoadUnit(); u.Kernel = "flash2"; d.Compute = append(d.Compute, u) },
			`compute[3].kernel: a tile-loads unit names no kernel, got "flash2"`},
		{"tile bytes on topk", func(d *Device) { u := tableUnit(); u.TileBytes = 32768; d.Compute = append(d.Compute, u) },
			`compute[3].tile_bytes: only tile-loads units take tile_bytes, not "topk"`},
		{"table on vector", func(d *Device) { d.Compute[0].Table = tableUnit().Table },
			`compute[0].table: only library primitives (topk, softmax, attention-tile, matmul, tile-loads, block-code) take a table, not "vector"`},
		{"block code", func(d *Device) { d.Compute = append(d.Compute, blockCodeUnit()) }, ""},
		{"block code without a table", func(d *Device) { u := blockCodeUnit(); u.Table = nil; d.Compute = append(d.Compute, u) },
			"compute[3].table: a block-code unit is its measured table"},
		{"two block code units", func(d *Device) {
			u := blockCodeUnit()
			u.DType = "bf16"
			d.Compute = append(d.Compute, blockCodeUnit(), u)
		}, "compute[4]: a second block-code unit (compute[3] is one)"},
		{"block code with a kernel", func(d *Device) { u := blockCodeUnit(); u.Kernel = "flash2"; d.Compute = append(d.Compute, u) },
			`compute[3].kernel: a block-code unit names no kernel, got "flash2"`},
		{"param lines out of range", func(d *Device) { u := blockCodeUnit(); u.ParamLines = 513; d.Compute = append(d.Compute, u) },
			"compute[3].param_lines: must be 0 to 512, got 513"},
		{"param line seconds negative", func(d *Device) { u := blockCodeUnit(); u.ParamLineSeconds = -1e-9; d.Compute = append(d.Compute, u) },
			"compute[3].param_line_seconds: must be at least 0 and under 1 second"},
		{"param lines on tile loads", func(d *Device) { u := tileLoadUnit(); u.ParamLines = 2; d.Compute = append(d.Compute, u) },
			`compute[3]: only block-code units take param_lines and param_line_seconds, not "tile-loads"`},
		{"table rows descending", func(d *Device) { u := tableUnit(); u.Table.Rows = []float64{128, 32}; d.Compute = append(d.Compute, u) },
			"compute[3].table.rows[1]: must be above the previous point (128), got 32"},
		{"table zero cols", func(d *Device) { u := tableUnit(); u.Table.Cols[0] = 0; d.Compute = append(d.Compute, u) },
			"compute[3].table.cols[0]: must be at least 1, got 0"},
		{"table empty", func(d *Device) {
			u := tableUnit()
			u.Table.Rows, u.Table.Seconds = nil, nil
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.rows: empty"},
		{"table ragged", func(d *Device) {
			u := tableUnit()
			u.Table.Seconds[1] = u.Table.Seconds[1][:1]
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.seconds[1]: has 1 times for 3 cols values"},
		{"table missing row", func(d *Device) {
			u := tableUnit()
			u.Table.Seconds = u.Table.Seconds[:1]
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.seconds: has 1 rows of times for 2 rows values"},
		{"table NaN", func(d *Device) {
			u := tableUnit()
			u.Table.Seconds[0][2] = math.NaN()
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.seconds[0][2]: must be positive and under 1 second, got NaN"},
		{"table kernels", func(d *Device) {
			u := tableUnit()
			u.Table.Kernels = [][]float64{{2, 2, 22}, {2, 22, 22}}
			d.Compute = append(d.Compute, u)
		}, ""},
		{"table kernels missing row", func(d *Device) {
			u := tableUnit()
			u.Table.Kernels = [][]float64{{2, 2, 22}}
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.kernels: has 1 rows of counts for 2 rows values"},
		{"table kernels ragged", func(d *Device) {
			u := tableUnit()
			u.Table.Kernels = [][]float64{{2, 2, 22}, {2}}
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.kernels[1]: has 1 counts for 3 cols values"},
		{"table kernels fractional", func(d *Device) {
			u := tableUnit()
			u.Table.Kernels = [][]float64{{2, 2.5, 22}, {2, 22, 22}}
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.kernels[0][1]: must be a whole number of operations from 1 to 65536, got 2.5"},
		{"table kernels zero", func(d *Device) {
			u := tableUnit()
			u.Table.Kernels = [][]float64{{2, 2, 22}, {0, 22, 22}}
			d.Compute = append(d.Compute, u)
		},
			"compute[3].table.kernels[1][0]: must be a whole number of operations from 1 to 65536, got 0"},
		{"stream launch", func(d *Device) { d.Overheads.StreamLaunchSeconds = 3e-6 }, ""},
		{"stream launch negative", func(d *Device) { d.Overheads.StreamLaunchSeconds = -1e-6 },
			"overheads.stream_launch_seconds: must be at least 0 and under 1 second, got -1e-06"},
		{"tile unit without kernel", func(d *Device) {
			u := tableUnit()
			u.Unit = UnitAttentionTile
			d.Compute = append(d.Compute, u)
		},
			"compute[3].kernel: an attention-tile unit names the kernel it measures"},
		{"kernel on vector", func(d *Device) { d.Compute[0].Kernel = "flash2" }, `compute[0].kernel: only attention-tile, matmul and copy units name a kernel, not "vector"`},
		{"tile units of two kernels", func(d *Device) {
			for _, k := range []string{"flash2", "mem-efficient"} {
				u := tableUnit()
				u.Unit, u.DType, u.Kernel = UnitAttentionTile, "fp16", k
				d.Compute = append(d.Compute, u)
			}
		}, ""},
		{"duplicate tile unit", func(d *Device) {
			u := tableUnit()
			u.Unit, u.DType, u.Kernel = UnitAttentionTile, "fp16", "flash2"
			d.Compute = append(d.Compute, u, u)
		}, "compute[4]: duplicate of compute[3] (attention-tile fp16 flash2)"},
		{"copy units of both patterns", func(d *Device) {
			d.Compute = append(d.Compute, Compute{Unit: "copy", DType: "fp32", OpsPerSecond: 3e11, FloorSeconds: 4.6e-6},
				Compute{Unit: "copy", Kernel: CopyScattered, DType: "fp32", OpsPerSecond: 2.7e11, FloorSeconds: 4.6e-6})
		}, ""},
		{"copy pattern unknown", func(d *Device) {
			d.Compute = append(d.Compute, Compute{Unit: "copy", Kernel: "strided", DType: "fp32", OpsPerSecond: 3e11})
		}, `compute[3].kernel: a copy unit's pattern is scattered or empty (whole rows), got "strided"`},
		{"matmul units of three row counts and two forms", func(d *Device) {
			for _, form := range []string{MatmulScores, MatmulWeighted} {
				for _, rows := range []int{1, 4, 8} {
					d.Compute = append(d.Compute, matmulUnit(form, rows))
				}
			}
		}, ""},
		{"duplicate matmul unit", func(d *Device) {
			d.Compute = append(d.Compute, matmulUnit(MatmulScores, 4), matmulUnit(MatmulScores, 4))
		}, "compute[4]: duplicate of compute[3] (matmul fp16 qk)"},
		{"matmul without form", func(d *Device) { d.Compute = append(d.Compute, matmulUnit("", 4)) },
			`compute[3].kernel: a matmul unit names its product form, qk or pv, got ""`},
		{"matmul without rows", func(d *Device) { d.Compute = append(d.Compute, matmulUnit(MatmulWeighted, 0)) },
			"compute[3].query_rows: must be 1 to 65536, got 0"},
		{"matmul without head dim", func(d *Device) {
			u := matmulUnit(MatmulWeighted, 4)
			u.HeadDim = 0
			d.Compute = append(d.Compute, u)
		}, "compute[3].head_dim: must be 1 to 65536, got 0"},
		{"matmul without table", func(d *Device) {
			u := matmulUnit(MatmulWeighted, 4)
			u.Table = nil
			d.Compute = append(d.Compute, u)
		}, "compute[3].table: a matmul unit is its measured table"},
		{"query rows on softmax", func(d *Device) {
			u := tableUnit()
			u.QueryRows = 4
			d.Compute = append(d.Compute, u)
		}, `compute[3]: only matmul units take query_rows and head_dim, not "topk"`},
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

// tableUnit is a valid top-k unit with a 2 x 3 table.
func tableUnit() Compute {
	return Compute{Unit: "topk", DType: "fp32", OpsPerSecond: 80e9, FloorSeconds: 19e-6, Table: &Table{
		Rows:    []float64{32, 128},
		Cols:    []float64{1024, 4096, 16384},
		Seconds: [][]float64{{10e-6, 20e-6, 40e-6}, {20e-6, 40e-6, 80e-6}},
	}}
}

// tileLoadUnit is a valid tile-loads unit: 32 KiB tiles.
func tileLoadUnit() Compute {
	return Compute{Unit: UnitTileLoads, DType: "fp16", OpsPerSecond: 4e12, TileBytes: 32768, Table: &Table{
		Rows:    []float64{64, 256},
		Cols:    []float64{1, 2, 8},
		Seconds: [][]float64{{3e-6, 4.8e-6, 14.7e-6}, {4.5e-6, 7.7e-6, 22.5e-6}},
	}}
}

// blockCodeUnit is a valid block-code unit: its kernel runs 500
// instructions per warp outside its tile loop and reads 2 parameter lines.
func blockCodeUnit() Compute {
	return Compute{Unit: UnitBlockCode, DType: "fp16", OpsPerSecond: 6.5e8, ParamLines: 2, ParamLineSeconds: 5e-8, Table: &Table{
		Rows:    []float64{64, 256},
		Cols:    []float64{500, 2000},
		Seconds: [][]float64{{5e-6, 6.4e-6}, {9e-6, 11.4e-6}},
	}}
}

// matmulUnit is a matmul unit of form measured at rows query rows and head
// dimension 128, its times in proportion to the rows (so lookups can tell
// units apart).
func matmulUnit(form string, rows int) Compute {
	u := tableUnit()
	u.Unit, u.DType, u.Kernel, u.QueryRows, u.HeadDim = UnitMatmul, "fp16", form, rows, 128
	t := *u.Table
	t.Seconds = [][]float64{{float64(rows) * 1e-6, float64(rows) * 2e-6, float64(rows) * 4e-6}, {float64(rows) * 2e-6, float64(rows) * 4e-6, float64(rows) * 8e-6}}
	u.Table = &t
	return u
}

func TestMatmulUnit(t *testing.T) {
	d := testGPU()
	for _, rows := range []int{1, 4, 8} {
		d.Compute = append(d.Compute, matmulUnit(MatmulScores, rows))
	}
	bf := matmulUnit(MatmulScores, 4)
	bf.DType = "bf16"
	bf.Table.Seconds = [][]float64{{9e-6, 9e-6, 9e-6}, {9e-6, 9e-6, 9e-6}}
	d.Compute = append(d.Compute, bf)
	tests := []struct {
		name  string
		form  string
		rows  int
		dim   int
		dtype string
		want  int     // the unit's query rows; 0: none
		at32  float64 // its time for 32 products of 1024 keys
	}{
		{"exact rows", MatmulScores, 4, 128, "fp16", 4, 4e-6},
		{"one row", MatmulScores, 1, 128, "fp16", 1, 1e-6},
		{"rows pad to the next measured count", MatmulScores, 2, 128, "fp16", 4, 4e-6},
		{"five rows", MatmulScores, 5, 128, "fp16", 8, 8e-6},
		{"more rows than measured", MatmulScores, 9, 128, "fp16", 0, 0},
		{"other head dimension", MatmulScores, 4, 64, "fp16", 0, 0},
		{"other form", MatmulWeighted, 4, 128, "fp16", 0, 0},
		{"fp32 has no table", MatmulScores, 4, 128, "fp32", 0, 0},
		{"bf16 takes its own table", MatmulScores, 4, 128, "bf16", 4, 9e-6},
		{"bf16 falls back to fp16", MatmulScores, 8, 128, "bf16", 8, 8e-6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := d.MatmulUnit(tc.form, tc.rows, tc.dim, tc.dtype)
			if ok != (tc.want > 0) || u.QueryRows != tc.want {
				t.Fatalf("MatmulUnit = rows %d (%v), want rows %d", u.QueryRows, ok, tc.want)
			}
			if ok {
				if got := u.Table.At(32, 1024); math.Abs(got-tc.at32) > 1e-15 {
					t.Errorf("unit's time at 32 x 1024: %g, want %g", got, tc.at32)
				}
			}
		})
	}
}

func TestTableAt(t *testing.T) {
	tb := tableUnit().Table
	tests := []struct {
		name       string
		rows, cols float64
		want       float64
	}{
		{"grid point", 32, 1024, 10e-6},
		{"far grid point", 128, 16384, 80e-6},
		{"log midpoint of cols", 32, 2048, math.Sqrt(10e-6 * 20e-6)},
		{"log midpoint of both", 64, 2048, math.Sqrt(math.Sqrt(10e-6*20e-6) * math.Sqrt(20e-6*40e-6))},
		{"below the grid holds the edge", 1, 16, 10e-6},
		{"rows beyond the grid scale", 512, 4096, 4 * 40e-6},
		{"cols beyond the grid scale", 32, 65536, 4 * 40e-6},
		{"both beyond", 256, 32768, 2 * 2 * 80e-6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tb.At(tt.rows, tt.cols); math.Abs(got-tt.want) > 1e-9*tt.want {
				t.Errorf("At(%v, %v) = %g, want %g", tt.rows, tt.cols, got, tt.want)
			}
		})
	}
	one := &Table{Rows: []float64{8}, Cols: []float64{100}, Seconds: [][]float64{{5e-6}}}
	if got := one.At(16, 50); math.Abs(got-10e-6) > 1e-15 {
		t.Errorf("single-point table At(16, 50) = %g, want 1e-05", got)
	}
}

func TestTableKernelsAt(t *testing.T) {
	tb := tableUnit().Table
	if got := tb.KernelsAt(32, 16384); got != 1 {
		t.Errorf("a table without counts: %v operations, want 1", got)
	}
	tb.Kernels = [][]float64{{2, 2, 22}, {2, 22, 22}}
	tests := []struct {
		name       string
		rows, cols float64
		want       float64
	}{
		{"grid point", 32, 16384, 22},
		{"nearer the lower cols", 32, 8000, 2},
		{"nearer the upper cols", 32, 9000, 22},
		{"a tie takes the lower point", 64, 2048, 2},
		{"nearer the upper rows", 100, 4096, 22},
		{"below the grid", 1, 1, 2},
		{"beyond the grid", 1 << 20, 1 << 20, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tb.KernelsAt(tt.rows, tt.cols); got != tt.want {
				t.Errorf("KernelsAt(%v, %v) = %v, want %v", tt.rows, tt.cols, got, tt.want)
			}
		})
	}
}

func TestLaunch(t *testing.T) {
	o := Overheads{LaunchSeconds: 2e-6}
	if got := o.Launch(true); got != 2e-6 {
		t.Errorf("no stream figure: stream launch %g, want the launch 2e-06", got)
	}
	o.StreamLaunchSeconds = 3e-6
	if got := o.Launch(true); got != 3e-6 {
		t.Errorf("stream launch %g, want 3e-06", got)
	}
	if got := o.Launch(false); got != 2e-6 {
		t.Errorf("graph launch %g, want 2e-06", got)
	}
}

func TestCallSeconds(t *testing.T) {
	u := tableUnit()
	if got, want := u.CallSeconds(32, 32*4096), 20e-6; math.Abs(got-want) > 1e-15 {
		t.Errorf("with a table: %g, want %g", got, want)
	}
	// Without rows the table cannot say the row length: floor + rate.
	if got, want := u.CallSeconds(0, 8e9), 19e-6+0.1; math.Abs(got-want) > 1e-12 {
		t.Errorf("without rows: %g, want %g", got, want)
	}
	u.Table = nil
	if got, want := u.CallSeconds(32, 8e9), 19e-6+0.1; math.Abs(got-want) > 1e-12 {
		t.Errorf("without a table: %g, want %g", got, want)
	}
}
