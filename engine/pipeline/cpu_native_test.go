// cpu_native_test.go: the whole pipeline on the CPU reference backend,
// against the reference goldens. Native only: in the wasm build the CPU
// reference is single-threaded and takes minutes, and the GPU tests there
// cover the same goldens.

//go:build !js

package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlainPipelineCPU(t *testing.T) {
	m := cpuModel(t)
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

func TestHarmonyRunsCPU(t *testing.T) {
	m := cpuModel(t)
	testHarmonyRuns(t, m, map[string]bool{"ortho_swap_kv": true, "ortho_mean": true})
}
