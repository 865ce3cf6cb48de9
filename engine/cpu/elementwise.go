// elementwise.go: reference activations, GEGLU, broadcasting add/mul,
// scale, nearest 2× upsampling, concat, slice, embedding gather, the
// sinusoidal timestep embedding and dtype conversion.
package cpu

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"harmony/engine/tensor"
)

// Activate implements tensor.Backend.
func (b *Backend) Activate(x *tensor.Tensor, a tensor.Act) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 {
		b.SetErr(fmt.Errorf("tensor: activate: input %v must be f32", x))
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out, o := b.out(a.String(), x.Shape...)
	for i, v := range F32(x) {
		o[i] = float32(act(a, float64(v)))
	}
	return out
}

// GEGLU implements tensor.Backend: out[r, j] = x[r, j]·GELU(x[r, F+j]).
func (b *Backend) GEGLU(x *tensor.Tensor) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 || len(x.Shape) == 0 || x.Dim(-1)%2 != 0 {
		b.SetErr(fmt.Errorf("tensor: geglu: input %v must be f32 with an even last dim", x))
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	f := x.Dim(-1) / 2
	shape := append([]int(nil), x.Shape...)
	shape[len(shape)-1] = f
	out, o := b.out("geglu", shape...)
	xv := F32(x)
	rows := x.Numel() / (2 * f)
	for r := 0; r < rows; r++ {
		for j := 0; j < f; j++ {
			o[r*f+j] = float32(float64(xv[r*2*f+j]) * act(tensor.ActGELU, float64(xv[r*2*f+f+j])))
		}
	}
	return out
}

func (b *Backend) binary(op string, a, c *tensor.Tensor, f func(x, y float64) float64) *tensor.Tensor {
	st, err := tensor.BroadcastStrides(op, a, c)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out(op, a.Shape...)
	av, cv := F32(a), F32(c)
	idx := make([]int, len(a.Shape))
	for i := range o {
		// Walk a's index and b's broadcast offset together.
		off := 0
		for d := range idx {
			off += idx[d] * st[d]
		}
		o[i] = float32(f(float64(av[i]), float64(cv[off])))
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < a.Shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// Add implements tensor.Backend.
func (b *Backend) Add(a, c *tensor.Tensor) *tensor.Tensor {
	return b.binary("add", a, c, func(x, y float64) float64 { return x + y })
}

// Mul implements tensor.Backend.
func (b *Backend) Mul(a, c *tensor.Tensor) *tensor.Tensor {
	return b.binary("mul", a, c, func(x, y float64) float64 { return x * y })
}

// Scale implements tensor.Backend: x·s + c.
func (b *Backend) Scale(x *tensor.Tensor, s, c float32) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 {
		b.SetErr(fmt.Errorf("tensor: scale: input %v must be f32", x))
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out, o := b.out("scale", x.Shape...)
	for i, v := range F32(x) {
		o[i] = v*s + c
	}
	return out
}

// Upsample2x implements tensor.Backend: out[b, y, x, c] = in[b, y/2, x/2, c].
func (b *Backend) Upsample2x(x *tensor.Tensor) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 || len(x.Shape) != 4 {
		b.SetErr(fmt.Errorf("tensor: upsample2x: input %v must be f32 [B, H, W, C]", x))
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	nb, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out, o := b.out("upsample2x", nb, 2*h, 2*w, c)
	xv := F32(x)
	for bi := 0; bi < nb; bi++ {
		for y := 0; y < 2*h; y++ {
			for xx := 0; xx < 2*w; xx++ {
				copy(o[((bi*2*h+y)*2*w+xx)*c:][:c], xv[((bi*h+y/2)*w+xx/2)*c:][:c])
			}
		}
	}
	return out
}

// Concat implements tensor.Backend.
func (b *Backend) Concat(axis int, parts ...*tensor.Tensor) *tensor.Tensor {
	shape, outer, inner, err := tensor.ConcatDims(axis, parts)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	if parts[0].DType == tensor.F16 {
		out := b.New("concat", tensor.F16, shape...)
		o := out.Data.(*store).f16
		pos := 0
		for _, p := range parts {
			n := p.Numel()
			copy(o[pos:pos+n], p.Data.(*store).f16[p.Offset:p.Offset+n])
			pos += n
		}
		return out
	}
	out, o := b.out("concat", shape...)
	if axis < 0 {
		axis += len(shape)
	}
	pos := 0
	row := shape[axis] * inner
	for _, p := range parts {
		pv := F32(p)
		n := p.Shape[axis] * inner
		for r := 0; r < outer; r++ {
			copy(o[r*row+pos:][:n], pv[r*n:][:n])
		}
		pos += n
	}
	return out
}

// Slice implements tensor.Backend.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) *tensor.Tensor {
	shape, outer, inner, err := tensor.SliceDims(x, axis, start, end)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out("slice", shape...)
	if axis < 0 {
		axis += len(x.Shape)
	}
	xv := F32(x)
	n := (end - start) * inner
	for r := 0; r < outer; r++ {
		copy(o[r*n:][:n], xv[(r*x.Shape[axis]+start)*inner:][:n])
	}
	return out
}

// Embedding implements tensor.Backend.
func (b *Backend) Embedding(table *tensor.Tensor, ids []int32) *tensor.Tensor {
	if table == nil || len(table.Shape) != 2 {
		b.SetErr(fmt.Errorf("tensor: embedding: table %v must be [V, D]", table))
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	v, d := table.Shape[0], table.Shape[1]
	out, o := b.out("embedding", len(ids), d)
	for i, id := range ids {
		if id < 0 || int(id) >= v {
			b.SetErr(fmt.Errorf("tensor: embedding: id %d outside table %v", id, table))
			return out
		}
		row := b.View(table, int(id)*d, d)
		copy(o[i*d:][:d], F32(row))
	}
	return out
}

// TimestepEmbedding implements tensor.Backend (float32 arithmetic, as the
// reference computes it).
func (b *Backend) TimestepEmbedding(ts []float32, dim int, flip bool, shift float32) *tensor.Tensor {
	out, o := b.out("timestep_embedding", len(ts), dim)
	half := dim / 2
	for r, t := range ts {
		for i := 0; i < half; i++ {
			e := float32(-math.Log(10000)) * float32(i) / (float32(half) - shift)
			arg := t * float32(math.Exp(float64(e)))
			s, c := float32(math.Sin(float64(arg))), float32(math.Cos(float64(arg)))
			if flip {
				o[r*dim+i], o[r*dim+half+i] = c, s
			} else {
				o[r*dim+i], o[r*dim+half+i] = s, c
			}
		}
	}
	return out
}

// Convert implements tensor.Backend.
func (b *Backend) Convert(x *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	t := b.New("convert", dt, x.Shape...)
	st := t.Data.(*store)
	v := F32(x)
	if dt == tensor.F16 {
		for i, f := range v {
			st.f16[i] = float16.Fromfloat32(f).Bits()
		}
	} else {
		copy(st.f32, v)
	}
	return t
}
