// Package clip implements diffusers' ContextCLIPTextModel
// (blipdiffusion.md §7), BLIP-Diffusion's text encoder: the CLIP text
// transformer whose embedding step can insert context embeddings (the
// subject embeddings from engine/models/blip2) into the token sequence.
// It is written against tensor.Backend and sized from config.json.
//
// model.go holds the model, its tensor list and its forward pass.
package clip

import (
	"errors"
	"fmt"
	"math"

	"harmony/engine/tensor"
)

// prefix is where the text transformer lives in the state dict.
const prefix = "text_model."

// TextModel is a loaded text encoder. Its tensors belong to the Weights it
// was loaded from; the model never frees them.
type TextModel struct {
	Config Config

	tokenEmb *tensor.Tensor // embeddings.token_embedding.weight [V, D]
	posEmb   *tensor.Tensor // embeddings.position_embedding.weight [P, D]
	layers   []layer
	final    norm // final_layer_norm
}

type linear struct{ w, b *tensor.Tensor } // PyTorch nn.Linear: w [out, in], b [out]
type norm struct{ g, b *tensor.Tensor }   // nn.LayerNorm weight and bias

type layer struct {
	ln1, ln2     norm
	q, k, v, out linear // self_attn.{q,k,v,out}_proj
	fc1, fc2     linear // mlp
}

// getter fetches tensors by state-dict name and shape, recording each
// request, so that Tensors and Load walk the same list.
type getter struct {
	w      *tensor.Weights // nil: record only
	shapes map[string][]int
	errs   []error
}

func (g *getter) get(name string, shape ...int) *tensor.Tensor {
	g.shapes[name] = shape
	if g.w == nil {
		return nil
	}
	t, err := g.w.Shaped(name, shape...)
	if err != nil {
		g.errs = append(g.errs, err)
	}
	return t
}

func (g *getter) linear(name string, out, in int) linear {
	return linear{g.get(name+".weight", out, in), g.get(name+".bias", out)}
}

func (g *getter) norm(name string, c int) norm {
	return norm{g.get(name+".weight", c), g.get(name+".bias", c)}
}

func build(cfg Config, g *getter) *TextModel {
	d := cfg.Hidden
	m := &TextModel{Config: cfg}
	m.tokenEmb = g.get(prefix+"embeddings.token_embedding.weight", cfg.VocabSize, d)
	m.posEmb = g.get(prefix+"embeddings.position_embedding.weight", cfg.MaxPositions, d)
	for i := range cfg.Layers {
		p := fmt.Sprintf("%sencoder.layers.%d.", prefix, i)
		m.layers = append(m.layers, layer{
			ln1: g.norm(p+"layer_norm1", d),
			ln2: g.norm(p+"layer_norm2", d),
			q:   g.linear(p+"self_attn.q_proj", d, d),
			k:   g.linear(p+"self_attn.k_proj", d, d),
			v:   g.linear(p+"self_attn.v_proj", d, d),
			out: g.linear(p+"self_attn.out_proj", d, d),
			fc1: g.linear(p+"mlp.fc1", cfg.Intermediate, d),
			fc2: g.linear(p+"mlp.fc2", d, cfg.Intermediate),
		})
	}
	m.final = g.norm(prefix+"final_layer_norm", d)
	return m
}

// Tensors lists every state-dict name the model reads with the shape the
// config implies (the int64 position_ids buffer is not read: positions are
// 0..S−1).
func Tensors(cfg Config) map[string][]int {
	g := &getter{shapes: map[string][]int{}}
	build(cfg, g)
	return g.shapes
}

// Load checks every tensor the model needs for presence and shape before
// anything runs; the error joins a *tensor.MissingError per problem.
func Load(w *tensor.Weights, cfg Config) (*TextModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &getter{w: w, shapes: map[string][]int{}}
	m := build(cfg, g)
	if len(g.errs) > 0 {
		return nil, fmt.Errorf("clip: load: %w", errors.Join(g.errs...))
	}
	return m, nil
}

// Trace keeps intermediate activations of one Forward call (golden checks,
// debugging). The caller frees them with Free.
type Trace struct {
	Embeddings *tensor.Tensor   // [B, S, D] token (+ context) + position embeddings
	Layers     []*tensor.Tensor // [B, S, D] output of each encoder layer
}

// Free releases the kept tensors.
func (tr *Trace) Free(b tensor.Backend) {
	b.Free(tr.Embeddings)
	b.Free(tr.Layers...)
	*tr = Trace{}
}

// Encode runs the text encoder and returns last_hidden_state [B, S, D]
// after final_layer_norm, S = len(ids[r]) + (context length, or 0).
//
// ids are B rows of equal length. ctx is nil (plain text: the negative
// prompt) or [B, Lc, D] F32 context embeddings, inserted into row r before
// the token at ctxBeginPos[r] (0 ≤ pos ≤ len(ids[r])); every position then
// gets position embedding 0..S−1 and the causal mask spans all S rows,
// context included (§7.1–7.2). No padding mask is applied.
func (m *TextModel) Encode(b tensor.Backend, ids [][]int32, ctx *tensor.Tensor, ctxBeginPos []int) (*tensor.Tensor, error) {
	return m.Forward(b, ids, ctx, ctxBeginPos, nil)
}

// Forward is Encode that keeps intermediates in tr when tr is not nil.
func (m *TextModel) Forward(b tensor.Backend, ids [][]int32, ctx *tensor.Tensor, ctxBeginPos []int, tr *Trace) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	x, err := m.embed(b, ids, ctx, ctxBeginPos)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		tr.Embeddings = x
	}
	cfg := m.Config
	attn := tensor.AttnOpts{
		Heads:  cfg.Heads,
		Scale:  float32(1 / math.Sqrt(float64(cfg.Hidden/cfg.Heads))),
		Causal: true,
	}
	for i := range m.layers {
		y := m.layers[i].forward(b, x, attn, cfg.Act, cfg.LayerNormEps)
		if tr != nil {
			tr.Layers = append(tr.Layers, y)
		} else {
			b.Free(x)
		}
		x = y
	}
	out := b.LayerNorm(x, m.final.g, m.final.b, FinalLayerNormEps)
	if tr == nil {
		b.Free(x)
	}
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// embed builds the input sequence [B, S, D] (ContextCLIPTextEmbeddings).
func (m *TextModel) embed(b tensor.Backend, ids [][]int32, ctx *tensor.Tensor, ctxBeginPos []int) (*tensor.Tensor, error) {
	d := m.Config.Hidden
	nb := len(ids)
	if nb == 0 || len(ids[0]) == 0 {
		return nil, errors.New("clip: encode: no token ids")
	}
	nt := len(ids[0])
	flat := make([]int32, 0, nb*nt)
	for r, row := range ids {
		if len(row) != nt {
			return nil, fmt.Errorf("clip: encode: id row %d has %d tokens, row 0 has %d", r, len(row), nt)
		}
		for _, id := range row {
			if id < 0 || int(id) >= m.Config.VocabSize {
				return nil, fmt.Errorf("clip: encode: token id %d outside the vocabulary of %d", id, m.Config.VocabSize)
			}
		}
		flat = append(flat, row...)
	}
	nc := 0
	if ctx != nil {
		if len(ctx.Shape) != 3 || ctx.Shape[0] != nb || ctx.Shape[2] != d || ctx.DType != tensor.F32 {
			return nil, fmt.Errorf("clip: encode: context %v must be f32 [%d, Lc, %d]", ctx, nb, d)
		}
		if len(ctxBeginPos) != nb {
			return nil, fmt.Errorf("clip: encode: %d context positions for %d rows", len(ctxBeginPos), nb)
		}
		for r, p := range ctxBeginPos {
			if p < 0 || p > nt {
				return nil, fmt.Errorf("clip: encode: context position %d of row %d outside [0, %d]", p, r, nt)
			}
		}
		nc = ctx.Shape[1]
	}
	ns := nt + nc
	if ns > m.Config.MaxPositions {
		return nil, fmt.Errorf("clip: encode: sequence of %d tokens exceeds max_position_embeddings %d", ns, m.Config.MaxPositions)
	}

	tok := b.Embedding(m.tokenEmb, flat) // [B·T, D]
	seq := tok
	if ctx != nil {
		// Row r becomes tok[r, :p] ++ ctx[r] ++ tok[r, p:], gathered by one
		// concatenation of contiguous row windows.
		var parts []*tensor.Tensor
		for r, p := range ctxBeginPos {
			if p > 0 {
				parts = append(parts, b.View(tok, r*nt*d, p, d))
			}
			if nc > 0 {
				parts = append(parts, b.View(ctx, r*nc*d, nc, d))
			}
			if p < nt {
				parts = append(parts, b.View(tok, (r*nt+p)*d, nt-p, d))
			}
		}
		seq = b.Concat(0, parts...) // [B·S, D]
		b.Free(tok)
	}
	posIDs := make([]int32, ns)
	for i := range posIDs {
		posIDs[i] = int32(i)
	}
	pos := b.Embedding(m.posEmb, posIDs) // [S, D]
	x := b.Add(b.Reshape(seq, nb, ns, d), pos)
	b.Free(seq, pos)
	if err := b.Err(); err != nil {
		b.Free(x)
		return nil, err
	}
	return x, nil
}

// forward is one pre-LN CLIPEncoderLayer:
// h = x + out_proj(attn(LN1(x))); y = h + fc2(act(fc1(LN2(h)))).
func (l *layer) forward(b tensor.Backend, x *tensor.Tensor, attn tensor.AttnOpts, act tensor.Act, eps float32) *tensor.Tensor {
	h := b.LayerNorm(x, l.ln1.g, l.ln1.b, eps)
	q := b.Linear(h, l.q.w, l.q.b, tensor.Epilogue{})
	k := b.Linear(h, l.k.w, l.k.b, tensor.Epilogue{})
	v := b.Linear(h, l.v.w, l.v.b, tensor.Epilogue{})
	b.Free(h)
	a, _ := b.Attention(q, k, v, attn)
	b.Free(q, k, v)
	r := b.Linear(a, l.out.w, l.out.b, tensor.Epilogue{Residual: x})
	b.Free(a)
	h = b.LayerNorm(r, l.ln2.g, l.ln2.b, eps)
	f := b.Linear(h, l.fc1.w, l.fc1.b, tensor.Epilogue{Act: act})
	b.Free(h)
	y := b.Linear(f, l.fc2.w, l.fc2.b, tensor.Epilogue{Residual: r})
	b.Free(f, r)
	return y
}
