// Package clip implements diffusers' ContextCLIPTextModel,
// BLIP-Diffusion's text encoder: the CLIP text
// transformer whose embedding step can insert context embeddings (the
// subject embeddings from engine/models/blip2) into the token sequence.
// It is written against tensor.Backend and sized from config.json.
//
// model.go holds the model, its tensor list and its forward pass.
package clip

import (
	"errors"
	"fmt"
	"strconv"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// prefix is where the text transformer lives in the state dict.
const prefix = "text_model"

// TextModel is a loaded text encoder. It owns the Weights it was loaded
// from: Free releases them.
type TextModel struct {
	Config Config
	// Trace, when set, receives intermediate tensors by module path
	// ("embeddings": token (+ context) + position embeddings,
	// "encoder.layers.N": each layer's output), all [B, S, D].
	Trace nn.Trace

	weights  *tensor.Weights
	tokenEmb nn.Embedding // embeddings.token_embedding.weight [V, D]
	posEmb   nn.Embedding // embeddings.position_embedding.weight [P, D]
	layers   []nn.EncoderLayer
	final    nn.LayerNorm // final_layer_norm
}

func build(cfg Config, v *nn.Vars) *TextModel { return buildText(cfg, v, FinalLayerNormEps) }

// buildText reads the text transformer with the given final_layer_norm eps
// (diffusers' context model fixes it, transformers' reads the config).
func buildText(cfg Config, v *nn.Vars, finalEps float32) *TextModel {
	d := cfg.Hidden
	m := &TextModel{Config: cfg}
	v = v.Sub(prefix)
	m.tokenEmb = nn.LoadEmbedding(v, "embeddings.token_embedding.weight", cfg.VocabSize, d)
	m.posEmb = nn.LoadEmbedding(v, "embeddings.position_embedding.weight", cfg.MaxPositions, d)
	for i := range cfg.Layers {
		m.layers = append(m.layers, loadEncoderLayer(v.At("encoder.layers", i), d, cfg.Intermediate, cfg.Heads, cfg.Act, cfg.LayerNormEps))
	}
	m.final = nn.LoadLayerNorm(v, "final_layer_norm", d, finalEps)
	return m
}

// Tensors lists every state-dict name the model reads with the shape the
// config implies (the int64 position_ids buffer is not read: positions are
// 0..S−1).
func Tensors(cfg Config) map[string][]int {
	v := nn.Recorder()
	build(cfg, v)
	return v.Shapes()
}

// Load checks every tensor the model needs for presence and shape before
// anything runs; the error wraps the first *tensor.MissingError. The model
// owns w from then on.
func Load(b tensor.Backend, cfg Config, w *tensor.Weights) (*TextModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := nn.NewVars(b, w)
	m := build(cfg, v)
	if err := v.Finish("clip"); err != nil {
		return nil, err
	}
	m.weights = w
	return m, nil
}

// Free releases the weights.
func (m *TextModel) Free(b tensor.Backend) {
	if m.weights != nil {
		m.weights.Free(b)
		m.weights = nil
	}
}

// Encode runs the text encoder and returns last_hidden_state [B, S, D]
// after final_layer_norm, S = len(ids[r]) + (context length, or 0).
//
// ids are B rows of equal length. ctx is nil (plain text: the negative
// prompt) or [B, Lc, D] F32 context embeddings, inserted into row r before
// the token at ctxBeginPos[r] (0 ≤ pos ≤ len(ids[r])); every position then
// gets position embedding 0..S−1 and the causal mask spans all S rows,
// context included. No padding mask is applied.
func (m *TextModel) Encode(b tensor.Backend, ids [][]int32, ctx *tensor.Tensor, ctxBeginPos []int) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	x, err := m.embed(b, ids, ctx, ctxBeginPos, false)
	if err != nil {
		return nil, err
	}
	return m.encode(b, x)
}

// EncodeInjected runs the text encoder with words injected at the token
// embedding level, as ELITE's inj_forward_text: in row r the token
// embeddings at index[r]..index[r]+L−1 become words[r] (the rest shift right
// by L−1 and are cut to the row's length; with L = 1 only the placeholder's
// row changes), then position embeddings and the layers as in Encode.
// words is [B, L, D] F32; index[r] < 0 leaves row r plain (an unconditional
// prompt in the same batch). Returns [B, len(ids[r]), D].
func (m *TextModel) EncodeInjected(b tensor.Backend, ids [][]int32, words *tensor.Tensor, index []int) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	x, err := m.embed(b, ids, words, index, true)
	if err != nil {
		return nil, err
	}
	return m.encode(b, x)
}

// encode runs the layers and the final LayerNorm on the embeddings x
// (freed).
func (m *TextModel) encode(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	m.Trace.Record("embeddings", x)
	attn := tensor.AttnOpts{Causal: true}
	for i := range m.layers {
		y := m.layers[i].Forward(b, x, attn)
		b.Free(x)
		m.Trace.Record("encoder.layers."+strconv.Itoa(i), y)
		x = y
	}
	out := m.final.Forward(b, x)
	b.Free(x)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// embed builds the input sequence [B, S, D] (ContextCLIPTextEmbeddings):
// ctx inserted before ctxBeginPos[r], or with replace written over the
// tokens from there (ELITE's injection; S stays the token count, a negative
// position leaves the row alone).
func (m *TextModel) embed(b tensor.Backend, ids [][]int32, ctx *tensor.Tensor, ctxBeginPos []int, replace bool) (*tensor.Tensor, error) {
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
		nc = ctx.Shape[1]
		for r, p := range ctxBeginPos {
			if replace && (p >= nt || p+nc > nt) {
				return nil, fmt.Errorf("clip: encode: %d injected words at index %d of row %d do not fit in %d tokens", nc, p, r, nt)
			}
			if !replace && (p < 0 || p > nt) {
				return nil, fmt.Errorf("clip: encode: context position %d of row %d outside [0, %d]", p, r, nt)
			}
		}
	}
	ns := nt + nc
	if replace {
		ns = nt
	}
	if ns > m.Config.MaxPositions {
		return nil, fmt.Errorf("clip: encode: sequence of %d tokens exceeds max_position_embeddings %d", ns, m.Config.MaxPositions)
	}

	tok := m.tokenEmb.Forward(b, flat) // [B·T, D]
	seq := tok
	if ctx != nil {
		// Row r becomes tok[r, :p] ++ ctx[r] ++ tok[r, p:], gathered by one
		// concatenation of contiguous row windows.
		var parts []*tensor.Tensor
		for r, p := range ctxBeginPos {
			if replace {
				if p < 0 {
					parts = append(parts, b.View(tok, r*nt*d, nt, d))
					continue
				}
				if p > 0 {
					parts = append(parts, b.View(tok, r*nt*d, p, d))
				}
				parts = append(parts, b.View(ctx, r*nc*d, nc, d))
				if rest := nt - p - nc; rest > 0 {
					parts = append(parts, b.View(tok, (r*nt+p+1)*d, rest, d))
				}
				continue
			}
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
	pos := m.posEmb.Positions(b, ns) // [S, D]
	x := b.Add(b.Reshape(seq, nb, ns, d), pos)
	b.Free(seq, pos)
	if err := b.Err(); err != nil {
		b.Free(x)
		return nil, err
	}
	return x, nil
}
