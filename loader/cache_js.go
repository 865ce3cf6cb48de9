//go:build js

// cache_js.go implements Cache with the browser's Cache Storage API. A
// cache.put commits an entry only once its whole body is stored, so an
// interrupted write never leaves a partial entry; the loader's SHA-256
// trailer (cache.go) catches anything else.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"syscall/js"
)

// BrowserCache is a named Cache Storage bucket.
type BrowserCache struct {
	Name string // bucket name, "harmony-weights"
}

// NewBrowserCache returns the cache for a bucket name.
func NewBrowserCache(name string) *BrowserCache { return &BrowserCache{Name: name} }

// url names an entry: Cache Storage keys are requests, so each key maps
// to a URL under a reserved host, by its digest.
func (c *BrowserCache) url(key string) string {
	h := sha256.Sum256([]byte(key))
	return "https://harmony-cache.invalid/" + hex.EncodeToString(h[:])
}

func (c *BrowserCache) open(ctx context.Context) (js.Value, error) {
	caches := js.Global().Get("caches")
	if !caches.Truthy() {
		return js.Undefined(), errors.New("loader: Cache Storage is unavailable (not a secure context?)")
	}
	return await(ctx, caches.Call("open", c.Name))
}

func (c *BrowserCache) Get(ctx context.Context, key string, buf []byte) ([]byte, bool, error) {
	cache, err := c.open(ctx)
	if err != nil {
		return buf, false, err
	}
	resp, err := await(ctx, cache.Call("match", c.url(key)))
	if err != nil || resp.IsUndefined() {
		return buf, false, err
	}
	ab, err := await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		return buf, false, err
	}
	u8 := js.Global().Get("Uint8Array").New(ab)
	n := u8.Length()
	if cap(buf)-len(buf) < n {
		nb := make([]byte, len(buf), len(buf)+n)
		copy(nb, buf)
		buf = nb
	}
	out := buf[:len(buf)+n]
	js.CopyBytesToGo(out[len(buf):], u8)
	return out, true, nil
}

func (c *BrowserCache) Put(ctx context.Context, key string, data []byte) error {
	cache, err := c.open(ctx)
	if err != nil {
		return err
	}
	u8 := js.Global().Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(u8, data)
	resp := js.Global().Get("Response").New(u8)
	if _, err := await(ctx, cache.Call("put", c.url(key), resp)); err != nil {
		var je *jsError
		if errors.As(err, &je) && je.Name == "QuotaExceededError" {
			return &QuotaError{Key: key, Err: err}
		}
		return err
	}
	return nil
}

func (c *BrowserCache) Delete(ctx context.Context, key string) error {
	cache, err := c.open(ctx)
	if err != nil {
		return err
	}
	_, err = await(ctx, cache.Call("delete", c.url(key)))
	return err
}
