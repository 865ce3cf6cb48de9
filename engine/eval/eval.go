// Package eval scores generated pictures of a subject the way the
// subject-driven generation papers do: CLIP-T (the picture against its
// prompt, the subject word replaced by the class noun), CLIP-I and DINO
// (the picture against the subject's real pictures, averaged over every
// generated × real pair), their single-reference variants CLIP-I (1 ref)
// and DINO (1 ref) (the picture against the one photo the model was given),
// and the masked variants M-CLIP-I and M-DINO
// (background set to a constant inside a mask before the embedders'
// preprocessing). Scores are plain cosines of L2-normalised embeddings,
// on the 0–1 scale of the DreamBooth and BLIP-Diffusion tables; nothing is
// multiplied by 100.
//
// The embedders are interfaces, so the metric code runs against any model
// (the engine's CLIP and DINO, or a stub in tests); they receive the
// decoded, masked pictures and do their own preprocessing.
//
// eval.go holds the inputs, the embedding pass and the per-picture scores.
package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"harmony/engine/imageproc"
)

// ImageEmbedder embeds pictures (CLIP's image tower with its projection,
// DINO's CLS token). Embeddings may have any length; eval normalises them.
type ImageEmbedder interface {
	EmbedImages(ctx context.Context, ims []*imageproc.RGB) ([][]float32, error)
}

// TextEmbedder embeds texts (CLIP's text tower with its projection).
type TextEmbedder interface {
	EmbedTexts(ctx context.Context, texts []string) ([][]float32, error)
}

// Models are the embedders a run has; a nil one skips its metrics.
type Models struct {
	CLIPImage ImageEmbedder // CLIP-I, M-CLIP-I and the image side of CLIP-T
	CLIPText  TextEmbedder  // the text side of CLIP-T
	DINO      ImageEmbedder // DINO, M-DINO
}

// Metric names, as the JSON, CSV and dump use them.
const (
	CLIPT  = "clip_t"
	CLIPI  = "clip_i"
	DINO   = "dino"
	MCLIPI = "m_clip_i"
	MDINO  = "m_dino"
	// The single-reference variants: the picture against its input photo.
	CLIPIInput = "clip_i_input"
	DINOInput  = "dino_input"
)

// Metrics lists the metrics in table order (the paper's: DINO, CLIP-I,
// CLIP-T, then the masked variants, then the single-reference ones).
var Metrics = []string{DINO, CLIPI, CLIPT, MDINO, MCLIPI, DINOInput, CLIPIInput}

// Titles are the metrics' column titles.
var Titles = map[string]string{DINO: "DINO", CLIPI: "CLIP-I", CLIPT: "CLIP-T", MDINO: "M-DINO", MCLIPI: "M-CLIP-I",
	DINOInput: "DINO (1 ref)", CLIPIInput: "CLIP-I (1 ref)"}

// Picture is one decoded picture and its optional mask.
type Picture struct {
	Name  string         // file name, for messages and the report
	Image *imageproc.RGB // the picture
	// Mask, when set, is the same size as Image; pixels whose three
	// channels are all 0 are background.
	Mask *imageproc.RGB
	// Open, when set and Image is nil, decodes the picture and its mask
	// (nil: none) when they are needed, so a large run never holds every
	// picture decoded.
	Open func() (im, mask *imageproc.RGB, err error)
}

// Generated is one generated picture to score.
type Generated struct {
	Picture
	Subject string // compared with the real pictures of this subject (with every real picture when none has a subject)
	Method  string // grouping key of the method that made it ("" for a single method)
	Prompt  string // grouping key of its prompt (a template or the prompt as given)
	Text    string // the CLIP-T text: the prompt with the subject word replaced by the class noun
	// Input names (Picture.Name) the real picture that was the model's
	// input photo, for the single-reference scores; "" when unknown.
	Input string
}

// Real is one real picture of a subject.
type Real struct {
	Picture
	Subject string
	// InputOnly keeps the picture out of the pairwise averages: it is only
	// some generated pictures' input photo (one not among the references).
	InputOnly bool
}

// Options of a run.
type Options struct {
	// Fill is the value of every channel of the background of a masked
	// picture (0: black, what evaluation.md proposes).
	Fill uint8
}

// Embeddings are what a run computed, for the dump: every vector
// L2-normalised, pictures masked where a mask was given.
type Embeddings struct {
	CLIPImage [][]float32 // [N] generated pictures
	CLIPReal  [][]float32 // [R] real pictures (the pairwise references)
	DINO      [][]float32 // [N]
	DINOReal  [][]float32 // [R]
	Texts     []string    // [M] distinct CLIP-T texts, in first-use order
	CLIPText  [][]float32 // [M]
	TextIndex []int       // [N] each picture's text in Texts
	// InputIndex is each generated picture's input photo in the real
	// pictures, -1 for none; nil when no picture has one.
	InputIndex []int // [N]
	// CLIPInput and DINOInput are the single-reference scores as the
	// report has them (unmasked pictures), NaN where a picture has no
	// input photo; nil when none has one or the model did not run.
	CLIPInput, DINOInput []float32 // [N]
}

// ImageScores are one generated picture's scores.
type ImageScores struct {
	Name    string             `json:"name"`
	Subject string             `json:"subject,omitempty"`
	Method  string             `json:"method,omitempty"`
	Prompt  string             `json:"prompt,omitempty"`
	Text    string             `json:"text,omitempty"`
	Masked  bool               `json:"masked"`
	Scores  map[string]float64 `json:"scores"`
}

// Error is a refused input; it names the picture or option.
type Error struct{ Msg string }

func (e *Error) Error() string { return "eval: " + e.Msg }

func errorf(f string, a ...any) error { return &Error{fmt.Sprintf(f, a...)} }

// Evaluate embeds every picture and scores every generated one.
func Evaluate(ctx context.Context, m Models, gen []Generated, real []Real, opt Options) (*Report, *Embeddings, error) {
	if m.CLIPImage == nil && m.DINO == nil {
		return nil, nil, errorf("no embedder: give CLIP, DINO or both")
	}
	if m.CLIPText != nil && m.CLIPImage == nil {
		return nil, nil, errorf("CLIP-T needs CLIP's image tower as well as its text tower")
	}
	if len(gen) == 0 {
		return nil, nil, errorf("no generated pictures")
	}
	if len(real) == 0 {
		return nil, nil, errorf("no real pictures")
	}
	pairs, err := pairUp(gen, real)
	if err != nil {
		return nil, nil, err
	}
	inputs, err := inputIndex(gen, real)
	if err != nil {
		return nil, nil, err
	}

	// Generated and real pictures, each plain and masked (a picture without
	// a mask is its own masked form), through every image model, a chunk
	// at a time: a large run never holds all its pictures decoded.
	var gpics, rpics []Picture
	for _, p := range gen {
		gpics = append(gpics, p.Picture)
	}
	for _, p := range real {
		rpics = append(rpics, p.Picture)
	}
	var names []string
	var embs []ImageEmbedder
	if m.CLIPImage != nil {
		names, embs = append(names, "CLIP"), append(embs, m.CLIPImage)
	}
	if m.DINO != nil {
		names, embs = append(names, "DINO"), append(embs, m.DINO)
	}
	gs, gMasked, err := embedPictures(ctx, names, embs, gpics, opt.Fill)
	if err != nil {
		return nil, nil, err
	}
	rs, rMasked, err := embedPictures(ctx, names, embs, rpics, opt.Fill)
	if err != nil {
		return nil, nil, err
	}
	anyMask := slices.Contains(gMasked, true) || slices.Contains(rMasked, true)
	anyInput := slices.ContainsFunc(inputs, func(j int) bool { return j >= 0 })
	// The dump's real pictures are the pairwise references.
	refsOnly := func(v [][]float32) [][]float32 {
		var out [][]float32
		for j, x := range v {
			if !real[j].InputOnly {
				out = append(out, x)
			}
		}
		return out
	}
	emb := &Embeddings{}
	if anyInput {
		emb.InputIndex = inputs
	}
	type sets struct{ gp, gm, rp, rm [][]float32 }
	var clipS, dinoS *sets
	for k, name := range names {
		s := &sets{gs[k].plain, gs[k].masked, rs[k].plain, rs[k].masked}
		if name == "CLIP" {
			clipS = s
			emb.CLIPImage, emb.CLIPReal = s.gm, refsOnly(s.rm)
		} else {
			dinoS = s
			emb.DINO, emb.DINOReal = s.gm, refsOnly(s.rm)
		}
	}
	if m.CLIPText != nil {
		seen := map[string]int{}
		for i, p := range gen {
			if p.Text == "" {
				return nil, nil, errorf("%s: no prompt (CLIP-T needs one for every picture)", p.Name)
			}
			if _, ok := seen[p.Text]; !ok {
				seen[p.Text] = len(emb.Texts)
				emb.Texts = append(emb.Texts, p.Text)
			}
			emb.TextIndex = append(emb.TextIndex, seen[p.Text])
			_ = i
		}
		v, err := m.CLIPText.EmbedTexts(ctx, emb.Texts)
		if err != nil {
			return nil, nil, fmt.Errorf("eval: CLIP text: %w", err)
		}
		if len(v) != len(emb.Texts) {
			return nil, nil, errorf("CLIP text: %d embeddings for %d texts", len(v), len(emb.Texts))
		}
		if emb.CLIPText, err = normalizeAll("CLIP text", v, emb.Texts); err != nil {
			return nil, nil, err
		}
	}

	rep := &Report{Schema: Schema, Fill: int(opt.Fill)}
	for _, k := range Metrics {
		switch {
		case (k == CLIPI || k == MCLIPI) && clipS != nil,
			(k == DINO || k == MDINO) && dinoS != nil,
			k == CLIPT && emb.CLIPText != nil:
			if (k == MCLIPI || k == MDINO) && !anyMask {
				continue
			}
			rep.Metrics = append(rep.Metrics, k)
		case k == CLIPIInput && clipS != nil && anyInput, k == DINOInput && dinoS != nil && anyInput:
			rep.Metrics = append(rep.Metrics, k)
		}
	}
	for i, p := range gen {
		s := ImageScores{Name: p.Name, Subject: p.Subject, Method: p.Method, Prompt: p.Prompt, Text: p.Text,
			Masked: gMasked[i], Scores: map[string]float64{}}
		if clipS != nil {
			s.Scores[CLIPI] = meanCos(clipS.gp[i], clipS.rp, pairs[i])
			if gMasked[i] {
				s.Scores[MCLIPI] = meanCos(clipS.gm[i], clipS.rm, pairs[i])
			}
			if emb.CLIPText != nil {
				s.Scores[CLIPT] = Cosine(clipS.gp[i], emb.CLIPText[emb.TextIndex[i]])
			}
			if anyInput {
				emb.CLIPInput = append(emb.CLIPInput, nan)
			}
			if inputs[i] >= 0 {
				s.Scores[CLIPIInput] = Cosine(clipS.gp[i], clipS.rp[inputs[i]])
				emb.CLIPInput[i] = float32(s.Scores[CLIPIInput])
			}
		}
		if dinoS != nil {
			s.Scores[DINO] = meanCos(dinoS.gp[i], dinoS.rp, pairs[i])
			if gMasked[i] {
				s.Scores[MDINO] = meanCos(dinoS.gm[i], dinoS.rm, pairs[i])
			}
			if anyInput {
				emb.DINOInput = append(emb.DINOInput, nan)
			}
			if inputs[i] >= 0 {
				s.Scores[DINOInput] = Cosine(dinoS.gp[i], dinoS.rp[inputs[i]])
				emb.DINOInput[i] = float32(s.Scores[DINOInput])
			}
		}
		rep.Images = append(rep.Images, s)
	}
	rep.aggregate()
	return rep, emb, nil
}

// load returns the picture and its mask, decoding them when the picture
// is opened on demand, and checks their sizes.
func (p Picture) load() (im, mask *imageproc.RGB, err error) {
	im, mask = p.Image, p.Mask
	if im == nil && p.Open != nil {
		if im, mask, err = p.Open(); err != nil {
			return nil, nil, err
		}
	}
	if im == nil || im.Width <= 0 || im.Height <= 0 {
		return nil, nil, errorf("%s: no picture", p.Name)
	}
	if mask != nil && (mask.Width != im.Width || mask.Height != im.Height) {
		return nil, nil, errorf("%s: the mask is %d×%d, the picture %d×%d; a mask must be the picture's size",
			p.Name, mask.Width, mask.Height, im.Width, im.Height)
	}
	return im, mask, nil
}

// Chunk is how many pictures are decoded at once.
const Chunk = 32

// embedded are one model's normalised embeddings of a picture set.
type embedded struct{ plain, masked [][]float32 }

// embedPictures runs every picture through every model, plain and (only
// where a mask changes it) masked, Chunk pictures at a time; masked[i]
// says whether picture i has a mask.
func embedPictures(ctx context.Context, names []string, embs []ImageEmbedder, pics []Picture, fill uint8) ([]embedded, []bool, error) {
	out := make([]embedded, len(embs))
	var masked []bool
	for s := 0; s < len(pics); s += Chunk {
		var plain, mk []*imageproc.RGB
		var mkIdx []int
		for i := s; i < min(s+Chunk, len(pics)); i++ {
			im, mask, err := pics[i].load()
			if err != nil {
				return nil, nil, err
			}
			plain = append(plain, im)
			masked = append(masked, mask != nil)
			if mask != nil {
				mk = append(mk, ApplyMask(im, mask, fill))
				mkIdx = append(mkIdx, i-s)
			}
		}
		for k, e := range embs {
			p, err := embed(ctx, names[k], e, plain)
			if err != nil {
				return nil, nil, err
			}
			m := append([][]float32(nil), p...)
			if len(mk) > 0 {
				v, err := embed(ctx, names[k], e, mk)
				if err != nil {
					return nil, nil, err
				}
				for n, i := range mkIdx {
					m[i] = v[n]
				}
			}
			out[k].plain = append(out[k].plain, p...)
			out[k].masked = append(out[k].masked, m...)
		}
	}
	return out, masked, nil
}

// pairUp lists, per generated picture, the real pictures of its subject.
func pairUp(gen []Generated, real []Real) ([][]int, error) {
	bySubject := map[string][]int{}
	for j, r := range real {
		if r.InputOnly {
			continue
		}
		bySubject[r.Subject] = append(bySubject[r.Subject], j)
	}
	out := make([][]int, len(gen))
	_, untagged := bySubject[""]
	for i, g := range gen {
		out[i] = bySubject[g.Subject]
		if untagged && len(bySubject) == 1 {
			out[i] = bySubject[""] // real pictures without subjects: one set for all
		}
		if len(out[i]) == 0 {
			return nil, errorf("%s: no real pictures of subject %q", g.Name, g.Subject)
		}
	}
	return out, nil
}

// inputIndex finds each generated picture's input photo among the real
// pictures (-1: none given).
func inputIndex(gen []Generated, real []Real) ([]int, error) {
	byName := map[string]int{}
	for j, r := range real {
		if _, ok := byName[r.Name]; !ok {
			byName[r.Name] = j
		}
	}
	out := make([]int, len(gen))
	for i, g := range gen {
		out[i] = -1
		if g.Input == "" {
			continue
		}
		j, ok := byName[g.Input]
		if !ok {
			return nil, errorf("%s: its input photo %s is not among the real pictures", g.Name, g.Input)
		}
		out[i] = j
	}
	return out, nil
}

func embed(ctx context.Context, name string, e ImageEmbedder, ims []*imageproc.RGB) ([][]float32, error) {
	v, err := e.EmbedImages(ctx, ims)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	if len(v) != len(ims) {
		return nil, errorf("%s: %d embeddings for %d pictures", name, len(v), len(ims))
	}
	return normalizeAll(name, v, nil)
}

var nan = float32(math.NaN())

var errZero = errors.New("the embedding is zero or not finite")

func normalizeAll(name string, v [][]float32, labels []string) ([][]float32, error) {
	out := make([][]float32, len(v))
	for i, x := range v {
		n, err := Normalize(x)
		if err != nil {
			lab := fmt.Sprint("#", i)
			if labels != nil {
				lab = fmt.Sprintf("%q", labels[i])
			}
			return nil, fmt.Errorf("eval: %s embedding %s: %w", name, lab, err)
		}
		if i > 0 && len(n) != len(out[0]) {
			return nil, errorf("%s: embeddings of different lengths (%d, %d)", name, len(out[0]), len(n))
		}
		out[i] = n
	}
	return out, nil
}

// Normalize returns x / ‖x‖ (accumulated in float64).
func Normalize(x []float32) ([]float32, error) {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	if !(s > 0) || math.IsInf(s, 0) {
		return nil, errZero
	}
	inv := 1 / math.Sqrt(s)
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(float64(v) * inv)
	}
	return out, nil
}

// Cosine is the dot product of two normalised vectors.
func Cosine(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func meanCos(a []float32, refs [][]float32, idx []int) float64 {
	s := 0.0
	for _, j := range idx {
		s += Cosine(a, refs[j])
	}
	return s / float64(len(idx))
}

// ApplyMask returns the picture with its background (mask pixels 0 in all
// three channels) set to fill, or im itself when mask is nil.
func ApplyMask(im, mask *imageproc.RGB, fill uint8) *imageproc.RGB {
	if mask == nil {
		return im
	}
	out := &imageproc.RGB{Width: im.Width, Height: im.Height, Pix: append([]uint8(nil), im.Pix...)}
	for i := 0; i+2 < len(mask.Pix) && i+2 < len(out.Pix); i += 3 {
		if mask.Pix[i] == 0 && mask.Pix[i+1] == 0 && mask.Pix[i+2] == 0 {
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = fill, fill, fill
		}
	}
	return out
}

// ScoreMatrix is the cosine of every row of a against every row of b
// ([len(a), len(b)] row-major), for the dump.
func ScoreMatrix(a, b [][]float32) []float32 {
	out := make([]float32, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, float32(Cosine(x, y)))
		}
	}
	return out
}
