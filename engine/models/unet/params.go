// params.go hands a model its weights by state-dict name while recording
// every name and stored shape it asks for. The same construction code thus
// loads a model (Load), validates a checkpoint up front, and lists the
// tensors a config implies (Tensors), so the three can never disagree.
// The VAE decoder builds on it too.
package unet

import (
	"fmt"
	"slices"

	"harmony/engine/tensor"
)

// Params is a prefixed view of a component's weights during construction.
type Params struct {
	b      tensor.Backend  // nil when only recording shapes
	w      *tensor.Weights // nil when only recording shapes
	prefix string
	st     *paramState
}

type paramState struct {
	shapes map[string][]int // every name asked for → its stored shape
	errs   []error          // missing or misshapen tensors, in order
	fused  []*tensor.Tensor // weights joined at load (see fuse), owned by the model
}

// NewParams reads from w on backend b; with w nil it only records shapes
// (Get returns nil), which is how Tensors lists a config's tensors.
func NewParams(b tensor.Backend, w *tensor.Weights) *Params {
	return &Params{b: b, w: w, st: &paramState{shapes: map[string][]int{}}}
}

// Sub returns the view below prefix ("down_blocks.0" → "down_blocks.0.…").
func (p *Params) Sub(prefix string) *Params {
	q := *p
	q.prefix = p.prefix + prefix + "."
	return &q
}

// Recording reports whether no weights are being read.
func (p *Params) Recording() bool { return p.w == nil }

// Get returns the tensor stored under name with the given shape (PyTorch
// layout). A stored shape that differs only by trailing 1s (a [C, C, 1, 1]
// conv where a [C, C] Linear is asked for) is accepted and returned as a
// view of the asked shape.
func (p *Params) Get(name string, shape ...int) *tensor.Tensor {
	full := p.prefix + name
	p.st.shapes[full] = slices.Clone(shape)
	if p.w == nil {
		return nil
	}
	t, err := p.w.Shaped(full, shape...)
	if err != nil {
		p.st.errs = append(p.st.errs, err)
		return nil
	}
	if len(t.Shape) != len(shape) {
		t = p.b.Reshape(t, shape...)
	}
	return t
}

// Matrix returns a stored weight of shape stored (e.g. a 1×1 conv
// [out, in, 1, 1]) as a [stored[0], rest] matrix for Linear.
func (p *Params) Matrix(name string, stored ...int) *tensor.Tensor {
	t := p.Get(name, stored...)
	if t == nil || len(stored) == 2 {
		return t
	}
	return p.b.Reshape(t, stored[0], tensor.Numel(stored[1:]))
}

// fuse joins loaded weights along their first dimension (same dtype, same
// trailing dims), so that one GEMM computes what several did: q, k and v
// projections read by a split-output Linear, every resnet's time-embedding
// projection at once. The names (relative to p) then resolve to views of the
// joined tensor, which replace the parts in ts, and the originals are freed;
// Fused lists the joined tensor for the model to free. Returns nil (nothing
// joined, ts untouched) when only recording or when a part is missing.
func (p *Params) fuse(names []string, ts []*tensor.Tensor) *tensor.Tensor {
	if p.w == nil || len(ts) == 0 {
		return nil
	}
	for _, t := range ts {
		if t == nil || t.DType != ts[0].DType {
			return nil
		}
	}
	if f := joined(p.b, ts); f != nil {
		return f // a build before this one joined them: share its buffer
	}
	f := p.b.Concat(0, ts...)
	if p.b.Err() != nil {
		return nil
	}
	p.st.fused = append(p.st.fused, f)
	off := 0
	for i, t := range ts {
		// A view's base belongs to its own name: leave that entry alone.
		if !t.View {
			v := p.b.View(f, off, t.Shape...)
			p.w.Put(p.prefix+names[i], v)
			p.b.Free(t)
			ts[i] = v
		}
		off += t.Numel()
	}
	return f
}

// joined is ts as one view when they already lie one after another in one
// storage, in order (the views an earlier fuse left in the weights), else
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

// Fused is every tensor fuse made so far.
func (p *Params) Fused() []*tensor.Tensor { return p.st.fused }

// Shapes is every name asked for so far, with its stored shape.
func (p *Params) Shapes() map[string][]int { return p.st.shapes }

// Err is the first missing or misshapen tensor (a *tensor.MissingError,
// reachable with errors.As), noting how many more there were.
func (p *Params) Err() error {
	switch n := len(p.st.errs); n {
	case 0:
		return nil
	case 1:
		return p.st.errs[0]
	default:
		return fmt.Errorf("%w (and %d more tensors missing or misshapen)", p.st.errs[0], n-1)
	}
}

// linear is a Linear layer: w [out, in], b [out] or nil.
type linear struct{ w, b *tensor.Tensor }

func loadLinear(p *Params, name string, out, in int, bias bool) linear {
	l := linear{w: p.Get(name+".weight", out, in)}
	if bias {
		l.b = p.Get(name+".bias", out)
	}
	return l
}

// load1x1 reads a 1×1 Conv2d [out, in, 1, 1] as a Linear over channels: on
// NHWC feature maps the two are the same map.
func load1x1(p *Params, name string, out, in int) linear {
	return linear{w: p.Matrix(name+".weight", out, in, 1, 1), b: p.Get(name+".bias", out)}
}

func (l linear) apply(b tensor.Backend, x *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	return b.Linear(x, l.w, l.b, ep)
}

// conv is a k×k Conv2d with bias and "same" padding (k−1)/2.
type conv struct {
	w, b *tensor.Tensor
	pad  int
}

func loadConv(p *Params, name string, out, in, k int) conv {
	return conv{w: p.Get(name+".weight", out, in, k, k), b: p.Get(name+".bias", out), pad: (k - 1) / 2}
}

func (c conv) apply(b tensor.Backend, x *tensor.Tensor, o tensor.ConvOpts) *tensor.Tensor {
	o.Pad = c.pad
	return b.Conv2D(x, c.w, c.b, o)
}

// norm holds the affine parameters of a GroupNorm or LayerNorm.
type norm struct{ g, b *tensor.Tensor }

func loadNorm(p *Params, name string, c int) norm {
	return norm{g: p.Get(name+".weight", c), b: p.Get(name+".bias", c)}
}

// setShape relabels a tensor this code owns (not a view) with a shape of
// the same size. A Reshape view would not do: freeing a view is a no-op,
// so handing one out would leak its base.
func setShape(b tensor.Backend, t *tensor.Tensor, shape ...int) *tensor.Tensor {
	if t.View || tensor.Numel(shape) != t.Numel() {
		b.SetErr(fmt.Errorf("unet: cannot relabel %v as %v", t, shape))
		return t
	}
	t.Shape = slices.Clone(shape)
	return t
}
