// config.go reads a diffusers UNet2DConditionModel config.json into the
// per-block sizes the model is built from, and
// refuses configurations this engine does not implement with a plain error
// naming the key.
package unet

import (
	"encoding/json"
	"fmt"
	"strings"

	"harmony/engine/cfgcheck"
)

// Block types this engine builds. diffusers strips a "UNetRes" prefix from
// block type names, and so do we.
const (
	CrossAttnDown = "CrossAttnDownBlock2D"
	Down          = "DownBlock2D"
	CrossAttnUp   = "CrossAttnUpBlock2D"
	Up            = "UpBlock2D"
	MidCrossAttn  = "UNetMidBlock2DCrossAttn"
	MidPlain      = "UNetMidBlock2D" // one resnet, no attention
)

// Config is a resolved UNet2DConditionModel configuration: every per-block
// quantity expanded to one entry per down block (index i) or per up block
// (index j = reversed order), as diffusers expands them in its constructor.
type Config struct {
	InChannels        int      // latent channels in
	OutChannels       int      // latent channels out
	SampleSize        int      // latent side the model was trained at (informational)
	CenterInputSample bool     // sample ← 2·sample − 1 first
	FlipSinToCos      bool     // sinusoid order [cos, sin]
	FreqShift         float32  // downscale_freq_shift of the sinusoid
	BlockOut          []int    // block_out_channels: channels per level
	DownTypes         []string // down block types (prefix-normalised)
	UpTypes           []string // up block types
	MidType           string   // mid block type, "" for none
	LayersPerBlock    []int    // resnets per down block; up block j has reversed[j]+1
	DownsamplePadding int      // padding of the stride-2 downsampler conv (only 1 supported)
	MidScale          float32  // mid_block_scale_factor: mid resnets' output divisor
	ActFn             string   // "silu"
	NormGroups        int      // norm_num_groups
	NormEps           float32  // norm_eps of resnets and conv_norm_out
	TimeEmbedDim      int      // time_embedding_dim, default 4·BlockOut[0]
	TimeEmbedAct      bool     // time_embedding_act_fn "silu": SiLU(emb) once more
	TimestepPostAct   bool     // timestep_post_act "silu": SiLU after linear_2
	ConvInKernel      int      // conv_in kernel side (odd)
	ConvOutKernel     int      // conv_out kernel side (odd)
	UseLinearProj     bool     // proj_in/proj_out are Linear, not 1×1 conv
	UpcastAttention   bool     // reference upcasts q·k to f32; we always compute in f32

	// Per down block i (the mid block uses the last entry, up block j the
	// entry of down block n−1−j).
	Heads      []int  // attention heads (num_attention_heads, else attention_head_dim)
	CrossDim   []int  // cross_attention_dim
	OnlyCross  []bool // attn1 attends to the context too (no self-attention)
	DownTLayer [][]int
	MidTLayers int     // transformer blocks in the mid block's Transformer2DModel
	UpTLayer   [][]int // per up block, per resnet: transformer blocks
}

// Levels is the number of resolution levels (len(block_out_channels)).
func (c *Config) Levels() int { return len(c.BlockOut) }

// rawConfig mirrors the JSON keys; fields that may be an int or a list are
// kept raw and expanded by expandInts.
type rawConfig struct {
	ClassName                 string          `json:"_class_name"`
	InChannels                *int            `json:"in_channels"`
	OutChannels               *int            `json:"out_channels"`
	SampleSize                json.RawMessage `json:"sample_size"`
	CenterInputSample         bool            `json:"center_input_sample"`
	FlipSinToCos              *bool           `json:"flip_sin_to_cos"`
	FreqShift                 float64         `json:"freq_shift"`
	DownBlockTypes            []string        `json:"down_block_types"`
	MidBlockType              json.RawMessage `json:"mid_block_type"`
	UpBlockTypes              []string        `json:"up_block_types"`
	OnlyCrossAttention        json.RawMessage `json:"only_cross_attention"`
	BlockOutChannels          []int           `json:"block_out_channels"`
	LayersPerBlock            json.RawMessage `json:"layers_per_block"`
	DownsamplePadding         *int            `json:"downsample_padding"`
	MidBlockScaleFactor       *float64        `json:"mid_block_scale_factor"`
	ActFn                     *string         `json:"act_fn"`
	NormNumGroups             json.RawMessage `json:"norm_num_groups"`
	NormEps                   *float64        `json:"norm_eps"`
	CrossAttentionDim         json.RawMessage `json:"cross_attention_dim"`
	TransformerLayers         json.RawMessage `json:"transformer_layers_per_block"`
	ReverseTransformerLayers  json.RawMessage `json:"reverse_transformer_layers_per_block"`
	EncoderHidDim             json.RawMessage `json:"encoder_hid_dim"`
	EncoderHidDimType         *string         `json:"encoder_hid_dim_type"`
	AttentionHeadDim          json.RawMessage `json:"attention_head_dim"`
	NumAttentionHeads         json.RawMessage `json:"num_attention_heads"`
	DualCrossAttention        bool            `json:"dual_cross_attention"`
	UseLinearProjection       bool            `json:"use_linear_projection"`
	ClassEmbedType            *string         `json:"class_embed_type"`
	AdditionEmbedType         *string         `json:"addition_embed_type"`
	NumClassEmbeds            json.RawMessage `json:"num_class_embeds"`
	UpcastAttention           bool            `json:"upcast_attention"`
	ResnetTimeScaleShift      *string         `json:"resnet_time_scale_shift"`
	TimeEmbeddingType         *string         `json:"time_embedding_type"`
	TimeEmbeddingDim          *int            `json:"time_embedding_dim"`
	TimeEmbeddingActFn        *string         `json:"time_embedding_act_fn"`
	TimestepPostAct           *string         `json:"timestep_post_act"`
	TimeCondProjDim           json.RawMessage `json:"time_cond_proj_dim"`
	ConvInKernel              *int            `json:"conv_in_kernel"`
	ConvOutKernel             *int            `json:"conv_out_kernel"`
	AttentionType             *string         `json:"attention_type"`
	ClassEmbeddingsConcat     bool            `json:"class_embeddings_concat"`
	MidBlockOnlyCrossAttn     *bool           `json:"mid_block_only_cross_attention"`
	ProjectionClassEmbeddings json.RawMessage `json:"projection_class_embeddings_input_dim"`
}

// ConfigError is a config.json value this engine refuses (the shared
// type of every config reader).
type ConfigError = cfgcheck.ConfigError

// configFile is where the config lives in a diffusers checkpoint; the
// catalog replaces it with the path it read.
const configFile = "unet/config.json"

func cerr(key, f string, a ...any) error {
	return &ConfigError{Pkg: "unet", File: configFile, Field: key, Reason: fmt.Sprintf(f, a...)}
}

func isNull(r json.RawMessage) bool { return len(r) == 0 || string(r) == "null" }

// ParseConfig reads a UNet2DConditionModel config.json, fills diffusers'
// defaults for absent keys and expands per-block values.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("unet: %s: %v", configFile, err)
	}
	if r.ClassName != "" && r.ClassName != "UNet2DConditionModel" {
		return nil, cerr("_class_name", "%q is not UNet2DConditionModel", r.ClassName)
	}
	c := &Config{
		InChannels:        intOr(r.InChannels, 4),
		OutChannels:       intOr(r.OutChannels, 4),
		CenterInputSample: r.CenterInputSample,
		FlipSinToCos:      r.FlipSinToCos == nil || *r.FlipSinToCos,
		FreqShift:         float32(r.FreqShift),
		BlockOut:          r.BlockOutChannels,
		DownsamplePadding: intOr(r.DownsamplePadding, 1),
		ActFn:             strOr(r.ActFn, "silu"),
		NormEps:           float32(floatOr(r.NormEps, 1e-5)),
		MidScale:          float32(floatOr(r.MidBlockScaleFactor, 1)),
		ConvInKernel:      intOr(r.ConvInKernel, 3),
		ConvOutKernel:     intOr(r.ConvOutKernel, 3),
		UseLinearProj:     r.UseLinearProjection,
		UpcastAttention:   r.UpcastAttention,
	}
	if c.BlockOut == nil {
		c.BlockOut = []int{320, 640, 1280, 1280}
	}
	n := len(c.BlockOut)
	ck := &cfgcheck.Checker{Pkg: "unet", File: configFile}
	ck.Len("block_out_channels", n, 1, cfgcheck.MaxLevels)
	ck.Ints("block_out_channels", c.BlockOut, 1, cfgcheck.MaxChannels)
	if err := ck.Err(); err != nil {
		return nil, err
	}
	c.DownTypes = normTypes(r.DownBlockTypes, []string{CrossAttnDown, CrossAttnDown, CrossAttnDown, Down})
	c.UpTypes = normTypes(r.UpBlockTypes, []string{Up, CrossAttnUp, CrossAttnUp, CrossAttnUp})
	// An absent mid_block_type means the default block; an explicit null
	// means none.
	c.MidType = MidCrossAttn
	switch {
	case string(r.MidBlockType) == "null":
		c.MidType = ""
	case len(r.MidBlockType) > 0:
		if err := json.Unmarshal(r.MidBlockType, &c.MidType); err != nil {
			return nil, cerr("mid_block_type", "%v", err)
		}
		c.MidType = strings.TrimPrefix(c.MidType, "UNetRes")
	}
	if len(c.DownTypes) != n || len(c.UpTypes) != n {
		return nil, cerr("down_block_types", "%d down and %d up block types for %d block_out_channels", len(c.DownTypes), len(c.UpTypes), n)
	}
	for _, t := range c.DownTypes {
		if t != CrossAttnDown && t != Down {
			return nil, cerr("down_block_types", "block type %q is not supported (only %s, %s)", t, CrossAttnDown, Down)
		}
	}
	for _, t := range c.UpTypes {
		if t != CrossAttnUp && t != Up {
			return nil, cerr("up_block_types", "block type %q is not supported (only %s, %s)", t, CrossAttnUp, Up)
		}
	}
	switch c.MidType {
	case MidCrossAttn, MidPlain, "":
	default:
		return nil, cerr("mid_block_type", "%q is not supported (only %s, %s or null)", c.MidType, MidCrossAttn, MidPlain)
	}
	var err error
	if c.SampleSize, err = sampleSize(r.SampleSize); err != nil {
		return nil, err
	}
	if c.LayersPerBlock, err = expandInts("layers_per_block", r.LayersPerBlock, n, 2); err != nil {
		return nil, err
	}
	if c.CrossDim, err = expandInts("cross_attention_dim", r.CrossAttentionDim, n, 1280); err != nil {
		return nil, err
	}
	// The head count: num_attention_heads when given, else attention_head_dim
	// (diffusers' naming quirk: SD configs store the head count there).
	heads := r.NumAttentionHeads
	if isNull(heads) {
		heads = r.AttentionHeadDim
	}
	if c.Heads, err = expandInts("attention_head_dim", heads, n, 8); err != nil {
		return nil, err
	}
	if c.OnlyCross, err = expandBools("only_cross_attention", r.OnlyCrossAttention, n); err != nil {
		return nil, err
	}
	if isNull(r.NormNumGroups) {
		c.NormGroups = 32
		if string(r.NormNumGroups) == "null" {
			return nil, cerr("norm_num_groups", "null (no conv_norm_out) is not supported")
		}
	} else if err := json.Unmarshal(r.NormNumGroups, &c.NormGroups); err != nil {
		return nil, cerr("norm_num_groups", "%v", err)
	}
	c.TimeEmbedDim = 4 * c.BlockOut[0]
	if r.TimeEmbeddingDim != nil {
		c.TimeEmbedDim = *r.TimeEmbeddingDim
	}
	// Everything that sizes an allocation is checked before the transformer
	// layer lists (one entry per resnet) are built.
	if err := c.checkSizes(ck, !isNull(r.SampleSize)); err != nil {
		return nil, err
	}
	if err := c.transformerLayers(r.TransformerLayers, r.ReverseTransformerLayers); err != nil {
		return nil, err
	}
	if err := c.checkTransformers(ck); err != nil {
		return nil, err
	}
	if c.TimeEmbedAct, err = optionalSiLU("time_embedding_act_fn", r.TimeEmbeddingActFn); err != nil {
		return nil, err
	}
	if c.TimestepPostAct, err = optionalSiLU("timestep_post_act", r.TimestepPostAct); err != nil {
		return nil, err
	}

	// Features that change the graph in ways this engine does not build.
	switch {
	case r.ClassEmbedType != nil:
		return nil, cerr("class_embed_type", "%q: class embeddings are not supported", *r.ClassEmbedType)
	case !isNull(r.NumClassEmbeds):
		return nil, cerr("num_class_embeds", "class embeddings are not supported")
	case r.ClassEmbeddingsConcat:
		return nil, cerr("class_embeddings_concat", "class embeddings are not supported")
	case r.AdditionEmbedType != nil:
		return nil, cerr("addition_embed_type", "%q is not supported", *r.AdditionEmbedType)
	case !isNull(r.EncoderHidDim) || r.EncoderHidDimType != nil:
		return nil, cerr("encoder_hid_dim", "an encoder_hid_proj is not supported")
	case r.DualCrossAttention:
		return nil, cerr("dual_cross_attention", "not supported")
	case strOr(r.ResnetTimeScaleShift, "default") != "default":
		return nil, cerr("resnet_time_scale_shift", "%q is not supported (only \"default\")", *r.ResnetTimeScaleShift)
	case strOr(r.TimeEmbeddingType, "positional") != "positional":
		return nil, cerr("time_embedding_type", "%q is not supported (only \"positional\")", *r.TimeEmbeddingType)
	case !isNull(r.TimeCondProjDim):
		return nil, cerr("time_cond_proj_dim", "timestep conditioning is not supported")
	case strOr(r.AttentionType, "default") != "default":
		return nil, cerr("attention_type", "%q is not supported (only \"default\")", *r.AttentionType)
	case c.ActFn != "silu" && c.ActFn != "swish":
		return nil, cerr("act_fn", "%q is not supported (only silu)", c.ActFn)
	case c.DownsamplePadding != 1:
		// Padding 0 pads right and bottom only (an asymmetric pad the conv op
		// does not have); SD-family UNets use 1.
		return nil, cerr("downsample_padding", "%d is not supported (only 1)", c.DownsamplePadding)
	case c.ConvInKernel%2 != 1 || c.ConvOutKernel%2 != 1:
		return nil, cerr("conv_in_kernel", "kernels %d / %d must be odd", c.ConvInKernel, c.ConvOutKernel)
	case c.BlockOut[0]%2 != 0:
		return nil, cerr("block_out_channels", "the sinusoid width %d must be even", c.BlockOut[0])
	case c.MidScale == 0:
		return nil, cerr("mid_block_scale_factor", "must not be 0")
	}
	return c, nil
}

// checkSizes range-checks every size except the transformer layer counts:
// all positive and bounded, the channels of every level splitting into
// the norm groups and the attention heads, the resnet count bounded in
// total. hasSample says sample_size was given.
func (c *Config) checkSizes(ck *cfgcheck.Checker, hasSample bool) error {
	ck.Int("in_channels", c.InChannels, 1, cfgcheck.MaxChannels)
	ck.Int("out_channels", c.OutChannels, 1, cfgcheck.MaxChannels)
	if hasSample {
		ck.Int("sample_size", c.SampleSize, 1, cfgcheck.MaxPositions)
	}
	ck.Int("norm_num_groups", c.NormGroups, 1, cfgcheck.MaxChannels)
	ck.Ints("layers_per_block", c.LayersPerBlock, 1, cfgcheck.MaxLayers)
	ck.Ints("cross_attention_dim", c.CrossDim, 1, cfgcheck.MaxChannels)
	ck.Ints("attention_head_dim", c.Heads, 1, cfgcheck.MaxChannels)
	ck.Int("time_embedding_dim", c.TimeEmbedDim, 1, 4*cfgcheck.MaxChannels)
	ck.Int("conv_in_kernel", c.ConvInKernel, 1, cfgcheck.MaxKernel)
	ck.Int("conv_out_kernel", c.ConvOutKernel, 1, cfgcheck.MaxKernel)
	ck.Positive("norm_eps", float64(c.NormEps), 1)
	ck.Float("mid_block_scale_factor", float64(c.MidScale), -1e30, 1e30)
	if !ck.OK() {
		return ck.Err()
	}
	// The sinusoid divides by half its width minus the shift.
	ck.Float("freq_shift", float64(c.FreqShift), -cfgcheck.MaxChannels, float64(c.BlockOut[0]/2-1))
	for i, ch := range c.BlockOut {
		ck.Divides(fmt.Sprintf("block_out_channels[%d]", i), ch, c.NormGroups, "norm_num_groups")
		if c.Heads[i] > ch {
			ck.Fail(fmt.Sprintf("attention_head_dim[%d]", i), c.Heads[i], "must be ≤ the %d channels of block %d", ch, i)
		}
	}
	resnets := 2 // the mid block's
	for _, l := range c.LayersPerBlock {
		resnets += 2*l + 1 // down block l, up block l+1
	}
	if resnets > cfgcheck.MaxLayers {
		ck.Fail("layers_per_block", nil, "implies %d resnets, more than %d", resnets, cfgcheck.MaxLayers)
	}
	return ck.Err()
}

// checkTransformers bounds the transformer layer counts and the parameter
// count the whole config implies, before Tensors lists them.
func (c *Config) checkTransformers(ck *cfgcheck.Checker) error {
	const key = "transformer_layers_per_block"
	blocks := 0
	for i, l := range c.DownTLayer {
		ck.Ints(fmt.Sprintf("%s[%d]", key, i), l, 1, cfgcheck.MaxLayers)
		blocks += sum(l)
	}
	for j, l := range c.UpTLayer {
		ck.Ints(fmt.Sprintf("reverse_%s[%d]", key, j), l, 1, cfgcheck.MaxLayers)
		blocks += sum(l)
	}
	blocks += c.MidTLayers
	if !ck.OK() {
		return ck.Err()
	}
	if blocks > cfgcheck.MaxLayers {
		ck.Fail(key, nil, "implies %d transformer blocks, more than %d", blocks, cfgcheck.MaxLayers)
	}
	// A rough count (resnet convs, transformer blocks, time embedding) in
	// float64: it only has to keep absurd configs out.
	var p float64
	temb := float64(c.TimeEmbedDim)
	p += temb * (temb + float64(c.BlockOut[0]))
	for i, chi := range c.BlockOut {
		ch := float64(chi)
		res := 18*ch*ch + temb*ch
		tb := 12*ch*ch + 2*ch*float64(c.CrossDim[i])
		p += res * float64(2*c.LayersPerBlock[i]+1)
		p += tb * float64(sum(c.DownTLayer[i])+sum(c.UpTLayer[len(c.BlockOut)-1-i]))
	}
	ck.Params("block_out_channels", p)
	return ck.Err()
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// transformerLayers expands transformer_layers_per_block (an int, or a
// list per down block of an int or a list per resnet) and its reverse.
func (c *Config) transformerLayers(fwd, rev json.RawMessage) error {
	const key = "transformer_layers_per_block"
	n := len(c.BlockOut)
	perBlock, err := nestedInts(key, fwd, n, 1)
	if err != nil {
		return err
	}
	c.DownTLayer = make([][]int, n)
	for i, e := range perBlock {
		if c.DownTLayer[i], err = fill(key, e, c.LayersPerBlock[i]); err != nil {
			return err
		}
	}
	// The mid block has one attention and takes the last entry's first value.
	c.MidTLayers = c.DownTLayer[n-1][0]
	c.UpTLayer = make([][]int, n)
	if isNull(rev) {
		for j := range c.UpTLayer {
			e := perBlock[n-1-j]
			if len(e) > 1 {
				return cerr("reverse_transformer_layers_per_block", "must be given when %s has per-layer lists", key)
			}
			if c.UpTLayer[j], err = fill(key, e, c.LayersPerBlock[n-1-j]+1); err != nil {
				return err
			}
		}
		return nil
	}
	revBlocks, err := nestedInts("reverse_transformer_layers_per_block", rev, n, 1)
	if err != nil {
		return err
	}
	for j, e := range revBlocks {
		if c.UpTLayer[j], err = fill("reverse_transformer_layers_per_block", e, c.LayersPerBlock[n-1-j]+1); err != nil {
			return err
		}
	}
	return nil
}

// fill expands a one-value list to n entries, or checks a list has n.
func fill(key string, e []int, n int) ([]int, error) {
	if len(e) == 1 {
		out := make([]int, n)
		for i := range out {
			out[i] = e[0]
		}
		return out, nil
	}
	if len(e) != n {
		return nil, cerr(key, "%v has %d entries for %d layers", e, len(e), n)
	}
	return e, nil
}

// nestedInts reads an int (→ n × [v]) or a list of n entries, each an int
// or a list of ints.
func nestedInts(key string, raw json.RawMessage, n, def int) ([][]int, error) {
	out := make([][]int, n)
	if isNull(raw) {
		for i := range out {
			out[i] = []int{def}
		}
		return out, nil
	}
	var v int
	if json.Unmarshal(raw, &v) == nil {
		for i := range out {
			out[i] = []int{v}
		}
		return out, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, cerr(key, "%s is neither an int nor a list", raw)
	}
	if len(list) != n {
		return nil, cerr(key, "%d entries for %d blocks", len(list), n)
	}
	for i, e := range list {
		if json.Unmarshal(e, &v) == nil {
			out[i] = []int{v}
			continue
		}
		if err := json.Unmarshal(e, &out[i]); err != nil || len(out[i]) == 0 {
			return nil, cerr(key, "entry %d (%s) is neither an int nor a list of ints", i, e)
		}
	}
	return out, nil
}

// expandInts reads an int (repeated n times) or a list of n ints.
func expandInts(key string, raw json.RawMessage, n, def int) ([]int, error) {
	out := make([]int, n)
	if isNull(raw) {
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	var v int
	if json.Unmarshal(raw, &v) == nil {
		for i := range out {
			out[i] = v
		}
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, cerr(key, "%s is neither an int nor a list of ints", raw)
	}
	if len(out) != n {
		return nil, cerr(key, "%d entries for %d blocks", len(out), n)
	}
	return out, nil
}

// expandBools reads a bool (repeated) or a list of n bools.
func expandBools(key string, raw json.RawMessage, n int) ([]bool, error) {
	out := make([]bool, n)
	if isNull(raw) {
		return out, nil
	}
	var v bool
	if json.Unmarshal(raw, &v) == nil {
		for i := range out {
			out[i] = v
		}
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, cerr(key, "%s is neither a bool nor a list of bools", raw)
	}
	if len(out) != n {
		return nil, cerr(key, "%d entries for %d blocks", len(out), n)
	}
	return out, nil
}

// sampleSize reads an int or an [h, w] pair (informational only).
func sampleSize(raw json.RawMessage) (int, error) {
	if isNull(raw) {
		return 0, nil
	}
	var v int
	if json.Unmarshal(raw, &v) == nil {
		return v, nil
	}
	var hw []int
	if err := json.Unmarshal(raw, &hw); err != nil || len(hw) == 0 {
		return 0, cerr("sample_size", "%s is neither an int nor a list", raw)
	}
	return hw[0], nil
}

func optionalSiLU(key string, s *string) (bool, error) {
	switch {
	case s == nil:
		return false, nil
	case *s == "silu" || *s == "swish":
		return true, nil
	}
	return false, cerr(key, "%q is not supported (only silu or null)", *s)
}

func normTypes(ts, def []string) []string {
	if ts == nil {
		ts = def
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = strings.TrimPrefix(t, "UNetRes")
	}
	return out
}

func intOr(p *int, d int) int {
	if p == nil {
		return d
	}
	return *p
}

func floatOr(p *float64, d float64) float64 {
	if p == nil {
		return d
	}
	return *p
}

func strOr(p *string, d string) string {
	if p == nil {
		return d
	}
	return *p
}
