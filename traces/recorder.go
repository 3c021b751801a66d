package traces

// Buf records the extents and arithmetic of one work item of one stage (for
// example one (sequence, KV head) pair). Kernels give each goroutine its own
// Buf and hand them to Trace.Append in a fixed order, so recording needs no
// locks. A nil *Buf records nothing: untraced runs pass nil and pay one
// predictable branch per call.
//
// Recording is cheap by construction: a call describes a whole run of bytes
// (or a strided series of runs, or a gather of either at a list of indices),
// never one element or one gathered row, and a run that continues the
// previous one of the same tensor and direction is merged into it.
type Buf struct {
	ext   []Extent
	arith Arith
	// idx holds the gathers' indices.
	idx []int32
}

// Reset empties b for reuse, keeping its storage.
func (b *Buf) Reset() {
	if b == nil {
		return
	}
	b.ext = b.ext[:0]
	b.arith = Arith{}
	b.idx = b.idx[:0]
}

// Read records a read of n bytes of tensor t at byte offset off.
func (b *Buf) Read(t TensorID, off, n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.ext = appendMerged(b.ext, Extent{Tensor: t, Dir: Read, Offset: off, Length: n, Count: 1})
}

// Write records a write of n bytes of tensor t at byte offset off.
func (b *Buf) Write(t TensorID, off, n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.ext = appendMerged(b.ext, Extent{Tensor: t, Dir: Write, Offset: off, Length: n, Count: 1})
}

// Strided records count runs of n bytes, the first at off and each next one
// stride bytes further, in direction d. A run per row of a column gather is
// one call.
func (b *Buf) Strided(d Direction, t TensorID, off, n, stride, count int64) {
	if b == nil || n <= 0 || count <= 0 {
		return
	}
	if count == 1 || stride == n {
		// Consecutive runs are one contiguous run.
		b.ext = appendMerged(b.ext, Extent{Tensor: t, Dir: d, Offset: off, Length: n * count, Count: 1})
		return
	}
	b.ext = append(b.ext, Extent{Tensor: t, Dir: d, Offset: off, Length: n, Stride: stride, Count: count})
}

// Rows records, for each entry a of rows in order, a run of n bytes of
// tensor t at byte offset off + a·pitch, in direction d: the gather of
// len(rows) selected rows of a row-major tensor in one call. The trace is
// the one a Read or Write per row would record (see Extent); rows is copied.
func (b *Buf) Rows(d Direction, t TensorID, off, n, pitch int64, rows []int32) {
	if b == nil || n <= 0 || len(rows) == 0 {
		return
	}
	b.gather(Extent{Tensor: t, Dir: d, Offset: off, Length: n, Count: 1, Pitch: pitch}, rows)
}

// StridedAt records, for each entry a of at in order, the strided series
// Strided(d, t, off + a·pitch, n, stride, count) would record: a gather of
// columns, such as r components of every key row. at is copied.
func (b *Buf) StridedAt(d Direction, t TensorID, off, n, stride, count, pitch int64, at []int32) {
	if b == nil || n <= 0 || count <= 0 || len(at) == 0 {
		return
	}
	if count == 1 || stride == n {
		// Each series is one contiguous run.
		b.Rows(d, t, off, n*count, pitch, at)
		return
	}
	b.gather(Extent{Tensor: t, Dir: d, Offset: off, Length: n, Stride: stride, Count: count, Pitch: pitch}, at)
}

// gather records e at the indices at.
func (b *Buf) gather(e Extent, at []int32) {
	if e.Pitch <= 0 {
		// Not a gather the trace can state: record each copy.
		for _, a := range at {
			c := e
			c.Offset += int64(a) * e.Pitch
			c.Pitch = 0
			b.ext = appendMerged(b.ext, c)
		}
		return
	}
	n := len(b.idx)
	b.idx = append(b.idx, at...)
	e.Index = b.idx[n:len(b.idx):len(b.idx)]
	b.ext = appendGather(b.ext, e, true)
}

// Arith adds arithmetic to the work item.
func (b *Buf) Arith(a Arith) {
	if b == nil {
		return
	}
	b.arith = b.arith.Add(a)
}

// Extents returns what b has recorded so far (shared storage; do not modify).
func (b *Buf) Extents() []Extent {
	if b == nil {
		return nil
	}
	return b.ext
}

// appendMerged appends e, extending the last extent instead when e continues
// it: same tensor, same direction, both plain runs, e starting where the last
// one ends.
//
// Gathers of runs take part as the runs they stand for (Extent.Expanded), so
// that xs always lists what recording every run on its own would have
// listed: a gather whose first run continues the last extent gives that run
// (its first block of contiguous runs) to it (appendGather), and a run that
// continues a gather's last block takes that block out of the gather.
func appendMerged(xs []Extent, e Extent) []Extent {
	if e.Index != nil {
		return appendGather(xs, e, true)
	}
	if e.Count <= 1 && len(xs) > 0 {
		last := &xs[len(xs)-1]
		if last.Tensor == e.Tensor && last.Dir == e.Dir && last.Count <= 1 {
			if last.Index != nil && last.at(len(last.Index)-1)+last.Length == e.Offset {
				xs = splitLastBlock(xs)
				last = &xs[len(xs)-1]
			}
			if last.Index == nil && last.Offset+last.Length == e.Offset {
				last.Length += e.Length
				return xs
			}
		}
	}
	if e.Count == 0 {
		e.Count = 1
	}
	return append(xs, e)
}

// appendGather appends the gather e (a non-empty Index, positive Pitch),
// merging its first block into the last extent as appendMerged describes.
// A gather of runs whose blocks are long is stored as its blocks (see
// worthGather): checked when e is new (recorded now) or lost its first
// block; a gather that was checked when recorded and reaches a trace whole
// is stored as it is.
func appendGather(xs []Extent, e Extent, isNew bool) []Extent {
	if e.Repeats() > 1 {
		// Strided series never merge.
		if len(e.Index) == 1 {
			e.Offset, e.Pitch, e.Index = e.at(0), 0, nil
		}
		return append(xs, e)
	}
	e.Count = 1
	check := isNew
	if len(xs) > 0 {
		last := &xs[len(xs)-1]
		if last.Tensor == e.Tensor && last.Dir == e.Dir && last.Count <= 1 {
			if last.Index != nil && last.at(len(last.Index)-1)+last.Length == e.at(0) {
				xs = splitLastBlock(xs)
				last = &xs[len(xs)-1]
			}
			if last.Index == nil && last.Offset+last.Length == e.at(0) {
				k := e.blockEnd(0)
				last.Length += int64(k) * e.Length
				e.Index = e.Index[k:]
				if len(e.Index) == 0 {
					return xs
				}
				check = true
			}
		}
	}
	// The first block does not continue the last extent (it did and was
	// merged above, or it did not), and blocks do not continue each other:
	// the blocks can be stored as they are.
	if check && !worthGather(e) {
		return e.Expand(xs)
	}
	return append(xs, e)
}

// worthGather reports whether a gather of runs is better stored as a gather
// than as its blocks of contiguous runs: when the blocks are shorter than 8
// runs on average. An index takes a tenth of a plain extent's bytes in JSON
// and less in memory, so a gather of long blocks (Quest's pages, a window's
// sinks and recent tokens) is larger than its blocks, whereas a selection of
// scattered rows (SparQ's top k) is far smaller as one gather.
func worthGather(e Extent) bool {
	idx := e.Index
	blocks := 1
	if e.Pitch == e.Length {
		// Rows of a row-major tensor: adjacent when the indices are.
		for j := 1; j < len(idx); j++ {
			if int64(idx[j]) != int64(idx[j-1])+1 {
				blocks++
			}
		}
	} else {
		for j := 1; j < len(idx); j++ {
			if int64(idx[j])*e.Pitch != int64(idx[j-1])*e.Pitch+e.Length {
				blocks++
			}
		}
	}
	return blocks > 1 && 8*blocks > len(idx)
}

// splitLastBlock takes the last block of contiguous runs out of the gather
// of runs that ends xs and appends it as a plain run.
func splitLastBlock(xs []Extent) []Extent {
	g := xs[len(xs)-1]
	n := len(g.Index)
	j := n - 1
	for j > 0 && g.at(j-1)+g.Length == g.at(j) {
		j--
	}
	tail := Extent{Tensor: g.Tensor, Dir: g.Dir, Offset: g.at(j), Length: int64(n-j) * g.Length, Count: 1}
	xs = xs[:len(xs)-1]
	if j > 0 {
		g.Index = g.Index[:j:j]
		if worthGather(g) {
			xs = append(xs, g)
		} else {
			xs = g.Expand(xs)
		}
	}
	return append(xs, tail)
}
