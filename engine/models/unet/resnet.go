// resnet.go: ResnetBlock2D (blipdiffusion.md §8.2; the VAE's §9 resnets are
// the same block without the time embedding), shared with engine/models/vae.
package unet

import "harmony/engine/tensor"

// Resnet is a diffusers ResnetBlock2D with resnet_time_scale_shift
// "default" and SiLU:
//
//	h = conv1(SiLU(GN1(x))) + time_emb_proj(SiLU(emb))[:, None, None, :]
//	h = conv2(SiLU(GN2(h)))
//	out = (shortcut(x) + h) / outScale
//
// where shortcut is a 1×1 conv when Cin ≠ Cout and the identity otherwise.
type Resnet struct {
	norm1, norm2 norm
	conv1, conv2 conv
	temb         *linear // time_emb_proj; nil without a time embedding (VAE)
	tembName     string  // full state-dict name of time_emb_proj
	tembCol      int     // first column of this block's projection in the UNet's joint one
	out          int     // output channels
	shortcut     *linear // 1×1 conv_shortcut as a Linear over channels; nil when Cin = Cout
	groups       int     // GroupNorm groups
	eps          float32 // GroupNorm eps
	outScale     float32 // output_scale_factor
}

// ResnetSpec sizes a Resnet.
type ResnetSpec struct {
	In, Out  int     // channels
	TembDim  int     // time embedding width; 0 for none
	Groups   int     // GroupNorm groups (both norms)
	Eps      float32 // GroupNorm eps
	OutScale float32 // output_scale_factor (1 almost everywhere)
}

// LoadResnet reads the block's weights below p.
func LoadResnet(p *Params, s ResnetSpec) *Resnet {
	r := &Resnet{
		norm1:    loadNorm(p, "norm1", s.In),
		conv1:    loadConv(p, "conv1", s.Out, s.In, 3),
		norm2:    loadNorm(p, "norm2", s.Out),
		conv2:    loadConv(p, "conv2", s.Out, s.Out, 3),
		groups:   s.Groups,
		eps:      s.Eps,
		outScale: s.OutScale,
		out:      s.Out,
	}
	if s.TembDim > 0 {
		l := loadLinear(p, "time_emb_proj", s.Out, s.TembDim, true)
		r.temb = &l
		r.tembName = p.prefix + "time_emb_proj"
	}
	if s.In != s.Out {
		l := load1x1(p, "conv_shortcut", s.Out, s.In)
		r.shortcut = &l
	}
	return r
}

// Forward runs the block on x [B, H, W, Cin]; tembAct is SiLU(emb) [B, D]
// (nil without a time embedding). x is not freed.
func (r *Resnet) Forward(b tensor.Backend, x, tembAct *tensor.Tensor) *tensor.Tensor {
	return r.forward(b, x, tembAct, nil)
}

// forward is Forward; with tembAll (the UNet's joint projection of tembAct
// for every block, [B, ΣCout]) conv1 reads this block's columns of it
// instead of projecting tembAct itself.
func (r *Resnet) forward(b tensor.Backend, x, tembAct, tembAll *tensor.Tensor) *tensor.Tensor {
	h := b.GroupNorm(x, r.norm1.g, r.norm1.b, r.groups, r.eps, true)
	var cb *tensor.Tensor
	o := tensor.ConvOpts{}
	switch {
	case r.temb != nil && tembAll != nil:
		o.ChanBias, o.ChanBiasCol = tembAll, r.tembCol
	case r.temb != nil && tembAct != nil:
		cb = r.temb.apply(b, tembAct, tensor.Epilogue{})
		o.ChanBias = cb
	}
	h1 := r.conv1.apply(b, h, o)
	b.Free(h, cb)
	h = b.GroupNorm(h1, r.norm2.g, r.norm2.b, r.groups, r.eps, true)
	b.Free(h1)
	res := x
	if r.shortcut != nil {
		res = r.shortcut.apply(b, x, tensor.Epilogue{})
	}
	out := r.conv2.apply(b, h, tensor.ConvOpts{Epilogue: tensor.Epilogue{Residual: res}})
	b.Free(h)
	if res != x {
		b.Free(res)
	}
	if r.outScale != 1 {
		s := b.Scale(out, 1/r.outScale, 0)
		b.Free(out)
		out = s
	}
	return out
}
