// bindgroup_test.go: the bind-group cache's per-buffer index, without a
// device and on one.
package gpu_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
	"harmony/engine/gpu/gputest"
)

// TestBindCacheIndex: dropping a buffer drops exactly the groups that bind
// it, and the other buffers' index entries for those groups go with them.
func TestBindCacheIndex(t *testing.T) {
	c := gpu.NewBindCache()
	c.Put(1, 2)
	c.Put(1, 3)
	c.Put(2, 3)
	c.Put(4)
	c.Put(2, 2) // a buffer bound twice is indexed once
	require.Equal(t, 5, c.Len())
	require.Equal(t, 3, c.Indexed(2))

	require.Equal(t, 2, c.Drop(1))
	require.Equal(t, 3, c.Len())
	require.Equal(t, 0, c.Indexed(1))
	require.Equal(t, 2, c.Indexed(2), "(1, 2) must leave 2's index")
	require.Equal(t, 1, c.Indexed(3), "(1, 3) must leave 3's index")

	require.Equal(t, 0, c.Drop(1), "a second drop finds nothing")
	require.Equal(t, 0, c.Drop(99), "an unbound buffer drops nothing")
	require.Equal(t, 2, c.Drop(2))
	require.Equal(t, 1, c.Len())
	require.Equal(t, 0, c.Indexed(3))
	require.Equal(t, 1, c.Indexed(4))

	c.Reset()
	require.Equal(t, 0, c.Len())
	require.Equal(t, 0, c.Indexed(4))
}

// TestBindCacheBound: past its bound the cache starts over, index included.
func TestBindCacheBound(t *testing.T) {
	c := gpu.NewBindCache()
	for range gpu.MaxBindGroups + 1 {
		c.Put(1)
	}
	require.Equal(t, gpu.MaxBindGroups+1, c.Len())
	c.Put(2)
	require.Equal(t, 1, c.Len())
	require.Equal(t, 0, c.Indexed(1))
	require.Equal(t, 1, c.Indexed(2))
}

// TestDestroyDropsBindGroups: destroying a buffer (an exact one, released
// with no batch open) drops the cached bind groups that bind it and keeps
// the others, which later dispatches reuse.
func TestDestroyDropsBindGroups(t *testing.T) {
	d := gputest.Default(t)
	ctx := context.Background()
	newExact := func(name string) *gpu.Buffer {
		b, err := d.NewExactBuffer(name, 4*64)
		require.NoError(t, err)
		return b
	}
	a, x, y := newExact("a"), newExact("x"), newExact("y")
	defer d.Release(x)
	defer d.Release(y)
	dispatch := func(in, out *gpu.Buffer) {
		require.NoError(t, d.Dispatch(selftest, 1, selfParams{N: 64, Scale: 1}, gpu.Binding{Buf: in}, gpu.Binding{Buf: out}))
	}
	dispatch(a, x)
	dispatch(x, y)
	dispatch(y, a)
	require.NoError(t, d.Sync(ctx))
	ofA, all := d.CachedBindGroups(a)
	require.Equal(t, 2, ofA)
	ofX, _ := d.CachedBindGroups(x)
	require.Equal(t, 2, ofX)

	d.Release(a)
	ofA, after := d.CachedBindGroups(a)
	require.Zero(t, ofA)
	require.Equal(t, all-2, after, "exactly a's two groups are dropped")
	ofX, _ = d.CachedBindGroups(x)
	ofY, _ := d.CachedBindGroups(y)
	require.Equal(t, 1, ofX, "x keeps (x, y)")
	require.Equal(t, 1, ofY, "y keeps (x, y)")

	s0 := d.Stats()
	dispatch(x, y)
	require.NoError(t, d.Sync(ctx))
	require.Equal(t, s0.BindGroups, d.Stats().BindGroups, "the kept group is reused")
}
