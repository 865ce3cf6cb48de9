// score_test.go: the score line with the tiny CLIP and DINO checkpoints:
// off until weights are loaded, then every result picture (not the mask
// heat-map) scored against the photo with the numbers engine/eval gives
// for the same pictures on the CPU reference.
package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/eval"
	"harmony/engine/eval/embed"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/imageproc"
	"harmony/engine/pipeline"
	"harmony/loader"
	"harmony/loader/golden"
)

// tinyCLIP is a CLIPModel folder of the tiny checkpoint with a tokenizer
// made for its vocabulary.
func tinyCLIP(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(dir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	return dir
}

func TestScoreLine(t *testing.T) {
	a, _ := newLoaded(t)
	ctx := context.Background()
	for name, v := range map[string]string{"steps": "2", "seed": "7", "prompt": "swimming underwater", "class": "dog"} {
		require.NoError(t, a.Set(name, v))
	}
	// Off by default: no scores.
	require.False(t, a.Snapshot().Score.On())
	require.NoError(t, a.Generate())
	a.Wait()
	s := a.Snapshot()
	require.Equal(t, Done, s.Phase, "err: %v", s.Err)
	require.Nil(t, s.Result.Scores)

	// A location that holds no weights is refused and leaves scoring off.
	require.Error(t, a.LoadScorers(ctx, t.TempDir(), ""))
	s = a.Snapshot()
	require.False(t, s.Score.On())
	require.Error(t, s.Score.Err)

	clipDir, dinoDir := tinyCLIP(t), golden.Path(t, "dino-tiny")
	require.NoError(t, a.LoadScorers(ctx, clipDir, dinoDir))
	s = a.Snapshot()
	require.True(t, s.Score.On())
	require.NoError(t, s.Score.Err)
	require.Equal(t, Done, s.Phase, "loading scorers leaves the phase as it was")
	require.NoError(t, a.Generate())
	a.Wait()
	s = a.Snapshot()
	require.Equal(t, Done, s.Phase, "err: %v", s.Err)
	r := s.Result
	require.NoError(t, r.ScoreErr)
	require.Len(t, r.Scores, len(Kinds))
	require.Equal(t, Score0, r.Scores[Mask], "the mask heat-map is not scored")

	// engine/eval on the CPU reference, the same pictures and text.
	b := cpu.New()
	opt := &loader.Options{Precision: loader.PrecisionF32}
	c, err := embed.OpenCLIP(ctx, b, loader.NewDirSource(clipDir), opt)
	require.NoError(t, err)
	defer c.Free()
	d, err := embed.OpenDINO(ctx, b, loader.NewDirSource(dinoDir), "", 0, opt)
	require.NoError(t, err)
	defer d.Free()
	photo, _, err := imageproc.Decode(s.Photo.Name, s.Photo.Data, imageproc.DecodeOptions{})
	require.NoError(t, err)
	var gen []eval.Generated
	kinds := []Kind{Harmony, Baseline, Visual}
	for _, k := range kinds {
		im := r.Images[k]
		require.NotNil(t, im, k.String())
		gen = append(gen, eval.Generated{Picture: eval.Picture{Name: k.String(), Image: &imageproc.RGB{Width: im.W, Height: im.H, Pix: im.Pix}},
			Text: "a dog swimming underwater"})
	}
	rep, _, err := eval.Evaluate(ctx, eval.Models{CLIPImage: c, CLIPText: c, DINO: d}, gen,
		[]eval.Real{{Picture: eval.Picture{Name: "photo", Image: photo}}}, eval.Options{})
	require.NoError(t, err)
	for n, k := range kinds {
		got, want := r.Scores[k], rep.Images[n].Scores
		require.True(t, got.HasCLIPT && got.HasDINO, k.String())
		t.Logf("%s: %s (eval: CLIP-T %.6f, DINO %.6f; differences %.1e, %.1e)", k, got, want[eval.CLIPT], want[eval.DINO],
			got.CLIPT-want[eval.CLIPT], got.DINO-want[eval.DINO])
		// The app scores on the GPU; eval here on the CPU reference.
		require.InDelta(t, want[eval.CLIPT], got.CLIPT, 1e-4, "%s CLIP-T", k)
		require.InDelta(t, want[eval.DINO], got.DINO, 1e-4, "%s DINO", k)
		require.Contains(t, got.String(), "CLIP-T ")
	}
	require.Less(t, r.Scores[Harmony].DINO, 1-1e-6, "a generated picture is not the photo")

	// Both locations empty turns scoring off again.
	require.NoError(t, a.LoadScorers(ctx, "", ""))
	require.False(t, a.Snapshot().Score.On())
}

// Score0 is an unscored picture's entry.
var Score0 = pipeline.Score{}
