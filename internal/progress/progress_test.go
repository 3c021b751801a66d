package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 4, "points")
	clk := b.start
	b.now = func() time.Time { return clk }
	for i, tc := range []struct {
		done    int
		advance time.Duration
		want    string // "" when throttled
	}{
		{1, time.Second, "[======                  ] 1/4 points  0:01, ~0:03 left  a"},
		{2, 10 * time.Millisecond, ""},
		{3, 2 * time.Second, "[==================      ] 3/4 points  0:03, ~0:01 left  a"},
		{4, time.Millisecond, "[========================] 4/4 points  0:03  a"},
	} {
		clk = clk.Add(tc.advance)
		buf.Reset()
		b.Update(tc.done, "a")
		got := strings.TrimPrefix(buf.String(), "\r\x1b[K")
		if got != tc.want {
			t.Errorf("step %d: got %q, want %q", i, got, tc.want)
		}
	}
	buf.Reset()
	b.Finish()
	if buf.String() != "\r\x1b[K" {
		t.Errorf("Finish wrote %q", buf.String())
	}
	var nilBar *Bar
	nilBar.Update(1, "x")
	nilBar.Finish()
}

func TestBarCutsToWidth(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 2, "points")
	b.cols = 20
	b.Update(2, "a long note that would wrap")
	if got := strings.TrimPrefix(buf.String(), "\r\x1b[K"); len([]rune(got)) != 19 {
		t.Errorf("line %q is %d runes, want 19", got, len([]rune(got)))
	}
}
