// weights.go: the named weight tensors of one model component, as the
// loader placed them on a backend.
package tensor

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Weights maps state-dict names (e.g. "down_blocks.0.resnets.0.conv1.weight")
// to tensors resident on a backend. Sub gives a prefixed view, so model code
// mirrors the reference module tree.
type Weights struct {
	Component string // "unet", "vae", … (for error messages)
	m         map[string]*Tensor
	prefix    string
}

// NewWeights returns an empty set for a component.
func NewWeights(component string) *Weights {
	return &Weights{Component: component, m: map[string]*Tensor{}}
}

// Put stores a tensor under its full name.
func (w *Weights) Put(name string, t *Tensor) { w.m[w.prefix+name] = t }

// Sub returns a view of the names below prefix ("down_blocks.0." → "resnets.0.conv1.weight").
func (w *Weights) Sub(prefix string) *Weights {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	return &Weights{Component: w.Component, m: w.m, prefix: w.prefix + prefix}
}

// MissingError names a weight the model needs and the file lacks.
type MissingError struct {
	Component, Name string
	Want, Have      []int // shapes when the tensor exists with the wrong shape
}

func (e *MissingError) Error() string {
	if e.Have != nil {
		return fmt.Sprintf("%s: tensor %q has shape %v, the config implies %v", e.Component, e.Name, e.Have, e.Want)
	}
	return fmt.Sprintf("%s: missing tensor %q", e.Component, e.Name)
}

// ListedNames is how many names ShortList spells out.
const ListedNames = 5

// ShortList is the one way a list of tensor names (missing, misshapen) is
// printed: the first ListedNames quoted, then "… and N more", so that a
// config implying a million absent tensors still gives one short line.
// names may hold only the first few of total (a caller need not keep them
// all).
func ShortList(names []string, total int) string {
	n := min(len(names), ListedNames, total)
	q := make([]string, n)
	for i, s := range names[:n] {
		q[i] = strconv.Quote(s)
	}
	out := strings.Join(q, ", ")
	if total > n {
		out += fmt.Sprintf(" … and %d more", total-n)
	}
	return out
}

// Get returns the tensor or a MissingError.
func (w *Weights) Get(name string) (*Tensor, error) {
	t, ok := w.m[w.prefix+name]
	if !ok {
		return nil, &MissingError{Component: w.Component, Name: w.prefix + name}
	}
	return t, nil
}

// Has reports whether a tensor exists.
func (w *Weights) Has(name string) bool {
	_, ok := w.m[w.prefix+name]
	return ok
}

// Shaped returns the tensor after checking its shape (trailing 1s in the
// stored shape are ignored, so a [C, C, 1, 1] conv can serve as [C, C]).
func (w *Weights) Shaped(name string, shape ...int) (*Tensor, error) {
	t, err := w.Get(name)
	if err != nil {
		return nil, err
	}
	have := t.Shape
	for len(have) > len(shape) && have[len(have)-1] == 1 {
		have = have[:len(have)-1]
	}
	if !slices.Equal(have, shape) {
		return nil, &MissingError{Component: w.Component, Name: w.prefix + name, Want: shape, Have: t.Shape}
	}
	return t, nil
}

// Names lists the full names below the prefix, sorted.
func (w *Weights) Names() []string {
	var out []string
	for k := range w.m {
		if strings.HasPrefix(k, w.prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Free releases every tensor on backend b.
func (w *Weights) Free(b Backend) {
	for k, t := range w.m {
		if strings.HasPrefix(k, w.prefix) {
			b.Free(t)
			delete(w.m, k)
		}
	}
}

// Take removes the tensor from the set and returns it: the caller owns it
// from then on (moving a tensor from one component's weights to another's).
func (w *Weights) Take(name string) (*Tensor, error) {
	t, err := w.Get(name)
	if err == nil {
		delete(w.m, w.prefix+name)
	}
	return t, err
}
