package pipeline

import (
	"context"
	"image/color"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/harmony"
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

var eliteCPU struct {
	once sync.Once
	m    *Model
	err  error
}

// eliteCPUModel is one tiny ELITE model on the CPU reference for the whole
// package's tests: it keeps the photo's encoding between generations (the
// mappers' 1024-wide layers make that the slow part on the CPU).
func eliteCPUModel(t testing.TB) *Model {
	t.Helper()
	dir := golden.Path(t, "elite-tiny")
	eliteCPU.once.Do(func() {
		eliteCPU.m, _, eliteCPU.err = LoadELITE(context.Background(), EliteSources{Model: loader.NewDirSource(dir)}, cpu.New(), &loader.Options{Precision: loader.PrecisionF32})
	})
	require.NoError(t, eliteCPU.err)
	return eliteCPU.m
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

// checkOptions is a shorter run for the method checks: 16×16, 5 steps.
func checkOptions(t testing.TB) Options {
	o := eliteRunOptions(t)
	o.Steps, o.Width, o.Height = 5, 16, 16
	return o
}

func TestELITEGenerateCPU(t *testing.T) {
	m := eliteCPUModel(t)
	require.Equal(t, BaseELITE, m.Base)
	o := eliteRunOptions(t)
	o.Compare = true
	o.Width, o.Height = 16, 16
	res, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	require.Contains(t, res.Warnings, WholePhotoWarning)
	require.NotNil(t, res.Visual)
	require.NotNil(t, res.Baseline)
	require.Equal(t, 6, len(res.Timesteps))
	require.Equal(t, 999.0, res.Timesteps[0])
	require.Equal(t, 6, res.Timings.Batch)
	require.Equal(t, []int{1, 1, m.Hidden}, res.W0Shape)
	require.Equal(t, []int{1, 256, m.Hidden}, res.LocalShape)
	t.Logf("warnings %q, %d masks; encode %v denoise %v decode %v", res.Warnings, len(res.MasksMain), res.Timings.Encode, res.Timings.Denoise, res.Timings.Decode)
}

// TestELITEMethodChecks are elite.md B.3.9 made precise by B.4.14–15, on
// the CPU reference.
func TestELITEMethodChecks(t *testing.T) {
	m := eliteCPUModel(t)
	gen := func(o Options) *Result {
		t.Helper()
		res, err := Generate(context.Background(), m, o)
		require.NoError(t, err)
		return res
	}
	for _, mode := range []tensor.SwapMode{tensor.SwapKV, tensor.SwapMap} {
		name := map[tensor.SwapMode]string{tensor.SwapKV: "kv", tensor.SwapMap: "map"}[mode]
		t.Run(name, func(t *testing.T) {
			o := checkOptions(t)
			o.Harmony.SwapMode = mode
			past := o
			past.Harmony.SwapStart, _ = harmony.ParseSwapStart("1000")
			never := gen(past)
			for _, u := range never.MasksUsedMain {
				require.Zero(t, u.Count())
			}
			// All-zero masks from call 1 on equal no swap, bit for bit.
			zero := o
			zero.Harmony.InjectMasks = constMasks(m, zero, 0)
			z := gen(zero)
			require.True(t, slices.Equal(z.Main.Latents, never.Main.Latents), "zero masks changed the main latents")
			require.True(t, slices.Equal(z.Visual.Latents, never.Visual.Latents), "zero masks changed the visual latents")
			// Identical conditioning and all-one masks: the processes stay identical (B.4.15).
			same := o
			same.Harmony.Ortho = false
			same.Harmony.MainFromVisual = true
			same.Harmony.InjectMasks = constMasks(m, same, 1)
			s := gen(same)
			for i, u := range s.MasksUsedMain[1:] {
				require.Equal(t, u.H*u.W, u.Count(), "call %d did not swap everywhere", i+1)
			}
			require.True(t, slices.Equal(s.Main.Latents, s.Visual.Latents), "identically conditioned processes diverged")
		})
	}
	// Swap start past the end, orchestration off ≡ plain ELITE within 1e-5 (B.4.14).
	o := checkOptions(t)
	o.Harmony.Ortho = false
	o.Harmony.SwapStart, _ = harmony.ParseSwapStart("1000")
	h := gen(o)
	plain := checkOptions(t)
	plain.Method = MethodPlain
	p := gen(plain)
	d := golden.Compare(h.Main.Latents, p.Main.Latents)
	t.Logf("swap-start past the end vs plain ELITE: latents %v", d)
	require.LessOrEqual(t, d.Rel(), 1e-5)

	// Orthogonalisation: |Qᵀv⊥| ≤ 1e-5|v| for the placeholder row, every other row bit for bit.
	o = checkOptions(t)
	o.Harmony.Swap = false
	r := gen(o)
	D := m.Hidden
	s := PlaceholderIndex(o.Prompt, o.Placeholder)
	for row := 0; row < len(r.Embedding)/D; row++ {
		if row != s {
			require.Equal(t, r.Embedding[row*D:(row+1)*D], r.EmbeddingOrtho[row*D:(row+1)*D], "row %d changed", row)
		}
	}
	require.NotEqual(t, r.Embedding[s*D:(s+1)*D], r.EmbeddingOrtho[s*D:(s+1)*D])

	// λ = 0 in both processes ≡ global-only ELITE + Harmony: the same as
	// λ = 0.8 with an empty subject mask (all local features zero, so the
	// local term adds exact zeros), bit for bit, and different from λ = 0.8
	// on the whole photo.
	z0 := checkOptions(t)
	z0.LocalWeight = 0
	a := gen(z0)
	empty := checkOptions(t)
	empty.Mask = pngBytes(t, 96, 64, func(x, y int) color.RGBA { return color.RGBA{0, 0, 0, 255} })
	e := gen(empty)
	for _, v := range e.Local {
		require.Zero(t, v)
	}
	require.True(t, slices.Equal(a.Main.Latents, e.Main.Latents), "λ = 0 differs from zero local features")
	require.True(t, slices.Equal(a.Visual.Latents, e.Visual.Latents), "λ = 0 differs from zero local features (visual)")
	full := gen(checkOptions(t))
	require.False(t, slices.Equal(a.Main.Latents, full.Main.Latents), "the local branch changed nothing")
}
