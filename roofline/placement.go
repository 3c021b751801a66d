package roofline

import (
	"fmt"
	"strings"

	"github.com/bwsim/bwsim/traces"
)

// ParsePlacement parses ROLE=LEVEL overrides such as "kv-cache=streaming".
// Levels are checked against a device by Predict.
func ParsePlacement(specs []string) (map[traces.Role]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := map[traces.Role]string{}
	for _, s := range specs {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			role, level, ok := strings.Cut(part, "=")
			role, level = strings.TrimSpace(role), strings.TrimSpace(level)
			if !ok || level == "" {
				return nil, fmt.Errorf("placement %q: want ROLE=LEVEL, e.g. kv-cache=streaming", part)
			}
			r := traces.Role(role)
			if !r.Valid() {
				return nil, fmt.Errorf("placement %q: unknown role %q (want kv-cache, parameter, input, intermediate or output)", part, role)
			}
			if prev, dup := out[r]; dup && prev != level {
				return nil, fmt.Errorf("placement %q: %s already placed in %s", part, role, prev)
			}
			out[r] = level
		}
	}
	return out, nil
}
