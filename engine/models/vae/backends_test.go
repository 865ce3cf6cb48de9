// backends_test.go: the backends every model test runs on. The CPU
// reference is always there; backends_native_test.go adds the GPU.
package vae

import (
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// backendCase opens a fresh backend for one test.
type backendCase struct {
	name string
	open func(t *testing.T) tensor.Backend
}

var backends = []backendCase{
	{"cpu", func(*testing.T) tensor.Backend { return cpu.New() }},
}

// skipUnimplemented skips a case whose backend still lacks an op the model
// uses (the GPU kernels land separately and report "not implemented").
func skipUnimplemented(t *testing.T, b tensor.Backend) {
	t.Helper()
	if err := b.Err(); err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("%s: %v", b.Name(), err)
	}
}
