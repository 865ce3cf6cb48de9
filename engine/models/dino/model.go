// Package dino implements the DINO ViT backbone (ViT-S/16 and kin) whose
// final-norm class token is the DINO image-similarity metric's embedding:
// patch convolution with bias, class token, position table, pre-LN blocks
// with exact GELU, final LayerNorm. It loads transformers' ViTModel
// layout (facebook/dino-vits16, sized by config.json) and the original
// facebookresearch/dino state dicts (dino_deitsmall16_pretrain.pth, sized
// from the tensors), the same model under two spellings.
//
// model.go holds the model, its tensor list and its forward pass.
package dino

import (
	"fmt"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// Model is a loaded DINO ViT. It owns the Weights it was loaded from.
type Model struct {
	Config Config
	// Trace, when set, receives "embeddings" [B, T, D] and "blocks.N".
	Trace nn.Trace

	weights *tensor.Weights
	patch   nn.Conv2d      // [D, 3, p, p] stride p, with bias
	cls     *tensor.Tensor // [1, 1, D]
	pos     *tensor.Tensor // [1, T, D]
	layers  []nn.EncoderLayer
	norm    nn.LayerNorm
}

// names spells one layout's tensors.
type names struct {
	cls, pos, patch, norm string
	layer                 string // ModuleList of the blocks
	ln1, ln2              string
	attn                  nn.AttnNames // relative to a block; Q empty: fused qkv
	qkv                   string       // fused qkv projection, relative to a block
	fc1, fc2              string
}

var layoutNames = map[Layout]names{
	LayoutTransformers: {
		cls: "embeddings.cls_token", pos: "embeddings.position_embeddings",
		patch: "embeddings.patch_embeddings.projection", norm: "layernorm",
		layer: "encoder.layer", ln1: "layernorm_before", ln2: "layernorm_after",
		attn: nn.AttnNames{Q: "attention.attention.query", K: "attention.attention.key", V: "attention.attention.value", Out: "attention.output.dense"},
		fc1:  "intermediate.dense", fc2: "output.dense",
	},
	LayoutOriginal: {
		cls: "cls_token", pos: "pos_embed", patch: "patch_embed.proj", norm: "norm",
		layer: "blocks", ln1: "norm1", ln2: "norm2",
		attn: nn.AttnNames{Out: "attn.proj"}, qkv: "attn.qkv",
		fc1: "mlp.fc1", fc2: "mlp.fc2",
	},
}

func build(cfg Config, v *nn.Vars) *Model {
	d, eps := cfg.Hidden, cfg.LayerNormEps
	n := layoutNames[cfg.Layout]
	m := &Model{Config: cfg}
	if cfg.Prefix != "" {
		v = v.Sub(cfg.Prefix[:len(cfg.Prefix)-1])
	}
	m.cls = v.Get(n.cls, 1, 1, d)
	m.pos = v.Get(n.pos, 1, cfg.Positions(), d)
	m.patch = nn.LoadConv2d(v, n.patch, d, ImageChannels, cfg.PatchSize, true)
	m.patch.Stride, m.patch.Pad = cfg.PatchSize, 0
	for i := range cfg.Layers {
		lv := v.At(n.layer, i)
		l := nn.EncoderLayer{
			LN1: nn.LoadLayerNorm(lv, n.ln1, d, eps),
			LN2: nn.LoadLayerNorm(lv, n.ln2, d, eps),
			MLP: nn.LoadMLP(lv, n.fc1, n.fc2, d, cfg.Intermediate, cfg.Act, false),
		}
		if n.qkv == "" {
			l.Attn = nn.LoadAttention(lv, nn.AttnSpec{Names: n.attn, Dim: d, Heads: cfg.Heads, QKVBias: cfg.QKVBias, OutBias: true})
		} else {
			l.Attn = nn.Attention{
				Out:   nn.LoadLinear(lv, n.attn.Out, d, d, true),
				Heads: cfg.Heads, Inner: d, Scale: nn.HeadScale(d, cfg.Heads),
			}
			l.Attn.Q, l.Attn.K, l.Attn.V = nn.LoadFusedQKV(lv, n.qkv, d, cfg.QKVBias)
		}
		m.layers = append(m.layers, l)
	}
	m.norm = nn.LoadLayerNorm(v, n.norm, d, eps)
	return m
}

// Tensors lists every state-dict name the model reads, with its shape. A
// transformers checkpoint also holds pooler.dense (unread).
func Tensors(cfg Config) map[string][]int {
	v := nn.Recorder()
	build(cfg, v)
	return v.Shapes()
}

// Load checks every tensor for presence and shape before anything runs;
// the model owns w from then on.
func Load(b tensor.Backend, cfg Config, w *tensor.Weights) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := nn.NewVars(b, w)
	m := build(cfg, v)
	if err := v.Finish("dino"); err != nil {
		return nil, err
	}
	m.weights = w
	return m, nil
}

// Free releases the weights.
func (m *Model) Free(b tensor.Backend) {
	if m.weights != nil {
		m.weights.Free(b)
		m.weights = nil
	}
}

// Forward is the DINO embedding: the class token after the final norm
// [B, D] (VisionTransformer.forward; ViTModel's last_hidden_state[:, 0]).
// pixels are NHWC [B, H, W, 3], normalized, H = W = image_size (no
// position-table interpolation: the metric's transform feeds 224×224).
func (m *Model) Forward(b tensor.Backend, pixels *tensor.Tensor) (*tensor.Tensor, error) {
	x, err := m.encode(b, pixels)
	if err != nil {
		return nil, err
	}
	cls := b.Slice(x, 1, 0, 1)
	b.Free(x)
	out := m.norm.Forward(b, cls)
	b.Free(cls)
	out = nn.Relabel(b, out, pixels.Shape[0], m.Config.Hidden)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// Tokens is every token after the final norm [B, T, D] (ViTModel's
// last_hidden_state).
func (m *Model) Tokens(b tensor.Backend, pixels *tensor.Tensor) (*tensor.Tensor, error) {
	x, err := m.encode(b, pixels)
	if err != nil {
		return nil, err
	}
	out := m.norm.Forward(b, x)
	b.Free(x)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// encode runs embeddings and blocks: [B, T, D] before the final norm.
func (m *Model) encode(b tensor.Backend, pixels *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config
	if pixels == nil || len(pixels.Shape) != 4 || pixels.Shape[0] < 1 || pixels.Shape[1] != cfg.ImageSize || pixels.Shape[2] != cfg.ImageSize ||
		pixels.Shape[3] != ImageChannels || pixels.DType != tensor.F32 {
		return nil, fmt.Errorf("dino: pixels %v must be f32 [B, %d, %d, %d] (NHWC)", pixels, cfg.ImageSize, cfg.ImageSize, ImageChannels)
	}
	nb, d, np := pixels.Shape[0], cfg.Hidden, cfg.Patches()*cfg.Patches()
	patches := m.patch.Forward(b, pixels, tensor.ConvOpts{}) // [B, g, g, D]
	cls := nn.RepeatBatch(b, m.cls, nb)
	x := b.Concat(1, cls, b.Reshape(patches, nb, np, d))
	if cls != m.cls {
		b.Free(cls)
	}
	b.Free(patches)
	h := b.Add(x, m.pos)
	b.Free(x)
	m.Trace.Record("embeddings", h)
	for i := range m.layers {
		y := m.layers[i].Forward(b, h, tensor.AttnOpts{})
		b.Free(h)
		m.Trace.Record(fmt.Sprintf("blocks.%d", i), y)
		h = y
	}
	if err := b.Err(); err != nil {
		b.Free(h)
		return nil, err
	}
	return h, nil
}

// LoadCheckpoint loads either layout from loaded weights: an original
// state dict (it has cls_token) is sized from its tensors, with heads
// (0: D / OriginalHeadDim); otherwise config is the transformers
// config.json, required then. The model owns w from then on, also on error
// (freed).
func LoadCheckpoint(b tensor.Backend, config []byte, w *tensor.Weights, heads int) (*Model, error) {
	var cfg Config
	var err error
	if w.Has("cls_token") {
		shapes := map[string][]int{}
		for _, n := range w.Names() {
			if t, e := w.Get(n); e == nil {
				shapes[n] = t.Shape
			}
		}
		cfg, err = ConfigFromShapes(shapes, heads)
	} else if config == nil {
		err = fmt.Errorf("dino: the checkpoint is in the transformers layout (no cls_token) but there is no config.json")
	} else {
		cfg, err = ParseConfig(config)
		cfg = cfg.WithPrefix(w.Names())
	}
	if err != nil {
		w.Free(b)
		return nil, err
	}
	m, err := Load(b, cfg, w)
	if err != nil {
		w.Free(b)
		return nil, err
	}
	return m, nil
}
