// elite_cpu_test.go: ELITE's golden run on the CPU reference. Native only, like cpu_native_test.go (the wasm build's
// CPU reference is single-threaded; the GPU tests cover the goldens there).

//go:build !js

package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// TestELITEPipelineGoldenCPU: a whole LMS run of plain ELITE against
// ELITE's own code, and the kv run of Harmony on ELITE against the
// independent reference, on the CPU reference (one model: the photo is
// encoded once).
func TestELITEPipelineGoldenCPU(t *testing.T) {
	m := eliteModel(t, cpu.New())
	res, err := Generate(context.Background(), m, eliteGoldenOptions(t))
	require.NoError(t, err)
	require.NotContains(t, res.Warnings, WholePhotoWarning)
	checkELITERun(t, res)

	res, err = Generate(context.Background(), m, eliteHarmonyOptions(t, tensor.SwapKV))
	require.NoError(t, err)
	checkELITEHarmonyRun(t, "kv", res)
}
