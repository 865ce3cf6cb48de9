//go:build !js

// score_hub_test.go: scoring weights from a (stand-in) Hub repository go
// through the download cache like a model's.
package state

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/loader/golden"
	"harmony/loader/hubtest"
)

func TestScorersFromHub(t *testing.T) {
	gputest.Default(t)
	hub, err := hubtest.Start(golden.Path(t, "dino-tiny"), "test/dino", hubtest.Options{})
	require.NoError(t, err)
	defer hub.Close()
	a, _ := newCacheApp(t, t.TempDir())
	loc := HubPrefix + hub.URL()
	require.NoError(t, a.LoadScorers(context.Background(), "", loc))
	s := a.Snapshot()
	require.True(t, s.Score.On())
	require.Equal(t, loc, s.Score.DINO)
	require.Len(t, s.Cached, 1)
	require.True(t, s.Cached[0].Complete, "the download is recorded complete")
}
