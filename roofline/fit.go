package roofline

import (
	"errors"
	"fmt"
	"math"

	"github.com/bwsim/bwsim/hwmodel"
)

// LevelSample is one measured call seen through one memory level: the
// bytes the call moves through the level, the transfers that touch it (one
// per stage, each paying the level's set-up cost) and everything else the
// prediction spends. A level's achievable bandwidth and transfer overhead
// are fitted from such samples where the device cannot run
// microbenchmarks (an IPU's streaming memory): its dense streaming calls
// are all transfer.
type LevelSample struct {
	Source          string
	MeasuredSeconds float64
	MovedBytes      int64
	Transfers       int
	// OtherSeconds is the predicted time that does not depend on the
	// level's bandwidth or overhead.
	OtherSeconds float64
}

// NewLevelSample splits prediction p of a call measured at measured seconds
// into what level costs and the rest. Every stage that moves bytes through
// the level must stream at the level's achievable bandwidth (not capped by
// Little's law, not at a kernel class's own rate) and its memory time must
// be the longest of its overlapping work (a stage's fixed overheads add to
// it whatever they are); otherwise the level's figures do not show in the
// call's time and the sample cannot constrain them.
func NewLevelSample(source string, measured float64, p *Prediction, dev *hwmodel.Device, level string) (LevelSample, error) {
	lvl, ok := dev.Levels[level]
	if !ok {
		return LevelSample{}, fmt.Errorf("device %s has no memory level %q", dev.Name, level)
	}
	if !(measured > 0) {
		return LevelSample{}, fmt.Errorf("%s: measured time %g s: must be positive", source, measured)
	}
	if p.HostBound {
		return LevelSample{}, fmt.Errorf("%s: the host, not the device, sets the predicted time", source)
	}
	s := LevelSample{Source: source, MeasuredSeconds: measured, OtherSeconds: p.Seconds}
	for _, st := range p.Stages {
		for _, lt := range st.Levels {
			if lt.Level != level || lt.MovedBytes == 0 {
				continue
			}
			if lt.Bandwidth != lvl.AchievableBandwidth || st.MemorySeconds < max(st.ComputeSeconds, st.LatencySeconds, st.SoftmaxSeconds+st.CopySeconds) {
				return LevelSample{}, fmt.Errorf("%s: stage %s (%s-bound): its %s transfers at %.4g B/s do not set its time", source, st.Name, st.Bound, level, lt.Bandwidth)
			}
			s.MovedBytes += lt.MovedBytes
			s.Transfers++
			s.OtherSeconds -= lt.Seconds + lvl.TransferOverheadSeconds
		}
	}
	if s.MovedBytes == 0 {
		return LevelSample{}, fmt.Errorf("%s: moves no bytes through %s", source, level)
	}
	return s, nil
}

// LevelFit is a level's achievable bandwidth and per-transfer overhead
// fitted to measured calls.
type LevelFit struct {
	Bandwidth               float64 `json:"achievable_bandwidth"`
	TransferOverheadSeconds float64 `json:"transfer_overhead_seconds"`
	Points                  int     `json:"points"`
	// RelErrors are the samples' (predicted − measured) / measured with
	// the fitted figures, in sample order.
	RelErrors []float64 `json:"rel_errors"`
}

// FitLevel fits bandwidth and transfer overhead to samples by least squares
// on the relative error, so that a 2 ms call weighs as much as a 160 ms
// one: the overhead shows only in the short calls. A negative overhead is
// clamped to zero and the bandwidth refitted alone.
func FitLevel(samples []LevelSample) (LevelFit, error) {
	if len(samples) < 2 {
		return LevelFit{}, fmt.Errorf("%d samples: a bandwidth and an overhead need at least 2", len(samples))
	}
	// Predicted/measured = other/t + transfers/t · overhead + bytes/t · (1/bandwidth):
	// regress y = 1 − other/t on a = transfers/t and b = bytes/t.
	var saa, sab, sbb, say, sby float64
	for _, s := range samples {
		t := s.MeasuredSeconds
		a, b, y := float64(s.Transfers)/t, float64(s.MovedBytes)/t, 1-s.OtherSeconds/t
		saa, sab, sbb, say, sby = saa+a*a, sab+a*b, sbb+b*b, say+a*y, sby+b*y
	}
	det := saa*sbb - sab*sab
	var overhead, inv float64
	if det > 1e-12*saa*sbb {
		overhead = (say*sbb - sby*sab) / det
		inv = (sby*saa - say*sab) / det
	}
	if det <= 1e-12*saa*sbb || overhead < 0 {
		overhead, inv = 0, sby/sbb
	}
	if !(inv > 0) || math.IsInf(inv, 0) {
		return LevelFit{}, errors.New("the samples leave no positive bandwidth: the calls are not transfer-bound")
	}
	f := LevelFit{Bandwidth: 1 / inv, TransferOverheadSeconds: overhead, Points: len(samples)}
	for _, s := range samples {
		pred := s.OtherSeconds + float64(s.Transfers)*overhead + float64(s.MovedBytes)*inv
		f.RelErrors = append(f.RelErrors, RelativeError(pred, s.MeasuredSeconds))
	}
	return f, nil
}
