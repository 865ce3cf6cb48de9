// cachedsource.go lets a model read once from the network load again with
// no network. The runner's Cache keeps the weight pieces, but opening a
// remote file asks the server for its size (the Hub's tree listing, an
// HTTP probe), and headers, configs and tokenizer files are read by ReadAt
// outside the pieces. CachedSource records in the same Cache what each
// Open found (the file's name, size and tag, or that it does not exist)
// and the bytes of every small ReadAt, each entry stored with its SHA-256
// and checked on the way out like the pieces.
package loader

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
)

// maxRecordedRead bounds the ReadAt calls whose bytes are recorded
// (headers, configs, vocabularies, zip directories); larger reads are
// weight data, which the runner caches as pieces.
const maxRecordedRead = 16 << 20

// CachedSource wraps a network source and records what its files are.
//
// With Offline set, a file whose Open was recorded is served from the
// records with no request: its small reads from the Cache, and any read
// the Cache lacks (a piece lost, a read not seen before) by opening the
// inner file then. A completed download is thus used as it is; deleting
// it from the cache is how a newer revision is fetched.
//
// Without Offline, every Open asks the inner source first and falls back
// to the record only when that fails for a reason other than the file's
// absence (no network, a server down).
type CachedSource struct {
	Inner   Source
	Cache   Cache
	Offline bool
}

func (s *CachedSource) String() string { return s.Inner.String() }

// fileRecord is what an Open found.
type fileRecord struct {
	Missing bool   `json:"missing,omitempty"`
	Name    string `json:"name,omitempty"`
	Size    int64  `json:"size"`
	Tag     string `json:"tag,omitempty"`
}

func (s *CachedSource) openKey(name string) string {
	return "open/" + s.Inner.String() + "?file=" + name
}

func (s *CachedSource) record(ctx context.Context, name string) (fileRecord, bool) {
	var r fileRecord
	data, ok := getEntry(ctx, s.Cache, s.openKey(name))
	if !ok || json.Unmarshal(data, &r) != nil {
		return r, false
	}
	return r, true
}

// Open implements Source.
func (s *CachedSource) Open(ctx context.Context, name string) (File, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if s.Offline {
		if r, ok := s.record(ctx, name); ok {
			return s.fromRecord(ctx, name, r)
		}
	}
	f, err := s.Inner.Open(ctx, name)
	switch {
	case err == nil:
		r := fileRecord{Name: f.Name(), Size: f.Size(), Tag: f.Tag()}
		s.put(ctx, name, r)
		return &cachedFile{src: s, ctx: ctx, open: name, rec: r, inner: f}, nil
	case errors.Is(err, fs.ErrNotExist):
		s.put(ctx, name, fileRecord{Missing: true})
		return nil, err
	case ctx.Err() != nil:
		return nil, err
	}
	if r, ok := s.record(ctx, name); ok {
		return s.fromRecord(ctx, name, r)
	}
	return nil, err
}

func (s *CachedSource) fromRecord(ctx context.Context, name string, r fileRecord) (File, error) {
	if r.Missing {
		return nil, &SourceError{URL: joinURL(s.Inner.String(), name), Op: "open", Err: fmt.Errorf("%w (as recorded in the cache)", fs.ErrNotExist)}
	}
	return &cachedFile{src: s, ctx: ctx, open: name, rec: r}, nil
}

// put records an Open's outcome; a cache that cannot store it only costs
// the next load its network requests.
func (s *CachedSource) put(ctx context.Context, name string, r fileRecord) {
	if old, ok := s.record(ctx, name); ok && old == r {
		return
	}
	if data, err := json.Marshal(r); err == nil {
		putEntry(ctx, s.Cache, s.openKey(name), data)
	}
}

// cachedFile is a file of a CachedSource: the inner file, opened when a
// read needs it.
type cachedFile struct {
	src  *CachedSource
	ctx  context.Context
	open string // the name Open was given
	rec  fileRecord

	mu    sync.Mutex
	inner File
}

func (f *cachedFile) Size() int64  { return f.rec.Size }
func (f *cachedFile) Name() string { return f.rec.Name }
func (f *cachedFile) Tag() string  { return f.rec.Tag }

func (f *cachedFile) file() (File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inner != nil {
		return f.inner, nil
	}
	in, err := f.src.Inner.Open(f.ctx, f.open)
	if err != nil {
		return nil, err
	}
	if in.Size() != f.rec.Size || in.Tag() != f.rec.Tag {
		in.Close()
		return nil, &SourceError{URL: f.rec.Name, Op: "open", Err: fmt.Errorf("the file changed since it was cached (size %d, tag %q; now %d, %q): delete the cached model and load it again", f.rec.Size, f.rec.Tag, in.Size(), in.Tag())}
	}
	f.inner = in
	return in, nil
}

func (f *cachedFile) readKey(off int64, n int) string {
	return "read/" + f.rec.Name + "?size=" + strconv.FormatInt(f.rec.Size, 10) + "&tag=" + f.rec.Tag +
		"&bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+int64(n), 10)
}

func (f *cachedFile) ReadAt(p []byte, off int64) (int, error) {
	small := len(p) > 0 && len(p) <= maxRecordedRead && off >= 0 && off+int64(len(p)) <= f.rec.Size
	if small {
		if data, ok := getEntry(f.ctx, f.src.Cache, f.readKey(off, len(p))); ok && len(data) == len(p) {
			copy(p, data)
			return len(p), nil
		}
	}
	in, err := f.file()
	if err != nil {
		return 0, err
	}
	n, err := in.ReadAt(p, off)
	if small && n == len(p) && (err == nil || err == io.EOF) {
		putEntry(f.ctx, f.src.Cache, f.readKey(off, n), p[:n])
	}
	return n, err
}

func (f *cachedFile) Stream(off, n int64) (io.ReadCloser, error) {
	in, err := f.file()
	if err != nil {
		return nil, err
	}
	return in.Stream(off, n)
}

func (f *cachedFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inner != nil {
		return f.inner.Close()
	}
	return nil
}

// getEntry reads a cache entry stored by putEntry (its bytes and their
// SHA-256); ok is false when it is absent or damaged.
func getEntry(ctx context.Context, c Cache, key string) ([]byte, bool) {
	b, ok, err := c.Get(ctx, key, nil)
	if err != nil || !ok || len(b) < sha256.Size {
		return nil, false
	}
	return verifyEntry(b, int64(len(b)-sha256.Size), "")
}

func putEntry(ctx context.Context, c Cache, key string, data []byte) {
	sum := sha256.Sum256(data)
	c.Put(ctx, key, append(append(make([]byte, 0, len(data)+len(sum)), data...), sum[:]...))
}
