package traces

import (
	"fmt"
	"slices"
)

// Traffic is what one stage moves for one tensor in one direction once the
// requested extents are folded to a memory level's transfer granularity.
type Traffic struct {
	// Requested is the bytes the kernel asked for.
	Requested int64 `json:"requested"`
	// Moved is the bytes of distinct granules touched: what the level moves
	// when a cache in front of it keeps every granule the stage reuses.
	Moved int64 `json:"moved"`
	// MovedNoReuse is the bytes of granules touched, counted once per run
	// that touches them: what the level moves when nothing is reused between
	// runs (a granule shared by two gathered components is fetched twice).
	MovedNoReuse int64 `json:"moved_no_reuse"`
}

func (x Traffic) add(y Traffic) Traffic {
	return Traffic{x.Requested + y.Requested, x.Moved + y.Moved, x.MovedNoReuse + y.MovedNoReuse}
}

// TensorTraffic is the folded traffic of one tensor in one stage.
type TensorTraffic struct {
	Tensor TensorID `json:"tensor"`
	Read   Traffic  `json:"read"`
	Write  Traffic  `json:"write"`
}

// Fold folds stage i's extents to a granularity of g bytes (g ≥ 1, aligned to
// multiples of g from the start of each tensor) and returns the traffic per
// tensor that the stage touches, scaled to the full shape.
//
// Moved counts each granule once per stage and direction however many
// extents touch it, so a K-once gather that takes several components of the
// same row within one 32-byte sector pays for that sector once.
func (t *Trace) Fold(i int, g int64) ([]TensorTraffic, error) {
	if g <= 0 {
		return nil, fmt.Errorf("fold: granularity %d bytes: must be positive", g)
	}
	st := t.Stages[i]
	type key struct {
		t TensorID
		d Direction
	}
	groups := map[key][]Extent{}
	var order []key
	for _, e := range st.Extents {
		k := key{e.Tensor, e.Dir}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	idx := map[TensorID]int{}
	var out []TensorTraffic
	for _, k := range order {
		tr := foldExtents(groups[k], g)
		tr = Traffic{t.Scale.Apply(tr.Requested), t.Scale.Apply(tr.Moved), t.Scale.Apply(tr.MovedNoReuse)}
		j, ok := idx[k.t]
		if !ok {
			j = len(out)
			idx[k.t] = j
			out = append(out, TensorTraffic{Tensor: k.t})
		}
		if k.d == Write {
			out[j].Write = out[j].Write.add(tr)
		} else {
			out[j].Read = out[j].Read.add(tr)
		}
	}
	slices.SortFunc(out, func(a, b TensorTraffic) int { return int(a.Tensor) - int(b.Tensor) })
	return out, nil
}

// span is a closed range of granule indices.
type span struct{ lo, hi int64 }

// expandLimit is the number of runs Fold expands one by one to find their
// exact union. Beyond it (a K-once gather over a very long sequence) strided
// series are folded by their period instead.
var expandLimit int64 = 1 << 22

// foldExtents folds extents of one tensor and direction. A gather folds as
// the extents it stands for (Extent.Expanded).
//
// Strided series that walk the same rows (same stride, count and first row,
// each run inside one row) describe one gather: a kernel takes a row's runs
// together (one program loads the r components of a key at once), so a
// granule shared by runs of the same row is fetched once even when nothing
// holds the stage's whole footprint. MovedNoReuse therefore counts, for such
// series, the union of granules within each row, once per row.
func foldExtents(xs []Extent, g int64) Traffic {
	var runs int64
	for _, e := range xs {
		runs += e.Runs()
	}
	f := folder{g: g, expand: runs <= expandLimit, rows: map[seriesKey][]span{}}
	for _, e := range xs {
		if e.Index == nil {
			f.add(e)
			continue
		}
		for p := range e.Expanded() {
			f.add(p)
		}
	}
	tr := f.tr
	tr.Moved += unionGranules(f.spans) * g
	for _, k := range f.keys {
		perRow := unionGranules(f.rows[k]) * g * k.count
		tr.MovedNoReuse += perRow
		if !f.expand {
			tr.Moved += perRow
		}
	}
	return tr
}

// seriesKey identifies the rows a strided series walks.
type seriesKey struct{ stride, count, row int64 }

// folder accumulates the fold of one tensor and direction.
type folder struct {
	g      int64
	expand bool // expand strided series run by run
	tr     Traffic
	spans  []span // granules of every run (of series only when expand)
	rows   map[seriesKey][]span
	keys   []seriesKey // rows' keys in order
}

// add folds one extent that is not a gather.
func (f *folder) add(e Extent) {
	g := f.g
	f.tr.Requested += e.Bytes()
	r := e.Repeats()
	first, last := e.Offset/g, (e.Offset+e.Length-1)/g
	if r == 1 {
		f.tr.MovedNoReuse += (last - first + 1) * g
		f.spans = append(f.spans, span{first, last})
		return
	}
	inRow := e.Offset % e.Stride
	periodic := e.Stride%g == 0 && inRow+e.Length <= e.Stride
	if periodic {
		k := seriesKey{e.Stride, r, e.Offset - inRow}
		if _, ok := f.rows[k]; !ok {
			f.keys = append(f.keys, k)
		}
		f.rows[k] = append(f.rows[k], span{inRow / g, (inRow + e.Length - 1) / g})
	} else {
		f.tr.MovedNoReuse += (last - first + 1) * g * r
	}
	switch {
	case f.expand:
		for j := range r {
			off := e.Offset + j*e.Stride
			f.spans = append(f.spans, span{off / g, (off + e.Length - 1) / g})
		}
	case !periodic:
		// Too many runs to expand and no period to exploit: count
		// them without reuse (an upper bound).
		f.tr.Moved += (last - first + 1) * g * r
	}
}

// unionGranules counts the distinct granules covered by spans.
func unionGranules(spans []span) int64 {
	if len(spans) == 0 {
		return 0
	}
	sorted := true
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].lo {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortFunc(spans, func(a, b span) int {
			switch {
			case a.lo < b.lo:
				return -1
			case a.lo > b.lo:
				return 1
			}
			return 0
		})
	}
	var n int64
	cur := spans[0]
	for _, s := range spans[1:] {
		if s.lo <= cur.hi+1 {
			if s.hi > cur.hi {
				cur.hi = s.hi
			}
			continue
		}
		n += cur.hi - cur.lo + 1
		cur = s
	}
	return n + cur.hi - cur.lo + 1
}
