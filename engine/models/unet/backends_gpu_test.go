// backends_gpu_test.go adds the GPU backend (native, and the wasm build
// under Node + Dawn) to the backends the model tests run on.
package unet

import (
	"testing"

	"harmony/engine/gpu/gputest"
	"harmony/engine/kernels"
	"harmony/engine/tensor"
)

func init() {
	backends = append(backends, backendCase{"webgpu", func(t *testing.T) tensor.Backend {
		return kernels.New(gputest.Default(t))
	}})
}
