// dense.go: the dense ops on the GPU — Linear (shaders/matmul.wgsl) and
// Conv2D as an implicit GEMM over NHWC input (shaders/conv2d.wgsl) — with
// their fused epilogues (bias, per-(batch, channel) bias, activation,
// residual). Spec: issue 2 §3–4; engine/cpu/dense.go is the reference.
package kernels

import (
	"fmt"
	"strconv"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// gemmTile is a register-blocked GEMM tiling: a workgroup of WGM×WGN threads,
// each accumulating a TM×TN block of outputs (TN a multiple of 4), covers (WGM·TM)×(WGN·TN)
// outputs (rows × output channels).
type gemmTile struct {
	TM, TN   int // outputs per thread: rows × columns
	WGM, WGN int // threads per workgroup along rows × columns
}

// rows and cols are the output tile of one workgroup.
func (g gemmTile) rows() int { return g.WGM * g.TM }
func (g gemmTile) cols() int { return g.WGN * g.TN }

func (g gemmTile) defines() []string {
	return []string{
		"TM", strconv.Itoa(g.TM), "TN", strconv.Itoa(g.TN),
		"WGM", strconv.Itoa(g.WGM), "WGN", strconv.Itoa(g.WGN),
		"WG", strconv.Itoa(g.WGM * g.WGN), "TN4", strconv.Itoa(g.TN / 4),
	}
}

// denseTile is the tiling of Linear and Conv2D: 64 threads (a multiple of
// every SIMD width in use, well under the 256-invocation default limit)
// holding 8×8 accumulators each, a 64×64 output tile. On lavapipe 8×8 blocks
// ran 512³ at ~11 GFLOP/s against ~8 for 4×4 (each loaded vec4 feeds more
// arithmetic).
var denseTile = gemmTile{TM: 8, TN: 8, WGM: 8, WGN: 8}

// epilogueDefines are the defines of the fused epilogue shared by the dense
// kernels.
func epilogueDefines(a tensor.Act, bias, res bool) []string {
	var d []string
	switch a {
	case tensor.ActSiLU:
		d = append(d, "ACT_SILU", "1")
	case tensor.ActGELU:
		d = append(d, "ACT_GELU", "1")
	case tensor.ActQuickGELU:
		d = append(d, "ACT_QGELU", "1")
	}
	if bias {
		d = append(d, "BIAS", "1")
	}
	if res {
		d = append(d, "RES", "1")
	}
	return d
}

// weightDefines selects how a weight tensor is read: f32, binary16 pairs
// widened with unpack2x16float, or native f16 (Backend.F16Arith).
func (b *Backend) weightDefines(w *tensor.Tensor) []string {
	switch b.wtype(w) {
	case "f16":
		return []string{"F16", "1"}
	case "f16n":
		return []string{"F16N", "1"}
	}
	return nil
}

// linearParams are matmul.wgsl's Params.
type linearParams struct {
	M, N, K uint32 // rows, output features, input features
	TilesN  uint32 // workgroup tiles along N
	Tiles   uint32 // workgroup tiles in all
	XOff    uint32 // element offset of x in its binding
	WOff    uint32 // element offset of w in its binding (in w's elements)
	BOff    uint32 // element offset of bias
	ROff    uint32 // element offset of the residual
	OOff    uint32 // element offset of out
	_       [2]uint32
}

// Linear implements tensor.Backend (the reference is cpu.Backend.Linear):
//
//	for m, n: out[m, n] = Act(Σ_k x[m, k]·w[n, k] + b[n]) + residual[m, n]
//
// with f32 accumulation; w is f32 or f16.
func (b *Backend) Linear(x, w, bias *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	m, k, n, err := tensor.LinearDims(x, w, bias, ep)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out := b.out("linear", tensor.LinearShape(x, n)...)
	b.linear(out, x, w, bias, ep, m, k, n)
	return out
}

// linear records the matmul.wgsl dispatch computing out (m×n) = x (m×k) ·
// wᵀ with the epilogue. Conv2D reuses it for plain 1×1 convolutions.
func (b *Backend) linear(out, x, w, bias *tensor.Tensor, ep tensor.Epilogue, m, k, n int) {
	if b.Err() != nil {
		return
	}
	xa, wa, oa := b.arg(x), b.arg(w), b.arg(out)
	ba, ra := b.optArg(bias), b.optArg(ep.Residual)
	g := denseTile
	vec := k%4 == 0 && xa.Off%4 == 0 && wa.Off%4 == 0
	defs := append(g.defines(), b.weightDefines(w)...)
	defs = append(defs, epilogueDefines(ep.Act, bias != nil, ep.Residual != nil)...)
	if vec {
		defs = append(defs, "VEC", "1")
	}
	if n%4 == 0 && oa.Off%4 == 0 && (ep.Residual == nil || ra.Off%4 == 0) {
		defs = append(defs, "VOUT", "1")
	}
	tn := ceilDiv(n, g.cols())
	tiles := ceilDiv(m, g.rows()) * tn
	p := linearParams{
		M: uint32(m), N: uint32(n), K: uint32(k),
		TilesN: uint32(tn), Tiles: uint32(tiles),
		XOff: xa.Off, WOff: wa.Off, BOff: ba.Off, ROff: ra.Off, OOff: oa.Off,
	}
	kern := gpu.Kernel{Shader: "matmul.wgsl", Entry: "main", Defines: shaders.Defines(defs...)}
	b.run(kern, tiles, p, xa, wa, ba, ra, oa)
}

// convParams are conv2d.wgsl's Params.
type convParams struct {
	M      uint32 // output pixels B·OutH·OutW (GEMM rows)
	N      uint32 // output channels O
	C      uint32 // input channels
	TilesN uint32 // workgroup tiles along N
	Tiles  uint32 // workgroup tiles in all
	H, W   uint32 // stored input height and width
	InH    uint32 // input height as the convolution sees it (2·H when upsampling)
	InW    uint32 // input width likewise
	OutH   uint32 // output height
	OutW   uint32 // output width
	KH, KW uint32 // kernel height and width
	Stride uint32 // pixels between kernel applications
	Pad    uint32 // zero padding on every side, pixels
	XOff   uint32 // element offset of x in its binding
	WOff   uint32 // element offset of w (in w's elements)
	BOff   uint32 // element offset of bias
	CBOff  uint32 // element offset of the channel bias [B, O]
	ROff   uint32 // element offset of the residual
	OOff   uint32 // element offset of out
	_      [3]uint32
}

// Conv2D implements tensor.Backend (the reference is cpu.Backend.Conv2D). For
// output pixel (b, oy, ox) and channel o:
//
//	acc = Σ_{c,ky,kx} in(b, oy·s+ky−p, ox·s+kx−p, c)·w[o, c, ky, kx]
//	out[b, oy, ox, o] = Act(acc + bias[o] + chanBias[b, o]) + residual
//
// where in() reads the NHWC input through the optional nearest 2× upsampling
// and is zero outside it. It is an implicit GEMM (no im2col buffer) with
// rows = output pixels, columns = output channels, inner = (ky, kx, c). A
// plain 1×1 convolution (stride 1, no padding, upsampling or channel bias) is
// a Linear over the pixels and runs as one.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, o tensor.ConvOpts) *tensor.Tensor {
	g, err := tensor.ConvDims(x, w, bias, o)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out := b.out("conv2d", g.B, g.OutH, g.OutW, g.O)
	if g.KH == 1 && g.KW == 1 && g.Stride == 1 && g.Pad == 0 && !g.Upsample && o.ChanBias == nil {
		m := g.B * g.H * g.W
		x2 := b.View(x, 0, m, g.C)
		w2 := b.View(w, 0, g.O, g.C)
		b.linear(out, x2, w2, bias, o.Epilogue, m, g.C, g.O)
		return out
	}
	xa, wa, oa := b.arg(x), b.arg(w), b.arg(out)
	ba, cba, ra := b.optArg(bias), b.optArg(o.ChanBias), b.optArg(o.Residual)
	t := denseTile
	defs := append(t.defines(), b.weightDefines(w)...)
	defs = append(defs, epilogueDefines(o.Act, bias != nil, o.Residual != nil)...)
	if o.ChanBias != nil {
		defs = append(defs, "CHANBIAS", "1")
	}
	if g.Upsample {
		defs = append(defs, "UPSAMPLE", "1")
	}
	if g.C%4 == 0 && xa.Off%4 == 0 {
		defs = append(defs, "VEC", "1")
	}
	if g.O%4 == 0 && oa.Off%4 == 0 && (o.Residual == nil || ra.Off%4 == 0) {
		defs = append(defs, "VOUT", "1")
	}
	m := g.B * g.OutH * g.OutW
	tn := ceilDiv(g.O, t.cols())
	tiles := ceilDiv(m, t.rows()) * tn
	if uint64(m)*uint64(g.O) >= 1<<32 || uint64(g.B*g.H*g.W)*uint64(g.C) >= 1<<32 {
		b.SetErr(fmt.Errorf("kernels: conv2d %v: tensors past 2³² elements", x))
		return out
	}
	p := convParams{
		M: uint32(m), N: uint32(g.O), C: uint32(g.C),
		TilesN: uint32(tn), Tiles: uint32(tiles),
		H: uint32(g.H), W: uint32(g.W), InH: uint32(g.InH), InW: uint32(g.InW),
		OutH: uint32(g.OutH), OutW: uint32(g.OutW),
		KH: uint32(g.KH), KW: uint32(g.KW), Stride: uint32(g.Stride), Pad: uint32(g.Pad),
		XOff: xa.Off, WOff: wa.Off, BOff: ba.Off, CBOff: cba.Off, ROff: ra.Off, OOff: oa.Off,
	}
	kern := gpu.Kernel{Shader: "conv2d.wgsl", Entry: "main", Defines: shaders.Defines(defs...)}
	b.run(kern, tiles, p, xa, wa, ba, cba, ra, oa)
	return out
}
