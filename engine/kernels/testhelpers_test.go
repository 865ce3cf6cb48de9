// testhelpers_test.go: the tests' constructors of the parity helpers
// (oracle.go, parity.go) on the shared test device.
package kernels

import (
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

// newOracle opens the test device (with the adapter's limits, or the WebGPU
// defaults) and a guarded GPU backend on it.
func newOracle(t *testing.T, defaultLimits bool) *oracle {
	t.Helper()
	var d *gpu.Device
	if defaultLimits {
		d = gputest.Open(t, gpu.Options{DefaultLimits: true})
	} else {
		d = gputest.Default(t)
	}
	return newOracleOn(t, d)
}

// newParity opens the shared test device (skipping without an adapter
// unless HARMONY_REQUIRE_GPU=1) with opt (none: the adapter's own limits),
// with guard mode on and a fixed random seed. The backend (its error, its
// tuning, its guard mode) is the test's own and the device serializes its
// callers, so parity tests call t.Parallel; tests that count the shared
// device's dispatches or memory must not.
func newParity(t testing.TB, opt ...gpu.Options) *parity {
	t.Helper()
	var o gpu.Options
	if len(opt) > 0 {
		o = opt[0]
	}
	return newParityOn(t, gputest.Open(t, o))
}
