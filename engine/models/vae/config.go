// config.go reads a diffusers AutoencoderKL config.json and lists the
// state-dict tensors it implies (248 for the released VAE), encoder
// included, so that a whole checkpoint can be validated although only the
// decoder is built.
package vae

import (
	"encoding/json"
	"fmt"

	"harmony/engine/cfgcheck"
	"harmony/engine/models/nn"
)

// Block types this engine knows.
const (
	DownEncoder = "DownEncoderBlock2D"
	UpDecoder   = "UpDecoderBlock2D"
)

// Config is a resolved AutoencoderKL configuration.
type Config struct {
	InChannels       int      // image channels into the encoder
	OutChannels      int      // image channels out of the decoder
	LatentChannels   int      // latent channels
	BlockOut         []int    // block_out_channels, encoder order (decoder reverses)
	DownTypes        []string // encoder block types
	UpTypes          []string // decoder block types
	LayersPerBlock   int      // resnets per encoder block; decoder blocks have one more
	NormGroups       int      // every GroupNorm's groups
	ScalingFactor    float32  // latents are divided by it before decoding
	ShiftFactor      float32  // and then shifted by it (0 for SD)
	MidAttention     bool     // mid_block_add_attention
	UseQuantConv     bool     // quant_conv exists (encoder side)
	UsePostQuantConv bool     // post_quant_conv exists
	// LegacyAttentionNames selects the mid-block attention spelling of
	// diffusers ≤ 0.16 checkpoints (query/key/value/proj_attn instead of
	// to_q/to_k/to_v/to_out.0). Not a config key: AdaptNames sets it from the
	// checkpoint's names.
	LegacyAttentionNames bool
}

// normEps is the eps of every GroupNorm in the VAE (diffusers hard-codes
// 1e-6 for the encoder and decoder; config.json has no key for it).
const normEps = 1e-6

type rawConfig struct {
	ClassName        string   `json:"_class_name"`
	InChannels       *int     `json:"in_channels"`
	OutChannels      *int     `json:"out_channels"`
	LatentChannels   *int     `json:"latent_channels"`
	BlockOutChannels []int    `json:"block_out_channels"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	LayersPerBlock   *int     `json:"layers_per_block"`
	ActFn            *string  `json:"act_fn"`
	NormNumGroups    *int     `json:"norm_num_groups"`
	ScalingFactor    *float64 `json:"scaling_factor"`
	ShiftFactor      *float64 `json:"shift_factor"`
	MidAttention     *bool    `json:"mid_block_add_attention"`
	UseQuantConv     *bool    `json:"use_quant_conv"`
	UsePostQuantConv *bool    `json:"use_post_quant_conv"`
}

// ConfigError is a config.json value this engine refuses (the shared
// type of every config reader).
type ConfigError = cfgcheck.ConfigError

// configFile is where the config lives in a diffusers checkpoint; the
// catalog replaces it with the path it read.
const configFile = "vae/config.json"

func cerr(key, f string, a ...any) error {
	return &ConfigError{Pkg: "vae", File: configFile, Field: key, Reason: fmt.Sprintf(f, a...)}
}

// ParseConfig reads an AutoencoderKL config.json, filling diffusers'
// defaults for absent keys.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("vae: %s: %v", configFile, err)
	}
	if r.ClassName != "" && r.ClassName != "AutoencoderKL" {
		return nil, cerr("_class_name", "%q is not AutoencoderKL", r.ClassName)
	}
	c := &Config{
		InChannels:       deref(r.InChannels, 3),
		OutChannels:      deref(r.OutChannels, 3),
		LatentChannels:   deref(r.LatentChannels, 4),
		BlockOut:         r.BlockOutChannels,
		DownTypes:        r.DownBlockTypes,
		UpTypes:          r.UpBlockTypes,
		LayersPerBlock:   deref(r.LayersPerBlock, 1),
		NormGroups:       deref(r.NormNumGroups, 32),
		ScalingFactor:    float32(deref(r.ScalingFactor, 0.18215)),
		ShiftFactor:      float32(deref(r.ShiftFactor, 0)),
		MidAttention:     deref(r.MidAttention, true),
		UseQuantConv:     deref(r.UseQuantConv, true),
		UsePostQuantConv: deref(r.UsePostQuantConv, true),
	}
	if c.BlockOut == nil {
		c.BlockOut = []int{64}
	}
	n := len(c.BlockOut)
	if c.DownTypes == nil {
		c.DownTypes = []string{DownEncoder}
	}
	if c.UpTypes == nil {
		c.UpTypes = []string{UpDecoder}
	}
	if len(c.DownTypes) != n || len(c.UpTypes) != n {
		return nil, cerr("block_out_channels", "%d levels, %d down and %d up block types", n, len(c.DownTypes), len(c.UpTypes))
	}
	for _, t := range c.DownTypes {
		if t != DownEncoder {
			return nil, cerr("down_block_types", "%q is not supported (only %s)", t, DownEncoder)
		}
	}
	for _, t := range c.UpTypes {
		if t != UpDecoder {
			return nil, cerr("up_block_types", "%q is not supported (only %s)", t, UpDecoder)
		}
	}
	if a := deref(r.ActFn, "silu"); a != "silu" && a != "swish" {
		return nil, cerr("act_fn", "%q is not supported (only silu)", a)
	}
	return c, c.check()
}

// check range-checks every size before Tensors lists what they imply.
func (c *Config) check() error {
	ck := &cfgcheck.Checker{Pkg: "vae", File: configFile}
	ck.Int("in_channels", c.InChannels, 1, cfgcheck.MaxChannels)
	ck.Int("out_channels", c.OutChannels, 1, cfgcheck.MaxChannels)
	ck.Int("latent_channels", c.LatentChannels, 1, cfgcheck.MaxChannels)
	ck.Len("block_out_channels", len(c.BlockOut), 1, cfgcheck.MaxLevels)
	ck.Ints("block_out_channels", c.BlockOut, 1, cfgcheck.MaxChannels)
	ck.Int("norm_num_groups", c.NormGroups, 1, cfgcheck.MaxChannels)
	// Encoder blocks have layers_per_block resnets, decoder blocks one more.
	ck.Int("layers_per_block", c.LayersPerBlock, 1, cfgcheck.MaxLayers/(2*max(len(c.BlockOut), 1)))
	ck.Float("scaling_factor", float64(c.ScalingFactor), -1e30, 1e30)
	if c.ScalingFactor == 0 {
		ck.Fail("scaling_factor", nil, "must not be 0")
	}
	ck.Float("shift_factor", float64(c.ShiftFactor), -1e30, 1e30)
	if !ck.OK() {
		return ck.Err()
	}
	var p float64
	for i, chi := range c.BlockOut {
		ck.Divides(fmt.Sprintf("block_out_channels[%d]", i), chi, c.NormGroups, "norm_num_groups")
		ch := float64(chi)
		p += 18 * ch * ch * float64(2*c.LayersPerBlock+1)
	}
	ck.Params("block_out_channels", p)
	return ck.Err()
}

// AdaptNames sets LegacyAttentionNames when a checkpoint spells the
// mid-block attention the old way (has reports whether a name exists).
func (c *Config) AdaptNames(has func(name string) bool) {
	c.LegacyAttentionNames = has("decoder.mid_block.attentions.0.query.weight") ||
		has("encoder.mid_block.attentions.0.query.weight")
}

// Tensors lists every state-dict name of the whole AutoencoderKL (encoder,
// quant convs and decoder) with its stored shape.
func Tensors(cfg *Config) map[string][]int {
	v := nn.Recorder()
	loadEncoder(v, cfg)
	buildDecoder(v, cfg)
	return v.Shapes()
}

// loadEncoder names the encoder's tensors (never run: BLIP-Diffusion only
// decodes).
func loadEncoder(p *nn.Vars, c *Config) {
	n := len(c.BlockOut)
	e := p.Sub("encoder")
	conv := func(pp *nn.Vars, name string, out, in, k int) { nn.LoadConv2d(pp, name, out, in, k, true) }
	conv(e, "conv_in", c.BlockOut[0], c.InChannels, 3)
	out := c.BlockOut[0]
	for i := range n {
		in := out
		out = c.BlockOut[i]
		bp := e.At("down_blocks", i)
		for j := range c.LayersPerBlock {
			rin := in
			if j > 0 {
				rin = out
			}
			nn.LoadResnet(bp.At("resnets", j), c.resnetSpec(rin, out))
		}
		if i < n-1 {
			conv(bp, "downsamplers.0.conv", out, out, 3)
		}
	}
	loadMid(e.Sub("mid_block"), c)
	nn.LoadGroupNorm(e, "conv_norm_out", c.BlockOut[n-1], c.NormGroups, normEps)
	conv(e, "conv_out", 2*c.LatentChannels, c.BlockOut[n-1], 3)
	if c.UseQuantConv {
		conv(p, "quant_conv", 2*c.LatentChannels, 2*c.LatentChannels, 1)
	}
}

func (c *Config) resnetSpec(in, out int) nn.ResnetSpec {
	return nn.ResnetSpec{In: in, Out: out, Groups: c.NormGroups, Eps: normEps, OutScale: 1}
}

func deref[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}
