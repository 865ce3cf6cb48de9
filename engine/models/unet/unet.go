// Package unet implements diffusers' UNet2DConditionModel for SD-family
// configurations on the nn building blocks, sized
// entirely from config.json. Feature maps are NHWC. Every attention layer is
// observable and alterable through an nn.Hook (the Harmony method reads
// cross-attention probabilities and swaps self-attention keys and values)
// and listed as an nn.Site.
//
// unet.go holds the network: time embedding, down blocks with the skip
// stack, mid block, up blocks, output head and Sites.
package unet

import (
	"fmt"
	"strconv"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

var _ nn.Sited = (*UNet)(nil)

// UNet is a loaded UNet2DConditionModel.
type UNet struct {
	Config *Config
	// Trace, when set, receives intermediate tensors (debugging and golden
	// tests) by module path ("time_proj", "down_blocks.0.resnets.0",
	// "…transformer_blocks.0.attn1" before its residual, "mid_block",
	// "conv_norm_out" before its SiLU, …). Feature maps are NHWC, token
	// sequences [B, H·W, C].
	Trace nn.Trace
	// FFChunkElems bounds the feed-forward's widest intermediate (see
	// ffChunkElems); 0 means the default.
	FFChunkElems int

	weights     *tensor.Weights
	fused       []*tensor.Tensor // weights joined at load (nn.Vars.Fuse)
	timeProjDim int
	linear1     nn.Linear // time_embedding.linear_1
	linear2     nn.Linear // time_embedding.linear_2
	convIn      nn.Conv2d
	down        []*downBlock
	mid         *midBlock // nil for mid_block_type null
	up          []*upBlock
	normOut     nn.GroupNorm
	convOut     nn.Conv2d
	contextDims []int // cross_attention_dim of every attention that reads the context
	nUpsamplers int
	// Every resnet's time_emb_proj joined at load: one [ΣCout, D] Linear
	// per call instead of one per resnet (nil when not joined).
	tembW, tembB *tensor.Tensor
	elite        bool // attn2 has ELITE's local branch (LoadELITE)
}

type downBlock struct {
	resnets []*nn.Resnet
	attns   []*transformer2D // nil entries for DownBlock2D
	down    *nn.Conv2d       // stride-2 downsampler, nil for the last block
	name    string
}

type midBlock struct {
	resnets []*nn.Resnet
	attns   []*transformer2D
}

type upBlock struct {
	resnets []*nn.Resnet
	attns   []*transformer2D
	up      *nn.Conv2d // upsampler conv (after nearest 2×), nil for the last block
	name    string
}

// Tensors lists every state-dict name the model reads for cfg, with its
// stored (PyTorch) shape.
func Tensors(cfg *Config) map[string][]int {
	v := nn.Recorder()
	build(v, cfg, false)
	return v.Shapes()
}

// Load builds the model from w (names as in diffusion_pytorch_model.*),
// checking every tensor's presence and shape first: the error names the
// first missing or misshapen one (a *tensor.MissingError). w stays owned by
// the UNet: Free releases it.
func Load(b tensor.Backend, cfg *Config, w *tensor.Weights) (*UNet, error) {
	v := nn.NewVars(b, w)
	u := build(v, cfg, false)
	if err := v.Finish("unet"); err != nil {
		return nil, err
	}
	u.weights = w
	u.fused = v.Fused()
	return u, nil
}

// Free releases the weights.
func (u *UNet) Free(b tensor.Backend) {
	if u.weights != nil {
		u.weights.Free(b)
		u.weights = nil
	}
	b.Free(u.fused...)
	u.fused = nil
}

// build constructs the module tree, reading (or only naming) its weights;
// with elite every attn2 also reads ELITE's local key and value projections.
func build(p *nn.Vars, c *Config, elite bool) *UNet {
	u := &UNet{Config: c, timeProjDim: c.BlockOut[0], elite: elite}
	bd := &builder{u: u, c: c, elite: elite}
	u.convIn = nn.LoadConv2d(p, "conv_in", c.BlockOut[0], c.InChannels, c.ConvInKernel, true)
	u.linear1 = nn.LoadLinear(p, "time_embedding.linear_1", c.TimeEmbedDim, u.timeProjDim, true)
	u.linear2 = nn.LoadLinear(p, "time_embedding.linear_2", c.TimeEmbedDim, c.TimeEmbedDim, true)
	for i := range c.DownTypes {
		u.down = append(u.down, bd.downBlock(p, i))
	}
	u.mid = bd.midBlock(p)
	for j := range c.UpTypes {
		u.up = append(u.up, bd.upBlock(p, j))
	}
	u.normOut = nn.LoadGroupNorm(p, "conv_norm_out", c.BlockOut[0], c.NormGroups, c.NormEps)
	u.convOut = nn.LoadConv2d(p, "conv_out", c.OutChannels, c.BlockOut[0], c.ConvOutKernel, true)
	u.joinTimeProjections(p, bd.resnets)
	u.joinContextProjections(p)
	return u
}

// builder makes the blocks of one UNet, keeping every resnet (in build
// order) for joinTimeProjections.
type builder struct {
	u       *UNet
	c       *Config
	elite   bool
	resnets []*nn.Resnet
}

func (bd *builder) resnet(p *nn.Vars, in, out int, scale float32) *nn.Resnet {
	c := bd.c
	r := nn.LoadResnet(p, nn.ResnetSpec{In: in, Out: out, TembDim: c.TimeEmbedDim, Groups: c.NormGroups, Eps: c.NormEps, OutScale: scale})
	bd.resnets = append(bd.resnets, r)
	return r
}

// transformer reads attentions.<j> of a block (p is the block's view).
func (bd *builder) transformer(p *nn.Vars, block string, j, ch, heads, layers, crossDim int, onlyCross bool, site nn.Site) *transformer2D {
	bd.u.contextDims = append(bd.u.contextDims, crossDim)
	return loadTransformer(p.At("attentions", j), block+".attentions."+itoa(j), transformerSpec{
		channels: ch, heads: heads, layers: layers, crossDim: crossDim, groups: bd.c.NormGroups,
		onlyCross: onlyCross, linearProj: bd.c.UseLinearProj, elite: bd.elite, site: site,
	})
}

// downBlock is down_blocks.<i>: resnets (+ transformers), then a stride-2
// downsampler except in the last block.
func (bd *builder) downBlock(p *nn.Vars, i int) *downBlock {
	c := bd.c
	in, out := c.BlockOut[max(i-1, 0)], c.BlockOut[i]
	name := "down_blocks." + itoa(i)
	bp := p.Sub(name)
	d := &downBlock{name: name}
	for j := range c.LayersPerBlock[i] {
		rin := in
		if j > 0 {
			rin = out
		}
		d.resnets = append(d.resnets, bd.resnet(bp.At("resnets", j), rin, out, 1))
		var t *transformer2D
		if c.DownTypes[i] == CrossAttnDown {
			t = bd.transformer(bp, name, j, out, c.Heads[i], c.DownTLayer[i][j], c.CrossDim[i], c.OnlyCross[i],
				nn.Site{Block: "down", Index: i, Level: i})
		}
		d.attns = append(d.attns, t)
	}
	if i < c.Levels()-1 {
		cv := nn.LoadConv2d(bp, "downsamplers.0.conv", out, out, 3, true)
		cv.Stride = 2
		d.down = &cv
	}
	return d
}

// midBlock is mid_block (nil for mid_block_type null).
func (bd *builder) midBlock(p *nn.Vars) *midBlock {
	c := bd.c
	n := c.Levels()
	last := c.BlockOut[n-1]
	mp := p.Sub("mid_block")
	switch c.MidType {
	case MidCrossAttn:
		m := &midBlock{}
		m.resnets = append(m.resnets, bd.resnet(mp.Sub("resnets.0"), last, last, c.MidScale))
		m.attns = append(m.attns, bd.transformer(mp, "mid_block", 0, last, c.Heads[n-1], c.MidTLayers, c.CrossDim[n-1], false,
			nn.Site{Block: "mid", Index: 0, Level: n - 1}))
		m.resnets = append(m.resnets, bd.resnet(mp.Sub("resnets.1"), last, last, c.MidScale))
		return m
	case MidPlain:
		return &midBlock{resnets: []*nn.Resnet{bd.resnet(mp.Sub("resnets.0"), last, last, c.MidScale)}}
	}
	return nil
}

// upBlock is up_blocks.<j>, mirroring down block n−1−j: one resnet more,
// each reading a popped skip, then a nearest 2× + conv upsampler except in
// the last block.
func (bd *builder) upBlock(p *nn.Vars, j int) *upBlock {
	c := bd.c
	n := c.Levels()
	ri := n - 1 - j // the down block this up block mirrors
	prev := c.BlockOut[min(ri+1, n-1)]
	out := c.BlockOut[ri]
	in := c.BlockOut[max(ri-1, 0)]
	name := "up_blocks." + itoa(j)
	bp := p.Sub(name)
	ub := &upBlock{name: name}
	layers := c.LayersPerBlock[ri] + 1
	for k := range layers {
		skip := out
		if k == layers-1 {
			skip = in
		}
		rin := out
		if k == 0 {
			rin = prev
		}
		ub.resnets = append(ub.resnets, bd.resnet(bp.At("resnets", k), rin+skip, out, 1))
		var t *transformer2D
		if c.UpTypes[j] == CrossAttnUp {
			t = bd.transformer(bp, name, k, out, c.Heads[ri], c.UpTLayer[j][k], c.CrossDim[ri], c.OnlyCross[ri],
				nn.Site{Block: "up", Index: j, Level: ri})
		}
		ub.attns = append(ub.attns, t)
	}
	if j < n-1 {
		cv := nn.LoadConv2d(bp, "upsamplers.0.conv", out, out, 3, true)
		ub.up = &cv
		bd.u.nUpsamplers++
	}
	return ub
}

// joinContextProjections joins the k and v weights of every attention that
// reads the context, per (inner width, context width, dtype), so that a call
// projects the context once per group instead of once per layer.
func (u *UNet) joinContextProjections(p *nn.Vars) {
	type key struct {
		inner, kvDim int
		dt           tensor.DType
	}
	groups := map[key][]*attention{}
	locals := map[key][]*attention{}
	var order, lorder []key
	visit := func(ts []*transformer2D) {
		for _, t := range ts {
			if t == nil {
				continue
			}
			for _, bb := range t.blocks {
				as := []*attention{&bb.attn2}
				if bb.onlyCross {
					as = append(as, &bb.attn1)
				}
				for _, a := range as {
					if a.K.W == nil || a.V.W == nil {
						return // recording, or missing (reported by Vars)
					}
					k := key{a.Inner, a.K.W.Shape[1], a.K.W.DType}
					if groups[k] == nil {
						order = append(order, k)
					}
					groups[k] = append(groups[k], a)
					if a.kLocal.W != nil && a.vLocal.W != nil {
						k := key{a.Inner, a.kLocal.W.Shape[1], a.kLocal.W.DType}
						if locals[k] == nil {
							lorder = append(lorder, k)
						}
						locals[k] = append(locals[k], a)
					}
				}
			}
		}
	}
	for _, d := range u.down {
		visit(d.attns)
	}
	if u.mid != nil {
		visit(u.mid.attns)
	}
	for _, ub := range u.up {
		visit(ub.attns)
	}
	for _, k := range order {
		as := groups[k]
		var names []string
		var ws []*tensor.Tensor
		for _, a := range as {
			names = append(names, a.prefix+"to_k.weight", a.prefix+"to_v.weight")
			ws = append(ws, a.K.W, a.V.W)
		}
		var g *contextKV
		if w := p.Fuse(names, ws); w != nil {
			g = &contextKV{w: w, inner: k.inner}
		}
		for i, a := range as {
			a.K.W, a.V.W = ws[2*i], ws[2*i+1]
			a.ctx, a.slot = g, i
		}
	}
	for _, k := range lorder {
		as := locals[k]
		var names []string
		var ws []*tensor.Tensor
		for _, a := range as {
			names = append(names, a.prefix+"to_k_local.weight", a.prefix+"to_v_local.weight")
			ws = append(ws, a.kLocal.W, a.vLocal.W)
		}
		var g *contextKV
		if w := p.Fuse(names, ws); w != nil {
			g = &contextKV{w: w, inner: k.inner}
		}
		for i, a := range as {
			a.kLocal.W, a.vLocal.W = ws[2*i], ws[2*i+1]
			a.lctx, a.lslot = g, i
		}
	}
}

// joinTimeProjections joins every resnet's time_emb_proj (weights and
// biases) so that Forward projects the time embedding for all of them with
// one Linear; each resnet reads its columns (tensor.ConvOpts.ChanBiasCol).
func (u *UNet) joinTimeProjections(p *nn.Vars, rs []*nn.Resnet) {
	var wn, bn []string
	var ws, bs []*tensor.Tensor
	for _, r := range rs {
		if r.Temb == nil {
			return
		}
		wn, bn = append(wn, r.TembName+".weight"), append(bn, r.TembName+".bias")
		ws, bs = append(ws, r.Temb.W), append(bs, r.Temb.B)
	}
	w := p.Fuse(wn, ws)
	bias := p.Fuse(bn, bs)
	col := 0
	for i, r := range rs {
		r.Temb.W, r.Temb.B = ws[i], bs[i]
		r.TembCol = col
		col += r.Out
	}
	if w != nil && bias != nil {
		u.tembW, u.tembB = w, bias
	}
}

// fwd carries one Forward call's options down the module tree.
type fwd struct {
	hook    nn.Hook
	trace   nn.Trace
	chunk   int            // feed-forward chunk bound, elements
	context *tensor.Tensor // the call's context (cross-attention keys and values)
	local   *Local         // ELITE's local branch for the call, or nil
	// ELITE: the one-hot values that read each row's placeholder column
	// out of attention, per head count (see addLocal); freed with the call.
	oneHot map[int]*tensor.Tensor
	// The joint projections of the context made so far (contextKV); freed
	// when the call ends.
	ctxProj map[*contextKV]*tensor.Tensor
}

// contextProjection is in (the context, or ELITE's local features)
// projected by every layer of g: one split-output Linear, made the first
// time a layer of g asks.
func (f *fwd) contextProjection(b tensor.Backend, g *contextKV, in *tensor.Tensor) *tensor.Tensor {
	if t := f.ctxProj[g]; t != nil {
		return t
	}
	t := b.Linear(in, g.w, nil, tensor.Epilogue{Split: g.inner})
	if f.ctxProj == nil {
		f.ctxProj = map[*contextKV]*tensor.Tensor{}
	}
	f.ctxProj[g] = t
	return t
}

// free releases the call's context projections.
func (f *fwd) free(b tensor.Backend) {
	for _, t := range f.ctxProj {
		b.Free(t)
	}
	f.ctxProj = nil
	for _, t := range f.oneHot {
		b.Free(t)
	}
	f.oneHot = nil
}

// levelSize is the side after l stride-2, pad-1, 3×3 convolutions.
func levelSize(s, l int) int {
	for range l {
		s = (s-1)/2 + 1
	}
	return s
}

// Forward predicts the noise for sample [B, h, w, Cin] (NHWC) at timesteps
// (one per batch entry, or one for all) given context [B, Tc, Dc]; hook may
// be nil. Returns [B, h, w, Cout]; the error is a bad input or the
// backend's. h and w must be multiples of 2^(levels−1).
func (u *UNet) Forward(b tensor.Backend, sample *tensor.Tensor, timesteps []float32, context *tensor.Tensor, hook nn.Hook) (*tensor.Tensor, error) {
	return u.ForwardLocal(b, sample, timesteps, context, nil, hook)
}

// ForwardLocal is Forward with ELITE's local branch (a UNet from
// LoadELITE; local nil: global attention only, as ELITE's unconditional
// pass).
func (u *UNet) ForwardLocal(b tensor.Backend, sample *tensor.Tensor, timesteps []float32, context *tensor.Tensor, local *Local, hook nn.Hook) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if err := u.checkInputs(sample, timesteps, context); err != nil {
		return nil, err
	}
	if err := u.checkLocal(sample, context, local); err != nil {
		return nil, err
	}
	nb, h, w := sample.Shape[0], sample.Shape[1], sample.Shape[2]
	f := &fwd{hook: hook, trace: u.Trace, chunk: u.FFChunkElems, context: context, local: local}
	if f.chunk <= 0 {
		f.chunk = ffChunkElems
	}
	defer f.free(b)
	temb, tall := u.timeEmbedding(b, f, timesteps, nb)
	defer b.Free(temb, tall)
	hs, skips := u.encode(b, f, sample, temb, tall, nb, h, w)
	lh, lw := levelSize(h, len(u.down)-1), levelSize(w, len(u.down)-1)
	if u.mid != nil {
		hs = u.mid.forward(b, f, hs, temb, tall, nb, lh, lw, u.Config.BlockOut[len(u.Config.BlockOut)-1])
	}
	hs = u.decode(b, f, hs, skips, temb, tall, nb, lh, lw)
	out := u.head(b, f, hs)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// timeEmbedding is the sinusoid → linear_1, SiLU → linear_2 stack; every
// resnet then reads temb = SiLU(emb), and tall is every resnet's
// projection of it at once (nil when the projections were not joined).
func (u *UNet) timeEmbedding(b tensor.Backend, f *fwd, timesteps []float32, nb int) (temb, tall *tensor.Tensor) {
	c := u.Config
	ts := timesteps
	if len(ts) == 1 && nb > 1 {
		ts = make([]float32, nb)
		for i := range ts {
			ts[i] = timesteps[0]
		}
	}
	tp := b.TimestepEmbedding(ts, u.timeProjDim, c.FlipSinToCos, c.FreqShift)
	f.trace.Record("time_proj", tp)
	e1 := u.linear1.Forward(b, tp, tensor.Epilogue{Act: tensor.ActSiLU})
	b.Free(tp)
	post := tensor.ActNone
	if c.TimestepPostAct {
		post = tensor.ActSiLU
	}
	if post == tensor.ActNone && !c.TimeEmbedAct && f.trace == nil {
		// Nothing reads emb but through SiLU: fold it into linear_2.
		temb = u.linear2.Forward(b, e1, tensor.Epilogue{Act: tensor.ActSiLU})
		b.Free(e1)
	} else {
		emb := u.linear2.Forward(b, e1, tensor.Epilogue{Act: post})
		b.Free(e1)
		f.trace.Record("time_embedding", emb)
		if c.TimeEmbedAct {
			a := b.Activate(emb, tensor.ActSiLU)
			b.Free(emb)
			emb = a
		}
		temb = b.Activate(emb, tensor.ActSiLU)
		b.Free(emb)
	}
	if u.tembW != nil {
		tall = b.Linear(temb, u.tembW, u.tembB, tensor.Epilogue{})
	}
	return temb, tall
}

// encode is conv_in and the down blocks. Every resnet (+ transformer)
// output and every downsampler output is pushed on the skip stack, which
// starts with conv_in's output; the last one pushed is also returned.
func (u *UNet) encode(b tensor.Backend, f *fwd, sample, temb, tall *tensor.Tensor, nb, h, w int) (hs *tensor.Tensor, skips []*tensor.Tensor) {
	c := u.Config
	x := sample
	if c.CenterInputSample {
		x = b.Scale(sample, 2, -1)
	}
	hs = u.convIn.Forward(b, x, tensor.ConvOpts{})
	if x != sample {
		b.Free(x)
	}
	f.trace.Record("conv_in", hs)
	skips = []*tensor.Tensor{hs}
	lh, lw := h, w
	for i, d := range u.down {
		ch := c.BlockOut[i]
		for j, r := range d.resnets {
			rn := r.Forward(b, hs, temb, tall)
			f.trace.Record(d.name+".resnets."+itoa(j), rn)
			if t := d.attns[j]; t != nil {
				a := t.forward(b, rn, f.context, f, nb, lh, lw, ch)
				b.Free(rn)
				rn = a
				f.trace.Record(t.name, rn)
			}
			hs = rn
			skips = append(skips, hs)
		}
		if d.down != nil {
			hs = d.down.Forward(b, hs, tensor.ConvOpts{})
			lh, lw = levelSize(lh, 1), levelSize(lw, 1)
			skips = append(skips, hs)
		}
		f.trace.Record(d.name, hs)
	}
	return hs, skips
}

// forward runs the mid block on x (left on the skip stack, not freed).
func (m *midBlock) forward(b tensor.Backend, f *fwd, x, temb, tall *tensor.Tensor, nb, h, w, ch int) *tensor.Tensor {
	cur := m.resnets[0].Forward(b, x, temb, tall)
	for k, t := range m.attns {
		a := t.forward(b, cur, f.context, f, nb, h, w, ch)
		b.Free(cur)
		cur = m.resnets[k+1].Forward(b, a, temb, tall)
		b.Free(a)
	}
	f.trace.Record("mid_block", cur)
	return cur
}

// decode is the up blocks: a skip is popped before each resnet, whose
// input is [h, skip] on channels; nearest 2× + 3×3 conv at each block's
// end. Every skip is freed.
func (u *UNet) decode(b tensor.Backend, f *fwd, hs *tensor.Tensor, skips []*tensor.Tensor, temb, tall *tensor.Tensor, nb, lh, lw int) *tensor.Tensor {
	c := u.Config
	for j, ub := range u.up {
		ch := c.BlockOut[len(c.BlockOut)-1-j]
		for k, r := range ub.resnets {
			skip := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			cat := b.Concat(-1, hs, skip)
			if hs != skip { // without a mid block the first skip is hs itself
				b.Free(hs)
			}
			b.Free(skip)
			rn := r.Forward(b, cat, temb, tall)
			b.Free(cat)
			f.trace.Record(ub.name+".resnets."+itoa(k), rn)
			if t := ub.attns[k]; t != nil {
				a := t.forward(b, rn, f.context, f, nb, lh, lw, ch)
				b.Free(rn)
				rn = a
				f.trace.Record(t.name, rn)
			}
			hs = rn
		}
		if ub.up != nil {
			x := ub.up.Forward(b, hs, tensor.ConvOpts{Upsample: true})
			b.Free(hs)
			hs = x
			lh, lw = 2*lh, 2*lw
		}
		f.trace.Record(ub.name, hs)
	}
	if len(skips) != 0 {
		b.SetErr(fmt.Errorf("unet: %d skip connections left after the up blocks", len(skips)))
		b.Free(skips...)
	}
	return hs
}

// head is conv_norm_out + SiLU, then conv_out; it frees hs.
func (u *UNet) head(b tensor.Backend, f *fwd, hs *tensor.Tensor) *tensor.Tensor {
	var n *tensor.Tensor
	if f.trace != nil {
		g := u.normOut.Forward(b, hs, false)
		f.trace("conv_norm_out", g)
		n = b.Activate(g, tensor.ActSiLU)
		b.Free(g)
	} else {
		n = u.normOut.Forward(b, hs, true)
	}
	b.Free(hs)
	out := u.convOut.Forward(b, n, tensor.ConvOpts{})
	b.Free(n)
	return out
}

// checkInputs validates Forward's arguments against the config.
func (u *UNet) checkInputs(sample *tensor.Tensor, ts []float32, ctx *tensor.Tensor) error {
	c := u.Config
	if sample == nil || len(sample.Shape) != 4 || sample.Shape[3] != c.InChannels || sample.DType != tensor.F32 {
		return fmt.Errorf("unet: sample %v must be f32 [B, h, w, %d]", sample, c.InChannels)
	}
	nb, h, w := sample.Shape[0], sample.Shape[1], sample.Shape[2]
	if f := 1 << u.nUpsamplers; h%f != 0 || w%f != 0 {
		// Nearest 2× upsampling must land exactly on the skip sizes.
		return fmt.Errorf("unet: latent size %d×%d is not a multiple of %d", h, w, f)
	}
	if len(ts) != 1 && len(ts) != nb {
		return fmt.Errorf("unet: %d timesteps for batch %d (want 1 or %d)", len(ts), nb, nb)
	}
	if len(u.contextDims) > 0 {
		if ctx == nil || len(ctx.Shape) != 3 || ctx.Shape[0] != nb || ctx.DType != tensor.F32 {
			return fmt.Errorf("unet: context %v must be f32 [%d, T, D]", ctx, nb)
		}
		for _, d := range u.contextDims {
			if ctx.Shape[2] != d {
				return fmt.Errorf("unet: context width %d, the config's cross_attention_dim is %d", ctx.Shape[2], d)
			}
		}
	}
	return nil
}

// SitesFor lists the attention layers a config implies, without weights
// (the module tree is built in recording mode).
func SitesFor(cfg *Config, h, w int) []nn.Site {
	return build(nn.Recorder(), cfg, false).Sites(h, w)
}

// Sites lists every attention layer in call order for a latent of h×w.
func (u *UNet) Sites(h, w int) []nn.Site {
	var out []nn.Site
	add := func(t *transformer2D) {
		if t == nil {
			return
		}
		for _, bb := range t.blocks {
			for _, a := range []*attention{&bb.attn1, &bb.attn2} {
				s := a.site
				s.H, s.W = levelSize(h, s.Level), levelSize(w, s.Level)
				out = append(out, s)
			}
		}
	}
	for _, d := range u.down {
		for _, t := range d.attns {
			add(t)
		}
	}
	if u.mid != nil {
		for _, t := range u.mid.attns {
			add(t)
		}
	}
	for _, ub := range u.up {
		for _, t := range ub.attns {
			add(t)
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
