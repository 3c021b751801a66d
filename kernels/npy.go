package kernels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/x448/float16"
)

// array is an n-dimensional, C-ordered array of floats stored at a byte
// offset of a file: the part of a .npy or .safetensors file the loaders
// read, without reading the data.
type array struct {
	r     io.ReaderAt
	off   int64 // byte offset of element 0
	kind  elemKind
	order binary.ByteOrder
	shape []int64
}

type elemKind uint8

const (
	elemF16 elemKind = iota + 1
	elemBF16
	elemF32
	elemF64
)

func (k elemKind) size() int64 {
	switch k {
	case elemF16, elemBF16:
		return 2
	case elemF32:
		return 4
	}
	return 8
}

// maxArrayElems bounds an array's element count so that every byte offset
// fits an int64 with room to spare.
const maxArrayElems = 1 << 52

// numel returns the product of shape, or an error if a dimension is
// negative or the product is absurdly large.
func numel(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		if d > 0 && n > maxArrayElems/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return n, nil
}

// read converts n elements starting at element index i into dst[:n].
func (a *array) read(dst []float32, i, n int64) error {
	if n == 0 {
		return nil
	}
	total, err := numel(a.shape)
	if err != nil {
		return err
	}
	if i < 0 || n < 0 || i > total-n {
		return fmt.Errorf("elements [%d, %d) outside an array of %d", i, i+n, total)
	}
	es := a.kind.size()
	buf := make([]byte, n*es)
	if _, err := a.r.ReadAt(buf, a.off+i*es); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("data truncated: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	for j := range dst[:n] {
		b := buf[int64(j)*es:]
		switch a.kind {
		case elemF16:
			dst[j] = float16.Frombits(a.order.Uint16(b)).Float32()
		case elemBF16:
			dst[j] = math.Float32frombits(uint32(a.order.Uint16(b)) << 16)
		case elemF32:
			dst[j] = math.Float32frombits(a.order.Uint32(b))
		case elemF64:
			dst[j] = float32(math.Float64frombits(a.order.Uint64(b)))
		}
	}
	return nil
}

// maxNPYHeader bounds a .npy header (NumPy itself writes a few hundred
// bytes).
const maxNPYHeader = 1 << 20

// parseNPY reads a .npy header (format versions 1, 2 and 3) from r, whose
// size in bytes is size, and returns the array it describes. Only
// C-ordered float16, float32 and float64 arrays are accepted; the data must
// be present in full.
func parseNPY(r io.ReaderAt, size int64) (*array, error) {
	var pre [12]byte
	if _, err := r.ReadAt(pre[:10], 0); err != nil {
		return nil, fmt.Errorf("npy: too short for a header")
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("npy: not a .npy file (bad magic)")
	}
	var hlen, start int64
	switch pre[6] {
	case 1:
		hlen, start = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		if _, err := r.ReadAt(pre[:12], 0); err != nil {
			return nil, fmt.Errorf("npy: too short for a version %d header", pre[6])
		}
		hlen, start = int64(binary.LittleEndian.Uint32(pre[8:12])), 12
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	if hlen > maxNPYHeader || start+hlen > size {
		return nil, fmt.Errorf("npy: header of %d bytes does not fit the file", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, start); err != nil {
		return nil, fmt.Errorf("npy: reading the header: %w", err)
	}
	fields, err := parsePyDict(string(bytes.TrimRight(hdr, " \n\x00")))
	if err != nil {
		return nil, fmt.Errorf("npy: header: %w", err)
	}
	a := &array{r: r, off: start + hlen}
	descr, ok := fields["descr"]
	if !ok {
		return nil, fmt.Errorf("npy: header has no descr")
	}
	descr = unquote(descr)
	if len(descr) < 2 {
		return nil, fmt.Errorf("npy: dtype %q not supported (want float16, float32 or float64)", descr)
	}
	switch descr[0] {
	case '<', '|':
		a.order = binary.LittleEndian
	case '>':
		a.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("npy: dtype %q not supported (want float16, float32 or float64)", descr)
	}
	switch descr[1:] {
	case "f2":
		a.kind = elemF16
	case "f4":
		a.kind = elemF32
	case "f8":
		a.kind = elemF64
	default:
		return nil, fmt.Errorf("npy: dtype %q not supported (want float16, float32 or float64; save bfloat16 as float32)", descr)
	}
	switch fields["fortran_order"] {
	case "False":
	case "True":
		return nil, fmt.Errorf("npy: Fortran-ordered arrays are not supported (save np.ascontiguousarray(x))")
	default:
		return nil, fmt.Errorf("npy: header has no valid fortran_order")
	}
	sh, ok := fields["shape"]
	if !ok {
		return nil, fmt.Errorf("npy: header has no shape")
	}
	if a.shape, err = parseShapeTuple(sh); err != nil {
		return nil, fmt.Errorf("npy: shape %s: %w", sh, err)
	}
	n, err := numel(a.shape)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if n > (size-a.off)/a.kind.size() {
		return nil, fmt.Errorf("npy: %d elements of %d bytes need %d bytes of data, the file has %d", n, a.kind.size(), n*a.kind.size(), size-a.off)
	}
	return a, nil
}

// parsePyDict parses the flat Python dict literal of a .npy header, such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, into its keys
// and the source text of each value.
func parsePyDict(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("not a dict literal")
	}
	s = s[1 : len(s)-1]
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return out, nil
		}
		if s[0] != '\'' && s[0] != '"' {
			return nil, fmt.Errorf("expected a quoted key at %q", clip(s))
		}
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return nil, fmt.Errorf("unterminated key")
		}
		key := s[1 : 1+end]
		s = strings.TrimLeft(s[2+end:], " ")
		if s == "" || s[0] != ':' {
			return nil, fmt.Errorf("expected ':' after key %q", key)
		}
		s = strings.TrimLeft(s[1:], " ")
		// The value runs to the next top-level comma.
		depth, quote, i := 0, byte(0), 0
	scan:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '(' || c == '[':
				depth++
			case c == ')' || c == ']':
				depth--
				if depth < 0 {
					return nil, fmt.Errorf("unbalanced brackets in the value of %q", key)
				}
			case c == ',' && depth == 0:
				break scan
			}
		}
		if quote != 0 || depth != 0 {
			return nil, fmt.Errorf("unterminated value of %q", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q given twice", key)
		}
		out[key] = strings.TrimSpace(s[:i])
		s = s[i:]
	}
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// parseShapeTuple parses "(2, 3)", "(5,)" or "()".
func parseShapeTuple(s string) ([]int64, error) {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, fmt.Errorf("not a tuple")
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	var shape []int64
	if body == "" {
		return shape, nil
	}
	parts := strings.Split(body, ",")
	if strings.TrimSpace(parts[len(parts)-1]) == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 32 {
		return nil, fmt.Errorf("%d dimensions", len(parts))
	}
	for _, f := range parts {
		f = strings.TrimSuffix(strings.TrimSpace(f), "L")
		d, err := strconv.ParseInt(f, 10, 64)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("dimension %q is not a non-negative integer", f)
		}
		shape = append(shape, d)
	}
	return shape, nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
