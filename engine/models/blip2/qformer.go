// Package blip2 implements BLIP-Diffusion's subject encoder: the BLIP-2
// vision encoder, the Q-Former and the ProjLayer (blipdiffusion.md §5–6),
// written against tensor.Backend and sized from config.json.
//
// qformer.go implements diffusers' Blip2QFormerModel as BLIP-Diffusion
// calls it (blipdiffusion.md §6): learned queries and the subject's BERT
// tokens share self-attention, the query rows alone cross-attend to the
// image embeddings, query and text rows have separate FFNs (post-LN, BERT
// style), and the ProjLayer turns the query outputs into the subject
// embeddings the text encoder inserts.
package blip2

import (
	"fmt"
	"math"

	"harmony/engine/tensor"
)

// QFormer is the loaded subject encoder: vision encoder, Q-Former and
// ProjLayer. Its tensors belong to the Weights it was loaded from.
type QFormer struct {
	Config Config
	Vision *VisionModel

	queryTokens *tensor.Tensor // query_tokens [1, Q, D]
	wordEmb     *tensor.Tensor // embeddings.word_embeddings.weight [V, D]
	posEmb      *tensor.Tensor // embeddings.position_embeddings.weight [P, D]
	embLN       norm           // embeddings.LayerNorm
	layers      []qLayer
	proj        projLayer
}

// qLayer is one Blip2QFormerLayer.
type qLayer struct {
	q, k, v, attnOut linear // attention.attention.{query,key,value}, attention.output.dense
	attnLN           norm   // attention.output.LayerNorm
	hasCross         bool   // layer index % cross_attention_frequency == 0
	cq, ck, cv       linear // crossattention.attention.* (k, v read the image width)
	crossOut         linear // crossattention.output.dense
	crossLN          norm   // crossattention.output.LayerNorm
	inter, out       linear // text-row FFN: intermediate.dense, output.dense
	outLN            norm   // output.LayerNorm
	interQ, outQ     linear // query-row FFN: intermediate_query.dense, output_query.dense
	outQLN           norm   // output_query.LayerNorm
}

// projLayer is x + dense2(QuickGELU(dense1(LayerNorm(x)))).
type projLayer struct {
	ln             norm
	dense1, dense2 linear
}

// Trace keeps the intermediates of one Forward call (golden checks,
// debugging). The caller frees them with Free.
type Trace struct {
	Vision      VisionTrace
	ImageEmbeds *tensor.Tensor   // [B, 1+P, Dv] vision last_hidden_state (post_layernorm)
	Embeddings  *tensor.Tensor   // [B, Q+L, D] Q-Former embeddings output
	Layers      []*tensor.Tensor // [B, Q+L, D] each Q-Former layer's output
	QueryOutput *tensor.Tensor   // [B, Q, D] the query rows of the last layer
}

// Free releases the kept tensors.
func (tr *Trace) Free(b tensor.Backend) {
	tr.Vision.Free(b)
	b.Free(tr.ImageEmbeds, tr.Embeddings, tr.QueryOutput)
	b.Free(tr.Layers...)
	*tr = Trace{}
}

// Encode returns the projected query embeddings [B, Q, D] (the subject
// embeddings) for pixels [B, H, W, 3] NHWC and the subject's BERT token
// rows textIDs (B rows of equal length L, padded; nil for no text) with
// attnMask (1 real token, 0 padding; nil for all ones).
func (m *QFormer) Encode(b tensor.Backend, pixels *tensor.Tensor, textIDs, attnMask [][]int32) (*tensor.Tensor, error) {
	return m.Forward(b, pixels, textIDs, attnMask, nil)
}

// Forward is Encode that keeps intermediates in tr when tr is not nil.
func (m *QFormer) Forward(b tensor.Backend, pixels *tensor.Tensor, textIDs, attnMask [][]int32, tr *Trace) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config.QFormer
	if pixels == nil || len(pixels.Shape) != 4 {
		return nil, fmt.Errorf("blip2: encode: pixels %v must be [B, H, W, 3]", pixels)
	}
	nb, nq := pixels.Shape[0], m.Config.NumQueryTokens
	flat, keyBias, nt, err := m.textInputs(nb, textIDs, attnMask)
	if err != nil {
		return nil, err
	}

	var vtr *VisionTrace
	if tr != nil {
		vtr = &tr.Vision
	}
	img, err := m.Vision.Forward(b, pixels, vtr)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		tr.ImageEmbeds = img
	}

	x := m.embed(b, nb, nt, flat)
	if tr != nil {
		tr.Embeddings = x
	}
	kb := b.FromF32("qformer.key_bias", keyBias, nb, nq+nt)
	scale := float32(1 / math.Sqrt(float64(cfg.Hidden/cfg.Heads)))
	self := tensor.AttnOpts{Heads: cfg.Heads, Scale: scale, KeyBias: kb}
	cross := tensor.AttnOpts{Heads: cfg.Heads, Scale: scale} // every image token is valid: no mask
	for i := range m.layers {
		y := m.layers[i].forward(b, x, img, nq, self, cross, cfg)
		if tr != nil {
			tr.Layers = append(tr.Layers, y)
		} else {
			b.Free(x)
		}
		x = y
	}
	b.Free(kb)
	if tr == nil {
		b.Free(img)
	}

	qo := b.Slice(x, 1, 0, nq)
	if tr != nil {
		tr.QueryOutput = qo
	} else {
		b.Free(x)
	}
	out := m.proj.forward(b, qo)
	if tr == nil {
		b.Free(qo)
	}
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
	x := repeatBatch(b, m.queryTokens, nb) // [B, Q, D]
	if nt > 0 {
		words := b.Embedding(m.wordEmb, flat) // [B·L, D]
		posIDs := make([]int32, nt)
		for i := range posIDs {
			posIDs[i] = int32(i)
		}
		pos := b.Embedding(m.posEmb, posIDs) // [L, D]
		text := b.Add(b.Reshape(words, nb, nt, cfg.Hidden), pos)
		b.Free(words, pos)
		q := x
		x = b.Concat(1, q, text)
		if q != m.queryTokens {
			b.Free(q)
		}
		b.Free(text)
	}
	out := b.LayerNorm(x, m.embLN.g, m.embLN.b, cfg.LayerNormEps)
	if x != m.queryTokens {
		b.Free(x)
	}
	return out
}

// forward is one Q-Former layer over x [B, Q+L, D] (§6.3).
func (l *qLayer) forward(b tensor.Backend, x, img *tensor.Tensor, nq int, self, cross tensor.AttnOpts, cfg QFormerConfig) *tensor.Tensor {
	eps := cfg.LayerNormEps
	// 1. Self-attention over queries and text, padding masked.
	q := b.Linear(x, l.q.w, l.q.b, tensor.Epilogue{})
	k := b.Linear(x, l.k.w, l.k.b, tensor.Epilogue{})
	v := b.Linear(x, l.v.w, l.v.b, tensor.Epilogue{})
	a, _ := b.Attention(q, k, v, self)
	b.Free(q, k, v)
	all := addNorm(b, a, l.attnOut, x, l.attnLN, eps)
	b.Free(a)

	// 2. Split the query rows from the text rows.
	aq, at := all, (*tensor.Tensor)(nil)
	if nt := x.Shape[1] - nq; nt > 0 {
		aq, at = b.Slice(all, 1, 0, nq), b.Slice(all, 1, nq, nq+nt)
		b.Free(all)
	}

	// 3. Cross-attention of the query rows to the image embeddings.
	if l.hasCross {
		cq := b.Linear(aq, l.cq.w, l.cq.b, tensor.Epilogue{})
		ck := b.Linear(img, l.ck.w, l.ck.b, tensor.Epilogue{})
		cv := b.Linear(img, l.cv.w, l.cv.b, tensor.Epilogue{})
		c, _ := b.Attention(cq, ck, cv, cross)
		b.Free(cq, ck, cv)
		cqOut := addNorm(b, c, l.crossOut, aq, l.crossLN, eps)
		b.Free(c, aq)
		aq = cqOut
	}

	// 4–5. Separate FFNs for query and text rows.
	fq := ffn(b, aq, l.interQ, l.outQ, l.outQLN, cfg)
	b.Free(aq)
	if at == nil {
		return fq
	}
	ft := ffn(b, at, l.inter, l.out, l.outLN, cfg)
	b.Free(at)
	y := b.Concat(1, fq, ft)
	b.Free(fq, ft)
	return y
}

// addNorm is BERT's output block: LayerNorm(dense(h) + residual).
func addNorm(b tensor.Backend, h *tensor.Tensor, dense linear, residual *tensor.Tensor, ln norm, eps float32) *tensor.Tensor {
	r := b.Linear(h, dense.w, dense.b, tensor.Epilogue{Residual: residual})
	y := b.LayerNorm(r, ln.g, ln.b, eps)
	b.Free(r)
	return y
}

// ffn is LayerNorm(W2·act(W1·x + b1) + b2 + x).
func ffn(b tensor.Backend, x *tensor.Tensor, inter, out linear, ln norm, cfg QFormerConfig) *tensor.Tensor {
	f := b.Linear(x, inter.w, inter.b, tensor.Epilogue{Act: cfg.Act})
	y := addNorm(b, f, out, x, ln, cfg.LayerNormEps)
	b.Free(f)
	return y
}

// forward is ProjLayer (§6.4): pre-norm residual MLP with QuickGELU, no
// trailing norm (dropout is off at inference).
func (p *projLayer) forward(b tensor.Backend, x *tensor.Tensor) *tensor.Tensor {
	h := b.LayerNorm(x, p.ln.g, p.ln.b, ProjLayerEps)
	f := b.Linear(h, p.dense1.w, p.dense1.b, tensor.Epilogue{Act: tensor.ActQuickGELU})
	b.Free(h)
	y := b.Linear(f, p.dense2.w, p.dense2.b, tensor.Epilogue{Residual: x})
	b.Free(f)
	return y
}
