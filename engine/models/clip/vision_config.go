// vision_config.go parses the vision tower's config: a CLIPVisionConfig
// config.json (CLIPVisionModel, CLIPVisionModelWithProjection) or a whole
// CLIPModel config.json, whose vision_config it reads, each with
// transformers' class defaults for the keys a file leaves out.

package clip

import (
	"encoding/json"
	"fmt"
	"slices"

	"harmony/engine/cfgcheck"
	"harmony/engine/tensor"
)

// ImageChannels is the pixel input's channel count (RGB).
const ImageChannels = 3

// VisionConfig sizes the CLIP vision transformer.
type VisionConfig struct {
	Hidden       int        // hidden_size: width D
	Intermediate int        // intermediate_size: MLP width
	Layers       int        // num_hidden_layers
	Heads        int        // num_attention_heads
	ImageSize    int        // image_size: the input side the position table is built for
	PatchSize    int        // patch_size: patch side and conv stride
	Act          tensor.Act // hidden_act (quick_gelu for OpenAI CLIP)
	LayerNormEps float32    // layer_norm_eps of every LayerNorm of the tower
	// ProjectionDim is the width of visual_projection (no bias) when the
	// checkpoint has one (a whole CLIPModel, CLIPVisionModelWithProjection);
	// 0 when it has none (CLIPVisionModel).
	ProjectionDim int
}

// Patches is the number of patches per side.
func (c VisionConfig) Patches() int { return c.ImageSize / c.PatchSize }

// Positions is the token count T: the class token and one per patch.
func (c VisionConfig) Positions() int { return c.Patches()*c.Patches() + 1 }

// visionFile mirrors CLIPVisionConfig's keys, pre-filled with its defaults.
type visionFile struct {
	Hidden        int      `json:"hidden_size"`
	Intermediate  int      `json:"intermediate_size"`
	Layers        int      `json:"num_hidden_layers"`
	Heads         int      `json:"num_attention_heads"`
	Channels      int      `json:"num_channels"`
	ImageSize     int      `json:"image_size"`
	PatchSize     int      `json:"patch_size"`
	HiddenAct     string   `json:"hidden_act"`
	LayerNormEps  float64  `json:"layer_norm_eps"`
	ProjectionDim int      `json:"projection_dim"`
	Architectures []string `json:"architectures"`
}

func defaultVisionFile() visionFile {
	return visionFile{
		Hidden: 768, Intermediate: 3072, Layers: 12, Heads: 12, Channels: 3,
		ImageSize: 224, PatchSize: 32, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		ProjectionDim: 512,
	}
}

// visionConfigFile is where the config conventionally lives; the catalog
// replaces it with the path it read.
const visionConfigFile = "image_encoder/config.json"

// ParseVisionConfig reads a CLIPVisionConfig config.json or a whole
// CLIPModel config.json (recognized by its vision_config). A whole model
// has visual_projection sized by its top-level projection_dim; a vision
// config has one only when its architectures name
// CLIPVisionModelWithProjection.
func ParseVisionConfig(data []byte) (VisionConfig, error) {
	sub, whole, topProj, err := subConfig(data, "vision_config")
	if err != nil {
		return VisionConfig{}, fmt.Errorf("clip: %s: %v", visionConfigFile, err)
	}
	f := defaultVisionFile()
	field := ""
	if whole {
		field = "vision_config."
	}
	if err := json.Unmarshal(sub, &f); err != nil {
		return VisionConfig{}, fmt.Errorf("clip: %s: %v", visionConfigFile, err)
	}
	act, err := tensor.ParseAct(f.HiddenAct)
	if err != nil {
		return VisionConfig{}, &cfgcheck.ConfigError{Pkg: "clip", File: visionConfigFile, Field: field + "hidden_act", Reason: "is not supported: " + err.Error()}
	}
	if f.Channels != ImageChannels {
		return VisionConfig{}, &cfgcheck.ConfigError{Pkg: "clip", File: visionConfigFile, Field: field + "num_channels", Value: f.Channels, Reason: "must be 3 (RGB)"}
	}
	c := VisionConfig{
		Hidden: f.Hidden, Intermediate: f.Intermediate, Layers: f.Layers, Heads: f.Heads,
		ImageSize: f.ImageSize, PatchSize: f.PatchSize, Act: act, LayerNormEps: float32(f.LayerNormEps),
	}
	switch {
	case whole:
		// CLIPConfig's own projection_dim (default 512) sizes both
		// projections of a whole model.
		c.ProjectionDim = topProj
	case slices.Contains(f.Architectures, "CLIPVisionModelWithProjection"):
		c.ProjectionDim = f.ProjectionDim
	}
	return c, c.Validate()
}

// subConfig finds one tower's config in a config.json: a whole CLIPConfig
// (key present: "text_config" or "vision_config") or the tower's own
// config (data itself). As CLIPConfig does, a legacy key+"_dict" entry wins:
// its values, completed with the tower's defaults, replace key's. topProj
// is a whole config's projection_dim (default 512).
func subConfig(data []byte, key string) (sub []byte, whole bool, topProj int, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, false, 0, err
	}
	present := func(k string) bool { v, ok := top[k]; return ok && string(v) != "null" }
	topProj = 512
	if present("projection_dim") {
		if err := json.Unmarshal(top["projection_dim"], &topProj); err != nil {
			return nil, false, 0, fmt.Errorf("projection_dim: %v", err)
		}
	}
	switch {
	case present(key + "_dict"):
		return top[key+"_dict"], true, topProj, nil
	case present(key):
		return top[key], true, topProj, nil
	}
	return data, false, topProj, nil
}

// Validate checks that the sizes describe a model of bounded size.
func (c VisionConfig) Validate() error {
	ck := &cfgcheck.Checker{Pkg: "clip", File: visionConfigFile}
	ck.Int("hidden_size", c.Hidden, 1, cfgcheck.MaxChannels)
	ck.Int("intermediate_size", c.Intermediate, 1, 4*cfgcheck.MaxChannels)
	ck.Int("num_hidden_layers", c.Layers, 1, cfgcheck.MaxLayers)
	ck.Int("num_attention_heads", c.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("image_size", c.ImageSize, 1, cfgcheck.MaxImageSide)
	ck.Int("patch_size", c.PatchSize, 1, cfgcheck.MaxImageSide)
	ck.Int("projection_dim", c.ProjectionDim, 0, cfgcheck.MaxChannels)
	if c.Act == tensor.ActNone {
		ck.Fail("hidden_act", nil, "must name an MLP activation")
	}
	ck.Positive("layer_norm_eps", float64(c.LayerNormEps), 1)
	if !ck.OK() {
		return ck.Err()
	}
	ck.Divides("hidden_size", c.Hidden, c.Heads, "num_attention_heads")
	// The position table assumes whole patches.
	ck.Divides("image_size", c.ImageSize, c.PatchSize, "patch_size")
	if !ck.OK() {
		return ck.Err()
	}
	if p := c.Patches(); p*p+1 > cfgcheck.MaxPositions {
		ck.Fail("image_size", c.ImageSize, "implies %d patch positions, more than %d", p*p+1, cfgcheck.MaxPositions)
	}
	h, i := float64(c.Hidden), float64(c.Intermediate)
	ck.Params("num_hidden_layers", float64(c.Positions())*h+float64(c.PatchSize*c.PatchSize*ImageChannels)*h+
		float64(c.Layers)*(4*h*h+2*h*i)+h*float64(c.ProjectionDim))
	return ck.Err()
}
