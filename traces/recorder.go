package traces

// Buf records the extents and arithmetic of one work item of one stage (for
// example one (sequence, KV head) pair). Kernels give each goroutine its own
// Buf and hand them to Trace.Append in a fixed order, so recording needs no
// locks. A nil *Buf records nothing: untraced runs pass nil and pay one
// predictable branch per call.
//
// Recording is cheap by construction: a call describes a whole run of bytes
// (or a strided series of runs), never one element, and a run that continues
// the previous one of the same tensor and direction is merged into it.
type Buf struct {
	ext   []Extent
	arith Arith
}

// Reset empties b for reuse, keeping its storage.
func (b *Buf) Reset() {
	if b == nil {
		return
	}
	b.ext = b.ext[:0]
	b.arith = Arith{}
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
func appendMerged(xs []Extent, e Extent) []Extent {
	if e.Count <= 1 && len(xs) > 0 {
		last := &xs[len(xs)-1]
		if last.Tensor == e.Tensor && last.Dir == e.Dir && last.Count <= 1 && last.Offset+last.Length == e.Offset {
			last.Length += e.Length
			return xs
		}
	}
	if e.Count == 0 {
		e.Count = 1
	}
	return append(xs, e)
}
