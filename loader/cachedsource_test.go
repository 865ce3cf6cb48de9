//go:build !js

package loader

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCachedSource: files opened and read once through a CachedSource are
// opened and read again from its records alone once the server is gone
// (Offline), or as a fallback when the server cannot be reached; a file
// recorded missing stays missing; a read never seen needs the server, and
// a file changed on it since is refused by name.
func TestCachedSource(t *testing.T) {
	files := map[string]string{"a.json": `{"x": 1}`, "w.bin": strings.Repeat("0123456789", 300)}
	var changed, requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if changed.Load() != 0 {
			body += "more"
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
	}))
	defer srv.Close()
	ctx := context.Background()
	inner := NewHTTPSource(srv.URL + "/")
	inner.Retries = 0
	cache := NewMemCache()
	read := func(s Source, name string, off int64, n int) (string, File, error) {
		f, err := s.Open(ctx, name)
		if err != nil {
			return "", nil, err
		}
		b := make([]byte, n)
		_, err = f.ReadAt(b, off)
		return string(b), f, err
	}

	online := &CachedSource{Inner: inner, Cache: cache}
	got, f1, err := read(online, "a.json", 0, 8)
	require.NoError(t, err)
	require.Equal(t, files["a.json"], got)
	got, w1, err := read(online, "w.bin", 1005, 20)
	require.NoError(t, err)
	require.Equal(t, files["w.bin"][1005:1025], got)
	_, err = online.Open(ctx, "missing.json")
	require.ErrorIs(t, err, fs.ErrNotExist)

	// Offline: no request for what was recorded.
	before := requests.Load()
	offline := &CachedSource{Inner: inner, Cache: cache, Offline: true}
	got, f2, err := read(offline, "a.json", 0, 8)
	require.NoError(t, err)
	require.Equal(t, files["a.json"], got)
	require.Equal(t, [3]any{f1.Name(), f1.Size(), f1.Tag()}, [3]any{f2.Name(), f2.Size(), f2.Tag()})
	got, w2, err := read(offline, "w.bin", 1005, 20)
	require.NoError(t, err)
	require.Equal(t, files["w.bin"][1005:1025], got)
	require.Equal(t, [3]any{w1.Name(), w1.Size(), w1.Tag()}, [3]any{w2.Name(), w2.Size(), w2.Tag()})
	_, err = offline.Open(ctx, "missing.json")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Equal(t, before, requests.Load(), "an offline open or a recorded read made a request")

	// A read not seen before asks the server; a changed file is refused.
	changed.Store(1)
	_, _, err = read(offline, "w.bin", 0, 10)
	require.ErrorContains(t, err, "changed since it was cached")
	require.ErrorContains(t, err, "w.bin")
	changed.Store(0)
	got, _, err = read(offline, "w.bin", 0, 10)
	require.NoError(t, err)
	require.Equal(t, "0123456789", got)

	// The server gone: online opens fall back to the records.
	srv.Close()
	got, _, err = read(online, "a.json", 0, 8)
	require.NoError(t, err)
	require.Equal(t, files["a.json"], got)
	_, _, err = read(online, "w.bin", 2000, 10)
	require.Error(t, err, "a read never recorded needs the server")
	_, err = online.Open(ctx, "never-opened.json")
	require.Error(t, err)
	require.NotErrorIs(t, err, fs.ErrNotExist, "an unreachable server is not a missing file")
}
