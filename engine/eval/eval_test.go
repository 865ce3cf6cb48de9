// eval_test.go: the metrics on hand-made cases whose scores are known,
// with stub embedders (the mean colour of a picture as its embedding, a
// text's colour word as its embedding).
package eval

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/imageproc"
)

// meanColour embeds a picture as its mean R, G, B: a red picture and a
// green one are orthogonal, two pictures of one colour identical.
type meanColour struct{ calls, pictures int }

func (m *meanColour) EmbedImages(_ context.Context, ims []*imageproc.RGB) ([][]float32, error) {
	m.calls++
	m.pictures += len(ims)
	out := make([][]float32, len(ims))
	for i, im := range ims {
		v := make([]float32, 3)
		for p := 0; p < len(im.Pix); p += 3 {
			for c := 0; c < 3; c++ {
				v[c] += float32(im.Pix[p+c])
			}
		}
		out[i] = v
	}
	return out, nil
}

// colourWords embeds a text by the colour words in it.
type colourWords struct{}

func (colourWords) EmbedTexts(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, 3)
		for c, w := range []string{"red", "green", "blue"} {
			if strings.Contains(t, w) {
				v[c] = 1
			}
		}
		out[i] = v
	}
	return out, nil
}

func solid(w, h int, r, g, b uint8) *imageproc.RGB {
	im := imageproc.NewRGB(w, h)
	for p := 0; p < len(im.Pix); p += 3 {
		im.Pix[p], im.Pix[p+1], im.Pix[p+2] = r, g, b
	}
	return im
}

func near(t *testing.T, want, got float64, what string) {
	t.Helper()
	if math.Abs(want-got) > 1e-6 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestIdenticalAndOrthogonal(t *testing.T) {
	clip, dino := &meanColour{}, &meanColour{}
	m := Models{CLIPImage: clip, CLIPText: colourWords{}, DINO: dino}
	red, green := solid(5, 3, 200, 0, 0), solid(5, 3, 0, 90, 0)
	gen := []Generated{
		{Picture: Picture{Name: "red.png", Image: red}, Subject: "s", Prompt: "p1", Text: "a red dog"},
		{Picture: Picture{Name: "green.png", Image: green}, Subject: "s", Prompt: "p1", Text: "a red dog"},
		{Picture: Picture{Name: "green2.png", Image: green}, Subject: "s", Prompt: "p2", Text: "a green dog"},
	}
	real := []Real{{Picture: Picture{Name: "real.png", Image: red}, Subject: "s"}}
	rep, emb, err := Evaluate(context.Background(), m, gen, real, Options{})
	require.NoError(t, err)
	require.Equal(t, []string{DINO, CLIPI, CLIPT}, rep.Metrics, "no masks: no masked metrics")
	// Identical pictures score 1; orthogonal embeddings 0.
	near(t, 1, rep.Images[0].Scores[CLIPI], "CLIP-I of the identical picture")
	near(t, 1, rep.Images[0].Scores[DINO], "DINO of the identical picture")
	near(t, 1, rep.Images[0].Scores[CLIPT], "CLIP-T red/red")
	near(t, 0, rep.Images[1].Scores[CLIPI], "CLIP-I red/green")
	near(t, 0, rep.Images[1].Scores[DINO], "DINO red/green")
	near(t, 0, rep.Images[1].Scores[CLIPT], "CLIP-T green picture/red text")
	near(t, 1, rep.Images[2].Scores[CLIPT], "CLIP-T green/green")
	// Aggregation: per prompt, per subject, overall.
	require.Len(t, rep.PerPrompt, 2)
	near(t, 0.5, rep.PerPrompt[0].Mean[CLIPI], "prompt p1 CLIP-I")
	near(t, 0, rep.PerPrompt[1].Mean[CLIPI], "prompt p2 CLIP-I")
	require.Len(t, rep.Overall, 1)
	near(t, 1.0/3, rep.Overall[0].Mean[DINO], "overall DINO")
	near(t, 2.0/3, rep.Overall[0].Mean[CLIPT], "overall CLIP-T")
	require.Equal(t, 3, rep.Overall[0].Images)
	// Distinct texts embedded once each.
	require.Equal(t, []string{"a red dog", "a green dog"}, emb.Texts)
	require.Equal(t, []int{0, 0, 1}, emb.TextIndex)
	require.Equal(t, []float32{1, 0, 0, 1, 0, 1}, ScoreMatrix(emb.CLIPImage, emb.CLIPText))
	require.Equal(t, 2, clip.calls, "one call for the generated pictures, one for the real ones")

	// The outputs carry the same numbers.
	js, err := rep.JSON()
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(js, &back))
	near(t, 2.0/3, back.Overall[0].Mean[CLIPT], "JSON overall CLIP-T")
	cs, err := rep.CSV()
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(cs)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"level", "method", "subject", "prompt", "name", "text", "images", "dino", "clip_i", "clip_t"}, rows[0])
	require.Len(t, rows, 1+3+2+1+1)
	require.Equal(t, []string{"overall", "", "", "", "", "", "3", "0.333333", "0.333333", "0.666667"}, rows[len(rows)-1])
	md := rep.Markdown()
	require.Contains(t, md, "| images | DINO | CLIP-I | CLIP-T |")
	require.Contains(t, md, "| 3 | 0.333 | 0.333 | 0.667 |")
}

func TestMasks(t *testing.T) {
	// A red subject on a green background; the mask keeps the subject.
	im := solid(4, 4, 0, 255, 0)
	mask := solid(4, 4, 0, 0, 0)
	for y := 1; y < 3; y++ {
		for x := 1; x < 3; x++ {
			i := 3 * (y*4 + x)
			im.Pix[i], im.Pix[i+1] = 255, 0
			mask.Pix[i], mask.Pix[i+1], mask.Pix[i+2] = 255, 255, 255
		}
	}
	ones := solid(4, 4, 1, 1, 1) // every pixel nonzero: nothing is background
	red := solid(4, 4, 255, 0, 0)
	m := Models{CLIPImage: &meanColour{}, DINO: &meanColour{}}
	gen := []Generated{
		{Picture: Picture{Name: "ones.png", Image: im, Mask: ones}, Subject: "s"},
		{Picture: Picture{Name: "masked.png", Image: im, Mask: mask}, Subject: "s"},
		{Picture: Picture{Name: "plain.png", Image: im}, Subject: "s"},
	}
	real := []Real{{Picture: Picture{Name: "real.png", Image: red}, Subject: "s"}}
	rep, emb, err := Evaluate(context.Background(), m, gen, real, Options{})
	require.NoError(t, err)
	require.Equal(t, []string{DINO, CLIPI, MDINO, MCLIPI}, rep.Metrics)
	s := rep.Images
	// An all-ones mask equals no mask.
	require.Equal(t, s[0].Scores[CLIPI], s[0].Scores[MCLIPI])
	require.Equal(t, s[0].Scores[DINO], s[0].Scores[MDINO])
	// The real mask leaves the red subject on black: masked scores 1.
	near(t, 1, s[1].Scores[MCLIPI], "M-CLIP-I")
	near(t, 1, s[1].Scores[MDINO], "M-DINO")
	// Unmasked: 4 red and 12 green pixels against red.
	want := 1 / math.Sqrt(10)
	near(t, want, s[1].Scores[CLIPI], "CLIP-I")
	// No mask: no masked scores; the masked means count only masked pictures.
	_, ok := s[2].Scores[MCLIPI]
	require.False(t, ok)
	require.Equal(t, 2, rep.Overall[0].N[MCLIPI])
	require.Equal(t, 3, rep.Overall[0].N[CLIPI])
	// The dump's embeddings are the masked ones.
	near(t, 1, Cosine(emb.CLIPImage[1], emb.CLIPReal[0]), "dumped masked embedding")

	// Fill sets the background value.
	f := ApplyMask(im, mask, 7)
	require.Equal(t, []uint8{7, 7, 7}, f.Pix[:3])
	require.Equal(t, []uint8{0, 255, 0}, im.Pix[:3], "the input is not changed")
}

func TestSubjectsPairing(t *testing.T) {
	red, green, blue := solid(2, 2, 9, 0, 0), solid(2, 2, 0, 9, 0), solid(2, 2, 0, 0, 9)
	m := Models{DINO: &meanColour{}}
	gen := []Generated{
		{Picture: Picture{Name: "a.png", Image: red}, Subject: "a", Method: "plain"},
		{Picture: Picture{Name: "b.png", Image: red}, Subject: "b", Method: "harmony"},
	}
	real := []Real{
		{Picture: Picture{Name: "a0", Image: red}, Subject: "a"},
		{Picture: Picture{Name: "a1", Image: green}, Subject: "a"},
		{Picture: Picture{Name: "b0", Image: blue}, Subject: "b"},
	}
	rep, _, err := Evaluate(context.Background(), m, gen, real, Options{})
	require.NoError(t, err)
	near(t, 0.5, rep.Images[0].Scores[DINO], "mean over the subject's two real pictures")
	near(t, 0, rep.Images[1].Scores[DINO], "only the subject's own real pictures")
	require.Len(t, rep.Overall, 2, "one overall row per method")
	require.Contains(t, rep.Markdown(), "| method | images | DINO |")
}

func TestRefusals(t *testing.T) {
	im := solid(2, 2, 1, 2, 3)
	ok := []Real{{Picture: Picture{Name: "r", Image: im}}}
	m := Models{CLIPImage: &meanColour{}, CLIPText: colourWords{}}
	for _, c := range []struct {
		name string
		m    Models
		gen  []Generated
		real []Real
		want string
	}{
		{"no models", Models{}, []Generated{{Picture: Picture{Name: "g", Image: im}}}, ok, "no embedder"},
		{"no pictures", m, nil, ok, "no generated pictures"},
		{"no real", m, []Generated{{Picture: Picture{Name: "g", Image: im}, Text: "x"}}, nil, "no real pictures"},
		{"mask size", m, []Generated{{Picture: Picture{Name: "g.png", Image: im, Mask: solid(3, 2, 1, 1, 1)}, Text: "x"}}, ok, "g.png: the mask is 3×2, the picture 2×2"},
		{"subject", m, []Generated{{Picture: Picture{Name: "g.png", Image: im}, Subject: "cat", Text: "x"}}, []Real{{Picture: Picture{Name: "r", Image: im}, Subject: "dog"}}, `g.png: no real pictures of subject "cat"`},
		{"no text", m, []Generated{{Picture: Picture{Name: "g.png", Image: im}}}, ok, "g.png: no prompt"},
		{"black", m, []Generated{{Picture: Picture{Name: "g.png", Image: solid(2, 2, 0, 0, 0)}, Text: "x"}}, ok, "zero"},
	} {
		_, _, err := Evaluate(context.Background(), c.m, c.gen, c.real, Options{})
		require.ErrorContains(t, err, c.want, c.name)
	}
}

// TestLazyChunks: pictures opened on demand are decoded once each, a chunk
// at a time, whatever the number of models.
func TestLazyChunks(t *testing.T) {
	clip, dino := &meanColour{}, &meanColour{}
	opened := 0
	var gen []Generated
	for i := 0; i < 70; i++ {
		c := uint8(i)
		gen = append(gen, Generated{Picture: Picture{Name: fmt.Sprint(i), Open: func() (*imageproc.RGB, *imageproc.RGB, error) {
			opened++
			var mask *imageproc.RGB
			if c%2 == 0 {
				mask = solid(3, 3, 1, 1, 1)
			}
			return solid(3, 3, 200, c, 0), mask, nil
		}}})
	}
	bad := Generated{Picture: Picture{Name: "broken.png", Open: func() (*imageproc.RGB, *imageproc.RGB, error) {
		return nil, nil, errors.New("broken.png: not a picture")
	}}}
	real := []Real{{Picture: Picture{Name: "r", Image: solid(3, 3, 200, 0, 0)}}}
	rep, _, err := Evaluate(context.Background(), Models{CLIPImage: clip, DINO: dino}, gen, real, Options{})
	require.NoError(t, err)
	require.Equal(t, 70, opened, "each picture decoded once for both models")
	// Per model: 3 chunks of generated pictures, each plain and masked, and
	// one of real ones.
	require.Equal(t, 3*2+1, clip.calls)
	require.Equal(t, clip.calls, dino.calls)
	require.Equal(t, 71, clip.pictures-35, "35 masked pictures embedded a second time")
	require.Equal(t, 35, rep.Overall[0].N[MDINO])
	near(t, 1, rep.Images[0].Scores[DINO], "picture 0 is the real one")
	_, _, err = Evaluate(context.Background(), Models{DINO: dino}, append(gen[:2:2], bad), real, Options{})
	require.ErrorContains(t, err, "broken.png: not a picture")
}

// TestSingleReference: each picture against its own input photo, an
// input-only photo staying out of the pairwise averages.
func TestSingleReference(t *testing.T) {
	m := Models{CLIPImage: &meanColour{}, DINO: &meanColour{}}
	red, green := solid(5, 3, 200, 0, 0), solid(5, 3, 0, 90, 0)
	gen := []Generated{
		{Picture: Picture{Name: "red.png", Image: red}, Input: "photo.png"},
		{Picture: Picture{Name: "green.png", Image: green}, Input: "photo.png"},
		{Picture: Picture{Name: "green2.png", Image: green}},
	}
	real := []Real{
		{Picture: Picture{Name: "ref.png", Image: green}},
		{Picture: Picture{Name: "photo.png", Image: red}, InputOnly: true},
	}
	rep, emb, err := Evaluate(context.Background(), m, gen, real, Options{})
	require.NoError(t, err)
	require.Equal(t, []string{DINO, CLIPI, DINOInput, CLIPIInput}, rep.Metrics)
	near(t, 1, rep.Images[0].Scores[CLIPIInput], "CLIP-I (1 ref) of the identical photo")
	near(t, 1, rep.Images[0].Scores[DINOInput], "DINO (1 ref) of the identical photo")
	near(t, 0, rep.Images[0].Scores[DINO], "the input-only photo is no pairwise reference")
	near(t, 0, rep.Images[1].Scores[CLIPIInput], "CLIP-I (1 ref) green/red")
	_, ok := rep.Images[2].Scores[DINOInput]
	require.False(t, ok, "no input photo: no single-reference score")
	require.Equal(t, 2, rep.Overall[0].N[DINOInput])
	near(t, 0.5, rep.Overall[0].Mean[CLIPIInput], "overall CLIP-I (1 ref)")
	require.Equal(t, []int{1, 1, -1}, emb.InputIndex)
	require.Equal(t, float32(1), emb.DINOInput[0])
	require.True(t, math.IsNaN(float64(emb.CLIPInput[2])))
	require.Contains(t, rep.Markdown(), "| images | DINO | CLIP-I | DINO (1 ref) | CLIP-I (1 ref) |")
	cs, err := rep.CSV()
	require.NoError(t, err)
	require.Contains(t, string(cs), "dino,clip_i,dino_input,clip_i_input\n")

	gen[2].Input = "missing.png"
	_, _, err = Evaluate(context.Background(), m, gen, real, Options{})
	require.ErrorContains(t, err, "green2.png: its input photo missing.png is not among the real pictures")
}
