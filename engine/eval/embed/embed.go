// embed.go: CLIP (image_embeds, text_embeds of a whole CLIPModel
// checkpoint) and DINO (final-norm CLS) as eval.ImageEmbedder and
// eval.TextEmbedder, loaded from a folder or URL.
package embed

import (
	"context"
	"errors"
	"fmt"

	"harmony/engine/imageproc"
	"harmony/engine/models/clip"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// Batch is how many pictures or texts go through a model at once.
const Batch = 8

// configLimit bounds a config or tokenizer file read.
const configLimit = 16 << 20

// CLIP embeds pictures and texts with a CLIPModel checkpoint.
type CLIP struct {
	b      tensor.Backend
	Vision *clip.VisionModel
	Text   *clip.TextEncoder // nil: a vision-only checkpoint
	tok    *tokenizer.CLIP
	size   int
}

// readFile reads a named file of the model, naming the location in errors.
func readFile(ctx context.Context, src loader.Source, name string) ([]byte, error) {
	data, err := loader.ReadAll(ctx, src, name, configLimit)
	if err != nil {
		return nil, fmt.Errorf("embed: %s: %w", src.String(), err)
	}
	return data, nil
}

// weights loads the checkpoint's model.safetensors (or pytorch_model.bin).
func weights(ctx context.Context, src loader.Source, component string, b tensor.Backend, opt *loader.Options) (*tensor.Weights, error) {
	var first error
	for _, name := range []string{"model.safetensors", "pytorch_model.bin"} {
		w, err := loader.LoadFile(ctx, src, name, component, b, opt)
		if err == nil {
			return w, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("embed: %s: no weights (model.safetensors or pytorch_model.bin): %w", src.String(), first)
}

// OpenCLIP loads a transformers CLIPModel folder: config.json, the weights,
// and the tokenizer files (vocab.json and merges.txt, in the folder or its
// tokenizer/) when the checkpoint has a text tower.
func OpenCLIP(ctx context.Context, b tensor.Backend, src loader.Source, opt *loader.Options) (*CLIP, error) {
	cfgData, err := readFile(ctx, src, "config.json")
	if err != nil {
		return nil, err
	}
	vcfg, err := clip.ParseVisionConfig(cfgData)
	if err != nil {
		return nil, fmt.Errorf("embed: %s: %w", src.String(), err)
	}
	w, err := weights(ctx, src, "clip", b, opt)
	if err != nil {
		return nil, err
	}
	// The two towers each own their weights (logit_scale is freed).
	vw, tw := clip.SplitWhole(b, w)
	c := &CLIP{b: b, size: vcfg.ImageSize}
	if c.Vision, err = clip.LoadVision(b, vcfg, vw); err != nil {
		vw.Free(b)
		tw.Free(b)
		return nil, fmt.Errorf("embed: %s: %w", src.String(), err)
	}
	if !c.Vision.HasProjection() {
		c.Free()
		tw.Free(b)
		return nil, fmt.Errorf("embed: %s: the checkpoint has no visual_projection; CLIP-I needs a whole CLIPModel (or CLIPVisionModelWithProjection)", src.String())
	}
	if len(tw.Names()) == 0 {
		return c, nil
	}
	fail := func(err error) (*CLIP, error) {
		tw.Free(b)
		c.Free()
		return nil, err
	}
	tcfg, err := clip.ParseTextConfig(cfgData)
	if err != nil {
		return fail(fmt.Errorf("embed: %s: %w", src.String(), err))
	}
	if c.tok, err = openTokenizer(ctx, src); err != nil {
		return fail(err)
	}
	if n := c.tok.VocabSize(); n > tcfg.VocabSize {
		return fail(fmt.Errorf("embed: %s: the tokenizer has %d tokens, the text tower's vocab_size is %d", src.String(), n, tcfg.VocabSize))
	}
	if c.Text, err = clip.LoadText(b, tcfg, tw); err != nil {
		return fail(fmt.Errorf("embed: %s: %w", src.String(), err))
	}
	if !c.Text.HasProjection() {
		return fail(fmt.Errorf("embed: %s: the checkpoint has no text_projection; CLIP-T needs a whole CLIPModel", src.String()))
	}
	return c, nil
}

func openTokenizer(ctx context.Context, src loader.Source) (*tokenizer.CLIP, error) {
	var missing error
	for _, dir := range []string{"", "tokenizer/"} {
		var f tokenizer.CLIPFiles
		var err error
		if f.Vocab, err = loader.ReadAll(ctx, src, dir+"vocab.json", 64<<20); err != nil {
			missing = err
			continue
		}
		if f.Merges, err = loader.ReadAll(ctx, src, dir+"merges.txt", 64<<20); err != nil {
			return nil, fmt.Errorf("embed: %s: %s: %w", src.String(), dir+"merges.txt", err)
		}
		f.SpecialTokensMap, _ = loader.ReadAll(ctx, src, dir+"special_tokens_map.json", configLimit)
		f.TokenizerConfig, _ = loader.ReadAll(ctx, src, dir+"tokenizer_config.json", configLimit)
		t, err := tokenizer.NewCLIP(f)
		if err != nil {
			return nil, fmt.Errorf("embed: %s: %w", src.String(), err)
		}
		// CLIP scores are computed with CLIP's own text cleaning (ftfy's
		// fix_text, whitespace collapse, lower case).
		return t.WithCleaning(tokenizer.CleanFTFY), nil
	}
	return nil, fmt.Errorf("embed: %s: no tokenizer (vocab.json and merges.txt in the folder or its tokenizer/), which CLIP-T needs: %w", src.String(), missing)
}

// Free releases the models.
func (c *CLIP) Free() {
	if c.Vision != nil {
		c.Vision.Free(c.b)
		c.Vision = nil
	}
	if c.Text != nil {
		c.Text.Free(c.b)
		c.Text = nil
	}
}

// EmbedImages is image_embeds (visual_projection of the pooled CLS).
func (c *CLIP) EmbedImages(ctx context.Context, ims []*imageproc.RGB) ([][]float32, error) {
	return batched(ctx, c.b, ims, c.size, func(im *imageproc.RGB) ([]float32, error) { return CLIPPixels(im, c.size) },
		func(px *tensor.Tensor) (*tensor.Tensor, error) {
			out, err := c.Vision.Forward(c.b, px)
			if err != nil {
				return nil, err
			}
			defer out.Free(c.b)
			return c.Vision.Project(c.b, out.Pooled)
		})
}

// EmbedTexts is text_embeds (text_projection of the EOS state), each text
// tokenized with truncation to the context length.
func (c *CLIP) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	if c.Text == nil {
		return nil, errors.New("embed: the CLIP checkpoint has no text tower")
	}
	var out [][]float32
	for _, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		enc, err := c.tok.EncodePadded(t, c.Text.Config.MaxPositions)
		if err != nil {
			return nil, err
		}
		ids := enc.IDs[:min(enc.Needed, len(enc.IDs))]
		o, err := c.Text.Forward(c.b, [][]int32{ids})
		if err != nil {
			return nil, err
		}
		e, err := c.Text.Project(c.b, o.Pooled)
		o.Free(c.b)
		if err != nil {
			return nil, err
		}
		v, err := c.b.Read(ctx, e)
		c.b.Free(e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// batched preprocesses pictures, runs them through f Batch at a time and
// reads the [B, P] results back as rows.
func batched(ctx context.Context, b tensor.Backend, ims []*imageproc.RGB, size int, pre func(*imageproc.RGB) ([]float32, error), f func(*tensor.Tensor) (*tensor.Tensor, error)) ([][]float32, error) {
	var out [][]float32
	for s := 0; s < len(ims); s += Batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := ims[s:min(s+Batch, len(ims))]
		var px []float32
		for _, im := range chunk {
			p, err := pre(im)
			if err != nil {
				return nil, err
			}
			px = append(px, p...)
		}
		in := b.FromF32("pixel_values", px, len(chunk), size, size, 3)
		y, err := f(in)
		b.Free(in)
		if err != nil {
			return nil, err
		}
		v, err := b.Read(ctx, y)
		shape := y.Shape
		b.Free(y)
		if err != nil {
			return nil, err
		}
		if len(shape) != 2 || shape[0] != len(chunk) {
			return nil, fmt.Errorf("embed: embeddings of shape %v for %d pictures", shape, len(chunk))
		}
		for i := range chunk {
			out = append(out, v[i*shape[1]:(i+1)*shape[1]])
		}
	}
	return out, nil
}
