//go:build !js

// backends_native_test.go adds the WebGPU backend (native build only).
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
