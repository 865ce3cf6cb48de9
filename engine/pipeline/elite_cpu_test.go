// elite_cpu_test.go: ELITE's golden run on the CPU reference. Native only, like cpu_native_test.go (the wasm build's
// CPU reference is single-threaded; the GPU tests cover the goldens there).

//go:build !js

package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/cpu"
)

// TestELITEPipelineGoldenCPU: a whole LMS run of plain ELITE on the CPU
// reference against ELITE's own code.
func TestELITEPipelineGoldenCPU(t *testing.T) {
	m := eliteModel(t, cpu.New())
	res, err := Generate(context.Background(), m, eliteGoldenOptions(t))
	require.NoError(t, err)
	require.NotContains(t, res.Warnings, WholePhotoWarning)
	checkELITERun(t, res)
}
