package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// tinyComponents reads the golden tiny folder file by file (fp32 or the
// fp16 variant files).
func tinyComponents(t testing.TB, b tensor.Backend, p loader.Precision, fp16Files bool) *Components {
	t.Helper()
	dir := golden.Path(t, "blipdiffusion-tiny")
	read := func(parts ...string) []byte {
		d, err := os.ReadFile(filepath.Join(append([]string{dir}, parts...)...))
		require.NoError(t, err)
		return d
	}
	c := &Components{Name: dir, ModelIndex: read("model_index.json"), Configs: map[string][]byte{}, Weights: map[string]*tensor.Weights{}}
	c.Tokenizer.Vocab = read("tokenizer", "vocab.json")
	c.Tokenizer.Merges = read("tokenizer", "merges.txt")
	c.Tokenizer.SpecialTokensMap = read("tokenizer", "special_tokens_map.json")
	c.Tokenizer.TokenizerConfig = read("tokenizer", "tokenizer_config.json")
	c.Configs["scheduler"] = read("scheduler", "scheduler_config.json")
	c.Configs["image_processor"] = read("image_processor", "preprocessor_config.json")
	files := map[string]string{"text_encoder": "model", "qformer": "model", "unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model"}
	for comp, base := range files {
		c.Configs[comp] = read(comp, "config.json")
		name := base + ".safetensors"
		if fp16Files {
			name = base + ".fp16.safetensors"
		}
		w, err := loader.ReadSafetensorsWeights(b, comp, filepath.Join(dir, comp, name), p)
		require.NoError(t, err)
		c.Weights[comp] = w
	}
	return c
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
	require.Equal(t, []int{875, 750, 750, 625, 500, 375, 250, 125, 0}, res.Timesteps)
}

func TestPlainPipelineCPU(t *testing.T) {
	b := cpu.New()
	m, err := Assemble(b, tinyComponents(t, b, loader.PrecisionF32, false))
	require.NoError(t, err)
	o := goldenOptions(t)
	o.Method = MethodBLIPDiffusion
	calls := 0
	o.Progress = func(p Progress) {
		if p.Stage == "denoise" {
			calls++
		}
	}
	res, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	require.Equal(t, 9, calls)
	checkPlain(t, res, 1e-4)
}

func cpuModel(t testing.TB) *Model {
	b := cpu.New()
	m, err := Assemble(b, tinyComponents(t, b, loader.PrecisionF32, false))
	require.NoError(t, err)
	return m
}
