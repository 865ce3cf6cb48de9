// Package dryrun is a tensor.Backend that checks shapes and counts memory
// without computing anything. Tests run full-size models on it in
// milliseconds: it proves a real-size configuration (SD-1.5 at 512², batch
// 4) is shape-consistent, measures peak activation memory and the largest
// single tensor (WebGPU binds at most maxStorageBufferBindingSize bytes of
// one buffer), and catches leaks, double frees and use after free.
package dryrun

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"harmony/engine/tensor"
)

// Backend implements tensor.Backend with bookkeeping only. Reads return
// zeros.
type Backend struct {
	mu  sync.Mutex
	err error

	Live     int64 // bytes of live activations (New, op outputs)
	Peak     int64 // highest Live seen
	Largest  int64 // largest single activation, bytes
	LargestT string
	Weights  int64 // bytes of weights (NewWeight)
	Ops      int   // ops run
	Flops    int64 // multiply-adds × 2 of Linear, Conv2D and Attention
}

func (b *Backend) addFlops(n int64) {
	b.mu.Lock()
	b.Flops += n
	b.mu.Unlock()
}

type store struct {
	n      int
	bytes  int64
	weight bool
	freed  bool
}

func (s *store) Elems() int { return s.n }

var _ tensor.Backend = (*Backend)(nil)

// New returns an empty dry-run backend.
func New() *Backend { return &Backend{} }

// Name implements tensor.Backend.
func (b *Backend) Name() string { return "dryrun" }

// Err implements tensor.Backend.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// SetErr implements tensor.Backend.
func (b *Backend) SetErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil && err != nil {
		b.err = err
	}
}

func (b *Backend) alloc(name string, dt tensor.DType, shape []int, weight bool) *tensor.Tensor {
	n := tensor.Numel(shape)
	s := &store{n: n, bytes: int64(n * dt.Size()), weight: weight}
	b.mu.Lock()
	if weight {
		b.Weights += s.bytes
	} else {
		b.Live += s.bytes
		b.Peak = max(b.Peak, b.Live)
		if s.bytes > b.Largest {
			b.Largest, b.LargestT = s.bytes, fmt.Sprintf("%s %v", name, shape)
		}
	}
	b.mu.Unlock()
	return &tensor.Tensor{Name: name, Shape: slices.Clone(shape), DType: dt, Data: s}
}

// New implements tensor.Backend.
func (b *Backend) New(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return b.alloc(name, dt, shape, false)
}

// NewWeight implements tensor.Backend.
func (b *Backend) NewWeight(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return b.alloc(name, dt, shape, true)
}

// Upload implements tensor.Backend.
func (b *Backend) Upload(t *tensor.Tensor, off int64, data []byte) { b.use("upload", t) }

// FromF32 implements tensor.Backend.
func (b *Backend) FromF32(name string, data []float32, shape ...int) *tensor.Tensor {
	if len(data) != tensor.Numel(shape) {
		b.SetErr(fmt.Errorf("dryrun: FromF32 %q: %d values for %v", name, len(data), shape))
	}
	return b.New(name, tensor.F32, shape...)
}

// Read implements tensor.Backend.
func (b *Backend) Read(_ context.Context, t *tensor.Tensor) ([]float32, error) {
	b.use("read", t)
	if err := b.Err(); err != nil {
		return nil, err
	}
	return make([]float32, t.Numel()), nil
}

// Free implements tensor.Backend.
func (b *Backend) Free(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil || t.View {
			continue
		}
		s := t.Data.(*store)
		b.mu.Lock()
		switch {
		case s.freed:
			if b.err == nil {
				b.err = fmt.Errorf("dryrun: double free of %v", t)
			}
		case s.weight:
			b.Weights -= s.bytes
		default:
			b.Live -= s.bytes
		}
		s.freed = true
		b.mu.Unlock()
	}
}

// Sync implements tensor.Backend.
func (b *Backend) Sync(context.Context) error { return b.Err() }

// use records an error when an op reads a freed tensor.
func (b *Backend) use(op string, ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if s, ok := t.Data.(*store); ok && s.freed {
			b.SetErr(fmt.Errorf("dryrun: %s reads freed %v", op, t))
		}
	}
}

// out allocates an op result after checking its inputs.
func (b *Backend) out(op string, err error, in []*tensor.Tensor, shape ...int) *tensor.Tensor {
	b.use(op, in...)
	b.SetErr(err)
	b.mu.Lock()
	b.Ops++
	b.mu.Unlock()
	if err != nil {
		return b.New("failed", tensor.F32, 1)
	}
	return b.New(op, tensor.F32, shape...)
}

// View implements tensor.Backend.
func (b *Backend) View(t *tensor.Tensor, offset int, shape ...int) *tensor.Tensor {
	b.use("view", t)
	if err := tensor.ViewCheck(t, offset, shape); err != nil {
		b.SetErr(err)
		return b.New("failed", tensor.F32, shape...)
	}
	return &tensor.Tensor{Name: t.Name, Shape: slices.Clone(shape), DType: t.DType, Offset: t.Offset + offset, Data: t.Data, View: true}
}

// Reshape implements tensor.Backend.
func (b *Backend) Reshape(t *tensor.Tensor, shape ...int) *tensor.Tensor {
	if t != nil && tensor.Numel(shape) != t.Numel() {
		b.SetErr(fmt.Errorf("dryrun: reshape %v to %v", t, shape))
	}
	return b.View(t, 0, shape...)
}

// Linear implements tensor.Backend.
func (b *Backend) Linear(x, w, bias *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	m, k, n, err := tensor.LinearDims(x, w, bias, ep)
	var shape []int
	if err == nil {
		shape = tensor.LinearOutShape(x, n, ep)
		b.addFlops(2 * int64(m) * int64(k) * int64(n))
	}
	return b.out("linear", err, []*tensor.Tensor{x, w, bias, ep.Residual}, shape...)
}

// Conv2D implements tensor.Backend.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, o tensor.ConvOpts) *tensor.Tensor {
	g, err := tensor.ConvDims(x, w, bias, o)
	if err == nil {
		b.addFlops(2 * int64(g.B*g.OutH*g.OutW) * int64(g.O*g.C*g.KH*g.KW))
	}
	return b.out("conv2d", err, []*tensor.Tensor{x, w, bias, o.ChanBias, o.Residual}, g.B, g.OutH, g.OutW, g.O)
}

// GroupNorm implements tensor.Backend.
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32, silu bool) *tensor.Tensor {
	_, _, _, err := tensor.NormDims("group_norm", x, gamma, beta, groups)
	if err == nil && groups <= 0 {
		err = fmt.Errorf("dryrun: group_norm with %d groups", groups)
	}
	return b.out("group_norm", err, []*tensor.Tensor{x, gamma, beta}, shapeOf(x)...)
}

// LayerNorm implements tensor.Backend.
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) *tensor.Tensor {
	_, _, _, err := tensor.NormDims("layer_norm", x, gamma, beta, 0)
	return b.out("layer_norm", err, []*tensor.Tensor{x, gamma, beta}, shapeOf(x)...)
}

// Attention implements tensor.Backend.
func (b *Backend) Attention(q, k, v *tensor.Tensor, o tensor.AttnOpts) (*tensor.Tensor, *tensor.Tensor) {
	g, err := tensor.AttnDims(q, k, v, o)
	if err == nil {
		b.addFlops(2 * int64(g.B*g.H) * int64(g.Nq) * int64(g.Nk) * int64(g.Dk+g.Dv))
	}
	in := []*tensor.Tensor{q, k, v, o.KeyBias}
	if o.Swap != nil {
		in = append(in, o.Swap.RowMask, o.Swap.KeyMask)
	}
	out := b.out("attention", err, in, g.B, g.Nq, g.H*g.Dv)
	if err != nil || g.C1 <= g.C0 {
		return out, nil
	}
	return out, b.New("attention.probs", tensor.F32, g.B, g.Nq, g.C1-g.C0)
}

// Activate implements tensor.Backend.
func (b *Backend) Activate(x *tensor.Tensor, a tensor.Act) *tensor.Tensor {
	return b.out("activate", f32(x), []*tensor.Tensor{x}, shapeOf(x)...)
}

// GEGLU implements tensor.Backend.
func (b *Backend) GEGLU(x *tensor.Tensor) *tensor.Tensor {
	err := f32(x)
	if err == nil && x.Dim(-1)%2 != 0 {
		err = fmt.Errorf("dryrun: geglu of odd width %v", x)
	}
	var shape []int
	if err == nil {
		shape = tensor.LinearShape(x, x.Dim(-1)/2)
	}
	return b.out("geglu", err, []*tensor.Tensor{x}, shape...)
}

// Add implements tensor.Backend.
func (b *Backend) Add(a, c *tensor.Tensor) *tensor.Tensor {
	_, err := tensor.BroadcastStrides("add", a, c)
	return b.out("add", err, []*tensor.Tensor{a, c}, shapeOf(a)...)
}

// Mul implements tensor.Backend.
func (b *Backend) Mul(a, c *tensor.Tensor) *tensor.Tensor {
	_, err := tensor.BroadcastStrides("mul", a, c)
	return b.out("mul", err, []*tensor.Tensor{a, c}, shapeOf(a)...)
}

// Scale implements tensor.Backend.
func (b *Backend) Scale(x *tensor.Tensor, s, c float32) *tensor.Tensor {
	return b.out("scale", f32(x), []*tensor.Tensor{x}, shapeOf(x)...)
}

// Upsample2x implements tensor.Backend.
func (b *Backend) Upsample2x(x *tensor.Tensor) *tensor.Tensor {
	err := f32(x)
	if err == nil && len(x.Shape) != 4 {
		err = fmt.Errorf("dryrun: upsample2x of %v", x)
	}
	var shape []int
	if err == nil {
		shape = []int{x.Shape[0], 2 * x.Shape[1], 2 * x.Shape[2], x.Shape[3]}
	}
	return b.out("upsample2x", err, []*tensor.Tensor{x}, shape...)
}

// Concat implements tensor.Backend.
func (b *Backend) Concat(axis int, parts ...*tensor.Tensor) *tensor.Tensor {
	shape, _, _, err := tensor.ConcatDims(axis, parts)
	// Weights joined at load (fused projections) stay weights.
	weights := err == nil
	for _, p := range parts {
		if s, ok := p.Data.(*store); !ok || !s.weight {
			weights = false
		}
	}
	if weights {
		b.use("concat", parts...)
		b.mu.Lock()
		b.Ops++
		b.mu.Unlock()
		return b.NewWeight("concat", parts[0].DType, shape...)
	}
	return b.out("concat", err, parts, shape...)
}

// Slice implements tensor.Backend.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) *tensor.Tensor {
	shape, _, _, err := tensor.SliceDims(x, axis, start, end)
	return b.out("slice", err, []*tensor.Tensor{x}, shape...)
}

// Embedding implements tensor.Backend.
func (b *Backend) Embedding(table *tensor.Tensor, ids []int32) *tensor.Tensor {
	var err error
	if table == nil || len(table.Shape) != 2 {
		err = fmt.Errorf("dryrun: embedding table %v", table)
	}
	d := 0
	if err == nil {
		d = table.Shape[1]
	}
	return b.out("embedding", err, []*tensor.Tensor{table}, len(ids), d)
}

// TimestepEmbedding implements tensor.Backend.
func (b *Backend) TimestepEmbedding(t []float32, dim int, flip bool, shift float32) *tensor.Tensor {
	return b.out("timestep_embedding", nil, nil, len(t), dim)
}

// Convert implements tensor.Backend.
func (b *Backend) Convert(x *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	b.use("convert", x)
	return b.New("convert", dt, shapeOf(x)...)
}

func f32(x *tensor.Tensor) error {
	if x == nil || x.DType != tensor.F32 {
		return fmt.Errorf("dryrun: input %v must be f32", x)
	}
	return nil
}

func shapeOf(x *tensor.Tensor) []int {
	if x == nil {
		return []int{1}
	}
	return x.Shape
}

// LocalMix implements tensor.Backend.
func (b *Backend) LocalMix(o, x, gate *tensor.Tensor, w []float32) *tensor.Tensor {
	_, _, _, _, err := tensor.LocalMixDims(o, x, gate, w)
	if err == nil {
		b.addFlops(3 * int64(o.Numel()))
	}
	return b.out("local_mix", err, []*tensor.Tensor{o, x, gate}, shapeOf(o)...)
}
