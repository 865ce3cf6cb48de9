// score.go: the front ends' optional "score" line: CLIP-T and DINO of each
// result picture against the subject photo, on the device, with the
// engine's evaluation models (engine/eval, engine/eval/embed). The page and
// the app both call OpenScorers and Score, so the two show the same numbers
// as `harmony eval` would for the same pictures.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"harmony/engine/eval"
	"harmony/engine/eval/embed"
	"harmony/engine/imageproc"
	"harmony/engine/tensor"
	"harmony/engine/tokenizer"
	"harmony/loader"
)

// ScorerSources name the evaluation models; a nil source skips its metric.
type ScorerSources struct {
	CLIP     loader.Source // a whole CLIPModel folder (vision and text towers, tokenizer)
	DINO     loader.Source // a ViTModel folder, or the folder of DINOFile
	DINOFile string        // an original DINO checkpoint (or a weight file) in DINO; "" reads the folder
	// Download caches of each model, when they differ (nil: opt.Cache).
	CLIPCache, DINOCache loader.Cache
}

// withCache is opt with its cache replaced by c when c is set.
func withCache(opt *loader.Options, c loader.Cache) *loader.Options {
	if c == nil {
		return opt
	}
	o := loader.Options{}
	if opt != nil {
		o = *opt
	}
	o.Cache = c
	return &o
}

// Scorers are the loaded evaluation models.
type Scorers struct {
	clip *embed.CLIP
	dino *embed.DINO
}

// OpenScorers loads the models of src on b.
func OpenScorers(ctx context.Context, src ScorerSources, b tensor.Backend, opt *loader.Options) (*Scorers, error) {
	if src.CLIP == nil && src.DINO == nil {
		return nil, errors.New("pipeline: scores: give the CLIP weights, the DINO weights or both")
	}
	s := &Scorers{}
	if src.CLIP != nil {
		c, err := embed.OpenCLIP(ctx, b, src.CLIP, withCache(opt, src.CLIPCache))
		if err != nil {
			return nil, fmt.Errorf("pipeline: scores: CLIP: %w", err)
		}
		s.clip = c
	}
	if src.DINO != nil {
		d, err := embed.OpenDINO(ctx, b, src.DINO, src.DINOFile, 0, withCache(opt, src.DINOCache))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("pipeline: scores: DINO: %w", err)
		}
		s.dino = d
	}
	return s, nil
}

// Close frees the models.
func (s *Scorers) Close() {
	if s == nil {
		return
	}
	if s.clip != nil {
		s.clip.Free()
		s.clip = nil
	}
	if s.dino != nil {
		s.dino.Free()
		s.dino = nil
	}
}

// Has tells which metrics the loaded models give (CLIP-T needs CLIP's text tower).
func (s *Scorers) Has() (clipT, dino bool) {
	if s == nil {
		return false, false
	}
	return s.clip != nil && s.clip.Text != nil, s.dino != nil
}

// Score is one picture's line; Has* say which metrics the models gave.
type Score struct {
	CLIPT, DINO       float64 // cosines, −1…1 (not ×100)
	HasCLIPT, HasDINO bool
}

// String is the line as the front ends show it.
func (s Score) String() string {
	var parts []string
	if s.HasCLIPT {
		parts = append(parts, fmt.Sprintf("CLIP-T %.3f", s.CLIPT))
	}
	if s.HasDINO {
		parts = append(parts, fmt.Sprintf("DINO %.3f", s.DINO))
	}
	return strings.Join(parts, " · ")
}

// ScoreText is the CLIP-T text of a generation: "a {class} {prompt}" as
// the metric code builds it; with ELITE, whose prompt holds the subject's
// placeholder word, the prompt with that word replaced by the class.
func ScoreText(o *Options) string {
	class := strings.TrimSpace(o.TargetClass)
	if class == "" {
		class = strings.TrimSpace(o.SourceClass)
	}
	if o.Base == BaseELITE {
		ph := o.Placeholder
		if ph == "" {
			ph = ElitePlaceholder
		}
		words := strings.Fields(o.Prompt)
		for i, w := range words {
			if w == ph && class != "" {
				words[i] = class
			}
		}
		return strings.Join(words, " ")
	}
	if class == "" {
		return strings.TrimSpace(o.Prompt)
	}
	return strings.TrimSpace(tokenizer.BuildPrompt(o.Prompt, class, 1, 1))
}

// Score scores each picture against the photo (the file's bytes) with
// text as the CLIP-T text: eval.Evaluate with the photo as the one real
// picture and one generated picture per result. A nil picture gets a zero
// Score.
func (s *Scorers) Score(ctx context.Context, photo []byte, photoName, text string, pics []*Image) ([]Score, error) {
	if s == nil || (s.clip == nil && s.dino == nil) {
		return nil, errors.New("pipeline: scores: no scoring models loaded")
	}
	rgb, _, err := imageproc.Decode(photoName, photo, imageproc.DecodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("pipeline: scores: %w", err)
	}
	var m eval.Models
	if s.clip != nil {
		m.CLIPImage = s.clip
		if s.clip.Text != nil {
			m.CLIPText = s.clip
		}
	}
	if s.dino != nil {
		m.DINO = s.dino
	}
	var gen []eval.Generated
	var idx []int
	for i, p := range pics {
		if p == nil {
			continue
		}
		gen = append(gen, eval.Generated{
			Picture: eval.Picture{Name: fmt.Sprint("result ", i), Image: &imageproc.RGB{Width: p.W, Height: p.H, Pix: p.Pix}},
			Text:    text,
		})
		idx = append(idx, i)
	}
	out := make([]Score, len(pics))
	if len(gen) == 0 {
		return out, nil
	}
	rep, _, err := eval.Evaluate(ctx, m, gen, []eval.Real{{Picture: eval.Picture{Name: photoName, Image: rgb}}}, eval.Options{})
	if err != nil {
		return nil, fmt.Errorf("pipeline: scores: %w", err)
	}
	for n, i := range idx {
		sc := rep.Images[n].Scores
		out[i].CLIPT, out[i].HasCLIPT = sc[eval.CLIPT]
		out[i].DINO, out[i].HasDINO = sc[eval.DINO]
	}
	return out, nil
}
