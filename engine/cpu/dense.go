// dense.go: the reference Linear and Conv2D (direct convolution over NHWC
// with PyTorch [out, in, kh, kw] weights), with the fused epilogues.
package cpu

import (
	"harmony/engine/tensor"
)

// Linear implements tensor.Backend:
//
//	out[m, n] = Act(Σ_k x[m, k]·w[n, k] + b[n]) + residual[m, n]
//
// stored at out[n/Split, m, n%Split] with ep.Split, and with ep.GEGLU
//
//	out[m, j] = (acc[m, j] + b[j])·GELU(acc[m, F+j] + b[F+j]) + residual[m, j]
func (b *Backend) Linear(x, w, bias *tensor.Tensor, ep tensor.Epilogue) *tensor.Tensor {
	m, k, n, err := tensor.LinearDims(x, w, bias, ep)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out("linear", tensor.LinearOutShape(x, n, ep)...)
	xv, wv := F32(x), F32(w)
	var bv, rv []float32
	if bias != nil {
		bv = F32(bias)
	}
	if ep.Residual != nil {
		rv = F32(ep.Residual)
	}
	dot := func(xr []float32, j int) float64 {
		wr := wv[j*k : (j+1)*k]
		var s float64
		for t, xx := range xr {
			s += float64(xx) * float64(wr[t])
		}
		if bv != nil {
			s += float64(bv[j])
		}
		return s
	}
	outN := n
	if ep.GEGLU {
		outN = n / 2
	}
	parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr := xv[i*k : (i+1)*k]
			for j := 0; j < outN; j++ {
				var s float64
				if ep.GEGLU {
					s = dot(xr, j) * act(tensor.ActGELU, dot(xr, outN+j))
				} else {
					s = act(ep.Act, dot(xr, j))
				}
				if rv != nil {
					s += float64(rv[i*outN+j])
				}
				idx := i*outN + j
				if ep.Split > 0 {
					idx = (j/ep.Split)*m*ep.Split + i*ep.Split + j%ep.Split
				}
				o[idx] = float32(s)
			}
		}
	})
	return out
}

// Conv2D implements tensor.Backend. For output (b, oy, ox, o):
//
//	acc = Σ_{c,ky,kx} in(b, oy·s+ky−p, ox·s+kx−p, c)·w[o, c, ky, kx]
//	out = Act(acc + bias[o] + chanBias[b, o]) + residual
//
// where in() is zero outside the (possibly 2×-upsampled) input.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, opt tensor.ConvOpts) *tensor.Tensor {
	g, err := tensor.ConvDims(x, w, bias, opt)
	if b.failed(err) {
		return b.placeholder([]int{1})
	}
	out, o := b.out("conv2d", g.B, g.OutH, g.OutW, g.O)
	xv, wv := F32(x), F32(w)
	var bv, cb, rv []float32
	if bias != nil {
		bv = F32(bias)
	}
	if opt.ChanBias != nil {
		cb = F32(opt.ChanBias)
	}
	if opt.Residual != nil {
		rv = F32(opt.Residual)
	}
	rows := g.B * g.OutH * g.OutW
	parallel(rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			bi := r / (g.OutH * g.OutW)
			oy := r / g.OutW % g.OutH
			ox := r % g.OutW
			for oc := 0; oc < g.O; oc++ {
				var s float64
				for ky := 0; ky < g.KH; ky++ {
					iy := oy*g.Stride + ky - g.Pad
					if iy < 0 || iy >= g.InH {
						continue
					}
					if g.Upsample {
						iy /= 2
					}
					for kx := 0; kx < g.KW; kx++ {
						ix := ox*g.Stride + kx - g.Pad
						if ix < 0 || ix >= g.InW {
							continue
						}
						if g.Upsample {
							ix /= 2
						}
						xr := xv[((bi*g.H+iy)*g.W+ix)*g.C:]
						wb := (oc*g.C*g.KH+ky)*g.KW + kx
						for c := 0; c < g.C; c++ {
							s += float64(xr[c]) * float64(wv[wb+c*g.KH*g.KW])
						}
					}
				}
				if bv != nil {
					s += float64(bv[oc])
				}
				if cb != nil {
					s += float64(cb[bi*g.CBStride+g.CBCol+oc])
				}
				s = act(opt.Act, s)
				if rv != nil {
					s += float64(rv[r*g.O+oc])
				}
				o[r*g.O+oc] = float32(s)
			}
		}
	})
	return out
}
