package pipeline

import (
	"context"
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
	o, err := GoldenOptions(golden.Dir(t))
	require.NoError(t, err)
	return o
}

// reportGolden logs each golden check and fails the test on any that
// failed.
func reportGolden(t testing.TB, checks []GoldenCheck) {
	t.Helper()
	for _, c := range checks {
		if c.Err != nil {
			t.Error(c.Err)
			continue
		}
		t.Logf("%s: max|Δ| %.3g (max|ref| %.3g, tolerance %.3g)", c.What, c.MaxAbs, c.MaxRef, c.Tol)
	}
}

// checkPlain compares a plain BLIP-Diffusion run with g_pipeline.
func checkPlain(t *testing.T, res *Result, latRel float64) {
	reportGolden(t, CheckGoldenPlain(golden.Dir(t), res, latRel))
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
	reportGolden(t, CheckGoldenF16(golden.Dir(t), res, rel))
}
