// check.go validates op arguments and derives output shapes, so that every
// backend refuses the same inputs with the same messages.
package tensor

import (
	"fmt"
	"slices"
)

// ShapeError is an op called with arguments of the wrong shape or type.
type ShapeError struct {
	Op  string
	Msg string
}

func (e *ShapeError) Error() string { return "tensor: " + e.Op + ": " + e.Msg }

func serr(op, f string, a ...any) error { return &ShapeError{Op: op, Msg: fmt.Sprintf(f, a...)} }

func needF32(op string, ts ...*Tensor) error {
	for _, t := range ts {
		if t != nil && t.DType != F32 {
			return serr(op, "%s must be f32", t)
		}
	}
	return nil
}

func nilArg(op string, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return serr(op, "argument %d is nil", i)
		}
	}
	return nil
}

// LinearDims checks Linear's arguments: rows M, inner K, outputs N.
func LinearDims(x, w, b *Tensor, ep Epilogue) (m, k, n int, err error) {
	const op = "linear"
	if err = nilArg(op, x, w); err != nil {
		return
	}
	if err = needF32(op, x, b, ep.Residual); err != nil {
		return
	}
	if len(w.Shape) != 2 {
		return 0, 0, 0, serr(op, "weight %v must be [out, in]", w)
	}
	n, k = w.Shape[0], w.Shape[1]
	if len(x.Shape) == 0 || x.Dim(-1) != k {
		return 0, 0, 0, serr(op, "input %v does not end in %d (weight %v)", x, k, w)
	}
	m = x.Numel() / k
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != n) {
		return 0, 0, 0, serr(op, "bias %v must be [%d]", b, n)
	}
	outN := n
	switch {
	case ep.Split < 0 || (ep.Split > 0 && n%ep.Split != 0):
		return 0, 0, 0, serr(op, "split %d does not divide %d outputs", ep.Split, n)
	case ep.Split > 0 && (ep.Residual != nil || ep.GEGLU):
		return 0, 0, 0, serr(op, "split takes no residual and no GEGLU")
	case ep.GEGLU && (n%2 != 0 || ep.Act != ActNone):
		return 0, 0, 0, serr(op, "GEGLU needs an even number of outputs (%d) and no activation", n)
	case ep.GEGLU:
		outN = n / 2
	}
	if r := ep.Residual; r != nil && r.Numel() != m*outN {
		return 0, 0, 0, serr(op, "residual %v must have %d×%d elements", r, m, outN)
	}
	return m, k, n, nil
}

// LinearShape is x's shape with the last dim replaced by n.
func LinearShape(x *Tensor, n int) []int {
	s := slices.Clone(x.Shape)
	s[len(s)-1] = n
	return s
}

// LinearOutShape is the shape of Linear's result for n weight rows under
// ep: LinearShape, with ep.Split's slabs in front or GEGLU's halved width.
func LinearOutShape(x *Tensor, n int, ep Epilogue) []int {
	switch {
	case ep.Split > 0:
		s := LinearShape(x, ep.Split)
		return append([]int{n / ep.Split}, s...)
	case ep.GEGLU:
		return LinearShape(x, n/2)
	}
	return LinearShape(x, n)
}

// ConvGeom is the geometry of a Conv2D call.
type ConvGeom struct {
	B, H, W, C     int // input (H, W before any upsampling)
	InH, InW       int // input as the convolution sees it (2× when upsampling)
	O, KH, KW      int
	Stride, Pad    int
	OutH, OutW     int
	Upsample       bool
	HasBias, HasCB bool
	CBStride       int // elements between batch rows of the channel bias
	CBCol          int // first channel-bias column read
}

// ConvDims checks Conv2D's arguments.
func ConvDims(x, w, b *Tensor, o ConvOpts) (g ConvGeom, err error) {
	const op = "conv2d"
	if err = nilArg(op, x, w); err != nil {
		return
	}
	if err = needF32(op, x, b, o.ChanBias, o.Residual); err != nil {
		return
	}
	if len(x.Shape) != 4 {
		return g, serr(op, "input %v must be [B, H, W, C]", x)
	}
	if len(w.Shape) != 4 {
		return g, serr(op, "weight %v must be [out, in, kh, kw]", w)
	}
	g.B, g.H, g.W, g.C = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	g.O, g.KH, g.KW = w.Shape[0], w.Shape[2], w.Shape[3]
	if w.Shape[1] != g.C {
		return g, serr(op, "weight %v expects %d input channels, input %v has %d", w, w.Shape[1], x, g.C)
	}
	g.Stride, g.Pad, g.Upsample = max(o.Stride, 1), o.Pad, o.Upsample
	g.InH, g.InW = g.H, g.W
	if g.Upsample {
		g.InH, g.InW = 2*g.H, 2*g.W
	}
	g.OutH = (g.InH+2*g.Pad-g.KH)/g.Stride + 1
	g.OutW = (g.InW+2*g.Pad-g.KW)/g.Stride + 1
	if g.OutH <= 0 || g.OutW <= 0 {
		return g, serr(op, "input %v too small for a %d×%d kernel", x, g.KH, g.KW)
	}
	if b != nil {
		if len(b.Shape) != 1 || b.Shape[0] != g.O {
			return g, serr(op, "bias %v must be [%d]", b, g.O)
		}
		g.HasBias = true
	}
	if o.Split != 0 || o.GEGLU {
		return g, serr(op, "split and GEGLU are Linear epilogues")
	}
	if cb := o.ChanBias; cb != nil {
		g.CBStride, g.CBCol = g.O, o.ChanBiasCol
		switch {
		case o.ChanBiasCol == 0 && cb.Numel() == g.B*g.O:
		case o.ChanBiasCol >= 0 && len(cb.Shape) == 2 && cb.Shape[0] == g.B && cb.Shape[1] >= o.ChanBiasCol+g.O:
			g.CBStride = cb.Shape[1]
		default:
			return g, serr(op, "channel bias %v must be [%d, %d] (or [%d, ≥ %d] read from column %d)", cb, g.B, g.O, g.B, o.ChanBiasCol+g.O, o.ChanBiasCol)
		}
		g.HasCB = true
	} else if o.ChanBiasCol != 0 {
		return g, serr(op, "channel bias column %d without a channel bias", o.ChanBiasCol)
	}
	if r := o.Residual; r != nil && r.Numel() != g.B*g.OutH*g.OutW*g.O {
		return g, serr(op, "residual %v must be [%d, %d, %d, %d]", r, g.B, g.OutH, g.OutW, g.O)
	}
	return g, nil
}

// NormDims checks GroupNorm / LayerNorm arguments: batch entries, rows per
// entry (spatial positions), channels.
func NormDims(op string, x, gamma, beta *Tensor, groups int) (b, s, c int, err error) {
	if err = nilArg(op, x, gamma, beta); err != nil {
		return
	}
	if err = needF32(op, x, gamma, beta); err != nil {
		return
	}
	if len(x.Shape) < 2 {
		return 0, 0, 0, serr(op, "input %v needs at least 2 dims", x)
	}
	c = x.Dim(-1)
	if gamma.Numel() != c || beta.Numel() != c {
		return 0, 0, 0, serr(op, "gamma %v / beta %v must have %d elements", gamma, beta, c)
	}
	b = x.Shape[0]
	s = x.Numel() / (b * c)
	if groups > 0 && c%groups != 0 {
		return 0, 0, 0, serr(op, "%d channels do not split into %d groups", c, groups)
	}
	return b, s, c, nil
}

// AttnGeom is the geometry of an Attention call.
type AttnGeom struct {
	B, Nq, Nk, H, Dk, Dv int
	C0, C1               int // probability columns
}

// AttnDims checks Attention's arguments.
func AttnDims(q, k, v *Tensor, o AttnOpts) (g AttnGeom, err error) {
	const op = "attention"
	if err = nilArg(op, q, k, v); err != nil {
		return
	}
	if err = needF32(op, q, k, v, o.KeyBias); err != nil {
		return
	}
	if len(q.Shape) != 3 || len(k.Shape) != 3 || len(v.Shape) != 3 {
		return g, serr(op, "q %v, k %v, v %v must be [B, N, H·d]", q, k, v)
	}
	g.B, g.Nq, g.Nk, g.H = q.Shape[0], q.Shape[1], k.Shape[1], o.Heads
	if k.Shape[0] != g.B || v.Shape[0] != g.B || v.Shape[1] != g.Nk {
		return g, serr(op, "q %v, k %v, v %v disagree on batch or keys", q, k, v)
	}
	if g.H <= 0 || q.Shape[2]%g.H != 0 || v.Shape[2]%g.H != 0 || k.Shape[2] != q.Shape[2] {
		return g, serr(op, "widths q %v, k %v, v %v do not split into %d heads", q, k, v, g.H)
	}
	g.Dk, g.Dv = q.Shape[2]/g.H, v.Shape[2]/g.H
	if kb := o.KeyBias; kb != nil && kb.Numel() != g.B*g.Nk {
		return g, serr(op, "key bias %v must be [%d, %d]", kb, g.B, g.Nk)
	}
	g.C0, g.C1 = o.ProbCols[0], o.ProbCols[1]
	if g.C1 > g.C0 && (g.C0 < 0 || g.C1 > g.Nk) {
		return g, serr(op, "probability columns [%d, %d) outside %d keys", g.C0, g.C1, g.Nk)
	}
	if s := o.Swap; s != nil {
		if len(s.Partner) != g.B {
			return g, serr(op, "swap partners %v must list %d batch entries", s.Partner, g.B)
		}
		for b, p := range s.Partner {
			if p >= g.B || p == b {
				return g, serr(op, "swap partner %d of entry %d is invalid", p, b)
			}
		}
		if s.RowMask == nil || s.RowMask.Numel() != g.B*g.Nq {
			return g, serr(op, "swap row mask %v must be [%d, %d]", s.RowMask, g.B, g.Nq)
		}
		switch s.Mode {
		case SwapKV:
			if s.KeyMask == nil || s.KeyMask.Numel() != g.B*g.Nk {
				return g, serr(op, "swap key mask %v must be [%d, %d]", s.KeyMask, g.B, g.Nk)
			}
			if g.Nq != g.Nk {
				return g, serr(op, "swap needs self-attention (Nq %d ≠ Nk %d)", g.Nq, g.Nk)
			}
		case SwapMap:
			if g.Nq != g.Nk {
				return g, serr(op, "swap needs self-attention (Nq %d ≠ Nk %d)", g.Nq, g.Nk)
			}
		default:
			return g, serr(op, "unknown swap mode %d", s.Mode)
		}
	}
	return g, nil
}

// BroadcastStrides checks that b broadcasts to a's shape and returns, per
// dim of a, b's element stride (0 where b is broadcast).
func BroadcastStrides(op string, a, b *Tensor) ([]int, error) {
	if err := nilArg(op, a, b); err != nil {
		return nil, err
	}
	if err := needF32(op, a, b); err != nil {
		return nil, err
	}
	if len(b.Shape) > len(a.Shape) {
		return nil, serr(op, "%v does not broadcast to %v", b, a)
	}
	st := make([]int, len(a.Shape))
	s := 1
	for i := len(a.Shape) - 1; i >= 0; i-- {
		j := i - (len(a.Shape) - len(b.Shape))
		if j < 0 {
			continue
		}
		switch b.Shape[j] {
		case a.Shape[i]:
			st[i] = s
		case 1:
			st[i] = 0
		default:
			return nil, serr(op, "%v does not broadcast to %v", b, a)
		}
		s *= b.Shape[j]
	}
	return st, nil
}

// ConcatDims checks Concat's arguments: outer (product of dims before axis),
// per-part axis sizes times inner, inner (product after axis). Parts are f32,
// or all f16 joined along axis 0 (the result is then f16).
func ConcatDims(axis int, parts []*Tensor) (shape []int, outer, inner int, err error) {
	const op = "concat"
	if len(parts) == 0 {
		return nil, 0, 0, serr(op, "no parts")
	}
	if err = nilArg(op, parts...); err != nil {
		return
	}
	r := len(parts[0].Shape)
	if axis < 0 {
		axis += r
	}
	// F16 parts (weights fused at load) join along axis 0 only: the result
	// is their bytes end to end.
	if parts[0].DType == F16 && axis == 0 {
		for _, p := range parts {
			if p.DType != F16 {
				return nil, 0, 0, serr(op, "%v mixes with f16 parts", p)
			}
		}
	} else if err = needF32(op, parts...); err != nil {
		return
	}
	if axis < 0 || axis >= r {
		return nil, 0, 0, serr(op, "axis %d out of range for %v", axis, parts[0])
	}
	shape = slices.Clone(parts[0].Shape)
	shape[axis] = 0
	for _, p := range parts {
		if len(p.Shape) != r {
			return nil, 0, 0, serr(op, "rank of %v differs from %v", p, parts[0])
		}
		for i := range r {
			if i != axis && p.Shape[i] != parts[0].Shape[i] {
				return nil, 0, 0, serr(op, "%v and %v differ off axis %d", p, parts[0], axis)
			}
		}
		shape[axis] += p.Shape[axis]
	}
	outer, inner = Numel(shape[:axis]), Numel(shape[axis+1:])
	return shape, outer, inner, nil
}

// SliceDims checks Slice's arguments.
func SliceDims(x *Tensor, axis, start, end int) (shape []int, outer, inner int, err error) {
	const op = "slice"
	if err = nilArg(op, x); err != nil {
		return
	}
	if err = needF32(op, x); err != nil {
		return
	}
	r := len(x.Shape)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r || start < 0 || end > x.Shape[axis] || start >= end {
		return nil, 0, 0, serr(op, "[%d:%d] on axis %d of %v", start, end, axis, x)
	}
	shape = slices.Clone(x.Shape)
	shape[axis] = end - start
	return shape, Numel(x.Shape[:axis]), Numel(x.Shape[axis+1:]), nil
}

// ViewCheck validates a view of numel(shape) elements at offset into t.
func ViewCheck(t *Tensor, offset int, shape []int) error {
	if t == nil {
		return serr("view", "nil tensor")
	}
	if offset < 0 || offset+Numel(shape) > t.Numel() {
		return serr("view", "%v at offset %d outside %v", shape, offset, t)
	}
	return nil
}

// LocalMixDims checks LocalMix's arguments: batch entries B, rows N, heads
// H and head width D.
func LocalMixDims(o, x, gate *Tensor, w []float32) (b, n, h, d int, err error) {
	const op = "local mix"
	if err = nilArg(op, o, x, gate); err != nil {
		return
	}
	if err = needF32(op, o, x, gate); err != nil {
		return
	}
	if len(o.Shape) != 3 || len(x.Shape) != 3 || len(gate.Shape) != 3 {
		return 0, 0, 0, 0, serr(op, "o %v, x %v and gate %v must be [B, N, ·]", o, x, gate)
	}
	b, n, h = o.Shape[0], o.Shape[1], gate.Shape[2]
	if x.Shape[0] != b || x.Shape[1] != n || x.Shape[2] != o.Shape[2] {
		return 0, 0, 0, 0, serr(op, "x %v must have o's shape %v", x, o.Shape)
	}
	if gate.Shape[0] != b || gate.Shape[1] != n || h == 0 || o.Shape[2]%h != 0 {
		return 0, 0, 0, 0, serr(op, "gate %v must be [%d, %d, H] with H dividing %d", gate, b, n, o.Shape[2])
	}
	if len(w) != b {
		return 0, 0, 0, 0, serr(op, "%d weights for %d batch entries", len(w), b)
	}
	return b, n, h, o.Shape[2] / h, nil
}
