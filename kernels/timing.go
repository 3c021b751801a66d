package kernels

import (
	"context"
	"slices"
	"time"
)

// Timing is the measured host time of one step.
type Timing struct {
	// Median, Min and Max are over Runs timed steps after Warmup untimed ones.
	Median, Min, Max time.Duration
	Runs, Warmup     int
	Traced           bool
}

// Time runs the step warmup times untimed, then runs times timed, and
// reports the median: the statistic least disturbed by a shared machine.
func (p *Prepared) Time(ctx context.Context, traced bool, warmup, runs int) (Timing, error) {
	runs = max(runs, 1)
	for range warmup {
		if _, err := p.Step(ctx, traced); err != nil {
			return Timing{}, err
		}
	}
	ds := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		if _, err := p.Step(ctx, traced); err != nil {
			return Timing{}, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return Timing{Median: ds[len(ds)/2], Min: ds[0], Max: ds[len(ds)-1], Runs: runs, Warmup: warmup, Traced: traced}, nil
}
