// cancel_test.go: a Read whose context ends (before it starts, inside the
// wait for its map, or at a random moment of a long read) returns the
// context's error and leaves the device usable: the read-back buffer is not
// left mapped, nothing is remembered, and the next dispatch and Read work.
package gpu_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

// usable proves the device still works after a cancelled Read: a dispatch
// read back whole (run checks every value) and a plain round trip.
func usable(t *testing.T, d *gpu.Device, b *gpu.Buffer, want []byte) {
	t.Helper()
	require.NoError(t, d.Lost())
	run(t, d, 1000)
	got, err := d.Read(context.Background(), b, 0, uint64(len(want)))
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>10)
	}
	return p
}

// TestReadCancelled: a context cancelled before the Read.
func TestReadCancelled(t *testing.T) {
	d := gputest.Default(t)
	want := pattern(4096)
	b, err := d.NewBuffer("cancel.before", uint64(len(want)))
	require.NoError(t, err)
	defer d.Release(b)
	require.NoError(t, d.Write(b, 0, want))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 { // again and again: no state piles up
		_, err = d.Read(ctx, b, 0, uint64(len(want)))
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "gpu: read of")
	}
	usable(t, d, b, want)
}

// TestReadCancelledInWait: the context ends while the map is pending (the
// hook cancels between the map request and its wait), then once more with
// a deadline. Before the fix the buffer stayed mapped and the next Read's
// copy into it aborted the process.
func TestReadCancelledInWait(t *testing.T) {
	d := gputest.Default(t)
	want := pattern(1 << 20)
	b, err := d.NewBuffer("cancel.wait", uint64(len(want)))
	require.NoError(t, err)
	defer d.Release(b)
	require.NoError(t, d.Write(b, 0, want))

	ctx, cancel := context.WithCancel(context.Background())
	restore := gpu.OnMapRequested(cancel)
	_, err = d.Read(ctx, b, 0, uint64(len(want)))
	restore()
	require.ErrorIs(t, err, context.Canceled)
	usable(t, d, b, want)

	// A deadline that passes inside the wait is the caller's limit, not
	// the device's timeout: DeadlineExceeded, and nothing is left behind.
	dl, stop := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop()
	restore = gpu.OnMapRequested(func() { <-dl.Done() })
	_, err = d.Read(dl, b, 0, uint64(len(want)))
	restore()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, errors.Is(err, gpu.ErrTimeout))
	usable(t, d, b, want)
}

// TestReadCancelledRacing: a large read cancelled by a timer, at whatever
// point it has reached; each outcome is either the data or the context's
// error, and the device stays usable throughout.
func TestReadCancelledRacing(t *testing.T) {
	d := gputest.Default(t)
	want := pattern(32 << 20)
	b, err := d.NewBuffer("cancel.race", uint64(len(want)))
	require.NoError(t, err)
	defer d.Release(b)
	require.NoError(t, d.Write(b, 0, want))
	for i := range 6 {
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(time.Duration(i)*300*time.Microsecond, cancel)
		got, err := d.Read(ctx, b, 0, uint64(len(want)))
		timer.Stop()
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
		} else {
			require.Equal(t, want, got)
		}
	}
	usable(t, d, b, want)
}
