package traces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format identifies bwsim trace files; FormatVersion is bumped on any change
// that an older reader would misread.
const (
	Format        = "bwsim-trace"
	FormatVersion = 1
)

// MaxDecodeBytes bounds what Decode reads, so a hostile or corrupt file
// cannot exhaust memory.
const MaxDecodeBytes = 1 << 30

type envelope struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Trace   *Trace `json:"trace"`
}

// Encode writes t as versioned JSON. Extents use short field names (t, d, o,
// n, s, c: tensor index, direction 0=read 1=write, offset, length, stride,
// count) because a trace may hold millions of them.
func Encode(w io.Writer, t *Trace) error {
	enc := json.NewEncoder(w)
	return enc.Encode(envelope{Format: Format, Version: FormatVersion, Trace: t})
}

// Decode reads a trace written by Encode. It rejects unknown fields, other
// formats and versions, trailing data, and traces that fail Validate.
func Decode(r io.Reader) (*Trace, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDecodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	if len(data) > MaxDecodeBytes {
		return nil, fmt.Errorf("read trace: larger than %d bytes", MaxDecodeBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode trace: trailing data after the trace")
	}
	if env.Format != Format {
		return nil, fmt.Errorf("decode trace: format %q, want %q", env.Format, Format)
	}
	if env.Version != FormatVersion {
		return nil, fmt.Errorf("decode trace: version %d, this bwsim reads version %d", env.Version, FormatVersion)
	}
	if env.Trace == nil {
		return nil, errors.New("decode trace: no trace")
	}
	if err := env.Trace.Validate(); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	return env.Trace, nil
}
