package kernels

import "fmt"

// Impl is how a kernel is structured on the target.
type Impl string

// Implementations.
const (
	// Unfused runs one device-wide stage per step of the algorithm, handing
	// intermediates (scores, indices, α) through device memory, as eager
	// PyTorch and the paper's Triton kernels do.
	Unfused Impl = "unfused"
	// Fused runs the whole step as one stage and keeps intermediates on chip,
	// as flash-decoding does for dense attention.
	Fused Impl = "fused"
)

// KLayout is how a SparQ cache stores K.
type KLayout string

// K layouts.
const (
	// KTwice stores K row-major [S, D] and again S-contiguous [D, S] (the
	// paper's layout, +50% cache memory): step 1 reads r contiguous rows of Kt.
	KTwice KLayout = "twice"
	// KOnce stores K row-major only: step 1 gathers r scattered components of
	// every row.
	KOnce KLayout = "once"
)

// Method names.
const (
	MethodDense = "dense"
	MethodSparQ = "sparq"
)

// Spec selects a kernel and its parameters.
type Spec struct {
	// Method is "dense" or "sparq".
	Method string `json:"method"`
	Impl   Impl   `json:"impl"`
	// R is SparQ's number of query components (clamped to the head size).
	R int `json:"r,omitempty"`
	// K is the number of positions fetched exactly (clamped to the sequence).
	K       int     `json:"k,omitempty"`
	KLayout KLayout `json:"k_layout,omitempty"`
	// NoReallocation turns SparQ's mean-value reallocation off (α ≡ 1, no v̄),
	// as the paper does for its GQA models.
	NoReallocation bool `json:"no_reallocation,omitempty"`
	// AppendKV adds the stage a server runs every step before attention: write
	// the current token's k and v into the cache (both K copies when K is
	// stored twice) and update the running mean v̄.
	AppendKV bool `json:"append_kv"`
}

// Validate checks the spec's own values; Resolve checks them against a shape.
func (s Spec) Validate() error {
	switch s.Impl {
	case Unfused, Fused:
	default:
		return fmt.Errorf("unknown impl %q (want unfused or fused)", s.Impl)
	}
	switch s.Method {
	case MethodDense:
	case MethodSparQ:
		if s.R <= 0 {
			return fmt.Errorf("sparq: r must be positive, got %d", s.R)
		}
		if s.K <= 0 {
			return fmt.Errorf("sparq: k must be positive, got %d", s.K)
		}
		switch s.KLayout {
		case KTwice, KOnce:
		default:
			return fmt.Errorf("unknown k-layout %q (want twice or once)", s.KLayout)
		}
	default:
		return fmt.Errorf("unknown method %q (want dense or sparq)", s.Method)
	}
	return nil
}

// Resolve validates s against shape and returns it with r clamped to the
// head size and k clamped to the sequence length. r larger than the head
// size is an error: a user asking for more components than exist has made a
// mistake, whereas k ≥ S is a legitimate way to ask for dense attention.
func (s Spec) Resolve(shape Shape) (Spec, error) {
	if err := s.Validate(); err != nil {
		return s, err
	}
	if err := shape.Validate(); err != nil {
		return s, err
	}
	if s.Method == MethodSparQ {
		if s.R > shape.HeadDim {
			return s, fmt.Errorf("sparq: r %d exceeds head-dim %d", s.R, shape.HeadDim)
		}
		if s.K > shape.Seq {
			s.K = shape.Seq
		}
	}
	return s, nil
}

// LocalWindow is SparQ's l = k/4 most recent positions (the current token
// included) that are always selected.
func (s Spec) LocalWindow() int { return s.K / 4 }
