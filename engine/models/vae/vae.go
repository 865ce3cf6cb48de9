// Package vae implements the decoder of diffusers' AutoencoderKL
// on the tensor.Backend op set, sized from
// config.json: latents / scaling_factor → post_quant_conv → conv_in → mid
// block (resnet, single-head attention, resnet) → up blocks (reversed
// channels, layers_per_block+1 resnets, nearest 2× + conv upsamplers) →
// GroupNorm + SiLU → conv_out. Feature maps are NHWC. It is built on the
// nn blocks; its resnets are nn.Resnet without a time embedding.
package vae

import (
	"fmt"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// Decoder is a loaded AutoencoderKL decoder.
type Decoder struct {
	Config *Config
	// Trace, when set, receives intermediate tensors by module path
	// ("post_quant_conv", "decoder.conv_in", "decoder.mid_block",
	// "decoder.up_blocks.0", "decoder.conv_norm_out" before its SiLU).
	Trace nn.Trace

	weights   *tensor.Weights
	postQuant *nn.Linear // 1×1 post_quant_conv as a Linear over channels; nil when absent
	convIn    nn.Conv2d
	midRes    []*nn.Resnet
	midAttn   *attention // nil without mid_block_add_attention
	up        []upBlock
	normOut   nn.GroupNorm
	convOut   nn.Conv2d
}

type upBlock struct {
	resnets []*nn.Resnet
	up      *nn.Conv2d // after nearest 2×; nil for the last block
}

// attention is the mid block's single-head self-attention with GroupNorm
// on its input and a residual (diffusers Attention with
// residual_connection, rescale_output_factor 1).
type attention struct {
	norm nn.GroupNorm
	nn.Attention
}

// loadMid reads (or names) a mid block: resnets.0, attentions.0, resnets.1.
func loadMid(p *nn.Vars, c *Config) ([]*nn.Resnet, *attention) {
	ch := c.BlockOut[len(c.BlockOut)-1]
	res := []*nn.Resnet{nn.LoadResnet(p.Sub("resnets.0"), c.resnetSpec(ch, ch))}
	var a *attention
	if c.MidAttention {
		ap := p.Sub("attentions.0")
		names := nn.DiffusersAttnNames
		if c.LegacyAttentionNames {
			names = nn.LegacyAttnNames
		}
		a = &attention{
			norm: nn.LoadGroupNorm(ap, "group_norm", ch, c.NormGroups, normEps),
			// One head of width ch (attention_head_dim = channels).
			Attention: nn.LoadAttention(ap, nn.AttnSpec{Names: names, Dim: ch, Heads: 1, QKVBias: true, OutBias: true}),
		}
	}
	res = append(res, nn.LoadResnet(p.Sub("resnets.1"), c.resnetSpec(ch, ch)))
	return res, a
}

// buildDecoder constructs the decoder, reading (or only naming) weights.
func buildDecoder(p *nn.Vars, c *Config) *Decoder {
	n := len(c.BlockOut)
	d := &Decoder{Config: c}
	if c.UsePostQuantConv {
		l := nn.LoadPointwise(p, "post_quant_conv", c.LatentChannels, c.LatentChannels)
		d.postQuant = &l
	}
	dp := p.Sub("decoder")
	d.convIn = nn.LoadConv2d(dp, "conv_in", c.BlockOut[n-1], c.LatentChannels, 3, true)
	d.midRes, d.midAttn = loadMid(dp.Sub("mid_block"), c)
	out := c.BlockOut[n-1]
	for i := range n {
		prev := out
		out = c.BlockOut[n-1-i]
		bp := dp.At("up_blocks", i)
		var ub upBlock
		for j := range c.LayersPerBlock + 1 {
			in := out
			if j == 0 {
				in = prev
			}
			ub.resnets = append(ub.resnets, nn.LoadResnet(bp.At("resnets", j), c.resnetSpec(in, out)))
		}
		if i < n-1 {
			cv := nn.LoadConv2d(bp, "upsamplers.0.conv", out, out, 3, true)
			ub.up = &cv
		}
		d.up = append(d.up, ub)
	}
	d.normOut = nn.LoadGroupNorm(dp, "conv_norm_out", c.BlockOut[0], c.NormGroups, normEps)
	d.convOut = nn.LoadConv2d(dp, "conv_out", c.OutChannels, c.BlockOut[0], 3, true)
	return d
}

// Load builds the decoder from the VAE's weights w, checking every tensor
// of the decoder first (a *tensor.MissingError names the first missing or
// misshapen one). The mid-block attention spelling is taken from w. w stays
// owned by the decoder: Free releases it (encoder tensors included).
func Load(b tensor.Backend, cfg *Config, w *tensor.Weights) (*Decoder, error) {
	c := *cfg
	c.AdaptNames(w.Has)
	v := nn.NewVars(b, w)
	d := buildDecoder(v, &c)
	if err := v.Finish("vae"); err != nil {
		return nil, err
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
// scaling_factor (and adds shift_factor) first. The error is a bad input
// or the backend's.
func (d *Decoder) Decode(b tensor.Backend, latents *tensor.Tensor) (*tensor.Tensor, error) {
	if err := d.check(latents); err != nil {
		return nil, err
	}
	z := b.Scale(latents, 1/d.Config.ScalingFactor, d.Config.ShiftFactor)
	out, err := d.DecodeZ(b, z)
	b.Free(z)
	return out, err
}

// DecodeZ decodes already-scaled latents z (what diffusers' vae.decode
// takes). Batch entries are decoded one at a time, so activation memory
// does not grow with the batch.
func (d *Decoder) DecodeZ(b tensor.Backend, z *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if err := d.check(z); err != nil {
		return nil, err
	}
	c := d.Config
	nb, h, w := z.Shape[0], z.Shape[1], z.Shape[2]
	var out *tensor.Tensor
	if nb == 1 {
		out = d.decodeOne(b, z)
	} else {
		per := h * w * c.LatentChannels
		outs := make([]*tensor.Tensor, nb)
		for i := range outs {
			outs[i] = d.decodeOne(b, b.View(z, i*per, 1, h, w, c.LatentChannels))
		}
		out = b.Concat(0, outs...)
		b.Free(outs...)
	}
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// check validates latents against the config.
func (d *Decoder) check(z *tensor.Tensor) error {
	if z == nil || len(z.Shape) != 4 || z.Shape[3] != d.Config.LatentChannels || z.DType != tensor.F32 {
		return fmt.Errorf("vae: latents %v must be f32 [B, h, w, %d]", z, d.Config.LatentChannels)
	}
	return nil
}

func (d *Decoder) decodeOne(b tensor.Backend, z *tensor.Tensor) *tensor.Tensor {
	c := d.Config
	tr := d.Trace.Record
	x := z
	if d.postQuant != nil {
		x = d.postQuant.Forward(b, z, tensor.Epilogue{})
		tr("post_quant_conv", x)
	}
	h := d.convIn.Forward(b, x, tensor.ConvOpts{})
	if x != z {
		b.Free(x)
	}
	tr("decoder.conv_in", h)

	next := d.midRes[0].Forward(b, h, nil, nil)
	b.Free(h)
	h = next
	if d.midAttn != nil {
		next = d.midAttn.forward(b, h, z.Shape[1], z.Shape[2], c.BlockOut[len(c.BlockOut)-1])
		b.Free(h)
		h = next
	}
	next = d.midRes[1].Forward(b, h, nil, nil)
	b.Free(h)
	h = next
	tr("decoder.mid_block", h)

	for i, ub := range d.up {
		for _, r := range ub.resnets {
			next = r.Forward(b, h, nil, nil)
			b.Free(h)
			h = next
		}
		if ub.up != nil {
			next = ub.up.Forward(b, h, tensor.ConvOpts{Upsample: true})
			b.Free(h)
			h = next
		}
		tr("decoder.up_blocks."+fmt.Sprint(i), h)
	}

	var n *tensor.Tensor
	if d.Trace != nil {
		g := d.normOut.Forward(b, h, false)
		d.Trace("decoder.conv_norm_out", g)
		n = b.Activate(g, tensor.ActSiLU)
		b.Free(g)
	} else {
		n = d.normOut.Forward(b, h, true)
	}
	b.Free(h)
	out := d.convOut.Forward(b, n, tensor.ConvOpts{})
	b.Free(n)
	return out
}

// forward maps x [1, h, w, c] (not freed) to x + o(attn(GN(x))).
func (a *attention) forward(b tensor.Backend, x *tensor.Tensor, h, w, c int) *tensor.Tensor {
	const nb = 1
	n := a.norm.Forward(b, x, false)
	seq := b.Reshape(n, nb, h*w, c)
	q, k, v := a.Project(b, seq, seq)
	b.Free(n)
	o, _ := a.Attend(b, q, k, v, tensor.AttnOpts{})
	b.Free(q, k, v)
	out := a.Out.Forward(b, o, tensor.Epilogue{Residual: x})
	b.Free(o)
	// out is ours (not a view, whose Free would be a no-op): relabel
	// [1, hw, c] as NHWC.
	if out.Numel() == nb*h*w*c {
		out.Shape = []int{nb, h, w, c}
	}
	return out
}
