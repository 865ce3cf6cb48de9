// backends_test.go: the backends every model test body runs on. The CPU
// reference always; the GPU backend is added by backends_gpu_test.go in
// native builds and skips itself while its kernels are stubs.
package blip2

import (
	"strings"
	"testing"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// backendCase opens one backend for a subtest.
type backendCase struct {
	name string
	open func(t *testing.T) tensor.Backend
	// sameWeightsRel bounds max|Δ|/max|ref| against the CPU reference fed
	// the same F16 weights (0: the backend is the reference).
	sameWeightsRel func(b tensor.Backend) float64
}

var testBackends = []backendCase{{
	name:           "cpu",
	open:           func(*testing.T) tensor.Backend { return cpu.New() },
	sameWeightsRel: func(tensor.Backend) float64 { return 0 },
}}

// forEachBackend runs body once per backend as a subtest.
func forEachBackend(t *testing.T, body func(t *testing.T, b tensor.Backend, bc backendCase)) {
	for _, bc := range testBackends {
		t.Run(bc.name, func(t *testing.T) {
			body(t, bc.open(t), bc)
		})
	}
}

// must fails the test on err, except that a GPU backend whose kernels are
// still stubs skips.
func must(t *testing.T, b tensor.Backend, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if b.Name() != "cpu" && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("%s: %v", b.Name(), err)
	}
	t.Fatal(err)
}
