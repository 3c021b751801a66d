// Package sweep runs grids of attention decode simulations: every method at
// every shape, each kernel run once on the host and its trace priced on
// every device.
//
// A Grid lists methods (MethodSpec: "dense", "sparq:r=32:k=128",
// "sparq:ratio=1/8", "quest:k=256:page=16"; keys shared across methods,
// checked per method), sequence lengths, batch sizes, dtypes, devices and
// the decode steps each point simulates. A method list item may hold value
// ranges ("h2o:k=128..1024", "sparq:ratio=1/2..1/16",
// "doublesparse:label-bits=4|16"), which ExpandMethod turns into a Family
// of specs. Run expands the grid into Points, runs them in parallel on all
// cores, and returns Results: one Row per method × device × shape with the
// predicted time, the speed-up over dense on the same device and shape, the
// bytes moved and the fidelity of the sparse output.
//
// BuildTradeoff turns Results into the trade-off view: per method and
// shape, the fraction of the KV cache read, the output's error and
// attention mass and the predicted speed-up on one device, with the Pareto
// fronts marked (ParetoFront).
//
// Runs are durable: each finished point is appended to a journal in the
// output directory and synced, so an interrupted sweep resumes without
// losing or repeating a point (Options.Resume). A point's key spells out
// every method parameter and the shape, steps included. A Shard runs a
// slice of a grid; Merge joins the shards' results.
//
// The package never draws: package report turns Results into figures and
// an HTML page.
package sweep
