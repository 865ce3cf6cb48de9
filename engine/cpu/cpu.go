// Package cpu is the pure-Go reference backend: every op of tensor.Backend
// as plain loops, accumulating in float64. It is the oracle the GPU kernels
// are tested against (each kernel's doc comment names the loop here that it
// computes) and runs whole models for tests without a device.
//
// F16 weights are kept as raw binary16 words and widened on use, so a
// reference run "on the same fp16-rounded weights" is this backend fed the
// same F16 tensors.
package cpu

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/x448/float16"

	"harmony/engine/tensor"
)

// Backend is the CPU reference backend.
type Backend struct {
	mu  sync.Mutex
	err error
	// Allocated counts live bytes, for memory tests.
	allocated int64
}

// New returns a CPU backend.
func New() *Backend { return &Backend{} }

type store struct {
	f32 []float32
	f16 []uint16
}

func (s *store) Elems() int {
	if s.f16 != nil {
		return len(s.f16)
	}
	return len(s.f32)
}

var _ tensor.Backend = (*Backend)(nil)

// Name implements tensor.Backend.
func (b *Backend) Name() string { return "cpu" }

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

// failed records err (if any) and reports whether the op must be skipped.
func (b *Backend) failed(err error) bool {
	if err != nil {
		b.SetErr(err)
	}
	return b.Err() != nil
}

// Allocated is the number of bytes held by live tensors.
func (b *Backend) Allocated() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allocated
}

// New implements tensor.Backend.
func (b *Backend) New(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	n := tensor.Numel(shape)
	st := &store{}
	if dt == tensor.F16 {
		st.f16 = make([]uint16, n)
	} else {
		st.f32 = make([]float32, n)
	}
	b.mu.Lock()
	b.allocated += int64(n * dt.Size())
	b.mu.Unlock()
	return &tensor.Tensor{Name: name, Shape: slices.Clone(shape), DType: dt, Data: st}
}

// NewWeight implements tensor.Backend.
func (b *Backend) NewWeight(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return b.New(name, dt, shape...)
}

func (b *Backend) out(name string, shape ...int) (*tensor.Tensor, []float32) {
	t := b.New(name, tensor.F32, shape...)
	return t, t.Data.(*store).f32
}

// Upload implements tensor.Backend.
func (b *Backend) Upload(t *tensor.Tensor, off int64, data []byte) {
	if b.Err() != nil {
		return
	}
	st := t.Data.(*store)
	es := int64(t.DType.Size())
	if off%es != 0 || int64(len(data))%es != 0 {
		b.SetErr(fmt.Errorf("cpu: upload to %v: offset %d / length %d not whole elements", t, off, len(data)))
		return
	}
	i0 := int64(t.Offset) + off/es
	n := int64(len(data)) / es
	if i0+n > int64(st.Elems()) {
		b.SetErr(fmt.Errorf("cpu: upload of %d bytes at %d overruns %v", len(data), off, t))
		return
	}
	if t.DType == tensor.F16 {
		for i := range n {
			st.f16[i0+i] = binary.LittleEndian.Uint16(data[2*i:])
		}
		return
	}
	for i := range n {
		st.f32[i0+i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
}

// FromF32 implements tensor.Backend.
func (b *Backend) FromF32(name string, data []float32, shape ...int) *tensor.Tensor {
	if tensor.Numel(shape) != len(data) {
		b.SetErr(fmt.Errorf("cpu: FromF32 %q: %d values for shape %v", name, len(data), shape))
	}
	t, o := b.out(name, shape...)
	copy(o, data)
	return t
}

// F32 returns t's elements widened to float32 (a copy for F16, the backing
// slice window for F32).
func F32(t *tensor.Tensor) []float32 {
	st := t.Data.(*store)
	n := t.Numel()
	if t.DType == tensor.F16 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float16.Frombits(st.f16[t.Offset+i]).Float32()
		}
		return out
	}
	return st.f32[t.Offset : t.Offset+n]
}

// Read implements tensor.Backend.
func (b *Backend) Read(_ context.Context, t *tensor.Tensor) ([]float32, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(F32(t)), nil
}

// Free implements tensor.Backend.
func (b *Backend) Free(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil || t.View || t.Data == nil {
			continue
		}
		st := t.Data.(*store)
		b.mu.Lock()
		b.allocated -= int64(st.Elems() * t.DType.Size())
		b.mu.Unlock()
		t.Data = nil
	}
}

// Sync implements tensor.Backend.
func (b *Backend) Sync(context.Context) error { return b.Err() }

// View implements tensor.Backend.
func (b *Backend) View(t *tensor.Tensor, offset int, shape ...int) *tensor.Tensor {
	if b.failed(tensor.ViewCheck(t, offset, shape)) {
		return b.placeholder(shape)
	}
	return &tensor.Tensor{Name: t.Name, Shape: slices.Clone(shape), DType: t.DType, Offset: t.Offset + offset, Data: t.Data, View: true}
}

// Reshape implements tensor.Backend.
func (b *Backend) Reshape(t *tensor.Tensor, shape ...int) *tensor.Tensor {
	if t != nil && tensor.Numel(shape) != t.Numel() {
		b.SetErr(fmt.Errorf("cpu: reshape %v to %v", t, shape))
		return b.placeholder(shape)
	}
	return b.View(t, 0, shape...)
}

// placeholder stands in for the result of an op that failed.
func (b *Backend) placeholder(shape []int) *tensor.Tensor {
	t, _ := b.out("failed", shape...)
	return t
}

// parallel runs f over [0, n) in contiguous chunks on all cores.
func parallel(n int, f func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 || n < 64 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}

func act(a tensor.Act, x float64) float64 {
	switch a {
	case tensor.ActSiLU:
		return x / (1 + math.Exp(-x))
	case tensor.ActGELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case tensor.ActQuickGELU:
		return x / (1 + math.Exp(-1.702*x))
	case tensor.ActLeakyReLU:
		if x < 0 {
			return float64(float32(0.01) * float32(x))
		}
		return x
	}
	return x
}
