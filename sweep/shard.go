package sweep

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/kernels"
)

// Shard selects a slice of a sweep, so that a cluster's job runner can run
// a large sweep as n jobs and join their outputs with Merge. The zero value
// is the whole sweep.
type Shard struct {
	Index int // 1-based
	Count int
}

// ParseShard parses "i/n" with 1 ≤ i ≤ n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 2/8", s)
	}
	if n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want 1 ≤ i ≤ n", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String is "i/n", or "" for the whole sweep.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// pointCost estimates a point's work: the bytes of host data it generates
// and runs over.
func pointCost(p Point) int64 {
	c := p.Config
	c.Workers = 1
	_, est, err := kernels.Plan(c)
	if err != nil {
		return 1
	}
	return max(1, est.Pairs*est.PairBytes)
}

// Select returns the shard's points, in grid order. All points of a shape
// group go to the same shard, so a shard's speed-ups are complete; groups
// are dealt out largest first to the least loaded shard, which balances the
// work and depends only on the grid, so every job computes the same split.
func (s Shard) Select(points []Point) []Point {
	if s.Count <= 1 {
		return points
	}
	type group struct {
		key   string
		first int
		cost  int64
	}
	idx := map[string]*group{}
	var groups []*group
	for _, p := range points {
		g := idx[p.Group]
		if g == nil {
			g = &group{key: p.Group, first: p.Index}
			idx[p.Group] = g
			groups = append(groups, g)
		}
		g.cost += pointCost(p)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		if groups[i].cost != groups[j].cost {
			return groups[i].cost > groups[j].cost
		}
		return groups[i].first < groups[j].first
	})
	load := make([]int64, s.Count)
	owner := map[string]int{}
	for _, g := range groups {
		best := 0
		for i := range load {
			if load[i] < load[best] {
				best = i
			}
		}
		load[best] += g.cost
		owner[g.key] = best + 1
	}
	var out []Point
	for _, p := range points {
		if owner[p.Group] == s.Index {
			out = append(out, p)
		}
	}
	return out
}
