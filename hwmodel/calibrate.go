package hwmodel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/blas/blas32"
)

// CalibrateOptions controls Calibrate. Zero fields take the defaults, which
// finish in a few seconds on a small machine.
type CalibrateOptions struct {
	// Workers is the number of goroutines of the multi-threaded tests
	// (default GOMAXPROCS).
	Workers int
	// DRAMBytes is the buffer of the memory tests (default the larger of
	// 256 MiB and 4× the LLC, at most a quarter of the available memory and
	// 4 GiB).
	DRAMBytes int64
	// LLCBytes is the total buffer of the LLC test (default 4× the per-core
	// L2 per worker, at least 1 MiB per worker, at most half the LLC).
	LLCBytes int64
	// Repeats is the number of timed passes of each bandwidth test
	// (default 7).
	Repeats int
	// LatencyHops is the number of dependent loads of each pointer chase
	// (default 1<<20).
	LatencyHops int
	// OverheadReps is the number of fan-out/join repetitions (default 2000).
	OverheadReps int
	// ComputeSeconds is roughly how long each compute-rate test runs
	// (default 0.2 s).
	ComputeSeconds float64
	// Now dates the result (default time.Now).
	Now time.Time
	// Log receives one line per phase; nil for none.
	Log io.Writer
	// ReadKernel, when set, is the read-only reduction the bandwidth tests
	// run over each chunk instead of blas32.Dot (SSE). Callers pass the
	// kernels' own vector loop (kernels.Sum), so the host's bandwidth is
	// what bwsim's kernels reach; Name says which loop was used.
	ReadKernel     func([]float32) float32
	ReadKernelName string
}

// QuickCalibrateOptions are smaller, faster settings (about a second):
// the memory buffer may then be partly cache-resident on hosts with a large
// LLC, which the report notes.
func QuickCalibrateOptions() CalibrateOptions {
	return CalibrateOptions{DRAMBytes: 256 << 20, Repeats: 3, LatencyHops: 1 << 18, OverheadReps: 500, ComputeSeconds: 0.05}
}

// Stats summarises repeated measurements.
type Stats struct {
	Best    float64   `json:"best"`
	Median  float64   `json:"median"`
	Samples []float64 `json:"samples"`
}

func newStats(samples []float64, higherIsBetter bool) Stats {
	s := slices.Clone(samples)
	slices.Sort(s)
	st := Stats{Samples: samples}
	if len(s) == 0 {
		return st
	}
	st.Median = s[len(s)/2]
	if len(s)%2 == 0 {
		st.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if higherIsBetter {
		st.Best = s[len(s)-1]
	} else {
		st.Best = s[0]
	}
	return st
}

// Report is what Calibrate measured. Bandwidths are bytes read per second,
// latencies and overheads seconds, rates operations per second.
type Report struct {
	Date        string `json:"date"`
	CPUModel    string `json:"cpu_model"`
	CPUs        int    `json:"cpus"`
	Workers     int    `json:"workers"`
	LineBytes   int64  `json:"line_bytes"`
	L2Bytes     int64  `json:"l2_bytes"`
	LLCBytes    int64  `json:"llc_bytes"`
	CacheSource string `json:"cache_source"`
	MemoryBytes int64  `json:"memory_bytes"`

	DRAMBufferBytes int64 `json:"dram_buffer_bytes"`
	LLCBufferBytes  int64 `json:"llc_buffer_bytes"`

	// ReadKernel names the read-only reduction of the bandwidth tests.
	ReadKernel string `json:"read_kernel"`
	// ReadBandwidth is a read-only reduction (ReadKernel over each chunk)
	// over the DRAM buffer by all workers.
	ReadBandwidth Stats `json:"read_bandwidth"`
	// SingleReadBandwidth is the same by one goroutine.
	SingleReadBandwidth Stats `json:"single_read_bandwidth"`
	// LLCReadBandwidth is the same over the LLC buffer by all workers.
	LLCReadBandwidth Stats `json:"llc_read_bandwidth"`
	// DRAMLatency and LLCLatency are the time per hop of a random pointer
	// chase over the DRAM buffer (including TLB misses) and the LLC buffer.
	DRAMLatency float64 `json:"dram_latency"`
	LLCLatency  float64 `json:"llc_latency"`
	// StageOverhead is the median time to start one goroutine per worker and
	// join them on a WaitGroup.
	StageOverhead float64 `json:"stage_overhead"`
	// DotRate is the in-cache blas32.Dot rate of all workers, in flop/s
	// (a multiply-add is 2): what Go kernels reach, not the FMA peak of the
	// hardware.
	DotRate Stats `json:"dot_rate"`
	// ExpRate is math.Exp evaluations per second over all workers.
	ExpRate float64 `json:"exp_rate"`

	Notes   []string      `json:"notes"`
	Elapsed time.Duration `json:"elapsed"`
}

// Calibrate measures this host and describes it as the Device "host" (kind
// cpu, levels llc and dram). Every figure's source says it was measured by
// bwsim calibrate, when and on which CPU.
func Calibrate(ctx context.Context, opts CalibrateOptions) (*Device, Report, error) {
	start := time.Now()
	o := opts
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Repeats <= 0 {
		o.Repeats = 7
	}
	if o.LatencyHops <= 0 {
		o.LatencyHops = 1 << 20
	}
	if o.OverheadReps <= 0 {
		o.OverheadReps = 2000
	}
	if o.ComputeSeconds <= 0 {
		o.ComputeSeconds = 0.2
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}

	r := Report{Date: o.Now.Format("2006-01-02"), CPUs: runtime.NumCPU(), Workers: o.Workers}
	r.CPUModel = cpuModel()
	r.ReadKernel = "blas32.Dot (SSE)"
	if o.ReadKernel != nil {
		r.ReadKernel = o.ReadKernelName
		if r.ReadKernel == "" {
			r.ReadKernel = "caller's read loop"
		}
	}
	cache := readCaches()
	r.LineBytes, r.L2Bytes, r.LLCBytes, r.CacheSource = cache.line, cache.l2, cache.llc, cache.source
	if cache.note != "" {
		r.Notes = append(r.Notes, cache.note)
	}
	memTotal, memAvail := readMeminfo()
	r.MemoryBytes = memTotal
	if memTotal <= 0 {
		r.MemoryBytes = 16 << 30
		r.Notes = append(r.Notes, "memory size: /proc/meminfo unreadable, assumed 16 GiB")
	}

	// Buffer sizes.
	dram := o.DRAMBytes
	if dram <= 0 {
		dram = max(256<<20, 4*r.LLCBytes)
		if memAvail > 0 {
			dram = min(dram, memAvail/4)
		}
		dram = min(dram, 4<<30)
	}
	if dram < 4*r.LLCBytes {
		r.Notes = append(r.Notes, fmt.Sprintf("memory buffer %d MiB is under 4x the LLC (%d MiB): the dram figures may include LLC hits",
			dram>>20, r.LLCBytes>>20))
	}
	llcBuf := o.LLCBytes
	if llcBuf <= 0 {
		per := max(int64(1<<20), 4*r.L2Bytes)
		llcBuf = min(per*int64(o.Workers), r.LLCBytes/2)
	}
	lineFloats := max(int(r.LineBytes/4), 1)
	dramFloats := roundUp(int(dram/4), chunkFloats*o.Workers)
	llcFloats := roundUp(int(llcBuf/4), chunkFloats*o.Workers)
	r.DRAMBufferBytes, r.LLCBufferBytes = int64(dramFloats)*4, int64(llcFloats)*4
	rng := rand.New(rand.NewPCG(1, 2))

	logf("calibrate: %s, %d workers; memory tests over %d MiB", r.CPUModel, o.Workers, r.DRAMBufferBytes>>20)
	if err := memoryTests(ctx, &r, o, dramFloats, lineFloats, rng); err != nil {
		return nil, r, err
	}
	logf("calibrate: LLC tests over %d KiB", r.LLCBufferBytes>>10)
	if err := llcTests(ctx, &r, o, llcFloats, lineFloats, rng); err != nil {
		return nil, r, err
	}

	logf("calibrate: stage overhead, %d fan-outs", o.OverheadReps)
	r.StageOverhead = fanOutOverhead(o.Workers, o.OverheadReps)

	logf("calibrate: compute rates")
	r.DotRate = dotRate(o.Workers, o.ComputeSeconds, max(o.Repeats/2, 2))
	r.ExpRate = expRate(o.Workers, o.ComputeSeconds)
	if err := ctx.Err(); err != nil {
		return nil, r, err
	}
	r.Elapsed = time.Since(start)
	d := r.Device()
	if err := d.Validate(); err != nil {
		return nil, r, fmt.Errorf("calibrate: measured figures do not validate: %w", err)
	}
	return d, r, nil
}

// chunkFloats is the length of one blas32.Dot call of the read tests
// (16 KiB), dotted with an L1-resident vector of the same length.
const chunkFloats = 4096

// memoryTests measures read bandwidth (all workers, then one), then memory
// latency, over a buffer of n floats first touched by the workers.
func memoryTests(ctx context.Context, r *Report, o CalibrateOptions, n, lineFloats int, rng *rand.Rand) error {
	buf := make([]float32, n)
	parallel(o.Workers, func(w int) {
		part := split(buf, o.Workers, w)
		for i := range part {
			part[i] = float32(i&1023) * 1e-3
		}
	})
	q := ones(chunkFloats)
	readPass(buf, q, o.Workers, 1, o.ReadKernel) // warm
	var bw []float64
	for i := 0; i < o.Repeats; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		bw = append(bw, readPass(buf, q, o.Workers, 1, o.ReadKernel))
	}
	r.ReadBandwidth = newStats(bw, true)
	bw = nil
	for i := 0; i < max(o.Repeats/2, 2); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		bw = append(bw, readPass(buf, q, 1, 1, o.ReadKernel))
	}
	r.SingleReadBandwidth = newStats(bw, true)

	// The chase's links are not floats a Dot may read (they would be
	// denormals); the buffer is read only as integers from here on. One
	// integer pass over it evicts the links just written.
	hops := min(o.LatencyHops, n/lineFloats)
	start := buildChase(buf, lineFloats, hops, rng)
	evict(buf, o.Workers)
	if err := ctx.Err(); err != nil {
		return err
	}
	r.DRAMLatency = chase(buf, lineFloats, start, hops)
	return nil
}

// llcTests measures bandwidth and latency over a buffer of n floats meant to
// fit in the LLC but not in L2.
func llcTests(ctx context.Context, r *Report, o CalibrateOptions, n, lineFloats int, rng *rand.Rand) error {
	buf := make([]float32, n)
	parallel(o.Workers, func(w int) {
		part := split(buf, o.Workers, w)
		for i := range part {
			part[i] = 1
		}
	})
	q := ones(chunkFloats)
	// Several passes per sample: at least 64 MiB read.
	passes := min(max(int((64<<20)/max(r.LLCBufferBytes, 1)), 1), 4096)
	readPass(buf, q, o.Workers, passes, o.ReadKernel) // warm
	var bw []float64
	for i := 0; i < o.Repeats; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		bw = append(bw, readPass(buf, q, o.Workers, passes, o.ReadKernel))
	}
	r.LLCReadBandwidth = newStats(bw, true)
	hops := n / lineFloats
	start := buildChase(buf, lineFloats, hops, rng)
	chase(buf, lineFloats, start, hops) // one lap to load the lines
	r.LLCLatency = chase(buf, lineFloats, start, hops)
	return nil
}

func ones(n int) []float32 {
	q := make([]float32, n)
	for i := range q {
		q[i] = 1
	}
	return q
}

// Device describes the host from the report.
func (r *Report) Device() *Device {
	tag := fmt.Sprintf("measured by bwsim calibrate %s, %s", r.Date, r.CPUModel)
	dramLat := r.DRAMLatency
	inflight := r.SingleReadBandwidth.Median * dramLat
	return &Device{
		Name:        "host",
		Description: fmt.Sprintf("this machine: %s, %d CPUs, %d workers", r.CPUModel, r.CPUs, r.Workers),
		Kind:        KindCPU,
		Levels: map[string]MemoryLevel{
			"llc": {
				Role: RoleCache, Tier: 0,
				CapacityBytes:       float64(r.LLCBytes),
				PeakBandwidth:       r.LLCReadBandwidth.Best,
				AchievableBandwidth: r.LLCReadBandwidth.Median,
				GranularityBytes:    r.LineBytes,
				LatencySeconds:      r.LLCLatency,
				Source: fmt.Sprintf("%s; capacity from %s; bandwidth best/median of %d passes of a %d-worker %s read over %d KiB; latency: random pointer chase",
					tag, r.CacheSource, len(r.LLCReadBandwidth.Samples), r.Workers, r.ReadKernel, r.LLCBufferBytes>>10),
			},
			"dram": {
				Role: RoleMemory, Tier: 1,
				CapacityBytes:       float64(r.MemoryBytes),
				PeakBandwidth:       r.ReadBandwidth.Best,
				AchievableBandwidth: r.ReadBandwidth.Median,
				GranularityBytes:    r.LineBytes,
				LatencySeconds:      dramLat,
				Source: fmt.Sprintf("%s; capacity MemTotal; peak = best, achievable = median of %d passes of a %d-worker %s read over %d MiB (no datasheet figure for a VM); latency: random pointer chase incl. TLB misses",
					tag, len(r.ReadBandwidth.Samples), r.Workers, r.ReadKernel, r.DRAMBufferBytes>>20),
			},
		},
		Compute: []Compute{
			{Unit: "vector", DType: "fp32", OpsPerSecond: r.DotRate.Best,
				Source: tag + "; in-cache blas32.Dot (SSE asm), all workers: the rate Go kernels reach, not the AVX-512 FMA peak"},
			{Unit: "matrix", DType: "fp32", OpsPerSecond: r.DotRate.Best,
				Source: tag + "; no matrix unit used by Go: same units and rate as vector fp32"},
			{Unit: "special", DType: "fp32", OpsPerSecond: r.ExpRate,
				Source: tag + "; math.Exp calls per second, all workers"},
		},
		Overheads: Overheads{
			LaunchSeconds: r.StageOverhead,
			Source:        tag + fmt.Sprintf("; median time to start %d goroutines and join them (sync.WaitGroup); sync included", r.Workers),
		},
		Concurrency: Concurrency{
			ParallelUnits:            r.Workers,
			WorkUnitsPerParallelUnit: 1,
			InflightBytesPerWorkUnit: inflight,
			Source: tag + fmt.Sprintf("; one goroutine per core; in flight [D] Little's law = single-thread read %.3g B/s x latency %.3g s",
				r.SingleReadBandwidth.Median, dramLat),
		},
	}
}

func roundUp(n, m int) int { return max((n+m-1)/m*m, m) }

// split returns part w of n near-equal parts of s.
func split(s []float32, n, w int) []float32 {
	lo, hi := len(s)*w/n, len(s)*(w+1)/n
	return s[lo:hi]
}

// parallel runs f(0..n-1) on n goroutines and waits.
func parallel(n int, f func(w int)) {
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}

// sink keeps results alive so the compiler cannot drop the work.
var sink atomic.Uint64

// readPass reads buf passes times with n workers (each its own part, chunk
// by chunk, dotted with q) and returns bytes per second.
func readPass(buf, q []float32, n, passes int, readKernel func([]float32) float32) float64 {
	var ready, done sync.WaitGroup
	startGate := make(chan struct{})
	ready.Add(n)
	for w := 0; w < n; w++ {
		done.Go(func() {
			part := split(buf, n, w)
			qv := blas32.Vector{N: len(q), Inc: 1, Data: q}
			ready.Done()
			<-startGate
			var acc float32
			for p := 0; p < passes; p++ {
				for off := 0; off+len(q) <= len(part); off += len(q) {
					if readKernel != nil {
						acc += readKernel(part[off : off+len(q)])
						continue
					}
					acc += blas32.Dot(blas32.Vector{N: len(q), Inc: 1, Data: part[off : off+len(q)]}, qv)
				}
			}
			sink.Add(uint64(math.Float32bits(acc)))
		})
	}
	ready.Wait()
	t := time.Now()
	close(startGate)
	done.Wait()
	return float64(passes) * float64(len(buf)) * 4 / time.Since(t).Seconds()
}

// evict reads buf as integers with n workers.
func evict(buf []float32, n int) {
	parallel(n, func(w int) {
		var acc uint32
		for _, x := range split(buf, n, w) {
			acc += math.Float32bits(x)
		}
		sink.Add(uint64(acc))
	})
}

// buildChase links hops lines of buf, one chosen at random in each of hops
// equal strata, into one random cycle (Sattolo's algorithm). The first
// float32 of each chosen line holds the bits of the next line's index.
// It returns the first line.
func buildChase(buf []float32, lineFloats, hops int, rng *rand.Rand) int {
	lines := len(buf) / lineFloats
	hops = max(min(hops, lines), 1)
	stratum := lines / hops
	pick := make([]uint32, hops)
	for i := range pick {
		pick[i] = uint32(i*stratum + rng.IntN(stratum))
	}
	for i := hops - 1; i > 0; i-- { // Sattolo: a single cycle
		j := rng.IntN(i)
		pick[i], pick[j] = pick[j], pick[i]
	}
	for i := range pick {
		buf[int(pick[i])*lineFloats] = math.Float32frombits(pick[(i+1)%hops])
	}
	return int(pick[0])
}

// chase follows hops links from line start and returns seconds per hop.
func chase(buf []float32, lineFloats, start, hops int) float64 {
	idx := uint32(start)
	t := time.Now()
	for i := 0; i < hops; i++ {
		idx = math.Float32bits(buf[int(idx)*lineFloats])
	}
	el := time.Since(t).Seconds()
	sink.Add(uint64(idx))
	return el / float64(max(hops, 1))
}

// fanOutOverhead is the median time to start n goroutines and join them.
func fanOutOverhead(n, reps int) float64 {
	var counter atomic.Int64
	times := make([]float64, reps)
	for i := range times {
		t := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < n; w++ {
			wg.Go(func() { counter.Add(1) })
		}
		wg.Wait()
		times[i] = time.Since(t).Seconds()
	}
	return newStats(times, false).Median
}

// dotRate measures blas32.Dot on L1-resident vectors (1024 floats each) on
// n workers: flop/s per sample.
func dotRate(n int, seconds float64, samples int) Stats {
	const size = 1024
	// Calibrate the call count so a sample takes about seconds.
	x := make([]float32, size)
	for i := range x {
		x[i] = 1
	}
	xv := blas32.Vector{N: size, Inc: 1, Data: x}
	calls := 1000
	for {
		t := time.Now()
		var acc float32
		for i := 0; i < calls; i++ {
			acc += blas32.Dot(xv, xv)
		}
		sink.Add(uint64(math.Float32bits(acc)))
		if el := time.Since(t).Seconds(); el > 0.01 || calls > 1<<28 {
			calls = max(int(float64(calls)*seconds/el), 1)
			break
		}
		calls *= 4
	}
	var rates []float64
	for s := 0; s < samples; s++ {
		t := time.Now()
		parallel(n, func(int) {
			x := make([]float32, size)
			y := make([]float32, size)
			for i := range x {
				x[i], y[i] = 1, 0.5
			}
			xv := blas32.Vector{N: size, Inc: 1, Data: x}
			yv := blas32.Vector{N: size, Inc: 1, Data: y}
			var acc float32
			for i := 0; i < calls; i++ {
				acc += blas32.Dot(xv, yv)
			}
			sink.Add(uint64(math.Float32bits(acc)))
		})
		rates = append(rates, float64(n)*float64(calls)*2*size/time.Since(t).Seconds())
	}
	return newStats(rates, true)
}

// expRate measures math.Exp evaluations per second on n workers.
func expRate(n int, seconds float64) float64 {
	const size = 1024
	calls := 16
	for {
		t := time.Now()
		expLoop(calls, size)
		if el := time.Since(t).Seconds(); el > 0.01 || calls > 1<<24 {
			calls = max(int(float64(calls)*seconds/el), 1)
			break
		}
		calls *= 4
	}
	t := time.Now()
	parallel(n, func(int) { expLoop(calls, size) })
	return float64(n) * float64(calls) * size / time.Since(t).Seconds()
}

func expLoop(calls, size int) {
	x := make([]float64, size)
	for i := range x {
		x[i] = -float64(i) / float64(size)
	}
	var acc float64
	for c := 0; c < calls; c++ {
		for _, v := range x {
			acc += math.Exp(v)
		}
	}
	sink.Add(math.Float64bits(acc))
}

// cpuModel reads the model name from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH + " CPU (model unknown)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH + " CPU (model unknown)"
}

type cacheInfo struct {
	line, l2, llc int64
	source, note  string
}

// readCaches reads cpu0's caches from sysfs.
func readCaches() cacheInfo {
	const dir = "/sys/devices/system/cpu/cpu0/cache"
	ci := cacheInfo{line: 64, source: dir}
	entries, _ := filepath.Glob(filepath.Join(dir, "index*"))
	bestLevel := 0
	for _, e := range entries {
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(e, name))
			return strings.TrimSpace(string(b))
		}
		if t := read("type"); t != "Unified" && t != "Data" {
			continue
		}
		level, _ := strconv.Atoi(read("level"))
		size := parseSize(read("size"))
		if size <= 0 {
			continue
		}
		if level == 2 {
			ci.l2 = size
		}
		if level > bestLevel {
			bestLevel, ci.llc = level, size
			if l, err := strconv.ParseInt(read("coherency_line_size"), 10, 64); err == nil && l > 0 {
				ci.line = l
			}
		}
	}
	if ci.llc <= 0 {
		ci = cacheInfo{line: 64, l2: 1 << 20, llc: 32 << 20, source: "fallback",
			note: "cache sizes: " + dir + " unreadable; assumed 64-B lines, 1 MiB L2, 32 MiB LLC"}
	}
	if ci.l2 <= 0 {
		ci.l2 = min(1<<20, ci.llc)
	}
	return ci
}

// parseSize reads sysfs sizes such as "48K", "2048K", "491520K", "32M".
func parseSize(s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n * mult
}

// readMeminfo returns MemTotal and MemAvailable in bytes (0 if unknown).
func readMeminfo() (total, avail int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = n << 10
		case "MemAvailable:":
			avail = n << 10
		}
	}
	return total, avail
}
