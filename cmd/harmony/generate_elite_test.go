package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/pipeline"
	"harmony/loader"
	"harmony/loader/golden"
)

// TestGenerateELITEFlags: --base elite starts from ELITE's defaults
// wherever it stands, and ELITE's flags are refused without it.
func TestGenerateELITEFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--base", "elite", "--model", "m"},
		{"--model", "m", "--base=elite"},
		{"--model", "m", "-base", "elite", "--placeholder", "S"},
	} {
		g, err := parseGenerate(args)
		require.NoError(t, err, args)
		o := g.opts
		require.Equal(t, pipeline.BaseELITE, o.Base)
		require.Equal(t, 100, o.Steps)
		require.Equal(t, 5.0, o.Guidance)
		require.Equal(t, "lms", o.Scheduler)
		require.Equal(t, 0.8, o.LocalWeight)
		require.Equal(t, "a S", o.Harmony.VisualPrompt)
		require.Equal(t, "a S wearing a red hat", o.Prompt)
		require.Empty(t, o.TargetClass)
	}
	g, err := parseGenerate([]string{"--base", "elite", "--model", "m", "--steps", "7", "--local-weight", "0.6", "--class", "dog", "--mask", "m.png"})
	require.NoError(t, err)
	require.Equal(t, 7, g.opts.Steps)
	require.Equal(t, 0.6, g.opts.LocalWeight)
	require.Equal(t, "dog", g.opts.TargetClass)
	require.Equal(t, "m.png", g.mask)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--base", "elite"}, "--base elite needs --model"},
		{[]string{"--mask", "m.png"}, "add --base elite"},
		{[]string{"--mappers", "x"}, "add --base elite"},
		{[]string{"--base", "elite", "--model", "m", "--prompt", "a dog"}, `--prompt must contain the placeholder word "S"`},
		{[]string{"--base", "elite", "--model", "m", "--method", "blipdiffusion"}, "--method"},
		{[]string{"--base", "elite", "--model", "m", "--local-weight", "-1"}, "--local-weight"},
		{[]string{"--base", "sd"}, "--base"},
		{[]string{"--scheduler", "lms"}, "--scheduler must be pndm or ddim for BLIP-Diffusion"},
	} {
		_, err := parseGenerate(tc.args)
		require.Error(t, err, tc.args)
		require.Contains(t, err.Error(), tc.want, tc.args)
	}
}

// TestGenerateELITEOutDir: Harmony on the tiny ELITE model with a mask
// writes the four pictures, and the dump has w0 and local besides the
// usual tensors.
func TestGenerateELITEOutDir(t *testing.T) {
	needGPU(t)
	dir := t.TempDir()
	dump := filepath.Join(dir, "run.safetensors")
	err := runGenerate(context.Background(), []string{
		"--base", "elite", "--model", golden.Path(t, "elite-tiny"),
		"--image", golden.Path(t, "inputs", "reference_96x64.png"), "--mask", golden.Path(t, "elite", "inputs", "reference_96x64_bg.png"),
		"--prompt", "a S wearing a red hat", "--steps", "3", "--width", "32", "--height", "24", "--seed", "7",
		"--out-dir", dir, "--dump", dump, "--quiet",
	})
	require.NoError(t, err)
	for _, f := range []string{"harmony.png", "baseline.png", "visual.png", "mask.png"} {
		require.Len(t, readPNG(t, filepath.Join(dir, f)), 32*24*3, f)
	}
	d, err := loader.ReadSafetensorsFile(dump)
	require.NoError(t, err)
	want := map[string][]int{
		"latents": {1, 4, 12, 16}, "image": {1, 24, 32, 3}, "visual_latents": {1, 4, 12, 16},
		"baseline_latents": {1, 4, 12, 16}, "embedding": {1, 77, 32}, "embedding_ortho": {1, 77, 32},
		"masks_main": {3, 12, 16}, "w0": {1, 1, 32}, "local": {1, 256, 32},
	}
	for name, shape := range want {
		ti := d.Find(name)
		require.NotNil(t, ti, name)
		require.Equal(t, shape, ti.Shape, name)
	}
}
