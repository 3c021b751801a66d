package sweep

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/hwmodel"
	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

// Grid is what a sweep covers: every method at every shape (sequence
// length × batch × dtype), each priced on every device.
type Grid struct {
	Methods []MethodSpec      `json:"methods"`
	Seqs    []int             `json:"seq"`
	Batches []int             `json:"batch"`
	DTypes  []kernels.DType   `json:"dtype"`
	Impls   []kernels.Impl    `json:"impl"`     // for methods that do not set impl
	Layouts []kernels.KLayout `json:"k_layout"` // for methods with a K layout that do not set one; empty: each method's default
	Heads   int               `json:"heads"`
	KVHeads int               `json:"kv_heads"`
	HeadDim int               `json:"head_dim"`
	// Workload is the synthetic data source; Seed its seed.
	Workload kernels.Workload `json:"workload"`
	Seed     uint64           `json:"seed"`
	// SampleHeads is kernels.Config.SampleHeads (0: automatic).
	SampleHeads int `json:"sample_heads"`
	// AppendKV includes the stage that appends the current token to the
	// cache.
	AppendKV bool `json:"append_kv"`
	// Steps is kernels.Config.Steps: each point simulates this many
	// consecutive decode steps (0 means 1). Rows then price the last step
	// (over seq+Steps−1 positions) and their fidelity is the mean over the
	// steps.
	Steps int `json:"steps,omitempty"`
	// Devices are the device names every point is priced on.
	Devices []string `json:"devices"`
	// Placement overrides where tensors live; see Placement.
	Placement []Placement `json:"placement"`
	// Tradeoff, when set, adds the trade-off view to the outputs (see
	// BuildTradeoff).
	Tradeoff *TradeoffSettings `json:"tradeoff,omitempty"`
}

// TradeoffSettings are the trade-off view's settings.
type TradeoffSettings struct {
	// Device is the device whose predicted speed-ups the view shows; one
	// of the grid's devices.
	Device string `json:"device"`
	// Families are the method list's items (Family.Name), each one line of
	// the view; methods of no family are lines of their own.
	Families []string `json:"families,omitempty"`
}

// DefaultGrid is the paper's kind of figure: Llama-2-7B attention shapes
// (32 heads of 128, fp16) at batch 1 and 64, S from 1K to 128K, dense against
// SparQ at r=32, k=128 and SparQ at 1/8, on an A100, an H100 and a Bow IPU.
func DefaultGrid() Grid {
	return Grid{
		Methods: []MethodSpec{
			{Name: kernels.MethodDense},
			{Name: kernels.MethodSparQ, R: 32, K: 128},
			{Name: kernels.MethodSparQ, Ratio: 1.0 / 8},
		},
		Seqs:     []int{1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17},
		Batches:  []int{1, 64},
		DTypes:   []kernels.DType{kernels.FP16},
		Impls:    []kernels.Impl{kernels.Unfused},
		Heads:    32,
		KVHeads:  32,
		HeadDim:  128,
		Workload: kernels.LLMLike,
		Seed:     1,
		AppendKV: true,
		Devices:  []string{"a100-40gb", "h100-sxm", "ipu-bow"},
	}
}

// Placement is one placement rule, written "[DEVICE:]ROLE=LEVEL": keep
// tensors of ROLE (kv-cache, parameter, input, intermediate, output) in the
// memory level LEVEL, on DEVICE or on every device that has LEVEL. LEVEL
// "auto" restores the default choice (the fastest memory level with room).
//
// Without a rule for kv-cache, IPU devices keep the KV cache in streaming
// memory, as the paper's IPU benchmarks do; other devices use the default.
type Placement struct {
	Device string      // "" for every device that has Level
	Role   traces.Role //
	Level  string      // a memory level name, or "auto"
}

// AutoLevel is the placement level that means the default choice.
const AutoLevel = "auto"

// ParsePlacement parses "[DEVICE:]ROLE=LEVEL".
func ParsePlacement(s string) (Placement, error) {
	lhs, level, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || strings.TrimSpace(level) == "" || strings.TrimSpace(lhs) == "" {
		return Placement{}, fmt.Errorf("placement %q: want [DEVICE:]ROLE=LEVEL, e.g. kv-cache=streaming", s)
	}
	p := Placement{Level: strings.ToLower(strings.TrimSpace(level))}
	role := lhs
	if dev, r, ok := strings.Cut(lhs, ":"); ok {
		p.Device, role = strings.ToLower(strings.TrimSpace(dev)), r
	}
	p.Role = traces.Role(strings.ToLower(strings.TrimSpace(role)))
	if !p.Role.Valid() {
		return Placement{}, fmt.Errorf("placement %q: unknown role %q (want kv-cache, parameter, input, intermediate or output)", s, p.Role)
	}
	return p, nil
}

// String writes the rule back.
func (p Placement) String() string {
	s := string(p.Role) + "=" + p.Level
	if p.Device != "" {
		s = p.Device + ":" + s
	}
	return s
}

// MarshalText writes the rule.
func (p Placement) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a rule.
func (p *Placement) UnmarshalText(b []byte) error {
	q, err := ParsePlacement(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ResolvePlacement turns the rules into a per-device override map for
// roofline.Options.Placement. A rule naming a device that is not in devices,
// a level that no device (or not the named one) has, or a level that cannot
// hold tensors is an error.
func ResolvePlacement(rules []Placement, devices []*hwmodel.Device) (map[string]map[traces.Role]string, error) {
	out := map[string]map[traces.Role]string{}
	byName := map[string]*hwmodel.Device{}
	for _, d := range devices {
		byName[d.Name] = d
		m := map[traces.Role]string{}
		if d.Kind == hwmodel.KindIPU {
			if l, ok := d.Level("streaming"); ok && l.Role == hwmodel.RoleMemory {
				m[traces.RoleKVCache] = "streaming"
			}
		}
		out[d.Name] = m
	}
	var errs []error
	for _, r := range rules {
		targets := devices
		if r.Device != "" {
			d, ok := byName[r.Device]
			if !ok {
				errs = append(errs, fmt.Errorf("placement %s: device %q is not in the sweep (devices: %s)", r, r.Device, strings.Join(sortedKeys(byName), ", ")))
				continue
			}
			targets = []*hwmodel.Device{d}
		}
		matched := 0
		for _, d := range targets {
			if r.Level == AutoLevel {
				delete(out[d.Name], r.Role)
				matched++
				continue
			}
			l, ok := d.Level(r.Level)
			if !ok {
				continue
			}
			if l.Role != hwmodel.RoleMemory {
				errs = append(errs, fmt.Errorf("placement %s: %s's %s is a %s level; tensors live in memory levels", r, d.Name, r.Level, l.Role))
				continue
			}
			out[d.Name][r.Role] = r.Level
			matched++
		}
		if matched == 0 {
			var have []string
			for _, d := range targets {
				for _, l := range d.OrderedLevels() {
					if l.Role == hwmodel.RoleMemory {
						have = append(have, d.Name+":"+l.Name)
					}
				}
			}
			errs = append(errs, fmt.Errorf("placement %s: no device has a memory level %q (memory levels: %s, or auto)", r, r.Level, strings.Join(have, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ParseCounts parses a list of counts: comma-separated items, each a
// number or a range "A..B" (doubling from A while ≤ B), "A..B:*F"
// (multiplying by F) or "A..B:+D" (adding D). parseOne reads one number
// (for example "4096", "32k"). The result is sorted and free of duplicates.
func ParseCounts(items []string, parseOne func(string) (int, error)) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	add := func(n int) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			lo, rest, isRange := strings.Cut(s, "..")
			if !isRange {
				n, err := parseOne(s)
				if err != nil {
					return nil, err
				}
				add(n)
				continue
			}
			hi, step, hasStep := strings.Cut(rest, ":")
			a, err := parseOne(strings.TrimSpace(lo))
			if err != nil {
				return nil, err
			}
			b, err := parseOne(strings.TrimSpace(hi))
			if err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q: end %d is below start %d", s, b, a)
			}
			mul, inc := 2, 0
			if hasStep {
				step = strings.TrimSpace(step)
				switch {
				case strings.HasPrefix(step, "*") || strings.HasPrefix(step, "x"):
					f, err := strconv.Atoi(step[1:])
					if err != nil || f < 2 {
						return nil, fmt.Errorf("range %q: factor %q: want a whole number ≥ 2 after *", s, step[1:])
					}
					mul = f
				case strings.HasPrefix(step, "+"):
					d, err := parseOne(step[1:])
					if err != nil {
						return nil, err
					}
					mul, inc = 1, d
				default:
					return nil, fmt.Errorf("range %q: step %q: want *F (multiply) or +D (add)", s, step)
				}
			}
			const maxItems = 4096
			count := 0
			for n := a; n <= b; {
				add(n)
				if count++; count > maxItems {
					return nil, fmt.Errorf("range %q: more than %d values", s, maxItems)
				}
				next := n*mul + inc
				if next <= n { // overflow
					break
				}
				n = next
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	sort.Ints(out)
	return out, nil
}

// Variant is a method with the sweep's defaults filled in: what one line
// of a figure shows.
type Variant struct {
	Spec MethodSpec
	// Label is Spec.String(), the name in tables and legends.
	Label string
	// Family is the line of the trade-off view the variant belongs to: its
	// method's family in Tradeoff.Families (with the impl or layout the
	// sweep added), or Label.
	Family string
}

// families maps each method of the trade-off families to its family.
func (g Grid) families() map[string]string {
	out := map[string]string{}
	if g.Tradeoff == nil {
		return out
	}
	for _, name := range g.Tradeoff.Families {
		f, err := ExpandMethod(name)
		if err != nil {
			continue // Validate reports it
		}
		for _, m := range f.Methods {
			if _, ok := out[m.String()]; !ok {
				out[m.String()] = f.Name
			}
		}
	}
	return out
}

// Variants expands the methods over the sweep's impls and layouts. Methods
// that set impl (or layout) themselves are not expanded over it; methods
// without a choice of K layout are not expanded over layouts.
func (g Grid) Variants() []Variant {
	var out []Variant
	seen := map[string]bool{}
	fams := g.families()
	for _, m := range g.Methods {
		impls := g.Impls
		if m.Impl != "" || len(impls) == 0 {
			impls = []kernels.Impl{kernels.Unfused}
		}
		layouts := g.Layouts
		if !hasLayout(m.Name) || m.KLayout != "" || len(layouts) == 0 {
			layouts = []kernels.KLayout{""}
		}
		for _, impl := range impls {
			for _, lay := range layouts {
				s := m.withDefaults(impl, lay)
				if seen[s.String()] {
					continue
				}
				seen[s.String()] = true
				v := Variant{Spec: s, Label: s.String(), Family: s.String()}
				if f, ok := fams[m.String()]; ok {
					v.Family = f
					if s.Impl != m.Impl {
						v.Family += ":impl=" + string(s.Impl)
					}
					if s.KLayout != m.KLayout {
						v.Family += ":layout=" + string(s.KLayout)
					}
				}
				out = append(out, v)
			}
		}
	}
	return out
}

// Point is one kernel run of a sweep: a method variant at one shape. Its
// trace is priced on every device.
type Point struct {
	Index   int // position in grid order
	Variant Variant
	Config  kernels.Config
	// Key identifies the point across runs (resume, shards, merge).
	Key string
	// Group identifies the shape: points of one group are compared with
	// each other (speed-ups) and always land in the same shard.
	Group string
}

// shapeKey is everything but the method.
func shapeKey(c kernels.Config) string {
	s := c.Shape
	return fmt.Sprintf("dtype=%s/batch=%d/heads=%d/kv_heads=%d/head_dim=%d/seq=%d/steps=%d/workload=%s/seed=%d/sample=%d/append=%t",
		c.DType, s.Batch, s.Heads, s.KVHeads, s.HeadDim, s.Seq, max(c.Steps, 1), c.Workload, c.Seed, c.SampleHeads, c.Spec.AppendKV)
}

// Points expands the grid in order: dtype, batch, sequence length, method.
func (g Grid) Points() []Point {
	var out []Point
	kv := g.KVHeads
	if kv == 0 {
		kv = g.Heads
	}
	variants := g.Variants()
	for _, dt := range g.DTypes {
		for _, b := range g.Batches {
			for _, s := range g.Seqs {
				shape := kernels.Shape{Batch: b, Heads: g.Heads, KVHeads: kv, HeadDim: g.HeadDim, Seq: s}
				for _, v := range variants {
					c := kernels.Config{
						Shape:       shape,
						Spec:        v.Spec.Spec(shape, g.AppendKV),
						DType:       dt,
						Workload:    g.Workload,
						Seed:        g.Seed,
						SampleHeads: g.SampleHeads,
						Steps:       g.Steps,
					}
					grp := shapeKey(c)
					out = append(out, Point{Index: len(out), Variant: v, Config: c, Group: grp, Key: "method=" + v.Spec.FullString() + "/" + grp})
				}
			}
		}
	}
	return out
}

// MaxPoints bounds the points of one grid (before sharding).
const MaxPoints = 200_000

// Validate checks the grid's own values and every point's configuration
// (kernels.Plan: shapes, parameters, host memory), without running anything.
func (g Grid) Validate() error {
	// Refuse an exploding grid before expanding it: every point holds a
	// configuration and, once run, a row per device.
	n := int64(len(g.Methods)) * int64(len(g.Seqs)) * int64(len(g.Batches)) * int64(max(len(g.DTypes), 1)) *
		int64(max(len(g.Impls), 1)) * int64(max(len(g.Layouts), 1))
	if n > MaxPoints {
		return fmt.Errorf("the grid has up to %d points (%d methods × %d seq × %d batch × %d dtype × %d impl × %d layout), more than the %d a sweep runs: split it with --shard or narrow the ranges",
			n, len(g.Methods), len(g.Seqs), len(g.Batches), max(len(g.DTypes), 1), max(len(g.Impls), 1), max(len(g.Layouts), 1), MaxPoints)
	}
	var errs []error
	if len(g.Methods) == 0 {
		errs = append(errs, errors.New("no methods"))
	}
	if len(g.Seqs) == 0 {
		errs = append(errs, errors.New("no sequence lengths"))
	}
	if len(g.Batches) == 0 {
		errs = append(errs, errors.New("no batch sizes"))
	}
	if len(g.DTypes) == 0 {
		errs = append(errs, errors.New("no dtypes"))
	}
	if len(g.Devices) == 0 {
		errs = append(errs, errors.New("no devices"))
	}
	for _, dt := range g.DTypes {
		if _, err := kernels.ParseDType(string(dt)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, im := range g.Impls {
		if im != kernels.Unfused && im != kernels.Fused {
			errs = append(errs, fmt.Errorf("unknown impl %q (want unfused or fused)", im))
		}
	}
	for _, l := range g.Layouts {
		if l != kernels.KTwice && l != kernels.KOnce {
			errs = append(errs, fmt.Errorf("unknown k-layout %q (want twice or once)", l))
		}
	}
	if _, err := kernels.ParseWorkload(string(g.Workload)); err != nil {
		errs = append(errs, err)
	}
	if g.Steps < 0 {
		errs = append(errs, fmt.Errorf("steps must be positive, got %d", g.Steps))
	}
	if t := g.Tradeoff; t != nil {
		if !slices.Contains(g.Devices, t.Device) {
			errs = append(errs, fmt.Errorf("trade-off device %q is not one of the sweep's devices (%s)", t.Device, strings.Join(g.Devices, ", ")))
		}
		if !slices.ContainsFunc(g.Methods, func(m MethodSpec) bool { return m.Name == kernels.MethodDense }) {
			errs = append(errs, errors.New("the trade-off view compares with dense: add dense to the methods"))
		}
		for _, f := range t.Families {
			if _, err := ExpandMethod(f); err != nil {
				errs = append(errs, fmt.Errorf("trade-off family: %w", err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// One error per distinct problem, not one per point.
	seen := map[string]bool{}
	for _, p := range g.Points() {
		c := p.Config
		c.Workers = 1
		if _, _, err := kernels.Plan(c); err != nil {
			msg := err.Error()
			if !seen[msg] {
				seen[msg] = true
				errs = append(errs, fmt.Errorf("%s at batch %d, seq %d: %w", p.Variant.Label, c.Shape.Batch, c.Shape.Seq, err))
			}
		}
	}
	return errors.Join(errs...)
}
