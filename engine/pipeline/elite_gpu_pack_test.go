//go:build !js

// elite_gpu_pack_test.go: the packed tiny ELITE model on the GPU.
package pipeline

import (
	"context"
	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/loader"
	"harmony/loader/golden"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestELITEPackGPU: the tiny ELITE model packed (loader.WriteELITEPack,
// f16 weights) loads through LoadELITE and gives the golden run within the
// f16 tolerances of the BLIP-Diffusion pack (3e-3). Native only: the pack
// path is the loader's, and under Node + Dawn TestELITEPipelineGPU covers
// the pipeline.
func TestELITEPackGPU(t *testing.T) {
	dir := t.TempDir()
	src := EliteSources{Model: loader.NewDirSource(golden.Path(t, "elite-tiny"))}
	_, err := loader.WriteELITEPack(context.Background(), loader.ELITESources{Base: src.Model}, dir, &loader.PackOptions{ShardSize: 1 << 20})
	require.NoError(t, err)
	b := kernels.New(gputest.Default(t))
	m, _, err := LoadELITE(context.Background(), EliteSources{Model: loader.NewDirSource(dir)}, b, &loader.Options{Precision: loader.PrecisionF32})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	res, err := Generate(context.Background(), m, eliteGoldenOptions(t))
	require.NoError(t, err)
	checkELITERunTol(t, res, 3e-3, 3e-3)
}
