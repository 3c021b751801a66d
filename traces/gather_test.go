package traces

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
)

// recOp is one recording call, decoded from bytes so that a fuzz target and
// a seeded random test drive the same checks.
type recOp struct {
	kind                         byte // 0 Read/Write, 1 Strided, 2 Rows, 3 StridedAt
	t                            TensorID
	d                            Direction
	off, n, stride, count, pitch int64
	at                           []int32
}

// byteSrc hands out bytes, zeros once exhausted.
type byteSrc struct {
	b []byte
	i int
}

func (s *byteSrc) next() int64 {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return int64(s.b[s.i-1])
}

func (s *byteSrc) done() bool { return s.i >= len(s.b) }

// decodeOps turns bytes into recording calls on small offsets, so that runs
// continue each other often.
func decodeOps(data []byte) []recOp {
	s := &byteSrc{b: data}
	var ops []recOp
	for !s.done() && len(ops) < 64 {
		h := s.next()
		o := recOp{kind: byte(h % 4), t: TensorID(h / 4 % 2), d: Direction(h / 8 % 2)}
		o.off = s.next()
		o.n = s.next()%32 + 1
		o.stride = o.n + s.next()%16
		o.count = s.next()%4 + 1
		switch p := s.next() % 4; p {
		case 0:
			o.pitch = o.n // rows of a row-major tensor
		case 1:
			o.pitch = o.n + s.next()%8
		case 2:
			o.pitch = s.next() % 24 // may be 0 or shorter than a run
		case 3:
			o.pitch = o.stride * o.count
		}
		k := int(s.next()%12) + 1
		prev := int32(s.next() % 16)
		for range k {
			switch s.next() % 4 {
			case 0, 1:
				prev++ // the next row: contiguous when the pitch is the length
			case 2:
				prev = int32(s.next() % 16)
			}
			o.at = append(o.at, prev)
		}
		ops = append(ops, o)
	}
	return ops
}

// record replays o on b with the gather calls.
func (o recOp) record(b *Buf) {
	switch o.kind {
	case 0:
		if o.d == Write {
			b.Write(o.t, o.off, o.n)
		} else {
			b.Read(o.t, o.off, o.n)
		}
	case 1:
		b.Strided(o.d, o.t, o.off, o.n, o.stride, o.count)
	case 2:
		b.Rows(o.d, o.t, o.off, o.n, o.pitch, o.at)
	case 3:
		b.StridedAt(o.d, o.t, o.off, o.n, o.stride, o.count, o.pitch, o.at)
	}
}

// recordEach replays o on b with a call per copy, as kernels recorded
// gathers before gather extents.
func (o recOp) recordEach(b *Buf) {
	switch o.kind {
	case 2:
		for _, a := range o.at {
			recOp{kind: 0, t: o.t, d: o.d, off: o.off + int64(a)*o.pitch, n: o.n}.record(b)
		}
	case 3:
		for _, a := range o.at {
			b.Strided(o.d, o.t, o.off+int64(a)*o.pitch, o.n, o.stride, o.count)
		}
	default:
		o.record(b)
	}
}

func gatherTrace() *Trace {
	tr := New("gather", 2, 6)
	tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: 1, Shape: []int64{1 << 16}, Layout: "S"})
	tr.AddTensor(Tensor{Name: "V", Role: RoleKVCache, ElemBytes: 1, Shape: []int64{1 << 16}, Layout: "S"})
	tr.AddStage("s", 1)
	return tr
}

func expandAll(xs []Extent) []Extent {
	var out []Extent
	for _, e := range xs {
		out = e.Expand(out)
	}
	return out
}

// checkGatherRecording records ops split over three Bufs (one stage, three
// work items) with gathers and with a call per copy, and checks that the two
// traces describe the same extents: the same expansion, totals, folds,
// summary and JSON round trip.
func checkGatherRecording(t *testing.T, data []byte) {
	ops := decodeOps(data)
	got, want := gatherTrace(), gatherTrace()
	var gb, wb [3]Buf
	for i, o := range ops {
		o.record(&gb[i*3/len(ops)])
		o.recordEach(&wb[i*3/len(ops)])
		gb[i*3/len(ops)].Arith(Arith{MACs: int64(i + 1)})
		wb[i*3/len(ops)].Arith(Arith{MACs: int64(i + 1)})
	}
	for i := range gb {
		if g, w := expandAll(gb[i].Extents()), wb[i].Extents(); !slices.EqualFunc(g, w, Extent.Equal) {
			t.Fatalf("Buf %d expands to\n%+v\nrecording each copy gives\n%+v", i, g, w)
		}
		got.Append(0, &gb[i])
		want.Append(0, &wb[i])
	}
	all := gatherTrace()
	all.AppendAll(0, &gb[0], nil, &gb[1], &gb[2])
	ge, we := got.Stages[0].Extents, want.Stages[0].Extents
	if ae := all.Stages[0].Extents; !slices.EqualFunc(ae, ge, Extent.Equal) || all.Stages[0].Arith != got.Stages[0].Arith {
		t.Fatalf("AppendAll gives\n%+v\nAppend one by one\n%+v", ae, ge)
	}
	if g := expandAll(ge); !slices.EqualFunc(g, we, Extent.Equal) {
		t.Fatalf("trace expands to\n%+v\nrecording each copy gives\n%+v", g, we)
	}
	for _, e := range we {
		if e.Gather() {
			t.Fatalf("recording each copy made a gather %+v", e)
		}
	}
	if err := want.Validate(); err != nil {
		t.Fatalf("reference trace invalid: %v", err)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("gather trace invalid: %v\n%+v", err, ge)
	}
	if g, w := got.Stages[0].Arith, want.Stages[0].Arith; g != w {
		t.Errorf("arith %+v, want %+v", g, w)
	}
	if g, w := got.Totals(), want.Totals(); g != w {
		t.Errorf("totals %+v, want %+v", g, w)
	}
	if g, w := got.ExtentCount(), want.ExtentCount(); g != w {
		t.Errorf("extent count %d, want %d", g, w)
	}
	var gr, wr int64
	for _, e := range ge {
		gr += e.Runs()
	}
	for _, e := range we {
		wr += e.Runs()
	}
	if gr != wr {
		t.Errorf("%d runs, want %d", gr, wr)
	}
	for _, g := range []int64{1, 3, 4, 32, 64} {
		gf, err := got.Fold(0, g)
		if err != nil {
			t.Fatal(err)
		}
		wf, _ := want.Fold(0, g)
		if !slices.Equal(gf, wf) {
			t.Errorf("fold to %d bytes: %+v, want %+v", g, gf, wf)
		}
	}
	gs, _ := json.Marshal(Summarize(got))
	ws, _ := json.Marshal(Summarize(want))
	if !bytes.Equal(gs, ws) {
		t.Errorf("summary %s, want %s", gs, ws)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, got); err != nil {
		t.Fatal(err)
	}
	dec, err := Decode(&buf)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !slices.EqualFunc(dec.Stages[0].Extents, ge, Extent.Equal) {
		t.Errorf("JSON round trip changed the extents")
	}
}

func TestGatherRecordsWhatEachCopyWould(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 3000 {
		data := make([]byte, rng.IntN(400))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		checkGatherRecording(t, data)
		if t.Failed() {
			t.Fatalf("input %x", data)
		}
	}
}

func FuzzGatherRecording(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 8, 0, 0, 0, 5, 3, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 16, 0, 0, 0, 0, 0, 2, 16, 16, 0, 0, 0, 3, 0, 0, 0, 0})
	f.Fuzz(checkGatherRecording)
}

// The cases the recorder has to merge across calls, spelled out.
func TestGatherMergesAtItsEnds(t *testing.T) {
	tr := New("g", 1, 1)
	k := tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: 1, Shape: []int64{4096}, Layout: "S"})
	tr.AddStage("s", 1)
	var b Buf
	b.Read(k, 0, 16)                                                // [0,16)
	b.Rows(Read, k, 0, 16, 16, []int32{1, 2, 9, 4, 7, 12, 3, 5, 6}) // rows 1,2 continue [0,16); 5,6 end the gather
	b.Read(k, 112, 8)                                               // continues row 6: takes rows 5,6 out
	tr.Append(0, &b)
	want := []Extent{
		{Tensor: k, Offset: 0, Length: 48, Count: 1},
		{Tensor: k, Offset: 0, Length: 16, Count: 1, Pitch: 16, Index: []int32{9, 4, 7, 12, 3}},
		{Tensor: k, Offset: 80, Length: 40, Count: 1},
	}
	if got := tr.Stages[0].Extents; !slices.EqualFunc(got, want, Extent.Equal) {
		t.Errorf("extents\n%+v\nwant\n%+v", got, want)
	}
	if end := tr.Stages[0].Extents[1].End(); end != 12*16+16 {
		t.Errorf("the gather ends at %d, want after row 12", end)
	}
	if n := tr.ExtentCount(); n != 7 {
		t.Errorf("%d extents, want 7 (the gather stands for 5)", n)
	}
}

// A gather of a few long blocks is stored as its blocks.
func TestLongBlocksArePlainRuns(t *testing.T) {
	tr := New("g", 1, 1)
	k := tr.AddTensor(Tensor{Name: "K", Role: RoleKVCache, ElemBytes: 1, Shape: []int64{4096}, Layout: "S"})
	tr.AddStage("s", 1)
	var b Buf
	rows := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 100, 101, 102, 103, 104, 105, 106, 107}
	b.Rows(Read, k, 0, 8, 8, rows)
	tr.Append(0, &b)
	want := []Extent{{Tensor: k, Offset: 0, Length: 128, Count: 1}, {Tensor: k, Offset: 800, Length: 64, Count: 1}}
	if got := b.Extents(); !slices.EqualFunc(got, want, Extent.Equal) {
		t.Errorf("Buf holds %+v, want %+v", got, want)
	}
	if got := tr.Stages[0].Extents; !slices.EqualFunc(got, want, Extent.Equal) {
		t.Errorf("trace holds %+v, want %+v", got, want)
	}
	// Scattered rows stay one gather.
	b.Reset()
	b.Rows(Read, k, 0, 8, 8, []int32{3, 9, 4, 30, 31, 12, 60, 2})
	if got := b.Extents(); len(got) != 1 || !got[0].Gather() {
		t.Errorf("Buf holds %+v, want one gather", got)
	}
}

// Reusing a Buf must not change a trace that already took its extents.
func TestAppendCopiesIndices(t *testing.T) {
	tr := gatherTrace()
	var b Buf
	b.Rows(Read, 0, 0, 4, 8, []int32{1, 5, 9, 2})
	tr.Append(0, &b)
	b.Reset()
	b.Rows(Read, 0, 0, 4, 8, []int32{7, 7, 7, 7})
	if got := tr.Stages[0].Extents[0].Index; !slices.Equal(got, []int32{1, 5, 9, 2}) {
		t.Errorf("indices %v after the Buf was reused", got)
	}
}

func TestValidateGather(t *testing.T) {
	for name, e := range map[string]Extent{
		"no indices":         {Offset: 0, Length: 4, Count: 1, Pitch: 4, Index: []int32{}},
		"pitch without":      {Offset: 0, Length: 4, Count: 1, Pitch: 4},
		"zero pitch":         {Offset: 0, Length: 4, Count: 1, Index: []int32{1}},
		"negative index":     {Offset: 0, Length: 4, Count: 1, Pitch: 4, Index: []int32{-1}},
		"past the end":       {Offset: 0, Length: 4, Count: 1, Pitch: 4, Index: []int32{0, 1 << 14}},
		"series past end":    {Offset: 0, Length: 1, Stride: 1024, Count: 64, Pitch: 1, Index: []int32{0, 1024}},
		"huge pitch":         {Offset: 0, Length: 4, Count: 1, Pitch: 1 << 62, Index: []int32{2}},
		"overlapping series": {Offset: 0, Length: 8, Stride: 4, Count: 2, Pitch: 4, Index: []int32{0}},
	} {
		tr := gatherTrace()
		tr.Stages[0].Extents = []Extent{e}
		if err := tr.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, e)
		}
	}
	tr := gatherTrace()
	tr.Stages[0].Extents = []Extent{{Offset: 16, Length: 1, Stride: 256, Count: 256, Pitch: 1, Index: []int32{0, 200, 239}}}
	if err := tr.Validate(); err != nil {
		t.Errorf("gather of the last byte of every row refused: %v", err)
	}
}

func TestValidateArithRows(t *testing.T) {
	for name, a := range map[string]Arith{
		"negative select rows":  {SelectElems: 8, SelectRows: -1},
		"more rows than select": {SelectElems: 2, SelectRows: 3},
		"softmax without exps":  {SoftmaxRows: 1},
		"more softmax rows":     {Exps: 4, SoftmaxRows: 5},
		"negative softmax rows": {Exps: 4, SoftmaxRows: -2},
	} {
		tr := gatherTrace()
		tr.Stages[0].Arith = a
		if err := tr.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, a)
		}
	}
	tr := gatherTrace()
	tr.Stages[0].Arith = Arith{Exps: 4096, SoftmaxRows: 4, SelectElems: 1024, SelectRows: 1}
	if err := tr.Validate(); err != nil {
		t.Errorf("rows within the elements refused: %v", err)
	}
}
