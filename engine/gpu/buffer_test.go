// buffer_test.go: buffer reuse from the pool, within and across batches,
// and eviction under the in-use high-water mark.
package gpu_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

func TestPoolReuseAfterSubmit(t *testing.T) {
	d := gputest.Default(t)
	require.NoError(t, d.Trim()) // idle buffers of other tests would be evicted for x
	before := d.Stats()
	x, err := d.NewBuffer("x", 10000)
	require.NoError(t, err)
	d.Release(x)
	y, err := d.NewBuffer("y", 9990)
	require.NoError(t, err)
	defer d.Release(y)
	after := d.Stats()
	// Same bucket: the released buffer is reused, nothing new is allocated.
	require.Equal(t, before.Allocated+gpu.Bucket(10000), after.Allocated)
	require.Equal(t, "y", y.Label())
}

// TestPoolReuseWithinBatch: a buffer released while its reader is still
// only recorded is handed out again at once, and a dispatch writing it
// does not overtake the earlier one reading it.
func TestPoolReuseWithinBatch(t *testing.T) {
	d := gputest.Default(t)
	ctx := context.Background()
	const n = 1000
	a := make([]float32, n)
	for i := range a {
		a[i] = float32(i%13) - 6
	}
	x, err := d.NewBuffer("x", 4*n)
	require.NoError(t, err)
	require.NoError(t, d.Write(x, 0, f32bytes(a)))
	y, err := d.NewBuffer("y", 4*n)
	require.NoError(t, err)
	defer d.Release(y)
	require.NoError(t, d.Dispatch(selftest, (n+63)/64, selfParams{N: n, Scale: 0.5}, gpu.Binding{Buf: x}, gpu.Binding{Buf: y}))
	d.Release(x) // the dispatch reading x is recorded, not submitted
	before := d.Stats()
	z, err := d.NewBuffer("z", 4*n)
	require.NoError(t, err)
	defer d.Release(z)
	require.Equal(t, before.Allocated, d.Stats().Allocated, "x's buffer should have been reused")
	require.NoError(t, d.Dispatch(selftest, (n+63)/64, selfParams{N: n, Scale: 2}, gpu.Binding{Buf: y}, gpu.Binding{Buf: z}))
	ry, err := d.Read(ctx, y, 0, 4*n)
	require.NoError(t, err)
	rz, err := d.Read(ctx, z, 0, 4*n)
	require.NoError(t, err)
	gy, gz := bytesf32(ry), bytesf32(rz)
	for i := range a {
		wy := a[i]*0.5 + float32(i)
		require.Equal(t, wy, gy[i], "y[%d]", i)
		require.Equal(t, wy*2+float32(i), gz[i], "z[%d]", i)
	}
}

// TestPoolEviction: idle buffers of other sizes are destroyed to make
// room for a new one, so the pool never lifts the allocation above the
// in-use peak.
func TestPoolEviction(t *testing.T) {
	d := gputest.Default(t)
	require.NoError(t, d.Trim())
	d.ResetPeaks()
	s0 := d.Stats()
	const mb = 1 << 20
	a, err := d.NewBuffer("a", 1*mb)
	require.NoError(t, err)
	b, err := d.NewBuffer("b", 3*mb)
	require.NoError(t, err)
	d.Release(a)
	c, err := d.NewBuffer("c", 2*mb) // a (1 MiB) is evicted for it
	require.NoError(t, err)
	require.Equal(t, s0.Allocated+5*mb, d.Stats().Allocated)
	d.Release(b)
	d.Release(c)
	e, err := d.NewBuffer("e", 4*mb) // b, then c (released first) make room
	require.NoError(t, err)
	st := d.Stats()
	require.Equal(t, s0.Allocated+4*mb, st.Allocated)
	require.LessOrEqual(t, st.PeakAllocated-s0.Allocated, st.PeakInUse-s0.InUse, "the pool lifted the allocation above the in-use peak")
	d.Release(e)
	f, err := d.NewBuffer("f", 4*mb-100) // same bucket: from the pool
	require.NoError(t, err)
	d.Release(f)
	require.Equal(t, st.Allocated, d.Stats().Allocated)
}
