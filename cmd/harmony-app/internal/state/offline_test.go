//go:build !js

// The download cache offline: a model downloaded whole from a stand-in Hub
// (loader/hubtest, native only) loads again with the Hub shut down.
package state

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/loader/golden"
	"harmony/loader/hubtest"
)

// TestHubOffline: a model downloaded whole from a Hub repository (the
// stand-in Hub, shut down after the download) loads again in a restarted
// app with no server at all: sizes, headers and configs come from the
// cache folder as recorded.
func TestHubOffline(t *testing.T) {
	gputest.Default(t)
	hub, err := hubtest.Start(golden.Path(t, "blipdiffusion-tiny"), "test/tiny", hubtest.Options{})
	require.NoError(t, err)
	defer hub.Close()
	dir := t.TempDir()
	loc := HubPrefix + hub.URL()

	a1, _ := newCacheApp(t, dir)
	require.NoError(t, a1.Load(context.Background(), loc))
	list := a1.Snapshot().Cached
	require.Len(t, list, 1)
	require.True(t, list[0].Complete)
	require.NotEmpty(t, hub.Log())
	hub.Close()

	a2, l2 := newCacheApp(t, dir)
	require.NoError(t, a2.Load(context.Background(), loc), "a fully cached model did not load offline")
	require.Equal(t, Ready, a2.Snapshot().Phase)
	evs := l2.take()
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	require.Equal(t, last.BytesTotal, last.CacheBytes, "weights came from elsewhere than the cache")
}
