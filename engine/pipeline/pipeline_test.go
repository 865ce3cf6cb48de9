package pipeline

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// tinyComponents loads a tiny model folder ("blipdiffusion-tiny",
// safetensors, or "blipdiffusion-tiny-bin", torch .bin with legacy names:
// golden.TinyBin) through the loader, as the CLI does. A variant reads
// the folder golden.TinyVariant writes.
func tinyComponents(t testing.TB, b tensor.Backend, folder string, p loader.Precision, variant string) *Components {
	t.Helper()
	dir := golden.Path(t, folder)
	switch {
	case folder == golden.TinyBinDir:
		dir = golden.TinyBin(t)
	case variant != "":
		dir = golden.TinyVariant(t)
	}
	src := loader.NewDirSource(dir)
	lm, err := loader.Load(context.Background(), src, b, &loader.Options{Precision: p, Variant: variant, Shapes: ExpectedShapes})
	require.NoError(t, err)
	return ComponentsFromLoader(lm)
}

// goldenOptions are the golden pipeline call's arguments.
func goldenOptions(t testing.TB) Options {
	img, err := os.ReadFile(golden.Path(t, "inputs", "reference_96x64.png"))
	require.NoError(t, err)
	lat, _ := golden.Open(t, "golden", "g_pipeline.safetensors").MustF32(t, "pipe.init_latents")
	o := DefaultOptions()
	o.Image, o.ImageName = img, "reference_96x64.png"
	o.SourceClass, o.TargetClass = "dog", "dog"
	o.Prompt = "swimming underwater"
	o.Negative = "over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate"
	o.Steps, o.Guidance, o.Width, o.Height = 8, 7.5, 48, 32
	o.Latents = lat
	return o
}

// checkPlain compares a plain BLIP-Diffusion run with g_pipeline.
func checkPlain(t *testing.T, res *Result, latRel float64) {
	g := golden.Open(t, "golden", "g_pipeline.safetensors")
	lat, _ := g.MustF32(t, "pipe.latents_out")
	n := len(res.Main.Latents)
	golden.Close(t, "final latents", res.Main.Latents, lat[len(lat)-n:], latRel, 0)
	img, _ := g.MustF32(t, "pipe.image_float")
	golden.Close(t, "image float", res.Main.Image.Float, img, max(latRel, 1e-4), 0)
	u8, _ := g.MustInts(t, "pipe.image_uint8")
	diff, maxd := 0, 0
	for i, v := range u8 {
		d := int(res.Main.Image.Pix[i]) - int(v)
		if d < 0 {
			d = -d
		}
		if d != 0 {
			diff++
		}
		maxd = max(maxd, d)
	}
	t.Logf("uint8 image: %d of %d values differ, max %d", diff, len(u8), maxd)
	require.LessOrEqual(t, maxd, 1)
	require.LessOrEqual(t, diff, len(u8)/100)
	require.Equal(t, []float64{875, 750, 750, 625, 500, 375, 250, 125, 0}, res.Timesteps)
}

func cpuModel(t testing.TB) *Model {
	b := cpu.New()
	m, err := Assemble(b, tinyComponents(t, b, "blipdiffusion-tiny", loader.PrecisionF32, ""))
	require.NoError(t, err)
	return m
}

// checkF16 compares an f16-weights run with the fp32 goldens: latents
// within rel·max|ref| (the reference's own fp16-vs-fp32 gap is ~2e-3).
func checkF16(t *testing.T, res *Result, rel float64) {
	g := golden.Open(t, "golden", "g_pipeline.safetensors")
	lat, _ := g.MustF32(t, "pipe.latents_out")
	n := len(res.Main.Latents)
	golden.Close(t, "f16 final latents", res.Main.Latents, lat[len(lat)-n:], rel, 0)
}
