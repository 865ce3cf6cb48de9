// pool_test.go: the pool's size buckets.
package gpu_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu"
)

// TestBucket: pool sizes cover the request, waste at most 12.5 %, and
// grow monotonically, so a request is never served from a smaller list.
func TestBucket(t *testing.T) {
	require.Equal(t, uint64(256), gpu.Bucket(1))
	require.Equal(t, uint64(256), gpu.Bucket(256))
	prev := uint64(0)
	for n := uint64(1); n < 1<<22; n = n*9/8 + 1 {
		c := gpu.Bucket(n)
		require.GreaterOrEqual(t, c, n)
		require.GreaterOrEqual(t, c, prev)
		if n > 256 {
			require.LessOrEqual(t, float64(c-n)/float64(n), 0.125, "bucket(%d) = %d", n, c)
		}
		require.Equal(t, c, gpu.Bucket(c), "a bucket size is its own bucket")
		prev = c
	}
}
