// norm.go: reference GroupNorm (optionally followed by SiLU) and LayerNorm,
// with two-pass float64 statistics and the biased variance PyTorch uses.
package cpu

import (
	"math"

	"harmony/engine/tensor"
)

// GroupNorm implements tensor.Backend. For batch entry b and group g over
// its S positions and C/G channels:
//
//	y = (x − mean)/√(var + eps)·gamma[c] + beta[c], then SiLU if silu.
func (b *Backend) GroupNorm(x, gamma, beta *tensor.Tensor, groups int, eps float32, silu bool) *tensor.Tensor {
	nb, s, c, err := tensor.NormDims("group_norm", x, gamma, beta, groups)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out("group_norm", x.Shape...)
	xv, gv, bv := F32(x), F32(gamma), F32(beta)
	cg := c / groups
	parallel(nb*groups, func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			bi, g := bg/groups, bg%groups
			base := bi * s * c
			var sum float64
			for p := 0; p < s; p++ {
				for j := 0; j < cg; j++ {
					sum += float64(xv[base+p*c+g*cg+j])
				}
			}
			n := float64(s * cg)
			mean := sum / n
			var vs float64
			for p := 0; p < s; p++ {
				for j := 0; j < cg; j++ {
					d := float64(xv[base+p*c+g*cg+j]) - mean
					vs += d * d
				}
			}
			inv := 1 / math.Sqrt(vs/n+float64(eps))
			for p := 0; p < s; p++ {
				for j := 0; j < cg; j++ {
					ch := g*cg + j
					i := base + p*c + ch
					y := (float64(xv[i])-mean)*inv*float64(gv[ch]) + float64(bv[ch])
					if silu {
						y = act(tensor.ActSiLU, y)
					}
					o[i] = float32(y)
				}
			}
		}
	})
	return out
}

// LayerNorm implements tensor.Backend: per row of the last dimension,
// y = (x − mean)/√(var + eps)·gamma + beta.
func (b *Backend) LayerNorm(x, gamma, beta *tensor.Tensor, eps float32) *tensor.Tensor {
	_, _, c, err := tensor.NormDims("layer_norm", x, gamma, beta, 0)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out("layer_norm", x.Shape...)
	xv, gv, bv := F32(x), F32(gamma), F32(beta)
	rows := x.Numel() / c
	parallel(rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xv[r*c : (r+1)*c]
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			mean := sum / float64(c)
			var vs float64
			for _, v := range row {
				d := float64(v) - mean
				vs += d * d
			}
			inv := 1 / math.Sqrt(vs/float64(c)+float64(eps))
			for j, v := range row {
				o[r*c+j] = float32((float64(v)-mean)*inv*float64(gv[j]) + float64(bv[j]))
			}
		}
	})
	return out
}
