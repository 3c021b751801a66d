package traces

// TensorSummary is one tensor's traffic over the whole step.
type TensorSummary struct {
	Name       string  `json:"name"`
	Role       Role    `json:"role"`
	ElemBytes  int     `json:"elem_bytes"`
	Shape      []int64 `json:"shape"`
	Layout     string  `json:"layout"`
	OnChip     bool    `json:"on_chip,omitempty"`
	SizeBytes  int64   `json:"size_bytes"`
	ReadBytes  int64   `json:"read_bytes"`
	WriteBytes int64   `json:"write_bytes"`
}

// StageSummary is one stage's traffic and arithmetic. Extents counts the
// stage's extents with each gather as the extents it stands for
// (Stage.ExtentCount).
type StageSummary struct {
	Name       string `json:"name"`
	ReadBytes  int64  `json:"read_bytes"`
	WriteBytes int64  `json:"write_bytes"`
	WorkUnits  int64  `json:"work_units"`
	Extents    int    `json:"extents"`
	Arith      Arith  `json:"arith"`
}

// Summary is the part of a trace people read: totals per tensor and stage,
// scaled to the full shape.
type Summary struct {
	Method       string          `json:"method"`
	Tensors      []TensorSummary `json:"tensors"`
	Stages       []StageSummary  `json:"stages"`
	ReadBytes    int64           `json:"read_bytes"`
	WriteBytes   int64           `json:"write_bytes"`
	Scale        float64         `json:"scale"`
	SampledPairs int64           `json:"sampled_pairs"`
	TotalPairs   int64           `json:"total_pairs"`
}

// Summarize totals t per tensor and per stage.
func Summarize(t *Trace) Summary {
	s := Summary{Method: t.Method, Scale: t.Scale.Factor(), SampledPairs: t.Scale.Sampled, TotalPairs: t.Scale.Total}
	for i, x := range t.TensorTotals() {
		tn := t.Tensors[i]
		s.Tensors = append(s.Tensors, TensorSummary{Name: tn.Name, Role: tn.Role, ElemBytes: tn.ElemBytes, Shape: tn.Shape,
			Layout: tn.Layout, OnChip: tn.OnChip, SizeBytes: tn.Bytes(), ReadBytes: x.ReadBytes, WriteBytes: x.WriteBytes})
	}
	for i, st := range t.Stages {
		x := t.StageTotals(i)
		s.Stages = append(s.Stages, StageSummary{Name: st.Name, ReadBytes: x.ReadBytes, WriteBytes: x.WriteBytes,
			WorkUnits: st.WorkUnits, Extents: st.ExtentCount(), Arith: t.StageArith(i)})
	}
	tot := t.Totals()
	s.ReadBytes, s.WriteBytes = tot.ReadBytes, tot.WriteBytes
	return s
}
