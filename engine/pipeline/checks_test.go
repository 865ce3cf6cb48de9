//go:build !js

package pipeline

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/harmony"
	"harmony/engine/tensor"
	"harmony/loader"
	"harmony/loader/golden"
)

// The Harmony method's checks on masks and swap, on the GPU with the
// tiny golden model.

func harmonyOpts(t *testing.T, mode tensor.SwapMode) Options {
	o := goldenOptions(t)
	o.Method = MethodHarmony
	o.Harmony.SwapMode = mode
	return o
}

func constMasks(m *Model, o Options, v uint8) func(int) (harmony.Mask, harmony.Mask, bool) {
	// The mask grid of the tiny UNet at the golden size is the latent.
	h, w := o.Height/m.LatentFactor, o.Width/m.LatentFactor
	sets, _ := harmony.SelectLayers(m.UNet.Sites(h, w), harmony.LayerOptions{})
	mk := func() harmony.Mask {
		ms := harmony.Mask{H: sets.GridH, W: sets.GridW, V: make([]uint8, sets.GridH*sets.GridW)}
		for i := range ms.V {
			ms.V[i] = v
		}
		return ms
	}
	return func(int) (harmony.Mask, harmony.Mask, bool) { return mk(), mk(), true }
}

func generate(t *testing.T, m *Model, o Options) *Result {
	t.Helper()
	res, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	return res
}

func TestMethodChecks(t *testing.T) {
	m := gpuModel(t, "blipdiffusion-tiny", loader.PrecisionF32, "")
	for _, mode := range []tensor.SwapMode{tensor.SwapKV, tensor.SwapMap} {
		name := map[tensor.SwapMode]string{tensor.SwapKV: "kv", tensor.SwapMap: "map"}[mode]
		t.Run(name, func(t *testing.T) {
			// swap-start past the end: never swaps.
			past := harmonyOpts(t, mode)
			past.Harmony.SwapStart, _ = harmony.ParseSwapStart("1000")
			never := generate(t, m, past)
			for _, u := range never.MasksUsedMain {
				require.Zero(t, u.Count())
			}

			// An all-zero mask from call 1 on equals no swap, bit for bit.
			zero := harmonyOpts(t, mode)
			zero.Harmony.InjectMasks = constMasks(m, zero, 0)
			z := generate(t, m, zero)
			require.True(t, slices.Equal(z.Main.Latents, never.Main.Latents), "zero masks changed the main latents")
			require.True(t, slices.Equal(z.Visual.Latents, never.Visual.Latents), "zero masks changed the visual latents")

			// Identical conditioning and all-one masks: the processes stay identical.
			same := harmonyOpts(t, mode)
			same.Harmony.Ortho = false
			same.Harmony.MainFromVisual = true
			same.Harmony.InjectMasks = constMasks(m, same, 1)
			s := generate(t, m, same)
			for i, u := range s.MasksUsedMain[1:] {
				require.Equal(t, u.H*u.W, u.Count(), "call %d did not swap everywhere", i+1)
			}
			require.True(t, slices.Equal(s.Main.Latents, s.Visual.Latents), "identically conditioned processes diverged")
			require.Equal(t, s.Main.Image.Pix, s.Visual.Image.Pix)
		})
	}

	// swap-start past the end with orchestration off equals the plain
	// batch-2 pipeline within 1e-5 relative (a batch-4 call rounds
	// differently from a batch-2 one).
	past := harmonyOpts(t, tensor.SwapKV)
	past.Harmony.Ortho = false
	past.Harmony.SwapStart, _ = harmony.ParseSwapStart("1000")
	h := generate(t, m, past)
	plain := goldenOptions(t)
	plain.Method = MethodBLIPDiffusion
	p := generate(t, m, plain)
	d := compare(h.Main.Latents, p.Main.Latents)
	t.Logf("swap-start past the end vs plain pipeline: latents %v", d)
	require.LessOrEqual(t, d.Rel(), 1e-5)
}

func compare(got, want []float32) golden.Diff { return golden.Compare(got, want) }
