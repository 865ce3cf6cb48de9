// vision.go implements the BLIP-2 vision encoder as diffusers' copy of
// Blip2VisionModel runs it (blipdiffusion.md §5): a CLIP ViT with a patch
// convolution, class token, position table, pre_layernorm, pre-LN blocks
// with a fused qkv projection, and post_layernorm over every token.

package blip2

import (
	"fmt"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// VisionModel is the image encoder (visual_encoder.* in the state dict).
type VisionModel struct {
	Config VisionConfig

	patch  nn.Conv2d      // embeddings.patch_embedding [Dv, 3, p, p], stride p (no bias)
	class  *tensor.Tensor // embeddings.class_embedding [1, 1, Dv]
	pos    *tensor.Tensor // embeddings.position_embedding [1, 1+P, Dv]
	preLN  nn.LayerNorm
	layers []nn.EncoderLayer // self_attn.qkv read as q, k, v row windows
	postLN nn.LayerNorm
}

// VisionTrace keeps the vision encoder's intermediates.
type VisionTrace struct {
	Embeddings *tensor.Tensor   // [B, 1+P, Dv] class + patch tokens + positions, before pre_layernorm
	Layers     []*tensor.Tensor // [B, 1+P, Dv] each encoder layer's output
}

// Free releases the kept tensors.
func (tr *VisionTrace) Free(b tensor.Backend) {
	b.Free(tr.Embeddings)
	b.Free(tr.Layers...)
	*tr = VisionTrace{}
}

// Forward encodes pixels [B, H, W, 3] (NHWC, normalized, H = W =
// image_size) into image embeddings [B, 1+P, Dv] after post_layernorm.
// Intermediates are kept in tr when it is not nil.
func (m *VisionModel) Forward(b tensor.Backend, pixels *tensor.Tensor, tr *VisionTrace) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	cfg := m.Config
	if pixels == nil || len(pixels.Shape) != 4 || pixels.Shape[0] < 1 || pixels.Shape[1] != cfg.ImageSize || pixels.Shape[2] != cfg.ImageSize ||
		pixels.Shape[3] != ImageChannels || pixels.DType != tensor.F32 {
		return nil, fmt.Errorf("blip2: vision: pixels %v must be f32 [B, %d, %d, %d]", pixels, cfg.ImageSize, cfg.ImageSize, ImageChannels)
	}
	x := m.embed(b, pixels)
	if tr != nil {
		tr.Embeddings = x
	}
	h := m.preLN.Forward(b, x)
	if tr == nil {
		b.Free(x)
	}
	x = h
	for i := range m.layers {
		y := m.layers[i].Forward(b, x, tensor.AttnOpts{})
		if i == 0 || tr == nil { // the pre_layernorm output is never traced
			b.Free(x)
		}
		if tr != nil {
			tr.Layers = append(tr.Layers, y)
		}
		x = y
	}
	out := m.postLN.Forward(b, x)
	if tr == nil || len(m.layers) == 0 {
		b.Free(x)
	}
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
