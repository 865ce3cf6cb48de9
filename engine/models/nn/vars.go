// Package nn is the layer every model package is built on: Vars, a
// prefix-scoped view of one component's weights, and the building blocks
// (Linear, Conv2d, LayerNorm, GroupNorm, Embedding, Attention, MLP,
// EncoderLayer, Resnet) with their forward passes on tensor.Backend.
//
// A model is written once as a construction walk over Vars. Run against
// loaded weights the walk loads the model and checks every tensor's
// presence and shape before anything runs; run against a recorder (nil
// weights) it only lists the names and shapes a config implies, which is
// how checkpoints are validated, packed and synthesized. The two can
// therefore never disagree.
//
// Every model package follows the same shape:
//
//	func Tensors(cfg) map[string][]int              // the walk, recording
//	func Load(b, cfg, w *tensor.Weights) (*M, error) // the walk, loading; M owns w
//	func (m *M) Free(b)                              // releases w and what Load made
//
// and its forward pass returns (*tensor.Tensor, error), the error being
// the backend's sticky one (tensor.Backend.Err) or a bad input.
//
// vars.go holds Vars.
package nn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"harmony/engine/tensor"
)

// Vars is a prefixed view of a component's weights during construction.
// Views made by Sub share one record of what was asked for.
type Vars struct {
	b      tensor.Backend  // nil when only recording shapes
	w      *tensor.Weights // nil when only recording shapes
	prefix string
	st     *varState
}

type varState struct {
	shapes map[string][]int // every name asked for → its stored shape
	errs   []error          // the first missing or misshapen tensors, in order
	nerrs  int              // how many there were in all
	fused  []*tensor.Tensor // weights joined at load (see Fuse), owned by the model
}

// NewVars reads from w on backend b; with w nil it only records shapes
// (Get returns nil), which is how a model's Tensors lists a config's
// tensors.
func NewVars(b tensor.Backend, w *tensor.Weights) *Vars {
	return &Vars{b: b, w: w, st: &varState{shapes: map[string][]int{}}}
}

// Recorder is a Vars that reads nothing and records every name asked for.
func Recorder() *Vars { return NewVars(nil, nil) }

// Sub returns the view below prefix ("down_blocks.0" → "down_blocks.0.…").
func (v *Vars) Sub(prefix string) *Vars {
	q := *v
	q.prefix = v.prefix + prefix + "."
	return &q
}

// At is Sub(name + "." + i), the i-th entry of a ModuleList.
func (v *Vars) At(name string, i int) *Vars { return v.Sub(name + "." + strconv.Itoa(i)) }

// Path is the full state-dict name of name below this view.
func (v *Vars) Path(name string) string { return v.prefix + name }

// Recording reports whether no weights are being read.
func (v *Vars) Recording() bool { return v.w == nil }

// Backend is the backend weights live on (nil when recording).
func (v *Vars) Backend() tensor.Backend { return v.b }

// Has reports whether the weights hold name (false when recording).
func (v *Vars) Has(name string) bool { return v.w != nil && v.w.Has(v.prefix+name) }

// Get returns the tensor stored under name with the given shape (PyTorch
// layout). A stored shape that differs only by trailing 1s (a [C, C, 1, 1]
// conv where a [C, C] Linear is asked for) is accepted and returned as a
// view of the asked shape. A missing or misshapen tensor is recorded (see
// Err) and comes back nil.
func (v *Vars) Get(name string, shape ...int) *tensor.Tensor {
	full := v.prefix + name
	v.st.shapes[full] = slices.Clone(shape)
	if v.w == nil {
		return nil
	}
	t, err := v.w.Shaped(full, shape...)
	if err != nil {
		// Only the first few are kept: Err prints no more.
		if v.st.nerrs++; len(v.st.errs) <= tensor.ListedNames {
			v.st.errs = append(v.st.errs, err)
		}
		return nil
	}
	if len(t.Shape) != len(shape) {
		t = v.b.Reshape(t, shape...)
	}
	return t
}

// Matrix returns a stored weight of shape stored (e.g. a 1×1 conv
// [out, in, 1, 1]) as a [stored[0], rest] matrix for Linear.
func (v *Vars) Matrix(name string, stored ...int) *tensor.Tensor {
	t := v.Get(name, stored...)
	if t == nil || len(stored) == 2 {
		return t
	}
	return v.b.Reshape(t, stored[0], tensor.Numel(stored[1:]))
}

// Fuse joins loaded weights along their first dimension (same dtype, same
// trailing dims), so that one GEMM computes what several did: q, k and v
// projections read by a split-output Linear, every resnet's time-embedding
// projection at once. The names (relative to v) then resolve to views of
// the joined tensor, which replace the parts in ts, and the originals are
// freed; Fused lists the joined tensor for the model to free. Returns nil
// (nothing joined, ts untouched) when only recording or when a part is
// missing.
func (v *Vars) Fuse(names []string, ts []*tensor.Tensor) *tensor.Tensor {
	if v.w == nil || len(ts) == 0 {
		return nil
	}
	for _, t := range ts {
		if t == nil || t.DType != ts[0].DType {
			return nil
		}
	}
	if f := joined(v.b, ts); f != nil {
		return f // a build before this one joined them: share its buffer
	}
	f := v.b.Concat(0, ts...)
	if v.b.Err() != nil {
		return nil
	}
	v.st.fused = append(v.st.fused, f)
	off := 0
	for i, t := range ts {
		// A view's base belongs to its own name: leave that entry alone.
		if !t.View {
			view := v.b.View(f, off, t.Shape...)
			v.w.Put(v.prefix+names[i], view)
			v.b.Free(t)
			ts[i] = view
		}
		off += t.Numel()
	}
	return f
}

// joined is ts as one view when they already lie one after another in one
// storage, in order (the views an earlier Fuse left in the weights), else
// nil.
func joined(b tensor.Backend, ts []*tensor.Tensor) *tensor.Tensor {
	off, rows := ts[0].Offset, 0
	for _, t := range ts {
		if !t.View || t.Data != ts[0].Data || t.Offset != off || len(t.Shape) != len(ts[0].Shape) ||
			!slices.Equal(t.Shape[1:], ts[0].Shape[1:]) {
			return nil
		}
		off += t.Numel()
		rows += t.Shape[0]
	}
	base := &tensor.Tensor{Name: ts[0].Name, Shape: []int{ts[0].Data.Elems()}, DType: ts[0].DType, Data: ts[0].Data}
	return b.View(base, ts[0].Offset, append([]int{rows}, ts[0].Shape[1:]...)...)
}

// Fused is every tensor Fuse made so far.
func (v *Vars) Fused() []*tensor.Tensor { return v.st.fused }

// Shapes is every name asked for so far, with its stored shape.
func (v *Vars) Shapes() map[string][]int { return v.st.shapes }

// Err is the first missing or misshapen tensor (a *tensor.MissingError,
// reachable with errors.As), followed by the others in tensor.ShortList's
// form so that the message stays one short line however many there are.
func (v *Vars) Err() error {
	switch n := v.st.nerrs; n {
	case 0:
		return nil
	case 1:
		return v.st.errs[0]
	default:
		var more []string
		for _, e := range v.st.errs[1:] {
			var me *tensor.MissingError
			if errors.As(e, &me) {
				more = append(more, me.Name)
			} else {
				more = append(more, e.Error())
			}
		}
		list := tensor.ShortList(more, n-1)
		return fmt.Errorf("%w (%d more missing or misshapen: %s)", v.st.errs[0], n-1, list)
	}
}

// Finish ends a load: the first problem (a missing or misshapen tensor, or
// the backend's error) prefixed by pkg ("unet"), with the fused tensors
// freed; nil when the model can run.
func (v *Vars) Finish(pkg string) error {
	err := v.Err()
	if err == nil && v.b != nil {
		err = v.b.Err()
	}
	if err == nil {
		return nil
	}
	if v.b != nil {
		v.b.Free(v.st.fused...)
	}
	v.st.fused = nil
	return fmt.Errorf("%s: load: %w", pkg, err)
}

// Placeholders makes weights for every tensor of shapes on b without
// contents (NewWeight): what a dry run or a FLOP count loads a model from
// (shapes from the model's Tensors). dtype gives each tensor's storage
// type; nil stores every one as F32.
func Placeholders(b tensor.Backend, component string, shapes map[string][]int, dtype func(name string, shape []int) tensor.DType) *tensor.Weights {
	w := tensor.NewWeights(component)
	for name, s := range shapes {
		dt := tensor.F32
		if dtype != nil {
			dt = dtype(name, s)
		}
		w.Put(name, b.NewWeight(component+"."+name, dt, s...))
	}
	return w
}
