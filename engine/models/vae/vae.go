// Package vae implements the decoder of diffusers' AutoencoderKL
// (blipdiffusion.md §9) on the tensor.Backend op set, sized from
// config.json: latents / scaling_factor → post_quant_conv → conv_in → mid
// block (resnet, single-head attention, resnet) → up blocks (reversed
// channels, layers_per_block+1 resnets, nearest 2× + conv upsamplers) →
// GroupNorm + SiLU → conv_out. Feature maps are NHWC. The resnet block is
// unet.Resnet without a time embedding.
package vae

import (
	"fmt"
	"math"

	"harmony/engine/models/unet"
	"harmony/engine/tensor"
)

// Trace receives intermediate tensors by module path ("post_quant_conv",
// "decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.0",
// "decoder.conv_norm_out" before its SiLU). The tensor is freed after the
// call returns.
type Trace func(name string, t *tensor.Tensor)

// Decoder is a loaded AutoencoderKL decoder.
type Decoder struct {
	Cfg *Config
	// Trace, when set, receives intermediate tensors; off it costs a nil
	// check per module.
	Trace Trace

	weights   *tensor.Weights
	postQuant *affine // 1×1 post_quant_conv as a Linear over channels; nil when absent
	convIn    conv
	midRes    []*unet.Resnet
	midAttn   *attention // nil without mid_block_add_attention
	up        []upBlock
	normOut   norm
	convOut   conv
}

type upBlock struct {
	resnets []*unet.Resnet
	up      *conv // after nearest 2×; nil for the last block
}

// affine is a Linear: w [out, in], b [out].
type affine struct{ w, b *tensor.Tensor }

type conv struct{ w, b *tensor.Tensor }

type norm struct{ g, b *tensor.Tensor }

// attention is the mid block's single-head self-attention with GroupNorm
// on its input and a residual (diffusers Attention with
// residual_connection, rescale_output_factor 1).
type attention struct {
	norm       norm
	q, k, v, o affine
	scale      float32
}

func getAffine(p *unet.Params, name string, out, in int) *affine {
	return &affine{w: p.Matrix(name+".weight", out, in), b: p.Get(name+".bias", out)}
}

func getConv(p *unet.Params, name string, out, in, k int) conv {
	return conv{w: p.Get(name+".weight", out, in, k, k), b: p.Get(name+".bias", out)}
}

func getNorm(p *unet.Params, name string, c int) norm {
	return norm{g: p.Get(name+".weight", c), b: p.Get(name+".bias", c)}
}

// loadMid reads (or names) a mid block: resnets.0, attentions.0, resnets.1.
func loadMid(p *unet.Params, c *Config) ([]*unet.Resnet, *attention) {
	ch := c.BlockOut[len(c.BlockOut)-1]
	res := []*unet.Resnet{unet.LoadResnet(p.Sub("resnets.0"), c.resnetSpec(ch, ch))}
	var a *attention
	if c.MidAttention {
		ap := p.Sub("attentions.0")
		names := [4]string{"to_q", "to_k", "to_v", "to_out.0"}
		if c.LegacyAttentionNames {
			names = [4]string{"query", "key", "value", "proj_attn"}
		}
		a = &attention{
			norm: getNorm(ap, "group_norm", ch),
			q:    *getAffine(ap, names[0], ch, ch),
			k:    *getAffine(ap, names[1], ch, ch),
			v:    *getAffine(ap, names[2], ch, ch),
			o:    *getAffine(ap, names[3], ch, ch),
			// One head of width ch (attention_head_dim = channels).
			scale: float32(1 / math.Sqrt(float64(ch))),
		}
	}
	res = append(res, unet.LoadResnet(p.Sub("resnets.1"), c.resnetSpec(ch, ch)))
	return res, a
}

// buildDecoder constructs the decoder, reading (or only naming) weights.
func buildDecoder(p *unet.Params, c *Config) *Decoder {
	n := len(c.BlockOut)
	d := &Decoder{Cfg: c}
	if c.UsePostQuantConv {
		l := c.LatentChannels // a 1×1 conv [L, L, 1, 1]: a Linear over channels on NHWC
		d.postQuant = &affine{w: p.Matrix("post_quant_conv.weight", l, l, 1, 1), b: p.Get("post_quant_conv.bias", l)}
	}
	dp := p.Sub("decoder")
	d.convIn = getConv(dp, "conv_in", c.BlockOut[n-1], c.LatentChannels, 3)
	d.midRes, d.midAttn = loadMid(dp.Sub("mid_block"), c)
	out := c.BlockOut[n-1]
	for i := range n {
		prev := out
		out = c.BlockOut[n-1-i]
		bp := dp.Sub("up_blocks." + fmt.Sprint(i))
		var ub upBlock
		for j := range c.LayersPerBlock + 1 {
			in := out
			if j == 0 {
				in = prev
			}
			ub.resnets = append(ub.resnets, unet.LoadResnet(bp.Sub("resnets."+fmt.Sprint(j)), c.resnetSpec(in, out)))
		}
		if i < n-1 {
			cv := getConv(bp, "upsamplers.0.conv", out, out, 3)
			ub.up = &cv
		}
		d.up = append(d.up, ub)
	}
	d.normOut = getNorm(dp, "conv_norm_out", c.BlockOut[0])
	d.convOut = getConv(dp, "conv_out", c.OutChannels, c.BlockOut[0], 3)
	return d
}

// Load builds the decoder from the VAE's weights w, checking every tensor
// of the decoder first (a *tensor.MissingError names the first missing or
// misshapen one). The mid-block attention spelling is taken from w. w stays
// owned by the decoder: Free releases it (encoder tensors included).
func Load(b tensor.Backend, cfg *Config, w *tensor.Weights) (*Decoder, error) {
	c := *cfg
	c.AdaptNames(w.Has)
	p := unet.NewParams(b, w)
	d := buildDecoder(p, &c)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	d.weights = w
	return d, nil
}

// Free releases the weights.
func (d *Decoder) Free(b tensor.Backend) {
	if d.weights != nil {
		d.weights.Free(b)
		d.weights = nil
	}
}

// Decode maps latents [B, h, w, C_latent] (NHWC, as the sampler leaves
// them) to images [B, H, W, C_out] in about [−1, 1]: it divides by
// scaling_factor (and adds shift_factor) first. Errors are recorded on b.
func (d *Decoder) Decode(b tensor.Backend, latents *tensor.Tensor) *tensor.Tensor {
	z := b.Scale(latents, 1/d.Cfg.ScalingFactor, d.Cfg.ShiftFactor)
	out := d.DecodeZ(b, z)
	b.Free(z)
	return out
}

// DecodeZ decodes already-scaled latents z (what diffusers' vae.decode
// takes). Batch entries are decoded one at a time, so activation memory
// does not grow with the batch.
func (d *Decoder) DecodeZ(b tensor.Backend, z *tensor.Tensor) *tensor.Tensor {
	c := d.Cfg
	if z == nil || len(z.Shape) != 4 || z.Shape[3] != c.LatentChannels || z.DType != tensor.F32 {
		b.SetErr(fmt.Errorf("vae: latents %v must be f32 [B, h, w, %d]", z, c.LatentChannels))
		return b.New("vae.failed", tensor.F32, 1, 1, 1, c.OutChannels)
	}
	nb, h, w := z.Shape[0], z.Shape[1], z.Shape[2]
	if nb == 1 {
		return d.decodeOne(b, z)
	}
	per := h * w * c.LatentChannels
	outs := make([]*tensor.Tensor, nb)
	for i := range outs {
		outs[i] = d.decodeOne(b, b.View(z, i*per, 1, h, w, c.LatentChannels))
	}
	out := b.Concat(0, outs...)
	b.Free(outs...)
	return out
}

func (d *Decoder) decodeOne(b tensor.Backend, z *tensor.Tensor) *tensor.Tensor {
	c := d.Cfg
	tr := func(name string, t *tensor.Tensor) {
		if d.Trace != nil {
			d.Trace(name, t)
		}
	}
	x := z
	if d.postQuant != nil {
		x = b.Linear(z, d.postQuant.w, d.postQuant.b, tensor.Epilogue{})
		tr("post_quant_conv", x)
	}
	h := b.Conv2D(x, d.convIn.w, d.convIn.b, tensor.ConvOpts{Pad: 1})
	if x != z {
		b.Free(x)
	}
	tr("decoder.conv_in", h)

	next := d.midRes[0].Forward(b, h, nil)
	b.Free(h)
	h = next
	if d.midAttn != nil {
		next = d.midAttn.forward(b, h, c.NormGroups, z.Shape[1], z.Shape[2], c.BlockOut[len(c.BlockOut)-1])
		b.Free(h)
		h = next
	}
	next = d.midRes[1].Forward(b, h, nil)
	b.Free(h)
	h = next
	tr("decoder.mid_block", h)

	for i, ub := range d.up {
		for _, r := range ub.resnets {
			next = r.Forward(b, h, nil)
			b.Free(h)
			h = next
		}
		if ub.up != nil {
			next = b.Conv2D(h, ub.up.w, ub.up.b, tensor.ConvOpts{Upsample: true, Pad: 1})
			b.Free(h)
			h = next
		}
		tr("decoder.up_blocks."+fmt.Sprint(i), h)
	}

	var n *tensor.Tensor
	if d.Trace != nil {
		g := b.GroupNorm(h, d.normOut.g, d.normOut.b, c.NormGroups, normEps, false)
		d.Trace("decoder.conv_norm_out", g)
		n = b.Activate(g, tensor.ActSiLU)
		b.Free(g)
	} else {
		n = b.GroupNorm(h, d.normOut.g, d.normOut.b, c.NormGroups, normEps, true)
	}
	b.Free(h)
	out := b.Conv2D(n, d.convOut.w, d.convOut.b, tensor.ConvOpts{Pad: 1})
	b.Free(n)
	return out
}

// forward maps x [1, h, w, c] (not freed) to x + o(attn(GN(x))).
func (a *attention) forward(b tensor.Backend, x *tensor.Tensor, groups, h, w, c int) *tensor.Tensor {
	const nb = 1
	n := b.GroupNorm(x, a.norm.g, a.norm.b, groups, normEps, false)
	seq := b.Reshape(n, nb, h*w, c)
	q := b.Linear(seq, a.q.w, a.q.b, tensor.Epilogue{})
	k := b.Linear(seq, a.k.w, a.k.b, tensor.Epilogue{})
	v := b.Linear(seq, a.v.w, a.v.b, tensor.Epilogue{})
	b.Free(n)
	o, _ := b.Attention(q, k, v, tensor.AttnOpts{Heads: 1, Scale: a.scale})
	b.Free(q, k, v)
	out := b.Linear(o, a.o.w, a.o.b, tensor.Epilogue{Residual: x})
	b.Free(o)
	// out is ours (not a view, whose Free would be a no-op): relabel
	// [1, hw, c] as NHWC.
	if out.Numel() == nb*h*w*c {
		out.Shape = []int{nb, h, w, c}
	}
	return out
}
