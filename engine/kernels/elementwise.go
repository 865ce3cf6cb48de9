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
	xa, oa := b.arg(x), b.arg(out)
	b.run(kernelOf(unaryVariant{fn}), ceilDiv(n, ewPerGroup), unaryParams{
		N: uint32(n), XOff: xa.Off, OutOff: oa.Off, Scale: scale, Shift: shift,
	}, xa, oa)
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
	xa, oa := b.arg(x), b.arg(out)
	b.run(kGEGLU, ceilDiv(n, ewPerGroup), gegluParams{N: uint32(n), F: uint32(f), XOff: xa.Off, OutOff: oa.Off}, xa, oa)
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
	aa, ca, oa := b.arg(a), b.arg(c), b.arg(out)
	p := binaryParams{N: uint32(n), Rank: uint32(len(dims)), AOff: aa.Off, BOff: ca.Off, OutOff: oa.Off}
	for i := range dims {
		p.Dims[i], p.BStr[i] = uint32(dims[i]), uint32(str[i])
	}
	b.run(k, ceilDiv(n, ewPerGroup), p, aa, ca, oa)
	return out
}

// Add implements tensor.Backend: a + b with b broadcast to a's shape
// (reference cpu.Backend.Add).
func (b *Backend) Add(a, c *tensor.Tensor) *tensor.Tensor { return b.binary("add", kAdd, a, c) }

// Mul implements tensor.Backend: a·b with b broadcast to a's shape
// (reference cpu.Backend.Mul).
func (b *Backend) Mul(a, c *tensor.Tensor) *tensor.Tensor { return b.binary("mul", kMul, a, c) }
