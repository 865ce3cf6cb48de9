package main

import (
	"context"
	"encoding/binary"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/loader"
	"harmony/loader/golden"
)

const goldenNegative = "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate"

func needGPU(t *testing.T) {
	gputest.Default(t) // skips (or fails in CI) without an adapter
	if runtime.GOOS == "js" {
		t.Skip("the CLI runs natively")
	}
}

// writeLatents saves the golden initial latents as a safetensors file with
// a tensor "latents", the --latents format.
func writeLatents(t *testing.T) string {
	lat, shape := golden.Open(t, "golden", "g_pipeline.safetensors").MustF32(t, "pipe.init_latents")
	p := filepath.Join(t.TempDir(), "latents.safetensors")
	f, err := os.Create(p)
	require.NoError(t, err)
	raw := make([]byte, 4*len(lat))
	for i, v := range lat {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	require.NoError(t, loader.WriteSafetensors(f, []loader.SafetensorsTensor{{Name: "latents", DType: loader.F32, Shape: shape, Data: raw}}, nil))
	require.NoError(t, f.Close())
	return p
}

// TestGenerateReproducesGolden: `harmony generate` on the tiny golden model
// with the golden photo, prompt, negative prompt, 8 steps, guidance 7.5,
// 48×32 and the golden initial latents reproduces output/pipeline_image.png
// within one level.
func TestGenerateReproducesGolden(t *testing.T) {
	needGPU(t)
	out := filepath.Join(t.TempDir(), "out.png")
	err := runGenerate(context.Background(), []string{
		"--model", golden.Path(t, "blipdiffusion-tiny"), "--image", golden.Path(t, "inputs", "reference_96x64.png"),
		"--class", "dog", "--prompt", "swimming underwater", "--negative", goldenNegative,
		"--steps", "8", "--guidance", "7.5", "--width", "48", "--height", "32",
		"--latents", writeLatents(t), "--method", "blipdiffusion", "--out", out, "--quiet",
	})
	require.NoError(t, err)
	got := readPNG(t, out)
	want := readPNG(t, golden.Path(t, "output", "pipeline_image.png"))
	diff, maxd := 0, 0
	for i := range want {
		d := int(got[i]) - int(want[i])
		if d < 0 {
			d = -d
		}
		if d > 0 {
			diff++
		}
		maxd = max(maxd, d)
	}
	t.Logf("%d of %d values differ from pipeline_image.png, max %d", diff, len(want), maxd)
	require.LessOrEqual(t, maxd, 1)
}

// TestGenerateOutDir: Harmony writes the four pictures and a dump with the
// tensors the issue lists.
func TestGenerateOutDir(t *testing.T) {
	needGPU(t)
	dir := t.TempDir()
	dump := filepath.Join(dir, "run.safetensors")
	err := runGenerate(context.Background(), []string{
		"--model", golden.Path(t, "blipdiffusion-tiny"), "--image", golden.Path(t, "inputs", "reference_96x64.png"),
		"--steps", "4", "--width", "48", "--height", "32", "--seed", "7", "--out-dir", dir, "--dump", dump, "--quiet",
	})
	require.NoError(t, err)
	for _, f := range []string{"harmony.png", "baseline.png", "visual.png", "mask.png"} {
		require.Len(t, readPNG(t, filepath.Join(dir, f)), 48*32*3, f)
	}
	d, err := loader.ReadSafetensorsFile(dump)
	require.NoError(t, err)
	want := map[string][]int{
		"latents": {1, 4, 16, 24}, "image": {1, 32, 48, 3}, "visual_latents": {1, 4, 16, 24}, "visual_image": {1, 32, 48, 3},
		"embedding": {1, 77, 32}, "embedding_ortho": {1, 77, 32},
		"masks_main": {5, 16, 24}, "masks_visual": {5, 16, 24}, "masks_used_main": {5, 16, 24},
	}
	for name, shape := range want {
		ti := d.Find(name)
		require.NotNil(t, ti, name)
		require.Equal(t, shape, ti.Shape, name)
	}
}

func TestGenerateBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "dreambooth"}, "--method"},
		{[]string{"--precision", "f8"}, "--precision"},
		{[]string{"--swap-mode", "qk"}, "--swap-mode"},
		{[]string{"--ortho-mode", "sideways"}, "--ortho-mode"},
		{[]string{"--mask-tokens", "class"}, "--mask-tokens"},
		{[]string{"--swap-start", "-3"}, "--swap-start"},
		{[]string{"--mask-level", "x"}, "--mask-level"},
		{[]string{"--steps", "0"}, "--steps"},
		{[]string{"--visual-prompt", "a cat"}, "--visual-prompt"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, err := parseGenerate(tc.args)
		require.Error(t, err, tc.args)
		require.Contains(t, err.Error(), tc.want, tc.args)
	}
}

func readPNG(t *testing.T, path string) []uint8 {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	out := make([]uint8, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			out = append(out, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
		}
	}
	return out
}
