package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/loader"
)

// slowAdapter: the wasm build runs these tests under Node + Dawn on
// SwiftShader, where a tiny UNet call takes seconds; there one golden
// configuration of each kind runs (the native build runs them all).
var slowAdapter = runtime.GOOS == "js"

func gpuModel(t testing.TB, folder string, p loader.Precision, variant string) *Model {
	b := kernels.New(gputest.Default(t))
	m, err := Assemble(b, tinyComponents(t, b, folder, p, variant))
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

// TestPlainPipelineGPU runs the 8-step golden pipeline from both tiny
// folders (safetensors and torch .bin) in both precisions.
func TestPlainPipelineGPU(t *testing.T) {
	for _, tc := range []struct {
		folder    string
		precision loader.Precision
		variant   string
		latRel    float64
	}{
		{"blipdiffusion-tiny", loader.PrecisionF32, "", 1e-4},
		{"blipdiffusion-tiny-bin", loader.PrecisionF32, "", 1e-4},
		{"blipdiffusion-tiny", loader.PrecisionF16, "", 3e-3},
		{"blipdiffusion-tiny", loader.PrecisionF16, "fp16", 3e-3},
	} {
		if slowAdapter && (tc.folder != "blipdiffusion-tiny" || tc.precision != loader.PrecisionF32) {
			continue
		}
		t.Run(fmt.Sprintf("%s/%s%s", tc.folder, tc.precision, tc.variant), func(t *testing.T) {
			m := gpuModel(t, tc.folder, tc.precision, tc.variant)
			o := goldenOptions(t)
			o.Method = MethodBLIPDiffusion
			res, err := Generate(context.Background(), m, o)
			require.NoError(t, err)
			t.Logf("timings: %+v", res.Timings)
			if tc.precision == loader.PrecisionF16 {
				checkF16(t, res, tc.latRel)
				return
			}
			checkPlain(t, res, tc.latRel)
		})
	}
}

func TestHarmonyRunsGPU(t *testing.T) {
	m := gpuModel(t, "blipdiffusion-tiny", loader.PrecisionF32, "")
	var only map[string]bool
	if slowAdapter {
		only = map[string]bool{"ortho_swap_kv": true}
	}
	testHarmonyRuns(t, m, only)
}
