// Package sweep runs grids of attention decode simulations: every method at
// every shape, each kernel run once on the host and its trace priced on
// every device.
//
// A Grid lists methods (MethodSpec: "dense", "sparq:r=32:k=128",
// "sparq:ratio=1/8"), sequence lengths, batch sizes, dtypes and devices.
// Run expands it into Points, runs them in parallel on all cores, and
// returns Results: one Row per method × device × shape with the predicted
// time, the speed-up over dense on the same device and shape, the bytes
// moved and the fidelity of the sparse output.
//
// Runs are durable: each finished point is appended to a journal in the
// output directory and synced, so an interrupted sweep resumes without
// losing or repeating a point (Options.Resume). A Shard runs a slice of a
// grid; Merge joins the shards' results.
//
// The package never draws: package report turns Results into figures and
// an HTML page.
package sweep
