package roofline

import (
	"fmt"
	"strings"

	"github.com/bwsim/bwsim/models"
	"github.com/bwsim/bwsim/traces"
)

// Shard is the part of a model that one device of a tensor-parallel group
// holds, Megatron-style: every layer's query heads, the MLP's inner columns
// and the vocabulary are split evenly over the group; KV heads are split
// too, or, when there are fewer KV heads than devices, each device keeps a
// copy of the one KV head its query heads read.
type Shard struct {
	// Devices is the size of the group.
	Devices int `json:"devices"`
	// Heads and KVHeads are per device.
	Heads   int `json:"heads"`
	KVHeads int `json:"kv_heads"`
	// KVReplicated is true when devices hold copies of KV heads.
	KVReplicated bool `json:"kv_replicated,omitempty"`
}

// NewShard splits m over a group of devices. The query heads must divide
// evenly, and the KV heads must either divide evenly or divide the group.
func NewShard(m *models.Model, devices int) (Shard, error) {
	if devices < 1 {
		return Shard{}, fmt.Errorf("devices must be at least 1, got %d", devices)
	}
	s := Shard{Devices: devices}
	if m.Heads%devices != 0 {
		return s, fmt.Errorf("%s has %d attention heads, which do not split evenly over %d devices (try %s)",
			m.Name, m.Heads, devices, strings.Join(groupSizes(m), ", "))
	}
	s.Heads = m.Heads / devices
	switch {
	case m.KVHeads%devices == 0:
		s.KVHeads = m.KVHeads / devices
	case devices%m.KVHeads == 0:
		s.KVHeads, s.KVReplicated = 1, true
	default:
		return s, fmt.Errorf("%s has %d KV heads, which neither split evenly over %d devices nor divide them (try %s)",
			m.Name, m.KVHeads, devices, strings.Join(groupSizes(m), ", "))
	}
	return s, nil
}

// groupSizes lists the tensor-parallel group sizes NewShard accepts for m,
// up to 64.
func groupSizes(m *models.Model) []string {
	var out []string
	for n := 1; n <= 64 && n <= m.Heads; n++ {
		if m.Heads%n == 0 && (m.KVHeads%n == 0 || n%m.KVHeads == 0) {
			out = append(out, fmt.Sprint(n))
		}
	}
	return out
}

// cacheUse is what one layer's attention keeps per sequence on one device,
// read from the tensors of a batch-1 trace at the plan's cache length: the
// bytes of each kv-cache tensor (K, V, SparQ's Kᵀ and v̄, whatever a method
// keeps), the bytes per position of those with a sequence dimension ("S" in
// the layout), and the kernel's intermediates between stages (score
// vectors, indices), which live only while the layer runs.
type cacheUse struct {
	tensors       []string           // kv-cache tensors in trace order
	bytes         map[string]float64 // per sequence
	perToken      float64            // bytes per position, over the tensors with a sequence dimension
	intermediates float64
}

func newCacheUse(tr *traces.Trace) cacheUse {
	u := cacheUse{bytes: map[string]float64{}}
	for _, t := range tr.Tensors {
		switch {
		case t.Role == traces.RoleKVCache:
			u.tensors = append(u.tensors, t.Name)
			u.bytes[t.Name] += float64(t.Bytes())
			if n := seqDim(t); n > 0 {
				u.perToken += float64(t.Bytes()) / float64(n)
			}
		case t.Role == traces.RoleIntermediate && !t.OnChip:
			u.intermediates += float64(t.Bytes())
		}
	}
	return u
}

// seqDim is the length of the tensor's sequence dimension (named S in its
// layout), or 0 if it has none.
func seqDim(t traces.Tensor) int64 {
	dims := strings.Split(t.Layout, ",")
	if len(dims) != len(t.Shape) {
		return 0
	}
	for i, d := range dims {
		if strings.TrimSpace(d) == "S" {
			return t.Shape[i]
		}
	}
	return 0
}

// total is the whole cache of one sequence.
func (u cacheUse) total() float64 {
	var n float64
	for _, v := range u.bytes {
		n += v
	}
	return n
}

// activationBytesPerSequence is one device's working activations for one
// sequence during a decode step, reused layer after layer: the residual
// stream and its normalised copy (2·d_model), the device's q, k and v
// ((Heads + 2·KVHeads)·HeadDim), the attention output (Heads·HeadDim), the
// MLP's inner activations (2·ffn/N: gate and up, or up and its
// activation), all in the activation dtype, and the device's slice of the
// logits in fp32 (Vocab/N). Attention intermediates come from the trace.
func activationBytesPerSequence(m *models.Model, s Shard, actElemBytes float64) float64 {
	n := s.Devices
	elems := 2*m.DModel + (s.Heads+2*s.KVHeads)*m.HeadDim + s.Heads*m.HeadDim + ceilDiv(2*m.FFNDim, n)
	return float64(elems)*actElemBytes + 4*float64(ceilDiv(m.Vocab, n))
}

// CommBytesPerStep is what one device of a tensor-parallel group of n
// sends per decode step of batch sequences (ring collectives over its
// link): two all-reduces per layer of the batch's activations,
// batch × d_model elements (after the attention output projection and
// after the MLP's down projection), each sending 2(n−1)/n of the message,
// and one all-gather of the vocabulary-split logits, sending (n−1)/n of
// batch × vocab elements. It is 0 for one device.
func CommBytesPerStep(m *models.Model, n, batch int, actElemBytes float64) float64 {
	if n <= 1 {
		return 0
	}
	f := float64(n-1) / float64(n)
	msg := float64(batch*m.DModel) * actElemBytes
	logits := float64(batch) * float64(m.Vocab) * actElemBytes
	return float64(m.Layers)*2*2*f*msg + f*logits
}

// commSteps is the number of ring steps per decode step, each paying the
// link's latency: 2(n−1) per all-reduce, n−1 for the all-gather.
func commSteps(m *models.Model, n int) int {
	if n <= 1 {
		return 0
	}
	return m.Layers*2*2*(n-1) + (n - 1)
}

// collectives is the number of collective operations per decode step.
func collectives(m *models.Model, n int) int {
	if n <= 1 {
		return 0
	}
	return 2*m.Layers + 1
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
