//go:build !amd64 || purego

package kernels

// Without the assembly every primitive is its Go version, whatever the
// level asked for.

func detectSIMD() simdLevel { return levelGo }

func dotAt(_ simdLevel, a, b []float32) float32                 { return dotGo(a, b) }
func axpyAt(_ simdLevel, alpha float32, x, y []float32)         { axpyGo(alpha, x, y) }
func maxAt(_ simdLevel, xs []float32) float32                   { return maxGo(xs) }
func expSubSumAt(_ simdLevel, xs []float32, m float32) float64  { return expSubSumGo(xs, m) }
func scaleAt(_ simdLevel, s float32, xs []float32)              { scaleGo(s, xs) }
func sumAt(_ simdLevel, xs []float32) float32                   { return sumGo(xs) }
func dotRowsAt(l simdLevel, q, k, out []float32, scale float32) { dotRowsEach(l, q, k, out, scale) }
func axpyRowsAt(l simdLevel, w, v, out []float32)               { axpyRowsEach(l, w, v, out) }

func filterGreaterAt(_ simdLevel, vals []float32, t float32, base int32, out []int32) int {
	return filterGreaterGo(vals, t, base, out)
}

func gatherColsAt(_ simdLevel, k []float32, d int, sel []int32, coef []float32, out []float32) {
	gatherColsGo(k, d, sel, coef, out)
}

func axpySelAt(l simdLevel, coef, src []float32, stride int, sel []int32, out []float32) {
	axpySelGo(l, coef, src, stride, sel, out)
}
