// text.go implements transformers' CLIPTextModel with its projection (the
// text side of a whole CLIPModel, CLIPTextModelWithProjection): the plain
// text transformer (TextModel without context), pooled at the EOS token,
// then text_projection. This is what CLIP-T scores read.

package clip

import (
	"encoding/json"
	"fmt"
	"slices"

	"harmony/engine/models/nn"
	"harmony/engine/tensor"
)

// LegacyEOSTokenID is the eos_token_id of configs saved before
// transformers fixed it (the released openai ones): the pooled token is
// then the one with the highest id in the row (EOS is the last entry of the
// vocabulary).
const LegacyEOSTokenID = 2

// TextConfig sizes a standard CLIP text tower.
type TextConfig struct {
	Config
	EOSTokenID int // eos_token_id: where the pooled output is read (see LegacyEOSTokenID)
	// ProjectionDim is the width of text_projection (no bias); 0 when the
	// checkpoint has none (CLIPTextModel).
	ProjectionDim int
}

// ParseTextConfig reads a CLIPTextConfig config.json or a whole CLIPModel
// config.json (its text_config). A whole model has text_projection sized
// by the top-level projection_dim; a text config has one only when its
// architectures name CLIPTextModelWithProjection.
func ParseTextConfig(data []byte) (TextConfig, error) {
	src, whole, topProj, err := subConfig(data, "text_config")
	if err != nil {
		return TextConfig{}, fmt.Errorf("clip: %s: %v", configFile, err)
	}
	base, err := ParseConfig(src)
	if err != nil {
		return TextConfig{}, err
	}
	f := struct {
		EOS           int      `json:"eos_token_id"`
		ProjectionDim int      `json:"projection_dim"`
		Architectures []string `json:"architectures"`
	}{EOS: 49407, ProjectionDim: 512}
	if err := json.Unmarshal(src, &f); err != nil {
		return TextConfig{}, fmt.Errorf("clip: %s: %v", configFile, err)
	}
	c := TextConfig{Config: base, EOSTokenID: f.EOS}
	switch {
	case whole:
		c.ProjectionDim = topProj
	case slices.Contains(f.Architectures, "CLIPTextModelWithProjection"):
		c.ProjectionDim = f.ProjectionDim
	}
	if c.ProjectionDim < 0 || c.ProjectionDim > 1<<16 {
		return TextConfig{}, fmt.Errorf("clip: %s: projection_dim %d out of range", configFile, c.ProjectionDim)
	}
	return c, nil
}

// TextEncoder is a loaded standard CLIP text tower. It owns its weights.
type TextEncoder struct {
	Config TextConfig
	text   *TextModel
	proj   nn.Linear // text_projection [P, D]; W nil without one
}

func buildTextEncoder(cfg TextConfig, v *nn.Vars) *TextEncoder {
	m := &TextEncoder{Config: cfg, text: buildText(cfg.Config, v, cfg.LayerNormEps)}
	if cfg.ProjectionDim > 0 {
		m.proj = nn.LoadLinear(v, "text_projection", cfg.ProjectionDim, cfg.Hidden, false)
	}
	return m
}

// TextTensors lists every state-dict name the text tower reads (under
// text_model., plus text_projection.weight with a projection).
func TextTensors(cfg TextConfig) map[string][]int {
	v := nn.Recorder()
	buildTextEncoder(cfg, v)
	return v.Shapes()
}

// LoadText checks every tensor for presence and shape, then owns w (tensors
// it does not read included).
func LoadText(b tensor.Backend, cfg TextConfig, w *tensor.Weights) (*TextEncoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := nn.NewVars(b, w)
	m := buildTextEncoder(cfg, v)
	if err := v.Finish("clip"); err != nil {
		return nil, err
	}
	m.text.weights = w
	return m, nil
}

// Free releases the weights.
func (m *TextEncoder) Free(b tensor.Backend) { m.text.Free(b) }

// HasProjection reports whether the tower was loaded with text_projection.
func (m *TextEncoder) HasProjection() bool { return m.proj.W != nil }

// TextOutput is what Forward returns; the caller frees it.
type TextOutput struct {
	Last   *tensor.Tensor // last_hidden_state after final_layer_norm [B, S, D]
	Pooled *tensor.Tensor // pooler_output: Last at each row's EOS [B, D]
}

// Free releases the output's tensors.
func (o *TextOutput) Free(b tensor.Backend) {
	if o != nil {
		b.Free(o.Last, o.Pooled)
		o.Last, o.Pooled = nil, nil
	}
}

// PoolIndex is where transformers reads a row's pooled output: with the
// legacy eos_token_id the first position of the highest id, else the first
// position of eos_token_id (0 when absent, as torch's argmax of all-false).
func (c TextConfig) PoolIndex(ids []int32) int {
	best := 0
	for i, id := range ids {
		if c.EOSTokenID == LegacyEOSTokenID {
			if id > ids[best] {
				best = i
			}
		} else if id == int32(c.EOSTokenID) {
			return i
		}
	}
	if c.EOSTokenID != LegacyEOSTokenID {
		return 0
	}
	return best
}

// Forward runs the text tower on B rows of equal length (token ids with
// BOS and EOS, padded; no padding mask is needed: the causal mask keeps
// padding after EOS out of the pooled token).
func (m *TextEncoder) Forward(b tensor.Backend, ids [][]int32) (*TextOutput, error) {
	last, err := m.text.Encode(b, ids, nil, nil)
	if err != nil {
		return nil, err
	}
	nt, d := last.Shape[1], last.Shape[2]
	parts := make([]*tensor.Tensor, len(ids))
	for r, row := range ids {
		parts[r] = b.View(last, (r*nt+m.Config.PoolIndex(row))*d, 1, d)
	}
	out := &TextOutput{Last: last, Pooled: b.Concat(0, parts...)}
	if err := b.Err(); err != nil {
		out.Free(b)
		return nil, err
	}
	return out, nil
}

// Project is text_projection: pooled [B, D] → text_embeds [B, P] (not
// normalized). The caller frees the result.
func (m *TextEncoder) Project(b tensor.Backend, pooled *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if m.proj.W == nil {
		return nil, fmt.Errorf("clip: text: the checkpoint has no text_projection")
	}
	if pooled == nil || len(pooled.Shape) != 2 || pooled.Shape[1] != m.Config.Hidden || pooled.DType != tensor.F32 {
		return nil, fmt.Errorf("clip: text: pooled %v must be f32 [B, %d]", pooled, m.Config.Hidden)
	}
	y := m.proj.Forward(b, pooled, tensor.Epilogue{})
	if err := b.Err(); err != nil {
		b.Free(y)
		return nil, err
	}
	return y, nil
}
