// dense.go: the dense ops on the GPU — Linear (shaders/matmul.wgsl) and
// Conv2D as an implicit GEMM over NHWC input (shaders/conv2d.wgsl) — with
// their fused epilogues (bias, per-(batch, channel) bias, activation,
// residual). engine/cpu/dense.go is the reference.
package kernels

import (
	"fmt"
	"strconv"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// gemmTile is a register-blocked GEMM tiling: a workgroup of WGM×WGN
// threads, each accumulating a TM×TN block of outputs (TN a multiple of 4),
// covers (WGM·TM)×(WGN·TN) outputs (rows × output channels).
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

// weightType is how a dense kernel reads its weights.
type weightType uint8

const (
	weightF32  weightType = iota // f32
	weightF16                    // binary16 pairs in u32 words, widened with unpack2x16float (F16)
	weightF16N                   // native f16 arithmetic (F16N; Backend.F16Arith)
)

// denseVariant is one compiled form of matmul.wgsl (Linear) or conv2d.wgsl
// (Conv2D): the tiling and every flag that changes the code.
type denseVariant struct {
	conv     bool // conv2d.wgsl, else matmul.wgsl
	tile     gemmTile
	weight   weightType
	act      tensor.Act // fused activation
	bias     bool       // per-column bias (BIAS)
	res      bool       // residual added last (RES)
	vec      bool       // inner dimension read as vec4 (VEC)
	vout     bool       // output written as vec4 (VOUT)
	subgroup int        // lanes per subgroup the kernel assumes (SG), 0 for none
	w8       bool       // matmul: f16 weights read eight at a time (W8)
	split    bool       // matmul: output in slabs (SPLIT)
	geglu    bool       // matmul: value and gate columns (GEGLU)
	chanBias bool       // conv: per-(batch, channel) bias (CHANBIAS)
	upsample bool       // conv: nearest 2× upsampling of the input (UPSAMPLE)
	taps     int        // conv: kernel taps KH·KW of the TAPS form (3×3), 0 for the general loops
	tapsW    int        // conv: kernel width of the TAPS form
}

func (v denseVariant) build() gpu.Kernel {
	defs := v.tile.defines()
	switch v.weight {
	case weightF16:
		defs = append(defs, "F16", "1")
	case weightF16N:
		defs = append(defs, "F16N", "1")
	}
	defs = append(defs, epilogueDefines(v.act, v.bias, v.res)...)
	flags := []struct {
		on   bool
		name string
	}{
		{v.vec, "VEC"}, {v.vout, "VOUT"}, {v.w8, "W8"}, {v.split, "SPLIT"}, {v.geglu, "GEGLU"},
		{v.chanBias, "CHANBIAS"}, {v.upsample, "UPSAMPLE"},
	}
	for _, f := range flags {
		if f.on {
			defs = append(defs, f.name, "1")
		}
	}
	if v.subgroup > 0 {
		defs = append(defs, "SG", strconv.Itoa(v.subgroup), "SGL", strconv.Itoa(ceilDiv(v.tile.TN, v.subgroup)))
	}
	if v.taps > 0 {
		defs = append(defs, "TAPS", "1", "KK", strconv.Itoa(v.taps), "KW", strconv.Itoa(v.tapsW))
	}
	shader := "matmul.wgsl"
	if v.conv {
		shader = "conv2d.wgsl"
	}
	return gpu.Kernel{Shader: shader, Entry: "main", Defines: shaders.Defines(defs...)}
}

// sgTile is g's subgroup form for subgroups of s lanes (matmul.wgsl's SG):
// the workgroup's threads run down the rows first, WGM a multiple of s, so
// that a subgroup shares its columns. ok is false where the problem is too
// small for a subgroup's worth of row blocks (fit narrows WGM below s).
func sgTile(g gemmTile, s, m, n int) (gemmTile, bool) {
	if s <= 0 || s > g.WGM*g.WGN || g.TN%s != 0 && s%g.TN != 0 {
		return g, false
	}
	if g.WGM < s {
		g.WGN = g.WGM * g.WGN / s
		g.WGM = s
	}
	g = g.fit(m, n)
	return g, g.WGM%s == 0
}

// fit narrows a tile's thread grid to the problem: while the workgroup's
// columns (rows) cover twice the n output columns (m rows) or more, it
// drops half its thread columns (rows), so that small layers (the tiny
// UNet's 32 channels, a time embedding's 2 rows) do not compute mostly
// padding. The workgroup shrinks rather than growing along the other side:
// small grids need every workgroup they have (moving the threads over cut
// the tiny UNet's convolutions from 12 workgroups to 3 and slowed them on
// SwiftShader).
func (g gemmTile) fit(m, n int) gemmTile {
	for g.WGN > 1 && g.cols() >= 2*n {
		g.WGN /= 2
	}
	for g.WGM > 1 && g.rows() >= 2*m {
		g.WGM /= 2
	}
	return g
}

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
	case tensor.ActLeakyReLU:
		d = append(d, "ACT_LEAKY", "1")
	}
	if bias {
		d = append(d, "BIAS", "1")
	}
	if res {
		d = append(d, "RES", "1")
	}
	return d
}

// weightType selects how a weight tensor is read: f32, binary16 pairs
// widened with unpack2x16float, or native f16 (Backend.F16Arith).
func (b *Backend) weightType(w *tensor.Tensor) weightType {
	switch {
	case w.DType != tensor.F16:
		return weightF32
	case b.F16Arith:
		return weightF16N
	}
	return weightF16
}

// linearParams are matmul.wgsl's Params.
type linearParams struct {
	M      uint32 // rows of x and out
	N      uint32 // output columns (features; half of w's rows with GEGLU)
	K      uint32 // input features: elements per row of x and of w
	TilesN uint32 // workgroups along N
	Tiles  uint32 // workgroups in all
	XOff   uint32 // elements: x within its binding
	WOff   uint32 // elements (w's, halves for f16): w within its binding
	BOff   uint32 // elements: bias within its binding
	ROff   uint32 // elements: the residual within its binding
	OOff   uint32 // elements: out within its binding
	Split  uint32 // output columns per slab (Epilogue.Split), 0 for none
	_      uint32
}

// Linear implements tensor.Backend (the reference is cpu.Backend.Linear):
//
//	for m, n: out[m, n] = Act(Σ_k x[m, k]·w[n, k] + b[n]) + residual[m, n]
//
// with f32 accumulation; w is f32 or f16. Epilogue.Split and .GEGLU are the
// kernel's SPLIT and GEGLU output forms.
func (b *Backend) Linear(x, w, bias *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	m, k, n, err := tensor.LinearDims(x, w, bias, ep)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out := b.out("linear", tensor.LinearOutShape(x, n, ep)...)
	b.linear(out, x, w, bias, ep, m, k, n)
	return out
}

// linear records the matmul.wgsl dispatches computing out (m×n) = x (m×k) ·
// wᵀ with the epilogue: one, or one per chunk of rows when x or out is
// larger than a storage binding may be. Conv2D reuses it for plain 1×1
// convolutions.
func (b *Backend) linear(out, x, w, bias *tensor.Tensor, ep tensor.Epilogue, m, k, n int) {
	if b.Err() != nil {
		return
	}
	lim := b.bindLimit()
	if byteSize(w.DType, w.Numel()) > lim {
		b.SetErr(&gpu.LimitError{What: fmt.Sprintf("linear weight %v binding", w), Need: byteSize(w.DType, w.Numel()), Have: lim})
		return
	}
	if b.bindBytes(x) <= lim && b.bindBytes(out) <= lim && (ep.Residual == nil || b.bindBytes(ep.Residual) <= lim) {
		b.linearChunk(out, x, w, bias, ep, m, k, n)
		return
	}
	if sp := ep.Split; sp > 0 {
		// A row chunk of a split output spans every slab: one plain
		// Linear per slab instead, each chunked as it needs.
		for j := 0; j < n/sp; j++ {
			var bj *tensor.Tensor
			if bias != nil {
				bj = b.View(bias, j*sp, sp)
			}
			b.linear(b.View(out, j*m*sp, m, sp), x, b.View(w, j*sp*k, sp, k), bj, tensor.Epilogue{Act: ep.Act}, m, k, sp)
		}
		return
	}
	on := n
	if ep.GEGLU {
		on = n / 2
	}
	win := b.windowLimit()
	rows := int(min(win/uint64(4*k), win/uint64(4*n)))
	if rows == 0 {
		b.SetErr(&gpu.LimitError{What: fmt.Sprintf("linear %v: one row", x), Need: uint64(4 * max(k, n)), Have: lim})
		return
	}
	for r0 := 0; r0 < m; r0 += rows {
		r := min(rows, m-r0)
		cep := ep
		if ep.Residual != nil {
			cep.Residual = b.View(ep.Residual, r0*on, r, on)
		}
		b.linearChunk(b.View(out, r0*on, r, on), b.View(x, r0*k, r, k), w, bias, cep, r, k, n)
	}
}

// linearChunk records one matmul.wgsl dispatch (n is w's rows).
func (b *Backend) linearChunk(out, x, w, bias *tensor.Tensor, ep tensor.Epilogue, m, k, n int) {
	xa, wa, oa := b.arg(x), b.arg(w), b.arg(out)
	ba, ra := b.optArg(bias), b.optArg(ep.Residual)
	vec := k%4 == 0 && xa.Off%4 == 0 && wa.Off%4 == 0
	wt := b.weightType(w)
	w8 := b.cfg.matmulW8 && vec && wt == weightF16 && k%8 == 0 && wa.Off%8 == 0
	g := b.cfg.linearTile
	switch {
	case ep.GEGLU:
		g = b.cfg.gegluTile
	case w8:
		g = b.cfg.w8Tile
	}
	on := n // output columns
	if ep.GEGLU {
		on = n / 2
	}
	sg := 0
	if vec && b.Subgroup > 0 {
		base := g
		if !ep.GEGLU {
			base = b.cfg.sgLinearTile
		}
		if t, ok := sgTile(base, b.Subgroup, m, on); ok {
			g, sg = t, b.Subgroup
		}
	}
	if sg == 0 {
		g = g.fit(m, on)
	}
	v := denseVariant{
		tile: g, weight: wt, act: ep.Act, bias: bias != nil, res: ep.Residual != nil,
		vec: vec, subgroup: sg, w8: w8, split: ep.Split > 0, geglu: ep.GEGLU,
		vout: on%4 == 0 && oa.Off%4 == 0 && (ep.Residual == nil || ra.Off%4 == 0) && ep.Split%4 == 0,
	}
	tn := ceilDiv(on, g.cols())
	tiles := ceilDiv(m, g.rows()) * tn
	p := linearParams{
		M: uint32(m), N: uint32(on), K: uint32(k),
		TilesN: uint32(tn), Tiles: uint32(tiles),
		XOff: xa.Off, WOff: wa.Off, BOff: ba.Off, ROff: ra.Off, OOff: oa.Off,
		Split: uint32(ep.Split),
	}
	b.run(kernelOf(v), tiles, p, xa, wa, ba, ra, oa)
}

// convParams are conv2d.wgsl's Params.
type convParams struct {
	M      uint32 // output pixels B·OutH·OutW (GEMM rows)
	N      uint32 // output channels O
	C      uint32 // input channels
	TilesN uint32 // workgroup tiles along N
	Tiles  uint32 // workgroup tiles in all
	H      uint32 // stored input rows bound (a band's window, else the height)
	W      uint32 // stored input width
	InH    uint32 // input height as the convolution sees it (2·height when upsampling)
	InW    uint32 // input width likewise
	OutH   uint32 // output rows computed (a band's, else the output height)
	OutW   uint32 // output width
	OY0    uint32 // first output row computed (bands)
	YLo    uint32 // first stored input row bound (bands)
	KH, KW uint32 // kernel height and width
	Stride uint32 // pixels between kernel applications
	Pad    uint32 // zero padding on every side, pixels
	XOff   uint32 // element offset of x in its binding
	WOff   uint32 // element offset of w (in w's elements)
	BOff   uint32 // element offset of bias
	CBOff  uint32 // element offset of the channel bias [B, O]
	ROff   uint32 // element offset of the residual
	OOff   uint32 // element offset of out
	CBStr  uint32 // elements between channel-bias rows
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
// a Linear over the pixels and runs as one. Feature maps larger than a
// storage binding may be (128 MiB by default; a 512×512 VAE decode has
// 256 MiB ones) are convolved in bands of output rows, each binding only the
// input rows it reads.
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
	lim := b.bindLimit()
	if byteSize(w.DType, w.Numel()) > lim {
		b.SetErr(&gpu.LimitError{What: fmt.Sprintf("conv2d weight %v binding", w), Need: byteSize(w.DType, w.Numel()), Have: lim})
		return out
	}
	if b.bindBytes(x) <= lim && b.bindBytes(out) <= lim && (o.Residual == nil || b.bindBytes(o.Residual) <= lim) {
		b.conv(out, x, w, bias, o, g, convBand{batch: -1, rows: g.OutH, yHi: g.H})
		return out
	}
	// Bands: per batch entry, as many output rows as keep both the output
	// rows and the input rows they read within a binding — in every band:
	// the first reads fewer input rows than the others (the top padding).
	win := b.windowLimit()
	rows := g.OutH
	for ; rows > 0; rows-- {
		if byteSize(tensor.F32, rows*g.OutW*g.O) <= win && byteSize(tensor.F32, bandInputRows(g, rows)*g.W*g.C) <= win {
			break
		}
	}
	if rows == 0 {
		b.SetErr(&gpu.LimitError{What: fmt.Sprintf("conv2d %v: one output row", x), Need: byteSize(tensor.F32, g.OutW*g.O), Have: win})
		return out
	}
	for bi := 0; bi < g.B; bi++ {
		for oy := 0; oy < g.OutH; oy += rows {
			bd := bandOf(g, oy, min(rows, g.OutH-oy))
			bd.batch = bi
			b.conv(out, x, w, bias, o, g, bd)
		}
	}
	return out
}

// convBand is the part of a convolution one dispatch computes: output rows
// [oy0, oy0+rows) of one batch entry (or of all when batch < 0) from the
// stored input rows [yLo, yHi).
type convBand struct {
	batch     int
	oy0, rows int
	yLo, yHi  int
}

// bandInputRows is the most stored input rows any band of rows output rows
// reads.
func bandInputRows(g tensor.ConvGeom, rows int) int {
	most := 0
	for oy := 0; oy < g.OutH; oy += rows {
		bd := bandOf(g, oy, min(rows, g.OutH-oy))
		most = max(most, bd.yHi-bd.yLo)
	}
	return most
}

// bandOf is the band of output rows [oy0, oy0+rows) with the input rows they read.
func bandOf(g tensor.ConvGeom, oy0, rows int) convBand {
	lo := max(oy0*g.Stride-g.Pad, 0)
	hi := min((oy0+rows-1)*g.Stride-g.Pad+g.KH, g.InH) // exclusive, conv-space rows
	if g.Upsample {
		lo, hi = lo/2, (hi+1)/2
	}
	hi = max(hi, lo+1) // a band all in the padding still binds a row
	return convBand{oy0: oy0, rows: rows, yLo: lo, yHi: min(hi, g.H)}
}

// conv records one conv2d.wgsl dispatch for a band (see convBand).
func (b *Backend) conv(out, x, w, bias *tensor.Tensor, o tensor.ConvOpts, g tensor.ConvGeom, bd convBand) {
	if b.Err() != nil {
		return
	}
	cb, res := o.ChanBias, o.Residual
	nb := g.B
	if bd.batch >= 0 {
		nb = 1
		hw := g.OutW * g.O
		x = b.View(x, (bd.batch*g.H+bd.yLo)*g.W*g.C, 1, bd.yHi-bd.yLo, g.W, g.C)
		out = b.View(out, (bd.batch*g.OutH+bd.oy0)*hw, 1, bd.rows, g.OutW, g.O)
		if res != nil {
			res = b.View(res, (bd.batch*g.OutH+bd.oy0)*hw, 1, bd.rows, g.OutW, g.O)
		}
		if cb != nil {
			cb = b.View(cb, bd.batch*g.CBStride+g.CBCol, 1, g.O)
		}
	}
	xa, wa, oa := b.arg(x), b.arg(w), b.arg(out)
	ba, cba, ra := b.optArg(bias), b.optArg(cb), b.optArg(res)
	if cb != nil && bd.batch < 0 {
		// The whole [B, stride] table is bound; start at the column.
		cba.Off += uint32(g.CBCol)
	}
	vec := g.C%4 == 0 && xa.Off%4 == 0
	wt := b.weightType(w)
	taps := b.cfg.convTaps && vec && g.KH*g.KW == 9 && wt != weightF16N && wa.Off%4 == 0
	t := b.cfg.denseTile
	if taps {
		t = b.cfg.convTapsTile
	}
	m := nb * bd.rows * g.OutW
	sg := 0
	if taps && b.Subgroup > 0 {
		if st, ok := sgTile(t, b.Subgroup, m, g.O); ok {
			t, sg = st, b.Subgroup
		}
	}
	if sg == 0 {
		t = t.fit(m, g.O)
	}
	v := denseVariant{
		conv: true, tile: t, weight: wt, act: o.Act, bias: bias != nil, res: res != nil,
		vec: vec, subgroup: sg, chanBias: cb != nil, upsample: g.Upsample,
		vout: g.O%4 == 0 && oa.Off%4 == 0 && (res == nil || ra.Off%4 == 0),
	}
	if taps {
		v.taps, v.tapsW = g.KH*g.KW, g.KW
	}
	tn := ceilDiv(g.O, t.cols())
	tiles := ceilDiv(m, t.rows()) * tn
	if uint64(m)*uint64(g.O) >= 1<<32 || uint64(x.Numel()) >= 1<<32 {
		b.SetErr(fmt.Errorf("kernels: conv2d %v: tensors past 2³² elements", x))
		return
	}
	p := convParams{
		M: uint32(m), N: uint32(g.O), C: uint32(g.C),
		TilesN: uint32(tn), Tiles: uint32(tiles),
		H: uint32(bd.yHi - bd.yLo), W: uint32(g.W), InH: uint32(g.InH), InW: uint32(g.InW),
		OutH: uint32(bd.rows), OutW: uint32(g.OutW), OY0: uint32(bd.oy0), YLo: uint32(bd.yLo),
		KH: uint32(g.KH), KW: uint32(g.KW), Stride: uint32(g.Stride), Pad: uint32(g.Pad),
		XOff: xa.Off, WOff: wa.Off, BOff: ba.Off, CBOff: cba.Off, ROff: ra.Off, OOff: oa.Off,
		CBStr: uint32(g.CBStride),
	}
	b.run(kernelOf(v), tiles, p, xa, wa, ba, cba, ra, oa)
}

// bindLimit is the largest storage binding a dispatch may use, bytes.
func (b *Backend) bindLimit() uint64 {
	l := b.dev.Limits().MaxStorageBufferBindingSize
	if s := b.cfg.bindLimit; s > 0 && s < l {
		l = s
	}
	return l
}
