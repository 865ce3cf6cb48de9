// Tests of ELITE in the app: the base switch's defaults, and a generation
// on the tiny ELITE model with a painted mask that reaches the engine.
package state

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/engine/pipeline"
	"harmony/loader/golden"
)

// TestSetBase: switching the base swaps the defaults still unchanged and
// keeps the ones the user set.
func TestSetBase(t *testing.T) {
	a := New(Config{CacheDir: t.TempDir()})
	t.Cleanup(a.Close)
	require.NoError(t, a.Set("guidance", "6"))
	require.NoError(t, a.SetBase(pipeline.BaseELITE))
	o := a.Snapshot().Options
	require.Equal(t, pipeline.BaseELITE, o.Base)
	require.Equal(t, pipeline.EliteSteps, o.Steps)
	require.Equal(t, "lms", o.Scheduler)
	require.Equal(t, 6.0, o.Guidance, "a value the user set was replaced")
	require.Equal(t, "a S swimming underwater", o.Prompt)
	require.Empty(t, o.TargetClass)
	require.True(t, a.Snapshot().Elite)
	require.NoError(t, a.SetBase(pipeline.BaseBLIPDiffusion))
	o = a.Snapshot().Options
	require.Equal(t, pipeline.DefaultOptions().Steps, o.Steps)
	require.Equal(t, "pndm", o.Scheduler)
	require.Equal(t, "swimming underwater", o.Prompt)
	require.Equal(t, "dog", o.TargetClass)
	require.False(t, a.Snapshot().Elite)
}

// TestEliteMask: the tiny ELITE model loads with base elite; a generation
// with a painted mask runs with it (no "whole photo" warning), one without
// says the whole photo is the subject.
func TestEliteMask(t *testing.T) {
	gputest.Default(t)
	a := New(Config{CacheDir: t.TempDir()})
	t.Cleanup(a.Close)
	require.NoError(t, a.SetBase(pipeline.BaseELITE))
	require.NoError(t, a.Load(context.Background(), golden.Path(t, "elite-tiny")))
	for k, v := range map[string]string{"steps": "2", "width": "32", "height": "32", "preview-every": "0"} {
		require.NoError(t, a.Set(k, v))
	}
	whole := func() bool { return slices.Contains(a.Snapshot().Result.Warnings, pipeline.WholePhotoWarning) }
	require.NoError(t, a.Generate())
	a.Wait()
	s := a.Snapshot()
	require.Equal(t, Done, s.Phase, "%v", s.Err)
	require.True(t, whole(), "no mask, yet no word that the whole photo is the subject: %q", s.Result.Warnings)

	p := s.Photo
	a.PaintMask(0.2*float64(p.Width), 0.5*float64(p.Height), 0.8*float64(p.Width), 0.5*float64(p.Height), 8, false)
	require.Positive(t, a.Snapshot().MaskCount)
	require.NoError(t, a.Generate())
	a.Wait()
	s = a.Snapshot()
	require.Equal(t, Done, s.Phase, "%v", s.Err)
	require.False(t, whole(), "the painted mask did not reach the engine: %q", s.Result.Warnings)
	for _, k := range Kinds {
		require.NotNil(t, s.Result.Images[k], "no %s picture", k)
	}
}
