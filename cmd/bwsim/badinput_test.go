package main

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Fixtures the bad-input cases refer to, written into each case's working
// directory.
var badFixtures = map[string]string{
	"negbw.yaml":          "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {achievable_bandwidth: -1}\n",
	"negcap.yaml":         "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {capacity_bytes: -5}\n",
	"unkkey.yaml":         "devices:\n  h100-sxm:\n    bogus_key: 3\n",
	"wrongtype.yaml":      "devices:\n  h100-sxm:\n    memory_levels:\n      hbm: {achievable_bandwidth: fast}\n",
	"badyaml.yaml":        "devices: [\n",
	"unktop.yaml":         "nonsense: 1\n",
	"sweepunk.yaml":       "sweep:\n  bogus: 1\n",
	"sweeptype.yaml":      "sweep:\n  heads: many\n",
	"sweepneg.yaml":       "sweep:\n  seq: -4\n",
	"modelneg.yaml":       "models:\n  llama-2-7b:\n    layers: -1\n",
	"modelunk.yaml":       "models:\n  llama-2-7b:\n    bogus: 1\n",
	"missingcol.csv":      "device,method,batch\nh100-sxm,dense,1\n",
	"hdr.csv":             measHeader,
	"badrow.csv":          measHeader + "h100-sxm,dense,fused,x,32,32,128,4096,,,,fp16,1e-5,\n",
	"negrow.csv":          measHeader + "h100-sxm,dense,fused,1,32,32,128,-4096,,,,fp16,1e-5,\n",
	"unkdev.csv":          measHeader + "nodev,dense,fused,1,32,32,128,4096,,,,fp16,1e-5,\n",
	"rgtd.csv":            measHeader + "h100-sxm,sparq,unfused,1,32,32,128,4096,200,64,twice,fp16,1e-5,\n",
	"matfused.csv":        strings.TrimSuffix(measHeader, "\n") + ",materialize\nh100-sxm,sparq,fused,1,32,32,128,4096,32,64,twice,fp16,1e-5,,true\n",
	"upfused.csv":         strings.TrimSuffix(measHeader, "\n") + ",upcast\nh100-sxm,dense,fused,1,32,32,128,4096,,,,fp16,1e-5,,true\n",
	"nansec.csv":          measHeader + "h100-sxm,dense,fused,1,4,4,32,512,,,,fp16,NaN,\n",
	"badplace.csv":        measHeader + "h100-sxm,dense,fused,1,4,4,32,512,,,,fp16,1e-5,kv-cache=nowhere\n",
	"good.csv":            measHeader + "h100-sxm,dense,fused,1,4,4,32,512,,,,fp16,1e-5,\n",
	"ipuone.csv":          measHeader + "ipu-bow,dense,unfused,1,4,4,32,512,,,,fp16,1e-3,kv-cache=streaming\n",
	"badhf.json":          `{"model_type":"llama","hidden_size":-1}`,
	"nothf.json":          "not json\n",
	"bad.safetensors":     "\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}x",
	"dump/layers.0.q.npy": "junk",
	"file.txt":            "a file, not a directory\n",
	"badres/results.json": `{"schema":`,
}

// runKnownBugs runs the cases of known bugs too (to check a fix).
var runKnownBugs = flag.Bool("badinput.bugs", false, "TestBadInput: also run the cases marked as known bugs")

const measHeader = "device,method,impl,batch,heads,kv_heads,head_dim,seq,r,k,k_layout,dtype,seconds,placement\n"

// badCase is one bad command line: the exit code it must give, a part of
// the one line it must print on stderr, and no file may be left behind.
type badCase struct {
	args []string
	msg  string
	code int               // 0 means 2
	env  map[string]string // extra environment; $DIR is the working directory
	// multi allows several lines on stderr (one per problem found).
	multi bool
	// bug, when set, names a known misbehaviour in a file this test's
	// author may not edit; the case is skipped with it unless -badinput.bugs.
	bug string
}

// small keeps the shapes of run and profile tiny, so that a case that
// wrongly gets past validation still finishes quickly.
var small = []string{"--seq", "512", "--heads", "4", "--head-dim", "32"}

func withSmall(args ...string) []string { return append(args, small...) }

var sweepSmall = []string{"sweep", "-q", "--no-figures", "--seq", "256", "--batch", "1", "--heads", "4", "--head-dim", "32", "--devices", "h100-sxm", "--methods", "dense"}

func sweepWith(args ...string) []string { return append(slices.Clone(sweepSmall), args...) }

var planBase = []string{"plan", "--model", "llama-2-7b", "--device", "h100-sxm", "--seq", "4k"}

func planWith(args ...string) []string { return append(slices.Clone(planBase), args...) }

var badCases = map[string]badCase{
	// run: sizes
	"run/seq-not-a-number":   {args: []string{"run", "--seq", "abc"}, msg: `--seq "abc": not a number`},
	"run/seq-zero":           {args: []string{"run", "--seq", "0"}, msg: `--seq "0": must be positive`},
	"run/seq-negative":       {args: []string{"run", "--seq", "-5"}, msg: `--seq "-5": must be positive`},
	"run/seq-too-large":      {args: []string{"run", "--seq", "99999999999"}, msg: `--seq "99999999999": too large`},
	"run/seq-plus-steps":     {args: withSmall("run", "--steps", "100000000"), msg: "exceeds the limit"},
	"run/batch-zero":         {args: withSmall("run", "--batch", "0"), msg: "batch must be positive, got 0"},
	"run/batch-not-a-number": {args: withSmall("run", "--batch", "abc"), msg: `invalid argument "abc" for "--batch"`},
	"run/batch-too-large":    {args: withSmall("run", "--batch", "2000000000"), msg: "batch 2000000000 exceeds the limit"},
	"run/heads-zero":         {args: []string{"run", "--heads", "0"}, msg: "--heads must be positive, got 0"},
	"run/head-dim-negative":  {args: []string{"run", "--head-dim", "-1"}, msg: "head-dim must be positive, got -1"},
	"run/r-above-head-dim":   {args: []string{"run", "--r", "200", "--head-dim", "128"}, msg: "r 200 exceeds head-dim 128"},
	"run/k-zero":             {args: withSmall("run", "--k", "0"), msg: "k must be positive, got 0"},
	"run/H-not-multiple-Hkv": {args: []string{"run", "--heads", "32", "--kv-heads", "5"}, msg: "heads 32 is not a multiple of kv-heads 5"},
	"run/kv-heads-negative":  {args: withSmall("run", "--kv-heads", "-1"), msg: "kv-heads must be positive, got -1"},
	"run/steps-zero":         {args: withSmall("run", "--steps", "0"), msg: "--steps must be positive, got 0"},
	"run/sample-heads-neg":   {args: withSmall("run", "--sample-heads", "-1"), msg: "sample-heads must be positive"},
	"run/sample-heads-big":   {args: withSmall("run", "--sample-heads", "100000"), msg: "sample-heads 100000 exceeds the 4"},
	"run/page-zero":          {args: withSmall("run", "--method", "quest", "--page", "0"), msg: "quest: page must be positive, got 0"},
	"run/label-bits":         {args: withSmall("run", "--method", "doublesparse", "--label-bits", "3"), msg: "label-bits must be one of"},
	"run/sinks-above-k":      {args: withSmall("run", "--method", "window", "--sinks", "100000"), msg: "sinks 100000 exceed the token budget"},
	"run/seed-negative":      {args: withSmall("run", "--seed", "-1"), msg: `invalid argument "-1" for "--seed"`},
	"run/runs-zero":          {args: withSmall("run", "--measure", "--device", "host", "--dtype", "fp32", "--runs", "0"), msg: "--runs must be positive, got 0"},
	// run: names
	"run/unknown-method":   {args: withSmall("run", "--method", "bogus"), msg: `unknown method "bogus"`},
	"run/unknown-impl":     {args: withSmall("run", "--impl", "weird"), msg: `unknown impl "weird"`},
	"run/unknown-k-layout": {args: withSmall("run", "--k-layout", "thrice"), msg: `unknown k-layout "thrice"`},
	"run/unknown-dtype":    {args: withSmall("run", "--dtype", "fp12"), msg: `unknown dtype "fp12"`},
	"run/unknown-workload": {args: withSmall("run", "--workload", "zeros"), msg: `unknown workload "zeros"`},
	"run/unknown-device":   {args: withSmall("run", "--device", "nodev"), msg: `unknown device "nodev"`},
	"run/unknown-level":    {args: withSmall("run", "--device", "h100-sxm", "--placement", "kv-cache=nowhere"), msg: `no level "nowhere"`},
	"run/unknown-role":     {args: withSmall("run", "--device", "h100-sxm", "--placement", "bogus=hbm"), msg: `unknown role "bogus"`},
	"run/placement-syntax": {args: withSmall("run", "--device", "h100-sxm", "--placement", "junk"), msg: `placement "junk": want ROLE=LEVEL`},
	"run/placement-no-dev": {args: withSmall("run", "--placement", "kv-cache=hbm"), msg: "--placement places tensors on the devices of --device"},
	"run/measure-no-host":  {args: withSmall("run", "--measure"), msg: "add --device host"},
	"run/unknown-flag":     {args: []string{"run", "--nosuchflag"}, msg: "unknown flag: --nosuchflag"},
	"run/extra-argument":   {args: withSmall("run", "extra"), msg: `unknown command "extra"`},
	"unknown-command":      {args: []string{"nosuchcmd"}, msg: `unknown command "nosuchcmd"`},
	// run: memory that would not fit, refused with the estimate
	"run/memory": {args: []string{"run", "--seq", "1M", "--batch", "64", "--heads", "128", "--sample-heads", "8192"},
		msg: "the simulation needs an estimated"},
	"run/measure-memory": {args: []string{"run", "--seq", "1M", "--batch", "64", "--heads", "128", "--measure", "--device", "host", "--dtype", "fp32"},
		msg: "--measure simulates every (sequence, kv-head) pair: the simulation needs an estimated"},
	// run: files
	"run/trace-out-no-dir":   {args: withSmall("run", "--trace-out", "missing/t.json"), msg: "--trace-out missing/t.json: directory missing does not exist"},
	"run/trace-out-is-dir":   {args: withSmall("run", "--trace-out", "."), msg: "--trace-out .: is a directory"},
	"run/trace-out-file-dir": {args: withSmall("run", "--trace-out", "file.txt/t.json"), msg: "file.txt is not a directory"},
	"run/kv-dump-bad":        {args: []string{"run", "--kv-dump", "bad.safetensors"}, msg: "kv-dump bad.safetensors: safetensors: header is not a JSON object"},
	"run/kv-dump-missing":    {args: []string{"run", "--kv-dump", "missing.safetensors"}, msg: "kv-dump: stat missing.safetensors: no such file"},
	"run/kv-dump-bad-npy":    {args: []string{"run", "--kv-dump", "dump"}, msg: "kv-dump layers.0.q.npy"},
	"run/kv-dump-and-heads":  {args: []string{"run", "--kv-dump", "dump", "--heads", "4"}, msg: "--heads and --kv-dump"},
	"run/layer-without-dump": {args: withSmall("run", "--layer", "3"), msg: "--layer selects a layer of --kv-dump"},

	// device catalog: files, environment, --set
	"devices/negative-bandwidth": {args: []string{"devices", "--device-file", "negbw.yaml"}, msg: "negbw.yaml: device \"h100-sxm\": memory_levels.hbm.achievable_bandwidth: must be positive, got -1"},
	"devices/negative-capacity":  {args: []string{"devices", "--device-file", "negcap.yaml"}, msg: "memory_levels.hbm.capacity_bytes: must be positive, got -5"},
	"devices/unknown-key":        {args: []string{"devices", "--device-file", "unkkey.yaml"}, msg: "unkkey.yaml: device \"h100-sxm\": bogus_key: unknown key"},
	"devices/wrong-type":         {args: []string{"devices", "--device-file", "wrongtype.yaml"}, msg: `achievable_bandwidth: expected a number, got string "fast"`},
	"devices/not-yaml":           {args: []string{"devices", "--config", "badyaml.yaml"}, msg: "badyaml.yaml: not valid YAML"},
	"devices/unknown-top-key":    {args: []string{"devices", "--config", "unktop.yaml"}, msg: "unktop.yaml: nonsense: unknown top-level key"},
	"devices/file-missing":       {args: []string{"devices", "--device-file", "missing.yaml"}, msg: "missing.yaml: no such file"},
	"devices/config-missing":     {args: []string{"devices", "--config", "missing.yaml"}, msg: "missing.yaml: no such file"},
	"devices/show-unknown":       {args: []string{"devices", "show", "nodev"}, msg: `unknown device "nodev"`},
	"devices/show-no-name":       {args: []string{"devices", "show"}, msg: "accepts 1 arg(s), received 0"},
	"devices/set-syntax":         {args: []string{"devices", "--set", "foo"}, msg: `--set "foo": want KEY=VALUE`},
	"devices/set-unknown-kind":   {args: []string{"devices", "--set", "devices.h100-sxm.kind=tpu"}, msg: `kind: unknown kind "tpu"`},
	"devices/set-negative":       {args: []string{"devices", "--set", "devices.h100-sxm.memory_levels.hbm.capacity_bytes=-1"}, msg: "--set devices.h100-sxm.memory_levels.hbm.capacity_bytes: device \"h100-sxm\": memory_levels.hbm.capacity_bytes: must be positive"},
	"devices/set-bad-yaml":       {args: []string{"devices", "--set", "devices.h100-sxm.memory_levels=[1"}, msg: `value "[1"`},
	"devices/set-unknown-dtype":  {args: []string{"devices", "--set", "devices.h100-sxm.compute=[{unit: matrix, dtype: fp99, ops_per_second: 1}]"}, msg: `compute[0].dtype: unknown dtype "fp99"`},
	"devices/env-unknown":        {args: []string{"devices"}, env: map[string]string{"BWSIM_DEVICES_NOPE": "1"}, msg: "BWSIM_DEVICES_NOPE: matches no key"},
	"devices/env-wrong-type":     {args: []string{"devices"}, env: map[string]string{"BWSIM_DEVICES_H100_SXM_MEMORY_LEVELS_HBM_ACHIEVABLE_BANDWIDTH": "abc"}, msg: `expected a number, got string "abc"`},
	"devices/bad-host-file":      {args: []string{"devices"}, env: map[string]string{"BWSIM_HOST_FILE": "negbw.yaml"}, msg: "negbw.yaml: device \"h100-sxm\": memory_levels.hbm.achievable_bandwidth: must be positive"},

	// models
	"models/unknown-key":     {args: []string{"models", "--config", "modelunk.yaml"}, msg: "modelunk.yaml: models.llama-2-7b.bogus: unknown key"},
	"models/negative-layers": {args: []string{"models", "--config", "modelneg.yaml"}, msg: "modelneg.yaml: models.llama-2-7b.layers: must be between 1 and 4096, got -1"},
	"models/set-wrong-type":  {args: []string{"models", "--set", "models.llama-2-7b.layers=abc"}, msg: `models.llama-2-7b.layers: expected an integer, got string "abc"`},
	"models/show-unknown":    {args: []string{"models", "show", "nomodel"}, msg: `unknown model "nomodel"`},
	"models/import-not-json": {args: []string{"models", "import", "nothf.json"}, msg: "nothf.json: config.json: not JSON"},
	"models/import-bad":      {args: []string{"models", "import", "badhf.json"}, msg: "badhf.json: config.json: hidden_size: expected a whole number", multi: true},
	"models/import-missing":  {args: []string{"models", "import", "missing.json"}, msg: "open missing.json: no such file"},

	// plan
	"plan/no-device":         {args: []string{"plan", "--model", "llama-2-7b", "--seq", "4k"}, msg: "--device is required"},
	"plan/no-model":          {args: []string{"plan", "--device", "h100-sxm", "--seq", "4k"}, msg: "--model or --model-file is required"},
	"plan/no-seq":            {args: []string{"plan", "--model", "llama-2-7b", "--device", "h100-sxm"}, msg: "--seq is required"},
	"plan/unknown-model":     {args: planWith("--model", "nomodel"), msg: `--model: unknown model "nomodel"`},
	"plan/unknown-device":    {args: planWith("--device", "nodev"), msg: `--device: unknown device "nodev"`},
	"plan/devices-zero":      {args: planWith("--devices", "0"), msg: "--devices must be at least 1, got 0"},
	"plan/heads-not-split":   {args: planWith("--devices", "3"), msg: "do not split evenly over 3 devices"},
	"plan/batch-zero":        {args: planWith("--batch", "0"), msg: `--batch "0": want a positive whole number or auto`},
	"plan/batch-not-fit":     {args: []string{"plan", "--model", "llama-2-7b", "--device", "h100-sxm", "--seq", "32k", "--batch", "5000"}, msg: "batch 5000 does not fit: at most"},
	"plan/weights-not-fit":   {args: []string{"plan", "--model", "llama-2-70b", "--device", "h100-pcie", "--seq", "4k"}, msg: "the weights of llama-2-70b in fp16 need"},
	"plan/reserve":           {args: planWith("--reserve", "1.5"), msg: "reserve must be a fraction in [0, 1), got 1.5"},
	"plan/reserve-nan":       {args: planWith("--reserve", "NaN"), msg: "reserve must be a fraction in [0, 1), got NaN"},
	"plan/latency-negative":  {args: planWith("--latency-ms", "-1"), msg: "--latency-ms must be a positive number, got -1"},
	"plan/target-negative":   {args: planWith("--target-tokens-per-second", "-5"), msg: "--target-tokens-per-second must be a positive number"},
	"plan/weight-dtype":      {args: planWith("--weight-dtype", "fp12"), msg: `weight dtype: unknown dtype "fp12"`},
	"plan/kv-dtype":          {args: planWith("--kv-dtype", "int3"), msg: `kv dtype: unknown dtype "int3"`},
	"plan/unknown-level":     {args: planWith("--level", "nolevel"), msg: `has no memory level "nolevel"`},
	"plan/unknown-link":      {args: planWith("--devices", "2", "--link", "nolink"), msg: `has no link "nolink"`},
	"plan/kernels-negative":  {args: planWith("--kernels-per-layer", "-1"), msg: "kernels per layer must not be negative"},
	"plan/r-above-head-dim":  {args: planWith("--methods", "sparq:r=999:k=10"), msg: "r 999 exceeds head-dim 128"},
	"plan/unknown-method":    {args: planWith("--methods", "bogus"), msg: `unknown method "bogus"`},
	"plan/model-file-bad":    {args: planWith("--model-file", "nothf.json"), msg: "nothf.json: config.json: not JSON"},
	"plan/model-config-bad":  {args: planWith("--config", "modelneg.yaml"), msg: "modelneg.yaml: models.llama-2-7b.layers"},
	"plan/out-is-file":       {args: planWith("--out", "file.txt"), msg: "--out file.txt: file.txt is not a directory"},
	"plan/out-under-file":    {args: planWith("--out", "file.txt/x/y"), msg: "--out file.txt/x/y: file.txt is not a directory"},
	"plan/device-file-bad":   {args: planWith("--device-file", "negcap.yaml"), msg: "capacity_bytes: must be positive"},
	"plan/device-needs-link": {args: planWith("--devices", "2", "--device", "host"), msg: "link"},

	// sweep
	"sweep/seq-not-a-number": {args: sweepWith("--seq", "abc"), msg: `--seq: "abc": not a number`},
	"sweep/seq-range-zero":   {args: sweepWith("--seq", "1k..0"), msg: `--seq: "0": must be positive`},
	"sweep/batch-negative":   {args: sweepWith("--batch", "-1"), msg: `--batch: "-1": must be positive`},
	"sweep/heads-zero":       {args: sweepWith("--heads", "0"), msg: "heads must be positive", multi: true},
	"sweep/H-not-multiple":   {args: sweepWith("--heads", "32", "--kv-heads", "5"), msg: "heads 32 is not a multiple of kv-heads 5"},
	"sweep/r-above-head-dim": {args: sweepWith("--methods", "sparq:r=64:k=16"), msg: "r 64 exceeds head-dim 32"},
	"sweep/unknown-method":   {args: sweepWith("--methods", "bogus"), msg: `--methods: method "bogus": unknown method`},
	"sweep/unknown-key":      {args: sweepWith("--methods", "sparq:zz=1"), msg: `unknown key "zz" for sparq`},
	"sweep/unknown-device":   {args: sweepWith("--devices", "nodev"), msg: `--devices: unknown device "nodev"`},
	"sweep/unknown-dtype":    {args: sweepWith("--dtype", "fp12"), msg: `--dtype: unknown dtype "fp12"`},
	"sweep/unknown-level":    {args: sweepWith("--placement", "kv-cache=nowhere"), msg: `no device has a memory level "nowhere"`},
	"sweep/jobs-negative":    {args: sweepWith("--jobs", "-1"), msg: "--jobs: must not be negative"},
	"sweep/shard-range":      {args: sweepWith("--shard", "4/3"), msg: `--shard: shard "4/3": want 1 ≤ i ≤ n`},
	"sweep/config-unknown":   {args: sweepWith("--config", "sweepunk.yaml"), msg: "sweepunk.yaml: sweep.bogus: unknown key"},
	"sweep/config-type":      {args: sweepWith("--config", "sweeptype.yaml"), msg: `sweeptype.yaml: sweep.heads: expected a whole number, got string "many"`},
	"sweep/config-negative":  {args: []string{"sweep", "-q", "--config", "sweepneg.yaml"}, msg: `sweepneg.yaml: sweep.seq: "-4": must be positive`},
	"sweep/device-file":      {args: sweepWith("--device-file", "negbw.yaml"), msg: "achievable_bandwidth: must be positive"},
	"sweep/set-sweep":        {args: sweepWith("--set", "sweep.seq=4"), msg: "--set sweep.seq=4: sweep settings are flags"},
	"sweep/memory": {args: []string{"sweep", "-q", "--no-figures", "--seq", "1M", "--batch", "4096", "--heads", "128", "--head-dim", "256", "--devices", "h100-sxm", "--methods", "dense", "--sample-heads", "100000"},
		msg: "the simulation needs an estimated"},
	"sweep/out-is-file": {args: sweepWith("--out", "file.txt"), msg: "file.txt is not a directory"},
	"sweep/too-many-points": {args: []string{"sweep", "-q", "--seq", "1..4096:+1", "--batch", "1..4096:+1", "--devices", "h100-sxm", "--methods", "dense"},
		msg: "more than the 200000 a sweep runs"},
	"sweep/merge-missing": {args: []string{"sweep", "merge", "nodir"}, msg: "open nodir/results.json: no such file"},
	"sweep/merge-corrupt": {args: []string{"sweep", "merge", "badres"}, msg: "badres/results.json"},
	"sweep/merge-no-args": {args: []string{"sweep", "merge"}, msg: "requires at least 1 arg(s)"},

	// validate: measurement files
	"validate/no-files":          {args: []string{"validate"}, msg: "no measurement files"},
	"validate/missing-file":      {args: []string{"validate", "--measured", "missing.csv"}, msg: "open missing.csv: no such file"},
	"validate/missing-column":    {args: []string{"validate", "--measured", "missingcol.csv"}, msg: "missingcol.csv: header: missing column(s) impl"},
	"validate/bad-row":           {args: []string{"validate", "--measured", "badrow.csv"}, msg: `badrow.csv:2: batch "x": not a whole number`},
	"validate/negative-seq":      {args: []string{"validate", "--measured", "negrow.csv"}, msg: "negrow.csv:2: seq -4096: must be positive"},
	"validate/unknown-device":    {args: []string{"validate", "--measured", "unkdev.csv"}, msg: `unkdev.csv:2: unknown device "nodev"`},
	"validate/r-above-d":         {args: []string{"validate", "--measured", "rgtd.csv"}, msg: "rgtd.csv:2: sparq: r 200 exceeds head-dim 128"},
	"validate/materialize-fused": {args: []string{"validate", "--measured", "matfused.csv"}, msg: "matfused.csv:2: materialize applies to unfused sparq only"},
	"validate/upcast-fused":      {args: []string{"validate", "--measured", "upfused.csv"}, msg: "upfused.csv:2: upcast applies to unfused dense only"},
	"run/upcast-sparq":           {args: []string{"run", "--method", "sparq", "--upcast"}, msg: "upcast applies to unfused dense only"},
	"run/kernel-unknown":         {args: []string{"run", "--method", "sparq", "--kernel", "cuda"}, msg: `kernel "cuda": unknown kernel class (known: triton, cublas)`},
	"run/kernel-dense":           {args: []string{"run", "--method", "dense", "--kernel", "triton"}, msg: "kernel triton applies to unfused sparq that gathers on chip"},
	"run/kernel-cublas-sparq":    {args: []string{"run", "--method", "sparq", "--kernel", "cublas"}, msg: "kernel cublas applies to unfused dense attention in its own dtype"},
	"validate/no-rows":           {args: []string{"validate", "--measured", "hdr.csv"}, msg: "hdr.csv: no measurements after the header"},
	"validate/nan-seconds":       {args: []string{"validate", "--measured", "nansec.csv"}, msg: `nansec.csv:2: seconds "NaN": must be positive and finite`},
	"validate/bad-placement":     {args: []string{"validate", "--measured", "badplace.csv"}, msg: `badplace.csv:2: device h100-sxm: placement kv-cache=nowhere: no level "nowhere"`},
	"validate/out-is-file":       {args: []string{"validate", "--measured", "good.csv", "--out", "file.txt"}, msg: "--out file.txt: file.txt is not a directory"},
	"validate/workload":          {args: []string{"validate", "--measured", "good.csv", "--workload", "x"}, msg: `unknown workload "x"`},
	"validate/sample-heads":      {args: []string{"validate", "--measured", "good.csv", "--sample-heads", "-1"}, msg: "--sample-heads -1: must be positive"},
	"validate/fit-no-colon":      {args: []string{"validate", "--measured", "good.csv", "--fit-level", "ipu-bow"}, msg: `--fit-level "ipu-bow": want DEVICE:LEVEL`},
	"validate/fit-device":        {args: []string{"validate", "--measured", "good.csv", "--fit-level", "nodev:hbm"}, msg: `--fit-level "nodev:hbm": unknown device "nodev"`},
	"validate/fit-level":         {args: []string{"validate", "--measured", "good.csv", "--fit-level", "ipu-bow:hbm"}, msg: `device ipu-bow has no memory level "hbm" (it has sram, exchange, streaming)`},
	"validate/fit-no-rows":       {args: []string{"validate", "--measured", "good.csv", "--fit-level", "ipu-bow:streaming"}, msg: "the measurement files have no dense rows of ipu-bow"},
	"validate/fit-one-row":       {args: []string{"validate", "--measured", "ipuone.csv", "--fit-level", "ipu-bow:streaming"}, msg: "1 samples: a bandwidth and an overhead need at least 2"},

	// profile
	"profile/nothing":         {args: withSmall("profile"), msg: "nothing to write"},
	"profile/no-dir":          {args: withSmall("profile", "--transfer-profile", "missing/t.pb.gz"), msg: "--transfer-profile missing/t.pb.gz: directory missing does not exist"},
	"profile/is-dir":          {args: withSmall("profile", "--cpu-profile", "."), msg: "--cpu-profile .: is a directory"},
	"profile/same-file":       {args: withSmall("profile", "--cpu-profile", "p", "--transfer-profile", "p"), msg: "name the same file p"},
	"profile/duration":        {args: withSmall("profile", "--cpu-profile", "p", "--duration", "-1s"), msg: "--duration -1s: must not be negative"},
	"profile/unknown-device":  {args: withSmall("profile", "--transfer-profile", "t.pb.gz", "--device", "nodev"), msg: `--device: unknown device "nodev"`},
	"profile/memory":          {args: []string{"profile", "--transfer-profile", "t.pb.gz", "--seq", "1M", "--batch", "64", "--heads", "128", "--sample-heads", "8192"}, msg: "needs an estimated"},
	"calibrate/workers":       {args: []string{"calibrate", "--workers", "-1"}, msg: "--workers -1: must be positive"},
	"calibrate/out-is-dir":    {args: []string{"calibrate", "--quick", "--out", "."}, msg: "--out .: is a directory"},
	"calibrate/out-file-dir":  {args: []string{"calibrate", "--quick", "--out", "file.txt/host.yaml"}, msg: "--out file.txt/host.yaml: file.txt is not a directory"},
	"calibrate/device-file":   {args: []string{"calibrate", "--quick", "--out", "h.yaml", "--device-file", "negbw.yaml"}, msg: "negbw.yaml: device \"h100-sxm\""},
	"calibrate/default-unfit": {args: []string{"calibrate", "--quick"}, env: map[string]string{"XDG_CONFIG_HOME": "$DIR/file.txt"}, msg: "/file.txt/bwsim/host.yaml: /"},
	"calibrate/relative-xdg":  {args: []string{"calibrate", "--quick"}, env: map[string]string{"XDG_CONFIG_HOME": "file.txt"}, msg: "path in $XDG_CONFIG_HOME is relative"},

	// bench
	"bench/seq-zero":         {args: []string{"bench", "--seq", "0"}, msg: `--seq "0": must be positive`},
	"bench/runs":             {args: []string{"bench", "--runs", "0"}, msg: "--runs and --bw-runs ≥ 1"},
	"bench/bw-bytes":         {args: []string{"bench", "--bw-bytes", "-5"}, msg: `--bw-bytes "-5": must be positive`},
	"bench/memory":           {args: []string{"bench", "--seq", "1M", "--batch", "64", "--heads", "128", "--sample-heads", "8192"}, msg: "needs an estimated"},
	"bench/dump-inputs-file": {args: withSmall("bench", "--dtype", "fp32", "--runs", "1", "--warmup", "0", "--calibrate=false", "--dump-inputs", "file.txt"), msg: "--dump-inputs file.txt: file.txt is not a directory"},
}

// TestBadInput runs every bad command line in its own empty working
// directory (holding only the fixtures) and checks the exit code, that
// stderr is one line naming the input, that nothing went to stdout, and
// that no file (output or temporary) was left behind.
func TestBadInput(t *testing.T) {
	if len(badCases) < 40 {
		t.Fatalf("only %d cases", len(badCases))
	}
	names := make([]string, 0, len(badCases))
	for n := range badCases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		c := badCases[name]
		t.Run(name, func(t *testing.T) {
			if c.bug != "" && !*runKnownBugs {
				t.Skip("known bug: " + c.bug)
			}
			xdg := isolateConfig(t)
			dir := t.TempDir()
			for p, data := range badFixtures {
				p = filepath.Join(dir, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			for k, v := range c.env {
				t.Setenv(k, strings.ReplaceAll(v, "$DIR", dir))
			}
			before, beforeXDG := listTree(t, dir), listTree(t, xdg)

			var stdout, stderr bytes.Buffer
			code := run(context.Background(), c.args, &stdout, &stderr)

			want := c.code
			if want == 0 {
				want = 2
			}
			errText := stderr.String()
			if code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			if !strings.HasPrefix(errText, "bwsim: ") || !strings.HasSuffix(errText, "\n") {
				t.Errorf("stderr is not a bwsim: line: %q", errText)
			}
			if !strings.Contains(errText, c.msg) {
				t.Errorf("stderr does not say %q", c.msg)
			}
			if n := strings.Count(errText, "\n"); n != 1 && !c.multi {
				t.Errorf("stderr has %d lines, want 1", n)
			}
			for _, bad := range []string{"panic", "goroutine ", ".go:"} {
				if strings.Contains(errText, bad) {
					t.Errorf("stderr holds %q", bad)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			if after := listTree(t, dir); !slices.Equal(after, before) {
				t.Errorf("files left behind: %q (before: %q)", after, before)
			}
			if after := listTree(t, xdg); !slices.Equal(after, beforeXDG) {
				t.Errorf("files left in the config directory: %q", after)
			}
			if t.Failed() {
				t.Logf("args: %q\nstderr: %s", c.args, errText)
			}
		})
	}
}

// listTree lists every file and directory under dir, hidden ones included,
// sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestPanicIsOneLine checks the last line of defence: a command that
// panics (a bug) prints one line and exits with 1, no stack trace.
func TestPanicIsOneLine(t *testing.T) {
	saved := extraCommands
	t.Cleanup(func() { extraCommands = saved })
	extraCommands = append(slices.Clone(saved), func() *cobra.Command {
		return &cobra.Command{Use: "boom", RunE: func(*cobra.Command, []string) error { panic("kaboom") }}
	})
	t.Setenv("BWSIM_DEBUG", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"boom"}, &stdout, &stderr)
	if code != 1 || stderr.String() != "bwsim: internal error: kaboom (a bug in bwsim: please report it with the command line)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
