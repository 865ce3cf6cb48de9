// config.go sizes the DINO ViT: from a transformers ViTConfig config.json
// (facebook/dino-vits16) or, for the original checkpoints
// (dino_deitsmall16_pretrain.pth), which carry no config, from the
// checkpoint's own tensor shapes.

package dino

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"harmony/engine/cfgcheck"
	"harmony/engine/tensor"
)

// Layout names a checkpoint's state-dict spelling.
type Layout int

const (
	// LayoutTransformers is transformers' ViTModel (embeddings.cls_token,
	// encoder.layer.N.attention.attention.query, …), optionally below a
	// "vit." prefix (ViTForImageClassification).
	LayoutTransformers Layout = iota
	// LayoutOriginal is facebookresearch/dino's VisionTransformer
	// (cls_token, pos_embed, blocks.N.attn.qkv, norm, …).
	LayoutOriginal
)

// ImageChannels is the pixel input's channel count (RGB).
const ImageChannels = 3

// OriginalHeadDim is the head width of every ViT the original DINO code
// defines (vit_tiny 192/3, vit_small 384/6, vit_base 768/12): the head
// count its checkpoints imply, since they store no config.
const OriginalHeadDim = 64

// OriginalLayerNormEps is the eps of every LayerNorm in the original code
// (partial(nn.LayerNorm, eps=1e-6)).
const OriginalLayerNormEps = 1e-6

// Config sizes the model.
type Config struct {
	Hidden       int        // width D
	Intermediate int        // MLP width
	Layers       int        // transformer blocks
	Heads        int        // attention heads
	ImageSize    int        // input side the position table is built for
	PatchSize    int        // patch side and conv stride
	Act          tensor.Act // MLP activation (exact GELU)
	LayerNormEps float32
	QKVBias      bool
	Layout       Layout
	Prefix       string // state-dict prefix of the backbone ("" or "vit.")
}

// Patches is the number of patches per side.
func (c Config) Patches() int { return c.ImageSize / c.PatchSize }

// Positions is the token count: the class token and one per patch.
func (c Config) Positions() int { return c.Patches()*c.Patches() + 1 }

const configFile = "config.json"

// ParseConfig reads a ViTConfig config.json, with ViTConfig's defaults for
// absent keys.
func ParseConfig(data []byte) (Config, error) {
	f := struct {
		Hidden       int     `json:"hidden_size"`
		Layers       int     `json:"num_hidden_layers"`
		Heads        int     `json:"num_attention_heads"`
		Intermediate int     `json:"intermediate_size"`
		HiddenAct    string  `json:"hidden_act"`
		LayerNormEps float64 `json:"layer_norm_eps"`
		ImageSize    int     `json:"image_size"`
		PatchSize    int     `json:"patch_size"`
		Channels     int     `json:"num_channels"`
		QKVBias      bool    `json:"qkv_bias"`
	}{Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, HiddenAct: "gelu", LayerNormEps: 1e-12,
		ImageSize: 224, PatchSize: 16, Channels: 3, QKVBias: true}
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("dino: %s: %v", configFile, err)
	}
	act, err := tensor.ParseAct(f.HiddenAct)
	if err != nil {
		return Config{}, &cfgcheck.ConfigError{Pkg: "dino", File: configFile, Field: "hidden_act", Reason: "is not supported: " + err.Error()}
	}
	if f.Channels != ImageChannels {
		return Config{}, &cfgcheck.ConfigError{Pkg: "dino", File: configFile, Field: "num_channels", Value: f.Channels, Reason: "must be 3 (RGB)"}
	}
	c := Config{Hidden: f.Hidden, Intermediate: f.Intermediate, Layers: f.Layers, Heads: f.Heads,
		ImageSize: f.ImageSize, PatchSize: f.PatchSize, Act: act, LayerNormEps: float32(f.LayerNormEps),
		QKVBias: f.QKVBias, Layout: LayoutTransformers}
	return c, c.Validate()
}

// ConfigFromShapes sizes a model from a checkpoint's tensor shapes: the
// original layout (cls_token present) or a transformers one (with its
// config only the prefix is found here; see WithPrefix). heads 0 means
// D / OriginalHeadDim.
func ConfigFromShapes(shapes map[string][]int, heads int) (Config, error) {
	cls, ok := shapes["cls_token"]
	if !ok {
		return Config{}, fmt.Errorf("dino: checkpoint has no cls_token: not an original DINO state dict")
	}
	bad := func(name string) error {
		return fmt.Errorf("dino: checkpoint tensor %s has shape %v, unexpected for a DINO ViT", name, shapes[name])
	}
	if len(cls) != 3 || cls[0] != 1 || cls[1] != 1 {
		return Config{}, bad("cls_token")
	}
	d := cls[2]
	pe, pos := shapes["patch_embed.proj.weight"], shapes["pos_embed"]
	if len(pe) != 4 || pe[0] != d || pe[1] != ImageChannels || pe[2] != pe[3] {
		return Config{}, bad("patch_embed.proj.weight")
	}
	if len(pos) != 3 || pos[0] != 1 || pos[2] != d {
		return Config{}, bad("pos_embed")
	}
	g := 0
	for g*g < pos[1]-1 {
		g++
	}
	if g*g != pos[1]-1 {
		return Config{}, fmt.Errorf("dino: pos_embed has %d patch positions, not a square grid", pos[1]-1)
	}
	layers := 0
	for name := range shapes {
		if rest, ok := strings.CutPrefix(name, "blocks."); ok {
			i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)])
			if err == nil && i+1 > layers {
				layers = i + 1
			}
		}
	}
	fc1 := shapes["blocks.0.mlp.fc1.weight"]
	if len(fc1) != 2 || fc1[1] != d {
		return Config{}, bad("blocks.0.mlp.fc1.weight")
	}
	if heads == 0 {
		heads = d / OriginalHeadDim
	}
	_, qkvBias := shapes["blocks.0.attn.qkv.bias"]
	c := Config{Hidden: d, Intermediate: fc1[0], Layers: layers, Heads: heads, ImageSize: g * pe[2], PatchSize: pe[2],
		Act: tensor.ActGELU, LayerNormEps: OriginalLayerNormEps, QKVBias: qkvBias, Layout: LayoutOriginal}
	return c, c.Validate()
}

// WithPrefix returns c with the backbone prefix the checkpoint uses: "vit."
// when its names carry one (ViTForImageClassification and the like).
func (c Config) WithPrefix(names []string) Config {
	if c.Layout != LayoutTransformers {
		return c
	}
	for _, n := range names {
		if n == "vit.embeddings.cls_token" {
			c.Prefix = "vit."
			return c
		}
	}
	return c
}

// Validate checks that the sizes describe a model of bounded size.
func (c Config) Validate() error {
	ck := &cfgcheck.Checker{Pkg: "dino", File: configFile}
	ck.Int("hidden_size", c.Hidden, 1, cfgcheck.MaxChannels)
	ck.Int("intermediate_size", c.Intermediate, 1, 4*cfgcheck.MaxChannels)
	ck.Int("num_hidden_layers", c.Layers, 1, cfgcheck.MaxLayers)
	ck.Int("num_attention_heads", c.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("image_size", c.ImageSize, 1, cfgcheck.MaxImageSide)
	ck.Int("patch_size", c.PatchSize, 1, cfgcheck.MaxImageSide)
	if c.Act == tensor.ActNone {
		ck.Fail("hidden_act", nil, "must name an MLP activation")
	}
	ck.Positive("layer_norm_eps", float64(c.LayerNormEps), 1)
	if !ck.OK() {
		return ck.Err()
	}
	ck.Divides("hidden_size", c.Hidden, c.Heads, "num_attention_heads")
	ck.Divides("image_size", c.ImageSize, c.PatchSize, "patch_size")
	if !ck.OK() {
		return ck.Err()
	}
	if p := c.Patches(); p*p+1 > cfgcheck.MaxPositions {
		ck.Fail("image_size", c.ImageSize, "implies %d patch positions, more than %d", p*p+1, cfgcheck.MaxPositions)
	}
	h, i := float64(c.Hidden), float64(c.Intermediate)
	ck.Params("num_hidden_layers", float64(c.Positions())*h+float64(c.PatchSize*c.PatchSize*ImageChannels)*h+float64(c.Layers)*(4*h*h+2*h*i))
	return ck.Err()
}
