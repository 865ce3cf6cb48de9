//go:build !js

package loader_test

import (
	"testing"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/loader"
)

// TestGPUUpload loads the tiny .bin folder into GPU buffers (lavapipe in
// CI) and reads every tensor back: the same bits as on the CPU backend.
func TestGPUUpload(t *testing.T) {
	_, bin := tinyDirs(t)
	dev := gputest.Default(t)
	gb := kernels.New(dev)
	for _, prec := range []loader.Precision{loader.PrecisionF16, loader.PrecisionF32} {
		mc, cb := load(t, loader.NewDirSource(bin), &loader.Options{Precision: prec, ChunkSize: 1 << 16})
		mg, err := loader.Load(t.Context(), loader.NewDirSource(bin), gb, &loader.Options{Precision: prec, ChunkSize: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		n := sameWeights(t, "gpu vs cpu "+string(prec), mc, cb, mg, gb)
		t.Logf("%s: %d tensors read back from the GPU bit-identical", prec, n)
		mg.Free(gb)
	}
}
