package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/pipeline"
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

// TestGenerateStats: --stats records the run: 8 steps (9 UNet calls of
// batch 2 with the scheduler's repeated step), the size, the time and the
// GPU memory.
func TestGenerateStats(t *testing.T) {
	needGPU(t)
	p := filepath.Join(t.TempDir(), "stats.json")
	err := runGenerate(context.Background(), []string{
		"--model", golden.Path(t, "blipdiffusion-tiny"), "--image", golden.Path(t, "inputs", "reference_96x64.png"),
		"--steps", "8", "--width", "48", "--height", "32", "--method", "blipdiffusion", "--compare", "off",
		"--out", filepath.Join(t.TempDir(), "out.png"), "--quiet", "--stats", p,
	})
	require.NoError(t, err)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	var s generateStats
	require.NoError(t, json.Unmarshal(data, &s))
	require.Equal(t, "blipdiffusion", s.Method)
	require.Equal(t, [4]int{48, 32, 8, 9}, [4]int{s.Width, s.Height, s.Steps, s.UNetCalls})
	require.Equal(t, 2, s.UNetBatch)
	require.Positive(t, s.GenerateSeconds)
	require.Positive(t, s.DenoiseSeconds)
	require.NotZero(t, s.PeakAllocated)
	require.GreaterOrEqual(t, s.PeakAllocated, s.PeakInUse)
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
		{[]string{"--guidance", "NaN"}, "--guidance must be finite"},
		{[]string{"--guidance", "1e30"}, "--guidance"},
		{[]string{"--mask-threshold", "NaN"}, "--mask-threshold must be finite"},
		{[]string{"--height", "-32"}, "--height"},
		{[]string{"--width", "-32"}, "--width"},
		{[]string{"--guidance", "1"}, "--guidance must be above 1 for Harmony"},
		{[]string{"--class", " "}, "--class"},
		{[]string{"--swap", "maybe"}, "unexpected argument"},
		{[]string{"--swap=maybe"}, "--swap must be on or off"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, err := parseGenerate(tc.args)
		require.Error(t, err, tc.args)
		require.Contains(t, err.Error(), tc.want, tc.args)
	}
	_, err := parseGenerate([]string{"--guidance", "1", "--method", "blipdiffusion"})
	require.NoError(t, err, "guidance 1 is fine without Harmony, whatever the flags' order")
}

// TestGenerateSameErrorsAsPipeline: a bad knob on the command line gives
// the pipeline's own error, word for word, so the CLI and the JS API (which
// sets the same options) say the same.
func TestGenerateSameErrorsAsPipeline(t *testing.T) {
	for _, tc := range [][2]string{
		{"guidance", "NaN"}, {"guidance", "Inf"}, {"guidance", "1e30"}, {"steps", "0"}, {"steps", "x"},
		{"height", "-32"}, {"width", "5000"}, {"mask-threshold", "NaN"}, {"mask-threshold", "1"},
		{"visual-prompt", "a cat"}, {"swap-mode", "qk"}, {"ortho-mode", "sideways"}, {"swap-start", "-3"},
		{"mask-level", "x"}, {"mask-tokens", "class"}, {"method", "dreambooth"}, {"scheduler", "euler"},
		{"seed", "-1"}, {"prompt-reps", "0"}, {"compare", "maybe"},
	} {
		o := pipeline.DefaultOptions()
		want := o.Set(tc[0], tc[1])
		require.Error(t, want, tc)
		var oe *pipeline.OptionError
		require.ErrorAs(t, want, &oe)
		for _, args := range [][]string{{"--" + tc[0], tc[1]}, {"--" + tc[0] + "=" + tc[1]}, {"-" + tc[0] + "=" + tc[1]}} {
			if oe.Option == "compare" && len(args) == 2 {
				continue // a bare on/off flag followed by an argument that is no on/off value
			}
			_, err := parseGenerate(args)
			require.Error(t, err, args)
			require.Equal(t, want.Error(), err.Error(), args)
			require.Equal(t, 2, exitCode(t, append([]string{"generate"}, args...)), args)
		}
	}
}

// TestGenerateOnOff: on/off flags take their value after a space or "=",
// and alone mean on.
func TestGenerateOnOff(t *testing.T) {
	get := func(g *generateFlags) [4]bool {
		h := g.opts.Harmony
		return [4]bool{h.Swap, h.Ortho, g.opts.Compare, h.ExcludeClass}
	}
	for _, tc := range []struct {
		args []string
		want [4]bool // swap, ortho, compare, ortho-exclude-class
	}{
		{nil, [4]bool{true, true, true, true}},
		{[]string{"--swap", "off"}, [4]bool{false, true, true, true}},
		{[]string{"--swap=off"}, [4]bool{false, true, true, true}},
		{[]string{"-swap", "off", "--ortho", "off", "--compare", "off", "--ortho-exclude-class", "off"}, [4]bool{false, false, false, false}},
		{[]string{"--swap", "OFF", "--ortho=false", "--compare", "0"}, [4]bool{false, false, false, true}},
		{[]string{"--swap=off", "--swap"}, [4]bool{true, true, true, true}},
		{[]string{"--compare", "off", "--swap", "--steps", "3"}, [4]bool{true, true, false, true}},
		{[]string{"--swap", "off", "--swap", "on"}, [4]bool{true, true, true, true}},
	} {
		g, err := parseGenerate(tc.args)
		require.NoError(t, err, tc.args)
		require.Equal(t, tc.want, get(g), tc.args)
	}
	g, err := parseGenerate([]string{"--compare", "off", "--swap", "--steps", "3"})
	require.NoError(t, err)
	require.Equal(t, 3, g.opts.Steps)
	// A flag's value is no flag: --prompt takes "--swap" as its text, and
	// "off" is then an argument too many.
	_, err = parseGenerate([]string{"--prompt", "--swap", "off"})
	require.ErrorContains(t, err, `unexpected argument "off"`)
	g, err = parseGenerate([]string{"--prompt", "--swap"})
	require.NoError(t, err)
	require.Equal(t, "--swap", g.opts.Prompt)
}

// TestHelp: -h and --help on every command print the usage and exit 0;
// unknown flags exit 2.
func TestHelp(t *testing.T) {
	require.NotEmpty(t, commands)
	require.Equal(t, 0, exitCode(t, []string{"--help"}))
	require.Equal(t, 0, exitCode(t, []string{"-h"}))
	require.Equal(t, 2, exitCode(t, nil))
	require.Equal(t, 2, exitCode(t, []string{"no-such-command"}))
	for name := range commands {
		for _, h := range []string{"-h", "--help", "-help"} {
			require.Equal(t, 0, exitCode(t, []string{name, h}), "%s %s", name, h)
		}
		require.Equal(t, 2, exitCode(t, []string{name, "--no-such-flag"}), name)
	}
}

// exitCode runs a command line as main does and returns its exit status.
func exitCode(t *testing.T, args []string) int {
	t.Helper()
	return run(context.Background(), args)
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
