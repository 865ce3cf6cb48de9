//go:build !js

package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/loader"
)

func gpuModel(t testing.TB, p loader.Precision, fp16Files bool) *Model {
	b := kernels.New(gputest.Default(t))
	m, err := Assemble(b, tinyComponents(t, b, p, fp16Files))
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

func TestPlainPipelineGPU(t *testing.T) {
	m := gpuModel(t, loader.PrecisionF32, false)
	o := goldenOptions(t)
	o.Method = MethodBLIPDiffusion
	res, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	t.Logf("timings: %+v", res.Timings)
	checkPlain(t, res, 1e-4)
}

func TestHarmonyRunsGPU(t *testing.T) {
	m := gpuModel(t, loader.PrecisionF32, false)
	testHarmonyRuns(t, m, nil)
}
