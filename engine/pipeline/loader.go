// loader.go connects the pipeline to the loader: the parts of a loaded
// checkpoint, and the shape table (catalog.BLIPDiffusion's) that harmony
// pack and loads check against.
package pipeline

import (
	"context"

	"harmony/engine/models/catalog"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// Load reads a checkpoint from src onto b and assembles the pipeline. The
// loaded model comes back too, for callers that report on its weights; when
// assembly fails nothing stays on the device.
func Load(ctx context.Context, src loader.Source, b tensor.Backend, opt *loader.Options) (*Model, *loader.Model, error) {
	lm, err := loader.Load(ctx, src, b, opt)
	if err != nil {
		return nil, nil, err
	}
	m, err := Assemble(b, ComponentsFromLoader(lm))
	if err != nil {
		lm.Free(b)
		return nil, nil, err
	}
	return m, lm, nil
}

// ComponentsFromLoader collects a loaded checkpoint's parts.
func ComponentsFromLoader(lm *loader.Model) *Components {
	c := &Components{
		Name:       lm.Source,
		ModelIndex: lm.Index,
		Configs:    lm.Configs,
		Weights:    lm.Weights,
		BERTVocab:  lm.BertVocab(),
		Tokenizer: tokenizer.CLIPFiles{
			Vocab:            lm.Files["tokenizer/vocab.json"],
			Merges:           lm.Files["tokenizer/merges.txt"],
			SpecialTokensMap: lm.Files["tokenizer/special_tokens_map.json"],
			TokenizerConfig:  lm.Files["tokenizer/tokenizer_config.json"],
		},
	}
	if c.Tokenizer.TokenizerConfig == nil {
		c.Tokenizer.TokenizerConfig = lm.Configs["tokenizer"]
	}
	return c
}

// ExpectedShapes is a loader.ShapeTable: every state-dict name and shape
// the model code reads for a BLIP-Diffusion component, from its config.
// Components it does not know are not checked.
func ExpectedShapes(component string, config []byte) (map[string][]int, error) {
	return catalog.BLIPDiffusion.Shapes(component, config)
}

var _ loader.ShapeTable = ExpectedShapes
