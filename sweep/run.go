package sweep

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/traces"
)

// Options control how a sweep runs.
type Options struct {
	// Jobs is how many points run at once; 0 means GOMAXPROCS. Each point
	// also gets a share of the cores for its own sampled pairs.
	Jobs int
	// Dir is the output directory where the journal lives; "" keeps no
	// journal (nothing can be resumed).
	Dir string
	// Resume keeps the points that the journal in Dir records as finished
	// (priced on the same devices) and runs only the others.
	Resume bool
	// Shard runs one slice of the grid.
	Shard Shard
	// Progress, if set, is called after each point finishes, from one
	// goroutine at a time.
	Progress func(Progress)
	// MemoryBudget bounds the host memory that points running at once may
	// use, in bytes; 0 means 60% of what the machine reports available.
	MemoryBudget int64
}

// Progress reports how far a sweep is.
type Progress struct {
	// Done counts finished points (Resumed of them from the journal); Total
	// is the points of the sweep (or shard).
	Done, Resumed, Total int
	Elapsed              time.Duration
	// Last is the label and shape of the point that just finished.
	Last string
}

// Run runs the grid's points (those of opts.Shard) on the host and prices
// each point's trace on every device. devices must be the grid's devices,
// in order.
//
// When ctx is cancelled, Run stops starting points, abandons the running
// ones and returns the finished rows with an error wrapping ctx.Err(); the
// journal keeps every finished point, so Run with Resume continues where
// it stopped. Results is non-nil whenever the grid was valid.
func Run(ctx context.Context, g Grid, devices []*hwmodel.Device, opts Options) (*Results, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(devices) != len(g.Devices) {
		return nil, fmt.Errorf("sweep: %d devices given for %d device names", len(devices), len(g.Devices))
	}
	for i, d := range devices {
		if d == nil || !strings.EqualFold(d.Name, g.Devices[i]) {
			return nil, fmt.Errorf("sweep: device %d is not %s", i, g.Devices[i])
		}
	}
	place, err := ResolvePlacement(g.Placement, devices)
	if err != nil {
		return nil, err
	}
	res := &Results{Schema: Schema, Grid: g, Shard: opts.Shard.String()}
	fps := map[string]string{}
	for _, d := range devices {
		info := Describe(d)
		res.Devices = append(res.Devices, info)
		fps[d.Name] = info.Fingerprint
	}
	points := opts.Shard.Select(g.Points())
	res.Points = len(points)

	done := map[string]record{}
	var jr *journal
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		var recs []record
		jr, recs, err = openJournal(filepath.Join(opts.Dir, JournalName), res.Shard, opts.Resume)
		if err != nil {
			return nil, err
		}
		defer jr.close()
		want := map[string]bool{}
		for _, p := range points {
			want[p.Key] = true
		}
		for _, r := range recs {
			if want[r.Key] && sameDevices(r.Devices, fps) {
				done[r.Key] = r // a later record of a key wins
			}
		}
	}

	var todo []Point
	for _, p := range points {
		if _, ok := done[p.Key]; !ok {
			todo = append(todo, p)
		}
	}
	ex := &executor{
		devices: devices, place: place, fps: fps, journal: jr,
		progress: opts.Progress, start: time.Now(),
		total: len(points), resumed: len(done), done: done,
	}
	runErr := ex.run(ctx, todo, opts)

	order := map[string]int{}
	for i, p := range points {
		order[p.Key] = i
	}
	devOrder := map[string]int{}
	for i, d := range devices {
		devOrder[d.Name] = i
	}
	keys := make([]string, 0, len(done))
	for k := range done {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return order[keys[i]] < order[keys[j]] })
	for _, k := range keys {
		r := done[k]
		res.Rows = append(res.Rows, r.Rows...)
		res.Traffic = append(res.Traffic, r.Traffic)
	}
	sortRows(res.Rows, order, devOrder)
	ComputeSpeedups(res.Rows)
	res.Done = len(done)
	res.Complete = res.Done == res.Points
	if runErr != nil {
		return res, runErr
	}
	return res, nil
}

func sameDevices(have, want map[string]string) bool {
	for name, fp := range want {
		if have[name] != fp {
			return false
		}
	}
	return true
}

// executor runs points on a pool of goroutines.
type executor struct {
	devices  []*hwmodel.Device
	place    map[string]map[traces.Role]string
	fps      map[string]string
	journal  *journal
	progress func(Progress)
	start    time.Time

	mu      sync.Mutex
	total   int
	resumed int
	done    map[string]record
}

func (ex *executor) run(ctx context.Context, todo []Point, opts Options) error {
	if len(todo) == 0 {
		return nil
	}
	procs := runtime.GOMAXPROCS(0)
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = procs
	}
	jobs = min(jobs, len(todo))
	budget := opts.MemoryBudget
	if budget <= 0 {
		budget = defaultBudget()
	}
	mem := newMemSem(budget)

	// Largest first: the long points start early and small ones fill the
	// gaps at the end.
	costs := make(map[string]int64, len(todo))
	for _, p := range todo {
		costs[p.Key] = pointCost(p)
	}
	sort.SliceStable(todo, func(i, j int) bool { return costs[todo[i].Key] > costs[todo[j].Key] })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		next     int
		nextMu   sync.Mutex
		firstErr error
		errOnce  sync.Once
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for range jobs {
		wg.Go(func() {
			for ctx.Err() == nil {
				nextMu.Lock()
				if next >= len(todo) {
					nextMu.Unlock()
					return
				}
				p := todo[next]
				next++
				remaining := len(todo) - next + 1
				nextMu.Unlock()
				// Cores this point may use for its own pairs: all of them for
				// the last points, one each while every job is busy.
				workers := max(1, procs/min(jobs, remaining))
				rec, err := ex.runPoint(ctx, p, workers, mem)
				if err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("%s at batch %d, seq %d: %w", p.Variant.Label, p.Config.Shape.Batch, p.Config.Shape.Seq, err))
					}
					return
				}
				if ex.journal != nil {
					if err := ex.journal.append(rec); err != nil {
						fail(fmt.Errorf("journal: %w", err))
						return
					}
				}
				ex.finish(p, rec)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil && len(ex.done) < ex.total {
		return fmt.Errorf("interrupted after %d of %d points: %w", len(ex.done), ex.total, context.Cause(ctx))
	}
	return nil
}

func (ex *executor) finish(p Point, rec record) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.done[p.Key] = rec
	if ex.progress != nil {
		ex.progress(Progress{Done: len(ex.done), Resumed: ex.resumed, Total: ex.total, Elapsed: time.Since(ex.start),
			Last: fmt.Sprintf("%s batch=%d seq=%d", p.Variant.Label, p.Config.Shape.Batch, p.Config.Shape.Seq)})
	}
}

// runPoint simulates one point and prices it on every device.
func (ex *executor) runPoint(ctx context.Context, p Point, workers int, mem *memSem) (record, error) {
	c := p.Config
	c.Workers = workers
	_, est, err := kernels.Plan(c)
	if err != nil {
		return record{}, err
	}
	if err := mem.acquire(ctx, est.Total); err != nil {
		return record{}, err
	}
	out, err := kernels.Simulate(ctx, c)
	mem.release(est.Total)
	if err != nil {
		return record{}, err
	}
	rec := record{Key: p.Key, Devices: ex.fps, Traffic: traffic(p, out.Trace)}
	for _, d := range ex.devices {
		row, err := priceRow(p, out, d, ex.place[d.Name])
		if err != nil {
			return record{}, err
		}
		rec.Rows = append(rec.Rows, row)
	}
	return rec, nil
}

// priceRow prices the point's trace on dev. When the tensors do not fit,
// it prices them as if the outermost memory level (and any level the
// placement names) were large enough, and says so.
func priceRow(p Point, out *kernels.Outcome, dev *hwmodel.Device, place map[traces.Role]string) (Row, error) {
	opts := roofline.Options{Placement: place, DType: string(out.Config.DType)}
	fits, note := true, ""
	pred, err := roofline.Predict(out.Trace, dev, opts)
	if err != nil {
		relaxed := relaxCapacity(dev, place)
		var err2 error
		pred, err2 = roofline.Predict(out.Trace, relaxed, opts)
		if err2 != nil {
			return Row{}, err
		}
		fits = false
		note = strings.TrimPrefix(err.Error(), "device "+dev.Name+": ")
	}
	c := out.Config
	s := c.Shape
	sum := traces.Summarize(out.Trace)
	row := Row{
		Key: p.Key, Method: c.Spec.Method, Label: p.Variant.Label,
		R: c.Spec.R, K: c.Spec.K, KLayout: string(c.Spec.KLayout), Impl: string(c.Spec.Impl),
		Realloc: (c.Spec.Method == kernels.MethodSparQ || c.Spec.Method == kernels.MethodTopK) && !c.Spec.NoReallocation,
		Page:    c.Spec.Page, LabelBits: c.Spec.LabelBits, Sinks: c.Spec.Sinks,
		Device: dev.Name, Batch: s.Batch, Seq: s.Seq, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim,
		DType: string(c.DType), Workload: string(c.Workload), Seed: c.Seed, AppendKV: c.Spec.AppendKV, Steps: max(c.Steps, 1),
		Seconds: finite(pred.Seconds), IdealSeconds: finite(pred.IdealSeconds),
		Bytes: sum.ReadBytes + sum.WriteBytes, MovedBytes: pred.MovedBytes,
		Bound: dominantBound(pred), Fits: fits, Note: note, KVLevel: pred.Placement[kernels.TensorK],
		AlphaMean: 1, MassCovered: 1, TopKRecall: 1,
		Scale: sum.Scale, SampledPairs: sum.SampledPairs, TotalPairs: sum.TotalPairs,
	}
	for _, t := range out.Trace.Tensors {
		if t.Role == traces.RoleKVCache && !t.OnChip {
			row.KVCacheBytes += t.Bytes()
		}
	}
	if f := out.Fidelity; f != nil {
		row.RelL2Error, row.AlphaMean, row.MassCovered, row.TopKRecall = finite(f.RelL2Error), finite(f.AlphaMean), finite(f.MassCovered), finite(f.TopKRecall)
	}
	for _, st := range pred.Stages {
		sr := StageRow{Name: st.Name, Seconds: finite(st.Seconds), IdealSeconds: finite(st.IdealSeconds), Bound: string(st.Bound),
			Flops: st.Flops, ArithmeticIntensity: finite(st.ArithmeticIntensity), WorkUnits: st.WorkUnits}
		for _, l := range st.Levels {
			sr.RequestedBytes += l.RequestedBytes
			sr.MovedBytes += l.MovedBytes
		}
		row.Stages = append(row.Stages, sr)
	}
	return row, nil
}

// relaxCapacity returns a copy of dev whose outermost memory level, and the
// levels place names, hold anything.
func relaxCapacity(dev *hwmodel.Device, place map[traces.Role]string) *hwmodel.Device {
	d := dev.Clone()
	outer := ""
	for _, l := range d.OrderedLevels() {
		if l.Role == hwmodel.RoleMemory {
			outer = l.Name
		}
	}
	names := []string{outer}
	for _, n := range place {
		names = append(names, n)
	}
	for _, n := range names {
		if l, ok := d.Levels[n]; ok {
			l.CapacityBytes = math.Inf(1)
			d.Levels[n] = l
		}
	}
	return d
}

// traffic records the trace's bytes by stage and tensor.
func traffic(p Point, tr *traces.Trace) Traffic {
	t := Traffic{Key: p.Key, Label: p.Variant.Label, Batch: p.Config.Shape.Batch, Seq: p.Config.Shape.Seq, DType: string(p.Config.DType)}
	for i, st := range tr.Stages {
		s := StageTraffic{Stage: st.Name}
		for j, x := range tr.StageTensorTotals(i) {
			if x.ReadBytes == 0 && x.WriteBytes == 0 {
				continue
			}
			tn := tr.Tensors[j]
			s.Tensors = append(s.Tensors, TensorTraffic{Tensor: tn.Name, Role: string(tn.Role), ReadBytes: x.ReadBytes, WriteBytes: x.WriteBytes})
		}
		t.Stages = append(t.Stages, s)
	}
	return t
}

// memSem bounds the memory of running points. A point larger than the
// whole budget runs alone.
type memSem struct {
	mu     sync.Mutex
	cond   *sync.Cond
	budget int64
	used   int64
}

func newMemSem(budget int64) *memSem {
	m := &memSem{budget: budget}
	m.cond = sync.NewCond(&m.mu)
	return m
}

func (m *memSem) acquire(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.used > 0 && m.used+n > m.budget {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.cond.Wait()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.used += n
	return nil
}

func (m *memSem) release(n int64) {
	m.mu.Lock()
	m.used -= n
	m.cond.Broadcast()
	m.mu.Unlock()
}

// defaultBudget is 60% of the available memory (Linux MemAvailable), or
// 4 GiB when the machine does not say.
func defaultBudget() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb); err == nil && kb > 0 {
					return kb * 1024 * 6 / 10
				}
			}
		}
	}
	return 4 << 30
}
