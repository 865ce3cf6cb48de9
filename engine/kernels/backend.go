// Package kernels is the GPU backend: tensor.Backend implemented with the
// WGSL kernels in shaders/, dispatched through engine/gpu. Each op family
// lives in its own file with its Params struct (fields commented with their
// units) and its pipeline keys; the CPU reference each kernel computes is
// named in the op's doc comment and lives in engine/cpu.
//
// backend.go holds tensor storage, views, uploads, read-back and the
// dispatch helper every op uses.
package kernels

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/x448/float16"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// Backend runs ops on a gpu.Device.
type Backend struct {
	dev *gpu.Device
	// F16Arith selects kernel variants that compute in f16 when the device
	// can (shader-f16 granted and compiling); otherwise fp16 weights are
	// stored two per u32 word and widened with unpack2x16float.
	F16Arith bool
	// Subgroup is the subgroup size the dense kernels may assume (the
	// device's probed SubgroupSize; 0 keeps them off subgroups).
	Subgroup int
	cfg      tuning // kernel-selection knobs (tuning.go)
	// guard (tests) surrounds every op output with bands of sentinel words;
	// checkGuards then proves no kernel wrote outside its output.
	guard bool

	mu    sync.Mutex
	err   error
	dummy *gpu.Buffer // bound where an optional input is absent
}

// New returns a backend on dev.
func New(dev *gpu.Device) *Backend {
	return &Backend{dev: dev, F16Arith: dev.Info().ShaderF16, Subgroup: int(dev.Info().SubgroupSize), cfg: defaultTuning()}
}

// Device is the underlying device.
func (b *Backend) Device() *gpu.Device { return b.dev }

var _ tensor.Backend = (*Backend)(nil)

// store is a tensor's GPU storage: a whole buffer.
type store struct {
	buf   *gpu.Buffer
	elems int
}

func (s *store) Elems() int { return s.elems }

// Name implements tensor.Backend.
func (b *Backend) Name() string { return "webgpu" }

// Err implements tensor.Backend.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		if err := b.dev.Lost(); err != nil {
			b.err = err
		}
	}
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

func byteSize(dt tensor.DType, n int) uint64 {
	return uint64((n*dt.Size() + 3) &^ 3)
}

func (b *Backend) alloc(name string, dt tensor.DType, shape []int, exact bool) *tensor.Tensor {
	n := tensor.Numel(shape)
	t := &tensor.Tensor{Name: name, Shape: slices.Clone(shape), DType: dt}
	if b.Err() != nil {
		t.Data = &store{elems: n}
		return t
	}
	if b.guard && !exact {
		return b.allocGuarded(name, dt, shape)
	}
	var buf *gpu.Buffer
	var err error
	if exact {
		buf, err = b.dev.NewExactBuffer(name, byteSize(dt, n))
	} else {
		buf, err = b.dev.NewBuffer(name, byteSize(dt, n))
	}
	b.SetErr(err)
	t.Data = &store{buf: buf, elems: n}
	return t
}

// New implements tensor.Backend.
func (b *Backend) New(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return b.alloc(name, dt, shape, false)
}

// NewWeight implements tensor.Backend.
func (b *Backend) NewWeight(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
	return b.alloc(name, dt, shape, true)
}

// out allocates an op's F32 result.
func (b *Backend) out(name string, shape ...int) *tensor.Tensor {
	return b.alloc(name, tensor.F32, shape, false)
}

// placeholder stands in for the result of an op that failed.
func (b *Backend) placeholder(shape []int) *tensor.Tensor {
	return &tensor.Tensor{Name: "failed", Shape: slices.Clone(shape), Data: &store{elems: tensor.Numel(shape)}}
}

// Upload implements tensor.Backend. The byte range must start at a multiple
// of 4 bytes of the storage (always true for F32 and for F16 weights, which
// own their buffer).
func (b *Backend) Upload(t *tensor.Tensor, off int64, data []byte) {
	if b.Err() != nil {
		return
	}
	st := t.Data.(*store)
	start := int64(t.Offset*t.DType.Size()) + off
	if start%4 != 0 {
		b.SetErr(fmt.Errorf("kernels: upload to %v at byte %d: GPU writes start at multiples of 4", t, start))
		return
	}
	if off+int64(len(data)) > int64(t.Numel()*t.DType.Size()) {
		b.SetErr(fmt.Errorf("kernels: upload of %d bytes at %d overruns %v", len(data), off, t))
		return
	}
	b.SetErr(b.dev.Write(st.buf, uint64(start), data))
}

// FromF32 implements tensor.Backend.
func (b *Backend) FromF32(name string, data []float32, shape ...int) *tensor.Tensor {
	if tensor.Numel(shape) != len(data) {
		b.SetErr(fmt.Errorf("kernels: FromF32 %q: %d values for shape %v", name, len(data), shape))
		return b.placeholder(shape)
	}
	t := b.New(name, tensor.F32, shape...)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b.Upload(t, 0, raw)
	return t
}

// Read implements tensor.Backend.
func (b *Backend) Read(ctx context.Context, t *tensor.Tensor) ([]float32, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	st := t.Data.(*store)
	es := t.DType.Size()
	start := uint64(t.Offset * es)
	aligned := start &^ 3
	n := t.Numel()
	raw, err := b.dev.Read(ctx, st.buf, aligned, (start-aligned+uint64(n*es)+3)&^3)
	if err != nil {
		b.setWaitErr(err)
		return nil, err
	}
	raw = raw[start-aligned:]
	out := make([]float32, n)
	if t.DType == tensor.F16 {
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(raw[2*i:])).Float32()
		}
		return out, nil
	}
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// Free implements tensor.Backend.
func (b *Backend) Free(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil || t.View || t.Data == nil {
			continue
		}
		if st, ok := t.Data.(*store); ok && st.buf != nil {
			b.dev.Release(st.buf)
			st.buf = nil
		}
	}
}

// Sync implements tensor.Backend.
func (b *Backend) Sync(ctx context.Context) error {
	if err := b.Err(); err != nil {
		return err
	}
	err := b.dev.Sync(ctx)
	b.setWaitErr(err)
	return err
}

// setWaitErr records the error of a wait on the GPU (Read, Sync) unless it
// is the caller's context ending: that stops one generation, while the
// device (which gpu leaves usable after a cancelled wait) and the backend
// serve the next. The device's own timeout and loss stay sticky.
func (b *Backend) setWaitErr(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	b.SetErr(err)
}

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
		b.SetErr(fmt.Errorf("kernels: reshape %v to %v", t, shape))
		return b.placeholder(shape)
	}
	return b.View(t, 0, shape...)
}

// Arg is a tensor as a kernel sees it: a storage binding that starts at an
// aligned byte offset at or before the tensor, and the tensor's first
// element counted from the binding start (in elements of its dtype; for F16
// that is half-words inside the u32 words of the binding).
type Arg struct {
	Bind gpu.Binding
	Off  uint32 // element offset of the tensor within the binding
}

// arg binds t: the window from the aligned offset to the end of the tensor.
func (b *Backend) arg(t *tensor.Tensor) Arg {
	st := t.Data.(*store)
	es := uint64(t.DType.Size())
	align := uint64(b.dev.Limits().MinStorageBufferOffsetAlignment)
	start := uint64(t.Offset) * es
	if b.guard {
		// Bind the whole buffer, so that a kernel writing past its tensor
		// hits the sentinel bands instead of being clipped (or clamped onto
		// the tensor's last element) by the binding's bounds checks.
		return Arg{Bind: gpu.Binding{Buf: st.buf}, Off: uint32(t.Offset)}
	}
	bindOff := start / align * align
	end := (start + uint64(t.Numel())*es + 3) &^ 3
	return Arg{
		Bind: gpu.Binding{Buf: st.buf, Offset: bindOff, Size: end - bindOff},
		Off:  uint32((start - bindOff) / es),
	}
}

// bindBytes is the size of the binding arg makes for t outside guard mode:
// from the aligned offset at or before t to its end.
func (b *Backend) bindBytes(t *tensor.Tensor) uint64 {
	es := uint64(t.DType.Size())
	start := uint64(t.Offset) * es
	align := uint64(b.dev.Limits().MinStorageBufferOffsetAlignment)
	return (start+uint64(t.Numel())*es+3)&^3 - start/align*align
}

// windowLimit is the most bytes of tensor data a window of a split op may
// hold: the binding limit less the slack of an unaligned window start (0
// when that leaves nothing, which the split ops refuse).
func (b *Backend) windowLimit() uint64 {
	lim, align := b.bindLimit(), uint64(b.dev.Limits().MinStorageBufferOffsetAlignment)
	if lim <= align {
		return 0
	}
	return lim - align
}

// optArg binds t, or when t is nil a dummy one-word buffer (a kernel that
// declares an optional input still needs something bound there; its Params
// say whether to read it).
func (b *Backend) optArg(t *tensor.Tensor) Arg {
	if t != nil {
		return b.arg(t)
	}
	return Arg{Bind: gpu.Binding{Buf: b.dummyBuf()}}
}

func (b *Backend) dummyBuf() *gpu.Buffer {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dummy == nil {
		buf, err := b.dev.NewExactBuffer("kernels.dummy", 256)
		if err != nil && b.err == nil {
			b.err = err
		}
		b.dummy = buf
	}
	return b.dummy
}

// run records one dispatch, keeping the first error.
func (b *Backend) run(k gpu.Kernel, workgroups int, params any, args ...Arg) {
	if b.Err() != nil {
		return
	}
	binds := make([]gpu.Binding, len(args))
	for i, a := range args {
		if a.Bind.Buf == nil {
			b.SetErr(fmt.Errorf("kernels: %s argument %d has no storage", k, i))
			return
		}
		// A stand-in binding limit (tests) is enforced as the device
		// enforces its own, so that a split that binds too much fails.
		// Guard mode binds whole buffers on purpose and is exempt.
		if lim, size := b.cfg.bindLimit, a.Bind.Size; lim > 0 && !b.guard && size > lim {
			b.SetErr(&gpu.LimitError{What: fmt.Sprintf("%s binding %d (%q) size (stand-in limit)", k, i, a.Bind.Buf.Label()), Need: size, Have: lim})
			return
		}
		binds[i] = a.Bind
	}
	b.SetErr(b.dev.Dispatch(k, workgroups, params, binds...))
}

// ceilDiv is ⌈a/b⌉.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// guardElems is the size of each sentinel band, in 4-byte words: one
// alignment unit, so the guarded tensor still starts on an aligned binding.
const guardElems = 64

// sentinel is the bit pattern written into guard bands (a quiet NaN no
// kernel produces).
const sentinel = 0x7fc0dead

func (b *Backend) allocGuarded(name string, dt tensor.DType, shape []int) *tensor.Tensor {
	n := tensor.Numel(shape)
	words := int(byteSize(dt, n)/4) + 2*guardElems
	buf, err := b.dev.NewBuffer(name, uint64(4*words))
	b.SetErr(err)
	t := &tensor.Tensor{Name: name, Shape: slices.Clone(shape), DType: dt, Data: &store{buf: buf, elems: words * 4 / dt.Size()}}
	t.Offset = guardElems * 4 / dt.Size()
	if err == nil {
		fill := make([]byte, 4*words)
		for i := 0; i < words; i++ {
			binary.LittleEndian.PutUint32(fill[4*i:], sentinel)
		}
		b.SetErr(b.dev.Write(buf, 0, fill))
	}
	return t
}

// checkGuards verifies the sentinel bands around a tensor made while guard
// was on: the band before it and everything after its last element.
func (b *Backend) checkGuards(ctx context.Context, t *tensor.Tensor) error {
	st := t.Data.(*store)
	raw, err := b.dev.Read(ctx, st.buf, 0, st.buf.Size())
	if err != nil {
		return err
	}
	es := t.DType.Size()
	first := t.Offset * es
	last := (first + t.Numel()*es + 3) &^ 3
	for i := 0; i+4 <= len(raw); i += 4 {
		if i >= first && i < last {
			continue
		}
		if w := binary.LittleEndian.Uint32(raw[i:]); w != sentinel {
			return fmt.Errorf("kernels: %v: guard word at byte %d overwritten (0x%08x); the tensor spans [%d, %d)", t, i, w, first, last)
		}
	}
	return nil
}
