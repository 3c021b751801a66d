package roofline

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseMeasurements checks that the parser never panics, and that what
// it accepts survives WriteMeasurements and a second parse unchanged.
// Seed corpus: testdata/fuzz/FuzzParseMeasurements.
func FuzzParseMeasurements(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + "\nh100-sxm,dense,fused,1,32,32,128,1024,,,,fp16,1e-5,\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,dispatch,host_seconds,split,materialize\n" +
		"h100-sxm,sparq,unfused,16,32,32,128,16384,32,128,twice,fp16,1e-3,,torch-gather,eager,4.5e-4,512,true\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,dispatch,materialize,compiled,upcast,fused_exact\n" +
		"h200,sparq,unfused,64,32,32,128,4096,32,128,twice,fp16,1e-3,,torch-compile+graph,graph,true,true,,\n" +
		"h200,sparq,unfused,1,32,8,128,4096,32,128,once,fp16,1e-4,,triton+graph,graph,,,,true\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,split,query_tile,serial_combine,rank_pass,kernel\n" +
		"h100-sxm,dense,fused,64,32,32,128,16384,,,,fp16,6.7e-3,,sdpa-flash+graph,16384,flash2:128,,,\n" +
		"h100-sxm,dense,fused,1,32,8,128,4096,,,,fp16,2e-5,,sdpa-flash+graph,128,,true,,\n" +
		"h100-sxm,sparq,unfused,4,32,8,128,4096,32,128,twice,fp16,2e-4,,triton+graph,,,,true,triton\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,split,serial_combine,tile_keys\n" +
		"h200,dense,fused,1,32,8,128,4096,,,,fp16,1.2e-5,,sdpa-cudnn+graph,128,,128\n" +
		"h200,dense,fused,4,32,8,128,1024,,,,fp16,1.4e-5,,sdpa-flash+graph,128,true,128\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,split,tile_keys,tiles_in_flight\n" +
		"h200,dense,fused,4,32,32,128,1024,,,,fp16,2e-5,,sdpa-cudnn+graph,1024,128,2\n" +
		"h200,dense,fused,1,32,8,128,4096,,,,fp16,1.2e-5,,sdpa-cudnn+graph,128,128,\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,split,tile_keys,tiles_in_flight,block_instructions,param_lines\n" +
		"h200,dense,fused,1,32,8,128,4096,,,,fp16,1.2e-5,,sdpa-cudnn+graph,128,128,2,736,10\n" +
		"h200,dense,fused,1,32,8,128,4096,,,,fp16,1.9e-5,,sdpa-flash+graph,128,128,,1589,7\n"))
	f.Add([]byte(strings.Join(MeasurementColumns, ",") + ",variant,dispatch\n" +
		"a100-40gb,dense,unfused,4,32,32,128,16384,,,,fp16,8.46e-4,,attn-torch,host-sync\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mf, err := ParseMeasurements(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			return
		}
		if len(mf.Rows) == 0 {
			t.Fatal("accepted a file without rows")
		}
		for _, m := range mf.Rows {
			if m.Seconds <= 0 || m.Batch <= 0 || m.Heads%m.KVHeads != 0 {
				t.Fatalf("accepted an impossible row %+v", m)
			}
		}
		var b bytes.Buffer
		if err := WriteMeasurements(&b, nil, mf.Rows); err != nil {
			t.Fatalf("writing accepted rows: %v", err)
		}
		again, err := ParseMeasurements(&b, "fuzz.csv")
		if err != nil {
			t.Fatalf("re-parsing written rows: %v\n%q", err, b.String())
		}
		if !sameRows(mf.Rows, again.Rows) {
			t.Fatalf("rows changed in a round trip:\n%+v\n%+v", mf.Rows, again.Rows)
		}
	})
}
