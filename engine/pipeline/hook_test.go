package pipeline

import (
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/harmony"
)

// TestHarmonyHookPrime: a hook primed with masks swaps at call 1 in the
// layers the pipeline chooses, and asks the mask layers for the visual
// columns.
func TestHarmonyHookPrime(t *testing.T) {
	m := cpuModel(t)
	o := DefaultOptions()
	o.Harmony.SwapStart = harmony.SwapStart{IsCall: true, Call: 1}
	l := HookLayout{Sites: m.UNet.Sites(8, 8), Text: harmony.Layout{CtxBegin: m.CtxBeginPos, NumCtx: m.NumQuery}, TextLen: m.TextLen, Processes: 2, CFG: true}
	h, err := NewHarmonyHook(m.B, &o, l)
	require.NoError(t, err)
	defer h.Free()
	sets, err := harmony.SelectLayers(l.Sites, harmony.LayerOptions{})
	require.NoError(t, err)
	require.Equal(t, len(sets.Mask), h.MaskLayers())

	gh, gw := h.Grid()
	ones := harmony.Mask{H: gh, W: gw, V: make([]uint8, gh*gw)}
	for i := range ones.V {
		ones.V[i] = 1
	}
	require.Error(t, h.Prime(harmony.Mask{H: 1, W: 1, V: []uint8{1}}, ones), "a mask off the grid")
	zeros := harmony.Mask{H: gh, W: gw, V: make([]uint8, gh*gw)}
	require.NoError(t, h.Prime(ones, zeros))
	softM, softV := h.SoftMasks()
	require.Len(t, softM, 1)
	require.Len(t, softV, 1)
	require.Equal(t, float32(1), softM[0].V[0], "the primed main mask as a soft map")
	require.Equal(t, float32(0), softV[0].V[gh*gw-1], "the primed visual-only mask as a soft map")
	h, err = NewHarmonyHook(m.B, &o, l) // a fresh hook: Prime stands in for call 0 only
	require.NoError(t, err)
	defer h.Free()
	require.NoError(t, h.Prime(ones, ones))
	require.NoError(t, h.Begin(1))
	for _, s := range sets.Swap {
		_, sw := h.Attention(s)
		require.NotNil(t, sw, s.Name)
		require.Equal(t, []int{1, -1, 3, -1}, sw.Partner)
	}
	for _, s := range sets.Mask {
		cols, sw := h.Attention(s)
		require.Nil(t, sw)
		require.Equal(t, [2]int{m.CtxBeginPos, m.CtxBeginPos + m.NumQuery}, cols)
	}
	main, vis, used := h.Masks()
	require.Len(t, main, 1)
	require.Len(t, vis, 1)
	require.Len(t, used, 2)
	require.Equal(t, ones, used[1])
	require.NotNil(t, h.LastUsedMask())

	_, err = NewHarmonyHook(m.B, &o, HookLayout{Sites: l.Sites, Processes: 1})
	require.Error(t, err, "one process")
}
