package pipeline

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// eliteModel loads the tiny ELITE model (testdata/elite-tiny) on b in f32.
func eliteModel(t testing.TB, b tensor.Backend) *Model {
	t.Helper()
	src := loader.NewDirSource(golden.Path(t, "elite-tiny"))
	m, _, err := LoadELITE(context.Background(), EliteSources{Model: src}, b, &loader.Options{Precision: loader.PrecisionF32})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

// eliteRunOptions is a short ELITE run on the tiny model: the reference
// photo, no mask, 6 LMS steps at 32×32.
func eliteRunOptions(t testing.TB) Options {
	img, err := os.ReadFile(golden.Path(t, "inputs", "reference_96x64.png"))
	require.NoError(t, err)
	o := DefaultOptionsFor(BaseELITE)
	o.Image, o.ImageName = img, "reference_96x64.png"
	o.Prompt = "a S wearing a red hat"
	o.Steps, o.Width, o.Height = 6, 32, 32
	o.Seed = 42
	return o
}

// eliteGoldenOptions are testdata/elite's run (run.json): photo a with its
// mask, "a S wearing a red hat", 24×32, 6 LMS steps, guidance 5, λ 0.8, the
// reference's initial noise.
func eliteGoldenOptions(t testing.TB) Options {
	img, err := os.ReadFile(golden.Path(t, "inputs", "reference_96x64.png"))
	require.NoError(t, err)
	mask, err := os.ReadFile(golden.Path(t, "elite", "inputs", "reference_96x64_bg.png"))
	require.NoError(t, err)
	noise, _ := golden.Open(t, "elite", "lms.safetensors").MustF32(t, "noise")
	o := DefaultOptionsFor(BaseELITE)
	o.Method = MethodPlain
	o.Image, o.ImageName = img, "reference_96x64.png"
	o.Mask, o.MaskName = mask, "reference_96x64_bg.png"
	o.Prompt = "a S wearing a red hat"
	o.Steps, o.Width, o.Height = 6, 32, 24
	o.Latents = noise
	return o
}

// checkELITERun compares a plain ELITE run with ELITE's own validation run
// (lms.safetensors) and its modules: w0, the masked local features and the
// conditional embedding within 1e-5·max|ref|, the latents after every step
// within 1e-4·max|ref|, the decoded image within 1e-4.
func checkELITERun(t *testing.T, res *Result) {
	t.Helper()
	mods := golden.Open(t, "elite", "modules.safetensors")
	for _, c := range []struct {
		name string
		got  []float32
	}{{"w0", res.W0}, {"local", res.Local}} {
		want, _ := mods.MustF32(t, c.name)
		golden.Close(t, c.name, c.got, want, 1e-5, 0)
	}
	g := golden.Open(t, "elite", "lms.safetensors")
	ts, _, err := g.F64("timesteps")
	require.NoError(t, err)
	require.Equal(t, ts, res.Timesteps)
	steps := len(res.Timesteps)
	prev, _ := g.MustF32(t, fmt.Sprintf("step%d.prev", steps-1))
	golden.Close(t, "final latents", res.Main.Latents, prev, 1e-4, 0)
	img, _ := g.MustF32(t, "image")
	// image is NCHW [1, 3, H, W]; the engine's float image is NHWC in [0, 1].
	h, w := res.Main.Image.H, res.Main.Image.W
	want := make([]float32, len(res.Main.Image.Float))
	for y := range h {
		for x := range w {
			for c := range 3 {
				v := img[(c*h+y)*w+x]/2 + 0.5
				want[(y*w+x)*3+c] = min(max(v, 0), 1)
			}
		}
	}
	golden.Close(t, "image", res.Main.Image.Float, want, 1e-4, 0)
}

// TestELITEPipelineGPU: the golden run on the GPU (natively, and under
// Node + Dawn in the wasm build).
func TestELITEPipelineGPU(t *testing.T) {
	m := eliteModel(t, kernels.New(gputest.Default(t)))
	res, err := Generate(context.Background(), m, eliteGoldenOptions(t))
	require.NoError(t, err)
	t.Logf("timings: %+v", res.Timings)
	checkELITERun(t, res)
}

// TestELITEHarmonyGPU runs Harmony on ELITE on the GPU with a mask and
// checks what the method promises that the CPU checks cannot see there:
// masks on the latent grid from call 0, swaps from call 1 (swap-start
// 0.1·6 → 0), and a finite result for all three processes.
func TestELITEHarmonyGPU(t *testing.T) {
	m := eliteModel(t, kernels.New(gputest.Default(t)))
	o := eliteGoldenOptions(t)
	o.Method = MethodHarmony
	o.Compare = true
	res, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	require.Equal(t, 6, res.Timings.Batch)
	require.Len(t, res.MasksMain, 6)
	require.Zero(t, res.MasksUsedMain[0].Count())
	require.NotNil(t, res.Visual)
	require.NotNil(t, res.Baseline)
	require.NotNil(t, res.MaskHeat)
	golden.Close(t, "baseline (plain ELITE in the batch)", res.Baseline.Latents, mustPrev(t), 1e-4, 0)
}

func mustPrev(t *testing.T) []float32 {
	g := golden.Open(t, "elite", "lms.safetensors")
	v, _ := g.MustF32(t, "step5.prev")
	return v
}
