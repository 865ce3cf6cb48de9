// weights.go lists the subject encoder's tensors (blipdiffusion.md §12.2)
// and loads them: the same construction walk serves Tensors (names and
// shapes only) and Load (checked tensors).

package blip2

import (
	"errors"
	"fmt"

	"harmony/engine/tensor"
)

type linear struct{ w, b *tensor.Tensor } // nn.Linear: w [out, in], b [out] (nil without bias)
type norm struct{ g, b *tensor.Tensor }   // nn.LayerNorm weight and bias

// getter fetches tensors by state-dict name and shape, recording each
// request.
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

func build(cfg Config, g *getter) *QFormer {
	m := &QFormer{Config: cfg}
	m.Vision = buildVision(cfg.Vision, g)
	q := cfg.QFormer
	d := q.Hidden
	m.queryTokens = g.get("query_tokens", 1, cfg.NumQueryTokens, d)
	m.wordEmb = g.get("embeddings.word_embeddings.weight", q.VocabSize, d)
	m.posEmb = g.get("embeddings.position_embeddings.weight", q.MaxPositions, d)
	m.embLN = g.norm("embeddings.LayerNorm", d)
	for i := range q.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", i)
		l := qLayer{
			q:        g.linear(p+"attention.attention.query", d, d),
			k:        g.linear(p+"attention.attention.key", d, d),
			v:        g.linear(p+"attention.attention.value", d, d),
			attnOut:  g.linear(p+"attention.output.dense", d, d),
			attnLN:   g.norm(p+"attention.output.LayerNorm", d),
			inter:    g.linear(p+"intermediate.dense", q.Intermediate, d),
			out:      g.linear(p+"output.dense", d, q.Intermediate),
			outLN:    g.norm(p+"output.LayerNorm", d),
			interQ:   g.linear(p+"intermediate_query.dense", q.Intermediate, d),
			outQ:     g.linear(p+"output_query.dense", d, q.Intermediate),
			outQLN:   g.norm(p+"output_query.LayerNorm", d),
			hasCross: q.HasCrossAttention(i),
		}
		if l.hasCross {
			l.cq = g.linear(p+"crossattention.attention.query", d, d)
			l.ck = g.linear(p+"crossattention.attention.key", d, q.EncoderHidden)
			l.cv = g.linear(p+"crossattention.attention.value", d, q.EncoderHidden)
			l.crossOut = g.linear(p+"crossattention.output.dense", d, d)
			l.crossLN = g.norm(p+"crossattention.output.LayerNorm", d)
		}
		m.layers = append(m.layers, l)
	}
	m.proj = projLayer{
		ln:     g.norm("proj_layer.LayerNorm", d),
		dense1: g.linear("proj_layer.dense1", ProjExpansion*d, d),
		dense2: g.linear("proj_layer.dense2", d, ProjExpansion*d),
	}
	return m
}

func buildVision(cfg VisionConfig, g *getter) *VisionModel {
	d := cfg.Hidden
	p := "visual_encoder."
	m := &VisionModel{Config: cfg}
	m.patch = g.get(p+"embeddings.patch_embedding.weight", d, ImageChannels, cfg.PatchSize, cfg.PatchSize)
	m.class = g.get(p+"embeddings.class_embedding", 1, 1, d)
	m.pos = g.get(p+"embeddings.position_embedding", 1, cfg.Positions(), d)
	m.preLN = g.norm(p+"pre_layernorm", d)
	for i := range cfg.Layers {
		lp := fmt.Sprintf("%sencoder.layers.%d.", p, i)
		l := vLayer{
			ln1:  g.norm(lp+"layer_norm1", d),
			ln2:  g.norm(lp+"layer_norm2", d),
			qkvW: g.get(lp+"self_attn.qkv.weight", 3*d, d),
			proj: g.linear(lp+"self_attn.projection", d, d),
			fc1:  g.linear(lp+"mlp.fc1", cfg.Intermediate, d),
			fc2:  g.linear(lp+"mlp.fc2", d, cfg.Intermediate),
		}
		if cfg.QKVBias {
			l.qkvB = g.get(lp+"self_attn.qkv.bias", 3*d)
		}
		m.layers = append(m.layers, l)
	}
	m.postLN = g.norm(p+"post_layernorm", d)
	return m
}

// Tensors lists every state-dict name the model reads with the shape the
// config implies (the int64 position_ids buffer is not read).
func Tensors(cfg Config) map[string][]int {
	g := &getter{shapes: map[string][]int{}}
	build(cfg, g)
	return g.shapes
}

// Load checks every tensor the model needs for presence and shape before
// anything runs; the error joins a *tensor.MissingError per problem.
func Load(w *tensor.Weights, cfg Config) (*QFormer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &getter{w: w, shapes: map[string][]int{}}
	m := build(cfg, g)
	if len(g.errs) > 0 {
		return nil, fmt.Errorf("blip2: load: %w", errors.Join(g.errs...))
	}
	return m, nil
}
