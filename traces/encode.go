package traces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format identifies bwsim trace files; FormatVersion is bumped on any change
// that an older reader would misread. Version 2 added gather extents (fields
// p and i); Decode still reads version 1 files, which have none.
const (
	Format        = "bwsim-trace"
	FormatVersion = 2
)

// minFormatVersion is the oldest version Decode reads.
const minFormatVersion = 1

// MaxDecodeBytes bounds what Decode reads, so a hostile or corrupt file
// cannot exhaust memory.
const MaxDecodeBytes = 1 << 30

type envelope struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Trace   *Trace `json:"trace"`
}

// Encode writes t as versioned JSON. Extents use short field names (t, d, o,
// n, s, c, p, i: tensor index, direction 0=read 1=write, offset, length,
// stride, count, and a gather's pitch and indices; see Extent) because a
// trace may hold millions of them.
func Encode(w io.Writer, t *Trace) error {
	enc := json.NewEncoder(w)
	return enc.Encode(envelope{Format: Format, Version: FormatVersion, Trace: t})
}

// Decode reads a trace written by Encode, in this version or an earlier one.
// It rejects unknown fields (gather fields in a version 1 file), other
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
	if env.Version < minFormatVersion || env.Version > FormatVersion {
		return nil, fmt.Errorf("decode trace: version %d, this bwsim reads versions %d to %d", env.Version, minFormatVersion, FormatVersion)
	}
	if env.Trace == nil {
		return nil, errors.New("decode trace: no trace")
	}
	if env.Version < 2 {
		for _, st := range env.Trace.Stages {
			for _, e := range st.Extents {
				if e.Index != nil || e.Pitch != 0 {
					return nil, errors.New("decode trace: gather extent (fields p, i) in a version 1 trace")
				}
			}
		}
	}
	if err := env.Trace.Validate(); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	return env.Trace, nil
}
