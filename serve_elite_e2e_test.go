//go:build !js && optin

// serve_elite_e2e_test.go: ELITE on the page in headless Chromium, with
// Harmony and a painted subject mask, against the native engine.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/loader"
	"harmony/loader/golden"
)

// TestPageELITE: the tiny ELITE model (served as a folder on the page's
// origin), ELITE chosen on the page, a brush stroke painted as the mask,
// Harmony on, a fixed seed: the four pictures equal the native engine's
// for the same settings and the same mask within ±2 levels on 99 % of
// values; no request leaves the origin or carries the photo or the mask.
// Opt-in (build tag optin: go test -tags optin -run TestPageELITE .): about five minutes on SwiftShader with
// two cores; the mask editor's own test (TestPageMaskEditor) runs always.
func TestPageELITE(t *testing.T) {
	dir := golden.Path(t, "elite-tiny")
	url, log := browserSetupWith(t, func(h http.Handler) http.Handler {
		files := http.StripPrefix("/elite-tiny/", http.FileServer(http.Dir(dir)))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/elite-tiny/") {
				files.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})

	const steps, seed, width, height = 4, 42, 48, 32
	const prompt = "a S swimming underwater"
	out, _ := filepath.Abs(filepath.Join("testout", "e2e-elite"))
	require.NoError(t, os.RemoveAll(out))
	photo := filepath.Join("www", "demo", "subject.png")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "wasm/node/e2e.mjs", "--url", url, "--photo", photo, "--out", out,
		"--base", "elite", "--source", "pack", "--model-url", url+"elite-tiny/", "--precision", "f32",
		"--class", "", "--prompt", prompt, "--negative", e2eNegative,
		"--steps", strconv.Itoa(steps), "--guidance", "5", "--seed", strconv.Itoa(seed),
		"--width", strconv.Itoa(width), "--height", strconv.Itoa(height),
		"--harmony", "1", "--compare", "1", "--paint-mask", "1", "--chromium", chromiumPath)
	cmd.Stderr = os.Stderr
	start := time.Now()
	stdout, err := cmd.Output()
	t.Logf("browser run (%v): %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(stdout)))
	var rep struct {
		OffOrigin       []string
		PhotoSent       bool
		MaskSent        bool
		Error           any
		GenerateSeconds float64
		Adapter         string
		ProgressText    string
		ModelStatus     string
		MaskFile        string
		MaskStatus      string
		Outputs         map[string]string
	}
	data, rerr := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, rerr, "the driver wrote no report")
	require.NoError(t, json.Unmarshal(data, &rep))
	require.NoError(t, err, "browser run failed: %v", rep.Error)
	t.Logf("page: %s; %s; %s; ELITE + Harmony generation %.1f s in headless Chromium", rep.Adapter, rep.ModelStatus, rep.ProgressText, rep.GenerateSeconds)
	require.Empty(t, rep.OffOrigin, "requests left the page's origin")
	require.False(t, rep.PhotoSent, "a request carried the photo")
	require.False(t, rep.MaskSent, "a request carried the mask")
	require.Contains(t, rep.MaskStatus, "% of the photo is the subject")
	require.NotEmpty(t, rep.MaskFile, "no mask was painted")

	photoBytes, err := os.ReadFile(photo)
	require.NoError(t, err)
	mask, err := os.ReadFile(rep.MaskFile)
	require.NoError(t, err)
	probes := [][]byte{photoBytes[64:112], mask[33:]}
	log.mu.Lock()
	for i, b := range log.body {
		for _, p := range probes {
			require.False(t, bytes.Contains(b, p), "request %s carried the photo or the mask", log.reqs[i])
		}
		require.NotContains(t, log.reqs[i], "POST", "the page posted something: %s", log.reqs[i])
	}
	log.mu.Unlock()

	// The same generation natively, with the mask the page made.
	b := kernels.New(gputest.Default(t))
	m, _, err := pipeline.LoadELITE(ctx, pipeline.EliteSources{Model: loader.NewDirSource(dir)}, b, &loader.Options{Precision: loader.PrecisionF32})
	require.NoError(t, err)
	defer m.Close()
	o := pipeline.DefaultOptionsFor(pipeline.BaseELITE)
	o.Image, o.ImageName, o.Mask, o.MaskName = photoBytes, "subject.png", mask, "painted mask"
	o.Prompt, o.Negative = prompt, e2eNegative
	o.Steps, o.Guidance, o.Seed, o.Width, o.Height, o.Compare = steps, 5, seed, width, height, true
	res, err := pipeline.Generate(ctx, m, o)
	require.NoError(t, err)
	for _, w := range res.Warnings {
		require.NotContains(t, w, "whole photo", "the native run got no mask")
	}
	native := map[string]*pipeline.Image{"harmony": res.Main.Image, "baseline": res.Baseline.Image, "visual": res.Visual.Image, "mask": res.MaskHeat}
	for kind, want := range native {
		t.Run(kind, func(t *testing.T) {
			file, ok := rep.Outputs[kind]
			require.True(t, ok, "the page showed no %s picture", kind)
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			img, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			compareImage(t, kind, img, want)
		})
	}
}
