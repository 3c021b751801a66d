package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCount parses a positive count such as "4096", "32k" or "1M" (binary
// multiples: k = 1024, M = 1024²), as people write sequence lengths.
func parseCount(flag, s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"), strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, badInput("--%s %q: not a number (use e.g. 4096, 32k or 1M)", flag, s)
	}
	if n <= 0 {
		return 0, badInput("--%s %q: must be positive", flag, s)
	}
	if n > (1<<31)/mult {
		return 0, badInput("--%s %q: too large", flag, s)
	}
	return n * mult, nil
}

func formatCount(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dk", n>>10)
	}
	return strconv.Itoa(n)
}
