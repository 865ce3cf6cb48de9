//go:build !js || optin

// elite_gpu_harmony_test.go: Harmony on ELITE against its reference runs
// on the GPU (natively always; under Node + Dawn with the optin tag).
package pipeline

import (
	"context"
	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestELITEHarmonyRunsGPU reproduces both reference runs on the GPU. Under
// Node + Dawn (SwiftShader) a run takes minutes, so there the file is
// built only with the optin tag, which runs the kv one.
func TestELITEHarmonyRunsGPU(t *testing.T) {
	m := eliteModel(t, kernels.New(gputest.Default(t)))
	for _, c := range []struct {
		name string
		mode tensor.SwapMode
	}{{"kv", tensor.SwapKV}, {"map", tensor.SwapMap}} {
		if slowAdapter && c.name != "kv" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			o := eliteHarmonyOptions(t, c.mode)
			res, err := Generate(context.Background(), m, o)
			require.NoError(t, err)
			require.Equal(t, 4, res.Timings.Batch, "one batch-4 UNet call per step")
			require.Equal(t, len(res.Timesteps), res.Timings.Calls)
			require.Zero(t, res.MasksUsedMain[0].Count(), "call 0 never swaps")
			require.NotNil(t, res.MaskHeat)
			checkELITEHarmonyRun(t, c.name, res)
		})
	}
}
