package kernels

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// KV dumps.
//
// A dump holds, for each dumped layer L, three float tensors (F16, BF16, F32
// or F64), as attention sees them (after the rotary embedding):
//
//	layers.L.q  [B, H, T, D]    the queries of the last T positions
//	layers.L.k  [B, Hkv, S, D]  the key cache
//	layers.L.v  [B, Hkv, S, D]  the value cache
//
// (the batch dimension may be left out when B = 1). It is either one
// .safetensors file with tensors of those names, or a directory holding
// layers.L.q.npy, layers.L.k.npy and layers.L.v.npy. scripts/dump_kv.py
// writes both from a Hugging Face model.
//
// A simulation over Seq positions and Steps steps reads positions
// [0, Seq+Steps−1) of K and V; step t's query is the dumped query of position
// Seq−1+t, so the dump must hold the queries of the last Steps positions at
// least (H2O's prefill wants those of the whole prompt: dump T = S).

// DumpInfo describes a dump without its data.
type DumpInfo struct {
	Path   string `json:"path"`
	Format string `json:"format"` // "safetensors" or "npy"
	Layers []int  `json:"layers"`
	Batch  int    `json:"batch"`
	Heads  int    `json:"heads"`
	// KVHeads and HeadDim are those of K and V.
	KVHeads int `json:"kv_heads"`
	HeadDim int `json:"head_dim"`
	// Seq is the number of cached positions, Queries the number of dumped
	// queries (those of positions [Seq−Queries, Seq)).
	Seq     int `json:"seq"`
	Queries int `json:"queries"`
}

// FirstQuery is the first position whose query the dump holds.
func (d DumpInfo) FirstQuery() int { return d.Seq - d.Queries }

// MiddleLayer is the dumped layer in the middle of the list.
func (d DumpInfo) MiddleLayer() int { return d.Layers[len(d.Layers)/2] }

// Check reports whether configuration c can run on the dump.
func (d DumpInfo) Check(c Config) error {
	s := c.Shape
	if !slices.Contains(d.Layers, c.Layer) {
		return fmt.Errorf("kv-dump %s has no layer %d (it has %s)", d.Path, c.Layer, intList(d.Layers))
	}
	if s.Heads != d.Heads || s.KVHeads != d.KVHeads || s.HeadDim != d.HeadDim {
		return fmt.Errorf("kv-dump %s has %d heads, %d kv-heads of %d; the configuration asks for %d, %d of %d",
			d.Path, d.Heads, d.KVHeads, d.HeadDim, s.Heads, s.KVHeads, s.HeadDim)
	}
	if s.Batch > d.Batch {
		return fmt.Errorf("kv-dump %s has %d sequences, batch %d asks for more", d.Path, d.Batch, s.Batch)
	}
	if c.finalSeq() > d.Seq {
		return fmt.Errorf("kv-dump %s has %d positions; seq %d and %d steps need %d", d.Path, d.Seq, s.Seq, c.steps(), c.finalSeq())
	}
	first := s.Seq - 1
	if hist, _ := histPositions(c); len(hist) > 0 {
		first = min(first, int(hist[0]))
	}
	if first < d.FirstQuery() {
		return fmt.Errorf("kv-dump %s holds the queries of positions %d to %d; %s needs the query of position %d (dump more queries, or raise seq)",
			d.Path, d.FirstQuery(), d.Seq-1, c.Spec.Method, first)
	}
	return nil
}

func intList(xs []int) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(x))
	}
	return b.String()
}

var dumpName = regexp.MustCompile(`^layers\.(\d+)\.([qkv])$`)

// Dump is an open dump.
type Dump struct {
	Info   DumpInfo
	files  []*os.File
	arrays map[int][3]*array // layer → q, k, v
}

// LoadDumpInfo reads a dump's headers.
func LoadDumpInfo(path string) (DumpInfo, error) {
	d, err := OpenDump(path)
	if err != nil {
		return DumpInfo{}, err
	}
	defer d.Close()
	return d.Info, nil
}

// OpenDump opens a dump and checks that its tensors fit together.
func OpenDump(path string) (*Dump, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("kv-dump: %w", err)
	}
	d := &Dump{Info: DumpInfo{Path: path}, arrays: map[int][3]*array{}}
	found := map[string]*array{}
	if st.IsDir() {
		d.Info.Format = "npy"
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("kv-dump: %w", err)
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".npy")
			if !ok || !dumpName.MatchString(name) {
				continue
			}
			f, err := os.Open(filepath.Join(path, e.Name()))
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("kv-dump: %w", err)
			}
			d.files = append(d.files, f)
			fi, err := f.Stat()
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("kv-dump: %w", err)
			}
			a, err := parseNPY(f, fi.Size())
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("kv-dump %s: %w", e.Name(), err)
			}
			found[name] = a
		}
	} else {
		d.Info.Format = "safetensors"
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("kv-dump: %w", err)
		}
		d.files = append(d.files, f)
		ts, _, err := parseSafetensors(f, st.Size())
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("kv-dump %s: %w", path, err)
		}
		for name, a := range ts {
			if dumpName.MatchString(name) {
				found[name] = a
			}
		}
	}
	if err := d.assemble(found); err != nil {
		d.Close()
		return nil, fmt.Errorf("kv-dump %s: %w", path, err)
	}
	return d, nil
}

// assemble groups the tensors by layer and checks their shapes.
func (d *Dump) assemble(found map[string]*array) error {
	for name, a := range found {
		m := dumpName.FindStringSubmatch(name)
		layer, err := strconv.Atoi(m[1])
		if err != nil || layer > 1<<20 {
			return fmt.Errorf("tensor %s: layer number out of range", name)
		}
		t := d.arrays[layer]
		t[strings.Index("qkv", m[2])] = a
		d.arrays[layer] = t
	}
	if len(d.arrays) == 0 {
		return errors.New("no tensors named layers.L.q, layers.L.k, layers.L.v")
	}
	first := true
	for layer, t := range d.arrays {
		for i, a := range t {
			if a == nil {
				return fmt.Errorf("layer %d has no %s", layer, "qkv"[i:i+1])
			}
			switch len(a.shape) {
			case 3:
				a.shape = append([]int64{1}, a.shape...)
			case 4:
			default:
				return fmt.Errorf("layers.%d.%s has shape %v: want [B, heads, positions, head-dim] or [heads, positions, head-dim]", layer, "qkv"[i:i+1], a.shape)
			}
		}
		q, k, v := t[0].shape, t[1].shape, t[2].shape
		if !slices.Equal(k, v) {
			return fmt.Errorf("layer %d: k %v and v %v differ in shape", layer, k, v)
		}
		if q[0] != k[0] || q[3] != k[3] {
			return fmt.Errorf("layer %d: q %v and k %v differ in batch or head-dim", layer, q, k)
		}
		if q[2] > k[2] {
			return fmt.Errorf("layer %d: %d queries but %d cached positions", layer, q[2], k[2])
		}
		info := DumpInfo{Batch: int(k[0]), Heads: int(q[1]), KVHeads: int(k[1]), HeadDim: int(k[3]), Seq: int(k[2]), Queries: int(q[2])}
		shape := Shape{Batch: info.Batch, Heads: info.Heads, KVHeads: info.KVHeads, HeadDim: info.HeadDim, Seq: info.Seq}
		if err := shape.Validate(); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		if info.Queries < 1 {
			return fmt.Errorf("layer %d has no queries", layer)
		}
		if first {
			info.Path, info.Format = d.Info.Path, d.Info.Format
			d.Info = info
			first = false
		} else if info.Batch != d.Info.Batch || info.Heads != d.Info.Heads || info.KVHeads != d.Info.KVHeads ||
			info.HeadDim != d.Info.HeadDim || info.Seq != d.Info.Seq || info.Queries != d.Info.Queries {
			return fmt.Errorf("layers differ in shape (layer %d: q %v, k %v)", layer, q, k)
		}
		d.Info.Layers = append(d.Info.Layers, layer)
	}
	slices.Sort(d.Info.Layers)
	return nil
}

// Close closes the dump's files.
func (d *Dump) Close() error {
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	d.files = nil
	return errors.Join(errs...)
}

// Pair reads pair (b, hk) of layer c.Layer for configuration c: the cache up
// to the last step, each step's queries and the queries of the positions
// hist, rounded to c.DType.
func (d *Dump) Pair(c Config, b, hk int, hist []int32) (*PairData, error) {
	if err := d.Info.Check(c); err != nil {
		return nil, err
	}
	t := d.arrays[c.Layer]
	g, D, Sf, T := c.Shape.Group(), c.Shape.HeadDim, c.finalSeq(), c.steps()
	S, H, Hkv, Tq := int64(d.Info.Seq), int64(d.Info.Heads), int64(d.Info.KVHeads), int64(d.Info.Queries)
	p := &PairData{Q: make([]float32, T*g*D), K: make([]float32, Sf*D), V: make([]float32, Sf*D), HistWeight: 1}
	row := (int64(b)*Hkv + int64(hk)) * S * int64(D)
	if err := t[1].read(p.K, row, int64(Sf*D)); err != nil {
		return nil, fmt.Errorf("kv-dump layers.%d.k: %w", c.Layer, err)
	}
	if err := t[2].read(p.V, row, int64(Sf*D)); err != nil {
		return nil, fmt.Errorf("kv-dump layers.%d.v: %w", c.Layer, err)
	}
	readQ := func(dst []float32, pos int) error {
		for h := range g {
			head := int64(hk*g + h)
			i := ((int64(b)*H+head)*Tq + int64(pos) - (S - Tq)) * int64(D)
			if err := t[0].read(dst[h*D:(h+1)*D], i, int64(D)); err != nil {
				return fmt.Errorf("kv-dump layers.%d.q: %w", c.Layer, err)
			}
		}
		return nil
	}
	for s := range T {
		if err := readQ(p.Q[s*g*D:(s+1)*g*D], c.Shape.Seq-1+s); err != nil {
			return nil, err
		}
	}
	if len(hist) > 0 {
		p.QHist = make([]float32, len(hist)*g*D)
		p.HistPos = append([]int32(nil), hist...)
		for i, pos := range hist {
			if err := readQ(p.QHist[i*g*D:(i+1)*g*D], int(pos)); err != nil {
				return nil, err
			}
		}
	}
	for _, xs := range [][]float32{p.Q, p.K, p.V, p.QHist} {
		for _, x := range xs {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("kv-dump layer %d pair (%d, %d): non-finite value", c.Layer, b, hk)
			}
		}
		c.DType.RoundSlice(xs)
	}
	return p, nil
}
