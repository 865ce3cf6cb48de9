// cache.go keeps pieces of model files between loads: pack shards (keyed by
// their SHA-256) and ranges of diffusers files (keyed by URL, size, tag and
// range). The loader stores each piece followed by its SHA-256 and checks
// both on the way out, so a truncated, corrupt or half-written entry is
// fetched again, never used. An interrupted load therefore resumes at the
// first piece the cache lacks.
//
// Implementations: MemCache (tests), DirCache (a folder on disk) and, in
// the browser, the Cache Storage API (cache_js.go).
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Cache is persistent storage of pieces.
type Cache interface {
	// Get appends the bytes stored under key to buf; ok is false when
	// there is no entry.
	Get(ctx context.Context, key string, buf []byte) (data []byte, ok bool, err error)
	// Put stores data under key, atomically: a Put that fails or is
	// interrupted leaves either the old state or no entry, never part of
	// data. A full store gives a *QuotaError.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes an entry (no error when there is none).
	Delete(ctx context.Context, key string) error
}

// MemCache is a Cache in memory.
type MemCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemCache returns an empty MemCache.
func NewMemCache() *MemCache { return &MemCache{m: map[string][]byte{}} }

func (c *MemCache) Get(_ context.Context, key string, buf []byte) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok {
		return buf, false, nil
	}
	return append(buf, v...), true, nil
}

func (c *MemCache) Put(_ context.Context, key string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = append([]byte(nil), data...)
	return nil
}

func (c *MemCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

// Keys lists the entries (for tests).
func (c *MemCache) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.m {
		out = append(out, k)
	}
	return out
}

// Corrupt flips one byte of an entry (for tests).
func (c *MemCache) Corrupt(key string, at int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.m[key]; at < len(v) {
		v[at] ^= 0xff
	}
}

// DirCache is a Cache in a local folder: one file per entry, named by the
// SHA-256 of its key, written under a temporary name and renamed.
type DirCache struct {
	Dir string
}

func (c *DirCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.Dir, hex.EncodeToString(h[:]))
}

func (c *DirCache) Get(_ context.Context, key string, buf []byte) ([]byte, bool, error) {
	f, err := os.Open(c.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return buf, false, nil
	}
	if err != nil {
		return buf, false, fmt.Errorf("loader: cache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, false, fmt.Errorf("loader: cache: %w", err)
	}
	n := int(st.Size())
	if cap(buf)-len(buf) < n {
		nb := make([]byte, len(buf), len(buf)+n)
		copy(nb, buf)
		buf = nb
	}
	out := buf[:len(buf)+n]
	if err := readFullAt(f, out[len(buf):], 0); err != nil {
		return buf, false, err
	}
	return out, true, nil
}

func (c *DirCache) Put(_ context.Context, key string, data []byte) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("loader: cache: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, "partial-*")
	if err != nil {
		return cacheErr(key, err)
	}
	if err := commitFile(f, data, c.path(key)); err != nil {
		return cacheErr(key, err)
	}
	return nil
}

func (c *DirCache) Delete(_ context.Context, key string) error {
	if err := os.Remove(c.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("loader: cache: %w", err)
	}
	return nil
}

func cacheErr(key string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &QuotaError{Key: key, Err: err}
	}
	return fmt.Errorf("loader: cache %s: %w", key, err)
}
