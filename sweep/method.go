package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bwsim/bwsim/kernels"
)

// MethodSpec is one method of a sweep, written "NAME[:KEY=VALUE]...", for
// example "dense", "sparq:r=32:k=128", "sparq:ratio=1/8",
// "quest:k=256:page=16" or "sparq:r=16:k=64:layout=once:impl=fused".
//
// Keys share their meaning across methods (and with the flags of bwsim
// run) and are checked per method (MethodKeys):
//
//	dense:        impl
//	sparq:        r, k, ratio, layout, impl, realloc
//	topk:         k, impl, realloc
//	flexgen:      k, impl
//	h2o:          k, ratio, impl
//	window:       k, ratio, sinks, impl
//	quest:        k, ratio, page, impl
//	loki:         r, k, ratio, layout, impl
//	doublesparse: r, k, ratio, label-bits, impl
//
// k is every method's token budget (positions read exactly; H2O's cache
// size), r the proxy size where there is one (SparQ's query components,
// Loki's principal components d′, Double Sparsity's channels; at most the
// head size), page Quest's page size, label-bits (alias bits) Double
// Sparsity's label precision and sinks the initial tokens window always
// reads. Unset, k is DefaultK, r DefaultR (DefaultChannels for
// doublesparse) and page, label-bits and sinks take kernels.DefaultPage,
// kernels.DefaultLabelBits and kernels.DefaultSinks. impl and layout left
// unset take the sweep's values; realloc=false turns mean-value
// reallocation off.
//
// ratio=1/c sets the budget from the shape so that the method reads about
// 1/c of the KV-cache bytes dense reads, at every sequence length S and
// head size d_h (rounded, at least 1):
//
//	sparq, loki, doublesparse: r = d_h/c and k = S/(2c): the proxy scan
//	    and the exact gather each read half of the budget (doublesparse:
//	    exactly so with 16-bit labels of a 16-bit cache; fewer label bits
//	    read less);
//	h2o, window: k = S/c (they read k rows of K and V and nothing else);
//	quest: k = S·(1/c − 1/page): the page metadata (a min and a max per
//	    channel and page) reads 1/page of dense's bytes by itself, so the
//	    ratio must exceed 1/page.
//
// topk and flexgen have no ratio: they read all of K to score exactly, so
// they never move less than half of dense's bytes. ratio excludes r and k.
//
// A method list item may give a key several values, which ExpandMethod
// turns into one spec per combination: "A..B" doubles from A to B
// ("k=128..1024"), "1/A..1/B" doubles the denominator of a ratio
// ("ratio=1/2..1/16"), and "|" separates alternatives ("label-bits=4|16",
// "layout=twice|once"). The specs of one item form a Family.
type MethodSpec struct {
	// Name is the kernel, one of kernels.Methods().
	Name string
	// R and K are fixed parameters; both 0 when Ratio is set, R 0 for
	// methods without a proxy.
	R, K int
	// Ratio is the target fraction 1/c of dense's KV-cache bytes, in
	// (0, 1]; 0 when R and K are fixed.
	Ratio float64
	// KLayout and Impl are "" when the spec leaves them to the sweep.
	KLayout kernels.KLayout
	Impl    kernels.Impl
	// NoRealloc is realloc=false.
	NoRealloc bool
	// Page (quest), LabelBits (doublesparse) and Sinks (window); 0 for
	// other methods.
	Page, LabelBits, Sinks int
}

// methodKeys lists the keys each method accepts, in canonical order.
var methodKeys = map[string][]string{
	kernels.MethodDense:        {"impl"},
	kernels.MethodSparQ:        {"r", "k", "ratio", "layout", "impl", "realloc"},
	kernels.MethodTopK:         {"k", "impl", "realloc"},
	kernels.MethodFlexGen:      {"k", "impl"},
	kernels.MethodH2O:          {"k", "ratio", "impl"},
	kernels.MethodWindow:       {"k", "ratio", "sinks", "impl"},
	kernels.MethodQuest:        {"k", "ratio", "page", "impl"},
	kernels.MethodLoki:         {"r", "k", "ratio", "layout", "impl"},
	kernels.MethodDoubleSparse: {"r", "k", "ratio", "label-bits", "impl"},
}

// keyAliases are other spellings of keys.
var keyAliases = map[string]string{
	"k-layout": "layout", "k_layout": "layout",
	"bits": "label-bits", "label_bits": "label-bits", "labelbits": "label-bits",
}

// canonicalKey lowercases a key and resolves its aliases.
func canonicalKey(key string) string {
	key = strings.ToLower(strings.TrimSpace(key))
	if a, ok := keyAliases[key]; ok {
		return a
	}
	return key
}

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

// hasRealloc reports whether the method can turn reallocation off.
func hasRealloc(method string) bool { return contains(methodKeys[method], "realloc") }

// ParseMethod parses one method spec (without value ranges: see
// ExpandMethod). Errors name the offending key and list what is allowed.
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
		key, val = canonicalKey(key), strings.TrimSpace(val)
		if !ok || key == "" || val == "" {
			return MethodSpec{}, fmt.Errorf("method %q: %q is not KEY=VALUE (keys for %s: %s)", s, f, name, strings.Join(keys, ", "))
		}
		if !contains(keys, key) {
			why := fmt.Sprintf("keys: %s", strings.Join(keys, ", "))
			if key == "ratio" && (name == kernels.MethodTopK || name == kernels.MethodFlexGen) {
				why = "it reads all of K to score exactly, so it never moves less than half of dense's bytes; give k"
			}
			return MethodSpec{}, fmt.Errorf("method %q: unknown key %q for %s (%s)", s, key, name, why)
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
		case "label-bits":
			m.LabelBits, err = positiveInt(val)
			if err == nil && !slices.Contains(kernels.LabelBitsAllowed, m.LabelBits) {
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
		what := "r and k"
		if !usesR(name) {
			what = "k"
		}
		return MethodSpec{}, fmt.Errorf("method %q: ratio sets %s from the shape; give either ratio or %s", s, what, what)
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
		if m.Ratio > 0 && m.Ratio <= 1/float64(m.Page) {
			return MethodSpec{}, fmt.Errorf("method %q: ratio=%s: quest's page metadata alone reads 1/%d of dense's bytes (a min and a max per channel and page of %d); want a ratio above 1/%d, or a larger page",
				s, formatRatio(m.Ratio), m.Page, m.Page, m.Page)
		}
		if m.Ratio == 0 && m.Page > m.K {
			return MethodSpec{}, fmt.Errorf("method %q: page %d exceeds the token budget k %d: not one page fits", s, m.Page, m.K)
		}
	case kernels.MethodDoubleSparse:
		if m.LabelBits == 0 {
			m.LabelBits = kernels.DefaultLabelBits
		}
	case kernels.MethodWindow:
		if !seen["sinks"] {
			m.Sinks = kernels.DefaultSinks
		}
		if m.Ratio == 0 && m.Sinks > m.K {
			return MethodSpec{}, fmt.Errorf("method %q: sinks %d exceed the token budget k %d", s, m.Sinks, m.K)
		}
	}
	return m, nil
}

// Family is one item of a method list: a spec, or a spec with value
// ranges, and the specs it expands to. The trade-off view draws a family
// as one line.
type Family struct {
	// Name is the item in canonical spelling ("sparq:r=8..64:k=128"); for
	// an item without ranges, the spec's String.
	Name    string
	Methods []MethodSpec
}

// maxExpansion bounds the specs one method list item may expand to.
const maxExpansion = 1024

// ExpandMethod parses one method list item, whose keys may take several
// values ("A..B" doubling, "1/A..1/B" for ratio, "|" between
// alternatives), into one spec per combination, the first key varying
// slowest.
func ExpandMethod(item string) (Family, error) {
	item = strings.TrimSpace(item)
	fields := strings.Split(item, ":")
	name := strings.ToLower(strings.TrimSpace(fields[0]))
	combos := []string{name}
	canon := []string{name}
	ranged := false
	keys, known := methodKeys[name]
	if !known {
		_, err := ParseMethod(item)
		return Family{}, err
	}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		key, val = canonicalKey(key), strings.TrimSpace(val)
		if !ok || key == "" || val == "" {
			return Family{}, fmt.Errorf("method %q: %q is not KEY=VALUE (keys for %s: %s)", item, f, name, strings.Join(keys, ", "))
		}
		vals, err := []string{val}, error(nil)
		if contains(keys, key) { // ParseMethod reports unknown keys
			vals, err = expandValues(key, val)
		}
		if err != nil {
			return Family{}, fmt.Errorf("method %q: %s=%s: %v", item, key, val, err)
		}
		ranged = ranged || len(vals) > 1
		if len(combos)*len(vals) > maxExpansion {
			return Family{}, fmt.Errorf("method %q: more than %d combinations", item, maxExpansion)
		}
		next := make([]string, 0, len(combos)*len(vals))
		for _, c := range combos {
			for _, v := range vals {
				next = append(next, c+":"+key+"="+v)
			}
		}
		combos = next
		canon = append(canon, key+"="+val)
	}
	fam := Family{}
	for _, c := range combos {
		m, err := ParseMethod(c)
		if err != nil {
			if ranged {
				return Family{}, fmt.Errorf("method %q: %w", item, err)
			}
			return Family{}, err
		}
		fam.Methods = append(fam.Methods, m)
	}
	if ranged {
		fam.Name = strings.Join(canon, ":")
	} else {
		fam.Name = fam.Methods[0].String()
	}
	return fam, nil
}

// expandValues turns a value with ranges into its values; a plain value is
// itself.
func expandValues(key, val string) ([]string, error) {
	var out []string
	for _, alt := range strings.Split(val, "|") {
		alt = strings.TrimSpace(alt)
		lo, hi, isRange := strings.Cut(alt, "..")
		if !isRange {
			out = append(out, alt)
			continue
		}
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		ratio := key == "ratio"
		if ratio {
			l, okl := strings.CutPrefix(lo, "1/")
			h, okh := strings.CutPrefix(hi, "1/")
			if !okl || !okh {
				return nil, fmt.Errorf("a ratio range is 1/A..1/B, e.g. 1/2..1/16")
			}
			lo, hi = l, h
		} else if !slices.Contains([]string{"r", "k", "page", "label-bits", "sinks"}, key) {
			return nil, fmt.Errorf("%s takes no range (list values with |)", key)
		}
		a, err1 := positiveInt(lo)
		b, err2 := positiveInt(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("range %q: want positive whole numbers at both ends", alt)
		}
		if b < a {
			return nil, fmt.Errorf("range %q: end %d is below start %d", alt, b, a)
		}
		for n := a; n <= b && len(out) <= maxExpansion; n *= 2 {
			if ratio {
				out = append(out, "1/"+strconv.Itoa(n))
			} else {
				out = append(out, strconv.Itoa(n))
			}
		}
	}
	return out, nil
}

// ParseFamilies parses method list items (each may hold several,
// comma-separated). It refuses a spec listed twice (after
// canonicalisation) and an empty list.
func ParseFamilies(list []string) ([]Family, error) {
	var out []Family
	seen := map[string]bool{}
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			fam, err := ExpandMethod(s)
			if err != nil {
				return nil, err
			}
			for _, m := range fam.Methods {
				if seen[m.String()] {
					return nil, fmt.Errorf("method %q listed twice", m.String())
				}
				seen[m.String()] = true
			}
			out = append(out, fam)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no methods given")
	}
	return out, nil
}

// ParseMethods parses method list items into specs, value ranges
// expanded; see ParseFamilies.
func ParseMethods(list []string) ([]MethodSpec, error) {
	fams, err := ParseFamilies(list)
	if err != nil {
		return nil, err
	}
	var out []MethodSpec
	for _, f := range fams {
		out = append(out, f.Methods...)
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
// order (ratio, or r and k, always; page, label-bits and sinks when not
// the default; layout, impl and realloc when set). Parsing it gives the
// same spec back.
func (m MethodSpec) String() string { return m.format(false) }

// FullString is the spec with every parameter of the method written out,
// defaults and the sweep's impl and layout included (unfused and each
// method's default layout when unset): "quest:k=128:page=16:impl=unfused".
// Points' keys use it, so that a journal record never stands for a
// different computation after a default changes.
func (m MethodSpec) FullString() string { return m.format(true) }

func (m MethodSpec) format(full bool) string {
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
	if m.Page != 0 && (full || m.Page != kernels.DefaultPage) {
		fmt.Fprintf(&b, ":page=%d", m.Page)
	}
	if m.LabelBits != 0 && (full || m.LabelBits != kernels.DefaultLabelBits) {
		fmt.Fprintf(&b, ":label-bits=%d", m.LabelBits)
	}
	if m.Name == kernels.MethodWindow && (full || m.Sinks != kernels.DefaultSinks) {
		fmt.Fprintf(&b, ":sinks=%d", m.Sinks)
	}
	layout, impl := m.KLayout, m.Impl
	if full {
		if layout == "" && hasLayout(m.Name) {
			layout = defaultLayout(m.Name)
		}
		if impl == "" {
			impl = kernels.Unfused
		}
	}
	if layout != "" {
		b.WriteString(":layout=" + string(layout))
	}
	if impl != "" {
		b.WriteString(":impl=" + string(impl))
	}
	switch {
	case m.NoRealloc:
		b.WriteString(":realloc=false")
	case full && hasRealloc(m.Name):
		b.WriteString(":realloc=true")
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
	if m.LabelBits != 0 && m.LabelBits != kernels.DefaultLabelBits {
		parts = append(parts, fmt.Sprintf("b%d", m.LabelBits))
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

// Budget returns the proxy size r and token budget k the method uses at a
// shape: the fixed ones, or those its ratio gives (see MethodSpec). r is 0
// for methods without a proxy, k 0 for dense.
func (m MethodSpec) Budget(headDim, seq int) (r, k int) {
	if m.Name == kernels.MethodDense {
		return 0, 0
	}
	r, k = m.R, m.K
	if x := m.Ratio; x > 0 {
		S, D := float64(seq), float64(headDim)
		switch m.Name {
		case kernels.MethodH2O, kernels.MethodWindow:
			k = int(math.Round(S * x))
		case kernels.MethodQuest:
			k = int(math.Round(S * (x - 1/float64(max(m.Page, 1)))))
		default:
			r = int(math.Round(D * x))
			k = int(math.Round(S * x / 2))
		}
		r, k = max(1, r), max(1, k)
	}
	if !usesR(m.Name) {
		r = 0
	}
	return r, k
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
	s.R, s.K = m.Budget(shape.HeadDim, shape.Seq)
	if hasLayout(m.Name) {
		s.KLayout = m.KLayout
		if s.KLayout == "" {
			s.KLayout = defaultLayout(m.Name)
		}
	}
	s.NoReallocation = m.NoRealloc
	s.Page, s.LabelBits, s.Sinks = m.Page, m.LabelBits, m.Sinks
	return s
}

func contains(list []string, s string) bool {
	return slices.Contains(list, s)
}
