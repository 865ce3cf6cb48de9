// embed_test.go: the preprocessing crops and scales as the two reference
// pipelines do, and the tiny CLIP checkpoint scores through engine/eval
// as the metric definitions say (identical pictures 1, an all-ones mask
// changes nothing), with its embeddings equal to the model's own forward.
package embed

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/eval"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/imageproc"
	"harmony/loader"
	"harmony/loader/golden"
)

// rowCoded is a w×h picture whose pixel value is its row number.
func rowCoded(w, h int) *imageproc.RGB {
	im := imageproc.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				im.Pix[3*(y*w+x)+c] = uint8(y)
			}
		}
	}
	return im
}

// firstRow undoes the normalization of channel 0 of the first pixel.
func firstRow(px []float32, mean, std float64) int {
	return int(math.Round((float64(px[0])*std + mean) * 255))
}

func TestCropOffsets(t *testing.T) {
	// No resize (the short side is the size already): only the crop
	// offsets differ. 5 rows spare: both take 2 (floor 2.5; 2.5 to even).
	// 7 spare: CLIP floors 3.5 to 3, torchvision rounds it to even, 4.
	for _, c := range []struct{ h, clip, dino int }{{35, 2, 2}, {37, 3, 4}, {39, 4, 4}, {30, 0, 0}} {
		im := rowCoded(30, c.h)
		px, err := CLIPPixels(im, 30)
		require.NoError(t, err)
		require.Len(t, px, 30*30*3)
		require.Equal(t, c.clip, firstRow(px, imageproc.CLIPMean[0], imageproc.CLIPStd[0]), "CLIP top row for height %d", c.h)
		px, err = DINOPixels(im, 30, 30)
		require.NoError(t, err)
		require.Equal(t, c.dino, firstRow(px, imageproc.ImageNetMean[0], imageproc.ImageNetStd[0]), "DINO top row for height %d", c.h)
	}
	require.Equal(t, 256, DINOResize(224))
}

func TestScaleAndNormalize(t *testing.T) {
	im := imageproc.NewRGB(60, 45)
	for i := range im.Pix {
		im.Pix[i] = 200
	}
	px, err := CLIPPixels(im, 30)
	require.NoError(t, err)
	for c := 0; c < 3; c++ {
		want := (float32(float64(200)*(1.0/255)) - float32(imageproc.CLIPMean[c])) / float32(imageproc.CLIPStd[c])
		require.InDelta(t, want, px[c], 1e-6)
	}
	px, err = DINOPixels(im, 34, 30)
	require.NoError(t, err)
	require.Len(t, px, 30*30*3)
	for c := 0; c < 3; c++ {
		want := (float32(200)/255 - float32(imageproc.ImageNetMean[c])) / float32(imageproc.ImageNetStd[c])
		require.InDelta(t, want, px[c], 1e-6)
	}
}

func tinyCLIP(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(dir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	return dir
}

func TestTinyCLIPScores(t *testing.T) {
	b := cpu.New()
	ctx := context.Background()
	c, err := OpenCLIP(ctx, b, loader.NewDirSource(tinyCLIP(t)), &loader.Options{Precision: loader.PrecisionF32})
	require.NoError(t, err)
	defer c.Free()
	require.NotNil(t, c.Text)

	a, _, err := imageproc.DecodeFile(golden.Path(t, "inputs", "reference_96x64.png"), imageproc.DecodeOptions{})
	require.NoError(t, err)
	other, _, err := imageproc.DecodeFile(golden.Path(t, "inputs", "reference2_300x200_rgba.png"), imageproc.DecodeOptions{})
	require.NoError(t, err)
	ones := imageproc.NewRGB(a.Width, a.Height)
	for i := range ones.Pix {
		ones.Pix[i] = 255
	}
	m := eval.Models{CLIPImage: c, CLIPText: c}
	gen := []eval.Generated{
		{Picture: eval.Picture{Name: "same", Image: a, Mask: ones}, Text: "a dog on the beach"},
		{Picture: eval.Picture{Name: "other", Image: other}, Text: "a cat"},
	}
	real := []eval.Real{{Picture: eval.Picture{Name: "ref", Image: a}}}
	rep, emb, err := eval.Evaluate(ctx, m, gen, real, eval.Options{})
	require.NoError(t, err)
	s := rep.Images
	require.InDelta(t, 1, s[0].Scores[eval.CLIPI], 1e-6, "identical pictures")
	require.Equal(t, s[0].Scores[eval.CLIPI], s[0].Scores[eval.MCLIPI], "an all-ones mask")
	require.Less(t, s[1].Scores[eval.CLIPI], 1-1e-4, "another picture")
	for _, x := range s {
		v := x.Scores[eval.CLIPT]
		require.True(t, v >= -1 && v <= 1, "CLIP-T %v is a cosine", v)
	}
	require.Len(t, emb.CLIPImage[0], 20, "projection_dim")

	// The text embedding is the tower's on the tokenizer's ids: BOS, one id
	// per character but for the merged "at</w>", EOS.
	v, err := c.EmbedTexts(ctx, []string{"a cat"})
	require.NoError(t, err)
	ids := []int32{498}
	for _, r := range "a" {
		ids = append(ids, int32(embedtest.TinyVocab(500)[string(r)+"</w>"]))
	}
	for _, s := range []string{"c", "at</w>"} {
		ids = append(ids, int32(embedtest.TinyVocab(500)[s]))
	}
	ids = append(ids, 499)
	o, err := c.Text.Forward(b, [][]int32{ids})
	require.NoError(t, err)
	defer o.Free(b)
	p, err := c.Text.Project(b, o.Pooled)
	require.NoError(t, err)
	want, err := b.Read(ctx, p)
	require.NoError(t, err)
	b.Free(p)
	require.Equal(t, want, v[0])

	// CLIP's own cleaning (ftfy's fix_text unescapes HTML, whitespace
	// collapses, lower case), as the metric code tokenizes.
	v, err = c.EmbedTexts(ctx, []string{"A  &amp;\tCat", "a & cat"})
	require.NoError(t, err)
	require.Equal(t, v[1], v[0])
}

func TestOpenCLIPRefusals(t *testing.T) {
	ctx := context.Background()
	b := cpu.New()
	// No tokenizer: CLIP-T cannot run; the error says what is missing.
	dir := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(dir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	require.NoError(t, removeAll(filepath.Join(dir, "vocab.json")))
	_, err := OpenCLIP(ctx, b, loader.NewDirSource(dir), &loader.Options{Precision: loader.PrecisionF32})
	require.ErrorContains(t, err, "no tokenizer (vocab.json and merges.txt")
	// A tokenizer larger than the text tower's vocabulary.
	require.NoError(t, embedtest.WriteTokenizer(dir, 501))
	_, err = OpenCLIP(ctx, b, loader.NewDirSource(dir), &loader.Options{Precision: loader.PrecisionF32})
	require.ErrorContains(t, err, "the tokenizer has 501 tokens, the text tower's vocab_size is 500")
	// No weights.
	empty := t.TempDir()
	require.NoError(t, writeFile(filepath.Join(empty, "config.json"), "{}"))
	_, err = OpenCLIP(ctx, b, loader.NewDirSource(empty), &loader.Options{Precision: loader.PrecisionF32})
	require.ErrorContains(t, err, "no weights")
}

func removeAll(p string) error { return os.RemoveAll(p) }

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

func TestTinyDINO(t *testing.T) {
	b := cpu.New()
	ctx := context.Background()
	opt := &loader.Options{Precision: loader.PrecisionF32}
	d, err := OpenDINO(ctx, b, loader.NewDirSource(golden.Path(t, "dino-tiny")), "", 0, opt)
	require.NoError(t, err)
	defer d.Free()
	// The original layout of the same weights embeds the same way.
	o, err := OpenDINO(ctx, b, loader.NewDirSource(golden.Path(t, "dino-tiny")), "dino_tiny16_pretrain.pth", 2, opt)
	require.NoError(t, err)
	defer o.Free()

	a, _, err := imageproc.DecodeFile(golden.Path(t, "inputs", "reference_96x64.png"), imageproc.DecodeOptions{})
	require.NoError(t, err)
	other, _, err := imageproc.DecodeFile(golden.Path(t, "inputs", "reference2_300x200_rgba.png"), imageproc.DecodeOptions{})
	require.NoError(t, err)
	v1, err := d.EmbedImages(ctx, []*imageproc.RGB{a, other})
	require.NoError(t, err)
	v2, err := o.EmbedImages(ctx, []*imageproc.RGB{a, other})
	require.NoError(t, err)
	require.Len(t, v1[0], 16)
	for i := range v1 {
		for j := range v1[i] {
			require.InDelta(t, v1[i][j], v2[i][j], 1e-5)
		}
	}
	rep, emb, err := eval.Evaluate(ctx, eval.Models{DINO: d}, []eval.Generated{
		{Picture: eval.Picture{Name: "same", Image: a}}, {Picture: eval.Picture{Name: "other", Image: other}},
	}, []eval.Real{{Picture: eval.Picture{Name: "ref", Image: a}}}, eval.Options{})
	require.NoError(t, err)
	require.InDelta(t, 1, rep.Images[0].Scores[eval.DINO], 1e-6)
	require.Less(t, rep.Images[1].Scores[eval.DINO], 1-1e-4)
	n := 0.0
	for _, x := range emb.DINO[1] {
		n += float64(x) * float64(x)
	}
	require.InDelta(t, 1, n, 1e-6, "normalized")
}
