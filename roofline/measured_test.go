package roofline

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/bwsim/bwsim/kernels"
	"github.com/bwsim/bwsim/traces"
)

const goodFile = `# machine: test GPU
# command: python3 validation/measure.py --out x
device,method,impl,batch,heads,kv_heads,head_dim,seq,r,k,k_layout,dtype,seconds,placement,variant,extra
h100-sxm,dense,fused,64,32,32,128,4096,,,,fp16,1.388e-03,,sdpa-cudnn,9

h100-sxm,sparq,unfused,1,32,8,128,16384,32,128,twice,fp16,1.5e-4,,triton+graph,1
# a comment between rows
ipu-bow,sparq,unfused,4,32,32,128,16384,32,128,once,fp16,0.0204,kv-cache=streaming,poplar,
ipu-bow,dense,unfused,1,32,32,128,16384,,,,fp16,0.0404,"kv-cache=streaming,intermediate=sram",,
`

func TestParseMeasurements(t *testing.T) {
	f, err := ParseMeasurements(strings.NewReader(goodFile), "good.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.Rows); got != 4 {
		t.Fatalf("%d rows, want 4", got)
	}
	if want := []string{"machine: test GPU", "command: python3 validation/measure.py --out x", "a comment between rows"}; !reflect.DeepEqual(f.Comments, want) {
		t.Errorf("comments %q, want %q", f.Comments, want)
	}
	d := f.Rows[0]
	if d.Device != "h100-sxm" || d.Method != "dense" || d.Impl != "fused" || d.Batch != 64 || d.Heads != 32 ||
		d.KVHeads != 32 || d.HeadDim != 128 || d.Seq != 4096 || d.R != 0 || d.K != 0 || d.KLayout != "" ||
		d.DType != "fp16" || d.Seconds != 1.388e-3 || d.Variant != "sdpa-cudnn" || d.Source != "good.csv:4" {
		t.Errorf("dense row parsed as %+v", d)
	}
	s := f.Rows[1]
	if s.R != 32 || s.K != 128 || s.KLayout != "twice" || s.KVHeads != 8 || s.Source != "good.csv:6" {
		t.Errorf("sparq row parsed as %+v", s)
	}
	if got := f.Rows[2].PlacementMap; !reflect.DeepEqual(got, map[traces.Role]string{traces.RoleKVCache: "streaming"}) {
		t.Errorf("placement %v", got)
	}
	want := map[traces.Role]string{traces.RoleKVCache: "streaming", traces.RoleIntermediate: "sram"}
	if got := f.Rows[3].PlacementMap; !reflect.DeepEqual(got, want) {
		t.Errorf("quoted two-role placement %v, want %v", got, want)
	}
}

func TestParseMeasurementsStructureColumns(t *testing.T) {
	in := strings.Join(MeasurementColumns, ",") + ",variant,dispatch,host_seconds,split,materialize,upcast,compiled,fused_exact,query_tile,serial_combine,rank_pass,kernel,tile_keys,tiles_in_flight,block_instructions,param_lines\n" +
		"h100-sxm,sparq,unfused,16,32,32,128,16384,32,128,twice,fp16,1e-3,,torch-gather,eager,4.5e-4,,true,,,,,,true,,,,,\n" +
		"h100-sxm,sparq,unfused,1,32,8,128,4096,32,128,once,fp16,1e-4,,triton-split+graph,graph,,512,,,,true,,,,triton,,,,\n" +
		"h100-sxm,dense,unfused,1,32,8,128,4096,,,,fp16,1e-4,,sdpa-math+graph,graph,,,,true,,,,,,,,,,\n" +
		"h100-sxm,sparq,unfused,64,32,32,128,4096,32,128,twice,fp16,1e-3,,torch-compile+graph,graph,,,true,,true,,,,,,,,,\n" +
		"h100-sxm,dense,fused,64,32,32,128,4096,,,,fp16,1e-3,,sdpa-flash+graph,graph,,4096,,,,,flash2:128,,,,,,,\n" +
		"h100-sxm,dense,fused,1,32,8,128,4096,,,,fp16,1e-5,,sdpa-flash+graph,graph,,128,,,,,,true,,,128,,1589,7\n" +
		"a100-40gb,dense,unfused,4,32,32,128,16384,,,,fp16,8e-4,,attn-torch,host-sync,,,,,,,,,,,,,,\n" +
		"h100-sxm,dense,fused,4,32,32,128,1024,,,,fp16,3e-5,,sdpa-cudnn+graph,graph,,1024,,,,,,,,,128,2,736,10\n"
	f, err := ParseMeasurements(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Rows[0], f.Rows[1]
	if !f.Rows[2].Upcast || a.Upcast || b.Upcast {
		t.Errorf("upcast parsed as %v %v %v, want false false true", a.Upcast, b.Upcast, f.Rows[2].Upcast)
	}
	if a.Dispatch != DispatchEager || a.HostSeconds != 4.5e-4 || !a.Materialize || a.Split != 0 {
		t.Errorf("eager row parsed as %+v", a)
	}
	if c := f.Rows[3]; !c.Compiled || !c.Materialize || a.Compiled || b.Compiled {
		t.Errorf("compiled parsed as %v %v %v, want false false true (with materialize)", a.Compiled, b.Compiled, c.Compiled)
	}
	if !b.FusedExact || a.FusedExact || f.Rows[3].FusedExact {
		t.Errorf("fused_exact parsed as %v %v %v, want false true false", a.FusedExact, b.FusedExact, f.Rows[3].FusedExact)
	}
	if !a.RankPass || b.RankPass {
		t.Errorf("rank_pass parsed as %v %v, want true false", a.RankPass, b.RankPass)
	}
	if d := f.Rows[6].Dispatch; d != DispatchHostSync {
		t.Errorf("dispatch parsed as %q, want host-sync", d)
	}
	if a.Kernel != "" || b.Kernel != kernels.KernelTriton {
		t.Errorf("kernel parsed as %q %q, want \"\" and triton", a.Kernel, b.Kernel)
	}
	if !f.Rows[5].SerialCombine || f.Rows[4].SerialCombine {
		t.Errorf("serial_combine parsed as %v %v, want false true", f.Rows[4].SerialCombine, f.Rows[5].SerialCombine)
	}
	if f.Rows[5].TileKeys != 128 || f.Rows[4].TileKeys != 0 {
		t.Errorf("tile_keys parsed as %d %d, want 0 128", f.Rows[4].TileKeys, f.Rows[5].TileKeys)
	}
	if f.Rows[7].TilesInFlight != 2 || f.Rows[5].TilesInFlight != 0 {
		t.Errorf("tiles_in_flight parsed as %d %d, want 0 2", f.Rows[5].TilesInFlight, f.Rows[7].TilesInFlight)
	}
	if r := f.Rows[5]; r.BlockInstructions != 1589 || r.ParamLines != 7 || f.Rows[4].BlockInstructions != 0 || f.Rows[4].ParamLines != 0 {
		t.Errorf("block_instructions, param_lines parsed as %d, %d and %d, %d; want 0, 0 and 1589, 7",
			f.Rows[4].BlockInstructions, f.Rows[4].ParamLines, r.BlockInstructions, r.ParamLines)
	}
	if q := f.Rows[4].QueryTile; q != (kernels.QueryTile{Kernel: "flash2", Rows: 128}) || !a.QueryTile.IsZero() {
		t.Errorf("query_tile parsed as %v and %v, want flash2:128 and none", q, a.QueryTile)
	}
	if b.Dispatch != DispatchGraph || b.HostSeconds != 0 || b.Materialize || b.Split != 512 {
		t.Errorf("graph row parsed as %+v", b)
	}
	var w bytes.Buffer
	if err := WriteMeasurements(&w, nil, f.Rows); err != nil {
		t.Fatal(err)
	}
	g, err := ParseMeasurements(&w, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !sameRows(f.Rows, g.Rows) {
		t.Errorf("round trip changed the rows:\n%+v\n%+v", f.Rows, g.Rows)
	}
}

func TestParseMeasurementsSemicolonPlacement(t *testing.T) {
	in := strings.Join(MeasurementColumns, ",") + "\nipu-bow,dense,unfused,1,32,32,128,1024,,,,fp16,1e-3,kv-cache=streaming;intermediate=sram\n"
	f, err := ParseMeasurements(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rows[0].PlacementMap) != 2 {
		t.Errorf("placement %v, want two roles", f.Rows[0].PlacementMap)
	}
}

func TestParseMeasurementsErrors(t *testing.T) {
	hdr := strings.Join(MeasurementColumns, ",") + "\n"
	row := func(fields ...string) string {
		base := []string{"h100-sxm", "sparq", "unfused", "1", "32", "32", "128", "4096", "32", "128", "twice", "fp16", "1e-4", ""}
		for i := 0; i+1 < len(fields); i += 2 {
			for j, c := range MeasurementColumns {
				if c == fields[i] {
					base[j] = fields[i+1]
				}
			}
		}
		return strings.Join(base, ",") + "\n"
	}
	// opt builds a file with the optional columns: KEY, VALUE pairs set them
	// on a valid sparq row.
	opt := func(kv ...string) string {
		cols := []string{"dispatch", "host_seconds", "split", "materialize", "upcast", "compiled", "fused_exact", "query_tile", "serial_combine", "rank_pass", "tile_keys", "tiles_in_flight", "block_instructions", "param_lines"}
		vals := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			vals[kv[i]] = kv[i+1]
		}
		rec := []string{"h100-sxm,sparq,unfused,1,32,32,128,4096,32,128,twice,fp16,1e-4,"}
		for _, c := range cols {
			rec = append(rec, vals[c])
		}
		return hdr[:len(hdr)-1] + "," + strings.Join(cols, ",") + "\n" + strings.Join(rec, ",") + "\n"
	}
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "no header row"},
		{"comments only", "# nothing\n", "no header row"},
		{"missing column", "device,method\nx,y\n", "missing column(s) impl"},
		{"duplicate column", hdr[:len(hdr)-1] + ",seconds\n", "appears twice"},
		{"no rows", hdr, "no measurements"},
		{"field count", hdr + "h100-sxm,dense\n", "2 fields"},
		{"bad method", hdr + row("method", "h2o"), `method "h2o"`},
		{"bad impl", hdr + row("impl", "flash"), `impl "flash"`},
		{"bad device", hdr + row("device", "H100 SXM"), "not a device name"},
		{"zero batch", hdr + row("batch", "0"), "batch 0: must be positive"},
		{"text seq", hdr + row("seq", "4k"), `seq "4k": not a whole number`},
		{"huge seq", hdr + row("seq", "9999999999"), "larger than"},
		{"gqa", hdr + row("heads", "32", "kv_heads", "5"), "not a multiple"},
		{"sparq without r", hdr + row("r", ""), `r "": not a whole number`},
		{"bad layout", hdr + row("k_layout", "thrice"), "k_layout"},
		{"dense with r", hdr + row("method", "dense"), "given for dense"},
		{"dtype", hdr + row("dtype", "int8"), `dtype "int8"`},
		{"seconds nan", hdr + row("seconds", "NaN"), "positive and finite"},
		{"seconds negative", hdr + row("seconds", "-1"), "positive and finite"},
		{"seconds text", hdr + row("seconds", "fast"), "not a number"},
		{"placement", hdr + row("placement", "kv-cache"), "ROLE=LEVEL"},
		{"placement role", hdr + row("placement", "weights=hbm"), "unknown role"},
		{"stray quote", hdr + `h100-sxm,"dense` + "\n", "good.csv:2"},
		{"dispatch", opt("dispatch", "lazy"), `dispatch "lazy": want graph, eager or host-sync`},
		{"host with host-sync", opt("dispatch", "host-sync", "host_seconds", "1e-5"), "only eager calls"},
		{"host without eager", opt("dispatch", "graph", "host_seconds", "1e-5"), "only eager calls"},
		{"host text", opt("dispatch", "eager", "host_seconds", "slow"), "not a number"},
		{"host zero", opt("dispatch", "eager", "host_seconds", "0"), "positive and finite"},
		{"split zero", opt("split", "0"), "split 0"},
		{"split text", opt("split", "4k"), `split "4k"`},
		{"materialize", opt("materialize", "yes"), `materialize "yes"`},
		{"upcast", opt("upcast", "fp32"), `upcast "fp32"`},
		{"compiled", opt("materialize", "true", "compiled", "inductor"), `compiled "inductor"`},
		{"fused_exact", opt("fused_exact", "one-kernel"), `fused_exact "one-kernel"`},
		{"query_tile", opt("query_tile", "flash2"), `query tile "flash2": want KERNEL:ROWS`},
		{"query_tile rows", opt("query_tile", "flash2:0"), "rows must be 1 to"},
		{"serial_combine", opt("serial_combine", "serial"), `serial_combine "serial"`},
		{"rank_pass", opt("rank_pass", "cast"), `rank_pass "cast"`},
		{"tile_keys zero", opt("tile_keys", "0"), "tile_keys 0: must be between 1"},
		{"tile_keys text", opt("tile_keys", "128k"), `tile_keys "128k": not a whole number`},
		{"tiles_in_flight zero", opt("tile_keys", "128", "tiles_in_flight", "0"), "tiles_in_flight 0: must be between 1"},
		{"tiles_in_flight text", opt("tile_keys", "128", "tiles_in_flight", "two"), `tiles_in_flight "two": not a whole number`},
		{"block_instructions zero", opt("tile_keys", "128", "block_instructions", "0"), "block_instructions 0: must be between 1"},
		{"param_lines text", opt("tile_keys", "128", "param_lines", "x"), `param_lines "x": not a whole number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseMeasurements(strings.NewReader(c.in), "good.csv")
			if err == nil {
				t.Fatalf("parsed, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseMeasurementsReportsLineOfEveryBadRow(t *testing.T) {
	in := strings.Join(MeasurementColumns, ",") + "\n# c\n" +
		"h100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,1e-4,\n" +
		"h100-sxm,dense,fused,0,32,32,128,4096,,,,fp16,1e-4,\n" +
		"h100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,0,\n"
	_, err := ParseMeasurements(strings.NewReader(in), "f.csv")
	if err == nil || !strings.Contains(err.Error(), "f.csv:4:") || !strings.Contains(err.Error(), "f.csv:5:") {
		t.Errorf("error %v, want lines 4 and 5", err)
	}
}

func TestWriteMeasurementsRoundTrip(t *testing.T) {
	f, err := ParseMeasurements(strings.NewReader(goodFile), "good.csv")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteMeasurements(&b, f.Comments, f.Rows); err != nil {
		t.Fatal(err)
	}
	g, err := ParseMeasurements(&b, "good.csv")
	if err != nil {
		t.Fatalf("re-parsing what WriteMeasurements wrote: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(g.Comments, f.Comments) {
		t.Errorf("comments %q, want %q", g.Comments, f.Comments)
	}
	if !sameRows(f.Rows, g.Rows) {
		t.Errorf("rows changed:\n%+v\n%+v", f.Rows, g.Rows)
	}
	if err := WriteMeasurements(&b, []string{"two\nlines"}, nil); err == nil {
		t.Error("a comment with a line break was written")
	}
}

// sameRows compares rows without Source (line numbers move when comments
// are rewritten).
func sameRows(a, b []Measurement) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Source, y.Source = "", ""
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func TestSummarize(t *testing.T) {
	pt := func(dev, method, variant string, pred, meas float64) ValidationPoint {
		m := Measurement{Device: dev, Method: method, Impl: "fused", Variant: variant, Seconds: meas, Source: variant}
		return NewValidationPoint(m, &Prediction{Seconds: pred})
	}
	pts := []ValidationPoint{
		pt("a", "dense", "x", 1.1, 1),  // +10 %
		pt("a", "dense", "y", 0.7, 1),  // −30 %
		pt("a", "dense", "x", 1.2, 1),  // +20 %
		pt("b", "sparq", "z", 3, 1),    // +200 %
		pt("a", "sparq", "z", 0.95, 1), // −5 %
	}
	s := Summarize(pts)
	if s.Points != 5 || math.Abs(s.MedianAbsError-0.2) > 1e-12 || math.Abs(s.MaxAbsError-2) > 1e-12 || s.Worst != "z" {
		t.Errorf("summary %+v, want 5 points, median 0.2, max 2 (z)", s)
	}
	if math.Abs(s.MedianError-0.1) > 1e-12 {
		t.Errorf("signed median %g, want 0.1", s.MedianError)
	}
	g := SummarizeBy(pts, false)
	if len(g) != 3 || g[0].Device != "a" || g[0].Method != "dense" || g[0].Points != 3 || math.Abs(g[0].MedianAbsError-0.2) > 1e-12 {
		t.Errorf("groups %+v", g)
	}
	if math.Abs(g[0].MaxAbsError-0.3) > 1e-12 {
		t.Errorf("a/dense max %g, want 0.3", g[0].MaxAbsError)
	}
	v := SummarizeBy(pts, true)
	if len(v) != 4 || v[0].Variant != "x" || v[0].Points != 2 || math.Abs(v[0].MedianAbsError-0.15) > 1e-12 {
		t.Errorf("variant groups %+v", v)
	}
	if z := Summarize(nil); z.Points != 0 || z.MaxAbsError != 0 {
		t.Errorf("empty summary %+v", z)
	}
}

func TestRelativeError(t *testing.T) {
	if e := RelativeError(2, 1); e != 1 {
		t.Errorf("RelativeError(2, 1) = %g, want 1", e)
	}
	if e := RelativeError(0.5, 1); e != -0.5 {
		t.Errorf("RelativeError(0.5, 1) = %g, want -0.5", e)
	}
}
