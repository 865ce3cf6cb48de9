// vision.go implements the BLIP-2 vision encoder as diffusers' copy of
// Blip2VisionModel runs it: a CLIP ViT with a patch
// convolution, class token, position table, pre_layernorm, pre-LN blocks
// with a fused qkv projection, and post_layernorm over every token.

package blip2

import (
	"fmt"
	"strconv"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// VisionModel is the image encoder (visual_encoder.* in the state dict).
type VisionModel struct {
	Config VisionConfig
	// Trace, when set, receives intermediate tensors (see forward).
	Trace nn.Trace

	patch  nn.Conv2d      // embeddings.patch_embedding [Dv, 3, p, p], stride p (no bias)
	class  *tensor.Tensor // embeddings.class_embedding [1, 1, Dv]
	pos    *tensor.Tensor // embeddings.position_embedding [1, 1+P, Dv]
	preLN  nn.LayerNorm
	layers []nn.EncoderLayer // self_attn.qkv read as q, k, v row windows
	postLN nn.LayerNorm
}

// Forward encodes pixels [B, H, W, 3] (NHWC, normalized, H = W =
// image_size) into image embeddings [B, 1+P, Dv] after post_layernorm.
func (m *VisionModel) Forward(b tensor.Backend, pixels *tensor.Tensor) (*tensor.Tensor, error) {
	return m.forward(b, pixels, m.Trace)
}

// forward is Forward tracing into tr ("visual_encoder.embeddings" before
// pre_layernorm, "visual_encoder.encoder.layers.N",
// "visual_encoder.post_layernorm": the output).
func (m *VisionModel) forward(b tensor.Backend, pixels *tensor.Tensor, tr nn.Trace) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config
	if pixels == nil || len(pixels.Shape) != 4 || pixels.Shape[0] < 1 || pixels.Shape[1] != cfg.ImageSize || pixels.Shape[2] != cfg.ImageSize ||
		pixels.Shape[3] != ImageChannels || pixels.DType != tensor.F32 {
		return nil, fmt.Errorf("blip2: vision: pixels %v must be f32 [B, %d, %d, %d]", pixels, cfg.ImageSize, cfg.ImageSize, ImageChannels)
	}
	x := m.embed(b, pixels)
	tr.Record("visual_encoder.embeddings", x)
	h := m.preLN.Forward(b, x)
	b.Free(x)
	x = h
	for i := range m.layers {
		y := m.layers[i].Forward(b, x, tensor.AttnOpts{})
		b.Free(x)
		tr.Record("visual_encoder.encoder.layers."+strconv.Itoa(i), y)
		x = y
	}
	out := m.postLN.Forward(b, x)
	b.Free(x)
	tr.Record("visual_encoder.post_layernorm", out)
	if err := b.Err(); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}

// embed is Blip2VisionEmbeddings: [class ; conv(pixels) flattened row-major
// over the patch grid] + position table.
func (m *VisionModel) embed(b tensor.Backend, pixels *tensor.Tensor) *tensor.Tensor {
	cfg := m.Config
	nb, d, np := pixels.Shape[0], cfg.Hidden, cfg.Patches()*cfg.Patches()
	patches := m.patch.Forward(b, pixels, tensor.ConvOpts{}) // [B, g, g, Dv]
	cls := nn.RepeatBatch(b, m.class, nb)                    // [B, 1, Dv]
	x := b.Concat(1, cls, b.Reshape(patches, nb, np, d))
	if cls != m.class {
		b.Free(cls)
	}
	b.Free(patches)
	out := b.Add(x, m.pos)
	b.Free(x)
	return out
}
