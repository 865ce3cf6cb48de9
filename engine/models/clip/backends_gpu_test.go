// backends_gpu_test.go adds the GPU backend to the backends
// the model tests run on, natively and in the wasm build under Node + Dawn.
package clip

import (
	"testing"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
)

func init() {
	testBackends = append(testBackends, backendCase{
		name: "webgpu",
		open: func(t *testing.T) tensor.Backend { return kernels.New(gputest.Default(t)) },
		sameWeightsRel: func(b tensor.Backend) float64 {
			if b.(*kernels.Backend).F16Arith {
				return 2e-3 // products rounded to f16
			}
			return 1e-5
		},
	})
}
