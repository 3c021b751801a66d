// Package progress draws a one-line progress bar on a terminal.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Enabled reports whether a bar should be drawn on f: f is a terminal and
// TERM is not "dumb".
func Enabled(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// Bar is a progress bar of a known number of steps. A nil *Bar does
// nothing, so callers need not check whether one is shown.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	total int
	start time.Time
	last  time.Time
	drawn bool
	// cols is the terminal's width (0: unknown); lines are cut to fit, as
	// a wrapped line cannot be redrawn in place.
	cols int
	// now is the clock (tests replace it).
	now func() time.Time
}

// New returns a bar of total steps named what ("points") drawn on w.
func New(w io.Writer, total int, what string) *Bar {
	now := time.Now
	b := &Bar{w: w, what: what, total: total, start: now(), now: now}
	if f, ok := w.(*os.File); ok {
		if c, _, err := term.GetSize(int(f.Fd())); err == nil {
			b.cols = c
		}
	}
	return b
}

const width = 24

// Update redraws the bar with done steps finished and a note (the last
// step), at most ten times a second and always for the last step.
func (b *Bar) Update(done int, note string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if done < b.total && t.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last = t
	fmt.Fprint(b.w, "\r\x1b[K"+b.line(done, note, t))
	b.drawn = true
}

// line formats the bar.
func (b *Bar) line(done int, note string, t time.Time) string {
	frac := 0.0
	if b.total > 0 {
		frac = float64(min(done, b.total)) / float64(b.total)
	}
	fill := int(frac * width)
	elapsed := t.Sub(b.start)
	s := fmt.Sprintf("[%s%s] %d/%d %s  %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, b.total, b.what, clock(elapsed))
	if done > 0 && done < b.total {
		left := time.Duration(float64(elapsed) / frac * (1 - frac))
		s += fmt.Sprintf(", ~%s left", clock(left))
	}
	if note != "" {
		s += "  " + note
	}
	if r := []rune(s); b.cols > 1 && len(r) > b.cols-1 {
		s = string(r[:b.cols-1])
	}
	return s
}

// Finish clears the bar's line.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
