// localmix.go: reference of LocalMix, the gated per-head term ELITE adds to
// its cross-attention (the local branch weighted by the placeholder's
// attention column over its maximum).
package cpu

import "harmony/engine/tensor"

// LocalMix implements tensor.Backend. The maximum and the products are
// taken in float64, rounded once.
func (b *Backend) LocalMix(o, x, gate *tensor.Tensor, w []float32) *tensor.Tensor {
	nb, n, h, d, err := tensor.LocalMixDims(o, x, gate, w)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, ov := b.out("local_mix", o.Shape...)
	copy(ov, F32(o))
	xv, gv := F32(x), F32(gate)
	for bi := range nb {
		g := gv[bi*n*h : (bi+1)*n*h]
		var gmax float32
		for i, v := range g {
			if i == 0 || v > gmax {
				gmax = v
			}
		}
		if w[bi] == 0 || !(gmax > 0) {
			continue
		}
		s := float64(w[bi]) / float64(gmax)
		for r := range n {
			for hh := range h {
				f := s * float64(g[r*h+hh])
				base := ((bi*n+r)*h + hh) * d
				for c := range d {
					ov[base+c] = float32(float64(ov[base+c]) + f*float64(xv[base+c]))
				}
			}
		}
	}
	return out
}
