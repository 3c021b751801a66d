package kernels

import (
	"errors"
	"fmt"
)

// Shape is one decode step's attention shape: Batch sequences, each with
// Heads query heads sharing KVHeads key/value heads (grouped-query attention
// when KVHeads < Heads), head size HeadDim, over a KV cache of Seq positions
// (the current token included).
type Shape struct {
	Batch   int `json:"batch"`
	Heads   int `json:"heads"`
	KVHeads int `json:"kv_heads"`
	HeadDim int `json:"head_dim"`
	Seq     int `json:"seq"`
}

// Limits keep every byte count of a trace inside int64 and every host index
// inside int.
const (
	MaxSeq     = 1 << 26
	MaxHeadDim = 1 << 12
	MaxHeads   = 1 << 12
	MaxBatch   = 1 << 16
)

// Validate checks that the shape is possible.
func (s Shape) Validate() error {
	check := func(name string, v, max int) error {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", name, v)
		}
		if v > max {
			return fmt.Errorf("%s %d exceeds the limit %d", name, v, max)
		}
		return nil
	}
	if err := errors.Join(
		check("batch", s.Batch, MaxBatch),
		check("heads", s.Heads, MaxHeads),
		check("kv-heads", s.KVHeads, MaxHeads),
		check("head-dim", s.HeadDim, MaxHeadDim),
		check("seq", s.Seq, MaxSeq),
	); err != nil {
		return err
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("heads %d is not a multiple of kv-heads %d", s.Heads, s.KVHeads)
	}
	return nil
}

// Group is the number of query heads per KV head.
func (s Shape) Group() int { return s.Heads / s.KVHeads }

// Pairs is the number of (sequence, KV head) pairs, the unit of sampling.
func (s Shape) Pairs() int64 { return int64(s.Batch) * int64(s.KVHeads) }
