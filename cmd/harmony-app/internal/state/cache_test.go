// Tests of the download cache against the real engine: the tiny model
// served as a diffusers folder and as a pack from a local HTTP server,
// downloaded with progress, cancelled and resumed by a fresh app (only the
// missing pieces are fetched again), a corrupt piece refetched, and the
// cached list and its delete.
package state

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"harmony/engine/gpu/gputest"
	"harmony/loader/golden"
)

// modelServer serves the tiny diffusers folder under /diffusers/ and the
// demo pack under /pack/, counting the bytes of weight files sent. before,
// when set, runs ahead of every weight request and may answer it itself.
type modelServer struct {
	*httptest.Server
	weightBytes atomic.Int64
	mu          sync.Mutex
	before      func(r *http.Request) bool
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func isWeights(p string) bool {
	return strings.HasSuffix(p, ".safetensors") || strings.HasSuffix(p, ".bin")
}

func newModelServer(t *testing.T) *modelServer {
	t.Helper()
	pack, err := filepath.Abs("../../../../www/models/tiny")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(pack, "manifest.json")); err != nil {
		t.Skip("state: the demo pack www/models/tiny is not built (.ci/setup builds it)")
	}
	mux := http.NewServeMux()
	mux.Handle("/diffusers/", http.StripPrefix("/diffusers/", http.FileServer(http.Dir(golden.Path(t, "blipdiffusion-tiny")))))
	mux.Handle("/pack/", http.StripPrefix("/pack/", http.FileServer(http.Dir(pack))))
	s := &modelServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWeights(r.URL.Path) {
			s.mu.Lock()
			before := s.before
			s.mu.Unlock()
			if before != nil && before(r) {
				return
			}
			w = &countWriter{ResponseWriter: w, n: &s.weightBytes}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// served returns the weight bytes sent since the last call.
func (s *modelServer) served() int64 { return s.weightBytes.Swap(0) }

// loads records the load progress the app reports.
type loads struct {
	mu  sync.Mutex
	app *App
	evs []Progress
}

func (l *loads) onChange() {
	if l.app == nil {
		return
	}
	s := l.app.Snapshot()
	if s.Phase == Loading && s.Progress.BytesTotal > 0 {
		l.mu.Lock()
		l.evs = append(l.evs, s.Progress)
		l.mu.Unlock()
	}
}

func (l *loads) take() []Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.evs
	l.evs = nil
	return e
}

const testPiece = 1 << 20

// headerSlack bounds the weight-file bytes every load reads uncached: the
// size probes and the safetensors headers (about 65 KiB for the tiny
// model).
const headerSlack = 256 << 10

func newCacheApp(t *testing.T, dir string) (*App, *loads) {
	t.Helper()
	l := &loads{}
	a := New(Config{CacheDir: dir, PieceSize: testPiece, OnChange: l.onChange})
	l.app = a
	t.Cleanup(a.Close)
	return a, l
}

// weightsSize is the bytes of the tiny diffusers folder's weight files.
func weightsSize(t *testing.T) int64 {
	var n int64
	filepath.Walk(golden.Path(t, "blipdiffusion-tiny"), func(p string, info os.FileInfo, err error) error {
		if err == nil && isWeights(p) {
			n += info.Size()
		}
		return nil
	})
	return n
}

// largestEntry is the biggest cache entry in dir.
func largestEntry(t *testing.T, dir string) string {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var best string
	var size int64
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		if e.Name() != RecordName && info.Size() > size {
			best, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	require.NotEmpty(t, best)
	return best
}

// pieceEntry is a cache entry in dir holding a whole weight piece (its
// bytes and their SHA-256), not a recorded header or config read.
func pieceEntry(t *testing.T, dir string) string {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		if e.Name() != RecordName && info.Size() == testPiece+sha256.Size {
			return filepath.Join(dir, e.Name())
		}
	}
	t.Fatalf("no piece in %s", dir)
	return ""
}

func TestHubURL(t *testing.T) {
	for in, want := range map[string]string{
		"Salesforce/blipdiffusion":                        "https://huggingface.co/Salesforce/blipdiffusion/resolve/main/",
		"https://huggingface.co/Salesforce/blipdiffusion": "https://huggingface.co/Salesforce/blipdiffusion/resolve/main/",
		"https://huggingface.co/a/b/tree/v2":              "https://huggingface.co/a/b/resolve/v2/",
		"https://huggingface.co/a/b/resolve/main/":        "https://huggingface.co/a/b/resolve/main/",
		"http://127.0.0.1:8080/pack":                      "http://127.0.0.1:8080/pack/",
		" https://example.com/models/blip/ ":              "https://example.com/models/blip/",
	} {
		got, err := HubURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "blipdiffusion", "a/b/c", "ftp://x/y"} {
		_, err := HubURL(bad)
		require.Error(t, err, bad)
	}
}

// TestDownloadResume: a diffusers folder downloads with progress; a
// download cancelled half-way is resumed by a new app (a restart) that
// fetches only what the cache lacks; a fully cached model loads with no
// weight data from the server; a corrupt piece is refetched.
func TestDownloadResume(t *testing.T) {
	gputest.Default(t)
	srv := newModelServer(t)
	dir := t.TempDir()
	loc := HubPrefix + srv.URL + "/diffusers"
	total := weightsSize(t)

	// Cancel once 40% of the weights have been sent.
	a1, l1 := newCacheApp(t, dir)
	var fired atomic.Bool
	srv.mu.Lock()
	srv.before = func(r *http.Request) bool {
		if srv.weightBytes.Load() < total*4/10 || fired.Swap(true) {
			return false
		}
		a1.Cancel()
		<-r.Context().Done()
		return true
	}
	srv.mu.Unlock()
	require.ErrorIs(t, a1.Load(context.Background(), loc), context.Canceled)
	require.Equal(t, Cancelled, a1.Snapshot().Phase)
	require.True(t, fired.Load())
	served1 := srv.served()
	evs := l1.take()
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	require.Less(t, last.BytesDone, last.BytesTotal)
	for i := 1; i < len(evs); i++ {
		require.GreaterOrEqual(t, evs[i].BytesDone, evs[i-1].BytesDone)
	}
	list := a1.Snapshot().Cached
	require.Len(t, list, 1)
	require.False(t, list[0].Complete)
	require.Positive(t, list[0].Bytes)
	srv.mu.Lock()
	srv.before = nil
	srv.mu.Unlock()

	// A restart resumes: what was cached is not sent again.
	a2, l2 := newCacheApp(t, dir)
	require.Len(t, a2.Snapshot().Cached, 1)
	require.NoError(t, a2.Load(context.Background(), loc))
	s := a2.Snapshot()
	require.Equal(t, Ready, s.Phase)
	require.Equal(t, srv.URL+"/diffusers", s.Model)
	served2 := srv.served()
	evs = l2.take()
	last = evs[len(evs)-1]
	require.Equal(t, last.BytesTotal, last.BytesDone)
	require.Positive(t, last.CacheBytes, "the resumed load read nothing from the cache")
	require.Positive(t, last.Rate)
	t.Logf("weights %d B; first run sent %d B, resumed run %d B (%d B from the cache)", total, served1, served2, last.CacheBytes)
	require.Less(t, served2, total-last.CacheBytes+headerSlack, "the resumed run fetched cached pieces again")
	require.Less(t, served1+served2, total+testPiece+2*headerSlack, "more than the piece in flight was downloaded twice")
	list = s.Cached
	require.Len(t, list, 1)
	require.True(t, list[0].Complete)
	require.Equal(t, srv.URL+"/diffusers", list[0].Name)
	require.Equal(t, dirBytes(list[0].Dir), list[0].Bytes)
	require.Greater(t, list[0].Bytes, total*9/10)

	// Everything cached: only headers come from the server.
	require.NoError(t, a2.Load(context.Background(), loc))
	require.Less(t, srv.served(), int64(headerSlack))
	evs = l2.take()
	last = evs[len(evs)-1]
	require.Equal(t, last.BytesTotal, last.CacheBytes)

	// A corrupt piece fails its hash and is fetched again.
	bad := pieceEntry(t, list[0].Dir)
	data, err := os.ReadFile(bad)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(bad, data, 0o644))
	require.NoError(t, a2.Load(context.Background(), loc))
	refetched := srv.served()
	require.Greater(t, refetched, int64(testPiece/2))
	require.Less(t, refetched, int64(testPiece+headerSlack))
	fixed, err := os.ReadFile(bad)
	require.NoError(t, err)
	require.NotEqual(t, data, fixed)
}

// TestCachedListDelete: two models in the cache, listed with their sizes;
// deleting one removes exactly its folder.
func TestCachedListDelete(t *testing.T) {
	gputest.Default(t)
	srv := newModelServer(t)
	dir := t.TempDir()
	a, l := newCacheApp(t, dir)
	require.Empty(t, a.Snapshot().Cached)
	pack := HubPrefix + srv.URL + "/pack/"
	// While it downloads, the model cannot be deleted.
	var delErr error
	var once sync.Once
	srv.mu.Lock()
	srv.before = func(*http.Request) bool {
		once.Do(func() {
			c := a.Snapshot().Cached
			if len(c) == 1 {
				delErr = a.DeleteCached(c[0].Dir)
			}
		})
		return false
	}
	srv.mu.Unlock()
	require.NoError(t, a.Load(context.Background(), pack))
	srv.mu.Lock()
	srv.before = nil
	srv.mu.Unlock()
	require.ErrorContains(t, delErr, "downloading")
	evs := l.take()
	require.NotEmpty(t, evs)
	require.Equal(t, evs[len(evs)-1].BytesTotal, evs[len(evs)-1].BytesDone)
	shard := srv.served()
	require.Greater(t, shard, int64(9e6))

	// The shard is kept by its SHA-256: a reload sends nothing, and a
	// corrupt copy is refused and the shard fetched again.
	require.NoError(t, a.Load(context.Background(), pack))
	require.Less(t, srv.served(), int64(headerSlack))
	c := a.Snapshot().Cached
	require.Len(t, c, 1)
	bad := largestEntry(t, c[0].Dir)
	data, err := os.ReadFile(bad)
	require.NoError(t, err)
	data[100] ^= 0x01
	require.NoError(t, os.WriteFile(bad, data, 0o644))
	require.NoError(t, a.Load(context.Background(), pack))
	require.InDelta(t, shard, srv.served(), headerSlack)
	fixed, err := os.ReadFile(bad)
	require.NoError(t, err)
	require.NotEqual(t, data, fixed)
	require.NoError(t, a.Load(context.Background(), HubPrefix+srv.URL+"/diffusers"))

	list := a.Snapshot().Cached
	require.Len(t, list, 2)
	byName := map[string]CachedModel{}
	for _, m := range list {
		require.True(t, m.Complete)
		require.Positive(t, m.Bytes)
		byName[m.Name] = m
	}
	p, d := byName[srv.URL+"/pack/"], byName[srv.URL+"/diffusers"]
	require.NotEmpty(t, p.Dir)
	require.NotEmpty(t, d.Dir)
	require.Greater(t, p.Bytes, int64(9<<20)) // the shard
	var packFiles []os.DirEntry
	packFiles, err = os.ReadDir(p.Dir)
	require.NoError(t, err)

	// Outside the cache or not a model: refused, nothing removed.
	require.Error(t, a.DeleteCached(dir))
	require.Error(t, a.DeleteCached(filepath.Dir(dir)))
	require.Len(t, a.Snapshot().Cached, 2)

	require.NoError(t, a.DeleteCached(d.Dir))
	_, err = os.Stat(d.Dir)
	require.True(t, os.IsNotExist(err))
	list = a.Snapshot().Cached
	require.Len(t, list, 1)
	require.Equal(t, p.Name, list[0].Name)
	require.Equal(t, p.Bytes, list[0].Bytes)
	still, err := os.ReadDir(p.Dir)
	require.NoError(t, err)
	require.Len(t, still, len(packFiles))

	require.NoError(t, a.DeleteCached(p.Dir))
	require.Empty(t, a.Snapshot().Cached)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left)

	// The loaded model stays usable: the cache only feeds loads.
	require.Equal(t, Ready, a.Snapshot().Phase)
}
