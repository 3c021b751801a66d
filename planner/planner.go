// Package planner answers capacity-planning questions about whole-model
// decoding: how many tokens per second a model gives on one device or a
// tensor-parallel group, with dense attention and with sparse methods side
// by side, what batch fits, and how many devices a target rate needs.
//
// It sits above kernels and roofline: for every batch roofline.Plan asks
// about, it runs one layer's attention for one device's share of heads
// with the real kernel (kernels.Prepare once, then a traced Step per batch,
// on one sampled (sequence, KV head) pair: byte counts are exact under
// sampling) and hands the trace to roofline, which prices it and scales it
// to all layers.
package planner

import (
	"context"
	"errors"
	"fmt"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/sweep"
	"github.com/bwsim/bwsim/traces"
)

// Request is one planning question: a deployment (model, device, group
// size, context length, dtypes, batch, limits) and the methods to compare.
type Request struct {
	roofline.PlanSpec
	// Methods are compared side by side; the first is the reference of
	// the speed-ups (put dense first).
	Methods []sweep.MethodSpec
	// Workload and Seed choose the synthetic data the kernels run on;
	// byte counts do not depend on it. The default is kernels.LLMLike.
	Workload kernels.Workload
	Seed     uint64
	// KernelWorkUnits prices every attention stage with the work units the
	// kernel declares. By default a stage is priced as if it tiled the
	// sequence over thread blocks, at least ⌈S/kernels.ScanChunk⌉ tiles per
	// (sequence, KV head) pair, as compiled PyTorch does (torch.compile
	// turns each op into Triton kernels over all its elements; the paper's
	// gpt-fast end-to-end run) and flash-decoding does for dense. The
	// kernels' unfused SparQ stages declare one program per pair, like the
	// paper's hand-written Triton microbenchmark kernels, which at small
	// batch leaves most of a GPU idle. Bytes are the same either way; only
	// the concurrency Little's law sees differs. (kernels.Spec.Split is not
	// the same thing: it tiles only the stages that scan the sequence.)
	KernelWorkUnits bool
}

// Plan answers req.
func Plan(ctx context.Context, req Request) (*roofline.CapacityPlan, error) {
	m := req.Model
	if m == nil || req.Device == nil {
		return nil, errors.New("plan needs a model and a device")
	}
	if len(req.Methods) == 0 {
		return nil, errors.New("no methods to plan")
	}
	if req.Seq <= 0 {
		return nil, fmt.Errorf("seq must be positive, got %d", req.Seq)
	}
	shard, err := roofline.NewShard(m, req.Devices)
	if err != nil {
		return nil, err
	}
	kvType := m.KVDType
	if req.KVDType != "" {
		kvType = req.KVDType
	}
	dt, err := kernels.ParseDType(kvType)
	if err != nil {
		return nil, fmt.Errorf("kv dtype: %w", err)
	}
	wl := req.Workload
	if wl == "" {
		wl = kernels.LLMLike
	}
	cacheLen := m.CacheLen(req.Seq)
	var methods []roofline.AttentionMethod
	for _, ms := range req.Methods {
		shape := kernels.Shape{Batch: 1, Heads: shard.Heads, KVHeads: shard.KVHeads, HeadDim: m.HeadDim, Seq: cacheLen}
		c := kernels.Config{Shape: shape, Spec: ms.Spec(shape, true), DType: dt, Workload: wl, Seed: req.Seed, SampleHeads: 1}
		if _, _, err := kernels.Plan(c); err != nil {
			return nil, fmt.Errorf("%s: %w", ms, err)
		}
		methods = append(methods, roofline.AttentionMethod{Name: ms.String(), Trace: layerTraces(ctx, c, !req.KernelWorkUnits)})
	}
	return roofline.Plan(req.PlanSpec, methods)
}

// layerTraces returns a source of traces of one layer's attention on one
// device (c at any batch). It generates the data of one sampled (sequence,
// KV head) pair once and reruns the kernel on it at each batch: the trace of
// a larger batch records the same pair and scales it to more pairs, so its
// byte counts are exact. Each trace comes without the fidelity comparison
// Simulate adds. With tile, every stage gets at least one work unit per
// kernels.ScanChunk positions of each pair (see Request.KernelWorkUnits).
func layerTraces(ctx context.Context, c kernels.Config, tile bool) func(batch int) (*traces.Trace, error) {
	var prepared *kernels.Prepared
	return func(batch int) (*traces.Trace, error) {
		if prepared == nil {
			p, err := kernels.Prepare(ctx, c)
			if err != nil {
				return nil, err
			}
			prepared = p
		}
		run := *prepared
		run.Config.Shape.Batch = batch
		if err := run.Config.Shape.Validate(); err != nil {
			return nil, err
		}
		res, err := run.Step(ctx, true)
		if err != nil {
			return nil, err
		}
		if tile {
			tiles := run.Config.Shape.Pairs() * int64((c.Shape.Seq+kernels.ScanChunk-1)/kernels.ScanChunk)
			for i := range res.Trace.Stages {
				res.Trace.Stages[i].WorkUnits = max(res.Trace.Stages[i].WorkUnits, tiles)
			}
		}
		return res.Trace, nil
	}
}
