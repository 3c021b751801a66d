// Package devtest holds hand-made devices with round numbers for tests, so
// that expected times can be computed by hand and stay independent of the
// embedded catalog.
package devtest

import "github.com/bwsim/bwsim/hwmodel"

// GPU is a GPU-like device: smem, a 40 MiB L2 and 80 GB of HBM at 2 TB/s
// peak (1.8 achievable), 32-byte sectors, 2.5 µs launches, 100 SMs of 8
// work units keeping 2 KiB in flight each.
func GPU() *hwmodel.Device {
	return &hwmodel.Device{
		Name: "test-gpu", Kind: hwmodel.KindGPU,
		Levels: map[string]hwmodel.MemoryLevel{
			"smem": {Role: hwmodel.RoleOnChip, Tier: 0, CapacityBytes: 1 << 24, PeakBandwidth: 20e12, AchievableBandwidth: 19e12, GranularityBytes: 4, LatencySeconds: 30e-9},
			"l2":   {Role: hwmodel.RoleCache, Tier: 1, CapacityBytes: 40 << 20, PeakBandwidth: 7e12, AchievableBandwidth: 5e12, GranularityBytes: 32, LatencySeconds: 200e-9},
			"hbm":  {Role: hwmodel.RoleMemory, Tier: 2, CapacityBytes: 80e9, PeakBandwidth: 2e12, AchievableBandwidth: 1.8e12, GranularityBytes: 32, LatencySeconds: 500e-9},
		},
		Compute: []hwmodel.Compute{
			{Unit: "vector", DType: "fp16", OpsPerSecond: 100e12},
			{Unit: "vector", DType: "fp32", OpsPerSecond: 50e12},
			{Unit: "special", DType: "fp32", OpsPerSecond: 4e12},
		},
		Overheads:   hwmodel.Overheads{LaunchSeconds: 2.5e-6},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 100, WorkUnitsPerParallelUnit: 8, InflightBytesPerWorkUnit: 2048},
	}
}

// IPU is an IPU-like device: 900 MB of SRAM and 64 GB of streaming memory
// at 7 GB/s achievable, 1 µs synchronisation per stage, 1472 tiles.
func IPU() *hwmodel.Device {
	return &hwmodel.Device{
		Name: "test-ipu", Kind: hwmodel.KindIPU,
		Levels: map[string]hwmodel.MemoryLevel{
			"sram":      {Role: hwmodel.RoleMemory, Tier: 0, CapacityBytes: 900e6, PeakBandwidth: 47.5e12, AchievableBandwidth: 30e12, GranularityBytes: 8, LatencySeconds: 5e-9},
			"streaming": {Role: hwmodel.RoleMemory, Tier: 1, CapacityBytes: 64e9, PeakBandwidth: 16e9, AchievableBandwidth: 7e9, GranularityBytes: 64, LatencySeconds: 2e-6},
		},
		Compute:     []hwmodel.Compute{{Unit: "vector", DType: "fp16", OpsPerSecond: 60e12}},
		Overheads:   hwmodel.Overheads{SyncSeconds: 1e-6},
		Concurrency: hwmodel.Concurrency{ParallelUnits: 1472, WorkUnitsPerParallelUnit: 6, InflightBytesPerWorkUnit: 1 << 20},
	}
}
