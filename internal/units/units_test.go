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
