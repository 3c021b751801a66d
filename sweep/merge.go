package sweep

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Merge joins the results of the shards of one sweep (or partial results
// of the same sweep) into one. The parts must share settings and device
// models; a row present in several parts must be identical in all of them.
// Speed-ups are recomputed.
//
// The merged results are Complete only when every point of the grid is
// there; Missing lists the shards (as "i/n") that none of the parts ran, or
// that did not finish.
func Merge(parts []*Results) (res *Results, missing []string, err error) {
	if len(parts) == 0 {
		return nil, nil, fmt.Errorf("merge: nothing to merge")
	}
	first := parts[0]
	gridJSON, _ := json.Marshal(first.Grid)
	count := 0
	shards := map[int]bool{}
	for i, p := range parts {
		if p.Schema != Schema {
			return nil, nil, fmt.Errorf("merge: part %d: schema %q, want %q", i+1, p.Schema, Schema)
		}
		if g, _ := json.Marshal(p.Grid); string(g) != string(gridJSON) {
			return nil, nil, fmt.Errorf("merge: part %d was run with different settings than part 1:\n  %s\n  %s", i+1, gridJSON, g)
		}
		if !reflect.DeepEqual(fingerprints(p.Devices), fingerprints(first.Devices)) {
			return nil, nil, fmt.Errorf("merge: part %d priced on different device models than part 1", i+1)
		}
		n, idx := 1, 1
		if p.Shard != "" {
			s, err := ParseShard(p.Shard)
			if err != nil {
				return nil, nil, fmt.Errorf("merge: part %d: %w", i+1, err)
			}
			n, idx = s.Count, s.Index
		}
		if count == 0 {
			count = n
		} else if n != count {
			return nil, nil, fmt.Errorf("merge: part %d is shard %s, other parts split the sweep in %d", i+1, p.Shard, count)
		}
		if p.Complete {
			shards[idx] = true
		}
	}

	res = &Results{Schema: Schema, Grid: first.Grid, Devices: first.Devices}
	points := first.Grid.Points()
	order := map[string]int{}
	for i, p := range points {
		order[p.Key] = i
	}
	devOrder := map[string]int{}
	for i, d := range first.Devices {
		devOrder[d.Name] = i
	}
	type rowKey struct{ key, device string }
	rows := map[rowKey]Row{}
	traffic := map[string]Traffic{}
	for i, p := range parts {
		for _, r := range p.Rows {
			if _, ok := order[r.Key]; !ok {
				return nil, nil, fmt.Errorf("merge: part %d: row %s is not a point of the sweep", i+1, r.Key)
			}
			k := rowKey{r.Key, r.Device}
			r.Speedup, r.IdealSpeedup = 0, 0
			if old, ok := rows[k]; ok && !reflect.DeepEqual(old, r) {
				return nil, nil, fmt.Errorf("merge: part %d: row %s on %s differs from an earlier part's", i+1, r.Key, r.Device)
			}
			rows[k] = r
		}
		for _, t := range p.Traffic {
			traffic[t.Key] = t
		}
	}
	for _, r := range rows {
		res.Rows = append(res.Rows, r)
	}
	sortRows(res.Rows, order, devOrder)
	ComputeSpeedups(res.Rows)
	keys := make([]string, 0, len(traffic))
	for k := range traffic {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return order[keys[i]] < order[keys[j]] })
	for _, k := range keys {
		res.Traffic = append(res.Traffic, traffic[k])
	}
	done := map[string]bool{}
	for _, r := range res.Rows {
		done[r.Key] = true
	}
	res.Points, res.Done = len(points), len(done)
	res.Complete = res.Done == res.Points
	if !res.Complete {
		for i := 1; i <= count; i++ {
			if !shards[i] {
				missing = append(missing, fmt.Sprintf("%d/%d", i, count))
			}
		}
	}
	return res, missing, nil
}

func fingerprints(ds []DeviceInfo) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Name+"="+d.Fingerprint)
	}
	return strings.Join(parts, ",")
}
