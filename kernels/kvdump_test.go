package kernels

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"
)

// Writers of the two dump formats, for tests: the files Python's numpy.save
// and safetensors.numpy.save_file would write.

// encodeFloats encodes xs as the given element kind and byte order.
func encodeFloats(xs []float32, kind elemKind, order binary.ByteOrder) []byte {
	b := make([]byte, int64(len(xs))*kind.size())
	for i, x := range xs {
		p := b[int64(i)*kind.size():]
		switch kind {
		case elemF16:
			order.PutUint16(p, float16.Fromfloat32(x).Bits())
		case elemBF16:
			order.PutUint16(p, uint16(math.Float32bits(x)>>16))
		case elemF32:
			order.PutUint32(p, math.Float32bits(x))
		case elemF64:
			order.PutUint64(p, math.Float64bits(float64(x)))
		}
	}
	return b
}

// npyBytes is a .npy file (format 1.0) of a C-ordered array.
func npyBytes(shape []int64, xs []float32, descr string) []byte {
	kind := map[string]elemKind{"f2": elemF16, "f4": elemF32, "f8": elemF64}[descr[1:]]
	var order binary.ByteOrder = binary.LittleEndian
	if descr[0] == '>' {
		order = binary.BigEndian
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	tuple += ")"
	hdr := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	pad := 64 - (10+len(hdr)+1)%64
	hdr += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&buf, binary.LittleEndian, uint16(len(hdr)))
	buf.WriteString(hdr)
	buf.Write(encodeFloats(xs, kind, order))
	return buf.Bytes()
}

type stTensor struct {
	dtype string // F16, BF16, F32, F64
	shape []int64
	data  []float32
}

// safetensorsBytes is a .safetensors file of the tensors, in name order.
func safetensorsBytes(ts map[string]stTensor) []byte {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	slices.Sort(names)
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, n := range names {
		t := ts[n]
		kind := map[string]elemKind{"F16": elemF16, "BF16": elemBF16, "F32": elemF32, "F64": elemF64}[t.dtype]
		enc := encodeFloats(t.data, kind, binary.LittleEndian)
		hdr[n] = map[string]any{"dtype": t.dtype, "shape": t.shape, "data_offsets": []int{len(data), len(data) + len(enc)}}
		data = append(data, enc...)
	}
	h, _ := json.Marshal(hdr)
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(h)))
	buf.Write(h)
	buf.Write(data)
	return buf.Bytes()
}

// dumpTensors lays synthetic pair data out as a dump of one layer: q of
// every position ([B, H, S, D]; positions without a query are zero), k and v.
func dumpTensors(t *testing.T, c Config, layer int) map[string]stTensor {
	t.Helper()
	s := c.Shape
	g, D, Sf := s.Group(), s.HeadDim, c.finalSeq()
	hist, _ := histPositions(c)
	q := make([]float32, s.Batch*s.Heads*Sf*D)
	k := make([]float32, s.Batch*s.KVHeads*Sf*D)
	v := make([]float32, len(k))
	for b := range s.Batch {
		for hk := range s.KVHeads {
			d, err := generate(c.Workload, s, c.DType, c.Seed, b, hk, c.steps(), hist)
			if err != nil {
				t.Fatal(err)
			}
			copy(k[(b*s.KVHeads+hk)*Sf*D:], d.K)
			copy(v[(b*s.KVHeads+hk)*Sf*D:], d.V)
			put := func(src []float32, i, pos int) {
				for h := range g {
					head := hk*g + h
					copy(q[((b*s.Heads+head)*Sf+pos)*D:][:D], src[(i*g+h)*D:(i*g+h+1)*D])
				}
			}
			for i, pos := range hist {
				put(d.QHist, i, int(pos))
			}
			for st := range c.steps() {
				put(d.Q, st, s.Seq-1+st)
			}
		}
	}
	p := fmt.Sprintf("layers.%d.", layer)
	sh := func(h int) []int64 { return []int64{int64(s.Batch), int64(h), int64(Sf), int64(D)} }
	return map[string]stTensor{
		p + "q": {"F32", sh(s.Heads), q},
		p + "k": {"F32", sh(s.KVHeads), k},
		p + "v": {"F32", sh(s.KVHeads), v},
	}
}

func writeNPYDump(t *testing.T, dir string, ts map[string]stTensor) {
	t.Helper()
	for name, x := range ts {
		descr := map[string]string{"F16": "<f2", "F32": "<f4", "F64": "<f8"}[x.dtype]
		if err := os.WriteFile(filepath.Join(dir, name+".npy"), npyBytes(x.shape, x.data, descr), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDumpRoundTrip writes synthetic data as a dump in both formats and
// checks that simulating from the dump gives bit for bit the synthetic run.
func TestDumpRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		shape Shape
		spec  Spec
		steps int
	}{
		{Shape{Batch: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Seq: 40}, Spec{Method: MethodSparQ, R: 4, K: 8, KLayout: KTwice}, 3},
		{Shape{Batch: 1, Heads: 2, KVHeads: 2, HeadDim: 32, Seq: 64}, Spec{Method: MethodH2O, K: 16}, 2},
		{Shape{Batch: 1, Heads: 2, KVHeads: 1, HeadDim: 32, Seq: 33}, Spec{Method: MethodQuest, K: 16, Page: 8}, 1},
	} {
		spec := tc.spec
		spec.Impl, spec.AppendKV = Unfused, true
		synth := Config{Shape: tc.shape, Spec: spec, DType: FP32, Workload: LLMLike, Seed: 9, Steps: tc.steps}
		ts := dumpTensors(t, synth, 3)
		dir := t.TempDir()
		npyDir := filepath.Join(dir, "npy")
		if err := os.Mkdir(npyDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeNPYDump(t, npyDir, ts)
		stFile := filepath.Join(dir, "dump.safetensors")
		if err := os.WriteFile(stFile, safetensorsBytes(ts), 0o644); err != nil {
			t.Fatal(err)
		}
		want := runOutputs(t, synth)
		for _, path := range []string{npyDir, stFile} {
			t.Run(fmt.Sprintf("%s/%s", spec.Method, filepath.Base(path)), func(t *testing.T) {
				info, err := LoadDumpInfo(path)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(info.Layers, []int{3}) || info.Heads != tc.shape.Heads || info.KVHeads != tc.shape.KVHeads ||
					info.HeadDim != tc.shape.HeadDim || info.Seq != synth.finalSeq() || info.Queries != synth.finalSeq() || info.Batch != tc.shape.Batch {
					t.Fatalf("info %+v", info)
				}
				c := synth
				c.Workload, c.Seed, c.KVDump, c.Layer = "", 0, path, 3
				got := runOutputs(t, c)
				for step := range want {
					for i := range want[step] {
						if !slices.Equal(got[step][i].Out, want[step][i].Out) || !slices.Equal(got[step][i].Selected, want[step][i].Selected) {
							t.Fatalf("step %d pair %d: outputs differ from the synthetic run", step, i)
						}
					}
				}
			})
		}
	}
}

func runOutputs(t *testing.T, c Config) [][]PairOutput {
	t.Helper()
	_, res := prepareAndRun(t, c)
	var out [][]PairOutput
	for _, r := range res {
		out = append(out, r.Outputs)
	}
	return out
}

// TestDumpElementTypes reads every supported element type and byte order.
func TestDumpElementTypes(t *testing.T) {
	xs := []float32{0, 1, -2.5, 0.333251953125, 65504, -1e-3}
	shape := []int64{2, 3}
	for _, descr := range []string{"<f2", "<f4", "<f8", ">f2", ">f4", ">f8"} {
		b := npyBytes(shape, xs, descr)
		a, err := parseNPY(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", descr, err)
		}
		checkArray(t, descr, a, xs)
	}
	for _, dt := range []string{"F16", "BF16", "F32", "F64"} {
		b := safetensorsBytes(map[string]stTensor{"x": {dt, shape, xs}, "y": {dt, []int64{1}, xs[:1]}})
		ts, _, err := parseSafetensors(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		checkArray(t, dt, ts["x"], xs)
	}
}

func checkArray(t *testing.T, name string, a *array, want []float32) {
	t.Helper()
	if !slices.Equal(a.shape, []int64{2, 3}) {
		t.Fatalf("%s: shape %v", name, a.shape)
	}
	got := make([]float32, len(want))
	if err := a.read(got, 0, int64(len(want))); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tol := 1e-7
	switch {
	case strings.Contains(name, "f2") || name == "F16":
		tol = 1e-3
	case name == "BF16":
		tol = 1e-2
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*math.Max(1, math.Abs(float64(want[i]))) {
			t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
		}
	}
}

// TestDumpErrors: malformed files and dumps that do not fit the
// configuration are refused with a message that says why.
func TestDumpErrors(t *testing.T) {
	good := npyBytes([]int64{2, 3}, make([]float32, 6), "<f4")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", append([]byte("NUMPY!"), good[6:]...), "bad magic"},
		{"version", append(append([]byte(nil), good[:6]...), append([]byte{9, 0}, good[8:]...)...), "unsupported format version"},
		{"truncated data", good[:len(good)-4], "need 24 bytes of data"},
		{"header too long", append(append([]byte(nil), good[:8]...), 0xff, 0xff), "does not fit"},
		{"int dtype", bytes.Replace(good, []byte("<f4"), []byte("<i4"), 1), "not supported"},
		{"fortran", bytes.Replace(good, []byte("False"), []byte("True "), 1), "Fortran-ordered"},
		{"bad shape", bytes.Replace(good, []byte("(2, 3)"), []byte("(2, x)"), 1), "shape"},
		{"negative dim", bytes.Replace(good, []byte("(2, 3)"), []byte("(-2,3)"), 1), "shape"},
	} {
		t.Run("npy/"+tc.name, func(t *testing.T) {
			_, err := parseNPY(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	st := safetensorsBytes(map[string]stTensor{"a": {"F32", []int64{2}, []float32{1, 2}}, "b": {"F32", []int64{1}, []float32{3}}})
	hdrLen := binary.LittleEndian.Uint64(st)
	hdr := st[8 : 8+hdrLen]
	withHeader := func(h string) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, uint64(len(h)))
		b.WriteString(h)
		b.Write(st[8+hdrLen:])
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", st[:5], "too short"},
		{"header size", append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, st[8:]...), "does not fit"},
		{"not json", withHeader("{nope"), "not a JSON object"},
		{"offsets outside", withHeader(strings.Replace(string(hdr), `"data_offsets":[8,12]`, `"data_offsets":[8,99]`, 1)), "outside"},
		{"shape mismatch", withHeader(strings.Replace(string(hdr), `"shape":[2]`, `"shape":[3]`, 1)), "needs 12 bytes"},
		{"overlap", withHeader(strings.Replace(string(hdr), `"data_offsets":[8,12]`, `"data_offsets":[4,8]`, 1)), "overlap"},
		{"dtype", withHeader(strings.Replace(string(hdr), `"F32"`, `"Q7"`, 1)), "unknown dtype"},
	} {
		t.Run("safetensors/"+tc.name, func(t *testing.T) {
			_, _, err := parseSafetensors(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}

	// Dumps that parse but do not fit together or the configuration.
	base := Config{Shape: Shape{Batch: 1, Heads: 2, KVHeads: 2, HeadDim: 8, Seq: 20}, DType: FP16, Workload: Gaussian, Seed: 1, Steps: 2,
		Spec: Spec{Method: MethodWindow, Impl: Unfused, K: 8, Sinks: 2, AppendKV: true}}
	ts := dumpTensors(t, base, 0)
	write := func(t *testing.T, ts map[string]stTensor) string {
		path := filepath.Join(t.TempDir(), "d.safetensors")
		if err := os.WriteFile(path, safetensorsBytes(ts), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	without := func(name string) map[string]stTensor {
		out := map[string]stTensor{}
		for n, x := range ts {
			if n != name {
				out[n] = x
			}
		}
		return out
	}
	lastQueries := func(n int) map[string]stTensor {
		out := without("layers.0.q")
		q := ts["layers.0.q"]
		S := int(q.shape[2])
		var data []float32
		for h := range 2 {
			data = append(data, q.data[(h*S+S-n)*8:(h*S+S)*8]...)
		}
		out["layers.0.q"] = stTensor{"F32", []int64{2, int64(n), 8}, data}
		return out
	}
	for _, tc := range []struct {
		name string
		ts   map[string]stTensor
		edit func(*Config)
		want string
	}{
		{"no v", without("layers.0.v"), nil, "layer 0 has no v"},
		{"no tensors", map[string]stTensor{"other": ts["layers.0.k"]}, nil, "no tensors named"},
		{"layer", ts, func(c *Config) { c.Layer = 5 }, "has no layer 5 (it has 0)"},
		{"heads", ts, func(c *Config) { c.Shape.Heads, c.Shape.KVHeads = 4, 4 }, "has 2 heads"},
		{"seq", ts, func(c *Config) { c.Shape.Seq = 30 }, "seq 30 and 2 steps need 31"},
		{"batch", ts, func(c *Config) { c.Shape.Batch = 3 }, "batch 3 asks for more"},
		{"queries", lastQueries(1), nil, "needs the query of position 19"},
		{"h2o queries", lastQueries(2), func(c *Config) { c.Spec = Spec{Method: MethodH2O, Impl: Unfused, K: 8, AppendKV: true} }, "h2o needs the query of position 0"},
	} {
		t.Run("dump/"+tc.name, func(t *testing.T) {
			c := base
			c.Workload, c.KVDump = "", write(t, tc.ts)
			if tc.edit != nil {
				tc.edit(&c)
			}
			_, err := Prepare(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// The 3-D form (no batch dimension) with only the queries the steps use.
	c := base
	c.Workload, c.KVDump = "", write(t, lastQueries(2))
	if _, err := Simulate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseNPY feeds arbitrary bytes to the .npy reader: it must refuse or
// describe an array whose data it can then read in full.
func FuzzParseNPY(f *testing.F) {
	f.Add(npyBytes([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}, "<f4"))
	f.Add(npyBytes([]int64{4}, []float32{1, -1, 0.5, 2}, ">f2"))
	f.Add(npyBytes([]int64{1, 1, 2, 1}, []float32{3, 4}, "<f8"))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'shape': (), }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseNPY(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		n, err := numel(a.shape)
		if err != nil {
			t.Fatalf("accepted shape %v: %v", a.shape, err)
		}
		if n > 1<<16 {
			return
		}
		if err := a.read(make([]float32, n), 0, n); err != nil {
			t.Fatalf("accepted %v but cannot read it: %v", a.shape, err)
		}
	})
}

// FuzzParseSafetensors feeds arbitrary bytes to the .safetensors reader: it
// must refuse or describe tensors whose data it can then read in full.
func FuzzParseSafetensors(f *testing.F) {
	f.Add(safetensorsBytes(map[string]stTensor{"layers.0.q": {"F16", []int64{1, 2, 2}, []float32{1, 2, 3, 4}}, "layers.0.k": {"BF16", []int64{2}, []float32{5, 6}}}))
	f.Add(safetensorsBytes(map[string]stTensor{"x": {"F64", []int64{}, []float32{7}}}))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := parseSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for name, a := range ts {
			n, err := numel(a.shape)
			if err != nil {
				t.Fatalf("%s: accepted shape %v: %v", name, a.shape, err)
			}
			if n > 1<<16 {
				continue
			}
			if err := a.read(make([]float32, n), 0, n); err != nil {
				t.Fatalf("%s: accepted %v but cannot read it: %v", name, a.shape, err)
			}
		}
	})
}
