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

	"harmony/engine/cfgcheck"
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
		return Config{}, fmt.Errorf("blip2: %s: %v", configFile, err)
	}
	vact, err := tensor.ParseAct(f.Vision.HiddenAct)
	if err != nil {
		return Config{}, cerr("vision_config.hidden_act", "is not supported: %v", err)
	}
	qact, err := tensor.ParseAct(f.QFormer.HiddenAct)
	if err != nil {
		return Config{}, cerr("qformer_config.hidden_act", "is not supported: %v", err)
	}
	if f.QFormer.PositionEmbeddingType != "absolute" {
		return Config{}, cerr("qformer_config.position_embedding_type", "%q is not supported (only \"absolute\")", f.QFormer.PositionEmbeddingType)
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

// configFile is where the config lives in the checkpoint; the catalog
// replaces it with the path it read.
const configFile = "qformer/config.json"

func cerr(field, f string, a ...any) error {
	return &cfgcheck.ConfigError{Pkg: "blip2", File: configFile, Field: field, Reason: fmt.Sprintf(f, a...)}
}

// Validate checks that the sizes describe a model of bounded size, before
// anything is allocated from them.
func (c Config) Validate() error {
	v, q := c.Vision, c.QFormer
	ck := &cfgcheck.Checker{Pkg: "blip2", File: configFile}
	ck.Int("num_query_tokens", c.NumQueryTokens, 1, cfgcheck.MaxPositions)
	ck.Int("vision_config.hidden_size", v.Hidden, 1, cfgcheck.MaxChannels)
	ck.Int("vision_config.intermediate_size", v.Intermediate, 1, 4*cfgcheck.MaxChannels)
	ck.Int("vision_config.num_hidden_layers", v.Layers, 1, cfgcheck.MaxLayers)
	ck.Int("vision_config.num_attention_heads", v.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("vision_config.image_size", v.ImageSize, 1, cfgcheck.MaxImageSide)
	ck.Int("vision_config.patch_size", v.PatchSize, 1, cfgcheck.MaxImageSide)
	ck.Int("qformer_config.vocab_size", q.VocabSize, 1, cfgcheck.MaxVocab)
	ck.Int("qformer_config.hidden_size", q.Hidden, 1, cfgcheck.MaxChannels)
	ck.Int("qformer_config.num_hidden_layers", q.Layers, 1, cfgcheck.MaxLayers)
	ck.Int("qformer_config.num_attention_heads", q.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("qformer_config.intermediate_size", q.Intermediate, 1, 4*cfgcheck.MaxChannels)
	ck.Int("qformer_config.max_position_embeddings", q.MaxPositions, 1, cfgcheck.MaxPositions)
	ck.Int("qformer_config.cross_attention_frequency", q.CrossAttentionFrequency, 1, cfgcheck.MaxLayers)
	ck.Int("qformer_config.encoder_hidden_size", q.EncoderHidden, 1, cfgcheck.MaxChannels)
	ck.Positive("vision_config.layer_norm_eps", float64(v.LayerNormEps), 1)
	ck.Positive("qformer_config.layer_norm_eps", float64(q.LayerNormEps), 1)
	if !ck.OK() {
		return ck.Err()
	}
	ck.Divides("vision_config.hidden_size", v.Hidden, v.Heads, "vision_config.num_attention_heads")
	ck.Divides("qformer_config.hidden_size", q.Hidden, q.Heads, "qformer_config.num_attention_heads")
	// The reference's conv would drop the remainder but its position
	// table assumes whole patches.
	ck.Divides("vision_config.image_size", v.ImageSize, v.PatchSize, "vision_config.patch_size")
	if v.Hidden != q.EncoderHidden {
		ck.Fail("qformer_config.encoder_hidden_size", q.EncoderHidden, "must equal vision_config.hidden_size %d", v.Hidden)
	}
	if !ck.OK() {
		return ck.Err()
	}
	if p := v.Patches(); p*p+1 > cfgcheck.MaxPositions {
		ck.Fail("vision_config.image_size", v.ImageSize, "implies %d patch positions, more than %d", p*p+1, cfgcheck.MaxPositions)
	}
	vh, vi := float64(v.Hidden), float64(v.Intermediate)
	qh, qi := float64(q.Hidden), float64(q.Intermediate)
	params := float64(v.Positions())*vh + float64(v.PatchSize*v.PatchSize*ImageChannels)*vh +
		float64(v.Layers)*(4*vh*vh+2*vh*vi) +
		float64(q.VocabSize+q.MaxPositions)*qh +
		float64(q.Layers)*(8*qh*qh+2*qh*vh+4*qh*qi) + 8*qh*qh
	ck.Params("num_hidden_layers", params)
	return ck.Err()
}
