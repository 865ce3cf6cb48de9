// config.go parses the Q-Former's config.json (transformers Blip2Config
// with its vision_config and qformer_config).
//
// Keys the file leaves out take the defaults of the transformers classes
// (v4.36.2, the version that wrote the goldens; golden/resolved_configs.json
// lists the filled-in values). The released checkpoint's config.json is a
// full dump, so defaults only matter for compact files such as the tiny
// model's. Vision layer_norm_eps defaults to 1e-6 (Blip2VisionConfig); the
// released file is expected to say 1e-5 — it is always read from the
// file when present.

package blip2

import (
	"encoding/json"
	"fmt"

	"harmony/engine/tensor"
)

// Config sizes the subject encoder.
type Config struct {
	NumQueryTokens int           // num_query_tokens: learned queries Q
	Vision         VisionConfig  // vision_config
	QFormer        QFormerConfig // qformer_config
}

// VisionConfig sizes the ViT image encoder.
type VisionConfig struct {
	Hidden       int        // hidden_size: width Dv
	Intermediate int        // intermediate_size: MLP width
	Layers       int        // num_hidden_layers
	Heads        int        // num_attention_heads
	ImageSize    int        // image_size: input height and width in pixels
	PatchSize    int        // patch_size: patch side and conv stride
	Act          tensor.Act // hidden_act of the MLP
	LayerNormEps float32    // layer_norm_eps of pre/post_layernorm and layer_norm1/2
	QKVBias      bool       // qkv_bias: the fused qkv projection has a bias
}

// Patches is the number of image patches per side.
func (c VisionConfig) Patches() int { return c.ImageSize / c.PatchSize }

// Positions is the token count: the class token and one per patch.
func (c VisionConfig) Positions() int { return c.Patches()*c.Patches() + 1 }

// QFormerConfig sizes the BERT-style querying transformer.
type QFormerConfig struct {
	VocabSize               int        // vocab_size: word embedding rows
	Hidden                  int        // hidden_size: width D
	Layers                  int        // num_hidden_layers
	Heads                   int        // num_attention_heads
	Intermediate            int        // intermediate_size: FFN width
	MaxPositions            int        // max_position_embeddings: longest text
	Act                     tensor.Act // hidden_act of the FFNs
	LayerNormEps            float32    // layer_norm_eps of every Q-Former LayerNorm
	CrossAttentionFrequency int        // layer i has cross-attention when i % this == 0
	EncoderHidden           int        // encoder_hidden_size: width of the image embeddings
}

// HasCrossAttention reports whether Q-Former layer i attends to the image.
func (c QFormerConfig) HasCrossAttention(i int) bool { return i%c.CrossAttentionFrequency == 0 }

// ProjLayerEps is the eps of proj_layer.LayerNorm: diffusers builds the
// ProjLayer with eps=1e-12 regardless of the config.
const ProjLayerEps = 1e-12

// ProjExpansion is the ProjLayer's hidden width over its input width:
// diffusers builds it as hidden_size → 4·hidden_size → hidden_size.
const ProjExpansion = 4

// ImageChannels is the pixel input's channel count (Blip2VisionEmbeddings
// builds its patch convolution with in_channels=3).
const ImageChannels = 3

type visionFile struct {
	Hidden       int     `json:"hidden_size"`
	Intermediate int     `json:"intermediate_size"`
	Layers       int     `json:"num_hidden_layers"`
	Heads        int     `json:"num_attention_heads"`
	ImageSize    int     `json:"image_size"`
	PatchSize    int     `json:"patch_size"`
	HiddenAct    string  `json:"hidden_act"`
	LayerNormEps float64 `json:"layer_norm_eps"`
	QKVBias      bool    `json:"qkv_bias"`
}

type qformerFile struct {
	VocabSize               int     `json:"vocab_size"`
	Hidden                  int     `json:"hidden_size"`
	Layers                  int     `json:"num_hidden_layers"`
	Heads                   int     `json:"num_attention_heads"`
	Intermediate            int     `json:"intermediate_size"`
	MaxPositions            int     `json:"max_position_embeddings"`
	HiddenAct               string  `json:"hidden_act"`
	LayerNormEps            float64 `json:"layer_norm_eps"`
	PositionEmbeddingType   string  `json:"position_embedding_type"`
	CrossAttentionFrequency int     `json:"cross_attention_frequency"`
	EncoderHidden           int     `json:"encoder_hidden_size"`
}

type file struct {
	NumQueryTokens int         `json:"num_query_tokens"`
	Vision         visionFile  `json:"vision_config"`
	QFormer        qformerFile `json:"qformer_config"`
}

// ParseConfig reads config.json.
func ParseConfig(data []byte) (Config, error) {
	f := file{
		NumQueryTokens: 32,
		Vision: visionFile{ // Blip2VisionConfig defaults
			Hidden: 1408, Intermediate: 6144, Layers: 39, Heads: 16, ImageSize: 224, PatchSize: 14,
			HiddenAct: "gelu", LayerNormEps: 1e-6, QKVBias: true,
		},
		QFormer: qformerFile{ // Blip2QFormerConfig defaults
			VocabSize: 30522, Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, MaxPositions: 512,
			HiddenAct: "gelu", LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
			CrossAttentionFrequency: 2, EncoderHidden: 1408,
		},
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("blip2: config: %v", err)
	}
	vact, err := tensor.ParseAct(f.Vision.HiddenAct)
	if err != nil {
		return Config{}, fmt.Errorf("blip2: config: vision_config.hidden_act: %v", err)
	}
	qact, err := tensor.ParseAct(f.QFormer.HiddenAct)
	if err != nil {
		return Config{}, fmt.Errorf("blip2: config: qformer_config.hidden_act: %v", err)
	}
	if f.QFormer.PositionEmbeddingType != "absolute" {
		return Config{}, fmt.Errorf("blip2: config: position_embedding_type %q is not supported (only \"absolute\")", f.QFormer.PositionEmbeddingType)
	}
	v, q := f.Vision, f.QFormer
	c := Config{
		NumQueryTokens: f.NumQueryTokens,
		Vision: VisionConfig{
			Hidden: v.Hidden, Intermediate: v.Intermediate, Layers: v.Layers, Heads: v.Heads,
			ImageSize: v.ImageSize, PatchSize: v.PatchSize, Act: vact,
			LayerNormEps: float32(v.LayerNormEps), QKVBias: v.QKVBias,
		},
		QFormer: QFormerConfig{
			VocabSize: q.VocabSize, Hidden: q.Hidden, Layers: q.Layers, Heads: q.Heads,
			Intermediate: q.Intermediate, MaxPositions: q.MaxPositions, Act: qact,
			LayerNormEps: float32(q.LayerNormEps), CrossAttentionFrequency: q.CrossAttentionFrequency,
			EncoderHidden: q.EncoderHidden,
		},
	}
	return c, c.Validate()
}

// Validate checks that the sizes describe a model.
func (c Config) Validate() error {
	v, q := c.Vision, c.QFormer
	for _, s := range []struct {
		name string
		n    int
	}{
		{"num_query_tokens", c.NumQueryTokens},
		{"vision_config.hidden_size", v.Hidden}, {"vision_config.intermediate_size", v.Intermediate},
		{"vision_config.num_hidden_layers", v.Layers}, {"vision_config.num_attention_heads", v.Heads},
		{"vision_config.image_size", v.ImageSize}, {"vision_config.patch_size", v.PatchSize},
		{"qformer_config.vocab_size", q.VocabSize}, {"qformer_config.hidden_size", q.Hidden},
		{"qformer_config.num_hidden_layers", q.Layers}, {"qformer_config.num_attention_heads", q.Heads},
		{"qformer_config.intermediate_size", q.Intermediate}, {"qformer_config.max_position_embeddings", q.MaxPositions},
		{"qformer_config.cross_attention_frequency", q.CrossAttentionFrequency},
		{"qformer_config.encoder_hidden_size", q.EncoderHidden},
	} {
		if s.n <= 0 {
			return fmt.Errorf("blip2: config: %s %d must be positive", s.name, s.n)
		}
	}
	if v.Hidden%v.Heads != 0 {
		return fmt.Errorf("blip2: config: vision hidden_size %d does not split into %d heads", v.Hidden, v.Heads)
	}
	if q.Hidden%q.Heads != 0 {
		return fmt.Errorf("blip2: config: qformer hidden_size %d does not split into %d heads", q.Hidden, q.Heads)
	}
	if v.ImageSize%v.PatchSize != 0 {
		// The reference's conv would drop the remainder but its position
		// table assumes whole patches.
		return fmt.Errorf("blip2: config: image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
	}
	if v.Hidden != q.EncoderHidden {
		return fmt.Errorf("blip2: config: vision hidden_size %d differs from qformer encoder_hidden_size %d", v.Hidden, q.EncoderHidden)
	}
	if !(v.LayerNormEps > 0) || !(q.LayerNormEps > 0) {
		return fmt.Errorf("blip2: config: layer_norm_eps %g / %g must be positive", v.LayerNormEps, q.LayerNormEps)
	}
	return nil
}
