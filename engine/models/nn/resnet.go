// resnet.go: diffusers' ResnetBlock2D, the block of the UNet (GroupNorm 32,
// eps 1e-5) and, without the time embedding, of the VAE (eps 1e-6).
package nn

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
	Norm1, Norm2 GroupNorm
	Conv1, Conv2 Conv2d
	// Temb is time_emb_proj; nil without a time embedding (VAE). TembName
	// is its full state-dict name, for a model that joins every block's
	// projection into one (then TembCol is this block's first column).
	Temb     *Linear
	TembName string
	TembCol  int
	Out      int     // output channels
	Shortcut *Linear // 1×1 conv_shortcut as a Linear over channels; nil when Cin = Cout
	OutScale float32 // output_scale_factor
}

// ResnetSpec sizes a Resnet.
type ResnetSpec struct {
	In, Out  int     // channels
	TembDim  int     // time embedding width; 0 for none
	Groups   int     // GroupNorm groups (both norms)
	Eps      float32 // GroupNorm eps
	OutScale float32 // output_scale_factor (1 almost everywhere)
}

// LoadResnet reads the block's weights below v.
func LoadResnet(v *Vars, s ResnetSpec) *Resnet {
	r := &Resnet{
		Norm1:    LoadGroupNorm(v, "norm1", s.In, s.Groups, s.Eps),
		Conv1:    LoadConv2d(v, "conv1", s.Out, s.In, 3, true),
		Norm2:    LoadGroupNorm(v, "norm2", s.Out, s.Groups, s.Eps),
		Conv2:    LoadConv2d(v, "conv2", s.Out, s.Out, 3, true),
		OutScale: s.OutScale,
		Out:      s.Out,
	}
	if s.TembDim > 0 {
		l := LoadLinear(v, "time_emb_proj", s.Out, s.TembDim, true)
		r.Temb = &l
		r.TembName = v.Path("time_emb_proj")
	}
	if s.In != s.Out {
		l := LoadPointwise(v, "conv_shortcut", s.Out, s.In)
		r.Shortcut = &l
	}
	return r
}

// Forward runs the block on x [B, H, W, Cin]. tembAct is SiLU(emb) [B, D]
// (nil without a time embedding); with tembAll (a joint projection of
// tembAct for every block, [B, ΣCout]) conv1 reads this block's columns of
// it instead of projecting tembAct itself.
func (r *Resnet) Forward(b tensor.Backend, x, tembAct, tembAll *tensor.Tensor) *tensor.Tensor {
	h := r.Norm1.Forward(b, x, true)
	var cb *tensor.Tensor
	o := tensor.ConvOpts{}
	switch {
	case r.Temb != nil && tembAll != nil:
		o.ChanBias, o.ChanBiasCol = tembAll, r.TembCol
	case r.Temb != nil && tembAct != nil:
		cb = r.Temb.Forward(b, tembAct, tensor.Epilogue{})
		o.ChanBias = cb
	}
	h1 := r.Conv1.Forward(b, h, o)
	b.Free(h, cb)
	h = r.Norm2.Forward(b, h1, true)
	b.Free(h1)
	res := x
	if r.Shortcut != nil {
		res = r.Shortcut.Forward(b, x, tensor.Epilogue{})
	}
	out := r.Conv2.Forward(b, h, tensor.ConvOpts{Epilogue: tensor.Epilogue{Residual: res}})
	b.Free(h)
	if res != x {
		b.Free(res)
	}
	if r.OutScale != 1 {
		s := b.Scale(out, 1/r.OutScale, 0)
		b.Free(out)
		out = s
	}
	return out
}
