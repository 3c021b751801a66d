package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/kernels"
)

// MethodSpec is one entry of a sweep's method list, written
// "NAME[:KEY=VALUE]...", for example "dense", "sparq:r=32:k=128",
// "sparq:ratio=1/8", "quest:k=256:page=16" or
// "sparq:r=16:k=64:layout=once:impl=fused".
//
// Keys are parsed generically and checked per method (MethodKeys):
//
//	dense:        impl
//	sparq:        r, k, ratio, layout, realloc, impl
//	topk:         k, realloc, impl
//	flexgen, h2o: k, impl
//	window:       k, sinks, impl
//	quest:        k, page, impl
//	loki:         r, k, ratio, layout, impl
//	doublesparse: r, k, bits, impl
//
// k is the token budget (positions read exactly) and r the proxy size
// (SparQ's query components, Loki's principal components, Double Sparsity's
// channels); unset they are 128 and 32 (16 for doublesparse), and page,
// bits and sinks take the kernels' defaults. ratio=1/c picks r and k per
// shape with the SparQ paper's proportional recipe (r = d_h/c, k = S/(2c),
// rounded, at least 1), so the method moves about 1/c of dense's bytes at
// every sequence length; it excludes r and k. impl and layout left unset
// take the sweep's values; realloc=false turns mean-value reallocation off.
type MethodSpec struct {
	// Name is the kernel, one of kernels.Methods().
	Name string
	// R and K are fixed parameters; both 0 when Ratio is set, R 0 for
	// methods without a proxy.
	R, K int
	// Ratio is the target compression 1/c of the proportional recipe, in
	// (0, 1]; 0 when R and K are fixed.
	Ratio float64
	// KLayout and Impl are "" when the spec leaves them to the sweep.
	KLayout kernels.KLayout
	Impl    kernels.Impl
	// NoRealloc is realloc=false.
	NoRealloc bool
	// Page (quest), Bits (doublesparse's label precision) and Sinks
	// (window); 0 for other methods.
	Page, Bits, Sinks int
}

// methodKeys lists the keys each method accepts, in canonical order.
var methodKeys = map[string][]string{
	kernels.MethodDense:        {"impl"},
	kernels.MethodSparQ:        {"r", "k", "ratio", "layout", "impl", "realloc"},
	kernels.MethodTopK:         {"k", "impl", "realloc"},
	kernels.MethodFlexGen:      {"k", "impl"},
	kernels.MethodH2O:          {"k", "impl"},
	kernels.MethodWindow:       {"k", "sinks", "impl"},
	kernels.MethodQuest:        {"k", "page", "impl"},
	kernels.MethodLoki:         {"r", "k", "ratio", "layout", "impl"},
	kernels.MethodDoubleSparse: {"r", "k", "bits", "impl"},
}

// keyAliases are other spellings of keys.
var keyAliases = map[string]string{"k-layout": "layout", "k_layout": "layout", "label-bits": "bits", "label_bits": "bits"}

// Default parameters of specs that leave them unset.
const (
	DefaultK = 128
	DefaultR = 32
	// DefaultChannels is Double Sparsity's default r: 16 of 128 channels.
	DefaultChannels = 16
)

// MethodKeys returns the keys a method's spec accepts; nil for an unknown
// method.
func MethodKeys(method string) []string { return methodKeys[method] }

// Methods returns the method names a spec may start with, dense first.
func Methods() []string {
	var names []string
	for _, n := range kernels.Methods() {
		if _, ok := methodKeys[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

// usesR reports whether the method has a proxy of size r.
func usesR(method string) bool { return contains(methodKeys[method], "r") }

// ParseMethod parses one method spec. Errors name the offending key and list
// what is allowed.
func ParseMethod(s string) (MethodSpec, error) {
	fields := strings.Split(strings.TrimSpace(s), ":")
	name := strings.ToLower(strings.TrimSpace(fields[0]))
	keys, ok := methodKeys[name]
	if !ok {
		return MethodSpec{}, fmt.Errorf("method %q: unknown method %q (want %s)", s, name, strings.Join(Methods(), ", "))
	}
	m := MethodSpec{Name: name}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		if a, ok := keyAliases[key]; ok {
			key = a
		}
		if !ok || key == "" || val == "" {
			return MethodSpec{}, fmt.Errorf("method %q: %q is not KEY=VALUE (keys for %s: %s)", s, f, name, strings.Join(keys, ", "))
		}
		if !contains(keys, key) {
			return MethodSpec{}, fmt.Errorf("method %q: unknown key %q for %s (keys: %s)", s, key, name, strings.Join(keys, ", "))
		}
		if seen[key] {
			return MethodSpec{}, fmt.Errorf("method %q: key %q given twice", s, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "r":
			m.R, err = positiveInt(val)
		case "k":
			m.K, err = positiveInt(val)
		case "page":
			m.Page, err = positiveInt(val)
		case "sinks":
			m.Sinks, err = strconv.Atoi(val)
			if err != nil || m.Sinks < 0 {
				err = fmt.Errorf("not a whole number ≥ 0")
			}
		case "bits":
			m.Bits, err = positiveInt(val)
			if err == nil && !slices.Contains(kernels.LabelBitsAllowed, m.Bits) {
				err = fmt.Errorf("want one of %v", kernels.LabelBitsAllowed)
			}
		case "ratio":
			m.Ratio, err = parseRatio(val)
		case "layout":
			m.KLayout = kernels.KLayout(strings.ToLower(val))
			if m.KLayout != kernels.KTwice && m.KLayout != kernels.KOnce {
				err = fmt.Errorf("want %s or %s", kernels.KTwice, kernels.KOnce)
			}
		case "impl":
			m.Impl = kernels.Impl(strings.ToLower(val))
			if m.Impl != kernels.Unfused && m.Impl != kernels.Fused {
				err = fmt.Errorf("want %s or %s", kernels.Unfused, kernels.Fused)
			}
		case "realloc":
			var b bool
			b, err = strconv.ParseBool(val)
			if err != nil {
				err = fmt.Errorf("want true or false")
			}
			m.NoRealloc = !b
		}
		if err != nil {
			return MethodSpec{}, fmt.Errorf("method %q: %s=%s: %v", s, key, val, err)
		}
	}
	if name == kernels.MethodDense {
		return m, nil
	}
	if m.Ratio > 0 && (seen["r"] || seen["k"]) {
		return MethodSpec{}, fmt.Errorf("method %q: ratio sets r and k from the shape; give either ratio or r and k", s)
	}
	if m.Ratio == 0 {
		if m.K == 0 {
			m.K = DefaultK
		}
		if m.R == 0 && usesR(name) {
			m.R = DefaultR
			if name == kernels.MethodDoubleSparse {
				m.R = DefaultChannels
			}
		}
	}
	switch name {
	case kernels.MethodQuest:
		if m.Page == 0 {
			m.Page = kernels.DefaultPage
		}
	case kernels.MethodDoubleSparse:
		if m.Bits == 0 {
			m.Bits = kernels.DefaultLabelBits
		}
	case kernels.MethodWindow:
		if !seen["sinks"] {
			m.Sinks = kernels.DefaultSinks
		}
	}
	return m, nil
}

// ParseMethods parses a comma-separated list of method specs; it refuses
// duplicates (after canonicalisation) and an empty list.
func ParseMethods(list []string) ([]MethodSpec, error) {
	var out []MethodSpec
	seen := map[string]bool{}
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			m, err := ParseMethod(s)
			if err != nil {
				return nil, err
			}
			if seen[m.String()] {
				return nil, fmt.Errorf("method %q listed twice", m.String())
			}
			seen[m.String()] = true
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no methods given")
	}
	return out, nil
}

func positiveInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("not a whole number")
	}
	if n <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return n, nil
}

// parseRatio reads "1/8" or "0.125".
func parseRatio(s string) (float64, error) {
	var x float64
	if num, den, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.ParseFloat(strings.TrimSpace(num), 64)
		d, err2 := strconv.ParseFloat(strings.TrimSpace(den), 64)
		if err1 != nil || err2 != nil || d == 0 {
			return 0, fmt.Errorf("not a fraction such as 1/8")
		}
		x = n / d
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("not a number or fraction such as 1/8 or 0.125")
		}
		x = f
	}
	if !(x > 0 && x <= 1) || math.IsNaN(x) {
		return 0, fmt.Errorf("must be in (0, 1]: the fraction of dense's bytes to move")
	}
	return x, nil
}

// formatRatio writes 1/c when c is whole, else the decimal.
func formatRatio(x float64) string {
	c := 1 / x
	if r := math.Round(c); math.Abs(c-r) < 1e-9*c {
		return "1/" + strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// String is the canonical spec: the name, then the parameters in a fixed
// order (r and k always; page, bits and sinks when not the default; layout,
// impl and realloc when set). Parsing it gives the same spec back.
func (m MethodSpec) String() string {
	var b strings.Builder
	b.WriteString(m.Name)
	if m.Name != kernels.MethodDense {
		switch {
		case m.Ratio > 0:
			b.WriteString(":ratio=" + formatRatio(m.Ratio))
		case usesR(m.Name):
			fmt.Fprintf(&b, ":r=%d:k=%d", m.R, m.K)
		default:
			fmt.Fprintf(&b, ":k=%d", m.K)
		}
	}
	if m.Page != 0 && m.Page != kernels.DefaultPage {
		fmt.Fprintf(&b, ":page=%d", m.Page)
	}
	if m.Bits != 0 && m.Bits != kernels.DefaultLabelBits {
		fmt.Fprintf(&b, ":bits=%d", m.Bits)
	}
	if m.Name == kernels.MethodWindow && m.Sinks != kernels.DefaultSinks {
		fmt.Fprintf(&b, ":sinks=%d", m.Sinks)
	}
	if m.KLayout != "" {
		b.WriteString(":layout=" + string(m.KLayout))
	}
	if m.Impl != "" {
		b.WriteString(":impl=" + string(m.Impl))
	}
	if m.NoRealloc {
		b.WriteString(":realloc=false")
	}
	return b.String()
}

// MarshalText writes the canonical spec.
func (m MethodSpec) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses a spec.
func (m *MethodSpec) UnmarshalText(b []byte) error {
	p, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// Slug is the spec as one word for benchmark names and file names:
// "dense", "sparq-r32-k128", "sparq-1of8", "quest-k256-p32",
// "sparq-r32-k128-once-fused".
func (m MethodSpec) Slug() string {
	parts := []string{m.Name}
	if m.Name != kernels.MethodDense {
		switch {
		case m.Ratio > 0:
			parts = append(parts, strings.ReplaceAll(formatRatio(m.Ratio), "/", "of"))
		case usesR(m.Name):
			parts = append(parts, fmt.Sprintf("r%d", m.R), fmt.Sprintf("k%d", m.K))
		default:
			parts = append(parts, fmt.Sprintf("k%d", m.K))
		}
	}
	if m.Page != 0 && m.Page != kernels.DefaultPage {
		parts = append(parts, fmt.Sprintf("p%d", m.Page))
	}
	if m.Bits != 0 && m.Bits != kernels.DefaultLabelBits {
		parts = append(parts, fmt.Sprintf("b%d", m.Bits))
	}
	if m.Name == kernels.MethodWindow && m.Sinks != kernels.DefaultSinks {
		parts = append(parts, fmt.Sprintf("s%d", m.Sinks))
	}
	if m.KLayout != "" && m.KLayout != defaultLayout(m.Name) {
		parts = append(parts, string(m.KLayout))
	}
	if m.Impl != "" && m.Impl != kernels.Unfused {
		parts = append(parts, string(m.Impl))
	}
	if m.NoRealloc {
		parts = append(parts, "norealloc")
	}
	return strings.Join(parts, "-")
}

// defaultLayout is the K layout a method uses when none is given: SparQ
// stores K twice, Loki once.
func defaultLayout(method string) kernels.KLayout {
	if method == kernels.MethodLoki {
		return kernels.KOnce
	}
	return kernels.KTwice
}

// hasLayout reports whether the method stores K in a choice of layouts.
func hasLayout(method string) bool { return contains(methodKeys[method], "layout") }

// withDefaults fills the keys the spec leaves to the sweep. Defaults equal to
// the method's own are left unset so labels stay short.
func (m MethodSpec) withDefaults(impl kernels.Impl, layout kernels.KLayout) MethodSpec {
	if m.Impl == "" && impl != kernels.Unfused {
		m.Impl = impl
	}
	if hasLayout(m.Name) && m.KLayout == "" && layout != "" && layout != defaultLayout(m.Name) {
		m.KLayout = layout
	}
	return m
}

// Spec resolves the method for one shape into a kernel spec.
func (m MethodSpec) Spec(shape kernels.Shape, appendKV bool) kernels.Spec {
	s := kernels.Spec{Method: m.Name, Impl: m.Impl, AppendKV: appendKV}
	if s.Impl == "" {
		s.Impl = kernels.Unfused
	}
	if m.Name == kernels.MethodDense {
		return s
	}
	s.R, s.K = m.R, m.K
	if m.Ratio > 0 {
		s.R = max(1, int(math.Round(float64(shape.HeadDim)*m.Ratio)))
		s.K = max(1, int(math.Round(float64(shape.Seq)*m.Ratio/2)))
	}
	if !usesR(m.Name) {
		s.R = 0
	}
	if hasLayout(m.Name) {
		s.KLayout = m.KLayout
		if s.KLayout == "" {
			s.KLayout = defaultLayout(m.Name)
		}
	}
	s.NoReallocation = m.NoRealloc
	s.Page, s.LabelBits, s.Sinks = m.Page, m.Bits, m.Sinks
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
