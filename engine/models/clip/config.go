// config.go parses the text encoder's config.json (transformers
// CLIPTextConfig), filling the class defaults for
// keys the file leaves out.

package clip

import (
	"encoding/json"
	"fmt"

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
		return Config{}, fmt.Errorf("clip: config: %v", err)
	}
	act, err := tensor.ParseAct(f.HiddenAct)
	if err != nil {
		return Config{}, fmt.Errorf("clip: config: hidden_act: %v", err)
	}
	c := Config{
		VocabSize: f.VocabSize, Hidden: f.Hidden, Intermediate: f.Intermediate,
		Layers: f.Layers, Heads: f.Heads, MaxPositions: f.MaxPositions,
		Act: act, LayerNormEps: float32(f.LayerNormEps),
	}
	return c, c.Validate()
}

// Validate checks that the sizes describe a model.
func (c Config) Validate() error {
	for _, v := range []struct {
		name string
		n    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.Hidden}, {"intermediate_size", c.Intermediate},
		{"num_hidden_layers", c.Layers}, {"num_attention_heads", c.Heads}, {"max_position_embeddings", c.MaxPositions}} {
		if v.n <= 0 {
			return fmt.Errorf("clip: config: %s %d must be positive", v.name, v.n)
		}
	}
	if c.Hidden%c.Heads != 0 {
		return fmt.Errorf("clip: config: hidden_size %d does not split into %d heads", c.Hidden, c.Heads)
	}
	if c.Act == tensor.ActNone {
		return fmt.Errorf("clip: config: no MLP activation")
	}
	if !(c.LayerNormEps > 0) {
		return fmt.Errorf("clip: config: layer_norm_eps %g must be positive", c.LayerNormEps)
	}
	return nil
}
