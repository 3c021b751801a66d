package hwmodel

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

//go:embed catalog.yaml
var catalogYAML []byte

// CatalogYAML returns the embedded device catalog: YAML with a top-level
// devices map keyed by device name. Every figure carries its source in a
// comment. Package config loads it (with user overrides) into a Catalog.
func CatalogYAML() []byte { return bytes.Clone(catalogYAML) }

// Catalog is a set of validated devices, keyed by name.
type Catalog struct {
	devices map[string]*Device
}

// NewCatalog builds a catalog from devices, which must have distinct,
// non-empty names and pass Validate.
func NewCatalog(devices []*Device) (*Catalog, error) {
	c := &Catalog{devices: make(map[string]*Device, len(devices))}
	var errs []error
	for _, d := range devices {
		if d == nil {
			return nil, fmt.Errorf("hwmodel: nil device")
		}
		if _, dup := c.devices[d.Name]; dup {
			return nil, fmt.Errorf("hwmodel: duplicate device %q", d.Name)
		}
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
		}
		c.devices[d.Name] = d.Clone()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Names returns the device names, sorted.
func (c *Catalog) Names() []string { return sortedKeys(c.devices) }

// Get returns a copy of the named device (names are case-insensitive). The
// error lists the known names.
func (c *Catalog) Get(name string) (*Device, error) {
	d, ok := c.devices[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown device %q (known: %s)", name, strings.Join(c.Names(), ", "))
	}
	return d.Clone(), nil
}

// Devices returns copies of all devices, sorted by name.
func (c *Catalog) Devices() []*Device {
	out := make([]*Device, 0, len(c.devices))
	for _, n := range c.Names() {
		out = append(out, c.devices[n].Clone())
	}
	return out
}

// Clone returns a deep copy of d.
func (d *Device) Clone() *Device {
	if d == nil {
		return nil
	}
	c := *d
	if d.Levels != nil {
		c.Levels = make(map[string]MemoryLevel, len(d.Levels))
		for k, v := range d.Levels {
			v.KernelBandwidth = maps.Clone(v.KernelBandwidth)
			v.KernelLoops = maps.Clone(v.KernelLoops)
			c.Levels[k] = v
		}
	}
	c.Compute = append([]Compute(nil), d.Compute...)
	for i, u := range c.Compute {
		if u.Table != nil {
			t := *u.Table
			t.Rows, t.Cols = slices.Clone(t.Rows), slices.Clone(t.Cols)
			t.Seconds = make([][]float64, len(u.Table.Seconds))
			for j, row := range u.Table.Seconds {
				t.Seconds[j] = slices.Clone(row)
			}
			if u.Table.Kernels != nil {
				t.Kernels = make([][]float64, len(u.Table.Kernels))
				for j, row := range u.Table.Kernels {
					t.Kernels[j] = slices.Clone(row)
				}
			}
			c.Compute[i].Table = &t
		}
	}
	c.Links = append([]Link(nil), d.Links...)
	return &c
}

// MemoryLevels returns the levels that can hold a tensor (role memory),
// closest to compute first: HBM on a GPU, SRAM then streaming memory on an
// IPU, DRAM on a CPU.
func (d *Device) MemoryLevels() []MemoryLevel {
	var out []MemoryLevel
	for _, l := range d.OrderedLevels() {
		if l.Role == RoleMemory {
			out = append(out, l)
		}
	}
	return out
}

// deviceJSON is Device with its levels as an array ordered by tier.
type deviceJSON struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Kind        Kind          `json:"kind"`
	Levels      []MemoryLevel `json:"memory_levels"`
	Compute     []Compute     `json:"compute"`
	Overheads   Overheads     `json:"overheads"`
	Concurrency Concurrency   `json:"concurrency"`
	Links       []Link        `json:"links"`
	Origin      string        `json:"origin,omitempty"`
}

// MarshalJSON writes the device with its memory levels as an array
// "memory_levels" ordered by tier (closest to compute first), each with its
// name.
func (d Device) MarshalJSON() ([]byte, error) {
	j := deviceJSON{
		Name: d.Name, Description: d.Description, Kind: d.Kind,
		Levels: d.OrderedLevels(), Compute: d.Compute, Overheads: d.Overheads,
		Concurrency: d.Concurrency, Links: d.Links, Origin: d.Origin,
	}
	if j.Compute == nil {
		j.Compute = []Compute{}
	}
	if j.Links == nil {
		j.Links = []Link{}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Device) UnmarshalJSON(b []byte) error {
	var j deviceJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = Device{
		Name: j.Name, Description: j.Description, Kind: j.Kind,
		Compute: j.Compute, Overheads: j.Overheads, Concurrency: j.Concurrency,
		Links: j.Links, Origin: j.Origin,
	}
	if j.Levels != nil {
		d.Levels = make(map[string]MemoryLevel, len(j.Levels))
		for _, l := range j.Levels {
			if _, dup := d.Levels[l.Name]; dup {
				return fmt.Errorf("device %q: duplicate memory level %q", j.Name, l.Name)
			}
			d.Levels[l.Name] = l
		}
	}
	return nil
}
