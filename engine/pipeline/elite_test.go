package pipeline

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/harmony"
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
	checkELITERunTol(t, res, 1e-5, 1e-4)
}

// checkELITERunTol is checkELITERun with the module and pipeline
// tolerances given (f16 weights: a pack).
func checkELITERunTol(t *testing.T, res *Result, modRel, latRel float64) {
	t.Helper()
	mods := golden.Open(t, "elite", "modules.safetensors")
	for _, c := range []struct {
		name string
		got  []float32
	}{{"w0", res.W0}, {"local", res.Local}} {
		want, _ := mods.MustF32(t, c.name)
		golden.Close(t, c.name, c.got, want, modRel, 0)
	}
	g := golden.Open(t, "elite", "lms.safetensors")
	ts, _, err := g.F64("timesteps")
	require.NoError(t, err)
	require.Equal(t, ts, res.Timesteps)
	steps := len(res.Timesteps)
	prev, _ := g.MustF32(t, fmt.Sprintf("step%d.prev", steps-1))
	golden.Close(t, "final latents", res.Main.Latents, prev, latRel, 0)
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
	golden.Close(t, "image", res.Main.Image.Float, want, latRel, 0)
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

// eliteHarmonyOptions are testdata/elite/harmony's runs: the golden ELITE
// call with Harmony (ortho full, τ 0.3, swap start 0.1, visual prompt "a S")
// in swap mode kv or map.
func eliteHarmonyOptions(t testing.TB, mode tensor.SwapMode) Options {
	o := eliteGoldenOptions(t)
	o.Method = MethodHarmony
	o.Harmony.SwapMode = mode
	return o
}

// checkELITEHarmonyRun compares a Harmony-on-ELITE run with the
// independent reference (testdata/elite/harmony/runs/<name>): the binary
// masks computed and used at every call exactly, the orchestrated
// embedding within 1e-6, both processes' latents after every call within
// 1e-4·max|ref|.
func checkELITEHarmonyRun(t *testing.T, name string, res *Result) {
	t.Helper()
	ortho := golden.Open(t, "elite", "harmony", "ortho.safetensors")
	ep, _ := ortho.MustF32(t, "E_perp")
	golden.Close(t, "E⊥", res.EmbeddingOrtho, ep, 1e-6, 0)
	g := golden.Open(t, "elite", "harmony", "runs", name+".safetensors")
	calls := len(res.Timesteps)
	require.Len(t, res.MasksMain, calls)
	u8 := func(ms []harmony.Mask, i int) []int64 {
		out := make([]int64, len(ms[i].V))
		for k, v := range ms[i].V {
			out[k] = int64(v)
		}
		return out
	}
	for i := range calls {
		for _, k := range []struct {
			tensor string
			got    []harmony.Mask
		}{{"mask_main", res.MasksMain}, {"mask_vis", res.MasksVisual}, {"mask_used_main", res.MasksUsedMain}} {
			if k.tensor == "mask_used_main" && i == 0 {
				continue
			}
			want, _ := g.MustInts(t, fmt.Sprintf("call%d.%s", i, k.tensor))
			require.Equal(t, want, u8(k.got, i), "%s: call %d %s", name, i, k.tensor)
		}
	}
	lm, _ := g.MustF32(t, fmt.Sprintf("call%d.lat_out_main", calls-1))
	golden.Close(t, name+" main latents", res.Main.Latents, lm, 1e-4, 0)
	lv, _ := g.MustF32(t, fmt.Sprintf("call%d.lat_out_vis", calls-1))
	golden.Close(t, name+" visual latents", res.Visual.Latents, lv, 1e-4, 0)
}
