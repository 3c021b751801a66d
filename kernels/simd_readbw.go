package kernels

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// sumGo is the portable sum of xs with eight accumulators.
func sumGo(xs []float32) float32 {
	var s [8]float32
	i := 0
	for ; i+8 <= len(xs); i += 8 {
		x := xs[i : i+8 : i+8]
		s[0] += x[0]
		s[1] += x[1]
		s[2] += x[2]
		s[3] += x[3]
		s[4] += x[4]
		s[5] += x[5]
		s[6] += x[6]
		s[7] += x[7]
	}
	for ; i < len(xs); i++ {
		s[0] += xs[i]
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

// ReadBandwidth measures the host's read bandwidth the way the kernels
// read: workers goroutines (0: GOMAXPROCS) each sum their contiguous part
// of a float32 buffer of about bytes bytes with the widest vector loads the
// host has (SIMD()), started together. The workers first-touch their parts;
// one untimed pass warms the buffer. It returns the bytes per second of
// each of repeats timed passes. A buffer larger than the last-level cache
// measures memory; a smaller one measures the cache.
func ReadBandwidth(ctx context.Context, bytes int64, workers, repeats int) ([]float64, error) {
	if bytes < 4 {
		return nil, fmt.Errorf("read bandwidth: buffer of %d bytes is too small", bytes)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := int(bytes / 4)
	buf := make([]float32, n)
	part := func(w int) []float32 { return buf[n*w/workers : n*(w+1)/workers] }
	pass := func(fill bool) time.Duration {
		var ready, done sync.WaitGroup
		gate := make(chan struct{})
		sums := make([]float32, workers)
		ready.Add(workers)
		for w := range workers {
			done.Go(func() {
				p := part(w)
				ready.Done()
				<-gate
				if fill {
					for i := range p {
						p[i] = float32(i&1023) * 0x1p-10
					}
					return
				}
				sums[w] = sumAt(hostSIMD, p)
			})
		}
		ready.Wait()
		start := time.Now()
		close(gate)
		done.Wait()
		el := time.Since(start)
		runtime.KeepAlive(sums)
		return el
	}
	pass(true)
	pass(false)
	out := make([]float64, 0, max(repeats, 1))
	for range max(repeats, 1) {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		el := pass(false).Seconds()
		out = append(out, float64(n)*4/math.Max(el, 1e-9))
	}
	return out, nil
}
