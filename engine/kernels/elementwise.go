// elementwise.go: activations, Scale, GEGLU and broadcasting Add/Mul on
// the GPU, kernels in shaders/elementwise.wgsl with the math of
// shaders/act.wgsl. References: cpu.Backend.Activate, Scale, GEGLU, Add, Mul.
package kernels

import (
	"fmt"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// ewPerGroup is the elements one elementwise workgroup covers (256 threads,
// four elements each).
const ewPerGroup = 1024

// unaryParams is UNARY's Params.
type unaryParams struct {
	N      uint32  // elements
	XOff   uint32  // elements: x within its binding
	OutOff uint32  // elements: out within its binding
	Scale  float32 // multiplies x before the activation
	Shift  float32 // added after scaling
	_      [3]uint32
}

// gegluParams is GEGLU's Params.
type gegluParams struct {
	N      uint32 // output elements
	F      uint32 // output width (input rows are 2F wide)
	XOff   uint32 // elements: x within its binding
	OutOff uint32 // elements: out within its binding
}

// maxBinaryRank is how many merged dims BINARY walks (two vec4s of Params).
const maxBinaryRank = 8

// binaryParams is BINARY's Params.
type binaryParams struct {
	N      uint32                // elements of a and out
	Rank   uint32                // merged dims
	AOff   uint32                // elements: a within its binding
	BOff   uint32                // elements: b within its binding
	OutOff uint32                // elements: out within its binding
	_      [3]uint32             //
	Dims   [maxBinaryRank]uint32 // a's merged dims, outermost first
	BStr   [maxBinaryRank]uint32 // elements: b's stride per merged dim, 0 where broadcast
}

// unaryVariant is one compiled form of UNARY: the act.wgsl function it
// applies (act_NAME).
type unaryVariant struct {
	fn string // none, silu, gelu, quick_gelu; tests also use exp, erf
}

func (v unaryVariant) build() gpu.Kernel {
	return gpu.Kernel{Shader: "elementwise.wgsl", Entry: "unary", Defines: shaders.Defines("UNARY", "1", "ACT", v.fn)}
}

var (
	kGEGLU = gpu.Kernel{Shader: "elementwise.wgsl", Entry: "geglu", Defines: shaders.Defines("GEGLU", "1")}
	kAdd   = gpu.Kernel{Shader: "elementwise.wgsl", Entry: "binary", Defines: shaders.Defines("BINARY", "1", "OP", "add")}
	kMul   = gpu.Kernel{Shader: "elementwise.wgsl", Entry: "binary", Defines: shaders.Defines("BINARY", "1", "OP", "mul")}
)

// unary computes fn(x·scale + shift) elementwise, fn being one of act.wgsl's
// act_* functions (none, silu, gelu, quick_gelu; tests also use exp, erf).
func (b *Backend) unary(op string, x *tensor.Tensor, fn string, scale, shift float32) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 {
		b.SetErr(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf("input %v must be f32", x)})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out := b.out(op, x.Shape...)
	n := x.Numel()
	// Elementwise: a tensor larger than a binding goes a window of
	// elements at a time.
	step := n
	if b.bindBytes(x) > b.bindLimit() || b.bindBytes(out) > b.bindLimit() {
		step = int(b.windowLimit() / 4)
	}
	for i0 := 0; i0 < n; i0 += max(step, 1) {
		k := min(step, n-i0)
		xc, oc := x, out
		if k < n {
			xc, oc = b.View(x, i0, k), b.View(out, i0, k)
		}
		xa, oa := b.arg(xc), b.arg(oc)
		b.run(kernelOf(unaryVariant{fn}), ceilDiv(k, ewPerGroup), unaryParams{
			N: uint32(k), XOff: xa.Off, OutOff: oa.Off, Scale: scale, Shift: shift,
		}, xa, oa)
	}
	return out
}

// Activate implements tensor.Backend; reference cpu.Backend.Activate.
func (b *Backend) Activate(x *tensor.Tensor, a tensor.Act) *tensor.Tensor {
	if a > tensor.ActLeakyReLU {
		b.SetErr(&tensor.ShapeError{Op: "activate", Msg: fmt.Sprintf("unknown activation %d", a)})
		return b.placeholder([]int{1})
	}
	return b.unary("activate", x, a.String(), 1, 0)
}

// Scale implements tensor.Backend: x·s + c (reference cpu.Backend.Scale).
func (b *Backend) Scale(x *tensor.Tensor, s, c float32) *tensor.Tensor {
	return b.unary("scale", x, "none", s, c)
}

// GEGLU implements tensor.Backend; reference cpu.Backend.GEGLU:
// out[r, j] = x[r, j]·GELU(x[r, F+j]) for x [..., 2F].
func (b *Backend) GEGLU(x *tensor.Tensor) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 || len(x.Shape) == 0 || x.Dim(-1)%2 != 0 {
		b.SetErr(&tensor.ShapeError{Op: "geglu", Msg: fmt.Sprintf("input %v must be f32 with an even last dim", x)})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	f := x.Dim(-1) / 2
	out := b.out("geglu", tensor.LinearShape(x, f)...)
	n := out.Numel()
	if n == 0 {
		return out
	}
	// Rows at a time when x is larger than a binding.
	rows := n / f
	step := rows
	if b.bindBytes(x) > b.bindLimit() || b.bindBytes(out) > b.bindLimit() {
		if step = int(b.windowLimit() / uint64(8*f)); step == 0 {
			b.SetErr(&gpu.LimitError{What: fmt.Sprintf("geglu %v: one row", x), Need: uint64(8 * f), Have: b.bindLimit()})
			return out
		}
	}
	for r0 := 0; r0 < rows; r0 += step {
		r := min(step, rows-r0)
		xc, oc := x, out
		if r < rows {
			xc, oc = b.View(x, r0*2*f, r, 2*f), b.View(out, r0*f, r, f)
		}
		xa, oa := b.arg(xc), b.arg(oc)
		b.run(kGEGLU, ceilDiv(r*f, ewPerGroup), gegluParams{N: uint32(r * f), F: uint32(f), XOff: xa.Off, OutOff: oa.Off}, xa, oa)
	}
	return out
}

// mergeDims reduces a's shape and b's broadcast strides to the fewest dims
// that walk the same elements: size-1 dims drop out, and a dim merges into
// its outer neighbour when b's strides continue each other (both broadcast,
// or both contiguous). [B,H,W,C] + [C] becomes [B·H·W, C] with strides
// [0, 1]; equal shapes become one dim.
func mergeDims(shape, bstr []int) (dims, str []int) {
	for i, n := range shape {
		if n == 1 {
			continue
		}
		if k := len(dims) - 1; k >= 0 && str[k] == bstr[i]*n {
			dims[k] *= n
			str[k] = bstr[i]
			continue
		}
		dims = append(dims, n)
		str = append(str, bstr[i])
	}
	if len(dims) == 0 {
		return []int{1}, []int{0}
	}
	return dims, str
}

func (b *Backend) binary(op string, k gpu.Kernel, a, c *tensor.Tensor) *tensor.Tensor {
	st, err := tensor.BroadcastStrides(op, a, c)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	dims, str := mergeDims(a.Shape, st)
	if len(dims) > maxBinaryRank {
		b.SetErr(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf("%v against %v needs %d dims, more than %d", c, a, len(dims), maxBinaryRank)})
		return b.placeholder([]int{1})
	}
	out := b.out(op, a.Shape...)
	n := a.Numel()
	if n == 0 {
		return out
	}
	// A tensor larger than a binding goes a block of the outermost merged
	// dim at a time (b's matching block, or all of b where that dim is
	// broadcast).
	outer, inner := dims[0], n/dims[0]
	step := outer
	if b.bindBytes(a) > b.bindLimit() || b.bindBytes(out) > b.bindLimit() || b.bindBytes(c) > b.bindLimit() {
		if step = int(b.windowLimit() / uint64(4*inner)); step == 0 {
			b.SetErr(&gpu.LimitError{What: fmt.Sprintf("%s %v: one block of %d elements", op, a, inner), Need: uint64(4 * inner), Have: b.bindLimit()})
			return out
		}
	}
	for r0 := 0; r0 < outer; r0 += step {
		r := min(step, outer-r0)
		ac, cc, oc := a, c, out
		if r < outer {
			ac, oc = b.View(a, r0*inner, r*inner), b.View(out, r0*inner, r*inner)
			if str[0] != 0 {
				cc = b.View(c, r0*str[0], r*str[0])
			}
		}
		aa, ca, oa := b.arg(ac), b.arg(cc), b.arg(oc)
		p := binaryParams{N: uint32(r * inner), Rank: uint32(len(dims)), AOff: aa.Off, BOff: ca.Off, OutOff: oa.Off}
		p.Dims[0], p.BStr[0] = uint32(r), uint32(str[0])
		for i := 1; i < len(dims); i++ {
			p.Dims[i], p.BStr[i] = uint32(dims[i]), uint32(str[i])
		}
		b.run(k, ceilDiv(r*inner, ewPerGroup), p, aa, ca, oa)
	}
	return out
}

// Add implements tensor.Backend: a + b with b broadcast to a's shape
// (reference cpu.Backend.Add).
func (b *Backend) Add(a, c *tensor.Tensor) *tensor.Tensor { return b.binary("add", kAdd, a, c) }

// Mul implements tensor.Backend: a·b with b broadcast to a's shape
// (reference cpu.Backend.Mul).
func (b *Backend) Mul(a, c *tensor.Tensor) *tensor.Tensor { return b.binary("mul", kMul, a, c) }
