// transformer.go: Transformer2DModel and BasicTransformerBlock
// (one BasicTransformerBlock per attention, use_linear_projection false):
// GroupNorm → proj_in → blocks of self-attention,
// cross-attention with the text tokens and a GEGLU feed-forward (each
// pre-LayerNorm with a residual) → proj_out + residual. Every attention call
// goes through the Harmony Hook.
package unet

import (
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// Fixed by diffusers, not by config.json: Transformer2DModel's input
// GroupNorm eps and BasicTransformerBlock's LayerNorm eps.
const (
	transformerGNEps = 1e-6
	blockLNEps       = 1e-5
)

// ffChunkElems bounds the widest activation of the model: the GEGLU
// projection [rows, 8C]. At 512² with batch 4 it would be 4·4096 × 2560
// floats (168 MB) at level 0, beyond WebGPU's default 128 MiB binding limit,
// so the feed-forward runs over row chunks of at most this many elements.
const ffChunkElems = 1 << 24

// attention is a diffusers Attention (heads × head dim = inner width)
// whose projections may run joined with others.
type attention struct {
	nn.Attention
	// Weights joined at load: qkv [3·inner, C] for self-attention; keys
	// and values from the context are projected for every such layer of
	// the UNet at once (ctx, slot: see contextKV). nil when the parts could
	// not be joined (then q, k, v run one by one).
	qkv    *tensor.Tensor
	ctx    *contextKV
	slot   int     // this layer's k, v are slabs 2·slot, 2·slot+1 of ctx's projection
	prefix string  // state-dict prefix ("…attn2.")
	site   nn.Site // H and W are filled per call
	// ELITE's local branch (attn2 of a UNet loaded by LoadELITE, see
	// elite.go): to_k_local, to_v_local over the local features, joined
	// UNet-wide like the context's (lctx, lslot). W nil otherwise.
	kLocal, vLocal nn.Linear
	lctx           *contextKV
	lslot          int
}

// contextKV joins the k and v weights of every attention layer that reads
// the context with the same widths: the context is the same for all of them
// within a call, so one split-output Linear projects it for every layer
// ([2·layers, B, Nk, inner]), the first time one of them needs it.
type contextKV struct {
	w     *tensor.Tensor // [2·layers·inner, Ckv]: k then v of each layer
	inner int
}

// slab is view i of a split-output tensor [parts, …].
func slab(b tensor.Backend, t *tensor.Tensor, i int) *tensor.Tensor {
	s := t.Shape[1:]
	return b.View(t, i*tensor.Numel(s), s...)
}

// project computes q from x and k, v from kv, with one split-output Linear
// over joined weights where it can: [3, B, N, inner] whose slabs are q, k
// and v, or the call's joint context projection. free releases what it
// returns.
func (a *attention) project(b tensor.Backend, x, kv *tensor.Tensor, f *fwd) (q, k, v *tensor.Tensor, free func()) {
	switch {
	case a.qkv != nil && kv == x:
		t := b.Linear(x, a.qkv, nil, tensor.Epilogue{Split: a.Inner})
		return slab(b, t, 0), slab(b, t, 1), slab(b, t, 2), func() { b.Free(t) }
	case a.ctx != nil && f != nil && kv == f.context:
		t := f.contextProjection(b, a.ctx, f.context)
		q = a.Q.Forward(b, x, tensor.Epilogue{})
		return q, slab(b, t, 2*a.slot), slab(b, t, 2*a.slot+1), func() { b.Free(q) }
	}
	q, k, v = a.Project(b, x, kv)
	return q, k, v, func() { b.Free(q, k, v) }
}

// forward runs the layer on x [B, N, C] with keys and values from kv
// ([B, Nk, Ckv]: x itself, or the context). residual (or nil) is added to
// the output projection's result.
func (a *attention) forward(b tensor.Backend, x, kv, residual *tensor.Tensor, f *fwd, h, w int) *tensor.Tensor {
	hook, tr := f.hook, f.trace
	q, k, v, freeQKV := a.project(b, x, kv, f)
	var opts tensor.AttnOpts
	site := a.site
	site.H, site.W = h, w
	if hook != nil {
		opts.ProbCols, opts.Swap = hook.Attention(site)
	}
	o, probs := a.Attend(b, q, k, v, opts)
	if a.kLocal.W != nil && f.local != nil && kv == f.context {
		o = a.addLocal(b, f, site, q, k, o)
	}
	freeQKV()
	if probs != nil {
		if hook != nil {
			hook.Probs(site, probs)
		} else {
			b.Free(probs)
		}
	}
	var out *tensor.Tensor
	if tr != nil && residual != nil {
		// Tracing records the layer's output before the residual add.
		y := a.Out.Forward(b, o, tensor.Epilogue{})
		tr(site.Name, y)
		out = b.Add(y, residual)
		b.Free(y)
	} else {
		out = a.Out.Forward(b, o, tensor.Epilogue{Residual: residual})
	}
	b.Free(o)
	return out
}

// feedForward is diffusers' FeedForward with GEGLU: net.0.proj C → 2F,
// value·GELU(gate), net.2 F → C, over row chunks.
type feedForward struct {
	mlp   nn.MLP
	inner int // F
	name  string
}

// forward runs the feed-forward on x [B, N, C] and adds residual (or nil).
// The projection's GEGLU is fused into its epilogue (no [rows, 2F] tensor);
// rows are still chunked as they were for it.
func (f *feedForward) forward(b tensor.Backend, x, residual *tensor.Tensor, tr nn.Trace, chunkElems int) *tensor.Tensor {
	if tr != nil && residual != nil {
		y := f.forward(b, x, nil, nil, chunkElems)
		tr(f.name, y)
		out := b.Add(y, residual)
		b.Free(y)
		return out
	}
	shape := x.Shape
	c := x.Dim(-1)
	rows := x.Numel() / c
	chunk := max(1, chunkElems/(2*f.inner))
	if chunk >= rows {
		return f.mlp.Forward(b, x, residual)
	}
	var parts []*tensor.Tensor
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		var res *tensor.Tensor
		if residual != nil {
			res = b.View(residual, r0*c, n, c)
		}
		parts = append(parts, f.mlp.Forward(b, b.View(x, r0*c, n, c), res))
	}
	out := b.Concat(0, parts...)
	b.Free(parts...)
	return nn.Relabel(b, out, shape...)
}

// basicBlock is a BasicTransformerBlock with layer_norm and GEGLU.
type basicBlock struct {
	norm1, norm2, norm3 nn.LayerNorm
	attn1, attn2        attention
	onlyCross           bool // attn1 attends to the context
	ff                  feedForward
	name                string
}

func loadBasicBlock(p *nn.Vars, name string, dim, heads, headDim, crossDim int, onlyCross, elite bool, site nn.Site) *basicBlock {
	inner := heads * headDim
	kv1 := dim
	if onlyCross {
		kv1 = crossDim
	}
	bb := &basicBlock{name: name, onlyCross: onlyCross}
	bb.norm1 = nn.LoadLayerNorm(p, "norm1", dim, blockLNEps)
	bb.attn1 = loadAttention(p.Sub("attn1"), dim, kv1, inner, heads, !onlyCross)
	bb.attn1.site = site
	bb.attn1.site.Name, bb.attn1.site.Cross = name+".attn1", onlyCross
	bb.norm2 = nn.LoadLayerNorm(p, "norm2", dim, blockLNEps)
	bb.attn2 = loadAttention(p.Sub("attn2"), dim, crossDim, inner, heads, false)
	bb.attn2.site = site
	bb.attn2.site.Name, bb.attn2.site.Cross = name+".attn2", true
	if elite {
		a2 := p.Sub("attn2")
		bb.attn2.kLocal = nn.LoadLinear(a2, "to_k_local", inner, crossDim, false)
		bb.attn2.vLocal = nn.LoadLinear(a2, "to_v_local", inner, crossDim, false)
	}
	bb.norm3 = nn.LoadLayerNorm(p, "norm3", dim, blockLNEps)
	ffInner := 4 * dim // FeedForward mult 4
	bb.ff = feedForward{
		mlp:   nn.LoadMLP(p, "ff.net.0.proj", "ff.net.2", dim, ffInner, tensor.ActNone, true),
		inner: ffInner,
		name:  name + ".ff",
	}
	return bb
}

// loadAttention reads to_q/to_k/to_v (no bias: SD's attention_bias false)
// and to_out.0 (with bias), and joins q, k, v of a self-attention for one
// projection GEMM (layers reading the context are joined UNet-wide, see
// joinContextProjections).
func loadAttention(p *nn.Vars, dim, kvDim, inner, heads int, self bool) attention {
	a := attention{
		Attention: nn.LoadAttention(p, nn.AttnSpec{
			Names: nn.DiffusersAttnNames, Dim: dim, KVDim: kvDim, Heads: heads, Inner: inner, OutBias: true,
		}),
		prefix: p.Path(""),
	}
	if self {
		ws := []*tensor.Tensor{a.Q.W, a.K.W, a.V.W}
		a.qkv = p.Fuse([]string{"to_q.weight", "to_k.weight", "to_v.weight"}, ws)
		a.Q.W, a.K.W, a.V.W = ws[0], ws[1], ws[2]
	}
	return a
}

// forward maps x [B, N, C] (not freed) to a new [B, N, C].
func (bb *basicBlock) forward(b tensor.Backend, x, ctx *tensor.Tensor, f *fwd, h, w int) *tensor.Tensor {
	n := bb.norm1.Forward(b, x)
	kv := n
	if bb.onlyCross {
		kv = ctx
	}
	x1 := bb.attn1.forward(b, n, kv, x, f, h, w)
	b.Free(n)
	n = bb.norm2.Forward(b, x1)
	x2 := bb.attn2.forward(b, n, ctx, x1, f, h, w)
	b.Free(n, x1)
	n = bb.norm3.Forward(b, x2)
	x3 := bb.ff.forward(b, n, x2, f.trace, f.chunk)
	b.Free(n, x2)
	if f.trace != nil {
		f.trace(bb.name, x3)
	}
	return x3
}

// transformer2D is a Transformer2DModel on continuous NHWC input.
type transformer2D struct {
	norm            nn.GroupNorm
	projIn, projOut nn.Linear
	blocks          []*basicBlock
	inner           int
	name            string
}

// transformerSpec sizes a transformer2D.
type transformerSpec struct {
	channels, heads, layers, crossDim, groups int
	onlyCross, linearProj                     bool
	elite                                     bool    // attn2 has ELITE's local branch
	site                                      nn.Site // Block, Index, Level
}

func loadTransformer(p *nn.Vars, name string, s transformerSpec) *transformer2D {
	headDim := s.channels / s.heads // diffusers: out_channels // num_attention_heads
	inner := s.heads * headDim
	t := &transformer2D{name: name, inner: inner}
	t.norm = nn.LoadGroupNorm(p, "norm", s.channels, s.groups, transformerGNEps)
	if s.linearProj {
		t.projIn = nn.LoadLinear(p, "proj_in", inner, s.channels, true)
		t.projOut = nn.LoadLinear(p, "proj_out", s.channels, inner, true)
	} else {
		t.projIn = nn.LoadPointwise(p, "proj_in", inner, s.channels)
		t.projOut = nn.LoadPointwise(p, "proj_out", s.channels, inner)
	}
	for d := range s.layers {
		bn := tname(name, d)
		t.blocks = append(t.blocks, loadBasicBlock(p.Sub(tname("", d)), bn, inner, s.heads, headDim, s.crossDim, s.onlyCross, s.elite, s.site))
	}
	return t
}

func tname(prefix string, d int) string {
	s := "transformer_blocks." + itoa(d)
	if prefix == "" {
		return s
	}
	return prefix + "." + s
}

// forward maps x [B, H, W, C] (not freed) to a new [B, H, W, C].
func (t *transformer2D) forward(b tensor.Backend, x, ctx *tensor.Tensor, f *fwd, nb, h, w, c int) *tensor.Tensor {
	n := t.norm.Forward(b, x, false)
	hs := t.projIn.Forward(b, b.Reshape(n, nb, h*w, c), tensor.Epilogue{})
	b.Free(n)
	for _, bb := range t.blocks {
		next := bb.forward(b, hs, ctx, f, h, w)
		b.Free(hs)
		hs = next
	}
	out := t.projOut.Forward(b, hs, tensor.Epilogue{Residual: x})
	b.Free(hs)
	return nn.Relabel(b, out, nb, h, w, c)
}
