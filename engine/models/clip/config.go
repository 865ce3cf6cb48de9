// config.go parses the text encoder's config.json (transformers
// CLIPTextConfig), filling the class defaults for
// keys the file leaves out.

package clip

import (
	"encoding/json"
	"fmt"

	"harmony/engine/cfgcheck"
	"harmony/engine/tensor"
)

// Config sizes the context CLIP text model. Every width, depth and count
// comes from config.json.
type Config struct {
	VocabSize    int        // vocab_size: rows of the token embedding table
	Hidden       int        // hidden_size: model width D
	Intermediate int        // intermediate_size: MLP width
	Layers       int        // num_hidden_layers
	Heads        int        // num_attention_heads (head dim = Hidden/Heads)
	MaxPositions int        // max_position_embeddings: rows of the position table, the longest sequence
	Act          tensor.Act // hidden_act of the MLP (quick_gelu for CLIP)
	LayerNormEps float32    // layer_norm_eps of layer_norm1/2 in every layer
}

// FinalLayerNormEps is the eps of final_layer_norm. diffusers'
// ContextCLIPTextTransformer builds it as nn.LayerNorm(hidden) with
// PyTorch's default eps instead of config.layer_norm_eps.
const FinalLayerNormEps = 1e-5

// fileConfig mirrors the JSON keys; it is pre-filled with the defaults of
// transformers' CLIPTextConfig, which from_pretrained uses for absent keys.
type fileConfig struct {
	VocabSize    int     `json:"vocab_size"`
	Hidden       int     `json:"hidden_size"`
	Intermediate int     `json:"intermediate_size"`
	Layers       int     `json:"num_hidden_layers"`
	Heads        int     `json:"num_attention_heads"`
	MaxPositions int     `json:"max_position_embeddings"`
	HiddenAct    string  `json:"hidden_act"`
	LayerNormEps float64 `json:"layer_norm_eps"`
}

// ParseConfig reads config.json.
func ParseConfig(data []byte) (Config, error) {
	f := fileConfig{
		VocabSize: 49408, Hidden: 512, Intermediate: 2048, Layers: 12, Heads: 8,
		MaxPositions: 77, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("clip: %s: %v", configFile, err)
	}
	act, err := tensor.ParseAct(f.HiddenAct)
	if err != nil {
		return Config{}, &cfgcheck.ConfigError{Pkg: "clip", File: configFile, Field: "hidden_act", Reason: "is not supported: " + err.Error()}
	}
	c := Config{
		VocabSize: f.VocabSize, Hidden: f.Hidden, Intermediate: f.Intermediate,
		Layers: f.Layers, Heads: f.Heads, MaxPositions: f.MaxPositions,
		Act: act, LayerNormEps: float32(f.LayerNormEps),
	}
	return c, c.Validate()
}

// configFile is where the config lives in the checkpoint; the catalog
// replaces it with the path it read.
const configFile = "text_encoder/config.json"

// Validate checks that the sizes describe a model of bounded size, before
// anything is allocated from them.
func (c Config) Validate() error {
	ck := &cfgcheck.Checker{Pkg: "clip", File: configFile}
	ck.Int("vocab_size", c.VocabSize, 1, cfgcheck.MaxVocab)
	ck.Int("hidden_size", c.Hidden, 1, cfgcheck.MaxChannels)
	ck.Int("intermediate_size", c.Intermediate, 1, 4*cfgcheck.MaxChannels)
	ck.Int("num_hidden_layers", c.Layers, 1, cfgcheck.MaxLayers)
	ck.Int("num_attention_heads", c.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("max_position_embeddings", c.MaxPositions, 1, cfgcheck.MaxPositions)
	if c.Act == tensor.ActNone {
		ck.Fail("hidden_act", nil, "must name an MLP activation")
	}
	ck.Positive("layer_norm_eps", float64(c.LayerNormEps), 1)
	if !ck.OK() {
		return ck.Err()
	}
	ck.Divides("hidden_size", c.Hidden, c.Heads, "num_attention_heads")
	h, i := float64(c.Hidden), float64(c.Intermediate)
	ck.Params("num_hidden_layers", float64(c.VocabSize+c.MaxPositions)*h+float64(c.Layers)*(4*h*h+2*h*i))
	return ck.Err()
}
