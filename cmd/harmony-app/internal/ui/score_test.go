// score_test.go: the score line under the results: absent until scoring
// weights are loaded (the state's tests check that scoring is off by
// default), then one entry per result picture (not the mask).
package ui

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/cmd/harmony-app/internal/state"
	"harmony/engine/eval/embed/embedtest"
	"harmony/engine/gpu/gputest"
	"harmony/loader/golden"
)

func TestScoreLine(t *testing.T) {
	gputest.Default(t)
	a := state.New(state.Config{})
	t.Cleanup(a.Close)
	r := newRenderer(t)
	u := New(a, "", "")
	ctx := context.Background()
	require.NoError(t, a.Load(ctx, state.DemoModel))
	require.NoError(t, a.Set("steps", "2"))
	r.frame(u, "6-unscored")
	require.Empty(t, u.Drawn.Scores, "no result, no score line")
	require.Contains(t, scoreStatus(a.Snapshot()), "scores off")

	clip := filepath.Join(t.TempDir(), "clip")
	require.NoError(t, embedtest.TinyCLIPFolder(clip, golden.Path(t, "clip-tiny", "config.json"), golden.Path(t, "clip-tiny", "model.safetensors"), 500))
	require.NoError(t, a.LoadScorers(ctx, clip, golden.Path(t, "dino-tiny")))
	require.Contains(t, scoreStatus(a.Snapshot()), "scoring with CLIP ")
	require.NoError(t, a.Generate())
	a.Wait()
	r.frame(u, "7-scored")
	line := u.Drawn.Scores
	require.Equal(t, ScoreLine(a.Snapshot().Result), line)
	entries := strings.Split(line, "   ")
	require.Len(t, entries, 3, "%q", line)
	for i, k := range []string{"Harmony", "BLIP-Diffusion", "visual only"} {
		require.True(t, strings.HasPrefix(entries[i], k+": CLIP-T "), "%q", entries[i])
		require.Contains(t, entries[i], " · DINO ")
	}
	t.Logf("score line: %s", line)
}
