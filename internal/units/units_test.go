package units

import "testing"

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Bytes(512), "512 B"},
		{Bytes(1536), "1.5 KiB"},
		{Bytes(32 << 20), "32.0 MiB"},
		{Bytes(3 << 40), "3.0 TiB"},
		{Seconds(0), "0 s"},
		{Seconds(2.5e-9), "2.5 ns"},
		{Seconds(16.2e-6), "16.2 µs"},
		{Seconds(0.0493), "49.3 ms"},
		{Seconds(2), "2 s"},
		{Bandwidth(3.35e12), "3.35 TB/s"},
		{Bandwidth(30e9), "30 GB/s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestShortFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Count(512), "512"},
		{Count(1024), "1K"},
		{Count(4096), "4K"},
		{Count(131072), "128K"},
		{Count(1 << 20), "1M"},
		{Count(1536), "1536"},
		{Count(3), "3"},
		{Count(0.5), "0.5"},
		{BytesShort(512), "512 B"},
		{BytesShort(1024), "1 KiB"},
		{BytesShort(1.5 * (1 << 20)), "1.5 MiB"},
		{BytesShort(64 << 30), "64 GiB"},
		{BytesShort(1000 << 20), "1000 MiB"},
		{SecondsShort(1e-6), "1 µs"},
		{SecondsShort(2e-5), "20 µs"},
		{SecondsShort(1.5e-3), "1.5 ms"},
		{SecondsShort(100e-9), "100 ns"},
		{SecondsShort(2), "2 s"},
		{SecondsShort(0), "0 s"},
		{Flops(19.5e12), "19.5 TFLOP/s"},
		{Flops(1e9), "1 GFLOP/s"},
		{Ratio(0.25), "0.25×"},
		{Ratio(6.4), "6.4×"},
		{Ratio(1), "1×"},
		{Ratio(128), "128×"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
