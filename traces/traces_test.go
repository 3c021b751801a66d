package traces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func sample() *Trace {
	tr := New("test", 2, 4)
	k := tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: 2, Shape: []int64{4, 64, 16}, Layout: "P,S,D"})
	o := tr.AddTensor(Tensor{Name: "out", Role: RoleOutput, ElemBytes: 2, Shape: []int64{4, 16}, Layout: "P,D"})
	s := tr.AddStage("scan", 8)
	var b Buf
	b.Read(k, 0, 1024)
	b.Read(k, 1024, 1024) // adjacent: merges
	b.Strided(Read, k, 2048, 2, 32, 64)
	b.Write(o, 0, 32)
	b.Arith(Arith{MACs: 100, Exps: 3})
	tr.Append(s, &b)
	return tr
}

func TestRecorderMergesAdjacentRuns(t *testing.T) {
	tr := sample()
	ext := tr.Stages[0].Extents
	if len(ext) != 3 {
		t.Fatalf("%d extents, want 3: %+v", len(ext), ext)
	}
	if ext[0].Length != 2048 {
		t.Errorf("merged run %d bytes, want 2048", ext[0].Length)
	}
}

func TestTotalsAreScaled(t *testing.T) {
	tr := sample()
	got := tr.Totals()
	// 2048 + 64·2 read, 32 written, for 2 of 4 pairs: ×2.
	if want := (Totals{ReadBytes: 2 * (2048 + 128), WriteBytes: 64}); got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
	if a := tr.StageArith(0); a.MACs != 200 || a.Exps != 6 {
		t.Errorf("arith %+v not scaled", a)
	}
}

func TestScaleApply(t *testing.T) {
	for _, tc := range []struct {
		s    Scale
		n    int64
		want int64
	}{
		{Scale{1, 1}, 7, 7},
		{Scale{2, 8}, 7, 28},
		{Scale{3, 10}, 3, 10},
		{Scale{5, 128}, 5 * 1024, 128 * 1024},
	} {
		if got := tc.s.Apply(tc.n); got != tc.want {
			t.Errorf("%+v.Apply(%d) = %d, want %d", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestFold(t *testing.T) {
	tr := New("fold", 1, 1)
	k := tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: 2, Shape: []int64{1024}, Layout: "S"})
	s := tr.AddStage("s", 1)
	var b Buf
	b.Read(k, 0, 100)                 // sectors 0..3
	b.Read(k, 10, 20)                 // inside sector 0: reuse
	b.Strided(Read, k, 512, 2, 64, 8) // 8 runs, one sector each
	b.Strided(Read, k, 514, 2, 64, 8) // same sectors as the previous series
	b.Write(k, 2040, 8)               // last sector
	tr.Append(s, &b)
	ft, err := tr.Fold(0, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(ft) != 1 {
		t.Fatalf("%d tensors", len(ft))
	}
	r := ft[0].Read
	if r.Requested != 100+20+16+16 {
		t.Errorf("requested %d", r.Requested)
	}
	if r.Moved != (4+8)*32 {
		t.Errorf("moved %d, want 12 sectors", r.Moved)
	}
	// Without a cache: the plain runs pay 4 + 1 sectors; the two strided
	// series walk the same rows and share each row's sector: 8.
	if r.MovedNoReuse != (4+1+8)*32 {
		t.Errorf("moved without reuse %d, want 13 sectors", r.MovedNoReuse)
	}
	if w := ft[0].Write; w.Moved != 32 || w.Requested != 8 {
		t.Errorf("write %+v", w)
	}
	if _, err := tr.Fold(0, 0); err == nil {
		t.Error("granularity 0 accepted")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tr := sample()
	mm := Matmul{Form: MatmulWeighted, Products: 8, Rows: 4, Keys: 131072, Dim: 128}
	tr.Stages[0].Matmul = &mm
	var buf bytes.Buffer
	if err := Encode(&buf, tr); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals() != tr.Totals() || len(got.Stages[0].Extents) != 3 || got.Scale != tr.Scale {
		t.Errorf("round trip changed the trace: %+v", got)
	}
	if m := got.Stages[0].Matmul; m == nil || *m != mm {
		t.Errorf("matmul after a round trip: %+v, want %+v", m, mm)
	}
}

func TestDecodeRejectsCorruptInput(t *testing.T) {
	var good bytes.Buffer
	if err := Encode(&good, sample()); err != nil {
		t.Fatal(err)
	}
	g := good.String()
	for name, in := range map[string]string{
		"empty":                  "",
		"not json":               "hello",
		"wrong format":           strings.Replace(g, Format, "other", 1),
		"future version":         strings.Replace(g, fmt.Sprintf(`"version":%d`, FormatVersion), `"version":99`, 1),
		"unknown field":          strings.Replace(g, `"method"`, `"bogus":1,"method"`, 1),
		"truncated":              g[:len(g)/2],
		"trailing data":          g + "{}",
		"extent past end":        strings.Replace(g, `"o":0,"n":2048`, `"o":999999,"n":2048`, 1),
		"bad tensor":             strings.Replace(g, `"t":1`, `"t":7`, 1),
		"bad role":               strings.Replace(g, `"role":"output"`, `"role":"weights"`, 1),
		"zero sampled":           strings.Replace(g, `"sampled_pairs":2`, `"sampled_pairs":0`, 1),
		"negative length":        strings.Replace(g, `"o":0,"n":2048`, `"o":0,"n":-5`, 1),
		"no trace":               `{"format":"bwsim-trace","version":1}`,
		"negative loop steps":    strings.Replace(g, `"work_units":`, `"loop_steps":-2,"work_units":`, 1),
		"in flight, no tiles":    strings.Replace(g, `"work_units":`, `"tiles_in_flight":2,"work_units":`, 1),
		"too many in flight":     strings.Replace(g, `"work_units":`, `"tile_loads":4,"tiles_in_flight":9,"work_units":`, 1),
		"block code, no tiles":   strings.Replace(g, `"work_units":`, `"block_instructions":1589,"work_units":`, 1),
		"too many param lines":   strings.Replace(g, `"work_units":`, `"tile_loads":4,"param_lines":513,"work_units":`, 1),
		"gathers without steps":  strings.Replace(g, `"work_units":`, `"loop_gathers":true,"work_units":`, 1),
		"scattered above copied": strings.Replace(g, `"elementwise":`, `"copy_elems":4,"scattered_copy_elems":5,"elementwise":`, 1),
		"matmul form":            strings.Replace(g, `"work_units":`, `"matmul":{"form":"qv","products":8,"rows":4,"keys":1024,"dim":128},"work_units":`, 1),
		"matmul products":        strings.Replace(g, `"work_units":`, `"matmul":{"form":"qk","products":0,"rows":4,"keys":1024,"dim":128},"work_units":`, 1),
		"matmul dim":             strings.Replace(g, `"work_units":`, `"matmul":{"form":"pv","products":8,"rows":4,"keys":1024,"dim":-1},"work_units":`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if in == g {
				t.Fatal("mutation did not apply")
			}
			if _, err := Decode(strings.NewReader(in)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	var good bytes.Buffer
	if err := Encode(&good, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte(`{"format":"bwsim-trace","version":1,"trace":{"method":"x","tensors":[],"stages":[],"scale":{"sampled_pairs":1,"total_pairs":1}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(strings.Replace(good.String(), `"work_units":`, `"matmul":{"form":"pv","products":8,"rows":4,"keys":1024,"dim":128},"work_units":`, 1)))
	for _, name := range []string{"sparq-v1.json", "sparq-v2.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"format":"bwsim-trace","version":2,"trace":{"method":"g","tensors":[{"name":"K","role":"kv-cache","elem_bytes":2,"shape":[64,16],"layout":"S,D"}],` +
		`"stages":[{"name":"s","extents":[{"t":0,"d":0,"o":0,"n":32,"c":1,"p":32,"i":[3,4,9,1]},{"t":0,"d":0,"o":4,"n":2,"s":32,"c":64,"p":2,"i":[0,5,6]}],"arith":{"macs":0,"exps":0,"compares":0,"elementwise":0},"work_units":1}],` +
		`"scale":{"sampled_pairs":1,"total_pairs":2}}}`))
	f.Add([]byte(`{"format":"bwsim-trace","version":2,"trace":{"method":"dense","tensors":[],"stages":[{"name":"attention","extents":[],` +
		`"arith":{"macs":8,"exps":0,"compares":0,"elementwise":0,"tile_macs":1024,"tile_units":2},"work_units":2,"tile_kernel":"flash2"},` +
		`{"name":"combine","extents":[],"arith":{"macs":0,"exps":0,"compares":0,"elementwise":0},"work_units":1,"dependent_loads":8},` +
		`{"name":"approx-scores","extents":[],"arith":{"macs":0,"exps":0,"compares":0,"elementwise":0},"work_units":4,"kernel":"triton","loop_steps":128,"loop_gathers":true}],` +
		`"scale":{"sampled_pairs":1,"total_pairs":4}}}`))
	f.Add([]byte(strings.Replace(good.String(), `"work_units":`, `"tile_loads":16,"tiles_in_flight":2,"work_units":`, 1)))
	f.Add([]byte(strings.Replace(good.String(), `"work_units":`, `"tile_loads":2,"block_instructions":1589,"param_lines":7,"work_units":`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes must be safe to use.
		_ = tr.Totals()
		_ = tr.TensorTotals()
		for i := range tr.Stages {
			if _, err := tr.Fold(i, 32); err != nil {
				t.Fatal(err)
			}
		}
		// Gathers describe exactly their expansion.
		ex := expanded(tr)
		if ex.Totals() != tr.Totals() || ex.ExtentCount() != tr.ExtentCount() {
			t.Fatalf("expansion changes totals %+v → %+v or extent count %d → %d", tr.Totals(), ex.Totals(), tr.ExtentCount(), ex.ExtentCount())
		}
		for i := range tr.Stages {
			a, _ := tr.Fold(i, 32)
			b, _ := ex.Fold(i, 32)
			if !slices.Equal(a, b) {
				t.Fatalf("stage %d folds to %+v, expanded to %+v", i, a, b)
			}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, tr); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(&buf); err != nil {
			t.Fatalf("re-decoding an accepted trace failed: %v", err)
		}
	})
}

// The periodic fold used for very long gathers must agree with the exact
// expansion on a K-once pattern (r components of each of S rows).
func TestFoldPeriodicMatchesExact(t *testing.T) {
	tr := New("gather", 1, 1)
	const S, D, e = 4096, 128, 2
	k := tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: e, Shape: []int64{S, D}, Layout: "S,D"})
	s := tr.AddStage("gather", 1)
	var b Buf
	for _, j := range []int64{0, 1, 5, 17, 18, 40, 64, 127} {
		b.Strided(Read, k, j*e, e, D*e, S)
	}
	tr.Append(s, &b)
	exact, err := tr.Fold(0, 32)
	if err != nil {
		t.Fatal(err)
	}
	saved := expandLimit
	expandLimit = 16
	defer func() { expandLimit = saved }()
	periodic, err := tr.Fold(0, 32)
	if err != nil {
		t.Fatal(err)
	}
	if exact[0] != periodic[0] {
		t.Errorf("periodic fold %+v, exact %+v", periodic[0], exact[0])
	}
	// Components 0,1 | 5 | 17,18 | 40 | 64 | 127 fall in sectors 0,0,0,1,1,2,4,7: 5 distinct.
	if want := int64(5 * 32 * S); exact[0].Read.Moved != want {
		t.Errorf("moved %d, want %d", exact[0].Read.Moved, want)
	}
}

// expanded returns a copy of tr with every gather replaced by the extents it
// stands for.
func expanded(tr *Trace) *Trace {
	c := *tr
	c.Stages = slices.Clone(tr.Stages)
	for i := range c.Stages {
		c.Stages[i].Extents = expandAll(tr.Stages[i].Extents)
	}
	return &c
}

// A version 1 file (written by bwsim before gather extents) still decodes,
// and the same run written as version 2 describes exactly the same extents.
func TestDecodeVersion1(t *testing.T) {
	read := func(name string) *Trace {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return tr
	}
	v1, v2 := read("sparq-v1.json"), read("sparq-v2.json")
	gathers := 0
	for _, st := range v2.Stages {
		for _, e := range st.Extents {
			if e.Gather() {
				gathers++
			}
		}
	}
	if gathers == 0 {
		t.Fatal("the version 2 file has no gathers")
	}
	a, _ := json.Marshal(v1)
	b, _ := json.Marshal(expanded(v2))
	if !bytes.Equal(a, b) {
		t.Errorf("version 2 expands to\n%s\nversion 1 is\n%s", b, a)
	}
	sa, _ := json.Marshal(Summarize(v1))
	sb, _ := json.Marshal(Summarize(v2))
	if !bytes.Equal(sa, sb) {
		t.Errorf("summaries differ:\n%s\n%s", sa, sb)
	}
	// Version 1 has no gather fields.
	data, _ := os.ReadFile(filepath.Join("testdata", "sparq-v2.json"))
	old := strings.Replace(string(data), `"version":2`, `"version":1`, 1)
	if _, err := Decode(strings.NewReader(old)); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("gathers in a version 1 file: %v", err)
	}
}
