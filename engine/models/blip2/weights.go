// weights.go builds the subject encoder from its tensors
// (the qformer/ state dict, 679 tensors in the released file): one construction walk over nn.Vars serves
// Tensors (names and shapes only) and Load (checked tensors).

package blip2

import (
	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

func build(cfg Config, v *nn.Vars) *QFormer {
	m := &QFormer{Config: cfg}
	m.Vision = buildVision(cfg.Vision, v.Sub("visual_encoder"))
	q := cfg.QFormer
	d, eps := q.Hidden, q.LayerNormEps
	m.queryTokens = v.Get("query_tokens", 1, cfg.NumQueryTokens, d)
	m.wordEmb = nn.LoadEmbedding(v, "embeddings.word_embeddings.weight", q.VocabSize, d)
	m.posEmb = nn.LoadEmbedding(v, "embeddings.position_embeddings.weight", q.MaxPositions, d)
	m.embLN = nn.LoadLayerNorm(v, "embeddings.LayerNorm", d, eps)
	for i := range q.Layers {
		lv := v.At("encoder.layer", i)
		l := qLayer{
			self: nn.LoadAttention(lv.Sub("attention"), nn.AttnSpec{
				Names: nn.BERTAttnNames, Dim: d, Heads: q.Heads, QKVBias: true, OutBias: true,
			}),
			selfLN: nn.LoadLayerNorm(lv, "attention.output.LayerNorm", d, eps),
			ffn:    nn.LoadMLP(lv, "intermediate.dense", "output.dense", d, q.Intermediate, q.Act, false),
			ffnLN:  nn.LoadLayerNorm(lv, "output.LayerNorm", d, eps),
			ffnQ:   nn.LoadMLP(lv, "intermediate_query.dense", "output_query.dense", d, q.Intermediate, q.Act, false),
			ffnQLN: nn.LoadLayerNorm(lv, "output_query.LayerNorm", d, eps),
		}
		if q.HasCrossAttention(i) {
			a := nn.LoadAttention(lv.Sub("crossattention"), nn.AttnSpec{
				Names: nn.BERTAttnNames, Dim: d, KVDim: q.EncoderHidden, Heads: q.Heads, QKVBias: true, OutBias: true,
			})
			l.cross = &a
			l.crossLN = nn.LoadLayerNorm(lv, "crossattention.output.LayerNorm", d, eps)
		}
		m.layers = append(m.layers, l)
	}
	m.proj = projLayer{
		ln:  nn.LoadLayerNorm(v, "proj_layer.LayerNorm", d, ProjLayerEps),
		mlp: nn.LoadMLP(v.Sub("proj_layer"), "dense1", "dense2", d, ProjExpansion*d, tensor.ActQuickGELU, false),
	}
	return m
}

func buildVision(cfg VisionConfig, v *nn.Vars) *VisionModel {
	d, eps := cfg.Hidden, cfg.LayerNormEps
	m := &VisionModel{Config: cfg}
	m.patch = nn.Conv2d{W: v.Get("embeddings.patch_embedding.weight", d, ImageChannels, cfg.PatchSize, cfg.PatchSize), Stride: cfg.PatchSize}
	m.class = v.Get("embeddings.class_embedding", 1, 1, d)
	m.pos = v.Get("embeddings.position_embedding", 1, cfg.Positions(), d)
	m.preLN = nn.LoadLayerNorm(v, "pre_layernorm", d, eps)
	for i := range cfg.Layers {
		lv := v.At("encoder.layers", i)
		l := nn.EncoderLayer{
			LN1: nn.LoadLayerNorm(lv, "layer_norm1", d, eps),
			LN2: nn.LoadLayerNorm(lv, "layer_norm2", d, eps),
			Attn: nn.Attention{
				Out:   nn.LoadLinear(lv, "self_attn.projection", d, d, true),
				Heads: cfg.Heads,
				Inner: d,
				Scale: nn.HeadScale(d, cfg.Heads),
			},
			MLP: nn.LoadMLP(lv.Sub("mlp"), "fc1", "fc2", d, cfg.Intermediate, cfg.Act, false),
		}
		l.Attn.Q, l.Attn.K, l.Attn.V = nn.LoadFusedQKV(lv.Sub("self_attn"), "qkv", d, cfg.QKVBias)
		m.layers = append(m.layers, l)
	}
	m.postLN = nn.LoadLayerNorm(v, "post_layernorm", d, eps)
	return m
}

// Tensors lists every state-dict name the model reads with the shape the
// config implies (the int64 position_ids buffer is not read).
func Tensors(cfg Config) map[string][]int {
	v := nn.Recorder()
	build(cfg, v)
	return v.Shapes()
}

// Load checks every tensor the model needs for presence and shape before
// anything runs; the error wraps the first *tensor.MissingError. The model
// owns w from then on.
func Load(b tensor.Backend, cfg Config, w *tensor.Weights) (*QFormer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := nn.NewVars(b, w)
	m := build(cfg, v)
	if err := v.Finish("blip2"); err != nil {
		return nil, err
	}
	m.weights = w
	return m, nil
}

// Free releases the weights.
func (m *QFormer) Free(b tensor.Backend) {
	if m.weights != nil {
		m.weights.Free(b)
		m.weights = nil
	}
}
