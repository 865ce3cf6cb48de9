// eval_test.go: `harmony eval` end to end on the tiny CLIP checkpoint
// (scores, masks, dump), where its prompts come from, and its refusals
// of bad input, each naming the file or option.
package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/eval"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/imageproc"
	"harmony/engine/pipeline"
	"harmony/engine/pngmeta"
	"harmony/loader"
	"harmony/loader/golden"
)

// tinyCLIPDir is the tiny CLIP checkpoint with a tokenizer it can use.
func tinyCLIPDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "clip-tiny")
	require.NoError(t, embedtest.TinyCLIPFolder(dir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	return dir
}

// writePNG writes a w×h picture of one colour, with parameters when o is
// set.
func writePNG(t *testing.T, path string, w, h int, c [3]uint8, o *pipeline.Options) {
	im := &pipeline.Image{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	for i := 0; i < len(im.Pix); i += 3 {
		copy(im.Pix[i:i+3], c[:])
	}
	var data []byte
	var err error
	if o != nil {
		data, err = pngmeta.PNG(im, o, "")
	} else {
		data, err = im.PNG()
	}
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func TestEvalTinyCLIP(t *testing.T) {
	needGPU(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	writePNG(t, a, 40, 30, [3]uint8{200, 30, 10}, nil)
	writePNG(t, b, 40, 30, [3]uint8{10, 30, 200}, nil)
	ones := filepath.Join(dir, "ones.png")
	writePNG(t, ones, 40, 30, [3]uint8{255, 255, 255}, nil)
	out, dump := filepath.Join(dir, "scores.json"), filepath.Join(dir, "dump.safetensors")
	err := runEval(context.Background(), []string{"--clip", tinyCLIPDir(t), "--dino", golden.Path(t, "dino-tiny"), "--images", a + "," + b, "--reference", a,
		"--masks", ones + ",-", "--prompt", "a dog on the beach", "--input-photo", b, "--out", out, "--dump", dump, "--quiet"})
	require.NoError(t, err)
	var rep eval.Report
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Equal(t, []string{eval.DINO, eval.CLIPI, eval.CLIPT, eval.MDINO, eval.MCLIPI, eval.DINOInput, eval.CLIPIInput}, rep.Metrics)
	for _, k := range []string{eval.CLIPI, eval.DINO} {
		require.InDelta(t, 1, rep.Images[0].Scores[k], 1e-5, "%s of the picture against itself", k)
		require.Less(t, rep.Images[1].Scores[k], 1-1e-4, "%s: the input photo b is no pairwise reference", k)
	}
	for _, k := range []string{eval.CLIPIInput, eval.DINOInput} {
		require.InDelta(t, 1, rep.Images[1].Scores[k], 1e-5, "%s of the picture against itself as input photo", k)
		require.Less(t, rep.Images[0].Scores[k], 1-1e-4, k)
	}
	require.Equal(t, rep.Images[0].Scores[eval.CLIPI], rep.Images[0].Scores[eval.MCLIPI], "an all-ones mask changes nothing")
	require.Equal(t, rep.Images[0].Scores[eval.DINO], rep.Images[0].Scores[eval.MDINO], "an all-ones mask changes nothing")
	for _, ext := range []string{".csv", ".md"} {
		_, err := os.Stat(strings.TrimSuffix(out, ".json") + ext)
		require.NoError(t, err)
	}
	f, err := loader.ReadSafetensorsFile(dump)
	require.NoError(t, err)
	for name, shape := range map[string][]int{"clip.image_embeds": {2, 20}, "clip.text_embeds": {1, 20}, "scores.clip_i": {2, 1}, "scores.clip_t": {2, 1},
		"dino.cls_normalized": {2, 16}, "scores.dino": {2, 1}, "scores.clip_i_input": {2}, "scores.dino_input": {2}} {
		v, err := f.Float32(name)
		require.NoError(t, err, name)
		n := 1
		for _, s := range shape {
			n *= s
		}
		require.Len(t, v, n, name)
	}
	ci, _ := f.Float32("scores.clip_i")
	require.InDelta(t, rep.Images[1].Scores[eval.CLIPI], ci[1], 1e-6, "the dump's matrix holds the same cosines")
	sd, _ := f.Float32("scores.dino")
	require.InDelta(t, rep.Images[1].Scores[eval.DINO], sd[1], 1e-6)
	ct, _ := f.Float32("scores.clip_t")
	require.InDelta(t, rep.Images[0].Scores[eval.CLIPT], ct[0], 1e-6)
	di, _ := f.Float32("scores.dino_input")
	require.InDelta(t, rep.Images[0].Scores[eval.DINOInput], di[0], 1e-6)
}

// stubModels replaces the models with the mean-colour stub for a test and
// records the CLIP-T texts asked for.
func stubModels(t *testing.T) *[]string {
	var texts []string
	old := openEvalModels
	openEvalModels = func(context.Context, evalModelSpec, *progressBar) (eval.Models, func(), error) {
		return eval.Models{CLIPImage: meanColour{}, CLIPText: textRecorder{&texts}, DINO: meanColour{}}, func() {}, nil
	}
	t.Cleanup(func() { openEvalModels = old })
	return &texts
}

type meanColour struct{}

func (meanColour) EmbedImages(_ context.Context, ims []*imageproc.RGB) ([][]float32, error) {
	out := make([][]float32, len(ims))
	for i, im := range ims {
		v := make([]float32, 3)
		for p := 0; p < len(im.Pix); p++ {
			v[p%3] += float32(im.Pix[p]) + 1
		}
		out[i] = v
	}
	return out, nil
}

type textRecorder struct{ texts *[]string }

func (r textRecorder) EmbedTexts(_ context.Context, texts []string) ([][]float32, error) {
	*r.texts = append(*r.texts, texts...)
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = []float32{1, 1, 1}
	}
	return out, nil
}

// TestEvalPrompts: a picture's CLIP-T text is "a {class} {prompt}" from
// its parameters, or what --prompt, a prompt file or a JSON list says.
func TestEvalPrompts(t *testing.T) {
	texts := stubModels(t)
	dir := t.TempDir()
	o := pipeline.DefaultOptions()
	o.TargetClass, o.SourceClass, o.Prompt = "dog", "dog", "swimming underwater"
	p1 := filepath.Join(dir, "1.png")
	writePNG(t, p1, 8, 8, [3]uint8{1, 2, 3}, &o)
	o.TargetClass, o.Prompt = "red cat", ""
	p2 := filepath.Join(dir, "2.png")
	writePNG(t, p2, 8, 8, [3]uint8{1, 2, 3}, &o)
	writePNG(t, filepath.Join(dir, "2.mask.png"), 8, 8, [3]uint8{255, 255, 255}, nil) // left out of a folder listing

	require.NoError(t, runEval(context.Background(), []string{"--clip", "x", "--images", dir, "--quiet"}))
	require.Equal(t, []string{"a dog swimming underwater", "a red cat"}, *texts)

	*texts = nil
	out := filepath.Join(dir, "s.json")
	require.NoError(t, runEval(context.Background(), []string{"--clip", "x", "--images", dir, "--prompt", "a dog", "--masks", "auto", "--out", out, "--quiet"}))
	require.Equal(t, []string{"a dog"}, *texts)
	var rep eval.Report
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.False(t, rep.Images[0].Masked)
	require.True(t, rep.Images[1].Masked, "2.mask.png beside 2.png")

	*texts = nil
	lines := filepath.Join(dir, "p.txt")
	require.NoError(t, os.WriteFile(lines, []byte("a dog one\n\na dog two\n"), 0o644))
	require.NoError(t, runEval(context.Background(), []string{"--clip", "x", "--images", p1 + "," + p2, "--prompts", lines, "--quiet"}))
	require.Equal(t, []string{"a dog one", "a dog two"}, *texts)

	*texts = nil
	js := filepath.Join(dir, "p.json")
	require.NoError(t, os.WriteFile(js, []byte(`[{"image": "2.png", "prompt": "in the snow", "class": "cat", "subject": "cat2"}, {"image": "1.png", "text": "a dog"}]`), 0o644))
	require.NoError(t, runEval(context.Background(), []string{"--clip", "x", "--dino", "y", "--images", p1 + "," + p2, "--prompts", js, "--out", out, "--quiet"}))
	require.Equal(t, []string{"a dog", "a cat in the snow"}, *texts)
	data, err = os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Equal(t, "cat2", rep.Images[1].Subject)
	require.InDelta(t, 1, rep.Images[0].Scores[eval.DINO], 1e-6, "identical pictures against themselves")

	// --input-photo: the single-reference scores, the photo (one of the
	// references here) scoring 1 against itself.
	require.NoError(t, runEval(context.Background(), []string{"--clip", "x", "--dino", "y", "--images", p1 + "," + p2, "--input-photo", p1, "--out", out, "--quiet"}))
	data, err = os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.Equal(t, []string{eval.DINO, eval.CLIPI, eval.CLIPT, eval.DINOInput, eval.CLIPIInput}, rep.Metrics)
	require.InDelta(t, 1, rep.Images[0].Scores[eval.DINOInput], 1e-6, "the input photo against itself")
	require.Equal(t, 2, rep.Overall[0].N[eval.DINOInput])
	md, err := os.ReadFile(strings.TrimSuffix(out, ".json") + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "| DINO | CLIP-I | CLIP-T | DINO (1 ref) | CLIP-I (1 ref) |")
}

// TestEvalBadInput: every refusal names the option and file at fault, and
// writes nothing.
func TestEvalBadInput(t *testing.T) {
	stubModels(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "g.png")
	writePNG(t, good, 8, 8, [3]uint8{9, 9, 9}, nil)
	small := filepath.Join(dir, "small.png")
	writePNG(t, small, 4, 8, [3]uint8{9, 9, 9}, nil)
	notPNG := filepath.Join(dir, "bad.png")
	require.NoError(t, os.WriteFile(notPNG, []byte("not a picture"), 0o644))
	badJSON := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badJSON, []byte(`[{"image": "g.png"}]`), 0o644))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	out := filepath.Join(dir, "out.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--images", good}, "give --clip, --dino or both"},
		{[]string{"--clip", "x"}, "--images is required"},
		{[]string{"--clip", "x", "--images", filepath.Join(dir, "nope.png"), "--prompt", "a"}, "--images " + filepath.Join(dir, "nope.png")},
		{[]string{"--clip", "x", "--images", notPNG, "--prompt", "a"}, "--images " + notPNG},
		{[]string{"--clip", "x", "--images", empty}, "the folder holds no pictures"},
		{[]string{"--clip", "x", "--images", good}, "--images " + good + ": no prompt"},
		{[]string{"--clip", "x", "--images", good + "," + good, "--prompt", "a", "--masks", small}, "--masks gives 1 masks for 2 pictures"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--masks", small}, "--masks " + small + " is 4×8 but its picture " + good + " is 8×8"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--reference", notPNG}, "--reference " + notPNG},
		{[]string{"--clip", "x", "--images", good + "," + good + "," + good, "--prompt", "a", "--prompt", "b"}, "--prompt gives 2 prompts for 3 pictures"},
		{[]string{"--clip", "x", "--images", good, "--prompts", badJSON}, "--prompts " + badJSON + ": element 0 has no text or prompt"},
		{[]string{"--clip", "x", "--images", good, "--prompts", filepath.Join(dir, "nope.txt")}, "--prompts"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--prompts", badJSON}, "not both"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--out", dir}, "--out " + dir + ": give a .json file name"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--out", good + "/x.json"}, good + " is a file, not a folder"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--fill", "300"}, "--fill must be in [0, 255]"},
		{[]string{"--clip", "x", "--images", good, "--prompt", "a", "--input-photo", notPNG}, "--input-photo " + notPNG},
	} {
		err := runEval(context.Background(), append(c.args, "--quiet"))
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "nothing written")
}

// TestEvalBadModels: a broken CLIP or DINO checkpoint is refused naming
// the option and the file at fault.
func TestEvalBadModels(t *testing.T) {
	needGPU(t)
	dir := t.TempDir()
	pic := filepath.Join(dir, "p.png")
	writePNG(t, pic, 16, 16, [3]uint8{9, 90, 200}, nil)
	noConfig := filepath.Join(dir, "noconfig")
	require.NoError(t, os.Mkdir(noConfig, 0o755))
	truncated := tinyCLIPDir(t)
	w, err := os.ReadFile(golden.Path(t, "clip-tiny", "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(truncated, "model.safetensors")))
	require.NoError(t, os.WriteFile(filepath.Join(truncated, "model.safetensors"), w[:len(w)/2], 0o644))
	notCkpt := filepath.Join(dir, "dino.pth")
	require.NoError(t, os.WriteFile(notCkpt, []byte("not a checkpoint"), 0o644))
	wrongModel := filepath.Join(dir, "wrong")
	require.NoError(t, os.Mkdir(wrongModel, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(wrongModel, "config.json"), []byte(`{"hidden_size": 16}`), 0o644))
	require.NoError(t, os.Symlink(golden.Path(t, "clip-tiny", "model.safetensors"), filepath.Join(wrongModel, "model.safetensors")))
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--clip", noConfig}, []string{"--clip " + noConfig, "config.json"}},
		{[]string{"--clip", truncated}, []string{"--clip " + truncated, "model.safetensors"}},
		{[]string{"--clip", pic}, []string{"--clip " + pic + " is a file"}},
		{[]string{"--dino", notCkpt}, []string{"--dino " + notCkpt, "dino.pth"}},
		{[]string{"--dino", wrongModel}, []string{"--dino " + wrongModel}},
	} {
		err := runEval(context.Background(), append(c.args, "--images", pic, "--prompt", "a dog", "--quiet"))
		require.Error(t, err, "%v", c.args)
		for _, w := range c.want {
			require.ErrorContains(t, err, w, "%v", c.args)
		}
	}
}
