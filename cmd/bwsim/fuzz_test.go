package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/report"
	"github.com/bwsim/bwsim/roofline"
	"github.com/bwsim/bwsim/sweep"
)

// FuzzFlagValues feeds one arbitrary string to every parser of a
// structured flag value: counts (--seq 32k), count lists (sweep --seq
// 1k..128k:*4), method lists (--methods sparq:r=16:k=64), placements
// (run's ROLE=LEVEL, sweep's [DEVICE:]ROLE=LEVEL) and shards (--shard 2/8).
// None may panic, and what they accept must be in range and read back
// the same from its own printed form.
func FuzzFlagValues(f *testing.F) {
	for _, s := range []string{
		"4096", "32k", "1M", "0", "-5", "99999999999", " 7 ", "k",
		"1k..128k", "4k,16k", "1k..8k:+1k", "1..100:*3", "1..2147483647:+1", "5..1k:x9",
		"dense,sparq:r=32:k=128,sparq:ratio=1/8", "sparq:r=16:k=64:layout=once:impl=fused:realloc=false",
		"topk,flexgen,h2o,window:sinks=4,quest:page=16,loki,doublesparse:bits=4", "sparq:ratio=0/0", "sparq:zz=1",
		"kv-cache=streaming", "ipu-bow:kv-cache=sram", "weights=hbm", "=", ":=x",
		"2/8", "0/3", "1/1", "3/-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseCount("seq", s); err == nil {
			if n <= 0 || n > 1<<31 {
				t.Fatalf("parseCount(%q) = %d", s, n)
			}
		} else if !strings.Contains(err.Error(), "--seq") {
			t.Fatalf("parseCount error does not name the flag: %v", err)
		}
		count := func(x string) (int, error) { return parseCount("seq", x) }
		if ns, err := sweep.ParseCounts([]string{s}, count); err == nil {
			if len(ns) == 0 {
				t.Fatalf("ParseCounts(%q): no values", s)
			}
			for i, n := range ns {
				if n <= 0 || (i > 0 && n <= ns[i-1]) {
					t.Fatalf("ParseCounts(%q) = %v: not positive and increasing", s, ns)
				}
			}
		}
		if ms, err := sweep.ParseMethods([]string{s}); err == nil {
			for _, m := range ms {
				again, err := sweep.ParseMethod(m.String())
				if err != nil {
					t.Fatalf("ParseMethods(%q): %s does not parse back: %v", s, m, err)
				}
				if again.String() != m.String() {
					t.Fatalf("ParseMethods(%q): %s reads back as %s", s, m, again)
				}
			}
		}
		if p, err := sweep.ParsePlacement(s); err == nil {
			again, err := sweep.ParsePlacement(p.String())
			if err != nil || again != p {
				t.Fatalf("ParsePlacement(%q) = %+v reads back as %+v, %v", s, p, again, err)
			}
		}
		if m, err := roofline.ParsePlacement([]string{s}); err == nil {
			for role, level := range m {
				if !role.Valid() || level == "" {
					t.Fatalf("roofline.ParsePlacement(%q) = %v", s, m)
				}
			}
		}
		if sh, err := sweep.ParseShard(s); err == nil {
			if sh.Index < 1 || sh.Index > sh.Count {
				t.Fatalf("ParseShard(%q) = %+v", s, sh)
			}
		}
	})
}

// FuzzReadResults feeds arbitrary bytes as a shard's results.json to what
// bwsim sweep merge does with it: read, merge and write every output but
// the figures. Nothing may panic. testdata/fuzz/FuzzReadResults/real-sweep
// is a real sweep's results.json.
func FuzzReadResults(f *testing.F) {
	f.Add([]byte(`{"schema":"` + sweep.Schema + `"}`))
	f.Add([]byte(`{"schema":"` + sweep.Schema + `","settings":{"methods":["dense"],"seq":[256],"batch":[1],"dtype":["fp16"],"impl":["unfused"],"heads":4,"kv_heads":4,"head_dim":32,"devices":["h100-sxm"]},"points":1,"done":1,"complete":true,"shard":"1/1","rows":[{"key":"k","method":"dense","device":"h100-sxm","batch":1,"seq":256,"seconds":1e-6}]}`))
	f.Add([]byte(`{"schema":"` + sweep.Schema + `","shard":"2/1","rows":[{}],"traffic":[{}]}`))
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := sweep.ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		merged, _, err := sweep.Merge([]*sweep.Results{res})
		if err != nil {
			return
		}
		if _, err := report.Write(t.TempDir(), merged, report.Options{NoFigures: true}); err != nil {
			return
		}
	})
}
