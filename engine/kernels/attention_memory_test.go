package kernels

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/tensor"
)

// TestAttentionNeverAllocatesScores: the fused attention's GPU memory
// grows with N, never with N×N (the self-attention must never materialize
// its scores, 4096² per head at 512×512). N = 3000
// would need 36 MB per head for the scores; the whole call, swap and
// probability columns included, must stay far below one such buffer.
func TestAttentionNeverAllocatesScores(t *testing.T) {
	dev := gputest.Default(t)
	b := New(dev)
	const n, heads, d = 3000, 2, 8
	rnd := func(name string) *tensor.Tensor {
		v := make([]float32, 2*n*heads*d)
		for i := range v {
			v[i] = float32((i*7919)%13)/13 - 0.5
		}
		return b.FromF32(name, v, 2, n, heads*d)
	}
	q, k, v := rnd("q"), rnd("k"), rnd("v")
	rows := make([]float32, 2*n)
	for i := range rows[:n] {
		rows[i] = float32(i % 2)
	}
	rm := b.FromF32("rows", rows, 2, n)
	km := b.FromF32("keys", rows, 2, n)
	require.NoError(t, b.Sync(context.Background()))
	dev.ResetPeaks()
	before := dev.Stats().InUse
	out, probs := b.Attention(q, k, v, tensor.AttnOpts{Heads: heads, Scale: 0.35, ProbCols: [2]int{0, 16},
		Swap: &tensor.Swap{Mode: tensor.SwapKV, Partner: []int{1, -1}, RowMask: rm, KeyMask: km}})
	require.NoError(t, b.Sync(context.Background()))
	grew := dev.Stats().PeakInUse - before
	scores := uint64(n) * n * 4
	t.Logf("attention over %d tokens: peak GPU memory grew by %d bytes; one head's scores would take %d", n, grew, scores)
	require.Less(t, grew, scores/16)
	b.Free(q, k, v, rm, km, out, probs)
}
