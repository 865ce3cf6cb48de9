// Package gputest opens the shared test device. Without an adapter a test
// skips, unless HARMONY_REQUIRE_GPU=1 (set by CI), where it fails: a GPU
// test must never pass silently because nothing ran.
package gputest

import (
	"context"
	"os"
	"sync"
	"testing"

	"harmony/engine/gpu"
)

var (
	mu      sync.Mutex
	devices = map[gpu.Options]*gpu.Device{}
	errs    = map[gpu.Options]error{}
)

// Required reports whether a missing adapter must fail tests.
func Required() bool { return os.Getenv("HARMONY_REQUIRE_GPU") == "1" }

// Open returns a device opened with opt, shared by every test of the
// process (opening one costs tens of milliseconds to seconds).
func Open(t testing.TB, opt gpu.Options) *gpu.Device {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if d, ok := devices[opt]; ok {
		return d
	}
	if err, ok := errs[opt]; ok {
		fail(t, err)
		return nil
	}
	d, err := gpu.Open(context.Background(), opt)
	if err != nil {
		errs[opt] = err
		fail(t, err)
		return nil
	}
	devices[opt] = d
	return d
}

// Default opens the device with the adapter's own limits.
func Default(t testing.TB) *gpu.Device { return Open(t, gpu.Options{}) }

func fail(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("HARMONY_REQUIRE_GPU=1 and no usable GPU device: %v", err)
	}
	t.Skipf("no GPU device (set HARMONY_REQUIRE_GPU=1 to fail instead): %v", err)
}
