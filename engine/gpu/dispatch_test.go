// dispatch_test.go: dispatches small, folded and concurrent, the binding
// checks, and the grid folding and Params encoding they rest on.
package gpu_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

func TestDispatchSmall(t *testing.T) {
	d := gputest.Default(t)
	for _, n := range []int{1, 63, 64, 65, 1000, 4099} {
		run(t, d, n)
	}
}

// TestDispatchConcurrent: goroutines sharing one device each record,
// submit and read back their own work, interleaved in one queue.
func TestDispatchConcurrent(t *testing.T) {
	d := gputest.Default(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			for _, n := range []int{1, 65 + i, 1000 + 37*i} {
				run(t, d, n)
			}
		})
	}
}

// TestDispatchFolded needs more than 65535 workgroups, so the grid is folded.
func TestDispatchFolded(t *testing.T) {
	d := gputest.Default(t)
	run(t, d, 65536*64+37)
}

func TestBindingChecks(t *testing.T) {
	d := gputest.Default(t)
	a, _ := d.NewBuffer("a", 1024)
	b, _ := d.NewBuffer("b", 1024)
	defer d.Release(a)
	defer d.Release(b)
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a}), "takes 2 storage bindings")
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a, Offset: 4}, gpu.Binding{Buf: b}), "not a multiple")
	require.ErrorContains(t, d.Dispatch(selftest, 1, selfParams{N: 1}, gpu.Binding{Buf: a, Offset: 0, Size: 4096}, gpu.Binding{Buf: b}), "outside the buffer")
	require.ErrorContains(t, d.Dispatch(selftest, 1, nil, gpu.Binding{Buf: a}, gpu.Binding{Buf: b}), "params")
}

// TestFold: a folded grid covers the workgroups with no dimension past the
// limit and at most one row of spare workgroups.
func TestFold(t *testing.T) {
	const m = 65535
	for _, n := range []uint32{1, m - 1, m, m + 1, 2 * m, m*m - 1, m * m, m*m + 1, 1 << 31} {
		x, y, z := gpu.Fold(n, m)
		require.LessOrEqual(t, x, uint32(m))
		require.LessOrEqual(t, y, uint32(m))
		require.LessOrEqual(t, z, uint32(m))
		total := uint64(x) * uint64(y) * uint64(z)
		require.GreaterOrEqual(t, total, uint64(n), "fold(%d)", n)
		require.Less(t, total-uint64(n), uint64(x)*uint64(y), "fold(%d) wastes a whole layer", n)
	}
}

// TestEncodeParams: structs are packed little-endian and padded to 16
// bytes, raw bytes pass through, and oversized or non-fixed-size Params
// are refused.
func TestEncodeParams(t *testing.T) {
	b, err := gpu.EncodeParams(struct{ A, B uint32 }{1, 2})
	require.NoError(t, err)
	require.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, b)
	b, err = gpu.EncodeParams(nil)
	require.NoError(t, err)
	require.Nil(t, b)
	raw := []byte{1, 2, 3}
	b, err = gpu.EncodeParams(raw)
	require.NoError(t, err)
	require.Equal(t, raw, b)
	_, err = gpu.EncodeParams(struct{ A [65]uint32 }{})
	require.ErrorContains(t, err, "more than 256")
	_, err = gpu.EncodeParams(struct{ S []uint32 }{})
	require.ErrorContains(t, err, "gpu: params")
}
