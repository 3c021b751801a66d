package kernels

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// maxSafetensorsHeader bounds the JSON header of a .safetensors file (the
// format's own implementation refuses headers above 100 MB).
const maxSafetensorsHeader = 100 << 20

// parseSafetensors reads the header of a .safetensors file from r, whose
// size in bytes is size, and returns its float tensors (F16, BF16, F32,
// F64) by name. Tensors of other types are listed in skipped. Every tensor's
// data must lie inside the file, match its shape, and not overlap another's.
func parseSafetensors(r io.ReaderAt, size int64) (tensors map[string]*array, skipped []string, err error) {
	var pre [8]byte
	if _, err := r.ReadAt(pre[:], 0); err != nil {
		return nil, nil, fmt.Errorf("safetensors: too short for a header")
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > maxSafetensorsHeader || int64(n) > size-8 {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes does not fit the file", n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, nil, fmt.Errorf("safetensors: reading the header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object: %w", err)
	}
	base := 8 + int64(n)
	type span struct {
		lo, hi int64
		name   string
	}
	var spans []span
	tensors = map[string]*array{}
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			DType   string  `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &t); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if len(t.Offsets) != 2 || t.Offsets[0] < 0 || t.Offsets[1] < t.Offsets[0] || t.Offsets[1] > size-base {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data offsets %v outside the %d bytes of data", name, t.Offsets, size-base)
		}
		if len(t.Shape) > 32 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %d dimensions", name, len(t.Shape))
		}
		count, err := numel(t.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		var kind elemKind
		var es int64
		switch t.DType {
		case "F16":
			kind = elemF16
		case "BF16":
			kind = elemBF16
		case "F32":
			kind = elemF32
		case "F64":
			kind = elemF64
		case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2":
			es = 1
		case "I16", "U16":
			es = 2
		case "I32", "U32":
			es = 4
		case "I64", "U64":
			es = 8
		default:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, t.DType)
		}
		if kind != 0 {
			es = kind.size()
		}
		if count > (t.Offsets[1]-t.Offsets[0])/es || count*es != t.Offsets[1]-t.Offsets[0] {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, its offsets span %d", name, t.Shape, t.DType, count*es, t.Offsets[1]-t.Offsets[0])
		}
		spans = append(spans, span{t.Offsets[0], t.Offsets[1], name})
		if kind == 0 {
			skipped = append(skipped, name)
			continue
		}
		tensors[name] = &array{r: r, off: base + t.Offsets[0], kind: kind, order: binary.LittleEndian, shape: t.Shape}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return nil, nil, fmt.Errorf("safetensors: tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	sort.Strings(skipped)
	return tensors, skipped, nil
}
