package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadDeviceFile feeds arbitrary bytes as a user device file. Loading
// must never panic: it either fails or returns a catalog whose devices all
// validate.
func FuzzLoadDeviceFile(f *testing.F) {
	for _, s := range []string{
		"",
		"devices: {}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {achievable_bandwidth: 3.1e12}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {peak_bandwidth: -1}\n",
		"devices:\n  h100-sxm:\n    compute:\n      - {unit: matrix, dtype: fp16, ops_per_second: 1e15}\n",
		"devices:\n  h100-sxm:\n    compute:\n      - {unit: attention-tile, kernel: flash2, dtype: fp16, ops_per_second: 1.5e14,\n" +
			"         table: {rows: [132, 264], cols: [3.3e7, 1.3e8], seconds: [[3.5e-5, 1.3e-4], [5.9e-5, 2.0e-4]]}, source: test}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {kernel_bandwidth: {triton: 2.7e12}}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {kernel_bandwidth: {triton: 9e12}}\n",
		"devices:\n  a100-40gb:\n    overheads: {host_sync_seconds: 2e-5}\n",
		"devices:\n  h100-sxm:\n    overheads: {stream_launch_seconds: 3.2e-6}\n",
		"devices:\n  h100-sxm:\n    compute:\n      - {unit: topk, dtype: fp32, ops_per_second: 8e10,\n" +
			"         table: {rows: [32, 2048], cols: [1024, 16384], seconds: [[2e-5, 6e-5], [1e-4, 5e-4]], kernels: [[2, 22], [22, 22]]}, source: test}\n",
		"devices:\n  h100-sxm:\n    compute:\n      - {unit: copy, kernel: scattered, dtype: fp32, ops_per_second: 2.68e11, floor_seconds: 4.6e-6}\n",
		"devices:\n  h100-sxm:\n    compute:\n      - {unit: matmul, kernel: qk, query_rows: 4, head_dim: 128, dtype: fp16, ops_per_second: 5e12,\n" +
			"         table: {rows: [8, 32], cols: [1024, 131072], seconds: [[3e-6, 1e-4], [6e-6, 4e-4]]}, source: test}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm:\n        kernel_loops:\n          triton:\n            gather: {seconds: 5e-7, seconds_per_byte: 4e-12, seconds_per_element: 7e-11}\n",
		"devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {kernel_loops: {triton: {rows: {seconds: 0, seconds_per_element: 1}}}}\n",
		"devices:\n  h200:\n    compute:\n      - {unit: tile-loads, dtype: fp16, tile_bytes: 32768, tiles_in_flight: 2, ops_per_second: 4e12,\n" +
			"         table: {rows: [128, 264], cols: [1, 16], seconds: [[3.5e-6, 2.1e-5], [4.5e-6, 3.5e-5]]}, source: test}\n",
		"devices:\n  h200:\n    compute:\n      - {unit: block-code, dtype: fp16, param_lines: 2, param_line_seconds: 5.3e-8, ops_per_second: 6.5e8,\n" +
			"         table: {rows: [132, 264], cols: [496, 3570], seconds: [[5.8e-6, 9.4e-6], [7.9e-6, 1.26e-5]]}, source: test}\n",
		"devices:" + newDevice,
		"sweep: {points: 3}\n",
		"devices: [\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadDevices(LoadOptions{SkipHostFile: true, DeviceFiles: []string{p}})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, d := range c.Devices() {
			if err := d.Validate(); err != nil {
				t.Fatalf("loaded an invalid device: %v", err)
			}
		}
	})
}
