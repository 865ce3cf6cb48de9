// transfer_test.go: uploads and read-back, their checks, and the bounded
// staging of long upload runs.
package gpu_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
)

// TestWriteWindow: long runs of uploads (a model load) submit and wait
// every writeWindow bytes, so the driver's staging copies do not pile up.
func TestWriteWindow(t *testing.T) {
	d := gputest.Default(t)
	b, err := d.NewBuffer("w", 8<<20)
	require.NoError(t, err)
	defer d.Release(b)
	data := make([]byte, 8<<20)
	s0 := d.Stats()
	for range 24 { // 192 MiB
		require.NoError(t, d.Write(b, 0, data))
	}
	require.GreaterOrEqual(t, d.Stats().Submits-s0.Submits, int64(2), "no submits while uploading 192 MiB")
}

// TestTransfers: a round trip at an offset, and the checks Write and Read
// make before touching the GPU.
func TestTransfers(t *testing.T) {
	d := gputest.Default(t)
	ctx := context.Background()
	b, err := d.NewBuffer("t", 64)
	require.NoError(t, err)
	defer d.Release(b)
	require.NoError(t, d.Write(b, 8, []byte{1, 2, 3, 4, 5, 6})) // padded to 8
	got, err := d.Read(ctx, b, 8, 6)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6}, got)
	got, err = d.Read(ctx, b, 12, 0)
	require.NoError(t, err)
	require.Empty(t, got)

	require.ErrorContains(t, d.Write(b, 2, []byte{1, 2, 3, 4}), "multiples of 4")
	require.ErrorContains(t, d.Write(b, 0, make([]byte, 1<<20)), "overruns")
	_, err = d.Read(ctx, b, 2, 4)
	require.ErrorContains(t, err, "multiples of 4")
	_, err = d.Read(ctx, b, 0, 1<<20)
	require.ErrorContains(t, err, "overruns")
	require.NoError(t, d.Write(b, 0, nil), "an empty write is a no-op")
}
