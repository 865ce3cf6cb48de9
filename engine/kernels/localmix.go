// localmix.go: LocalMix on the GPU (shaders/localmix.wgsl): a per-entry
// maximum of the gate, then one elementwise pass. Reference
// cpu.Backend.LocalMix.
package kernels

import (
	"harmony/engine/gpu"
	"harmony/engine/tensor"
	"harmony/shaders"
)

type localMaxParams struct {
	B, M, GOff, WOff, SOff uint32
	_                      [3]uint32
}

type localMixParams struct {
	N, D, PerB, OOff, XOff, GOff, SOff, OutOff uint32
}

var (
	kLocalMax = gpu.Kernel{Shader: "localmix.wgsl", Entry: "rowmax", Defines: shaders.Defines("ROWMAX", "1")}
	kLocalMix = gpu.Kernel{Shader: "localmix.wgsl", Entry: "mix", Defines: shaders.Defines("MIX", "1")}
)

// LocalMix implements tensor.Backend; reference cpu.Backend.LocalMix.
func (b *Backend) LocalMix(o, x, gate *tensor.Tensor, w []float32) *tensor.Tensor {
	nb, n, h, d, err := tensor.LocalMixDims(o, x, gate, w)
	if err != nil {
		b.SetErr(err)
	}
	if b.Err() != nil {
		return b.placeholder([]int{1})
	}
	out := b.out("local_mix", o.Shape...)
	total := o.Numel()
	if total == 0 {
		return out
	}
	wt := b.FromF32("local_mix.w", w, nb)
	s := b.New("local_mix.scale", tensor.F32, nb)
	defer b.Free(wt, s)
	ga, wa, sa := b.arg(gate), b.arg(wt), b.arg(s)
	b.run(kLocalMax, nb, localMaxParams{B: uint32(nb), M: uint32(n * h), GOff: ga.Off, WOff: wa.Off, SOff: sa.Off}, ga, wa, sa)
	oa, xa, outa := b.arg(o), b.arg(x), b.arg(out)
	b.run(kLocalMix, ceilDiv(total, ewPerGroup), localMixParams{
		N: uint32(total), D: uint32(d), PerB: uint32(n * h * d),
		OOff: oa.Off, XOff: xa.Off, GOff: ga.Off, SOff: sa.Off, OutOff: outa.Off,
	}, oa, xa, ga, sa, outa)
	return out
}
