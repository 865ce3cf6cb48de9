// attention.go: reference multi-head attention with causal and additive key
// masks, head-averaged probabilities for a column range, and the Harmony
// self-attention swap. One query row's scores at a time, softmax in float64.
package cpu

import (
	"math"

	"harmony/engine/tensor"
)

// Attention implements tensor.Backend. For entry b, head h, query i:
//
//	s_j = scale·q[b,i,h]·k[b,j,h] + keyBias[b,j]   (j ≤ i when causal)
//	p = softmax(s);  out[b,i,h] = Σ_j p_j·v[b,j,h]
//	probs[b,i,c] = mean_h p_{c0+c}
//
// with the swap substitutions documented on tensor.Swap.
func (b *Backend) Attention(q, k, v *tensor.Tensor, o tensor.AttnOpts) (*tensor.Tensor, *tensor.Tensor) {
	g, err := tensor.AttnDims(q, k, v, o)
	if b.failed(err) {
		return b.placeholder([]int{1}), nil
	}
	out, ov := b.out("attention", g.B, g.Nq, g.H*g.Dv)
	var probs *tensor.Tensor
	var pv []float32
	nc := g.C1 - g.C0
	if nc > 0 {
		probs, pv = b.out("attention.probs", g.B, g.Nq, nc)
	}
	qv, kv, vv := F32(q), F32(k), F32(v)
	var kb, rowMask, keyMask []float32
	if o.KeyBias != nil {
		kb = F32(o.KeyBias)
	}
	sw := o.Swap
	if sw != nil {
		rowMask = F32(sw.RowMask)
		if sw.KeyMask != nil {
			keyMask = F32(sw.KeyMask)
		}
	}
	dq, dv := g.H*g.Dk, g.H*g.Dv
	parallel(g.B*g.Nq, func(lo, hi int) {
		s := make([]float64, g.Nk)
		pacc := make([]float64, max(nc, 0))
		for r := lo; r < hi; r++ {
			clear(pacc)
			bi, i := r/g.Nq, r%g.Nq
			qb, kb2, vb := bi, bi, bi // batch entries supplying q, k/bias, v
			var km []float32          // key restriction
			if sw != nil && sw.Partner[bi] >= 0 && rowMask[bi*g.Nq+i] != 0 {
				p := sw.Partner[bi]
				switch sw.Mode {
				case tensor.SwapKV:
					kb2, vb = p, p
					km = keyMask[p*g.Nk : (p+1)*g.Nk]
				case tensor.SwapMap:
					qb, kb2 = p, p
				}
			}
			for h := 0; h < g.H; h++ {
				qr := qv[(qb*g.Nq+i)*dq+h*g.Dk:][:g.Dk]
				mx := math.Inf(-1)
				for j := 0; j < g.Nk; j++ {
					if (o.Causal && j > i) || (km != nil && km[j] == 0) {
						s[j] = math.Inf(-1)
						continue
					}
					kr := kv[(kb2*g.Nk+j)*dq+h*g.Dk:][:g.Dk]
					var d float64
					for t := range qr {
						d += float64(qr[t]) * float64(kr[t])
					}
					d *= float64(o.Scale)
					if kb != nil {
						d += float64(kb[kb2*g.Nk+j])
					}
					s[j] = d
					mx = math.Max(mx, d)
				}
				var sum float64
				for j := range s {
					if math.IsInf(s[j], -1) {
						s[j] = 0
						continue
					}
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					s[j] /= sum
				}
				orow := ov[(bi*g.Nq+i)*dv+h*g.Dv:][:g.Dv]
				for t := range orow {
					var acc float64
					for j := 0; j < g.Nk; j++ {
						if s[j] != 0 {
							acc += s[j] * float64(vv[(vb*g.Nk+j)*dv+h*g.Dv+t])
						}
					}
					orow[t] = float32(acc)
				}
				for c := range pacc {
					pacc[c] += s[g.C0+c]
				}
			}
			if pv != nil {
				prow := pv[(bi*g.Nq+i)*nc:][:nc]
				for c := range prow {
					prow[c] = float32(pacc[c] / float64(g.H))
				}
			}
		}
	})
	return out, probs
}
