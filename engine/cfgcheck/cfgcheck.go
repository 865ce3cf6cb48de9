// Package cfgcheck is the one place config files are range-checked: the
// typed ConfigError every config reader returns, a Checker that records
// the first bad field, and the bounds shared by all models. A config is
// checked in full before anything it sizes is allocated, so a hostile or
// corrupt file (zero groups, a billion layers) fails fast with the file
// and the field named instead of panicking, hanging or exhausting memory.
package cfgcheck

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Upper bounds far above any released model but low enough that what a
// config implies stays allocatable. Counts are per model unless noted.
const (
	MaxLayers    = 1000    // transformer or resnet layers (also their sum in a UNet)
	MaxChannels  = 1 << 16 // hidden widths, channels, heads, cross-attention widths
	MaxVocab     = 1 << 22 // embedding table rows
	MaxPositions = 1 << 16 // position-table rows, tokens, image patches
	MaxLevels    = 16      // resolution levels of a UNet or VAE
	MaxKernel    = 31      // convolution kernel side
	MaxImageSide = 1 << 14 // image sides in pixels
	MaxTimesteps = 1 << 16 // training timesteps of a scheduler
	// MaxParams is the parameter count a config may imply (16 Gi
	// weights, 32 GiB in fp16): the table of tensors is built only below it.
	MaxParams = 1 << 34
)

// ConfigError is a config file value the engine refuses.
type ConfigError struct {
	Pkg    string // package reporting it: "unet"
	File   string // the config's path in the checkpoint: "unet/config.json"
	Field  string // JSON key, dotted or indexed: "qformer_config.num_hidden_layers", "block_out_channels[1]"
	Value  any    // the offending value; nil when the reason says it all
	Reason string // "must be ≥ 1"
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Pkg)
	b.WriteString(": ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	b.WriteString(e.Field)
	b.WriteString(" ")
	b.WriteString(e.Reason)
	if e.Value != nil {
		fmt.Fprintf(&b, ", got %v", e.Value)
	}
	return b.String()
}

// InFile sets the file of the ConfigError in err's chain (a caller that
// knows where the config came from, such as the component catalog); err
// is returned either way.
func InFile(err error, file string) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = file
	}
	return err
}

// Checker records the first failed check of one config file. Its methods
// do nothing once a check has failed, so a reader checks every field in
// order and asks Err once.
type Checker struct {
	Pkg, File string
	err       error
}

// Err is the first failed check, nil when all passed.
func (c *Checker) Err() error { return c.err }

// OK reports whether every check so far passed: a reader tests it before
// a computation that relies on earlier fields (a division by a group count).
func (c *Checker) OK() bool { return c.err == nil }

// Fail records a failure of field (value may be nil).
func (c *Checker) Fail(field string, value any, reason string, a ...any) {
	if c.err == nil {
		c.err = &ConfigError{Pkg: c.Pkg, File: c.File, Field: field, Value: value, Reason: fmt.Sprintf(reason, a...)}
	}
}

// Int checks lo ≤ v ≤ hi.
func (c *Checker) Int(field string, v, lo, hi int) {
	switch {
	case v < lo:
		c.Fail(field, v, "must be ≥ %d", lo)
	case v > hi:
		c.Fail(field, v, "must be ≤ %d", hi)
	}
}

// Ints checks every element of a per-block list (field[i]).
func (c *Checker) Ints(field string, vs []int, lo, hi int) {
	for i, v := range vs {
		c.Int(fmt.Sprintf("%s[%d]", field, i), v, lo, hi)
	}
}

// Len checks a list's length.
func (c *Checker) Len(field string, n, lo, hi int) {
	switch {
	case n < lo:
		c.Fail(field, nil, "must have at least %d entries, has %d", lo, n)
	case n > hi:
		c.Fail(field, nil, "must have at most %d entries, has %d", hi, n)
	}
}

// Divides checks that v splits into d equal parts (d is checked ≥ 1
// elsewhere; d ≤ 0 is reported here too rather than dividing by it).
func (c *Checker) Divides(field string, v, d int, what string) {
	if d <= 0 || v%d != 0 {
		c.Fail(field, v, "must be a multiple of %s %d", what, d)
	}
}

// Float checks that v is finite and lo ≤ v ≤ hi.
func (c *Checker) Float(field string, v, lo, hi float64) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		c.Fail(field, v, "must be finite")
	case v < lo:
		c.Fail(field, v, "must be ≥ %g", lo)
	case v > hi:
		c.Fail(field, v, "must be ≤ %g", hi)
	}
}

// Positive checks that v is finite, > 0 and ≤ hi (epsilons, scales).
func (c *Checker) Positive(field string, v, hi float64) {
	if !(v > 0) {
		c.Fail(field, v, "must be > 0")
		return
	}
	c.Float(field, v, 0, hi)
}

// Params checks the parameter count a config implies, computed by the
// reader in float64 so that no product overflows. field names what
// dominates it.
func (c *Checker) Params(field string, n float64) {
	if !(n <= MaxParams) {
		c.Fail(field, nil, "implies %.3g parameters, more than the %d this engine loads", n, int64(MaxParams))
	}
}
