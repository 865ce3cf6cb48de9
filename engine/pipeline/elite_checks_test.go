// elite_checks_test.go: the Harmony-on-ELITE method checks on the GPU.
// Native only, like checks_test.go (SwiftShader under Node is too slow for
// a dozen runs; the golden run covers the wasm build).

//go:build !js

package pipeline

import (
	"context"
	"image/color"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/harmony"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
	"harmony/loader/golden"
)

// checkOptions is a short run for the method checks: 16×16, 5 steps.
func checkOptions(t testing.TB) Options {
	o := eliteRunOptions(t)
	o.Steps, o.Width, o.Height = 5, 16, 16
	return o
}

// TestELITEMethodChecks are elite.md B.3.9 made precise by B.4.14–15, on
// the GPU (one model: the photo is encoded once).
func TestELITEMethodChecks(t *testing.T) {
	m := eliteModel(t, kernels.New(gputest.Default(t)))
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
