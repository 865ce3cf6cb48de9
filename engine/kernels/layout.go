// layout.go: data movement on the GPU: nearest 2× upsampling,
// concat, slice, embedding gather and f32 ↔ f16 conversion, kernels in
// shaders/layout.wgsl. References: cpu.Backend.Upsample2x, Concat, Slice,
// Embedding, Convert.
package kernels

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/x448/float16"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

// copyParams is COPY's Params.
type copyParams struct {
	N         uint32 // elements per row
	Total     uint32 // elements to copy: rows·N
	SrcOff    uint32 // elements: first source element within its binding
	SrcStride uint32 // elements between source rows
	DstOff    uint32 // elements: first destination element within its binding
	DstStride uint32 // elements between destination rows
	_         [2]uint32
}

// upsampleParams is UPSAMPLE's Params.
type upsampleParams struct {
	N      uint32 // output elements
	C      uint32 // channels
	H      uint32 // input height
	W      uint32 // input width
	XOff   uint32 // elements: x within its binding
	OutOff uint32 // elements: out within its binding
	_      [2]uint32
}

// embedParams is EMBED's Params.
type embedParams struct {
	N      uint32 // output elements: len(ids)·D
	D      uint32 // row width
	TOff   uint32 // elements (halves for F16): the table within its binding
	IDsOff uint32 // elements: the ids within their binding
	OutOff uint32 // elements: out within its binding
	V0     uint32 // first table row within the binding
	VN     uint32 // table rows within the binding
	_      uint32
}

// convertParams is CONVERT's Params.
type convertParams struct {
	N      uint32 // elements
	XOff   uint32 // elements (halves for f16): x within its binding
	OutOff uint32 // elements, or u32 words for f16 output: out within its binding
	_      uint32
}

// concat2Params is CONCAT2's Params.
type concat2Params struct {
	N1     uint32 // elements per row from the first part
	N2     uint32 // elements per row from the second part
	Total  uint32 // output elements
	AOff   uint32 // elements: the first part within its binding
	BOff   uint32 // elements: the second part within its binding
	DstOff uint32 // elements: the output within its binding
	_      [2]uint32
}

var (
	kConcat2  = gpu.Kernel{Shader: "layout.wgsl", Entry: "concat2", Defines: shaders.Defines("CONCAT2", "1")}
	kCopy     = gpu.Kernel{Shader: "layout.wgsl", Entry: "copy_rows", Defines: shaders.Defines("COPY", "1")}
	kUpsample = gpu.Kernel{Shader: "layout.wgsl", Entry: "upsample2x", Defines: shaders.Defines("UPSAMPLE", "1")}
)

// flag is a 0/1 define value.
func flag(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

// embedVariant is one compiled form of EMBED.
type embedVariant struct {
	f16 bool // the table holds f16 (F16=1), else f32
}

func (v embedVariant) build() gpu.Kernel {
	return gpu.Kernel{Shader: "layout.wgsl", Entry: "embedding", Defines: shaders.Defines("EMBED", "1", "F16", flag(v.f16))}
}

// convertVariant is one compiled form of CONVERT.
type convertVariant struct {
	src16, dst16 bool // source, destination f16 (SRC16, DST16), else f32
}

func (v convertVariant) build() gpu.Kernel {
	return gpu.Kernel{Shader: "layout.wgsl", Entry: "convert", Defines: shaders.Defines("CONVERT", "1", "SRC16", flag(v.src16), "DST16", flag(v.dst16))}
}

// copyRows records dst[r·dstStride + j] = src[r·srcStride + j] for r < rows,
// j < n, offsets in elements from each tensor's first element.
func (b *Backend) copyRows(src, dst *tensor.Tensor, rows, n, srcOff, srcStride, dstOff, dstStride int) {
	if rows*n == 0 {
		return
	}
	sa, da := b.arg(src), b.arg(dst)
	b.run(kCopy, ceilDiv(rows*n, ewPerGroup), copyParams{
		N: uint32(n), Total: uint32(rows * n),
		SrcOff: sa.Off + uint32(srcOff), SrcStride: uint32(srcStride),
		DstOff: da.Off + uint32(dstOff), DstStride: uint32(dstStride),
	}, sa, da)
}

// Upsample2x implements tensor.Backend; reference cpu.Backend.Upsample2x:
// out[b, y, x, c] = in[b, y/2, x/2, c].
func (b *Backend) Upsample2x(x *tensor.Tensor) *tensor.Tensor {
	if x == nil || x.DType != tensor.F32 || len(x.Shape) != 4 {
		b.SetErr(&tensor.ShapeError{Op: "upsample2x", Msg: fmt.Sprintf("input %v must be f32 [B, H, W, C]", x)})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	nb, h, w, c := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := b.out("upsample2x", nb, 2*h, 2*w, c)
	n := out.Numel()
	if n == 0 {
		return out
	}
	xa, oa := b.arg(x), b.arg(out)
	b.run(kUpsample, ceilDiv(n, ewPerGroup), upsampleParams{
		N: uint32(n), C: uint32(c), H: uint32(h), W: uint32(w), XOff: xa.Off, OutOff: oa.Off,
	}, xa, oa)
	return out
}

// Concat implements tensor.Backend; reference cpu.Backend.Concat. Two parts
// (the UNet's skips) take one CONCAT2 dispatch; more take one row copy per
// part into its columns of the output (each part is its own binding, so any
// number of parts fits the binding limit).
func (b *Backend) Concat(axis int, parts ...*tensor.Tensor) *tensor.Tensor {
	shape, outer, inner, err := tensor.ConcatDims(axis, parts)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	if parts[0].DType == tensor.F16 {
		return b.concatF16(shape, parts)
	}
	if axis < 0 {
		axis += len(shape)
	}
	out := b.out("concat", shape...)
	row := shape[axis] * inner
	if len(parts) == 2 && row > 0 {
		n1 := parts[0].Shape[axis] * inner
		pa, qa, oa := b.arg(parts[0]), b.arg(parts[1]), b.arg(out)
		b.run(kConcat2, ceilDiv(outer*row, ewPerGroup), concat2Params{
			N1: uint32(n1), N2: uint32(row - n1), Total: uint32(outer * row),
			AOff: pa.Off, BOff: qa.Off, DstOff: oa.Off,
		}, pa, qa, oa)
		return out
	}
	pos := 0
	for _, p := range parts {
		n := p.Shape[axis] * inner
		b.copyRows(p, out, outer, n, 0, n, pos, row)
		pos += n
	}
	return out
}

// concatF16 joins f16 weights end to end (axis 0) into an exactly sized
// buffer: one word copy per part, or, where a part or its place starts or
// ends inside a word, through the host (never the case for whole weights).
func (b *Backend) concatF16(shape []int, parts []*tensor.Tensor) *tensor.Tensor {
	out := b.alloc("concat", tensor.F16, shape, true)
	oa := b.arg(out)
	aligned := oa.Off%2 == 0
	for _, p := range parts {
		aligned = aligned && p.Numel()%2 == 0 && b.arg(p).Off%2 == 0
	}
	if !aligned {
		raw := make([]byte, 0, 2*out.Numel())
		for _, p := range parts {
			v, err := b.Read(context.Background(), p)
			if err != nil {
				return out
			}
			for _, f := range v {
				raw = binary.LittleEndian.AppendUint16(raw, float16.Fromfloat32(f).Bits())
			}
		}
		b.Upload(out, 0, raw)
		return out
	}
	pos := 0 // words
	for _, p := range parts {
		pa, n := b.arg(p), p.Numel()/2
		if n > 0 {
			b.run(kCopy, ceilDiv(n, ewPerGroup), copyParams{
				N: uint32(n), Total: uint32(n), SrcOff: pa.Off / 2, SrcStride: uint32(n),
				DstOff: oa.Off/2 + uint32(pos), DstStride: uint32(n),
			}, pa, oa)
		}
		pos += n
	}
	return out
}

// Slice implements tensor.Backend; reference cpu.Backend.Slice: a copy of
// [start, end) along axis.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) *tensor.Tensor {
	shape, outer, inner, err := tensor.SliceDims(x, axis, start, end)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	if axis < 0 {
		axis += len(x.Shape)
	}
	out := b.out("slice", shape...)
	n := (end - start) * inner
	b.copyRows(x, out, outer, n, start*inner, x.Shape[axis]*inner, 0, n)
	return out
}

// Embedding implements tensor.Backend; reference cpu.Backend.Embedding:
// out[i] = table[ids[i]] for a [V, D] table of F32 or F16. The ids travel in
// a small buffer of their own, checked against V here.
func (b *Backend) Embedding(table *tensor.Tensor, ids []int32) *tensor.Tensor {
	const op = "embedding"
	if table == nil || len(table.Shape) != 2 {
		b.SetErr(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf("table %v must be [V, D]", table)})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	v, d := table.Shape[0], table.Shape[1]
	raw := make([]byte, 4*len(ids))
	for i, id := range ids {
		if id < 0 || int(id) >= v {
			b.SetErr(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf("id %d outside table %v", id, table)})
			return b.placeholder([]int{1})
		}
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(id))
	}
	out := b.out(op, len(ids), d)
	n := out.Numel()
	if n == 0 {
		return out
	}
	k := kernelOf(embedVariant{f16: table.DType == tensor.F16})
	// A table larger than a binding (CLIP's token table in f32 is 152 MB;
	// WebGPU's default limit is 128 MiB) is bound a window of rows at a
	// time; each dispatch writes the output rows whose ids fall in its
	// window, and windows no id falls in are skipped. An output larger
	// than a binding is written a chunk of ids at a time.
	rows, chunk := v, len(ids)
	if b.bindBytes(table) > b.bindLimit() || byteSize(tensor.F32, n) > b.bindLimit() {
		win := b.windowLimit()
		rows, chunk = int(win/uint64(d*table.DType.Size())), int(win/uint64(4*d))
		if rows == 0 || chunk == 0 {
			b.SetErr(&gpu.LimitError{What: fmt.Sprintf("embedding %v: one row", table), Need: uint64(4 * d), Have: b.bindLimit()})
			return out
		}
	}
	idt := b.scratch(op+".ids", len(ids))
	defer b.Free(idt)
	b.Upload(idt, 0, raw)
	for c0 := 0; c0 < len(ids); c0 += chunk {
		cn := min(chunk, len(ids)-c0)
		part := ids[c0 : c0+cn]
		ia, oa := b.arg(b.View(idt, c0, cn)), b.arg(b.View(out, c0*d, cn, d))
		for v0 := 0; v0 < v; v0 += rows {
			vn := min(rows, v-v0)
			if !slices.ContainsFunc(part, func(id int32) bool { return int(id) >= v0 && int(id) < v0+vn }) {
				continue
			}
			ta := b.arg(table)
			if vn < v {
				ta = b.arg(b.View(table, v0*d, vn, d))
			}
			b.run(k, ceilDiv(cn*d, ewPerGroup), embedParams{
				N: uint32(cn * d), D: uint32(d), TOff: ta.Off, IDsOff: ia.Off, OutOff: oa.Off, V0: uint32(v0), VN: uint32(vn),
			}, ta, ia, oa)
		}
	}
	return out
}

// Convert implements tensor.Backend; reference cpu.Backend.Convert: f32 →
// f16 rounds to nearest even (overflow to ±inf), f16 → f32 is exact, equal
// types copy.
func (b *Backend) Convert(x *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	if x == nil {
		b.SetErr(&tensor.ShapeError{Op: "convert", Msg: "argument 0 is nil"})
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out := b.New("convert", dt, x.Shape...)
	n := x.Numel()
	if n == 0 {
		return out
	}
	// A tensor larger than a binding goes a window of elements at a time
	// (an even number, so that f16 output windows start on a word).
	step := n
	if b.bindBytes(x) > b.bindLimit() || b.bindBytes(out) > b.bindLimit() {
		step = int(b.windowLimit()/4) &^ 1
	}
	for i0 := 0; i0 < n; i0 += max(step, 2) {
		k := min(step, n-i0)
		xc, oc := x, out
		if k < n {
			xc, oc = b.View(x, i0, k), b.View(out, i0, k)
		}
		xa, oa := b.arg(xc), b.arg(oc)
		p := convertParams{N: uint32(k), XOff: xa.Off, OutOff: oa.Off}
		groups := ceilDiv(k, ewPerGroup)
		if dt == tensor.F16 {
			// A fresh tensor starts on a word; the kernel writes whole words.
			if oa.Off%2 != 0 {
				b.SetErr(fmt.Errorf("kernels: convert: f16 output %v does not start on a word", out))
				return out
			}
			p.OutOff = oa.Off / 2
			groups = ceilDiv(ceilDiv(k, 2), ewPerGroup)
		}
		b.run(kernelOf(convertVariant{src16: x.DType == tensor.F16, dst16: dt == tensor.F16}), groups, p, xa, oa)
	}
	return out
}
