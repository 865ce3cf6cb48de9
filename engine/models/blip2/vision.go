// vision.go implements the BLIP-2 vision encoder as diffusers' copy of
// Blip2VisionModel runs it (blipdiffusion.md §5): a CLIP ViT with a patch
// convolution, class token, position table, pre_layernorm, pre-LN blocks
// with a fused qkv projection, and post_layernorm over every token.

package blip2

import (
	"fmt"
	"math"

	"harmony/engine/tensor"
)

// VisionModel is the image encoder (visual_encoder.* in the state dict).
type VisionModel struct {
	Config VisionConfig

	patch  *tensor.Tensor // embeddings.patch_embedding.weight [Dv, 3, p, p] (no bias)
	class  *tensor.Tensor // embeddings.class_embedding [1, 1, Dv]
	pos    *tensor.Tensor // embeddings.position_embedding [1, 1+P, Dv]
	preLN  norm
	layers []vLayer
	postLN norm
}

type vLayer struct {
	ln1, ln2   norm
	qkvW, qkvB *tensor.Tensor // self_attn.qkv: [3·Dv, Dv], [3·Dv] (rows q, k, v)
	proj       linear         // self_attn.projection
	fc1, fc2   linear         // mlp
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
	h := b.LayerNorm(x, m.preLN.g, m.preLN.b, cfg.LayerNormEps)
	if tr == nil {
		b.Free(x)
	}
	x = h
	attn := tensor.AttnOpts{Heads: cfg.Heads, Scale: float32(1 / math.Sqrt(float64(cfg.Hidden/cfg.Heads)))}
	for i := range m.layers {
		y := m.layers[i].forward(b, x, attn, cfg)
		if i == 0 || tr == nil { // the pre_layernorm output is never traced
			b.Free(x)
		}
		if tr != nil {
			tr.Layers = append(tr.Layers, y)
		}
		x = y
	}
	out := b.LayerNorm(x, m.postLN.g, m.postLN.b, cfg.LayerNormEps)
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
	patches := b.Conv2D(pixels, m.patch, nil, tensor.ConvOpts{Stride: cfg.PatchSize}) // [B, g, g, Dv]
	cls := repeatBatch(b, m.class, nb)                                                // [B, 1, Dv]
	x := b.Concat(1, cls, b.Reshape(patches, nb, np, d))
	if cls != m.class {
		b.Free(cls)
	}
	b.Free(patches)
	out := b.Add(x, m.pos)
	b.Free(x)
	return out
}

// repeatBatch is t [1, ...] repeated n times along axis 0 (t itself when n
// is 1).
func repeatBatch(b tensor.Backend, t *tensor.Tensor, n int) *tensor.Tensor {
	if n == 1 {
		return t
	}
	parts := make([]*tensor.Tensor, n)
	for i := range parts {
		parts[i] = t
	}
	return b.Concat(0, parts...)
}

// forward is one pre-LN Blip2EncoderLayer:
// h = x + projection(attn(LN1(x))); y = h + fc2(act(fc1(LN2(h)))).
// The fused qkv projection runs as three Linears over row windows of its
// weight and bias, so q, k and v come out contiguous for Attention.
func (l *vLayer) forward(b tensor.Backend, x *tensor.Tensor, attn tensor.AttnOpts, cfg VisionConfig) *tensor.Tensor {
	d := cfg.Hidden
	h := b.LayerNorm(x, l.ln1.g, l.ln1.b, cfg.LayerNormEps)
	var qkv [3]*tensor.Tensor
	for i := range qkv {
		var bias *tensor.Tensor
		if l.qkvB != nil {
			bias = b.View(l.qkvB, i*d, d)
		}
		qkv[i] = b.Linear(h, b.View(l.qkvW, i*d*d, d, d), bias, tensor.Epilogue{})
	}
	b.Free(h)
	a, _ := b.Attention(qkv[0], qkv[1], qkv[2], attn)
	b.Free(qkv[:]...)
	r := b.Linear(a, l.proj.w, l.proj.b, tensor.Epilogue{Residual: x})
	b.Free(a)
	h = b.LayerNorm(r, l.ln2.g, l.ln2.b, cfg.LayerNormEps)
	f := b.Linear(h, l.fc1.w, l.fc1.b, tensor.Epilogue{Act: cfg.Act})
	b.Free(h)
	y := b.Linear(f, l.fc2.w, l.fc2.b, tensor.Epilogue{Residual: r})
	b.Free(f, r)
	return y
}
