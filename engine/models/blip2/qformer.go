// Package blip2 implements BLIP-Diffusion's subject encoder: the BLIP-2
// vision encoder, the Q-Former and the ProjLayer,
// written against tensor.Backend and sized from config.json.
//
// qformer.go implements diffusers' Blip2QFormerModel as BLIP-Diffusion
// calls it: learned queries and the subject's BERT
// tokens share self-attention, the query rows alone cross-attend to the
// image embeddings, query and text rows have separate FFNs (post-LN, BERT
// style), and the ProjLayer turns the query outputs into the subject
// embeddings the text encoder inserts.
package blip2

import (
	"fmt"
	"strconv"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// QFormer is the loaded subject encoder: vision encoder, Q-Former and
// ProjLayer. Its tensors belong to the Weights it was loaded from.
type QFormer struct {
	Config Config
	Vision *VisionModel
	// Trace, when set, receives intermediate tensors by module path: the
	// vision encoder's (see VisionModel.forward), "embeddings" (the
	// Q-Former's input [B, Q+L, D]), "encoder.layer.N" (each layer's
	// output) and "query_output" (the last layer's query rows [B, Q, D]).
	Trace nn.Trace

	weights     *tensor.Weights
	queryTokens *tensor.Tensor // query_tokens [1, Q, D]
	wordEmb     nn.Embedding   // embeddings.word_embeddings.weight [V, D]
	posEmb      nn.Embedding   // embeddings.position_embeddings.weight [P, D]
	embLN       nn.LayerNorm   // embeddings.LayerNorm
	layers      []qLayer
	proj        projLayer
}

// qLayer is one Blip2QFormerLayer (BERT style: each block's output is
// LayerNorm(block + residual)).
type qLayer struct {
	self    nn.Attention  // attention.attention.{query,key,value}, attention.output.dense
	selfLN  nn.LayerNorm  // attention.output.LayerNorm
	cross   *nn.Attention // crossattention.*, k and v reading the image width; nil unless layer index % cross_attention_frequency == 0
	crossLN nn.LayerNorm  // crossattention.output.LayerNorm
	ffn     nn.MLP        // text rows: intermediate.dense, output.dense
	ffnLN   nn.LayerNorm  // output.LayerNorm
	ffnQ    nn.MLP        // query rows: intermediate_query.dense, output_query.dense
	ffnQLN  nn.LayerNorm  // output_query.LayerNorm
}

// projLayer is x + dense2(QuickGELU(dense1(LayerNorm(x)))).
type projLayer struct {
	ln  nn.LayerNorm
	mlp nn.MLP
}

// Encode returns the projected query embeddings [B, Q, D] (the subject
// embeddings) for pixels [B, H, W, 3] NHWC and the subject's BERT token
// rows textIDs (B rows of equal length L, padded; nil for no text) with
// attnMask (1 real token, 0 padding; nil for all ones).
func (m *QFormer) Encode(b tensor.Backend, pixels *tensor.Tensor, textIDs, attnMask [][]int32) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if pixels == nil || len(pixels.Shape) != 4 {
		return nil, fmt.Errorf("blip2: encode: pixels %v must be [B, H, W, 3]", pixels)
	}
	nb, nq := pixels.Shape[0], m.Config.NumQueryTokens
	flat, keyBias, nt, err := m.textInputs(nb, textIDs, attnMask)
	if err != nil {
		return nil, err
	}
	img, err := m.Vision.forward(b, pixels, m.Trace)
	if err != nil {
		return nil, err
	}

	x := m.embed(b, nb, nt, flat)
	m.Trace.Record("embeddings", x)
	kb := b.FromF32("qformer.key_bias", keyBias, nb, nq+nt)
	for i := range m.layers {
		y := m.layers[i].forward(b, x, img, nq, kb)
		b.Free(x)
		m.Trace.Record("encoder.layer."+strconv.Itoa(i), y)
		x = y
	}
	b.Free(kb, img)

	qo := b.Slice(x, 1, 0, nq)
	b.Free(x)
	m.Trace.Record("query_output", qo)
	out := m.proj.forward(b, qo)
	b.Free(qo)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// textInputs checks the text rows and builds the flat ids and the
// self-attention key bias [B, Q+L]: 0 for the queries and real tokens,
// −10000 for padding ((1 − mask)·(−10000), the reference's additive form).
func (m *QFormer) textInputs(nb int, ids, mask [][]int32) (flat []int32, keyBias []float32, nt int, err error) {
	cfg := m.Config.QFormer
	nq := m.Config.NumQueryTokens
	if len(ids) > 0 {
		if len(ids) != nb {
			return nil, nil, 0, fmt.Errorf("blip2: encode: %d text rows for %d images", len(ids), nb)
		}
		nt = len(ids[0])
	}
	if nt > cfg.MaxPositions {
		return nil, nil, 0, fmt.Errorf("blip2: encode: %d text tokens exceed max_position_embeddings %d", nt, cfg.MaxPositions)
	}
	if mask != nil && len(mask) != len(ids) {
		return nil, nil, 0, fmt.Errorf("blip2: encode: %d attention mask rows for %d text rows", len(mask), len(ids))
	}
	keyBias = make([]float32, nb*(nq+nt))
	for r, row := range ids {
		if len(row) != nt {
			return nil, nil, 0, fmt.Errorf("blip2: encode: text row %d has %d tokens, row 0 has %d", r, len(row), nt)
		}
		for _, id := range row {
			if id < 0 || int(id) >= cfg.VocabSize {
				return nil, nil, 0, fmt.Errorf("blip2: encode: token id %d outside the vocabulary of %d", id, cfg.VocabSize)
			}
		}
		flat = append(flat, row...)
		if mask == nil {
			continue
		}
		if len(mask[r]) != nt {
			return nil, nil, 0, fmt.Errorf("blip2: encode: attention mask row %d has %d entries for %d tokens", r, len(mask[r]), nt)
		}
		for j, v := range mask[r] {
			if v != 0 && v != 1 {
				return nil, nil, 0, fmt.Errorf("blip2: encode: attention mask value %d is not 0 or 1", v)
			}
			keyBias[r*(nq+nt)+nq+j] = (1 - float32(v)) * -10000
		}
	}
	return flat, keyBias, nt, nil
}

// embed is Blip2TextEmbeddings: LayerNorm([queries ; word + position
// embeddings of the text]) → [B, Q+L, D]. Queries get no position.
func (m *QFormer) embed(b tensor.Backend, nb, nt int, flat []int32) *tensor.Tensor {
	cfg := m.Config.QFormer
	x := nn.RepeatBatch(b, m.queryTokens, nb) // [B, Q, D]
	if nt > 0 {
		words := m.wordEmb.Forward(b, flat) // [B·L, D]
		pos := m.posEmb.Positions(b, nt)    // [L, D]
		text := b.Add(b.Reshape(words, nb, nt, cfg.Hidden), pos)
		b.Free(words, pos)
		q := x
		x = b.Concat(1, q, text)
		if q != m.queryTokens {
			b.Free(q)
		}
		b.Free(text)
	}
	out := m.embLN.Forward(b, x)
	if x != m.queryTokens {
		b.Free(x)
	}
	return out
}

// forward is one Q-Former layer over x [B, Q+L, D]; keyBias masks
// the text padding in self-attention.
func (l *qLayer) forward(b tensor.Backend, x, img *tensor.Tensor, nq int, keyBias *tensor.Tensor) *tensor.Tensor {
	// 1. Self-attention over queries and text, padding masked.
	all := addNorm(b, l.self.Forward(b, x, x, x, tensor.AttnOpts{KeyBias: keyBias}), l.selfLN)

	// 2. Split the query rows from the text rows.
	aq, at := all, (*tensor.Tensor)(nil)
	if nt := x.Shape[1] - nq; nt > 0 {
		aq, at = b.Slice(all, 1, 0, nq), b.Slice(all, 1, nq, nq+nt)
		b.Free(all)
	}

	// 3. Cross-attention of the query rows to the image embeddings (every
	// image token is valid: no mask).
	if l.cross != nil {
		cq := addNorm(b, l.cross.Forward(b, aq, img, aq, tensor.AttnOpts{}), l.crossLN)
		b.Free(aq)
		aq = cq
	}

	// 4–5. Separate FFNs for query and text rows.
	fq := addNorm(b, l.ffnQ.Forward(b, aq, aq), l.ffnQLN)
	b.Free(aq)
	if at == nil {
		return fq
	}
	ft := addNorm(b, l.ffn.Forward(b, at, at), l.ffnLN)
	b.Free(at)
	y := b.Concat(1, fq, ft)
	b.Free(fq, ft)
	return y
}

// addNorm is the LayerNorm closing each BERT block; it takes r (block
// output + residual) and frees it.
func addNorm(b tensor.Backend, r *tensor.Tensor, ln nn.LayerNorm) *tensor.Tensor {
	y := ln.Forward(b, r)
	b.Free(r)
	return y
}

// forward is ProjLayer: pre-norm residual MLP with QuickGELU, no
// trailing norm (dropout is off at inference).
func (p *projLayer) forward(b tensor.Backend, x *tensor.Tensor) *tensor.Tensor {
	h := p.ln.Forward(b, x)
	y := p.mlp.Forward(b, h, x)
	b.Free(h)
	return y
}
