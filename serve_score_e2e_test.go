//go:build !js && optin

// serve_score_e2e_test.go: the page's score line in headless Chromium: the
// tiny CLIP and DINO loaded from URLs on the page's origin, a generation,
// and under the results each picture's CLIP-T and DINO against the photo,
// equal to engine/eval's on the CPU reference for the pictures the page
// showed. Opt-in (build tag optin): one to two minutes on
// SwiftShader, and the app's tests already check the same numbers natively.
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/eval"
	"harmony/engine/eval/embed"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/imageproc"
	"harmony/loader"
	"harmony/loader/golden"
)

func TestPageScores(t *testing.T) {
	clipDir := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(clipDir, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	dinoDir := golden.Path(t, "dino-tiny")
	url, _ := browserSetupWith(t, func(h http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/scorers/clip/", http.StripPrefix("/scorers/clip/", http.FileServer(http.Dir(clipDir))))
		mux.Handle("/scorers/dino/", http.StripPrefix("/scorers/dino/", http.FileServer(http.Dir(dinoDir))))
		mux.Handle("/", h)
		return mux
	})
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-scores"))
	require.NoError(t, os.RemoveAll(out))
	photo := filepath.Join("www", "demo", "subject.png")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--url", url, "--photo", photo, "--out", out,
		"--source", "demo", "--precision", "f32", "--class", "dog", "--prompt", "swimming underwater",
		"--steps", "2", "--seed", "5", "--width", "32", "--height", "32", "--harmony", "1", "--compare", "1",
		"--clip-url", url+"scorers/clip/", "--dino-url", url+"scorers/dino/", "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	start := time.Now()
	stdout, err := cmd.Output()
	t.Logf("browser run (%v): %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(stdout)))
	type score struct {
		ClipT, Dino *float64
		Line        string
	}
	var rep struct {
		OffOrigin    []string
		PhotoSent    bool
		Error        any
		ScorerStatus string
		ScoreLine    string
		Scores       map[string]json.RawMessage
		Outputs      map[string]string
	}
	data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, rerr, "the driver wrote no report")
	require.NoError(t, json.Unmarshal(data, &rep))
	require.NoError(t, err, "browser run failed: %v", rep.Error)
	require.Empty(t, rep.OffOrigin)
	require.False(t, rep.PhotoSent)
	require.Equal(t, "Scoring with CLIP-T and DINO.", rep.ScorerStatus)
	require.Contains(t, rep.ScoreLine, `text "a dog swimming underwater"`)

	// engine/eval on the CPU reference for the pictures the page showed.
	b := cpu.New()
	opt := &loader.Options{Precision: loader.PrecisionF32}
	c, err := embed.OpenCLIP(ctx, b, loader.NewDirSource(clipDir), opt)
	require.NoError(t, err)
	defer c.Free()
	d, err := embed.OpenDINO(ctx, b, loader.NewDirSource(dinoDir), "", 0, opt)
	require.NoError(t, err)
	defer d.Free()
	ph, _, err := imageproc.DecodeFile(photo, imageproc.DecodeOptions{})
	require.NoError(t, err)
	kinds := []string{"harmony", "baseline", "visual"}
	var gen []eval.Generated
	for _, k := range kinds {
		file, ok := rep.Outputs[k]
		require.True(t, ok, "the page showed no %s picture", k)
		im, _, err := imageproc.DecodeFile(file, imageproc.DecodeOptions{})
		require.NoError(t, err)
		gen = append(gen, eval.Generated{Picture: eval.Picture{Name: k, Image: im}, Text: "a dog swimming underwater"})
	}
	ev, _, err := eval.Evaluate(ctx, eval.Models{CLIPImage: c, CLIPText: c, DINO: d}, gen,
		[]eval.Real{{Picture: eval.Picture{Name: "photo", Image: ph}}}, eval.Options{})
	require.NoError(t, err)
	for i, k := range kinds {
		var s score
		require.NoError(t, json.Unmarshal(rep.Scores[k], &s), "scores of %s", k)
		require.NotNil(t, s.ClipT, k)
		require.NotNil(t, s.Dino, k)
		want := ev.Images[i].Scores
		t.Logf("%s: page %s; eval CLIP-T %.6f DINO %.6f", k, s.Line, want[eval.CLIPT], want[eval.DINO])
		// The page scores on WebGPU, eval here on the CPU reference.
		require.InDelta(t, want[eval.CLIPT], *s.ClipT, 1e-4, "%s CLIP-T", k)
		require.InDelta(t, want[eval.DINO], *s.Dino, 1e-4, "%s DINO", k)
		require.Contains(t, rep.ScoreLine, s.Line)
	}
}
