// cancel_test.go: a generation whose context is cancelled (from the
// Progress callback between UNet calls, or by a timer in the middle of a
// call, where a GPU read is in flight) stops with the context's error,
// frees what it held, and leaves the model ready: the next generation on it
// equals an uncancelled one with the same seed.
package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"harmony/engine/kernels"
	"harmony/loader"
)

func TestGenerateCancelGPU(t *testing.T) {
	m := gpuModel(t, "blipdiffusion-tiny", loader.PrecisionF32, "")
	dev := m.B.(*kernels.Backend).Device()
	o := goldenOptions(t)
	o.Latents, o.Seed = nil, 11 // the seed's own noise: the runs must agree on it
	o.Method = MethodHarmony    // its hook reads back inside every call too

	ref, err := Generate(context.Background(), m, o)
	require.NoError(t, err)
	inUse := dev.Stats().InUse
	step := ref.Timings.Denoise / time.Duration(ref.Timings.Calls)

	same := func(t *testing.T) {
		t.Helper()
		require.NoError(t, m.B.Err(), "the cancellation became the backend's error")
		require.Equal(t, inUse, dev.Stats().InUse, "the cancelled run left GPU buffers in use")
		res, err := Generate(context.Background(), m, o)
		require.NoError(t, err)
		require.Equal(t, ref.Main.Latents, res.Main.Latents)
		require.Equal(t, ref.Main.Image.Pix, res.Main.Image.Pix)
	}

	t.Run("progress", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := o
		p.Progress = func(pr Progress) {
			if pr.Stage == "denoise" && pr.Call == 3 {
				cancel()
			}
		}
		_, err := Generate(ctx, m, p)
		require.ErrorIs(t, err, context.Canceled)
		same(t)
	})

	t.Run("timer", func(t *testing.T) {
		// Armed at the end of call 2 to fire half a call later: inside
		// call 3, most likely while its output or the hook's
		// probabilities are being read back. Wherever it lands, the run
		// must stop with the context's error and leave nothing behind.
		for _, frac := range []float64{0.3, 0.8} {
			ctx, cancel := context.WithCancel(context.Background())
			p := o
			var timer *time.Timer
			p.Progress = func(pr Progress) {
				if pr.Stage == "denoise" && pr.Call == 2 {
					timer = time.AfterFunc(time.Duration(float64(step)*frac), cancel)
				}
			}
			_, err := Generate(ctx, m, p)
			timer.Stop()
			cancel()
			require.ErrorIs(t, err, context.Canceled, "cancelled %.1f into a call", frac)
			same(t)
		}
	})
}
