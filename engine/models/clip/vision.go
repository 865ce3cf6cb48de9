// vision.go implements transformers' CLIPVisionTransformer (the image tower
// of CLIPModel, CLIPVisionModel and CLIPVisionModelWithProjection): patch
// convolution without bias, class token, position table, pre_layrnorm,
// pre-LN encoder layers (the text tower's, without the causal mask), and
// post_layernorm on the class token only; plus visual_projection.

package clip

import (
	"fmt"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// visionPrefix is where the vision transformer lives in the state dict.
const visionPrefix = "vision_model"

// VisionModel is a loaded vision tower. It owns the Weights it was loaded
// from: Free releases them.
type VisionModel struct {
	Config VisionConfig
	// Trace, when set, receives "embeddings" (before pre_layrnorm) [B, T, D].
	Trace nn.Trace

	weights *tensor.Weights
	patch   nn.Conv2d      // embeddings.patch_embedding [D, 3, p, p], stride p, no bias
	class   *tensor.Tensor // embeddings.class_embedding [D], viewed as [1, 1, D]
	pos     nn.Embedding   // embeddings.position_embedding.weight [T, D] (f16 with f16 weights: gathered)
	preLN   nn.LayerNorm   // pre_layrnorm (transformers' spelling)
	layers  []nn.EncoderLayer
	postLN  nn.LayerNorm
	proj    nn.Linear // visual_projection [P, D], no bias; W nil without one
}

// VisionOutput is what Forward returns; the caller frees it (Free).
type VisionOutput struct {
	// Hidden are the Layers+1 hidden states [B, T, D] as transformers'
	// output_hidden_states gives them: Hidden[0] = pre_layrnorm(embeddings),
	// Hidden[k] = output of encoder layer k; Hidden[Layers] is
	// last_hidden_state, without post_layernorm.
	Hidden []*tensor.Tensor
	// Pooled is pooler_output: post_layernorm of the class token [B, D].
	Pooled *tensor.Tensor
}

// Free releases every tensor of the output.
func (o *VisionOutput) Free(b tensor.Backend) {
	if o == nil {
		return
	}
	b.Free(o.Hidden...)
	b.Free(o.Pooled)
	o.Hidden, o.Pooled = nil, nil
}

func buildVision(cfg VisionConfig, v *nn.Vars) *VisionModel {
	d, eps := cfg.Hidden, cfg.LayerNormEps
	m := &VisionModel{Config: cfg}
	if cfg.ProjectionDim > 0 {
		m.proj = nn.LoadLinear(v, "visual_projection", cfg.ProjectionDim, d, false)
	}
	v = v.Sub(visionPrefix)
	m.patch = nn.Conv2d{W: v.Get("embeddings.patch_embedding.weight", d, ImageChannels, cfg.PatchSize, cfg.PatchSize), Stride: cfg.PatchSize}
	m.class = v.Get("embeddings.class_embedding", d)
	if m.class != nil {
		m.class = v.Backend().Reshape(m.class, 1, 1, d)
	}
	m.pos = nn.LoadEmbedding(v, "embeddings.position_embedding.weight", cfg.Positions(), d)
	m.preLN = nn.LoadLayerNorm(v, "pre_layrnorm", d, eps)
	for i := range cfg.Layers {
		m.layers = append(m.layers, loadEncoderLayer(v.At("encoder.layers", i), d, cfg.Intermediate, cfg.Heads, cfg.Act, eps))
	}
	m.postLN = nn.LoadLayerNorm(v, "post_layernorm", d, eps)
	return m
}

// loadEncoderLayer reads one CLIPEncoderLayer; both towers are made of it.
func loadEncoderLayer(lv *nn.Vars, d, inner, heads int, act tensor.Act, eps float32) nn.EncoderLayer {
	return nn.EncoderLayer{
		LN1: nn.LoadLayerNorm(lv, "layer_norm1", d, eps),
		LN2: nn.LoadLayerNorm(lv, "layer_norm2", d, eps),
		Attn: nn.LoadAttention(lv.Sub("self_attn"), nn.AttnSpec{
			Names: nn.CLIPAttnNames, Dim: d, Heads: heads, QKVBias: true, OutBias: true,
		}),
		MLP: nn.LoadMLP(lv.Sub("mlp"), "fc1", "fc2", d, inner, act, false),
	}
}

// VisionTensors lists every state-dict name the vision tower reads, with
// the shape the config implies: names under vision_model., plus
// visual_projection.weight when the config has a projection. A whole
// CLIPModel checkpoint holds more (the text tower); those are not read.
func VisionTensors(cfg VisionConfig) map[string][]int {
	v := nn.Recorder()
	buildVision(cfg, v)
	return v.Shapes()
}

// LoadVision checks every tensor the tower needs for presence and shape
// before anything runs; the error wraps the first *tensor.MissingError.
// The model owns w from then on (tensors it does not read included).
func LoadVision(b tensor.Backend, cfg VisionConfig, w *tensor.Weights) (*VisionModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := nn.NewVars(b, w)
	m := buildVision(cfg, v)
	if err := v.Finish("clip"); err != nil {
		return nil, err
	}
	m.weights = w
	return m, nil
}

// Free releases the weights.
func (m *VisionModel) Free(b tensor.Backend) {
	if m.weights != nil {
		m.weights.Free(b)
		m.weights = nil
	}
}

// Forward encodes pixels [B, H, W, 3] (channels-last like every image
// tensor of the engine; normalized; H = W = image_size) into all hidden
// states and the pooled class token.
func (m *VisionModel) Forward(b tensor.Backend, pixels *tensor.Tensor) (*VisionOutput, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config
	if pixels == nil || len(pixels.Shape) != 4 || pixels.Shape[0] < 1 || pixels.Shape[1] != cfg.ImageSize || pixels.Shape[2] != cfg.ImageSize ||
		pixels.Shape[3] != ImageChannels || pixels.DType != tensor.F32 {
		return nil, fmt.Errorf("clip: vision: pixels %v must be f32 [B, %d, %d, %d] (NHWC)", pixels, cfg.ImageSize, cfg.ImageSize, ImageChannels)
	}
	nb, d := pixels.Shape[0], cfg.Hidden
	x := m.embed(b, pixels)
	m.Trace.Record("embeddings", x)
	out := &VisionOutput{Hidden: make([]*tensor.Tensor, 0, cfg.Layers+1)}
	h := m.preLN.Forward(b, x)
	b.Free(x)
	out.Hidden = append(out.Hidden, h)
	for i := range m.layers {
		h = m.layers[i].Forward(b, h, tensor.AttnOpts{})
		out.Hidden = append(out.Hidden, h)
	}
	cls := b.Slice(h, 1, 0, 1) // [B, 1, D]
	pooled := m.postLN.Forward(b, cls)
	b.Free(cls)
	out.Pooled = nn.Relabel(b, pooled, nb, d)
	if err := b.Err(); err != nil {
		out.Free(b)
		return nil, err
	}
	return out, nil
}

// embed is CLIPVisionEmbeddings: [class ; conv(pixels) flattened row-major
// over the patch grid] + position table.
func (m *VisionModel) embed(b tensor.Backend, pixels *tensor.Tensor) *tensor.Tensor {
	cfg := m.Config
	nb, d, np := pixels.Shape[0], cfg.Hidden, cfg.Patches()*cfg.Patches()
	patches := m.patch.Forward(b, pixels, tensor.ConvOpts{}) // [B, g, g, D]
	cls := nn.RepeatBatch(b, m.class, nb)                    // [B, 1, D]
	x := b.Concat(1, cls, b.Reshape(patches, nb, np, d))
	if cls != m.class {
		b.Free(cls)
	}
	b.Free(patches)
	pos := m.pos.Positions(b, cfg.Positions()) // [T, D] f32
	out := b.Add(x, pos)
	b.Free(x, pos)
	return out
}

// HasProjection reports whether the tower was loaded with
// visual_projection.
func (m *VisionModel) HasProjection() bool { return m.proj.W != nil }

// Project is visual_projection: pooled [B, D] → image_embeds [B, P] (not
// normalized). The caller frees the result.
func (m *VisionModel) Project(b tensor.Backend, pooled *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if m.proj.W == nil {
		return nil, fmt.Errorf("clip: vision: the checkpoint has no visual_projection")
	}
	if pooled == nil || len(pooled.Shape) != 2 || pooled.Shape[1] != m.Config.Hidden || pooled.DType != tensor.F32 {
		return nil, fmt.Errorf("clip: vision: pooled %v must be f32 [B, %d]", pooled, m.Config.Hidden)
	}
	y := m.proj.Forward(b, pooled, tensor.Epilogue{})
	if err := b.Err(); err != nil {
		b.Free(y)
		return nil, err
	}
	return y, nil
}
