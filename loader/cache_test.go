package loader_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"harmony/loader"
)

// countingSource records streamed reads and can fail the n-th one, as a
// dropped connection or a closed tab would.
type countingSource struct {
	loader.Source
	mu      sync.Mutex
	streams []string
	failAt  int // 1-based Stream call to fail; 0: none
}

func (s *countingSource) Open(ctx context.Context, name string) (loader.File, error) {
	f, err := s.Source.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, s: s, name: name}, nil
}

func (s *countingSource) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.streams...)
}

type countingFile struct {
	loader.File
	s    *countingSource
	name string
}

func (f *countingFile) Stream(off, n int64) (io.ReadCloser, error) {
	f.s.mu.Lock()
	f.s.streams = append(f.s.streams, fmt.Sprintf("%s@%d", f.name, off))
	k := len(f.s.streams)
	f.s.mu.Unlock()
	if k == f.s.failAt {
		return nil, errors.New("injected failure")
	}
	return f.File.Stream(off, n)
}

// tinyPack packs the tiny .bin folder in 1 MiB shards; it returns the
// folder and the shard count.
func tinyPack(t *testing.T) (string, int) {
	_, bin := tinyDirs(t)
	dir, man := writePack(t, bin, 1<<20, nil)
	if len(man.Shards) < 5 {
		t.Fatalf("only %d shards", len(man.Shards))
	}
	return dir, len(man.Shards)
}

// TestCacheResume: a load that breaks off after three shards leaves them
// cached; the next load fetches only the rest, starting at the first
// missing shard; the one after fetches nothing.
func TestCacheResume(t *testing.T) {
	dir, shards := tinyPack(t)
	local, lb := load(t, loader.NewDirSource(dir), nil)
	cache := loader.NewMemCache()

	src := &countingSource{Source: loader.NewDirSource(dir), failAt: 4}
	if _, err := loader.Load(context.Background(), src, newBackend(), &loader.Options{Cache: cache}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("got %v", err)
	}
	src = &countingSource{Source: loader.NewDirSource(dir)}
	m, b := load(t, src, &loader.Options{Cache: cache})
	sameWeights(t, "resumed", local, lb, m, b)
	got := src.log()
	if len(got) != shards-3 || got[0] != "shard-00003.bin@0" {
		t.Fatalf("resumed load streamed %v, want shards 3..%d", got, shards-1)
	}

	src = &countingSource{Source: loader.NewDirSource(dir)}
	var last loader.Progress
	m, b = load(t, src, &loader.Options{Cache: cache, Progress: func(p loader.Progress) { last = p }})
	sameWeights(t, "cached", local, lb, m, b)
	if n := len(src.log()); n != 0 || last.CacheBytes != last.BytesTotal || !last.FromCache {
		t.Fatalf("cached load streamed %d pieces, progress %+v", n, last)
	}
}

// TestCacheCorrupt: a corrupt or torn entry is never used: it is fetched
// again.
func TestCacheCorrupt(t *testing.T) {
	dir, shards := tinyPack(t)
	local, lb := load(t, loader.NewDirSource(dir), nil)
	cache := loader.NewMemCache()
	load(t, loader.NewDirSource(dir), &loader.Options{Cache: cache})
	var shardKeys []string
	for _, k := range cache.Keys() {
		shardKeys = append(shardKeys, k)
	}
	if len(shardKeys) < shards {
		t.Fatalf("cache holds %d entries", len(shardKeys))
	}
	for i, k := range shardKeys {
		cache.Corrupt(k, 100+i)
	}
	src := &countingSource{Source: loader.NewDirSource(dir)}
	m, b := load(t, src, &loader.Options{Cache: cache})
	sameWeights(t, "after corruption", local, lb, m, b)
	if n := len(src.log()); n != shards {
		t.Fatalf("refetched %d shards, want %d", n, shards)
	}

	// A store that keeps half an entry when Put fails.
	torn := &tornCache{MemCache: loader.NewMemCache()}
	if _, err := loader.Load(context.Background(), loader.NewDirSource(dir), newBackend(), &loader.Options{Cache: torn}); err == nil {
		t.Fatal("torn Put should fail the load")
	}
	torn.ok = true
	src = &countingSource{Source: loader.NewDirSource(dir)}
	m, b = load(t, src, &loader.Options{Cache: torn})
	sameWeights(t, "after a torn write", local, lb, m, b)
	if n := len(src.log()); n != shards {
		t.Fatalf("refetched %d shards, want %d", n, shards)
	}
}

// tornCache stores the first half of each entry and fails, until ok.
type tornCache struct {
	*loader.MemCache
	ok bool
}

func (c *tornCache) Put(ctx context.Context, key string, data []byte) error {
	if c.ok {
		return c.MemCache.Put(ctx, key, data)
	}
	c.MemCache.Put(ctx, key, data[:len(data)/2])
	return errors.New("write interrupted")
}

// quotaCache refuses entries after a few.
type quotaCache struct {
	*loader.MemCache
	left int
}

func (c *quotaCache) Put(ctx context.Context, key string, data []byte) error {
	if c.left == 0 {
		return &loader.QuotaError{Key: key, Err: errors.New("QuotaExceededError: the quota has been exceeded")}
	}
	c.left--
	return c.MemCache.Put(ctx, key, data)
}

func TestCacheQuota(t *testing.T) {
	dir, _ := tinyPack(t)
	_, err := loader.Load(context.Background(), loader.NewDirSource(dir), newBackend(), &loader.Options{Cache: &quotaCache{MemCache: loader.NewMemCache(), left: 6}})
	var qe *loader.QuotaError
	if !errors.As(err, &qe) || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

// TestCacheRanges: pieces of a diffusers folder read in place are cached
// too.
func TestCacheRanges(t *testing.T) {
	_, bin := tinyDirs(t)
	local, lb := load(t, loader.NewDirSource(bin), nil)
	cache := loader.NewMemCache()
	opt := &loader.Options{Cache: cache, PieceSize: 1 << 20}
	load(t, loader.NewDirSource(bin), opt)
	src := &countingSource{Source: loader.NewDirSource(bin)}
	m, b := load(t, src, opt)
	sameWeights(t, "ranges from the cache", local, lb, m, b)
	if n := len(src.log()); n != 0 {
		t.Fatalf("streamed %d pieces despite the cache", n)
	}
}

func TestDirCache(t *testing.T) {
	dir, shards := tinyPack(t)
	local, lb := load(t, loader.NewDirSource(dir), nil)
	cdir := t.TempDir()
	cache := &loader.DirCache{Dir: cdir}
	load(t, loader.NewDirSource(dir), &loader.Options{Cache: cache})
	ents, _ := os.ReadDir(cdir)
	if len(ents) < shards {
		t.Fatalf("%d cache files", len(ents))
	}
	// Truncate every entry on disk: all are refetched.
	for _, e := range ents {
		p := filepath.Join(cdir, e.Name())
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()-1)
	}
	src := &countingSource{Source: loader.NewDirSource(dir)}
	m, b := load(t, src, &loader.Options{Cache: cache})
	sameWeights(t, "dir cache", local, lb, m, b)
	if n := len(src.log()); n != shards {
		t.Fatalf("refetched %d shards, want %d", n, shards)
	}
	ents, _ = os.ReadDir(cdir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "partial-") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
}
