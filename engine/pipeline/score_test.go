// score_test.go: the score line's CLIP-T text and its scores through
// engine/eval (the tiny CLIP and DINO on the CPU reference).
package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/imageproc"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestScoreText(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{TargetClass: "dog", Prompt: " swimming underwater "}, "a dog swimming underwater"},
		{Options{SourceClass: "cat", Prompt: "on a sofa"}, "a cat on a sofa"},
		{Options{Prompt: "a toy"}, "a toy"},
		{Options{Base: BaseELITE, TargetClass: "dog", Prompt: "a S wearing a red hat"}, "a dog wearing a red hat"},
		{Options{Base: BaseELITE, Placeholder: "V", TargetClass: "dog", Prompt: "a V on the S"}, "a dog on the S"},
	} {
		require.Equal(t, c.want, ScoreText(&c.o))
	}
}

func TestScorers(t *testing.T) {
	ctx := context.Background()
	b := cpu.New()
	dir := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(dir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	_, err := OpenScorers(ctx, ScorerSources{}, b, nil)
	require.Error(t, err)
	s, err := OpenScorers(ctx, ScorerSources{CLIP: loader.NewDirSource(dir), DINO: loader.NewDirSource(golden.Path(t, "dino-tiny"))}, b, &loader.Options{Precision: loader.PrecisionF32})
	require.NoError(t, err)
	defer s.Close()
	ct, dn := s.Has()
	require.True(t, ct && dn)
	photo, err := os.ReadFile(golden.Path(t, "inputs", "reference_96x64.png"))
	require.NoError(t, err)
	rgb, _, err := imageproc.Decode("photo.png", photo, imageproc.DecodeOptions{})
	require.NoError(t, err)
	same := &Image{W: rgb.Width, H: rgb.Height, Pix: rgb.Pix}
	sc, err := s.Score(ctx, photo, "photo.png", "a dog", []*Image{same, nil})
	require.NoError(t, err)
	require.Len(t, sc, 2)
	require.InDelta(t, 1, sc[0].DINO, 1e-6, "the photo against itself")
	require.True(t, sc[0].HasCLIPT)
	require.Equal(t, Score{}, sc[1], "no picture, no score")
	_, err = s.Score(ctx, []byte("not a picture"), "x.png", "a dog", []*Image{same})
	require.Error(t, err)
}
